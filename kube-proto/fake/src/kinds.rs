//! The kinds the fake API server serves: the common built-in kinds, plus custom resources
//! registered by creating a CustomResourceDefinition (or by hand).

use serde_json::Value;

use kube_proto::ApiResource;

/// Where a kind's scale subresource reads and writes (`.spec.replicas` for Deployments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    /// Dotted path of the desired replicas, such as `spec.replicas`.
    pub spec_replicas: String,
    /// Dotted path of the observed replicas, such as `status.replicas`.
    pub status_replicas: String,
    /// Dotted path of the label selector: a string, or a `LabelSelector` object.
    pub label_selector: Option<String>,
}

/// Checks that an object decodes as its typed Rust struct (the fake's stand-in for the real
/// server's schema validation of built-in kinds).
pub type Validator = fn(&Value) -> Result<(), String>;

/// A kind the fake API server serves.
#[derive(Debug, Clone)]
pub struct KindInfo {
    /// Group, version, kind, plural and scope.
    pub resource: ApiResource,
    /// Whether `status` is a separate subresource (writes to the main resource ignore it).
    pub status_subresource: bool,
    /// The scale subresource, if any.
    pub scale: Option<ScalePaths>,
    /// Whether this is a built-in kind (strategic merge patch only works on those).
    pub builtin: bool,
    /// Whether `metadata.generation` is maintained.
    pub generation: bool,
    /// Schema check for built-in kinds.
    pub validate: Option<Validator>,
}

impl KindInfo {
    /// A custom resource kind.
    pub fn custom(resource: ApiResource, status_subresource: bool, scale: Option<ScalePaths>) -> Self {
        KindInfo { resource, status_subresource, scale, builtin: false, generation: true, validate: None }
    }

    /// The plural with its group, as the API server names it in messages: `deployments.apps`.
    pub fn qualified_plural(&self) -> String {
        if self.resource.group.is_empty() {
            self.resource.plural.clone()
        } else {
            format!("{}.{}", self.resource.plural, self.resource.group)
        }
    }
}

fn validate_as<K: serde::de::DeserializeOwned>(v: &Value) -> Result<(), String> {
    K::deserialize(v).map(drop).map_err(|e| e.to_string())
}

fn replicas_scale(selector: &str) -> Option<ScalePaths> {
    Some(ScalePaths {
        spec_replicas: "spec.replicas".into(),
        status_replicas: "status.replicas".into(),
        label_selector: Some(selector.into()),
    })
}

