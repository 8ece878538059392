//! The strategy keys of watchlist entries: defaults, every refused value naming its key, keys
//! the chosen strategy does not read, and check-config's rendering parsed back. Temp files and
//! explicit environment maps only.

use std::collections::BTreeMap;
use std::io::Write;

use rust_decimal::Decimal;

use super::{Config, ConfigError, Strategy, load_from, render_masked};

/// Two plain entries (no strategy keys) and a third with `keys`, so errors name index 2.
fn load(keys: &str) -> Result<Config, ConfigError> {
    let entry = |symbol: &str, keys: &str| {
        format!(
            "[[watchlist]]\nsymbol = \"{symbol}\"\nnotional = 10\nstop_loss_pct = 1\n\
             take_profit_pct = 2\n{keys}\n"
        )
    };
    let none = "strategy = \"none\"";
    let text = entry("BTC_USDT", none)
        + &entry("ETH_USDT", none)
        + &entry("SOL_USDT", keys)
        + "[[paper.instruments]]\nsymbol = \"BTC_USDT\"\nbase = \"BTC\"\nquote = \"USDT\"\n\
           price_tick = 0.01\nquantity_tick = 0.0001\nmin_quantity = 0.0001\nmin_notional = 1\n\
           start_price = 100\n\
           [[paper.instruments]]\nsymbol = \"ETH_USDT\"\nbase = \"ETH\"\nquote = \"USDT\"\n\
           price_tick = 0.01\nquantity_tick = 0.0001\nmin_quantity = 0.0001\nmin_notional = 1\n\
           start_price = 100\n\
           [[paper.instruments]]\nsymbol = \"SOL_USDT\"\nbase = \"SOL\"\nquote = \"USDT\"\n\
           price_tick = 0.01\nquantity_tick = 0.0001\nmin_quantity = 0.0001\nmin_notional = 1\n\
           start_price = 100\n";
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    file.write_all(text.as_bytes()).expect("write temp file");
    load_from(Some(file.path()), &BTreeMap::new())
}

fn strategy(keys: &str) -> Strategy {
    let config = load(keys).unwrap_or_else(|error| panic!("{keys}: {error}"));
    config.watchlist[2].strategy.clone()
}

/// The key the error names, and its text.
fn refused(keys: &str) -> (String, String) {
    let error = load(keys).expect_err(keys);
    (
        error.key().unwrap_or_default().to_string(),
        error.to_string(),
    )
}

fn decimal(text: &str) -> Decimal {
    text.parse().expect("decimal")
}

#[test]
fn rsi_and_breakout_parse_with_their_defaults() {
    assert_eq!(
        strategy("strategy = \"rsi\""),
        Strategy::Rsi {
            period: 14,
            oversold: decimal("30"),
            overbought: decimal("70"),
            timeframe_seconds: 60,
        }
    );
    assert_eq!(
        strategy(
            "strategy = \"rsi\"\nrsi_period = 7\nrsi_oversold = 20.5\nrsi_overbought = \"80\"\n\
             timeframe_seconds = 300"
        ),
        Strategy::Rsi {
            period: 7,
            oversold: decimal("20.5"),
            overbought: decimal("80"),
            timeframe_seconds: 300,
        }
    );
    assert_eq!(
        strategy("strategy = \"breakout\"\nbreakout_above = 105.5"),
        Strategy::Breakout {
            above: Some(decimal("105.5")),
            below: None,
            timeframe_seconds: 60,
        }
    );
    assert_eq!(
        strategy("strategy = \"breakout\"\nbreakout_below = 90\nbreakout_above = 110"),
        Strategy::Breakout {
            above: Some(decimal("110")),
            below: Some(decimal("90")),
            timeframe_seconds: 60,
        }
    );
    assert_eq!(
        strategy(""),
        Strategy::SmaCross {
            fast: 3,
            slow: 8,
            timeframe_seconds: 60
        },
        "sma_cross when no strategy is named"
    );
}

#[test]
fn an_unknown_strategy_names_its_key() {
    let (key, text) = refused("strategy = \"macd\"");
    assert_eq!(key, "watchlist[2].strategy");
    assert!(text.contains("sma_cross, rsi, breakout or none"), "{text}");
}

#[test]
fn rsi_values_out_of_bounds_name_their_key() {
    let cases = [
        ("rsi_period = 1", "watchlist[2].rsi_period"),
        ("rsi_period = 201", "watchlist[2].rsi_period"),
        ("rsi_period = 14.5", "watchlist[2].rsi_period"),
        ("rsi_oversold = 0", "watchlist[2].rsi_oversold"),
        ("rsi_oversold = -5", "watchlist[2].rsi_oversold"),
        ("rsi_overbought = 100", "watchlist[2].rsi_overbought"),
        ("rsi_overbought = 0", "watchlist[2].rsi_overbought"),
        ("rsi_oversold = 70", "watchlist[2].rsi_oversold"),
        (
            "rsi_oversold = 60\nrsi_overbought = 55",
            "watchlist[2].rsi_oversold",
        ),
        ("timeframe_seconds = 0", "watchlist[2].timeframe_seconds"),
    ];
    for (keys, expected) in cases {
        let (key, text) = refused(&format!("strategy = \"rsi\"\n{keys}"));
        assert_eq!(key, expected, "{keys}: {text}");
        assert!(text.contains("(from TOML file"), "{text}");
    }
    let (_, text) = refused("strategy = \"rsi\"\nrsi_oversold = 75");
    assert!(
        text.contains("must be less than rsi_overbought = 70"),
        "{text}"
    );
}

