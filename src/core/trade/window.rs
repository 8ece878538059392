//! Time windows and poll delays: how long an unacknowledged send may still turn into an
//! order (the nonce window), and the backoff of fill and lookup polls. Pure arithmetic on `now`.

use super::types::Limits;
use crate::core::domain::Millis;
/// How long after an ambiguous send the order may still appear. Crypto.com refuses a request
/// whose nonce is more than 60 s old, so after this window an unseen order never existed.
pub const UNKNOWN_WINDOW_MS: Millis = 65_000;
/// The first fill check comes this soon after the ack; later checks back off to the interval.
pub const POLL_FIRST_DELAY_MS: Millis = 200;
/// Bound on cancel attempts for one order before the trade halts.
pub const CANCEL_ATTEMPTS_MAX: u32 = 3;
/// Bound on read-back attempts of protective orders before the failsafe.
pub const VERIFY_ATTEMPTS_MAX: u32 = 20;
const _: () = assert!(UNKNOWN_WINDOW_MS > 60_000);

/// After a restart, how long a send of an earlier run may still take to show on the exchange.
/// That run's connections closed when it stopped, so its requests have reached the exchange or
/// never will; this covers the exchange's own processing and visibility lag.
pub const RESTART_SETTLE_MS: Millis = 20_000;

/// Whether an unacknowledged send at `sent_at` can no longer turn into an order. Sent by this
/// run (whose clock is steady): the nonce window has passed. Sent by an earlier run: the
/// window has passed by the clock *and* this run has settled — the system clock may have been
/// stepped forward while fillguard was down (a Raspberry Pi booting with a stale clock), and
/// the window alone would then end at once. A send "after" now means the clock was stepped
/// back: then the whole window is counted on this run's time.
pub(super) fn unknown_window_passed(sent_at: Millis, now: Millis, limits: &Limits) -> bool {
    let this_run = now - limits.steady_since_ms;
    if sent_at > now {
        return this_run >= UNKNOWN_WINDOW_MS;
    }
    let window_passed = now - sent_at >= UNKNOWN_WINDOW_MS;
    if sent_at >= limits.steady_since_ms {
        return window_passed;
    }
    window_passed && this_run >= RESTART_SETTLE_MS
}
const _: () = assert!(CANCEL_ATTEMPTS_MAX >= 1 && VERIFY_ATTEMPTS_MAX >= 1);

/// How fill polls are spaced after the entry's ack (`poll.schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollSchedule {
    /// The design fillguard replaces: every `poll_interval_ms`, the first one interval after
    /// the ack.
    Fixed,
    /// `first_delay_ms` after the ack, then growing by `growth_percent` up to the interval.
    Adaptive,
}

/// Where a fill poll reads the entry (`poll.source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollSource {
    /// Order detail by client_oid, then open orders and history when it is not found there.
    Detail,
    /// The design fillguard replaces: the open-orders list, then order history.
    OpenThenHistory,
}

/// The fill-poll policy: schedule, source and the adaptive schedule's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    pub schedule: PollSchedule,
    pub source: PollSource,
    /// The adaptive schedule's first delay after the ack (0 polls at once).
    pub first_delay_ms: Millis,
    /// Each later adaptive delay is this percentage of the one before (100 ..= 400).
    pub growth_percent: u32,
}

/// The adaptive schedule's first delay by default: poll as soon as the ack is in, since half of
/// the market entries are filled by then (measured: README, "Measuring the unprotected window").
pub const POLL_FIRST_DELAY_DEFAULT_MS: Millis = 0;
/// The adaptive schedule's growth by default, in percent.
pub const POLL_GROWTH_DEFAULT_PERCENT: u32 = 150;
/// The shortest gap the adaptive schedule grows from after its first poll, so a first delay
/// of 0 still backs off: the smallest `poll.interval_seconds` the configuration accepts.
pub const POLL_STEP_MIN_MS: Millis = 50;
/// Bounds of `growth_percent`.
pub const POLL_GROWTH_MIN_PERCENT: u32 = 100;
pub const POLL_GROWTH_MAX_PERCENT: u32 = 400;

impl Default for PollPolicy {
    fn default() -> PollPolicy {
        PollPolicy {
            schedule: PollSchedule::Adaptive,
            source: PollSource::Detail,
            first_delay_ms: POLL_FIRST_DELAY_DEFAULT_MS,
            growth_percent: POLL_GROWTH_DEFAULT_PERCENT,
        }
    }
}

/// Backoff of read-backs and lookups other than the entry's fill polls: 200 ms after the
/// request that needs it, doubling up to the configured interval.
pub fn poll_delay(attempt: u32, limits: &Limits) -> Millis {
    let first = POLL_FIRST_DELAY_MS.min(limits.poll_interval_ms);
    let factor = 1_i64 << attempt.min(20);
    first.saturating_mul(factor).min(limits.poll_interval_ms)
}

/// The delay before the entry's fill poll number `attempt` (0: the first, counted from the
/// ack). `fixed`: always the interval. `adaptive`: the first delay, then from
/// max(first delay, `POLL_STEP_MIN_MS`) growing by `growth_percent` per poll, never above the
/// interval.
pub fn fill_poll_delay(attempt: u32, limits: &Limits) -> Millis {
    let policy = &limits.poll;
    let interval = limits.poll_interval_ms;
    match policy.schedule {
        PollSchedule::Fixed => interval,
        PollSchedule::Adaptive if attempt == 0 => policy.first_delay_ms.clamp(0, interval),
        PollSchedule::Adaptive => {
            let growth = i64::from(policy.growth_percent.max(POLL_GROWTH_MIN_PERCENT));
            let mut delay = policy.first_delay_ms.max(POLL_STEP_MIN_MS);
            // Bounded: at most 20 steps, and it stops once the interval is reached.
            for _ in 0..attempt.min(20) {
                if delay >= interval {
                    break;
                }
                delay = delay.saturating_mul(growth) / 100;
            }
            delay.min(interval)
        }
    }
}

/// How long an entry's polls last at least, from the start of its phase: as long as
/// `poll.max_attempts` polls a `poll.interval` apart take (the fixed schedule's span), at most
/// `poll.deadline`. The adaptive schedule polls densely at first and makes its attempts sooner;
/// an entry slow to fill or to show is still given this long before it is cancelled or taken
/// as missing, with polls a `poll.interval` apart after the attempts.
pub fn fill_poll_span(limits: &Limits) -> Millis {
    limits
        .poll_interval_ms
        .saturating_mul(i64::from(limits.poll_attempts_max))
        .min(limits.poll_deadline_ms)
}

/// Whether an entry's fill polls are spent: its attempts made and its span passed, or its
/// deadline passed.
pub(super) fn fill_polls_spent(attempts: u32, since_ms: Millis, limits: &Limits) -> bool {
    (attempts >= limits.poll_attempts_max && since_ms >= fill_poll_span(limits))
        || since_ms >= limits.poll_deadline_ms
}

/// Lookups of an ambiguous send: quick at first, then every few seconds until the window ends.
pub(super) const UNKNOWN_POLL_MAX_MS: Millis = 5_000;

pub(super) fn unknown_delay(attempt: u32, limits: &Limits) -> Millis {
    poll_delay(attempt, limits)
        .max((POLL_FIRST_DELAY_MS << attempt.min(5)).min(UNKNOWN_POLL_MAX_MS))
}
