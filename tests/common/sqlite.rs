//! Reading a database file as the tests see it, outside fillguard: its schema version, its
//! integrity, its journal mode; and the part of `status --json` a backup or a migration must
//! keep (trade ids, states, the ids of every order).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use serde_json::{Value, json};

fn open(path: &Path) -> Connection {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

pub fn user_version(path: &Path) -> i64 {
    open(path)
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

/// `PRAGMA integrity_check`'s lines ("ok" alone for a sound file).
pub fn integrity_check(path: &Path) -> Vec<String> {
    let conn = open(path);
    let mut statement = conn.prepare("PRAGMA integrity_check").unwrap();
    statement
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<Vec<String>>>()
        .unwrap()
}

pub fn journal_mode(path: &Path) -> String {
    open(path)
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap()
}

/// How many rows `table` holds.
pub fn count(path: &Path, table: &str) -> i64 {
    open(path)
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .unwrap()
}

/// The number of migrations in `sql/`: the newest schema version this build knows.
pub fn latest_schema_version() -> i64 {
    migration_files().len() as i64
}

/// The migration files of `sql/`, in order.
pub fn migration_files() -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    files
}

/// Per trade of `status --json`: id, state, and each order's client_oid, exchange order id,
/// list id and status.
pub fn trade_summary(status: &Value) -> Vec<Value> {
    status["trades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|trade| {
            let orders: Vec<Value> = trade["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|order| {
                    json!([
                        order["client_oid"],
                        order["order_id"],
                        order["list_id"],
                        order["status"]
                    ])
                })
                .collect();
            json!({
                "id": trade["id"],
                "state": trade["state"],
                "stop_loss": trade["stop_loss"]["order_id"],
                "take_profit": trade["take_profit"]["order_id"],
                "orders": orders,
            })
        })
        .collect()
}
