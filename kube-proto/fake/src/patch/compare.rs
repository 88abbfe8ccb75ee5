//! Objects as server-side apply and managed fields see them: the kind of each list (atomic,
//! keyed or a set), the part of an object a write owns, and the fields that differ between two
//! versions.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::field_set::{FieldPath, PathElement, canonical_json};
use super::{ATOMIC, MERGE_BY_VALUE, join};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ListKind<'k> {
    Atomic,
    Map(Vec<&'k str>),
    Set,
}

pub(super) fn list_kind<'k>(path: &str, list_keys: &dyn Fn(&str) -> Option<&'k str>) -> ListKind<'k> {
    match list_keys(path) {
        None | Some(ATOMIC) => ListKind::Atomic,
        Some(MERGE_BY_VALUE) => ListKind::Set,
        Some(k) => {
            let keys: Vec<&'k str> = k.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            if keys.is_empty() { ListKind::Set } else { ListKind::Map(keys) }
        }
    }
}

/// Whether the map or struct at `path` is one unit for server-side apply: the list-key function
/// says [`ATOMIC`] for it, or, for an item of the list at `path` (`item`), for `path[]`.
pub(super) fn is_atomic<'k>(path: &str, item: bool, list_keys: &dyn Fn(&str) -> Option<&'k str>) -> bool {
    let rule = if item { list_keys(&format!("{path}[]")) } else { list_keys(path) };
    rule == Some(ATOMIC)
}

/// A key field of a keyed list and its default, if the schema gives one (`protocol="TCP"`:
/// server-side apply keys an item that leaves it out with the default).
pub(super) fn key_field(key: &str) -> (&str, Option<Value>) {
    match key.split_once('=') {
        Some((name, default)) => (name, serde_json::from_str(default).ok()),
        None => (key, None),
    }
}

/// Sets the defaults of the key fields `item` leaves out, as the real server's defaulting does.
pub(super) fn default_keys(item: &mut Value, kind: &ListKind<'_>) {
    if let (ListKind::Map(keys), Value::Object(m)) = (kind, item) {
        for k in keys {
            if let (name, Some(default)) = key_field(k) {
                m.entry(name).or_insert(default);
            }
        }
    }
}

/// The path element of a list item; `None` for a keyed item without its key fields (and
/// without defaults for them).
pub(super) fn item_element(item: &Value, kind: &ListKind<'_>) -> Option<PathElement> {
    match (kind, item) {
        (ListKind::Map(keys), Value::Object(m)) => {
            let mut km = Map::new();
            for k in keys {
                let (name, default) = key_field(k);
                let v = match m.get(name) {
                    Some(v) => v.clone(),
                    None => default?,
                };
                km.insert(name.to_owned(), v);
            }
            Some(PathElement::Key(canonical_json(&Value::Object(km))))
        }
        (ListKind::Atomic, _) => None,
        (_, v) => Some(PathElement::Value(canonical_json(v))),
    }
}

#[derive(Debug, Default)]
pub(super) struct Comparison {
    pub(super) added: BTreeSet<FieldPath>,
    pub(super) modified: BTreeSet<FieldPath>,
    pub(super) removed: BTreeSet<FieldPath>,
}

