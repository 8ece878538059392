//! Recovery over loopback: the real `fillguard run` against the real `fillguard sim-exchange`
//! when the exchange stops answering in the middle of a trade (`/sim/outage`), when it is not
//! there yet at start-up, when it refuses the key, and when a fresh database meets the orders
//! an earlier database left on the same account. The simulator's book is the exchange's side
//! of the truth; the agent's side is `fillguard status --json` and its database. Every wait is
//! bounded, and every child is killed on drop.

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use fillguard::core::ids::{Role, parse_client_oid};

use common::{
    Running, SimExchange, Workspace, free_loopback_address, trades, wait_for, watchlist_entry,
};

const API_KEY: &str = "test-key";
const API_SECRET: &str = "test-secret-0123456789";
/// How often the tests look at the agent's and the exchange's state.
const POLL: Duration = Duration::from_millis(250);
/// How long a stopped agent may take to exit.
const EXIT_LIMIT: Duration = Duration::from_secs(15);

/// Short poll budgets, so a lookup that keeps failing halts the trade within seconds, and two
/// symbols trading on inbox signals only.
fn workspace() -> Workspace {
    let watchlist = ["BTC_USDT", "ETH_USDT"].map(|symbol| watchlist_entry(symbol, "100", "2", "3"));
    Workspace::new(&format!(
        "[loop]\ninterval_seconds = 0.2\n[poll]\nmax_attempts = 3\ninterval_seconds = 0.3\ndeadline_seconds = 5\n[protection]\nwatch_interval_seconds = 0.5\n[paper]\nvolatility = \"0\"\nfill_delay_ms = 200\n{}",
        watchlist.concat()
    ))
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

fn trade(status: &Value, id: i64) -> Option<&Value> {
    trades(status).iter().find(|trade| trade["id"] == id)
}

fn state(status: &Value, id: i64) -> &str {
    trade(status, id).map_or("", |trade| text(&trade["state"]))
}

fn breaker<'a>(status: &'a Value, symbol: &str) -> Option<&'a Value> {
    status["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|breaker| breaker["symbol"] == symbol)
}

fn is_open(status: &Value, symbol: &str) -> bool {
    breaker(status, symbol).is_some_and(|breaker| breaker["open"] == true)
}

fn alerts(status: &Value) -> &Vec<Value> {
    status["alerts"].as_array().unwrap()
}

/// The alert with `key`, or with `key` and its recovery episode (`resolved-1-<since>`).
fn alert<'a>(status: &'a Value, key: &str) -> Option<&'a Value> {
    let episode = format!("{key}-");
    alerts(status).iter().find(|alert| {
        let found = text(&alert["key"]);
        found == key || found.starts_with(&episode)
    })
}

