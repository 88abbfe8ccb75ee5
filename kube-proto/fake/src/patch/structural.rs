//! Server-side apply's rules for a custom resource, from its CRD's structural schema (an
//! `openAPIV3Schema`): `x-kubernetes-list-type` and `x-kubernetes-list-map-keys` for lists (a list
//! without a type is atomic, as for the real server's custom resources), and
//! `x-kubernetes-map-type: atomic` for maps and structs, answered per dotted path as
//! [`KindSchema::apply_list_key`](super::KindSchema::apply_list_key) answers for built-ins.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ATOMIC, MERGE_BY_VALUE};

/// How deep a schema is read; deeper levels are granular maps and atomic lists.
const MAX_DEPTH: usize = 64;

/// Server-side apply's rules of one custom resource version, read from its structural schema.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StructuralRules {
    root: Node,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    /// What the list-key function says for the value here: a list's rule, or [`ATOMIC`] for an
    /// atomic map or struct.
    rule: Option<String>,
    /// A list whose items are atomic maps or structs.
    atomic_items: bool,
    /// The properties (of the items, for a list).
    fields: BTreeMap<String, Node>,
    /// The values of a map (`additionalProperties`; of the items, for a list of maps).
    values: Option<Box<Node>>,
}

impl StructuralRules {
    /// The rules of a structural schema (a CRD version's `schema.openAPIV3Schema`).
    pub fn from_schema(schema: &Value) -> Self {
        StructuralRules { root: Node::read(schema, 0) }
    }

    /// What the fake's list-key functions say for the value at `path` (field names and map keys,
    /// without indices; `path[]` for a list's items): a list's key fields (with defaults,
    /// `name="x"`), [`MERGE_BY_VALUE`] for a set, `None` for an atomic list, [`ATOMIC`] for an
    /// atomic map or struct (or items), else `None`.
    pub fn apply_list_key(&self, path: &str) -> Option<&str> {
        let (path, items) = match path.strip_suffix("[]") {
            Some(list) => (list, true),
            None => (path, false),
        };
        let mut node = &self.root;
        for seg in path.split('.') {
            node = match node.fields.get(seg) {
                Some(n) => n,
                None => node.values.as_deref()?,
            };
        }
        if items { node.atomic_items.then_some(ATOMIC) } else { node.rule.as_deref() }
    }
}

impl Node {
    fn read(schema: &Value, depth: usize) -> Self {
        let mut node = Node::default();
        if depth > MAX_DEPTH {
            return node;
        }
        let ext = |s: &Value, k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut content = schema;
        if schema.get("type").and_then(Value::as_str) == Some("array") {
            let items = schema.get("items").unwrap_or(&Value::Null);
            node.rule = match ext(schema, "x-kubernetes-list-type").as_deref() {
                Some("set") => Some(MERGE_BY_VALUE.to_owned()),
                Some("map") => Some(map_keys(schema, items)),
                _ => None,
            };
            node.atomic_items = ext(items, "x-kubernetes-map-type").as_deref() == Some("atomic");
            content = items;
        } else if ext(schema, "x-kubernetes-map-type").as_deref() == Some("atomic") {
            node.rule = Some(ATOMIC.to_owned());
            return node;
        }
        if let Some(props) = content.get("properties").and_then(Value::as_object) {
            for (name, p) in props {
                node.fields.insert(name.clone(), Node::read(p, depth + 1));
            }
        }
        if let Some(values) = content.get("additionalProperties").filter(|v| v.is_object()) {
            node.values = Some(Box::new(Node::read(values, depth + 1)));
        }
        node
    }
}

