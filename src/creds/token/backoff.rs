//! Retry timing for token requests: exponential backoff with jitter, so a
//! fleet of sidecars does not retry a recovering endpoint in step.

use std::time::Duration;

/// First retry delay after a failure; doubles per failure up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// 250ms, 500ms, 1s, ... up to 30s, each scaled by a random factor in
/// [0.5, 1) so that many sidecars do not retry in step.
pub fn backoff(failures: u32) -> Duration {
    let exp = FIRST_BACKOFF.saturating_mul(1 << failures.saturating_sub(1).min(16));
    exp.min(MAX_BACKOFF).mul_f64(0.5 + 0.5 * random_unit())
}

/// A uniform number in [0, 1) from the OS random source.
pub fn random_unit() -> f64 {
    let mut b = [0u8; 4];
    // Jitter only: without randomness the delays are merely not spread.
    let _ = crate::random::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}
