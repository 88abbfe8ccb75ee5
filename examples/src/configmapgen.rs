//! A configmapgen-style operator, shared by `examples/configmapgen.rs` (tokio, transport-hyper)
//! and `examples/configmapgen_asyncstd.rs` (async-std, transport-asyncstd): the same controller
//! code on two executors.
//!
//! The custom resource `ConfigMapGenerator` (`kit.example.com/v1`) asks for a ConfigMap holding
//! its `spec.content`. The controller creates and updates that ConfigMap (owned by the
//! generator, so a change to the ConfigMap brings the generator back to reconcile), holds a
//! finalizer so that its cleanup runs before the generator goes, records Events, and keeps a
//! `Ready` condition in the generator's status.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, OwnerReference};
use kube_proto::conditions::{self, ConditionUpdate};
use kube_proto::{DeleteParams, Patch, PatchParams, Resource, ResourceExt};
use kube_runtime::controller::Action;
use kube_runtime::events::{EventInput, EventType, Recorder, object_reference};
use kube_runtime::finalizer::{Event, FinalizerError, finalizer};
use kube_runtime::{Api, Client, Error};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The finalizer the controller holds on every generator.
pub const FINALIZER: &str = "kit.example.com/cleanup";
/// The field manager of the controller's server-side applies.
pub const MANAGER: &str = "configmapgen";

/// A `ConfigMapGenerator`: a ConfigMap's content, to be kept in a ConfigMap.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigMapGenerator {
    /// Standard metadata.
    pub metadata: ObjectMeta,
    /// What to generate.
    pub spec: GeneratorSpec,
    /// What was generated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<GeneratorStatus>,
}

/// The generator's spec.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GeneratorSpec {
    /// The content of the generated ConfigMap's `content` key.
    pub content: String,
}

/// The generator's status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GeneratorStatus {
    /// `Ready` when the ConfigMap holds the current content.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

impl Resource for ConfigMapGenerator {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "ConfigMapGenerator".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "kit.example.com".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        "kit.example.com/v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "configmapgenerators".into()
    }
    fn is_namespaced(_: &()) -> bool {
        true
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The CustomResourceDefinition of `ConfigMapGenerator`, with a structural schema.
pub fn crd() -> CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "configmapgenerators.kit.example.com"},
        "spec": {
            "group": "kit.example.com",
            "names": {"kind": "ConfigMapGenerator", "plural": "configmapgenerators",
                      "singular": "configmapgenerator", "listKind": "ConfigMapGeneratorList"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {"content": {"type": "string"}}},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    },
                }},
            }],
        },
    }))
    .expect("a valid CustomResourceDefinition")
}

