//! Store memory, counted by an instrumented global allocator (`stats_alloc`): the live heap a
//! store holds per Pod once the Pods are listed (steady), the most it holds during a full relist
//! of the same Pods (peak, with each listed object decoded as the watcher would), for our store
//! (with and without the managedFields transform, decoded from JSON or protobuf) and kube-rs's
//! reflector store. Informational:
//! it only prints.
//!
//! Run with `cargo bench -p kube-proto --bench reflector_alloc` (add `--features protobuf` for the
//! store fed from protobuf).
#![forbid(unsafe_code)]

use std::alloc::System;

use k8s_openapi::api::core::v1::Pod;
use kube_proto::store::{Store, StoreConfig};
use kube_proto::watcher::Event;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[allow(dead_code)]
mod data;
#[allow(dead_code)]
mod reflector_support;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PODS: usize = 20_000;

/// Bytes allocated minus bytes freed since `region` began.
fn live(region: &Region<'_, System>) -> isize {
    let c = region.change();
    c.bytes_allocated as isize - c.bytes_deallocated as isize
}

/// A sink fed `Init`, one `InitApply` per Pod (decoded from its JSON as it comes), `InitDone`.
trait Sink {
    fn feed(&mut self, ev: Event<Pod>);
}

impl Sink for Store<Pod> {
    fn feed(&mut self, ev: Event<Pod>) {
        drop(self.apply(ev));
    }
}

struct KubeRs(kube_rs_runtime::reflector::store::Writer<Pod>);

impl Sink for KubeRs {
    fn feed(&mut self, ev: Event<Pod>) {
        use kube_rs_runtime::watcher::Event as K;
        let ev = match ev {
            Event::Init => K::Init,
            Event::InitApply(p) => K::InitApply(p),
            Event::InitDone => K::InitDone,
            Event::Apply(p) => K::Apply(p),
            Event::Delete(p) => K::Delete(p),
        };
        self.0.apply_watcher_event(&ev);
    }
}

/// How each listed Pod is decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Decode {
    /// `kube_proto::direct_json`, as the watcher does by default for the built-in kinds.
    Json,
    /// Plain `serde_json` (what the watcher did before the direct decoder, and what kube-rs does).
    Serde,
    /// `kube_proto::compact` (`watcher::Config::compact()`).
    Compact,
    /// From protobuf (`Api::protobuf()`): `pods` holds protobuf bodies.
    #[cfg(feature = "protobuf")]
    Protobuf,
}

/// Lists `pods` into `sink` and returns (steady live heap, peak live heap during the relist),
/// relative to before the first list.
fn measure(mut sink: impl Sink, pods: &[Vec<u8>], decode: Decode) -> (isize, isize) {
    let region = Region::new(GLOBAL);
    let list = |sink: &mut dyn Sink, peak: &mut isize| {
        sink.feed(Event::Init);
        for body in pods {
            let pod: Pod = match decode {
                Decode::Json => {
                    kube_proto::direct_json::from_str(std::str::from_utf8(body).expect("UTF-8")).expect("a pod")
                }
                Decode::Serde => serde_json::from_str(std::str::from_utf8(body).expect("UTF-8")).expect("a pod"),
                Decode::Compact => {
                    kube_proto::compact::from_str(std::str::from_utf8(body).expect("UTF-8")).expect("a pod")
                }
                #[cfg(feature = "protobuf")]
                Decode::Protobuf => kube_proto::protobuf::from_slice(body).expect("a pod"),
            };
            sink.feed(Event::InitApply(pod));
            *peak = (*peak).max(live(&region));
        }
        sink.feed(Event::InitDone);
        *peak = (*peak).max(live(&region));
    };
    let mut ignored = 0;
    list(&mut sink, &mut ignored);
    let steady = live(&region);
    let mut peak = 0;
    list(&mut sink, &mut peak);
    assert!(live(&region) <= steady + steady / 100, "the relist left the store larger");
    drop(sink);
    (steady, peak)
}

/// The store's live heap once the Pods are listed and then modified twice each by watch events
/// (decoded by the watcher, in chunks), with or without each replaced object handed back to the
/// watcher to decode the next event over (`Watcher::recycle`).
fn after_watch(recycle: bool) -> isize {
    let (list, watch) = reflector_support::bodies(PODS, 2 * PODS);
    let region = Region::new(GLOBAL);
    let mut store = Store::<Pod>::new(StoreConfig::default(), ());
    let mut retired = Vec::new();
    reflector_support::run_watcher_recycling(&list, &watch, |ev| {
        drop(store.apply_retiring(ev, &mut retired));
        let spare = retired.drain(..).filter_map(|old| std::sync::Arc::try_unwrap(old).ok()).next_back();
        if recycle { spare } else { None }
    });
    drop(retired);
    assert_eq!(store.len(), PODS);
    let held = live(&region);
    drop(store);
    held
}

