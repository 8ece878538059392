//! Row mapping between SQLite and the core's types. Decimals are stored as their exact text and
//! parsed back strictly; a row that does not parse or breaks an invariant is reported as
//! corrupt with its table, id and column, never guessed at.

use std::str::FromStr;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, params};
use rust_decimal::Decimal;

use crate::core::breaker::Breaker;
use crate::core::domain::{Instrument, Millis, OrderType, ProtectionMode, Side};
use crate::core::ids::{GENERATION_MAX, Role, TRADE_ID_MAX, client_oid, is_valid_epoch};
use crate::core::trade::{Order, OrderStatus, Trade, TradeState, TradeView};
use crate::store::{Result, StoreError};

fn text(value: Decimal) -> String {
    value.normalize().to_string()
}

fn opt_text(value: Option<Decimal>) -> Option<String> {
    value.map(text)
}

/// A row of `table` with its statement's column names, looked up by name in Rust: rusqlite's
/// own lookup asks SQLite for every column's name on each call, which made reading a trade's
/// row quadratic in its thirty columns (a quarter of a simulation's time). Every value that
/// does not convert is reported as corrupt with the table, the row's key and the column.
struct Named<'r, 's> {
    row: &'r Row<'s>,
    names: Vec<&'r str>,
    table: &'static str,
    /// The column that names the row in messages (`id`, or `symbol` for breakers).
    key: &'static str,
}

impl<'r, 's> Named<'r, 's> {
    fn new(row: &'r Row<'s>, table: &'static str) -> Named<'r, 's> {
        Named::keyed(row, table, "id")
    }

    fn keyed(row: &'r Row<'s>, table: &'static str, key: &'static str) -> Named<'r, 's> {
        Named {
            row,
            names: row.as_ref().column_names(),
            table,
            key,
        }
    }

    fn index(&self, column: &str) -> rusqlite::Result<usize> {
        self.names
            .iter()
            .position(|name| *name == column)
            .ok_or_else(|| rusqlite::Error::InvalidColumnName(column.to_string()))
    }

    fn get<T: rusqlite::types::FromSql>(&self, column: &str) -> rusqlite::Result<T> {
        let index = self.index(column)?;
        self.row.get(index).map_err(|error| match error {
            rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => {
                let raw = self.row.get_ref(index).map(describe).unwrap_or_default();
                corrupt(self, column, &raw, error)
            }
            other => other,
        })
    }

    /// The row's key as text, for messages; never fails.
    fn key_text(&self) -> String {
        self.index(self.key)
            .and_then(|index| self.row.get_ref(index))
            .map(|value| match value {
                ValueRef::Integer(id) => id.to_string(),
                other => describe(other),
            })
            .unwrap_or_else(|_| "?".into())
    }
}

/// A stored value as a message shows it: text quoted, numbers as they are.
fn describe(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(integer) => integer.to_string(),
        ValueRef::Real(real) => real.to_string(),
        ValueRef::Text(text) => format!("{:?}", String::from_utf8_lossy(text)),
        ValueRef::Blob(blob) => format!("a blob of {} bytes", blob.len()),
    }
}

/// Reads a column and parses it, naming table, id and column on failure.
fn parsed<T: FromStr>(row: &Named<'_, '_>, column: &str) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    let raw: String = row.get(column)?;
    raw.parse::<T>()
        .map_err(|error| corrupt(row, column, &format!("{raw:?}"), error))
}

fn parsed_opt<T: FromStr>(row: &Named<'_, '_>, column: &str) -> rusqlite::Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    let raw: Option<String> = row.get(column)?;
    raw.map(|raw| {
        raw.parse::<T>()
            .map_err(|error| corrupt(row, column, &format!("{raw:?}"), error))
    })
    .transpose()
}

/// A corrupt value, carried through rusqlite's callbacks as a conversion failure and turned
/// into `StoreError::Corrupt` by `map_corrupt`.
fn corrupt(
    row: &Named<'_, '_>,
    column: &str,
    raw: &str,
    error: impl std::fmt::Display,
) -> rusqlite::Error {
    let message = format!(
        "{} row {}: column {column} = {raw}: {error}",
        row.table,
        row.key_text()
    );
    rusqlite::Error::ToSqlConversionFailure(message.into())
}

pub(super) fn map_corrupt(error: rusqlite::Error) -> StoreError {
    match error {
        rusqlite::Error::ToSqlConversionFailure(inner) => StoreError::Corrupt(inner.to_string()),
        other => StoreError::Sql(other),
    }
}

