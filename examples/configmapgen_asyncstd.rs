//! The configmapgen operator of `examples/configmapgen.rs`, the same controller code, on
//! async-std and transport-asyncstd.
//!
//! ```sh
//! cargo run --example configmapgen_asyncstd              # embedded fake API server
//! cargo run --example configmapgen_asyncstd -- --cluster # your kubeconfig's cluster
//! ```

use k8s_openapi::api::core::v1::Namespace;
use kube_examples::configmapgen::demo;
use kube_proto::{DeleteParams, PostParams};
use kube_runtime::fake::FakeTransport;
use kube_runtime::{Api, Client};

#[async_std::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let on_cluster =
        std::env::args().any(|a| a == "--cluster") || std::env::var("KUBE_DEMO_CLUSTER").is_ok_and(|v| v == "1");
    if !on_cluster {
        println!("configmapgen on async-std, on the embedded fake API server (pass --cluster to use a real one)");
        let (transport, config) = FakeTransport::new();
        return demo(Client::new(transport, config)?, "default").await;
    }
    println!("configmapgen on async-std, on the cluster of your kubeconfig, in a namespace of its own");
    let client = transport_asyncstd::try_default().await?;
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.subsec_nanos();
    let ns = format!("kit-configmapgen-{nanos:x}");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let body: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))?;
    namespaces.create(&PostParams::default(), &body).await?;
    let outcome = demo(client, &ns).await;
    namespaces.delete(&ns, &DeleteParams::default()).await?;
    outcome
}
