//! The command line (DESIGN §5): parses arguments, loads configuration, and runs one command.
//! Exit codes: 0 success, 1 runtime failure, 2 usage or configuration error. Bad input is
//! refused before the database is opened, so it never changes stored state.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::{Parser, Subcommand, ValueEnum};
use rust_decimal::Decimal;

use crate::config::{self, Config, Secrets, VenueKind};
use crate::core::breaker::{self, Breaker, GLOBAL};
use crate::core::clock::Clock;
use crate::core::domain::Side;
use crate::shell::Agent;
use crate::shell::clock::{ScaledClock, SteadyClock, SystemClock, wall_now_ms};
use crate::sim::SimOptions;
use crate::store::{self, SignalRow, SignalStatus, Store};
use crate::venue::Venue;
use crate::venue::cryptocom::{CryptoComSettings, CryptoComVenue};
use crate::venue::paper::PaperVenue;

mod backup;
pub mod status;
mod status_risk;
mod watchdog;

#[derive(Debug, Parser)]
#[command(
    name = "fillguard",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("BUILD_TARGET_TRIPLE"), ")"),
    about = "Gives every filled position its stop-loss and take-profit exactly once, or halts, alerts and flattens"
)]
pub struct Cli {
    /// Configuration file (default: /etc/fillguard/fillguard.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent loop (with no configuration: the offline paper venue).
    Run {
        /// Stop after this many loop turns.
        #[arg(long, value_name = "N")]
        max_ticks: Option<u64>,
    },
    /// Validate the configuration and print it with secrets masked.
    CheckConfig,
    /// Show trades, their orders, protection coverage and breakers.
    Status {
        /// One JSON object instead of tables.
        #[arg(long)]
        json: bool,
        /// Show this many of the most recent closed trades (and delivered alerts) besides
        /// the open ones.
        #[arg(long, value_name = "N", default_value_t = status::CLOSED_SHOWN_DEFAULT, conflicts_with = "all")]
        closed: usize,
        /// Show every trade and alert ever stored (reads the whole history).
        #[arg(long)]
        all: bool,
    },
    /// Put a signal into the inbox; the running agent takes it on its next signal check.
    Signal {
        #[arg(long)]
        symbol: String,
        #[arg(long, value_enum)]
        side: SideArg,
        /// Size in the base asset.
        #[arg(
            long,
            conflicts_with = "notional",
            required_unless_present = "notional",
            allow_negative_numbers = true
        )]
        quantity: Option<String>,
        /// Size in the quote asset.
        #[arg(long, allow_negative_numbers = true)]
        notional: Option<String>,
        /// The signal's id (1 to 64 letters, digits and - _ . : / @): a signal with an id is
        /// queued at most once, whether it came from here or from the webhook receiver.
        #[arg(long, value_name = "ID")]
        id: Option<String>,
    },
    /// Copy the database to PATH while the agent runs (SQLite's online backup), checked
    /// before it gets its name; see the README, "Backups and upgrades".
    Backup {
        /// Where the copy goes; its directory must exist.
        #[arg(value_name = "PATH")]
        path: PathBuf,
        /// Replace an existing file at PATH (never the live database).
        #[arg(long)]
        force: bool,
        /// Database pages copied per step; the agent writes between steps.
        #[arg(long, value_name = "N", default_value_t = store::PAGES_PER_STEP_DEFAULT)]
        pages_per_step: u32,
        /// Give up (exit 1, nothing written at PATH) when the copy takes longer than this.
        #[arg(long, value_name = "SECONDS", default_value_t = store::TIME_LIMIT_DEFAULT.as_secs_f64())]
        time_limit_seconds: f64,
    },
    /// Inspect and operate circuit breakers.
    Breaker {
        #[command(subcommand)]
        action: BreakerCommand,
    },
    /// Deterministic simulation: each seed decides faults, crashes, prices and signals; the
    /// invariants are checked after every loop turn. Exit 3: an invariant failed, 4: a trade
    /// did not settle after faults stopped, 5: the agent failed outside a simulated crash.
    Simulate {
        /// Seeds to run, as A..B (B excluded).
        #[arg(long, value_parser = parse_seed_range)]
        seeds: std::ops::Range<u64>,
        /// Loop turns with faults on, per seed (a calm phase follows).
        #[arg(long, default_value_t = 150)]
        ticks: u64,
        /// Break the venue on purpose to show that the checks fail.
        #[arg(long, value_enum)]
        canary: Option<CanaryArg>,
    },
    /// Serve a simulator of the Crypto.com Exchange v1 REST API (instruments and balances from
    /// the configuration's [paper] section), for tests and dry runs on this machine.
    SimExchange {
        /// Address to listen on, e.g. 127.0.0.1:9600 (port 0 picks a free port; the first line
        /// printed is "listening on ADDR").
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// Decides the price path and every injected fault.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Faults to inject (see below).
        #[arg(long, default_value = "none", long_help = crate::sim::FAULTS_HELP)]
        faults: String,
        /// The API key clients must use.
        #[arg(long)]
        api_key: String,
        /// File holding the API secret (mode 600).
        #[arg(long, value_name = "FILE")]
        api_secret_file: PathBuf,
        /// The simulated exchange's time runs this many times faster than the wall clock.
        #[arg(long, default_value_t = 1)]
        speed: u32,
        /// Fill-delay distribution of MARKET orders, e.g. 0.5:0,0.5:50..500 (see below).
        #[arg(long, value_name = "DIST", long_help = crate::sim::FILL_DELAY_HELP)]
        fill_delay: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
#[value(rename_all = "UPPER")]
enum SideArg {
    Buy,
    Sell,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CanaryArg {
    /// Every OCO is created twice.
    DuplicateOrders,
    /// Filled entries are reported as cancelled.
    LoseFills,
    /// Cancels of protective legs are acknowledged but not done: exits go out beside live legs.
    ExitBeforeCancel,
    /// The alert channel reports alerts delivered that it drops.
    DropAlerts,
    /// Signal ids are written without their inbox key, so a repeated id is queued again.
    IgnoreSignalIds,
    /// The agent sends new entries before other trades' due fill polls and protection.
    EntriesFirst,
    /// The agent takes a leg missing from the open-orders snapshot as cancelled.
    SnapshotAbsenceGone,
    /// The agent runs without its entry risk limits (the daily loss limit kept).
    IgnoreRiskLimits,
    /// The agent runs without the daily loss limit.
    IgnoreLossLimit,
    /// The agent reads the candle still forming as closed.
    FormingCandles,
    /// The agent keeps trading a watchlist symbol the exchange does not list.
    UnlistedKept,
}

fn parse_seed_range(text: &str) -> Result<std::ops::Range<u64>, String> {
    let (start, end) = text
        .split_once("..")
        .ok_or_else(|| format!("{text:?} is not a range like 0..2000"))?;
    let number = |part: &str| {
        part.parse::<u64>()
            .map_err(|_| format!("{part:?} is not a seed number"))
    };
    let (start, end) = (number(start)?, number(end)?);
    if start >= end {
        return Err(format!("the range {text} is empty"));
    }
    Ok(start..end)
}

#[derive(Debug, Subcommand)]
enum BreakerCommand {
    /// List every breaker.
    List,
    /// Open a symbol's breaker (`*` for the global one): no new entries there.
    Trip {
        symbol: String,
        #[arg(long, default_value = "manual")]
        reason: String,
    },
    /// Close a symbol's breaker (`*` for the global one).
    Reset { symbol: String },
}

/// A failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    fn runtime(error: impl std::fmt::Display) -> Failure {
        Failure {
            code: 1,
            message: error.to_string(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure::runtime(format!("{error:#}"))
    }
}

impl From<store::StoreError> for Failure {
    fn from(error: store::StoreError) -> Failure {
        Failure::runtime(error)
    }
}

fn simulate(
    seeds: std::ops::Range<u64>,
    ticks: u64,
    canary: Option<CanaryArg>,
) -> Result<(), Failure> {
    let canary = canary.map(|canary| match canary {
        CanaryArg::DuplicateOrders => crate::sim::simulate::Canary::DuplicateOrders,
        CanaryArg::LoseFills => crate::sim::simulate::Canary::LoseFills,
        CanaryArg::ExitBeforeCancel => crate::sim::simulate::Canary::ExitBeforeCancel,
        CanaryArg::DropAlerts => crate::sim::simulate::Canary::DropAlerts,
        CanaryArg::IgnoreSignalIds => crate::sim::simulate::Canary::IgnoreSignalIds,
        CanaryArg::EntriesFirst => crate::sim::simulate::Canary::EntriesFirst,
        CanaryArg::SnapshotAbsenceGone => crate::sim::simulate::Canary::SnapshotAbsenceGone,
        CanaryArg::IgnoreRiskLimits => crate::sim::simulate::Canary::IgnoreRiskLimits,
        CanaryArg::IgnoreLossLimit => crate::sim::simulate::Canary::IgnoreLossLimit,
        CanaryArg::FormingCandles => crate::sim::simulate::Canary::FormingCandles,
        CanaryArg::UnlistedKept => crate::sim::simulate::Canary::UnlistedKept,
    });
    match crate::sim::simulate::run_seeds(seeds, ticks, canary) {
        0 => Ok(()),
        code => Err(Failure {
            code,
            message: "simulation found a failure (see above)".into(),
        }),
    }
}

pub fn run(cli: Cli) -> Result<(), Failure> {
    let config = config::load_with(cli.config.as_deref(), secrets_for(&cli.command))
        .map_err(|e| Failure::usage(e.to_string()))?;
    match cli.command {
        Command::Run { max_ticks } => run_agent(config, max_ticks),
        Command::CheckConfig => {
            print!("{}", config::render_masked(&config));
            Ok(())
        }
        Command::Status { json, closed, all } => {
            status::print(&config, json, (!all).then_some(closed))
        }
        Command::Signal {
            symbol,
            side,
            quantity,
            notional,
            id,
        } => put_signal(&config, &symbol, side, (quantity, notional), id.as_deref()),
        Command::Breaker { action } => breaker(&config, action),
        Command::Backup {
            path,
            force,
            pages_per_step,
            time_limit_seconds,
        } => {
            let options = backup::options(force, pages_per_step, time_limit_seconds)?;
            backup::run(&config, &path, &options)
        }
        Command::Simulate {
            seeds,
            ticks,
            canary,
        } => simulate(seeds, ticks, canary),
        Command::SimExchange {
            listen,
            seed,
            faults,
            api_key,
            api_secret_file,
            speed,
            fill_delay,
        } => {
            let faults = faults
                .parse()
                .map_err(|e| Failure::usage(format!("--faults: {e}")))?;
            let fill_delay = fill_delay
                .map(|text| text.parse())
                .transpose()
                .map_err(|e| Failure::usage(format!("--fill-delay: {e}")))?;
            let options = SimOptions {
                listen,
                seed,
                faults,
                api_key,
                api_secret: read_secret_file(&api_secret_file)?,
                paper: config.paper.clone(),
                speed,
                fill_delay,
            };
            sim_exchange(options)
        }
    }
}

/// The commands that only read or write the database leave the secrets unread: they run without
/// the agent's credentials (the backup unit, an operator's root shell), and a secret they do
/// not need is one less file they open. `run` and `check-config` read and require them.
fn secrets_for(command: &Command) -> Secrets {
    match command {
        Command::Status { .. }
        | Command::Signal { .. }
        | Command::Backup { .. }
        | Command::Breaker { .. } => Secrets::Unread,
        Command::Run { .. }
        | Command::CheckConfig
        | Command::Simulate { .. }
        | Command::SimExchange { .. } => Secrets::Read,
    }
}

fn run_agent(config: Config, max_ticks: Option<u64>) -> Result<(), Failure> {
    crate::telemetry::logging::init();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(Failure::runtime)?;
    }
    // Usage errors first; then the run lock, before anything is opened: a second run on the
    // database must touch neither it nor the paper account beside it.
    let live = match config.venue.kind {
        VenueKind::Paper => None,
        VenueKind::CryptoCom => Some(open_cryptocom(&config)?),
    };
    let store = Store::open_for_run(&config.store.path)?;
    // After the lock, so a second run is refused for the database, not for the port.
    let symbols: Vec<String> = config.watchlist.iter().map(|i| i.symbol.clone()).collect();
    crate::telemetry::metrics::install(config.metrics.listen, &symbols)
        .map_err(Failure::runtime)?;
    // Also after the lock: only the run that owns the database receives signals for it.
    let _webhook = crate::webhook::start(&config.signals.webhook, &config.store.path, &symbols)
        .map_err(Failure::runtime)?;
    let (venue, clock) = match live {
        Some(opened) => opened,
        None => open_paper(&config)?,
    };
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        venue = venue.name(),
        store = %config.store.path.display(),
        metrics = %config.metrics.listen.map_or("off".to_string(), |a| a.to_string()),
        mode = config.protection.mode.as_str(),
        "fillguard starting"
    );
    let notifier = crate::telemetry::sd_notify::Notifier::from_env();
    watchdog::warn_if_too_short(&config, notifier.watchdog_interval());
    let mut agent = Agent::new(config, store, venue, clock, Rc::new(SystemClock), stop);
    agent.set_notifier(notifier);
    let summary = agent.run(max_ticks)?;
    tracing::info!(
        ticks = summary.ticks,
        trades_opened = summary.trades_opened,
        signals_dropped = summary.signals_dropped,
        "fillguard stopped"
    );
    Ok(())
}

