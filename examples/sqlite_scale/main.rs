//! fillguard's SQLite store at scale (scripts/bench-sqlite.sh runs it; not part of the tests,
//! it takes minutes): builds a real database file holding a long history (by default
//! 1,000,000 orders, with the signals, trades, events and alerts they imply, written by the
//! store's own functions) and 50 open trades, then times, on that file, the idempotency guard,
//! the database part of start-up reconciliation, the loop's per-turn reads, `status` as the
//! command runs it, and the events' retention; and prints the size per 1,000 trades. Every
//! timing is taken twice in the same run: without the indexes of the latest migration
//! (dropped) and with them (created again from `sql/`), so the table shows what they change.
//!
//!   cargo run --profile sqlite-scale --example sqlite_scale -- [--orders N] [--open N]
//!       [--calls N] [--dir DIR]

mod measure;
mod populate;

use std::path::PathBuf;

use anyhow::{Context, bail};

use fillguard::store::{self, Store};
use measure::{Goal, Phase};

struct Args {
    orders: u64,
    open: usize,
    calls: usize,
    dir: Option<PathBuf>,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        orders: 1_000_000,
        open: 50,
        calls: 10_000,
        dir: None,
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let number = || -> anyhow::Result<u64> {
            value
                .parse()
                .with_context(|| format!("{flag} {value}: not a whole number"))
        };
        match flag.as_str() {
            "--orders" => args.orders = number()?,
            "--open" => args.open = usize::try_from(number()?)?,
            "--calls" => args.calls = usize::try_from(number()?)?,
            "--dir" => args.dir = Some(PathBuf::from(&value)),
            _ => bail!("unknown argument {flag} (--orders N, --open N, --calls N, --dir DIR)"),
        }
    }
    if args.orders < 1_000 || args.open == 0 || args.calls < 100 {
        bail!("--orders must be at least 1000, --open at least 1, --calls at least 100");
    }
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let scratch = tempfile::Builder::new()
        .prefix("sqlite-scale-")
        .tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir))?;
    let path = scratch.path().join("fillguard.db");
    println!("# fillguard SQLite at scale");
    println!("database: {}", path.display());
    let built = populate::build(&path, args.orders, args.open)?;
    println!(
        "built: {} trades, {} orders, {} events, {} alerts, {} open trades in {:.1} s",
        built.trades,
        built.orders,
        built.events,
        built.alerts,
        built.open_ids.len(),
        built.seconds
    );
    let mut phases = Vec::new();
    for with_indexes in [false, true] {
        set_indexes(&path, with_indexes)?;
        phases.push(measure::phase(&path, &built, args.calls, with_indexes)?);
    }
    let size = measure::size(&path, built.trades)?;
    print_table(&phases, &size);
    Ok(())
}

/// Drops the latest migration's indexes, or creates them again from its own SQL text.
fn set_indexes(path: &std::path::Path, with: bool) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    if with {
        conn.execute_batch(&format!("BEGIN; {} COMMIT;", store::SCALE_INDEXES_SQL))?;
    } else {
        conn.execute_batch("DROP INDEX trades_open; DROP INDEX events_at;")?;
    }
    // A statement the store prepared earlier is prepared again after a schema change; a new
    // store is opened for each phase anyway.
    drop(conn);
    drop(Store::open(path)?);
    Ok(())
}

fn print_table(phases: &[Phase], size: &measure::Size) {
    println!();
    println!("| figure | goal | without migration 5 | with migration 5 | result |");
    println!("|---|---|---|---|---|");
    let (before, after) = (&phases[0], &phases[1]);
    for (row, after_row) in before.rows.iter().zip(&after.rows) {
        let verdict = match &after_row.goal {
            Goal::None => "-".to_string(),
            goal => {
                if goal.met(after_row) {
                    "PASS".into()
                } else {
                    "MISS".into()
                }
            }
        };
        println!(
            "| {} | {} | {} | {} | {} |",
            row.name,
            row.goal.text(),
            row.figures(),
            after_row.figures(),
            verdict
        );
    }
    let per_thousand = size.bytes_per_thousand_trades as f64 / 1_048_576.0;
    let verdict = if per_thousand <= measure::SIZE_GOAL_MIB_PER_THOUSAND {
        "PASS"
    } else {
        "MISS"
    };
    println!(
        "| database size per 1,000 trades | <= {} MiB | {:.2} MiB | {:.2} MiB (file {:.1} MiB; the new indexes {:.1} MiB) | {} |",
        measure::SIZE_GOAL_MIB_PER_THOUSAND,
        (size.bytes - size.index_bytes) as f64 / size.trades as f64 * 1_000.0 / 1_048_576.0,
        per_thousand,
        size.bytes as f64 / 1_048_576.0,
        size.index_bytes as f64 / 1_048_576.0,
        verdict
    );
    let misses = phases[1]
        .rows
        .iter()
        .filter(|row| !matches!(row.goal, Goal::None) && !row.goal.met(row))
        .count()
        + usize::from(verdict == "MISS");
    println!();
    println!("goals missed with migration 5: {misses}");
}
