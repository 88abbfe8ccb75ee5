//! Decoding with exact capacities (`kube_proto::compact`) gives the same values and the same
//! errors as `serde_json`, on every recorded response of a real kube-apiserver, on random JSON
//! and on random damage to it; every `Vec` of a decoded Pod is exactly as long as its capacity;
//! and the watcher and the watch decoder use it when asked.

mod fixture_support;

use k8s_openapi::api::core::v1::Pod;
use kube_proto::{DynamicObject, ObjectList, WatchDecoder, WatchEvent};
use proptest::prelude::*;
use serde_json::Value;

use fixture_support::{Fixture, names};

#[test]
fn every_recorded_response_decodes_as_serde_json_decodes_it() {
    let mut bodies = 0;
    for name in names() {
        let fixture = Fixture::load(&name);
        let body = fixture.response_body();
        let Ok(text) = std::str::from_utf8(&body) else { continue };
        let ours = kube_proto::compact::from_str::<Value>(text).map_err(|e| e.to_string());
        let theirs = serde_json::from_str::<Value>(text).map_err(|e| e.to_string());
        assert_eq!(ours, theirs, "{name}");
        if theirs.as_ref().is_ok_and(|v| v["items"].is_array()) {
            let ours = kube_proto::compact::from_str::<ObjectList<DynamicObject>>(text).map_err(|e| e.to_string());
            let theirs = serde_json::from_str::<ObjectList<DynamicObject>>(text).map_err(|e| e.to_string());
            assert_eq!(ours.is_ok(), theirs.is_ok(), "{name}");
            if let (Ok(ours), Ok(theirs)) = (ours, theirs) {
                assert_eq!(ours.items.len(), ours.items.capacity(), "{name}");
                assert_eq!(ours.items, theirs.items, "{name}");
            }
        }
        bodies += 1;
    }
    assert!(bodies > 200, "only {bodies} bodies");
}

#[test]
fn a_decoded_pod_has_no_spare_capacity_in_its_lists() {
    let pods = names()
        .into_iter()
        .map(|n| Fixture::load(&n).response_body())
        .filter_map(|b| serde_json::from_slice::<Value>(&b).ok())
        .filter(|v| v["kind"] == "Pod" && v["spec"]["containers"].is_array())
        .collect::<Vec<_>>();
    assert!(!pods.is_empty(), "the fixtures hold Pods");
    for pod in pods {
        let text = serde_json::to_string(&pod).unwrap();
        let ours: Pod = kube_proto::compact::from_str(&text).unwrap();
        assert_eq!(ours, serde_json::from_str::<Pod>(&text).unwrap());
        let spec = ours.spec.as_ref().unwrap();
        assert_eq!(spec.containers.capacity(), spec.containers.len());
        for c in &spec.containers {
            if let Some(env) = &c.env {
                assert_eq!(env.capacity(), env.len());
            }
            if let Some(mounts) = &c.volume_mounts {
                assert_eq!(mounts.capacity(), mounts.len());
            }
        }
        if let Some(volumes) = &spec.volumes {
            assert_eq!(volumes.capacity(), volumes.len());
        }
        if let Some(conditions) = ours.status.as_ref().and_then(|s| s.conditions.as_ref()) {
            assert_eq!(conditions.capacity(), conditions.len());
        }
    }
}

