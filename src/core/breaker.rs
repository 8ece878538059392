//! Circuit breaker rules. A breaker is per symbol, plus one global breaker. An open breaker
//! blocks new entries only: it never gates protective orders or exits.

use serde::{Deserialize, Serialize};

use crate::core::domain::Millis;

/// The symbol name of the global breaker row.
pub const GLOBAL: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Breaker {
    pub symbol: String,
    pub open: bool,
    pub reason: Option<String>,
    pub tripped_at_ms: Option<Millis>,
    pub trip_count: u32,
}

impl Breaker {
    pub fn closed(symbol: &str) -> Breaker {
        Breaker {
            symbol: symbol.to_string(),
            open: false,
            reason: None,
            tripped_at_ms: None,
            trip_count: 0,
        }
    }

    /// Opens the breaker. Tripping an open breaker keeps the first reason and time.
    pub fn trip(&mut self, reason: &str, now_ms: Millis) {
        if !self.open {
            self.open = true;
            self.reason = Some(reason.to_string());
            self.tripped_at_ms = Some(now_ms);
        }
        self.trip_count = self.trip_count.saturating_add(1);
    }

    pub fn reset(&mut self) {
        self.open = false;
        self.reason = None;
        self.tripped_at_ms = None;
    }
}

/// Whether a new entry on a symbol is allowed, given its breaker and the global one (either may
/// be absent, meaning closed). Returns the blocking reason otherwise.
pub fn entry_block_reason(symbol: Option<&Breaker>, global: Option<&Breaker>) -> Option<String> {
    if let Some(breaker) = global.filter(|b| b.open) {
        return Some(format!(
            "global breaker open: {}",
            breaker.reason.as_deref().unwrap_or("no reason recorded")
        ));
    }
    symbol.filter(|b| b.open).map(|breaker| {
        format!(
            "breaker for {} open: {}",
            breaker.symbol,
            breaker.reason.as_deref().unwrap_or("no reason recorded")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_symbol_breaker_blocks_only_that_symbol() {
        let mut btc = Breaker::closed("BTC_USDT");
        btc.trip("protection_failed", 5);
        assert!(entry_block_reason(Some(&btc), None).is_some());
        let eth = Breaker::closed("ETH_USDT");
        assert_eq!(entry_block_reason(Some(&eth), None), None);
    }

    #[test]
    fn global_breaker_blocks_every_symbol() {
        let mut global = Breaker::closed(GLOBAL);
        global.trip("self_check_failed", 1);
        let eth = Breaker::closed("ETH_USDT");
        assert!(entry_block_reason(Some(&eth), Some(&global)).is_some());
        assert!(entry_block_reason(None, Some(&global)).is_some());
    }

    #[test]
    fn second_trip_keeps_first_reason_and_counts() {
        let mut breaker = Breaker::closed("BTC_USDT");
        breaker.trip("first", 1);
        breaker.trip("second", 2);
        assert_eq!(breaker.reason.as_deref(), Some("first"));
        assert_eq!(breaker.tripped_at_ms, Some(1));
        assert_eq!(breaker.trip_count, 2);
        breaker.reset();
        assert!(!breaker.open);
        assert_eq!(breaker.trip_count, 2);
    }
}
