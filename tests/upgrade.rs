//! Upgrades with the real binary: a database at the previous schema version (built by applying
//! every migration of `sql/` but the newest, then filled with a real run's trades) is refused
//! by `status`, `backup` and `signal` without a byte changing, and migrated by a real
//! `fillguard run` to the newest version with every trade and order id kept; a database from
//! the future (a schema version above this build's) makes `run`, `status`, `backup`, `signal`
//! and `breaker list` exit 1 naming the database, its version and the newest this build
//! knows, and changes nothing. The one-transaction rollback of a failing step is the store's
//! `a_failing_step_rolls_back_every_earlier_step_of_the_same_upgrade`.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use rusqlite::Connection;
use serde_json::Value;

use common::sqlite::{latest_schema_version, migration_files, trade_summary, user_version};
use common::{Workspace, trades, watchlist_entry};

/// An inbox signal, as the refused commands are asked to write one.
const SIGNAL_COMMAND: [&str; 7] = [
    "signal",
    "--symbol",
    "BTC_USDT",
    "--side",
    "BUY",
    "--quantity",
    "0.001",
];

const SIGNALS: [(&str, &str); 2] = [("BTC_USDT", "BUY"), ("ETH_USDT", "SELL")];

fn workspace() -> Workspace {
    let watchlist: String = SIGNALS
        .iter()
        .map(|(symbol, _)| watchlist_entry(symbol, "50", "2", "3"))
        .collect();
    Workspace::new(&format!(
        "[paper]\nspeed = 100\n[signals]\nallow_concurrent_trades = true\n{watchlist}"
    ))
}

/// A workspace whose agent has traded (two signals, then a short run) and stopped.
fn traded_workspace() -> Workspace {
    let workspace = workspace();
    for (symbol, side) in SIGNALS {
        workspace.signal(symbol, side, "50");
    }
    workspace.run_ok(&["run", "--max-ticks", "100"]);
    workspace
}

/// Builds at `target` the database an earlier fillguard would hold: every migration but the
/// newest applied in WAL mode, then every row of `original` copied over, column by column
/// (the newest migration's columns left out).
fn previous_schema_copy(original: &Path, target: &Path) {
    let files = migration_files();
    let previous = &files[..files.len() - 1];
    let mut conn = Connection::open(target).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    // Signals and trades name each other: the rows go in table by table, checked at the end.
    conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
    let tx = conn.transaction().unwrap();
    for (index, file) in previous.iter().enumerate() {
        tx.execute_batch(&std::fs::read_to_string(file).unwrap())
            .unwrap();
        tx.pragma_update(None, "user_version", index as i64 + 1)
            .unwrap();
    }
    tx.execute(
        "ATTACH DATABASE ?1 AS original",
        [original.to_str().unwrap()],
    )
    .unwrap();
    let tables: Vec<String> = tx
        .prepare("SELECT name FROM main.sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for table in &tables {
        let columns: Vec<String> = tx
            .prepare(&format!(
                "SELECT name FROM main.pragma_table_info('{table}')"
            ))
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let columns = columns.join(", ");
        // `meta` holds the epoch the old migration drew: the original's replaces it.
        tx.execute_batch(&format!(
            "INSERT OR REPLACE INTO main.{table} ({columns}) SELECT {columns} FROM original.{table}"
        ))
        .unwrap();
    }
    let dangling: i64 = tx
        .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(dangling, 0, "a copied row names a missing one");
    tx.commit().unwrap();
    conn.execute("DETACH DATABASE original", []).unwrap();
    conn.close().unwrap();
}

/// The database's durable bytes: the file, and the write-ahead log if it holds anything.
fn database_bytes(database: &Path) -> (Vec<u8>, u64) {
    let wal = std::fs::metadata(format!("{}-wal", database.display())).map_or(0, |m| m.len());
    (std::fs::read(database).unwrap(), wal)
}

fn assert_exit_1(output: &Output, args: &[&str], needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{args:?}: {}", stderr.trim());
    assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
}

/// Client_oid → exchange order id of every order in `status --json`.
fn order_ids(status: &Value) -> BTreeMap<String, Value> {
    trades(status)
        .iter()
        .flat_map(|trade| trade["orders"].as_array().unwrap().iter())
        .map(|order| {
            (
                order["client_oid"].as_str().unwrap().to_string(),
                order["order_id"].clone(),
            )
        })
        .collect()
}

