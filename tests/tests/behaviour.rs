//! kube-apiserver's behaviour, one behaviour per test, each named after it and citing the
//! Kubernetes documentation page it checks. Every body runs against kube-proto's fake API server
//! on simulated time (`fake::<name>`) and, with `KUBE_E2E_KUBECONFIG` naming a kubeconfig,
//! against that cluster on real time (`cluster::<name>`, ignored unless asked for:
//! `KUBE_E2E_KUBECONFIG=... cargo test -p kube-integration-tests --test behaviour --
//! --include-ignored`), so that the fake is compared with the real server (see
//! [`kube_integration_tests::behaviour`]).
//!
//! The tests compare relations, not values: resourceVersions only increase, a list's
//! resourceVersion is not older than what it contains, uids differ, and so on. Nothing relies on
//! the fake's own numbering, its uids or the order of its writes; objects are scoped by a label
//! wherever a real cluster adds its own (the `kube-root-ca.crt` ConfigMap in every namespace);
//! everything namespaced goes into the test's namespace, and the one cluster-scoped kind the
//! tests make (a CRD) has a group derived from it and is deleted afterwards. Waits for
//! controllers poll once a second (at once on the fake), and reading a watch "now" reads for the
//! backend's propagation delay (none on the fake).
//!
//! Skipped on a real cluster, with a note: the tests that need compaction on request
//! (`needs(Compaction)`) and the one that watches for minutes (`needs(Minutes)`).

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_integration_tests::behaviour::{Behaviour, Power};
use kube_integration_tests::behaviour_tests;
use kube_proto::{
    ApiResource, Bookmark, DeleteParams, DynamicObject, GetParams, ListParams, Patch, PatchParams, PostParams, Request,
    WatchEvent, WatchParams,
};
use serde_json::{Value, json};

behaviour_tests! {
    // Create, get and the common metadata
    create_answers_201_with_the_stored_object_and_get_returns_it,
    create_of_an_existing_name_is_409_already_exists,
    get_of_a_missing_object_is_404_not_found_with_a_status,
    resource_version_is_one_global_increasing_counter_across_kinds,
    create_sets_uid_creation_timestamp_and_generation_1,
    generation_bumps_on_spec_changes_only,
    // Update
    replace_with_a_stale_resource_version_is_409_conflict,
    replace_without_resource_version_is_unconditional,
    // Patch
    merge_patch_merges_maps_and_null_deletes,
    json_patch_applies_its_operations_and_a_failed_test_is_422,
    strategic_merge_patch_merges_a_deployment_s_containers_by_name,
    strategic_merge_patch_on_a_custom_resource_is_415,
    // Server-side apply
    server_side_apply_creates_updates_and_an_identical_apply_is_a_no_op,
    server_side_apply_conflicts_are_409_and_force_takes_ownership,
    // Delete, finalizers, garbage collection
    delete_answers_a_status_when_gone_and_the_object_when_pending,
    dry_run_create_and_delete_store_nothing,
    delete_with_finalizers_sets_deletion_timestamp_and_watchers_see_modified,
    delete_again_while_terminating_returns_the_same_object,
    adding_a_finalizer_while_terminating_is_422_but_other_updates_are_allowed,
    removing_the_last_finalizer_deletes_the_object_with_only_a_deleted_event,
    foreground_deletion_answers_the_object_with_the_foreground_deletion_finalizer,
    orphan_deletion_answers_the_object_with_the_orphan_finalizer_and_background_a_status,
    delete_preconditions_that_do_not_match_are_409_conflict,
    deletecollection_deletes_what_the_label_selector_matches_and_returns_the_deleted_list,
    deleting_a_scheduled_pod_is_graceful_and_grace_period_0_removes_it,
    // Namespaces
    create_in_a_missing_namespace_is_404_about_the_namespace,
    deleting_a_namespace_deletes_its_contents_then_itself,
    create_in_a_terminating_namespace_is_403_namespace_terminating,
    // Subresources
    writes_to_the_main_resource_ignore_status,
    writes_to_the_status_subresource_ignore_spec,
    the_scale_subresource_reads_and_writes_a_deployment_s_replicas,
    // Selectors
    label_selectors_support_equality_set_and_existence_requirements,
    field_selectors_support_metadata_name_and_namespace,
    // List resourceVersion semantics
    list_without_resource_version_or_not_older_than_is_the_current_state,
    list_at_resource_version_0_ignores_limit,
    list_exact_at_an_older_resource_version_returns_the_state_as_of_then,
    list_exact_at_a_compacted_resource_version_is_410_expired: needs(Compaction),
    a_future_resource_version_is_504_with_retry_after_1,
    resource_version_match_without_resource_version_is_422,
    // Pagination
    pagination_reads_a_consistent_snapshot_across_pages,
    remaining_item_count_is_only_given_without_selectors,
    a_garbage_continue_token_is_400,
    continue_after_compaction_is_410_with_a_fresh_token_that_works: needs(Compaction),
    // Watch
    watch_from_a_resource_version_replays_the_changes_since,
    watch_from_a_compacted_resource_version_is_200_then_an_error_410_expired: needs(Compaction),
    streaming_list_sends_added_per_object_then_the_initial_events_end_bookmark,
    send_initial_events_without_resource_version_match_is_422,
    a_watch_with_resource_version_unset_or_0_starts_with_the_current_state,
    a_label_selector_watch_sees_an_object_leave_as_deleted_and_reenter_as_added,
    bookmarks_come_about_once_a_minute: needs(Minutes),
    a_bookmark_comes_shortly_before_the_timeout_and_never_without_allow_watch_bookmarks,
    timeout_seconds_ends_the_watch,
    // Metadata only
    metadata_only_get_list_and_watch_return_partial_object_metadata,
    metadata_only_with_the_wrong_as_and_unservable_media_types_are_406,
    // Custom resources
    creating_a_crd_makes_its_kind_servable,
    a_custom_resource_s_status_and_scale_subresources_follow_its_crd,
    deleting_a_crd_deletes_its_custom_resources_and_stops_serving_them,
    // Routing and request errors
    an_unknown_group_or_path_is_a_plain_text_404,
    an_unknown_resource_or_version_in_a_built_in_group_is_a_json_404,
    verbs_a_url_does_not_support_are_405,
    bodies_the_server_cannot_read_are_400,
    invalid_names_are_422_with_a_cause_for_metadata_name,
    namespaces_carry_their_name_as_a_label,
}

/// A label on every object the tests create where a list is counted. The lists are in the
/// test's namespace, so the same label in other tests' namespaces does not count.
const MINE: &str = "suite=behaviour";

// ---- Setup ----

fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

fn pp() -> PostParams {
    PostParams::default()
}

fn cms(b: &Behaviour) -> Request {
    Request::namespaced::<ConfigMap>(b.ns())
}

fn deployments(b: &Behaviour) -> Request {
    Request::namespaced::<Deployment>(b.ns())
}

/// A plain `ConfigMap` body (`apiVersion`, `kind`, name, labels and data).
fn configmap(name: &str, labels: &[(&str, &str)], data: &[(&str, &str)]) -> Value {
    let labels: serde_json::Map<String, Value> =
        labels.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect();
    let data: serde_json::Map<String, Value> = data.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect();
    let mut v = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data});
    if !labels.is_empty() {
        v["metadata"]["labels"] = Value::Object(labels);
    }
    v
}

/// A ConfigMap labelled [`MINE`] plus `labels`.
fn my_cm(name: &str, labels: &[(&str, &str)]) -> Value {
    let mut all = vec![("suite", "behaviour")];
    all.extend_from_slice(labels);
    configmap(name, &all, &[("a", "1")])
}

fn create_cm(b: &mut Behaviour, body: &Value) -> Value {
    let req = cms(b).create(&pp(), body).unwrap();
    b.expect(req, 201)
}

fn get_cm(b: &mut Behaviour, name: &str) -> (u16, Value) {
    let (status, body) = b.send(cms(b).get(name, &GetParams::default()).unwrap());
    (status.as_u16(), body)
}

fn merge(b: &mut Behaviour, name: &str, patch: Value) -> (u16, Value) {
    let (status, body) = b.send(cms(b).patch(name, &PatchParams::default(), &Patch::Merge(&patch)).unwrap());
    (status.as_u16(), body)
}

/// A Deployment of two replicas. It is paused, so that on a real cluster the controller makes
/// no ReplicaSet and no Pods (the fake has no controller for Deployments).
fn deployment(name: &str, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": 2,
            "paused": true,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}},
        },
    })
}

fn create_deployment(b: &mut Behaviour, name: &str) -> Value {
    let body = deployment(name, json!([{"name": "nginx", "image": "nginx:1.27"}]));
    b.expect(deployments(b).create(&pp(), &body).unwrap(), 201)
}

/// Sends the write `attempt` builds (from a fresh read) until it does not conflict, and asserts
/// its status: on a real cluster a controller (the deployment controller writing status and
/// conditions) may change the object between the test's read and its write, which is then 409
/// Conflict. For writes whose conflict is not what the test is about; at most ten tries.
#[track_caller]
fn without_conflict(
    b: &mut Behaviour,
    status: u16,
    mut attempt: impl FnMut(&mut Behaviour) -> http::Request<Vec<u8>>,
) -> Value {
    for _ in 0..10 {
        let req = attempt(b);
        let what = format!("{} {}", req.method(), req.uri());
        let (got, body) = b.send(req);
        if got == http::StatusCode::CONFLICT && body["reason"] == "Conflict" {
            b.advance(Duration::from_millis(200));
            continue;
        }
        assert_eq!(got.as_u16(), status, "{what} ({}): {body:#}", b.target());
        return body;
    }
    panic!("ten conflicts in a row ({})", b.target());
}

