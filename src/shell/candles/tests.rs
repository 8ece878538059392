//! The cache against the real paper venue on a virtual clock: which requests it makes, with
//! which counts, and that its window always equals what a full read would answer.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use rust_decimal::Decimal;

use super::*;
use crate::core::clock::Clock;
use crate::venue::Venue;
use crate::venue::paper::PaperVenue;

/// A whole minute, so candle boundaries fall on the test's round times.
const START_MS: Millis = 1_759_999_980_000;
const MINUTE_MS: Millis = 60_000;
const SYMBOL: &str = "BTC_USDT";
const CAPACITY: usize = 10;

struct VirtualClock(Cell<Millis>);

impl Clock for VirtualClock {
    fn now_ms(&self) -> Millis {
        self.0.get()
    }
    fn sleep(&self, duration: Duration) {
        let duration_ms = Millis::try_from(duration.as_millis()).expect("a short sleep");
        self.0.set(self.0.get() + duration_ms);
    }
}

struct Setup {
    clock: Rc<VirtualClock>,
    venue: Rc<RefCell<PaperVenue>>,
    cache: CandleCache,
    /// The count of every request the cache made, in order.
    requests: Vec<usize>,
}

/// The default paper account (a random walk of one-second steps), half an hour in.
fn setup() -> Setup {
    let config = crate::config::load_from(None, &BTreeMap::new()).expect("defaults");
    let clock = Rc::new(VirtualClock(Cell::new(START_MS)));
    let dyn_clock: Rc<dyn Clock> = clock.clone();
    let venue = PaperVenue::new(&config.paper, dyn_clock).expect("paper venue");
    clock.0.set(START_MS + 30 * MINUTE_MS);
    Setup {
        clock,
        venue: Rc::new(RefCell::new(venue)),
        cache: CandleCache::default(),
        requests: Vec::new(),
    }
}

impl Setup {
    fn advance(&self, duration_ms: Millis) {
        self.clock.0.set(self.clock.0.get() + duration_ms);
    }

    /// One check through the cache; `answer` may change what the venue answered.
    fn check_with(
        &mut self,
        answer: &dyn Fn(Vec<Candle>) -> Result<Vec<Candle>, VenueError>,
    ) -> Result<Vec<Candle>, VenueError> {
        let now_ms = self.clock.now_ms();
        let venue = &self.venue;
        let requests = &mut self.requests;
        let mut fetch = |count: usize| {
            requests.push(count);
            answer(venue.borrow_mut().candles(SYMBOL, 60, count)?)
        };
        self.cache
            .refresh(SYMBOL, MINUTE_MS, CAPACITY, now_ms, &mut fetch)
            .map(<[Candle]>::to_vec)
    }

    fn check(&mut self) -> Vec<Candle> {
        self.check_with(&|candles| Ok(candles)).expect("candles")
    }

    /// What one full read answers now, outside the cache.
    fn full_read(&self) -> Vec<Candle> {
        self.venue
            .borrow_mut()
            .candles(SYMBOL, 60, CAPACITY)
            .expect("candles")
    }
}

#[test]
fn the_cache_asks_only_for_the_candles_that_can_have_closed() {
    let mut setup = setup();
    // Empty: the whole window.
    let window = setup.check();
    assert_eq!(window.len(), CAPACITY);
    assert_eq!(window, setup.full_read());
    assert_eq!(
        window.last().unwrap().open_time_ms,
        START_MS + 29 * MINUTE_MS
    );
    // The next candle opened at 30 min and closes at 31: until then no request at all.
    setup.check();
    setup.advance(MINUTE_MS - 1);
    assert_eq!(setup.check(), window);
    assert_eq!(setup.requests, [CAPACITY]);
    // One candle closed: it and the overlap.
    setup.advance(1);
    let window = setup.check();
    assert_eq!(window, setup.full_read());
    assert_eq!(
        window.last().unwrap().open_time_ms,
        START_MS + 30 * MINUTE_MS
    );
    // Three and a half minutes later three more have closed: four asked for.
    setup.advance(3 * MINUTE_MS + 30_000);
    assert_eq!(setup.check(), setup.full_read());
    assert_eq!(setup.requests, [CAPACITY, 2, 4]);
    // Nine minutes later nine have closed: still incremental, ten asked for.
    setup.advance(9 * MINUTE_MS);
    assert_eq!(setup.check(), setup.full_read());
    // A gap as long as the window: nothing would overlap, the whole window again.
    setup.advance(10 * MINUTE_MS);
    let window = setup.check();
    assert_eq!(window, setup.full_read());
    assert_eq!(window.len(), CAPACITY, "bounded and never duplicated");
    assert_eq!(setup.requests, [CAPACITY, 2, 4, 10, CAPACITY]);
    let asked: usize = setup.requests.iter().sum();
    assert_eq!(asked, 36, "against 5 full reads of {CAPACITY}");
}

