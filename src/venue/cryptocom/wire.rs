//! Parsing of Crypto.com Exchange v1 answers (reference §3, §4): the response envelope, the
//! mapping of error codes to `VenueError`, and the rows of every endpoint the venue reads.
//! Tolerant where the API is (numbers or digit strings, unknown fields, `result.data`
//! wrappers, rows of orders placed by hand with types fillguard never places); strict where a
//! wrong guess would be unsafe: in a row that could be fillguard's, an unknown status, side or
//! order type, an unparsable quantity or price, or a missing order id is `Malformed`, naming the
//! field. Decimals are read exactly from their text, JSON numbers included, never through `f64`.
//! Pure functions: no IO, no clock.

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

use super::history::HistoryPage;
use crate::core::domain::{Candle, Millis, OrderReport, OrderType, Side, VenueStatus};
use crate::core::ids::CLIENT_OID_PREFIX;
use crate::venue::VenueError;

/// Most characters of an unreadable body quoted in an error message.
const BODY_QUOTE_CHARS_MAX: usize = 200;

/// Exchange codes that are documented (reference §3.1 and the S3-only codes the agent can meet).
/// A non-zero code outside this list on an HTTP 5xx answer is treated as a server error: the
/// request may have taken effect, so it must not be read as a clean rejection.
const KNOWN_CODES: &[i64] = &[
    204, 205, 208, 209, 212, 213, 218, 219, 220, 221, 223, 224, 229, 230, 306, 307, 308, 309, 314,
    315, 316, 318, 321, 415, 416, 606, 1110, 40001, 40002, 40003, 40004, 40005, 40006, 40101,
    40102, 40103, 40104, 40107, 40401, 40801, 42901, 43003, 43004, 43005, 43012, 50001, 50002,
    50007, 50010, 120009, 130008, 140001,
];

pub(super) const CODE_NOT_FOUND: i64 = 40401;
pub(super) const CODE_TOO_MANY_REQUESTS: i64 = 42901;
pub(super) const CODE_DUPLICATE_CLIENT_OID: i64 = 204;
pub(super) const CODE_BELOW_MIN_ORDER_SIZE: i64 = 415;
pub(super) const CODE_INVALID_ORDER_ID: i64 = 212;
pub(super) const CODE_INVALID_INSTRUMENT: i64 = 209;
pub(super) const CODE_INVALID_ARGUMENT: i64 = 40004;
/// REQUEST_TIMEOUT (HTTP 408): the exchange gave up on the request, which may still have been
/// processed, so it is reported as a timeout (ambiguous), never as a rejection.
const CODE_REQUEST_TIMEOUT: i64 = 40801;
const AUTH_CODES: [i64; 4] = [40101, 40102, 40103, 40104];
/// ERR_INTERNAL: the exchange failed somewhere inside; the request may have taken effect.
const CODE_INTERNAL_ERROR: i64 = 50001;

fn malformed(text: impl Into<String>) -> VenueError {
    VenueError::Malformed(text.into())
}

fn quote(body: &str) -> String {
    body.chars().take(BODY_QUOTE_CHARS_MAX).collect()
}

/// The `result` of an answer, or the error it stands for. `client_oid` names the order of a
/// create call, for `DuplicateClientOid`.
pub(super) fn parse_envelope(
    http_status: u16,
    body: &str,
    client_oid: Option<&str>,
) -> Result<Value, VenueError> {
    let success_status = (200..300).contains(&http_status);
    let envelope: Value = match serde_json::from_str(body) {
        Ok(value @ Value::Object(_)) => value,
        Ok(_) | Err(_) => return Err(status_error(http_status, body, success_status)),
    };
    let code = match envelope.get("code").map(parse_integer) {
        Some(Some(code)) => code,
        Some(None) => return Err(malformed(format!("unreadable code in {}", quote(body)))),
        None if success_status => return Err(malformed(format!("no code in {}", quote(body)))),
        None => return Err(status_error(http_status, body, false)),
    };
    if http_status == 429 {
        return Err(VenueError::RateLimited(message_of(&envelope)));
    }
    if code == 0 {
        if !success_status {
            return Err(status_error(http_status, body, false));
        }
        return Ok(envelope.get("result").cloned().unwrap_or(Value::Null));
    }
    let internal = http_status >= 500 && code == CODE_INTERNAL_ERROR;
    if internal || (http_status >= 500 && !KNOWN_CODES.contains(&code)) {
        return Err(VenueError::Server {
            status: http_status,
            message: format!("code {code}: {}", message_of(&envelope)),
        });
    }
    Err(code_error(code, message_of(&envelope), client_oid))
}

