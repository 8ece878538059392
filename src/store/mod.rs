//! SQLite persistence, the source of idempotency: trades, orders (intent rows written before any
//! network call), signals, breakers, the alert outbox, the audit trail, cached instruments and
//! the database's order-id epoch. Opens with WAL, `synchronous=FULL` and an explicit busy
//! timeout. Only `open_for_run` migrates (the numbered migrations of `sql/`, in one
//! transaction), and only under the run lock, so one agent owns a database; every other open
//! refuses a schema it does not know and never changes one. Knows `core`'s types and nothing
//! of venues or shell.

#[cfg(test)]
mod alert_tests;
mod backup;
mod gauges;
mod lock;
mod recent;
mod retention;
mod risk;
mod rows;
#[cfg(test)]
mod schema_tests;
mod watchlist;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use thiserror::Error;

use crate::core::breaker::Breaker;
use crate::core::domain::{Instrument, Millis};
use crate::core::trade::{Alert, Order, TradeView};

pub use backup::{
    BackupError, BackupOptions, BackupReport, PAGES_PER_STEP_DEFAULT, PAGES_PER_STEP_MAX,
    TIME_LIMIT_DEFAULT, TIME_LIMIT_MAX, backup,
};
pub use gauges::{OpenTrade, open_trades, pending_alerts};
pub use lock::{RunLock, lock_path};
pub use recent::{Listing, status_alerts, status_trade_ids};
pub use retention::{PRUNE_BATCH, prune_events};
pub use risk::{
    alert_exists, entries_since, loss_state, open_trade_count, protected_trade_count,
    realized_since, record_global_reset, risk_drops_since, risk_usage, save_loss_state,
};
pub use rows::{AlertRow, SignalRow, SignalStatus};
pub use watchlist::{WatchlistRecord, save_watchlist, watchlist_reported, watchlist_states};

/// Migrations in order; the schema version is the number of migrations applied.
const MIGRATIONS: [&str; 6] = [
    include_str!("../../sql/0001_initial.sql"),
    include_str!("../../sql/0002_oid_epoch.sql"),
    include_str!("../../sql/0003_recovery.sql"),
    include_str!("../../sql/0004_unconfirmed_alerts.sql"),
    include_str!("../../sql/0005_scale_indexes.sql"),
    include_str!("../../sql/0006_risk.sql"),
];
/// The indexes of migration 5, for the scale measurement's before/after comparison.
pub const SCALE_INDEXES_SQL: &str = include_str!("../../sql/0005_scale_indexes.sql");
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const STATEMENT_CACHE_CAPACITY: usize = 64;
/// The order-id epoch is this many lowercase hex characters (4 random bytes).
pub const OID_EPOCH_LENGTH: usize = 8;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error(
        "database {path}: schema {found} is from a newer fillguard (this one knows {supported}); run a newer fillguard or restore a backup"
    )]
    TooNew {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error(
        "database {path}: schema {found} is older than this fillguard ({supported}): start `fillguard run` once to migrate it"
    )]
    TooOld {
        path: String,
        found: i64,
        supported: i64,
    },
    #[error("database {path}: migration to schema {version} failed, nothing was changed: {source}")]
    Migration {
        path: String,
        version: i64,
        source: rusqlite::Error,
    },
    #[error("database {path} is not a fillguard database: {reason}")]
    Foreign { path: String, reason: String },
    #[error("no database at {path} (has fillguard run with this configuration?)")]
    Missing { path: String },
    #[error(
        "database {path} is in use by another fillguard run ({}); one agent per database",
        holder_text(.holder)
    )]
    InUse { path: String, holder: Option<u32> },
    #[error("lock file {path}: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("stored row is invalid: {0}")]
    Corrupt(String),
}

fn holder_text(holder: &Option<u32>) -> String {
    match holder {
        Some(pid) => format!("pid {pid}"),
        None => "pid not yet written".into(),
    }
}

