//! The trade state machine's vocabulary: states, orders, the view `step` works on, the
//! events it takes, the actions it returns and the limits it works within. Data only.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::core::domain::{
    Instrument, Millis, OrderReport, OrderType, ProtectionMode, Side, VenueStatus,
};
use crate::core::ids::Role;
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
    /// Failsafe: confirming every protective leg that may exist is gone, then the market exit
    /// of the net open position.
    Exiting,
    /// A protective leg closed the position; cancelling and confirming the remaining legs.
    Closing,
    Closed,
    /// Left for the operator: breaker open, CRITICAL alert sent.
    Halted,
    /// Halted while a position may exist unresolved or unprotected (exchange unreachable,
    /// lookups failing, protection refused): breaker open, CRITICAL alert sent, and re-resolved
    /// at a slow, bounded cadence until it is protected, closed, or the operator resets the
    /// breaker. Not terminal.
    Recovering,
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
            TradeState::Recovering => "RECOVERING",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, TradeState::Closed | TradeState::Halted)
    }

    pub const ALL: [TradeState; 12] = [
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
        TradeState::Recovering,
    ];

    pub fn parse(text: &str) -> Option<TradeState> {
        TradeState::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
    }

    /// The order in which a loop turn serves trades' due work (lower first) when its time
    /// budget may not reach them all: a position that may be filled and not yet protected (a
    /// fill poll, an ambiguous entry, an entry being cancelled that can still fill, protection
    /// being sized, sent or read back, a failsafe exit) or a leg resting on a position that is
    /// gone (closing) before watching protected trades and recovery, and those before a new
    /// entry — a filled, unprotected position always outranks one that does not exist yet.
    pub fn urgency(self) -> u8 {
        match self {
            TradeState::EntryUnknown
            | TradeState::AwaitingFill
            | TradeState::CancellingEntry
            | TradeState::Protecting
            | TradeState::Verifying
            | TradeState::Exiting
            | TradeState::Closing => 0,
            TradeState::Protected
            | TradeState::Recovering
            | TradeState::Closed
            | TradeState::Halted => 1,
            TradeState::EntryPending => 2,
        }
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
    /// The random token of the database that created the trade, carried by every client_oid
    /// (empty for trades of databases older than epochs: their ids keep the old form).
    pub epoch: String,
    /// Set while the trade is halted with a position that may exist unprotected, and during
    /// each attempt to resolve it; cleared when it is resolved.
    pub recovering_since_ms: Option<Millis>,
    /// This trade opened its symbol's breaker (for post-mortems; a reset of the symbol's
    /// breaker after the recovery began ends the recovery, whoever opened it).
    pub breaker_tripped: bool,
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
    /// How the entry's fill is polled: schedule, source and the adaptive schedule's shape.
    pub poll: super::window::PollPolicy,
}

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
    /// The breaker this trade opened was reset by the operator: a recovering trade is left to
    /// them.
    BreakerReset,
    /// The shell did not carry out an action for want of time in this loop turn: nothing
    /// reached the exchange, no answer was read. `client_oids` are the orders of a send that
    /// was not made (empty for a lookup, cancel or market fetch). Not an outcome: the trade is
    /// due again at once, and the action is derived anew next turn.
    Deferred { client_oids: Vec<String> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    Ack {
        order_id: Option<String>,
        list_id: Option<String>,
    },
    /// The exchange already has an order with this client_oid: an earlier attempt of the same
    /// intent exists.
    Duplicate,
    /// The exchange refused the request; nothing was created. `message` keeps the exchange's
    /// own code and text for alerts.
    Rejected {
        reason: RejectReason,
        message: String,
    },
    /// The request may have taken effect.
    Ambiguous { message: String },
}

