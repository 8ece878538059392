//! The Crypto.com Exchange v1 venue. Only this module knows the exchange's wire format: `wire`
//! parses answers, `params` builds order parameters, `transport` sends them (signed with `sign`,
//! paced by `limits`). `CryptoComVenue` maps the `Venue` calls onto endpoints, plain and
//! advanced (trigger and contingency orders live in the advanced namespace, reference §5);
//! `history` walks the order history back in windows. It reads the wall clock it is given
//! (`CryptoComSettings::wall`) for nonces, to tell closed candles from the open one and to place
//! the history windows; it imports nothing from the shell.

mod history;
mod limits;
mod params;
pub mod sign;
mod transport;
mod wire;

#[cfg(test)]
mod budget_tests;
#[cfg(test)]
mod loopback_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{Map, Value};
use tracing::{debug, warn};

use crate::core::clock::Clock;
use crate::core::domain::{
    Candle, Instrument, ListAck, Millis, OrderAck, OrderReport, OrderRequest,
};
use crate::venue::{Budget, Venue, VenueError};
use history::{HISTORY_CLOCK_MARGIN_MS, HISTORY_PAGES_MAX, HistoryWalk};
use transport::{Retry, Transport};
use wire::{CODE_INVALID_ARGUMENT, CODE_INVALID_INSTRUMENT, CODE_INVALID_ORDER_ID, InstrumentRow};

/// How long instrument rules and minimum notionals are reused before they are fetched again.
const INSTRUMENT_CACHE_TTL: Duration = Duration::from_secs(10 * 60);

/// Most candles one `public/get-candlestick` call returns (reference §4.3).
const CANDLES_COUNT_MAX: usize = 300;

/// The longest one request can take once admitted: its whole timeout after the longest wait
/// for a client-side rate-limit slot. The budget admits a request only when this fits (with
/// the back-off before a retry), so a turn's requests end within its budget.
pub fn request_cost_max(timeout: Duration) -> Duration {
    timeout + limits::WAIT_MAX
}

/// The smallest turn budget that lets every call make progress: the longest call that is
/// repeated whole when it is deferred half-way is two requests (plain then advanced order
/// detail, open orders or cancel; the instrument rules and their minimum notionals). Longer
/// work — the order-history walk, the lookup chain — resumes where it stopped.
pub fn turn_budget_min(timeout: Duration) -> Duration {
    request_cost_max(timeout) * 2
}

/// The longest the agent's loop can go between two watchdog pings against this venue: one
/// unit of work spends at most the turn's `budget` on requests (each admitted only when it
/// fits whole), plus one request's worth for what does not draw from it (the database, one
/// alert-delivery attempt, the overrun of a request's own timeout). The unit file's
/// `WatchdogSec=` is derived from it.
pub fn longest_unit(budget: Duration, timeout: Duration) -> Duration {
    budget + request_cost_max(timeout)
}

/// Supported candle timeframes: seconds and the exchange's name (reference §4.3).
/// The candle timeframes `public/get-candlestick` serves, in seconds with their names.
pub const TIMEFRAMES: [(u32, &str); 9] = [
    (60, "1m"),
    (300, "5m"),
    (900, "15m"),
    (1800, "30m"),
    (3600, "1h"),
    (7200, "2h"),
    (14400, "4h"),
    (43200, "12h"),
    (86400, "1D"),
];

pub struct CryptoComSettings {
    /// e.g. `https://api.crypto.com/exchange/v1`; the method is appended after a '/'.
    pub base_url: String,
    pub api_key: String,
    /// Never logged, never in `Debug` output.
    pub api_secret: String,
    /// Total time of one request; the connect phase gets at most 5 s of it.
    pub timeout: Duration,
    /// Minimum order value in the quote asset when `public/get-risk-parameters` is unavailable
    /// or has no row for the base currency.
    pub min_notional_fallback: Decimal,
    /// Reported as `Instrument::taker_fee_rate`.
    pub taker_fee_rate: Decimal,
    /// The wall clock (Unix ms): request nonces, the open candle, the history windows.
    pub wall: Rc<dyn Clock>,
}

