//! One run's figures: the trades of the simulator's timeline, grouped by the trade id in their
//! client_oids, with each trade's unprotected window, and the exchange requests attributed to
//! the trades whose orders they name. Times are the simulator's; nothing here reads the agent.

use std::collections::BTreeMap;

use fillguard::core::ids::{Role, parse_client_oid};
use serde_json::Value;

/// One trade as the exchange saw it.
#[derive(Debug, Clone)]
pub struct Trade {
    pub trade_id: i64,
    /// The entry's first fill; `None` when it never filled.
    pub fill_ms: Option<i64>,
    /// Whether the entry filled completely (status FILLED).
    pub complete: bool,
    /// When a stop-loss and a take-profit of the trade were first both live.
    pub protected_ms: Option<i64>,
    /// Requests naming one of the trade's orders, up to the end of its first protective leg.
    pub named_requests: u64,
}

impl Trade {
    /// Fill to protection, 0 when the protection was live first; `None` while unprotected.
    pub fn window_ms(&self) -> Option<i64> {
        Some((self.protected_ms? - self.fill_ms?).max(0))
    }
}

/// One run: a policy at one number of simultaneous signals.
#[derive(Debug, Clone)]
pub struct Run {
    pub policy: String,
    /// The policy's place in the configured list.
    pub order: u64,
    pub concurrency: u64,
    /// Why the policy could not run; `None` when it ran.
    pub reason: Option<String>,
    pub meta: Value,
    pub trades: Vec<Trade>,
    pub requests_total: u64,
    /// Requests that name no trade's order (open orders, history, balances, market data).
    pub requests_other: u64,
    pub by_method: Value,
}

/// Orders of one trade, by role: (created, live, first fill, filled, ended, status).
#[derive(Debug, Default)]
struct TradeOrders {
    entries: Vec<Value>,
    stop_losses: Vec<Value>,
    take_profits: Vec<Value>,
}

fn text(value: &Value, key: &str) -> Result<String, String> {
    value[key]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("{key} is missing or not text in {value}"))
}

fn count(value: &Value, key: &str) -> Result<u64, String> {
    value[key]
        .as_u64()
        .ok_or_else(|| format!("{key} is missing or not a count in {value}"))
}

fn time(order: &Value, key: &str) -> Option<i64> {
    order[key].as_i64()
}

impl Run {
    pub fn unavailable(meta: &Value) -> Result<Run, String> {
        Ok(Run {
            policy: text(meta, "policy")?,
            order: count(meta, "order")?,
            concurrency: count(meta, "concurrency")?,
            reason: Some(text(meta, "reason").unwrap_or_else(|_| "not available".to_string())),
            meta: meta.clone(),
            trades: Vec::new(),
            requests_total: 0,
            requests_other: 0,
            by_method: Value::Null,
        })
    }

    pub fn measured(meta: &Value, timeline: &Value, requests: &Value) -> Result<Run, String> {
        let orders = timeline["orders"]
            .as_array()
            .ok_or("timeline.json has no orders array")?;
        let grouped = group_by_trade(orders)?;
        let owners = owners(orders);
        let log = requests["log"]
            .as_array()
            .ok_or("requests.json has no log array")?;
        let (named, other) = attribute(log, &owners, &grouped);
        let trades = grouped
            .iter()
            .filter(|(_, orders)| !orders.entries.is_empty())
            .map(|(trade_id, orders)| {
                let named_requests = named.get(trade_id).copied().unwrap_or(0);
                trade(*trade_id, orders, named_requests)
            })
            .collect();
        Ok(Run {
            reason: None,
            meta: meta.clone(),
            trades,
            requests_total: count(requests, "total")?,
            requests_other: other,
            by_method: requests["by_method"].clone(),
            ..Run::unavailable(meta)?
        })
    }

    pub fn available(&self) -> bool {
        self.reason.is_none()
    }

    /// Windows of the trades whose entry filled and which got protected, in ms, sorted.
    pub fn windows(&self) -> Vec<i64> {
        let mut windows: Vec<i64> = self.trades.iter().filter_map(Trade::window_ms).collect();
        windows.sort_unstable();
        windows
    }

    pub fn filled(&self) -> usize {
        self.trades
            .iter()
            .filter(|trade| trade.fill_ms.is_some())
            .count()
    }

