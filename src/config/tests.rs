//! Configuration tests: temp files and explicit environment maps only, never the process
//! environment.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rust_decimal::Decimal;
use tempfile::{NamedTempFile, TempDir};

use super::{
    Config, ConfigError, Secrets, Size, Strategy, VenueKind, load_from, load_from_with,
    render_masked,
};
use crate::core::domain::{ProtectionMode, Side};

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_string(), (*value).to_string()))
        .collect()
}

fn toml_file(text: &str) -> NamedTempFile {
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    file.write_all(text.as_bytes()).expect("write temp file");
    file
}

fn load_toml(text: &str, pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let file = toml_file(text);
    load_from(Some(file.path()), &env(pairs))
}

fn error_toml(text: &str, pairs: &[(&str, &str)]) -> String {
    load_toml(text, pairs)
        .expect_err("configuration must be rejected")
        .to_string()
}

fn decimal(text: &str) -> Decimal {
    text.parse().expect("decimal")
}

#[cfg(unix)]
fn secret_file(directory: &Path, name: &str, contents: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = directory.join(name);
    std::fs::write(&path, contents).expect("write secret");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}

#[test]
fn defaults_are_valid() {
    let config = load_from(None, &env(&[])).expect("defaults load");
    assert_eq!(config.venue.kind, VenueKind::Paper);
    assert_eq!(config.venue.base_url, "https://api.crypto.com/exchange/v1");
    assert_eq!(config.venue.timeout, Duration::from_secs(10));
    assert!(config.venue.api_secret.is_none());
    assert_eq!(config.store.path, PathBuf::from("./fillguard.db"));
    assert_eq!(
        config.metrics.listen,
        Some("127.0.0.1:9477".parse().unwrap())
    );
    assert_eq!(config.loop_.interval, Duration::from_secs(5));
    assert_eq!(config.poll.max_attempts, 10);
    assert_eq!(config.poll.interval, Duration::from_secs(1));
    assert_eq!(config.poll.deadline, Duration::from_secs(30));
    assert_eq!(config.protection.mode, ProtectionMode::Oco);
    assert_eq!(config.protection.max_attempts, 3);
    assert!(config.failsafe.on_protection_error);
    assert!(!config.failsafe.flatten);
    assert_eq!(config.signals.ttl, Duration::from_secs(300));
    let symbols: Vec<&str> = config.watchlist.iter().map(|w| w.symbol.as_str()).collect();
    assert_eq!(symbols, ["BTC_USDT", "ETH_USDT"]);
    assert_eq!(config.watchlist[0].size, Size::Notional(decimal("100")));
    assert_eq!(config.watchlist[0].stop_loss_pct, decimal("0.5"));
    assert_eq!(config.watchlist[0].take_profit_pct, decimal("0.8"));
    assert_eq!(config.watchlist[0].sides, [Side::Buy, Side::Sell]);
    let sma = Strategy::SmaCross {
        fast: 3,
        slow: 8,
        timeframe_seconds: 60,
    };
    assert_eq!(config.watchlist[1].strategy, sma);
    assert_eq!(config.paper.seed, 7);
    assert_eq!(config.paper.speed, 50);
    assert_eq!(config.paper.balances["USDT"], decimal("10000"));
    assert_eq!(config.paper.balances["BTC"], decimal("0.2"));
    assert_eq!(config.paper.taker_fee_rate, decimal("0.001"));
    assert_eq!(config.paper.instruments[0].start_price, decimal("60000"));
    assert_eq!(config.paper.instruments[1].quantity_tick, decimal("0.0001"));
}

#[test]
fn state_directory_sets_the_default_store_path() {
    let config = load_from(None, &env(&[("STATE_DIRECTORY", "/var/lib/fillguard")])).unwrap();
    assert_eq!(
        config.store.path,
        PathBuf::from("/var/lib/fillguard/fillguard.db")
    );
}

