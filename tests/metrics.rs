//! The real `fillguard run` serving Prometheus metrics on 127.0.0.1, scraped over HTTP: every
//! family of the metric contract with its HELP and TYPE lines from the first scrape, checked by
//! `promtool check metrics` when it is installed; a protection the exchange (the real
//! simulator) rejects shows in the failure and breaker series; a port already taken is a clear
//! start-up error.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use fillguard::telemetry::metrics::FAMILIES;

use common::{Running, SimExchange, Workspace, wait_for, watchlist_entry};

/// Paper time a hundred times the wall clock, quick polls and watches.
const FAST: &str = "[loop]\ninterval_seconds = 0.2\n[poll]\ninterval_seconds = 0.3\ndeadline_seconds = 10\n[protection]\nwatch_interval_seconds = 0.5\n";

/// Ports of 127.0.0.1 this process handed out: the tests run in parallel, and the system may
/// give a port one test released to another before the first one's agent bound it.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A listener on a port of 127.0.0.1 no other test of this process got.
fn own_listener() -> TcpListener {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if HANDED_OUT.lock().unwrap().insert(port) {
            return listener;
        }
    }
    panic!("no fresh port of 127.0.0.1 in 100 tries");
}

/// A free address of 127.0.0.1 for the agent's endpoint (bound once, then released).
fn own_address() -> String {
    own_listener().local_addr().unwrap().to_string()
}

/// The body of `GET /metrics`, or `None` while nothing answers.
fn scrape(address: &str) -> Option<String> {
    let agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let mut response = agent.get(format!("http://{address}/metrics")).call().ok()?;
    response.body_mut().read_to_string().ok()
}

/// The value of one series in a scrape.
fn value(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|number| number.parse().unwrap())
}

/// Scrapes until `series` is at least `minimum`, for at most a minute; returns that scrape.
fn scrape_until(address: &str, series: &str, minimum: f64, run: &Running) -> String {
    wait_for(Duration::from_secs(60), Duration::from_millis(200), || {
        scrape(address).filter(|text| value(text, series).is_some_and(|v| v >= minimum))
    })
    .unwrap_or_else(|| {
        panic!(
            "{series} never reached {minimum}; last scrape:\n{}\nlog:\n{}",
            scrape(address).unwrap_or_default(),
            run.log()
        )
    })
}

