//! What `#[derive(CustomResource)]` generates: the kind's struct, its wire form, its
//! `Resource` impl and its CustomResourceDefinition.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube_proto::crd::{CrdError, CustomResourceExt, merge_crds};
use kube_proto::schemars::JsonSchema;
use kube_proto::{CustomResource, Resource};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// A widget.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[schemars(crate = "kube_proto::schemars")]
#[kube(
    group = "derive.example.com",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus",
    scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.replicas"),
    printcolumn(name = "Color", type_ = "string", json_path = ".spec.color"),
    printcolumn = r#"{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1}"#,
    shortname = "wd",
    shortname = "wdg",
    category = "all",
    selectable = ".spec.color",
    validation = "self.spec.replicas <= 10",
    validation(rule = "self.metadata.name.size() < 20", message = "short names only"),
    derive = "PartialEq"
)]
pub struct WidgetSpec {
    /// How many.
    pub replicas: i32,
    /// Which color.
    pub color: Color,
    /// A label to show, if any.
    pub label: Option<String>,
    /// A port, by number or name.
    pub port: Option<IntOrString>,
    /// Anything at all.
    #[serde(default)]
    pub extra: Value,
    /// With a default.
    #[serde(default = "default_size")]
    pub size: u32,
    /// Free-form settings.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Nested parts.
    #[serde(default)]
    pub parts: Vec<Part>,
}

fn default_size() -> u32 {
    3
}

/// A widget's color.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[schemars(crate = "kube_proto::schemars")]
#[serde(rename_all = "lowercase")]
pub enum Color {
    /// Red.
    Red,
    /// Green.
    Green,
}

/// A part.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[schemars(crate = "kube_proto::schemars")]
pub struct Part {
    /// Its name.
    pub name: String,
    /// Its weight.
    pub weight: Option<f64>,
}

/// A widget's status.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema, Default)]
#[schemars(crate = "kube_proto::schemars")]
pub struct WidgetStatus {
    /// How many are there.
    pub replicas: i32,
}

/// A cluster-scoped kind without status, deprecated, with every name given.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[schemars(crate = "kube_proto::schemars")]
#[kube(
    group = "derive.example.com",
    version = "v1beta1",
    kind = "Gizmo",
    plural = "gizmoes",
    singular = "gizmo1",
    deprecated = "use v1",
    served = true,
    storage = false,
    doc = "Gizmos."
)]
pub struct GizmoSpec {
    /// A name.
    pub name: String,
}

fn spec() -> WidgetSpec {
    WidgetSpec {
        replicas: 2,
        color: Color::Red,
        label: None,
        port: Some(IntOrString::Int(80)),
        extra: Value::Null,
        size: 3,
        settings: BTreeMap::new(),
        parts: vec![],
    }
}

#[test]
fn the_kind_serializes_with_api_version_and_kind_and_round_trips() {
    let mut w = Widget::new("w1", spec());
    assert_eq!(w.metadata.name.as_deref(), Some("w1"));
    assert!(w.status.is_none());
    let v = serde_json::to_value(&w).unwrap();
    assert_eq!(v["apiVersion"], "derive.example.com/v1");
    assert_eq!(v["kind"], "Widget");
    assert_eq!(v["spec"]["color"], "red");
    assert!(v.get("status").is_none(), "no status until there is one: {v}");
    w.status = Some(WidgetStatus { replicas: 2 });
    let v = serde_json::to_value(&w).unwrap();
    assert_eq!(v["status"], json!({"replicas": 2}));
    let back: Widget = serde_json::from_value(v).unwrap();
    assert_eq!(back, w);
}

#[test]
fn the_resource_impl_names_the_kind() {
    assert_eq!(Widget::kind(&()), "Widget");
    assert_eq!(Widget::group(&()), "derive.example.com");
    assert_eq!(Widget::version(&()), "v1");
    assert_eq!(Widget::api_version(&()), "derive.example.com/v1");
    assert_eq!(Widget::plural(&()), "widgets");
    assert!(Widget::is_namespaced(&()));
    assert_eq!(Widget::url_path(&(), Some("ns")), "/apis/derive.example.com/v1/namespaces/ns/widgets");
    assert!(!Gizmo::is_namespaced(&()));
    assert_eq!(Gizmo::url_path(&(), Some("ns")), "/apis/derive.example.com/v1beta1/gizmoes");
    assert_eq!(Widget::crd_name(), "widgets.derive.example.com");
    assert_eq!(Widget::shortnames(), ["wd", "wdg"]);
    assert_eq!(Widget::api_resource(), kube_proto::ApiResource::erase::<Widget>(&()));
}

