//! Price paths of the paper venue: one seeded random walk (or a replay of CSV candles) per
//! symbol, plus a bounded history of step prices from which closed candles are aggregated.
//! The history is kept out of the path's own serialized form (`SavedHistory` carries it), so
//! the paper account can be saved after every order without rewriting every price.
//! Pure and deterministic for a seed: no clock, no randomness beyond the seeded generator, and
//! no IO except `load_candles_csv`, which the engine calls once at construction.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::core::domain::{Candle, Millis};

/// Step prices kept per symbol for candle aggregation at most; a path keeps fewer when told
/// how far back its candles must reach (`PricePath::set_history_steps`).
pub const HISTORY_STEPS_MAX: usize = 20_000;
/// Step prices kept at least, so a short lookback still yields a few candles.
pub const HISTORY_STEPS_MIN: usize = 4;
/// Uniforms summed for one approximately normal draw; 12 uniforms minus 6 have variance 1.
const NORMAL_UNIFORMS_COUNT: u32 = 12;
/// Decimal places of one uniform draw: `u64 % 10^9` scaled by 10^-9, exact in Decimal.
const UNIFORM_SCALE: u32 = 9;
const UNIFORM_RANGE: u64 = 1_000_000_000;
/// Largest price the walk may reach, so later arithmetic (price × quantity) cannot overflow.
pub const PRICE_MAX: i64 = 1_000_000_000_000;
/// Rows a candles CSV may hold.
const CSV_ROWS_MAX: usize = 2_000_000;
const CSV_HEADER: &str = "symbol,open_time_ms,open,high,low,close";

const _: () = assert!(NORMAL_UNIFORMS_COUNT == 12);
const _: () = assert!(HISTORY_STEPS_MIN >= 4 && HISTORY_STEPS_MIN <= HISTORY_STEPS_MAX);

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for a price walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// Uniform in [0, 1) on a grid of 10^-9, exact in Decimal (the modulo bias is below 10^-9).
    pub fn next_unit(&mut self) -> Decimal {
        let draw = self.next_u64() % UNIFORM_RANGE;
        let draw = i64::try_from(draw).expect("a draw below 10^9 fits in i64");
        Decimal::new(draw, UNIFORM_SCALE)
    }

    /// Approximately standard normal (Irwin–Hall: sum of 12 uniforms minus 6), in [-6, 6].
    pub fn next_normal(&mut self) -> Decimal {
        let mut sum = Decimal::ZERO;
        for _ in 0..NORMAL_UNIFORMS_COUNT {
            sum += self.next_unit();
        }
        sum - Decimal::from(6)
    }
}

/// FNV-1a of the symbol, so each symbol's stream depends on its name, not on config order.
fn symbol_hash(symbol: &str) -> u64 {
    let mut hash: u64 = 0xCBF2_9CE4_8422_2325;
    for byte in symbol.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
    hash
}

/// Snaps `price` to the nearest multiple of `price_tick` (ties to even: no drift up or down),
/// never below one tick and never above `PRICE_MAX`.
pub fn snap_to_tick(price: Decimal, price_tick: Decimal) -> Decimal {
    assert!(price_tick > Decimal::ZERO);
    let ticks = price
        .checked_div(price_tick)
        .unwrap_or(Decimal::ZERO)
        .round_dp_with_strategy(0, RoundingStrategy::MidpointNearestEven);
    let snapped = ticks * price_tick;
    let price_max = Decimal::from(PRICE_MAX);
    if snapped <= Decimal::ZERO {
        price_tick
    } else if snapped > price_max {
        let ticks_max =
            (price_max / price_tick).round_dp_with_strategy(0, RoundingStrategy::ToZero);
        ticks_max * price_tick
    } else {
        snapped
    }
}

/// The price of one symbol over time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PricePath {
    generator: SplitMix64,
    volatility: Decimal,
    price_tick: Decimal,
    /// Prices still to replay (O, H, L, C per candle), then the walk continues from the last.
    replay: VecDeque<Decimal>,
    price: Decimal,
    /// (time of the step, price after it), oldest first, at most `history_steps`. Not
    /// serialized with the path (see `SavedHistory`); read from accounts saved before that.
    #[serde(skip_serializing, default)]
    history: VecDeque<(Millis, Decimal)>,
    /// Bound of `history`; accounts saved before it existed kept `HISTORY_STEPS_MAX`.
    #[serde(default = "history_steps_max")]
    history_steps: usize,
}

fn history_steps_max() -> usize {
    HISTORY_STEPS_MAX
}

