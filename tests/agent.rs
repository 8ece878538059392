//! The real shell and core against the paper venue on a virtual clock and a real SQLite file:
//! every protection mode, the breaker and the failsafe, checked against the venue's book.

mod common;

use common::clock::VirtualClock;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use rust_decimal::Decimal;

use fillguard::config::{self, Config};
use fillguard::core::clock::Clock;
use fillguard::core::domain::{
    Candle, Instrument, ListAck, Millis, OrderAck, OrderReport, OrderRequest, OrderType, Side,
    VenueStatus,
};
use fillguard::core::ids::{Role, parse_client_oid};
use fillguard::core::trade::TradeState;
use fillguard::shell::Agent;
use fillguard::store::{self, SignalRow, SignalStatus, Store};
use fillguard::venue::paper::{EngineReject, FillBehavior, PaperVenue};
use fillguard::venue::{Venue, VenueError};

#[path = "agent/risk.rs"]
mod risk;

const START_MS: Millis = 1_760_000_000_000;

/// Lets the test keep a handle on the paper venue the agent owns; the symbols of its second
/// field are left out of the listing, as if the exchange had stopped listing them.
struct Shared(Rc<RefCell<PaperVenue>>, Vec<&'static str>);

impl Venue for Shared {
    fn name(&self) -> &'static str {
        "paper"
    }
    fn instrument(&mut self, symbol: &str) -> Result<Instrument, VenueError> {
        self.0.borrow_mut().instrument(symbol)
    }
    fn listed_symbols(&mut self) -> Result<std::collections::BTreeSet<String>, VenueError> {
        let mut listed = self.0.borrow_mut().listed_symbols()?;
        listed.retain(|symbol| !self.1.contains(&symbol.as_str()));
        Ok(listed)
    }
    fn last_price(&mut self, symbol: &str) -> Result<Decimal, VenueError> {
        self.0.borrow_mut().last_price(symbol)
    }
    fn candles(&mut self, symbol: &str, tf: u32, count: usize) -> Result<Vec<Candle>, VenueError> {
        self.0.borrow_mut().candles(symbol, tf, count)
    }
    fn free_balance(&mut self, asset: &str) -> Result<Decimal, VenueError> {
        self.0.borrow_mut().free_balance(asset)
    }
    fn create_order(&mut self, order: &OrderRequest) -> Result<OrderAck, VenueError> {
        self.0.borrow_mut().create_order(order)
    }
    fn create_oco(&mut self, sl: &OrderRequest, tp: &OrderRequest) -> Result<ListAck, VenueError> {
        self.0.borrow_mut().create_oco(sl, tp)
    }
    fn create_otoco(
        &mut self,
        entry: &OrderRequest,
        sl: &OrderRequest,
        tp: &OrderRequest,
    ) -> Result<ListAck, VenueError> {
        self.0.borrow_mut().create_otoco(entry, sl, tp)
    }
    fn cancel_order(&mut self, symbol: &str, order_id: &str) -> Result<(), VenueError> {
        self.0.borrow_mut().cancel_order(symbol, order_id)
    }
    fn cancel_list(&mut self, symbol: &str, list_id: &str) -> Result<(), VenueError> {
        self.0.borrow_mut().cancel_list(symbol, list_id)
    }
    fn order_by_client_oid(&mut self, oid: &str) -> Result<Option<OrderReport>, VenueError> {
        self.0.borrow_mut().order_by_client_oid(oid)
    }
    fn open_orders(&mut self) -> Result<Vec<OrderReport>, VenueError> {
        self.0.borrow_mut().open_orders()
    }
    fn order_history(
        &mut self,
        symbol: &str,
        since_ms: Millis,
    ) -> Result<Vec<OrderReport>, VenueError> {
        self.0.borrow_mut().order_history(symbol, since_ms)
    }
}

struct Harness {
    _dir: tempfile::TempDir,
    agent: Agent,
    paper: Rc<RefCell<PaperVenue>>,
    clock: Rc<VirtualClock>,
}

