//! The specification of every request the builders make: for each operation and parameter, the
//! exact method, path and query (with its percent-encoding), the complete set of headers and the
//! body (compared as parsed JSON); and every combination the builders reject, as a typed
//! [`RequestError`].
//!
//! Each case is one call: `check(request, method, uri, headers, body)` or `fails(request, error)`.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Pod};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube_proto::request::websocket_key;
use kube_proto::{
    ApiResource, AttachParams, DeleteParams, DynamicObject, EvictParams, GetParams, ListParams, LogParams,
    PartialObjectMeta, Patch, PatchParams, PostParams, PropagationPolicy, Request, RequestError, ValidationDirective,
    VersionMatch, WatchParams,
};
use serde_json::{Value, json};

// ---- Helpers ----

type Built = Result<http::Request<Vec<u8>>, RequestError>;
type Headers = &'static [(&'static str, &'static str)];

const JSON: Headers = &[("accept", "application/json")];
const SEND_JSON: Headers = &[("accept", "application/json"), ("content-type", "application/json")];
const META: Headers = &[("accept", "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")];
const META_LIST: Headers = &[("accept", "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1")];
const ANY: Headers = &[("accept", "*/*")];
const APPLY: Headers = &[("accept", "application/json"), ("content-type", "application/apply-patch+yaml")];
const JSON_PATCH: Headers = &[("accept", "application/json"), ("content-type", "application/json-patch+json")];
const MERGE: Headers = &[("accept", "application/json"), ("content-type", "application/merge-patch+json")];
const STRATEGIC: Headers =
    &[("accept", "application/json"), ("content-type", "application/strategic-merge-patch+json")];
const META_MERGE: Headers = &[
    ("accept", "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"),
    ("content-type", "application/merge-patch+json"),
];
const META_APPLY: Headers = &[
    ("accept", "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"),
    ("content-type", "application/apply-patch+yaml"),
];
const WS_EXEC: Headers = &[
    ("connection", "Upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-protocol", "v5.channel.k8s.io, v4.channel.k8s.io"),
];
const WS_PORTFORWARD: Headers = &[
    ("connection", "Upgrade"),
    ("upgrade", "websocket"),
    ("sec-websocket-version", "13"),
    ("sec-websocket-protocol", "v4.channel.k8s.io"),
];

/// Checks a built request exactly: method, path and query, the whole header set, and the body
/// (`None`: empty; `Some`: equal as JSON).
#[track_caller]
fn check(built: Built, method: &str, uri: &str, headers: Headers, body: Option<Value>) {
    let req = match built {
        Ok(req) => req,
        Err(e) => panic!("expected {method} {uri}, got the error {e:?}"),
    };
    assert_eq!(req.method().as_str(), method, "method of {uri}");
    assert!(req.uri().scheme().is_none() && req.uri().authority().is_none(), "{} is not origin-form", req.uri());
    assert_eq!(req.uri().to_string(), uri);
    let mut got: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().expect("ASCII header").to_owned()))
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = headers.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())).collect();
    want.sort();
    assert_eq!(got, want, "headers of {method} {uri}");
    match body {
        None => {
            assert!(req.body().is_empty(), "{method} {uri}: unexpected body {}", String::from_utf8_lossy(req.body()))
        }
        Some(want) => assert_json(req.body(), &want),
    }
}

/// Compares a body with the expected JSON, as parsed values (key order and spacing do not matter).
#[track_caller]
fn assert_json(body: &[u8], want: &Value) {
    let got: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(body)));
    assert_eq!(&got, want, "body");
}

/// A GET with `Accept: application/json` and no body.
#[track_caller]
fn get(built: Built, uri: &str) {
    check(built, "GET", uri, JSON, None);
}

/// A request that must be refused with exactly this error.
#[track_caller]
fn fails(built: Built, want: RequestError) {
    match built {
        Ok(req) => panic!("expected {want:?}, but built {} {}", req.method(), req.uri()),
        Err(e) => assert_eq!(e, want),
    }
}

/// A request that must be refused with `InvalidParam` for this parameter.
#[track_caller]
fn fails_param(built: Built, param: &str) {
    match built {
        Err(RequestError::InvalidParam { param: p, reason }) => {
            assert_eq!(p, param, "InvalidParam for the wrong parameter ({reason})");
            assert!(!reason.is_empty());
        }
        Ok(req) => panic!("expected InvalidParam {{ {param} }}, but built {} {}", req.method(), req.uri()),
        Err(e) => panic!("expected InvalidParam {{ {param} }}, got {e:?}"),
    }
}

/// A request that must be refused with `InvalidName` for this name.
#[track_caller]
fn fails_name(built: Built, what: &str, value: &str) {
    match built {
        Err(RequestError::InvalidName { what: w, value: v, .. }) => assert_eq!((w, v.as_str()), (what, value)),
        Ok(req) => panic!("expected InvalidName {{ {what}: {value:?} }}, but built {} {}", req.method(), req.uri()),
        Err(e) => panic!("expected InvalidName {{ {what}: {value:?} }}, got {e:?}"),
    }
}

/// A request that must be refused with `InvalidSelector` for this selector.
#[track_caller]
fn fails_selector(built: Built, kind: &str, selector: &str) {
    match built {
        Err(RequestError::InvalidSelector(e)) => {
            assert_eq!((e.kind, e.selector.as_str()), (kind, selector));
            assert!(e.to_string().contains(&format!("{selector:?}")), "{e}");
        }
        Ok(req) => panic!("expected an invalid {kind} selector {selector:?}, but built {} {}", req.method(), req.uri()),
        Err(e) => panic!("expected an invalid {kind} selector {selector:?}, got {e:?}"),
    }
}

fn empty(what: &'static str) -> RequestError {
    RequestError::EmptyName { what }
}

/// The decoded value of a query parameter, for round-trip checks of the encoding.
fn query_values(built: &Built, key: &str) -> Vec<String> {
    let req = built.as_ref().expect("request");
    let query = req.uri().query().unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k == key).map(|(_, v)| v.into_owned()).collect()
}

fn pods() -> Request {
    Request::namespaced::<Pod>("default")
}
fn configmaps() -> Request {
    Request::namespaced::<ConfigMap>("kube-system")
}
fn nodes() -> Request {
    Request::all::<Node>()
}
fn namespaces() -> Request {
    Request::all::<Namespace>()
}
fn deployments() -> Request {
    Request::namespaced::<Deployment>("apps")
}
fn widget() -> ApiResource {
    ApiResource::new("example.com", "v1alpha1", "Widget", "widgets", true)
}
fn gadget() -> ApiResource {
    ApiResource::new("example.com", "v1", "Gadget", "gadgets", false)
}
fn widgets() -> Request {
    Request::dynamic(&widget(), Some("ns1"))
}
fn gadgets() -> Request {
    Request::dynamic(&gadget(), None)
}

fn pod(name: &str) -> Pod {
    Pod { metadata: ObjectMeta { name: Some(name.into()), ..ObjectMeta::default() }, ..Pod::default() }
}
fn cm_json(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v", "ü": "✓"}})
}
fn lp() -> ListParams {
    ListParams::default()
}
fn wp() -> WatchParams {
    WatchParams::default()
}
fn pp() -> PostParams {
    PostParams::default()
}
fn dp() -> DeleteParams {
    DeleteParams::default()
}
fn logp() -> LogParams {
    LogParams::default()
}
fn ap() -> AttachParams {
    AttachParams::default()
}

// ---- Paths and scopes ----

#[test]
fn collection_paths_for_every_scope() {
    assert_eq!(pods().url_path(), "/api/v1/namespaces/default/pods");
    assert_eq!(configmaps().url_path(), "/api/v1/namespaces/kube-system/configmaps");
    assert_eq!(nodes().url_path(), "/api/v1/nodes");
    assert_eq!(namespaces().url_path(), "/api/v1/namespaces");
    assert_eq!(deployments().url_path(), "/apis/apps/v1/namespaces/apps/deployments");
    assert_eq!(Request::all::<Pod>().url_path(), "/api/v1/pods");
    assert_eq!(Request::all::<Deployment>().url_path(), "/apis/apps/v1/deployments");
    assert_eq!(Request::all::<ClusterRole>().url_path(), "/apis/rbac.authorization.k8s.io/v1/clusterroles");
    // Dynamic kinds: namespaced in a namespace, across all namespaces, and cluster-scoped (where a
    // namespace is ignored).
    assert_eq!(widgets().url_path(), "/apis/example.com/v1alpha1/namespaces/ns1/widgets");
    assert_eq!(Request::dynamic(&widget(), None).url_path(), "/apis/example.com/v1alpha1/widgets");
    assert_eq!(Request::dynamic(&gadget(), Some("ns1")).url_path(), "/apis/example.com/v1/gadgets");
    assert_eq!(gadgets().url_path(), "/apis/example.com/v1/gadgets");
    assert_eq!(
        Request::namespaced_with::<DynamicObject>(&widget(), "ns2").url_path(),
        "/apis/example.com/v1alpha1/namespaces/ns2/widgets"
    );
    assert_eq!(Request::all_with::<DynamicObject>(&widget()).url_path(), "/apis/example.com/v1alpha1/widgets");
    // A core-group kind as a dynamic resource, and a guessed plural.
    let cm = ApiResource::erase::<ConfigMap>(&());
    assert_eq!(Request::dynamic(&cm, Some("x")).url_path(), "/api/v1/namespaces/x/configmaps");
    let np = ApiResource::from_gvk("networking.k8s.io", "v1", "NetworkPolicy", true);
    assert_eq!(Request::dynamic(&np, Some("x")).url_path(), "/apis/networking.k8s.io/v1/namespaces/x/networkpolicies");
    // Metadata-only views build the URLs of the kind they stand for.
    assert_eq!(Request::namespaced::<PartialObjectMeta<Pod>>("default").url_path(), "/api/v1/namespaces/default/pods");
    assert_eq!(Request::all::<PartialObjectMeta<Node>>().url_path(), "/api/v1/nodes");
    assert_eq!(
        Request::namespaced_with::<PartialObjectMeta<DynamicObject>>(&widget(), "ns1").url_path(),
        "/apis/example.com/v1alpha1/namespaces/ns1/widgets"
    );
    // A hand-made collection path.
    assert_eq!(Request::new("/apis/example.com/v1/things").url_path(), "/apis/example.com/v1/things");
    get(Request::new("/apis/example.com/v1/things").list(&lp().limit(1)), "/apis/example.com/v1/things?limit=1");
}

