//! Alert delivery to Telegram against a fake Bot API on 127.0.0.1 (`sim::bot_api`): the real
//! agent on a virtual clock and a real SQLite file, real HTTP. Success, a 5xx then success, a
//! 429 with `retry_after`, a slow server, a refusal (401), a restart with alerts pending, the
//! token kept out of every log line and error; and the real binary on the paper venue with a
//! failed protection, whose CRITICAL reaches the fake Bot API.

mod common;

use common::clock::VirtualClock;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::Write;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fillguard::config::{self, Config, Secret};
use fillguard::core::clock::Clock;
use fillguard::core::domain::Millis;
use fillguard::core::trade::{Alert, Severity};
use fillguard::shell::Agent;
use fillguard::shell::alerts::{REFUSED_DELAY, TelegramSink, UNCONFIRMED_RESENDS_MAX};
use fillguard::sim::bot_api::{FakeBotApi, Reply};
use fillguard::store::{self, AlertRow, Store};
use fillguard::telemetry::telegram::TelegramClient;
use fillguard::venue::Venue;
use fillguard::venue::paper::{EngineReject, FillBehavior, PaperVenue};

use common::{Workspace, trades, watchlist_entry};

const START_MS: Millis = 1_760_000_000_000;
const TOKEN: &str = "987654321:AAF-test_token_do_not_leak";
const TOKEN_SECRET_HALF: &str = "AAF-test_token_do_not_leak";

struct Harness {
    dir: tempfile::TempDir,
    clock: Rc<VirtualClock>,
    agent: Agent,
}

fn config(dir: &std::path::Path, base_url: &str) -> Config {
    let token = dir.join("telegram-token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).unwrap();
    let toml = format!(
        r#"
[store]
path = "{dir}/fillguard.db"
[metrics]
listen = "off"
[alerts.telegram]
base_url = "{base_url}"
chat_id = -1001234567890
token_file = "{dir}/telegram-token"
[[watchlist]]
symbol = "BTC_USDT"
strategy = "none"
notional = "100"
stop_loss_pct = "1"
take_profit_pct = "2"
"#,
        dir = dir.display()
    );
    let path = dir.join("fillguard.toml");
    std::fs::write(&path, toml).unwrap();
    config::load_from(Some(&path), &BTreeMap::new()).expect("valid test configuration")
}

impl Harness {
    fn new(base_url: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let clock = Rc::new(VirtualClock(Cell::new(START_MS)));
        let agent = Harness::agent(dir.path(), base_url, &clock);
        Harness { dir, clock, agent }
    }

    /// An agent on the harness's database, as after a restart.
    fn agent(dir: &std::path::Path, base_url: &str, clock: &Rc<VirtualClock>) -> Agent {
        let config = config(dir, base_url);
        let dyn_clock: Rc<dyn Clock> = clock.clone();
        let paper = PaperVenue::new(&config.paper, dyn_clock.clone()).unwrap();
        let store = Store::open(&config.store.path).unwrap();
        Agent::new(
            config,
            store,
            Box::new(paper),
            dyn_clock.clone(),
            dyn_clock,
            Arc::new(AtomicBool::new(false)),
        )
    }

    fn restart(&mut self, base_url: &str) {
        self.agent = Harness::agent(self.dir.path(), base_url, &self.clock);
    }

    fn enqueue(&self, severity: Severity, key: &str, text: &str) {
        let alert = Alert {
            severity,
            key: key.into(),
            text: text.into(),
        };
        let now = self.clock.now_ms();
        store::enqueue_alert(
            self.agent.store().conn(),
            &alert,
            None,
            Some("BTC_USDT"),
            now,
        )
        .unwrap();
    }

    fn turn(&mut self) {
        self.agent.turn().expect("a turn");
    }

    fn advance(&self, seconds: i64) {
        self.clock.0.set(self.clock.0.get() + seconds * 1000);
    }

    fn alerts(&self) -> Vec<AlertRow> {
        store::all_alerts(self.agent.store().conn()).unwrap()
    }
}

/// A base URL where nothing listens: connection refused.
fn nothing_listening() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

/// Counts `metrics` counter increments by name and labels, for the calls made inside
/// `metrics::with_local_recorder`.
#[derive(Default)]
struct Counters(Mutex<BTreeMap<String, Arc<AtomicU64>>>);

struct Cell64(Arc<AtomicU64>);

impl metrics::CounterFn for Cell64 {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::SeqCst);
    }
}

