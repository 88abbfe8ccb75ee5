//! Exponential backoff with jitter, shared by the watcher and the retry policy. The jitter's
//! randomness is an argument, drawn by the caller from its seeded generator.

use std::time::Duration;

/// Exponential backoff with jitter.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// The first delay.
    pub initial: Duration,
    /// The longest delay (a server's `Retry-After` may ask for longer, and is honoured).
    pub max: Duration,
    /// The growth factor per consecutive failure.
    pub factor: f64,
    /// The fraction of a delay that is random, from 0 (none) to 1.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { initial: Duration::from_millis(800), max: Duration::from_secs(30), factor: 2.0, jitter: 0.2 }
    }
}

impl Backoff {
    /// The delay after `failures` consecutive failures (1 for the first), with `random` in
    /// `[0, 1)`: within `[(1 - jitter) * d, d]` where `d = min(max, initial * factor^(failures-1))`.
    pub fn delay(&self, failures: u32, random: f64) -> Duration {
        let exp = self.factor.powi(failures.saturating_sub(1).min(64) as i32);
        let base = self.initial.as_secs_f64() * exp;
        let capped = base.min(self.max.as_secs_f64());
        let jitter = self.jitter.clamp(0.0, 1.0);
        Duration::from_secs_f64(capped * (1.0 - jitter * random.clamp(0.0, 1.0)))
    }
}