#[test]
fn a_revised_or_missing_overlap_is_read_again_in_full() {
    let mut setup = setup();
    setup.check();
    // The venue revised the candle the cache holds as its newest.
    setup.advance(2 * MINUTE_MS);
    let revised = |mut candles: Vec<Candle>| {
        if candles.len() == 3 {
            candles[0].close += Decimal::ONE;
        }
        Ok(candles)
    };
    let window = setup.check_with(&revised).expect("candles");
    assert_eq!(setup.requests, [CAPACITY, 3, CAPACITY]);
    assert_eq!(window, setup.full_read());
    // The answer does not reach back to the newest cached candle: something may be missing.
    setup.advance(2 * MINUTE_MS);
    let without_overlap = |candles: Vec<Candle>| {
        let short = candles.len() == 3;
        Ok(candles.into_iter().skip(usize::from(short)).collect())
    };
    let window = setup.check_with(&without_overlap).expect("candles");
    assert_eq!(setup.requests, [CAPACITY, 3, CAPACITY, 3, CAPACITY]);
    assert_eq!(window, setup.full_read());
}

#[test]
fn a_venue_error_keeps_the_window_and_the_next_check_asks_again() {
    let mut setup = setup();
    let window = setup.check();
    setup.advance(2 * MINUTE_MS);
    let timeout = |_: Vec<Candle>| Err(VenueError::Timeout("no answer".into()));
    assert!(matches!(
        setup.check_with(&timeout),
        Err(VenueError::Timeout(_))
    ));
    assert_eq!(setup.cache.series[SYMBOL].candles, window);
    assert_eq!(setup.check(), setup.full_read());
    assert_eq!(setup.requests, [CAPACITY, 3, 3]);
}

#[test]
fn a_forming_candle_in_an_answer_is_never_cached() {
    let mut setup = setup();
    let now_ms = setup.clock.now_ms();
    let with_forming = |mut candles: Vec<Candle>| {
        let mut forming = candles.last().cloned().expect("a candle");
        forming.open_time_ms = now_ms;
        candles.push(forming);
        Ok(candles)
    };
    let window = setup.check_with(&with_forming).expect("candles");
    assert_eq!(window.last().unwrap().open_time_ms, now_ms - MINUTE_MS);
    assert_eq!(window, setup.full_read());
}

#[test]
fn a_new_timeframe_or_window_starts_over_within_the_bound() {
    let mut setup = setup();
    setup.check();
    let now_ms = setup.clock.now_ms();
    let venue = setup.venue.clone();
    let mut requests = Vec::new();
    let mut fetch = |count: usize| {
        requests.push(count);
        venue.borrow_mut().candles(SYMBOL, 120, count)
    };
    let window = setup
        .cache
        .refresh(SYMBOL, 2 * MINUTE_MS, 1_000, now_ms, &mut fetch)
        .expect("candles")
        .to_vec();
    assert_eq!(requests, [CANDLES_MAX]);
    assert!(window.len() <= CANDLES_MAX);
    assert_eq!(window.len(), 15, "half an hour of two-minute candles");
}