impl Counters {
    fn get(&self, name: &str) -> u64 {
        let map = self.0.lock().unwrap();
        map.get(name).map_or(0, |cell| cell.load(Ordering::SeqCst))
    }

    fn names(&self) -> Vec<String> {
        self.0.lock().unwrap().keys().cloned().collect()
    }
}

impl metrics::Recorder for Counters {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let mut labels: Vec<String> = key
            .labels()
            .map(|label| format!("{}={}", label.key(), label.value()))
            .collect();
        labels.sort();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        let cell = self.0.lock().unwrap().entry(name).or_default().clone();
        metrics::Counter::from_arc(Arc::new(Cell64(cell)))
    }
    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }
    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

const SENT_CRITICAL: &str = "fillguard_alerts_total{outcome=sent,severity=CRITICAL}";
const FAILED_CRITICAL: &str = "fillguard_alerts_total{outcome=failed,severity=CRITICAL}";

#[test]
fn an_alert_is_delivered_once_as_plain_text_and_counted() {
    let api = FakeBotApi::start(Vec::new()).unwrap();
    let mut harness = Harness::new(&api.base_url());
    harness.enqueue(
        Severity::Critical,
        "k1",
        "PROTECTION FAILURE BTC_USDT trade 1: test",
    );
    let counters = Counters::default();
    metrics::with_local_recorder(&counters, || {
        for _ in 0..3 {
            harness.turn();
            harness.advance(10);
        }
    });
    let received = api.received();
    assert_eq!(received.len(), 1, "{received:?}");
    let request = &received[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/bot{TOKEN}/sendMessage"));
    assert_eq!(request.body["chat_id"], -1001234567890_i64);
    assert_eq!(request.body["disable_web_page_preview"], true);
    assert!(request.body.get("parse_mode").is_none());
    assert_eq!(
        request.text(),
        "🔴 CRITICAL PROTECTION FAILURE BTC_USDT trade 1: test"
    );
    let alert = &harness.alerts()[0];
    assert!(
        alert.sent_at_ms.is_some() && alert.attempts == 1,
        "{alert:?}"
    );
    assert_eq!(counters.get(SENT_CRITICAL), 1, "{:?}", counters.names());
    assert_eq!(counters.get(FAILED_CRITICAL), 0);
}

#[test]
fn a_server_error_is_retried_after_the_backoff_and_sent_once() {
    let api = FakeBotApi::start(vec![Reply::server_error()]).unwrap();
    let mut harness = Harness::new(&api.base_url());
    harness.enqueue(Severity::Critical, "k1", "first");
    let counters = Counters::default();
    metrics::with_local_recorder(&counters, || {
        harness.turn();
        let alert = &harness.alerts()[0];
        assert_eq!((alert.attempts, alert.sent_at_ms), (1, None), "{alert:?}");
        assert!(
            alert.last_error.as_deref().unwrap().contains("http 500"),
            "{alert:?}"
        );
        // Not due before the first backoff (5 s).
        harness.advance(4);
        harness.turn();
        assert_eq!(api.received().len(), 1);
        harness.advance(2);
        harness.turn();
        harness.advance(60);
        harness.turn();
    });
    assert_eq!(api.received().len(), 2);
    assert_eq!(api.delivered(), ["🔴 CRITICAL first"]);
    let alert = &harness.alerts()[0];
    assert!(
        alert.sent_at_ms.is_some() && alert.last_error.is_none(),
        "{alert:?}"
    );
    assert_eq!(counters.get(FAILED_CRITICAL), 1);
    assert_eq!(counters.get(SENT_CRITICAL), 1);
}

#[test]
fn a_rate_limit_is_honoured_until_retry_after() {
    let api = FakeBotApi::start(vec![Reply::rate_limited(30)]).unwrap();
    let mut harness = Harness::new(&api.base_url());
    harness.enqueue(Severity::Warning, "k1", "slow down");
    harness.turn();
    for _ in 0..5 {
        // Well past the 5 s backoff, still before the 30 s Telegram asked for.
        harness.advance(5);
        harness.turn();
    }
    assert_eq!(api.received().len(), 1, "retried before retry_after");
    harness.advance(6);
    harness.turn();
    let received = api.received();
    assert_eq!(received.len(), 2);
    assert!(
        received[1].at.duration_since(received[0].at) < Duration::from_secs(5),
        "virtual time, real HTTP"
    );
    assert!(harness.alerts()[0].sent_at_ms.is_some());
}

#[test]
fn a_slow_server_costs_one_bounded_attempt_per_turn() {
    let api = FakeBotApi::start(vec![Reply::slow(Duration::from_secs(20)); 3]).unwrap();
    let mut harness = Harness::new(&api.base_url());
    let client = TelegramClient::new(
        &api.base_url(),
        Secret::new(TOKEN.into()),
        "42",
        Duration::from_secs(1),
    );
    harness
        .agent
        .set_alert_sink(Box::new(TelegramSink::new(client)));
    for key in ["a", "b", "c"] {
        harness.enqueue(Severity::Critical, key, key);
    }
    let started = Instant::now();
    // Under a subscriber, as every test whose events reach the warn of an unconfirmed attempt:
    // a call site first met where nothing listens can stay silent for other threads' tests.
    capture_logs(|| harness.turn());
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(3), "turn took {elapsed:?}");
    assert_eq!(api.received().len(), 1, "one attempt per turn");
    let alerts = harness.alerts();
    let error = alerts[0].last_error.as_deref().unwrap();
    assert!(error.contains("timed out"), "{error}");
    assert!(alerts[1..].iter().all(|alert| alert.attempts == 0));
}