/// A path with its step history, as the paper venue saves it apart from the account.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedHistory {
    /// The path's state when the history was saved.
    pub path: PricePath,
    pub history: Vec<(Millis, Decimal)>,
}

/// `SavedHistory` as written: borrowed, so saving copies nothing.
#[derive(Debug, Serialize)]
pub struct SavedHistoryRef<'a> {
    pub path: &'a PricePath,
    pub history: &'a VecDeque<(Millis, Decimal)>,
}

/// What a path is made from.
pub struct PathSpec<'a> {
    pub seed: u64,
    pub symbol: &'a str,
    pub start_price: Decimal,
    pub price_tick: Decimal,
    pub volatility: Decimal,
    /// Replay prices; when not empty, the first one is the start price.
    pub replay: Vec<Decimal>,
    pub start_ms: Millis,
}

impl PricePath {
    pub fn new(spec: PathSpec<'_>) -> PricePath {
        assert!(spec.price_tick > Decimal::ZERO);
        assert!(spec.volatility >= Decimal::ZERO);
        let mut replay: VecDeque<Decimal> = spec
            .replay
            .into_iter()
            .map(|price| snap_to_tick(price, spec.price_tick))
            .collect();
        let start_price = replay
            .pop_front()
            .unwrap_or_else(|| snap_to_tick(spec.start_price, spec.price_tick));
        let mut generator = SplitMix64::new(spec.seed ^ symbol_hash(spec.symbol));
        // One warm-up draw decorrelates seeds that differ in few bits.
        generator.next_u64();
        let mut history = VecDeque::new();
        history.push_back((spec.start_ms, start_price));
        PricePath {
            generator,
            volatility: spec.volatility,
            price_tick: spec.price_tick,
            replay,
            price: start_price,
            history,
            history_steps: HISTORY_STEPS_MAX,
        }
    }

    /// Bounds the step history to `steps` (clamped to `HISTORY_STEPS_MIN..=HISTORY_STEPS_MAX`),
    /// dropping the oldest steps beyond it.
    pub fn set_history_steps(&mut self, steps: usize) {
        self.history_steps = steps.clamp(HISTORY_STEPS_MIN, HISTORY_STEPS_MAX);
        let excess = self.history.len().saturating_sub(self.history_steps);
        self.history.drain(..excess);
    }

    /// Whether the walk of `self` and `other` is at the same point (generator, price, replay),
    /// whatever their histories.
    pub fn same_walk(&self, other: &PricePath) -> bool {
        self.generator == other.generator
            && self.price == other.price
            && self.replay.len() == other.replay.len()
    }

    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    pub fn has_history(&self) -> bool {
        !self.history.is_empty()
    }

    /// This path and its history, to be saved apart from the account (read as `SavedHistory`).
    pub fn saved_history(&self) -> SavedHistoryRef<'_> {
        SavedHistoryRef {
            path: self,
            history: &self.history,
        }
    }

    /// Takes `history` as its own, dropping steps after `until_ms` and beyond the bound.
    pub fn restore_history(&mut self, history: Vec<(Millis, Decimal)>, until_ms: Millis) {
        self.history = history
            .into_iter()
            .filter(|&(time_ms, _)| time_ms <= until_ms)
            .collect();
        self.set_history_steps(self.history_steps);
    }

    /// The history, oldest first, for restoring.
    pub fn take_history(&mut self) -> Vec<(Millis, Decimal)> {
        std::mem::take(&mut self.history).into_iter().collect()
    }

    pub fn price(&self) -> Decimal {
        self.price
    }

    /// One step of the path at `time_ms`: the next replay price, else one walk step.
    pub fn step(&mut self, time_ms: Millis) {
        let next_price = match self.replay.pop_front() {
            Some(price) => price,
            None => {
                let change = self.generator.next_normal() * self.volatility;
                snap_to_tick(self.price * (Decimal::ONE + change), self.price_tick)
            }
        };
        self.record(next_price, time_ms);
    }

    /// Sets the price (already validated by the caller) as if a step had produced it.
    pub fn force(&mut self, price: Decimal, time_ms: Millis) {
        assert!(price > Decimal::ZERO);
        self.record(price, time_ms);
    }

    fn record(&mut self, price: Decimal, time_ms: Millis) {
        assert!(price > Decimal::ZERO);
        self.price = price;
        if self.history.len() >= self.history_steps {
            self.history.pop_front();
        }
        self.history.push_back((time_ms, price));
    }

    /// The last `count` candles of `timeframe_ms` that closed by `now_ms`, oldest first.
    pub fn candles(&self, timeframe_ms: Millis, count: usize, now_ms: Millis) -> Vec<Candle> {
        assert!(timeframe_ms > 0);
        // Only the steps of the last `count` closed candles are read, not the whole history.
        let count_ms = Millis::try_from(count)
            .unwrap_or(Millis::MAX)
            .saturating_add(1);
        let first_open_ms = now_ms
            .div_euclid(timeframe_ms)
            .saturating_sub(count_ms)
            .saturating_mul(timeframe_ms);
        let start = self
            .history
            .partition_point(|&(time_ms, _)| time_ms < first_open_ms);
        let mut candles: Vec<Candle> = Vec::new();
        for &(time_ms, price) in self.history.range(start..) {
            let open_time_ms = time_ms.div_euclid(timeframe_ms) * timeframe_ms;
            if open_time_ms.saturating_add(timeframe_ms) > now_ms {
                break;
            }
            match candles.last_mut() {
                Some(candle) if candle.open_time_ms == open_time_ms => {
                    candle.high = candle.high.max(price);
                    candle.low = candle.low.min(price);
                    candle.close = price;
                }
                _ => candles.push(Candle {
                    open_time_ms,
                    open: price,
                    high: price,
                    low: price,
                    close: price,
                }),
            }
        }
        let skip = candles.len().saturating_sub(count);
        candles.split_off(skip)
    }
}

