//! Deny rules: matching requests get the real server's 403 (checked against the responses
//! recorded from kube-apiserver v1.36), others are served, and a refused write writes nothing.

#![allow(clippy::disallowed_methods)] // each test takes one origin `Instant::now()`

use std::time::Instant;

use http::StatusCode;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_proto::{GetParams, ListParams, Patch, PatchParams, PostParams, Request, WatchParams};
use kube_proto_fake::access::{DEFAULT_USER, DenyRule};
use kube_proto_fake::{FakeApiServer, FakeConfig, Reply};
use serde_json::{Value, json};

fn server() -> (FakeApiServer, Instant) {
    let t0 = Instant::now();
    (FakeApiServer::new(FakeConfig::default(), t0), t0)
}

/// The status and JSON body of a complete response.
fn answer(server: &mut FakeApiServer, t0: Instant, req: &http::Request<Vec<u8>>) -> (StatusCode, Value) {
    match server.handle(t0, req) {
        Reply::Response(resp) => (resp.status(), serde_json::from_slice(resp.body()).unwrap_or(Value::Null)),
        Reply::Watch { .. } => (StatusCode::OK, json!("a watch")),
        Reply::Upgrade { .. } => (StatusCode::SWITCHING_PROTOCOLS, json!("an upgrade")),
    }
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

/// A recorded exchange's request, as an `http::Request`.
fn recorded_request(fixture: &Value) -> http::Request<Vec<u8>> {
    let r = &fixture["request"];
    let mut builder =
        http::Request::builder().method(r["method"].as_str().unwrap()).uri(r["path_and_query"].as_str().unwrap());
    for (name, value) in r["headers"].as_object().unwrap() {
        builder = builder.header(name.as_str(), value.as_str().unwrap());
    }
    let body = match &r["body"] {
        Value::Null => Vec::new(),
        Value::String(s) => s.clone().into_bytes(),
        v => serde_json::to_vec(v).unwrap(),
    };
    builder.body(body).unwrap()
}

#[test]
fn refusals_match_the_real_servers_recorded_403s() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/apiserver-v1.36/");
    let user = "system:serviceaccount:fixtures:nobody";
    for name in [
        "auth-forbidden-create-deployment",
        "auth-forbidden-get",
        "auth-forbidden-list",
        "auth-forbidden-list-cluster",
        "auth-forbidden-watch",
    ] {
        let text = std::fs::read_to_string(format!("{dir}{name}.json")).unwrap();
        let fixture: Value = serde_json::from_str(&text).unwrap();
        let (mut server, t0) = server();
        server.deny(DenyRule::new("apps", "deployments").user(user));
        server.deny(DenyRule::new("", "configmaps").user(user));
        let Reply::Response(resp) = server.handle(t0, &recorded_request(&fixture)) else {
            panic!("{name}: a refused watch is a plain response, not a stream")
        };
        let recorded = &fixture["response"];
        assert_eq!(resp.status().as_u16(), recorded["status"], "{name}");
        assert_eq!(resp.headers()["content-type"], "application/json", "{name}");
        let body: Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(body, recorded["body"], "{name}");
    }
}

#[test]
fn only_the_verbs_and_the_namespace_of_a_rule_are_refused() {
    let (mut server, t0) = server();
    server.deny(DenyRule::new("", "configmaps").verbs(&["create", "patch"]).namespace("default"));
    let default = Request::namespaced::<ConfigMap>("default");
    let (status, body) = answer(&mut server, t0, &default.create(&PostParams::default(), &cm("a")).unwrap());
    assert_eq!(status, 403);
    assert_eq!(body["reason"], "Forbidden");
    assert_eq!(
        body["message"],
        format!(
            "configmaps is forbidden: User \"{DEFAULT_USER}\" cannot create resource \"configmaps\" in API group \"\" \
             in the namespace \"default\""
        )
    );
    assert_eq!(body["details"], json!({"kind": "configmaps"}));
    // Nothing was written, and reading is allowed.
    let (status, body) = answer(&mut server, t0, &default.list(&ListParams::default()).unwrap());
    assert_eq!(status, 200);
    assert_eq!(body["items"], json!([]));
    // Another namespace is not covered.
    let public = Request::namespaced::<ConfigMap>("kube-public");
    let (status, _) = answer(&mut server, t0, &public.create(&PostParams::default(), &cm("a")).unwrap());
    assert_eq!(status, 201);
    let patch = Patch::Merge(json!({"data": {"k": "w"}}));
    let (status, _) = answer(&mut server, t0, &public.patch("a", &PatchParams::default(), &patch).unwrap());
    assert_eq!(status, 200);
    // A named object is named in the message and the details.
    let (status, body) = answer(&mut server, t0, &default.patch("a", &PatchParams::default(), &patch).unwrap());
    assert_eq!(status, 403);
    assert!(body["message"].as_str().unwrap().starts_with("configmaps \"a\" is forbidden: "), "{body}");
    assert_eq!(body["details"], json!({"kind": "configmaps", "name": "a"}));
}

