//! The simulated exchange of a simulation run: the paper venue behind seeded faults (timeouts
//! before or after the exchange applied a request, 5xx, 429, not-found windows after a create,
//! rejected protective orders, calls deferred for want of time in the turn) and simulated crashes of the agent at a venue call. The plan also
//! holds the rates of the machine's faults (disk, clock) that `environment` injects. It also checks
//! what is sent (S4 no entry behind an open breaker, S7 ticks, minimums and plain decimals).
//! Its candle answers include the candle still forming, as Crypto.com's do (C1).
//! Canary modes break the venue on purpose, to prove the invariant checks can fail.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::environment::DiskPlan;
use super::scale::{self, ScalePlan, entry_outranked};
use crate::core::breaker::GLOBAL;
use crate::core::clock::Clock;
use crate::core::domain::{
    Candle, Instrument, ListAck, Millis, OrderAck, OrderReport, OrderRequest, VenueStatus,
};
use crate::core::ids::{Role, client_oid, parse_client_oid};
use crate::core::normalize::{is_on_tick, plain};
use crate::venue::paper::{FillBehavior, PaperVenue, SplitMix64};
use crate::venue::{Venue, VenueError};

/// The panic payload of a simulated crash; the driver catches it and restarts the agent.
pub const CRASH: &str = "simulated crash";

/// Rates of each fault class, drawn from the seed. Each is a probability per call.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    pub timeout_before: f64,
    pub lost_after: f64,
    pub server_error: f64,
    pub rate_limit: f64,
    pub reject_protective: f64,
    pub crash: f64,
    pub not_found_ms: Millis,
    /// Probability that a lookup answers with the previous report of that order (a stale read).
    pub stale_read: f64,
    /// Entries fill in two parts after this fill delay; with `partial_expires` the rest expires.
    pub fill_delay_ms: Millis,
    pub partial_fraction: Option<Decimal>,
    pub partial_expires: bool,
    /// Storage faults at the agent's SQLite writes.
    pub disk: DiskPlan,
    /// The agent's system clock is off by up to this much either way, stepping now and then.
    pub skew_max_ms: Millis,
    /// Probability per loop turn that the system clock steps.
    pub skew_step: f64,
    /// An outage: from this virtual time on, for `outage_ms`, the exchange answers nothing
    /// (every request fails as refused). Longer than the poll and verify bounds, so trades
    /// halt in it and must recover after it.
    pub outage_start_ms: Millis,
    pub outage_ms: Millis,
    /// Probability that a call is not made because the turn's time budget is spent
    /// (`VenueError::Deferred`, as the Crypto.com client answers): nothing reaches the exchange.
    pub deferred: f64,
    /// A slow exchange as the turn's budget sees it: at most this many calls are made in one
    /// loop turn, every later call of the turn is deferred (`None`: no such cap). Unlike the
    /// random `deferred`, work that needs more calls than the cap in one go is deferred every
    /// time, so it must be resumable or sent first.
    pub calls_per_turn: Option<u32>,
}

impl FaultPlan {
    /// Each class is on with probability 1/2, at a rate up to 15 % (crashes up to 2 %).
    pub fn draw(random: &mut SplitMix64) -> FaultPlan {
        let mut rate = |max: f64| draw_rate(random, max);
        let plan = FaultPlan {
            timeout_before: rate(0.15),
            lost_after: rate(0.15),
            server_error: rate(0.15),
            rate_limit: rate(0.15),
            reject_protective: rate(0.15),
            crash: rate(0.02),
            not_found_ms: (rate(3000.0)) as Millis,
            stale_read: rate(0.15),
            fill_delay_ms: 100 + (rate(4000.0)) as Millis,
            disk: DiskPlan {
                busy: rate(0.05),
                full: rate(0.03),
                crash: rate(0.02),
            },
            skew_max_ms: rate(300_000.0) as Millis,
            skew_step: rate(0.05),
            partial_fraction: (random.next_u64() % 3 == 0)
                .then(|| Decimal::new(1 + (random.next_u64() % 9) as i64, 1)),
            partial_expires: random.next_u64() % 2 == 0,
            outage_start_ms: (random.next_u64() % 240_000) as Millis,
            outage_ms: match random.next_u64() % 3 {
                0 => 60_000 + (random.next_u64() % 300_000) as Millis,
                _ => 0,
            },
            deferred: 0.0,
            calls_per_turn: None,
        };
        // Drawn after the plan's other rates, so those keep their values for each seed.
        let deferred = draw_rate(random, 0.15);
        // One seed in four: 4 to 9 calls a turn (a lookup chain's stage is at most two, a
        // protection round's sizing and send five).
        let calls_per_turn =
            (random.next_u64() % 4 == 0).then(|| 4 + (random.next_u64() % 6) as u32);
        FaultPlan {
            deferred,
            calls_per_turn,
            ..plan
        }
    }