const MASK: &str = "<redacted>";

impl fmt::Debug for CryptoComSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoComSettings")
            .field("base_url", &self.base_url)
            .field("api_key", &MASK)
            .field("api_secret", &MASK)
            .field("timeout", &self.timeout)
            .field("min_notional_fallback", &self.min_notional_fallback)
            .field("taker_fee_rate", &self.taker_fee_rate)
            .finish_non_exhaustive()
    }
}

/// Instrument rules and minimum notionals, fetched together and reused for
/// `INSTRUMENT_CACHE_TTL`.
struct InstrumentCache {
    fetched_at: Instant,
    rows: BTreeMap<String, Result<InstrumentRow, VenueError>>,
    /// Symbols the exchange lists with `"tradable": false`: listed, but not to be traded.
    untradable: BTreeSet<String>,
    min_notionals: BTreeMap<String, Decimal>,
}

/// A history walk that a spent budget interrupted, kept so the next call for the same symbol
/// and earliest time resumes it instead of reading its pages again.
struct PendingWalk {
    symbol: String,
    since_ms: Millis,
    /// When the walk began (wall clock): its newest window ends `HISTORY_CLOCK_MARGIN_MS` after
    /// it, so an older walk is begun afresh.
    began_ms: Millis,
    walks: [(&'static str, HistoryWalk); 2],
}

pub struct CryptoComVenue {
    transport: Transport,
    min_notional_fallback: Decimal,
    taker_fee_rate: Decimal,
    wall: Rc<dyn Clock>,
    instruments: Option<InstrumentCache>,
    /// At most one interrupted history walk (the latest).
    pending_walk: Option<PendingWalk>,
}

impl fmt::Debug for CryptoComVenue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CryptoComVenue").finish_non_exhaustive()
    }
}

impl CryptoComVenue {
    pub fn new(settings: CryptoComSettings) -> Result<CryptoComVenue, String> {
        validate(&settings)?;
        Ok(CryptoComVenue {
            transport: Transport::new(
                &settings.base_url,
                &settings.api_key,
                &settings.api_secret,
                settings.timeout,
                Rc::clone(&settings.wall),
            ),
            min_notional_fallback: settings.min_notional_fallback,
            taker_fee_rate: settings.taker_fee_rate,
            wall: settings.wall,
            instruments: None,
            pending_walk: None,
        })
    }

    /// F13 start-up self-check: one read on the advanced API and one on the account balance,
    /// answers parsed. The error names the call that failed.
    pub fn self_check(&mut self) -> Result<(), VenueError> {
        let method = "private/advanced/get-open-orders";
        self.read(method, Map::new())
            .and_then(|result| self.order_reports(&result, method))
            .map_err(|error| named(method, error))?;
        let method = "private/user-balance";
        self.read(method, Map::new())
            .and_then(|result| wire::free_balance(&result, "USD"))
            .map_err(|error| named(method, error))?;
        Ok(())
    }

    fn read(&mut self, method: &str, params: Map<String, Value>) -> Result<Value, VenueError> {
        self.transport
            .private(method, params, None, Retry::OnRateLimit)
    }

    fn write(
        &mut self,
        method: &str,
        params: Map<String, Value>,
        client_oid: Option<&str>,
    ) -> Result<Value, VenueError> {
        self.transport
            .private(method, params, client_oid, Retry::Never)
    }

