//! The `[signals.webhook]` section: the HTTP receiver that writes signals into the inbox. Off by
//! default; on a loopback address when turned on. Its shared secret (HMAC-SHA256 of the body)
//! and, in the TradingView-compatible mode, its path token are read like the exchange secret: a
//! file only its owner may read, named by a `*_file` key or found in `$CREDENTIALS_DIRECTORY`.
//! Decides nothing about requests (that is `crate::webhook`'s) and never prints a secret:
//! `check-config` shows where each was read from, masked.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::raw::{Flag, Num};
use super::render::MASK;
use super::secrets::{Secrets, secret};
use super::sources::origin;
use super::validate::Check;
use super::{ConfigError, Secret};

/// File names of the secret and the path token inside systemd's `$CREDENTIALS_DIRECTORY`.
pub(crate) const SECRET_CREDENTIAL_NAME: &str = "webhook-secret";
pub(crate) const TOKEN_CREDENTIAL_NAME: &str = "webhook-path-token";
pub(crate) const LISTEN_DEFAULT: &str = "127.0.0.1:9478";
pub(crate) const MAX_BODY_BYTES_MIN: u32 = 256;
pub(crate) const MAX_BODY_BYTES_MAX: u32 = 65_536;
pub(crate) const MAX_BODY_BYTES_DEFAULT: u32 = 4096;
pub(crate) const RATE_PER_MINUTE_MIN: u32 = 1;
pub(crate) const RATE_PER_MINUTE_MAX: u32 = 6000;
pub(crate) const RATE_PER_MINUTE_DEFAULT: u32 = 60;
pub(crate) const MAX_CONNECTIONS_MIN: u32 = 1;
pub(crate) const MAX_CONNECTIONS_MAX: u32 = 256;
pub(crate) const MAX_CONNECTIONS_DEFAULT: u32 = 16;
/// A shared secret shorter than this is guessable; 32 hex characters are 128 bits.
pub(crate) const SECRET_LENGTH_MIN: usize = 32;
/// The path token stands alone in the URL: as long as the secret, from URL-safe characters.
pub(crate) const TOKEN_LENGTH_MIN: usize = 32;
pub(crate) const TOKEN_LENGTH_MAX: usize = 256;

const _: () = assert!(MAX_BODY_BYTES_MIN <= MAX_BODY_BYTES_DEFAULT);
const _: () = assert!(MAX_BODY_BYTES_DEFAULT <= MAX_BODY_BYTES_MAX);
const _: () = assert!(RATE_PER_MINUTE_MIN >= 1 && RATE_PER_MINUTE_MIN <= RATE_PER_MINUTE_DEFAULT);
const _: () = assert!(RATE_PER_MINUTE_DEFAULT <= RATE_PER_MINUTE_MAX);
const _: () = assert!(MAX_CONNECTIONS_MIN >= 1 && MAX_CONNECTIONS_MIN <= MAX_CONNECTIONS_DEFAULT);
const _: () = assert!(MAX_CONNECTIONS_DEFAULT <= MAX_CONNECTIONS_MAX);

/// The raw `[signals.webhook]` table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<Flag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_token: Option<Flag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_token_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_minute: Option<Num>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<Num>,
}

/// The validated `[signals.webhook]`.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Whether `run` serves the receiver at all.
    pub enabled: bool,
    pub listen: SocketAddr,
    /// `None` when the secret came from `$CREDENTIALS_DIRECTORY/webhook-secret` (or is unset).
    pub secret_file: Option<PathBuf>,
    /// The shared HMAC-SHA256 key; read only when enabled and the secrets are read.
    pub secret: Option<Secret>,
    /// The TradingView-compatible mode: a token in the URL path instead of a signature.
    pub path_token: bool,
    pub path_token_file: Option<PathBuf>,
    /// The token itself; read only when `path_token` is on.
    pub token: Option<Secret>,
    /// A request body longer than this is refused (413) unread.
    pub max_body_bytes: u32,
    /// Authenticated requests admitted per minute (429 beyond); requests refused before or at
    /// authentication have an allowance of the same size of their own.
    pub rate_per_minute: u32,
    /// Connections served at once; more are closed at once.
    pub max_connections: u32,
}

pub(super) fn defaults() -> RawWebhook {
    let count = |value: u32| Some(Num(value.into()));
    RawWebhook {
        enabled: Some(Flag(false)),
        listen: Some(LISTEN_DEFAULT.to_string()),
        secret_file: None,
        path_token: Some(Flag(false)),
        path_token_file: None,
        max_body_bytes: count(MAX_BODY_BYTES_DEFAULT),
        rate_per_minute: count(RATE_PER_MINUTE_DEFAULT),
        max_connections: count(MAX_CONNECTIONS_DEFAULT),
    }
}

