//! The watchlist check's memory in the `meta` table: each symbol's state as the running agent
//! last decided it (what `status` shows), and the symbols already reported as not listed (so
//! a restart does not report them again). Stores what the core decided; decides nothing.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use super::{Result, StoreError};
use crate::core::domain::Millis;
use crate::core::watchlist::SymbolState;

const STATES_KEY: &str = "watchlist_states";
const REPORTED_KEY: &str = "watchlist_reported";

/// The watchlist's states as the agent last stored them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchlistRecord {
    /// When the exchange's listing was last read (`None`: the check is pending).
    pub checked_at_ms: Option<Millis>,
    pub states: BTreeMap<String, SymbolState>,
}

fn read(conn: &Connection, key: &str) -> Result<Option<Value>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()
        .map_err(|error| StoreError::Corrupt(format!("meta row {key}: column value: {error}")))?;
    text.map(|text| {
        serde_json::from_str(&text).map_err(|error| {
            StoreError::Corrupt(format!("meta row {key}: column value: not JSON: {error}"))
        })
    })
    .transpose()
}

fn write(conn: &Connection, key: &str, value: &Value) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value.to_string()])?;
    Ok(())
}

fn corrupt(key: &str, problem: &str) -> StoreError {
    StoreError::Corrupt(format!("meta row {key}: column value: {problem}"))
}

/// The symbols reported as not listed and not fixed since; empty when none were.
pub fn watchlist_reported(conn: &Connection) -> Result<BTreeSet<String>> {
    let Some(value) = read(conn, REPORTED_KEY)? else {
        return Ok(BTreeSet::new());
    };
    let Value::Array(items) = value else {
        return Err(corrupt(REPORTED_KEY, "not a list"));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(symbol) => Ok(symbol),
            _ => Err(corrupt(REPORTED_KEY, "a symbol that is not text")),
        })
        .collect()
}

/// Stores one check's outcome: the states, and the reported set when the check decided one.
pub fn save_watchlist(
    conn: &Connection,
    states: &BTreeMap<String, SymbolState>,
    reported: Option<&BTreeSet<String>>,
    checked_at_ms: Option<Millis>,
) -> Result<()> {
    let symbols: serde_json::Map<String, Value> = states
        .iter()
        .map(|(symbol, state)| (symbol.clone(), Value::from(state.as_str())))
        .collect();
    write(
        conn,
        STATES_KEY,
        &json!({"checked_at_ms": checked_at_ms, "symbols": symbols}),
    )?;
    if let Some(reported) = reported {
        write(conn, REPORTED_KEY, &json!(reported))?;
    }
    Ok(())
}

/// The states the agent last stored (`None`: no agent has checked the watchlist yet).
pub fn watchlist_states(conn: &Connection) -> Result<Option<WatchlistRecord>> {
    let Some(value) = read(conn, STATES_KEY)? else {
        return Ok(None);
    };
    let checked_at_ms = match value.get("checked_at_ms") {
        None | Some(Value::Null) => None,
        Some(at) => Some(
            at.as_i64()
                .ok_or_else(|| corrupt(STATES_KEY, "checked_at_ms is not an integer"))?,
        ),
    };
    let Some(Value::Object(symbols)) = value.get("symbols") else {
        return Err(corrupt(STATES_KEY, "no symbols object"));
    };
    let states = symbols
        .iter()
        .map(|(symbol, state)| {
            state
                .as_str()
                .and_then(SymbolState::parse)
                .map(|state| (symbol.clone(), state))
                .ok_or_else(|| corrupt(STATES_KEY, &format!("{symbol}: unknown state {state}")))
        })
        .collect::<Result<_>>()?;
    Ok(Some(WatchlistRecord {
        checked_at_ms,
        states,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn states_and_reported_symbols_round_trip_and_a_bad_row_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("fillguard.db")).unwrap();
        let conn = store.conn();
        assert_eq!(watchlist_states(conn).unwrap(), None);
        assert!(watchlist_reported(conn).unwrap().is_empty());
        let states = BTreeMap::from([
            ("BTC_USDT".to_string(), SymbolState::Enabled),
            ("FOO_USDT".to_string(), SymbolState::Disabled),
        ]);
        let reported = BTreeSet::from(["FOO_USDT".to_string()]);
        save_watchlist(conn, &states, Some(&reported), Some(42)).unwrap();
        assert_eq!(watchlist_reported(conn).unwrap(), reported);
        let record = watchlist_states(conn).unwrap().unwrap();
        assert_eq!(record.checked_at_ms, Some(42));
        assert_eq!(record.states, states);
        // A pending check keeps what was reported.
        let pending = BTreeMap::from([("BTC_USDT".to_string(), SymbolState::Unchecked)]);
        save_watchlist(conn, &pending, None, None).unwrap();
        assert_eq!(watchlist_reported(conn).unwrap(), reported);
        assert_eq!(watchlist_states(conn).unwrap().unwrap().checked_at_ms, None);
        conn.execute(
            "UPDATE meta SET value = '[1]' WHERE key = 'watchlist_reported'",
            [],
        )
        .unwrap();
        let error = watchlist_reported(conn).unwrap_err().to_string();
        assert!(error.contains("meta row watchlist_reported"), "{error}");
    }
}
