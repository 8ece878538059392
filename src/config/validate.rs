//! Validation of the merged raw layer into the typed `Config`. Every bound is a named constant;
//! every error names the key, its value and the layer it came from. Reads no file itself (the
//! secrets are `secrets.rs`'s).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use figment::Figment;
use rust_decimal::{Decimal, RoundingStrategy};

use super::defaults;
use super::raw::{Num, RawConfig, RawInstrument, RawPaper, RawVenue, RawWatchItem};
use super::secrets::{CREDENTIAL_NAME, Secrets, secret};
use super::sources::origin;
use super::{
    Config, ConfigError, FailsafeConfig, MetricsConfig, PaperConfig, PaperInstrument,
    ProtectionConfig, SignalsConfig, Size, StoreConfig, Strategy, VenueConfig, VenueKind,
    WatchItem,
};
use crate::core::domain::{ProtectionMode, Side};

pub(crate) const POLL_ATTEMPTS_MIN: u32 = 1;
pub(crate) const POLL_ATTEMPTS_MAX: u32 = 100;
pub(crate) const POLL_ATTEMPTS_DEFAULT: u32 = 10;
pub(crate) const POLL_INTERVAL_MIN: Duration = Duration::from_millis(50);
pub(crate) const POLL_INTERVAL_MAX: Duration = Duration::from_secs(60);
pub(crate) const POLL_INTERVAL_DEFAULT: Duration = Duration::from_secs(1);
pub(crate) const POLL_DEADLINE_MAX: Duration = Duration::from_secs(3600);
pub(crate) const POLL_DEADLINE_DEFAULT: Duration = Duration::from_secs(30);
pub(crate) const VENUE_TIMEOUT_MIN: Duration = Duration::from_secs(1);
pub(crate) const VENUE_TIMEOUT_MAX: Duration = Duration::from_secs(120);
pub(crate) const VENUE_TIMEOUT_DEFAULT: Duration = Duration::from_secs(10);
pub(crate) const LOOP_INTERVAL_MIN: Duration = Duration::from_millis(50);
pub(crate) const LOOP_INTERVAL_MAX: Duration = Duration::from_secs(3600);
pub(crate) const LOOP_INTERVAL_DEFAULT: Duration = Duration::from_secs(5);
pub(crate) const PROTECTION_ATTEMPTS_MIN: u32 = 1;
pub(crate) const PROTECTION_ATTEMPTS_MAX: u32 = 10;
pub(crate) const PROTECTION_ATTEMPTS_DEFAULT: u32 = 3;
pub(crate) const REPROTECT_MIN: u32 = 0;
pub(crate) const REPROTECT_MAX: u32 = 10;
pub(crate) const REPROTECT_DEFAULT: u32 = 3;
pub(crate) const WATCH_INTERVAL_MIN: Duration = Duration::from_millis(50);
pub(crate) const WATCH_INTERVAL_MAX: Duration = Duration::from_secs(3600);
pub(crate) const WATCH_INTERVAL_DEFAULT: Duration = Duration::from_secs(5);
pub(crate) const SIGNAL_TTL_MIN: Duration = Duration::from_secs(1);
pub(crate) const SIGNAL_TTL_MAX: Duration = Duration::from_secs(86_400);
pub(crate) const SIGNAL_TTL_DEFAULT: Duration = Duration::from_secs(300);
pub(crate) const WATCHLIST_MAX: usize = 1_000;
pub(crate) const SMA_PERIOD_MIN: u32 = 1;
/// An SMA reads `sma_slow + 1` closed candles, at most one request's worth.
pub(crate) const SMA_PERIOD_MAX: u32 = crate::core::strategy::CANDLES_MAX as u32 - 1;
pub(crate) const SMA_FAST_DEFAULT: u32 = 3;
pub(crate) const SMA_SLOW_DEFAULT: u32 = 8;
pub(crate) const TIMEFRAME_SECONDS_MIN: u32 = 1;
pub(crate) const TIMEFRAME_SECONDS_MAX: u32 = 86_400;
pub(crate) const TIMEFRAME_SECONDS_DEFAULT: u32 = 60;
/// Stop-loss and take-profit distances are percentages strictly between 0 and this.
pub(crate) const PERCENT_MAX: Decimal = Decimal::from_parts(100, 0, 0, false, 0);
/// A watchlist stop-loss, in percent of the entry price. Below 0.1 % the stop sits inside the
/// spread and a few ticks of noise, so it fires at once and protects nothing; above 25 % it is
/// no longer a stop but a quarter of the position given away (50 % was accepted before).
pub(crate) const STOP_LOSS_PCT_MIN: Decimal = Decimal::from_parts(1, 0, 0, false, 1);
pub(crate) const STOP_LOSS_PCT_MAX: Decimal = Decimal::from_parts(25, 0, 0, false, 0);
/// A watchlist take-profit, in percent of the entry price: at least 0.2 % (two taker fills at
/// the paper venue's default 0.1 % a side), and above the round trip at the venue's own rate
/// in effect (`check_take_profit_fees`: 0.5 % at Crypto.com's default 0.25 %); below 100 %.
pub(crate) const TAKE_PROFIT_PCT_MIN: Decimal = Decimal::from_parts(2, 0, 0, false, 1);
pub(crate) const TAKE_PROFIT_PCT_MAX: Decimal = PERCENT_MAX;
/// The largest entry size a watchlist item may ask for, in base units (`quantity`) and in the
/// quote asset (`notional`): beyond them the value is a typing error (a missing decimal
/// point), and the bounds keep every product of size and price far inside `Decimal`'s range.
pub(crate) const QUANTITY_MAX: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);
pub(crate) const NOTIONAL_MAX: Decimal = Decimal::from_parts(10_000_000, 0, 0, false, 0);
pub(crate) const SYMBOL_LENGTH_MAX: usize = 32;
pub(crate) const PAPER_SEED_DEFAULT: u64 = 7;
pub(crate) const PAPER_SPEED_MIN: u32 = 1;
pub(crate) const PAPER_SPEED_MAX: u32 = 10_000;
/// Events of closed trades are kept this many days; 0 keeps them for ever (the default: the
/// audit trail is what post-mortems read, and deleting it is the operator's choice).
pub(crate) const EVENTS_RETENTION_DAYS_DEFAULT: u32 = 0;
/// A hundred years: anything longer is a typing error.
pub(crate) const EVENTS_RETENTION_DAYS_MAX: u32 = 36_500;
pub(crate) const PAPER_SPEED_DEFAULT: u32 = 50;
pub(crate) const FILL_DELAY_MS_MAX: u64 = 60_000;
pub(crate) const FILL_DELAY_MS_DEFAULT: u64 = 300;
/// 0.1, i.e. 10 % of the traded value.
pub(crate) const TAKER_FEE_RATE_MAX: Decimal = Decimal::from_parts(1, 0, 0, false, 1);
pub(crate) const PAPER_STEP_MIN: Duration = Duration::from_millis(10);
pub(crate) const PAPER_STEP_MAX: Duration = Duration::from_secs(3600);
pub(crate) const PAPER_STEP_DEFAULT: Duration = Duration::from_secs(1);
/// 0.5, a 50 % standard deviation per step: anything above is a typo.
pub(crate) const VOLATILITY_MAX: Decimal = Decimal::from_parts(5, 0, 0, false, 1);
pub(crate) const PAPER_INSTRUMENTS_MAX: usize = 1_000;
pub(crate) const PAPER_BALANCES_MAX: usize = 1_000;

