//! The body of a webhook signal, `{id, symbol, side, quantity | notional, timestamp}`, read
//! strictly: an unknown field, a missing one or a value of the wrong shape is refused with the
//! field's name. Sizes are decimals read from their text (a JSON number's digits, never an
//! `f64`). Also the signal id's rules and its key in the inbox, which `fillguard signal --id`
//! shares, so one id names one signal whatever its source. Reads no clock and no store.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use crate::core::domain::Side;

/// Longest signal id accepted.
pub const ID_LENGTH_MAX: usize = 64;
/// Prefix of an external signal id's `dedup_key` in the inbox: the webhook and
/// `fillguard signal --id` share it, and strategy keys (`sma_cross:…`) never start with it.
pub const ID_KEY_PREFIX: &str = "id:";
/// Integer timestamps at or above this are milliseconds (10^11 seconds is the year 5138).
const MILLISECONDS_FROM: i64 = 100_000_000_000;
const FIELDS: [&str; 6] = ["id", "symbol", "side", "quantity", "notional", "timestamp"];

/// A signal as the body states it; the receiver checks its time and identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub id: String,
    pub symbol: String,
    pub side: Side,
    /// Exactly one of the two is set, and it is greater than zero.
    pub quantity: Option<Decimal>,
    pub notional: Option<Decimal>,
    /// When the sender made the signal, in Unix milliseconds.
    pub timestamp_ms: i64,
}

/// Why a body was refused: the field and a sentence about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    pub field: String,
    pub reason: String,
}

fn malformed(field: &str, reason: impl Into<String>) -> Malformed {
    Malformed {
        field: field.to_string(),
        reason: reason.into(),
    }
}

/// Reads a body; `watchlist` holds the symbols a signal may name.
pub fn parse(body: &[u8], watchlist: &[String]) -> Result<Payload, Malformed> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| malformed("body", format!("not JSON: {error}")))?;
    let Value::Object(object) = value else {
        return Err(malformed("body", "must be a JSON object"));
    };
    // serde_json keeps the last of two equal keys; another reader may keep the first. A body
    // that can mean two things is refused, naming the key.
    if let Some(repeated) = repeated_key(body) {
        return Err(malformed(&bounded(&repeated), "appears twice in the body"));
    }
    if let Some(unknown) = object.keys().find(|key| !FIELDS.contains(&key.as_str())) {
        // The name is the sender's text: shown only in a bounded, printable form.
        return Err(malformed(
            &bounded(unknown),
            format!("is not a field; the fields are {}", FIELDS.join(", ")),
        ));
    }
    let id = text(&object, "id")?;
    check_id(id).map_err(|reason| malformed("id", reason))?;
    let symbol = text(&object, "symbol")?;
    if !watchlist.iter().any(|known| known == symbol) {
        return Err(malformed(
            "symbol",
            format!("{:?} is not on the watchlist", bounded(symbol)),
        ));
    }
    let side = side(text(&object, "side")?)?;
    let (quantity, notional) = match (object.get("quantity"), object.get("notional")) {
        (Some(_), Some(_)) => {
            return Err(malformed("notional", "give quantity or notional, not both"));
        }
        (None, None) => return Err(malformed("quantity", "quantity or notional is required")),
        (Some(value), None) => (Some(size("quantity", value)?), None),
        (None, Some(value)) => (None, Some(size("notional", value)?)),
    };
    let timestamp_ms = timestamp(object.get("timestamp"))?;
    Ok(Payload {
        id: id.to_string(),
        symbol: symbol.to_string(),
        side,
        quantity,
        notional,
        timestamp_ms,
    })
}

/// The first top-level key the body's object holds twice, if any.
fn repeated_key(body: &[u8]) -> Option<String> {
    struct Keys(Option<String>);
    struct KeysVisitor;
    impl<'de> serde::de::Visitor<'de> for KeysVisitor {
        type Value = Keys;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Keys, A::Error> {
            // The whole map is read (a reader that stops early fails the parse).
            let (mut seen, mut repeated) = (Vec::<String>::new(), None);
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                if seen.contains(&key) {
                    repeated.get_or_insert(key);
                } else if seen.len() < FIELDS.len() * 4 {
                    seen.push(key);
                }
            }
            Ok(Keys(repeated))
        }
    }
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Keys, D::Error> {
            deserializer.deserialize_map(KeysVisitor)
        }
    }
    serde_json::from_slice::<Keys>(body)
        .ok()
        .and_then(|keys| keys.0)
}

