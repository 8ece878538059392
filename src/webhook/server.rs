//! The receiver's thread: a current-thread tokio runtime serving HTTP/1.1 with hyper, one
//! request per connection, every connection bounded in time and in number. Everything runs on
//! this one thread (a `LocalSet`), so the database connection and the rate limiter need no
//! lock. Decides the outcome of a request through `check`, `payload` and the inbox write;
//! logs the outcome, never the body, the headers or the path.

use std::cell::{Cell, RefCell};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tracing::{debug, info, warn};

use super::check::{self, Route};
use super::outcome::Outcome;
use super::payload;
use super::rate::RateLimiter;
use super::{Settings, describe, store_signal};
use crate::store::Store;
use crate::telemetry::metrics::WEBHOOK_REQUESTS_TOTAL;

/// The request line and headers must arrive within this.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The body must arrive within this once the head is read.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// A connection is closed after this, whatever it is doing: the head and body timeouts, the
/// database's 5 s busy timeout and the answer fit in it.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(20);
/// After a failed `accept` (too many open files, say) before the next.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);
/// hyper's read buffer, which bounds the request head; its smallest allowed value.
const READ_BUFFER_BYTES: usize = 8192;
const HEADERS_MAX: usize = 32;
const _: () = assert!(
    HEADER_READ_TIMEOUT.as_secs() + BODY_READ_TIMEOUT.as_secs() + 5 < CONNECTION_TIMEOUT.as_secs()
);

struct State {
    settings: Settings,
    store: Store,
    /// Authenticated requests: the senders' allowance, which nobody without the secret can
    /// spend.
    signals: RefCell<RateLimiter>,
    /// Every other request (unknown path, wrong method, too large, bad signature or token):
    /// past this allowance they are answered 429 and logged at debug only, so a flood can
    /// neither crowd the senders out nor flood the journal.
    refused: RefCell<RateLimiter>,
}

/// Starts the thread and waits (at most `start_timeout`) until it has its database
/// connection and runtime, so that a failure stops `run` at start.
pub(super) fn spawn(
    listener: std::net::TcpListener,
    settings: Settings,
    store_path: PathBuf,
    start_timeout: Duration,
) -> Result<(), String> {
    let (ready, started) = mpsc::channel();
    std::thread::Builder::new()
        .name("webhook".to_string())
        .spawn(move || serve(listener, settings, store_path, ready))
        .map_err(|error| format!("cannot start its thread: {error}"))?;
    match started.recv_timeout(start_timeout) {
        Ok(result) => result,
        Err(_) => Err("its thread did not start in time".to_string()),
    }
}

fn serve(
    listener: std::net::TcpListener,
    settings: Settings,
    store_path: PathBuf,
    ready: mpsc::Sender<Result<(), String>>,
) {
    let store = match Store::open(&store_path) {
        Ok(store) => store,
        Err(error) => {
            let _ = ready.send(Err(error.to_string()));
            return;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let _ = ready.send(Err(format!("runtime: {error}")));
            return;
        }
    };
    let limiter = || RefCell::new(RateLimiter::new(settings.rate_per_minute, Instant::now()));
    let (signals, refused) = (limiter(), limiter());
    let state = Rc::new(State {
        settings,
        store,
        signals,
        refused,
    });
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => {
                let _ = ready.send(Err(format!("listener: {error}")));
                return;
            }
        };
        let _ = ready.send(Ok(()));
        accept_loop(listener, state).await;
    });
}

