//! The systemd notification protocol (sd_notify(3)): `READY=1`, `WATCHDOG=1`, `STATUS=…` and
//! `STOPPING=1` as datagrams to the socket `NOTIFY_SOCKET` names (a path, or an abstract socket
//! when it starts with '@'). Without `NOTIFY_SOCKET` every call does nothing. A failed send is
//! logged once and never stops the agent: the supervisor's watchdog is what notices a silent
//! agent. Only the agent's main loop may call it (the watchdog must prove that loop turns, so
//! no other thread may ping); nothing here decides anything about trading.

use std::ffi::OsStr;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::{Duration, Instant};

use tracing::warn;

/// The supervisor's socket and the watchdog interval it asked for.
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    /// `WATCHDOG_USEC` when it applies to this process; pings go out at half of it.
    watchdog: Option<Duration>,
    last_ping: Option<Instant>,
    last_status: Option<String>,
    ready_sent: bool,
    /// Set once a send failed and was logged, so a broken socket logs one line, not one a turn.
    failure_logged: bool,
}

impl Notifier {
    /// A notifier that sends nothing (tests, commands other than `run`).
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
            last_ping: None,
            last_status: None,
            ready_sent: false,
            failure_logged: false,
        }
    }

    /// From `NOTIFY_SOCKET`, `WATCHDOG_USEC` and `WATCHDOG_PID` as systemd sets them.
    pub fn from_env() -> Notifier {
        let Some(socket) = std::env::var_os("NOTIFY_SOCKET").filter(|socket| !socket.is_empty())
        else {
            return Notifier::disabled();
        };
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        let watchdog = watchdog_interval(usec.as_deref(), pid.as_deref(), std::process::id());
        Notifier::new(&socket, watchdog)
    }

    /// Notifications to `socket` (a path, or `@name` for an abstract socket), pinging at half of
    /// `watchdog` when given. An unusable socket is logged and gives a disabled notifier.
    pub fn new(socket: &OsStr, watchdog: Option<Duration>) -> Notifier {
        let opened = UnixDatagram::unbound().and_then(|datagram| {
            let address = socket_address(socket.as_encoded_bytes())?;
            Ok((datagram, address))
        });
        match opened {
            Ok(target) => Notifier {
                target: Some(target),
                watchdog,
                ..Notifier::disabled()
            },
            Err(error) => {
                warn!(error = %error, socket = ?socket, "systemd notification socket unusable; readiness and watchdog pings are off");
                Notifier::disabled()
            }
        }
    }

    /// The watchdog interval the supervisor asked for, if any.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    /// `READY=1`, once: the database is open and every open trade was reconciled.
    pub fn ready(&mut self) {
        if !self.ready_sent {
            self.ready_sent = true;
            self.send("READY=1");
            // Readiness counts as a sign of life: the next ping is due half an interval later.
            self.last_ping = Some(Instant::now());
        }
    }

    /// `WATCHDOG=1` when half the interval has passed since the last one; cheap to call often.
    pub fn watchdog(&mut self) {
        let Some(interval) = self.watchdog else {
            return;
        };
        let due = self
            .last_ping
            .is_none_or(|last| last.elapsed() >= interval / 2);
        if due {
            self.last_ping = Some(Instant::now());
            self.send("WATCHDOG=1");
        }
    }

    /// `STATUS=<text>` when it differs from the last one sent.
    pub fn status(&mut self, text: &str) {
        if self.target.is_none() || self.last_status.as_deref() == Some(text) {
            return;
        }
        self.last_status = Some(text.to_string());
        // A newline would start another assignment in the datagram.
        self.send(&format!("STATUS={}", text.replace('\n', " ")));
    }

    /// `EXTEND_TIMEOUT_USEC=`: the start-up is still going (a reconciliation that spans loop
    /// turns), give it `extra` more from now. Only before `READY=1`.
    pub fn extend_start(&mut self, extra: Duration) {
        if !self.ready_sent {
            self.send(&format!("EXTEND_TIMEOUT_USEC={}", extra.as_micros()));
        }
    }

    /// `STOPPING=1`: the agent is shutting down on request.
    pub fn stopping(&mut self) {
        self.send("STOPPING=1");
    }

    fn send(&mut self, message: &str) {
        let Some((datagram, address)) = &self.target else {
            return;
        };
        if let Err(error) = datagram.send_to_addr(message.as_bytes(), address) {
            if !self.failure_logged {
                self.failure_logged = true;
                warn!(error = %error, message, "systemd notification not delivered (logged once)");
            }
        }
    }
}

