//! Signal intake: the built-in strategies write signals into the inbox (deduplicated per
//! rule, symbol and closed candle; candles come through the cache of `candles.rs`), then each
//! new inbox signal is guarded and turned into a trade, or dropped with a logged reason
//! (stale, unknown symbol, breaker open, open trade, size, balance).

use rust_decimal::Decimal;
use tracing::{info, warn};

use crate::config::{Size, WatchItem};
use crate::core::breaker::GLOBAL;
use crate::core::domain::Millis;
use crate::core::entry::{EntryContext, EntryRequest, EntrySize, plan_entry};
use crate::core::strategy::{Rule, Verdict, evaluate};
use crate::core::trade::Event;
use crate::core::watchlist::drop_reason;
use crate::shell::Agent;
use crate::store::{self, SignalRow, SignalStatus};
use crate::venue::VenueError;

/// Bound on inbox signals taken per loop turn.
const SIGNALS_PER_TURN_MAX: usize = 20;

struct Prices {
    instrument: crate::core::domain::Instrument,
    last_price: Decimal,
    free_base: Decimal,
    free_quote: Decimal,
}

/// How far a signal check got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SignalCheck {
    /// Every strategy ran and every inbox signal was taken or dropped.
    Complete,
    /// The turn's budget was spent first: the whole check runs again next turn.
    Cut,
    /// The strategies ran; inbox signals wait for urgent work (`urgent.rs`).
    InboxWaits,
}

impl Agent {
    /// The strategies (when `strategies`), then the inbox.
    pub(super) fn check_signals(&mut self, strategies: bool) -> anyhow::Result<SignalCheck> {
        let watchlist = if strategies {
            self.config.watchlist.clone()
        } else {
            Vec::new()
        };
        for item in &watchlist {
            // One symbol's candles, or one signal below, is a unit of work: the watchdog is
            // pinged between them, never during one (`Agent::run`). Once the turn's budget is
            // spent the rest waits for the next turn.
            self.notify.watchdog();
            if self.turn_deferred {
                return Ok(SignalCheck::Cut);
            }
            if self.watchlist.is_disabled(&item.symbol) {
                continue;
            }
            if let Some((rule, timeframe_seconds)) = item.strategy.rule() {
                self.evaluate_strategy(item, &rule, timeframe_seconds)?;
            }
        }
        for signal in store::new_signals(self.store.conn(), SIGNALS_PER_TURN_MAX)? {
            self.notify.watchdog();
            if self.turn_deferred {
                return Ok(SignalCheck::Cut);
            }
            if !self.take_signal(signal)? {
                // This signal and the ones after it stay in the inbox, as they are.
                return Ok(if self.turn_deferred {
                    SignalCheck::Cut
                } else {
                    SignalCheck::InboxWaits
                });
            }
        }
        Ok(SignalCheck::Complete)
    }

    /// Brings the symbol's closed candles up to date (`candles.rs`: only those that can have
    /// closed since the last check) and evaluates the rule on them at the agent's time (the
    /// core drops a forming candle again, whatever the venue sent). A signal on a candle not
    /// acted on before is written to the inbox, deduplicated per rule, symbol and candle.
    fn evaluate_strategy(
        &mut self,
        item: &WatchItem,
        rule: &Rule,
        timeframe_seconds: u32,
    ) -> anyhow::Result<()> {
        let timeframe_ms = Millis::from(timeframe_seconds) * 1_000;
        let now_ms = if self.closed_candles_only {
            self.clock.now_ms()
        } else {
            self.clock.now_ms().saturating_add(timeframe_ms)
        };
        let venue = &mut self.venue;
        let mut fetch = |count: usize| venue.candles(&item.symbol, timeframe_seconds, count);
        let refreshed = self.candles.refresh(
            &item.symbol,
            timeframe_ms,
            rule.candles_needed(),
            now_ms,
            &mut fetch,
        );
        let verdict = match refreshed {
            Ok(candles) => evaluate(rule, candles, timeframe_ms, now_ms),
            Err(error) => {
                self.turn_deferred |= error.is_deferred();
                warn!(symbol = %item.symbol, error = %error, "candles unavailable");
                return Ok(());
            }
        };
        let (side, candle_open_time_ms) = match verdict {
            Verdict::TooFew => return Ok(()),
            Verdict::Hold {
                candle_open_time_ms,
            } => (None, candle_open_time_ms),
            Verdict::Signal {
                side,
                candle_open_time_ms,
            } => (Some(side), candle_open_time_ms),
        };
        if self.last_candle.get(&item.symbol) == Some(&candle_open_time_ms) {
            return Ok(());
        }
        let Some(side) = side.filter(|side| item.sides.contains(side)) else {
            self.last_candle
                .insert(item.symbol.clone(), candle_open_time_ms);
            return Ok(());
        };
        let (quantity, notional) = match item.size {
            Size::Quantity(quantity) => (Some(quantity), None),
            Size::Notional(notional) => (None, Some(notional)),
        };
        let source = rule.name();
        let signal = SignalRow {
            id: 0,
            symbol: item.symbol.clone(),
            side,
            quantity,
            notional,
            source: source.into(),
            dedup_key: Some(format!("{source}:{}:{candle_open_time_ms}", item.symbol)),
            // Born when its candle closed: a crossing found late (after a restart or an
            // outage) is as old as it is, and `signals.ttl_seconds` drops it when stale.
            created_at_ms: candle_open_time_ms
                .saturating_add(timeframe_ms)
                .min(self.wall.now_ms()),
            status: SignalStatus::New,
            reason: None,
            trade_id: None,
        };
        let inserted = self
            .store
            .transaction(|conn| store::insert_signal(conn, &signal))?;
        // Remembered only once stored: after a failed write the candle is evaluated again.
        self.last_candle
            .insert(item.symbol.clone(), candle_open_time_ms);
        if let Some(id) = inserted {
            info!(signal_id = id, symbol = %item.symbol, side = %side, source, "strategy signal");
        }
        Ok(())
    }

