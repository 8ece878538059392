//! Telemetry: logging, the Prometheus metrics `fillguard run` serves, the Telegram Bot API
//! client the alert outbox delivers through, and the systemd notifications (readiness,
//! watchdog, status). Nothing here decides anything about trading.

pub mod logging;
pub mod metrics;
pub mod sd_notify;
pub mod telegram;