/// The error of an answer without a readable envelope.
fn status_error(http_status: u16, body: &str, success_status: bool) -> VenueError {
    if http_status == 429 {
        return VenueError::RateLimited(format!("http 429: {}", quote(body)));
    }
    if success_status {
        return malformed(format!("not a JSON object: {}", quote(body)));
    }
    // Any other status without a code, 4xx included, may come from a proxy in front of an
    // exchange that did act: reported as a server error, which callers treat as ambiguous.
    VenueError::Server {
        status: http_status,
        message: quote(body),
    }
}

fn message_of(envelope: &Value) -> String {
    envelope
        .get("message")
        .and_then(text_of)
        .unwrap_or_default()
}

/// The `VenueError` of a non-zero exchange code (reference §3).
pub(super) fn code_error(code: i64, message: String, client_oid: Option<&str>) -> VenueError {
    match code {
        CODE_TOO_MANY_REQUESTS => VenueError::RateLimited(format!("code {code}: {message}")),
        CODE_NOT_FOUND => VenueError::NotFound,
        CODE_DUPLICATE_CLIENT_OID => {
            VenueError::DuplicateClientOid(client_oid.unwrap_or_default().to_string())
        }
        CODE_REQUEST_TIMEOUT => VenueError::Timeout(format!("code {code}: {message}")),
        code if AUTH_CODES.contains(&code) => VenueError::Auth { code, message },
        CODE_BELOW_MIN_ORDER_SIZE => VenueError::BelowMinimum { code, message },
        code => VenueError::Rejected { code, message },
    }
}

/// A JSON string as is, a JSON number by its text (u64 digits preserved).
pub(super) fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// An integer sent as a JSON number or a digit string.
pub(super) fn parse_integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// Largest magnitude accepted for any decimal from the exchange. Real prices, quantities and
/// balances are far below it, and bounding them keeps sums and differences far from `Decimal`'s
/// range. Products are not safe: 10^15 × 10^15 is beyond `Decimal::MAX` (about 7.9 × 10^28), so
/// every product or quotient of exchange values (`quantity × price` in normalization) is computed
/// with checked arithmetic and an overflow is an error, never a panic.
const DECIMAL_MAGNITUDE_MAX: Decimal = Decimal::from_parts(2_764_472_320, 232_830, 0, false, 0);
const _: () = assert!(DECIMAL_MAGNITUDE_MAX.is_sign_positive());

/// Largest exponent magnitude of a decimal in exponent form ("1.5e-8"); `Decimal` holds at most
/// 28 fractional digits, and anything above 10^15 is refused anyway.
const EXPONENT_MAGNITUDE_MAX: u32 = 28;

/// A decimal sent as a string ("0.0", "-2.5", "1e-8") or a JSON number, read exactly from its
/// text (JSON numbers keep their literal text: serde_json's `arbitrary_precision`). Text that
/// `Decimal` cannot hold exactly (more than 28 fractional digits, an exponent out of range) and
/// magnitudes above `DECIMAL_MAGNITUDE_MAX` are `None`, never rounded.
pub(super) fn parse_decimal(value: &Value) -> Option<Decimal> {
    let text = text_of(value)?;
    exact_decimal(text.trim()).filter(|decimal| decimal.abs() <= DECIMAL_MAGNITUDE_MAX)
}

fn exact_decimal(text: &str) -> Option<Decimal> {
    // `Decimal`'s parser also accepts '_' separators, which no number on the wire has.
    if text.contains('_') {
        return None;
    }
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return Decimal::from_str_exact(text).ok();
    };
    let mantissa = Decimal::from_str_exact(mantissa).ok()?;
    let exponent: i64 = exponent.parse().ok()?;
    let magnitude = u32::try_from(exponent.unsigned_abs()).ok()?;
    if magnitude > EXPONENT_MAGNITUDE_MAX {
        return None;
    }
    if exponent < 0 {
        let mut scaled = mantissa.normalize();
        let scale = scaled.scale().checked_add(magnitude)?;
        scaled.set_scale(scale).ok()?;
        return Some(scaled);
    }
    let power = Decimal::from_i128_with_scale(10_i128.checked_pow(magnitude)?, 0);
    mantissa.checked_mul(power)
}

#[cfg(test)]
mod magnitude_tests {
    use super::*;

    #[test]
    fn decimals_beyond_the_magnitude_bound_are_not_accepted() {
        assert_eq!(
            DECIMAL_MAGNITUDE_MAX,
            Decimal::from(1_000_000_000_000_000_i64)
        );
        assert!(parse_decimal(&Value::String("1000000000000000".into())).is_some());
        assert!(parse_decimal(&Value::String("70000000000000000000000000000".into())).is_none());
        assert!(parse_decimal(&Value::String("-1e20".into())).is_none());
    }