/// A config with no strategy (signals come from the inbox only); `env` overrides it, as
/// `FILLGUARD_*` variables would.
fn config(dir: &std::path::Path, env: &[(&str, &str)]) -> Config {
    let toml = format!(
        r#"
[store]
path = "{}/fillguard.db"
[metrics]
listen = "off"
[poll]
interval_seconds = 0.5
deadline_seconds = 10
[protection]
watch_interval_seconds = 1.0
[paper]
volatility = "0"
fill_delay_ms = 300
[[watchlist]]
symbol = "BTC_USDT"
strategy = "none"
notional = "100"
stop_loss_pct = "1"
take_profit_pct = "2"
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
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
    config::load_from(Some(&path), &env).expect("valid test configuration")
}

fn harness(env: &[(&str, &str)]) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), env);
    let clock = Rc::new(VirtualClock(Cell::new(START_MS)));
    let dyn_clock: Rc<dyn Clock> = clock.clone();
    let paper = Rc::new(RefCell::new(
        PaperVenue::new(&config.paper, dyn_clock.clone()).unwrap(),
    ));
    let store = Store::open(&config.store.path).unwrap();
    let agent = Agent::new(
        config,
        store,
        Box::new(Shared(paper.clone(), Vec::new())),
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
    fn signal(&mut self, symbol: &str, side: Side) {
        let signal = SignalRow {
            id: 0,
            symbol: symbol.into(),
            side,
            quantity: None,
            notional: Some(Decimal::from(100)),
            source: "test".into(),
            dedup_key: None,
            created_at_ms: self.clock.now_ms(),
            status: SignalStatus::New,
            reason: None,
            trade_id: None,
        };
        store::insert_signal(self.agent.store().conn(), &signal).unwrap();
    }

    fn run(&mut self, ticks: u64) {
        self.agent.run(Some(ticks)).expect("the agent runs");
    }

    fn trades(&self) -> Vec<fillguard::core::trade::TradeView> {
        let conn = self.agent.store().conn();
        store::all_trade_ids(conn)
            .unwrap()
            .into_iter()
            .map(|id| store::load_view(conn, id).unwrap())
            .collect()
    }

    /// How the paper engine treats the symbol's orders from now on.
    fn set_behavior(&mut self, symbol: &str, behavior: FillBehavior) {
        self.paper
            .borrow_mut()
            .engine_mut()
            .set_behavior(symbol, behavior);
    }

    /// Every protective order of the symbol is rejected as the exchange rejects a trigger on
    /// the wrong side of the market.
    fn reject_protection(&mut self, symbol: &str) {
        let behavior = FillBehavior {
            reject_protective: Some(EngineReject::new(229, "INVALID_REF_PRICE")),
            ..FillBehavior::default()
        };
        self.set_behavior(symbol, behavior);
    }

    fn set_price(&mut self, symbol: &str, price: &str) {
        let now = self.clock.now_ms();
        self.paper
            .borrow_mut()
            .engine_mut()
            .set_price(symbol, price.parse().unwrap(), now)
            .unwrap();
    }

    /// Live (open) protective orders on the exchange, per trade id (S1 check).
    fn live_protection(&self) -> BTreeMap<String, usize> {
        let mut count = BTreeMap::new();
        for order in self.paper.borrow().engine().book() {
            let live = !order.status.is_terminal();
            let protective = order.client_oid.contains("-S") || order.client_oid.contains("-T");
            if live && protective {
                *count
                    .entry(order.client_oid[..order.client_oid.rfind('-').unwrap()].to_string())
                    .or_insert(0) += 1;
            }
        }
        count
    }

    fn breaker_open(&self, symbol: &str) -> bool {
        store::breaker(self.agent.store().conn(), symbol)
            .unwrap()
            .is_some_and(|b| b.open)
    }

    fn critical_alerts(&self) -> Vec<String> {
        store::all_alerts(self.agent.store().conn())
            .unwrap()
            .into_iter()
            .filter(|a| a.severity == "CRITICAL")
            .map(|a| a.text)
            .collect()
    }
}

