//! The watchlist meets the exchange at start-up, over loopback: the real `fillguard run` with
//! `venue.kind = "cryptocom"` against the real `fillguard sim-exchange`, whose instruments are
//! BTC_USDT and ETH_USDT. A watchlist symbol the exchange does not list (FOO_USDT) is reported
//! once and disabled, its signals dropped with the reason, while the listed symbol trades and
//! is protected; an exchange that does not answer at start-up disables nothing, and the check
//! completes once it answers. Every wait is bounded, and every child is killed on drop.

mod common;

use std::time::Duration;

use serde_json::{Value, json};

use common::{Running, SimExchange, Workspace, free_loopback_address, wait_for, watchlist_entry};

const API_KEY: &str = "test-key";
const API_SECRET: &str = "test-secret-0123456789";
const POLL: Duration = Duration::from_millis(250);
const EXIT_LIMIT: Duration = Duration::from_secs(15);
const UNLISTED: &str = "FOO_USDT";

/// The settings of the tests before the watchlist: quick turns and polls, a still price.
const SETTINGS: &str = "[loop]\ninterval_seconds = 0.2\n[poll]\ninterval_seconds = 0.3\ndeadline_seconds = 10\n[protection]\nwatch_interval_seconds = 0.5\n[paper]\nvolatility = \"0\"\nfill_delay_ms = 200\n";

fn workspace() -> Workspace {
    Workspace::new(&format!(
        "{SETTINGS}{}",
        watchlist_entry("BTC_USDT", "100", "2", "3")
    ))
}

