//! The controller's work queue: a pure scheduler of keys (usually object references) that
//! decides what to reconcile and when. It reads no clock and sleeps never: `now` comes in with
//! every input, and [`WorkQueue::poll`] says what to run or until when to wait.
//!
//! The rules, as controller-runtime's work queue and rate limiters have them:
//! - a key is pending at most once; scheduling it again keeps the earliest due time;
//! - a key is never handed out while it is being reconciled: a change meanwhile marks it, and it
//!   is queued again (at once) when the running reconcile finishes;
//! - after a failure a key is retried after a per-key exponential delay (5 ms, doubling, at most
//!   1000 s, reset by a success), and no sooner than an overall token bucket allows (10 per
//!   second, bursts of 100);
//! - a reconcile may ask to run again after a duration (`requeue after`);
//! - at most `concurrency` keys are handed out at once.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use kube_proto::workqueue::{Next, Outcome, WorkQueue, WorkQueueConfig};
//!
//! let t0 = Instant::now();
//! let mut q = WorkQueue::new(WorkQueueConfig::default(), t0);
//! q.schedule(t0, "a", Duration::ZERO);
//! q.schedule(t0, "a", Duration::ZERO); // deduplicated
//! let Next::Run { key, .. } = q.poll(t0) else { panic!() };
//! assert_eq!(key, "a");
//! q.schedule(t0, "a", Duration::ZERO); // changed while running: queued again after it
//! assert_eq!(q.poll(t0), Next::Idle);
//! q.finish(t0, &"a", Outcome::Requeue(Duration::from_secs(30)));
//! assert!(matches!(q.poll(t0), Next::Run { key: "a", .. }), "the change made while running comes first");
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Settings of a [`WorkQueue`] (controller-runtime's defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkQueueConfig {
    /// The most keys handed out at once (at least 1).
    pub concurrency: usize,
    /// The first retry delay of a key after a failure.
    pub failure_base: Duration,
    /// The longest retry delay of a key.
    pub failure_max: Duration,
    /// Retries after failures allowed per second, overall.
    pub retry_rate: f64,
    /// Retries allowed at once, overall, before `retry_rate` applies.
    pub retry_burst: u32,
}

impl Default for WorkQueueConfig {
    fn default() -> Self {
        WorkQueueConfig {
            concurrency: 16,
            failure_base: Duration::from_millis(5),
            failure_max: Duration::from_secs(1000),
            retry_rate: 10.0,
            retry_burst: 100,
        }
    }
}

/// How a reconcile of a key ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done; run again only when something changes (or it is scheduled).
    AwaitChange,
    /// Done; run again after this long (or sooner, on a change).
    Requeue(Duration),
    /// Failed: retry after the key's backoff and the overall rate limit.
    Failed,
    /// Failed, and the error policy asked to retry after this long (still no sooner than the
    /// overall rate limit allows).
    FailedRequeue(Duration),
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<T> {
    /// Reconcile this key now; call [`WorkQueue::finish`] when it is done.
    Run {
        /// The key.
        key: T,
        /// How long it waited past its due time (the queue latency).
        waited: Duration,
    },
    /// Nothing can run before this instant (a due time, or a free slot at the latest by then is
    /// not promised: a finish may free one sooner).
    Wait {
        /// When the earliest pending key is due.
        until: Instant,
    },
    /// Nothing is due: pending keys wait for a running reconcile to finish (the concurrency
    /// bound, or their own reconcile), or nothing is pending at all. Poll again after an input.
    Idle,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    due: Instant,
    seq: u64,
}

/// The per-key state beyond pending/running.
#[derive(Debug, Default)]
struct KeyState {
    /// Consecutive failures.
    failures: u32,
    /// Running now.
    running: bool,
    /// Scheduled while running: queue again, at the earliest of these, when it finishes.
    again: Option<Instant>,
}

/// The work queue. See the [module documentation](self).
#[derive(Debug)]
pub struct WorkQueue<T: Ord + Clone> {
    config: WorkQueueConfig,
    /// Pending keys and when they are due.
    pending: BTreeMap<T, Pending>,
    /// The same, ordered by due time (then by arrival).
    order: BTreeSet<(Instant, u64, T)>,
    keys: BTreeMap<T, KeyState>,
    running: usize,
    seq: u64,
    /// The overall bucket: tokens available at `bucket_at` (negative when retries are reserved
    /// ahead of the rate).
    tokens: f64,
    bucket_at: Instant,
}

impl<T: Ord + Clone> WorkQueue<T> {
    /// An empty queue; `now` starts the token bucket full.
    pub fn new(config: WorkQueueConfig, now: Instant) -> Self {
        let tokens = f64::from(config.retry_burst);
        WorkQueue {
            config,
            pending: BTreeMap::new(),
            order: BTreeSet::new(),
            keys: BTreeMap::new(),
            running: 0,
            seq: 0,
            tokens,
            bucket_at: now,
        }
    }