// ---- GET ----

#[test]
fn get_one_object() {
    get(pods().get("web-0", &GetParams::default()), "/api/v1/namespaces/default/pods/web-0");
    get(pods().get("web-0", &GetParams::any()), "/api/v1/namespaces/default/pods/web-0?resourceVersion=0");
    get(pods().get("web-0", &GetParams::at("4711")), "/api/v1/namespaces/default/pods/web-0?resourceVersion=4711");
    get(configmaps().get("cm", &GetParams::default()), "/api/v1/namespaces/kube-system/configmaps/cm");
    get(nodes().get("node-1", &GetParams::default()), "/api/v1/nodes/node-1");
    get(nodes().get("node-1", &GetParams::any()), "/api/v1/nodes/node-1?resourceVersion=0");
    get(namespaces().get("kube-public", &GetParams::default()), "/api/v1/namespaces/kube-public");
    get(deployments().get("web", &GetParams::default()), "/apis/apps/v1/namespaces/apps/deployments/web");
    get(widgets().get("w1", &GetParams::default()), "/apis/example.com/v1alpha1/namespaces/ns1/widgets/w1");
    get(gadgets().get("g1", &GetParams::at("9")), "/apis/example.com/v1/gadgets/g1?resourceVersion=9");
    // Names are sent verbatim: ':' (RBAC system names), '@', '+', '=' and '~' need no escaping in a
    // path segment.
    get(
        Request::all::<ClusterRole>().get("system:controller:job-controller", &GetParams::default()),
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/system:controller:job-controller",
    );
    get(pods().get("a@b+c=d~e", &GetParams::default()), "/api/v1/namespaces/default/pods/a@b+c=d~e");
    // A resourceVersion is a query value: encoded like any other.
    get(pods().get("p", &GetParams::at("a b&c")), "/api/v1/namespaces/default/pods/p?resourceVersion=a+b%26c");
}

#[test]
fn metadata_only_get_list_watch_patch() {
    let pods_meta = Request::namespaced::<PartialObjectMeta<Pod>>("default");
    check(pods_meta.get_metadata("p", &GetParams::default()), "GET", "/api/v1/namespaces/default/pods/p", META, None);
    check(
        pods_meta.get_metadata("p", &GetParams::any()),
        "GET",
        "/api/v1/namespaces/default/pods/p?resourceVersion=0",
        META,
        None,
    );
    check(pods_meta.list_metadata(&lp()), "GET", "/api/v1/namespaces/default/pods", META_LIST, None);
    check(
        pods_meta.list_metadata(&lp().labels("app").limit(10)),
        "GET",
        "/api/v1/namespaces/default/pods?labelSelector=app&limit=10",
        META_LIST,
        None,
    );
    // A watch's events each carry one object: PartialObjectMetadata, not the List form.
    check(
        pods_meta.watch_metadata(&wp(), "824"),
        "GET",
        "/api/v1/namespaces/default/pods?watch=true&allowWatchBookmarks=true&resourceVersion=824",
        META,
        None,
    );
    check(
        pods_meta.watch_metadata(&wp().streaming_lists(), ""),
        "GET",
        "/api/v1/namespaces/default/pods?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
        META,
        None,
    );
    let labels = json!({"metadata": {"labels": {"tier": "front"}}});
    check(
        pods_meta.patch_metadata("p", &PatchParams::default(), &Patch::Merge(&labels)),
        "PATCH",
        "/api/v1/namespaces/default/pods/p",
        META_MERGE,
        Some(labels.clone()),
    );
    let applied = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"tier": "front"}}});
    check(
        pods_meta.patch_metadata("p", &PatchParams::apply("labeler").force(), &Patch::Apply(&applied)),
        "PATCH",
        "/api/v1/namespaces/default/pods/p?force=true&fieldManager=labeler",
        META_APPLY,
        Some(applied.clone()),
    );
    // Cluster-scoped and dynamic kinds.
    let nodes_meta = Request::all::<PartialObjectMeta<Node>>();
    check(nodes_meta.get_metadata("n1", &GetParams::default()), "GET", "/api/v1/nodes/n1", META, None);
    check(nodes_meta.list_metadata(&lp()), "GET", "/api/v1/nodes", META_LIST, None);
    check(
        nodes_meta.watch_metadata(&wp().disable_bookmarks(), "1"),
        "GET",
        "/api/v1/nodes?watch=true&resourceVersion=1",
        META,
        None,
    );
    let widgets_meta = Request::namespaced_with::<PartialObjectMeta<DynamicObject>>(&widget(), "ns1");
    check(
        widgets_meta.get_metadata("w", &GetParams::default()),
        "GET",
        "/apis/example.com/v1alpha1/namespaces/ns1/widgets/w",
        META,
        None,
    );
    check(
        Request::all::<PartialObjectMeta<Pod>>().list_metadata(&lp().fields("spec.nodeName=n1")),
        "GET",
        "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1",
        META_LIST,
        None,
    );
    // Errors pass through unchanged.
    fails(pods_meta.get_metadata("", &GetParams::default()), empty("name"));
    fails_selector(pods_meta.list_metadata(&lp().labels("a in b")), "label", "a in b");
    fails_selector(pods_meta.watch_metadata(&wp().fields("x"), ""), "field", "x");
    fails(
        pods_meta.patch_metadata("p", &PatchParams::default(), &Patch::Apply(&applied)),
        RequestError::MissingFieldManager,
    );
}

// ---- LIST ----

#[test]
fn list_every_parameter() {
    const P: &str = "/api/v1/namespaces/default/pods";
    let list = |l: ListParams| pods().list(&l);
    get(list(lp()), P);
    get(list(lp().labels("app=web")), &format!("{P}?labelSelector=app%3Dweb"));
    get(list(lp().fields("metadata.name=web-0")), &format!("{P}?fieldSelector=metadata.name%3Dweb-0"));
    get(list(lp().timeout(30)), &format!("{P}?timeoutSeconds=30"));
    get(list(lp().timeout(0)), &format!("{P}?timeoutSeconds=0"));
    get(list(lp().limit(500)), &format!("{P}?limit=500"));
    get(list(lp().limit(u32::MAX)), &format!("{P}?limit=4294967295"));
    get(
        list(lp().continue_token("eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ")),
        &format!("{P}?continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"),
    );
    let rv_only = ListParams { resource_version: Some("42".into()), ..lp() };
    get(list(rv_only), &format!("{P}?resourceVersion=42"));
    get(list(lp().match_any()), &format!("{P}?resourceVersion=0&resourceVersionMatch=NotOlderThan"));
    get(list(lp().at("42")), &format!("{P}?resourceVersion=42&resourceVersionMatch=Exact"));
    get(list(lp().not_older_than("42")), &format!("{P}?resourceVersion=42&resourceVersionMatch=NotOlderThan"));
    let explicit = ListParams { resource_version: Some("7".into()), version_match: Some(VersionMatch::Exact), ..lp() };
    get(list(explicit), &format!("{P}?resourceVersion=7&resourceVersionMatch=Exact"));
    // Combinations: the order is labelSelector, fieldSelector, timeoutSeconds, limit, continue,
    // resourceVersion, resourceVersionMatch.
    get(
        list(lp().not_older_than("100").limit(5).timeout(10).fields("status.phase=Running").labels("app=web")),
        &format!(
            "{P}?labelSelector=app%3Dweb&fieldSelector=status.phase%3DRunning&timeoutSeconds=10&limit=5&resourceVersion=100&resourceVersionMatch=NotOlderThan"
        ),
    );
    get(
        list(lp().labels("app").limit(2).continue_token("tok")),
        &format!("{P}?labelSelector=app&limit=2&continue=tok"),
    );
    // A continue token may come with resourceVersion=0 (ignored by the server), not with another.
    let cont_rv0 = ListParams { resource_version: Some("0".into()), ..lp().continue_token("tok") };
    get(list(cont_rv0), &format!("{P}?continue=tok&resourceVersion=0"));
    get(list(lp().match_any().limit(3)), &format!("{P}?limit=3&resourceVersion=0&resourceVersionMatch=NotOlderThan"));
    // Every scope.
    get(Request::all::<Pod>().list(&lp()), "/api/v1/pods");
    get(Request::all::<Pod>().list(&lp().labels("app=web")), "/api/v1/pods?labelSelector=app%3Dweb");
    get(Request::all::<Deployment>().list(&lp().limit(1)), "/apis/apps/v1/deployments?limit=1");
    get(
        configmaps().list(&lp().match_any()),
        "/api/v1/namespaces/kube-system/configmaps?resourceVersion=0&resourceVersionMatch=NotOlderThan",
    );
    get(
        nodes().list(&lp().labels("node-role.kubernetes.io/control-plane")),
        "/api/v1/nodes?labelSelector=node-role.kubernetes.io%2Fcontrol-plane",
    );
    get(
        namespaces().list(&lp().fields("status.phase=Active")),
        "/api/v1/namespaces?fieldSelector=status.phase%3DActive",
    );
    get(
        deployments().list(&lp().at("12")),
        "/apis/apps/v1/namespaces/apps/deployments?resourceVersion=12&resourceVersionMatch=Exact",
    );
    get(widgets().list(&lp().limit(10)), "/apis/example.com/v1alpha1/namespaces/ns1/widgets?limit=10");
    get(Request::dynamic(&widget(), None).list(&lp()), "/apis/example.com/v1alpha1/widgets");
    get(
        gadgets().list(&lp().labels("color in (red,blue)")),
        "/apis/example.com/v1/gadgets?labelSelector=color+in+%28red%2Cblue%29",
    );
}

