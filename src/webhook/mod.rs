//! The webhook receiver (`[signals.webhook]`): an HTTP endpoint on its own thread that turns
//! authenticated requests into rows of the inbox (the `signals` table) and does nothing else.
//! It never trades, never calls the venue and never touches a trade: the agent's loop takes
//! the inbox's signals on its own turns, as it does `fillguard signal`'s, and never waits on
//! the receiver (they share only SQLite, one short `INSERT` per accepted signal).
//!
//! A request is checked in this order, each failure answered at once with a one-line JSON
//! reason: the rate limit (429), the path (404) and method (405), the size (413, from the
//! `Content-Length` and again while reading), the body's arrival (408), the signature or path
//! token (401), the body's fields (400, naming the field), the timestamp (400, more than 60 s
//! from this machine's clock), and the id (409 when the inbox already holds a signal with that
//! id, from the webhook or from `fillguard signal --id`: the id is the signal's `dedup_key`,
//! so a replay after a restart is refused too). Accepted signals answer 202.
//!
//! Every wait is bounded: the request head and the body each have a read timeout, a
//! connection has a total time limit, at most `max_connections` are served at once (more are
//! closed unread), and the database's busy timeout bounds the insert. Neither the secret nor
//! the path token reaches a log line, a metric, a response or an error.

mod check;
mod outcome;
pub mod payload;
mod rate;
mod server;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use rust_decimal::Decimal;

pub use check::{SIGNAL_PATH, SIGNATURE_HEADER, TIMESTAMP_TOLERANCE_MS, sign};
pub use outcome::{OUTCOME_LABELS, Outcome};

use crate::config::{Secret, WebhookConfig};
use crate::core::domain::Side;
use crate::store::{self, SignalRow, SignalStatus, Store};

/// The `source` of an inbox row the receiver wrote.
pub const SOURCE: &str = "webhook";
/// How long `start` waits for the receiver's thread to open the database and its runtime.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A receiver that could not start; `run` stops with exit 1.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("signals.webhook.listen {address}: cannot listen: {detail}")]
    Listen { address: SocketAddr, detail: String },
    #[error("signals.webhook: the receiver could not start: {detail}")]
    Start { detail: String },
}

/// What the receiver's thread needs, taken from the configuration.
struct Settings {
    secret: Secret,
    /// `Some` while the path-token mode is on.
    token: Option<Secret>,
    watchlist: Vec<String>,
    max_body_bytes: u32,
    rate_per_minute: u32,
    max_connections: u32,
}

/// A running receiver. Its thread serves until the process ends; signals it accepts meanwhile
/// wait in the inbox for the agent, also for the next run.
#[derive(Debug)]
pub struct Receiver {
    /// The bound address (the port resolved when the configuration said 0).
    pub address: SocketAddr,
}

/// Binds `signals.webhook.listen` here, so a port in use stops `run` at once, then serves
/// from a thread of its own with a database connection of its own on `store_path`. `None`
/// when the receiver is off.
pub fn start(
    config: &WebhookConfig,
    store_path: &Path,
    watchlist: &[String],
) -> Result<Option<Receiver>, WebhookError> {
    if !config.enabled {
        return Ok(None);
    }
    let secret = config.secret.clone().ok_or_else(|| WebhookError::Start {
        detail: "the shared secret was not read".to_string(),
    })?;
    let settings = Settings {
        secret,
        token: if config.path_token {
            config.token.clone()
        } else {
            None
        },
        watchlist: watchlist.to_vec(),
        max_body_bytes: config.max_body_bytes,
        rate_per_minute: config.rate_per_minute,
        max_connections: config.max_connections,
    };
    let listen_error = |error: std::io::Error| WebhookError::Listen {
        address: config.listen,
        detail: error.to_string(),
    };
    let listener = std::net::TcpListener::bind(config.listen).map_err(listen_error)?;
    listener.set_nonblocking(true).map_err(listen_error)?;
    let address = listener.local_addr().map_err(listen_error)?;
    server::spawn(listener, settings, store_path.to_path_buf(), START_TIMEOUT)
        .map_err(|detail| WebhookError::Start { detail })?;
    tracing::info!(
        listen = %address,
        path_token = config.path_token,
        "webhook receiver listening"
    );
    Ok(Some(Receiver { address }))
}

/// Stores a checked signal in the inbox under its id's key: `Accepted` with the new row's id,
/// `Replay` when a signal with that id is already there (whatever its source), `Unavailable`
/// when the database refuses.
fn store_signal(store: &Store, signal: &payload::Payload, now_ms: i64) -> Outcome {
    let row = SignalRow {
        id: 0,
        symbol: signal.symbol.clone(),
        side: signal.side,
        quantity: signal.quantity,
        notional: signal.notional,
        source: SOURCE.to_string(),
        dedup_key: Some(payload::id_key(&signal.id)),
        created_at_ms: now_ms,
        status: SignalStatus::New,
        reason: None,
        trade_id: None,
    };
    match store::insert_signal(store.conn(), &row) {
        Ok(Some(signal_row)) => Outcome::Accepted { signal: signal_row },
        Ok(None) => Outcome::Replay {
            id: signal.id.clone(),
        },
        Err(error) => {
            tracing::warn!(error = %error, "webhook signal not stored");
            Outcome::Unavailable
        }
    }
}

/// Side and size as a log line shows them.
fn describe(side: Side, quantity: Option<Decimal>, notional: Option<Decimal>) -> String {
    match (quantity, notional) {
        (Some(quantity), _) => format!("{side} quantity {quantity}"),
        (None, Some(notional)) => format!("{side} notional {notional}"),
        (None, None) => side.to_string(),
    }
}