struct Parse<T>(T);

macro_rules! from_str_via {
    ($type:ty, $parse:expr) => {
        impl FromStr for Parse<$type> {
            type Err = String;
            fn from_str(text: &str) -> std::result::Result<Self, String> {
                $parse(text).map(Parse)
            }
        }
    };
}

from_str_via!(TradeState, |text: &str| TradeState::parse(text)
    .ok_or_else(|| format!("unknown trade state {text:?}")));
from_str_via!(OrderStatus, |text: &str| OrderStatus::parse(text)
    .ok_or_else(|| format!("unknown order status {text:?}")));

pub fn validate_view(view: &TradeView) -> Result<()> {
    let trade = &view.trade;
    let problem = |what: String| Err(StoreError::Corrupt(format!("trade {}: {what}", trade.id)));
    if !(1..=TRADE_ID_MAX).contains(&trade.id) {
        return problem(format!("id must be in 1..={TRADE_ID_MAX}"));
    }
    if !is_valid_epoch(&trade.epoch) {
        return problem(format!(
            "epoch {:?} is not 8 hexadecimal characters",
            trade.epoch
        ));
    }
    if trade.generation > GENERATION_MAX
        || view
            .orders
            .iter()
            .any(|order| order.generation > GENERATION_MAX)
    {
        return problem(format!("a generation is above {GENERATION_MAX}"));
    }
    let entries = view.orders.iter().filter(|o| o.role == Role::Entry).count();
    if entries != 1 {
        return problem(format!("{entries} entry orders, expected 1"));
    }
    for order in &view.orders {
        if order.client_oid != client_oid(&trade.epoch, trade.id, order.role, order.generation) {
            return problem(format!(
                "order {} has a foreign client_oid",
                order.client_oid
            ));
        }
        if order.quantity < Decimal::ZERO || order.cumulative_quantity < Decimal::ZERO {
            return problem(format!(
                "order {} has a negative quantity",
                order.client_oid
            ));
        }
    }
    if trade.filled_quantity < Decimal::ZERO || trade.entry_quantity <= Decimal::ZERO {
        return problem("quantities out of range".into());
    }
    Ok(())
}

pub fn upsert_trade(conn: &Connection, trade: &Trade) -> Result<()> {
    conn.prepare_cached("INSERT INTO trades (id, symbol, side, mode, state, signal_id, entry_quantity, quantity_tick,
            price_tick, stop_loss_pct, take_profit_pct, filled_quantity, avg_price, fee, fee_currency,
            protect_quantity, stop_loss_price, take_profit_price, attempts, phase_started_ms, due_ms,
            generation, protect_attempts, reprotects, entry_seen, filled_at_ms, protected_at_ms,
            close_reason, created_ms, updated_ms, oid_epoch, recovering_since_ms, breaker_tripped)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
            ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state,
            filled_quantity = excluded.filled_quantity, avg_price = excluded.avg_price,
            fee = excluded.fee, fee_currency = excluded.fee_currency,
            protect_quantity = excluded.protect_quantity, stop_loss_price = excluded.stop_loss_price,
            take_profit_price = excluded.take_profit_price, attempts = excluded.attempts,
            phase_started_ms = excluded.phase_started_ms, due_ms = excluded.due_ms,
            generation = excluded.generation, protect_attempts = excluded.protect_attempts,
            reprotects = excluded.reprotects, entry_seen = excluded.entry_seen,
            filled_at_ms = excluded.filled_at_ms, protected_at_ms = excluded.protected_at_ms,
            close_reason = excluded.close_reason, updated_ms = excluded.updated_ms,
            recovering_since_ms = excluded.recovering_since_ms,
            breaker_tripped = excluded.breaker_tripped")?.execute(params![
            trade.id,
            trade.symbol,
            trade.side.as_str(),
            trade.mode.as_str(),
            trade.state.as_str(),
            trade.signal_id,
            text(trade.entry_quantity),
            text(trade.quantity_tick),
            text(trade.price_tick),
            text(trade.stop_loss_pct),
            text(trade.take_profit_pct),
            text(trade.filled_quantity),
            text(trade.avg_price),
            text(trade.fee),
            trade.fee_currency,
            opt_text(trade.protect_quantity),
            opt_text(trade.stop_loss_price),
            opt_text(trade.take_profit_price),
            trade.attempts,
            trade.phase_started_ms,
            trade.due_ms,
            trade.generation,
            trade.protect_attempts,
            trade.reprotects,
            trade.entry_seen,
            trade.filled_at_ms,
            trade.protected_at_ms,
            trade.close_reason,
            trade.created_ms,
            trade.updated_ms,
            trade.epoch,
            trade.recovering_since_ms,
            trade.breaker_tripped,
        ],
    )?;
    Ok(())
}

