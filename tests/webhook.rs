//! The webhook receiver of the real `fillguard run` (paper venue), over real HTTP on
//! 127.0.0.1: one test per answer (202 and the trade it becomes, 400 naming the field, 401,
//! 409 also after a restart, 413, 429), the path-token mode, one trade per signal id whether
//! it came through the webhook or `fillguard signal --id`, and the secrets kept out of
//! `check-config`, the log and the answers.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use fillguard::store::{self, SignalStatus};
use fillguard::webhook::sign;

use common::{Running, Workspace, trades, wait_for, watchlist_entry};

const SECRET: &str = "5f2b9c0e7a6d4b13a8c1e9f0d2b7c6a45f2b9c0e7a6d4b13";
const TOKEN: &str = "tvtoken_0123456789abcdef0123456789abcdef";

/// A workspace whose agent serves the webhook on a free port of 127.0.0.1 and trades BTC_USDT
/// on inbox signals only; `extra` goes into `[signals.webhook]`.
fn workspace(extra: &str) -> Workspace {
    let workspace = Workspace::new("");
    let secret = workspace.write_secret("webhook-secret", SECRET);
    let toml = format!(
        "[store]\npath = \"{}\"\n[metrics]\nlisten = \"off\"\n[loop]\ninterval_seconds = 0.2\n\
         [signals.webhook]\nenabled = true\nlisten = \"127.0.0.1:0\"\nsecret_file = \"{}\"\n{extra}\n{}",
        workspace.path("fillguard.db").display(),
        secret.display(),
        watchlist_entry("BTC_USDT", "100", "1", "2"),
    );
    std::fs::write(workspace.path("fillguard.toml"), toml).unwrap();
    workspace
}

/// `fillguard run` and the address its receiver listens on, read from its log.
fn start(workspace: &Workspace, log: &str) -> (Running, String) {
    let mut run = workspace.spawn_run(log);
    let address = wait_for(Duration::from_secs(60), Duration::from_millis(50), || {
        run.log_lines("webhook receiver listening")
            .first()
            .and_then(|line| line.split("listen=").nth(1))
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
    });
    let Some(address) = address else {
        let running = run.is_running();
        panic!("no receiver (running: {running}); log:\n{}", run.log());
    };
    (run, address)
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn signal(id: &str) -> Value {
    json!({"id": id, "symbol": "BTC_USDT", "side": "BUY", "notional": "50", "timestamp": now_seconds()})
}

/// One HTTP/1.1 request over a fresh connection; the status and the body of the answer.
fn request(address: &str, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    // The receiver may answer and close before reading a body it refuses.
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// `POST path` with `body` and the extra header lines.
fn post(address: &str, path: &str, headers: &[String], body: &[u8]) -> (u16, Value) {
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let (status, text) = request(address, &head, body);
    assert_eq!(text.matches('\n').count(), 1, "one line: {text:?}");
    (status, serde_json::from_str(&text).unwrap())
}

/// `POST /signal` signed with `secret`.
fn post_signed_with(address: &str, secret: &str, body: &Value) -> (u16, Value) {
    let bytes = body.to_string().into_bytes();
    let signature = format!("X-Fillguard-Signature: {}", sign(secret.as_bytes(), &bytes));
    post(address, "/signal", &[signature], &bytes)
}

fn post_signed(address: &str, body: &Value) -> (u16, Value) {
    post_signed_with(address, SECRET, body)
}

#[test]
fn an_accepted_signal_answers_202_and_becomes_a_trade() {
    let workspace = workspace("");
    let (run, address) = start(&workspace, "run.log");
    let (status, answer) = post_signed(&address, &signal("first-1"));
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["outcome"], "accepted");
    let row = answer["signal"].as_i64().unwrap();
    let traded = wait_for(Duration::from_secs(60), Duration::from_millis(200), || {
        let status = workspace.status();
        (!trades(&status).is_empty()).then_some(status)
    })
    .unwrap_or_else(|| panic!("no trade; log:\n{}", run.log()));
    let list = trades(&traded);
    assert_eq!(list.len(), 1, "{traded}");
    assert_eq!(list[0]["symbol"], "BTC_USDT");
    assert_eq!(list[0]["side"], "BUY");
    let signals = store::all_signals(workspace.store().conn()).unwrap();
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0].id, row);
    assert_eq!(signals[0].source, "webhook");
    assert_eq!(signals[0].status, SignalStatus::Taken);
    assert_eq!(signals[0].trade_id, list[0]["id"].as_i64());
}

