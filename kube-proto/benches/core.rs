//! Benchmarks of the protocol core against kube-rs's `kube-core` and plain `serde_json`, side by
//! side in one criterion group each so that ratios come from one run:
//!
//! - `list_request`: a namespaced LIST of Pods with a label selector and a limit.
//! - `apply_request`: a server-side apply PATCH of a ~4 KiB typed Pod.
//! - `watch_decode`: 10,000 ~5 KiB Pod `MODIFIED` events delivered in 16 KiB chunks.
//!
//! Run with `cargo bench -p kube-proto --bench core -- --warm-up-time 1 --measurement-time 3`.
//! The decoders' allocations are counted by `cargo bench -p kube-proto --bench core_alloc`: the
//! counting allocator lives there, so that these measurements run on the plain system allocator.
#![forbid(unsafe_code)]

use std::hint::black_box;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use kube_core::params as kc;
use kube_proto::{ListParams, Patch, PatchParams, Request, WatchEvent};

mod data;
mod decoders;
use data::{CHUNK, EVENTS, Stream};
use decoders::{kube_core_from_slice, kube_core_from_str, ours_decode, pod_from_slice};

// ---- The contenders (the watch decoders are in `decoders`, shared with `core_alloc`) ----

fn ours_list() -> http::Request<Vec<u8>> {
    Request::namespaced::<Pod>("default").list(&ListParams::default().labels("app=web").limit(500)).unwrap()
}

fn kube_core_list() -> http::Request<Vec<u8>> {
    let url_path = <Pod as kube_core::Resource>::url_path(&(), Some("default"));
    kube_core::Request::new(url_path).list(&kc::ListParams::default().labels("app=web").limit(500)).unwrap()
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
