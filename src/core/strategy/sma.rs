//! The SMA crossover on closes. Pure and checked: a sum that overflows gives no signal.

use rust_decimal::Decimal;

use crate::core::domain::Side;

/// Simple moving average of the `length` closes ending at `end` (exclusive); `None` when the
/// window does not fit or its sum overflows.
fn sma(closes: &[Decimal], end: usize, length: usize) -> Option<Decimal> {
    let start = end.checked_sub(length)?;
    let window = closes.get(start..end)?;
    if window.is_empty() {
        return None;
    }
    let sum = window
        .iter()
        .try_fold(Decimal::ZERO, |sum, close| sum.checked_add(*close))?;
    sum.checked_div(Decimal::from(length))
}

/// BUY when the fast SMA crosses above the slow one on the newest close (at or below it on the
/// close before, above it now), SELL when it crosses below, nothing otherwise. Nothing either
/// with fewer than `slow + 1` closes or parameters the configuration refuses (`fast` of 0,
/// `fast ≥ slow`): a rule that cannot be right must not trade.
pub(super) fn cross(closes: &[Decimal], fast: usize, slow: usize) -> Option<Side> {
    if fast == 0 || fast >= slow {
        return None;
    }
    let last = closes.len();
    let before = last.checked_sub(1)?;
    let fast_now = sma(closes, last, fast)?;
    let slow_now = sma(closes, last, slow)?;
    let fast_before = sma(closes, before, fast)?;
    let slow_before = sma(closes, before, slow)?;
    if fast_before <= slow_before && fast_now > slow_now {
        Some(Side::Buy)
    } else if fast_before >= slow_before && fast_now < slow_now {
        Some(Side::Sell)
    } else {
        None
    }
}
