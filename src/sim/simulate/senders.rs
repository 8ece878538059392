//! The simulation's signal ids, as `fillguard signal --id` and the webhook receiver give them:
//! half the seed's signals carry an external id (the inbox key `id:<id>` both sources use), and
//! now and then an earlier one is sent again, as a sender's retry after an unanswered request
//! or a replay would. S9 checks that no id ever opened more than one trade. The canary
//! `ignore-signal-ids` writes the signals without their key, as a source that forgot it would,
//! and must make S9 fail. Draws from a random stream of its own, so every other draw of a seed
//! (and so every seed's course without the canary: a repeat under its key is never stored) is
//! what it was before ids were simulated.

use std::collections::BTreeMap;

use crate::core::domain::Millis;
use crate::store::{self, SignalRow, Store};
use crate::venue::paper::SplitMix64;
use crate::webhook::payload::id_key;

/// Sets this stream apart from the seed's main one.
const STREAM: u64 = 0x5167_6e61_6c5f_6964;
/// Earlier signals kept for repeats; older ones are never repeated.
const KEPT_MAX: usize = 32;
/// Chance per loop turn, in percent, that an earlier signal is sent again.
const REPEAT_PERCENT: u64 = 6;

pub struct Senders {
    random: SplitMix64,
    ignore_ids: bool,
    next_id: u64,
    /// Recent signals with an id, for repeats (at most `KEPT_MAX`).
    kept: Vec<(String, SignalRow)>,
    /// Every inbox row written for an id: one, unless the canary drops the key.
    rows: BTreeMap<String, Vec<i64>>,
    pub repeats: u32,
}

impl Senders {
    pub fn new(seed: u64, ignore_ids: bool) -> Senders {
        Senders {
            random: SplitMix64::new(seed ^ STREAM),
            ignore_ids,
            next_id: 0,
            kept: Vec::new(),
            rows: BTreeMap::new(),
            repeats: 0,
        }
    }

    /// Gives a new signal an id, or not (half of them); returns the id.
    pub fn label(&mut self, signal: &mut SignalRow) -> Option<String> {
        if self.random.next_u64() % 2 == 0 {
            return None;
        }
        self.next_id += 1;
        let id = format!("sim-{}", self.next_id);
        signal.dedup_key = (!self.ignore_ids).then(|| id_key(&id));
        if self.kept.len() == KEPT_MAX {
            self.kept.remove(0);
        }
        self.kept.push((id.clone(), signal.clone()));
        Some(id)
    }

    /// Maybe an earlier signal again, made at `now_ms`, with its id.
    pub fn repeat(&mut self, now_ms: Millis) -> Option<(String, SignalRow)> {
        if self.kept.is_empty() || self.random.next_u64() % 100 >= REPEAT_PERCENT {
            return None;
        }
        let index = (self.random.next_u64() % self.kept.len() as u64) as usize;
        let (id, signal) = &self.kept[index];
        self.repeats += 1;
        let signal = SignalRow {
            created_at_ms: now_ms,
            ..signal.clone()
        };
        Some((id.clone(), signal))
    }

    /// The inbox row a signal with `id` became, if the inbox took it.
    pub fn record(&mut self, id: &str, row: Option<i64>) {
        if let Some(row) = row {
            self.rows.entry(id.to_string()).or_default().push(row);
        }
    }

    /// S9: no signal id opened more than one trade, whatever its rows.
    pub fn check(&self, store: &Store) -> Option<String> {
        if self.rows.is_empty() {
            return None;
        }
        let signals = match store::all_signals(store.conn()) {
            Ok(signals) => signals,
            Err(error) => return Some(format!("S9: the inbox cannot be read: {error}")),
        };
        let trade_of: BTreeMap<i64, i64> = signals
            .iter()
            .filter_map(|signal| Some((signal.id, signal.trade_id?)))
            .collect();
        self.rows.iter().find_map(|(id, rows)| {
            let trades: Vec<i64> = rows
                .iter()
                .filter_map(|row| trade_of.get(row))
                .copied()
                .collect();
            (trades.len() > 1).then(|| format!("S9: signal id {id} opened trades {trades:?}"))
        })
    }
}