/// Reads a candles CSV (`symbol,open_time_ms,open,high,low,close`) into replay prices per
/// symbol: O, H, L, C of each row in file order. Rows of one symbol must have increasing open
/// times; every symbol must be one of `symbols`. Errors name the file and the line.
pub fn load_candles_csv(
    path: &Path,
    symbols: &BTreeSet<String>,
) -> Result<BTreeMap<String, Vec<Decimal>>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("{}: cannot read candles csv: {error}", path.display()))?;
    parse_candles_csv(&text, symbols)
        .map_err(|(line, message)| format!("{}:{line}: {message}", path.display()))
}

/// Parses CSV text; an error carries the 1-based line number.
pub fn parse_candles_csv(
    text: &str,
    symbols: &BTreeSet<String>,
) -> Result<BTreeMap<String, Vec<Decimal>>, (usize, String)> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.trim() == CSV_HEADER => {}
        _ => return Err((1, format!("expected header {CSV_HEADER:?}"))),
    }
    let mut replays: BTreeMap<String, Vec<Decimal>> = BTreeMap::new();
    let mut last_open_time_ms: BTreeMap<String, Millis> = BTreeMap::new();
    for (index, line) in lines {
        let line_number = index + 1;
        if index > CSV_ROWS_MAX {
            return Err((line_number, format!("more than {CSV_ROWS_MAX} rows")));
        }
        if line.trim().is_empty() {
            continue;
        }
        let (symbol, open_time_ms, prices) =
            parse_candle_row(line, symbols).map_err(|message| (line_number, message))?;
        if let Some(&previous_ms) = last_open_time_ms.get(&symbol) {
            if open_time_ms <= previous_ms {
                return Err((
                    line_number,
                    format!("open_time_ms of {symbol} not increasing"),
                ));
            }
        }
        last_open_time_ms.insert(symbol.clone(), open_time_ms);
        replays.entry(symbol).or_default().extend(prices);
    }
    Ok(replays)
}