const _: () = assert!(POLL_ATTEMPTS_MIN >= 1 && POLL_ATTEMPTS_MIN <= POLL_ATTEMPTS_DEFAULT);
const _: () = assert!(POLL_ATTEMPTS_DEFAULT <= POLL_ATTEMPTS_MAX);
const _: () = assert!(POLL_INTERVAL_MIN.as_nanos() <= POLL_INTERVAL_DEFAULT.as_nanos());
const _: () = assert!(POLL_INTERVAL_DEFAULT.as_nanos() <= POLL_INTERVAL_MAX.as_nanos());
// Any valid interval leaves room for a deadline, and the default deadline fits the default interval.
const _: () = assert!(POLL_INTERVAL_MAX.as_nanos() <= POLL_DEADLINE_MAX.as_nanos());
const _: () = assert!(POLL_INTERVAL_DEFAULT.as_nanos() <= POLL_DEADLINE_DEFAULT.as_nanos());
const _: () = assert!(POLL_DEADLINE_DEFAULT.as_nanos() <= POLL_DEADLINE_MAX.as_nanos());
const _: () = assert!(VENUE_TIMEOUT_MIN.as_nanos() <= VENUE_TIMEOUT_DEFAULT.as_nanos());
const _: () = assert!(VENUE_TIMEOUT_DEFAULT.as_nanos() <= VENUE_TIMEOUT_MAX.as_nanos());
const _: () = assert!(LOOP_INTERVAL_MIN.as_nanos() <= LOOP_INTERVAL_DEFAULT.as_nanos());
const _: () = assert!(LOOP_INTERVAL_DEFAULT.as_nanos() <= LOOP_INTERVAL_MAX.as_nanos());
const _: () = assert!(PROTECTION_ATTEMPTS_MIN >= 1);
const _: () = assert!(PROTECTION_ATTEMPTS_MIN <= PROTECTION_ATTEMPTS_DEFAULT);
const _: () = assert!(PROTECTION_ATTEMPTS_DEFAULT <= PROTECTION_ATTEMPTS_MAX);
const _: () = assert!(REPROTECT_DEFAULT <= REPROTECT_MAX);
const _: () = assert!(WATCH_INTERVAL_MIN.as_nanos() <= WATCH_INTERVAL_DEFAULT.as_nanos());
const _: () = assert!(WATCH_INTERVAL_DEFAULT.as_nanos() <= WATCH_INTERVAL_MAX.as_nanos());
const _: () = assert!(SIGNAL_TTL_MIN.as_nanos() <= SIGNAL_TTL_DEFAULT.as_nanos());
const _: () = assert!(SIGNAL_TTL_DEFAULT.as_nanos() <= SIGNAL_TTL_MAX.as_nanos());
const _: () = assert!(SMA_PERIOD_MIN >= 1 && SMA_PERIOD_MIN <= SMA_FAST_DEFAULT);
const _: () = assert!(SMA_FAST_DEFAULT < SMA_SLOW_DEFAULT && SMA_SLOW_DEFAULT <= SMA_PERIOD_MAX);
const _: () = assert!(TIMEFRAME_SECONDS_MIN >= 1);
const _: () = assert!(TIMEFRAME_SECONDS_MIN <= TIMEFRAME_SECONDS_DEFAULT);
const _: () = assert!(TIMEFRAME_SECONDS_DEFAULT <= TIMEFRAME_SECONDS_MAX);
const _: () = assert!(PAPER_SPEED_MIN >= 1 && PAPER_SPEED_MIN <= PAPER_SPEED_DEFAULT);
const _: () = assert!(PAPER_SPEED_DEFAULT <= PAPER_SPEED_MAX);
const _: () = assert!(FILL_DELAY_MS_DEFAULT <= FILL_DELAY_MS_MAX);
const _: () = assert!(PAPER_STEP_MIN.as_nanos() <= PAPER_STEP_DEFAULT.as_nanos());
const _: () = assert!(PAPER_STEP_DEFAULT.as_nanos() <= PAPER_STEP_MAX.as_nanos());