pub fn upsert_order(conn: &Connection, trade_id: i64, order: &Order, now: Millis) -> Result<()> {
    conn.prepare_cached("INSERT INTO orders (trade_id, role, generation, client_oid, side, order_type, quantity,
            price, trigger_price, status, order_id, list_id, cumulative_quantity, avg_price, fee,
            fee_currency, last_error, sent_at_ms, verified, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)
         ON CONFLICT (client_oid) DO UPDATE SET status = excluded.status,
            order_id = excluded.order_id, list_id = excluded.list_id,
            cumulative_quantity = excluded.cumulative_quantity, avg_price = excluded.avg_price,
            fee = excluded.fee, fee_currency = excluded.fee_currency,
            last_error = excluded.last_error, sent_at_ms = excluded.sent_at_ms,
            verified = excluded.verified, updated_ms = excluded.updated_ms
         WHERE trade_id = excluded.trade_id")?.execute(params![
            trade_id,
            order.role.as_str(),
            order.generation,
            order.client_oid,
            order.side.as_str(),
            order.order_type.as_str(),
            text(order.quantity),
            opt_text(order.price),
            opt_text(order.trigger_price),
            order.status.as_str(),
            order.order_id,
            order.list_id,
            text(order.cumulative_quantity),
            text(order.avg_price),
            text(order.fee),
            order.fee_currency,
            order.last_error,
            order.sent_at_ms,
            order.verified,
            now,
        ],
    )?;
    Ok(())
}

fn trade_from_row(row: &Row<'_>) -> rusqlite::Result<Trade> {
    let row = &Named::new(row, "trades");
    Ok(Trade {
        id: row.get("id")?,
        symbol: row.get("symbol")?,
        side: parsed::<Side>(row, "side")?,
        mode: parsed::<ProtectionMode>(row, "mode")?,
        state: parsed::<Parse<TradeState>>(row, "state")?.0,
        signal_id: row.get("signal_id")?,
        entry_quantity: parsed(row, "entry_quantity")?,
        quantity_tick: parsed(row, "quantity_tick")?,
        price_tick: parsed(row, "price_tick")?,
        stop_loss_pct: parsed(row, "stop_loss_pct")?,
        take_profit_pct: parsed(row, "take_profit_pct")?,
        filled_quantity: parsed(row, "filled_quantity")?,
        avg_price: parsed(row, "avg_price")?,
        fee: parsed(row, "fee")?,
        fee_currency: row.get("fee_currency")?,
        protect_quantity: parsed_opt(row, "protect_quantity")?,
        stop_loss_price: parsed_opt(row, "stop_loss_price")?,
        take_profit_price: parsed_opt(row, "take_profit_price")?,
        attempts: row.get("attempts")?,
        phase_started_ms: row.get("phase_started_ms")?,
        due_ms: row.get("due_ms")?,
        generation: row.get("generation")?,
        protect_attempts: row.get("protect_attempts")?,
        reprotects: row.get("reprotects")?,
        entry_seen: row.get("entry_seen")?,
        filled_at_ms: row.get("filled_at_ms")?,
        protected_at_ms: row.get("protected_at_ms")?,
        close_reason: row.get("close_reason")?,
        epoch: row.get("oid_epoch")?,
        recovering_since_ms: row.get("recovering_since_ms")?,
        breaker_tripped: row.get("breaker_tripped")?,
        created_ms: row.get("created_ms")?,
        updated_ms: row.get("updated_ms")?,
    })
}

fn order_from_row(row: &Row<'_>) -> rusqlite::Result<Order> {
    let row = &Named::new(row, "orders");
    Ok(Order {
        client_oid: row.get("client_oid")?,
        role: parsed::<Role>(row, "role")?,
        generation: row.get("generation")?,
        side: parsed::<Side>(row, "side")?,
        order_type: parsed::<OrderType>(row, "order_type")?,
        quantity: parsed(row, "quantity")?,
        price: parsed_opt(row, "price")?,
        trigger_price: parsed_opt(row, "trigger_price")?,
        status: parsed::<Parse<OrderStatus>>(row, "status")?.0,
        order_id: row.get("order_id")?,
        list_id: row.get("list_id")?,
        cumulative_quantity: parsed(row, "cumulative_quantity")?,
        avg_price: parsed(row, "avg_price")?,
        fee: parsed(row, "fee")?,
        fee_currency: row.get("fee_currency")?,
        last_error: row.get("last_error")?,
        sent_at_ms: row.get("sent_at_ms")?,
        verified: row.get("verified")?,
    })
}