    /// Trades whose entry filled but that never had both legs live.
    pub fn unprotected(&self) -> usize {
        self.trades
            .iter()
            .filter(|trade| trade.fill_ms.is_some() && trade.protected_ms.is_none())
            .count()
    }

    /// Requests naming a protected trade's orders, per protected trade.
    pub fn named_requests_per_trade(&self) -> Option<f64> {
        let protected: Vec<&Trade> = self
            .trades
            .iter()
            .filter(|trade| trade.window_ms().is_some())
            .collect();
        let total: u64 = protected.iter().map(|trade| trade.named_requests).sum();
        per(total, protected.len())
    }

    /// The other requests of the run, per protected trade.
    pub fn other_requests_per_trade(&self) -> Option<f64> {
        per(self.requests_other, self.windows().len())
    }
}

fn per(total: u64, trades: usize) -> Option<f64> {
    // Counts of one run stay far below 2^52, so the conversions are exact.
    (trades > 0).then(|| total as f64 / trades as f64)
}

/// The orders whose client_oid is a fillguard id, by trade id.
fn group_by_trade(orders: &[Value]) -> Result<BTreeMap<i64, TradeOrders>, String> {
    let mut grouped: BTreeMap<i64, TradeOrders> = BTreeMap::new();
    let mut epochs: Vec<String> = Vec::new();
    for order in orders {
        let client_oid = text(order, "client_oid")?;
        let Some(parsed) = parse_client_oid(&client_oid) else {
            continue;
        };
        if !epochs.contains(&parsed.epoch) {
            epochs.push(parsed.epoch.clone());
        }
        let trade = grouped.entry(parsed.trade_id).or_default();
        match parsed.role {
            Role::Entry => trade.entries.push(order.clone()),
            Role::StopLoss => trade.stop_losses.push(order.clone()),
            Role::TakeProfit => trade.take_profits.push(order.clone()),
            Role::Exit => {}
        }
    }
    // One run is one database: trade ids of two epochs would be two databases' trades mixed.
    if epochs.len() > 1 {
        return Err(format!(
            "orders of several databases (epochs {epochs:?}) on one book"
        ));
    }
    Ok(grouped)
}

/// Which trade each client_oid, order id and list id belongs to.
fn owners(orders: &[Value]) -> BTreeMap<String, i64> {
    let mut owners = BTreeMap::new();
    for order in orders {
        let Some(parsed) = order["client_oid"].as_str().and_then(parse_client_oid) else {
            continue;
        };
        for key in ["client_oid", "order_id", "list_id"] {
            if let Some(id) = order[key].as_str() {
                owners.insert(id.to_string(), parsed.trade_id);
            }
        }
    }
    owners
}

