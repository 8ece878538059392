//! The `[risk]` section: the limits that gate new entries (`core::risk`). Every limit is off by
//! default and is written as a number or `"off"`; the daily realized-loss limit is a table with
//! one amount per quote asset (`[risk.daily_loss_limit]` `USDT = 100`). Decides nothing about
//! entries (that is the core's) and never touches protection.

use std::collections::BTreeMap;
use std::fmt;

use rust_decimal::Decimal;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ConfigError;
use super::raw::Num;
use super::validate::Check;
use crate::core::risk::RiskLimits;

pub(crate) const OPEN_TRADES_MAX: u32 = 1000;
pub(crate) const ENTRIES_PER_HOUR_MAX: u32 = 100_000;
/// A week: a longer pause is a breaker's job, not a cooldown's.
pub(crate) const COOLDOWN_SECONDS_MAX: u32 = 7 * 24 * 3600;
/// Quote assets with a loss limit; more is a mistake, not a portfolio.
const LOSS_ASSETS_MAX: usize = 20;
const OFF: &str = "off";

/// A limit: a number, or `"off"` (`None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawLimit(pub Option<Num>);

impl Serialize for RawLimit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(number) => number.serialize(serializer),
            None => serializer.serialize_str(OFF),
        }
    }
}

struct LimitVisitor;

impl<'de> Visitor<'de> for LimitVisitor {
    type Value = RawLimit;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or \"off\"")
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<RawLimit, E> {
        if value.trim().eq_ignore_ascii_case(OFF) {
            return Ok(RawLimit(None));
        }
        Num::deserialize(de::value::StrDeserializer::<E>::new(value))
            .map(|n| RawLimit(Some(n)))
            .map_err(|_| E::custom(format!("expected a number or \"off\", found {value:?}")))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<RawLimit, E> {
        Ok(RawLimit(Some(Num(Decimal::from(value)))))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<RawLimit, E> {
        Ok(RawLimit(Some(Num(Decimal::from(value)))))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<RawLimit, E> {
        Num::deserialize(de::value::F64Deserializer::<E>::new(value)).map(|n| RawLimit(Some(n)))
    }
}

impl<'de> Deserialize<'de> for RawLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RawLimit, D::Error> {
        deserializer.deserialize_any(LimitVisitor)
    }
}

/// The raw `[risk]` table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRisk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_trades: Option<RawLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_open_trades_per_symbol: Option<RawLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_notional_per_order: Option<RawLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_seconds: Option<RawLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries_per_hour: Option<RawLimit>,
    /// Quote asset → the net realized loss since the start of the UTC day that opens the
    /// global breaker.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub daily_loss_limit: BTreeMap<String, RawLimit>,
}

pub(super) fn defaults() -> RawRisk {
    let off = Some(RawLimit(None));
    RawRisk {
        max_open_trades: off,
        max_open_trades_per_symbol: off,
        max_notional_per_order: off,
        cooldown_seconds: off,
        max_entries_per_hour: off,
        daily_loss_limit: BTreeMap::new(),
    }
}

pub(super) fn risk(c: &Check<'_>, raw: &RawRisk) -> Result<RiskLimits, ConfigError> {
    let count =
        |key: &str, value: Option<RawLimit>, max: u32| -> Result<Option<u32>, ConfigError> {
            match c.required(key, value)?.0 {
                None => Ok(None),
                Some(number) if number.0.is_zero() => Err(c.invalid(
                    key,
                    &number,
                    "must be at least 1; \"off\" turns the limit off",
                )),
                Some(number) => c.count_u32(key, Some(number), 1, max).map(Some),
            }
        };
    let amount = |key: &str, value: Option<RawLimit>| -> Result<Option<Decimal>, ConfigError> {
        match c.required(key, value)?.0 {
            None => Ok(None),
            Some(number) => c
                .decimal(key, Some(number), (Decimal::ZERO, None), true)
                .map(Some),
        }
    };
    let cooldown = count(
        "risk.cooldown_seconds",
        raw.cooldown_seconds,
        COOLDOWN_SECONDS_MAX,
    )?;
    Ok(RiskLimits {
        max_open_trades: count("risk.max_open_trades", raw.max_open_trades, OPEN_TRADES_MAX)?,
        max_open_trades_per_symbol: count(
            "risk.max_open_trades_per_symbol",
            raw.max_open_trades_per_symbol,
            OPEN_TRADES_MAX,
        )?,
        max_notional_per_order: amount("risk.max_notional_per_order", raw.max_notional_per_order)?,
        cooldown_ms: cooldown.map(|seconds| i64::from(seconds) * 1000),
        daily_loss: daily_loss(c, &raw.daily_loss_limit)?,
        max_entries_per_hour: count(
            "risk.max_entries_per_hour",
            raw.max_entries_per_hour,
            ENTRIES_PER_HOUR_MAX,
        )?,
    })
}