/// The built-in kinds served by default.
pub fn builtin_kinds() -> Vec<KindInfo> {
    use k8s_openapi::api::{apps::v1 as apps, batch::v1 as batch, coordination::v1 as coord, core::v1 as core};
    use k8s_openapi::api::{policy::v1 as policy, rbac::v1 as rbac};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;

    struct B(&'static str, &'static str, &'static str, &'static str, bool, bool, Option<ScalePaths>, Validator);
    let table = [
        B("", "v1", "Namespace", "namespaces", false, true, None, validate_as::<core::Namespace>),
        B("", "v1", "ConfigMap", "configmaps", true, false, None, validate_as::<core::ConfigMap>),
        B("", "v1", "Secret", "secrets", true, false, None, validate_as::<core::Secret>),
        B("", "v1", "Pod", "pods", true, true, None, validate_as::<core::Pod>),
        B("", "v1", "Service", "services", true, true, None, validate_as::<core::Service>),
        B("", "v1", "ServiceAccount", "serviceaccounts", true, false, None, validate_as::<core::ServiceAccount>),
        B("", "v1", "Endpoints", "endpoints", true, false, None, validate_as::<core::Endpoints>),
        B("", "v1", "Event", "events", true, false, None, validate_as::<core::Event>),
        // The same Events as the API server's events.k8s.io view of them; stored apart here.
        B(
            "events.k8s.io",
            "v1",
            "Event",
            "events",
            true,
            false,
            None,
            validate_as::<k8s_openapi::api::events::v1::Event>,
        ),
        B("", "v1", "Node", "nodes", false, true, None, validate_as::<core::Node>),
        B("", "v1", "PersistentVolume", "persistentvolumes", false, true, None, validate_as::<core::PersistentVolume>),
        B(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            true,
            None,
            validate_as::<core::PersistentVolumeClaim>,
        ),
        B(
            "",
            "v1",
            "ReplicationController",
            "replicationcontrollers",
            true,
            true,
            replicas_scale("spec.selector"),
            validate_as::<core::ReplicationController>,
        ),
        B(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            true,
            replicas_scale("spec.selector"),
            validate_as::<apps::Deployment>,
        ),
        B(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            true,
            true,
            replicas_scale("spec.selector"),
            validate_as::<apps::ReplicaSet>,
        ),
        B(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            true,
            true,
            replicas_scale("spec.selector"),
            validate_as::<apps::StatefulSet>,
        ),
        B("apps", "v1", "DaemonSet", "daemonsets", true, true, None, validate_as::<apps::DaemonSet>),
        B("batch", "v1", "Job", "jobs", true, true, None, validate_as::<batch::Job>),
        B("batch", "v1", "CronJob", "cronjobs", true, true, None, validate_as::<batch::CronJob>),
        B("coordination.k8s.io", "v1", "Lease", "leases", true, false, None, validate_as::<coord::Lease>),
        B(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            true,
            None,
            validate_as::<policy::PodDisruptionBudget>,
        ),
        B("rbac.authorization.k8s.io", "v1", "Role", "roles", true, false, None, validate_as::<rbac::Role>),
        B(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
            false,
            None,
            validate_as::<rbac::RoleBinding>,
        ),
        B(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            false,
            None,
            validate_as::<rbac::ClusterRole>,
        ),
        B(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            false,
            None,
            validate_as::<rbac::ClusterRoleBinding>,
        ),
        B(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            true,
            None,
            validate_as::<apiext::CustomResourceDefinition>,
        ),
    ];
    table
        .into_iter()
        .map(|B(group, version, kind, plural, namespaced, status, scale, validate)| KindInfo {
            resource: ApiResource::new(group, version, kind, plural, namespaced),
            status_subresource: status,
            scale,
            builtin: true,
            // Kinds with a spec/status split keep a generation; ConfigMaps and the like do not.
            generation: status && kind != "Namespace" && kind != "Node" && kind != "PersistentVolume",
            validate: Some(validate),
        })
        .collect()
}

/// The custom resource kinds a CustomResourceDefinition object declares (one per served version).
pub fn kinds_from_crd(crd: &Value) -> Vec<KindInfo> {
    let spec = &crd["spec"];
    let (Some(group), Some(kind), Some(plural)) =
        (spec["group"].as_str(), spec["names"]["kind"].as_str(), spec["names"]["plural"].as_str())
    else {
        return Vec::new();
    };
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut out = Vec::new();
    for v in spec["versions"].as_array().into_iter().flatten() {
        let Some(version) = v["name"].as_str() else { continue };
        if v["served"].as_bool() == Some(false) {
            continue;
        }
        let sub = &v["subresources"];
        let scale = sub.get("scale").map(|s| ScalePaths {
            spec_replicas: jsonpath_to_dotted(s["specReplicasPath"].as_str().unwrap_or(".spec.replicas")),
            status_replicas: jsonpath_to_dotted(s["statusReplicasPath"].as_str().unwrap_or(".status.replicas")),
            label_selector: s["labelSelectorPath"].as_str().map(jsonpath_to_dotted),
        });
        out.push(KindInfo::custom(
            ApiResource::new(group, version, kind, plural, namespaced),
            sub.get("status").is_some(),
            scale,
        ));
    }
    out
}

fn jsonpath_to_dotted(p: &str) -> String {
    p.trim_start_matches('.').to_owned()
}
