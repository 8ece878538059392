//! The watchlist's ranges: stop-loss and take-profit percentages and entry sizes, each error
//! naming the key and the allowed range.

use std::io::Write;

use super::{ConfigError, Size, load_from};

fn load(entry: &str) -> Result<super::Config, ConfigError> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let text = format!("[[watchlist]]\nsymbol = \"BTC_USDT\"\nstrategy = \"none\"\n{entry}");
    file.write_all(text.as_bytes()).unwrap();
    load_from(Some(file.path()), &Default::default())
}

fn error(entry: &str) -> String {
    load(entry)
        .expect_err("the watchlist entry must be rejected")
        .to_string()
}

const SIZE: &str = "notional = 100\n";
const PERCENTS: &str = "stop_loss_pct = 1\ntake_profit_pct = 2\n";

#[test]
fn a_stop_loss_outside_its_range_is_refused_naming_the_key_and_the_range() {
    for value in ["50", "25.01", "0.09", "0", "-1"] {
        let message = error(&format!(
            "{SIZE}stop_loss_pct = {value}\ntake_profit_pct = 2\n"
        ));
        assert!(
            message.starts_with("watchlist[0].stop_loss_pct = "),
            "{value}: {message}"
        );
        assert!(
            message.ends_with("must be at least 0.1 and at most 25"),
            "{value}: {message}"
        );
    }
    for value in ["0.1", "25", "2.5"] {
        let config = load(&format!(
            "{SIZE}stop_loss_pct = {value}\ntake_profit_pct = 2\n"
        ))
        .unwrap();
        assert_eq!(config.watchlist[0].stop_loss_pct.to_string(), value);
    }
}

#[test]
fn a_take_profit_below_the_round_trip_fees_or_at_100_is_refused() {
    for value in ["0.001", "0.19", "100.5", "0"] {
        let message = error(&format!(
            "{SIZE}stop_loss_pct = 1\ntake_profit_pct = {value}\n"
        ));
        assert!(
            message.starts_with("watchlist[0].take_profit_pct = "),
            "{value}: {message}"
        );
        assert!(
            message.ends_with("must be at least 0.2 and at most 100"),
            "{value}: {message}"
        );
    }
    // 100 %: a SELL entry's target would be a price of zero.
    let message = error(&format!("{SIZE}stop_loss_pct = 1\ntake_profit_pct = 100\n"));
    assert!(message.contains("less than 100"), "{message}");
    // At the paper venue's 0.1 % a side, 0.2 % is the round trip itself: refused.
    let message = error(&format!("{SIZE}stop_loss_pct = 1\ntake_profit_pct = 0.2\n"));
    assert!(
        message.contains("above the round trip's taker fees, 0.2% at paper.taker_fee_rate"),
        "{message}"
    );
    for value in ["0.21", "99.9", "0.8"] {
        let config = load(&format!(
            "{SIZE}stop_loss_pct = 1\ntake_profit_pct = {value}\n"
        ))
        .unwrap();
        assert_eq!(config.watchlist[0].take_profit_pct.to_string(), value);
    }
}

#[test]
fn a_quantity_must_be_positive_and_at_most_its_bound() {
    for value in ["0", "-0.5", "1000000000.1"] {
        let message = error(&format!("quantity = {value}\n{PERCENTS}"));
        assert!(
            message.starts_with("watchlist[0].quantity = "),
            "{value}: {message}"
        );
        assert!(message.contains("must be greater than 0"), "{message}");
    }
    let message = error(&format!("quantity = 5000000000\n{PERCENTS}"));
    assert!(
        message.ends_with("must be greater than 0 and at most 1000000000"),
        "{message}"
    );
    let config = load(&format!("quantity = 1000000000\n{PERCENTS}")).unwrap();
    assert_eq!(
        config.watchlist[0].size,
        Size::Quantity(1_000_000_000.into())
    );
}

#[test]
fn a_notional_must_be_positive_and_at_most_its_bound() {
    for value in ["0", "-10"] {
        let message = error(&format!("notional = {value}\n{PERCENTS}"));
        assert!(message.starts_with("watchlist[0].notional = "), "{message}");
        assert!(message.ends_with("must be greater than 0"), "{message}");
    }
    let message = error(&format!("notional = 10000001\n{PERCENTS}"));
    assert!(
        message.starts_with("watchlist[0].notional = 10000001 (from TOML file "),
        "{message}"
    );
    assert!(
        message.ends_with("must be greater than 0 and at most 10000000"),
        "{message}"
    );
    let config = load(&format!("notional = 10000000\n{PERCENTS}")).unwrap();
    assert_eq!(config.watchlist[0].size, Size::Notional(10_000_000.into()));
}

#[test]
fn the_defaults_and_the_packaged_example_are_inside_the_ranges() {
    let defaults = load_from(None, &Default::default()).expect("the defaults load");
    assert!(!defaults.watchlist.is_empty());
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/fillguard.toml");
    load_from(Some(std::path::Path::new(example)), &Default::default())
        .expect("the packaged example loads");
}