/// Looks up where a key's value came from while checking values.
pub(super) struct Check<'a> {
    pub(super) figment: &'a Figment,
    /// Whether the secrets are read (and required where needed) or left unread.
    pub(super) secrets: Secrets,
}

impl Check<'_> {
    pub(super) fn invalid(&self, key: &str, value: &dyn Display, reason: &str) -> ConfigError {
        let origin = origin(self.figment, key);
        ConfigError::for_key(key, format!("{key} = {value} (from {origin}): {reason}"))
    }

    pub(super) fn required<T>(&self, key: &str, value: Option<T>) -> Result<T, ConfigError> {
        value.ok_or_else(|| {
            let origin = origin(self.figment, key);
            ConfigError::for_key(key, format!("{key} is required (in {origin})"))
        })
    }

    pub(super) fn text<'v>(
        &self,
        key: &str,
        value: Option<&'v String>,
    ) -> Result<&'v str, ConfigError> {
        let value = self.required(key, value)?.trim();
        if value.is_empty() {
            return Err(self.invalid(key, &"\"\"", "must not be empty"));
        }
        Ok(value)
    }

    fn count(&self, key: &str, value: Option<Num>, min: u64, max: u64) -> Result<u64, ConfigError> {
        let value = self.required(key, value)?;
        let whole = value.0.fract().is_zero();
        if !whole || value.0 < Decimal::from(min) || value.0 > Decimal::from(max) {
            let reason = format!("must be a whole number between {min} and {max}");
            return Err(self.invalid(key, &value, &reason));
        }
        Ok(u64::try_from(value.0).expect("a whole number within u64 bounds"))
    }

    pub(super) fn count_u32(
        &self,
        key: &str,
        value: Option<Num>,
        min: u32,
        max: u32,
    ) -> Result<u32, ConfigError> {
        let count = self.count(key, value, min.into(), max.into())?;
        Ok(u32::try_from(count).expect("bounded by a u32 maximum"))
    }

    pub(super) fn seconds(
        &self,
        key: &str,
        value: Option<Num>,
        min: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        let value = self.required(key, value)?;
        let (min_seconds, max_seconds) = (defaults::seconds(min), defaults::seconds(max));
        if value.0 < min_seconds.0 || value.0 > max_seconds.0 {
            let reason = format!("must be between {min_seconds} and {max_seconds} seconds");
            return Err(self.invalid(key, &value, &reason));
        }
        // Sub-nanosecond digits are dropped; the bounds keep the product far inside u64.
        let nanos = (value.0 * Decimal::from(1_000_000_000_u64))
            .round_dp_with_strategy(0, RoundingStrategy::ToZero);
        Ok(Duration::from_nanos(
            u64::try_from(nanos).expect("bounded seconds fit in u64 nanoseconds"),
        ))
    }

    /// A decimal in `min..=max` (or `min < value < max` when `exclusive`).
    pub(super) fn decimal(
        &self,
        key: &str,
        value: Option<Num>,
        (min, max): (Decimal, Option<Decimal>),
        exclusive: bool,
    ) -> Result<Decimal, ConfigError> {
        let value = self.required(key, value)?;
        let below = if exclusive {
            value.0 <= min
        } else {
            value.0 < min
        };
        let above = max.is_some_and(|max| {
            if exclusive {
                value.0 >= max
            } else {
                value.0 > max
            }
        });
        if below || above {
            let (open, close) = if exclusive {
                ("greater than", "less than")
            } else {
                ("at least", "at most")
            };
            let reason = match max {
                Some(max) => format!("must be {open} {min} and {close} {max}"),
                None => format!("must be {open} {min}"),
            };
            return Err(self.invalid(key, &value, &reason));
        }
        Ok(value.0.normalize())
    }

    fn positive(&self, key: &str, value: Option<Num>) -> Result<Decimal, ConfigError> {
        self.decimal(key, value, (Decimal::ZERO, None), true)
    }

    /// An entry size: greater than zero and at most `max`.
    fn size(&self, key: &str, value: Num, max: Decimal) -> Result<Decimal, ConfigError> {
        let size = self.positive(key, Some(value))?;
        if size > max {
            let reason = format!("must be greater than 0 and at most {max}");
            return Err(self.invalid(key, &size, &reason));
        }
        Ok(size)
    }

    fn symbol(&self, key: &str, value: Option<&String>) -> Result<String, ConfigError> {
        let symbol = self.text(key, value)?;
        let allowed = |c: char| c.is_ascii_uppercase() || c.is_ascii_digit() || "_-.".contains(c);
        if symbol.len() > SYMBOL_LENGTH_MAX || !symbol.chars().all(allowed) {
            let reason = format!(
                "must be at most {SYMBOL_LENGTH_MAX} uppercase letters, digits, `_`, `-` or `.`, like BTC_USDT"
            );
            return Err(self.invalid(key, &format!("{symbol:?}"), &reason));
        }
        Ok(symbol.to_string())
    }
}

