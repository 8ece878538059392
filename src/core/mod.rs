//! The pure core: domain types, the trade state machine, normalization, client_oid derivation,
//! entry guards, strategies and breaker rules. No IO, no clock reads, no randomness, no
//! `HashMap` iteration: everything arrives as arguments and leaves as return values.

pub mod breaker;
pub mod clock;
pub mod domain;
pub mod entry;
pub mod ids;
pub mod normalize;
pub mod risk;
pub mod startup;
pub mod strategy;
pub mod trade;
pub mod watchlist;
