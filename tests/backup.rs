//! `fillguard backup` with the real binary on the paper venue: copies taken while a real
//! `fillguard run` holds its lock and writes (in one step, and in steps of four pages with the
//! agent's writes between them) are whole (integrity_check, schema version, a
//! single rollback-journal file of mode 0600) and open with `status`; a restored copy shows the
//! same trades as the original; and every refusal names the path and the cause: an existing
//! file without `--force`, the live database (also through a symlink), a missing directory, a
//! directory it may not write, a full disk, the time limit. Nothing half-written is ever left
//! under the destination's name or beside it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use common::sqlite::{
    count, integrity_check, journal_mode, latest_schema_version, trade_summary, user_version,
};
use common::{BINARY, Workspace, trades, wait_for, watchlist_entry};

const SIGNALS: [(&str, &str); 2] = [("BTC_USDT", "BUY"), ("ETH_USDT", "SELL")];
const EXIT_LIMIT: Duration = Duration::from_secs(15);

/// Paper time at a hundred times the wall clock, trading on inbox signals only.
fn workspace() -> Workspace {
    let watchlist: String = SIGNALS
        .iter()
        .map(|(symbol, _)| watchlist_entry(symbol, "50", "2", "3"))
        .collect();
    Workspace::new(&format!(
        "[paper]\nspeed = 100\n[signals]\nallow_concurrent_trades = true\n{watchlist}"
    ))
}

fn queue_signals(workspace: &Workspace) {
    for (symbol, side) in SIGNALS {
        workspace.signal(symbol, side, "50");
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `backed up N trades (M open) to PATH (S bytes)`: N, M, PATH and S.
fn parse_report(stdout: &str) -> (i64, i64, String, u64) {
    let line = stdout.trim();
    let parse = || -> Option<(i64, i64, String, u64)> {
        let rest = line.strip_prefix("backed up ")?;
        let (trades, rest) = rest.split_once(" trades (")?;
        let (open, rest) = rest.split_once(" open) to ")?;
        let (path, rest) = rest.rsplit_once(" (")?;
        let bytes = rest.strip_suffix(" bytes)")?;
        Some((
            trades.parse().ok()?,
            open.parse().ok()?,
            path.to_string(),
            bytes.parse().ok()?,
        ))
    };
    parse().unwrap_or_else(|| panic!("unexpected report {line:?}"))
}

/// Runs `fillguard backup` and checks the copy it reports: its name, size, mode, integrity,
/// schema version and journal mode. Returns the report line.
fn backup_ok(workspace: &Workspace, destination: &Path, extra: &[&str]) -> String {
    let mut args = vec!["backup", destination.to_str().unwrap()];
    args.extend_from_slice(extra);
    let stdout = workspace.run_ok(&args);
    let (_, _, path, bytes) = parse_report(&stdout);
    assert_eq!(path, destination.display().to_string());
    let metadata = std::fs::metadata(destination).unwrap();
    assert_eq!(bytes, metadata.len());
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    assert_eq!(integrity_check(destination), ["ok"]);
    assert_eq!(user_version(destination), latest_schema_version());
    assert_eq!(journal_mode(destination), "delete");
    stdout.trim().to_string()
}

/// `fillguard status --json` on the database at `database` instead of the workspace's.
fn status_of(workspace: &Workspace, database: &Path) -> Value {
    let output = workspace
        .command(&["status", "--json"])
        .env("FILLGUARD_STORE__PATH", database)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Asserts a refusal: exit 1, `needles` in the message, nothing at `destination`, and no
/// temporary file left in its directory.
fn assert_refused(output: &Output, destination: &Path, needles: &[&str]) {
    let stderr = text(&output.stderr);
    eprintln!("refused: {}", stderr.trim());
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in: {stderr}");
    }
    assert_no_leftovers(destination.parent().unwrap());
}

fn assert_no_leftovers(directory: &Path) {
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    let hidden: Vec<String> = entries
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "left behind: {hidden:?}");
}

#[test]
fn backups_taken_while_run_writes_are_whole_and_open_with_status() {
    let workspace = workspace();
    queue_signals(&workspace);
    let mut agent = workspace.spawn_run("agent.log");
    let started = wait_for(Duration::from_secs(30), Duration::from_millis(100), || {
        let output = workspace.run(&["status", "--json"]);
        let status: Value = serde_json::from_slice(&output.stdout).ok()?;
        (trades(&status).len() >= 2).then_some(())
    });
    assert!(started.is_some(), "no trades: {}", agent.log());
    let mut events = Vec::new();
    let mut trade_counts = Vec::new();
    for round in 0..6 {
        // New signals keep the agent writing while the copies are taken.
        queue_signals(&workspace);
        let destination = workspace.path(&format!("backup-{round}.db"));
        // Every other copy in small steps, with the agent's writes landing between them.
        let steps: &[&str] = if round % 2 == 1 {
            &["--pages-per-step", "4"]
        } else {
            &[]
        };
        let line = backup_ok(&workspace, &destination, steps);
        eprintln!("{line}");
        let (trades_copied, open, _, _) = parse_report(&line);
        // The agent still runs and still holds its lock: the backup took none.
        assert!(agent.is_running(), "{}", agent.log());
        let lock = std::fs::read_to_string(workspace.path("fillguard.db.lock")).unwrap();
        assert_eq!(lock, format!("{}\n", agent.id()));
        let status = status_of(&workspace, &destination);
        let listed = trades(&status);
        assert_eq!(listed.len() as i64, trades_copied);
        let not_final = listed
            .iter()
            .filter(|trade| !matches!(trade["state"].as_str(), Some("CLOSED" | "HALTED")))
            .count();
        assert_eq!(not_final as i64, open);
        events.push(count(&destination, "events"));
        trade_counts.push(trades_copied);
        std::thread::sleep(Duration::from_millis(300));
    }
    eprintln!("events per copy: {events:?}, trades per copy: {trade_counts:?}");
    assert!(
        events.windows(2).all(|pair| pair[0] <= pair[1]),
        "{events:?}"
    );
    assert!(
        events.first() < events.last() && trade_counts.first() < trade_counts.last(),
        "the agent wrote nothing while the copies were taken"
    );
    assert_eq!(agent.terminate(EXIT_LIMIT).code(), Some(0));
    assert_no_leftovers(&workspace.path(""));
}

/// Restores `backup` as the README says, with the agent stopped: the copy over the database,
/// and the old database's `-wal` and `-shm` removed.
fn restore(workspace: &Workspace, backup: &Path) {
    let database = workspace.path("fillguard.db");
    std::fs::copy(backup, &database).unwrap();
    for suffix in ["-wal", "-shm"] {
        let companion = PathBuf::from(format!("{}{suffix}", database.display()));
        match std::fs::remove_file(&companion) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => panic!("{}: {error}", companion.display()),
        }
    }
}

