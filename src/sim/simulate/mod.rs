//! `fillguard simulate`: deterministic simulation. One `u64` seed decides everything — the
//! protection mode, which fault classes are on and their rates, the price path, the signals,
//! when the agent "crashes" (at a venue call or a store write: all memory dropped, restarted on
//! the same SQLite file), when the disk refuses a write and how far the system clock is off.
//! The real shell and core run against the paper engine behind `FaultyVenue`, on a virtual
//! clock and a real SQLite file. After every loop turn the invariants of DESIGN §4 are checked;
//! then a calm phase with faults off must settle every trade (L1).

mod alert_sink;
mod candles;
mod environment;
mod faulty;
mod invariants;
mod polling;
mod risk;
mod scale;
mod senders;
mod summary;
mod unlisted;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rust_decimal::Decimal;

use crate::config::{self, Config};
use crate::core::clock::Clock;
use crate::core::domain::{Millis, OrderReport, ProtectionMode, Side};
use crate::core::ids::Role;
use crate::core::trade::{PollSchedule, PollSource, RECOVERY_DELAY_MAX_MS, UNKNOWN_WINDOW_MS};
use crate::shell::alerts::RETRY_DELAY_MAX;
use crate::shell::clock::SteadyClock;
use crate::shell::{Agent, is_transient_store_error};
use crate::store::{self, SignalRow, SignalStatus, Store};
use crate::venue::paper::{PaperVenue, SplitMix64};

use alert_sink::SimAlertSink;
use environment::{Disk, DiskFaults, SkewedClock, VirtualClock};
pub use faulty::{CRASH, Canary, FaultPlan, FaultyVenue};
use polling::Polling;
use risk::RiskSim;
use senders::Senders;
use summary::summarize;
use unlisted::{UNLISTED_SYMBOL, Unlisted};

const START_MS: Millis = 1_700_000_000_000;
/// The paper engine starts with this much price history.
const WARMUP_MS: Millis = 2 * 60 * 60 * 1000;
/// Virtual time a restart takes after a simulated crash.
const RESTART_DELAY: Duration = Duration::from_secs(1);
/// Loop turns of the calm phase (faults off) in which every trade must settle.
const CALM_TICKS: u64 = 400;
/// Virtual time an unsettled seed's calm phase lasts at least (a settled one ends as soon as it
/// is seen settled): the longest wait of a recovering trade for its next attempt, then twice
/// the nonce window, as a protective send left ambiguous by the last faults is proven absent
/// only after it, and a failsafe exit then waits for that proof. Turns alone are too short a
/// measure when many trades are watched (their deadlines make turns of a hundred milliseconds
/// or so).
const CALM_MIN_MS: Millis = RECOVERY_DELAY_MAX_MS + 2 * UNKNOWN_WINDOW_MS;
/// Bound on the calm phase's turns.
const CALM_TICKS_MAX: u64 = 16 * CALM_TICKS;
const MODES: [&str; 3] = ["oco", "otoco", "separate"];
/// Virtual time from the start of the calm phase in which the alert outbox must drain: the
/// longest delay between two attempts, and two minutes for the queue behind it (one
/// attempt per turn). A restart that finds the clock gone back pulls later schedules in.
const ALERT_DRAIN_MS: Millis = RETRY_DELAY_MAX.as_millis() as Millis + 120_000;
/// Bound on the turns spent draining (a turn lasts at least a few hundred milliseconds).
const DRAIN_TICKS_MAX: u64 = 4000;

/// Exit codes: which kind of failure a run found.
pub const EXIT_CORRECTNESS: u8 = 3;
pub const EXIT_LIVENESS: u8 = 4;
pub const EXIT_CRASH: u8 = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// An invariant S1–S7 failed.
    Correctness(String),
    /// L1 failed: a trade did not settle after faults stopped.
    Liveness(String),
    /// The agent failed in a way that is not a simulated crash (an error or a real panic).
    Crash(String),
}

