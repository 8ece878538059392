//! What an operator sees while the database refuses writes: the real shell and core against
//! the paper venue on a virtual clock and a real SQLite file whose write transactions are
//! refused through the store's fault hook (`StoreFaults`), as a full disk or another process
//! holding the lock would. Each abandoned turn is logged at error level with its cause and
//! counted in `fillguard_store_write_failures_total`; once writes work again one WARNING alert
//! per refusal episode goes through the outbox to the alert sink.

mod common;

use common::clock::VirtualClock;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use rusqlite::ffi;
use rust_decimal::Decimal;

use fillguard::config::{self, Config};
use fillguard::core::clock::Clock;
use fillguard::core::domain::{Millis, Side};
use fillguard::core::trade::TradeState;
use fillguard::shell::Agent;
use fillguard::store::{self, AlertRow, SignalRow, SignalStatus, Store, StoreFaults, WritePoint};
use fillguard::venue::paper::PaperVenue;

const START_MS: Millis = 1_760_000_000_000;

/// Refuses every write transaction at `BEGIN` with `code` while `refusing` is set.
struct Refusing {
    refusing: Rc<Cell<bool>>,
    code: i32,
}

impl StoreFaults for Refusing {
    fn at(&mut self, point: WritePoint) -> rusqlite::Result<()> {
        if point == WritePoint::Begin && self.refusing.get() {
            return Err(rusqlite::Error::SqliteFailure(
                ffi::Error::new(self.code),
                None,
            ));
        }
        Ok(())
    }
}

/// Log lines written while a test runs, without colour.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn lines(&self, needle: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    agent: Agent,
    clock: Rc<VirtualClock>,
    refusing: Rc<Cell<bool>>,
}

fn config(dir: &std::path::Path) -> Config {
    let toml = format!(
        r#"
[store]
path = "{}/fillguard.db"
[metrics]
listen = "off"
[poll]
interval_seconds = 0.5
deadline_seconds = 10
[protection]
watch_interval_seconds = 1.0
[paper]
volatility = "0"
fill_delay_ms = 300
[[watchlist]]
symbol = "BTC_USDT"
strategy = "none"
notional = "100"
stop_loss_pct = "1"
take_profit_pct = "2"
"#,
        dir.display()
    );
    let path = dir.join("fillguard.toml");
    std::fs::write(&path, toml).unwrap();
    config::load_from(Some(&path), &BTreeMap::new()).expect("valid test configuration")
}

/// An agent with one protected BTC_USDT trade, its store refusing writes with `code` on demand.
fn protected_trade(code: i32) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let clock = Rc::new(VirtualClock(Cell::new(START_MS)));
    let dyn_clock: Rc<dyn Clock> = clock.clone();
    let venue = PaperVenue::new(&config.paper, dyn_clock.clone()).unwrap();
    let mut store = Store::open(&config.store.path).unwrap();
    let refusing = Rc::new(Cell::new(false));
    store.set_faults(Box::new(Refusing {
        refusing: refusing.clone(),
        code,
    }));
    let signal = SignalRow {
        id: 0,
        symbol: "BTC_USDT".into(),
        side: Side::Buy,
        quantity: None,
        notional: Some(Decimal::from(100)),
        source: "test".into(),
        dedup_key: None,
        created_at_ms: START_MS,
        status: SignalStatus::New,
        reason: None,
        trade_id: None,
    };
    store::insert_signal(store.conn(), &signal).unwrap();
    let mut agent = Agent::new(
        config,
        store,
        Box::new(venue),
        dyn_clock.clone(),
        dyn_clock,
        Arc::new(AtomicBool::new(false)),
    );
    agent.run(Some(20)).expect("the agent runs");
    let trade = store::load_view(agent.store().conn(), 1).unwrap().trade;
    assert_eq!(trade.state, TradeState::Protected, "{trade:#?}");
    Harness {
        _dir: dir,
        agent,
        clock,
        refusing,
    }
}

impl Harness {
    /// One loop turn a couple of seconds later, when the protected trade's watch is due.
    fn turn(&mut self) {
        self.clock.sleep(Duration::from_secs(2));
        self.agent
            .resilient_turn()
            .expect("a refusing database is waited out");
    }

