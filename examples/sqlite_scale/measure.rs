//! The timings of one phase (with or without the latest migration's indexes) on the built
//! database, each through the store's own functions: the idempotency guard (a new intent's
//! insert, a second live leg refused, an existing order saved again, a client_oid looked
//! up), start-up reconciliation's reads, the loop's per-turn reads, `status` as the command
//! runs it, and the events' retention. Writes run inside one transaction that is rolled
//! back, so both phases see the same rows.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use rust_decimal::Decimal;

use fillguard::cli::status;
use fillguard::core::domain::{OrderType, Side};
use fillguard::core::ids::Role;
use fillguard::core::trade::{Order, OrderStatus, new_order};
use fillguard::store::{self, Store};

use crate::populate::Built;

/// Goal for the database size: ten years at 100 trades a day (365,000 trades) in 1 GiB.
pub const SIZE_GOAL_MIB_PER_THOUSAND: f64 = 2.8;
const GUARD_GOAL: Duration = Duration::from_micros(100);

pub enum Goal {
    None,
    /// The 99th percentile at most this.
    P99(Duration),
}

impl Goal {
    pub fn text(&self) -> String {
        match self {
            Goal::None => "-".into(),
            Goal::P99(limit) => format!("p99 <= {}", human(*limit)),
        }
    }

    pub fn met(&self, row: &Row) -> bool {
        match self {
            Goal::None => true,
            Goal::P99(limit) => row.percentile(99) <= *limit,
        }
    }
}

pub struct Row {
    pub name: String,
    pub goal: Goal,
    samples: Vec<Duration>,
}

impl Row {
    fn new(name: &str, goal: Goal, mut samples: Vec<Duration>) -> Row {
        samples.sort_unstable();
        Row {
            name: name.into(),
            goal,
            samples,
        }
    }

    fn percentile(&self, p: usize) -> Duration {
        let last = self.samples.len().saturating_sub(1);
        self.samples
            .get((last * p).div_ceil(100))
            .copied()
            .unwrap_or_default()
    }

    pub fn figures(&self) -> String {
        if self.samples.len() == 1 {
            return format!("{} (1 run)", human(self.samples[0]));
        }
        format!(
            "p50 {} / p99 {} / max {} ({} calls)",
            human(self.percentile(50)),
            human(self.percentile(99)),
            human(self.samples.last().copied().unwrap_or_default()),
            self.samples.len()
        )
    }
}

fn human(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 1_000.0 {
        format!("{micros:.1} µs")
    } else if micros < 1_000_000.0 {
        format!("{:.2} ms", micros / 1e3)
    } else {
        format!("{:.2} s", micros / 1e6)
    }
}

pub struct Phase {
    pub rows: Vec<Row>,
}

