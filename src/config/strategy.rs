//! Validation of a watchlist entry's strategy: `strategy = "sma_cross" | "rsi" | "breakout" |
//! "none"` and its flat keys. Every bound is a named constant, every error names the key (a key
//! the chosen strategy does not read is an error too, so a typo in `strategy` cannot leave the
//! parameters silently unused). Reads nothing itself; knows nothing of how a strategy decides.

use rust_decimal::Decimal;

use super::raw::{Num, RawWatchItem};
use super::sources::origin;
use super::validate::{
    Check, SMA_FAST_DEFAULT, SMA_PERIOD_MAX, SMA_PERIOD_MIN, SMA_SLOW_DEFAULT,
    TIMEFRAME_SECONDS_DEFAULT, TIMEFRAME_SECONDS_MAX, TIMEFRAME_SECONDS_MIN,
};
use super::{ConfigError, Strategy};
use crate::core::strategy::CANDLES_MAX;

pub(crate) const STRATEGY_DEFAULT: &str = "sma_cross";
pub(crate) const RSI_PERIOD_MIN: u32 = 2;
pub(crate) const RSI_PERIOD_MAX: u32 = 200;
pub(crate) const RSI_PERIOD_DEFAULT: u32 = 14;
pub(crate) const RSI_OVERSOLD_DEFAULT: Decimal = Decimal::from_parts(30, 0, 0, false, 0);
pub(crate) const RSI_OVERBOUGHT_DEFAULT: Decimal = Decimal::from_parts(70, 0, 0, false, 0);
/// RSI levels lie strictly between 0 and this.
const RSI_LEVEL_MAX: Decimal = Decimal::ONE_HUNDRED;

// Every valid strategy reads at most one request's worth of closed candles (`CANDLES_MAX`):
// an SMA reads `slow + 1`, an RSI at least `period + 2`.
const _: () = assert!(SMA_PERIOD_MAX as usize + 1 == CANDLES_MAX);
const _: () = assert!(RSI_PERIOD_MAX as usize + 2 <= CANDLES_MAX);
const _: () = assert!(RSI_PERIOD_MIN >= 2 && RSI_PERIOD_MIN <= RSI_PERIOD_DEFAULT);
const _: () = assert!(RSI_PERIOD_DEFAULT <= RSI_PERIOD_MAX);

/// The strategies and the keys each reads, besides `strategy` itself.
const KEYS: [(&str, &[&str]); 4] = [
    ("sma_cross", &["sma_fast", "sma_slow", "timeframe_seconds"]),
    (
        "rsi",
        &[
            "rsi_period",
            "rsi_oversold",
            "rsi_overbought",
            "timeframe_seconds",
        ],
    ),
    (
        "breakout",
        &["breakout_above", "breakout_below", "timeframe_seconds"],
    ),
    ("none", &[]),
];

/// The strategy of `watchlist[index]`.
pub(super) fn strategy(
    c: &Check<'_>,
    index: usize,
    item: &RawWatchItem,
) -> Result<Strategy, ConfigError> {
    let key = |field: &str| format!("watchlist[{index}].{field}");
    let name = item.strategy.as_deref().unwrap_or(STRATEGY_DEFAULT);
    let Some((_, used)) = KEYS.iter().find(|(known, _)| *known == name) else {
        let reason = "must be sma_cross, rsi, breakout or none";
        return Err(c.invalid(&key("strategy"), &format!("{name:?}"), reason));
    };
    let unused = strategy_keys(item)
        .into_iter()
        .filter(|(field, _)| !used.contains(field));
    for (field, value) in unused {
        if let Some(value) = value {
            let reason = match used {
                [] => format!("is not used by strategy = \"{name}\", which reads no candles"),
                _ => format!(
                    "is not used by strategy = \"{name}\" (it reads {})",
                    used.join(", ")
                ),
            };
            return Err(c.invalid(&key(field), &value, &reason));
        }
    }
    match name {
        "sma_cross" => sma_cross(c, index, item),
        "rsi" => rsi(c, index, item),
        "breakout" => breakout(c, index, item),
        _ => Ok(Strategy::None),
    }
}

