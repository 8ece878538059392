//! The systemd unit and the notification protocol: `systemd-analyze verify` and
//! `systemd-analyze security --offline=true` on `systemd/fillguard.service` (skipped, saying
//! why, without systemd-analyze), and the real `fillguard run` talking to a datagram socket
//! bound as `NOTIFY_SOCKET`, as systemd would bind it: `READY=1` only after the start-up
//! reconciliation, `WATCHDOG=1` within the interval all along (also while the exchange does not
//! answer), `STATUS=` when the state changed, `STOPPING=1` after SIGTERM; against an exchange
//! that answers slowly, turns cut short by the time budget, a reconciliation over several turns
//! before `READY=1` and no gap between pings above the budget plus one request (with a canary,
//! `CANARY_NO_TURN_BUDGET=1`, that must fail it); no ping while the loop is stuck in one
//! request longer than the interval; and, under strace, no system call outside the unit's
//! `SystemCallFilter=`. Every wait is bounded and every child is killed on drop.

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

use common::{BINARY, Running, SimExchange, Workspace, trades, wait_for, watchlist_entry};

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/fillguard.service");
const EXEC_START: &str = "ExecStart=/usr/bin/fillguard run --config /etc/fillguard/fillguard.toml";
const EXPOSURE_MAX: f64 = 1.5;
const EXIT_LIMIT: Duration = Duration::from_secs(15);

/// The unit with its ExecStart aimed at the binary under test, in a directory of its own, so
/// `verify` finds an executable.
fn unit_copy(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(UNIT).unwrap();
    assert_eq!(
        text.matches(EXEC_START).count(),
        1,
        "{EXEC_START} in {UNIT}"
    );
    let copy = dir.join("fillguard.service");
    let local = format!("ExecStart={BINARY} run --config /etc/fillguard/fillguard.toml");
    std::fs::write(&copy, text.replace(EXEC_START, &local)).unwrap();
    copy
}

fn systemd_analyze(args: &[&str]) -> Option<std::process::Output> {
    match Command::new("systemd-analyze").args(args).output() {
        Ok(output) => Some(output),
        Err(error) => {
            eprintln!("SKIPPED: systemd-analyze cannot run here ({error})");
            None
        }
    }
}

