//! Built-in defaults as a raw layer, the lowest layer figment merges. The values come from the
//! named constants in `validate`, so a default and its bounds sit side by side.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;

use super::poll::{
    POLL_FIRST_DELAY_DEFAULT, POLL_SCHEDULE_DEFAULT, POLL_SOURCE_DEFAULT, poll_growth_default,
};
use super::raw::{
    Flag, Num, RawAlerts, RawConfig, RawFailsafe, RawInstrument, RawLoop, RawMetrics, RawPaper,
    RawPoll, RawProtection, RawSignals, RawStore, RawTelegram, RawVenue, RawWatchItem,
};
use super::validate as v;

/// The SQLite file name inside `$STATE_DIRECTORY` or the working directory.
pub(crate) const STORE_FILE_NAME: &str = "fillguard.db";
pub(crate) const BASE_URL_DEFAULT: &str = "https://api.crypto.com/exchange/v1";
pub(crate) const METRICS_LISTEN_DEFAULT: &str = "127.0.0.1:9477";
pub(crate) const TELEGRAM_BASE_URL_DEFAULT: &str = "https://api.telegram.org";

/// Demo watchlist: symbol and notional in the quote asset.
const WATCHLIST_DEFAULT: [(&str, &str); 2] = [("BTC_USDT", "100"), ("ETH_USDT", "100")];
const STOP_LOSS_PCT_DEFAULT: &str = "0.5";
const TAKE_PROFIT_PCT_DEFAULT: &str = "0.8";
const BALANCES_DEFAULT: [(&str, &str); 3] = [("USDT", "10000"), ("BTC", "0.2"), ("ETH", "3")];
const TAKER_FEE_RATE_DEFAULT: &str = "0.001";
/// Crypto.com's highest spot taker rate; only used to size protection before a fill is known.
const VENUE_TAKER_FEE_RATE_DEFAULT: &str = "0.0025";
/// When the exchange's risk parameters give no minimum order value.
const MIN_NOTIONAL_FALLBACK_DEFAULT: &str = "1";
const VOLATILITY_DEFAULT: &str = "0.0008";

/// Paper instruments: symbol, base, quote, price tick, quantity tick, minimum quantity, minimum
/// notional, start price.
const INSTRUMENTS_DEFAULT: [[&str; 8]; 2] = [
    [
        "BTC_USDT", "BTC", "USDT", "0.01", "0.00001", "0.00001", "1", "60000",
    ],
    [
        "ETH_USDT", "ETH", "USDT", "0.01", "0.0001", "0.0001", "1", "3000",
    ],
];

fn num(text: &str) -> Num {
    Num(Decimal::from_str(text).expect("built-in default is a decimal"))
}

fn count(value: u64) -> Option<Num> {
    Some(Num(Decimal::from(value)))
}

pub(crate) fn seconds(duration: Duration) -> Num {
    let nanos = i128::try_from(duration.as_nanos()).expect("durations here fit in i128");
    Num(Decimal::from_i128_with_scale(nanos, 9).normalize())
}

/// `$STATE_DIRECTORY/fillguard.db` (the first directory if systemd lists several), else
/// `./fillguard.db`.
pub(crate) fn store_path(env: &BTreeMap<String, String>) -> String {
    match env
        .get("STATE_DIRECTORY")
        .and_then(|dirs| dirs.split(':').next())
    {
        Some(dir) if !dir.is_empty() => format!("{}/{STORE_FILE_NAME}", dir.trim_end_matches('/')),
        _ => format!("./{STORE_FILE_NAME}"),
    }
}

