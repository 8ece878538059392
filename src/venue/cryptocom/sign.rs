//! Crypto.com Exchange v1 request signing (reference §2.2): the params object flattened with its
//! keys sorted and values appended without separators, then
//! `HMAC-SHA256(secret, method + id + api_key + params + nonce)` as lowercase hex. Used by the
//! client to sign and by the simulator to verify.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// Deepest nesting flattened recursively: `params` is level 0, an array in it level 1, an object
/// in that array level 2. fillguard never sends anything deeper (no arrays inside list legs).
const FLATTEN_LEVEL_MAX: usize = 3;

/// The parameter string of the signature payload. `null`, absent or `{}` params give "".
pub fn param_string(params: &Value) -> String {
    let mut out = String::new();
    if let Value::Object(_) = params {
        flatten_into(params, 0, &mut out);
    }
    out
}

fn flatten_into(value: &Value, level: usize, out: &mut String) {
    match value {
        Value::Object(map) => {
            // serde_json's map is ordered by key (no `preserve_order`): byte order, as JS sort()
            // on ASCII keys.
            for (key, item) in map {
                out.push_str(key);
                append_value(item, level + 1, out);
            }
        }
        other => append_value(other, level, out),
    }
}

fn append_value(value: &Value, level: usize, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::String(text) => out.push_str(text),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::Array(items) => {
            for item in items {
                if level >= FLATTEN_LEVEL_MAX {
                    out.push_str(&item.to_string());
                } else {
                    flatten_into(item, level + 1, out);
                }
            }
        }
        Value::Object(_) => flatten_into(value, level, out),
    }
}

/// The exact text that is signed.
pub fn payload(method: &str, id: u64, api_key: &str, params: &Value, nonce: u64) -> String {
    format!("{method}{id}{api_key}{}{nonce}", param_string(params))
}

/// Lowercase hex HMAC-SHA256 of the payload.
pub fn signature(
    secret: &str,
    method: &str,
    id: u64,
    api_key: &str,
    params: &Value,
    nonce: u64,
) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(payload(method, id, api_key, params, nonce).as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Constant-time comparison of a received signature with the expected one.
pub fn verify(expected_hex: &str, received_hex: &str) -> bool {
    let expected = expected_hex.as_bytes();
    let received = received_hex.as_bytes();
    if expected.len() != received.len() {
        return false;
    }
    expected
        .iter()
        .zip(received)
        .fold(0u8, |diff, (a, b)| diff | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_published_signature_vector_passes() {
        let text = include_str!("../../../tests/fixtures/cryptocom-examples.json");
        let examples: Value = serde_json::from_str(text).unwrap();
        let vectors = examples["signature_test_vectors"]["vectors"]
            .as_array()
            .unwrap();
        assert_eq!(vectors.len(), 7, "vectors A to G");
        for vector in vectors {
            let request = &vector["request"];
            let params = request.get("params").cloned().unwrap_or(Value::Null);
            let method = request["method"].as_str().unwrap();
            let id = request["id"].as_u64().unwrap();
            let api_key = request["api_key"].as_str().unwrap();
            let nonce = request["nonce"].as_u64().unwrap();
            let name = vector["name"].as_str().unwrap();
            assert_eq!(
                param_string(&params),
                vector["expected_param_string"].as_str().unwrap(),
                "{name}"
            );
            let secret = vector["secret"].as_str().unwrap();
            let sig = signature(secret, method, id, api_key, &params, nonce);
            assert_eq!(sig, vector["expected_sig"].as_str().unwrap(), "{name}");
        }
    }

    #[test]
    fn verification_rejects_a_changed_signature() {
        let sig = signature("s", "private/user-balance", 1, "k", &Value::Null, 2);
        assert!(verify(&sig, &sig));
        let mut changed = sig.clone().into_bytes();
        changed[0] = if changed[0] == b'0' { b'1' } else { b'0' };
        assert!(!verify(&sig, &String::from_utf8(changed).unwrap()));
        assert!(!verify(&sig, "short"));
    }
}
