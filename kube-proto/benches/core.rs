//! Benchmarks of the protocol core against kube-rs's `kube-core` and plain `serde_json`, side by
//! side in one criterion group each so that ratios come from one run:
//!
//! - `list_request`: a namespaced LIST of Pods with a label selector and a limit.
//! - `apply_request`: a server-side apply PATCH of a ~4 KiB typed Pod.
//! - `watch_decode`: 10,000 ~5 KiB Pod `MODIFIED` events delivered in 16 KiB chunks.
//!
//! Run with `cargo bench -p kube-proto --bench core -- --warm-up-time 1 --measurement-time 3`.
//! Before the watch measurements, a one-off allocation count of each watch decoder is printed
//! (the counting allocator is idle during the measurements).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering::Relaxed};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use kube_core::params as kc;
use kube_proto::{ListParams, Patch, PatchParams, Request, WatchDecoder, WatchEvent};

mod data;
use data::{CHUNK, EVENTS, Stream};

// ---- A counting allocator, active only while the one-off memory note is taken ----

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static ALLOC_BYTES: AtomicUsize = AtomicUsize::new(0);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(bytes: usize) {
    ALLOCS.fetch_add(1, Relaxed);
    ALLOC_BYTES.fetch_add(bytes, Relaxed);
    let live = LIVE.fetch_add(bytes as isize, Relaxed) + bytes as isize;
    PEAK.fetch_max(live, Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; the counters are side effects only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            grew(layout.size());
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Relaxed);
        }
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Relaxed);
            grew(new_size);
        }
        // SAFETY: forwarded with the caller's arguments.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations, bytes allocated and peak live heap (relative to the start) while `f` runs.
fn count_allocations(f: impl FnOnce()) -> (usize, usize, isize) {
    ALLOCS.store(0, Relaxed);
    ALLOC_BYTES.store(0, Relaxed);
    LIVE.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    f();
    COUNTING.store(false, Relaxed);
    (ALLOCS.load(Relaxed), ALLOC_BYTES.load(Relaxed), PEAK.load(Relaxed))
}

// ---- The contenders ----

fn ours_list() -> http::Request<Vec<u8>> {
    Request::namespaced::<Pod>("default").list(&ListParams::default().labels("app=web").limit(500)).unwrap()
}

fn kube_core_list() -> http::Request<Vec<u8>> {
    let url_path = <Pod as kube_core::Resource>::url_path(&(), Some("default"));
    kube_core::Request::new(url_path).list(&kc::ListParams::default().labels("app=web").limit(500)).unwrap()
}

/// Ours: the streaming decoder, fed the body in `CHUNK`-sized pieces.
fn ours_decode(body: &[u8], mut sink: impl FnMut(WatchEvent<Pod>)) {
    let mut decoder = WatchDecoder::<Pod>::new();
    for chunk in body.chunks(CHUNK) {
        decoder.push(chunk);
        while let Some(event) = decoder.next_event() {
            sink(event.unwrap());
        }
    }
    assert!(decoder.finish().is_none());
}

/// (a) What kube-rs does with each line: `serde_json::from_slice` (lines pre-split, for free).
fn kube_core_from_slice(s: &Stream, mut sink: impl FnMut(kube_core::WatchEvent<Pod>)) {
    for &(b, e) in &s.lines {
        sink(serde_json::from_slice(&s.body[b..e]).unwrap());
    }
}

/// (b) The best plain decode: validate UTF-8 once, parse as `str` (lines pre-split, for free).
fn kube_core_from_str(s: &Stream, mut sink: impl FnMut(kube_core::WatchEvent<Pod>)) {
    for &(b, e) in &s.lines {
        let text = std::str::from_utf8(&s.body[b..e]).unwrap();
        sink(serde_json::from_str(text).unwrap());
    }
}

/// (c) Just the objects, no event envelope: `serde_json::from_slice::<Pod>`.
fn pod_from_slice(s: &Stream, mut sink: impl FnMut(Pod)) {
    for &(b, e) in &s.objects {
        sink(serde_json::from_slice(&s.body[b..e]).unwrap());
    }
}

/// Ours without the streaming decoder: `parse_line` on the pre-split lines (diagnostic).
fn ours_parse_line(s: &Stream, mut sink: impl FnMut(WatchEvent<Pod>)) {
    for (n, &(b, e)) in s.lines.iter().enumerate() {
        sink(kube_proto::watch::parse_line(&s.body[b..e], n as u64 + 1).unwrap());
    }
}

// ---- Benchmarks ----

fn list_request(c: &mut Criterion) {
    let (ours, theirs) = (ours_list(), kube_core_list());
    assert_eq!(ours.uri(), "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb&limit=500");
    // kube-core 5 writes `?&labelSelector=...` (an empty first pair); the same query otherwise.
    assert_eq!(ours.uri().to_string(), theirs.uri().to_string().replace("?&", "?"));
    assert_eq!(ours.method(), theirs.method());

    let mut g = c.benchmark_group("list_request");
    g.bench_function("ours", |b| b.iter(|| black_box(ours_list())));
    g.bench_function("kube_core", |b| b.iter(|| black_box(kube_core_list())));
    // The request builder made once (as an `Api` holds it), the params and request per call.
    let pods = Request::namespaced::<Pod>("default");
    g.bench_function("ours_prebuilt", |b| {
        b.iter(|| black_box(black_box(&pods).list(&ListParams::default().labels("app=web").limit(500)).unwrap()))
    });
    let kpods = kube_core::Request::new(<Pod as kube_core::Resource>::url_path(&(), Some("default")));
    g.bench_function("kube_core_prebuilt", |b| {
        b.iter(|| black_box(black_box(&kpods).list(&kc::ListParams::default().labels("app=web").limit(500)).unwrap()))
    });
    g.finish();
}

