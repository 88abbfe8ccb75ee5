//! The list rules and atomic maps and structs of built-in kinds, from the table generated out of
//! the real server's OpenAPI document ([`schema_rules`](super::schema_rules), written by
//! `cargo run -p kube-proto-apply-gen`).
//!
//! A value is named by its dotted path from the object's root (field names, map keys included,
//! without indices), as the fake's list-key functions take it; `path[]` names the items of the
//! list at `path`. The path is walked through the kind's types: a field leads to its type (the
//! items' type for a list, the values' type for a map, whose key then takes one path segment).

use super::schema_rules::{KINDS, TYPES};

/// No nested type.
pub(super) const NONE: u16 = u16::MAX;

/// Whether server-side apply treats a field as one unit (`x-kubernetes-map-type: atomic`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Atomic {
    /// Granular: a map's keys and a struct's fields are fields of their own.
    No,
    /// The field's map or struct is one field: applied, compared and owned whole.
    Value,
    /// Each item of the (keyed or set) list is one field (a list of `OwnerReference`s).
    Items,
}

/// A field of a type that leads somewhere: to a nested type, to a list rule, or to an atomic
/// map or struct.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field {
    name: &'static str,
    /// The index in `TYPES` of the field's type (of its items or values): [`NONE`] for scalars.
    child: u16,
    /// Whether the field is a map, whose next path segment is a key.
    map: bool,
    /// Server-side apply: `None` atomic, `"$value"` a set, else the key fields comma-separated,
    /// an optional one with its default as `name=<JSON>` (`protocol="TCP"`).
    ssa: Option<&'static str>,
    /// Strategic merge patch: `None` replaced whole, `"$value"` merged by value, else the merge key.
    smp: Option<&'static str>,
    /// Server-side apply: whether the field (or each of its items) is one unit.
    atomic: Atomic,
}

impl Field {
    pub(super) const fn new(
        name: &'static str,
        child: u16,
        map: bool,
        ssa: Option<&'static str>,
        smp: Option<&'static str>,
        atomic: Atomic,
    ) -> Self {
        Field { name, child, map, ssa, smp, atomic }
    }
}

/// The schema of one built-in kind: its list rules and atomic maps and structs by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindSchema {
    root: u16,
}

impl KindSchema {
    /// The schema of a built-in kind of Kubernetes 1.36 (`group` empty for the core group), if
    /// the table has it.
    pub fn of(group: &str, version: &str, kind: &str) -> Option<Self> {
        KINDS
            .binary_search_by(|(g, v, k, _)| (*g, *v, *k).cmp(&(group, version, kind)))
            .ok()
            .and_then(|i| KINDS.get(i))
            .map(|&(_, _, _, root)| KindSchema { root })
    }