#[test]
fn the_crd_carries_every_attribute() {
    let crd = serde_json::to_value(Widget::crd().unwrap()).unwrap();
    let spec = &crd["spec"];
    assert_eq!(crd["metadata"]["name"], "widgets.derive.example.com");
    assert_eq!(spec["group"], "derive.example.com");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(
        spec["names"],
        json!({"kind": "Widget", "listKind": "WidgetList", "plural": "widgets", "singular": "widget",
               "shortNames": ["wd", "wdg"], "categories": ["all"]})
    );
    let v = &spec["versions"][0];
    assert_eq!(
        (v["name"].as_str(), v["served"].as_bool(), v["storage"].as_bool()),
        (Some("v1"), Some(true), Some(true))
    );
    assert_eq!(
        v["subresources"],
        json!({"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}})
    );
    assert_eq!(
        v["additionalPrinterColumns"],
        json!([{"name": "Color", "type": "string", "jsonPath": ".spec.color"},
               {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1}])
    );
    assert_eq!(v["selectableFields"], json!([{"jsonPath": ".spec.color"}]));
    let root = &v["schema"]["openAPIV3Schema"];
    assert_eq!(
        root["x-kubernetes-validations"],
        json!([{"rule": "self.spec.replicas <= 10"},
               {"rule": "self.metadata.name.size() < 20", "message": "short names only"}])
    );
    assert_eq!(root["type"], "object");
    assert_eq!(root["required"], json!(["spec"]));
    let s = &root["properties"]["spec"];
    assert_eq!(s["type"], "object");
    assert_eq!(s["required"], json!(["replicas", "color"]));
    let p = &s["properties"];
    assert_eq!(p["replicas"], json!({"type": "integer", "format": "int32", "description": "How many."}));
    assert_eq!(p["color"]["type"], "string");
    assert_eq!(p["color"]["enum"], json!(["red", "green"]));
    assert_eq!(p["color"]["description"], "Which color.");
    assert_eq!(p["label"], json!({"type": "string", "nullable": true, "description": "A label to show, if any."}));
    assert_eq!(p["port"]["x-kubernetes-int-or-string"], true);
    assert_eq!(p["port"]["nullable"], true);
    assert_eq!(p["extra"]["x-kubernetes-preserve-unknown-fields"], true);
    assert_eq!(p["size"]["default"], 3);
    assert_eq!(p["settings"]["additionalProperties"], json!({"type": "string"}));
    assert_eq!(
        p["parts"]["items"]["properties"]["weight"],
        json!({"type": "number", "format": "double", "nullable": true, "description": "Its weight."})
    );
    let status = &root["properties"]["status"];
    assert_eq!((status["type"].as_str(), status["nullable"].as_bool()), (Some("object"), Some(true)));
    assert!(!crd.to_string().contains("$ref"), "no $ref left: {crd}");
    assert!(!crd.to_string().contains("$defs"), "no $defs left: {crd}");
}

#[test]
fn a_kind_without_status_has_no_status_subresource() {
    let crd = serde_json::to_value(Gizmo::crd().unwrap()).unwrap();
    let v = &crd["spec"]["versions"][0];
    assert_eq!(crd["metadata"]["name"], "gizmoes.derive.example.com");
    assert_eq!(crd["spec"]["scope"], "Cluster");
    assert_eq!(crd["spec"]["names"]["singular"], "gizmo1");
    assert!(v.get("subresources").is_none());
    assert_eq!((v["deprecated"].as_bool(), v["deprecationWarning"].as_str()), (Some(true), Some("use v1")));
    assert_eq!(v["storage"], false);
    let root = &v["schema"]["openAPIV3Schema"];
    assert_eq!(root["description"], "Gizmos.");
    assert!(root["properties"].get("status").is_none());
    let g = Gizmo::new("g", GizmoSpec { name: "x".into() });
    assert!(serde_json::to_value(&g).unwrap().get("status").is_none());
}

mod v2 {
    use super::*;

    /// The second version of Widget.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
    #[schemars(crate = "kube_proto::schemars")]
    #[kube(
        group = "derive.example.com",
        version = "v2",
        kind = "Widget",
        namespaced,
        shortname = "wd",
        shortname = "wdg",
        category = "all"
    )]
    pub struct WidgetSpec {
        /// How many, as text.
        pub count: String,
    }
}

#[test]
fn versions_merge_into_one_crd_with_one_storage_version() {
    let merged = merge_crds(vec![Widget::crd().unwrap(), v2::Widget::crd().unwrap()], "v2").unwrap();
    let versions: Vec<(&str, bool)> = merged.spec.versions.iter().map(|v| (v.name.as_str(), v.storage)).collect();
    assert_eq!(versions, [("v1", false), ("v2", true)]);
    let err = merge_crds(vec![Widget::crd().unwrap(), v2::Widget::crd().unwrap()], "v3").unwrap_err();
    assert_eq!(err, CrdError::NoSuchStorageVersion { storage: "v3".into(), versions: "v1, v2".into() });
    let err = merge_crds(vec![Widget::crd().unwrap(), Widget::crd().unwrap()], "v1").unwrap_err();
    assert_eq!(err, CrdError::DuplicateVersion("v1".into()));
    let err = merge_crds(vec![Widget::crd().unwrap(), Gizmo::crd().unwrap()], "v1").unwrap_err();
    assert!(matches!(err, CrdError::Mismatch { ref field, .. } if field == "metadata.name"), "{err}");
    assert_eq!(merge_crds(vec![], "v1").unwrap_err(), CrdError::NothingToMerge);
}

/// A recursive type has no structural schema: a typed error, not a panic.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[schemars(crate = "kube_proto::schemars")]
#[kube(group = "derive.example.com", version = "v1", kind = "Tree")]
pub struct TreeSpec {
    /// The root.
    pub root: Node,
}

/// A node of a tree.
#[derive(Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[schemars(crate = "kube_proto::schemars")]
pub struct Node {
    /// Its children.
    pub children: Vec<Node>,
}

#[test]
fn a_recursive_spec_is_a_typed_error() {
    let err = Tree::crd().unwrap_err();
    assert!(matches!(err, CrdError::Schema { source: kube_proto::crd::SchemaError::Recursive { .. }, .. }), "{err}");
    assert!(err.to_string().contains(".spec.root.children[*]"), "{err}");
}
