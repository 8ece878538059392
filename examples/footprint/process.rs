//! One `fillguard run` process seen from outside: started with `NOTIFY_SOCKET` bound here, as
//! systemd would, so `READY=1` is observed when the agent sends it; its memory read from
//! `/proc/PID/status`; stopped with SIGTERM (SIGKILL after a bound). Never waits without a
//! bound and never leaves the process behind.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Every process started here and not yet reaped, so a measurement that fails on one thread
/// can kill what another thread started (`kill_all`) before the program exits.
static RUNNING: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

fn register(pid: u32) {
    RUNNING.lock().unwrap_or_else(|p| p.into_inner()).push(pid);
}

fn unregister(pid: u32) {
    RUNNING
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|&other| other != pid);
}

/// SIGKILL to every process started here that is still running; for the way out of a
/// failed measurement.
pub fn kill_all() {
    let pids = std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|p| p.into_inner()));
    for pid in pids {
        let _ = Command::new("kill")
            .arg("-KILL")
            .arg(pid.to_string())
            .status();
    }
}

/// How long a stopped agent may take to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// A running agent.
pub struct Agent {
    child: Child,
    socket: UnixDatagram,
    socket_path: PathBuf,
    /// Set when the agent is stopped: the thread reading its notifications after `READY=1`
    /// ends.
    draining: Arc<AtomicBool>,
    /// When `spawn` was called: the start of every time measured on this run.
    pub started: Instant,
}

/// Memory figures of a process, in KiB as the kernel reports them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl Agent {
    /// Starts `binary run --config CONFIG [--max-ticks N]` in `dir`, its stderr in
    /// `dir/agent.log`.
    pub fn spawn(
        binary: &Path,
        config: &Path,
        dir: &Path,
        ticks: Option<u64>,
    ) -> anyhow::Result<Agent> {
        let socket_path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&socket_path);
        let socket = UnixDatagram::bind(&socket_path)
            .with_context(|| format!("binding {}", socket_path.display()))?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let log = std::fs::File::create(dir.join("agent.log"))?;
        let mut command = Command::new(binary);
        command.arg("run").arg("--config").arg(config);
        if let Some(ticks) = ticks {
            command.arg("--max-ticks").arg(ticks.to_string());
        }
        command
            .current_dir(dir)
            .env("NOTIFY_SOCKET", &socket_path)
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log));
        let started = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        register(child.id());
        Ok(Agent {
            child,
            socket,
            socket_path,
            draining: Arc::new(AtomicBool::new(true)),
            started,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for `READY=1`; the time since `spawn` when it came.
    pub fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<Duration> {
        let mut buffer = [0u8; 4096];
        while self.started.elapsed() < limit {
            match self.socket.recv(&mut buffer) {
                Ok(n) => {
                    let text = String::from_utf8_lossy(&buffer[..n]);
                    if text.lines().any(|line| line == "READY=1") {
                        let ready = self.started.elapsed();
                        self.drain()?;
                        return Ok(ready);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e).context("reading NOTIFY_SOCKET"),
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the agent exited ({status}) before READY=1; see its agent.log");
            }
        }
        bail!("no READY=1 within {limit:?}; see agent.log")
    }

    /// Reads and drops every later notification, as systemd would: a datagram socket nobody
    /// reads fills up, and the agent's next `STATUS=` would then block its loop.
    fn drain(&self) -> anyhow::Result<()> {
        let socket = self.socket.try_clone()?;
        let draining = Arc::clone(&self.draining);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while draining.load(Ordering::Relaxed) {
                let _ = socket.recv(&mut buffer);
            }
        });
        Ok(())
    }

    /// The process's resident memory now and its peak so far.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        read_memory(self.pid())
    }

    /// Waits up to `limit` for the agent to end by itself (`--max-ticks`).
    pub fn wait_exit(mut self, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    bail!("the agent exited with {status}; see its agent.log");
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop()?;
        bail!("the agent did not finish within {limit:?}; stopped")
    }

    /// SIGTERM, then SIGKILL if it has not exited after `STOP_GRACE`; reaps it either way.
    pub fn stop(mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        bail!("the agent ignored SIGTERM for {STOP_GRACE:?}; killed")
    }
}

impl Drop for Agent {
    /// A measurement that fails half-way must not leave its agent running.
    fn drop(&mut self) {
        unregister(self.child.id());
        self.draining.store(false, Ordering::Relaxed);
        let _ = std::fs::remove_file(&self.socket_path);
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `VmRSS` and `VmHWM` of `pid`.
pub fn read_memory(pid: u32) -> anyhow::Result<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = text
            .lines()
            .find(|line| line.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        let value = line[name.len()..].trim().trim_end_matches("kB").trim();
        value.parse().with_context(|| format!("{name} {value:?}"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// What limits a process's memory: `/proc/PID/smaps_rollup`'s anonymous and file-backed
/// resident parts, and its thread count.
pub fn memory_breakdown(pid: u32) -> String {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let pick = |text: &str, name: &str| {
        text.lines()
            .find(|line| line.starts_with(name))
            .map(|line| line[name.len()..].trim().to_string())
            .unwrap_or_else(|| "?".to_string())
    };
    format!(
        "anonymous {}, file-backed {}, threads {}",
        pick(&rollup, "Anonymous:"),
        pick(&status, "RssFile:"),
        pick(&status, "Threads:")
    )
}

/// CPU time (user + system) of every child this process has waited for, from
/// `/proc/self/stat` (`cutime` + `cstime`, in clock ticks of `ticks_per_second`).
pub fn children_cpu(ticks_per_second: u64) -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = text.rsplit_once(')').context("/proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17 of the whole line, 14 and 15 after the name.
    let ticks: u64 = fields
        .get(13..15)
        .context("/proc/self/stat is short")?
        .iter()
        .map(|field| field.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    Ok(Duration::from_millis(ticks * 1000 / ticks_per_second))
}

/// The kernel's clock ticks per second for `/proc` times (`getconf CLK_TCK`; 100 when that
/// cannot be asked, as on every Linux architecture fillguard is built for).
pub fn clock_ticks() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|ticks| *ticks > 0)
        .unwrap_or(100)
}

/// A `fillguard sim-exchange` on a loopback port, killed when dropped.
pub struct Simulator(Child);

impl Simulator {
    /// Starts the simulator with `config`'s `[paper]` section at `speed`, its log in
    /// `dir/sim.log`, and waits (at most 30 s) until it accepts connections.
    pub fn spawn(
        binary: &Path,
        config: &Path,
        dir: &Path,
        port: u16,
        speed: u32,
    ) -> anyhow::Result<Simulator> {
        let log = std::fs::File::create(dir.join("sim.log"))?;
        let child = Command::new(binary)
            .args([
                "sim-exchange",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--api-key",
                "demo",
            ])
            .arg("--api-secret-file")
            .arg(dir.join("sim-secret"))
            .arg("--speed")
            .arg(speed.to_string())
            .arg("--config")
            .arg(config)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .context("starting sim-exchange")?;
        register(child.id());
        let mut simulator = Simulator(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(simulator);
            }
            if let Some(status) = simulator.0.try_wait()? {
                bail!("sim-exchange exited ({status}); see sim.log");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("sim-exchange did not listen on {port} within 30 s")
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        unregister(self.0.id());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
