//! A configmapgen-style operator on tokio and transport-hyper: a custom resource owning a
//! ConfigMap, with a finalizer, Events and a Ready condition (the controller is in
//! `examples/src/configmapgen.rs`; `configmapgen_asyncstd` runs the same code on async-std).
//!
//! ```sh
//! cargo run --example configmapgen              # embedded fake API server
//! cargo run --example configmapgen -- --cluster # your kubeconfig's cluster, in a namespace of its own
//! ```

use k8s_openapi::api::core::v1::Namespace;
use kube_examples::configmapgen::demo;
use kube_proto::{DeleteParams, PostParams};
use kube_runtime::fake::FakeTransport;
use kube_runtime::{Api, Client};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let on_cluster =
        std::env::args().any(|a| a == "--cluster") || std::env::var("KUBE_DEMO_CLUSTER").is_ok_and(|v| v == "1");
    if !on_cluster {
        println!("configmapgen on the embedded fake API server (pass --cluster to use a real one)");
        let (transport, config) = FakeTransport::new();
        return demo(Client::new(transport, config)?, "default").await;
    }
    println!("configmapgen on the cluster of your kubeconfig, in a namespace of its own");
    let client = transport_hyper::try_default().await?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.subsec_nanos();
    let ns = format!("kit-configmapgen-{nanos:x}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let body: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))?;
    namespaces.create(&PostParams::default(), &body).await?;
    let outcome = demo(client, &ns).await;
    namespaces.delete(&ns, &DeleteParams::default()).await?;
    outcome
}