fn timed<T>(work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(Duration, T)> {
    let started = Instant::now();
    let value = work()?;
    Ok((started.elapsed(), value))
}

pub fn phase(path: &Path, built: &Built, calls: usize, with: bool) -> anyhow::Result<Phase> {
    let label = if with { "with" } else { "without" };
    eprintln!("measuring {label} migration 5's indexes");
    let store = Store::open_for_run(path).context("opening as run does")?;
    let mut rows = guard(&store, built, calls)?;
    rows.push(reconciliation(&store, built)?);
    rows.extend(turn_reads(&store)?);
    drop(store);
    rows.extend(status_rows(path, built)?);
    let store = Store::open_for_run(path)?;
    rows.extend(retention(&store)?);
    Ok(Phase { rows })
}

/// A new live protective leg of the `k % n`th open trade, as the core would intend it.
fn leg(open: &[i64], epochs: &[String], k: usize, role: Role, generation: u32) -> (i64, Order) {
    let index = k % open.len();
    let kind = match role {
        Role::StopLoss => OrderType::StopLoss,
        _ => OrderType::TakeProfit,
    };
    let quantity = Decimal::new(4_935, 4);
    let trigger = Some(Decimal::new(10_072, 2));
    let order = new_order(
        &epochs[index],
        open[index],
        role,
        generation,
        Side::Sell,
        kind,
        quantity,
        None,
        trigger,
    );
    (open[index], order)
}

/// The idempotency guard: the statements that make a second attempt of an order impossible.
fn guard(store: &Store, built: &Built, calls: usize) -> anyhow::Result<Vec<Row>> {
    let conn = store.conn();
    let open = &built.open_ids;
    let epochs: Vec<String> = open
        .iter()
        .map(|id| store::load_view(conn, *id).map(|view| view.trade.epoch))
        .collect::<Result<_, _>>()?;
    let leg = |k: usize, role: Role, generation: u32| leg(open, &epochs, k, role, generation);
    conn.execute_batch("BEGIN IMMEDIATE")?;
    // The open trades' stop-losses are cancelled first, so a new live intent may be stored.
    conn.execute(
        "UPDATE orders SET status = 'CANCELED' WHERE role = 'STOP_LOSS' AND trade_id IN
            (SELECT id FROM trades WHERE state NOT IN ('CLOSED', 'HALTED'))",
        [],
    )?;
    let (mut inserts, mut refusals, mut resaves) = (vec![], vec![], vec![]);
    for k in 0..calls {
        let generation = 1_000 + (k / open.len()) as u32;
        let (trade_id, intent) = leg(k, Role::StopLoss, generation);
        let (took, ()) = timed(|| Ok(store::save_order(conn, trade_id, &intent, 1)?))?;
        inserts.push(took);
        conn.execute(
            "UPDATE orders SET status = 'NOT_PLACED' WHERE client_oid = ?1",
            [&intent.client_oid],
        )?;
        // The take-profit is live: a second live one must be refused by the schema.
        let (trade_id, second) = leg(k, Role::TakeProfit, generation);
        let (took, refused) = timed(|| Ok(store::save_order(conn, trade_id, &second, 1).is_err()))?;
        if !refused {
            bail!("a second live take-profit of trade {trade_id} was stored");
        }
        refusals.push(took);
        // The same order saved again as the step after its send would, no longer live.
        let mut settled = intent;
        settled.status = OrderStatus::NotPlaced;
        let (took, ()) = timed(|| Ok(store::save_order(conn, trade_id, &settled, 2)?))?;
        resaves.push(took);
    }
    let lookups = lookups(conn, calls)?;
    conn.execute_batch("ROLLBACK")?;
    let goal = || Goal::P99(GUARD_GOAL);
    Ok(vec![
        Row::new(
            "guard: a new intent stored (save_order: unique client_oid, one live leg per role)",
            goal(),
            inserts,
        ),
        Row::new(
            "guard: a second live leg refused by the schema",
            goal(),
            refusals,
        ),
        Row::new(
            "guard: an existing order saved again (ON CONFLICT client_oid)",
            goal(),
            resaves,
        ),
        Row::new(
            "guard: client_oid lookup (knows_client_oid), half unknown",
            goal(),
            lookups,
        ),
    ])
}

/// `knows_client_oid` on stored client_oids spread over the history, every other one
/// changed into an id the store never saw.
fn lookups(conn: &rusqlite::Connection, calls: usize) -> anyhow::Result<Vec<Duration>> {
    let mut lookups = Vec::with_capacity(calls);
    let sample: Vec<String> = conn
        .prepare("SELECT client_oid FROM orders WHERE id % 97 = 5 LIMIT ?1")?
        .query_map([calls as i64], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (k, client_oid) in sample.iter().cycle().take(calls).enumerate() {
        // Every other lookup is of an id the store never saw (an orphan's).
        let wanted = if k % 2 == 0 {
            client_oid.clone()
        } else {
            format!("{client_oid}x")
        };
        let (took, known) = timed(|| Ok(store::knows_client_oid(conn, &wanted)?))?;
        if known != (k % 2 == 0) {
            bail!("client_oid lookup of {wanted} answered {known}");
        }
        lookups.push(took);
    }
    Ok(lookups)
}

/// The database part of start-up reconciliation: the open trades listed, each one's symbol
/// and view loaded, and each live leg on the exchange checked against the store.
fn reconciliation(store: &Store, built: &Built) -> anyhow::Result<Row> {
    let conn = store.conn();
    let mut samples = Vec::new();
    for _ in 0..50 {
        let (took, loaded) = timed(|| {
            let mut loaded = 0;
            for (trade_id, _) in store::active_trades(conn)? {
                store::trade_symbol(conn, trade_id)?;
                let view = store::load_view(conn, trade_id)?;
                for order in view.orders.iter().filter(|order| order.status.is_live()) {
                    store::knows_client_oid(conn, &order.client_oid)?;
                }
                loaded += 1;
            }
            Ok(loaded)
        })?;
        if loaded != built.open_ids.len() {
            bail!(
                "reconciliation loaded {loaded} trades, {} are open",
                built.open_ids.len()
            );
        }
        samples.push(took);
    }
    Ok(Row::new(
        &format!(
            "start-up reconciliation, database part ({} open trades)",
            built.open_ids.len()
        ),
        Goal::P99(Duration::from_millis(50)),
        samples,
    ))
}

/// What every loop turn reads whatever happens: the open trades and their due times, the
/// gauges' open trades and pending alerts, the due alerts.
fn turn_reads(store: &Store) -> anyhow::Result<Vec<Row>> {
    let conn = store.conn();
    let (mut samples, mut on_cpu) = (Vec::new(), Vec::new());
    for _ in 0..1_000 {
        let cpu_before = cpu_time()?;
        let (took, ()) = timed(|| {
            store::active_trades(conn)?;
            store::open_trades(conn)?;
            store::pending_alerts(conn)?;
            store::due_alerts(conn, i64::MAX, 10)?;
            Ok(())
        })?;
        on_cpu.push(cpu_time()?.saturating_sub(cpu_before));
        samples.push(took);
    }
    Ok(vec![
        Row::new(
            "loop turn's reads (open trades, gauges, due alerts)",
            Goal::P99(Duration::from_millis(1)),
            samples,
        ),
        Row::new(
            "the same, on-CPU time only (the thread's CPU clock; waits for a CPU left out)",
            Goal::P99(Duration::from_millis(1)),
            on_cpu,
        ),
    ])
}

/// The time this thread has run on a CPU (`CLOCK_THREAD_CPUTIME_ID`): what a call cost,
/// without the time other processes held the cores.
fn cpu_time() -> anyhow::Result<Duration> {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    let seconds = u64::try_from(now.tv_sec).context("negative CPU time")?;
    let nanos = u32::try_from(now.tv_nsec).context("CPU time nanoseconds")?;
    Ok(Duration::new(seconds, nanos))
}

/// `status --json` as the command runs it (a read-only open, the report, its JSON), and the
/// whole history as `--all` reads it (views loaded and dropped, not printed).
fn status_rows(path: &Path, built: &Built) -> anyhow::Result<Vec<Row>> {
    let mut samples = Vec::new();
    for _ in 0..20 {
        let (took, shown) = timed(|| {
            let store = Store::open_read_only(path)?;
            let report = status::report(store.conn(), Some(status::CLOSED_SHOWN_DEFAULT))?;
            let text = serde_json::to_string_pretty(&status::report_json(&report))?;
            Ok((report.views.len(), report.complete, text.len()))
        })?;
        if shown.0 != built.open_ids.len() + status::CLOSED_SHOWN_DEFAULT || shown.1 {
            bail!("status showed {} trades (complete: {})", shown.0, shown.1);
        }
        samples.push(took);
    }
    let (took, loaded) = timed(|| {
        let store = Store::open_read_only(path)?;
        let conn = store.conn();
        let mut loaded = 0_usize;
        for id in store::status_trade_ids(conn, None)?.items {
            store::load_view(conn, id)?;
            loaded += 1;
        }
        store::status_alerts(conn, None)?;
        Ok(loaded)
    })?;
    eprintln!("  status --all read {loaded} trades");
    Ok(vec![
        Row::new(
            &format!(
                "status --json (open + last {} closed)",
                status::CLOSED_SHOWN_DEFAULT
            ),
            Goal::P99(Duration::from_millis(100)),
            samples,
        ),
        Row::new(
            "status --all: every trade's view and alert read (what status did before)",
            Goal::None,
            vec![took],
        ),
    ])
}

/// One batch of the events' retention, rolled back each time: with old events to delete
/// (half the history is past the cut), and once nothing is old enough.
fn retention(store: &Store) -> anyhow::Result<Vec<Row>> {
    let conn = store.conn();
    let (first, last): (i64, i64) =
        conn.query_row("SELECT MIN(at_ms), MAX(at_ms) FROM events", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?;
    let mut rows = Vec::new();
    for (name, cut, expect_full) in [
        (
            "retention: one batch of 1,000 old events deleted",
            first + (last - first) / 2,
            true,
        ),
        ("retention: a pass with nothing old enough", first, false),
    ] {
        let mut samples = Vec::new();
        for _ in 0..20 {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let (took, deleted) =
                timed(|| Ok(store::prune_events(conn, cut, store::PRUNE_BATCH)?))?;
            conn.execute_batch("ROLLBACK")?;
            if (deleted == store::PRUNE_BATCH) != expect_full {
                bail!("{name}: deleted {deleted}");
            }
            samples.push(took);
        }
        rows.push(Row::new(
            name,
            Goal::P99(Duration::from_millis(50)),
            samples,
        ));
    }
    Ok(rows)
}

pub struct Size {
    pub bytes: u64,
    pub index_bytes: u64,
    pub trades: i64,
    pub bytes_per_thousand_trades: u64,
}

/// The file's size after a checkpoint, its tables and indexes (SQLite's dbstat), and the
/// share of the latest migration's indexes.
pub fn size(path: &Path, trades: i64) -> anyhow::Result<Size> {
    let conn = rusqlite::Connection::open(path)?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    let bytes = std::fs::metadata(path)?.len();
    let mut by_name: Vec<(String, i64)> = conn
        .prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let index_bytes = by_name
        .iter()
        .filter(|(name, _)| name == "trades_open" || name == "events_at")
        .map(|(_, size)| *size as u64)
        .sum();
    by_name.truncate(12);
    println!();
    println!("largest tables and indexes (bytes per trade):");
    for (name, size) in &by_name {
        println!(
            "  {name:<28} {:>8.1} MiB {:>7.0}",
            *size as f64 / 1_048_576.0,
            *size as f64 / trades as f64
        );
    }
    Ok(Size {
        bytes,
        index_bytes,
        trades,
        bytes_per_thousand_trades: bytes * 1_000 / trades.max(1) as u64,
    })
}
