//! The events table's retention in the loop: when `store.events_retention_days` is set, one
//! bounded batch of old events of closed trades is deleted per turn while a backlog remains,
//! then the next pass waits `PRUNE_INTERVAL_MS`. What may be deleted is the store's rule
//! (`store::prune_events`: never an open trade's events); this decides only when.

use tracing::info;

use super::Agent;
use crate::core::domain::Millis;
use crate::store;

/// Time between two passes once the backlog is gone (on the agent's clock).
pub const PRUNE_INTERVAL_MS: Millis = 3_600_000;
const DAY_MS: Millis = 86_400_000;

impl Agent {
    /// Deletes one batch of expired events if a pass is due. A full batch means more may be
    /// left: the next turn deletes the next batch, so a large backlog drains over several
    /// turns without holding one up.
    pub(super) fn prune_events(&mut self) -> anyhow::Result<()> {
        let days = self.config.store.events_retention_days;
        let now = self.clock.now_ms();
        if days == 0 || now < self.next_prune_ms {
            return Ok(());
        }
        let before_ms = now.saturating_sub(Millis::from(days).saturating_mul(DAY_MS));
        let deleted = self
            .store
            .transaction(|conn| store::prune_events(conn, before_ms, store::PRUNE_BATCH))?;
        if deleted > 0 {
            info!(
                deleted,
                retention_days = days,
                "old events of closed trades deleted"
            );
        }
        self.next_prune_ms = if deleted < store::PRUNE_BATCH {
            now.saturating_add(PRUNE_INTERVAL_MS)
        } else {
            now
        };
        Ok(())
    }
}