#[test]
fn run_migrates_a_previous_schema_database_keeping_every_trade() {
    let latest = latest_schema_version();
    let original = traded_workspace();
    let original_status = original.status();
    let original_trades = trade_summary(&original_status);
    assert!(!original_trades.is_empty());

    let old = workspace();
    let database = old.path("fillguard.db");
    previous_schema_copy(&original.path("fillguard.db"), &database);
    std::fs::copy(
        original.path("fillguard.paper.json"),
        old.path("fillguard.paper.json"),
    )
    .unwrap();
    assert_eq!(user_version(&database), latest - 1);

    // Commands beside the agent refuse it and change nothing.
    let before = database_bytes(&database);
    let refusal = format!(
        "database {}: schema {} is older than this fillguard ({latest}): start `fillguard run` once to migrate it",
        database.display(),
        latest - 1
    );
    let copy = old.path("copy.db");
    let copy_arg = copy.to_str().unwrap();
    let signal = SIGNAL_COMMAND;
    for args in [&["status"][..], &["backup", copy_arg], &signal] {
        assert_exit_1(&old.run(args), args, &refusal);
        assert!(database_bytes(&database) == before, "{args:?} changed it");
    }
    assert!(!copy.exists());
    assert_eq!(user_version(&database), latest - 1);

    // A real run migrates it, says so, and keeps every trade and every order's ids.
    let mut agent = old.spawn_run("agent.log");
    let migrated = common::wait_for(
        std::time::Duration::from_secs(30),
        std::time::Duration::from_millis(50),
        || (!agent.log_lines("database schema migrated").is_empty()).then_some(()),
    );
    assert!(migrated.is_some(), "{}", agent.log());
    assert_eq!(
        agent.terminate(std::time::Duration::from_secs(15)).code(),
        Some(0)
    );
    let line = agent.log_lines("database schema migrated").join("\n");
    eprintln!("{line}");
    assert!(
        line.contains(&format!("from={}", latest - 1)) && line.contains(&format!("to={latest}")),
        "{line}"
    );
    assert_eq!(user_version(&database), latest);
    let status = old.status();
    let ids = |summary: &[Value]| -> Vec<Value> {
        summary.iter().map(|trade| trade["id"].clone()).collect()
    };
    assert_eq!(ids(&trade_summary(&status)), ids(&original_trades));
    let after = order_ids(&status);
    for (client_oid, order_id) in order_ids(&original_status) {
        assert_eq!(after.get(&client_oid), Some(&order_id), "{client_oid}");
    }
    eprintln!(
        "migrated {} trades and {} orders from schema {} to {latest}",
        original_trades.len(),
        after.len(),
        latest - 1
    );
}

#[test]
fn a_database_from_the_future_is_refused_by_every_command_and_left_unchanged() {
    let latest = latest_schema_version();
    let workspace = traded_workspace();
    let database = workspace.path("fillguard.db");
    let future = latest + 1;
    let conn = Connection::open(&database).unwrap();
    conn.pragma_update(None, "user_version", future).unwrap();
    conn.close().unwrap();
    let before = database_bytes(&database);
    let paper = std::fs::read(workspace.path("fillguard.paper.json")).unwrap();
    let refusal = format!(
        "database {}: schema {future} is from a newer fillguard (this one knows {latest}); run a newer fillguard or restore a backup",
        database.display()
    );
    let copy = workspace.path("copy.db");
    let copy_arg = copy.to_str().unwrap();
    let signal = SIGNAL_COMMAND;
    for args in [
        &["run", "--max-ticks", "5"][..],
        &["status", "--json"],
        &["backup", copy_arg],
        &signal,
        &["breaker", "list"],
    ] {
        assert_exit_1(&workspace.run(args), args, &refusal);
        assert!(database_bytes(&database) == before, "{args:?} changed it");
    }
    assert!(!copy.exists());
    assert_eq!(user_version(&database), future);
    // The paper account beside it was not touched either.
    assert!(std::fs::read(workspace.path("fillguard.paper.json")).unwrap() == paper);
}