impl Verdict {
    pub fn exit_code(&self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Correctness(_) => EXIT_CORRECTNESS,
            Verdict::Liveness(_) => EXIT_LIVENESS,
            Verdict::Crash(_) => EXIT_CRASH,
        }
    }
}

/// What one seed did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub seed: u64,
    pub verdict: Verdict,
    /// Hash of the event log and the book: equal for equal seeds.
    pub hash: u64,
    pub mode: &'static str,
    pub faults: String,
    pub trades: usize,
    pub crashes: u32,
    /// Times the agent gave up on a refusing database and exited (its supervisor restarts it).
    pub exits: u32,
    /// Writes the disk refused (busy, full).
    pub store_errors: u32,
    pub ticks: u64,
    /// The failsafe market-exits (`failsafe.flatten`) in this seed.
    pub flatten: bool,
    /// The failsafe trips no breaker (`failsafe.on_protection_error = false`) in this seed.
    pub alert_only: bool,
    /// The exchange had an outage longer than the poll and verify bounds.
    pub outage: bool,
    /// Fill polls on the fixed schedule (`poll.schedule = "fixed"`) in this seed.
    pub fixed_schedule: bool,
    /// Fill polls through open orders then history (`poll.source`) in this seed.
    pub listed_source: bool,
    /// The alert channel failed for a while (and now and then).
    pub alerts_down: bool,
    /// Venue calls not made because (as the seed drew) the turn's time budget was spent.
    pub deferrals: u32,
    /// Signals sent again under an id already sent (S9).
    pub signal_repeats: u32,
    /// The seed ran with risk limits (R1, R2).
    pub risk: bool,
    /// Signals a risk limit dropped.
    pub risk_refusals: u32,
    /// The watchlist had a symbol the exchange does not list (U1, U2).
    pub unlisted: bool,
    /// The last events of the store, for a failure's trace.
    pub trace: Vec<String>,
}

struct Run {
    seed: u64,
    random: SplitMix64,
    clock: Rc<VirtualClock>,
    /// The system clock as the agent reads it.
    wall: Rc<SkewedClock>,
    skew_step: f64,
    disk: Rc<RefCell<Disk>>,
    venue: Rc<RefCell<FaultyVenue>>,
    /// The alert channel, kept across restarts of the agent.
    alerts: SimAlertSink,
    config: Config,
    agent: Option<Agent>,
    crashes: u32,
    exits: u32,
    ticks: u64,
    first_fill: BTreeMap<i64, Millis>,
    /// Since when each trade's live protection has exceeded its net position (S2).
    excess_since: BTreeMap<(i64, Role), Millis>,
    /// Since when each trade's separate-mode legs have both filled (S8's documented case).
    double_fill_since: BTreeMap<i64, Millis>,
    /// Signal ids and their repeats (S9).
    senders: Senders,
    /// The canary of this run, for the agent variants (`Canary::EntriesFirst`, …).
    canary: Option<Canary>,
    /// Draws the bursts of signals (`scale.rs`), apart from the signals' own stream.
    burst_random: SplitMix64,
    /// The seed's risk limits and their checks R1, R2 (`risk.rs`).
    risk: RiskSim,
    /// The strategy signals already checked against their candle's close (C1).
    candle_signals: candles::CandleSignals,
    /// A watchlist symbol the exchange does not list, in a share of the seeds (`unlisted.rs`).
    unlisted: Unlisted,
}

/// The failsafe's settings of one seed: a share runs with `flatten` on, a share with the
/// breaker trips of `on_protection_error` off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Failsafe {
    flatten: bool,
    on_protection_error: bool,
}

impl Failsafe {
    fn draw(random: &mut SplitMix64) -> Failsafe {
        let draw = random.next_u64() % 6;
        Failsafe {
            flatten: draw < 2,
            on_protection_error: draw != 5,
        }
    }
}