    /// Turns one inbox signal into a trade (and sends its entry), or drops it with a reason.
    /// Answers false, leaving the signal in the inbox untouched, when the entry must wait for
    /// other trades' urgent work (`Agent::urgent_first`).
    fn take_signal(&mut self, signal: SignalRow) -> anyhow::Result<bool> {
        let Some(item) = self
            .config
            .watchlist
            .iter()
            .find(|item| item.symbol == signal.symbol)
            .cloned()
        else {
            self.drop_signal(&signal, "symbol is not on the watchlist")?;
            return Ok(true);
        };
        if self.watchlist.is_disabled(&signal.symbol) {
            self.drop_signal(&signal, &drop_reason(&signal.symbol))?;
            return Ok(true);
        }
        let age_ms = self.wall.now_ms() - signal.created_at_ms;
        let ttl_ms = self.config.signals.ttl.as_millis() as i64;
        if age_ms > ttl_ms {
            let reason = format!(
                "stale: {} s old, time-to-live {} s",
                age_ms / 1000,
                ttl_ms / 1000
            );
            self.drop_signal(&signal, &reason)?;
            return Ok(true);
        }
        // Protection first: fills being polled and protection being placed go before this
        // entry, checked before its market reads and again after them (they take time).
        if !self.urgent_first()? {
            return Ok(false);
        }
        let prices = match self.fetch_prices(&signal.symbol) {
            Ok(prices) => prices,
            Err(error) => {
                self.turn_deferred |= error.is_deferred();
                // Left in the inbox: retried on the next check, bounded by the time-to-live.
                warn!(signal_id = signal.id, symbol = %signal.symbol, error = %error, "market data unavailable; signal kept");
                return Ok(true);
            }
        };
        if !self.urgent_first()? {
            return Ok(false);
        }
        let request = entry_request(&signal, &item, self.config.protection.mode);
        let planned = self.open_trade(&signal, &prices, &request)?;
        match planned {
            Ok(trade_id) => {
                info!(trade_id, signal_id = signal.id, symbol = %signal.symbol, side = %signal.side, "trade opened");
                self.summary.trades_opened += 1;
                self.drive(trade_id, Event::Due)?;
                Ok(true)
            }
            Err(reason) => {
                self.summary.signals_dropped += 1;
                info!(signal_id = signal.id, symbol = %signal.symbol, reason = %reason, "signal dropped");
                Ok(true)
            }
        }
    }

