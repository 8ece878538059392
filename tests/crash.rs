//! SIGKILL of the real `fillguard run` (`venue.kind = "cryptocom"`) at reproducible
//! pseudo-random moments, more than fifty times, against one long-lived `fillguard sim-exchange`
//! on 127.0.0.1, then a clean final run. After every kill the simulator's book (the exchange's
//! side of the truth) is checked against the SQLite store: S1 at most one live stop-loss and one
//! live take-profit per trade, S5 every order with fillguard's prefix known to the store, S6 one
//! entry order per trade and one trade per signal. After the final run every filled entry is
//! protected (one live leg of each kind), closed, or halted with a CRITICAL alert naming it, and
//! trading has resumed.

mod common;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::Value;

use fillguard::core::ids::{CLIENT_OID_PREFIX, Role, parse_client_oid};
use fillguard::core::trade::{TradeState, TradeView};
use fillguard::store::{self, Store};

use common::{LIVE_STATUSES, SimExchange, Workspace, next_random, watchlist_entry};

const API_KEY: &str = "crash-key";
const API_SECRET: &str = "crash-secret-0123456789";
const FAULTS: &str = "latency=20,fill_delay=300";
const SIM_SEED: &str = "23";
/// Seeds the kill moments and the number of signals per round.
const KILL_SEED: u64 = 0xC0FF_EE15;
const ROUNDS: usize = 51;
const MODES: [&str; 3] = ["oco", "otoco", "separate"];
const SIDES: [&str; 2] = ["BUY", "SELL"];
/// Symbol, start price, raised price (+4 %: past every take-profit of a buy and every stop of
/// a sell opened at the start price, and back).
const SYMBOLS: [(&str, &str, &str); 2] =
    [("BTC_USDT", "60000", "62400"), ("ETH_USDT", "3000", "3120")];
/// Every this many rounds the price moves (up, then back), so protective legs fill and trades
/// close while the agent is being killed.
const PRICE_PERIOD: usize = 6;
/// A round queues no signal while this many are still waiting in the inbox: a run killed early
/// is busy reconciling and takes few signals, and an unbounded backlog would open dozens of
/// trades in the final run (each watched every half second).
const BACKLOG_MAX: usize = 4;
/// Bound on the final clean run. It ends (SIGTERM) as soon as every trade is settled; an entry
/// whose send may have gone out before a kill settles only after the 60 s nonce window.
const FINAL_RUN_MAX: Duration = Duration::from_secs(150);

/// The simulator, running for the whole test and killed on drop (also when a check panics),
/// and the temporary workspace holding the configuration, the secret, the database and the
/// agent's log. The simulator is dropped before the workspace is removed.
struct Simulator {
    sim: SimExchange,
    workspace: Workspace,
}

impl Simulator {
    fn start() -> Simulator {
        let watchlist: String = SYMBOLS
            .iter()
            .map(|(symbol, _, _)| watchlist_entry(symbol, "50", "2", "3"))
            .collect();
        let mut workspace = Workspace::new(&format!(
            "[loop]\ninterval_seconds = 0.2\n[poll]\ninterval_seconds = 0.3\ndeadline_seconds = 10\n[protection]\nwatch_interval_seconds = 0.5\n[signals]\nallow_concurrent_trades = true\n[paper]\nvolatility = \"0\"\n{watchlist}"
        ));
        let sim = SimExchange::start(&mut workspace, SIM_SEED, FAULTS, API_KEY, API_SECRET);
        Simulator { sim, workspace }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.workspace.path(name)
    }

    fn run_ok(&self, args: &[&str]) -> String {
        self.workspace.run_ok(args)
    }

    /// The agent in `mode`, its log appended to `agent.log`.
    fn agent(&self, args: &[&str], mode: &str) -> Command {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path("agent.log"))
            .unwrap();
        let mut command = self.workspace.command(args);
        command
            .env("FILLGUARD_PROTECTION__MODE", mode)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(log);
        command
    }

    /// Queues the `number`th signal: symbols and sides alternate so every pair comes up.
    fn signal(&self, number: usize) {
        let symbol = SYMBOLS[number % 2].0;
        let side = SIDES[(number / 2) % 2];
        self.workspace.signal(symbol, side, "50");
    }

    fn book(&self) -> Vec<BookOrder> {
        self.sim
            .book()
            .iter()
            .filter_map(BookOrder::parse)
            .collect()
    }

    fn store(&self) -> Store {
        self.workspace.store()
    }

    /// Lines of the agent's log about the trade, without colour codes.
    fn log_about(&self, trade_id: i64) -> Vec<String> {
        let (oid, field) = (
            format!("{CLIENT_OID_PREFIX}{trade_id}-"),
            format!("trade_id={trade_id} "),
        );
        let log = std::fs::read_to_string(self.path("agent.log")).unwrap_or_default();
        log.lines()
            .map(without_colours)
            .filter(|line| line.contains(&oid) || line.contains(&field))
            .collect()
    }
}