fn configuration(dir: &Path, seed: u64, mode: &str, failsafe: Failsafe, risk: &RiskSim) -> Config {
    let polling = Polling::draw(seed);
    let env: BTreeMap<String, String> = polling
        .env()
        .into_iter()
        .chain([
            (
                "FILLGUARD_STORE__PATH",
                dir.join("fillguard.db").display().to_string(),
            ),
            ("FILLGUARD_METRICS__LISTEN", "off".to_string()),
            ("FILLGUARD_PROTECTION__MODE", mode.to_string()),
            ("FILLGUARD_PAPER__SEED", seed.to_string()),
            ("FILLGUARD_FAILSAFE__FLATTEN", failsafe.flatten.to_string()),
            (
                "FILLGUARD_FAILSAFE__ON_PROTECTION_ERROR",
                failsafe.on_protection_error.to_string(),
            ),
            ("FILLGUARD_LOOP__INTERVAL_SECONDS", "2".to_string()),
            (
                "FILLGUARD_PROTECTION__WATCH_INTERVAL_SECONDS",
                "2".to_string(),
            ),
            (
                "FILLGUARD_SIGNALS__ALLOW_CONCURRENT_TRADES",
                "true".to_string(),
            ),
        ])
        .map(|(key, value)| (key.to_string(), value))
        .chain(risk.env())
        .collect();
    config::load_from(None, &env).expect("the simulation's configuration is valid")
}

impl Run {
    fn new(seed: u64, dir: &Path, canary: Option<Canary>) -> Run {
        let mut random = SplitMix64::new(seed);
        let mode = MODES[(random.next_u64() % 3) as usize];
        let plan = FaultPlan::draw(&mut random);
        let failsafe = Failsafe::draw(&mut random);
        let risk = RiskSim::draw(seed);
        let mut config = configuration(dir, seed, mode, failsafe, &risk);
        let unlisted = Unlisted::draw(seed, canary);
        unlisted.add_to(&mut config);
        let clock = Rc::new(VirtualClock(Cell::new(START_MS - WARMUP_MS)));
        let dyn_clock: Rc<dyn Clock> = clock.clone();
        let paper = PaperVenue::new(&config.paper, dyn_clock.clone()).expect("paper venue");
        clock.0.set(START_MS);
        let store_path = config.store.path.clone();
        let mut paper = paper;
        for instrument in &config.paper.instruments {
            paper
                .engine_mut()
                .set_behavior(&instrument.symbol, plan.fill_behavior());
        }
        let wall = Rc::new(SkewedClock::new(clock.clone(), plan.skew_max_ms, seed));
        let skew_step = plan.skew_step;
        let disk = Disk::new(plan.disk, seed);
        let alerts = SimAlertSink::new(
            SimAlertSink::plan(seed, START_MS),
            seed,
            clock.clone(),
            disk.clone(),
            canary == Some(Canary::DropAlerts),
        );
        let venue = FaultyVenue::new(paper, dyn_clock, seed, plan, canary, store_path);
        Run {
            seed,
            random,
            clock,
            wall,
            skew_step,
            disk,
            venue: Rc::new(RefCell::new(venue)),
            alerts,
            config,
            agent: None,
            crashes: 0,
            exits: 0,
            ticks: 0,
            first_fill: BTreeMap::new(),
            excess_since: BTreeMap::new(),
            double_fill_since: BTreeMap::new(),
            senders: Senders::new(seed, canary == Some(Canary::IgnoreSignalIds)),
            canary,
            burst_random: SplitMix64::new(seed ^ 0xB0B5_7000),
            risk,
            candle_signals: candles::CandleSignals::default(),
            unlisted,
        }
    }

