//! The bounded reads behind `status`: the open trades, the most recent closed ones and the
//! alerts still waiting or most recently queued, so the command's cost follows what it shows,
//! not everything ever stored. Reads only; never decides what a trade or an alert means.

use std::collections::BTreeSet;

use rusqlite::Connection;

use super::rows::{self, AlertRow};
use super::{Result, all_trade_ids};

/// What a bounded listing holds, and whether anything stored was left out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing<T> {
    pub items: Vec<T>,
    /// Older closed trades (or older delivered alerts) exist beyond the limit.
    pub omitted: bool,
}

/// Ids of every trade that is not closed (halted ones included) plus the `closed` most recent
/// closed ones, oldest first; `None` lists every trade.
pub fn status_trade_ids(conn: &Connection, closed: Option<usize>) -> Result<Listing<i64>> {
    let Some(closed) = closed else {
        return Ok(Listing {
            items: all_trade_ids(conn)?,
            omitted: false,
        });
    };
    let mut ids: BTreeSet<i64> = super::active_trades(conn)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    // A halted trade may hold a position the operator must still settle: every one is shown.
    let halted: Vec<i64> = conn
        .prepare_cached("SELECT id FROM trades WHERE state = 'HALTED'")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    ids.extend(halted);
    // Newest first by rowid: the walk stops after `closed + 1` closed trades, whatever the
    // number stored before them. The extra one only says whether more exist.
    let mut recent: Vec<i64> = conn
        .prepare_cached("SELECT id FROM trades WHERE state = 'CLOSED' ORDER BY id DESC LIMIT ?1")?
        .query_map([limit_param(closed)], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let omitted = recent.len() > closed;
    recent.truncate(closed);
    ids.extend(recent);
    Ok(Listing {
        items: ids.into_iter().collect(),
        omitted,
    })
}

/// Every alert not yet sent (waiting, or given up) plus the `recent` most recently queued
/// others, oldest first; `None` lists every alert.
pub fn status_alerts(conn: &Connection, recent: Option<usize>) -> Result<Listing<AlertRow>> {
    let Some(recent) = recent else {
        return Ok(Listing {
            items: rows::all_alerts(conn)?,
            omitted: false,
        });
    };
    // The unsent ones through the partial index of unsent alerts: they are few, and they
    // are what the operator must see whatever their age.
    let mut ids: BTreeSet<i64> = conn
        .prepare_cached("SELECT id FROM alerts INDEXED BY alerts_pending WHERE sent_at_ms IS NULL")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut newest: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM alerts WHERE sent_at_ms IS NOT NULL ORDER BY id DESC LIMIT ?1",
        )?
        .query_map([limit_param(recent)], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let omitted = newest.len() > recent;
    newest.truncate(recent);
    ids.extend(newest);
    let mut statement = conn.prepare_cached("SELECT * FROM alerts WHERE id = ?1")?;
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        let row = statement
            .query_row([id], rows::alert_from_row)
            .map_err(rows::map_corrupt)?;
        items.push(row);
    }
    Ok(Listing { items, omitted })
}

/// `limit + 1` as an SQL integer (one more row says whether more exist); saturates.
fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit)
        .unwrap_or(i64::MAX - 1)
        .saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::trade::{Alert, Severity, TradeState};
    use crate::store::tests::view;
    use crate::store::{Store, enqueue_alert, mark_alert_sent, save_view};

    /// Trades 1..=10: 3 and 8 open, the others closed (7 halted).
    fn store_with_trades(dir: &tempfile::TempDir) -> Store {
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        store
            .transaction(|conn| {
                for id in 1..=10 {
                    let mut trade = view(id);
                    trade.trade.state = match id {
                        3 | 8 => TradeState::Protected,
                        7 => TradeState::Halted,
                        _ => TradeState::Closed,
                    };
                    save_view(conn, &trade)?;
                }
                Ok(())
            })
            .unwrap();
        store
    }

    #[test]
    fn open_trades_and_the_newest_closed_ones_are_listed_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_trades(&dir);
        // Trades 3 and 8 are open and trade 7 halted: listed whatever the limit.
        let listing = status_trade_ids(store.conn(), Some(2)).unwrap();
        assert_eq!(listing.items, vec![3, 7, 8, 9, 10]);
        assert!(listing.omitted);
        let listing = status_trade_ids(store.conn(), Some(3)).unwrap();
        assert_eq!(listing.items, vec![3, 6, 7, 8, 9, 10]);
        let listing = status_trade_ids(store.conn(), Some(0)).unwrap();
        assert_eq!(listing.items, vec![3, 7, 8]);
        assert!(listing.omitted);
        // Exactly as many closed trades as the limit: nothing is left out.
        let listing = status_trade_ids(store.conn(), Some(7)).unwrap();
        assert_eq!(listing.items, (1..=10).collect::<Vec<_>>());
        assert!(!listing.omitted);
        let all = status_trade_ids(store.conn(), None).unwrap();
        assert_eq!(all.items, (1..=10).collect::<Vec<_>>());
        assert!(!all.omitted);
    }

    #[test]
    fn unsent_alerts_are_listed_whatever_their_age() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let alert = |key: String| Alert {
            severity: Severity::Warning,
            key,
            text: "text".into(),
        };
        store
            .transaction(|conn| {
                for id in 1..=6_i64 {
                    enqueue_alert(conn, &alert(format!("a{id}")), None, None, id)?;
                    // Alert 2 is never delivered: it must stay on show.
                    if id != 2 {
                        mark_alert_sent(conn, id, id)?;
                    }
                }
                Ok(())
            })
            .unwrap();
        let listing = status_alerts(store.conn(), Some(2)).unwrap();
        let ids: Vec<i64> = listing.items.iter().map(|alert| alert.id).collect();
        assert_eq!(ids, vec![2, 5, 6]);
        assert!(listing.omitted);
        let all = status_alerts(store.conn(), None).unwrap();
        assert_eq!(all.items.len(), 6);
        assert!(!all.omitted);
    }
}
