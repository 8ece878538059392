//! An in-process matching engine with Crypto.com Exchange v1 order semantics, for the paper
//! venue, the HTTP simulator and the deterministic simulation. It owns the price paths, the
//! order book of one account and its balances.
//!
//! It must not read a clock, do IO (except reading the candles CSV once in `Engine::new`), use
//! unseeded randomness or know a wire format: every mutating call takes `now_ms`, and the same
//! seed and the same calls give the same book. Bad input is answered with an `EngineReject`;
//! `assert!` guards only the engine's own invariants.
//!
//! Timing: fills happen only inside `advance_to` (which every mutating call runs first) and
//! `set_price`, never inside a create call. A MARKET order fills `fill_delay` after it was
//! accepted, at the price of that moment. LIMIT orders and triggered STOP_LOSS / TAKE_PROFIT
//! orders fill at the price step that crosses them: a LIMIT at its limit price, a trigger order
//! immediately and completely at that step's price (no fill delay), atomically with the
//! cancellation of its list siblings.
//!
//! Reservations: MARKET and LIMIT orders reserve what they spend when accepted (a SELL its base
//! quantity; a BUY its notional, or quantity × limit-or-last price × (1 + fee rate) in quote).
//! Trigger orders reserve nothing; when one fires without enough free balance it ends REJECTED
//! with reason 306. An OCO is checked once against the larger leg; only its LIMIT leg reserves,
//! and a firing trigger leg may use the reservation of the sibling it cancels.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::PaperConfig;
use crate::core::domain::{
    Candle, Instrument, ListAck, Millis, OrderAck, OrderReport, OrderRequest, OrderType, Side,
    VenueStatus,
};

use super::price::{PathSpec, PricePath, load_candles_csv};
use super::validate::{self, is_on_tick, is_trigger};
pub use super::validate::{
    CODE_BELOW_MINIMUM, CODE_DUPLICATE_CLIENT_OID, CODE_INSUFFICIENT_BALANCE,
    CODE_INVALID_ARGUMENT, CODE_INVALID_INSTRUMENT, CODE_INVALID_ORDER_ID, CODE_INVALID_PRICE,
    CODE_INVALID_QUANTITY, CODE_INVALID_REFERENCE_PRICE, CODE_NO_ACTIVE_ORDER,
    CODE_TOO_MANY_ORDERS,
};

/// Steps one `advance_to` processes at most; older steps of a larger gap are skipped (the price
/// holds over them).
pub const STEPS_PER_ADVANCE_MAX: i64 = 100_000;
/// Open orders per account, as on Crypto.com (code 318 beyond).
pub const OPEN_ORDERS_MAX: usize = 1_000;
/// Most candles one `candles` call returns, as on Crypto.com.
pub const CANDLES_COUNT_MAX: usize = 300;
pub const ORDER_ID_FIRST: u64 = 6_530_219_599_900_000_000;
pub const LIST_ID_FIRST: u64 = 6_530_219_599_800_000_000;
/// Decimal places of `avg_price` (rounded half to even).
const AVERAGE_PRICE_DECIMALS: u32 = 12;

const _: () = assert!(STEPS_PER_ADVANCE_MAX >= 1);
const _: () = assert!(LIST_ID_FIRST < ORDER_ID_FIRST);

/// A synchronous rejection, with the Crypto.com v1 error code.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("rejected (code {code}): {message}")]
pub struct EngineReject {
    pub code: i64,
    pub message: String,
}

impl EngineReject {
    pub fn new(code: i64, message: impl Into<String>) -> EngineReject {
        EngineReject {
            code,
            message: message.into(),
        }
    }
}

