//! The trade state machine: `step(view, event, now, limits) -> actions`. One trade's lifecycle
//! from the entry intent to a terminal state, with every outcome of DESIGN §1 distinct. Pure:
//! it reads no clock (time arrives as `now`), does no IO and returns what the shell must do.
//! The shell stores the new view and the intents before it executes any action.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::core::domain::{
    Instrument, Millis, OrderReport, OrderType, ProtectionMode, Side, VenueStatus,
};
use crate::core::ids::{Role, client_oid};
use crate::core::normalize::{
    check_minimums, floor_to_tick, plain, protect_quantity, protective_prices, stop_already_crossed,
};

/// Lifecycle of one trade. `Closed` and `Halted` are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TradeState {
    /// Entry intent stored; the entry (or the OTOCO list) is about to be sent.
    EntryPending,
    /// The entry send was ambiguous: resolve it by client_oid before anything else.
    EntryUnknown,
    /// The entry is acknowledged; polling for its fill.
    AwaitingFill,
    /// The poll budget ran out with the entry open: cancelling it, then protecting what filled.
    CancellingEntry,
    /// Filled; waiting for instrument, price and balance to size the protection.
    Protecting,
    /// Protective orders sent or being verified by reading them back.
    Verifying,
    /// Stop-loss and take-profit are live and verified; watching them.
    Protected,
    /// Failsafe market exit of the unprotected quantity in flight.
    Exiting,
    /// A protective leg closed the position; cancelling and confirming the remaining legs.
    Closing,
    Closed,
    /// Left for the operator: breaker open, CRITICAL alert sent.
    Halted,
}

impl TradeState {
    pub fn as_str(self) -> &'static str {
        match self {
            TradeState::EntryPending => "ENTRY_PENDING",
            TradeState::EntryUnknown => "ENTRY_UNKNOWN",
            TradeState::AwaitingFill => "AWAITING_FILL",
            TradeState::CancellingEntry => "CANCELLING_ENTRY",
            TradeState::Protecting => "PROTECTING",
            TradeState::Verifying => "VERIFYING",
            TradeState::Protected => "PROTECTED",
            TradeState::Exiting => "EXITING",
            TradeState::Closing => "CLOSING",
            TradeState::Closed => "CLOSED",
            TradeState::Halted => "HALTED",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, TradeState::Closed | TradeState::Halted)
    }

    pub const ALL: [TradeState; 11] = [
        TradeState::EntryPending,
        TradeState::EntryUnknown,
        TradeState::AwaitingFill,
        TradeState::CancellingEntry,
        TradeState::Protecting,
        TradeState::Verifying,
        TradeState::Protected,
        TradeState::Exiting,
        TradeState::Closing,
        TradeState::Closed,
        TradeState::Halted,
    ];

    pub fn parse(text: &str) -> Option<TradeState> {
        TradeState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }
}

/// fillguard's view of an order's status: its own states before the exchange has answered,
/// then the exchange's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Stored, not yet known to be sent. After a crash it may have been sent.
    Intent,
    /// Acknowledged by the exchange.
    Sent,
    /// The send was ambiguous: the order may or may not exist.
    Unknown,
    Venue(VenueStatus),
    /// Rejected at send time, or proven never to have reached the exchange.
    NotPlaced,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Intent => "INTENT",
            OrderStatus::Sent => "SENT",
            OrderStatus::Unknown => "UNKNOWN",
            OrderStatus::NotPlaced => "NOT_PLACED",
            OrderStatus::Venue(status) => status.as_str(),
        }
    }

    pub fn parse(text: &str) -> Option<OrderStatus> {
        match text {
            "INTENT" => Some(OrderStatus::Intent),
            "SENT" => Some(OrderStatus::Sent),
            "UNKNOWN" => Some(OrderStatus::Unknown),
            "NOT_PLACED" => Some(OrderStatus::NotPlaced),
            other => other.parse().ok().map(OrderStatus::Venue),
        }
    }

    /// Live: may rest on the exchange now or later.
    pub fn is_live(self) -> bool {
        match self {
            OrderStatus::Intent | OrderStatus::Sent | OrderStatus::Unknown => true,
            OrderStatus::Venue(status) => !status.is_terminal(),
            OrderStatus::NotPlaced => false,
        }
    }
}

/// One order fillguard intends or sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub client_oid: String,
    pub role: Role,
    pub generation: u32,
    pub side: Side,
    pub order_type: OrderType,
    pub quantity: Decimal,
    pub price: Option<Decimal>,
    pub trigger_price: Option<Decimal>,
    pub status: OrderStatus,
    pub order_id: Option<String>,
    pub list_id: Option<String>,
    pub cumulative_quantity: Decimal,
    pub avg_price: Decimal,
    pub fee: Decimal,
    pub fee_currency: Option<String>,
    pub last_error: Option<String>,
    pub sent_at_ms: Option<Millis>,
    /// The read-back after the ack matched what was intended.
    pub verified: bool,
}

/// One position lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub id: i64,
    pub symbol: String,
    pub side: Side,
    pub mode: ProtectionMode,
    pub state: TradeState,
    pub signal_id: Option<i64>,
    pub entry_quantity: Decimal,
    /// The instrument's ticks when the trade opened; exits are floored to `quantity_tick`.
    pub quantity_tick: Decimal,
    pub price_tick: Decimal,
    pub stop_loss_pct: Decimal,
    pub take_profit_pct: Decimal,
    pub filled_quantity: Decimal,
    pub avg_price: Decimal,
    pub fee: Decimal,
    pub fee_currency: Option<String>,
    pub protect_quantity: Option<Decimal>,
    pub stop_loss_price: Option<Decimal>,
    pub take_profit_price: Option<Decimal>,
    /// Attempts in the current bounded phase (fill polls, lookups, cancels).
    pub attempts: u32,
    pub phase_started_ms: Millis,
    /// When the shell must call `step` with `Event::Due` next; `None` when nothing is due.
    pub due_ms: Option<Millis>,
    /// Generation of the current protective orders.
    pub generation: u32,
    pub protect_attempts: u32,
    pub reprotects: u32,
    pub entry_seen: bool,
    pub filled_at_ms: Option<Millis>,
    pub protected_at_ms: Option<Millis>,
    pub close_reason: Option<String>,
    pub created_ms: Millis,
    pub updated_ms: Millis,
}

/// A trade with its orders: the unit `step` works on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeView {
    pub trade: Trade,
    pub orders: Vec<Order>,
}

/// Bounds and policy the state machine works within, from validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub poll_attempts_max: u32,
    pub poll_interval_ms: Millis,
    pub poll_deadline_ms: Millis,
    pub protect_attempts_max: u32,
    pub reprotect_max: u32,
    pub watch_interval_ms: Millis,
    pub on_protection_error: bool,
    pub flatten: bool,
    /// Since when `now` is known to advance with real time: the start of this process (the
    /// shell's clock is steady while it runs; a step of the system clock between two runs is
    /// not). The nonce window of an unacknowledged send is only counted from here.
    pub steady_since_ms: Millis,
}

