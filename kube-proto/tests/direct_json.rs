//! The direct JSON decoders (`kube_proto::direct_json`, which the watch decoder uses for the
//! built-in kinds) give exactly what `serde_json` gives, values and errors alike: for every object
//! of the recorded exchanges (read as its own kind and as other kinds), for the benchmark's Pods,
//! for hand-made edge cases of the JSON grammar, and for random mutations (values swapped for
//! `null` or another type, keys given twice, strings written with escapes, bytes flipped, text cut
//! off). Lists come out exactly as long as they need to be.

use std::fmt::Debug;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest};
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_proto::direct_json;
use kube_proto::{ObjectList, Response, WatchEvent};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde_json::Value;

#[path = "../benches/data/mod.rs"]
#[allow(dead_code)]
mod data;

const JSON_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apiserver-v1.36");

/// Both ways, as values or as error messages.
fn both<T: DeserializeOwned + 'static>(text: &str) -> (Result<T, String>, Result<T, String>) {
    let direct = direct_json::from_str::<T>(text).map_err(|e| e.to_string());
    let serde = serde_json::from_str::<T>(text).map_err(|e| e.to_string());
    (direct, serde)
}

/// What the comparisons saw.
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    /// Serde accepted the text as some kind.
    accepted: bool,
    /// The direct decoder read it (without falling back to serde) as some kind.
    direct: bool,
}

/// Whether `text` read as `T` is the same both ways; and the same as a watch event's object,
/// decoded anew and over each object `olds` decode to (as a store hands replaced objects back).
fn same_as<T: DeserializeOwned + PartialEq + Debug + 'static>(text: &str, olds: &[&str], what: &str, seen: &mut Seen) {
    let ty = std::any::type_name::<T>();
    assert!(direct_json::supports::<T>(), "{ty}");
    let (direct, serde) = both::<T>(text);
    assert_eq!(direct, serde, "{what}: {ty}");
    let read = direct_json::direct::<T>(text);
    if let Some(d) = &read {
        // Read directly only what serde accepts, as serde reads it.
        assert_eq!(Ok(d), serde.as_ref(), "{what}: {ty}");
        seen.direct = true;
    }
    for (i, old) in olds.iter().enumerate() {
        let Ok(old) = serde_json::from_str::<T>(old) else { continue };
        // Over an object held before: serde's value, and given up on exactly where a new decode is.
        let refilled = direct_json::refill(text, old);
        assert_eq!(refilled.is_some(), read.is_some(), "{what}: {ty} over old object {i}");
        if let Some(r) = refilled {
            assert_eq!(Ok(&r), serde.as_ref(), "{what}: {ty} over old object {i}");
        }
    }
    let line = format!("{{\"type\":\"MODIFIED\",\"object\":{text}}}");
    let direct = kube_proto::watch::parse_line::<T>(line.as_bytes(), 1).map_err(|e| e.message);
    let serde = serde_json::from_str::<WatchEvent<T>>(&line).map_err(|e| e.to_string());
    assert_eq!(direct, serde, "{what} (watch line): {ty}");
    // (A text with a newline is more than one line to a decoder.)
    if let Some(Ok(old)) = olds.first().filter(|_| !text.contains('\n')).map(|o| serde_json::from_str::<T>(o)) {
        let mut decoder = kube_proto::watch::WatchDecoder::<T>::new();
        decoder.recycle(old);
        decoder.push(line.as_bytes());
        decoder.push(b"\n");
        let recycled = decoder.next_event().map(|r| r.map_err(|e| e.message));
        assert_eq!(
            recycled.as_ref().map(Result::as_ref),
            Some(serde.as_ref()),
            "{what} (watch line over a spare): {ty}"
        );
        assert!(!decoder.has_spare());
    }
    seen.accepted |= serde.is_ok();
}

/// Objects to decode over when a test names none: a benchmark Pod, and a small object whose maps
/// (labels, data, a `fieldsV1` tree) share keys with the edge cases below.
fn default_olds() -> &'static [String] {
    static OLDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    OLDS.get_or_init(|| {
        let small = r#"{"metadata":{"name":"zz","labels":{"a":"1","b":"2"},"managedFields":[{"manager":"m",
            "fieldsV1":{"f:a":{"x":1,"y":[1,{"z":"w"}],"zz":"q"},"f:b":{}}}]},"data":{"a":"0","k":"v","z":"9"}}"#;
        vec![serde_json::to_string(&data::pod(5, true)).unwrap(), small.to_owned()]
    })
}