/// The address `NOTIFY_SOCKET` names: a filesystem path, or an abstract name after '@'.
fn socket_address(socket: &[u8]) -> std::io::Result<SocketAddr> {
    match socket.strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name),
        None => SocketAddr::from_pathname(OsStr::from_bytes(socket)),
    }
}

/// `WATCHDOG_USEC` as an interval, when it is a positive number and `WATCHDOG_PID` is unset
/// or names this process (systemd sets it so a child that inherits the variables stays quiet).
fn watchdog_interval(usec: Option<&str>, pid: Option<&str>, own_pid: u32) -> Option<Duration> {
    if pid.is_some_and(|pid| pid.trim().parse::<u32>().ok() != Some(own_pid)) {
        return None;
    }
    let usec: u64 = usec?.trim().parse().ok().filter(|usec| *usec > 0)?;
    Some(Duration::from_micros(usec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(dir: &std::path::Path) -> (UnixDatagram, Notifier) {
        let path = dir.join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut notifier = Notifier::disabled();
        notifier.target = Some((
            UnixDatagram::unbound().unwrap(),
            socket_address(path.as_os_str().as_encoded_bytes()).unwrap(),
        ));
        (receiver, notifier)
    }

    fn receive(receiver: &UnixDatagram) -> String {
        let mut buffer = [0u8; 512];
        let length = receiver.recv(&mut buffer).unwrap();
        String::from_utf8_lossy(&buffer[..length]).into_owned()
    }

    #[test]
    fn the_watchdog_interval_applies_to_this_process_only() {
        let two = Some(Duration::from_secs(2));
        assert_eq!(watchdog_interval(Some("2000000"), None, 7), two);
        assert_eq!(watchdog_interval(Some("2000000"), Some("7"), 7), two);
        assert_eq!(watchdog_interval(Some("2000000"), Some("8"), 7), None);
        assert_eq!(watchdog_interval(Some("0"), None, 7), None);
        assert_eq!(watchdog_interval(Some("soon"), None, 7), None);
        assert_eq!(watchdog_interval(None, None, 7), None);
    }

    #[test]
    fn messages_reach_the_socket_and_repeats_are_held_back() {
        let dir = tempfile::tempdir().unwrap();
        let (receiver, mut notifier) = bound(dir.path());
        notifier.watchdog = Some(Duration::from_secs(3600));
        notifier.ready();
        notifier.ready();
        notifier.status("open trades: 1");
        notifier.status("open trades: 1");
        // Readiness just counted as a ping, so this one is held back.
        notifier.watchdog();
        notifier.last_ping = None;
        notifier.watchdog();
        notifier.stopping();
        let received: Vec<String> = (0..4).map(|_| receive(&receiver)).collect();
        assert_eq!(
            received,
            [
                "READY=1",
                "STATUS=open trades: 1",
                "WATCHDOG=1",
                "STOPPING=1"
            ]
        );
        receiver.set_nonblocking(true).unwrap();
        let mut buffer = [0u8; 64];
        assert!(receiver.recv(&mut buffer).is_err(), "nothing more was sent");
    }

    #[test]
    fn an_abstract_socket_is_reached_by_its_name() {
        let name = format!("fillguard-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&address).unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut notifier = Notifier::disabled();
        notifier.target = Some((
            UnixDatagram::unbound().unwrap(),
            socket_address(format!("@{name}").as_bytes()).unwrap(),
        ));
        notifier.stopping();
        assert_eq!(receive(&receiver), "STOPPING=1");
    }

    #[test]
    fn a_missing_socket_is_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let mut notifier = Notifier::disabled();
        notifier.target = Some((
            UnixDatagram::unbound().unwrap(),
            socket_address(dir.path().join("absent").as_os_str().as_encoded_bytes()).unwrap(),
        ));
        notifier.ready();
        notifier.status("x");
        assert!(notifier.failure_logged);
    }
}
