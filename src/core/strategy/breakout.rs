//! The price-level breakout on closes. Pure; comparisons only, nothing can overflow.

use rust_decimal::Decimal;

use crate::core::domain::Side;

/// BUY when the newest close is above `above` and the close before was at or below it; SELL
/// when the newest close is below `below` and the close before was at or above it. A close that
/// stays beyond a level gives no new signal: only the candle that crosses it does. With both
/// levels set the configuration keeps `below < above`, so at most one of the two can hold;
/// were it otherwise the BUY would be checked first rather than anything panicking.
pub(super) fn cross(
    closes: &[Decimal],
    above: Option<Decimal>,
    below: Option<Decimal>,
) -> Option<Side> {
    let [.., before, now] = closes else {
        return None;
    };
    if above.is_some_and(|level| *before <= level && *now > level) {
        Some(Side::Buy)
    } else if below.is_some_and(|level| *before >= level && *now < level) {
        Some(Side::Sell)
    } else {
        None
    }
}
