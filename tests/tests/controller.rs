//! The Controller over real sockets: every object is reconciled, and again on each change; owned
//! children trigger their parent; a failed reconcile is retried as the error policy says; one
//! object is never reconciled twice at once; a graceful shutdown lets the running reconcile
//! finish and starts no other. Each body runs through transport-hyper (tokio) and
//! transport-asyncstd (async-std), against the loopback fake or a real cluster.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_integration_tests::objects::configmap;
use kube_integration_tests::{Ctx, transport_tests};
use kube_proto::{Patch, PatchParams, PostParams, ResourceExt};
use kube_runtime::controller::{Action, Controller, ControllerError};
use kube_runtime::{Api, Client, watcher};
use serde_json::json;

transport_tests!(
    every_object_is_reconciled_and_again_on_change,
    owned_children_trigger_their_parent,
    a_failed_reconcile_is_retried_as_the_error_policy_says,
    a_graceful_shutdown_finishes_the_running_reconcile_and_starts_no_other,
);

const STEP: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failed(String);

/// What the reconciles saw: the resourceVersions reconciled, per object, and who is running.
#[derive(Default)]
struct Seen {
    versions: BTreeMap<String, Vec<String>>,
    running: BTreeSet<String>,
    overlaps: usize,
}

struct Context {
    client: Client,
    seen: Mutex<Seen>,
    /// Objects whose next reconcile fails (once each).
    fail_once: Mutex<BTreeSet<String>>,
    /// How long a reconcile takes.
    takes: Duration,
}

impl Context {
    fn new(ctx: &Ctx, takes: Duration) -> Arc<Self> {
        Arc::new(Context { client: ctx.client.clone(), seen: Mutex::default(), fail_once: Mutex::default(), takes })
    }

    fn count(&self, name: &str) -> usize {
        self.seen.lock().unwrap().versions.get(name).map_or(0, Vec::len)
    }
}

async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Context>) -> Result<Action, Failed> {
    let name = cm.name_any();
    {
        let mut seen = ctx.seen.lock().unwrap();
        if !seen.running.insert(name.clone()) {
            seen.overlaps += 1;
        }
    }
    if !ctx.takes.is_zero() {
        ctx.client.transport().sleep_until(ctx.client.now() + ctx.takes).await;
    }
    let mut seen = ctx.seen.lock().unwrap();
    seen.running.remove(&name);
    seen.versions.entry(name.clone()).or_default().push(cm.resource_version().unwrap_or_default().to_owned());
    if ctx.fail_once.lock().unwrap().remove(&name) {
        return Err(Failed(format!("{name}: the bucket is not ready")));
    }
    Ok(Action::await_change())
}