fn assert_protected_on_the_book(harness: &Harness, mode_take_profit: OrderType) {
    let trades = harness.trades();
    assert_eq!(trades.len(), 2, "{trades:#?}");
    for view in &trades {
        assert_eq!(view.trade.state, TradeState::Protected, "{view:#?}");
    }
    let book = harness.paper.borrow().engine().book();
    for view in &trades {
        let legs: Vec<&OrderReport> = book
            .iter()
            .filter(|o| {
                parse_client_oid(&o.client_oid).is_some_and(|parsed| {
                    parsed.trade_id == view.trade.id && parsed.role.is_protective()
                })
            })
            .collect();
        assert_eq!(legs.len(), 2, "exactly one SL and one TP: {legs:#?}");
        let stop = legs
            .iter()
            .find(|o| o.order_type == OrderType::StopLoss)
            .unwrap();
        let profit = legs
            .iter()
            .find(|o| o.order_type == mode_take_profit)
            .unwrap();
        assert_eq!(stop.side, view.trade.side.opposite());
        assert_eq!(profit.side, view.trade.side.opposite());
        assert_eq!(Some(stop.quantity), view.trade.protect_quantity);
        assert!(!stop.status.is_terminal() && !profit.status.is_terminal());
    }
}

fn protects_buy_and_sell(mode: &str, take_profit_type: OrderType) {
    let mut harness = harness(&[("FILLGUARD_PROTECTION__MODE", mode)]);
    harness.signal("BTC_USDT", Side::Buy);
    harness.signal("ETH_USDT", Side::Sell);
    harness.run(40);
    assert_protected_on_the_book(&harness, take_profit_type);
}

#[test]
fn oco_mode_protects_buy_and_sell_entries() {
    protects_buy_and_sell("oco", OrderType::Limit);
}

#[test]
fn otoco_mode_protects_buy_and_sell_entries() {
    protects_buy_and_sell("otoco", OrderType::TakeProfit);
}

#[test]
fn separate_mode_protects_and_cancels_the_sibling_on_a_fill() {
    protects_buy_and_sell("separate", OrderType::TakeProfit);
    let mut harness = harness(&[("FILLGUARD_PROTECTION__MODE", "separate")]);
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(40);
    let entry_price = harness.trades()[0].trade.avg_price;
    // Drive the price through the stop: the stop fills and the take-profit is cancelled.
    harness.set_price(
        "BTC_USDT",
        &(entry_price * Decimal::new(97, 2)).round_dp(2).to_string(),
    );
    harness.run(20);
    let view = &harness.trades()[0];
    assert_eq!(view.trade.state, TradeState::Closed, "{view:#?}");
    assert_eq!(view.trade.close_reason.as_deref(), Some("stop_loss_filled"));
    assert!(
        harness.live_protection().is_empty(),
        "{:?}",
        harness.live_protection()
    );
}

#[test]
fn oco_take_profit_closes_the_trade() {
    let mut harness = harness(&[]);
    harness.signal("ETH_USDT", Side::Buy);
    harness.run(40);
    let entry_price = harness.trades()[0].trade.avg_price;
    harness.set_price(
        "ETH_USDT",
        &(entry_price * Decimal::new(103, 2)).round_dp(2).to_string(),
    );
    harness.run(20);
    let view = &harness.trades()[0];
    assert_eq!(
        view.trade.close_reason.as_deref(),
        Some("take_profit_filled")
    );
    assert!(harness.live_protection().is_empty());
}

#[test]
fn breaker_blocks_new_entries_on_its_symbol_only_and_never_protection() {
    let mut harness = harness(&[]);
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(40);
    fillguard::shell::trip_breaker(harness.agent.store().conn(), "BTC_USDT", "manual", START_MS)
        .unwrap();
    // An open trade keeps its protection managed: cancel its stop outside fillguard.
    let stop_id = harness
        .paper
        .borrow()
        .engine()
        .book()
        .into_iter()
        .find(|o| o.order_type == OrderType::StopLoss)
        .unwrap()
        .order_id;
    let now = harness.clock.now_ms();
    harness
        .paper
        .borrow_mut()
        .engine_mut()
        .cancel_externally(&stop_id, now)
        .unwrap();
    harness.signal("BTC_USDT", Side::Buy);
    harness.signal("ETH_USDT", Side::Buy);
    harness.run(60);
    let trades = harness.trades();
    assert_eq!(trades.len(), 2, "BTC entry blocked, ETH entry taken");
    assert!(
        trades
            .iter()
            .all(|v| v.trade.state == TradeState::Protected),
        "{trades:#?}"
    );
    assert_eq!(
        trades[0].trade.generation, 2,
        "BTC re-protected behind an open breaker"
    );
    let signals = store::all_signals(harness.agent.store().conn()).unwrap();
    let blocked = signals
        .iter()
        .find(|s| s.status == SignalStatus::Dropped)
        .unwrap();
    assert!(
        blocked.reason.as_deref().unwrap().contains("breaker"),
        "{blocked:?}"
    );
}

