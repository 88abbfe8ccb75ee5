//! Discovery and the dynamic API over real sockets: resolution of what kubectl accepts (from
//! aggregated and legacy discovery), `Api<DynamicObject>` for what it resolves, a folder of
//! manifests applied in dependency order with a CRD and its objects, discovery refreshed when
//! a resolved resource is no longer served, and bad manifests applying nothing. Each body runs
//! through transport-hyper (tokio) and transport-asyncstd (async-std), against the loopback
//! fake or the cluster of `KUBE_E2E_KUBECONFIG` (the CRD's group is unique to the test's
//! namespace, and the CRD is deleted at the end).

use std::path::Path;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_integration_tests::{Ctx, transport_tests};
use kube_proto::discovery::{DiscoveryError, Fetch, ResolveError, Scope};
use kube_proto::manifest::ManifestProblem;
use kube_proto::{DeleteParams, DynamicObject, ListParams, PostParams, ResourceExt};
use kube_runtime::discovery::{self, ApplyError, ApplyOptions, Discovery, apply, read_manifests};
use kube_runtime::{Api, Error};
use serde_json::json;

transport_tests!(
    resolves_what_kubectl_accepts,
    dynamic_objects_through_what_it_resolves,
    applies_a_folder_with_a_crd_and_its_objects,
    bad_manifests_apply_nothing_and_a_failure_says_what_was_applied,
    the_cache_lives_for_its_ttl_and_unknown_names_look_again: loopback,
);

const MANAGER: &str = "kit-discovery";

fn discovery(ctx: &Ctx) -> Discovery {
    Discovery::new(ctx.client.clone(), Duration::from_secs(300))
}

async fn resolves_what_kubectl_accepts(ctx: Ctx) {
    let d = discovery(&ctx);
    for (typed, full) in [
        ("po", "pods.v1."),
        ("Pod", "pods.v1."),
        ("cm", "configmaps.v1."),
        ("ns", "namespaces.v1."),
        ("deploy", "deployments.v1.apps"),
        ("deployments.apps", "deployments.v1.apps"),
        ("cronjobs.v1.batch", "cronjobs.v1.batch"),
        ("cj", "cronjobs.v1.batch"),
        ("crd", "customresourcedefinitions.v1.apiextensions.k8s.io"),
        ("events", "events.v1."),
    ] {
        let info = d.resolve(typed).await.unwrap_or_else(|e| panic!("{typed}: {e}"));
        assert_eq!(info.full_name(), full, "{typed}");
    }
    let pods = d.resolve("po").await.unwrap();
    assert_eq!(pods.scope(), Scope::Namespaced);
    assert!(pods.supports("watch") && pods.subresource("status").is_some() && pods.subresource("eviction").is_some());
    assert_eq!(d.resolve("ns").await.unwrap().scope(), Scope::Cluster);
    let deploy = d.resolve("deploy").await.unwrap();
    assert_eq!(deploy.subresource("scale").unwrap().kind, "Scale");
    match d.resolve("gizmos-nobody-serves").await {
        Err(Error::Discovery(DiscoveryError::Resolve(ResolveError::Unknown { name }))) => {
            assert_eq!(name, "gizmos-nobody-serves");
        }
        other => panic!("{other:?}"),
    }

    // Legacy discovery (a request per group version) says the same of them.
    let legacy = discovery::run(&ctx.client, Fetch::legacy()).await.unwrap();
    let aggregated = discovery::discover(&ctx.client).await.unwrap();
    for typed in ["po", "deploy", "cj", "crd", "pdb"] {
        assert_eq!(legacy.resolve(typed).unwrap(), aggregated.resolve(typed).unwrap(), "{typed}");
    }
    if !ctx.is_cluster() {
        assert!(aggregated.failures().is_empty() && legacy.failures().is_empty());
    }
}

async fn dynamic_objects_through_what_it_resolves(ctx: Ctx) {
    let d = discovery(&ctx);
    let info = d.resolve("cm").await.unwrap();
    let cms = d.api(&info, Some(&ctx.ns));
    let cm = DynamicObject::new("dyn", &info.resource).within(&ctx.ns).data(json!({"data": {"colour": "blue"}}));
    let mut cm = cm;
    cm.metadata.labels = serde_json::from_value(ctx.labels(&[])).unwrap();
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert!(created.uid().is_some());
    let got = cms.get("dyn").await.unwrap();
    assert_eq!(got.data["data"]["colour"], "blue");
    let listed = cms.list(&ListParams::default().labels(&ctx.selector())).await.unwrap();
    assert_eq!(listed.items.iter().map(ResourceExt::name_any).collect::<Vec<_>>(), ["dyn"]);
    // Through with_api, by another name of the same resource.
    let n = d
        .with_api("configmap", Some(&ctx.ns), |api| {
            let selector = ctx.selector();
            async move { api.list(&ListParams::default().labels(&selector)).await }
        })
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(n, 1);
    cms.delete("dyn", &DeleteParams::default()).await.unwrap();
    assert!(cms.get_opt("dyn").await.unwrap().is_none());
}

