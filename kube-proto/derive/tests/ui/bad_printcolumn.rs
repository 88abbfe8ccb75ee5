use kube_proto::CustomResource;
use kube_proto::schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[schemars(crate = "kube_proto::schemars")]
#[kube(group = "example.com", version = "v1", kind = "Widget", printcolumn(name = "Size", type_ = "integer"))]
pub struct WidgetSpec {
    pub size: i32,
}

fn main() {}
