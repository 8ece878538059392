//! Builds the history the measurement runs against, through the store's own write functions
//! (`insert_signal`, `save_view`, `record_event`, `enqueue_alert`), so every row has the shape
//! and the indexes a real run leaves: each trade from an inbox signal, an entry and an OCO
//! pair (every tenth trade re-protected once, so two generations of legs), five state events
//! per closed trade, an alert for one trade in twenty-five; a new order-id epoch every 1,000
//! trades, as if the agent had been restarted that often. The open trades are spread over the
//! newest ones, protected, with both legs live.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, anyhow};
use rust_decimal::Decimal;

use fillguard::core::domain::{Instrument, OrderType, ProtectionMode, Side, VenueStatus};
use fillguard::core::entry::{EntryContext, EntryRequest, EntrySize, plan_entry};
use fillguard::core::ids::Role;
use fillguard::core::trade::{
    Alert, Order, OrderStatus, Severity, TradeState, TradeView, new_order,
};
use fillguard::store::{self, SignalRow, SignalStatus, Store};

const SYMBOLS: [&str; 10] = [
    "BTC_USDT",
    "ETH_USDT",
    "SOL_USDT",
    "XRP_USDT",
    "ADA_USDT",
    "DOGE_USDT",
    "DOT_USDT",
    "LTC_USDT",
    "LINK_USDT",
    "AVAX_USDT",
];
/// When the history starts, and one trade every two minutes from then on.
const START_MS: i64 = 1_700_000_000_000;
const TRADE_EVERY_MS: i64 = 120_000;
const TRADES_PER_TRANSACTION: i64 = 2_000;

pub struct Built {
    pub trades: i64,
    pub orders: u64,
    pub events: u64,
    pub alerts: u64,
    pub open_ids: Vec<i64>,
    pub seconds: f64,
}

fn decimal(text: &str) -> Decimal {
    text.parse().expect("a literal decimal")
}

fn instrument(symbol: &str) -> Instrument {
    Instrument {
        symbol: symbol.into(),
        base: symbol.split('_').next().unwrap_or("BTC").into(),
        quote: "USDT".into(),
        price_tick: decimal("0.01"),
        quantity_tick: decimal("0.0001"),
        min_quantity: decimal("0.0001"),
        min_notional: Decimal::ONE,
        taker_fee_rate: decimal("0.001"),
    }
}

fn epoch_of(trade_id: i64) -> String {
    format!(
        "{:08x}",
        (trade_id / 1_000).wrapping_mul(0x9E37_79B1) & 0xFFFF_FFFF
    )
}

/// Trade ids that stay open: every seventh id counting down from the newest.
pub fn open_ids(trades: i64, open: usize) -> Vec<i64> {
    let mut ids: Vec<i64> = (0..open as i64)
        .map(|k| trades - 7 * k)
        .filter(|id| *id >= 1)
        .collect();
    ids.sort_unstable();
    ids
}

/// Builds the database at `path` with at least `orders` orders, `open` of the trades open.
pub fn build(path: &Path, orders: u64, open: usize) -> anyhow::Result<Built> {
    let started = Instant::now();
    let mut store = Store::open(path).context("creating the database")?;
    // Three orders per trade, five for every tenth: 3.2 on average.
    let trades = i64::try_from(orders.div_ceil(16) * 5).context("too many orders")?;
    let open_ids = open_ids(trades, open);
    let mut built = Built {
        trades,
        orders: 0,
        events: 0,
        alerts: 0,
        open_ids: open_ids.clone(),
        seconds: 0.0,
    };
    let mut first = 1;
    while first <= trades {
        let last = (first + TRADES_PER_TRANSACTION - 1).min(trades);
        store.transaction(|conn| {
            for id in first..=last {
                let open = open_ids.binary_search(&id).is_ok();
                let counts = write_trade(conn, id, open)?;
                built.orders += counts.0;
                built.events += counts.1;
                built.alerts += counts.2;
            }
            Ok(())
        })?;
        if last % 50_000 < TRADES_PER_TRANSACTION {
            eprintln!("  {last} of {trades} trades written");
        }
        first = last + 1;
    }
    store
        .conn()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    built.seconds = started.elapsed().as_secs_f64();
    Ok(built)
}

