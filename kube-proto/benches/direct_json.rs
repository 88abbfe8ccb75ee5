//! The direct JSON decoders (`kube_proto::direct_json`, which the watch decoder uses for the
//! built-in kinds) against the serde path they replace, per ~5 KiB Pod `MODIFIED` event of the
//! benchmark stream (10,000 events; lines pre-split, UTF-8 validated in every contender):
//!
//! - `serde`: `serde_json::from_str::<WatchEvent<Pod>>`, what `parse_line` did before;
//! - `serde_compact`: `kube_proto::compact::from_str`, serde with exact capacities;
//! - `direct`: `kube_proto::watch::parse_line`, which now reads the line directly.
//!
//! and per list of 500 such Pods (`PodList`, ~2.6 MB): `list_serde`, `serde_json` into an
//! `ObjectList<Pod>`, against `list_direct`, `Response::list`, which reads the items directly.
//!
//! Run with `cargo bench -p kube-proto --bench direct_json -- --warm-up-time 1 --measurement-time 10`.
#![forbid(unsafe_code)]

use std::hint::black_box;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use kube_proto::{ObjectList, Response, WatchEvent};

#[allow(dead_code)]
mod data;
use data::{EVENTS, Stream};

fn lines(s: &Stream) -> impl Iterator<Item = &str> {
    s.lines.iter().map(|&(b, e)| std::str::from_utf8(&s.body[b..e]).unwrap())
}

fn serde(s: &Stream, mut sink: impl FnMut(WatchEvent<Pod>)) {
    for line in lines(s) {
        sink(serde_json::from_str(line).unwrap());
    }
}

fn serde_compact(s: &Stream, mut sink: impl FnMut(WatchEvent<Pod>)) {
    for line in lines(s) {
        sink(kube_proto::compact::from_str(line).unwrap());
    }
}

fn direct(s: &Stream, mut sink: impl FnMut(WatchEvent<Pod>)) {
    for (n, &(b, e)) in s.lines.iter().enumerate() {
        sink(kube_proto::watch::parse_line(&s.body[b..e], n as u64 + 1).unwrap());
    }
}

fn watch_event(c: &mut Criterion) {
    let s = data::watch_stream();
    assert!(kube_proto::direct_json::supports::<Pod>());
    // The same events either way.
    let mut a = Vec::new();
    serde(&s, |e| a.push(e));
    let mut i = 0;
    direct(&s, |e| {
        assert_eq!(e, a[i]);
        i += 1;
    });
    assert_eq!(i, EVENTS);
    drop(a);

    let mut g = c.benchmark_group("direct_json");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.bench_function("serde", |b| b.iter(|| serde(black_box(&s), |e| drop(black_box(e)))));
    g.bench_function("serde_compact", |b| b.iter(|| serde_compact(black_box(&s), |e| drop(black_box(e)))));
    g.bench_function("direct", |b| b.iter(|| direct(black_box(&s), |e| drop(black_box(e)))));
    g.finish();
}

fn list(c: &mut Criterion) {
    let items: Vec<_> = (0..500).map(|i| serde_json::to_value(data::pod(i, true)).unwrap()).collect();
    let body = serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}, "items": items})
        .to_string();
    let headers = http::HeaderMap::new();
    let resp = Response::new(http::StatusCode::OK, &headers, body.as_bytes());
    let serde = |b: &str| serde_json::from_str::<ObjectList<Pod>>(std::str::from_utf8(b.as_bytes()).unwrap()).unwrap();
    assert_eq!(resp.list::<Pod>().unwrap(), serde(&body));
    // Read directly: exact capacities (serde leaves room).
    let env = |p: &Pod| p.spec.as_ref().unwrap().containers[0].env.as_ref().map(|e| e.capacity() == e.len());
    assert_eq!(env(&resp.list::<Pod>().unwrap().items[0]), Some(true));
    assert_eq!(env(&serde(&body).items[0]), Some(false));
    for item in &items {
        assert!(kube_proto::direct_json::direct::<Pod>(&item.to_string()).is_some(), "read directly");
    }
    let mut g = c.benchmark_group("direct_json_list");
    g.throughput(Throughput::Elements(500));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.bench_function("list_serde", |b| b.iter(|| drop(black_box(serde(black_box(&body))))));
    g.bench_function("list_direct", |b| b.iter(|| drop(black_box(black_box(&resp).list::<Pod>().unwrap()))));
    g.finish();
}

criterion_group!(benches, watch_event, list);
criterion_main!(benches);
