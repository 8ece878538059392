use std::str::FromStr;

use super::*;
use crate::core::domain::{OrderType, ProtectionMode, VenueStatus};
use crate::core::entry::{EntryContext, EntryRequest, EntrySize, plan_entry};
use crate::core::trade::{OrderStatus, new_order};

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn limits() -> RiskLimits {
    RiskLimits {
        max_open_trades: Some(3),
        max_open_trades_per_symbol: Some(1),
        max_notional_per_order: Some(d("500")),
        cooldown_ms: Some(600_000),
        daily_loss: BTreeMap::from([("USDT".to_string(), d("50"))]),
        max_entries_per_hour: Some(4),
    }
}

const NOW: Millis = 1_700_000_000_000;

fn refused(usage: &RiskUsage, notional: &str) -> Option<Limit> {
    check_entry(&limits(), usage, "USDT", d(notional), NOW)
        .err()
        .map(|refusal| refusal.limit)
}

#[test]
fn an_entry_within_every_limit_passes() {
    assert_eq!(refused(&RiskUsage::default(), "100"), None);
    assert_eq!(
        check_entry(
            &RiskLimits::default(),
            &RiskUsage::default(),
            "USDT",
            d("1e9"),
            NOW
        ),
        Ok(())
    );
}

#[test]
fn each_limit_refuses_and_names_itself() {
    let open = RiskUsage {
        open_trades: 3,
        ..RiskUsage::default()
    };
    assert_eq!(refused(&open, "100"), Some(Limit::MaxOpenTrades));
    let on_symbol = RiskUsage {
        open_trades: 1,
        open_trades_on_symbol: 1,
        ..RiskUsage::default()
    };
    assert_eq!(
        refused(&on_symbol, "100"),
        Some(Limit::MaxOpenTradesPerSymbol)
    );
    assert_eq!(
        refused(&RiskUsage::default(), "500.01"),
        Some(Limit::MaxNotionalPerOrder)
    );
    assert_eq!(refused(&RiskUsage::default(), "500"), None);
    let cooling = RiskUsage {
        last_ended_on_symbol_ms: Some(NOW - 599_999),
        ..RiskUsage::default()
    };
    assert_eq!(refused(&cooling, "100"), Some(Limit::Cooldown));
    let cooled = RiskUsage {
        last_ended_on_symbol_ms: Some(NOW - 600_000),
        ..RiskUsage::default()
    };
    assert_eq!(refused(&cooled, "100"), None);
    let losing = RiskUsage {
        realized: BTreeMap::from([("USDT".to_string(), d("-50"))]),
        ..RiskUsage::default()
    };
    assert_eq!(refused(&losing, "100"), Some(Limit::DailyLoss));
    let busy = RiskUsage {
        entries_last_hour: 4,
        ..RiskUsage::default()
    };
    assert_eq!(refused(&busy, "100"), Some(Limit::MaxEntriesPerHour));
    let refusal = check_entry(&limits(), &busy, "USDT", d("100"), NOW).unwrap_err();
    assert_eq!(
        refusal.to_string(),
        "risk limit max_entries_per_hour: 4 entries in the last hour, at most 4"
    );
}

#[test]
fn a_loss_in_another_quote_asset_does_not_refuse_this_one() {
    let mut limits = limits();
    limits.daily_loss.insert("BTC".into(), d("0.01"));
    let usage = RiskUsage {
        realized: BTreeMap::from([("BTC".to_string(), d("-0.02"))]),
        ..RiskUsage::default()
    };
    assert_eq!(check_entry(&limits, &usage, "USDT", d("100"), NOW), Ok(()));
    let breach = daily_loss_breach(&limits, &usage.realized).unwrap();
    assert_eq!(breach.quote, "BTC");
    assert_eq!(
        breach.to_string(),
        "realized loss today 0.02 BTC, limit 0.01 BTC"
    );
}

#[test]
fn gains_offset_losses_and_a_loss_below_the_limit_is_no_breach() {
    let realized = BTreeMap::from([("USDT".to_string(), d("-49.99"))]);
    assert_eq!(daily_loss_breach(&limits(), &realized), None);
    let gains = BTreeMap::from([("USDT".to_string(), d("120"))]);
    assert_eq!(daily_loss_breach(&limits(), &gains), None);
}

#[test]
fn the_loss_period_starts_at_utc_midnight_or_when_counting_began_again() {
    let midnight = NOW - NOW.rem_euclid(DAY_MS);
    assert_eq!(loss_period_start(NOW, None), midnight);
    assert_eq!(loss_period_start(NOW, Some(midnight - 1)), midnight);
    assert_eq!(loss_period_start(NOW, Some(midnight + 5)), midnight + 5);
    // Never later than now (a clock stepped back since).
    assert_eq!(loss_period_start(NOW, Some(NOW + 1)), NOW);
}

#[test]
fn a_reset_not_yet_seen_releases_the_latch_and_counts_from_now() {
    let latched = LossState {
        reset_marker: Some(5),
        reset_seen: Some(5),
        since_ms: Some(1),
        latched: true,
    };
    assert_eq!(latched.after_resets(NOW), latched, "nothing new");
    // The operator's stamp is on the wall clock, which may be ahead of the agent's.
    let reset = LossState {
        reset_marker: Some(NOW + 3_600_000),
        ..latched
    };
    let after = reset.after_resets(NOW);
    assert_eq!(after.since_ms, Some(NOW));
    assert_eq!(after.reset_seen, Some(NOW + 3_600_000));
    assert!(!after.latched);
}

fn facts(latched: bool, breaker_open: bool, alerted: bool) -> LossFacts {
    LossFacts {
        period_start: 86_400_000,
        latched,
        breaker_open,
        alerted,
        protected_trades: 1,
        open_trades: 2,
    }
}