    /// Keys pending (not running).
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether no key is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Keys being reconciled.
    pub fn running(&self) -> usize {
        self.running
    }

    /// Whether `key` is being reconciled.
    pub fn is_running(&self, key: &T) -> bool {
        self.keys.get(key).is_some_and(|k| k.running)
    }

    /// When `key` is due, if it is pending.
    pub fn due(&self, key: &T) -> Option<Instant> {
        self.pending.get(key).map(|p| p.due)
    }

    /// Queues `key` to run `delay` from `now` (a change seen, a debounce), or sooner if it is
    /// already due sooner. A key being reconciled is queued again when that reconcile finishes.
    pub fn schedule(&mut self, now: Instant, key: T, delay: Duration) {
        let due = now + delay;
        let state = self.keys.entry(key.clone()).or_default();
        if state.running {
            state.again = Some(state.again.map_or(due, |t| t.min(due)));
            return;
        }
        self.enqueue(key, due);
    }

    /// Forgets `key`: no longer pending, its failures reset (the object is gone). A running
    /// reconcile still ends with [`finish`](Self::finish).
    pub fn forget(&mut self, key: &T) {
        if let Some(p) = self.pending.remove(key) {
            self.order.remove(&(p.due, p.seq, key.clone()));
        }
        match self.keys.get_mut(key) {
            Some(state) if state.running => {
                state.again = None;
                state.failures = 0;
            }
            _ => {
                self.keys.remove(key);
            }
        }
    }

    /// What to do at `now`. Call until it returns [`Next::Wait`] or [`Next::Idle`], after every
    /// input.
    pub fn poll(&mut self, now: Instant) -> Next<T> {
        let Some((due, seq, key)) = self.order.first().cloned() else { return Next::Idle };
        if due > now {
            return Next::Wait { until: due };
        }
        if self.running >= self.config.concurrency.max(1) {
            return Next::Idle;
        }
        self.order.remove(&(due, seq, key.clone()));
        self.pending.remove(&key);
        let state = self.keys.entry(key.clone()).or_default();
        state.running = true;
        self.running += 1;
        Next::Run { key, waited: now.saturating_duration_since(due) }
    }

    /// The reconcile of `key` ended at `now` with `outcome`: the key is scheduled as the outcome
    /// asks, and at once if it changed while it ran.
    pub fn finish(&mut self, now: Instant, key: &T, outcome: Outcome) {
        let Some(state) = self.keys.get_mut(key).filter(|s| s.running) else { return };
        state.running = false;
        self.running -= 1;
        let again = state.again.take();
        let next = match outcome {
            Outcome::AwaitChange => {
                state.failures = 0;
                None
            }
            Outcome::Requeue(d) => {
                state.failures = 0;
                Some(now + d)
            }
            Outcome::Failed | Outcome::FailedRequeue(_) => {
                state.failures = state.failures.saturating_add(1);
                let backoff = match outcome {
                    Outcome::FailedRequeue(d) => d,
                    _ => self.failure_delay(key),
                };
                Some(now + backoff.max(self.reserve_retry(now)))
            }
        };
        let due = match (again, next) {
            (Some(a), Some(n)) => Some(a.min(n)),
            (a, n) => a.or(n),
        };
        match due {
            Some(due) => self.enqueue(key.clone(), due),
            None => {
                if self.keys.get(key).is_some_and(|s| s.failures == 0) {
                    self.keys.remove(key);
                }
            }
        }
    }

    /// The exponential delay of `key` after its failures so far.
    fn failure_delay(&self, key: &T) -> Duration {
        let failures = self.keys.get(key).map_or(1, |s| s.failures.max(1));
        let factor = 2f64.powi(failures.saturating_sub(1).min(60) as i32);
        let delay = self.config.failure_base.as_secs_f64() * factor;
        Duration::from_secs_f64(delay.min(self.config.failure_max.as_secs_f64()))
    }

    /// Takes a token from the overall bucket at `now`: how long until the token is really there.
    fn reserve_retry(&mut self, now: Instant) -> Duration {
        let rate = self.config.retry_rate;
        if rate <= 0.0 || !rate.is_finite() {
            return Duration::ZERO;
        }
        let elapsed = now.saturating_duration_since(self.bucket_at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(self.config.retry_burst));
        self.bucket_at = self.bucket_at.max(now);
        self.tokens -= 1.0;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / rate) }
    }

    fn enqueue(&mut self, key: T, due: Instant) {
        if let Some(p) = self.pending.get(&key) {
            if p.due <= due {
                return;
            }
            self.order.remove(&(p.due, p.seq, key.clone()));
        }
        self.seq += 1;
        self.order.insert((due, self.seq, key.clone()));
        self.pending.insert(key, Pending { due, seq: self.seq });
    }
}
