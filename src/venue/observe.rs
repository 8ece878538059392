//! What venues report about their own requests: the names of the two exchange metrics of the
//! metric contract, the Crypto.com v1 method names the paper venue counts its calls under, and
//! the bounded `code` label of an answer. Venues record through the `metrics` facade directly
//! (a no-op until `fillguard run` installs the exporter); this module decides nothing about
//! trading and must not import the shell, telemetry or configuration.

use std::borrow::Cow;
use std::time::Instant;

use super::VenueError;

/// Counter `{method, code}`: every request to the exchange (or call of the paper venue).
pub const EXCHANGE_REQUESTS_TOTAL: &str = "fillguard_exchange_requests_total";
/// Histogram `{method}`: how long each request took, in seconds.
pub const EXCHANGE_REQUEST_DURATION_SECONDS: &str = "fillguard_exchange_request_duration_seconds";

/// The Crypto.com v1 methods the agent calls, so their series exist before the first request.
pub const METHODS: [&str; 19] = [
    "public/get-instruments",
    "public/get-risk-parameters",
    "public/get-tickers",
    "public/get-candlestick",
    "private/user-balance",
    "private/create-order",
    "private/advanced/create-order",
    "private/advanced/create-oco",
    "private/advanced/create-otoco",
    "private/cancel-order",
    "private/advanced/cancel-order",
    "private/advanced/cancel-oco",
    "private/advanced/cancel-otoco",
    "private/get-order-detail",
    "private/advanced/get-order-detail",
    "private/get-open-orders",
    "private/advanced/get-open-orders",
    "private/get-order-history",
    "private/advanced/get-order-history",
];

/// The exchange code of a successful answer.
pub const CODE_OK: &str = "0";
/// Crypto.com's codes for the two refusals that `VenueError` names without keeping the code.
const CODE_DUPLICATE_CLIENT_OID: &str = "204";
const CODE_NOT_FOUND: &str = "40401";

/// The Crypto.com v1 response codes the `code` label keeps as they are (the documented table);
/// any other code is labelled `other`, so an exchange answering with new codes cannot grow
/// the label set without bound. The log and the alert keep the code itself.
const KNOWN_CODES: &[i64] = &[
    0, 40001, 40002, 40003, 40004, 40005, 40006, 40101, 40102, 40103, 40104, 40107, 40401, 40801,
    42901, 50001, 204, 205, 208, 209, 212, 213, 218, 219, 220, 221, 223, 224, 229, 230, 306, 307,
    308, 309, 314, 315, 316, 318, 321, 415, 606, 1110, 43003, 43004, 43005, 43012,
];

/// The `code` label of a failed request: the exchange's own code where the answer had a
/// documented one, otherwise a small fixed word, so the label set stays bounded.
pub fn code_label(error: &VenueError) -> Cow<'static, str> {
    if let Some(code) = error.code() {
        if KNOWN_CODES.contains(&code) {
            return Cow::Owned(code.to_string());
        }
        return Cow::Borrowed("other");
    }
    Cow::Borrowed(match error {
        VenueError::Timeout(_) => "timeout",
        VenueError::Transport(_) => "transport",
        VenueError::Server { status, .. } => http_class(*status),
        VenueError::RateLimited(_) => "rate_limited",
        VenueError::NotFound => CODE_NOT_FOUND,
        VenueError::DuplicateClientOid(_) => CODE_DUPLICATE_CLIENT_OID,
        VenueError::Malformed(_) => "malformed",
        // Never a request (nothing was sent), but a bounded word should one be counted.
        VenueError::Deferred(_) => "deferred",
        // Variants with a code returned above.
        VenueError::Rejected { .. } | VenueError::BelowMinimum { .. } | VenueError::Auth { .. } => {
            "other"
        }
    })
}

/// `http_5xx`-style label of an HTTP status without an exchange code.
pub fn http_class(status: u16) -> &'static str {
    match status {
        100..=199 => "http_1xx",
        200..=299 => "http_2xx",
        300..=399 => "http_3xx",
        400..=499 => "http_4xx",
        500..=599 => "http_5xx",
        _ => "http_other",
    }
}

/// The `code` label of an outcome.
pub fn outcome_label<T>(outcome: &Result<T, VenueError>) -> Cow<'static, str> {
    match outcome {
        Ok(_) => Cow::Borrowed(CODE_OK),
        Err(error) => code_label(error),
    }
}

/// Counts one request of `method` answered with `code` and records how long it took.
pub fn record_request(method: &str, code: Cow<'static, str>, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    metrics::counter!(EXCHANGE_REQUESTS_TOTAL, "method" => method.to_string(), "code" => code)
        .increment(1);
    metrics::histogram!(EXCHANGE_REQUEST_DURATION_SECONDS, "method" => method.to_string())
        .record(seconds);
}

/// Runs one paper-venue call and records it under `method` with its code.
pub fn timed<T>(
    method: &'static str,
    call: impl FnOnce() -> Result<T, VenueError>,
) -> Result<T, VenueError> {
    let started = Instant::now();
    let outcome = call();
    record_request(method, outcome_label(&outcome), started);
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_come_from_the_exchange_where_it_gave_one() {
        let rejected = VenueError::Rejected {
            code: 306,
            message: "insufficient balance".into(),
        };
        assert_eq!(code_label(&rejected), "306");
        let auth = VenueError::Auth {
            code: 40101,
            message: "bad key".into(),
        };
        assert_eq!(code_label(&auth), "40101");
        assert_eq!(code_label(&VenueError::NotFound), "40401");
        let unknown = VenueError::Rejected {
            code: 987_654_321,
            message: "new".into(),
        };
        assert_eq!(code_label(&unknown), "other");
        assert_eq!(
            code_label(&VenueError::DuplicateClientOid("fg-1".into())),
            "204"
        );
        assert_eq!(outcome_label::<()>(&Ok(())), "0");
    }

    #[test]
    fn failures_without_a_code_get_a_fixed_word() {
        assert_eq!(code_label(&VenueError::Timeout("x".into())), "timeout");
        assert_eq!(code_label(&VenueError::Transport("x".into())), "transport");
        let server = VenueError::Server {
            status: 503,
            message: "down".into(),
        };
        assert_eq!(code_label(&server), "http_5xx");
        let proxy = VenueError::Server {
            status: 404,
            message: "no route".into(),
        };
        assert_eq!(code_label(&proxy), "http_4xx");
        assert_eq!(
            code_label(&VenueError::RateLimited("x".into())),
            "rate_limited"
        );
        assert_eq!(code_label(&VenueError::Malformed("x".into())), "malformed");
        assert_eq!(http_class(0), "http_other");
    }
}
