//! The thin shell: the agent's one loop. For each event it runs the core's `step` inside one
//! SQLite transaction (new state, intents, alerts and breaker trips commit together), then
//! executes the venue actions, whose results come back as events. It reconciles every open
//! trade at start-up before any new entry. The only module that uses venue, store and core
//! together.

pub mod clock;
pub mod execute;
mod signals;

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::core::breaker::{Breaker, GLOBAL, entry_block_reason};
use crate::core::clock::Clock;
use crate::core::domain::Millis;
use crate::core::ids::{CLIENT_OID_PREFIX, parse_client_oid};
use crate::core::trade::{Action, Alert, Event, Limits, Severity, TradeView, step};
use crate::store::{self, Store};
use crate::venue::{Venue, VenueError};

/// Bound on the events one trade may go through in one drive (each is at most a few requests).
const DRIVE_EVENTS_MAX: usize = 64;
/// Bound on alerts delivered per loop turn.
const ALERTS_PER_TURN_MAX: usize = 20;
/// Attempts of the start-up self-check when it meets passing faults (5xx, timeouts, 429).
const SELF_CHECK_ATTEMPTS_MAX: u32 = 4;
const SELF_CHECK_RETRY_DELAY: Duration = Duration::from_millis(500);
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
    /// Last candle each strategy acted on, per symbol (the store's dedup key makes it durable).
    last_candle: BTreeMap<String, Millis>,
    summary: RunSummary,
    /// Set at start and after a turn the database refused: every open trade is driven (read
    /// back from the exchange) before anything else happens.
    reconcile_pending: bool,
    /// Consecutive turns the database refused.
    store_failures: u32,
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
        Agent {
            config,
            store,
            venue,
            clock,
            wall,
            limits,
            stop,
            next_signal_check_ms: 0,
            last_candle: BTreeMap::new(),
            summary: RunSummary::default(),
            reconcile_pending: true,
            store_failures: 0,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn venue_mut(&mut self) -> &mut dyn Venue {
        self.venue.as_mut()
    }

    /// Runs the loop until a stop request or `max_ticks` turns.
    pub fn run(&mut self, max_ticks: Option<u64>) -> anyhow::Result<RunSummary> {
        self.self_check()?;
        // Every open trade is read back before anything else (`resilient_turn`).
        self.reconcile_pending = true;
        let ticks_before = self.summary.ticks;
        // The agent's one unbounded loop (bounded by --max-ticks when given): it ends on
        // SIGINT/SIGTERM after finishing the current step.
        loop {
            if self.stop.load(Ordering::SeqCst) {
                info!("stop requested; exiting after the current step");
                break;
            }
            if max_ticks.is_some_and(|max| self.summary.ticks - ticks_before >= max) {
                break;
            }
            self.resilient_turn()?;
            self.summary.ticks += 1;
            self.sleep_until_next_deadline()?;
        }
        Ok(self.summary.clone())
    }

    /// One turn of `run`: the start-up reconciliation if it is pending, then `turn`. A turn
    /// the database refuses for a passing reason (busy, full, I/O) is abandoned — its
    /// transaction rolled back, nothing in memory kept but the loop's timers — and the next
    /// turn reconciles first, exactly as after a restart. Fails after `STORE_FAILURES_MAX`
    /// consecutive refusals, or at once on any other error.
    pub fn resilient_turn(&mut self) -> anyhow::Result<()> {
        let result = if self.reconcile_pending {
            self.reconcile()
        } else {
            Ok(())
        };
        let error = match result.and_then(|()| self.turn()) {
            Ok(()) => {
                self.store_failures = 0;
                return Ok(());
            }
            Err(error) => error,
        };
        self.store_failures += 1;
        if !is_transient_store_error(&error) || self.store_failures >= STORE_FAILURES_MAX {
            return Err(error);
        }
        self.reconcile_pending = true;
        error!(error = %format!("{error:#}"), failures = self.store_failures,
            limit = STORE_FAILURES_MAX,
            "database refused a write; turn abandoned, open trades are read back before the next");
        self.sleep_unless_stopped(STORE_RETRY_DELAY * self.store_failures);
        Ok(())
    }

    /// One loop turn: due trades, signals, alerts.
    pub fn turn(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        for (trade_id, due) in store::active_trades(self.store.conn())? {
            if due.is_some_and(|due| due <= now) {
                self.drive(trade_id, Event::Due)?;
            }
        }
        if now >= self.next_signal_check_ms {
            self.check_signals()?;
            let interval = self.config.loop_.interval.as_millis() as i64;
            self.next_signal_check_ms = now + interval;
        }
        self.deliver_alerts()?;
        Ok(())
    }

    /// F13: if the venue no longer accepts what protection needs, no entry may open. The global
    /// breaker opens (entries only: open trades keep being managed) and a CRITICAL alert says why.
    pub fn self_check(&mut self) -> anyhow::Result<()> {
        let mut attempt = 1;
        let error = loop {
            let error = match self.venue.self_check() {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            // A passing fault is retried; a refusal (auth, API disabled, ...) is an answer.
            let passing = error.is_ambiguous() || matches!(error, VenueError::RateLimited(_));
            if !passing || attempt >= SELF_CHECK_ATTEMPTS_MAX {
                break error;
            }
            warn!(attempt, error = %error, "venue self-check failed; retrying");
            self.clock.sleep(SELF_CHECK_RETRY_DELAY * attempt);
            attempt += 1;
        };
        let now = self.clock.now_ms();
        error!(error = %error, "venue self-check failed; no new entries");
        let alert = Alert {
            severity: Severity::Critical,
            key: format!("self-check-{now}"),
            text: format!(
                "VENUE SELF-CHECK FAILED on {}: {error}. The global breaker is OPEN: no new entries; open trades are still protected and watched. Operator: check the API key's permissions, IP whitelist and the exchange's status, then `fillguard breaker reset \"*\"`",
                self.venue.name()
            ),
        };
        self.store.transaction(|conn| {
            trip_breaker(conn, GLOBAL, "self_check_failed", now)?;
            store::enqueue_alert(conn, &alert, None, None, now)?;
            store::record_event(conn, now, None, None, "self_check", &error.to_string())
        })?;
        self.deliver_alerts()
    }

    /// Start-up reconciliation: every non-terminal trade is driven once (the core looks its
    /// orders up by client_oid before anything is re-sent), and every open exchange order with
    /// fillguard's prefix must be known to the store (S5).
    pub fn reconcile(&mut self) -> anyhow::Result<()> {
        let active = store::active_trades(self.store.conn())?;
        info!(open_trades = active.len(), "reconciling open trades");
        for (trade_id, _) in active {
            self.drive(trade_id, Event::Due)?;
        }
        match self.venue.open_orders() {
            Ok(orders) => {
                for order in orders {
                    self.check_known(&order.client_oid, &order.symbol, &order.order_id)?;
                }
            }
            Err(error) => warn!(error = %error, "open orders unavailable for reconciliation"),
        }
        self.deliver_alerts()?;
        self.reconcile_pending = false;
        Ok(())
    }

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
        let now = self.clock.now_ms();
        let trade_id = parse_client_oid(client_oid).map(|(id, _, _)| id);
        let alert = Alert {
            severity: Severity::Critical,
            key: format!("orphan-{client_oid}"),
            text: format!(
                "ORPHAN ORDER {symbol}: open order client_oid={client_oid} order_id={order_id} carries fillguard's prefix but is unknown to the store (restored or moved database?). Breaker for {symbol} OPEN. Operator: cancel or adopt it on the exchange, then `fillguard breaker reset {symbol}`"
            ),
        };
        error!(symbol, client_oid, order_id, "orphan order found");
        self.store.transaction(|conn| {
            trip_breaker(conn, symbol, "orphan_order", now)?;
            store::enqueue_alert(conn, &alert, trade_id, Some(symbol), now)?;
            store::record_event(conn, now, None, Some(symbol), "orphan_order", client_oid)
        })?;
        Ok(())
    }

    /// Feeds `event` to one trade and keeps going with the events its actions produce, until
    /// the trade has nothing left to do now.
    pub fn drive(&mut self, trade_id: i64, event: Event) -> anyhow::Result<()> {
        let mut queue = VecDeque::from([event]);
        for _ in 0..DRIVE_EVENTS_MAX {
            let Some(event) = queue.pop_front() else {
                return Ok(());
            };
            let (view, actions) = self.commit_step(trade_id, event)?;
            let entry_block = self.entry_block(&view.trade.symbol)?;
            for action in &actions {
                let result =
                    execute::execute(self.venue.as_mut(), &view, action, entry_block.as_deref());
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

    /// One transaction: load, step, store state, intents, alerts and breaker trips.
    fn commit_step(
        &mut self,
        trade_id: i64,
        event: Event,
    ) -> anyhow::Result<(TradeView, Vec<Action>)> {
        let now = self.clock.now_ms();
        let limits = self.limits.clone();
        let event_text = describe_event(&event);
        let result = self.store.transaction(|conn| {
            let mut view = store::load_view(conn, trade_id)?;
            let before = view.trade.state;
            let actions = step(&mut view, event, now, &limits);
            store::save_view(conn, &view)?;
            let symbol = view.trade.symbol.clone();
            for action in &actions {
                apply_local_action(conn, &view, action, now)?;
            }
            if before != view.trade.state {
                let detail = format!(
                    "{} -> {} on {event_text}{}",
                    before.as_str(),
                    view.trade.state.as_str(),
                    view.trade
                        .close_reason
                        .as_deref()
                        .map(|reason| format!(" ({reason})"))
                        .unwrap_or_default()
                );
                store::record_event(conn, now, Some(trade_id), Some(&symbol), "state", &detail)?;
            }
            Ok((view, actions, before))
        });
        let (view, actions, before) =
            result.with_context(|| format!("storing a step of trade {trade_id}"))?;
        if before != view.trade.state {
            info!(trade_id, symbol = %view.trade.symbol, from = before.as_str(),
                to = view.trade.state.as_str(), reason = view.trade.close_reason.as_deref().unwrap_or(""),
                "trade state changed");
        }
        Ok((view, actions))
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

    fn sleep_unless_stopped(&self, duration: Duration) {
        let mut remaining = duration;
        while !remaining.is_zero() && !self.stop.load(Ordering::SeqCst) {
            let slice = remaining.min(SLEEP_SLICE);
            self.clock.sleep(slice);
            remaining -= slice;
        }
    }

    /// Alert outbox: nothing is dropped while delivery fails; each alert is retried with
    /// backoff. The sink for now is the log (journald under systemd).
    fn deliver_alerts(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let due = store::due_alerts(self.store.conn(), now, ALERTS_PER_TURN_MAX)?;
        for alert in due {
            match alert.severity.as_str() {
                "CRITICAL" => {
                    error!(alert = %alert.key, severity = "CRITICAL", trade_id = alert.trade_id,
                    symbol = alert.symbol.as_deref().unwrap_or(""), "{}", alert.text)
                }
                "WARNING" => {
                    warn!(alert = %alert.key, severity = "WARNING", trade_id = alert.trade_id,
                    symbol = alert.symbol.as_deref().unwrap_or(""), "{}", alert.text)
                }
                _ => info!(alert = %alert.key, severity = %alert.severity, "{}", alert.text),
            }
            self.store
                .transaction(|conn| store::mark_alert_sent(conn, alert.id, now))?;
        }
        Ok(())
    }
}

/// Whether `error` is the database refusing for a passing reason (see
/// `StoreError::is_transient`): the supervisor's restart, or a later turn, may succeed.
pub fn is_transient_store_error(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<store::StoreError>())
        .any(store::StoreError::is_transient)
}

/// Applies the actions that only touch the store, inside the step's transaction.
fn apply_local_action(
    conn: &rusqlite::Connection,
    view: &TradeView,
    action: &Action,
    now: Millis,
) -> store::Result<()> {
    let trade = &view.trade;
    match action {
        Action::Alert(alert) => {
            store::enqueue_alert(conn, alert, Some(trade.id), Some(&trade.symbol), now)?;
            store::record_event(
                conn,
                now,
                Some(trade.id),
                Some(&trade.symbol),
                "alert",
                &alert.text,
            )
        }
        Action::TripBreaker { symbol, reason } => {
            trip_breaker(conn, symbol, reason, now)?;
            let detail = format!("breaker tripped: {reason}");
            store::record_event(conn, now, Some(trade.id), Some(symbol), "breaker", &detail)
        }
        _ => Ok(()),
    }
}

pub fn trip_breaker(
    conn: &rusqlite::Connection,
    symbol: &str,
    reason: &str,
    now: Millis,
) -> store::Result<()> {
    let mut breaker = store::breaker(conn, symbol)?.unwrap_or_else(|| Breaker::closed(symbol));
    breaker.trip(reason, now);
    store::save_breaker(conn, &breaker, None)
}

fn describe_event(event: &Event) -> String {
    match event {
        Event::Due => "due".into(),
        Event::Sent { outcome, .. } => format!("send result {outcome:?}"),
        Event::Looked {
            client_oid,
            outcome,
        } => match outcome {
            crate::core::trade::LookOutcome::Found(report) => format!(
                "lookup {client_oid}: {} filled {}",
                report.status.as_str(),
                report.cumulative_quantity
            ),
            other => format!("lookup {client_oid}: {other:?}"),
        },
        Event::Cancelled {
            client_oid,
            outcome,
        } => format!("cancel {client_oid}: {outcome:?}"),
        Event::Market(_) => "market data".into(),
        Event::EntryBlocked { reason } => format!("entry blocked: {reason}"),
    }
}