/// The line without ANSI escape sequences (`ESC [ ... letter`).
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(char::is_ascii_alphabetic);
        } else {
            plain.push(c);
        }
    }
    plain
}

/// One order of ours on the simulator's book.
#[derive(Debug)]
struct BookOrder {
    trade_id: i64,
    role: Role,
    client_oid: String,
    status: String,
    cumulative: Decimal,
}

impl BookOrder {
    /// `None` for an order without fillguard's prefix; an order with the prefix must parse.
    fn parse(order: &Value) -> Option<BookOrder> {
        let client_oid = order["client_oid"].as_str().unwrap_or("");
        if !client_oid.starts_with(CLIENT_OID_PREFIX) {
            return None;
        }
        let parsed = parse_client_oid(client_oid)
            .unwrap_or_else(|| panic!("malformed client_oid with our prefix: {order}"));
        let (trade_id, role) = (parsed.trade_id, parsed.role);
        Some(BookOrder {
            trade_id,
            role,
            client_oid: client_oid.to_string(),
            status: order["status"].as_str().unwrap_or("").to_string(),
            cumulative: order["cumulative_quantity"]
                .as_str()
                .unwrap_or("0")
                .parse()
                .unwrap(),
        })
    }

    fn is_live(&self) -> bool {
        LIVE_STATUSES.contains(&self.status.as_str())
    }
}

/// Live protective legs per trade and role on the book.
fn live_legs(book: &[BookOrder]) -> BTreeMap<(i64, Role), usize> {
    let mut live = BTreeMap::new();
    for order in book {
        if order.role.is_protective() && order.is_live() {
            *live.entry((order.trade_id, order.role)).or_default() += 1;
        }
    }
    live
}

fn views(store: &Store) -> Vec<TradeView> {
    store::all_trade_ids(store.conn())
        .unwrap()
        .into_iter()
        .map(|id| store::load_view(store.conn(), id).unwrap())
        .collect()
}

/// Panics with what is known of the trade: the store's view, its events, its orders on the
/// book and the agent's log lines about it.
fn fail(simulator: &Simulator, trade_id: i64, book: &[BookOrder], problem: &str) -> ! {
    let store = simulator.store();
    let view = store::load_view(store.conn(), trade_id).ok();
    let events = store::events_for(store.conn(), trade_id).unwrap_or_default();
    let on_book: Vec<&BookOrder> = book.iter().filter(|o| o.trade_id == trade_id).collect();
    let log = simulator.log_about(trade_id);
    panic!(
        "trade {trade_id}: {problem}\nstore: {view:#?}\nevents: {events:#?}\nbook: {on_book:#?}\nlog:\n{}",
        log.join("\n")
    );
}

/// S1, S5 and S6 after a kill; returns the number of entry orders on the book.
fn check_after_kill(simulator: &Simulator) -> usize {
    let book = simulator.book();
    let store = simulator.store();
    let mut entries: BTreeMap<i64, usize> = BTreeMap::new();
    for order in &book {
        let known = store::knows_client_oid(store.conn(), &order.client_oid).unwrap();
        if !known {
            fail(
                simulator,
                order.trade_id,
                &book,
                "S5: order on the book unknown to the store",
            );
        }
        if order.role == Role::Entry {
            *entries.entry(order.trade_id).or_default() += 1;
        }
    }
    for ((trade_id, role), count) in live_legs(&book) {
        if count > 1 {
            fail(
                simulator,
                trade_id,
                &book,
                &format!("S1: {count} live {role} legs"),
            );
        }
    }
    for (trade_id, count) in &entries {
        if *count > 1 {
            fail(
                simulator,
                *trade_id,
                &book,
                &format!("S6: {count} entry orders"),
            );
        }
    }
    let mut per_signal: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for view in views(&store) {
        if let Some(signal) = view.trade.signal_id {
            per_signal.entry(signal).or_default().push(view.trade.id);
        }
    }
    for (signal, trades) in per_signal {
        if trades.len() > 1 {
            fail(
                simulator,
                trades[1],
                &book,
                &format!("S6: signal {signal} opened trades {trades:?}"),
            );
        }
    }
    entries.len()
}

