//! fillguard: an edge trading agent that gives every filled position its stop-loss and
//! take-profit exactly once, or halts, alerts and (if configured) flattens.
//! See ARCHITECTURE.md for the map.

pub mod cli;
pub mod config;
pub mod core;
#[doc(hidden)]
pub mod fuzzing;
pub mod shell;
pub mod sim;
pub mod store;
pub mod telemetry;
pub mod venue;
pub mod webhook;
