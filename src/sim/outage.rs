//! The `/sim/outage` test hook: for a while the exchange answers no API request. Each one is
//! closed without an answer (`refuse`) or held open unanswered until the outage ends (`hang`,
//! so the client runs into its own timeout), and none reaches the engine, which keeps its book
//! and keeps matching; the `/sim/` hooks are served throughout. An outage starts at once or
//! right after the next request for a named method. Pure state: time comes in as `now`, and
//! the server asks what to do with each request; no socket is touched here.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::exchange::METHODS;
use super::wire::{ApiError, CODE_BAD_REQUEST};

/// Longest outage the hook accepts.
pub const OUTAGE_MS_MAX: u64 = 600_000;

/// What happens to an API request during an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutageMode {
    /// The connection is closed without an answer.
    Refuse,
    /// The connection is held open without an answer until the outage ends, then closed.
    Hang,
}

impl OutageMode {
    pub fn as_str(self) -> &'static str {
        match self {
            OutageMode::Refuse => "refuse",
            OutageMode::Hang => "hang",
        }
    }

    fn parse(text: &str) -> Option<OutageMode> {
        match text {
            "refuse" => Some(OutageMode::Refuse),
            "hang" => Some(OutageMode::Hang),
            _ => None,
        }
    }
}

/// An outage waiting for a request for `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Armed {
    after: &'static str,
    mode: OutageMode,
    duration: Duration,
    /// Whether that request still gets its answer (else it is applied, then unanswered).
    answer_trigger: bool,
}

/// The outage under way, armed or neither; a new `POST /sim/outage` replaces both.
#[derive(Debug, Default)]
pub struct Outage {
    armed: Option<Armed>,
    /// The mode of the outage under way and when it ends.
    active: Option<(OutageMode, Instant)>,
    /// API requests left unanswered by outages so far.
    unanswered: u64,
}

impl Outage {
    /// `POST /sim/outage {"seconds": S, "mode": "refuse"|"hang", "after": METHOD,
    /// "answer_trigger": BOOL}`: an outage of S seconds (0 ends the one under way), at once or
    /// after the next request for METHOD. Answers the new state.
    pub fn configure(
        &mut self,
        params: &Map<String, Value>,
        now: Instant,
    ) -> Result<Value, ApiError> {
        let duration = duration_param(params)?;
        let mode = match params.get("mode") {
            None | Some(Value::Null) => OutageMode::Refuse,
            Some(Value::String(text)) => OutageMode::parse(text)
                .ok_or_else(|| bad(format!("mode {text:?}: expected \"refuse\" or \"hang\"")))?,
            Some(_) => return Err(bad("mode must be a string")),
        };
        let after = match params.get("after") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(
                METHODS
                    .iter()
                    .find(|rule| rule.name == text)
                    .map(|rule| rule.name)
                    .ok_or_else(|| bad(format!("after {text:?}: no such method")))?,
            ),
            Some(_) => return Err(bad("after must be a method name")),
        };
        let answer_trigger = match params.get("answer_trigger") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(flag)) if after.is_some() => *flag,
            Some(Value::Bool(_)) => return Err(bad("answer_trigger needs after")),
            Some(_) => return Err(bad("answer_trigger must be true or false")),
        };
        if duration.is_zero() && after.is_some() {
            return Err(bad("an outage after a method needs seconds above 0"));
        }
        self.armed = None;
        self.active = None;
        match after {
            Some(after) => {
                self.armed = Some(Armed {
                    after,
                    mode,
                    duration,
                    answer_trigger,
                })
            }
            None if !duration.is_zero() => self.active = Some((mode, now + duration)),
            None => {}
        }
        Ok(self.state(now))
    }

    /// The mode of the outage under way at `now`, counting the request it swallows.
    pub fn intercept(&mut self, now: Instant) -> Option<OutageMode> {
        let mode = self.mode_at(now)?;
        self.unanswered += 1;
        Some(mode)
    }

    /// Called once an API request for `method` has been processed: starts the outage armed
    /// for it. Returns the mode when that request's own answer is withheld as well.
    pub fn after_request(&mut self, method: &str, now: Instant) -> Option<OutageMode> {
        let armed = self.armed.take_if(|armed| armed.after == method)?;
        self.active = Some((armed.mode, now + armed.duration));
        if armed.answer_trigger {
            return None;
        }
        self.unanswered += 1;
        Some(armed.mode)
    }

    /// Whether connections held by a `hang` outage must still be kept unanswered at `now`.
    pub fn holds_at(&self, now: Instant) -> bool {
        self.mode_at(now) == Some(OutageMode::Hang)
    }

    fn mode_at(&self, now: Instant) -> Option<OutageMode> {
        self.active
            .filter(|(_, until)| now < *until)
            .map(|(mode, _)| mode)
    }

    /// `GET /sim/outage`: off, armed (waiting for `after`) or active (with the time left).
    pub fn state(&self, now: Instant) -> Value {
        let unanswered = self.unanswered;
        if let Some((mode, until)) = self.active.filter(|(_, until)| now < *until) {
            let remaining_ms = u64::try_from(until.duration_since(now).as_millis()).unwrap_or(0);
            return json!({"state": "active", "mode": mode.as_str(),
                "remaining_ms": remaining_ms, "unanswered": unanswered});
        }
        match &self.armed {
            Some(armed) => json!({"state": "armed", "mode": armed.mode.as_str(),
                "after": armed.after, "seconds": armed.duration.as_secs_f64(),
                "answer_trigger": armed.answer_trigger, "unanswered": unanswered}),
            None => json!({"state": "off", "unanswered": unanswered}),
        }
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(CODE_BAD_REQUEST, message)
}

