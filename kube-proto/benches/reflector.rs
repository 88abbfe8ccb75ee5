//! Reflector throughput: the watcher alone against the watcher feeding our store, in one
//! criterion group so that the ratio comes from one run; and our store against kube-rs's
//! reflector store (`kube-runtime` 5's `store::Writer`) fed the same pre-decoded events.
//!
//! Data: `PODS` Pods of `data` (~5 KiB of JSON each, ~9 KiB with the `managedFields` of three
//! writers), listed, then `EVENTS` MODIFIED events of them, fed in 16 KiB chunks. Throughput is in
//! events (list items plus watch events).
//!
//! - `watcher`: a fresh `Watcher<Pod>` fed the list and the watch; every event dropped at once.
//! - `watcher+store`: the same, every event applied to a fresh `kube_proto::store::Store` (the
//!   built-in namespace, label and owner indexes), the store dropped at the end.
//! - `watcher+store_drop_managed_fields`: the same with the managedFields transform.
//! - `watcher+store_recycling`: `watcher+store`, each object an event replaces handed back to the
//!   watcher (`Store::apply_retiring`, `Watcher::recycle`), which decodes the next event over it,
//!   as `kube_runtime`'s `Writer::recycler` and `watcher_with` do.
//! - `store_predecoded/ours`, `store_predecoded/kube_rs`: the decoded events (cloned outside the
//!   timing) applied to our store (moved in) and to kube-rs's `Writer::apply_watcher_event` (which
//!   takes a reference and clones each object into its store).
//!
//! Run with `cargo bench -p kube-proto --bench reflector -- --warm-up-time 1 --measurement-time 5`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use k8s_openapi::api::core::v1::Pod;
use kube_proto::store::{Store, StoreConfig};

#[allow(dead_code)]
mod data;
mod reflector_support;
use reflector_support::{bodies, decoded, run_watcher, run_watcher_recycling, to_kube_rs};

const PODS: usize = 5_000;
const EVENTS: usize = 10_000;

fn reflector(c: &mut Criterion) {
    let (list, watch) = bodies(PODS, EVENTS);
    eprintln!("reflector: {PODS} pods ({} bytes listed), {EVENTS} events ({} bytes)", list.len(), watch.len());
    let mut g = c.benchmark_group("reflector");
    g.sampling_mode(SamplingMode::Flat).sample_size(10).throughput(Throughput::Elements((PODS + EVENTS) as u64));
    g.bench_function("watcher", |b| b.iter(|| run_watcher(&list, &watch, |ev| drop(black_box(ev)))));
    g.bench_function("watcher+store", |b| {
        b.iter(|| {
            let mut store = Store::<Pod>::new(StoreConfig::default(), ());
            run_watcher(&list, &watch, |ev| drop(black_box(store.apply(ev))));
            assert_eq!(store.len(), PODS);
        })
    });
    g.bench_function("watcher+store_recycling", |b| {
        b.iter(|| {
            let mut store = Store::<Pod>::new(StoreConfig::default(), ());
            let mut retired = Vec::new();
            run_watcher_recycling(&list, &watch, |ev| {
                drop(black_box(store.apply_retiring(ev, &mut retired)));
                retired.drain(..).filter_map(|old| Arc::try_unwrap(old).ok()).next_back()
            });
            assert_eq!(store.len(), PODS);
        })
    });
    g.bench_function("watcher+store_drop_managed_fields", |b| {
        b.iter(|| {
            let mut store = Store::<Pod>::new(StoreConfig::default().drop_managed_fields(), ());
            run_watcher(&list, &watch, |ev| drop(black_box(store.apply(ev))));
            assert_eq!(store.len(), PODS);
        })
    });
    let events = decoded(&list, &watch);
    let theirs = to_kube_rs(&events);
    g.bench_function("store_predecoded/ours", |b| {
        b.iter_batched(
            || events.clone(),
            |events| {
                let mut store = Store::<Pod>::new(StoreConfig::default(), ());
                for ev in events {
                    drop(black_box(store.apply(ev)));
                }
                store
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("store_predecoded/kube_rs", |b| {
        b.iter_batched(
            || theirs.clone(),
            |events| {
                let mut writer = kube_rs_runtime::reflector::store::Writer::<Pod>::default();
                for ev in &events {
                    writer.apply_watcher_event(ev);
                }
                (writer, events)
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, reflector);
criterion_main!(benches);