    fn refusal_alerts(&self) -> Vec<AlertRow> {
        store::all_alerts(self.agent.store().conn())
            .unwrap()
            .into_iter()
            .filter(|alert| alert.key.starts_with("store-refused-"))
            .collect()
    }
}

/// The process-wide recorder the tests of this file read (one per process).
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        fillguard::telemetry::metrics::install_recorder(&["BTC_USDT".to_string()]).unwrap()
    })
}

/// The process-wide log the tests of this file write (a thread's own subscriber would miss
/// events whose call sites another test's thread registered first).
fn log() -> &'static Captured {
    static LOG: OnceLock<Captured> = OnceLock::new();
    LOG.get_or_init(|| {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        captured
    })
}

/// The value of one series in a scrape (0 when absent).
fn value(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |number| number.parse().unwrap())
}

#[test]
fn refused_turns_are_logged_with_their_cause_counted_and_reported_once_writes_work_again() {
    let handle = recorder();
    let captured = log();
    let mut harness = protected_trade(ffi::SQLITE_FULL);
    let scrape = handle.render();
    // What the trade's run recorded (other tests of this file only add to these).
    for series in [
        "fillguard_orders_total{role=\"entry\",outcome=\"ack\"}",
        "fillguard_orders_total{role=\"stop_loss\",outcome=\"ack\"}",
        "fillguard_fill_poll_attempts_count",
        "fillguard_unprotected_seconds_count",
        "fillguard_exchange_requests_total{method=\"private/create-order\",code=\"0\"}",
        "fillguard_reconciliations_total{outcome=\"ok\"}",
    ] {
        assert!(value(&scrape, series) >= 1.0, "{series} in\n{scrape}");
    }
    let counted = "fillguard_store_write_failures_total{cause=\"full\"}";
    let before = value(&scrape, counted);

    harness.refusing.set(true);
    for turn in 1..=3 {
        harness.turn();
        assert_eq!(value(&handle.render(), counted), before + f64::from(turn));
        assert!(harness.refusal_alerts().is_empty(), "no write, no alert");
    }
    // The other tests of this file refuse with `busy` and `io`.
    let errors: Vec<String> = captured
        .lines("database refused a write")
        .into_iter()
        .filter(|line| line.contains("cause=\"full\""))
        .collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors.iter().all(|line| line.contains("ERROR")),
        "{errors:#?}"
    );

    harness.refusing.set(false);
    harness.turn();
    let alerts = harness.refusal_alerts();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let alert = &alerts[0];
    assert_eq!(alert.severity, "WARNING");
    assert!(
        alert.sent_at_ms.is_some(),
        "delivered to the sink: {alert:#?}"
    );
    for needle in ["for 3 loop turns from 2025-10-09 ", "cause: full", "df"] {
        assert!(alert.text.contains(needle), "{needle}: {}", alert.text);
    }
    // The sink (the log for now) carried it at warning level.
    let delivered = captured.lines("DATABASE REFUSED WRITES");
    assert!(
        delivered
            .iter()
            .any(|line| line.contains("WARN") && line.contains("cause: full")),
        "{delivered:#?}"
    );
    for _ in 0..3 {
        harness.turn();
    }
    assert_eq!(harness.refusal_alerts().len(), 1, "one alert per episode");
    assert_eq!(value(&handle.render(), counted), before + 3.0);
    let trade = store::load_view(harness.agent.store().conn(), 1)
        .unwrap()
        .trade;
    assert_eq!(trade.state, TradeState::Protected);
}

#[test]
fn each_refusal_episode_is_reported_once_and_a_refused_report_waits_for_the_next_turn() {
    log();
    let mut harness = protected_trade(ffi::SQLITE_BUSY);
    harness.refusing.set(true);
    harness.turn();
    harness.refusing.set(false);
    harness.turn();
    let first = harness.refusal_alerts();
    assert_eq!(first.len(), 1);
    assert!(
        first[0].text.contains("for 1 loop turn from"),
        "{}",
        first[0].text
    );
    assert!(first[0].text.contains("cause: busy"), "{}", first[0].text);

    // A second episode soon after: gathered, not reported within the hour of the first
    // report (a database failing now and then must not page every few turns).
    harness.refusing.set(true);
    harness.turn();
    harness.refusing.set(false);
    harness.turn();
    assert_eq!(harness.refusal_alerts().len(), 1, "one report an hour");

    // An hour on, a third episode: its second turn is refused at the report itself, the turn's
    // first write; the report, covering the second and third episodes, goes out with the turn
    // that can write.
    harness.clock.sleep(Duration::from_secs(3600));
    harness.refusing.set(true);
    harness.turn();
    harness.turn();
    assert_eq!(harness.refusal_alerts().len(), 1);
    harness.refusing.set(false);
    harness.turn();
    let alerts = harness.refusal_alerts();
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    assert_ne!(alerts[0].key, alerts[1].key, "a key per episode");
    assert!(
        alerts[1].text.contains("for 3 loop turns from"),
        "{}",
        alerts[1].text
    );
    assert!(alerts.iter().all(|alert| alert.sent_at_ms.is_some()));
}