    fn field(self, path: &str) -> Option<&'static Field> {
        let mut ty = self.root;
        let mut found: Option<&'static Field> = None;
        let mut in_map = false;
        for seg in path.split('.') {
            if in_map {
                // A map key: the values' type continues.
                in_map = false;
                found = None;
                continue;
            }
            let fields = TYPES.get(usize::from(ty))?;
            let f = fields.binary_search_by(|f| f.name.cmp(seg)).ok().and_then(|i| fields.get(i))?;
            found = Some(f);
            in_map = f.map;
            ty = f.child;
        }
        // Ending on a map field (`in_map`): the map itself.
        found
    }

    /// How server-side apply merges the value at `path`, as the fake's list-key functions say it:
    ///
    /// - a list: `None` atomic (replaced whole), [`MERGE_BY_VALUE`](super::MERGE_BY_VALUE) a set,
    ///   else its key fields comma-separated, an optional key field with the default that stands
    ///   in when an item leaves it out (`containerPort,protocol="TCP"`);
    /// - a map or struct: [`ATOMIC`](super::ATOMIC) if it is one unit
    ///   (`x-kubernetes-map-type: atomic`, such as a `LabelSelector` or `PodSpec.nodeSelector`),
    ///   else `None` (granular);
    /// - the items of a list, as `path[]`: [`ATOMIC`](super::ATOMIC) if each is one unit (the
    ///   `OwnerReference`s of `metadata.ownerReferences`), else `None`.
    pub fn apply_list_key(self, path: &str) -> Option<&'static str> {
        if let Some(list) = path.strip_suffix("[]") {
            return self.field(list).filter(|f| f.atomic == Atomic::Items).map(|_| super::ATOMIC);
        }
        let f = self.field(path)?;
        if f.atomic == Atomic::Value { Some(super::ATOMIC) } else { f.ssa }
    }

    /// How strategic merge patch merges the list at `path`: `None` replaced whole,
    /// [`MERGE_BY_VALUE`](super::MERGE_BY_VALUE) merged by value, else its merge key.
    pub fn strategic_list_key(self, path: &str) -> Option<&'static str> {
        self.field(path).and_then(|f| f.smp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::{MERGE_BY_VALUE, builtin_list_key};

    fn kind(g: &str, v: &str, k: &str) -> KindSchema {
        KindSchema::of(g, v, k).unwrap_or_else(|| panic!("{g}/{v} {k} is in the table"))
    }

    #[test]
    fn lists_of_a_deployment_follow_the_schema() {
        let d = kind("apps", "v1", "Deployment");
        let c = "spec.template.spec.containers";
        assert_eq!(d.apply_list_key(c), Some("name"));
        // Apply keys container ports by port and protocol; strategic merge patch by port alone.
        assert_eq!(d.apply_list_key(&format!("{c}.ports")), Some("containerPort,protocol=\"TCP\""));
        assert_eq!(d.strategic_list_key(&format!("{c}.ports")), Some("containerPort"));
        assert_eq!(d.apply_list_key(&format!("{c}.env")), Some("name"));
        assert_eq!(d.apply_list_key("spec.template.spec.imagePullSecrets"), Some("name=\"\""));
        assert_eq!(d.apply_list_key(&format!("{c}.args")), None, "atomic");
        assert_eq!(d.apply_list_key("spec.template.spec.tolerations"), None, "atomic");
        assert_eq!(d.apply_list_key("metadata.finalizers"), Some(MERGE_BY_VALUE));
        assert_eq!(d.apply_list_key("metadata.ownerReferences"), Some("uid"));
        assert_eq!(d.apply_list_key("status.conditions"), Some("type"));
        // Not lists, or not fields at all.
        assert_eq!(d.apply_list_key("spec.replicas"), None);
        assert_eq!(d.apply_list_key("spec.nothing.here"), None);
        assert_eq!(d.apply_list_key(""), None);
    }

    #[test]
    fn kinds_the_hand_kept_table_did_not_know() {
        // Service ports: keyed by port and protocol for apply, by port for strategic merge patch.
        let svc = kind("", "v1", "Service");
        assert_eq!(svc.apply_list_key("spec.ports"), Some("port,protocol=\"TCP\""));
        assert_eq!(svc.strategic_list_key("spec.ports"), Some("port"));
        // A ClusterRole's rules are atomic; a RoleBinding's subjects too.
        assert_eq!(kind("rbac.authorization.k8s.io", "v1", "ClusterRole").apply_list_key("rules"), None);
        // An EndpointSlice's endpoints are atomic; its ports too.
        assert_eq!(kind("discovery.k8s.io", "v1", "EndpointSlice").apply_list_key("endpoints"), None);
        // A CronJob's pod template is two levels further down.
        let cj = kind("batch", "v1", "CronJob");
        assert_eq!(cj.apply_list_key("spec.jobTemplate.spec.template.spec.initContainers"), Some("name"));
        // Ingress rules are atomic, a NetworkPolicy's ingress list too.
        assert_eq!(kind("networking.k8s.io", "v1", "Ingress").apply_list_key("spec.rules"), None);
        // A CRD's schema is recursive through a map: `properties.<name>` continues the type.
        let crd = kind("apiextensions.k8s.io", "v1", "CustomResourceDefinition");
        assert_eq!(crd.apply_list_key("spec.versions"), None, "atomic in the schema");
        let props = "spec.versions.schema.openAPIV3Schema.properties.spec.properties.size";
        assert_eq!(crd.apply_list_key(&format!("{props}.x-kubernetes-validations")), Some("rule"));
        assert!(KindSchema::of("example.com", "v1", "Widget").is_none());
        assert!(KindSchema::of("apps", "v1beta1", "Deployment").is_none());
    }

    #[test]
    fn agrees_with_the_hand_kept_table_where_it_was_right() {
        let pod = kind("", "v1", "Pod");
        for path in [
            "spec.containers",
            "spec.initContainers",
            "spec.ephemeralContainers",
            "spec.containers.env",
            "spec.containers.volumeMounts",
            "spec.containers.volumeDevices",
            "spec.volumes",
            "spec.imagePullSecrets",
            "spec.hostAliases",
            "spec.schedulingGates",
            "spec.resourceClaims",
            "status.conditions",
            "status.podIPs",
            "status.hostIPs",
            "metadata.finalizers",
            "metadata.ownerReferences",
            "spec.tolerations",
            "spec.containers.command",
        ] {
            assert_eq!(pod.strategic_list_key(path), builtin_list_key(path), "{path}");
        }
        // Where it was not: the schema has no patch strategy (nor list type) for these.
        assert_eq!(builtin_list_key("spec.containers.resizePolicy"), Some("resourceName"));
        assert_eq!(pod.strategic_list_key("spec.containers.resizePolicy"), None);
        assert_eq!(pod.apply_list_key("spec.containers.resizePolicy"), None);
        let node = kind("", "v1", "Node");
        assert_eq!(node.apply_list_key("spec.podCIDRs"), Some(MERGE_BY_VALUE));
        assert_eq!(node.strategic_list_key("status.addresses"), Some("type"));
    }

    /// A port applied without its protocol is keyed (and stored) with the default `TCP`, as the
    /// real server does; the same port applied with `TCP` is the same item.
    #[test]
    fn key_defaults_stand_in_for_missing_key_fields() {
        use crate::patch::{FieldOwners, apply};
        use serde_json::json;
        let d = kind("apps", "v1", "Deployment");
        let keys = |p: &str| d.apply_list_key(p);
        let dep = |port: serde_json::Value| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                   "spec": {"template": {"spec": {"containers": [{"name": "app", "ports": [port]}]}}}})
        };
        let mut owners = FieldOwners::new();
        let live = apply(None, &dep(json!({"containerPort": 80})), "a", false, &mut owners, &keys).unwrap();
        let ports = &live["spec"]["template"]["spec"]["containers"][0]["ports"];
        assert_eq!(ports, &json!([{"containerPort": 80, "protocol": "TCP"}]));
        let fields = owners.to_managed_fields("apps/v1", "t");
        let set =
            &fields[0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"app\"}"]["f:ports"];
        assert_eq!(
            set,
            &json!({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}),
            "{fields}"
        );
        let again =
            apply(Some(&live), &dep(json!({"containerPort": 80, "protocol": "TCP"})), "b", false, &mut owners, &keys)
                .unwrap();
        assert_eq!(again["spec"]["template"]["spec"]["containers"][0]["ports"], *ports, "one item, not two");
    }
}