    /// Starts the agent if it is not running: open the store, self-check (its first turn
    /// reconciles). It starts on the system clock as it reads now, steadied as in production.
    fn ensure_agent(&mut self) -> Result<(), Verdict> {
        if self.agent.is_some() {
            return Ok(());
        }
        let mut store = Store::open_for_run(&self.config.store.path)
            .map_err(|error| Verdict::Crash(format!("store: {error}")))?;
        // The database's random epoch, drawn from the seed instead, so a seed replays exactly.
        let epoch = format!("{:08x}", self.seed.wrapping_mul(0x9E37_79B9) as u32);
        store
            .conn()
            .execute(
                "UPDATE meta SET value = ?1 WHERE key = 'oid_epoch'",
                [&epoch],
            )
            .map_err(|error| Verdict::Crash(format!("store: {error}")))?;
        store.set_faults(Box::new(DiskFaults(self.disk.clone())));
        let ticker: Rc<dyn Clock> = self.clock.clone();
        let steady: Rc<dyn Clock> = Rc::new(SteadyClock::new(self.wall.as_ref(), ticker));
        let wall: Rc<dyn Clock> = self.wall.clone();
        let mut agent = Agent::new(
            self.agent_config(),
            store,
            Box::new(self.venue.clone()),
            steady.clone(),
            wall,
            Arc::new(AtomicBool::new(false)),
        );
        agent.set_alert_sink(Box::new(self.alerts.clone()));
        match self.canary {
            Some(Canary::EntriesFirst) => agent.set_protection_first(false),
            Some(Canary::SnapshotAbsenceGone) => {
                agent.set_watch_mode(crate::shell::watch::WatchMode::AbsenceIsGone)
            }
            Some(Canary::FormingCandles) => agent.set_closed_candles_only(false),
            Some(Canary::UnlistedKept) => agent.set_watchlist_enforced(false),
            _ => {}
        }
        self.venue.borrow_mut().agent_clock = Some(steady.clone());
        self.alerts.note_restart();
        let started = self.guarded(|| agent.self_check());
        if started? {
            self.agent = Some(agent);
        }
        Ok(())
    }

    /// The configuration the agent runs with: the seed's, less what a risk canary drops.
    fn agent_config(&self) -> Config {
        let mut config = self.config.clone();
        match self.canary {
            Some(Canary::IgnoreRiskLimits) => {
                let daily_loss = std::mem::take(&mut config.risk.daily_loss);
                config.risk = crate::core::risk::RiskLimits {
                    daily_loss,
                    ..Default::default()
                };
            }
            Some(Canary::IgnoreLossLimit) => config.risk.daily_loss.clear(),
            _ => {}
        }
        config
    }

    /// Runs `work`, turning a simulated crash into `Ok(false)` (memory dropped), as well as an
    /// exit on a refusing database (the supervisor restarts the agent); anything else that fails
    /// becomes a verdict.
    fn guarded(&mut self, work: impl FnOnce() -> anyhow::Result<()>) -> Result<bool, Verdict> {
        match catch_unwind(AssertUnwindSafe(work)) {
            Ok(Ok(())) => return Ok(true),
            Ok(Err(error)) if is_transient_store_error(&error) => self.exits += 1,
            Ok(Err(error)) => return Err(Verdict::Crash(format!("{error:#}"))),
            Err(payload) => {
                let message = panic_message(&payload);
                if message != CRASH {
                    return Err(Verdict::Crash(format!("panic: {message}")));
                }
                self.crashes += 1;
            }
        }
        self.agent = None;
        self.clock.sleep(RESTART_DELAY);
        // The system clock may have been stepped while the agent was down.
        self.wall.step();
        Ok(false)
    }

    fn maybe_signal(&mut self) {
        self.maybe_repeat();
        self.maybe_burst();
        if self.random.next_u64() % 100 >= 12 {
            return;
        }
        let symbol = ["BTC_USDT", "ETH_USDT"][(self.random.next_u64() % 2) as usize];
        let side = [Side::Buy, Side::Sell][(self.random.next_u64() % 2) as usize];
        let notional = 50 + self.random.next_u64() % 100;
        self.insert_signal(symbol, side, notional);
    }

    /// Now and then a signal for the watchlist symbol the exchange does not list.
    fn maybe_signal_unlisted(&mut self) {
        if let Some(side) = self.unlisted.draw_signal() {
            self.insert_signal(UNLISTED_SYMBOL, side, 60);
        }
    }