pub(crate) fn config(
    figment: &Figment,
    raw: &RawConfig,
    env: &BTreeMap<String, String>,
    secrets: Secrets,
) -> Result<Config, ConfigError> {
    let c = Check { figment, secrets };
    let venue = venue(&c, &raw.venue, env)?;
    // The turn's budget is checked against the venue's timeout.
    let loop_ = super::turn::loop_config(&c, &raw.loop_, venue.timeout)?;
    let config = Config {
        venue,
        store: StoreConfig {
            path: PathBuf::from(c.text("store.path", raw.store.path.as_ref())?),
            events_retention_days: c.count_u32(
                "store.events_retention_days",
                raw.store.events_retention_days,
                0,
                EVENTS_RETENTION_DAYS_MAX,
            )?,
        },
        metrics: MetricsConfig {
            listen: listen(&c, raw.metrics.listen.as_ref())?,
        },
        loop_,
        poll: super::poll::poll_config(&c, &raw.poll)?,
        protection: protection(&c, raw)?,
        failsafe: FailsafeConfig {
            on_protection_error: c
                .required(
                    "failsafe.on_protection_error",
                    raw.failsafe.on_protection_error,
                )?
                .0,
            flatten: c.required("failsafe.flatten", raw.failsafe.flatten)?.0,
        },
        signals: signals(&c, raw, env)?,
        watchlist: watchlist(&c, raw.watchlist.as_ref())?,
        paper: paper(&c, &raw.paper)?,
        alerts: super::alerts::alerts(&c, &raw.alerts, env)?,
        risk: super::risk::risk(&c, &raw.risk)?,
    };
    check_paper_symbols(&c, &config)?;
    super::paper::check_timeframes(&c, &config)?;
    check_take_profit_fees(&c, &config)?;
    super::risk::check_against(&c, &config)?;
    Ok(config)
}