impl StoreError {
    /// Whether the database refused for a reason that can pass: locked by another process
    /// past the busy timeout, disk full, an I/O error. Nothing was written; retrying later is
    /// safe. Corrupt rows, a too-new schema and programming errors are not transient.
    pub fn is_transient(&self) -> bool {
        use rusqlite::ErrorCode;
        let StoreError::Sql(rusqlite::Error::SqliteFailure(failure, _)) = self else {
            return false;
        };
        matches!(
            failure.code,
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::SystemIoFailure
        )
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Where in a write transaction a fault may strike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePoint {
    /// Before `BEGIN`: an error here is what a locked (busy) or full database answers.
    Begin,
    /// After the work, before `COMMIT`: an error or a crash here loses the whole transaction.
    Commit,
    /// After `COMMIT`: the data is durable but the caller has not seen it. Only a crash (a
    /// panic) is meaningful here; an error would report a committed write as failed.
    Committed,
}

/// Storage faults for the deterministic simulation, consulted at every write transaction of
/// the agent: it may answer an SQLite error (busy, full) or panic to simulate a crash.
/// Production stores have none.
pub trait StoreFaults {
    fn at(&mut self, point: WritePoint) -> rusqlite::Result<()>;
}

pub struct Store {
    conn: Connection,
    faults: Option<Box<dyn StoreFaults>>,
    /// The run lock, for a store opened by `open_for_run`; declared after `conn` so the
    /// connection closes before the lock is released.
    _lock: Option<RunLock>,
}

/// What an open may do to the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upgrade {
    /// `run`, under its lock: apply every missing migration.
    Any,
    /// Commands beside the agent: create the schema on an empty database, change no other.
    EmptyOnly,
}

impl Store {
    /// For `fillguard run` and each simulated agent: takes the database's run lock for the
    /// life of the store (refusing, with the holder's pid, while another run holds it), then
    /// opens the database, creating it if needed, and brings its schema up to date. The only
    /// open that migrates. The lock is taken first: a second run must touch nothing.
    pub fn open_for_run(path: &Path) -> Result<Store> {
        let lock = RunLock::acquire(path)?;
        let (conn, schema) = open_read_write(path, Upgrade::Any)?;
        if let Schema::Older(found) = schema {
            // What an upgrade did, for the operator's log: the one transaction committed.
            tracing::info!(
                database = %path.display(),
                from = found,
                to = MIGRATIONS.len(),
                "database schema migrated"
            );
        }
        // Every run draws a new epoch for the trades it opens (older trades keep theirs): a
        // database restored from a copy reuses trade ids the lost one had used, and its new
        // trades must still never share a client_oid with the lost one's orders.
        conn.execute(
            "UPDATE meta SET value = lower(hex(randomblob(4))) WHERE key = 'oid_epoch'",
            [],
        )
        .map_err(|source| StoreError::Open {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Store {
            conn,
            faults: None,
            _lock: Some(lock),
        })
    }

    /// For commands that write beside a running agent (`signal`, `breaker trip|reset`):
    /// refuses a database whose schema is older or newer than this fillguard's and never
    /// changes an existing schema. A database that does not exist yet (or is empty) is
    /// created with the current schema, since no agent can be running on it: `signal` may
    /// queue before the first `run`.
    pub fn open(path: &Path) -> Result<Store> {
        let (conn, _) = open_read_write(path, Upgrade::EmptyOnly)?;
        Ok(Store {
            conn,
            faults: None,
            _lock: None,
        })
    }

    /// For commands that only read (`status`, `breaker list`): a read-only connection, so
    /// they cannot write; refuses a missing database and any schema but this fillguard's.
    /// Works while the agent runs (WAL readers do not block the writer).
    pub fn open_read_only(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.display().to_string(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(open_error(path))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error(path))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        match schema_version(&conn, path, &MIGRATIONS)? {
            Schema::Current => Ok(Store {
                conn,
                faults: None,
                _lock: None,
            }),
            Schema::Empty => Err(StoreError::Missing {
                path: path.display().to_string(),
            }),
            Schema::Older(found) => Err(too_old(path, found, &MIGRATIONS)),
        }
    }

    /// Injects storage faults into every later write transaction (simulation only).
    pub fn set_faults(&mut self, faults: Box<dyn StoreFaults>) {
        self.faults = Some(faults);
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction; commits only if it succeeds. Every
    /// write of the agent goes through here, so it is also where storage faults are injected.
    pub fn transaction<T>(&mut self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.fault(WritePoint::Begin)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = work(&tx)?;
        if let Some(faults) = self.faults.as_mut() {
            // Dropping `tx` on an error or a panic rolls the transaction back.
            faults.at(WritePoint::Commit)?;
        }
        tx.commit()?;
        self.fault(WritePoint::Committed)?;
        Ok(value)
    }

    fn fault(&mut self, point: WritePoint) -> Result<()> {
        match self.faults.as_mut() {
            Some(faults) => Ok(faults.at(point)?),
            None => Ok(()),
        }
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }
}

fn open_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    }
}

/// Opens read-write (creating the file if needed). The schema is checked before any pragma
/// that could write, so a refused database is left byte for byte as it was. Returns the
/// schema as it was found, before any migration.
fn open_read_write(path: &Path, upgrade: Upgrade) -> Result<(Connection, Schema)> {
    let mut conn = Connection::open(path).map_err(open_error(path))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error(path))?;
    // Every statement is prepared once per connection and reused.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    let schema = schema_version(&conn, path, &MIGRATIONS)?;
    if let (Schema::Older(found), Upgrade::EmptyOnly) = (schema, upgrade) {
        return Err(too_old(path, found, &MIGRATIONS));
    }
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(open_error(path))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(open_error(path))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(open_error(path))?;
    if schema != Schema::Current {
        migrate(&mut conn, path, &MIGRATIONS, upgrade)?;
    }
    Ok((conn, schema))
}

