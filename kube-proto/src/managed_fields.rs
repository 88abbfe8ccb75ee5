//! What one field manager owns in an object, read back from its `metadata.managedFields`: the
//! apply configuration holding exactly those fields, as client-go's `Extract*` functions give it.
//!
//! A controller that applies with server-side apply should send only the fields it means to own.
//! To change one of them, it reads the object, [`extract`]s its own part, changes it and applies
//! it again: fields other managers own are never in what it sends, so it neither takes them over
//! nor removes them.
//!
//! ```
//! use kube_proto::managed_fields::extract;
//! use serde_json::{json, Value};
//!
//! let live = json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "cfg", "namespace": "default", "managedFields": [
//!         {"manager": "ours", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
//!          "fieldsV1": {"f:data": {"f:mode": {}}}},
//!         {"manager": "theirs", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
//!          "fieldsV1": {"f:data": {"f:size": {}}}},
//!     ]},
//!     "data": {"mode": "fast", "size": "3"},
//! });
//! let ours: Value = extract(&live, "ours").unwrap();
//! assert_eq!(ours, json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "cfg", "namespace": "default"},
//!     "data": {"mode": "fast"},
//! }));
//! ```
//!
//! The result type is anything that deserializes: a generated apply configuration
//! (`kube_proto_apply`, re-exported as `kube_proto::apply` with the `apply` feature), or a
//! `serde_json::Value`. No schema is needed: the field set names list items by their key fields
//! (`k:{"name":"web"}`), by value (`v:"x"`) or by index (`i:0`).

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Why [`extract`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The object did not serialize to a JSON object.
    #[error("the object is not a JSON object")]
    NotAnObject,
    /// `metadata.managedFields` is malformed (an entry that is not an object, a `fieldsV1` that
    /// is not an object, a key that is none of `f:`, `k:`, `v:`, `i:` and `.`).
    #[error("invalid managedFields: {0}")]
    InvalidManagedFields(String),
    /// The object or the extracted fields did not convert (into JSON, or into the requested type).
    #[error("cannot convert the extracted fields: {0}")]
    Convert(String),
}

/// The fields `field_manager` applied (operation `Apply`) through the main resource, as an
/// apply configuration of type `C`: see [`extract_subresource`].
pub fn extract<C: DeserializeOwned>(object: &impl Serialize, field_manager: &str) -> Result<C, ExtractError> {
    extract_with(object, field_manager, None)
}

/// The fields `field_manager` applied through `subresource` (`"status"`, as client-go's
/// `Extract<Kind>Status`), as an apply configuration of type `C`.
///
/// The result has the object's `apiVersion`, `kind`, `metadata.name` and `metadata.namespace`
/// (so that it can be applied again as it is) and, of everything else, exactly the fields in the
/// manager's `Apply` entries for that subresource: a field owned whole (a scalar, an atomic list
/// or struct) with its whole value, a list item with its key fields. A manager with no entry
/// gives the names alone.
pub fn extract_subresource<C: DeserializeOwned>(
    object: &impl Serialize,
    field_manager: &str,
    subresource: &str,
) -> Result<C, ExtractError> {
    extract_with(object, field_manager, Some(subresource))
}

fn extract_with<C: DeserializeOwned>(
    object: &impl Serialize,
    field_manager: &str,
    subresource: Option<&str>,
) -> Result<C, ExtractError> {
    let object = serde_json::to_value(object).map_err(|e| ExtractError::Convert(e.to_string()))?;
    let owned = owned_fields(&object, field_manager, subresource)?;
    serde_json::from_value(owned).map_err(|e| ExtractError::Convert(e.to_string()))
}

/// The part of `object` (JSON) that `field_manager` owns through its `Apply` entries for
/// `subresource` (`None` or `Some("")` for the main resource), with the object's `apiVersion`,
/// `kind`, `metadata.name` and `metadata.namespace`.
pub fn owned_fields(object: &Value, field_manager: &str, subresource: Option<&str>) -> Result<Value, ExtractError> {
    let Value::Object(obj) = object else {
        return Err(ExtractError::NotAnObject);
    };
    let want_sub = subresource.unwrap_or("");
    let entries = match obj.get("metadata").and_then(|m| m.get("managedFields")) {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => return Err(ExtractError::InvalidManagedFields("managedFields is not a list".into())),
    };
    let mut out = Value::Object(Map::new());
    for e in entries {
        let Value::Object(e) = e else {
            return Err(ExtractError::InvalidManagedFields("an entry is not an object".into()));
        };
        let s = |k: &str| e.get(k).and_then(Value::as_str);
        if s("manager") != Some(field_manager)
            || s("operation") != Some("Apply")
            || s("subresource").unwrap_or("") != want_sub
        {
            continue;
        }
        let set = match e.get("fieldsV1") {
            None | Some(Value::Null) => continue,
            Some(Value::Object(set)) => set,
            Some(_) => return Err(ExtractError::InvalidManagedFields("fieldsV1 is not an object".into())),
        };
        let part = walk(object, set, 0)?;
        union(&mut out, part);
    }
    let Value::Object(out_map) = &mut out else {
        return Err(ExtractError::NotAnObject);
    };
    for k in ["apiVersion", "kind"] {
        if let Some(v) = obj.get(k) {
            out_map.insert(k.to_owned(), v.clone());
        }
    }
    for k in ["name", "namespace"] {
        if let Some(v) = obj.get("metadata").and_then(|m| m.get(k)) {
            let meta = out_map.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(meta) = meta {
                meta.insert(k.to_owned(), v.clone());
            }
        }
    }
    Ok(out)
}

