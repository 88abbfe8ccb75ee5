//! The work queue's rules, as controller-runtime's queue and rate limiters have them: pending
//! keys are deduplicated at their earliest due time, a key is never handed out while it runs,
//! failures back off per key (5 ms doubling to 1000 s, reset by a success) and overall (a token
//! bucket of 10 per second, bursts of 100, taken as a retry starts), requeue-after, and a
//! concurrency bound. Time is an argument: every test picks its own origin.

#![allow(clippy::disallowed_methods)] // each test takes one origin `Instant::now()`

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use kube_proto::workqueue::{Next, Outcome, WorkQueue, WorkQueueConfig};
use proptest::prelude::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn run<T: Ord + Clone + std::fmt::Debug>(q: &mut WorkQueue<T>, now: Instant) -> T {
    match q.poll(now) {
        Next::Run { key, .. } => key,
        other => panic!("expected a key to run, got {other:?}"),
    }
}

#[test]
fn a_key_scheduled_twice_is_pending_once_at_its_earliest_due_time() {
    let t0 = Instant::now();
    let mut q = WorkQueue::new(WorkQueueConfig::default(), t0);
    q.schedule(t0, "a", ms(500));
    q.schedule(t0, "a", ms(100));
    q.schedule(t0, "a", ms(900));
    assert_eq!(q.len(), 1);
    assert_eq!(q.due(&"a"), Some(t0 + ms(100)));
    assert_eq!(q.poll(t0), Next::Wait { until: t0 + ms(100) });
    assert_eq!(q.poll(t0 + ms(150)), Next::Run { key: "a", waited: ms(50) });
    assert_eq!(q.poll(t0 + ms(150)), Next::Idle);
}

#[test]
fn keys_run_in_due_order_then_arrival_order() {
    let t0 = Instant::now();
    let mut q = WorkQueue::new(WorkQueueConfig::default(), t0);
    q.schedule(t0, "late", ms(10));
    q.schedule(t0, "b", ms(0));
    q.schedule(t0, "a", ms(0));
    let now = t0 + ms(10);
    assert_eq!([run(&mut q, now), run(&mut q, now), run(&mut q, now)], ["b", "a", "late"]);
}

#[test]
fn a_running_key_is_not_handed_out_and_a_change_meanwhile_queues_it_after() {
    let t0 = Instant::now();
    let mut q = WorkQueue::new(WorkQueueConfig::default(), t0);
    q.schedule(t0, "a", ms(0));
    assert_eq!(run(&mut q, t0), "a");
    q.schedule(t0, "a", ms(0));
    assert!(q.is_running(&"a"));
    assert_eq!(q.poll(t0 + ms(1)), Next::Idle, "not while it runs");
    q.finish(t0 + ms(5), &"a", Outcome::AwaitChange);
    assert_eq!(q.poll(t0 + ms(5)), Next::Run { key: "a", waited: ms(5) }, "the change is not lost");
    q.finish(t0 + ms(6), &"a", Outcome::AwaitChange);
    assert_eq!(q.poll(t0 + ms(6)), Next::Idle);
}

#[test]
fn requeue_after_runs_the_key_again_later_unless_a_change_comes_first() {
    let t0 = Instant::now();
    let mut q = WorkQueue::new(WorkQueueConfig::default(), t0);
    q.schedule(t0, "a", ms(0));
    run(&mut q, t0);
    q.finish(t0, &"a", Outcome::Requeue(Duration::from_secs(300)));
    assert_eq!(q.poll(t0), Next::Wait { until: t0 + Duration::from_secs(300) });
    q.schedule(t0 + ms(10), "a", ms(0));
    assert_eq!(run(&mut q, t0 + ms(10)), "a");
}

#[test]
fn failures_back_off_exponentially_per_key_up_to_the_cap_and_a_success_resets() {
    let t0 = Instant::now();
    let config = WorkQueueConfig { retry_rate: 0.0, ..WorkQueueConfig::default() };
    let mut q = WorkQueue::new(config, t0);
    q.schedule(t0, "a", ms(0));
    let mut now = t0;
    let mut delays = Vec::new();
    for _ in 0..20 {
        run(&mut q, now);
        q.finish(now, &"a", Outcome::Failed);
        let due = q.due(&"a").unwrap();
        delays.push(due - now);
        now = due;
    }
    assert_eq!(delays[..4], [ms(5), ms(10), ms(20), ms(40)]);
    assert_eq!(delays[17], ms(5 << 17).min(Duration::from_secs(1000)));
    assert_eq!(*delays.last().unwrap(), Duration::from_secs(1000), "capped");
    run(&mut q, now);
    q.finish(now, &"a", Outcome::Requeue(ms(0)));
    run(&mut q, now);
    q.finish(now, &"a", Outcome::Failed);
    assert_eq!(q.due(&"a"), Some(now + ms(5)), "reset by the success");
    // Another key's failures are its own.
    q.schedule(now, "b", ms(0));
    run(&mut q, now);
    q.finish(now, &"b", Outcome::Failed);
    assert_eq!(q.due(&"b"), Some(now + ms(5)));
}

