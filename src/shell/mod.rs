//! The thin shell: the agent's one loop. For each event it runs the core's `step` inside one
//! SQLite transaction (new state, intents, alerts and breaker trips commit together), then
//! executes the venue actions, whose results come back as events. It reconciles every open
//! trade at start-up before any new entry. The only module that uses venue, store and core
//! together.

pub mod alerts;
mod candles;
pub mod clock;
pub mod execute;
pub mod lookup;
mod observe;
mod records;
mod refusals;
mod retention;
mod risk;
mod signals;
mod turn;
mod urgent;
pub mod watch;
mod watchlist;

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tracing::{error, info, info_span, warn};

use crate::config::Config;
use crate::core::breaker::{GLOBAL, entry_block_reason};
use crate::core::clock::Clock;
use crate::core::domain::Millis;
use crate::core::ids::CLIENT_OID_PREFIX;
use crate::core::startup::{self, CheckResult};
use crate::core::trade::{Action, Alert, Event, Limits, Severity, TradeState, TradeView, step};
use crate::store::{self, Store};
use crate::telemetry::sd_notify::Notifier;
use crate::venue::{Budget, Venue};
use lookup::Lookups;
use observe::Trip;
pub use records::trip_breaker;
use records::{
    apply_local_action, apply_startup_actions, breaker_reset_event, describe_event, is_store_error,
    record_state_change,
};
use refusals::Refusal;
use turn::{turn_order, urgency};

/// Bound on the events one trade may go through in one drive (each is at most a few requests).
const DRIVE_EVENTS_MAX: usize = 64;
/// Bound on alerts delivered per loop turn.
const ALERTS_PER_TURN_MAX: usize = 20;
/// Longest single sleep, so a stop request is noticed promptly.
const SLEEP_SLICE: Duration = Duration::from_millis(100);
/// Consecutive turns a refusing database (busy, full, I/O) is waited out before the agent
/// exits non-zero for its supervisor; the waits grow by this delay each time (55 s in all).
const STORE_FAILURES_MAX: u32 = 10;
const STORE_RETRY_DELAY: Duration = Duration::from_secs(1);

pub fn limits_from(config: &Config) -> Limits {
    let millis = |duration: Duration| i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    Limits {
        poll_attempts_max: config.poll.max_attempts,
        poll_interval_ms: millis(config.poll.interval),
        poll_deadline_ms: millis(config.poll.deadline),
        protect_attempts_max: config.protection.max_attempts,
        reprotect_max: config.protection.reprotect_max,
        watch_interval_ms: millis(config.protection.watch_interval),
        on_protection_error: config.failsafe.on_protection_error,
        flatten: config.failsafe.flatten,
        steady_since_ms: 0,
        poll: config.poll.policy(),
    }
}

/// What a run did, for the closing log line and for tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunSummary {
    pub ticks: u64,
    pub trades_opened: u64,
    pub signals_dropped: u64,
}

