//! Cheap reads behind the gauges the shell refreshes every turn (open trades by state, filled
//! positions, alerts waiting in the outbox), so the metrics are right from the first turn after
//! a restart. Reads only; a value that does not parse is `StoreError::Corrupt` naming the row.

use rusqlite::Connection;
use rust_decimal::Decimal;

use super::{Result, StoreError};
use crate::core::trade::TradeState;

/// One non-terminal trade as the gauges need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenTrade {
    pub symbol: String,
    pub state: TradeState,
    pub filled_quantity: Decimal,
}

/// Every non-terminal trade's symbol, state and filled quantity.
pub fn open_trades(conn: &Connection) -> Result<Vec<OpenTrade>> {
    let mut statement = conn.prepare_cached(
        "SELECT id, state, filled_quantity, symbol FROM trades
         WHERE state NOT IN ('CLOSED', 'HALTED') ORDER BY id",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, String>(3)?,
        ))
    })?;
    let mut trades = Vec::new();
    for row in rows {
        let (id, state, filled_quantity, symbol) = row?;
        let corrupt = |column: &str, value: &str| {
            StoreError::Corrupt(format!("trades row {id}: column {column} is {value:?}"))
        };
        trades.push(OpenTrade {
            symbol,
            state: TradeState::parse(&state).ok_or_else(|| corrupt("state", &state))?,
            filled_quantity: filled_quantity
                .parse()
                .map_err(|_| corrupt("filled_quantity", &filled_quantity))?,
        });
    }
    Ok(trades)
}

/// Alerts queued and not yet sent (failed attempts included: they are retried; alerts given up
/// after unconfirmed attempts are not waiting any more).
pub fn pending_alerts(conn: &Connection) -> Result<u64> {
    let count: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM alerts WHERE sent_at_ms IS NULL AND given_up_at_ms IS NULL",
        )?
        .query_row([], |row| row.get(0))?;
    Ok(u64::try_from(count).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::trade::{Alert, Severity};
    use crate::store::tests::view;
    use crate::store::{Store, enqueue_alert, mark_alert_sent, save_view};

    #[test]
    fn open_trades_lists_non_terminal_trades_with_their_fill() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let mut filled = view(1);
        filled.trade.state = TradeState::Protecting;
        filled.trade.filled_quantity = "0.5".parse().unwrap();
        let mut closed = view(2);
        closed.trade.state = TradeState::Closed;
        let pending = view(3);
        store
            .transaction(|conn| {
                save_view(conn, &filled)?;
                save_view(conn, &closed)?;
                save_view(conn, &pending)
            })
            .unwrap();
        let trades = open_trades(store.conn()).unwrap();
        assert_eq!(
            trades,
            vec![
                OpenTrade {
                    symbol: filled.trade.symbol.clone(),
                    state: TradeState::Protecting,
                    filled_quantity: "0.5".parse().unwrap(),
                },
                OpenTrade {
                    symbol: pending.trade.symbol.clone(),
                    state: pending.trade.state,
                    filled_quantity: Decimal::ZERO,
                },
            ]
        );
    }

    #[test]
    fn an_unreadable_state_names_its_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let trade = view(7);
        store.transaction(|conn| save_view(conn, &trade)).unwrap();
        store
            .conn()
            .execute("UPDATE trades SET filled_quantity = 'x' WHERE id = 7", [])
            .unwrap();
        let error = open_trades(store.conn()).unwrap_err().to_string();
        assert!(
            error.contains("trades row 7") && error.contains("filled_quantity"),
            "{error}"
        );
    }

    #[test]
    fn pending_alerts_counts_the_unsent_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("t.db")).unwrap();
        let alert = |key: &str| Alert {
            severity: Severity::Warning,
            key: key.to_string(),
            text: "text".into(),
        };
        assert_eq!(pending_alerts(store.conn()).unwrap(), 0);
        store
            .transaction(|conn| {
                enqueue_alert(conn, &alert("a"), None, None, 1)?;
                enqueue_alert(conn, &alert("b"), None, None, 1)?;
                mark_alert_sent(conn, 1, 2)
            })
            .unwrap();
        assert_eq!(pending_alerts(store.conn()).unwrap(), 1);
    }
}
