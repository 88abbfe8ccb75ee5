//! The work queue's rules, as controller-runtime's queue and rate limiters have them: pending
//! keys are deduplicated at their earliest due time, a key is never handed out while it runs,
//! failures back off per key (5 ms doubling to 1000 s, reset by a success) and overall (a token
//! bucket of 10 per second, bursts of 100), requeue-after, and a concurrency bound. Time is an
//! argument: every test picks its own origin.

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

#[test]
fn retries_are_rate_limited_overall_by_a_token_bucket_of_10_per_second_burst_100() {
    let t0 = Instant::now();
    let mut q = WorkQueue::new(WorkQueueConfig { concurrency: 1000, ..WorkQueueConfig::default() }, t0);
    for k in 0..150u32 {
        q.schedule(t0, k, ms(0));
    }
    for _ in 0..150 {
        run(&mut q, t0);
    }
    for k in 0..150u32 {
        q.finish(t0, &k, Outcome::Failed);
    }
    let delay = |k: u32| q.due(&k).unwrap() - t0;
    assert_eq!(delay(0), ms(5), "within the burst: the key's own backoff");
    assert_eq!(delay(99), ms(5));
    assert_eq!(delay(100), ms(100), "past the burst: one more token every 100 ms");
    assert_eq!(delay(149), ms(5000));
    // The bucket refills with time.
    let later = t0 + Duration::from_secs(60);
    q.schedule(later, 1000, ms(0));
    let due = q.due(&0).unwrap();
    assert!(due < later);
    for _ in 0..151 {
        let _ = q.poll(later);
    }
    q.finish(later, &1000, Outcome::Failed);
    assert_eq!(q.due(&1000), Some(later + ms(5)));
}

#[test]
fn an_error_policy_delay_is_kept_but_not_sooner_than_the_bucket_allows() {
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
    assert_eq!(q.due(&"b"), Some(t0 + ms(100)), "the second token comes 100 ms later");
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

proptest! {
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
