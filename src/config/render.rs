//! Renders the effective configuration as TOML that `load` parses back, with every secret masked.
//! The secret itself is never rendered: only a comment says where it was read from.

use rust_decimal::Decimal;

use super::alerts::TELEGRAM_CREDENTIAL_NAME;
use super::defaults::{TELEGRAM_BASE_URL_DEFAULT, seconds};
use super::poll as v;
use super::raw::{
    Flag, Num, RawAlerts, RawConfig, RawFailsafe, RawInstrument, RawLoop, RawMetrics, RawPaper,
    RawPoll, RawProtection, RawSignals, RawStore, RawTelegram, RawVenue, RawWatchItem, Word,
};
use super::secrets::CREDENTIAL_NAME;
use super::{AlertsConfig, Config, PaperConfig, Size, Strategy, VenueConfig, VenueKind, WatchItem};

/// What a secret or an API key renders as.
pub const MASK: &str = "********";

/// The effective configuration as TOML, with `venue.api_key` masked and `venue.api_secret` and
/// the Telegram bot token shown only as masked comments.
pub fn render_masked(config: &Config) -> String {
    let raw = to_raw(config);
    let mut text = toml::to_string(&raw).expect("a raw configuration serializes to TOML");
    if let Some(comment) = secret_comment(&config.venue) {
        text = text.replacen("[venue]\n", &format!("[venue]\n{comment}\n"), 1);
    }
    if let Some(comment) = token_comment(&config.alerts) {
        let table = "[alerts.telegram]\n";
        text = text.replacen(table, &format!("{table}{comment}\n"), 1);
    }
    let comments = super::webhook::comments(&config.signals.webhook);
    if !comments.is_empty() {
        let table = "[signals.webhook]\n";
        let block = comments.join("\n");
        text = text.replacen(table, &format!("{table}{block}\n"), 1);
    }
    text
}

fn token_comment(alerts: &AlertsConfig) -> Option<String> {
    let telegram = alerts.telegram.as_ref()?;
    let source = match &telegram.token_file {
        Some(path) => path.display().to_string(),
        None => format!("$CREDENTIALS_DIRECTORY/{TELEGRAM_CREDENTIAL_NAME}"),
    };
    Some(format!("# token = \"{MASK}\" (read from {source})"))
}

/// The base URL is kept even when Telegram is off, so the rendered file shows the default.
fn alerts(alerts: &AlertsConfig, base_url_default: &str) -> RawAlerts {
    let telegram = alerts.telegram.as_ref();
    RawAlerts {
        telegram: RawTelegram {
            base_url: Some(
                telegram
                    .map_or(base_url_default, |t| t.base_url.as_str())
                    .to_string(),
            ),
            token_file: telegram
                .and_then(|t| t.token_file.as_ref())
                .map(|path| path.to_string_lossy().into_owned()),
            chat_id: telegram.map(|t| Word(t.chat_id.clone())),
        },
    }
}

fn secret_comment(venue: &VenueConfig) -> Option<String> {
    venue.api_secret.as_ref()?;
    let source = match &venue.api_secret_file {
        Some(path) => path.display().to_string(),
        None => format!("$CREDENTIALS_DIRECTORY/{CREDENTIAL_NAME}"),
    };
    Some(format!("# api_secret = \"{MASK}\" (read from {source})"))
}

fn count(value: impl Into<Decimal>) -> Option<Num> {
    Some(Num(value.into()))
}

fn to_raw(config: &Config) -> RawConfig {
    RawConfig {
        venue: venue(&config.venue),
        store: RawStore {
            path: Some(config.store.path.to_string_lossy().into_owned()),
            events_retention_days: count(config.store.events_retention_days),
        },
        metrics: RawMetrics {
            listen: Some(match config.metrics.listen {
                Some(address) => address.to_string(),
                None => "off".to_string(),
            }),
        },
        loop_: RawLoop {
            interval_seconds: Some(seconds(config.loop_.interval)),
            turn_budget_seconds: Some(seconds(config.loop_.turn_budget)),
        },
        poll: RawPoll {
            max_attempts: count(config.poll.max_attempts),
            interval_seconds: Some(seconds(config.poll.interval)),
            deadline_seconds: Some(seconds(config.poll.deadline)),
            schedule: Some(v::schedule_name(config.poll.schedule).to_string()),
            source: Some(v::source_name(config.poll.source).to_string()),
            first_delay_seconds: Some(seconds(config.poll.first_delay)),
            growth: Some(v::growth_num(config.poll.growth_percent)),
        },
        protection: RawProtection {
            mode: Some(config.protection.mode.as_str().to_string()),
            max_attempts: count(config.protection.max_attempts),
            reprotect_max: count(config.protection.reprotect_max),
            watch_interval_seconds: Some(seconds(config.protection.watch_interval)),
        },
        failsafe: RawFailsafe {
            on_protection_error: Some(Flag(config.failsafe.on_protection_error)),
            flatten: Some(Flag(config.failsafe.flatten)),
        },
        signals: RawSignals {
            ttl_seconds: Some(seconds(config.signals.ttl)),
            allow_concurrent_trades: Some(Flag(config.signals.allow_concurrent_trades)),
            webhook: super::webhook::to_raw(&config.signals.webhook),
        },
        paper: paper(&config.paper),
        alerts: alerts(&config.alerts, TELEGRAM_BASE_URL_DEFAULT),
        risk: super::risk::to_raw(&config.risk),
        watchlist: Some(config.watchlist.iter().map(watch_item).collect()),
    }
}