#[test]
fn toml_overrides_defaults() {
    let text = r#"
[poll]
max_attempts = 5
interval_seconds = 1.5

[loop]
interval_seconds = 2

[metrics]
listen = "off"

[protection]
mode = "separate"

[[watchlist]]
symbol = "ETH_USDT"
strategy = "none"
quantity = 0.25
stop_loss_pct = "1.5"
take_profit_pct = 3
sides = ["buy"]
"#;
    let config = load_toml(text, &[]).expect("valid file");
    assert_eq!(config.poll.max_attempts, 5);
    assert_eq!(config.poll.interval, Duration::from_millis(1500));
    assert_eq!(config.poll.deadline, Duration::from_secs(30));
    assert_eq!(config.loop_.interval, Duration::from_secs(2));
    assert_eq!(config.metrics.listen, None);
    assert_eq!(config.protection.mode, ProtectionMode::Separate);
    assert_eq!(config.watchlist.len(), 1);
    let item = &config.watchlist[0];
    assert_eq!(item.strategy, Strategy::None);
    assert_eq!(item.size, Size::Quantity(decimal("0.25")));
    assert_eq!(item.stop_loss_pct, decimal("1.5"));
    assert_eq!(item.take_profit_pct, decimal("3"));
    assert_eq!(item.sides, [Side::Buy]);
}

#[test]
fn fillguard_env_overrides_toml() {
    let text = "[poll]\nmax_attempts = 5\n[venue]\nkind = \"paper\"\n";
    let pairs = [
        ("FILLGUARD_POLL__MAX_ATTEMPTS", "7"),
        ("FILLGUARD_STORE__PATH", "/x.db"),
        ("FILLGUARD_METRICS__LISTEN", "off"),
        ("FILLGUARD_FAILSAFE__FLATTEN", "1"),
        ("FILLGUARD_PAPER__BALANCES__USDT", "500"),
    ];
    let config = load_toml(text, &pairs).expect("valid configuration");
    assert_eq!(config.poll.max_attempts, 7);
    assert_eq!(config.store.path, PathBuf::from("/x.db"));
    assert_eq!(config.metrics.listen, None);
    assert!(config.failsafe.flatten);
    assert_eq!(config.paper.balances["USDT"], decimal("500"));
    assert_eq!(config.paper.balances["BTC"], decimal("0.2"));
}

#[test]
fn legacy_env_names_override_fillguard_env() {
    let pairs = [
        ("FILLGUARD_POLL__MAX_ATTEMPTS", "7"),
        ("ORDER_FILL_POLL_MAX_ATTEMPTS", "4"),
        ("FILLGUARD_POLL__INTERVAL_SECONDS", "2"),
        ("ORDER_FILL_POLL_INTERVAL_SECONDS", "0.25"),
        ("FILLGUARD_FAILSAFE__ON_PROTECTION_ERROR", "true"),
        ("FAILSAFE_ON_SLTP_ERROR", "0"),
    ];
    let config = load_toml("[poll]\nmax_attempts = 5\n", &pairs).expect("valid configuration");
    assert_eq!(config.poll.max_attempts, 4);
    assert_eq!(config.poll.interval, Duration::from_millis(250));
    assert!(!config.failsafe.on_protection_error);
}

#[test]
fn legacy_flag_rejects_other_words() {
    let error = load_from(None, &env(&[("FAILSAFE_ON_SLTP_ERROR", "yes")])).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("failsafe.on_protection_error"), "{text}");
    assert!(
        text.contains("environment variable FAILSAFE_ON_SLTP_ERROR"),
        "{text}"
    );
}

#[test]
fn broken_toml_names_the_file_and_line() {
    let file = toml_file("[poll]\nmax_attempts = 5\ninterval_seconds = = 1\n");
    let error = load_from(Some(file.path()), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("invalid TOML in "), "{error}");
    assert!(
        error.contains(&file.path().display().to_string()),
        "{error}"
    );
    assert!(error.contains("line 3"), "{error}");
}

#[test]
fn missing_config_file_is_an_error_naming_it() {
    let directory = TempDir::new().unwrap();
    let path = directory.path().join("absent.toml");
    let error = load_from(Some(&path), &env(&[])).unwrap_err().to_string();
    assert!(error.contains(&path.display().to_string()), "{error}");
}

#[test]
fn unknown_key_names_the_key_and_file() {
    let file = toml_file("[venue]\nkindd = \"paper\"\n");
    let error = load_from(Some(file.path()), &env(&[])).unwrap_err();
    assert_eq!(error.key(), Some("venue.kindd"));
    let expected = format!(
        "unknown key `venue.kindd` in TOML file {}",
        file.path().display()
    );
    assert_eq!(error.to_string(), expected);
}

