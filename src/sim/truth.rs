//! The exchange's side of the truth for measurements, served under `/sim/`: `GET /sim/timeline`
//! lists every order with the simulator's times of its creation, of the moment it became live
//! (an OTOCO's legs only once their entry filled completely), of each fill and of its end; `GET
//! /sim/requests` counts the exchange requests that reached the simulator, per method, and logs
//! each with its time and the order ids, client_oids and list ids it names. Every time is the
//! simulator's own clock (engine ms), never a client's.
//!
//! It reads the engine and records requests; it must not change the book, and it knows nothing
//! about who sent an order or what role it plays for a client.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::core::domain::{Millis, OrderReport, OrderType, VenueStatus};

use super::exchange::{METHODS, Simulator};
use super::wire;

/// Requests the log keeps at most; later ones are only counted (`log_dropped`).
pub const REQUEST_LOG_MAX: usize = 200_000;
/// Ids one request may name in the log; an order list has three legs at most.
const REFS_MAX: usize = 8;
/// The method name logged for a path outside the method table.
const UNKNOWN_METHOD: &str = "unknown";

const _: () = assert!(REQUEST_LOG_MAX >= 1 && REFS_MAX >= 3);

/// One exchange request as it reached the simulator.
struct LoggedRequest {
    time_ms: Millis,
    method: &'static str,
    /// The HTTP status answered; 0 when the connection was closed or held unanswered.
    status: u16,
    refs: Vec<String>,
}

/// Counts of every exchange request and a bounded log of them.
#[derive(Default)]
pub(super) struct RequestLog {
    counts: BTreeMap<&'static str, u64>,
    total: u64,
    entries: Vec<LoggedRequest>,
    dropped: u64,
}

impl RequestLog {
    /// Counts and logs one request to `method` (the path after the API prefix).
    pub(super) fn record(&mut self, time_ms: Millis, method: &str, status: u16, body: &[u8]) {
        let method = METHODS
            .iter()
            .find(|rule| rule.name == method)
            .map_or(UNKNOWN_METHOD, |rule| rule.name);
        *self.counts.entry(method).or_default() += 1;
        self.total += 1;
        if self.entries.len() >= REQUEST_LOG_MAX {
            self.dropped += 1;
            return;
        }
        self.entries.push(LoggedRequest {
            time_ms,
            method,
            status,
            refs: refs_of(body),
        });
    }

    pub(super) fn json(&self) -> Value {
        let log: Vec<Value> = self
            .entries
            .iter()
            .map(|entry| {
                json!({
                    "time_ms": entry.time_ms,
                    "method": entry.method,
                    "status": entry.status,
                    "refs": entry.refs,
                })
            })
            .collect();
        json!({
            "total": self.total,
            "by_method": self.counts,
            "log": log,
            "log_dropped": self.dropped,
        })
    }
}