#[test]
fn list_rejections() {
    let list = |l: ListParams| pods().list(&l);
    let mut rvm = lp();
    rvm.version_match = Some(VersionMatch::NotOlderThan);
    fails(list(rvm), RequestError::VersionMatchWithoutVersion);
    let mut exact = lp();
    exact.version_match = Some(VersionMatch::Exact);
    fails(list(exact.clone()), RequestError::VersionMatchWithoutVersion);
    // An empty resourceVersion is no resourceVersion: the server forbids the match then too.
    fails(list(lp().not_older_than("")), RequestError::VersionMatchWithoutVersion);
    fails(list(lp().at("")), RequestError::VersionMatchWithoutVersion);
    // The server rejects Exact at resourceVersion 0.
    fails_param(list(lp().at("0")), "resourceVersionMatch");
    // With a continue token: no resourceVersion other than 0, and no resourceVersionMatch.
    fails_param(list(ListParams { resource_version: Some("5".into()), ..lp().continue_token("t") }), "continue");
    fails_param(list(lp().at("5").continue_token("t")), "continue");
    fails_param(list(lp().match_any().continue_token("t")), "resourceVersionMatch");
    // Selectors the server would reject.
    fails_selector(list(lp().labels("app in web")), "label", "app in web");
    fails_selector(list(lp().labels("a=b,")), "label", "a=b,");
    fails_selector(list(lp().labels("a=b,,c=d")), "label", "a=b,,c=d");
    fails_selector(list(lp().labels("Bad Key=x")), "label", "Bad Key=x");
    fails_selector(list(lp().labels("app=ü")), "label", "app=ü");
    fails_selector(list(lp().fields("metadata.name")), "field", "metadata.name");
    fails_selector(list(lp().fields("=x")), "field", "=x");
    fails_selector(list(lp().fields("a=b\\q")), "field", "a=b\\q");
    fails_selector(list(lp().fields("a=b=c")), "field", "a=b=c");
    // Selector errors come before version errors.
    fails_selector(list(ListParams { version_match: Some(VersionMatch::Exact), ..lp().labels("!") }), "label", "!");
    // Cluster-scoped and dynamic collections validate the same way.
    fails(nodes().list(&exact), RequestError::VersionMatchWithoutVersion);
    fails_selector(widgets().list(&lp().labels("x notin")), "label", "x notin");
}

#[test]
fn query_values_are_percent_encoded_like_go_query_escape() {
    const P: &str = "/api/v1/namespaces/default/pods";
    let labels = |s: &str| pods().list(&lp().labels(s));
    let fields = |s: &str| pods().list(&lp().fields(s));
    // Label selectors: spaces become '+', parentheses, commas, '!', '=', '<', '>' and '/' are
    // escaped; '-', '_', '.' and '~' are not.
    get(
        labels("app in (web, cache),tier!=front"),
        &format!("{P}?labelSelector=app+in+%28web%2C+cache%29%2Ctier%21%3Dfront"),
    );
    get(labels("!canary"), &format!("{P}?labelSelector=%21canary"));
    get(labels("env notin (dev,qa),release"), &format!("{P}?labelSelector=env+notin+%28dev%2Cqa%29%2Crelease"));
    get(labels("app==web"), &format!("{P}?labelSelector=app%3D%3Dweb"));
    get(labels("example.com/app=my_app-1.0"), &format!("{P}?labelSelector=example.com%2Fapp%3Dmy_app-1.0"));
    get(labels("gen>3,gen<10"), &format!("{P}?labelSelector=gen%3E3%2Cgen%3C10"));
    get(labels("a in ()"), &format!("{P}?labelSelector=a+in+%28%29"));
    get(labels("  app  =  web  "), &format!("{P}?labelSelector=++app++%3D++web++"));
    get(labels("a\tin\t(b)"), &format!("{P}?labelSelector=a%09in%09%28b%29"));
    // An empty selector means "everything" and is left out, as client-go does.
    get(labels(""), P);
    // Field selectors, including escaped values and values that are not ASCII.
    get(
        fields("metadata.name=my-cm,metadata.namespace!=kube-system"),
        &format!("{P}?fieldSelector=metadata.name%3Dmy-cm%2Cmetadata.namespace%21%3Dkube-system"),
    );
    get(fields("spec.x=a\\,b\\=c\\\\d"), &format!("{P}?fieldSelector=spec.x%3Da%5C%2Cb%5C%3Dc%5C%5Cd"));
    get(fields("metadata.name=café"), &format!("{P}?fieldSelector=metadata.name%3Dcaf%C3%A9"));
    get(fields("metadata.name==日本"), &format!("{P}?fieldSelector=metadata.name%3D%3D%E6%97%A5%E6%9C%AC"));
    get(fields("metadata.name=a b"), &format!("{P}?fieldSelector=metadata.name%3Da+b"));
    get(fields("spec.nodeName="), &format!("{P}?fieldSelector=spec.nodeName%3D"));
    get(fields("a=b,"), &format!("{P}?fieldSelector=a%3Db%2C"));
    get(fields("a?b=c#d&e"), &format!("{P}?fieldSelector=a%3Fb%3Dc%23d%26e"));
    // Continue tokens: standard base64 with '+', '/' and '=' padding; URL-safe base64; not ASCII.
    get(pods().list(&lp().continue_token("eyJ2Ijoi+/8=")), &format!("{P}?continue=eyJ2Ijoi%2B%2F8%3D"));
    get(pods().list(&lp().continue_token("ab==")), &format!("{P}?continue=ab%3D%3D"));
    get(pods().list(&lp().continue_token("eyJ2-_x")), &format!("{P}?continue=eyJ2-_x"));
    get(pods().list(&lp().continue_token("ü%")), &format!("{P}?continue=%C3%BC%25"));
    get(pods().list(&lp().continue_token("")), P);
    // Decoding the query gives back exactly what was given.
    for s in ["app in (web, cache),tier!=front", "!a,b", "x.io/y notin (1,2)", "a=b"] {
        assert_eq!(query_values(&labels(s), "labelSelector"), [s]);
    }
    for s in ["metadata.name=café", "spec.x=a\\,b", "a=b c", "a!=+/%&\\=;#?"] {
        assert_eq!(query_values(&fields(s), "fieldSelector"), [s]);
    }
    for s in ["eyJ2Ijoi+/8=", "a b", "é&x=y", "100%"] {
        assert_eq!(query_values(&pods().list(&lp().continue_token(s)), "continue"), [s]);
    }
}

// ---- WATCH ----