    fn instrument_cache(&mut self) -> Result<&InstrumentCache, VenueError> {
        let fresh = self
            .instruments
            .as_ref()
            .is_some_and(|cache| cache.fetched_at.elapsed() < INSTRUMENT_CACHE_TTL);
        if !fresh {
            let result = self.transport.public("public/get-instruments", &[])?;
            let listed = wire::rows(&result, "get-instruments")?;
            let rows = listed
                .iter()
                .filter_map(|row| {
                    let symbol = row.get("symbol").and_then(wire::text_of)?;
                    Some((symbol, wire::instrument_row(row)))
                })
                .collect();
            let untradable = listed
                .iter()
                .filter(|row| row.get("tradable") == Some(&Value::Bool(false)))
                .filter_map(|row| row.get("symbol").and_then(wire::text_of))
                .collect();
            let min_notionals = self.fetch_min_notionals()?;
            self.instruments = Some(InstrumentCache {
                fetched_at: Instant::now(),
                rows,
                untradable,
                min_notionals,
            });
        }
        self.instruments
            .as_ref()
            .ok_or_else(|| VenueError::Malformed("instrument cache empty".into()))
    }

    /// Minimum notionals per base currency; empty (so the fallback applies) when the call fails.
    /// A call the budget deferred is no answer: the instruments are fetched again next turn.
    fn fetch_min_notionals(&mut self) -> Result<BTreeMap<String, Decimal>, VenueError> {
        let fetched = self
            .transport
            .public("public/get-risk-parameters", &[])
            .and_then(|result| wire::min_notionals(&result));
        match fetched {
            Ok(rows) => Ok(rows.into_iter().collect()),
            Err(error) if error.is_deferred() => Err(error),
            Err(error) => {
                warn!(error = %error, "get-risk-parameters failed, using the configured minimum notional");
                Ok(BTreeMap::new())
            }
        }
    }

    /// The answers of a plain and an advanced list call, merged (`merge`).
    fn merged_reports(
        &mut self,
        plain_method: &str,
        advanced_method: &str,
        params: Map<String, Value>,
    ) -> Result<Vec<OrderReport>, VenueError> {
        let plain_result = self.read(plain_method, params.clone())?;
        let plain = self.order_reports(&plain_result, plain_method)?;
        let advanced_result = self.read(advanced_method, params)?;
        let advanced = self.order_reports(&advanced_result, advanced_method)?;
        Ok(merge(plain, advanced))
    }

    /// The orders of a list answer; rows of orders placed by hand that cannot be read are left
    /// out (`wire::order_reports`) and counted in a log line.
    fn order_reports(&self, result: &Value, method: &str) -> Result<Vec<OrderReport>, VenueError> {
        let (reports, skipped) = wire::order_reports(result, method)?;
        if skipped > 0 {
            debug!(
                method,
                skipped, "left out rows of orders fillguard did not place"
            );
        }
        Ok(reports)
    }

    /// Both history endpoints walked back in windows (`history`), their requests interleaved
    /// so that each endpoint's one-per-second limit overlaps the other's. A walk the budget
    /// interrupts is kept (`PendingWalk`) and resumed by the next call with the same symbol and
    /// `since_ms`, so a walk longer than a turn's budget still ends, a few pages per turn.
    fn walked_history(
        &mut self,
        symbol: &str,
        since_ms: Millis,
    ) -> Result<Vec<OrderReport>, VenueError> {
        let now_ms = self.wall.now_ms();
        let resumable = |pending: &PendingWalk| {
            pending.symbol == symbol
                && pending.since_ms == since_ms
                && (0..HISTORY_CLOCK_MARGIN_MS).contains(&(now_ms - pending.began_ms))
        };
        let mut pending = match self.pending_walk.take() {
            Some(pending) if resumable(&pending) => pending,
            _ => PendingWalk {
                symbol: symbol.to_string(),
                since_ms,
                began_ms: now_ms,
                walks: [
                    (
                        "private/get-order-history",
                        HistoryWalk::new(now_ms, since_ms),
                    ),
                    (
                        "private/advanced/get-order-history",
                        HistoryWalk::new(now_ms, since_ms),
                    ),
                ],
            },
        };
        match self.walk_pages(symbol, &mut pending.walks) {
            Ok(()) => {}
            Err(error) if error.is_deferred() => {
                self.pending_walk = Some(pending);
                return Err(error);
            }
            Err(error) => return Err(error),
        }
        let [(plain_method, plain), (advanced_method, advanced)] = pending.walks;
        Ok(merge(
            plain.finish(plain_method)?,
            advanced.finish(advanced_method)?,
        ))
    }