/// One trade with its signal, orders, events and alert; returns (orders, events, alerts).
fn write_trade(conn: &rusqlite::Connection, id: i64, open: bool) -> store::Result<(u64, u64, u64)> {
    let symbol = SYMBOLS[(id % SYMBOLS.len() as i64) as usize];
    let created = START_MS + id * TRADE_EVERY_MS;
    let side = if id % 2 == 0 { Side::Buy } else { Side::Sell };
    let signal = SignalRow {
        id: 0,
        symbol: symbol.into(),
        side,
        quantity: None,
        notional: Some(decimal("100")),
        source: "sma_cross".into(),
        dedup_key: Some(format!("sma_cross:{symbol}:{created}")),
        created_at_ms: created,
        status: SignalStatus::New,
        reason: None,
        trade_id: None,
    };
    let signal_id = store::insert_signal(conn, &signal)?
        .ok_or_else(|| store::StoreError::Corrupt(format!("signal of trade {id} repeated")))?;
    let view = trade_view(id, symbol, side, created, signal_id, open)
        .map_err(|error| store::StoreError::Corrupt(error.to_string()))?;
    store::save_view(conn, &view)?;
    store::settle_signal(conn, signal_id, SignalStatus::Taken, None, Some(id))?;
    let orders = view.orders.len() as u64;
    let events = write_events(conn, &view, created, open)?;
    let mut alerts = 0;
    if id % 25 == 0 {
        let alert = Alert {
            severity: Severity::Warning,
            key: format!("reprotect-{}-{id}", view.trade.epoch),
            text: format!(
                "WARNING {symbol} trade {id}: protection re-armed after the stop-loss was cancelled outside fillguard; both legs live again"
            ),
        };
        if store::enqueue_alert(conn, &alert, Some(id), Some(symbol), created + 2_000)? {
            let alert_id = conn.last_insert_rowid();
            store::mark_alert_sent(conn, alert_id, created + 2_500)?;
            alerts = 1;
        }
    }
    Ok((orders, events, alerts))
}

/// The state events a trade's life records (the shell's `state` events), four while open.
fn write_events(
    conn: &rusqlite::Connection,
    view: &TradeView,
    created: i64,
    open: bool,
) -> store::Result<u64> {
    let (id, symbol) = (view.trade.id, view.trade.symbol.as_str());
    let mut events = 0;
    let order_id = |k: usize| {
        format!(
            "{}",
            6_530_000_000_000_000_000_u64 + (id as u64) * 8 + k as u64
        )
    };
    let steps: [(&str, String); 5] = [
        (
            "ENTRY_PENDING -> AWAITING_FILL",
            format!("send result Accepted {{ order_id: \"{}\" }}", order_id(0)),
        ),
        (
            "AWAITING_FILL -> PROTECTING",
            format!("report {} FILLED 0.5 @ 101.23", view.orders[0].client_oid),
        ),
        (
            "PROTECTING -> VERIFYING",
            format!("send result Accepted {{ order_id: \"{}\" }}", order_id(1)),
        ),
        (
            "VERIFYING -> PROTECTED",
            format!("looked {} ACTIVE", view.orders[1].client_oid),
        ),
        (
            "PROTECTED -> CLOSED",
            "report take-profit FILLED 0.4995 @ 103.25 (take_profit_filled)".to_string(),
        ),
    ];
    for (k, (change, cause)) in steps.iter().enumerate() {
        if open && k == 4 {
            break;
        }
        let detail = format!("{change} on {cause}");
        store::record_event(
            conn,
            created + 1_000 * k as i64,
            Some(id),
            Some(symbol),
            "state",
            &detail,
        )?;
        events += 1;
    }
    Ok(events)
}