fn venue(
    c: &Check<'_>,
    raw: &RawVenue,
    env: &BTreeMap<String, String>,
) -> Result<VenueConfig, ConfigError> {
    let kind_text = c.text("venue.kind", raw.kind.as_ref())?;
    let kind = match kind_text {
        "paper" => VenueKind::Paper,
        "cryptocom" => VenueKind::CryptoCom,
        other => {
            let reason = "must be paper or cryptocom";
            return Err(c.invalid("venue.kind", &format!("{other:?}"), reason));
        }
    };
    let api_key = raw
        .api_key
        .as_deref()
        .map(str::trim)
        .filter(|key| !key.is_empty());
    let api_secret_file = raw
        .api_secret_file
        .as_deref()
        .filter(|path| !path.is_empty())
        .map(PathBuf::from);
    let api_secret = secret(
        c,
        "venue.api_secret_file",
        api_secret_file.as_deref(),
        env,
        CREDENTIAL_NAME,
    )?;
    if kind == VenueKind::CryptoCom {
        let origin = origin(c.figment, "venue.kind");
        if api_key.is_none() {
            let message =
                format!("venue.api_key is required when venue.kind = cryptocom (from {origin})");
            return Err(ConfigError::for_key("venue.api_key", message));
        }
        if api_secret.is_none() && c.secrets == Secrets::Read {
            let message = format!(
                "venue.api_secret_file is required when venue.kind = cryptocom (from {origin}); \
                 set it or provide $CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME}"
            );
            return Err(ConfigError::for_key("venue.api_secret_file", message));
        }
    }
    Ok(VenueConfig {
        kind,
        base_url: base_url(c, "venue.base_url", raw.base_url.as_ref())?,
        api_key: api_key.map(str::to_string),
        api_secret_file,
        api_secret,
        live: c.required("venue.live", raw.live)?.0,
        timeout: c.seconds(
            "venue.timeout_seconds",
            raw.timeout_seconds,
            VENUE_TIMEOUT_MIN,
            VENUE_TIMEOUT_MAX,
        )?,
        taker_fee_rate: c.decimal(
            "venue.taker_fee_rate",
            raw.taker_fee_rate,
            (Decimal::ZERO, Some(Decimal::new(1, 1))),
            false,
        )?,
        min_notional_fallback: c.decimal(
            "venue.min_notional_fallback",
            raw.min_notional_fallback,
            (Decimal::ZERO, None),
            false,
        )?,
    })
}

/// An `https://` URL without its trailing slash; `http://` only for a loopback host (a local
/// simulator or proxy), since credentials travel in every request (the Crypto.com key and
/// signature, the Telegram token in the path).
pub(super) fn base_url(
    c: &Check<'_>,
    key: &str,
    value: Option<&String>,
) -> Result<String, ConfigError> {
    let url = c.text(key, value)?.trim_end_matches('/');
    let (rest, plain) = match url.strip_prefix("https://") {
        Some(rest) => (Some(rest), false),
        None => (url.strip_prefix("http://"), true),
    };
    match rest {
        Some(rest) if !rest.is_empty() && (!plain || is_loopback_host(rest)) => Ok(url.to_string()),
        Some(rest) if !rest.is_empty() => Err(c.invalid(
            key,
            &format!("{url:?}"),
            "must use https:// (plain http:// only to a loopback address such as 127.0.0.1): credentials travel in every request",
        )),
        _ => Err(c.invalid(
            key,
            &format!("{url:?}"),
            "must start with https:// (or http:// to a loopback address)",
        )),
    }
}