/// `seconds`: a number from 0 to `OUTAGE_MS_MAX / 1000`, to the millisecond.
fn duration_param(params: &Map<String, Value>) -> Result<Duration, ApiError> {
    let seconds = params
        .get("seconds")
        .and_then(Value::as_f64)
        .ok_or_else(|| bad("seconds is required (a number)"))?;
    let max_seconds = OUTAGE_MS_MAX as f64 / 1000.0;
    if !(0.0..=max_seconds).contains(&seconds) {
        return Err(bad(format!("seconds must be within 0..={max_seconds}")));
    }
    // In range, so the rounded product fits in u64.
    Ok(Duration::from_millis((seconds * 1000.0).round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("an object"),
        }
    }

    #[test]
    fn an_outage_swallows_requests_until_it_ends() {
        let start = Instant::now();
        let mut outage = Outage::default();
        let state = outage
            .configure(&params(json!({"seconds": 2, "mode": "hang"})), start)
            .unwrap();
        assert_eq!(state["state"], "active");
        assert_eq!(state["remaining_ms"], 2_000);
        assert_eq!(outage.intercept(start), Some(OutageMode::Hang));
        assert!(outage.holds_at(start + Duration::from_millis(1_999)));
        assert_eq!(outage.intercept(start + Duration::from_secs(2)), None);
        assert!(!outage.holds_at(start + Duration::from_secs(2)));
        assert_eq!(
            outage.state(start + Duration::from_secs(3))["unanswered"],
            1
        );
    }

    #[test]
    fn an_armed_outage_starts_after_its_method() {
        let start = Instant::now();
        let mut outage = Outage::default();
        let body = json!({"seconds": 1.5, "after": "private/advanced/create-oco"});
        assert_eq!(
            outage.configure(&params(body), start).unwrap()["state"],
            "armed"
        );
        assert_eq!(outage.intercept(start), None, "not started yet");
        assert_eq!(outage.after_request("private/create-order", start), None);
        assert_eq!(outage.state(start)["state"], "armed");
        let later = start + Duration::from_secs(5);
        assert_eq!(
            outage.after_request("private/advanced/create-oco", later),
            None,
            "the trigger is answered by default"
        );
        assert_eq!(
            outage.intercept(later + Duration::from_millis(1_499)),
            Some(OutageMode::Refuse)
        );
        assert_eq!(outage.intercept(later + Duration::from_millis(1_500)), None);
        assert_eq!(
            outage.after_request("private/advanced/create-oco", later),
            None,
            "fires once"
        );
    }

    #[test]
    fn the_trigger_can_lose_its_own_answer_and_seconds_0_ends_an_outage() {
        let start = Instant::now();
        let mut outage = Outage::default();
        let body = json!({"seconds": 10, "mode": "hang", "after": "private/create-order",
            "answer_trigger": false});
        outage.configure(&params(body), start).unwrap();
        assert_eq!(
            outage.after_request("private/create-order", start),
            Some(OutageMode::Hang)
        );
        assert!(outage.holds_at(start));
        let state = outage
            .configure(&params(json!({"seconds": 0})), start)
            .unwrap();
        assert_eq!(
            (&state["state"], &state["unanswered"]),
            (&json!("off"), &json!(1))
        );
        assert!(!outage.holds_at(start));
    }

    #[test]
    fn bad_outage_requests_are_refused() {
        let now = Instant::now();
        let mut outage = Outage::default();
        for body in [
            json!({}),
            json!({"seconds": -1}),
            json!({"seconds": 601}),
            json!({"seconds": "5"}),
            json!({"seconds": 5, "mode": "slow"}),
            json!({"seconds": 5, "after": "private/nothing"}),
            json!({"seconds": 5, "answer_trigger": false}),
            json!({"seconds": 0, "after": "private/create-order"}),
        ] {
            let error = outage.configure(&params(body.clone()), now).unwrap_err();
            assert_eq!(error.code, CODE_BAD_REQUEST, "{body}");
        }
        assert_eq!(outage.state(now)["state"], "off");
    }
}