/// Field sets nest as deep as objects do; a set deeper than this is refused rather than
/// recursed into (a real object's is a few dozen levels at most).
const MAX_DEPTH: usize = 256;

/// The part of `value` named by the field set `set` (`FieldsV1`, one level).
fn walk(value: &Value, set: &Map<String, Value>, depth: usize) -> Result<Value, ExtractError> {
    if depth > MAX_DEPTH {
        return Err(ExtractError::InvalidManagedFields("the field set is nested too deep".into()));
    }
    match value {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, child) in set {
                if k == "." {
                    continue;
                }
                let child = child_set(k, child)?;
                let Some(name) = k.strip_prefix("f:") else {
                    // List item keys on an object: the object does not have them.
                    check_key(k)?;
                    continue;
                };
                let Some(v) = m.get(name) else { continue };
                if child.is_empty() {
                    out.insert(name.to_owned(), v.clone());
                } else {
                    out.insert(name.to_owned(), walk(v, child, depth + 1)?);
                }
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => {
            let mut matchers = Vec::new();
            for (k, child) in set {
                if k == "." {
                    continue;
                }
                let child = child_set(k, child)?;
                matchers.push((ItemKey::parse(k)?, child));
            }
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let Some((key, child)) = matchers.iter().find(|(key, _)| key.matches(i, item)) else {
                    continue;
                };
                match key {
                    ItemKey::Field => {}
                    ItemKey::Value(_) | ItemKey::Index(_) => {
                        out.push(if child.is_empty() { item.clone() } else { walk(item, child, depth + 1)? })
                    }
                    ItemKey::Keys(keys) => {
                        let mut part =
                            if child.is_empty() { Value::Object(Map::new()) } else { walk(item, child, depth + 1)? };
                        // The key fields identify the item when it is applied again.
                        if let Value::Object(p) = &mut part {
                            for (kf, kv) in keys {
                                p.insert(kf.clone(), kv.clone());
                            }
                        }
                        out.push(part);
                    }
                }
            }
            Ok(Value::Array(out))
        }
        other => Ok(other.clone()),
    }
}

fn child_set<'a>(key: &str, child: &'a Value) -> Result<&'a Map<String, Value>, ExtractError> {
    child
        .as_object()
        .ok_or_else(|| ExtractError::InvalidManagedFields(format!("the set under {key:?} is not an object")))
}

fn check_key(k: &str) -> Result<(), ExtractError> {
    ItemKey::parse(k).map(|_| ())
}

/// One key of a field set.
enum ItemKey {
    /// `f:name`: a field (not a list item).
    Field,
    /// `k:{...}`: the item whose key fields have these values.
    Keys(Map<String, Value>),
    /// `v:...`: the item with this value.
    Value(Value),
    /// `i:N`: the item at this index.
    Index(usize),
}

impl ItemKey {
    fn parse(k: &str) -> Result<Self, ExtractError> {
        let bad = || ExtractError::InvalidManagedFields(format!("bad field set key {k:?}"));
        if k.starts_with("f:") {
            return Ok(ItemKey::Field);
        }
        if let Some(j) = k.strip_prefix("k:") {
            return match serde_json::from_str(j) {
                Ok(Value::Object(m)) => Ok(ItemKey::Keys(m)),
                _ => Err(bad()),
            };
        }
        if let Some(j) = k.strip_prefix("v:") {
            return serde_json::from_str(j).map(ItemKey::Value).map_err(|_| bad());
        }
        if let Some(i) = k.strip_prefix("i:") {
            return i.parse().map(ItemKey::Index).map_err(|_| bad());
        }
        Err(bad())
    }

    fn matches(&self, index: usize, item: &Value) -> bool {
        match self {
            ItemKey::Field => false,
            ItemKey::Keys(keys) => {
                item.as_object().is_some_and(|m| keys.iter().all(|(k, v)| m.get(k).is_some_and(|iv| same(iv, v))))
            }
            ItemKey::Value(v) => same(item, v),
            ItemKey::Index(i) => *i == index,
        }
    }
}