/// The order ids, client_oids and list ids a request body's `params` name (an order list's
/// legs included), in the order found; nothing when the body is not a JSON envelope.
fn refs_of(body: &[u8]) -> Vec<String> {
    let Ok(Value::Object(envelope)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let Some(Value::Object(params)) = envelope.get("params") else {
        return Vec::new();
    };
    let mut refs = Vec::new();
    push_refs(params, &mut refs);
    if let Some(Value::Array(legs)) = params.get("order_list") {
        for leg in legs {
            if let Value::Object(leg) = leg {
                push_refs(leg, &mut refs);
            }
        }
    }
    refs.truncate(REFS_MAX);
    refs
}

fn push_refs(params: &Map<String, Value>, refs: &mut Vec<String>) {
    for key in ["order_id", "client_oid", "orig_client_oid", "list_id"] {
        let text = match params.get(key) {
            Some(Value::String(text)) => text.clone(),
            Some(Value::Number(number)) => number.to_string(),
            _ => continue,
        };
        if !text.is_empty() && !refs.contains(&text) {
            refs.push(text);
        }
    }
}

/// The fills of one order: (time, quantity), oldest first.
type FillTimes = Vec<(Millis, rust_decimal::Decimal)>;

impl Simulator {
    /// `GET /sim/timeline`: every order in creation order with its times.
    pub(super) fn timeline_json(&self, now_ms: Millis) -> Value {
        let book = self.engine.book();
        let mut fills: BTreeMap<&str, FillTimes> = BTreeMap::new();
        for fill in self.engine.fills() {
            fills
                .entry(fill.order_id.as_str())
                .or_default()
                .push((fill.time_ms, fill.quantity));
        }
        let no_fills = FillTimes::new();
        // When each OTOCO entry filled completely: the moment its legs were armed.
        let mut armed_ms: BTreeMap<&str, Millis> = BTreeMap::new();
        for report in &book {
            let (Some(list_id), Some(filled_ms)) = (
                &report.list_id,
                filled_ms(report, fills.get(report.order_id.as_str())),
            ) else {
                continue;
            };
            if self.is_otoco(list_id) && !is_trigger(report.order_type) {
                armed_ms.insert(list_id.as_str(), filled_ms);
            }
        }
        let orders: Vec<Value> = book
            .iter()
            .map(|report| {
                let order_fills = fills.get(report.order_id.as_str()).unwrap_or(&no_fills);
                let live_ms = self.live_ms(report, &armed_ms);
                self.timeline_row(report, order_fills, live_ms)
            })
            .collect();
        json!({"now_ms": now_ms, "orders": orders})
    }

    fn is_otoco(&self, list_id: &str) -> bool {
        self.list_types.get(list_id).copied() == Some("OTOCO")
    }

    /// When the order became live: at creation, except an OTOCO's legs, which are live from
    /// the moment their entry filled completely, if they were still open then.
    fn live_ms(&self, report: &OrderReport, armed_ms: &BTreeMap<&str, Millis>) -> Option<Millis> {
        let created_ms = self.created_ms(&report.order_id);
        let Some(list_id) = &report.list_id else {
            return created_ms;
        };
        if !self.is_otoco(list_id) || !is_trigger(report.order_type) {
            return created_ms;
        }
        let armed_ms = *armed_ms.get(list_id.as_str())?;
        let ended_before = ended_ms(report).is_some_and(|ended_ms| ended_ms < armed_ms);
        (!ended_before).then_some(armed_ms)
    }

    fn timeline_row(
        &self,
        report: &OrderReport,
        fills: &FillTimes,
        live_ms: Option<Millis>,
    ) -> Value {
        let contingency_type = report
            .list_id
            .as_ref()
            .and_then(|list_id| self.list_types.get(list_id).copied());
        let fill_rows: Vec<Value> = fills
            .iter()
            .map(|(time_ms, quantity)| {
                json!({"time_ms": time_ms, "quantity": wire::decimal_text(*quantity)})
            })
            .collect();
        json!({
            "client_oid": report.client_oid,
            "order_id": report.order_id,
            "instrument_name": report.symbol,
            "side": report.side.as_str(),
            "type": report.order_type.as_str(),
            "status": report.status.as_str(),
            "list_id": report.list_id,
            "contingency_type": contingency_type,
            "quantity": wire::decimal_text(report.quantity),
            "cumulative_quantity": wire::decimal_text(report.cumulative_quantity),
            "created_ms": self.created_ms(&report.order_id),
            "live_ms": live_ms,
            "first_fill_ms": fills.first().map(|(time_ms, _)| *time_ms),
            "filled_ms": filled_ms(report, Some(fills)),
            "ended_ms": ended_ms(report),
            "fills": fill_rows,
        })
    }
}

fn is_trigger(order_type: OrderType) -> bool {
    matches!(order_type, OrderType::StopLoss | OrderType::TakeProfit)
}

/// The time of the fill that completed a FILLED order.
fn filled_ms(report: &OrderReport, fills: Option<&FillTimes>) -> Option<Millis> {
    if report.status != VenueStatus::Filled {
        return None;
    }
    fills?.last().map(|(time_ms, _)| *time_ms)
}

/// When a terminal order ended (filled, cancelled, expired or rejected).
fn ended_ms(report: &OrderReport) -> Option<Millis> {
    report.status.is_terminal().then_some(report.update_time_ms)
}
