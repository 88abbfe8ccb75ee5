//! Discovery against the recorded kube-apiserver v1.36 exchanges: every discovery fixture read,
//! a whole discovery driven through [`Fetch`] in both forms from them, and what kubectl's
//! arguments resolve to.

mod fixture_support;

use fixture_support::Fixture;
use http::{HeaderMap, HeaderValue, StatusCode};
use kube_proto::discovery::{
    ACCEPT_AGGREGATED, ApiGroup, Catalog, Document, Fetch, Freshness, GroupVersion, ResolveError, ResourceInfo, Scope,
    crd_resources, is_resource_not_served, parse_document,
};
use kube_proto::{ApiResource, Reason};
use serde_json::{Value, json};

/// The response of a fixture as (status, headers, body bytes).
fn answer(name: &str) -> (StatusCode, HeaderMap, Vec<u8>) {
    let fx = Fixture::load(name);
    let resp = fx.response();
    let status = StatusCode::from_u16(resp["status"].as_u64().unwrap() as u16).unwrap();
    let mut headers = HeaderMap::new();
    if let Some(ct) = resp["headers"]["content-type"].as_str() {
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
    }
    let body = match &resp["body"] {
        Value::String(text) => text.clone().into_bytes(),
        json => serde_json::to_vec(json).unwrap(),
    };
    (status, headers, body)
}

fn document(name: &str) -> Document {
    let (status, _, body) = answer(name);
    assert!(status.is_success(), "{name}");
    parse_document(&body).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn names(rs: &[ResourceInfo]) -> Vec<&str> {
    rs.iter().map(|r| r.resource.plural.as_str()).collect()
}

#[test]
fn aggregated_core_group() {
    let Document::Aggregated(groups) = document("discovery-api-aggregated-v2") else { panic!() };
    assert_eq!(groups.len(), 1);
    let core = &groups[0];
    assert_eq!(core.name, "");
    let v1 = core.preferred_version().unwrap();
    assert_eq!((v1.version.as_str(), v1.freshness), ("v1", Freshness::Current));
    assert_eq!(names(&v1.resources), ["configmaps", "namespaces", "pods"]);
    let pods = &v1.resources[2];
    assert_eq!(pods.resource, ApiResource::new("", "v1", "Pod", "pods", true));
    assert_eq!((pods.singular.as_str(), pods.scope()), ("pod", Scope::Namespaced));
    assert_eq!(pods.short_names, ["po"]);
    assert_eq!(pods.categories, ["all"]);
    assert!(pods.supports("watch") && pods.supports("deletecollection"));
    let subs: Vec<&str> = pods.subresources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        subs,
        [
            "attach",
            "binding",
            "ephemeralcontainers",
            "eviction",
            "exec",
            "log",
            "portforward",
            "proxy",
            "resize",
            "status"
        ]
    );
    let eviction = pods.subresource("eviction").unwrap();
    assert_eq!(
        (eviction.group.as_str(), eviction.version.as_str(), eviction.kind.as_str()),
        ("policy", "v1", "Eviction")
    );
    // An empty group and version in a response kind mean the resource's own.
    let status = pods.subresource("status").unwrap();
    assert_eq!((status.group.as_str(), status.version.as_str(), status.kind.as_str()), ("", "v1", "Pod"));
    assert_eq!(status.verbs, ["get", "patch", "update"]);
    let ns = &v1.resources[1];
    assert_eq!(ns.scope(), Scope::Cluster);
    assert!(!ns.supports("deletecollection"));
    assert_eq!(ns.subresource("finalize").unwrap().verbs, ["update"]);
}

#[test]
fn aggregated_groups() {
    let Document::Aggregated(groups) = document("discovery-apis-aggregated-v2") else { panic!() };
    let group_names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(group_names, ["apps", "policy"]);
    let apps = groups[0].preferred_version().unwrap();
    assert_eq!(
        names(&apps.resources),
        ["controllerrevisions", "daemonsets", "deployments", "replicasets", "statefulsets"]
    );
    let deploy = &apps.resources[2];
    assert_eq!(deploy.resource, ApiResource::new("apps", "v1", "Deployment", "deployments", true));
    assert_eq!(deploy.short_names, ["deploy"]);
    let scale = deploy.subresource("scale").unwrap();
    assert_eq!((scale.group.as_str(), scale.version.as_str(), scale.kind.as_str()), ("autoscaling", "v1", "Scale"));
    assert_eq!(deploy.subresource("status").unwrap().group, "apps");
    // No short names, no categories: empty.
    assert!(apps.resources[0].short_names.is_empty() && apps.resources[0].categories.is_empty());
}

