//! What the integration tests that run the real binary share: a temporary workspace holding
//! the configuration, the database and the secrets, the `fillguard` command pointed at it,
//! and `fillguard sim-exchange` on 127.0.0.1 with the settings that aim the agent at it.
//!
//! Each test file uses a part of it, so unused items are not warnings here.
#![allow(dead_code)]

pub mod clock;
pub mod sqlite;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use fillguard::store::Store;

pub const BINARY: &str = env!("CARGO_BIN_EXE_fillguard");

/// Order statuses of the exchange under which an order can still fill.
pub const LIVE_STATUSES: [&str; 3] = ["NEW", "PENDING", "ACTIVE"];

/// A temporary directory with `fillguard.toml`; removed on drop.
pub struct Workspace {
    dir: tempfile::TempDir,
    /// Settings every command gets, such as those aiming the agent at a simulator.
    env: Vec<(String, String)>,
}

impl Workspace {
    /// A workspace whose database lives in it and whose metrics endpoint is off, with
    /// `extra_toml` appended to the configuration.
    pub fn new(extra_toml: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            "[store]\npath = \"{}/fillguard.db\"\n[metrics]\nlisten = \"off\"\n{extra_toml}",
            dir.path().display(),
        );
        std::fs::write(dir.path().join("fillguard.toml"), toml).unwrap();
        Workspace {
            dir,
            env: Vec::new(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a secret file readable by its owner only, as the agent demands.
    pub fn write_secret(&self, name: &str, secret: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, secret).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// `fillguard --config <workspace>/fillguard.toml <args>`, logging warnings and worse to
    /// stderr (not to the journal, even when the test runs under systemd).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BINARY);
        command
            .arg("--config")
            .arg(self.path("fillguard.toml"))
            .args(args)
            .env_remove("JOURNAL_STREAM")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the binary starts")
    }

    /// Runs the command and returns its stdout; panics with its stderr if it failed.
    pub fn run_ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "fillguard {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// `fillguard status --json --all`: every trade and alert, however many.
    pub fn status(&self) -> Value {
        serde_json::from_str(&self.run_ok(&["status", "--json", "--all"])).unwrap()
    }

    /// Queues a signal sized by notional.
    pub fn signal(&self, symbol: &str, side: &str, notional: &str) {
        self.run_ok(&[
            "signal",
            "--symbol",
            symbol,
            "--side",
            side,
            "--notional",
            notional,
        ]);
    }

    pub fn store(&self) -> Store {
        Store::open(&self.path("fillguard.db")).unwrap()
    }
}

/// The trades of `fillguard status --json`.
pub fn trades(status: &Value) -> &Vec<Value> {
    status["trades"].as_array().unwrap()
}

/// One `[[watchlist]]` entry trading on inbox signals only.
pub fn watchlist_entry(
    symbol: &str,
    notional: &str,
    stop_loss_pct: &str,
    take_profit_pct: &str,
) -> String {
    format!(
        "[[watchlist]]\nsymbol = \"{symbol}\"\nstrategy = \"none\"\nnotional = \"{notional}\"\nstop_loss_pct = \"{stop_loss_pct}\"\ntake_profit_pct = \"{take_profit_pct}\"\n"
    )
}

/// `fillguard sim-exchange` started on a free port of 127.0.0.1 with the workspace's
/// configuration; killed on drop, also when a check panics.
pub struct SimExchange {
    child: Child,
    address: String,
}

impl Drop for SimExchange {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SimExchange {
    /// Starts the simulator with `seed` and `faults`, accepting `api_key` and the secret
    /// written to `api-secret` in the workspace, and aims every later command of the workspace
    /// at it as its Crypto.com venue; returns once it listens.
    pub fn start(
        workspace: &mut Workspace,
        seed: &str,
        faults: &str,
        api_key: &str,
        api_secret: &str,
    ) -> SimExchange {
        Self::start_on(workspace, "127.0.0.1:0", seed, faults, api_key, api_secret)
    }

    /// Every order on the simulator's book, as its `/sim/book` lists them.
    pub fn book(&self) -> Vec<Value> {
        self.get("book").as_array().cloned().unwrap_or_default()
    }

    /// What the simulator's `GET /sim/{hook}` answers.
    pub fn get(&self, hook: &str) -> Value {
        let url = format!("http://{}/sim/{hook}", self.address);
        let body = ureq::get(&url)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// Moves the simulator's price of `symbol`.
    pub fn set_price(&self, symbol: &str, price: &str) {
        let url = format!("http://{}/sim/price", self.address);
        let body = serde_json::json!({"instrument_name": symbol, "price": price});
        ureq::post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
    }

    /// Whether an order of `book` can still fill.
    pub fn is_live(order: &Value) -> bool {
        LIVE_STATUSES.contains(&order["status"].as_str().unwrap_or(""))
    }
}

/// splitmix64, so pseudo-random moments are reproducible.
pub fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Settings of a workspace whose agent is aimed at a simulator that may not listen yet.
impl Workspace {
    /// Adds a setting every later command of the workspace gets.
    pub fn set_env(&mut self, name: &str, value: &str) {
        self.env.push((name.to_string(), value.to_string()));
    }

