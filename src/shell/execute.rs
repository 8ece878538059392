//! Executes the core's venue actions and turns each result into the event the core expects
//! next. One action is at most a few bounded venue calls; errors become events, never panics.
//! A call the turn's time budget did not admit (`VenueError::Deferred`) becomes
//! `Event::Deferred`: nothing was sent, nothing is concluded, the core tries again next turn.

use tracing::{info, warn};

use crate::core::domain::{Millis, OrderRequest, OrderType, Side};
use crate::core::ids::Role;
use crate::core::trade::{
    Action, Event, LookOutcome, Market, MarketOutcome, Order, RejectReason, SendKind, SendOutcome,
    TradeView,
};
use crate::venue::{Venue, VenueError};

use super::lookup::{Lookups, lookup};

/// The order request for a stored intent. A MARKET order's limit and trigger prices are unset.
pub fn order_request(symbol: &str, order: &Order) -> OrderRequest {
    OrderRequest {
        client_oid: order.client_oid.clone(),
        symbol: symbol.to_string(),
        side: order.side,
        order_type: order.order_type,
        quantity: Some(order.quantity),
        notional: None,
        price: order.price.filter(|_| order.order_type == OrderType::Limit),
        trigger_price: order.trigger_price.filter(|_| {
            matches!(
                order.order_type,
                OrderType::StopLoss | OrderType::TakeProfit
            )
        }),
    }
}

fn find<'a>(view: &'a TradeView, client_oid: &str) -> Option<&'a Order> {
    view.orders
        .iter()
        .find(|order| order.client_oid == client_oid)
}

/// The earliest time the order can have been created, by the agent's clock: when its trade
/// was. Not the order's own send time: that is the latest send (`mark_sending`), and a first
/// attempt lost in a crash and repeated after a long outage may be much older. The venue
/// allows for the difference from the exchange's clock.
fn earliest_created_ms(view: &TradeView) -> Millis {
    view.trade.created_ms
}

/// Runs one venue action. `entry_block` is the reason new entries are blocked, if they are;
/// `lookups` holds the lookup chains a spent budget interrupted.
pub fn execute(
    venue: &mut dyn Venue,
    lookups: &mut Lookups,
    view: &TradeView,
    action: &Action,
    entry_block: Option<&str>,
) -> Option<Event> {
    let deferred = |error: &VenueError, client_oids: &[String]| {
        info!(error = %error, "venue action deferred to the next turn");
        Event::Deferred {
            client_oids: client_oids.to_vec(),
        }
    };
    match action {
        Action::Send { kind, client_oids } => {
            Some(send(venue, view, kind, client_oids, entry_block))
        }
        Action::Lookup { client_oid } => {
            let symbol = &view.trade.symbol;
            match lookup(
                venue,
                lookups,
                symbol,
                client_oid,
                earliest_created_ms(view),
            ) {
                Ok(outcome) => {
                    log_lookup(view, client_oid, &outcome);
                    Some(Event::Looked {
                        client_oid: client_oid.clone(),
                        outcome,
                    })
                }
                Err(error) => Some(deferred(&error, &[])),
            }
        }
        Action::LookupListed { client_oid } => {
            let outcome = match lookup_listed(venue, view, client_oid) {
                Err(error) if error.is_deferred() => return Some(deferred(&error, &[])),
                Err(error) => LookOutcome::Failed {
                    message: error.to_string(),
                },
                Ok(outcome) => outcome,
            };
            log_lookup(view, client_oid, &outcome);
            Some(Event::Looked {
                client_oid: client_oid.clone(),
                outcome,
            })
        }
        Action::Cancel { client_oid } => match cancel(venue, lookups, view, client_oid) {
            Err(Cancel::Deferred(error)) => Some(deferred(&error, &[])),
            result => {
                let outcome = result.map_err(|failure| failure.to_string());
                log_cancel(view, client_oid, &outcome);
                Some(Event::Cancelled {
                    client_oid: client_oid.clone(),
                    outcome,
                })
            }
        },
        Action::FetchMarket => match fetch_market(venue, &view.trade.symbol, view.trade.side) {
            Err(error) => Some(deferred(&error, &[])),
            Ok(outcome) => Some(Event::Market(outcome)),
        },
        Action::Alert(_) | Action::TripBreaker { .. } => None,
    }
}