#[test]
fn legacy_documents() {
    assert_eq!(document("discovery-api"), Document::CoreVersions(vec!["v1".into()]));

    let Document::Groups(groups) = document("discovery-apis") else { panic!() };
    let autoscaling = groups.iter().find(|g| g.name == "autoscaling").unwrap();
    let versions: Vec<&str> = autoscaling.versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(versions, ["v2", "v1"], "the preferred version first");
    assert!(groups.iter().all(|g| g.versions.iter().all(|v| v.resources.is_empty())));

    let Document::Groups(apps) = document("discovery-apis-apps") else { panic!() };
    assert_eq!((apps.len(), apps[0].name.as_str(), apps[0].versions[0].version.as_str()), (1, "apps", "v1"));

    let Document::Resources { group, version } = document("discovery-api-v1") else { panic!() };
    assert_eq!((group.as_str(), version.version.as_str()), ("", "v1"));
    assert_eq!(
        names(&version.resources),
        ["bindings", "componentstatuses", "configmaps", "namespaces", "pods", "serviceaccounts"]
    );
    let pods = version.resources.iter().find(|r| r.resource.plural == "pods").unwrap();
    let subs: Vec<&str> = pods.subresources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(subs, ["ephemeralcontainers", "eviction", "exec", "log", "status"]);
    assert_eq!(pods.subresource("eviction").unwrap().group, "policy");
    assert_eq!(pods.subresource("log").unwrap().group, "");
    let token = version.resources.iter().find(|r| r.resource.plural == "serviceaccounts").unwrap().subresource("token");
    assert_eq!(token.unwrap().kind, "TokenRequest");
    assert_eq!(token.unwrap().group, "authentication.k8s.io");

    let Document::Resources { group, version } = document("discovery-apis-apps-v1") else { panic!() };
    assert_eq!(group, "apps");
    assert_eq!(
        names(&version.resources),
        ["controllerrevisions", "daemonsets", "deployments", "replicasets", "statefulsets"]
    );
    let sts = &version.resources[4];
    assert_eq!(sts.short_names, ["sts"]);
    assert_eq!(sts.subresource("scale").unwrap().kind, "Scale");
}

/// The two forms agree on what they both list.
#[test]
fn both_forms_describe_the_same_resources() {
    let Document::Aggregated(agg) = document("discovery-api-aggregated-v2") else { panic!() };
    let Document::Resources { version: legacy, .. } = document("discovery-api-v1") else { panic!() };
    for r in &agg[0].versions[0].resources {
        let l = legacy.resources.iter().find(|l| l.resource.plural == r.resource.plural).unwrap();
        assert_eq!(
            (&l.resource, &l.singular, &l.short_names, &l.categories, &l.verbs),
            (&r.resource, &r.singular, &r.short_names, &r.categories, &r.verbs)
        );
        // The legacy list (trimmed) keeps fewer subresources; those it keeps are the same.
        for s in &l.subresources {
            assert_eq!(Some(s), r.subresource(&s.name), "{}/{}", r.resource.plural, s.name);
        }
    }
    let Document::Aggregated(agg) = document("discovery-apis-aggregated-v2") else { panic!() };
    let Document::Resources { version: legacy, .. } = document("discovery-apis-apps-v1") else { panic!() };
    let agg_apps = &agg[0].versions[0].resources;
    assert_eq!(agg_apps, &legacy.resources);
}