/// A raw request, for what the core's builders will not build (broken bodies, wrong verbs).
fn raw(method: &str, path: &str, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> http::Request<Vec<u8>> {
    let mut r = http::Request::builder().method(method).uri(path).header("accept", "application/json");
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    r.body(body.into()).expect("a valid request")
}

/// The JSON at a `/`-separated pointer, as a string (empty when absent).
fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// `metadata.resourceVersion` as a number (resourceVersions are opaque strings; the fake's and
/// etcd's are numbers, which is what comparing them needs).
#[track_caller]
fn rv_of(v: &Value) -> u64 {
    let rv = str_at(v, "/metadata/resourceVersion");
    rv.parse().unwrap_or_else(|_| panic!("a numeric resourceVersion in {v:#}"))
}

/// The resourceVersion of a watch event's object.
fn event_rv<K: kube_proto::Resource>(object: &K) -> u64 {
    object.meta().resource_version.as_deref().unwrap_or_default().parse().unwrap()
}

/// The names of a list's items, in order.
fn names(list: &Value) -> Vec<String> {
    list["items"].as_array().into_iter().flatten().map(|i| str_at(i, "/metadata/name").to_owned()).collect()
}

/// The `(reason, field)` of each cause of a `Status` body.
fn causes(status: &Value) -> Vec<(String, String)> {
    status["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (str_at(c, "/reason").to_owned(), str_at(c, "/field").to_owned()))
        .collect()
}

/// Asserts a `Status` body's code and reason.
#[track_caller]
fn assert_status(body: &Value, code: u16, reason: &str) {
    assert_eq!(body["kind"], "Status", "{body:#}");
    assert_eq!(body["apiVersion"], "v1", "{body:#}");
    assert_eq!(body["code"], code, "{body:#}");
    assert_eq!(body["reason"], reason, "{body:#}");
}

fn list_mine(b: &mut Behaviour, lp: ListParams) -> Value {
    let lp = match lp.selectors.label_selector.clone() {
        Some(sel) => lp.labels(&format!("{MINE},{sel}")),
        None => lp.labels(MINE),
    };
    b.expect(cms(b).list(&lp).unwrap(), 200)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

// ---- Create, get and the common metadata ----

/// POST answers 201 with the stored object; GET returns the same object.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#api-verbs>
fn create_answers_201_with_the_stored_object_and_get_returns_it(b: &mut Behaviour) {
    let created = create_cm(b, &configmap("cm1", &[("app", "web")], &[("a", "1")]));
    assert_eq!(created["kind"], "ConfigMap");
    assert_eq!(created["apiVersion"], "v1");
    assert_eq!(str_at(&created, "/metadata/namespace"), b.ns());
    assert_eq!(created["data"], json!({"a": "1"}));
    let (status, got) = get_cm(b, "cm1");
    assert_eq!(status, 200);
    for field in ["/metadata/uid", "/metadata/resourceVersion", "/metadata/creationTimestamp"] {
        assert!(!str_at(&created, field).is_empty(), "{field} is set on create");
        assert_eq!(str_at(&got, field), str_at(&created, field), "{field}");
    }
    assert_eq!(got["data"], created["data"]);
    assert_eq!(got["metadata"]["labels"], json!({"app": "web"}));
}

/// Creating a name that exists is 409 with reason AlreadyExists and the object's name and kind.
/// <https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/>
fn create_of_an_existing_name_is_409_already_exists(b: &mut Behaviour) {
    create_cm(b, &configmap("cm1", &[], &[]));
    let body = b.expect(cms(b).create(&pp(), &configmap("cm1", &[], &[])).unwrap(), 409);
    assert_status(&body, 409, "AlreadyExists");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["details"]["name"], "cm1");
    assert_eq!(body["details"]["kind"], "configmaps");
}

/// GET of a missing object is 404 with a `Status` naming it (not an empty body).
/// <https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/status/>
fn get_of_a_missing_object_is_404_not_found_with_a_status(b: &mut Behaviour) {
    let (status, body) = get_cm(b, "nope");
    assert_eq!(status, 404);
    assert_status(&body, 404, "NotFound");
    assert_eq!(body["details"]["name"], "nope");
    assert_eq!(body["details"]["kind"], "configmaps");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("nope")));
}

/// Every write gets a resourceVersion from one counter shared by all kinds, so it increases
/// across kinds, and a LIST's resourceVersion is not older than any write before it.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions>
fn resource_version_is_one_global_increasing_counter_across_kinds(b: &mut Behaviour) {
    let cm = create_cm(b, &configmap("cm1", &[], &[]));
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"}, "stringData": {"k": "v"}});
    let secret = b.expect(Request::namespaced::<Secret>(b.ns()).create(&pp(), &secret).unwrap(), 201);
    let (_, cm2) = merge(b, "cm1", json!({"data": {"b": "2"}}));
    let dep = create_deployment(b, "web");
    let rvs = [rv_of(&cm), rv_of(&secret), rv_of(&cm2), rv_of(&dep)];
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "resourceVersions increase across kinds: {rvs:?}");
    let list = b.expect(cms(b).list(&ListParams::default()).unwrap(), 200);
    assert!(
        rv_of(&list) >= rv_of(&dep),
        "a ConfigMap LIST is at the global resourceVersion, past the Deployment's write"
    );
}

/// The server sets uid, creationTimestamp and (for kinds with a spec) generation 1 on create;
/// a recreated name gets a new uid.
/// <https://kubernetes.io/docs/concepts/overview/working-with-objects/names/#uids>
fn create_sets_uid_creation_timestamp_and_generation_1(b: &mut Behaviour) {
    let first = create_deployment(b, "a");
    let second = create_deployment(b, "b");
    assert_eq!(first["metadata"]["generation"], 1);
    assert!(!str_at(&first, "/metadata/uid").is_empty());
    assert_ne!(str_at(&first, "/metadata/uid"), str_at(&second, "/metadata/uid"));
    let ts = str_at(&first, "/metadata/creationTimestamp");
    assert!(ts.parse::<k8s_openapi::jiff::Timestamp>().is_ok(), "an RFC 3339 timestamp: {ts}");
    b.expect(deployments(b).delete("a", &DeleteParams::default()).unwrap(), 200);
    let again = create_deployment(b, "a");
    assert_ne!(str_at(&again, "/metadata/uid"), str_at(&first, "/metadata/uid"), "a new object, a new uid");
}

/// `metadata.generation` counts changes of the desired state: a spec change bumps it, a
/// metadata-only change or a status write does not (though both get a new resourceVersion).
/// <https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/object-meta/>
fn generation_bumps_on_spec_changes_only(b: &mut Behaviour) {
    let created = create_deployment(b, "web");
    let deps = deployments(b);
    let patch = |p: Value| deps.patch("web", &PatchParams::default(), &Patch::Merge(p)).unwrap();
    let spec = b.expect(patch(json!({"spec": {"replicas": 3}})), 200);
    assert_eq!(spec["metadata"]["generation"], 2, "a spec change");
    let labels = b.expect(patch(json!({"metadata": {"labels": {"x": "y"}}})), 200);
    assert_eq!(labels["metadata"]["generation"], 2, "a metadata-only change");
    assert!(rv_of(&labels) > rv_of(&spec));
    let status_patch = json!({"status": {"observedGeneration": 2}});
    let req = deps.patch_subresource("status", "web", &PatchParams::default(), &Patch::Merge(status_patch));
    let status = b.expect(req.unwrap(), 200);
    assert_eq!(status["metadata"]["generation"], 2, "a status write");
    assert_eq!(status["status"]["observedGeneration"], 2);
    assert!(rv_of(&status) > rv_of(&labels) && rv_of(&labels) > rv_of(&created));
}

// ---- Update ----

/// PUT with a `metadata.resourceVersion` is conditional: it succeeds with the current one
/// (and the object gets a newer one) and is 409 Conflict with a stale one.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions>
fn replace_with_a_stale_resource_version_is_409_conflict(b: &mut Behaviour) {
    let mut cm = create_cm(b, &configmap("cm1", &[], &[("a", "1")]));
    cm["data"]["a"] = json!("2");
    let replaced = b.expect(cms(b).replace("cm1", &pp(), &cm).unwrap(), 200);
    assert_eq!(replaced["data"]["a"], "2");
    assert!(rv_of(&replaced) > rv_of(&cm));
    cm["data"]["a"] = json!("stale");
    let body = b.expect(cms(b).replace("cm1", &pp(), &cm).unwrap(), 409);
    assert_status(&body, 409, "Conflict");
    assert_eq!(body["details"]["name"], "cm1");
    assert_eq!(get_cm(b, "cm1").1["data"]["a"], "2", "the stale write changed nothing");
}

/// PUT without `metadata.resourceVersion` is an unconditional update.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions>
fn replace_without_resource_version_is_unconditional(b: &mut Behaviour) {
    create_cm(b, &configmap("cm1", &[], &[("a", "1")]));
    merge(b, "cm1", json!({"data": {"a": "2"}}));
    let body = configmap("cm1", &[], &[("a", "mine")]);
    let replaced = b.expect(cms(b).replace("cm1", &pp(), &body).unwrap(), 200);
    assert_eq!(replaced["data"], json!({"a": "mine"}));
    let missing = b.expect(cms(b).replace("nope", &pp(), &configmap("nope", &[], &[])).unwrap(), 404);
    assert_status(&missing, 404, "NotFound");
}

// ---- Patch ----

/// A JSON merge patch merges maps, replaces other values and deletes with `null`.
/// <https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/#use-a-json-merge-patch-to-update-a-deployment>
fn merge_patch_merges_maps_and_null_deletes(b: &mut Behaviour) {
    create_cm(b, &configmap("cm1", &[("app", "web")], &[("a", "1"), ("b", "2")]));
    let (status, patched) = merge(b, "cm1", json!({"metadata": {"labels": {"x": "y"}}, "data": {"b": null, "c": "3"}}));
    assert_eq!(status, 200);
    assert_eq!(patched["metadata"]["labels"], json!({"app": "web", "x": "y"}));
    assert_eq!(patched["data"], json!({"a": "1", "c": "3"}));
    let (status, body) = merge(b, "nope", json!({"data": {}}));
    assert_eq!(status, 404);
    assert_status(&body, 404, "NotFound");
}

/// A JSON patch applies its operations in order, all or nothing: a failing `test` (or a
/// `remove` of a missing path) is 422 Invalid and changes nothing.
/// <https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/#use-a-json-patch-to-update-a-deployment>
fn json_patch_applies_its_operations_and_a_failed_test_is_422(b: &mut Behaviour) {
    create_cm(b, &configmap("cm1", &[], &[("a", "1"), ("e", "5")]));
    let cms = cms(b);
    let json_patch = |ops: Value| cms.patch("cm1", &PatchParams::default(), &Patch::Json(ops)).unwrap();
    let ops = json!([
        {"op": "replace", "path": "/data/a", "value": "10"},
        {"op": "add", "path": "/data/f", "value": "6"},
        {"op": "remove", "path": "/data/e"},
    ]);
    let patched = b.expect(json_patch(ops), 200);
    assert_eq!(patched["data"], json!({"a": "10", "f": "6"}));
    let failing =
        json!([{"op": "test", "path": "/data/a", "value": "999"}, {"op": "replace", "path": "/data/a", "value": "11"}]);
    let body = b.expect(json_patch(failing), 422);
    assert_status(&body, 422, "Invalid");
    let missing = json!([{"op": "remove", "path": "/data/zzz"}]);
    let body = b.expect(json_patch(missing), 422);
    assert_status(&body, 422, "Invalid");
    let (_, now) = get_cm(b, "cm1");
    assert_eq!(now["data"]["a"], "10", "the failed patches changed nothing");
    assert_eq!(rv_of(&now), rv_of(&patched));
}

/// A strategic merge patch merges a Deployment's containers by name (where a merge patch
/// replaces the whole list).
/// <https://kubernetes.io/docs/tasks/manage-kubernetes-objects/update-api-object-kubectl-patch/#use-a-strategic-merge-patch-to-update-a-deployment>
fn strategic_merge_patch_merges_a_deployment_s_containers_by_name(b: &mut Behaviour) {
    let containers = json!([{"name": "a", "image": "img:1"}, {"name": "b", "image": "img:2"}]);
    b.expect(deployments(b).create(&pp(), &deployment("web", containers)).unwrap(), 201);
    let smp = json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "img:3"}, {"name": "c", "image": "img:4"}]}}}});
    let req = deployments(b).patch("web", &PatchParams::default(), &Patch::Strategic(&smp)).unwrap();
    let patched = b.expect(req, 200);
    let got: Vec<(&str, &str)> = patched["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (str_at(c, "/name"), str_at(c, "/image")))
        .collect();
    assert_eq!(got, [("a", "img:1"), ("b", "img:3"), ("c", "img:4")]);
    let mp = json!({"spec": {"template": {"spec": {"containers": [{"name": "d", "image": "img:5"}]}}}});
    let replaced = b.expect(deployments(b).patch("web", &PatchParams::default(), &Patch::Merge(&mp)).unwrap(), 200);
    assert_eq!(
        replaced["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(),
        1,
        "merge patch replaces lists"
    );
}

/// Custom resources do not support strategic merge patch: 415 Unsupported Media Type.
/// <https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#advanced-topics>
fn strategic_merge_patch_on_a_custom_resource_is_415(b: &mut Behaviour) {
    let widgets = create_widget_crd(b);
    b.expect(widgets.create(&pp(), &widget(b, "w1", 1)).unwrap(), 201);
    let req = widgets.patch("w1", &PatchParams::default(), &Patch::Strategic(json!({"spec": {"replicas": 2}})));
    let body = b.expect(req.unwrap(), 415);
    assert_status(&body, 415, "UnsupportedMediaType");
    let req = widgets.patch("w1", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 2}})));
    assert_eq!(b.expect(req.unwrap(), 200)["spec"]["replicas"], 2, "merge patch works");
}

