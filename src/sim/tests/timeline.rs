//! The measurement hooks over loopback: `/sim/timeline` (each order's creation, liveness and
//! fills on the simulator's clock), `/sim/requests` (what reached the exchange) and the seeded
//! fill-delay distribution.

use serde_json::{Value, json};

use super::super::exchange::wall_now_ms;
use super::{
    Client, POLL_INTERVAL, SimOptions, SimServer, code, market_buy, oco_params, options, post_hook,
    start, start_with, trigger,
};

/// Waits for a fill at most this many polls of `POLL_INTERVAL`.
const FILL_POLLS_MAX: u32 = 200;
/// The simulator's clock may be this far from the test's wall clock readings (ms rounding).
const CLOCK_SLACK_MS: i64 = 5;

fn with_fill_delay(seed: u64, distribution: &str, speed: u32) -> SimOptions {
    SimOptions {
        fill_delay: Some(distribution.parse().expect("distribution")),
        speed,
        ..options(seed, "none")
    }
}

fn get_hook(client: &Client, hook: &str) -> Value {
    let url = client.url(&format!("/sim/{hook}"));
    let (status, body) = Client::read(client.agent.get(url).call()).expect("answered");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).expect("JSON")
}

fn row(timeline: &Value, client_oid: &str) -> Value {
    timeline["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .find(|order| order["client_oid"] == client_oid)
        .cloned()
        .unwrap_or_else(|| panic!("{client_oid} is not in {timeline}"))
}

fn ms(value: &Value) -> i64 {
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{value} is not a time"))
}

/// The timeline once `client_oid` has filled completely.
fn wait_filled(client: &Client, client_oid: &str) -> Value {
    wait_all_filled(client, &[client_oid.to_string()])
}

/// The timeline once every order of `client_oids` has filled completely.
fn wait_all_filled(client: &Client, client_oids: &[String]) -> Value {
    for _ in 0..FILL_POLLS_MAX {
        let timeline = get_hook(client, "timeline");
        let filled = |oid: &String| !row(&timeline, oid)["filled_ms"].is_null();
        if client_oids.iter().all(filled) {
            return timeline;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    panic!("{client_oids:?} did not all fill");
}

#[test]
fn timeline_times_are_the_simulators_own() {
    let (_server, client) = start_with(with_fill_delay(5, "1:150", 1));
    let before_ms = wall_now_ms();
    let (_, body) = client.private("private/create-order", market_buy("entry", "0.5"));
    assert_eq!(code(&body), 0, "{body}");
    let after_ms = wall_now_ms();
    let (_, body) = client.private("private/advanced/create-oco", oco_params());
    assert_eq!(code(&body), 0, "{body}");
    let unfilled = row(&get_hook(&client, "timeline"), "entry");
    assert!(unfilled["filled_ms"].is_null() && unfilled["first_fill_ms"].is_null());
    let timeline = wait_filled(&client, "entry");
    let entry = row(&timeline, "entry");
    let created_ms = ms(&entry["created_ms"]);
    assert!(
        created_ms >= before_ms - CLOCK_SLACK_MS && created_ms <= after_ms + CLOCK_SLACK_MS,
        "{created_ms} not in {before_ms}..{after_ms}"
    );
    assert_eq!(entry["live_ms"], entry["created_ms"]);
    // The drawn delay is exact on the simulator's clock, however late the poll saw it.
    assert_eq!(ms(&entry["filled_ms"]), created_ms + 150, "{entry}");
    assert_eq!(entry["first_fill_ms"], entry["filled_ms"]);
    assert_eq!(entry["ended_ms"], entry["filled_ms"]);
    assert_eq!(entry["fills"].as_array().map(Vec::len), Some(1));
    assert_eq!(entry["fills"][0]["quantity"], "0.5");
    assert_eq!(
        (entry["side"].as_str(), entry["type"].as_str()),
        (Some("BUY"), Some("MARKET"))
    );
    assert!(entry["list_id"].is_null() && entry["contingency_type"].is_null());
    let (stop, profit) = (row(&timeline, "sl"), row(&timeline, "tp"));
    for leg in [&stop, &profit] {
        assert_eq!(leg["live_ms"], leg["created_ms"], "{leg}");
        assert!(
            leg["filled_ms"].is_null() && leg["ended_ms"].is_null(),
            "{leg}"
        );
        assert_eq!(leg["contingency_type"], "OCO");
    }
    assert_eq!(stop["list_id"], profit["list_id"]);
    assert_eq!(stop["type"], "STOP_LOSS");
    assert!(ms(&stop["created_ms"]) >= created_ms);
    assert!(ms(&timeline["now_ms"]) >= ms(&entry["filled_ms"]));
}

#[test]
fn otoco_legs_are_live_from_the_moment_the_entry_filled() {
    let (_server, client) = start_with(with_fill_delay(5, "1:200", 1));
    let otoco = |suffix: &str| {
        json!({"order_list": [
            market_buy(&format!("entry{suffix}"), "0.2"),
            trigger(&format!("stop{suffix}"), "STOP_LOSS", "95"),
            trigger(&format!("profit{suffix}"), "TAKE_PROFIT", "105"),
        ]})
    };
    for suffix in ["1", "2"] {
        let (_, body) = client.private("private/advanced/create-otoco", otoco(suffix));
        assert_eq!(code(&body), 0, "{body}");
    }
    let armed_before = get_hook(&client, "timeline");
    for leg in ["stop1", "profit1"] {
        let leg = row(&armed_before, leg);
        assert!(leg["live_ms"].is_null(), "{leg}");
        assert_eq!(leg["contingency_type"], "OTOCO");
    }
    // A leg cancelled before its entry filled is never live.
    let stop2_id = row(&armed_before, "stop2")["order_id"].clone();
    post_hook(&client, "cancel", &json!({"order_id": stop2_id}));
    wait_filled(&client, "entry1");
    let timeline = wait_filled(&client, "entry2");
    for suffix in ["1", "2"] {
        let entry = row(&timeline, &format!("entry{suffix}"));
        assert_eq!(ms(&entry["filled_ms"]), ms(&entry["created_ms"]) + 200);
        let profit = row(&timeline, &format!("profit{suffix}"));
        assert_eq!(profit["created_ms"], entry["created_ms"]);
        assert_eq!(profit["live_ms"], entry["filled_ms"], "{profit}");
    }
    assert_eq!(
        row(&timeline, "stop1")["live_ms"],
        row(&timeline, "entry1")["filled_ms"]
    );
    assert!(row(&timeline, "stop2")["live_ms"].is_null());
    assert_eq!(row(&timeline, "stop2")["status"], "CANCELED");
}

#[test]
fn requests_are_counted_with_the_ids_they_name() {
    let (_server, client) = start(2, "none");
    let before_ms = wall_now_ms();
    client.private("private/create-order", market_buy("c1", "0.1"));
    client.private("private/get-order-detail", json!({"client_oid": "c1"}));
    client.private("private/get-open-orders", json!({}));
    client.private("private/advanced/create-oco", oco_params());
    client.private(
        "private/advanced/cancel-oco",
        json!({"list_id": "6530219599800000000"}),
    );
    client.public("public/get-tickers");
    client.private("private/no-such-method", json!({}));
    // Hooks are not exchange requests.
    get_hook(&client, "timeline");
    client.book();
    let after_ms = wall_now_ms();
    let requests = get_hook(&client, "requests");
    assert_eq!(requests["total"], 7, "{requests}");
    assert_eq!(requests["log_dropped"], 0);
    assert_eq!(requests["by_method"]["private/create-order"], 1);
    assert_eq!(requests["by_method"]["public/get-tickers"], 1);
    assert_eq!(requests["by_method"]["unknown"], 1);
    let log = requests["log"].as_array().expect("log");
    let methods: Vec<&str> = log
        .iter()
        .filter_map(|entry| entry["method"].as_str())
        .collect();
    assert_eq!(
        methods,
        [
            "private/create-order",
            "private/get-order-detail",
            "private/get-open-orders",
            "private/advanced/create-oco",
            "private/advanced/cancel-oco",
            "public/get-tickers",
            "unknown",
        ]
    );
    let refs: Vec<Value> = log.iter().map(|entry| entry["refs"].clone()).collect();
    assert_eq!(refs[0], json!(["c1"]));
    assert_eq!(refs[1], json!(["c1"]));
    assert_eq!(refs[2], json!([]));
    assert_eq!(refs[3], json!(["tp", "sl"]));
    assert_eq!(refs[4], json!(["6530219599800000000"]));
    assert_eq!(log[0]["status"], 200);
    assert_ne!(log[6]["status"], 200);
    let times: Vec<i64> = log.iter().map(|entry| ms(&entry["time_ms"])).collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");
    assert!(times[0] >= before_ms - CLOCK_SLACK_MS && times[6] <= after_ms + CLOCK_SLACK_MS);
}

/// The fill delays (fill minus creation, simulator ms) of `count` MARKET orders.
fn drawn_delays(seed: u64, count: usize) -> Vec<i64> {
    // Twenty times the wall clock, so the longest delay passes in 25 ms.
    let (_server, client) = start_with(with_fill_delay(seed, "0.5:0,0.5:50..500", 20));
    let client_oids: Vec<String> = (0..count).map(|index| format!("d{index}")).collect();
    for client_oid in &client_oids {
        let (_, body) = client.private("private/create-order", market_buy(client_oid, "0.01"));
        assert_eq!(code(&body), 0, "{body}");
    }
    let timeline = wait_all_filled(&client, &client_oids);
    client_oids
        .iter()
        .map(|client_oid| {
            let order = row(&timeline, client_oid);
            ms(&order["filled_ms"]) - ms(&order["created_ms"])
        })
        .collect()
}

#[test]
fn fill_delays_are_drawn_per_order_and_replay_with_the_seed() {
    let first = drawn_delays(9, 16);
    assert_eq!(first, drawn_delays(9, 16));
    assert_ne!(first, drawn_delays(10, 16));
    assert!(first.contains(&0), "{first:?}");
    assert!(first.iter().any(|delay| *delay >= 50), "{first:?}");
    assert!(
        first
            .iter()
            .all(|delay| *delay == 0 || (50..=500).contains(delay)),
        "{first:?}"
    );
}

#[test]
fn a_distribution_and_the_fill_delay_fault_exclude_each_other() {
    let options = SimOptions {
        fill_delay: Some("1:10".parse().expect("distribution")),
        ..options(1, "fill_delay=20")
    };
    let error = SimServer::start(options).err().expect("refused");
    assert!(error.contains("exclude each other"), "{error}");
}
