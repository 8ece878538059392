//! Where the agent's log lines go, for real.
//!
//! On stderr: escape codes only on a terminal (a pseudo-terminal made by `script`), never in a
//! file or a pipe, and never when `NO_COLOR` is set.
//!
//! The real systemd-journald: the agent is started as systemd starts a service — stderr
//! connected to the journal's stream and `JOURNAL_STREAM` naming that stream — and logs native
//! fields, so `journalctl ORDER_ID=…` and `journalctl CLIENT_OID=…` find every line of a
//! protected trade's orders. Needs root: journald runs in a private mount namespace with tmpfs
//! over its directories, so the machine's own journal is neither read nor written. Skipped
//! with a printed reason otherwise.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use common::{BINARY, Workspace, trades, wait_for, watchlist_entry};

/// Set for the inner test, which runs inside the private mount namespace (not `FILLGUARD_*`,
/// which the binary would read as a configuration key).
const INNER_ENV: &str = "JOURNALD_TEST_INNER";
const INNER_TEST: &str = "inner_in_a_private_mount_namespace";
const JOURNALD_PATHS: [&str; 2] = [
    "/lib/systemd/systemd-journald",
    "/usr/lib/systemd/systemd-journald",
];
/// The directories journald writes to: its sockets, and the volatile journal.
const JOURNAL_DIRS: [&str; 2] = ["/run/systemd/journal", "/run/log/journal"];

#[test]
fn journalctl_finds_every_leg_of_a_protected_trade_by_order_id_and_client_oid() {
    if let Some(reason) = skip_reason() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let output = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([INNER_TEST, "--exact", "--ignored", "--nocapture"])
        .env(INNER_ENV, "1")
        .stdin(Stdio::null())
        .output()
        .expect("unshare starts");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(output.status.success(), "the inner test failed");
    assert!(
        stdout.contains("1 passed"),
        "the inner test did not run: {stdout}"
    );
}

#[test]
#[ignore = "run by the test above inside a private mount namespace"]
fn inner_in_a_private_mount_namespace() {
    assert!(
        std::env::var_os(INNER_ENV).is_some(),
        "runs only inside the namespace the outer test makes"
    );
    let _journald = Journald::start();
    let workspace = Workspace::new(&format!(
        "[paper]\nspeed = 100\n{}",
        watchlist_entry("BTC_USDT", "100", "5", "5")
    ));
    workspace.signal("BTC_USDT", "BUY", "100");
    let run = run_as_a_service(&workspace, &["run", "--max-ticks", "40"]);
    assert!(run.success(), "fillguard run failed: {run}");

    let status = workspace.status();
    let trade = trades(&status)
        .iter()
        .find(|trade| trade["state"] == "PROTECTED")
        .unwrap_or_else(|| panic!("no protected trade: {status:#}"));
    let trade_id = trade["id"].to_string();
    for (role, order) in [
        ("ENTRY", &trade["entry"]),
        ("STOP_LOSS", &trade["stop_loss"]),
        ("TAKE_PROFIT", &trade["take_profit"]),
    ] {
        let client_oid = order["client_oid"].as_str().unwrap();
        let order_id = order["order_id"].as_str().unwrap();
        for (field, value) in [("ORDER_ID", order_id), ("CLIENT_OID", client_oid)] {
            let entries = journal_entries(&format!("{field}={value}"));
            println!(
                "journalctl {field}={value}: {} entries: {:?}",
                entries.len(),
                entries.iter().map(|e| &e["MESSAGE"]).collect::<Vec<_>>()
            );
            assert!(!entries.is_empty(), "nothing for {field}={value}");
            for entry in &entries {
                assert_eq!(entry["CLIENT_OID"], client_oid, "{entry:#}");
                assert_eq!(entry["ROLE"], role, "{entry:#}");
                assert_eq!(entry["TRADE_ID"], trade_id.as_str(), "{entry:#}");
                assert_eq!(entry["SYMBOL"], "BTC_USDT", "{entry:#}");
                assert_eq!(entry["SYSLOG_IDENTIFIER"], "fillguard", "{entry:#}");
                let message = entry["MESSAGE"].as_str().unwrap_or_default();
                assert!(!message.contains('\u{1b}'), "escape codes: {message:?}");
            }
        }
        let acknowledged = journal_entries(&format!("CLIENT_OID={client_oid}"))
            .iter()
            .any(|entry| entry["MESSAGE"] == "order acknowledged");
        assert!(acknowledged, "no acknowledgement logged for {client_oid}");
    }
    // Every line about the trade carries its symbol, the first state change included.
    let about_trade = journal_entries(&format!("TRADE_ID={trade_id}"));
    println!(
        "journalctl TRADE_ID={trade_id}: {} entries",
        about_trade.len()
    );
    assert!(
        about_trade
            .iter()
            .any(|entry| entry["MESSAGE"] == "trade state changed"),
        "no state change logged"
    );
    for entry in &about_trade {
        assert_eq!(entry["SYMBOL"], "BTC_USDT", "{entry:#}");
    }
}