#[test]
fn unknown_env_key_names_the_variable() {
    let error = load_from(None, &env(&[("FILLGUARD_POLL__MAX_ATTEMPT", "3")])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown key `poll.max_attempt` in environment variable FILLGUARD_POLL__MAX_ATTEMPT"
    );
}

#[test]
fn unknown_key_inside_a_watchlist_entry_names_its_index() {
    let text = "[[watchlist]]\nsymbol = \"BTC_USDT\"\nnotional = 5\nstop_loss_pct = 1\n\
                take_profit_pct = 2\n\n[[watchlist]]\nsymbol = \"ETH_USDT\"\nnotionl = 5\n";
    let error = error_toml(text, &[]);
    assert!(
        error.starts_with("unknown key `watchlist[1].notionl` in TOML file"),
        "{error}"
    );
}

#[test]
fn poll_attempts_out_of_range_name_the_key_and_source() {
    for value in ["0", "101"] {
        let error = load_from(None, &env(&[("ORDER_FILL_POLL_MAX_ATTEMPTS", value)])).unwrap_err();
        assert_eq!(error.key(), Some("poll.max_attempts"));
        let expected = format!(
            "poll.max_attempts = {value} (from environment variable ORDER_FILL_POLL_MAX_ATTEMPTS): \
             must be a whole number between 1 and 100"
        );
        assert_eq!(error.to_string(), expected);
    }
    let error = error_toml("[poll]\nmax_attempts = 101\n", &[]);
    assert!(
        error.starts_with("poll.max_attempts = 101 (from TOML file "),
        "{error}"
    );
}

#[test]
fn poll_interval_out_of_range_names_the_key_and_source() {
    for value in ["0.01", "61"] {
        let pairs = [("FILLGUARD_POLL__INTERVAL_SECONDS", value)];
        let error = load_from(None, &env(&pairs)).unwrap_err();
        let expected = format!(
            "poll.interval_seconds = {value} (from environment variable \
             FILLGUARD_POLL__INTERVAL_SECONDS): must be between 0.05 and 60 seconds"
        );
        assert_eq!(error.to_string(), expected);
    }
}

#[test]
fn poll_deadline_below_interval_names_the_key_and_source() {
    let error = error_toml("[poll]\ninterval_seconds = 5\ndeadline_seconds = 2\n", &[]);
    assert!(
        error.starts_with("poll.deadline_seconds = 2 (from TOML file "),
        "{error}"
    );
    assert!(
        error.ends_with("must be at least poll.interval_seconds = 5"),
        "{error}"
    );
}

#[test]
fn float_decimals_stay_exact() {
    let text = "[[watchlist]]\nsymbol = \"BTC_USDT\"\nquantity = 0.1\nstop_loss_pct = 1.5\n\
                take_profit_pct = 0.3\n";
    let config = load_toml(text, &[]).unwrap();
    assert_eq!(config.watchlist[0].size, Size::Quantity(decimal("0.1")));
    assert_eq!(config.watchlist[0].stop_loss_pct.to_string(), "1.5");
    assert_eq!(config.watchlist[0].take_profit_pct.to_string(), "0.3");
}

#[test]
fn non_finite_numbers_are_rejected() {
    let error = error_toml("[loop]\ninterval_seconds = nan\n", &[]);
    assert!(
        error.starts_with("loop.interval_seconds (from TOML file "),
        "{error}"
    );
    let error = error_toml("[paper]\nvolatility = inf\n", &[]);
    assert!(
        error.starts_with("paper.volatility (from TOML file "),
        "{error}"
    );
}

#[test]
fn watchlist_with_quantity_and_notional_is_rejected() {
    let text = "[[watchlist]]\nsymbol = \"BTC_USDT\"\nquantity = \"0.1\"\nnotional = \"100\"\n\
                stop_loss_pct = 1\ntake_profit_pct = 2\n";
    let error = load_toml(text, &[]).unwrap_err();
    assert_eq!(error.key(), Some("watchlist[0]"));
    assert!(
        error.to_string().contains("has both quantity and notional"),
        "{error}"
    );
}