/// Whether the authority at the start of `rest` (`host[:port][/path]`) is a loopback host.
fn is_loopback_host(rest: &str) -> bool {
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

fn listen(c: &Check<'_>, value: Option<&String>) -> Result<Option<SocketAddr>, ConfigError> {
    let key = "metrics.listen";
    let text = c.text(key, value)?;
    if text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let reason = "must be an address and port like 127.0.0.1:9477, or off";
    SocketAddr::from_str(text)
        .map(Some)
        .map_err(|_| c.invalid(key, &format!("{text:?}"), reason))
}

fn protection(c: &Check<'_>, raw: &RawConfig) -> Result<ProtectionConfig, ConfigError> {
    let raw = &raw.protection;
    let mode_text = c.text("protection.mode", raw.mode.as_ref())?;
    let mode = ProtectionMode::from_str(mode_text).map_err(|_| {
        let reason = "must be oco, otoco or separate";
        c.invalid("protection.mode", &format!("{mode_text:?}"), reason)
    })?;
    Ok(ProtectionConfig {
        mode,
        max_attempts: c.count_u32(
            "protection.max_attempts",
            raw.max_attempts,
            PROTECTION_ATTEMPTS_MIN,
            PROTECTION_ATTEMPTS_MAX,
        )?,
        reprotect_max: c.count_u32(
            "protection.reprotect_max",
            raw.reprotect_max,
            REPROTECT_MIN,
            REPROTECT_MAX,
        )?,
        watch_interval: c.seconds(
            "protection.watch_interval_seconds",
            raw.watch_interval_seconds,
            WATCH_INTERVAL_MIN,
            WATCH_INTERVAL_MAX,
        )?,
    })
}

fn signals(
    c: &Check<'_>,
    raw: &RawConfig,
    env: &BTreeMap<String, String>,
) -> Result<SignalsConfig, ConfigError> {
    Ok(SignalsConfig {
        ttl: c.seconds(
            "signals.ttl_seconds",
            raw.signals.ttl_seconds,
            SIGNAL_TTL_MIN,
            SIGNAL_TTL_MAX,
        )?,
        allow_concurrent_trades: c
            .required(
                "signals.allow_concurrent_trades",
                raw.signals.allow_concurrent_trades,
            )?
            .0,
        webhook: super::webhook::webhook(c, &raw.signals.webhook, env)?,
    })
}

fn watchlist(
    c: &Check<'_>,
    items: Option<&Vec<RawWatchItem>>,
) -> Result<Vec<WatchItem>, ConfigError> {
    let items = c.required("watchlist", items)?;
    if items.len() > WATCHLIST_MAX {
        let reason = format!("must have at most {WATCHLIST_MAX} entries");
        return Err(c.invalid("watchlist", &format!("{} entries", items.len()), &reason));
    }
    let mut watchlist: Vec<WatchItem> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let parsed = watch_item(c, index, item)?;
        if watchlist.iter().any(|other| other.symbol == parsed.symbol) {
            let key = format!("watchlist[{index}].symbol");
            let value = format!("{:?}", parsed.symbol);
            return Err(c.invalid(&key, &value, "appears twice in the watchlist"));
        }
        watchlist.push(parsed);
    }
    Ok(watchlist)
}

fn watch_item(c: &Check<'_>, index: usize, item: &RawWatchItem) -> Result<WatchItem, ConfigError> {
    let key = |field: &str| format!("watchlist[{index}].{field}");
    Ok(WatchItem {
        symbol: c.symbol(&key("symbol"), item.symbol.as_ref())?,
        strategy: strategy(c, index, item)?,
        size: size(c, index, item)?,
        stop_loss_pct: c.decimal(
            &key("stop_loss_pct"),
            item.stop_loss_pct,
            (STOP_LOSS_PCT_MIN, Some(STOP_LOSS_PCT_MAX)),
            false,
        )?,
        take_profit_pct: take_profit_pct(c, &key("take_profit_pct"), item.take_profit_pct)?,
        sides: sides(c, &key("sides"), item.sides.as_ref())?,
    })
}

