//! `Api<K>` over real sockets: CRUD, patches, server-side apply, subresources, logs and
//! pagination, each body run through transport-hyper (tokio) and transport-asyncstd
//! (async-std), against the loopback fake or the cluster of `KUBE_E2E_KUBECONFIG`.

use std::collections::BTreeSet;

use futures_util::TryStreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::rbac::v1::Role;
use kube_integration_tests::objects::{configmap, deployment, unlabelled_configmap};
use kube_integration_tests::{Ctx, transport_tests};
use kube_proto::{
    DeleteParams, DeleteResponse, ListParams, LogParams, Patch, PatchParams, PostParams, Reason, ResourceExt,
    ResponseError,
};
use kube_runtime::{Api, Error};
use serde_json::json;

transport_tests!(
    crud,
    unusual_names_round_trip,
    delete_returns_status_or_object,
    patches,
    server_side_apply,
    status_subresource,
    scale_subresource,
    logs,
    list_pagination_and_delete_collection,
);

/// The server's error, or a panic naming what came instead.
fn api_error<T: std::fmt::Debug>(result: Result<T, Error>) -> ResponseError {
    match result {
        Err(Error::Api(e)) => e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn pp() -> PostParams {
    PostParams::default()
}

/// Reads and writes until the write does not conflict: on a real cluster, controllers update
/// status (and so the resourceVersion) between a test's read and its write.
async fn without_conflict<T, F, Fut>(mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    for _ in 0..10 {
        match attempt().await {
            Err(Error::Api(e)) if e.is_conflict() => continue,
            other => return other.unwrap(),
        }
    }
    panic!("ten conflicts in a row");
}

/// The API server accepts any path-segment-valid name for many kinds (RBAC roles among them):
/// such names are escaped in every request, so the object can be read, patched and deleted.
async fn unusual_names_round_trip(ctx: Ctx) {
    let roles: Api<Role> = ctx.api();
    for name in ["kit role", "kit?role#1", "kit-caf\u{e9}"] {
        let role: Role = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": ctx.labels(&[])},
            "rules": [],
        }))
        .unwrap();
        roles.create(&pp(), &role).await.unwrap();
        assert_eq!(roles.get(name).await.unwrap().name_any(), name);
        let patch = Patch::Merge(json!({"metadata": {"annotations": {"kit/patched": "yes"}}}));
        let patched = roles.patch(name, &PatchParams::default(), &patch).await.unwrap();
        assert_eq!(patched.annotations().get("kit/patched").map(String::as_str), Some("yes"));
        roles.delete(name, &DeleteParams::default()).await.unwrap();
        assert!(roles.get_opt(name).await.unwrap().is_none(), "{name} deleted");
    }
}

async fn crud(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    let created = cms.create(&pp(), &configmap(&ctx, "crud", &[("k", "v1")])).await.unwrap();
    assert_eq!(created.name_any(), "crud");
    assert_eq!(created.namespace(), Some(ctx.ns.as_str()));
    assert!(created.uid().is_some() && created.resource_version().is_some());

    // The same name again: 409 AlreadyExists, which is not a Conflict.
    let e = api_error(cms.create(&pp(), &configmap(&ctx, "crud", &[])).await);
    assert_eq!(e.http_status(), 409);
    assert_eq!(e.reason(), Some(&Reason::AlreadyExists));
    assert!(!e.is_conflict());

    let got = cms.get("crud").await.unwrap();
    assert_eq!(got.uid(), created.uid());
    assert_eq!(got.resource_version(), created.resource_version());
    assert_eq!(got.data.as_ref().unwrap()["k"], "v1");
    assert_eq!(
        cms.get_opt("crud").await.unwrap().map(|c| c.uid().map(str::to_owned)),
        Some(created.uid().map(Into::into))
    );
    assert!(cms.get_opt("no-such-configmap").await.unwrap().is_none());
    let e = api_error(cms.get("no-such-configmap").await);
    assert!(e.is_not_found());
    assert_eq!(e.reason(), Some(&Reason::NotFound));

    // Replace with the current resourceVersion: a new resourceVersion.
    let mut changed = got.clone();
    changed.data.as_mut().unwrap().insert("k".into(), "v2".into());
    let replaced = cms.replace("crud", &pp(), &changed).await.unwrap();
    assert_eq!(replaced.uid(), created.uid());
    assert_ne!(replaced.resource_version(), got.resource_version());
    assert_eq!(replaced.data.as_ref().unwrap()["k"], "v2");

    // Again with the now stale resourceVersion: 409 Conflict, and nothing changes.
    changed.data.as_mut().unwrap().insert("k".into(), "v3".into());
    let e = api_error(cms.replace("crud", &pp(), &changed).await);
    assert!(e.is_conflict(), "{e}");
    assert_eq!(e.http_status(), 409);
    assert_eq!(cms.get("crud").await.unwrap().data.unwrap()["k"], "v2");

    // A replace without a resourceVersion is unconditional.
    let mut unconditional = configmap(&ctx, "crud", &[("k", "v4")]);
    unconditional.metadata.resource_version = None;
    assert_eq!(cms.replace("crud", &pp(), &unconditional).await.unwrap().data.unwrap()["k"], "v4");

    // Delete: gone at once (no finalizers), and a second delete is 404.
    cms.delete("crud", &DeleteParams::default()).await.unwrap();
    assert!(cms.get_opt("crud").await.unwrap().is_none());
    assert!(api_error(cms.delete("crud", &DeleteParams::default()).await).is_not_found());
}