/// How long after an ambiguous send the order may still appear. Crypto.com refuses a request
/// whose nonce is more than 60 s old, so after this window an unseen order never existed.
pub const UNKNOWN_WINDOW_MS: Millis = 65_000;
/// The first fill check comes this soon after the ack; later checks back off to the interval.
pub const POLL_FIRST_DELAY_MS: Millis = 200;
/// Bound on cancel attempts for one order before the trade halts.
pub const CANCEL_ATTEMPTS_MAX: u32 = 3;
/// Bound on read-back attempts of protective orders before the failsafe.
pub const VERIFY_ATTEMPTS_MAX: u32 = 20;
const _: () = assert!(UNKNOWN_WINDOW_MS > 60_000);

/// After a restart, how long a send of an earlier run may still take to show on the exchange.
/// That run's connections closed when it stopped, so its requests have reached the exchange or
/// never will; this covers the exchange's own processing and visibility lag.
pub const RESTART_SETTLE_MS: Millis = 20_000;

/// Whether an unacknowledged send at `sent_at` can no longer turn into an order. Sent by this
/// run (whose clock is steady): the nonce window has passed. Sent by an earlier run: the
/// window has passed by the clock *and* this run has settled — the system clock may have been
/// stepped forward while fillguard was down (a Raspberry Pi booting with a stale clock), and
/// the window alone would then end at once. A send "after" now means the clock was stepped
/// back: then the whole window is counted on this run's time.
fn unknown_window_passed(sent_at: Millis, now: Millis, limits: &Limits) -> bool {
    let this_run = now - limits.steady_since_ms;
    if sent_at > now {
        return this_run >= UNKNOWN_WINDOW_MS;
    }
    let window_passed = now - sent_at >= UNKNOWN_WINDOW_MS;
    if sent_at >= limits.steady_since_ms {
        return window_passed;
    }
    window_passed && this_run >= RESTART_SETTLE_MS
}
const _: () = assert!(CANCEL_ATTEMPTS_MAX >= 1 && VERIFY_ATTEMPTS_MAX >= 1);

/// What the shell learned, fed back into `step`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The trade's deadline passed (also used at start and after a restart).
    Due,
    /// Result of an `Action::Send`, for every client_oid the send carried.
    Sent {
        client_oids: Vec<String>,
        outcome: SendOutcome,
    },
    /// Result of an `Action::Lookup`.
    Looked {
        client_oid: String,
        outcome: LookOutcome,
    },
    /// Result of an `Action::Cancel`.
    Cancelled {
        client_oid: String,
        outcome: Result<(), String>,
    },
    /// Result of an `Action::FetchMarket`.
    Market(MarketOutcome),
    /// The entry was about to be (re)sent but new entries are blocked (breaker open), and a
    /// lookup showed the exchange does not have it.
    EntryBlocked { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Ack {
        order_id: Option<String>,
        list_id: Option<String>,
    },
    /// The exchange refused the request; nothing was created.
    Rejected { code: Option<i64>, message: String },
    /// The request may have taken effect.
    Ambiguous { message: String },
}

// Short-lived and moved once per lookup: boxing the report would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookOutcome {
    Found(OrderReport),
    /// Not in order detail, open orders or history.
    NotFound,
    Failed {
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarketOutcome {
    Ready(Market),
    Failed { message: String },
}

/// What the shell fetched to size protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Market {
    pub instrument: Instrument,
    pub last_price: Decimal,
    /// Free balance of the base asset.
    pub free_base: Decimal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub severity: Severity,
    /// Deduplication key: one alert per key is kept in the outbox.
    pub key: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendKind {
    Single,
    /// Stop-loss then take-profit.
    Oco,
    /// Entry, stop-loss, take-profit.
    Otoco,
}

/// What the shell must do, in order, after committing the new view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Send {
        kind: SendKind,
        client_oids: Vec<String>,
    },
    Lookup {
        client_oid: String,
    },
    Cancel {
        client_oid: String,
    },
    FetchMarket,
    Alert(Alert),
    TripBreaker {
        symbol: String,
        reason: String,
    },
}

/// Advances one trade by one event. Never panics on bad venue data: a report that cannot be
/// trusted is recorded and retried within the phase's bounds.
pub fn step(view: &mut TradeView, event: Event, now: Millis, limits: &Limits) -> Vec<Action> {
    let mut actions = Vec::new();
    view.trade.updated_ms = now;
    if view.trade.state.is_terminal() {
        return actions;
    }
    match event {
        Event::Due => on_due(view, now, limits, &mut actions),
        Event::Sent {
            client_oids,
            outcome,
        } => on_sent(view, &client_oids, outcome, now, limits, &mut actions),
        Event::Looked {
            client_oid,
            outcome,
        } => on_looked(view, &client_oid, outcome, now, limits, &mut actions),
        Event::Cancelled {
            client_oid,
            outcome,
        } => on_cancelled(view, &client_oid, outcome, now, &mut actions),
        Event::Market(outcome) => on_market(view, outcome, now, limits, &mut actions),
        Event::EntryBlocked { reason } => {
            on_entry_blocked(view, &reason, now, limits, &mut actions)
        }
    }
    actions
}

fn on_due(view: &mut TradeView, now: Millis, limits: &Limits, actions: &mut Vec<Action>) {
    let trade = &mut view.trade;
    trade.due_ms = None;
    match trade.state {
        TradeState::EntryPending => send_entry(view, now, actions),
        TradeState::EntryUnknown | TradeState::AwaitingFill | TradeState::CancellingEntry => {
            let oid = entry_oid(view);
            actions.push(Action::Lookup { client_oid: oid });
        }
        TradeState::Exiting => lookup_exit_or_send(view, actions),
        TradeState::Protecting | TradeState::Closing => {
            advance_clearing(view, now, limits, actions)
        }
        TradeState::Verifying | TradeState::Protected => {
            let generation = view.trade.generation;
            for order in protective_orders(view, generation) {
                if order.status.is_live() || !order.verified {
                    actions.push(Action::Lookup {
                        client_oid: order.client_oid.clone(),
                    });
                }
            }
            if actions.is_empty() {
                // Nothing left to read back: size a new round of protection.
                start_protection_round(view, now, limits, actions);
            }
        }
        TradeState::Closed | TradeState::Halted => {}
    }
}

fn on_entry_blocked(
    view: &mut TradeView,
    reason: &str,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    if view.trade.state != TradeState::EntryPending {
        return;
    }
    let entry_oid = entry_oid(view);
    if find_order(view, &entry_oid).is_some_and(|entry| entry.status == OrderStatus::Unknown) {
        // A repeat of a send that may have reached the exchange before a crash: "not found"
        // inside the nonce window proves nothing, so the entry is resolved by lookup like any
        // unacknowledged send (and taken as never placed only after the window).
        view.trade.state = TradeState::EntryUnknown;
        return entry_not_found(view, now, limits, actions);
    }
    for order in view.orders.iter_mut() {
        if order.status == OrderStatus::Intent {
            order.status = OrderStatus::NotPlaced;
            order.last_error = Some(reason.to_string());
        }
    }
    debug_assert!(find_order(view, &entry_oid).is_some());
    close(view, "entry_blocked", now, None, actions);
}