    #[test]
    fn exponent_forms_are_exact_or_refused() {
        let parse = |text: &str| parse_decimal(&Value::String(text.into()));
        assert_eq!(parse("1.5e-8"), Decimal::from_str("0.000000015").ok());
        assert_eq!(parse("25E+2"), Some(Decimal::from(2500)));
        assert_eq!(parse("1.5e-30"), None, "31 fractional digits");
        assert_eq!(parse("1e400"), None);
        assert_eq!(parse("1e-99999999999999999999"), None);
        assert_eq!(parse("0.00000000000000000000000000001"), None, "29 digits");
        assert_eq!(parse("1_000"), None);
    }
}

fn required_text(row: &Value, field: &str, what: &str) -> Result<String, VenueError> {
    match row.get(field) {
        Some(value) => text_of(value).ok_or_else(|| malformed(format!("{what}: bad {field}"))),
        None => Err(malformed(format!("{what}: no {field}"))),
    }
}

fn required_decimal(row: &Value, field: &str, what: &str) -> Result<Decimal, VenueError> {
    optional_decimal(row, field, what)?.ok_or_else(|| malformed(format!("{what}: no {field}")))
}

/// `None` when absent or null; `Malformed` when present but not a decimal.
fn optional_decimal(row: &Value, field: &str, what: &str) -> Result<Option<Decimal>, VenueError> {
    match row.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => parse_decimal(value)
            .map(Some)
            .ok_or_else(|| malformed(format!("{what}: unparsable {field} {value}"))),
    }
}

/// A price field where "0" means "none" (MARKET orders, non-trigger orders).
fn optional_price(row: &Value, field: &str, what: &str) -> Result<Option<Decimal>, VenueError> {
    Ok(optional_decimal(row, field, what)?.filter(|price| !price.is_zero()))
}

/// The rows of a list answer: `result.data[]`, or `result` itself when it is an array.
pub(super) fn rows(result: &Value, what: &str) -> Result<Vec<Value>, VenueError> {
    match result {
        Value::Array(items) => Ok(items.clone()),
        Value::Object(map) => match map.get("data") {
            Some(Value::Array(items)) => Ok(items.clone()),
            _ => Err(malformed(format!("{what}: no result.data list"))),
        },
        _ => Err(malformed(format!("{what}: no result"))),
    }
}

/// The one object of a detail answer: `result`, or a `result.data` wrapper around it.
pub(super) fn single(result: &Value, what: &str) -> Result<Value, VenueError> {
    match result.get("data") {
        Some(inner @ Value::Object(_)) => Ok(inner.clone()),
        Some(Value::Array(items)) if items.len() == 1 => items
            .first()
            .cloned()
            .ok_or_else(|| malformed(format!("{what}: empty result.data"))),
        _ if result.is_object() => Ok(result.clone()),
        _ => Err(malformed(format!("{what}: no result object"))),
    }
}

/// One order row (get-order-detail, get-open-orders, get-order-history, advanced variants).
pub(super) fn order_report(row: &Value) -> Result<OrderReport, VenueError> {
    let order_id = required_text(row, "order_id", "order")?;
    let what = format!("order {order_id}");
    let what = what.as_str();
    let type_field = if row.get("order_type").is_some() {
        "order_type"
    } else {
        "type"
    };
    Ok(OrderReport {
        client_oid: row.get("client_oid").and_then(text_of).unwrap_or_default(),
        symbol: required_text(row, "instrument_name", what)?,
        side: Side::from_str(&required_text(row, "side", what)?)
            .map_err(|error| malformed(format!("{what}: {error}")))?,
        order_type: OrderType::from_str(&required_text(row, type_field, what)?)
            .map_err(|error| malformed(format!("{what}: {error}")))?,
        status: VenueStatus::from_str(&required_text(row, "status", what)?)
            .map_err(|error| malformed(format!("{what}: {error}")))?,
        quantity: required_decimal(row, "quantity", what)?,
        price: optional_price(row, "limit_price", what)?,
        trigger_price: trigger_price(row, what)?,
        cumulative_quantity: required_decimal(row, "cumulative_quantity", what)?,
        avg_price: optional_decimal(row, "avg_price", what)?.unwrap_or(Decimal::ZERO),
        cumulative_fee: optional_decimal(row, "cumulative_fee", what)?.unwrap_or(Decimal::ZERO),
        fee_currency: row
            .get("fee_instrument_name")
            .and_then(text_of)
            .unwrap_or_default(),
        list_id: row
            .get("list_id")
            .and_then(text_of)
            .filter(|id| !id.is_empty()),
        reason: row
            .get("reason")
            .and_then(parse_integer)
            .filter(|code| *code != 0),
        update_time_ms: update_time(row, what)?,
        order_id,
    })
}

