//! The reflector benches' data: the Pods of `data` with the `managedFields` a server records for
//! three writers, as a list body and a watch body, and a `Watcher<Pod>` fed them.

use std::time::Instant;

use http::{HeaderMap, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
use kube_proto::Request;
use kube_proto::watcher::{Action, Config, Event, Watcher};
use serde_json::{Map, Value};

use crate::data::{self, CHUNK};

/// `managedFields`-style field set of a JSON value: `f:` keys, mirroring its structure.
fn fields_of(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (format!("f:{k}"), fields_of(v))).collect()),
        Value::Array(items) => {
            let mut m = Map::new();
            m.insert(".".into(), Value::Object(Map::new()));
            for (i, item) in items.iter().enumerate() {
                m.insert(format!("k:{{\"index\":{i}}}"), fields_of(item));
            }
            Value::Object(m)
        }
        _ => Value::Object(Map::new()),
    }
}

/// Pod `i` (with status), with the managed fields of kubectl (spec), the controller manager
/// (metadata) and the kubelet (status), at resourceVersion `rv`.
pub fn pod(i: usize, rv: u64) -> Pod {
    let mut p = data::pod(i, true);
    let v = serde_json::to_value(&p).expect("a pod serialises");
    let entry = |manager: &str, op: &str, sub: Option<&str>, part: &str| ManagedFieldsEntry {
        manager: Some(manager.into()),
        operation: Some(op.into()),
        api_version: Some("v1".into()),
        fields_type: Some("FieldsV1".into()),
        fields_v1: Some(FieldsV1(serde_json::json!({ format!("f:{part}"): fields_of(&v[part]) }))),
        subresource: sub.map(Into::into),
        time: None,
    };
    p.metadata.managed_fields = Some(vec![
        entry("kubectl", "Apply", None, "spec"),
        entry("kube-controller-manager", "Update", None, "metadata"),
        entry("kubelet", "Update", Some("status"), "status"),
    ]);
    p.metadata.resource_version = Some(rv.to_string());
    p
}

/// A list body of `pods` Pods at resourceVersion `pods`, and a watch body of `events`
/// modifications of them (round robin), at the following resourceVersions.
pub fn bodies(pods: usize, events: usize) -> (Vec<u8>, Vec<u8>) {
    let mut list = br#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":""#.to_vec();
    list.extend_from_slice(format!("{pods}\"}},\"items\":[").as_bytes());
    for i in 0..pods {
        if i > 0 {
            list.push(b',');
        }
        serde_json::to_writer(&mut list, &pod(i, i as u64 + 1)).expect("serialise");
    }
    list.extend_from_slice(b"]}");
    let mut watch = Vec::new();
    for j in 0..events {
        watch.extend_from_slice(br#"{"type":"MODIFIED","object":"#);
        serde_json::to_writer(&mut watch, &pod(j % pods, (pods + j + 1) as u64)).expect("serialise");
        watch.extend_from_slice(b"}\n");
    }
    (list, watch)
}

/// Drains the watcher into `sink` until it asks to send (the id) or waits (`None`); what `sink`
/// gives back is handed to the watcher's decoder to decode the next event over.
fn drain(w: &mut Watcher<Pod>, now: Instant, sink: &mut impl FnMut(Event<Pod>) -> Option<Pod>) -> Option<u64> {
    loop {
        match w.poll(now) {
            Action::Emit(ev) => {
                if let Some(spare) = sink(ev) {
                    w.recycle(spare);
                }
            }
            Action::Send(id, _) => return Some(id),
            Action::Wait { .. } => return None,
            Action::Cancel(_) => {}
            Action::Error(e) => panic!("watcher error: {e}"),
        }
    }
}

/// A fresh `Watcher<Pod>` fed the list then the watch, in `CHUNK`-byte chunks; every event goes
/// to `sink`.
pub fn run_watcher(list: &[u8], watch: &[u8], mut sink: impl FnMut(Event<Pod>)) {
    run_watcher_recycling(list, watch, |ev| {
        sink(ev);
        None
    })
}

/// [`run_watcher`], handing what `sink` gives back (an object nobody holds any more) to the
/// watcher, which decodes the next watch event over it (`Watcher::recycle`).
pub fn run_watcher_recycling(list: &[u8], watch: &[u8], mut sink: impl FnMut(Event<Pod>) -> Option<Pod>) {
    #[allow(clippy::disallowed_methods)] // one instant; time stands still
    let now = Instant::now();
    let mut w = Watcher::<Pod>::new(Request::all::<Pod>(), Config::default()).expect("a watcher");
    let headers = HeaderMap::new();
    let id = drain(&mut w, now, &mut sink).expect("the list request");
    w.on_response(now, id, StatusCode::OK, &headers);
    for chunk in list.chunks(CHUNK) {
        w.on_body(now, id, chunk);
    }
    w.on_end(now, id);
    let id = drain(&mut w, now, &mut sink).expect("the watch request");
    w.on_response(now, id, StatusCode::OK, &headers);
    for chunk in watch.chunks(CHUNK) {
        w.on_body(now, id, chunk);
        drain(&mut w, now, &mut sink);
    }
}

/// Every event of [`run_watcher`], decoded once.
pub fn decoded(list: &[u8], watch: &[u8]) -> Vec<Event<Pod>> {
    let mut out = Vec::new();
    run_watcher(list, watch, |ev| out.push(ev));
    out
}

/// The same events as kube-rs's watcher has them.
pub fn to_kube_rs(events: &[Event<Pod>]) -> Vec<kube_rs_runtime::watcher::Event<Pod>> {
    use kube_rs_runtime::watcher::Event as K;
    events
        .iter()
        .map(|ev| match ev {
            Event::Init => K::Init,
            Event::InitApply(p) => K::InitApply(p.clone()),
            Event::InitDone => K::InitDone,
            Event::Apply(p) => K::Apply(p.clone()),
            Event::Delete(p) => K::Delete(p.clone()),
        })
        .collect()
}