#[test]
fn watch_every_parameter() {
    const P: &str = "/api/v1/namespaces/default/pods";
    let watch = |w: WatchParams, rv: &str| pods().watch(&w, rv);
    get(watch(wp(), ""), &format!("{P}?watch=true&allowWatchBookmarks=true"));
    get(watch(wp(), "0"), &format!("{P}?watch=true&allowWatchBookmarks=true&resourceVersion=0"));
    get(watch(wp(), "12345"), &format!("{P}?watch=true&allowWatchBookmarks=true&resourceVersion=12345"));
    get(watch(wp().disable_bookmarks(), ""), &format!("{P}?watch=true"));
    get(watch(wp().disable_bookmarks(), "9"), &format!("{P}?watch=true&resourceVersion=9"));
    get(
        watch(wp().timeout(290), "9"),
        &format!("{P}?watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=9"),
    );
    get(
        watch(wp().labels("app=web"), "9"),
        &format!("{P}?watch=true&labelSelector=app%3Dweb&allowWatchBookmarks=true&resourceVersion=9"),
    );
    get(
        watch(wp().fields("metadata.name=web-0"), ""),
        &format!("{P}?watch=true&fieldSelector=metadata.name%3Dweb-0&allowWatchBookmarks=true"),
    );
    // Streaming lists: sendInitialEvents=true with resourceVersionMatch=NotOlderThan, from "now"
    // (no resourceVersion) or from a resourceVersion.
    get(
        watch(wp().streaming_lists(), ""),
        &format!("{P}?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"),
    );
    get(
        watch(wp().streaming_lists(), "816"),
        &format!(
            "{P}?watch=true&allowWatchBookmarks=true&resourceVersion=816&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        ),
    );
    get(
        watch(wp().streaming_lists().labels("app in (a,b)").timeout(60), "0"),
        &format!(
            "{P}?watch=true&labelSelector=app+in+%28a%2Cb%29&timeoutSeconds=60&allowWatchBookmarks=true&resourceVersion=0&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        ),
    );
    // Everything at once.
    get(
        watch(
            wp().labels("!canary").fields("spec.nodeName=node-1").timeout(5).disable_bookmarks().streaming_lists(),
            "77",
        ),
        &format!(
            "{P}?watch=true&labelSelector=%21canary&fieldSelector=spec.nodeName%3Dnode-1&timeoutSeconds=5&resourceVersion=77&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        ),
    );
    // The resourceVersion is encoded like any value.
    get(watch(wp().disable_bookmarks(), "a+b"), &format!("{P}?watch=true&resourceVersion=a%2Bb"));
    // Every scope.
    get(Request::all::<Pod>().watch(&wp(), "1"), "/api/v1/pods?watch=true&allowWatchBookmarks=true&resourceVersion=1");
    get(
        nodes().watch(&wp().labels("zone"), ""),
        "/api/v1/nodes?watch=true&labelSelector=zone&allowWatchBookmarks=true",
    );
    get(namespaces().watch(&wp().disable_bookmarks(), "3"), "/api/v1/namespaces?watch=true&resourceVersion=3");
    get(
        deployments().watch(&wp().timeout(10), ""),
        "/apis/apps/v1/namespaces/apps/deployments?watch=true&timeoutSeconds=10&allowWatchBookmarks=true",
    );
    get(
        Request::all::<Deployment>().watch(&wp().streaming_lists(), ""),
        "/apis/apps/v1/deployments?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan",
    );
    get(
        widgets().watch(&wp(), "5"),
        "/apis/example.com/v1alpha1/namespaces/ns1/widgets?watch=true&allowWatchBookmarks=true&resourceVersion=5",
    );
    get(gadgets().watch(&wp().disable_bookmarks(), ""), "/apis/example.com/v1/gadgets?watch=true");
    // Rejections.
    fails_selector(watch(wp().labels("app in web"), ""), "label", "app in web");
    fails_selector(watch(wp().fields("metadata.name"), "1"), "field", "metadata.name");
    fails(Request::namespaced::<Pod>("").watch(&wp(), ""), empty("namespace"));
    fails_name(Request::namespaced::<Pod>("a/b").watch(&wp(), ""), "namespace", "a/b");
}

// ---- CREATE and REPLACE ----

#[test]
fn create_and_replace() {
    let cm = cm_json("cm1");
    check(
        configmaps().create(&pp(), &cm),
        "POST",
        "/api/v1/namespaces/kube-system/configmaps",
        SEND_JSON,
        Some(cm.clone()),
    );
    let dry = PostParams { dry_run: true, ..pp() };
    check(
        configmaps().create(&dry, &cm),
        "POST",
        "/api/v1/namespaces/kube-system/configmaps?dryRun=All",
        SEND_JSON,
        Some(cm.clone()),
    );
    let fm = PostParams { field_manager: Some("my-ctl".into()), ..pp() };
    check(
        configmaps().create(&fm, &cm),
        "POST",
        "/api/v1/namespaces/kube-system/configmaps?fieldManager=my-ctl",
        SEND_JSON,
        Some(cm.clone()),
    );
    for (v, s) in [
        (ValidationDirective::Strict, "Strict"),
        (ValidationDirective::Warn, "Warn"),
        (ValidationDirective::Ignore, "Ignore"),
    ] {
        let p = PostParams { field_validation: Some(v), ..pp() };
        let uri = format!("/api/v1/namespaces/kube-system/configmaps?fieldValidation={s}");
        check(configmaps().create(&p, &cm), "POST", &uri, SEND_JSON, Some(cm.clone()));
        let uri = format!("/api/v1/namespaces/kube-system/configmaps/cm1?fieldValidation={s}");
        check(configmaps().replace("cm1", &p, &cm), "PUT", &uri, SEND_JSON, Some(cm.clone()));
    }
    let all = PostParams {
        dry_run: true,
        field_manager: Some("m".into()),
        field_validation: Some(ValidationDirective::Strict),
    };
    check(
        configmaps().create(&all, &cm),
        "POST",
        "/api/v1/namespaces/kube-system/configmaps?dryRun=All&fieldManager=m&fieldValidation=Strict",
        SEND_JSON,
        Some(cm.clone()),
    );
    // The field manager is a query value: encoded.
    let odd = PostParams { field_manager: Some("ctl/v1 ü&x".into()), ..pp() };
    check(
        configmaps().create(&odd, &cm),
        "POST",
        "/api/v1/namespaces/kube-system/configmaps?fieldManager=ctl%2Fv1+%C3%BC%26x",
        SEND_JSON,
        Some(cm.clone()),
    );
    // 128 bytes is the most the server allows.
    let long = "m".repeat(128);
    let max = PostParams { field_manager: Some(long.clone()), ..pp() };
    check(
        configmaps().create(&max, &cm),
        "POST",
        &format!("/api/v1/namespaces/kube-system/configmaps?fieldManager={long}"),
        SEND_JSON,
        Some(cm.clone()),
    );
    // Replace: PUT to the object.
    check(
        configmaps().replace("cm1", &pp(), &cm),
        "PUT",
        "/api/v1/namespaces/kube-system/configmaps/cm1",
        SEND_JSON,
        Some(cm.clone()),
    );
    check(
        configmaps().replace("cm1", &all, &cm),
        "PUT",
        "/api/v1/namespaces/kube-system/configmaps/cm1?dryRun=All&fieldManager=m&fieldValidation=Strict",
        SEND_JSON,
        Some(cm.clone()),
    );
    // Typed bodies serialize as the object; every scope.
    let p = pod("web-0");
    let pod_json = serde_json::to_value(&p).unwrap();
    assert_eq!(pod_json, json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0"}}));
    check(pods().create(&pp(), &p), "POST", "/api/v1/namespaces/default/pods", SEND_JSON, Some(pod_json.clone()));
    check(
        pods().replace("web-0", &dry, &p),
        "PUT",
        "/api/v1/namespaces/default/pods/web-0?dryRun=All",
        SEND_JSON,
        Some(pod_json),
    );
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}});
    check(namespaces().create(&pp(), &ns), "POST", "/api/v1/namespaces", SEND_JSON, Some(ns.clone()));
    check(namespaces().replace("team-a", &pp(), &ns), "PUT", "/api/v1/namespaces/team-a", SEND_JSON, Some(ns.clone()));
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "labels": {"zone": "a"}}});
    check(nodes().create(&fm, &node), "POST", "/api/v1/nodes?fieldManager=my-ctl", SEND_JSON, Some(node.clone()));
    let dep =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}});
    check(
        deployments().create(&pp(), &dep),
        "POST",
        "/apis/apps/v1/namespaces/apps/deployments",
        SEND_JSON,
        Some(dep.clone()),
    );
    check(
        Request::all::<Pod>().create(&pp(), &p),
        "POST",
        "/api/v1/pods",
        SEND_JSON,
        Some(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0"}})),
    );
    let w = DynamicObject::new("w1", &widget()).within("ns1").data(json!({"spec": {"size": 3}}));
    let w_json = json!({"apiVersion": "example.com/v1alpha1", "kind": "Widget", "metadata": {"name": "w1", "namespace": "ns1"}, "spec": {"size": 3}});
    check(
        widgets().create(&pp(), &w),
        "POST",
        "/apis/example.com/v1alpha1/namespaces/ns1/widgets",
        SEND_JSON,
        Some(w_json.clone()),
    );
    check(
        widgets().replace("w1", &pp(), &w),
        "PUT",
        "/apis/example.com/v1alpha1/namespaces/ns1/widgets/w1",
        SEND_JSON,
        Some(w_json),
    );
    let g = DynamicObject::new("g1", &gadget());
    check(
        gadgets().create(&dry, &g),
        "POST",
        "/apis/example.com/v1/gadgets?dryRun=All",
        SEND_JSON,
        Some(json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g1"}})),
    );
    // Rejections: the field manager, names, the namespace.
    let bad = |m: &str| PostParams { field_manager: Some(m.into()), ..pp() };
    fails_param(configmaps().create(&bad(""), &cm), "fieldManager");
    fails_param(configmaps().create(&bad(&"m".repeat(129)), &cm), "fieldManager");
    fails_param(configmaps().create(&bad("a\nb"), &cm), "fieldManager");
    fails_param(configmaps().replace("cm1", &bad("\u{7f}"), &cm), "fieldManager");
    fails(configmaps().replace("", &pp(), &cm), empty("name"));
    fails_name(configmaps().replace("a/b", &pp(), &cm), "name", "a/b");
    fails(Request::namespaced::<ConfigMap>("").create(&pp(), &cm), empty("namespace"));
    fails_name(Request::namespaced::<ConfigMap>("..").create(&pp(), &cm), "namespace", "..");
    fails(Request::dynamic(&widget(), Some("")).create(&pp(), &w_body()), empty("namespace"));
}

fn w_body() -> Value {
    json!({"apiVersion": "example.com/v1alpha1", "kind": "Widget", "metadata": {"name": "w"}})
}

#[test]
fn bodies_that_do_not_serialize() {
    use std::collections::BTreeMap;
    // A map with non-string keys has no JSON form.
    let mut bad: BTreeMap<(u8, u8), u8> = BTreeMap::new();
    bad.insert((1, 2), 3);
    assert!(matches!(configmaps().create(&pp(), &bad), Err(RequestError::SerializeBody(_))));
    assert!(matches!(configmaps().replace("x", &pp(), &bad), Err(RequestError::SerializeBody(_))));
    assert!(matches!(
        configmaps().patch("x", &PatchParams::default(), &Patch::Merge(&bad)),
        Err(RequestError::SerializeBody(_))
    ));
}

// ---- PATCH ----

#[test]
fn patch_every_kind_and_parameter() {
    const P: &str = "/api/v1/namespaces/kube-system/configmaps/cm1";
    let cm = cm_json("cm1");
    let ops = json!([{"op": "replace", "path": "/data/a", "value": "10"}, {"op": "remove", "path": "/data/e"}]);
    let merge = json!({"data": {"a": null, "b": "ü"}});
    let patch = |pp: PatchParams, p: &Patch<&Value>| configmaps().patch("cm1", &pp, p);
    let none = PatchParams::default;
    // Each kind of patch has its own Content-Type; the body is sent as given.
    check(
        patch(PatchParams::apply("ctl"), &Patch::Apply(&cm)),
        "PATCH",
        &format!("{P}?fieldManager=ctl"),
        APPLY,
        Some(cm.clone()),
    );
    check(patch(none(), &Patch::Json(&ops)), "PATCH", P, JSON_PATCH, Some(ops.clone()));
    check(patch(none(), &Patch::Merge(&merge)), "PATCH", P, MERGE, Some(merge.clone()));
    check(patch(none(), &Patch::Strategic(&merge)), "PATCH", P, STRATEGIC, Some(merge.clone()));
    // Apply with force, dryRun and fieldValidation; the order is dryRun, force, fieldManager,
    // fieldValidation.
    check(
        patch(PatchParams::apply("ctl").force(), &Patch::Apply(&cm)),
        "PATCH",
        &format!("{P}?force=true&fieldManager=ctl"),
        APPLY,
        Some(cm.clone()),
    );
    check(
        patch(PatchParams::apply("ctl").dry_run(), &Patch::Apply(&cm)),
        "PATCH",
        &format!("{P}?dryRun=All&fieldManager=ctl"),
        APPLY,
        Some(cm.clone()),
    );
    check(
        patch(PatchParams::apply("ctl").validation(ValidationDirective::Strict), &Patch::Apply(&cm)),
        "PATCH",
        &format!("{P}?fieldManager=ctl&fieldValidation=Strict"),
        APPLY,
        Some(cm.clone()),
    );
    check(
        patch(PatchParams::apply("ctl").force().dry_run().validation(ValidationDirective::Ignore), &Patch::Apply(&cm)),
        "PATCH",
        &format!("{P}?dryRun=All&force=true&fieldManager=ctl&fieldValidation=Ignore"),
        APPLY,
        Some(cm.clone()),
    );
    // The other kinds take dryRun, fieldManager and fieldValidation too.
    check(
        patch(none().dry_run(), &Patch::Json(&ops)),
        "PATCH",
        &format!("{P}?dryRun=All"),
        JSON_PATCH,
        Some(ops.clone()),
    );
    check(
        patch(PatchParams::apply("ctl"), &Patch::Merge(&merge)),
        "PATCH",
        &format!("{P}?fieldManager=ctl"),
        MERGE,
        Some(merge.clone()),
    );
    check(
        patch(none().validation(ValidationDirective::Warn), &Patch::Strategic(&merge)),
        "PATCH",
        &format!("{P}?fieldValidation=Warn"),
        STRATEGIC,
        Some(merge.clone()),
    );
    check(
        patch(PatchParams::apply("a b").dry_run().validation(ValidationDirective::Strict), &Patch::Json(&ops)),
        "PATCH",
        &format!("{P}?dryRun=All&fieldManager=a+b&fieldValidation=Strict"),
        JSON_PATCH,
        Some(ops.clone()),
    );
    // An empty JSON patch is still an array.
    check(patch(none(), &Patch::Json(&json!([]))), "PATCH", P, JSON_PATCH, Some(json!([])));
    // Typed patch bodies, and every scope.
    let p = pod("web-0");
    check(
        pods().patch("web-0", &PatchParams::apply("ctl"), &Patch::Apply(&p)),
        "PATCH",
        "/api/v1/namespaces/default/pods/web-0?fieldManager=ctl",
        APPLY,
        Some(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-0"}})),
    );
    let labels = json!({"metadata": {"labels": {"zone": "b"}}});
    check(
        nodes().patch("n1", &PatchParams::default(), &Patch::Strategic(&labels)),
        "PATCH",
        "/api/v1/nodes/n1",
        STRATEGIC,
        Some(labels.clone()),
    );
    check(
        namespaces().patch("team-a", &PatchParams::default(), &Patch::Merge(&labels)),
        "PATCH",
        "/api/v1/namespaces/team-a",
        MERGE,
        Some(labels.clone()),
    );
    let replicas = json!({"spec": {"replicas": 3}});
    check(
        deployments().patch("web", &PatchParams::apply("scaler").force(), &Patch::Apply(&replicas)),
        "PATCH",
        "/apis/apps/v1/namespaces/apps/deployments/web?force=true&fieldManager=scaler",
        APPLY,
        Some(replicas.clone()),
    );
    check(
        widgets().patch("w1", &PatchParams::default(), &Patch::Merge(&replicas)),
        "PATCH",
        "/apis/example.com/v1alpha1/namespaces/ns1/widgets/w1",
        MERGE,
        Some(replicas.clone()),
    );
    check(
        gadgets().patch("g1", &PatchParams::apply("ctl"), &Patch::Apply(&w_body())),
        "PATCH",
        "/apis/example.com/v1/gadgets/g1?fieldManager=ctl",
        APPLY,
        Some(w_body()),
    );
    // Accessors of Patch.
    assert_eq!(Patch::Apply(()).content_type(), "application/apply-patch+yaml");
    assert_eq!(Patch::Json(()).content_type(), "application/json-patch+json");
    assert_eq!(Patch::Merge(()).content_type(), "application/merge-patch+json");
    assert_eq!(Patch::Strategic(()).content_type(), "application/strategic-merge-patch+json");
    assert!(Patch::Apply(1).is_apply() && !Patch::Merge(1).is_apply());
    assert_eq!(*Patch::Strategic(7).body(), 7);
}

#[test]
fn patch_rejections() {
    let cm = cm_json("cm1");
    let patch = |pp: PatchParams, p: &Patch<&Value>| configmaps().patch("cm1", &pp, p);
    // Server-side apply needs a field manager.
    fails(patch(PatchParams::default(), &Patch::Apply(&cm)), RequestError::MissingFieldManager);
    fails(patch(PatchParams::default().dry_run(), &Patch::Apply(&cm)), RequestError::MissingFieldManager);
    fails(patch(PatchParams::default().force(), &Patch::Apply(&cm)), RequestError::MissingFieldManager);
    fails_param(patch(PatchParams::apply(""), &Patch::Apply(&cm)), "fieldManager");
    fails_param(patch(PatchParams::apply(&"x".repeat(129)), &Patch::Apply(&cm)), "fieldManager");
    fails_param(patch(PatchParams::apply("tab\there"), &Patch::Merge(&cm)), "fieldManager");
    // force is for apply only.
    fails(patch(PatchParams::default().force(), &Patch::Merge(&cm)), RequestError::ForceWithoutApply);
    fails(patch(PatchParams::apply("ctl").force(), &Patch::Json(&json!([]))), RequestError::ForceWithoutApply);
    fails(patch(PatchParams::apply("ctl").force(), &Patch::Strategic(&cm)), RequestError::ForceWithoutApply);
    // A JSON patch is an array of operations.
    fails_param(patch(PatchParams::default(), &Patch::Json(&json!({"op": "add"}))), "body");
    fails_param(patch(PatchParams::default(), &Patch::Json(&json!("[]"))), "body");
    fails_param(patch(PatchParams::default(), &Patch::Json(&Value::Null)), "body");
    fails_param(patch(PatchParams::default(), &Patch::Json(&json!(1))), "body");
    // Names and namespaces.
    fails(configmaps().patch("", &PatchParams::default(), &Patch::Merge(&cm)), empty("name"));
    fails_name(configmaps().patch("..", &PatchParams::default(), &Patch::Merge(&cm)), "name", "..");
    fails(
        Request::namespaced::<ConfigMap>("").patch("x", &PatchParams::default(), &Patch::Merge(&cm)),
        empty("namespace"),
    );
    // The parameters are checked before the name.
    fails(configmaps().patch("", &PatchParams::default(), &Patch::Apply(&cm)), RequestError::MissingFieldManager);
}

// ---- DELETE and DELETECOLLECTION ----

#[test]
fn delete_with_every_option() {
    const P: &str = "/api/v1/namespaces/default/pods/web-0";
    let del = |d: DeleteParams| pods().delete("web-0", &d);
    let opts = |extra: Value| {
        let mut v = json!({"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions"});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    // No options: no body and no Content-Type.
    check(del(dp()), "DELETE", P, JSON, None);
    assert!(dp().is_default() && !DeleteParams::background().is_default());
    check(
        del(DeleteParams::background()),
        "DELETE",
        P,
        SEND_JSON,
        Some(opts(json!({"propagationPolicy": "Background"}))),
    );
    check(
        del(DeleteParams::foreground()),
        "DELETE",
        P,
        SEND_JSON,
        Some(opts(json!({"propagationPolicy": "Foreground"}))),
    );
    check(del(DeleteParams::orphan()), "DELETE", P, SEND_JSON, Some(opts(json!({"propagationPolicy": "Orphan"}))));
    check(del(dp().dry_run()), "DELETE", P, SEND_JSON, Some(opts(json!({"dryRun": ["All"]}))));
    check(del(dp().grace_period(0)), "DELETE", P, SEND_JSON, Some(opts(json!({"gracePeriodSeconds": 0}))));
    check(del(dp().grace_period(30)), "DELETE", P, SEND_JSON, Some(opts(json!({"gracePeriodSeconds": 30}))));
    check(
        del(dp().precondition_resource_version("628")),
        "DELETE",
        P,
        SEND_JSON,
        Some(opts(json!({"preconditions": {"resourceVersion": "628"}}))),
    );
    check(
        del(dp().precondition_uid("bb5c-1")),
        "DELETE",
        P,
        SEND_JSON,
        Some(opts(json!({"preconditions": {"uid": "bb5c-1"}}))),
    );
    check(
        del(dp().precondition_uid("u").precondition_resource_version("1")),
        "DELETE",
        P,
        SEND_JSON,
        Some(opts(json!({"preconditions": {"uid": "u", "resourceVersion": "1"}}))),
    );
    check(
        del(DeleteParams::foreground().dry_run().grace_period(5).precondition_uid("u")),
        "DELETE",
        P,
        SEND_JSON,
        Some(opts(
            json!({"propagationPolicy": "Foreground", "dryRun": ["All"], "gracePeriodSeconds": 5, "preconditions": {"uid": "u"}}),
        )),
    );
    // Empty preconditions still make a body (the caller asked for them).
    let empty_pre = DeleteParams { preconditions: Some(Default::default()), ..dp() };
    check(del(empty_pre), "DELETE", P, SEND_JSON, Some(opts(json!({"preconditions": {}}))));
    let by_field =
        DeleteParams { propagation_policy: Some(PropagationPolicy::Orphan), grace_period_seconds: Some(1), ..dp() };
    check(
        del(by_field),
        "DELETE",
        P,
        SEND_JSON,
        Some(opts(json!({"propagationPolicy": "Orphan", "gracePeriodSeconds": 1}))),
    );
    // Every scope.
    check(namespaces().delete("team-a", &dp()), "DELETE", "/api/v1/namespaces/team-a", JSON, None);
    check(
        nodes().delete("n1", &dp().grace_period(0)),
        "DELETE",
        "/api/v1/nodes/n1",
        SEND_JSON,
        Some(opts(json!({"gracePeriodSeconds": 0}))),
    );
    check(
        deployments().delete("web", &DeleteParams::orphan()),
        "DELETE",
        "/apis/apps/v1/namespaces/apps/deployments/web",
        SEND_JSON,
        Some(opts(json!({"propagationPolicy": "Orphan"}))),
    );
    check(configmaps().delete("cm1", &dp()), "DELETE", "/api/v1/namespaces/kube-system/configmaps/cm1", JSON, None);
    check(widgets().delete("w1", &dp()), "DELETE", "/apis/example.com/v1alpha1/namespaces/ns1/widgets/w1", JSON, None);
    check(
        gadgets().delete("g1", &DeleteParams::background()),
        "DELETE",
        "/apis/example.com/v1/gadgets/g1",
        SEND_JSON,
        Some(opts(json!({"propagationPolicy": "Background"}))),
    );
    // Rejections.
    fails(pods().delete("", &dp()), empty("name"));
    fails_name(pods().delete("a/b", &DeleteParams::background()), "name", "a/b");
    fails(Request::namespaced::<Pod>("").delete("p", &dp()), empty("namespace"));
}

#[test]
fn delete_collection() {
    const P: &str = "/api/v1/namespaces/kube-system/configmaps";
    let dc = |d: DeleteParams, l: ListParams| configmaps().delete_collection(&d, &l);
    let bg = json!({"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions", "propagationPolicy": "Background"});
    check(dc(dp(), lp()), "DELETE", P, JSON, None);
    check(dc(dp(), lp().labels("batch=x")), "DELETE", &format!("{P}?labelSelector=batch%3Dx"), JSON, None);
    check(
        dc(dp(), lp().fields("metadata.name!=keep")),
        "DELETE",
        &format!("{P}?fieldSelector=metadata.name%21%3Dkeep"),
        JSON,
        None,
    );
    check(dc(DeleteParams::background(), lp()), "DELETE", P, SEND_JSON, Some(bg.clone()));
    check(
        dc(DeleteParams::background(), lp().labels("app in (a, b)").fields("metadata.name!=x")),
        "DELETE",
        &format!("{P}?labelSelector=app+in+%28a%2C+b%29&fieldSelector=metadata.name%21%3Dx"),
        SEND_JSON,
        Some(bg.clone()),
    );
    check(
        dc(dp().dry_run().grace_period(0), lp().labels("tmp").timeout(10).limit(100)),
        "DELETE",
        &format!("{P}?labelSelector=tmp&timeoutSeconds=10&limit=100"),
        SEND_JSON,
        Some(
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions", "dryRun": ["All"], "gracePeriodSeconds": 0}),
        ),
    );
    check(
        Request::all::<Node>().delete_collection(&dp(), &lp().labels("temp")),
        "DELETE",
        "/api/v1/nodes?labelSelector=temp",
        JSON,
        None,
    );
    check(
        widgets().delete_collection(&DeleteParams::background(), &lp()),
        "DELETE",
        "/apis/example.com/v1alpha1/namespaces/ns1/widgets",
        SEND_JSON,
        Some(bg.clone()),
    );
    check(
        deployments().delete_collection(&dp(), &lp().match_any()),
        "DELETE",
        "/apis/apps/v1/namespaces/apps/deployments?resourceVersion=0&resourceVersionMatch=NotOlderThan",
        JSON,
        None,
    );
    // Rejections: the list parameters are validated as for a LIST.
    fails_selector(dc(dp(), lp().labels("app in web")), "label", "app in web");
    fails_selector(dc(DeleteParams::background(), lp().fields("metadata.name")), "field", "metadata.name");
    fails(
        dc(dp(), ListParams { version_match: Some(VersionMatch::Exact), ..lp() }),
        RequestError::VersionMatchWithoutVersion,
    );
    fails(Request::namespaced::<ConfigMap>("").delete_collection(&dp(), &lp()), empty("namespace"));
}

// ---- Subresources ----

#[test]
fn status_scale_and_other_subresources() {
    let pp_dry = PostParams { dry_run: true, ..pp() };
    let status = json!({"status": {"phase": "Running"}});
    // status
    get(pods().get_subresource("status", "web-0"), "/api/v1/namespaces/default/pods/web-0/status");
    check(
        pods().replace_subresource("status", "web-0", &pp(), &status),
        "PUT",
        "/api/v1/namespaces/default/pods/web-0/status",
        SEND_JSON,
        Some(status.clone()),
    );
    check(
        pods().replace_subresource("status", "web-0", &pp_dry, &status),
        "PUT",
        "/api/v1/namespaces/default/pods/web-0/status?dryRun=All",
        SEND_JSON,
        Some(status.clone()),
    );
    check(
        pods().patch_subresource("status", "web-0", &PatchParams::default(), &Patch::Merge(&status)),
        "PATCH",
        "/api/v1/namespaces/default/pods/web-0/status",
        MERGE,
        Some(status.clone()),
    );
    check(
        pods().patch_subresource("status", "web-0", &PatchParams::apply("kubelet").force(), &Patch::Apply(&status)),
        "PATCH",
        "/api/v1/namespaces/default/pods/web-0/status?force=true&fieldManager=kubelet",
        APPLY,
        Some(status.clone()),
    );
    check(
        deployments().patch_subresource("status", "web", &PatchParams::default().dry_run(), &Patch::Strategic(&status)),
        "PATCH",
        "/apis/apps/v1/namespaces/apps/deployments/web/status?dryRun=All",
        STRATEGIC,
        Some(status.clone()),
    );
    get(nodes().get_subresource("status", "n1"), "/api/v1/nodes/n1/status");
    check(
        nodes().patch_subresource(
            "status",
            "n1",
            &PatchParams::default(),
            &Patch::Json(&json!([{"op": "add", "path": "/status/x", "value": 1}])),
        ),
        "PATCH",
        "/api/v1/nodes/n1/status",
        JSON_PATCH,
        Some(json!([{"op": "add", "path": "/status/x", "value": 1}])),
    );
    get(namespaces().get_subresource("status", "team-a"), "/api/v1/namespaces/team-a/status");
    // scale
    let scale = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "namespace": "apps", "resourceVersion": "706"}, "spec": {"replicas": 1}});
    get(deployments().get_subresource("scale", "web"), "/apis/apps/v1/namespaces/apps/deployments/web/scale");
    check(
        deployments().replace_subresource("scale", "web", &pp(), &scale),
        "PUT",
        "/apis/apps/v1/namespaces/apps/deployments/web/scale",
        SEND_JSON,
        Some(scale.clone()),
    );
    let fv =
        PostParams { field_validation: Some(ValidationDirective::Strict), field_manager: Some("hpa".into()), ..pp() };
    check(
        deployments().replace_subresource("scale", "web", &fv, &scale),
        "PUT",
        "/apis/apps/v1/namespaces/apps/deployments/web/scale?fieldManager=hpa&fieldValidation=Strict",
        SEND_JSON,
        Some(scale.clone()),
    );
    let replicas = json!({"spec": {"replicas": 3}});
    check(
        deployments().patch_subresource("scale", "web", &PatchParams::default(), &Patch::Merge(&replicas)),
        "PATCH",
        "/apis/apps/v1/namespaces/apps/deployments/web/scale",
        MERGE,
        Some(replicas.clone()),
    );
    check(
        deployments().patch_subresource("scale", "web", &PatchParams::apply("hpa").force(), &Patch::Apply(&replicas)),
        "PATCH",
        "/apis/apps/v1/namespaces/apps/deployments/web/scale?force=true&fieldManager=hpa",
        APPLY,
        Some(replicas.clone()),
    );
    get(widgets().get_subresource("scale", "w1"), "/apis/example.com/v1alpha1/namespaces/ns1/widgets/w1/scale");
    check(
        widgets().patch_subresource("status", "w1", &PatchParams::default(), &Patch::Merge(&status)),
        "PATCH",
        "/apis/example.com/v1alpha1/namespaces/ns1/widgets/w1/status",
        MERGE,
        Some(status.clone()),
    );
    check(
        gadgets().replace_subresource("status", "g1", &pp(), &status),
        "PUT",
        "/apis/example.com/v1/gadgets/g1/status",
        SEND_JSON,
        Some(status.clone()),
    );
    // ephemeralcontainers
    let eph = json!({"spec": {"ephemeralContainers": [{"name": "debugger", "image": "busybox", "stdin": true, "tty": true}]}});
    get(
        pods().get_subresource("ephemeralcontainers", "web-0"),
        "/api/v1/namespaces/default/pods/web-0/ephemeralcontainers",
    );
    check(
        pods().patch_subresource("ephemeralcontainers", "web-0", &PatchParams::default(), &Patch::Strategic(&eph)),
        "PATCH",
        "/api/v1/namespaces/default/pods/web-0/ephemeralcontainers",
        STRATEGIC,
        Some(eph.clone()),
    );
    check(
        pods().replace_subresource("ephemeralcontainers", "web-0", &pp(), &eph),
        "PUT",
        "/api/v1/namespaces/default/pods/web-0/ephemeralcontainers",
        SEND_JSON,
        Some(eph.clone()),
    );
    // POST subresources: binding, token; PUT finalize.
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "web-0"}, "target": {"kind": "Node", "name": "n1"}});
    check(
        pods().create_subresource("binding", "web-0", &pp(), &binding),
        "POST",
        "/api/v1/namespaces/default/pods/web-0/binding",
        SEND_JSON,
        Some(binding.clone()),
    );
    let token =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}});
    let sa = Request::namespaced::<k8s_openapi::api::core::v1::ServiceAccount>("default");
    check(
        sa.create_subresource("token", "builder", &pp_dry, &token),
        "POST",
        "/api/v1/namespaces/default/serviceaccounts/builder/token?dryRun=All",
        SEND_JSON,
        Some(token.clone()),
    );
    let fin =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}, "spec": {"finalizers": []}});
    check(
        namespaces().replace_subresource("finalize", "team-a", &pp(), &fin),
        "PUT",
        "/api/v1/namespaces/team-a/finalize",
        SEND_JSON,
        Some(fin.clone()),
    );
    // Rejections.
    fails(pods().get_subresource("", "web-0"), empty("subresource"));
    fails_name(pods().get_subresource("status/x", "web-0"), "subresource", "status/x");
    fails_name(pods().get_subresource("..", "web-0"), "subresource", "..");
    fails(pods().get_subresource("status", ""), empty("name"));
    fails_name(pods().replace_subresource("status", "a/b", &pp(), &status), "name", "a/b");
    fails(
        pods().patch_subresource("status", "p", &PatchParams::default(), &Patch::Apply(&status)),
        RequestError::MissingFieldManager,
    );
    fails(
        pods().patch_subresource("status", "p", &PatchParams::default().force(), &Patch::Merge(&status)),
        RequestError::ForceWithoutApply,
    );
    fails_param(pods().patch_subresource("status", "p", &PatchParams::default(), &Patch::Json(&status)), "body");
    fails_param(
        pods().replace_subresource("scale", "p", &PostParams { field_manager: Some(String::new()), ..pp() }, &scale),
        "fieldManager",
    );
    fails_param(
        pods().create_subresource("binding", "p", &PostParams { field_manager: Some(String::new()), ..pp() }, &binding),
        "fieldManager",
    );
    fails(Request::namespaced::<Pod>("").get_subresource("status", "p"), empty("namespace"));
}