/// Polls at `now` until the queue waits: the keys handed out, and the wait.
fn run_all<T: Ord + Clone + std::fmt::Debug>(q: &mut WorkQueue<T>, now: Instant) -> (Vec<T>, Next<T>) {
    let mut ran = Vec::new();
    loop {
        match q.poll(now) {
            Next::Run { key, .. } => ran.push(key),
            other => return (ran, other),
        }
    }
}

fn wait_until<T: std::fmt::Debug>(next: Next<T>) -> Instant {
    match next {
        Next::Wait { until } => until,
        other => panic!("expected a wait, got {other:?}"),
    }
}

#[test]
fn retries_are_rate_limited_overall_by_a_token_bucket_of_10_per_second_burst_100() {
    let t0 = Instant::now();
    let mut q = WorkQueue::new(WorkQueueConfig { concurrency: 1000, ..WorkQueueConfig::default() }, t0);
    for k in 0..150u32 {
        q.schedule(t0, k, ms(0));
    }
    assert_eq!(run_all(&mut q, t0).0.len(), 150, "changes take no tokens");
    for k in 0..150u32 {
        q.finish(t0, &k, Outcome::Failed);
    }
    assert_eq!(q.due(&149), Some(t0 + ms(5)), "each key's own backoff");
    let (ran, next) = run_all(&mut q, t0 + ms(5));
    assert_eq!(ran, (0..100).collect::<Vec<_>>(), "the burst, in the order the retries became due");
    let until = wait_until(next);
    assert!(until >= t0 + ms(105) && until < t0 + ms(106), "past the burst: one more token every 100 ms: {until:?}");
    // Then one retry each 100 ms, no more: 20 in the next two seconds.
    let mut now = until;
    let mut ran = 0;
    while now < t0 + ms(2006) {
        let (r, next) = run_all(&mut q, now);
        ran += r.len();
        now = wait_until(next);
    }
    assert_eq!(ran, 20);
    // The bucket refills with time.
    let later = t0 + Duration::from_secs(60);
    assert_eq!(run_all(&mut q, later).0.len(), 30);
    for k in 0..150u32 {
        q.finish(later, &k, Outcome::Failed);
    }
    assert_eq!(
        run_all(&mut q, later + Duration::from_secs(60)).0.len(),
        100,
        "full again, and never more than the burst"
    );
}

#[test]
fn an_error_policy_delay_replaces_the_backoff_and_the_retry_still_waits_for_a_token() {
    let t0 = Instant::now();
    let config = WorkQueueConfig { retry_burst: 1, concurrency: 10, ..WorkQueueConfig::default() };
    let mut q = WorkQueue::new(config, t0);
    for k in ["a", "b"] {
        q.schedule(t0, k, ms(0));
        run(&mut q, t0);
    }
    q.finish(t0, &"a", Outcome::FailedRequeue(ms(30)));
    q.finish(t0, &"b", Outcome::FailedRequeue(ms(30)));
    assert_eq!(q.due(&"a"), Some(t0 + ms(30)));
    assert_eq!(q.due(&"b"), Some(t0 + ms(30)));
    assert_eq!(q.poll(t0 + ms(29)), Next::Wait { until: t0 + ms(30) });
    let (ran, next) = run_all(&mut q, t0 + ms(30));
    assert_eq!(ran, ["a"]);
    let until = wait_until(next);
    assert!(until >= t0 + ms(130) && until < t0 + ms(131), "the second token comes 100 ms later: {until:?}");
    assert_eq!(q.poll(until), Next::Run { key: "b", waited: until - (t0 + ms(30)) });
}

#[test]
fn a_change_runs_a_retry_waiting_for_a_token_at_once_and_takes_no_token() {
    let t0 = Instant::now();
    let config = WorkQueueConfig { retry_burst: 1, retry_rate: 1.0, concurrency: 10, ..WorkQueueConfig::default() };
    let mut q = WorkQueue::new(config, t0);
    for k in ["a", "b"] {
        q.schedule(t0, k, ms(0));
        run(&mut q, t0);
        q.finish(t0, &k, Outcome::Failed);
    }
    assert_eq!(run_all(&mut q, t0 + ms(5)).0, ["a"], "one token");
    q.schedule(t0 + ms(6), "b", ms(0));
    assert_eq!(run_all(&mut q, t0 + ms(6)).0, ["b"], "a change does not wait for the bucket");
    q.finish(t0 + ms(6), &"a", Outcome::Failed);
    let (ran, next) = run_all(&mut q, t0 + ms(20));
    assert!(ran.is_empty());
    assert!(wait_until(next) >= t0 + ms(1005), "the change took no token: the next one comes 1 s after the first");
    // A change while a key runs also makes its next run a change's.
    q.schedule(t0 + ms(30), "b", ms(0));
    q.finish(t0 + ms(30), &"b", Outcome::Failed);
    assert_eq!(run_all(&mut q, t0 + ms(30)).0, ["b"]);
}