/// What the reconcile needs.
pub struct Context {
    /// The client.
    pub client: Client,
    /// Events about generators.
    pub recorder: Recorder,
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// A call to the API server failed.
    #[error(transparent)]
    Api(#[from] Error),
    /// The generator has no namespace.
    #[error("the generator has no namespace")]
    NoNamespace,
}

/// Reconciles one generator: under the finalizer, applies its ConfigMap (or cleans it up).
pub async fn reconcile(
    generator: Arc<ConfigMapGenerator>,
    ctx: Arc<Context>,
) -> Result<Action, FinalizerError<ReconcileError>> {
    let namespace = generator.namespace().unwrap_or("default").to_owned();
    let generators: Api<ConfigMapGenerator> = Api::namespaced(ctx.client.clone(), &namespace);
    finalizer(&generators, FINALIZER, generator, |event| async {
        match event {
            Event::Apply(g) => apply(&g, &ctx).await,
            Event::Cleanup(g) => cleanup(&g, &ctx).await,
        }
    })
    .await
}

/// Retries a failed reconcile after a few seconds (the work queue's backoff and rate limit
/// apply on top).
pub fn error_policy(_g: Arc<ConfigMapGenerator>, error: &FinalizerError<ReconcileError>, _ctx: Arc<Context>) -> Action {
    eprintln!("reconcile failed: {error}");
    Action::requeue(Duration::from_secs(5))
}

async fn apply(g: &ConfigMapGenerator, ctx: &Context) -> Result<Action, ReconcileError> {
    let namespace = g.namespace().ok_or(ReconcileError::NoNamespace)?;
    let name = g.name_any();
    let owner = OwnerReference {
        api_version: "kit.example.com/v1".into(),
        kind: "ConfigMapGenerator".into(),
        name: name.clone(),
        uid: g.uid().unwrap_or_default().to_owned(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("{name}-generated"), "ownerReferences": [owner]},
        "data": {"content": g.spec.content},
    });
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    cms.patch(&format!("{name}-generated"), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&cm)).await?;

    // The Ready condition, written only when it changes.
    let mut current = g.status.clone().unwrap_or_default().conditions;
    let ready = ConditionUpdate::new("Ready", true)
        .reason("Generated")
        .message(&format!("{name}-generated holds the content"))
        .observed_generation(g.metadata.generation.unwrap_or_default());
    if conditions::set(&mut current, ready, ctx.client.transport().wall_clock()) {
        let generators: Api<ConfigMapGenerator> = Api::namespaced(ctx.client.clone(), namespace);
        generators
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(conditions::status_patch(&current)))
            .await?;
        let event =
            EventInput::new(EventType::Normal, "Generated", "Reconcile").note(&format!("wrote {name}-generated"));
        ctx.recorder.publish(&event, &object_reference(g, &())).await;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

async fn cleanup(g: &ConfigMapGenerator, ctx: &Context) -> Result<Action, ReconcileError> {
    let namespace = g.namespace().ok_or(ReconcileError::NoNamespace)?;
    let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    // The garbage collector would remove it too; doing it here shows a cleanup that must finish
    // before the generator goes.
    match cms.delete(&format!("{}-generated", g.name_any()), &DeleteParams::default()).await {
        Ok(_) => {}
        Err(Error::Api(e)) if e.is_not_found() => {}
        Err(e) => return Err(e.into()),
    }
    let event = EventInput::new(EventType::Normal, "Deleted", "Cleanup").note("removed the generated ConfigMap");
    ctx.recorder.publish(&event, &object_reference(g, &())).await;
    Ok(Action::await_change())
}

