//! The `trade_step` fuzz target: one trade, planned by `plan_entry`, driven through `step` by an
//! arbitrary sequence of events — mostly answers to the requests the previous steps returned
//! (that is what reaches protection, the failsafe and recovery), with stray answers, clock
//! steps and hand-edited rows mixed in. After every step it checks the rules of DESIGN §4 that a
//! single step can break; a broken rule panics, so the fuzzer reports it like a crash.
//!
//! Input layout (missing bytes read as zero): 11 header bytes (limits, flags for mode, side,
//! epoch and failsafe, entry size, stop and target percentages, price), then events of
//! `[op, time, payload…]` until the input or `EVENTS_MAX` runs out. `op % 16` below 10 answers a
//! pending request (`[pick, …]`), 11 defers one (the shell did not carry it out in its turn),
//! 12 a stray lookup, 13 a stray send or cancel answer, 14 market data, an entry block or a
//! breaker reset, 255 corrupts the view; anything else is `Due`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::Reader;
use crate::core::domain::{
    Instrument, Millis, OrderReport, OrderType, ProtectionMode, Side, VenueStatus,
};
use crate::core::entry::{EntryContext, EntryRequest, EntrySize, plan_entry};
use crate::core::ids::Role;
use crate::core::normalize::floor_to_tick;
use crate::core::trade::{
    Action, Event, Limits, LookOutcome, Market, MarketOutcome, Order, OrderStatus, PollPolicy,
    PollSchedule, PollSource, RejectReason, SendOutcome, TradeState, TradeView, UNKNOWN_WINDOW_MS,
    open_quantity, step,
};

/// Events one input drives at most.
const EVENTS_MAX: usize = 200;
/// Unanswered requests remembered; older ones are forgotten, as a lost answer would be.
const PENDING_MAX: usize = 16;
/// The `op` byte that hand-edits the view before the next step.
const CORRUPT_OP: u8 = 255;
/// When the trade is planned (a 2023 timestamp).
const START_MS: Millis = 1_700_000_000_000;
/// A jump past the slowest retry of a recovering trade (the core's 300 s cap).
const RECOVERY_JUMP_MS: Millis = 300_000;
const SYMBOL: &str = "BTC_USDT";
const BASE: &str = "BTC";
const QUOTE: &str = "USDT";
/// A valid client_oid epoch, for inputs that ask for one.
const EPOCH: &str = "0a1b2c3d";
/// Statuses a lookup may report, drawn by one byte.
const STATUSES: [VenueStatus; 8] = [
    VenueStatus::New,
    VenueStatus::Pending,
    VenueStatus::Active,
    VenueStatus::Filled,
    VenueStatus::Canceled,
    VenueStatus::Rejected,
    VenueStatus::Expired,
    VenueStatus::Active,
];

/// Drives one trade with the events drawn from `bytes` and checks every step.
pub fn trade_step(bytes: &[u8]) {
    let _ = drive(bytes);
}

/// Runs the input and returns the trade as it ended (the seed tests check where seeds lead).
pub(super) fn drive(bytes: &[u8]) -> TradeView {
    drive_with(bytes, Steering::NONE)
}

/// Which known core findings the target steers around, so that the fuzzer looks for new ones.
/// A finding's seed replays it with its steering off.
#[derive(Debug, Clone, Copy)]
pub(super) struct Steering {
    /// No market answer while a protective leg is live (`market_beside_live_leg`).
    pub market_beside_live_leg: bool,
    /// An order the view holds NOT_PLACED is never found again (`Run::looked`).
    pub gone_leg_found: bool,
    /// No protective send answer outside VERIFYING (`late_protection_answer`).
    pub late_protection_answer: bool,
}

impl Steering {
    /// Steering around every finding (how the target ran while they were open).
    pub const ALL: Steering = Steering {
        market_beside_live_leg: true,
        gone_leg_found: true,
        late_protection_answer: true,
    };
    /// No steering: every finding is fixed in the core, so the target explores those paths too.
    pub const NONE: Steering = Steering {
        market_beside_live_leg: false,
        gone_leg_found: false,
        late_protection_answer: false,
    };
}