fn send_entry(view: &mut TradeView, now: Millis, actions: &mut Vec<Action>) {
    let trade = &view.trade;
    let mut oids = vec![client_oid(trade.id, Role::Entry, 0)];
    let kind = if trade.mode == ProtectionMode::Otoco {
        oids.push(client_oid(trade.id, Role::StopLoss, 0));
        oids.push(client_oid(trade.id, Role::TakeProfit, 0));
        SendKind::Otoco
    } else {
        SendKind::Single
    };
    for order in view.orders.iter_mut() {
        if oids.contains(&order.client_oid) {
            mark_sending(order, now);
        }
    }
    actions.push(Action::Send {
        kind,
        client_oids: oids,
    });
}

/// Records that an order is about to be sent. An intent that was already decided once may have
/// reached the exchange before a crash: it is `Unknown` from now on, so that a rejection of the
/// repeated send (which says nothing about the first) is resolved by lookup, never taken as
/// proof that no order exists.
///
/// The send time becomes `now` on every send, first or repeated: the latest send is the one the
/// exchange may still accept, so the nonce window counts from it. (Counting from an earlier
/// send once gave up a repeat made seconds before, after a restart on a clock stepped forward,
/// and a second stop went up beside the first.)
fn mark_sending(order: &mut Order, now: Millis) {
    if order.sent_at_ms.is_some() && order.status == OrderStatus::Intent {
        order.status = OrderStatus::Unknown;
    }
    order.sent_at_ms = Some(now);
}

fn lookup_exit_or_send(view: &mut TradeView, actions: &mut Vec<Action>) {
    let exit = view
        .orders
        .iter()
        .rev()
        .find(|order| order.role == Role::Exit)
        .map(|order| (order.client_oid.clone(), order.status));
    match exit {
        Some((oid, OrderStatus::Intent)) => actions.push(Action::Send {
            kind: SendKind::Single,
            client_oids: vec![oid],
        }),
        Some((oid, _)) => actions.push(Action::Lookup { client_oid: oid }),
        None => {}
    }
}

fn on_sent(
    view: &mut TradeView,
    client_oids: &[String],
    outcome: SendOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let role = client_oids
        .first()
        .and_then(|oid| find_order(view, oid))
        .map(|order| order.role);
    for oid in client_oids {
        if let Some(order) = find_order_mut(view, oid) {
            order.sent_at_ms.get_or_insert(now);
            apply_send_outcome(order, &outcome);
        }
    }
    match role {
        Some(Role::Entry) => entry_sent(view, &outcome, now, limits, actions),
        Some(Role::StopLoss) | Some(Role::TakeProfit) => {
            protection_sent(view, client_oids, &outcome, now, limits, actions)
        }
        Some(Role::Exit) => exit_sent(view, &outcome, now, limits, actions),
        None => {}
    }
}

fn apply_send_outcome(order: &mut Order, outcome: &SendOutcome) {
    // A repeat can be answered after a lookup of the same drive already found the order: a
    // refusal or a lost answer to the repeat says nothing about an order the exchange showed.
    let known = matches!(order.status, OrderStatus::Sent | OrderStatus::Venue(_));
    match outcome {
        SendOutcome::Ack { order_id, list_id } => {
            if order.status == OrderStatus::Intent || order.status == OrderStatus::Unknown {
                order.status = OrderStatus::Sent;
            }
            // A list ack names the list; each leg's order id comes from its read-back.
            if order.role == Role::Entry || list_id.is_none() {
                if let Some(id) = order_id {
                    order.order_id = Some(id.clone());
                }
            }
            if list_id.is_some() {
                order.list_id = list_id.clone();
            }
        }
        SendOutcome::Rejected { code, message } if known => {
            order.last_error = Some(format!(
                "repeated send rejected ({}); the order exists",
                error_text(*code, message)
            ));
        }
        SendOutcome::Ambiguous { message } if known => {
            order.last_error = Some(format!("repeated send unanswered: {message}"));
        }
        SendOutcome::Rejected {
            code: Some(204), ..
        } => {
            // Duplicate client_oid: an earlier attempt of this very intent exists. That is an
            // acknowledgement: a later "not found" is a lagging read, never proof of absence.
            order.status = OrderStatus::Sent;
            order.last_error = Some("duplicate client_oid: earlier attempt exists".into());
        }
        SendOutcome::Rejected { code, message } if order.status == OrderStatus::Unknown => {
            order.last_error = Some(format!(
                "repeated send rejected ({}); the first may exist",
                error_text(*code, message)
            ));
        }
        SendOutcome::Rejected { code, message } => {
            order.status = OrderStatus::NotPlaced;
            order.last_error = Some(error_text(*code, message));
        }
        SendOutcome::Ambiguous { message } => {
            order.status = OrderStatus::Unknown;
            order.last_error = Some(format!("ambiguous send: {message}"));
        }
    }
}

fn error_text(code: Option<i64>, message: &str) -> String {
    match code {
        Some(code) => format!("code {code}: {message}"),
        None => message.to_string(),
    }
}

fn entry_sent(
    view: &mut TradeView,
    outcome: &SendOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    // A rejected repeat of a send that may have gone out before a crash proves nothing.
    let repeated = entry_order(view).status != OrderStatus::NotPlaced;
    let trade = &mut view.trade;
    trade.attempts = 0;
    trade.phase_started_ms = now;
    match outcome {
        SendOutcome::Ack { .. } => {
            trade.state = TradeState::AwaitingFill;
            trade.due_ms = Some(now + poll_delay(0, limits));
        }
        SendOutcome::Rejected { .. } if repeated => {
            trade.state = TradeState::EntryUnknown;
            trade.due_ms = Some(now + poll_delay(0, limits));
        }
        SendOutcome::Rejected {
            code: Some(204), ..
        }
        | SendOutcome::Ambiguous { .. } => {
            trade.state = TradeState::EntryUnknown;
            trade.due_ms = Some(now + poll_delay(0, limits));
        }
        SendOutcome::Rejected { code, message } => {
            close(
                view,
                "entry_rejected",
                now,
                Some(Alert {
                    severity: Severity::Warning,
                    key: format!("entry-rejected-{}", view.trade.id),
                    text: format!(
                        "entry rejected: {} {} {} ({}); no position was opened",
                        view.trade.symbol,
                        view.trade.side,
                        plain(view.trade.entry_quantity),
                        error_text(*code, message)
                    ),
                }),
                actions,
            );
        }
    }
}

/// Poll backoff: 200 ms after the ack, doubling up to the configured interval.
pub fn poll_delay(attempt: u32, limits: &Limits) -> Millis {
    let first = POLL_FIRST_DELAY_MS.min(limits.poll_interval_ms);
    let factor = 1_i64 << attempt.min(20);
    first.saturating_mul(factor).min(limits.poll_interval_ms)
}

fn on_looked(
    view: &mut TradeView,
    oid: &str,
    outcome: LookOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let Some(role) = find_order(view, oid).map(|order| order.role) else {
        return;
    };
    if let LookOutcome::Found(report) = &outcome {
        if let Err(problem) = apply_report(view, oid, report) {
            let outcome = LookOutcome::Failed { message: problem };
            return dispatch_look(view, role, oid, outcome, now, limits, actions);
        }
    }
    dispatch_look(view, role, oid, outcome, now, limits, actions);
}

