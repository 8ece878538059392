//! `fillguard status`: trades with their orders, protection coverage and breakers, as tables
//! for a person or as one JSON object for scripts (shape in DESIGN §5). Shows the open trades
//! and the most recent closed ones unless asked for all: it never reads the whole history
//! for the default view. Reads only.

use rusqlite::Connection;
use serde_json::{Value, json};

use crate::cli::Failure;
use crate::config::Config;
use crate::core::breaker::Breaker;
use crate::core::ids::Role;
use crate::core::normalize::plain;
use crate::core::trade::{Order, TradeView};
use crate::core::watchlist::SymbolState;
use crate::store::{self, Store};

/// How many closed trades (and delivered alerts) `status` shows unless asked for more.
pub const CLOSED_SHOWN_DEFAULT: usize = 20;

/// What `status` shows, read in one go.
pub struct Report {
    pub views: Vec<TradeView>,
    /// Trades whose rows cannot be read (edited by hand), with the reason.
    pub unreadable: Vec<(i64, String)>,
    pub breakers: Vec<Breaker>,
    pub alerts: Vec<store::AlertRow>,
    /// The watchlist's symbols against the exchange, as the agent last stored them (`None`:
    /// never checked, or the row is unreadable).
    pub watchlist: Option<store::WatchlistRecord>,
    /// Whether everything stored is shown (false: older closed trades or alerts were left out).
    pub complete: bool,
}

/// Reads the open trades, the `closed` most recent closed ones (`None`: every trade), the
/// breakers, and the unsent alerts with the `closed` most recent others. Its cost follows
/// what it shows, not the size of the history.
pub fn report(conn: &Connection, closed: Option<usize>) -> Result<Report, store::StoreError> {
    let trades = store::status_trade_ids(conn, closed)?;
    let mut views = Vec::new();
    // A trade whose rows cannot be read is listed with the reason; the others are shown as
    // usual, since that is when the operator needs them most.
    let mut unreadable = Vec::new();
    for id in trades.items {
        match store::load_view(conn, id) {
            Ok(view) => views.push(view),
            Err(error) => unreadable.push((id, error.to_string())),
        }
    }
    let alerts = store::status_alerts(conn, closed)?;
    Ok(Report {
        views,
        unreadable,
        breakers: store::breakers(conn)?,
        alerts: alerts.items,
        watchlist: store::watchlist_states(conn).ok().flatten(),
        complete: !trades.omitted && !alerts.omitted,
    })
}

pub fn print(config: &Config, as_json: bool, closed: Option<usize>) -> Result<(), Failure> {
    let store = Store::open_read_only(&config.store.path)?;
    let report = report(store.conn(), closed)?;
    let now = crate::core::clock::Clock::now_ms(&crate::shell::clock::SystemClock);
    let risk = super::status_risk::risk_report(store.conn(), config, now)?;
    if as_json {
        let mut object = report_json(&report);
        object["risk"] = super::status_risk::risk_json(&risk);
        println!(
            "{}",
            serde_json::to_string_pretty(&object).map_err(Failure::runtime)?
        );
        return Ok(());
    }
    print_tables(&report.views, &report.breakers, &report.alerts);
    super::status_risk::print_risk(&risk);
    print_watchlist(report.watchlist.as_ref());
    for (id, error) in &report.unreadable {
        println!("trade {id} UNREADABLE: {error}");
    }
    if !report.complete {
        println!(
            "
older closed trades and alerts are not shown: --closed N for more, --all for everything"
        );
    }
    Ok(())
}

/// The JSON object of DESIGN §5, with `complete` saying whether anything was left out.
pub fn report_json(report: &Report) -> Value {
    json!({
        "trades": report.views.iter().map(trade_json)
            .chain(report.unreadable.iter().map(|(id, error)| json!({
                "id": id, "state": "UNREADABLE", "error": error,
            })))
            .collect::<Vec<_>>(),
        "breakers": report.breakers.iter().map(|b| json!({
            "symbol": b.symbol, "open": b.open, "reason": b.reason, "trip_count": b.trip_count,
        })).collect::<Vec<_>>(),
        "alerts": report.alerts.iter().map(|a| json!({
            "severity": a.severity, "key": a.key, "sent": a.sent_at_ms.is_some(), "text": a.text,
        })).collect::<Vec<_>>(),
        "watchlist": report.watchlist.as_ref().map(|record| json!({
            "checked_at_ms": record.checked_at_ms,
            "symbols": record.states.iter().map(|(symbol, state)| json!({
                "symbol": symbol, "state": state.as_str(),
            })).collect::<Vec<_>>(),
        })),
        "complete": report.complete,
    })
}