#[test]
fn a_turn_that_reconciles_first_still_makes_one_attempt() {
    // A new agent reconciles its open trades at the start of its first turn, and that
    // reconciliation delivers alerts too: the turn's one attempt is shared by both (a slow
    // Telegram would otherwise cost a turn two timeouts).
    let api = FakeBotApi::start(vec![Reply::ok(); 3]).unwrap();
    let mut harness = Harness::new(&api.base_url());
    let client = TelegramClient::new(
        &api.base_url(),
        Secret::new(TOKEN.into()),
        "42",
        Duration::from_secs(1),
    );
    harness
        .agent
        .set_alert_sink(Box::new(TelegramSink::new(client)));
    for key in ["a", "b", "c"] {
        harness.enqueue(Severity::Critical, key, key);
    }
    capture_logs(|| harness.agent.resilient_turn().expect("a turn"));
    assert_eq!(api.received().len(), 1, "one attempt in a reconciling turn");
    capture_logs(|| harness.agent.resilient_turn().expect("a turn"));
    assert_eq!(api.received().len(), 2, "one attempt in the next turn");
}

#[test]
fn a_refusal_is_recorded_counted_and_retried_slowly() {
    let api = FakeBotApi::start(vec![Reply::unauthorized()]).unwrap();
    let mut harness = Harness::new(&api.base_url());
    harness.enqueue(Severity::Critical, "k1", "refused");
    let counters = Counters::default();
    let logs = capture_logs(|| {
        metrics::with_local_recorder(&counters, || harness.turn());
    });
    let alert = &harness.alerts()[0];
    let error = alert.last_error.as_deref().unwrap();
    assert!(
        error.contains("http 401") && error.contains("Unauthorized"),
        "{error}"
    );
    assert!(error.contains("alerts.telegram.token_file"), "{error}");
    assert_eq!(counters.get(FAILED_CRITICAL), 1, "{:?}", counters.names());
    assert!(
        logs.contains("ERROR") && logs.contains("alert channel refused the alert"),
        "{logs}"
    );
    // Retried, but only after the long delay.
    harness.advance(i64::try_from(REFUSED_DELAY.as_secs()).unwrap() - 1);
    harness.turn();
    assert_eq!(api.received().len(), 1);
    harness.advance(2);
    harness.turn();
    assert_eq!(api.delivered().len(), 1);
}