// ---- Server-side apply ----

/// Server-side apply creates a missing object (201), updates it (200, newer resourceVersion), and
/// applying the same configuration again is a no-op that keeps the resourceVersion.
/// <https://kubernetes.io/docs/reference/using-api/server-side-apply/>
fn server_side_apply_creates_updates_and_an_identical_apply_is_a_no_op(b: &mut Behaviour) {
    let cms = cms(b);
    let apply = |body: &Value| cms.patch("ssa", &PatchParams::apply("a"), &Patch::Apply(body)).unwrap();
    let v1 = configmap("ssa", &[("owner", "a")], &[("key", "value1")]);
    let created = b.expect(apply(&v1), 201);
    let entry = &created["metadata"]["managedFields"][0];
    assert_eq!((entry["manager"].as_str(), entry["operation"].as_str()), (Some("a"), Some("Apply")));
    let v2 = configmap("ssa", &[("owner", "a")], &[("key", "value2")]);
    b.advance(s(1));
    let updated = b.expect(apply(&v2), 200);
    assert_eq!(updated["data"]["key"], "value2");
    assert!(rv_of(&updated) > rv_of(&created));
    b.advance(s(1));
    let again = b.expect(apply(&v2), 200);
    assert_eq!(rv_of(&again), rv_of(&updated), "an identical apply changes nothing");
    let no_manager = raw(
        "PATCH",
        &format!("/api/v1/namespaces/{}/configmaps/ssa", b.ns()),
        Some("application/apply-patch+yaml"),
        v2.to_string(),
    );
    let body = b.expect(no_manager, 422);
    assert_status(&body, 422, "Invalid");
    assert_eq!(causes(&body), [("FieldValueRequired".to_owned(), "fieldManager".to_owned())]);
}

/// Applying a field another manager owns with a different value is 409 Conflict naming the field;
/// `force=true` takes the field over.
/// <https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts>
fn server_side_apply_conflicts_are_409_and_force_takes_ownership(b: &mut Behaviour) {
    let from_a = configmap("ssa", &[], &[("shared", "from-a")]);
    b.expect(cms(b).patch("ssa", &PatchParams::apply("a"), &Patch::Apply(&from_a)).unwrap(), 201);
    let from_b = configmap("ssa", &[], &[("shared", "from-b"), ("other", "b")]);
    let body = b.expect(cms(b).patch("ssa", &PatchParams::apply("b"), &Patch::Apply(&from_b)).unwrap(), 409);
    assert_status(&body, 409, "Conflict");
    assert_eq!(causes(&body), [("FieldManagerConflict".to_owned(), ".data.shared".to_owned())]);
    let forced = b.expect(cms(b).patch("ssa", &PatchParams::apply("b").force(), &Patch::Apply(&from_b)).unwrap(), 200);
    assert_eq!(forced["data"], json!({"shared": "from-b", "other": "b"}));
    let managers: Vec<&str> =
        forced["metadata"]["managedFields"].as_array().unwrap().iter().filter_map(|e| e["manager"].as_str()).collect();
    assert!(managers.contains(&"b"), "{managers:?}");
    let force_merge = raw(
        "PATCH",
        &format!("/api/v1/namespaces/{}/configmaps/ssa?force=true", b.ns()),
        Some("application/merge-patch+json"),
        "{}",
    );
    assert_status(&b.expect(force_merge, 422), 422, "Invalid");
}

// ---- Delete, finalizers, garbage collection ----

/// DELETE answers a `Status` (Success) when the object is gone at once, and the object itself
/// (with `deletionTimestamp`) when its deletion is pending.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-deletion>
fn delete_answers_a_status_when_gone_and_the_object_when_pending(b: &mut Behaviour) {
    let cm = create_cm(b, &configmap("gone", &[], &[]));
    let body = b.expect(cms(b).delete("gone", &DeleteParams::default()).unwrap(), 200);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["status"], "Success");
    assert_eq!(body["details"]["name"], "gone");
    assert_eq!(body["details"]["uid"], cm["metadata"]["uid"]);
    assert_eq!(get_cm(b, "gone").0, 404);
    assert_eq!(b.expect(cms(b).delete("gone", &DeleteParams::default()).unwrap(), 404)["reason"], "NotFound");
    let mut held = configmap("held", &[], &[]);
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    create_cm(b, &held);
    let body = b.expect(cms(b).delete("held", &DeleteParams::default()).unwrap(), 200);
    assert_eq!(body["kind"], "ConfigMap");
    assert!(!str_at(&body, "/metadata/deletionTimestamp").is_empty());
}

/// A dry-run create or delete is validated and answered as usual but stores nothing.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run>
fn dry_run_create_and_delete_store_nothing(b: &mut Behaviour) {
    let dry = PostParams { dry_run: true, ..pp() };
    let would = b.expect(cms(b).create(&dry, &configmap("dry", &[], &[])).unwrap(), 201);
    assert!(!str_at(&would, "/metadata/uid").is_empty());
    assert_eq!(get_cm(b, "dry").0, 404);
    create_cm(b, &configmap("kept", &[], &[]));
    let body = b.expect(cms(b).delete("kept", &DeleteParams::default().dry_run()).unwrap(), 200);
    assert_eq!(body["status"], "Success");
    assert_eq!(get_cm(b, "kept").0, 200);
}

/// A ConfigMap held by the finalizer `example.com/hold` (which nothing removes; on a real
/// cluster the backend strips it after the test, so that the namespace can go).
fn held_configmap(b: &mut Behaviour, name: &str) -> Value {
    let mut body = my_cm(name, &[]);
    body["metadata"]["finalizers"] = json!(["example.com/hold"]);
    create_cm(b, &body)
}

/// Deleting an object with finalizers only marks it: `deletionTimestamp` is set, the object
/// stays readable, and watchers see MODIFIED.
/// <https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/#how-finalizers-work>
fn delete_with_finalizers_sets_deletion_timestamp_and_watchers_see_modified(b: &mut Behaviour) {
    let created = held_configmap(b, "fin1");
    let from = created["metadata"]["resourceVersion"].as_str().unwrap();
    // Only fin1: a real cluster's controllers write ConfigMaps of their own in the namespace.
    let wp = WatchParams::default().disable_bookmarks().fields("metadata.name=fin1");
    let mut watch = b.open_watch(cms(b).watch(&wp, from).unwrap());
    let deleted = b.expect(cms(b).delete("fin1", &DeleteParams::default()).unwrap(), 200);
    assert_eq!(deleted["metadata"]["finalizers"], json!(["example.com/hold"]));
    assert!(!str_at(&deleted, "/metadata/deletionTimestamp").is_empty());
    let events = b.events::<ConfigMap>(&mut watch);
    match events.as_slice() {
        [WatchEvent::Modified(cm)] => assert!(cm.metadata.deletion_timestamp.is_some()),
        other => panic!("expected one MODIFIED: {other:?}"),
    }
    let (status, got) = get_cm(b, "fin1");
    assert_eq!(status, 200);
    assert_eq!(got["metadata"]["deletionTimestamp"], deleted["metadata"]["deletionTimestamp"]);
}

/// DELETE of an object that is already terminating answers the same object, unchanged.
/// <https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/#how-finalizers-work>
fn delete_again_while_terminating_returns_the_same_object(b: &mut Behaviour) {
    held_configmap(b, "fin1");
    let first = b.expect(cms(b).delete("fin1", &DeleteParams::default()).unwrap(), 200);
    b.advance(s(5));
    let again = b.expect(cms(b).delete("fin1", &DeleteParams::default()).unwrap(), 200);
    assert_eq!(again["kind"], "ConfigMap");
    assert_eq!(rv_of(&again), rv_of(&first));
    assert_eq!(again["metadata"]["deletionTimestamp"], first["metadata"]["deletionTimestamp"]);
}

/// While an object is terminating, no finalizer may be added (422, on `metadata.finalizers`),
/// but other updates are allowed.
/// <https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/>
fn adding_a_finalizer_while_terminating_is_422_but_other_updates_are_allowed(b: &mut Behaviour) {
    held_configmap(b, "fin1");
    b.expect(cms(b).delete("fin1", &DeleteParams::default()).unwrap(), 200);
    let (status, body) =
        merge(b, "fin1", json!({"metadata": {"finalizers": ["example.com/hold", "example.com/another"]}}));
    assert_eq!(status, 422);
    assert_status(&body, 422, "Invalid");
    // (kube-apiserver v1.36 reports this cause twice.)
    let found = causes(&body);
    assert!(!found.is_empty(), "{body:#}");
    assert!(
        found.iter().all(|c| *c == ("FieldValueForbidden".to_owned(), "metadata.finalizers".to_owned())),
        "{found:?}"
    );
    let (status, body) = merge(b, "fin1", json!({"data": {"b": "2"}}));
    assert_eq!(status, 200);
    assert_eq!(body["data"]["b"], "2");
}

/// Removing the last finalizer of a terminating object deletes it in the same step: watchers
/// see only DELETED (still showing the finalizer, at a newer resourceVersion), while the PATCH
/// answers the object without finalizers at its old resourceVersion.
/// <https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/#how-finalizers-work>
fn removing_the_last_finalizer_deletes_the_object_with_only_a_deleted_event(b: &mut Behaviour) {
    held_configmap(b, "fin1");
    let terminating = b.expect(cms(b).delete("fin1", &DeleteParams::default()).unwrap(), 200);
    let wp = WatchParams::default().disable_bookmarks().fields("metadata.name=fin1");
    let mut watch = b.open_watch(cms(b).watch(&wp, &rv_of(&terminating).to_string()).unwrap());
    let (status, answer) = merge(b, "fin1", json!({"metadata": {"finalizers": null}}));
    assert_eq!(status, 200);
    assert!(answer["metadata"]["finalizers"].is_null(), "{answer:#}");
    assert_eq!(rv_of(&answer), rv_of(&terminating), "the PATCH answer keeps the old resourceVersion");
    let events = b.events::<ConfigMap>(&mut watch);
    match events.as_slice() {
        [WatchEvent::Deleted(cm)] => {
            assert_eq!(cm.metadata.finalizers.as_deref(), Some(&["example.com/hold".to_owned()][..]));
            assert!(event_rv(cm) > rv_of(&terminating), "DELETED carries the deletion's resourceVersion");
        }
        other => panic!("expected only DELETED: {other:?}"),
    }
    assert_eq!(get_cm(b, "fin1").0, 404);
}

/// `propagationPolicy=Foreground` answers the object, held by the `foregroundDeletion`
/// finalizer until its dependents are gone (here there are none, so it goes soon after).
/// <https://kubernetes.io/docs/concepts/architecture/garbage-collection/#foreground-deletion>
fn foreground_deletion_answers_the_object_with_the_foreground_deletion_finalizer(b: &mut Behaviour) {
    create_cm(b, &configmap("del3", &[], &[]));
    let body = b.expect(cms(b).delete("del3", &DeleteParams::foreground()).unwrap(), 200);
    assert_eq!(body["kind"], "ConfigMap");
    assert_eq!(body["metadata"]["finalizers"], json!(["foregroundDeletion"]));
    assert!(!str_at(&body, "/metadata/deletionTimestamp").is_empty());
    b.eventually(s(30), |b| get_cm(b, "del3").0 == 404);
}