/// The demo both examples run: installs the CRD, starts the controller, creates a generator,
/// changes it, deletes it, and shuts the controller down gracefully, printing what happens.
/// Executor-agnostic: timers come from the client's transport.
pub async fn demo(client: Client, namespace: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use futures_util::StreamExt;
    use futures_util::future::{Either, select};
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube_proto::PostParams;
    use kube_runtime::controller::Controller;
    use kube_runtime::events::Reporter;
    use kube_runtime::wait::{await_condition, conditions as wait};
    use kube_runtime::watcher;

    let limit = Duration::from_secs(60);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds.create(&PostParams::default(), &crd()).await {
        Ok(_) => println!("installed the ConfigMapGenerator CRD"),
        Err(Error::Api(e)) if e.reason() == Some(&kube_proto::Reason::AlreadyExists) => {}
        Err(e) => return Err(e.into()),
    }
    within(
        &client,
        limit,
        await_condition(crds.clone(), "configmapgenerators.kit.example.com", wait::is_crd_established()),
    )
    .await??;
    println!("the CRD is established");

    let generators: Api<ConfigMapGenerator> = Api::namespaced(client.clone(), namespace);
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let ctx = Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(client.clone(), Reporter::new("kit.example.com/configmapgen", "configmapgen-0")),
    });
    let (stop, stopped) = futures_channel::oneshot::channel::<()>();
    let controller = Controller::new(generators.clone(), watcher::Config::default())
        .owns(cms.clone(), watcher::Config::default())
        .graceful_shutdown_on(async move {
            let _ = stopped.await;
        });
    let metrics = controller.metrics();
    let mut results = Box::pin(controller.run(reconcile, error_policy, ctx));
    let scenario = async {
        let generator = ConfigMapGenerator {
            metadata: ObjectMeta { name: Some("gen-1".into()), ..ObjectMeta::default() },
            spec: GeneratorSpec { content: "hello".into() },
            status: None,
        };
        let created = generators.create(&PostParams::default(), &generator).await?;
        println!("created ConfigMapGenerator gen-1 (content \"hello\")");
        let holds = |text: &'static str| {
            move |cm: Option<&ConfigMap>| {
                cm.and_then(|c| c.data.as_ref()).and_then(|d| d.get("content")).is_some_and(|c| c == text)
            }
        };
        within(&client, limit, await_condition(cms.clone(), "gen-1-generated", holds("hello"))).await??;
        println!("the controller generated ConfigMap gen-1-generated with \"hello\"");
        let ready = |g: Option<&ConfigMapGenerator>| {
            g.and_then(|g| g.status.as_ref()).is_some_and(|s| conditions::is_true(&s.conditions, "Ready"))
        };
        within(&client, limit, await_condition(generators.clone(), "gen-1", ready)).await??;
        println!("gen-1 is Ready");
        generators
            .patch("gen-1", &PatchParams::default(), &Patch::Merge(json!({"spec": {"content": "world"}})))
            .await?;
        within(&client, limit, await_condition(cms.clone(), "gen-1-generated", holds("world"))).await??;
        println!("changed gen-1 to \"world\": the ConfigMap followed");
        generators.delete("gen-1", &DeleteParams::default()).await?;
        let uid = created.uid().unwrap_or_default().to_owned();
        within(&client, limit, await_condition(generators.clone(), "gen-1", wait::is_deleted(&uid))).await??;
        let left = cms.get_opt("gen-1-generated").await?;
        println!("deleted gen-1: the finalizer's cleanup ran first (generated ConfigMap left: {})", left.is_some());
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
    };
    // Drive the controller while the scenario runs, then shut it down gracefully.
    let drive = async {
        while let Some(result) = results.next().await {
            match result {
                Ok((object, action)) => println!("  reconciled {object}: {action:?}"),
                Err(e) => println!("  reconcile error: {e}"),
            }
        }
    };
    let mut drive = Box::pin(drive);
    let outcome = match select(Box::pin(scenario), drive.as_mut()).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(((), _)) => Err("the controller stopped early".into()),
    };
    let _ = stop.send(());
    drive.await;
    println!("the controller shut down gracefully; its metrics, as Prometheus scrapes them:");
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(kube_runtime::controller::ControllerCollector::new("configmapgen", metrics)));
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    text.lines().filter(|l| !l.starts_with('#')).for_each(|l| println!("  {l}"));
    outcome
}

/// `fut`, or an error after `limit`.
async fn within<T>(client: &Client, limit: Duration, fut: impl std::future::Future<Output = T>) -> Result<T, String> {
    use futures_util::future::{Either, select};
    let timer = client.transport().sleep_until(client.now() + limit);
    match select(Box::pin(fut), timer).await {
        Either::Left((v, _)) => Ok(v),
        Either::Right(((), _)) => Err(format!("nothing happened within {limit:?}")),
    }
}

/// Whether the example was asked to use a real cluster (`--cluster` or `KUBE_DEMO_CLUSTER=1`).
pub fn on_cluster() -> bool {
    std::env::args().any(|a| a == "--cluster") || std::env::var("KUBE_DEMO_CLUSTER").is_ok_and(|v| v == "1")
}

/// Runs [`demo`] with `client`: in `default` on the fake, or on a real cluster in a namespace of
/// its own that is deleted afterwards.
pub async fn run(client: Client, on_cluster: bool) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use k8s_openapi::api::core::v1::Namespace;
    use kube_proto::PostParams;
    if !on_cluster {
        return demo(client, "default").await;
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.subsec_nanos();
    let ns = format!("kit-configmapgen-{nanos:x}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let body: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))?;
    namespaces.create(&PostParams::default(), &body).await?;
    let outcome = demo(client, &ns).await;
    namespaces.delete(&ns, &DeleteParams::default()).await?;
    outcome
}
