//! Built-in signal strategies evaluated on closed candles. Pure functions.

use rust_decimal::Decimal;

use crate::core::domain::{Candle, Side};

/// Simple moving average of the last `length` closes ending at `end` (exclusive).
fn sma(closes: &[Decimal], end: usize, length: usize) -> Option<Decimal> {
    if length == 0 || end < length || end > closes.len() {
        return None;
    }
    let sum: Decimal = closes[end - length..end].iter().copied().sum();
    Some(sum / Decimal::from(length))
}

/// BUY when the fast SMA crosses above the slow one on the last closed candle, SELL when it
/// crosses below, nothing otherwise (or with too few candles).
pub fn sma_cross(candles: &[Candle], fast: usize, slow: usize) -> Option<Side> {
    assert!(
        fast < slow,
        "the fast average must be shorter than the slow one"
    );
    let closes: Vec<Decimal> = candles.iter().map(|candle| candle.close).collect();
    let last = closes.len();
    let fast_now = sma(&closes, last, fast)?;
    let slow_now = sma(&closes, last, slow)?;
    let fast_before = sma(&closes, last - 1, fast)?;
    let slow_before = sma(&closes, last - 1, slow)?;
    if fast_before <= slow_before && fast_now > slow_now {
        Some(Side::Buy)
    } else if fast_before >= slow_before && fast_now < slow_now {
        Some(Side::Sell)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candles(closes: &[i64]) -> Vec<Candle> {
        closes
            .iter()
            .enumerate()
            .map(|(index, close)| Candle {
                open_time_ms: index as i64 * 60_000,
                open: Decimal::from(*close),
                high: Decimal::from(*close),
                low: Decimal::from(*close),
                close: Decimal::from(*close),
            })
            .collect()
    }

    #[test]
    fn golden_cross_buys_and_death_cross_sells() {
        assert_eq!(
            sma_cross(&candles(&[10, 10, 10, 9, 8, 12]), 2, 4),
            Some(Side::Buy)
        );
        assert_eq!(
            sma_cross(&candles(&[10, 10, 10, 11, 12, 8]), 2, 4),
            Some(Side::Sell)
        );
        assert_eq!(sma_cross(&candles(&[10, 11, 12, 13, 14, 15]), 2, 4), None);
    }

    #[test]
    fn too_few_candles_give_no_signal() {
        assert_eq!(sma_cross(&candles(&[10, 12]), 2, 4), None);
        assert_eq!(sma_cross(&[], 2, 4), None);
    }
}