/// True when `base_url` points at this machine (the simulator), not at an exchange.
pub fn is_loopback_url(base_url: &str) -> bool {
    let rest = base_url
        .strip_prefix("http://")
        .or_else(|| base_url.strip_prefix("https://"))
        .unwrap_or(base_url);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Where the paper account lives: beside the database, so it survives restarts with it.
pub fn paper_state_path(store_path: &Path) -> PathBuf {
    store_path.with_extension("paper.json")
}

/// A venue and the clock the agent runs on with it.
type OpenedVenue = (Box<dyn Venue>, Rc<dyn Clock>);

/// The paper venue, its account beside the database, on a clock that continues from the
/// account's saved paper time. Opening it saves the account, so only a run holding the
/// database's lock may do it.
fn open_paper(config: &Config) -> Result<OpenedVenue, Failure> {
    let state = paper_state_path(&config.store.path);
    let origin = PaperVenue::saved_time(&state)
        .map_err(Failure::runtime)?
        .unwrap_or_else(wall_now_ms);
    let clock: Rc<dyn Clock> = Rc::new(ScaledClock::new(origin, config.paper.speed));
    let settings = crate::config::paper_settings(config);
    let venue = PaperVenue::open(settings, Rc::clone(&clock), state)
        .map_err(|e| Failure::runtime(format!("paper venue: {e}")))?;
    Ok((Box::new(venue), clock))
}

/// The Crypto.com client; refuses a live exchange unless confirmed (a usage error). Opens no
/// connection yet.
fn open_cryptocom(config: &Config) -> Result<OpenedVenue, Failure> {
    let venue = &config.venue;
    if !venue.live && !is_loopback_url(&venue.base_url) {
        return Err(Failure::usage(format!(
            "venue.base_url {} is a live exchange: set venue.live = true (or FILLGUARD_VENUE__LIVE=true) to confirm live trading",
            venue.base_url
        )));
    }
    let settings = CryptoComSettings {
        base_url: venue.base_url.clone(),
        api_key: venue.api_key.clone().unwrap_or_default(),
        api_secret: venue
            .api_secret
            .as_ref()
            .map(|secret| secret.expose().to_string())
            .unwrap_or_default(),
        timeout: venue.timeout,
        min_notional_fallback: venue.min_notional_fallback,
        taker_fee_rate: venue.taker_fee_rate,
        wall: Rc::new(SystemClock),
    };
    let client = CryptoComVenue::new(settings).map_err(Failure::usage)?;
    Ok((Box::new(client), Rc::new(SteadyClock::system())))
}

fn sim_exchange(options: SimOptions) -> Result<(), Failure> {
    crate::telemetry::logging::init();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop)).map_err(Failure::runtime)?;
    }
    crate::sim::serve(options, stop).map_err(Failure::runtime)
}