#[test]
fn a_malformed_body_answers_400_naming_the_field() {
    let workspace = workspace("");
    let (_run, address) = start(&workspace, "run.log");
    let mut missing_side = signal("bad-1");
    missing_side.as_object_mut().unwrap().remove("side");
    let mut float_size = signal("bad-2");
    float_size["notional"] = json!("1e400");
    let mut unknown_symbol = signal("bad-3");
    unknown_symbol["symbol"] = json!("FOO_USDT");
    let mut stale = signal("bad-4");
    stale["timestamp"] = json!(now_seconds() - 120);
    let mut typo = signal("bad-5");
    typo["qty"] = json!("1");
    for (body, field) in [
        (missing_side, "side"),
        (float_size, "notional"),
        (unknown_symbol, "symbol"),
        (stale, "timestamp"),
        (typo, "qty"),
    ] {
        let (status, answer) = post_signed(&address, &body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["outcome"], "malformed");
        assert_eq!(answer["field"], field, "{answer}");
        assert!(
            answer["reason"].as_str().unwrap().starts_with(field),
            "{answer}"
        );
    }
    let signals = store::all_signals(workspace.store().conn()).unwrap();
    assert!(signals.is_empty(), "nothing stored: {signals:?}");
}

#[test]
fn a_bad_or_missing_signature_answers_401() {
    let workspace = workspace("");
    let (run, address) = start(&workspace, "run.log");
    let body = signal("unsigned-1");
    let (status, answer) =
        post_signed_with(&address, "another-secret-of-enough-length-00000", &body);
    assert_eq!(status, 401, "{answer}");
    assert_eq!(answer["outcome"], "unauthorized");
    let bytes = body.to_string().into_bytes();
    let (status, answer) = post(&address, "/signal", &[], &bytes);
    assert_eq!(status, 401, "{answer}");
    assert!(
        answer["reason"].as_str().unwrap().contains("missing"),
        "{answer}"
    );
    // Signed, then changed: the signature covers the raw body.
    let signature = format!("X-Fillguard-Signature: {}", sign(SECRET.as_bytes(), &bytes));
    let changed = body.to_string().replace("\"50\"", "\"5000\"").into_bytes();
    let (status, _) = post(
        &address,
        "/signal",
        std::slice::from_ref(&signature),
        &changed,
    );
    assert_eq!(status, 401);
    let (status, _) = post(&address, "/signal", &[signature], &bytes);
    assert_eq!(status, 202, "the unchanged body passes");
    assert!(!run.log().contains(SECRET));
}

#[test]
fn a_replayed_id_answers_409_also_after_a_restart() {
    let workspace = workspace("");
    let (mut run, address) = start(&workspace, "run.log");
    let (status, _) = post_signed(&address, &signal("once-1"));
    assert_eq!(status, 202);
    // The same id again, freshly timed and signed: a replay by anyone who saw the first.
    let (status, answer) = post_signed(&address, &signal("once-1"));
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["outcome"], "replay");
    assert!(run.terminate(Duration::from_secs(30)).success());
    let (_run, address) = start(&workspace, "run-2.log");
    let (status, answer) = post_signed(&address, &signal("once-1"));
    assert_eq!(status, 409, "after a restart: {answer}");
    // A sender retrying its first body late (beyond the timestamp window) learns it arrived:
    // 409, not a 400 that would make it send again under a new id.
    let mut late = signal("once-1");
    late["timestamp"] = json!(now_seconds() - 120);
    let (status, answer) = post_signed(&address, &late);
    assert_eq!(status, 409, "a late retry: {answer}");
    let (status, _) = post_signed(&address, &signal("once-2"));
    assert_eq!(status, 202);
    let keys: Vec<_> = store::all_signals(workspace.store().conn())
        .unwrap()
        .into_iter()
        .map(|signal| signal.dedup_key.unwrap())
        .collect();
    assert_eq!(keys, ["id:once-1", "id:once-2"]);
}

