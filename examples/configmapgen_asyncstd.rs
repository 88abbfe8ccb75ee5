//! The configmapgen operator of `examples/configmapgen.rs`, the same controller code, on
//! async-std and transport-asyncstd.
//!
//! ```sh
//! cargo run --example configmapgen_asyncstd              # embedded fake API server
//! cargo run --example configmapgen_asyncstd -- --cluster # your kubeconfig's cluster
//! ```

use kube_examples::configmapgen::{on_cluster, run};
use kube_runtime::Client;
use kube_runtime::fake::FakeTransport;

#[async_std::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let on_cluster = on_cluster();
    let client = if on_cluster {
        println!("configmapgen on async-std, on the cluster of your kubeconfig, in a namespace of its own");
        transport_asyncstd::try_default().await?
    } else {
        println!("configmapgen on async-std, on the embedded fake API server (pass --cluster to use a real one)");
        let (transport, config) = FakeTransport::new();
        Client::new(transport, config)?
    };
    run(client, on_cluster).await
}
