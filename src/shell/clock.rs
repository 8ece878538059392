//! Clocks the shell runs on: the system clock, and a scaled clock for paper trading whose time
//! runs `speed` times faster than the wall clock (sleeps are shortened to match).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::core::clock::Clock;
use crate::core::domain::Millis;

pub fn wall_now_ms() -> Millis {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        wall_now_ms()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// Paper time: starts at `origin_ms` and advances `speed` times faster than the wall clock.
pub struct ScaledClock {
    origin_ms: Millis,
    started: Instant,
    speed: u32,
}

impl ScaledClock {
    pub fn new(origin_ms: Millis, speed: u32) -> ScaledClock {
        assert!(speed >= 1, "a clock speed is at least 1");
        ScaledClock {
            origin_ms,
            started: Instant::now(),
            speed,
        }
    }
}

impl Clock for ScaledClock {
    fn now_ms(&self) -> Millis {
        let elapsed = self.started.elapsed().as_millis() * u128::from(self.speed);
        self.origin_ms + i64::try_from(elapsed).unwrap_or(i64::MAX / 2)
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration / self.speed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaled_clock_runs_faster_than_the_wall() {
        let clock = ScaledClock::new(1_000, 100);
        let before = clock.now_ms();
        clock.sleep(Duration::from_millis(1_000));
        let advanced = clock.now_ms() - before;
        assert!(advanced >= 1_000, "advanced only {advanced} ms");
    }
}
