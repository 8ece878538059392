//! Prometheus metrics (DESIGN §5): the names of the metric contract, their help text, units and
//! histogram buckets, and `install`, which puts the `metrics-exporter-prometheus` recorder with
//! its HTTP listener on `metrics.listen`. The listener runs on the exporter's own small runtime
//! thread; the agent only updates atomics and never waits on it. Every family is described and
//! given its zero-valued series where the labels are known in advance, so a scrape right after
//! start shows all of them. Decides nothing about trading; only `fillguard run` installs it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use metrics::Unit;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

use crate::core::ids::Role;
use crate::core::trade::TradeState;
use crate::core::watchlist::SymbolState;
use crate::venue::observe::{
    CODE_OK, EXCHANGE_REQUEST_DURATION_SECONDS, EXCHANGE_REQUESTS_TOTAL, METHODS,
};

pub const PROTECTION_FAILURES_TOTAL: &str = "fillguard_protection_failures_total";
pub const CIRCUIT_BREAKER_TRIPS_TOTAL: &str = "fillguard_circuit_breaker_trips_total";
pub const CIRCUIT_BREAKER_OPEN: &str = "fillguard_circuit_breaker_open";
pub const POSITIONS_UNPROTECTED: &str = "fillguard_positions_unprotected";
pub const UNPROTECTED_SECONDS: &str = "fillguard_unprotected_seconds";
pub const FILL_POLL_ATTEMPTS: &str = "fillguard_fill_poll_attempts";
pub const ORDERS_TOTAL: &str = "fillguard_orders_total";
pub const LOOP_DURATION_SECONDS: &str = "fillguard_loop_duration_seconds";
pub const LAST_LOOP_TIMESTAMP_SECONDS: &str = "fillguard_last_loop_timestamp_seconds";
pub const ALERTS_TOTAL: &str = "fillguard_alerts_total";
pub const ALERTS_PENDING: &str = "fillguard_alerts_pending";
pub const BUILD_INFO: &str = "fillguard_build_info";
pub const OPEN_TRADES: &str = "fillguard_open_trades";
pub const STORE_WRITE_FAILURES_TOTAL: &str = "fillguard_store_write_failures_total";
pub const RECONCILIATIONS_TOTAL: &str = "fillguard_reconciliations_total";
pub const WEBHOOK_REQUESTS_TOTAL: &str = "fillguard_webhook_requests_total";
pub const RISK_REFUSALS_TOTAL: &str = "fillguard_risk_refusals_total";
pub const RISK_LIMIT: &str = "fillguard_risk_limit";
pub const RISK_USED: &str = "fillguard_risk_used";
pub const WATCHLIST_SYMBOLS: &str = "fillguard_watchlist_symbols";

/// Label values of `orders_total{outcome}`.
pub const ORDER_OUTCOMES: [&str; 4] = ["ack", "duplicate", "rejected", "ambiguous"];
/// Label values of `store_write_failures_total{cause}`.
pub const STORE_CAUSES: [&str; 5] = ["busy", "full", "io", "corrupt", "other"];
/// Label values of `reconciliations_total{outcome}`.
pub const RECONCILIATION_OUTCOMES: [&str; 2] = ["ok", "failed"];
/// Label values of `alerts_total{severity}` and `{outcome}`.
pub const ALERT_SEVERITIES: [&str; 3] = ["INFO", "WARNING", "CRITICAL"];
pub const ALERT_OUTCOMES: [&str; 2] = ["sent", "failed"];
/// Label values of `webhook_requests_total{outcome}` (`webhook::Outcome`'s labels and
/// `over_capacity`).
pub const WEBHOOK_OUTCOMES: [&str; 11] = crate::webhook::OUTCOME_LABELS;
/// The limits `risk_limit` always shows (+Inf when off); `daily_loss_limit` has one series per
/// quote asset with a limit.
pub const RISK_SCALAR_LIMITS: [crate::core::risk::Limit; 5] = {
    use crate::core::risk::Limit;
    [
        Limit::MaxOpenTrades,
        Limit::MaxOpenTradesPerSymbol,
        Limit::MaxNotionalPerOrder,
        Limit::Cooldown,
        Limit::MaxEntriesPerHour,
    ]
};
/// The limits `risk_used` always shows.
pub const RISK_USED_LIMITS: [crate::core::risk::Limit; 2] = [
    crate::core::risk::Limit::MaxOpenTrades,
    crate::core::risk::Limit::MaxEntriesPerHour,
];
/// The breaker label of the global breaker.
pub const GLOBAL_SYMBOL: &str = crate::core::breaker::GLOBAL;

