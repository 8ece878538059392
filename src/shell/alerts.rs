//! The alert outbox's delivery: every queued alert leaves through a sink and is marked sent or
//! failed in the store; nothing is dropped while delivery fails.

use tracing::{error, info, warn};

use super::{ALERTS_PER_TURN_MAX, Agent};
use crate::store;

impl Agent {
    /// Alert outbox: nothing is dropped while delivery fails; each alert is retried with
    /// backoff. The sink for now is the log (journald under systemd).
    pub(super) fn deliver_alerts(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let due = store::due_alerts(self.store.conn(), now, ALERTS_PER_TURN_MAX)?;
        for alert in due {
            match alert.severity.as_str() {
                "CRITICAL" => {
                    error!(alert = %alert.key, severity = "CRITICAL", trade_id = alert.trade_id,
                    symbol = alert.symbol.as_deref().unwrap_or(""), "{}", alert.text)
                }
                "WARNING" => {
                    warn!(alert = %alert.key, severity = "WARNING", trade_id = alert.trade_id,
                    symbol = alert.symbol.as_deref().unwrap_or(""), "{}", alert.text)
                }
                _ => info!(alert = %alert.key, severity = %alert.severity, "{}", alert.text),
            }
            self.store
                .transaction(|conn| store::mark_alert_sent(conn, alert.id, now))?;
        }
        Ok(())
    }
}