/// `propagationPolicy=Orphan` answers the object held by the `orphan` finalizer until the
/// garbage collector has orphaned its dependents; `Background` (the default) answers a Status.
/// <https://kubernetes.io/docs/concepts/architecture/garbage-collection/#orphaned-dependents>
fn orphan_deletion_answers_the_object_with_the_orphan_finalizer_and_background_a_status(b: &mut Behaviour) {
    create_cm(b, &configmap("o", &[], &[]));
    let body = b.expect(cms(b).delete("o", &DeleteParams::orphan()).unwrap(), 200);
    assert_eq!(body["metadata"]["finalizers"], json!(["orphan"]));
    b.eventually(s(30), |b| get_cm(b, "o").0 == 404);
    create_cm(b, &configmap("b", &[], &[]));
    let body = b.expect(cms(b).delete("b", &DeleteParams::background()).unwrap(), 200);
    assert_eq!(body["kind"], "Status");
}

/// Delete preconditions: a uid or resourceVersion that does not match is 409 Conflict.
/// <https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/delete-options/>
fn delete_preconditions_that_do_not_match_are_409_conflict(b: &mut Behaviour) {
    let cm = create_cm(b, &configmap("del2", &[], &[]));
    let (uid, rv) = (str_at(&cm, "/metadata/uid").to_owned(), rv_of(&cm).to_string());
    let wrong_uid = DeleteParams::default().precondition_uid("00000000-0000-0000-0000-000000000000");
    assert_status(&b.expect(cms(b).delete("del2", &wrong_uid).unwrap(), 409), 409, "Conflict");
    let wrong_rv = DeleteParams::default().precondition_resource_version("1");
    assert_status(&b.expect(cms(b).delete("del2", &wrong_rv).unwrap(), 409), 409, "Conflict");
    let right = DeleteParams::default().precondition_uid(&uid).precondition_resource_version(&rv);
    assert_eq!(b.expect(cms(b).delete("del2", &right).unwrap(), 200)["status"], "Success");
}

/// DELETE on a collection deletes what its selector matches and answers the deleted objects as
/// a list; when nothing matches, an empty list.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#api-verbs>
fn deletecollection_deletes_what_the_label_selector_matches_and_returns_the_deleted_list(b: &mut Behaviour) {
    for i in 0..3 {
        create_cm(b, &my_cm(&format!("coll{i}"), &[("batch", "x")]));
    }
    create_cm(b, &my_cm("keep", &[("batch", "y")]));
    let req = cms(b).delete_collection(&DeleteParams::default(), &ListParams::default().labels("batch=x")).unwrap();
    let body = b.expect(req, 200);
    assert_eq!(body["kind"], "ConfigMapList");
    assert_eq!(sorted(names(&body)), strs(&["coll0", "coll1", "coll2"]));
    assert_eq!(names(&list_mine(b, ListParams::default())), strs(&["keep"]));
    let req = cms(b).delete_collection(&DeleteParams::default(), &ListParams::default().labels("batch=x")).unwrap();
    assert_eq!(b.expect(req, 200)["items"], json!([]));
}

/// Deleting a scheduled Pod is graceful (it stays, terminating, for its grace period), and a
/// second DELETE with `gracePeriodSeconds=0` removes it at once; an unscheduled Pod goes at once.
/// <https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination>
fn deleting_a_scheduled_pod_is_graceful_and_grace_period_0_removes_it(b: &mut Behaviour) {
    let pods = Request::namespaced::<Pod>(b.ns());
    // Bound to a node that does not exist (so no kubelet runs it), or left to a scheduler that
    // does not exist (so a real cluster's scheduler does not bind it).
    let pod = |name: &str, node: Option<&str>| {
        let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                           "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}});
        match node {
            Some(n) => p["spec"]["nodeName"] = json!(n),
            None => p["spec"]["schedulerName"] = json!("kit-no-such-scheduler"),
        }
        p
    };
    b.expect(pods.create(&pp(), &pod("bound", Some("kit-no-such-node"))).unwrap(), 201);
    b.expect(pods.create(&pp(), &pod("free", None)).unwrap(), 201);
    let body = b.expect(pods.delete("bound", &DeleteParams::default()).unwrap(), 200);
    assert_eq!(body["kind"], "Pod");
    assert_eq!(body["metadata"]["deletionGracePeriodSeconds"], 30);
    b.advance(s(1));
    let (status, _) = b.send(pods.get("bound", &GetParams::default()).unwrap());
    assert_eq!(status, 200, "still there, terminating");
    b.advance(s(1));
    let body = b.expect(pods.delete("bound", &DeleteParams::default().grace_period(0)).unwrap(), 200);
    assert_eq!(body["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(b.send(pods.get("bound", &GetParams::default()).unwrap()).0, 404);
    let body = b.expect(pods.delete("free", &DeleteParams::default()).unwrap(), 200);
    assert_eq!(body["kind"], "Pod", "a pod delete answers the pod");
    assert_eq!(b.send(pods.get("free", &GetParams::default()).unwrap()).0, 404);
}

// ---- Namespaces ----

/// Creating into a namespace that does not exist is 404 about the namespace.
/// <https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/>
fn create_in_a_missing_namespace_is_404_about_the_namespace(b: &mut Behaviour) {
    // A name no one makes: the test's namespace's, plus a suffix.
    let missing = format!("{}-none", b.ns());
    let req = Request::namespaced::<ConfigMap>(&missing).create(&pp(), &configmap("x", &[], &[])).unwrap();
    let body = b.expect(req, 404);
    assert_status(&body, 404, "NotFound");
    assert_eq!(body["details"]["name"], missing.as_str());
    assert_eq!(body["details"]["kind"], "namespaces");
}

/// Deleting a namespace marks it Terminating; the namespace controller deletes its contents, and
/// then the namespace itself.
/// <https://kubernetes.io/docs/tasks/administer-cluster/namespaces/#deleting-a-namespace>
fn deleting_a_namespace_deletes_its_contents_then_itself(b: &mut Behaviour) {
    create_cm(b, &configmap("inside", &[], &[]));
    let ns = b.ns().to_owned();
    let body = b.expect(Request::all::<Namespace>().delete(&ns, &DeleteParams::default()).unwrap(), 200);
    assert_eq!(body["kind"], "Namespace");
    assert_eq!(body["status"]["phase"], "Terminating");
    assert!(!str_at(&body, "/metadata/deletionTimestamp").is_empty());
    b.eventually(s(60), |b| {
        let gone = b.send(Request::all::<Namespace>().get(&ns, &GetParams::default()).unwrap()).0 == 404;
        gone && get_cm(b, "inside").0 == 404
    });
}

/// While a namespace is terminating, creating in it is 403 Forbidden with the cause
/// NamespaceTerminating; once whatever held it is gone, the namespace goes.
/// <https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/>
fn create_in_a_terminating_namespace_is_403_namespace_terminating(b: &mut Behaviour) {
    held_configmap(b, "holder");
    let ns = b.ns().to_owned();
    b.expect(Request::all::<Namespace>().delete(&ns, &DeleteParams::default()).unwrap(), 200);
    let body = b.expect(cms(b).create(&pp(), &configmap("late", &[], &[])).unwrap(), 403);
    assert_status(&body, 403, "Forbidden");
    assert_eq!(causes(&body), [("NamespaceTerminating".to_owned(), "metadata.namespace".to_owned())]);
    let got = b.send(Request::all::<Namespace>().get(&ns, &GetParams::default()).unwrap()).1;
    assert_eq!(got["status"]["phase"], "Terminating");
    let (status, _) = merge(b, "holder", json!({"metadata": {"finalizers": null}}));
    assert_eq!(status, 200);
    b.eventually(s(60), |b| b.send(Request::all::<Namespace>().get(&ns, &GetParams::default()).unwrap()).0 == 404);
}

// ---- Subresources ----

/// With a status subresource, writes to the main resource ignore `status`.
/// <https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource>
fn writes_to_the_main_resource_ignore_status(b: &mut Behaviour) {
    create_deployment(b, "web");
    let req = deployments(b).patch("web", &PatchParams::default(), &Patch::Merge(json!({"status": {"replicas": 42}})));
    let body = b.expect(req.unwrap(), 200);
    assert_ne!(body["status"]["replicas"], 42);
    let body = without_conflict(b, 200, |b| {
        let mut whole = b.expect(deployments(b).get("web", &GetParams::default()).unwrap(), 200);
        whole["status"] = json!({"replicas": 43});
        whole["spec"]["replicas"] = json!(5);
        deployments(b).replace("web", &pp(), &whole).unwrap()
    });
    assert_eq!(body["spec"]["replicas"], 5);
    assert_ne!(body["status"]["replicas"], 43);
}

/// Writes to the status subresource change only `status`: a spec change in them is ignored.
/// <https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource>
fn writes_to_the_status_subresource_ignore_spec(b: &mut Behaviour) {
    create_deployment(b, "web");
    let patch = json!({"spec": {"replicas": 9}, "status": {"conditions": [{"type": "Example", "status": "True"}]}});
    let req = deployments(b).patch_subresource("status", "web", &PatchParams::default(), &Patch::Merge(patch));
    let body = b.expect(req.unwrap(), 200);
    assert_eq!(body["kind"], "Deployment", "/status answers the whole object");
    assert_eq!(body["spec"]["replicas"], 2);
    assert_eq!(body["status"]["conditions"][0]["type"], "Example");
    assert_eq!(body["metadata"]["generation"], 1);
    // The deployment controller of a real cluster may rewrite the status since, but it keeps
    // conditions it does not own.
    let got = b.expect(deployments(b).get_subresource("status", "web").unwrap(), 200);
    assert_eq!(got["spec"]["replicas"], 2);
    let conditions = got["status"]["conditions"].as_array().cloned().unwrap_or_default();
    assert!(conditions.iter().any(|c| c["type"] == "Example" && c["status"] == "True"), "{got:#}");
}

/// The scale subresource reads and writes a Deployment's replicas as an `autoscaling/v1`
/// Scale; a PUT with a stale resourceVersion is 409; at 0 replicas the Scale's `spec` is empty.
/// <https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#scale-subresource>
fn the_scale_subresource_reads_and_writes_a_deployment_s_replicas(b: &mut Behaviour) {
    create_deployment(b, "web");
    let deps = deployments(b);
    let scale = b.expect(deps.get_subresource("scale", "web").unwrap(), 200);
    assert_eq!((scale["kind"].as_str(), scale["apiVersion"].as_str()), (Some("Scale"), Some("autoscaling/v1")));
    assert_eq!(scale_replicas(&scale), 2);
    assert_eq!(scale["status"]["selector"], "app=web");
    let req = deps.patch_subresource(
        "scale",
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    );
    let patched = b.expect(req.unwrap(), 200);
    assert_eq!((patched["kind"].as_str(), patched["spec"]["replicas"].as_i64()), (Some("Scale"), Some(3)));
    let dep = b.expect(deps.get("web", &GetParams::default()).unwrap(), 200);
    assert_eq!(dep["spec"]["replicas"], 3);
    let ns = b.ns().to_owned();
    let put = |rv: &Value, replicas: i64| {
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
               "metadata": {"name": "web", "namespace": ns, "resourceVersion": rv},
               "spec": {"replicas": replicas}})
    };
    // At the current resourceVersion (re-read when the deployment controller's status write
    // got in between).
    let replaced = without_conflict(b, 200, |b| {
        let current = b.expect(deps.get_subresource("scale", "web").unwrap(), 200);
        deps.replace_subresource("scale", "web", &pp(), &put(&current["metadata"]["resourceVersion"], 1)).unwrap()
    });
    assert_eq!(replaced["spec"]["replicas"], 1);
    // At the merge patch's resourceVersion, which the PUT made stale.
    let stale = put(&patched["metadata"]["resourceVersion"], 4);
    let body = b.expect(deps.replace_subresource("scale", "web", &pp(), &stale).unwrap(), 409);
    assert_status(&body, 409, "Conflict");
    let dep = b.expect(deps.get("web", &GetParams::default()).unwrap(), 200);
    assert_eq!(dep["spec"]["replicas"], 1);
    // `spec.replicas` of an `autoscaling/v1` Scale is an int32 with `omitempty`: at 0 the server
    // answers `"spec": {}`, which a client reads as 0.
    let zero = Patch::Merge(json!({"spec": {"replicas": 0}}));
    let scaled_down = b.expect(deps.patch_subresource("scale", "web", &PatchParams::default(), &zero).unwrap(), 200);
    assert_eq!(scaled_down["spec"], json!({}), "{scaled_down:#}");
    assert_eq!(scale_replicas(&scaled_down), 0);
    let scale = b.expect(deps.get_subresource("scale", "web").unwrap(), 200);
    assert_eq!(scale_replicas(&scale), 0, "{scale:#}");
    assert_eq!(b.expect(deps.get("web", &GetParams::default()).unwrap(), 200)["spec"]["replicas"], 0);
}

