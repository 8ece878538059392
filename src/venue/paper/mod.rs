//! The embedded paper venue: the matching `Engine` behind `trait Venue`, driven by a `Clock`,
//! built from plain `PaperSettings`.
//! Every call first advances the engine to the clock's now, then delegates and maps rejections
//! to `VenueError`; it is counted under the Crypto.com v1 method it stands for
//! (`venue::observe`). It must not know a wire format. Its only IO: the engine reads the optional
//! candles CSV once at construction, and the paper account is saved to a state file after
//! every create or cancel, so it survives restarts like a real exchange account would. Fills in
//! between are not saved: they are replayed deterministically from the saved state. The step
//! prices behind `candles` are saved apart (`history_path`), at a bounded rate, so an order
//! never rewrites them; after a restart the steps since are walked again from the seed.

pub mod engine;
mod price;
mod settings;
mod validate;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;

use crate::core::clock::Clock;
use crate::core::domain::{
    Candle, Instrument, ListAck, Millis, OrderAck, OrderReport, OrderRequest,
};
use crate::venue::observe::timed;
use crate::venue::{Venue, VenueError};

pub use engine::{CANDLES_COUNT_MAX, Engine, EngineReject, FillBehavior, HistoryFile, TestHooks};
pub use price::{HISTORY_STEPS_MAX, SplitMix64};
pub use settings::{PaperInstrumentSettings, PaperSettings};

/// Most orders one `order_history` call returns (the most recent ones), as on Crypto.com.
pub const ORDER_HISTORY_LIMIT: usize = 100;

/// A new paper account starts with this much price history, so candle strategies have data.
pub const WARMUP_MS: Millis = 2 * 60 * 60 * 1000;

/// The price history is saved at most this often in real time...
const HISTORY_SAVE_INTERVAL: Duration = Duration::from_secs(10);
/// ...and at least once per this many steps of paper time, so a restart walks at most this
/// many steps again to complete it (more are left as a gap in the candles).
const HISTORY_REPLAY_STEPS_MAX: usize = 20_000;

pub struct PaperVenue {
    engine: Engine,
    clock: Rc<dyn Clock>,
    state_path: Option<PathBuf>,
    /// When the price history was last saved (real time) and the engine's time then.
    history_saved: Option<(Instant, Millis)>,
    /// Paper time after which the history is saved even within `HISTORY_SAVE_INTERVAL`.
    history_stale_ms: Millis,
}

/// Where the price history of the account at `state_path` is saved.
pub fn history_path(state_path: &Path) -> PathBuf {
    state_path.with_extension("prices.json")
}

impl PaperVenue {
    /// An in-memory paper account (nothing saved). Takes the settings or anything that
    /// converts into them (a caller's configuration, converted at its edge).
    pub fn new(
        settings: impl Into<PaperSettings>,
        clock: Rc<dyn Clock>,
    ) -> Result<PaperVenue, String> {
        let engine = Engine::new(&settings.into(), clock.now_ms())?;
        Ok(PaperVenue {
            engine,
            clock,
            state_path: None,
            history_saved: None,
            history_stale_ms: Millis::MAX,
        })
    }

    /// The paper account saved at `state_path` (with its price history from `history_path`),
    /// or a new one when the file does not exist yet, with the price history its candles need
    /// (`PaperSettings::lookback`, at most `WARMUP_MS`). Delete the files to reset the account.
    pub fn open(
        settings: impl Into<PaperSettings>,
        clock: Rc<dyn Clock>,
        state_path: PathBuf,
    ) -> Result<PaperVenue, String> {
        let settings: PaperSettings = settings.into();
        let lookback_ms = engine::lookback_ms(&settings)?;
        let engine = match load_engine(&state_path)? {
            Some(mut engine) => {
                engine.set_lookback(lookback_ms);
                if engine.needs_history() {
                    if let Some(file) = load_history(&history_path(&state_path))? {
                        engine.restore_history(file, HISTORY_REPLAY_STEPS_MAX);
                    }
                }
                engine
            }
            None => {
                let now_ms = clock.now_ms();
                let step_ms = Millis::try_from(settings.step.as_millis()).unwrap_or(WARMUP_MS);
                let warmup_ms = lookback_ms.map_or(WARMUP_MS, |lookback_ms| {
                    lookback_ms.saturating_add(step_ms).clamp(0, WARMUP_MS)
                });
                let mut engine = Engine::new(&settings, now_ms - warmup_ms)?;
                engine.advance_to(now_ms);
                engine
            }
        };
        let step_ms = Millis::try_from(settings.step.as_millis()).unwrap_or(Millis::MAX);
        let replay_steps = Millis::try_from(HISTORY_REPLAY_STEPS_MAX).unwrap_or(Millis::MAX);
        let mut venue = PaperVenue {
            engine,
            clock,
            state_path: Some(state_path),
            history_saved: None,
            history_stale_ms: step_ms.saturating_mul(replay_steps),
        };
        venue.save_history()?;
        venue.save()?;
        Ok(venue)
    }