    /// Aims every later command at a Crypto.com venue on `address` (`127.0.0.1:PORT`, whether
    /// anything listens there or not) with `api_key` and the secret in `secret`, answering
    /// within 2 s.
    pub fn aim_at_cryptocom(&mut self, address: &str, api_key: &str, secret: &std::path::Path) {
        self.set_env("FILLGUARD_VENUE__KIND", "cryptocom");
        self.set_env(
            "FILLGUARD_VENUE__BASE_URL",
            &format!("http://{address}/exchange/v1"),
        );
        self.set_env("FILLGUARD_VENUE__API_KEY", api_key);
        let secret = secret.display().to_string();
        self.set_env("FILLGUARD_VENUE__API_SECRET_FILE", &secret);
        self.set_env("FILLGUARD_VENUE__TIMEOUT_SECONDS", "2");
    }

    /// `fillguard run` in the background, logging at info level to `log_name` in the
    /// workspace; killed on drop.
    pub fn spawn_run(&self, log_name: &str) -> Running {
        let log = self.path(log_name);
        let file = std::fs::File::create(&log).unwrap();
        let child = self
            .command(&["run"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("the binary starts");
        Running { child, log }
    }
}

/// A background `fillguard run` (`Workspace::spawn_run`), killed and reaped on drop, also when
/// a check panics.
pub struct Running {
    child: Child,
    log: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The log lines containing `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| line.contains(needle))
            .map(str::to_string)
            .collect()
    }

    /// Sends SIGTERM and waits for the exit, at most `limit`.
    pub fn terminate(&mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let started = std::time::Instant::now();
        loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                return exit;
            }
            assert!(
                started.elapsed() < limit,
                "still running {limit:?} after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Calls `check` every `interval` until it gives a value, for at most `limit`.
pub fn wait_for<T>(
    limit: std::time::Duration,
    interval: std::time::Duration,
    mut check: impl FnMut() -> Option<T>,
) -> Option<T> {
    let started = std::time::Instant::now();
    // Bounded by `limit`.
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if started.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(interval);
    }
}

/// A free port of 127.0.0.1 with nothing listening on it (bound once, then released).
pub fn free_loopback_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

impl SimExchange {
    /// Like `start`, on the given address of 127.0.0.1 (`127.0.0.1:0` for a free port).
    pub fn start_on(
        workspace: &mut Workspace,
        listen: &str,
        seed: &str,
        faults: &str,
        api_key: &str,
        api_secret: &str,
    ) -> SimExchange {
        Self::start_with(workspace, listen, seed, faults, api_key, api_secret, &[])
    }

    /// `start_on` with more of the simulator's options (`--fill-delay`, …) after the others.
    pub fn start_with(
        workspace: &mut Workspace,
        listen: &str,
        seed: &str,
        faults: &str,
        api_key: &str,
        api_secret: &str,
        extra: &[&str],
    ) -> SimExchange {
        assert!(listen.starts_with("127.0.0.1:"), "loopback only: {listen}");
        let secret = workspace.write_secret("api-secret", api_secret);
        let mut child = Command::new(BINARY)
            .arg("--config")
            .arg(workspace.path("fillguard.toml"))
            .args(["sim-exchange", "--listen", listen, "--seed", seed])
            .args(["--faults", faults, "--api-key", api_key])
            .arg("--api-secret-file")
            .arg(&secret)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the simulator starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let Some(address) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("unexpected first line {line:?}");
        };
        let address = address.to_string();
        workspace.aim_at_cryptocom(&address, api_key, &secret);
        SimExchange { child, address }
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// `POST /sim/outage` with `body` (see the README); returns the outage's new state.
    pub fn outage(&self, body: &Value) -> Value {
        let url = format!("http://{}/sim/outage", self.address);
        let text = ureq::post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// `GET /sim/outage`: `off`, `armed` or `active`.
    pub fn outage_state(&self) -> Value {
        let url = format!("http://{}/sim/outage", self.address);
        let text = ureq::get(&url)
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// The overall exposure `systemd-analyze security` rated a unit (its "Overall exposure level"
/// line, printed for the record); panics naming the report when there is none.
pub fn overall_exposure(report: &str) -> f64 {
    let line = report
        .lines()
        .find(|line| line.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{report}"));
    eprintln!("{line}");
    line.split(':')
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("unreadable exposure: {line}"))
}

/// `systemd-analyze verify` exited 0 and said nothing (printed for the record).
pub fn assert_verified_clean(verify: &std::process::Output) {
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    eprintln!("systemd-analyze verify: {} {said:?}", verify.status);
    assert!(verify.status.success() && said.trim().is_empty(), "{said}");
}