/// A Scale's `spec.replicas`, absent meaning 0 (`omitempty` on an int32 in `autoscaling/v1`).
#[track_caller]
fn scale_replicas(scale: &Value) -> i64 {
    match scale.pointer("/spec/replicas") {
        None => 0,
        Some(r) => r.as_i64().unwrap_or_else(|| panic!("spec.replicas is not an integer: {scale:#}")),
    }
}

// ---- Selectors ----

fn selector_fixture(b: &mut Behaviour) {
    create_cm(b, &my_cm("cm1", &[("app", "web"), ("tier", "front")]));
    create_cm(b, &my_cm("cm2", &[("app", "web"), ("tier", "back")]));
    create_cm(b, &my_cm("cm3", &[("app", "db")]));
    create_cm(b, &my_cm("cm4", &[("app", "cache"), ("tier", "back")]));
    create_cm(b, &my_cm("cm5", &[]));
}

/// Label selectors: equality (`=`, `==`, `!=`), sets (`in`, `notin`) and existence (`key`,
/// `!key`), comma-separated as AND; a malformed selector is 400.
/// <https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors>
fn label_selectors_support_equality_set_and_existence_requirements(b: &mut Behaviour) {
    selector_fixture(b);
    let cases: &[(&str, &[&str])] = &[
        ("app=web", &["cm1", "cm2"]),
        ("app==web", &["cm1", "cm2"]),
        ("app!=web", &["cm3", "cm4", "cm5"]),
        ("app in (web,cache),tier!=front", &["cm2", "cm4"]),
        ("app notin (web,db)", &["cm4", "cm5"]),
        ("tier", &["cm1", "cm2", "cm4"]),
        ("!tier", &["cm3", "cm5"]),
        ("tier,!app", &[]),
    ];
    for (selector, expected) in cases {
        let list = list_mine(b, ListParams::default().labels(selector));
        assert_eq!(sorted(names(&list)), strs(expected), "labelSelector {selector}");
    }
    let req = raw("GET", &format!("/api/v1/namespaces/{}/configmaps?labelSelector=app%20in%20web", b.ns()), None, "");
    assert_status(&b.expect(req, 400), 400, "BadRequest");
}

/// Field selectors: `metadata.name` and `metadata.namespace` with `=`, `==` and `!=` work for
/// every kind; other fields only where the kind supports them, else 400.
/// <https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/>
fn field_selectors_support_metadata_name_and_namespace(b: &mut Behaviour) {
    selector_fixture(b);
    let list = list_mine(b, ListParams::default().fields("metadata.name=cm1"));
    assert_eq!(names(&list), strs(&["cm1"]));
    let list = list_mine(b, ListParams::default().fields("metadata.name!=cm1,metadata.name!=cm5"));
    assert_eq!(sorted(names(&list)), strs(&["cm2", "cm3", "cm4"]));
    let everywhere = ListParams::default().labels(MINE).fields(&format!("metadata.namespace=={}", b.ns()));
    let list = b.expect(Request::all::<ConfigMap>().list(&everywhere).unwrap(), 200);
    assert_eq!(names(&list).len(), 5);
    // A namespace no one makes.
    let elsewhere = ListParams::default().labels(MINE).fields(&format!("metadata.namespace={}-none", b.ns()));
    assert_eq!(names(&b.expect(Request::all::<ConfigMap>().list(&elsewhere).unwrap(), 200)).len(), 0);
    let body = b.expect(cms(b).list(&ListParams::default().fields("data.a=1")).unwrap(), 400);
    assert_status(&body, 400, "BadRequest");
}

// ---- List resourceVersion semantics ----

/// A LIST without resourceVersion is the most recent state; with `NotOlderThan` an older
/// resourceVersion also gives a state at least as new as it.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#semantics-for-get-and-list>
fn list_without_resource_version_or_not_older_than_is_the_current_state(b: &mut Behaviour) {
    let a = create_cm(b, &my_cm("a", &[]));
    let list = list_mine(b, ListParams::default());
    assert_eq!(names(&list), strs(&["a"]));
    assert!(rv_of(&list) >= rv_of(&a));
    create_cm(b, &my_cm("b", &[]));
    // `NotOlderThan` is served from the watch cache, which may lag a write for a moment.
    b.catch_up();
    let list = list_mine(b, ListParams::default().not_older_than(&rv_of(&a).to_string()));
    assert_eq!(sorted(names(&list)), strs(&["a", "b"]), "NotOlderThan an old version gives at least that state");
    assert!(rv_of(&list) >= rv_of(&a));
}

/// `resourceVersion=0` means any version (the watch cache's); the cache does not paginate, so
/// `limit` is ignored.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#semantics-for-get-and-list>
fn list_at_resource_version_0_ignores_limit(b: &mut Behaviour) {
    for n in ["a", "b", "c"] {
        create_cm(b, &my_cm(n, &[]));
    }
    // Any version may be an older one: let the watch cache see the writes.
    b.catch_up();
    let lp = ListParams { resource_version: Some("0".into()), limit: Some(1), ..ListParams::default() };
    let list = list_mine(b, lp);
    assert_eq!(sorted(names(&list)), strs(&["a", "b", "c"]));
    assert!(list["metadata"].get("continue").is_none_or(|c| c == ""), "{list:#}");
    let (status, got) = b.send(cms(b).get("a", &GetParams::any()).unwrap());
    assert_eq!((status.as_u16(), str_at(&got, "/metadata/name")), (200, "a"));
}

/// `resourceVersionMatch=Exact` returns the state as of that resourceVersion, objects since
/// created missing and objects since deleted present.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#semantics-for-get-and-list>
fn list_exact_at_an_older_resource_version_returns_the_state_as_of_then(b: &mut Behaviour) {
    create_cm(b, &my_cm("a", &[]));
    let then = rv_of(&list_mine(b, ListParams::default()));
    create_cm(b, &my_cm("b", &[]));
    b.expect(cms(b).delete("a", &DeleteParams::default()).unwrap(), 200);
    let old = list_mine(b, ListParams::default().at(&then.to_string()));
    assert_eq!(names(&old), strs(&["a"]));
    assert_eq!(rv_of(&old), then, "the list is at exactly that resourceVersion");
    assert_eq!(names(&list_mine(b, ListParams::default())), strs(&["b"]));
}

/// `Exact` at a resourceVersion compacted away is 410 Expired.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#410-gone-responses>
fn list_exact_at_a_compacted_resource_version_is_410_expired(b: &mut Behaviour) {
    create_cm(b, &my_cm("a", &[]));
    let then = rv_of(&list_mine(b, ListParams::default())).to_string();
    create_cm(b, &my_cm("b", &[]));
    b.compact();
    let body = b.expect(cms(b).list(&ListParams::default().at(&then)).unwrap(), 410);
    assert_status(&body, 410, "Expired");
}

/// A resourceVersion from the future is 504 Timeout with the cause ResourceVersionTooLarge and
/// `Retry-After: 1`, for GET and LIST.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#semantics-for-get-and-list>
fn a_future_resource_version_is_504_with_retry_after_1(b: &mut Behaviour) {
    create_cm(b, &my_cm("a", &[]));
    let future = "999999999";
    for req in [
        cms(b).list(&ListParams::default().not_older_than(future)).unwrap(),
        cms(b).list(&ListParams { resource_version: Some(future.into()), ..ListParams::default() }).unwrap(),
        cms(b).get("a", &GetParams::at(future)).unwrap(),
    ] {
        let uri = req.uri().clone();
        let resp = b.respond(req);
        assert_eq!(resp.status, 504, "{uri}");
        assert_eq!(resp.headers["retry-after"], "1");
        let body: Value = serde_json::from_slice(&resp.body).unwrap();
        assert_status(&body, 504, "Timeout");
        assert_eq!(causes(&body), [("ResourceVersionTooLarge".to_owned(), String::new())]);
    }
}

/// `resourceVersionMatch` without a `resourceVersion`, or `Exact` with `0`, is 422 on ListOptions.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#semantics-for-get-and-list>
fn resource_version_match_without_resource_version_is_422(b: &mut Behaviour) {
    for query in ["resourceVersionMatch=Exact", "resourceVersion=0&resourceVersionMatch=Exact"] {
        let req = raw("GET", &format!("/api/v1/namespaces/{}/configmaps?{query}", b.ns()), None, "");
        let body = b.expect(req, 422);
        assert_status(&body, 422, "Invalid");
        assert_eq!(body["details"]["kind"], "ListOptions");
        assert_eq!(causes(&body), [("FieldValueForbidden".to_owned(), "resourceVersionMatch".to_owned())]);
    }
}

// ---- Pagination ----

fn page(b: &mut Behaviour, lp: ListParams) -> (u16, Value) {
    let (status, body) = b.send(cms(b).list(&lp).unwrap());
    (status.as_u16(), body)
}

fn continue_of(list: &Value) -> Option<String> {
    list["metadata"]["continue"].as_str().filter(|c| !c.is_empty()).map(str::to_owned)
}

/// Pages fetched with `limit` and `continue` are all read at the first page's resourceVersion: a
/// consistent snapshot, whatever is created or deleted between pages.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks>
fn pagination_reads_a_consistent_snapshot_across_pages(b: &mut Behaviour) {
    for i in 0..5 {
        create_cm(b, &my_cm(&format!("page-{i}"), &[]));
    }
    let first = list_mine(b, ListParams::default().limit(2));
    let snapshot = rv_of(&first);
    let mut seen = names(&first);
    assert_eq!(seen.len(), 2);
    create_cm(b, &my_cm("page-9", &[]));
    let not_yet_seen =
        ["page-0", "page-1", "page-2", "page-3", "page-4"].into_iter().find(|n| !seen.iter().any(|s| s == n)).unwrap();
    b.expect(cms(b).delete(not_yet_seen, &DeleteParams::default()).unwrap(), 200);
    let mut token = continue_of(&first);
    while let Some(t) = token {
        let next = list_mine(b, ListParams::default().limit(2).continue_token(&t));
        assert_eq!(rv_of(&next), snapshot, "every page is at the first page's resourceVersion");
        seen.extend(names(&next));
        token = continue_of(&next);
    }
    assert_eq!(sorted(seen), strs(&["page-0", "page-1", "page-2", "page-3", "page-4"]));
}