/// `text` compared as every kind listed, also decoded over the [`default_olds`].
fn same(text: &str, what: &str) -> Seen {
    let olds: Vec<&str> = default_olds().iter().map(String::as_str).collect();
    same_over(text, &olds, what)
}

/// `text` compared as every kind listed, also decoded over the objects `olds` decode to.
fn same_over(text: &str, olds: &[&str], what: &str) -> Seen {
    let mut seen = Seen::default();
    macro_rules! kinds {
        ($($t:ty),* $(,)?) => { $( same_as::<$t>(text, olds, what, &mut seen); )* };
    }
    kinds!(
        Pod,
        ConfigMap,
        Namespace,
        Node,
        Secret,
        Service,
        ServiceAccount,
        Deployment,
        ReplicaSet,
        Scale,
        PodDisruptionBudget,
        TokenRequest,
        SelfSubjectReview,
        SelfSubjectAccessReview,
        CustomResourceDefinition,
    );
    seen
}

#[allow(clippy::disallowed_methods)] // reading the fixtures is the point of these tests
fn fixtures() -> Vec<(String, Value)> {
    let mut names: Vec<String> = std::fs::read_dir(JSON_DIR)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let text = std::fs::read_to_string(format!("{JSON_DIR}/{n}")).unwrap();
            (n, serde_json::from_str(&text).unwrap())
        })
        .collect()
}

/// Every object with a `kind` in the recorded responses (bodies, list items, watch events), as
/// JSON text.
fn recorded_objects() -> Vec<(String, String)> {
    fn walk(v: &Value, what: &str, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                if m.get("kind").is_some_and(Value::is_string) {
                    out.push((format!("{what} {}", m["kind"]), v.to_string()));
                }
                m.values().for_each(|v| walk(v, what, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, what, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for (name, fx) in fixtures() {
        let resp = &fx["response"];
        walk(&resp["body"], &name, &mut out);
        if let Some(lines) = resp["body_lines"].as_array() {
            for line in lines {
                let v = match line {
                    Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                    v => v.clone(),
                };
                walk(&v, &name, &mut out);
            }
        }
    }
    out
}

#[test]
fn recorded_objects_read_the_same() {
    let objects = recorded_objects();
    assert!(objects.len() > 300, "{}", objects.len());
    let pod = &default_olds()[0];
    let seen: Vec<Seen> = objects
        .iter()
        .enumerate()
        .map(|(i, (what, text))| {
            // Over the object before it, one further back, and a full Pod.
            let olds = [objects[i.saturating_sub(1)].1.as_str(), objects[i.saturating_sub(7)].1.as_str(), pod];
            same_over(text, &olds, what)
        })
        .collect();
    let accepted = seen.iter().filter(|s| s.accepted).count();
    let direct = seen.iter().filter(|s| s.direct).count();
    // Every built-in kind listed is accepted as itself (custom resources and Status are not),
    // and read directly.
    assert!(accepted > 200, "{accepted} of {}", objects.len());
    assert_eq!(direct, accepted);
}

/// The Vecs of a Pod that hold anything: their capacities.
fn pod_capacities_exact(p: &Pod) -> bool {
    let spec = p.spec.as_ref().unwrap();
    let status = p.status.as_ref().unwrap();
    let mut ok = spec.containers.capacity() == spec.containers.len();
    for c in &spec.containers {
        ok &= c.env.as_ref().is_none_or(|v| v.capacity() == v.len());
        ok &= c.ports.as_ref().is_none_or(|v| v.capacity() == v.len());
        ok &= c.volume_mounts.as_ref().is_none_or(|v| v.capacity() == v.len());
        ok &= c.args.as_ref().is_none_or(|v| v.capacity() == v.len());
    }
    ok &= spec.volumes.as_ref().is_none_or(|v| v.capacity() == v.len());
    ok &= spec.tolerations.as_ref().is_none_or(|v| v.capacity() == v.len());
    ok &= status.conditions.as_ref().is_none_or(|v| v.capacity() == v.len());
    ok &= status.container_statuses.as_ref().is_none_or(|v| v.capacity() == v.len());
    ok &= p.metadata.owner_references.as_ref().is_none_or(|v| v.capacity() == v.len());
    ok
}

#[test]
fn benchmark_pods_read_the_same_with_exact_capacities() {
    for i in [0, 1, 2, 17, 999] {
        let pod = data::pod(i, true);
        let text = serde_json::to_string(&pod).unwrap();
        let direct: Pod = direct_json::from_str(&text).unwrap();
        assert_eq!(direct, pod);
        assert!(pod_capacities_exact(&direct));
        assert!(same(&text, "benchmark pod").direct);
    }
    // A list of them: its items read directly.
    let items: Vec<Value> = (0..500).map(|i| serde_json::to_value(data::pod(i, true)).unwrap()).collect();
    let body = serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}, "items": items}).to_string();
    let headers = http::HeaderMap::new();
    let list = Response::new(http::StatusCode::OK, &headers, body.as_bytes()).list::<Pod>().unwrap();
    assert_eq!(list, serde_json::from_str::<ObjectList<Pod>>(&body).unwrap());
    assert!(list.items.iter().all(pod_capacities_exact));
    let s = data::watch_stream();
    for (n, &(b, e)) in s.lines.iter().enumerate().step_by(97) {
        let line = &s.body[b..e];
        let direct = kube_proto::watch::parse_line::<Pod>(line, n as u64 + 1).unwrap();
        let serde: WatchEvent<Pod> = serde_json::from_slice(line).unwrap();
        assert_eq!(direct, serde);
        let WatchEvent::Modified(p) = direct else { panic!() };
        assert!(pod_capacities_exact(&p));
    }
}

