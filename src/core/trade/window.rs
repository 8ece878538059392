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

/// Poll backoff: 200 ms after the ack, doubling up to the configured interval.
pub fn poll_delay(attempt: u32, limits: &Limits) -> Millis {
    let first = POLL_FIRST_DELAY_MS.min(limits.poll_interval_ms);
    let factor = 1_i64 << attempt.min(20);
    first.saturating_mul(factor).min(limits.poll_interval_ms)
}

/// Lookups of an ambiguous send: quick at first, then every few seconds until the window ends.
pub(super) const UNKNOWN_POLL_MAX_MS: Millis = 5_000;

pub(super) fn unknown_delay(attempt: u32, limits: &Limits) -> Millis {
    poll_delay(attempt, limits)
        .max((POLL_FIRST_DELAY_MS << attempt.min(5)).min(UNKNOWN_POLL_MAX_MS))
}