fn error_policy(_cm: Arc<ConfigMap>, _error: &Failed, _ctx: Arc<Context>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

fn config(ctx: &Ctx) -> watcher::Config {
    watcher::Config::default().labels(&ctx.selector())
}

async fn every_object_is_reconciled_and_again_on_change(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    for i in 0..5 {
        cms.create(&PostParams::default(), &configmap(&ctx, &format!("ctl-{i}"), &[])).await.unwrap();
    }
    let context = Context::new(&ctx, Duration::from_millis(20));
    let controller = Controller::new(cms.clone(), config(&ctx)).concurrency(3);
    let metrics = controller.metrics();
    let mut results = Box::pin(controller.run(reconcile, error_policy, context.clone()));
    let all = |c: &Context| (0..5).all(|i| c.count(&format!("ctl-{i}")) >= 1);
    ctx.within(STEP, "every object reconciled", async {
        while !all(&context) {
            let (_, action) = results.next().await.unwrap().unwrap();
            assert_eq!(action, Action::await_change());
        }
    })
    .await;
    // A change: that object again, with its new resourceVersion.
    let patched =
        cms.patch("ctl-2", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": "v"}}))).await.unwrap();
    let version = patched.resource_version().unwrap().to_owned();
    ctx.within(STEP, "the change reconciled", async {
        while !context.seen.lock().unwrap().versions["ctl-2"].contains(&version) {
            let (key, action) = results.next().await.unwrap().unwrap();
            assert_eq!(action, Action::await_change());
            assert!(key.name.starts_with("ctl-"), "{key}");
        }
    })
    .await;
    assert_eq!(context.seen.lock().unwrap().overlaps, 0, "never twice at once");
    assert!(metrics.reconciles.load(std::sync::atomic::Ordering::Relaxed) >= 6);
}

async fn owned_children_trigger_their_parent(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    let parent = cms.create(&PostParams::default(), &configmap(&ctx, "parent", &[])).await.unwrap();
    let mut child = configmap(&ctx, "child", &[]);
    child.metadata.owner_references = Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "parent".into(),
        uid: parent.uid().unwrap().to_owned(),
        controller: Some(true),
        ..Default::default()
    }]);
    cms.create(&PostParams::default(), &child).await.unwrap();
    let context = Context::new(&ctx, Duration::ZERO);
    // Parents are the objects named `parent`; children come from the owned stream.
    let parents = watcher::Config::default().fields("metadata.name=parent");
    let controller = Controller::new(cms.clone(), parents).owns(cms.clone(), config(&ctx));
    let mut results = Box::pin(controller.run(reconcile, error_policy, context.clone()));
    ctx.within(STEP, "the parent reconciled", async {
        while context.count("parent") == 0 {
            let (_, action) = results.next().await.unwrap().unwrap();
            assert_eq!(action, Action::await_change());
        }
    })
    .await;
    let before = context.count("parent");
    cms.patch("child", &PatchParams::default(), &Patch::Merge(json!({"data": {"x": "1"}}))).await.unwrap();
    ctx.within(STEP, "the child's change reconciles the parent", async {
        while context.count("parent") == before {
            let (key, _) = results.next().await.unwrap().unwrap();
            assert_eq!(key.name, "parent", "only parents are reconciled");
        }
    })
    .await;
    assert_eq!(context.count("child"), 0);
}

async fn a_failed_reconcile_is_retried_as_the_error_policy_says(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    cms.create(&PostParams::default(), &configmap(&ctx, "flaky", &[])).await.unwrap();
    let context = Context::new(&ctx, Duration::ZERO);
    context.fail_once.lock().unwrap().insert("flaky".into());
    let controller = Controller::new(cms.clone(), config(&ctx));
    let metrics = controller.metrics();
    let mut results = Box::pin(controller.run(reconcile, error_policy, context.clone()));
    let first = ctx.within(STEP, "the failure", results.next()).await.unwrap();
    match first {
        Err(ControllerError::ReconcileFailed(key, error)) => {
            assert_eq!(key.name, "flaky");
            assert!(error.to_string().contains("not ready"));
        }
        other => panic!("expected the failure first, got {other:?}"),
    }
    let (key, action) = ctx.within(STEP, "the retry", results.next()).await.unwrap().unwrap();
    assert_eq!((key.name.as_str(), action), ("flaky", Action::await_change()));
    assert_eq!(context.count("flaky"), 2);
    assert_eq!(metrics.failures.load(std::sync::atomic::Ordering::Relaxed), 1);
}

async fn a_graceful_shutdown_finishes_the_running_reconcile_and_starts_no_other(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    for name in ["slow-a", "slow-b"] {
        cms.create(&PostParams::default(), &configmap(&ctx, name, &[])).await.unwrap();
    }
    let context = Context::new(&ctx, Duration::from_millis(500));
    let (stop, stopped) = futures_channel::oneshot::channel::<()>();
    let controller = Controller::new(cms.clone(), config(&ctx)).concurrency(1).graceful_shutdown_on(async move {
        let _ = stopped.await;
    });
    let mut results = Box::pin(controller.run(reconcile, error_policy, context.clone()));
    // Start the first reconcile, then ask to stop while it runs.
    let first = ctx.within(STEP, "a reconcile starts", async {
        loop {
            if !context.seen.lock().unwrap().running.is_empty() {
                break;
            }
            futures_util::future::select(
                results.next(),
                ctx.client.transport().sleep_until(ctx.client.now() + Duration::from_millis(20)),
            )
            .await;
        }
    });
    first.await;
    stop.send(()).unwrap();
    let rest: Vec<_> = ctx.within(STEP, "the stream ends", results.collect()).await;
    assert_eq!(rest.len(), 1, "the running reconcile finishes: {rest:?}");
    let seen = context.seen.lock().unwrap();
    assert_eq!(seen.versions.values().map(Vec::len).sum::<usize>(), 1, "no other reconcile started");
    assert!(seen.running.is_empty());
}
