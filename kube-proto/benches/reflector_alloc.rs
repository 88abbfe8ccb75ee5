//! Store memory, counted by an instrumented global allocator (`stats_alloc`): the live heap a
//! store holds per Pod once the Pods are listed (steady), the most it holds during a full relist
//! of the same Pods (peak, with each listed object decoded as the watcher would), for our store
//! (with and without the managedFields transform) and kube-rs's reflector store. Informational:
//! it only prints.
//!
//! Run with `cargo bench -p kube-proto --bench reflector_alloc`.
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

/// Lists `pods` into `sink` and returns (steady live heap, peak live heap during the relist),
/// relative to before the first list.
fn measure(mut sink: impl Sink, pods: &[Vec<u8>], compact: bool) -> (isize, isize) {
    let region = Region::new(GLOBAL);
    let list = |sink: &mut dyn Sink, peak: &mut isize| {
        sink.feed(Event::Init);
        for json in pods {
            let text = std::str::from_utf8(json).expect("UTF-8");
            let pod: Pod = if compact {
                kube_proto::compact::from_str(text).expect("a pod")
            } else {
                serde_json::from_str(text).expect("a pod")
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
    let ours =
        report("ours (Store, built-in indexes)", measure(Store::<Pod>::new(StoreConfig::default(), ()), &pods, false));
    let compact =
        report("ours, watcher::Config::compact()", measure(Store::<Pod>::new(StoreConfig::default(), ()), &pods, true));
    let both = report(
        "ours, compact() and drop managedFields",
        measure(Store::<Pod>::new(StoreConfig::default().drop_managed_fields(), ()), &pods, true),
    );
    let lean = report(
        "ours, drop managedFields",
        measure(Store::<Pod>::new(StoreConfig::default().drop_managed_fields(), ()), &pods, false),
    );
    let theirs = report(
        "kube-rs reflector store (kube-runtime 5)",
        measure(KubeRs(kube_rs_runtime::reflector::store::Writer::default()), &pods, false),
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
}
