//! The pure core: domain types, the trade state machine, normalization, client_oid derivation
//! and breaker rules. No IO, no clock reads, no randomness, no `HashMap` iteration.

pub mod clock;
pub mod domain;