/// Fill observed → both legs acknowledged: from a fast exchange's 50 ms to five minutes.
const UNPROTECTED_BUCKETS: [f64; 13] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];
/// One exchange request: 5 ms to the 30 s longest timeout.
const REQUEST_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// One loop turn: an idle turn takes a millisecond, a reconciliation after an outage minutes.
const LOOP_BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];
/// Fill polls of one entry: `poll.max_attempts` is at most 100, the default 10.
const POLL_BUCKETS: [f64; 13] = [
    1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 25.0, 30.0,
];

/// Set once a recorder is installed: without one every metric call is a no-op, and the reads
/// behind the gauges are skipped (the simulation runs thousands of agents without metrics).
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Whether this process records metrics.
pub fn is_installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// Why the endpoint could not be started.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error(
        "metrics.listen {address}: cannot listen there ({detail}); free the port, choose another address, or set metrics.listen = \"off\""
    )]
    Listen { address: SocketAddr, detail: String },
    #[error("metrics.listen {address}: the exporter could not start: {detail}")]
    Start { address: SocketAddr, detail: String },
}

/// Starts the Prometheus endpoint on `listen` and registers every family of the contract, its
/// labelled series initialised for `symbols` (the watchlist; the global breaker is added).
/// `None` (`metrics.listen = "off"`) installs nothing: every metric call is then a no-op.
pub fn install(listen: Option<SocketAddr>, symbols: &[String]) -> Result<(), MetricsError> {
    let Some(address) = listen else {
        return Ok(());
    };
    let start_error = |error: BuildError| match error {
        BuildError::FailedToCreateHTTPListener(detail) => MetricsError::Listen { address, detail },
        other => MetricsError::Start {
            address,
            detail: other.to_string(),
        },
    };
    // Outside a tokio runtime (the agent has none) the exporter starts its own
    // current-thread runtime on a thread of its own; the bind happens here, synchronously.
    builder()
        .map_err(start_error)?
        .with_http_listener(address)
        .install()
        .map_err(start_error)?;
    describe();
    register(symbols);
    INSTALLED.store(true, Ordering::Relaxed);
    Ok(())
}

/// Installs the recorder without a listener and returns the handle that renders scrapes: for
/// tests of what the agent records, and for embedding fillguard in another exporter.
pub fn install_recorder(symbols: &[String]) -> Result<PrometheusHandle, BuildError> {
    let handle = builder()?.install_recorder()?;
    describe();
    register(symbols);
    INSTALLED.store(true, Ordering::Relaxed);
    Ok(handle)
}

/// The exporter with the contract's histogram buckets (without them histograms would be
/// exposed as summaries).
fn builder() -> Result<PrometheusBuilder, BuildError> {
    let buckets = [
        (UNPROTECTED_SECONDS, &UNPROTECTED_BUCKETS[..]),
        (EXCHANGE_REQUEST_DURATION_SECONDS, &REQUEST_BUCKETS[..]),
        (LOOP_DURATION_SECONDS, &LOOP_BUCKETS[..]),
        (FILL_POLL_ATTEMPTS, &POLL_BUCKETS[..]),
    ];
    let mut builder = PrometheusBuilder::new();
    for (name, values) in buckets {
        builder = builder.set_buckets_for_metric(Matcher::Full(name.to_string()), values)?;
    }
    Ok(builder)
}

