//! The simulated exchange behind the HTTP layer: routes one parsed request to a public method,
//! a private method (after verifying the signed envelope) or a `/sim/` test hook, applies rate
//! limits, injected faults and outages (`/sim/outage`), and answers with a status and a body
//! (or with silence). It owns the engine and advances it to the simulated clock before every
//! request. It does no socket IO.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::core::domain::{Millis, OrderReport};
use crate::venue::paper::engine::EngineReject;
use crate::venue::paper::{Engine, FillBehavior, PaperSettings, TestHooks, WARMUP_MS};

use super::SimOptions;
use super::envelope::{self, Credentials, Envelope};
use super::faults::{self, FaultDraw, FaultSpec, SplitMix64};
use super::fill_delay::{self, FillDelay};
use super::http::Request;
use super::outage::{Outage, OutageMode};
use super::public;
use super::truth::RequestLog;
use super::wire::{
    self, ApiError, CODE_BAD_REQUEST, CODE_INTERNAL, CODE_INVALID_REQUEST, CODE_METHOD_NOT_FOUND,
    CODE_TOO_MANY_REQUESTS,
};
/// Nanoseconds per millisecond, for `create_time_ns`.
pub const NANOS_PER_MILLI: u64 = 1_000_000;
/// The path segment after which the method name starts.
const API_PREFIX: &str = "/exchange/v1/";

/// One method the simulator serves, with its rate limit (reference §6).
pub struct MethodRule {
    pub name: &'static str,
    pub requests_max: usize,
    pub window_ms: u64,
    /// Creates or cancels (subject to `lost`); otherwise read-only (subject to `malformed`).
    pub mutating: bool,
}

const fn rule(
    name: &'static str,
    requests_max: usize,
    window_ms: u64,
    mutating: bool,
) -> MethodRule {
    MethodRule {
        name,
        requests_max,
        window_ms,
        mutating,
    }
}

/// Advanced methods share the limit of their plain counterpart; the reference does not list
/// them separately (UNCERTAIN there), the other private methods get 3 per 100 ms.
pub const METHODS: [MethodRule; 25] = [
    rule("public/get-instruments", 100, 1_000, false),
    rule("public/get-risk-parameters", 100, 1_000, false),
    rule("public/get-tickers", 100, 1_000, false),
    rule("public/get-candlestick", 100, 1_000, false),
    rule("private/create-order", 15, 100, true),
    rule("private/cancel-order", 15, 100, true),
    rule("private/cancel-all-orders", 15, 100, true),
    rule("private/amend-order", 3, 100, true),
    rule("private/get-order-detail", 30, 100, false),
    rule("private/get-open-orders", 3, 100, false),
    rule("private/get-order-history", 1, 1_000, false),
    rule("private/get-trades", 1, 1_000, false),
    rule("private/user-balance", 3, 100, false),
    rule("private/get-fee-rate", 3, 100, false),
    rule("private/get-instrument-fee-rate", 3, 100, false),
    rule("private/advanced/create-order", 15, 100, true),
    rule("private/advanced/create-oco", 3, 100, true),
    rule("private/advanced/create-otoco", 3, 100, true),
    rule("private/advanced/cancel-order", 15, 100, true),
    rule("private/advanced/cancel-oco", 3, 100, true),
    rule("private/advanced/cancel-otoco", 3, 100, true),
    rule("private/advanced/cancel-all-orders", 15, 100, true),
    rule("private/advanced/get-order-detail", 30, 100, false),
    rule("private/advanced/get-open-orders", 3, 100, false),
    rule("private/advanced/get-order-history", 1, 1_000, false),
];

/// Sliding-window request counts per method; each window holds at most `requests_max` times.
#[derive(Default)]
struct RateLimiter {
    recent: BTreeMap<&'static str, VecDeque<Instant>>,
}

impl RateLimiter {
    /// Counts the request and tells whether it is within the limit.
    fn admit(&mut self, rule: &MethodRule, now: Instant) -> bool {
        let window = std::time::Duration::from_millis(rule.window_ms);
        let times = self.recent.entry(rule.name).or_default();
        while times
            .front()
            .is_some_and(|time| now.duration_since(*time) >= window)
        {
            times.pop_front();
        }
        if times.len() >= rule.requests_max {
            return false;
        }
        times.push_back(now);
        true
    }
}

