//! The virtual clock of the tests that drive the agent in process: it stands still until the
//! agent sleeps, and a sleep moves it on at once.

use std::cell::Cell;
use std::time::Duration;

use fillguard::core::clock::Clock;
use fillguard::core::domain::Millis;

pub struct VirtualClock(pub Cell<Millis>);

impl Clock for VirtualClock {
    fn now_ms(&self) -> Millis {
        self.0.get()
    }
    fn sleep(&self, duration: Duration) {
        self.0.set(self.0.get() + duration.as_millis() as Millis);
    }
}
