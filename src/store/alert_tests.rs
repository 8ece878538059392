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
        enqueue(
            &store,
            Severity::Warning,
            &format!("warning-{n}"),
            1_000 + n,
        );
    }
    enqueue(&store, Severity::Critical, "critical", 2_000);
    let due = due_alerts(store.conn(), 3_000, 20).unwrap();
    assert_eq!(due.len(), 20);
    assert_eq!(due[0].key, "critical", "{:?}", keys(&due));
    // The WARNINGs keep their own order behind it.
    assert_eq!(due[1].key, "warning-0");
}

/// The plan's detail lines for `sql`.
fn plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let parameters = vec![0_i64; statement.parameter_count()];
    statement
        .query_map(rusqlite::params_from_iter(parameters), |row| {
            row.get::<_, String>(3)
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[test]
fn the_per_turn_alert_queries_read_only_unsent_alerts_through_the_partial_index() {
    let (_dir, mut store) = store();
    // Many sent alerts, then two unsent ones.
    store
        .transaction(|conn| {
            for n in 0..2_000 {
                let alert = Alert {
                    severity: Severity::Warning,
                    key: format!("sent-{n}"),
                    text: "old".into(),
                };
                enqueue_alert(conn, &alert, None, None, n)?;
                mark_alert_sent(conn, conn.last_insert_rowid(), n)?;
            }
            Ok(())
        })
        .unwrap();
    enqueue(&store, Severity::Critical, "unsent-1", 5_000);
    enqueue(&store, Severity::Info, "unsent-2", 5_001);
    let conn = store.conn();
    for sql in [rows::UNSENT_ALERTS_AFTER, rows::DUE_ALERTS] {
        let plan = plan(conn, sql);
        println!("{plan:?}");
        assert!(
            plan.iter()
                .any(|line| line.contains("USING INDEX alerts_pending")),
            "{plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|line| line == "SCAN alerts" || line.contains("INTEGER PRIMARY KEY")),
            "{plan:?}"
        );
    }
    // The work done follows the unsent alerts, not the 2,000 sent ones.
    let unsent = unsent_alerts_after(conn, 0, 20).unwrap();
    assert_eq!(keys(&unsent), ["unsent-1", "unsent-2"]);
    let mut statement = conn.prepare_cached(rows::UNSENT_ALERTS_AFTER).unwrap();
    let rows = statement
        .query_map(rusqlite::params![0, 20], |_| Ok(()))
        .unwrap()
        .count();
    assert_eq!(rows, 2);
    let steps = statement.get_status(rusqlite::StatementStatus::VmStep);
    // A scan steps once per entry it visits: here the index holds the two unsent alerts only.
    let scanned = statement.get_status(rusqlite::StatementStatus::FullscanStep);
    println!("{steps} virtual machine steps, {scanned} scan steps for 2 unsent of 2,002");
    assert!(
        steps < 200,
        "{steps} virtual machine steps for 2 unsent alerts"
    );
    assert!(scanned <= 2, "{scanned} scan steps for 2 unsent alerts");
}
