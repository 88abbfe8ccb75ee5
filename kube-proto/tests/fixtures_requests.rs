//! Every request recorded against a real kube-apiserver v1.36 (`tests/fixtures/apiserver-v1.36`)
//! that our builders can express is built again with [`kube_proto::Request`] and compared with
//! what went on the wire: method, path, query (decoded and raw), Content-Type, Accept, the
//! WebSocket headers and the body.
//!
//! The table below has one entry per fixture. Fixtures whose request our builders deliberately
//! cannot make (broken bodies, discovery, wrong content types, ...) are listed in [`NOT_BUILT`]
//! with the reason, and a test checks that every fixture file is in exactly one of the two, so a
//! new fixture cannot be silently ignored.

mod fixture_support;

use std::collections::BTreeMap;

use fixture_support::{Fixture, json_eq, run_check};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, ReplicaSet};
use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec};
use k8s_openapi::api::autoscaling::v1::{Scale, ScaleSpec};
use k8s_openapi::api::core::v1::{
    Binding, ConfigMap, Container, Namespace, Node, ObjectReference, Pod, PodSpec, PodTemplateSpec, Secret,
    ServiceAccount,
};
use k8s_openapi::api::policy::v1::{Eviction, PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceColumnDefinition, CustomResourceDefinition, CustomResourceDefinitionNames,
    CustomResourceDefinitionSpec, CustomResourceDefinitionVersion, CustomResourceSubresourceScale,
    CustomResourceSubresourceStatus, CustomResourceSubresources, CustomResourceValidation, JSON, JSONSchemaProps,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_proto::request::websocket_key;
use kube_proto::{
    ApiResource, AttachParams, DeleteParams, DynamicObject, EvictParams, GetParams, ListParams, LogParams, Patch,
    PatchParams, PostParams, Request, RequestError, ValidationDirective, VersionMatch, WatchParams,
};
use serde_json::{Value, json};

type Built = Result<http::Request<Vec<u8>>, RequestError>;

/// What our builders do with a fixture's request.
enum Expect {
    /// Build it; it must agree with the recorded request.
    Builds(fn() -> Built),
    /// Refuse it before it is sent, with an error the predicate accepts (the server rejected
    /// the recorded request too).
    Refuses(fn() -> Built, fn(&RequestError) -> bool),
}
use Expect::{Builds, Refuses};

/// Fixtures whose request we intentionally do not build, and why.
const NOT_BUILT: &[(&str, &str)] = &[
    ("attach-pod-no-upgrade", "a POST without Upgrade headers; we only build the WebSocket GET"),
    ("auth-no-token-discovery", "GET /api: discovery, not a resource request"),
    ("auth-no-token-readyz", "GET /readyz: a health endpoint, not a resource request"),
    ("create-configmap-body-empty", "deliberately empty body"),
    ("create-configmap-body-not-json", "deliberately non-JSON body"),
    ("create-configmap-duplicate-field-strict", "raw JSON with a duplicate key, which serde cannot produce"),
    ("create-configmap-unsupported-content-type", "deliberately wrong Content-Type text/plain"),
    ("create-configmap-yaml-body", "YAML body (application/yaml); we always send JSON"),
    ("crd-widget-list-as-table", "Accept as=Table; we have no Table builder"),
    ("delete-configmap-orphandependents-false", "deprecated orphanDependents, not in DeleteParams"),
    ("discovery-api", "discovery endpoint"),
    ("discovery-api-aggregated-v2", "discovery endpoint"),
    ("discovery-api-v1", "discovery endpoint"),
    ("discovery-apis", "discovery endpoint"),
    ("discovery-apis-aggregated-v2", "discovery endpoint"),
    ("discovery-apis-aggregated-v2beta1-only", "discovery endpoint"),
    ("discovery-apis-apps", "discovery endpoint"),
    ("discovery-apis-apps-v1", "discovery endpoint"),
    ("exec-pod-get-no-upgrade", "deliberately without the Upgrade headers our exec always sends"),
    ("exec-pod-no-upgrade", "a POST without Upgrade headers; we only build the WebSocket GET"),
    ("exec-pod-websocket-no-node", "WebSocket headers on a POST; a WebSocket handshake is a GET"),
    ("exec-pod-websocket-post", "deliberately a POST instead of the WebSocket GET"),
    ("get-configmap-accept-not-acceptable", "deliberately unacceptable Accept text/plain"),
    ("get-configmap-accept-yaml", "Accept application/yaml; we only ask for JSON"),
    ("get-configmap-metadata-only-bad-as", "deliberately misspelt Accept as=PartialObjectMeta"),
    ("get-configmap-metadata-only-wrong-as", "deliberately wrong Accept: the list form for one object"),
    ("get-unknown-path", "GET /nonsense: not a resource path"),
    ("get-version", "GET /version: not a resource request"),
    ("list-configmaps-as-table", "Accept as=Table; we have no Table builder"),
    ("list-configmaps-metadata-only-wrong-as", "deliberately wrong Accept: the single-object form for a list"),
    ("list-with-sendinitialevents-no-watch", "sendInitialEvents on a plain LIST; ListParams has no such field"),
    ("patch-collection-405", "PATCH on a collection URL; we only patch named objects"),
    ("patch-configmap-merge-invalid-json", "deliberately non-JSON patch body"),
    ("patch-configmap-unsupported-content-type", "deliberately wrong patch Content-Type application/json"),
    ("portforward-pod-no-upgrade", "a POST without Upgrade headers; we only build the WebSocket GET"),
    ("post-to-named-resource-405", "POST to a named-object URL; we create on collections"),
    ("put-collection-405", "PUT on a collection URL; we replace named objects"),
    ("watch-configmaps-metadata-only-list-as", "deliberately wrong Accept (list form) on a watch"),
    ("watch-legacy-path", "the deprecated /api/v1/watch/... path; we use ?watch=true"),
    ("watch-sendinitialevents-false-rvmatch", "explicit sendInitialEvents=false; we send true or nothing"),
    ("watch-streaming-list-no-rvmatch", "sendInitialEvents without resourceVersionMatch; we always pair them"),
];

/// At least this many fixtures are built (or refused) and compared.
const MIN_COVERED: usize = 220;

const NS: &str = "fixtures";
const PAGES: &str = "fixtures-pages";

// ---- Collections ----

fn configmaps() -> Request {
    Request::namespaced::<ConfigMap>(NS)
}
fn pages() -> Request {
    Request::namespaced::<ConfigMap>(PAGES)
}
fn pods() -> Request {
    Request::namespaced::<Pod>(NS)
}
fn deployments() -> Request {
    Request::namespaced::<Deployment>(NS)
}
fn namespaces() -> Request {
    Request::all::<Namespace>()
}
fn crds() -> Request {
    Request::all::<CustomResourceDefinition>()
}
fn widget() -> ApiResource {
    ApiResource::new("example.com", "v1", "Widget", "widgets", true)
}
fn widgets() -> Request {
    Request::dynamic(&widget(), Some(NS))
}
fn gadgets() -> Request {
    Request::dynamic(&ApiResource::new("example.com", "v1", "Gadget", "gadgets", true), Some(NS))
}

// ---- Parameters ----

fn pp() -> PostParams {
    PostParams::default()
}
fn strict() -> PostParams {
    PostParams { field_validation: Some(ValidationDirective::Strict), ..PostParams::default() }
}
fn patch_opts() -> PatchParams {
    PatchParams::default()
}
fn get() -> GetParams {
    GetParams::default()
}
fn lp() -> ListParams {
    ListParams::default()
}
fn rv_only(resource_version: &str) -> ListParams {
    ListParams { resource_version: Some(resource_version.to_owned()), ..ListParams::default() }
}
fn del() -> DeleteParams {
    DeleteParams::default()
}
/// A watch without bookmarks (`WatchParams` turns them on by default).
fn plain_watch() -> WatchParams {
    WatchParams::default().disable_bookmarks()
}
fn streaming() -> WatchParams {
    WatchParams::default().streaming_lists().timeout(3)
}

/// The continue token a recorded response handed out (in a list's or in a 410 Status's
/// `metadata.continue`), which the next recorded request used.
fn continue_from(fixture: &str) -> String {
    let fx = Fixture::load(fixture);
    fx.response_json()["metadata"]["continue"].as_str().unwrap_or_else(|| panic!("{fixture}: no continue")).to_owned()
}

// ---- Objects ----

fn strings(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    (!pairs.is_empty()).then(|| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.to_owned()), ..ObjectMeta::default() }
}

