//! The allocations of each watch decoder that `core`'s `watch_decode` times, over the same
//! 10,000-event stream in the same 16 KiB chunks: allocations and bytes allocated per event, and
//! the peak live heap. Informational: it only prints.
//!
//! It is a binary of its own so that `core` times everything on the plain system allocator:
//! counting needs an instrumented global allocator (`stats_alloc`'s, so that this code stays safe
//! Rust), and its atomic bookkeeping on every allocation and free would slow `core`'s measurements
//! (`list_request/ours` by about 60%) and narrow the gaps between the contenders.
//!
//! Run with `cargo bench -p kube-proto --bench core_alloc`.
#![forbid(unsafe_code)]

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

mod data;
mod decoders;
use data::{CHUNK, EVENTS};
use decoders::{kube_core_from_slice, kube_core_from_str, ours_decode, pod_from_slice};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations (reallocations included), bytes allocated (a reallocation counts what it grew by)
/// and peak live heap (relative to the start) while `run` decodes; `run` hands each event to the
/// sink it is given. The peak is taken with each event in hand, as it reaches the sink, and at the
/// end; what a decoder allocates and frees again between two events is not seen. Nothing else runs
/// meanwhile, so the global counts are the decoder's.
fn count_allocations<E>(run: impl FnOnce(&mut dyn FnMut(E))) -> (usize, usize, isize) {
    let region = Region::new(GLOBAL);
    let live = || {
        let change = region.change();
        change.bytes_allocated as isize - change.bytes_deallocated as isize
    };
    let (mut events, mut peak) = (0, 0);
    run(&mut |event| {
        peak = peak.max(live());
        events += 1;
        drop(event);
    });
    assert_eq!(events, EVENTS);
    let change = region.change();
    (change.allocations + change.reallocations, change.bytes_allocated, peak.max(live()))
}

fn main() {
    let s = data::watch_stream();
    eprintln!("watch_decode: {EVENTS} events, {} bytes, {CHUNK}-byte chunks", s.body.len());
    let per_event = |(allocs, bytes, peak): (usize, usize, isize), what: &str| {
        eprintln!(
            "memory: {what:<28} {:>6.1} allocations/event, {:>6} bytes allocated/event, peak live heap {:>7} bytes",
            allocs as f64 / EVENTS as f64,
            bytes / EVENTS,
            peak
        );
    };
    per_event(count_allocations(|sink| ours_decode(&s.body, sink)), "ours (WatchDecoder, 16 KiB)");
    per_event(count_allocations(|sink| kube_core_from_slice(&s, sink)), "kube-core from_slice/line");
    per_event(count_allocations(|sink| kube_core_from_str(&s, sink)), "kube-core from_str/line");
    per_event(count_allocations(|sink| pod_from_slice(&s, sink)), "Pod from_slice/object");
}
