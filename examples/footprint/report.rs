//! The footprint table: each figure beside its goal with PASS or MISS, and under it, for every
//! goal missed, what the measurement shows limits it. Formatting only; measures nothing.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::Args;
use crate::measure::{MemoryRun, Startup, TurnCost};

const MIB: u64 = 1024 * 1024;
/// The goals of the footprint.
const SIZE_GOAL_BYTES: u64 = 6 * MIB;
const RSS_GOAL_KIB: u64 = 10 * 1024;
const STARTUP_GOAL: Duration = Duration::from_millis(100);
/// Growth of CPU per turn with the watchlist: the exponent k of cost ∝ symbols^k between two
/// sizes, at most linear; the tenth above 1 allows for the noise of a shared machine.
const GROWTH_EXPONENT_MAX: f64 = 1.1;
/// Memory is flat over the paper day when the second half adds at most this share.
const DAY_GROWTH_MAX: f64 = 0.10;

pub struct Figures {
    pub size: u64,
    pub startups: Vec<Startup>,
    pub long: MemoryRun,
    /// The same symbols through the Crypto.com client against `sim-exchange`.
    pub agent_alone: MemoryRun,
    pub costs: Vec<TurnCost>,
    /// Watchlist sizes the agent's configuration refuses, with its reason.
    pub refused: Vec<(usize, String)>,
    pub day: MemoryRun,
    pub day_speed: u32,
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

fn mib(kib: u64) -> String {
    format!("{:.2} MiB", kib as f64 / 1024.0)
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

/// The resident memory of the sample nearest `at` seconds.
fn rss_at(run: &MemoryRun, at: f64) -> u64 {
    run.samples
        .iter()
        .min_by(|a, b| (a.0 - at).abs().total_cmp(&(b.0 - at).abs()))
        .map_or(0, |sample| sample.1)
}

/// The exponent k of cost ∝ symbols^k between two sizes.
fn exponent(a: &TurnCost, b: &TurnCost) -> f64 {
    let (ca, cb) = (a.per_turn().as_secs_f64(), b.per_turn().as_secs_f64());
    if ca <= 0.0 || cb <= 0.0 {
        return f64::NAN;
    }
    (cb / ca).ln() / (b.symbols as f64 / a.symbols as f64).ln()
}

/// The largest sections of the binary (`size -A`), when the size goal is missed.
fn sections(args: &Args) -> String {
    let Ok(out) = Command::new("size").arg("-A").arg(&args.binary).output() else {
        return "(size -A is not available)".to_string();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows: Vec<(String, u64)> = text
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let (name, size) = (parts.next()?, parts.next()?.parse().ok()?);
            name.starts_with('.').then(|| (name.to_string(), size))
        })
        .collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.1));
    rows.iter()
        .take(5)
        .map(|(name, size)| format!("{name} {} KiB", size / 1024))
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn render(args: &Args, f: &Figures) -> String {
    let mut out = String::new();
    let mut limits = Vec::new();
    let _ = writeln!(out, "| figure | goal | measured | |\n|---|---|---|---|");
    let size_ok = f.size <= SIZE_GOAL_BYTES;
    let _ = writeln!(
        out,
        "| binary size ({}) | ≤ 6 MiB | {:.2} MiB ({} bytes) | {} |",
        args.binary
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        f.size as f64 / MIB as f64,
        f.size,
        verdict(size_ok)
    );
    if !size_ok {
        limits.push(format!(
            "binary size: its largest sections: {}",
            sections(args)
        ));
    }
    render_startup(&mut out, &mut limits, f);
    let peak_ok = f.long.peak.hwm_kib <= RSS_GOAL_KIB;
    let _ = writeln!(
        out,
        "| peak RSS, `run` with 20 symbols for {:.0} s at paper speed 50 | ≤ 10 MiB | {} (VmHWM; {} at the end) | {} |",
        args.rss_seconds,
        mib(f.long.peak.hwm_kib),
        mib(f.long.peak.rss_kib),
        verdict(peak_ok)
    );
    if !peak_ok {
        limits.push(format!("peak RSS: at the end, {}", f.long.breakdown));
    }
    let alone_ok = f.agent_alone.peak.hwm_kib <= RSS_GOAL_KIB;
    let _ = writeln!(
        out,
        "| peak RSS, the same 20 symbols for {:.0} s through the Crypto.com client against `sim-exchange` on loopback (the engine in the simulator's process) | ≤ 10 MiB | {} (VmHWM; {} at the end) | {} |",
        args.rss_seconds,
        mib(f.agent_alone.peak.hwm_kib),
        mib(f.agent_alone.peak.rss_kib),
        verdict(alone_ok)
    );
    if !alone_ok {
        limits.push(format!(
            "peak RSS against sim-exchange: at the end, {}",
            f.agent_alone.breakdown
        ));
    }
    render_costs(&mut out, &mut limits, &f.costs);
    for (symbols, reason) in &f.refused {
        let _ = writeln!(
            out,
            "| CPU per loop turn, {symbols} symbols | — | not measured: {reason} | n/a |"
        );
        limits.push(format!(
            "{symbols} symbols: the configuration refuses them: {reason}"
        ));
    }
    render_day(&mut out, &mut limits, f);
    for limit in &limits {
        let _ = writeln!(out, "\nlimit: {limit}");
    }
    out
}

