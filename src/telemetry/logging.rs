//! Log output: native journald fields when started by systemd (`JOURNAL_STREAM` is set), so
//! `journalctl -u fillguard ORDER_ID=…` finds an order's story; human-readable lines on stderr
//! otherwise. Field names are unprefixed (`SYMBOL`, `TRADE_ID`, `ORDER_ID`, `CLIENT_OID`, `ROLE`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber. `RUST_LOG` overrides the default `info` level.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        match tracing_journald::layer() {
            Ok(journald) => {
                let journald = journald
                    .with_field_prefix(None)
                    .with_syslog_identifier("fillguard".to_string());
                let _ = tracing_subscriber::registry()
                    .with(filter)
                    .with(journald)
                    .try_init();
                return;
            }
            Err(error) => eprintln!("journald unavailable ({error}); logging to stderr"),
        }
    }
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .try_init();
}
