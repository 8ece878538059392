//! The request checks that need no store: which path a request took, its signature (HMAC-SHA256
//! of the raw body with the shared secret, `X-Fillguard-Signature: sha256=<hex>`) or its path
//! token, each compared in constant time, and whether its timestamp is within ±60 s of the
//! receiver's clock. Pure: the clock's reading comes in as an argument. Never logs or returns a
//! secret, a token or a signature.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The path of signed requests; token requests add `/<token>`.
pub const SIGNAL_PATH: &str = "/signal";
/// The header that carries `sha256=<hex>`.
pub const SIGNATURE_HEADER: &str = "x-fillguard-signature";
const SIGNATURE_PREFIX: &str = "sha256=";
/// A signal's timestamp may be this far from the receiver's clock, either way.
pub const TIMESTAMP_TOLERANCE_MS: i64 = 60_000;
/// Hex characters of a SHA-256 MAC.
const SIGNATURE_HEX_LENGTH: usize = 64;

/// Where a request went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/signal`: authenticated by the signature header.
    Signed,
    /// `/signal/<token>` while the path-token mode is on.
    Token(&'a str),
    /// Anything else (also `/signal/<token>` with the mode off).
    Unknown,
}

pub fn route(path: &str, path_token: bool) -> Route<'_> {
    if path == SIGNAL_PATH {
        return Route::Signed;
    }
    match path
        .strip_prefix(SIGNAL_PATH)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(token) if path_token && !token.is_empty() => Route::Token(token),
        _ => Route::Unknown,
    }
}

/// Why a request was not authenticated, as the response says it (the reason never echoes what
/// was sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    MissingSignature,
    MalformedSignature,
    BadSignature,
    BadToken,
}

impl AuthFailure {
    pub fn reason(self) -> &'static str {
        match self {
            AuthFailure::MissingSignature => "the X-Fillguard-Signature header is missing",
            AuthFailure::MalformedSignature => {
                "the X-Fillguard-Signature header must be sha256= and 64 hex characters"
            }
            AuthFailure::BadSignature => {
                "the signature does not match the body (HMAC-SHA256 with the shared secret)"
            }
            AuthFailure::BadToken => "the path token does not match",
        }
    }
}

/// Checks `header` against HMAC-SHA256(`secret`, `body`) in constant time.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&[u8]>,
) -> Result<(), AuthFailure> {
    let header = header.ok_or(AuthFailure::MissingSignature)?;
    let hex = std::str::from_utf8(header)
        .ok()
        .map(str::trim)
        .and_then(|text| strip_prefix_ignore_case(text, SIGNATURE_PREFIX))
        .filter(|hex| hex.len() == SIGNATURE_HEX_LENGTH)
        .ok_or(AuthFailure::MalformedSignature)?;
    let expected = decode_hex(hex).ok_or(AuthFailure::MalformedSignature)?;
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| AuthFailure::BadSignature)
}

/// Compares the presented path token with the configured one in constant time: both are put
/// through HMAC under the configured token, and the two tags compared by `verify_slice`, so
/// neither the content nor the length of the token shows in the time taken.
pub fn verify_token(expected: &str, presented: &str) -> Result<(), AuthFailure> {
    let tag = |text: &str| {
        let mut mac =
            HmacSha256::new_from_slice(expected.as_bytes()).expect("HMAC takes any key length");
        mac.update(text.as_bytes());
        mac
    };
    let wanted = tag(expected).finalize().into_bytes();
    tag(presented)
        .verify_slice(&wanted)
        .map_err(|_| AuthFailure::BadToken)
}

/// The signature a sender puts in the header: `sha256=` and the lowercase hex of the MAC.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("{SIGNATURE_PREFIX}{hex}")
}

/// `Ok` when `timestamp_ms` is within ±60 s of `now_ms`; else the distance in whole seconds,
/// positive for a timestamp in the future.
pub fn check_timestamp(timestamp_ms: i64, now_ms: i64) -> Result<(), i64> {
    let distance_ms = timestamp_ms.saturating_sub(now_ms);
    if distance_ms.saturating_abs() <= TIMESTAMP_TOLERANCE_MS {
        Ok(())
    } else {
        Err(distance_ms / 1000)
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let digit = |byte: u8| (byte as char).to_digit(16);
    hex.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [high, low] => Some((digit(*high)? * 16 + digit(*low)?) as u8),
            _ => None,
        })
        .collect()
}