#[test]
fn the_unit_verifies_clean_and_its_exposure_is_low() {
    let text = std::fs::read_to_string(UNIT).unwrap();
    for directive in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=",
        "Restart=on-failure",
        "StateDirectory=fillguard",
        "ConfigurationDirectory=fillguard",
        "LoadCredential=api-secret:/etc/fillguard/api-secret",
        "LoadCredential=telegram-token:/etc/fillguard/telegram-token",
        "DynamicUser=yes",
        "MemoryMax=",
    ] {
        assert!(
            text.lines().any(|line| line.starts_with(directive)),
            "{directive}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_copy(dir.path());
    let unit = unit.to_str().unwrap();
    let Some(verify) = systemd_analyze(&["verify", unit]) else {
        return;
    };
    common::assert_verified_clean(&verify);
    let security = systemd_analyze(&["security", "--offline=true", unit]).unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    let exposure = common::overall_exposure(&report);
    assert!(exposure <= EXPOSURE_MAX, "{exposure}\n{report}");
}

/// A datagram socket bound where systemd's would be, recording what arrives and when.
struct NotifySocket {
    path: PathBuf,
    received: Arc<Mutex<Vec<(Instant, String)>>>,
    done: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl NotifySocket {
    /// Binds `notify` in `workspace` and aims the workspace's commands at it with the
    /// watchdog interval `watchdog`. `on_ready` runs in the reader as `READY=1` arrives.
    fn bind(
        workspace: &mut Workspace,
        watchdog: Duration,
        on_ready: impl Fn() -> String + Send + 'static,
    ) -> (NotifySocket, Arc<Mutex<Option<String>>>) {
        let path = workspace.path("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        workspace.set_env("NOTIFY_SOCKET", path.to_str().unwrap());
        workspace.set_env("WATCHDOG_USEC", &watchdog.as_micros().to_string());
        let received = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let at_ready = Arc::new(Mutex::new(None));
        let reader = {
            let (received, done, at_ready) = (received.clone(), done.clone(), at_ready.clone());
            std::thread::spawn(move || {
                let mut buffer = [0u8; 4096];
                // Bounded by the test, which sets `done` (also on drop).
                while !done.load(Ordering::SeqCst) {
                    let Ok(length) = socket.recv(&mut buffer) else {
                        continue;
                    };
                    let message = String::from_utf8_lossy(&buffer[..length]).into_owned();
                    if message == "READY=1" {
                        *at_ready.lock().unwrap() = Some(on_ready());
                    }
                    received.lock().unwrap().push((Instant::now(), message));
                }
            })
        };
        let socket = NotifySocket {
            path,
            received,
            done,
            reader: Some(reader),
        };
        (socket, at_ready)
    }

    fn messages(&self) -> Vec<(Instant, String)> {
        self.received.lock().unwrap().clone()
    }

    fn pings_since(&self, since: Instant) -> Vec<Instant> {
        self.messages()
            .into_iter()
            .filter(|(at, message)| *at >= since && message == "WATCHDOG=1")
            .map(|(at, _)| at)
            .collect()
    }

    /// The messages, each with its time since the first, for the test's output.
    fn transcript(&self) -> String {
        let messages = self.messages();
        let first = messages.first().map_or_else(Instant::now, |(at, _)| *at);
        messages
            .iter()
            .map(|(at, message)| format!("  +{:>5.2}s {message}\n", (*at - first).as_secs_f64()))
            .collect()
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The longest gap between consecutive pings, and from the last one to `until`.
fn longest_gap(pings: &[Instant], until: Instant) -> Duration {
    pings
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .chain(
            pings
                .last()
                .map(|last| until.saturating_duration_since(*last)),
        )
        .max()
        .unwrap_or(Duration::MAX)
}

fn wait_trade_state(workspace: &Workspace, agent: &Running, count: usize, state: &str) {
    let reached = wait_for(Duration::from_secs(30), Duration::from_millis(200), || {
        let status = workspace.status();
        let trades = trades(&status);
        (trades.len() == count && trades.iter().all(|trade| trade["state"] == state)).then_some(())
    });
    assert!(
        reached.is_some(),
        "{count} trades never all {state}: {}\nlog:\n{}",
        workspace.status(),
        agent.log()
    );
}

const PAPER: &str = "[loop]\ninterval_seconds = 0.2\n[poll]\ninterval_seconds = 0.3\ndeadline_seconds = 10\n[protection]\nwatch_interval_seconds = 0.5\n[signals]\nallow_concurrent_trades = true\n[paper]\nvolatility = \"0\"\nfill_delay_ms = 200\n";

/// The order of what arrived: the start-up status, one READY=1, the status of each change after
/// it (never the same line twice in a row), STOPPING=1 last.
fn assert_order(socket: &NotifySocket, transcript: &str) {
    let messages: Vec<String> = socket.messages().into_iter().map(|(_, m)| m).collect();
    let position = |wanted: &str| messages.iter().position(|message| message == wanted);
    assert_eq!(
        messages.first().map(String::as_str),
        Some("STATUS=starting: reconciling open trades"),
        "{transcript}"
    );
    assert_eq!(messages.iter().filter(|m| *m == "READY=1").count(), 1);
    assert_eq!(
        messages.last().map(String::as_str),
        Some("STOPPING=1"),
        "{transcript}"
    );
    let statuses: Vec<&String> = messages
        .iter()
        .filter(|m| m.starts_with("STATUS="))
        .collect();
    for expected in [
        "STATUS=open trades: 1, protected: 1, unprotected positions: 0, breakers open: 0",
        "STATUS=open trades: 2, protected: 2, unprotected positions: 0, breakers open: 0",
    ] {
        let index = position(expected).unwrap_or_else(|| panic!("{expected}\n{transcript}"));
        assert!(index > position("READY=1").unwrap(), "{transcript}");
    }
    assert!(
        statuses.windows(2).all(|pair| pair[0] != pair[1]),
        "a status line repeated unchanged:\n{transcript}"
    );
}

#[test]
fn ready_after_reconciliation_then_pings_status_and_stopping() {
    let watchlist = ["BTC_USDT", "ETH_USDT"].map(|symbol| watchlist_entry(symbol, "100", "2", "3"));
    let mut workspace = Workspace::new(&format!("{PAPER}{}", watchlist.concat()));
    // A first run leaves a protected trade open, so the second has one to reconcile.
    workspace.signal("BTC_USDT", "BUY", "100");
    let mut first = workspace.spawn_run("first.log");
    wait_trade_state(&workspace, &first, 1, "PROTECTED");
    assert!(first.terminate(EXIT_LIMIT).success());

    let watchdog = Duration::from_secs(2);
    let log = workspace.path("second.log");
    let (socket, at_ready) = NotifySocket::bind(&mut workspace, watchdog, move || {
        std::fs::read_to_string(&log).unwrap_or_default()
    });
    let mut agent = workspace.spawn_run("second.log");
    let ready = wait_for(Duration::from_secs(20), Duration::from_millis(50), || {
        at_ready.lock().unwrap().clone()
    })
    .unwrap_or_else(|| panic!("no READY=1\n{}log:\n{}", socket.transcript(), agent.log()));
    assert!(
        ready.contains("reconciling open trades open_trades=1")
            && ready.contains("open trades reconciled open_trades=1"),
        "READY=1 came before the reconciliation finished; the log then:\n{ready}"
    );
    let ready_at = socket
        .messages()
        .iter()
        .find(|(_, message)| message == "READY=1")
        .unwrap()
        .0;
    // A second trade while it runs changes the status line.
    std::thread::sleep(Duration::from_secs(2));
    workspace.signal("ETH_USDT", "SELL", "100");
    wait_trade_state(&workspace, &agent, 2, "PROTECTED");
    std::thread::sleep(Duration::from_secs(3));
    let before_stop = Instant::now();
    assert!(agent.terminate(EXIT_LIMIT).success(), "{}", agent.log());
    std::thread::sleep(Duration::from_millis(200));
    let transcript = socket.transcript();
    eprintln!("what arrived at NOTIFY_SOCKET, in order:\n{transcript}");

    assert_order(&socket, &transcript);
    let pings = socket.pings_since(ready_at);
    let gap = longest_gap(&pings, before_stop);
    eprintln!(
        "{} pings from READY=1 to SIGTERM ({:.1?}), longest gap {gap:.2?} (interval {watchdog:?})",
        pings.len(),
        before_stop - ready_at
    );
    assert!(pings.len() >= 5, "{transcript}");
    assert!(gap < watchdog, "{transcript}");
}

#[test]
fn pings_keep_coming_while_the_exchange_does_not_answer() {
    let mut workspace = Workspace::new(&format!(
        "{PAPER}{}",
        watchlist_entry("BTC_USDT", "100", "2", "3")
    ));
    let sim = SimExchange::start(
        &mut workspace,
        "11",
        "none",
        "test-key",
        "test-secret-0123456789",
    );
    let watchdog = Duration::from_secs(8);
    // The smallest budget the 2 s timeout allows: two requests with their rate-limit waits.
    let budget = Duration::from_secs(6);
    workspace.set_env("FILLGUARD_LOOP__TURN_BUDGET_SECONDS", "6");
    let bound = derived_bound(budget, Duration::from_secs(2));
    let (socket, at_ready) = NotifySocket::bind(&mut workspace, watchdog, String::new);
    workspace.signal("BTC_USDT", "BUY", "100");
    let agent = workspace.spawn_run("agent.log");
    wait_trade_state(&workspace, &agent, 1, "PROTECTED");
    assert!(
        at_ready.lock().unwrap().is_some(),
        "{}",
        socket.transcript()
    );
    // Every request hangs past the agent's 2 s timeout for 20 s.
    let outage = Duration::from_secs(20);
    sim.outage(&json!({"seconds": outage.as_secs(), "mode": "hang"}));
    let began = Instant::now();
    std::thread::sleep(outage - Duration::from_secs(1));
    let ended = Instant::now();
    let unanswered = sim.outage_state()["unanswered"].as_u64().unwrap_or(0);
    let pings = socket.pings_since(began);
    let gap = longest_gap(&pings, ended);
    eprintln!(
        "outage of {outage:?}: {unanswered} requests unanswered, {} pings, longest gap {gap:.2?} (interval {watchdog:?}, bound {bound:?})\n{}",
        pings.len(),
        socket.transcript()
    );
    assert!(
        unanswered >= 3,
        "the agent hardly asked during the outage\nlog:\n{}",
        agent.log()
    );
    assert!(pings.len() >= 4, "log:\n{}", agent.log());
    assert!(
        gap < watchdog && gap <= bound,
        "bound {bound:?}\nlog:\n{}",
        agent.log()
    );
}

/// The largest gap between two pings a budget of `budget` allows at `timeout`: the budget
/// plus one request (`venue::cryptocom::longest_unit`).
fn derived_bound(budget: Duration, timeout: Duration) -> Duration {
    fillguard::venue::cryptocom::longest_unit(budget, timeout)
}

/// A slow exchange (every answer takes 1 s) that shows no order (`notfound`), and a trade whose
/// lookup walks three days of history: one lookup chain is 12 requests, about 12 s, longer
/// than the budget of 6 s plus one request (9 s). The turns stay within the budget, the chain
/// goes on over several turns, `READY=1` waits for the reconciliation that needed them, and
/// the largest gap between two pings stays within the bound (with `loop.turn_budget_seconds`
/// raised to 600 the gap is a whole chain, and this fails).
#[test]
fn pings_stay_within_the_budget_while_the_exchange_answers_slowly() {
    let mut workspace = Workspace::new(&format!(
        "{PAPER}{}",
        watchlist_entry("BTC_USDT", "100", "2", "3")
    ));
    let sim = SimExchange::start(
        &mut workspace,
        "13",
        "latency=1000,notfound=600000",
        "test-key",
        "test-secret-0123456789",
    );
    // The first run sends the entry; the exchange acknowledges it and then hides it.
    workspace.signal("BTC_USDT", "BUY", "100");
    let mut first = workspace.spawn_run("first.log");
    wait_trade_state(&workspace, &first, 1, "AWAITING_FILL");
    assert!(
        first.terminate(Duration::from_secs(30)).success(),
        "{}",
        first.log()
    );
    // The trade was made three days ago: its lookups read that far back in the history.
    let three_days_ms = 3 * 24 * 3600 * 1000_i64;
    let database = rusqlite::Connection::open(workspace.path("fillguard.db")).unwrap();
    let changed = database
        .execute(
            "UPDATE trades SET created_ms = created_ms - ?1",
            [three_days_ms],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(database);

    let (budget, timeout) = (Duration::from_secs(6), Duration::from_secs(2));
    // The canary: with CANARY_NO_TURN_BUDGET set, the agent runs with the largest budget
    // (600 s, as good as none) against the same bound, and this test must fail.
    let canary = std::env::var_os("CANARY_NO_TURN_BUDGET").is_some();
    let agent_budget = if canary { "600" } else { "6" };
    workspace.set_env("FILLGUARD_LOOP__TURN_BUDGET_SECONDS", agent_budget);
    let bound = derived_bound(budget, timeout);
    // A short interval, so nearly every chance to ping is taken and the gaps measure the units.
    let watchdog = Duration::from_millis(200);
    let log = workspace.path("second.log");
    let (socket, at_ready) = NotifySocket::bind(&mut workspace, watchdog, move || {
        std::fs::read_to_string(&log).unwrap_or_default()
    });
    let started = Instant::now();
    let agent = workspace.spawn_run("second.log");
    let ready = wait_for(Duration::from_secs(60), Duration::from_millis(100), || {
        at_ready.lock().unwrap().clone()
    })
    .unwrap_or_else(|| panic!("no READY=1\n{}log:\n{}", socket.transcript(), agent.log()));
    std::thread::sleep(Duration::from_secs(20));
    let ended = Instant::now();
    let pings = socket.pings_since(started);
    let gap = longest_gap(&pings, ended);
    let deferred = agent.log_lines("deferred to the next turn").len();
    let continued = ready.matches("reconciliation continues next turn").count();
    eprintln!(
        "budget {budget:?}, timeout {timeout:?}: READY=1 after {continued} reconciliation turns \
         cut short, {deferred} deferrals, {} pings, longest gap {gap:.2?} (bound {bound:?})",
        pings.len()
    );
    assert!(
        gap <= bound,
        "a gap of {gap:.2?} between pings, above the bound {bound:?}\n{}log:\n{}",
        socket.transcript(),
        agent.log()
    );
    assert!(
        continued >= 1 && ready.contains("open trades reconciled open_trades=1"),
        "the reconciliation did not span turns before READY=1; the log then:\n{ready}"
    );
    assert!(deferred >= 2, "nothing was deferred\nlog:\n{}", agent.log());
    assert!(pings.len() >= 5, "log:\n{}", agent.log());
    assert_start_extended(&socket, continued, bound * 2);
    drop(sim);
}

/// Each reconciliation turn cut short (`continued` of them) extended the supervisor's start
/// timeout by `extension`, and only before READY=1.
fn assert_start_extended(socket: &NotifySocket, continued: usize, extension: Duration) {
    let messages: Vec<String> = socket.messages().into_iter().map(|(_, m)| m).collect();
    let ready_at = messages.iter().position(|m| m == "READY=1").unwrap();
    let extend = format!("EXTEND_TIMEOUT_USEC={}", extension.as_micros());
    let extensions: Vec<usize> = (0..messages.len())
        .filter(|&i| messages[i].starts_with("EXTEND_TIMEOUT_USEC="))
        .collect();
    assert!(
        extensions.len() >= continued && extensions.iter().all(|&i| i < ready_at),
        "{}",
        socket.transcript()
    );
    assert!(
        extensions.iter().all(|&i| messages[i] == extend),
        "{extend}\n{}",
        socket.transcript()
    );
}

#[test]
fn a_loop_stalled_past_the_interval_stops_the_pings() {
    let mut workspace = Workspace::new(&format!(
        "{PAPER}{}",
        watchlist_entry("BTC_USDT", "100", "2", "3")
    ));
    let sim = SimExchange::start(
        &mut workspace,
        "12",
        "none",
        "test-key",
        "test-secret-0123456789",
    );
    // One request may now block the loop for 12 s, longer than the watchdog interval (which
    // the agent says at start): a hung exchange stalls the loop inside one unit of work.
    let timeout = Duration::from_secs(12);
    workspace.set_env(
        "FILLGUARD_VENUE__TIMEOUT_SECONDS",
        &timeout.as_secs().to_string(),
    );
    let watchdog = Duration::from_secs(4);
    let (socket, _) = NotifySocket::bind(&mut workspace, watchdog, String::new);
    workspace.signal("BTC_USDT", "BUY", "100");
    let agent = workspace.spawn_run("agent.log");
    wait_trade_state(&workspace, &agent, 1, "PROTECTED");
    assert_eq!(
        agent
            .log_lines("the watchdog interval (WatchdogSec) is shorter")
            .len(),
        1,
        "{}",
        agent.log()
    );
    // The simulator holds each request until the outage ends (then drops it), sooner than the
    // agent's timeout: the loop is stuck in one request for about the outage's length.
    let outage = Duration::from_secs(10);
    let began = Instant::now();
    sim.outage(&json!({"seconds": outage.as_secs(), "mode": "hang"}));
    std::thread::sleep(outage + Duration::from_secs(6));
    let ended = Instant::now();
    let pings = socket.pings_since(began - watchdog);
    let gap = longest_gap(&pings, ended);
    let resumed = pings.iter().filter(|at| **at > began + outage).count();
    eprintln!(
        "one request held {outage:?} (timeout {timeout:?}): longest gap {gap:.2?} (interval {watchdog:?}), {resumed} pings after it\n{}",
        socket.transcript()
    );
    assert!(gap > watchdog, "no stall seen\nlog:\n{}", agent.log());
    assert!(
        gap > outage - Duration::from_millis(1500),
        "the pings came back while the loop was stuck\nlog:\n{}",
        agent.log()
    );
    assert!(
        resumed >= 2,
        "the pings never resumed\nlog:\n{}",
        agent.log()
    );
}

/// The system call groups of `systemd-analyze syscall-filter`, each with its calls and groups.
fn syscall_groups() -> Option<std::collections::BTreeMap<String, Vec<String>>> {
    let output = systemd_analyze(&["syscall-filter"])?;
    let mut groups = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let entry = line.trim();
        if entry.is_empty() || entry.starts_with('#') {
            continue;
        }
        if line.starts_with('@') {
            current = Some(entry.to_string());
            groups.insert(entry.to_string(), Vec::new());
        } else if let Some(group) = &current {
            groups.get_mut(group).unwrap().push(entry.to_string());
        }
    }
    Some(groups)
}

/// The system calls a filter entry names (`@group` expanded, nested groups too).
fn expand(
    groups: &std::collections::BTreeMap<String, Vec<String>>,
    entry: &str,
    into: &mut std::collections::BTreeSet<String>,
) {
    match groups.get(entry) {
        Some(members) => members
            .iter()
            .for_each(|member| expand(groups, member, into)),
        None => {
            into.insert(entry.to_string());
        }
    }
}

/// The unit's `SystemCallFilter=` lines as the calls allowed and the calls denied (`~`).
fn unit_filter(
    groups: &std::collections::BTreeMap<String, Vec<String>>,
) -> (
    std::collections::BTreeSet<String>,
    std::collections::BTreeSet<String>,
) {
    let (mut allowed, mut denied) = Default::default();
    for line in std::fs::read_to_string(UNIT).unwrap().lines() {
        let Some(value) = line.strip_prefix("SystemCallFilter=") else {
            continue;
        };
        let (list, set) = match value.strip_prefix('~') {
            Some(list) => (list, &mut denied),
            None => (value, &mut allowed),
        };
        for entry in list.split_whitespace() {
            expand(groups, entry, set);
        }
    }
    (allowed, denied)
}

/// The system calls named in an strace log (`PID name(args…`).
fn calls_in(trace: &str) -> std::collections::BTreeSet<String> {
    trace
        .lines()
        .filter_map(|line| {
            let call = line.split_whitespace().nth(1)?;
            let (name, _) = call.split_once('(')?;
            let plain = name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            (plain && !name.is_empty()).then(|| name.to_string())
        })
        .collect()
}

/// `fillguard run --max-ticks 150` under `strace -f`, scraped once while it runs; the system
/// calls it made and whether it ran as root. `None` (said) when strace cannot trace here.
fn traced_run(
    workspace: &Workspace,
    metrics: &str,
) -> Option<(std::collections::BTreeSet<String>, bool)> {
    let trace = workspace.path("trace.txt");
    let command = workspace.command(&["run", "--max-ticks", "150"]);
    let mut traced = Command::new("strace");
    traced
        .args(["-f", "-qq", "-o"])
        .arg(&trace)
        .arg(command.get_program())
        .args(command.get_args());
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => traced.env(name, value),
            None => traced.env_remove(name),
        };
    }
    let spawned = traced
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(error) => {
            eprintln!("SKIPPED: strace cannot run here ({error})");
            return None;
        }
    };
    // A scrape while it runs, so the endpoint's calls (accept, the answer) are traced too.
    let scraped = wait_for(Duration::from_secs(10), Duration::from_millis(100), || {
        ureq::get(&format!("http://{metrics}/metrics")).call().ok()
    });
    let exited = wait_for(Duration::from_secs(60), Duration::from_millis(100), || {
        child.try_wait().unwrap()
    });
    let Some(exit) = exited else {
        let _ = child.kill();
        panic!("the traced run did not end");
    };
    if !trace.exists() {
        eprintln!("SKIPPED: strace cannot trace here ({exit})");
        return None;
    }
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(exit.success(), "{stderr}");
    assert!(scraped.is_some(), "no scrape answered during the run");
    let as_root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&trace).unwrap()) == 0;
    Some((calls_in(&std::fs::read_to_string(&trace).unwrap()), as_root))
}

