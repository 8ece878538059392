//! History methods of the simulator: `get-order-history` (plain and advanced) and
//! `get-trades`, with the documented paging: `instrument_name`, `start_time` (inclusive),
//! `end_time` (exclusive, default now), both in ms or ns, as numbers or digit strings, and
//! `limit` (a JSON number, at most 100, default 100). The newest `limit` rows before
//! `end_time` come back, newest first; paging backwards sets the next `end_time` to the
//! smallest `create_time_ns` of a page, which is exact because the simulator's ns times are
//! distinct. `isolation_id` (derivatives) is accepted and ignored like every unknown param.

use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::core::domain::{Millis, OrderReport};
use crate::venue::paper::engine::Fill;

use super::exchange::{NANOS_PER_MILLI, Simulator};
use super::private::{Namespace, invalid, namespace_of};
use super::wire::{self, ApiError, CODE_INVALID_REQUEST};

/// Rows one history call returns at most (and by default), as on Crypto.com.
pub const HISTORY_LIMIT_MAX: u64 = 100;
/// History covers this long before `end_time` when `start_time` is not given.
const HISTORY_SPAN_DEFAULT_NS: u64 = 24 * 60 * 60 * 1_000 * NANOS_PER_MILLI;
/// `get-trades` covers at most this long (the docs' limit; what the exchange answers beyond
/// it is not documented: the simulator refuses with 40004).
const TRADES_SPAN_MAX_NS: u64 = 7 * 24 * 60 * 60 * 1_000 * NANOS_PER_MILLI;
/// Times above this are nanoseconds (ms values stay far below it until the year 5138).
const NANOSECOND_TIMES_ABOVE: u64 = 100_000_000_000_000;

/// The rows a history call asks for.
struct Page<'a> {
    symbol: Option<&'a str>,
    start_ns: u64,
    end_ns: u64,
    limit: usize,
}

impl Page<'_> {
    fn covers(&self, symbol: &str, time_ns: u64) -> bool {
        self.symbol.is_none_or(|wanted| wanted == symbol)
            && (self.start_ns..self.end_ns).contains(&time_ns)
    }
}

impl Simulator {
    fn page<'a>(
        &self,
        params: &'a Map<String, Value>,
        now_ms: Millis,
    ) -> Result<Page<'a>, ApiError> {
        let limit = history_limit(params)?;
        let symbol = wire::string_param(params, "instrument_name")?;
        if let Some(symbol) = symbol {
            self.engine.instrument(symbol)?;
        }
        let now_ns = u64::try_from(now_ms).unwrap_or(0).saturating_add(1) * NANOS_PER_MILLI;
        let end_ns = time_param(params, "end_time")?.unwrap_or(now_ns);
        let start_ns = time_param(params, "start_time")?
            .unwrap_or_else(|| end_ns.saturating_sub(HISTORY_SPAN_DEFAULT_NS));
        Ok(Page {
            symbol,
            start_ns,
            end_ns,
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        })
    }

    /// Terminal orders of the namespace created in the page's window, newest first.
    pub(super) fn history(
        &self,
        params: &Map<String, Value>,
        namespace: Namespace,
        now_ms: Millis,
    ) -> Result<Value, ApiError> {
        let page = self.page(params, now_ms)?;
        let mut rows: Vec<(u64, OrderReport)> = self
            .engine
            .book()
            .into_iter()
            .filter(|report| report.status.is_terminal() && namespace_of(report) == namespace)
            .filter(|report| self.is_visible(report, now_ms))
            .map(|report| (self.create_time_ns(&report), report))
            .filter(|(created_ns, report)| page.covers(&report.symbol, *created_ns))
            .collect();
        rows.sort_by_key(|row| std::cmp::Reverse(row.0));
        let data: Vec<Value> = rows
            .iter()
            .take(page.limit)
            .map(|(_, report)| self.order_object(report))
            .collect();
        Ok(json!({"data": data}))
    }

    /// `get-trades`: the account's fills (plain and advanced orders alike) in the page's
    /// window of at most 7 days, newest first.
    pub(super) fn trades(
        &self,
        params: &Map<String, Value>,
        now_ms: Millis,
    ) -> Result<Value, ApiError> {
        let page = self.page(params, now_ms)?;
        if page.end_ns.saturating_sub(page.start_ns) > TRADES_SPAN_MAX_NS {
            return Err(invalid("get-trades covers at most 7 days"));
        }
        let fills = self.engine.fills();
        let mut rows: Vec<(u64, &Fill)> = fill_times_ns(fills)
            .into_iter()
            .zip(fills)
            .filter(|(time_ns, fill)| page.covers(&fill.symbol, *time_ns))
            .collect();
        rows.sort_by_key(|row| std::cmp::Reverse(row.0));
        let data: Vec<Value> = rows
            .iter()
            .take(page.limit)
            .map(|(time_ns, fill)| trade_json(fill, *time_ns))
            .collect();
        Ok(json!({"data": data}))
    }
}

