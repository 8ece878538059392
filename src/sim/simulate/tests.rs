//! The simulation's own tests: determinism, seeds passing under faults, and the canaries
//! that prove each invariant check can fail.

use super::*;

const TICKS: u64 = 60;

#[test]
fn the_same_seed_gives_the_same_event_log() {
    let first = run_seed(7, TICKS, None);
    let second = run_seed(7, TICKS, None);
    assert_eq!(first.verdict, Verdict::Pass, "{first:#?}");
    assert_eq!(first.hash, second.hash);
    assert_ne!(first.hash, run_seed(8, TICKS, None).hash);
    assert!(first.trades > 0, "the seed traded");
}

#[test]
fn seeds_pass_with_faults_and_crashes() {
    let reports: Vec<SeedReport> = (0..6).map(|seed| run_seed(seed, TICKS, None)).collect();
    for report in &reports {
        assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
    }
    assert!(
        reports.iter().map(|r| r.crashes).sum::<u32>() > 0,
        "crashes were simulated"
    );
    assert!(
        reports.iter().map(|r| r.store_errors).sum::<u32>() > 0,
        "the disk refused writes"
    );
    assert!(
        reports.iter().any(|r| !r.faults.contains("skew_max_ms=0 ")),
        "some seed ran on a skewed clock"
    );
}

fn first_failure(canary: Canary) -> Verdict {
    (0..30)
        .map(|seed| run_seed(seed, TICKS, Some(canary)).verdict)
        .find(|verdict| *verdict != Verdict::Pass)
        .unwrap_or(Verdict::Pass)
}

/// The failsafe's exit (and any clearing) sent while legs still rest: the net-position S2
/// and the new S8 must both be able to fail. At the command's default length of a seed (150
/// turns with faults): a failsafe exit needs a fault episode long enough to reach it. S2 needs a
/// leg left resting for minutes as well: with today's fill polling the first such seed is 88
/// (S8 fails from seed 5), so up to 100 seeds are tried, stopping at the first of each.
#[test]
fn an_exit_sent_without_waiting_for_the_cancel_fails_s2_and_s8() {
    let mut seen = (None, None);
    for seed in 0..100 {
        if let Verdict::Correctness(text) =
            run_seed(seed, 150, Some(Canary::ExitBeforeCancel)).verdict
        {
            if text.starts_with("S2") {
                seen.0.get_or_insert(text);
            } else if text.starts_with("S8") {
                seen.1.get_or_insert(text);
            }
        }
        if seen.0.is_some() && seen.1.is_some() {
            break;
        }
    }
    assert!(seen.0.is_some() && seen.1.is_some(), "{seen:?}");
}

#[test]
fn a_venue_that_duplicates_orders_fails_s1() {
    let verdict = first_failure(Canary::DuplicateOrders);
    assert!(
        matches!(&verdict, Verdict::Correctness(text) if text.starts_with("S1")),
        "{verdict:?}"
    );
}

#[test]
fn an_alert_channel_that_drops_alerts_fails_a1() {
    let verdict = first_failure(Canary::DropAlerts);
    assert!(
        matches!(&verdict, Verdict::Correctness(text) if text.starts_with("A1")),
        "{verdict:?}"
    );
}

#[test]
fn seeds_with_a_failing_alert_channel_deliver_every_alert_once() {
    let reports: Vec<SeedReport> = (0..40)
        .map(|seed| run_seed(seed, TICKS, None))
        .filter(|report| report.alerts_down)
        .take(4)
        .collect();
    assert!(!reports.is_empty(), "some seed's alert channel failed");
    for report in &reports {
        assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
    }
}

#[test]
fn a_venue_that_loses_fills_fails_s3() {
    let verdict = first_failure(Canary::LoseFills);
    assert!(
        matches!(&verdict, Verdict::Correctness(text) if text.starts_with("S3")),
        "{verdict:?}"
    );
}

/// The deferred fault class: calls not made because the turn's budget is spent. Seeds that
/// draw it defer calls (sends, lookups, cancels, market data, the self-check) and still keep
/// every invariant.
#[test]
fn seeds_whose_calls_are_deferred_keep_every_invariant() {
    let reports: Vec<SeedReport> = (0..40)
        .map(|seed| run_seed(seed, TICKS, None))
        .filter(|report| report.deferrals > 0)
        .take(3)
        .collect();
    assert!(!reports.is_empty(), "some seed deferred calls");
    for report in &reports {
        assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
        assert!(report.faults.contains("deferred="), "{}", report.faults);
    }
}