async fn delete_returns_status_or_object(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    // No finalizer: the object goes at once and the server answers with a Status.
    cms.create(&pp(), &configmap(&ctx, "plain", &[])).await.unwrap();
    match cms.delete("plain", &DeleteParams::default()).await.unwrap() {
        DeleteResponse::Status(s) => assert!(s.is_success(), "{s:?}"),
        DeleteResponse::Object(o) => panic!("expected a Status, got the object {o:?}"),
    }

    // A finalizer holds it: the server answers with the object, marked for deletion.
    let mut held = configmap(&ctx, "held", &[]);
    held.metadata.finalizers = Some(vec!["kit.example.com/hold".into()]);
    let created = cms.create(&pp(), &held).await.unwrap();
    let pending = match cms.delete("held", &DeleteParams::default()).await.unwrap() {
        DeleteResponse::Object(o) => o,
        DeleteResponse::Status(s) => panic!("expected the object, got {s:?}"),
    };
    assert_eq!(pending.uid(), created.uid());
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(cms.get("held").await.unwrap().metadata.deletion_timestamp.is_some());
    // Removing the finalizer lets it go.
    let release = json!({"metadata": {"finalizers": null}});
    cms.patch("held", &PatchParams::default(), &Patch::Merge(&release)).await.unwrap();
    ctx.eventually(std::time::Duration::from_secs(20), "the held ConfigMap is gone", || async {
        cms.get_opt("held").await.unwrap().is_none()
    })
    .await;
}

async fn patches(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    let created = cms.create(&pp(), &configmap(&ctx, "patched", &[("a", "1"), ("b", "2")])).await.unwrap();

    // Merge patch: adds, changes and (with null) removes keys.
    let merge = json!({"data": {"a": "10", "b": null, "c": "3"}});
    let merged = cms.patch("patched", &PatchParams::default(), &Patch::Merge(&merge)).await.unwrap();
    let data = merged.data.clone().unwrap();
    assert_eq!((data.get("a"), data.get("b"), data.get("c")), (Some(&"10".into()), None, Some(&"3".into())));
    assert_ne!(merged.resource_version(), created.resource_version());

    // JSON patch: a test that holds, then add and remove.
    let ops = json!([
        {"op": "test", "path": "/data/a", "value": "10"},
        {"op": "add", "path": "/data/d", "value": "4"},
        {"op": "remove", "path": "/data/c"},
    ]);
    let patched = cms.patch("patched", &PatchParams::default(), &Patch::Json(&ops)).await.unwrap();
    let keys: BTreeSet<String> = patched.data.unwrap().into_keys().collect();
    assert_eq!(keys, BTreeSet::from(["a".into(), "d".into()]));
    // A JSON patch whose test fails changes nothing and is an error.
    let failing =
        json!([{"op": "test", "path": "/data/a", "value": "nope"}, {"op": "add", "path": "/data/e", "value": "5"}]);
    let e = api_error(cms.patch("patched", &PatchParams::default(), &Patch::Json(&failing)).await);
    assert!(matches!(e.http_status(), 409 | 422), "{e}");
    assert!(!cms.get("patched").await.unwrap().data.unwrap().contains_key("e"));

    // Strategic merge patch: containers merge by name (a merge patch would replace the list).
    let deployments: Api<Deployment> = ctx.api();
    deployments.create(&pp(), &deployment(&ctx, "strategic", 0)).await.unwrap();
    let sidecar = json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "registry.k8s.io/pause:3.10"}]}}}});
    let d = deployments.patch("strategic", &PatchParams::default(), &Patch::Strategic(&sidecar)).await.unwrap();
    let names: Vec<String> = d.spec.template.spec.unwrap().containers.into_iter().map(|c| c.name).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"main".into()) && names.contains(&"sidecar".into()), "{names:?}");
    let replaced = deployments.patch("strategic", &PatchParams::default(), &Patch::Merge(&sidecar)).await.unwrap();
    let names: Vec<String> = replaced.spec.template.spec.unwrap().containers.into_iter().map(|c| c.name).collect();
    assert_eq!(names, vec!["sidecar".to_owned()]);

    // Patching what does not exist is 404.
    assert!(api_error(cms.patch("no-such", &PatchParams::default(), &Patch::Merge(&merge)).await).is_not_found());
}