#[test]
fn refusals_are_errors_not_documents() {
    let (status, headers, body) = answer("discovery-apis-aggregated-v2beta1-only");
    assert_eq!(status, 406);
    let e = kube_proto::Response::new(status, &headers, &body).error();
    assert_eq!(e.reason(), Some(&Reason::NotAcceptable));
    assert!(parse_document(&body).is_err(), "a Status is not a discovery document");
    let (_, _, body) = answer("auth-no-token-discovery");
    assert!(parse_document(&body).unwrap_err().contains("Status"));
    assert!(parse_document(b"<html>").is_err());
    assert!(parse_document(br#"{"kind":"APIResourceList"}"#).is_err(), "no groupVersion");
}

/// Drives a whole [`Fetch`], answering each request with the fixture recorded for it.
fn drive(
    mut fetch: Fetch,
    answer_for: impl Fn(&http::Request<Vec<u8>>) -> (StatusCode, HeaderMap, Vec<u8>),
) -> (Catalog, Vec<String>) {
    let mut asked = Vec::new();
    while !fetch.is_done() {
        let mut batch = Vec::new();
        while let Some(r) = fetch.poll_request() {
            batch.push(r);
        }
        assert!(!batch.is_empty(), "waiting for nothing");
        for (id, req) in batch {
            asked.push(req.uri().to_string());
            let (status, headers, body) = answer_for(&req);
            fetch.on_response(id, status, &headers, &body).unwrap();
        }
    }
    (fetch.finish().unwrap(), asked)
}

fn aggregated_catalog() -> Catalog {
    let (catalog, asked) = drive(Fetch::new(), |req| {
        assert_eq!(req.headers()["accept"], ACCEPT_AGGREGATED);
        match req.uri().path() {
            "/api" => answer("discovery-api-aggregated-v2"),
            "/apis" => answer("discovery-apis-aggregated-v2"),
            other => panic!("{other}"),
        }
    });
    assert_eq!(asked, ["/api", "/apis"]);
    catalog
}

#[test]
fn a_whole_aggregated_discovery_in_two_requests() {
    let c = aggregated_catalog();
    let groups: Vec<&str> = c.groups().iter().map(|g| g.name.as_str()).collect();
    assert_eq!(groups, ["", "apps", "policy"]);
    assert!(c.failures().is_empty());
    assert_eq!(c.resolve("po").unwrap().resource.kind, "Pod");
    assert_eq!(c.resolve("pdb").unwrap().resource.group, "policy");
    let all: Vec<String> = c.category("all").iter().map(|r| r.qualified_name()).collect();
    assert_eq!(all, ["pods", "daemonsets.apps", "deployments.apps", "replicasets.apps", "statefulsets.apps"]);
}

#[test]
fn a_whole_legacy_discovery_through_each_group_version() {
    // A server without aggregated discovery answers the same Accept with the legacy documents.
    let (c, asked) = drive(Fetch::new(), |req| match req.uri().path() {
        "/api" => answer("discovery-api"),
        "/apis" => answer("discovery-apis"),
        "/api/v1" => answer("discovery-api-v1"),
        "/apis/apps/v1" => answer("discovery-apis-apps-v1"),
        _ => {
            // Groups whose documents were not recorded: one answers 503, as an aggregated API
            // whose backend is down; the others serve nothing.
            let path = req.uri().path();
            if path == "/apis/batch/v1" {
                let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"service unavailable","reason":"ServiceUnavailable","code":503}"#;
                return (StatusCode::SERVICE_UNAVAILABLE, HeaderMap::new(), body.to_vec());
            }
            let gv = path.trim_start_matches("/apis/");
            let body = json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": []});
            (StatusCode::OK, HeaderMap::new(), serde_json::to_vec(&body).unwrap())
        }
    });
    assert_eq!(&asked[..2], ["/api", "/apis"]);
    assert_eq!(
        &asked[2..],
        [
            "/api/v1",
            "/apis/apps/v1",
            "/apis/autoscaling/v2",
            "/apis/autoscaling/v1",
            "/apis/batch/v1",
            "/apis/policy/v1",
            "/apis/apiextensions.k8s.io/v1"
        ]
    );
    let groups: Vec<&str> = c.groups().iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        groups,
        ["", "apps", "autoscaling", "policy", "apiextensions.k8s.io"],
        "batch failed, so it is left out"
    );
    assert_eq!(c.failures().len(), 1);
    assert_eq!(c.failures()[0].group_version, "batch/v1");
    assert_eq!(c.failures()[0].error.reason(), Some(&Reason::ServiceUnavailable));
    assert_eq!(c.resolve("deploy").unwrap().resource.api_version, "apps/v1");
    assert_eq!(c.resolve("sa").unwrap().resource.kind, "ServiceAccount");
    assert!(matches!(c.resolve("cronjobs"), Err(ResolveError::Unknown { .. })));
}