#[test]
fn rejected_protection_trips_the_breaker_and_raises_a_critical_alert() {
    let mut harness = harness(&[]);
    harness.reject_protection("BTC_USDT");
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(40);
    let view = &harness.trades()[0];
    // The position exists: the trade keeps retrying protection behind its open breaker.
    assert_eq!(view.trade.state, TradeState::Recovering, "{view:#?}");
    assert!(harness.breaker_open("BTC_USDT"));
    assert!(!harness.breaker_open("ETH_USDT"));
    let alerts = harness.critical_alerts();
    let entry = &view.orders[0].client_oid;
    assert!(!alerts.is_empty());
    assert!(
        alerts[0].contains("code 229") && alerts[0].contains(entry.as_str()),
        "{}",
        alerts[0]
    );
}

#[test]
fn failsafe_flatten_market_exits_the_unprotected_quantity() {
    let mut harness = harness(&[("FILLGUARD_FAILSAFE__FLATTEN", "true")]);
    harness.reject_protection("BTC_USDT");
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(40);
    let view = &harness.trades()[0];
    assert_eq!(view.trade.state, TradeState::Closed, "{view:#?}");
    assert!(
        view.trade
            .close_reason
            .as_deref()
            .unwrap()
            .starts_with("flattened")
    );
    let exit_oid = view
        .orders
        .iter()
        .find(|order| order.role == Role::Exit)
        .map(|order| order.client_oid.clone())
        .expect("an exit order");
    let exit = harness
        .paper
        .borrow()
        .engine()
        .order_by_client_oid(&exit_oid)
        .expect("exit order on the book");
    assert_eq!(exit.status, VenueStatus::Filled);
    assert_eq!(
        Some(exit.quantity),
        view.trade.protect_quantity.or(Some(exit.quantity))
    );
    assert!(harness.breaker_open("BTC_USDT"));
}

#[test]
fn partial_entry_fill_then_expiry_protects_only_what_filled() {
    let mut harness = harness(&[]);
    let behavior = FillBehavior {
        partial_fill_fraction: Some(Decimal::new(4, 1)),
        expire_after_partial: true,
        ..FillBehavior::default()
    };
    harness.set_behavior("BTC_USDT", behavior);
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(40);
    let view = &harness.trades()[0];
    assert_eq!(view.trade.state, TradeState::Protected, "{view:#?}");
    let entry = &view.orders[0];
    assert!(entry.cumulative_quantity < entry.quantity);
    assert!(view.trade.protect_quantity.unwrap() <= entry.cumulative_quantity);
}

#[test]
fn stale_and_unknown_signals_are_dropped_with_a_reason() {
    let mut harness = harness(&[]);
    let conn = harness.agent.store().conn();
    let stale = SignalRow {
        id: 0,
        symbol: "BTC_USDT".into(),
        side: Side::Buy,
        quantity: None,
        notional: Some(Decimal::from(100)),
        source: "test".into(),
        dedup_key: None,
        created_at_ms: START_MS - 3_600_000,
        status: SignalStatus::New,
        reason: None,
        trade_id: None,
    };
    store::insert_signal(conn, &stale).unwrap();
    let unknown = SignalRow {
        symbol: "DOGE_USDT".into(),
        created_at_ms: START_MS,
        ..stale
    };
    store::insert_signal(conn, &unknown).unwrap();
    harness.run(3);
    let signals = store::all_signals(harness.agent.store().conn()).unwrap();
    assert!(signals.iter().all(|s| s.status == SignalStatus::Dropped));
    assert!(signals[0].reason.as_deref().unwrap().starts_with("stale"));
    assert!(signals[1].reason.as_deref().unwrap().contains("watchlist"));
    assert!(harness.trades().is_empty());
}