fn parse_candle_row(
    line: &str,
    symbols: &BTreeSet<String>,
) -> Result<(String, Millis, [Decimal; 4]), String> {
    let fields: Vec<&str> = line.split(',').map(str::trim).collect();
    if fields.len() != 6 {
        return Err(format!("expected 6 fields, found {}", fields.len()));
    }
    let symbol = fields[0].to_string();
    if !symbols.contains(&symbol) {
        return Err(format!(
            "symbol {symbol:?} is not a configured paper instrument"
        ));
    }
    let open_time_ms: Millis = fields[1]
        .parse()
        .map_err(|_| format!("open_time_ms {:?} is not an integer", fields[1]))?;
    let mut prices = [Decimal::ZERO; 4];
    for (slot, text) in prices.iter_mut().zip(&fields[2..]) {
        let price: Decimal = text
            .parse()
            .map_err(|_| format!("price {text:?} is not a decimal"))?;
        if price <= Decimal::ZERO || price > Decimal::from(PRICE_MAX) {
            return Err(format!("price {text} out of range (0, {PRICE_MAX}]"));
        }
        *slot = price;
    }
    let [open, high, low, close] = prices;
    if high < open.max(close).max(low) || low > open.min(close) {
        return Err("high/low do not bound open and close".to_string());
    }
    Ok((symbol, open_time_ms, prices))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decimal(text: &str) -> Decimal {
        Decimal::from_str_exact(text).expect("test decimal")
    }

    fn walk(seed: u64, symbol: &str) -> PricePath {
        PricePath::new(PathSpec {
            seed,
            symbol,
            start_price: decimal("100"),
            price_tick: decimal("0.01"),
            volatility: decimal("0.002"),
            replay: Vec::new(),
            start_ms: 0,
        })
    }

    fn prices(path: &mut PricePath, steps: i64) -> Vec<Decimal> {
        (1..=steps)
            .map(|step| {
                path.step(step * 1_000);
                path.price()
            })
            .collect()
    }

    #[test]
    fn same_seed_same_walk_and_symbols_get_independent_streams() {
        let first = prices(&mut walk(7, "BTC_USD"), 500);
        let second = prices(&mut walk(7, "BTC_USD"), 500);
        let other_symbol = prices(&mut walk(7, "ETH_USD"), 500);
        let other_seed = prices(&mut walk(8, "BTC_USD"), 500);
        assert_eq!(first, second);
        assert_ne!(first, other_symbol);
        assert_ne!(first, other_seed);
        assert!(first.iter().all(|price| *price > Decimal::ZERO));
        assert!(
            first
                .iter()
                .all(|price| (*price % decimal("0.01")).is_zero())
        );
    }

    #[test]
    fn normal_draws_have_unit_spread() {
        let mut generator = SplitMix64::new(42);
        let draws: Vec<Decimal> = (0..4_000).map(|_| generator.next_normal()).collect();
        let count = Decimal::from(draws.len());
        let mean = draws.iter().sum::<Decimal>() / count;
        let variance = draws
            .iter()
            .map(|draw| (*draw - mean) * (*draw - mean))
            .sum::<Decimal>()
            / count;
        assert!(mean.abs() < decimal("0.1"), "mean {mean}");
        assert!(
            (variance - Decimal::ONE).abs() < decimal("0.1"),
            "variance {variance}"
        );
    }

    #[test]
    fn snap_rounds_to_nearest_tick_and_stays_positive() {
        let tick = decimal("0.5");
        assert_eq!(snap_to_tick(decimal("10.26"), tick), decimal("10.5"));
        assert_eq!(snap_to_tick(decimal("10.25"), tick), decimal("10.0"));
        assert_eq!(snap_to_tick(decimal("0.1"), tick), tick);
        assert_eq!(snap_to_tick(decimal("-3"), tick), tick);
    }

    #[test]
    fn history_is_bounded() {
        let mut path = walk(1, "BTC_USD");
        for step in 1..=(HISTORY_STEPS_MAX as i64 + 10) {
            path.step(step);
        }
        assert_eq!(path.history.len(), HISTORY_STEPS_MAX);
    }

    #[test]
    fn a_shorter_bound_keeps_the_newest_steps() {
        let mut path = walk(1, "BTC_USD");
        for step in 1..=100 {
            path.step(step * 1_000);
        }
        path.set_history_steps(10);
        assert_eq!(path.history.len(), 10);
        assert_eq!(path.history.back().map(|step| step.0), Some(100_000));
        path.step(101_000);
        assert_eq!(path.history.len(), 10);
        assert_eq!(path.history.front().map(|step| step.0), Some(92_000));
        path.set_history_steps(0);
        assert_eq!(path.history.len(), HISTORY_STEPS_MIN);
    }

    #[test]
    fn csv_errors_name_the_line() {
        let symbols: BTreeSet<String> = ["BTC_USD".to_string()].into_iter().collect();
        let text =
            "symbol,open_time_ms,open,high,low,close\nBTC_USD,0,1,2,1,1\nBTC_USD,60000,1,x,1,1\n";
        let error = parse_candles_csv(text, &symbols).expect_err("bad price");
        assert_eq!(error.0, 3);
        let unknown = "symbol,open_time_ms,open,high,low,close\nETH_USD,0,1,2,1,1\n";
        assert_eq!(
            parse_candles_csv(unknown, &symbols).expect_err("unknown").0,
            2
        );
        let bad_header = "sym,open\n";
        assert_eq!(
            parse_candles_csv(bad_header, &symbols)
                .expect_err("header")
                .0,
            1
        );
        let backwards =
            "symbol,open_time_ms,open,high,low,close\nBTC_USD,5,1,2,1,1\nBTC_USD,5,1,2,1,1\n";
        assert_eq!(
            parse_candles_csv(backwards, &symbols).expect_err("order").0,
            3
        );
    }
}