/// Runs `work` with every log line down to debug level written to a buffer, and returns it.
fn capture_logs(work: impl FnOnce()) -> String {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, work);
    let bytes = buffer.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

#[test]
fn the_token_never_reaches_logs_errors_or_metrics() {
    let api = FakeBotApi::start(vec![
        Reply::server_error(),
        Reply::not_found_echoing_the_path(),
        Reply::unauthorized(),
        Reply::rate_limited(1),
    ])
    .unwrap();
    let mut harness = Harness::new(&api.base_url());
    harness.enqueue(Severity::Critical, "k1", "one");
    harness.enqueue(Severity::Info, "k2", "two");
    let counters = Counters::default();
    let mut errors: Vec<String> = Vec::new();
    let logs = capture_logs(|| {
        metrics::with_local_recorder(&counters, || {
            for _ in 0..12 {
                harness.turn();
                errors.extend(harness.alerts().into_iter().filter_map(|a| a.last_error));
                harness.advance(700);
            }
            // Nothing listening: a connection error could name the URL.
            harness.restart(&nothing_listening());
            harness.enqueue(Severity::Critical, "k3", "three");
            harness.turn();
            errors.extend(harness.alerts().into_iter().filter_map(|a| a.last_error));
        });
    });
    assert!(logs.contains("alert not delivered"), "{logs}");
    assert!(
        logs.contains("telegram sendMessage"),
        "debug lines captured: {logs}"
    );
    errors.dedup();
    assert!(
        errors
            .iter()
            .any(|error| error.contains("Not Found: /bot<token>/sendMessage")),
        "the echoed path is recorded, masked: {errors:#?}"
    );
    let metric_names = counters.names().join(" ");
    for text in [&logs, &errors.join("\n"), &metric_names] {
        assert!(!text.contains(TOKEN_SECRET_HALF), "token leaked: {text}");
    }
    println!("errors as recorded: {errors:#?}");
}

#[test]
fn pending_alerts_are_delivered_after_a_restart() {
    let down = nothing_listening();
    let mut harness = Harness::new(&down);
    harness.enqueue(Severity::Critical, "k1", "survives a restart");
    harness.turn();
    let alert = &harness.alerts()[0];
    assert_eq!((alert.attempts, alert.sent_at_ms), (1, None), "{alert:?}");
    assert!(
        alert.last_error.as_deref().unwrap().contains("no answer"),
        "{alert:?}"
    );
    // The process ends; a new one starts on the same database with Telegram back.
    let api = FakeBotApi::start(Vec::new()).unwrap();
    harness.restart(&api.base_url());
    harness.advance(10);
    harness.turn();
    assert_eq!(api.delivered(), ["🔴 CRITICAL survives a restart"]);
    assert!(harness.alerts()[0].sent_at_ms.is_some());
}

struct FixedClock(Millis);

impl Clock for FixedClock {
    fn now_ms(&self) -> Millis {
        self.0
    }
    fn sleep(&self, _: Duration) {}
}