/// Waits until `check` holds on the agent's status; panics with the status and the agent's
/// log after `limit`. Returns the status that satisfied it.
fn wait_status(
    workspace: &Workspace,
    agent: &Running,
    limit: Duration,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let found = wait_for(limit, POLL, || {
        // Before the agent has created its database there is no status to read.
        let output = workspace.run(&["status", "--json"]);
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

/// The live stop-losses and take-profits of one trade (by its client_oids' epoch and id) on
/// the exchange's book.
fn live_legs(book: &[Value], epoch: &str, trade_id: i64) -> (Vec<Value>, Vec<Value>) {
    let mut stops = Vec::new();
    let mut profits = Vec::new();
    for order in book.iter().filter(|order| SimExchange::is_live(order)) {
        let Some(oid) = parse_client_oid(text(&order["client_oid"])) else {
            continue;
        };
        if oid.epoch != epoch || oid.trade_id != trade_id {
            continue;
        }
        match oid.role {
            Role::StopLoss => stops.push(order.clone()),
            Role::TakeProfit => profits.push(order.clone()),
            _ => {}
        }
    }
    (stops, profits)
}

/// The epoch of a trade, read from its entry's client_oid.
fn trade_epoch(trade: &Value) -> String {
    parse_client_oid(text(&trade["entry"]["client_oid"]))
        .map(|oid| oid.epoch)
        .unwrap_or_default()
}

/// Opens the workspace's database read-only (the agent may be running).
fn database(workspace: &Workspace) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(
        workspace.path("fillguard.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap()
}

fn oid_epoch(workspace: &Workspace) -> String {
    database(workspace)
        .query_row(
            "SELECT value FROM meta WHERE key = 'oid_epoch'",
            [],
            |row| row.get(0),
        )
        .unwrap()
}

/// The trade's state changes as the agent recorded them, seconds after the first.
fn state_changes(workspace: &Workspace, trade_id: i64) -> Vec<String> {
    let conn = database(workspace);
    let mut statement = conn
        .prepare(
            "SELECT at_ms, detail FROM events WHERE trade_id = ?1 AND kind = 'state' ORDER BY id",
        )
        .unwrap();
    let rows: Vec<(i64, String)> = statement
        .query_map([trade_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let first = rows.first().map_or(0, |(at, _)| *at);
    rows.iter()
        .map(|(at, detail)| format!("+{:.1}s {detail}", (at - first) as f64 / 1000.0))
        .collect()
}

/// Waits until the outage armed on `sim` has begun; returns when it was seen.
fn outage_began(sim: &SimExchange, agent: &Running, limit: Duration) -> Instant {
    wait_for(limit, Duration::from_millis(50), || {
        (sim.outage_state()["state"] == "active").then(Instant::now)
    })
    .unwrap_or_else(|| panic!("the outage never began\nlog:\n{}", agent.log()))
}

/// Samples the book until `check` holds on the status, asserting at every sample that trade
/// `trade_id` never has two live stop-losses or two live take-profits on the exchange.
fn watch_book_until(
    sim: &SimExchange,
    workspace: &Workspace,
    agent: &Running,
    trade_id: i64,
    limit: Duration,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let epoch = oid_epoch(workspace);
    wait_status(workspace, agent, limit, what, |status| {
        let (stops, profits) = live_legs(&sim.book(), &epoch, trade_id);
        assert!(
            stops.len() <= 1 && profits.len() <= 1,
            "two live legs of one role: {stops:#?} {profits:#?}"
        );
        check(status)
    })
}

/// After a recovery: trade `trade_id` is PROTECTED with exactly one live stop-loss and one
/// take-profit on the book, the RESOLVED warning names both, and its symbol's breaker is still
/// open. Returns the legs' order ids.
fn check_recovered(sim: &SimExchange, status: &Value, trade_id: i64) -> (String, String) {
    let trade = trade(status, trade_id).unwrap();
    assert_eq!(trade["state"], "PROTECTED", "{trade:#}");
    let symbol = text(&trade["symbol"]);
    let book = sim.book();
    let (stops, profits) = live_legs(&book, &trade_epoch(trade), trade_id);
    assert_eq!(
        (stops.len(), profits.len()),
        (1, 1),
        "one live stop-loss and one take-profit: {book:#?}"
    );
    let stop_id = text(&stops[0]["order_id"]).to_string();
    let profit_id = text(&profits[0]["order_id"]).to_string();
    assert_eq!(
        trade["stop_loss"]["order_id"],
        stop_id.as_str(),
        "{trade:#}"
    );
    assert_eq!(
        trade["take_profit"]["order_id"],
        profit_id.as_str(),
        "{trade:#}"
    );
    let resolved = alert(status, &format!("resolved-{trade_id}"))
        .unwrap_or_else(|| panic!("no RESOLVED alert: {status:#}"));
    let resolved_text = text(&resolved["text"]);
    assert_eq!(resolved["severity"], "WARNING");
    assert!(resolved_text.starts_with("RESOLVED"), "{resolved_text}");
    assert!(
        resolved_text.contains(&stop_id) && resolved_text.contains(&profit_id),
        "the RESOLVED alert names both legs: {resolved_text}"
    );
    assert!(
        is_open(status, symbol),
        "the breaker stays open until the operator resets it: {status:#}"
    );
    eprintln!("  resolved: {resolved_text}");
    let keys: Vec<String> = alerts(status)
        .iter()
        .map(|alert| format!("{} {}", text(&alert["severity"]), text(&alert["key"])))
        .collect();
    eprintln!(
        "  alerts: {keys:?}; the PROTECTED trade's close_reason: {}",
        trade["close_reason"]
    );
    (stop_id, profit_id)
}

/// A RECOVERING trade has its CRITICAL halt alert and its symbol's breaker open.
fn check_recovering(status: &Value, trade_id: i64) -> String {
    let trade = trade(status, trade_id).unwrap();
    let reason = text(&trade["close_reason"]).to_string();
    let symbol = text(&trade["symbol"]);
    let critical: Vec<&Value> = alerts(status)
        .iter()
        .filter(|alert| alert["severity"] == "CRITICAL")
        .filter(|alert| {
            let key = text(&alert["key"]);
            key.starts_with(&format!("halt-{trade_id}-"))
                || key.starts_with(&format!("protection-{trade_id}-"))
        })
        .collect();
    assert!(!critical.is_empty(), "no CRITICAL alert: {status:#}");
    let breaker = breaker(status, symbol).unwrap_or_else(|| panic!("no breaker: {status:#}"));
    assert_eq!(breaker["open"], true, "{status:#}");
    eprintln!(
        "  RECOVERING ({reason}); breaker {symbol} open ({}); alerts: {:?}",
        breaker["reason"],
        critical
            .iter()
            .map(|alert| text(&alert["key"]))
            .collect::<Vec<_>>()
    );
    reason
}

#[test]
fn an_outage_right_after_the_entry_recovers_and_protects_the_fill() {
    let mut workspace = workspace();
    let sim = SimExchange::start(&mut workspace, "21", "fill_delay=2000", API_KEY, API_SECRET);
    // The exchange answers the entry, then holds every request unanswered for 25 s: each of
    // the agent's lookups runs into its 2 s timeout, and the entry fills meanwhile.
    let armed =
        sim.outage(&json!({"seconds": 25, "mode": "hang", "after": "private/create-order"}));
    assert_eq!(armed["state"], "armed", "{armed}");
    workspace.signal("BTC_USDT", "BUY", "100");
    let mut agent = workspace.spawn_run("run.log");
    let began = outage_began(&sim, &agent, Duration::from_secs(20));

    let status = wait_status(
        &workspace,
        &agent,
        Duration::from_secs(40),
        "RECOVERING",
        |status| state(status, 1) == "RECOVERING",
    );
    let recovering_after = began.elapsed();
    let during = sim.outage_state();
    assert_eq!(
        during["state"], "active",
        "recovering while the exchange is silent: {during}"
    );
    eprintln!("outage after the entry: RECOVERING {recovering_after:.1?} into the outage");
    let reason = check_recovering(&status, 1);
    assert_eq!(reason, "entry_state_unknown");
    let entry_on_book = sim
        .book()
        .into_iter()
        .find(|order| text(&order["client_oid"]).ends_with("-1-E0"))
        .expect("the entry reached the exchange");
    eprintln!(
        "  entry on the book during the outage: {} {} filled {}",
        entry_on_book["order_id"], entry_on_book["status"], entry_on_book["cumulative_quantity"]
    );

    let status = watch_book_until(
        &sim,
        &workspace,
        &agent,
        1,
        Duration::from_secs(60),
        "PROTECTED",
        |status| state(status, 1) == "PROTECTED",
    );
    eprintln!(
        "  PROTECTED {:.1?} after the outage began (it lasted 25 s; {} requests unanswered)",
        began.elapsed(),
        sim.outage_state()["unanswered"]
    );
    let (stop_id, profit_id) = check_recovered(&sim, &status, 1);
    eprintln!("  stop-loss order_id {stop_id}, take-profit order_id {profit_id}");
    let trade = trade(&status, 1).unwrap();
    assert_eq!(trade["entry"]["order_id"], entry_on_book["order_id"]);
    assert_eq!(
        trade["filled_quantity"], entry_on_book["quantity"],
        "{trade:#}"
    );
    for change in state_changes(&workspace, 1) {
        eprintln!("  {change}");
    }
    assert_eq!(agent.terminate(EXIT_LIMIT).code(), Some(0));
}

#[test]
fn an_outage_right_after_the_protective_send_recovers_to_one_protection() {
    // The OCO's own answer is lost too: the agent cannot tell whether its protection exists.
    outage_after_the_protective_send("22", false);
}

#[test]
fn an_outage_right_after_an_answered_protective_send_recovers_to_one_protection() {
    outage_after_the_protective_send("26", true);
}

/// The OCO is applied, then the exchange closes every connection unanswered for 20 s (the
/// OCO's answer included unless `answer_trigger`). At no moment may the book hold two live
/// stop-losses or take-profits of the trade, and it ends protected by that very OCO.
fn outage_after_the_protective_send(seed: &str, answer_trigger: bool) {
    let mut workspace = workspace();
    let sim = SimExchange::start(&mut workspace, seed, "fill_delay=500", API_KEY, API_SECRET);
    let armed = sim.outage(&json!({"seconds": 20, "mode": "refuse",
        "after": "private/advanced/create-oco", "answer_trigger": answer_trigger}));
    assert_eq!(armed["state"], "armed", "{armed}");
    workspace.signal("ETH_USDT", "SELL", "100");
    let mut agent = workspace.spawn_run("run.log");
    let began = outage_began(&sim, &agent, Duration::from_secs(20));
    let epoch = oid_epoch(&workspace);
    let (stops, profits) = live_legs(&sim.book(), &epoch, 1);
    assert_eq!((stops.len(), profits.len()), (1, 1), "the OCO was applied");

    let status = watch_book_until(
        &sim,
        &workspace,
        &agent,
        1,
        Duration::from_secs(40),
        "RECOVERING",
        |status| state(status, 1) == "RECOVERING",
    );
    let recovering_after = began.elapsed();
    assert_eq!(sim.outage_state()["state"], "active");
    eprintln!(
        "outage after the protective send (answered: {answer_trigger}): RECOVERING {recovering_after:.1?} into the outage"
    );
    let reason = check_recovering(&status, 1);
    eprintln!(
        "  legs as the agent saw them: SL {} TP {}",
        status["trades"][0]["stop_loss"]["status"], status["trades"][0]["take_profit"]["status"]
    );

    let status = watch_book_until(
        &sim,
        &workspace,
        &agent,
        1,
        Duration::from_secs(60),
        "PROTECTED",
        |status| state(status, 1) == "PROTECTED",
    );
    eprintln!(
        "  PROTECTED {:.1?} after the outage began (it lasted 20 s; {} requests unanswered); halted for {reason}",
        began.elapsed(),
        sim.outage_state()["unanswered"]
    );
    let (stop_id, profit_id) = check_recovered(&sim, &status, 1);
    assert_eq!(
        (text(&stops[0]["order_id"]), text(&profits[0]["order_id"])),
        (stop_id.as_str(), profit_id.as_str()),
        "the legs of the OCO sent before the outage, no new ones"
    );
    let protective_on_book = sim
        .book()
        .iter()
        .filter(|order| {
            parse_client_oid(text(&order["client_oid"])).is_some_and(|oid| oid.role.is_protective())
        })
        .count();
    assert_eq!(protective_on_book, 2, "no second OCO was ever placed");
    eprintln!("  stop-loss order_id {stop_id}, take-profit order_id {profit_id}");
    if let Some(unprotected) = alert(&status, "unprotected-1") {
        eprintln!("  {}", text(&unprotected["text"]));
    }
    for change in state_changes(&workspace, 1) {
        eprintln!("  {change}");
    }
    assert_eq!(agent.terminate(EXIT_LIMIT).code(), Some(0));
}

/// The alerts whose key starts with `prefix`.
fn alerts_keyed<'a>(status: &'a Value, prefix: &str) -> Vec<&'a Value> {
    alerts(status)
        .iter()
        .filter(|alert| text(&alert["key"]).starts_with(prefix))
        .collect()
}

fn no_critical_alert(status: &Value) -> bool {
    alerts(status)
        .iter()
        .all(|alert| alert["severity"] != "CRITICAL")
}

fn no_open_breaker(status: &Value) -> bool {
    status["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|breaker| breaker["open"] == false)
}

/// Ten seconds into a run with nothing listening: `breaker list` shows the global breaker open
/// for `self_check_unreachable`, and one WARNING says the venue is unreachable.
fn check_unreachable(workspace: &Workspace, agent: &mut Running, address: &str) {
    assert!(agent.is_running(), "{}", agent.log());
    let breakers = workspace.run_ok(&["breaker", "list"]);
    eprintln!(
        "boot with nothing on {address}, after 10 s: breaker list: {}",
        breakers.trim()
    );
    let global = breakers
        .lines()
        .find(|line| line.starts_with("* "))
        .unwrap_or_else(|| panic!("no global breaker: {breakers}\n{}", agent.log()));
    assert!(
        global.contains("OPEN") && global.contains("reason=self_check_unreachable"),
        "{global}"
    );
    let status = workspace.status();
    let unreachable = alerts_keyed(&status, "self-check-unreachable-");
    assert_eq!(unreachable.len(), 1, "{status:#}");
    assert_eq!(unreachable[0]["severity"], "WARNING");
    assert!(no_critical_alert(&status), "{status:#}");
    eprintln!("  {}", text(&unreachable[0]["text"]));
}

#[test]
fn a_boot_before_the_network_opens_the_breaker_and_closes_it_when_the_exchange_answers() {
    let mut workspace = workspace();
    let address = free_loopback_address();
    let secret = workspace.write_secret("api-secret", API_SECRET);
    workspace.aim_at_cryptocom(&address, API_KEY, &secret);
    let started = Instant::now();
    let mut agent = workspace.spawn_run("run.log");
    std::thread::sleep(Duration::from_secs(10));
    check_unreachable(&workspace, &mut agent, &address);

    let sim = SimExchange::start_on(&mut workspace, &address, "23", "none", API_KEY, API_SECRET);
    let sim_started = Instant::now();
    let status = wait_status(
        &workspace,
        &agent,
        Duration::from_secs(30),
        "breaker closed",
        |status| breaker(status, "*").is_some_and(|breaker| breaker["open"] == false),
    );
    eprintln!(
        "  simulator up {:.1?} after the boot; breaker closed {:.1?} later",
        sim_started.duration_since(started),
        sim_started.elapsed()
    );
    let resolved = alerts_keyed(&status, "self-check-resolved-");
    assert_eq!(resolved.len(), 1, "{status:#}");
    assert_eq!(resolved[0]["severity"], "WARNING");
    let resolved_text = text(&resolved[0]["text"]);
    assert!(resolved_text.starts_with("RESOLVED"), "{resolved_text}");
    eprintln!("  {resolved_text}");
    let retries = agent.log_lines("venue self-check failed; retrying").len();
    eprintln!("  {retries} failed self-checks logged");
    assert!(retries >= 2, "retried with backoff:\n{}", agent.log());

    workspace.signal("BTC_USDT", "BUY", "100");
    let status = wait_status(
        &workspace,
        &agent,
        Duration::from_secs(30),
        "PROTECTED",
        |status| state(status, 1) == "PROTECTED",
    );
    let trade = trade(&status, 1).unwrap();
    let (stops, profits) = live_legs(&sim.book(), &trade_epoch(trade), 1);
    assert_eq!((stops.len(), profits.len()), (1, 1));
    eprintln!(
        "  trade 1 PROTECTED: entry {} stop-loss {} take-profit {}",
        trade["entry"]["order_id"], stops[0]["order_id"], profits[0]["order_id"]
    );
    assert!(no_critical_alert(&status), "{status:#}");
    assert_eq!(agent.terminate(EXIT_LIMIT).code(), Some(0));
}

/// The signals of the inbox as `status reason` text.
fn signals(workspace: &Workspace) -> Vec<String> {
    let conn = database(workspace);
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

/// The global breaker is open for `self_check_failed` with one CRITICAL alert naming 40101.
fn check_refused(status: &Value) {
    let global = breaker(status, "*").unwrap();
    assert_eq!(global["reason"], "self_check_failed", "{status:#}");
    let critical: Vec<&Value> = alerts(status)
        .iter()
        .filter(|alert| alert["severity"] == "CRITICAL")
        .collect();
    assert_eq!(critical.len(), 1, "{status:#}");
    let critical_text = text(&critical[0]["text"]);
    assert!(
        critical_text.starts_with("VENUE SELF-CHECK FAILED") && critical_text.contains("40101"),
        "{critical_text}"
    );
}

#[test]
fn a_bad_key_at_start_up_waits_for_the_operator() {
    let mut workspace = workspace();
    let sim = SimExchange::start(&mut workspace, "24", "none", API_KEY, API_SECRET);
    let wrong = workspace.write_secret("wrong-secret", "not-the-secret");
    let wrong = wrong.display().to_string();
    workspace.set_env("FILLGUARD_VENUE__API_SECRET_FILE", &wrong);
    workspace.signal("BTC_USDT", "BUY", "100");
    let mut agent = workspace.spawn_run("run.log");
    let status = wait_status(
        &workspace,
        &agent,
        Duration::from_secs(15),
        "breaker open",
        |status| is_open(status, "*"),
    );
    let opened = Instant::now();
    check_refused(&status);
    eprintln!(
        "bad key: breaker * open (self_check_failed); {}",
        text(&alerts(&status)[0]["text"])
    );

    std::thread::sleep(Duration::from_secs(10));
    assert!(
        agent.is_running(),
        "it waits, it does not exit:\n{}",
        agent.log()
    );
    let status = workspace.status();
    check_refused(&status);
    let global = breaker(&status, "*").unwrap();
    assert_eq!(
        (&global["open"], &global["trip_count"]),
        (&json!(true), &json!(1))
    );
    let refusals = agent.log_lines("venue self-check refused").len();
    let retries = agent.log_lines("venue self-check failed; retrying").len();
    assert_eq!(
        (refusals, retries),
        (1, 0),
        "one self-check, no retry of a refusal:\n{}",
        agent.log()
    );
    assert!(sim.book().is_empty(), "no order reached the exchange");
    assert!(trades(&status).is_empty(), "{status:#}");
    eprintln!(
        "  still open {:.1?} later, agent running; trades: none; signals: {:?}",
        opened.elapsed(),
        signals(&workspace)
    );
    assert_eq!(agent.terminate(EXIT_LIMIT).code(), Some(0));
}

/// Runs the agent until trades 1 (BTC_USDT BUY) and 2 (ETH_USDT SELL) are PROTECTED, stops it
/// with SIGTERM and returns the status at the end.
fn two_protected_trades(workspace: &Workspace, log_name: &str) -> Value {
    workspace.signal("BTC_USDT", "BUY", "100");
    workspace.signal("ETH_USDT", "SELL", "100");
    let mut agent = workspace.spawn_run(log_name);
    let status = wait_status(
        workspace,
        &agent,
        Duration::from_secs(30),
        "two PROTECTED",
        |status| state(status, 1) == "PROTECTED" && state(status, 2) == "PROTECTED",
    );
    assert_eq!(agent.terminate(EXIT_LIMIT).code(), Some(0));
    status
}

fn remove_database(workspace: &Workspace) {
    for suffix in ["", "-wal", "-shm", ".lock"] {
        let path = workspace.path(&format!("fillguard.db{suffix}"));
        if path.exists() {
            std::fs::remove_file(&path).unwrap();
        }
    }
}

/// Every order of `old` is named in a FOREIGN ORDER warning of the new database, which has no
/// trade, no open breaker and no CRITICAL alert.
fn check_foreign(workspace: &Workspace, agent: &Running, old: &[Value]) {
    let keys: Vec<String> = old
        .iter()
        .map(|order| format!("foreign-{}", text(&order["client_oid"])))
        .collect();
    let status = wait_status(
        workspace,
        agent,
        Duration::from_secs(20),
        "FOREIGN ORDER warnings",
        |status| keys.iter().all(|key| alert(status, key).is_some()),
    );
    for key in &keys {
        let warning = alert(&status, key).unwrap();
        assert_eq!(warning["severity"], "WARNING");
        assert!(
            text(&warning["text"]).starts_with("FOREIGN ORDER"),
            "{warning}"
        );
    }
    eprintln!("  {}", text(&alert(&status, &keys[0]).unwrap()["text"]));
    assert!(trades(&status).is_empty(), "nothing adopted: {status:#}");
    assert!(no_open_breaker(&status), "{status:#}");
    assert!(no_critical_alert(&status), "{status:#}");
}

/// The new database's trades carry its epoch, use none of `old`'s ids, and each has exactly one
/// live stop-loss and one take-profit on the book.
fn check_new_trades(status: &Value, book: &[Value], epoch: &str, old: &[Value]) {
    let old_oids: Vec<&str> = old.iter().map(|order| text(&order["client_oid"])).collect();
    let old_ids: Vec<&str> = old.iter().map(|order| text(&order["order_id"])).collect();
    for trade in trades(status) {
        for order in trade["orders"].as_array().unwrap() {
            let oid = text(&order["client_oid"]);
            assert!(oid.starts_with(&format!("fg-{epoch}-")), "{order}");
            assert!(!old_oids.contains(&oid), "adopted {oid}");
            assert!(!old_ids.contains(&text(&order["order_id"])), "{order}");
        }
        let id = trade["id"].as_i64().unwrap();
        let (stops, profits) = live_legs(book, epoch, id);
        assert_eq!((stops.len(), profits.len()), (1, 1), "{book:#?}");
        eprintln!(
            "  new trade {id} {} PROTECTED: entry {} stop-loss {} take-profit {}",
            text(&trade["symbol"]),
            text(&trade["entry"]["client_oid"]),
            text(&stops[0]["client_oid"]),
            text(&profits[0]["client_oid"])
        );
    }
}

#[test]
fn a_fresh_database_on_the_same_account_adopts_no_old_order() {
    let mut workspace = workspace();
    let sim = SimExchange::start(&mut workspace, "25", "none", API_KEY, API_SECRET);
    two_protected_trades(&workspace, "run-1.log");
    let old_epoch = oid_epoch(&workspace);
    let old: Vec<Value> = sim
        .book()
        .into_iter()
        .filter(SimExchange::is_live)
        .collect();
    assert_eq!(
        old.len(),
        4,
        "two stop-losses and two take-profits: {old:#?}"
    );
    eprintln!(
        "first database (epoch {old_epoch}) left live: {:?}",
        old.iter()
            .map(|order| format!(
                "{} {}",
                text(&order["client_oid"]),
                text(&order["order_id"])
            ))
            .collect::<Vec<_>>()
    );

    remove_database(&workspace);
    let mut agent = workspace.spawn_run("run-2.log");
    check_foreign(&workspace, &agent, &old);
    let new_epoch = oid_epoch(&workspace);
    assert_ne!(new_epoch, old_epoch);
    eprintln!("second database: epoch {new_epoch}");

    workspace.signal("BTC_USDT", "BUY", "100");
    workspace.signal("ETH_USDT", "SELL", "100");
    let status = wait_status(
        &workspace,
        &agent,
        Duration::from_secs(30),
        "two new PROTECTED",
        |status| state(status, 1) == "PROTECTED" && state(status, 2) == "PROTECTED",
    );
    let book = sim.book();
    check_new_trades(&status, &book, &new_epoch, &old);
    for order in &old {
        let now = book
            .iter()
            .find(|row| row["order_id"] == order["order_id"])
            .unwrap();
        assert_eq!(now["status"], order["status"], "never cancelled: {now}");
    }
    let status = workspace.status();
    assert!(no_open_breaker(&status), "{status:#}");
    assert!(no_critical_alert(&status), "{status:#}");
    let noticed = agent.log_lines("unknown to the store").len();
    eprintln!("  {noticed} log lines about orders unknown to the store; the old orders still live");
    assert_eq!(agent.terminate(EXIT_LIMIT).code(), Some(0));
}