// ---- Logs ----

#[test]
fn logs_every_parameter() {
    const P: &str = "/api/v1/namespaces/default/pods/web-0/log";
    let log = |l: LogParams| pods().logs("web-0", &l);
    let text = |built: Built, uri: &str| check(built, "GET", uri, ANY, None);
    let t = |s: &str| s.parse::<Timestamp>().unwrap();
    text(log(logp()), P);
    text(log(LogParams { container: Some("sidecar".into()), ..logp() }), &format!("{P}?container=sidecar"));
    text(log(LogParams { follow: true, ..logp() }), &format!("{P}?follow=true"));
    text(log(LogParams { limit_bytes: Some(1024), ..logp() }), &format!("{P}?limitBytes=1024"));
    text(log(LogParams { pretty: true, ..logp() }), &format!("{P}?pretty=true"));
    text(log(LogParams { previous: true, ..logp() }), &format!("{P}?previous=true"));
    text(log(LogParams { since_seconds: Some(3600), ..logp() }), &format!("{P}?sinceSeconds=3600"));
    text(log(LogParams { tail_lines: Some(10), ..logp() }), &format!("{P}?tailLines=10"));
    text(log(LogParams { tail_lines: Some(0), ..logp() }), &format!("{P}?tailLines=0"));
    text(log(LogParams { timestamps: true, ..logp() }), &format!("{P}?timestamps=true"));
    // sinceTime is RFC 3339 in UTC with a 'Z', ':' escaped; sub-second digits only when present.
    text(
        log(LogParams { since_time: Some(t("2024-01-02T03:04:05Z")), ..logp() }),
        &format!("{P}?sinceTime=2024-01-02T03%3A04%3A05Z"),
    );
    text(
        log(LogParams { since_time: Some(t("2024-01-02T05:04:05+02:00")), ..logp() }),
        &format!("{P}?sinceTime=2024-01-02T03%3A04%3A05Z"),
    );
    text(
        log(LogParams { since_time: Some(t("2024-01-02T03:04:05.5Z")), ..logp() }),
        &format!("{P}?sinceTime=2024-01-02T03%3A04%3A05.5Z"),
    );
    text(
        log(LogParams { since_time: Some(t("2024-01-02T03:04:05.123456789Z")), ..logp() }),
        &format!("{P}?sinceTime=2024-01-02T03%3A04%3A05.123456789Z"),
    );
    text(
        log(LogParams { since_time: Some(Timestamp::UNIX_EPOCH), ..logp() }),
        &format!("{P}?sinceTime=1970-01-01T00%3A00%3A00Z"),
    );
    // Everything at once (sinceTime rather than sinceSeconds), in the order container, follow,
    // limitBytes, pretty, previous, sinceSeconds/sinceTime, tailLines, timestamps.
    let all = LogParams {
        container: Some("app".into()),
        follow: true,
        limit_bytes: Some(1),
        pretty: true,
        previous: true,
        since_seconds: None,
        since_time: Some(t("2026-11-25T23:08:56Z")),
        tail_lines: Some(100),
        timestamps: true,
    };
    text(
        log(all.clone()),
        &format!(
            "{P}?container=app&follow=true&limitBytes=1&pretty=true&previous=true&sinceTime=2026-11-25T23%3A08%3A56Z&tailLines=100&timestamps=true"
        ),
    );
    let secs = LogParams { since_time: None, since_seconds: Some(60), ..all.clone() };
    text(
        log(secs),
        &format!(
            "{P}?container=app&follow=true&limitBytes=1&pretty=true&previous=true&sinceSeconds=60&tailLines=100&timestamps=true"
        ),
    );
    text(
        log(LogParams { follow: true, tail_lines: Some(10), timestamps: true, ..logp() }),
        &format!("{P}?follow=true&tailLines=10&timestamps=true"),
    );
    // A container name is a query value.
    text(log(LogParams { container: Some("a b/ü".into()), ..logp() }), &format!("{P}?container=a+b%2F%C3%BC"));
    // Rejections.
    fails_param(
        log(LogParams { since_seconds: Some(1), since_time: Some(Timestamp::UNIX_EPOCH), ..logp() }),
        "sinceSeconds",
    );
    fails_param(log(LogParams { since_seconds: Some(0), ..logp() }), "sinceSeconds");
    fails_param(log(LogParams { limit_bytes: Some(0), ..logp() }), "limitBytes");
    fails(pods().logs("", &logp()), empty("name"));
    fails_name(pods().logs("a%b", &logp()), "name", "a%b");
    assert_eq!(pods().logs("a?b", &logp()).expect("logs").uri(), "/api/v1/namespaces/default/pods/a%3Fb/log");
    fails(Request::namespaced::<Pod>("").logs("p", &logp()), empty("namespace"));
}