/// `ref_price`, or the legacy `trigger_price` field; "0" means none.
fn trigger_price(row: &Value, what: &str) -> Result<Option<Decimal>, VenueError> {
    match optional_price(row, "ref_price", what)? {
        Some(price) => Ok(Some(price)),
        None => optional_price(row, "trigger_price", what),
    }
}

/// `update_time` in ms, else `create_time` (real data has update before create: not checked).
fn update_time(row: &Value, what: &str) -> Result<Millis, VenueError> {
    for field in ["update_time", "create_time"] {
        if let Some(value) = row.get(field) {
            return parse_integer(value)
                .ok_or_else(|| malformed(format!("{what}: unparsable {field} {value}")));
        }
    }
    Err(malformed(format!("{what}: no update_time")))
}

/// The rows of an order list, and how many were left out. A row that could be fillguard's (its
/// client_oid carries fillguard's prefix, or it has no readable client_oid) is read strictly: a
/// malformed one fails the whole list. Any other row that cannot be read — an order type
/// fillguard never places (STOP_LIMIT, TAKE_PROFIT_LIMIT, a type added later), or a field it
/// does not understand — belongs to an order placed by hand or by another program, which
/// fillguard leaves alone: it is left out of the list instead of failing it.
pub(super) fn order_reports(
    result: &Value,
    what: &str,
) -> Result<(Vec<OrderReport>, usize), VenueError> {
    let mut reports = Vec::new();
    let mut skipped = 0;
    for row in rows(result, what)? {
        match order_report(&row) {
            Ok(report) => reports.push(report),
            Err(_) if is_foreign(&row) => skipped += 1,
            Err(error) => return Err(error),
        }
    }
    Ok((reports, skipped))
}

/// One answer of a history endpoint: its orders (read as `order_reports` does), how many rows
/// it had and the creation time of its oldest row, which the next page ends at.
pub(super) fn history_page(result: &Value, what: &str) -> Result<HistoryPage, VenueError> {
    let all_rows = rows(result, what)?;
    let oldest_created_ms = all_rows.iter().filter_map(created_ms).min();
    let (reports, _) = order_reports(result, what)?;
    Ok(HistoryPage {
        reports,
        rows: all_rows.len(),
        oldest_created_ms,
    })
}

/// Times above this are nanoseconds: ms values stay below it until the year 5138.
const NANOSECOND_TIMES_ABOVE: Millis = 100_000_000_000_000;
const NANOSECONDS_PER_MS: Millis = 1_000_000;

/// When a row's order was created, in ms: `create_time_ns`, else `create_time`, else
/// `update_time`; each read as ms or ns by its size, since both forms occur (reference §4.8).
fn created_ms(row: &Value) -> Option<Millis> {
    ["create_time_ns", "create_time", "update_time"]
        .iter()
        .find_map(|field| row.get(*field).and_then(parse_integer))
        .map(|time| {
            if time > NANOSECOND_TIMES_ABOVE {
                time.div_euclid(NANOSECONDS_PER_MS)
            } else {
                time
            }
        })
}

/// True when a row names a client_oid that fillguard never gives (one without its prefix).
/// The exchange fills in a client_oid for orders sent without one, so every real row has one.
fn is_foreign(row: &Value) -> bool {
    row.get("client_oid")
        .and_then(text_of)
        .is_some_and(|client_oid| !client_oid.starts_with(CLIENT_OID_PREFIX))
}

/// `order_id` of a create answer; `client_oid` from the answer, else the one sent.
pub(super) fn order_ack(result: &Value, client_oid: &str) -> Result<(String, String), VenueError> {
    let ack = single(result, "create-order")?;
    let order_id = required_text(&ack, "order_id", "create-order")?;
    let echoed = ack.get("client_oid").and_then(text_of);
    Ok((order_id, echoed.unwrap_or_else(|| client_oid.to_string())))
}

/// `list_id` of a create-oco / create-otoco answer, as a JSON number (> 2^53) or a string.
pub(super) fn list_id(result: &Value) -> Result<String, VenueError> {
    let ack = single(result, "create list")?;
    required_text(&ack, "list_id", "create list")
}

/// One row of `public/get-instruments`, the fields the venue uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InstrumentRow {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub price_tick: Decimal,
    pub quantity_tick: Decimal,
}

