//! Built-in strategies in paper runs: the real shell and core against the paper venue on a
//! virtual clock and a real SQLite file. A breakout and an RSI crossing reach the inbox once
//! their candle has closed, with their source and dedup key, and open a trade that ends
//! protected; a candle is acted on once.

mod common;

use common::clock::VirtualClock;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use fillguard::config::{self, Config};
use fillguard::core::clock::Clock;
use fillguard::core::domain::{Millis, Side};
use fillguard::core::trade::TradeState;
use fillguard::shell::Agent;
use fillguard::store::{self, SignalRow, SignalStatus, Store};
use fillguard::venue::paper::PaperVenue;

/// A whole minute, so one-minute candles open on the test's round times.
const START_MS: Millis = 1_759_999_980_000;
const MINUTE_MS: Millis = 60_000;
const SECOND_MS: Millis = 1_000;

struct Harness {
    _dir: tempfile::TempDir,
    agent: Agent,
    paper: Rc<RefCell<PaperVenue>>,
    clock: Rc<VirtualClock>,
}

/// A flat paper market (no volatility) with `strategy_keys` on BTC_USDT and no strategy on
/// ETH_USDT.
fn config(dir: &std::path::Path, strategy_keys: &str) -> Config {
    let toml = format!(
        r#"
[store]
path = "{}/fillguard.db"
[metrics]
listen = "off"
[loop]
interval_seconds = 5
[poll]
interval_seconds = 0.5
deadline_seconds = 10
[paper]
volatility = "0"
fill_delay_ms = 0
[[watchlist]]
symbol = "BTC_USDT"
notional = "100"
stop_loss_pct = "1"
take_profit_pct = "2"
timeframe_seconds = 60
{strategy_keys}
[[watchlist]]
symbol = "ETH_USDT"
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

fn harness(strategy_keys: &str) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), strategy_keys);
    let clock = Rc::new(VirtualClock(Cell::new(START_MS)));
    let dyn_clock: Rc<dyn Clock> = clock.clone();
    let paper = Rc::new(RefCell::new(
        PaperVenue::new(&config.paper, dyn_clock.clone()).unwrap(),
    ));
    let store = Store::open(&config.store.path).unwrap();
    let agent = Agent::new(
        config,
        store,
        Box::new(paper.clone()),
        dyn_clock.clone(),
        dyn_clock,
        Arc::new(AtomicBool::new(false)),
    );
    Harness {
        _dir: dir,
        agent,
        paper,
        clock,
    }
}

impl Harness {
    /// One turn of the agent at `START_MS + offset_ms`.
    fn turn_at(&mut self, offset_ms: Millis) {
        self.clock.0.set(START_MS + offset_ms);
        self.agent.resilient_turn().expect("the turn runs");
    }

    /// BTC_USDT's price from `START_MS + offset_ms` on.
    fn price_at(&mut self, offset_ms: Millis, price: i64) {
        self.clock.0.set(START_MS + offset_ms);
        self.paper
            .borrow_mut()
            .engine_mut()
            .set_price("BTC_USDT", price.into(), START_MS + offset_ms)
            .unwrap();
    }

    fn signals(&self) -> Vec<SignalRow> {
        store::all_signals(self.agent.store().conn()).unwrap()
    }

    fn trade_states(&self) -> Vec<(Side, TradeState)> {
        let conn = self.agent.store().conn();
        store::all_trade_ids(conn)
            .unwrap()
            .into_iter()
            .map(|id| {
                let view = store::load_view(conn, id).unwrap();
                (view.trade.side, view.trade.state)
            })
            .collect()
    }

    /// Turns a second apart from `offset_ms`, so the trade's polls and protection run.
    fn settle(&mut self, offset_ms: Millis) {
        for second in 0..20 {
            self.turn_at(offset_ms + second * SECOND_MS);
        }
    }
}