    /// Now and then in seeds with latency, several signals at once (`scale.rs`): their
    /// entries must not go out ahead of the fills already being polled (P1).
    fn maybe_burst(&mut self) {
        let burst = self.venue.borrow().scale.burst;
        let draw = (self.burst_random.next_u64() % 1000) as f64 / 1000.0;
        if burst <= 0.0 || draw >= burst || !self.venue.borrow().faults_on {
            return;
        }
        let spread = scale::BURST_SIGNALS_MAX - scale::BURST_SIGNALS_MIN + 1;
        let count = scale::BURST_SIGNALS_MIN + self.burst_random.next_u64() % spread;
        for index in 0..count {
            let symbol = ["BTC_USDT", "ETH_USDT"][(index % 2) as usize];
            let side = [Side::Buy, Side::Sell][(self.burst_random.next_u64() % 2) as usize];
            self.insert_signal(symbol, side, 50);
        }
    }

    fn insert_signal(&mut self, symbol: &str, side: Side, notional: u64) {
        let mut signal = SignalRow {
            id: 0,
            symbol: symbol.to_string(),
            side,
            quantity: None,
            notional: Some(Decimal::from(notional)),
            source: "simulation".into(),
            dedup_key: None,
            created_at_ms: self.wall.now_ms(),
            status: SignalStatus::New,
            reason: None,
            trade_id: None,
        };
        let id = self.senders.label(&mut signal);
        if let Some(agent) = &self.agent {
            let row = store::insert_signal(agent.store().conn(), &signal);
            if let Some(id) = id {
                self.senders.record(&id, row.ok().flatten());
            }
        }
    }

    /// An earlier signal sent again under its id, as a retry or a replay would.
    fn maybe_repeat(&mut self) {
        let Some(agent) = &self.agent else {
            return;
        };
        if let Some((id, signal)) = self.senders.repeat(self.wall.now_ms()) {
            let row = store::insert_signal(agent.store().conn(), &signal);
            self.senders.record(&id, row.ok().flatten());
        }
    }

    fn tick(&mut self) -> Result<(), Verdict> {
        self.ensure_agent()?;
        self.ticks += 1;
        let Some(mut agent) = self.agent.take() else {
            return Ok(());
        };
        self.unlisted.turn_begins(&agent);
        self.venue.borrow_mut().unlisted_calls.clear();
        if self.venue.borrow().faults_on
            && self.random.next_u64() % 1000 < (self.skew_step * 1000.0) as u64
        {
            self.wall.step();
        }
        let alive = self.guarded(|| {
            agent.resilient_turn()?;
            agent.sleep_until_next_deadline()
        })?;
        if alive {
            self.agent = Some(agent);
        }
        self.check()
    }

    fn check(&mut self) -> Result<(), Verdict> {
        let book = self.venue.borrow().paper.engine().book();
        let now = self.clock.now_ms();
        let separate = self.config.protection.mode == ProtectionMode::Separate;
        let mut problems = invariants::check_book(&book, separate);
        problems.extend(self.lasting_excess(&book, now));
        problems.extend(self.unalerted_double_fills(&book, now));
        problems.append(&mut self.venue.borrow_mut().violations);
        problems.extend(
            self.unlisted
                .check_turn(&self.venue.borrow().unlisted_calls),
        );
        invariants::note_fills(&book, now, &mut self.first_fill);
        let skew_range_ms = 2 * self.venue.borrow().plan.skew_max_ms;
        problems.extend(self.risk.check_book(&book, now, skew_range_ms));
        if let Some(agent) = &self.agent {
            let agent_now = self
                .venue
                .borrow()
                .agent_clock
                .as_ref()
                .map(|clock| clock.now_ms());
            let grace = risk::LOSS_TRIP_BOUND_MS + self.venue.borrow().plan.outage_ms;
            if let Some(agent_now) = agent_now {
                let times = risk::StoreTimes {
                    now,
                    agent_now,
                    grace_ms: grace,
                    skew_range_ms,
                };
                problems.extend(self.risk.check_store(agent.store(), times));
            }
            problems.extend(invariants::check_known(&book, agent.store()));
            problems.extend(invariants::check_not_quarantined(agent.store()));
            problems.extend(self.alerts.check(agent.store()));
            problems.extend(self.senders.check(agent.store()));
            let skew_max_ms = self.venue.borrow().plan.skew_max_ms;
            problems.extend(self.candle_signals.check(
                agent.store(),
                &self.config,
                now,
                skew_max_ms,
            ));
            problems.extend(invariants::check_protected(
                agent.store(),
                &mut self.first_fill,
                now,
                self.config.failsafe.on_protection_error,
            ));
        }
        match problems.into_iter().next() {
            Some(problem) => Err(Verdict::Correctness(problem)),
            None => Ok(()),
        }
    }