#[test]
fn at_most_concurrency_keys_run_at_once() {
    let t0 = Instant::now();
    let mut q = WorkQueue::new(WorkQueueConfig { concurrency: 2, ..WorkQueueConfig::default() }, t0);
    for k in ["a", "b", "c"] {
        q.schedule(t0, k, ms(0));
    }
    assert_eq!([run(&mut q, t0), run(&mut q, t0)], ["a", "b"]);
    assert_eq!(q.poll(t0), Next::Idle, "c waits for a slot");
    assert_eq!(q.running(), 2);
    q.finish(t0 + ms(3), &"b", Outcome::AwaitChange);
    assert_eq!(q.poll(t0 + ms(3)), Next::Run { key: "c", waited: ms(3) });
}

#[test]
fn a_forgotten_key_is_not_run_and_its_failures_are_reset() {
    let t0 = Instant::now();
    let mut q = WorkQueue::new(WorkQueueConfig::default(), t0);
    q.schedule(t0, "a", ms(10));
    q.forget(&"a");
    assert_eq!(q.poll(t0 + ms(20)), Next::Idle);
    q.schedule(t0, "a", ms(0));
    run(&mut q, t0);
    q.finish(t0, &"a", Outcome::Failed);
    run(&mut q, t0 + ms(5));
    q.finish(t0 + ms(5), &"a", Outcome::Failed);
    q.forget(&"a");
    q.schedule(t0 + ms(5), "a", ms(0));
    run(&mut q, t0 + ms(5));
    q.finish(t0 + ms(5), &"a", Outcome::Failed);
    assert_eq!(q.due(&"a"), Some(t0 + ms(10)), "the first failure again");
    // Finishing a key that is not running changes nothing.
    q.finish(t0, &"zzz", Outcome::Failed);
    assert_eq!(q.len(), 1);
}

#[derive(Debug, Clone)]
enum Op {
    Schedule(u8, u16),
    Poll,
    Finish(u8, u8),
    Advance(u16),
    Forget(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..6, 0u16..200).prop_map(|(k, d)| Op::Schedule(k, d)),
        4 => Just(Op::Poll),
        3 => (0u8..6, 0u8..4).prop_map(|(k, o)| Op::Finish(k, o)),
        2 => (0u16..300).prop_map(Op::Advance),
        1 => (0u8..6).prop_map(Op::Forget),
    ]
}

/// Runs `ops` against a queue with a small bucket; returns when each retry (a run after a
/// failure with no change since) started, as the model sees them.
fn retry_starts(q: &mut WorkQueue<u8>, t0: Instant, ops: &[Op]) -> Vec<Instant> {
    let mut now = t0;
    let mut running = BTreeSet::new();
    let mut changed_while_running = BTreeSet::new();
    let mut retry = BTreeSet::new();
    let mut starts = Vec::new();
    let mut drain = |q: &mut WorkQueue<u8>, now: Instant, running: &mut BTreeSet<u8>, retry: &mut BTreeSet<u8>| {
        while let Next::Run { key, .. } = q.poll(now) {
            running.insert(key);
            if retry.remove(&key) {
                starts.push(now);
            }
        }
    };
    for op in ops {
        match *op {
            Op::Schedule(k, d) => {
                q.schedule(now, k, ms(u64::from(d)));
                retry.remove(&k);
                if running.contains(&k) {
                    changed_while_running.insert(k);
                }
            }
            Op::Poll => drain(q, now, &mut running, &mut retry),
            Op::Finish(k, o) => {
                if running.remove(&k) {
                    let outcome = [
                        Outcome::AwaitChange,
                        Outcome::Requeue(ms(50)),
                        Outcome::Failed,
                        Outcome::FailedRequeue(ms(20)),
                    ][usize::from(o)];
                    q.finish(now, &k, outcome);
                    let failed = matches!(outcome, Outcome::Failed | Outcome::FailedRequeue(_));
                    if failed && !changed_while_running.contains(&k) {
                        retry.insert(k);
                    }
                    changed_while_running.remove(&k);
                }
            }
            Op::Advance(d) => now += ms(u64::from(d)),
            Op::Forget(k) => {
                q.forget(&k);
                retry.remove(&k);
                changed_while_running.remove(&k);
            }
        }
    }
    // Quiescence: every retry left runs.
    for _ in 0..1000 {
        for k in std::mem::take(&mut running) {
            q.finish(now, &k, Outcome::AwaitChange);
        }
        drain(q, now, &mut running, &mut retry);
        match q.poll(now) {
            Next::Wait { until } => now = until,
            Next::Idle if running.is_empty() => break,
            _ => {}
        }
    }
    starts
}