/// Engine time: `start` plus the wall time elapsed since, times `speed`.
struct SimClock {
    wall_start: Instant,
    engine_start_ms: Millis,
    speed: u32,
}

impl SimClock {
    fn now_ms(&self) -> Millis {
        let elapsed_ms = Millis::try_from(self.wall_start.elapsed().as_millis()).unwrap_or(0);
        self.engine_start_ms
            .saturating_add(elapsed_ms.saturating_mul(Millis::from(self.speed)))
    }
}

pub fn wall_now_ms() -> Millis {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Millis::try_from(since_epoch.as_millis()).unwrap_or(Millis::MAX)
}

/// What to do with the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Respond {
        status: u16,
        body: String,
    },
    /// Close the connection without answering (the `lost` fault, a `refuse` outage).
    Drop,
    /// Keep the connection open without answering while a `hang` outage lasts, then close it.
    Hold,
}

/// An outcome and the latency to add before it.
pub struct Reply {
    pub outcome: Outcome,
    pub latency_ms: u64,
}

pub struct Simulator {
    pub(super) engine: Engine,
    pub(super) settings: PaperSettings,
    pub(super) faults: FaultSpec,
    clock: SimClock,
    stream: SplitMix64,
    api_key: String,
    api_secret: String,
    limits: RateLimiter,
    /// When each order was created, by order id, in ns of engine time: the creation's ms plus
    /// a counter that keeps the times of orders created in one ms distinct and in creation
    /// order, so `create_time_ns` pages history exactly.
    pub(super) created_ns: BTreeMap<String, u64>,
    last_created_ns: u64,
    /// `OCO` or `OTOCO`, by list id.
    pub(super) list_types: BTreeMap<String, &'static str>,
    /// The `/sim/outage` hook's outage, under way or armed.
    outage: Outage,
    /// Each MARKET order's fill delay, drawn from `delay_stream`; `None` keeps the engine's.
    fill_delay: Option<FillDelay>,
    delay_stream: SplitMix64,
    /// Every exchange request that reached the simulator (`/sim/requests`).
    requests: RequestLog,
}

impl Simulator {
    /// Builds the engine with `WARMUP_MS` of price history before now, seeded by
    /// `options.seed`, with the engine-side faults applied to every symbol.
    pub fn new(options: &SimOptions) -> Result<Simulator, String> {
        if options.speed == 0 {
            return Err("speed must be at least 1".to_string());
        }
        if options.fill_delay.is_some() && options.faults.fill_delay_ms.is_some() {
            return Err(
                "a fill-delay distribution and the fill_delay fault exclude each other".to_string(),
            );
        }
        let mut settings = PaperSettings::from(&options.paper);
        settings.seed = options.seed;
        // Read together, so that engine time is wall time (at speed 1) however long the warm-up
        // below takes.
        let (start_ms, wall_start) = (wall_now_ms(), Instant::now());
        let mut engine = Engine::new(&settings, start_ms - WARMUP_MS)?;
        engine.advance_to(start_ms);
        if let Some(behavior) = engine_behavior(&options.faults)? {
            let mut hooks = TestHooks::new(&mut engine);
            for instrument in &settings.instruments {
                hooks.set_behavior(&instrument.symbol, behavior.clone());
            }
        }
        Ok(Simulator {
            engine,
            settings,
            faults: options.faults.clone(),
            clock: SimClock {
                wall_start,
                engine_start_ms: start_ms,
                speed: options.speed,
            },
            stream: SplitMix64::new(options.seed),
            api_key: options.api_key.clone(),
            api_secret: options.api_secret.clone(),
            limits: RateLimiter::default(),
            created_ns: BTreeMap::new(),
            last_created_ns: 0,
            list_types: BTreeMap::new(),
            outage: Outage::default(),
            fill_delay: options.fill_delay.clone(),
            delay_stream: SplitMix64::new(options.seed ^ fill_delay::STREAM_SALT),
            requests: RequestLog::default(),
        })
    }