    /// S2 on the book: live protection above the net position. A sibling in separate mode
    /// outlives its leg's fill until the agent sees the fill and cancels it, which an outage or
    /// a crash can delay: S2 fails when the excess lasts longer than that can explain.
    fn lasting_excess(&mut self, book: &[OrderReport], now: Millis) -> Vec<String> {
        // Only separate mode has a sibling the agent must cancel itself; elsewhere no excess is
        // ever right.
        let separate = self.config.protection.mode == ProtectionMode::Separate;
        let grace = if separate {
            invariants::PROTECTION_BOUND_MS + self.venue.borrow().plan.outage_ms
        } else {
            0
        };
        let excess = invariants::excess_protection(book);
        self.excess_since.retain(|key, _| {
            excess
                .iter()
                .any(|(trade, role, _)| (*trade, *role) == *key)
        });
        let mut problems = Vec::new();
        for (trade, role, problem) in excess {
            let since = *self.excess_since.entry((trade, role)).or_insert(now);
            if grace == 0 || now - since > grace {
                problems.push(format!("{problem} for {} s", (now - since) / 1000));
            }
        }
        problems
    }

    /// A double fill of separate-mode legs must be named in a CRITICAL alert once the agent
    /// can see it (within the same bound as S2's excess).
    fn unalerted_double_fills(&mut self, book: &[OrderReport], now: Millis) -> Vec<String> {
        let grace = invariants::PROTECTION_BOUND_MS + self.venue.borrow().plan.outage_ms;
        let mut problems = Vec::new();
        for (trade, problem) in invariants::double_fills(book) {
            let since = *self.double_fill_since.entry(trade).or_insert(now);
            let alerted = self
                .agent
                .as_ref()
                .is_some_and(|agent| invariants::overshoot_alerted(agent.store(), trade));
            if !alerted && now - since > grace {
                problems.push(format!(
                    "{problem}, not alerted after {} s",
                    (now - since) / 1000
                ));
            }
        }
        problems
    }

    /// L1 and L2 hold: every trade settled, every position on the book protected or closed.
    fn settled(&self) -> bool {
        let Some(agent) = self.agent.as_ref() else {
            return false;
        };
        let book = self.venue.borrow().paper.engine().book();
        invariants::check_settled(agent.store()).is_empty()
            && invariants::check_positions(&book, agent.store()).is_empty()
            && self.unlisted.settled(agent.store())
    }

    fn calm(&mut self) -> Result<(), Verdict> {
        self.venue.borrow_mut().faults_on = false;
        self.disk.borrow_mut().on = false;
        self.alerts.set_faults(false);
        let calm_started_ms = self.clock.now_ms();
        for turn in 0..CALM_TICKS_MAX {
            self.tick()?;
            if let Some(agent) = &self.agent {
                self.unlisted.calm_turn(agent, self.wall.now_ms());
            }
            let settled = turn % 10 == 9 && self.settled();
            let long_enough =
                turn + 1 >= CALM_TICKS && self.clock.now_ms() - calm_started_ms >= CALM_MIN_MS;
            if settled || long_enough {
                break;
            }
        }
        self.ensure_agent()?;
        let agent = self.agent.as_ref().expect("no crashes without faults");
        let book = self.venue.borrow().paper.engine().book();
        let mut problems = invariants::check_settled(agent.store());
        problems.extend(invariants::check_positions(&book, agent.store()));
        if let Some(problem) = problems.into_iter().next() {
            return Err(Verdict::Liveness(problem));
        }
        if let Some(problem) = self.unlisted.check_end(agent.store()) {
            return Err(Verdict::Correctness(problem));
        }
        self.drain_alerts(calm_started_ms)?;
        let agent = self.agent.as_ref().expect("no crashes without faults");
        match SimAlertSink::check_drained(agent.store())
            .into_iter()
            .next()
        {
            Some(problem) => Err(Verdict::Liveness(problem)),
            None => Ok(()),
        }
    }

