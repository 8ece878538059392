//! The secrets of the configuration: the exchange's API secret and the Telegram bot token, each
//! read from a file only its owner may access (named by a `*_file` key, else found in systemd's
//! `$CREDENTIALS_DIRECTORY`), and the load mode that leaves them unread for the commands that
//! only touch the database. Errors name the key and the file, never the contents; nothing here
//! logs or prints a secret.

use std::collections::BTreeMap;
use std::path::Path;

use super::sources::origin;
use super::validate::Check;
use super::{ConfigError, Secret};

/// Whether loading the configuration reads the secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// Read and required where the configuration needs them (`venue.kind = "cryptocom"`, a
    /// Telegram chat id): what `run` and `check-config` load.
    Read,
    /// Neither required nor read, not even looked for: every other key is validated as under
    /// `Read`, but `venue.api_secret` and `alerts.telegram` are `None`. For the commands that
    /// only read or write the database (`status`, `signal`, `breaker`, `backup`), which run
    /// without the agent's credentials (the backup unit, a root shell); such a configuration
    /// never drives the agent, the exchange or an alert channel.
    Unread,
}

/// File name of the secret inside systemd's `$CREDENTIALS_DIRECTORY`.
pub(crate) const CREDENTIAL_NAME: &str = "api-secret";
/// Permission bits of group and others; a secret file must have none of them.
const MODE_GROUP_OTHERS: u32 = 0o077;

/// The secret from the file `key` names, else from `$CREDENTIALS_DIRECTORY/<credential>` if that
/// file exists, else none; always none when the secrets are left unread. Errors name `key` and
/// the file, never the contents.
pub(super) fn secret(
    c: &Check<'_>,
    key: &str,
    file: Option<&Path>,
    env: &BTreeMap<String, String>,
    credential: &str,
) -> Result<Option<Secret>, ConfigError> {
    if c.secrets == Secrets::Unread {
        return Ok(None);
    }
    if let Some(path) = file {
        let origin = origin(c.figment, key);
        let label = format!("{key} {} (from {origin})", path.display());
        return read_secret(key, &label, path).map(Some);
    }
    let Some(directory) = env
        .get("CREDENTIALS_DIRECTORY")
        .filter(|dir| !dir.is_empty())
    else {
        return Ok(None);
    };
    let path = Path::new(directory).join(credential);
    if !path.exists() {
        return Ok(None);
    }
    let label = format!(
        "credential {} for {key} (from environment variable CREDENTIALS_DIRECTORY)",
        path.display()
    );
    read_secret(key, &label, &path).map(Some)
}

/// Reads a secret file that only its owner may access, without its trailing newline. Errors name
/// the key and the file, never its contents.
fn read_secret(key: &str, label: &str, path: &Path) -> Result<Secret, ConfigError> {
    let unreadable =
        |error: std::io::Error| ConfigError::for_key(key, format!("{label}: cannot read: {error}"));
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    if let Some(mode) = group_or_other_mode(&metadata) {
        let message = format!(
            "{label}: mode {mode:04o} is readable by group or others; run chmod 600 {}",
            path.display()
        );
        return Err(ConfigError::for_key(key, message));
    }
    let text = std::fs::read_to_string(path).map_err(unreadable)?;
    let secret = match text.strip_suffix('\n') {
        Some(line) => line.strip_suffix('\r').unwrap_or(line),
        None => &text,
    };
    if secret.is_empty() {
        return Err(ConfigError::for_key(
            key,
            format!("{label}: the file is empty"),
        ));
    }
    Ok(Secret::new(secret.to_string()))
}

/// The permission bits when group or others have any access.
#[cfg(unix)]
fn group_or_other_mode(metadata: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = metadata.permissions().mode() & 0o7777;
    (mode & MODE_GROUP_OTHERS != 0).then_some(mode)
}

#[cfg(not(unix))]
fn group_or_other_mode(_metadata: &std::fs::Metadata) -> Option<u32> {
    let _ = MODE_GROUP_OTHERS;
    None
}
