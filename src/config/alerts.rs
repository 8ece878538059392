//! Validation of `[alerts]`: where alerts go besides the log. Telegram is on when
//! `alerts.telegram.chat_id` is set; its bot token is read like the exchange secret (a file only
//! its owner may read, named by `alerts.telegram.token_file` or found as
//! `$CREDENTIALS_DIRECTORY/telegram-token`). Never prints the token. When the secrets are left
//! unread, the chat id and the base URL are still checked but Telegram stays off: such a
//! configuration sends no alert.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::raw::RawAlerts;
use super::secrets::{Secrets, secret};
use super::sources::origin;
use super::validate::{Check, base_url};
use super::{AlertsConfig, ConfigError, TelegramConfig};

/// File name of the bot token inside systemd's `$CREDENTIALS_DIRECTORY`.
pub(crate) const TELEGRAM_CREDENTIAL_NAME: &str = "telegram-token";
/// Longest `@channelname` Telegram allows, and the shortest.
const CHANNEL_NAME_MAX: usize = 32;
const CHANNEL_NAME_MIN: usize = 5;

pub(super) fn alerts(
    c: &Check<'_>,
    raw: &RawAlerts,
    env: &BTreeMap<String, String>,
) -> Result<AlertsConfig, ConfigError> {
    let raw = &raw.telegram;
    let base_url = base_url(c, "alerts.telegram.base_url", raw.base_url.as_ref())?;
    let token_file = raw
        .token_file
        .as_deref()
        .map(str::trim)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from);
    let chat_id = match raw.chat_id.as_ref().map(|word| word.0.trim()) {
        Some(text) if !text.is_empty() => Some(chat_id(c, text)?),
        _ => None,
    };
    let Some(chat_id) = chat_id else {
        if token_file.is_some() {
            let origin = origin(c.figment, "alerts.telegram.token_file");
            let message = format!(
                "alerts.telegram.chat_id is required when alerts.telegram.token_file is set (from {origin})"
            );
            return Err(ConfigError::for_key("alerts.telegram.chat_id", message));
        }
        return Ok(AlertsConfig { telegram: None });
    };
    // Without the token there is no channel to describe: the commands loading this way only
    // queue alerts in the database, which the agent delivers.
    if c.secrets == Secrets::Unread {
        return Ok(AlertsConfig { telegram: None });
    }
    let key = "alerts.telegram.token_file";
    let token = secret(c, key, token_file.as_deref(), env, TELEGRAM_CREDENTIAL_NAME)?;
    let Some(token) = token else {
        let origin = origin(c.figment, "alerts.telegram.chat_id");
        let message = format!(
            "{key} is required when alerts.telegram.chat_id is set (from {origin}); set it or provide $CREDENTIALS_DIRECTORY/{TELEGRAM_CREDENTIAL_NAME}"
        );
        return Err(ConfigError::for_key(key, message));
    };
    if !is_token_shaped(token.expose()) {
        let message = format!(
            "{key}: the file does not hold a bot token (one line like 123456:ABC-DEF from BotFather)"
        );
        return Err(ConfigError::for_key(key, message));
    }
    Ok(AlertsConfig {
        telegram: Some(TelegramConfig {
            base_url,
            token_file,
            token,
            chat_id,
        }),
    })
}

/// A chat id is an integer (negative for groups and channels) or `@channelname`.
fn chat_id(c: &Check<'_>, text: &str) -> Result<String, ConfigError> {
    let numeric = text.parse::<i64>().is_ok();
    let channel = text.strip_prefix('@').is_some_and(|name| {
        (CHANNEL_NAME_MIN..=CHANNEL_NAME_MAX).contains(&name.len())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    });
    if numeric || channel {
        return Ok(text.to_string());
    }
    let reason = "must be a numeric chat id like -1001234567890 or a channel like @mychannel";
    Err(c.invalid("alerts.telegram.chat_id", &format!("{text:?}"), reason))
}

/// The token goes into a URL path: anything but the characters BotFather uses (digits, a
/// colon, letters, `-` and `_`) would change the request, so it is refused up front.
fn is_token_shaped(token: &str) -> bool {
    token.contains(':')
        && token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ':' || c == '-' || c == '_')
}