    /// How the engine fills entries under this plan.
    pub fn fill_behavior(&self) -> FillBehavior {
        FillBehavior {
            fill_delay_ms: Some(self.fill_delay_ms),
            partial_fill_fraction: self.partial_fraction,
            expire_after_partial: self.partial_fraction.is_some() && self.partial_expires,
            ..FillBehavior::default()
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "timeout_before={:.3} lost_after={:.3} 5xx={:.3} 429={:.3} reject_protective={:.3} crash={:.3} not_found_ms={} stale_read={:.3} fill_delay_ms={} partial={:?} expires={} db_busy={:.3} db_full={:.3} db_crash={:.3} skew_max_ms={} skew_step={:.3} outage={}ms@+{}ms deferred={:.3} calls_per_turn={:?}",
            self.timeout_before,
            self.lost_after,
            self.server_error,
            self.rate_limit,
            self.reject_protective,
            self.crash,
            self.not_found_ms,
            self.stale_read,
            self.fill_delay_ms,
            self.partial_fraction.map(|fraction| fraction.to_string()),
            self.partial_expires,
            self.disk.busy,
            self.disk.full,
            self.disk.crash,
            self.skew_max_ms,
            self.skew_step,
            self.outage_ms,
            self.outage_start_ms,
            self.deferred,
            self.calls_per_turn
        )
    }
}