/// The strings of a Pod's name, labels, annotations and containers: (length, capacity).
fn pod_strings(p: &Pod) -> Vec<(usize, usize)> {
    let mut s = vec![(p.metadata.name.as_ref().unwrap().len(), p.metadata.name.as_ref().unwrap().capacity())];
    let m = &p.metadata;
    for v in m.labels.iter().flat_map(|l| l.values()).chain(m.annotations.iter().flat_map(|a| a.values())) {
        s.push((v.len(), v.capacity()));
    }
    for c in &p.spec.as_ref().unwrap().containers {
        s.push((c.name.len(), c.name.capacity()));
        for x in c.image.iter().chain(c.args.iter().flatten()).chain(c.command.iter().flatten()) {
            s.push((x.len(), x.capacity()));
        }
    }
    s
}

#[test]
fn benchmark_pods_read_over_other_pods_the_same_with_exact_lists() {
    // Each event decoded over the object the one before it gave, as a store that hands replaced
    // objects back to the watcher has it: the same events as serde's, every list exact, every
    // string's buffer at most the allowed slack longer than the string.
    let s = data::watch_stream();
    let mut decoder = kube_proto::watch::WatchDecoder::<Pod>::new();
    let (mut reused, mut last_name) = (0, None);
    for &(b, e) in s.lines.iter().take(600) {
        let line = &s.body[b..e];
        decoder.push(line);
        decoder.push(b"\n");
        let event = decoder.next_event().unwrap().unwrap();
        assert_eq!(event, serde_json::from_slice::<WatchEvent<Pod>>(line).unwrap());
        let WatchEvent::Modified(p) = event else { panic!() };
        assert!(pod_capacities_exact(&p));
        let strings = pod_strings(&p);
        assert!(strings.iter().all(|&(len, cap)| cap >= len && cap - len <= 16), "{strings:?}");
        let name = p.metadata.name.as_ref().unwrap();
        reused += usize::from(last_name == Some(name.as_ptr()));
        last_name = Some(name.as_ptr());
        decoder.recycle(p);
    }
    // The name was written into the buffer of the name before it (the names are as long).
    assert!(reused >= 599, "{reused}");
    // A Pod with fewer containers, labels and fields over a full one, and the other way round.
    let full = data::pod(1, true);
    let small: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "s", "labels": {"z": "1"}},
        "spec": {"containers": [{"name": "only"}]}
    }))
    .unwrap();
    let small_text = serde_json::to_string(&small).unwrap();
    let full_text = serde_json::to_string(&full).unwrap();
    let over_full = direct_json::refill(&small_text, full.clone()).unwrap();
    assert_eq!(over_full, small);
    let spec = over_full.spec.as_ref().unwrap();
    assert_eq!(spec.containers.capacity(), 1);
    assert_eq!(direct_json::refill(&full_text, over_full).unwrap(), full);
}