#[test]
fn every_system_call_of_a_run_passes_the_units_filter() {
    let Some(groups) = syscall_groups() else {
        return;
    };
    let (allowed, denied) = unit_filter(&groups);
    assert!(
        allowed.contains("openat") && denied.contains("chown"),
        "{allowed:?}"
    );
    let watchlist = watchlist_entry("BTC_USDT", "100", "2", "3");
    let mut workspace = Workspace::new(&format!("{PAPER}{watchlist}"));
    // The metrics endpoint on, as in production, so its thread's calls are traced too.
    let metrics = common::free_loopback_address();
    workspace.set_env("FILLGUARD_METRICS__LISTEN", &metrics);
    let (_socket, _) = NotifySocket::bind(&mut workspace, Duration::from_secs(1), String::new);
    workspace.signal("BTC_USDT", "BUY", "100");
    let Some((used, as_root)) = traced_run(&workspace, &metrics) else {
        return;
    };
    // SQLite hands its files to the database's owner (fchown) only when it runs as root; the
    // unit runs it as a dynamic user, so that call is not made there.
    let outside: Vec<&String> = used
        .iter()
        .filter(|call| !allowed.contains(*call) || denied.contains(*call))
        .filter(|call| !(as_root && call.as_str() == "fchown"))
        .collect();
    eprintln!(
        "{} distinct system calls in a run with a trade; outside the unit's filter: {outside:?}",
        used.len()
    );
    assert!(used.len() > 20 && used.contains("sendto"), "{used:?}");
    assert!(outside.is_empty(), "{outside:?}");
}
