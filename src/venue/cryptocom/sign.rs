//! Crypto.com Exchange v1 request signing (reference §2.2): the params object flattened with its
//! keys sorted and values appended without separators, then
//! `HMAC-SHA256(secret, method + id + api_key + params + nonce)` as lowercase hex. Used by the
//! client to sign and by the simulator to verify, over exactly the params a request carries.
//!
//! Flattening follows the official JavaScript sample, from which every published vector was
//! computed: keys in byte order at every level, `null` as `null`, booleans as `true`/`false`,
//! numbers as their JSON text, a list as its key once followed by its flattened elements, and a
//! nested object flattened in place (keys sorted). There is no depth cut-off (the Java and
//! Python samples render level 3 with `toString()`; the reference marks that UNCERTAIN and no
//! published vector goes that deep). A number's JSON text is serde_json's: the literal as sent
//! when serde_json has `arbitrary_precision`, else the shortest text of the parsed value, which
//! is the same for integers and for the decimals JavaScript and Python clients write.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// The parameter string of the signature payload. `null`, absent or `{}` params give "".
/// Recursion depth is bounded by the value's nesting, which serde_json caps at 128 when parsing.
pub fn param_string(params: &Value) -> String {
    let mut out = String::new();
    if let Value::Object(_) = params {
        append_value(params, &mut out);
    }
    out
}

fn append_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => out.push_str(text),
        Value::Array(items) => {
            for item in items {
                append_value(item, out);
            }
        }
        Value::Object(map) => {
            // Sorted here rather than trusting the map's order, so the result does not depend
            // on whether serde_json keeps insertion order (`preserve_order`).
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|left, right| left.0.as_bytes().cmp(right.0.as_bytes()));
            for (key, item) in entries {
                out.push_str(key);
                append_value(item, out);
            }
        }
    }
}

/// The exact text that is signed.
pub fn payload(method: &str, id: u64, api_key: &str, params: &Value, nonce: u64) -> String {
    payload_as_sent(method, &id.to_string(), api_key, params, &nonce.to_string())
}

/// The signed text with `id` and `nonce` as the request wrote them (a number's digits or a
/// string's content).
pub fn payload_as_sent(
    method: &str,
    id_text: &str,
    api_key: &str,
    params: &Value,
    nonce_text: &str,
) -> String {
    format!(
        "{method}{id_text}{api_key}{}{nonce_text}",
        param_string(params)
    )
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
    hex_hmac(secret, &payload(method, id, api_key, params, nonce))
}

/// Lowercase hex HMAC-SHA256 of `payload` keyed with `secret`.
pub fn hex_hmac(secret: &str, payload: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(payload.as_bytes());
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

    #[test]
    fn nulls_numbers_booleans_and_nesting_flatten_as_the_javascript_sample() {
        let params: Value = serde_json::from_str(
            r#"{"limit": 100, "ratio": 0.1, "isolation_id": null, "flag": false,
                "legs": [{"side": "SELL", "exec_inst": ["POST_ONLY"], "extra": [1, null, true]}],
                "nested": {"z": "last", "a": {"deep": -7}}, "empty": [], "none": {}}"#,
        )
        .unwrap();
        assert_eq!(
            param_string(&params),
            "emptyflagfalseisolation_idnulllegsexec_instPOST_ONLYextra1nulltrueside\
             SELLlimit100nestedadeep-7zlastnoneratio0.1"
        );
    }

    #[test]
    fn id_and_nonce_are_signed_as_sent() {
        let params = serde_json::json!({"order_id": "1"});
        let as_numbers = payload("m", 7, "k", &params, 9);
        assert_eq!(as_numbers, payload_as_sent("m", "7", "k", &params, "9"));
        assert_eq!(
            payload_as_sent("m", "007", "k", &params, "9"),
            "m007korder_id19"
        );
    }
}