/// Signal ids (the webhook's and `fillguard signal --id`'s) sent again: the seeds keep S9,
/// and a source that drops the id's inbox key must fail it.
#[test]
fn repeated_signal_ids_open_one_trade_and_a_source_ignoring_ids_fails_s9() {
    let reports: Vec<SeedReport> = (0..4).map(|seed| run_seed(seed, TICKS, None)).collect();
    assert!(
        reports.iter().map(|r| r.signal_repeats).sum::<u32>() > 0,
        "ids were repeated"
    );
    for report in &reports {
        assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
    }
    let failed = (0..40)
        .map(|seed| run_seed(seed, 150, Some(Canary::IgnoreSignalIds)).verdict)
        .find(|verdict| *verdict != Verdict::Pass)
        .unwrap_or(Verdict::Pass);
    assert!(
        matches!(&failed, Verdict::Correctness(text) if text.starts_with("S9")),
        "{failed:?}"
    );
}
/// Protection first: an agent that sends a burst's entries before the fills already being
/// polled (latency seeds) must fail P1.
#[test]
fn entries_sent_ahead_of_due_protection_work_fail_p1() {
    let verdict = first_failure(Canary::EntriesFirst);
    assert!(
        matches!(&verdict, Verdict::Correctness(text) if text.starts_with("P1")),
        "{verdict:?}"
    );
}

/// Watching from a snapshot: an agent that takes a leg missing from an open-orders listing
/// as cancelled protects again beside the live leg, which S1 (two live stops), S2 or S8 (the
/// two selling more than was bought) must catch.
#[test]
fn a_leg_missing_from_a_listing_taken_as_gone_fails_s1_s2_or_s8() {
    let verdict = first_failure(Canary::SnapshotAbsenceGone);
    let caught = ["S1", "S2", "S8"];
    assert!(
        matches!(&verdict, Verdict::Correctness(text) if caught.iter().any(|s| text.starts_with(s))),
        "{verdict:?}"
    );
}

/// The simulated exchange's candle answers include the candle still forming: an agent that
/// reads it as closed writes strategy signals on it, which C1 must catch.
#[test]
fn an_agent_that_reads_the_forming_candle_fails_c1() {
    let verdict = first_failure(Canary::FormingCandles);
    assert!(
        matches!(&verdict, Verdict::Correctness(text) if text.starts_with("C1")),
        "{verdict:?}"
    );
}

/// Seeds with latency and bursts, or with listings that omit orders or answer stale, keep
/// every invariant (P1 included).
#[test]
fn seeds_with_latency_bursts_and_faulty_listings_keep_every_invariant() {
    // One seed of each kind: latency and bursts, listings that omit orders, stale listings,
    // frozen listings.
    let kinds: [fn(&scale::ScalePlan) -> bool; 4] = [
        |plan| plan.latency_ms > 0,
        |plan| plan.listing_omits > 0.0,
        |plan| plan.listing_stale > 0.0,
        |plan| plan.listing_frozen > 0.0,
    ];
    for kind in kinds {
        let seed = (0..200)
            .find(|seed| kind(&scale::ScalePlan::draw(*seed)))
            .expect("some seed draws this fault");
        let report = run_seed(seed, TICKS, None);
        assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
    }
}

/// Seeds with risk limits keep them (R1, R2); an agent without its entry limits fails R1, one
/// without the daily loss limit fails R2.
#[test]
fn seeds_keep_their_risk_limits_and_agents_ignoring_them_fail_r1_and_r2() {
    let reports: Vec<SeedReport> = (0..40)
        .map(|seed| run_seed(seed, TICKS, None))
        .filter(|report| report.risk)
        .take(3)
        .collect();
    assert!(!reports.is_empty(), "some seed drew risk limits");
    for report in &reports {
        assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
        assert!(report.faults.contains("risk["), "{}", report.faults);
    }
    assert!(
        reports.iter().any(|report| report.risk_refusals > 0),
        "the limits refused some entry: {reports:#?}"
    );
    let verdict = first_failure(Canary::IgnoreRiskLimits);
    assert!(
        matches!(&verdict, Verdict::Correctness(text) if text.starts_with("R1")),
        "{verdict:?}"
    );
    // A loss must first reach the seed's limit, in few seeds at the command's default length
    // (93 and 96 are the first two from 50); the search starts at 50 to save time.
    let verdict = (50..100)
        .map(|seed| run_seed(seed, 150, Some(Canary::IgnoreLossLimit)).verdict)
        .find(|verdict| *verdict != Verdict::Pass)
        .unwrap_or(Verdict::Pass);
    assert!(
        matches!(&verdict, Verdict::Correctness(text) if text.starts_with("R2")),
        "{verdict:?}"
    );
}

/// A watchlist symbol the exchange does not list: the seeds that have one keep U1 and U2
/// (its signals dropped naming it, nothing asked about it once disabled, no order for it),
/// and an agent that keeps it in play after its check must fail U1 or U2.
#[test]
fn an_unlisted_watchlist_symbol_is_dropped_and_an_agent_keeping_it_fails_u1_or_u2() {
    let reports: Vec<SeedReport> = (0..40)
        .map(|seed| run_seed(seed, TICKS, None))
        .filter(|report| report.unlisted)
        .take(3)
        .collect();
    assert!(!reports.is_empty(), "some seed has an unlisted symbol");
    for report in &reports {
        assert_eq!(report.verdict, Verdict::Pass, "{report:#?}");
    }
    let verdict = first_failure(Canary::UnlistedKept);
    assert!(
        matches!(&verdict, Verdict::Correctness(text) if text.starts_with("U1") || text.starts_with("U2")),
        "{verdict:?}"
    );
}