    /// The outbox may need longer than the trades once faults stop: an alert the channel
    /// refused waits `RETRY_DELAY_MAX`. Once the trades are settled (and checked), turns go
    /// on until it is drained or that bound (plus time for the queue behind it) has passed
    /// since the calm phase began.
    fn drain_alerts(&mut self, calm_started_ms: Millis) -> Result<(), Verdict> {
        let until_ms = calm_started_ms + ALERT_DRAIN_MS;
        for _ in 0..DRAIN_TICKS_MAX {
            let drained = self
                .agent
                .as_ref()
                .is_some_and(|agent| SimAlertSink::check_drained(agent.store()).is_empty());
            if drained || self.clock.now_ms() >= until_ms {
                break;
            }
            self.tick()?;
        }
        Ok(())
    }

    fn report(&self, verdict: Verdict) -> SeedReport {
        let store = Store::open(&self.config.store.path).ok();
        let events = store.as_ref().map(event_log).unwrap_or_default();
        let book = self.venue.borrow().paper.engine().book();
        let mut hash = Fnv::default();
        for line in &events {
            hash.write(line.as_bytes());
        }
        for order in &book {
            hash.write(
                format!(
                    "{}|{}|{}",
                    order.client_oid,
                    order.status.as_str(),
                    order.cumulative_quantity
                )
                .as_bytes(),
            );
        }
        let venue = self.venue.borrow();
        SeedReport {
            seed: self.seed,
            verdict,
            hash: hash.0,
            mode: self.config.protection.mode.as_str(),
            faults: format!(
                "{} {} {} {}",
                venue.plan.describe(),
                venue.scale.describe(),
                self.alerts.describe(),
                self.risk.describe()
            ),
            trades: store
                .as_ref()
                .and_then(|store| store::all_trade_ids(store.conn()).ok())
                .map_or(0, |ids| ids.len()),
            crashes: self.crashes,
            exits: self.exits,
            store_errors: self.disk.borrow().errors,
            ticks: self.ticks,
            flatten: self.config.failsafe.flatten,
            alert_only: !self.config.failsafe.on_protection_error,
            outage: venue.plan.outage_ms > 0,
            fixed_schedule: self.config.poll.schedule == PollSchedule::Fixed,
            listed_source: self.config.poll.source == PollSource::OpenThenHistory,
            alerts_down: self.alerts.faulty(),
            deferrals: venue.deferrals,
            signal_repeats: self.senders.repeats,
            risk: self.risk.is_on(),
            risk_refusals: store
                .as_ref()
                .and_then(|store| store::risk_drops_since(store.conn(), 0).ok())
                .map_or(0, |drops| drops.values().sum()),
            unlisted: self.unlisted.is_on(),
            trace: events
                .iter()
                .rev()
                .take(trace_length())
                .rev()
                .cloned()
                .collect(),
        }
    }
}

fn event_log(store: &Store) -> Vec<String> {
    let mut statement = match store
        .conn()
        .prepare("SELECT at_ms, trade_id, kind, detail FROM events ORDER BY id")
    {
        Ok(statement) => statement,
        Err(_) => return Vec::new(),
    };
    let rows = statement.query_map([], |row| {
        let at: i64 = row.get(0)?;
        let trade: Option<i64> = row.get(1)?;
        let kind: String = row.get(2)?;
        let detail: String = row.get(3)?;
        Ok(format!(
            "{at} trade={} {kind}: {detail}",
            trade.unwrap_or(0)
        ))
    });
    match rows {
        Ok(rows) => rows.filter_map(Result::ok).collect(),
        Err(_) => Vec::new(),
    }
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        return (*text).to_string();
    }
    if let Some(text) = payload.downcast_ref::<String>() {
        return text.clone();
    }
    "unknown panic".to_string()
}

