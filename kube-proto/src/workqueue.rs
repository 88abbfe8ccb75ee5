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
//! - a change of a key (a [`schedule`](WorkQueue::schedule)) runs it without waiting for its
//!   backoff or a token: only retries are rate-limited, as controller-runtime limits only
//!   `AddRateLimited`;
//! - a reconcile may ask to run again after a duration (`requeue after`);
//! - at most `concurrency` keys are handed out at once.
//!
//! The token bucket is applied when a retry is handed out, not when the failure is recorded
//! (controller-runtime reserves the token at the failure, then adds the key's own backoff, so
//! retries whose delays end together start together): a retry takes a token as it starts, or
//! waits for one, so the retries that start in any window of time number at most
//! `retry_burst + retry_rate × its length`. Retries waiting for a token start in the order they
//! became due; keys that are due for another reason do not wait behind them.
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
    /// Retries after failures allowed to start per second, overall (0, negative or not finite:
    /// no overall limit).
    pub retry_rate: f64,
    /// Retries allowed to start at once, overall, before `retry_rate` applies (at least 1).
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
    /// Failed: retry after the key's backoff, and when the overall rate limit has a token.
    Failed,
    /// Failed, and the error policy asked to retry after this long (instead of the key's
    /// backoff; still only when the overall rate limit has a token).
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
    /// Nothing can run before this instant: when the earliest pending key is due, or when the
    /// overall bucket has a token for a retry that waits for one. (A free slot by then is not
    /// promised: a finish may free one sooner.)
    Wait {
        /// When to poll again at the latest.
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
    /// A retry after a failure (needs a token to start), not a change.
    retry: bool,
    /// Due, and waiting in `throttled` for a token.
    throttled: bool,
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
    /// The pending keys not throttled, ordered by due time (then by arrival).
    order: BTreeSet<(Instant, u64, T)>,
    /// Retries that are due and wait for a token, in the order they became due.
    throttled: BTreeSet<(Instant, u64, T)>,
    keys: BTreeMap<T, KeyState>,
    running: usize,
    seq: u64,
    /// The overall bucket: tokens available at `bucket_at` (0 to `retry_burst`).
    tokens: f64,
    bucket_at: Instant,
}

impl<T: Ord + Clone> WorkQueue<T> {
    /// An empty queue; `now` starts the token bucket full.
    pub fn new(config: WorkQueueConfig, now: Instant) -> Self {
        let tokens = f64::from(config.retry_burst.max(1));
        WorkQueue {
            config,
            pending: BTreeMap::new(),
            order: BTreeSet::new(),
            throttled: BTreeSet::new(),
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

    /// When `key` is due, if it is pending (a retry may wait longer, for a token).
    pub fn due(&self, key: &T) -> Option<Instant> {
        self.pending.get(key).map(|p| p.due)
    }

    /// Queues `key` to run `delay` from `now` (a change seen, a debounce), or sooner if it is
    /// already due sooner. A key being reconciled is queued again when that reconcile finishes.
    /// A pending retry of the key becomes a change: it no longer waits for a token.
    pub fn schedule(&mut self, now: Instant, key: T, delay: Duration) {
        let due = now + delay;
        let state = self.keys.entry(key.clone()).or_default();
        if state.running {
            state.again = Some(state.again.map_or(due, |t| t.min(due)));
            return;
        }
        self.enqueue(key, due, false);
    }

    /// Forgets `key`: no longer pending, its failures reset (the object is gone). A running
    /// reconcile still ends with [`finish`](Self::finish).
    pub fn forget(&mut self, key: &T) {
        if let Some(p) = self.pending.remove(key) {
            self.unlink(key, p);
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
        let full = self.running >= self.config.concurrency.max(1);
        // Due keys in order: a change runs; a retry joins those waiting for a token.
        while let Some((due, seq, key)) = self.order.first().cloned() {
            if due > now {
                break;
            }
            let retry = self.pending.get(&key).is_some_and(|p| p.retry);
            if retry && self.rate_limited() {
                self.order.remove(&(due, seq, key.clone()));
                self.throttled.insert((due, seq, key.clone()));
                if let Some(p) = self.pending.get_mut(&key) {
                    p.throttled = true;
                }
                continue;
            }
            if full {
                return Next::Idle;
            }
            self.order.remove(&(due, seq, key.clone()));
            return self.hand_out(now, key, due);
        }
        let mut token_at = None;
        if let Some((due, seq, key)) = self.throttled.first().cloned() {
            self.refill(now);
            if self.tokens >= 1.0 {
                if full {
                    return Next::Idle;
                }
                self.tokens -= 1.0;
                self.throttled.remove(&(due, seq, key.clone()));
                return self.hand_out(now, key, due);
            }
            // Rounded up, so that the token is there when the wait ends.
            let wait = Duration::from_secs_f64((1.0 - self.tokens) / self.config.retry_rate);
            token_at = Some(now + wait + Duration::from_nanos(1));
        }
        match (self.order.first().map(|(due, ..)| *due), token_at) {
            (Some(a), Some(b)) => Next::Wait { until: a.min(b) },
            (a, b) => a.or(b).map_or(Next::Idle, |until| Next::Wait { until }),
        }
    }

    fn hand_out(&mut self, now: Instant, key: T, due: Instant) -> Next<T> {
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
                Some(now + backoff)
            }
        };
        let retry = matches!(outcome, Outcome::Failed | Outcome::FailedRequeue(_));
        // A change while it ran makes the next run a change's, whichever is due first.
        let due = match (again, next) {
            (Some(a), Some(n)) => Some((a.min(n), false)),
            (Some(a), None) => Some((a, false)),
            (None, n) => n.map(|n| (n, retry)),
        };
        match due {
            Some((due, retry)) => self.enqueue(key.clone(), due, retry),
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

    /// Whether retries wait for tokens of the overall bucket.
    fn rate_limited(&self) -> bool {
        self.config.retry_rate > 0.0 && self.config.retry_rate.is_finite()
    }

    /// Fills the overall bucket for the time since it was last filled.
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.bucket_at).as_secs_f64();
        let burst = f64::from(self.config.retry_burst.max(1));
        self.tokens = (self.tokens + elapsed * self.config.retry_rate).min(burst);
        self.bucket_at = self.bucket_at.max(now);
    }

    /// Makes `key` pending at `due` (or keeps it at its earlier due time). A change (`retry`
    /// false) of a pending retry makes it a change, no longer waiting for a token.
    fn enqueue(&mut self, key: T, due: Instant, retry: bool) {
        let mut seq = None;
        let mut retry = retry;
        let mut due = due;
        if let Some(p) = self.pending.get(&key).copied() {
            retry &= p.retry;
            if p.due <= due {
                if retry == p.retry {
                    return;
                }
                // Same place in the order, no longer a retry.
                (due, seq) = (p.due, Some(p.seq));
            }
            self.unlink(&key, p);
        }
        let seq = seq.unwrap_or_else(|| {
            self.seq += 1;
            self.seq
        });
        self.order.insert((due, seq, key.clone()));
        self.pending.insert(key, Pending { due, seq, retry, throttled: false });
    }

    /// Takes a pending key out of the ordered set it is in.
    fn unlink(&mut self, key: &T, p: Pending) {
        let entry = (p.due, p.seq, key.clone());
        if p.throttled {
            self.throttled.remove(&entry);
        } else {
            self.order.remove(&entry);
        }
    }
}