#[test]
fn negative_notional_is_rejected() {
    let text = "[[watchlist]]\nsymbol = \"BTC_USDT\"\nnotional = \"-5\"\n\
                stop_loss_pct = 1\ntake_profit_pct = 2\n";
    let error = load_toml(text, &[]).unwrap_err();
    assert_eq!(error.key(), Some("watchlist[0].notional"));
    assert!(
        error
            .to_string()
            .starts_with("watchlist[0].notional = -5 (from TOML file ")
    );
}

#[test]
fn duplicate_watchlist_symbols_are_rejected() {
    let entry = "[[watchlist]]\nsymbol = \"BTC_USDT\"\nnotional = 5\nstop_loss_pct = 1\n\
                 take_profit_pct = 2\n";
    let error = load_toml(&format!("{entry}{entry}"), &[]).unwrap_err();
    assert_eq!(error.key(), Some("watchlist[1].symbol"));
}

#[test]
fn sma_fast_must_be_below_sma_slow() {
    let text = "[[watchlist]]\nsymbol = \"BTC_USDT\"\nnotional = 5\nstop_loss_pct = 1\n\
                take_profit_pct = 2\nsma_fast = 8\nsma_slow = 8\n";
    let error = load_toml(text, &[]).unwrap_err();
    assert_eq!(error.key(), Some("watchlist[0].sma_fast"));
}

#[test]
fn paper_watchlist_symbols_must_be_paper_instruments() {
    let text = "[[watchlist]]\nsymbol = \"SOL_USDT\"\nnotional = 5\nstop_loss_pct = 1\n\
                take_profit_pct = 2\n";
    let error = load_toml(text, &[]).unwrap_err();
    assert_eq!(error.key(), Some("watchlist[0].symbol"));
    assert!(error.to_string().contains("SOL_USDT"), "{error}");
}

#[test]
fn base_url_loses_its_trailing_slash_and_needs_a_scheme() {
    let pairs = [("FILLGUARD_VENUE__BASE_URL", "http://127.0.0.1:8080/v1/")];
    let config = load_from(None, &env(&pairs)).unwrap();
    assert_eq!(config.venue.base_url, "http://127.0.0.1:8080/v1");
    let pairs = [("FILLGUARD_VENUE__BASE_URL", "ftp://example.com")];
    let error = load_from(None, &env(&pairs)).unwrap_err();
    assert_eq!(error.key(), Some("venue.base_url"));
}

#[test]
fn plain_http_is_only_for_loopback_hosts_credentials_travel_in_every_request() {
    for url in [
        "http://localhost:8080/v1",
        "http://127.0.0.1",
        "http://127.1.2.3:9/x",
        "http://[::1]:8080/v1",
        "https://api.crypto.com/exchange/v1",
    ] {
        let pairs = [("FILLGUARD_VENUE__BASE_URL", url)];
        let config = load_from(None, &env(&pairs)).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(config.venue.base_url, url);
    }
    for (key, url) in [
        (
            "FILLGUARD_VENUE__BASE_URL",
            "http://api.crypto.com/exchange/v1",
        ),
        ("FILLGUARD_VENUE__BASE_URL", "http://10.0.0.5:8080"),
        ("FILLGUARD_VENUE__BASE_URL", "http://localhost.example.com"),
        (
            "FILLGUARD_ALERTS__TELEGRAM__BASE_URL",
            "http://api.telegram.org",
        ),
    ] {
        let error = load_from(None, &env(&[(key, url)])).unwrap_err();
        assert!(error.to_string().contains("https://"), "{url}: {error}");
    }
}

#[test]
fn cryptocom_requires_api_key_and_secret() {
    let error = load_from(None, &env(&[("FILLGUARD_VENUE__KIND", "cryptocom")])).unwrap_err();
    assert_eq!(error.key(), Some("venue.api_key"));
    let pairs = [
        ("FILLGUARD_VENUE__KIND", "cryptocom"),
        ("FILLGUARD_VENUE__API_KEY", "k"),
    ];
    let error = load_from(None, &env(&pairs)).unwrap_err();
    assert_eq!(error.key(), Some("venue.api_secret_file"));
}

