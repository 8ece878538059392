//! Tests of the saved paper account: what the account file and the price history file hold,
//! and what a reopened account (after a kill, or saved by an older version) looks like.

use std::cell::Cell;
use std::time::Duration;

use super::tests::{TestClock, config, decimal, request};
use super::*;
use crate::core::domain::{OrderType, Side};

const START_MS: Millis = 1_700_000_000_000;
const MINUTE_MS: Millis = 60_000;

/// A moving price, and candles reaching ten minutes back.
fn moving() -> PaperSettings {
    let mut settings = config();
    settings.volatility = decimal("0.002");
    settings.lookback = Some(Duration::from_secs(600));
    settings
}

fn clock_at(now_ms: Millis) -> Rc<TestClock> {
    Rc::new(TestClock {
        now_ms: Cell::new(now_ms),
    })
}

/// Everything a reopened account must have kept, read through the venue.
type Seen = (
    Millis,
    Vec<OrderReport>,
    Vec<OrderReport>,
    Decimal,
    Vec<Candle>,
);

fn seen(venue: &mut PaperVenue) -> Seen {
    let candles = venue.candles("ETH_USD", 60, 8).expect("candles");
    (
        venue.engine().now_ms(),
        venue.engine().book(),
        venue.open_orders().expect("open"),
        venue.free_balance("USD").expect("balance"),
        candles,
    )
}

#[test]
fn lookback_bounds_the_price_history_and_warm_up() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("a.paper.json");
    let clock = clock_at(START_MS);
    let mut venue = PaperVenue::open(moving(), clock.clone(), state).expect("open");
    // 600 s of candles at one step a second, plus the candle still open.
    assert!(venue.engine().history_len("ETH_USD") <= 602);
    assert_eq!(venue.candles("ETH_USD", 60, 8).expect("candles").len(), 8);
    clock.advance(3 * 60 * MINUTE_MS);
    assert_eq!(venue.candles("ETH_USD", 60, 8).expect("candles").len(), 8);
    assert_eq!(venue.engine().history_len("ETH_USD"), 602);
}

#[test]
fn an_order_does_not_rewrite_the_price_history() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("a.paper.json");
    let mut settings = moving();
    settings.lookback = None;
    let clock = clock_at(START_MS);
    let mut venue = PaperVenue::open(settings, clock.clone(), state.clone()).expect("open");
    clock.advance(MINUTE_MS);
    let prices_before = std::fs::read(history_path(&state)).expect("prices saved");
    venue
        .create_order(&request("buy", Side::Buy, OrderType::Market))
        .expect("accepted");
    let account = std::fs::read(&state).expect("account saved");
    // Two hours of steps are in the prices file, none in the account file.
    assert!(prices_before.len() > 100_000, "{}", prices_before.len());
    assert!(
        account.len() < 4_000,
        "account file of {} bytes",
        account.len()
    );
    let prices_after = std::fs::read(history_path(&state)).expect("prices saved");
    assert_eq!(prices_before, prices_after);
}

#[test]
fn a_killed_account_reopens_with_its_orders_balances_time_and_candles() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("a.paper.json");
    let clock = clock_at(START_MS);
    let mut venue = PaperVenue::open(moving(), clock.clone(), state.clone()).expect("open");
    clock.advance(5 * MINUTE_MS);
    let mut limit = request("limit", Side::Buy, OrderType::Limit);
    limit.price = Some(decimal("10"));
    venue.create_order(&limit).expect("limit");
    venue
        .create_order(&request("buy", Side::Buy, OrderType::Market))
        .expect("market");
    let saved_ms = venue.engine().now_ms();
    // Reads move the engine on without saving; then the process dies (nothing on drop).
    clock.advance(7 * MINUTE_MS);
    let before = seen(&mut venue);
    drop(venue);
    assert_eq!(
        PaperVenue::saved_time(&state).expect("read"),
        Some(saved_ms)
    );
    let clock = clock_at(saved_ms);
    let mut reopened = PaperVenue::open(moving(), clock.clone(), state).expect("reopen");
    clock.advance(7 * MINUTE_MS);
    let after = seen(&mut reopened);
    assert_eq!(before.4.len(), 8);
    assert_eq!(after, before);
    reopened.engine().check_invariants();
}

#[test]
fn an_account_saved_with_its_history_inside_still_loads() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("old.paper.json");
    let mut settings = moving();
    settings.lookback = None;
    let clock = clock_at(START_MS);
    let mut venue = PaperVenue::new(settings, clock.clone()).expect("venue");
    clock.advance(30 * MINUTE_MS);
    let before = seen(&mut venue);
    // The format of before: every path holds its steps, there is no prices file.
    let mut old = serde_json::to_value(venue.engine()).expect("json");
    let history = serde_json::to_value(venue.engine().history_file()).expect("json");
    for (symbol, saved) in history["paths"].as_object().expect("paths") {
        let path = &mut old["paths"][symbol];
        path["history"] = saved["history"].clone();
        path.as_object_mut().expect("path").remove("history_steps");
    }
    std::fs::write(&state, serde_json::to_vec(&old).expect("bytes")).expect("write");
    assert!(!history_path(&state).exists());
    let mut reopened = PaperVenue::open(moving(), clock.clone(), state.clone()).expect("open");
    assert_eq!(seen(&mut reopened), before);
    // Bounded to the new lookback, and saved in the new form.
    assert!(reopened.engine().history_len("ETH_USD") <= 602);
    assert!(history_path(&state).exists());
}

#[test]
fn an_unreadable_prices_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().expect("dir");
    let state = dir.path().join("a.paper.json");
    let clock = clock_at(START_MS);
    let venue = PaperVenue::open(moving(), clock.clone(), state.clone()).expect("open");
    drop(venue);
    std::fs::write(history_path(&state), b"{ not json").expect("write");
    let error = PaperVenue::open(moving(), clock, state.clone())
        .err()
        .expect("refused");
    assert!(error.contains("a.paper.prices.json"), "{error}");
    assert!(error.contains("delete it"), "{error}");
}
