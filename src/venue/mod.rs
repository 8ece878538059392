//! The boundary to an exchange: `trait Venue` and its error type. Implementations live in
//! sub-modules (`paper` now, `cryptocom` next). Only a venue implementation knows a wire format;
//! this module knows none.

pub mod budget;
pub mod cryptocom;
pub mod observe;
pub mod paper;

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use thiserror::Error;

use crate::core::domain::{
    Candle, Instrument, ListAck, Millis, OrderAck, OrderReport, OrderRequest,
};
pub use budget::Budget;

/// Why a venue call failed. Callers branch on the variant: an ambiguous failure of a create call
/// means the order may exist, so it must be looked up by client_oid before anything is re-sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VenueError {
    #[error("request timed out: {0}")]
    Timeout(String),
    #[error("transport error: {0}")]
    Transport(String),
    #[error("server error (http {status}): {message}")]
    Server { status: u16, message: String },
    #[error("rate limited: {0}")]
    RateLimited(String),
    #[error("not found")]
    NotFound,
    #[error("duplicate client_oid {0}")]
    DuplicateClientOid(String),
    #[error("rejected by the exchange (code {code}): {message}")]
    Rejected { code: i64, message: String },
    /// The order is smaller than the exchange's minimum quantity or notional.
    #[error("below the exchange's minimum order size (code {code}): {message}")]
    BelowMinimum { code: i64, message: String },
    #[error("authentication failed (code {code}): {message}")]
    Auth { code: i64, message: String },
    #[error("malformed response: {0}")]
    Malformed(String),
    /// Not sent: the request (with its worst rate-limit wait) did not fit in what is left of
    /// the turn's time budget. Nothing reached the exchange; the caller tries again next turn.
    /// Never ambiguous, never an answer (a deferred lookup is not "not found").
    #[error("deferred to the next turn (time budget spent): {0}")]
    Deferred(String),
}