    /// The paper time a saved account had reached, so a restarted clock continues from it.
    pub fn saved_time(state_path: &Path) -> Result<Option<Millis>, String> {
        Ok(load_engine(state_path)?.map(|engine| engine.now_ms()))
    }

    /// Saves the account (orders, balances, the walk's state; not the price history).
    fn save(&mut self) -> Result<(), String> {
        let Some(path) = &self.state_path else {
            return Ok(());
        };
        write_whole(path, &self.engine)
            .map_err(|e| format!("saving the paper account to {}: {e}", path.display()))
    }

    /// Saves the price history beside the account.
    fn save_history(&mut self) -> Result<(), String> {
        let Some(state_path) = &self.state_path else {
            return Ok(());
        };
        let path = history_path(state_path);
        write_whole(&path, &self.engine.history_file())
            .map_err(|e| format!("saving the paper prices to {}: {e}", path.display()))?;
        self.history_saved = Some((Instant::now(), self.engine.now_ms()));
        Ok(())
    }

    /// Saves the price history when the last save is `HISTORY_SAVE_INTERVAL` old, or
    /// `HISTORY_REPLAY_STEPS_MAX` steps of paper time. A failure is logged and tried again at
    /// the next call: the history feeds only candles, and the account is saved apart.
    fn save_history_when_due(&mut self) {
        let Some((saved_at, saved_ms)) = self.history_saved else {
            return;
        };
        let paper_ms = self.engine.now_ms().saturating_sub(saved_ms);
        if saved_at.elapsed() < HISTORY_SAVE_INTERVAL && paper_ms < self.history_stale_ms {
            return;
        }
        if let Err(error) = self.save_history() {
            tracing::warn!(%error, "the paper price history was not saved");
        }
    }

    /// Runs a create or cancel, then saves the account. A failed save is reported like a lost
    /// connection: the order may exist.
    fn mutate<T>(
        &mut self,
        work: impl FnOnce(&mut PaperVenue, Millis) -> Result<T, VenueError>,
    ) -> Result<T, VenueError> {
        let now_ms = self.advance();
        let result = work(self, now_ms);
        self.save().map_err(VenueError::Transport)?;
        result
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine's test hooks (prices, behaviours, cancelling as the account owner), for tests
    /// and the simulation. The agent reaches the venue only through `trait Venue`.
    pub fn engine_mut(&mut self) -> TestHooks<'_> {
        TestHooks::new(&mut self.engine)
    }

    /// Brings the engine up to the clock and returns the time used.
    fn advance(&mut self) -> Millis {
        let now_ms = self.clock.now_ms();
        self.engine.advance_to(now_ms);
        self.save_history_when_due();
        now_ms
    }

    /// The first client_oid of `requests` that the engine already knows or that repeats.
    fn duplicate_client_oid(&self, requests: &[&OrderRequest]) -> String {
        for (position, request) in requests.iter().enumerate() {
            let known = self
                .engine
                .order_by_client_oid(&request.client_oid)
                .is_some();
            let repeated = requests[..position]
                .iter()
                .any(|earlier| earlier.client_oid == request.client_oid);
            if known || repeated {
                return request.client_oid.clone();
            }
        }
        requests
            .first()
            .map(|request| request.client_oid.clone())
            .unwrap_or_default()
    }

    fn map_create_error(&self, reject: EngineReject, requests: &[&OrderRequest]) -> VenueError {
        if reject.code == engine::CODE_DUPLICATE_CLIENT_OID {
            return VenueError::DuplicateClientOid(self.duplicate_client_oid(requests));
        }
        map_reject(reject)
    }
}

fn load_engine(path: &Path) -> Result<Option<Engine>, String> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("reading {}: {error}", path.display())),
    };
    serde_json::from_slice(&text).map(Some).map_err(|error| {
        format!(
            "the paper account in {} is unreadable ({error}); move it away to start a new one",
            path.display()
        )
    })
}

