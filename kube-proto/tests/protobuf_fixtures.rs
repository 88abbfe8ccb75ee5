//! Every exchange recorded from a real kube-apiserver v1.36 in protobuf
//! (`tests/fixtures/apiserver-v1.36-protobuf`) is read with the core: single objects, lists,
//! `Status` errors and watch streams, into the same `k8s_openapi` types as JSON. Objects match
//! their recorded JSON twins field by field (up to the zero values Go writes to protobuf and
//! omits from JSON); every protobuf object survives a round trip through the encoder; every watch
//! stream decodes to the same events in any chunking.
#![cfg(feature = "protobuf")]

use http::{HeaderMap, StatusCode};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_proto::protobuf::{self, Envelope};
use kube_proto::{
    DeleteResponse, DynamicObject, PartialObjectMeta, Reason, ResourceExt, Response, WatchDecoder, WatchEvent,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apiserver-v1.36-protobuf");

struct Recorded {
    name: String,
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
    chunks: Vec<Vec<u8>>,
    json: Value,
}

fn b64(s: &Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s.as_str().expect("base64 text")).expect("base64")
}

#[allow(clippy::disallowed_methods)] // reading the fixtures is the point of these tests
fn load(name: &str) -> Recorded {
    let path = format!("{DIR}/{name}.json");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON");
    let resp = &json["response"];
    let mut headers = HeaderMap::new();
    for (k, v) in resp["headers"].as_object().expect("headers") {
        headers.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.as_str().unwrap().parse().unwrap());
    }
    let chunks: Vec<Vec<u8>> =
        resp["chunks_base64"].as_array().map(|a| a.iter().map(b64).collect()).unwrap_or_default();
    let body = if chunks.is_empty() { b64(&resp["body_base64"]) } else { chunks.concat() };
    Recorded {
        name: name.to_owned(),
        status: StatusCode::from_u16(resp["status"].as_u64().unwrap() as u16).unwrap(),
        headers,
        body,
        chunks,
        json,
    }
}

#[allow(clippy::disallowed_methods)]
fn names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(DIR)
        .expect("fixtures")
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    names
}

impl Recorded {
    fn response(&self) -> Response<'_> {
        Response::new(self.status, &self.headers, &self.body)
    }
    fn is_protobuf(&self) -> bool {
        protobuf::is_protobuf(&self.headers)
    }
    fn is_stream(&self) -> bool {
        !self.chunks.is_empty()
    }
}

/// JSON with what protobuf cannot tell from absence removed: `null`, `""`, `0`, `false`, `{}`
/// and `[]` (Go writes its value fields' zero values to protobuf, JSON leaves them out).
fn normalize(v: &Value) -> Value {
    fn zero(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
        }
    }
    match v {
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), normalize(v))).filter(|(_, v)| !zero(v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        v => v.clone(),
    }
}

/// JSON without its `null` members (a zero `Time` reads as `null`, and is not written back).
fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(o) => {
            Value::Object(o.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), strip_nulls(v))).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        v => v.clone(),
    }
}

/// Decodes a whole watch body pushed in the given chunk sizes (cycled).
fn watch<K: DeserializeOwned + 'static>(rec: &Recorded, sizes: &[usize]) -> Vec<WatchEvent<K>> {
    let mut d = WatchDecoder::<K>::new();
    d.use_content_type(&rec.headers);
    let mut out = Vec::new();
    let mut rest: &[u8] = &rec.body;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        i += 1;
        d.push(&rest[..n]);
        rest = &rest[n..];
        while let Some(e) = d.next_event() {
            out.push(e.unwrap_or_else(|e| panic!("{}: {e}", rec.name)));
        }
    }
    assert!(d.finish().is_none(), "{}: the stream ends between frames", rec.name);
    out
}

