//! The mappings behind the metrics: database refusals to causes, sends to roles and outcomes,
//! and a step's before/after to the facts it records.

use rusqlite::ffi;

use super::*;
use crate::core::trade::RejectReason;

fn sqlite(code: i32) -> anyhow::Error {
    let error = rusqlite::Error::SqliteFailure(ffi::Error::new(code), None);
    anyhow::Error::new(store::StoreError::Sql(error)).context("storing a step of trade 1")
}

#[test]
fn database_refusals_map_to_their_cause() {
    assert_eq!(store_cause(&sqlite(ffi::SQLITE_BUSY)), "busy");
    assert_eq!(store_cause(&sqlite(ffi::SQLITE_LOCKED)), "busy");
    assert_eq!(store_cause(&sqlite(ffi::SQLITE_FULL)), "full");
    assert_eq!(store_cause(&sqlite(ffi::SQLITE_IOERR)), "io");
    assert_eq!(store_cause(&sqlite(ffi::SQLITE_IOERR_FSYNC)), "io");
    assert_eq!(store_cause(&sqlite(ffi::SQLITE_CORRUPT)), "corrupt");
    assert_eq!(store_cause(&sqlite(ffi::SQLITE_NOTADB)), "corrupt");
    assert_eq!(store_cause(&sqlite(ffi::SQLITE_CONSTRAINT)), "other");
    let corrupt = anyhow::Error::new(store::StoreError::Corrupt("trades row 1".into()));
    assert_eq!(store_cause(&corrupt), "corrupt");
    let bare = anyhow::Error::new(rusqlite::Error::SqliteFailure(
        ffi::Error::new(ffi::SQLITE_FULL),
        None,
    ));
    assert_eq!(store_cause(&bare), "full");
    assert_eq!(store_cause(&anyhow::anyhow!("no database here")), "other");
}

#[test]
fn sends_count_each_order_by_its_role() {
    let sent = |outcome| Event::Sent {
        client_oids: vec![
            "fg-0a1b2c3d-7-S1".to_string(),
            "fg-0a1b2c3d-7-T1".to_string(),
            "someone-elses-order".to_string(),
        ],
        outcome,
    };
    let ack = SendOutcome::Ack {
        order_id: None,
        list_id: Some("L1".into()),
    };
    assert_eq!(
        send_labels(&sent(ack)),
        vec![("stop_loss", "ack"), ("take_profit", "ack")]
    );
    let rejected = SendOutcome::Rejected {
        reason: RejectReason::Refused,
        message: "code 306".into(),
    };
    assert_eq!(send_labels(&sent(rejected))[0], ("stop_loss", "rejected"));
    let entry = Event::Sent {
        client_oids: vec!["fg-12-E0".to_string()],
        outcome: SendOutcome::Ambiguous {
            message: "timeout".into(),
        },
    };
    assert_eq!(send_labels(&entry), vec![("entry", "ambiguous")]);
    let exit = Event::Sent {
        client_oids: vec!["fg-0a1b2c3d-7-X2".to_string()],
        outcome: SendOutcome::Duplicate,
    };
    assert_eq!(send_labels(&exit), vec![("exit", "duplicate")]);
    assert!(send_labels(&Event::Due).is_empty());
}

fn trade() -> Trade {
    crate::store::tests::view(1).trade
}

#[test]
fn the_poll_that_ends_the_polling_records_the_attempts() {
    let mut before = trade();
    before.state = TradeState::AwaitingFill;
    before.attempts = 3;
    let mut after = before.clone();
    after.state = TradeState::Protecting;
    after.attempts = 0;
    after.filled_quantity = "0.5".parse().unwrap();
    after.filled_at_ms = Some(5_000);
    let facts = step_facts(&before, &after, true);
    assert_eq!(facts.entry_polls, Some(4));
    // Left without a poll's answer (a send's result): not a poll count.
    assert_eq!(step_facts(&before, &after, false).entry_polls, None);
    assert_eq!(facts.protection_failure, None);
    // Still polling: nothing yet. A rejected send never polled: nothing either.
    let mut polling = before.clone();
    polling.attempts = 4;
    assert_eq!(step_facts(&before, &polling, true).entry_polls, None);
    let mut pending = before.clone();
    pending.state = TradeState::EntryPending;
    let mut closed = pending.clone();
    closed.state = TradeState::Closed;
    assert_eq!(step_facts(&pending, &closed, false).entry_polls, None);
}

