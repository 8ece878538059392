//! The Crypto.com Exchange v1 wire format as the simulator speaks it: response envelopes, the
//! HTTP status of each error code (reference §3.1), strict parsing of request params into an
//! `OrderRequest`, and order objects (reference §4). Pure functions over `serde_json` values.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::core::domain::{Millis, OrderReport, OrderRequest, OrderType, Side};
use crate::venue::paper::engine::{
    CODE_INVALID_ARGUMENT, CODE_INVALID_PRICE, CODE_INVALID_QUANTITY, CODE_INVALID_REFERENCE_PRICE,
    EngineReject,
};

pub const CODE_BAD_REQUEST: i64 = 40001;
pub const CODE_METHOD_NOT_FOUND: i64 = 40002;
pub const CODE_INVALID_REQUEST: i64 = 40003;
pub const CODE_UNAUTHORIZED: i64 = 40101;
pub const CODE_INVALID_NONCE: i64 = 40102;
pub const CODE_NOT_FOUND: i64 = 40401;
pub const CODE_TOO_MANY_REQUESTS: i64 = 42901;
pub const CODE_INTERNAL: i64 = 50001;
pub const CODE_INVALID_ORDER_TYPE: i64 = 218;
pub const CODE_INVALID_SIDE: i64 = 220;

/// Longest decimal text accepted in a param (more digits than a `Decimal` holds anyway).
const DECIMAL_TEXT_LENGTH_MAX: usize = 40;

/// An error answer: the JSON `code`, a message, and the HTTP status it travels with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: i64,
    pub message: String,
}

impl ApiError {
    pub fn new(code: i64, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> u16 {
        http_status(self.code)
    }
}

impl From<EngineReject> for ApiError {
    fn from(reject: EngineReject) -> ApiError {
        ApiError::new(reject.code, reject.message)
    }
}

/// The HTTP status Crypto.com sends with `code` (reference §3.1); unlisted codes get 400.
pub fn http_status(code: i64) -> u16 {
    match code {
        0 | CODE_NOT_FOUND | 43012 => 200,
        CODE_UNAUTHORIZED | 40103 | 40104 => 401,
        40801 => 408,
        CODE_TOO_MANY_REQUESTS => 429,
        205 | 212 | 219 | 306 | 307 | 309 | 316 | 321 | 415 | 606 | 43003 | 43004 | 43005
        | 120009 | 130008 => 500,
        _ => 400,
    }
}

/// The account id every order and trade row carries.
pub const ACCOUNT_ID: &str = "00000000-0000-0000-0000-000000000001";

/// A success answer; a `null` result is left out (`cancel-all-orders` has no result block).
pub fn success_body(id: &Value, method: &str, result: Value) -> String {
    if result.is_null() {
        return json!({"id": id, "method": method, "code": 0}).to_string();
    }
    json!({"id": id, "method": method, "code": 0, "result": result}).to_string()
}

pub fn error_body(id: &Value, method: &str, error: &ApiError) -> String {
    json!({"id": id, "method": method, "code": error.code, "message": error.message}).to_string()
}

/// A decimal as a plain string without trailing zeros or exponent.
pub fn decimal_text(value: Decimal) -> String {
    value.normalize().to_string()
}

/// Strict decimal syntax: digits, optionally one point followed by digits. No sign, exponent,
/// spaces or leading point.
pub fn parse_decimal_strict(text: &str) -> Option<Decimal> {
    if text.is_empty() || text.len() > DECIMAL_TEXT_LENGTH_MAX {
        return None;
    }
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    Decimal::from_str_exact(text).ok()
}

/// A decimal param that must be a JSON string: absent or null is `None`; a JSON number is
/// answered with `number_code`, any other malformed value with `bad_code`.
pub fn decimal_param(
    params: &Map<String, Value>,
    name: &str,
    number_code: i64,
    bad_code: i64,
) -> Result<Option<Decimal>, ApiError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => parse_decimal_strict(text)
            .map(Some)
            .ok_or_else(|| ApiError::new(bad_code, format!("{name} {text:?} is not a decimal"))),
        Some(Value::Number(_)) => Err(ApiError::new(
            number_code,
            format!("{name} must be sent as a string"),
        )),
        Some(_) => Err(ApiError::new(bad_code, format!("{name} is not a decimal"))),
    }
}

