//! Wilder's relative strength index on closes, and the crossing of its two levels. Pure; every
//! `Decimal` operation is checked, and one that overflows gives no signal.

use rust_decimal::Decimal;

use crate::core::domain::Side;

const HUNDRED: Decimal = Decimal::ONE_HUNDRED;
/// The value of a series with neither gains nor losses over the window (flat): neutral,
/// inside any valid pair of levels, so a flat market never signals.
const FLAT: Decimal = Decimal::from_parts(50, 0, 0, false, 0);

/// Wilder's averages of gains and losses, advanced one change at a time.
struct Averages {
    gain: Decimal,
    loss: Decimal,
}

impl Averages {
    /// The RSI of these averages as `100 × gain / (gain + loss)`, which equals the textbook
    /// `100 − 100 / (1 + gain / loss)` without dividing by a zero loss: 100 when there were only
    /// gains, 0 when there were only losses, `FLAT` when there were neither.
    fn rsi(&self) -> Option<Decimal> {
        let total = self.gain.checked_add(self.loss)?;
        if total.is_zero() {
            return Some(FLAT);
        }
        HUNDRED.checked_mul(self.gain)?.checked_div(total)
    }

    /// Wilder's smoothing: `average = (average × (period − 1) + change) / period`.
    fn advance(&mut self, change: Decimal, period: Decimal) -> Option<()> {
        let (gain, loss) = split(change);
        let kept = period.checked_sub(Decimal::ONE)?;
        self.gain = self
            .gain
            .checked_mul(kept)?
            .checked_add(gain)?
            .checked_div(period)?;
        self.loss = self
            .loss
            .checked_mul(kept)?
            .checked_add(loss)?
            .checked_div(period)?;
        Some(())
    }
}

/// A change of close as a (gain, loss) pair, both at least zero.
fn split(change: Decimal) -> (Decimal, Decimal) {
    if change.is_sign_negative() {
        (Decimal::ZERO, -change)
    } else {
        (change, Decimal::ZERO)
    }
}

/// The RSI on the close before the newest and on the newest: the first `period` changes seed
/// the averages (their plain means), every later change advances them by Wilder's smoothing.
/// `None` with fewer than `period + 2` closes, a period below 1 or an overflow.
pub(super) fn last_two(closes: &[Decimal], period: usize) -> Option<(Decimal, Decimal)> {
    if period == 0 || closes.len() < period.checked_add(2)? {
        return None;
    }
    let changes: Vec<Decimal> = closes
        .windows(2)
        .map(|pair| pair[1].checked_sub(pair[0]))
        .collect::<Option<_>>()?;
    let period_decimal = Decimal::from(period);
    let (seed, rest) = changes.split_at(period);
    let mut sums = (Decimal::ZERO, Decimal::ZERO);
    for change in seed {
        let (gain, loss) = split(*change);
        sums = (sums.0.checked_add(gain)?, sums.1.checked_add(loss)?);
    }
    let mut averages = Averages {
        gain: sums.0.checked_div(period_decimal)?,
        loss: sums.1.checked_div(period_decimal)?,
    };
    let mut before = averages.rsi()?;
    let mut now = before;
    for change in rest {
        averages.advance(*change, period_decimal)?;
        before = now;
        now = averages.rsi()?;
    }
    Some((before, now))
}

/// BUY when the RSI crosses up through `oversold` on the newest close: at or below the level on
/// the close before, strictly above it now (`before ≤ oversold < now`, the market leaving the
/// oversold zone). SELL when it crosses down through `overbought`: `before ≥ overbought > now`.
/// An RSI that stays in a zone gives no new signal. With the configuration's `oversold <
/// overbought` at most one of the two can hold; the BUY is checked first. Nothing with fewer
/// than `period + 2` closes or on an overflow.
pub(super) fn cross(
    closes: &[Decimal],
    period: usize,
    oversold: Decimal,
    overbought: Decimal,
) -> Option<Side> {
    let (before, now) = last_two(closes, period)?;
    if before <= oversold && now > oversold {
        Some(Side::Buy)
    } else if before >= overbought && now < overbought {
        Some(Side::Sell)
    } else {
        None
    }
}

/// The RSI on the newest close, for tests that check the values against a reference.
#[cfg(test)]
pub(super) fn value(closes: &[Decimal], period: usize) -> Option<Decimal> {
    last_two(closes, period).map(|(_, now)| now)
}