#[test]
fn a_body_over_the_limit_answers_413() {
    let workspace = workspace("max_body_bytes = 1024\n");
    let (_run, address) = start(&workspace, "run.log");
    let mut body = signal("big-1");
    body["id"] = json!("big-1");
    let padded = format!("{}{}", body, " ".repeat(2000)).into_bytes();
    let signature = format!(
        "X-Fillguard-Signature: {}",
        sign(SECRET.as_bytes(), &padded)
    );
    let (status, answer) = post(&address, "/signal", &[signature], &padded);
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["outcome"], "too_large");
    // Without a length up front (chunked), the body is cut off at the limit while read.
    let chunk = "x".repeat(1500);
    let head = format!(
        "POST /signal HTTP/1.1\r\nHost: {address}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (status, text) = request(&address, &head, b"");
    assert_eq!(status, 413, "{text}");
    let (status, _) = post_signed(&address, &body);
    assert_eq!(status, 202, "a body within the limit passes");
}

#[test]
fn requests_over_the_rate_answer_429_and_refused_ones_cannot_spend_the_senders_allowance() {
    let workspace = workspace("rate_per_minute = 3\n");
    let metrics = common::free_loopback_address();
    let toml = std::fs::read_to_string(workspace.path("fillguard.toml")).unwrap();
    let toml = toml.replace("listen = \"off\"", &format!("listen = \"{metrics}\""));
    std::fs::write(workspace.path("fillguard.toml"), toml).unwrap();
    let (_run, address) = start(&workspace, "run.log");
    let (status, answer) = post_signed(&address, &signal("rate-1"));
    assert_eq!(status, 202, "{answer}");
    // A captured signed body sent again, and requests without the secret, spend the refused
    // requests' allowance, then get 429 ...
    let replays: Vec<u16> = (0..3)
        .map(|_| post_signed(&address, &signal("rate-1")).0)
        .collect();
    assert_eq!(replays, [409, 409, 409]);
    let head = format!("POST /signal HTTP/1.1\r\nHost: {address}\r\nContent-Length: 2\r\n\r\n{{}}");
    assert_eq!(request(&address, &head, b"").0, 429);
    // ... and the senders' allowance is untouched by them.
    for id in ["rate-2", "rate-3"] {
        let (status, answer) = post_signed(&address, &signal(id));
        assert_eq!(status, 202, "{answer}");
    }
    let (status, answer) = post_signed(&address, &signal("rate-4"));
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["outcome"], "rate_limited");
    let signals = store::all_signals(workspace.store().conn()).unwrap();
    assert_eq!(signals.len(), 3, "the refused signal is not stored");
    let scrape = ureq::get(format!("http://{metrics}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    for (outcome, count) in [("accepted", 3), ("replay", 3), ("rate_limited", 2)] {
        let series = format!("fillguard_webhook_requests_total{{outcome=\"{outcome}\"}} {count}");
        assert!(scrape.contains(&series), "{series} in\n{scrape}");
    }
}

#[test]
fn the_path_token_mode_takes_unsigned_requests_with_the_token_only() {
    let mut workspace = workspace("path_token = true\n");
    let token_file = workspace.write_secret("webhook-path-token", TOKEN);
    workspace.set_env(
        "FILLGUARD_SIGNALS__WEBHOOK__PATH_TOKEN_FILE",
        &token_file.display().to_string(),
    );
    let (run, address) = start(&workspace, "run.log");
    // What a TradingView alert sends: its message, no signature, the time as {{timenow}}.
    let now = SystemTime::now();
    let seconds = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
    let timenow = iso8601(seconds);
    let message = format!(
        r#"{{"id": "tv-BTCUSDT-{seconds}", "symbol": "BTC_USDT", "side": "buy", "quantity": 0.001, "timestamp": "{timenow}"}}"#
    );
    let (status, answer) = post(
        &address,
        &format!("/signal/{TOKEN}"),
        &[],
        message.as_bytes(),
    );
    assert_eq!(status, 202, "{answer}");
    let wrong = format!("/signal/{}", TOKEN.replace('0', "1"));
    let (status, answer) = post(&address, &wrong, &[], message.as_bytes());
    assert_eq!(status, 401, "{answer}");
    assert!(!answer.to_string().contains(TOKEN));
    let signals = store::all_signals(workspace.store().conn()).unwrap();
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0].quantity.unwrap().to_string(), "0.001");
    let log = run.log();
    assert!(!log.contains(TOKEN) && !log.contains(SECRET), "{log}");
}