fn labelled(name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta { labels: strings(labels), ..meta(name) }
}

/// A ConfigMap; `data` of `None` leaves the field out, `Some(&[])` sends `data: {}`.
fn cm(metadata: ObjectMeta, data: Option<&[(&str, &str)]>) -> ConfigMap {
    let data = data.map(|d| d.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
    ConfigMap { metadata, data, ..ConfigMap::default() }
}

fn cm1() -> ConfigMap {
    cm(labelled("cm1", &[("app", "web"), ("tier", "front")]), Some(&[("a", "1"), ("b", "2")]))
}

/// The apply configurations of fieldManager `a` on ConfigMap `ssa`.
fn ssa_by_a(key: &str) -> ConfigMap {
    cm(labelled("ssa", &[("owner", "a")]), Some(&[("key", key), ("shared", "from-a")]))
}

/// The apply configuration of fieldManager `b` on ConfigMap `ssa`.
fn ssa_by_b() -> ConfigMap {
    cm(meta("ssa"), Some(&[("shared", "from-b"), ("other", "b")]))
}

/// The whole ConfigMap cm1 as read back (resourceVersion 609), for a conditional PUT.
fn cm1_read_back(c: &str) -> ConfigMap {
    let created = "2026-11-25T23:08:56Z".parse().expect("a timestamp");
    let metadata = ObjectMeta {
        namespace: Some(NS.to_owned()),
        uid: Some("fef4e8d6-0f3d-4c59-ace8-891119e778a6".to_owned()),
        resource_version: Some("609".to_owned()),
        creation_timestamp: Some(Time(created)),
        ..labelled("cm1", &[("app", "web"), ("tier", "front")])
    };
    cm(metadata, Some(&[("a", "1"), ("b", "2"), ("c", c)]))
}

/// A ConfigMap with a field ConfigMap does not have, which only a dynamic object can carry.
fn cm_with_unknown_field(name: &str) -> DynamicObject {
    DynamicObject::new(name, &ApiResource::erase::<ConfigMap>(&())).data(json!({"data": {"a": "1"}, "bogus": 1}))
}

fn web_deployment() -> Deployment {
    let app = || strings(&[("app", "web")]);
    Deployment {
        metadata: labelled("web", &[("app", "web")]),
        spec: DeploymentSpec {
            replicas: Some(2),
            selector: LabelSelector { match_labels: app(), ..LabelSelector::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: app(), ..ObjectMeta::default() }),
                spec: Some(PodSpec { containers: vec![container("nginx", "nginx:1.27")], ..PodSpec::default() }),
            },
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    }
}

fn container(name: &str, image: &str) -> Container {
    Container { name: name.to_owned(), image: Some(image.to_owned()), ..Container::default() }
}

fn scale(metadata: ObjectMeta, replicas: i32) -> Scale {
    Scale { metadata, spec: Some(ScaleSpec { replicas: Some(replicas) }), ..Scale::default() }
}

fn scale_read_back() -> Scale {
    let metadata =
        ObjectMeta { namespace: Some(NS.to_owned()), resource_version: Some("706".to_owned()), ..meta("web") };
    scale(metadata, 1)
}

fn binding() -> Binding {
    Binding {
        metadata: meta("pod-bound"),
        target: ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Node".to_owned()),
            name: Some("fixture-node".to_owned()),
            ..ObjectReference::default()
        },
    }
}

fn widget_obj(name: &str, spec: Value) -> DynamicObject {
    DynamicObject::new(name, &widget()).data(json!({ "spec": spec }))
}

fn gadget_g1() -> DynamicObject {
    DynamicObject::new("g1", &ApiResource::new("example.com", "v1", "Gadget", "gadgets", true))
        .data(json!({"spec": {"size": 1}}))
}

fn schema(type_: &str) -> JSONSchemaProps {
    JSONSchemaProps { type_: Some(type_.to_owned()), ..JSONSchemaProps::default() }
}

fn object_schema(properties: &[(&str, JSONSchemaProps)]) -> JSONSchemaProps {
    let properties = properties.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    JSONSchemaProps { properties: Some(properties), ..schema("object") }
}

fn crd(name: &str, kind: &str, version: CustomResourceDefinitionVersion) -> CustomResourceDefinition {
    let plural = format!("{}s", kind.to_ascii_lowercase());
    CustomResourceDefinition {
        metadata: meta(&format!("{plural}.example.com")),
        spec: CustomResourceDefinitionSpec {
            group: "example.com".to_owned(),
            scope: "Namespaced".to_owned(),
            names: CustomResourceDefinitionNames {
                singular: Some(name.to_owned()),
                kind: kind.to_owned(),
                list_kind: Some(format!("{kind}List")),
                plural,
                ..CustomResourceDefinitionNames::default()
            },
            versions: vec![version],
            ..CustomResourceDefinitionSpec::default()
        },
        ..CustomResourceDefinition::default()
    }
}

fn v1_served(schema: JSONSchemaProps) -> CustomResourceDefinitionVersion {
    CustomResourceDefinitionVersion {
        name: "v1".to_owned(),
        served: true,
        storage: true,
        schema: Some(CustomResourceValidation { open_api_v3_schema: Some(schema) }),
        ..CustomResourceDefinitionVersion::default()
    }
}

fn widget_crd() -> CustomResourceDefinition {
    let spec = object_schema(&[
        ("replicas", JSONSchemaProps { minimum: Some(0.0), ..schema("integer") }),
        (
            "color",
            JSONSchemaProps {
                enum_: Some(["red", "green", "blue"].map(|c| JSON(json!(c))).into()),
                ..schema("string")
            },
        ),
    ]);
    let status =
        object_schema(&[("replicas", schema("integer")), ("selector", schema("string")), ("phase", schema("string"))]);
    let column = |name: &str, type_: &str, path: &str| CustomResourceColumnDefinition {
        name: name.to_owned(),
        type_: type_.to_owned(),
        json_path: path.to_owned(),
        ..CustomResourceColumnDefinition::default()
    };
    let version = CustomResourceDefinitionVersion {
        subresources: Some(CustomResourceSubresources {
            status: Some(CustomResourceSubresourceStatus(json!({}))),
            scale: Some(CustomResourceSubresourceScale {
                spec_replicas_path: ".spec.replicas".to_owned(),
                status_replicas_path: ".status.replicas".to_owned(),
                label_selector_path: Some(".status.selector".to_owned()),
            }),
        }),
        additional_printer_columns: Some(vec![
            column("Color", "string", ".spec.color"),
            column("Replicas", "integer", ".spec.replicas"),
        ]),
        ..v1_served(object_schema(&[("spec", spec), ("status", status)]))
    };
    let mut crd = crd("widget", "Widget", version);
    crd.spec.names.short_names = Some(vec!["wd".to_owned()]);
    crd
}

fn gadget_crd() -> CustomResourceDefinition {
    let schema = JSONSchemaProps { x_kubernetes_preserve_unknown_fields: Some(true), ..schema("object") };
    crd("gadget", "Gadget", v1_served(schema))
}

fn pod_a() -> Pod {
    let c = Container { command: Some(vec!["sleep".to_owned(), "3600".to_owned()]), ..container("c", "busybox:1.36") };
    Pod {
        metadata: labelled("pod-a", &[("app", "demo")]),
        spec: Some(PodSpec { containers: vec![c], ..PodSpec::default() }),
        ..Pod::default()
    }
}

fn eviction_naming(pod: &str) -> Eviction {
    Eviction { metadata: ObjectMeta { namespace: Some(NS.to_owned()), ..meta(pod) }, ..Eviction::default() }
}

// ---- The table ----

