//! The receiver's checks without HTTP: signature, path token, timestamp window, body fields,
//! rate limit, and the inbox write of a repeated id.

use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use super::check::{
    AuthFailure, Route, check_timestamp, route, sign, verify_signature, verify_token,
};
use super::outcome::Outcome;
use super::payload::{self, id_key, parse, rfc3339_ms};
use super::rate::RateLimiter;
use super::store_signal;
use crate::core::domain::Side;
use crate::store::{self, Store};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn watchlist() -> Vec<String> {
    vec!["BTC_USDT".to_string(), "ETH_USDT".to_string()]
}

#[test]
fn the_signature_is_hmac_sha256_of_the_body_as_published() {
    // RFC 4231, test case 2.
    let signature = sign(b"Jefe", b"what do ya want for nothing?");
    assert_eq!(
        signature,
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    let header = signature.as_bytes();
    assert_eq!(
        verify_signature(b"Jefe", b"what do ya want for nothing?", Some(header)),
        Ok(())
    );
}

#[test]
fn a_signature_over_other_bytes_or_with_another_secret_is_refused() {
    let body = br#"{"id":"a"}"#;
    let header = sign(SECRET, body);
    assert_eq!(
        verify_signature(SECRET, body, Some(header.as_bytes())),
        Ok(())
    );
    // Upper-case hex and prefix are the same signature.
    let upper = header.to_uppercase();
    assert_eq!(
        verify_signature(SECRET, body, Some(upper.as_bytes())),
        Ok(())
    );
    let altered = br#"{"id":"b"}"#;
    assert_eq!(
        verify_signature(SECRET, altered, Some(header.as_bytes())),
        Err(AuthFailure::BadSignature)
    );
    assert_eq!(
        verify_signature(b"another secret", body, Some(header.as_bytes())),
        Err(AuthFailure::BadSignature)
    );
}

#[test]
fn a_missing_or_misshapen_signature_header_is_refused() {
    let body = b"{}";
    assert_eq!(
        verify_signature(SECRET, body, None),
        Err(AuthFailure::MissingSignature)
    );
    let good = sign(SECRET, body);
    let hex = good.trim_start_matches("sha256=");
    for header in [
        hex.to_string(),                    // no prefix
        format!("sha1={hex}"),              // another algorithm
        format!("sha256={}", &hex[..62]),   // short
        format!("sha256={}zz", &hex[..62]), // not hex
        format!("sha256={hex}00"),          // long
        String::new(),
    ] {
        assert_eq!(
            verify_signature(SECRET, body, Some(header.as_bytes())),
            Err(AuthFailure::MalformedSignature),
            "{header}"
        );
    }
}

#[test]
fn the_path_token_must_match_exactly() {
    let token = "t0k3n-0123456789abcdef0123456789abcdef";
    assert_eq!(verify_token(token, token), Ok(()));
    for other in [
        "",
        "t0k3n",
        "t0k3n-0123456789abcdef0123456789abcdeF",
        "t0k3n-0123456789abcdef0123456789abcdef0",
    ] {
        assert_eq!(
            verify_token(token, other),
            Err(AuthFailure::BadToken),
            "{other}"
        );
    }
}

#[test]
fn routes_are_the_signed_path_and_a_token_path_only_in_token_mode() {
    assert_eq!(route("/signal", false), Route::Signed);
    assert_eq!(route("/signal", true), Route::Signed);
    assert_eq!(route("/signal/abc", true), Route::Token("abc"));
    assert_eq!(route("/signal/abc", false), Route::Unknown);
    assert_eq!(route("/signal/", true), Route::Unknown);
    assert_eq!(route("/signals", true), Route::Unknown);
    assert_eq!(route("/", true), Route::Unknown);
}

#[test]
fn a_timestamp_more_than_60_seconds_away_is_refused_either_way() {
    let now = 1_800_000_000_000;
    assert_eq!(check_timestamp(now, now), Ok(()));
    assert_eq!(check_timestamp(now - 60_000, now), Ok(()));
    assert_eq!(check_timestamp(now + 60_000, now), Ok(()));
    assert_eq!(check_timestamp(now - 60_001, now), Err(-60));
    assert_eq!(check_timestamp(now + 61_000, now), Err(61));
    assert_eq!(check_timestamp(0, now), Err(-1_800_000_000));
    assert!(check_timestamp(i64::MAX, i64::MIN).is_err());
}

fn body(fields: &str) -> Vec<u8> {
    format!("{{{fields}}}").into_bytes()
}

const GOOD: &str =
    r#""id":"tv-1","symbol":"BTC_USDT","side":"buy","quantity":"0.0015","timestamp":1800000000"#;

#[test]
fn a_good_body_is_read_with_exact_decimals() {
    let signal = parse(&body(GOOD), &watchlist()).unwrap();
    assert_eq!(signal.id, "tv-1");
    assert_eq!(signal.side, Side::Buy);
    assert_eq!(signal.quantity, Some(Decimal::new(15, 4)));
    assert_eq!(signal.notional, None);
    assert_eq!(signal.timestamp_ms, 1_800_000_000_000);
    // A JSON number keeps its digits: 0.1 is exactly 0.1, not the nearest double.
    let number = GOOD.replace(r#""quantity":"0.0015""#, r#""notional":0.1"#);
    let signal = parse(&body(&number), &watchlist()).unwrap();
    assert_eq!(signal.notional, Some(Decimal::new(1, 1)));
    assert_eq!(signal.quantity, None);
    // More digits than a double holds (17 significant ones at most) survive, as a number
    // and as a string.
    let long = "0.12345678901234567891";
    for written in [long.to_string(), format!("\"{long}\"")] {
        let precise = GOOD.replace(
            r#""quantity":"0.0015""#,
            &format!(r#""quantity":{written}"#),
        );
        let signal = parse(&body(&precise), &watchlist()).unwrap();
        assert_eq!(signal.quantity, Some(long.parse().unwrap()), "{written}");
    }
}

#[test]
fn a_key_given_twice_is_refused_by_name() {
    let twice = GOOD.replace(r#""side":"buy""#, r#""side":"buy","side":"SELL""#);
    assert_ne!(twice, GOOD, "the body names side");
    let refused = parse(&body(&twice), &watchlist()).unwrap_err();
    assert_eq!(refused.field, "side");
    assert_eq!(refused.reason, "appears twice in the body");
}

#[test]
fn each_malformed_field_is_named() {
    let cases: [(&str, &str); 16] = [
        (r#""id":"a b""#, "id"),
        (r#""id":"""#, "id"),
        (r#""id":7"#, "id"),
        (r#""symbol":"FOO_USDT""#, "symbol"),
        (r#""side":"hold""#, "side"),
        (r#""quantity":"abc""#, "quantity"),
        (r#""quantity":"-1""#, "quantity"),
        (r#""quantity":"0""#, "quantity"),
        (r#""quantity":true"#, "quantity"),
        (r#""timestamp":"yesterday""#, "timestamp"),
        (r#""timestamp":-5"#, "timestamp"),
        (r#""timestamp":"2026-02-30T00:00:00Z""#, "timestamp"),
        (r#""timestamp":"2026-11-30T12:00:00+01:00""#, "timestamp"),
        (r#""qty":"1""#, "qty"),
        (r#""notional":"10""#, "notional"),
        (r#""id":"x","id":"y""#, "id"),
    ];
    for (change, field) in cases {
        let key = change.split(':').next().unwrap();
        // Replace the field if the good body has it, else add it.
        let fields: Vec<&str> = GOOD.split(',').filter(|f| !f.starts_with(key)).collect();
        let text = format!("{},{change}", fields.join(","));
        let result = parse(&body(&text), &watchlist());
        match result {
            Err(malformed) => assert_eq!(malformed.field, field, "{text}: {malformed:?}"),
            // A duplicated key is JSON's last-wins; the id must then still be a good one.
            Ok(signal) => assert_eq!((field, signal.id.as_str()), ("id", "y"), "{text}"),
        }
    }
    let missing = GOOD.replace(r#","side":"buy""#, "");
    assert_eq!(
        parse(&body(&missing), &watchlist()).unwrap_err().field,
        "side"
    );
    let no_size = GOOD.replace(r#","quantity":"0.0015""#, "");
    assert_eq!(
        parse(&body(&no_size), &watchlist()).unwrap_err().field,
        "quantity"
    );
    assert_eq!(parse(b"[1]", &watchlist()).unwrap_err().field, "body");
    assert_eq!(parse(b"{", &watchlist()).unwrap_err().field, "body");
}

#[test]
fn timestamps_are_seconds_milliseconds_or_rfc3339_in_utc() {
    assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(rfc3339_ms("2026-11-30T12:00:00Z"), Some(1_796_040_000_000));
    assert_eq!(
        rfc3339_ms("2026-11-30T12:00:00.25Z"),
        Some(1_796_040_000_250)
    );
    assert_eq!(
        rfc3339_ms("2024-02-29T00:00:00+00:00"),
        Some(1_709_164_800_000)
    );
    assert_eq!(rfc3339_ms("2023-02-29T00:00:00Z"), None);
    assert_eq!(rfc3339_ms("2026-11-30T12:00:00"), None);
    assert_eq!(rfc3339_ms("2026-11-30T24:00:00Z"), None);
    let millis = GOOD.replace("1800000000", "1800000000123");
    assert_eq!(
        parse(&body(&millis), &watchlist()).unwrap().timestamp_ms,
        1_800_000_000_123
    );
    let fraction = GOOD.replace("1800000000", "1800000000.2509");
    assert_eq!(
        parse(&body(&fraction), &watchlist()).unwrap().timestamp_ms,
        1_800_000_000_250
    );
    let text = GOOD.replace("1800000000", r#""2026-11-30T12:00:00Z""#);
    assert_eq!(
        parse(&body(&text), &watchlist()).unwrap().timestamp_ms,
        1_796_040_000_000
    );
}

#[test]
fn the_rate_limit_admits_a_minutes_allowance_then_refills_it_over_the_minute() {
    let start = Instant::now();
    let mut limiter = RateLimiter::new(3, start);
    assert!(limiter.admit(start).is_ok());
    assert!(limiter.admit(start).is_ok());
    assert!(limiter.admit(start).is_ok());
    assert_eq!(limiter.admit(start), Err(Duration::from_secs(20)));
    // One request's allowance comes back every 20 s at 3 a minute.
    assert_eq!(
        limiter.admit(start + Duration::from_secs(19)),
        Err(Duration::from_secs(1))
    );
    assert!(limiter.admit(start + Duration::from_secs(20)).is_ok());
    assert!(limiter.admit(start + Duration::from_secs(20)).is_err());
    // A long quiet spell refills no more than the minute's allowance.
    let later = start + Duration::from_secs(3600);
    for _ in 0..3 {
        assert!(limiter.admit(later).is_ok());
    }
    assert!(limiter.admit(later).is_err());
}

#[test]
fn every_outcome_is_a_label_of_the_metric_and_answers_one_json_line() {
    let outcomes = [
        Outcome::Accepted { signal: 1 },
        Outcome::Malformed {
            field: "side".into(),
            reason: "is required".into(),
        },
        Outcome::Unauthorized(AuthFailure::BadSignature),
        Outcome::Replay { id: "x".into() },
        Outcome::TooLarge { limit: 4096 },
        Outcome::RateLimited {
            retry_after_seconds: 3,
        },
        Outcome::NotFound,
        Outcome::MethodNotAllowed,
        Outcome::Timeout,
        Outcome::Unavailable,
    ];
    for outcome in outcomes {
        assert!(
            crate::telemetry::metrics::WEBHOOK_OUTCOMES.contains(&outcome.label()),
            "{outcome:?}"
        );
        let body = outcome.body();
        assert_eq!(body.matches('\n').count(), 1, "{body}");
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["outcome"], outcome.label());
        assert!(value["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }
}

#[test]
fn an_id_is_stored_once_whatever_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("fillguard.db")).unwrap();
    let signal = parse(&body(GOOD), &watchlist()).unwrap();
    let first = store_signal(&store, &signal, 1);
    let Outcome::Accepted { signal: row } = first else {
        panic!("{first:?}");
    };
    assert_eq!(
        store_signal(&store, &signal, 2),
        Outcome::Replay { id: "tv-1".into() }
    );
    // The command line's `--id` uses the same key: the same id from there is refused too.
    let cli = store::SignalRow {
        source: "cli".into(),
        dedup_key: Some(id_key("tv-1")),
        ..store::all_signals(store.conn()).unwrap().remove(0)
    };
    assert_eq!(store::insert_signal(store.conn(), &cli).unwrap(), None);
    let rows = store::all_signals(store.conn()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, row);
    assert_eq!(rows[0].dedup_key.as_deref(), Some("id:tv-1"));
    assert!(payload::check_id(&"a".repeat(65)).is_err());
}

/// Item of the exactly-once promise below the inbox: the step that opens a trade for a signal
/// (one transaction: the trade, then the signal marked taken) can succeed once per signal.
#[test]
fn a_signal_opens_at_most_one_trade_even_if_taken_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("fillguard.db")).unwrap();
    let signal = parse(&body(GOOD), &watchlist()).unwrap();
    let Outcome::Accepted { signal: row } = store_signal(&store, &signal, 1) else {
        panic!("not accepted");
    };
    let open = |store: &mut Store, trade_id: i64, signal_id: Option<i64>| {
        let mut view = crate::store::tests::view(trade_id);
        view.trade.signal_id = signal_id;
        store.transaction(|conn| {
            store::save_view(conn, &view)?;
            store::settle_signal(conn, row, store::SignalStatus::Taken, None, Some(trade_id))
        })
    };
    open(&mut store, 1, Some(row)).unwrap();
    // Taken again under another trade: the signal is no longer NEW, the whole step fails.
    let again = open(&mut store, 2, None).unwrap_err();
    assert!(again.to_string().contains("not new"), "{again}");
    // And a second trade naming the same signal is refused by the schema itself.
    let twice = store
        .transaction(|conn| {
            let mut view = crate::store::tests::view(3);
            view.trade.signal_id = Some(row);
            store::save_view(conn, &view)
        })
        .unwrap_err();
    assert!(twice.to_string().contains("UNIQUE"), "{twice}");
    assert!(
        store::load_view(store.conn(), 2).is_err(),
        "trade 2 rolled back"
    );
    assert!(
        store::load_view(store.conn(), 3).is_err(),
        "trade 3 rolled back"
    );
    let rows = store::all_signals(store.conn()).unwrap();
    assert_eq!((rows.len(), rows[0].trade_id), (1, Some(1)));
}
