//! Every response recorded from a real kube-apiserver v1.36 (`tests/fixtures/apiserver-v1.36`)
//! is read with the core, [`kube_proto::Response`] and [`kube_proto::WatchDecoder`], as what the
//! request asked for: a typed object, a list, a delete outcome, text, a watch stream, or a typed
//! error. Generic checks compare what the core parsed with the recorded JSON (names,
//! resourceVersions, list metadata, every field of an error `Status`, every watch event); each
//! table entry adds the facts its fixture is about.

mod fixture_support;

use std::fmt::Debug;

use fixture_support::{Fixture, run_check};
use http::{HeaderMap, StatusCode};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest};
use k8s_openapi::api::authorization::v1::SelfSubjectAccessReview;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIGroup, APIGroupList, APIResourceList, APIVersions};
use k8s_openapi::apimachinery::pkg::version::Info;
use kube_proto::{
    ApiError, DeleteResponse, DynamicObject, ObjectList, PartialObjectMeta, Reason, Resource, ResourceExt, Response,
    ResponseError, Status, WatchDecoder, WatchEvent,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

type Check = fn(&Fixture);

/// Fixtures whose response the core cannot read as anything meaningful, and why. Empty: every
/// recorded response parses.
const NOT_PARSED: &[(&str, &str)] = &[];

// ---- Reading a recorded response ----

/// A recorded response, owned, so that a [`Response`] can borrow it.
struct Recorded {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Recorded {
    fn of(fx: &Fixture) -> Recorded {
        let status = StatusCode::from_u16(fx.status()).expect("a status code");
        Recorded { status, headers: fx.response_headers(), body: fx.response_body() }
    }
    fn response(&self) -> Response<'_> {
        Response::new(self.status, &self.headers, &self.body)
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// The core's view of `metadata` must be the recorded one.
fn same_meta<K: Resource>(k: &K, json: &Value, what: &str) {
    let m = &json["metadata"];
    assert_eq!(k.name(), m["name"].as_str(), "{what}: name");
    assert_eq!(k.namespace(), m["namespace"].as_str(), "{what}: namespace");
    assert_eq!(k.uid(), m["uid"].as_str(), "{what}: uid");
    assert_eq!(k.resource_version(), m["resourceVersion"].as_str(), "{what}: resourceVersion");
    let finalizers: Vec<&str> =
        m["finalizers"].as_array().map_or(vec![], |a| a.iter().filter_map(Value::as_str).collect());
    assert_eq!(k.finalizers(), finalizers.as_slice(), "{what}: finalizers");
    assert_eq!(k.is_terminating(), !m["deletionTimestamp"].is_null(), "{what}: deletionTimestamp");
}

/// Any JSON body the request asked for, read with `Response::object`.
fn any<T: DeserializeOwned + 'static>(fx: &Fixture) -> T {
    assert!((200..300).contains(&fx.status()), "a success status, got {}", fx.status());
    let rec = Recorded::of(fx);
    rec.response().object::<T>().unwrap_or_else(|e| panic!("does not parse as {}: {e}", std::any::type_name::<T>()))
}

/// One object, whose metadata must be the recorded one.
fn object<K: DeserializeOwned + 'static + Resource>(fx: &Fixture) -> K {
    let k: K = any(fx);
    same_meta(&k, fx.response_json(), "the object");
    k
}

/// A list, whose list metadata and items must be the recorded ones.
fn list<K: DeserializeOwned + 'static + Resource>(fx: &Fixture) -> ObjectList<K> {
    assert_eq!(fx.status(), 200);
    let rec = Recorded::of(fx);
    let list = rec.response().list::<K>().unwrap_or_else(|e| panic!("does not parse as a list: {e}"));
    same_list(&list, fx.response_json());
    list
}

fn same_list<K: Resource>(list: &ObjectList<K>, json: &Value) {
    assert_eq!(list.types.as_ref().map(|t| t.kind.as_str()), json["kind"].as_str(), "list kind");
    assert_eq!(list.resource_version(), str_at(json, "/metadata/resourceVersion"), "list resourceVersion");
    // An empty `continue` (as custom resource lists send) means no next page.
    let cont = str_at(json, "/metadata/continue").filter(|c| !c.is_empty());
    assert_eq!(list.continue_token(), cont, "list continue");
    assert_eq!(
        list.metadata.remaining_item_count,
        json.pointer("/metadata/remainingItemCount").and_then(Value::as_i64)
    );
    let items = json["items"].as_array().map_or(&[][..], Vec::as_slice);
    assert_eq!(list.items.len(), items.len(), "item count");
    for (i, (k, j)) in list.items.iter().zip(items).enumerate() {
        same_meta(k, j, &format!("item {i}"));
    }
}

fn item_names<K: Resource>(list: &ObjectList<K>) -> Vec<&str> {
    list.iter().map(|k| k.name().unwrap_or("")).collect()
}

/// The answer to a DELETE.
fn deleted<K: DeserializeOwned + 'static>(fx: &Fixture) -> DeleteResponse<K> {
    assert_eq!(fx.status(), 200);
    let rec = Recorded::of(fx);
    rec.response().delete::<K>().unwrap_or_else(|e| panic!("does not parse as a delete answer: {e}"))
}

/// A DELETE answered with the object itself: deletion is pending.
fn deleted_object<K: DeserializeOwned + 'static + Resource>(fx: &Fixture) -> K {
    match deleted::<K>(fx) {
        DeleteResponse::Object(k) => {
            same_meta(&k, fx.response_json(), "the deleted object");
            assert!(k.is_terminating(), "the object is not marked for deletion");
            k
        }
        DeleteResponse::Status(s) => panic!("a Status instead of the object: {s:?}"),
    }
}

/// A DELETE answered with a `Status` Success: the object is gone.
fn deleted_status<K: DeserializeOwned + 'static + Debug>(fx: &Fixture) -> Status {
    match deleted::<K>(fx) {
        DeleteResponse::Status(s) => {
            assert!(s.is_success(), "{s:?}");
            same_details(&s, fx.response_json());
            s
        }
        DeleteResponse::Object(k) => panic!("the object instead of a Status: {k:?}"),
    }
}

/// A `Status` Success as the body of a 201 (eviction, binding).
fn success_status(fx: &Fixture) -> Status {
    let s: Status = any(fx);
    assert!(s.is_success(), "{s:?}");
    assert_eq!(s.code, i32::from(fx.status()));
    s
}

/// The `details` and `metadata` of a `Status` must be the recorded ones.
fn same_details(s: &Status, json: &Value) {
    let d = &json["details"];
    let details = s.details.clone().unwrap_or_default();
    assert_eq!(details.name, d["name"].as_str().unwrap_or(""), "details.name");
    assert_eq!(details.group, d["group"].as_str().unwrap_or(""), "details.group");
    assert_eq!(details.kind, d["kind"].as_str().unwrap_or(""), "details.kind");
    assert_eq!(details.uid, d["uid"].as_str().unwrap_or(""), "details.uid");
    let causes = d["causes"].as_array().map_or(&[][..], Vec::as_slice);
    assert_eq!(details.causes.len(), causes.len(), "the number of causes");
    for (c, j) in details.causes.iter().zip(causes) {
        assert_eq!(c.reason, j["reason"].as_str().unwrap_or(""), "cause reason");
        assert_eq!(c.message, j["message"].as_str().unwrap_or(""), "cause message");
        assert_eq!(c.field, j["field"].as_str().unwrap_or(""), "cause field");
    }
    assert_eq!(s.metadata.continue_token.as_deref(), str_at(json, "/metadata/continue"), "metadata.continue");
    assert_eq!(s.message, json["message"].as_str().unwrap_or(""), "message");
}

