//! Watching protected trades at scale: the live protective legs of every `Protected` trade are
//! read from one open-orders snapshot per loop turn (the venue's `open_orders`, plain and
//! advanced together) instead of one order-detail lookup per leg. The shell turns a snapshot
//! row into the very event a lookup would have given the core (`Event::Looked` with
//! `LookOutcome::Found`), so the core stays as it is. What the snapshot cannot settle goes
//! through the ordinary lookup chain (order detail, open orders, history): a leg absent from
//! the snapshot (filled, cancelled, or a list lagging behind), a row behind what the store
//! already knows (a stale list), a row with a terminal status, a client_oid two rows share (the
//! plain and the advanced family both knowing it), and every leg once in
//! `DETAIL_EVERY_SNAPSHOTS` snapshots however it looks there, so a list that lags behind for
//! long cannot hide a fill for longer than that many watch intervals. Absence from a list is
//! never taken as "gone". A snapshot that fails (an error, a row of ours it cannot read) passes
//! every leg on to the lookup chain, as before snapshots. Reads no clock and decides nothing
//! about a trade.

use std::collections::BTreeMap;

use tracing::{info, warn};

use crate::core::domain::{OrderReport, VenueStatus};
use crate::core::trade::{Action, Event, LookOutcome, Order, OrderStatus, TradeState, TradeView};
use crate::venue::{Venue, VenueError};

/// Every leg is read through the lookup chain (order detail first) once in this many
/// snapshots, even while the snapshot shows it open: 2 minutes at the default 5 s watch
/// interval. Spread over the legs by their client_oid, so the reads do not come all at once.
pub const DETAIL_EVERY_SNAPSHOTS: u64 = 24;

/// How the legs of protected trades are read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WatchMode {
    /// One open-orders snapshot per turn; per-order lookups for what it cannot settle.
    #[default]
    Snapshot,
    /// Every leg looked up on its own (order detail first), as before snapshots: kept for the
    /// before-and-after request measurement.
    PerOrder,
    /// Wrong on purpose, for the simulation's canary only: a leg absent from the snapshot is
    /// taken as cancelled, so the core re-protects while the leg may still be live.
    AbsenceIsGone,
    /// Wrong on purpose, for the tests' canary only: a leg the snapshot shows open is never
    /// read by order detail, so a listing that lags behind hides its fill.
    Trusting,
}

/// This turn's snapshot, once taken.
#[derive(Debug)]
enum Taken {
    /// The live orders by client_oid; `None` where two rows share one.
    Rows(BTreeMap<String, Option<OrderReport>>),
    /// The venue did not answer: this turn's watch lookups go to the lookup chain.
    Failed,
}

/// The turn's snapshot and the counts a measurement reads.
#[derive(Debug, Default)]
pub struct Watch {
    mode: WatchMode,
    snapshot: Option<Taken>,
    /// Snapshots taken, leg lookups answered from one, and leg lookups passed on to the
    /// lookup chain.
    pub snapshots: u64,
    pub answered: u64,
    pub passed_on: u64,
}

impl Watch {
    pub fn set_mode(&mut self, mode: WatchMode) {
        self.mode = mode;
    }

    /// Whether every protected trade is watched together when one of them is due (so all
    /// of them share a turn's snapshot and their deadlines line up on one watch interval).
    pub fn watches_together(&self) -> bool {
        self.mode != WatchMode::PerOrder
    }

    /// A new loop turn: the next watch takes a fresh snapshot.
    pub fn new_turn(&mut self) {
        self.snapshot = None;
    }

    /// The event answering `action` from this turn's snapshot (taken first if it was not
    /// yet), or `None` when the snapshot cannot settle it and the lookup chain must run.
    /// Only the read-back of a verified leg of the current round of a `Protected` trade is
    /// answered here; every other action, and every other state, goes to `execute`.
    pub fn answer(
        &mut self,
        venue: &mut dyn Venue,
        view: &TradeView,
        action: &Action,
    ) -> Option<Event> {
        if self.mode == WatchMode::PerOrder || view.trade.state != TradeState::Protected {
            return None;
        }
        let Action::Lookup { client_oid } = action else {
            return None;
        };
        let order = view.orders.iter().find(|order| {
            order.client_oid == *client_oid
                && order.role.is_protective()
                && order.verified
                && order.generation == view.trade.generation
        })?;
        if self.snapshot.is_none() {
            match venue.open_orders() {
                Err(error) if error.is_deferred() => {
                    info!(error = %error, "open-orders snapshot deferred to the next turn");
                    return Some(Event::Deferred {
                        client_oids: Vec::new(),
                    });
                }
                result => self.snapshot = Some(taken(result)),
            }
            self.snapshots += 1;
        }
        let detail_due = self.mode != WatchMode::Trusting && detail_due(client_oid, self.snapshots);
        let outcome = match self.snapshot.as_ref()? {
            Taken::Failed => None,
            Taken::Rows(rows) => match rows.get(client_oid) {
                None if self.mode == WatchMode::AbsenceIsGone => Some(LookOutcome::Found(
                    taken_as_cancelled(&view.trade.symbol, order),
                )),
                row if !detail_due => {
                    settle(order, row.and_then(Option::as_ref)).map(LookOutcome::Found)
                }
                _ => None,
            },
        };
        let Some(outcome) = outcome else {
            self.passed_on += 1;
            return None;
        };
        self.answered += 1;
        log_change(order, &outcome);
        Some(Event::Looked {
            client_oid: client_oid.clone(),
            outcome,
        })
    }
}