/// Ids of trades that are not closed or halted, oldest first, with their due time.
pub fn active_trades(conn: &Connection) -> Result<Vec<(i64, Option<Millis>)>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, due_ms FROM trades WHERE state NOT IN ('CLOSED', 'HALTED') ORDER BY id",
    )?;
    let rows = statement.query_map([], |row| {
        let row = &Named::new(row, "trades");
        Ok((row.get("id")?, row.get("due_ms")?))
    })?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_corrupt)
}

pub fn events_for(conn: &Connection, trade_id: i64) -> Result<Vec<(Millis, String, String)>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, at_ms, kind, detail FROM events WHERE trade_id = ?1 ORDER BY id",
    )?;
    let rows = statement.query_map([trade_id], |row| {
        let row = &Named::new(row, "events");
        Ok((row.get("at_ms")?, row.get("kind")?, row.get("detail")?))
    })?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_corrupt)
}

pub fn load_trade(conn: &Connection, trade_id: i64) -> Result<Trade> {
    conn.prepare_cached("SELECT * FROM trades WHERE id = ?1")?
        .query_row([trade_id], trade_from_row)
        .optional()
        .map_err(map_corrupt)?
        .ok_or_else(|| StoreError::Corrupt(format!("trade {trade_id} not found")))
}

pub fn load_orders(conn: &Connection, trade_id: i64) -> Result<Vec<Order>> {
    let mut statement =
        conn.prepare_cached("SELECT * FROM orders WHERE trade_id = ?1 ORDER BY id")?;
    let rows = statement.query_map([trade_id], order_from_row)?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_corrupt)
}

pub fn load_breakers(conn: &Connection, symbol: Option<&str>) -> Result<Vec<Breaker>> {
    let mut statement = conn.prepare_cached(
        "SELECT symbol, open, reason, tripped_at_ms, trip_count FROM breakers
         WHERE ?1 IS NULL OR symbol = ?1 ORDER BY symbol",
    )?;
    let rows = statement.query_map([symbol], |row| {
        let row = &Named::keyed(row, "breakers", "symbol");
        Ok(Breaker {
            symbol: row.get("symbol")?,
            open: row.get("open")?,
            reason: row.get("reason")?,
            tripped_at_ms: row.get("tripped_at_ms")?,
            trip_count: row.get("trip_count")?,
        })
    })?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_corrupt)
}

pub fn save_breaker(
    conn: &Connection,
    breaker: &Breaker,
    reset: Option<(Millis, &str)>,
) -> Result<()> {
    conn.prepare_cached("INSERT INTO breakers (symbol, open, reason, tripped_at_ms, trip_count, reset_at_ms, reset_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (symbol) DO UPDATE SET open = excluded.open, reason = excluded.reason,
            tripped_at_ms = excluded.tripped_at_ms, trip_count = excluded.trip_count,
            reset_at_ms = COALESCE(excluded.reset_at_ms, breakers.reset_at_ms),
            reset_by = COALESCE(excluded.reset_by, breakers.reset_by)")?.execute(params![
            breaker.symbol,
            breaker.open,
            breaker.reason,
            breaker.tripped_at_ms,
            breaker.trip_count,
            reset.map(|(at, _)| at),
            reset.map(|(_, by)| by),
        ],
    )?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRow {
    pub id: i64,
    pub key: String,
    pub severity: String,
    pub trade_id: Option<i64>,
    pub symbol: Option<String>,
    pub text: String,
    pub created_ms: Millis,
    pub attempts: u32,
    pub sent_at_ms: Option<Millis>,
    pub last_error: Option<String>,
    /// Attempts whose request went out but whose answer never came.
    pub unconfirmed: u32,
    /// When the outbox stopped retrying it (`give_up_alert`).
    pub given_up_at_ms: Option<Millis>,
}