/// Distinct ns times of the fills, in ledger order: a fill's ms, or just after the previous
/// fill's time when several fills share a ms.
fn fill_times_ns(fills: &[Fill]) -> Vec<u64> {
    let mut previous_ns: Option<u64> = None;
    fills
        .iter()
        .map(|fill| {
            let ms_ns = u64::try_from(fill.time_ms).unwrap_or(0) * NANOS_PER_MILLI;
            let time_ns = previous_ns.map_or(ms_ns, |previous| ms_ns.max(previous + 1));
            previous_ns = Some(time_ns);
            time_ns
        })
        .collect()
}

/// One `get-trades` row (reference §4.9): fees negative, as a deduction.
fn trade_json(fill: &Fill, time_ns: u64) -> Value {
    let time_ms = Millis::try_from(time_ns / NANOS_PER_MILLI).unwrap_or(Millis::MAX);
    let fees = if fill.fee.is_zero() {
        Decimal::ZERO
    } else {
        -fill.fee
    };
    json!({
        "account_id": wire::ACCOUNT_ID,
        "event_date": wire::civil_date(time_ms),
        "journal_type": "TRADING",
        "traded_quantity": wire::decimal_text(fill.quantity),
        "traded_price": wire::decimal_text(fill.price),
        "fees": wire::decimal_text(fees),
        "order_id": fill.order_id,
        "trade_id": fill.trade_id,
        "trade_match_id": fill.trade_id,
        "client_oid": fill.client_oid,
        "taker_side": fill.liquidity.as_str(),
        "side": fill.side.as_str(),
        "instrument_name": fill.symbol,
        "fee_instrument_name": fill.fee_currency,
        "create_time": time_ms,
        "create_time_ns": time_ns.to_string(),
        "transact_time_ns": time_ns.to_string(),
        "match_count": "1",
        "match_index": "0",
    })
}

/// `limit` must be a JSON number (a string is 40003, as observed live); at most 100.
fn history_limit(params: &Map<String, Value>) -> Result<u64, ApiError> {
    match params.get("limit") {
        None | Some(Value::Null) => Ok(HISTORY_LIMIT_MAX),
        Some(Value::Number(number)) => number
            .as_u64()
            .map(|limit| limit.min(HISTORY_LIMIT_MAX))
            .ok_or_else(|| ApiError::new(CODE_INVALID_REQUEST, "limit must be a whole number")),
        Some(_) => Err(ApiError::new(
            CODE_INVALID_REQUEST,
            "limit must be a JSON number",
        )),
    }
}

/// A time in ms or ns, as a JSON number or a digit string; returned in ns.
fn time_param(params: &Map<String, Value>, name: &str) -> Result<Option<u64>, ApiError> {
    let value = match params.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(number)) => number.as_u64(),
        Some(Value::String(text)) => text.parse::<u64>().ok(),
        Some(_) => None,
    };
    let value = value.ok_or_else(|| invalid(&format!("{name} must be a time in ms or ns")))?;
    if value > NANOSECOND_TIMES_ABOVE {
        Ok(Some(value))
    } else {
        Ok(Some(value.saturating_mul(NANOS_PER_MILLI)))
    }
}