fn table() -> Vec<(&'static str, Expect)> {
    vec![
        // Server-side apply. The YAML fixtures are compared by content (see `compare_apply_yaml`).
        (
            "apply-configmap-create",
            Builds(|| configmaps().patch("ssa", &PatchParams::apply("a"), &Patch::Apply(ssa_by_a("value1")))),
        ),
        (
            "apply-configmap-again",
            Builds(|| configmaps().patch("ssa", &PatchParams::apply("a"), &Patch::Apply(ssa_by_a("value2")))),
        ),
        (
            "apply-configmap-noop",
            Builds(|| configmaps().patch("ssa", &PatchParams::apply("a"), &Patch::Apply(ssa_by_a("value2")))),
        ),
        (
            "apply-configmap-conflict",
            Builds(|| configmaps().patch("ssa", &PatchParams::apply("b"), &Patch::Apply(ssa_by_b()))),
        ),
        (
            "apply-configmap-force",
            Builds(|| configmaps().patch("ssa", &PatchParams::apply("b").force(), &Patch::Apply(ssa_by_b()))),
        ),
        (
            "apply-configmap-json-body",
            Builds(|| {
                configmaps().patch(
                    "ssa",
                    &PatchParams::apply("a"),
                    &Patch::Apply(cm(meta("ssa"), Some(&[("key", "json-body")]))),
                )
            }),
        ),
        (
            "apply-configmap-missing-name",
            Builds(|| {
                configmaps().patch(
                    "ssa",
                    &PatchParams::apply("a"),
                    &Patch::Apply(cm(ObjectMeta::default(), Some(&[("key", "v")]))),
                )
            }),
        ),
        (
            "apply-configmap-no-fieldmanager",
            Refuses(
                || configmaps().patch("ssa", &PatchParams::default(), &Patch::Apply(ssa_by_a("value2"))),
                |e| *e == RequestError::MissingFieldManager,
            ),
        ),
        (
            "apply-deployment-scale-conflict",
            Builds(|| {
                deployments().patch_subresource(
                    "scale",
                    "web",
                    &PatchParams::apply("scaler"),
                    &Patch::Apply(scale(meta("web"), 2)),
                )
            }),
        ),
        (
            "apply-deployment-scale-force",
            Builds(|| {
                let pp = PatchParams::apply("scaler").force();
                deployments().patch_subresource("scale", "web", &pp, &Patch::Apply(scale(meta("web"), 2)))
            }),
        ),
        (
            "crd-widget-apply-conflict",
            Builds(|| {
                widgets().patch(
                    "w1",
                    &PatchParams::apply("a"),
                    &Patch::Apply(widget_obj("w1", json!({"color": "blue"}))),
                )
            }),
        ),
        (
            "crd-widget-apply-force",
            Builds(|| {
                widgets().patch(
                    "w1",
                    &PatchParams::apply("a").force(),
                    &Patch::Apply(widget_obj("w1", json!({"color": "blue"}))),
                )
            }),
        ),
        // Authentication and authorization: the credentials are the transport's.
        ("auth-forbidden-create-deployment", Builds(|| deployments().create(&pp(), &web_deployment()))),
        ("auth-forbidden-get", Builds(|| configmaps().get("cm1", &get()))),
        ("auth-forbidden-list-cluster", Builds(|| Request::all::<ConfigMap>().list(&lp()))),
        ("auth-forbidden-list", Builds(|| configmaps().list(&lp()))),
        ("auth-forbidden-watch", Builds(|| configmaps().watch(&plain_watch(), ""))),
        ("auth-no-token", Builds(|| configmaps().list(&lp()))),
        ("auth-wrong-token", Builds(|| configmaps().list(&lp()))),
        (
            "create-serviceaccount",
            Builds(|| {
                Request::namespaced::<ServiceAccount>(NS)
                    .create(&pp(), &ServiceAccount { metadata: meta("nobody"), ..ServiceAccount::default() })
            }),
        ),
        (
            "create-serviceaccount-token",
            Builds(|| {
                let spec = TokenRequestSpec { expiration_seconds: Some(600), ..TokenRequestSpec::default() };
                let tr = TokenRequest { spec: Some(spec), ..TokenRequest::default() };
                Request::namespaced::<ServiceAccount>(NS).create_subresource("token", "nobody", &pp(), &tr)
            }),
        ),
        (
            "selfsubjectaccessreview-denied",
            Builds(|| {
                let attributes = ResourceAttributes {
                    namespace: Some(NS.to_owned()),
                    verb: Some("list".to_owned()),
                    resource: Some("configmaps".to_owned()),
                    ..ResourceAttributes::default()
                };
                let spec = SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(attributes),
                    ..SelfSubjectAccessReviewSpec::default()
                };
                Request::all::<SelfSubjectAccessReview>()
                    .create(&pp(), &SelfSubjectAccessReview { spec, ..SelfSubjectAccessReview::default() })
            }),
        ),
        (
            "selfsubjectreview-serviceaccount",
            Builds(|| Request::all::<SelfSubjectReview>().create(&pp(), &SelfSubjectReview::default())),
        ),
        // Custom resources.
        ("crd-create", Builds(|| crds().create(&pp(), &widget_crd()))),
        ("crd-gadget-create", Builds(|| crds().create(&pp(), &gadget_crd()))),
        ("crd-get-established", Builds(|| crds().get("widgets.example.com", &get()))),
        ("crd-delete", Builds(|| crds().delete("gadgets.example.com", &del()))),
        ("crd-gadget-create-before-crd-exists", Builds(|| gadgets().create(&pp(), &gadget_g1()))),
        ("crd-gadget-create-before-established", Builds(|| gadgets().create(&pp(), &gadget_g1()))),
        ("crd-gadget-create-first-success", Builds(|| gadgets().create(&pp(), &gadget_g1()))),
        (
            "crd-widget-create",
            Builds(|| {
                let w = DynamicObject {
                    metadata: labelled("w1", &[("app", "widget")]),
                    ..widget_obj("w1", json!({"replicas": 1, "color": "red"}))
                };
                widgets().create(&pp(), &w)
            }),
        ),
        (
            "crd-widget-create-invalid",
            Builds(|| widgets().create(&pp(), &widget_obj("bad", json!({"replicas": -1, "color": "purple"})))),
        ),
        (
            "crd-widget-create-unknown-field",
            Builds(|| widgets().create(&pp(), &widget_obj("w3", json!({"replicas": 1, "extra": "x"})))),
        ),
        (
            "crd-widget-create-unknown-field-strict",
            Builds(|| widgets().create(&strict(), &widget_obj("w4", json!({"replicas": 1, "extra": "x"})))),
        ),
        ("crd-widget-delete", Builds(|| widgets().delete("w3", &del()))),
        ("crd-widget-get", Builds(|| widgets().get("w1", &get()))),
        ("crd-widget-get-notfound", Builds(|| widgets().get("nope", &get()))),
        ("crd-widget-get-scale", Builds(|| widgets().get_subresource("scale", "w1"))),
        ("crd-widget-list", Builds(|| widgets().list(&lp()))),
        (
            "crd-widget-patch-main-status-ignored",
            Builds(|| {
                widgets().patch(
                    "w1",
                    &patch_opts(),
                    &Patch::Merge(json!({"status": {"phase": "Ignored"}, "spec": {"color": "green"}})),
                )
            }),
        ),
        (
            "crd-widget-patch-scale",
            Builds(|| {
                widgets().patch_subresource(
                    "scale",
                    "w1",
                    &patch_opts(),
                    &Patch::Merge(json!({"spec": {"replicas": 5}})),
                )
            }),
        ),
        (
            "crd-widget-patch-status",
            Builds(|| {
                let status = json!({"status": {"replicas": 1, "selector": "app=widget", "phase": "Ready"}});
                widgets().patch_subresource("status", "w1", &patch_opts(), &Patch::Merge(status))
            }),
        ),
        (
            "crd-widget-strategic-merge-patch",
            Builds(|| widgets().patch("w1", &patch_opts(), &Patch::Strategic(json!({"spec": {"replicas": 2}})))),
        ),
        ("crd-widget-watch-streaming-list", Builds(|| widgets().watch(&streaming(), ""))),
        // ConfigMaps: create.
        ("create-configmap", Builds(|| configmaps().create(&pp(), &cm1()))),
        ("create-configmap-alreadyexists", Builds(|| configmaps().create(&pp(), &cm1()))),
        (
            "create-configmap-dryrun",
            Builds(|| {
                configmaps().create(&PostParams { dry_run: true, ..pp() }, &cm(meta("cm-dry"), Some(&[("x", "y")])))
            }),
        ),
        (
            "create-configmap-generatename",
            Builds(|| {
                let metadata = ObjectMeta { generate_name: Some("gen-".to_owned()), ..ObjectMeta::default() };
                configmaps().create(&pp(), &cm(metadata, Some(&[("x", "y")])))
            }),
        ),
        (
            "create-configmap-invalid-multiple-causes",
            Builds(|| {
                let long = "x".repeat(64);
                configmaps().create(&pp(), &cm(labelled("Bad_Name", &[("ok", &long)]), Some(&[("bad key!", "1")])))
            }),
        ),
        (
            "create-configmap-invalid-name",
            Builds(|| configmaps().create(&pp(), &cm(meta("Bad_Name"), Some(&[("a", "1")])))),
        ),
        (
            "create-configmap-namespace-mismatch",
            Builds(|| {
                let metadata = ObjectMeta { namespace: Some("default".to_owned()), ..meta("nsx") };
                configmaps().create(&pp(), &cm(metadata, Some(&[])))
            }),
        ),
        (
            "create-configmap-namespace-missing",
            Builds(|| Request::namespaced::<ConfigMap>("no-such-ns").create(&pp(), &cm(meta("x"), None))),
        ),
        (
            "create-configmap-namespace-terminating",
            Builds(|| configmaps().create(&pp(), &cm(meta("late"), Some(&[("a", "1")])))),
        ),
        // A typed ConfigMap always carries apiVersion and kind; this body deliberately has neither.
        (
            "create-configmap-no-kind",
            Builds(|| configmaps().create(&pp(), &json!({"metadata": {"name": "nokind"}, "data": {"a": "1"}}))),
        ),
        (
            "create-configmap-unknown-field-strict",
            Builds(|| configmaps().create(&strict(), &cm_with_unknown_field("cm-unknown2"))),
        ),
        (
            "create-configmap-unknown-field-warn",
            Builds(|| configmaps().create(&pp(), &cm_with_unknown_field("cm-unknown"))),
        ),
        (
            "create-configmap-wrong-apiversion",
            Builds(|| {
                let wrong = ApiResource::new("apps", "v1", "ConfigMap", "configmaps", true);
                configmaps().create(&pp(), &DynamicObject::new("wrongav", &wrong))
            }),
        ),
        (
            "create-configmap-wrong-kind",
            Builds(|| {
                let secret =
                    Secret { metadata: meta("wrongkind"), string_data: strings(&[("a", "1")]), ..Secret::default() };
                configmaps().create(&pp(), &secret)
            }),
        ),
        (
            "post-all-namespaces-collection-405",
            Builds(|| {
                let metadata = ObjectMeta { namespace: Some(NS.to_owned()), ..meta("x") };
                Request::all::<ConfigMap>().create(&pp(), &cm(metadata, None))
            }),
        ),
        // ConfigMaps: get.
        ("get-configmap", Builds(|| configmaps().get("cm1", &get()))),
        ("get-configmap-accept-any", Builds(|| configmaps().get("cm1", &get()))),
        ("get-configmap-after-dryrun-notfound", Builds(|| configmaps().get("cm-dry", &get()))),
        ("get-configmap-after-foreground-delete", Builds(|| configmaps().get("del3", &get()))),
        (
            "get-configmap-namespace-missing",
            Builds(|| Request::namespaced::<ConfigMap>("no-such-ns").get("cm1", &get())),
        ),
        ("get-configmap-notfound", Builds(|| configmaps().get("nope", &get()))),
        ("get-configmap-rv-too-large", Builds(|| pages().get("page-0", &GetParams::at("999999999")))),
        ("get-configmap-rv0", Builds(|| configmaps().get("cm1", &GetParams::any()))),
        ("nocache-get-configmap-old-rv", Builds(|| configmaps().get("cm1", &GetParams::at("847")))),
        // Metadata only.
        ("get-configmap-metadata-only", Builds(|| configmaps().get_metadata("cm1", &get()))),
        ("get-configmap-metadata-only-with-fallback", Builds(|| configmaps().get_metadata("cm1", &get()))),
        ("get-pod-metadata-only", Builds(|| pods().get_metadata("pod-a", &get()))),
        ("list-configmaps-metadata-only", Builds(|| configmaps().list_metadata(&lp().labels("app")))),
        (
            "watch-configmaps-metadata-only",
            Builds(|| configmaps().watch_metadata(&WatchParams::default().timeout(3), "824")),
        ),
        ("watch-streaming-list-metadata-only", Builds(|| pages().watch_metadata(&streaming(), ""))),
        // ConfigMaps: replace.
        ("replace-configmap", Builds(|| configmaps().replace("cm1", &pp(), &cm1_read_back("3")))),
        ("replace-configmap-stale-rv", Builds(|| configmaps().replace("cm1", &pp(), &cm1_read_back("stale")))),
        (
            "replace-configmap-name-mismatch",
            Builds(|| configmaps().replace("cm1", &pp(), &cm(meta("other"), Some(&[])))),
        ),
        (
            "replace-configmap-no-rv",
            Builds(|| {
                let data = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")];
                configmaps().replace(
                    "cm1",
                    &pp(),
                    &cm(labelled("cm1", &[("app", "web"), ("tier", "front")]), Some(&data)),
                )
            }),
        ),
        ("replace-configmap-notfound", Builds(|| configmaps().replace("nope", &pp(), &cm(meta("nope"), Some(&[]))))),
        // ConfigMaps: patch.
        (
            "patch-configmap-jsonpatch",
            Builds(|| {
                let ops = json!([{"op": "replace", "path": "/data/a", "value": "10"}, {"op": "add", "path": "/data/f", "value": "6"},
                             {"op": "remove", "path": "/data/e"}]);
                configmaps().patch("cm1", &patch_opts(), &Patch::Json(ops))
            }),
        ),
        (
            "patch-configmap-jsonpatch-remove-missing",
            Builds(|| {
                configmaps().patch("cm1", &patch_opts(), &Patch::Json(json!([{"op": "remove", "path": "/data/zzz"}])))
            }),
        ),
        (
            "patch-configmap-jsonpatch-stale-rv",
            Builds(|| {
                let ops = json!([{"op": "replace", "path": "/metadata/resourceVersion", "value": "1"},
                             {"op": "replace", "path": "/data/a", "value": "12"}]);
                configmaps().patch("cm1", &patch_opts(), &Patch::Json(ops))
            }),
        ),
        (
            "patch-configmap-jsonpatch-test-failed",
            Builds(|| {
                let ops = json!([{"op": "test", "path": "/data/a", "value": "999"}, {"op": "replace", "path": "/data/a", "value": "11"}]);
                configmaps().patch("cm1", &patch_opts(), &Patch::Json(ops))
            }),
        ),
        (
            "patch-configmap-merge",
            Builds(|| {
                let patch = json!({"metadata": {"labels": {"patched": "merge"}}, "data": {"b": null, "e": "5"}});
                configmaps().patch("cm1", &patch_opts(), &Patch::Merge(patch))
            }),
        ),
        (
            "patch-configmap-merge-force-param",
            Refuses(
                || {
                    let pp = PatchParams { force: true, field_manager: Some("a".to_owned()), ..PatchParams::default() };
                    configmaps().patch("ssa", &pp, &Patch::Merge(json!({"data": {"k": "v"}})))
                },
                |e| *e == RequestError::ForceWithoutApply,
            ),
        ),
        (
            "patch-configmap-merge-wrong-type",
            Builds(|| configmaps().patch("cm1", &patch_opts(), &Patch::Merge(json!({"data": {"x": 1}})))),
        ),
        (
            "patch-configmap-notfound",
            Builds(|| configmaps().patch("nope", &patch_opts(), &Patch::Merge(json!({"data": {"x": "1"}})))),
        ),
        (
            "patch-configmap-strategic-merge",
            Builds(|| {
                let patch = json!({"metadata": {"labels": {"patched": "smp"}}, "data": {"g": "7"}});
                configmaps().patch("cm1", &patch_opts(), &Patch::Strategic(patch))
            }),
        ),
        // ConfigMaps: delete and deletecollection.
        ("delete-configmap", Builds(|| configmaps().delete("del1", &del()))),
        ("delete-configmap-notfound", Builds(|| configmaps().delete("del1", &del()))),
        ("delete-configmap-dryrun", Builds(|| configmaps().delete("del3", &del().dry_run()))),
        ("delete-configmap-foreground", Builds(|| configmaps().delete("del3", &DeleteParams::foreground()))),
        (
            "delete-configmap-precondition-match",
            Builds(|| {
                let dp =
                    del().precondition_uid("bb5ce3c3-dcc3-4e63-9be5-2a92c29c4f6f").precondition_resource_version("628");
                configmaps().delete("del2", &dp)
            }),
        ),
        (
            "delete-configmap-precondition-rv-mismatch",
            Builds(|| configmaps().delete("del2", &del().precondition_resource_version("1"))),
        ),
        (
            "delete-configmap-precondition-uid-mismatch",
            Builds(|| configmaps().delete("del2", &del().precondition_uid("00000000-0000-0000-0000-000000000000"))),
        ),
        (
            "deletecollection-configmaps-labelselector",
            Builds(|| configmaps().delete_collection(&del(), &lp().labels("batch=x"))),
        ),
        (
            "deletecollection-configmaps-nothing-matches",
            Builds(|| configmaps().delete_collection(&del(), &lp().labels("batch=x"))),
        ),
        ("deletecollection-namespaces-405", Builds(|| namespaces().delete_collection(&del(), &lp()))),
        // Finalizers.
        (
            "finalizer-create-configmap",
            Builds(|| {
                let metadata = ObjectMeta { finalizers: Some(vec!["example.com/hold".to_owned()]), ..meta("fin1") };
                configmaps().create(&pp(), &cm(metadata, Some(&[("a", "1")])))
            }),
        ),
        ("finalizer-delete-configmap", Builds(|| configmaps().delete("fin1", &del()))),
        ("finalizer-delete-configmap-again", Builds(|| configmaps().delete("fin1", &del()))),
        ("finalizer-get-terminating-configmap", Builds(|| configmaps().get("fin1", &get()))),
        ("finalizer-get-after-removal", Builds(|| configmaps().get("fin1", &get()))),
        (
            "finalizer-add-while-terminating",
            Builds(|| {
                let patch = json!({"metadata": {"finalizers": ["example.com/hold", "example.com/another"]}});
                configmaps().patch("fin1", &patch_opts(), &Patch::Merge(patch))
            }),
        ),
        (
            "finalizer-update-while-terminating",
            Builds(|| configmaps().patch("fin1", &patch_opts(), &Patch::Merge(json!({"data": {"b": "2"}})))),
        ),
        (
            "finalizer-remove-patch",
            Builds(|| {
                configmaps().patch("fin1", &patch_opts(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
            }),
        ),
        (
            "finalizer-watch-remove",
            Builds(|| configmaps().watch(&plain_watch().fields("metadata.name=fin1").timeout(4), "679")),
        ),
        // Lists: selectors, pagination, resourceVersion semantics.
        (
            "list-configmaps-all-namespaces",
            Builds(|| Request::all::<ConfigMap>().list(&lp().labels("page=yes").limit(3))),
        ),
        ("list-configmaps-fieldselector-name", Builds(|| configmaps().list(&lp().fields("metadata.name=cm1")))),
        (
            "list-configmaps-fieldselector-name-notequal",
            Builds(|| configmaps().list(&lp().fields("metadata.name!=cm1,metadata.name!=kube-root-ca.crt"))),
        ),
        // Syntactically fine; only the server knows ConfigMaps have no field `data.a`.
        ("list-configmaps-fieldselector-unsupported", Builds(|| configmaps().list(&lp().fields("data.a=1")))),
        ("list-configmaps-labelselector-equality", Builds(|| configmaps().list(&lp().labels("app=web")))),
        ("list-configmaps-labelselector-exists-notexists", Builds(|| configmaps().list(&lp().labels("tier,!app")))),
        (
            "list-configmaps-labelselector-invalid",
            Refuses(
                || configmaps().list(&lp().labels("app in web")),
                |e| matches!(e, RequestError::InvalidSelector(_)),
            ),
        ),
        (
            "list-configmaps-labelselector-setbased",
            Builds(|| configmaps().list(&lp().labels("app in (web,cache),tier!=front"))),
        ),
        ("list-configmaps-paginated-page1", Builds(|| pages().list(&lp().limit(2)))),
        (
            "list-configmaps-paginated-page2",
            Builds(|| pages().list(&lp().limit(2).continue_token(&continue_from("list-configmaps-paginated-page1")))),
        ),
        (
            "list-configmaps-paginated-page3",
            Builds(|| pages().list(&lp().limit(2).continue_token(&continue_from("list-configmaps-paginated-page2")))),
        ),
        (
            "list-configmaps-paginated-page4",
            Builds(|| pages().list(&lp().limit(2).continue_token(&continue_from("list-configmaps-paginated-page3")))),
        ),
        ("list-configmaps-paginated-labelselector-page1", Builds(|| pages().list(&lp().labels("page=yes").limit(2)))),
        (
            "list-configmaps-paginated-labelselector-page2",
            Builds(|| {
                pages().list(
                    &lp()
                        .labels("page=yes")
                        .limit(2)
                        .continue_token(&continue_from("list-configmaps-paginated-labelselector-page1")),
                )
            }),
        ),
        (
            "list-configmaps-paginated-labelselector-page3",
            Builds(|| {
                pages().list(
                    &lp()
                        .labels("page=yes")
                        .limit(2)
                        .continue_token(&continue_from("list-configmaps-paginated-labelselector-page2")),
                )
            }),
        ),
        (
            "list-configmaps-paginated-labelselector-page4",
            Builds(|| {
                pages().list(
                    &lp()
                        .labels("page=yes")
                        .limit(2)
                        .continue_token(&continue_from("list-configmaps-paginated-labelselector-page3")),
                )
            }),
        ),
        // The first page's token (rv 847), used again after etcd compacted past it.
        (
            "list-configmaps-continue-compacted-cached",
            Builds(|| pages().list(&lp().limit(2).continue_token(&continue_from("nocache-list-configmaps-page1")))),
        ),
        (
            "list-configmaps-continue-invalid",
            Builds(|| pages().list(&lp().limit(2).continue_token("not-a-valid-token"))),
        ),
        ("list-configmaps-rv-too-large", Builds(|| pages().list(&lp().not_older_than("999999999")))),
        ("list-configmaps-rv-too-large-no-match", Builds(|| pages().list(&rv_only("999999999")))),
        ("list-configmaps-rv0", Builds(|| pages().list(&rv_only("0")))),
        ("list-configmaps-rv0-limit", Builds(|| pages().list(&rv_only("0").limit(2)))),
        ("list-configmaps-rvmatch-exact-compacted-cached", Builds(|| configmaps().list(&lp().at("847")))),
        ("list-configmaps-rvmatch-exact-old", Builds(|| pages().list(&lp().at("662")))),
        ("list-configmaps-rvmatch-exact-old-limit", Builds(|| pages().list(&lp().at("662").limit(2)))),
        (
            "list-configmaps-rvmatch-exact-rv0",
            Refuses(
                || pages().list(&lp().at("0")),
                |e| matches!(e, RequestError::InvalidParam { param: "resourceVersionMatch", .. }),
            ),
        ),
        ("list-configmaps-rvmatch-notolderthan", Builds(|| pages().list(&lp().not_older_than("662")))),
        (
            "list-configmaps-rvmatch-without-rv",
            Refuses(
                || pages().list(&ListParams { version_match: Some(VersionMatch::Exact), ..lp() }),
                |e| *e == RequestError::VersionMatchWithoutVersion,
            ),
        ),
        ("list-namespaces", Builds(|| namespaces().list(&lp()))),
        ("list-pods", Builds(|| pods().list(&lp()))),
        ("list-replicasets", Builds(|| Request::namespaced::<ReplicaSet>(NS).list(&lp().labels("app=web")))),
        // Watch cache off.
        ("nocache-list-configmaps-page1", Builds(|| pages().list(&lp().limit(2)))),
        (
            "nocache-list-configmaps-continue-compacted",
            Builds(|| pages().list(&lp().limit(2).continue_token(&continue_from("nocache-list-configmaps-page1")))),
        ),
        // The token the 410 offered for an inconsistent continuation.
        (
            "nocache-list-configmaps-continue-inconsistent",
            Builds(|| {
                pages()
                    .list(&lp().limit(2).continue_token(&continue_from("nocache-list-configmaps-continue-compacted")))
            }),
        ),
        ("nocache-list-configmaps-rv-too-large", Builds(|| pages().list(&lp().not_older_than("999999999")))),
        ("nocache-list-configmaps-rv0-limit", Builds(|| pages().list(&rv_only("0").limit(2)))),
        ("nocache-list-configmaps-rvmatch-exact-compacted", Builds(|| configmaps().list(&lp().at("847")))),
        (
            "nocache-list-configmaps-rvmatch-exact-compacted-limit",
            Builds(|| configmaps().list(&lp().at("847").limit(2))),
        ),
        ("nocache-list-configmaps-rvmatch-exact-old-before-compaction", Builds(|| configmaps().list(&lp().at("847")))),
        (
            "nocache-list-configmaps-rvmatch-notolderthan-compacted",
            Builds(|| configmaps().list(&lp().not_older_than("847"))),
        ),
        ("nocache-watch-from-compacted-rv", Builds(|| configmaps().watch(&plain_watch().timeout(5), "847"))),
        (
            "nocache-watch-from-compacted-rv-bookmarks",
            Builds(|| configmaps().watch(&WatchParams::default().timeout(5), "847")),
        ),
        (
            "nocache-watch-from-old-rv-before-compaction",
            Builds(|| configmaps().watch(&WatchParams::default().timeout(5), "847")),
        ),
        ("nocache-watch-rv-too-large", Builds(|| configmaps().watch(&plain_watch().timeout(5), "999999999"))),
        ("nocache-watch-rv0", Builds(|| configmaps().watch(&plain_watch().timeout(2), "0"))),
        ("nocache-watch-streaming-list", Builds(|| pages().watch(&streaming(), ""))),
        ("nocache-watch-streaming-list-with-rv", Builds(|| pages().watch(&streaming(), "854"))),
        // Watches.
        (
            "watch-configmap-single-fieldselector",
            Builds(|| configmaps().watch(&plain_watch().fields("metadata.name=cm1").timeout(3), "618")),
        ),
        ("watch-configmaps-bookmarks-no-timeout", Builds(|| pages().watch(&WatchParams::default(), "797"))),
        (
            "watch-configmaps-bookmarks-timeout5",
            Builds(|| configmaps().watch(&WatchParams::default().timeout(5), "797")),
        ),
        ("watch-configmaps-bookmarks-timeout70", Builds(|| pages().watch(&WatchParams::default().timeout(70), "797"))),
        ("watch-configmaps-compacted-rv-cached", Builds(|| configmaps().watch(&plain_watch().timeout(3), "847"))),
        (
            "watch-configmaps-labelselector-transitions",
            Builds(|| configmaps().watch(&plain_watch().labels("watch=me").timeout(5), "804")),
        ),
        ("watch-configmaps-no-bookmarks", Builds(|| configmaps().watch(&plain_watch().timeout(4), "802"))),
        ("watch-configmaps-no-rv", Builds(|| pages().watch(&plain_watch().timeout(2), ""))),
        ("watch-configmaps-rv-too-large", Builds(|| pages().watch(&plain_watch().timeout(10), "999999999"))),
        ("watch-configmaps-rv-too-old-cached", Builds(|| pages().watch(&plain_watch().timeout(3), "1"))),
        ("watch-configmaps-rv0", Builds(|| pages().watch(&plain_watch().timeout(2), "0"))),
        ("watch-configmaps-rv0-bookmarks", Builds(|| pages().watch(&WatchParams::default().timeout(4), "0"))),
        ("watch-streaming-list", Builds(|| pages().watch(&streaming(), ""))),
        ("watch-streaming-list-labelselector", Builds(|| pages().watch(&streaming().labels("page=yes"), ""))),
        ("watch-streaming-list-no-bookmarks", Builds(|| pages().watch(&streaming().disable_bookmarks(), ""))),
        ("watch-streaming-list-with-rv", Builds(|| pages().watch(&streaming(), "816"))),
        // Deployments and their subresources.
        ("create-deployment", Builds(|| deployments().create(&pp(), &web_deployment()))),
        ("delete-deployment", Builds(|| deployments().delete("web", &del()))),
        ("get-deployment", Builds(|| deployments().get("web", &get()))),
        ("get-deployment-after-scale", Builds(|| deployments().get("web", &get()))),
        ("get-deployment-scale", Builds(|| deployments().get_subresource("scale", "web"))),
        ("get-deployment-status", Builds(|| deployments().get_subresource("status", "web"))),
        (
            "patch-deployment-main-status-ignored",
            Builds(|| deployments().patch("web", &patch_opts(), &Patch::Merge(json!({"status": {"replicas": 42}})))),
        ),
        (
            "patch-deployment-scale-merge",
            Builds(|| {
                deployments().patch_subresource(
                    "scale",
                    "web",
                    &patch_opts(),
                    &Patch::Merge(json!({"spec": {"replicas": 3}})),
                )
            }),
        ),
        (
            "patch-deployment-status-merge",
            Builds(|| {
                let condition =
                    json!({"type": "Example", "status": "True", "reason": "Fixture", "message": "set via /status"});
                deployments().patch_subresource(
                    "status",
                    "web",
                    &patch_opts(),
                    &Patch::Merge(json!({"status": {"conditions": [condition]}})),
                )
            }),
        ),
        (
            "patch-deployment-status-spec-ignored",
            Builds(|| {
                deployments().patch_subresource(
                    "status",
                    "web",
                    &patch_opts(),
                    &Patch::Merge(json!({"spec": {"replicas": 9}})),
                )
            }),
        ),
        (
            "replace-deployment-scale",
            Builds(|| deployments().replace_subresource("scale", "web", &pp(), &scale_read_back())),
        ),
        (
            "replace-deployment-scale-stale-rv",
            Builds(|| deployments().replace_subresource("scale", "web", &pp(), &scale_read_back())),
        ),
        // Namespaces and nodes.
        (
            "create-namespace",
            Builds(|| namespaces().create(&pp(), &Namespace { metadata: meta(NS), ..Namespace::default() })),
        ),
        ("delete-namespace", Builds(|| namespaces().delete(NS, &del()))),
        ("get-namespace", Builds(|| namespaces().get(NS, &get()))),
        ("get-namespace-deleted", Builds(|| namespaces().get(NS, &get()))),
        ("get-namespace-terminating", Builds(|| namespaces().get(NS, &get()))),
        (
            "create-node",
            Builds(|| {
                let node = Node {
                    metadata: labelled("fixture-node", &[("kubernetes.io/hostname", "fixture-node")]),
                    ..Node::default()
                };
                Request::all::<Node>().create(&pp(), &node)
            }),
        ),
        // Pods: create, delete, eviction, binding, ephemeral containers, log, exec.
        ("create-pod", Builds(|| pods().create(&pp(), &pod_a()))),
        (
            "create-pod-invalid",
            Builds(|| {
                let spec = PodSpec { restart_policy: Some("Sometimes".to_owned()), ..PodSpec::default() };
                pods().create(&pp(), &Pod { metadata: meta("badpod"), spec: Some(spec), ..Pod::default() })
            }),
        ),
        (
            "create-poddisruptionbudget",
            Builds(|| {
                let spec = PodDisruptionBudgetSpec {
                    min_available: Some(IntOrString::Int(1)),
                    selector: Some(LabelSelector {
                        match_labels: strings(&[("app", "pdb")]),
                        ..LabelSelector::default()
                    }),
                    ..PodDisruptionBudgetSpec::default()
                };
                let pdb =
                    PodDisruptionBudget { metadata: meta("pdb"), spec: Some(spec), ..PodDisruptionBudget::default() };
                Request::namespaced::<PodDisruptionBudget>(NS).create(&pp(), &pdb)
            }),
        ),
        ("get-poddisruptionbudget", Builds(|| Request::namespaced::<PodDisruptionBudget>(NS).get("pdb", &get()))),
        ("delete-pod-force", Builds(|| pods().delete("pod-bound", &del().grace_period(0)))),
        ("delete-pod-grace-0", Builds(|| pods().delete("pod-pdb", &del().grace_period(0)))),
        ("delete-pod-scheduled", Builds(|| pods().delete("pod-bound", &del()))),
        ("delete-pod-unscheduled", Builds(|| pods().delete("pod-b", &del()))),
        ("get-pod-after-eviction", Builds(|| pods().get("pod-a", &get()))),
        ("get-pod-terminating", Builds(|| pods().get("pod-bound", &get()))),
        ("evict-pod-pending", Builds(|| pods().evict("pod-a", &EvictParams::default()))),
        ("evict-pod-pending-with-pdb", Builds(|| pods().evict("pod-pdb-pending", &EvictParams::default()))),
        ("evict-pod-pdb-violation", Builds(|| pods().evict("pod-pdb", &EvictParams::default()))),
        ("evict-pod-notfound", Builds(|| pods().evict("nope", &EvictParams::default()))),
        // `evict` names the pod of the URL; a mismatching Eviction needs the generic subresource POST.
        (
            "evict-pod-name-mismatch",
            Builds(|| pods().create_subresource("eviction", "pod-b", &pp(), &eviction_naming("other"))),
        ),
        ("bind-pod", Builds(|| pods().create_subresource("binding", "pod-bound", &pp(), &binding()))),
        ("bind-pod-again", Builds(|| pods().create_subresource("binding", "pod-bound", &pp(), &binding()))),
        ("get-pod-ephemeralcontainers", Builds(|| pods().get_subresource("ephemeralcontainers", "pod-b"))),
        (
            "patch-pod-ephemeralcontainers",
            Builds(|| {
                let debugger = json!({"name": "debugger", "image": "busybox:1.36", "command": ["sh"], "stdin": true, "tty": true,
                                  "targetContainerName": "c"});
                pods().patch_subresource(
                    "ephemeralcontainers",
                    "pod-b",
                    &patch_opts(),
                    &Patch::Strategic(json!({"spec": {"ephemeralContainers": [debugger]}})),
                )
            }),
        ),
        (
            "patch-pod-status-running",
            Builds(|| {
                let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": "2026-11-25T23:10:36Z"});
                let patch =
                    json!({"status": {"phase": "Running", "conditions": [cond("Ready"), cond("PodScheduled")]}});
                pods().patch_subresource("status", "pod-pdb", &patch_opts(), &Patch::Merge(patch))
            }),
        ),
        ("get-pod-log-no-node", Builds(|| pods().logs("pod-b", &LogParams::default()))),
        (
            "get-pod-log-bad-container",
            Builds(|| pods().logs("pod-b", &LogParams { container: Some("nope".to_owned()), ..LogParams::default() })),
        ),
        (
            "get-pod-log-follow-no-node",
            Builds(|| {
                pods().logs(
                    "pod-b",
                    &LogParams { follow: true, tail_lines: Some(10), timestamps: true, ..LogParams::default() },
                )
            }),
        ),
        ("get-pod-log-kubelet-unreachable", Builds(|| pods().logs("pod-bound", &LogParams::default()))),
        ("get-pod-log-pod-notfound", Builds(|| pods().logs("nope", &LogParams::default()))),
        (
            "exec-pod-websocket-kubelet-unreachable",
            Builds(|| pods().exec("pod-bound2", ["ls"], &AttachParams::default())),
        ),
        (
            "exec-pod-websocket-pod-notfound",
            Builds(|| pods().exec("nope", ["ls"], &AttachParams::default().stderr(false))),
        ),
        // The recording is a POST without Upgrade headers too; what matters here is the missing command.
        (
            "exec-pod-no-command",
            Refuses(
                || pods().exec("pod-bound", std::iter::empty::<&str>(), &AttachParams::default().stderr(false)),
                |e| matches!(e, RequestError::InvalidParam { param: "command", .. }),
            ),
        ),
        // Routing errors: the URL is well formed; only the server knows the kind is not served.
        (
            "get-unknown-group",
            Builds(|| {
                Request::dynamic(&ApiResource::new("example.org", "v1", "Widget", "widgets", true), Some(NS))
                    .list(&lp())
            }),
        ),
        (
            "get-unknown-resource-apps",
            Builds(|| {
                Request::dynamic(&ApiResource::new("apps", "v1", "Widget", "widgets", true), Some(NS)).list(&lp())
            }),
        ),
        (
            "get-unknown-resource-core",
            Builds(|| Request::dynamic(&ApiResource::new("", "v1", "Widget", "widgets", true), Some(NS)).list(&lp())),
        ),
        (
            "get-unknown-version",
            Builds(|| {
                Request::dynamic(&ApiResource::new("apps", "v9", "Deployment", "deployments", true), None).list(&lp())
            }),
        ),
    ]
}

// ---- What went on the wire ----

/// One query parameter: the name, the decoded value, and the value as encoded on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Param {
    key: String,
    value: String,
    raw: String,
}