/// Reads a secret file, refusing one that group or others can read.
fn read_secret_file(path: &Path) -> Result<String, Failure> {
    use std::os::unix::fs::PermissionsExt;
    let unreadable = |e: std::io::Error| Failure::usage(format!("{}: {e}", path.display()));
    let mode = std::fs::metadata(path)
        .map_err(unreadable)?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(Failure::usage(format!(
            "{}: mode {mode:04o} is readable by group or others; run chmod 600 {}",
            path.display(),
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

fn parse_size(flag: &str, text: &str) -> Result<Decimal, Failure> {
    let value: Decimal = text
        .parse()
        .map_err(|_| Failure::usage(format!("--{flag} {text:?} is not a decimal number")))?;
    if value <= Decimal::ZERO {
        return Err(Failure::usage(format!(
            "--{flag} must be greater than zero, got {text}"
        )));
    }
    Ok(value)
}

fn put_signal(
    config: &Config,
    symbol: &str,
    side: SideArg,
    (quantity, notional): (Option<String>, Option<String>),
    id: Option<&str>,
) -> Result<(), Failure> {
    if !config.watchlist.iter().any(|item| item.symbol == symbol) {
        let known: Vec<&str> = config.watchlist.iter().map(|i| i.symbol.as_str()).collect();
        return Err(Failure::usage(format!(
            "unknown symbol {symbol:?}: not on the watchlist ({})",
            known.join(", ")
        )));
    }
    let quantity = quantity.map(|q| parse_size("quantity", &q)).transpose()?;
    let notional = notional.map(|n| parse_size("notional", &n)).transpose()?;
    if let Some(id) = id {
        crate::webhook::payload::check_id(id)
            .map_err(|reason| Failure::usage(format!("--id {id:?}: {reason}")))?;
    }
    let side = match side {
        SideArg::Buy => Side::Buy,
        SideArg::Sell => Side::Sell,
    };
    let store = Store::open(&config.store.path)?;
    let signal = SignalRow {
        id: 0,
        symbol: symbol.to_string(),
        side,
        quantity,
        notional,
        source: "cli".into(),
        dedup_key: id.map(crate::webhook::payload::id_key),
        created_at_ms: wall_now_ms(),
        status: SignalStatus::New,
        reason: None,
        trade_id: None,
    };
    // The same key as the webhook's: an id already in the inbox, from either, is refused.
    let Some(row) = store::insert_signal(store.conn(), &signal)? else {
        return Err(Failure::runtime(format!(
            "signal id {:?} was seen before: not queued again",
            id.unwrap_or_default()
        )));
    };
    println!("signal {row} queued: {side} {symbol}");
    Ok(())
}

fn breaker(config: &Config, action: BreakerCommand) -> Result<(), Failure> {
    match action {
        BreakerCommand::List => {
            let store = Store::open_read_only(&config.store.path)?;
            status::print_breakers(&store::breakers(store.conn())?, "");
            Ok(())
        }
        BreakerCommand::Trip { symbol, reason } => trip_breaker(config, &symbol, &reason),
        BreakerCommand::Reset { symbol } => reset_breaker(config, &symbol),
    }
}

fn trip_breaker(config: &Config, symbol: &str, reason: &str) -> Result<(), Failure> {
    check_breaker_symbol(config, symbol, false)?;
    let mut store = Store::open(&config.store.path)?;
    let now = wall_now_ms();
    store.transaction(|conn| {
        crate::shell::trip_breaker(conn, symbol, reason, now)?;
        store::record_event(
            conn,
            now,
            None,
            Some(symbol),
            "breaker",
            &format!("tripped by operator: {reason}"),
        )
    })?;
    println!("breaker {symbol} OPEN: new entries on it are blocked; protective orders are not");
    Ok(())
}

fn reset_breaker(config: &Config, symbol: &str) -> Result<(), Failure> {
    let mut store = Store::open(&config.store.path)?;
    let now = wall_now_ms();
    let known = store::breaker(store.conn(), symbol)?.is_some();
    check_breaker_symbol(config, symbol, known)?;
    let who = operator_name();
    store.transaction(|conn| {
        let mut row = store::breaker(conn, symbol)?.unwrap_or_else(|| Breaker::closed(symbol));
        let recovering = store::recovering_trades(conn, symbol)?;
        // An open breaker's reset closes an episode the operator was alerted to: say so.
        if let Some(alert) = breaker::reset_alert(&row, &who, &recovering, now) {
            store::enqueue_alert(conn, &alert, None, Some(symbol), now)?;
        }
        row.reset();
        store::save_breaker(conn, &row, Some((now, "cli")))?;
        // The reset of a loss trip starts the daily loss count again; any other reset of the
        // global breaker leaves the day's losses counted.
        if symbol == GLOBAL && store::loss_state(conn)?.latched {
            store::record_global_reset(conn, now)?;
            println!("daily loss limit: losses before this reset no longer count");
        }
        store::record_event(
            conn,
            now,
            None,
            Some(symbol),
            "breaker",
            &format!("reset by {who}"),
        )
    })?;
    println!("breaker {symbol} closed: new entries allowed");
    let recovering = store::recovering_trades(store.conn(), symbol)?;
    if !recovering.is_empty() {
        println!(
            "recovering trades {recovering:?} on {symbol} are released to you: the running agent stops acting on them at their next turn; settle their positions by hand"
        );
    }
    Ok(())
}

/// Who runs this command, for the audit trail and the RESOLVED alert: the login behind `sudo`
/// if any, else the user.
fn operator_name() -> String {
    let user = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|value| !value.trim().is_empty());
    match user {
        Some(user) => format!("operator {} (fillguard breaker reset)", user.trim()),
        None => "an operator (fillguard breaker reset)".to_string(),
    }
}

fn check_breaker_symbol(config: &Config, symbol: &str, has_row: bool) -> Result<(), Failure> {
    if has_row || symbol == GLOBAL || config.watchlist.iter().any(|item| item.symbol == symbol) {
        return Ok(());
    }
    Err(Failure::usage(format!(
        "unknown symbol {symbol:?}: not on the watchlist (use \"*\" for the global breaker)"
    )))
}

#[cfg(test)]
mod tests {
    use super::is_loopback_url;

    #[test]
    fn only_this_machine_counts_as_loopback() {
        assert!(is_loopback_url("http://127.0.0.1:9000/exchange/v1"));
        assert!(is_loopback_url("http://127.8.0.1/exchange/v1"));
        assert!(is_loopback_url("http://localhost:1/exchange/v1"));
        assert!(is_loopback_url("http://[::1]:8080/exchange/v1"));
        assert!(!is_loopback_url("https://api.crypto.com/exchange/v1"));
        assert!(!is_loopback_url("https://uat-api.3ona.co/exchange/v1"));
        assert!(!is_loopback_url("http://127.0.0.1.example.com/exchange/v1"));
        assert!(!is_loopback_url("http://10.0.0.1/exchange/v1"));
    }
}