/// `drive` with the given steering.
pub(super) fn drive_with(bytes: &[u8], steer: Steering) -> TradeView {
    let mut input = Reader { bytes };
    let mut run = Run::start(&mut input);
    run.steer = steer;
    for _ in 0..EVENTS_MAX {
        if input.bytes.is_empty() {
            break;
        }
        run.turn(&mut input);
    }
    run.view
}

/// One trade under test and what the simulated shell knows about it.
struct Run {
    view: TradeView,
    limits: Limits,
    now: Millis,
    /// The last price the entry was planned at; market fills are reported at it.
    entry_price: Decimal,
    /// Requests returned by `step` and not answered yet, oldest first.
    pending: Vec<Action>,
    /// Source of exchange order and list ids.
    ids: u64,
    /// Every step so far, for the message of a broken rule.
    history: Vec<Turn>,
    /// The exchange's last word on each client_oid: a later report never undoes a terminal
    /// status or a fill.
    venue: BTreeMap<String, OrderReport>,
    /// False once the input made the exchange contradict itself (an order reported again as
    /// live after a terminal status, or a fill that shrank). Rules about the exchange's side
    /// of the truth (S1, S8) assume it does not; "no panic" and the others always hold.
    consistent: bool,
    steer: Steering,
}

/// One step as the history keeps it.
struct Turn {
    now: Millis,
    event: Event,
    state: TradeState,
    actions: Vec<Action>,
}

/// Every fill-poll schedule and source, from bits of the input the other settings leave
/// unused.
fn poll_policy(watch: u8, deadline: u8, interval: u8, protect: u8) -> PollPolicy {
    PollPolicy {
        schedule: if watch & 128 == 0 {
            PollSchedule::Adaptive
        } else {
            PollSchedule::Fixed
        },
        source: if deadline & 128 == 0 {
            PollSource::Detail
        } else {
            PollSource::OpenThenHistory
        },
        first_delay_ms: Millis::from(interval / 20 % 5) * 100,
        growth_percent: 100 + u32::from(protect / 3 % 4) * 100,
    }
}

impl Run {
    fn start(input: &mut Reader<'_>) -> Run {
        let [
            attempts,
            interval,
            deadline,
            protect,
            reprotect,
            watch,
            flags,
        ] = input.take();
        let [quantity, stop, profit, price] = input.take();
        let poll_interval_ms = 50 + Millis::from(interval % 20) * 100;
        let limits = Limits {
            poll_attempts_max: 1 + u32::from(attempts % 5),
            poll_interval_ms,
            poll_deadline_ms: poll_interval_ms * (1 + Millis::from(deadline % 30)),
            protect_attempts_max: 1 + u32::from(protect % 3),
            reprotect_max: u32::from(reprotect % 3),
            watch_interval_ms: 50 + Millis::from(watch % 10) * 1_000,
            on_protection_error: flags & 1 != 0,
            flatten: flags & 2 != 0,
            // Either this process started with the trade, or an earlier one sent its orders.
            steady_since_ms: if flags & 64 == 0 { START_MS } else { 0 },
            poll: poll_policy(watch, deadline, interval, protect),
        };
        let mode = match (flags >> 2) % 4 {
            1 => ProtectionMode::Otoco,
            2 => ProtectionMode::Separate,
            _ => ProtectionMode::Oco,
        };
        let request = EntryRequest {
            symbol: SYMBOL.to_string(),
            side: if flags & 16 == 0 {
                Side::Buy
            } else {
                Side::Sell
            },
            size: EntrySize::Quantity(Decimal::new(5 + i64::from(quantity % 100), 2)),
            stop_loss_pct: Decimal::new(5 + 5 * i64::from(stop % 10), 1),
            take_profit_pct: Decimal::new(5 + 5 * i64::from(profit % 10), 1),
            mode,
            signal_id: None,
        };
        let entry_price = Decimal::from(50 + u32::from(price));
        let instrument = instrument(Decimal::new(1, 2), Decimal::new(1, 4));
        let context = EntryContext {
            epoch: if flags & 32 == 0 { "" } else { EPOCH },
            instrument: &instrument,
            last_price: entry_price,
            free_base: Decimal::from(1_000),
            free_quote: Decimal::from(1_000_000),
            symbol_breaker: None,
            global_breaker: None,
            open_trade_on_symbol: false,
            allow_concurrent_trades: false,
        };
        let view = plan_entry(7, &request, &context, START_MS)
            .unwrap_or_else(|refusal| panic!("the drawn entry {request:?} is refused: {refusal}"));
        Run {
            view,
            limits,
            now: START_MS,
            entry_price,
            pending: Vec::new(),
            ids: 0,
            history: Vec::new(),
            venue: BTreeMap::new(),
            consistent: true,
            steer: Steering::ALL,
        }
    }

