use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;

use crate::config::{Config, ConfigError, load_from_with};

fn d(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn load(toml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fillguard.toml");
    std::fs::write(&path, toml).unwrap();
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    load_from_with(Some(&path), &env, crate::config::Secrets::Read)
}

#[test]
fn every_limit_is_off_by_default() {
    let config = load("", &[]).unwrap();
    assert_eq!(config.risk, crate::core::risk::RiskLimits::default());
    let rendered = crate::config::render_masked(&config);
    assert!(
        rendered.contains("[risk]\nmax_open_trades = \"off\""),
        "{rendered}"
    );
}

#[test]
fn limits_from_the_file_and_the_environment() {
    let toml = "[signals]\nallow_concurrent_trades = true\n[risk]\nmax_open_trades = 3\nmax_open_trades_per_symbol = 2\nmax_notional_per_order = \"250.5\"\ncooldown_seconds = 600\nmax_entries_per_hour = 6\n[risk.daily_loss_limit]\nUSDT = 100\n";
    let config = load(toml, &[("FILLGUARD_RISK__DAILY_LOSS_LIMIT__USDT", "75.5")]).unwrap();
    let risk = &config.risk;
    assert_eq!(risk.max_open_trades, Some(3));
    assert_eq!(risk.max_open_trades_per_symbol, Some(2));
    assert_eq!(risk.max_notional_per_order, Some(d("250.5")));
    assert_eq!(risk.cooldown_ms, Some(600_000));
    assert_eq!(risk.max_entries_per_hour, Some(6));
    assert_eq!(
        risk.daily_loss,
        BTreeMap::from([("USDT".to_string(), d("75.5"))]),
        "the environment wins, its lower-case name upper-cased"
    );
    // The rendered configuration loads back to the same limits.
    let rendered = crate::config::render_masked(&config);
    let again = load(&rendered, &[]).unwrap();
    assert_eq!(again.risk, config.risk);
}

#[test]
fn a_bad_limit_names_its_key() {
    let cases = [
        ("[risk]\nmax_open_trades = 0\n", "risk.max_open_trades"),
        (
            "[risk]\nmax_open_trades = \"many\"\n",
            "risk.max_open_trades",
        ),
        (
            "[risk]\nmax_entries_per_hour = 2.5\n",
            "risk.max_entries_per_hour",
        ),
        (
            "[risk]\nmax_notional_per_order = -5\n",
            "risk.max_notional_per_order",
        ),
        (
            "[risk]\ncooldown_seconds = 999999999\n",
            "risk.cooldown_seconds",
        ),
        (
            "[risk.daily_loss_limit]\nUSDT = 0\n",
            "risk.daily_loss_limit.USDT",
        ),
        (
            "[risk.daily_loss_limit]\n\"US DT\" = 5\n",
            "risk.daily_loss_limit.US DT",
        ),
        (
            "[risk]\nmax_open_trades_per_symbol = 2\n",
            "risk.max_open_trades_per_symbol",
        ),
        (
            "[risk]\nmax_notional_per_order = 50\n",
            "watchlist[0].notional",
        ),
        ("[risk]\nmax_daily_trades = 5\n", "max_daily_trades"),
        (
            "[risk.daily_loss_limit]\nUSD = 5\n",
            "risk.daily_loss_limit.USD",
        ),
    ];
    for (toml, key) in cases {
        let error = load(toml, &[]).unwrap_err().to_string();
        assert!(error.contains(key), "{toml:?}: {error}");
    }
}

#[test]
fn zero_points_at_off_and_one_notional_limit_needs_one_quote_asset() {
    let error = load("[risk]\nmax_open_trades = 0\n", &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("\"off\" turns the limit off"), "{error}");
    let toml = "[venue]\nkind = \"cryptocom\"\napi_key = \"key\"\n[risk]\nmax_notional_per_order = 500\n[[watchlist]]\nsymbol = \"BTC_USDT\"\nnotional = 100\nstop_loss_pct = 1\ntake_profit_pct = 2\n[[watchlist]]\nsymbol = \"ETH_BTC\"\nquantity = 1\nstop_loss_pct = 1\ntake_profit_pct = 2\n";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fillguard.toml");
    std::fs::write(&path, toml).unwrap();
    let unread = crate::config::Secrets::Unread;
    let error = load_from_with(Some(&path), &BTreeMap::new(), unread)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("risk.max_notional_per_order") && error.contains("BTC, USDT"),
        "{error}"
    );
}

#[test]
fn off_turns_a_limit_off_from_the_environment() {
    let toml = "[risk]\nmax_open_trades = 3\n";
    let config = load(toml, &[("FILLGUARD_RISK__MAX_OPEN_TRADES", "off")]).unwrap();
    assert_eq!(config.risk.max_open_trades, None);
}
