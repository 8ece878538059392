//! Protection first: before any new entry is sent, the due work of every trade whose position
//! may be filled and unprotected (`TradeState::urgency` 0: fill polls, protective placements
//! and their read-backs, cancels of an entry that can still fill, failsafe exits, closings) is
//! served, on a clock read afresh, because venue calls take time and a poll falls due while
//! earlier signals are being turned into entries. An entry goes out only when nothing of that
//! kind is due; otherwise it waits (its signal stays in the inbox, its trade stays
//! `EntryPending` and due) for a later check in the same turn or the next one. Decides
//! nothing about a trade: it only orders the core's own work.

use crate::core::domain::Millis;
use crate::core::trade::Event;
use crate::shell::Agent;
use crate::store;

/// Passes over the urgent trades before one entry: each pass drives every urgent trade that
/// is due once. When work is still due after them (many fills being polled at once), the entry
/// waits for a later check rather than going out ahead of it.
pub(super) const URGENT_PASSES_MAX: usize = 3;
const _: () = assert!(URGENT_PASSES_MAX >= 1);

/// The urgency of a new entry (`TradeState::EntryPending`) and of the work that outranks it.
pub(super) const URGENCY_NEW_ENTRY: u8 = 2;
const URGENCY_UNPROTECTED: u8 = 0;

impl Agent {
    /// Serves the urgent trades' due work (at most `URGENT_PASSES_MAX` passes, each trade
    /// driven at most once a pass) and answers whether a new entry may go out now: nothing
    /// urgent is due on a fresh reading of the clock, and the turn's budget is not spent.
    /// Always true while `protection_first` is off (the simulation's canary only).
    pub(super) fn urgent_first(&mut self) -> anyhow::Result<bool> {
        if !self.protection_first {
            return Ok(!self.turn_deferred);
        }
        for _ in 0..URGENT_PASSES_MAX {
            let due = self.urgent_due()?;
            if due.is_empty() {
                return Ok(!self.turn_deferred);
            }
            for trade_id in due {
                // The budget is spent: nothing more this turn, the entry least of all.
                if self.turn_deferred {
                    return Ok(false);
                }
                self.notify.watchdog();
                self.drive(trade_id, Event::Due)?;
            }
        }
        Ok(self.urgent_due()?.is_empty() && !self.turn_deferred)
    }

    /// Urgent trades whose work is due now, by id (a state the core does not know counts as
    /// urgent, as in the turn's order: driving it halts that trade alone).
    fn urgent_due(&self) -> anyhow::Result<Vec<i64>> {
        let now = self.clock.now_ms();
        let active = store::active_trade_states(self.store.conn())?;
        Ok(urgent_due_among(&active, now))
    }
}

/// `Agent::urgent_due` on its data.
fn urgent_due_among(active: &[store::ActiveTrade], now: Millis) -> Vec<i64> {
    active
        .iter()
        .filter(|(_, due, state)| {
            let urgency = state.map_or(URGENCY_UNPROTECTED, |state| state.urgency());
            urgency == URGENCY_UNPROTECTED && due.is_some_and(|due| due <= now)
        })
        .map(|(trade_id, _, _)| *trade_id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::trade::TradeState::{
        AwaitingFill, Closing, EntryPending, Protected, Recovering, Verifying,
    };

    #[test]
    fn only_due_work_of_positions_that_may_be_unprotected_outranks_an_entry() {
        let active = vec![
            (1, Some(100), Some(AwaitingFill)),
            (2, Some(101), Some(AwaitingFill)),
            (3, Some(50), Some(Protected)),
            (4, Some(50), Some(Recovering)),
            (5, Some(50), Some(EntryPending)),
            (6, Some(100), Some(Verifying)),
            (7, None, Some(Closing)),
            (8, Some(0), None),
        ];
        assert_eq!(urgent_due_among(&active, 100), [1, 6, 8]);
        assert_eq!(urgent_due_among(&active, 101), [1, 2, 6, 8]);
        assert_eq!(URGENCY_NEW_ENTRY, EntryPending.urgency());
    }
}