pub struct Agent {
    config: Config,
    store: Store,
    venue: Box<dyn Venue>,
    clock: Rc<dyn Clock>,
    wall: Rc<dyn Clock>,
    limits: Limits,
    stop: Arc<AtomicBool>,
    next_signal_check_ms: Millis,
    /// The strategies of this signal check have run; only the inbox waits (for urgent work)
    /// and is checked again, without fetching candles anew.
    inbox_waits: bool,
    /// Last candle each strategy acted on, per symbol (the store's dedup key makes it durable).
    last_candle: BTreeMap<String, Millis>,
    /// Each watched symbol's newest closed candles, refreshed incrementally (`candles.rs`).
    candles: candles::CandleCache,
    /// Whether strategies read closed candles only. Always on; only the simulation's canary
    /// turns it off, to prove its check can fail.
    closed_candles_only: bool,
    summary: RunSummary,
    /// Set at start and after a turn the database refused: every open trade is driven (read
    /// back from the exchange) before anything else happens.
    reconcile_pending: bool,
    /// Consecutive turns the database refused.
    store_failures: u32,
    /// The refused turns not yet reported to the operator (`refusals`).
    refusal: Option<Refusal>,
    /// Wall time of the last refusal report (`refusals::REPORT_INTERVAL_MS` apart at least).
    refusal_reported_ms: Option<Millis>,
    /// When the venue self-check runs next (`None`: passed, or refused for good).
    self_check_due_ms: Option<Millis>,
    /// Consecutive self-check failures, and when they began.
    self_check_failures: u32,
    self_check_since_ms: Millis,
    /// The alert outbox's sink and delivery state (`alerts.rs`).
    alerts: alerts::Outbox,
    /// Symbols whose `positions_unprotected` series the metrics report (`observe.rs`).
    unprotected_symbols: std::cell::RefCell<std::collections::BTreeSet<String>>,
    /// The supervisor's readiness, watchdog and status channel (off unless `set_notifier`).
    notify: Notifier,
    /// Lookup chains the turn's budget interrupted, resumed next turn (`lookup.rs`).
    lookups: Lookups,
    /// The first trade whose work the budget deferred this turn; the next turn starts with it.
    deferred_trade: Option<i64>,
    /// Whether the venue deferred anything this turn: its budget is spent, and the turn's
    /// remaining venue work (other trades, the self-check, signals) waits for the next one.
    turn_deferred: bool,
    /// Whether a reconciliation is under way, and the trades it has read back so far (it may
    /// take several turns).
    reconciling: bool,
    reconciled: std::collections::BTreeSet<i64>,
    /// When the events' retention deletes its next batch (`retention.rs`).
    next_prune_ms: Millis,
    /// Whether due work of possibly unprotected positions is served before each new entry
    /// (`urgent.rs`). Always on; only the simulation's canary turns it off, to prove its
    /// check can fail.
    protection_first: bool,
    /// The turn's open-orders snapshot that protected trades are watched from (`watch.rs`).
    watch: watch::Watch,
    /// Each watchlist symbol against the exchange's instruments (`watchlist.rs`).
    watchlist: watchlist::WatchlistGate,
}

impl Agent {
    pub fn new(
        config: Config,
        store: Store,
        venue: Box<dyn Venue>,
        clock: Rc<dyn Clock>,
        wall: Rc<dyn Clock>,
        stop: Arc<AtomicBool>,
    ) -> Agent {
        let limits = Limits {
            steady_since_ms: clock.now_ms(),
            ..limits_from(&config)
        };
        let alerts = alerts::Outbox::new(&config);
        let watchlist = watchlist::WatchlistGate::new(&config.watchlist);
        Agent {
            config,
            store,
            venue,
            clock,
            wall,
            limits,
            stop,
            next_signal_check_ms: 0,
            inbox_waits: false,
            last_candle: BTreeMap::new(),
            candles: candles::CandleCache::default(),
            closed_candles_only: true,
            summary: RunSummary::default(),
            reconcile_pending: true,
            store_failures: 0,
            refusal: None,
            refusal_reported_ms: None,
            self_check_due_ms: None,
            self_check_failures: 0,
            self_check_since_ms: 0,
            alerts,
            unprotected_symbols: Default::default(),
            notify: Notifier::disabled(),
            lookups: Lookups::default(),
            deferred_trade: None,
            turn_deferred: false,
            reconciling: false,
            reconciled: Default::default(),
            next_prune_ms: 0,
            protection_first: true,
            watch: watch::Watch::default(),
            watchlist,
        }
    }

    /// How protected trades' legs are read back (`watch::WatchMode`); the snapshot unless
    /// a measurement or the simulation's canary asks otherwise.
    pub fn set_watch_mode(&mut self, mode: watch::WatchMode) {
        self.watch.set_mode(mode);
    }

    /// The watch's counts so far: snapshots taken, leg lookups answered from one, leg
    /// lookups passed on to the lookup chain.
    pub fn watch_counts(&self) -> (u64, u64, u64) {
        (
            self.watch.snapshots,
            self.watch.answered,
            self.watch.passed_on,
        )
    }