impl Comparison {
    pub(super) fn between<'k>(lhs: &Value, rhs: &Value, list_keys: &dyn Fn(&str) -> Option<&'k str>) -> Self {
        let mut c = Comparison::default();
        c.walk(Some(lhs), Some(rhs), "", false, &mut Vec::new(), list_keys);
        for set in [&mut c.added, &mut c.modified, &mut c.removed] {
            set.retain(|p| !is_system_path(p));
        }
        c
    }

    fn leaf(&mut self, l: Option<&Value>, r: Option<&Value>, path: &FieldPath) {
        match (l, r) {
            (Some(a), Some(b)) if a != b => {
                self.modified.insert(path.clone());
            }
            _ => self.item(l, r, path),
        }
    }

    /// A map field or list item appeared or went away.
    fn item(&mut self, l: Option<&Value>, r: Option<&Value>, path: &FieldPath) {
        match (l, r) {
            (None, Some(_)) => {
                self.added.insert(path.clone());
            }
            (Some(_), None) => {
                self.removed.insert(path.clone());
            }
            _ => {}
        }
    }

    /// Compares `l` and `r` at `path`; `atomic` when the value there is an atomic map or struct
    /// (compared whole, as a leaf).
    fn walk<'k>(
        &mut self,
        l: Option<&Value>,
        r: Option<&Value>,
        path_str: &str,
        atomic: bool,
        path: &mut FieldPath,
        list_keys: &dyn Fn(&str) -> Option<&'k str>,
    ) {
        let shape = |v: &Value| match v {
            Value::Object(_) => 1,
            Value::Array(_) => 2,
            _ => 0,
        };
        match (l, r) {
            (None, None) => {}
            (Some(Value::Object(_)), _) | (_, Some(Value::Object(_))) if atomic => self.leaf(l, r, path),
            (Some(a), Some(b)) if shape(a) != shape(b) => {
                self.walk(Some(a), None, path_str, atomic, path, list_keys);
                self.walk(None, Some(b), path_str, atomic, path, list_keys);
            }
            (Some(Value::Object(_)), _) | (_, Some(Value::Object(_))) => {
                let lm = l.and_then(Value::as_object);
                let rm = r.and_then(Value::as_object);
                if lm.is_none_or(Map::is_empty) && rm.is_none_or(Map::is_empty) {
                    self.leaf(l, r, path);
                    return;
                }
                for (k, lv) in lm.into_iter().flatten() {
                    let rv = rm.and_then(|m| m.get(k));
                    let child = join(path_str, k);
                    let atomic = is_atomic(&child, false, list_keys);
                    path.push(PathElement::Field(k.clone()));
                    self.walk(Some(lv), rv, &child, atomic, path, list_keys);
                    self.item(Some(lv), rv, path);
                    path.pop();
                }
                for (k, rv) in rm.into_iter().flatten() {
                    if lm.is_some_and(|m| m.contains_key(k)) {
                        continue;
                    }
                    let child = join(path_str, k);
                    let atomic = is_atomic(&child, false, list_keys);
                    path.push(PathElement::Field(k.clone()));
                    self.walk(None, Some(rv), &child, atomic, path, list_keys);
                    self.item(None, Some(rv), path);
                    path.pop();
                }
            }
            (Some(Value::Array(_)), _) | (_, Some(Value::Array(_))) => {
                let la = l.and_then(Value::as_array);
                let ra = r.and_then(Value::as_array);
                let kind = list_kind(path_str, list_keys);
                if kind == ListKind::Atomic || (la.is_none_or(Vec::is_empty) && ra.is_none_or(Vec::is_empty)) {
                    self.leaf(l, r, path);
                    return;
                }
                let li = index_items(la, &kind);
                let ri = index_items(ra, &kind);
                let atomic_items = is_atomic(path_str, true, list_keys);
                for (pe, lv) in &li {
                    let rv = ri.get(pe).copied();
                    path.push(pe.clone());
                    self.walk(Some(lv), rv, path_str, atomic_items, path, list_keys);
                    self.item(Some(lv), rv, path);
                    path.pop();
                }
                for (pe, rv) in &ri {
                    if li.contains_key(pe) {
                        continue;
                    }
                    path.push(pe.clone());
                    self.walk(None, Some(rv), path_str, atomic_items, path, list_keys);
                    self.item(None, Some(rv), path);
                    path.pop();
                }
            }
            _ => self.leaf(l, r, path),
        }
    }
}

/// The items of a list by path element (the first of duplicates; keyed items without their key
/// are left out).
fn index_items<'v>(a: Option<&'v Vec<Value>>, kind: &ListKind<'_>) -> BTreeMap<PathElement, &'v Value> {
    let mut m = BTreeMap::new();
    for v in a.into_iter().flatten() {
        if let Some(pe) = item_element(v, kind) {
            m.entry(pe).or_insert(v);
        }
    }
    m
}

/// Fields of `metadata` the server sets; never owned, never applied.
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "selfLink",
    "clusterName",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Paths the real server strips from every field set (`apiVersion`, `kind`, `metadata` itself and
/// its system fields).
pub(super) fn is_system_path(p: &[PathElement]) -> bool {
    match p {
        [PathElement::Field(f)] => matches!(f.as_str(), "apiVersion" | "kind" | "metadata"),
        [PathElement::Field(m), PathElement::Field(f)] => m == "metadata" && SYSTEM_METADATA.contains(&f.as_str()),
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Everything but `status` and the system fields.
    Main,
    /// Only `status`.
    Status,
}

impl Scope {
    pub(super) fn of(subresource: Option<&str>) -> Self {
        if subresource == Some("status") { Scope::Status } else { Scope::Main }
    }
}

/// Splits an object into the part a write through `scope` owns and the rest.
pub(super) fn split(obj: &Value, scope: Scope) -> (Value, Value) {
    let Value::Object(m) = obj else {
        return (Value::Object(Map::new()), obj.clone());
    };
    let mut tracked = Map::new();
    let mut rest = Map::new();
    for (k, v) in m {
        match (scope, k.as_str(), v) {
            (Scope::Main, "metadata", Value::Object(meta)) => {
                let (mut t, mut r) = (Map::new(), Map::new());
                for (mk, mv) in meta {
                    if SYSTEM_METADATA.contains(&mk.as_str()) {
                        r.insert(mk.clone(), mv.clone());
                    } else {
                        t.insert(mk.clone(), mv.clone());
                    }
                }
                tracked.insert(k.clone(), Value::Object(t));
                if !r.is_empty() {
                    rest.insert(k.clone(), Value::Object(r));
                }
            }
            (Scope::Main, "apiVersion" | "kind" | "status", _) => {
                rest.insert(k.clone(), v.clone());
            }
            (Scope::Main, _, _) | (Scope::Status, "status", _) => {
                tracked.insert(k.clone(), v.clone());
            }
            (Scope::Status, _, _) => {
                rest.insert(k.clone(), v.clone());
            }
        }
    }
    (Value::Object(tracked), Value::Object(rest))
}
