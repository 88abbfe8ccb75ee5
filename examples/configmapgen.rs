//! A configmapgen-style operator on tokio and transport-hyper: a custom resource owning a
//! ConfigMap, with a finalizer, Events and a Ready condition (the controller is in
//! `examples/src/configmapgen.rs`; `configmapgen_asyncstd` runs the same code on async-std).
//!
//! ```sh
//! cargo run --example configmapgen              # embedded fake API server
//! cargo run --example configmapgen -- --cluster # your kubeconfig's cluster, in a namespace of its own
//! ```

use kube_examples::configmapgen::{on_cluster, run};
use kube_runtime::Client;
use kube_runtime::fake::FakeTransport;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let on_cluster = on_cluster();
    let client = if on_cluster {
        println!("configmapgen on tokio, on the cluster of your kubeconfig, in a namespace of its own");
        transport_hyper::try_default().await?
    } else {
        println!("configmapgen on tokio, on the embedded fake API server (pass --cluster to use a real one)");
        let (transport, config) = FakeTransport::new();
        Client::new(transport, config)?
    };
    run(client, on_cluster).await
}
