//! The paper venue's own settings: plain values (balances, instruments, fees, timing and the
//! price path), so the venue depends on nothing but `core`. Whoever builds a paper venue
//! converts its configuration into these at the edge. Validated by `Engine::new`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use rust_decimal::Decimal;

/// Everything a paper account is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaperSettings {
    /// Seeds the synthetic price paths.
    pub seed: u64,
    /// Starting balance per asset.
    pub balances: BTreeMap<String, Decimal>,
    pub instruments: Vec<PaperInstrumentSettings>,
    /// Delay before an accepted MARKET order fills.
    pub fill_delay: Duration,
    /// Fee rate of every fill (the paper account has one rate for makers and takers).
    pub taker_fee_rate: Decimal,
    /// Time between two steps of the price paths.
    pub step: Duration,
    /// Standard deviation of one step's relative price change, e.g. 0.002.
    pub volatility: Decimal,
    /// Replays candles from this CSV instead of the synthetic walk (read once at construction).
    pub candles_csv: Option<PathBuf>,
    /// How far back `candles` must reach: the engine keeps only the step prices this needs
    /// (at most `HISTORY_STEPS_MAX`). `None` keeps `HISTORY_STEPS_MAX` steps.
    pub lookback: Option<Duration>,
}

/// One tradable pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaperInstrumentSettings {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub price_tick: Decimal,
    pub quantity_tick: Decimal,
    pub min_quantity: Decimal,
    pub min_notional: Decimal,
    pub start_price: Decimal,
}