#[test]
fn every_protobuf_fixture_reads_and_round_trips() {
    let mut seen = 0;
    for name in names() {
        let rec = load(&name);
        if !rec.is_protobuf() {
            continue;
        }
        seen += 1;
        if rec.is_stream() {
            let events = watch::<Value>(&rec, &[usize::MAX]);
            assert!(!events.is_empty(), "{name}");
            // Every chunking gives the same events: each split into two, and odd sizes.
            for cut in 1..rec.body.len() {
                let mut d = WatchDecoder::<Value>::new();
                d.use_content_type(&rec.headers);
                d.push(&rec.body[..cut]);
                let mut got: Vec<_> = std::iter::from_fn(|| d.next_event()).map(Result::unwrap).collect();
                d.push(&rec.body[cut..]);
                got.extend(std::iter::from_fn(|| d.next_event()).map(Result::unwrap));
                assert!(d.finish().is_none());
                assert_eq!(got, events, "{name} split at {cut}");
            }
            for sizes in [&[1usize][..], &[3, 7], &[5, 64, 1], &[1000]] {
                assert_eq!(watch::<Value>(&rec, sizes), events, "{name} in chunks of {sizes:?}");
            }
            // The recorded socket chunks too.
            let mut d = WatchDecoder::<Value>::new();
            d.use_content_type(&rec.headers);
            let mut got = Vec::new();
            for c in &rec.chunks {
                d.push(c);
                got.extend(std::iter::from_fn(|| d.next_event()).map(Result::unwrap));
            }
            assert_eq!(got, events, "{name} as recorded");
            // Each event's object round-trips through the encoder.
            for e in &events {
                let (ty, obj) = match e {
                    WatchEvent::Added(o) => ("ADDED", o.clone()),
                    WatchEvent::Modified(o) => ("MODIFIED", o.clone()),
                    WatchEvent::Deleted(o) => ("DELETED", o.clone()),
                    _ => continue,
                };
                let frame = protobuf::watch_frame(ty, &obj).unwrap();
                let mut d = WatchDecoder::<Value>::new();
                d.use_content_type(&rec.headers);
                d.push(&frame);
                assert_eq!(d.next_event().unwrap().unwrap(), *e, "{name}: {ty} re-encoded");
            }
            continue;
        }
        let env = Envelope::parse(&rec.body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let value: Value = env.decode().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(value["kind"], env.kind, "{name}");
        assert_eq!(value["apiVersion"], env.api_version, "{name}");
        let again = protobuf::to_vec(&value).unwrap_or_else(|e| panic!("{name}: {e}"));
        let back: Value = protobuf::from_slice(&again).unwrap();
        assert_eq!(back, strip_nulls(&value), "{name}: decode(encode(decode(body))) == decode(body)");
    }
    assert_eq!(seen, 21, "every protobuf exchange was read");
}

/// Decodes a single-object fixture as `K`, and its JSON twin (when given) as `K` too, and checks
/// they agree.
fn object_with_twin<K: DeserializeOwned + 'static + serde::Serialize>(name: &str, twin: Option<&str>) -> K {
    let rec = load(name);
    let obj: K = rec.response().object().unwrap_or_else(|e| panic!("{name}: {e}"));
    if let Some(twin) = twin {
        let json = load(twin).json["response"]["body_json"].clone();
        let from_json: K = serde_json::from_value(json).unwrap();
        let a = normalize(&serde_json::to_value(&obj).unwrap());
        let b = normalize(&serde_json::to_value(&from_json).unwrap());
        assert_eq!(a, b, "{name} against {twin}");
    }
    obj
}

#[test]
fn objects_match_their_json_twins() {
    let pod: Pod = object_with_twin("pb-get-pod", Some("pb-get-pod-json"));
    assert_eq!(pod.name_any(), "p1");
    let spec = pod.spec.unwrap();
    let c = &spec.containers[0];
    assert_eq!(c.image.as_deref(), Some("registry.invalid/app:1"));
    let requests = c.resources.as_ref().unwrap().requests.as_ref().unwrap();
    assert_eq!(requests["cpu"].0, "100m");
    assert_eq!(requests["memory"].0, "64Mi");
    assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 8080);
    assert!(pod.metadata.creation_timestamp.is_some());
    // managedFields' FieldsV1 is JSON inside protobuf.
    let mf = &pod.metadata.managed_fields.as_ref().unwrap()[0];
    assert!(mf.fields_v1.as_ref().unwrap().0.get("f:spec").is_some());
    // Optional strings Go wrote empty read as absent, as in JSON.
    assert_eq!(pod.metadata.generate_name, None);

    let cm: ConfigMap = object_with_twin("pb-get-configmap", Some("pb-get-configmap-json"));
    assert!(cm.data.is_some());
}

#[test]
fn other_kinds_read() {
    let d: Deployment = object_with_twin("pb-get-deployment", None);
    assert!(d.spec.replicas.is_some());
    let s: Scale = object_with_twin("pb-get-scale", None);
    assert!(s.spec.unwrap().replicas.is_some());
    let ns: Namespace = object_with_twin("pb-get-namespace", None);
    assert!(!ns.name_any().is_empty());
    let crd: CustomResourceDefinition = object_with_twin("pb-get-crd", None);
    let version = &crd.spec.versions[0];
    let schema = version.schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap();
    assert_eq!(schema.type_.as_deref(), Some("object"));
    assert_eq!(schema.x_kubernetes_preserve_unknown_fields, Some(true));
    assert_eq!(crd.spec.names.kind, "Widget");
    let meta: PartialObjectMeta<Pod> = object_with_twin("pb-get-pod-metadata", None);
    assert_eq!(meta.name_any(), "p1");
    let applied: ConfigMap = object_with_twin("pb-apply-configmap-force", None);
    assert!(applied.metadata.managed_fields.is_some());
    let patched: ConfigMap = object_with_twin("pb-merge-patch-configmap", None);
    assert!(patched.metadata.resource_version.is_some());
}