fn dispatch_look(
    view: &mut TradeView,
    role: Role,
    oid: &str,
    outcome: LookOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    match role {
        Role::Entry => entry_looked(view, &outcome, now, limits, actions),
        Role::StopLoss | Role::TakeProfit => {
            protective_looked(view, oid, &outcome, now, limits, actions)
        }
        Role::Exit => exit_looked(view, &outcome, now, limits, actions),
    }
}

/// Copies a venue report into the order after checking it is about this order and sane.
fn apply_report(view: &mut TradeView, oid: &str, report: &OrderReport) -> Result<(), String> {
    if report.client_oid != oid {
        return Err(format!(
            "report for client_oid {} while looking up {oid}",
            report.client_oid
        ));
    }
    if report.cumulative_quantity < Decimal::ZERO || report.cumulative_fee < Decimal::ZERO {
        return Err("negative cumulative quantity or fee".into());
    }
    if report.status == VenueStatus::Filled && report.cumulative_quantity.is_zero() {
        return Err("status FILLED with cumulative_quantity 0 is not a fill".into());
    }
    let order = find_order_mut(view, oid).expect("caller checked the order exists");
    order.status = OrderStatus::Venue(report.status);
    order.order_id = Some(report.order_id.clone());
    if report.list_id.is_some() {
        order.list_id = report.list_id.clone();
    }
    order.cumulative_quantity = report.cumulative_quantity;
    order.avg_price = report.avg_price;
    order.fee = report.cumulative_fee;
    order.fee_currency = Some(report.fee_currency.clone());
    order.last_error = None;
    Ok(())
}

fn entry_looked(
    view: &mut TradeView,
    outcome: &LookOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    view.trade.attempts += 1;
    let entry = entry_order(view).clone();
    match (outcome, entry.status) {
        (LookOutcome::Found(_), OrderStatus::Venue(status)) if status.is_terminal() => {
            entry_finished(view, &entry, now, limits, actions)
        }
        (LookOutcome::Found(_), _) => {
            view.trade.entry_seen = true;
            entry_still_open(view, now, limits, actions)
        }
        (LookOutcome::NotFound, _) => entry_not_found(view, now, limits, actions),
        (LookOutcome::Failed { message }, _) => {
            if let Some(order) = find_order_mut(view, &entry.client_oid) {
                order.last_error = Some(message.clone());
            }
            entry_lookup_failed(view, now, limits, actions)
        }
    }
}

/// The entry reached a terminal status: protect what filled, or close.
fn entry_finished(
    view: &mut TradeView,
    entry: &Order,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let trade = &mut view.trade;
    trade.filled_quantity = entry.cumulative_quantity;
    trade.avg_price = entry.avg_price;
    trade.fee = entry.fee;
    trade.fee_currency = entry.fee_currency.clone();
    if entry.cumulative_quantity.is_zero() {
        let reason = match entry.status {
            OrderStatus::Venue(VenueStatus::Rejected) => "entry_rejected",
            OrderStatus::Venue(VenueStatus::Expired) => "entry_expired",
            _ => "entry_not_filled",
        };
        // OTOCO legs that never activated are cancelled and confirmed before the trade closes.
        trade.close_reason = Some(reason.to_string());
        trade.state = TradeState::Closing;
        trade.attempts = 0;
        return advance_clearing(view, now, limits, actions);
    }
    trade.filled_at_ms.get_or_insert(now);
    let fully_filled = entry.status == OrderStatus::Venue(VenueStatus::Filled);
    if trade.mode == ProtectionMode::Otoco && fully_filled {
        // The exchange activated the OTOCO legs: read them back.
        let leg_quantity = protective_orders(view, 0).first().map(|o| o.quantity);
        view.trade.protect_quantity = leg_quantity;
        enter_verifying(view, now, limits);
        return;
    }
    // A partial fill never activates OTOCO legs: the protection round cancels them first and
    // protects the filled part as an OCO.
    start_protection_round(view, now, limits, actions);
}

fn entry_still_open(view: &mut TradeView, now: Millis, limits: &Limits, actions: &mut Vec<Action>) {
    let trade = &mut view.trade;
    let budget_spent = trade.attempts >= limits.poll_attempts_max
        || now - trade.phase_started_ms >= limits.poll_deadline_ms;
    match trade.state {
        TradeState::CancellingEntry => retry_entry_cancel(view, now, limits, actions),
        // EntryPending: the repeat of a send lost in a crash was blocked by a breaker and the
        // lookup made instead found the entry resting.
        TradeState::EntryPending | TradeState::EntryUnknown | TradeState::AwaitingFill
            if budget_spent =>
        {
            begin_entry_cancel(view, now, actions)
        }
        TradeState::EntryPending | TradeState::EntryUnknown | TradeState::AwaitingFill => {
            trade.state = TradeState::AwaitingFill;
            trade.due_ms = Some(now + poll_delay(trade.attempts, limits));
        }
        _ => {}
    }
}

fn begin_entry_cancel(view: &mut TradeView, now: Millis, actions: &mut Vec<Action>) {
    let trade = &mut view.trade;
    trade.state = TradeState::CancellingEntry;
    trade.attempts = 0;
    trade.phase_started_ms = now;
    actions.push(Action::Cancel {
        client_oid: entry_oid(view),
    });
}

fn retry_entry_cancel(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    if view.trade.attempts < CANCEL_ATTEMPTS_MAX {
        actions.push(Action::Cancel {
            client_oid: entry_oid(view),
        });
        view.trade.due_ms = Some(now + limits.poll_interval_ms);
    } else {
        let detail = "the entry stayed open after every cancel attempt".to_string();
        halt(view, "entry_cancel_failed", &detail, now, actions);
    }
}

fn entry_not_found(view: &mut TradeView, now: Millis, limits: &Limits, actions: &mut Vec<Action>) {
    let entry = entry_order(view).clone();
    let sent_at = entry.sent_at_ms.unwrap_or(view.trade.created_ms);
    match entry.status {
        OrderStatus::Intent => {
            // Never sent, or lost in a crash before the send: same client_oid, safe to send.
            view.trade.state = TradeState::EntryPending;
            send_entry(view, now, actions);
        }
        OrderStatus::Unknown if unknown_window_passed(sent_at, now, limits) => {
            if let Some(order) = find_order_mut(view, &entry.client_oid) {
                order.status = OrderStatus::NotPlaced;
            }
            if view.trade.mode == ProtectionMode::Otoco {
                mark_not_placed(view, 0);
            }
            close(view, "entry_not_placed", now, None, actions);
        }
        OrderStatus::Unknown => {
            view.trade.due_ms = Some(now + unknown_delay(view.trade.attempts, limits));
        }
        _ if view.trade.attempts < limits.poll_attempts_max => {
            // Acknowledged orders can take a moment to become visible.
            view.trade.due_ms = Some(now + poll_delay(view.trade.attempts, limits));
        }
        _ => {
            let detail = if view.trade.entry_seen {
                "the entry was seen open earlier but is now not found anywhere"
            } else {
                "the exchange acknowledged the entry but it was never found in order detail, open orders or history"
            };
            halt(view, "entry_not_found", detail, now, actions);
        }
    }
}

