//! `[signals.webhook]`: off by default without reading a secret, its secret and path token
//! read like the API secret (file or `$CREDENTIALS_DIRECTORY`, owner-only), every bound
//! named in its error, and both masked in `check-config`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::super::{Config, ConfigError, Secrets, load_from, load_from_with, render_masked};

const SECRET: &str = "0123456789abcdef0123456789abcdef-shared";
const TOKEN: &str = "tok_0123456789abcdef0123456789abcdef";

fn write(directory: &Path, name: &str, contents: &str, mode: u32) -> PathBuf {
    let path = directory.join(name);
    std::fs::write(&path, contents).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: BTreeMap<String, String> = pairs
        .iter()
        .map(|(name, value)| ((*name).to_string(), (*value).to_string()))
        .collect();
    load_from(None, &env)
}

fn error(pairs: &[(&str, &str)]) -> ConfigError {
    load(pairs).expect_err("configuration must be rejected")
}

#[test]
fn the_receiver_is_off_by_default_on_loopback_and_reads_no_secret() {
    let directory = TempDir::new().unwrap();
    write(directory.path(), "webhook-secret", "short", 0o644);
    let credentials = directory.path().to_str().unwrap();
    let config = load(&[("CREDENTIALS_DIRECTORY", credentials)]).unwrap();
    let webhook = &config.signals.webhook;
    assert!(!webhook.enabled && !webhook.path_token);
    assert!(webhook.listen.ip().is_loopback());
    assert_eq!(webhook.listen.port(), 9478);
    assert!(webhook.secret.is_none() && webhook.token.is_none());
    assert_eq!(
        (
            webhook.max_body_bytes,
            webhook.rate_per_minute,
            webhook.max_connections
        ),
        (4096, 60, 16)
    );
    assert!(render_masked(&config).contains("[signals.webhook]\nenabled = false\n"));
}

#[test]
fn turned_on_it_needs_its_secret_from_a_file_or_the_credentials_directory() {
    let on = ("FILLGUARD_SIGNALS__WEBHOOK__ENABLED", "true");
    let missing = error(&[on]);
    assert_eq!(missing.key(), Some("signals.webhook.secret_file"));
    assert!(
        missing
            .to_string()
            .contains("$CREDENTIALS_DIRECTORY/webhook-secret")
    );
    let directory = TempDir::new().unwrap();
    write(
        directory.path(),
        "webhook-secret",
        &format!("{SECRET}\n"),
        0o600,
    );
    let credentials = directory.path().to_str().unwrap();
    let config = load(&[on, ("CREDENTIALS_DIRECTORY", credentials)]).unwrap();
    assert_eq!(config.signals.webhook.secret.unwrap().expose(), SECRET);
    let file = write(directory.path(), "other", SECRET, 0o400);
    let key = (
        "FILLGUARD_SIGNALS__WEBHOOK__SECRET_FILE",
        file.to_str().unwrap(),
    );
    let config = load(&[on, key]).unwrap();
    assert_eq!(
        config.signals.webhook.secret_file.as_deref(),
        Some(file.as_path())
    );
    // The database-only commands leave it unread.
    let env = BTreeMap::from([(on.0.to_string(), on.1.to_string())]);
    let unread = load_from_with(None, &env, Secrets::Unread).unwrap();
    assert!(unread.signals.webhook.enabled && unread.signals.webhook.secret.is_none());
}

#[test]
fn a_readable_short_or_missing_secret_is_refused_naming_the_key() {
    let on = ("FILLGUARD_SIGNALS__WEBHOOK__ENABLED", "1");
    let directory = TempDir::new().unwrap();
    let readable = write(directory.path(), "readable", SECRET, 0o640);
    let short = write(directory.path(), "short", "0123456789", 0o600);
    let key = "FILLGUARD_SIGNALS__WEBHOOK__SECRET_FILE";
    for (path, needle) in [
        (
            readable.to_str().unwrap(),
            "mode 0640 is readable by group or others",
        ),
        (short.to_str().unwrap(), "shorter than 32 characters"),
        ("/nonexistent/webhook-secret", "cannot read"),
    ] {
        let refused = error(&[on, (key, path)]);
        assert_eq!(
            refused.key(),
            Some("signals.webhook.secret_file"),
            "{refused}"
        );
        assert!(refused.to_string().contains(needle), "{refused}");
        assert!(!refused.to_string().contains(SECRET));
    }
}

#[test]
fn the_path_token_mode_needs_a_url_safe_token_of_32_characters() {
    let directory = TempDir::new().unwrap();
    let secret = write(directory.path(), "secret", SECRET, 0o600);
    let base = [
        ("FILLGUARD_SIGNALS__WEBHOOK__ENABLED", "true"),
        (
            "FILLGUARD_SIGNALS__WEBHOOK__SECRET_FILE",
            secret.to_str().unwrap(),
        ),
        ("FILLGUARD_SIGNALS__WEBHOOK__PATH_TOKEN", "true"),
    ];
    let missing = error(&base);
    assert_eq!(missing.key(), Some("signals.webhook.path_token_file"));
    let bad = write(
        directory.path(),
        "bad",
        "has/slash_0123456789abcdef0123456789",
        0o600,
    );
    let key = "FILLGUARD_SIGNALS__WEBHOOK__PATH_TOKEN_FILE";
    let refused = error(&[base[0], base[1], base[2], (key, bad.to_str().unwrap())]);
    assert!(
        refused.to_string().contains("letters, digits, - or _"),
        "{refused}"
    );
    // The secret's own file as the token: refused, the token being the weaker of the two.
    let same = error(&[base[0], base[1], base[2], (key, secret.to_str().unwrap())]);
    assert_eq!(same.key(), Some("signals.webhook.path_token_file"));
    assert!(same.to_string().contains("the same as"), "{same}");
    let good = write(directory.path(), "good", TOKEN, 0o600);
    let config = load(&[base[0], base[1], base[2], (key, good.to_str().unwrap())]).unwrap();
    assert_eq!(
        config.signals.webhook.token.as_ref().unwrap().expose(),
        TOKEN
    );
    let shown = render_masked(&config);
    assert!(!shown.contains(SECRET) && !shown.contains(TOKEN), "{shown}");
    assert!(shown.contains(&format!(
        "# secret = \"********\" (read from {})",
        secret.display()
    )));
    assert!(shown.contains(&format!(
        "# token = \"********\" (read from {})",
        good.display()
    )));
}

#[test]
fn each_bound_is_named_in_its_error() {
    for (name, value, key) in [
        ("LISTEN", "localhost", "signals.webhook.listen"),
        ("MAX_BODY_BYTES", "100", "signals.webhook.max_body_bytes"),
        ("MAX_BODY_BYTES", "70000", "signals.webhook.max_body_bytes"),
        ("RATE_PER_MINUTE", "0", "signals.webhook.rate_per_minute"),
        ("RATE_PER_MINUTE", "1.5", "signals.webhook.rate_per_minute"),
        ("MAX_CONNECTIONS", "257", "signals.webhook.max_connections"),
        ("ENABLED", "yes", "signals.webhook.enabled"),
    ] {
        let variable = format!("FILLGUARD_SIGNALS__WEBHOOK__{name}");
        let refused = error(&[(variable.as_str(), value)]);
        assert_eq!(refused.key(), Some(key), "{refused}");
        assert!(
            refused.to_string().contains(&variable),
            "names the source: {refused}"
        );
    }
}