    /// Draws one event (or a corruption and a `Due`), moves the clock, steps and checks.
    fn turn(&mut self, input: &mut Reader<'_>) {
        let [op, time] = input.take();
        if op == CORRUPT_OP {
            let [which] = input.take();
            corrupt(&mut self.view, which);
            self.advance(time, true);
            return self.step_checked(Event::Due, true);
        }
        let event = match op % 16 {
            0..=9 if !self.pending.is_empty() => {
                let [pick] = input.take();
                let action = self.pending.remove(usize::from(pick) % self.pending.len());
                self.answer(&action, input)
            }
            11 if !self.pending.is_empty() => {
                let [pick] = input.take();
                let action = self.pending.remove(usize::from(pick) % self.pending.len());
                let client_oids = match action {
                    Action::Send { client_oids, .. } => client_oids,
                    _ => Vec::new(),
                };
                Event::Deferred { client_oids }
            }
            12 => {
                let [which] = input.take();
                let oid = self.any_oid(which);
                self.looked(oid, input)
            }
            13 => self.stray_send_or_cancel(input),
            14 => self.stray_other(input),
            _ => Event::Due,
        };
        let event = if self.steer.late_protection_answer
            && late_protection_answer(&self.view, &event)
        {
            // Known finding, steered around: a protective send answered outside VERIFYING
            // (late, behind other results) moves an EXITING trade back to VERIFYING, and a
            // duplicate answer revives a leg while the exit is repeated (S8). Seed
            // `finding-late-protection-answer-during-exit`.
            Event::Due
        } else if self.steer.market_beside_live_leg && market_beside_live_leg(&self.view, &event) {
            // Known finding, steered around so the fuzzer looks further: `step` sizes and sends
            // a new generation on a market answer in PROTECTING without checking that no leg
            // is live, so a lookup result queued ahead of the answer in the same drive that
            // shows a leg live again leaves two stops (S1). Reproduced by the seed
            // `finding-market-after-leg-seen-again` with steering off.
            Event::Due
        } else {
            event
        };
        self.advance(time, event == Event::Due);
        self.step_checked(event, false);
    }

    /// Moves `now`: to the deadline for most `Due`s, a little for answers, past the nonce
    /// window or a recovery delay sometimes, and back now and then, as a system clock can.
    fn advance(&mut self, time: u8, due: bool) {
        let scale = Millis::from(time >> 4);
        self.now = match time % 16 {
            0..=9 if due => self.now.max(self.view.trade.due_ms.unwrap_or(self.now)),
            0..=9 => self.now + Millis::from(time % 16) * 10,
            10 | 11 => self.now + 1_000 + scale * 1_000,
            12 | 13 => self.now + UNKNOWN_WINDOW_MS + scale * 1_000,
            14 => self.now + RECOVERY_JUMP_MS + scale * 10_000,
            _ => self.now - 1_000 - scale * 1_000,
        };
    }

    fn step_checked(&mut self, event: Event, corrupted: bool) {
        let before = self.view.clone();
        let actions = step(&mut self.view, event.clone(), self.now, &self.limits);
        let context = Context {
            before: &before,
            after: &self.view,
            event: &event,
            now: self.now,
            history: &self.history,
            consistent: self.consistent,
        };
        check_step(&context, &actions, corrupted);
        self.history.push(Turn {
            now: self.now,
            event,
            state: self.view.trade.state,
            actions: actions.clone(),
        });
        self.pending.extend(actions.into_iter().filter(|action| {
            matches!(
                action,
                Action::Send { .. }
                    | Action::Lookup { .. }
                    | Action::LookupListed { .. }
                    | Action::Cancel { .. }
                    | Action::FetchMarket
            )
        }));
        let excess = self.pending.len().saturating_sub(PENDING_MAX);
        self.pending.drain(..excess);
    }

