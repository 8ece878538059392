//! The incremental candle cache: per watched symbol, the newest closed candles its strategy
//! reads (at most `CANDLES_MAX`). A check asks the venue only for the candles that can have
//! closed since the newest cached one, plus that one again as an overlap that proves nothing
//! was missed; it asks for the whole window when the cache is empty, too old, or disagrees
//! with the venue, and makes no request at all while no new candle can have closed. It decides
//! nothing about signals (the core's `strategy::evaluate` does, and filters forming candles
//! again itself) and holds no other state.

use std::collections::BTreeMap;

use crate::core::domain::{Candle, Millis};
use crate::core::strategy::{CANDLES_MAX, closed_candles};
use crate::venue::VenueError;

/// The venue request the cache makes: the newest `count` closed candles.
pub(super) type Fetch<'a> = dyn FnMut(usize) -> Result<Vec<Candle>, VenueError> + 'a;

/// One symbol's window: strictly increasing open times, every candle closed when stored.
#[derive(Debug, Default)]
struct Series {
    timeframe_ms: Millis,
    capacity: usize,
    candles: Vec<Candle>,
}

/// What one check asks of the venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// No candle can have closed since the newest cached one.
    Nothing,
    /// The candles that can have closed since, and the newest cached one again (the overlap).
    Since { count: usize },
    /// The whole window: the cache is empty, too old or was just found inconsistent.
    Full { count: usize },
}

#[derive(Debug, Default)]
pub(super) struct CandleCache {
    series: BTreeMap<String, Series>,
}

impl CandleCache {
    /// Brings `symbol`'s window up to date at `now_ms` and answers it, oldest first: at most
    /// `capacity` closed candles of `timeframe_ms`. At most two venue requests (an incremental
    /// one found inconsistent is followed by a full one); a venue error leaves the window as it
    /// was and is returned.
    pub(super) fn refresh(
        &mut self,
        symbol: &str,
        timeframe_ms: Millis,
        capacity: usize,
        now_ms: Millis,
        fetch: &mut Fetch<'_>,
    ) -> Result<&[Candle], VenueError> {
        let capacity = capacity.clamp(1, CANDLES_MAX);
        let series = self.series.entry(symbol.to_string()).or_default();
        if series.timeframe_ms != timeframe_ms || series.capacity != capacity {
            // A changed strategy starts over.
            *series = Series {
                timeframe_ms,
                capacity,
                candles: Vec::new(),
            };
        }
        match plan(series, now_ms) {
            Plan::Nothing => {}
            Plan::Since { count } => {
                let answer = closed_candles(&fetch(count)?, timeframe_ms, now_ms);
                if !merge(series, &answer) {
                    let full = closed_candles(&fetch(capacity)?, timeframe_ms, now_ms);
                    replace(series, full);
                }
            }
            Plan::Full { count } => {
                let full = closed_candles(&fetch(count)?, timeframe_ms, now_ms);
                replace(series, full);
            }
        }
        Ok(&series.candles)
    }
}

/// The request a check needs. With the newest cached candle opened at `newest`, the next one
/// opens at `newest + timeframe` and closes at `newest + 2 × timeframe`: before then nothing
/// new can have closed. After that, `(now − newest) / timeframe − 1` candles can have closed.
fn plan(series: &Series, now_ms: Millis) -> Plan {
    let full = Plan::Full {
        count: series.capacity,
    };
    let Some(newest) = series.candles.last() else {
        return full;
    };
    let Some(elapsed_ms) = now_ms.checked_sub(newest.open_time_ms) else {
        return full;
    };
    let candles_since = elapsed_ms.div_euclid(series.timeframe_ms.max(1));
    if candles_since < 2 {
        return Plan::Nothing;
    }
    // Closed since the newest cached one; with as many or more the window holds only new
    // candles, so nothing would overlap: the whole window is read again.
    let closed_since = usize::try_from(candles_since - 1).unwrap_or(usize::MAX);
    if closed_since >= series.capacity {
        return full;
    }
    Plan::Since {
        count: closed_since + 1,
    }
}

/// Appends the candles of `answer` newer than the newest cached one. False, leaving the window
/// untouched, when the answer does not reach back to the newest cached candle (something may
/// be missing between them) or disagrees with it (the venue revised a closed candle). An empty
/// answer adds nothing and is not a disagreement.
fn merge(series: &mut Series, answer: &[Candle]) -> bool {
    let Some(newest) = series.candles.last() else {
        return false;
    };
    if answer.is_empty() {
        return true;
    }
    let Some(overlap) = answer
        .iter()
        .position(|candle| candle.open_time_ms == newest.open_time_ms)
    else {
        return false;
    };
    if answer[overlap] != *newest {
        return false;
    }
    series
        .candles
        .extend_from_slice(answer.get(overlap + 1..).unwrap_or_default());
    trim(series);
    true
}

fn replace(series: &mut Series, candles: Vec<Candle>) {
    series.candles = candles;
    trim(series);
}

/// Keeps the newest `capacity` candles: the memory a symbol holds is bounded.
fn trim(series: &mut Series) {
    let excess = series.candles.len().saturating_sub(series.capacity);
    series.candles.drain(..excess);
}

#[cfg(test)]
mod tests;
