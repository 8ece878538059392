//! Public market-data methods of the simulator (`public/…`, HTTP GET with a query string):
//! instruments, risk parameters, tickers and candles, read from the engine. Read-only.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::venue::paper::engine::CODE_INVALID_ARGUMENT;
use crate::venue::paper::{Engine, PaperSettings};

use super::http::Request;
use super::wire::{ApiError, decimal_text};

/// Candles returned when `count` is not given, as on Crypto.com.
const CANDLES_COUNT_DEFAULT: usize = 25;
/// Hourly candles summarised by a ticker (24 h).
const TICKER_HOURS: usize = 24;
const SECONDS_PER_HOUR: u32 = 3_600;

pub fn dispatch(
    engine: &Engine,
    paper: &PaperSettings,
    method: &str,
    request: &Request,
) -> Result<Value, ApiError> {
    match method {
        "public/get-instruments" => instruments(engine, paper),
        "public/get-risk-parameters" => Ok(risk_parameters(paper)),
        "public/get-tickers" => tickers(engine, paper, request.query_value("instrument_name")),
        "public/get-candlestick" => candlestick(engine, request),
        _ => unreachable!("the method table lists only these public methods"),
    }
}

fn instruments(engine: &Engine, paper: &PaperSettings) -> Result<Value, ApiError> {
    let mut rows = Vec::new();
    for configured in &paper.instruments {
        let instrument = engine.instrument(&configured.symbol)?;
        rows.push(json!({
            "symbol": instrument.symbol,
            "inst_type": "CCY_PAIR",
            "display_name": format!("{}/{}", instrument.base, instrument.quote),
            "base_ccy": instrument.base,
            "quote_ccy": instrument.quote,
            "quote_decimals": instrument.price_tick.normalize().scale(),
            "quantity_decimals": instrument.quantity_tick.normalize().scale(),
            "price_tick_size": decimal_text(instrument.price_tick),
            "qty_tick_size": decimal_text(instrument.quantity_tick),
            "max_leverage": "1",
            "tradable": true,
            "expiry_timestamp_ms": 0,
            "beta_product": false,
            "margin_buy_enabled": false,
            "margin_sell_enabled": false,
        }));
    }
    Ok(json!({"data": rows}))
}

/// One row per base currency with the largest configured minimum notional of its pairs
/// (the paper minimum is in the quote asset; the simulator calls it USD).
fn risk_parameters(paper: &PaperSettings) -> Value {
    let mut minimums: BTreeMap<&str, Decimal> = BTreeMap::new();
    for instrument in &paper.instruments {
        let entry = minimums.entry(&instrument.base).or_default();
        *entry = (*entry).max(instrument.min_notional);
    }
    let rows: Vec<Value> = minimums
        .into_iter()
        .map(|(base, minimum)| {
            json!({"instrument_name": base, "min_order_notional_usd": decimal_text(minimum)})
        })
        .collect();
    json!({"default_max_product_leverage_for_spot": "1", "base_currency_config": rows})
}

fn tickers(engine: &Engine, paper: &PaperSettings, only: Option<&str>) -> Result<Value, ApiError> {
    let symbols: Vec<&str> = match only {
        Some(symbol) => vec![symbol],
        None => paper
            .instruments
            .iter()
            .map(|instrument| instrument.symbol.as_str())
            .collect(),
    };
    let mut rows = Vec::new();
    for symbol in symbols {
        rows.push(ticker(engine, symbol)?);
    }
    Ok(json!({"data": rows}))
}

fn ticker(engine: &Engine, symbol: &str) -> Result<Value, ApiError> {
    let last = engine.last_price(symbol)?;
    let hours = engine
        .candles(symbol, SECONDS_PER_HOUR, TICKER_HOURS)
        .unwrap_or_default();
    let high = hours
        .iter()
        .map(|candle| candle.high)
        .fold(last, Decimal::max);
    let low = hours
        .iter()
        .map(|candle| candle.low)
        .fold(last, Decimal::min);
    let change = match hours.first() {
        Some(first) if !first.open.is_zero() => ((last - first.open) / first.open).round_dp(4),
        _ => Decimal::ZERO,
    };
    Ok(json!({
        "i": symbol,
        "a": decimal_text(last),
        "b": decimal_text(last),
        "k": decimal_text(last),
        "h": decimal_text(high),
        "l": decimal_text(low),
        "v": "0",
        "vv": "0",
        "c": decimal_text(change),
        "t": engine.now_ms(),
    }))
}

/// Seconds of a Crypto.com timeframe name (current and legacy spellings).
fn timeframe_seconds(timeframe: &str) -> Option<u32> {
    let seconds = match timeframe {
        "1m" | "M1" => 60,
        "5m" | "M5" => 300,
        "15m" | "M15" => 900,
        "30m" | "M30" => 1_800,
        "1h" | "H1" => 3_600,
        "2h" | "H2" => 7_200,
        "4h" | "H4" => 14_400,
        "6h" => 21_600,
        "12h" | "H12" => 43_200,
        "1D" | "D1" => 86_400,
        "7D" => 604_800,
        "14D" => 1_209_600,
        "1M" => 2_592_000,
        _ => return None,
    };
    Some(seconds)
}

fn candlestick(engine: &Engine, request: &Request) -> Result<Value, ApiError> {
    let invalid = |message: &str| ApiError::new(CODE_INVALID_ARGUMENT, message);
    let symbol = request
        .query_value("instrument_name")
        .ok_or_else(|| invalid("instrument_name is required"))?;
    let timeframe = request.query_value("timeframe").unwrap_or("1m");
    let seconds = timeframe_seconds(timeframe).ok_or_else(|| invalid("unknown timeframe"))?;
    let count = match request.query_value("count") {
        None => CANDLES_COUNT_DEFAULT,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| invalid("count must be a whole number"))?,
    };
    let candles = engine.candles(symbol, seconds, count)?;
    let rows: Vec<Value> = candles
        .iter()
        .map(|candle| {
            json!({
                "o": decimal_text(candle.open),
                "h": decimal_text(candle.high),
                "l": decimal_text(candle.low),
                "c": decimal_text(candle.close),
                "v": "0",
                "t": candle.open_time_ms,
            })
        })
        .collect();
    Ok(json!({"instrument_name": symbol, "interval": timeframe, "data": rows}))
}
