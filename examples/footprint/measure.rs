//! The runtime measurements of the footprint, each on real `fillguard run` processes on the
//! paper venue (no network but the metrics endpoint on loopback), each bounded in time and
//! ending with its processes stopped: start-up to `READY=1`, peak memory over a run, CPU time
//! per loop turn by watchlist size, and memory over a day of paper time.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::process::{self, Agent, Memory};
use crate::setup::{self, RunSetup};

/// How long an agent may take to send `READY=1` before the measurement fails.
const READY_LIMIT: Duration = Duration::from_secs(60);
/// The paper venue's default speed, as the agent runs out of the box.
pub const PAPER_SPEED: u32 = 50;
/// Watchlist symbols of the memory runs.
pub const MEMORY_SYMBOLS: usize = 20;

/// Held while a child is reaped whose CPU time must not count in another measurement:
/// `/proc/self/stat` adds every reaped child's time to one total.
pub static REAPING: Mutex<()> = Mutex::new(());

fn run_setup(symbols: usize, speed: u32) -> anyhow::Result<RunSetup> {
    Ok(RunSetup {
        symbols,
        speed,
        metrics_port: Some(setup::free_port()?),
        strategy: "sma_cross",
        simulator_port: None,
    })
}

/// The start-up runs' setup: symbols that only watch, so no run leaves an open trade for
/// the next one's reconciliation (which would time the venue's answers, not the start-up).
fn watching_setup() -> anyhow::Result<RunSetup> {
    Ok(RunSetup {
        strategy: "none",
        ..run_setup(MEMORY_SYMBOLS, PAPER_SPEED)?
    })
}

/// Start-up to `READY=1`, `count` times with 20 symbols: the first on a fresh database (the
/// schema created), the others on the database the earlier ones left.
pub fn startups(binary: &Path, dir: &Path, count: usize) -> anyhow::Result<Vec<Startup>> {
    let config = setup::prepare(&watching_setup()?, dir)?;
    let mut times = Vec::new();
    for _ in 0..count {
        // A new port each time: the previous agent's may linger in TIME_WAIT.
        std::fs::write(&config, setup::config_text(&watching_setup()?, dir))?;
        let spawned = std::time::SystemTime::now();
        let mut agent = Agent::spawn(binary, &config, dir, None)?;
        let ready = agent.wait_ready(READY_LIMIT)?;
        agent.stop()?;
        let log = std::fs::read_to_string(dir.join("agent.log"))?;
        times.push(Startup {
            ready,
            starting: logged_after(&log, "fillguard starting", spawned),
        });
    }
    Ok(times)
}

/// One start-up: exec to `READY=1`, and exec to the log line `fillguard starting` (written
/// once the configuration, the database, the metrics listener and the venue are open; the
/// rest is the first turn's reconciliation).
pub struct Startup {
    pub ready: Duration,
    pub starting: Option<Duration>,
}

/// The time from `since` to the first log line holding `text`, from the line's UTC time of
/// day (`2026-11-30T11:48:32.721158Z ...`); `None` when there is no such line.
fn logged_after(log: &str, text: &str, since: std::time::SystemTime) -> Option<Duration> {
    let line = log.lines().find(|line| line.contains(text))?;
    let clock = line.get(11..26)?;
    let mut parts = clock.split(':');
    let hours: f64 = parts.next()?.parse().ok()?;
    let minutes: f64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    let logged = hours * 3600.0 + minutes * 60.0 + seconds;
    let epoch = since
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    let started = epoch % 86_400.0;
    // A start just before midnight UTC logs just after it.
    let delta = (logged - started).rem_euclid(86_400.0);
    Some(Duration::from_secs_f64(delta))
}

/// Memory of one run of `seconds` seconds, sampled every second.
pub struct MemoryRun {
    /// (seconds since start, resident KiB) per sample.
    pub samples: Vec<(f64, u64)>,
    /// `VmHWM` just before the stop: the peak over the whole run.
    pub peak: Memory,
    /// What the resident memory is made of at the end.
    pub breakdown: String,
}