/// An id is 1 to 64 letters, digits and `-`, `_`, `.`, `:`, `/`, `@`: what scripts and
/// TradingView's placeholders produce, and nothing that needs escaping in a log line.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > ID_LENGTH_MAX {
        return Err(format!("must be 1 to {ID_LENGTH_MAX} characters"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.:/@".contains(c);
    if !id.chars().all(allowed) {
        return Err("may hold only letters, digits and - _ . : / @".to_string());
    }
    Ok(())
}

/// The inbox's `dedup_key` of an external signal id (checked with [`check_id`] first).
pub fn id_key(id: &str) -> String {
    format!("{ID_KEY_PREFIX}{id}")
}

fn text<'a>(object: &'a Map<String, Value>, field: &'static str) -> Result<&'a str, Malformed> {
    match object.get(field) {
        Some(Value::String(text)) => Ok(text.trim()),
        Some(_) => Err(malformed(field, "must be a string")),
        None => Err(malformed(field, "is required")),
    }
}

fn side(text: &str) -> Result<Side, Malformed> {
    if text.eq_ignore_ascii_case("buy") {
        Ok(Side::Buy)
    } else if text.eq_ignore_ascii_case("sell") {
        Ok(Side::Sell)
    } else {
        Err(malformed(
            "side",
            format!("{:?} is not BUY or SELL", bounded(text)),
        ))
    }
}

/// A size from a JSON string or number, read from its text as a decimal.
fn size(field: &'static str, value: &Value) -> Result<Decimal, Malformed> {
    let text = match value {
        Value::String(text) => text.trim().to_string(),
        // With serde_json's arbitrary precision, a number's text is the sender's digits.
        Value::Number(number) => number.to_string(),
        _ => {
            return Err(malformed(
                field,
                "must be a decimal number or a string of one",
            ));
        }
    };
    let parsed = Decimal::from_str(&text)
        .ok()
        .or_else(|| Decimal::from_scientific(&text).ok());
    match parsed {
        Some(size) if size > Decimal::ZERO => Ok(size.normalize()),
        Some(_) => Err(malformed(field, "must be greater than zero")),
        None => Err(malformed(
            field,
            format!("{:?} is not a decimal number", bounded(&text)),
        )),
    }
}

/// Unix seconds or milliseconds as an integer (or a string of digits), or an RFC 3339 time in
/// UTC such as TradingView's `{{timenow}}` (`2026-11-30T12:00:00Z`).
fn timestamp(value: Option<&Value>) -> Result<i64, Malformed> {
    let field = "timestamp";
    let text = match value {
        None => return Err(malformed(field, "is required")),
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::String(text)) => text.trim().to_string(),
        Some(_) => return Err(malformed(field, "must be Unix seconds or an RFC 3339 time")),
    };
    if let Ok(integer) = text.parse::<i64>() {
        if integer <= 0 {
            return Err(malformed(field, "must be after 1970"));
        }
        return Ok(if integer >= MILLISECONDS_FROM {
            integer
        } else {
            integer.saturating_mul(1000)
        });
    }
    // Seconds with a fraction (`1800000000.25`, as `time.time()` gives): to the millisecond.
    if let Ok(seconds) = Decimal::from_str(&text) {
        let millis = seconds
            .checked_mul(Decimal::from(1000))
            .map(|value| value.floor())
            .and_then(|value| i64::try_from(value).ok())
            .filter(|value| *value > 0 && *value < MILLISECONDS_FROM * 1000);
        return millis.ok_or_else(|| malformed(field, "must be Unix seconds after 1970"));
    }
    rfc3339_ms(&text).ok_or_else(|| {
        malformed(
            field,
            format!(
                "{:?} is not Unix seconds or an RFC 3339 time like 2026-11-30T12:00:00Z",
                bounded(&text)
            ),
        )
    })
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+00:00)` → Unix milliseconds; other offsets are refused
/// (senders give UTC; a local offset is a likelier mistake than a feature).
pub fn rfc3339_ms(text: &str) -> Option<i64> {
    let rest = text
        .strip_suffix('Z')
        .or_else(|| text.strip_suffix('z'))
        .or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = rest.split_once(['T', 't', ' '])?;
    let (clock, fraction) = match time.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (time, None),
    };
    let number = |part: &str, digits: usize| -> Option<i64> {
        (part.len() == digits && part.bytes().all(|b| b.is_ascii_digit()))
            .then(|| part.parse().ok())?
    };
    let mut date_parts = date.split('-');
    let year = number(date_parts.next()?, 4)?;
    let month = number(date_parts.next()?, 2)?;
    let day = number(date_parts.next()?, 2)?;
    let mut clock_parts = clock.split(':');
    let hour = number(clock_parts.next()?, 2)?;
    let minute = number(clock_parts.next()?, 2)?;
    let second = number(clock_parts.next()?, 2)?;
    if date_parts.next().is_some() || clock_parts.next().is_some() {
        return None;
    }
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 61;
    if !valid {
        return None;
    }
    let millis = match fraction {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{digits:0<3}");
            padded[..3].parse::<i64>().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The sender's text in a reason: at most 32 characters, no control characters.
fn bounded(text: &str) -> String {
    text.chars().take(32).filter(|c| !c.is_control()).collect()
}