pub(super) fn alert_from_row(row: &Row<'_>) -> rusqlite::Result<AlertRow> {
    let row = &Named::new(row, "alerts");
    Ok(AlertRow {
        id: row.get("id")?,
        key: row.get("dedup_key")?,
        severity: row.get("severity")?,
        trade_id: row.get("trade_id")?,
        symbol: row.get("symbol")?,
        text: row.get("text")?,
        created_ms: row.get("created_ms")?,
        attempts: row.get("attempts")?,
        sent_at_ms: row.get("sent_at_ms")?,
        last_error: row.get("last_error")?,
        unconfirmed: row.get("unconfirmed")?,
        given_up_at_ms: row.get("given_up_at_ms")?,
    })
}

/// Due alerts ordered by precedence before the limit, so a due CRITICAL is a candidate however
/// many older alerts are due.
pub(super) const DUE_ALERTS: &str =
    "SELECT * FROM alerts WHERE sent_at_ms IS NULL AND given_up_at_ms IS NULL AND next_at_ms <= ?1
     ORDER BY created_ms - (CASE severity WHEN 'CRITICAL' THEN ?3 ELSE 0 END), id LIMIT ?2";

/// Unsent alerts after an id, read through the partial index of unsent alerts: walking the
/// rowids from the id would visit every alert ever sent after it, on every turn.
pub(super) const UNSENT_ALERTS_AFTER: &str = "SELECT * FROM alerts INDEXED BY alerts_pending
     WHERE sent_at_ms IS NULL AND given_up_at_ms IS NULL AND id > ?1 ORDER BY id LIMIT ?2";

pub fn due_alerts(
    conn: &Connection,
    now: Millis,
    limit: usize,
    critical_head_start_ms: Millis,
) -> Result<Vec<AlertRow>> {
    let mut statement = conn.prepare_cached(DUE_ALERTS)?;
    let rows = statement.query_map(
        params![now, limit as i64, critical_head_start_ms],
        alert_from_row,
    )?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_corrupt)
}

pub fn unsent_alerts_after(
    conn: &Connection,
    after_id: i64,
    limit: usize,
) -> Result<Vec<AlertRow>> {
    let mut statement = conn.prepare_cached(UNSENT_ALERTS_AFTER)?;
    let rows = statement.query_map(params![after_id, limit as i64], alert_from_row)?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_corrupt)
}

pub fn all_alerts(conn: &Connection) -> Result<Vec<AlertRow>> {
    let mut statement = conn.prepare_cached("SELECT * FROM alerts ORDER BY id")?;
    let rows = statement.query_map([], alert_from_row)?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_corrupt)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalStatus {
    New,
    Taken,
    Dropped,
}

impl SignalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalStatus::New => "NEW",
            SignalStatus::Taken => "TAKEN",
            SignalStatus::Dropped => "DROPPED",
        }
    }
}