/// A class is on with probability 1/2, at a rate up to `max`.
fn draw_rate(random: &mut SplitMix64, max: f64) -> f64 {
    let on = random.next_u64() % 2 == 0;
    let level = (random.next_u64() % 1000) as f64 / 1000.0;
    if on { level * max } else { 0.0 }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canary {
    /// Every OCO is created twice: two live stops per trade (S1 must fail).
    DuplicateOrders,
    /// Filled entries are reported as cancelled without fills (S3 must fail).
    LoseFills,
    /// Cancels of protective legs are acknowledged and the legs reported cancelled, but they
    /// stay on the book: as if the failsafe (or any clearing) sent its market exit without
    /// waiting for the cancel to take effect. S2 (live protection above the net position) or
    /// S8 (more sold than bought) must fail.
    ExitBeforeCancel,
    /// Not the venue: the alert channel reports every second alert delivered without
    /// delivering it. A1 (nothing marked sent that was not delivered) must fail.
    DropAlerts,
    /// Not the venue: signals with an id are written to the inbox without the id's key, so a
    /// repeated id is queued again. S9 (one trade per signal id) must fail.
    IgnoreSignalIds,
    /// Not the venue: the agent sends new entries without serving other trades' due fill
    /// polls and protection first. P1 must fail (in seeds with latency and bursts).
    EntriesFirst,
    /// Not the venue: the agent takes a protective leg absent from the open-orders snapshot
    /// as cancelled and protects again. With listings that leave out live orders, S1 (two
    /// live stops), S2 or S8 must fail.
    SnapshotAbsenceGone,
    /// Not the venue: the agent runs without its entry risk limits (the daily loss limit
    /// kept). In seeds with limits, R1 must fail.
    IgnoreRiskLimits,
    /// Not the venue: the agent runs without the daily loss limit. In seeds with one, R2 must
    /// fail once a loss reaches it.
    IgnoreLossLimit,
    /// Not the venue: the agent reads candles as if each had closed a timeframe earlier, so
    /// the one still forming counts as closed. C1 must fail (in seeds whose clock skew is
    /// small against a candle).
    FormingCandles,
    /// Not the venue: the agent keeps a watchlist symbol the exchange does not list in play
    /// after its start-up check disabled it (strategy evaluated, signals taken). Every seed
    /// then has such a symbol; U1 or U2 must fail.
    UnlistedKept,
}

pub struct FaultyVenue {
    pub paper: PaperVenue,
    clock: std::rc::Rc<dyn Clock>,
    random: SplitMix64,
    pub plan: FaultPlan,
    pub faults_on: bool,
    canary: Option<Canary>,
    created_at: BTreeMap<String, Millis>,
    /// The previous report of each order, for stale reads.
    last_seen: BTreeMap<String, OrderReport>,
    /// Read-only view of the agent's database, for S4.
    store_path: std::path::PathBuf,
    pub violations: Vec<String>,
    /// Protective legs the `ExitBeforeCancel` canary claims to have cancelled.
    fake_cancelled: std::collections::BTreeSet<String>,
    /// Virtual time the faulty phase began, for the outage window.
    started_ms: Millis,
    /// Calls answered `Deferred` so far.
    pub deferrals: u32,
    /// Calls made in this loop turn (for `FaultPlan::calls_per_turn`).
    calls_this_turn: u32,
    /// Latency, bursts and listing faults (`scale.rs`), with their own random stream.
    pub scale: ScalePlan,
    scale_random: SplitMix64,
    /// The last open-orders listing answered, for stale listings.
    last_listing: Option<Vec<OrderReport>>,
    /// A frozen listing and the calls it still answers.
    frozen: Option<(Vec<OrderReport>, u64)>,
    /// The running agent's clock (P1 judges due times on it); set at each start.
    pub agent_clock: Option<std::rc::Rc<dyn Clock>>,
    /// Market-data calls naming a symbol the exchange does not list, since the run last
    /// cleared them (`unlisted.rs` judges them).
    pub unlisted_calls: Vec<String>,
}

impl FaultyVenue {
    pub fn new(
        paper: PaperVenue,
        clock: std::rc::Rc<dyn Clock>,
        seed: u64,
        plan: FaultPlan,
        canary: Option<Canary>,
        store_path: std::path::PathBuf,
    ) -> FaultyVenue {
        let started_ms = clock.now_ms();
        FaultyVenue {
            paper,
            clock,
            random: SplitMix64::new(seed ^ 0xFA17_5EED),
            plan,
            faults_on: true,
            canary,
            created_at: BTreeMap::new(),
            last_seen: BTreeMap::new(),
            store_path,
            violations: Vec::new(),
            fake_cancelled: std::collections::BTreeSet::new(),
            started_ms,
            deferrals: 0,
            calls_this_turn: 0,
            scale: ScalePlan::draw(seed),
            scale_random: SplitMix64::new(seed ^ 0x0D0E_11DE),
            last_listing: None,
            frozen: None,
            agent_clock: None,
            unlisted_calls: Vec::new(),
        }
    }

    /// Notes a call naming `symbol` when the exchange does not list it.
    fn note_symbol(&mut self, method: &str, symbol: &str) {
        if self.paper.engine().instrument(symbol).is_err() {
            self.unlisted_calls.push(format!("{method} {symbol}"));
        }
    }

    /// P1, when an entry is handed to the exchange (before its round trip).
    fn check_priority(&mut self, client_oid: &str) {
        let Some(parsed) = parse_client_oid(client_oid) else {
            return;
        };
        let Some(clock) = self.agent_clock.as_ref() else {
            return;
        };
        if parsed.role != Role::Entry {
            return;
        }
        if let Some(problem) = entry_outranked(&self.store_path, parsed.trade_id, clock.now_ms()) {
            self.violations.push(problem);
        }
    }

    fn scale_chance(&mut self, probability: f64) -> bool {
        let draw = (self.scale_random.next_u64() % 1_000_000) as f64 / 1_000_000.0;
        self.faults_on && probability > 0.0 && draw < probability
    }

    /// The listing faults: an earlier listing instead of this one, or live orders left out.
    fn listing(&mut self, fresh: Vec<OrderReport>) -> Vec<OrderReport> {
        if let Some((listing, left)) = self.frozen.as_mut().filter(|_| self.faults_on) {
            if *left > 0 {
                *left -= 1;
                return listing.clone();
            }
        }
        self.frozen = None;
        if self.scale_chance(self.scale.listing_frozen) {
            let spread = scale::FROZEN_LISTINGS_MAX - scale::FROZEN_LISTINGS_MIN + 1;
            let calls = scale::FROZEN_LISTINGS_MIN + self.scale_random.next_u64() % spread;
            self.frozen = Some((fresh.clone(), calls));
        }
        let previous = self.last_listing.replace(fresh.clone());
        if self.scale_chance(self.scale.listing_stale) {
            if let Some(previous) = previous {
                return previous;
            }
        }
        let omits = self.scale.listing_omits;
        fresh
            .into_iter()
            .filter(|_| !self.scale_chance(omits))
            .collect()
    }

    /// Whether the exchange is in its outage window now.
    fn in_outage(&self) -> bool {
        let since_start = self.clock.now_ms() - self.started_ms;
        self.faults_on
            && self.plan.outage_ms > 0
            && since_start >= self.plan.outage_start_ms
            && since_start < self.plan.outage_start_ms + self.plan.outage_ms
    }

    /// The canary's lie: a cancel of a protective leg is acknowledged but not done.
    fn fake_cancel(&mut self, symbol: &str, order_id: &str, list: bool) -> bool {
        if self.canary != Some(Canary::ExitBeforeCancel) {
            return false;
        }
        let legs: Vec<String> = self
            .paper
            .engine()
            .book()
            .into_iter()
            .filter(|order| order.symbol == symbol && !order.status.is_terminal())
            .filter(|order| {
                if list {
                    order.list_id.as_deref() == Some(order_id)
                } else {
                    order.order_id == order_id
                }
            })
            .filter(|order| {
                parse_client_oid(&order.client_oid)
                    .is_some_and(|parsed| parsed.role.is_protective())
            })
            .map(|order| order.client_oid)
            .collect();
        let lied = !legs.is_empty();
        self.fake_cancelled.extend(legs);
        lied
    }

    fn chance(&mut self, probability: f64) -> bool {
        let draw = (self.random.next_u64() % 1_000_000) as f64 / 1_000_000.0;
        self.faults_on && draw < probability
    }

    /// Faults that strike before the exchange sees the request.
    fn before(&mut self) -> Result<(), VenueError> {
        if self.faults_on && self.scale.latency_ms > 0 {
            self.clock.sleep(self.scale.latency());
        }
        if self.chance(self.plan.crash) {
            panic!("{CRASH}");
        }
        if self.in_outage() {
            return Err(VenueError::Transport(
                "injected outage: connection refused".into(),
            ));
        }
        if let Some(cap) = self.plan.calls_per_turn.filter(|_| self.faults_on) {
            self.calls_this_turn += 1;
            if self.calls_this_turn > cap {
                self.deferrals += 1;
                return Err(VenueError::Deferred(format!(
                    "injected: the turn's time budget is spent after {cap} calls"
                )));
            }
        }
        // Only drawn where the class is on, so the other seeds' fault streams are unchanged.
        if self.plan.deferred > 0.0 && self.chance(self.plan.deferred) {
            self.deferrals += 1;
            return Err(VenueError::Deferred(
                "injected: the turn's time budget is spent".into(),
            ));
        }
        if self.chance(self.plan.timeout_before) {
            return Err(VenueError::Timeout("injected timeout".into()));
        }
        if self.chance(self.plan.server_error) {
            return Err(VenueError::Server {
                status: 503,
                message: "injected server error".into(),
            });
        }
        if self.chance(self.plan.rate_limit) {
            return Err(VenueError::RateLimited("injected 429".into()));
        }
        Ok(())
    }

    /// Faults that strike after the exchange applied a create or cancel.
    fn after<T>(&mut self, result: Result<T, VenueError>) -> Result<T, VenueError> {
        if self.chance(self.plan.crash) {
            panic!("{CRASH}");
        }
        if result.is_ok() && self.chance(self.plan.lost_after) {
            return Err(VenueError::Timeout("injected: response lost".into()));
        }
        result
    }

    fn check_sent(&mut self, order: &OrderRequest) {
        let Ok(instrument) = self.paper.instrument(&order.symbol) else {
            let problem = format!(
                "U1: order {} sent for {}, which the exchange does not list",
                order.client_oid, order.symbol
            );
            self.violations.push(problem);
            return;
        };
        let mut values = vec![];
        values.extend(
            order
                .quantity
                .map(|q| (q, instrument.quantity_tick, "quantity")),
        );
        values.extend(order.price.map(|p| (p, instrument.price_tick, "price")));
        values.extend(
            order
                .trigger_price
                .map(|p| (p, instrument.price_tick, "trigger")),
        );
        for (value, tick, what) in values {
            let text = plain(value);
            if !is_on_tick(value, tick) || text.contains(['e', 'E']) || value <= Decimal::ZERO {
                let problem = format!("S7: {} {what} {text} off tick {tick}", order.client_oid);
                self.violations.push(problem);
            }
        }
        if order.quantity.is_some_and(|q| q < instrument.min_quantity) {
            let problem = format!("S7: {} below the minimum quantity", order.client_oid);
            self.violations.push(problem);
        }
        let is_entry =
            parse_client_oid(&order.client_oid).is_some_and(|parsed| parsed.role == Role::Entry);
        if is_entry && self.breaker_open(&order.symbol) {
            let problem = format!("S4: entry {} sent behind an open breaker", order.client_oid);
            self.violations.push(problem);
        }
    }

    /// S8 at the moment it matters: an exit goes out only once no protective leg of its trade
    /// rests on the book (the canary's lie aside, which is what it must catch).
    fn check_exit(&mut self, order: &OrderRequest) {
        let Some(parsed) = parse_client_oid(&order.client_oid) else {
            return;
        };
        if parsed.role != Role::Exit {
            return;
        }
        let book = self.paper.engine().book();
        let positions = super::invariants::positions(&book);
        if let Some(position) = positions.get(&parsed.trade_id) {
            if !position.live.is_empty() {
                self.violations.push(format!(
                    "S8: exit {} sent while a protective leg of trade {} rests on the book",
                    order.client_oid, parsed.trade_id
                ));
            }
        }
    }

    fn breaker_open(&self, symbol: &str) -> bool {
        let Ok(conn) = rusqlite::Connection::open(&self.store_path) else {
            return false;
        };
        let open: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM breakers WHERE open = 1 AND symbol IN (?1, ?2)",
                [symbol, GLOBAL],
                |row| row.get(0),
            )
            .unwrap_or(0);
        open > 0
    }

    fn hidden(&self, client_oid: &str) -> bool {
        let now = self.clock.now_ms();
        self.faults_on
            && self
                .created_at
                .get(client_oid)
                .is_some_and(|created| now - created < self.plan.not_found_ms)
    }

    fn mark_created(&mut self, oids: &[&str]) {
        let now = self.clock.now_ms();
        for oid in oids {
            self.created_at.insert((*oid).to_string(), now);
        }
    }

    fn disguise(&self, mut report: OrderReport) -> OrderReport {
        if self.fake_cancelled.contains(&report.client_oid) && !report.status.is_terminal() {
            report.status = VenueStatus::Canceled;
        }
        let is_entry =
            parse_client_oid(&report.client_oid).is_some_and(|parsed| parsed.role == Role::Entry);
        if self.canary == Some(Canary::LoseFills)
            && is_entry
            && report.status == VenueStatus::Filled
        {
            report.status = VenueStatus::Canceled;
            report.cumulative_quantity = Decimal::ZERO;
        }
        report
    }

    fn protective_rejected(&mut self) -> Result<(), VenueError> {
        if self.chance(self.plan.reject_protective) {
            return Err(VenueError::Rejected {
                code: 229,
                message: "injected INVALID_REF_PRICE".into(),
            });
        }
        Ok(())
    }
}