fn entry_lookup_failed(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    // While the entry is unresolved the bound is time (the nonce window and a deadline after
    // it): its lookups also count the "not found yet" answers of the window.
    let unknown = view.trade.state == TradeState::EntryUnknown;
    let spent = if unknown {
        now - view.trade.phase_started_ms >= UNKNOWN_WINDOW_MS + limits.poll_deadline_ms
    } else {
        view.trade.attempts >= limits.poll_attempts_max + CANCEL_ATTEMPTS_MAX
    };
    if spent {
        let detail = "the entry's state could not be read from the exchange";
        halt(view, "entry_state_unknown", detail, now, actions);
    } else if unknown {
        view.trade.due_ms = Some(now + unknown_delay(view.trade.attempts, limits));
    } else {
        view.trade.due_ms = Some(now + poll_delay(view.trade.attempts, limits));
    }
}

/// Lookups of an ambiguous send: quick at first, then every few seconds until the window ends.
const UNKNOWN_POLL_MAX_MS: Millis = 5_000;

fn unknown_delay(attempt: u32, limits: &Limits) -> Millis {
    poll_delay(attempt, limits)
        .max((POLL_FIRST_DELAY_MS << attempt.min(5)).min(UNKNOWN_POLL_MAX_MS))
}

fn on_cancelled(
    view: &mut TradeView,
    oid: &str,
    outcome: Result<(), String>,
    now: Millis,
    actions: &mut Vec<Action>,
) {
    if let (Err(message), Some(order)) = (&outcome, find_order_mut(view, oid)) {
        order.last_error = Some(format!("cancel failed: {message}"));
    }
    let role = find_order(view, oid).map(|order| order.role);
    let clearing = matches!(
        view.trade.state,
        TradeState::Protecting | TradeState::Closing
    );
    if clearing && role.is_some_and(Role::is_protective) {
        actions.push(Action::Lookup {
            client_oid: oid.to_string(),
        });
        return;
    }
    if view.trade.state == TradeState::CancellingEntry && role == Some(Role::Entry) {
        // Whatever the cancel said, the truth is in the order's state: read it.
        actions.push(Action::Lookup {
            client_oid: oid.to_string(),
        });
        view.trade.due_ms = Some(now + POLL_FIRST_DELAY_MS);
    }
}

/// Begins a protection round: fetch what sizing needs. Bounded by `protect_attempts_max`.
fn start_protection_round(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let trade = &mut view.trade;
    if trade.protect_attempts >= limits.protect_attempts_max {
        let detail = format!(
            "protection could not be placed after {} attempts",
            trade.protect_attempts
        );
        return failsafe(view, "protection_failed", &detail, now, limits, actions);
    }
    trade.state = TradeState::Protecting;
    trade.attempts = 0;
    trade.phase_started_ms = now;
    advance_clearing(view, now, limits, actions);
}

/// Protecting and Closing first make sure no protective order is live (S1: a new stop is
/// never placed while an earlier one may still rest). When none is, Protecting fetches what
/// sizing needs and Closing closes the trade. Bounded by the poll budget.
fn advance_clearing(view: &mut TradeView, now: Millis, limits: &Limits, actions: &mut Vec<Action>) {
    let live: Vec<Order> = view
        .orders
        .iter()
        .filter(|order| order.role.is_protective() && order.status.is_live())
        .cloned()
        .collect();
    if live.is_empty() {
        view.trade.due_ms = Some(now + limits.poll_interval_ms);
        if view.trade.state == TradeState::Closing {
            let reason = view.trade.close_reason.clone().unwrap_or_default();
            return close(view, &reason, now, None, actions);
        }
        if let Some(reason) = closed_by_protection(view) {
            // The legs were read in an order that looked like a cancel, but they sold it all.
            return close(view, reason, now, None, actions);
        }
        actions.push(Action::FetchMarket);
        return;
    }
    view.trade.attempts += 1;
    if view.trade.attempts > limits.poll_attempts_max + CANCEL_ATTEMPTS_MAX {
        let oids: Vec<&str> = live.iter().map(|order| order.client_oid.as_str()).collect();
        let detail = format!(
            "protective orders {} could not be cancelled or resolved",
            oids.join(", ")
        );
        return halt(view, "protection_stuck", &detail, now, actions);
    }
    for order in &live {
        let acknowledged = order.order_id.is_some() || order.list_id.is_some();
        let action = if acknowledged && order.status != OrderStatus::Unknown {
            Action::Cancel {
                client_oid: order.client_oid.clone(),
            }
        } else {
            Action::Lookup {
                client_oid: order.client_oid.clone(),
            }
        };
        actions.push(action);
    }
    view.trade.due_ms = Some(now + poll_delay(view.trade.attempts, limits));
}

/// When protective orders have sold (or bought back) the whole position, the leg that did most.
fn closed_by_protection(view: &TradeView) -> Option<&'static str> {
    let remaining = floor_to_tick(open_quantity(view), view.trade.quantity_tick);
    if !remaining.is_zero() {
        return None;
    }
    view.orders
        .iter()
        .filter(|order| order.role.is_protective() && !order.cumulative_quantity.is_zero())
        .max_by_key(|order| order.cumulative_quantity)
        .map(|order| match order.role {
            Role::StopLoss => "stop_loss_filled",
            _ => "take_profit_filled",
        })
}

/// A leg being cleared is not found anywhere. An unacknowledged one past the nonce window never
/// existed; an acknowledged one that vanished is taken as gone after the poll budget.
fn resolve_missing_leg(view: &mut TradeView, order: &Order, now: Millis, limits: &Limits) {
    let sent_at = order.sent_at_ms.unwrap_or(view.trade.phase_started_ms);
    let gone = match order.status {
        OrderStatus::Unknown | OrderStatus::Intent => {
            unknown_window_passed(sent_at, now, limits) || order.sent_at_ms.is_none()
        }
        // Acknowledged but never seen: right after the ack the exchange may not show it yet.
        OrderStatus::Sent => {
            view.trade.attempts >= CANCEL_ATTEMPTS_MAX
                && unknown_window_passed(sent_at, now, limits)
        }
        _ => view.trade.attempts >= CANCEL_ATTEMPTS_MAX,
    };
    if gone {
        if let Some(leg) = find_order_mut(view, &order.client_oid) {
            leg.status = OrderStatus::NotPlaced;
            leg.last_error = Some("not found on the exchange".into());
        }
    }
}

fn on_market(
    view: &mut TradeView,
    outcome: MarketOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    if view.trade.state != TradeState::Protecting {
        return;
    }
    let market = match outcome {
        MarketOutcome::Ready(market) => market,
        MarketOutcome::Failed { message } => {
            view.trade.protect_attempts += 1;
            view.trade.due_ms = Some(now + limits.poll_interval_ms);
            if view.trade.protect_attempts >= limits.protect_attempts_max {
                let detail = format!("market data for sizing protection unavailable: {message}");
                failsafe(view, "protection_failed", &detail, now, limits, actions);
            }
            return;
        }
    };
    place_protection(view, &market, now, limits, actions);
}