#[test]
fn the_watch_decoder_decodes_compactly_when_asked() {
    let object = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","finalizers":["a","b","c","d","e"]},"spec":{"containers":[{"name":"c","args":["1","2","3","4","5"]}]}}"#;
    // A usual line is read directly (`direct_json`), which gives exact capacities either way; a
    // line with a key the direct path leaves to serde shows what `compact` does.
    for (line, direct) in [
        (format!(r#"{{"type":"ADDED","object":{object}}}"#), true),
        (format!(r#"{{"type":"ADDED","object":{object},"x":1}}"#), false),
    ] {
        let mut plain = WatchDecoder::<Pod>::new();
        let mut compact = WatchDecoder::<Pod>::new().compact(true);
        plain.push(format!("{line}\n").as_bytes());
        compact.push(format!("{line}\n").as_bytes());
        let (Some(Ok(WatchEvent::Added(a))), Some(Ok(WatchEvent::Added(b)))) =
            (plain.next_event(), compact.next_event())
        else {
            panic!("two events")
        };
        assert_eq!(a, b);
        assert_eq!(b.metadata.finalizers.as_ref().unwrap().capacity(), 5);
        let room = a.metadata.finalizers.as_ref().unwrap().capacity() > 5;
        assert_eq!(room, !direct, "serde_json alone leaves room");
        let args = |p: &Pod| p.spec.as_ref().unwrap().containers[0].args.as_ref().unwrap().capacity();
        assert_eq!(args(&b), 5);
    }
}

/// Random JSON values, nested.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[ -~\\\\\"\\[\\],{}\u{e9}\u{1F600}]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map("[a-z\\[\\]\",]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_json_decodes_as_serde_json_decodes_it(v in json_value(), pretty in any::<bool>()) {
        let text = if pretty { serde_json::to_string_pretty(&v).unwrap() } else { serde_json::to_string(&v).unwrap() };
        let ours: Value = kube_proto::compact::from_str(&text).unwrap();
        prop_assert_eq!(ours, v);
    }

    #[test]
    fn damaged_json_fails_or_decodes_as_serde_json_does(v in json_value(), cut in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = serde_json::to_vec(&v).unwrap();
        let at = cut.index(bytes.len() + 1);
        if at < bytes.len() { bytes[at] = byte } else { bytes.truncate(at / 2) }
        let Ok(text) = std::str::from_utf8(&bytes) else { return Ok(()) };
        let ours = kube_proto::compact::from_str::<Value>(text).map_err(|e| e.to_string());
        let theirs = serde_json::from_str::<Value>(text).map_err(|e| e.to_string());
        prop_assert_eq!(ours, theirs);
    }
}

#[test]
fn the_watcher_decodes_lists_and_events_compactly_when_configured() {
    use http::{HeaderMap, StatusCode};
    use kube_proto::Request;
    use kube_proto::watcher::{Action, Config, Event, Watcher};
    #[allow(clippy::disallowed_methods)] // one instant; time stands still here
    let now = std::time::Instant::now();
    let pod = |name: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"ns","resourceVersion":"5","finalizers":["a","b","c","d","e"]}}}}"#
        )
    };
    let list = format!(
        r#"{{"kind":"PodList","apiVersion":"v1","metadata":{{"resourceVersion":"5"}},"items":[{}]}}"#,
        pod("listed")
    );
    let watch = format!("{{\"type\":\"ADDED\",\"object\":{}}}\n", pod("watched"));
    for compact in [false, true] {
        let config = if compact { Config::default().compact() } else { Config::default() };
        let mut w = Watcher::<Pod>::new(Request::namespaced::<Pod>("ns"), config).unwrap();
        let mut pods = Vec::new();
        let step = |w: &mut Watcher<Pod>, pods: &mut Vec<Pod>| loop {
            match w.poll(now) {
                Action::Emit(Event::InitApply(p) | Event::Apply(p)) => pods.push(p),
                Action::Emit(_) | Action::Cancel(_) => {}
                Action::Send(id, _) => return Some(id),
                Action::Wait { .. } => return None,
                Action::Error(e) => panic!("{e}"),
            }
        };
        let id = step(&mut w, &mut pods).expect("a list");
        w.on_response(now, id, StatusCode::OK, &HeaderMap::new());
        w.on_body(now, id, list.as_bytes());
        w.on_end(now, id);
        let id = step(&mut w, &mut pods).expect("a watch");
        w.on_response(now, id, StatusCode::OK, &HeaderMap::new());
        w.on_body(now, id, watch.as_bytes());
        step(&mut w, &mut pods);
        assert_eq!(pods.len(), 2, "compact {compact}");
        for p in &pods {
            let capacity = p.metadata.finalizers.as_ref().unwrap().capacity();
            // Lists and watch events of the built-in kinds are read directly (`direct_json`),
            // with exact capacities whether compact or not.
            assert_eq!(capacity, 5, "{}: compact {compact}", p.metadata.name.as_deref().unwrap());
        }
    }
}