/// Saves the workspace's paper account with every protective order of `symbol` rejected as
/// the exchange rejects a trigger on the wrong side of the market (code 229). The binary
/// loads the account, behaviour included, when it starts.
fn reject_protection_in_the_paper_account(workspace: &Workspace, symbol: &str) {
    let config = config::load_from(Some(&workspace.path("fillguard.toml")), &BTreeMap::new())
        .expect("valid workspace configuration");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as Millis;
    let state = fillguard::cli::paper_state_path(&config.store.path);
    let mut paper = PaperVenue::open(&config.paper, Rc::new(FixedClock(now)), state).unwrap();
    paper.engine_mut().set_behavior(
        symbol,
        FillBehavior {
            reject_protective: Some(EngineReject::new(229, "INVALID_REF_PRICE")),
            ..FillBehavior::default()
        },
    );
    // Any create or cancel saves the account; this one names no order and changes nothing.
    let _ = paper.cancel_order(symbol, "0");
}

#[test]
fn the_binary_delivers_a_failed_protection_to_telegram() {
    let api = FakeBotApi::start(Vec::new()).unwrap();
    let workspace = Workspace::new(&format!(
        "[paper]\nspeed = 100\n{}",
        watchlist_entry("BTC_USDT", "100", "1", "2")
    ));
    let token = workspace.write_secret("telegram-token", TOKEN);
    let mut toml = std::fs::OpenOptions::new()
        .append(true)
        .open(workspace.path("fillguard.toml"))
        .unwrap();
    write!(
        toml,
        "[alerts.telegram]\nbase_url = \"{}\"\nchat_id = 42\ntoken_file = {:?}\n",
        api.base_url(),
        token.to_str().unwrap()
    )
    .unwrap();
    reject_protection_in_the_paper_account(&workspace, "BTC_USDT");
    workspace.signal("BTC_USDT", "BUY", "100");
    let output = workspace
        .command(&["run", "--max-ticks", "80"])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let status = workspace.status();
    let trade = &trades(&status)[0];
    let delivered = api.delivered();
    let critical = delivered
        .iter()
        .find(|text| text.starts_with("🔴 CRITICAL PROTECTION FAILURE BTC_USDT"))
        .unwrap_or_else(|| panic!("no CRITICAL delivered: {delivered:#?}\n{status:#}"));
    println!("--- the fake Bot API received ---\n{critical}\n---");
    // Every order the trade had when it failed: the entry with its exchange order id, and
    // each protective attempt by client_oid (later recovery attempts come after the alert).
    let orders = trade["orders"].as_array().unwrap();
    let entry = &orders[0];
    assert!(critical.contains(entry["client_oid"].as_str().unwrap()));
    assert!(critical.contains(entry["order_id"].as_str().unwrap()));
    let order_lines: Vec<&str> = critical.lines().filter(|l| l.starts_with("- ")).collect();
    assert!(order_lines.len() >= 3, "{critical}");
    for line in order_lines {
        assert!(
            orders
                .iter()
                .any(|order| line.contains(order["client_oid"].as_str().unwrap())),
            "{line}"
        );
    }
    for needle in [
        "BUY filled",
        "code 229",
        "INVALID_REF_PRICE",
        "To do: ",
        "OPEN",
    ] {
        assert!(critical.contains(needle), "{needle} missing");
    }
    assert_sent_once(&delivered, critical, &trade["id"]);
    let check = workspace.run_ok(&["check-config"]);
    for text in [&stderr.to_string(), &check] {
        assert!(!text.contains(TOKEN_SECRET_HALF), "token leaked: {text}");
    }
    assert!(check.contains("# token = \"********\""), "{check}");
}

/// Sent once: counted by the first line (title, symbol, trade and reason), not by the whole
/// text, so a re-send whose order list grew in between is caught too. A later alert about the
/// same trade with another reason (the stop found crossed) is another alert.
fn assert_sent_once(delivered: &[String], critical: &str, trade_id: &serde_json::Value) {
    let header = critical.lines().next().unwrap();
    assert!(
        header.starts_with(&format!(
            "🔴 CRITICAL PROTECTION FAILURE BTC_USDT trade {trade_id}: "
        )),
        "{header}"
    );
    let same_header = delivered
        .iter()
        .filter(|text| text.lines().next() == Some(header))
        .count();
    assert_eq!(same_header, 1, "sent once: {delivered:#?}");
}

