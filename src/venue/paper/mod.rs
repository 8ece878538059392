//! The embedded paper venue: the matching `Engine` behind `trait Venue`, driven by a `Clock`.
//! Every call first advances the engine to the clock's now, then delegates and maps rejections
//! to `VenueError`. It must not know a wire format or do IO; the engine reads the optional
//! candles CSV once at construction.

pub mod engine;
mod price;
mod validate;

use std::rc::Rc;

use rust_decimal::Decimal;

use crate::config::PaperConfig;
use crate::core::clock::Clock;
use crate::core::domain::{Candle, Instrument, ListAck, OrderAck, OrderReport, OrderRequest};
use crate::venue::{Venue, VenueError};

pub use engine::{Engine, EngineReject, FillBehavior};

/// Most orders one `order_history` call returns (the most recent ones), as on Crypto.com.
pub const ORDER_HISTORY_LIMIT: usize = 100;

pub struct PaperVenue {
    engine: Engine,
    clock: Rc<dyn Clock>,
}

impl PaperVenue {
    pub fn new(config: &PaperConfig, clock: Rc<dyn Clock>) -> Result<PaperVenue, String> {
        let engine = Engine::new(config, clock.now_ms())?;
        Ok(PaperVenue { engine, clock })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    /// Brings the engine up to the clock and returns the time used.
    fn advance(&mut self) -> i64 {
        let now_ms = self.clock.now_ms();
        self.engine.advance_to(now_ms);
        now_ms
    }

    /// The first client_oid of `requests` that the engine already knows or that repeats.
    fn duplicate_client_oid(&self, requests: &[&OrderRequest]) -> String {
        for (position, request) in requests.iter().enumerate() {
            let known = self.engine.order_by_client_oid(&request.client_oid).is_some();
            let repeated = requests[..position]
                .iter()
                .any(|earlier| earlier.client_oid == request.client_oid);
            if known || repeated {
                return request.client_oid.clone();
            }
        }
        requests
            .first()
            .map(|request| request.client_oid.clone())
            .unwrap_or_default()
    }

    fn map_create_error(&self, reject: EngineReject, requests: &[&OrderRequest]) -> VenueError {
        if reject.code == engine::CODE_DUPLICATE_CLIENT_OID {
            return VenueError::DuplicateClientOid(self.duplicate_client_oid(requests));
        }
        map_reject(reject)
    }
}

fn map_reject(reject: EngineReject) -> VenueError {
    VenueError::Rejected {
        code: reject.code,
        message: reject.message,
    }
}

impl Venue for PaperVenue {
    fn name(&self) -> &'static str {
        "paper"
    }

    fn instrument(&mut self, symbol: &str) -> Result<Instrument, VenueError> {
        self.advance();
        self.engine.instrument(symbol).map_err(map_reject)
    }

    fn last_price(&mut self, symbol: &str) -> Result<Decimal, VenueError> {
        self.advance();
        self.engine.last_price(symbol).map_err(map_reject)
    }

    fn candles(
        &mut self,
        symbol: &str,
        timeframe_seconds: u32,
        count: usize,
    ) -> Result<Vec<Candle>, VenueError> {
        self.advance();
        self.engine
            .candles(symbol, timeframe_seconds, count)
            .map_err(map_reject)
    }

    fn free_balance(&mut self, asset: &str) -> Result<Decimal, VenueError> {
        self.advance();
        Ok(self.engine.free_balance(asset))
    }

    fn create_order(&mut self, order: &OrderRequest) -> Result<OrderAck, VenueError> {
        let now_ms = self.advance();
        self.engine
            .create_order(now_ms, order)
            .map_err(|reject| self.map_create_error(reject, &[order]))
    }

    fn create_oco(
        &mut self,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, VenueError> {
        let now_ms = self.advance();
        self.engine
            .create_oco(now_ms, stop_loss, take_profit)
            .map_err(|reject| self.map_create_error(reject, &[stop_loss, take_profit]))
    }

    fn create_otoco(
        &mut self,
        entry: &OrderRequest,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, VenueError> {
        let now_ms = self.advance();
        let requests = [entry, stop_loss, take_profit];
        self.engine
            .create_otoco(now_ms, entry, stop_loss, take_profit)
            .map_err(|reject| self.map_create_error(reject, &requests))
    }

    /// The symbol must be the order's: a mismatch is answered like an unknown order id (212).
    fn cancel_order(&mut self, symbol: &str, order_id: &str) -> Result<(), VenueError> {
        let now_ms = self.advance();
        let matches_symbol = self
            .engine
            .order_by_id(order_id)
            .is_none_or(|report| report.symbol == symbol);
        if !matches_symbol {
            return Err(VenueError::Rejected {
                code: engine::CODE_INVALID_ORDER_ID,
                message: format!("order {order_id} is not on {symbol}"),
            });
        }
        self.engine
            .cancel_order(now_ms, order_id)
            .map_err(map_reject)
    }

    fn cancel_list(&mut self, _symbol: &str, list_id: &str) -> Result<(), VenueError> {
        let now_ms = self.advance();
        self.engine.cancel_list(now_ms, list_id).map_err(map_reject)
    }

    fn order_by_client_oid(
        &mut self,
        client_oid: &str,
    ) -> Result<Option<OrderReport>, VenueError> {
        self.advance();
        Ok(self.engine.order_by_client_oid(client_oid))
    }

    fn open_orders(&mut self) -> Result<Vec<OrderReport>, VenueError> {
        self.advance();
        Ok(self.engine.open_orders())
    }

    /// The most recent `ORDER_HISTORY_LIMIT` terminal orders of `symbol`, oldest first.
    fn order_history(&mut self, symbol: &str) -> Result<Vec<OrderReport>, VenueError> {
        self.advance();
        let mut history = self.engine.order_history(symbol).map_err(map_reject)?;
        let skip = history.len().saturating_sub(ORDER_HISTORY_LIMIT);
        Ok(history.split_off(skip))
    }
}