/// The quantity still held by this trade: protected quantity (or fill) less what protective
/// and exit orders already sold.
pub fn open_quantity(view: &TradeView) -> Decimal {
    let closed: Decimal = view
        .orders
        .iter()
        .filter(|order| order.role != Role::Entry)
        .map(|order| order.cumulative_quantity)
        .sum();
    let base = view.trade.filled_quantity - entry_fee_in_base(view);
    (base - closed).max(Decimal::ZERO)
}

fn entry_fee_in_base(view: &TradeView) -> Decimal {
    let trade = &view.trade;
    let base = trade.symbol.split('_').next().unwrap_or_default();
    match (trade.side, trade.fee_currency.as_deref()) {
        (Side::Buy, Some(currency)) if currency == base => trade.fee,
        _ => Decimal::ZERO,
    }
}

fn place_protection(
    view: &mut TradeView,
    market: &Market,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let trade = &view.trade;
    let instrument = &market.instrument;
    let free = (trade.side == Side::Buy).then_some(market.free_base);
    let quantity = protect_quantity(
        open_quantity(view),
        Decimal::ZERO,
        free,
        instrument.quantity_tick,
    );
    let (stop, profit) = protective_prices(
        trade.side,
        trade.avg_price,
        trade.stop_loss_pct,
        trade.take_profit_pct,
        instrument.price_tick,
    );
    if let Err(problem) = check_minimums(instrument, quantity, &[stop, profit]) {
        let detail = format!("unprotectable: {problem}");
        return failsafe(view, "unprotectable", &detail, now, limits, actions);
    }
    if stop_already_crossed(trade.side, stop, market.last_price) {
        let detail = format!(
            "stop-loss trigger {} already crossed by the last price {}",
            plain(stop),
            plain(market.last_price)
        );
        return failsafe(view, "stop_crossed", &detail, now, limits, actions);
    }
    let trade = &mut view.trade;
    trade.generation += 1;
    trade.protect_quantity = Some(quantity);
    trade.stop_loss_price = Some(stop);
    trade.take_profit_price = Some(profit);
    let generation = trade.generation;
    let (stop_order, profit_order) = protective_intents(view, generation, quantity, stop, profit);
    let oids = vec![
        stop_order.client_oid.clone(),
        profit_order.client_oid.clone(),
    ];
    for mut order in [stop_order, profit_order] {
        mark_sending(&mut order, now);
        view.orders.push(order);
    }
    view.trade.state = TradeState::Verifying;
    view.trade.attempts = 0;
    view.trade.phase_started_ms = now;
    view.trade.due_ms = Some(now + limits.poll_interval_ms);
    if view.trade.mode == ProtectionMode::Separate {
        for oid in oids {
            actions.push(Action::Send {
                kind: SendKind::Single,
                client_oids: vec![oid],
            });
        }
    } else {
        actions.push(Action::Send {
            kind: SendKind::Oco,
            client_oids: oids,
        });
    }
}

/// Intent rows for one generation of protection. In OCO mode the take-profit is a LIMIT
/// (Crypto.com's OCO pairs a LIMIT with a trigger); otherwise a TAKE_PROFIT trigger.
pub fn protective_intents(
    view: &TradeView,
    generation: u32,
    quantity: Decimal,
    stop: Decimal,
    profit: Decimal,
) -> (Order, Order) {
    let trade = &view.trade;
    let exit_side = trade.side.opposite();
    let stop_order = new_order(
        trade.id,
        Role::StopLoss,
        generation,
        exit_side,
        OrderType::StopLoss,
        quantity,
        None,
        Some(stop),
    );
    let profit_order = if trade.mode == ProtectionMode::Oco {
        new_order(
            trade.id,
            Role::TakeProfit,
            generation,
            exit_side,
            OrderType::Limit,
            quantity,
            Some(profit),
            None,
        )
    } else {
        new_order(
            trade.id,
            Role::TakeProfit,
            generation,
            exit_side,
            OrderType::TakeProfit,
            quantity,
            None,
            Some(profit),
        )
    };
    (stop_order, profit_order)
}

#[allow(clippy::too_many_arguments)]
pub fn new_order(
    trade_id: i64,
    role: Role,
    generation: u32,
    side: Side,
    order_type: OrderType,
    quantity: Decimal,
    price: Option<Decimal>,
    trigger_price: Option<Decimal>,
) -> Order {
    Order {
        client_oid: client_oid(trade_id, role, generation),
        role,
        generation,
        side,
        order_type,
        quantity,
        price,
        trigger_price,
        status: OrderStatus::Intent,
        order_id: None,
        list_id: None,
        cumulative_quantity: Decimal::ZERO,
        avg_price: Decimal::ZERO,
        fee: Decimal::ZERO,
        fee_currency: None,
        last_error: None,
        sent_at_ms: None,
        verified: false,
    }
}

fn protection_sent(
    view: &mut TradeView,
    client_oids: &[String],
    outcome: &SendOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    // Only a first send that was refused is NotPlaced; any other order may exist or does.
    let repeated = client_oids
        .iter()
        .filter_map(|oid| find_order(view, oid))
        .any(|order| order.status != OrderStatus::NotPlaced);
    match outcome {
        SendOutcome::Rejected { code, message } if *code != Some(204) && !repeated => {
            view.trade.protect_attempts += 1;
            let text = error_text(*code, message);
            // A half-placed separate pair is cancelled by the next round's clearing step.
            if view.trade.protect_attempts >= limits.protect_attempts_max {
                let detail = format!("protective order rejected: {text}");
                return failsafe(view, "protection_rejected", &detail, now, limits, actions);
            }
            view.trade.state = TradeState::Protecting;
            view.trade.due_ms = Some(now + poll_delay(view.trade.protect_attempts, limits));
        }
        _ => enter_verifying(view, now, limits),
    }
}

fn enter_verifying(view: &mut TradeView, now: Millis, limits: &Limits) {
    let trade = &mut view.trade;
    if trade.state != TradeState::Verifying {
        trade.attempts = 0;
        trade.phase_started_ms = now;
    }
    trade.state = TradeState::Verifying;
    trade.due_ms = Some(now + POLL_FIRST_DELAY_MS.min(limits.poll_interval_ms));
}

fn protective_looked(
    view: &mut TradeView,
    oid: &str,
    outcome: &LookOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let Some(order) = find_order(view, oid).cloned() else {
        return;
    };
    if matches!(
        view.trade.state,
        TradeState::Protecting | TradeState::Closing
    ) {
        if *outcome == LookOutcome::NotFound {
            resolve_missing_leg(view, &order, now, limits);
        }
        return advance_clearing(view, now, limits, actions);
    }
    if order.generation != view.trade.generation {
        return;
    }
    match outcome {
        LookOutcome::Found(report) => {
            if !order.verified {
                if let Err(mismatch) = verify_leg(&order, report) {
                    let detail = format!("protective order {oid} does not match: {mismatch}");
                    return failsafe(view, "protection_mismatch", &detail, now, limits, actions);
                }
                if let Some(leg) = find_order_mut(view, oid) {
                    leg.verified = true;
                }
            }
            settle_protection(view, now, limits, actions);
        }
        LookOutcome::NotFound => protective_missing(view, &order, now, limits, actions),
        LookOutcome::Failed { message } => {
            if let Some(leg) = find_order_mut(view, oid) {
                leg.last_error = Some(message.clone());
            }
            count_verify_attempt(view, now, limits, actions);
        }
    }
}