    /// The shell's answer to one request, drawn from the input.
    fn answer(&mut self, action: &Action, input: &mut Reader<'_>) -> Event {
        match action {
            Action::Send { client_oids, .. } => {
                let [outcome] = input.take();
                self.sent(client_oids.clone(), outcome)
            }
            Action::Lookup { client_oid } | Action::LookupListed { client_oid } => {
                self.looked(client_oid.clone(), input)
            }
            Action::Cancel { client_oid } => {
                let [outcome] = input.take();
                cancelled(client_oid.clone(), outcome)
            }
            _ => {
                let [kind, price, free] = input.take();
                self.market(kind, price, free)
            }
        }
    }

    fn sent(&mut self, client_oids: Vec<String>, outcome: u8) -> Event {
        let outcome = match outcome % 8 {
            4 => SendOutcome::Duplicate,
            5 => SendOutcome::Rejected {
                reason: RejectReason::Refused,
                message: "code 306: fuzz refusal".into(),
            },
            3 if self.ids % 5 == 0 => SendOutcome::Rejected {
                reason: RejectReason::BelowMinimum,
                message: "code 415: fuzz below minimum".into(),
            },
            6 => SendOutcome::Ambiguous {
                message: "fuzz: no answer".into(),
            },
            _ => {
                self.ids += 1;
                SendOutcome::Ack {
                    order_id: Some(format!("{}", 5_000 + self.ids)),
                    list_id: (client_oids.len() > 1).then(|| format!("list-{}", self.ids)),
                }
            }
        };
        Event::Sent {
            client_oids,
            outcome,
        }
    }

    /// A lookup answer. Steering: an order the view holds NOT_PLACED is never found again
    /// (known finding: the core takes a leg not found past the nonce window and the poll budget
    /// as gone; if the exchange shows it later, filled, a repeat of an unacknowledged exit still
    /// sends the quantity sized before, above the open position (S8) — seed
    /// `finding-exit-repeated-after-leg-filled`).
    fn looked(&mut self, client_oid: String, input: &mut Reader<'_>) -> Event {
        let [kind, status, fill, fee, tamper] = input.take();
        let order = find(&self.view, &client_oid)
            .filter(|order| !(self.steer.gone_leg_found && order.status == OrderStatus::NotPlaced))
            .cloned();
        let outcome = match (kind % 8, order) {
            (6, _) | (_, None) => LookOutcome::NotFound,
            (7, _) => LookOutcome::Failed {
                message: "fuzz: lookup failed".into(),
            },
            (_, Some(order)) => {
                let mut report = self.report(&order, status, fill, fee);
                if tamper % 128 == CONTRADICT {
                    self.consistent = false;
                } else {
                    self.keep_history(&mut report);
                }
                tamper_report(&mut report, tamper, self.view.trade.quantity_tick);
                LookOutcome::Found(report)
            }
        };
        Event::Looked {
            client_oid,
            outcome,
        }
    }

    /// A report of `order` as the exchange would give it: the intent's own fields, a drawn
    /// status, fill and fee.
    fn report(&mut self, order: &Order, status: u8, fill: u8, fee: u8) -> OrderReport {
        let status = STATUSES[usize::from(status) % STATUSES.len()];
        let cumulative_quantity =
            drawn_fill(order.quantity, status, fill, self.view.trade.quantity_tick);
        let avg_price = if cumulative_quantity.is_zero() {
            Decimal::ZERO
        } else {
            order
                .trigger_price
                .or(order.price)
                .unwrap_or(self.entry_price)
        };
        let (cumulative_fee, fee_currency) =
            drawn_fee(order.side, cumulative_quantity, avg_price, fee);
        self.ids += 1;
        OrderReport {
            order_id: order
                .order_id
                .clone()
                .unwrap_or_else(|| format!("{}", 5_000 + self.ids)),
            client_oid: order.client_oid.clone(),
            symbol: SYMBOL.to_string(),
            side: order.side,
            order_type: order.order_type,
            status,
            quantity: order.quantity,
            price: order.price,
            trigger_price: order.trigger_price,
            cumulative_quantity,
            avg_price,
            cumulative_fee,
            fee_currency: fee_currency.to_string(),
            list_id: order.list_id.clone(),
            reason: None,
            update_time_ms: self.now,
        }
    }