#[cfg(unix)]
#[test]
fn secret_file_readable_by_others_is_refused() {
    let directory = TempDir::new().unwrap();
    let path = secret_file(directory.path(), "secret", "s3cr3t-value\n", 0o644);
    let pairs = [("FILLGUARD_VENUE__API_SECRET_FILE", path.to_str().unwrap())];
    let error = load_from(None, &env(&pairs)).unwrap_err().to_string();
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(
        error.contains("mode 0644 is readable by group or others"),
        "{error}"
    );
    assert!(
        error.contains(&format!("chmod 600 {}", path.display())),
        "{error}"
    );
    assert!(!error.contains("s3cr3t-value"), "{error}");
}

#[cfg(unix)]
#[test]
fn missing_secret_file_is_an_error_naming_it() {
    let directory = TempDir::new().unwrap();
    let path = directory.path().join("absent-secret");
    let pairs = [("FILLGUARD_VENUE__API_SECRET_FILE", path.to_str().unwrap())];
    let error = load_from(None, &env(&pairs)).unwrap_err().to_string();
    assert!(error.contains(&path.display().to_string()), "{error}");
}

#[cfg(unix)]
#[test]
fn private_secret_file_is_accepted_and_never_rendered() {
    let directory = TempDir::new().unwrap();
    let path = secret_file(directory.path(), "secret", "s3cr3t-value\n", 0o600);
    let text = format!(
        "[venue]\nkind = \"cryptocom\"\napi_key = \"key-abcdef\"\napi_secret_file = {:?}\n",
        path.to_str().unwrap()
    );
    let config = load_toml(&text, &[]).expect("private secret file accepted");
    let secret = config.venue.api_secret.as_ref().expect("secret read");
    assert_eq!(secret.expose(), "s3cr3t-value");
    let rendered = render_masked(&config);
    assert!(!rendered.contains("s3cr3t-value"), "{rendered}");
    assert!(!rendered.contains("key-abcdef"), "{rendered}");
    assert!(rendered.contains("********"), "{rendered}");
    assert!(!format!("{config:?}").contains("s3cr3t-value"));
}

#[cfg(unix)]
#[test]
fn credentials_directory_secret_is_picked_up() {
    let directory = TempDir::new().unwrap();
    secret_file(directory.path(), "api-secret", "from-systemd\n", 0o400);
    let pairs = [
        ("CREDENTIALS_DIRECTORY", directory.path().to_str().unwrap()),
        ("FILLGUARD_VENUE__KIND", "cryptocom"),
        ("FILLGUARD_VENUE__API_KEY", "key"),
    ];
    let config = load_from(None, &env(&pairs)).expect("credential accepted");
    assert_eq!(config.venue.api_secret.unwrap().expose(), "from-systemd");
    assert_eq!(config.venue.api_secret_file, None);
}

#[test]
fn rendered_config_parses_back_to_the_same_values() {
    let text = r#"
[poll]
interval_seconds = 0.05
deadline_seconds = 12.5

[paper]
taker_fee_rate = "0.00075"
seed = 42

[[watchlist]]
symbol = "BTC_USDT"
quantity = "0.00123"
stop_loss_pct = 1.25
take_profit_pct = "2.5"
sides = ["SELL"]
sma_fast = 5
sma_slow = 21
timeframe_seconds = 300
"#;
    let config = load_toml(text, &[("FILLGUARD_METRICS__LISTEN", "off")]).unwrap();
    let rendered = render_masked(&config);
    let again = load_toml(&rendered, &[]).unwrap_or_else(|error| panic!("{error}\n{rendered}"));
    assert_eq!(again.poll.interval, config.poll.interval);
    assert_eq!(again.poll.deadline, Duration::from_millis(12_500));
    assert_eq!(again.metrics.listen, None);
    assert_eq!(again.paper.taker_fee_rate, decimal("0.00075"));
    assert_eq!(again.paper.seed, 42);
    assert_eq!(again.paper.balances, config.paper.balances);
    assert_eq!(again.watchlist.len(), 1);
    assert_eq!(again.watchlist[0].size, config.watchlist[0].size);
    assert_eq!(again.watchlist[0].strategy, config.watchlist[0].strategy);
    assert_eq!(again.watchlist[0].stop_loss_pct, decimal("1.25"));
    assert_eq!(again.watchlist[0].sides, [Side::Sell]);
    assert_eq!(
        again.paper.instruments.len(),
        config.paper.instruments.len()
    );
    assert_eq!(again.store.path, config.store.path);
    assert_eq!(again.venue.timeout, config.venue.timeout);
}

