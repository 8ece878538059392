//! Telemetry: logging, and the Prometheus metrics `fillguard run` serves; the systemd watchdog
//! plugs in here. Nothing here decides anything about trading.

pub mod logging;
pub mod metrics;
