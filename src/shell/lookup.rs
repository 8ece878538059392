//! The order lookup chain (order detail → open orders → history) and its position across loop
//! turns. When the turn's time budget runs out half-way (`VenueError::Deferred`), the chain
//! keeps what it has read in memory (`Lookups`) and the next turn resumes it — the venue keeps
//! the history walk's cursor the same way — instead of starting again, so a chain longer than
//! one budget still ends on a slow exchange. "Not found" is said only on evidence read after
//! the history walk: every chain that reaches the end of the history reads order detail and
//! open orders again (the walk's pages may have been read in earlier turns, by this chain or,
//! for the venue's shared cursor, by another one), each re-read a stage of its own that fits
//! the smallest budget. A chain ends within `CHAIN_TURNS_MAX` turns (as `Failed`, never as "not
//! found", when it could not); one left idle for `CHAIN_IDLE_TURNS_MAX` turns is forgotten. Knows no exchange; it decides nothing about trades.

use std::collections::BTreeMap;

use crate::core::domain::{Millis, OrderReport};
use crate::core::trade::LookOutcome;
use crate::venue::{Venue, VenueError};

/// Turns a chain may span before it is given up as a failed lookup. Each turn with a fresh
/// budget reads at least two requests of it (`venue::cryptocom::turn_budget_min`: every stage
/// is at most two requests), and a chain is at most 4 + 2 × 16 + 4 requests.
pub const CHAIN_TURNS_MAX: u64 = 32;
/// Turns a chain is kept without being resumed (the trade asked for something else meanwhile);
/// after that the next lookup of the order begins afresh.
pub const CHAIN_IDLE_TURNS_MAX: u64 = 4;
const _: () = assert!(CHAIN_IDLE_TURNS_MAX < CHAIN_TURNS_MAX);

/// Where a chain stands: the reads still to make, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Detail,
    OpenOrders,
    History,
    /// Open orders read again after the history, then order detail: two stages, so each fits
    /// the smallest budget and a chain never repeats a re-read it could not finish. Detail
    /// last, so the latest read sees an order whatever became of it meanwhile.
    RecheckOpen,
    RecheckDetail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Chain {
    stage: Stage,
    /// The turn the chain began in, and the last turn it was resumed in.
    began_turn: u64,
    last_turn: u64,
}

/// The chains that a spent budget interrupted, by client_oid, and the turn counter they are
/// measured against. Memory only: a restart begins every chain again.
#[derive(Debug, Default)]
pub struct Lookups {
    turn: u64,
    chains: BTreeMap<String, Chain>,
}

impl Lookups {
    /// A new loop turn: chains left idle too long are forgotten.
    pub fn new_turn(&mut self) {
        self.turn += 1;
        let turn = self.turn;
        self.chains
            .retain(|_, chain| turn - chain.last_turn <= CHAIN_IDLE_TURNS_MAX);
    }

    /// Chains waiting to be resumed (for tests and logs).
    pub fn pending(&self) -> usize {
        self.chains.len()
    }
}

/// One read of the chain: `Some` ends it with that outcome, `None` goes on to the next stage.
type Read = Result<Option<LookOutcome>, VenueError>;

/// Finds an order by client_oid: order detail first, then open orders, then the history back to
/// `since_ms`, the earliest time the order can have been created. "Not found anywhere" is an
/// answer of its own, distinct from "found but not filled". `Err(Deferred)` when the budget
/// ran out first: the chain's position is kept in `lookups` for the next turn.
pub fn lookup(
    venue: &mut dyn Venue,
    lookups: &mut Lookups,
    symbol: &str,
    client_oid: &str,
    since_ms: Millis,
) -> Result<LookOutcome, VenueError> {
    let turn = lookups.turn;
    let mut chain = lookups.chains.remove(client_oid).unwrap_or(Chain {
        stage: Stage::Detail,
        began_turn: turn,
        last_turn: turn,
    });
    chain.last_turn = turn;
    if turn - chain.began_turn >= CHAIN_TURNS_MAX {
        return Ok(LookOutcome::Failed {
            message: format!("the lookup did not complete within {CHAIN_TURNS_MAX} loop turns"),
        });
    }
    // Bounded: each pass moves the chain one stage on or ends it.
    for _ in 0..5 {
        let read = match chain.stage {
            Stage::Detail => detail(venue, client_oid),
            Stage::OpenOrders => open(venue, client_oid),
            Stage::History => history(venue, symbol, client_oid, since_ms),
            Stage::RecheckDetail => detail(venue, client_oid),
            Stage::RecheckOpen => open(venue, client_oid),
        };
        match read {
            Ok(Some(outcome)) => return Ok(outcome),
            Err(error) if error.is_deferred() => {
                lookups.chains.insert(client_oid.to_string(), chain);
                return Err(error);
            }
            Err(error) => {
                return Ok(LookOutcome::Failed {
                    message: error.to_string(),
                });
            }
            Ok(None) => {}
        }
        chain.stage = match chain.stage {
            Stage::Detail => Stage::OpenOrders,
            Stage::OpenOrders => Stage::History,
            // The walk's pages say where the order was not when they were read: read again.
            Stage::History => Stage::RecheckOpen,
            Stage::RecheckOpen => Stage::RecheckDetail,
            Stage::RecheckDetail => return Ok(LookOutcome::NotFound),
        };
    }
    // Unreachable (five stages, five passes); never "not found" by default.
    Ok(LookOutcome::Failed {
        message: "the lookup chain ran past its last stage".into(),
    })
}

fn detail(venue: &mut dyn Venue, client_oid: &str) -> Read {
    match venue.order_by_client_oid(client_oid) {
        Ok(Some(report)) => Ok(Some(LookOutcome::Found(report))),
        Ok(None) | Err(VenueError::NotFound) => Ok(None),
        Err(error) => Err(error),
    }
}

fn open(venue: &mut dyn Venue, client_oid: &str) -> Read {
    let orders = venue.open_orders()?;
    Ok(found_in(orders, client_oid))
}

fn history(venue: &mut dyn Venue, symbol: &str, client_oid: &str, since_ms: Millis) -> Read {
    let orders = venue.order_history(symbol, since_ms)?;
    Ok(found_in(orders, client_oid))
}

fn found_in(orders: Vec<OrderReport>, client_oid: &str) -> Option<LookOutcome> {
    orders
        .into_iter()
        .find(|report| report.client_oid == client_oid)
        .map(LookOutcome::Found)
}