    /// Turns protection first (`urgent.rs`) off: new entries go out in the signal check even
    /// while other trades' fill polls or protection wait. Wrong on purpose; for the
    /// simulation's canary only, which must make its protection-first check fail.
    pub fn set_protection_first(&mut self, on: bool) {
        self.protection_first = on;
    }

    /// Off, strategies read every candle as if it had closed a timeframe earlier, so the one
    /// still forming counts as closed. Wrong on purpose; for the simulation's canary only,
    /// which must make its closed-candle check (C1) fail.
    pub fn set_closed_candles_only(&mut self, on: bool) {
        self.closed_candles_only = on;
    }

    /// A fresh time budget for the venue's requests (`loop.turn_budget_seconds`), on the
    /// monotonic clock the requests' own timeouts run on. Called at the start of every turn.
    fn new_budget(&mut self) {
        let budget = Budget::starting(Instant::now(), self.config.loop_.turn_budget);
        self.venue.set_budget(budget);
        self.lookups.new_turn();
        self.watch.new_turn();
        self.turn_deferred = false;
    }

    /// Active trades in this turn's order: by the urgency of their state
    /// (`TradeState::urgency`: a position that may be unprotected first, a new entry last), and
    /// within one urgency from the trade the last turn deferred (its interrupted work resumes
    /// with what the more urgent trades left of the budget), then the others by id. So a long
    /// lookup of a recovering trade never holds up a fresh fill's protection.
    fn active_in_turn_order(&mut self) -> anyhow::Result<Vec<store::ActiveTrade>> {
        let active = store::active_trade_states(self.store.conn())?;
        Ok(turn_order(active, self.deferred_trade.take()))
    }