/// Every strategy key of the entry with its value, set or not.
fn strategy_keys(item: &RawWatchItem) -> [(&'static str, Option<Num>); 8] {
    [
        ("sma_fast", item.sma_fast),
        ("sma_slow", item.sma_slow),
        ("rsi_period", item.rsi_period),
        ("rsi_oversold", item.rsi_oversold),
        ("rsi_overbought", item.rsi_overbought),
        ("breakout_above", item.breakout_above),
        ("breakout_below", item.breakout_below),
        ("timeframe_seconds", item.timeframe_seconds),
    ]
}

fn whole(value: u32) -> Option<Num> {
    Some(Num(Decimal::from(value)))
}

fn timeframe_seconds(c: &Check<'_>, index: usize, item: &RawWatchItem) -> Result<u32, ConfigError> {
    c.count_u32(
        &format!("watchlist[{index}].timeframe_seconds"),
        item.timeframe_seconds.or(whole(TIMEFRAME_SECONDS_DEFAULT)),
        TIMEFRAME_SECONDS_MIN,
        TIMEFRAME_SECONDS_MAX,
    )
}

fn sma_cross(c: &Check<'_>, index: usize, item: &RawWatchItem) -> Result<Strategy, ConfigError> {
    let key = |field: &str| format!("watchlist[{index}].{field}");
    let (min, max) = (SMA_PERIOD_MIN, SMA_PERIOD_MAX);
    let fast = c.count_u32(
        &key("sma_fast"),
        item.sma_fast.or(whole(SMA_FAST_DEFAULT)),
        min,
        max,
    )?;
    let slow = c.count_u32(
        &key("sma_slow"),
        item.sma_slow.or(whole(SMA_SLOW_DEFAULT)),
        min,
        max,
    )?;
    if fast >= slow {
        let reason = format!("must be less than sma_slow = {slow}");
        return Err(c.invalid(&key("sma_fast"), &fast, &reason));
    }
    Ok(Strategy::SmaCross {
        fast,
        slow,
        timeframe_seconds: timeframe_seconds(c, index, item)?,
    })
}

fn rsi(c: &Check<'_>, index: usize, item: &RawWatchItem) -> Result<Strategy, ConfigError> {
    let key = |field: &str| format!("watchlist[{index}].{field}");
    let period = c.count_u32(
        &key("rsi_period"),
        item.rsi_period.or(whole(RSI_PERIOD_DEFAULT)),
        RSI_PERIOD_MIN,
        RSI_PERIOD_MAX,
    )?;
    let level = |field: &str, value: Option<Num>, default: Decimal| {
        c.decimal(
            &key(field),
            value.or(Some(Num(default))),
            (Decimal::ZERO, Some(RSI_LEVEL_MAX)),
            true,
        )
    };
    let oversold = level("rsi_oversold", item.rsi_oversold, RSI_OVERSOLD_DEFAULT)?;
    let overbought = level(
        "rsi_overbought",
        item.rsi_overbought,
        RSI_OVERBOUGHT_DEFAULT,
    )?;
    if oversold >= overbought {
        let reason = format!("must be less than rsi_overbought = {overbought}");
        return Err(c.invalid(&key("rsi_oversold"), &oversold, &reason));
    }
    Ok(Strategy::Rsi {
        period,
        oversold,
        overbought,
        timeframe_seconds: timeframe_seconds(c, index, item)?,
    })
}

fn breakout(c: &Check<'_>, index: usize, item: &RawWatchItem) -> Result<Strategy, ConfigError> {
    let key = |field: &str| format!("watchlist[{index}].{field}");
    let level = |field: &str, value: Option<Num>| match value {
        Some(value) => c
            .decimal(&key(field), Some(value), (Decimal::ZERO, None), true)
            .map(Some),
        None => Ok(None),
    };
    let above = level("breakout_above", item.breakout_above)?;
    let below = level("breakout_below", item.breakout_below)?;
    match (above, below) {
        (None, None) => {
            let entry = format!("watchlist[{index}]");
            let message = format!(
                "{entry} (from {}) sets neither breakout_above nor breakout_below; \
                 strategy = \"breakout\" needs at least one",
                origin(c.figment, &entry)
            );
            return Err(ConfigError::for_key(&key("breakout_above"), message));
        }
        (Some(above), Some(below)) if below >= above => {
            let reason = format!("must be less than breakout_above = {above}");
            return Err(c.invalid(&key("breakout_below"), &below, &reason));
        }
        _ => {}
    }
    Ok(Strategy::Breakout {
        above,
        below,
        timeframe_seconds: timeframe_seconds(c, index, item)?,
    })
}