/// A database's schema as this fillguard sees it (newer and foreign ones are errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// No schema at all: a new file.
    Empty,
    /// Version 1 up to one below the current version.
    Older(i64),
    Current,
}

/// Reads `user_version` (and whether a version-0 database holds tables) without writing.
fn schema_version(conn: &Connection, path: &Path, migrations: &[&str]) -> Result<Schema> {
    let supported = migrations.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let foreign = |reason: String| StoreError::Foreign {
        path: path.display().to_string(),
        reason,
    };
    if found < 0 {
        return Err(foreign(format!("schema version {found}")));
    }
    if found > supported {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found,
            supported,
        });
    }
    if found == supported {
        return Ok(Schema::Current);
    }
    if found > 0 {
        return Ok(Schema::Older(found));
    }
    let tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |row| row.get(0))?;
    if tables > 0 {
        return Err(foreign(format!(
            "schema version 0 but it holds {tables} schema objects"
        )));
    }
    Ok(Schema::Empty)
}

fn too_old(path: &Path, found: i64, migrations: &[&str]) -> StoreError {
    StoreError::TooOld {
        path: path.display().to_string(),
        found,
        supported: migrations.len() as i64,
    }
}

/// Applies the missing migrations in one `BEGIN IMMEDIATE` transaction: all of them and the
/// new `user_version`, or nothing. The version is read again inside the transaction, since
/// another process may have created or migrated the schema since it was first read.
fn migrate(
    conn: &mut Connection,
    path: &Path,
    migrations: &[&str],
    upgrade: Upgrade,
) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = match schema_version(&tx, path, migrations)? {
        Schema::Current => return Ok(()),
        Schema::Empty => 0,
        Schema::Older(found) if upgrade == Upgrade::Any => found,
        Schema::Older(found) => return Err(too_old(path, found, migrations)),
    };
    for (index, sql) in migrations.iter().enumerate() {
        let version = index as i64 + 1;
        if version > found {
            tx.execute_batch(sql)
                .and_then(|()| tx.pragma_update(None, "user_version", version))
                .map_err(|source| StoreError::Migration {
                    path: path.display().to_string(),
                    version,
                    source,
                })?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The database's order-id epoch: 8 lowercase hex characters, created once with the database
/// (migration 2) and never changed, so a new database never reuses an earlier one's
/// client_oids on the same account.
pub fn oid_epoch(conn: &Connection) -> Result<String> {
    let epoch: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'oid_epoch'")?
        .query_row([], |row| row.get(0))
        .optional()
        .map_err(|error| {
            StoreError::Corrupt(format!("meta row oid_epoch: column value: {error}"))
        })?;
    let Some(epoch) = epoch else {
        return Err(StoreError::Corrupt("meta row oid_epoch is missing".into()));
    };
    let is_hex = |byte: u8| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte);
    if epoch.len() != OID_EPOCH_LENGTH || !epoch.bytes().all(is_hex) {
        return Err(StoreError::Corrupt(format!(
            "meta row oid_epoch: column value = {epoch:?}: not {OID_EPOCH_LENGTH} lowercase hex characters"
        )));
    }
    Ok(epoch)
}

/// Every epoch this database has made client_oids with: its trades' and the current one.
pub fn known_epochs(conn: &Connection) -> Result<Vec<String>> {
    let mut epochs: Vec<String> = conn
        .prepare_cached("SELECT DISTINCT oid_epoch FROM trades ORDER BY oid_epoch")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    epochs.push(oid_epoch(conn)?);
    Ok(epochs)
}

/// A trade's symbol, for the log fields of the lines about it (`None`: no such trade).
pub fn trade_symbol(conn: &Connection, trade_id: i64) -> Result<Option<String>> {
    let symbol = conn
        .prepare_cached("SELECT symbol FROM trades WHERE id = ?1")?
        .query_row(params![trade_id], |row| row.get::<_, String>(0))
        .optional()?;
    Ok(symbol)
}

/// Halts a trade whose stored state cannot be used, without loading it: returns its symbol if
/// that can still be read.
pub fn quarantine_trade(
    conn: &Connection,
    trade_id: i64,
    reason: &str,
    now: Millis,
) -> Result<Option<String>> {
    conn.prepare_cached(
        "UPDATE trades SET state = 'HALTED', close_reason = ?3, due_ms = NULL,
            recovering_since_ms = NULL, updated_ms = ?2, ended_ms = COALESCE(ended_ms, ?2)
         WHERE id = ?1",
    )?
    .execute(params![trade_id, now, reason])?;
    let symbol: Option<Option<String>> = conn
        .prepare_cached("SELECT symbol FROM trades WHERE id = ?1")?
        .query_row([trade_id], |row| {
            row.get::<_, String>(0).map(Some).or(Ok(None))
        })
        .optional()?;
    Ok(symbol.flatten())
}

/// Saves a trade and all its orders (insert or update, in the view's order, so an old leg is
/// marked terminal before a new generation is inserted).
pub fn save_view(conn: &Connection, view: &TradeView) -> Result<()> {
    rows::validate_view(view)?;
    rows::upsert_trade(conn, &view.trade)?;
    for order in &view.orders {
        rows::upsert_order(conn, view.trade.id, order, view.trade.updated_ms)?;
    }
    risk::record_end(conn, view)
}

/// Saves one order of a stored trade: the insert of a new intent, where the schema's unique
/// client_oid and one-live-leg-per-role indexes refuse a second attempt, or the update of an
/// existing one. `save_view` does this for every order of a view.
pub fn save_order(conn: &Connection, trade_id: i64, order: &Order, now: Millis) -> Result<()> {
    rows::upsert_order(conn, trade_id, order, now)
}

/// Loads a trade and its orders; a row that does not parse is an error naming the trade, the
/// table, the row and the column, and leaves every other trade loadable.
pub fn load_view(conn: &Connection, trade_id: i64) -> Result<TradeView> {
    let trade = rows::load_trade(conn, trade_id)?;
    let orders = rows::load_orders(conn, trade_id).map_err(|error| match error {
        StoreError::Corrupt(message) => StoreError::Corrupt(format!("trade {trade_id}: {message}")),
        other => other,
    })?;
    let view = TradeView { trade, orders };
    rows::validate_view(&view)?;
    Ok(view)
}

pub fn next_trade_id(conn: &Connection) -> Result<i64> {
    let max: Option<i64> = conn
        .prepare_cached("SELECT MAX(id) FROM trades")?
        .query_row([], |row| row.get(0))?;
    max.unwrap_or(0).checked_add(1).ok_or_else(|| {
        StoreError::Corrupt(format!("trades row {max:?}: column id leaves no next id"))
    })
}

/// Ids of trades that are not closed or halted, oldest first, with their due time.
pub fn active_trades(conn: &Connection) -> Result<Vec<(i64, Option<Millis>)>> {
    rows::active_trades(conn)
}

pub use rows::ActiveTrade;

/// Active trades with their due time and state (`None`: not a state the core knows), oldest
/// first.
pub fn active_trade_states(conn: &Connection) -> Result<Vec<ActiveTrade>> {
    rows::active_trade_states(conn)
}

pub fn all_trade_ids(conn: &Connection) -> Result<Vec<i64>> {
    let mut statement = conn.prepare_cached("SELECT id FROM trades ORDER BY id")?;
    let rows = statement.query_map([], |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn open_trade_on(conn: &Connection, symbol: &str) -> Result<bool> {
    let count: i64 = conn
        .prepare_cached(
            "SELECT COUNT(*) FROM trades WHERE symbol = ?1 AND state NOT IN ('CLOSED', 'HALTED')",
        )?
        .query_row([symbol], |row| row.get(0))?;
    Ok(count > 0)
}

/// Whether any stored order carries this client_oid (reconciliation of the exchange's orders).
pub fn knows_client_oid(conn: &Connection, client_oid: &str) -> Result<bool> {
    let found: Option<i64> = conn
        .query_row(
            "SELECT id FROM orders WHERE client_oid = ?1",
            [client_oid],
            |row| row.get(0),
        )
        .optional()?;
    Ok(found.is_some())
}

pub fn record_event(
    conn: &Connection,
    at_ms: Millis,
    trade_id: Option<i64>,
    symbol: Option<&str>,
    kind: &str,
    detail: &str,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO events (at_ms, trade_id, symbol, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![at_ms, trade_id, symbol, kind, detail])?;
    Ok(())
}

pub fn events_for(conn: &Connection, trade_id: i64) -> Result<Vec<(Millis, String, String)>> {
    rows::events_for(conn, trade_id)
}

// Breakers.

pub fn breakers(conn: &Connection) -> Result<Vec<Breaker>> {
    rows::load_breakers(conn, None)
}

pub fn breaker(conn: &Connection, symbol: &str) -> Result<Option<Breaker>> {
    Ok(rows::load_breakers(conn, Some(symbol))?.pop())
}

/// When the operator (or the self-check) last reset `symbol`'s breaker.
pub fn breaker_reset_at(conn: &Connection, symbol: &str) -> Result<Option<Millis>> {
    let reset: Option<Option<Millis>> = conn
        .prepare_cached("SELECT reset_at_ms FROM breakers WHERE symbol = ?1")?
        .query_row([symbol], |row| row.get(0))
        .optional()
        .map_err(|error| {
            StoreError::Corrupt(format!(
                "breakers row {symbol}: column reset_at_ms: {error}"
            ))
        })?;
    Ok(reset.flatten())
}

/// Trades of `symbol` that are recovering (halted with a position that may exist).
pub fn recovering_trades(conn: &Connection, symbol: &str) -> Result<Vec<i64>> {
    let mut statement = conn.prepare_cached(
        // The redundant NOT IN lets the planner use the partial index of open trades.
        "SELECT id FROM trades WHERE symbol = ?1 AND state NOT IN ('CLOSED', 'HALTED')
             AND state = 'RECOVERING' ORDER BY id",
    )?;
    let ids = statement
        .query_map([symbol], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<i64>>>()?;
    Ok(ids)
}

pub fn save_breaker(
    conn: &Connection,
    breaker: &Breaker,
    reset: Option<(Millis, &str)>,
) -> Result<()> {
    rows::save_breaker(conn, breaker, reset)
}

// Alerts outbox.

/// Queues an alert unless one with the same key is already queued or sent. Returns whether a
/// new row was written.
pub fn enqueue_alert(
    conn: &Connection,
    alert: &Alert,
    trade_id: Option<i64>,
    symbol: Option<&str>,
    now: Millis,
) -> Result<bool> {
    let written = conn.prepare_cached("INSERT OR IGNORE INTO alerts (dedup_key, severity, trade_id, symbol, text, created_ms, next_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)")?.execute(params![alert.key, alert.severity.as_str(), trade_id, symbol, alert.text, now],
    )?;
    Ok(written == 1)
}

/// A CRITICAL alert goes ahead of alerts queued up to this long before it; older ones keep
/// their turn, so no alert waits behind a stream of newer CRITICAL ones.
pub const CRITICAL_HEAD_START_MS: Millis = 60_000;

/// Up to `limit` unsent alerts due at `now`, in the order they should go out: by when they
/// were queued, less `CRITICAL_HEAD_START_MS` for CRITICAL ones, then by id.
pub fn due_alerts(conn: &Connection, now: Millis, limit: usize) -> Result<Vec<AlertRow>> {
    rows::due_alerts(conn, now, limit, CRITICAL_HEAD_START_MS)
}

pub fn all_alerts(conn: &Connection) -> Result<Vec<AlertRow>> {
    rows::all_alerts(conn)
}

/// Unsent alerts queued after the alert with id `after_id`, oldest first, due or not.
pub fn unsent_alerts_after(
    conn: &Connection,
    after_id: i64,
    limit: usize,
) -> Result<Vec<AlertRow>> {
    rows::unsent_alerts_after(conn, after_id, limit)
}

pub fn mark_alert_sent(conn: &Connection, id: i64, now: Millis) -> Result<()> {
    conn.prepare_cached("UPDATE alerts SET sent_at_ms = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1")?.execute(params![id, now],
    )?;
    Ok(())
}

/// Makes every unsent alert scheduled later than `latest_ms` due at `now` (its schedule came
/// from a clock that has since gone back). Returns how many there were.
pub fn pull_alerts_forward(conn: &Connection, now: Millis, latest_ms: Millis) -> Result<usize> {
    let changed = conn
        .prepare_cached(
            "UPDATE alerts SET next_at_ms = ?1
             WHERE sent_at_ms IS NULL AND given_up_at_ms IS NULL AND next_at_ms > ?2",
        )?
        .execute(params![now, latest_ms])?;
    Ok(changed)
}

/// Moves an unsent alert's next attempt to `next_at_ms`, recording nothing else.
pub fn defer_alert(conn: &Connection, id: i64, next_at_ms: Millis) -> Result<()> {
    conn.prepare_cached("UPDATE alerts SET next_at_ms = ?2 WHERE id = ?1 AND sent_at_ms IS NULL")?
        .execute(params![id, next_at_ms])?;
    Ok(())
}

pub fn mark_alert_failed(
    conn: &Connection,
    id: i64,
    error: &str,
    next_at_ms: Millis,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE alerts SET attempts = attempts + 1, last_error = ?2, next_at_ms = ?3 WHERE id = ?1",
    )?
    .execute(params![id, error, next_at_ms])?;
    Ok(())
}

/// Records an attempt whose request went out but whose answer never came (the message may
/// have been delivered). Returns how many such attempts the alert has had.
pub fn mark_alert_unconfirmed(
    conn: &Connection,
    id: i64,
    error: &str,
    next_at_ms: Millis,
) -> Result<u32> {
    let unconfirmed: i64 = conn
        .prepare_cached(
            "UPDATE alerts SET attempts = attempts + 1, unconfirmed = unconfirmed + 1,
                last_error = ?2, next_at_ms = ?3 WHERE id = ?1 RETURNING unconfirmed",
        )?
        .query_row(params![id, error, next_at_ms], |row| row.get(0))?;
    Ok(u32::try_from(unconfirmed).unwrap_or(u32::MAX))
}

/// Takes an unsent alert out of the outbox for good: it is neither retried nor pending, and
/// `error` (its `last_error`) says why.
pub fn give_up_alert(conn: &Connection, id: i64, error: &str, now: Millis) -> Result<()> {
    conn.prepare_cached(
        "UPDATE alerts SET given_up_at_ms = ?3, last_error = ?2
         WHERE id = ?1 AND sent_at_ms IS NULL",
    )?
    .execute(params![id, error, now])?;
    Ok(())
}

// Signals.

pub fn signal_key_exists(conn: &Connection, dedup_key: &str) -> Result<bool> {
    rows::signal_key_exists(conn, dedup_key)
}

pub fn insert_signal(conn: &Connection, signal: &SignalRow) -> Result<Option<i64>> {
    rows::insert_signal(conn, signal)
}

pub fn new_signals(conn: &Connection, limit: usize) -> Result<Vec<SignalRow>> {
    rows::new_signals(conn, limit)
}

pub fn all_signals(conn: &Connection) -> Result<Vec<SignalRow>> {
    rows::all_signals(conn)
}

/// Marks a NEW signal taken (by `trade_id`) or dropped. A signal that is not NEW any more is
/// refused: the transaction that would open a trade for it fails whole, so a signal opens at
/// most one trade even if it were read twice (and `trades.signal_id` is UNIQUE besides).
pub fn settle_signal(
    conn: &Connection,
    id: i64,
    status: SignalStatus,
    reason: Option<&str>,
    trade_id: Option<i64>,
) -> Result<()> {
    let changed = conn.prepare_cached("UPDATE signals SET status = ?2, reason = ?3, trade_id = ?4 WHERE id = ?1 AND status = 'NEW'")?.execute(params![id, status.as_str(), reason, trade_id],
    )?;
    if changed != 1 {
        return Err(StoreError::Corrupt(format!(
            "signal {id} is not new (already taken or dropped, or missing): not settled again"
        )));
    }
    Ok(())
}

// Instruments.

pub fn cache_instrument(conn: &Connection, instrument: &Instrument, now: Millis) -> Result<()> {
    rows::cache_instrument(conn, instrument, now)
}

pub fn cached_instrument(conn: &Connection, symbol: &str) -> Result<Option<Instrument>> {
    rows::cached_instrument(conn, symbol)
}

#[cfg(test)]
pub(crate) mod tests {
    use rust_decimal::Decimal;

    use super::*;
    use crate::core::domain::{OrderType, ProtectionMode, Side};
    use crate::core::entry::{EntryContext, EntryRequest, EntrySize, plan_entry};
    use crate::core::ids::Role;
    use crate::core::trade::{OrderStatus, new_order};

    /// A stored-shape trade (BTC_USDT, BUY 0.5, OCO) for tests across the crate.
    pub(crate) fn view(trade_id: i64) -> TradeView {
        let instrument = Instrument {
            symbol: "BTC_USDT".into(),
            base: "BTC".into(),
            quote: "USDT".into(),
            price_tick: "0.01".parse().unwrap(),
            quantity_tick: "0.0001".parse().unwrap(),
            min_quantity: "0.0001".parse().unwrap(),
            min_notional: Decimal::ONE,
            taker_fee_rate: "0.001".parse().unwrap(),
        };
        let request = EntryRequest {
            symbol: "BTC_USDT".into(),
            side: Side::Buy,
            size: EntrySize::Quantity("0.5".parse().unwrap()),
            stop_loss_pct: Decimal::ONE,
            take_profit_pct: Decimal::TWO,
            mode: ProtectionMode::Oco,
            signal_id: None,
        };
        let context = EntryContext {
            epoch: "",
            instrument: &instrument,
            last_price: Decimal::ONE_HUNDRED,
            free_base: Decimal::ZERO,
            free_quote: Decimal::from(1_000),
            symbol_breaker: None,
            global_breaker: None,
            open_trade_on_symbol: false,
            allow_concurrent_trades: false,
        };
        plan_entry(trade_id, &request, &context, 1_000).unwrap()
    }

    fn stop(generation: u32) -> crate::core::trade::Order {
        let quantity = "0.4995".parse().unwrap();
        let trigger = Some("99".parse().unwrap());
        new_order(
            "",
            1,
            Role::StopLoss,
            generation,
            Side::Sell,
            OrderType::StopLoss,
            quantity,
            None,
            trigger,
        )
    }

    #[test]
    fn a_view_round_trips_with_exact_decimals() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let mut original = view(1);
        original.orders.push(stop(1));
        store
            .transaction(|conn| save_view(conn, &original))
            .unwrap();
        let loaded = load_view(store.conn(), 1).unwrap();
        assert_eq!(loaded, original);
    }

    #[test]
    fn a_second_live_stop_loss_for_a_trade_is_refused_by_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let mut first = view(1);
        first.orders.push(stop(1));
        store.transaction(|conn| save_view(conn, &first)).unwrap();
        let mut second = first.clone();
        second.orders.push(stop(2));
        let refused = store.transaction(|conn| save_view(conn, &second));
        assert!(refused.is_err(), "two live stops were stored");
        // Once the first is terminal, the next generation is accepted.
        second.orders[1].status = OrderStatus::NotPlaced;
        store.transaction(|conn| save_view(conn, &second)).unwrap();
    }

    #[test]
    fn opening_twice_applies_migrations_once_with_wal_and_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        drop(Store::open(&path).unwrap());
        let store = Store::open(&path).unwrap();
        let conn = store.conn();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let synchronous: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "FULL");
    }

    #[test]
    fn a_corrupt_decimal_is_reported_with_table_row_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let original = view(1);
        store
            .transaction(|conn| save_view(conn, &original))
            .unwrap();
        store
            .conn()
            .execute("UPDATE trades SET avg_price = '1.2.3' WHERE id = 1", [])
            .unwrap();
        let error = load_view(store.conn(), 1).unwrap_err().to_string();
        assert!(
            error.contains("trades row 1") && error.contains("avg_price"),
            "{error}"
        );
    }

    /// Answers `answer` at `point`, every time.
    struct Fault {
        point: WritePoint,
        answer: fn() -> rusqlite::Result<()>,
    }

    impl StoreFaults for Fault {
        fn at(&mut self, point: WritePoint) -> rusqlite::Result<()> {
            if point == self.point {
                (self.answer)()
            } else {
                Ok(())
            }
        }
    }

    fn disk_full() -> rusqlite::Result<()> {
        Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        ))
    }

    fn crash() -> rusqlite::Result<()> {
        panic!("crash");
    }

    fn trade_count(path: &Path) -> usize {
        all_trade_ids(Store::open(path).unwrap().conn())
            .unwrap()
            .len()
    }

    #[test]
    fn a_write_refused_at_commit_is_transient_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut store = Store::open(&path).unwrap();
        store.set_faults(Box::new(Fault {
            point: WritePoint::Commit,
            answer: disk_full,
        }));
        let error = store
            .transaction(|conn| save_view(conn, &view(1)))
            .unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert_eq!(trade_count(&path), 0);
    }

    #[test]
    fn a_crash_before_commit_loses_the_write_and_one_after_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        for (point, kept) in [(WritePoint::Commit, 0), (WritePoint::Committed, 1)] {
            let mut store = Store::open(&path).unwrap();
            store.set_faults(Box::new(Fault {
                point,
                answer: crash,
            }));
            let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                store.transaction(|conn| save_view(conn, &view(1)))
            }));
            assert!(crashed.is_err());
            drop(store);
            assert_eq!(trade_count(&path), kept, "crash at {point:?}");
        }
    }

    #[test]
    fn a_really_full_database_is_a_transient_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut store = Store::open(&path).unwrap();
        let pages: i64 = store
            .conn()
            .query_row("PRAGMA page_count", [], |row| row.get(0))
            .unwrap();
        store
            .conn()
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
        let big = "x".repeat(64 * 1024);
        let error = store
            .transaction(|conn| record_event(conn, 1, None, None, "filler", &big))
            .unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert!(!StoreError::Corrupt("x".into()).is_transient());
    }

    #[test]
    fn a_database_locked_by_another_process_is_a_transient_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut store = Store::open(&path).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        // Waits out the busy timeout (5 s), then refuses.
        let error = store
            .transaction(|conn| save_view(conn, &view(1)))
            .unwrap_err();
        assert!(error.is_transient(), "{error}");
        other.execute_batch("ROLLBACK").unwrap();
        store.transaction(|conn| save_view(conn, &view(1))).unwrap();
    }

    #[test]
    fn alerts_are_deduplicated_by_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let alert = Alert {
            severity: crate::core::trade::Severity::Critical,
            key: "protection-1".into(),
            text: "x".into(),
        };
        assert!(enqueue_alert(store.conn(), &alert, Some(1), Some("BTC_USDT"), 5).unwrap());
        assert!(!enqueue_alert(store.conn(), &alert, Some(1), Some("BTC_USDT"), 6).unwrap());
        assert_eq!(due_alerts(store.conn(), 10, 10).unwrap().len(), 1);
    }
}