    /// Reports readiness, liveness and a status line to systemd through `notify`.
    pub fn set_notifier(&mut self, notify: Notifier) {
        self.notify = notify;
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn venue_mut(&mut self) -> &mut dyn Venue {
        self.venue.as_mut()
    }

    /// Runs the loop until a stop request or `max_ticks` turns.
    pub fn run(&mut self, max_ticks: Option<u64>) -> anyhow::Result<RunSummary> {
        // The self-check runs in the first turn, before any signal is read.
        self.self_check_due_ms = Some(self.clock.now_ms());
        // Every open trade is read back before anything else (`resilient_turn`).
        self.reconcile_pending = true;
        let ticks_before = self.summary.ticks;
        // The gauges say what the database says from the first scrape on, even after a restart.
        self.refresh_gauges();
        self.notify.status("starting: reconciling open trades");
        // The agent's one unbounded loop (bounded by --max-ticks when given): it ends on
        // SIGINT/SIGTERM after finishing the current step.
        loop {
            // Pings come from this thread only, at turn boundaries and while it sleeps, so
            // the supervisor's watchdog sees the loop itself turning.
            self.notify.watchdog();
            if self.stop.load(Ordering::SeqCst) {
                info!("stop requested; exiting after the current step");
                self.notify.stopping();
                break;
            }
            if max_ticks.is_some_and(|max| self.summary.ticks - ticks_before >= max) {
                break;
            }
            self.resilient_turn()?;
            self.report_status();
            self.summary.ticks += 1;
            self.sleep_until_next_deadline()?;
        }
        Ok(self.summary.clone())
    }

    /// One turn of `run`: the report of an earlier refusal, the start-up reconciliation if it
    /// is pending, then `turn`. A turn the database refuses for a passing reason (busy, full,
    /// I/O) is abandoned — its transaction rolled back, nothing in memory kept but the loop's
    /// timers and the refusal episode — logged with its cause and counted, and the next turn
    /// reconciles first, exactly as after a restart. Fails after `STORE_FAILURES_MAX`
    /// consecutive refusals, or at once on any other error.
    pub fn resilient_turn(&mut self) -> anyhow::Result<()> {
        let started = Instant::now();
        // One alert-delivery budget for the whole turn, reconciliation included, so a slow
        // alert channel holds a turn up by at most one attempt; and one time budget that every
        // exchange request of the turn draws from.
        self.alerts.new_turn();
        self.new_budget();
        let result = self.report_refusal().and_then(|()| {
            if self.reconcile_pending {
                let reconciled = self.reconcile();
                if reconciled.is_err() || !self.reconcile_pending {
                    observe::record_reconciliation(reconciled.is_ok());
                }
                reconciled?;
                if self.reconcile_pending {
                    // The budget ran out first: the reconciliation goes on next turn, and
                    // nothing else happens before it is complete. The supervisor's start
                    // timeout is extended turn by turn, so a long reconciliation on a slow
                    // exchange is not killed and begun again (which would never end).
                    let unit = crate::venue::cryptocom::longest_unit(
                        self.config.loop_.turn_budget,
                        self.config.venue.timeout,
                    );
                    self.notify.extend_start(unit * 2);
                    return Ok(());
                }
                // The database is open, migrated and locked, and every open trade was read
                // back: the supervisor may consider the agent started (sent once).
                self.notify.ready();
            }
            self.due_work()
        });
        self.record_turn(started.elapsed().as_secs_f64(), result.is_ok());
        self.refresh_gauges();
        let error = match result {
            Ok(()) => {
                self.store_failures = 0;
                return Ok(());
            }
            Err(error) => error,
        };
        self.store_failures += 1;
        let cause = observe::store_cause(&error);
        if is_store_error(&error) {
            observe::record_store_failure(cause);
        }
        if !is_transient_store_error(&error) || self.store_failures >= STORE_FAILURES_MAX {
            return Err(error);
        }
        self.reconcile_pending = true;
        self.reconciling = false;
        self.reconciled.clear();
        let now = self.wall.now_ms();
        self.refusal
            .get_or_insert_with(|| Refusal::new(now))
            .record(cause, now);
        error!(error = %format!("{error:#}"), cause, failures = self.store_failures,
            limit = STORE_FAILURES_MAX,
            "database refused a write; turn abandoned, open trades are read back before the next");
        self.sleep_unless_stopped(STORE_RETRY_DELAY * self.store_failures);
        Ok(())
    }

    /// One loop turn on its own (without `resilient_turn`'s reconciliation and refusal
    /// handling): due trades, signals, alerts, with a fresh alert-delivery budget.
    pub fn turn(&mut self) -> anyhow::Result<()> {
        self.alerts.new_turn();
        self.new_budget();
        self.due_work()
    }

    /// F13: if the venue no longer accepts what protection needs, no entry may open. One
    /// attempt per call; `core::startup::self_check` decides: a passing failure (no route,
    /// timeout, 5xx, 429) opens the global breaker and is retried with backoff, closing the
    /// breaker when it passes; a definitive refusal opens it for the operator. Entries only:
    /// open trades keep being managed.
    pub fn self_check(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let result = match self.venue.self_check() {
            Err(error) if error.is_deferred() => {
                // No answer yet: the check stays due and runs first thing next turn.
                info!(error = %error, "venue self-check deferred to the next turn");
                self.turn_deferred = true;
                return Ok(());
            }
            Ok(()) => CheckResult::Passed,
            Err(error) if error.is_transient() => CheckResult::Transient(error.to_string()),
            Err(error) => CheckResult::Definitive(error.to_string()),
        };
        if self.self_check_failures == 0 {
            self.self_check_since_ms = now;
        }
        match &result {
            CheckResult::Passed => info!("venue self-check passed"),
            CheckResult::Transient(error) => warn!(error = %error,
                failures = self.self_check_failures + 1, "venue self-check failed; retrying"),
            CheckResult::Definitive(error) => {
                error!(error = %error, "venue self-check refused; no new entries")
            }
        }
        let global = store::breaker(self.store.conn(), GLOBAL)?;
        let decision = startup::self_check(
            &result,
            self.self_check_failures,
            global.as_ref(),
            self.venue.name(),
            self.self_check_since_ms,
            now,
        );
        let mut trips = Vec::new();
        self.store.transaction(|conn| {
            apply_startup_actions(conn, &decision.actions, now, &mut trips)?;
            if result != CheckResult::Passed {
                let detail = format!("{result:?}");
                store::record_event(conn, now, None, None, "self_check", &detail)?;
            }
            Ok(())
        })?;
        observe::record_trips(&trips);
        self.self_check_failures = match result {
            CheckResult::Passed => 0,
            _ => self.self_check_failures.saturating_add(1),
        };
        self.self_check_due_ms = decision.retry_at_ms;
        self.deliver_alerts()
    }

    /// Start-up reconciliation: every non-terminal trade is driven once (the core looks its
    /// orders up by client_oid before anything is re-sent), and every open exchange order with
    /// fillguard's prefix must be known to the store (S5). It may take several turns when the
    /// turn's time budget runs out (a slow exchange): the trades read back so far are kept in
    /// `reconciled`, a trade whose drive was deferred is driven again next turn (its lookup
    /// chain resumes), and `reconcile_pending` stays set until all of it is done.
    pub fn reconcile(&mut self) -> anyhow::Result<()> {
        let active = self.active_in_turn_order()?;
        let open_trades = active.len();
        if !self.reconciling {
            self.reconciling = true;
            info!(open_trades, "reconciling open trades");
        }
        let mut entries_wait = false;
        for (trade_id, _, state) in active {
            if self.turn_deferred {
                break;
            }
            if self.reconciled.contains(&trade_id) {
                continue;
            }
            // An entry intent not sent yet waits for urgent work (`urgent.rs`): it stays due
            // and the turns after the reconciliation send it.
            if urgency(state) == urgent::URGENCY_NEW_ENTRY {
                entries_wait = entries_wait || !self.urgent_first()?;
                if entries_wait {
                    continue;
                }
            }
            self.drive(trade_id, Event::Due)?;
            if !self.turn_deferred {
                self.reconciled.insert(trade_id);
            }
        }
        if !self.turn_deferred {
            match self.venue.open_orders() {
                Ok(orders) => {
                    for order in orders {
                        self.check_known(&order.client_oid, &order.symbol, &order.order_id)?;
                    }
                }
                Err(error) if error.is_deferred() => self.turn_deferred = true,
                Err(error) => warn!(error = %error, "open orders unavailable for reconciliation"),
            }
        }
        self.notify.watchdog();
        self.deliver_alerts()?;
        if self.turn_deferred {
            info!(
                open_trades,
                reconciled = self.reconciled.len(),
                "reconciliation continues next turn (the turn's time budget is spent)"
            );
            return Ok(());
        }
        self.reconcile_pending = false;
        self.reconciling = false;
        self.reconciled.clear();
        info!(open_trades, "open trades reconciled");
        Ok(())
    }

    /// S5: an open exchange order with fillguard's prefix that the store does not know is
    /// judged by `core::startup::unknown_order` (an orphan of this database, or another
    /// database's order left alone).
    fn check_known(
        &mut self,
        client_oid: &str,
        symbol: &str,
        order_id: &str,
    ) -> anyhow::Result<()> {
        if !client_oid.starts_with(CLIENT_OID_PREFIX) {
            return Ok(());
        }
        if store::knows_client_oid(self.store.conn(), client_oid)? {
            return Ok(());
        }
        let epochs = store::known_epochs(self.store.conn())?;
        let actions = startup::unknown_order(&epochs, client_oid, symbol, order_id);
        if actions.is_empty() {
            return Ok(());
        }
        let now = self.clock.now_ms();
        warn!(
            symbol,
            client_oid, order_id, "order with fillguard's prefix unknown to the store"
        );
        let mut trips = Vec::new();
        self.store.transaction(|conn| {
            apply_startup_actions(conn, &actions, now, &mut trips)?;
            store::record_event(conn, now, None, Some(symbol), "unknown_order", client_oid)
        })?;
        observe::record_trips(&trips);
        Ok(())
    }

    /// Feeds `event` to one trade and keeps going with the events its actions produce, until
    /// the trade has nothing left to do now.
    pub fn drive(&mut self, trade_id: i64, event: Event) -> anyhow::Result<()> {
        // Every line logged while the trade is driven carries TRADE_ID and SYMBOL (journald
        // fields through the span).
        let symbol = store::trade_symbol(self.store.conn(), trade_id)
            .ok()
            .flatten()
            .unwrap_or_default();
        let span = info_span!("trade", trade_id, symbol = %symbol);
        let _entered = span.enter();
        let mut queue = VecDeque::from([event]);
        for _ in 0..DRIVE_EVENTS_MAX {
            // Each event is a step forward (its requests answered or timed out), so a long
            // reconciliation of many trades does not look like a hung loop.
            self.notify.watchdog();
            let Some(event) = queue.pop_front() else {
                return Ok(());
            };
            let (view, actions) = match self.commit_step(trade_id, event) {
                Ok(stepped) => stepped,
                Err(error) if is_transient_store_error(&error) => return Err(error),
                // One trade that cannot be loaded or stepped must not stop the others.
                Err(error) => return self.quarantine(trade_id, &error),
            };
            let entry_block = self.entry_block(&view.trade.symbol)?;
            for action in &actions {
                // A protected trade's read-back comes from the turn's snapshot when it can.
                let result = match self.watch.answer(self.venue.as_mut(), &view, action) {
                    Some(event) => Some(event),
                    None => execute::execute(
                        self.venue.as_mut(),
                        &mut self.lookups,
                        &view,
                        action,
                        entry_block.as_deref(),
                    ),
                };
                match &result {
                    Some(Event::Deferred { .. }) => {
                        self.turn_deferred = true;
                        self.deferred_trade.get_or_insert(trade_id);
                    }
                    Some(event) => observe::record_send(event),
                    None => {}
                }
                queue.extend(result);
            }
        }
        warn!(
            trade_id,
            pending = queue.len(),
            "trade still busy after the per-turn bound; continuing next turn"
        );
        Ok(())
    }

    /// One transaction: load, step, store state, intents, alerts and breaker trips. What the
    /// step showed is recorded in the metrics once it committed.
    fn commit_step(
        &mut self,
        trade_id: i64,
        event: Event,
    ) -> anyhow::Result<(TradeView, Vec<Action>)> {
        let now = self.clock.now_ms();
        let limits = self.limits.clone();
        let event_text = describe_event(&event);
        let mut panicked = false;
        let mut trips = Vec::new();
        let result = self.store.transaction(|conn| {
            let mut view = store::load_view(conn, trade_id)?;
            let before = view.trade.clone();
            let event = breaker_reset_event(conn, &view, event)?;
            let looked = matches!(event, Event::Looked { .. });
            let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                step(&mut view, event, now, &limits)
            }));
            let Ok(actions) = stepped else {
                panicked = true;
                return Err(store::StoreError::Corrupt(format!(
                    "trade {trade_id}: the state machine failed on it (see the panic above)"
                )));
            };
            store::save_view(conn, &view)?;
            for action in &actions {
                apply_local_action(conn, &view, action, now, &mut trips)?;
            }
            if before.state != view.trade.state {
                record_state_change(conn, before.state, &view, &event_text, now)?;
            }
            let facts = observe::step_facts(&before, &view.trade, looked);
            Ok((view, actions, before.state, facts))
        });
        if panicked {
            return Err(anyhow::Error::new(StepPanicked(trade_id)));
        }
        let (view, actions, before, facts) =
            result.with_context(|| format!("storing a step of trade {trade_id}"))?;
        observe::record_step(&facts, &trips);
        if before != view.trade.state {
            info!(
                from = before.as_str(),
                to = view.trade.state.as_str(),
                reason = view.trade.close_reason.as_deref().unwrap_or(""),
                "trade state changed"
            );
        }
        Ok((view, actions))
    }

    /// Halts one trade that cannot be loaded or stepped (a hand-edited row, a contradiction in
    /// its stored state): CRITICAL alert and its symbol's breaker; every other trade goes on.
    fn quarantine(&mut self, trade_id: i64, error: &anyhow::Error) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let problem = format!("{error:#}");
        // A row that does not load is the data's fault; anything else (the state machine
        // failing, a constraint of the schema refusing what it returned) is a bug of fillguard.
        let corrupt = error.downcast_ref::<StepPanicked>().is_none()
            && error
                .chain()
                .filter_map(|cause| cause.downcast_ref::<store::StoreError>())
                .any(|cause| matches!(cause, store::StoreError::Corrupt(_)));
        let (reason, title) = if corrupt {
            ("inconsistent_trade", "INCONSISTENT TRADE")
        } else {
            (
                "internal_error",
                "INTERNAL ERROR (a bug of fillguard; please report it) on trade",
            )
        };
        error!(error = %problem, reason, "trade halted: it cannot be stepped");
        let (breaker_symbol, opened) = self.store.transaction(|conn| {
            let symbol = store::quarantine_trade(conn, trade_id, reason, now)?;
            let breaker_symbol = symbol.as_deref().unwrap_or(GLOBAL);
            let alert = Alert {
                severity: Severity::Critical,
                key: format!("halt-{trade_id}-{reason}-{now}"),
                text: format!(
                    "{title} {trade_id} {}: {problem}. The trade is HALTED and the breaker for {breaker_symbol} is OPEN; every other trade goes on. Operator: inspect it with `fillguard status`, settle its position on the exchange by hand, then `fillguard breaker reset {breaker_symbol}`",
                    symbol.as_deref().unwrap_or("(symbol unreadable)")
                ),
            };
            let opened = trip_breaker(conn, breaker_symbol, reason, now)?;
            store::enqueue_alert(conn, &alert, Some(trade_id), symbol.as_deref(), now)?;
            store::record_event(conn, now, Some(trade_id), symbol.as_deref(), "halt", &problem)?;
            Ok((breaker_symbol.to_string(), opened))
        })?;
        observe::record_quarantine(&breaker_symbol, reason);
        if opened {
            observe::record_trips(&[Trip {
                symbol: breaker_symbol,
                reason: reason.to_string(),
            }]);
        }
        Ok(())
    }

    fn entry_block(&self, symbol: &str) -> anyhow::Result<Option<String>> {
        let conn = self.store.conn();
        let symbol_breaker = store::breaker(conn, symbol)?;
        let global = store::breaker(conn, GLOBAL)?;
        Ok(entry_block_reason(symbol_breaker.as_ref(), global.as_ref()))
    }

    pub fn sleep_until_next_deadline(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let mut wake = self.next_signal_check_ms;
        for (_, due) in store::active_trades(self.store.conn())? {
            if let Some(due) = due {
                wake = wake.min(due);
            }
        }
        let interval = self.config.loop_.interval;
        let wait_ms = (wake - now).max(0) as u64;
        self.sleep_unless_stopped(Duration::from_millis(wait_ms).min(interval));
        Ok(())
    }

    /// Sleeps in slices, so a stop request is noticed promptly and the watchdog is pinged
    /// through long waits (the refused-database back-off included).
    fn sleep_unless_stopped(&mut self, duration: Duration) {
        let mut remaining = duration;
        while !remaining.is_zero() && !self.stop.load(Ordering::SeqCst) {
            let slice = remaining.min(SLEEP_SLICE);
            self.clock.sleep(slice);
            remaining -= slice;
            self.notify.watchdog();
        }
    }

    /// `STATUS=` for `systemctl status`: open trades, protected ones, open breakers, from the
    /// same reads as the gauges; sent only when it changed.
    fn report_status(&mut self) {
        match observe::status_line(&self.store) {
            Ok(line) => self.notify.status(&line),
            Err(error) => warn!(error = %error, "status line: the database could not be read"),
        }
    }
}

/// The core's `step` panicked on a trade (caught, so one trade's bug never stops the others).
#[derive(Debug, thiserror::Error)]
#[error("the state machine failed on trade {0} (a bug; see the panic above)")]
struct StepPanicked(i64);

/// Whether `error` is the database refusing for a passing reason (see
/// `StoreError::is_transient`): the supervisor's restart, or a later turn, may succeed.
pub fn is_transient_store_error(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<store::StoreError>())
        .any(store::StoreError::is_transient)
}
