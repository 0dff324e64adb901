//! Reconnection delays: exponential, capped, jittered.

use std::time::Duration;

/// Exponential backoff between connection attempts.
///
/// Attempt `n` (from 0) waits `min(initial * multiplier^n, max)`, minus a
/// random part of up to `jitter` of it, so a fleet of agents reconnecting to
/// a restarted broker does not stampede in lockstep.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Upper bound of any delay.
    pub max: Duration,
    /// Growth factor per attempt (≥ 1).
    pub multiplier: f64,
    /// Fraction of the delay that is randomized, in `[0, 1]`.
    pub jitter: f64,
}

impl Default for Backoff {
    /// 250 ms, doubling, capped at 10 s, 50 % jitter.
    fn default() -> Self {
        Backoff { initial: Duration::from_millis(250), max: Duration::from_secs(10), multiplier: 2.0, jitter: 0.5 }
    }
}

impl Backoff {
    /// The upper bound of the delay before retry `attempt` (no jitter).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.max(1.0).powi(attempt.min(64) as i32);
        let secs = (self.initial.as_secs_f64() * factor).min(self.max.as_secs_f64());
        Duration::from_secs_f64(secs.max(0.0))
    }

    /// The delay before retry `attempt`, jittered.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let cut: f64 = rand::random::<f64>() * jitter;
        ceiling.mul_f64(1.0 - cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps() {
        let b = Backoff::default();
        assert_eq!(b.ceiling(0), Duration::from_millis(250));
        assert_eq!(b.ceiling(1), Duration::from_millis(500));
        assert_eq!(b.ceiling(3), Duration::from_secs(2));
        assert_eq!(b.ceiling(10), Duration::from_secs(10));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn jitter_stays_within_bounds() {
        let b = Backoff::default();
        for attempt in 0..20 {
            for _ in 0..50 {
                let d = b.delay(attempt);
                assert!(d <= b.ceiling(attempt));
                assert!(d >= b.ceiling(attempt).mul_f64(0.5));
            }
        }
        let none = Backoff { jitter: 0.0, ..b };
        assert_eq!(none.delay(2), none.ceiling(2));
    }
}