/// Checks the read-back against the intent: side, type, quantity and prices.
fn verify_leg(order: &Order, report: &OrderReport) -> Result<(), String> {
    let mut problems = Vec::new();
    if report.side != order.side {
        problems.push(format!("side {} instead of {}", report.side, order.side));
    }
    if report.order_type != order.order_type {
        problems.push(format!(
            "type {} instead of {}",
            report.order_type.as_str(),
            order.order_type.as_str()
        ));
    }
    if report.quantity != order.quantity {
        problems.push(format!(
            "quantity {} instead of {}",
            plain(report.quantity),
            plain(order.quantity)
        ));
    }
    if order.trigger_price.is_some() && report.trigger_price != order.trigger_price {
        problems.push("trigger price differs".to_string());
    }
    if order.price.is_some() && report.price != order.price {
        problems.push("limit price differs".to_string());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join(", "))
    }
}

/// After a read-back: decide between verified, closed by a leg, and re-protection.
fn settle_protection(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let generation = view.trade.generation;
    let legs: Vec<Order> = protective_orders(view, generation)
        .into_iter()
        .cloned()
        .collect();
    let protected_quantity = view.trade.protect_quantity.unwrap_or_default();
    let filled: Decimal = legs.iter().map(|leg| leg.cumulative_quantity).sum();
    if filled >= protected_quantity && !filled.is_zero() {
        let reason = legs
            .iter()
            .filter(|leg| !leg.cumulative_quantity.is_zero())
            .max_by_key(|leg| leg.cumulative_quantity)
            .map(|leg| match leg.role {
                Role::StopLoss => "stop_loss_filled",
                _ => "take_profit_filled",
            })
            .unwrap_or("protection_filled");
        view.trade.close_reason = Some(reason.to_string());
        view.trade.state = TradeState::Closing;
        view.trade.attempts = 0;
        return advance_clearing(view, now, limits, actions);
    }
    let leg_ended = legs
        .iter()
        .any(|leg| matches!(leg.status, OrderStatus::Venue(status) if status.is_terminal()));
    if leg_ended {
        return reprotect(view, now, limits, actions);
    }
    let all_verified = legs.iter().all(|leg| leg.verified);
    if all_verified && view.trade.state == TradeState::Verifying {
        view.trade.state = TradeState::Protected;
        view.trade.protected_at_ms.get_or_insert(now);
        view.trade.protect_attempts = 0;
    }
    if view.trade.state == TradeState::Protected {
        view.trade.due_ms = Some(now + limits.watch_interval_ms);
    } else {
        count_verify_attempt(view, now, limits, actions);
    }
}

/// A protective leg ended without closing the position (cancelled outside fillguard, expired,
/// rejected at trigger, or partly filled with its sibling cancelled): protect the rest again.
fn reprotect(view: &mut TradeView, now: Millis, limits: &Limits, actions: &mut Vec<Action>) {
    if view.trade.reprotects >= limits.reprotect_max {
        let detail = format!(
            "protection ended outside fillguard {} times; no more re-protection",
            view.trade.reprotects
        );
        return failsafe(view, "reprotect_exhausted", &detail, now, limits, actions);
    }
    view.trade.reprotects += 1;
    view.trade.protect_attempts = 0;
    start_protection_round(view, now, limits, actions);
}

fn protective_missing(
    view: &mut TradeView,
    order: &Order,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    let sent_at = order.sent_at_ms.unwrap_or(view.trade.phase_started_ms);
    let unknown_expired = matches!(order.status, OrderStatus::Unknown | OrderStatus::Intent)
        && unknown_window_passed(sent_at, now, limits);
    let otoco_legs = view.trade.mode == ProtectionMode::Otoco && order.generation == 0;
    if order.status == OrderStatus::Intent
        && view.trade.state == TradeState::Verifying
        && !otoco_legs
    {
        // Crash between storing the intent and sending it: send the same client_oids again.
        return resend_generation(view, now, actions);
    }
    if unknown_expired {
        mark_not_placed(view, order.generation);
        view.trade.protect_attempts += 1;
        return start_protection_round(view, now, limits, actions);
    }
    if order.status == OrderStatus::Unknown && view.trade.state == TradeState::Verifying {
        // Bounded by the window, not by a count of "not found yet" answers.
        view.trade.due_ms = Some(now + unknown_delay(view.trade.attempts, limits));
        view.trade.attempts += 1;
        return;
    }
    count_verify_attempt(view, now, limits, actions);
}

fn resend_generation(view: &mut TradeView, now: Millis, actions: &mut Vec<Action>) {
    let generation = view.trade.generation;
    let oids: Vec<String> = protective_orders(view, generation)
        .iter()
        .filter(|order| order.status == OrderStatus::Intent)
        .map(|order| order.client_oid.clone())
        .collect();
    for order in view.orders.iter_mut() {
        if oids.contains(&order.client_oid) {
            mark_sending(order, now);
        }
    }
    let kind = match view.trade.mode {
        ProtectionMode::Separate => SendKind::Single,
        _ => SendKind::Oco,
    };
    if kind == SendKind::Single {
        for oid in oids {
            actions.push(Action::Send {
                kind: SendKind::Single,
                client_oids: vec![oid],
            });
        }
    } else if oids.len() == 2 {
        actions.push(Action::Send {
            kind,
            client_oids: oids,
        });
    }
}

fn count_verify_attempt(
    view: &mut TradeView,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    if view.trade.state == TradeState::Protected {
        view.trade.due_ms = Some(now + limits.watch_interval_ms);
        return;
    }
    view.trade.attempts += 1;
    if view.trade.attempts >= VERIFY_ATTEMPTS_MAX {
        let detail = "protective orders could not be read back and verified".to_string();
        return failsafe(view, "protection_unverified", &detail, now, limits, actions);
    }
    view.trade.due_ms = Some(now + poll_delay(view.trade.attempts, limits));
}

fn exit_sent(
    view: &mut TradeView,
    outcome: &SendOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    match outcome {
        SendOutcome::Rejected { code, message } if *code != Some(204) => {
            let detail = format!("failsafe exit rejected: {}", error_text(*code, message));
            halt(view, "flatten_failed", &detail, now, actions);
        }
        _ => {
            view.trade.attempts = 0;
            view.trade.phase_started_ms = now;
            view.trade.due_ms = Some(now + poll_delay(0, limits));
        }
    }
}

fn exit_looked(
    view: &mut TradeView,
    outcome: &LookOutcome,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    view.trade.attempts += 1;
    let exit = view
        .orders
        .iter()
        .rev()
        .find(|order| order.role == Role::Exit)
        .cloned()
        .expect("an exiting trade has an exit order");
    let bound_reached = view.trade.attempts >= limits.poll_attempts_max + CANCEL_ATTEMPTS_MAX;
    match (outcome, exit.status) {
        (LookOutcome::Found(_), OrderStatus::Venue(VenueStatus::Filled)) => {
            close(view, "flattened", now, None, actions)
        }
        (LookOutcome::Found(_), OrderStatus::Venue(status)) if status.is_terminal() => {
            let detail = format!(
                "failsafe exit ended {} with {} of {} filled",
                status.as_str(),
                plain(exit.cumulative_quantity),
                plain(exit.quantity)
            );
            halt(view, "flatten_incomplete", &detail, now, actions);
        }
        _ if bound_reached => {
            let detail = "the failsafe exit could not be confirmed".to_string();
            halt(view, "flatten_unconfirmed", &detail, now, actions);
        }
        (LookOutcome::NotFound, OrderStatus::Intent) => {
            lookup_exit_or_send(view, actions);
        }
        _ => view.trade.due_ms = Some(now + poll_delay(view.trade.attempts, limits)),
    }
}