/// A request reduced to what the comparison looks at.
#[derive(Debug)]
struct Wire {
    method: String,
    path: String,
    /// Stably sorted by key: repeated keys (`command`) keep their relative order.
    query: Vec<Param>,
    /// Lower-case names.
    headers: BTreeMap<String, String>,
    /// `Null` for no body, a `String` for a body that is not JSON.
    body: Value,
}

fn parse_query(query: Option<&str>) -> Vec<Param> {
    let mut params: Vec<Param> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = url::form_urlencoded::parse(pair.as_bytes()).next().expect("a query pair");
            let raw = pair.split_once('=').map_or("", |(_, v)| v).to_owned();
            Param { key: key.into_owned(), value: value.into_owned(), raw }
        })
        .collect();
    params.sort_by(|a, b| a.key.cmp(&b.key));
    params
}

fn body_value(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
    }
}

impl Wire {
    fn recorded(fx: &Fixture) -> Wire {
        let (path, query) = match fx.path_and_query().split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (fx.path_and_query(), None),
        };
        let headers = fx.request()["headers"]
            .as_object()
            .expect("request.headers")
            .iter()
            // The credentials and the User-Agent are the transport's, not the core's.
            .filter(|(k, _)| !matches!(k.as_str(), "authorization" | "user-agent"))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().expect("a string header").to_owned()))
            .collect();
        Wire {
            method: fx.method().to_owned(),
            path: path.to_owned(),
            query: parse_query(query),
            headers,
            body: fx.request()["body"].clone(),
        }
    }

    fn ours(req: &http::Request<Vec<u8>>) -> Wire {
        let headers = req
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().expect("an ASCII header").to_owned()))
            .collect();
        Wire {
            method: req.method().as_str().to_owned(),
            path: req.uri().path().to_owned(),
            query: parse_query(req.uri().query()),
            headers,
            body: body_value(req.body()),
        }
    }
}

