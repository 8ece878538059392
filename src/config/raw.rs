//! The raw serde layer: every table denies unknown keys and every value is optional, so figment can
//! merge partial layers. Numbers and flags accept TOML values as well as environment strings. No
//! validation happens here beyond the shape of each value.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number from TOML (integer, float or string) or from the environment (string), kept exactly as
/// a `Decimal`. A float is converted through its shortest decimal text, never through f64
/// arithmetic, so `1.5` stays exactly `1.5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Num(pub Decimal);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.normalize(), f)
    }
}

fn parse_decimal(text: &str) -> Option<Decimal> {
    let text = text.trim();
    Decimal::from_str(text)
        .ok()
        .or_else(|| Decimal::from_scientific(text).ok())
}

impl Serialize for Num {
    /// Integers as TOML integers, values that survive a float round trip as floats, anything else as
    /// a string, so that a rendered configuration parses back to the same values.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = self.0.normalize();
        if value.fract().is_zero() {
            if let Ok(integer) = i64::try_from(value) {
                return serializer.serialize_i64(integer);
            }
        }
        let text = value.to_string();
        if let Ok(float) = text.parse::<f64>() {
            if parse_decimal(&float.to_string()) == Some(value) {
                return serializer.serialize_f64(float);
            }
        }
        serializer.serialize_str(&text)
    }
}

struct NumVisitor;

impl Visitor<'_> for NumVisitor {
    type Value = Num;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Num, E> {
        Ok(Num(Decimal::from(value)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Num, E> {
        Ok(Num(Decimal::from(value)))
    }

    fn visit_i128<E: de::Error>(self, value: i128) -> Result<Num, E> {
        Decimal::try_from_i128_with_scale(value, 0)
            .map(Num)
            .map_err(|_| E::custom(format!("number {value} is out of range")))
    }

    fn visit_u128<E: de::Error>(self, value: u128) -> Result<Num, E> {
        let signed = i128::try_from(value)
            .map_err(|_| E::custom(format!("number {value} is out of range")))?;
        self.visit_i128(signed)
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Num, E> {
        if !value.is_finite() {
            let shown = value.to_string().to_lowercase();
            return Err(E::custom(format!("{shown} is not a finite number")));
        }
        parse_decimal(&value.to_string())
            .map(Num)
            .ok_or_else(|| E::custom(format!("number {value} is out of range")))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Num, E> {
        parse_decimal(value)
            .map(Num)
            .ok_or_else(|| E::custom(format!("expected a number, found {value:?}")))
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Num, D::Error> {
        deserializer.deserialize_any(NumVisitor)
    }
}

/// A boolean from TOML or from the environment: `true`, `false`, `1` or `0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Flag(pub bool);

impl Serialize for Flag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bool(self.0)
    }
}

struct FlagVisitor;

impl Visitor<'_> for FlagVisitor {
    type Value = Flag;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("true, false, 1 or 0")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Flag, E> {
        Ok(Flag(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Flag, E> {
        match value {
            0 => Ok(Flag(false)),
            1 => Ok(Flag(true)),
            _ => Err(E::custom(format!(
                "expected true, false, 1 or 0, found {value}"
            ))),
        }
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Flag, E> {
        let signed = i64::try_from(value).unwrap_or(i64::MAX);
        self.visit_i64(signed)
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Flag, E> {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Flag(true)),
            "false" | "0" => Ok(Flag(false)),
            _ => Err(E::custom(format!(
                "expected true, false, 1 or 0, found {value:?}"
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Flag, D::Error> {
        deserializer.deserialize_any(FlagVisitor)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub venue: RawVenue,
    #[serde(default)]
    pub store: RawStore,
    #[serde(default)]
    pub metrics: RawMetrics,
    #[serde(default, rename = "loop")]
    pub loop_: RawLoop,
    #[serde(default)]
    pub poll: RawPoll,
    #[serde(default)]
    pub protection: RawProtection,
    #[serde(default)]
    pub failsafe: RawFailsafe,
    #[serde(default)]
    pub signals: RawSignals,
    #[serde(default)]
    pub paper: RawPaper,
    #[serde(default)]
    pub alerts: RawAlerts,
    #[serde(default)]
    pub risk: super::risk::RawRisk,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watchlist: Option<Vec<RawWatchItem>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVenue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_secret_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<Flag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taker_fee_rate: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_notional_fallback: Option<Num>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_retention_days: Option<Num>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetrics {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLoop {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_budget_seconds: Option<Num>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPoll {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_seconds: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_seconds: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_delay_seconds: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub growth: Option<Num>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProtection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reprotect_max: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_interval_seconds: Option<Num>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFailsafe {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_protection_error: Option<Flag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flatten: Option<Flag>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSignals {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_concurrent_trades: Option<Flag>,
    #[serde(default)]
    pub webhook: super::webhook::RawWebhook,
}

/// A text value that TOML may also write as an integer, such as a Telegram chat id
/// (`chat_id = -1001234567890`); kept as its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word(pub String);

impl Serialize for Word {
    /// Integers go back out as integers, so a rendered configuration reads as it was written.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.parse::<i64>() {
            Ok(integer) => serializer.serialize_i64(integer),
            Err(_) => serializer.serialize_str(&self.0),
        }
    }
}

struct WordVisitor;

impl Visitor<'_> for WordVisitor {
    type Value = Word;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an integer")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Word, E> {
        Ok(Word(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Word, E> {
        Ok(Word(value.to_string()))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Word, E> {
        Ok(Word(value.to_string()))
    }
}

impl<'de> Deserialize<'de> for Word {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Word, D::Error> {
        deserializer.deserialize_any(WordVisitor)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAlerts {
    #[serde(default)]
    pub telegram: RawTelegram,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelegram {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<Word>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWatchItem {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sma_fast: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sma_slow: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsi_period: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsi_oversold: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rsi_overbought: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakout_above: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakout_below: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeframe_seconds: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notional: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_loss_pct: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub take_profit_pct: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sides: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPaper {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill_delay_ms: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taker_fee_rate: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_seconds: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatility: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candles_csv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balances: Option<BTreeMap<String, Num>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruments: Option<Vec<RawInstrument>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInstrument {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_tick: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity_tick: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_quantity: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_notional: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_price: Option<Num>,
}