fn send(
    venue: &mut dyn Venue,
    view: &TradeView,
    kind: &SendKind,
    client_oids: &[String],
    entry_block: Option<&str>,
) -> Event {
    let orders: Vec<&Order> = client_oids
        .iter()
        .filter_map(|oid| find(view, oid))
        .collect();
    let is_entry = orders
        .first()
        .is_some_and(|order| order.role == Role::Entry);
    if let (true, Some(reason)) = (is_entry, entry_block) {
        // Nothing is sent; the core decides what a blocked entry means (a repeat of a send
        // that may have gone out before a crash is resolved by lookup).
        return Event::EntryBlocked {
            reason: reason.to_string(),
        };
    }
    let requests: Vec<OrderRequest> = orders
        .iter()
        .map(|order| order_request(&view.trade.symbol, order))
        .collect();
    let result = match (kind, requests.as_slice()) {
        (SendKind::Single, [order]) => venue
            .create_order(order)
            .map(|ack| (Some(ack.order_id), None)),
        (SendKind::Oco, [stop_loss, take_profit]) => venue
            .create_oco(stop_loss, take_profit)
            .map(|ack| (None, Some(ack.list_id))),
        (SendKind::Otoco, [entry, stop_loss, take_profit]) => venue
            .create_otoco(entry, stop_loss, take_profit)
            .map(|ack| (None, Some(ack.list_id))),
        _ => Err(VenueError::Rejected {
            code: 0,
            message: format!("internal: {kind:?} with {} orders", requests.len()),
        }),
    };
    let outcome = match result {
        Err(error) if error.is_deferred() => {
            // Not sent: the core undoes the send mark, so this is never an ambiguous send.
            for order in &orders {
                info!(client_oid = %order.client_oid, role = order.role.as_str(),
                    error = %error, "order not sent: deferred to the next turn");
            }
            return Event::Deferred {
                client_oids: client_oids.to_vec(),
            };
        }
        Ok((order_id, list_id)) => {
            // One line per leg, so `journalctl CLIENT_OID=…` finds each leg's own story.
            for order in &orders {
                info!(client_oid = %order.client_oid, role = order.role.as_str(),
                    order_id = order_id.as_deref(), list_id = list_id.as_deref(),
                    "order acknowledged");
            }
            SendOutcome::Ack { order_id, list_id }
        }
        Err(error) => {
            for order in &orders {
                warn!(client_oid = %order.client_oid, role = order.role.as_str(),
                    error = %error, "order not acknowledged");
            }
            send_error_outcome(error)
        }
    };
    Event::Sent {
        client_oids: client_oids.to_vec(),
        outcome,
    }
}

/// Logs what a lookup learned that the store did not know yet: the exchange's order id, a new
/// status or a new fill, one line per order (polls that learn nothing stay quiet).
fn log_lookup(view: &TradeView, client_oid: &str, outcome: &LookOutcome) {
    let stored = find(view, client_oid);
    let role = stored.map_or("", |order| order.role.as_str());
    match outcome {
        LookOutcome::Found(report) => {
            let known = stored.is_some_and(|order| {
                order.order_id.as_deref() == Some(report.order_id.as_str())
                    && order.status.as_str() == report.status.as_str()
                    && order.cumulative_quantity == report.cumulative_quantity
            });
            if !known {
                info!(client_oid, role, order_id = %report.order_id,
                    status = report.status.as_str(), filled = %report.cumulative_quantity,
                    "order status");
            }
        }
        LookOutcome::NotFound => info!(client_oid, role, "order not found on the exchange"),
        LookOutcome::Failed { message } => {
            warn!(client_oid, role, error = %message, "order lookup failed")
        }
    }
}

fn log_cancel(view: &TradeView, client_oid: &str, outcome: &Result<(), String>) {
    let stored = find(view, client_oid);
    let role = stored.map_or("", |order| order.role.as_str());
    // An order whose id is not known yet logs no ORDER_ID field rather than an empty one.
    let order_id = stored.and_then(|order| order.order_id.as_deref());
    match outcome {
        Ok(()) => info!(client_oid, role, order_id, "order cancel accepted"),
        Err(error) => warn!(client_oid, role, order_id, error = %error, "order cancel failed"),
    }
}