#[test]
fn a_restored_backup_shows_the_same_trades_as_the_original() {
    let workspace = workspace();
    queue_signals(&workspace);
    workspace.run_ok(&["run", "--max-ticks", "100"]);
    let original = trade_summary(&workspace.status());
    let protected = original
        .iter()
        .filter(|trade| trade["stop_loss"].is_string())
        .count();
    eprintln!(
        "original: {} trades, {protected} with a stop-loss order id",
        original.len()
    );
    assert!(protected >= 1, "{original:#?}");
    let backup = workspace.path("fillguard-backup.db");
    eprintln!("{}", backup_ok(&workspace, &backup, &[]));

    // The live database moves on after the backup...
    queue_signals(&workspace);
    workspace.run_ok(&["run", "--max-ticks", "60"]);
    assert_ne!(trade_summary(&workspace.status()), original);
    // ...and the restored copy is the database as it was.
    restore(&workspace, &backup);
    let restored = trade_summary(&workspace.status());
    assert_eq!(restored, original);
    // The agent starts on it and keeps every trade.
    workspace.run_ok(&["run", "--max-ticks", "5"]);
    let after = trade_summary(&workspace.status());
    for trade in &original {
        assert!(
            after.iter().any(|kept| kept["id"] == trade["id"]),
            "trade {} lost after the restart",
            trade["id"]
        );
    }
}

#[test]
fn backup_refuses_existing_files_the_live_database_and_missing_directories() {
    let workspace = workspace();
    workspace.run_ok(&["run", "--max-ticks", "5"]);
    let database = workspace.path("fillguard.db");
    let live_bytes = std::fs::read(&database).unwrap();
    let run = |args: &[&str]| workspace.run(args);

    let existing = workspace.path("old.db");
    std::fs::write(&existing, "keep me").unwrap();
    let shown = existing.display().to_string();
    let output = run(&["backup", &shown]);
    assert_refused(
        &output,
        &existing,
        &[&format!("backup to {shown}: the file exists; pass --force")],
    );
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");
    eprintln!("{}", backup_ok(&workspace, &existing, &["--force"]));

    let link = workspace.path("link.db");
    std::os::unix::fs::symlink(&database, &link).unwrap();
    for name in [
        "fillguard.db",
        "fillguard.db-wal",
        "fillguard.db.lock",
        "link.db",
    ] {
        let path = workspace.path(name);
        let output = run(&["backup", "--force", path.to_str().unwrap()]);
        assert_refused(
            &output,
            &path,
            &[
                &format!("backup to {}", path.display()),
                "is the live database",
            ],
        );
    }
    assert!(std::fs::read(&database).unwrap() == live_bytes, "changed");

    let missing = workspace.path("missing/copy.db");
    let output = run(&["backup", missing.to_str().unwrap()]);
    let directory = workspace.path("missing");
    assert_refused(
        &output,
        &workspace.path("copy.db"),
        &[&format!(
            "backup to {}: the directory {} does not exist",
            missing.display(),
            directory.display()
        )],
    );
    assert!(!directory.exists());
}

