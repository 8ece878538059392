//! The alert channel of a simulation run, plugged into the agent as its `AlertSink`. Per seed
//! it may be down for a while (every attempt fails) and fail now and then besides, as a
//! Telegram that answers 5xx, 429 or a refusal would; in the calm phase it always works. It
//! records every delivery, so the run can check A1 (nothing marked sent that was not
//! delivered; every alert delivered by the end of the calm phase) and A2 (no alert delivered
//! twice unless a write was lost in between: the agent crashed or the disk refused, so the
//! outbox could not record the first delivery). The `DropAlerts` canary reports success for
//! alerts it never delivers.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use super::environment::{Disk, VirtualClock};
use crate::core::clock::Clock;
use crate::core::domain::Millis;
use crate::shell::alerts::{AlertSink, Delivery};
use crate::store::{self, AlertRow, Store};
use crate::venue::paper::SplitMix64;

/// Salt of the sink's own random stream, so drawing its plan leaves every other draw of the
/// seed as it was.
const SEED_SALT: u64 = 0xA1E2_75E7_0000_0001;

/// When and how often the channel fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SinkPlan {
    /// Down from this virtual time on, for `down_ms` (0: never down).
    pub down_from_ms: Millis,
    pub down_ms: Millis,
    /// Probability that an attempt outside the down window fails.
    pub failure_rate: f64,
}

impl SinkPlan {
    /// On for half the seeds: down for 10 s to 4 min starting in the first 200 s, and failing
    /// up to 30 % of attempts.
    pub fn draw(random: &mut SplitMix64, start_ms: Millis) -> SinkPlan {
        if random.next_u64() % 2 == 0 {
            return SinkPlan {
                down_from_ms: 0,
                down_ms: 0,
                failure_rate: 0.0,
            };
        }
        SinkPlan {
            down_from_ms: start_ms + (random.next_u64() % 200_000) as Millis,
            down_ms: 10_000 + (random.next_u64() % 230_000) as Millis,
            failure_rate: (random.next_u64() % 300) as f64 / 1000.0,
        }
    }

    pub fn describe(&self) -> String {
        format!(
            "alerts_down={}ms alerts_fail={:.3}",
            self.down_ms, self.failure_rate
        )
    }
}

struct State {
    plan: SinkPlan,
    random: SplitMix64,
    clock: Rc<VirtualClock>,
    disk: Rc<RefCell<Disk>>,
    /// Agents started so far: each restart follows a crash or an exit, which may lose a write.
    restarts: u64,
    faults_on: bool,
    drop_alerts: bool,
    successes: u64,
    /// Per alert key, the lost-write count at each delivery.
    deliveries: BTreeMap<String, Vec<u64>>,
    violations: Vec<String>,
}

impl State {
    fn lost_writes(&self) -> u64 {
        self.restarts + u64::from(self.disk.borrow().errors)
    }

    fn chance(&mut self, probability: f64) -> bool {
        (self.random.next_u64() % 1_000_000) as f64 / 1_000_000.0 < probability
    }

    /// A failing attempt: mostly passing failures, sometimes with a `retry_after`, rarely a
    /// refusal.
    fn failure(&mut self) -> Delivery {
        match self.random.next_u64() % 10 {
            0 => Delivery::Refused {
                error: "simulated refusal (http 403)".into(),
            },
            1 | 2 => Delivery::Retry {
                after: Some(Duration::from_secs(1 + self.random.next_u64() % 60)),
                error: "simulated rate limit (http 429)".into(),
            },
            _ => Delivery::Retry {
                after: None,
                error: "simulated server error (http 502)".into(),
            },
        }
    }
}

/// A handle on the run's channel; the agent holds a clone, the run keeps one across restarts.
#[derive(Clone)]
pub struct SimAlertSink(Rc<RefCell<State>>);

impl SimAlertSink {
    pub fn new(
        plan: SinkPlan,
        seed: u64,
        clock: Rc<VirtualClock>,
        disk: Rc<RefCell<Disk>>,
        drop_alerts: bool,
    ) -> SimAlertSink {
        SimAlertSink(Rc::new(RefCell::new(State {
            plan,
            random: SplitMix64::new(seed ^ SEED_SALT),
            clock,
            disk,
            restarts: 0,
            faults_on: true,
            drop_alerts,
            successes: 0,
            deliveries: BTreeMap::new(),
            violations: Vec::new(),
        })))
    }

    /// Draws the plan from the seed's own stream for the sink.
    pub fn plan(seed: u64, start_ms: Millis) -> SinkPlan {
        SinkPlan::draw(&mut SplitMix64::new(seed ^ SEED_SALT), start_ms)
    }

    pub fn note_restart(&self) {
        self.0.borrow_mut().restarts += 1;
    }

    pub fn describe(&self) -> String {
        self.0.borrow().plan.describe()
    }

    /// Whether the channel fails at all in this seed.
    pub fn faulty(&self) -> bool {
        let plan = self.0.borrow().plan;
        plan.down_ms > 0 || plan.failure_rate > 0.0
    }

    pub fn set_faults(&self, on: bool) {
        self.0.borrow_mut().faults_on = on;
    }

    /// A1 so far: every alert the store marks sent was delivered; and A2's findings.
    pub fn check(&self, store: &Store) -> Vec<String> {
        let mut problems = std::mem::take(&mut self.0.borrow_mut().violations);
        let state = self.0.borrow();
        for alert in store::all_alerts(store.conn()).unwrap_or_default() {
            if alert.sent_at_ms.is_some() && !state.deliveries.contains_key(&alert.key) {
                problems.push(format!(
                    "A1 alert {} marked sent but never delivered",
                    alert.key
                ));
            }
        }
        problems
    }

    /// A1 at the end: no alert is still waiting.
    pub fn check_drained(store: &Store) -> Vec<String> {
        store::all_alerts(store.conn())
            .unwrap_or_default()
            .into_iter()
            .filter(|alert| alert.sent_at_ms.is_none())
            .map(|alert| {
                format!(
                    "A1 alert {} still undelivered after the calm phase ({} attempts, last error {:?})",
                    alert.key, alert.attempts, alert.last_error
                )
            })
            .collect()
    }
}

impl AlertSink for SimAlertSink {
    fn name(&self) -> &'static str {
        "simulated"
    }

    fn attempts_per_turn(&self) -> usize {
        1
    }

    fn deliver(&mut self, alert: &AlertRow) -> Delivery {
        let mut state = self.0.borrow_mut();
        let now = state.clock.now_ms();
        let plan = state.plan;
        let down = (plan.down_from_ms..plan.down_from_ms + plan.down_ms).contains(&now);
        if state.faults_on && (down || state.chance(plan.failure_rate)) {
            return state.failure();
        }
        state.successes += 1;
        if state.drop_alerts && state.successes % 2 == 0 {
            // The canary's lie: success reported, nothing delivered.
            return Delivery::Sent;
        }
        let lost = state.lost_writes();
        let earlier = state.deliveries.entry(alert.key.clone()).or_default();
        let unexplained = earlier.last() == Some(&lost);
        earlier.push(lost);
        if unexplained {
            let problem = format!(
                "A2 alert {} delivered twice with no lost write in between",
                alert.key
            );
            state.violations.push(problem);
        }
        Delivery::Sent
    }
}
