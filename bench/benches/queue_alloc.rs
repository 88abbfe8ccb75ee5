//! Controller queue memory, side by side: the live heap per object of our work queue
//! (`kube_proto::workqueue::WorkQueue`, keyed by `ObjectRef<Pod>`) and of kube-rs 5's
//! `kube::runtime::scheduler` (the queue under its `Controller`, keyed by its own
//! `ObjectRef<Pod>`), each holding 10,000 distinct Pods scheduled an hour ahead, counted by an
//! instrumented global allocator. kube-rs's scheduler runs on tokio (its `DelayQueue` arms tokio
//! timers), so it is measured inside a tokio runtime; the runtime is built before counting starts.
//! The keys are built inside the counted region: the queues own them.
//!
//! Run with `cargo bench -p kube-bench --bench queue_alloc`.
#![forbid(unsafe_code)]
#![allow(clippy::disallowed_methods)] // Instant::now: a benchmark

use std::alloc::System;
use std::pin::pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube_proto::store::ObjectRef;
use kube_proto::workqueue::{WorkQueue, WorkQueueConfig};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const OBJECTS: usize = 10_000;

fn live(region: &Region<'_, System>) -> isize {
    let c = region.change();
    c.bytes_allocated as isize - c.bytes_deallocated as isize
}

/// A Deployment's Pod name: `web-frontend-5d8c7b9f4-` and five characters made from `i`.
fn name(i: usize) -> String {
    format!("web-frontend-5d8c7b9f4-{:05x}", i)
}

fn ours() -> isize {
    let now = Instant::now();
    let region = Region::new(GLOBAL);
    let mut queue = WorkQueue::new(WorkQueueConfig::default(), now);
    for i in 0..OBJECTS {
        queue.schedule(now, ObjectRef::<Pod>::new(&name(i)).within("default"), Duration::from_secs(3600));
    }
    assert_eq!(queue.len(), OBJECTS);
    let held = live(&region);
    drop(queue);
    held
}

fn theirs() -> isize {
    use kube::runtime::reflector::ObjectRef as KubeRef;
    use kube::runtime::scheduler::{ScheduleRequest, scheduler};
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime");
    rt.block_on(async {
        let run_at = tokio::time::Instant::now() + Duration::from_secs(3600);
        let region = Region::new(GLOBAL);
        // Made as the scheduler takes them in (no list of requests held beside it).
        let requests = (0..OBJECTS)
            .map(move |i| ScheduleRequest { message: KubeRef::<Pod>::new(&name(i)).within("default"), run_at });
        let mut scheduler =
            pin!(scheduler(futures_util::stream::iter(requests).chain(futures_util::stream::pending())));
        // One poll takes every request in; none is due for an hour.
        let waker = futures_util::task::noop_waker();
        let polled = scheduler.as_mut().poll_next(&mut Context::from_waker(&waker));
        assert!(matches!(polled, Poll::Pending), "nothing is due yet");
        // Every request taken in: at least a key's name per object is held.
        let held = live(&region);
        assert!(held > (OBJECTS * name(0).len()) as isize, "the scheduler took the requests in");
        held
    })
}

fn main() {
    let (ours, theirs) = (ours(), theirs());
    let per = |b: isize| b as f64 / OBJECTS as f64;
    eprintln!(
        "queue_alloc: {OBJECTS} Pods pending: ours {:.0} bytes/object, kube-rs 5 scheduler {:.0} bytes/object, ratio {:.2}",
        per(ours),
        per(theirs),
        ours as f64 / theirs as f64
    );
}