/// JSON equality where numbers compare by value (`80` and `80.0` name the same port).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Deep union of two extracted parts (several entries of one manager).
fn union(base: &mut Value, part: Value) {
    match (base, part) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                match b.get_mut(&k) {
                    Some(bv) => union(bv, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, p) => *b = p,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(manager: &str, sub: Option<&str>, fields: Value) -> Value {
        let mut e = json!({"manager": manager, "operation": "Apply", "apiVersion": "apps/v1",
                           "fieldsType": "FieldsV1", "fieldsV1": fields});
        if let Some(s) = sub {
            e["subresource"] = json!(s);
        }
        e
    }

    fn deployment(managed: Vec<Value>) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
                         "labels": {"app": "web", "team": "a"}, "managedFields": managed},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [
                        {"name": "app", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                        {"name": "sidecar", "image": "envoy"}
                    ]}
                }
            },
            "status": {"replicas": 3, "conditions": [{"type": "Available", "status": "True"}]}
        })
    }

    #[test]
    fn keeps_exactly_the_managers_fields_with_list_keys() {
        let obj = deployment(vec![
            entry(
                "ours",
                None,
                json!({"f:metadata": {"f:labels": {"f:team": {}}},
                       "f:spec": {"f:template": {"f:spec": {"f:containers": {
                           "k:{\"name\":\"app\"}": {".": {}, "f:name": {}, "f:env": {
                               "k:{\"name\":\"B\"}": {".": {}, "f:name": {}, "f:value": {}}}}}}}}}),
            ),
            entry(
                "theirs",
                None,
                json!({"f:spec": {"f:replicas": {}, "f:selector": {}, "f:template": {"f:spec": {"f:containers": {
                           "k:{\"name\":\"app\"}": {"f:image": {}}}}}}}),
            ),
        ]);
        let ours: Value = extract(&obj, "ours").unwrap();
        assert_eq!(
            ours,
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                   "metadata": {"name": "web", "namespace": "ns", "labels": {"team": "a"}},
                   "spec": {"template": {"spec": {"containers": [
                       {"name": "app", "env": [{"name": "B", "value": "2"}]}]}}}})
        );
        let theirs: Value = extract(&obj, "theirs").unwrap();
        assert_eq!(
            theirs["spec"],
            json!({"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                   "template": {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}})
        );
    }

    #[test]
    fn subresource_entries_are_apart() {
        let obj = deployment(vec![
            entry("ctl", None, json!({"f:spec": {"f:replicas": {}}})),
            entry(
                "ctl",
                Some("status"),
                json!({"f:status": {"f:conditions": {"k:{\"type\":\"Available\"}": {"f:status": {}}}}}),
            ),
        ]);
        let main: Value = extract(&obj, "ctl").unwrap();
        assert_eq!(main["spec"], json!({"replicas": 3}));
        assert!(main.get("status").is_none());
        let status: Value = extract_subresource(&obj, "ctl", "status").unwrap();
        assert_eq!(status["status"], json!({"conditions": [{"type": "Available", "status": "True"}]}));
        assert!(status.get("spec").is_none());
    }

    #[test]
    fn update_entries_and_unknown_managers_give_names_only() {
        let mut e = entry("kubectl", None, json!({"f:spec": {"f:replicas": {}}}));
        e["operation"] = json!("Update");
        let obj = deployment(vec![e]);
        for m in ["kubectl", "nobody"] {
            let v: Value = extract(&obj, m).unwrap();
            assert_eq!(
                v,
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ns"}})
            );
        }
    }

    #[test]
    fn set_and_index_items() {
        let obj = json!({"metadata": {"name": "x", "finalizers": ["a", "b", "c"], "managedFields": [
            {"manager": "m", "operation": "Apply", "fieldsV1": {
                "f:metadata": {"f:finalizers": {"v:\"c\"": {}, "v:\"a\"": {}}},
                "f:list": {"i:1": {}}}}]},
            "list": [10, 20, 30]});
        let v: Value = extract(&obj, "m").unwrap();
        assert_eq!(v, json!({"metadata": {"name": "x", "finalizers": ["a", "c"]}, "list": [20]}));
    }

    #[test]
    fn malformed_field_sets_are_typed_errors() {
        for fields in [json!({"f:data": "x"}), json!({"f:data": {"q:1": {}}}), json!({"f:list": {"k:not json": {}}})] {
            let obj = json!({"metadata": {"managedFields": [{"manager": "m", "operation": "Apply", "fieldsV1": fields}]},
                             "data": {"a": "1"}, "list": [{"a": 1}]});
            assert!(matches!(extract::<Value>(&obj, "m"), Err(ExtractError::InvalidManagedFields(_))), "{obj}");
        }
        assert_eq!(extract::<Value>(&json!([1]), "m"), Err(ExtractError::NotAnObject));
        let obj = json!({"metadata": {"managedFields": {"not": "a list"}}});
        assert!(matches!(extract::<Value>(&obj, "m"), Err(ExtractError::InvalidManagedFields(_))));
        let obj = json!({"metadata": {"name": "x"}, "spec": 1});
        assert!(matches!(extract::<std::collections::BTreeMap<String, u8>>(&obj, "m"), Err(ExtractError::Convert(_))));
    }
}