/// The watchlist's symbols and their state; a disabled one says why.
fn print_watchlist(record: Option<&store::WatchlistRecord>) {
    let Some(record) = record else {
        println!("\nwatchlist: not checked against the exchange yet");
        return;
    };
    let checked = match record.checked_at_ms {
        Some(_) => "checked against the exchange",
        None => "check against the exchange pending",
    };
    println!("\nwatchlist ({checked}):");
    for (symbol, state) in &record.states {
        let why = match state {
            SymbolState::Disabled => ": not listed on the exchange (no strategy, signals dropped)",
            _ => "",
        };
        println!("  {symbol:<12} {}{why}", state.as_str());
    }
}

/// The order of `role` with the highest generation (the current protection).
fn latest(view: &TradeView, role: Role) -> Option<&Order> {
    view.orders
        .iter()
        .filter(|order| order.role == role)
        .max_by_key(|order| order.generation)
}

fn order_json(order: Option<&Order>) -> Value {
    match order {
        None => Value::Null,
        Some(order) => json!({
            "client_oid": order.client_oid,
            "order_id": order.order_id,
            "list_id": order.list_id,
            "status": order.status.as_str(),
            "type": order.order_type.as_str(),
            "side": order.side.as_str(),
            "quantity": plain(order.quantity),
            "cumulative_quantity": plain(order.cumulative_quantity),
            "price": order.price.map(plain),
            "trigger_price": order.trigger_price.map(plain),
            "generation": order.generation,
            "last_error": order.last_error,
        }),
    }
}

fn trade_json(view: &TradeView) -> Value {
    let trade = &view.trade;
    json!({
        "id": trade.id,
        "symbol": trade.symbol,
        "side": trade.side.as_str(),
        "state": trade.state.as_str(),
        "mode": trade.mode.as_str(),
        "filled_quantity": plain(trade.filled_quantity),
        "avg_price": plain(trade.avg_price),
        "protect_quantity": trade.protect_quantity.map(plain),
        "close_reason": trade.close_reason,
        "entry": order_json(latest(view, Role::Entry)),
        "stop_loss": order_json(latest(view, Role::StopLoss)),
        "take_profit": order_json(latest(view, Role::TakeProfit)),
        "exit": order_json(latest(view, Role::Exit)),
        "orders": view.orders.iter().map(|order| order_json(Some(order))).collect::<Vec<_>>(),
    })
}

fn leg_text(order: Option<&Order>) -> String {
    match order {
        None => "-".into(),
        Some(order) => format!(
            "{} {} @{}",
            order.status.as_str(),
            plain(order.quantity),
            order
                .trigger_price
                .or(order.price)
                .map(plain)
                .unwrap_or_default()
        ),
    }
}

fn print_tables(views: &[TradeView], breakers: &[Breaker], alerts: &[store::AlertRow]) {
    println!(
        "{:<5} {:<10} {:<4} {:<16} {:>12} {:>12}  {:<28} {:<28} reason",
        "id", "symbol", "side", "state", "filled", "avg price", "stop-loss", "take-profit"
    );
    for view in views {
        let trade = &view.trade;
        println!(
            "{:<5} {:<10} {:<4} {:<16} {:>12} {:>12}  {:<28} {:<28} {}",
            trade.id,
            trade.symbol,
            trade.side.as_str(),
            trade.state.as_str(),
            plain(trade.filled_quantity),
            plain(trade.avg_price),
            leg_text(latest(view, Role::StopLoss)),
            leg_text(latest(view, Role::TakeProfit)),
            trade.close_reason.as_deref().unwrap_or("")
        );
    }
    let open = views
        .iter()
        .filter(|v| !v.trade.state.is_terminal())
        .count();
    let protected = views
        .iter()
        .filter(|v| v.trade.state == crate::core::trade::TradeState::Protected)
        .count();
    println!("\nopen trades: {open}, protected: {protected}");
    println!("\nbreakers:");
    print_breakers(breakers, "  ");
    let critical = alerts.iter().filter(|a| a.severity == "CRITICAL").count();
    println!("\nalerts: {} ({} critical)", alerts.len(), critical);
}

/// One line per breaker, each starting with `indent`.
pub fn print_breakers(breakers: &[Breaker], indent: &str) {
    if breakers.is_empty() {
        println!("{indent}no breakers have tripped");
    }
    for breaker in breakers {
        println!(
            "{indent}{:<12} {:<6} trips={} reason={}",
            breaker.symbol,
            if breaker.open { "OPEN" } else { "closed" },
            breaker.trip_count,
            breaker.reason.as_deref().unwrap_or("-")
        );
    }
}