#[test]
fn lists_carry_their_metadata() {
    let page = load("pb-list-configmaps-page").response().list::<ConfigMap>().unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page.continue_token().is_some());
    assert!(page.metadata.remaining_item_count.is_some_and(|n| n > 0));
    assert!(page.resource_version().is_some());
    let all = load("pb-list-configmaps").response().list::<ConfigMap>().unwrap();
    assert!(all.items.len() > 2);
    assert!(all.items.iter().all(|c| c.metadata.name.is_some()));
    let ns = load("pb-list-namespaces-accept-both").response().list::<Namespace>().unwrap();
    assert_eq!(ns.items.iter().map(ResourceExt::name_any).collect::<Vec<_>>(), ["pbfix"]);
}

#[test]
fn errors_are_statuses() {
    for name in ["pb-get-missing", "pb-get-missing-both"] {
        let e = load(name).response().object::<ConfigMap>().unwrap_err();
        assert!(e.is_not_found(), "{name}: {e:?}");
        assert!(e.to_string().contains("not found"), "{e}");
    }
    let e = load("pb-apply-configmap-conflict").response().object::<ConfigMap>().unwrap_err();
    assert_eq!(e.reason(), Some(&Reason::Conflict), "{e:?}");
    assert_eq!(e.http_status(), 409);
    let e = load("pb-get-custom-resource-pb-only").response().object::<DynamicObject>().unwrap_err();
    assert_eq!(e.http_status(), 406, "{e:?}");
    match load("pb-delete-configmap").response().delete::<ConfigMap>().unwrap() {
        DeleteResponse::Status(s) => assert_eq!(s.status, "Success"),
        other => panic!("{other:?}"),
    }
    // A custom resource asked for with both types comes back JSON, and reads as usual.
    let cr = load("pb-get-custom-resource-pb-or-json").response().object::<DynamicObject>().unwrap();
    assert!(cr.metadata.name.is_some());
}

#[test]
fn watch_streams_say_what_happened() {
    let events = watch::<ConfigMap>(&load("pb-watch-configmaps"), &[usize::MAX]);
    let types: Vec<_> = events.iter().map(WatchEvent::type_name).collect();
    assert_eq!(types.iter().filter(|t| **t == "ADDED").count(), 3, "{types:?}");
    assert!(types.contains(&"MODIFIED") && types.contains(&"DELETED"), "{types:?}");

    let streaming = watch::<ConfigMap>(&load("pb-watch-streaming-list"), &[usize::MAX]);
    let end = streaming.iter().position(|e| matches!(e, WatchEvent::Bookmark(b) if b.is_initial_events_end()));
    let end = end.expect("the bookmark that ends the initial events");
    assert!(streaming[..end].iter().all(|e| matches!(e, WatchEvent::Added(_))));

    // Its JSON twin has the same events.
    let twin = load("pb-watch-json-compare");
    let json = watch::<ConfigMap>(&twin, &[usize::MAX]);
    assert_eq!(json.len(), streaming.len());
    for (p, j) in streaming.iter().zip(&json) {
        match (p, j) {
            (WatchEvent::Added(a), WatchEvent::Added(b)) => {
                assert_eq!(normalize(&serde_json::to_value(a).unwrap()), normalize(&serde_json::to_value(b).unwrap()))
            }
            // (Two recordings: the resourceVersions differ.)
            (WatchEvent::Bookmark(a), WatchEvent::Bookmark(b)) => {
                assert_eq!(a.metadata.annotations, b.metadata.annotations)
            }
            other => panic!("{other:?}"),
        }
    }

    let pods = watch::<Pod>(&load("pb-watch-pods-from-zero"), &[usize::MAX]);
    assert!(pods.iter().any(|e| matches!(e, WatchEvent::Added(p) if p.spec.is_some())));

    let gone = watch::<ConfigMap>(&load("pb-watch-too-old"), &[usize::MAX]);
    match &gone[..] {
        [WatchEvent::Error(s)] => {
            assert_eq!(s.code, 410);
            assert_eq!(s.reason, Reason::Expired);
        }
        other => panic!("{other:?}"),
    }
}