/// An error answered with a `Status`: the typed error must carry the HTTP status, this reason,
/// the code, message, details and causes, and `Retry-After` (from the header, else from
/// `details.retryAfterSeconds`).
fn api_error(fx: &Fixture, reason: Reason) -> ApiError {
    let rec = Recorded::of(fx);
    let resp = rec.response();
    let err = resp.object::<DynamicObject>().expect_err("an error status reads as an error");
    assert_eq!(err, resp.error(), "object() and error() disagree");
    let ResponseError::Api(api) = err else { panic!("not an API error: {err:?}") };
    let json = fx.response_json();
    assert_eq!(api.http_status, fx.status());
    assert_eq!(api.status.reason, reason, "reason");
    assert_eq!(api.status.reason.as_str(), json["reason"].as_str().unwrap_or(""), "reason as sent");
    assert_eq!(i64::from(api.status.code), json["code"].as_i64().expect("code"), "code");
    assert_eq!(api.status.status, "Failure");
    same_details(&api.status, json);
    let header = fx.response()["headers"]["retry-after"].as_str().map(|s| s.parse::<u32>().expect("seconds"));
    let in_details = json.pointer("/details/retryAfterSeconds").and_then(Value::as_u64).map(|s| s as u32);
    assert_eq!(api.retry_after, header.or(in_details), "retry_after");
    assert_eq!(err_is_not_found(&api), fx.status() == 404);
    *api
}

fn err_is_not_found(api: &ApiError) -> bool {
    ResponseError::Api(Box::new(api.clone())).is_not_found()
}

fn cause_reasons(api: &ApiError) -> Vec<&str> {
    api.status.causes().iter().map(|c| c.reason.as_str()).collect()
}

/// An error whose body is not JSON (the plain-text `404 page not found`, ...).
fn not_json(fx: &Fixture) -> ResponseError {
    let rec = Recorded::of(fx);
    let err = rec.response().object::<DynamicObject>().expect_err("a non-JSON body is an error");
    match &err {
        ResponseError::NotJson { status, content_type, snippet, len, .. } => {
            assert_eq!(*status, fx.status());
            assert_eq!(content_type.as_deref(), fx.response()["headers"]["content-type"].as_str());
            assert!(rec.body.starts_with(snippet.as_bytes()), "the snippet is the start of the body");
            assert_eq!(snippet.len(), rec.body.len().min(256));
            assert_eq!(*len, rec.body.len());
        }
        other => panic!("not NotJson: {other:?}"),
    }
    assert_eq!(err.is_not_found(), fx.status() == 404);
    assert_eq!(err, rec.response().error());
    err
}

fn text_404(fx: &Fixture) {
    not_json(fx);
    assert_eq!(fx.response_body(), b"404 page not found\n");
}

/// A text body, such as a pod log.
fn text(fx: &Fixture) -> String {
    let rec = Recorded::of(fx);
    rec.response().text().unwrap_or_else(|e| panic!("does not read as text: {e}"))
}

fn warning(fx: &Fixture) -> String {
    Recorded::of(fx).headers.get("warning").expect("a Warning header").to_str().expect("ASCII").to_owned()
}

// ---- Watch streams ----

/// Feeds `bytes` to a decoder in chunks of `chunk` bytes and collects every event.
fn decode<K: DeserializeOwned + 'static>(bytes: &[u8], chunk: usize) -> Vec<WatchEvent<K>> {
    let mut decoder = WatchDecoder::<K>::new();
    let mut events = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        decoder.push(piece);
        while let Some(e) = decoder.next_event() {
            events.push(e.unwrap_or_else(|e| panic!("chunks of {chunk}: {e}")));
        }
    }
    if let Some(e) = decoder.finish() {
        events.push(e.unwrap_or_else(|e| panic!("chunks of {chunk}, last line: {e}")));
    }
    events
}

fn types<K>(events: &[WatchEvent<K>]) -> Vec<&'static str> {
    events.iter().map(WatchEvent::type_name).collect()
}

/// A watch stream: the recorded lines joined with `\n` (and, as the server sends them, with a
/// final `\n` too), decoded whole, byte by byte, and in chunks of 7 and 4096 bytes. Every way
/// must give the same events, and each event must be the recorded line: its type, the object's
/// metadata, a bookmark's resourceVersion and initial-events-end annotation, an ERROR's Status.
fn watch<K: DeserializeOwned + 'static + Resource + PartialEq + Debug>(fx: &Fixture) -> Vec<WatchEvent<K>> {
    assert_eq!(fx.status(), 200);
    let lines = fx.body_lines().expect("a watch fixture has body_lines");
    let joined = lines.iter().map(|l| serde_json::to_string(l).expect("JSON")).collect::<Vec<_>>().join("\n");
    let terminated = format!("{joined}\n");
    let events: Vec<WatchEvent<K>> = decode(joined.as_bytes(), joined.len());
    for stream in [&joined, &terminated] {
        for chunk in [stream.len(), 1, 7, 4096] {
            assert_eq!(decode::<K>(stream.as_bytes(), chunk), events, "chunks of {chunk}");
        }
    }
    assert_eq!(events.len(), lines.len(), "one event per line");
    for (i, (event, line)) in events.iter().zip(lines).enumerate() {
        assert_eq!(event.type_name(), line["type"].as_str().expect("type"), "event {i}: type");
        let object = &line["object"];
        match event {
            WatchEvent::Added(k) | WatchEvent::Modified(k) | WatchEvent::Deleted(k) => {
                same_meta(k, object, &format!("event {i}"));
            }
            WatchEvent::Bookmark(b) => {
                assert_eq!(Some(b.metadata.resource_version.as_str()), str_at(object, "/metadata/resourceVersion"));
                let annotated = str_at(object, "/metadata/annotations/k8s.io~1initial-events-end") == Some("true");
                assert_eq!(b.is_initial_events_end(), annotated, "event {i}: initial-events-end");
            }
            WatchEvent::Error(s) => {
                assert_eq!(i64::from(s.code), object["code"].as_i64().expect("code"), "event {i}: code");
                assert_eq!(s.reason.as_str(), object["reason"].as_str().unwrap_or(""), "event {i}: reason");
                same_details(s, object);
            }
        }
    }
    events
}

/// A stream that is one ERROR event with a 410 Expired Status.
fn watch_expired(fx: &Fixture) {
    let events = watch::<ConfigMap>(fx);
    match events.as_slice() {
        [WatchEvent::Error(s)] => {
            assert_eq!((s.code, &s.reason, s.status.as_str()), (410, &Reason::Expired, "Failure"));
        }
        other => panic!("expected one ERROR event, got {:?}", types(other)),
    }
}

/// A streaming list: one ADDED per object, then the initial-events-end bookmark.
fn streaming_list<K: DeserializeOwned + 'static + Resource + PartialEq + Debug>(fx: &Fixture) -> Vec<WatchEvent<K>> {
    let events = watch::<K>(fx);
    let (last, initial) = events.split_last().expect("events");
    assert!(!initial.is_empty() && initial.iter().all(|e| matches!(e, WatchEvent::Added(_))), "{:?}", types(&events));
    match last {
        WatchEvent::Bookmark(b) => assert!(b.is_initial_events_end()),
        other => panic!("the last event is {}", other.type_name()),
    }
    events
}

fn only_added(fx: &Fixture) {
    let events = watch::<ConfigMap>(fx);
    assert!(!events.is_empty() && events.iter().all(|e| matches!(e, WatchEvent::Added(_))), "{:?}", types(&events));
}

fn silent_stream(fx: &Fixture) {
    assert!(watch::<ConfigMap>(fx).is_empty());
}

// ---- Shorthands for the table ----

