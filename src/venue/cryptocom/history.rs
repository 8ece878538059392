//! The walk back through one order-history endpoint (reference §4.8, §5.1): one-day windows
//! `[start_time, end_time)` from now back to the earliest time the order looked for can have been
//! created (less `HISTORY_CLOCK_MARGIN_MS`), but never further than `HISTORY_SPAN_MS`; each window
//! read newest first in pages of `HISTORY_LIMIT` rows, a full page followed by one ending just
//! after its oldest row. An order sent seconds ago costs one request; a restart after a long
//! outage still finds the orders it sent days before it (up to the span: an order older than
//! `HISTORY_SPAN_MS` is not looked for, whatever the caller asks). Bounded by
//! `HISTORY_PAGES_MAX` requests; a walk that runs out of requests before it has covered the span
//! is an error, never a shorter answer, because "not in the history" must mean "not sent".
//! Pure: the caller sends the requests (through the rate limiter) and feeds the pages in.

use std::collections::BTreeSet;

use crate::core::domain::{Millis, OrderReport};
use crate::venue::VenueError;

/// Most rows one history call returns; sent as a JSON number (reference §2.1, §4.8).
pub(super) const HISTORY_LIMIT: u64 = 100;
/// Length of one window: the exchange's default span of a history call (reference §4.8).
pub(super) const HISTORY_WINDOW_MS: Millis = 24 * 60 * 60 * 1_000;
/// How far back the history is read at most, whatever the caller's earliest time.
pub(super) const HISTORY_SPAN_MS: Millis = HISTORY_WINDOWS as Millis * HISTORY_WINDOW_MS;
/// Slack on both ends of the walk for the difference between this host's clock and the
/// exchange's. The earliest time the caller passes is the agent's send time, by the agent's
/// clock, and "now" is the agent's clock too, while the rows' `create_time` is the exchange's: a
/// clock a few minutes off (no NTP, a VM resumed, a step after a long outage) would otherwise put
/// the order just outside the range read, and "not in the history" would wrongly mean "not
/// sent". Generous, because it costs nothing: ten minutes more of one window.
pub(super) const HISTORY_CLOCK_MARGIN_MS: Millis = 10 * 60 * 1_000;
/// Windows of one full walk: seven days.
const HISTORY_WINDOWS: u64 = 7;
/// Most requests of one walk (per endpoint): one per window plus room for full pages. History
/// calls are limited to one per second per endpoint, so a walk takes about as many seconds.
pub(super) const HISTORY_PAGES_MAX: u64 = 16;

const _: () = assert!(HISTORY_PAGES_MAX >= HISTORY_WINDOWS);
const _: () = assert!(HISTORY_LIMIT >= 2);
const _: () = assert!(HISTORY_CLOCK_MARGIN_MS < HISTORY_WINDOW_MS);

/// The time range of one history request, in ms (`start_ms` inclusive, `end_ms` exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HistoryRequest {
    pub start_ms: Millis,
    pub end_ms: Millis,
}

/// One answer of a history endpoint, as the walk needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HistoryPage {
    pub reports: Vec<OrderReport>,
    /// Rows in the answer, including rows of other programs' orders that were left out.
    pub rows: usize,
    /// Creation time of the oldest row of the answer; `None` when no row has one.
    pub oldest_created_ms: Option<Millis>,
}

/// The walk over one endpoint.
#[derive(Debug)]
pub(super) struct HistoryWalk {
    /// Where the walk stops: the start of its oldest window.
    floor_ms: Millis,
    /// The whole range the walk reads, for its error message.
    span_ms: Millis,
    /// Start of the window being read; `floor_ms` for the oldest.
    window_start_ms: Millis,
    end_ms: Millis,
    requests: u64,
    done: bool,
    /// Set when a full page could not be paged past (more than `HISTORY_LIMIT` orders in one
    /// millisecond): rows may have been missed.
    gapped: bool,
    seen: BTreeSet<String>,
    reports: Vec<OrderReport>,
}

impl HistoryWalk {
    /// A walk from `now_ms` back to `since_ms`, the earliest time the order looked for can have
    /// been created, each end widened by `HISTORY_CLOCK_MARGIN_MS`; at most `HISTORY_SPAN_MS`.
    pub fn new(now_ms: Millis, since_ms: Millis) -> HistoryWalk {
        let end_ms = now_ms.saturating_add(HISTORY_CLOCK_MARGIN_MS);
        // A `since_ms` after now (a clock stepped back) still reads the margin before now.
        let floor_ms = since_ms
            .min(now_ms)
            .saturating_sub(HISTORY_CLOCK_MARGIN_MS)
            .max(end_ms.saturating_sub(HISTORY_SPAN_MS));
        HistoryWalk {
            floor_ms,
            span_ms: end_ms.saturating_sub(floor_ms),
            window_start_ms: end_ms.saturating_sub(HISTORY_WINDOW_MS).max(floor_ms),
            end_ms,
            requests: 0,
            done: false,
            gapped: false,
            seen: BTreeSet::new(),
            reports: Vec::new(),
        }
    }

    /// The next request to send, or `None` when the walk is over (covered or out of requests).
    pub fn next_request(&self) -> Option<HistoryRequest> {
        if self.done || self.requests >= HISTORY_PAGES_MAX {
            return None;
        }
        Some(HistoryRequest {
            start_ms: self.window_start_ms,
            end_ms: self.end_ms,
        })
    }

    /// Takes in the answer to the request `next_request` gave.
    pub fn record(&mut self, page: HistoryPage, what: &str) -> Result<(), VenueError> {
        self.requests += 1;
        for report in page.reports {
            if self.seen.insert(report.order_id.clone()) {
                self.reports.push(report);
            }
        }
        let full = u64::try_from(page.rows).unwrap_or(u64::MAX) >= HISTORY_LIMIT;
        if !full {
            self.next_window();
            return Ok(());
        }
        let oldest_ms = page.oldest_created_ms.ok_or_else(|| {
            VenueError::Malformed(format!("{what}: a full page without create_time"))
        })?;
        // The next page ends just after the oldest row, so rows created in that same
        // millisecond and not in this page are read too; rows read twice are dropped by id.
        let next_end_ms = oldest_ms.saturating_add(1);
        if next_end_ms <= self.window_start_ms {
            self.next_window();
        } else if next_end_ms < self.end_ms {
            self.end_ms = next_end_ms;
        } else {
            self.gapped = true;
            self.end_ms = oldest_ms;
        }
        Ok(())
    }

    /// The orders found, or why the walk is not a complete answer.
    pub fn finish(self, what: &str) -> Result<Vec<OrderReport>, VenueError> {
        if !self.done {
            return Err(VenueError::RateLimited(format!(
                "{what}: more than {HISTORY_PAGES_MAX} pages in the {} minutes read back, history not read in full",
                self.span_ms / 60_000
            )));
        }
        if self.gapped {
            return Err(VenueError::RateLimited(format!(
                "{what}: more than {HISTORY_LIMIT} orders created in one millisecond, history not read in full"
            )));
        }
        Ok(self.reports)
    }

    fn next_window(&mut self) {
        self.end_ms = self.window_start_ms;
        if self.window_start_ms <= self.floor_ms {
            self.done = true;
        } else {
            self.window_start_ms = self
                .window_start_ms
                .saturating_sub(HISTORY_WINDOW_MS)
                .max(self.floor_ms);
        }
    }
}
