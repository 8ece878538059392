//! Configuration in two stages: raw serde structs (`deny_unknown_fields`) merged by figment from
//! defaults < TOML file < `FILLGUARD_*` environment < legacy environment names, then validated
//! into the typed `Config` below, which cannot hold an invalid value. Every error names the key
//! and where its value came from. This module reads files and the environment only at start-up and
//! never prints a secret; the commands that only touch the database load it with the secrets
//! left unread (`Secrets::Unread`), so they run without the agent's credentials.

mod alerts;
mod defaults;
mod paper;
mod poll;
mod raw;
mod render;
mod risk;
mod secrets;
mod sources;
mod strategy;
#[cfg(test)]
mod strategy_tests;
mod turn;
mod webhook;

#[cfg(test)]
pub(crate) use turn::TURN_BUDGET_DEFAULT;
#[cfg(test)]
pub(crate) use validate::VENUE_TIMEOUT_DEFAULT;
#[cfg(test)]
mod poll_tests;
#[cfg(test)]
mod tests;
mod validate;
#[cfg(test)]
mod watch_tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;

use rust_decimal::Decimal;

use crate::core::domain::{ProtectionMode, Side};
use crate::core::strategy::Rule;
use crate::core::trade::{PollPolicy, PollSchedule, PollSource};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VenueKind {
    Paper,
    CryptoCom,
}

/// A secret value whose `Debug` and `Display` print a mask.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"********\"")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("********")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub venue: VenueConfig,
    pub store: StoreConfig,
    pub metrics: MetricsConfig,
    pub loop_: LoopConfig,
    pub poll: PollConfig,
    pub protection: ProtectionConfig,
    pub failsafe: FailsafeConfig,
    pub signals: SignalsConfig,
    pub watchlist: Vec<WatchItem>,
    pub paper: PaperConfig,
    pub alerts: AlertsConfig,
    /// The limits that gate new entries (`[risk]`), never protection.
    pub risk: crate::core::risk::RiskLimits,
}

#[derive(Debug, Clone, Default)]
pub struct AlertsConfig {
    /// `None` when `alerts.telegram.chat_id` is unset: alerts go to the log only.
    pub telegram: Option<TelegramConfig>,
}

/// Where the Telegram Bot API sends alerts: `{base_url}/bot{token}/sendMessage` to `chat_id`.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    pub base_url: String,
    /// `None` when the token came from `$CREDENTIALS_DIRECTORY/telegram-token`.
    pub token_file: Option<PathBuf>,
    pub token: Secret,
    /// A numeric chat id (negative for groups and channels) or `@channelname`.
    pub chat_id: String,
}

#[derive(Debug, Clone)]
pub struct VenueConfig {
    pub kind: VenueKind,
    /// Prefix before the method name, e.g. `https://api.crypto.com/exchange/v1`.
    pub base_url: String,
    pub api_key: Option<String>,
    pub api_secret_file: Option<PathBuf>,
    /// The secret itself, read from `api_secret_file` or `$CREDENTIALS_DIRECTORY/api-secret`.
    pub api_secret: Option<Secret>,
    /// Confirms trading on a non-loopback `base_url`.
    pub live: bool,
    /// Total timeout of one HTTP request.
    pub timeout: Duration,
    /// Taker fee rate assumed before a fill reports the real fee (sizing only).
    pub taker_fee_rate: Decimal,
    /// Minimum order value when the exchange's risk parameters have none.
    pub min_notional_fallback: Decimal,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub path: PathBuf,
    /// Events of closed or halted trades older than this many days are deleted by `run`;
    /// 0 keeps every event.
    pub events_retention_days: u32,
}

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// `None` when `metrics.listen = "off"`.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// How often signals are checked when nothing else is due.
    pub interval: Duration,
    /// The time one loop turn may spend on exchange requests, retries and rate-limit waits;
    /// at least `venue::cryptocom::turn_budget_min` of the venue timeout.
    pub turn_budget: Duration,
}

#[derive(Debug, Clone)]
pub struct PollConfig {
    /// 1..=100.
    pub max_attempts: u32,
    /// 0.05 s ..= 60 s; the longest gap between two fill checks.
    pub interval: Duration,
    /// ≥ interval; the longest an entry is polled before it is cancelled.
    pub deadline: Duration,
    /// `fixed` (every interval from the ack) or `adaptive` (first delay, then growing).
    pub schedule: PollSchedule,
    /// `detail` (order detail) or `open-then-history` (open orders, then order history).
    pub source: PollSource,
    /// 0 ..= interval; the adaptive schedule's first delay after the ack.
    pub first_delay: Duration,
    /// 100 ..= 400; each later adaptive delay in percent of the one before.
    pub growth_percent: u32,
}