    pub fn handle(&mut self, request: &Request) -> Reply {
        let now_ms = self.clock.now_ms();
        self.engine.advance_to(now_ms);
        if let Some(hook) = request.path.strip_prefix("/sim/") {
            return Reply {
                outcome: self.handle_hook(hook, request, now_ms),
                latency_ms: 0,
            };
        }
        let reply = self.handle_exchange(request, now_ms);
        let method = request
            .path
            .find(API_PREFIX)
            .map_or("", |start| &request.path[start + API_PREFIX.len()..]);
        let status = match &reply.outcome {
            Outcome::Respond { status, .. } => *status,
            Outcome::Drop | Outcome::Hold => 0,
        };
        self.requests.record(now_ms, method, status, &request.body);
        reply
    }

    /// An exchange request (anything outside `/sim/`), during an outage or not.
    fn handle_exchange(&mut self, request: &Request, now_ms: Millis) -> Reply {
        let immediate = |outcome| Reply {
            outcome,
            latency_ms: 0,
        };
        // During an outage no request reaches the exchange, so none draws a fault either.
        if let Some(mode) = self.outage.intercept(Instant::now()) {
            return immediate(unanswered(mode));
        }
        let Some(start) = request.path.find(API_PREFIX) else {
            let error = ApiError::new(CODE_METHOD_NOT_FOUND, "no such path");
            return immediate(respond(404, wire::error_body(&Value::Null, "", &error)));
        };
        let method = &request.path[start + API_PREFIX.len()..];
        // Drawn for every exchange request, so the fault sequence depends only on the seed and
        // the request sequence.
        let draw = faults::draw(&self.faults, &mut self.stream);
        let mut outcome = if method.starts_with("public/") {
            self.handle_public(method, request, draw)
        } else {
            self.handle_private(method, request, draw, now_ms)
        };
        if let Some(mode) = self.outage.after_request(method, Instant::now()) {
            // The outage began with this request, after it was applied.
            outcome = unanswered(mode);
        }
        Reply {
            outcome,
            latency_ms: self.faults.latency_ms,
        }
    }

    fn handle_public(&mut self, method: &str, request: &Request, draw: FaultDraw) -> Outcome {
        let id = json!(-1);
        let rule = match self.check_call(method, request.method == "GET", CODE_INTERNAL) {
            Ok(rule) => rule,
            Err(error) => return respond_error(&id, method, &error),
        };
        if let Some(outcome) = injected_failure(&id, method, draw) {
            return outcome;
        }
        let result = public::dispatch(&self.engine, &self.settings, method, request);
        finish_read(&id, method, result, draw.malformed && !rule.mutating)
    }