impl FromStr for SignalStatus {
    type Err = String;
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        match text {
            "NEW" => Ok(SignalStatus::New),
            "TAKEN" => Ok(SignalStatus::Taken),
            "DROPPED" => Ok(SignalStatus::Dropped),
            _ => Err(format!("unknown signal status {text:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalRow {
    pub id: i64,
    pub symbol: String,
    pub side: Side,
    pub quantity: Option<Decimal>,
    pub notional: Option<Decimal>,
    pub source: String,
    pub dedup_key: Option<String>,
    /// Wall-clock time, also when the agent runs on a faster paper clock.
    pub created_at_ms: Millis,
    pub status: SignalStatus,
    pub reason: Option<String>,
    pub trade_id: Option<i64>,
}

fn signal_from_row(row: &Row<'_>) -> rusqlite::Result<SignalRow> {
    let row = &Named::new(row, "signals");
    Ok(SignalRow {
        id: row.get("id")?,
        symbol: row.get("symbol")?,
        side: parsed(row, "side")?,
        quantity: parsed_opt(row, "quantity")?,
        notional: parsed_opt(row, "notional")?,
        source: row.get("source")?,
        dedup_key: row.get("dedup_key")?,
        created_at_ms: row.get("created_at_ms")?,
        status: parsed(row, "status")?,
        reason: row.get("reason")?,
        trade_id: row.get("trade_id")?,
    })
}

/// Inserts a signal; `None` when its dedup key was seen before.
pub fn insert_signal(conn: &Connection, signal: &SignalRow) -> Result<Option<i64>> {
    let size_ok = signal.quantity.is_some() != signal.notional.is_some()
        && signal
            .quantity
            .or(signal.notional)
            .is_some_and(|size| size > Decimal::ZERO);
    if !size_ok {
        return Err(StoreError::Corrupt(
            "signal needs exactly one positive size".into(),
        ));
    }
    // Only a repeated dedup key is skipped: any other refusal of the schema is an error, never
    // taken for "seen before".
    let written = conn.prepare_cached("INSERT INTO signals (symbol, side, quantity, notional, source, dedup_key, created_at_ms, status)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'NEW') ON CONFLICT (dedup_key) DO NOTHING")?.execute(params![
            signal.symbol,
            signal.side.as_str(),
            opt_text(signal.quantity),
            opt_text(signal.notional),
            signal.source,
            signal.dedup_key,
            signal.created_at_ms,
        ],
    )?;
    Ok((written == 1).then(|| conn.last_insert_rowid()))
}

/// Whether a signal with this dedup key is already in the inbox (taken, dropped or waiting).
pub fn signal_key_exists(conn: &Connection, dedup_key: &str) -> Result<bool> {
    let found = conn
        .prepare_cached("SELECT 1 FROM signals WHERE dedup_key = ?1")?
        .exists(params![dedup_key])?;
    Ok(found)
}

pub fn new_signals(conn: &Connection, limit: usize) -> Result<Vec<SignalRow>> {
    let mut statement =
        conn.prepare_cached("SELECT * FROM signals WHERE status = 'NEW' ORDER BY id LIMIT ?1")?;
    let rows = statement.query_map([limit as i64], signal_from_row)?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_corrupt)
}

pub fn all_signals(conn: &Connection) -> Result<Vec<SignalRow>> {
    let mut statement = conn.prepare_cached("SELECT * FROM signals ORDER BY id")?;
    let rows = statement.query_map([], signal_from_row)?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_corrupt)
}

pub fn cache_instrument(conn: &Connection, instrument: &Instrument, now: Millis) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO instruments (symbol, base, quote, price_tick, quantity_tick, min_quantity,
            min_notional, taker_fee_rate, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (symbol) DO UPDATE SET base = excluded.base, quote = excluded.quote,
            price_tick = excluded.price_tick, quantity_tick = excluded.quantity_tick,
            min_quantity = excluded.min_quantity, min_notional = excluded.min_notional,
            taker_fee_rate = excluded.taker_fee_rate, updated_ms = excluded.updated_ms",
    )?
    .execute(params![
        instrument.symbol,
        instrument.base,
        instrument.quote,
        text(instrument.price_tick),
        text(instrument.quantity_tick),
        text(instrument.min_quantity),
        text(instrument.min_notional),
        text(instrument.taker_fee_rate),
        now,
    ])?;
    Ok(())
}

pub fn cached_instrument(conn: &Connection, symbol: &str) -> Result<Option<Instrument>> {
    conn.prepare_cached("SELECT * FROM instruments WHERE symbol = ?1")?
        .query_row([symbol], |row| {
            let row = &Named::keyed(row, "instruments", "symbol");
            Ok(Instrument {
                symbol: row.get("symbol")?,
                base: row.get("base")?,
                quote: row.get("quote")?,
                price_tick: parsed(row, "price_tick")?,
                quantity_tick: parsed(row, "quantity_tick")?,
                min_quantity: parsed(row, "min_quantity")?,
                min_notional: parsed(row, "min_notional")?,
                taker_fee_rate: parsed(row, "taker_fee_rate")?,
            })
        })
        .optional()
        .map_err(map_corrupt)
}

/// An active trade's id, due time and state.
pub type ActiveTrade = (i64, Option<Millis>, Option<TradeState>);

/// `active_trades` with each trade's state; `None` for a state the core does not know (that
/// trade's own load reports it and halts it; the others are not held up by it).
pub fn active_trade_states(conn: &Connection) -> Result<Vec<ActiveTrade>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, due_ms, state FROM trades WHERE state NOT IN ('CLOSED', 'HALTED') ORDER BY id",
    )?;
    let rows = statement.query_map([], |row| {
        // Any value that is not text reads as no state, so one hand-edited row never stops
        // the listing of the others.
        let state = match row.get_ref(2)? {
            ValueRef::Text(text) => String::from_utf8_lossy(text).into_owned(),
            _ => String::new(),
        };
        let row = &Named::new(row, "trades");
        let id: i64 = row.get("id")?;
        Ok((id, row.get("due_ms")?, state))
    })?;
    let rows = rows
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_corrupt)?;
    Ok(rows
        .into_iter()
        .map(|(id, due, state)| (id, due, TradeState::parse(&state)))
        .collect())
}