#[test]
fn a_backup_past_its_time_limit_fails_and_leaves_nothing() {
    let workspace = workspace();
    workspace.run_ok(&["run", "--max-ticks", "5"]);
    let destination = workspace.path("slow.db");
    // One page per step with a pause after each: far longer than 50 ms.
    let output = workspace.run(&[
        "backup",
        destination.to_str().unwrap(),
        "--pages-per-step",
        "1",
        "--time-limit-seconds",
        "0.05",
    ]);
    assert_refused(
        &output,
        &destination,
        &[&format!(
            "backup to {}: not finished within the time limit of 0.05 s",
            destination.display()
        )],
    );
    assert!(!destination.exists());
    for (flag, value) in [
        ("--pages-per-step", "0"),
        ("--time-limit-seconds", "0"),
        ("--time-limit-seconds", "NaN"),
    ] {
        let output = workspace.run(&["backup", destination.to_str().unwrap(), flag, value]);
        assert_eq!(output.status.code(), Some(2), "{flag} {value}");
        assert!(text(&output.stderr).contains(flag), "{flag} {value}");
    }
}

/// A copy of the workspace's database in a directory every user can enter, with a
/// configuration there naming it, for a backup run as another user.
fn shared_copy(workspace: &Workspace) -> (tempfile::TempDir, PathBuf) {
    let shared = tempfile::tempdir().unwrap();
    let open = std::fs::Permissions::from_mode(0o755);
    std::fs::set_permissions(shared.path(), open.clone()).unwrap();
    let database = shared.path().join("fillguard.db");
    backup_ok(workspace, &database, &[]);
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = shared.path().join("fillguard.toml");
    let toml = format!(
        "[store]\npath = \"{}\"\n[metrics]\nlisten = \"off\"\n",
        database.display()
    );
    std::fs::write(&config, toml).unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    (shared, config)
}

fn is_root() -> bool {
    // /proc/self belongs to the process's effective user.
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0
}

#[test]
fn a_directory_it_may_not_write_is_named_with_the_cause() {
    let workspace = workspace();
    workspace.run_ok(&["run", "--max-ticks", "5"]);
    let (shared, config) = shared_copy(&workspace);
    let locked = shared.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let destination = locked.join("copy.db");
    // Root may write anywhere: as root the backup runs as nobody.
    let mut command = if is_root() {
        let mut command = Command::new("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups", BINARY]);
        command
    } else {
        Command::new(BINARY)
    };
    let output = command
        .arg("--config")
        .arg(&config)
        .arg("backup")
        .arg(&destination)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert_refused(
        &output,
        &destination,
        &[
            &format!("backup to {}", destination.display()),
            "Permission denied",
        ],
    );
    assert!(!destination.exists());
}

/// The script run in a mount namespace of its own: a 64 KiB tmpfs over the directory, the
/// backup into it, then what is left there. Exit 97: the tmpfs could not be mounted.
const FULL_DISK_SCRIPT: &str = r#"mount -t tmpfs -o size=64k tmpfs "$1" || exit 97
"$2" --config "$3" backup "$1/copy.db"
status=$?
echo "left: $(ls -A "$1")"
exit $status"#;

#[test]
fn a_full_disk_is_named_with_the_cause_and_leaves_nothing() {
    let workspace = workspace();
    // A database larger than the 64 KiB disk.
    queue_signals(&workspace);
    workspace.run_ok(&["run", "--max-ticks", "40"]);
    let size = std::fs::metadata(workspace.path("fillguard.db"))
        .unwrap()
        .len();
    assert!(size > 64 * 1024, "database of {size} bytes fits the disk");
    let small = workspace.path("small");
    std::fs::create_dir(&small).unwrap();
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(FULL_DISK_SCRIPT)
        .arg("sh")
        .arg(&small)
        .arg(BINARY)
        .arg(workspace.path("fillguard.toml"))
        .env("RUST_LOG", "warn")
        .output();
    let output = match output {
        Ok(output)
            if output.status.code() != Some(97) && !text(&output.stderr).contains("unshare:") =>
        {
            output
        }
        other => {
            eprintln!("SKIPPED: no private mount namespace with a small tmpfs here ({other:?})");
            return;
        }
    };
    let stderr = text(&output.stderr);
    eprintln!("refused: {}", stderr.trim());
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let destination = small.join("copy.db");
    assert!(
        stderr.contains(&format!("backup to {}", destination.display())) && stderr.contains("full"),
        "{stderr}"
    );
    assert_eq!(
        text(&output.stdout).trim(),
        "left:",
        "a file was left behind"
    );
}