/// A map-list's key fields, comma-separated; a key field the items do not require and that has
/// a default is given with it (`protocol="TCP"`), as the real server keys items that leave it
/// out. A map-list without keys merges by value.
fn map_keys(list: &Value, items: &Value) -> String {
    let keys: Vec<&str> = list
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if keys.is_empty() {
        return MERGE_BY_VALUE.to_owned();
    }
    let required = |k: &str| {
        items.get("required").and_then(Value::as_array).is_some_and(|r| r.iter().any(|x| x.as_str() == Some(k)))
    };
    keys.iter()
        .map(|k| match items.get("properties").and_then(|p| p.get(*k)).and_then(|p| p.get("default")) {
            Some(d) if !required(k) => format!("{k}={d}"),
            _ => (*k).to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::{FieldOwners, ManagerRef, Operation, apply, record_update_as};
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                             "properties": {"matchLabels": {"type": "object",
                                                            "additionalProperties": {"type": "string"}}}},
                "nodeSelector": {"type": "object", "x-kubernetes-map-type": "atomic",
                                 "additionalProperties": {"type": "string"}},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "args": {"type": "array", "items": {"type": "string"}},
                "ports": {"type": "array", "x-kubernetes-list-type": "map",
                          "x-kubernetes-list-map-keys": ["port", "protocol"],
                          "items": {"type": "object", "required": ["port"], "properties": {
                              "port": {"type": "integer"},
                              "protocol": {"type": "string", "default": "TCP"},
                              "name": {"type": "string"}}}},
                "refs": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                         "items": {"type": "object", "x-kubernetes-map-type": "atomic", "required": ["name"],
                                   "properties": {"name": {"type": "string"}, "kind": {"type": "string"}}}},
                "groups": {"type": "object", "additionalProperties": {
                    "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["id"],
                    "items": {"type": "object", "properties": {"id": {"type": "string"}}}}}
            }}
        }})
    }

    #[test]
    fn rules_by_path() {
        let r = StructuralRules::from_schema(&schema());
        assert_eq!(r.apply_list_key("spec.selector"), Some(ATOMIC));
        assert_eq!(r.apply_list_key("spec.selector.matchLabels"), None, "inside an atomic struct");
        assert_eq!(r.apply_list_key("spec.nodeSelector"), Some(ATOMIC));
        assert_eq!(r.apply_list_key("spec.labels"), None);
        assert_eq!(r.apply_list_key("spec"), None);
        assert_eq!(r.apply_list_key("spec.tags"), Some(MERGE_BY_VALUE));
        assert_eq!(r.apply_list_key("spec.args"), None, "atomic, the default for custom resources");
        assert_eq!(r.apply_list_key("spec.ports"), Some("port,protocol=\"TCP\""));
        assert_eq!(r.apply_list_key("spec.refs"), Some("name"));
        assert_eq!(r.apply_list_key("spec.refs[]"), Some(ATOMIC));
        assert_eq!(r.apply_list_key("spec.ports[]"), None);
        assert_eq!(r.apply_list_key("spec.groups.blue"), Some("id"), "a map's values");
        assert_eq!(r.apply_list_key("spec.nothing"), None);
        assert_eq!(r.apply_list_key(""), None);
        assert_eq!(StructuralRules::from_schema(&json!(null)).apply_list_key("spec"), None);
    }

    #[test]
    fn a_custom_resource_applied_with_its_rules() {
        let r = StructuralRules::from_schema(&schema());
        let keys = |p: &str| r.apply_list_key(p);
        let cr = |spec: Value| json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec});
        let mut owners = FieldOwners::new();
        let live = apply(
            None,
            &cr(json!({"selector": {"matchLabels": {"a": "1"}}, "tags": ["x"], "ports": [{"port": 80}],
                       "refs": [{"name": "r", "kind": "K"}]})),
            "a",
            false,
            &mut owners,
            &keys,
        )
        .unwrap();
        let a = owners.entry("a", Operation::Apply).unwrap().fields.to_fields_v1();
        assert_eq!(
            a,
            json!({"f:spec": {
                "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}},
                "f:refs": {"k:{\"name\":\"r\"}": {}},
                "f:selector": {},
                "f:tags": {"v:\"x\"": {}}
            }})
        );
        assert_eq!(live["spec"]["ports"], json!([{"port": 80, "protocol": "TCP"}]));
        // b adds a tag and a port beside a's: merged, not replaced.
        let live =
            apply(Some(&live), &cr(json!({"tags": ["y"], "ports": [{"port": 443}]})), "b", false, &mut owners, &keys)
                .unwrap();
        assert_eq!(live["spec"]["tags"], json!(["x", "y"]));
        assert_eq!(live["spec"]["ports"].as_array().map(Vec::len), Some(2));
        // b's other selector conflicts on the whole selector.
        let err = apply(Some(&live), &cr(json!({"selector": {}})), "b", false, &mut owners.clone(), &keys).unwrap_err();
        assert_eq!(err.to_string(), "Apply failed with 1 conflict: conflict with \"a\": .spec.selector");
        // An update owns the selector whole.
        let mut edited = live.clone();
        edited["spec"]["selector"]["matchLabels"]["b"] = json!("2");
        record_update_as(Some(&live), &edited, ManagerRef::new("edit"), &mut owners, &keys);
        let e = owners.entry("edit", Operation::Update).unwrap().fields.to_fields_v1();
        assert_eq!(e, json!({"f:spec": {"f:selector": {}}}));
    }
}