fn venue(venue: &VenueConfig) -> RawVenue {
    let kind = match venue.kind {
        VenueKind::Paper => "paper",
        VenueKind::CryptoCom => "cryptocom",
    };
    RawVenue {
        kind: Some(kind.to_string()),
        base_url: Some(venue.base_url.clone()),
        api_key: venue.api_key.as_ref().map(|_| MASK.to_string()),
        api_secret_file: venue
            .api_secret_file
            .as_ref()
            .map(|path| path.to_string_lossy().into_owned()),
        live: Some(Flag(venue.live)),
        timeout_seconds: Some(seconds(venue.timeout)),
        taker_fee_rate: Some(Num(venue.taker_fee_rate)),
        min_notional_fallback: Some(Num(venue.min_notional_fallback)),
    }
}

fn watch_item(item: &WatchItem) -> RawWatchItem {
    let (quantity, notional) = match item.size {
        Size::Quantity(quantity) => (Some(Num(quantity)), None),
        Size::Notional(notional) => (None, Some(Num(notional))),
    };
    let raw = RawWatchItem {
        symbol: Some(item.symbol.clone()),
        quantity,
        notional,
        stop_loss_pct: Some(Num(item.stop_loss_pct)),
        take_profit_pct: Some(Num(item.take_profit_pct)),
        sides: Some(
            item.sides
                .iter()
                .map(|side| side.as_str().to_string())
                .collect(),
        ),
        ..RawWatchItem::default()
    };
    with_strategy(raw, &item.strategy)
}

/// The strategy and exactly the keys it reads (with their defaults filled in), so the rendered
/// configuration parses back: a key the strategy does not read is an error.
fn with_strategy(raw: RawWatchItem, strategy: &Strategy) -> RawWatchItem {
    let name = |name: &str| Some(name.to_string());
    match *strategy {
        Strategy::None => RawWatchItem {
            strategy: name("none"),
            ..raw
        },
        Strategy::SmaCross {
            fast,
            slow,
            timeframe_seconds,
        } => RawWatchItem {
            strategy: name("sma_cross"),
            sma_fast: count(fast),
            sma_slow: count(slow),
            timeframe_seconds: count(timeframe_seconds),
            ..raw
        },
        Strategy::Rsi {
            period,
            oversold,
            overbought,
            timeframe_seconds,
        } => RawWatchItem {
            strategy: name("rsi"),
            rsi_period: count(period),
            rsi_oversold: Some(Num(oversold)),
            rsi_overbought: Some(Num(overbought)),
            timeframe_seconds: count(timeframe_seconds),
            ..raw
        },
        Strategy::Breakout {
            above,
            below,
            timeframe_seconds,
        } => RawWatchItem {
            strategy: name("breakout"),
            breakout_above: above.map(Num),
            breakout_below: below.map(Num),
            timeframe_seconds: count(timeframe_seconds),
            ..raw
        },
    }
}

fn paper(paper: &PaperConfig) -> RawPaper {
    let fill_delay_ms = u64::try_from(paper.fill_delay.as_millis()).unwrap_or(u64::MAX);
    RawPaper {
        seed: count(paper.seed),
        speed: count(paper.speed),
        fill_delay_ms: count(fill_delay_ms),
        taker_fee_rate: Some(Num(paper.taker_fee_rate)),
        step_seconds: Some(seconds(paper.step)),
        volatility: Some(Num(paper.volatility)),
        candles_csv: paper
            .candles_csv
            .as_ref()
            .map(|path| path.to_string_lossy().into_owned()),
        balances: Some(
            paper
                .balances
                .iter()
                .map(|(asset, amount)| (asset.clone(), Num(*amount)))
                .collect(),
        ),
        instruments: Some(
            paper
                .instruments
                .iter()
                .map(|instrument| RawInstrument {
                    symbol: Some(instrument.symbol.clone()),
                    base: Some(instrument.base.clone()),
                    quote: Some(instrument.quote.clone()),
                    price_tick: Some(Num(instrument.price_tick)),
                    quantity_tick: Some(Num(instrument.quantity_tick)),
                    min_quantity: Some(Num(instrument.min_quantity)),
                    min_notional: Some(Num(instrument.min_notional)),
                    start_price: Some(Num(instrument.start_price)),
                })
                .collect(),
        ),
    }
}
