//! Two field managers share one Deployment with server-side apply, each sending only the fields
//! it owns as an apply configuration (kube-proto-apply), on tokio and transport-hyper:
//!
//! 1. `deployer` applies the Deployment: selector, template, image.
//! 2. `scaler` applies `spec.replicas` alone: no conflict, and `deployer` keeps the rest.
//! 3. `deployer` extracts its own part from the live object (`managed_fields::extract`), changes
//!    the image and applies it again: `scaler`'s replicas stay, nobody is forced.
//!
//! A k8s-openapi `Deployment` would not do for `scaler`: its required `selector` and `template`
//! go out too (as `{}`); the selector is atomic (one field), so `{}` conflicts with `deployer`'s
//! (and, forced, would replace it).
//!
//! By default it runs on the embedded fake API server; with `--cluster` (or
//! `KUBE_DEMO_CLUSTER=1`) on your kubeconfig's cluster, in its default namespace, where it
//! creates the Deployment `apply-config-demo` and deletes it at the end.
//!
//! ```sh
//! cargo run --example apply_config              # embedded fake API server
//! cargo run --example apply_config -- --cluster # your kubeconfig's cluster
//! ```

use k8s_openapi::api::apps::v1::Deployment;
use kube_proto::DeleteParams;
use kube_proto::managed_fields::extract;
use kube_proto_apply::api::apps::v1::{DeploymentApplyConfiguration, DeploymentSpecApplyConfiguration};
use kube_proto_apply::api::core::v1::{
    ContainerApplyConfiguration, PodSpecApplyConfiguration, PodTemplateSpecApplyConfiguration,
};
use kube_proto_apply::apimachinery::pkg::apis::meta::v1::{
    LabelSelectorApplyConfiguration, ObjectMetaApplyConfiguration,
};
use kube_runtime::fake::FakeTransport;
use kube_runtime::{Api, Client};
use serde_json::Value;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const NAME: &str = "apply-config-demo";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let on_cluster =
        std::env::args().any(|a| a == "--cluster") || std::env::var("KUBE_DEMO_CLUSTER").is_ok_and(|v| v == "1");
    let client = if on_cluster {
        println!("apply_config on your kubeconfig's cluster (default namespace)");
        transport_hyper::try_default().await?
    } else {
        println!("apply_config on the embedded fake API server (pass --cluster to use a real one)");
        let (transport, config) = FakeTransport::new();
        Client::new(transport, config)?
    };
    let deployments: Api<Deployment> = Api::default_namespaced(client.clone());
    let ns = client.default_namespace().to_owned();

    // 1. The deployer owns the selector and the pod template.
    let deployer =
        DeploymentApplyConfiguration::new(NAME, &ns).with_spec(
            DeploymentSpecApplyConfiguration::new()
                .with_selector(LabelSelectorApplyConfiguration::new().with_match_label("app", NAME))
                .with_template(
                    PodTemplateSpecApplyConfiguration::new()
                        .with_metadata(ObjectMetaApplyConfiguration::new().with_label("app", NAME))
                        .with_spec(PodSpecApplyConfiguration::new().with_container(
                            ContainerApplyConfiguration::new().with_name("web").with_image("nginx:1.28"),
                        )),
                ),
        );
    deployments.apply(NAME, &deployer, "deployer").await?;

    // 2. The scaler owns the replicas alone: no conflict with the deployer.
    let scaler = DeploymentApplyConfiguration::new(NAME, &ns)
        .with_spec(DeploymentSpecApplyConfiguration::new().with_replicas(3));
    let d = deployments.apply(NAME, &scaler, "scaler").await?;
    show("after both applied", &d)?;

    // 3. The deployer reads back its own part, changes the image and applies it again.
    let mut mine: DeploymentApplyConfiguration = extract(&d, "deployer")?;
    let container = mine
        .spec
        .as_mut()
        .and_then(|s| s.template.as_mut())
        .and_then(|t| t.spec.as_mut())
        .and_then(|p| p.containers.as_mut())
        .and_then(|c| c.first_mut())
        .ok_or("the deployer's part has its container")?;
    container.image = Some("nginx:1.29".into());
    let d = deployments.apply(NAME, &mine, "deployer").await?;
    show("after the deployer re-applied its extracted part", &d)?;
    let spec = &d.spec;
    assert_eq!(spec.replicas, Some(3), "the scaler's replicas stay");
    assert_eq!(spec.template.spec.as_ref().map(|p| p.containers[0].image.as_deref()), Some(Some("nginx:1.29")));

    if on_cluster {
        deployments.delete(NAME, &DeleteParams::default()).await?;
        println!("deleted {NAME}");
    }
    Ok(())
}

/// The replicas, the image and who owns what.
fn show(when: &str, d: &Deployment) -> Result<(), BoxError> {
    let spec = &d.spec;
    let image = spec.template.spec.as_ref().and_then(|p| p.containers.first()).and_then(|c| c.image.clone());
    println!("{when}: replicas {:?}, image {:?}", spec.replicas, image.unwrap_or_default());
    for e in d.metadata.managed_fields.iter().flatten() {
        let manager = e.manager.as_deref().unwrap_or("");
        if manager != "deployer" && manager != "scaler" {
            continue; // the deployment controller writes status too, on a cluster
        }
        let fields = e.fields_v1.as_ref().map_or(Value::Null, |f| f.0.clone());
        println!("  {manager} ({}) owns {}", e.operation.as_deref().unwrap_or(""), fields);
    }
    Ok(())
}