impl PollConfig {
    /// The core's fill-poll policy.
    pub fn policy(&self) -> PollPolicy {
        PollPolicy {
            schedule: self.schedule,
            source: self.source,
            first_delay_ms: i64::try_from(self.first_delay.as_millis()).unwrap_or(i64::MAX),
            growth_percent: self.growth_percent,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProtectionConfig {
    pub mode: ProtectionMode,
    /// Attempts to place protection (per trade, per protection round) before the failsafe.
    pub max_attempts: u32,
    /// How often a protected trade re-creates protection that was cancelled outside fillguard.
    pub reprotect_max: u32,
    /// How often protective orders of open trades are checked.
    pub watch_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct FailsafeConfig {
    pub on_protection_error: bool,
    pub flatten: bool,
}

#[derive(Debug, Clone)]
pub struct SignalsConfig {
    /// Signals older than this are dropped with a logged reason.
    pub ttl: Duration,
    /// Whether a second trade may open on a symbol that already has an open trade.
    pub allow_concurrent_trades: bool,
    /// The HTTP receiver that writes signals into the inbox (`[signals.webhook]`).
    pub webhook: WebhookConfig,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Size {
    Quantity(Decimal),
    /// Value in the quote asset.
    Notional(Decimal),
}

/// A watchlist entry's built-in strategy, validated (`config/strategy.rs`); the core's
/// `strategy::Rule` evaluates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Trades only on inbox signals.
    None,
    /// BUY when the fast SMA of closes crosses above the slow one, SELL when it crosses below.
    SmaCross {
        fast: u32,
        slow: u32,
        timeframe_seconds: u32,
    },
    /// BUY when Wilder's RSI over `period` crosses up through `oversold`, SELL when it crosses
    /// down through `overbought` (0 < oversold < overbought < 100).
    Rsi {
        period: u32,
        oversold: Decimal,
        overbought: Decimal,
        timeframe_seconds: u32,
    },
    /// BUY when a candle closes above `above` after one at or below it, SELL when one closes
    /// below `below` after one at or above it (at least one level; `below < above`).
    Breakout {
        above: Option<Decimal>,
        below: Option<Decimal>,
        timeframe_seconds: u32,
    },
}

impl Strategy {
    /// The core's rule and the timeframe of its candles in seconds; `None` for `none`.
    pub fn rule(&self) -> Option<(Rule, u32)> {
        let widen = |value: u32| usize::try_from(value).unwrap_or(usize::MAX);
        match *self {
            Strategy::None => None,
            Strategy::SmaCross {
                fast,
                slow,
                timeframe_seconds,
            } => Some((
                Rule::SmaCross {
                    fast: widen(fast),
                    slow: widen(slow),
                },
                timeframe_seconds,
            )),
            Strategy::Rsi {
                period,
                oversold,
                overbought,
                timeframe_seconds,
            } => Some((
                Rule::Rsi {
                    period: widen(period),
                    oversold,
                    overbought,
                },
                timeframe_seconds,
            )),
            Strategy::Breakout {
                above,
                below,
                timeframe_seconds,
            } => Some((Rule::Breakout { above, below }, timeframe_seconds)),
        }
    }
}

#[derive(Debug, Clone)]
pub struct WatchItem {
    pub symbol: String,
    pub strategy: Strategy,
    pub size: Size,
    /// Percent distance of the stop-loss from the entry price, e.g. 1.5 for 1.5 %.
    pub stop_loss_pct: Decimal,
    pub take_profit_pct: Decimal,
    /// Entry sides the strategy may open.
    pub sides: Vec<Side>,
}

#[derive(Debug, Clone)]
pub struct PaperInstrument {
    pub symbol: String,
    pub base: String,
    pub quote: String,
    pub price_tick: Decimal,
    pub quantity_tick: Decimal,
    pub min_quantity: Decimal,
    pub min_notional: Decimal,
    pub start_price: Decimal,
}

#[derive(Debug, Clone)]
pub struct PaperConfig {
    /// Seed of the synthetic price path.
    pub seed: u64,
    /// Paper time runs this many times faster than the wall clock (1 = real time).
    pub speed: u32,
    pub balances: BTreeMap<String, Decimal>,
    pub instruments: Vec<PaperInstrument>,
    /// Delay before an accepted order's fills become visible.
    pub fill_delay: Duration,
    pub taker_fee_rate: Decimal,
    /// Paper time between two steps of the price path.
    pub step: Duration,
    /// Standard deviation of one step's relative price change, e.g. 0.002.
    pub volatility: Decimal,
    /// Replays candles from this CSV instead of the synthetic walk.
    pub candles_csv: Option<PathBuf>,
}

pub use paper::{candle_lookback, paper_settings};
pub use render::render_masked;
pub use secrets::Secrets;
pub use webhook::WebhookConfig;

/// The configuration file read when no `--config` is given, if it exists.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/fillguard/fillguard.toml";

/// Environment variables the configuration reads besides `FILLGUARD_*` and the legacy names.
const SYSTEMD_ENV: [&str; 2] = ["STATE_DIRECTORY", "CREDENTIALS_DIRECTORY"];

/// A configuration that could not be loaded. The message names the key and where its value came
/// from (built-in defaults, a TOML file or an environment variable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    key: Option<String>,
    message: String,
}

impl ConfigError {
    fn new(message: String) -> ConfigError {
        ConfigError { key: None, message }
    }

    fn for_key(key: &str, message: String) -> ConfigError {
        ConfigError {
            key: Some(key.to_string()),
            message,
        }
    }

    /// The offending key, e.g. `poll.max_attempts` or `watchlist[1].notional`, when there is one.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
}

/// Loads the configuration from `file` (else [`DEFAULT_CONFIG_PATH`] if it exists) and the process
/// environment, reading the secrets.
pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
    load_with(file, Secrets::Read)
}

/// [`load`], reading the secrets or leaving them unread as `secrets` says.
pub fn load_with(file: Option<&Path>, secrets: Secrets) -> Result<Config, ConfigError> {
    let default_path = Path::new(DEFAULT_CONFIG_PATH);
    let file = match file {
        Some(path) => Some(path),
        None if default_path.exists() => Some(default_path),
        None => None,
    };
    let env: BTreeMap<String, String> = std::env::vars_os()
        .filter_map(|(name, value)| Some((name.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(name, _)| is_config_env(name))
        .collect();
    load_from_with(file, &env, secrets)
}

fn is_config_env(name: &str) -> bool {
    name.starts_with(sources::ENV_PREFIX)
        || sources::LEGACY_ENV
            .iter()
            .any(|(legacy, _)| *legacy == name)
        || SYSTEMD_ENV.contains(&name)
}

/// Loads the configuration from `file` (only that file; a missing file is an error) and the given
/// environment map, never the process environment, reading the secrets.
pub fn load_from(
    file: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Result<Config, ConfigError> {
    load_from_with(file, env, Secrets::Read)
}

/// [`load_from`], reading the secrets or leaving them unread as `secrets` says.
pub fn load_from_with(
    file: Option<&Path>,
    env: &BTreeMap<String, String>,
    secrets: Secrets,
) -> Result<Config, ConfigError> {
    let defaults = defaults::raw(env);
    let figment = sources::figment(&defaults, file, env)?;
    let raw: raw::RawConfig = figment
        .extract()
        .map_err(|error| from_figment(&figment, error))?;
    validate::config(&figment, &raw, env, secrets)
}

/// Turns figment's first error into one that names the key and its source.
fn from_figment(figment: &Figment, error: figment::Error) -> ConfigError {
    let error = error
        .into_iter()
        .next()
        .expect("a figment error holds at least one error");
    let key = key_text(&error.path);
    if let figment::error::Kind::UnknownField(field, _) = &error.kind {
        // Figment's path usually ends with the unknown field already.
        let full = if error.path.last() == Some(field) || key.is_empty() {
            if key.is_empty() {
                field.clone()
            } else {
                key.clone()
            }
        } else {
            format!("{key}.{field}")
        };
        let origin = sources::origin(figment, &full);
        return ConfigError::for_key(&full, format!("unknown key `{full}` in {origin}"));
    }
    let origin = sources::origin(figment, &key);
    let reason = match &error.kind {
        figment::error::Kind::InvalidType(actual, expected) => {
            // The raw layer's struct names mean nothing to an operator.
            let expected = if expected.starts_with("struct Raw") {
                "a table"
            } else {
                expected
            };
            format!("invalid type: found {actual}, expected {expected}")
        }
        kind => kind.to_string(),
    };
    ConfigError::for_key(&key, format!("{key} (from {origin}): {reason}"))
}

/// `["watchlist", "1", "notional"]` → `watchlist[1].notional`.
fn key_text(path: &[String]) -> String {
    let mut text = String::new();
    for part in path {
        if part.parse::<usize>().is_ok() {
            text.push_str(&format!("[{part}]"));
        } else {
            if !text.is_empty() {
                text.push('.');
            }
            text.push_str(part);
        }
    }
    text
}
