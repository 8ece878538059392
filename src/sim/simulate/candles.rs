//! C1: no strategy signal on a candle still forming. Every strategy signal names its candle in
//! its dedup key (`{rule}:{symbol}:{open_time_ms}`); the check after each turn holds a signal
//! it has not seen before against the exchange's time. The agent decides on its own clock,
//! which a seed may skew by up to `skew_max_ms` either way, so a signal is wrong only when its
//! candle closes later than now plus that: the check never blames a correct agent, and an agent
//! that reads forming candles fails it in seeds whose skew is small against a candle.

use crate::config::Config;
use crate::core::domain::Millis;
use crate::store::{self, Store};

#[derive(Debug, Default)]
pub(super) struct CandleSignals {
    /// The highest signal id checked so far: a signal is checked once, on the first turn that
    /// sees it, when now is as close to its writing as the simulation can tell.
    checked_up_to: i64,
}

impl CandleSignals {
    pub(super) fn check(
        &mut self,
        store: &Store,
        config: &Config,
        now_ms: Millis,
        skew_max_ms: Millis,
    ) -> Vec<String> {
        let Ok(signals) = store::all_signals(store.conn()) else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        let checked_up_to = self.checked_up_to;
        for signal in signals.iter().filter(|s| s.id > checked_up_to) {
            self.checked_up_to = self.checked_up_to.max(signal.id);
            let Some(key) = signal.dedup_key.as_deref() else {
                continue;
            };
            let Some(close_ms) = candle_close_ms(config, key) else {
                continue;
            };
            if close_ms > now_ms.saturating_add(skew_max_ms) {
                problems.push(format!(
                    "C1 signal {} ({key}) on a candle that closes at {close_ms}, after now \
                     {now_ms} and the clock skew of {skew_max_ms} ms",
                    signal.id
                ));
            }
        }
        problems
    }
}

/// When the candle a strategy signal's key names closes, from the timeframe of its symbol's
/// strategy; `None` for any other key (an id, a test's).
fn candle_close_ms(config: &Config, key: &str) -> Option<Millis> {
    let mut parts = key.splitn(3, ':');
    let (rule_name, symbol, open_time) = (parts.next()?, parts.next()?, parts.next()?);
    let item = config.watchlist.iter().find(|item| item.symbol == symbol)?;
    let (rule, timeframe_seconds) = item.strategy.rule()?;
    if rule.name() != rule_name {
        return None;
    }
    let open_time_ms: Millis = open_time.parse().ok()?;
    open_time_ms.checked_add(Millis::from(timeframe_seconds) * 1_000)
}