#[test]
fn a_rule_for_a_resource_does_not_cover_its_subresources_and_one_for_a_subresource_names_it() {
    let (mut server, t0) = server();
    server.deny(DenyRule::new("apps", "deployments/scale").verbs(&["get"]));
    let deployments = Request::namespaced::<k8s_openapi::api::apps::v1::Deployment>("default");
    let deployment = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let deployment: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(deployment).unwrap();
    let (status, _) = answer(&mut server, t0, &deployments.create(&PostParams::default(), &deployment).unwrap());
    assert_eq!(status, 201);
    let (status, _) = answer(&mut server, t0, &deployments.get("web", &GetParams::default()).unwrap());
    assert_eq!(status, 200, "the main resource is not covered");
    let (status, body) = answer(&mut server, t0, &deployments.get_subresource("scale", "web").unwrap());
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        format!(
            "deployments.apps \"web\" is forbidden: User \"{DEFAULT_USER}\" cannot get resource \"deployments/scale\" \
             in API group \"apps\" in the namespace \"default\""
        )
    );
    assert_eq!(body["details"], json!({"group": "apps", "kind": "deployments", "name": "web"}));
}

#[test]
fn wildcards_cover_everything_and_allow_all_lifts_every_rule() {
    let (mut server, t0) = server();
    server.deny(DenyRule::new("*", "*").verbs(&["watch"]));
    let cms = Request::namespaced::<ConfigMap>("default");
    let watch = cms.watch(&WatchParams::default(), "0").unwrap();
    let (status, body) = answer(&mut server, t0, &watch);
    assert_eq!(status, 403);
    assert!(body["message"].as_str().unwrap().contains("cannot watch resource \"configmaps\""), "{body}");
    let (status, _) = answer(&mut server, t0, &cms.list(&ListParams::default()).unwrap());
    assert_eq!(status, 200);
    let all = Request::all::<ConfigMap>();
    let (status, body) = answer(&mut server, t0, &all.watch(&WatchParams::default(), "0").unwrap());
    assert_eq!(status, 403);
    assert!(body["message"].as_str().unwrap().ends_with("at the cluster scope"), "{body}");
    server.allow_all();
    let (_, body) = answer(&mut server, t0, &watch);
    assert_eq!(body, json!("a watch"));
}

#[test]
fn a_namespace_is_its_own_namespace() {
    let (mut server, t0) = server();
    server.deny(DenyRule::new("", "namespaces").namespace("kube-system"));
    let namespaces = Request::all::<k8s_openapi::api::core::v1::Namespace>();
    let (status, body) = answer(&mut server, t0, &namespaces.get("kube-system", &GetParams::default()).unwrap());
    assert_eq!(status, 403);
    assert!(body["message"].as_str().unwrap().ends_with("in the namespace \"kube-system\""), "{body}");
    let (status, _) = answer(&mut server, t0, &namespaces.get("default", &GetParams::default()).unwrap());
    assert_eq!(status, 200);
    let (status, _) = answer(&mut server, t0, &namespaces.list(&ListParams::default()).unwrap());
    assert_eq!(status, 200, "listing namespaces is at the cluster scope");
}
