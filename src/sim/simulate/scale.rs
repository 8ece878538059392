//! The simulation's faults of load and scale, and the check that goes with them. A share of
//! seeds gives every exchange call a virtual round trip (so polls fall due while other work is
//! under way) and sends bursts of signals at once; a share makes the open-orders listing leave
//! out live orders or answer with an earlier listing (stale). Drawn from a stream of their own,
//! so the other fault classes of a seed keep their values.
//!
//! P1 (protection first): no new entry is sent while the due work of another trade whose
//! position may be unprotected waits (a fill poll, a protective placement or read-back, an
//! entry being cancelled, a failsafe exit, a closing), judged on the agent's own clock and
//! database at the moment the entry is handed to the exchange.

use std::time::Duration;

use crate::core::domain::Millis;
use crate::core::trade::TradeState;
use crate::venue::paper::SplitMix64;

/// The load and scale faults of one seed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ScalePlan {
    /// Every call takes this long on the virtual clock (0: instant).
    pub latency_ms: u64,
    /// Probability per loop turn that a burst of signals arrives at once.
    pub burst: f64,
    /// Probability that one open order is left out of an open-orders listing.
    pub listing_omits: f64,
    /// Probability that an open-orders listing is the previous one instead of a fresh one.
    pub listing_stale: f64,
    /// Probability per open-orders listing that the list freezes: the same listing is answered
    /// for the next `FROZEN_LISTINGS_MIN..=FROZEN_LISTINGS_MAX` calls (minutes at the watch
    /// interval), fills and cancels of the orders in it unseen there.
    pub listing_frozen: f64,
}

/// Calls a frozen open-orders listing lasts: up to ten minutes of snapshots at the default
/// 5 s watch interval, longer than S2's bound, so a watch that trusted the list would fail it.
pub const FROZEN_LISTINGS_MIN: u64 = 20;
pub const FROZEN_LISTINGS_MAX: u64 = 120;
const _: () = assert!(FROZEN_LISTINGS_MIN <= FROZEN_LISTINGS_MAX);

/// Signals in one burst: enough that entries sent before the first poll would delay it by
/// more than a poll's first delay at the smallest latency.
pub const BURST_SIGNALS_MIN: u64 = 4;
pub const BURST_SIGNALS_MAX: u64 = 12;
const _: () = assert!(BURST_SIGNALS_MIN <= BURST_SIGNALS_MAX);

impl ScalePlan {
    /// One seed in three has latency (10 to 80 ms) and bursts; one in three has a listing
    /// that omits orders, one in three a stale one (each up to 30 %).
    pub fn draw(seed: u64) -> ScalePlan {
        let mut random = SplitMix64::new(seed ^ 0x5CA1_E0F1);
        let latency_ms = match random.next_u64() % 3 {
            0 => 10 + random.next_u64() % 71,
            _ => 0,
        };
        let burst = if latency_ms > 0 { 0.03 } else { 0.0 };
        let mut rate = |max: f64| {
            let on = random.next_u64() % 3 == 0;
            let level = (random.next_u64() % 1000) as f64 / 1000.0;
            if on { level * max } else { 0.0 }
        };
        ScalePlan {
            latency_ms,
            burst,
            listing_omits: rate(0.3),
            listing_stale: rate(0.3),
            listing_frozen: rate(0.05),
        }
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms)
    }

    pub fn describe(&self) -> String {
        format!(
            "latency_ms={} burst={:.2} listing_omits={:.3} listing_stale={:.3} listing_frozen={:.3}",
            self.latency_ms,
            self.burst,
            self.listing_omits,
            self.listing_stale,
            self.listing_frozen
        )
    }
}

/// States whose due work outranks a new entry (`TradeState::urgency` 0).
fn urgent_states() -> Vec<&'static str> {
    TradeState::ALL
        .into_iter()
        .filter(|state| state.urgency() == 0)
        .map(TradeState::as_str)
        .collect()
}

/// P1 for an entry of `trade_id` handed to the exchange at `agent_now_ms`: the trades whose
/// urgent work was due then, if the entry is a new one (its trade still `ENTRY_PENDING`).
pub fn entry_outranked(
    store_path: &std::path::Path,
    trade_id: i64,
    agent_now_ms: Millis,
) -> Option<String> {
    let conn = rusqlite::Connection::open(store_path).ok()?;
    let state: String = conn
        .query_row(
            "SELECT state FROM trades WHERE id = ?1",
            [trade_id],
            |row| row.get(0),
        )
        .ok()?;
    if state != TradeState::EntryPending.as_str() {
        return None;
    }
    let mut statement = conn
        .prepare("SELECT id, state, due_ms FROM trades WHERE id != ?1 AND due_ms <= ?2")
        .ok()?;
    let urgent = urgent_states();
    let waiting: Vec<String> = statement
        .query_map(rusqlite::params![trade_id, agent_now_ms], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })
        .ok()?
        .filter_map(Result::ok)
        .filter(|(_, state, _)| urgent.contains(&state.as_str()))
        .map(|(id, state, due)| {
            format!("trade {id} ({state}, due {} ms before)", agent_now_ms - due)
        })
        .collect();
    (!waiting.is_empty()).then(|| {
        format!(
            "P1: new entry of trade {trade_id} sent while due protection work waits: {}",
            waiting.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_draw_is_the_seeds_and_turns_every_class_on_somewhere() {
        assert_eq!(ScalePlan::draw(7), ScalePlan::draw(7));
        let plans: Vec<ScalePlan> = (0..60).map(ScalePlan::draw).collect();
        assert!(
            plans
                .iter()
                .any(|plan| plan.latency_ms > 0 && plan.burst > 0.0)
        );
        assert!(plans.iter().any(|plan| plan.listing_omits > 0.0));
        assert!(plans.iter().any(|plan| plan.listing_stale > 0.0));
        assert!(plans.iter().any(|plan| *plan == ScalePlan::default()));
        for plan in plans {
            assert!(plan.latency_ms <= 80);
        }
    }

    #[test]
    fn urgent_states_are_those_that_outrank_an_entry() {
        let urgent = urgent_states();
        assert!(urgent.contains(&"AWAITING_FILL") && urgent.contains(&"VERIFYING"));
        assert!(!urgent.contains(&"PROTECTED") && !urgent.contains(&"ENTRY_PENDING"));
    }
}