/// Moves both prices up 4 % in the middle of each period and back at its start. No move up
/// without its move back: the final run begins at the start prices, with few trades opened
/// since the last move (every protected trade is read back each half second).
fn move_prices(simulator: &Simulator, round: usize) {
    let raised = match round % PRICE_PERIOD {
        0 if round > 0 => false,
        phase if phase == PRICE_PERIOD / 2 => true,
        _ => return,
    };
    if raised && round + PRICE_PERIOD / 2 >= ROUNDS {
        return;
    }
    for (symbol, start, high) in SYMBOLS {
        simulator
            .sim
            .set_price(symbol, if raised { high } else { start });
    }
}

/// Open breakers are reset as an operator would, so later rounds keep trading; returns how
/// many were open.
fn reset_open_breakers(simulator: &Simulator) -> usize {
    let open: Vec<String> = store::breakers(simulator.store().conn())
        .unwrap()
        .into_iter()
        .filter(|breaker| breaker.open)
        .map(|breaker| breaker.symbol)
        .collect();
    for symbol in &open {
        simulator.run_ok(&["breaker", "reset", symbol]);
    }
    open.len()
}

fn waiting_signals(simulator: &Simulator) -> usize {
    store::all_signals(simulator.store().conn())
        .unwrap()
        .iter()
        .filter(|signal| signal.status == store::SignalStatus::New)
        .count()
}

/// The state carried from round to round.
struct Rounds {
    random: u64,
    signals: usize,
    resets: usize,
    /// Rounds that queued nothing because of the backlog.
    skipped: usize,
}

/// One round: maybe a price move, one or two signals, the agent started in the round's
/// protection mode and killed with SIGKILL after 100–900 ms, then the checks.
fn kill_round(simulator: &Simulator, round: usize, rounds: &mut Rounds) {
    move_prices(simulator, round);
    let count = 1 + next_random(&mut rounds.random) % 2;
    if waiting_signals(simulator) < BACKLOG_MAX {
        for _ in 0..count {
            simulator.signal(rounds.signals);
            rounds.signals += 1;
        }
    } else {
        rounds.skipped += 1;
    }
    let mode = MODES[round % MODES.len()];
    let mut child = simulator.agent(&["run"], mode).spawn().unwrap();
    let delay_ms = 100 + next_random(&mut rounds.random) % 801;
    std::thread::sleep(Duration::from_millis(delay_ms));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let entries = check_after_kill(simulator);
    rounds.resets += reset_open_breakers(simulator);
    eprintln!("kill {round} ({mode}) after {delay_ms} ms: {entries} entries on the book");
}

/// What the final checks found.
#[derive(Default)]
struct Figures {
    trades: usize,
    entries_filled: usize,
    protective_legs: usize,
    protected: usize,
    closed: usize,
    halts: Vec<String>,
}

/// How often each state transition happened, from the store's audit trail: which steps the
/// kills interrupted and the restarts resumed.
fn transitions(store: &Store) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for trade_id in store::all_trade_ids(store.conn()).unwrap() {
        for (_, kind, detail) in store::events_for(store.conn(), trade_id).unwrap() {
            if kind == "state" {
                let step = detail.split(" on ").next().unwrap_or("").to_string();
                *counts.entry(step).or_default() += 1;
            }
        }
    }
    counts
}

fn has_critical_alert(store: &Store, trade_id: i64) -> bool {
    store::all_alerts(store.conn())
        .unwrap()
        .iter()
        .any(|alert| alert.severity == "CRITICAL" && alert.trade_id == Some(trade_id))
}

/// Whether the trade's protection was placed without its take-profit (WARNING alert).
fn target_skipped(store: &Store, trade_id: i64) -> bool {
    store::all_alerts(store.conn())
        .unwrap_or_default()
        .iter()
        .any(|alert| {
            alert
                .key
                .starts_with(&format!("target-skipped-{trade_id}-"))
        })
}