/// The agent alone: 20 symbols through the Crypto.com client against `fillguard
/// sim-exchange` on loopback (the matching engine and its price paths in the simulator's
/// process, not the agent's), on the real clock, for `seconds`.
pub fn simulator_memory_run(binary: &Path, dir: &Path, seconds: f64) -> anyhow::Result<MemoryRun> {
    let setup = RunSetup {
        simulator_port: Some(setup::free_port()?),
        speed: 1,
        ..run_setup(MEMORY_SYMBOLS, 1)?
    };
    let config = setup::prepare(&setup, dir)?;
    let port = setup.simulator_port.unwrap_or_default();
    let _simulator = process::Simulator::spawn(binary, &config, dir, port, 1)?;
    sample(binary, &config, dir, seconds)
}

/// A run of `symbols` symbols at `speed` for `seconds` wall seconds.
pub fn memory_run(
    binary: &Path,
    dir: &Path,
    symbols: usize,
    speed: u32,
    seconds: f64,
) -> anyhow::Result<MemoryRun> {
    let config = setup::prepare(&run_setup(symbols, speed)?, dir)?;
    sample(binary, &config, dir, seconds)
}

/// Starts an agent on `config` and samples its memory every second for `seconds`.
fn sample(binary: &Path, config: &Path, dir: &Path, seconds: f64) -> anyhow::Result<MemoryRun> {
    let mut agent = Agent::spawn(binary, config, dir, None)?;
    agent.wait_ready(READY_LIMIT)?;
    let mut samples = Vec::new();
    let run = Duration::from_secs_f64(seconds);
    loop {
        let at = agent.started.elapsed();
        samples.push((at.as_secs_f64(), agent.memory()?.rss_kib));
        if at >= run {
            break;
        }
        std::thread::sleep(Duration::from_secs(1).min(run - at));
    }
    let peak = agent.memory()?;
    let paper = std::fs::metadata(dir.join("fillguard.paper.json")).map_or(0, |m| m.len());
    let prices = std::fs::metadata(dir.join("fillguard.paper.prices.json")).map_or(0, |m| m.len());
    let breakdown = format!(
        "{}; the paper account file (saved after every create and cancel) {:.2} MiB, its price history (saved apart, at most every 10 s) {:.2} MiB",
        process::memory_breakdown(agent.pid()),
        paper as f64 / (1024.0 * 1024.0),
        prices as f64 / (1024.0 * 1024.0)
    );
    let _reaping = REAPING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    agent.stop()?;
    Ok(MemoryRun {
        samples,
        peak,
        breakdown,
    })
}

/// CPU time of one run of `ticks` turns with `symbols` symbols, start-up and exit included.
fn run_cpu(
    binary: &Path,
    dir: &Path,
    symbols: usize,
    ticks: u64,
    ticks_per_second: u64,
) -> anyhow::Result<Duration> {
    let config = setup::prepare(&run_setup(symbols, PAPER_SPEED)?, dir)?;
    let _reaping = REAPING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let before = process::children_cpu(ticks_per_second)?;
    let mut agent = Agent::spawn(binary, &config, dir, Some(ticks))?;
    agent.wait_ready(READY_LIMIT)?;
    // A turn is 5 paper seconds: 0.1 s at the default speed, unless the turn itself is longer
    // (a busy machine can stretch it).
    let limit = Duration::from_secs(60 + ticks * 20);
    agent.wait_exit(limit)?;
    Ok(process::children_cpu(ticks_per_second)? - before)
}

/// CPU per loop turn at one watchlist size.
pub struct TurnCost {
    pub symbols: usize,
    pub short: Duration,
    pub long: Duration,
    pub turns: u64,
}

