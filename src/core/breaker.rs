//! Circuit breaker rules. A breaker is per symbol, plus one global breaker. An open breaker
//! blocks new entries only: it never gates protective orders or exits.

use serde::{Deserialize, Serialize};

use crate::core::domain::Millis;
use crate::core::trade::{Alert, Severity};

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

/// The RESOLVED follow-up of an operator's reset of an open breaker: which breaker, why it had
/// opened and for how long, who reset it, and which recovering trades are now theirs. `None`
/// when the breaker was not open (nothing to resolve).
pub fn reset_alert(
    before: &Breaker,
    who: &str,
    released_trades: &[i64],
    now_ms: Millis,
) -> Option<Alert> {
    if !before.open {
        return None;
    }
    let name = if before.symbol == GLOBAL {
        "global breaker".to_string()
    } else {
        format!("breaker for {}", before.symbol)
    };
    let minutes = before
        .tripped_at_ms
        .map_or(0, |tripped| (now_ms - tripped).max(0) / 60_000);
    let released = if released_trades.is_empty() {
        String::new()
    } else {
        let ids: Vec<String> = released_trades.iter().map(i64::to_string).collect();
        format!(
            "\nRecovering trades {} are yours now: fillguard stops acting on them; settle their positions by hand.",
            ids.join(", ")
        )
    };
    let text = format!(
        "RESOLVED {}: {name} reset by {who}\nIt was OPEN for {minutes} min: {} ({} trips).\nNew entries may open again.{released}",
        before.symbol,
        before.reason.as_deref().unwrap_or("no reason recorded"),
        before.trip_count
    );
    Some(Alert {
        severity: Severity::Info,
        key: format!("breaker-reset-{}-{now_ms}", before.symbol),
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_of_an_open_breaker_is_announced_as_resolved() {
        let mut btc = Breaker::closed("BTC_USDT");
        assert_eq!(reset_alert(&btc, "operator alice", &[], 0), None);
        btc.trip("protection_rejected", 60_000);
        btc.trip("protection_rejected", 90_000);
        let alert = reset_alert(&btc, "operator alice", &[7], 60_000 * 31).unwrap();
        assert_eq!(alert.severity, Severity::Info);
        let first = alert.text.lines().next().unwrap();
        assert_eq!(
            first,
            "RESOLVED BTC_USDT: breaker for BTC_USDT reset by operator alice"
        );
        for needle in ["protection_rejected", "30 min", "2 trips", "trades 7"] {
            assert!(alert.text.contains(needle), "{needle}: {}", alert.text);
        }
    }

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