// ---- Eviction ----

#[test]
fn eviction() {
    const P: &str = "/api/v1/namespaces/default/pods/web-0/eviction";
    let evict = |e: EvictParams| pods().evict("web-0", &e);
    let body = |extra: Option<Value>| {
        let mut v = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "web-0", "namespace": "default"}});
        if let Some(d) = extra {
            v["deleteOptions"] = d;
        }
        v
    };
    let opts = |extra: Value| {
        let mut v = json!({"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions"});
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    };
    check(evict(EvictParams::default()), "POST", P, SEND_JSON, Some(body(None)));
    let with = |d: DeleteParams| EvictParams { delete_options: Some(d), ..EvictParams::default() };
    check(evict(with(dp())), "POST", P, SEND_JSON, Some(body(Some(opts(json!({}))))));
    check(
        evict(with(dp().grace_period(0))),
        "POST",
        P,
        SEND_JSON,
        Some(body(Some(opts(json!({"gracePeriodSeconds": 0}))))),
    );
    check(evict(with(dp().dry_run())), "POST", P, SEND_JSON, Some(body(Some(opts(json!({"dryRun": ["All"]}))))));
    check(
        evict(with(DeleteParams::background().precondition_uid("u1").precondition_resource_version("9"))),
        "POST",
        P,
        SEND_JSON,
        Some(body(Some(opts(
            json!({"propagationPolicy": "Background", "preconditions": {"uid": "u1", "resourceVersion": "9"}}),
        )))),
    );
    // The create's own options go in the query.
    let dry = EvictParams { post_options: PostParams { dry_run: true, ..pp() }, ..EvictParams::default() };
    check(evict(dry), "POST", &format!("{P}?dryRun=All"), SEND_JSON, Some(body(None)));
    let both = EvictParams {
        delete_options: Some(dp().dry_run()),
        post_options: PostParams { dry_run: true, field_manager: Some("drainer".into()), ..pp() },
    };
    check(
        evict(both),
        "POST",
        &format!("{P}?dryRun=All&fieldManager=drainer"),
        SEND_JSON,
        Some(body(Some(opts(json!({"dryRun": ["All"]}))))),
    );
    // The namespace comes from the request.
    check(
        Request::namespaced::<Pod>("kube-system").evict("coredns-1", &EvictParams::default()),
        "POST",
        "/api/v1/namespaces/kube-system/pods/coredns-1/eviction",
        SEND_JSON,
        Some(
            json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "coredns-1", "namespace": "kube-system"}}),
        ),
    );
    // Rejections.
    fails(pods().evict("", &EvictParams::default()), empty("name"));
    fails_name(pods().evict("a/b", &EvictParams::default()), "name", "a/b");
    fails(Request::namespaced::<Pod>("").evict("p", &EvictParams::default()), empty("namespace"));
    let bad_fm = EvictParams {
        post_options: PostParams { field_manager: Some(String::new()), ..pp() },
        ..EvictParams::default()
    };
    fails_param(pods().evict("p", &bad_fm), "fieldManager");
}