#[test]
fn a_database_locked_by_another_process_delays_the_entry_and_nothing_is_sent_twice() {
    let mut harness = harness(&[]);
    harness.signal("BTC_USDT", Side::Buy);
    let path = harness.agent.store().conn().path().unwrap().to_string();
    let operator = rusqlite::Connection::open(&path).unwrap();
    operator.execute_batch("BEGIN IMMEDIATE").unwrap();
    // The write of the new trade waits out the busy timeout, then the turn is abandoned.
    harness
        .agent
        .resilient_turn()
        .expect("a busy database is waited out");
    assert!(harness.trades().is_empty());
    assert!(
        harness.paper.borrow().engine().book().is_empty(),
        "nothing sent without its intent stored"
    );
    operator.execute_batch("ROLLBACK").unwrap();
    harness.run(30);
    assert_eq!(harness.trades().len(), 1);
    assert_eq!(harness.trades()[0].trade.state, TradeState::Protected);
    assert_eq!(
        harness.paper.borrow().engine().book().len(),
        3,
        "one entry, one SL, one TP"
    );
}

#[test]
fn a_clock_stepped_back_across_a_restart_leaves_no_trade_unwatched() {
    let mut harness = harness(&[]);
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(20);
    assert_eq!(harness.trades()[0].trade.state, TradeState::Protected);
    // Restart with the system clock ten minutes behind: every stored due time lies ten
    // minutes ahead, beyond any delay fillguard schedules.
    let behind = Rc::new(VirtualClock(Cell::new(harness.clock.now_ms() - 600_000)));
    let behind_clock: Rc<dyn Clock> = behind.clone();
    let config = config(harness._dir.path(), &[]);
    let store = Store::open(&config.store.path).unwrap();
    harness.agent = Agent::new(
        config,
        store,
        Box::new(Shared(harness.paper.clone(), Vec::new())),
        behind_clock.clone(),
        behind_clock,
        Arc::new(AtomicBool::new(false)),
    );
    let stop = harness.trades()[0]
        .orders
        .iter()
        .find(|o| o.role == fillguard::core::ids::Role::StopLoss)
        .unwrap()
        .trigger_price
        .unwrap();
    harness.set_price("BTC_USDT", &(stop - Decimal::ONE).to_string());
    harness.run(3);
    let view = &harness.trades()[0];
    assert_eq!(view.trade.state, TradeState::Closed, "{view:#?}");
    assert_eq!(view.trade.close_reason.as_deref(), Some("stop_loss_filled"));
    assert!(
        behind.now_ms() < START_MS,
        "seen within seconds, not after ten minutes"
    );
}