/// A decoder keeps a spare only where it decodes over it, and only an event uses it up.
#[test]
fn a_spare_is_kept_only_where_it_is_decoded_over() {
    let cm =
        |name: &str| -> ConfigMap { serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap() };
    let mut decoder = kube_proto::watch::WatchDecoder::<ConfigMap>::new();
    assert!(decoder.wants_spare());
    decoder.recycle(cm("old"));
    assert!(decoder.has_spare() && !decoder.wants_spare());
    // A bookmark and an error leave it for the next event.
    decoder.push(b"{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"ConfigMap\",\"apiVersion\":\"v1\",\"metadata\":{\"resourceVersion\":\"9\"}}}\n");
    decoder.push(b"{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"code\":410,\"reason\":\"Expired\"}}\n");
    assert!(matches!(decoder.next_event(), Some(Ok(WatchEvent::Bookmark(_)))));
    assert!(matches!(decoder.next_event(), Some(Ok(WatchEvent::Error(_)))));
    assert!(decoder.has_spare(), "used up by a bookmark or an error");
    decoder.push(b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"new\"}}}\n");
    assert_eq!(decoder.next_event().unwrap().unwrap(), WatchEvent::Added(cm("new")));
    assert!(!decoder.has_spare() && decoder.wants_spare());

    // A kind read by serde never holds one.
    let mut dynamic = kube_proto::watch::WatchDecoder::<kube_proto::DynamicObject>::new();
    assert!(!dynamic.wants_spare());
    dynamic.recycle(serde_json::from_value(serde_json::json!({"metadata": {"name": "x"}})).unwrap());
    assert!(!dynamic.has_spare());

    // Nor does a protobuf stream: one held before the stream's type is known is let go.
    #[cfg(feature = "protobuf")]
    {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/vnd.kubernetes.protobuf;stream=watch"),
        );
        decoder.recycle(cm("old"));
        assert!(decoder.has_spare());
        decoder.use_content_type(&headers);
        assert!(!decoder.has_spare() && !decoder.wants_spare());
        decoder.recycle(cm("old"));
        assert!(!decoder.has_spare());
    }
}

