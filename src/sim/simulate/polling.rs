//! The fill-poll policy of one seed: a share of seeds runs the replaced design's fixed
//! schedule, its open-orders-then-history source, each alone, and the adaptive schedule's
//! earlier shape, so the simulation's invariants hold under every `poll.schedule` and
//! `poll.source`. Drawn from its own stream (the seed with a salt), so the other draws of a
//! seed stay what they were.

use crate::venue::paper::SplitMix64;

const SEED_SALT: u64 = 0x706f_6c6c_5f70_6f6c;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Polling {
    pub schedule: &'static str,
    pub source: &'static str,
    pub first_delay_seconds: &'static str,
    pub growth: &'static str,
}

impl Polling {
    pub(super) fn draw(seed: u64) -> Polling {
        let adaptive = Polling {
            schedule: "adaptive",
            source: "detail",
            first_delay_seconds: "0",
            growth: "1.5",
        };
        match SplitMix64::new(seed ^ SEED_SALT).next_u64() % 6 {
            0 => Polling {
                schedule: "fixed",
                source: "open-then-history",
                ..adaptive
            },
            1 => Polling {
                schedule: "fixed",
                ..adaptive
            },
            2 => Polling {
                source: "open-then-history",
                ..adaptive
            },
            3 => Polling {
                first_delay_seconds: "0.2",
                growth: "2",
                ..adaptive
            },
            _ => adaptive,
        }
    }

    /// The environment variables that set it.
    pub(super) fn env(self) -> [(&'static str, String); 4] {
        [
            ("FILLGUARD_POLL__SCHEDULE", self.schedule.to_string()),
            ("FILLGUARD_POLL__SOURCE", self.source.to_string()),
            (
                "FILLGUARD_POLL__FIRST_DELAY_SECONDS",
                self.first_delay_seconds.to_string(),
            ),
            ("FILLGUARD_POLL__GROWTH", self.growth.to_string()),
        ]
    }
}