fn configmap(fx: &Fixture) {
    object::<ConfigMap>(fx);
}
fn configmaps(fx: &Fixture) {
    list::<ConfigMap>(fx);
}
fn deployment(fx: &Fixture) {
    object::<Deployment>(fx);
}
fn pod(fx: &Fixture) {
    object::<Pod>(fx);
}
fn scale(fx: &Fixture) -> Scale {
    let s = object::<Scale>(fx);
    assert_eq!(
        s.spec.as_ref().and_then(|s| s.replicas),
        fx.response_json().pointer("/spec/replicas").and_then(|r| r.as_i64()).map(|r| r as i32)
    );
    s
}
fn widget(fx: &Fixture) -> DynamicObject {
    let w = object::<DynamicObject>(fx);
    assert_eq!(w.types.as_ref().map(|t| (t.api_version.as_str(), t.kind.as_str())), Some(("example.com/v1", "Widget")));
    w
}
fn metadata_only(fx: &Fixture) -> PartialObjectMeta<ConfigMap> {
    let m = object::<PartialObjectMeta<ConfigMap>>(fx);
    let types = m.types.as_ref().expect("apiVersion and kind");
    assert_eq!((types.api_version.as_str(), types.kind.as_str()), ("meta.k8s.io/v1", "PartialObjectMetadata"));
    m
}
fn discovery_list(fx: &Fixture) {
    let list = any::<ObjectList<DynamicObject>>(fx);
    assert_eq!(list.types.as_ref().map(|t| t.kind.as_str()), Some("APIGroupDiscoveryList"));
    assert_eq!(list.items.len(), fx.response_json()["items"].as_array().expect("items").len());
    assert!(list.iter().all(|g| g.data["versions"].is_array()), "every group lists its versions");
}
fn not_found(fx: &Fixture) {
    api_error(fx, Reason::NotFound);
}
fn forbidden(fx: &Fixture) {
    api_error(fx, Reason::Forbidden);
}
fn bad_request(fx: &Fixture) {
    api_error(fx, Reason::BadRequest);
}
fn invalid(fx: &Fixture) {
    api_error(fx, Reason::Invalid);
}
fn conflict(fx: &Fixture) {
    assert!(Recorded::of(fx).response().error().is_conflict());
    api_error(fx, Reason::Conflict);
}
fn method_not_allowed(fx: &Fixture) {
    api_error(fx, Reason::MethodNotAllowed);
}
fn not_acceptable(fx: &Fixture) {
    api_error(fx, Reason::NotAcceptable);
}
fn unsupported_media_type(fx: &Fixture) {
    api_error(fx, Reason::UnsupportedMediaType);
}
/// 410 Expired from a LIST (`resourceVersionMatch=Exact` or an old continue token).
fn gone(fx: &Fixture) -> ApiError {
    let api = api_error(fx, Reason::Expired);
    assert!(ResponseError::Api(Box::new(api.clone())).is_gone());
    api
}
/// 410 Expired for an old continue token: the Status offers a token for an inconsistent
/// continuation in `metadata.continue`.
fn continue_expired(fx: &Fixture) {
    let api = gone(fx);
    assert!(api.status.metadata.continue_token.as_deref().is_some_and(|t| !t.is_empty()), "no fresh continue token");
}
/// 504 for a resourceVersion in the future, with the ResourceVersionTooLarge cause.
fn rv_too_large(fx: &Fixture) -> ApiError {
    let api = api_error(fx, Reason::Timeout);
    assert_eq!(cause_reasons(&api), ["ResourceVersionTooLarge"]);
    api
}
/// With the watch cache on, the 504 asks to retry after 1 s (header and details).
fn rv_too_large_retry(fx: &Fixture) {
    let api = rv_too_large(fx);
    assert_eq!(api.retry_after, Some(1));
    assert_eq!(Recorded::of(fx).headers["retry-after"], "1");
    assert_eq!(api.status.details.and_then(|d| d.retry_after_seconds), Some(1));
}
fn message_has(api: &ApiError, needle: &str) {
    assert!(api.status.message.contains(needle), "{:?} does not contain {needle:?}", api.status.message);
}
fn no_host(fx: &Fixture) {
    message_has(&api_error(fx, Reason::BadRequest), "does not have a host assigned");
}
fn upgrade_required(fx: &Fixture) {
    message_has(&api_error(fx, Reason::BadRequest), "Upgrade request required");
}
fn unknown_resource(fx: &Fixture) {
    let api = api_error(fx, Reason::NotFound);
    assert_eq!(api.status.message, "the server could not find the requested resource");
}
fn empty_log(fx: &Fixture) {
    assert_eq!(fx.status(), 204);
    assert_eq!(text(fx), "");
}
fn resource_version_of(fixture: &str) -> String {
    let fx = Fixture::load(fixture);
    str_at(fx.response_json(), "/metadata/resourceVersion").expect("a resourceVersion").to_owned()
}

