//! Telemetry: logging, the Prometheus metrics `fillguard run` serves, and the Telegram Bot API
//! client the alert outbox delivers through; the systemd watchdog plugs in here. Nothing here
//! decides anything about trading.

pub mod logging;
pub mod metrics;
pub mod telegram;