#[test]
fn json_grammar_edge_cases() {
    let cm =
        |data: &str| format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"a"}},"data":{data}}}"#);
    let strings = [
        r#""plain""#,
        r#""\"\\\/\b\f\n\r\t""#,
        r#""\u0000\u001f\u00e9\u20ac\uFFFF""#,
        r#""\ud83d\ude00 pair""#,
        r#""\ud83d lone high""#,
        r#""\ude00 lone low""#,
        r#""\ud83d\u0041 high then not low""#,
        r#""\uZZZZ""#,
        r#""\x""#,
        "\"raw\ttab\"",
        "\"raw\u{7f}del\"",
        r#""é€😀 utf-8""#,
        r#""unterminated"#,
        "1",
        "null",
        "true",
        "[]",
        "{}",
    ];
    for s in strings {
        same(&cm(&format!(r#"{{"k":{s}}}"#)), s);
        same(&cm(&format!(r#"{{{s}:"v"}}"#)), s);
        same(&format!(r#"{{"metadata":{{"name":{s}}}}}"#), s);
        same(&format!(r#"{{"metadata":{{"labels":{{"a":{s}}}}}}}"#), s);
    }
    // Escapes, pairs and raw non-ASCII text are read directly.
    for s in [r#""\"\\\/\b\f\n\r\t""#, r#""\ud83d\ude00 pair""#, r#""é€😀 utf-8""#, r#""\u0000""#] {
        assert!(same(&cm(&format!(r#"{{"k":{s}}}"#)), s).direct, "{s}");
    }
    let numbers = [
        "0",
        "-0",
        "1",
        "-1",
        "01",
        "1.0",
        "1e2",
        "1E+2",
        "-",
        "2147483647",
        "2147483648",
        "-2147483648",
        "-2147483649",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "1.5",
        "true",
        "\"3\"",
        "null",
        "[1]",
        "1x",
        "0x10",
    ];
    for n in numbers {
        same(&format!(r#"{{"metadata":{{"generation":{n}}}}}"#), n);
        same(&format!(r#"{{"spec":{{"replicas":{n}}}}}"#), n);
        same(&format!(r#"{{"spec":{{"containers":[{{"name":"c","ports":[{{"containerPort":{n}}}]}}]}}}}"#), n);
        same(&format!(r#"{{"spec":{{"maxUnavailable":{n}}}}}"#), n);
        same(&format!(r#"{{"spec":{{"containers":[{{"name":"c","resources":{{"limits":{{"cpu":{n}}}}}}}]}}}}"#), n);
    }
    let shapes = [
        r#"{}"#,
        r#"{"kind":"Pod"}"#,
        r#"{"kind":"Pod","apiVersion":"v2"}"#,
        r#"{"kind":"Nope"}"#,
        r#"{"kind":null}"#,
        r#"{"kind":1}"#,
        r#"{"apiVersion":"v\u0031","kind":"P\u006fd"}"#,
        r#"{"metadata":null,"spec":null,"status":null}"#,
        r#"{"metadata":{"name":"a"},"metadata":{"namespace":"b"}}"#,
        r#"{"metadata":{"labels":{"a":"1","a":"2"}}}"#,
        r#"{"metadata":{"finalizers":["a",null]}}"#,
        r#"{"metadata":{"finalizers":null}}"#,
        r#"{"metadata":{"finalizers":[]}}"#,
        r#"{"metadata":{"finalizers":"a"}}"#,
        r#"{"metadata":{"creationTimestamp":"2026-11-25T23:08:56Z"}}"#,
        r#"{"metadata":{"creationTimestamp":"2026-11-25T23:08:56.123456789+02:00"}}"#,
        r#"{"metadata":{"creationTimestamp":"yesterday"}}"#,
        r#"{"metadata":{"creationTimestamp":"2024-02-29T00:00:00Z"}}"#,
        r#"{"metadata":{"creationTimestamp":"2023-02-29T00:00:00Z"}}"#,
        r#"{"metadata":{"creationTimestamp":"2000-02-29T12:00:00Z"}}"#,
        r#"{"metadata":{"creationTimestamp":"1900-02-29T12:00:00Z"}}"#,
        r#"{"metadata":{"creationTimestamp":"1969-12-31T23:59:59Z"}}"#,
        r#"{"metadata":{"creationTimestamp":"0000-01-01T00:00:00Z"}}"#,
        r#"{"metadata":{"creationTimestamp":"9999-12-30T22:00:00Z"}}"#,
        r#"{"metadata":{"creationTimestamp":"9999-12-31T23:59:59Z"}}"#,
        r#"{"metadata":{"creationTimestamp":"2026-11-25T23:59:60Z"}}"#,
        r#"{"metadata":{"creationTimestamp":"2026-13-25T23:08:56Z"}}"#,
        r#"{"metadata":{"creationTimestamp":"2026-11-25t23:08:56z"}}"#,
        r#"{"metadata":{"creationTimestamp":"2026-11-25T24:00:00Z"}}"#,
        r#"{"metadata":{"creationTimestamp":"2026-11-25 23:08:56Z"}}"#,
        r#"{"metadata":{"creationTimestamp":"+2026-11-25T23:08:56Z"}}"#,
        r#"{"metadata":{"creationTimestamp":null}}"#,
        r#"{"metadata":{"managedFields":[{"fieldsV1":{"f:a":{}},"time":"2026-11-25T23:08:56Z"}]}}"#,
        r#"{"metadata":{"managedFields":[{"fieldsV1":{"f:a":[1,2.5e3,-0,"x",null,true]}}]}}"#,
        // Free-form JSON: repeated keys (the later value), every kind of value, over the olds'.
        r#"{"metadata":{"managedFields":[{"fieldsV1":{"f:a":{"x":1,"x":{"y":2}},"f:a":{"x":3}}}]}}"#,
        r#"{"metadata":{"managedFields":[{"fieldsV1":{"f:a":{"x":1,"y":[1,{"z":"w"}],"zz":"q","x":[]}}}]}}"#,
        r#"{"metadata":{"managedFields":[{"fieldsV1":{"f:a":{"x":1,"y":[{"z":"v"},1],"zz":"q"},"f:b":{"c":{}}}}]}}"#,
        r#"{"metadata":{"managedFields":[{"fieldsV1":{"f:b":{},"f:a":{"zz":"q","x":1}}}]}}"#,
        r#"{"metadata":{"managedFields":[{"fieldsV1":{"f:a":{"x":-1.5e-7,"y":18446744073709551616,"zz":-0}}}]}}"#,
        r#"{"metadata":{"managedFields":[{"fieldsV1":{"f:\u0061":{"\ud83d\ude00":"\n"},"f:b":"\ud800"}}]}}"#,
        r#"{"metadata":{"managedFields":[{"fieldsV1":{"f:a":{"x":tru}}}]}}"#,
        r#"{"metadata":{"managedFields":[{"fieldsV1":{"f:a":{"x":01}}}]}}"#,
        r#"{"metadata":{"managedFields":[{"fieldsV1":[{"a":{}},"b",false,null]},{"fieldsV1":null}]}}"#,
        r#"{"metadata":{"managedFields":[{"fieldsV1":"f:a"}]}}"#,
        r#"{"metadata":{"labels":{"a":"1","b":"2","a":"3"}},"data":{"a":"0","k":"v","z":"9","k":"w"}}"#,
        r#"{"metadata":{"labels":{"b":"2","a":"1"}},"data":{"a":"0","k":"v"}}"#,
        r#"{"metadata":{"labels":{"a":"1","b":"2","c":"3"}},"data":{}}"#,
        r#"{"data":{"k":"aGVsbG8="}}"#,
        r#"{"data":{"k":null}}"#,
        r#"{"data":{"k":"not base64!"}}"#,
        r#"{"unknown":{"deep":[[[{"x":[1,{"y":null}]}]]]}}"#,
        r#"{"unknown":{"deep":[[[{"x":[1,{"y":null}]]]]}}"#,
        r#"{"unknown":[1,2,]}"#,
        r#"{"unknown":{"a":1,}}"#,
        r#"{"spec":{"containers":[{"name":"a"},{"name":"b"},{"name":"c"}]}}"#,
        r#"{"spec":{"containers":[null]}}"#,
        r#"{"spec":{"containers":{}}}"#,
        r#"{"spec":[]}"#,
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","lastTransitionTime":null}]}}"#,
        r#" { "metadata" : { "name" : "a" } } "#,
        "{\"metadata\":{\"name\":\"a\"}}\n",
        r#"{"metadata":{"name":"a"}} x"#,
        r#"{"metadata":{"name":"a"}"#,
        r#"{"metadata":{"name":"a"}}}"#,
        r#"[]"#,
        r#"null"#,
        r#""#,
        r#"{"metadata":{"name":"a"},}"#,
        r#"{"metadata" {"name":"a"}}"#,
        r#"{metadata:{}}"#,
        r#"{"metad\u0061ta":{"name":"a"}}"#,
    ];
    for s in shapes {
        same(s, s);
    }
    // Nesting: serde's limit (128) against the direct decoders' (100, then serde decides).
    for depth in [90, 98, 99, 100, 101, 126, 127, 128, 200] {
        let deep = format!(r#"{{"unknown":{}1{}}}"#, "[".repeat(depth), "]".repeat(depth));
        same(&deep, "deep unknown");
        let deep = format!(
            r#"{{"metadata":{{"managedFields":[{{"fieldsV1":{}1{}}}]}}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        same(&deep, "deep fieldsV1");
    }
}

#[test]
fn watch_lines_of_other_shapes_go_through_serde() {
    let lines = [
        r#"{"type":"ADDED","object":{"metadata":{"name":"a"}}}"#,
        r#"{"object":{"metadata":{"name":"a"}},"type":"ADDED"}"#,
        r#"{"type":"ADDED","object":{"metadata":{"name":"a"}},"extra":1}"#,
        r#"{"type":"ADDED","type":"DELETED","object":{}}"#,
        r#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"5"}}}"#,
        r#"{"type":"ERROR","object":{"kind":"Status","code":410}}"#,
        r#"{"type":"NOPE","object":{}}"#,
        r#"{"type":"ADDED","object":null}"#,
        r#"{"type":"ADDED","object":{"kind":"ConfigMap"}}"#,
        r#"{"type":"ADDED"}"#,
        r#"{"type":"ADD\u0045D","object":{}}"#,
    ];
    for line in lines {
        let direct = kube_proto::watch::parse_line::<Pod>(line.as_bytes(), 1).map_err(|e| e.message);
        let serde = serde_json::from_str::<WatchEvent<Pod>>(line).map_err(|e| e.to_string());
        assert_eq!(direct, serde, "{line}");
    }
}

proptest! {
    #[test]
    fn times_read_as_jiff_reads_them(secs in -62_167_219_200i64..253_402_300_800,
                                                             text in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z") {
        // Every valid instant, written as the API server writes it.
        let t = k8s_openapi::jiff::Timestamp::from_second(secs).unwrap();
        let written = t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        for s in [written, text] {
            let doc = format!(r#"{{"metadata":{{"creationTimestamp":"{s}"}}}}"#);
            let (direct, serde) = both::<ConfigMap>(&doc);
            prop_assert_eq!(direct, serde);
        }
    }
}

/// A list body read by `Response::list` (items directly) and by serde alone: the same list, or
/// the same error text. Returns whether serde accepted it.
fn same_list<K: DeserializeOwned + PartialEq + Debug + 'static>(body: &str, what: &str) -> bool {
    let headers = http::HeaderMap::new();
    let resp = Response::new(http::StatusCode::OK, &headers, body.as_bytes());
    let serde = serde_json::from_str::<ObjectList<K>>(body);
    for (direct, compact) in [(resp.list::<K>(), false), (resp.list_compact::<K>(), true)] {
        match (&direct, &serde) {
            (Ok(d), Ok(s)) => {
                assert_eq!(d, s, "{what}");
                // Exact either way when read directly; serde's fallback is exact when compact.
                if compact {
                    assert_eq!(d.items.capacity(), d.items.len(), "{what}");
                }
            }
            (Err(_), Err(_)) => {}
            _ => panic!("{what}: {direct:?} against serde's {serde:?}"),
        }
    }
    serde.is_ok()
}

fn same_lists(body: &str, what: &str) -> bool {
    same_list::<ConfigMap>(body, what)
        | same_list::<Pod>(body, what)
        | same_list::<Namespace>(body, what)
        | same_list::<ReplicaSet>(body, what)
}

/// Every recorded list body.
fn recorded_lists() -> Vec<(String, Value)> {
    fixtures()
        .into_iter()
        .filter(|(_, fx)| fx["response"]["body"]["kind"].as_str().is_some_and(|k| k.ends_with("List")))
        .map(|(name, fx)| (name, fx["response"]["body"].clone()))
        .collect()
}

#[test]
fn recorded_lists_read_the_same() {
    let lists = recorded_lists();
    let accepted = lists.iter().filter(|(name, body)| same_lists(&body.to_string(), name)).count();
    assert!(accepted >= 25, "{accepted} of {}", lists.len());
    // Shapes serde decides: items null or given twice, no items, extra keys, a list of another kind.
    for body in [
        r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"5"},"items":null}"#,
        r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[],"items":[]}"#,
        r#"{"kind":"PodList","apiVersion":"v1","metadata":{"continue":"x","remainingItemCount":3}}"#,
        r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"a"}}],"x":[1]}"#,
        r#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{},"items":[{"kind":"ConfigMap","metadata":{"name":"a"}}]}"#,
        r#"{"kind":1,"metadata":{},"items":[{"metadata":{"name":"a"}}]}"#,
        r#"{"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]}"#,
        r#"{"items":[{"metadata":{"name":"a"}},]}"#,
        r#"{"items":[null]}"#,
        r#"[]"#,
    ] {
        same_lists(body, body);
    }
}

// ---- Mutations ----

/// A way to change one value of a document.
#[derive(Debug, Clone, Copy)]
enum Mutation {
    /// Replace it with this JSON text.
    Replace(&'static str),
    /// Give its member twice (the second with the same value).
    Duplicate,
    /// Write its strings (keys and values) with `\u` escapes.
    Escape,
}

const REPLACEMENTS: &[&str] = &[
    "null",
    "1",
    "-0",
    "1.5",
    "-7",
    "4294967296",
    "\"s\"",
    "\"\\ud800\"",
    "[]",
    "{}",
    "true",
    "[null]",
    "{\"a\":1}",
    "\"2026-11-25T23:08:56Z\"",
    "\"\"",
];

/// Writes `v` as JSON, applying `m` to the value numbered `target` in pre-order.
fn write(v: &Value, target: usize, m: Mutation, n: &mut usize, out: &mut String, escape: bool) {
    let me = *n;
    *n += 1;
    let escape = escape || (me == target && matches!(m, Mutation::Escape));
    if me == target
        && let Mutation::Replace(r) = m
    {
        out.push_str(r);
        return;
    }
    match v {
        Value::Object(map) => {
            out.push('{');
            for (i, (k, x)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let start = out.len();
                write_str(k, out, escape);
                out.push(':');
                let child = *n;
                write(x, target, m, n, out, escape);
                if child == target && matches!(m, Mutation::Duplicate) {
                    let member = out[start..].to_owned();
                    out.push(',');
                    out.push_str(&member);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(x, target, m, n, out, escape);
            }
            out.push(']');
        }
        Value::String(s) => write_str(s, out, escape),
        other => out.push_str(&other.to_string()),
    }
}

fn write_str(s: &str, out: &mut String, escape: bool) {
    if !escape {
        out.push_str(&Value::String(s.to_owned()).to_string());
        return;
    }
    out.push('"');
    for c in s.chars() {
        let mut units = [0u16; 2];
        for u in c.encode_utf16(&mut units) {
            out.push_str(&format!("\\u{u:04x}"));
        }
    }
    out.push('"');
}

fn count(v: &Value) -> usize {
    1 + match v {
        Value::Object(m) => m.values().map(count).sum(),
        Value::Array(a) => a.iter().map(count).sum(),
        _ => 0,
    }
}

fn corpus() -> &'static [(String, Value)] {
    static CORPUS: std::sync::OnceLock<Vec<(String, Value)>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut v: Vec<(String, Value)> = recorded_objects()
            .into_iter()
            .filter(|(what, _)| !what.contains("Status") && !what.contains("example.com"))
            .map(|(what, text)| (what, serde_json::from_str(&text).unwrap()))
            .collect();
        v.push(("benchmark pod".to_owned(), serde_json::to_value(data::pod(3, true)).unwrap()));
        v
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn mutated_documents_read_the_same(which in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(),
                                       kind in 0..REPLACEMENTS.len() + 2) {
        let (what, doc) = which.get(corpus());
        let m = match kind {
            k if k < REPLACEMENTS.len() => Mutation::Replace(REPLACEMENTS[k]),
            k if k == REPLACEMENTS.len() => Mutation::Duplicate,
            _ => Mutation::Escape,
        };
        let target = at.index(count(doc));
        let mut text = String::new();
        write(doc, target, m, &mut 0, &mut text, false);
        // Also over the unchanged object, as a watch's MODIFIED event comes over the one before.
        same_over(&text, &[&doc.to_string()], &format!("{what} with {m:?} at {target}"));
    }

    #[test]
    fn mutated_lists_read_the_same(which in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(),
                                   kind in 0..REPLACEMENTS.len() + 2) {
        static LISTS: std::sync::OnceLock<Vec<(String, Value)>> = std::sync::OnceLock::new();
        let lists = LISTS.get_or_init(recorded_lists);
        let (what, doc) = which.get(lists);
        let m = match kind {
            k if k < REPLACEMENTS.len() => Mutation::Replace(REPLACEMENTS[k]),
            k if k == REPLACEMENTS.len() => Mutation::Duplicate,
            _ => Mutation::Escape,
        };
        let target = at.index(count(doc));
        let mut text = String::new();
        write(doc, target, m, &mut 0, &mut text, false);
        same_lists(&text, &format!("{what} with {m:?} at {target}"));
    }

    #[test]
    fn damaged_bytes_read_the_same(which in any::<prop::sample::Index>(), at in any::<prop::sample::Index>(),
                                   byte in any::<u8>(), cut in any::<bool>()) {
        let (what, doc) = which.get(corpus());
        let mut text = doc.to_string().into_bytes();
        let i = at.index(text.len());
        if cut { text.truncate(i) } else { text[i] = byte }
        // Only text that is UTF-8 reaches the decoders (the watch decoder checks it first).
        if let Ok(text) = std::str::from_utf8(&text) {
            same(text, &format!("{what} damaged at {i}"));
        }
    }
}
