//! The work of one loop turn after the reconciliation, in its order: trades by urgency (a
//! position that may be unprotected first, new entries last; every protected trade watched
//! together when one is due), the self-check, signals, alerts, retention. Every entry, a
//! stored intent's or a signal's, waits for urgent work first (`urgent.rs`). Holds no state
//! of its own.

use super::signals::SignalCheck;
use super::*;

impl Agent {
    /// Due trades, signals, alerts, drawing on the turn's alert-delivery and time budgets.
    /// Once the venue deferred something, the rest of the turn's venue work waits for the next
    /// turn (its budget is spent); alerts are still delivered.
    pub(super) fn due_work(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let active = self.active_in_turn_order()?;
        // When one protected trade is due to be watched, all of them are, from one snapshot
        // (`watch.rs`): their deadlines then fall together, one snapshot per watch interval.
        let watch_all = self.watch.watches_together()
            && active.iter().any(|(_, due, state)| {
                *state == Some(TradeState::Protected) && due.is_some_and(|due| due <= now)
            });
        // Once one entry waits for urgent work, the later ones of this turn wait too.
        let mut entries_wait = false;
        for (trade_id, due, state) in active {
            if self.turn_deferred {
                break;
            }
            let watched = watch_all && state == Some(TradeState::Protected);
            let due_now = due.is_some_and(|due| due <= now);
            if !(watched || due_now) {
                continue;
            }
            // An entry (re)sent from a stored intent waits, like a signal's, for the due work
            // of positions that may be unprotected (`urgent.rs`); it stays due meanwhile.
            if urgency(state) == urgent::URGENCY_NEW_ENTRY {
                entries_wait = entries_wait || !self.urgent_first()?;
                if entries_wait {
                    continue;
                }
            }
            self.drive(trade_id, Event::Due)?;
        }
        // Reads only the database, so no spent budget or outage holds it up.
        self.check_daily_loss()?;
        if !self.turn_deferred && self.self_check_due_ms.is_some_and(|due| due <= now) {
            self.self_check()?;
        }
        // The watchlist meets the exchange once the self-check no longer waits (passed, or
        // refused for the operator), before any signal is read.
        if !self.turn_deferred && self.self_check_due_ms.is_none() && self.watchlist.is_due(now) {
            self.check_watchlist()?;
        }
        if !self.turn_deferred && now >= self.next_signal_check_ms {
            match self.check_signals(!self.inbox_waits)? {
                // Signals the budget cut short are checked again next turn, strategies and all.
                SignalCheck::Cut => {}
                // Signals waiting for urgent work: only the inbox is checked again, next turn
                // (the urgent work that made them wait is due now, so the turn comes at once).
                SignalCheck::InboxWaits => self.inbox_waits = true,
                SignalCheck::Complete => {
                    self.inbox_waits = false;
                    let interval = self.config.loop_.interval.as_millis() as i64;
                    self.next_signal_check_ms = now + interval;
                }
            }
        }
        // Delivering an alert is a unit of work of its own (its own timeout, not the budget).
        self.notify.watchdog();
        self.deliver_alerts()?;
        self.prune_events()?;
        Ok(())
    }
}

/// `Agent::active_in_turn_order` on its data: `active` by id, the trade the last turn
/// deferred (if any) first within its urgency, then the others by id, urgencies in order.
pub(super) fn turn_order(
    mut active: Vec<store::ActiveTrade>,
    deferred: Option<i64>,
) -> Vec<store::ActiveTrade> {
    if let Some(first) = deferred {
        let split = active.partition_point(|(trade_id, _, _)| *trade_id < first);
        active.rotate_left(split);
    }
    // Stable: the rotation above stays the order within each urgency. A state the core does
    // not know goes first: driving it halts that trade alone.
    active.sort_by_key(|(_, _, state)| urgency(*state));
    active
}

/// A trade's urgency in the turn (`TradeState::urgency`); a state the core does not know goes
/// first: driving it halts that trade alone.
pub(super) fn urgency(state: Option<TradeState>) -> u8 {
    state.map_or(0, TradeState::urgency)
}

#[cfg(test)]
mod turn_order_tests {
    use super::*;
    use crate::core::trade::TradeState::{
        AwaitingFill, EntryPending, Protected, Recovering, Verifying,
    };

    fn ids(order: &[store::ActiveTrade]) -> Vec<i64> {
        order.iter().map(|(id, _, _)| *id).collect()
    }

    #[test]
    fn a_fill_to_protect_goes_before_a_deferred_recovery_and_new_entries_go_last() {
        let active = vec![
            (1, Some(0), Some(Recovering)),
            (2, Some(0), Some(EntryPending)),
            (3, Some(0), Some(AwaitingFill)),
            (4, Some(0), Some(Protected)),
            (5, Some(0), Some(Verifying)),
            (6, Some(0), None),
        ];
        // Trade 1's long lookup was cut short last turn: it resumes first among its peers,
        // after every trade whose position may be unprotected.
        assert_eq!(
            ids(&turn_order(active.clone(), Some(1))),
            [3, 5, 6, 1, 4, 2]
        );
        // A deferred trade of the most urgent kind leads its own urgency.
        assert_eq!(
            ids(&turn_order(active.clone(), Some(5))),
            [5, 6, 3, 1, 4, 2]
        );
        assert_eq!(ids(&turn_order(active, None)), [3, 5, 6, 1, 4, 2]);
    }
}
