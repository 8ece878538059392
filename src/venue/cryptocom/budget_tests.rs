//! The client against the loopback responder of `loopback_tests` under a turn's time budget:
//! a request that does not fit is not sent (the responder never sees it) and is `Deferred`,
//! never ambiguous; a 429 retry that does not fit is not made.

use std::time::{Duration, Instant};

use serde_json::json;

use super::loopback_tests::{Responder, market_sell, ok, reply, venue_at};
use crate::venue::{Budget, Venue, VenueError};

#[test]
fn a_create_that_does_not_fit_is_not_sent_and_not_ambiguous() {
    let responder = Responder::start(vec![ok(
        json!({"client_oid": "agent-0001", "order_id": "6142909896902261394"}),
    )]);
    let mut venue = venue_at(&responder.base_url, Duration::from_secs(3));
    // 2 s left, while the create may take its whole 3 s timeout.
    venue.set_budget(Budget::starting(Instant::now(), Duration::from_secs(2)));
    let started = Instant::now();
    let error = venue.create_order(&market_sell()).unwrap_err();
    assert!(matches!(error, VenueError::Deferred(_)), "{error:?}");
    assert!(
        !error.is_ambiguous(),
        "a create never sent is not ambiguous"
    );
    assert!(started.elapsed() < Duration::from_millis(100), "no wait");
    // The next turn's budget admits it: the one request the responder sees is this one.
    venue.set_budget(Budget::starting(Instant::now(), Duration::from_secs(5)));
    let ack = venue.create_order(&market_sell()).unwrap();
    assert_eq!(ack.order_id, "6142909896902261394");
    let requests = responder.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].request_line().contains("private/create-order"));
}

#[test]
fn a_retry_after_429_that_does_not_fit_is_not_made() {
    let too_many = || reply(429, json!({"code": 42901, "message": "TOO_MANY_REQUESTS"}));
    let responder = Responder::start(vec![too_many()]);
    let mut venue = venue_at(&responder.base_url, Duration::from_secs(1));
    // The first attempt (1 s of timeout) fits; its retry (100 ms of back-off, then 1 s) does not.
    venue.set_budget(Budget::starting(
        Instant::now(),
        Duration::from_millis(1050),
    ));
    let error = venue.free_balance("BTC").unwrap_err();
    assert!(matches!(error, VenueError::Deferred(_)), "{error:?}");
    assert!(
        error.to_string().contains("private/user-balance"),
        "{error}"
    );
    assert_eq!(responder.requests().len(), 1, "the retry was not sent");
}

#[test]
fn without_a_budget_every_request_is_admitted() {
    let too_many = || reply(429, json!({"code": 42901, "message": "TOO_MANY_REQUESTS"}));
    let responder = Responder::start(vec![too_many(), too_many(), too_many()]);
    let mut venue = venue_at(&responder.base_url, Duration::from_secs(1));
    let error = venue.free_balance("BTC").unwrap_err();
    assert!(matches!(error, VenueError::RateLimited(_)), "{error:?}");
    assert_eq!(responder.requests().len(), 3, "a read tried three times");
}