/// The CRD's group, short name and plural, unique to the test's namespace.
fn crd_names(ctx: &Ctx) -> (String, String) {
    let suffix: String = ctx.ns.chars().rev().take(6).collect::<String>().chars().rev().collect();
    (format!("{}.kit.example.com", ctx.ns), format!("gz{suffix}"))
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

async fn applies_a_folder_with_a_crd_and_its_objects(ctx: Ctx) {
    let (group, short) = crd_names(&ctx);
    let ns = &ctx.ns;
    let dir = tempfile::tempdir().unwrap();
    // In the files' order: the custom resource and a ConfigMap first, the CRD, then the Namespace.
    write(
        dir.path(),
        "10-app.yaml",
        &format!(
            "apiVersion: {group}/v1\nkind: Gizmo\nmetadata:\n  name: g1\n  labels: {{kit-suite: {ns}}}\nspec:\n  size: 3\n\
             ---\n# the settings\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  labels: {{kit-suite: {ns}}}\ndata:\n  colour: blue\n"
        ),
    );
    write(
        dir.path(),
        "20-crd.yaml",
        &format!(
            r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{kind: Gizmo, plural: gizmos, singular: gizmo, shortNames: [{short}]}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"#
        ),
    );
    write(
        dir.path(),
        "30-ns.json",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}).to_string(),
    );
    write(dir.path(), "README.md", "not a manifest: not read");

    let manifests = read_manifests(dir.path()).unwrap();
    assert_eq!(manifests.len(), 4);
    let d = discovery(&ctx);
    // A cached catalog from before the CRD: apply must still find its kind.
    assert!(d.resolve(&short).await.is_err());
    let options = ApplyOptions::new(MANAGER).namespace(ns).crd_timeout(Duration::from_secs(60));
    let outcome = apply(&d, manifests, &options).await;

    // Facts first, then the cleanup, then the checks: the CRD is cluster-wide.
    let order: Vec<String> =
        outcome.iter().flatten().map(|a| format!("{} {}", a.manifest.kind, a.manifest.name)).collect();
    let by_short = d.resolve(&short).await.map(|r| r.full_name());
    let gizmo = match d.resolve(&short).await {
        Ok(info) => d.api(&info, Some(ns)).get("g1").await.map(|g| g.data["spec"]["size"].clone()),
        Err(e) => Err(e),
    };
    let crds: Api<CustomResourceDefinition> = Api::all(ctx.client.clone());
    let crd_name = format!("gizmos.{group}");
    let _ = crds.delete(&crd_name, &DeleteParams::background()).await;
    ctx.eventually(Duration::from_secs(60), "the CRD is gone", || {
        let crds = crds.clone();
        let name = crd_name.clone();
        async move { crds.get_opt(&name).await.is_ok_and(|c| c.is_none()) }
    })
    .await;
    // The cached catalog still has the kind; its Api answers 404, discovery runs again and
    // the name no longer resolves.
    let after = d.with_api(&short, Some(ns), |api| async move { api.list(&ListParams::default()).await }).await;

    let applied = outcome.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        order,
        [
            format!("Namespace {ns}"),
            format!("CustomResourceDefinition gizmos.{group}"),
            "ConfigMap settings".into(),
            "Gizmo g1".into()
        ]
    );
    assert_eq!(applied[2].manifest.namespace.as_deref(), Some(ns.as_str()));
    assert_eq!(applied[1].manifest.namespace, None);
    assert!(
        applied[3].manifest.location.ends_with("10-app.yaml, document 1 (line 1)"),
        "{}",
        applied[3].manifest.location
    );
    assert_eq!(applied[2].object.data["data"]["colour"], "blue");
    assert_eq!(by_short.unwrap(), format!("gizmos.v1.{group}"));
    assert_eq!(gizmo.unwrap(), 3);
    match after {
        Err(Error::Discovery(DiscoveryError::Resolve(ResolveError::Unknown { .. }))) => {}
        other => panic!("after the CRD's deletion: {other:?}"),
    }
    // Applying again changes nothing and is fine (the same field manager).
    let again = apply(&d, read_manifests(&dir.path().join("10-app.yaml")).unwrap(), &options).await;
    assert!(matches!(&again, Err(ApplyError::Unresolved { manifest: Some(m), .. }) if m.kind == "Gizmo"), "{again:?}");
}