    fn handle_private(
        &mut self,
        method: &str,
        request: &Request,
        draw: FaultDraw,
        now_ms: Millis,
    ) -> Outcome {
        let known = self.check_call(method, request.method == "POST", CODE_INVALID_REQUEST);
        let rule = match known {
            Ok(rule) => rule,
            Err(error) => return respond_error(&Value::Null, method, &error),
        };
        let envelope = match self.authenticate(method, &request.body) {
            Ok(envelope) => envelope,
            Err((id, error)) => return respond_error(&id, method, &error),
        };
        if !self.limits.admit(rule, Instant::now()) {
            let error = ApiError::new(CODE_TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS");
            return respond_error(&envelope.id, method, &error);
        }
        if let Some(outcome) = injected_failure(&envelope.id, method, draw) {
            return outcome;
        }
        let result = self.dispatch_private(method, &envelope, now_ms);
        if rule.mutating {
            if draw.lost {
                return Outcome::Drop;
            }
            return finish_read(&envelope.id, method, result, false);
        }
        finish_read(&envelope.id, method, result, draw.malformed)
    }

    /// The method's rule, after checking that it exists and came with the right HTTP method
    /// (else `wrong_verb_code`). Public methods are rate limited here; private ones after
    /// authentication.
    fn check_call(
        &mut self,
        method: &str,
        right_verb: bool,
        wrong_verb_code: i64,
    ) -> Result<&'static MethodRule, ApiError> {
        let Some(rule) = METHODS.iter().find(|rule| rule.name == method) else {
            return Err(ApiError::new(
                CODE_METHOD_NOT_FOUND,
                format!("unknown method {method}"),
            ));
        };
        if !right_verb {
            let message = if method.starts_with("public/") {
                "public methods take GET"
            } else {
                "private methods take POST"
            };
            return Err(ApiError::new(wrong_verb_code, message));
        }
        let public = method.starts_with("public/");
        if public && !self.limits.admit(rule, Instant::now()) {
            return Err(ApiError::new(CODE_TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS"));
        }
        Ok(rule)
    }

    /// Parses and verifies the signed envelope against the wall clock (reference §2).
    fn authenticate(&self, method: &str, body: &[u8]) -> Result<Envelope, (Value, ApiError)> {
        let credentials = Credentials {
            api_key: &self.api_key,
            api_secret: &self.api_secret,
            now_ms: wall_now_ms(),
        };
        envelope::authenticate(method, body, &credentials)
    }

    /// Records that `order_id` was created at `now_ms`.
    pub(super) fn record_created(&mut self, order_id: &str, now_ms: Millis) {
        let ms = u64::try_from(now_ms).unwrap_or(0);
        let created_ns = ms
            .saturating_mul(NANOS_PER_MILLI)
            .max(self.last_created_ns.saturating_add(1));
        self.last_created_ns = created_ns;
        self.created_ns.insert(order_id.to_string(), created_ns);
    }

    /// Gives the MARKET order `client_oid` (just created at `now_ms`) a fill delay drawn from
    /// the distribution, when one is configured; other orders keep their behaviour.
    pub(super) fn draw_fill_delay(&mut self, client_oid: &str, now_ms: Millis) {
        let Some(distribution) = &self.fill_delay else {
            return;
        };
        let Some(report) = self.engine.order_by_client_oid(client_oid) else {
            return;
        };
        if report.order_type != crate::core::domain::OrderType::Market {
            return;
        }
        let delay_ms = distribution.draw(&mut self.delay_stream);
        let delay_ms = Millis::try_from(delay_ms).unwrap_or(Millis::MAX);
        let due_ms = now_ms.saturating_add(delay_ms);
        // The order was created by this very request, so it is still open and unfilled.
        if let Err(reject) = TestHooks::new(&mut self.engine).set_fill_due(&report.order_id, due_ms)
        {
            tracing::warn!(error = %reject, "drawing a fill delay failed");
        }
    }

    /// When `order_id` was created, in ms, if the simulator created it.
    pub(super) fn created_ms(&self, order_id: &str) -> Option<Millis> {
        let created_ns = self.created_ns.get(order_id)?;
        Millis::try_from(created_ns / NANOS_PER_MILLI).ok()
    }

    fn handle_hook(&mut self, hook: &str, request: &Request, now_ms: Millis) -> Outcome {
        let result = match (request.method.as_str(), hook) {
            ("GET", "book") => Ok(self.book_json()),
            ("GET", "timeline") => Ok(self.timeline_json(now_ms)),
            ("GET", "requests") => Ok(self.requests.json()),
            ("POST", "price") => self.hook_price(&request.body, now_ms),
            ("POST", "cancel") => self.hook_cancel(&request.body, now_ms),
            ("POST", "outage") => hook_params(&request.body)
                .and_then(|params| self.outage.configure(&params, Instant::now())),
            ("GET", "outage") => Ok(self.outage.state(Instant::now())),
            _ => {
                let body = json!({"code": CODE_METHOD_NOT_FOUND, "message": "unknown test hook"});
                return respond(404, body.to_string());
            }
        };
        match result {
            Ok(value) => respond(200, value.to_string()),
            Err(error) => {
                let body = json!({"code": error.code, "message": error.message});
                respond(error.status(), body.to_string())
            }
        }
    }

    /// Every order the engine knows, for tests to compare with what a client believes.
    fn book_json(&self) -> Value {
        let rows: Vec<Value> = self
            .engine
            .book()
            .iter()
            .map(|report| {
                json!({
                    "client_oid": report.client_oid,
                    "order_id": report.order_id,
                    "instrument_name": report.symbol,
                    "status": report.status.as_str(),
                    "side": report.side.as_str(),
                    "order_type": report.order_type.as_str(),
                    "quantity": wire::decimal_text(report.quantity),
                    "cumulative_quantity": wire::decimal_text(report.cumulative_quantity),
                    "price": report.price.map(wire::decimal_text),
                    "ref_price": report.trigger_price.map(wire::decimal_text),
                    "list_id": report.list_id,
                    "create_time": self.created_ms(&report.order_id),
                })
            })
            .collect();
        Value::Array(rows)
    }

    fn hook_price(&mut self, body: &[u8], now_ms: Millis) -> Result<Value, ApiError> {
        let params = hook_params(body)?;
        let symbol = wire::string_param(&params, "instrument_name")?.unwrap_or_default();
        let price = match params.get("price") {
            Some(Value::String(text)) => wire::parse_decimal_strict(text),
            Some(Value::Number(number)) => wire::parse_decimal_strict(&number.to_string()),
            _ => None,
        };
        let price = price.ok_or_else(|| ApiError::new(CODE_BAD_REQUEST, "price is required"))?;
        TestHooks::new(&mut self.engine).set_price(symbol, price, now_ms)?;
        Ok(json!({"code": 0}))
    }

    fn hook_cancel(&mut self, body: &[u8], now_ms: Millis) -> Result<Value, ApiError> {
        let params = hook_params(body)?;
        let order_id = wire::id_param(&params, "order_id")?
            .ok_or_else(|| ApiError::new(CODE_BAD_REQUEST, "order_id is required"))?;
        TestHooks::new(&mut self.engine).cancel_externally(&order_id, now_ms)?;
        Ok(json!({"code": 0}))
    }

    /// Whether connections held unanswered by a `hang` outage must still be kept.
    pub fn holds_connections(&self) -> bool {
        self.outage.holds_at(Instant::now())
    }

    /// Whether the `notfound` fault still hides `report` at `now_ms`.
    pub(super) fn is_visible(&self, report: &OrderReport, now_ms: Millis) -> bool {
        let window_ms = Millis::try_from(self.faults.notfound_ms).unwrap_or(Millis::MAX);
        self.created_ms(&report.order_id)
            .is_none_or(|created_ms| created_ms.saturating_add(window_ms) <= now_ms)
    }
}

fn engine_behavior(spec: &FaultSpec) -> Result<Option<FillBehavior>, String> {
    let fill_delay_ms = match spec.fill_delay_ms {
        Some(delay_ms) => Some(Millis::try_from(delay_ms).map_err(|e| e.to_string())?),
        None => None,
    };
    let behavior = FillBehavior {
        fill_delay_ms,
        partial_fill_fraction: spec.partial,
        expire_after_partial: spec.partial.is_some(),
        never_fill: false,
        reject_protective: spec
            .reject_protective
            .map(|code| EngineReject::new(code, "rejected by fault injection")),
    };
    Ok((behavior != FillBehavior::default()).then_some(behavior))
}

fn hook_params(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ApiError::new(
            CODE_BAD_REQUEST,
            "body must be a JSON object",
        )),
    }
}