/// Asset names are upper-cased: the environment form (`FILLGUARD_RISK__DAILY_LOSS_LIMIT__USDT`)
/// arrives in lower case.
fn daily_loss(
    c: &Check<'_>,
    raw: &BTreeMap<String, RawLimit>,
) -> Result<BTreeMap<String, Decimal>, ConfigError> {
    if raw.len() > LOSS_ASSETS_MAX {
        let reason = format!("must name at most {LOSS_ASSETS_MAX} quote assets");
        return Err(c.invalid("risk.daily_loss_limit", &raw.len(), &reason));
    }
    let mut limits = BTreeMap::new();
    for (asset, value) in raw {
        let key = format!("risk.daily_loss_limit.{asset}");
        let name = asset.trim().to_ascii_uppercase();
        let shaped =
            !name.is_empty() && name.len() <= 16 && name.chars().all(|c| c.is_ascii_alphanumeric());
        if !shaped {
            let reason = "must be a quote asset's name, like USDT";
            return Err(c.invalid(&key, &format!("{asset:?}"), reason));
        }
        let Some(number) = value.0 else { continue };
        let amount = c.decimal(&key, Some(number), (Decimal::ZERO, None), true)?;
        // The environment's form (lower case) sorts after the file's (upper case) and wins,
        // as the environment wins everywhere.
        limits.insert(name, amount);
    }
    Ok(limits)
}

/// Limits that contradict the rest of the configuration: a per-symbol allowance above one
/// while a symbol may hold only one trade, or a watchlist notional every entry of which the
/// notional limit would refuse.
pub(super) fn check_against(c: &Check<'_>, config: &super::Config) -> Result<(), ConfigError> {
    let limits = &config.risk;
    if let Some(per_symbol) = limits.max_open_trades_per_symbol {
        if per_symbol > 1 && !config.signals.allow_concurrent_trades {
            let reason = "allows more than one trade per symbol, which needs signals.allow_concurrent_trades = true";
            return Err(c.invalid("risk.max_open_trades_per_symbol", &per_symbol, reason));
        }
    }
    let quotes: std::collections::BTreeSet<&str> = config
        .watchlist
        .iter()
        .map(|item| item.symbol.split_once('_').map_or("", |(_, quote)| quote))
        .collect();
    for asset in limits.daily_loss.keys() {
        if !quotes.contains(asset.as_str()) {
            let key = format!("risk.daily_loss_limit.{asset}");
            let shown: Vec<&str> = quotes.iter().copied().collect();
            let reason = format!(
                "no watchlist symbol is quoted in {asset} (they are quoted in {}): the limit would count nothing",
                shown.join(", ")
            );
            return Err(c.invalid(&key, &limits.daily_loss[asset], &reason));
        }
    }
    let Some(max) = limits.max_notional_per_order else {
        return Ok(());
    };
    if quotes.len() > 1 {
        let shown: Vec<&str> = quotes.iter().copied().collect();
        let reason = format!(
            "is one amount in each symbol's quote asset, and the watchlist is quoted in {}: size each symbol with its notional instead",
            shown.join(", ")
        );
        return Err(c.invalid("risk.max_notional_per_order", &max, &reason));
    }
    for (index, item) in config.watchlist.iter().enumerate() {
        if let super::Size::Notional(notional) = item.size {
            if notional > max {
                let key = format!("watchlist[{index}].notional");
                let reason = format!(
                    "is above risk.max_notional_per_order = {max}: every entry would be refused"
                );
                return Err(c.invalid(&key, &notional, &reason));
            }
        }
    }
    Ok(())
}

pub(super) fn to_raw(limits: &RiskLimits) -> RawRisk {
    let count = |value: Option<u32>| Some(RawLimit(value.map(|v| Num(Decimal::from(v)))));
    let amount = |value: Option<Decimal>| Some(RawLimit(value.map(Num)));
    RawRisk {
        max_open_trades: count(limits.max_open_trades),
        max_open_trades_per_symbol: count(limits.max_open_trades_per_symbol),
        max_notional_per_order: amount(limits.max_notional_per_order),
        cooldown_seconds: count(
            limits
                .cooldown_ms
                .and_then(|ms| u32::try_from(ms / 1000).ok()),
        ),
        max_entries_per_hour: count(limits.max_entries_per_hour),
        daily_loss_limit: limits
            .daily_loss
            .iter()
            .map(|(asset, limit)| (asset.clone(), RawLimit(Some(Num(*limit)))))
            .collect(),
    }
}

#[cfg(test)]
#[path = "risk_tests.rs"]
mod tests;