/// `remainingItemCount` tells how many items follow, but only for lists without selectors.
/// <https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/list-meta/>
fn remaining_item_count_is_only_given_without_selectors(b: &mut Behaviour) {
    for i in 0..5 {
        create_cm(b, &my_cm(&format!("page-{i}"), &[]));
    }
    let (_, plain) = page(b, ListParams::default().limit(2));
    // Everything in the namespace at that page's resourceVersion (a real cluster adds its
    // `kube-root-ca.crt` ConfigMap on its own schedule).
    let at_page = ListParams::default().at(&rv_of(&plain).to_string());
    let total = names(&b.expect(cms(b).list(&at_page).unwrap(), 200)).len() as i64;
    assert_eq!(plain["metadata"]["remainingItemCount"].as_i64(), Some(total - 2), "{plain:#}");
    let selected = list_mine(b, ListParams::default().limit(2));
    assert!(continue_of(&selected).is_some());
    assert!(selected["metadata"].get("remainingItemCount").is_none(), "{selected:#}");
    let fields = ListParams::default().limit(2).fields("metadata.name!=nope");
    assert!(page(b, fields).1["metadata"].get("remainingItemCount").is_none());
}

/// A continue token that is not one is 400 BadRequest.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks>
fn a_garbage_continue_token_is_400(b: &mut Behaviour) {
    let (status, body) = page(b, ListParams::default().limit(2).continue_token("not-a-valid-token"));
    assert_eq!(status, 400);
    assert_status(&body, 400, "BadRequest");
}

/// A continue token whose resourceVersion has been compacted is 410 Expired; the 410 carries a
/// fresh token in `metadata.continue` that continues the list (inconsistently) from there.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks>
fn continue_after_compaction_is_410_with_a_fresh_token_that_works(b: &mut Behaviour) {
    for i in 0..5 {
        create_cm(b, &my_cm(&format!("page-{i}"), &[]));
    }
    let first = list_mine(b, ListParams::default().limit(2));
    create_cm(b, &my_cm("page-5", &[]));
    b.compact();
    let stale = continue_of(&first).unwrap();
    let lp = ListParams::default().labels(MINE).limit(2).continue_token(&stale);
    let body = b.expect(cms(b).list(&lp).unwrap(), 410);
    assert_status(&body, 410, "Expired");
    let fresh =
        body["metadata"]["continue"].as_str().filter(|c| !c.is_empty()).expect("a fresh continue token").to_owned();
    let mut seen = names(&first);
    let mut token = Some(fresh);
    while let Some(t) = token {
        let next = list_mine(b, ListParams::default().limit(2).continue_token(&t));
        seen.extend(names(&next));
        token = continue_of(&next);
    }
    assert_eq!(
        sorted(seen),
        strs(&["page-0", "page-1", "page-2", "page-3", "page-4", "page-5"]),
        "the rest, at the current state"
    );
}

// ---- Watch ----

fn wp() -> WatchParams {
    WatchParams::default().disable_bookmarks().labels(MINE)
}

/// A write no watch of the test selects (a ConfigMap without the [`MINE`] label): it moves the
/// resourceVersion on, as the rest of a real cluster does all the time. The watch cache sends a
/// progress bookmark only once its resourceVersion is past where the watch started.
fn move_on(b: &mut Behaviour, name: &str) {
    create_cm(b, &configmap(name, &[], &[]));
}

/// Splits a streaming list's events at its initial-events-end BOOKMARK: the initial events
/// before it, and it. After it there may only be progress BOOKMARKs: the server sends one at the
/// next tick of its bookmark timer (within 1.25 s) once its resourceVersion has moved on, as it
/// does on a cluster with writes elsewhere.
#[track_caller]
fn initial_events<K: std::fmt::Debug>(mut events: Vec<WatchEvent<K>>) -> (Vec<WatchEvent<K>>, Bookmark) {
    let end = events
        .iter()
        .position(|e| matches!(e, WatchEvent::Bookmark(bm) if bm.is_initial_events_end()))
        .unwrap_or_else(|| panic!("no initial-events-end BOOKMARK: {events:?}"));
    for e in &events[end + 1..] {
        assert!(
            matches!(e, WatchEvent::Bookmark(bm) if !bm.is_initial_events_end()),
            "after the initial events: {e:?}"
        );
    }
    events.truncate(end + 1);
    let Some(WatchEvent::Bookmark(bm)) = events.pop() else { unreachable!("the initial-events-end BOOKMARK") };
    (events, bm)
}

/// The events that are not BOOKMARKs (which the server may send whenever its resourceVersion
/// has moved on).
fn without_bookmarks<K>(events: Vec<WatchEvent<K>>) -> Vec<WatchEvent<K>> {
    events.into_iter().filter(|e| !matches!(e, WatchEvent::Bookmark(_))).collect()
}

/// Asserts that a progress BOOKMARK due `due` after its watch opened came at `t` as the watch
/// cache's bookmark timer sends it. The timer fires every second plus up to a quarter second
/// (`wait.Jitter(time.Second, 0.25)`) and hands out the bookmarks due in every whole second that
/// has begun, so a bookmark comes from a second before it is due to 1.25 s after (give or take
/// the backend's tolerance).
#[track_caller]
fn assert_on_the_ticker(b: &Behaviour, t: Duration, due: Duration, what: &str) {
    let tolerance = b.tolerance();
    let (earliest, latest) = (due.saturating_sub(s(1) + tolerance), due + Duration::from_millis(1250) + tolerance);
    assert!(
        t > earliest && t < latest,
        "{what}: at {t:?}, expected on the bookmark timer's ticks for {due:?}: after {earliest:?} and before {latest:?}"
    );
}

/// A watch from a resourceVersion replays every change since, in order, then goes on live.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes>
fn watch_from_a_resource_version_replays_the_changes_since(b: &mut Behaviour) {
    let from = rv_of(&list_mine(b, ListParams::default())).to_string();
    create_cm(b, &my_cm("w", &[]));
    merge(b, "w", json!({"data": {"b": "2"}}));
    b.expect(cms(b).delete("w", &DeleteParams::default()).unwrap(), 200);
    let mut watch = b.open_watch(cms(b).watch(&wp().timeout(10), &from).unwrap());
    let events = b.events::<ConfigMap>(&mut watch);
    let types: Vec<&str> = events.iter().map(WatchEvent::type_name).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED"]);
    let rvs: Vec<u64> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(c) | WatchEvent::Modified(c) | WatchEvent::Deleted(c) => event_rv(c),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(rvs.windows(2).all(|w| w[0] < w[1]), "{rvs:?}");
    create_cm(b, &my_cm("live", &[]));
    let live = b.events::<ConfigMap>(&mut watch);
    assert!(
        matches!(live.as_slice(), [WatchEvent::Added(c)] if c.metadata.name.as_deref() == Some("live")),
        "{live:?}"
    );
}

/// A watch from a compacted resourceVersion answers HTTP 200, then one ERROR event holding a
/// 410 Expired Status, then ends.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#410-gone-responses>
fn watch_from_a_compacted_resource_version_is_200_then_an_error_410_expired(b: &mut Behaviour) {
    let from = rv_of(&list_mine(b, ListParams::default())).to_string();
    create_cm(b, &my_cm("a", &[]));
    b.compact();
    create_cm(b, &my_cm("b", &[]));
    for params in [wp(), WatchParams::default().labels(MINE)] {
        let mut watch = b.open_watch(cms(b).watch(&params.timeout(5), &from).unwrap());
        let run = b.read_until::<ConfigMap>(&mut watch, s(9));
        match run.events.as_slice() {
            [(_, WatchEvent::Error(status))] => {
                assert_eq!(status.code, 410);
                assert_eq!(status.reason, kube_proto::Reason::Expired);
            }
            other => panic!("expected one ERROR: {other:?}"),
        }
        let ended = run.finished_at.expect("the stream ends after the error");
        b.assert_about(ended, Duration::ZERO, "the stream ends right after the error");
    }
}

/// A streaming list (`sendInitialEvents=true&resourceVersionMatch=NotOlderThan`) sends one ADDED
/// per existing object, then a BOOKMARK annotated `k8s.io/initial-events-end` at a
/// resourceVersion not older than the objects, then live events.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#streaming-lists>
fn streaming_list_sends_added_per_object_then_the_initial_events_end_bookmark(b: &mut Behaviour) {
    for n in ["a", "b", "c"] {
        create_cm(b, &my_cm(n, &[]));
    }
    let newest = rv_of(&list_mine(b, ListParams::default()));
    let params = WatchParams::default().labels(MINE).streaming_lists().timeout(30);
    let mut watch = b.open_watch(cms(b).watch(&params, "").unwrap());
    let (added, end) = initial_events(b.events::<ConfigMap>(&mut watch));
    let mut added_names: Vec<String> = added
        .iter()
        .map(|e| match e {
            WatchEvent::Added(c) => c.metadata.name.clone().unwrap(),
            other => panic!("only ADDED before the bookmark: {other:?}"),
        })
        .collect();
    added_names.sort();
    assert_eq!(added_names, strs(&["a", "b", "c"]));
    assert!(end.metadata.resource_version.parse::<u64>().unwrap() >= newest);
    create_cm(b, &my_cm("d", &[]));
    let live = without_bookmarks(b.events::<ConfigMap>(&mut watch));
    assert!(matches!(live.as_slice(), [WatchEvent::Added(c)] if c.metadata.name.as_deref() == Some("d")), "{live:?}");
}

/// `sendInitialEvents=true` requires `resourceVersionMatch=NotOlderThan` (422), and a plain
/// LIST may not ask for it (422).
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#streaming-lists>
fn send_initial_events_without_resource_version_match_is_422(b: &mut Behaviour) {
    let base = format!("/api/v1/namespaces/{}/configmaps", b.ns());
    let req = raw("GET", &format!("{base}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true"), None, "");
    let body = b.expect(req, 422);
    assert_status(&body, 422, "Invalid");
    assert_eq!(causes(&body), [("FieldValueForbidden".to_owned(), "resourceVersionMatch".to_owned())]);
    let req = raw("GET", &format!("{base}?sendInitialEvents=true&resourceVersionMatch=NotOlderThan"), None, "");
    let body = b.expect(req, 422);
    let fields: Vec<String> = causes(&body).into_iter().map(|(_, f)| f).collect();
    assert!(fields.contains(&"sendInitialEvents".to_owned()), "{body:#}");
}

/// A watch with resourceVersion unset or `0` starts with the current state, like a streaming
/// list (WatchList is on by default): ADDED per object, and with bookmarks allowed the
/// initial-events-end BOOKMARK.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#semantics-for-watch>
fn a_watch_with_resource_version_unset_or_0_starts_with_the_current_state(b: &mut Behaviour) {
    for n in ["a", "b"] {
        create_cm(b, &my_cm(n, &[]));
    }
    // `0` is any version, the watch cache's: let it see the writes.
    b.catch_up();
    for rv in ["", "0"] {
        let mut watch = b.open_watch(cms(b).watch(&WatchParams::default().labels(MINE).timeout(4), rv).unwrap());
        let run = b.read_until::<ConfigMap>(&mut watch, s(10));
        let (initial, _) = initial_events(run.events.into_iter().map(|(_, e)| e).collect());
        let types: Vec<&str> = initial.iter().map(WatchEvent::type_name).collect();
        assert_eq!(types, ["ADDED", "ADDED"], "resourceVersion {rv:?}");
        let mut watch = b.open_watch(cms(b).watch(&wp().timeout(4), rv).unwrap());
        let run = b.read_until::<ConfigMap>(&mut watch, s(10));
        assert_eq!(run.types(), ["ADDED", "ADDED"], "no bookmarks asked for, resourceVersion {rv:?}");
    }
}