/// At least `TAKE_PROFIT_PCT_MIN`, below 100: a SELL entry's target is the entry price less
/// this share of it, and at 100 % that is a price of zero.
fn take_profit_pct(c: &Check<'_>, key: &str, value: Option<Num>) -> Result<Decimal, ConfigError> {
    let bounds = (TAKE_PROFIT_PCT_MIN, Some(TAKE_PROFIT_PCT_MAX));
    let pct = c.decimal(key, value, bounds, false)?;
    if pct >= TAKE_PROFIT_PCT_MAX {
        let reason = format!(
            "must be at least {TAKE_PROFIT_PCT_MIN} and less than {TAKE_PROFIT_PCT_MAX} (a SELL entry's target would be a price of zero)"
        );
        return Err(c.invalid(key, &pct, &reason));
    }
    Ok(pct)
}

/// A take-profit must beat the round trip's taker fees at the venue's rate in effect
/// (`venue.taker_fee_rate`, or `paper.taker_fee_rate` on paper): below them every winning
/// trade closes at a loss.
fn check_take_profit_fees(c: &Check<'_>, config: &Config) -> Result<(), ConfigError> {
    let (rate, rate_key) = match config.venue.kind {
        VenueKind::Paper => (config.paper.taker_fee_rate, "paper.taker_fee_rate"),
        VenueKind::CryptoCom => (config.venue.taker_fee_rate, "venue.taker_fee_rate"),
    };
    let round_trip_pct = rate * Decimal::from(200);
    for (index, item) in config.watchlist.iter().enumerate() {
        if item.take_profit_pct <= round_trip_pct {
            let key = format!("watchlist[{index}].take_profit_pct");
            let reason = format!(
                "must be above the round trip's taker fees, {}% at {rate_key} = {}: below them every winning trade closes at a loss",
                round_trip_pct.normalize(),
                rate.normalize()
            );
            return Err(c.invalid(&key, &item.take_profit_pct, &reason));
        }
    }
    Ok(())
}

fn strategy(c: &Check<'_>, index: usize, item: &RawWatchItem) -> Result<Strategy, ConfigError> {
    super::strategy::strategy(c, index, item)
}

fn size(c: &Check<'_>, index: usize, item: &RawWatchItem) -> Result<Size, ConfigError> {
    let key = |field: &str| format!("watchlist[{index}].{field}");
    match (item.quantity, item.notional) {
        (Some(quantity), None) => Ok(Size::Quantity(c.size(
            &key("quantity"),
            quantity,
            QUANTITY_MAX,
        )?)),
        (None, Some(notional)) => Ok(Size::Notional(c.size(
            &key("notional"),
            notional,
            NOTIONAL_MAX,
        )?)),
        (quantity, _) => {
            let entry = format!("watchlist[{index}]");
            let origin = origin(c.figment, &entry);
            let problem = if quantity.is_some() {
                "has both"
            } else {
                "has neither"
            };
            let message =
                format!("{entry} (from {origin}) {problem} quantity and notional; set exactly one");
            Err(ConfigError::for_key(&entry, message))
        }
    }
}

fn sides(c: &Check<'_>, key: &str, value: Option<&Vec<String>>) -> Result<Vec<Side>, ConfigError> {
    let Some(texts) = value else {
        return Ok(vec![Side::Buy, Side::Sell]);
    };
    let shown = format!("{texts:?}");
    let mut sides = Vec::with_capacity(texts.len());
    for text in texts {
        let side = Side::from_str(text)
            .map_err(|_| c.invalid(key, &shown, "sides must be BUY or SELL"))?;
        if sides.contains(&side) {
            return Err(c.invalid(key, &shown, "lists a side twice"));
        }
        sides.push(side);
    }
    if sides.is_empty() {
        return Err(c.invalid(key, &shown, "must list at least one of BUY and SELL"));
    }
    Ok(sides)
}

fn paper(c: &Check<'_>, raw: &RawPaper) -> Result<PaperConfig, ConfigError> {
    let fill_delay_ms = c.count(
        "paper.fill_delay_ms",
        raw.fill_delay_ms,
        0,
        FILL_DELAY_MS_MAX,
    )?;
    let candles_csv = match raw.candles_csv.as_ref() {
        Some(path) => Some(PathBuf::from(c.text("paper.candles_csv", Some(path))?)),
        None => None,
    };
    Ok(PaperConfig {
        seed: c.count("paper.seed", raw.seed, 0, u64::MAX)?,
        speed: c.count_u32("paper.speed", raw.speed, PAPER_SPEED_MIN, PAPER_SPEED_MAX)?,
        balances: balances(c, raw.balances.as_ref())?,
        instruments: instruments(c, raw.instruments.as_ref())?,
        fill_delay: Duration::from_millis(fill_delay_ms),
        taker_fee_rate: c.decimal(
            "paper.taker_fee_rate",
            raw.taker_fee_rate,
            (Decimal::ZERO, Some(TAKER_FEE_RATE_MAX)),
            false,
        )?,
        step: c.seconds(
            "paper.step_seconds",
            raw.step_seconds,
            PAPER_STEP_MIN,
            PAPER_STEP_MAX,
        )?,
        volatility: c.decimal(
            "paper.volatility",
            raw.volatility,
            (Decimal::ZERO, Some(VOLATILITY_MAX)),
            false,
        )?,
        candles_csv,
    })
}

