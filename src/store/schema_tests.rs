//! The schema's owner and its checks: one run per database (the lock), only `run` migrates,
//! other opens refuse a schema they do not know and leave the file as it was, the order-id
//! epoch, and rows that do not parse failing their own trade only.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rusqlite::Connection;

use super::tests::view;
use super::*;

fn database() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    (dir, path)
}

/// A database as the first fillguard left it: schema 1 in WAL mode, holding trade 1.
fn schema_1_database(path: &Path) {
    let mut conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    // Today's rows, written on today's schema, then every later migration taken back.
    migrate(&mut conn, path, &MIGRATIONS, Upgrade::Any).unwrap();
    save_view(&conn, &view(1)).unwrap();
    conn.execute_batch(
        "DROP INDEX trades_open;
         DROP INDEX events_at;
         DROP INDEX trades_ended;
         DROP INDEX trades_symbol_ended;
         DROP INDEX trades_created;
         ALTER TABLE trades DROP COLUMN ended_ms;
         ALTER TABLE trades DROP COLUMN realized_result;
         ALTER TABLE trades DROP COLUMN result_asset;
         DROP TABLE meta;
         ALTER TABLE trades DROP COLUMN oid_epoch;
         ALTER TABLE trades DROP COLUMN recovering_since_ms;
         ALTER TABLE trades DROP COLUMN breaker_tripped;
         ALTER TABLE alerts DROP COLUMN unconfirmed;
         ALTER TABLE alerts DROP COLUMN given_up_at_ms;
         PRAGMA user_version = 1;",
    )
    .unwrap();
}

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap()
}

fn has_meta_table(path: &Path) -> bool {
    Connection::open(path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE name = 'meta'",
            [],
            |row| row.get::<_, i64>(0),
        )
        .unwrap()
        == 1
}

/// Each open that is not `run` refuses, with `needle` in its message, and the file keeps
/// every byte.
fn assert_refused_untouched(path: &Path, opens: &[fn(&Path) -> Result<Store>], needle: &str) {
    let before = std::fs::read(path).unwrap();
    for open in opens {
        let error = open(path).err().expect("refused").to_string();
        eprintln!("refused: {error}");
        assert!(error.contains(needle), "{needle:?} not in: {error}");
        assert!(std::fs::read(path).unwrap() == before, "the file changed");
    }
}

#[test]
fn plain_opens_refuse_an_older_schema_and_leave_the_file_byte_identical() {
    let (_dir, path) = database();
    schema_1_database(&path);
    assert_refused_untouched(
        &path,
        &[Store::open, Store::open_read_only],
        &format!(
            "schema 1 is older than this fillguard ({}): start `fillguard run` once to migrate it",
            MIGRATIONS.len()
        ),
    );
    assert_eq!(user_version(&path), 1);
}

