//! HTTP transport to Crypto.com Exchange v1: one ureq agent with explicit timeouts, public GETs,
//! signed private POSTs (reference §2), client-side rate limits and the bounded retry of
//! read-only calls on 429. Each attempt draws from the turn's `Budget`: it is sent only when its
//! back-off, its rate-limit wait and its whole timeout fit in what is left, and is otherwise
//! answered `VenueError::Deferred` without touching the network. Logs and counts (`venue::observe`) method, HTTP status, code and
//! duration of every request; never the API key, the secret or a signature.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tracing::debug;

use super::limits::{RateLimiter, WAIT_MAX};
use super::{sign, wire};
use crate::core::clock::Clock;
use crate::venue::{Budget, VenueError, observe};

/// Longest connect phase, whatever the total timeout.
const CONNECT_TIMEOUT_MAX: Duration = Duration::from_secs(5);

/// Back-off before each retry of a read-only call answered with 429; its length bounds the
/// retries.
pub(super) const RATE_LIMIT_BACKOFFS: [Duration; 2] =
    [Duration::from_millis(100), Duration::from_millis(400)];

/// Request id: increasing over the whole process (reference §2.1: echoed back, integer).
static NEXT_REQUEST_ID: AtomicU64 = AtomicU64::new(1);

/// What a call may do when rate limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retry {
    /// Reads: retried after each of `RATE_LIMIT_BACKOFFS` on 429.
    OnRateLimit,
    /// Creates and cancels: never retried automatically.
    Never,
}

pub(super) struct Transport {
    agent: ureq::Agent,
    base_url: String,
    api_key: String,
    api_secret: String,
    limiter: RateLimiter,
    /// The wall clock the nonces are read from.
    wall: Rc<dyn Clock>,
    /// The longest one attempt takes once sent (ureq's global timeout).
    timeout: Duration,
    /// What is left of the current loop turn (`Budget::unlimited` until the shell sets one).
    budget: Budget,
}

impl Transport {
    pub fn new(
        base_url: &str,
        api_key: &str,
        api_secret: &str,
        timeout: Duration,
        wall: Rc<dyn Clock>,
    ) -> Transport {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .timeout_connect(Some(timeout.min(CONNECT_TIMEOUT_MAX)))
            .timeout_recv_response(Some(timeout))
            .timeout_recv_body(Some(timeout))
            .max_redirects(0)
            .user_agent(concat!("fillguard/", env!("CARGO_PKG_VERSION")))
            .build();
        Transport {
            agent: ureq::Agent::new_with_config(config),
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key: api_key.to_string(),
            api_secret: api_secret.to_string(),
            limiter: RateLimiter::default(),
            wall,
            timeout,
            budget: Budget::unlimited(),
        }
    }

    pub fn set_budget(&mut self, budget: Budget) {
        self.budget = budget;
    }

    /// Whether an attempt of `method` after `pause` (a back-off) fits in the budget: the
    /// pause, the wait for a free rate-limit slot after it and the whole timeout.
    fn admit(&mut self, method: &str, pause: Duration) -> Result<(), VenueError> {
        let now = Instant::now();
        let wait = self.limiter.wait_for(method, now + pause).min(WAIT_MAX);
        self.budget.admit(method, pause + wait + self.timeout, now)
    }

    /// `GET {base}/{method}?query`; public methods are always read-only.
    pub fn public(&mut self, method: &str, query: &[(&str, String)]) -> Result<Value, VenueError> {
        self.with_retry(method, Retry::OnRateLimit, |transport| {
            let url = format!("{}/{method}", transport.base_url);
            let mut request = transport.agent.get(&url);
            for (key, value) in query {
                request = request.query(*key, value);
            }
            let started = Instant::now();
            let answer = request.call();
            finish(method, started, answer, None)
        })
    }

