//! What the receiver answers: one `Outcome` per request, its HTTP status, its one-line JSON
//! body (`{"outcome": …, "reason": …}`, with the field of a malformed body and the inbox id of
//! an accepted signal) and its label in `fillguard_webhook_requests_total{outcome}`. The
//! bodies never echo a secret, a token or a signature.

use serde_json::json;

use super::check::AuthFailure;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Stored in the inbox under this id.
    Accepted {
        signal: i64,
    },
    Malformed {
        field: String,
        reason: String,
    },
    Unauthorized(AuthFailure),
    /// The signal id was seen before (stored, so also after a restart).
    Replay {
        id: String,
    },
    TooLarge {
        limit: u32,
    },
    RateLimited {
        retry_after_seconds: u64,
    },
    NotFound,
    MethodNotAllowed,
    /// The body did not arrive within the read timeout.
    Timeout,
    /// The inbox could not be written (the database refused); the sender may retry.
    Unavailable,
}

/// Label values of `fillguard_webhook_requests_total{outcome}`, every `Outcome`'s and
/// `over_capacity` (a connection closed unread because `max_connections` were open).
pub const OUTCOME_LABELS: [&str; 11] = [
    "accepted",
    "malformed",
    "unauthorized",
    "replay",
    "too_large",
    "rate_limited",
    "not_found",
    "method_not_allowed",
    "timeout",
    "unavailable",
    "over_capacity",
];

impl Outcome {
    pub fn status(&self) -> u16 {
        match self {
            Outcome::Accepted { .. } => 202,
            Outcome::Malformed { .. } => 400,
            Outcome::Unauthorized(_) => 401,
            Outcome::NotFound => 404,
            Outcome::MethodNotAllowed => 405,
            Outcome::Timeout => 408,
            Outcome::Replay { .. } => 409,
            Outcome::TooLarge { .. } => 413,
            Outcome::RateLimited { .. } => 429,
            Outcome::Unavailable => 503,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Accepted { .. } => "accepted",
            Outcome::Malformed { .. } => "malformed",
            Outcome::Unauthorized(_) => "unauthorized",
            Outcome::Replay { .. } => "replay",
            Outcome::TooLarge { .. } => "too_large",
            Outcome::RateLimited { .. } => "rate_limited",
            Outcome::NotFound => "not_found",
            Outcome::MethodNotAllowed => "method_not_allowed",
            Outcome::Timeout => "timeout",
            Outcome::Unavailable => "unavailable",
        }
    }

    /// The one-line JSON body, newline-terminated.
    pub fn body(&self) -> String {
        let outcome = self.label();
        let value = match self {
            Outcome::Accepted { signal } => json!({
                "outcome": outcome,
                "signal": signal,
                "reason": "queued in the inbox; the agent takes it on its next signal check",
            }),
            Outcome::Malformed { field, reason } => json!({
                "outcome": outcome,
                "field": field,
                "reason": format!("{field}: {reason}"),
            }),
            Outcome::Unauthorized(failure) => {
                json!({"outcome": outcome, "reason": failure.reason()})
            }
            Outcome::Replay { id } => json!({
                "outcome": outcome,
                "reason": format!("signal id {id:?} was seen before; it is never queued twice"),
            }),
            Outcome::TooLarge { limit } => json!({
                "outcome": outcome,
                "reason": format!("the body is larger than {limit} bytes"),
            }),
            Outcome::RateLimited {
                retry_after_seconds,
            } => json!({
                "outcome": outcome,
                "reason": format!("more requests than signals.webhook.rate_per_minute; retry in {retry_after_seconds} s"),
            }),
            Outcome::NotFound => json!({
                "outcome": outcome,
                "reason": "signals go to POST /signal",
            }),
            Outcome::MethodNotAllowed => json!({
                "outcome": outcome,
                "reason": "signals are sent with POST",
            }),
            Outcome::Timeout => json!({
                "outcome": outcome,
                "reason": "the body did not arrive in time",
            }),
            Outcome::Unavailable => json!({
                "outcome": outcome,
                "reason": "the inbox could not be written; retry with the same id",
            }),
        };
        format!("{value}\n")
    }
}