// ---- exec, attach, portforward ----

#[test]
fn exec_attach_portforward() {
    const P: &str = "/api/v1/namespaces/default/pods/web-0";
    let ws = |built: Built, uri: &str| check(built, "GET", uri, WS_EXEC, None);
    // exec: one `command` per argument, then container, stdin, stdout, stderr, tty.
    ws(pods().exec("web-0", ["ls"], &ap()), &format!("{P}/exec?command=ls&stdout=true&stderr=true"));
    ws(
        pods().exec("web-0", ["sh", "-c", "echo hi && ls /tmp"], &ap().container("app")),
        &format!(
            "{P}/exec?command=sh&command=-c&command=echo+hi+%26%26+ls+%2Ftmp&container=app&stdout=true&stderr=true"
        ),
    );
    ws(
        pods().exec("web-0", vec![String::from("bash")], &AttachParams::interactive_tty()),
        &format!("{P}/exec?command=bash&stdin=true&stdout=true&tty=true"),
    );
    ws(
        pods().exec("web-0", ["cat"], &ap().stdin(true).stdout(false).stderr(false)),
        &format!("{P}/exec?command=cat&stdin=true"),
    );
    ws(
        pods().exec("web-0", ["cat"], &ap().stdin(true)),
        &format!("{P}/exec?command=cat&stdin=true&stdout=true&stderr=true"),
    );
    ws(pods().exec("web-0", ["x"], &ap().stdout(false)), &format!("{P}/exec?command=x&stderr=true"));
    ws(pods().exec("web-0", ["x"], &ap().stderr(false)), &format!("{P}/exec?command=x&stdout=true"));
    ws(pods().exec("web-0", ["x"], &ap().stderr(false).tty(true)), &format!("{P}/exec?command=x&stdout=true&tty=true"));
    ws(
        pods().exec("web-0", ["echo", "ü ✓", "", "a=b&c"], &ap().container("c-1")),
        &format!(
            "{P}/exec?command=echo&command=%C3%BC+%E2%9C%93&command=&command=a%3Db%26c&container=c-1&stdout=true&stderr=true"
        ),
    );
    assert_eq!(
        query_values(&pods().exec("p", ["sh", "-c", "a && b | c > /d"], &ap()), "command"),
        ["sh", "-c", "a && b | c > /d"]
    );
    // attach: the same options, no command.
    ws(pods().attach("web-0", &ap()), &format!("{P}/attach?stdout=true&stderr=true"));
    ws(
        pods().attach("web-0", &AttachParams::interactive_tty().container("shell")),
        &format!("{P}/attach?container=shell&stdin=true&stdout=true&tty=true"),
    );
    ws(pods().attach("web-0", &ap().stdin(true).stderr(false)), &format!("{P}/attach?stdin=true&stdout=true"));
    // portforward: one `ports` per port, and its own subprotocol.
    let pf = |built: Built, uri: &str| check(built, "GET", uri, WS_PORTFORWARD, None);
    pf(pods().portforward("web-0", &[8080]), &format!("{P}/portforward?ports=8080"));
    pf(pods().portforward("web-0", &[80, 443, 65535]), &format!("{P}/portforward?ports=80&ports=443&ports=65535"));
    pf(pods().portforward("web-0", &[1, 1]), &format!("{P}/portforward?ports=1&ports=1"));
    // In another namespace.
    ws(
        Request::namespaced::<Pod>("kube-system").exec("etcd-0", ["etcdctl", "member", "list"], &ap()),
        "/api/v1/namespaces/kube-system/pods/etcd-0/exec?command=etcdctl&command=member&command=list&stdout=true&stderr=true",
    );
    // The transport adds Sec-WebSocket-Key from its own nonce.
    assert_eq!(websocket_key(*b"the sample nonce"), "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(websocket_key([0; 16]), "AAAAAAAAAAAAAAAAAAAAAA==");
    // Rejections.
    fails_param(pods().exec("web-0", Vec::<String>::new(), &ap()), "command");
    fails_param(pods().exec("web-0", ["sh"], &ap().tty(true)), "stderr");
    fails_param(pods().exec("web-0", ["sh"], &ap().stdout(false).stderr(false)), "stdin");
    fails_param(pods().exec("web-0", Vec::<&str>::new(), &ap().stdout(false).stderr(false)), "stdin");
    fails(pods().exec("", ["sh"], &ap()), empty("name"));
    fails_name(pods().exec("..", ["sh"], &ap()), "name", "..");
    fails_param(pods().attach("web-0", &ap().tty(true)), "stderr");
    fails_param(pods().attach("web-0", &ap().stdout(false).stderr(false)), "stdin");
    fails(pods().attach("", &ap()), empty("name"));
    fails_param(pods().portforward("web-0", &[]), "ports");
    fails_param(pods().portforward("web-0", &[0]), "ports");
    fails_param(pods().portforward("web-0", &[80, 0]), "ports");
    fails(pods().portforward("", &[80]), empty("name"));
    fails(Request::namespaced::<Pod>("").portforward("p", &[80]), empty("namespace"));
    fails(Request::namespaced::<Pod>("").exec("p", ["x"], &ap()), empty("namespace"));
}

// ---- Names and namespaces ----

#[test]
fn names_and_namespaces_that_would_change_the_path() {
    let g = GetParams::default;
    // Empty names are refused by every verb that takes one.
    fails(pods().get("", &g()), empty("name"));
    fails(nodes().get("", &g()), empty("name"));
    fails(namespaces().delete("", &dp()), empty("name"));
    fails(widgets().get("", &g()), empty("name"));
    fails(gadgets().replace("", &pp(), &w_body()), empty("name"));
    fails(Request::namespaced::<Pod>("").list(&lp()), empty("namespace"));
    fails(Request::dynamic(&widget(), Some("")).watch(&wp(), ""), empty("namespace"));
    // Exactly what apimachinery's IsValidPathSegmentName refuses: '.', '..', '/' and '%'.
    for bad in ["a/b", "/", "..", ".", "a%2Fb", "%", "a%", "../x", "x/.."] {
        fails_name(pods().get(bad, &g()), "name", bad);
        fails_name(nodes().get(bad, &g()), "name", bad);
        fails_name(deployments().delete(bad, &dp()), "name", bad);
        fails_name(widgets().get(bad, &g()), "name", bad);
        fails_name(Request::namespaced::<Pod>(bad).list(&lp()), "namespace", bad);
        fails_name(Request::dynamic(&widget(), Some(bad)).get("w", &g()), "namespace", bad);
    }
    // Names that merely contain dots are fine.
    get(pods().get("...", &g()), "/api/v1/namespaces/default/pods/...");
    get(pods().get("a..b", &g()), "/api/v1/namespaces/default/pods/a..b");
    get(pods().get(".hidden", &g()), "/api/v1/namespaces/default/pods/.hidden");
    // The namespace is checked before the name.
    fails(Request::namespaced::<Pod>("").get("", &g()), empty("namespace"));
    fails_name(Request::namespaced::<Pod>("a/b").get("c/d", &g()), "namespace", "a/b");
    // A cluster-scoped dynamic kind ignores the namespace, even an invalid one.
    get(Request::dynamic(&gadget(), Some("")).get("g", &g()), "/apis/example.com/v1/gadgets/g");
    // RFC 3986 sub-delimiters, ':' and '@' may stand raw in a path segment and are sent verbatim.
    for ok in ["a!b", "a$b", "a&b", "a'b", "a(b)", "a*b", "a,b", "a;b", "a=b", "a:b@c"] {
        get(pods().get(ok, &g()), &format!("/api/v1/namespaces/default/pods/{ok}"));
    }
    // Characters a URI path cannot carry raw are percent-encoded, as client-go does.
    for (raw, sent) in [
        ("café", "caf%C3%A9"),
        ("a\\b", "a%5Cb"),
        ("a^b", "a%5Eb"),
        ("a|b", "a%7Cb"),
        ("a\"b", "a%22b"),
        ("a{b}", "a%7Bb%7D"),
        ("a[b]", "a%5Bb%5D"),
        ("a<b", "a%3Cb"),
        ("a>b", "a%3Eb"),
        ("a`b", "a%60b"),
    ] {
        get(pods().get(raw, &g()), &format!("/api/v1/namespaces/default/pods/{sent}"));
    }
    // An object of a namespaced kind cannot be addressed without its namespace.
    fails(Request::all::<Pod>().get("p", &g()), RequestError::NamespaceRequired);
    fails(Request::all::<Pod>().delete("p", &DeleteParams::default()), RequestError::NamespaceRequired);
}

#[test]
fn path_segment_valid_names_are_percent_encoded_for_every_verb() {
    use k8s_openapi::api::rbac::v1::Role;
    // The API server accepts these names for kinds validated only as path segments (RBAC roles,
    // for one): an object so named must be readable, patchable and deletable too.
    let roles = Request::namespaced::<Role>("default");
    const R: &str = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles";
    for (raw, sent) in [
        ("my role", "my%20role"),
        ("what?", "what%3F"),
        ("a#b", "a%23b"),
        (" ", "%20"),
        ("tab\there", "tab%09here"),
        ("line\nbreak", "line%0Abreak"),
        ("nul\u{0}del\u{7f}", "nul%00del%7F"),
        ("ünï €", "%C3%BCn%C3%AF%20%E2%82%AC"),
        ("日本", "%E6%97%A5%E6%9C%AC"),
        ("a+b", "a+b"),
    ] {
        let at = format!("{R}/{sent}");
        get(roles.get(raw, &GetParams::default()), &at);
        let merge = json!({"metadata": {"labels": {"a": "b"}}});
        let built = roles.patch(raw, &PatchParams::default(), &Patch::Merge(&merge)).expect("patch");
        assert_eq!((built.method().as_str(), built.uri().path()), ("PATCH", at.as_str()));
        let built = roles.delete(raw, &dp()).expect("delete");
        assert_eq!((built.method().as_str(), built.uri().to_string()), ("DELETE", at.clone()));
        let built = roles.replace(raw, &pp(), &json!({})).expect("replace");
        assert_eq!(built.uri().to_string(), at);
        // The path round-trips to the name the server will see.
        let segment = at.rsplit('/').next().expect("segment");
        let decoded: Vec<u8> = url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned().into_bytes())
            .expect("decoded");
        assert_eq!(decoded, raw.as_bytes(), "{sent}");
    }
    // Names the server refuses as path segments are still refused before sending.
    for bad in [".", "..", "a/b", "100%"] {
        fails_name(roles.get(bad, &GetParams::default()), "name", bad);
    }
}

#[test]
fn namespaces_and_subresources_are_percent_encoded_as_path_segments() {
    let g = GetParams::default;
    get(Request::namespaced::<Pod>("my ns").get("p", &g()), "/api/v1/namespaces/my%20ns/pods/p");
    get(Request::namespaced::<Pod>("a?b#c").list(&lp()), "/api/v1/namespaces/a%3Fb%23c/pods");
    get(
        Request::dynamic(&widget(), Some("ns é")).get("w 1", &g()),
        "/apis/example.com/v1alpha1/namespaces/ns%20%C3%A9/widgets/w%201",
    );
    assert_eq!(<Pod as kube_proto::Resource>::url_path(&(), Some("x y")), "/api/v1/namespaces/x%20y/pods");
    get(pods().get_subresource("my status", "p q"), "/api/v1/namespaces/default/pods/p%20q/my%20status");
    let logs = pods().logs("web 0", &LogParams::default()).expect("logs");
    assert_eq!(logs.uri(), "/api/v1/namespaces/default/pods/web%200/log");
    fails_name(pods().get_subresource("a/b", "p"), "subresource", "a/b");
    fails_name(Request::namespaced::<Pod>("50%").get("p", &g()), "namespace", "50%");
}
