//! Telemetry: logging, the Telegram Bot API client the alert outbox delivers through; Prometheus
//! metrics and the systemd watchdog plug in here. Nothing here decides anything about trading.

pub mod logging;
pub mod telegram;