/// How a family is exposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric of the contract: name, type, unit and help text.
pub const FAMILIES: [(&str, Kind, Option<Unit>, &str); 22] = [
    (
        PROTECTION_FAILURES_TOTAL,
        Kind::Counter,
        Some(Unit::Count),
        "Filled positions whose protection failed (the trade halted, went recovering or to the failsafe exit), by symbol and typed reason",
    ),
    (
        CIRCUIT_BREAKER_TRIPS_TOTAL,
        Kind::Counter,
        Some(Unit::Count),
        "Circuit breakers opened by the agent, by symbol (\"*\" is the global breaker) and reason",
    ),
    (
        CIRCUIT_BREAKER_OPEN,
        Kind::Gauge,
        None,
        "1 while the symbol's circuit breaker is open (no new entries), 0 while closed; read from the database every turn",
    ),
    (
        POSITIONS_UNPROTECTED,
        Kind::Gauge,
        Some(Unit::Count),
        "Filled positions of open trades without both protective legs acknowledged now, by symbol",
    ),
    (
        UNPROTECTED_SECONDS,
        Kind::Histogram,
        Some(Unit::Seconds),
        "Time from a fill being observed to both protective legs acknowledged, in seconds",
    ),
    (
        FILL_POLL_ATTEMPTS,
        Kind::Histogram,
        Some(Unit::Count),
        "Fill polls an entry needed before it was resolved",
    ),
    (
        ORDERS_TOTAL,
        Kind::Counter,
        Some(Unit::Count),
        "Orders sent, by role (entry, stop_loss, take_profit, exit) and outcome (ack, duplicate, rejected, ambiguous)",
    ),
    (
        EXCHANGE_REQUESTS_TOTAL,
        Kind::Counter,
        Some(Unit::Count),
        "Requests to the exchange by API method and answer code (\"0\" ok; http_5xx, timeout, transport and the like for failures without an exchange code)",
    ),
    (
        EXCHANGE_REQUEST_DURATION_SECONDS,
        Kind::Histogram,
        Some(Unit::Seconds),
        "Duration of one exchange request by API method, in seconds",
    ),
    (
        LOOP_DURATION_SECONDS,
        Kind::Histogram,
        Some(Unit::Seconds),
        "Duration of one agent loop turn, in seconds",
    ),
    (
        LAST_LOOP_TIMESTAMP_SECONDS,
        Kind::Gauge,
        Some(Unit::Seconds),
        "Unix time of the last completed agent loop turn, in seconds",
    ),
    (
        ALERTS_TOTAL,
        Kind::Counter,
        Some(Unit::Count),
        "Alert delivery attempts by severity (INFO, WARNING, CRITICAL) and outcome (sent, failed)",
    ),
    (
        ALERTS_PENDING,
        Kind::Gauge,
        Some(Unit::Count),
        "Alerts queued in the outbox and not yet sent; read from the database every turn",
    ),
    (
        BUILD_INFO,
        Kind::Gauge,
        None,
        "Always 1; the labels carry the fillguard version and the target it was built for",
    ),
    (
        OPEN_TRADES,
        Kind::Gauge,
        Some(Unit::Count),
        "Non-terminal trades by state; read from the database every turn",
    ),
    (
        STORE_WRITE_FAILURES_TOTAL,
        Kind::Counter,
        Some(Unit::Count),
        "Loop turns abandoned because the database refused a write, by cause (busy, full, io, corrupt, other)",
    ),
    (
        RECONCILIATIONS_TOTAL,
        Kind::Counter,
        Some(Unit::Count),
        "Reconciliation passes over the open trades (at start-up and after a refused turn), by outcome (ok, failed)",
    ),
    (
        WEBHOOK_REQUESTS_TOTAL,
        Kind::Counter,
        Some(Unit::Count),
        "Requests to the webhook receiver by outcome (accepted, malformed, unauthorized, replay, too_large, rate_limited, ...; over_capacity: a connection closed unread)",
    ),
    (
        RISK_REFUSALS_TOTAL,
        Kind::Counter,
        Some(Unit::Count),
        "Signals dropped because a risk limit refused their entry, by limit",
    ),
    (
        RISK_LIMIT,
        Kind::Gauge,
        None,
        "A configured risk limit by name, +Inf when off (cooldown in seconds; daily_loss_limit per quote asset with a limit, in that asset)",
    ),
    (
        RISK_USED,
        Kind::Gauge,
        None,
        "What is used of a risk limit: open trades, entries in the last hour, and the net realized loss of the loss period per quote asset (0 when in profit)",
    ),
    (
        WATCHLIST_SYMBOLS,
        Kind::Gauge,
        Some(Unit::Count),
        "Watchlist symbols by state against the exchange's instruments: enabled (listed), disabled (not listed: no strategy, signals dropped), unchecked (the start-up check is pending)",
    ),
];

