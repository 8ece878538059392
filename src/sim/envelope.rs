//! The signed envelope of a private request (reference §2): parsed once, kept as sent, and
//! verified over exactly what the client sent. `params` keep their raw form (a serde_json
//! `Value`, `null`s, numbers, booleans and nesting included), and `id` and `nonce` are signed as
//! the request wrote them, so any client that signs what it sends is accepted. Pure: the
//! server's time is an argument.

use serde_json::{Map, Value};

use crate::core::domain::Millis;
use crate::venue::cryptocom::sign;

use super::wire::{
    ApiError, CODE_BAD_REQUEST, CODE_INVALID_NONCE, CODE_INVALID_REQUEST, CODE_UNAUTHORIZED,
};

/// Largest |nonce − server time| accepted (reference §2.4).
pub const NONCE_WINDOW_MS: u64 = 60_000;

/// A verified private request.
pub struct Envelope {
    /// The request's `id` as sent, echoed in the answer.
    pub id: Value,
    pub nonce: u64,
    /// The params object (`{}` when the request had none or `null`).
    pub params: Map<String, Value>,
}

/// Who may call, and when: the credentials and the server's time.
pub struct Credentials<'a> {
    pub api_key: &'a str,
    pub api_secret: &'a str,
    pub now_ms: Millis,
}

/// Parses and verifies the envelope of `method`. On failure, the id to echo (null when
/// unreadable) and the error: 40001 for a malformed envelope, 40003 for a method that does not
/// match the path, 40101 for an unknown key, a bad signature or a nonce that is not an integer,
/// 40102 for a nonce more than `NONCE_WINDOW_MS` off.
pub fn authenticate(
    method: &str,
    body: &[u8],
    credentials: &Credentials<'_>,
) -> Result<Envelope, (Value, ApiError)> {
    let parsed: Value = serde_json::from_slice(body).map_err(|_| {
        let error = ApiError::new(CODE_BAD_REQUEST, "body is not JSON");
        (Value::Null, error)
    })?;
    let Value::Object(mut object) = parsed else {
        let error = ApiError::new(CODE_BAD_REQUEST, "body is not an object");
        return Err((Value::Null, error));
    };
    let id = object.get("id").cloned().unwrap_or(Value::Null);
    let fail = |code: i64, message: &str| (id.clone(), ApiError::new(code, message));
    let id_text = whole_number_text(object.get("id"))
        .ok_or_else(|| fail(CODE_BAD_REQUEST, "id must be a non-negative integer"))?;
    if object.get("method").and_then(Value::as_str) != Some(method) {
        return Err(fail(CODE_INVALID_REQUEST, "method does not match the path"));
    }
    let raw_params = object.remove("params").unwrap_or(Value::Null);
    let params = match &raw_params {
        Value::Null => Map::new(),
        Value::Object(map) => map.clone(),
        _ => return Err(fail(CODE_BAD_REQUEST, "params must be an object")),
    };
    if object.get("api_key").and_then(Value::as_str) != Some(credentials.api_key) {
        return Err(fail(CODE_UNAUTHORIZED, "unknown api_key"));
    }
    let nonce_text = whole_number_text(object.get("nonce"))
        .ok_or_else(|| fail(CODE_UNAUTHORIZED, "nonce must be an integer"))?;
    let nonce = nonce_text
        .parse::<u64>()
        .map_err(|_| fail(CODE_UNAUTHORIZED, "nonce is out of range"))?;
    let payload = sign::payload_as_sent(
        method,
        &id_text,
        credentials.api_key,
        &raw_params,
        &nonce_text,
    );
    let expected = sign::hex_hmac(credentials.api_secret, &payload);
    let received = object.get("sig").and_then(Value::as_str).unwrap_or("");
    if !sign::verify(&expected, received) {
        return Err(fail(CODE_UNAUTHORIZED, "bad signature"));
    }
    let skew_ms = i128::from(nonce) - i128::from(credentials.now_ms);
    if skew_ms.unsigned_abs() > u128::from(NONCE_WINDOW_MS) {
        return Err(fail(CODE_INVALID_NONCE, "nonce is more than 60 s off"));
    }
    Ok(Envelope { id, nonce, params })
}

/// The text of a non-negative integer given as a JSON number or a string of digits, exactly as
/// the request wrote it (this text is what the client signed).
fn whole_number_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Number(number) if number.as_u64().is_some() => Some(number.to_string()),
        Value::String(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            text.parse::<u64>().ok().map(|_| text.clone())
        }
        _ => None,
    }
}