    /// One transaction: re-checks the guards, then stores the trade with its intents and marks
    /// the signal taken, or marks it dropped with the reason.
    fn open_trade(
        &mut self,
        signal: &SignalRow,
        prices: &Prices,
        request: &EntryRequest,
    ) -> anyhow::Result<Result<i64, String>> {
        let now = self.clock.now_ms();
        let allow_concurrent = self.config.signals.allow_concurrent_trades;
        let limits = &self.config.risk;
        let mut refused_by = None;
        let planned = self
            .store
            .transaction(|conn| {
                store::cache_instrument(conn, &prices.instrument, now)?;
                let symbol_breaker = store::breaker(conn, &signal.symbol)?;
                let global_breaker = store::breaker(conn, GLOBAL)?;
                let epoch = store::oid_epoch(conn)?;
                let context = EntryContext {
                    epoch: &epoch,
                    instrument: &prices.instrument,
                    last_price: prices.last_price,
                    free_base: prices.free_base,
                    free_quote: prices.free_quote,
                    symbol_breaker: symbol_breaker.as_ref(),
                    global_breaker: global_breaker.as_ref(),
                    open_trade_on_symbol: store::open_trade_on(conn, &signal.symbol)?,
                    allow_concurrent_trades: allow_concurrent,
                };
                let trade_id = store::next_trade_id(conn)?;
                let view = match plan_entry(trade_id, request, &context, now) {
                    Ok(view) => view,
                    Err(reason) => return drop_in(conn, signal, reason),
                };
                let notional = view
                    .trade
                    .entry_quantity
                    .checked_mul(prices.last_price)
                    .unwrap_or(Decimal::MAX);
                let quote = &prices.instrument.quote;
                let checked =
                    super::risk::check(conn, limits, &signal.symbol, quote, notional, now)?;
                if let Err(refusal) = checked {
                    refused_by = Some(refusal.limit);
                    return drop_in(conn, signal, refusal.to_string());
                }
                store_opened(conn, signal, &view, now)?;
                Ok(Ok(trade_id))
            })
            .map_err(anyhow::Error::from)?;
        if let Some(limit) = refused_by {
            super::risk::record_refusal(limit);
        }
        Ok(planned)
    }

    fn drop_signal(&mut self, signal: &SignalRow, reason: &str) -> anyhow::Result<()> {
        self.summary.signals_dropped += 1;
        info!(signal_id = signal.id, symbol = %signal.symbol, reason, "signal dropped");
        self.store.transaction(|conn| {
            store::settle_signal(conn, signal.id, SignalStatus::Dropped, Some(reason), None)
        })?;
        Ok(())
    }

    fn fetch_prices(&mut self, symbol: &str) -> Result<Prices, VenueError> {
        let instrument = self.venue.instrument(symbol)?;
        let last_price = self.venue.last_price(symbol)?;
        let free_base = self.venue.free_balance(&instrument.base)?;
        let free_quote = self.venue.free_balance(&instrument.quote)?;
        Ok(Prices {
            instrument,
            last_price,
            free_base,
            free_quote,
        })
    }
}

/// Marks the signal dropped with `reason`, inside the caller's transaction.
fn drop_in(
    conn: &rusqlite::Connection,
    signal: &SignalRow,
    reason: String,
) -> store::Result<Result<i64, String>> {
    store::settle_signal(conn, signal.id, SignalStatus::Dropped, Some(&reason), None)?;
    Ok(Err(reason))
}

/// Stores the new trade with its intents, marks the signal taken and records the event.
fn store_opened(
    conn: &rusqlite::Connection,
    signal: &SignalRow,
    view: &crate::core::trade::TradeView,
    now: crate::core::domain::Millis,
) -> store::Result<()> {
    let trade = &view.trade;
    store::save_view(conn, view)?;
    store::settle_signal(conn, signal.id, SignalStatus::Taken, None, Some(trade.id))?;
    let detail = format!(
        "opened from signal {} ({}): {} {} {}",
        signal.id, signal.source, trade.side, trade.entry_quantity, trade.symbol
    );
    store::record_event(
        conn,
        now,
        Some(trade.id),
        Some(&signal.symbol),
        "opened",
        &detail,
    )
}

fn entry_request(
    signal: &SignalRow,
    item: &WatchItem,
    mode: crate::core::domain::ProtectionMode,
) -> EntryRequest {
    let size = match (signal.quantity, signal.notional) {
        (Some(quantity), _) => EntrySize::Quantity(quantity),
        (None, Some(notional)) => EntrySize::Notional(notional),
        (None, None) => unreachable!("the store refuses a signal without a size"),
    };
    EntryRequest {
        symbol: signal.symbol.clone(),
        side: signal.side,
        size,
        stop_loss_pct: item.stop_loss_pct,
        take_profit_pct: item.take_profit_pct,
        mode,
        signal_id: Some(signal.id),
    }
}
