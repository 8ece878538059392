//! The machine around the agent in a simulation run: the virtual clock everything really runs
//! on, the system's wall clock as the agent reads it (skewed, and stepped as NTP would), and a
//! disk whose SQLite writes can be refused (busy, full) or cut short by a crash.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use rusqlite::ffi;

use super::faulty::CRASH;
use crate::core::clock::Clock;
use crate::core::domain::Millis;
use crate::store::{StoreFaults, WritePoint};
use crate::venue::paper::SplitMix64;

/// True time: the exchange, the price path and the invariant checks run on it.
pub struct VirtualClock(pub Cell<Millis>);

impl Clock for VirtualClock {
    fn now_ms(&self) -> Millis {
        self.0.get()
    }

    fn sleep(&self, duration: Duration) {
        let millis = Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX / 4);
        self.0.set(self.0.get() + millis.max(1));
    }
}

/// The system clock the agent reads: true time plus an offset that NTP steps now and then.
pub struct SkewedClock {
    truth: Rc<VirtualClock>,
    offset_ms: Cell<Millis>,
    skew_max_ms: Millis,
    random: RefCell<SplitMix64>,
}

impl SkewedClock {
    pub fn new(truth: Rc<VirtualClock>, skew_max_ms: Millis, seed: u64) -> SkewedClock {
        SkewedClock {
            truth,
            offset_ms: Cell::new(0),
            skew_max_ms,
            random: RefCell::new(SplitMix64::new(seed ^ 0xC10C_4A11)),
        }
    }

    /// A step of the system clock to a new offset within ±`skew_max_ms`.
    pub fn step(&self) {
        if self.skew_max_ms == 0 {
            return;
        }
        let span = u64::try_from(2 * self.skew_max_ms + 1).unwrap_or(1);
        let draw = (self.random.borrow_mut().next_u64() % span) as Millis;
        self.offset_ms.set(draw - self.skew_max_ms);
    }
}

impl Clock for SkewedClock {
    fn now_ms(&self) -> Millis {
        self.truth.now_ms() + self.offset_ms.get()
    }

    fn sleep(&self, duration: Duration) {
        self.truth.sleep(duration);
    }
}

/// Rates of the storage faults, each a probability per write transaction.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiskPlan {
    /// `SQLITE_BUSY`: another process held the write lock past the busy timeout.
    pub busy: f64,
    /// `SQLITE_FULL`, at `BEGIN` or at `COMMIT` (the write-ahead log could not grow).
    pub full: f64,
    /// A crash before `COMMIT` (the transaction is lost) or just after it (the caller never
    /// saw it succeed), each half of this rate.
    pub crash: f64,
}

/// What the disk did over a run, shared by every store the run opens.
pub struct Disk {
    plan: DiskPlan,
    random: SplitMix64,
    pub on: bool,
    pub errors: u32,
}

impl Disk {
    pub fn new(plan: DiskPlan, seed: u64) -> Rc<RefCell<Disk>> {
        Rc::new(RefCell::new(Disk {
            plan,
            random: SplitMix64::new(seed ^ 0xD15C_FA17),
            on: true,
            errors: 0,
        }))
    }

    fn chance(&mut self, probability: f64) -> bool {
        let draw = (self.random.next_u64() % 1_000_000) as f64 / 1_000_000.0;
        self.on && draw < probability
    }

    fn refuse(&mut self, code: i32, message: &str) -> rusqlite::Result<()> {
        self.errors += 1;
        Err(rusqlite::Error::SqliteFailure(
            ffi::Error::new(code),
            Some(message.to_string()),
        ))
    }
}

/// The `StoreFaults` of one opened store: a handle on the run's disk.
pub struct DiskFaults(pub Rc<RefCell<Disk>>);

impl StoreFaults for DiskFaults {
    fn at(&mut self, point: WritePoint) -> rusqlite::Result<()> {
        let mut disk = self.0.borrow_mut();
        let plan = disk.plan;
        match point {
            WritePoint::Begin if disk.chance(plan.busy) => {
                disk.refuse(ffi::SQLITE_BUSY, "database is locked")
            }
            WritePoint::Begin | WritePoint::Commit if disk.chance(plan.full / 2.0) => {
                disk.refuse(ffi::SQLITE_FULL, "database or disk is full")
            }
            WritePoint::Commit | WritePoint::Committed if disk.chance(plan.crash / 2.0) => {
                drop(disk);
                panic!("{CRASH}");
            }
            _ => Ok(()),
        }
    }
}
