//! Signal intake: the built-in strategies write signals into the inbox (deduplicated per
//! candle), then each new inbox signal is guarded and turned into a trade, or dropped with a
//! logged reason (stale, unknown symbol, breaker open, open trade, size, balance).

use rust_decimal::Decimal;
use tracing::{info, warn};

use crate::config::{Size, Strategy, WatchItem};
use crate::core::breaker::GLOBAL;
use crate::core::entry::{EntryContext, EntryRequest, EntrySize, plan_entry};
use crate::core::strategy::sma_cross;
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
            if let Strategy::SmaCross {
                fast,
                slow,
                timeframe_seconds,
            } = item.strategy
            {
                self.evaluate_sma(item, fast as usize, slow as usize, timeframe_seconds)?;
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

    fn evaluate_sma(
        &mut self,
        item: &WatchItem,
        fast: usize,
        slow: usize,
        timeframe_seconds: u32,
    ) -> anyhow::Result<()> {
        let candles = match self
            .venue
            .candles(&item.symbol, timeframe_seconds, slow + 1)
        {
            Ok(candles) => candles,
            Err(error) => {
                self.turn_deferred |= error.is_deferred();
                warn!(symbol = %item.symbol, error = %error, "candles unavailable");
                return Ok(());
            }
        };
        let Some(last) = candles.last() else {
            return Ok(());
        };
        if self.last_candle.get(&item.symbol) == Some(&last.open_time_ms) {
            return Ok(());
        }
        let Some(side) = sma_cross(&candles, fast, slow).filter(|side| item.sides.contains(side))
        else {
            self.last_candle
                .insert(item.symbol.clone(), last.open_time_ms);
            return Ok(());
        };
        let (quantity, notional) = match item.size {
            Size::Quantity(quantity) => (Some(quantity), None),
            Size::Notional(notional) => (None, Some(notional)),
        };
        let signal = SignalRow {
            id: 0,
            symbol: item.symbol.clone(),
            side,
            quantity,
            notional,
            source: "sma_cross".into(),
            dedup_key: Some(format!("sma_cross:{}:{}", item.symbol, last.open_time_ms)),
            created_at_ms: self.wall.now_ms(),
            status: SignalStatus::New,
            reason: None,
            trade_id: None,
        };
        let inserted = self
            .store
            .transaction(|conn| store::insert_signal(conn, &signal))?;
        // Remembered only once stored: after a failed write the candle is evaluated again.
        self.last_candle
            .insert(item.symbol.clone(), last.open_time_ms);
        if let Some(id) = inserted {
            info!(signal_id = id, symbol = %item.symbol, side = %side, "strategy signal");
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
        self.store
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
                match plan_entry(trade_id, request, &context, now) {
                    Ok(view) => {
                        store::save_view(conn, &view)?;
                        store::settle_signal(
                            conn,
                            signal.id,
                            SignalStatus::Taken,
                            None,
                            Some(trade_id),
                        )?;
                        let detail = format!(
                            "opened from signal {} ({}): {} {} {}",
                            signal.id,
                            signal.source,
                            view.trade.side,
                            view.trade.entry_quantity,
                            view.trade.symbol
                        );
                        store::record_event(
                            conn,
                            now,
                            Some(trade_id),
                            Some(&signal.symbol),
                            "opened",
                            &detail,
                        )?;
                        Ok(Ok(trade_id))
                    }
                    Err(reason) => {
                        store::settle_signal(
                            conn,
                            signal.id,
                            SignalStatus::Dropped,
                            Some(&reason),
                            None,
                        )?;
                        Ok(Err(reason))
                    }
                }
            })
            .map_err(Into::into)
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
