//! The layers figment merges: built-in defaults, one TOML file, `FILLGUARD_*` variables and the
//! legacy variable names. Each environment variable is its own layer named after the variable, so
//! an error can say exactly where a value came from. Nothing here reads the process environment.

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};

use super::ConfigError;
use super::raw::RawConfig;

/// Prefix of the environment variables that set configuration keys.
pub(crate) const ENV_PREFIX: &str = "FILLGUARD_";
/// Separates nested keys in an environment variable name.
pub(crate) const ENV_NESTING: &str = "__";
/// Legacy environment names and the keys they set; they win over everything else.
pub(crate) const LEGACY_ENV: [(&str, &str); 3] = [
    ("ORDER_FILL_POLL_MAX_ATTEMPTS", "poll.max_attempts"),
    ("ORDER_FILL_POLL_INTERVAL_SECONDS", "poll.interval_seconds"),
    ("FAILSAFE_ON_SLTP_ERROR", "failsafe.on_protection_error"),
];
/// Name of the defaults layer as errors show it.
pub(crate) const DEFAULTS_NAME: &str = "built-in defaults";

/// One named layer of configuration values.
struct Layer {
    name: String,
    dict: Dict,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

/// Merges the layers in precedence order: defaults < file < `FILLGUARD_*` < legacy names.
pub(crate) fn figment(
    defaults: &RawConfig,
    file: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Result<Figment, ConfigError> {
    let defaults = Value::serialize(defaults)
        .ok()
        .and_then(Value::into_dict)
        .expect("built-in defaults serialize to a table");
    let mut figment = Figment::new().merge(Layer {
        name: DEFAULTS_NAME.to_string(),
        dict: defaults,
    });
    if let Some(path) = file {
        figment = figment.merge(toml_layer(path)?);
    }
    for (name, value) in env {
        if let Some(rest) = name.strip_prefix(ENV_PREFIX) {
            let keys = env_keys(name, rest)?;
            figment = figment.merge(env_layer(name, &keys, env_value(value)));
        }
    }
    for (name, key) in LEGACY_ENV {
        if let Some(value) = env.get(name) {
            let keys: Vec<String> = key.split('.').map(str::to_string).collect();
            figment = figment.merge(env_layer(name, &keys, Value::from(value.clone())));
        }
    }
    Ok(figment)
}

/// Reads and parses the TOML file itself, so that a syntax error names the file and line.
fn toml_layer(path: &Path) -> Result<Layer, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigError::new(format!(
            "cannot read config file {}: {error}",
            path.display()
        ))
    })?;
    let dict: Dict = toml::from_str(&text).map_err(|error| {
        let location = match error.span() {
            Some(span) => line_column(&text, span.start),
            None => "unknown position".to_string(),
        };
        ConfigError::new(format!(
            "invalid TOML in {}: {location}: {}",
            path.display(),
            one_line(error.message())
        ))
    })?;
    Ok(Layer {
        name: format!("TOML file {}", path.display()),
        dict,
    })
}

/// Joins a multi-line parser message into one line.
fn one_line(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    lines.join("; ")
}

fn line_column(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map_or(0, |last| last.chars().count())
        + 1;
    format!("line {line}, column {column}")
}

/// `FILLGUARD_POLL__MAX_ATTEMPTS` → `["poll", "max_attempts"]`. Asset names under
/// `paper.balances` keep their case, since assets are uppercase tickers.
fn env_keys(name: &str, rest: &str) -> Result<Vec<String>, ConfigError> {
    let mut keys: Vec<String> = rest.split(ENV_NESTING).map(str::to_string).collect();
    if keys.iter().any(String::is_empty) {
        return Err(ConfigError::new(format!(
            "environment variable {name} does not name a configuration key"
        )));
    }
    let balances = keys.len() == 3
        && keys[0].eq_ignore_ascii_case("paper")
        && keys[1].eq_ignore_ascii_case("balances");
    let lowercase_count = if balances { 2 } else { keys.len() };
    for key in keys.iter_mut().take(lowercase_count) {
        *key = key.to_ascii_lowercase();
    }
    Ok(keys)
}

/// Values stay strings (the raw layer parses numbers and flags), except inline arrays and tables
/// such as `[BUY, SELL]`, which figment's value syntax parses.
fn env_value(text: &str) -> Value {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') || trimmed.starts_with('{') {
        Value::from_str(text).unwrap_or_else(|never| match never {})
    } else {
        Value::from(text.to_string())
    }
}

fn env_layer(name: &str, keys: &[String], value: Value) -> Layer {
    let mut nested = value;
    for key in keys.iter().rev() {
        let mut dict = Dict::new();
        dict.insert(key.clone(), nested);
        nested = Value::from(dict);
    }
    let dict = nested.into_dict().unwrap_or_default();
    Layer {
        name: format!("environment variable {name}"),
        dict,
    }
}

/// The name of the layer that supplied `key` (`watchlist[1].notional` looks up `watchlist`).
pub(crate) fn origin(figment: &Figment, key: &str) -> String {
    let lookup = key.split('[').next().unwrap_or(key);
    figment.find_metadata(lookup).map_or_else(
        || DEFAULTS_NAME.to_string(),
        |metadata| metadata.name.to_string(),
    )
}
