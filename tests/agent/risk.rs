//! The risk limits in paper runs: each limit drops the signal it refuses, naming itself, and
//! the daily loss limit opens the global breaker while open trades stay protected.

use super::*;
use fillguard::core::breaker::{Breaker, GLOBAL};

impl Harness {
    fn signals(&self) -> Vec<SignalRow> {
        store::all_signals(self.agent.store().conn()).unwrap()
    }

    fn dropped_reasons(&self) -> Vec<String> {
        self.signals()
            .into_iter()
            .filter(|s| s.status == SignalStatus::Dropped)
            .map(|s| s.reason.unwrap_or_default())
            .collect()
    }

    /// Moves the symbol's price by `percent` of the last entry's fill price, then runs.
    fn move_price(&mut self, symbol: &str, percent: i64) {
        let entry = self
            .trades()
            .into_iter()
            .rev()
            .find(|v| v.trade.symbol == symbol)
            .unwrap()
            .trade
            .avg_price;
        let price = entry * (Decimal::ONE_HUNDRED + Decimal::from(percent)) / Decimal::ONE_HUNDRED;
        self.set_price(symbol, &price.round_dp(2).to_string());
        self.run(20);
    }

    fn reset_global_breaker(&mut self) {
        let now = self.clock.now_ms();
        let conn = self.agent.store().conn();
        let mut row = store::breaker(conn, GLOBAL)
            .unwrap()
            .unwrap_or_else(|| Breaker::closed(GLOBAL));
        row.reset();
        store::save_breaker(conn, &row, Some((now, "test"))).unwrap();
        store::record_global_reset(conn, now).unwrap();
    }
}

/// Two BTC trades stopped after a 2 % fall, about 2.2 USDT each with the fees: the first is
/// within the 2.5 USDT limit, the second reaches it.
fn lose_twice_on_btc(harness: &mut Harness) {
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(40);
    harness.move_price("BTC_USDT", -2);
    assert!(
        !harness.breaker_open(GLOBAL),
        "one loss is within the limit"
    );
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(40);
    harness.move_price("BTC_USDT", -2);
    let btc: Vec<_> = harness
        .trades()
        .into_iter()
        .filter(|v| v.trade.symbol == "BTC_USDT")
        .collect();
    assert_eq!(btc.len(), 2);
    assert!(
        btc.iter()
            .all(|v| v.trade.close_reason.as_deref() == Some("stop_loss_filled")),
        "{btc:#?}"
    );
    assert!(
        harness.breaker_open(GLOBAL),
        "the second loss reached the limit"
    );
    let realized = store::realized_since(harness.agent.store().conn(), 0).unwrap()["USDT"];
    assert!(
        realized < Decimal::new(-40, 1) && realized > Decimal::new(-50, 1),
        "two stops 2 % down with fees: {realized}"
    );
    let alerts = harness.critical_alerts();
    let loss_alert: Vec<_> = alerts
        .iter()
        .filter(|a| a.contains("daily loss limit"))
        .collect();
    assert_eq!(loss_alert.len(), 1, "{alerts:#?}");
    assert!(
        loss_alert[0].contains("limit 2.5 USDT"),
        "{}",
        loss_alert[0]
    );
}

#[test]
fn the_daily_loss_limit_opens_the_global_breaker_and_open_trades_stay_protected() {
    let mut harness = harness(&[("FILLGUARD_RISK__DAILY_LOSS_LIMIT__USDT", "2.5")]);
    harness.signal("ETH_USDT", Side::Buy);
    lose_twice_on_btc(&mut harness);

    // Entries stop, on every symbol.
    harness.signal("BTC_USDT", Side::Buy);
    harness.signal("ETH_USDT", Side::Sell);
    harness.run(20);
    assert_eq!(
        harness.trades().len(),
        3,
        "no entry behind the open global breaker"
    );
    let reasons = harness.dropped_reasons();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|r| r.contains("global breaker open: daily_loss_limit")),
        "{reasons:?}"
    );

    // The ETH trade opened before stays protected and its take-profit still closes it.
    let eth = harness
        .trades()
        .into_iter()
        .find(|v| v.trade.symbol == "ETH_USDT")
        .unwrap();
    assert_eq!(eth.trade.state, TradeState::Protected);
    assert_eq!(
        harness.live_protection().len(),
        1,
        "ETH's stop-loss and take-profit rest"
    );
    harness.move_price("ETH_USDT", 3);
    let eth = harness
        .trades()
        .into_iter()
        .find(|v| v.trade.symbol == "ETH_USDT")
        .unwrap();
    assert_eq!(
        eth.trade.close_reason.as_deref(),
        Some("take_profit_filled")
    );
    // Checked again every signal check, the breach queues no second alert.
    harness.run(20);
    let count = harness
        .critical_alerts()
        .iter()
        .filter(|a| a.contains("daily loss limit"))
        .count();
    assert_eq!(count, 1);

    // The operator's reset starts a new loss period: trading resumes.
    harness.reset_global_breaker();
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(40);
    assert!(!harness.breaker_open(GLOBAL));
    assert_eq!(harness.trades().len(), 4);
    assert_eq!(harness.trades()[3].trade.state, TradeState::Protected);
}

