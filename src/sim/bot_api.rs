//! A fake Telegram Bot API on 127.0.0.1 for tests: it answers `sendMessage` with scripted
//! replies (success, 5xx, 429 with `retry_after`, 401, a slow answer) and records every request
//! it received. Built on the simulator's small HTTP server side; it knows nothing of fillguard's
//! alerts, and fillguard's delivery knows nothing of it (it is just another base URL).

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::{READ_TIMEOUT, read_request, write_response};

/// How often the accept loop looks at its stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// Longest a scripted slow reply waits before answering.
const DELAY_MAX: Duration = Duration::from_secs(30);

/// One scripted answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// Waited before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn ok() -> Reply {
        Reply::json(
            200,
            r#"{"ok":true,"result":{"message_id":1,"chat":{"id":42}}}"#,
        )
    }

    pub fn server_error() -> Reply {
        Reply::json(
            500,
            r#"{"ok":false,"error_code":500,"description":"Internal Server Error"}"#,
        )
    }

    pub fn rate_limited(retry_after_seconds: u64) -> Reply {
        Reply::json(
            429,
            &format!(
                r#"{{"ok":false,"error_code":429,"description":"Too Many Requests: retry after {retry_after_seconds}","parameters":{{"retry_after":{retry_after_seconds}}}}}"#
            ),
        )
    }

    pub fn unauthorized() -> Reply {
        Reply::json(
            401,
            r#"{"ok":false,"error_code":401,"description":"Unauthorized"}"#,
        )
    }

    /// A 404 whose description repeats the request's path, as some proxies do: the path holds
    /// the bot token, so this is what the client must scrub.
    pub fn not_found_echoing_the_path() -> Reply {
        Reply::json(
            404,
            r#"{"ok":false,"error_code":404,"description":"Not Found: {path}"}"#,
        )
    }

    /// A success that arrives only after `delay`.
    pub fn slow(delay: Duration) -> Reply {
        Reply {
            delay: delay.min(DELAY_MAX),
            ..Reply::ok()
        }
    }

    fn json(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }
}

/// A request the fake received, with the status it answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// The JSON body (`Null` if it was not JSON).
    pub body: Value,
    pub status: u16,
}

impl Received {
    /// The message text of a `sendMessage`.
    pub fn text(&self) -> &str {
        self.body["text"].as_str().unwrap_or_default()
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Reply>,
    received: Vec<Received>,
}

/// The fake server; stops when dropped.
pub struct FakeBotApi {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeBotApi {
    /// Listens on a free loopback port. Scripted replies are used in order; once they run out,
    /// every request succeeds.
    pub fn start(script: Vec<Reply>) -> std::io::Result<FakeBotApi> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            received: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || serve(&listener, &state, &stop))
        };
        Ok(FakeBotApi {
            address,
            state,
            stop,
            thread: Some(thread),
        })
    }

    /// The `alerts.telegram.base_url` that aims the agent here.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Adds replies to the end of the script.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state).script.extend(replies);
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        lock(&self.state).received.clone()
    }

    /// The texts of the requests answered with success.
    pub fn delivered(&self) -> Vec<String> {
        self.received()
            .iter()
            .filter(|request| request.status == 200)
            .map(|request| request.text().to_string())
            .collect()
    }
}

impl Drop for FakeBotApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Answers one connection at a time until stopped.
fn serve(listener: &TcpListener, state: &Mutex<State>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => answer(stream, state, stop),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(ACCEPT_POLL);
            }
            Err(_) => std::thread::sleep(ACCEPT_POLL),
        }
    }
}

fn answer(mut stream: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let ready = stream.set_nonblocking(false).is_ok()
        && stream.set_read_timeout(Some(READ_TIMEOUT)).is_ok();
    if !ready {
        return;
    }
    let Ok(request) = read_request(&mut stream) else {
        return;
    };
    let reply = lock(state).script.pop_front().unwrap_or_else(Reply::ok);
    lock(state).received.push(Received {
        at: Instant::now(),
        method: request.method.clone(),
        path: request.path.clone(),
        body: serde_json::from_slice(&request.body).unwrap_or(Value::Null),
        status: reply.status,
    });
    // Bounded by `DELAY_MAX`; cut short when the fake is dropped.
    let until = Instant::now() + reply.delay;
    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
        std::thread::sleep(ACCEPT_POLL);
    }
    let body = reply.body.replace("{path}", &request.path);
    let _ = write_response(&mut stream, reply.status, body.as_bytes());
}