/// Adds FOO_USDT to the watchlist. Done after the simulator started: it reads the same file
/// as a paper exchange, whose watchlist must name its own instruments.
fn add_unlisted(workspace: &Workspace) {
    let path = workspace.path("fillguard.toml");
    let mut toml = std::fs::read_to_string(&path).unwrap();
    toml.push_str(&watchlist_entry(UNLISTED, "100", "2", "3"));
    std::fs::write(&path, toml).unwrap();
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

/// The watchlist's states in `status --json`, as `SYMBOL state` lines.
fn watchlist(status: &Value) -> Vec<String> {
    status["watchlist"]["symbols"]
        .as_array()
        .map(|symbols| {
            symbols
                .iter()
                .map(|entry| format!("{} {}", text(&entry["symbol"]), text(&entry["state"])))
                .collect()
        })
        .unwrap_or_default()
}

fn unlisted_alerts(status: &Value) -> Vec<&Value> {
    status["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|alert| text(&alert["text"]).contains(UNLISTED))
        .collect()
}

/// The inbox as `SYMBOL STATUS reason` lines.
fn signals(workspace: &Workspace) -> Vec<String> {
    let conn = rusqlite::Connection::open_with_flags(
        workspace.path("fillguard.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let mut statement = conn
        .prepare("SELECT symbol, status, coalesce(reason, '') FROM signals ORDER BY id")
        .unwrap();
    statement
        .query_map([], |row| {
            let (symbol, status, reason): (String, String, String) =
                (row.get(0)?, row.get(1)?, row.get(2)?);
            Ok(format!("{symbol} {status} {reason}").trim_end().to_string())
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Waits until `check` holds on the agent's status; panics with the status and the log.
fn wait_status(
    workspace: &Workspace,
    agent: &Running,
    limit: Duration,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let found = wait_for(limit, POLL, || {
        let output = workspace.run(&["status", "--json", "--all"]);
        let status: Value = serde_json::from_slice(&output.stdout).ok()?;
        check(&status).then_some(status)
    });
    found.unwrap_or_else(|| {
        panic!(
            "{what}: not within {limit:?}\nstatus: {:#}\nlog:\n{}",
            workspace.status(),
            agent.log()
        )
    })
}

fn checked(status: &Value) -> bool {
    watchlist(status) == ["BTC_USDT enabled", "FOO_USDT disabled"]
}

/// Trade 1 on BTC_USDT is PROTECTED with one live stop-loss and one live take-profit, and no
/// order of the book names FOO_USDT.
fn check_btc_protected(sim: &SimExchange, workspace: &Workspace, agent: &Running) {
    let status = wait_status(
        workspace,
        agent,
        Duration::from_secs(30),
        "BTC_USDT protected",
        |status| {
            status["trades"]
                .as_array()
                .unwrap()
                .iter()
                .any(|trade| trade["symbol"] == "BTC_USDT" && trade["state"] == "PROTECTED")
        },
    );
    let book = sim.book();
    let live = |prefix: &str| {
        book.iter()
            .filter(|order| SimExchange::is_live(order))
            .filter(|order| text(&order["client_oid"]).ends_with(prefix))
            .count()
    };
    assert_eq!((live("S1"), live("T1")), (1, 1), "{book:#?}");
    assert!(
        book.iter()
            .all(|order| order["instrument_name"] != UNLISTED),
        "an order for {UNLISTED} reached the exchange: {book:#?}"
    );
    assert!(
        status["trades"]
            .as_array()
            .unwrap()
            .iter()
            .all(|trade| trade["symbol"] != UNLISTED),
        "{status:#}"
    );
}

#[test]
fn an_unlisted_watchlist_symbol_is_reported_once_and_disabled_while_the_listed_one_trades() {
    let mut workspace = workspace();
    let sim = SimExchange::start(&mut workspace, "31", "none", API_KEY, API_SECRET);
    add_unlisted(&workspace);
    // A symbol's listing is the exchange's to say: the configuration alone accepts it.
    workspace.run_ok(&["check-config"]);
    let mut agent = workspace.spawn_run("run.log");
    let status = wait_status(
        &workspace,
        &agent,
        Duration::from_secs(20),
        "watchlist checked",
        checked,
    );
    let alerts = unlisted_alerts(&status);
    assert_eq!(alerts.len(), 1, "{status:#}");
    assert_eq!(alerts[0]["severity"], "WARNING");
    assert!(
        text(&alerts[0]["key"]).starts_with("watchlist-unlisted-FOO_USDT-"),
        "{status:#}"
    );
    eprintln!("  alert: {}", text(&alerts[0]["text"]));
    let logged = agent.log_lines("watchlist symbol is not listed on the exchange");
    assert_eq!(logged.len(), 1, "{}", agent.log());
    assert!(logged[0].contains(UNLISTED), "{}", logged[0]);
    assert!(logged[0].contains("ERROR"), "{}", logged[0]);

    workspace.signal(UNLISTED, "BUY", "100");
    workspace.signal("BTC_USDT", "BUY", "100");
    let dropped = wait_for(Duration::from_secs(20), POLL, || {
        let inbox = signals(&workspace);
        inbox
            .iter()
            .any(|line| line.starts_with("FOO_USDT DROPPED"))
            .then_some(inbox)
    })
    .unwrap_or_else(|| panic!("FOO_USDT's signal not dropped\n{}", agent.log()));
    let expected = "FOO_USDT DROPPED FOO_USDT is not listed on the exchange";
    assert!(
        dropped.iter().any(|line| line.starts_with(expected)),
        "{dropped:#?}"
    );
    check_btc_protected(&sim, &workspace, &agent);
    // Dropped at once, never retried: no market-data warning for the unlisted symbol.
    assert!(
        agent
            .log_lines("market data unavailable; signal kept")
            .is_empty(),
        "{}",
        agent.log()
    );
    assert_eq!(agent.terminate(EXIT_LIMIT).code(), Some(0));
    check_restart_does_not_alert_again(&workspace);
}

/// A restart checks again and logs again, but does not alert again; `status` names the
/// disabled symbol.
fn check_restart_does_not_alert_again(workspace: &Workspace) {
    let mut again = workspace.spawn_run("run-2.log");
    wait_for(Duration::from_secs(20), POLL, || {
        (!again
            .log_lines("watchlist checked against the exchange")
            .is_empty())
        .then_some(())
    })
    .unwrap_or_else(|| panic!("no second check\n{}", again.log()));
    let status = workspace.status();
    assert!(checked(&status), "{status:#}");
    assert_eq!(unlisted_alerts(&status).len(), 1, "{status:#}");
    assert_eq!(
        again
            .log_lines("watchlist symbol is not listed on the exchange")
            .len(),
        1,
        "{}",
        again.log()
    );
    let human = workspace.run_ok(&["status"]);
    assert!(
        human.contains("FOO_USDT     disabled: not listed on the exchange"),
        "{human}"
    );
    eprintln!(
        "  {}",
        human.lines().rev().take(3).collect::<Vec<_>>().join(" | ")
    );
    assert_eq!(again.terminate(EXIT_LIMIT).code(), Some(0));
}

#[test]
fn an_exchange_unreachable_at_start_up_disables_nothing_and_the_check_completes_later() {
    let mut workspace = workspace();
    add_unlisted(&workspace);
    let address = free_loopback_address();
    let secret = workspace.write_secret("api-secret", API_SECRET);
    workspace.aim_at_cryptocom(&address, API_KEY, &secret);
    let mut agent = workspace.spawn_run("run.log");
    std::thread::sleep(Duration::from_secs(5));
    let status = workspace.status();
    assert!(
        !watchlist(&status)
            .iter()
            .any(|line| line.ends_with("disabled")),
        "{status:#}"
    );
    assert!(unlisted_alerts(&status).is_empty(), "{status:#}");
    // A signal for the unlisted symbol waits in the inbox while the check is pending.
    workspace.signal(UNLISTED, "BUY", "100");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(signals(&workspace), ["FOO_USDT NEW"]);

    // The simulator reads the file as a paper exchange: without the unlisted symbol.
    let path = workspace.path("fillguard.toml");
    let full = std::fs::read_to_string(&path).unwrap();
    let listed_only = full.replace(&watchlist_entry(UNLISTED, "100", "2", "3"), "");
    std::fs::write(&path, &listed_only).unwrap();
    let sim = SimExchange::start_on(&mut workspace, &address, "32", "none", API_KEY, API_SECRET);
    std::fs::write(&path, &full).unwrap();
    let status = wait_status(
        &workspace,
        &agent,
        Duration::from_secs(60),
        "watchlist checked",
        checked,
    );
    assert_eq!(unlisted_alerts(&status).len(), 1, "{status:#}");
    let inbox = signals(&workspace);
    assert!(
        inbox[0].starts_with("FOO_USDT DROPPED FOO_USDT is not listed on the exchange"),
        "{inbox:#?}"
    );
    // The global breaker the unreachable self-check opened is closed again: entries open.
    workspace.signal("BTC_USDT", "BUY", "100");
    check_btc_protected(&sim, &workspace, &agent);
    assert_eq!(agent.terminate(EXIT_LIMIT).code(), Some(0));
}

#[test]
fn a_listing_that_fails_after_the_self_check_is_retried_and_disables_nothing_meanwhile() {
    let mut workspace = workspace();
    let sim = SimExchange::start(&mut workspace, "33", "none", API_KEY, API_SECRET);
    add_unlisted(&workspace);
    // The self-check's last request is answered; the instruments request right after it is
    // refused, and so is every request for the next 6 s.
    let armed = sim.outage(&json!({"seconds": 6, "mode": "refuse",
        "after": "private/user-balance", "answer_trigger": true}));
    assert_eq!(armed["state"], "armed", "{armed}");
    let mut agent = workspace.spawn_run("run.log");
    let pending = wait_status(
        &workspace,
        &agent,
        Duration::from_secs(20),
        "check pending",
        |status| {
            status["watchlist"]["checked_at_ms"].is_null()
                && watchlist(status) == ["BTC_USDT unchecked", "FOO_USDT unchecked"]
        },
    );
    assert!(unlisted_alerts(&pending).is_empty(), "{pending:#}");
    let status = wait_status(
        &workspace,
        &agent,
        Duration::from_secs(60),
        "watchlist checked",
        checked,
    );
    let retries = agent.log_lines("watchlist check failed; nothing disabled, retrying");
    assert!(!retries.is_empty(), "{}", agent.log());
    eprintln!(
        "  {} failed listings before the check completed",
        retries.len()
    );
    assert_eq!(unlisted_alerts(&status).len(), 1, "{status:#}");
    workspace.signal(UNLISTED, "SELL", "100");
    workspace.signal("BTC_USDT", "BUY", "100");
    check_btc_protected(&sim, &workspace, &agent);
    let inbox = signals(&workspace);
    assert!(
        inbox
            .iter()
            .any(|line| line.starts_with("FOO_USDT DROPPED FOO_USDT is not listed")),
        "{inbox:#?}"
    );
    assert_eq!(agent.terminate(EXIT_LIMIT).code(), Some(0));
}