/// Counts open connections; the slot is given back when the connection's task ends.
struct Slot(Rc<Cell<u32>>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, state: Rc<State>) {
    let open = Rc::new(Cell::new(0_u32));
    // The receiver's one unbounded loop, like the agent's main loop: it serves until the
    // process ends. Each connection it takes is bounded in time and in number.
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                warn!(error = %error, "webhook connection not accepted");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        if open.get() >= state.settings.max_connections {
            metrics::counter!(WEBHOOK_REQUESTS_TOTAL, "outcome" => "over_capacity").increment(1);
            debug!(peer = %peer, "webhook connection closed: signals.webhook.max_connections are open");
            drop(stream);
            continue;
        }
        open.set(open.get() + 1);
        let slot = Slot(Rc::clone(&open));
        let state = Rc::clone(&state);
        tokio::task::spawn_local(async move {
            let _slot = slot;
            connection(stream, peer, state).await;
        });
    }
}

async fn connection(stream: tokio::net::TcpStream, peer: SocketAddr, state: Rc<State>) {
    let service = service_fn(move |request| {
        let state = Rc::clone(&state);
        async move { Ok::<_, Infallible>(respond(request, peer, &state).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(false)
        .max_buf_size(READ_BUFFER_BYTES)
        .max_headers(HEADERS_MAX);
    let served = builder.serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_TIMEOUT, served).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => debug!(peer = %peer, error = %error, "webhook connection ended"),
        Err(_) => debug!(peer = %peer, "webhook connection closed at its time limit"),
    }
}

async fn respond(
    request: Request<Incoming>,
    peer: SocketAddr,
    state: &State,
) -> Response<Full<Bytes>> {
    let outcome = decide(request, state).await;
    metrics::counter!(WEBHOOK_REQUESTS_TOTAL, "outcome" => outcome.label()).increment(1);
    log(&outcome, peer);
    let mut response = Response::new(Full::new(Bytes::from(outcome.body())));
    *response.status_mut() =
        StatusCode::from_u16(outcome.status()).expect("every outcome has a valid status");
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Outcome::RateLimited {
        retry_after_seconds,
    } = outcome
    {
        headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_seconds));
    }
    response
}

fn log(outcome: &Outcome, peer: SocketAddr) {
    match outcome {
        Outcome::Accepted { .. } | Outcome::Replay { .. } => {}
        Outcome::RateLimited { .. } | Outcome::NotFound | Outcome::MethodNotAllowed => {
            debug!(peer = %peer, outcome = outcome.label(), "webhook request refused");
        }
        Outcome::Malformed { field, .. } => {
            warn!(peer = %peer, outcome = outcome.label(), field = %field, "webhook request refused");
        }
        _ => warn!(peer = %peer, outcome = outcome.label(), "webhook request refused"),
    }
}

/// Authenticates and vets the request, then charges it to its allowance: a fresh signal to
/// the senders', anything else — unauthenticated, malformed, a replay or a stale body, which
/// anyone who captured one signed request could send again — to the refused requests'
/// (`State`). Only then is a signal stored.
async fn decide(request: Request<Incoming>, state: &State) -> Outcome {
    let vetted = match authenticate(request, state).await {
        Ok(body) => vet(&body, state),
        Err(refusal) => Err(refusal),
    };
    let limiter = match vetted {
        Ok(_) => &state.signals,
        Err(_) => &state.refused,
    };
    if let Err(wait) = limiter.borrow_mut().admit(Instant::now()) {
        if let Ok((signal, _)) = &vetted {
            // A genuine signal lost to the limit is worth a line the operator sees.
            warn!(id = %signal.id, symbol = %signal.symbol, "webhook signal refused: signals.webhook.rate_per_minute reached");
        }
        return Outcome::RateLimited {
            retry_after_seconds: wait.as_secs().max(1),
        };
    }
    match vetted {
        Ok((signal, now_ms)) => accept(&signal, now_ms, state),
        Err(refusal) => refusal,
    }
}

