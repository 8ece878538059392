//! fillguard's footprint (scripts/bench-footprint.sh runs it; not part of the tests, it takes
//! about 12 minutes): the size of a given binary, and, on real `fillguard run` processes of
//! that binary on the paper venue, start-up to `READY=1`, peak memory over a 10-minute run with
//! 20 symbols, CPU time per loop turn with 10, 100 and 1,000 symbols, and memory over 24 hours
//! of paper time; each figure beside its goal with PASS or MISS, and what limits it when
//! missed. It reads nothing of the agent's but what the kernel and `NOTIFY_SOCKET` show.
//!
//!   cargo run --example footprint -- --binary PATH [--dir DIR] [--rss-seconds S]
//!       [--day-speed N] [--turns SHORT,LONG] [--sizes A,B,C] [--startups N]

mod measure;
mod process;
mod report;
mod setup;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};

/// The command line.
pub struct Args {
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub rss_seconds: f64,
    pub day_speed: u32,
    pub turns: (u64, u64),
    pub sizes: Vec<usize>,
    pub startups: usize,
}

fn parse_list<T: std::str::FromStr>(flag: &str, text: &str) -> anyhow::Result<Vec<T>> {
    text.split(',')
        .map(|part| {
            part.trim()
                .parse::<T>()
                .ok()
                .with_context(|| format!("{flag}: {part:?} is not a number"))
        })
        .collect()
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        binary: PathBuf::new(),
        dir: PathBuf::from("target/bench/footprint"),
        rss_seconds: 600.0,
        day_speed: 1000,
        turns: (10, 30),
        sizes: vec![10, 30, 100, 1000],
        startups: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<f64>()
                .with_context(|| format!("{flag}: {value:?} is not a number"))
        };
        match flag.as_str() {
            "--binary" => args.binary = PathBuf::from(&value),
            "--dir" => args.dir = PathBuf::from(&value),
            "--rss-seconds" => args.rss_seconds = number()?,
            "--day-speed" => args.day_speed = value.parse().context("--day-speed")?,
            "--startups" => args.startups = value.parse().context("--startups")?,
            "--sizes" => args.sizes = parse_list("--sizes", &value)?,
            "--turns" => match parse_list::<u64>("--turns", &value)?.as_slice() {
                [short, long] if short < long => args.turns = (*short, *long),
                _ => bail!("--turns: two numbers SHORT,LONG with SHORT < LONG"),
            },
            other => bail!("unknown option {other}"),
        }
    }
    if args.binary.as_os_str().is_empty() {
        bail!("--binary PATH is required");
    }
    // The speed bounds of `paper.speed`.
    if !(1..=10_000).contains(&args.day_speed)
        || args.rss_seconds.is_nan()
        || args.rss_seconds <= 0.0
        || args.startups == 0
    {
        bail!("--day-speed 1..=10000, --rss-seconds > 0 and --startups ≥ 1");
    }
    args.binary = std::fs::canonicalize(&args.binary)
        .with_context(|| format!("{}", args.binary.display()))?;
    std::fs::create_dir_all(&args.dir)?;
    args.dir = std::fs::canonicalize(&args.dir)?;
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let result = measure_all(&args);
    // A failed measurement ends the program while other threads' agents may still run.
    process::kill_all();
    result
}

fn measure_all(args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let size = std::fs::metadata(&args.binary)?.len();
    eprintln!("footprint: start-up ({} runs)", args.startups);
    let startups = measure::startups(
        &args.binary,
        &measure::dir(&args.dir, "startup"),
        args.startups,
    )?;
    eprintln!(
        "footprint: {:.0} s: a {:.0} s run with {} symbols in the background",
        measure::since(started),
        args.rss_seconds,
        measure::MEMORY_SYMBOLS
    );
    let long_run = measure::memory_run_in_background(
        args.binary.clone(),
        measure::dir(&args.dir, "rss"),
        args.rss_seconds,
    );
    let simulator_run = measure::simulator_run_in_background(
        args.binary.clone(),
        measure::dir(&args.dir, "rss-sim"),
        args.rss_seconds,
    );
    eprintln!("footprint: CPU per turn for {:?} symbols", args.sizes);
    let (costs, refused) = measure::turn_costs(
        &args.binary,
        &measure::dir(&args.dir, "cpu"),
        &args.sizes,
        args.turns.0,
        args.turns.1,
    )?;
    let day_seconds = 86_400.0 / f64::from(args.day_speed);
    eprintln!(
        "footprint: {:.0} s: 24 h of paper time at {}x ({day_seconds:.1} s)",
        measure::since(started),
        args.day_speed
    );
    let day = measure::memory_run(
        &args.binary,
        &measure::dir(&args.dir, "day"),
        measure::MEMORY_SYMBOLS,
        args.day_speed,
        day_seconds,
    )?;
    eprintln!(
        "footprint: {:.0} s: waiting for the {:.0} s run",
        measure::since(started),
        args.rss_seconds
    );
    let long = long_run
        .join()
        .map_err(|_| anyhow::anyhow!("the memory run's thread panicked"))??;
    let agent_alone = simulator_run
        .join()
        .map_err(|_| anyhow::anyhow!("the simulator run's thread panicked"))??;
    let figures = report::Figures {
        size,
        startups,
        long,
        agent_alone,
        costs,
        refused,
        day,
        day_speed: args.day_speed,
    };
    println!("{}", report::render(args, &figures));
    eprintln!("footprint: done in {:.0} s", measure::since(started));
    Ok(())
}