/// An optional string param; a non-string value is 40004.
pub fn string_param<'a>(
    params: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, ApiError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(ApiError::new(
            CODE_INVALID_ARGUMENT,
            format!("{name} must be a string"),
        )),
    }
}

/// An id param (`order_id`, `list_id`) given as a string or a whole number.
pub fn id_param(params: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match params.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.clone())),
        Some(Value::Number(number)) if number.is_u64() => Ok(Some(number.to_string())),
        Some(_) => Err(ApiError::new(
            CODE_INVALID_ARGUMENT,
            format!("{name} must be a string"),
        )),
    }
}

fn required<'a>(params: &'a Map<String, Value>, name: &str) -> Result<&'a str, ApiError> {
    string_param(params, name)?
        .ok_or_else(|| ApiError::new(CODE_INVALID_ARGUMENT, format!("{name} is required")))
}

fn parse_side(text: &str) -> Result<Side, ApiError> {
    match text {
        "BUY" => Ok(Side::Buy),
        "SELL" => Ok(Side::Sell),
        _ => Err(ApiError::new(
            CODE_INVALID_SIDE,
            format!("bad side {text:?}"),
        )),
    }
}

fn parse_order_type(text: &str) -> Result<OrderType, ApiError> {
    match text {
        "MARKET" => Ok(OrderType::Market),
        "LIMIT" => Ok(OrderType::Limit),
        "STOP_LOSS" => Ok(OrderType::StopLoss),
        "TAKE_PROFIT" => Ok(OrderType::TakeProfit),
        "STOP_LIMIT" | "TAKE_PROFIT_LIMIT" => Err(ApiError::new(
            CODE_INVALID_ORDER_TYPE,
            format!("order type {text} is not simulated"),
        )),
        _ => Err(ApiError::new(
            CODE_INVALID_ORDER_TYPE,
            format!("bad order type {text:?}"),
        )),
    }
}

/// The order one `create-order` params object (or one `order_list` leg) asks for. Fields an
/// order type does not use are ignored, as the exchange does (a MARKET `price`, a LIMIT
/// `ref_price`); quantity wins over notional. Without `client_oid` the exchange uses
/// `default_client_oid` (the request nonce).
pub fn order_request(
    params: &Map<String, Value>,
    default_client_oid: &str,
) -> Result<OrderRequest, ApiError> {
    let symbol = required(params, "instrument_name")?.to_string();
    let side = parse_side(required(params, "side")?)?;
    let order_type = parse_order_type(required(params, "type")?)?;
    let quantity = decimal_param(
        params,
        "quantity",
        CODE_INVALID_QUANTITY,
        CODE_INVALID_QUANTITY,
    )?;
    let notional = decimal_param(params, "notional", CODE_INTERNAL, CODE_INVALID_ARGUMENT)?;
    let price = decimal_param(params, "price", CODE_INVALID_PRICE, CODE_INVALID_PRICE)?;
    let ref_price = decimal_param(
        params,
        "ref_price",
        CODE_INVALID_REFERENCE_PRICE,
        CODE_INVALID_REFERENCE_PRICE,
    )?;
    let client_oid = string_param(params, "client_oid")?.unwrap_or(default_client_oid);
    let is_trigger = matches!(order_type, OrderType::StopLoss | OrderType::TakeProfit);
    Ok(OrderRequest {
        client_oid: client_oid.to_string(),
        symbol,
        side,
        order_type,
        notional: if quantity.is_some() { None } else { notional },
        quantity,
        price: if order_type == OrderType::Limit {
            price
        } else {
            None
        },
        trigger_price: if is_trigger { ref_price } else { None },
    })
}

/// What the simulator knows about an order beyond the engine's report.
pub struct OrderContext<'a> {
    /// When the order was created, in ns (distinct per order).
    pub create_time_ns: u64,
    pub taker_fee_rate: Decimal,
    /// `OCO` or `OTOCO` for list members.
    pub contingency_type: Option<&'a str>,
}