#[test]
fn legacy_only_fetch_and_a_406_falls_back() {
    let (c, asked) = drive(Fetch::legacy(), |req| {
        assert_eq!(req.headers()["accept"], "application/json");
        match req.uri().path() {
            "/api" => answer("discovery-api"),
            "/apis" => (StatusCode::OK, HeaderMap::new(), br#"{"kind":"APIGroupList","groups":[]}"#.to_vec()),
            "/api/v1" => answer("discovery-api-v1"),
            other => panic!("{other}"),
        }
    });
    assert_eq!(asked, ["/api", "/apis", "/api/v1"]);
    assert_eq!(c.resolve("cm").unwrap().resource.plural, "configmaps");

    // A server refusing the aggregated Accept is asked again for the legacy documents.
    let (c, asked) = drive(Fetch::new(), |req| {
        let aggregated = req.headers()["accept"] == ACCEPT_AGGREGATED;
        match (req.uri().path(), aggregated) {
            (_, true) => answer("discovery-apis-aggregated-v2beta1-only"),
            ("/api", false) => answer("discovery-api"),
            ("/apis", false) => (StatusCode::OK, HeaderMap::new(), br#"{"kind":"APIGroupList","groups":[]}"#.to_vec()),
            ("/api/v1", false) => answer("discovery-api-v1"),
            (other, _) => panic!("{other}"),
        }
    });
    assert_eq!(asked, ["/api", "/apis", "/api", "/apis", "/api/v1"]);
    assert!(c.resolve("pods").is_ok());
}

#[test]
fn forbidden_discovery_is_an_error() {
    let mut fetch = Fetch::new();
    let (id, _) = fetch.poll_request().unwrap();
    let (status, headers, body) = answer("auth-no-token-discovery");
    let e = fetch.on_response(id, status, &headers, &body).unwrap_err();
    assert!(e.to_string().contains("/api") && e.to_string().contains("system:anonymous"), "{e}");
    assert!(fetch.on_response(id, status, &headers, &body).is_err(), "an id is answered once");
    assert!(fetch.finish().is_err(), "not finished");
}

// ---- Resolution ----

fn info(group: &str, version: &str, kind: &str, plural: &str, short: &[&str]) -> ResourceInfo {
    ResourceInfo {
        resource: ApiResource::new(group, version, kind, plural, true),
        singular: kind.to_lowercase(),
        short_names: short.iter().map(|s| (*s).to_owned()).collect(),
        categories: Vec::new(),
        verbs: vec!["get".into(), "list".into()],
        subresources: Vec::new(),
    }
}

fn gv(version: &str, resources: Vec<ResourceInfo>) -> GroupVersion {
    GroupVersion { version: version.into(), resources, freshness: Freshness::Current }
}

/// The fixtures' groups, plus: batch with CronJobs, events in two groups, autoscaling in two
/// versions, and custom resources whose names collide.
fn rich_catalog() -> Catalog {
    let mut groups: Vec<ApiGroup> = aggregated_catalog().groups().to_vec();
    groups[0].versions[0].resources.push(info("", "v1", "Event", "events", &["ev"]));
    groups[0].versions[0].resources.push(info("", "v1", "Endpoints", "endpoints", &["ep"]));
    groups.push(ApiGroup {
        name: "batch".into(),
        versions: vec![gv("v1", vec![info("batch", "v1", "CronJob", "cronjobs", &["cj"])])],
    });
    groups.push(ApiGroup {
        name: "events.k8s.io".into(),
        versions: vec![gv("v1", vec![info("events.k8s.io", "v1", "Event", "events", &["ev"])])],
    });
    groups.push(ApiGroup {
        name: "autoscaling".into(),
        versions: vec![
            gv("v2", vec![info("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", &["hpa"])]),
            gv("v1", vec![info("autoscaling", "v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers", &["hpa"])]),
        ],
    });
    // Two CRDs: one Widget kind in two groups, a short name shared, and a CRD whose short name
    // is another resource's plural.
    let widget_crd = |group: &str, short: &str| {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": format!("widgets.{group}")},
               "spec": {"group": group, "scope": "Namespaced",
                        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": [short, "wd"], "categories": ["toys"]},
                        "versions": [{"name": "v1beta1", "served": true, "storage": false},
                                     {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}, "scale": {}}},
                                     {"name": "v0", "served": false, "storage": false}]}})
    };
    for (group, short) in [("a.example.com", "wa"), ("b.example.com", "wb")] {
        let rs = crd_resources(&widget_crd(group, short));
        assert_eq!(rs.len(), 2, "v0 is not served");
        // The real server lists the versions of a CRD group newest first (v1 before v1beta1).
        groups.push(ApiGroup {
            name: group.into(),
            versions: vec![gv("v1", vec![rs[1].clone()]), gv("v1beta1", vec![rs[0].clone()])],
        });
    }
    let gadget = json!({"spec": {"group": "c.example.com", "scope": "Cluster",
        "names": {"kind": "Gadget", "plural": "gadgets", "shortNames": ["deployments", "gd"]},
        "versions": [{"name": "v1", "served": true}]}});
    let rs = crd_resources(&gadget);
    assert_eq!((rs[0].scope(), rs[0].singular.as_str()), (Scope::Cluster, "gadget"));
    groups.push(ApiGroup { name: "c.example.com".into(), versions: vec![gv("v1", rs)] });
    Catalog::new(groups)
}