fn main() {
    let pods: Vec<Vec<u8>> =
        (0..PODS).map(|i| serde_json::to_vec(&reflector_support::pod(i, i as u64 + 1)).expect("a pod")).collect();
    let json: usize = pods.iter().map(Vec::len).sum();
    let bare: usize = (0..PODS).map(|i| serde_json::to_vec(&data::pod(i, true)).expect("a pod").len()).sum();
    eprintln!(
        "reflector_alloc: {PODS} pods, {} bytes of JSON each ({} without managedFields)",
        json / PODS,
        bare / PODS
    );
    let report = |what: &str, (steady, peak): (isize, isize)| {
        eprintln!(
            "memory: {what:<34} steady {:>6} bytes/pod ({:.2}x its JSON), relist peak {:>6} bytes/pod = {:.2}x steady",
            steady / PODS as isize,
            steady as f64 / json as f64,
            peak / PODS as isize,
            peak as f64 / steady as f64
        );
        steady
    };
    let ours = report(
        "ours (Store, built-in indexes)",
        measure(Store::<Pod>::new(StoreConfig::default(), ()), &pods, Decode::Json),
    );
    let compact = report(
        "ours, watcher::Config::compact()",
        measure(Store::<Pod>::new(StoreConfig::default(), ()), &pods, Decode::Compact),
    );
    let both = report(
        "ours, compact() and drop managedFields",
        measure(Store::<Pod>::new(StoreConfig::default().drop_managed_fields(), ()), &pods, Decode::Compact),
    );
    let lean = report(
        "ours, drop managedFields",
        measure(Store::<Pod>::new(StoreConfig::default().drop_managed_fields(), ()), &pods, Decode::Json),
    );
    let theirs = report(
        "kube-rs reflector store (kube-runtime 5)",
        measure(KubeRs(kube_rs_runtime::reflector::store::Writer::default()), &pods, Decode::Serde),
    );
    let serde = report(
        "ours, decoded by plain serde_json",
        measure(Store::<Pod>::new(StoreConfig::default(), ()), &pods, Decode::Serde),
    );
    eprintln!(
        "ratios: ours/kube-rs steady {:.2}; managedFields transform saves {:.1}% ({} bytes/pod); ours with it / kube-rs {:.2}",
        ours as f64 / theirs as f64,
        100.0 * (ours - lean) as f64 / ours as f64,
        (ours - lean) / PODS as isize,
        lean as f64 / theirs as f64
    );
    eprintln!(
        "ratios: ours with compact() / kube-rs steady {:.2}; with compact() and the transform {:.2}",
        compact as f64 / theirs as f64,
        both as f64 / theirs as f64
    );
    eprintln!(
        "ratios: ours decoded by plain serde_json / kube-rs steady {:.2} (the direct decoder's exact capacities save {:.1}%)",
        serde as f64 / theirs as f64,
        100.0 * (serde - ours) as f64 / serde as f64
    );
    let (plain, recycled) = (after_watch(false), after_watch(true));
    eprintln!(
        "memory: ours after two MODIFIED events per Pod: {} bytes/pod; with the replaced objects recycled {} bytes/pod ({:.3}x)",
        plain / PODS as isize,
        recycled / PODS as isize,
        recycled as f64 / plain as f64
    );
    #[cfg(feature = "protobuf")]
    {
        let bodies: Vec<Vec<u8>> = pods
            .iter()
            .map(|json| {
                let value: serde_json::Value = serde_json::from_slice(json).expect("a pod");
                kube_proto::protobuf::to_vec(&value).expect("a protobuf pod")
            })
            .collect();
        let proto = report(
            "ours, decoded from protobuf",
            measure(Store::<Pod>::new(StoreConfig::default(), ()), &bodies, Decode::Protobuf),
        );
        eprintln!(
            "ratios: ours from protobuf / ours from JSON steady {:.2}; / kube-rs {:.2}",
            proto as f64 / ours as f64,
            proto as f64 / theirs as f64
        );
    }
}