/// Why the exchange refused a request, as far as the core decides on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Smaller than the exchange's minimum quantity or notional: no retry can succeed.
    BelowMinimum,
    /// Any other refusal.
    Refused,
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
    /// Free balance of the base asset; read for a BUY only (a SELL's protection buys back,
    /// so no base balance bounds it), `None` when not read.
    pub free_base: Option<Decimal>,
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
    /// A fill poll of the entry through the open-orders list, then order history, instead of
    /// order detail (`poll.source = open-then-history`); answered like `Lookup`.
    LookupListed {
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

/// Why a trade ended, halted or is recovering. Stored as its text (`as_str`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    EntryBlocked,
    EntryRejected,
    EntryExpired,
    EntryNotFilled,
    EntryNotPlaced,
    EntryCancelFailed,
    EntryNotFound,
    EntryStateUnknown,
    /// A report under this trade's client_oid is not the order it intended (another
    /// database's order): never adopted.
    IdentityMismatch,
    /// The stored trade contradicts itself (a hand-edited row, an impossible report).
    Inconsistent,
    ProtectionFailed,
    ProtectionRejected,
    ProtectionMismatch,
    ProtectionUnverified,
    ProtectionStuck,
    ReprotectExhausted,
    Unprotectable,
    StopCrossed,
    TakeProfitCrossed,
    StopLossFilled,
    TakeProfitFilled,
    ProtectionFilled,
    FlattenBlocked,
    FlattenFailed,
    FlattenIncomplete,
    FlattenUnconfirmed,
    OperatorReleased,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::EntryBlocked => "entry_blocked",
            Reason::EntryRejected => "entry_rejected",
            Reason::EntryExpired => "entry_expired",
            Reason::EntryNotFilled => "entry_not_filled",
            Reason::EntryNotPlaced => "entry_not_placed",
            Reason::EntryCancelFailed => "entry_cancel_failed",
            Reason::EntryNotFound => "entry_not_found",
            Reason::EntryStateUnknown => "entry_state_unknown",
            Reason::IdentityMismatch => "identity_mismatch",
            Reason::Inconsistent => "inconsistent_trade",
            Reason::ProtectionFailed => "protection_failed",
            Reason::ProtectionRejected => "protection_rejected",
            Reason::ProtectionMismatch => "protection_mismatch",
            Reason::ProtectionUnverified => "protection_unverified",
            Reason::ProtectionStuck => "protection_stuck",
            Reason::ReprotectExhausted => "reprotect_exhausted",
            Reason::Unprotectable => "unprotectable",
            Reason::StopCrossed => "stop_crossed",
            Reason::TakeProfitCrossed => "take_profit_crossed",
            Reason::StopLossFilled => "stop_loss_filled",
            Reason::TakeProfitFilled => "take_profit_filled",
            Reason::ProtectionFilled => "protection_filled",
            Reason::FlattenBlocked => "flatten_blocked",
            Reason::FlattenFailed => "flatten_failed",
            Reason::FlattenIncomplete => "flatten_incomplete",
            Reason::FlattenUnconfirmed => "flatten_unconfirmed",
            Reason::OperatorReleased => "operator_released",
        }
    }

    /// Halts that end the trade for good: no position can exist (an order that is not ours,
    /// a row that cannot be trusted), or one the documented way (a stop already crossed,
    /// a position too small to protect), which the operator settles. Every other halt keeps
    /// the trade recovering.
    pub fn is_final_halt(self) -> bool {
        matches!(
            self,
            Reason::StopCrossed
                | Reason::Unprotectable
                | Reason::IdentityMismatch
                | Reason::Inconsistent
                | Reason::OperatorReleased
        )
    }

    /// Halts where the exchange answered and showed the position, but refused or broke its
    /// protection (as opposed to not answering at all).
    pub fn saw_the_position(self) -> bool {
        matches!(
            self,
            Reason::ProtectionRejected
                | Reason::ProtectionMismatch
                | Reason::ReprotectExhausted
                | Reason::FlattenFailed
                | Reason::FlattenIncomplete
        )
    }

    /// Halts of the failsafe's exit: a recovery resumes the exit, not protection.
    pub fn is_exit_halt(self) -> bool {
        matches!(
            self,
            Reason::FlattenBlocked
                | Reason::FlattenFailed
                | Reason::FlattenIncomplete
                | Reason::FlattenUnconfirmed
        )
    }

    pub const ALL: [Reason; 27] = [
        Reason::EntryBlocked,
        Reason::EntryRejected,
        Reason::EntryExpired,
        Reason::EntryNotFilled,
        Reason::EntryNotPlaced,
        Reason::EntryCancelFailed,
        Reason::EntryNotFound,
        Reason::EntryStateUnknown,
        Reason::IdentityMismatch,
        Reason::Inconsistent,
        Reason::ProtectionFailed,
        Reason::ProtectionRejected,
        Reason::ProtectionMismatch,
        Reason::ProtectionUnverified,
        Reason::ProtectionStuck,
        Reason::ReprotectExhausted,
        Reason::Unprotectable,
        Reason::StopCrossed,
        Reason::TakeProfitCrossed,
        Reason::StopLossFilled,
        Reason::TakeProfitFilled,
        Reason::ProtectionFilled,
        Reason::FlattenBlocked,
        Reason::FlattenFailed,
        Reason::FlattenIncomplete,
        Reason::FlattenUnconfirmed,
        Reason::OperatorReleased,
    ];

    /// The reason a stored text starts with (`flattened after X` gives X).
    pub fn parse(text: &str) -> Option<Reason> {
        let text = text.strip_prefix("flattened after ").unwrap_or(text);
        Reason::ALL
            .into_iter()
            .find(|reason| reason.as_str() == text)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