#[test]
fn breakout_levels_name_their_key() {
    let (key, text) = refused("strategy = \"breakout\"");
    assert_eq!(key, "watchlist[2].breakout_above");
    assert!(
        text.contains("sets neither breakout_above nor breakout_below"),
        "{text}"
    );
    let cases = [
        ("breakout_above = 0", "watchlist[2].breakout_above"),
        ("breakout_below = -1", "watchlist[2].breakout_below"),
        (
            "breakout_above = 100\nbreakout_below = 100",
            "watchlist[2].breakout_below",
        ),
        (
            "breakout_above = 100\nbreakout_below = 120",
            "watchlist[2].breakout_below",
        ),
    ];
    for (keys, expected) in cases {
        let (key, text) = refused(&format!("strategy = \"breakout\"\n{keys}"));
        assert_eq!(key, expected, "{keys}: {text}");
    }
}

#[test]
fn a_key_the_strategy_does_not_read_is_refused_by_name() {
    let cases = [
        ("strategy = \"sma_cross\"\nrsi_period = 14", "rsi_period"),
        ("rsi_period = 14", "rsi_period"),
        ("strategy = \"rsi\"\nsma_fast = 2", "sma_fast"),
        ("strategy = \"rsi\"\nbreakout_above = 2", "breakout_above"),
        (
            "strategy = \"breakout\"\nbreakout_above = 2\nrsi_oversold = 20",
            "rsi_oversold",
        ),
        (
            "strategy = \"sma_cross\"\nbreakout_below = 2",
            "breakout_below",
        ),
        (
            "strategy = \"none\"\ntimeframe_seconds = 60",
            "timeframe_seconds",
        ),
        ("strategy = \"none\"\nsma_slow = 10", "sma_slow"),
    ];
    for (keys, field) in cases {
        let (key, text) = refused(keys);
        assert_eq!(key, format!("watchlist[2].{field}"), "{keys}: {text}");
        assert!(text.contains("is not used by strategy = "), "{text}");
    }
    let (_, text) = refused("strategy = \"sma_cross\"\nrsi_period = 14");
    assert!(
        text.contains("(it reads sma_fast, sma_slow, timeframe_seconds)"),
        "{text}"
    );
}

#[test]
fn an_sma_longer_than_one_request_is_refused() {
    assert_eq!(
        strategy("sma_fast = 2\nsma_slow = 298"),
        Strategy::SmaCross {
            fast: 2,
            slow: 298,
            timeframe_seconds: 60
        }
    );
    let (key, text) = refused("sma_fast = 2\nsma_slow = 299");
    assert_eq!(key, "watchlist[2].sma_slow");
    assert!(text.contains("between 1 and 298"), "{text}");
}

#[test]
fn rendered_strategies_parse_back_to_the_same_values() {
    for keys in [
        "strategy = \"rsi\"\nrsi_overbought = 65.25",
        "strategy = \"breakout\"\nbreakout_below = 0.00012",
        "strategy = \"breakout\"\nbreakout_above = 7\nbreakout_below = 3\ntimeframe_seconds = 900",
        "sma_fast = 4\nsma_slow = 9",
        "strategy = \"none\"",
    ] {
        let config = load(keys).unwrap_or_else(|error| panic!("{keys}: {error}"));
        let rendered = render_masked(&config);
        let mut file = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("temp file");
        file.write_all(rendered.as_bytes()).expect("write");
        let again = load_from(Some(file.path()), &BTreeMap::new())
            .unwrap_or_else(|error| panic!("{error}\n{rendered}"));
        assert_eq!(
            again.watchlist[2].strategy, config.watchlist[2].strategy,
            "{rendered}"
        );
    }
}

#[test]
fn a_paper_strategy_reaching_past_the_kept_price_history_names_its_timeframe() {
    let (key, text) = refused("strategy = \"rsi\"\ntimeframe_seconds = 300");
    assert_eq!(key, "watchlist[2].timeframe_seconds", "{text}");
    assert!(text.contains("raise paper.step_seconds"), "{text}");
    strategy("strategy = \"rsi\"\ntimeframe_seconds = 60");
}

#[test]
fn a_timeframe_crypto_com_has_no_candles_for_names_its_key() {
    let text = "[venue]\nkind = \"cryptocom\"\napi_key = \"key\"\n[[watchlist]]\nsymbol = \"BTC_USDT\"\nnotional = 10\nstop_loss_pct = 1\ntake_profit_pct = 2\ntimeframe_seconds = 120\n";
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    file.write_all(text.as_bytes()).expect("write temp file");
    let unread = crate::config::Secrets::Unread;
    let error = crate::config::load_from_with(Some(file.path()), &BTreeMap::new(), unread)
        .expect_err("120 s is not a Crypto.com timeframe");
    assert_eq!(
        error.key(),
        Some("watchlist[0].timeframe_seconds"),
        "{error}"
    );
    assert!(error.to_string().contains("3600 (1h)"), "{error}");
}