/// The route, the method, the size and the signature (or path token): the body of a request
/// that passes them all, else the refusal.
async fn authenticate(request: Request<Incoming>, state: &State) -> Result<Bytes, Outcome> {
    let settings = &state.settings;
    let path = request.uri().path().to_string();
    let route = check::route(&path, settings.token.is_some());
    if route == Route::Unknown {
        return Err(Outcome::NotFound);
    }
    if request.method() != Method::POST {
        return Err(Outcome::MethodNotAllowed);
    }
    let limit = settings.max_body_bytes;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > u64::from(limit)) {
        return Err(Outcome::TooLarge { limit });
    }
    let signature = request
        .headers()
        .get(check::SIGNATURE_HEADER)
        .map(|value| value.as_bytes().to_vec());
    let body = read_body(request.into_body(), limit).await?;
    let authenticated = match route {
        Route::Token(token) => {
            let expected = settings.token.as_ref().expect("token routes need a token");
            check::verify_token(expected.expose(), token)
        }
        _ => check::verify_signature(
            settings.secret.expose().as_bytes(),
            &body,
            signature.as_deref(),
        ),
    };
    authenticated.map_err(Outcome::Unauthorized)?;
    Ok(body)
}

/// The checks after authentication: the fields, the id (a replay), the time.
fn vet(body: &[u8], state: &State) -> Result<(payload::Payload, i64), Outcome> {
    let signal = match payload::parse(body, &state.settings.watchlist) {
        Ok(signal) => signal,
        Err(malformed) => {
            return Err(Outcome::Malformed {
                field: malformed.field,
                reason: malformed.reason,
            });
        }
    };
    // A repeat is answered 409 whatever its timestamp, so a sender retrying late learns that
    // the first copy arrived instead of being told to send again (under a new id, a second
    // trade). A 409 stores nothing, so a stale body is safe here.
    match crate::store::signal_key_exists(state.store.conn(), &payload::id_key(&signal.id)) {
        Ok(true) => {
            info!(id = %signal.id, symbol = %signal.symbol, "webhook signal refused: its id was seen before");
            return Err(Outcome::Replay { id: signal.id });
        }
        Ok(false) => {}
        Err(error) => {
            tracing::warn!(error = %error, "webhook signal not checked against the inbox");
            return Err(Outcome::Unavailable);
        }
    }
    let now_ms = wall_now_ms();
    if let Err(seconds) = check::check_timestamp(signal.timestamp_ms, now_ms) {
        let tolerance = check::TIMESTAMP_TOLERANCE_MS / 1000;
        let when = if seconds > 0 { "ahead of" } else { "behind" };
        return Err(Outcome::Malformed {
            field: "timestamp".to_string(),
            reason: format!(
                "{} s {when} this machine's clock; at most {tolerance} s either way",
                seconds.abs()
            ),
        });
    }
    Ok((signal, now_ms))
}

/// The inbox write of a vetted signal.
fn accept(signal: &payload::Payload, now_ms: i64, state: &State) -> Outcome {
    let outcome = store_signal(&state.store, signal, now_ms);
    match &outcome {
        Outcome::Accepted { signal: row } => info!(
            signal_id = row,
            id = %signal.id,
            symbol = %signal.symbol,
            order = %describe(signal.side, signal.quantity, signal.notional),
            "webhook signal accepted"
        ),
        Outcome::Replay { .. } => {
            info!(id = %signal.id, symbol = %signal.symbol, "webhook signal refused: its id was seen before");
        }
        _ => {}
    }
    outcome
}

async fn read_body(body: Incoming, limit: u32) -> Result<Bytes, Outcome> {
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match tokio::time::timeout(BODY_READ_TIMEOUT, limited.collect()).await {
        Err(_) => Err(Outcome::Timeout),
        Ok(Err(error)) if error.downcast_ref::<LengthLimitError>().is_some() => {
            Err(Outcome::TooLarge { limit })
        }
        Ok(Err(_)) => Err(Outcome::Malformed {
            field: "body".to_string(),
            reason: "could not be read".to_string(),
        }),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
    }
}

/// This machine's wall clock in Unix milliseconds: what a signal's timestamp is held against,
/// and what the inbox row's `created_at_ms` (and so its time-to-live) counts from.
fn wall_now_ms() -> i64 {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