    /// Reads the walks' next pages until both are over; each walk is bounded by
    /// `HISTORY_PAGES_MAX` requests.
    fn walk_pages(
        &mut self,
        symbol: &str,
        walks: &mut [(&'static str, HistoryWalk); 2],
    ) -> Result<(), VenueError> {
        for _ in 0..HISTORY_PAGES_MAX {
            let mut sent = false;
            for (method, walk) in walks.iter_mut() {
                let Some(request) = walk.next_request() else {
                    continue;
                };
                sent = true;
                let result = self.read(method, params::history(symbol, request))?;
                walk.record(wire::history_page(&result, method)?, method)?;
            }
            if !sent {
                break;
            }
        }
        Ok(())
    }

    fn detail_by_client_oid(
        &mut self,
        method: &str,
        client_oid: &str,
    ) -> Result<Option<OrderReport>, VenueError> {
        match self.read(method, params::one("client_oid", client_oid)) {
            Ok(result) => wire::order_report(&wire::single(&result, method)?).map(Some),
            Err(VenueError::NotFound) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

fn validate(settings: &CryptoComSettings) -> Result<(), String> {
    let url = settings.base_url.as_str();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!(
            "cryptocom base_url {url:?} must start with https:// or http://"
        ));
    }
    if settings.api_key.is_empty() || settings.api_secret.is_empty() {
        return Err("cryptocom api_key and api_secret must not be empty".into());
    }
    if settings.timeout.is_zero() {
        return Err("cryptocom timeout must be above zero".into());
    }
    if settings.min_notional_fallback < Decimal::ZERO {
        return Err("cryptocom min_notional_fallback must not be negative".into());
    }
    if settings.taker_fee_rate < Decimal::ZERO || settings.taker_fee_rate >= Decimal::ONE {
        return Err("cryptocom taker_fee_rate must be in [0, 1)".into());
    }
    Ok(())
}

/// The error of a self-check call, prefixed with the method that failed.
fn named(method: &str, error: VenueError) -> VenueError {
    let prefix = |message: String| format!("self-check {method}: {message}");
    match error {
        VenueError::Timeout(message) => VenueError::Timeout(prefix(message)),
        VenueError::Transport(message) => VenueError::Transport(prefix(message)),
        VenueError::Server { status, message } => VenueError::Server {
            status,
            message: prefix(message),
        },
        VenueError::RateLimited(message) => VenueError::RateLimited(prefix(message)),
        VenueError::Rejected { code, message } => VenueError::Rejected {
            code,
            message: prefix(message),
        },
        VenueError::Auth { code, message } => VenueError::Auth {
            code,
            message: prefix(message),
        },
        VenueError::BelowMinimum { code, message } => VenueError::BelowMinimum {
            code,
            message: prefix(message),
        },
        VenueError::Malformed(message) => VenueError::Malformed(prefix(message)),
        VenueError::Deferred(message) => VenueError::Deferred(prefix(message)),
        VenueError::NotFound => VenueError::Rejected {
            code: wire::CODE_NOT_FOUND,
            message: prefix("not found".into()),
        },
        VenueError::DuplicateClientOid(client_oid) => VenueError::Rejected {
            code: wire::CODE_DUPLICATE_CLIENT_OID,
            message: prefix(format!("duplicate client_oid {client_oid}")),
        },
    }
}

fn timeframe_name(timeframe_seconds: u32) -> Result<&'static str, VenueError> {
    TIMEFRAMES
        .iter()
        .find(|(seconds, _)| *seconds == timeframe_seconds)
        .map(|(_, name)| *name)
        .ok_or_else(|| VenueError::Rejected {
            code: CODE_INVALID_ARGUMENT,
            message: format!("unsupported timeframe {timeframe_seconds} s"),
        })
}

/// Plain and advanced rows merged: an advanced row whose order id the plain answer already
/// holds is left out. Rows within one answer are kept as they are.
fn merge(mut plain: Vec<OrderReport>, advanced: Vec<OrderReport>) -> Vec<OrderReport> {
    let seen: BTreeSet<String> = plain.iter().map(|report| report.order_id.clone()).collect();
    plain.extend(
        advanced
            .into_iter()
            .filter(|report| !seen.contains(&report.order_id)),
    );
    plain
}

/// A cancel that the plain API does not know (not found, or invalid order id) is retried on
/// the advanced API, where trigger orders and list legs live.
fn unknown_to_plain_api(error: &VenueError) -> bool {
    matches!(error, VenueError::NotFound)
        || matches!(error, VenueError::Rejected { code, .. } if *code == CODE_INVALID_ORDER_ID)
}

impl Venue for CryptoComVenue {
    fn name(&self) -> &'static str {
        "cryptocom"
    }

    fn set_budget(&mut self, budget: Budget) {
        self.transport.set_budget(budget);
    }

    /// The symbols of the instrument cache (`public/get-instruments`, fetched when the cache
    /// is older than `INSTRUMENT_CACHE_TTL`): a row the client cannot read is still listed, one
    /// marked `"tradable": false` is not (no order could be placed on it).
    fn listed_symbols(&mut self) -> Result<BTreeSet<String>, VenueError> {
        let cache = self.instrument_cache()?;
        Ok(cache
            .rows
            .keys()
            .filter(|symbol| !cache.untradable.contains(*symbol))
            .cloned()
            .collect())
    }

    fn instrument(&mut self, symbol: &str) -> Result<Instrument, VenueError> {
        let fallback = self.min_notional_fallback;
        let taker_fee_rate = self.taker_fee_rate;
        let cache = self.instrument_cache()?;
        let row = match cache.rows.get(symbol) {
            Some(row) => row.clone()?,
            None => {
                return Err(VenueError::Rejected {
                    code: CODE_INVALID_INSTRUMENT,
                    message: format!("unknown instrument {symbol}"),
                });
            }
        };
        let min_notional = cache
            .min_notionals
            .get(&row.base)
            .copied()
            .unwrap_or(fallback);
        Ok(Instrument {
            symbol: row.symbol,
            base: row.base,
            quote: row.quote,
            price_tick: row.price_tick,
            quantity_tick: row.quantity_tick,
            min_quantity: row.quantity_tick,
            min_notional,
            taker_fee_rate,
        })
    }

    fn last_price(&mut self, symbol: &str) -> Result<Decimal, VenueError> {
        let query = [("instrument_name", symbol.to_string())];
        let result = self.transport.public("public/get-tickers", &query)?;
        wire::last_price(&result, symbol)
    }

    fn candles(
        &mut self,
        symbol: &str,
        timeframe_seconds: u32,
        count: usize,
    ) -> Result<Vec<Candle>, VenueError> {
        let timeframe = timeframe_name(timeframe_seconds)?;
        if count > CANDLES_COUNT_MAX {
            return Err(VenueError::Rejected {
                code: CODE_INVALID_ARGUMENT,
                message: format!("candle count {count} above {CANDLES_COUNT_MAX}"),
            });
        }
        if count == 0 {
            return Ok(Vec::new());
        }
        // One more than asked, as the newest candle may still be open and is dropped.
        let requested = (count + 1).min(CANDLES_COUNT_MAX);
        let query = [
            ("instrument_name", symbol.to_string()),
            ("timeframe", timeframe.to_string()),
            ("count", requested.to_string()),
        ];
        let result = self.transport.public("public/get-candlestick", &query)?;
        let timeframe_ms = i64::from(timeframe_seconds) * 1000;
        let mut candles = wire::closed_candles(&result, timeframe_ms, self.wall.now_ms())?;
        let skip = candles.len().saturating_sub(count);
        Ok(candles.split_off(skip))
    }

    fn free_balance(&mut self, asset: &str) -> Result<Decimal, VenueError> {
        let result = self.read("private/user-balance", Map::new())?;
        wire::free_balance(&result, asset)
    }

    fn create_order(&mut self, order: &OrderRequest) -> Result<OrderAck, VenueError> {
        let method = if params::is_trigger(order.order_type) {
            "private/advanced/create-order"
        } else {
            "private/create-order"
        };
        let order_params = params::order_params(order)?;
        let result = self.write(method, order_params, Some(&order.client_oid))?;
        let (order_id, client_oid) = wire::order_ack(&result, &order.client_oid)?;
        Ok(OrderAck {
            order_id,
            client_oid,
        })
    }

    fn create_oco(
        &mut self,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, VenueError> {
        let list_params = params::list_params(&[stop_loss, take_profit])?;
        let method = "private/advanced/create-oco";
        let result = self.write(method, list_params, Some(&stop_loss.client_oid))?;
        Ok(ListAck {
            list_id: wire::list_id(&result)?,
        })
    }

    fn create_otoco(
        &mut self,
        entry: &OrderRequest,
        stop_loss: &OrderRequest,
        take_profit: &OrderRequest,
    ) -> Result<ListAck, VenueError> {
        let list_params = params::list_params(&[entry, stop_loss, take_profit])?;
        let method = "private/advanced/create-otoco";
        let result = self.write(method, list_params, Some(&entry.client_oid))?;
        Ok(ListAck {
            list_id: wire::list_id(&result)?,
        })
    }

    fn cancel_order(&mut self, _symbol: &str, order_id: &str) -> Result<(), VenueError> {
        let order_params = params::one("order_id", order_id);
        match self.write("private/cancel-order", order_params.clone(), None) {
            Err(error) if unknown_to_plain_api(&error) => self
                .write("private/advanced/cancel-order", order_params, None)
                .map(drop),
            outcome => outcome.map(drop),
        }
    }

    fn cancel_list(&mut self, _symbol: &str, list_id: &str) -> Result<(), VenueError> {
        let list_params = params::one("list_id", list_id);
        match self.write("private/advanced/cancel-oco", list_params.clone(), None) {
            Err(error) if unknown_to_plain_api(&error) => self
                .write("private/advanced/cancel-otoco", list_params, None)
                .map(drop),
            outcome => outcome.map(drop),
        }
    }

    /// Order detail, plain family first, then the advanced one when the plain family does not
    /// know the client_oid. Plain first for every role, stop-loss and take-profit legs
    /// included: when a trigger leg fires, the market order it sends may carry the client_oid
    /// in the plain family (undocumented), and that report is the one with the fills.
    fn order_by_client_oid(&mut self, client_oid: &str) -> Result<Option<OrderReport>, VenueError> {
        match self.detail_by_client_oid("private/get-order-detail", client_oid)? {
            Some(report) => Ok(Some(report)),
            None => self.detail_by_client_oid("private/advanced/get-order-detail", client_oid),
        }
    }

    fn open_orders(&mut self) -> Result<Vec<OrderReport>, VenueError> {
        self.merged_reports(
            "private/get-open-orders",
            "private/advanced/get-open-orders",
            Map::new(),
        )
    }

    /// Terminal orders of `symbol`, plain and advanced, oldest update first: those created from
    /// `since_ms` less `history::HISTORY_CLOCK_MARGIN_MS` to now, but none older than
    /// `history::HISTORY_SPAN_MS` (the walk's bound applies to an earlier `since_ms`).
    fn order_history(
        &mut self,
        symbol: &str,
        since_ms: Millis,
    ) -> Result<Vec<OrderReport>, VenueError> {
        let mut reports = self.walked_history(symbol, since_ms)?;
        reports.sort_by_key(|report| report.update_time_ms);
        Ok(reports)
    }

    fn self_check(&mut self) -> Result<(), VenueError> {
        CryptoComVenue::self_check(self)
    }
}
