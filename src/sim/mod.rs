//! Simulation. `simulate` is the deterministic simulation of the agent under faults and crashes
//! (`fillguard simulate`). The rest of this module is an HTTP simulator of the Crypto.com
//! Exchange v1 REST API (`fillguard sim-exchange`): the paper
//! matching `Engine` served over a hand-written HTTP/1.1 server on loopback, with signed-request
//! verification, the exchange's error codes and rate limits, seeded fault injection and `/sim/`
//! test hooks that show the exchange's side of the truth and stage outages. For measurements,
//! `/sim/timeline` and `/sim/requests` (`truth`) give each order's times and every request on
//! the simulator's clock, and `--fill-delay` (`fill_delay`) draws each MARKET order's fill delay
//! from a seeded distribution.
//!
//! Requests are served one at a time on one thread (the engine is single-threaded), one request
//! per connection, every read bounded in size and time. The engine's clock is the wall clock
//! since start times `speed`. This module must not be used by the agent's core or shell: it is
//! a stand-in for the exchange, reachable only through HTTP. `bot_api` is the same kind of
//! stand-in for the Telegram Bot API, for the tests of alert delivery.

mod account;
pub mod bot_api;
mod envelope;
mod exchange;
mod faults;
mod fill_delay;
mod history;
pub(crate) mod http;
mod outage;
mod private;
mod public;
pub mod simulate;
mod truth;
mod wire;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::PaperConfig;

use exchange::{Outcome, Simulator};
pub use faults::{FAULTS_HELP, FaultSpec, Probability};
pub use fill_delay::{FILL_DELAY_HELP, FillDelay};

/// How long the accept loop sleeps when no connection is waiting; bounds how late `stop` is seen.
const ACCEPT_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Injected latency is slept in slices of this length, so `stop` still ends the server quickly.
const LATENCY_SLICE: Duration = Duration::from_millis(20);
/// Connections a `hang` outage keeps unanswered at most; beyond it the oldest is closed.
const HELD_CONNECTIONS_MAX: usize = 256;

#[derive(Debug, Clone)]
pub struct SimOptions {
    pub listen: SocketAddr,
    /// Seeds the price paths (overrides `paper.seed`) and the fault stream.
    pub seed: u64,
    pub faults: FaultSpec,
    pub api_key: String,
    pub api_secret: String,
    pub paper: PaperConfig,
    /// Engine time runs this many times faster than wall time (at least 1).
    pub speed: u32,
    /// Each MARKET order's fill delay, drawn per order; `None` keeps `paper.fill_delay_ms`.
    pub fill_delay: Option<FillDelay>,
}

/// Binds `options.listen`, prints exactly one line `listening on ADDR` to stdout, then serves
/// until `stop` is set.
pub fn serve(options: SimOptions, stop: Arc<AtomicBool>) -> Result<(), String> {
    let (listener, address) = bind(options.listen)?;
    let simulator = Simulator::new(&options)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {address}")
        .and_then(|()| stdout.flush())
        .map_err(|error| format!("writing to stdout: {error}"))?;
    drop(stdout);
    run(&listener, simulator, &stop);
    Ok(())
}

/// A simulator serving on its own thread, for in-process tests. Dropping it stops the server
/// and joins the thread.
pub struct SimServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    address: SocketAddr,
}

impl SimServer {
    pub fn start(options: SimOptions) -> Result<(SimServer, SocketAddr), String> {
        let (listener, address) = bind(options.listen)?;
        let simulator = Simulator::new(&options)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("sim-exchange".to_string())
            .spawn(move || run(&listener, simulator, &thread_stop))
            .map_err(|error| format!("starting the simulator thread: {error}"))?;
        let server = SimServer {
            stop,
            thread: Some(thread),
            address,
        };
        Ok((server, address))
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the simulator thread panicked");
            }
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn bind(listen: SocketAddr) -> Result<(TcpListener, SocketAddr), String> {
    let listener =
        TcpListener::bind(listen).map_err(|error| format!("binding {listen}: {error}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|error| format!("configuring {listen}: {error}"))?;
    let address = listener
        .local_addr()
        .map_err(|error| format!("reading the bound address: {error}"))?;
    Ok((listener, address))
}

fn run(listener: &TcpListener, mut simulator: Simulator, stop: &AtomicBool) {
    // Connections a `hang` outage leaves unanswered: closed when it ends, never answered.
    let mut held: VecDeque<TcpStream> = VecDeque::new();
    // The server's one unbounded loop: it ends only when `stop` is set.
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                if let Some(stream) = serve_connection(&mut simulator, stream, stop) {
                    if held.len() >= HELD_CONNECTIONS_MAX {
                        held.pop_front();
                    }
                    held.push_back(stream);
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL_INTERVAL);
            }
            Err(error) => {
                tracing::warn!(error = %error, "accept failed");
                std::thread::sleep(ACCEPT_POLL_INTERVAL);
            }
        }
        if !held.is_empty() && !simulator.holds_connections() {
            tracing::debug!(count = held.len(), "outage over; held connections closed");
            held.clear();
        }
    }
}

/// Serves one connection; returns it when a `hang` outage keeps it open unanswered.
fn serve_connection(
    simulator: &mut Simulator,
    mut stream: TcpStream,
    stop: &AtomicBool,
) -> Option<TcpStream> {
    let configured = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(http::READ_TIMEOUT)))
        .and_then(|()| stream.set_write_timeout(Some(http::READ_TIMEOUT)));
    if let Err(error) = configured {
        tracing::warn!(error = %error, "configuring a connection failed");
        return None;
    }
    let request = match http::read_request(&mut stream) {
        Ok(request) => request,
        Err(error) => {
            tracing::debug!(message = %error.message, "unreadable request");
            if let Some(status) = error.status {
                let body =
                    serde_json::json!({"code": wire::CODE_BAD_REQUEST, "message": error.message});
                let _ = http::write_response(&mut stream, status, body.to_string().as_bytes());
            }
            return None;
        }
    };
    let reply = simulator.handle(&request);
    sleep_unless_stopped(reply.latency_ms, stop);
    match reply.outcome {
        Outcome::Respond { status, body } => {
            tracing::debug!(path = %request.path, status, "request served");
            if let Err(error) = http::write_response(&mut stream, status, body.as_bytes()) {
                tracing::debug!(error = %error, "writing a response failed");
            }
        }
        Outcome::Drop => {
            tracing::debug!(path = %request.path, "response dropped (lost fault or outage)");
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        Outcome::Hold => {
            tracing::debug!(path = %request.path, "request held unanswered (outage)");
            return Some(stream);
        }
    }
    None
}

fn sleep_unless_stopped(latency_ms: u64, stop: &AtomicBool) {
    let mut remaining = Duration::from_millis(latency_ms.min(faults::LATENCY_MS_MAX));
    // Bounded: at most LATENCY_MS_MAX / LATENCY_SLICE iterations.
    while !remaining.is_zero() && !stop.load(Ordering::SeqCst) {
        let slice = remaining.min(LATENCY_SLICE);
        std::thread::sleep(slice);
        remaining -= slice;
    }
}