#[test]
fn the_first_protection_records_its_time_from_the_fill() {
    let mut before = trade();
    before.state = TradeState::Verifying;
    before.filled_quantity = "0.5".parse().unwrap();
    before.filled_at_ms = Some(10_000);
    let mut after = before.clone();
    after.state = TradeState::Protected;
    after.protected_at_ms = Some(12_750);
    let facts = step_facts(&before, &after, false);
    assert_eq!(facts.unprotected_seconds, Some(2.75));
    // Protected again after a recovery: the first protection was already recorded.
    let again = step_facts(&after, &after, false);
    assert_eq!(again.unprotected_seconds, None);
}

#[test]
fn a_filled_position_entering_the_failsafe_or_a_halt_is_a_protection_failure() {
    let mut before = trade();
    before.state = TradeState::Verifying;
    before.filled_quantity = "0.5".parse().unwrap();
    for state in [
        TradeState::Exiting,
        TradeState::Recovering,
        TradeState::Halted,
    ] {
        let mut after = before.clone();
        after.state = state;
        after.close_reason = Some("protection_rejected".into());
        let facts = step_facts(&before, &after, false);
        assert_eq!(
            facts.protection_failure,
            Some(("BTC_USDT".to_string(), "protection_rejected".to_string())),
            "{state:?}"
        );
        // Staying there (a recovery retry, the exit going on) is not a new failure.
        assert_eq!(step_facts(&after, &after, false).protection_failure, None);
    }
    // A recovery retry (back in Protecting, its episode open) failing again is the same
    // failure; a new episode after the trade was protected again is a new one.
    let mut retrying = before.clone();
    retrying.state = TradeState::Protecting;
    retrying.recovering_since_ms = Some(1_000);
    let mut failed_again = retrying.clone();
    failed_again.state = TradeState::Recovering;
    failed_again.close_reason = Some("protection_rejected".into());
    assert_eq!(
        step_facts(&retrying, &failed_again, false).protection_failure,
        None
    );
    // An entry halted before anything filled is no protection failure.
    let mut unfilled = trade();
    unfilled.state = TradeState::CancellingEntry;
    let mut halted = unfilled.clone();
    halted.state = TradeState::Recovering;
    halted.close_reason = Some("entry_cancel_failed".into());
    assert_eq!(
        step_facts(&unfilled, &halted, false).protection_failure,
        None
    );
}

#[test]
fn unprotected_positions_are_filled_open_trades_without_watched_legs() {
    let open = |state, filled: &str| OpenTrade {
        symbol: if state == TradeState::Exiting {
            "ETH_USDT"
        } else {
            "BTC_USDT"
        }
        .to_string(),
        state,
        filled_quantity: filled.parse().unwrap(),
    };
    let trades = [
        open(TradeState::AwaitingFill, "0"),
        open(TradeState::AwaitingFill, "0.2"),
        open(TradeState::Protecting, "0.5"),
        open(TradeState::Verifying, "0.5"),
        open(TradeState::Protected, "0.5"),
        open(TradeState::Closing, "0.5"),
        open(TradeState::Exiting, "0.5"),
        open(TradeState::Recovering, "0.5"),
        open(TradeState::Recovering, "0"),
    ];
    let expected = std::collections::BTreeMap::from([("BTC_USDT", 4), ("ETH_USDT", 1)]);
    assert_eq!(unprotected_positions(&trades), expected);
}