/// Failure isolation: one trade whose stored rows were edited by hand into something the agent
/// cannot use is halted (CRITICAL alert, its symbol's breaker) while every other trade goes on.
#[test]
fn a_corrupt_row_halts_its_own_trade_and_the_others_stay_protected() {
    let mut harness = harness(&[]);
    harness.signal("BTC_USDT", Side::Buy);
    harness.signal("ETH_USDT", Side::Sell);
    harness.run(40);
    let trades = harness.trades();
    assert!(
        trades
            .iter()
            .all(|view| view.trade.state == TradeState::Protected),
        "{trades:#?}"
    );
    let (btc, eth) = (trades[0].trade.id, trades[1].trade.id);
    harness
        .agent
        .store()
        .conn()
        .execute_batch(&format!(
            "UPDATE orders SET quantity = 'lots' WHERE trade_id = {btc} AND role = 'STOP_LOSS';
             UPDATE trades SET due_ms = 0 WHERE id IN ({btc}, {eth});"
        ))
        .unwrap();
    harness.run(20);
    let conn = harness.agent.store().conn();
    let (state, reason): (String, String) = conn
        .query_row(
            "SELECT state, close_reason FROM trades WHERE id = ?1",
            [btc],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!(
        (state.as_str(), reason.as_str()),
        ("HALTED", "inconsistent_trade")
    );
    assert!(harness.breaker_open("BTC_USDT"));
    assert!(!harness.breaker_open("ETH_USDT"));
    let alerts = harness.critical_alerts();
    assert!(
        alerts.iter().any(
            |text| text.starts_with(&format!("INCONSISTENT TRADE {btc}")) && text.contains("lots")
        ),
        "{alerts:?}"
    );
    let eth_view = store::load_view(conn, eth).unwrap();
    assert_eq!(eth_view.trade.state, TradeState::Protected);
    assert!(
        eth_view.trade.updated_ms > START_MS,
        "the other trade is still watched"
    );
}

/// A trade that keeps failing protection for the same reason re-runs the failsafe on every
/// recovery attempt; its CRITICAL alert is queued once per episode (the outbox's dedup key).
#[test]
fn re_halting_a_trade_for_the_same_reason_queues_one_critical_alert() {
    let mut harness = harness(&[]);
    harness.reject_protection("BTC_USDT");
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(300);
    let view = &harness.trades()[0];
    assert_eq!(view.trade.state, TradeState::Recovering, "{view:#?}");
    let conn = harness.agent.store().conn();
    let raised: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM events WHERE kind = 'alert' AND detail LIKE 'PROTECTION FAILURE%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(raised >= 2, "the failsafe ran again: {raised}");
    let queued: Vec<String> = store::all_alerts(conn)
        .unwrap()
        .into_iter()
        .filter(|alert| alert.text.starts_with("PROTECTION FAILURE"))
        .map(|alert| alert.key)
        .collect();
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert!(
        queued[0].starts_with(&format!("protection-{}-", view.trade.id)),
        "{queued:?}"
    );
}

#[test]
fn run_deletes_old_events_of_closed_trades_and_keeps_an_open_trades() {
    let mut harness = harness(&[("FILLGUARD_STORE__EVENTS_RETENTION_DAYS", "1")]);
    harness.signal("ETH_USDT", Side::Buy);
    harness.run(40);
    let entry_price = harness.trades()[0].trade.avg_price;
    harness.set_price(
        "ETH_USDT",
        &(entry_price * Decimal::new(103, 2)).round_dp(2).to_string(),
    );
    harness.run(20);
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(40);
    let states: Vec<TradeState> = harness.trades().iter().map(|v| v.trade.state).collect();
    assert_eq!(states, vec![TradeState::Closed, TradeState::Protected]);
    let events = |harness: &Harness, trade_id| {
        store::events_for(harness.agent.store().conn(), trade_id)
            .unwrap()
            .len()
    };
    let (closed, open) = (events(&harness, 1), events(&harness, 2));
    assert!(closed > 0 && open > 0, "{closed} {open}");
    // Younger than a day: nothing goes.
    harness.run(5);
    assert_eq!(events(&harness, 1), closed);
    // Two days later both trades' events are old; only the closed trade's go.
    let later = harness.clock.now_ms() + 2 * 86_400_000;
    harness.clock.0.set(later);
    harness.run(5);
    assert_eq!(
        events(&harness, 1),
        0,
        "the closed trade's old events remain"
    );
    assert!(events(&harness, 2) >= open, "the open trade lost events");
}

/// Entry guards only: a symbol the exchange no longer lists is disabled at the next start (its
/// signals dropped naming it), while the trade already open on it stays watched and protected
/// until its stop-loss closes it.
#[test]
fn an_open_trade_on_a_symbol_disabled_at_restart_stays_protected_and_closes_by_its_stop() {
    let mut harness = harness(&[]);
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(20);
    assert_eq!(harness.trades()[0].trade.state, TradeState::Protected);
    let config = config(harness._dir.path(), &[]);
    let store = Store::open(&config.store.path).unwrap();
    let clock: Rc<dyn Clock> = harness.clock.clone();
    harness.agent = Agent::new(
        config,
        store,
        Box::new(Shared(harness.paper.clone(), vec!["BTC_USDT"])),
        clock.clone(),
        clock,
        Arc::new(AtomicBool::new(false)),
    );
    harness.signal("BTC_USDT", Side::Buy);
    harness.run(3);
    let states = harness.agent.watchlist_states();
    assert_eq!(states["BTC_USDT"].as_str(), "disabled", "{states:?}");
    assert_eq!(states["ETH_USDT"].as_str(), "enabled", "{states:?}");
    let conn = harness.agent.store().conn();
    let reason: String = conn
        .query_row(
            "SELECT reason FROM signals ORDER BY id DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(
        reason.starts_with("BTC_USDT is not listed on the exchange"),
        "{reason}"
    );
    assert_eq!(harness.trades().len(), 1, "no second trade");
    assert_eq!(harness.live_protection().len(), 1, "still protected");
    let stop = harness.trades()[0]
        .orders
        .iter()
        .find(|o| o.role == Role::StopLoss)
        .unwrap()
        .trigger_price
        .unwrap();
    harness.set_price("BTC_USDT", &(stop - Decimal::ONE).to_string());
    harness.run(5);
    let view = &harness.trades()[0];
    assert_eq!(view.trade.state, TradeState::Closed, "{view:#?}");
    assert_eq!(view.trade.close_reason.as_deref(), Some("stop_loss_filled"));
}