pub(super) fn webhook(
    c: &Check<'_>,
    raw: &RawWebhook,
    env: &BTreeMap<String, String>,
) -> Result<WebhookConfig, ConfigError> {
    let enabled = c.required("signals.webhook.enabled", raw.enabled)?.0;
    let path_token = c.required("signals.webhook.path_token", raw.path_token)?.0;
    let listen_key = "signals.webhook.listen";
    let listen_text = c.text(listen_key, raw.listen.as_ref())?;
    let listen = SocketAddr::from_str(listen_text).map_err(|_| {
        let reason = "must be an address and port like 127.0.0.1:9478";
        c.invalid(listen_key, &format!("{listen_text:?}"), reason)
    })?;
    let secret_file = path(raw.secret_file.as_ref());
    let path_token_file = path(raw.path_token_file.as_ref());
    // Secrets are opened only for a receiver that will run: a disabled one needs none.
    let (secret, token) = if enabled {
        credentials(c, env, &secret_file, path_token.then_some(&path_token_file))?
    } else {
        (None, None)
    };
    Ok(WebhookConfig {
        enabled,
        listen,
        secret_file,
        secret,
        path_token,
        path_token_file,
        token,
        max_body_bytes: c.count_u32(
            "signals.webhook.max_body_bytes",
            raw.max_body_bytes,
            MAX_BODY_BYTES_MIN,
            MAX_BODY_BYTES_MAX,
        )?,
        rate_per_minute: c.count_u32(
            "signals.webhook.rate_per_minute",
            raw.rate_per_minute,
            RATE_PER_MINUTE_MIN,
            RATE_PER_MINUTE_MAX,
        )?,
        max_connections: c.count_u32(
            "signals.webhook.max_connections",
            raw.max_connections,
            MAX_CONNECTIONS_MIN,
            MAX_CONNECTIONS_MAX,
        )?,
    })
}

fn path(value: Option<&String>) -> Option<PathBuf> {
    value
        .map(|text| text.trim())
        .filter(|text| !text.is_empty())
        .map(PathBuf::from)
}

/// The secret (always required) and, in path-token mode, the token; neither when the secrets
/// are left unread.
fn credentials(
    c: &Check<'_>,
    env: &BTreeMap<String, String>,
    secret_file: &Option<PathBuf>,
    token_file: Option<&Option<PathBuf>>,
) -> Result<(Option<Secret>, Option<Secret>), ConfigError> {
    if c.secrets == Secrets::Unread {
        return Ok((None, None));
    }
    let key = "signals.webhook.secret_file";
    let found = secret(c, key, secret_file.as_deref(), env, SECRET_CREDENTIAL_NAME)?;
    let shared = required(c, key, found, SECRET_CREDENTIAL_NAME)?;
    if shared.expose().chars().count() < SECRET_LENGTH_MIN {
        let message = format!(
            "{key}: the secret is shorter than {SECRET_LENGTH_MIN} characters; make one with `openssl rand -hex 32`"
        );
        return Err(ConfigError::for_key(key, message));
    }
    let Some(token_file) = token_file else {
        return Ok((Some(shared), None));
    };
    let key = "signals.webhook.path_token_file";
    let found = secret(c, key, token_file.as_deref(), env, TOKEN_CREDENTIAL_NAME)?;
    let token = required(c, key, found, TOKEN_CREDENTIAL_NAME)?;
    if !is_token_shaped(token.expose()) {
        let message = format!(
            "{key}: the token must be {TOKEN_LENGTH_MIN} to {TOKEN_LENGTH_MAX} letters, digits, - or _ (it goes into a URL); make one with `openssl rand -hex 32`"
        );
        return Err(ConfigError::for_key(key, message));
    }
    // The token travels in URLs (proxy logs, the alert's settings); as the HMAC key too, it
    // would make signed requests as weak as token ones.
    if token.expose().trim() == shared.expose().trim() {
        let message = format!(
            "{key}: the token is the same as signals.webhook.secret_file's secret; make a separate one with `openssl rand -hex 32`"
        );
        return Err(ConfigError::for_key(key, message));
    }
    Ok((Some(shared), Some(token)))
}

fn required(
    c: &Check<'_>,
    key: &str,
    found: Option<Secret>,
    credential: &str,
) -> Result<Secret, ConfigError> {
    found.ok_or_else(|| {
        let origin = origin(c.figment, "signals.webhook.enabled");
        let message = format!(
            "{key} is required when signals.webhook.enabled is true (from {origin}); set it or provide $CREDENTIALS_DIRECTORY/{credential}"
        );
        ConfigError::for_key(key, message)
    })
}

fn is_token_shaped(token: &str) -> bool {
    (TOKEN_LENGTH_MIN..=TOKEN_LENGTH_MAX).contains(&token.len())
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The raw table `check-config` renders: every value in force, the secrets' files but never
/// the secrets (see [`comments`]).
pub(super) fn to_raw(config: &WebhookConfig) -> RawWebhook {
    let text = |path: &Option<PathBuf>| {
        path.as_ref()
            .map(|path| path.to_string_lossy().into_owned())
    };
    let count = |value: u32| Some(Num(value.into()));
    RawWebhook {
        enabled: Some(Flag(config.enabled)),
        listen: Some(config.listen.to_string()),
        secret_file: text(&config.secret_file),
        path_token: Some(Flag(config.path_token)),
        path_token_file: text(&config.path_token_file),
        max_body_bytes: count(config.max_body_bytes),
        rate_per_minute: count(config.rate_per_minute),
        max_connections: count(config.max_connections),
    }
}

/// Masked comments saying where the secret and the token were read from, for the
/// `[signals.webhook]` table of `check-config`.
pub(super) fn comments(config: &WebhookConfig) -> Vec<String> {
    let source = |file: &Option<PathBuf>, credential: &str| match file {
        Some(path) => path.display().to_string(),
        None => format!("$CREDENTIALS_DIRECTORY/{credential}"),
    };
    let mut lines = Vec::new();
    if config.secret.is_some() {
        let from = source(&config.secret_file, SECRET_CREDENTIAL_NAME);
        lines.push(format!("# secret = \"{MASK}\" (read from {from})"));
    }
    if config.token.is_some() {
        let from = source(&config.path_token_file, TOKEN_CREDENTIAL_NAME);
        lines.push(format!("# token = \"{MASK}\" (read from {from})"));
    }
    lines
}

#[cfg(test)]
#[path = "webhook_tests.rs"]
mod tests;