#[test]
fn rendered_defaults_parse_back() {
    let config = load_from(None, &env(&[])).unwrap();
    let rendered = render_masked(&config);
    let again = load_toml(&rendered, &[]).unwrap_or_else(|error| panic!("{error}\n{rendered}"));
    assert_eq!(render_masked(&again), rendered);
}

const BOT_TOKEN: &str = "123456:AAH-secret_bot_token";

#[test]
fn telegram_is_off_without_a_chat_id() {
    let config = load_from(None, &env(&[])).unwrap();
    assert!(config.alerts.telegram.is_none());
    let rendered = render_masked(&config);
    assert!(
        rendered.contains("[alerts.telegram]\nbase_url = \"https://api.telegram.org\""),
        "{rendered}"
    );
}

#[cfg(unix)]
#[test]
fn telegram_from_the_environment_never_shows_its_token() {
    let directory = TempDir::new().unwrap();
    let token = secret_file(directory.path(), "bot", &format!("{BOT_TOKEN}\n"), 0o600);
    let pairs = [
        ("FILLGUARD_ALERTS__TELEGRAM__CHAT_ID", "-1001234567890"),
        (
            "FILLGUARD_ALERTS__TELEGRAM__TOKEN_FILE",
            token.to_str().unwrap(),
        ),
        (
            "FILLGUARD_ALERTS__TELEGRAM__BASE_URL",
            "http://127.0.0.1:9/",
        ),
    ];
    let config = load_from(None, &env(&pairs)).expect("telegram accepted");
    let telegram = config.alerts.telegram.as_ref().expect("telegram on");
    assert_eq!(telegram.token.expose(), BOT_TOKEN);
    assert_eq!(telegram.chat_id, "-1001234567890");
    assert_eq!(telegram.base_url, "http://127.0.0.1:9");
    let rendered = render_masked(&config);
    assert!(!rendered.contains("secret_bot_token"), "{rendered}");
    assert!(rendered.contains("# token = \"********\""), "{rendered}");
    assert!(!format!("{config:?}").contains("secret_bot_token"));
    let again = load_toml(&rendered, &[]).unwrap_or_else(|error| panic!("{error}\n{rendered}"));
    let again = again.alerts.telegram.expect("telegram still on");
    assert_eq!(again.chat_id, "-1001234567890");
    assert_eq!(again.token.expose(), BOT_TOKEN);
}

#[cfg(unix)]
#[test]
fn telegram_token_file_readable_by_others_is_refused_like_the_api_secret() {
    let directory = TempDir::new().unwrap();
    let path = secret_file(directory.path(), "bot", BOT_TOKEN, 0o640);
    let text = format!(
        "[alerts.telegram]\nchat_id = 42\ntoken_file = {:?}\n",
        path.to_str().unwrap()
    );
    let error = load_toml(&text, &[]).unwrap_err();
    assert_eq!(error.key(), Some("alerts.telegram.token_file"));
    let error = error.to_string();
    assert!(error.contains("alerts.telegram.token_file"), "{error}");
    assert!(error.contains(&path.display().to_string()), "{error}");
    assert!(
        error.contains("mode 0640 is readable by group or others"),
        "{error}"
    );
    assert!(!error.contains("secret_bot_token"), "{error}");
}

#[cfg(unix)]
#[test]
fn telegram_token_from_the_credentials_directory() {
    let directory = TempDir::new().unwrap();
    secret_file(directory.path(), "telegram-token", BOT_TOKEN, 0o400);
    let pairs = [
        ("CREDENTIALS_DIRECTORY", directory.path().to_str().unwrap()),
        ("FILLGUARD_ALERTS__TELEGRAM__CHAT_ID", "@fillguard_ops"),
    ];
    let config = load_from(None, &env(&pairs)).expect("credential accepted");
    let telegram = config.alerts.telegram.unwrap();
    assert_eq!(telegram.token.expose(), BOT_TOKEN);
    assert_eq!(telegram.token_file, None);
    assert_eq!(telegram.base_url, "https://api.telegram.org");
}

#[test]
fn telegram_chat_id_without_a_token_names_the_token_key() {
    let pairs = [("FILLGUARD_ALERTS__TELEGRAM__CHAT_ID", "42")];
    let error = load_from(None, &env(&pairs)).unwrap_err();
    assert_eq!(error.key(), Some("alerts.telegram.token_file"));
    assert!(error.to_string().contains("telegram-token"), "{error}");
}