#[test]
fn stderr_has_colour_only_on_a_terminal_and_never_with_no_color() {
    let workspace = Workspace::new("[paper]\nspeed = 100\n");
    let piped = workspace
        .command(&["run", "--max-ticks", "2"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let piped = String::from_utf8_lossy(&piped.stderr);
    assert!(piped.contains("INFO"), "{piped}");
    assert!(
        !piped.contains('\u{1b}'),
        "escape codes in a pipe: {piped:?}"
    );

    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED (terminal part): `script` is not installed");
        return;
    }
    let on_terminal = |no_color: Option<&str>| {
        let mut command = Command::new("script");
        command
            .args(["--quiet", "--return", "--command"])
            .arg(format!(
                "{BINARY} --config {} run --max-ticks 2",
                workspace.path("fillguard.toml").display()
            ))
            .arg("/dev/null")
            .env("RUST_LOG", "info")
            .env_remove("JOURNAL_STREAM")
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let output = command.output().expect("script starts");
        assert!(output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let coloured = on_terminal(None);
    assert!(coloured.contains("INFO"), "{coloured}");
    assert!(
        coloured.contains("\u{1b}["),
        "no colour on a terminal: {coloured:?}"
    );
    let plain = on_terminal(Some("1"));
    assert!(plain.contains("INFO"), "{plain}");
    assert!(
        !plain.contains('\u{1b}'),
        "colour despite NO_COLOR: {plain:?}"
    );
}

/// Why the test cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    let uid = std::fs::metadata("/proc/self").map(|meta| meta.uid()).ok();
    if uid != Some(0) {
        return Some("needs root for a private mount namespace with its own journald".into());
    }
    if journald_path().is_none() {
        return Some(format!("systemd-journald not found at {JOURNALD_PATHS:?}"));
    }
    for tool in ["unshare", "mount", "journalctl", "systemd-cat"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !found {
            return Some(format!("{tool} not found"));
        }
    }
    None
}

fn journald_path() -> Option<PathBuf> {
    JOURNALD_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

/// `systemd-journald` on tmpfs directories of this mount namespace; killed on drop.
struct Journald(Child);

impl Journald {
    fn start() -> Journald {
        for dir in JOURNAL_DIRS {
            std::fs::create_dir_all(dir).unwrap();
            let mounted = Command::new("mount")
                .args(["-t", "tmpfs", "tmpfs", dir])
                .status()
                .unwrap();
            assert!(mounted.success(), "mount tmpfs on {dir}");
        }
        let child = Command::new(journald_path().unwrap())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("systemd-journald starts");
        let journald = Journald(child);
        let socket = Path::new("/run/systemd/journal/socket");
        let up = wait_for(Duration::from_secs(10), Duration::from_millis(50), || {
            socket.exists().then_some(())
        });
        assert!(up.is_some(), "journald did not open {}", socket.display());
        journald
    }
}

impl Drop for Journald {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs fillguard as systemd runs a service whose stderr goes to the journal: the stream comes
/// from journald (`systemd-cat`), and `JOURNAL_STREAM` names its device and inode.
fn run_as_a_service(workspace: &Workspace, args: &[&str]) -> std::process::ExitStatus {
    Command::new("systemd-cat")
        .args(["-t", "fillguard-service", "sh", "-c"])
        .arg(r#"JOURNAL_STREAM="$(stat -L -c %d:%i /proc/self/fd/2)" exec "$@""#)
        .arg("sh")
        .arg(BINARY)
        .arg("--config")
        .arg(workspace.path("fillguard.toml"))
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .status()
        .expect("systemd-cat starts")
}

/// `journalctl -o json MATCH`, read until journald has written what it was sent (bounded).
fn journal_entries(matching: &str) -> Vec<Value> {
    let read = || {
        let output = Command::new("journalctl")
            .args(["--no-pager", "-o", "json", matching])
            .output()
            .expect("journalctl starts");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .collect::<Vec<Value>>()
    };
    wait_for(Duration::from_secs(5), Duration::from_millis(100), || {
        Some(read()).filter(|entries| !entries.is_empty())
    })
    .unwrap_or_default()
}
