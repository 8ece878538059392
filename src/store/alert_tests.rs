//! Tests of the alert outbox's queries on a real SQLite file: the order due alerts come in
//! and the plans the per-turn queries run with.

use super::*;
use crate::core::trade::Severity;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.db")).unwrap();
    (dir, store)
}

fn enqueue(store: &Store, severity: Severity, key: &str, now: Millis) {
    let alert = Alert {
        severity,
        key: key.into(),
        text: key.into(),
    };
    assert!(enqueue_alert(store.conn(), &alert, None, None, now).unwrap());
}

fn keys(alerts: &[AlertRow]) -> Vec<&str> {
    alerts.iter().map(|alert| alert.key.as_str()).collect()
}

#[test]
fn critical_goes_first_but_never_starves_older_alerts() {
    let (_dir, store) = store();
    enqueue(&store, Severity::Info, "info", 0);
    enqueue(&store, Severity::Warning, "warning", 100_000);
    enqueue(&store, Severity::Critical, "critical", 120_000);
    let due = due_alerts(store.conn(), 200_000, 10).unwrap();
    // The INFO is older than the CRITICAL's head start; the WARNING is not.
    assert_eq!(keys(&due), ["info", "critical", "warning"]);
}

#[test]
fn a_due_critical_is_a_candidate_behind_more_than_a_limit_of_due_alerts() {
    let (_dir, store) = store();
    for n in 0..25 {
        enqueue(&store, Severity::Warning, &format!("warning-{n}"), 1_000 + n);
    }
    enqueue(&store, Severity::Critical, "critical", 2_000);
    let due = due_alerts(store.conn(), 3_000, 20).unwrap();
    assert_eq!(due.len(), 20);
    assert_eq!(due[0].key, "critical", "{:?}", keys(&due));
    // The WARNINGs keep their own order behind it.
    assert_eq!(due[1].key, "warning-0");
}