pub(crate) fn raw(env: &BTreeMap<String, String>) -> RawConfig {
    RawConfig {
        venue: RawVenue {
            kind: Some("paper".to_string()),
            base_url: Some(BASE_URL_DEFAULT.to_string()),
            api_key: None,
            api_secret_file: None,
            live: Some(Flag(false)),
            timeout_seconds: Some(seconds(v::VENUE_TIMEOUT_DEFAULT)),
            taker_fee_rate: Some(num(VENUE_TAKER_FEE_RATE_DEFAULT)),
            min_notional_fallback: Some(num(MIN_NOTIONAL_FALLBACK_DEFAULT)),
        },
        store: RawStore {
            path: Some(store_path(env)),
            events_retention_days: count(v::EVENTS_RETENTION_DAYS_DEFAULT.into()),
        },
        metrics: RawMetrics {
            listen: Some(METRICS_LISTEN_DEFAULT.to_string()),
        },
        loop_: RawLoop {
            interval_seconds: Some(seconds(v::LOOP_INTERVAL_DEFAULT)),
            turn_budget_seconds: Some(seconds(super::turn::TURN_BUDGET_DEFAULT)),
        },
        poll: RawPoll {
            max_attempts: count(v::POLL_ATTEMPTS_DEFAULT.into()),
            interval_seconds: Some(seconds(v::POLL_INTERVAL_DEFAULT)),
            deadline_seconds: Some(seconds(v::POLL_DEADLINE_DEFAULT)),
            schedule: Some(POLL_SCHEDULE_DEFAULT.to_string()),
            source: Some(POLL_SOURCE_DEFAULT.to_string()),
            first_delay_seconds: Some(seconds(POLL_FIRST_DELAY_DEFAULT)),
            growth: Some(poll_growth_default()),
        },
        protection: RawProtection {
            mode: Some("oco".to_string()),
            max_attempts: count(v::PROTECTION_ATTEMPTS_DEFAULT.into()),
            reprotect_max: count(v::REPROTECT_DEFAULT.into()),
            watch_interval_seconds: Some(seconds(v::WATCH_INTERVAL_DEFAULT)),
        },
        failsafe: RawFailsafe {
            on_protection_error: Some(Flag(true)),
            flatten: Some(Flag(false)),
        },
        signals: RawSignals {
            ttl_seconds: Some(seconds(v::SIGNAL_TTL_DEFAULT)),
            allow_concurrent_trades: Some(Flag(false)),
            webhook: super::webhook::defaults(),
        },
        paper: paper(),
        risk: super::risk::defaults(),
        alerts: RawAlerts {
            telegram: RawTelegram {
                base_url: Some(TELEGRAM_BASE_URL_DEFAULT.to_string()),
                token_file: None,
                chat_id: None,
            },
        },
        watchlist: Some(watchlist()),
    }
}

fn watchlist() -> Vec<RawWatchItem> {
    WATCHLIST_DEFAULT
        .iter()
        .map(|(symbol, notional)| RawWatchItem {
            symbol: Some((*symbol).to_string()),
            strategy: Some("sma_cross".to_string()),
            sma_fast: count(v::SMA_FAST_DEFAULT.into()),
            sma_slow: count(v::SMA_SLOW_DEFAULT.into()),
            timeframe_seconds: count(v::TIMEFRAME_SECONDS_DEFAULT.into()),
            quantity: None,
            notional: Some(num(notional)),
            stop_loss_pct: Some(num(STOP_LOSS_PCT_DEFAULT)),
            take_profit_pct: Some(num(TAKE_PROFIT_PCT_DEFAULT)),
            sides: Some(vec!["BUY".to_string(), "SELL".to_string()]),
            ..RawWatchItem::default()
        })
        .collect()
}

fn paper() -> RawPaper {
    let balances = BALANCES_DEFAULT
        .iter()
        .map(|(asset, amount)| ((*asset).to_string(), num(amount)))
        .collect();
    let instruments = INSTRUMENTS_DEFAULT
        .iter()
        .map(
            |[
                symbol,
                base,
                quote,
                price_tick,
                quantity_tick,
                min_quantity,
                min_notional,
                start,
            ]| {
                RawInstrument {
                    symbol: Some((*symbol).to_string()),
                    base: Some((*base).to_string()),
                    quote: Some((*quote).to_string()),
                    price_tick: Some(num(price_tick)),
                    quantity_tick: Some(num(quantity_tick)),
                    min_quantity: Some(num(min_quantity)),
                    min_notional: Some(num(min_notional)),
                    start_price: Some(num(start)),
                }
            },
        )
        .collect();
    RawPaper {
        seed: count(v::PAPER_SEED_DEFAULT),
        speed: count(v::PAPER_SPEED_DEFAULT.into()),
        fill_delay_ms: count(v::FILL_DELAY_MS_DEFAULT),
        taker_fee_rate: Some(num(TAKER_FEE_RATE_DEFAULT)),
        step_seconds: Some(seconds(v::PAPER_STEP_DEFAULT)),
        volatility: Some(num(VOLATILITY_DEFAULT)),
        candles_csv: None,
        balances: Some(balances),
        instruments: Some(instruments),
    }
}
