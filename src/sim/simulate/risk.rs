//! The risk limits in the simulation. A quarter of the seeds run with limits drawn from the
//! seed (on a random stream of their own, so a seed's other draws stay as they were), and two
//! checks hold them to what the agent promises:
//!
//! - R1, no entry the limits refuse reaches the exchange: an entry's filled value on the book
//!   stays within `max_notional_per_order` (the fill may differ from the price it was sized at
//!   by `NOTIONAL_SLACK`); no window of an hour of true time, less the clock skew the agent may
//!   have seen, holds more entries than `max_entries_per_hour`; the store never holds more open
//!   trades than `max_open_trades`; and no trade on a symbol was opened within the cooldown
//!   after the symbol's previous trade ended.
//! - R2, a realized loss at its limit opens the global breaker with its CRITICAL alert within
//!   the bound the other liveness checks use.
//!
//! Canaries: `ignore-risk-limits` runs the agent without its entry limits (R1 must fail),
//! `ignore-loss-limit` without the daily loss limit (R2 must fail).

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::core::breaker::GLOBAL;
use crate::core::domain::{Millis, OrderReport};
use crate::core::ids::{Role, parse_client_oid};
use crate::core::risk::{HOUR_MS, RiskLimits, daily_loss_breach, loss_period_start};
use crate::store::{self, Store};
use crate::venue::paper::SplitMix64;

/// An entry's fill may be this much (in percent) above the value it was sized at.
const NOTIONAL_SLACK_PERCENT: i64 = 5;
/// One in this many seeds runs with limits.
const RISK_SEEDS_ONE_IN: u64 = 4;
/// How long a realized loss at its limit may go without the global breaker and its alert: a
/// few signal checks (every 2 s here), restarts after crashes and turns the disk refused (an
/// exchange outage comes on top: the turns it takes are longer).
pub const LOSS_TRIP_BOUND_MS: Millis = 60_000;
/// The checker sees a new entry on the first tick after it was sent: at most this late.
const TICK_SLACK_MS: Millis = 60_000;

/// The clocks and bounds the store checks work with.
#[derive(Debug, Clone, Copy)]
pub struct StoreTimes {
    /// True time.
    pub now: Millis,
    /// The agent's clock now: the loss period is the agent's day.
    pub agent_now: Millis,
    /// How long a breach may go without its breaker and alert.
    pub grace_ms: Millis,
    /// How far the agent's clock may be stepped across restarts.
    pub skew_range_ms: Millis,
}

pub struct RiskSim {
    pub limits: RiskLimits,
    /// Entries seen on the book, by (epoch, trade): when first seen, in true time.
    entries: BTreeMap<(String, i64), Millis>,
    /// Since when the store's realized loss has been at its limit.
    breach_since: Option<Millis>,
}

impl RiskSim {
    /// The limits of `seed`: none for most seeds; for a quarter, each limit on or off by draw.
    pub fn draw(seed: u64) -> RiskSim {
        let mut random = SplitMix64::new(seed ^ 0x7215_C0DE);
        let mut limits = RiskLimits::default();
        if random.next_u64() % RISK_SEEDS_ONE_IN == 0 {
            let mut maybe = |one_in: u64| random.next_u64() % one_in != 0;
            let on = [maybe(3), maybe(3), maybe(3), maybe(3), maybe(2)];
            let mut pick = |low: u64, high: u64| low + random.next_u64() % (high - low + 1);
            limits.max_open_trades = on[0].then(|| pick(1, 4) as u32);
            // The simulation's signals ask for 50 to 149 USDT; the watchlist says 100.
            limits.max_notional_per_order = on[1].then(|| Decimal::from(pick(100, 130)));
            limits.max_entries_per_hour = on[2].then(|| pick(2, 8) as u32);
            limits.cooldown_ms = on[3].then(|| pick(10, 300) as Millis * 1000);
            if on[4] {
                // Cents: a stopped trade loses about 1 % of 50 to 150 USDT.
                let cents = Decimal::new(pick(30, 250) as i64, 2);
                limits.daily_loss.insert("USDT".to_string(), cents);
            }
        }
        RiskSim {
            limits,
            entries: BTreeMap::new(),
            breach_since: None,
        }
    }

    pub fn is_on(&self) -> bool {
        self.limits != RiskLimits::default()
    }

    /// The configuration's environment form of the drawn limits.
    pub fn env(&self) -> Vec<(String, String)> {
        let limits = &self.limits;
        let mut env = Vec::new();
        let mut set = |key: &str, value: Option<String>| {
            if let Some(value) = value {
                env.push((format!("FILLGUARD_RISK__{key}"), value));
            }
        };
        set(
            "MAX_OPEN_TRADES",
            limits.max_open_trades.map(|v| v.to_string()),
        );
        set(
            "MAX_NOTIONAL_PER_ORDER",
            limits.max_notional_per_order.map(|v| v.to_string()),
        );
        set(
            "MAX_ENTRIES_PER_HOUR",
            limits.max_entries_per_hour.map(|v| v.to_string()),
        );
        set(
            "COOLDOWN_SECONDS",
            limits.cooldown_ms.map(|ms| (ms / 1000).to_string()),
        );
        for (asset, limit) in &limits.daily_loss {
            set(
                &format!("DAILY_LOSS_LIMIT__{asset}"),
                Some(limit.to_string()),
            );
        }
        env
    }