#[cfg(unix)]
#[test]
fn telegram_bad_chat_id_and_bad_token_are_refused() {
    let pairs = [("FILLGUARD_ALERTS__TELEGRAM__CHAT_ID", "my chat")];
    let error = load_from(None, &env(&pairs)).unwrap_err();
    assert_eq!(error.key(), Some("alerts.telegram.chat_id"));
    assert!(
        error
            .to_string()
            .contains("environment variable FILLGUARD_ALERTS__TELEGRAM__CHAT_ID"),
        "{error}"
    );
    let directory = TempDir::new().unwrap();
    let token = secret_file(directory.path(), "bot", "not a token/..\n", 0o600);
    let pairs = [
        ("FILLGUARD_ALERTS__TELEGRAM__CHAT_ID", "42"),
        (
            "FILLGUARD_ALERTS__TELEGRAM__TOKEN_FILE",
            token.to_str().unwrap(),
        ),
    ];
    let error = load_from(None, &env(&pairs)).unwrap_err().to_string();
    assert!(error.contains("does not hold a bot token"), "{error}");
    assert!(!error.contains("not a token"), "{error}");
    let error = error_toml("[alerts.telegram]\nchatid = 1\n", &[]);
    assert!(error.contains("alerts.telegram.chatid"), "{error}");
}

#[test]
fn the_turn_budget_defaults_to_a_minute_and_is_shown_by_check_config() {
    let config = load_from(None, &env(&[])).unwrap();
    assert_eq!(config.loop_.turn_budget, Duration::from_secs(60));
    let rendered = render_masked(&config);
    assert!(rendered.contains("turn_budget_seconds = 60"), "{rendered}");
    let config = load_toml("[loop]\nturn_budget_seconds = 30.5\n", &[]).unwrap();
    assert_eq!(config.loop_.turn_budget, Duration::from_millis(30_500));
}

#[test]
fn a_turn_budget_too_small_for_the_timeout_names_both_keys() {
    // Two requests of 10 s with 1 s of rate-limit wait each need 22 s.
    let error = error_toml("[loop]\nturn_budget_seconds = 21\n", &[]);
    assert!(
        error.starts_with("loop.turn_budget_seconds = 21 (from TOML file "),
        "{error}"
    );
    assert!(
        error.contains("must be at least 22 seconds at venue.timeout_seconds = 10"),
        "{error}"
    );
    let pairs = [("FILLGUARD_VENUE__TIMEOUT_SECONDS", "2")];
    let config = load_toml("[loop]\nturn_budget_seconds = 6\n", &pairs).unwrap();
    assert_eq!(config.loop_.turn_budget, Duration::from_secs(6));
    let error = error_toml("[loop]\nturn_budget_seconds = 601\n", &[]);
    assert!(
        error.contains("must be between 2 and 600 seconds"),
        "{error}"
    );
}

/// A Crypto.com configuration with a Telegram chat and no secret anywhere: neither a secret
/// file nor a credentials directory.
const CRYPTOCOM_WITHOUT_SECRETS: [(&str, &str); 3] = [
    ("FILLGUARD_VENUE__KIND", "cryptocom"),
    ("FILLGUARD_VENUE__API_KEY", "key-abcdef"),
    ("FILLGUARD_ALERTS__TELEGRAM__CHAT_ID", "-1001234567890"),
];

#[test]
fn without_secrets_a_cryptocom_configuration_loads_unread_and_is_refused_read() {
    let pairs = env(&CRYPTOCOM_WITHOUT_SECRETS);
    let config = load_from_with(None, &pairs, Secrets::Unread).expect("loads without secrets");
    assert_eq!(config.venue.kind, VenueKind::CryptoCom);
    assert_eq!(config.venue.api_key.as_deref(), Some("key-abcdef"));
    assert!(config.venue.api_secret.is_none());
    assert!(config.alerts.telegram.is_none());
    let error = load_from_with(None, &pairs, Secrets::Read).unwrap_err();
    assert_eq!(error.key(), Some("venue.api_secret_file"));
    assert!(
        error
            .to_string()
            .starts_with("venue.api_secret_file is required when venue.kind = cryptocom"),
        "{error}"
    );
    // With the exchange secret present, the missing bot token is what the full load refuses.
    let directory = TempDir::new().unwrap();
    secret_file(directory.path(), "api-secret", "s3cr3t-value\n", 0o400);
    let mut pairs = pairs;
    let credentials = directory.path().to_str().unwrap().to_string();
    pairs.insert("CREDENTIALS_DIRECTORY".into(), credentials);
    let error = load_from(None, &pairs).unwrap_err();
    assert_eq!(error.key(), Some("alerts.telegram.token_file"));
}

