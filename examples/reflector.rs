//! A reflector keeping a store of Pods, read from another task that prints a summary every two
//! seconds: how many Pods, how many per namespace and per phase, all without an API call.
//!
//! By default it runs on the embedded fake API server, where a third task creates, relabels and
//! deletes Pods meanwhile; it stops after a few summaries. With `--cluster` (or
//! `KUBE_DEMO_CLUSTER=1`) it watches the Pods of every namespace of the cluster of your
//! kubeconfig (it only reads), and stops after the same number of summaries.
//!
//! ```sh
//! cargo run --example reflector              # embedded fake API server
//! cargo run --example reflector -- --cluster # your current kubeconfig context
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube_proto::{DeleteParams, Patch, PatchParams, PostParams};
use kube_runtime::fake::FakeTransport;
use kube_runtime::reflector::{self, BY_LABEL, BY_NAMESPACE, Store, reflector};
use kube_runtime::watcher::{self, watcher};
use kube_runtime::{Api, Client};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Summaries printed before the example ends.
const SUMMARIES: usize = 4;
/// Time between two summaries.
const EVERY: Duration = Duration::from_secs(2);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let on_cluster =
        std::env::args().any(|a| a == "--cluster") || std::env::var("KUBE_DEMO_CLUSTER").is_ok_and(|v| v == "1");
    let client = if on_cluster {
        println!("reflector on the cluster of your kubeconfig: Pods of all namespaces (read only)");
        transport_hyper::try_default().await?
    } else {
        println!("reflector on the embedded fake API server (pass --cluster to use a real one)");
        let (transport, config) = FakeTransport::new();
        Client::new(transport, config)?
    };
    let pods: Api<Pod> = Api::all(client.clone());

    // The seed's two lines: a store and the reflector that fills it. Pods, as every built-in
    // kind, are decoded with no spare capacity in their lists (custom resources would ask for it
    // with `watcher::Config::compact()`). Given a stream straight from `watcher()`, the reflector
    // hands the Pods its store lets go of back to the watcher, which decodes the next event over
    // one instead of freeing one Pod and allocating another.
    let (reader, writer) = reflector::store();
    let rf = reflector(writer, watcher(pods, watcher::Config::default().timeout(60)));

    // The reader, in a task of its own.
    let summaries = tokio::spawn(summarise(reader));
    if !on_cluster {
        tokio::spawn(workload(client));
    }
    // Drive the reflector until the reader has printed its summaries.
    let mut rf = Box::pin(rf);
    let drive = async {
        while let Some(item) = rf.next().await {
            if let Err(e) = item {
                println!("   watcher error (it goes on): {e}");
            }
        }
    };
    tokio::select! {
        done = summaries => done?,
        () = drive => println!("the watch stream ended"),
    }
    Ok(())
}

/// Prints what the store holds every `EVERY`, `SUMMARIES` times, once it is ready.
async fn summarise(reader: Store<Pod>) {
    if reader.wait_until_ready().await.is_err() {
        println!("the reflector stopped before the store was ready");
        return;
    }
    for round in 1..=SUMMARIES {
        let pods = reader.state();
        let mut phases: BTreeMap<String, usize> = BTreeMap::new();
        for pod in &pods {
            let phase = pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "(no phase)".into());
            *phases.entry(phase).or_default() += 1;
        }
        let namespaces = reader.index_values(BY_NAMESPACE).unwrap_or_default();
        let per_ns: Vec<String> = namespaces
            .iter()
            .map(|ns| format!("{ns}={}", reader.by_index(BY_NAMESPACE, ns).map(|p| p.len()).unwrap_or(0)))
            .collect();
        let web = reader.by_index(BY_LABEL, "app=web").map(|p| p.len()).unwrap_or(0);
        let db = reader.by_index(BY_LABEL, "app=db").map(|p| p.len()).unwrap_or(0);
        println!(
            "[{round}/{SUMMARIES}] {} pods; by namespace: {}; by phase: {phases:?}; app=web: {web}, app=db: {db}",
            pods.len(),
            per_ns.join(", ")
        );
        tokio::time::sleep(EVERY).await;
    }
}

/// On the fake: in two namespaces, a Pod created every 300 ms, relabelled (`app=db`) two steps
/// later and deleted six steps later.
async fn workload(client: Client) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for ns in ["shop", "blog"] {
        let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).expect("a namespace");
        if let Err(e) = namespaces.create(&PostParams::default(), &namespace).await {
            println!("   could not create namespace {ns}: {e}");
        }
    }
    let pods = |step: usize| -> Api<Pod> {
        Api::namespaced(client.clone(), if step.is_multiple_of(2) { "shop" } else { "blog" })
    };
    for step in 0..30usize {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": format!("pod-{step}"), "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}
        }))
        .expect("a pod");
        let mut outcome = pods(step).create(&PostParams::default(), &pod).await.map(|_| ());
        if let Some(old) = step.checked_sub(2) {
            let relabel = Patch::Merge(json!({"metadata": {"labels": {"app": "db"}}}));
            outcome = outcome
                .and(pods(old).patch(&format!("pod-{old}"), &PatchParams::default(), &relabel).await.map(|_| ()));
        }
        if let Some(old) = step.checked_sub(6) {
            outcome = outcome.and(pods(old).delete(&format!("pod-{old}"), &DeleteParams::default()).await.map(|_| ()));
        }
        if let Err(e) = outcome {
            println!("   workload step {step}: {e}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