fn render_startup(out: &mut String, limits: &mut Vec<String>, f: &Figures) {
    let mut sorted: Vec<Duration> = f.startups.iter().map(|s| s.ready).collect();
    sorted.sort();
    let median = sorted[sorted.len() / 2];
    let slowest = sorted[sorted.len() - 1];
    let ok = median <= STARTUP_GOAL;
    let all: Vec<String> = f.startups.iter().map(|s| ms(s.ready)).collect();
    let _ = writeln!(
        out,
        "| start-up to READY=1, 20 symbols, paper venue (median of {}; fresh database first: {}) | ≤ 100 ms | {} (slowest {}) | {} |",
        f.startups.len(),
        all.join(", "),
        ms(median),
        ms(slowest),
        verdict(ok)
    );
    if !ok {
        let split: Vec<String> = f
            .startups
            .iter()
            .map(|s| match s.starting {
                Some(starting) => format!(
                    "{} + {}",
                    ms(starting),
                    ms(s.ready.saturating_sub(starting))
                ),
                None => format!("{} (no log line)", ms(s.ready)),
            })
            .collect();
        limits.push(format!(
            "start-up: exec to the log line `fillguard starting` (configuration, database, metrics listener, venue opened; a new paper account generates and saves its price paths) + from there to READY=1 (reconciliation): {}",
            split.join(", ")
        ));
    }
}

fn render_costs(out: &mut String, limits: &mut Vec<String>, costs: &[TurnCost]) {
    for cost in costs {
        let per_turn = cost.per_turn().as_secs_f64() * 1000.0;
        let _ = writeln!(
            out,
            "| CPU per loop turn, {} symbols (user+sys, {} turns' difference) | — | {per_turn:.3} ms ({:.2} µs per symbol) | |",
            cost.symbols,
            cost.turns,
            per_turn * 1000.0 / cost.symbols as f64
        );
    }
    for pair in costs.windows(2) {
        let k = exponent(&pair[0], &pair[1]);
        let ok = k <= GROWTH_EXPONENT_MAX;
        let _ = writeln!(
            out,
            "| CPU growth {} → {} symbols (cost ∝ symbols^k) | k ≤ 1 (linear) | k = {k:.2} (×{:.1} for ×{}) | {} |",
            pair[0].symbols,
            pair[1].symbols,
            pair[1].per_turn().as_secs_f64() / pair[0].per_turn().as_secs_f64(),
            pair[1].symbols / pair[0].symbols.max(1),
            verdict(ok)
        );
        if !ok {
            limits.push(format!(
                "CPU growth {} → {}: per symbol {:.2} µs → {:.2} µs per turn",
                pair[0].symbols,
                pair[1].symbols,
                pair[0].per_turn().as_secs_f64() * 1e6 / pair[0].symbols as f64,
                pair[1].per_turn().as_secs_f64() * 1e6 / pair[1].symbols as f64
            ));
        }
    }
}

fn render_day(out: &mut String, limits: &mut Vec<String>, f: &Figures) {
    let end = f.day.samples.last().map_or(0.0, |s| s.0);
    let start_at = f.day.samples.first().map_or(0.0, |s| s.0);
    let (start, middle, last) = (
        rss_at(&f.day, start_at),
        rss_at(&f.day, end / 2.0),
        rss_at(&f.day, end),
    );
    let ok = last as f64 <= middle as f64 * (1.0 + DAY_GROWTH_MAX);
    let _ = writeln!(
        out,
        "| RSS over 24 h of paper time, 20 symbols at {}x: start (READY), 12 h, 24 h | flat (24 h ≤ 12 h + 10 %) | {} / {} / {} (peak {}) | {} |",
        f.day_speed,
        mib(start),
        mib(middle),
        mib(last),
        mib(f.day.peak.hwm_kib),
        verdict(ok)
    );
    if !ok {
        let every: Vec<String> = (0..=12)
            .map(|i| {
                format!(
                    "{}h {}",
                    i * 2,
                    mib(rss_at(&f.day, end * f64::from(i) / 12.0))
                )
            })
            .collect();
        limits.push(format!(
            "24 h memory: {}; at the end {}",
            every.join(", "),
            f.day.breakdown
        ));
    }
}