/// An order object as get-order-detail / get-open-orders / get-order-history return it.
pub fn order_json(report: &OrderReport, context: &OrderContext<'_>) -> Value {
    let create_time_ms = Millis::try_from(context.create_time_ns / 1_000_000).unwrap_or(0);
    let is_trigger = report.trigger_price.is_some();
    let cumulative_value = (report.avg_price * report.cumulative_quantity).round_dp(12);
    let mut object = json!({
        "account_id": ACCOUNT_ID,
        "order_id": report.order_id,
        "client_oid": report.client_oid,
        "order_type": report.order_type.as_str(),
        "time_in_force": "GOOD_TILL_CANCEL",
        "side": report.side.as_str(),
        "exec_inst": [],
        "quantity": decimal_text(report.quantity),
        "order_value": decimal_text(report.quantity * report.price.unwrap_or_default()),
        "maker_fee_rate": decimal_text(context.taker_fee_rate),
        "taker_fee_rate": decimal_text(context.taker_fee_rate),
        "avg_price": decimal_text(report.avg_price),
        "ref_price": decimal_text(report.trigger_price.unwrap_or_default()),
        "ref_price_type": if is_trigger { "MARK_PRICE" } else { "NULL_VAL" },
        "cumulative_quantity": decimal_text(report.cumulative_quantity),
        "cumulative_value": decimal_text(cumulative_value),
        "cumulative_fee": decimal_text(report.cumulative_fee),
        "status": report.status.as_str(),
        "order_date": civil_date(create_time_ms),
        "instrument_name": report.symbol,
        "fee_instrument_name": report.fee_currency,
        "create_time": create_time_ms,
        "create_time_ns": context.create_time_ns.to_string(),
        "update_time": report.update_time_ms,
    });
    let map = object.as_object_mut().expect("an object literal");
    if let Some(price) = report.price {
        map.insert("limit_price".to_string(), json!(decimal_text(price)));
    }
    if let Some(reason) = report.reason {
        map.insert("reason".to_string(), json!(reason));
    }
    if let Some(list_id) = &report.list_id {
        map.insert("list_id".to_string(), json!(list_id));
    }
    if let Some(contingency_type) = context.contingency_type {
        map.insert("contingency_type".to_string(), json!(contingency_type));
    }
    object
}

/// `YYYY-MM-DD` (UTC) of a Unix time in ms.
pub fn civil_date(time_ms: Millis) -> String {
    let (year, month, day) = crate::core::clock::civil_from_days(time_ms.div_euclid(86_400_000));
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_decimals() {
        for good in ["0", "1", "0.001", "123.45000"] {
            assert!(parse_decimal_strict(good).is_some(), "{good}");
        }
        for bad in [
            "", ".5", "5.", "-1", "+1", "1e3", " 1", "1,5", "0x10", "1.2.3", "NaN",
        ] {
            assert!(parse_decimal_strict(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn statuses_follow_the_reference_table() {
        assert_eq!(http_status(CODE_NOT_FOUND), 200);
        assert_eq!(http_status(CODE_UNAUTHORIZED), 401);
        assert_eq!(http_status(CODE_INVALID_NONCE), 400);
        assert_eq!(http_status(306), 500);
        assert_eq!(http_status(415), 500);
        assert_eq!(http_status(213), 400);
        assert_eq!(http_status(CODE_TOO_MANY_REQUESTS), 429);
    }

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(civil_date(0), "1970-01-01");
        assert_eq!(civil_date(1_613_575_617_173), "2021-02-17");
        assert_eq!(civil_date(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn order_params_use_exchange_rules() {
        let params = json!({"instrument_name": "BTC_USD", "side": "BUY", "type": "MARKET",
            "quantity": "1", "notional": "50", "price": "10", "broker_id": "x"});
        let request = order_request(params.as_object().unwrap(), "7").expect("valid");
        assert_eq!(request.client_oid, "7");
        assert_eq!((request.notional, request.price), (None, None));
        let number_price = json!({"instrument_name": "BTC_USD", "side": "BUY", "type": "LIMIT",
            "quantity": "1", "price": 10});
        let error = order_request(number_price.as_object().unwrap(), "7").unwrap_err();
        assert_eq!(error.code, CODE_INVALID_PRICE);
    }
}
