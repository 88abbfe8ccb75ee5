//! Field paths and sets: what one `managedFields` entry owns (its `fieldsV1`), and paths as the
//! real server prints them in conflicts.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::InvalidManagedFields;

/// One step of a field path. The order (fields, then keys, values, indices) is the real one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum PathElement {
    /// A map or struct field: `f:name`.
    Field(String),
    /// A keyed list item, by its key fields as canonical JSON: `k:{"name":"app"}`.
    Key(String),
    /// A set item, by its value as canonical JSON: `v:"finalizer"`.
    Value(String),
    /// A list item by position: `i:0` (read from managedFields; never produced here).
    Index(usize),
}

pub(super) type FieldPath = Vec<PathElement>;

impl PathElement {
    fn fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(n) => format!("f:{n}"),
            PathElement::Key(k) => format!("k:{k}"),
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    fn parse_fields_v1_key(s: &str) -> Result<Self, InvalidManagedFields> {
        let bad = || InvalidManagedFields(format!("invalid fieldsV1 key {s:?}"));
        if let Some(n) = s.strip_prefix("f:") {
            Ok(PathElement::Field(n.to_owned()))
        } else if let Some(k) = s.strip_prefix("k:") {
            let v: Value = serde_json::from_str(k).map_err(|_| bad())?;
            if !v.is_object() {
                return Err(bad());
            }
            Ok(PathElement::Key(canonical_json(&v)))
        } else if let Some(v) = s.strip_prefix("v:") {
            let v: Value = serde_json::from_str(v).map_err(|_| bad())?;
            Ok(PathElement::Value(canonical_json(&v)))
        } else if let Some(i) = s.strip_prefix("i:") {
            i.parse().map(PathElement::Index).map_err(|_| bad())
        } else {
            Err(bad())
        }
    }

    /// As the real server prints it in conflicts: `.name`, `[name="x"]`, `[="v"]`, `[0]`.
    pub(super) fn display(&self) -> String {
        match self {
            PathElement::Field(n) => format!(".{n}"),
            PathElement::Key(k) => {
                let fields = match serde_json::from_str::<Value>(k) {
                    Ok(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                let parts: Vec<String> = fields.iter().map(|(n, v)| format!("{n}={}", go_value_string(v))).collect();
                format!("[{}]", parts.join(","))
            }
            PathElement::Value(v) => {
                let v = serde_json::from_str::<Value>(v).unwrap_or(Value::Null);
                format!("[={}]", go_value_string(&v))
            }
            PathElement::Index(i) => format!("[{i}]"),
        }
    }
}

pub(super) fn render_path(p: &[PathElement]) -> String {
    p.iter().map(PathElement::display).collect()
}

/// Go's `%q` for the strings this deals with.
pub(super) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// structured-merge-diff's `value.ToString`.
fn go_value_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        Value::Array(a) => format!("[{}]", a.iter().map(go_value_string).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let parts: Vec<String> = entries.iter().map(|(k, v)| format!("{k}={}", go_value_string(v))).collect();
            format!("{{{}}}", parts.join(", "))
        }
    }
}

/// JSON with object keys sorted, compact: the form of `k:` and `v:` path elements.
pub(super) fn canonical_json(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut entries: Vec<(&String, &Value)> = m.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), sorted(v))).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            _ => v.clone(),
        }
    }
    serde_json::to_string(&sorted(v)).unwrap_or_default()
}

/// A set of field paths: the fields one `managedFields` entry owns (its `fieldsV1`).
///
/// A path is a member either as a leaf (`"f:key": {}`) or as a node with children
/// (`"f:data": {".": {}, ...}`, the node itself owned).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    pub(super) paths: BTreeSet<FieldPath>,
}

impl FieldSet {
    /// Reads a `fieldsV1` value.
    pub fn from_fields_v1(v: &Value) -> Result<Self, InvalidManagedFields> {
        fn walk(v: &Value, prefix: &mut FieldPath, out: &mut BTreeSet<FieldPath>) -> Result<(), InvalidManagedFields> {
            let Value::Object(m) = v else {
                return Err(InvalidManagedFields(format!("fieldsV1 nodes must be objects, found {v}")));
            };
            if m.is_empty() && !prefix.is_empty() {
                out.insert(prefix.clone());
            }
            for (k, child) in m {
                if k == "." {
                    if !prefix.is_empty() {
                        out.insert(prefix.clone());
                    }
                    continue;
                }
                prefix.push(PathElement::parse_fields_v1_key(k)?);
                walk(child, prefix, out)?;
                prefix.pop();
            }
            Ok(())
        }
        let mut paths = BTreeSet::new();
        walk(v, &mut Vec::new(), &mut paths)?;
        Ok(FieldSet { paths })
    }

    /// The `fieldsV1` value, in the real server's order (`.` first, then `f:`, `k:`, `v:`).
    pub fn to_fields_v1(&self) -> Value {
        #[derive(Default)]
        struct Node {
            member: bool,
            children: BTreeMap<PathElement, Node>,
        }
        fn render(n: &Node) -> Value {
            let mut m = Map::new();
            if n.member && !n.children.is_empty() {
                m.insert(".".into(), Value::Object(Map::new()));
            }
            for (pe, c) in &n.children {
                m.insert(pe.fields_v1_key(), render(c));
            }
            Value::Object(m)
        }
        let mut root = Node::default();
        for p in &self.paths {
            let mut node = &mut root;
            for pe in p {
                node = node.children.entry(pe.clone()).or_default();
            }
            node.member = true;
        }
        render(&root)
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// How many paths are in the set (leaves and owned nodes).
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// The paths as the real server prints them (`.data.key`, `.spec.containers[name="app"]`),
    /// sorted.
    pub fn paths(&self) -> Vec<String> {
        self.paths.iter().map(|p| render_path(p)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_set_paths_render_like_the_server() {
        let set = FieldSet::from_fields_v1(&json!({
            "f:metadata": {"f:finalizers": {".": {}, "v:\"example.com/x\"": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}}},
                       "f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {}}}
        }))
        .unwrap();
        assert_eq!(
            set.paths(),
            [
                ".metadata.finalizers",
                ".metadata.finalizers[=\"example.com/x\"]",
                ".spec.containers[name=\"app\"]",
                ".spec.containers[name=\"app\"].image",
                ".spec.ports[port=80,protocol=\"TCP\"]",
            ]
        );
        assert_eq!(set.len(), 5);
        // Keys are canonicalised (sorted fields) on read.
        let other =
            FieldSet::from_fields_v1(&json!({"f:spec": {"f:ports": {"k:{\"protocol\":\"TCP\", \"port\":80}": {}}}}))
                .unwrap();
        assert_eq!(other.to_fields_v1(), json!({"f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {}}}}));
    }
}