impl VenueError {
    /// True when the request may have taken effect on the exchange although no success was seen:
    /// timeouts, lost connections, server errors and unreadable answers.
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            VenueError::Timeout(_)
                | VenueError::Transport(_)
                | VenueError::Server { .. }
                | VenueError::Malformed(_)
        )
    }

    /// The exchange's own code of a refusal, kept for alerts and logs. The other variants are
    /// the venue's neutral translation of the exchange's codes, so they carry none.
    pub fn code(&self) -> Option<i64> {
        match self {
            VenueError::Rejected { code, .. }
            | VenueError::BelowMinimum { code, .. }
            | VenueError::Auth { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the failure passes by itself (no route, refused, timeout, 5xx, 429), as opposed
    /// to a definitive answer (bad key or signature, IP not whitelisted, missing permission).
    pub fn is_transient(&self) -> bool {
        self.is_ambiguous() || matches!(self, VenueError::RateLimited(_))
    }

    /// Whether the call was not made at all for want of time in this turn.
    pub fn is_deferred(&self) -> bool {
        matches!(self, VenueError::Deferred(_))
    }
}

/// One exchange account. Every method is one bounded request (or, for the paper venue, an
/// in-process call). Decimals are exact; no method rounds.
pub trait Venue {
    /// Short name for logs and metrics (`paper`, `cryptocom`).
    fn name(&self) -> &'static str;
    /// The time left in this loop turn, set by the shell at the start of each turn: a venue
    /// that talks to a remote exchange sends a request only when its worst case fits, and
    /// answers `VenueError::Deferred` otherwise. In-process venues may ignore it.
    fn set_budget(&mut self, _budget: Budget) {}
    fn instrument(&mut self, symbol: &str) -> Result<Instrument, VenueError>;
    /// Every symbol the exchange lists, in one request where the exchange lists them all (the
    /// watchlist's start-up check). An error is a failure to ask, never "not listed".
    fn listed_symbols(&mut self) -> Result<BTreeSet<String>, VenueError>;
    fn last_price(&mut self, symbol: &str) -> Result<Decimal, VenueError>;
    /// The most recent `count` closed candles of `timeframe_seconds`, oldest first.
    fn candles(
        &mut self,
        symbol: &str,
        timeframe_seconds: u32,
        count: usize,
    ) -> Result<Vec<Candle>, VenueError>;
    /// Balance of `asset` that is free to trade (total less reserved).
    fn free_balance(&mut self, asset: &str) -> Result<Decimal, VenueError>;
    fn create_order(&mut self, order: &OrderRequest) -> Result<OrderAck, VenueError>;
    /// Two protective legs that cancel each other: a stop-loss and a take-profit.
    fn create_oco(
        &mut self,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, VenueError>;
    /// Entry plus two protective legs that activate only once the entry is completely filled.
    fn create_otoco(
        &mut self,
        entry: &OrderRequest,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, VenueError>;
    fn cancel_order(&mut self, symbol: &str, order_id: &str) -> Result<(), VenueError>;
    fn cancel_list(&mut self, symbol: &str, list_id: &str) -> Result<(), VenueError>;
    /// `Ok(None)` when the venue does not know the client_oid (order detail lookup).
    fn order_by_client_oid(&mut self, client_oid: &str) -> Result<Option<OrderReport>, VenueError>;
    /// Every open order of the account, plain and advanced.
    fn open_orders(&mut self) -> Result<Vec<OrderReport>, VenueError>;
    /// Recent terminal orders of one instrument: at least those created at or after `since_ms`,
    /// the earliest time (by the caller's clock) the order looked for can have been created. A
    /// venue may return older ones too, and bounds how far back it reads (see its doc); the
    /// later `since_ms`, the less it has to read.
    fn order_history(
        &mut self,
        symbol: &str,
        since_ms: Millis,
    ) -> Result<Vec<OrderReport>, VenueError>;
    /// Proves, before the first entry, that the venue still accepts what protection needs
    /// (field failure F13: an API change can silently break the stop-loss path).
    fn self_check(&mut self) -> Result<(), VenueError> {
        Ok(())
    }
}

/// A venue shared between its owner and an observer (the simulation keeps the exchange alive
/// across agent restarts and reads its book). Every call borrows for that call only.
impl<V: Venue> Venue for std::rc::Rc<std::cell::RefCell<V>> {
    fn name(&self) -> &'static str {
        self.borrow().name()
    }
    fn set_budget(&mut self, budget: Budget) {
        self.borrow_mut().set_budget(budget)
    }
    fn instrument(&mut self, symbol: &str) -> Result<Instrument, VenueError> {
        self.borrow_mut().instrument(symbol)
    }
    fn listed_symbols(&mut self) -> Result<BTreeSet<String>, VenueError> {
        self.borrow_mut().listed_symbols()
    }
    fn last_price(&mut self, symbol: &str) -> Result<Decimal, VenueError> {
        self.borrow_mut().last_price(symbol)
    }
    fn candles(
        &mut self,
        symbol: &str,
        timeframe_seconds: u32,
        count: usize,
    ) -> Result<Vec<Candle>, VenueError> {
        self.borrow_mut().candles(symbol, timeframe_seconds, count)
    }
    fn free_balance(&mut self, asset: &str) -> Result<Decimal, VenueError> {
        self.borrow_mut().free_balance(asset)
    }
    fn create_order(&mut self, order: &OrderRequest) -> Result<OrderAck, VenueError> {
        self.borrow_mut().create_order(order)
    }
    fn create_oco(
        &mut self,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, VenueError> {
        self.borrow_mut().create_oco(stop_loss, take_profit)
    }
    fn create_otoco(
        &mut self,
        entry: &OrderRequest,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, VenueError> {
        self.borrow_mut()
            .create_otoco(entry, stop_loss, take_profit)
    }
    fn cancel_order(&mut self, symbol: &str, order_id: &str) -> Result<(), VenueError> {
        self.borrow_mut().cancel_order(symbol, order_id)
    }
    fn cancel_list(&mut self, symbol: &str, list_id: &str) -> Result<(), VenueError> {
        self.borrow_mut().cancel_list(symbol, list_id)
    }
    fn order_by_client_oid(&mut self, client_oid: &str) -> Result<Option<OrderReport>, VenueError> {
        self.borrow_mut().order_by_client_oid(client_oid)
    }
    fn open_orders(&mut self) -> Result<Vec<OrderReport>, VenueError> {
        self.borrow_mut().open_orders()
    }
    fn order_history(
        &mut self,
        symbol: &str,
        since_ms: Millis,
    ) -> Result<Vec<OrderReport>, VenueError> {
        self.borrow_mut().order_history(symbol, since_ms)
    }
    fn self_check(&mut self) -> Result<(), VenueError> {
        self.borrow_mut().self_check()
    }
}