fn balances(
    c: &Check<'_>,
    raw: Option<&BTreeMap<String, Num>>,
) -> Result<BTreeMap<String, Decimal>, ConfigError> {
    let raw = c.required("paper.balances", raw)?;
    if raw.len() > PAPER_BALANCES_MAX {
        let reason = format!("must have at most {PAPER_BALANCES_MAX} assets");
        return Err(c.invalid("paper.balances", &format!("{} assets", raw.len()), &reason));
    }
    let mut balances = BTreeMap::new();
    for (asset, amount) in raw {
        let key = format!("paper.balances.{asset}");
        let asset = c.symbol(&key, Some(asset))?;
        let amount = c.decimal(&key, Some(*amount), (Decimal::ZERO, None), false)?;
        balances.insert(asset, amount);
    }
    Ok(balances)
}

fn instruments(
    c: &Check<'_>,
    raw: Option<&Vec<RawInstrument>>,
) -> Result<Vec<PaperInstrument>, ConfigError> {
    let raw = c.required("paper.instruments", raw)?;
    if raw.len() > PAPER_INSTRUMENTS_MAX {
        let reason = format!("must have at most {PAPER_INSTRUMENTS_MAX} entries");
        return Err(c.invalid(
            "paper.instruments",
            &format!("{} entries", raw.len()),
            &reason,
        ));
    }
    let mut instruments: Vec<PaperInstrument> = Vec::with_capacity(raw.len());
    for (index, item) in raw.iter().enumerate() {
        let instrument = instrument(c, index, item)?;
        if instruments
            .iter()
            .any(|other| other.symbol == instrument.symbol)
        {
            let key = format!("paper.instruments[{index}].symbol");
            let value = format!("{:?}", instrument.symbol);
            return Err(c.invalid(&key, &value, "appears twice in paper.instruments"));
        }
        instruments.push(instrument);
    }
    Ok(instruments)
}

fn instrument(
    c: &Check<'_>,
    index: usize,
    raw: &RawInstrument,
) -> Result<PaperInstrument, ConfigError> {
    let key = |field: &str| format!("paper.instruments[{index}].{field}");
    Ok(PaperInstrument {
        symbol: c.symbol(&key("symbol"), raw.symbol.as_ref())?,
        base: c.symbol(&key("base"), raw.base.as_ref())?,
        quote: c.symbol(&key("quote"), raw.quote.as_ref())?,
        price_tick: c.positive(&key("price_tick"), raw.price_tick)?,
        quantity_tick: c.positive(&key("quantity_tick"), raw.quantity_tick)?,
        min_quantity: c.positive(&key("min_quantity"), raw.min_quantity)?,
        min_notional: c.positive(&key("min_notional"), raw.min_notional)?,
        start_price: c.positive(&key("start_price"), raw.start_price)?,
    })
}

/// On the paper venue every watched symbol must be a paper instrument.
fn check_paper_symbols(c: &Check<'_>, config: &Config) -> Result<(), ConfigError> {
    if config.venue.kind != VenueKind::Paper {
        return Ok(());
    }
    let known: Vec<&str> = config
        .paper
        .instruments
        .iter()
        .map(|i| i.symbol.as_str())
        .collect();
    for (index, item) in config.watchlist.iter().enumerate() {
        if !known.contains(&item.symbol.as_str()) {
            let key = format!("watchlist[{index}].symbol");
            let reason = format!(
                "is not a paper instrument (venue.kind = paper; paper.instruments has {})",
                known.join(", ")
            );
            return Err(c.invalid(&key, &format!("{:?}", item.symbol), &reason));
        }
    }
    Ok(())
}
