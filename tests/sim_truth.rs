//! The measurement side of the real `fillguard sim-exchange`: `--fill-delay` and the round-trip
//! `latency` fault as a benchmark sets them, a real `fillguard run` trading through them, and
//! `/sim/timeline` and `/sim/requests` telling the trade's story on the simulator's clock.

mod common;

use std::time::{Duration, Instant};

use serde_json::Value;

use common::{SimExchange, Workspace, trades, watchlist_entry};

const API_KEY: &str = "truth-key";
/// The injected round trip of every exchange request, in ms.
const LATENCY_MS: i64 = 40;
/// Every entry fills this long after the simulator accepted it.
const FILL_DELAY_MS: i64 = 150;
/// How long the trade may take to be protected.
const PROTECTED_WITHIN: Duration = Duration::from_secs(30);

fn workspace() -> Workspace {
    let toml = format!(
        "[loop]\ninterval_seconds = 0.1\n[protection]\nmode = \"oco\"\n\
         [paper]\nvolatility = \"0\"\nfill_delay_ms = 0\n{}",
        watchlist_entry("BTC_USDT", "100", "2", "3")
    );
    Workspace::new(&toml)
}

fn order<'a>(timeline: &'a Value, role_suffix: &str) -> &'a Value {
    timeline["orders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|order| {
            let oid = order["client_oid"].as_str().unwrap_or("");
            oid.starts_with("fg-") && oid.contains(role_suffix)
        })
        .unwrap_or_else(|| panic!("no {role_suffix} order in {timeline}"))
}

fn ms(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{value} is not a time"))
}

#[test]
fn a_real_trade_is_told_by_the_simulators_clock() {
    let mut workspace = workspace();
    let fill_delay = format!("1:{FILL_DELAY_MS}");
    let latency = format!("latency={LATENCY_MS}");
    let sim = SimExchange::start_with(
        &mut workspace,
        "127.0.0.1:0",
        "3",
        &latency,
        API_KEY,
        "truth-secret-0123456789",
        &["--fill-delay", &fill_delay],
    );
    workspace.signal("BTC_USDT", "BUY", "100");
    let _run = workspace.spawn_run("run.log");
    let started = Instant::now();
    let protected = |status: &Value| trades(status).iter().any(|t| t["state"] == "PROTECTED");
    while !protected(&workspace.status()) {
        assert!(started.elapsed() < PROTECTED_WITHIN, "no protected trade");
        std::thread::sleep(Duration::from_millis(100));
    }
    let timeline = sim.get("timeline");
    let entry = order(&timeline, "-E");
    let (stop, profit) = (order(&timeline, "-S"), order(&timeline, "-T"));
    assert_eq!(
        ms(&entry["filled_ms"]) - ms(&entry["created_ms"]),
        FILL_DELAY_MS,
        "{entry}"
    );
    assert_eq!(stop["list_id"], profit["list_id"]);
    assert_eq!(stop["contingency_type"], "OCO");
    // The agent can only have learned of the fill from an answer after it, and its OCO
    // arrived at least one round trip after that request.
    let window_ms = ms(&stop["live_ms"]) - ms(&entry["first_fill_ms"]);
    assert!(window_ms >= LATENCY_MS, "window {window_ms} ms");
    let requests = sim.get("requests");
    let log = requests["log"].as_array().unwrap();
    let entry_oid = entry["client_oid"].as_str().unwrap();
    let created = log
        .iter()
        .find(|request| request["method"] == "private/create-order")
        .expect("the entry's request");
    assert_eq!(created["refs"][0], entry_oid);
    assert_eq!(ms(&created["time_ms"]), ms(&entry["created_ms"]));
    // One client, one request at a time: each answer takes the whole round trip.
    let times: Vec<i64> = log.iter().map(|request| ms(&request["time_ms"])).collect();
    assert!(
        times.windows(2).all(|pair| pair[1] - pair[0] >= LATENCY_MS),
        "{times:?}"
    );
    assert_eq!(requests["total"].as_u64(), Some(log.len() as u64));
}

#[test]
fn a_bad_fill_delay_is_a_usage_error_and_help_documents_it() {
    let workspace = workspace();
    let secret = workspace.write_secret("api-secret", "truth-secret-0123456789");
    let output = workspace
        .command(&[
            "sim-exchange",
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            API_KEY,
        ])
        .arg("--api-secret-file")
        .arg(&secret)
        .args(["--fill-delay", "0.5:0,0.4:50..500"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--fill-delay") && stderr.contains("add up to 0.9"),
        "{stderr}"
    );
    let help = workspace.run(&["sim-exchange", "--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("--fill-delay <DIST>"), "{help}");
    assert!(help.contains("0.5:0,0.5:50..500"), "{help}");
    assert!(help.contains("round-trip latency"), "{help}");
}