proptest! {
    /// The overall bucket limits when retries start: in any window, at most the burst plus the
    /// rate times its length, whatever the backoffs and the concurrency bound do.
    #[test]
    fn retry_starts_in_any_window_stay_within_the_bucket(
        ops in proptest::collection::vec(op(), 1..300),
        concurrency in 1usize..4,
        burst in 1u32..4,
        rate in prop_oneof![Just(2.0), Just(10.0), Just(50.0)],
    ) {
        let t0 = Instant::now();
        let config = WorkQueueConfig {
            concurrency, retry_burst: burst, retry_rate: rate, failure_base: ms(1), ..WorkQueueConfig::default()
        };
        let mut q = WorkQueue::new(config, t0);
        let starts = retry_starts(&mut q, t0, &ops);
        prop_assert!(q.is_empty(), "every retry ran");
        for (i, from) in starts.iter().enumerate() {
            for (j, to) in starts.iter().enumerate().skip(i) {
                let allowed = f64::from(burst) + rate * (*to - *from).as_secs_f64();
                let n = j - i + 1;
                prop_assert!(
                    n as f64 <= allowed + 1e-9, "{n} retries within {:?}, the bucket allows {allowed}", *to - *from
                );
            }
        }
    }

    /// Against a model: a key is never handed out while it runs, never before it is due, at
    /// most `concurrency` run at once, and once inputs stop every pending key runs.
    #[test]
    fn the_queue_keeps_its_rules_under_any_sequence(ops in proptest::collection::vec(op(), 1..200), concurrency in 1usize..4) {
        let t0 = Instant::now();
        let mut q = WorkQueue::new(WorkQueueConfig { concurrency, ..WorkQueueConfig::default() }, t0);
        let mut now = t0;
        let mut running: BTreeSet<u8> = BTreeSet::new();
        let mut wanted: BTreeMap<u8, Instant> = BTreeMap::new(); // earliest due asked for, per key
        for op in ops {
            match op {
                Op::Schedule(k, d) => {
                    q.schedule(now, k, ms(u64::from(d)));
                    let due = now + ms(u64::from(d));
                    wanted.entry(k).and_modify(|t| *t = (*t).min(due)).or_insert(due);
                }
                Op::Poll => loop {
                    match q.poll(now) {
                        Next::Run { key, .. } => {
                            prop_assert!(running.insert(key), "{key} handed out while running");
                            prop_assert!(running.len() <= concurrency);
                            if let Some(due) = wanted.get(&key) {
                                prop_assert!(*due <= now, "{key} ran before it was due");
                            }
                            wanted.remove(&key);
                        }
                        Next::Wait { until } => { prop_assert!(until > now); break }
                        Next::Idle => break,
                    }
                },
                Op::Finish(k, o) => {
                    if running.remove(&k) {
                        let outcome = [Outcome::AwaitChange, Outcome::Requeue(ms(50)), Outcome::Failed, Outcome::FailedRequeue(ms(20))][usize::from(o)];
                        q.finish(now, &k, outcome);
                        if let Some(due) = q.due(&k) {
                            wanted.entry(k).and_modify(|t| *t = (*t).min(due)).or_insert(due);
                        }
                    }
                }
                Op::Advance(d) => now += ms(u64::from(d)),
                Op::Forget(k) => {
                    // Gone: neither pending nor queued again after a running reconcile.
                    q.forget(&k);
                    wanted.remove(&k);
                }
            }
            prop_assert_eq!(q.running(), running.len());
        }
        // Quiescence: finish what runs, then every pending key runs once time moves on.
        for k in std::mem::take(&mut running) {
            q.finish(now, &k, Outcome::AwaitChange);
        }
        let mut ran = BTreeSet::new();
        for _ in 0..100 {
            match q.poll(now) {
                Next::Run { key, .. } => { ran.insert(key); q.finish(now, &key, Outcome::AwaitChange); }
                Next::Wait { until } => now = until,
                Next::Idle => break,
            }
        }
        prop_assert!(q.is_empty() && q.running() == 0);
        for k in wanted.keys() {
            prop_assert!(ran.contains(k), "{k} was scheduled but never ran");
        }
    }
}
