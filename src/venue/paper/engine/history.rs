//! The step history of the price paths, saved apart from the account: how far back it reaches
//! (`set_lookback`), what the paper venue writes (`HistoryFile`) and how a saved history is put
//! back after a restart (`restore_history`). It must not change a price, an order or a
//! balance: the history only feeds `candles`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::domain::Millis;

use super::Engine;
use crate::venue::paper::price::{HISTORY_STEPS_MAX, SavedHistory, SavedHistoryRef};

/// Every path's history at one moment of the engine.
#[derive(Debug, Serialize, Deserialize)]
pub struct HistoryFile {
    /// The engine's `next_step_ms` then, so the steps after it can be replayed.
    pub next_step_ms: Millis,
    pub paths: BTreeMap<String, SavedHistory>,
}

/// `HistoryFile` as written: borrowed from the engine.
#[derive(Debug, Serialize)]
pub struct HistoryFileRef<'a> {
    pub next_step_ms: Millis,
    pub paths: BTreeMap<&'a str, SavedHistoryRef<'a>>,
}

impl Engine {
    /// Keeps only the step prices candles reaching `lookback_ms` back need (one step more for
    /// the candle still open); `None` keeps `HISTORY_STEPS_MAX`.
    pub fn set_lookback(&mut self, lookback_ms: Option<Millis>) {
        let steps = match lookback_ms {
            Some(lookback_ms) => {
                let steps = lookback_ms.max(0) / self.step_ms + 2;
                usize::try_from(steps).unwrap_or(HISTORY_STEPS_MAX)
            }
            None => HISTORY_STEPS_MAX,
        };
        for path in self.paths.values_mut() {
            path.set_history_steps(steps);
        }
    }

    /// Every path with its history now, for the paper venue to save.
    pub fn history_file(&self) -> HistoryFileRef<'_> {
        let paths = self
            .paths
            .iter()
            .map(|(symbol, path)| (symbol.as_str(), path.saved_history()))
            .collect();
        HistoryFileRef {
            next_step_ms: self.next_step_ms,
            paths,
        }
    }

    /// Step prices kept for `symbol` (zero for an unknown one).
    pub fn history_len(&self, symbol: &str) -> usize {
        self.paths.get(symbol).map_or(0, |path| path.history_len())
    }

    /// Whether any path lacks a history (an account saved without it).
    pub fn needs_history(&self) -> bool {
        self.paths.values().any(|path| !path.has_history())
    }

    /// Puts a saved history back into the paths that have none. Each saved path is walked on
    /// from the saved moment to the engine's (at most `steps_max` steps): when that walk ends
    /// where the engine's path is, the history is complete, exactly as if the process had not
    /// stopped; otherwise (a forced price, skipped steps) the saved steps are kept up to the
    /// engine's time and the gap stays.
    pub fn restore_history(&mut self, file: HistoryFile, steps_max: usize) {
        let step_ms = self.step_ms;
        let now_ms = self.now_ms;
        let next_step_ms = self.next_step_ms;
        for (symbol, saved) in file.paths {
            let Some(path) = self.paths.get_mut(&symbol) else {
                continue;
            };
            if path.has_history() {
                continue;
            }
            let mut walked = saved.path;
            walked.restore_history(saved.history.clone(), Millis::MAX);
            let mut time_ms = file.next_step_ms;
            let mut steps = 0;
            while time_ms < next_step_ms && steps < steps_max {
                walked.step(time_ms);
                time_ms = time_ms.saturating_add(step_ms);
                steps += 1;
            }
            let history = if time_ms == next_step_ms && walked.same_walk(path) {
                walked.take_history()
            } else {
                saved.history
            };
            path.restore_history(history, now_ms);
        }
    }
}