async fn server_side_apply(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    let intent = |shared: &str, own: (&str, &str)| {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "ssa", "labels": ctx.labels(&[])},
               "data": {"shared": shared, own.0: own.1}})
    };
    // Apply creates.
    let a = cms.patch("ssa", &PatchParams::apply("kit-a"), &Patch::Apply(&intent("from-a", ("a", "1")))).await.unwrap();
    assert_eq!(a.data.as_ref().unwrap()["shared"], "from-a");
    let managers: Vec<&str> = a.metadata.managed_fields.iter().flatten().filter_map(|m| m.manager.as_deref()).collect();
    assert!(managers.contains(&"kit-a"), "{managers:?}");

    // Applying the same intent again changes nothing.
    let again =
        cms.patch("ssa", &PatchParams::apply("kit-a"), &Patch::Apply(&intent("from-a", ("a", "1")))).await.unwrap();
    assert_eq!(again.resource_version(), a.resource_version());

    // Another manager setting a field kit-a owns, differently: 409 with the conflict as a cause.
    let e =
        api_error(cms.patch("ssa", &PatchParams::apply("kit-b"), &Patch::Apply(&intent("from-b", ("b", "2")))).await);
    assert!(e.is_conflict(), "{e}");
    let causes = e.api_status().unwrap().causes();
    assert!(causes.iter().any(|c| c.reason == "FieldManagerConflict" && c.field == ".data.shared"), "{causes:?}");
    assert_eq!(cms.get("ssa").await.unwrap().data.unwrap()["shared"], "from-a");

    // With force, kit-b takes the field over.
    let b = cms
        .patch("ssa", &PatchParams::apply("kit-b").force(), &Patch::Apply(&intent("from-b", ("b", "2"))))
        .await
        .unwrap();
    let data = b.data.unwrap();
    assert_eq!((data["shared"].as_str(), data["a"].as_str(), data["b"].as_str()), ("from-b", "1", "2"));
    let managers: Vec<&str> = b.metadata.managed_fields.iter().flatten().filter_map(|m| m.manager.as_deref()).collect();
    assert!(managers.contains(&"kit-a") && managers.contains(&"kit-b"), "{managers:?}");

    // An apply needs a field manager: refused before anything is sent.
    let e = cms.patch("ssa", &PatchParams::default(), &Patch::Apply(&intent("x", ("y", "z")))).await.unwrap_err();
    assert!(matches!(e, Error::Request(_)), "{e:?}");
}

async fn status_subresource(ctx: Ctx) {
    let deployments: Api<Deployment> = ctx.api();
    deployments.create(&pp(), &deployment(&ctx, "web", 0)).await.unwrap();

    let via_status = deployments.get_status("web").await.unwrap();
    assert_eq!(via_status.name_any(), "web");

    // /status changes the status and ignores the spec.
    let patch = json!({
        "spec": {"replicas": 7},
        "status": {"conditions": [{"type": "KitExample", "status": "True", "reason": "Test", "message": "set via /status"}]},
    });
    let patched = deployments.patch_status("web", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let status = patched.status.clone().unwrap();
    assert!(
        status
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_.as_deref() == Some("KitExample") && c.status.as_deref() == Some("True"))
    );
    assert_eq!(patched.spec.replicas, Some(0));

    // The main resource ignores the status.
    let main = json!({"metadata": {"labels": {"touched": "yes"}}, "status": {"conditions": [{"type": "KitIgnored", "status": "True"}]}});
    let d = deployments.patch("web", &PatchParams::default(), &Patch::Merge(&main)).await.unwrap();
    assert_eq!(d.labels().get("touched").map(String::as_str), Some("yes"));
    let conditions = d.status.and_then(|s| s.conditions).unwrap_or_default();
    assert!(!conditions.iter().any(|c| c.type_.as_deref() == Some("KitIgnored")), "{conditions:?}");

    // replace_status with a stale resourceVersion: Conflict; with the current one: fine.
    let mut stale = patched.clone();
    stale.status.as_mut().unwrap().observed_generation = Some(1);
    assert!(api_error(deployments.replace_status("web", &pp(), &stale).await).is_conflict());
    let replaced = without_conflict(|| async {
        let current = deployments.get_status("web").await?;
        deployments.replace_status("web", &pp(), &current).await
    })
    .await;
    assert_eq!(replaced.uid(), patched.uid());
}

