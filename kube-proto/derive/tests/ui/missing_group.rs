use kube_proto::CustomResource;
use kube_proto::schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[schemars(crate = "kube_proto::schemars")]
#[kube(version = "v1", kind = "Widget", namespaced)]
pub struct WidgetSpec {
    pub size: i32,
}

fn main() {}