async fn bad_manifests_apply_nothing_and_a_failure_says_what_was_applied(ctx: Ctx) {
    let ns = &ctx.ns;
    let d = discovery(&ctx);
    let options = ApplyOptions::new(MANAGER).namespace(ns);
    let good = format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: first, labels: {{kit-suite: {ns}}}}}\n");
    let dir = tempfile::tempdir().unwrap();
    let cms: Api<DynamicObject> = d.api(&d.resolve("cm").await.unwrap(), Some(ns));
    let count = || {
        let cms = cms.clone();
        let selector = ctx.selector();
        async move { cms.list(&ListParams::default().labels(&selector)).await.unwrap().items.len() }
    };

    for (text, document, problem) in [
        (format!("{good}---\nmetadata: {{name: second}}\n"), 2, "no apiVersion"),
        (format!("{good}---\napiVersion: v1\nmetadata: {{name: second}}\n"), 2, "no kind"),
        (format!("{good}---\napiVersion: v1\nkind: ConfigMap\ndata: [unclosed\n"), 2, "not valid YAML"),
    ] {
        write(dir.path(), "bad.yaml", &text);
        let e = read_manifests(&dir.path().join("bad.yaml")).unwrap_err();
        let ApplyError::Manifest(m) = &e else { panic!("{e:?}") };
        assert_eq!(m.document, document);
        assert!(m.file.ends_with("bad.yaml"));
        assert!(e.to_string().contains(problem) && e.to_string().contains("nothing was applied"), "{e}");
    }
    let e = read_manifests(&dir.path().join("bad.yaml")).unwrap_err();
    assert!(matches!(e, ApplyError::Manifest(ref m) if matches!(m.problem, ManifestProblem::NotYaml(_))));

    // An unknown kind: nothing is applied, and the error names file and document.
    write(
        dir.path(),
        "bad.yaml",
        &format!("{good}---\napiVersion: nothing.example.com/v1\nkind: Gizmo\nmetadata: {{name: g}}\n"),
    );
    let manifests = read_manifests(&dir.path().join("bad.yaml")).unwrap();
    let e = apply(&d, manifests, &options).await.unwrap_err();
    let ApplyError::Unresolved { manifest: Some(m), .. } = &e else { panic!("{e:?}") };
    assert!(m.location.ends_with("bad.yaml, document 2 (line 5)"), "{}", m.location);
    assert!(e.to_string().contains("Gizmo") && e.to_string().contains("nothing was applied"), "{e}");
    assert_eq!(count().await, 0, "nothing applied");

    // The server refuses the second of three: the first stays applied, the third is not.
    write(
        dir.path(),
        "bad.yaml",
        &format!(
            "{good}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: Not_Valid}}\n---\n{}",
            good.replace("first", "third")
        ),
    );
    let manifests = read_manifests(&dir.path().join("bad.yaml")).unwrap();
    let e = apply(&d, manifests, &options).await.unwrap_err();
    let ApplyError::Failed { applied, failed, error, not_applied } = &e else { panic!("{e:?}") };
    assert_eq!(applied.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["first"]);
    assert_eq!(failed.name, "Not_Valid");
    assert!(matches!(**error, Error::Api(ref a) if a.http_status() == 422), "{error:?}");
    assert_eq!(not_applied.iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["third"]);
    let text = e.to_string();
    assert!(
        text.contains("applied: ConfigMap") && text.contains("not applied: ConfigMap") && text.contains("third"),
        "{text}"
    );
    assert_eq!(count().await, 1, "the first only");
}

async fn the_cache_lives_for_its_ttl_and_unknown_names_look_again(ctx: Ctx) {
    let server = ctx.loopback("it serves a new kind by registering it in the fake");
    let has_sprockets = |c: &kube_proto::discovery::Catalog| c.find("kit.example.com", "v1", "sprockets").is_some();
    let cached = Discovery::new(ctx.client.clone(), Duration::from_secs(3600));
    let uncached = Discovery::new(ctx.client.clone(), Duration::ZERO);
    assert!(!has_sprockets(&cached.catalog().await.unwrap()));
    let sprockets = kube_proto::ApiResource::new("kit.example.com", "v1", "Sprocket", "sprockets", true);
    server.fake().register(kube_runtime::fake::server::KindInfo::custom(sprockets, false, None));
    // The cached catalog is kept for its time to live; with none, each use asks again.
    assert!(!has_sprockets(&cached.catalog().await.unwrap()));
    assert!(has_sprockets(&uncached.catalog().await.unwrap()));
    // A name unknown to the cached catalog is looked up again, and the new catalog is kept.
    assert_eq!(cached.resolve("sprocket").await.unwrap().resource.kind, "Sprocket");
    assert!(has_sprockets(&cached.catalog().await.unwrap()));
    // Forgotten on demand.
    let before = cached.catalog().await.unwrap();
    cached.invalidate();
    assert!(!std::sync::Arc::ptr_eq(&before, &cached.catalog().await.unwrap()));
}