pub(super) fn instrument_row(row: &Value) -> Result<InstrumentRow, VenueError> {
    let symbol = required_text(row, "symbol", "instrument")?;
    let what = format!("instrument {symbol}");
    let what = what.as_str();
    Ok(InstrumentRow {
        base: required_text(row, "base_ccy", what)?,
        quote: required_text(row, "quote_ccy", what)?,
        price_tick: required_tick(row, "price_tick_size", what)?,
        quantity_tick: required_tick(row, "qty_tick_size", what)?,
        symbol,
    })
}

/// A tick size; a negative one has no meaning and would trip the normalizer's assertion.
fn required_tick(row: &Value, field: &str, what: &str) -> Result<Decimal, VenueError> {
    let tick = required_decimal(row, field, what)?;
    if tick.is_sign_negative() && !tick.is_zero() {
        return Err(malformed(format!("{what}: negative {field} {tick}")));
    }
    Ok(tick)
}

/// `min_order_notional_usd` per base currency of `public/get-risk-parameters`. Rows without a
/// readable minimum are left out (the configured fallback applies to them).
pub(super) fn min_notionals(result: &Value) -> Result<Vec<(String, Decimal)>, VenueError> {
    let Some(Value::Array(configs)) = result.get("base_currency_config") else {
        return Err(malformed(
            "get-risk-parameters: no base_currency_config list",
        ));
    };
    Ok(configs
        .iter()
        .filter_map(|config| {
            let currency = config.get("instrument_name").and_then(text_of)?;
            let minimum = config
                .get("min_order_notional_usd")
                .and_then(parse_decimal)?;
            Some((currency, minimum))
        })
        .collect())
}

/// Last trade price `a` of the ticker row of `symbol` (`public/get-tickers`).
pub(super) fn last_price(result: &Value, symbol: &str) -> Result<Decimal, VenueError> {
    let tickers = rows(result, "get-tickers")?;
    let row = tickers
        .iter()
        .find(|row| row.get("i").and_then(text_of).as_deref() == Some(symbol))
        .ok_or_else(|| malformed(format!("get-tickers: no row for {symbol}")))?;
    optional_decimal(row, "a", "get-tickers")?
        .ok_or_else(|| malformed(format!("get-tickers: no last price for {symbol}")))
}

/// Candles of `public/get-candlestick`, sorted by open time, the still-open one (open time +
/// timeframe after `now_ms`) dropped.
pub(super) fn closed_candles(
    result: &Value,
    timeframe_ms: Millis,
    now_ms: Millis,
) -> Result<Vec<Candle>, VenueError> {
    let mut candles = rows(result, "get-candlestick")?
        .iter()
        .map(candle)
        .collect::<Result<Vec<_>, _>>()?;
    candles.sort_by_key(|candle| candle.open_time_ms);
    candles.dedup_by_key(|candle| candle.open_time_ms);
    if candles
        .last()
        .is_some_and(|last| last.open_time_ms.saturating_add(timeframe_ms) > now_ms)
    {
        candles.pop();
    }
    Ok(candles)
}

fn candle(row: &Value) -> Result<Candle, VenueError> {
    let what = "candle";
    let open_time_ms = row
        .get("t")
        .and_then(parse_integer)
        .ok_or_else(|| malformed("candle: no t"))?;
    Ok(Candle {
        open_time_ms,
        open: required_decimal(row, "o", what)?,
        high: required_decimal(row, "h", what)?,
        low: required_decimal(row, "l", what)?,
        close: required_decimal(row, "c", what)?,
    })
}

/// Free balance of `asset` in `private/user-balance`: `quantity − reserved_qty` of its
/// `position_balances` row; no row means zero.
pub(super) fn free_balance(result: &Value, asset: &str) -> Result<Decimal, VenueError> {
    let accounts = rows(result, "user-balance")?;
    let account = accounts
        .first()
        .ok_or_else(|| malformed("user-balance: empty result.data"))?;
    let Some(Value::Array(balances)) = account.get("position_balances") else {
        return Err(malformed("user-balance: no position_balances list"));
    };
    let Some(row) = balances
        .iter()
        .find(|row| row.get("instrument_name").and_then(text_of).as_deref() == Some(asset))
    else {
        return Ok(Decimal::ZERO);
    };
    let what = format!("user-balance {asset}");
    let quantity = required_decimal(row, "quantity", &what)?;
    let reserved = optional_decimal(row, "reserved_qty", &what)?.unwrap_or(Decimal::ZERO);
    quantity
        .checked_sub(reserved)
        .ok_or_else(|| malformed(format!("{what}: quantity less reserved_qty overflows")))
}
