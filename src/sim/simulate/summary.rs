//! The one-line summary of a simulation run: how many seeds passed, what they ran with, and
//! the first failure with its trace and the command that replays it.

use std::time::Duration;

use super::{Canary, SeedReport, Verdict};

pub(super) fn summarize(
    reports: &[SeedReport],
    ticks: u64,
    canary: Option<Canary>,
    elapsed: Duration,
) -> u8 {
    let failures: Vec<&SeedReport> = reports
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .collect();
    let trades: usize = reports.iter().map(|r| r.trades).sum();
    let crashes: u32 = reports.iter().map(|r| r.crashes).sum();
    let exits: u32 = reports.iter().map(|r| r.exits).sum();
    let store_errors: u32 = reports.iter().map(|r| r.store_errors).sum();
    let turns: u64 = reports.iter().map(|r| r.ticks).sum();
    let flatten = reports.iter().filter(|r| r.flatten).count();
    let alert_only = reports.iter().filter(|r| r.alert_only).count();
    let outages = reports.iter().filter(|r| r.outage).count();
    let fixed = reports.iter().filter(|r| r.fixed_schedule).count();
    let listed = reports.iter().filter(|r| r.listed_source).count();
    let alerts_down = reports.iter().filter(|r| r.alerts_down).count();
    let deferred_seeds = reports.iter().filter(|r| r.deferrals > 0).count();
    let deferrals: u64 = reports.iter().map(|r| u64::from(r.deferrals)).sum();
    let risk = reports.iter().filter(|r| r.risk).count();
    let refusals: u32 = reports.iter().map(|r| r.risk_refusals).sum();
    let unlisted = reports.iter().filter(|r| r.unlisted).count();
    println!(
        "{} seeds, {} passed, {} failed; {flatten} with failsafe.flatten, {alert_only} with on_protection_error off, {fixed} with poll.schedule fixed, {listed} with poll.source open-then-history, {outages} with an exchange outage, {alerts_down} with a failing alert channel, {deferred_seeds} with calls deferred ({deferrals} in all), {risk} with risk limits ({refusals} signals refused by one), {unlisted} with an unlisted watchlist symbol; {trades} trades, {crashes} simulated crashes, {store_errors} refused writes, {exits} exits on a refusing database, {turns} loop turns in {:.1} s",
        reports.len(),
        reports.len() - failures.len(),
        failures.len(),
        elapsed.as_secs_f64()
    );
    let Some(first) = failures.first() else {
        return 0;
    };
    // Every failure in one line each, so one long run shows whether they share a cause.
    for failure in &failures[1..] {
        println!("failed seed {}: {:?}", failure.seed, failure.verdict);
    }
    let (kind, detail) = match &first.verdict {
        Verdict::Correctness(detail) => ("correctness", detail),
        Verdict::Liveness(detail) => ("liveness", detail),
        Verdict::Crash(detail) => ("crash", detail),
        Verdict::Pass => unreachable!("filtered above"),
    };
    println!("FAILED seed {} ({kind}): {detail}", first.seed);
    println!(
        "  mode {}, faults {}, {} crashes, {} refused writes, {} turns",
        first.mode, first.faults, first.crashes, first.store_errors, first.ticks
    );
    println!("  trace (last events):");
    for line in &first.trace {
        println!("    {line}");
    }
    let canary_flag = canary_flag(canary);
    println!(
        "  replay: fillguard simulate --seeds {}..{} --ticks {ticks}{canary_flag}",
        first.seed,
        first.seed + 1
    );
    failures
        .iter()
        .map(|r| r.verdict.exit_code())
        .max()
        .unwrap_or(0)
}

/// The `--canary` flag that replays a run's canary.
fn canary_flag(canary: Option<Canary>) -> &'static str {
    match canary {
        Some(Canary::DuplicateOrders) => " --canary duplicate-orders",
        Some(Canary::LoseFills) => " --canary lose-fills",
        Some(Canary::ExitBeforeCancel) => " --canary exit-before-cancel",
        Some(Canary::DropAlerts) => " --canary drop-alerts",
        Some(Canary::IgnoreSignalIds) => " --canary ignore-signal-ids",
        Some(Canary::EntriesFirst) => " --canary entries-first",
        Some(Canary::SnapshotAbsenceGone) => " --canary snapshot-absence-gone",
        Some(Canary::IgnoreRiskLimits) => " --canary ignore-risk-limits",
        Some(Canary::IgnoreLossLimit) => " --canary ignore-loss-limit",
        Some(Canary::UnlistedKept) => " --canary unlisted-kept",
        Some(Canary::FormingCandles) => " --canary forming-candles",
        None => "",
    }
}