#[test]
fn a_breakout_signals_once_its_candle_has_closed_and_the_trade_ends_protected() {
    let mut harness = harness("strategy = \"breakout\"\nbreakout_above = 60500");
    for offset_ms in [5 * SECOND_MS, MINUTE_MS + 5 * SECOND_MS, 2 * MINUTE_MS] {
        harness.turn_at(offset_ms);
    }
    // The level is crossed inside the candle that opened at 2 minutes: nothing while it forms.
    harness.price_at(2 * MINUTE_MS + 10 * SECOND_MS, 61_000);
    for offset_ms in [15, 30, 45, 59] {
        harness.turn_at(2 * MINUTE_MS + offset_ms * SECOND_MS);
    }
    assert!(harness.signals().is_empty(), "{:?}", harness.signals());
    // It closed above the level, after one at it: one BUY.
    harness.settle(3 * MINUTE_MS);
    let signals = harness.signals();
    assert_eq!(signals.len(), 1, "{signals:?}");
    let signal = &signals[0];
    assert_eq!(signal.side, Side::Buy);
    assert_eq!(signal.source, "breakout");
    let key = format!("breakout:BTC_USDT:{}", START_MS + 2 * MINUTE_MS);
    assert_eq!(signal.dedup_key.as_deref(), Some(key.as_str()));
    assert_eq!(signal.status, SignalStatus::Taken);
    assert_eq!(harness.trade_states(), [(Side::Buy, TradeState::Protected)]);
    // The next candles close above the level too: no new crossing, no new signal.
    harness.settle(4 * MINUTE_MS);
    harness.settle(5 * MINUTE_MS);
    assert_eq!(harness.signals().len(), 1);
}

#[test]
fn an_rsi_leaving_the_oversold_zone_buys_on_the_closed_candle() {
    let mut harness = harness("strategy = \"rsi\"\nrsi_period = 2");
    // Twelve falling candles (RSI 2 reads twelve): RSI 0 throughout, no signal.
    for minute in 0..13 {
        harness.price_at(minute * MINUTE_MS + SECOND_MS, 60_000 - 100 * minute);
        harness.turn_at(minute * MINUTE_MS + 30 * SECOND_MS);
    }
    assert!(harness.signals().is_empty(), "{:?}", harness.signals());
    // A strong rise inside the candle that opened at 13 minutes: the signal waits for its close.
    harness.price_at(13 * MINUTE_MS + 10 * SECOND_MS, 62_000);
    harness.turn_at(13 * MINUTE_MS + 50 * SECOND_MS);
    assert!(harness.signals().is_empty(), "{:?}", harness.signals());
    harness.settle(14 * MINUTE_MS);
    let signals = harness.signals();
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert_eq!(signals[0].side, Side::Buy);
    assert_eq!(signals[0].source, "rsi");
    let key = format!("rsi:BTC_USDT:{}", START_MS + 13 * MINUTE_MS);
    assert_eq!(signals[0].dedup_key.as_deref(), Some(key.as_str()));
    assert_eq!(harness.trade_states(), [(Side::Buy, TradeState::Protected)]);
}

/// A crossing found late (the agent was down, the exchange was out) is as old as its candle:
/// the signal is born at the candle's close, so `signals.ttl_seconds` counts from there and a
/// stale crossing is dropped, not traded at a later price.
#[test]
fn a_strategy_signal_is_born_at_its_candles_close() {
    let mut harness = harness("strategy = \"breakout\"\nbreakout_above = 60500");
    for offset_ms in [5 * SECOND_MS, MINUTE_MS + 5 * SECOND_MS, 2 * MINUTE_MS] {
        harness.turn_at(offset_ms);
    }
    harness.price_at(2 * MINUTE_MS + 10 * SECOND_MS, 61_000);
    // The crossing's candle closes at 3 minutes; the agent looks 59 s later.
    harness.turn_at(3 * MINUTE_MS + 59 * SECOND_MS);
    let signals = harness.signals();
    assert_eq!(signals.len(), 1, "{signals:?}");
    assert_eq!(signals[0].created_at_ms, START_MS + 3 * MINUTE_MS);
}