/// Requests per trade (those naming its orders, up to the end of its first protective leg,
/// which the bench brings about once the trade is protected) and the requests naming none.
fn attribute(
    log: &[Value],
    owners: &BTreeMap<String, i64>,
    grouped: &BTreeMap<i64, TradeOrders>,
) -> (BTreeMap<i64, u64>, u64) {
    let ends: BTreeMap<i64, i64> = grouped
        .iter()
        .filter_map(|(trade_id, orders)| {
            let legs = orders.stop_losses.iter().chain(&orders.take_profits);
            let end_ms = legs.filter_map(|leg| time(leg, "ended_ms")).min()?;
            Some((*trade_id, end_ms))
        })
        .collect();
    let mut named: BTreeMap<i64, u64> = BTreeMap::new();
    let mut other = 0;
    for entry in log {
        let refs = entry["refs"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let owner = refs
            .iter()
            .filter_map(Value::as_str)
            .find_map(|id| owners.get(id).copied());
        let Some(trade_id) = owner else {
            other += 1;
            continue;
        };
        let time_ms = time(entry, "time_ms").unwrap_or(i64::MIN);
        if ends.get(&trade_id).is_none_or(|end_ms| time_ms <= *end_ms) {
            *named.entry(trade_id).or_default() += 1;
        }
    }
    (named, other)
}

fn trade(trade_id: i64, orders: &TradeOrders, named_requests: u64) -> Trade {
    // An entry re-sent under a new generation counts from its first fill.
    let filled = orders
        .entries
        .iter()
        .filter_map(|entry| Some((time(entry, "first_fill_ms")?, entry)))
        .min_by_key(|(fill_ms, _)| *fill_ms);
    let first_live = |legs: &[Value]| legs.iter().filter_map(|leg| time(leg, "live_ms")).min();
    let protected_ms = match (
        first_live(&orders.stop_losses),
        first_live(&orders.take_profits),
    ) {
        (Some(stop_ms), Some(profit_ms)) => Some(stop_ms.max(profit_ms)),
        _ => None,
    };
    Trade {
        trade_id,
        fill_ms: filled.map(|(fill_ms, _)| fill_ms),
        complete: filled.is_some_and(|(_, entry)| entry["status"] == "FILLED"),
        protected_ms,
        named_requests,
    }
}

/// The nearest-rank percentile of sorted `values` (`percent` in 1..=100).
pub fn percentile(values: &[i64], percent: u64) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let rank = (values.len() as u64 * percent).div_ceil(100).max(1);
    let index = usize::try_from(rank - 1).ok()?.min(values.len() - 1);
    Some(values[index])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<i64> = (1..=200).collect();
        assert_eq!(percentile(&values, 50), Some(100));
        assert_eq!(percentile(&values, 99), Some(198));
        assert_eq!(percentile(&values, 100), Some(200));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    fn order(oid: &str, order_id: &str, times: [Option<i64>; 4], status: &str) -> Value {
        let [created, live, first_fill, ended] = times;
        json!({"client_oid": oid, "order_id": order_id, "list_id": null, "status": status,
               "created_ms": created, "live_ms": live, "first_fill_ms": first_fill,
               "ended_ms": ended})
    }

    #[test]
    fn windows_and_requests_come_from_the_timeline() {
        let orders = json!({"orders": [
            order("fg-0a1b2c3d-1-E1", "11", [Some(1000), Some(1000), Some(1200), Some(1200)], "FILLED"),
            order("fg-0a1b2c3d-1-S1", "12", [Some(1450), Some(1450), None, Some(2000)], "CANCELED"),
            order("fg-0a1b2c3d-1-T1", "13", [Some(1500), Some(1500), Some(2000), Some(2000)], "FILLED"),
            order("fg-0a1b2c3d-2-E1", "21", [Some(3000), Some(3000), Some(3000), Some(3000)], "FILLED"),
            order("fg-0a1b2c3d-2-S1", "22", [Some(2900), Some(3000), None, None], "PENDING"),
            order("fg-0a1b2c3d-2-T1", "23", [Some(2900), Some(3000), None, None], "PENDING"),
            order("fg-0a1b2c3d-3-E1", "31", [Some(4000), Some(4000), Some(4100), None], "ACTIVE"),
            order("manual-1", "99", [Some(10), Some(10), None, None], "ACTIVE"),
        ]});
        let requests = json!({"total": 6, "by_method": {}, "log": [
            {"time_ms": 1000, "refs": ["fg-0a1b2c3d-1-E1"]},
            {"time_ms": 1300, "refs": ["11"]},
            {"time_ms": 1400, "refs": []},
            {"time_ms": 1450, "refs": ["fg-0a1b2c3d-1-S1", "fg-0a1b2c3d-1-T1"]},
            {"time_ms": 2500, "refs": ["12"]},
            {"time_ms": 2500, "refs": ["99"]},
        ]});
        let meta = json!({"policy": "oco", "order": 0, "concurrency": 1, "available": true});
        let run = Run::measured(&meta, &orders, &requests).expect("valid");
        assert_eq!(run.trades.len(), 3);
        assert_eq!(run.trades[0].window_ms(), Some(300));
        assert_eq!(run.trades[0].named_requests, 3);
        assert_eq!(run.trades[1].window_ms(), Some(0));
        assert!(run.trades[1].complete);
        assert_eq!(run.trades[2].window_ms(), None);
        assert_eq!(run.unprotected(), 1);
        assert_eq!(run.windows(), vec![0, 300]);
        assert_eq!(run.requests_other, 2);
        assert_eq!(run.named_requests_per_trade(), Some(1.5));
    }

    #[test]
    fn two_databases_on_one_book_are_refused() {
        let orders = json!({"orders": [
            order("fg-0a1b2c3d-1-E1", "11", [Some(1), Some(1), None, None], "ACTIVE"),
            order("fg-ffffffff-1-E1", "12", [Some(1), Some(1), None, None], "ACTIVE"),
        ]});
        let requests = json!({"total": 0, "log": []});
        let meta = json!({"policy": "oco", "order": 0, "concurrency": 1});
        let error = Run::measured(&meta, &orders, &requests).expect_err("refused");
        assert!(error.contains("several databases"), "{error}");
    }
}
