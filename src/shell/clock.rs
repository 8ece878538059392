//! Clocks the shell runs on: the system clock, a steady clock for the agent's deadlines (wall
//! time at start, then advancing with the monotonic clock, so a step of the system clock while
//! running moves no deadline), and a scaled clock for paper trading whose time runs `speed`
//! times faster than the wall clock (sleeps are shortened to match).

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

/// The monotonic clock: milliseconds since the process started; never steps.
pub struct MonotonicClock(Instant);

impl MonotonicClock {
    pub fn new() -> MonotonicClock {
        MonotonicClock(Instant::now())
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        MonotonicClock::new()
    }
}

impl Clock for MonotonicClock {
    fn now_ms(&self) -> Millis {
        i64::try_from(self.0.elapsed().as_millis()).unwrap_or(i64::MAX / 2)
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// The agent's time: the wall clock's reading at start, advanced by a monotonic clock. NTP
/// stepping the system clock forward would otherwise cut short the windows that decide an
/// unacknowledged order was never placed; stepping it back would postpone every deadline.
/// A step that happened while fillguard was stopped is still seen at the next start: the
/// start-up reconciliation drives every open trade whatever its stored due time, and the core
/// counts the nonce window only from the start (`Limits::steady_since_ms`).
pub struct SteadyClock {
    origin_ms: Millis,
    ticker: std::rc::Rc<dyn Clock>,
    ticker_origin_ms: Millis,
}

impl SteadyClock {
    /// Starts at `wall`'s time now, then advances with `ticker` (a monotonic clock).
    pub fn new(wall: &dyn Clock, ticker: std::rc::Rc<dyn Clock>) -> SteadyClock {
        SteadyClock {
            origin_ms: wall.now_ms(),
            ticker_origin_ms: ticker.now_ms(),
            ticker,
        }
    }

    /// The production clock: the system clock, steadied by the process's monotonic clock.
    pub fn system() -> SteadyClock {
        SteadyClock::new(&SystemClock, std::rc::Rc::new(MonotonicClock::new()))
    }
}

impl Clock for SteadyClock {
    fn now_ms(&self) -> Millis {
        self.origin_ms + (self.ticker.now_ms() - self.ticker_origin_ms)
    }

    fn sleep(&self, duration: Duration) {
        self.ticker.sleep(duration);
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

    /// A wall clock that the test can step, as NTP would.
    struct SteppedWall(std::cell::Cell<Millis>);

    impl Clock for SteppedWall {
        fn now_ms(&self) -> Millis {
            self.0.get()
        }

        fn sleep(&self, duration: Duration) {
            self.0.set(self.0.get() + duration.as_millis() as Millis);
        }
    }

    #[test]
    fn steady_clock_ignores_steps_of_the_wall_clock() {
        let wall = SteppedWall(std::cell::Cell::new(1_000_000));
        let ticker = std::rc::Rc::new(SteppedWall(std::cell::Cell::new(5)));
        let steady = SteadyClock::new(&wall, ticker.clone());
        assert_eq!(steady.now_ms(), 1_000_000);
        steady.sleep(Duration::from_millis(250));
        wall.0.set(wall.0.get() + 3_600_000);
        assert_eq!(steady.now_ms(), 1_000_250, "a forward step is not seen");
        wall.0.set(0);
        steady.sleep(Duration::from_millis(750));
        assert_eq!(steady.now_ms(), 1_001_000, "nor a backward one");
    }

    #[test]
    fn monotonic_clock_advances_with_sleep() {
        let clock = MonotonicClock::new();
        let before = clock.now_ms();
        clock.sleep(Duration::from_millis(20));
        assert!(clock.now_ms() - before >= 20);
    }

    #[test]
    fn scaled_clock_runs_faster_than_the_wall() {
        let clock = ScaledClock::new(1_000, 100);
        let before = clock.now_ms();
        clock.sleep(Duration::from_millis(1_000));
        let advanced = clock.now_ms() - before;
        assert!(advanced >= 1_000, "advanced only {advanced} ms");
    }
}