/// Writes `value` as JSON to `path` whole or not at all: a temporary file, fsync, then rename.
/// Streamed through a buffer, so no copy of the whole text is ever held in memory.
fn write_whole(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    let mut writer = std::io::BufWriter::new(std::fs::File::create(&temporary)?);
    serde_json::to_writer(&mut writer, value)?;
    let file = writer.into_inner().map_err(|error| error.into_error())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// The saved price history, or `None` when there is none.
fn load_history(path: &Path) -> Result<Option<HistoryFile>, String> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("reading {}: {error}", path.display())),
    };
    serde_json::from_slice(&text).map(Some).map_err(|error| {
        format!(
            "the paper price history in {} is unreadable ({error}); delete it to start the candles afresh (the account is kept)",
            path.display()
        )
    })
}

/// The engine's exchange codes as the venue's neutral errors, as the Crypto.com client maps
/// the same codes.
fn map_reject(reject: EngineReject) -> VenueError {
    match reject.code {
        engine::CODE_DUPLICATE_CLIENT_OID => VenueError::DuplicateClientOid(reject.message),
        engine::CODE_BELOW_MINIMUM => VenueError::BelowMinimum {
            code: reject.code,
            message: reject.message,
        },
        code => VenueError::Rejected {
            code,
            message: reject.message,
        },
    }
}

