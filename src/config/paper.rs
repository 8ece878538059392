//! The edge between the configuration and the paper venue: `[paper]` becomes the venue's own
//! `PaperSettings`, so the venue never imports configuration types. `speed` stays behind: it
//! sets the clock the paper venue is driven by, not the venue.

use std::time::Duration;

use crate::venue::cryptocom::TIMEFRAMES;
use crate::venue::paper::{
    CANDLES_COUNT_MAX, HISTORY_STEPS_MAX, PaperInstrumentSettings, PaperSettings,
};

use super::validate::Check;
use super::{Config, ConfigError, PaperConfig, PaperInstrument, VenueKind};

/// The paper venue's settings for the agent of `config`: `[paper]`, with candles reaching only
/// as far back as the watchlist's strategies ask (so the venue keeps no more prices).
pub fn paper_settings(config: &Config) -> PaperSettings {
    let mut settings = PaperSettings::from(&config.paper);
    settings.lookback = Some(candle_lookback(config));
    settings
}

/// The longest span of candles a strategy of the watchlist reads: the closed candles its rule
/// needs (`Rule::candles_needed`, at most `CANDLES_COUNT_MAX`), plus the one still open and
/// one for the alignment of the first. Zero when no entry reads candles.
pub fn candle_lookback(config: &Config) -> Duration {
    let spans = config.watchlist.iter().map(|item| {
        let Some((rule, timeframe_seconds)) = item.strategy.rule() else {
            return Duration::ZERO;
        };
        let count = rule.candles_needed().min(CANDLES_COUNT_MAX);
        let candles = u64::try_from(count).unwrap_or(u64::MAX).saturating_add(2);
        Duration::from_secs(u64::from(timeframe_seconds).saturating_mul(candles))
    });
    spans.max().unwrap_or(Duration::ZERO)
}

/// Every strategy's timeframe must be one the venue serves candles in, and on paper its
/// candles must fit in the price history the paper venue keeps: otherwise the strategy never
/// signals, and nothing but this says so.
pub(super) fn check_timeframes(c: &Check<'_>, config: &Config) -> Result<(), ConfigError> {
    for (index, item) in config.watchlist.iter().enumerate() {
        let Some((rule, timeframe_seconds)) = item.strategy.rule() else {
            continue;
        };
        let key = format!("watchlist[{index}].timeframe_seconds");
        match config.venue.kind {
            VenueKind::CryptoCom => {
                if !TIMEFRAMES
                    .iter()
                    .any(|(seconds, _)| *seconds == timeframe_seconds)
                {
                    let names: Vec<String> = TIMEFRAMES
                        .iter()
                        .map(|(seconds, name)| format!("{seconds} ({name})"))
                        .collect();
                    let reason = format!(
                        "Crypto.com serves candles of {} seconds only",
                        names.join(", ")
                    );
                    return Err(c.invalid(&key, &timeframe_seconds, &reason));
                }
            }
            VenueKind::Paper => {
                let count = rule.candles_needed().min(CANDLES_COUNT_MAX);
                let candles = u64::try_from(count).unwrap_or(u64::MAX).saturating_add(2);
                let span_ms = u128::from(timeframe_seconds) * 1000 * u128::from(candles);
                let step_ms = config.paper.step.as_millis().max(1);
                let steps = span_ms.div_ceil(step_ms);
                if steps > HISTORY_STEPS_MAX as u128 {
                    let reason = format!(
                        "{} needs {candles} candles, {steps} price steps of paper.step_seconds = {} s, and the paper venue keeps {HISTORY_STEPS_MAX}: the strategy would never signal; raise paper.step_seconds or shorten the timeframe or period",
                        rule.name(),
                        config.paper.step.as_secs_f64()
                    );
                    return Err(c.invalid(&key, &timeframe_seconds, &reason));
                }
            }
        }
    }
    Ok(())
}

impl From<&PaperInstrument> for PaperInstrumentSettings {
    fn from(instrument: &PaperInstrument) -> PaperInstrumentSettings {
        PaperInstrumentSettings {
            symbol: instrument.symbol.clone(),
            base: instrument.base.clone(),
            quote: instrument.quote.clone(),
            price_tick: instrument.price_tick,
            quantity_tick: instrument.quantity_tick,
            min_quantity: instrument.min_quantity,
            min_notional: instrument.min_notional,
            start_price: instrument.start_price,
        }
    }
}

impl From<&PaperConfig> for PaperSettings {
    fn from(config: &PaperConfig) -> PaperSettings {
        PaperSettings {
            seed: config.seed,
            balances: config.balances.clone(),
            instruments: config
                .instruments
                .iter()
                .map(PaperInstrumentSettings::from)
                .collect(),
            fill_delay: config.fill_delay,
            taker_fee_rate: config.taker_fee_rate,
            step: config.step,
            volatility: config.volatility,
            candles_csv: config.candles_csv.clone(),
            lookback: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Write;

    use super::*;

    fn load(text: &str) -> Result<Config, super::super::ConfigError> {
        let mut file = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("temp file");
        file.write_all(text.as_bytes()).expect("write");
        super::super::load_from(Some(file.path()), &BTreeMap::new())
    }

    #[test]
    fn the_paper_venue_keeps_the_candles_the_watchlist_reads() {
        let config = load("").expect("defaults");
        // SMA 3/8 on 1-minute candles: 9 closed candles, the open one and one for alignment.
        assert_eq!(candle_lookback(&config), Duration::from_secs(660));
        let entry = |symbol: &str, keys: &str| {
            format!(
                "[[watchlist]]\nsymbol = \"{symbol}\"\nnotional = 10\nstop_loss_pct = 1\n\
                 take_profit_pct = 1\n{keys}\n"
            )
        };
        let text = entry(
            "BTC_USDT",
            "sma_slow = 298\nsma_fast = 2\ntimeframe_seconds = 300",
        ) + &entry("ETH_USDT", "strategy = \"none\"")
            // 301 candles of 300 s are 18,060 steps of 5 s: within what the venue keeps.
            + "[paper]\nstep_seconds = 5\n";
        let config = load(&text).expect("valid");
        // The longest SMA: 299 closed candles, whatever the venue could answer.
        let settings = paper_settings(&config);
        assert_eq!(settings.lookback, Some(Duration::from_secs(300 * 301)));
        // RSI 14 reads 72 closed candles (five periods of changes and two), a breakout two.
        let text = entry("BTC_USDT", "strategy = \"rsi\"\ntimeframe_seconds = 60")
            + &entry(
                "ETH_USDT",
                "strategy = \"breakout\"\nbreakout_above = 5000\ntimeframe_seconds = 3600",
            );
        let config = load(&text).expect("valid");
        assert_eq!(candle_lookback(&config), Duration::from_secs(3600 * 4));
        let text = entry(
            "BTC_USDT",
            "strategy = \"rsi\"\nrsi_period = 20\ntimeframe_seconds = 300",
        ) + "[paper]\nstep_seconds = 5\n";
        let config = load(&text).expect("valid");
        assert_eq!(candle_lookback(&config), Duration::from_secs(300 * 104));
    }
}
