//! A custom resource from a Rust struct with `#[derive(CustomResource)]`, on tokio and
//! transport-hyper: its CustomResourceDefinition installed and waited on until Established,
//! objects created (one with a field the schema does not know, which the server prunes, and
//! one missing a defaulted field, which the server fills in), listed, their status patched,
//! and an object breaking the schema refused with the server's reasons.
//!
//! By default it runs on the embedded fake API server, which holds custom resources to their
//! schema as the real one does. With `--cluster` (or `KUBE_DEMO_CLUSTER=1`) it runs on your
//! kubeconfig's cluster, in its default namespace, and deletes what it made (the CRD too)
//! at the end.
//!
//! ```sh
//! cargo run --example crd_derive             # embedded fake API server
//! cargo run --example crd_derive -- --cluster
//! ```

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube_proto::crd::CustomResourceExt;
use kube_proto::schemars::JsonSchema;
use kube_proto::{
    CustomResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, ResourceExt,
};
use kube_runtime::fake::FakeTransport;
use kube_runtime::wait::{await_condition, conditions};
use kube_runtime::{Api, Client, Error};
use serde::{Deserialize, Serialize};
use serde_json::json;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a Widget asks for.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[schemars(crate = "kube_proto::schemars")]
#[kube(
    group = "crd-derive.examples.kit.example.com",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    shortname = "wdg",
    printcolumn(name = "Color", type_ = "string", json_path = ".spec.color"),
    printcolumn(name = "Ready", type_ = "boolean", json_path = ".status.ready"),
    validation(rule = "self.spec.replicas <= 5", message = "at most 5 replicas")
)]
pub struct WidgetSpec {
    /// How many.
    #[schemars(range(min = 0))]
    pub replicas: i32,
    /// Its color.
    pub color: Color,
    /// Its size, medium unless said.
    #[serde(default = "medium")]
    pub size: String,
}

fn medium() -> String {
    "medium".into()
}

/// A widget's color.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, JsonSchema)]
#[schemars(crate = "kube_proto::schemars")]
#[serde(rename_all = "lowercase")]
pub enum Color {
    /// Red.
    Red,
    /// Blue.
    Blue,
}

/// What a controller saw of a Widget.
#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
#[schemars(crate = "kube_proto::schemars")]
pub struct WidgetStatus {
    /// Whether it is ready.
    pub ready: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let on_cluster =
        std::env::args().any(|a| a == "--cluster") || std::env::var("KUBE_DEMO_CLUSTER").is_ok_and(|v| v == "1");
    let client = if on_cluster {
        println!("crd_derive on your kubeconfig's cluster");
        transport_hyper::try_default().await?
    } else {
        println!("crd_derive on the embedded fake API server (pass --cluster to use a real one)");
        let (transport, config) = FakeTransport::new();
        Client::new(transport, config)?
    };

    // The CRD, made from the structs, installed and waited on.
    let crd = Widget::crd()?;
    println!("{}", serde_json::to_string_pretty(&crd)?);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => println!("created the CRD {}", Widget::crd_name()),
        Err(Error::Api(e)) if e.http_status() == 409 => println!("the CRD {} is there already", Widget::crd_name()),
        Err(e) => return Err(e.into()),
    }
    let established = await_condition(crds.clone(), Widget::crd_name(), conditions::is_crd_established());
    tokio::time::timeout(Duration::from_secs(30), established).await??;
    println!("the CRD is Established");

    let widgets: Api<Widget> = Api::default_namespaced(client.clone());
    // The same objects untyped, to send what the Rust types would not let through.
    let raw: Api<DynamicObject> = Api::default_namespaced_with(client.clone(), &Widget::api_resource());
    let result = use_widgets(&widgets, &raw).await;
    // Clean up whatever happened (on the fake there is nothing to keep either).
    for name in ["w1", "w2"] {
        let _ = widgets.delete(name, &DeleteParams::default()).await;
    }
    if on_cluster {
        crds.delete(Widget::crd_name(), &DeleteParams::default()).await?;
        println!("deleted the CRD");
    }
    result
}

async fn use_widgets(widgets: &Api<Widget>, raw: &Api<DynamicObject>) -> Result<(), BoxError> {
    let w1 = widgets
        .create(
            &PostParams::default(),
            &Widget::new("w1", WidgetSpec { replicas: 2, color: Color::Red, size: "large".into() }),
        )
        .await?;
    println!("created {} ({:?}, {} replicas)", w1.name_any(), w1.spec.color, w1.spec.replicas);

    // Sent as raw JSON: a field the schema does not know (pruned, with a warning) and no size
    // (the schema's default fills it in).
    let w2 = json!({
        "apiVersion": "crd-derive.examples.kit.example.com/v1", "kind": "Widget",
        "metadata": {"name": "w2"},
        "spec": {"replicas": 1, "color": "blue", "sparkle": true},
    });
    let w2: DynamicObject = serde_json::from_value(w2)?;
    let w2 = raw.create(&PostParams::default(), &w2).await?;
    println!("created w2 as sent without a size and with `sparkle`: the server stored {}", w2.data["spec"]);

    for w in widgets.list(&ListParams::default()).await? {
        println!("listed {}: {:?}, {} replicas, size {}", w.name_any(), w.spec.color, w.spec.replicas, w.spec.size);
    }

    let patched =
        widgets.patch_status("w1", &PatchParams::default(), &Patch::Merge(json!({"status": {"ready": true}}))).await?;
    println!("w1's status is now {:?}", patched.status);

    // Breaking the schema: a negative count and a color outside the enum.
    let bad = json!({
        "apiVersion": "crd-derive.examples.kit.example.com/v1", "kind": "Widget",
        "metadata": {"name": "bad"}, "spec": {"replicas": -1, "color": "green"},
    });
    let bad: DynamicObject = serde_json::from_value(bad)?;
    match raw.create(&PostParams::default(), &bad).await {
        Err(Error::Api(e)) => {
            println!("a Widget breaking the schema is refused: {e}");
        }
        other => return Err(format!("a Widget breaking the schema was not refused: {other:?}").into()),
    }
    Ok(())
}
