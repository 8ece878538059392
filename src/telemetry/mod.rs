//! Telemetry: logging now; Prometheus metrics and the systemd watchdog plug in here. Nothing
//! here decides anything about trading.

pub mod logging;