// ---- Normalising the differences that are ours to choose ----

const DELETE_OPTION_PARAMS: [&str; 3] = ["dryRun", "gracePeriodSeconds", "propagationPolicy"];

/// The server takes DeleteOptions either as query parameters or as a body. The recordings used
/// the query for dryRun, gracePeriodSeconds and propagationPolicy; we always send a
/// `meta.k8s.io/v1` DeleteOptions body (the recordings' bodies say `apiVersion: v1`, which the
/// server reads the same way). Moves the recorded query options into such a body.
fn delete_options_as_body(rec: &mut Wire) {
    if rec.method != "DELETE" {
        return;
    }
    let (moved, kept): (Vec<Param>, Vec<Param>) =
        rec.query.drain(..).partition(|p| DELETE_OPTION_PARAMS.contains(&p.key.as_str()));
    rec.query = kept;
    if moved.is_empty() && rec.body.is_null() {
        return;
    }
    let mut body = match std::mem::take(&mut rec.body) {
        Value::Object(o) => o,
        Value::Null => serde_json::Map::new(),
        other => panic!("a DeleteOptions body that is not an object: {other}"),
    };
    body.insert("apiVersion".into(), json!("meta.k8s.io/v1"));
    body.insert("kind".into(), json!("DeleteOptions"));
    for p in moved {
        let v = match p.key.as_str() {
            "dryRun" => json!([p.value]),
            "gracePeriodSeconds" => json!(p.value.parse::<u64>().expect("a number")),
            _ => json!(p.value),
        };
        body.insert(p.key, v);
    }
    rec.body = Value::Object(body);
    rec.headers.entry("content-type".into()).or_insert_with(|| "application/json".into());
}