/// Binds a datagram socket at `path` and records when each `WATCHDOG=1` arrives, until `done`.
fn record_pings(
    path: &std::path::Path,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<std::time::Instant>> {
    let socket = std::os::unix::net::UnixDatagram::bind(path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    std::thread::spawn(move || {
        let mut pings = Vec::new();
        let mut buffer = [0u8; 256];
        // Bounded by `done`, which the test sets once the turns are over.
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok(length) = socket.recv(&mut buffer) {
                if &buffer[..length] == b"WATCHDOG=1" {
                    pings.push(std::time::Instant::now());
                }
            }
        }
        pings
    })
}

/// The longest time without a ping from `start` to `end`.
fn longest_gap(
    start: std::time::Instant,
    pings: &[std::time::Instant],
    end: std::time::Instant,
) -> Duration {
    let mut edges = vec![start];
    edges.extend(pings.iter().copied());
    edges.push(end);
    edges
        .windows(2)
        .map(|pair| pair[1].saturating_duration_since(pair[0]))
        .max()
        .unwrap_or_default()
}

/// The agent on the real clock, its store refusing every write: the back-off between refused
/// turns (1 s, then 2 s) is slept in slices that ping systemd's watchdog, so a database that
/// refuses for a while does not get the agent killed as hung.
#[test]
fn the_watchdog_is_pinged_through_the_refusal_back_off() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let clock: Rc<dyn Clock> = Rc::new(fillguard::shell::clock::SystemClock);
    let venue = PaperVenue::new(&config.paper, clock.clone()).unwrap();
    let mut store = Store::open(&config.store.path).unwrap();
    let signal = SignalRow {
        id: 0,
        symbol: "BTC_USDT".into(),
        side: Side::Buy,
        quantity: None,
        notional: Some(Decimal::from(100)),
        source: "test".into(),
        dedup_key: None,
        created_at_ms: clock.now_ms(),
        status: SignalStatus::New,
        reason: None,
        trade_id: None,
    };
    store::insert_signal(store.conn(), &signal).unwrap();
    store.set_faults(Box::new(Refusing {
        refusing: Rc::new(Cell::new(true)),
        // Each test of this file refuses with its own cause: they share one recorder and one
        // log, and run at the same time.
        code: ffi::SQLITE_IOERR,
    }));
    let socket_path = dir.path().join("notify");
    let done = Arc::new(AtomicBool::new(false));
    let reader = record_pings(&socket_path, done.clone());
    let watchdog = Duration::from_secs(1);
    let stop = Arc::new(AtomicBool::new(false));
    let mut agent = Agent::new(config, store, Box::new(venue), clock.clone(), clock, stop);
    agent.set_notifier(fillguard::telemetry::sd_notify::Notifier::new(
        socket_path.as_os_str(),
        Some(watchdog),
    ));
    let started = std::time::Instant::now();
    for _ in 0..2 {
        agent
            .resilient_turn()
            .expect("a refusing database is waited out");
    }
    let ended = std::time::Instant::now();
    std::thread::sleep(Duration::from_millis(100));
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let pings = reader.join().unwrap();
    let gap = longest_gap(started, &pings, ended);
    eprintln!(
        "two refused turns: {:.1?} of back-off, {} pings, longest gap {gap:.2?} (interval {watchdog:?})",
        ended - started,
        pings.len()
    );
    assert!(
        ended - started >= Duration::from_secs(3),
        "the back-off was not slept"
    );
    assert!(gap < watchdog, "{pings:?}");
}