/// The venue's error as the core's neutral outcome; the message keeps the exchange's code.
fn send_error_outcome(error: VenueError) -> SendOutcome {
    if error.is_ambiguous() {
        return SendOutcome::Ambiguous {
            message: error.to_string(),
        };
    }
    let reason = match error {
        VenueError::DuplicateClientOid(_) => return SendOutcome::Duplicate,
        VenueError::BelowMinimum { .. } => RejectReason::BelowMinimum,
        _ => RejectReason::Refused,
    };
    SendOutcome::Rejected {
        reason,
        message: error.to_string(),
    }
}

/// Why a cancel did not succeed: a failure the core is told of, or no attempt at all.
enum Cancel {
    Failed(String),
    Deferred(VenueError),
}

impl std::fmt::Display for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cancel::Failed(message) => f.write_str(message),
            Cancel::Deferred(error) => write!(f, "{error}"),
        }
    }
}

impl From<VenueError> for Cancel {
    fn from(error: VenueError) -> Cancel {
        if error.is_deferred() {
            Cancel::Deferred(error)
        } else {
            Cancel::Failed(error.to_string())
        }
    }
}

fn cancel(
    venue: &mut dyn Venue,
    lookups: &mut Lookups,
    view: &TradeView,
    client_oid: &str,
) -> Result<(), Cancel> {
    let order = find(view, client_oid)
        .ok_or_else(|| Cancel::Failed(format!("unknown order {client_oid}")))?;
    let symbol = &view.trade.symbol;
    match (&order.list_id, &order.order_id) {
        (Some(list_id), _) => Ok(venue.cancel_list(symbol, list_id)?),
        (None, Some(order_id)) => Ok(venue.cancel_order(symbol, order_id)?),
        (None, None) => {
            match lookup(
                venue,
                lookups,
                symbol,
                client_oid,
                earliest_created_ms(view),
            )? {
                LookOutcome::Found(report) => Ok(venue.cancel_order(symbol, &report.order_id)?),
                LookOutcome::NotFound => Err(Cancel::Failed("not found on the exchange".into())),
                LookOutcome::Failed { message } => Err(Cancel::Failed(message)),
            }
        }
    }
}

/// A fill poll of the design fillguard replaces (`poll.source = open-then-history`): the entry
/// in the open-orders list, else in order history since the trade was created, else not
/// found. One pass, no re-reads: the core polls again on its schedule, and an ambiguous send
/// is never looked up this way.
fn lookup_listed(
    venue: &mut dyn Venue,
    view: &TradeView,
    client_oid: &str,
) -> Result<LookOutcome, VenueError> {
    let open = venue.open_orders()?;
    if let Some(report) = open
        .into_iter()
        .find(|report| report.client_oid == client_oid)
    {
        return Ok(LookOutcome::Found(report));
    }
    let history = venue.order_history(&view.trade.symbol, earliest_created_ms(view))?;
    // Oldest update first: the last row is the order's latest state.
    Ok(history
        .into_iter()
        .rev()
        .find(|report| report.client_oid == client_oid)
        .map_or(LookOutcome::NotFound, LookOutcome::Found))
}

/// What protection is sized with; `Err` only when the budget deferred a read (the instrument
/// rules fetched before it stay cached, so the next turn goes on from there). The instrument
/// comes from the venue's cache; the last price (the crossed-stop check) and, for a BUY, the
/// free base balance (protect quantity = min(filled − base fee, free balance)) are read after
/// the fill. A SELL's protection buys back: no base balance bounds it, so none is read.
fn fetch_market(
    venue: &mut dyn Venue,
    symbol: &str,
    side: Side,
) -> Result<MarketOutcome, VenueError> {
    let fetched = (|| -> Result<Market, VenueError> {
        let instrument = venue.instrument(symbol)?;
        let last_price = venue.last_price(symbol)?;
        let free_base = match side {
            Side::Buy => Some(venue.free_balance(&instrument.base)?),
            Side::Sell => None,
        };
        Ok(Market {
            instrument,
            last_price,
            free_base,
        })
    })();
    match fetched {
        Ok(market) => Ok(MarketOutcome::Ready(market)),
        Err(error) if error.is_deferred() => Err(error),
        Err(error) => Ok(MarketOutcome::Failed {
            message: error.to_string(),
        }),
    }
}