impl TurnCost {
    /// The difference of the two runs over their difference in turns: start-up, the first
    /// turns' reconciliation and the exit cancel out.
    pub fn per_turn(&self) -> Duration {
        self.long.saturating_sub(self.short) / u32::try_from(self.turns).unwrap_or(u32::MAX)
    }
}

/// Why the agent refuses a configuration of `symbols` symbols (`check-config`'s first line),
/// or `None` when it accepts it.
fn refused(binary: &Path, dir: &Path, symbols: usize) -> anyhow::Result<Option<String>> {
    let config = setup::prepare(&run_setup(symbols, PAPER_SPEED)?, dir)?;
    let out = std::process::Command::new(binary)
        .arg("check-config")
        .arg("--config")
        .arg(&config)
        .output()
        .context("running check-config")?;
    if out.status.success() {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(&out.stderr);
    Ok(Some(text.lines().next().unwrap_or("refused").to_string()))
}

/// The CPU per turn of each size the agent accepts, and the sizes it refuses with its reason.
pub type Costs = (Vec<TurnCost>, Vec<(usize, String)>);

/// CPU per turn for each size: a run of `short` turns and one of `long` turns.
pub fn turn_costs(
    binary: &Path,
    dir: &Path,
    sizes: &[usize],
    short: u64,
    long: u64,
) -> anyhow::Result<Costs> {
    let ticks_per_second = process::clock_ticks();
    let mut costs = Vec::new();
    let mut skipped = Vec::new();
    for &symbols in sizes {
        if let Some(reason) = refused(binary, dir, symbols)? {
            eprintln!("footprint: {symbols} symbols: not measured: {reason}");
            skipped.push((symbols, reason));
            continue;
        }
        // A size whose runs fail or overrun their bound is reported as such; the other
        // measurements go on.
        let runs = run_cpu(binary, dir, symbols, short, ticks_per_second)
            .with_context(|| format!("{short} turns"))
            .and_then(|short_cpu| {
                let long_cpu = run_cpu(binary, dir, symbols, long, ticks_per_second)
                    .with_context(|| format!("{long} turns"))?;
                Ok((short_cpu, long_cpu))
            });
        let (short_cpu, long_cpu) = match runs {
            Ok(runs) => runs,
            Err(error) => {
                let reason = format!("{error:#}");
                eprintln!("footprint: {symbols} symbols: not measured: {reason}");
                skipped.push((symbols, reason));
                continue;
            }
        };
        let cost = TurnCost {
            symbols,
            short: short_cpu,
            long: long_cpu,
            turns: long - short,
        };
        eprintln!(
            "footprint: {symbols} symbols: {short} turns {:.2} s CPU, {long} turns {:.2} s CPU, {:.2} ms per turn",
            short_cpu.as_secs_f64(),
            long_cpu.as_secs_f64(),
            cost.per_turn().as_secs_f64() * 1000.0
        );
        costs.push(cost);
    }
    Ok((costs, skipped))
}

/// `memory_run` with 20 symbols at the default paper speed, on its own thread.
pub fn memory_run_in_background(
    binary: PathBuf,
    dir: PathBuf,
    seconds: f64,
) -> std::thread::JoinHandle<anyhow::Result<MemoryRun>> {
    std::thread::spawn(move || memory_run(&binary, &dir, MEMORY_SYMBOLS, PAPER_SPEED, seconds))
}

/// `simulator_memory_run` on its own thread.
pub fn simulator_run_in_background(
    binary: PathBuf,
    dir: PathBuf,
    seconds: f64,
) -> std::thread::JoinHandle<anyhow::Result<MemoryRun>> {
    std::thread::spawn(move || simulator_memory_run(&binary, &dir, seconds))
}

/// A directory under `root` for one measurement.
pub fn dir(root: &Path, name: &str) -> PathBuf {
    root.join(name)
}

/// Seconds since `started`, for progress lines.
pub fn since(started: Instant) -> f64 {
    started.elapsed().as_secs_f64()
}