/// Names of the metric families a scrape declares with `# TYPE`.
fn declared_families(scrape: &str) -> Vec<String> {
    scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Every family of the contract has its HELP and TYPE lines and at least one sample.
fn assert_every_family(scrape: &str) {
    for (name, _, _, _) in FAMILIES {
        assert!(
            scrape.contains(&format!("# HELP {name} ")),
            "no HELP for {name}:\n{scrape}"
        );
        assert!(
            scrape.contains(&format!("# TYPE {name} ")),
            "no TYPE for {name}:\n{scrape}"
        );
        assert!(
            scrape.lines().any(|line| line.starts_with(name)),
            "no sample of {name}:\n{scrape}"
        );
    }
}

/// `promtool check metrics` on the scrape, when promtool is installed: it must print nothing
/// and exit 0. Returns whether it ran.
fn promtool_accepts(scrape: &str) -> bool {
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = spawned else {
        println!("promtool is not installed: the scrape's lint is skipped");
        return false;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && printed.is_empty(),
        "promtool check metrics: {:?}\n{printed}",
        output.status
    );
    true
}

/// What a paper run of two protected trades must have recorded, at least.
const PAPER_RUN_MINIMUMS: [(&str, f64); 10] = [
    (
        "fillguard_orders_total{role=\"entry\",outcome=\"ack\"}",
        2.0,
    ),
    (
        "fillguard_orders_total{role=\"stop_loss\",outcome=\"ack\"}",
        2.0,
    ),
    (
        "fillguard_orders_total{role=\"take_profit\",outcome=\"ack\"}",
        2.0,
    ),
    ("fillguard_fill_poll_attempts_count", 2.0),
    ("fillguard_unprotected_seconds_count", 2.0),
    ("fillguard_reconciliations_total{outcome=\"ok\"}", 1.0),
    (
        "fillguard_exchange_requests_total{method=\"private/advanced/create-oco\",code=\"0\"}",
        2.0,
    ),
    (
        "fillguard_exchange_request_duration_seconds_count{method=\"private/get-order-detail\"}",
        1.0,
    ),
    ("fillguard_loop_duration_seconds_count", 1.0),
    ("fillguard_last_loop_timestamp_seconds", 1.7e9),
];

/// Each series is in the scrape with at least its minimum.
fn assert_at_least(scrape: &str, minimums: &[(&str, f64)]) {
    for (series, minimum) in minimums {
        let found = value(scrape, series);
        assert!(
            found.is_some_and(|v| v >= *minimum),
            "{series} = {found:?}, expected at least {minimum}:\n{scrape}"
        );
    }
}

#[test]
fn a_paper_run_serves_every_contract_metric_and_promtool_accepts_the_scrape() {
    let watchlist = ["BTC_USDT", "ETH_USDT"].map(|symbol| watchlist_entry(symbol, "100", "2", "3"));
    let mut workspace = Workspace::new(&format!(
        "{FAST}[paper]\nspeed = 100\nvolatility = \"0\"\nfill_delay_ms = 200\n{}",
        watchlist.concat()
    ));
    let address = own_address();
    workspace.set_env("FILLGUARD_METRICS__LISTEN", &address);
    workspace.signal("BTC_USDT", "BUY", "100");
    workspace.signal("ETH_USDT", "SELL", "100");
    let mut run = workspace.spawn_run("run.log");

    // The first answer already declares every family.
    let first = wait_for(Duration::from_secs(30), Duration::from_millis(50), || {
        scrape(&address)
    })
    .expect("the endpoint answers");
    assert_every_family(&first);

    let scrape = scrape_until(
        &address,
        "fillguard_open_trades{state=\"PROTECTED\"}",
        2.0,
        &run,
    );
    assert_every_family(&scrape);
    assert_at_least(&scrape, &PAPER_RUN_MINIMUMS);
    let unprotected =
        |symbol: &str| format!("fillguard_positions_unprotected{{symbol=\"{symbol}\"}}");
    assert_eq!(
        value(&scrape, &unprotected("BTC_USDT")),
        Some(0.0),
        "{scrape}"
    );
    assert_eq!(
        value(&scrape, &unprotected("ETH_USDT")),
        Some(0.0),
        "{scrape}"
    );
    let version = format!(
        "fillguard_build_info{{version=\"{}\",",
        env!("CARGO_PKG_VERSION")
    );
    // The same triple `fillguard --version` prints.
    let target = format!("target=\"{}\"", env!("BUILD_TARGET_TRIPLE"));
    assert!(
        scrape.lines().any(|line| line.starts_with(&version)
            && line.contains(&target)
            && line.ends_with("} 1")),
        "{scrape}"
    );
    println!(
        "families after a paper run: {}",
        declared_families(&scrape).join(" ")
    );
    if promtool_accepts(&scrape) {
        println!("promtool check metrics: no output, exit 0");
    }
    assert!(run.terminate(Duration::from_secs(10)).success());
}

#[test]
fn a_protection_the_exchange_rejects_shows_as_a_failure_and_a_breaker_trip() {
    let mut workspace = Workspace::new(&format!(
        "{FAST}[paper]\nvolatility = \"0\"\nfill_delay_ms = 200\n{}",
        watchlist_entry("BTC_USDT", "100", "2", "3")
    ));
    let _sim = SimExchange::start(
        &mut workspace,
        "11",
        "reject_protective=229",
        "test-key",
        "test-secret-0123456789",
    );
    let address = own_address();
    workspace.set_env("FILLGUARD_METRICS__LISTEN", &address);
    workspace.signal("BTC_USDT", "BUY", "100");
    let run = workspace.spawn_run("run.log");
    let failures =
        "fillguard_protection_failures_total{symbol=\"BTC_USDT\",reason=\"protection_rejected\"}";
    scrape_until(&address, failures, 1.0, &run);
    // The gauges are read back from the database at the end of the turn.
    let recovering = "fillguard_open_trades{state=\"RECOVERING\"}";
    let scrape = scrape_until(&address, recovering, 1.0, &run);
    assert_eq!(value(&scrape, failures), Some(1.0), "{scrape}");
    let trips =
        "fillguard_circuit_breaker_trips_total{symbol=\"BTC_USDT\",reason=\"protection_rejected\"}";
    assert_eq!(value(&scrape, trips), Some(1.0), "{scrape}");
    let open = "fillguard_circuit_breaker_open{symbol=\"BTC_USDT\"}";
    assert_eq!(value(&scrape, open), Some(1.0), "{scrape}");
    assert_eq!(value(&scrape, recovering), Some(1.0));
    let unprotected = "fillguard_positions_unprotected{symbol=\"BTC_USDT\"}";
    assert_eq!(value(&scrape, unprotected), Some(1.0), "{scrape}");
    let rejected =
        "fillguard_exchange_requests_total{method=\"private/advanced/create-oco\",code=\"229\"}";
    assert!(
        value(&scrape, rejected).is_some_and(|v| v >= 1.0),
        "{scrape}"
    );
    let orders = "fillguard_orders_total{role=\"stop_loss\",outcome=\"rejected\"}";
    assert!(value(&scrape, orders).is_some_and(|v| v >= 1.0), "{scrape}");
    assert!(value(&scrape, "fillguard_alerts_pending").is_some());
    assert_every_family(&scrape);
    promtool_accepts(&scrape);
    println!(
        "families after a rejected protection: {}",
        declared_families(&scrape).join(" ")
    );
}

#[test]
fn a_taken_port_is_a_start_up_error_naming_metrics_listen() {
    let listener = own_listener();
    let taken = listener.local_addr().unwrap().to_string();
    let mut workspace = Workspace::new("[paper]\nspeed = 100\n");
    workspace.set_env("FILLGUARD_METRICS__LISTEN", &taken);
    let output = workspace.run(&["run", "--max-ticks", "1"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("metrics.listen") && stderr.contains(&taken),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    drop(listener);
}