/// Header differences that are ours to choose.
fn normalise_headers(rec: &mut Wire, ours: &mut Wire) {
    // The transport adds Sec-WebSocket-Key from its own randomness; the recordings used the
    // RFC 6455 sample nonce.
    if ours.headers.contains_key("upgrade") {
        ours.headers.insert("sec-websocket-key".into(), websocket_key(*b"the sample nonce").to_str().unwrap().into());
    }
    let our_accept = ours.headers.get("accept").cloned().unwrap_or_default();
    if let Some(accept) = rec.headers.get_mut("accept") {
        // `*/*` asks for nothing in particular (the server answers JSON); we always say JSON.
        // A metadata Accept with a plain JSON fallback gets the same answer as ours without it.
        if (accept == "*/*" && our_accept == "application/json") || *accept == format!("{our_accept}, application/json")
        {
            *accept = our_accept;
        }
    }
    // We offer v4.channel.k8s.io after v5 as a fallback; some recordings offered only v5.
    if let (Some(rec_p), Some(our_p)) =
        (rec.headers.get_mut("sec-websocket-protocol"), ours.headers.get("sec-websocket-protocol"))
        && our_p.starts_with(&format!("{rec_p}, "))
    {
        *rec_p = our_p.clone();
    }
}

/// Go's `url.QueryEscape` (which client-go uses, and so do we) writes a space as `+`; the
/// recording script wrote `%20`. The server decodes both as a space.
fn normalise_query_encoding(rec: &mut Wire) {
    for p in &mut rec.query {
        p.raw = p.raw.replace("%20", "+");
    }
}

