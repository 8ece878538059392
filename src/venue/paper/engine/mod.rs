//! An in-process matching engine with Crypto.com Exchange v1 order semantics, for the paper
//! venue, the HTTP simulator and the deterministic simulation. It owns the price paths, the
//! order book of one account, its balances and its fills. This module holds the `Engine` type,
//! its construction and its queries; `admission` takes orders in (validation, codes, amend,
//! cancel), `matching` moves time and fills, `ledger` books balances, fees and fills, and
//! `hooks` holds what only tests and the simulator may do (force prices, behaviours, cancel as
//! the account owner would in the exchange's UI).
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

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::core::domain::{Candle, Instrument, Millis, OrderReport};

use super::price::{PathSpec, PricePath, load_candles_csv};
use super::settings::PaperSettings;
pub use super::validate::{
    CODE_BELOW_MINIMUM, CODE_DUPLICATE_CLIENT_OID, CODE_INSUFFICIENT_BALANCE,
    CODE_INVALID_ARGUMENT, CODE_INVALID_INSTRUMENT, CODE_INVALID_ORDER_ID, CODE_INVALID_PRICE,
    CODE_INVALID_QUANTITY, CODE_INVALID_REFERENCE_PRICE, CODE_NO_ACTIVE_ORDER,
    CODE_TOO_MANY_ORDERS,
};

mod admission;
mod history;
mod hooks;
mod ledger;
mod matching;
#[cfg(test)]
mod tests;

pub use admission::AmendRequest;
pub use history::HistoryFile;
pub use hooks::TestHooks;
pub use ledger::{Fill, Liquidity};

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

/// The first trade id; the n-th fill of an account gets `TRADE_ID_FIRST + n`.
pub const TRADE_ID_FIRST: u64 = 6_530_219_599_700_000_000;

const _: () = assert!(STEPS_PER_ADVANCE_MAX >= 1);
const _: () = assert!(TRADE_ID_FIRST < LIST_ID_FIRST);
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
    /// Every fill, in the order it happened. Absent from accounts saved before fills were kept.
    #[serde(default)]
    fills: Vec<Fill>,
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

/// How far back candles must reach, from the settings, in milliseconds.
pub(crate) fn lookback_ms(config: &PaperSettings) -> Result<Option<Millis>, String> {
    config
        .lookback
        .map(|lookback| duration_ms(lookback, "lookback"))
        .transpose()
}

fn build_instruments(config: &PaperSettings) -> Result<BTreeMap<String, Instrument>, String> {
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
    config: &PaperSettings,
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
    pub fn new(config: &PaperSettings, start_ms: Millis) -> Result<Engine, String> {
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
        let mut engine = Engine {
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
            fills: Vec::new(),
            next_order_id: ORDER_ID_FIRST,
            next_list_id: LIST_ID_FIRST,
            taker_fee_rate: config.taker_fee_rate,
            fill_delay_ms,
            step_ms,
            now_ms: start_ms,
            next_step_ms: start_ms.saturating_add(step_ms),
        };
        engine.set_lookback(lookback_ms(config)?);
        Ok(engine)
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

    /// Every symbol the engine lists.
    pub fn symbols(&self) -> std::collections::BTreeSet<String> {
        self.instruments.keys().cloned().collect()
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
    /// from the step prices the engine remembers (see `PaperSettings::lookback`).
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

    /// Every fill of the account, oldest first.
    pub fn fills(&self) -> &[Fill] {
        &self.fills
    }

    /// The fee rate of every fill, maker or taker.
    pub fn fee_rate(&self) -> Decimal {
        self.taker_fee_rate
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