/// A label-selector watch shows an object leaving the selector as DELETED and re-entering it as
/// ADDED; changes while it does not match send nothing.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes>
fn a_label_selector_watch_sees_an_object_leave_as_deleted_and_reenter_as_added(b: &mut Behaviour) {
    let from = rv_of(&list_mine(b, ListParams::default())).to_string();
    let mut watch = b.open_watch(cms(b).watch(&wp().labels("watch=me").timeout(30), &from).unwrap());
    create_cm(b, &my_cm("sel", &[("watch", "me")]));
    merge(b, "sel", json!({"data": {"v": "2"}}));
    let (_, relabelled) = merge(b, "sel", json!({"metadata": {"labels": {"watch": "no"}}}));
    merge(b, "sel", json!({"data": {"v": "3"}}));
    merge(b, "sel", json!({"metadata": {"labels": {"watch": "me"}}}));
    b.expect(cms(b).delete("sel", &DeleteParams::default()).unwrap(), 200);
    let events = b.events::<ConfigMap>(&mut watch);
    let types: Vec<&str> = events.iter().map(WatchEvent::type_name).collect();
    assert_eq!(types, ["ADDED", "MODIFIED", "DELETED", "ADDED", "DELETED"]);
    match &events[2] {
        WatchEvent::Deleted(cm) => {
            assert_eq!(cm.metadata.labels.as_ref().unwrap()["watch"], "me", "the last state that matched");
            assert_eq!(cm.metadata.resource_version.as_deref(), relabelled["metadata"]["resourceVersion"].as_str());
        }
        other => panic!("{other:?}"),
    }
}

/// With `allowWatchBookmarks=true` a quiet watch gets a BOOKMARK about once a minute, once the
/// cluster has moved on past where it started, at a resourceVersion that says how far.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#watch-bookmarks>
fn bookmarks_come_about_once_a_minute(b: &mut Behaviour) {
    let from = rv_of(&list_mine(b, ListParams::default()));
    let params = WatchParams::default().labels(MINE);
    let mut watch = b.open_watch(cms(b).watch(&params, &from.to_string()).unwrap());
    move_on(b, "elsewhere");
    let moved = rv_of(&get_cm(b, "elsewhere").1);
    let run = b.read_until::<ConfigMap>(&mut watch, s(150));
    assert_eq!(run.finished_at, None);
    let times: Vec<Duration> = run
        .events
        .iter()
        .map(|(t, e)| match e {
            WatchEvent::Bookmark(bm) => {
                assert!(!bm.is_initial_events_end());
                assert!(bm.metadata.resource_version.parse::<u64>().unwrap() >= moved, "{bm:?}");
                *t
            }
            other => panic!("only bookmarks on a quiet watch: {other:?}"),
        })
        .collect();
    assert_eq!(times.len(), 2, "{times:?}");
    // Each is due a minute after the last (or after the watch opened).
    assert_on_the_ticker(b, times[0], s(60), "the first bookmark");
    assert_on_the_ticker(b, times[1], times[0] + s(60), "the second bookmark");
}

/// With `timeoutSeconds` a BOOKMARK is also due 2 s before the deadline, so the client can
/// resume from it: it comes on the watch cache's bookmark timer, once or (when a tick falls
/// before it is due, and the watcher is filed again for the next) twice, if the cluster has moved
/// on past where the watch started. Without `allowWatchBookmarks` there are never any.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#watch-bookmarks>
fn a_bookmark_comes_shortly_before_the_timeout_and_never_without_allow_watch_bookmarks(b: &mut Behaviour) {
    let from = rv_of(&list_mine(b, ListParams::default())).to_string();
    let mut watch = b.open_watch(cms(b).watch(&WatchParams::default().labels(MINE).timeout(10), &from).unwrap());
    move_on(b, "elsewhere-1");
    let run = b.read_until::<ConfigMap>(&mut watch, s(20));
    assert!(matches!(run.events.len(), 1 | 2), "one or two bookmarks: {:?}", run.events);
    for (t, e) in &run.events {
        assert!(matches!(e, WatchEvent::Bookmark(bm) if !bm.is_initial_events_end()), "{e:?}");
        assert_on_the_ticker(b, *t, s(8), "the pre-timeout bookmark");
    }
    let ended = run.finished_at.expect("the watch ends at its timeout");
    assert!(run.events.iter().all(|(t, _)| *t <= ended), "{run:?}");
    // Long enough for the periodic bookmark (a minute in) where the clock can jump; on a real
    // cluster as long as the watch above, which had one.
    let timeout = if b.can(Power::Minutes) { 100 } else { 10 };
    let mut watch = b.open_watch(cms(b).watch(&wp().timeout(timeout), &from).unwrap());
    move_on(b, "elsewhere-2");
    let run = b.read_until::<ConfigMap>(&mut watch, s(2 * u64::from(timeout)));
    assert_eq!(run.types(), Vec::<&str>::new(), "no bookmarks without allowWatchBookmarks");
}

/// `timeoutSeconds` ends a watch cleanly at the deadline.
/// <https://kubernetes.io/docs/reference/kubernetes-api/config-and-storage-resources/config-map-v1/#watch-list-or-watch-objects-of-kind-configmap>
fn timeout_seconds_ends_the_watch(b: &mut Behaviour) {
    let from = rv_of(&list_mine(b, ListParams::default())).to_string();
    let mut watch = b.open_watch(cms(b).watch(&wp().timeout(5), &from).unwrap());
    b.advance(s(1));
    create_cm(b, &my_cm("a", &[]));
    assert_eq!(b.events::<ConfigMap>(&mut watch).len(), 1);
    let run = b.read_until::<ConfigMap>(&mut watch, s(4));
    assert_eq!(run.finished_at, None, "still open 4 s in");
    let run = b.read_until::<ConfigMap>(&mut watch, s(60));
    let ended = run.finished_at.expect("the watch ends");
    b.assert_about(ended, s(5), "the watch ends at timeoutSeconds");
}

// ---- Metadata only ----

/// `Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1` gets only metadata:
/// one object as PartialObjectMetadata, a list as PartialObjectMetadataList, watch events'
/// objects (bookmarks too) as PartialObjectMetadata.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#alternate-representations-of-resources>
fn metadata_only_get_list_and_watch_return_partial_object_metadata(b: &mut Behaviour) {
    create_cm(b, &my_cm("a", &[]));
    let got = b.expect(cms(b).get_metadata("a", &GetParams::default()).unwrap(), 200);
    assert_eq!(
        (got["kind"].as_str(), got["apiVersion"].as_str()),
        (Some("PartialObjectMetadata"), Some("meta.k8s.io/v1"))
    );
    assert_eq!(str_at(&got, "/metadata/name"), "a");
    assert!(got.get("data").is_none());
    let list = b.expect(cms(b).list_metadata(&ListParams::default().labels(MINE)).unwrap(), 200);
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["items"][0]["kind"], "PartialObjectMetadata");
    assert!(list["items"][0].get("data").is_none());
    let params = WatchParams::default().labels(MINE).streaming_lists().timeout(5);
    let mut watch = b.open_watch(cms(b).watch_metadata(&params, "").unwrap());
    let (initial, _) = initial_events(b.events::<Value>(&mut watch));
    match initial.as_slice() {
        [WatchEvent::Added(obj)] => {
            assert_eq!(obj["kind"], "PartialObjectMetadata");
            assert!(obj.get("data").is_none());
        }
        other => panic!("one ADDED: {other:?}"),
    }
}

/// Asking for the single-object metadata form of a list, the list form of one object, or a
/// media type the server does not serve is 406 Not Acceptable.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#alternate-representations-of-resources>
fn metadata_only_with_the_wrong_as_and_unservable_media_types_are_406(b: &mut Behaviour) {
    create_cm(b, &my_cm("a", &[]));
    let mut get = cms(b).get("a", &GetParams::default()).unwrap();
    get.headers_mut().insert("accept", kube_proto::request::ACCEPT_METADATA_LIST.parse().unwrap());
    assert_status(&b.expect(get, 406), 406, "NotAcceptable");
    let mut list = cms(b).list(&ListParams::default()).unwrap();
    list.headers_mut().insert("accept", kube_proto::request::ACCEPT_METADATA.parse().unwrap());
    assert_status(&b.expect(list, 406), 406, "NotAcceptable");
    let mut text = cms(b).get("a", &GetParams::default()).unwrap();
    text.headers_mut().insert("accept", "text/plain".parse().unwrap());
    assert_status(&b.expect(text, 406), 406, "NotAcceptable");
}

// ---- Custom resources ----

/// The Widgets' API group: the test's namespace under `example.com`, so that on a real cluster
/// each test has a CRD of its own.
fn group(b: &Behaviour) -> String {
    format!("{}.example.com", b.ns())
}

fn crd_name(b: &Behaviour) -> String {
    format!("widgets.{}", group(b))
}

fn widget_crd(b: &Behaviour) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name(b)},
        "spec": {
            "group": group(b), "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}},
            }],
        },
    })
}

fn widget_resource(b: &Behaviour) -> ApiResource {
    ApiResource::new(&group(b), "v1", "Widget", "widgets", true)
}

fn widget(b: &Behaviour, name: &str, replicas: i64) -> DynamicObject {
    DynamicObject::new(name, &widget_resource(b))
        .within(b.ns())
        .data(json!({"spec": {"replicas": replicas, "color": "red"}}))
}

fn crds() -> Request {
    Request::all::<CustomResourceDefinition>()
}

/// Creates the Widget CRD (deleted after the test); returns the created CRD.
fn create_crd(b: &mut Behaviour) -> Value {
    let created = b.expect(crds().create(&pp(), &widget_crd(b)).unwrap(), 201);
    b.cleanup_with(crds().delete(&crd_name(b), &DeleteParams::default()).unwrap());
    created
}

