//! The main job: create, patch, apply, scale, list, watch and delete, printing what happens.
//!
//! By default it runs on the embedded fake API server (no cluster, no network). With
//! `--cluster` (or `KUBE_DEMO_CLUSTER=1`) it uses the cluster of your kubeconfig (or the
//! in-cluster configuration), in a namespace of its own that it removes afterwards.
//!
//! ```sh
//! cargo run --example demo              # embedded fake API server
//! cargo run --example demo -- --cluster # your current kubeconfig context
//! ```

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube_proto::{DeleteParams, DeleteResponse, ListParams, Patch, PatchParams, PostParams, ResourceExt};
use kube_runtime::fake::FakeTransport;
use kube_runtime::watcher::{self, Event, watcher};
use kube_runtime::{Api, Client, Error};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let on_cluster =
        std::env::args().any(|a| a == "--cluster") || std::env::var("KUBE_DEMO_CLUSTER").is_ok_and(|v| v == "1");
    let client = if on_cluster {
        println!("kube-proto demo on the cluster of your kubeconfig (in-cluster config as a fallback)");
        transport_hyper::try_default().await?
    } else {
        println!("kube-proto demo on the embedded fake API server (pass --cluster to use a real one)");
        let (transport, config) = FakeTransport::new();
        Client::new(transport, config)?
    };
    let ns = if on_cluster {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.subsec_nanos();
        format!("kube-proto-demo-{nanos:08x}")
    } else {
        "demo".to_owned()
    };
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}}))?;
    namespaces.create(&PostParams::default(), &namespace).await?;
    println!("created namespace {ns}");
    let outcome = run(client, &ns).await;
    match namespaces.delete(&ns, &DeleteParams::default()).await {
        Ok(_) => println!("deleted namespace {ns}"),
        Err(e) => println!("could not delete namespace {ns}: {e}"),
    }
    outcome
}

async fn run(client: Client, ns: &str) -> Result<(), BoxError> {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let mut events = watcher(cms.clone(), watcher::Config::default().timeout(30)).boxed();
    next_event(&mut events, "the initial list").await?;

    println!("\n1. create a ConfigMap");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "greeting", "labels": {"app": "demo"}},
        "data": {"message": "hello"}
    }))?;
    let created = cms.create(&PostParams::default(), &cm).await?;
    println!(
        "   created {} uid={} resourceVersion={}",
        created.name_any(),
        created.uid().unwrap_or("?"),
        created.resource_version().unwrap_or("?")
    );
    next_event(&mut events, "the create").await?;

    println!("\n2. merge patch");
    let patched = cms
        .patch("greeting", &PatchParams::default(), &Patch::Merge(json!({"data": {"message": "hello again"}})))
        .await?;
    println!("   data now {:?}", patched.data.unwrap_or_default());
    next_event(&mut events, "the patch").await?;

    println!("\n3. server-side apply by field manager \"demo\"");
    let intent = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "greeting", "labels": {"app": "demo", "applied": "yes"}},
        "data": {"message": "hello again", "from": "apply"}});
    let applied = cms.patch("greeting", &PatchParams::apply("demo").force(), &Patch::Apply(&intent)).await?;
    println!("   labels now {:?}", applied.labels());
    next_event(&mut events, "the apply").await?;

    println!("\n4. list with a label selector");
    let other: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "other", "labels": {"app": "else"}}}))?;
    cms.create(&PostParams::default(), &other).await?;
    next_event(&mut events, "the second create").await?;
    let listed = cms.list(&ListParams::default().labels("app=demo")).await?;
    let names: Vec<String> = listed.iter().map(ResourceExt::name_any).collect();
    println!("   app=demo: {names:?} (resourceVersion {})", listed.resource_version().unwrap_or("?"));

    println!("\n5. a Deployment, scaled through its scale subresource");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    }))?;
    deployments.create(&PostParams::default(), &deployment).await?;
    deployments.patch_scale("web", &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": 3}}))).await?;
    let scale = deployments.get_scale("web").await?;
    println!("   spec.replicas = {:?}", scale.spec.and_then(|s| s.replicas));

    println!("\n6. delete");
    for name in ["greeting", "other"] {
        match cms.delete(name, &DeleteParams::default()).await? {
            DeleteResponse::Status(s) => println!("   {name}: deleted ({})", s.status),
            DeleteResponse::Object(o) => println!("   {name}: deletion pending ({} finalizers)", o.finalizers().len()),
        }
        next_event(&mut events, "the delete").await?;
    }
    deployments.delete("web", &DeleteParams::default()).await?;
    println!("\ndone.");
    Ok(())
}

/// Prints watcher events until one that is not part of the initial list arrives (or the
/// initial list completes), within ten seconds.
async fn next_event<S>(events: &mut S, what: &str) -> Result<(), BoxError>
where
    S: Stream<Item = Result<Event<ConfigMap>, Error>> + Unpin,
{
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .map_err(|_| format!("no watch event for {what} within 10 s"))?
            .ok_or("the watch stream ended")?;
        match event {
            Ok(Event::Init) => println!("   watch: Init (a list starts)"),
            Ok(Event::InitApply(cm)) => println!("   watch: InitApply {}", cm.name_any()),
            Ok(Event::InitDone) => {
                println!("   watch: InitDone");
                return Ok(());
            }
            Ok(Event::Apply(cm)) => {
                println!(
                    "   watch: Apply {} (resourceVersion {})",
                    cm.name_any(),
                    cm.resource_version().unwrap_or("?")
                );
                return Ok(());
            }
            Ok(Event::Delete(cm)) => {
                println!("   watch: Delete {}", cm.name_any());
                return Ok(());
            }
            Err(e) => println!("   watch error (the watcher goes on): {e}"),
        }
    }
}