/// Help text and unit of every metric of the contract.
pub fn describe() {
    for (name, kind, unit, help) in FAMILIES {
        match (kind, unit) {
            (Kind::Counter, Some(unit)) => metrics::describe_counter!(name, unit, help),
            (Kind::Counter, None) => metrics::describe_counter!(name, help),
            (Kind::Gauge, Some(unit)) => metrics::describe_gauge!(name, unit, help),
            (Kind::Gauge, None) => metrics::describe_gauge!(name, help),
            (Kind::Histogram, Some(unit)) => metrics::describe_histogram!(name, unit, help),
            (Kind::Histogram, None) => metrics::describe_histogram!(name, help),
        }
    }
}

/// The label value of a role in `orders_total{role}`.
pub fn role_label(role: Role) -> &'static str {
    match role {
        Role::Entry => "entry",
        Role::StopLoss => "stop_loss",
        Role::TakeProfit => "take_profit",
        Role::Exit => "exit",
    }
}

/// The non-terminal trade states, the label values of `open_trades{state}`.
pub fn open_states() -> impl Iterator<Item = TradeState> {
    TradeState::ALL
        .into_iter()
        .filter(|state| !state.is_terminal())
}

/// Registers the series whose labels are known before anything happens, at zero, so every
/// family appears in the first scrape and `increase()` sees the first event.
fn register(symbols: &[String]) {
    use metrics::{counter, gauge, histogram};
    gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION"), "target" => build_target()).set(1.0);
    for symbol in symbols {
        gauge!(POSITIONS_UNPROTECTED, "symbol" => symbol.clone()).set(0.0);
    }
    gauge!(ALERTS_PENDING).set(0.0);
    for state in SymbolState::ALL {
        // Until the start-up check answers, every symbol is unchecked.
        let count = if state == SymbolState::Unchecked {
            symbols.len()
        } else {
            0
        };
        gauge!(WATCHLIST_SYMBOLS, "state" => state.as_str()).set(count as f64);
    }
    gauge!(LAST_LOOP_TIMESTAMP_SECONDS).set(0.0);
    // Looking a histogram up registers it: it renders with empty buckets until recorded.
    let _ = histogram!(UNPROTECTED_SECONDS);
    let _ = histogram!(FILL_POLL_ATTEMPTS);
    let _ = histogram!(LOOP_DURATION_SECONDS);
    for state in open_states() {
        gauge!(OPEN_TRADES, "state" => state.as_str()).set(0.0);
    }
    let breaker_symbols = std::iter::once(GLOBAL_SYMBOL).chain(symbols.iter().map(String::as_str));
    for symbol in breaker_symbols {
        gauge!(CIRCUIT_BREAKER_OPEN, "symbol" => symbol.to_string()).set(0.0);
        // The reasons that trip a symbol's breaker are many; the generic one of each family
        // is enough to make the family visible from the start.
        counter!(CIRCUIT_BREAKER_TRIPS_TOTAL, "symbol" => symbol.to_string(), "reason" => "protection_failed")
            .absolute(0);
        counter!(PROTECTION_FAILURES_TOTAL, "symbol" => symbol.to_string(), "reason" => "protection_failed")
            .absolute(0);
    }
    for role in [Role::Entry, Role::StopLoss, Role::TakeProfit, Role::Exit] {
        for outcome in ORDER_OUTCOMES {
            counter!(ORDERS_TOTAL, "role" => role_label(role), "outcome" => outcome).absolute(0);
        }
    }
    for method in METHODS {
        counter!(EXCHANGE_REQUESTS_TOTAL, "method" => method, "code" => CODE_OK).absolute(0);
        let _ = histogram!(EXCHANGE_REQUEST_DURATION_SECONDS, "method" => method);
    }
    for severity in ALERT_SEVERITIES {
        for outcome in ALERT_OUTCOMES {
            counter!(ALERTS_TOTAL, "severity" => severity, "outcome" => outcome).absolute(0);
        }
    }
    for cause in STORE_CAUSES {
        counter!(STORE_WRITE_FAILURES_TOTAL, "cause" => cause).absolute(0);
    }
    for outcome in RECONCILIATION_OUTCOMES {
        counter!(RECONCILIATIONS_TOTAL, "outcome" => outcome).absolute(0);
    }
    for outcome in WEBHOOK_OUTCOMES {
        counter!(WEBHOOK_REQUESTS_TOTAL, "outcome" => outcome).absolute(0);
    }
    for limit in crate::core::risk::Limit::ALL {
        counter!(RISK_REFUSALS_TOTAL, "limit" => limit.as_str()).absolute(0);
    }
    // Until the first turn reads the configuration's limits, every one is "none" (+Inf).
    for limit in RISK_SCALAR_LIMITS {
        gauge!(RISK_LIMIT, "limit" => limit.as_str(), "asset" => "").set(f64::INFINITY);
    }
    for limit in RISK_USED_LIMITS {
        gauge!(RISK_USED, "limit" => limit.as_str(), "asset" => "").set(0.0);
    }
}

