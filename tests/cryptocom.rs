//! The real `fillguard run` with `venue.kind = "cryptocom"` against the real
//! `fillguard sim-exchange`, over HTTP on 127.0.0.1 (a free port chosen by the simulator):
//! both sides in every protection mode, every fault class, partial fills, the failsafe and a
//! wrong secret. The simulator's book is the exchange's side of the truth.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use rust_decimal::Decimal;
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_fillguard");
const API_KEY: &str = "test-key";
const API_SECRET: &str = "test-secret-0123456789";

/// Simulator and agent sharing one configuration file (the simulator's paper section, the
/// agent's watchlist), in one temporary directory.
struct Exchange {
    dir: tempfile::TempDir,
    sim: Child,
    address: String,
}

impl Drop for Exchange {
    fn drop(&mut self) {
        let _ = self.sim.kill();
        let _ = self.sim.wait();
    }
}

const WATCHLIST: &str = r#"
[[watchlist]]
symbol = "BTC_USDT"
strategy = "none"
notional = "100"
stop_loss_pct = "2"
take_profit_pct = "3"
[[watchlist]]
symbol = "ETH_USDT"
strategy = "none"
notional = "100"
stop_loss_pct = "2"
take_profit_pct = "3"
"#;

impl Exchange {
    fn start(faults: &str) -> Exchange {
        Exchange::start_with(faults, "")
    }

    fn start_with(faults: &str, extra_toml: &str) -> Exchange {
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            "[store]\npath = \"{}/fillguard.db\"\n[metrics]\nlisten = \"off\"\n[loop]\ninterval_seconds = 0.2\n[poll]\ninterval_seconds = 0.3\ndeadline_seconds = 10\n[protection]\nwatch_interval_seconds = 0.5\n[paper]\nvolatility = \"0\"\nfill_delay_ms = 200\n{extra_toml}{WATCHLIST}",
            dir.path().display()
        );
        std::fs::write(dir.path().join("fillguard.toml"), toml).unwrap();
        let secret = dir.path().join("api-secret");
        std::fs::write(&secret, API_SECRET).unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut sim = Command::new(BINARY)
            .arg("--config")
            .arg(dir.path().join("fillguard.toml"))
            .args(["sim-exchange", "--listen", "127.0.0.1:0", "--seed", "11"])
            .args([
                "--faults",
                faults,
                "--api-key",
                API_KEY,
                "--api-secret-file",
            ])
            .arg(&secret)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the simulator starts");
        let mut line = String::new();
        BufReader::new(sim.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Exchange { dir, sim, address }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command
            .arg("--config")
            .arg(self.path("fillguard.toml"))
            .args(args)
            .env("FILLGUARD_VENUE__KIND", "cryptocom")
            .env(
                "FILLGUARD_VENUE__BASE_URL",
                format!("http://{}/exchange/v1", self.address),
            )
            .env("FILLGUARD_VENUE__API_KEY", API_KEY)
            .env("FILLGUARD_VENUE__API_SECRET_FILE", self.path("api-secret"))
            .env("FILLGUARD_VENUE__TIMEOUT_SECONDS", "2")
            .env_remove("JOURNAL_STREAM")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn run_ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "fillguard {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn signal(&self, symbol: &str, side: &str) {
        self.run_ok(&[
            "signal",
            "--symbol",
            symbol,
            "--side",
            side,
            "--notional",
            "100",
        ]);
    }

    fn status(&self) -> Value {
        serde_json::from_str(&self.run_ok(&["status", "--json"])).unwrap()
    }

    fn book(&self) -> Vec<Value> {
        let url = format!("http://{}/sim/book", self.address);
        let body = ureq::get(&url)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let parsed: Value = serde_json::from_str(&body).unwrap();
        parsed.as_array().cloned().unwrap_or_default()
    }

    fn post(&self, path: &str, body: Value) {
        let url = format!("http://{}{path}", self.address);
        ureq::post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("")
}

fn is_live(order: &Value) -> bool {
    ["NEW", "PENDING", "ACTIVE"].contains(&text(&order["status"]))
}

/// S1 on the exchange's side: per trade at most one live SL and one live TP; every protected
/// trade has exactly one of each, on tick.
fn check_protection_on_the_book(exchange: &Exchange) -> usize {
    let book = exchange.book();
    let mut live: BTreeMap<(String, char), usize> = BTreeMap::new();
    for order in &book {
        let oid = text(&order["client_oid"]);
        let (trade, rest) = oid.trim_start_matches("fg-").split_once('-').unwrap();
        let role = rest.chars().next().unwrap();
        if is_live(order) && (role == 'S' || role == 'T') {
            *live.entry((trade.to_string(), role)).or_default() += 1;
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
    for trade in status["trades"].as_array().unwrap() {
        if trade["state"] == "PROTECTED" {
            let id = trade["id"].as_i64().unwrap().to_string();
            assert_eq!(live.get(&(id.clone(), 'S')), Some(&1), "{trade:#}");
            assert_eq!(live.get(&(id, 'T')), Some(&1), "{trade:#}");
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
    exchange.post(
        "/sim/price",
        serde_json::json!({"instrument_name": "BTC_USDT", "price": target.to_string()}),
    );
    exchange.run_ok(&["run", "--max-ticks", "20"]);
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
    for trade in status["trades"].as_array().unwrap() {
        let state = text(&trade["state"]);
        let filled = text(&trade["filled_quantity"]) != "0";
        assert!(
            !filled || ["PROTECTED", "CLOSED", "HALTED"].contains(&state),
            "faults {faults}: {trade:#}"
        );
    }
    eprintln!(
        "faults {faults}: {protected} protected, states {:?}",
        states(&exchange)
    );
    for trade in status["trades"].as_array().unwrap() {
        if trade["state"] == "HALTED" {
            eprintln!("  halted: {}", trade["close_reason"]);
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
    for trade in status["trades"].as_array().unwrap() {
        assert_eq!(trade["state"], "HALTED", "{trade:#}");
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
    let wrong = exchange.path("wrong-secret");
    std::fs::write(&wrong, "not-the-secret").unwrap();
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    exchange.signal("BTC_USDT", "BUY");
    let output = exchange
        .command(&["run", "--max-ticks", "5"])
        .env("FILLGUARD_VENUE__API_SECRET_FILE", &wrong)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("40101"), "{stderr}");
    let status = exchange.status();
    assert!(
        status["trades"].as_array().unwrap().is_empty(),
        "{status:#}"
    );
    assert!(status["breakers"][0]["open"] == true && status["breakers"][0]["symbol"] == "*");
    let alert = text(&status["alerts"][0]["text"]);
    assert!(
        alert.contains("SELF-CHECK") && alert.contains("40101"),
        "{alert}"
    );
    assert!(exchange.book().is_empty());
}

#[test]
fn a_live_exchange_url_needs_the_live_switch() {
    let exchange = Exchange::start("none");
    let output = exchange
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
        !exchange.path("fillguard.db").exists(),
        "refused before opening the store"
    );
}
