//! Log output: native journald fields when systemd connected stderr to the journal
//! (`JOURNAL_STREAM` names stderr's device and inode), so `journalctl -u fillguard ORDER_ID=…`
//! finds an order's story; human-readable lines on stderr otherwise, coloured only on a terminal
//! and never when `NO_COLOR` is set. Field names are unprefixed (`SYMBOL`, `TRADE_ID`,
//! `ORDER_ID`, `CLIENT_OID`, `ROLE`); a trade's span carries `TRADE_ID` and `SYMBOL` for every
//! line logged while the agent drives it. Nothing here decides anything about trading.

use std::io::IsTerminal;
use std::os::fd::AsFd;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// HTTP client crates that print a request's full path at trace level; the Telegram bot token
/// travels in that path (`/bot<token>/sendMessage`), so they are capped at debug (where they
/// mask it). The webhook receiver's HTTP crates are capped too: a path-token request carries
/// its token in the path (they log nothing in the features built today; the cap keeps it so).
/// The cap is a filter of its own beside `RUST_LOG`'s, and an event must pass both: no
/// `RUST_LOG` value (`trace`, `5`, `ureq::util=trace`) can lift it.
const PATH_PRINTING_TARGETS: [&str; 4] = ["ureq", "ureq_proto", "hyper", "hyper_util"];

fn secret_path_cap() -> Targets {
    PATH_PRINTING_TARGETS.iter().fold(
        Targets::new().with_default(LevelFilter::TRACE),
        |cap, target| cap.with_target(*target, LevelFilter::DEBUG),
    )
}

/// Installs the global subscriber. `RUST_LOG` overrides the default `info` level.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let cap = secret_path_cap();
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    if journal_stream.as_deref().is_some_and(stderr_is_journal) {
        match tracing_journald::layer() {
            Ok(journald) => {
                let journald = journald
                    .with_field_prefix(None)
                    .with_syslog_identifier("fillguard".to_string());
                let _ = tracing_subscriber::registry()
                    .with(filter)
                    .with(cap)
                    .with(journald)
                    .try_init();
                return;
            }
            Err(error) => eprintln!("journald unavailable ({error}); logging to stderr"),
        }
    }
    let colour = stderr_wants_colour(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(cap)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(colour)
                .with_writer(std::io::stderr),
        )
        .try_init();
}

/// Colour only on a terminal, and never when `NO_COLOR` is set to anything but the empty
/// string (<https://no-color.org>), so escape codes never land in a file or a pipe.
fn stderr_wants_colour(is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    is_terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Whether stderr is still the stream systemd connected to the journal: `JOURNAL_STREAM` is
/// `DEVICE:INODE` of that stream (systemd.exec(5)). A child whose stderr was redirected
/// elsewhere inherits the variable but not the stream, and must log to its stderr.
fn stderr_is_journal(journal_stream: &str) -> bool {
    let Some(expected) = parse_journal_stream(journal_stream) else {
        return false;
    };
    match rustix::fs::fstat(std::io::stderr().as_fd()) {
        Ok(stat) => (stat.st_dev, stat.st_ino) == expected,
        Err(_) => false,
    }
}

fn parse_journal_stream(text: &str) -> Option<(u64, u64)> {
    let (device, inode) = text.trim().split_once(':')?;
    Some((device.parse().ok()?, inode.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(stderr_wants_colour(true, None));
        assert!(stderr_wants_colour(true, Some(OsStr::new(""))));
        assert!(!stderr_wants_colour(true, Some(OsStr::new("1"))));
        assert!(!stderr_wants_colour(false, None));
        assert!(!stderr_wants_colour(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn journal_stream_is_device_and_inode() {
        assert_eq!(parse_journal_stream("9:413938"), Some((9, 413938)));
        assert_eq!(parse_journal_stream("9:413938\n"), Some((9, 413938)));
        assert_eq!(parse_journal_stream("9"), None);
        assert_eq!(parse_journal_stream("x:1"), None);
        assert_eq!(parse_journal_stream(""), None);
    }

    #[test]
    fn http_clients_are_capped_at_debug_whatever_the_environment_asks() {
        use tracing::Level;
        let cap = secret_path_cap();
        for target in [
            "ureq",
            "ureq::util",
            "ureq::run",
            "ureq_proto::client",
            "hyper::proto",
            "hyper_util::server",
        ] {
            assert!(cap.would_enable(target, &Level::DEBUG), "{target}");
            assert!(!cap.would_enable(target, &Level::TRACE), "{target}");
        }
        assert!(cap.would_enable("fillguard::shell", &Level::TRACE));
    }

    #[test]
    fn a_journal_stream_naming_another_file_is_not_stderr() {
        assert!(!stderr_is_journal("0:0"));
        assert!(!stderr_is_journal("garbage"));
    }
}