/// The failsafe: CRITICAL alert with every order id, breaker trip, and a market exit of the
/// unprotected quantity when configured. Never gated by the breaker.
fn failsafe(
    view: &mut TradeView,
    reason: &str,
    detail: &str,
    now: Millis,
    limits: &Limits,
    actions: &mut Vec<Action>,
) {
    // No protective order may outlive the failsafe: a lone leg could oversell after an exit.
    cancel_live_protection(view, actions);
    let quantity = floor_to_tick(open_quantity(view), view.trade.quantity_tick);
    let exit_possible = limits.flatten && limits.on_protection_error && quantity > Decimal::ZERO;
    let operator_action = if exit_possible {
        "fillguard is market-exiting the unprotected quantity; check the exit, then `fillguard breaker reset SYMBOL`"
    } else {
        "protect or close the position on the exchange by hand, then `fillguard breaker reset SYMBOL`"
    };
    let text = alert_text(
        view,
        reason,
        detail,
        limits.on_protection_error,
        operator_action,
    );
    actions.push(Action::Alert(Alert {
        severity: Severity::Critical,
        key: format!("protection-{}-{reason}", view.trade.id),
        text,
    }));
    if limits.on_protection_error {
        actions.push(Action::TripBreaker {
            symbol: view.trade.symbol.clone(),
            reason: reason.to_string(),
        });
    }
    if !exit_possible {
        return finish(view, TradeState::Halted, reason, now);
    }
    let trade = &view.trade;
    let exit_generation = view
        .orders
        .iter()
        .filter(|order| order.role == Role::Exit)
        .count() as u32;
    let exit = new_order(
        trade.id,
        Role::Exit,
        exit_generation,
        trade.side.opposite(),
        OrderType::Market,
        quantity,
        None,
        None,
    );
    let oid = exit.client_oid.clone();
    view.orders.push(exit);
    let trade = &mut view.trade;
    trade.state = TradeState::Exiting;
    trade.close_reason = Some(reason.to_string());
    trade.attempts = 0;
    trade.phase_started_ms = now;
    trade.due_ms = Some(now + limits.poll_interval_ms);
    actions.push(Action::Send {
        kind: SendKind::Single,
        client_oids: vec![oid],
    });
}

fn alert_text(
    view: &TradeView,
    reason: &str,
    detail: &str,
    breaker_trips: bool,
    operator_action: &str,
) -> String {
    let trade = &view.trade;
    let orders: Vec<String> = view
        .orders
        .iter()
        .map(|order| {
            format!(
                "{} client_oid={} order_id={} status={}{}",
                order.role,
                order.client_oid,
                order.order_id.as_deref().unwrap_or("-"),
                order.status.as_str(),
                order
                    .last_error
                    .as_deref()
                    .map(|error| format!(" error=\"{error}\""))
                    .unwrap_or_default()
            )
        })
        .collect();
    let breaker = if breaker_trips {
        format!("breaker for {} OPEN (no new entries)", trade.symbol)
    } else {
        "breaker unchanged (failsafe.on_protection_error = false)".to_string()
    };
    format!(
        "PROTECTION FAILURE {} trade {} {} filled {} at {}: {reason}: {detail}. Orders: [{}]. {breaker}. Operator: {operator_action}",
        trade.symbol,
        trade.id,
        trade.side,
        plain(trade.filled_quantity),
        plain(trade.avg_price),
        orders.join("; ")
    )
}

fn halt(view: &mut TradeView, reason: &str, detail: &str, now: Millis, actions: &mut Vec<Action>) {
    let operator_action = "check the order on the exchange, settle the position by hand, then `fillguard breaker reset SYMBOL`";
    let text = alert_text(view, reason, detail, true, operator_action);
    actions.push(Action::Alert(Alert {
        severity: Severity::Critical,
        key: format!("halt-{}-{reason}", view.trade.id),
        text,
    }));
    actions.push(Action::TripBreaker {
        symbol: view.trade.symbol.clone(),
        reason: reason.to_string(),
    });
    finish(view, TradeState::Halted, reason, now);
}

fn close(
    view: &mut TradeView,
    reason: &str,
    now: Millis,
    alert: Option<Alert>,
    actions: &mut Vec<Action>,
) {
    if let Some(alert) = alert {
        actions.push(Action::Alert(alert));
    }
    let reason = match view.trade.close_reason.as_deref() {
        // A flatten keeps the failsafe's reason: why the exit happened matters more.
        Some(earlier) if reason == "flattened" => format!("flattened after {earlier}"),
        _ => reason.to_string(),
    };
    finish(view, TradeState::Closed, &reason, now);
}

fn finish(view: &mut TradeView, state: TradeState, reason: &str, now: Millis) {
    let trade = &mut view.trade;
    trade.state = state;
    trade.close_reason = Some(reason.to_string());
    trade.due_ms = None;
    trade.updated_ms = now;
}

/// Cancels every live protective order of the current and earlier generations.
fn cancel_live_protection(view: &mut TradeView, actions: &mut Vec<Action>) {
    for order in view.orders.iter() {
        let acknowledged = order.order_id.is_some() || order.list_id.is_some();
        if order.role.is_protective() && order.status.is_live() && acknowledged {
            actions.push(Action::Cancel {
                client_oid: order.client_oid.clone(),
            });
        }
    }
}

fn mark_not_placed(view: &mut TradeView, generation: u32) {
    for order in view.orders.iter_mut() {
        let unresolved = matches!(order.status, OrderStatus::Unknown | OrderStatus::Intent);
        if order.role.is_protective() && order.generation == generation && unresolved {
            order.status = OrderStatus::NotPlaced;
        }
    }
}

fn protective_orders(view: &TradeView, generation: u32) -> Vec<&Order> {
    view.orders
        .iter()
        .filter(|order| order.role.is_protective() && order.generation == generation)
        .collect()
}

fn entry_order(view: &TradeView) -> &Order {
    view.orders
        .iter()
        .find(|order| order.role == Role::Entry)
        .expect("every trade has an entry order")
}

fn entry_oid(view: &TradeView) -> String {
    entry_order(view).client_oid.clone()
}

fn find_order<'a>(view: &'a TradeView, oid: &str) -> Option<&'a Order> {
    view.orders.iter().find(|order| order.client_oid == oid)
}

fn find_order_mut<'a>(view: &'a mut TradeView, oid: &str) -> Option<&'a mut Order> {
    view.orders.iter_mut().find(|order| order.client_oid == oid)
}

#[cfg(test)]
#[path = "trade_tests.rs"]
mod tests;