#[test]
fn without_the_path_token_mode_a_token_path_is_not_found() {
    let workspace = workspace("");
    let (_run, address) = start(&workspace, "run.log");
    let body = signal("tv-off-1").to_string();
    let (status, answer) = post(&address, &format!("/signal/{TOKEN}"), &[], body.as_bytes());
    assert_eq!(status, 404, "{answer}");
}

/// `YYYY-MM-DDTHH:MM:SSZ` of Unix seconds (the civil-from-days algorithm).
fn iso8601(seconds: u64) -> String {
    let days = (seconds / 86_400) as i64;
    let clock = seconds % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        clock / 3600,
        clock % 3600 / 60,
        clock % 60
    )
}

#[test]
fn one_signal_id_opens_one_trade_whether_it_came_by_webhook_or_command() {
    let workspace = workspace("");
    let (run, address) = start(&workspace, "run.log");
    let (status, _) = post_signed(&address, &signal("both-1"));
    assert_eq!(status, 202);
    let cli = |id: &str| {
        workspace.run(&[
            "signal",
            "--symbol",
            "BTC_USDT",
            "--side",
            "BUY",
            "--notional",
            "50",
            "--id",
            id,
        ])
    };
    let output = cli("both-1");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("was seen before"), "{stderr}");
    assert!(cli("both-2").status.success());
    let (status, answer) = post_signed(&address, &signal("both-2"));
    assert_eq!(status, 409, "{answer}");
    // The first trade must close or be open before the second may open on the symbol: the
    // test only needs each id taken once, whatever became of the trade.
    let settled = wait_for(Duration::from_secs(90), Duration::from_millis(300), || {
        let signals = store::all_signals(workspace.store().conn()).unwrap();
        signals
            .iter()
            .all(|signal| signal.status != SignalStatus::New)
            .then_some(signals)
    })
    .unwrap_or_else(|| panic!("signals not taken; log:\n{}", run.log()));
    assert_eq!(settled.len(), 2, "{settled:?}");
    let status = workspace.status();
    let trade_ids: Vec<i64> = trades(&status)
        .iter()
        .map(|trade| trade["id"].as_i64().unwrap())
        .collect();
    let taken: Vec<i64> = settled
        .iter()
        .filter_map(|signal| signal.trade_id)
        .collect();
    assert!(taken.len() <= 2 && taken.iter().all(|id| trade_ids.contains(id)));
    assert!(trade_ids.len() <= 2, "at most one trade per id: {status}");
    let keys: Vec<&str> = settled
        .iter()
        .map(|signal| signal.dedup_key.as_deref().unwrap())
        .collect();
    assert_eq!(keys, ["id:both-1", "id:both-2"]);
    assert_eq!(settled[1].source, "cli");
}

#[test]
fn check_config_masks_the_secrets_and_refuses_a_readable_secret_file() {
    let mut workspace = workspace("path_token = true\n");
    let token_file = workspace.write_secret("webhook-path-token", TOKEN);
    workspace.set_env(
        "FILLGUARD_SIGNALS__WEBHOOK__PATH_TOKEN_FILE",
        &token_file.display().to_string(),
    );
    let shown = workspace.run_ok(&["check-config"]);
    assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
    assert!(shown.contains("[signals.webhook]"), "{shown}");
    assert!(shown.contains("# secret = \"********\""), "{shown}");
    assert!(shown.contains("# token = \"********\""), "{shown}");
    use std::os::unix::fs::PermissionsExt;
    let secret = workspace.path("webhook-secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
    let output = workspace.run(&["check-config"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("signals.webhook.secret_file"), "{stderr}");
    assert!(stderr.contains("readable by group or others"), "{stderr}");
    assert!(!stderr.contains(SECRET));
}

#[test]
fn a_taken_port_stops_run_at_start_naming_the_key() {
    let workspace = workspace("");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let toml = std::fs::read_to_string(workspace.path("fillguard.toml")).unwrap();
    let toml = toml.replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{address}\""),
    );
    std::fs::write(workspace.path("fillguard.toml"), toml).unwrap();
    let output = workspace.run(&["run", "--max-ticks", "1"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("signals.webhook.listen {address}: cannot listen")),
        "{stderr}"
    );
}