/// Per-symbol knobs that make hard cases reproducible; all off by default. They apply to MARKET
/// and LIMIT orders that are not OCO legs ("entries"), except `reject_protective`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FillBehavior {
    /// Replaces the configured fill delay of MARKET orders.
    pub fill_delay_ms: Option<Millis>,
    /// The first fill covers only this fraction (0 < f < 1) of the quantity, floored to the
    /// quantity tick; the rest fills later (MARKET: one more fill delay; LIMIT: next crossing).
    pub partial_fill_fraction: Option<Decimal>,
    /// After the partial fill the rest EXPIRES instead of filling.
    pub expire_after_partial: bool,
    /// Entries never fill: MARKET stays NEW, LIMIT stays ACTIVE.
    pub never_fill: bool,
    /// Every STOP_LOSS / TAKE_PROFIT order, OCO and OTOCO is rejected with this.
    pub reject_protective: Option<EngineReject>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum Role {
    Single,
    OcoLeg,
    OtocoEntry,
    OtocoLeg,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Order {
    report: OrderReport,
    role: Role,
    /// Quote to spend, for a MARKET BUY by notional (its quantity is known at the first fill).
    notional: Option<Decimal>,
    reserve_asset: String,
    reserved: Decimal,
    cumulative_value: Decimal,
    /// When a MARKET order (or its remainder) fills next.
    fill_due_ms: Option<Millis>,
    /// False for OTOCO legs until the entry is completely filled.
    armed: bool,
}

/// Serializable, so the paper account survives restarts (see `PaperVenue::open`).
#[derive(Debug, Serialize, Deserialize)]
pub struct Engine {
    instruments: BTreeMap<String, Instrument>,
    paths: BTreeMap<String, PricePath>,
    balances: BTreeMap<String, Decimal>,
    reserved: BTreeMap<String, Decimal>,
    /// Every order ever created; an order's index never changes.
    orders: Vec<Order>,
    index_by_order_id: BTreeMap<String, usize>,
    index_by_client_oid: BTreeMap<String, usize>,
    /// Indexes of NEW / PENDING / ACTIVE orders.
    open: BTreeSet<usize>,
    /// Members of each list in creation order (an OTOCO's entry first).
    lists: BTreeMap<String, Vec<usize>>,
    behaviors: BTreeMap<String, FillBehavior>,
    next_order_id: u64,
    next_list_id: u64,
    taker_fee_rate: Decimal,
    fill_delay_ms: Millis,
    step_ms: Millis,
    now_ms: Millis,
    next_step_ms: Millis,
}

fn duration_ms(duration: std::time::Duration, key: &str) -> Result<Millis, String> {
    Millis::try_from(duration.as_millis()).map_err(|_| format!("paper.{key} is too large"))
}

fn build_instruments(config: &PaperConfig) -> Result<BTreeMap<String, Instrument>, String> {
    let mut instruments = BTreeMap::new();
    for paper in &config.instruments {
        let positive = [paper.price_tick, paper.quantity_tick, paper.start_price];
        if positive.iter().any(|value| *value <= Decimal::ZERO) {
            return Err(format!(
                "paper instrument {}: ticks and start price must be positive",
                paper.symbol
            ));
        }
        if paper.min_quantity < Decimal::ZERO || paper.min_notional < Decimal::ZERO {
            return Err(format!(
                "paper instrument {}: negative minimum",
                paper.symbol
            ));
        }
        let instrument = Instrument {
            symbol: paper.symbol.clone(),
            base: paper.base.clone(),
            quote: paper.quote.clone(),
            price_tick: paper.price_tick,
            quantity_tick: paper.quantity_tick,
            min_quantity: paper.min_quantity,
            min_notional: paper.min_notional,
            taker_fee_rate: config.taker_fee_rate,
        };
        if instruments
            .insert(paper.symbol.clone(), instrument)
            .is_some()
        {
            return Err(format!("paper instrument {} given twice", paper.symbol));
        }
    }
    Ok(instruments)
}

fn build_paths(
    config: &PaperConfig,
    instruments: &BTreeMap<String, Instrument>,
    start_ms: Millis,
) -> Result<BTreeMap<String, PricePath>, String> {
    let symbols: BTreeSet<String> = instruments.keys().cloned().collect();
    let mut replays = match &config.candles_csv {
        Some(path) => load_candles_csv(path, &symbols)?,
        None => BTreeMap::new(),
    };
    let mut paths = BTreeMap::new();
    for paper in &config.instruments {
        let spec = PathSpec {
            seed: config.seed,
            symbol: &paper.symbol,
            start_price: paper.start_price,
            price_tick: paper.price_tick,
            volatility: config.volatility,
            replay: replays.remove(&paper.symbol).unwrap_or_default(),
            start_ms,
        };
        paths.insert(paper.symbol.clone(), PricePath::new(spec));
    }
    Ok(paths)
}

impl Engine {
    /// Builds the engine at `start_ms`. Reads `config.candles_csv` when it is set.
    pub fn new(config: &PaperConfig, start_ms: Millis) -> Result<Engine, String> {
        let step_ms = duration_ms(config.step, "step")?;
        let fill_delay_ms = duration_ms(config.fill_delay, "fill_delay")?;
        if step_ms <= 0 {
            return Err("paper.step must be at least 1 ms".to_string());
        }
        if config.taker_fee_rate < Decimal::ZERO || config.taker_fee_rate >= Decimal::ONE {
            return Err("paper.taker_fee_rate must be in [0, 1)".to_string());
        }
        if config.volatility < Decimal::ZERO || config.volatility > Decimal::ONE {
            return Err("paper.volatility must be in [0, 1]".to_string());
        }
        if let Some((asset, _)) = config
            .balances
            .iter()
            .find(|(_, value)| **value < Decimal::ZERO)
        {
            return Err(format!("paper balance of {asset} is negative"));
        }
        let instruments = build_instruments(config)?;
        let paths = build_paths(config, &instruments, start_ms)?;
        Ok(Engine {
            instruments,
            paths,
            balances: config.balances.clone(),
            reserved: BTreeMap::new(),
            orders: Vec::new(),
            index_by_order_id: BTreeMap::new(),
            index_by_client_oid: BTreeMap::new(),
            open: BTreeSet::new(),
            lists: BTreeMap::new(),
            behaviors: BTreeMap::new(),
            next_order_id: ORDER_ID_FIRST,
            next_list_id: LIST_ID_FIRST,
            taker_fee_rate: config.taker_fee_rate,
            fill_delay_ms,
            step_ms,
            now_ms: start_ms,
            next_step_ms: start_ms.saturating_add(step_ms),
        })
    }

    // ----- queries -----

    /// The engine's time: the latest `now_ms` it was advanced to.
    pub fn now_ms(&self) -> Millis {
        self.now_ms
    }

    /// Every order ever created, in creation order.
    pub fn book(&self) -> Vec<OrderReport> {
        self.orders
            .iter()
            .map(|order| order.report.clone())
            .collect()
    }

    /// Total balance per asset (free plus reserved).
    pub fn balances(&self) -> BTreeMap<String, Decimal> {
        self.balances.clone()
    }

    /// Balance of `asset` not reserved by open orders; zero for an unknown asset.
    pub fn free_balance(&self, asset: &str) -> Decimal {
        let total = self.balances.get(asset).copied().unwrap_or_default();
        total - self.reserved.get(asset).copied().unwrap_or_default()
    }

    pub fn instrument(&self, symbol: &str) -> Result<Instrument, EngineReject> {
        self.instruments.get(symbol).cloned().ok_or_else(|| {
            EngineReject::new(
                CODE_INVALID_INSTRUMENT,
                format!("unknown instrument {symbol}"),
            )
        })
    }

    pub fn last_price(&self, symbol: &str) -> Result<Decimal, EngineReject> {
        self.instrument(symbol)?;
        Ok(self.price_of(symbol))
    }

    /// The last `count` (1..=300) candles of `timeframe_seconds` closed by now, oldest first,
    /// from the step prices the engine remembers (see `price::HISTORY_STEPS_MAX`).
    pub fn candles(
        &self,
        symbol: &str,
        timeframe_seconds: u32,
        count: usize,
    ) -> Result<Vec<Candle>, EngineReject> {
        self.instrument(symbol)?;
        if timeframe_seconds == 0 || count == 0 || count > CANDLES_COUNT_MAX {
            return Err(EngineReject::new(
                CODE_INVALID_ARGUMENT,
                format!("timeframe must be positive and count in 1..={CANDLES_COUNT_MAX}"),
            ));
        }
        let timeframe_ms = Millis::from(timeframe_seconds) * 1_000;
        Ok(self.paths[symbol].candles(timeframe_ms, count, self.now_ms))
    }

    pub fn order_by_client_oid(&self, client_oid: &str) -> Option<OrderReport> {
        let index = self.index_by_client_oid.get(client_oid)?;
        Some(self.orders[*index].report.clone())
    }

    pub fn order_by_id(&self, order_id: &str) -> Option<OrderReport> {
        let index = self.index_by_order_id.get(order_id)?;
        Some(self.orders[*index].report.clone())
    }

    /// NEW, PENDING and ACTIVE orders (plain and list members), in creation order.
    pub fn open_orders(&self) -> Vec<OrderReport> {
        let reports = self
            .open
            .iter()
            .map(|index| self.orders[*index].report.clone());
        reports.collect()
    }

    /// Terminal orders of `symbol`, in creation order.
    pub fn order_history(&self, symbol: &str) -> Result<Vec<OrderReport>, EngineReject> {
        self.instrument(symbol)?;
        let terminal = self
            .orders
            .iter()
            .filter(|order| order.report.symbol == symbol && order.report.status.is_terminal());
        Ok(terminal.map(|order| order.report.clone()).collect())
    }

    fn price_of(&self, symbol: &str) -> Decimal {
        self.paths[symbol].price()
    }

    fn behavior(&self, symbol: &str) -> FillBehavior {
        self.behaviors.get(symbol).cloned().unwrap_or_default()
    }

    fn fill_delay_for(&self, symbol: &str) -> Millis {
        self.behavior(symbol)
            .fill_delay_ms
            .unwrap_or(self.fill_delay_ms)
    }
}

// ----- test knobs -----

impl Engine {
    /// Sets the fill behaviour of `symbol` (a test knob; the symbol must be configured).
    pub fn set_behavior(&mut self, symbol: &str, behavior: FillBehavior) {
        assert!(
            self.instruments.contains_key(symbol),
            "unknown symbol {symbol}"
        );
        if let Some(fraction) = behavior.partial_fill_fraction {
            assert!(fraction > Decimal::ZERO && fraction < Decimal::ONE);
        }
        if let Some(delay_ms) = behavior.fill_delay_ms {
            assert!(delay_ms >= 0);
        }
        self.behaviors.insert(symbol.to_string(), behavior);
    }

    /// Forces the current price of `symbol` at `now_ms` (on the price tick), then runs due
    /// fills, limits and triggers against it. The walk continues from this price.
    pub fn set_price(
        &mut self,
        symbol: &str,
        price: Decimal,
        now_ms: Millis,
    ) -> Result<(), EngineReject> {
        let now_ms = self.advance_and_now(now_ms);
        let instrument = self.instrument(symbol)?;
        let in_range = price > Decimal::ZERO && price <= Decimal::from(super::price::PRICE_MAX);
        if !in_range || !is_on_tick(price, instrument.price_tick) {
            return Err(EngineReject::new(
                CODE_INVALID_PRICE,
                format!("bad price {price}"),
            ));
        }
        self.paths
            .get_mut(symbol)
            .expect("instrument has a path")
            .force(price, now_ms);
        self.run_due_fills(now_ms);
        self.run_resting(now_ms);
        Ok(())
    }

    /// Cancels an open order as if the account owner did it in the exchange's UI. For a list
    /// member this cancels only that member.
    pub fn cancel_externally(
        &mut self,
        order_id: &str,
        now_ms: Millis,
    ) -> Result<(), EngineReject> {
        self.cancel_order(now_ms, order_id)
    }
}

// ----- order entry and cancellation -----

impl Engine {
    pub fn create_order(
        &mut self,
        now_ms: Millis,
        request: &OrderRequest,
    ) -> Result<OrderAck, EngineReject> {
        let now_ms = self.advance_and_now(now_ms);
        self.check_client_oids(&[request])?;
        let instrument = self.instrument(&request.symbol)?;
        if is_trigger(request.order_type) {
            self.check_protective_allowed(&request.symbol)?;
        }
        let last_price = self.price_of(&request.symbol);
        validate::check_request(request, &instrument, last_price)?;
        let funds = self.required_funds(request, &instrument, last_price);
        if !is_trigger(request.order_type) {
            self.check_funds(&funds.0, funds.1)?;
        }
        self.check_capacity(1)?;
        let index = self.insert_order(now_ms, request, Role::Single, None);
        if !is_trigger(request.order_type) {
            self.reserve(index, funds.1);
        }
        Ok(OrderAck {
            order_id: self.orders[index].report.order_id.clone(),
            client_oid: request.client_oid.clone(),
        })
    }

    /// A STOP_LOSS and a TAKE_PROFIT (or LIMIT) leg on the same symbol and side; all or nothing.
    pub fn create_oco(
        &mut self,
        now_ms: Millis,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, EngineReject> {
        let now_ms = self.advance_and_now(now_ms);
        self.check_client_oids(&[stop_loss, take_profit])?;
        let instrument = self.instrument(&stop_loss.symbol)?;
        self.check_protective_allowed(&stop_loss.symbol)?;
        check_oco_shape(stop_loss, take_profit)?;
        let last_price = self.price_of(&stop_loss.symbol);
        validate::check_request(stop_loss, &instrument, last_price)?;
        validate::check_request(take_profit, &instrument, last_price)?;
        let (asset, stop_amount) = self.required_funds(stop_loss, &instrument, last_price);
        let (_, profit_amount) = self.required_funds(take_profit, &instrument, last_price);
        // Both legs spend the same coins and at most one fills: check the larger once.
        self.check_funds(&asset, stop_amount.max(profit_amount))?;
        self.check_capacity(2)?;
        let list_id = self.take_list_id();
        let stop_index = self.insert_order(now_ms, stop_loss, Role::OcoLeg, Some(&list_id));
        let profit_index = self.insert_order(now_ms, take_profit, Role::OcoLeg, Some(&list_id));
        if take_profit.order_type == OrderType::Limit {
            self.reserve(profit_index, profit_amount);
        }
        self.lists
            .insert(list_id.clone(), vec![stop_index, profit_index]);
        Ok(ListAck { list_id })
    }

    /// An entry (MARKET or LIMIT) plus STOP_LOSS and TAKE_PROFIT legs of the opposite side that
    /// stay PENDING and unarmed until the entry is completely FILLED; then they act as an OCO.
    pub fn create_otoco(
        &mut self,
        now_ms: Millis,
        entry: &OrderRequest,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, EngineReject> {
        let now_ms = self.advance_and_now(now_ms);
        self.check_client_oids(&[entry, stop_loss, take_profit])?;
        let instrument = self.instrument(&entry.symbol)?;
        self.check_protective_allowed(&entry.symbol)?;
        check_otoco_shape(entry, stop_loss, take_profit)?;
        let last_price = self.price_of(&entry.symbol);
        validate::check_request(entry, &instrument, last_price)?;
        // The legs are judged against the price the entry is expected to fill at.
        let reference_price = entry.price.unwrap_or(last_price);
        validate::check_request(stop_loss, &instrument, reference_price)?;
        validate::check_request(take_profit, &instrument, reference_price)?;
        let (asset, amount) = self.required_funds(entry, &instrument, last_price);
        self.check_funds(&asset, amount)?;
        self.check_capacity(3)?;
        let list_id = self.take_list_id();
        let entry_index = self.insert_order(now_ms, entry, Role::OtocoEntry, Some(&list_id));
        let stop_index = self.insert_order(now_ms, stop_loss, Role::OtocoLeg, Some(&list_id));
        let profit_index = self.insert_order(now_ms, take_profit, Role::OtocoLeg, Some(&list_id));
        self.reserve(entry_index, amount);
        self.lists
            .insert(list_id.clone(), vec![entry_index, stop_index, profit_index]);
        Ok(ListAck { list_id })
    }

    /// Cancels one open order (for a list member, only that member). 212 when unknown, 316 when
    /// it is no longer open.
    pub fn cancel_order(&mut self, now_ms: Millis, order_id: &str) -> Result<(), EngineReject> {
        let now_ms = self.advance_and_now(now_ms);
        let Some(&index) = self.index_by_order_id.get(order_id) else {
            return Err(EngineReject::new(
                CODE_INVALID_ORDER_ID,
                format!("unknown order_id {order_id}"),
            ));
        };
        if !self.open.contains(&index) {
            return Err(EngineReject::new(
                CODE_NO_ACTIVE_ORDER,
                format!("order {order_id} is not open"),
            ));
        }
        self.finish(index, VenueStatus::Canceled, None, now_ms);
        Ok(())
    }

    /// Cancels every open member of a list. 212 when unknown, 316 when none is open.
    pub fn cancel_list(&mut self, now_ms: Millis, list_id: &str) -> Result<(), EngineReject> {
        let now_ms = self.advance_and_now(now_ms);
        let Some(members) = self.lists.get(list_id) else {
            return Err(EngineReject::new(
                CODE_INVALID_ORDER_ID,
                format!("unknown list_id {list_id}"),
            ));
        };
        let open_members: Vec<usize> = members
            .iter()
            .copied()
            .filter(|index| self.open.contains(index))
            .collect();
        if open_members.is_empty() {
            return Err(EngineReject::new(
                CODE_NO_ACTIVE_ORDER,
                format!("list {list_id} has no open order"),
            ));
        }
        for index in open_members {
            self.finish(index, VenueStatus::Canceled, None, now_ms);
        }
        Ok(())
    }

    fn advance_and_now(&mut self, now_ms: Millis) -> Millis {
        self.advance_to(now_ms);
        self.now_ms
    }

    /// 40004 for a malformed client_oid, 204 for one seen before or repeated among `requests`.
    fn check_client_oids(&self, requests: &[&OrderRequest]) -> Result<(), EngineReject> {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        for request in requests {
            validate::check_client_oid(&request.client_oid)?;
            let known = self.index_by_client_oid.contains_key(&request.client_oid);
            if known || !seen.insert(&request.client_oid) {
                return Err(EngineReject::new(
                    CODE_DUPLICATE_CLIENT_OID,
                    format!("duplicate client_oid {}", request.client_oid),
                ));
            }
        }
        Ok(())
    }

    fn check_protective_allowed(&self, symbol: &str) -> Result<(), EngineReject> {
        match self
            .behaviors
            .get(symbol)
            .and_then(|behavior| behavior.reject_protective.clone())
        {
            Some(reject) => Err(reject),
            None => Ok(()),
        }
    }

    fn check_capacity(&self, count: usize) -> Result<(), EngineReject> {
        if self.open.len() + count > OPEN_ORDERS_MAX {
            return Err(EngineReject::new(
                CODE_TOO_MANY_ORDERS,
                format!("more than {OPEN_ORDERS_MAX} open orders"),
            ));
        }
        Ok(())
    }

    fn check_funds(&self, asset: &str, amount: Decimal) -> Result<(), EngineReject> {
        let free = self.free_balance(asset);
        if free < amount {
            return Err(EngineReject::new(
                CODE_INSUFFICIENT_BALANCE,
                format!("needs {amount} {asset}, {free} free"),
            ));
        }
        Ok(())
    }

    /// The asset and amount an order spends: a SELL its base quantity; a BUY its notional, or
    /// quantity × (limit, trigger or last price) × (1 + fee rate) of quote as a buffer.
    fn required_funds(
        &self,
        request: &OrderRequest,
        instrument: &Instrument,
        last_price: Decimal,
    ) -> (String, Decimal) {
        match (request.side, request.quantity, request.notional) {
            (Side::Sell, Some(quantity), _) => (instrument.base.clone(), quantity),
            (Side::Buy, None, Some(notional)) => (instrument.quote.clone(), notional),
            (Side::Buy, Some(quantity), _) => {
                let price = request
                    .price
                    .or(request.trigger_price)
                    .unwrap_or(last_price);
                let amount = quantity * price * (Decimal::ONE + self.taker_fee_rate);
                (instrument.quote.clone(), amount)
            }
            _ => unreachable!("validated requests have a quantity or a BUY notional"),
        }
    }

    fn take_order_id(&mut self) -> String {
        let order_id = self.next_order_id;
        self.next_order_id = order_id.checked_add(1).expect("order ids exhausted");
        order_id.to_string()
    }

    fn take_list_id(&mut self) -> String {
        let list_id = self.next_list_id;
        self.next_list_id = list_id.checked_add(1).expect("list ids exhausted");
        assert!(self.next_list_id < ORDER_ID_FIRST);
        list_id.to_string()
    }

    fn insert_order(
        &mut self,
        now_ms: Millis,
        request: &OrderRequest,
        role: Role,
        list_id: Option<&str>,
    ) -> usize {
        let instrument = &self.instruments[&request.symbol];
        let (fee_currency, reserve_asset) = match request.side {
            Side::Buy => (instrument.base.clone(), instrument.quote.clone()),
            Side::Sell => (instrument.quote.clone(), instrument.base.clone()),
        };
        let (status, fill_due_ms) = match request.order_type {
            OrderType::Market => {
                let delay_ms = self.fill_delay_for(&request.symbol);
                (VenueStatus::New, Some(now_ms.saturating_add(delay_ms)))
            }
            OrderType::Limit => (VenueStatus::Active, None),
            OrderType::StopLoss | OrderType::TakeProfit => (VenueStatus::Pending, None),
        };
        let order_id = self.take_order_id();
        let report = OrderReport {
            order_id: order_id.clone(),
            client_oid: request.client_oid.clone(),
            symbol: request.symbol.clone(),
            side: request.side,
            order_type: request.order_type,
            status,
            quantity: request.quantity.unwrap_or(Decimal::ZERO),
            price: request.price,
            trigger_price: request.trigger_price,
            cumulative_quantity: Decimal::ZERO,
            avg_price: Decimal::ZERO,
            cumulative_fee: Decimal::ZERO,
            fee_currency,
            list_id: list_id.map(str::to_string),
            reason: None,
            update_time_ms: now_ms,
        };
        let index = self.orders.len();
        self.orders.push(Order {
            report,
            role,
            notional: request.notional,
            reserve_asset,
            reserved: Decimal::ZERO,
            cumulative_value: Decimal::ZERO,
            fill_due_ms,
            armed: role != Role::OtocoLeg,
        });
        self.index_by_order_id.insert(order_id, index);
        self.index_by_client_oid
            .insert(request.client_oid.clone(), index);
        self.open.insert(index);
        index
    }
}

fn check_oco_shape(
    stop_loss: &OrderRequest,
    take_profit: &OrderRequest,
) -> Result<(), EngineReject> {
    let profit_type_ok = matches!(
        take_profit.order_type,
        OrderType::TakeProfit | OrderType::Limit
    );
    if stop_loss.order_type != OrderType::StopLoss || !profit_type_ok {
        return Err(EngineReject::new(
            CODE_INVALID_ARGUMENT,
            "oco needs a STOP_LOSS leg and a TAKE_PROFIT or LIMIT leg",
        ));
    }
    if stop_loss.symbol != take_profit.symbol || stop_loss.side != take_profit.side {
        return Err(EngineReject::new(
            CODE_INVALID_ARGUMENT,
            "oco legs must share symbol and side",
        ));
    }
    Ok(())
}

fn check_otoco_shape(
    entry: &OrderRequest,
    stop_loss: &OrderRequest,
    take_profit: &OrderRequest,
) -> Result<(), EngineReject> {
    let entry_ok = matches!(entry.order_type, OrderType::Market | OrderType::Limit);
    let legs_ok = stop_loss.order_type == OrderType::StopLoss
        && take_profit.order_type == OrderType::TakeProfit;
    if !entry_ok || !legs_ok {
        return Err(EngineReject::new(
            CODE_INVALID_ARGUMENT,
            "otoco needs a MARKET or LIMIT entry, a STOP_LOSS and a TAKE_PROFIT",
        ));
    }
    let same_symbol = [stop_loss, take_profit]
        .iter()
        .all(|leg| leg.symbol == entry.symbol);
    let opposite_side = [stop_loss, take_profit]
        .iter()
        .all(|leg| leg.side == entry.side.opposite());
    if !same_symbol || !opposite_side {
        return Err(EngineReject::new(
            CODE_INVALID_ARGUMENT,
            "otoco legs must share the entry's symbol and take the opposite side",
        ));
    }
    Ok(())
}

// ----- time, fills and triggers -----

impl Engine {
    /// Steps the price paths up to `now_ms` and processes due fills, limits and triggers. Time
    /// never goes back: an earlier `now_ms` does nothing. At most `STEPS_PER_ADVANCE_MAX` steps
    /// run per call; the steps before them are skipped and the price holds over them.
    pub fn advance_to(&mut self, now_ms: Millis) {
        if now_ms <= self.now_ms {
            return;
        }
        let steps = self.steps_due(now_ms);
        for _ in 0..steps {
            let step_ms = self.next_step_ms;
            // Fills due before this step see the price before it.
            self.run_due_fills(step_ms - 1);
            for path in self.paths.values_mut() {
                path.step(step_ms);
            }
            self.run_due_fills(step_ms);
            self.run_resting(step_ms);
            self.next_step_ms = step_ms.saturating_add(self.step_ms);
        }
        self.run_due_fills(now_ms);
        self.now_ms = now_ms;
    }

    /// Number of steps to run up to `now_ms`; moves `next_step_ms` past skipped steps.
    fn steps_due(&mut self, now_ms: Millis) -> i64 {
        if self.next_step_ms > now_ms {
            return 0;
        }
        let gap_ms = i128::from(now_ms) - i128::from(self.next_step_ms);
        let steps = gap_ms / i128::from(self.step_ms) + 1;
        let steps_max = i128::from(STEPS_PER_ADVANCE_MAX);
        if steps > steps_max {
            let skipped_ms = (steps - steps_max) * i128::from(self.step_ms);
            let next_step_ms = i128::from(self.next_step_ms) + skipped_ms;
            self.next_step_ms = Millis::try_from(next_step_ms).unwrap_or(Millis::MAX);
            return STEPS_PER_ADVANCE_MAX;
        }
        i64::try_from(steps).expect("at most STEPS_PER_ADVANCE_MAX")
    }

    /// Fills MARKET orders (and remainders) whose fill time is at or before `up_to_ms`.
    fn run_due_fills(&mut self, up_to_ms: Millis) {
        let due: Vec<(usize, Millis)> = self
            .open
            .iter()
            .filter_map(|index| {
                let due_ms = self.orders[*index].fill_due_ms?;
                (due_ms <= up_to_ms).then_some((*index, due_ms))
            })
            .collect();
        for (index, due_ms) in due {
            if self.open.contains(&index) {
                self.fill_market(index, due_ms);
            }
        }
    }

    /// Matches armed LIMIT and trigger orders, in creation order, against the current prices.
    fn run_resting(&mut self, time_ms: Millis) {
        let open: Vec<usize> = self.open.iter().copied().collect();
        for index in open {
            // An earlier order of this pass may have cancelled this one, or armed it.
            if !self.open.contains(&index) || !self.orders[index].armed {
                continue;
            }
            match self.orders[index].report.order_type {
                OrderType::Limit => self.match_limit(index, time_ms),
                OrderType::StopLoss | OrderType::TakeProfit => self.match_trigger(index, time_ms),
                OrderType::Market => {}
            }
        }
    }

    fn fill_market(&mut self, index: usize, time_ms: Millis) {
        let symbol = self.orders[index].report.symbol.clone();
        if self.behavior(&symbol).never_fill {
            return;
        }
        let price = self.price_of(&symbol);
        let Some(quantity) = self.resolve_quantity(index, price, time_ms) else {
            return;
        };
        let remaining = quantity - self.orders[index].report.cumulative_quantity;
        let fill_quantity = self.entry_fill_quantity(index, remaining);
        self.fill_entry(index, fill_quantity, price, time_ms);
    }

    fn match_limit(&mut self, index: usize, time_ms: Millis) {
        let report = &self.orders[index].report;
        let limit_price = report.price.expect("a LIMIT order has a price");
        let market_price = self.price_of(&report.symbol);
        let crossed = match report.side {
            Side::Buy => market_price <= limit_price,
            Side::Sell => market_price >= limit_price,
        };
        if !crossed {
            return;
        }
        let remaining = report.quantity - report.cumulative_quantity;
        if self.orders[index].role == Role::OcoLeg {
            self.fill_entry(index, remaining, limit_price, time_ms);
            return;
        }
        if self.behavior(&report.symbol).never_fill {
            return;
        }
        let fill_quantity = self.entry_fill_quantity(index, remaining);
        self.fill_entry(index, fill_quantity, limit_price, time_ms);
    }

    /// A crossed trigger fills completely at the current price, unless the free balance (plus
    /// what its siblings reserve, which it would release) is short: then it is REJECTED (306).
    fn match_trigger(&mut self, index: usize, time_ms: Millis) {
        let report = &self.orders[index].report;
        assert_eq!(report.status, VenueStatus::Pending);
        let trigger_price = report
            .trigger_price
            .expect("a trigger order has a trigger price");
        let market_price = self.price_of(&report.symbol);
        let fires_below = matches!(
            (report.side, report.order_type),
            (Side::Sell, OrderType::StopLoss) | (Side::Buy, OrderType::TakeProfit)
        );
        let crossed = if fires_below {
            market_price <= trigger_price
        } else {
            market_price >= trigger_price
        };
        if !crossed {
            return;
        }
        let quantity = report.quantity;
        let siblings = self.open_siblings(index);
        let asset = &self.orders[index].reserve_asset;
        let sibling_reserved: Decimal = siblings
            .iter()
            .filter(|sibling| self.orders[**sibling].reserve_asset == *asset)
            .map(|sibling| self.orders[*sibling].reserved)
            .sum();
        if !self.can_afford(index, quantity, market_price, sibling_reserved) {
            let reason = Some(CODE_INSUFFICIENT_BALANCE);
            self.finish(index, VenueStatus::Rejected, reason, time_ms);
            return;
        }
        for sibling in siblings {
            self.finish(sibling, VenueStatus::Canceled, None, time_ms);
        }
        self.apply_fill(index, quantity, market_price, time_ms);
    }

    /// The quantity of an order; for a MARKET BUY by notional it is fixed at the first fill as
    /// notional / price rounded down to the quantity tick. `None` when it was rejected (415).
    fn resolve_quantity(
        &mut self,
        index: usize,
        price: Decimal,
        time_ms: Millis,
    ) -> Option<Decimal> {
        let order = &self.orders[index];
        let Some(notional) = order.notional else {
            return Some(order.report.quantity);
        };
        if !order.report.quantity.is_zero() {
            return Some(order.report.quantity);
        }
        let instrument = &self.instruments[&order.report.symbol];
        let tick = instrument.quantity_tick;
        let ticks = notional
            .checked_div(price)
            .and_then(|quantity| quantity.checked_div(tick))
            .map(|ticks| ticks.round_dp_with_strategy(0, RoundingStrategy::ToZero));
        let mut quantity = ticks.map_or(Decimal::ZERO, |ticks| ticks * tick);
        // A quantity beyond what any order may hold is rejected like one too small.
        if quantity > Decimal::from(validate::QUANTITY_MAX) {
            quantity = Decimal::ZERO;
        }
        // The divisions round internally at 28 digits; never spend more than the notional.
        if quantity * price > notional {
            quantity -= tick;
        }
        if quantity <= Decimal::ZERO || quantity < instrument.min_quantity {
            self.finish(
                index,
                VenueStatus::Rejected,
                Some(CODE_BELOW_MINIMUM),
                time_ms,
            );
            return None;
        }
        self.orders[index].report.quantity = quantity;
        Some(quantity)
    }

    /// With a partial-fill behaviour, an entry's first fill covers only the fraction (rounded
    /// down to the quantity tick); otherwise, and afterwards, all of `remaining`.
    fn entry_fill_quantity(&self, index: usize, remaining: Decimal) -> Decimal {
        let report = &self.orders[index].report;
        let fraction = self.behavior(&report.symbol).partial_fill_fraction;
        let Some(fraction) = fraction else {
            return remaining;
        };
        if !report.cumulative_quantity.is_zero() || self.orders[index].role == Role::OcoLeg {
            return remaining;
        }
        let tick = self.instruments[&report.symbol].quantity_tick;
        let ticks =
            (remaining * fraction / tick).round_dp_with_strategy(0, RoundingStrategy::ToZero);
        let partial = ticks * tick;
        if partial <= Decimal::ZERO || partial >= remaining {
            remaining
        } else {
            partial
        }
    }

    /// Fills `quantity` of a MARKET or LIMIT order, or rejects it (306) when even its own
    /// reservation plus the free balance cannot pay. A partial fill then expires or waits.
    fn fill_entry(&mut self, index: usize, quantity: Decimal, price: Decimal, time_ms: Millis) {
        if !self.can_afford(index, quantity, price, Decimal::ZERO) {
            let reason = Some(CODE_INSUFFICIENT_BALANCE);
            self.finish(index, VenueStatus::Rejected, reason, time_ms);
            return;
        }
        self.apply_fill(index, quantity, price, time_ms);
        if !self.open.contains(&index) {
            return;
        }
        let symbol = self.orders[index].report.symbol.clone();
        if self.behavior(&symbol).expire_after_partial {
            self.finish(index, VenueStatus::Expired, None, time_ms);
            return;
        }
        if self.orders[index].report.order_type == OrderType::Market {
            let delay_ms = self.fill_delay_for(&symbol);
            self.orders[index].fill_due_ms = Some(time_ms.saturating_add(delay_ms));
        }
    }

    fn can_afford(&self, index: usize, quantity: Decimal, price: Decimal, extra: Decimal) -> bool {
        let order = &self.orders[index];
        let spend = match order.report.side {
            Side::Buy => quantity * price,
            Side::Sell => quantity,
        };
        self.free_balance(&order.reserve_asset) + order.reserved + extra >= spend
    }
}

// ----- bookkeeping -----

impl Engine {
    /// Books one fill: balances, fee, cumulative figures and status; FILLED when complete. Then
    /// the list rules: a filled OTOCO entry arms its legs, a leg's fill cancels its siblings.
    fn apply_fill(&mut self, index: usize, quantity: Decimal, price: Decimal, time_ms: Millis) {
        assert!(quantity > Decimal::ZERO);
        let instrument = self.instruments[&self.orders[index].report.symbol].clone();
        let value = quantity * price;
        let side = self.orders[index].report.side;
        let (spend_asset, spend, receive_asset, receive, fee) = match side {
            Side::Buy => {
                let fee = quantity * self.taker_fee_rate;
                (
                    instrument.quote,
                    value,
                    instrument.base,
                    quantity - fee,
                    fee,
                )
            }
            Side::Sell => {
                let fee = value * self.taker_fee_rate;
                (
                    instrument.base,
                    quantity,
                    instrument.quote,
                    value - fee,
                    fee,
                )
            }
        };
        let from_reservation = spend.min(self.orders[index].reserved);
        self.release(index, from_reservation);
        let balance = self.balances.entry(spend_asset.clone()).or_default();
        assert!(*balance >= spend, "fill would make {spend_asset} negative");
        *balance -= spend;
        *self.balances.entry(receive_asset).or_default() += receive;
        assert!(self.free_balance(&spend_asset) >= Decimal::ZERO);
        self.record_fill(index, quantity, value, fee, time_ms);
        let report = &self.orders[index].report;
        if report.cumulative_quantity == report.quantity {
            self.finish(index, VenueStatus::Filled, None, time_ms);
        }
        self.after_fill(index, time_ms);
    }

    fn record_fill(
        &mut self,
        index: usize,
        quantity: Decimal,
        value: Decimal,
        fee: Decimal,
        time_ms: Millis,
    ) {
        let order = &mut self.orders[index];
        order.cumulative_value += value;
        let report = &mut order.report;
        report.cumulative_quantity += quantity;
        assert!(report.cumulative_quantity <= report.quantity);
        report.avg_price = (order.cumulative_value / report.cumulative_quantity)
            .round_dp_with_strategy(
                AVERAGE_PRICE_DECIMALS,
                RoundingStrategy::MidpointNearestEven,
            );
        report.cumulative_fee += fee;
        report.status = VenueStatus::Active;
        report.update_time_ms = time_ms;
        order.fill_due_ms = None;
    }

    fn after_fill(&mut self, index: usize, time_ms: Millis) {
        match self.orders[index].role {
            Role::OcoLeg | Role::OtocoLeg => {
                for sibling in self.open_siblings(index) {
                    self.finish(sibling, VenueStatus::Canceled, None, time_ms);
                }
            }
            Role::OtocoEntry if self.orders[index].report.status == VenueStatus::Filled => {
                let list_id = self.orders[index].report.list_id.clone();
                let list_id = list_id.expect("an OTOCO entry has a list");
                for member in self.lists[&list_id].clone() {
                    if self.orders[member].role == Role::OtocoLeg {
                        self.orders[member].armed = true;
                    }
                }
            }
            Role::OtocoEntry | Role::Single => {}
        }
    }

    /// Open legs of the same list other than `index` (never an OTOCO entry).
    fn open_siblings(&self, index: usize) -> Vec<usize> {
        let Some(list_id) = &self.orders[index].report.list_id else {
            return Vec::new();
        };
        self.lists[list_id]
            .iter()
            .copied()
            .filter(|member| *member != index && self.open.contains(member))
            .filter(|member| matches!(self.orders[*member].role, Role::OcoLeg | Role::OtocoLeg))
            .collect()
    }

    /// Ends an open order with a terminal status and releases what it still reserves.
    fn finish(&mut self, index: usize, status: VenueStatus, reason: Option<i64>, time_ms: Millis) {
        assert!(status.is_terminal());
        assert!(
            self.open.remove(&index),
            "finishing an order that is not open"
        );
        let reserved = self.orders[index].reserved;
        self.release(index, reserved);
        let order = &mut self.orders[index];
        order.fill_due_ms = None;
        order.report.status = status;
        order.report.reason = reason;
        order.report.update_time_ms = time_ms;
    }

    fn reserve(&mut self, index: usize, amount: Decimal) {
        assert!(amount >= Decimal::ZERO);
        let order = &mut self.orders[index];
        assert!(order.reserved.is_zero());
        order.reserved = amount;
        let asset = order.reserve_asset.clone();
        *self.reserved.entry(asset.clone()).or_default() += amount;
        assert!(
            self.free_balance(&asset) >= Decimal::ZERO,
            "over-reserved {asset}"
        );
    }

    fn release(&mut self, index: usize, amount: Decimal) {
        let order = &mut self.orders[index];
        assert!(amount >= Decimal::ZERO && amount <= order.reserved);
        if amount.is_zero() {
            return;
        }
        order.reserved -= amount;
        let total = self
            .reserved
            .get_mut(&order.reserve_asset)
            .expect("a reservation has an asset entry");
        *total -= amount;
        assert!(*total >= Decimal::ZERO);
    }

    /// Checks the bookkeeping invariants (for tests and the simulator).
    pub fn check_invariants(&self) {
        let mut reserved: BTreeMap<&str, Decimal> = BTreeMap::new();
        for (index, order) in self.orders.iter().enumerate() {
            let open = self.open.contains(&index);
            assert_eq!(open, !order.report.status.is_terminal());
            assert!(open || order.reserved.is_zero());
            assert!(order.report.cumulative_quantity <= order.report.quantity);
            *reserved.entry(&order.reserve_asset).or_default() += order.reserved;
        }
        for (asset, total) in &self.balances {
            assert!(*total >= Decimal::ZERO, "{asset} negative");
            assert!(
                self.free_balance(asset) >= Decimal::ZERO,
                "{asset} over-reserved"
            );
        }
        for (asset, amount) in reserved {
            let booked = self.reserved.get(asset).copied().unwrap_or_default();
            assert_eq!(booked, amount, "reservations of {asset} disagree");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::PaperInstrument;

    fn decimal(text: &str) -> Decimal {
        Decimal::from_str_exact(text).expect("test decimal")
    }

    /// BTC_USD at 100 with a flat price path (volatility 0): prices move only by `set_price`.
    fn config() -> PaperConfig {
        PaperConfig {
            seed: 1,
            speed: 1,
            balances: [
                ("USD".to_string(), decimal("10000")),
                ("BTC".to_string(), decimal("0")),
            ]
            .into_iter()
            .collect(),
            instruments: vec![PaperInstrument {
                symbol: "BTC_USD".to_string(),
                base: "BTC".to_string(),
                quote: "USD".to_string(),
                price_tick: decimal("0.01"),
                quantity_tick: decimal("0.0001"),
                min_quantity: decimal("0.001"),
                min_notional: decimal("1"),
                start_price: decimal("100"),
            }],
            fill_delay: Duration::from_millis(500),
            taker_fee_rate: decimal("0.001"),
            step: Duration::from_secs(1),
            volatility: Decimal::ZERO,
            candles_csv: None,
        }
    }

    fn engine() -> Engine {
        Engine::new(&config(), 0).expect("engine")
    }

    fn order(
        client_oid: &str,
        side: Side,
        order_type: OrderType,
        quantity: &str,
        price: Option<&str>,
    ) -> OrderRequest {
        let (limit_price, trigger_price) = match order_type {
            OrderType::Limit => (price.map(decimal), None),
            OrderType::StopLoss | OrderType::TakeProfit => (None, price.map(decimal)),
            OrderType::Market => (None, None),
        };
        OrderRequest {
            client_oid: client_oid.to_string(),
            symbol: "BTC_USD".to_string(),
            side,
            order_type,
            quantity: Some(decimal(quantity)),
            notional: None,
            price: limit_price,
            trigger_price,
        }
    }

    fn market(client_oid: &str, side: Side, quantity: &str) -> OrderRequest {
        order(client_oid, side, OrderType::Market, quantity, None)
    }

    fn stop_loss(client_oid: &str, quantity: &str, trigger: &str) -> OrderRequest {
        order(
            client_oid,
            Side::Sell,
            OrderType::StopLoss,
            quantity,
            Some(trigger),
        )
    }

    fn take_profit(client_oid: &str, quantity: &str, trigger: &str) -> OrderRequest {
        order(
            client_oid,
            Side::Sell,
            OrderType::TakeProfit,
            quantity,
            Some(trigger),
        )
    }

    fn report(engine: &Engine, client_oid: &str) -> OrderReport {
        engine.order_by_client_oid(client_oid).expect("known order")
    }

    fn status(engine: &Engine, client_oid: &str) -> VenueStatus {
        report(engine, client_oid).status
    }

    fn reject_code<T: std::fmt::Debug>(result: Result<T, EngineReject>) -> i64 {
        result.expect_err("expected a rejection").code
    }

    /// An engine holding 10000 USD and 1 BTC, at time 1_000.
    fn engine_with_coins() -> Engine {
        let mut engine = engine();
        let mut config = config();
        config.balances.insert("BTC".to_string(), decimal("1"));
        engine.balances = config.balances;
        engine.advance_to(1_000);
        engine
    }

    #[test]
    fn market_buy_fills_after_delay_with_base_fee() {
        let mut engine = engine();
        let ack = engine
            .create_order(0, &market("buy-1", Side::Buy, "1"))
            .expect("accepted");
        assert_eq!(ack.order_id, ORDER_ID_FIRST.to_string());
        let created = report(&engine, "buy-1");
        assert_eq!(created.status, VenueStatus::New);
        assert_eq!(created.cumulative_quantity, Decimal::ZERO);
        assert_eq!(engine.free_balance("USD"), decimal("9899.9"));
        engine.advance_to(499);
        assert_eq!(status(&engine, "buy-1"), VenueStatus::New);
        engine.advance_to(500);
        let filled = report(&engine, "buy-1");
        assert_eq!(filled.status, VenueStatus::Filled);
        assert_eq!(filled.cumulative_quantity, decimal("1"));
        assert_eq!(filled.avg_price, decimal("100"));
        assert_eq!(filled.cumulative_fee, decimal("0.001"));
        assert_eq!(filled.fee_currency, "BTC");
        assert_eq!(filled.update_time_ms, 500);
        assert_eq!(engine.balances()["BTC"], decimal("0.999"));
        assert_eq!(engine.free_balance("USD"), decimal("9900"));
        engine.check_invariants();
    }

    #[test]
    fn market_sell_pays_fee_in_quote() {
        let mut engine = engine_with_coins();
        engine
            .create_order(1_000, &market("sell-1", Side::Sell, "1"))
            .expect("accepted");
        assert_eq!(engine.free_balance("BTC"), Decimal::ZERO);
        engine.advance_to(1_500);
        let filled = report(&engine, "sell-1");
        assert_eq!(filled.status, VenueStatus::Filled);
        assert_eq!(filled.cumulative_fee, decimal("0.1"));
        assert_eq!(filled.fee_currency, "USD");
        assert_eq!(engine.balances()["USD"], decimal("10099.9"));
        assert_eq!(engine.balances()["BTC"], Decimal::ZERO);
        engine.check_invariants();
    }

    #[test]
    fn market_buy_by_notional_floors_quantity_at_fill_price() {
        let mut engine = engine();
        let mut request = market("notional-1", Side::Buy, "1");
        request.quantity = None;
        request.notional = Some(decimal("250"));
        engine.create_order(0, &request).expect("accepted");
        assert_eq!(report(&engine, "notional-1").quantity, Decimal::ZERO);
        engine
            .set_price("BTC_USD", decimal("30"), 100)
            .expect("price");
        engine.advance_to(500);
        let filled = report(&engine, "notional-1");
        assert_eq!(filled.status, VenueStatus::Filled);
        assert_eq!(filled.quantity, decimal("8.3333"));
        assert_eq!(
            engine.balances()["USD"],
            decimal("10000") - decimal("249.999")
        );
        engine.check_invariants();
    }

    #[test]
    fn limit_buy_rests_then_fills_at_limit_price() {
        let mut engine = engine();
        let request = order("limit-1", Side::Buy, OrderType::Limit, "2", Some("90"));
        engine.create_order(0, &request).expect("accepted");
        assert_eq!(status(&engine, "limit-1"), VenueStatus::Active);
        engine
            .set_price("BTC_USD", decimal("90.01"), 1_000)
            .expect("price");
        assert_eq!(status(&engine, "limit-1"), VenueStatus::Active);
        engine
            .set_price("BTC_USD", decimal("89.5"), 2_000)
            .expect("price");
        let filled = report(&engine, "limit-1");
        assert_eq!(filled.status, VenueStatus::Filled);
        assert_eq!(filled.avg_price, decimal("90"));
        assert_eq!(engine.balances()["USD"], decimal("9820"));
        assert_eq!(engine.free_balance("USD"), decimal("9820"));
        engine.check_invariants();
    }

    #[test]
    fn stop_loss_sell_triggers_when_price_falls() {
        let mut engine = engine_with_coins();
        engine
            .create_order(1_000, &stop_loss("sl-1", "1", "95"))
            .expect("accepted");
        assert_eq!(status(&engine, "sl-1"), VenueStatus::Pending);
        assert_eq!(
            engine.free_balance("BTC"),
            decimal("1"),
            "trigger orders reserve nothing"
        );
        engine
            .set_price("BTC_USD", decimal("95.01"), 2_000)
            .expect("price");
        assert_eq!(status(&engine, "sl-1"), VenueStatus::Pending);
        engine
            .set_price("BTC_USD", decimal("94.5"), 3_000)
            .expect("price");
        let filled = report(&engine, "sl-1");
        assert_eq!(filled.status, VenueStatus::Filled);
        assert_eq!(filled.avg_price, decimal("94.5"));
        assert_eq!(filled.update_time_ms, 3_000);
        engine.check_invariants();
    }

    #[test]
    fn take_profit_sell_triggers_when_price_rises() {
        let mut engine = engine_with_coins();
        engine
            .create_order(1_000, &take_profit("tp-1", "1", "110"))
            .expect("accepted");
        engine
            .set_price("BTC_USD", decimal("109.99"), 2_000)
            .expect("price");
        assert_eq!(status(&engine, "tp-1"), VenueStatus::Pending);
        engine
            .set_price("BTC_USD", decimal("110"), 3_000)
            .expect("price");
        assert_eq!(status(&engine, "tp-1"), VenueStatus::Filled);
    }

    #[test]
    fn oco_leg_fill_cancels_sibling() {
        let mut engine = engine_with_coins();
        let ack = engine
            .create_oco(
                1_000,
                &stop_loss("sl", "1", "95"),
                &take_profit("tp", "1", "110"),
            )
            .expect("accepted");
        assert_eq!(ack.list_id, LIST_ID_FIRST.to_string());
        assert_eq!(report(&engine, "sl").list_id, Some(ack.list_id.clone()));
        assert_eq!(report(&engine, "tp").list_id, Some(ack.list_id.clone()));
        engine
            .set_price("BTC_USD", decimal("111"), 2_000)
            .expect("price");
        assert_eq!(status(&engine, "tp"), VenueStatus::Filled);
        assert_eq!(status(&engine, "sl"), VenueStatus::Canceled);
        engine
            .set_price("BTC_USD", decimal("90"), 3_000)
            .expect("price");
        assert_eq!(status(&engine, "sl"), VenueStatus::Canceled);
        engine.check_invariants();
    }

    #[test]
    fn oco_stop_fires_using_the_limit_legs_reservation() {
        let mut engine = engine_with_coins();
        let limit = order("tp", Side::Sell, OrderType::Limit, "1", Some("110"));
        engine
            .create_oco(1_000, &stop_loss("sl", "1", "95"), &limit)
            .expect("accepted");
        assert_eq!(status(&engine, "tp"), VenueStatus::Active);
        assert_eq!(engine.free_balance("BTC"), Decimal::ZERO);
        engine
            .set_price("BTC_USD", decimal("94"), 2_000)
            .expect("price");
        assert_eq!(status(&engine, "sl"), VenueStatus::Filled);
        assert_eq!(status(&engine, "tp"), VenueStatus::Canceled);
        assert_eq!(engine.balances()["BTC"], Decimal::ZERO);
        engine.check_invariants();
    }

    #[test]
    fn oco_checks_balance_once_for_the_larger_leg() {
        let mut engine = engine_with_coins();
        let too_much = engine.create_oco(
            1_000,
            &stop_loss("sl", "1", "95"),
            &take_profit("tp", "1.1", "110"),
        );
        assert_eq!(reject_code(too_much), CODE_INSUFFICIENT_BALANCE);
        assert!(engine.book().is_empty(), "all or nothing");
        engine
            .create_oco(
                1_000,
                &stop_loss("sl", "1", "95"),
                &take_profit("tp", "1", "110"),
            )
            .expect("both legs sell the same coin once");
    }

    #[test]
    fn oco_rejects_wrong_leg_types_and_sides() {
        let mut engine = engine_with_coins();
        let swapped = engine.create_oco(
            1_000,
            &take_profit("a", "1", "110"),
            &stop_loss("b", "1", "95"),
        );
        assert_eq!(reject_code(swapped), CODE_INVALID_ARGUMENT);
        let mut buy_leg = take_profit("c", "1", "90");
        buy_leg.side = Side::Buy;
        let mixed = engine.create_oco(1_000, &stop_loss("d", "1", "95"), &buy_leg);
        assert_eq!(reject_code(mixed), CODE_INVALID_ARGUMENT);
        let bad_second = engine.create_oco(
            1_000,
            &stop_loss("e", "1", "95"),
            &take_profit("f", "1", "99"),
        );
        assert_eq!(reject_code(bad_second), CODE_INVALID_REFERENCE_PRICE);
        assert!(engine.book().is_empty());
    }

    fn create_protected_buy(engine: &mut Engine, now_ms: Millis) -> ListAck {
        engine
            .create_otoco(
                now_ms,
                &market("entry", Side::Buy, "1"),
                &stop_loss("sl", "0.999", "95"),
                &take_profit("tp", "0.999", "110"),
            )
            .expect("accepted")
    }

    #[test]
    fn otoco_legs_wait_for_complete_entry_fill() {
        let mut engine = engine();
        engine.set_behavior(
            "BTC_USD",
            FillBehavior {
                partial_fill_fraction: Some(decimal("0.5")),
                ..FillBehavior::default()
            },
        );
        create_protected_buy(&mut engine, 0);
        assert_eq!(status(&engine, "sl"), VenueStatus::Pending);
        engine.advance_to(500);
        assert_eq!(status(&engine, "entry"), VenueStatus::Active);
        assert_eq!(report(&engine, "entry").cumulative_quantity, decimal("0.5"));
        engine
            .set_price("BTC_USD", decimal("94"), 600)
            .expect("price");
        assert_eq!(
            status(&engine, "sl"),
            VenueStatus::Pending,
            "entry not complete yet"
        );
        engine
            .set_price("BTC_USD", decimal("100"), 700)
            .expect("price");
        engine.advance_to(1_000);
        assert_eq!(status(&engine, "entry"), VenueStatus::Filled);
        assert_eq!(status(&engine, "sl"), VenueStatus::Pending);
        engine
            .set_price("BTC_USD", decimal("94"), 1_100)
            .expect("price");
        assert_eq!(status(&engine, "sl"), VenueStatus::Filled);
        assert_eq!(status(&engine, "tp"), VenueStatus::Canceled);
        engine.check_invariants();
    }

    #[test]
    fn otoco_partial_entry_then_expired_legs_never_activate() {
        let mut engine = engine();
        engine.set_behavior(
            "BTC_USD",
            FillBehavior {
                partial_fill_fraction: Some(decimal("0.3")),
                expire_after_partial: true,
                ..FillBehavior::default()
            },
        );
        let ack = create_protected_buy(&mut engine, 0);
        engine.advance_to(500);
        let entry = report(&engine, "entry");
        assert_eq!(entry.status, VenueStatus::Expired);
        assert_eq!(entry.cumulative_quantity, decimal("0.3"));
        engine
            .set_price("BTC_USD", decimal("90"), 1_000)
            .expect("price");
        engine
            .set_price("BTC_USD", decimal("120"), 2_000)
            .expect("price");
        assert_eq!(status(&engine, "sl"), VenueStatus::Pending);
        assert_eq!(status(&engine, "tp"), VenueStatus::Pending);
        assert_eq!(engine.open_orders().len(), 2);
        engine
            .cancel_list(3_000, &ack.list_id)
            .expect("cancel list");
        assert_eq!(status(&engine, "sl"), VenueStatus::Canceled);
        assert_eq!(status(&engine, "tp"), VenueStatus::Canceled);
        assert_eq!(
            reject_code(engine.cancel_list(3_000, &ack.list_id)),
            CODE_NO_ACTIVE_ORDER
        );
        engine.check_invariants();
    }

    #[test]
    fn otoco_cancelling_entry_cancels_only_it() {
        let mut engine = engine();
        engine.set_behavior(
            "BTC_USD",
            FillBehavior {
                never_fill: true,
                ..FillBehavior::default()
            },
        );
        create_protected_buy(&mut engine, 0);
        engine.advance_to(10_000);
        assert_eq!(status(&engine, "entry"), VenueStatus::New);
        let entry_id = report(&engine, "entry").order_id;
        engine.cancel_order(10_000, &entry_id).expect("cancel");
        assert_eq!(status(&engine, "entry"), VenueStatus::Canceled);
        assert_eq!(status(&engine, "sl"), VenueStatus::Pending);
        assert_eq!(engine.free_balance("USD"), decimal("10000"));
        engine.check_invariants();
    }

    #[test]
    fn otoco_legs_are_judged_against_the_limit_entry_price() {
        let mut engine = engine();
        let entry = order("entry", Side::Buy, OrderType::Limit, "1", Some("80"));
        let rejected = engine.create_otoco(
            0,
            &entry,
            &stop_loss("sl", "1", "85"),
            &take_profit("tp", "1", "90"),
        );
        assert_eq!(reject_code(rejected), CODE_INVALID_REFERENCE_PRICE);
        engine
            .create_otoco(
                0,
                &entry,
                &stop_loss("sl", "1", "75"),
                &take_profit("tp", "1", "90"),
            )
            .expect("legs on the right side of the entry price");
    }

    #[test]
    fn duplicate_client_oid_rejected_204() {
        let mut engine = engine();
        engine
            .create_order(0, &market("same", Side::Buy, "1"))
            .expect("accepted");
        engine.advance_to(1_000);
        assert_eq!(status(&engine, "same"), VenueStatus::Filled);
        let again = engine.create_order(1_000, &market("same", Side::Buy, "1"));
        assert_eq!(reject_code(again), CODE_DUPLICATE_CLIENT_OID);
        let within_list = engine.create_oco(
            1_000,
            &stop_loss("x", "0.5", "95"),
            &take_profit("x", "0.5", "110"),
        );
        assert_eq!(reject_code(within_list), CODE_DUPLICATE_CLIENT_OID);
        let too_long = market(&"y".repeat(37), Side::Buy, "1");
        assert_eq!(
            reject_code(engine.create_order(1_000, &too_long)),
            CODE_INVALID_ARGUMENT
        );
        assert_eq!(engine.book().len(), 1);
    }

    #[test]
    fn off_tick_quantity_rejected_213() {
        let mut engine = engine();
        let off_tick = engine.create_order(0, &market("a", Side::Buy, "0.00015"));
        assert_eq!(reject_code(off_tick), CODE_INVALID_QUANTITY);
        let negative = engine.create_order(0, &market("b", Side::Buy, "-1"));
        assert_eq!(reject_code(negative), CODE_INVALID_QUANTITY);
        let huge = engine.create_order(0, &market("c", Side::Buy, "79228162514264337593543950335"));
        assert_eq!(reject_code(huge), CODE_INVALID_QUANTITY);
    }

    #[test]
    fn off_tick_price_rejected_308() {
        let mut engine = engine_with_coins();
        let limit = order("a", Side::Buy, OrderType::Limit, "1", Some("90.005"));
        assert_eq!(
            reject_code(engine.create_order(1_000, &limit)),
            CODE_INVALID_PRICE
        );
        let trigger = stop_loss("b", "1", "95.001");
        assert_eq!(
            reject_code(engine.create_order(1_000, &trigger)),
            CODE_INVALID_PRICE
        );
        let zero = order("c", Side::Buy, OrderType::Limit, "1", Some("0"));
        assert_eq!(
            reject_code(engine.create_order(1_000, &zero)),
            CODE_INVALID_PRICE
        );
    }

    #[test]
    fn below_minimum_rejected_415() {
        let mut engine = engine();
        let small_quantity = engine.create_order(0, &market("a", Side::Buy, "0.0009"));
        assert_eq!(reject_code(small_quantity), CODE_BELOW_MINIMUM);
        let small_notional = order("b", Side::Buy, OrderType::Limit, "0.009", Some("100"));
        assert_eq!(
            reject_code(engine.create_order(0, &small_notional)),
            CODE_BELOW_MINIMUM
        );
        let mut small_spend = market("c", Side::Buy, "1");
        small_spend.quantity = None;
        small_spend.notional = Some(decimal("0.99"));
        assert_eq!(
            reject_code(engine.create_order(0, &small_spend)),
            CODE_BELOW_MINIMUM
        );
        let enough = order("d", Side::Buy, OrderType::Limit, "0.01", Some("100"));
        engine
            .create_order(0, &enough)
            .expect("notional 1 at the limit price");
    }

    #[test]
    fn missing_or_extra_fields_rejected_40004() {
        let mut engine = engine();
        let mut no_quantity = market("a", Side::Buy, "1");
        no_quantity.quantity = None;
        assert_eq!(
            reject_code(engine.create_order(0, &no_quantity)),
            CODE_INVALID_ARGUMENT
        );
        let mut sell_by_notional = market("b", Side::Sell, "1");
        sell_by_notional.quantity = None;
        sell_by_notional.notional = Some(decimal("10"));
        assert_eq!(
            reject_code(engine.create_order(0, &sell_by_notional)),
            CODE_INVALID_ARGUMENT
        );
        let limit_without_price = order("c", Side::Buy, OrderType::Limit, "1", None);
        assert_eq!(
            reject_code(engine.create_order(0, &limit_without_price)),
            CODE_INVALID_ARGUMENT
        );
        let mut unknown = market("d", Side::Buy, "1");
        unknown.symbol = "DOGE_USD".to_string();
        assert_eq!(
            reject_code(engine.create_order(0, &unknown)),
            CODE_INVALID_INSTRUMENT
        );
    }

    #[test]
    fn insufficient_balance_rejected_306() {
        let mut engine = engine();
        let too_big = engine.create_order(0, &market("a", Side::Buy, "100"));
        assert_eq!(
            reject_code(too_big),
            CODE_INSUFFICIENT_BALANCE,
            "10010 USD with the fee buffer"
        );
        let sell = engine.create_order(0, &market("b", Side::Sell, "1"));
        assert_eq!(reject_code(sell), CODE_INSUFFICIENT_BALANCE);
        engine
            .create_order(0, &market("c", Side::Buy, "60"))
            .expect("accepted");
        let second = engine.create_order(0, &market("d", Side::Buy, "40"));
        assert_eq!(
            reject_code(second),
            CODE_INSUFFICIENT_BALANCE,
            "the first one reserved"
        );
        engine.check_invariants();
    }

    #[test]
    fn trigger_on_wrong_side_rejected_229() {
        let mut engine = engine_with_coins();
        let stop_above = engine.create_order(1_000, &stop_loss("a", "1", "101"));
        assert_eq!(reject_code(stop_above), CODE_INVALID_REFERENCE_PRICE);
        let stop_at = engine.create_order(1_000, &stop_loss("b", "1", "100"));
        assert_eq!(reject_code(stop_at), CODE_INVALID_REFERENCE_PRICE);
        let profit_below = engine.create_order(1_000, &take_profit("c", "1", "99"));
        assert_eq!(reject_code(profit_below), CODE_INVALID_REFERENCE_PRICE);
        let mut buy_stop = stop_loss("d", "1", "99");
        buy_stop.side = Side::Buy;
        assert_eq!(
            reject_code(engine.create_order(1_000, &buy_stop)),
            CODE_INVALID_REFERENCE_PRICE
        );
        buy_stop.trigger_price = Some(decimal("101"));
        engine
            .create_order(1_000, &buy_stop)
            .expect("BUY STOP_LOSS above the market");
    }

    #[test]
    fn stop_without_funds_at_trigger_is_rejected() {
        let mut engine = engine();
        engine
            .create_order(0, &stop_loss("sl", "1", "95"))
            .expect("trigger orders are not checked against the balance");
        engine
            .set_price("BTC_USD", decimal("94"), 1_000)
            .expect("price");
        let rejected = report(&engine, "sl");
        assert_eq!(rejected.status, VenueStatus::Rejected);
        assert_eq!(rejected.reason, Some(CODE_INSUFFICIENT_BALANCE));
        assert_eq!(rejected.cumulative_quantity, Decimal::ZERO);
        assert_eq!(engine.balances()["BTC"], Decimal::ZERO);
        engine.check_invariants();
    }

    #[test]
    fn market_buy_rejected_at_fill_when_price_outruns_funds() {
        let mut engine = engine();
        engine.balances.insert("USD".to_string(), decimal("150"));
        engine
            .create_order(0, &market("buy", Side::Buy, "1"))
            .expect("accepted");
        engine
            .set_price("BTC_USD", decimal("200"), 100)
            .expect("price");
        engine.advance_to(500);
        let rejected = report(&engine, "buy");
        assert_eq!(rejected.status, VenueStatus::Rejected);
        assert_eq!(rejected.reason, Some(CODE_INSUFFICIENT_BALANCE));
        assert_eq!(engine.free_balance("USD"), decimal("150"));
        engine.check_invariants();
    }

    #[test]
    fn partial_fill_then_expired() {
        let mut engine = engine();
        engine.set_behavior(
            "BTC_USD",
            FillBehavior {
                partial_fill_fraction: Some(decimal("0.4")),
                expire_after_partial: true,
                ..FillBehavior::default()
            },
        );
        engine
            .create_order(0, &market("buy", Side::Buy, "1"))
            .expect("accepted");
        engine.advance_to(500);
        let expired = report(&engine, "buy");
        assert_eq!(expired.status, VenueStatus::Expired);
        assert_eq!(expired.cumulative_quantity, decimal("0.4"));
        assert_eq!(expired.cumulative_fee, decimal("0.0004"));
        assert_eq!(
            engine.free_balance("USD"),
            decimal("9960"),
            "rest of the reservation released"
        );
        assert_eq!(engine.order_history("BTC_USD").expect("history").len(), 1);
        engine.check_invariants();
    }

    #[test]
    fn partial_fill_then_rest_after_another_delay() {
        let mut engine = engine();
        engine.set_behavior(
            "BTC_USD",
            FillBehavior {
                partial_fill_fraction: Some(decimal("0.4")),
                fill_delay_ms: Some(2_000),
                ..FillBehavior::default()
            },
        );
        engine
            .create_order(0, &market("buy", Side::Buy, "1"))
            .expect("accepted");
        engine.advance_to(1_999);
        assert_eq!(status(&engine, "buy"), VenueStatus::New);
        engine.advance_to(2_000);
        assert_eq!(status(&engine, "buy"), VenueStatus::Active);
        engine.advance_to(4_000);
        let filled = report(&engine, "buy");
        assert_eq!(filled.status, VenueStatus::Filled);
        assert_eq!(filled.cumulative_quantity, decimal("1"));
        engine.check_invariants();
    }

    #[test]
    fn reject_protective_rejects_stops_and_lists() {
        let mut engine = engine_with_coins();
        let reject = EngineReject::new(50001, "internal error");
        engine.set_behavior(
            "BTC_USD",
            FillBehavior {
                reject_protective: Some(reject.clone()),
                ..FillBehavior::default()
            },
        );
        let single = engine.create_order(1_000, &stop_loss("a", "1", "95"));
        assert_eq!(single.expect_err("rejected"), reject);
        let list = engine.create_oco(
            1_000,
            &stop_loss("b", "1", "95"),
            &take_profit("c", "1", "110"),
        );
        assert_eq!(list.expect_err("rejected"), reject);
        engine
            .create_order(1_000, &market("d", Side::Sell, "1"))
            .expect("plain orders are unaffected");
    }

    #[test]
    fn cancel_unknown_is_212_and_closed_is_316() {
        let mut engine = engine();
        assert_eq!(
            reject_code(engine.cancel_order(0, "123")),
            CODE_INVALID_ORDER_ID
        );
        assert_eq!(
            reject_code(engine.cancel_list(0, "123")),
            CODE_INVALID_ORDER_ID
        );
        let ack = engine
            .create_order(0, &market("a", Side::Buy, "1"))
            .expect("accepted");
        engine.advance_to(500);
        assert_eq!(
            reject_code(engine.cancel_order(500, &ack.order_id)),
            CODE_NO_ACTIVE_ORDER
        );
    }

    #[test]
    fn cancel_externally_cancels_only_that_oco_leg() {
        let mut engine = engine_with_coins();
        engine
            .create_oco(
                1_000,
                &stop_loss("sl", "1", "95"),
                &take_profit("tp", "1", "110"),
            )
            .expect("accepted");
        let stop_id = report(&engine, "sl").order_id;
        engine.cancel_externally(&stop_id, 1_500).expect("cancel");
        assert_eq!(status(&engine, "sl"), VenueStatus::Canceled);
        assert_eq!(report(&engine, "sl").update_time_ms, 1_500);
        assert_eq!(status(&engine, "tp"), VenueStatus::Pending);
        engine
            .set_price("BTC_USD", decimal("111"), 2_000)
            .expect("price");
        assert_eq!(status(&engine, "tp"), VenueStatus::Filled);
    }

    #[test]
    fn open_orders_and_history_split_by_status() {
        let mut engine = engine_with_coins();
        engine
            .create_order(1_000, &market("m", Side::Buy, "1"))
            .expect("accepted");
        engine
            .create_order(1_000, &stop_loss("s", "0.5", "90"))
            .expect("accepted");
        let limit = order("l", Side::Buy, OrderType::Limit, "1", Some("50"));
        engine.create_order(1_000, &limit).expect("accepted");
        let open: Vec<String> = engine
            .open_orders()
            .into_iter()
            .map(|report| report.client_oid)
            .collect();
        assert_eq!(open, ["m", "s", "l"]);
        engine.advance_to(2_000);
        let open: Vec<String> = engine
            .open_orders()
            .into_iter()
            .map(|report| report.client_oid)
            .collect();
        assert_eq!(open, ["s", "l"]);
        let history = engine.order_history("BTC_USD").expect("history");
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].client_oid, "m");
        let ids: Vec<String> = engine
            .book()
            .into_iter()
            .map(|report| report.order_id)
            .collect();
        assert_eq!(
            ids,
            [
                "6530219599900000000",
                "6530219599900000001",
                "6530219599900000002"
            ]
        );
    }

    fn walking_engine(seed: u64) -> Engine {
        let mut config = config();
        config.seed = seed;
        config.volatility = decimal("0.01");
        let mut engine = Engine::new(&config, 0).expect("engine");
        engine.advance_to(600_000);
        engine
    }

    #[test]
    fn same_seed_same_price_path() {
        let first = walking_engine(9);
        let second = walking_engine(9);
        let other = walking_engine(10);
        let candles = |engine: &Engine| engine.candles("BTC_USD", 60, 10).expect("candles");
        assert_eq!(candles(&first), candles(&second));
        assert_ne!(candles(&first), candles(&other));
        assert_eq!(candles(&first).len(), 10);
        assert_ne!(
            first.last_price("BTC_USD"),
            Ok(decimal("100")),
            "the walk moved"
        );
    }

    #[test]
    fn candles_aggregate_steps() {
        let mut engine = engine();
        for (time_ms, price) in [
            (10_000, "101"),
            (20_000, "97"),
            (59_000, "99"),
            (61_000, "105"),
        ] {
            engine
                .set_price("BTC_USD", decimal(price), time_ms)
                .expect("price");
        }
        engine.advance_to(125_000);
        let candles = engine.candles("BTC_USD", 60, 5).expect("candles");
        assert_eq!(
            candles.len(),
            2,
            "the candle starting at 120 s is still open"
        );
        let first = &candles[0];
        assert_eq!(first.open_time_ms, 0);
        assert_eq!(
            [first.open, first.high, first.low, first.close],
            [decimal("100"), decimal("101"), decimal("97"), decimal("99")]
        );
        let second = &candles[1];
        assert_eq!(second.open_time_ms, 60_000);
        assert_eq!(
            [second.open, second.high, second.low, second.close],
            [decimal("99"), decimal("105"), decimal("99"), decimal("105")]
        );
        assert_eq!(
            reject_code(engine.candles("BTC_USD", 60, 301)),
            CODE_INVALID_ARGUMENT
        );
        assert_eq!(
            reject_code(engine.candles("X", 60, 1)),
            CODE_INVALID_INSTRUMENT
        );
    }

    #[test]
    fn csv_candles_replayed() {
        let directory = tempfile::tempdir().expect("tempdir");
        let path = directory.path().join("candles.csv");
        let text = "symbol,open_time_ms,open,high,low,close\n\
                    BTC_USD,0,100,104,98,102\n\
                    BTC_USD,60000,102,103,95.5,96\n";
        std::fs::write(&path, text).expect("write csv");
        let mut config = config();
        config.step = Duration::from_secs(15);
        config.candles_csv = Some(path.clone());
        let mut engine = Engine::new(&config, 0).expect("engine");
        engine.advance_to(120_000);
        let candles = engine.candles("BTC_USD", 60, 2).expect("candles");
        let ohlc: Vec<[Decimal; 4]> = candles
            .iter()
            .map(|candle| [candle.open, candle.high, candle.low, candle.close])
            .collect();
        let expected = [["100", "104", "98", "102"], ["102", "103", "95.5", "96"]];
        let expected: Vec<[Decimal; 4]> = expected.iter().map(|row| row.map(decimal)).collect();
        assert_eq!(ohlc, expected);
        std::fs::write(
            &path,
            "symbol,open_time_ms,open,high,low,close\nBTC_USD,0,1,1,1\n",
        )
        .expect("write");
        let error = Engine::new(&config, 0).expect_err("bad row");
        assert!(error.contains("candles.csv:2:"), "{error}");
    }

    #[test]
    fn advance_is_bounded_for_huge_gaps() {
        let mut config = config();
        config.volatility = decimal("0.001");
        let mut engine = Engine::new(&config, 0).expect("engine");
        engine
            .create_order(0, &market("buy", Side::Buy, "1"))
            .expect("accepted");
        engine.advance_to(1_000_000_000_000);
        assert_eq!(engine.now_ms(), 1_000_000_000_000);
        assert_eq!(status(&engine, "buy"), VenueStatus::Filled);
        engine.advance_to(5);
        assert_eq!(engine.now_ms(), 1_000_000_000_000, "time never goes back");
    }
}