#[test]
fn max_open_trades_drops_the_signal_and_names_the_limit() {
    let mut harness = harness(&[("FILLGUARD_RISK__MAX_OPEN_TRADES", "1")]);
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(40);
    harness.signal("ETH_USDT", Side::Buy);
    harness.run(20);
    assert_eq!(harness.trades().len(), 1);
    assert_eq!(
        harness.dropped_reasons(),
        ["risk limit max_open_trades: 1 trades open, at most 1"]
    );
    // Once the first trade closes, the next entry goes.
    harness.move_price("BTC_USDT", 3);
    harness.signal("ETH_USDT", Side::Buy);
    harness.run(40);
    assert_eq!(harness.trades().len(), 2);
}

#[test]
fn max_notional_per_order_refuses_an_oversized_signal() {
    let mut harness = harness(&[("FILLGUARD_RISK__MAX_NOTIONAL_PER_ORDER", "100")]);
    let mut signal = SignalRow {
        id: 0,
        symbol: "BTC_USDT".into(),
        side: Side::Buy,
        quantity: Some("0.01".parse().unwrap()),
        notional: None,
        source: "test".into(),
        dedup_key: None,
        created_at_ms: harness.clock.now_ms(),
        status: SignalStatus::New,
        reason: None,
        trade_id: None,
    };
    store::insert_signal(harness.agent.store().conn(), &signal).unwrap();
    signal.quantity = Some("0.001".parse().unwrap());
    store::insert_signal(harness.agent.store().conn(), &signal).unwrap();
    harness.run(40);
    let reasons = harness.dropped_reasons();
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(
        reasons[0].starts_with("risk limit max_notional_per_order: the entry is worth about 600"),
        "{reasons:?}"
    );
    assert_eq!(
        harness.trades().len(),
        1,
        "0.001 BTC (about 60 USDT) is taken"
    );
}

#[test]
fn the_cooldown_holds_a_symbol_after_its_trade_ends() {
    let mut harness = harness(&[("FILLGUARD_RISK__COOLDOWN_SECONDS", "600")]);
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(40);
    harness.move_price("BTC_USDT", 3);
    harness.signal("BTC_USDT", Side::Buy);
    harness.signal("ETH_USDT", Side::Buy);
    harness.run(40);
    let reasons = harness.dropped_reasons();
    assert_eq!(reasons.len(), 1, "ETH is not cooling down: {reasons:?}");
    assert!(
        reasons[0].starts_with("risk limit cooldown: "),
        "{reasons:?}"
    );
    harness.clock.sleep(Duration::from_secs(600));
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(40);
    assert_eq!(harness.trades().len(), 3);
}

#[test]
fn max_entries_per_hour_counts_every_opened_trade() {
    let mut harness = harness(&[
        ("FILLGUARD_RISK__MAX_ENTRIES_PER_HOUR", "2"),
        ("FILLGUARD_SIGNALS__ALLOW_CONCURRENT_TRADES", "true"),
    ]);
    for _ in 0..3 {
        harness.signal("BTC_USDT", Side::Buy);
    }
    harness.run(60);
    assert_eq!(harness.trades().len(), 2);
    let reasons = harness.dropped_reasons();
    assert_eq!(
        reasons,
        ["risk limit max_entries_per_hour: 2 entries in the last hour, at most 2"]
    );
    harness.clock.sleep(Duration::from_secs(3600));
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(40);
    assert_eq!(harness.trades().len(), 3);
}