/// While the database refuses writes nothing is sent (a delivery it could not record would go
/// out again every turn); once writes work again, the alert reaches Telegram once.
#[test]
fn nothing_is_sent_while_the_database_refuses_writes_and_the_alert_follows_once() {
    let api = FakeBotApi::start(Vec::new()).unwrap();
    let mut harness = Harness::new(&api.base_url());
    harness.enqueue(Severity::Critical, "k1", "written before the refusal");
    let path = harness.dir.path().join("fillguard.db");
    let locker = rusqlite::Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let error = harness.agent.turn().expect_err("the database is locked");
    assert!(
        fillguard::shell::is_transient_store_error(&error),
        "{error:#}"
    );
    assert!(api.received().is_empty(), "sent without a record");
    locker.execute_batch("ROLLBACK").unwrap();
    for _ in 0..3 {
        harness.turn();
        harness.advance(10);
    }
    assert_eq!(api.delivered(), ["🔴 CRITICAL written before the refusal"]);
}

/// A schedule left by a clock that has since gone back (a restart reads the system clock
/// anew) is pulled in: the alert goes out on the new process's first turn.
#[test]
fn a_restart_pulls_in_alerts_scheduled_by_a_clock_that_went_back() {
    let down = nothing_listening();
    let mut harness = Harness::new(&down);
    harness.enqueue(Severity::Critical, "k1", "scheduled far ahead");
    harness.turn();
    // As if the failed attempt had been made an hour later than this clock says now.
    let far = harness.clock.now_ms() + 3_600_000;
    harness
        .agent
        .store()
        .conn()
        .execute("UPDATE alerts SET next_at_ms = ?1", [far])
        .unwrap();
    let api = FakeBotApi::start(Vec::new()).unwrap();
    harness.restart(&api.base_url());
    harness.turn();
    assert_eq!(api.delivered(), ["🔴 CRITICAL scheduled far ahead"]);
}

/// With more due alerts than one turn looks at, a CRITICAL queued after them still goes first.
#[test]
fn a_critical_goes_ahead_of_twenty_five_due_warnings() {
    let api = FakeBotApi::start(Vec::new()).unwrap();
    let mut harness = Harness::new(&api.base_url());
    for n in 0..25 {
        harness.enqueue(Severity::Warning, &format!("w{n}"), &format!("warning {n}"));
    }
    harness.advance(1);
    harness.enqueue(
        Severity::Critical,
        "c",
        "PROTECTION FAILURE BTC_USDT trade 9: late",
    );
    harness.turn();
    assert_eq!(
        api.delivered(),
        ["🔴 CRITICAL PROTECTION FAILURE BTC_USDT trade 9: late"]
    );
}

/// Attempts a channel paused after each passing failure gets in `seconds` of one-second turns:
/// at 0 s, then after 5, 10, 20, ... s (doubling up to ten minutes).
fn channel_attempts_within(seconds: u64) -> usize {
    let mut at = 0;
    let mut attempts = 0;
    while at < seconds {
        at += 5 * (1 << attempts.min(7)).min(120);
        attempts += 1;
    }
    attempts
}

