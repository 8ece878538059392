//! Built-in signal strategies, evaluated on closed candles only. Pure: the candles, their
//! timeframe and `now_ms` come in as arguments and a `Verdict` goes out. This module decides
//! which candles count as closed (`closed_candles`), so no strategy can act on the candle still
//! forming whatever a venue sends. It must not read a clock, fetch candles or know the
//! configuration, and must not panic on any candle data: every `Decimal` operation is checked.

mod breakout;
mod rsi;
mod sma;
#[cfg(test)]
mod tests;

use rust_decimal::Decimal;

use crate::core::domain::{Candle, Millis, Side};

/// The most closed candles any strategy reads: one request's worth on every venue
/// (Crypto.com answers at most 300 candles per request, the newest of which may still be open).
pub const CANDLES_MAX: usize = 299;
/// An RSI reads this many periods of changes (when `CANDLES_MAX` allows): the first period
/// seeds Wilder's averages and the seed's weight in the last value decays to about e⁻⁴ (2 %)
/// over the rest, so the value barely depends on where the window starts.
pub const RSI_HISTORY_PERIODS: usize = 5;

/// A strategy and its parameters, as plain values (the configuration validates them: `fast <
/// slow`, `oversold < overbought` inside (0, 100), at least one breakout level). A rule that is
/// not valid gives no signal rather than a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// BUY when the fast SMA of closes crosses above the slow one, SELL when it crosses below.
    SmaCross { fast: usize, slow: usize },
    /// Wilder's RSI over `period` changes of close: BUY when it crosses up through `oversold`,
    /// SELL when it crosses down through `overbought` (see `rsi.rs` for the exact rule).
    Rsi {
        period: usize,
        oversold: Decimal,
        overbought: Decimal,
    },
    /// BUY when a candle closes above `above` after one that closed at or below it; SELL when
    /// a candle closes below `below` after one that closed at or above it.
    Breakout {
        above: Option<Decimal>,
        below: Option<Decimal>,
    },
}

impl Rule {
    /// The rule's name: the signal's source and the first part of its dedup key.
    pub fn name(&self) -> &'static str {
        match self {
            Rule::SmaCross { .. } => "sma_cross",
            Rule::Rsi { .. } => "rsi",
            Rule::Breakout { .. } => "breakout",
        }
    }

    /// How many of the newest closed candles the rule reads; it decides on exactly these, so a
    /// longer series gives the same verdict. More than `CANDLES_MAX` only for a rule the
    /// configuration refuses (an SMA longer than one request), which then never has enough.
    pub fn candles_needed(&self) -> usize {
        match *self {
            // Two averages each: on the newest candle and on the one before.
            Rule::SmaCross { slow, .. } => slow.saturating_add(1),
            // `period` changes seed the averages, one more gives a first value and one more
            // the value before the newest: `period + 2` closes at least.
            Rule::Rsi { period, .. } => {
                let least = period.saturating_add(2);
                period
                    .saturating_mul(RSI_HISTORY_PERIODS)
                    .saturating_add(2)
                    .min(CANDLES_MAX)
                    .max(least)
            }
            Rule::Breakout { .. } => 2,
        }
    }
}

/// What a rule makes of a series of candles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Fewer closed candles than the rule reads: nothing is decided.
    TooFew,
    /// The newest closed candle (opened at `candle_open_time_ms`) gives no signal.
    Hold { candle_open_time_ms: Millis },
    /// The newest closed candle gives a signal.
    Signal {
        side: Side,
        candle_open_time_ms: Millis,
    },
}

/// The candles of `candles` that had closed by `now_ms`. A candle still forming, whose open
/// time plus `timeframe_ms` is after `now_ms`, is dropped; so is any candle not newer than the
/// one kept before it (out of order or repeated), so the result is strictly increasing in open
/// time. A timeframe that is not positive leaves nothing.
pub fn closed_candles(candles: &[Candle], timeframe_ms: Millis, now_ms: Millis) -> Vec<Candle> {
    let mut closed: Vec<Candle> = Vec::with_capacity(candles.len());
    if timeframe_ms <= 0 {
        return closed;
    }
    for candle in candles {
        let is_closed = candle
            .open_time_ms
            .checked_add(timeframe_ms)
            .is_some_and(|close_ms| close_ms <= now_ms);
        let is_newer = closed
            .last()
            .is_none_or(|last| candle.open_time_ms > last.open_time_ms);
        if is_closed && is_newer {
            closed.push(candle.clone());
        }
    }
    closed
}

/// Evaluates `rule` on the candles of `candles` that had closed by `now_ms` (the forming one is
/// never read), deciding on the newest `rule.candles_needed()` of them.
pub fn evaluate(rule: &Rule, candles: &[Candle], timeframe_ms: Millis, now_ms: Millis) -> Verdict {
    let closed = closed_candles(candles, timeframe_ms, now_ms);
    let needed = rule.candles_needed();
    let Some(newest) = closed.last() else {
        return Verdict::TooFew;
    };
    if closed.len() < needed {
        return Verdict::TooFew;
    }
    let candle_open_time_ms = newest.open_time_ms;
    let closes: Vec<Decimal> = closed[closed.len() - needed..]
        .iter()
        .map(|candle| candle.close)
        .collect();
    let side = match *rule {
        Rule::SmaCross { fast, slow } => sma::cross(&closes, fast, slow),
        Rule::Rsi {
            period,
            oversold,
            overbought,
        } => rsi::cross(&closes, period, oversold, overbought),
        Rule::Breakout { above, below } => breakout::cross(&closes, above, below),
    };
    match side {
        Some(side) => Verdict::Signal {
            side,
            candle_open_time_ms,
        },
        None => Verdict::Hold {
            candle_open_time_ms,
        },
    }
}