fn unanswered(mode: OutageMode) -> Outcome {
    match mode {
        OutageMode::Refuse => Outcome::Drop,
        OutageMode::Hang => Outcome::Hold,
    }
}

fn respond(status: u16, body: String) -> Outcome {
    Outcome::Respond { status, body }
}

fn respond_error(id: &Value, method: &str, error: &ApiError) -> Outcome {
    respond(error.status(), wire::error_body(id, method, error))
}

/// The `error5xx` and `ratelimit` faults: answered without applying the request.
fn injected_failure(id: &Value, method: &str, draw: FaultDraw) -> Option<Outcome> {
    if draw.error5xx {
        let error = ApiError::new(CODE_INTERNAL, "injected server error");
        return Some(respond(503, wire::error_body(id, method, &error)));
    }
    if draw.ratelimit {
        let error = ApiError::new(CODE_TOO_MANY_REQUESTS, "TOO_MANY_REQUESTS");
        return Some(respond_error(id, method, &error));
    }
    None
}

/// The answer to a handled request; with `malformed`, a success body is cut in half.
fn finish_read(
    id: &Value,
    method: &str,
    result: Result<Value, ApiError>,
    malformed: bool,
) -> Outcome {
    match result {
        Ok(value) => {
            let mut body = wire::success_body(id, method, value);
            if malformed {
                let mut cut = body.len() / 2;
                // At most three steps back to a character boundary.
                while !body.is_char_boundary(cut) {
                    cut -= 1;
                }
                body.truncate(cut);
            }
            respond(200, body)
        }
        Err(error) => respond_error(id, method, &error),
    }
}
