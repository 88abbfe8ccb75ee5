//! Work queue memory, counted by an instrumented global allocator (`stats_alloc`): the live heap
//! our [`WorkQueue`] holds per object with 10,000 distinct `ObjectRef<Pod>` keys pending (all
//! due), then all handed out as running, then all finished (the queue empty again, its memory
//! given back). The keys are built inside the measured region, so their names and
//! namespaces count: the queue owns them. Informational: it prints, and fails only if scheduling a
//! pending key again grows the queue, the emptied queue keeps more than its B-trees' emptied
//! roots, or the dropped queue keeps anything.
//!
//! kube-rs 5's queue (`kube_runtime::scheduler`) is not measured here: it is a `Stream` over a
//! tokio-util `DelayQueue`, whose `insert_at` arms a `tokio::time::Sleep`, which panics outside
//! a tokio runtime with its time driver; this crate's benches have neither tokio nor futures.
//!
//! Run with `cargo bench -p kube-proto --bench workqueue_alloc`.
#![forbid(unsafe_code)]

use std::alloc::System;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube_proto::store::ObjectRef;
use kube_proto::workqueue::{Next, Outcome, WorkQueue, WorkQueueConfig};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const OBJECTS: usize = 10_000;

/// The most the empty queue may keep, whatever the number of objects it held: a B-tree keeps its
/// emptied root node until it is dropped, and the queue has four.
const EMPTY_SLACK: isize = 4096;

/// Bytes allocated minus bytes freed since `region` began.
fn live(region: &Region<'_, System>) -> isize {
    let c = region.change();
    c.bytes_allocated as isize - c.bytes_deallocated as isize
}

/// The characters of generated name suffixes, as Kubernetes picks them (no vowels, no 0, 1, 3).
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `len` characters of `ALPHABET` spelling `n` (its low digits in base 27).
fn suffix(mut n: u64, len: usize) -> String {
    let base = ALPHABET.len() as u64;
    (0..len)
        .map(|_| {
            let c = ALPHABET[(n % base) as usize] as char;
            n /= base;
            c
        })
        .collect()
}

/// The name of Pod `i`, like a Deployment's: `web-frontend-5d8c7b9f4-x2x7q`. Distinct for
/// `i < 27^5`: the last part is `i` times a number prime to 27, modulo 27^5.
fn pod_name(i: usize) -> String {
    const DEPLOYMENTS: [&str; 8] = [
        "web-frontend",
        "api-gateway",
        "payments-worker",
        "search-indexer",
        "auth",
        "checkout-service",
        "image-resizer",
        "notifications",
    ];
    let d = i % DEPLOYMENTS.len();
    let replicaset = suffix(0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(d as u64 + 1) >> 7, 9 + d % 2);
    let pod = suffix((i as u64 * 7919 + 12_345) % 27u64.pow(5), 5);
    format!("{}-{replicaset}-{pod}", DEPLOYMENTS[d])
}

/// The heap one reference owns (its name and namespace), as the allocator was asked for it.
fn key_heap(r: &ObjectRef<Pod>) -> usize {
    r.name.capacity() + r.namespace.as_ref().map_or(0, String::capacity)
}

#[allow(clippy::disallowed_methods)] // one instant; time stands still
fn main() {
    let now = Instant::now();
    let config = WorkQueueConfig { concurrency: OBJECTS, ..WorkQueueConfig::default() };
    let names: Vec<String> = (0..OBJECTS).map(pod_name).collect();
    assert_eq!(names.iter().collect::<BTreeSet<_>>().len(), OBJECTS, "the names are distinct");
    let name_bytes: usize = names.iter().map(String::len).sum();
    // Room for the handed-out keys, taken before the region: the caller's, not the queue's.
    let mut running: Vec<ObjectRef<Pod>> = Vec::with_capacity(OBJECTS);
    let key_size = std::mem::size_of::<ObjectRef<Pod>>();

    let region = Region::new(GLOBAL);
    let mut queue = WorkQueue::new(config, now);
    for name in &names {
        queue.schedule(now, ObjectRef::<Pod>::new(name).within("default"), Duration::ZERO);
    }
    assert_eq!(queue.len(), OBJECTS);
    let pending = live(&region);
    // Scheduling every key again is deduplicated and keeps nothing more.
    for name in &names {
        queue.schedule(now, ObjectRef::<Pod>::new(name).within("default"), Duration::ZERO);
    }
    assert_eq!(queue.len(), OBJECTS);
    let again = live(&region);

    while let Next::Run { key, .. } = queue.poll(now) {
        running.push(key);
    }
    assert_eq!((queue.len(), queue.running()), (0, OBJECTS), "every key is handed out");
    let held: usize = running.iter().map(key_heap).sum();
    let with_caller = live(&region);
    let in_queue = with_caller - held as isize;

    for key in running.drain(..) {
        queue.finish(now, &key, Outcome::AwaitChange);
    }
    assert_eq!((queue.len(), queue.running()), (0, 0));
    let done = live(&region);
    drop(queue);
    let dropped = live(&region);

    let n = OBJECTS as isize;
    let one_key = (key_size + held / OBJECTS) as f64;
    eprintln!(
        "workqueue_alloc: {OBJECTS} ObjectRef<Pod> keys in namespace \"default\", names of {} bytes on \
         average; one key is {key_size} bytes inline + {} on the heap",
        name_bytes / OBJECTS,
        held / OBJECTS
    );
    eprintln!(
        "memory: pending (due)          {:>4} bytes/object = {:.1}x one key (scheduled again: {:+} bytes in all)",
        pending / n,
        pending as f64 / n as f64 / one_key,
        again - pending
    );
    eprintln!(
        "memory: running (handed out)   {:>4} bytes/object in the queue = {:.1}x one key (+{} bytes/object: the \
         handed-out keys the caller holds)",
        in_queue / n,
        in_queue as f64 / n as f64 / one_key,
        held / OBJECTS
    );
    eprintln!("memory: completed (empty)      {done:>4} bytes in all; {dropped} once the queue is dropped");
    eprintln!(
        "kube-rs 5: not measured in process (its scheduler needs a tokio runtime with the time driver); \
         no ratio"
    );
    assert!(again <= pending, "scheduling pending keys again grew the queue by {} bytes", again - pending);
    assert!(done <= EMPTY_SLACK, "the empty queue still holds {done} bytes");
    assert!(dropped <= 0, "the dropped queue left {dropped} bytes");
}