/// The full target triple this binary was compiled for (set by build.rs), the
/// same one `fillguard --version` prints, e.g. `aarch64-unknown-linux-gnu`.
fn build_target() -> &'static str {
    env!("BUILD_TARGET_TRIPLE")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_follows_the_prometheus_rules_of_the_contract() {
        for (name, kind, unit, help) in FAMILIES {
            assert!(name.starts_with("fillguard_"), "{name}");
            assert!(!help.is_empty(), "{name}");
            if kind == Kind::Counter {
                assert!(name.ends_with("_total"), "{name}");
            }
            if unit == Some(Unit::Seconds) {
                assert!(name.ends_with("_seconds"), "{name}");
            }
            assert!(
                name.bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte == b'_'),
                "{name}"
            );
        }
        let mut unique: Vec<&str> = FAMILIES.iter().map(|family| family.0).collect();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), FAMILIES.len());
    }

    #[test]
    fn off_installs_nothing() {
        install(None, &["BTC_USDT".to_string()]).unwrap();
        assert!(!is_installed());
    }

    #[test]
    fn roles_map_to_their_label_values() {
        assert_eq!(role_label(Role::Entry), "entry");
        assert_eq!(role_label(Role::StopLoss), "stop_loss");
        assert_eq!(role_label(Role::TakeProfit), "take_profit");
        assert_eq!(role_label(Role::Exit), "exit");
    }

    #[test]
    fn buckets_increase_and_span_what_the_contract_asks() {
        for buckets in [
            &UNPROTECTED_BUCKETS[..],
            &REQUEST_BUCKETS,
            &LOOP_BUCKETS,
            &POLL_BUCKETS,
        ] {
            assert!(buckets.windows(2).all(|pair| pair[0] < pair[1]));
        }
        assert_eq!(UNPROTECTED_BUCKETS[0], 0.05);
        assert_eq!(UNPROTECTED_BUCKETS[UNPROTECTED_BUCKETS.len() - 1], 300.0);
        assert_eq!(REQUEST_BUCKETS[0], 0.005);
        assert_eq!(REQUEST_BUCKETS[REQUEST_BUCKETS.len() - 1], 30.0);
        assert_eq!(POLL_BUCKETS[0], 1.0);
        assert_eq!(POLL_BUCKETS[POLL_BUCKETS.len() - 1], 30.0);
    }

    #[test]
    fn open_states_are_the_non_terminal_ones() {
        let states: Vec<&str> = open_states().map(TradeState::as_str).collect();
        assert_eq!(states.len(), 10);
        assert!(!states.contains(&"CLOSED") && !states.contains(&"HALTED"));
        assert!(states.contains(&"RECOVERING"));
    }
}