/// k8s-openapi always writes `metadata`, if only as `{}`; an empty metadata is no metadata.
fn drop_empty_metadata(rec: &Wire, ours: &mut Wire) {
    if let (Value::Object(r), Value::Object(o)) = (&rec.body, &mut ours.body)
        && !r.contains_key("metadata")
        && o.get("metadata") == Some(&json!({}))
    {
        o.remove("metadata");
    }
}

/// The scalar leaves of a JSON value as `(key, value)` text, sorted.
fn json_leaves(v: &Value) -> Vec<(String, String)> {
    fn walk(key: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(o) => o.iter().for_each(|(k, v)| walk(k, v, out)),
            Value::Array(a) => a.iter().for_each(|v| walk("-", v, out)),
            Value::String(s) => out.push((key.to_owned(), s.clone())),
            other => out.push((key.to_owned(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out.sort();
    out
}

/// The `key: scalar` lines of a simple block-style YAML document, sorted. Not a YAML parser:
/// enough to see that two simple documents carry the same keys and values.
fn yaml_leaves(yaml: &str) -> Vec<(String, String)> {
    let mut out: Vec<_> = yaml
        .lines()
        .filter_map(|l| l.trim().split_once(": "))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches(|c| c == '\'' || c == '"').to_owned()))
        .collect();
    out.sort();
    out
}

/// An apply body recorded as YAML text: our JSON body (JSON is YAML) must carry the same
/// keys and values. One recorded as JSON text is compared as JSON.
fn compare_apply_body(rec: &mut Wire, ours: &Wire, diffs: &mut Vec<String>) {
    let is_apply = rec.headers.get("content-type").is_some_and(|c| c == "application/apply-patch+yaml");
    let Value::String(text) = &rec.body else { return };
    if !is_apply {
        return;
    }
    if let Ok(json) = serde_json::from_str::<Value>(text) {
        rec.body = json;
        return;
    }
    let (want, got) = (yaml_leaves(text), json_leaves(&ours.body));
    if want != got {
        diffs.push(format!("apply body: the YAML has {want:?}, our JSON has {got:?}"));
    }
    // Compared; the body comparison proper has nothing more to say.
    rec.body = ours.body.clone();
}

/// Every difference between the recorded request and ours.
fn compare(fx: &Fixture, req: &http::Request<Vec<u8>>) -> Vec<String> {
    let (mut rec, mut ours) = (Wire::recorded(fx), Wire::ours(req));
    let mut diffs = Vec::new();
    delete_options_as_body(&mut rec);
    normalise_headers(&mut rec, &mut ours);
    normalise_query_encoding(&mut rec);
    drop_empty_metadata(&rec, &mut ours);
    compare_apply_body(&mut rec, &ours, &mut diffs);

    if rec.method != ours.method {
        diffs.push(format!("method: recorded {}, ours {}", rec.method, ours.method));
    }
    if rec.path != ours.path {
        diffs.push(format!("path: recorded {}, ours {}", rec.path, ours.path));
    }
    let decoded = |q: &[Param]| q.iter().map(|p| (p.key.clone(), p.value.clone())).collect::<Vec<_>>();
    if decoded(&rec.query) != decoded(&ours.query) {
        diffs.push(format!("query: recorded {:?}, ours {:?}", decoded(&rec.query), decoded(&ours.query)));
    } else {
        for (r, o) in rec.query.iter().zip(&ours.query) {
            if r.raw != o.raw {
                diffs.push(format!("encoding of {}: recorded {}, ours {}", r.key, r.raw, o.raw));
            }
        }
    }
    if rec.headers != ours.headers {
        diffs.push(format!("headers: recorded {:?}, ours {:?}", rec.headers, ours.headers));
    }
    if !json_eq(&rec.body, &ours.body) {
        diffs.push(format!("body: recorded {}, ours {}", rec.body, ours.body));
    }
    diffs
}

// ---- The tests ----

#[test]
fn our_requests_agree_with_the_recorded_ones() {
    let mut failures = Vec::new();
    let mut checked = 0;
    let files = fixture_support::names();
    for (name, expect) in table() {
        if !files.contains(name) {
            continue; // reported by `every_fixture_is_built_or_explained`
        }
        let fx = Fixture::load(name);
        let outcome = run_check(|| match expect {
            Builds(build) => match build() {
                Ok(req) => {
                    let diffs = compare(&fx, &req);
                    assert!(diffs.is_empty(), "{}", diffs.join("\n    "));
                }
                Err(e) => panic!("our builder refused it: {e}"),
            },
            Refuses(build, is_expected) => match build() {
                Ok(req) => panic!("our builder made {} {} instead of refusing", req.method(), req.uri()),
                Err(e) => assert!(is_expected(&e), "refused with an unexpected error: {e:?}"),
            },
        });
        checked += 1;
        if let Err(msg) = outcome {
            failures.push(format!("{name}:\n    {msg}"));
        }
    }
    assert!(failures.is_empty(), "{} of {checked} fixtures disagree:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= MIN_COVERED, "only {checked} fixtures checked, expected at least {MIN_COVERED}");
}

#[test]
fn every_fixture_is_built_or_explained() {
    let files = fixture_support::names();
    let table = table();
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for name in table.iter().map(|(n, _)| *n).chain(NOT_BUILT.iter().map(|(n, _)| *n)) {
        if !seen.insert(name) {
            problems.push(format!("{name}: listed twice"));
        }
        if !files.contains(name) {
            problems.push(format!("{name}: no such fixture"));
        }
    }
    for name in &files {
        if !seen.contains(name.as_str()) {
            problems.push(format!("{name}: neither in the table nor in NOT_BUILT"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(table.len() + NOT_BUILT.len(), files.len());
}