/// A Scale's desired replicas: absent means 0 (`omitempty` on an int32 in `autoscaling/v1`).
fn replicas(scale: &Scale) -> i32 {
    scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

async fn scale_subresource(ctx: Ctx) {
    let deployments: Api<Deployment> = ctx.api();
    let created = deployments.create(&pp(), &deployment(&ctx, "scaled", 0)).await.unwrap();

    let scale = deployments.get_scale("scaled").await.unwrap();
    assert_eq!(scale.metadata.name.as_deref(), Some("scaled"));
    assert_eq!(scale.metadata.uid.as_deref(), created.uid());
    // `autoscaling/v1` omits `spec.replicas` when it is 0: the real server answers `"spec": {}`.
    assert_eq!(replicas(&scale), 0);

    // A merge patch of /scale sets the Deployment's replicas.
    let scaled = deployments
        .patch_scale("scaled", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"replicas": 2}})))
        .await
        .unwrap();
    assert_eq!(replicas(&scaled), 2);
    assert_eq!(deployments.get("scaled").await.unwrap().spec.replicas, Some(2));

    // Replacing /scale with the stale resourceVersion of the first read: Conflict.
    let mut stale = scale.clone();
    stale.spec.get_or_insert_default().replicas = Some(1);
    let e = api_error(deployments.replace_scale("scaled", &pp(), &stale).await);
    assert!(e.is_conflict(), "{e}");
    // With the current one: fine.
    let back = without_conflict(|| async {
        let mut current = deployments.get_scale("scaled").await?;
        current.spec.get_or_insert_default().replicas = Some(0);
        deployments.replace_scale("scaled", &pp(), &current).await
    })
    .await;
    assert_eq!(replicas(&back), 0);
    assert_eq!(deployments.get("scaled").await.unwrap().spec.replicas, Some(0));
}

/// The loopback fake has no kubelet and serves no logs, and a real cluster needs a running pod
/// for a log; so this asserts the error path both give alike: the log of a pod that does not
/// exist is 404, as `Error::Api`, and the line stream is refused the same way.
async fn logs(ctx: Ctx) {
    let pods: Api<Pod> = ctx.api();
    let e = api_error(pods.logs("no-such-pod", &LogParams::default()).await);
    assert!(e.is_not_found(), "{e}");
    let e = match pods.log_stream("no-such-pod", &LogParams { follow: true, ..LogParams::default() }).await {
        Err(Error::Api(e)) => e,
        Err(other) => panic!("expected an API error, got {other:?}"),
        Ok(_) => panic!("expected an API error, got a stream"),
    };
    assert!(e.is_not_found(), "{e}");
    // Invalid parameters are refused before anything is sent.
    let bad = LogParams { since_seconds: Some(0), ..LogParams::default() };
    assert!(matches!(pods.logs("no-such-pod", &bad).await, Err(Error::Request(_))));
}

async fn list_pagination_and_delete_collection(ctx: Ctx) {
    const N: usize = 23;
    let cms: Api<ConfigMap> = ctx.api();
    let mut expected = BTreeSet::new();
    for i in 0..N {
        let name = format!("page-{i:02}");
        cms.create(&pp(), &configmap(&ctx, &name, &[("i", &i.to_string())])).await.unwrap();
        expected.insert(name);
    }
    // Objects outside the selector are not listed.
    cms.create(&pp(), &unlabelled_configmap("outsider")).await.unwrap();

    let lp = ListParams::default().labels(&ctx.selector());
    // One page of 5: a continue token, and 5 items.
    let first = cms.list(&lp.clone().limit(5)).await.unwrap();
    assert_eq!(first.items.len(), 5);
    assert!(first.continue_token().is_some());

    // list_all follows the tokens: every object once.
    let all: Vec<ConfigMap> = cms.list_all(&lp.clone().limit(5)).try_collect().await.unwrap();
    let names: Vec<String> = all.iter().map(ResourceExt::name_any).collect();
    let unique: BTreeSet<String> = names.iter().cloned().collect();
    assert_eq!(names.len(), N, "duplicates in {names:?}");
    assert_eq!(unique, expected);

    // A page larger than the collection: one page, no token.
    let whole = cms.list(&lp.clone().limit(100)).await.unwrap();
    assert_eq!(whole.items.len(), N);
    assert!(whole.continue_token().is_none());

    // Deleting the labelled collection leaves the outsider.
    cms.delete_collection(&DeleteParams::default(), &lp).await.unwrap();
    ctx.eventually(std::time::Duration::from_secs(20), "the labelled ConfigMaps are gone", || async {
        cms.list(&lp).await.unwrap().items.is_empty()
    })
    .await;
    assert!(cms.get_opt("outsider").await.unwrap().is_some());
}