/// FNV-1a, 64 bit: a stable hash across runs and builds (std's hasher is seeded per process).
#[derive(Default)]
struct Fnv(u64);

impl Fnv {
    fn write(&mut self, bytes: &[u8]) {
        if self.0 == 0 {
            self.0 = 0xcbf2_9ce4_8422_2325;
        }
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 ^= 0xff;
    }
}

/// Where simulation databases live: memory-backed when the machine has it (fsync is free there).
fn scratch_dir() -> std::io::Result<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("fillguard-sim-")
            .tempdir_in(shm)
        {
            return Ok(dir);
        }
    }
    tempfile::Builder::new().prefix("fillguard-sim-").tempdir()
}

/// Events of a failed seed's trace: the last 20, or `SIMULATE_TRACE` of them when replaying.
fn trace_length() -> usize {
    std::env::var("SIMULATE_TRACE")
        .ok()
        .and_then(|length| length.parse().ok())
        .unwrap_or(20)
}

/// Runs one seed: `ticks` turns with faults, then the calm phase.
pub fn run_seed(seed: u64, ticks: u64, canary: Option<Canary>) -> SeedReport {
    let dir = match scratch_dir() {
        Ok(dir) => dir,
        Err(error) => {
            return SeedReport {
                seed,
                verdict: Verdict::Crash(format!("no scratch directory: {error}")),
                hash: 0,
                mode: "",
                faults: String::new(),
                trades: 0,
                crashes: 0,
                exits: 0,
                store_errors: 0,
                ticks: 0,
                flatten: false,
                alert_only: false,
                outage: false,
                fixed_schedule: false,
                listed_source: false,
                alerts_down: false,
                deferrals: 0,
                signal_repeats: 0,
                risk: false,
                risk_refusals: 0,
                unlisted: false,
                trace: Vec::new(),
            };
        }
    };
    let mut run = Run::new(seed, dir.path(), canary);
    let mut verdict = Verdict::Pass;
    for _ in 0..ticks {
        run.maybe_signal();
        run.maybe_signal_unlisted();
        if let Err(failure) = run.tick() {
            verdict = failure;
            break;
        }
    }
    if verdict == Verdict::Pass {
        if let Err(failure) = run.calm() {
            verdict = failure;
        }
    }
    run.agent = None;
    run.report(verdict)
}

/// Silences the default panic message of simulated crashes (they are expected); any other
/// panic is still printed.
fn quiet_simulated_crashes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let simulated = payload.downcast_ref::<&str>() == Some(&CRASH)
            || payload.downcast_ref::<String>().map(String::as_str) == Some(CRASH);
        if !simulated {
            default(info);
        }
    }));
}

/// Runs every seed of `seeds` (two at a time), prints a summary and the first failure with the
/// command that replays it, and returns the exit code of the worst verdict.
pub fn run_seeds(seeds: std::ops::Range<u64>, ticks: u64, canary: Option<Canary>) -> u8 {
    use std::io::IsTerminal;
    quiet_simulated_crashes();
    let progress = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let workers = 2_u64;
    let reports: Vec<SeedReport> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let seeds = seeds.clone();
                scope.spawn(move || {
                    let mut reports = Vec::new();
                    for seed in seeds.filter(|seed| seed % workers == worker) {
                        reports.push(run_seed(seed, ticks, canary));
                        if progress && worker == 0 && reports.len() % 50 == 0 {
                            eprint!("\r{} seeds...", reports.len() as u64 * workers);
                        }
                    }
                    reports
                })
            })
            .collect();
        let mut all: Vec<SeedReport> = handles
            .into_iter()
            .flat_map(|handle| handle.join().unwrap_or_default())
            .collect();
        all.sort_by_key(|report| report.seed);
        all
    });
    if progress {
        eprintln!();
    }
    summarize(&reports, ticks, canary, started.elapsed())
}

#[cfg(test)]
mod tests;