    /// Holds a drawn report to what the exchange said before: a terminal order stays as it
    /// ended, a fill never shrinks. Records what it reports unless the fill is impossible.
    fn keep_history(&mut self, report: &mut OrderReport) {
        if let Some(last) = self.venue.get(&report.client_oid) {
            if last.status.is_terminal() {
                *report = last.clone();
                return;
            }
            if report.cumulative_quantity < last.cumulative_quantity {
                report.cumulative_quantity = last.cumulative_quantity;
                report.avg_price = last.avg_price;
                report.cumulative_fee = last.cumulative_fee;
                report.fee_currency = last.fee_currency.clone();
            }
        }
        let possible = report.cumulative_quantity <= report.quantity
            && report.cumulative_fee >= Decimal::ZERO
            && !(report.status == VenueStatus::Filled && report.cumulative_quantity.is_zero());
        if possible {
            self.venue.insert(report.client_oid.clone(), report.clone());
        }
    }

    /// Market data around the fill price (±6.4 %), with a free balance that usually covers
    /// the position.
    fn market(&self, kind: u8, price: u8, free: u8) -> Event {
        if kind % 8 == 7 {
            return Event::Market(MarketOutcome::Failed {
                message: "fuzz: ticker unavailable".into(),
            });
        }
        let trade = &self.view.trade;
        let around = if trade.avg_price > Decimal::ZERO {
            trade.avg_price
        } else {
            self.entry_price
        };
        let offset = Decimal::from(i32::from(price) - 128) / Decimal::from(2_000);
        let last_price = (around * (Decimal::ONE + offset)).round_dp(2);
        let open = open_quantity(&self.view);
        let free_base = match free % 8 {
            0 => Decimal::ZERO,
            1 => open / Decimal::TWO,
            _ => open + Decimal::TEN,
        };
        Event::Market(MarketOutcome::Ready(Market {
            instrument: instrument(trade.price_tick, trade.quantity_tick),
            last_price,
            free_base: Some(free_base),
        }))
    }

    /// An answer nobody asked for now: to a request of an earlier drive, or a repeat.
    fn stray_send_or_cancel(&mut self, input: &mut Reader<'_>) -> Event {
        let [which, what, outcome] = input.take();
        let oid = self.any_oid(which);
        if what % 2 == 0 {
            return cancelled(oid, outcome);
        }
        let generation = find(&self.view, &oid).map(|order| (order.role, order.generation));
        let oids = match generation {
            // An OCO list's answer names both legs.
            Some((role, generation)) if role.is_protective() && what % 4 == 3 => self
                .view
                .orders
                .iter()
                .filter(|order| order.role.is_protective() && order.generation == generation)
                .map(|order| order.client_oid.clone())
                .collect(),
            _ => vec![oid],
        };
        self.sent(oids, outcome)
    }

    fn stray_other(&self, input: &mut Reader<'_>) -> Event {
        let [what, price, free] = input.take();
        match what % 4 {
            0 | 1 => self.market(what >> 2, price, free),
            2 => Event::EntryBlocked {
                reason: "fuzz: breaker open".into(),
            },
            _ => Event::BreakerReset,
        }
    }

    /// One of the view's client_oids, or one it does not have.
    fn any_oid(&self, which: u8) -> String {
        let orders = &self.view.orders;
        if which == u8::MAX || orders.is_empty() {
            return "fuzz-unknown-oid".to_string();
        }
        orders[usize::from(which) % orders.len()].client_oid.clone()
    }
}

fn instrument(price_tick: Decimal, quantity_tick: Decimal) -> Instrument {
    Instrument {
        symbol: SYMBOL.to_string(),
        base: BASE.to_string(),
        quote: QUOTE.to_string(),
        price_tick,
        quantity_tick,
        min_quantity: Decimal::new(1, 4),
        min_notional: Decimal::ONE,
        taker_fee_rate: Decimal::new(1, 3),
    }
}