fn table() -> Vec<(&'static str, Check)> {
    vec![
        // Server-side apply.
        ("apply-configmap-create", |fx| {
            assert_eq!(fx.status(), 201);
            let cm = object::<ConfigMap>(fx);
            let mf = &cm.metadata.managed_fields.expect("managedFields")[0];
            assert_eq!((mf.manager.as_deref(), mf.operation.as_deref()), (Some("a"), Some("Apply")));
        }),
        ("apply-configmap-again", configmap),
        ("apply-configmap-noop", |fx| {
            let cm = object::<ConfigMap>(fx);
            assert_eq!(
                cm.resource_version(),
                Some(resource_version_of("apply-configmap-again").as_str()),
                "a no-op apply"
            );
        }),
        ("apply-configmap-conflict", |fx| {
            let api = api_error(fx, Reason::Conflict);
            assert_eq!(api.status.causes()[0].reason, "FieldManagerConflict");
            assert_eq!(api.status.causes()[0].field, ".data.shared");
        }),
        ("apply-configmap-force", |fx| {
            let cm = object::<ConfigMap>(fx);
            assert_eq!(cm.data.expect("data")["shared"], "from-b");
        }),
        ("apply-configmap-json-body", |fx| {
            let cm = object::<ConfigMap>(fx);
            let data = cm.data.expect("data");
            assert_eq!(data.get("key").map(String::as_str), Some("json-body"));
            assert!(!data.contains_key("shared"), "fields a no longer applies are removed");
        }),
        ("apply-configmap-missing-name", |fx| assert_eq!(object::<ConfigMap>(fx).name(), Some("ssa"))),
        ("apply-configmap-no-fieldmanager", |fx| {
            let api = api_error(fx, Reason::Invalid);
            message_has(&api, "fieldManager");
        }),
        ("apply-deployment-scale-conflict", |fx| {
            let api = api_error(fx, Reason::Conflict);
            message_has(&api, "with subresource \"scale\"");
        }),
        ("apply-deployment-scale-force", |fx| assert_eq!(scale(fx).spec.and_then(|s| s.replicas), Some(2))),
        ("crd-widget-apply-conflict", |fx| {
            let api = api_error(fx, Reason::Conflict);
            assert_eq!(cause_reasons(&api), ["FieldManagerConflict"]);
        }),
        ("crd-widget-apply-force", |fx| assert_eq!(widget(fx).data["spec"]["color"], "blue")),
        // Authentication and authorization.
        ("auth-forbidden-create-deployment", |fx| {
            let api = api_error(fx, Reason::Forbidden);
            assert_eq!(api.status.details.expect("details").group, "apps");
        }),
        ("auth-forbidden-get", |fx| {
            let d = api_error(fx, Reason::Forbidden).status.details.expect("details");
            assert_eq!((d.name.as_str(), d.kind.as_str()), ("cm1", "configmaps"));
        }),
        ("auth-forbidden-list", forbidden),
        ("auth-forbidden-list-cluster", |fx| message_has(&api_error(fx, Reason::Forbidden), "at the cluster scope")),
        // A watch refused before it starts is an ordinary error response, not a stream.
        ("auth-forbidden-watch", |fx| {
            assert!(fx.body_lines().is_none());
            forbidden(fx);
        }),
        ("auth-no-token", |fx| message_has(&api_error(fx, Reason::Forbidden), "system:anonymous")),
        ("auth-no-token-discovery", |fx| message_has(&api_error(fx, Reason::Forbidden), "cannot get path \"/api\"")),
        ("auth-no-token-readyz", |fx| assert_eq!(text(fx), "ok")),
        ("auth-wrong-token", |fx| {
            api_error(fx, Reason::Unauthorized);
        }),
        ("create-serviceaccount", |fx| {
            object::<ServiceAccount>(fx);
        }),
        ("create-serviceaccount-token", |fx| {
            let tr = any::<TokenRequest>(fx);
            let status = tr.status.expect("status");
            assert_eq!(status.token.as_deref(), Some("REDACTED"));
            assert!(status.expiration_timestamp.is_some());
        }),
        ("selfsubjectaccessreview-denied", |fx| {
            let review = any::<SelfSubjectAccessReview>(fx);
            assert!(!review.status.expect("status").allowed);
        }),
        ("selfsubjectreview-serviceaccount", |fx| {
            let review = any::<SelfSubjectReview>(fx);
            let user = review.status.and_then(|s| s.user_info).expect("userInfo");
            assert_eq!(user.username.as_deref(), Some("system:serviceaccount:fixtures:nobody"));
        }),
        // Custom resources.
        ("crd-create", |fx| {
            let crd = object::<CustomResourceDefinition>(fx);
            let status = crd.status.expect("status");
            assert_eq!(status.conditions, None, "conditions: null before the controllers ran");
            assert_eq!(status.accepted_names.expect("acceptedNames").kind, "");
        }),
        ("crd-gadget-create", |fx| {
            object::<CustomResourceDefinition>(fx);
        }),
        ("crd-get-established", |fx| {
            let crd = object::<CustomResourceDefinition>(fx);
            let conditions = crd.status.and_then(|s| s.conditions).expect("conditions");
            assert!(conditions.iter().any(|c| c.type_ == "Established" && c.status == "True"));
        }),
        ("crd-delete", |fx| {
            let crd = deleted_object::<CustomResourceDefinition>(fx);
            assert_eq!(crd.finalizers(), ["customresourcecleanup.apiextensions.k8s.io"]);
        }),
        ("crd-gadget-create-before-crd-exists", text_404),
        ("crd-gadget-create-before-established", text_404),
        ("crd-gadget-create-first-success", |fx| {
            let g = object::<DynamicObject>(fx);
            assert_eq!(g.types.expect("types").kind, "Gadget");
            assert_eq!(g.data["spec"]["size"], 1);
        }),
        ("crd-widget-create", |fx| assert_eq!(widget(fx).data["spec"]["color"], "red")),
        ("crd-widget-create-invalid", |fx| {
            let api = api_error(fx, Reason::Invalid);
            assert_eq!(api.status.causes().len(), 3);
        }),
        ("crd-widget-create-unknown-field", |fx| {
            let w = widget(fx);
            assert!(w.data["spec"].get("extra").is_none(), "the unknown field is pruned");
            assert!(warning(fx).contains("unknown field \\\"spec.extra\\\""), "{}", warning(fx));
        }),
        ("crd-widget-create-unknown-field-strict", bad_request),
        ("crd-widget-delete", |fx| {
            let d = deleted_status::<DynamicObject>(fx).details.expect("details");
            assert_eq!((d.group.as_str(), d.kind.as_str(), d.name.as_str()), ("example.com", "widgets", "w3"));
        }),
        ("crd-widget-get", |fx| {
            widget(fx);
        }),
        ("crd-widget-get-notfound", |fx| {
            let d = api_error(fx, Reason::NotFound).status.details.expect("details");
            assert_eq!((d.group.as_str(), d.kind.as_str()), ("example.com", "widgets"));
        }),
        ("crd-widget-get-scale", |fx| {
            let s = scale(fx);
            assert_eq!(s.status.expect("status").selector.as_deref(), Some("app=widget"));
        }),
        ("crd-widget-list", |fx| {
            let list = list::<DynamicObject>(fx);
            assert_eq!(list.types.expect("types").api_version, "example.com/v1");
            assert_eq!(list.metadata.continue_token.as_deref(), Some(""), "CR lists send an empty continue");
        }),
        ("crd-widget-list-as-table", |fx| {
            let table = object::<DynamicObject>(fx);
            assert_eq!(table.types.as_ref().map(|t| t.kind.as_str()), Some("Table"));
            let columns: Vec<&str> = table.data["columnDefinitions"]
                .as_array()
                .expect("columns")
                .iter()
                .filter_map(|c| c["name"].as_str())
                .collect();
            assert!(columns.contains(&"Color") && columns.contains(&"Replicas"), "{columns:?}");
        }),
        ("crd-widget-patch-main-status-ignored", |fx| {
            let w = widget(fx);
            assert_eq!(w.data["spec"]["color"], "green");
            assert_ne!(w.data["status"]["phase"], "Ignored");
        }),
        ("crd-widget-patch-scale", |fx| assert_eq!(scale(fx).spec.and_then(|s| s.replicas), Some(5))),
        ("crd-widget-patch-status", |fx| assert_eq!(widget(fx).data["status"]["phase"], "Ready")),
        ("crd-widget-strategic-merge-patch", unsupported_media_type),
        ("crd-widget-watch-streaming-list", |fx| {
            let events = streaming_list::<DynamicObject>(fx);
            assert_eq!(events.len(), 3);
        }),
        // ConfigMaps: create.
        ("create-configmap", |fx| {
            assert_eq!(fx.status(), 201);
            let cm = object::<ConfigMap>(fx);
            assert!(cm.uid().is_some() && cm.resource_version().is_some() && cm.metadata.creation_timestamp.is_some());
            assert_eq!(
                cm.metadata.managed_fields.expect("managedFields")[0].manager.as_deref(),
                Some("fixture-capture")
            );
        }),
        ("create-configmap-alreadyexists", |fx| {
            api_error(fx, Reason::AlreadyExists);
        }),
        ("create-configmap-body-empty", |fx| {
            message_has(&api_error(fx, Reason::BadRequest), "unexpected end of JSON input")
        }),
        ("create-configmap-body-not-json", bad_request),
        ("create-configmap-dryrun", |fx| {
            let cm = object::<ConfigMap>(fx);
            assert!(cm.uid().is_some() && cm.resource_version().is_none(), "a dry run is not stored");
        }),
        ("create-configmap-duplicate-field-strict", bad_request),
        ("create-configmap-generatename", |fx| {
            let cm = object::<ConfigMap>(fx);
            let name = cm.name().expect("a name");
            assert!(name.starts_with("gen-") && name.len() == "gen-".len() + 5, "{name}");
        }),
        ("create-configmap-invalid-multiple-causes", |fx| {
            assert_eq!(api_error(fx, Reason::Invalid).status.causes().len(), 3)
        }),
        ("create-configmap-invalid-name", |fx| {
            let api = api_error(fx, Reason::Invalid);
            assert_eq!(api.status.causes()[0].field, "metadata.name");
        }),
        ("create-configmap-namespace-mismatch", bad_request),
        ("create-configmap-namespace-missing", |fx| {
            let d = api_error(fx, Reason::NotFound).status.details.expect("details");
            assert_eq!(d.kind, "namespaces");
        }),
        ("create-configmap-namespace-terminating", |fx| {
            assert_eq!(cause_reasons(&api_error(fx, Reason::Forbidden)), ["NamespaceTerminating"]);
        }),
        ("create-configmap-no-kind", |fx| assert_eq!(object::<ConfigMap>(fx).name(), Some("nokind"))),
        ("create-configmap-unknown-field-strict", |fx| {
            message_has(&api_error(fx, Reason::BadRequest), "strict decoding error")
        }),
        ("create-configmap-unknown-field-warn", |fx| {
            configmap(fx);
            assert!(warning(fx).contains("unknown field \\\"bogus\\\""), "{}", warning(fx));
        }),
        ("create-configmap-unsupported-content-type", unsupported_media_type),
        ("create-configmap-wrong-apiversion", |fx| message_has(&api_error(fx, Reason::BadRequest), "apps/v1")),
        ("create-configmap-wrong-kind", bad_request),
        ("create-configmap-yaml-body", |fx| assert_eq!(object::<ConfigMap>(fx).name(), Some("from-yaml"))),
        ("post-all-namespaces-collection-405", method_not_allowed),
        ("post-to-named-resource-405", method_not_allowed),
        ("put-collection-405", method_not_allowed),
        ("patch-collection-405", method_not_allowed),
        ("deletecollection-namespaces-405", method_not_allowed),
        // ConfigMaps: get.
        ("get-configmap", configmap),
        ("get-configmap-accept-any", configmap),
        ("get-configmap-accept-not-acceptable", not_acceptable),
        // We asked for YAML: the core reads JSON only, so the object is a NotJson error, and the
        // body is still there as text.
        ("get-configmap-accept-yaml", |fx| {
            not_json(fx);
            assert!(text(fx).contains("kind: ConfigMap"));
        }),
        ("get-configmap-after-dryrun-notfound", not_found),
        ("get-configmap-after-foreground-delete", not_found),
        ("get-configmap-namespace-missing", not_found),
        ("get-configmap-notfound", not_found),
        ("get-configmap-rv-too-large", rv_too_large_retry),
        ("get-configmap-rv0", configmap),
        ("nocache-get-configmap-old-rv", configmap),
        // Metadata only.
        ("get-configmap-metadata-only", |fx| {
            let m = metadata_only(fx);
            assert!(m.labels().contains_key("app"));
        }),
        ("get-configmap-metadata-only-with-fallback", |fx| {
            metadata_only(fx);
        }),
        ("get-configmap-metadata-only-bad-as", not_acceptable),
        ("get-configmap-metadata-only-wrong-as", |fx| {
            message_has(&api_error(fx, Reason::NotAcceptable), "the requested object is not a list");
        }),
        ("get-pod-metadata-only", |fx| {
            let m = object::<PartialObjectMeta<Pod>>(fx);
            assert_eq!(m.types.expect("types").kind, "PartialObjectMetadata");
        }),
        ("list-configmaps-metadata-only", |fx| {
            let list = list::<PartialObjectMeta<ConfigMap>>(fx);
            assert_eq!(list.types.as_ref().expect("types").kind, "PartialObjectMetadataList");
            // Unlike the items of a typed list, each item says it is a PartialObjectMetadata.
            assert!(list.iter().all(|m| m.types.as_ref().is_some_and(|t| t.kind == "PartialObjectMetadata")));
        }),
        ("list-configmaps-metadata-only-wrong-as", |fx| {
            message_has(&api_error(fx, Reason::NotAcceptable), "the requested object is a list");
        }),
        ("list-configmaps-as-table", |fx| {
            let table = object::<DynamicObject>(fx);
            assert_eq!(table.types.as_ref().map(|t| t.kind.as_str()), Some("Table"));
            assert!(table.data["rows"].as_array().is_some_and(|r| r.len() == 3), "limit=3 rows");
        }),
        ("watch-configmaps-metadata-only", |fx| {
            let events = watch::<PartialObjectMeta<ConfigMap>>(fx);
            assert_eq!(types(&events), ["MODIFIED", "BOOKMARK", "BOOKMARK"]);
            let WatchEvent::Modified(m) = &events[0] else { unreachable!() };
            assert_eq!(m.types.as_ref().expect("types").kind, "PartialObjectMetadata");
            assert_eq!(m.annotations().get("touched").map(String::as_str), Some("yes"));
        }),
        ("watch-configmaps-metadata-only-list-as", |fx| {
            assert!(watch::<PartialObjectMeta<ConfigMap>>(fx).is_empty(), "the stream ends with no events");
        }),
        ("watch-streaming-list-metadata-only", |fx| {
            let events = streaming_list::<PartialObjectMeta<ConfigMap>>(fx);
            assert_eq!(events.len(), 10);
        }),
        // ConfigMaps: replace.
        ("replace-configmap", |fx| {
            let cm = object::<ConfigMap>(fx);
            assert_ne!(cm.resource_version(), Some("609"), "a new resourceVersion");
        }),
        ("replace-configmap-name-mismatch", bad_request),
        ("replace-configmap-no-rv", configmap),
        ("replace-configmap-notfound", not_found),
        ("replace-configmap-stale-rv", |fx| {
            message_has(&api_error(fx, Reason::Conflict), "the object has been modified")
        }),
        // ConfigMaps: patch.
        ("patch-configmap-jsonpatch", |fx| {
            let data = object::<ConfigMap>(fx).data.expect("data");
            assert_eq!((data.get("a").map(String::as_str), data.contains_key("e")), (Some("10"), false));
        }),
        // A failing `test` op and `remove` of a missing path: the same generic 422.
        ("patch-configmap-jsonpatch-remove-missing", |fx| {
            let api = api_error(fx, Reason::Invalid);
            assert_eq!(api.status.message, "the server rejected our request due to an error in our request");
        }),
        ("patch-configmap-jsonpatch-test-failed", |fx| {
            let api = api_error(fx, Reason::Invalid);
            assert_eq!(api.status.message, "the server rejected our request due to an error in our request");
            assert_eq!(api.status.details, Some(Default::default()), "empty details");
        }),
        ("patch-configmap-jsonpatch-stale-rv", conflict),
        ("patch-configmap-merge", |fx| {
            let cm = object::<ConfigMap>(fx);
            assert_eq!(cm.labels().get("patched").map(String::as_str), Some("merge"));
            assert!(!cm.data.expect("data").contains_key("b"), "null deletes");
        }),
        ("patch-configmap-merge-force-param", invalid),
        ("patch-configmap-merge-invalid-json", bad_request),
        ("patch-configmap-merge-wrong-type", invalid),
        ("patch-configmap-notfound", not_found),
        ("patch-configmap-strategic-merge", |fx| {
            let cm = object::<ConfigMap>(fx);
            assert_eq!(cm.labels().get("patched").map(String::as_str), Some("smp"));
        }),
        ("patch-configmap-unsupported-content-type", unsupported_media_type),
        // ConfigMaps: delete and deletecollection.
        ("delete-configmap", |fx| {
            let d = deleted_status::<ConfigMap>(fx).details.expect("details");
            assert_eq!((d.name.as_str(), d.kind.as_str()), ("del1", "configmaps"));
            assert!(!d.uid.is_empty());
        }),
        ("delete-configmap-dryrun", |fx| {
            deleted_status::<ConfigMap>(fx);
        }),
        ("delete-configmap-foreground", |fx| {
            let cm = deleted_object::<ConfigMap>(fx);
            assert_eq!(cm.finalizers(), ["foregroundDeletion"]);
            assert_eq!(cm.metadata.deletion_grace_period_seconds, Some(0));
        }),
        ("delete-configmap-notfound", not_found),
        ("delete-configmap-orphandependents-false", |fx| {
            deleted_status::<ConfigMap>(fx);
        }),
        ("delete-configmap-precondition-match", |fx| {
            deleted_status::<ConfigMap>(fx);
        }),
        ("delete-configmap-precondition-rv-mismatch", conflict),
        ("delete-configmap-precondition-uid-mismatch", conflict),
        ("deletecollection-configmaps-labelselector", |fx| {
            let DeleteResponse::Object(list) = deleted::<ObjectList<ConfigMap>>(fx) else { panic!("a Status") };
            same_list(&list, fx.response_json());
            assert_eq!(list.items.len(), 3);
            assert!(list.iter().all(|cm| cm.labels().get("batch").map(String::as_str) == Some("x")));
        }),
        ("deletecollection-configmaps-nothing-matches", |fx| {
            let DeleteResponse::Object(list) = deleted::<ObjectList<ConfigMap>>(fx) else { panic!("a Status") };
            same_list(&list, fx.response_json());
            assert!(list.items.is_empty());
        }),
        // Finalizers.
        ("finalizer-create-configmap", |fx| assert_eq!(object::<ConfigMap>(fx).finalizers(), ["example.com/hold"])),
        ("finalizer-delete-configmap", |fx| {
            let cm = deleted_object::<ConfigMap>(fx);
            assert_eq!(cm.finalizers(), ["example.com/hold"]);
        }),
        ("finalizer-delete-configmap-again", |fx| {
            let cm = deleted_object::<ConfigMap>(fx);
            assert_eq!(
                cm.resource_version(),
                Some(resource_version_of("finalizer-delete-configmap").as_str()),
                "unchanged"
            );
        }),
        ("finalizer-get-terminating-configmap", |fx| {
            let cm = object::<ConfigMap>(fx);
            assert!(cm.is_terminating() && cm.finalizers() == ["example.com/hold"]);
        }),
        ("finalizer-get-after-removal", not_found),
        ("finalizer-add-while-terminating", |fx| assert_eq!(api_error(fx, Reason::Invalid).status.causes().len(), 2)),
        ("finalizer-update-while-terminating", configmap),
        ("finalizer-remove-patch", |fx| {
            let cm = object::<ConfigMap>(fx);
            assert!(cm.finalizers().is_empty() && cm.is_terminating());
            let before = resource_version_of("finalizer-update-while-terminating");
            assert_eq!(cm.resource_version(), Some(before.as_str()), "the old resourceVersion");
        }),
        ("finalizer-watch-remove", |fx| {
            let events = watch::<ConfigMap>(fx);
            let [WatchEvent::Deleted(cm)] = events.as_slice() else { panic!("{:?}", types(&events)) };
            assert_eq!(cm.finalizers(), ["example.com/hold"], "the DELETED object still shows the finalizer");
            assert_ne!(cm.resource_version(), Some(resource_version_of("finalizer-remove-patch").as_str()));
        }),
        // Lists.
        ("list-configmaps-all-namespaces", |fx| {
            let list = list::<ConfigMap>(fx);
            assert!(list.continue_token().is_some() && list.metadata.remaining_item_count.is_none());
            assert!(list.iter().all(|cm| cm.namespace().is_some()));
        }),
        ("list-configmaps-continue-compacted-cached", continue_expired),
        ("list-configmaps-continue-invalid", bad_request),
        ("list-configmaps-fieldselector-name", |fx| assert_eq!(item_names(&list::<ConfigMap>(fx)), ["cm1"])),
        ("list-configmaps-fieldselector-name-notequal", |fx| {
            let list = list::<ConfigMap>(fx);
            assert!(!item_names(&list).contains(&"cm1") && list.items.len() == 4);
        }),
        ("list-configmaps-fieldselector-unsupported", bad_request),
        ("list-configmaps-labelselector-equality", |fx| assert_eq!(item_names(&list::<ConfigMap>(fx)), ["cm1", "cm2"])),
        ("list-configmaps-labelselector-exists-notexists", |fx| assert!(list::<ConfigMap>(fx).items.is_empty())),
        ("list-configmaps-labelselector-invalid", bad_request),
        ("list-configmaps-labelselector-setbased", |fx| assert_eq!(item_names(&list::<ConfigMap>(fx)), ["cm2", "cm4"])),
        ("list-configmaps-paginated-page1", |fx| page(fx, &["kube-root-ca.crt", "page-0"], Some(6))),
        ("list-configmaps-paginated-page2", |fx| page(fx, &["page-1", "page-2"], Some(4))),
        ("list-configmaps-paginated-page3", |fx| page(fx, &["page-3", "page-4"], Some(2))),
        ("list-configmaps-paginated-page4", |fx| last_page(fx, &["page-5", "page-6"])),
        // With a label selector, pages carry no remainingItemCount.
        ("list-configmaps-paginated-labelselector-page1", |fx| page(fx, &["page-0", "page-1"], None)),
        ("list-configmaps-paginated-labelselector-page2", |fx| page(fx, &["page-2", "page-3"], None)),
        ("list-configmaps-paginated-labelselector-page3", |fx| page(fx, &["page-4", "page-5"], None)),
        ("list-configmaps-paginated-labelselector-page4", |fx| last_page(fx, &["page-6"])),
        ("list-configmaps-rv-too-large", rv_too_large_retry),
        ("list-configmaps-rv-too-large-no-match", rv_too_large_retry),
        ("list-configmaps-rv0", configmaps),
        // The watch cache ignores the limit for resourceVersion=0.
        ("list-configmaps-rv0-limit", |fx| {
            let list = list::<ConfigMap>(fx);
            assert_eq!((list.items.len(), list.continue_token()), (9, None));
        }),
        ("list-configmaps-rvmatch-exact-compacted-cached", |fx| {
            gone(fx);
        }),
        ("list-configmaps-rvmatch-exact-old", |fx| {
            let list = list::<ConfigMap>(fx);
            assert_eq!(list.resource_version(), Some("662"));
            assert!(!item_names(&list).contains(&"page-7"), "page-7 was created after 662");
        }),
        ("list-configmaps-rvmatch-exact-old-limit", |fx| page(fx, &["kube-root-ca.crt", "page-0"], Some(6))),
        ("list-configmaps-rvmatch-exact-rv0", invalid),
        ("list-configmaps-rvmatch-notolderthan", |fx| {
            let list = list::<ConfigMap>(fx);
            let rv: u64 = list.resource_version().expect("rv").parse().expect("a number");
            assert!(rv >= 662 && item_names(&list).contains(&"page-7"));
        }),
        ("list-configmaps-rvmatch-without-rv", |fx| {
            message_has(
                &api_error(fx, Reason::Invalid),
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            );
        }),
        ("list-with-sendinitialevents-no-watch", |fx| {
            assert_eq!(api_error(fx, Reason::Invalid).status.causes().len(), 2)
        }),
        ("list-namespaces", |fx| {
            let list = list::<Namespace>(fx);
            assert!(item_names(&list).contains(&"fixtures"));
        }),
        ("list-pods", |fx| {
            let list = list::<Pod>(fx);
            assert!(list.iter().all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Pending")));
        }),
        ("list-replicasets", |fx| {
            let list = list::<ReplicaSet>(fx);
            let owner = &list.items[0].owner_references()[0];
            assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Deployment", "web"));
            assert!(list.items[0].labels().contains_key("pod-template-hash"));
        }),
        // Watch cache off.
        ("nocache-list-configmaps-page1", |fx| page(fx, &["kube-root-ca.crt", "page-0"], Some(7))),
        ("nocache-list-configmaps-continue-compacted", |fx| {
            continue_expired(fx);
            // The offered token is the one the next request used.
            let next = Fixture::load("nocache-list-configmaps-continue-inconsistent");
            let offered = str_at(fx.response_json(), "/metadata/continue").expect("continue");
            assert!(next.path_and_query().contains(&format!("continue={offered}")));
        }),
        ("nocache-list-configmaps-continue-inconsistent", |fx| page(fx, &["page-1", "page-2"], Some(5))),
        // Without the cache there is no Retry-After.
        ("nocache-list-configmaps-rv-too-large", |fx| assert_eq!(rv_too_large(fx).retry_after, None)),
        // Without the cache the limit is honoured.
        ("nocache-list-configmaps-rv0-limit", |fx| page(fx, &["kube-root-ca.crt", "page-0"], Some(7))),
        ("nocache-list-configmaps-rvmatch-exact-compacted", |fx| {
            gone(fx);
        }),
        ("nocache-list-configmaps-rvmatch-exact-compacted-limit", |fx| {
            gone(fx);
        }),
        ("nocache-list-configmaps-rvmatch-exact-old-before-compaction", |fx| {
            let list = list::<ConfigMap>(fx);
            assert!(item_names(&list).iter().all(|n| !n.starts_with("gone-")));
        }),
        ("nocache-list-configmaps-rvmatch-notolderthan-compacted", configmaps),
        ("nocache-watch-from-compacted-rv", watch_expired),
        ("nocache-watch-from-compacted-rv-bookmarks", watch_expired),
        ("nocache-watch-from-old-rv-before-compaction", |fx| {
            let events = watch::<ConfigMap>(fx);
            assert_eq!(
                types(&events),
                ["ADDED", "ADDED", "ADDED", "MODIFIED", "DELETED"],
                "no bookmarks without the cache"
            );
        }),
        ("nocache-watch-rv-too-large", silent_stream),
        ("nocache-watch-rv0", only_added),
        ("nocache-watch-streaming-list", |fx| {
            streaming_list::<ConfigMap>(fx);
        }),
        ("nocache-watch-streaming-list-with-rv", |fx| {
            let events = streaming_list::<ConfigMap>(fx);
            let Some(WatchEvent::Bookmark(b)) = events.last() else { unreachable!() };
            assert_eq!(
                b.metadata.resource_version, "854",
                "the initial-events-end bookmark is at the requested resourceVersion"
            );
        }),
        // Watches.
        ("watch-configmap-single-fieldselector", |fx| {
            let events = watch::<ConfigMap>(fx);
            let [WatchEvent::Modified(cm)] = events.as_slice() else { panic!("{:?}", types(&events)) };
            assert_eq!(cm.name(), Some("cm1"));
        }),
        ("watch-configmaps-bookmarks-no-timeout", |fx| assert_eq!(types(&watch::<ConfigMap>(fx)), ["BOOKMARK"])),
        ("watch-configmaps-bookmarks-timeout5", |fx| {
            let events = watch::<ConfigMap>(fx);
            assert_eq!(types(&events), ["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "BOOKMARK"]);
            assert_eq!(events[3], events[4], "two bookmarks with the same resourceVersion");
        }),
        ("watch-configmaps-bookmarks-timeout70", |fx| {
            assert_eq!(types(&watch::<ConfigMap>(fx)), ["BOOKMARK", "BOOKMARK"])
        }),
        ("watch-configmaps-compacted-rv-cached", watch_expired),
        ("watch-configmaps-labelselector-transitions", |fx| {
            let events = watch::<ConfigMap>(fx);
            assert_eq!(types(&events), ["ADDED", "MODIFIED", "DELETED", "ADDED", "DELETED"]);
        }),
        ("watch-configmaps-no-bookmarks", |fx| assert_eq!(types(&watch::<ConfigMap>(fx)), ["ADDED", "DELETED"])),
        ("watch-configmaps-no-rv", only_added),
        ("watch-configmaps-rv-too-large", silent_stream),
        ("watch-configmaps-rv-too-old-cached", watch_expired),
        ("watch-configmaps-rv0", only_added),
        // resourceVersion=0 with bookmarks is defaulted to a streaming list.
        ("watch-configmaps-rv0-bookmarks", |fx| {
            streaming_list::<ConfigMap>(fx);
        }),
        ("watch-legacy-path", only_added),
        ("watch-sendinitialevents-false-rvmatch", |fx| {
            let events = watch::<ConfigMap>(fx);
            assert!(
                events.iter().all(|e| matches!(e, WatchEvent::Bookmark(b) if !b.is_initial_events_end())),
                "plain bookmarks only"
            );
        }),
        ("watch-streaming-list", |fx| {
            let events = streaming_list::<ConfigMap>(fx);
            let Some(WatchEvent::Bookmark(b)) = events.last() else { unreachable!() };
            assert_eq!(
                Some(b.metadata.resource_version.as_str()),
                str_at(&fx.body_lines().unwrap()[9]["object"], "/metadata/resourceVersion")
            );
        }),
        ("watch-streaming-list-labelselector", |fx| assert_eq!(streaming_list::<ConfigMap>(fx).len(), 9)),
        // Without bookmarks the end of the initial events cannot be seen.
        ("watch-streaming-list-no-bookmarks", only_added),
        ("watch-streaming-list-no-rvmatch", invalid),
        ("watch-streaming-list-with-rv", |fx| {
            streaming_list::<ConfigMap>(fx);
        }),
        // Deployments.
        ("create-deployment", |fx| {
            let d = object::<Deployment>(fx);
            assert!(d.spec.strategy.is_some() && d.spec.revision_history_limit.is_some(), "defaults filled in");
        }),
        ("delete-deployment", |fx| {
            let d = deleted_status::<Deployment>(fx).details.expect("details");
            assert_eq!((d.group.as_str(), d.kind.as_str()), ("apps", "deployments"));
        }),
        ("get-deployment", |fx| assert!(object::<Deployment>(fx).status.is_some_and(|s| s.conditions.is_some()))),
        ("get-deployment-after-scale", |fx| {
            let d = object::<Deployment>(fx);
            let fields = d.metadata.managed_fields.expect("managedFields");
            assert!(fields.iter().any(|f| f.subresource.as_deref() == Some("scale")));
        }),
        ("get-deployment-scale", |fx| {
            let s = scale(fx);
            assert_eq!(s.status.expect("status").selector.as_deref(), Some("app=web"));
        }),
        ("get-deployment-status", deployment),
        ("patch-deployment-main-status-ignored", |fx| {
            let d = object::<Deployment>(fx);
            assert_ne!(d.status.and_then(|s| s.replicas), Some(42), "status is ignored on the main resource");
        }),
        ("patch-deployment-scale-merge", |fx| assert_eq!(scale(fx).spec.and_then(|s| s.replicas), Some(3))),
        ("patch-deployment-status-merge", |fx| {
            let d = object::<Deployment>(fx);
            let conditions = d.status.and_then(|s| s.conditions).expect("conditions");
            assert!(conditions.iter().any(|c| c.type_.as_deref() == Some("Example")));
        }),
        ("patch-deployment-status-spec-ignored", |fx| assert_ne!(object::<Deployment>(fx).spec.replicas, Some(9))),
        ("replace-deployment-scale", |fx| assert_eq!(scale(fx).spec.and_then(|s| s.replicas), Some(1))),
        ("replace-deployment-scale-stale-rv", |fx| message_has(&api_error(fx, Reason::Conflict), "deployments.apps")),
        // Namespaces and nodes.
        ("create-namespace", |fx| {
            let ns = object::<Namespace>(fx);
            assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Active"));
        }),
        ("delete-namespace", |fx| {
            let ns = deleted_object::<Namespace>(fx);
            assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Terminating"));
            assert_eq!(ns.spec.and_then(|s| s.finalizers), Some(vec!["kubernetes".to_owned()]));
        }),
        ("get-namespace", |fx| {
            object::<Namespace>(fx);
        }),
        ("get-namespace-deleted", not_found),
        ("get-namespace-terminating", |fx| {
            let ns = object::<Namespace>(fx);
            assert!(ns.is_terminating());
            assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Terminating"));
        }),
        ("create-node", |fx| {
            object::<Node>(fx);
        }),
        // Pods.
        ("create-pod", |fx| {
            let p = object::<Pod>(fx);
            let status = p.status.expect("status");
            assert_eq!((status.phase.as_deref(), status.qos_class.as_deref()), (Some("Pending"), Some("BestEffort")));
            assert!(p.spec.expect("spec").service_account_name.is_some(), "defaults filled in");
        }),
        ("create-pod-invalid", |fx| assert_eq!(api_error(fx, Reason::Invalid).status.causes().len(), 2)),
        ("create-poddisruptionbudget", |fx| {
            object::<PodDisruptionBudget>(fx);
        }),
        ("get-poddisruptionbudget", |fx| {
            let status = object::<PodDisruptionBudget>(fx).status.expect("status");
            assert_eq!(
                (status.current_healthy, status.desired_healthy, status.disruptions_allowed),
                (Some(1), Some(1), Some(0))
            );
        }),
        // Deleting a Pod answers with the Pod, whether or not it is gone at once.
        ("delete-pod-force", |fx| {
            deleted_object::<Pod>(fx);
        }),
        ("delete-pod-grace-0", |fx| {
            assert_eq!(deleted_object::<Pod>(fx).metadata.deletion_grace_period_seconds, Some(0))
        }),
        ("delete-pod-scheduled", |fx| {
            assert_eq!(deleted_object::<Pod>(fx).metadata.deletion_grace_period_seconds, Some(30))
        }),
        ("delete-pod-unscheduled", |fx| {
            deleted_object::<Pod>(fx);
        }),
        ("get-pod-after-eviction", not_found),
        ("get-pod-terminating", |fx| {
            let p = object::<Pod>(fx);
            assert!(p.is_terminating() && p.metadata.deletion_grace_period_seconds == Some(30));
        }),
        ("evict-pod-pending", |fx| {
            success_status(fx);
        }),
        ("evict-pod-pending-with-pdb", |fx| {
            success_status(fx);
        }),
        ("evict-pod-pdb-violation", |fx| {
            let api = api_error(fx, Reason::TooManyRequests);
            assert_eq!(cause_reasons(&api), ["DisruptionBudget"]);
            assert_eq!(api.retry_after, None);
        }),
        ("evict-pod-name-mismatch", bad_request),
        ("evict-pod-notfound", not_found),
        ("bind-pod", |fx| {
            success_status(fx);
        }),
        ("bind-pod-again", conflict),
        ("get-pod-ephemeralcontainers", pod),
        ("patch-pod-ephemeralcontainers", |fx| {
            let spec = object::<Pod>(fx).spec.expect("spec");
            let debugger = &spec.ephemeral_containers.expect("ephemeralContainers")[0];
            assert_eq!(debugger.name, "debugger");
            assert!(debugger.termination_message_path.is_some(), "defaults filled in");
        }),
        ("patch-pod-status-running", |fx| {
            let status = object::<Pod>(fx).status.expect("status");
            assert_eq!(status.phase.as_deref(), Some("Running"));
        }),
        // Logs.
        ("get-pod-log-no-node", empty_log),
        ("get-pod-log-follow-no-node", empty_log),
        ("get-pod-log-bad-container", |fx| {
            message_has(&api_error(fx, Reason::BadRequest), "container nope is not valid")
        }),
        // A 500 with no reason at all.
        ("get-pod-log-kubelet-unreachable", |fx| {
            let api = api_error(fx, Reason::Unknown(String::new()));
            message_has(&api, "connection refused");
            assert!(Recorded::of(fx).response().text().is_err(), "text() still reports the error");
        }),
        ("get-pod-log-pod-notfound", not_found),
        // Exec, attach, port forwarding.
        ("attach-pod-no-upgrade", no_host),
        ("exec-pod-get-no-upgrade", upgrade_required),
        ("exec-pod-no-command", upgrade_required),
        ("exec-pod-no-upgrade", upgrade_required),
        ("portforward-pod-no-upgrade", upgrade_required),
        ("exec-pod-websocket-no-node", no_host),
        ("exec-pod-websocket-pod-notfound", not_found),
        // A WebSocket handshake must be a GET: a plain-text 405 with no Content-Type.
        ("exec-pod-websocket-post", |fx| {
            let err = not_json(fx);
            assert_eq!(err.http_status(), 405);
            assert_eq!(fx.response_body(), b"bad method");
        }),
        ("exec-pod-websocket-kubelet-unreachable", exec_upgraded),
        // Routing errors.
        ("get-unknown-group", text_404),
        ("get-unknown-path", text_404),
        ("get-unknown-resource-apps", unknown_resource),
        ("get-unknown-resource-core", unknown_resource),
        ("get-unknown-version", not_found),
        // Discovery and version.
        ("discovery-api", |fx| {
            let v = any::<APIVersions>(fx);
            assert_eq!(v.versions, ["v1"]);
            assert!(!v.server_address_by_client_cidrs.is_empty());
        }),
        ("discovery-api-v1", |fx| {
            let r = any::<APIResourceList>(fx);
            assert_eq!(r.group_version, "v1");
            assert!(r.resources.iter().any(|r| r.name == "configmaps" && r.namespaced));
        }),
        ("discovery-apis", |fx| {
            let groups = any::<APIGroupList>(fx).groups;
            assert!(groups.iter().any(|g| g.name == "apps"));
        }),
        ("discovery-apis-apps", |fx| {
            let g = any::<APIGroup>(fx);
            assert_eq!(g.preferred_version.expect("preferredVersion").group_version, "apps/v1");
        }),
        ("discovery-apis-apps-v1", |fx| {
            let r = any::<APIResourceList>(fx);
            assert!(r.resources.iter().any(|r| r.name == "deployments/scale"));
        }),
        ("discovery-api-aggregated-v2", discovery_list),
        ("discovery-apis-aggregated-v2", discovery_list),
        ("discovery-apis-aggregated-v2beta1-only", not_acceptable),
        ("get-version", |fx| {
            let info = any::<Info>(fx);
            assert_eq!((info.major.as_str(), info.minor.as_str(), info.git_version.as_str()), ("1", "36", "v1.36.2"));
        }),
    ]
}

/// A page of a paginated LIST: these items, a continue token, and this remainingItemCount.
fn page(fx: &Fixture, names: &[&str], remaining: Option<i64>) {
    let list = list::<ConfigMap>(fx);
    assert_eq!(item_names(&list), names);
    assert!(list.continue_token().is_some(), "a continue token");
    assert_eq!(list.metadata.remaining_item_count, remaining, "remainingItemCount");
}

/// The last page: no continue token, no remainingItemCount.
fn last_page(fx: &Fixture, names: &[&str]) {
    let list = list::<ConfigMap>(fx);
    assert_eq!(item_names(&list), names);
    assert_eq!((list.continue_token(), list.metadata.remaining_item_count), (None, None));
}

/// The exec upgrade succeeded (101) and the error came as a Status on channel 3. A 101 has no
/// body for the core to read (the transport takes over the connection); the frame's payload is
/// an ordinary Status.
fn exec_upgraded(fx: &Fixture) {
    assert_eq!(fx.status(), 101);
    let rec = Recorded::of(fx);
    let err = rec.response().text().expect_err("a 101 is not a 2xx");
    assert!(matches!(err, ResponseError::NotJson { status: 101, len: 0, .. }), "{err:?}");
    assert_eq!(rec.headers["sec-websocket-protocol"], "v5.channel.k8s.io", "the server picked v5");
    let frames = fx.response()["websocket_frames"].as_array().expect("frames");
    let status_frame = frames.iter().find(|f| f["channel"] == 3).expect("a frame on channel 3");
    let status: Status = serde_json::from_value(status_frame["data"].clone()).expect("a Status");
    assert_eq!((status.code, &status.reason), (500, &Reason::InternalError));
    assert!(status.message.contains("connection refused"), "{}", status.message);
    assert_eq!(status.causes().len(), 1);
    assert_eq!(frames.last().expect("frames")["opcode"], 8, "then the server closes");
}

#[test]
fn every_response_parses_as_what_was_asked_for() {
    let mut failures = Vec::new();
    let table = table();
    let files = fixture_support::names();
    for (name, check) in &table {
        if !files.contains(*name) {
            continue; // reported by `every_fixture_has_a_response_check`
        }
        let fx = Fixture::load(name);
        if let Err(msg) = run_check(|| check(&fx)) {
            failures.push(format!("{name}: {msg}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} fixtures failed:\n{}", failures.len(), table.len(), failures.join("\n"));
}

#[test]
fn every_fixture_has_a_response_check() {
    let files = fixture_support::names();
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for name in table().iter().map(|(n, _)| *n).chain(NOT_PARSED.iter().map(|(n, _)| *n)) {
        if !seen.insert(name) {
            problems.push(format!("{name}: listed twice"));
        }
        if !files.contains(name) {
            problems.push(format!("{name}: no such fixture"));
        }
    }
    for name in &files {
        if !seen.contains(name.as_str()) {
            problems.push(format!("{name}: no response check"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(files.len(), 261);
}