#[cfg(unix)]
#[test]
fn unread_secrets_are_not_even_opened() {
    let directory = TempDir::new().unwrap();
    // Each of these would be refused if it were read: readable by others, absent.
    let shared = secret_file(directory.path(), "api", "s3cr3t-value\n", 0o644);
    let absent = directory.path().join("absent-token");
    let mut pairs = env(&CRYPTOCOM_WITHOUT_SECRETS);
    for (name, value) in [
        ("FILLGUARD_VENUE__API_SECRET_FILE", shared.to_str().unwrap()),
        (
            "FILLGUARD_ALERTS__TELEGRAM__TOKEN_FILE",
            absent.to_str().unwrap(),
        ),
    ] {
        pairs.insert(name.into(), value.into());
    }
    let config = load_from_with(None, &pairs, Secrets::Unread).expect("secrets left unread");
    assert!(config.venue.api_secret.is_none());
    assert_eq!(
        config.venue.api_secret_file.as_deref(),
        Some(shared.as_path())
    );
    assert!(!format!("{config:?}").contains("s3cr3t-value"));
    let error = load_from(None, &pairs).unwrap_err().to_string();
    assert!(error.contains("readable by group or others"), "{error}");
    assert!(!error.contains("s3cr3t-value"), "{error}");
}

#[test]
fn unread_secrets_still_validate_everything_else() {
    let refused = |name: &str, value: &str, key: &str| {
        let mut pairs = env(&CRYPTOCOM_WITHOUT_SECRETS);
        pairs.insert(name.into(), value.into());
        let error = load_from_with(None, &pairs, Secrets::Unread).unwrap_err();
        assert_eq!(error.key(), Some(key), "{name}={value}: {error}");
    };
    refused("FILLGUARD_VENUE__API_KEY", " ", "venue.api_key");
    refused(
        "FILLGUARD_VENUE__BASE_URL",
        "http://example.com",
        "venue.base_url",
    );
    refused(
        "FILLGUARD_ALERTS__TELEGRAM__CHAT_ID",
        "my chat",
        "alerts.telegram.chat_id",
    );
    refused("FILLGUARD_POLL__MAX_ATTEMPTS", "0", "poll.max_attempts");
    refused(
        "FILLGUARD_LOOP__TURN_BUDGET_SECONDS",
        "5",
        "loop.turn_budget_seconds",
    );
    let mut pairs = env(&CRYPTOCOM_WITHOUT_SECRETS);
    pairs.remove("FILLGUARD_ALERTS__TELEGRAM__CHAT_ID");
    pairs.insert("FILLGUARD_ALERTS__TELEGRAM__TOKEN_FILE".into(), "/t".into());
    let error = load_from_with(None, &pairs, Secrets::Unread).unwrap_err();
    assert_eq!(error.key(), Some("alerts.telegram.chat_id"));
}

#[test]
fn events_retention_is_off_by_default_and_bad_values_name_the_key() {
    assert_eq!(load_toml("", &[]).unwrap().store.events_retention_days, 0);
    let config = load_toml("[store]\nevents_retention_days = 90\n", &[]).unwrap();
    assert_eq!(config.store.events_retention_days, 90);
    for bad in ["-1", "1.5", "36501"] {
        let error = error_toml(&format!("[store]\nevents_retention_days = {bad}\n"), &[]);
        assert!(
            error.contains("store.events_retention_days") && error.contains("between 0 and 36500"),
            "{error}"
        );
    }
    let error = load_toml("", &[("FILLGUARD_STORE__EVENTS_RETENTION_DAYS", "x")])
        .unwrap_err()
        .to_string();
    assert!(error.contains("events_retention_days"), "{error}");
}
