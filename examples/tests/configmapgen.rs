//! The configmapgen operator's whole demo (CRD, controller, finalizer, Events, Ready condition,
//! graceful shutdown) on the embedded fake, on tokio and on async-std: the same controller
//! code on both executors.

use kube_examples::configmapgen::demo;
use kube_runtime::Client;
use kube_runtime::fake::FakeTransport;

#[tokio::test]
async fn the_operator_runs_to_completion_on_tokio() {
    let (transport, config) = FakeTransport::new();
    demo(Client::new(transport, config).unwrap(), "default").await.unwrap();
}

#[async_std::test]
async fn the_operator_runs_to_completion_on_async_std() {
    let (transport, config) = FakeTransport::new();
    demo(Client::new(transport, config).unwrap(), "default").await.unwrap();
}