fn apply_request(c: &mut Criterion) {
    let pod = data::pod(0, false);
    let name = pod.metadata.name.clone().unwrap();
    let size = serde_json::to_vec(&pod).unwrap().len();
    assert!((3584..=4608).contains(&size), "the apply Pod is {size} bytes, not ~4 KiB");

    let pods = Request::namespaced::<Pod>("default");
    let kpods = kube_core::Request::new(<Pod as kube_core::Resource>::url_path(&(), Some("default")));
    let ours = pods.patch(&name, &PatchParams::apply("bench").force(), &Patch::Apply(&pod)).unwrap();
    let theirs = kpods.patch(&name, &kc::PatchParams::apply("bench").force(), &kc::Patch::Apply(&pod)).unwrap();
    assert_eq!(ours.body(), theirs.body());
    assert_eq!(ours.body().len(), size);
    assert_eq!(ours.headers()["content-type"], theirs.headers()["content-type"]);
    eprintln!("apply_request: body {size} bytes; ours {}, kube-core {}", ours.uri(), theirs.uri());

    let mut g = c.benchmark_group("apply_request");
    g.throughput(Throughput::Bytes(size as u64));
    g.bench_function("ours", |b| {
        b.iter(|| {
            black_box(&pods)
                .patch(black_box(&name), &PatchParams::apply("bench").force(), &Patch::Apply(black_box(&pod)))
                .unwrap()
        })
    });
    g.bench_function("kube_core", |b| {
        b.iter(|| {
            black_box(&kpods)
                .patch(black_box(&name), &kc::PatchParams::apply("bench").force(), &kc::Patch::Apply(black_box(&pod)))
                .unwrap()
        })
    });
    // The floor: serialising the body alone.
    g.bench_function("serde_json_to_vec", |b| b.iter(|| serde_json::to_vec(black_box(&pod)).unwrap()));
    g.finish();
}

fn memory_note(s: &Stream) {
    let per_event = |(allocs, bytes, peak): (usize, usize, isize), what: &str| {
        eprintln!(
            "memory: {what:<28} {:>6.1} allocations/event, {:>6} bytes allocated/event, peak live heap {:>7} bytes",
            allocs as f64 / EVENTS as f64,
            bytes / EVENTS,
            peak
        );
    };
    per_event(count_allocations(|| ours_decode(&s.body, drop)), "ours (WatchDecoder, 16 KiB)");
    per_event(count_allocations(|| kube_core_from_slice(s, drop)), "kube-core from_slice/line");
    per_event(count_allocations(|| kube_core_from_str(s, drop)), "kube-core from_str/line");
    per_event(count_allocations(|| pod_from_slice(s, drop)), "Pod from_slice/object");
}

fn watch_decode(c: &mut Criterion) {
    let s = data::watch_stream();
    let avg = s.body.len() / EVENTS;
    let (min, max) = s.lines.iter().fold((usize::MAX, 0), |(lo, hi), &(b, e)| (lo.min(e - b), hi.max(e - b)));
    eprintln!(
        "watch_decode: {EVENTS} events, {} bytes ({avg} bytes/event, {min}..={max}), {CHUNK}-byte chunks",
        s.body.len()
    );
    assert!((4608..=5632).contains(&avg), "events are {avg} bytes, not ~5 KiB");

    // Every contender decodes every event to the same Pod.
    let mut ours = Vec::new();
    ours_decode(&s.body, |e| match e {
        WatchEvent::Modified(p) => ours.push(p),
        e => panic!("{}", e.type_name()),
    });
    assert_eq!(ours.len(), EVENTS);
    let mut i = 0;
    kube_core_from_slice(&s, |e| match e {
        kube_core::WatchEvent::Modified(p) => {
            assert_eq!(p, ours[i]);
            i += 1;
        }
        e => panic!("{e:?}"),
    });
    assert_eq!(i, EVENTS);
    assert_eq!(ours[EVENTS - 1], data::pod(EVENTS - 1, true));
    drop(ours);

    memory_note(&s);

    let mut g = c.benchmark_group("watch_decode");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.bench_function("ours", |b| b.iter(|| ours_decode(black_box(&s.body), |e| drop(black_box(e)))));
    g.bench_function("kube_core_from_slice", |b| {
        b.iter(|| kube_core_from_slice(black_box(&s), |e| drop(black_box(e))))
    });
    g.bench_function("kube_core_from_str", |b| b.iter(|| kube_core_from_str(black_box(&s), |e| drop(black_box(e)))));
    g.bench_function("pod_from_slice", |b| b.iter(|| pod_from_slice(black_box(&s), |p| drop(black_box(p)))));
    g.bench_function("ours_parse_line", |b| b.iter(|| ours_parse_line(black_box(&s), |e| drop(black_box(e)))));
    g.finish();
}

criterion_group!(benches, list_request, apply_request, watch_decode);
criterion_main!(benches);