fn taken(result: Result<Vec<OrderReport>, VenueError>) -> Taken {
    match result {
        Ok(rows) => {
            let mut by_oid: BTreeMap<String, Option<OrderReport>> = BTreeMap::new();
            for row in rows {
                by_oid
                    .entry(row.client_oid.clone())
                    .and_modify(|shared| *shared = None)
                    .or_insert(Some(row));
            }
            Taken::Rows(by_oid)
        }
        Err(error) => {
            warn!(error = %error, "open-orders snapshot failed; protected trades are read back order by order this turn");
            Taken::Failed
        }
    }
}

/// Whether this snapshot is the leg's turn to be read through the lookup chain.
fn detail_due(client_oid: &str, snapshots: u64) -> bool {
    // FNV-1a: stable across runs and platforms, unlike the standard library's hasher.
    let spread = client_oid
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    spread.wrapping_add(snapshots) % DETAIL_EVERY_SNAPSHOTS == 0
}

/// The snapshot's row for `order` when it settles the leg's state: present, still open, and
/// not behind what the store already knows of the leg's fills.
fn settle(order: &Order, row: Option<&OrderReport>) -> Option<OrderReport> {
    let row = row?;
    if row.status.is_terminal() || row.cumulative_quantity < order.cumulative_quantity {
        return None;
    }
    Some(row.clone())
}

/// The canary's wrong conclusion: the leg as the exchange would report it cancelled.
fn taken_as_cancelled(symbol: &str, order: &Order) -> OrderReport {
    OrderReport {
        order_id: order.order_id.clone().unwrap_or_default(),
        client_oid: order.client_oid.clone(),
        symbol: symbol.to_string(),
        side: order.side,
        order_type: order.order_type,
        status: VenueStatus::Canceled,
        quantity: order.quantity,
        price: order.price,
        trigger_price: order.trigger_price,
        cumulative_quantity: order.cumulative_quantity,
        avg_price: order.avg_price,
        cumulative_fee: order.fee,
        fee_currency: order.fee_currency.clone().unwrap_or_default(),
        list_id: order.list_id.clone(),
        reason: None,
        update_time_ms: 0,
    }
}

/// Logs what the snapshot showed that the store did not know (watches that learn nothing
/// stay quiet), one line per leg, as a lookup does.
fn log_change(order: &Order, outcome: &LookOutcome) {
    match outcome {
        LookOutcome::Found(report) => {
            let known = order.status == OrderStatus::Venue(report.status)
                && order.cumulative_quantity == report.cumulative_quantity;
            if !known {
                info!(client_oid = %order.client_oid, role = order.role.as_str(),
                    order_id = %report.order_id, status = report.status.as_str(),
                    filled = %report.cumulative_quantity, "order status (open-orders snapshot)");
            }
        }
        LookOutcome::Failed { message } => {
            warn!(client_oid = %order.client_oid, role = order.role.as_str(), error = %message,
                "order lookup failed")
        }
        LookOutcome::NotFound => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::domain::{OrderType, Side};

    fn row(client_oid: &str, order_id: &str) -> OrderReport {
        OrderReport {
            order_id: order_id.into(),
            client_oid: client_oid.into(),
            symbol: "BTC_USDT".into(),
            side: Side::Sell,
            order_type: OrderType::StopLoss,
            status: VenueStatus::Active,
            quantity: rust_decimal::Decimal::ONE,
            price: None,
            trigger_price: None,
            cumulative_quantity: rust_decimal::Decimal::ZERO,
            avg_price: rust_decimal::Decimal::ZERO,
            cumulative_fee: rust_decimal::Decimal::ZERO,
            fee_currency: String::new(),
            list_id: None,
            reason: None,
            update_time_ms: 0,
        }
    }

    #[test]
    fn a_client_oid_two_rows_share_settles_nothing_and_a_failed_listing_is_failed() {
        let Taken::Rows(rows) = taken(Ok(vec![
            row("fg-a-1-S1", "1"),
            row("fg-a-1-T1", "2"),
            // The same client_oid in the other family, under another order id.
            row("fg-a-1-S1", "3"),
        ])) else {
            panic!("rows expected");
        };
        assert_eq!(rows.get("fg-a-1-S1"), Some(&None));
        assert!(rows.get("fg-a-1-T1").is_some_and(Option::is_some));
        let failed = taken(Err(VenueError::Malformed("a row".into())));
        assert!(matches!(failed, Taken::Failed));
    }

    #[test]
    fn each_leg_is_due_for_detail_exactly_once_in_every_run_of_snapshots() {
        for oid in ["fg-a-1-S1", "fg-a-1-T1", "fg-0a1b2c3d-1234-S12"] {
            for start in [0, 7, 1_000] {
                let due = (start..start + DETAIL_EVERY_SNAPSHOTS)
                    .filter(|snapshots| detail_due(oid, *snapshots))
                    .count();
                assert_eq!(due, 1, "{oid} from {start}");
            }
        }
    }
}
