//! Log output: native journald fields when started by systemd (`JOURNAL_STREAM` is set), so
//! `journalctl -u fillguard ORDER_ID=…` finds an order's story; human-readable lines on stderr
//! otherwise. Field names are unprefixed (`SYMBOL`, `TRADE_ID`, `ORDER_ID`, `CLIENT_OID`, `ROLE`).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// HTTP client crates that print a request's full path at trace level; the Telegram bot token
/// travels in that path, so they are held at debug (where they mask it) whatever `RUST_LOG`
/// says.
const PATH_PRINTING_TARGETS: [&str; 2] = ["ureq=debug", "ureq_proto=debug"];

/// Installs the global subscriber. `RUST_LOG` overrides the default `info` level.
pub fn init() {
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let asks_for_trace = std::env::var("RUST_LOG")
        .is_ok_and(|directives| directives.to_ascii_lowercase().contains("trace"));
    if asks_for_trace {
        for directive in PATH_PRINTING_TARGETS {
            filter = filter.add_directive(directive.parse().expect("a valid directive"));
        }
    }
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
