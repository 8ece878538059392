//! The figures of `scripts/bench.sh`: reads each run's `meta.json`, and the simulator's
//! `timeline.json` and `requests.json` (`GET /sim/timeline`, `GET /sim/requests`), from
//! `BENCH_DIR/runs/*/`, and writes the table to stdout and as `bench.md`, `bench.json` and
//! `windows.svg` into `BENCH_DIR`. Every time comes from the simulator's clock, none from the
//! agent: a trade's unprotected window runs from its entry's first fill on the exchange to the
//! moment both a stop-loss and a take-profit of the trade were live there (0 when they were
//! live before the fill, as an OTOCO's legs are from the fill that completes their entry).
//!
//!     cargo run --release --example bench_report -- target/bench
//!
//! It must not run anything or read the agent's database; the last line it prints is
//! `unprotected_p99_ratio_baseline_over_oco=<x>` (or `=n/a (<reason>)`).

mod figures;
mod render;
mod svg;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use figures::Run;

/// Runs one report reads at most (policies × concurrency levels).
const RUNS_MAX: usize = 64;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(dir), None) = (args.next(), args.next()) else {
        eprintln!("usage: bench_report BENCH_DIR");
        return ExitCode::from(2);
    };
    match report(Path::new(&dir)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench_report: {error}");
            ExitCode::FAILURE
        }
    }
}

fn report(dir: &Path) -> Result<(), String> {
    let runs = load_runs(&dir.join("runs"))?;
    let summary = render::Summary::new(&runs)?;
    let markdown = summary.markdown(&runs);
    print!("{markdown}");
    write(&dir.join("bench.md"), &markdown)?;
    let json = serde_json::to_string_pretty(&summary.json(&runs)).map_err(|e| e.to_string())?;
    write(&dir.join("bench.json"), &json)?;
    write(
        &dir.join("windows.svg"),
        &svg::plot(&runs, summary.floor_ms),
    )?;
    println!("{}", summary.last_line());
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|error| format!("writing {}: {error}", path.display()))
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("reading {}: {error}", path.display()))?;
    serde_json::from_str(&text).map_err(|error| format!("parsing {}: {error}", path.display()))
}

/// Every run directory's figures, ordered by policy order, then concurrency.
fn load_runs(runs_dir: &Path) -> Result<Vec<Run>, String> {
    let entries = std::fs::read_dir(runs_dir)
        .map_err(|error| format!("reading {}: {error}", runs_dir.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("meta.json").is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(format!(
            "no run with a meta.json under {}",
            runs_dir.display()
        ));
    }
    if dirs.len() > RUNS_MAX {
        return Err(format!(
            "more than {RUNS_MAX} runs under {}",
            runs_dir.display()
        ));
    }
    let mut runs = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let meta = read_json(&dir.join("meta.json"))?;
        let run = if meta["available"] == Value::Bool(true) {
            let timeline = read_json(&dir.join("timeline.json"))?;
            let requests = read_json(&dir.join("requests.json"))?;
            Run::measured(&meta, &timeline, &requests)
        } else {
            Run::unavailable(&meta)
        };
        runs.push(run.map_err(|error| format!("{}: {error}", dir.display()))?);
    }
    runs.sort_by_key(|run| (run.order, run.concurrency));
    Ok(runs)
}
