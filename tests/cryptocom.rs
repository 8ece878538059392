//! The real `fillguard run` with `venue.kind = "cryptocom"` against the real
//! `fillguard sim-exchange`, over HTTP on 127.0.0.1 (a free port chosen by the simulator):
//! both sides in every protection mode, every fault class, partial fills, the failsafe and a
//! wrong secret. The simulator's book is the exchange's side of the truth.

mod common;

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;

use fillguard::core::ids::parse_client_oid;

use common::{SimExchange, Workspace, trades, watchlist_entry};

/// Simulator and agent sharing one configuration file (the simulator's paper section, the
/// agent's watchlist). The simulator is dropped (killed) before the workspace is removed.
struct Exchange {
    sim: SimExchange,
    workspace: Workspace,
}

impl Exchange {
    fn start(faults: &str) -> Exchange {
        let watchlist =
            ["BTC_USDT", "ETH_USDT"].map(|symbol| watchlist_entry(symbol, "100", "2", "3"));
        let mut workspace = Workspace::new(&format!(
            "[loop]\ninterval_seconds = 0.2\n[poll]\ninterval_seconds = 0.3\ndeadline_seconds = 10\n[protection]\nwatch_interval_seconds = 0.5\n[paper]\nvolatility = \"0\"\nfill_delay_ms = 200\n{}",
            watchlist.concat()
        ));
        let sim = SimExchange::start(
            &mut workspace,
            "11",
            faults,
            "test-key",
            "test-secret-0123456789",
        );
        Exchange { sim, workspace }
    }

    fn signal(&self, symbol: &str, side: &str) {
        self.workspace.signal(symbol, side, "100");
    }