/// Waits until the Widget CRD is Established; returns the Widgets' collection.
fn widgets_established(b: &mut Behaviour) -> Request {
    let name = crd_name(b);
    b.eventually(s(30), |b| {
        let (_, crd) = b.send(crds().get(&name, &GetParams::default()).unwrap());
        crd["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    });
    Request::dynamic(&widget_resource(b), Some(b.ns()))
}

/// Creates the Widget CRD and waits until it is Established; returns the Widgets' collection.
fn create_widget_crd(b: &mut Behaviour) -> Request {
    create_crd(b);
    widgets_established(b)
}

/// Creating a CustomResourceDefinition makes its kind servable once Established: Widgets can be
/// created, read, listed (as a WidgetList) and watched like any kind.
/// <https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#create-a-customresourcedefinition>
fn creating_a_crd_makes_its_kind_servable(b: &mut Behaviour) {
    let widgets = Request::dynamic(&widget_resource(b), Some(b.ns()));
    let before = b.respond(widgets.create(&pp(), &widget(b, "w1", 1)).unwrap());
    assert_eq!(before.status, 404, "not served before the CRD exists");
    let created = create_crd(b);
    assert_eq!(created["kind"], "CustomResourceDefinition");
    let widgets = widgets_established(b);
    let w1 = b.expect(widgets.create(&pp(), &widget(b, "w1", 1)).unwrap(), 201);
    assert_eq!(
        (w1["kind"].as_str(), w1["apiVersion"].as_str()),
        (Some("Widget"), Some(format!("{}/v1", group(b)).as_str()))
    );
    assert_eq!(w1["metadata"]["generation"], 1);
    let got: DynamicObject =
        serde_json::from_value(b.expect(widgets.get("w1", &GetParams::default()).unwrap(), 200)).unwrap();
    assert_eq!(got.data["spec"]["replicas"], 1);
    let list = b.expect(widgets.list(&ListParams::default()).unwrap(), 200);
    assert_eq!(
        (list["kind"].as_str(), list["apiVersion"].as_str()),
        (Some("WidgetList"), Some(format!("{}/v1", group(b)).as_str()))
    );
    assert_eq!(names(&list), strs(&["w1"]));
    assert_eq!(list["items"][0]["kind"], "Widget", "custom resource list items keep their kind");
    let mut watch = b.open_watch(widgets.watch(&WatchParams::default().streaming_lists().timeout(10), "").unwrap());
    let (initial, _) = initial_events(b.events::<DynamicObject>(&mut watch));
    assert!(
        matches!(initial.as_slice(), [WatchEvent::Added(w)] if w.metadata.name.as_deref() == Some("w1")),
        "{initial:?}"
    );
    let missing = b.expect(widgets.get("nope", &GetParams::default()).unwrap(), 404);
    assert_eq!(
        (missing["details"]["group"].as_str(), missing["details"]["kind"].as_str()),
        (Some(group(b).as_str()), Some("widgets"))
    );
}

/// A custom resource's status and scale subresources follow its CRD: main writes ignore
/// `status`, `/status` writes only `status`, and `/scale` maps to the CRD's replica paths.
/// <https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#subresources>
fn a_custom_resource_s_status_and_scale_subresources_follow_its_crd(b: &mut Behaviour) {
    let widgets = create_widget_crd(b);
    let with_status = widget(b, "w1", 1).data(json!({"spec": {"replicas": 1}, "status": {"phase": "Sneaky"}}));
    let created = b.expect(widgets.create(&pp(), &with_status).unwrap(), 201);
    assert!(created.get("status").is_none(), "status is dropped on create: {created:#}");
    let req = widgets.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"color": "green"}, "status": {"phase": "Ignored"}})),
    );
    let body = b.expect(req.unwrap(), 200);
    assert_eq!(body["spec"]["color"], "green");
    assert!(body.get("status").is_none());
    assert_eq!(body["metadata"]["generation"], 2);
    let status =
        json!({"status": {"replicas": 1, "selector": "app=widget", "phase": "Ready"}, "spec": {"replicas": 7}});
    let req = widgets.patch_subresource("status", "w1", &PatchParams::default(), &Patch::Merge(status));
    let body = b.expect(req.unwrap(), 200);
    assert_eq!(body["status"]["phase"], "Ready");
    assert_eq!(body["spec"]["replicas"], 1, "/status ignores spec");
    assert_eq!(body["metadata"]["generation"], 2, "a status write does not bump generation");
    let scale = b.expect(widgets.get_subresource("scale", "w1").unwrap(), 200);
    assert_eq!(scale["kind"], "Scale");
    assert_eq!((scale["spec"]["replicas"].as_i64(), scale["status"]["replicas"].as_i64()), (Some(1), Some(1)));
    assert_eq!(scale["status"]["selector"], "app=widget");
    let req = widgets.patch_subresource(
        "scale",
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    );
    assert_eq!(b.expect(req.unwrap(), 200)["spec"]["replicas"], 5);
    assert_eq!(b.expect(widgets.get("w1", &GetParams::default()).unwrap(), 200)["spec"]["replicas"], 5);
}

/// Deleting a CRD answers it with the `customresourcecleanup.apiextensions.k8s.io` finalizer;
/// its custom resources are deleted, then the CRD, and the resource is no longer served.
/// <https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#delete-a-customresourcedefinition>
fn deleting_a_crd_deletes_its_custom_resources_and_stops_serving_them(b: &mut Behaviour) {
    let widgets = create_widget_crd(b);
    b.expect(widgets.create(&pp(), &widget(b, "w1", 1)).unwrap(), 201);
    let name = crd_name(b);
    let body = b.expect(crds().delete(&name, &DeleteParams::default()).unwrap(), 200);
    assert_eq!(body["kind"], "CustomResourceDefinition");
    assert_eq!(body["metadata"]["finalizers"], json!(["customresourcecleanup.apiextensions.k8s.io"]));
    b.eventually(s(60), |b| {
        b.send(crds().get(&name, &GetParams::default()).unwrap()).0 == 404
            && b.respond(widgets.list(&ListParams::default()).unwrap()).status == 404
    });
}

// ---- Routing and request errors ----

/// An unknown API group, a CRD resource that is not served, or a path outside the API is a
/// plain-text `404 page not found`, not a Status.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#standard-api-terminology>
fn an_unknown_group_or_path_is_a_plain_text_404(b: &mut Behaviour) {
    create_widget_crd(b);
    let unserved = format!("/apis/{}/v1/namespaces/x/gadgets", group(b));
    for path in ["/apis/example.org/v1/namespaces/x/widgets", "/nonsense", &unserved] {
        let resp = b.respond(raw("GET", path, None, ""));
        assert_eq!(resp.status, 404, "{path}");
        assert!(resp.headers["content-type"].to_str().unwrap().starts_with("text/plain"), "{path}");
        assert_eq!(resp.body.trim_ascii(), b"404 page not found");
    }
}

/// An unknown resource or version in a built-in group is 404 with a JSON Status.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#standard-api-terminology>
fn an_unknown_resource_or_version_in_a_built_in_group_is_a_json_404(b: &mut Behaviour) {
    for path in ["/apis/apps/v1/namespaces/x/widgets", "/api/v1/namespaces/x/widgets", "/apis/apps/v9/deployments"] {
        let body = b.expect(raw("GET", path, None, ""), 404);
        assert_status(&body, 404, "NotFound");
        assert_eq!(body["message"], "the server could not find the requested resource");
    }
}

/// Verbs a URL does not support are 405 MethodNotAllowed: PUT or PATCH on a collection, POST to
/// an object, POST to an all-namespaces collection, deletecollection of namespaces.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#api-verbs>
fn verbs_a_url_does_not_support_are_405(b: &mut Behaviour) {
    create_cm(b, &configmap("cm1", &[], &[]));
    let ns = b.ns().to_owned();
    let body = configmap("x", &[], &[]).to_string();
    for (method, path, ct) in [
        ("PUT", format!("/api/v1/namespaces/{ns}/configmaps"), "application/json"),
        ("PATCH", format!("/api/v1/namespaces/{ns}/configmaps"), "application/merge-patch+json"),
        ("POST", format!("/api/v1/namespaces/{ns}/configmaps/cm1"), "application/json"),
        ("POST", "/api/v1/configmaps".to_owned(), "application/json"),
        // With a selector that matches no namespace, in case a server did delete collections
        // of namespaces.
        ("DELETE", format!("/api/v1/namespaces?labelSelector=kit-never%3D{ns}"), "application/json"),
    ] {
        let resp = b.expect(raw(method, &path, Some(ct), body.clone()), 405);
        assert_status(&resp, 405, "MethodNotAllowed");
    }
    assert_eq!(b.send(Request::all::<Namespace>().get(&ns, &GetParams::default()).unwrap()).0, 200);
}

/// Bodies the server cannot read are 400 BadRequest: empty, not JSON, the wrong kind or
/// apiVersion, a field of the wrong type, a namespace or name that contradicts the URL; an
/// unsupported Content-Type is 415.
/// <https://kubernetes.io/docs/reference/using-api/api-concepts/#api-verbs>
fn bodies_the_server_cannot_read_are_400(b: &mut Behaviour) {
    create_cm(b, &configmap("cm1", &[], &[]));
    let collection = format!("/api/v1/namespaces/{}/configmaps", b.ns());
    let bad_bodies = [
        String::new(),
        "this is not json".to_owned(),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}).to_string(),
        json!({"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}).to_string(),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"n": 1}}).to_string(),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}}).to_string(),
    ];
    for body in bad_bodies {
        let resp = b.expect(raw("POST", &collection, Some("application/json"), body.clone()), 400);
        assert_status(&resp, 400, "BadRequest");
    }
    let other_name = configmap("other", &[], &[]).to_string();
    let resp = b.expect(raw("PUT", &format!("{collection}/cm1"), Some("application/json"), other_name), 400);
    assert_status(&resp, 400, "BadRequest");
    let resp =
        b.expect(raw("PATCH", &format!("{collection}/cm1"), Some("application/merge-patch+json"), "{not json"), 400);
    assert_status(&resp, 400, "BadRequest");
    let resp = b.expect(raw("POST", &collection, Some("text/plain"), "a=1"), 415);
    assert_status(&resp, 415, "UnsupportedMediaType");
    let resp = b.expect(raw("PATCH", &format!("{collection}/cm1"), Some("application/json"), "{}"), 415);
    assert_status(&resp, 415, "UnsupportedMediaType");
    let defaulted = json!({"metadata": {"name": "nokind"}, "data": {"a": "1"}}).to_string();
    let created = b.expect(raw("POST", &collection, Some("application/json"), defaulted), 201);
    assert_eq!(
        (created["kind"].as_str(), created["apiVersion"].as_str()),
        (Some("ConfigMap"), Some("v1")),
        "kind and apiVersion default from the URL"
    );
}

/// Invalid names are 422 Invalid with a cause on `metadata.name`; all the field errors of an
/// object are reported together (name, label values, data keys).
/// <https://kubernetes.io/docs/concepts/overview/working-with-objects/names/>
fn invalid_names_are_422_with_a_cause_for_metadata_name(b: &mut Behaviour) {
    let body = b.expect(cms(b).create(&pp(), &configmap("Bad_Name", &[], &[("a", "1")])).unwrap(), 422);
    assert_status(&body, 422, "Invalid");
    assert_eq!(causes(&body), [("FieldValueInvalid".to_owned(), "metadata.name".to_owned())]);
    assert_eq!(
        (body["details"]["name"].as_str(), body["details"]["kind"].as_str()),
        (Some("Bad_Name"), Some("ConfigMap"))
    );
    let long = "x".repeat(64);
    let body =
        b.expect(cms(b).create(&pp(), &configmap("Bad_Name", &[("ok", &long)], &[("bad key!", "1")])).unwrap(), 422);
    let fields: Vec<String> = causes(&body).into_iter().map(|(_, f)| f).collect();
    assert_eq!(fields, ["metadata.name", "metadata.labels", "data[bad key!]"]);
    let body = b.expect(Request::all::<Namespace>().create(&pp(), &json!({"metadata": {"name": "a.b"}})).unwrap(), 422);
    assert_eq!(
        causes(&body),
        [("FieldValueInvalid".to_owned(), "metadata.name".to_owned())],
        "namespace names are DNS labels"
    );
    let generated = b.expect(cms(b).create(&pp(), &json!({"metadata": {"generateName": "gen-"}})).unwrap(), 201);
    let name = str_at(&generated, "/metadata/name");
    assert!(name.starts_with("gen-") && name.len() == 9, "generateName appends 5 characters: {name}");
}

/// Every namespace carries the label `kubernetes.io/metadata.name` with its name.
/// <https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-metadata-name>
fn namespaces_carry_their_name_as_a_label(b: &mut Behaviour) {
    let ns = b.ns().to_owned();
    let got = b.expect(Request::all::<Namespace>().get(&ns, &GetParams::default()).unwrap(), 200);
    assert_eq!(got["metadata"]["labels"]["kubernetes.io/metadata.name"], ns.as_str());
    assert_eq!(got["status"]["phase"], "Active");
    let lp = ListParams::default().labels(&format!("kubernetes.io/metadata.name={ns}"));
    assert_eq!(names(&b.expect(Request::all::<Namespace>().list(&lp).unwrap(), 200)), strs(&[&ns]));
}
