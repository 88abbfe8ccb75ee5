//! The fake's discovery, compared with the recorded kube-apiserver v1.36 discovery: each
//! recorded request replayed, the entries both list compared whole (the fake serves fewer
//! subresources and no storageVersionHash), a CustomResourceDefinition's kind appearing in both
//! forms when it is created and going when it is deleted, and the core's discovery reading it.

#![allow(clippy::disallowed_methods)] // each test takes one origin `Instant::now()`

use std::time::Instant;

use http::StatusCode;
use kube_proto::discovery::{Catalog, Fetch, Scope};
use kube_proto_fake::{FakeApiServer, FakeConfig, Reply};
use serde_json::{Value, json};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/apiserver-v1.36/");

fn fixture(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{DIR}{name}.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn server() -> (FakeApiServer, Instant) {
    let t0 = Instant::now();
    (FakeApiServer::new(FakeConfig::default(), t0), t0)
}

fn recorded_request(fx: &Value) -> http::Request<Vec<u8>> {
    let r = &fx["request"];
    let mut builder =
        http::Request::builder().method(r["method"].as_str().unwrap()).uri(r["path_and_query"].as_str().unwrap());
    for (name, value) in r["headers"].as_object().unwrap() {
        builder = builder.header(name.as_str(), value.as_str().unwrap());
    }
    builder.body(Vec::new()).unwrap()
}

/// Status, content-type and JSON body.
fn send(server: &mut FakeApiServer, t0: Instant, req: &http::Request<Vec<u8>>) -> (StatusCode, String, Value) {
    let Reply::Response(resp) = server.handle(t0, req) else { panic!("not a plain response") };
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (resp.status(), ct, serde_json::from_slice(resp.body()).unwrap_or(Value::Null))
}

fn replay(name: &str) -> (Value, (StatusCode, String, Value)) {
    let fx = fixture(name);
    let (mut s, t0) = server();
    let got = send(&mut s, t0, &recorded_request(&fx));
    assert_eq!(got.0.as_u16() as u64, fx["response"]["status"].as_u64().unwrap(), "{name}: status");
    assert_eq!(got.1, fx["response"]["headers"]["content-type"].as_str().unwrap(), "{name}: content-type");
    (fx["response"]["body"].clone(), got)
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// Compares the entries of two lists found under the same `key`, for those both have: equal,
/// but for `storageVersionHash` and subresources the fake does not serve. Returns how many.
fn compare_entries(name: &str, real: &[Value], fake: &[Value], key: &str) -> usize {
    let mut compared = 0;
    for r in real {
        let Some(f) = fake.iter().find(|f| f[key] == r[key]) else { continue };
        let mut r = r.clone();
        r.as_object_mut().unwrap().remove("storageVersionHash");
        if let (Some(rs), Some(fs)) = (r["subresources"].as_array(), f["subresources"].as_array()) {
            for s in fs {
                assert!(rs.contains(s), "{name}: {}: the fake's subresource {s} is not the real one", r[key]);
            }
            r["subresources"] = f["subresources"].clone();
        }
        assert_eq!(&r, f, "{name}: {}", r[key]);
        compared += 1;
    }
    compared
}

#[test]
fn aggregated_core_group_like_the_real_one() {
    let (real, (_, _, fake)) = replay("discovery-api-aggregated-v2");
    assert_eq!(keys(&real), keys(&fake));
    let (r, f) = (&real["items"][0], &fake["items"][0]);
    assert_eq!((&r["metadata"], &f["metadata"]), (&json!({}), &json!({})));
    let (rv, fv) = (&r["versions"][0], &f["versions"][0]);
    assert_eq!(keys(rv), keys(fv));
    assert_eq!(fv["freshness"], "Current");
    let n =
        compare_entries("core", rv["resources"].as_array().unwrap(), fv["resources"].as_array().unwrap(), "resource");
    assert_eq!(n, 3, "configmaps, namespaces and pods");
    assert_eq!(fake["items"].as_array().unwrap().len(), 1, "/api lists the core group only");
}

#[test]
fn aggregated_groups_like_the_real_ones() {
    let (real, (_, _, fake)) = replay("discovery-apis-aggregated-v2");
    let fake_items = fake["items"].as_array().unwrap();
    let names: Vec<&str> = fake_items.iter().map(|g| g["metadata"]["name"].as_str().unwrap()).collect();
    // The real server's group order, for the groups the fake serves.
    assert_eq!(
        names,
        [
            "apps",
            "events.k8s.io",
            "batch",
            "policy",
            "rbac.authorization.k8s.io",
            "apiextensions.k8s.io",
            "coordination.k8s.io"
        ]
    );
    let mut compared = 0;
    for r in real["items"].as_array().unwrap() {
        let f = fake_items.iter().find(|f| f["metadata"] == r["metadata"]).unwrap();
        let (rv, fv) = (&r["versions"][0], &f["versions"][0]);
        compared += compare_entries(
            r["metadata"]["name"].as_str().unwrap(),
            rv["resources"].as_array().unwrap(),
            fv["resources"].as_array().unwrap(),
            "resource",
        );
    }
    assert_eq!(compared, 5, "daemonsets, deployments, replicasets, statefulsets, poddisruptionbudgets");
}

#[test]
fn legacy_documents_like_the_real_ones() {
    let (real, (_, _, fake)) = replay("discovery-api");
    assert_eq!(keys(&real), keys(&fake));
    assert_eq!(fake["versions"], json!(["v1"]));

    let (real, (_, _, fake)) = replay("discovery-apis");
    assert_eq!(keys(&real), keys(&fake));
    let n = compare_entries("apis", real["groups"].as_array().unwrap(), fake["groups"].as_array().unwrap(), "name");
    assert_eq!(n, 4, "apps, batch, policy, apiextensions.k8s.io");

    let (real, (_, _, fake)) = replay("discovery-apis-apps");
    assert_eq!(real, fake);

    for name in ["discovery-api-v1", "discovery-apis-apps-v1"] {
        let (real, (_, _, fake)) = replay(name);
        assert_eq!(keys(&real), keys(&fake), "{name}");
        assert_eq!(real["groupVersion"], fake["groupVersion"]);
        let n =
            compare_entries(name, real["resources"].as_array().unwrap(), fake["resources"].as_array().unwrap(), "name");
        assert!(n >= 8, "{name}: {n} entries compared");
    }
}

#[test]
fn only_v2beta1_is_refused_as_the_real_server_does() {
    let (real, (_, _, fake)) = replay("discovery-apis-aggregated-v2beta1-only");
    assert_eq!(real, fake);
}

#[test]
fn not_discovery_paths_are_not_served_as_discovery() {
    let (mut s, t0) = server();
    for path in ["/apis/nothing.example.com", "/apis/apps/v9", "/api/v2"] {
        let req = http::Request::get(path).body(Vec::new()).unwrap();
        let (status, _, _) = send(&mut s, t0, &req);
        assert_eq!(status, 404, "{path}");
    }
    let req = http::Request::post("/api").body(b"{}".to_vec()).unwrap();
    assert_eq!(send(&mut s, t0, &req).0, 404);
}

/// Runs the core's discovery against the fake.
fn discover(s: &mut FakeApiServer, t0: Instant, mut fetch: Fetch) -> Catalog {
    while !fetch.is_done() {
        let mut batch = Vec::new();
        while let Some(r) = fetch.poll_request() {
            batch.push(r);
        }
        for (id, req) in batch {
            let Reply::Response(resp) = s.handle(t0, &req) else { panic!() };
            fetch.on_response(id, resp.status(), resp.headers(), resp.body()).unwrap();
        }
    }
    fetch.finish().unwrap()
}

fn crd(group: &str, scope: &str) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": format!("widgets.{group}")},
           "spec": {"group": group, "scope": scope,
                    "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"], "categories": ["toys"]},
                    "versions": [
                        {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                        {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                         "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}})
}

fn create_crd(s: &mut FakeApiServer, t0: Instant, body: &Value) {
    let req = http::Request::post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .unwrap();
    assert_eq!(send(s, t0, &req).0, 201);
}

#[test]
fn the_core_reads_the_fakes_discovery_in_both_forms_and_crds_come_and_go() {
    let (mut s, t0) = server();
    for fetch in [Fetch::new as fn() -> Fetch, Fetch::legacy] {
        let c = discover(&mut s, t0, fetch());
        assert_eq!(c.resolve("po").unwrap().resource.kind, "Pod");
        assert_eq!(c.resolve("deploy").unwrap().resource.api_version, "apps/v1");
        assert_eq!(c.resolve("crds").unwrap().scope(), Scope::Cluster);
        assert_eq!(c.resolve("events").unwrap().resource.group, "", "the core group's");
        assert!(c.resolve("wd").is_err());
        assert!(c.failures().is_empty());
    }
    let aggregated = discover(&mut s, t0, Fetch::new());
    let legacy = discover(&mut s, t0, Fetch::legacy());
    assert_eq!(aggregated.groups(), legacy.groups(), "both forms describe the same");

    create_crd(&mut s, t0, &crd("a.example.com", "Namespaced"));
    create_crd(&mut s, t0, &crd("b.example.com", "Cluster"));
    for fetch in [Fetch::new as fn() -> Fetch, Fetch::legacy] {
        let c = discover(&mut s, t0, fetch());
        let w = c.resolve("widgets.a.example.com").unwrap();
        assert_eq!(w.resource.version, "v1", "v1 is preferred over v1beta1");
        assert_eq!(
            (w.short_names.as_slice(), w.categories.as_slice()),
            (&["wd".to_owned()][..], &["toys".to_owned()][..])
        );
        assert_eq!(w.subresource("scale").unwrap().kind, "Scale");
        assert_eq!(w.subresource("status").unwrap().group, "a.example.com");
        assert_eq!(c.resolve("wd.b.example.com").unwrap().scope(), Scope::Cluster);
        assert!(c.resolve("widgets.v1beta1.b.example.com").unwrap().subresources.is_empty());
        let e = c.resolve("wd").unwrap_err();
        assert!(e.to_string().contains("widgets.v1.a.example.com, widgets.v1.b.example.com"), "{e}");
        let groups: Vec<&str> = c.groups().iter().map(|g| g.name.as_str()).collect();
        assert_eq!(&groups[groups.len() - 2..], ["a.example.com", "b.example.com"]);
    }
    let agg = discover(&mut s, t0, Fetch::new());
    let legacy = discover(&mut s, t0, Fetch::legacy());
    assert_eq!(agg.groups(), legacy.groups());

    let req = http::Request::delete("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.a.example.com")
        .body(Vec::new())
        .unwrap();
    assert_eq!(send(&mut s, t0, &req).0, 200);
    let c = discover(&mut s, t0, Fetch::new());
    assert!(c.group("a.example.com").is_none(), "gone with its CRD");
    assert_eq!(c.resolve("wd").unwrap().resource.group, "b.example.com");
    let req = http::Request::get("/apis/a.example.com").body(Vec::new()).unwrap();
    assert_eq!(send(&mut s, t0, &req).0, 404);
}