    fn status(&self) -> Value {
        self.workspace.status()
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

/// S1 on the exchange's side: per trade at most one live SL and one live TP; every protected
/// trade has exactly one of each, on tick.
fn check_protection_on_the_book(exchange: &Exchange) -> usize {
    let book = exchange.sim.book();
    let mut live: BTreeMap<(String, char), usize> = BTreeMap::new();
    for order in &book {
        let oid = text(&order["client_oid"]);
        let parsed = parse_client_oid(oid).expect("a fillguard client_oid");
        let (trade, role) = (parsed.trade_id.to_string(), parsed.role.letter());
        if SimExchange::is_live(order) && (role == 'S' || role == 'T') {
            *live.entry((trade, role)).or_default() += 1;
        }
        let quantity: Decimal = text(&order["quantity"]).parse().unwrap_or_default();
        let tick: Decimal = if text(&order["instrument_name"]) == "ETH_USDT" {
            "0.0001".parse().unwrap()
        } else {
            "0.00001".parse().unwrap()
        };
        assert!(
            (quantity % tick).is_zero(),
            "off-tick quantity on the book: {order}"
        );
    }
    assert!(
        live.values().all(|count| *count == 1),
        "duplicate protection: {live:?}"
    );
    let status = exchange.status();
    let mut protected = 0;
    for trade in trades(&status) {
        if trade["state"] == "PROTECTED" {
            let id = trade["id"].as_i64().unwrap().to_string();
            assert_eq!(live.get(&(id.clone(), 'S')), Some(&1), "{trade:#}");
            // Without a take-profit only when the price had already passed the target.
            let skipped = status["alerts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|alert| text(&alert["key"]).starts_with(&format!("target-skipped-{id}-")));
            let targets = if skipped { None } else { Some(&1) };
            assert_eq!(live.get(&(id, 'T')), targets, "{trade:#}");
            assert!(
                trade["entry"]["order_id"].as_str().is_some(),
                "exchange id stored"
            );
            protected += 1;
        }
    }
    protected
}

fn states(exchange: &Exchange) -> Vec<String> {
    exchange.status()["trades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| text(&t["state"]).to_string())
        .collect()
}

fn trade_both_sides(mode: &str, faults: &str, ticks: &str) -> Exchange {
    let exchange = Exchange::start(faults);
    exchange.signal("BTC_USDT", "BUY");
    exchange.signal("ETH_USDT", "SELL");
    let output = exchange
        .workspace
        .command(&["run", "--max-ticks", ticks])
        .env("FILLGUARD_PROTECTION__MODE", mode)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    exchange
}

#[test]
fn oco_mode_protects_buy_and_sell_over_http() {
    let exchange = trade_both_sides("oco", "none", "60");
    assert_eq!(
        check_protection_on_the_book(&exchange),
        2,
        "{:#}",
        exchange.status()
    );
}

#[test]
fn otoco_mode_protects_buy_and_sell_over_http() {
    let exchange = trade_both_sides("otoco", "none", "60");
    assert_eq!(
        check_protection_on_the_book(&exchange),
        2,
        "{:#}",
        exchange.status()
    );
}

#[test]
fn separate_mode_protects_buy_and_sell_over_http() {
    let exchange = trade_both_sides("separate", "none", "60");
    assert_eq!(
        check_protection_on_the_book(&exchange),
        2,
        "{:#}",
        exchange.status()
    );
}

#[test]
fn take_profit_fill_on_the_exchange_closes_the_trade() {
    let exchange = trade_both_sides("oco", "none", "60");
    let status = exchange.status();
    let buy = &status["trades"][0];
    let price: Decimal = text(&buy["avg_price"]).parse().unwrap();
    let target = (price * Decimal::new(104, 2)).round_dp(2);
    exchange.sim.set_price("BTC_USDT", &target.to_string());
    exchange.workspace.run_ok(&["run", "--max-ticks", "20"]);
    let status = exchange.status();
    assert_eq!(
        status["trades"][0]["close_reason"], "take_profit_filled",
        "{status:#}"
    );
    check_protection_on_the_book(&exchange);
}

fn assert_settled_under(faults: &str) {
    let exchange = trade_both_sides("oco", faults, "150");
    let protected = check_protection_on_the_book(&exchange);
    let status = exchange.status();
    for trade in trades(&status) {
        let state = text(&trade["state"]);
        let filled = text(&trade["filled_quantity"]) != "0";
        assert!(
            !filled || ["PROTECTED", "CLOSED", "HALTED", "RECOVERING"].contains(&state),
            "faults {faults}: {trade:#}"
        );
    }
    eprintln!(
        "faults {faults}: {protected} protected, states {:?}",
        states(&exchange)
    );
    for trade in trades(&status) {
        if trade["state"] == "HALTED" || trade["state"] == "RECOVERING" {
            eprintln!("  {}: {}", trade["state"], trade["close_reason"]);
            for order in trade["orders"].as_array().unwrap() {
                let (oid, status) = (&order["client_oid"], &order["status"]);
                eprintln!("    {oid} {status} {}", order["last_error"]);
            }
        }
    }
}

#[test]
fn lost_responses_never_duplicate_orders() {
    assert_settled_under("lost=0.3");
}

#[test]
fn server_errors_and_rate_limits_are_survived() {
    assert_settled_under("error5xx=0.2,ratelimit=0.2");
}

#[test]
fn orders_invisible_for_a_while_after_create_are_found() {
    assert_settled_under("notfound=1500");
}

#[test]
fn latency_delayed_fills_and_malformed_bodies_are_handled() {
    assert_settled_under("latency=50,fill_delay=1500,malformed=0.1");
}

#[test]
fn partial_fills_are_protected_for_what_filled() {
    let exchange = trade_both_sides("oco", "partial=0.4", "80");
    assert_eq!(check_protection_on_the_book(&exchange), 2);
    for trade in exchange.status()["trades"].as_array().unwrap() {
        let filled: Decimal = text(&trade["filled_quantity"]).parse().unwrap();
        let ordered: Decimal = text(&trade["entry"]["quantity"]).parse().unwrap();
        assert!(filled < ordered, "{trade:#}");
        let protected: Decimal = text(&trade["protect_quantity"]).parse().unwrap();
        assert!(protected <= filled);
    }
}

#[test]
fn rejected_protection_fails_safe_with_breaker_and_critical_alert() {
    let exchange = trade_both_sides("oco", "reject_protective=229", "60");
    let status = exchange.status();
    for trade in trades(&status) {
        // The position exists: protection is retried behind the open breaker. The run may end
        // inside a retry (10 s after the halt: the entry is now polled at once, so the halt
        // comes early enough in the 60 turns for that), which keeps the halt's reason.
        let retrying = matches!(text(&trade["state"]), "PROTECTING" | "VERIFYING")
            && trade["close_reason"] == "protection_rejected";
        assert!(trade["state"] == "RECOVERING" || retrying, "{trade:#}");
    }
    let open: Vec<&Value> = status["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["open"] == true)
        .collect();
    assert_eq!(open.len(), 2, "{status:#}");
    let critical = status["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["severity"] == "CRITICAL")
        .count();
    assert_eq!(critical, 2);
    assert_eq!(check_protection_on_the_book(&exchange), 0);
}

#[test]
fn wrong_secret_is_an_authentication_error_with_an_alert_and_no_trade() {
    let exchange = Exchange::start("none");
    let wrong = exchange
        .workspace
        .write_secret("wrong-secret", "not-the-secret");
    exchange.signal("BTC_USDT", "BUY");
    let output = exchange
        .workspace
        .command(&["run", "--max-ticks", "5"])
        .env("FILLGUARD_VENUE__API_SECRET_FILE", &wrong)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("40101"), "{stderr}");
    let status = exchange.status();
    assert!(trades(&status).is_empty(), "{status:#}");
    assert!(status["breakers"][0]["open"] == true && status["breakers"][0]["symbol"] == "*");
    let alert = text(&status["alerts"][0]["text"]);
    assert!(
        alert.contains("SELF-CHECK") && alert.contains("40101"),
        "{alert}"
    );
    assert!(exchange.sim.book().is_empty());
}

#[test]
fn a_live_exchange_url_needs_the_live_switch() {
    let exchange = Exchange::start("none");
    let output = exchange
        .workspace
        .command(&["run", "--max-ticks", "1"])
        .env(
            "FILLGUARD_VENUE__BASE_URL",
            "https://api.crypto.com/exchange/v1",
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("venue.live = true"));
    assert!(
        !exchange.workspace.path("fillguard.db").exists(),
        "refused before opening the store"
    );
}

/// The client in this process against the real simulator answering every request after
/// 300 ms, under a turn budget of 4 s (the smallest a 1 s timeout allows): a lookup of an order
/// the exchange never had walks three days of both history endpoints, 12 requests and more
/// than one budget. Each turn's call returns within its budget with the chain's position kept,
/// the next resumes it, and after a few turns the chain ends "not found" — only then.
#[test]
fn a_lookup_longer_than_a_budget_resumes_over_turns_and_ends() {
    use std::rc::Rc;
    use std::time::{Duration, Instant};

    use fillguard::core::trade::LookOutcome;
    use fillguard::shell::lookup::{Lookups, lookup};
    use fillguard::venue::cryptocom::{CryptoComSettings, CryptoComVenue, turn_budget_min};
    use fillguard::venue::{Budget, Venue, VenueError};

    let exchange = Exchange::start("latency=300");
    let timeout = Duration::from_secs(1);
    let mut venue = CryptoComVenue::new(CryptoComSettings {
        base_url: format!("http://{}/exchange/v1", exchange.sim.address()),
        api_key: "test-key".into(),
        api_secret: "test-secret-0123456789".into(),
        timeout,
        min_notional_fallback: Decimal::ONE,
        taker_fee_rate: "0.001".parse().unwrap(),
        wall: Rc::new(fillguard::shell::clock::SystemClock),
    })
    .unwrap();
    let budget = turn_budget_min(timeout);
    let since_ms = fillguard::core::clock::Clock::now_ms(&fillguard::shell::clock::SystemClock)
        - 3 * 24 * 3600 * 1000;
    let mut lookups = Lookups::default();
    let mut turns = Vec::new();
    let mut outcome = None;
    for _ in 0..20 {
        lookups.new_turn();
        let started = Instant::now();
        venue.set_budget(Budget::starting(started, budget));
        let result = lookup(
            &mut venue,
            &mut lookups,
            "BTC_USDT",
            "fg-00000000-1-E0",
            since_ms,
        );
        let took = started.elapsed();
        turns.push((took, result.is_err(), lookups.pending()));
        assert!(
            took <= budget + Duration::from_millis(300),
            "a turn took {took:?} of a {budget:?} budget: {turns:?}"
        );
        match result {
            Err(VenueError::Deferred(_)) => assert_eq!(lookups.pending(), 1, "{turns:?}"),
            Err(other) => panic!("{other:?} {turns:?}"),
            Ok(found) => {
                outcome = Some(found);
                break;
            }
        }
    }
    eprintln!("budget {budget:?}: turns (time, deferred, chains kept) {turns:?}");
    assert_eq!(outcome, Some(LookOutcome::NotFound), "{turns:?}");
    assert!(turns.len() >= 3, "the chain fit in fewer turns: {turns:?}");
    assert!(
        turns[..turns.len() - 1]
            .iter()
            .all(|(_, deferred, _)| *deferred)
    );
    assert_eq!(lookups.pending(), 0, "the finished chain is forgotten");
}

/// The simulator's request log: (method, the ids each request names).
fn request_log(exchange: &Exchange) -> Vec<(String, Vec<String>)> {
    let requests = exchange.sim.get("requests");
    requests["log"]
        .as_array()
        .expect("the request log")
        .iter()
        .map(|request| {
            let refs = request["refs"]
                .as_array()
                .map(|refs| refs.iter().map(|r| text(r).to_string()).collect())
                .unwrap_or_default();
            (text(&request["method"]).to_string(), refs)
        })
        .collect()
}

fn trade_on<'a>(status: &'a Value, symbol: &str) -> &'a Value {
    trades(status)
        .iter()
        .find(|trade| trade["symbol"] == symbol)
        .expect("the symbol's trade")
}

#[test]
fn replaced_design_polls_open_orders_then_history_and_sends_the_stop_first() {
    let exchange = Exchange::start("none");
    exchange.signal("BTC_USDT", "BUY");
    exchange.signal("ETH_USDT", "SELL");
    let output = exchange
        .workspace
        .command(&["run", "--max-ticks", "80"])
        .env("FILLGUARD_PROTECTION__MODE", "separate")
        .env("FILLGUARD_POLL__SCHEDULE", "fixed")
        .env("FILLGUARD_POLL__SOURCE", "open-then-history")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        check_protection_on_the_book(&exchange),
        2,
        "{:#}",
        exchange.status()
    );
    let log = request_log(&exchange);
    let status = exchange.status();
    for symbol in ["BTC_USDT", "ETH_USDT"] {
        let trade = trade_on(&status, symbol);
        let entry = text(&trade["entry"]["client_oid"]);
        let stop = text(&trade["stop_loss"]["client_oid"]);
        let target = text(&trade["take_profit"]["client_oid"]);
        // The fill was never read from order detail: open orders, then history.
        let detail_reads = log
            .iter()
            .filter(|(method, refs)| {
                method.ends_with("get-order-detail") && refs.iter().any(|r| r == entry)
            })
            .count();
        assert_eq!(detail_reads, 0, "{symbol}: {log:?}");
        let position = |oid: &str| {
            log.iter()
                .position(|(method, refs)| {
                    method == "private/advanced/create-order" && refs.iter().any(|r| r == oid)
                })
                .expect("the leg's create")
        };
        assert!(
            position(stop) < position(target),
            "{symbol}: stop-loss first: {log:?}"
        );
    }
    assert!(
        log.iter()
            .any(|(method, _)| method == "private/get-open-orders")
    );
}

#[test]
fn a_sell_is_protected_without_a_balance_read_and_a_buy_with_one() {
    let exchange = trade_both_sides("oco", "none", "60");
    assert_eq!(check_protection_on_the_book(&exchange), 2);
    let log = request_log(&exchange);
    let status = exchange.status();
    // The requests between the entry's last read and its OCO: what sizing the protection took.
    let sizing = |symbol: &str| -> Vec<String> {
        let trade = trade_on(&status, symbol);
        let entry = text(&trade["entry"]["client_oid"]).to_string();
        let stop = text(&trade["stop_loss"]["client_oid"]).to_string();
        let oco = log
            .iter()
            .position(|(method, refs)| {
                method == "private/advanced/create-oco" && refs.contains(&stop)
            })
            .expect("the trade's OCO");
        let last_read = log[..oco]
            .iter()
            .rposition(|(_, refs)| refs.contains(&entry))
            .expect("the entry's fill poll");
        log[last_read + 1..oco]
            .iter()
            .map(|(method, _)| method.clone())
            .collect()
    };
    let sell = sizing("ETH_USDT");
    assert!(sell.contains(&"public/get-tickers".to_string()), "{sell:?}");
    assert!(
        !sell.contains(&"private/user-balance".to_string()),
        "{sell:?}"
    );
    let buy = sizing("BTC_USDT");
    assert!(buy.contains(&"public/get-tickers".to_string()), "{buy:?}");
    assert!(buy.contains(&"private/user-balance".to_string()), "{buy:?}");
}