fn trade_view(
    id: i64,
    symbol: &str,
    side: Side,
    created: i64,
    signal_id: i64,
    open: bool,
) -> anyhow::Result<TradeView> {
    let epoch = epoch_of(id);
    let instrument = instrument(symbol);
    let request = EntryRequest {
        symbol: symbol.into(),
        side,
        size: EntrySize::Notional(decimal("50")),
        stop_loss_pct: decimal("0.5"),
        take_profit_pct: decimal("0.8"),
        mode: ProtectionMode::Oco,
        signal_id: Some(signal_id),
    };
    let context = EntryContext {
        epoch: &epoch,
        instrument: &instrument,
        last_price: decimal("101.23"),
        free_base: Decimal::from(1_000_000),
        free_quote: Decimal::from(1_000_000),
        symbol_breaker: None,
        global_breaker: None,
        open_trade_on_symbol: false,
        allow_concurrent_trades: true,
    };
    let mut view = plan_entry(id, &request, &context, created).map_err(|e| anyhow!(e))?;
    let quantity = view.trade.entry_quantity;
    let fee = (quantity * decimal("0.001")).round_dp(8);
    let protect = quantity
        - if side == Side::Buy {
            fee
        } else {
            Decimal::ZERO
        };
    fill_entry(
        &mut view.orders[0],
        id,
        quantity,
        fee,
        &instrument.base,
        created,
    );
    let generations = if id % 10 == 0 { 2 } else { 1 };
    for generation in 1..=generations {
        let live = generation == generations;
        for (k, role) in [Role::StopLoss, Role::TakeProfit].into_iter().enumerate() {
            let leg = protective_leg(&epoch, id, side, role, generation, protect, created, k);
            view.orders.push(settle_leg(leg, live, open, role));
        }
    }
    let trade = &mut view.trade;
    trade.generation = generations;
    trade.filled_quantity = quantity;
    trade.avg_price = decimal("101.23");
    trade.fee = fee;
    trade.fee_currency = Some(instrument.base);
    trade.protect_quantity = Some(protect);
    trade.stop_loss_price = Some(decimal("100.72"));
    trade.take_profit_price = Some(decimal("102.04"));
    trade.filled_at_ms = Some(created + 300);
    trade.protected_at_ms = Some(created + 700);
    trade.entry_seen = true;
    trade.due_ms = open.then_some(created + 60_000);
    trade.state = if open {
        TradeState::Protected
    } else {
        TradeState::Closed
    };
    if !open {
        trade.close_reason = Some("take_profit_filled".into());
    }
    trade.updated_ms = created + if open { 4_000 } else { 3_600_000 };
    Ok(view)
}

/// The entry as the exchange reported it filled.
fn fill_entry(
    entry: &mut Order,
    id: i64,
    quantity: Decimal,
    fee: Decimal,
    base: &str,
    created: i64,
) {
    entry.status = OrderStatus::Venue(VenueStatus::Filled);
    entry.order_id = Some(format!(
        "{}",
        6_530_000_000_000_000_000_u64 + (id as u64) * 8
    ));
    entry.cumulative_quantity = quantity;
    entry.avg_price = decimal("101.23");
    entry.fee = fee;
    entry.fee_currency = Some(base.to_string());
    entry.sent_at_ms = Some(created + 40);
    entry.verified = true;
}

#[allow(clippy::too_many_arguments)]
fn protective_leg(
    epoch: &str,
    id: i64,
    side: Side,
    role: Role,
    generation: u32,
    quantity: Decimal,
    created: i64,
    k: usize,
) -> Order {
    let exit_side = if side == Side::Buy {
        Side::Sell
    } else {
        Side::Buy
    };
    let (order_type, trigger) = match role {
        Role::StopLoss => (OrderType::StopLoss, decimal("100.72")),
        _ => (OrderType::TakeProfit, decimal("102.04")),
    };
    let mut leg = new_order(
        epoch,
        id,
        role,
        generation,
        exit_side,
        order_type,
        quantity,
        None,
        Some(trigger),
    );
    leg.order_id = Some(format!(
        "{}",
        6_530_000_000_000_000_000_u64 + (id as u64) * 8 + 1 + k as u64 + 2 * u64::from(generation)
    ));
    leg.list_id = Some(format!(
        "{}",
        6_498_000_000_000_000_000_u64 + (id as u64) * 4 + u64::from(generation)
    ));
    leg.sent_at_ms = Some(created + 500);
    leg.verified = true;
    leg
}

/// A leg's final status: live legs of open trades ACTIVE; of a closed trade, the take-profit
/// filled and the stop-loss cancelled with it; earlier generations cancelled.
fn settle_leg(mut leg: Order, live: bool, open: bool, role: Role) -> Order {
    leg.status = if live && open {
        OrderStatus::Venue(VenueStatus::Active)
    } else if live && role == Role::TakeProfit {
        leg.cumulative_quantity = leg.quantity;
        leg.avg_price = decimal("102.05");
        leg.fee = (leg.quantity * decimal("0.10205")).round_dp(8);
        leg.fee_currency = Some("USDT".into());
        OrderStatus::Venue(VenueStatus::Filled)
    } else {
        OrderStatus::Venue(VenueStatus::Canceled)
    };
    leg
}