fn cancelled(client_oid: String, outcome: u8) -> Event {
    Event::Cancelled {
        client_oid,
        outcome: if outcome % 4 == 3 {
            Err("fuzz: cancel refused".into())
        } else {
            Ok(())
        },
    }
}

/// Mostly what the status implies (FILLED all of it, a cancelled order none or part); otherwise
/// none, part, all, or more than the order's quantity.
fn drawn_fill(quantity: Decimal, status: VenueStatus, fill: u8, tick: Decimal) -> Decimal {
    let part = floor_to_tick(
        quantity * Decimal::from(1 + (fill >> 4)) / Decimal::from(17),
        tick,
    );
    match (fill % 16, status) {
        (12, _) => Decimal::ZERO,
        (13, _) => part,
        (14, _) => quantity,
        (15, _) => quantity + tick * Decimal::from(1 + (fill >> 4)),
        (_, VenueStatus::Filled) => quantity,
        (_, VenueStatus::Active) if fill & 32 != 0 => part,
        (_, VenueStatus::Canceled | VenueStatus::Expired | VenueStatus::Rejected)
            if fill & 16 != 0 =>
        {
            part
        }
        _ => Decimal::ZERO,
    }
}

/// The taker fee in what the order received (base for a buy, quote for a sell), sometimes in
/// the quote, none, or negative (an impossible report).
fn drawn_fee(side: Side, quantity: Decimal, price: Decimal, fee: u8) -> (Decimal, &'static str) {
    let rate = Decimal::new(1, 3);
    match (fee % 8, side) {
        (0..=4, Side::Buy) => (quantity * rate, BASE),
        (0..=5, _) => ((quantity * price * rate).round_dp(8), QUOTE),
        (6, _) => (Decimal::ZERO, QUOTE),
        _ => (Decimal::new(-1, 3), BASE),
    }
}

/// The `tamper` value (modulo 128) that lets a report contradict the exchange's earlier ones.
const CONTRADICT: u8 = 6;

/// Rarely, a report that is not quite this order: another symbol, side, quantity, client_oid,
/// trigger or type.
fn tamper_report(report: &mut OrderReport, tamper: u8, tick: Decimal) {
    match tamper % 128 {
        0 => report.symbol = "ETH_USDT".to_string(),
        1 => report.side = report.side.opposite(),
        2 => report.quantity += tick,
        3 => report.client_oid = "fuzz-unknown-oid".to_string(),
        4 => report.trigger_price = Some(report.trigger_price.unwrap_or_default() + Decimal::ONE),
        5 => {
            report.order_type = match report.order_type {
                OrderType::Market => OrderType::Limit,
                _ => OrderType::Market,
            }
        }
        _ => {}
    }
}

/// A hand-edited row: the entry removed or duplicated, a negative fill or fee.
fn corrupt(view: &mut TradeView, which: u8) {
    match which % 4 {
        0 => view.orders.retain(|order| order.role != Role::Entry),
        1 => view.trade.filled_quantity = Decimal::new(-1, 1),
        2 => {
            let entry = view
                .orders
                .iter()
                .find(|order| order.role == Role::Entry)
                .cloned();
            view.orders.extend(entry);
        }
        _ => view.trade.fee = Decimal::new(-1, 3),
    }
}

/// Whether `event` answers a protective send while the trade is not verifying protection.
fn late_protection_answer(view: &TradeView, event: &Event) -> bool {
    let Event::Sent { client_oids, .. } = event else {
        return false;
    };
    // `step` dispatches on the first client_oid: an OTOCO answer leads with the entry.
    let protective = client_oids
        .first()
        .and_then(|oid| find(view, oid))
        .is_some_and(|order| order.role.is_protective());
    protective && view.trade.state != TradeState::Verifying
}

/// Whether `event` is market data that arrives while a protective leg of the view is live.
fn market_beside_live_leg(view: &TradeView, event: &Event) -> bool {
    matches!(event, Event::Market(MarketOutcome::Ready(_)))
        && view
            .orders
            .iter()
            .any(|order| order.role.is_protective() && order.status.is_live())
}