#[test]
fn every_open_refuses_a_newer_schema_and_leaves_the_file_byte_identical() {
    let (_dir, path) = database();
    drop(Store::open_for_run(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    assert_refused_untouched(
        &path,
        &[Store::open, Store::open_read_only, Store::open_for_run],
        &format!(
            "schema 99 is from a newer fillguard (this one knows {})",
            MIGRATIONS.len()
        ),
    );
    assert_eq!(user_version(&path), 99);
}

#[test]
fn a_read_only_open_refuses_a_missing_database_and_creates_nothing() {
    let (dir, path) = database();
    let error = Store::open_read_only(&path).err().expect("refused");
    assert!(error.to_string().contains("no database at"), "{error}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn run_migrates_1_to_the_latest_and_each_run_draws_a_new_epoch() {
    let (_dir, path) = database();
    schema_1_database(&path);
    let store = Store::open_for_run(&path).unwrap();
    assert_eq!(user_version(&path), MIGRATIONS.len() as i64);
    let epoch = oid_epoch(store.conn()).unwrap();
    eprintln!("epoch after migrating: {epoch}");
    // The trade from before epochs keeps the empty epoch and still loads.
    let old: String = store
        .conn()
        .query_row("SELECT oid_epoch FROM trades WHERE id = 1", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(old, "");
    assert_eq!(load_view(store.conn(), 1).unwrap(), view(1));
    drop(store);
    // Each run draws its own epoch for new trades; the old trade keeps its own, and the
    // database still knows every epoch it used.
    let again = Store::open_for_run(&path).unwrap();
    let next = oid_epoch(again.conn()).unwrap();
    assert_ne!(next, epoch);
    assert!(known_epochs(again.conn()).unwrap().contains(&next));
    assert_eq!(load_view(again.conn(), 1).unwrap(), view(1));
    drop(again);
    assert_eq!(
        oid_epoch(Store::open_read_only(&path).unwrap().conn()).unwrap(),
        next
    );
}

#[test]
fn a_migration_failing_half_way_leaves_the_old_schema_whole() {
    let (_dir, path) = database();
    schema_1_database(&path);
    // Migration 2 creates `meta`, fills it, then adds this column: the last step fails.
    Connection::open(&path)
        .unwrap()
        .execute_batch("ALTER TABLE trades ADD COLUMN oid_epoch TEXT")
        .unwrap();
    let error = Store::open_for_run(&path).err().expect("refused");
    eprintln!("refused: {error}");
    assert!(
        error.to_string().contains("migration to schema 2 failed")
            && error.to_string().contains("oid_epoch"),
        "{error}"
    );
    assert_eq!(user_version(&path), 1);
    assert!(!has_meta_table(&path), "half of migration 2 was kept");
}

#[test]
fn each_new_database_gets_its_own_epoch() {
    let (_dir, first) = database();
    let (_other, second) = database();
    let epochs = [&first, &second].map(|path| {
        let epoch = oid_epoch(Store::open_for_run(path).unwrap().conn()).unwrap();
        assert_eq!(epoch.len(), OID_EPOCH_LENGTH);
        assert!(
            epoch
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        epoch
    });
    eprintln!("epochs of two new databases: {epochs:?}");
    assert_ne!(epochs[0], epochs[1]);
    // A command beside the agent creating the database also creates its epoch.
    let (_third, path) = database();
    assert_eq!(
        oid_epoch(Store::open(&path).unwrap().conn()).unwrap().len(),
        8
    );
}

#[test]
fn a_damaged_epoch_is_an_error_naming_it() {
    let (_dir, path) = database();
    let store = Store::open_for_run(&path).unwrap();
    for (change, needle) in [
        ("UPDATE meta SET value = 'ABCDEF12'", "not 8 lowercase hex"),
        ("UPDATE meta SET value = 'abc'", "not 8 lowercase hex"),
        ("UPDATE meta SET value = x'00'", "meta row oid_epoch"),
        ("DELETE FROM meta", "oid_epoch is missing"),
    ] {
        store.conn().execute_batch(change).unwrap();
        let error = oid_epoch(store.conn()).unwrap_err().to_string();
        assert!(error.contains(needle), "{change}: {error}");
    }
}

/// Kills and reaps the child on drop, also when a check panics.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const HOLDER_VARIABLE: &str = "FILLGUARD_TEST_LOCK_HOLDER";
/// What the holder prints once it holds the lock (after libtest's own words on that line).
const HOLDER_READY: &str = "lock held by the child";
/// How long the holder waits to be killed; the test kills it long before.
const HOLDER_SECONDS_MAX: u64 = 30;

/// Not a test of its own: run as a child process by the test below (with the variable set),
/// it takes the run lock, says so and waits to be killed.
#[test]
fn lock_holder_child() {
    let Some(path) = std::env::var_os(HOLDER_VARIABLE) else {
        return;
    };
    let _store = Store::open_for_run(Path::new(&path)).unwrap();
    println!("{HOLDER_READY}");
    std::thread::sleep(std::time::Duration::from_secs(HOLDER_SECONDS_MAX));
}

#[test]
fn a_second_run_open_is_refused_naming_the_holder_until_it_is_killed_or_dropped() {
    let (_dir, path) = database();
    let child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "store::schema_tests::lock_holder_child"])
        .args(["--nocapture", "--test-threads=1"])
        .env(HOLDER_VARIABLE, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut holder = Reaped(child);
    let stdout = holder.0.stdout.take().unwrap();
    let locked = BufReader::new(stdout)
        .lines()
        .map_while(std::result::Result::ok)
        .any(|line| line.ends_with(HOLDER_READY));
    assert!(locked, "the holder did not take the lock");

    let error = Store::open_for_run(&path).err().expect("refused");
    eprintln!("while held: {error}");
    let expected = format!(
        "database {} is in use by another fillguard run (pid {}); one agent per database",
        path.display(),
        holder.0.id()
    );
    assert_eq!(error.to_string(), expected);
    // Commands beside the agent still work.
    Store::open(&path).unwrap();
    Store::open_read_only(&path).unwrap();

    holder.0.kill().unwrap(); // SIGKILL: the kernel releases the lock, the file stays.
    holder.0.wait().unwrap();
    assert!(lock_path(&path).exists());
    let first = Store::open_for_run(&path).unwrap();
    // In this process too, a second run open is refused while the first store lives...
    let error = Store::open_for_run(&path).err().expect("refused");
    assert!(
        error
            .to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{error}"
    );
    // ...and allowed once it is dropped.
    drop(first);
    Store::open_for_run(&path).unwrap();
}

#[test]
fn a_corrupt_row_fails_its_own_trade_and_no_other() {
    let (_dir, path) = database();
    let mut store = Store::open_for_run(&path).unwrap();
    for id in 1..=5 {
        store
            .transaction(|conn| save_view(conn, &view(id)))
            .unwrap();
    }
    let conn = store.conn();
    conn.execute_batch(
        "UPDATE trades SET filled_quantity = 'abc' WHERE id = 2;
         UPDATE trades SET state = 'LIMBO' WHERE id = 3;
         PRAGMA ignore_check_constraints = ON;
         UPDATE orders SET role = 'BOGUS' WHERE trade_id = 4;
         PRAGMA ignore_check_constraints = OFF;
         UPDATE trades SET attempts = 'many' WHERE id = 5;",
    )
    .unwrap();
    let order_of_4: i64 = conn
        .query_row("SELECT id FROM orders WHERE trade_id = 4", [], |row| {
            row.get(0)
        })
        .unwrap();
    let expected = [
        (
            2,
            "trades row 2: column filled_quantity = \"abc\"".to_string(),
        ),
        (3, "trades row 3: column state = \"LIMBO\"".to_string()),
        (
            4,
            format!("trade 4: orders row {order_of_4}: column role = \"BOGUS\""),
        ),
        (5, "trades row 5: column attempts = \"many\"".to_string()),
    ];
    for (id, needle) in &expected {
        let error = load_view(conn, *id).unwrap_err();
        eprintln!("trade {id}: {error}");
        assert!(matches!(error, StoreError::Corrupt(_)), "{error:?}");
        assert!(error.to_string().contains(needle.as_str()), "{error}");
    }
    assert_eq!(load_view(conn, 1).unwrap(), view(1));
    // The list of active trades does not read the damaged columns.
    assert_eq!(active_trades(conn).unwrap().len(), 5);
}

#[test]
fn an_exhausted_trade_id_is_an_error_not_an_overflow() {
    let (_dir, path) = database();
    let mut store = Store::open_for_run(&path).unwrap();
    store.transaction(|conn| save_view(conn, &view(1))).unwrap();
    let raw = Connection::open(&path).unwrap();
    // Its orders still name trade 1; only the id matters here.
    raw.pragma_update(None, "foreign_keys", "OFF").unwrap();
    raw.execute("UPDATE trades SET id = ?1 WHERE id = 1", [i64::MAX])
        .unwrap();
    let error = next_trade_id(store.conn()).unwrap_err().to_string();
    assert!(error.contains("leaves no next id"), "{error}");
}

#[test]
fn a_database_reached_through_a_symlink_shares_the_lock() {
    let (dir, path) = database();
    let first = Store::open_for_run(&path).unwrap();
    let link = dir.path().join("link.db");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let error = Store::open_for_run(&link).err().expect("refused");
    assert!(
        error
            .to_string()
            .contains("in use by another fillguard run"),
        "{error}"
    );
    drop(first);
    assert!(Store::open_for_run(&link).is_ok());
}

#[test]
fn a_failing_step_rolls_back_every_earlier_step_of_the_same_upgrade() {
    let (_dir, path) = database();
    drop(Store::open_for_run(&path).unwrap());
    let current = MIGRATIONS.len() as i64;
    // A test-only list: today's migrations, then a step that works and one that fails.
    let mut migrations: Vec<&str> = MIGRATIONS.to_vec();
    migrations.push(
        "CREATE TABLE added_by_step_5 (x INTEGER);
         ALTER TABLE trades ADD COLUMN step_5 TEXT;",
    );
    migrations.push("CREATE TABLE added_by_step_6 (x INTEGER); SELECT no_such_function();");
    let mut conn = Connection::open(&path).unwrap();
    let error = migrate(&mut conn, &path, &migrations, Upgrade::Any).unwrap_err();
    eprintln!("refused: {error}");
    let expected = format!(
        "database {}: migration to schema {} failed, nothing was changed",
        path.display(),
        current + 2
    );
    assert!(error.to_string().contains(&expected), "{error}");
    drop(conn);
    assert_eq!(user_version(&path), current, "step 5 was committed");
    let objects: i64 = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE name LIKE 'added_by_step_%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(objects, 0, "a table of the failed upgrade was kept");
    let columns: i64 = Connection::open(&path)
        .unwrap()
        .query_row(
            "SELECT COUNT(*) FROM pragma_table_info('trades') WHERE name = 'step_5'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(columns, 0, "step 5's column was kept");
    // The same list with the failing step fixed goes through, in one transaction.
    let last = migrations.len() - 1;
    migrations[last] = "CREATE TABLE added_by_step_6 (x INTEGER);";
    let mut conn = Connection::open(&path).unwrap();
    migrate(&mut conn, &path, &migrations, Upgrade::Any).unwrap();
    drop(conn);
    assert_eq!(user_version(&path), current + 2);
}
