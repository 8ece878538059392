//! A watchlist symbol the exchange does not list. A share of the seeds (every seed of the
//! `unlisted-kept` canary) adds `UNLISTED_SYMBOL` to the watchlist, with the first symbol's
//! strategy and sizes, and sends it signals now and then from a random stream of its own. The
//! checks:
//! - U1 (after every turn): no order is ever sent for a symbol the exchange does not list
//!   (`FaultyVenue::check_sent`), and once the running agent has disabled the symbol, no turn
//!   asks the exchange about it (its strategy is not evaluated, its signals not taken);
//! - U2 (after the calm phase): the agent's check completed, every signal of the symbol ended
//!   DROPPED (for the reason naming it, or stale while the check was pending), and a signal
//!   sent in the calm phase, once the symbol was disabled, was dropped for that reason.

use rusqlite::params;
use rust_decimal::Decimal;

use super::Canary;
use crate::config::Config;
use crate::core::domain::{Millis, Side};
use crate::core::watchlist::{SymbolState, drop_reason};
use crate::shell::Agent;
use crate::store::{self, SignalRow, SignalStatus, Store};
use crate::venue::paper::SplitMix64;

pub const UNLISTED_SYMBOL: &str = "FOO_USDT";
/// One seed in this many has the unlisted symbol.
const SEEDS_PER_UNLISTED: u64 = 4;
/// Chance per turn of the faulty phase, in thousandths, of a signal for it.
const SIGNAL_PER_MILLE: u64 = 40;

pub(super) struct Unlisted {
    on: bool,
    random: SplitMix64,
    /// Whether the running agent had the symbol disabled when the turn began.
    disabled_at_turn_start: bool,
    /// The calm phase's signal, sent once the agent has disabled the symbol.
    calm_signal: Option<i64>,
}

impl Unlisted {
    pub(super) fn draw(seed: u64, canary: Option<Canary>) -> Unlisted {
        let mut random = SplitMix64::new(seed ^ 0x0F00_5EED);
        let on =
            canary == Some(Canary::UnlistedKept) || random.next_u64() % SEEDS_PER_UNLISTED == 0;
        Unlisted {
            on,
            random,
            disabled_at_turn_start: false,
            calm_signal: None,
        }
    }

    pub(super) fn is_on(&self) -> bool {
        self.on
    }

    /// Adds the symbol to the watchlist. The configuration's validation (which, for the paper
    /// venue, only accepts its own instruments) is behind: the seed wires its agent itself.
    pub(super) fn add_to(&self, config: &mut Config) {
        if !self.on {
            return;
        }
        let mut item = config.watchlist[0].clone();
        item.symbol = UNLISTED_SYMBOL.to_string();
        config.watchlist.push(item);
    }

    /// Whether to send the symbol a signal this turn, and on which side.
    pub(super) fn draw_signal(&mut self) -> Option<Side> {
        if !self.on || self.random.next_u64() % 1000 >= SIGNAL_PER_MILLE {
            return None;
        }
        Some([Side::Buy, Side::Sell][(self.random.next_u64() % 2) as usize])
    }

    /// Notes, as a turn begins, whether the running agent has the symbol disabled.
    pub(super) fn turn_begins(&mut self, agent: &Agent) {
        self.disabled_at_turn_start = self.on && disabled(agent);
    }

    /// U1 for the turn that just ran: the calls that named the symbol while it was disabled.
    pub(super) fn check_turn(&self, calls: &[String]) -> Option<String> {
        if !self.disabled_at_turn_start || calls.is_empty() {
            return None;
        }
        Some(format!(
            "U1: {} asked the exchange about {UNLISTED_SYMBOL} after the agent disabled it ({})",
            calls.len(),
            calls.join(", ")
        ))
    }

    /// In the calm phase: once the agent has disabled the symbol, one signal for it.
    pub(super) fn calm_turn(&mut self, agent: &Agent, now: Millis) {
        if !self.on || self.calm_signal.is_some() || !disabled(agent) {
            return;
        }
        let signal = SignalRow {
            id: 0,
            symbol: UNLISTED_SYMBOL.to_string(),
            side: Side::Buy,
            quantity: None,
            notional: Some(Decimal::from(60)),
            source: "simulation".into(),
            dedup_key: None,
            created_at_ms: now,
            status: SignalStatus::New,
            reason: None,
            trade_id: None,
        };
        // A refused write (the disk is calm by now) is tried again next turn.
        self.calm_signal = store::insert_signal(agent.store().conn(), &signal)
            .ok()
            .flatten();
    }

    /// Whether the symbol's part of the calm phase is done: its calm signal settled.
    pub(super) fn settled(&self, store: &Store) -> bool {
        !self.on || self.calm_signal.is_some() && new_signals(store) == 0
    }

    /// U2, after the calm phase.
    pub(super) fn check_end(&self, store: &Store) -> Option<String> {
        if !self.on {
            return None;
        }
        let Some(calm_signal) = self.calm_signal else {
            return Some(format!(
                "U2: the agent never disabled {UNLISTED_SYMBOL}, which the exchange does not list"
            ));
        };
        let expected = drop_reason(UNLISTED_SYMBOL);
        for (id, status, reason) in signals(store) {
            let stale = reason.starts_with("stale:") && id != calm_signal;
            if status != "DROPPED" || !(reason == expected || stale) {
                return Some(format!(
                    "U2: signal {id} for {UNLISTED_SYMBOL} ended {status} ({reason}), not dropped as not listed"
                ));
            }
        }
        None
    }
}

fn disabled(agent: &Agent) -> bool {
    agent.watchlist_states().get(UNLISTED_SYMBOL) == Some(&SymbolState::Disabled)
}

/// The symbol's signals as (id, status, reason).
fn signals(store: &Store) -> Vec<(i64, String, String)> {
    let query =
        "SELECT id, status, coalesce(reason, '') FROM signals WHERE symbol = ?1 ORDER BY id";
    let Ok(mut statement) = store.conn().prepare(query) else {
        return Vec::new();
    };
    statement
        .query_map(params![UNLISTED_SYMBOL], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .map(|rows| rows.filter_map(Result::ok).collect())
        .unwrap_or_default()
}

fn new_signals(store: &Store) -> usize {
    let rows = signals(store);
    rows.iter().filter(|(_, status, _)| status == "NEW").count()
}