/// While Telegram fails (a 5xx on every request, or nothing listening) with several alerts
/// due, the attempts follow the channel's backoff, not the number of alerts: each alert's own
/// backoff would let almost every turn pay for a failed request. The alerts stay queued and
/// are logged once each.
#[test]
fn a_failing_telegram_is_paused_as_a_channel_not_per_alert() {
    const ALERTS: usize = 6;
    const SECONDS: u64 = 300;
    let api = FakeBotApi::start(vec![Reply::server_error(); 200]).unwrap();
    let down = nothing_listening();
    for base_url in [api.base_url(), down] {
        let mut harness = Harness::new(&base_url);
        for n in 0..ALERTS {
            harness.enqueue(
                Severity::Warning,
                &format!("k{n}"),
                &format!("queued alert {n}"),
            );
        }
        let before = api.received().len();
        let logs = capture_logs(|| {
            for _ in 0..SECONDS {
                harness.turn();
                harness.advance(1);
            }
        });
        let alerts = harness.alerts();
        let attempts: u32 = alerts.iter().map(|alert| alert.attempts).sum();
        let bound = channel_attempts_within(SECONDS);
        println!("{base_url}: {attempts} attempts in {SECONDS} turns, channel bound {bound}");
        assert!(
            attempts as usize <= bound,
            "{attempts} attempts: {alerts:#?}"
        );
        assert!(attempts >= 3, "the channel was tried again: {alerts:#?}");
        assert!(alerts.iter().all(|alert| alert.sent_at_ms.is_none()));
        if base_url == api.base_url() {
            assert_eq!(api.received().len() - before, attempts as usize);
        }
        for n in 0..ALERTS {
            let logged = logs.matches(&format!("queued alert {n}")).count();
            assert_eq!(logged, 1, "alert {n} logged {logged} times");
        }
    }
}

/// A Telegram that delivers but answers only after the timeout: at-least-once is kept, the
/// first unconfirmed attempt is logged at warn as possibly delivered, and after
/// `UNCONFIRMED_RESENDS_MAX` re-sends the alert is given up for good, saying so in
/// `last_error` and at error level, instead of repeating at every backoff for ever.
#[test]
fn an_alert_telegram_never_confirms_is_resent_a_bounded_number_of_times() {
    let api = FakeBotApi::start(vec![Reply::slow(Duration::from_millis(1200)); 10]).unwrap();
    let mut harness = Harness::new(&api.base_url());
    let client = TelegramClient::new(
        &api.base_url(),
        Secret::new(TOKEN.into()),
        "42",
        Duration::from_secs(1),
    );
    harness
        .agent
        .set_alert_sink(Box::new(TelegramSink::new(client)));
    harness.enqueue(
        Severity::Critical,
        "k1",
        "PROTECTION FAILURE BTC_USDT trade 3: slow",
    );
    let counters = Counters::default();
    let logs = capture_logs(|| {
        metrics::with_local_recorder(&counters, || {
            for _ in 0..8 {
                harness.turn();
                // The fake answers one request at a time: let it finish the late answer.
                std::thread::sleep(Duration::from_millis(400));
                // Past every backoff, so only the cap stops the re-sends.
                harness.advance(700);
            }
            // A new process does not pick it up again either.
            harness.restart(&api.base_url());
            harness.turn();
        });
    });
    let sends = 1 + UNCONFIRMED_RESENDS_MAX as usize;
    assert_eq!(api.received().len(), sends, "{:#?}", api.received());
    let alert = &harness.alerts()[0];
    assert_eq!(alert.sent_at_ms, None, "{alert:?}");
    assert!(alert.given_up_at_ms.is_some(), "{alert:?}");
    assert_eq!(alert.unconfirmed as usize, sends);
    let error = alert.last_error.as_deref().unwrap();
    assert!(
        error.contains("given up after 4 unconfirmed attempts")
            && error.contains("may have been delivered")
            && error.contains("timed out after the request was sent"),
        "{error}"
    );
    assert_eq!(
        store::pending_alerts(harness.agent.store().conn()).unwrap(),
        0
    );
    assert_eq!(counters.get(FAILED_CRITICAL), sends as u64);
    let warned: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("WARN") && line.contains("it may have been delivered"))
        .collect();
    assert_eq!(warned.len(), 1, "{logs}");
    let given_up: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("ERROR") && line.contains("alert given up"))
        .collect();
    assert_eq!(given_up.len(), 1, "{logs}");
    // The slow server did deliver each time: that is what the cap bounds.
    assert!(!api.delivered().is_empty());
}