impl Venue for FaultyVenue {
    fn name(&self) -> &'static str {
        "simulated"
    }

    /// A new loop turn: the per-turn call cap counts again from zero.
    fn set_budget(&mut self, _budget: crate::venue::Budget) {
        self.calls_this_turn = 0;
    }

    fn instrument(&mut self, symbol: &str) -> Result<Instrument, VenueError> {
        self.note_symbol("public/get-instruments", symbol);
        self.before()?;
        self.paper.instrument(symbol)
    }

    fn listed_symbols(&mut self) -> Result<std::collections::BTreeSet<String>, VenueError> {
        self.before()?;
        self.paper.listed_symbols()
    }

    fn last_price(&mut self, symbol: &str) -> Result<Decimal, VenueError> {
        self.note_symbol("public/get-tickers", symbol);
        self.before()?;
        self.paper.last_price(symbol)
    }

    fn candles(
        &mut self,
        symbol: &str,
        timeframe: u32,
        count: usize,
    ) -> Result<Vec<Candle>, VenueError> {
        self.note_symbol("public/get-candlestick", symbol);
        self.before()?;
        let mut candles = self.paper.candles(symbol, timeframe, count)?;
        // As Crypto.com answers: the newest candle may still be forming. The paper venue
        // answers closed candles only, so the one forming now is added (at the last price);
        // the agent must never act on it (C1).
        let timeframe_ms = Millis::from(timeframe) * 1_000;
        let now_ms = self.clock.now_ms();
        let open_time_ms = now_ms - now_ms.rem_euclid(timeframe_ms.max(1));
        let price = self.paper.engine().last_price(symbol);
        let present = candles
            .last()
            .is_some_and(|last| last.open_time_ms >= open_time_ms);
        if let (Ok(price), false) = (price, present) {
            candles.push(Candle {
                open_time_ms,
                open: price,
                high: price,
                low: price,
                close: price,
            });
        }
        Ok(candles)
    }

    fn free_balance(&mut self, asset: &str) -> Result<Decimal, VenueError> {
        self.before()?;
        self.paper.free_balance(asset)
    }

    fn create_order(&mut self, order: &OrderRequest) -> Result<OrderAck, VenueError> {
        self.check_priority(&order.client_oid);
        self.before()?;
        self.check_sent(order);
        self.check_exit(order);
        let is_protective =
            parse_client_oid(&order.client_oid).is_some_and(|parsed| parsed.role.is_protective());
        if is_protective {
            self.protective_rejected()?;
        }
        let result = self.paper.create_order(order);
        self.mark_created(&[&order.client_oid]);
        self.after(result)
    }

    fn create_oco(
        &mut self,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, VenueError> {
        self.before()?;
        self.check_sent(stop_loss);
        self.check_sent(take_profit);
        self.protective_rejected()?;
        let result = self.paper.create_oco(stop_loss, take_profit);
        if result.is_ok() && self.canary == Some(Canary::DuplicateOrders) {
            let copy = |order: &OrderRequest| {
                let parsed = parse_client_oid(&order.client_oid).expect("ours");
                OrderRequest {
                    client_oid: client_oid(
                        &parsed.epoch,
                        parsed.trade_id,
                        parsed.role,
                        parsed.generation + 1_000,
                    ),
                    ..order.clone()
                }
            };
            let _ = self.paper.create_oco(&copy(stop_loss), &copy(take_profit));
        }
        self.mark_created(&[&stop_loss.client_oid, &take_profit.client_oid]);
        self.after(result)
    }

    fn create_otoco(
        &mut self,
        entry: &OrderRequest,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, VenueError> {
        self.check_priority(&entry.client_oid);
        self.before()?;
        for order in [entry, stop_loss, take_profit] {
            self.check_sent(order);
        }
        let result = self.paper.create_otoco(entry, stop_loss, take_profit);
        self.mark_created(&[
            &entry.client_oid,
            &stop_loss.client_oid,
            &take_profit.client_oid,
        ]);
        self.after(result)
    }

    fn cancel_order(&mut self, symbol: &str, order_id: &str) -> Result<(), VenueError> {
        self.before()?;
        if self.fake_cancel(symbol, order_id, false) {
            return Ok(());
        }
        let result = self.paper.cancel_order(symbol, order_id);
        self.after(result)
    }

    fn cancel_list(&mut self, symbol: &str, list_id: &str) -> Result<(), VenueError> {
        self.before()?;
        if self.fake_cancel(symbol, list_id, true) {
            return Ok(());
        }
        let result = self.paper.cancel_list(symbol, list_id);
        self.after(result)
    }

    fn order_by_client_oid(&mut self, oid: &str) -> Result<Option<OrderReport>, VenueError> {
        self.before()?;
        if self.hidden(oid) {
            return Ok(None);
        }
        let Some(report) = self.paper.order_by_client_oid(oid)? else {
            return Ok(None);
        };
        let previous = self.last_seen.insert(oid.to_string(), report.clone());
        let stale = self.chance(self.plan.stale_read);
        let answer = match previous {
            Some(previous) if stale => previous,
            _ => report,
        };
        Ok(Some(self.disguise(answer)))
    }

    fn open_orders(&mut self) -> Result<Vec<OrderReport>, VenueError> {
        self.before()?;
        let orders = self.paper.open_orders()?;
        let orders: Vec<OrderReport> = orders
            .into_iter()
            .filter(|order| !self.hidden(&order.client_oid))
            .filter(|order| !self.fake_cancelled.contains(&order.client_oid))
            .map(|order| self.disguise(order))
            .collect();
        Ok(self.listing(orders))
    }

    fn order_history(
        &mut self,
        symbol: &str,
        since_ms: Millis,
    ) -> Result<Vec<OrderReport>, VenueError> {
        self.before()?;
        let orders = self.paper.order_history(symbol, since_ms)?;
        Ok(orders
            .into_iter()
            .filter(|order| !self.hidden(&order.client_oid))
            .map(|order| self.disguise(order))
            .collect())
    }
}
