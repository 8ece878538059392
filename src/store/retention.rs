//! The events table's retention (`store.events_retention_days`): deletes old audit-trail rows
//! in bounded batches. Never deletes an event of a trade that is not closed (a halted trade's
//! story is kept: it may hold a position the operator must still settle), and
//! never touches trades, orders, alerts or signals; when to prune is the shell's decision.

use rusqlite::{Connection, params};

use super::Result;
use crate::core::domain::Millis;

/// Events deleted per call at most: one short write transaction, so the loop's other work and
/// the watchdog's pings are never held up for long, whatever the backlog.
pub const PRUNE_BATCH: usize = 1_000;

/// Deletes up to `limit` events recorded before `before_ms` that belong to no open trade
/// (events of closed trades, of trades no longer stored, and events of no trade),
/// oldest first, through the index of events by age (migration 5; without it the planner
/// walks the whole table). Returns how many were deleted; fewer
/// than `limit` means nothing older is left to delete.
pub fn prune_events(conn: &Connection, before_ms: Millis, limit: usize) -> Result<usize> {
    let deleted = conn
        .prepare_cached(
            "DELETE FROM events WHERE id IN (
                SELECT events.id FROM events
                WHERE events.at_ms < ?1
                  AND NOT EXISTS (SELECT 1 FROM trades WHERE trades.id = events.trade_id
                                  AND trades.state <> 'CLOSED')
                ORDER BY events.at_ms LIMIT ?2)",
        )?
        .execute(params![before_ms, i64::try_from(limit).unwrap_or(i64::MAX)])?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::trade::TradeState;
    use crate::store::tests::view;
    use crate::store::{Store, events_for, record_event, save_view};

    fn count(store: &Store) -> i64 {
        store
            .conn()
            .query_row("SELECT COUNT(*) FROM events", [], |row| row.get(0))
            .unwrap()
    }

    fn kinds(store: &Store, trade_id: i64) -> Vec<String> {
        events_for(store.conn(), trade_id)
            .unwrap()
            .into_iter()
            .map(|(_, kind, _)| kind)
            .collect()
    }

    #[test]
    fn old_events_of_closed_trades_go_in_batches_and_open_and_halted_trades_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let mut closed = view(1);
        closed.trade.state = TradeState::Closed;
        let mut halted = view(2);
        halted.trade.state = TradeState::Halted;
        let mut open = view(3);
        open.trade.state = TradeState::Protected;
        store
            .transaction(|conn| {
                for trade in [&closed, &halted, &open] {
                    save_view(conn, trade)?;
                }
                // Five old events per trade (at 100..=104) and one recent one (at 10_000);
                // two old events of no trade.
                for trade_id in 1..=3 {
                    for at in 100..105 {
                        record_event(conn, at, Some(trade_id), None, "old", "x")?;
                    }
                    record_event(conn, 10_000, Some(trade_id), None, "recent", "x")?;
                }
                record_event(conn, 50, None, None, "self_check", "x")?;
                record_event(conn, 50, None, None, "self_check", "x")
            })
            .unwrap();
        assert_eq!(count(&store), 20);
        // Seven events are old enough and neither the open nor the halted trade's (a halted
        // trade may hold a position still to settle): batches of five.
        let batches: Vec<usize> = (0..3)
            .map(|_| {
                store
                    .transaction(|conn| prune_events(conn, 1_000, 5))
                    .unwrap()
            })
            .collect();
        assert_eq!(batches, vec![5, 2, 0]);
        assert_eq!(count(&store), 13);
        assert_eq!(kinds(&store, 1), vec!["recent"]);
        assert_eq!(
            kinds(&store, 2).len(),
            6,
            "the halted trade's events are all kept"
        );
        assert_eq!(
            kinds(&store, 3).len(),
            6,
            "the open trade's events are all kept"
        );
        // Once the open trade closes, its old events go too.
        open.trade.state = TradeState::Closed;
        store.transaction(|conn| save_view(conn, &open)).unwrap();
        let deleted = store
            .transaction(|conn| prune_events(conn, 1_000, 100))
            .unwrap();
        assert_eq!(deleted, 5);
        assert_eq!(kinds(&store, 3), vec!["recent"]);
    }
}