    /// Signed `POST {base}/{method}` with `params`. `client_oid` names the order of a create
    /// call, for `DuplicateClientOid`.
    pub fn private(
        &mut self,
        method: &str,
        params: Map<String, Value>,
        client_oid: Option<&str>,
        retry: Retry,
    ) -> Result<Value, VenueError> {
        let params = Value::Object(params);
        self.with_retry(method, retry, |transport| {
            let body = transport.signed_body(method, &params);
            let url = format!("{}/{method}", transport.base_url);
            let started = Instant::now();
            let answer = transport
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(body.as_str());
            finish(method, started, answer, client_oid)
        })
    }

    /// The request envelope with a fresh id and nonce, signed (reference §2.1, §2.2).
    fn signed_body(&self, method: &str, params: &Value) -> String {
        let id = NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed);
        let nonce = u64::try_from(self.wall.now_ms()).unwrap_or(0);
        let sig = sign::signature(&self.api_secret, method, id, &self.api_key, params, nonce);
        json!({
            "id": id,
            "method": method,
            "api_key": self.api_key,
            "params": params,
            "nonce": nonce,
            "sig": sig,
        })
        .to_string()
    }

    /// Sends with `send`, retrying read-only calls after each of `RATE_LIMIT_BACKOFFS` when
    /// answered 429. Every attempt is admitted by the budget first (`admit`); an attempt that
    /// does not fit is not made and the call is `Deferred`, so retries stop at the budget.
    fn with_retry(
        &mut self,
        method: &str,
        retry: Retry,
        mut send: impl FnMut(&mut Transport) -> Result<Value, VenueError>,
    ) -> Result<Value, VenueError> {
        let backoffs: &[Duration] = match retry {
            Retry::OnRateLimit => &RATE_LIMIT_BACKOFFS,
            Retry::Never => &[],
        };
        let mut pause = Duration::ZERO;
        let attempts = backoffs.iter().copied().map(Some).chain([None]);
        for (attempt, next_backoff) in attempts.enumerate() {
            if let Err(deferred) = self.admit(method, pause) {
                debug!(method, attempt, reason = %deferred, "request deferred to the next turn");
                return Err(deferred);
            }
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
            self.limiter.acquire(method)?;
            match (send(self), next_backoff) {
                (Err(VenueError::RateLimited(message)), Some(backoff)) => {
                    debug!(method, message = %message, "rate limited, backing off");
                    pause = backoff;
                }
                (outcome, _) => return outcome,
            }
        }
        // Not reached: the last attempt has no back-off and returns above.
        Err(VenueError::RateLimited(format!("{method}: retries spent")))
    }
}

/// Reads the answer, maps it and logs the request.
fn finish(
    method: &str,
    started: Instant,
    answer: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    client_oid: Option<&str>,
) -> Result<Value, VenueError> {
    let (http_status, outcome) = match answer {
        Ok(mut response) => {
            let http_status = response.status().as_u16();
            let outcome = response
                .body_mut()
                .read_to_string()
                .map_err(|error| transport_error(method, error))
                .and_then(|body| wire::parse_envelope(http_status, &body, client_oid));
            (http_status, outcome)
        }
        Err(error) => (0, Err(transport_error(method, error))),
    };
    let code = match &outcome {
        Ok(_) => 0,
        Err(error) => error.code().unwrap_or(-1),
    };
    let label = match &outcome {
        // A 429 without an envelope names no exchange code: its HTTP class says what happened.
        Err(VenueError::RateLimited(_)) if http_status == 429 => {
            observe::http_class(http_status).into()
        }
        _ => observe::outcome_label(&outcome),
    };
    observe::record_request(method, label, started);
    debug!(
        method,
        http_status,
        code,
        duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "cryptocom request"
    );
    outcome
}

/// Timeouts stay distinct from other transport failures: both are ambiguous for a create.
pub(super) fn transport_error(method: &str, error: ureq::Error) -> VenueError {
    match error {
        ureq::Error::Timeout(which) => VenueError::Timeout(format!("{method}: {which}")),
        ureq::Error::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            VenueError::Timeout(format!("{method}: {io}"))
        }
        other => VenueError::Transport(format!("{method}: {other}")),
    }
}