    pub fn describe(&self) -> String {
        if !self.is_on() {
            return "risk=off".to_string();
        }
        let env: Vec<String> = self
            .env()
            .into_iter()
            .map(|(key, value)| {
                let name = key.trim_start_matches("FILLGUARD_RISK__").to_lowercase();
                format!("{name}={value}")
            })
            .collect();
        format!("risk[{}]", env.join(","))
    }

    /// R1 on the book: entries' values and how many went out within an hour.
    pub fn check_book(
        &mut self,
        book: &[OrderReport],
        now: Millis,
        skew_range_ms: Millis,
    ) -> Vec<String> {
        if !self.is_on() {
            return Vec::new();
        }
        let mut problems = Vec::new();
        for order in book {
            let Some(parsed) = parse_client_oid(&order.client_oid) else {
                continue;
            };
            if parsed.role != Role::Entry {
                continue;
            }
            self.entries
                .entry((parsed.epoch.clone(), parsed.trade_id))
                .or_insert(now);
            let Some(max) = self.limits.max_notional_per_order else {
                continue;
            };
            let value = order.cumulative_quantity.saturating_mul(order.avg_price);
            let allowed = max * Decimal::new(100 + NOTIONAL_SLACK_PERCENT, 2);
            if value > allowed {
                problems.push(format!(
                    "R1 entry {} filled {} at {} (worth {}), above max_notional_per_order {max}",
                    order.client_oid,
                    order.cumulative_quantity,
                    order.avg_price,
                    value.round_dp(2)
                ));
            }
        }
        if let Some(max) = self.limits.max_entries_per_hour {
            let window = HOUR_MS - skew_range_ms - TICK_SLACK_MS;
            let recent = self
                .entries
                .values()
                .filter(|seen| now - **seen < window)
                .count();
            if window > 0 && recent > max as usize {
                problems.push(format!(
                    "R1 {recent} entries reached the exchange within {} s, max_entries_per_hour {max}",
                    window / 1000
                ));
            }
        }
        problems
    }

    /// R1 in the store (open trades, cooldowns) and R2 (the daily loss limit's breaker).
    pub fn check_store(&mut self, store: &Store, times: StoreTimes) -> Vec<String> {
        if !self.is_on() {
            return Vec::new();
        }
        self.store_problems(store, times)
            .unwrap_or_else(|error| vec![format!("R1 the store could not be read: {error}")])
    }

    fn store_problems(&mut self, store: &Store, times: StoreTimes) -> store::Result<Vec<String>> {
        let StoreTimes {
            now,
            agent_now,
            grace_ms,
            skew_range_ms,
        } = times;
        let conn = store.conn();
        let mut problems = Vec::new();
        if let Some(max) = self.limits.max_open_trades {
            let open = store::open_trade_count(conn)?;
            if open > max {
                problems.push(format!("R1 {open} trades open, max_open_trades {max}"));
            }
        }
        if let Some(cooldown) = self.limits.cooldown_ms {
            problems.extend(cooled_too_soon(conn, cooldown, skew_range_ms)?);
        }
        let since = loss_period_start(agent_now, store::loss_state(conn)?.since_ms);
        let realized = store::realized_since(conn, since)?;
        let Some(breach) = daily_loss_breach(&self.limits, &realized) else {
            self.breach_since = None;
            return Ok(problems);
        };
        let breach_since = *self.breach_since.get_or_insert(now);
        if now - breach_since <= grace_ms {
            return Ok(problems);
        }
        let open = store::breaker(conn, GLOBAL)?.is_some_and(|breaker| breaker.open);
        let alerted = store::all_alerts(conn)?
            .iter()
            .any(|alert| alert.key.starts_with("daily-loss:") && alert.severity == "CRITICAL");
        if !open || !alerted {
            problems.push(format!(
                "R2 {breach} for {} s: global breaker open {open}, CRITICAL alert queued {alerted}",
                (now - breach_since) / 1000
            ));
        }
        Ok(problems)
    }
}

/// Trades opened on a symbol after an earlier trade of it ended but within the cooldown, by
/// the store's times. Those come from the agent's clock, which a restart may find stepped by
/// up to `skew_range_ms`: a trade that ended after the other opened, in a later run of the
/// agent, can carry an earlier time than the opening. So only an opening later than the end
/// by more than the skew counts (and a turn runs on one clock reading: equal times never do).
fn cooled_too_soon(
    conn: &rusqlite::Connection,
    cooldown: Millis,
    skew_range_ms: Millis,
) -> store::Result<Vec<String>> {
    let mut statement = conn.prepare_cached(
        "SELECT ended.id, opened.id, opened.symbol, opened.created_ms - ended.ended_ms
         FROM trades ended JOIN trades opened
           ON opened.symbol = ended.symbol AND opened.id > ended.id
         WHERE ended.ended_ms IS NOT NULL AND ended.realized_result IS NOT NULL
           AND opened.created_ms > ended.ended_ms + ?2
           AND opened.created_ms < ended.ended_ms + ?1
         LIMIT 1",
    )?;
    let rows = statement.query_map([cooldown, skew_range_ms], |row| {
        Ok(format!(
            "R1 trade {} on {} opened {} ms after trade {} ended, cooldown {} s",
            row.get::<_, i64>(1)?,
            row.get::<_, String>(2)?,
            row.get::<_, i64>(3)?,
            row.get::<_, i64>(0)?,
            cooldown / 1000
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