fn resolved(c: &Catalog, name: &str) -> String {
    match c.resolve(name) {
        Ok(r) => r.full_name(),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn what_kubectl_accepts() {
    let c = rich_catalog();
    for (typed, want) in [
        ("po", "pods.v1."),
        ("pods", "pods.v1."),
        ("pod", "pods.v1."),
        ("Pod", "pods.v1."),
        ("PODS", "pods.v1."),
        (" pods ", "pods.v1."),
        ("pods.v1.", "pods.v1."),
        ("ns", "namespaces.v1."),
        ("deploy", "deployments.v1.apps"),
        ("deployment", "deployments.v1.apps"),
        ("Deployment", "deployments.v1.apps"),
        ("deployments.apps", "deployments.v1.apps"),
        ("Deployment.apps", "deployments.v1.apps"),
        ("deploy.apps", "deployments.v1.apps"),
        ("deployments.v1.apps", "deployments.v1.apps"),
        ("Deployment.v1.apps", "deployments.v1.apps"),
        ("cronjobs.v1.batch", "cronjobs.v1.batch"),
        ("cj", "cronjobs.v1.batch"),
        ("CronJob", "cronjobs.v1.batch"),
        ("Endpoints", "endpoints.v1."),
        ("ep", "endpoints.v1."),
        // The preferred version of a group that serves it in several.
        ("hpa", "horizontalpodautoscalers.v2.autoscaling"),
        ("horizontalpodautoscalers.autoscaling", "horizontalpodautoscalers.v2.autoscaling"),
        ("horizontalpodautoscalers.v1.autoscaling", "horizontalpodautoscalers.v1.autoscaling"),
        // The core group first, as in kubectl.
        ("events", "events.v1."),
        ("ev", "events.v1."),
        ("events.events.k8s.io", "events.v1.events.k8s.io"),
        // CRDs: their preferred (first) version, short names, group-qualified forms.
        ("wa", "widgets.v1.a.example.com"),
        ("wb", "widgets.v1.b.example.com"),
        ("widgets.a.example.com", "widgets.v1.a.example.com"),
        ("widget.b.example.com", "widgets.v1.b.example.com"),
        ("wd.b.example.com", "widgets.v1.b.example.com"),
        ("widgets.v1beta1.a.example.com", "widgets.v1beta1.a.example.com"),
        ("Widget.v1beta1.b.example.com", "widgets.v1beta1.b.example.com"),
        ("gd", "gadgets.v1.c.example.com"),
        // A plural wins over another resource's short name, as in kubectl.
        ("deployments", "deployments.v1.apps"),
        ("deployments.c.example.com", "gadgets.v1.c.example.com"),
    ] {
        assert_eq!(resolved(&c, typed), want, "{typed:?}");
    }
    let ns = c.resolve("ns").unwrap();
    assert_eq!(ns.scope(), Scope::Cluster);
    let w = c.resolve("wa").unwrap();
    assert_eq!(w.subresource("scale").unwrap().kind, "Scale");
    assert_eq!(w.categories, ["toys"]);
    assert_eq!(c.category("toys").len(), 2);
}

#[test]
fn ambiguous_and_unknown_names() {
    let c = rich_catalog();
    for typed in ["widgets", "widget", "Widget", "wd"] {
        match c.resolve(typed) {
            Err(ResolveError::Ambiguous { name, candidates }) => {
                assert_eq!(name, typed);
                assert_eq!(candidates, ["widgets.v1.a.example.com", "widgets.v1.b.example.com"], "{typed}");
            }
            other => panic!("{typed}: {other:?}"),
        }
    }
    let e = c.resolve("widgets").unwrap_err();
    assert_eq!(
        e.to_string(),
        "\"widgets\" is ambiguous: it matches widgets.v1.a.example.com, widgets.v1.b.example.com; name one with its group"
    );
    for typed in ["gizmos", "po.apps", "pods.v2.", "deployments.v1.batch", "cronjobs.v9.batch", "wa.b.example.com"] {
        assert_eq!(c.resolve(typed), Err(ResolveError::Unknown { name: typed.to_owned() }), "{typed}");
    }
    assert_eq!(c.resolve("gizmos").unwrap_err().to_string(), "the server doesn't have a resource type \"gizmos\"");
    assert!(matches!(c.resolve(""), Err(ResolveError::Invalid { .. })));
    assert!(matches!(c.resolve("pods/web"), Err(ResolveError::Invalid { .. })));
}

#[test]
fn kinds_of_manifests_resolve_exactly() {
    let c = rich_catalog();
    assert_eq!(c.resolve_kind("apps/v1", "Deployment").unwrap().resource.plural, "deployments");
    assert_eq!(c.resolve_kind("v1", "ConfigMap").unwrap().resource.plural, "configmaps");
    assert_eq!(c.resolve_kind("a.example.com/v1beta1", "Widget").unwrap().resource.version, "v1beta1");
    for (av, kind) in [("apps/v2", "Deployment"), ("v1", "configmap"), ("example.com/v1", "Widget"), ("v1", "Gizmo")] {
        assert_eq!(
            c.resolve_kind(av, kind),
            Err(ResolveError::UnknownKind { api_version: av.into(), kind: kind.into() }),
            "{av} {kind}"
        );
    }
}

#[test]
fn stale_versions_are_marked() {
    let body = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "items": [
        {"metadata": {"name": "metrics.k8s.io"}, "versions": [{"version": "v1beta1", "freshness": "Stale", "resources": null}]},
        {"metadata": {"name": "x.example.com"}, "versions": [{"version": "v1", "resources": [
            {"resource": "nokinds", "scope": "Namespaced", "verbs": ["get"]},
            {"resource": "things", "responseKind": {"group": "", "version": "", "kind": "Thing"}, "scope": "Cluster"}]}]}]});
    let Ok(Document::Aggregated(groups)) = parse_document(&serde_json::to_vec(&body).unwrap()) else { panic!() };
    assert_eq!(groups[0].versions[0].freshness, Freshness::Stale);
    let x: Vec<&str> = groups[1].versions[0].resources.iter().map(|r| r.resource.plural.as_str()).collect();
    assert_eq!(x, ["things"], "a resource naming no kind is left out");
    assert_eq!(groups[1].versions[0].resources[0].singular, "thing");
}

#[test]
fn a_resource_no_longer_served_is_told_from_a_missing_object() {
    let error = |name: &str| {
        let (status, headers, body) = answer(name);
        kube_proto::Response::new(status, &headers, &body).error()
    };
    assert!(is_resource_not_served(&error("crd-gadget-create-before-crd-exists")));
    assert!(!is_resource_not_served(&error("crd-widget-get-notfound")), "an object that does not exist");
    let unknown = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}"#;
    let e = kube_proto::Response::new(StatusCode::NOT_FOUND, &HeaderMap::new(), unknown).error();
    assert!(is_resource_not_served(&e));
    assert!(!is_resource_not_served(&error("auth-no-token-discovery")));
}