/// S3 and L1 after the final run: every trade settled, every filled entry protected by exactly
/// one live leg of each kind, closed, or halted with a CRITICAL alert naming it; a trade closed
/// without a fill has no filled entry on the book.
fn check_settled(simulator: &Simulator) -> Figures {
    check_after_kill(simulator);
    let book = simulator.book();
    let store = simulator.store();
    let live = live_legs(&book);
    let mut figures = Figures {
        protective_legs: book.iter().filter(|o| o.role.is_protective()).count(),
        ..Figures::default()
    };
    for view in views(&store) {
        let trade = &view.trade;
        let filled_on_book = book
            .iter()
            .any(|o| o.trade_id == trade.id && o.role == Role::Entry && !o.cumulative.is_zero());
        let filled = filled_on_book || !trade.filled_quantity.is_zero();
        let legs = |role| live.get(&(trade.id, role)).copied().unwrap_or(0);
        let (stops, targets) = (legs(Role::StopLoss), legs(Role::TakeProfit));
        figures.trades += 1;
        figures.entries_filled += usize::from(filled_on_book);
        match trade.state {
            TradeState::Protected if filled && (stops, targets) == (1, 1) => figures.protected += 1,
            // The price had passed the target when protection was placed: the stop alone.
            TradeState::Protected
                if filled && (stops, targets) == (1, 0) && target_skipped(&store, trade.id) =>
            {
                figures.protected += 1
            }
            TradeState::Closed if trade.filled_quantity.is_zero() && filled_on_book => fail(
                simulator,
                trade.id,
                &book,
                "closed as unfilled, but its entry filled on the exchange",
            ),
            TradeState::Closed if filled && (stops, targets) != (0, 0) => fail(
                simulator,
                trade.id,
                &book,
                "closed with live protective legs on the book",
            ),
            TradeState::Closed => figures.closed += 1,
            TradeState::Halted | TradeState::Recovering if has_critical_alert(&store, trade.id) => {
                let reason = trade.close_reason.clone().unwrap_or_default();
                figures
                    .halts
                    .push(format!("{} {}: {reason}", trade.id, trade.symbol));
            }
            state => fail(
                simulator,
                trade.id,
                &book,
                &format!(
                    "not settled: {state:?}, filled {filled}, live legs {stops} SL / {targets} TP"
                ),
            ),
        }
    }
    figures
}

/// Lets the final run work until a trade has opened in it and every trade is settled
/// (finished or protected), at most `FINAL_RUN_MAX`; then stops it with SIGTERM. What is not
/// settled by then is reported by `check_settled`.
fn stop_when_settled(
    simulator: &Simulator,
    mut child: Child,
    before: usize,
) -> std::process::ExitStatus {
    let started = Instant::now();
    while started.elapsed() < FINAL_RUN_MAX {
        std::thread::sleep(Duration::from_millis(500));
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        let trades = views(&simulator.store());
        let settled = trades.iter().all(|view| {
            view.trade.state.is_terminal() || view.trade.state == TradeState::Protected
        });
        if trades.len() > before && settled {
            break;
        }
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    child.wait().unwrap()
}

/// The final clean run, after the operator reset the breakers and one more signal: trading
/// must resume (a trade opened in this run). Returns what became of the last signal.
fn final_run(simulator: &Simulator, rounds: &mut Rounds) -> String {
    rounds.resets += reset_open_breakers(simulator);
    let before = views(&simulator.store()).len();
    simulator.signal(rounds.signals);
    rounds.signals += 1;
    let mode = MODES[ROUNDS % MODES.len()];
    let child = simulator.agent(&["run"], mode).spawn().unwrap();
    let status = stop_when_settled(simulator, child, before);
    assert!(status.success(), "final run failed: {status:?}");
    let store = simulator.store();
    let after = views(&store).len();
    let signals = store::all_signals(store.conn()).unwrap();
    let last = signals.last().expect("signals were queued");
    assert!(
        after > before,
        "trading did not resume after the kills: {before} trades before, {after} after, last signal {last:#?}"
    );
    match (last.trade_id, &last.reason) {
        (Some(trade_id), _) => format!("opened trade {trade_id}"),
        (None, reason) => format!("{} ({reason:?})", last.status.as_str()),
    }
}

#[test]
fn sigkill_fifty_times_against_the_exchange_simulator() {
    let started = Instant::now();
    let simulator = Simulator::start();
    let mut rounds = Rounds {
        random: KILL_SEED,
        signals: 0,
        resets: 0,
        skipped: 0,
    };
    for round in 0..ROUNDS {
        kill_round(&simulator, round, &mut rounds);
    }
    let killing = started.elapsed();
    let last_signal = final_run(&simulator, &mut rounds);
    let finishing = started.elapsed() - killing;
    let figures = check_settled(&simulator);
    eprintln!(
        "crash test: {ROUNDS} kills, {} signals ({} rounds queued none: backlog), {} trades, {} entries filled, {} protective legs placed, {} live protected trades, {} closed, {} breaker resets; last signal: {last_signal}",
        rounds.signals,
        rounds.skipped,
        figures.trades,
        figures.entries_filled,
        figures.protective_legs,
        figures.protected,
        figures.closed,
        rounds.resets,
    );
    for (step, count) in transitions(&simulator.store()) {
        eprintln!("  {count:3} x {step}");
    }
    eprintln!("crash test: {} halts", figures.halts.len());
    for halt in &figures.halts {
        eprintln!("  halted: {halt}");
    }
    eprintln!(
        "crash test: {:.1} s in all ({:.1} s of kills, {:.1} s of final run)",
        started.elapsed().as_secs_f64(),
        killing.as_secs_f64(),
        finishing.as_secs_f64()
    );
}