fn find<'a>(view: &'a TradeView, client_oid: &str) -> Option<&'a Order> {
    view.orders
        .iter()
        .find(|order| order.client_oid == client_oid)
}

/// One step, for the messages of a broken rule.
struct Context<'a> {
    before: &'a TradeView,
    after: &'a TradeView,
    event: &'a Event,
    now: Millis,
    history: &'a [Turn],
    consistent: bool,
}

impl std::fmt::Display for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} -> {} at {} on {:?}; orders before: {}",
            self.before.trade.state.as_str(),
            self.after.trade.state.as_str(),
            self.now - START_MS,
            self.event,
            describe_orders(self.before)
        )?;
        write!(
            f,
            "; steps before (ms since start, event, state after, actions):"
        )?;
        for turn in self.history {
            let actions: Vec<String> = turn.actions.iter().map(describe_action).collect();
            write!(
                f,
                "\n  {} {:?} -> {} [{}]",
                turn.now - START_MS,
                turn.event,
                turn.state.as_str(),
                actions.join(", ")
            )?;
        }
        Ok(())
    }
}

/// An action without its alert text.
fn describe_action(action: &Action) -> String {
    match action {
        Action::Alert(alert) => format!("Alert({})", alert.key),
        Action::TripBreaker { reason, .. } => format!("TripBreaker({reason})"),
        other => format!("{other:?}"),
    }
}

fn describe_orders(view: &TradeView) -> String {
    let orders: Vec<String> = view
        .orders
        .iter()
        .map(|order| {
            format!(
                "{} gen {} {} qty {} filled {}",
                order.role,
                order.generation,
                order.status.as_str(),
                order.quantity,
                order.cumulative_quantity
            )
        })
        .collect();
    orders.join("; ")
}

/// The rules one step must keep, checked on the view before and after it and its actions.
fn check_step(context: &Context<'_>, actions: &[Action], corrupted: bool) {
    if context.before.trade.state.is_terminal() {
        assert!(
            actions.is_empty(),
            "a terminal trade returned {actions:?}: {context}"
        );
        return;
    }
    if corrupted {
        assert_eq!(
            context.after.trade.state,
            TradeState::Halted,
            "a hand-edited trade was not halted: {context}"
        );
    }
    let open_before = open_quantity(context.before);
    for action in actions {
        let oids = match action {
            Action::Send { client_oids, .. } => client_oids.as_slice(),
            Action::Lookup { client_oid }
            | Action::LookupListed { client_oid }
            | Action::Cancel { client_oid } => std::slice::from_ref(client_oid),
            _ => &[],
        };
        for oid in oids {
            let Some(order) = find(context.after, oid) else {
                panic!("{action:?} names {oid}, which the view does not have: {context}");
            };
            if context.consistent && matches!(action, Action::Send { .. }) {
                check_send(context, order, open_before);
            }
        }
    }
}

/// S1: no protective leg is sent while one of the same role and an earlier generation may
/// rest. S8: an exit is sent only once no protective leg may rest, and never for more than the
/// open position.
fn check_send(context: &Context<'_>, order: &Order, open_before: Decimal) {
    if order.role.is_protective() {
        let earlier = context.before.orders.iter().find(|other| {
            other.role == order.role
                && other.generation < order.generation
                && other.status.is_live()
        });
        if let Some(earlier) = earlier {
            panic!(
                "S1 broken: {} {} sent while {} of generation {} is {}: {context}",
                order.role,
                order.client_oid,
                earlier.client_oid,
                earlier.generation,
                earlier.status.as_str()
            );
        }
    }
    if order.role == Role::Exit {
        let live = context
            .after
            .orders
            .iter()
            .find(|other| other.role.is_protective() && other.status.is_live());
        if let Some(leg) = live {
            panic!(
                "S8 broken: exit {} sent while {} is {}: {context}",
                order.client_oid,
                leg.client_oid,
                leg.status.as_str()
            );
        }
        assert!(
            order.quantity <= open_before,
            "S8 broken: exit {} of {} above the open position {open_before}: {context}",
            order.client_oid,
            order.quantity
        );
    }
}