#[test]
fn a_breach_trips_latches_and_alerts_once_per_period() {
    let loss = BTreeMap::from([("USDT".to_string(), d("-75.5"))]);
    let first = daily_loss_decision(&limits(), &loss, facts(false, false, false));
    let alert = first.alert.unwrap();
    assert!(first.trip && first.latch);
    assert_eq!(alert.severity, Severity::Critical);
    assert_eq!(alert.key, "daily-loss:USDT:86400000");
    assert!(
        alert
            .text
            .contains("realized loss today 75.5 USDT, limit 50 USDT")
    );
    assert!(
        alert
            .text
            .contains("1 protected trades stay watched and protected; 1 other")
    );
    let again = daily_loss_decision(&limits(), &loss, facts(true, true, true));
    assert_eq!((again.alert, again.trip, again.latch), (None, false, true));
}

#[test]
fn a_latched_trip_holds_the_breaker_across_midnight_until_the_operator_resets_it() {
    let none = BTreeMap::new();
    // Closed by something else (the self-check) after midnight: opened again, no alert.
    let held = daily_loss_decision(&limits(), &none, facts(true, false, true));
    assert_eq!((held.alert, held.trip, held.latch), (None, true, true));
    // No latch, no breach: nothing to do.
    let free = daily_loss_decision(&limits(), &none, facts(false, false, false));
    assert_eq!((free.alert, free.trip, free.latch), (None, false, false));
    assert!(!daily_loss_decision(&RiskLimits::default(), &none, facts(false, false, false)).trip);
}

fn entered(side: Side) -> TradeView {
    let instrument = crate::core::trade::tests::instrument();
    let request = EntryRequest {
        symbol: "BTC_USDT".into(),
        side,
        size: EntrySize::Quantity(d("1")),
        stop_loss_pct: Decimal::ONE,
        take_profit_pct: Decimal::TWO,
        mode: ProtectionMode::Oco,
        signal_id: None,
    };
    let context = EntryContext {
        epoch: "",
        instrument: &instrument,
        last_price: Decimal::ONE_HUNDRED,
        free_base: d("10"),
        free_quote: d("1000"),
        symbol_breaker: None,
        global_breaker: None,
        open_trade_on_symbol: false,
        allow_concurrent_trades: false,
    };
    let mut view = plan_entry(1, &request, &context, 1_000).unwrap();
    view.trade.filled_quantity = d("1");
    view.trade.avg_price = d("100");
    view
}

fn leg(
    role: Role,
    side: Side,
    filled: &str,
    price: &str,
    fee: &str,
    currency: &str,
) -> crate::core::trade::Order {
    let mut order = new_order(
        "",
        1,
        role,
        1,
        side,
        OrderType::Market,
        d(filled),
        None,
        None,
    );
    order.status = OrderStatus::Venue(VenueStatus::Filled);
    order.cumulative_quantity = d(filled);
    order.avg_price = d(price);
    order.fee = d(fee);
    order.fee_currency = Some(currency.to_string());
    order
}

#[test]
fn a_stopped_buy_loses_the_move_and_every_fee() {
    let mut view = entered(Side::Buy);
    view.trade.fee = d("0.001");
    view.trade.fee_currency = Some("BTC".into());
    view.orders.push(leg(
        Role::StopLoss,
        Side::Sell,
        "0.999",
        "99",
        "0.0999",
        "USDT",
    ));
    // 0.999 × (99 − 100) − 0.001 BTC × 100 − 0.0999 USDT
    assert_eq!(realized_result(&view, "BTC", "USDT"), Some(d("-1.1989")));
}

#[test]
fn a_sell_entry_gains_when_bought_back_lower() {
    let mut view = entered(Side::Sell);
    view.trade.fee = d("0.1");
    view.trade.fee_currency = Some("USDT".into());
    view.orders
        .push(leg(Role::TakeProfit, Side::Buy, "1", "98", "0.098", "USDT"));
    assert_eq!(realized_result(&view, "BTC", "USDT"), Some(d("1.802")));
}

#[test]
fn a_fee_in_a_third_asset_is_left_out_and_no_fill_is_no_result() {
    let mut view = entered(Side::Buy);
    view.trade.fee = d("3");
    view.trade.fee_currency = Some("CRO".into());
    view.orders
        .push(leg(Role::Exit, Side::Sell, "1", "101", "0", "USDT"));
    assert_eq!(realized_result(&view, "BTC", "USDT"), Some(d("1")));
    view.trade.filled_quantity = Decimal::ZERO;
    assert_eq!(realized_result(&view, "BTC", "USDT"), None);
}

#[test]
fn an_overflowing_result_is_none_not_a_panic() {
    let mut view = entered(Side::Buy);
    view.orders
        .push(leg(Role::Exit, Side::Sell, "1", "1", "0", "USDT"));
    view.orders[1].cumulative_quantity = Decimal::MAX;
    view.trade.avg_price = Decimal::MAX;
    assert_eq!(realized_result(&view, "BTC", "USDT"), None);
}

#[test]
fn a_fill_without_a_price_is_valued_at_the_orders_own_price_or_not_at_all() {
    let mut view = entered(Side::Buy);
    let mut stop = leg(Role::StopLoss, Side::Sell, "1", "0", "0", "USDT");
    stop.trigger_price = Some(d("99"));
    view.orders.push(stop);
    assert_eq!(realized_result(&view, "BTC", "USDT"), Some(d("-1")));
    view.orders[1].trigger_price = None;
    assert_eq!(
        realized_result(&view, "BTC", "USDT"),
        None,
        "not a 100 % loss"
    );
}