impl Venue for PaperVenue {
    fn name(&self) -> &'static str {
        "paper"
    }

    fn instrument(&mut self, symbol: &str) -> Result<Instrument, VenueError> {
        timed("public/get-instruments", || {
            self.advance();
            self.engine.instrument(symbol).map_err(map_reject)
        })
    }

    fn listed_symbols(&mut self) -> Result<BTreeSet<String>, VenueError> {
        timed("public/get-instruments", || {
            self.advance();
            Ok(self.engine.symbols())
        })
    }

    fn last_price(&mut self, symbol: &str) -> Result<Decimal, VenueError> {
        timed("public/get-tickers", || {
            self.advance();
            self.engine.last_price(symbol).map_err(map_reject)
        })
    }

    fn candles(
        &mut self,
        symbol: &str,
        timeframe_seconds: u32,
        count: usize,
    ) -> Result<Vec<Candle>, VenueError> {
        timed("public/get-candlestick", || {
            self.advance();
            self.engine
                .candles(symbol, timeframe_seconds, count)
                .map_err(map_reject)
        })
    }

    fn free_balance(&mut self, asset: &str) -> Result<Decimal, VenueError> {
        timed("private/user-balance", || {
            self.advance();
            Ok(self.engine.free_balance(asset))
        })
    }

    fn create_order(&mut self, order: &OrderRequest) -> Result<OrderAck, VenueError> {
        timed("private/create-order", || {
            self.mutate(|venue, now_ms| {
                venue
                    .engine
                    .create_order(now_ms, order)
                    .map_err(|reject| venue.map_create_error(reject, &[order]))
            })
        })
    }

    fn create_oco(
        &mut self,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, VenueError> {
        timed("private/advanced/create-oco", || {
            self.mutate(|venue, now_ms| {
                venue
                    .engine
                    .create_oco(now_ms, stop_loss, take_profit)
                    .map_err(|reject| venue.map_create_error(reject, &[stop_loss, take_profit]))
            })
        })
    }

    fn create_otoco(
        &mut self,
        entry: &OrderRequest,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, VenueError> {
        let requests = [entry, stop_loss, take_profit];
        timed("private/advanced/create-otoco", || {
            self.mutate(|venue, now_ms| {
                venue
                    .engine
                    .create_otoco(now_ms, entry, stop_loss, take_profit)
                    .map_err(|reject| venue.map_create_error(reject, &requests))
            })
        })
    }

    /// The symbol must be the order's: a mismatch is answered like an unknown order id (212).
    fn cancel_order(&mut self, symbol: &str, order_id: &str) -> Result<(), VenueError> {
        timed("private/cancel-order", || {
            self.mutate(|venue, now_ms| {
                let matches_symbol = venue
                    .engine
                    .order_by_id(order_id)
                    .is_none_or(|report| report.symbol == symbol);
                if !matches_symbol {
                    return Err(VenueError::Rejected {
                        code: engine::CODE_INVALID_ORDER_ID,
                        message: format!("order {order_id} is not on {symbol}"),
                    });
                }
                venue
                    .engine
                    .cancel_order(now_ms, order_id)
                    .map_err(map_reject)
            })
        })
    }

    fn cancel_list(&mut self, _symbol: &str, list_id: &str) -> Result<(), VenueError> {
        timed("private/advanced/cancel-oco", || {
            self.mutate(|venue, now_ms| {
                venue
                    .engine
                    .cancel_list(now_ms, list_id)
                    .map_err(map_reject)
            })
        })
    }

    fn order_by_client_oid(&mut self, client_oid: &str) -> Result<Option<OrderReport>, VenueError> {
        timed("private/get-order-detail", || {
            self.advance();
            Ok(self.engine.order_by_client_oid(client_oid))
        })
    }

    fn open_orders(&mut self) -> Result<Vec<OrderReport>, VenueError> {
        timed("private/get-open-orders", || {
            self.advance();
            Ok(self.engine.open_orders())
        })
    }

    /// The most recent `ORDER_HISTORY_LIMIT` terminal orders of `symbol`, oldest first.
    /// `since_ms` is not needed: the history is in memory and read whole, older orders included.
    fn order_history(
        &mut self,
        symbol: &str,
        _since_ms: Millis,
    ) -> Result<Vec<OrderReport>, VenueError> {
        timed("private/get-order-history", || {
            self.advance();
            let mut history = self.engine.order_history(symbol).map_err(map_reject)?;
            let skip = history.len().saturating_sub(ORDER_HISTORY_LIMIT);
            Ok(history.split_off(skip))
        })
    }
}

#[cfg(test)]
mod persist_tests;
#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::core::domain::{OrderType, Side, VenueStatus};

    pub(super) struct TestClock {
        pub(super) now_ms: Cell<Millis>,
    }

    impl TestClock {
        pub(super) fn advance(&self, duration_ms: Millis) {
            self.now_ms.set(self.now_ms.get() + duration_ms);
        }
    }

    impl Clock for TestClock {
        fn now_ms(&self) -> Millis {
            self.now_ms.get()
        }

        fn sleep(&self, duration: Duration) {
            let duration_ms = Millis::try_from(duration.as_millis()).expect("short sleep");
            self.advance(duration_ms);
        }
    }

    pub(super) fn decimal(text: &str) -> Decimal {
        Decimal::from_str_exact(text).expect("test decimal")
    }

    pub(super) fn config() -> PaperSettings {
        let balances: BTreeMap<String, Decimal> =
            [("USD".to_string(), decimal("1000"))].into_iter().collect();
        PaperSettings {
            seed: 3,
            balances,
            instruments: vec![PaperInstrumentSettings {
                symbol: "ETH_USD".to_string(),
                base: "ETH".to_string(),
                quote: "USD".to_string(),
                price_tick: decimal("0.01"),
                quantity_tick: decimal("0.001"),
                min_quantity: decimal("0.001"),
                min_notional: decimal("1"),
                start_price: decimal("50"),
            }],
            fill_delay: Duration::from_millis(200),
            taker_fee_rate: decimal("0.001"),
            step: Duration::from_secs(1),
            volatility: Decimal::ZERO,
            candles_csv: None,
            lookback: None,
        }
    }

    fn venue() -> (PaperVenue, Rc<TestClock>) {
        let clock = Rc::new(TestClock {
            now_ms: Cell::new(1_700_000_000_000),
        });
        let venue = PaperVenue::new(config(), clock.clone()).expect("venue");
        (venue, clock)
    }

    pub(super) fn request(client_oid: &str, side: Side, order_type: OrderType) -> OrderRequest {
        OrderRequest {
            client_oid: client_oid.to_string(),
            symbol: "ETH_USD".to_string(),
            side,
            order_type,
            quantity: Some(decimal("1")),
            notional: None,
            price: None,
            trigger_price: None,
        }
    }

    #[test]
    fn market_order_fills_as_the_clock_moves() {
        let (mut venue, clock) = venue();
        assert_eq!(venue.name(), "paper");
        venue
            .create_order(&request("buy", Side::Buy, OrderType::Market))
            .expect("accepted");
        let created = venue
            .order_by_client_oid("buy")
            .expect("lookup")
            .expect("known");
        assert_eq!(created.status, VenueStatus::New);
        clock.sleep(Duration::from_millis(200));
        let filled = venue
            .order_by_client_oid("buy")
            .expect("lookup")
            .expect("known");
        assert_eq!(filled.status, VenueStatus::Filled);
        assert_eq!(
            venue.free_balance("ETH").expect("balance"),
            decimal("0.999")
        );
        assert_eq!(venue.order_history("ETH_USD", 0).expect("history").len(), 1);
        assert!(venue.open_orders().expect("open").is_empty());
    }

    #[test]
    fn unknown_client_oid_is_none() {
        let (mut venue, _clock) = venue();
        assert_eq!(venue.order_by_client_oid("nobody").expect("lookup"), None);
    }

    #[test]
    fn duplicate_client_oid_maps_to_its_own_variant() {
        let (mut venue, _clock) = venue();
        let order = request("same", Side::Buy, OrderType::Market);
        venue.create_order(&order).expect("accepted");
        let error = venue.create_order(&order).expect_err("duplicate");
        assert_eq!(error, VenueError::DuplicateClientOid("same".to_string()));
        let mut stop = request("stop", Side::Sell, OrderType::StopLoss);
        stop.trigger_price = Some(decimal("40"));
        let mut profit = request("same", Side::Sell, OrderType::TakeProfit);
        profit.trigger_price = Some(decimal("60"));
        let error = venue.create_oco(&stop, &profit).expect_err("duplicate leg");
        assert_eq!(error, VenueError::DuplicateClientOid("same".to_string()));
    }

    #[test]
    fn rejections_carry_the_exchange_code() {
        let (mut venue, _clock) = venue();
        let order = request("sell", Side::Sell, OrderType::Market);
        let error = venue.create_order(&order).expect_err("no ETH");
        assert_eq!(error.code(), Some(306));
        assert!(!error.is_ambiguous());
        let unknown = venue.instrument("DOGE_USD").expect_err("unknown");
        assert_eq!(unknown.code(), Some(209));
        let cancel = venue.cancel_order("ETH_USD", "42").expect_err("unknown");
        assert_eq!(cancel.code(), Some(212));
    }

    #[test]
    fn cancel_checks_the_symbol() {
        let (mut venue, _clock) = venue();
        let mut limit = request("limit", Side::Buy, OrderType::Limit);
        limit.price = Some(decimal("40"));
        let ack = venue.create_order(&limit).expect("accepted");
        let wrong = venue
            .cancel_order("BTC_USD", &ack.order_id)
            .expect_err("wrong symbol");
        assert_eq!(wrong.code(), Some(212));
        venue
            .cancel_order("ETH_USD", &ack.order_id)
            .expect("cancel");
        let canceled = venue
            .order_by_client_oid("limit")
            .expect("lookup")
            .expect("known");
        assert_eq!(canceled.status, VenueStatus::Canceled);
        assert_eq!(venue.free_balance("USD").expect("balance"), decimal("1000"));
    }

    #[test]
    fn otoco_protects_the_entry_through_the_venue() {
        let (mut venue, clock) = venue();
        let entry = request("entry", Side::Buy, OrderType::Market);
        let mut stop = request("stop", Side::Sell, OrderType::StopLoss);
        stop.quantity = Some(decimal("0.999"));
        stop.trigger_price = Some(decimal("45"));
        let mut profit = request("profit", Side::Sell, OrderType::TakeProfit);
        profit.quantity = Some(decimal("0.999"));
        profit.trigger_price = Some(decimal("55"));
        let ack = venue
            .create_otoco(&entry, &stop, &profit)
            .expect("accepted");
        assert_eq!(venue.open_orders().expect("open").len(), 3);
        clock.sleep(Duration::from_secs(1));
        let now_ms = clock.now_ms();
        venue
            .engine_mut()
            .set_price("ETH_USD", decimal("44"), now_ms)
            .expect("price");
        let stop = venue
            .order_by_client_oid("stop")
            .expect("lookup")
            .expect("known");
        assert_eq!(stop.status, VenueStatus::Filled);
        assert_eq!(stop.list_id, Some(ack.list_id.clone()));
        let profit = venue
            .order_by_client_oid("profit")
            .expect("lookup")
            .expect("known");
        assert_eq!(profit.status, VenueStatus::Canceled);
        let error = venue
            .cancel_list("ETH_USD", &ack.list_id)
            .expect_err("nothing open");
        assert_eq!(error.code(), Some(316));
        venue.engine().check_invariants();
    }
}
