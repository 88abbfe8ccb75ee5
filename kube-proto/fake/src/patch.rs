//! The patch formats and the field ownership of the fake API server, as pure functions over
//! [`serde_json::Value`]:
//!
//! - [`merge_patch`]: JSON merge patch (RFC 7386, `application/merge-patch+json`).
//! - [`json_patch`]: JSON patch (RFC 6902, `application/json-patch+json`), atomic.
//! - [`strategic_merge_patch`]: strategic merge patch of built-in kinds
//!   (`application/strategic-merge-patch+json`), with list merge keys from [`builtin_list_key`].
//! - [`apply`] and [`record_update`]: server-side apply and the bookkeeping of every other write,
//!   tracked in [`FieldOwners`] and stored as `metadata.managedFields` (`FieldsV1`).
//!
//! # Where this is simpler than kube-apiserver
//!
//! - There is no OpenAPI schema. A list's kind comes from a list-key function of the list's
//!   dotted path (field names without indices, e.g. `spec.template.spec.containers`): a key
//!   makes it a map-list merged element-wise by that key (several key fields may be given
//!   comma-separated, `"containerPort,protocol"`; strategic merge patch uses the first),
//!   [`MERGE_BY_VALUE`] (or a key on a list of scalars) makes it a set, and `None` makes it
//!   atomic (replaced whole, owned as one leaf). Every JSON object is a granular map: the few
//!   structs the real schema marks atomic (such as `LabelSelector`, owned as `f:selector: {}`
//!   by the real server) are tracked field by field here.
//! - Objects are schemaless JSON. On create, the real server compares against the Go zero value
//!   of a typed object, so a built-in's `spec` is not reported as added; here, as the real server
//!   does for custom resources, parents that appear are owned too (`f:spec: {".": {}, ...}`).
//! - Apply merges and compares JSON values as they are: no defaulting, no conversion between
//!   versions, no validation beyond merge keys and duplicate list keys. `null` in an apply
//!   configuration removes the field (and the applier owns it), as it ends up for typed objects.
//! - Fields emptied by apply's removal of no-longer-applied fields disappear with their now empty
//!   parent maps and lists (typed built-in objects omit them the same way).
//! - Keyed list items no longer applied are kept if another manager still owns a field inside
//!   them (the real server removes them unless the item itself is owned by someone).
//! - Not modelled: the `before-first-apply` manager for objects created without managed fields,
//!   the cap of ten `Update` entries (`ancient-changes`), `last-applied-configuration`
//!   upgrades, `$retainKeys` validation, and the version conversion of other managers' sets.
//! - Conflict messages are rendered as the real server renders them; the order of several
//!   conflicts is sorted (manager, then field), where the real server's is unspecified.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use serde_json::{Map, Value};

use kube_proto::error::StatusCause;

/// What a list-key function returns for a list of scalars that merges as a set, by value (like
/// `metadata.finalizers`, `patchStrategy: merge` without a key in the real schema).
pub const MERGE_BY_VALUE: &str = "$value";

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a JSON patch or a strategic merge patch could not be applied.
///
/// The real server answers a failed JSON patch with a generic 422 and no details; the variants
/// say more for tests and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The JSON patch document is not an array of operations.
    #[error("a JSON patch must be an array of operations")]
    NotAnArray,
    /// An operation is malformed: not an object, or missing `op`, `path`, `from` or `value`, or
    /// moving a value into one of its own children.
    #[error("operation {index}: {reason}")]
    InvalidOperation {
        /// The index of the operation in the patch.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An operation's `op` is not one of add, remove, replace, move, copy and test.
    #[error("operation {index}: unknown op {op:?}")]
    UnknownOp {
        /// The index of the operation in the patch.
        index: usize,
        /// The unknown `op`.
        op: String,
    },
    /// A `path` or `from` is not a JSON pointer (RFC 6901): not empty and not starting with `/`,
    /// or with a `~` not followed by `0` or `1`.
    #[error("operation {index}: invalid JSON pointer {pointer:?}")]
    InvalidPointer {
        /// The index of the operation in the patch.
        index: usize,
        /// The pointer as given.
        pointer: String,
    },
    /// A location the operation needs does not exist: a missing member or parent, an array
    /// index out of bounds or not a number, or `-` where an existing element is needed.
    #[error("operation {index}: path {path:?} not found")]
    PathNotFound {
        /// The index of the operation in the patch.
        index: usize,
        /// The pointer that does not resolve.
        path: String,
    },
    /// A `test` operation found a different value (or none).
    #[error("operation {index}: test failed at {path:?}")]
    TestFailed {
        /// The index of the operation in the patch.
        index: usize,
        /// The tested pointer.
        path: String,
    },
    /// A strategic merge patch that is not a JSON object.
    #[error("a strategic merge patch must be a JSON object")]
    NotAnObject,
    /// A strategic merge patch element of a keyed list lacks the list's merge key.
    #[error("{path}: a list element does not contain the merge key {key:?}")]
    MissingMergeKey {
        /// The list's dotted path.
        path: String,
        /// The merge key.
        key: String,
    },
    /// A malformed strategic merge patch directive (`$patch`, `$retainKeys`,
    /// `$setElementOrder/…`, `$deleteFromPrimitiveList/…`).
    #[error("{path}: invalid patch directive {directive}")]
    InvalidDirective {
        /// The dotted path of the map holding the directive (empty at the top).
        path: String,
        /// The directive and its value.
        directive: String,
    },
}

/// Why a server-side apply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// Fields owned by other managers would change (409 Conflict unless `force`). The Display
    /// form is the real server's `Status` message.
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration cannot be applied (not an object, a keyed list item without its key,
    /// duplicate keys in a list). The real server answers these with 422 Invalid or 400.
    #[error("{0}")]
    Invalid(String),
}

impl ApplyError {
    /// The `details.causes` of the real server's 409 `Status`: one `FieldManagerConflict` per
    /// conflicting field (empty for [`ApplyError::Invalid`]).
    pub fn causes(&self) -> Vec<StatusCause> {
        match self {
            ApplyError::Conflicts(c) => c.iter().map(Conflict::cause).collect(),
            ApplyError::Invalid(_) => Vec::new(),
        }
    }
}

/// A field another manager owns that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// How it came to own the field.
    pub operation: Operation,
    /// The other manager's entry's apiVersion.
    pub api_version: String,
    /// The subresource the other manager wrote through, if any.
    pub subresource: Option<String>,
    /// The field, rendered as the real server does: `.data.shared`,
    /// `.spec.containers[name="app"].image`, `.metadata.finalizers[="x"]`.
    pub field_path: String,
}

impl Conflict {
    /// The manager as the real server names it in messages: `"a"`, `"a" with subresource
    /// "scale"`, and for Update managers with `using <apiVersion>` appended.
    pub fn manager_description(&self) -> String {
        let mut s = go_quote(&self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(" with subresource ");
            s.push_str(&go_quote(sub));
        }
        if self.operation == Operation::Update {
            s.push_str(" using ");
            s.push_str(&self.api_version);
        }
        s
    }

    /// The `Status` cause: reason `FieldManagerConflict`, message `conflict with "a"`, field
    /// `.data.shared`.
    pub fn cause(&self) -> StatusCause {
        StatusCause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with {}", self.manager_description()),
            field: self.field_path.clone(),
        }
    }
}

fn conflicts_message(conflicts: &[Conflict]) -> String {
    match conflicts {
        [] => "Apply failed with 0 conflicts".into(),
        [c] => format!("Apply failed with 1 conflict: conflict with {}: {}", c.manager_description(), c.field_path),
        _ => {
            // Grouped by manager, managers sorted, as the real server prints them.
            let mut groups: BTreeMap<(String, Operation, String, Option<String>), Vec<&Conflict>> = BTreeMap::new();
            for c in conflicts {
                groups
                    .entry((c.manager.clone(), c.operation, c.api_version.clone(), c.subresource.clone()))
                    .or_default()
                    .push(c);
            }
            let mut lines = Vec::new();
            for group in groups.values() {
                if let Some(first) = group.first() {
                    lines.push(format!("conflicts with {}:", first.manager_description()));
                }
                for c in group {
                    lines.push(format!("- {}", c.field_path));
                }
            }
            format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
        }
    }
}

/// `metadata.managedFields` that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid managedFields: {0}")]
pub struct InvalidManagedFields(pub String);

// ---------------------------------------------------------------------------------------------
// JSON merge patch (RFC 7386)
// ---------------------------------------------------------------------------------------------

/// Applies a JSON merge patch (RFC 7386): objects merge recursively, `null` removes a member,
/// anything else (arrays included) replaces the target.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON patch (RFC 6902)
// ---------------------------------------------------------------------------------------------

/// Applies a JSON patch (RFC 6902): `add`, `remove`, `replace`, `move`, `copy` and `test`, with
/// JSON pointers (RFC 6901: `~0` is `~`, `~1` is `/`, `-` appends to an array).
///
/// Atomic: if any operation fails, `target` is left unchanged. Members other than `op`, `path`,
/// `from` and `value` are ignored. Numbers compare by value in `test` (`1` equals `1.0`).
pub fn json_patch(target: &mut Value, ops: &Value) -> Result<(), PatchError> {
    let ops = ops.as_array().ok_or(PatchError::NotAnArray)?;
    let mut doc = target.clone();
    for (index, op) in ops.iter().enumerate() {
        apply_json_op(&mut doc, index, op)?;
    }
    *target = doc;
    Ok(())
}

fn apply_json_op(doc: &mut Value, index: usize, op: &Value) -> Result<(), PatchError> {
    let invalid = |reason: &str| PatchError::InvalidOperation { index, reason: reason.into() };
    let obj = op.as_object().ok_or_else(|| invalid("an operation must be an object"))?;
    let name = obj.get("op").and_then(Value::as_str).ok_or_else(|| invalid("missing or non-string \"op\""))?;
    let path_str = obj.get("path").and_then(Value::as_str).ok_or_else(|| invalid("missing or non-string \"path\""))?;
    let path = parse_pointer(path_str).ok_or_else(|| PatchError::InvalidPointer { index, pointer: path_str.into() })?;
    let not_found = |p: &str| PatchError::PathNotFound { index, path: p.into() };
    let value = || obj.get("value").ok_or_else(|| invalid("missing \"value\""));
    let from = || -> Result<(&str, Vec<String>), PatchError> {
        let s = obj.get("from").and_then(Value::as_str).ok_or_else(|| invalid("missing or non-string \"from\""))?;
        let p = parse_pointer(s).ok_or_else(|| PatchError::InvalidPointer { index, pointer: s.into() })?;
        Ok((s, p))
    };
    match name {
        "add" => {
            let v = value()?.clone();
            pointer_add(doc, &path, v).ok_or_else(|| not_found(path_str))
        }
        "remove" => pointer_remove(doc, &path).map(drop).ok_or_else(|| not_found(path_str)),
        "replace" => {
            let v = value()?.clone();
            let slot = pointer_get_mut(doc, &path).ok_or_else(|| not_found(path_str))?;
            *slot = v;
            Ok(())
        }
        "move" => {
            let (from_str, from_path) = from()?;
            if from_path == path {
                return pointer_get(doc, &from_path).map(drop).ok_or_else(|| not_found(from_str));
            }
            if path.starts_with(&from_path) {
                return Err(invalid("cannot move a value into one of its own children"));
            }
            let v = pointer_remove(doc, &from_path).ok_or_else(|| not_found(from_str))?;
            pointer_add(doc, &path, v).ok_or_else(|| not_found(path_str))
        }
        "copy" => {
            let (from_str, from_path) = from()?;
            let v = pointer_get(doc, &from_path).ok_or_else(|| not_found(from_str))?.clone();
            pointer_add(doc, &path, v).ok_or_else(|| not_found(path_str))
        }
        "test" => {
            let expected = value()?;
            let actual = pointer_get(doc, &path).ok_or(PatchError::TestFailed { index, path: path_str.into() })?;
            if json_equal(actual, expected) {
                Ok(())
            } else {
                Err(PatchError::TestFailed { index, path: path_str.into() })
            }
        }
        other => Err(PatchError::UnknownOp { index, op: other.into() }),
    }
}

/// Splits a JSON pointer into unescaped reference tokens; `None` if it is not a pointer.
fn parse_pointer(s: &str) -> Option<Vec<String>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.strip_prefix('/')?.split('/').map(unescape_token).collect()
}

fn unescape_token(tok: &str) -> Option<String> {
    let mut out = String::with_capacity(tok.len());
    let mut chars = tok.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// An array index token: `0` or digits without a leading zero.
fn array_index(tok: &str) -> Option<usize> {
    if tok == "0" {
        return Some(0);
    }
    if tok.is_empty() || tok.starts_with('0') || !tok.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    tok.parse().ok()
}

fn pointer_get<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(doc, |v, tok| match v {
        Value::Object(m) => m.get(tok),
        Value::Array(a) => a.get(array_index(tok)?),
        _ => None,
    })
}

fn pointer_get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(doc, |v, tok| match v {
        Value::Object(m) => m.get_mut(tok),
        Value::Array(a) => a.get_mut(array_index(tok)?),
        _ => None,
    })
}

fn pointer_add(doc: &mut Value, path: &[String], value: Value) -> Option<()> {
    let Some((last, parent)) = path.split_last() else {
        *doc = value;
        return Some(());
    };
    match pointer_get_mut(doc, parent)? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Some(())
        }
        Value::Array(a) => {
            let i = if last == "-" { a.len() } else { array_index(last)? };
            if i > a.len() {
                return None;
            }
            a.insert(i, value);
            Some(())
        }
        _ => None,
    }
}

fn pointer_remove(doc: &mut Value, path: &[String]) -> Option<Value> {
    let (last, parent) = path.split_last()?;
    match pointer_get_mut(doc, parent)? {
        Value::Object(m) => m.remove(last),
        Value::Array(a) => {
            let i = array_index(last)?;
            (i < a.len()).then(|| a.remove(i))
        }
        _ => None,
    }
}

/// JSON equality with numbers compared by value.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64(), x.as_u64(), y.as_u64()) {
            (Some(i), Some(j), _, _) => i == j,
            (_, _, Some(i), Some(j)) => i == j,
            _ => x.as_f64().zip(y.as_f64()).is_some_and(|(f, g)| f == g),
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch
// ---------------------------------------------------------------------------------------------

/// The merge keys (`patchMergeKey`) of the lists of built-in kinds that strategic merge patch
/// and server-side apply merge element-wise, by the list's dotted path (field names without
/// indices). Matching is by suffix, so pod specs inside templates match too.
///
/// - `containers`, `initContainers`, `ephemeralContainers`: `name`; inside them `env`: `name`,
///   `ports`: `containerPort`, `volumeMounts`: `mountPath`, `volumeDevices`: `devicePath`,
///   `resizePolicy`: `resourceName`.
/// - Pod specs: `volumes`, `schedulingGates`, `resourceClaims`: `name`; `imagePullSecrets`:
///   `name`; `hostAliases`: `ip`; `topologySpreadConstraints`: `topologyKey`.
/// - `status.conditions`: `type`; `status.podIPs`, `status.hostIPs`: `ip`;
///   `status.addresses` (Node): `type`.
/// - `metadata.finalizers`: a set ([`MERGE_BY_VALUE`]); `metadata.ownerReferences`: `uid`.
/// - Service `spec.ports`: `port`; Node `spec.podCIDRs`: a set; ServiceAccount `secrets` and
///   webhook configurations' `webhooks`: `name`.
///
/// Every other list (`tolerations`, `args`, `command`, ...) is atomic: `None`.
pub fn builtin_list_key(path: &str) -> Option<&'static str> {
    let mut segs = path.rsplit('.');
    let last = segs.next()?;
    let parent = segs.next();
    let in_container = matches!(parent, Some("containers" | "initContainers" | "ephemeralContainers"));
    match last {
        "containers" | "initContainers" | "ephemeralContainers" => Some("name"),
        "env" if in_container => Some("name"),
        "ports" if in_container => Some("containerPort"),
        "ports" if path == "spec.ports" => Some("port"),
        "volumeMounts" if in_container => Some("mountPath"),
        "volumeDevices" if in_container => Some("devicePath"),
        "resizePolicy" if in_container => Some("resourceName"),
        "volumes" | "schedulingGates" | "resourceClaims" if parent == Some("spec") => Some("name"),
        "imagePullSecrets" => Some("name"),
        "hostAliases" => Some("ip"),
        "topologySpreadConstraints" => Some("topologyKey"),
        "conditions" if parent == Some("status") => Some("type"),
        "podIPs" | "hostIPs" if parent == Some("status") => Some("ip"),
        "addresses" if path == "status.addresses" => Some("type"),
        "finalizers" if parent == Some("metadata") => Some(MERGE_BY_VALUE),
        "ownerReferences" if parent == Some("metadata") => Some("uid"),
        "podCIDRs" if path == "spec.podCIDRs" => Some(MERGE_BY_VALUE),
        "secrets" if path == "secrets" => Some("name"),
        "webhooks" if path == "webhooks" => Some("name"),
        _ => None,
    }
}

/// Applies a strategic merge patch (`application/strategic-merge-patch+json`) of a built-in kind.
///
/// Maps merge recursively as in [`merge_patch`] (`null` deletes). A list whose dotted path has a
/// merge key per `list_keys` merges element-wise: patch elements with the key of an existing
/// element merge into it, others are appended in patch order; lists of scalars with a key (or
/// [`MERGE_BY_VALUE`]) merge as sets (new values appended). Other lists are replaced.
///
/// Directives:
/// - `$patch: replace` in a map replaces the map with the rest of the patch map. A list element
///   carrying it (usually `{"$patch": "replace"}`) replaces the whole list with the patch's
///   elements that carry no directive, as the real server does.
/// - `$patch: delete` in a map deletes the map (the whole object at the top); in a keyed list
///   element, deletes the element with that key.
/// - `$patch: merge` is the default for maps; on a list element it is an error, as in the real
///   server.
/// - `$deleteFromPrimitiveList/<field>: [values]` removes those values from the scalar list
///   `<field>` (before the patch's own `<field>` is merged).
/// - `$setElementOrder/<field>: [...]` orders the merged list `<field>`: the listed elements
///   (by merge key, or by value for scalars) in the given order, elements only the server had
///   interleaved at their old relative positions, as the real server does.
/// - `$retainKeys: [...]` drops the map's keys that are not listed, after merging (the real
///   server also validates that the patch's own keys are listed; this does not).
///
/// Atomic: on an error `target` is unchanged.
pub fn strategic_merge_patch(
    target: &mut Value,
    patch: &Value,
    list_keys: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<(), PatchError> {
    let Value::Object(p) = patch else {
        return Err(PatchError::NotAnObject);
    };
    let mut work = match target {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    if smp_map(&mut work, p, "", list_keys)? == Outcome::Delete {
        work.clear();
    }
    *target = Value::Object(work);
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Keep,
    Delete,
}

const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

fn is_smp_directive(k: &str) -> bool {
    k == "$patch" || k == "$retainKeys" || k.starts_with(SET_ELEMENT_ORDER) || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") }
}

fn smp_map(
    t: &mut Map<String, Value>,
    p: &Map<String, Value>,
    path: &str,
    list_keys: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<Outcome, PatchError> {
    let bad = |directive: String| PatchError::InvalidDirective { path: path.to_owned(), directive };
    match p.get("$patch") {
        None => {}
        Some(Value::String(s)) if s == "merge" => {}
        Some(Value::String(s)) if s == "replace" => {
            let mut rest = p.clone();
            rest.remove("$patch");
            let mut fresh = Map::new();
            smp_map(&mut fresh, &rest, path, list_keys)?;
            *t = fresh;
            return Ok(Outcome::Keep);
        }
        Some(Value::String(s)) if s == "delete" => {
            t.clear();
            return Ok(Outcome::Delete);
        }
        Some(other) => return Err(bad(format!("$patch: {other}"))),
    }

    for (k, v) in p {
        if let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let Value::Array(remove) = v else {
                return Err(bad(format!("{k}: {v}")));
            };
            if let Some(Value::Array(list)) = t.get_mut(field) {
                list.retain(|x| !remove.contains(x));
            }
        }
    }

    // The server's order of lists that the patch re-orders.
    let mut server_order: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for k in p.keys() {
        if let Some(field) = k.strip_prefix(SET_ELEMENT_ORDER) {
            let list = t.get(field).and_then(Value::as_array).cloned().unwrap_or_default();
            server_order.insert(field, list);
        }
    }

    for (k, v) in p {
        if is_smp_directive(k) {
            continue;
        }
        let field_path = join(path, k);
        match v {
            Value::Null => {
                t.remove(k);
            }
            Value::Object(pm) => {
                let outcome = match t.get_mut(k) {
                    Some(Value::Object(cm)) => smp_map(cm, pm, &field_path, list_keys)?,
                    _ => {
                        let mut cm = Map::new();
                        let outcome = smp_map(&mut cm, pm, &field_path, list_keys)?;
                        t.insert(k.clone(), Value::Object(cm));
                        outcome
                    }
                };
                if outcome == Outcome::Delete {
                    t.remove(k);
                }
            }
            Value::Array(pa) => match t.get_mut(k) {
                Some(Value::Array(ta)) => smp_list(ta, pa, &field_path, list_keys)?,
                _ => {
                    let mut ta = Vec::new();
                    smp_list(&mut ta, pa, &field_path, list_keys)?;
                    t.insert(k.clone(), Value::Array(ta));
                }
            },
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }

    for (k, v) in p {
        if let Some(field) = k.strip_prefix(SET_ELEMENT_ORDER) {
            let Value::Array(order) = v else {
                return Err(bad(format!("{k}: {v}")));
            };
            let key = list_keys(&join(path, field)).filter(|k| *k != MERGE_BY_VALUE);
            let key = key.map(|k| k.split(',').next().unwrap_or(k));
            let original = server_order.get(field).map(Vec::as_slice).unwrap_or(&[]);
            if let Some(Value::Array(list)) = t.get_mut(field) {
                reorder(list, order, original, key);
            }
        }
    }

    if let Some(retain) = p.get("$retainKeys") {
        let Value::Array(keys) = retain else {
            return Err(bad(format!("$retainKeys: {retain}")));
        };
        t.retain(|k, _| keys.iter().any(|x| x.as_str() == Some(k.as_str())));
    }
    Ok(Outcome::Keep)
}

fn patch_directive(v: &Value) -> Option<&str> {
    v.get("$patch").and_then(Value::as_str)
}

fn smp_list(
    t: &mut Vec<Value>,
    p: &[Value],
    path: &str,
    list_keys: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<(), PatchError> {
    if p.iter().any(|e| patch_directive(e) == Some("replace")) {
        *t = p.iter().filter(|e| patch_directive(e).is_none()).cloned().collect();
        return Ok(());
    }
    let Some(key) = list_keys(path) else {
        *t = p.to_vec();
        return Ok(());
    };
    if key == MERGE_BY_VALUE || p.iter().any(|e| !e.is_object()) {
        for e in p {
            if !t.contains(e) {
                t.push(e.clone());
            }
        }
        return Ok(());
    }
    let key = key.split(',').next().unwrap_or(key);
    for e in p {
        let Value::Object(em) = e else { continue };
        let Some(kv) = em.get(key) else {
            return Err(PatchError::MissingMergeKey { path: path.to_owned(), key: key.to_owned() });
        };
        match patch_directive(e) {
            Some("delete") => t.retain(|x| x.get(key) != Some(kv)),
            None => match t.iter_mut().find(|x| x.get(key) == Some(kv)) {
                Some(Value::Object(existing)) => {
                    smp_map(existing, em, path, list_keys)?;
                }
                Some(other) => {
                    let mut fresh = Map::new();
                    smp_map(&mut fresh, em, path, list_keys)?;
                    *other = Value::Object(fresh);
                }
                None => {
                    let mut fresh = Map::new();
                    smp_map(&mut fresh, em, path, list_keys)?;
                    t.push(Value::Object(fresh));
                }
            },
            Some(other) => {
                return Err(PatchError::InvalidDirective {
                    path: path.to_owned(),
                    directive: format!("$patch: {other}"),
                });
            }
        }
    }
    Ok(())
}

/// `$setElementOrder`: the listed elements in the given order, the others (only on the server)
/// merged in at their old relative positions (kube's `mergeSortedSlice`).
fn reorder(list: &mut Vec<Value>, order: &[Value], server: &[Value], key: Option<&str>) {
    let ident = |v: &Value| -> Value {
        match (key, v) {
            (Some(k), Value::Object(m)) => m.get(k).cloned().unwrap_or(Value::Null),
            _ => v.clone(),
        }
    };
    let order_ids: Vec<Value> = order.iter().map(ident).collect();
    let server_ids: Vec<Value> = server.iter().map(ident).collect();
    let mut listed: Vec<(usize, Value)> = Vec::new();
    let mut server_only: Vec<Value> = Vec::new();
    for v in list.drain(..) {
        let id = ident(&v);
        match order_ids.iter().position(|o| *o == id) {
            Some(i) => listed.push((i, v)),
            None => server_only.push(v),
        }
    }
    listed.sort_by_key(|(i, _)| *i);
    let server_pos = |v: &Value| {
        let id = ident(v);
        server_ids.iter().position(|s| *s == id)
    };
    let mut left = server_only.into_iter().peekable();
    let mut right = listed.into_iter().map(|(_, v)| v).peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => matches!((server_pos(l), server_pos(r)), (Some(a), Some(b)) if a < b),
        };
        let next = if take_left { left.next() } else { right.next() };
        list.extend(next);
    }
}

// ---------------------------------------------------------------------------------------------
// Field paths and sets
// ---------------------------------------------------------------------------------------------

/// One step of a field path. The order (fields, then keys, values, indices) is the real one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum PathElement {
    /// A map or struct field: `f:name`.
    Field(String),
    /// A keyed list item, by its key fields as canonical JSON: `k:{"name":"app"}`.
    Key(String),
    /// A set item, by its value as canonical JSON: `v:"finalizer"`.
    Value(String),
    /// A list item by position: `i:0` (read from managedFields; never produced here).
    Index(usize),
}

type FieldPath = Vec<PathElement>;

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
    fn display(&self) -> String {
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

fn render_path(p: &[PathElement]) -> String {
    p.iter().map(PathElement::display).collect()
}

/// Go's `%q` for the strings this deals with.
fn go_quote(s: &str) -> String {
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
fn canonical_json(v: &Value) -> String {
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
    paths: BTreeSet<FieldPath>,
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

// ---------------------------------------------------------------------------------------------
// Managed fields
// ---------------------------------------------------------------------------------------------

/// How a manager came to own its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write: create, update, JSON/merge/strategic patch.
    Update,
}

impl Operation {
    /// `"Apply"` or `"Update"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// The field manager.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The apiVersion the fields were written at.
    pub api_version: String,
    /// When the entry last changed the object (RFC 3339), if recorded.
    pub time: Option<String>,
    /// The subresource written through (`status`, `scale`), if any.
    pub subresource: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    fn parse(v: &Value) -> Result<Self, InvalidManagedFields> {
        let m = v.as_object().ok_or_else(|| InvalidManagedFields(format!("entry is not an object: {v}")))?;
        let text = |k: &str| m.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
        let operation = match m.get("operation").and_then(Value::as_str) {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            other => return Err(InvalidManagedFields(format!("unknown operation {other:?}"))),
        };
        if let Some(t) = m.get("fieldsType").and_then(Value::as_str)
            && t != "FieldsV1"
        {
            return Err(InvalidManagedFields(format!("unknown fieldsType {t:?}")));
        }
        let fields = match m.get("fieldsV1") {
            Some(f) => FieldSet::from_fields_v1(f)?,
            None => FieldSet::default(),
        };
        Ok(ManagedFieldsEntry {
            manager: text("manager").unwrap_or_default(),
            operation,
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time"),
            subresource: text("subresource"),
            fields,
        })
    }

    fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), Value::String(self.manager.clone()));
        m.insert("operation".into(), Value::String(self.operation.as_str().into()));
        m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::String(t.clone()));
        }
        m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), Value::String(s.clone()));
        }
        Value::Object(m)
    }

    /// The real server's identity of a manager: Apply entries regardless of apiVersion.
    fn is(&self, name: &str, operation: Operation, api_version: &str, subresource: Option<&str>) -> bool {
        self.manager == name
            && self.operation == operation
            && self.subresource.as_deref() == subresource
            && (operation == Operation::Apply || self.api_version == api_version)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Slot {
    entry: ManagedFieldsEntry,
    /// Changed the object in this round: gets the time (and a missing apiVersion) on write.
    touched: bool,
}

/// Who owns which fields of one object: its `metadata.managedFields`, read with
/// [`FieldOwners::from_object`], changed by [`apply`] and [`record_update`], written back with
/// [`FieldOwners::write_to`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldOwners {
    slots: Vec<Slot>,
}

/// A field manager writing through the main resource or a subresource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ManagerRef<'a> {
    /// The field manager's name (`fieldManager`, or the user agent's first part).
    pub name: &'a str,
    /// The subresource written through. `status` scopes the write to `.status`; any other
    /// value (or `None`) to everything but `.status`.
    pub subresource: Option<&'a str>,
}

impl<'a> ManagerRef<'a> {
    /// A manager writing through the main resource.
    pub fn new(name: &'a str) -> Self {
        ManagerRef { name, subresource: None }
    }

    /// The same manager writing through `subresource`.
    pub fn with_subresource(self, subresource: &'a str) -> Self {
        ManagerRef { subresource: Some(subresource), ..self }
    }
}

impl FieldOwners {
    /// No owners.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `metadata.managedFields` of an object, skipping entries that cannot be read (the
    /// real server drops unreadable managed fields too). Entries of the same manager identity
    /// are merged.
    pub fn from_object(obj: &Value) -> Self {
        let mut owners = FieldOwners::default();
        if let Some(Value::Array(items)) = obj.get("metadata").and_then(|m| m.get("managedFields")) {
            for e in items.iter().filter_map(|i| ManagedFieldsEntry::parse(i).ok()) {
                owners.insert_merged(e);
            }
        }
        owners
    }

    /// Reads a `managedFields` array, strictly.
    pub fn from_managed_fields(list: &Value) -> Result<Self, InvalidManagedFields> {
        let items = list.as_array().ok_or_else(|| InvalidManagedFields("managedFields must be an array".into()))?;
        let mut owners = FieldOwners::default();
        for i in items {
            owners.insert_merged(ManagedFieldsEntry::parse(i)?);
        }
        Ok(owners)
    }

    fn insert_merged(&mut self, e: ManagedFieldsEntry) {
        let existing = self.slots.iter_mut().find(|s| {
            s.entry.is(&e.manager, e.operation, &e.api_version, e.subresource.as_deref())
                && s.entry.api_version == e.api_version
        });
        match existing {
            Some(s) => s.entry.fields.paths.extend(e.fields.paths),
            None => self.slots.push(Slot { entry: e, touched: false }),
        }
    }

    /// The entries, in the order they were read or added.
    pub fn entries(&self) -> impl Iterator<Item = &ManagedFieldsEntry> {
        self.slots.iter().map(|s| &s.entry)
    }

    /// The first entry of `manager` with `operation`.
    pub fn entry(&self, manager: &str, operation: Operation) -> Option<&ManagedFieldsEntry> {
        self.entries().find(|e| e.manager == manager && e.operation == operation)
    }

    /// Whether nobody owns anything.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The `managedFields` array, sorted as the real server sorts it (Apply before Update, then by
    /// time, manager, apiVersion, subresource). Entries that changed the object since they were
    /// read get `time` (if not empty) and, if they have none, `api_version`.
    pub fn to_managed_fields(&self, api_version: &str, time: &str) -> Value {
        let mut entries: Vec<ManagedFieldsEntry> = self
            .slots
            .iter()
            .map(|s| {
                let mut e = s.entry.clone();
                if s.touched {
                    if !time.is_empty() {
                        e.time = Some(time.to_owned());
                    }
                    if e.api_version.is_empty() {
                        e.api_version = api_version.to_owned();
                    }
                }
                e
            })
            .collect();
        entries.sort_by(|p, q| {
            (p.operation, p.time.as_deref().unwrap_or(""), &p.manager, &p.api_version, &p.subresource).cmp(&(
                q.operation,
                q.time.as_deref().unwrap_or(""),
                &q.manager,
                &q.api_version,
                &q.subresource,
            ))
        });
        Value::Array(entries.iter().map(ManagedFieldsEntry::to_value).collect())
    }

    /// Sets `metadata.managedFields` of `obj` to [`FieldOwners::to_managed_fields`], or removes it
    /// when nobody owns anything.
    pub fn write_to(&self, obj: &mut Value, api_version: &str, time: &str) {
        let Value::Object(root) = obj else { return };
        if self.slots.is_empty() {
            if let Some(Value::Object(meta)) = root.get_mut("metadata") {
                meta.remove("managedFields");
            }
            return;
        }
        let meta = root.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
        if !meta.is_object() {
            *meta = Value::Object(Map::new());
        }
        if let Value::Object(meta) = meta {
            meta.insert("managedFields".into(), self.to_managed_fields(api_version, time));
        }
    }

    fn position(
        &self,
        name: &str,
        operation: Operation,
        api_version: &str,
        subresource: Option<&str>,
    ) -> Option<usize> {
        self.slots.iter().position(|s| s.entry.is(name, operation, api_version, subresource))
    }

    fn drop_empty(&mut self) {
        self.slots.retain(|s| !s.entry.fields.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// Structured values: lists, field sets, comparison
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum ListKind {
    Atomic,
    Map(Vec<&'static str>),
    Set,
}

fn list_kind(path: &str, list_keys: &dyn Fn(&str) -> Option<&'static str>) -> ListKind {
    match list_keys(path) {
        None => ListKind::Atomic,
        Some(MERGE_BY_VALUE) => ListKind::Set,
        Some(k) => {
            let keys: Vec<&'static str> = k.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            if keys.is_empty() { ListKind::Set } else { ListKind::Map(keys) }
        }
    }
}

/// The path element of a list item; `None` for a keyed item without its key fields.
fn item_element(item: &Value, kind: &ListKind) -> Option<PathElement> {
    match (kind, item) {
        (ListKind::Map(keys), Value::Object(m)) => {
            let mut km = Map::new();
            for k in keys {
                km.insert((*k).to_owned(), m.get(*k)?.clone());
            }
            Some(PathElement::Key(canonical_json(&Value::Object(km))))
        }
        (ListKind::Atomic, _) => None,
        (_, v) => Some(PathElement::Value(canonical_json(v))),
    }
}

fn find_item(items: &[Value], pe: &PathElement) -> Option<usize> {
    match pe {
        PathElement::Field(_) => None,
        PathElement::Index(i) => (*i < items.len()).then_some(*i),
        PathElement::Value(s) => items.iter().position(|v| canonical_json(v) == *s),
        PathElement::Key(s) => {
            let Ok(Value::Object(keys)) = serde_json::from_str::<Value>(s) else {
                return None;
            };
            items.iter().position(|v| v.as_object().is_some_and(|m| keys.iter().all(|(k, kv)| m.get(k) == Some(kv))))
        }
    }
}

fn missing_key(path: &str, kind: &ListKind) -> ApplyError {
    let keys = match kind {
        ListKind::Map(k) => k.join(", "),
        _ => String::new(),
    };
    ApplyError::Invalid(format!(".{path}: an element of this associative list does not have the key field(s) {keys}"))
}

/// The fields an apply configuration sets (structured-merge-diff's `ToFieldSet`): scalars,
/// atomic lists, empty maps and nulls as leaves, keyed and set items as owned nodes.
fn apply_field_set(
    v: &Value,
    path_str: &str,
    path: &mut FieldPath,
    out: &mut BTreeSet<FieldPath>,
    list_keys: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<(), ApplyError> {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                path.push(PathElement::Field(k.clone()));
                if child.is_null() || child.as_object().is_some_and(Map::is_empty) {
                    out.insert(path.clone());
                } else {
                    apply_field_set(child, &join(path_str, k), path, out, list_keys)?;
                }
                path.pop();
            }
        }
        Value::Array(items) => {
            let kind = list_kind(path_str, list_keys);
            if kind == ListKind::Atomic {
                out.insert(path.clone());
                return Ok(());
            }
            for item in items {
                let pe = item_element(item, &kind).ok_or_else(|| missing_key(path_str, &kind))?;
                path.push(pe);
                out.insert(path.clone());
                if item.is_object() {
                    apply_field_set(item, path_str, path, out, list_keys)?;
                }
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
    Ok(())
}

/// structured-merge-diff's merge of an apply configuration into the live object.
fn merge_apply(
    lhs: Option<&Value>,
    rhs: &Value,
    path: &str,
    list_keys: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<Value, ApplyError> {
    match rhs {
        Value::Object(r) => {
            let mut out = match lhs {
                Some(Value::Object(l)) => l.clone(),
                _ => Map::new(),
            };
            for (k, rv) in r {
                if rv.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = merge_apply(out.get(k), rv, &join(path, k), list_keys)?;
                out.insert(k.clone(), merged);
            }
            Ok(Value::Object(out))
        }
        Value::Array(r) => {
            let kind = list_kind(path, list_keys);
            if kind == ListKind::Atomic {
                return Ok(rhs.clone());
            }
            let l: &[Value] = match lhs {
                Some(Value::Array(l)) => l,
                _ => &[],
            };
            Ok(Value::Array(merge_list(l, r, &kind, path, list_keys)?))
        }
        _ => Ok(rhs.clone()),
    }
}

/// The order of a merged associative list: structured-merge-diff's `visitListItems` (live items
/// keep their places, applied items follow the configuration's order among themselves).
fn merge_list(
    lhs: &[Value],
    rhs: &[Value],
    kind: &ListKind,
    path: &str,
    list_keys: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<Vec<Value>, ApplyError> {
    let rhs_pes: Vec<PathElement> =
        rhs.iter().map(|v| item_element(v, kind).ok_or_else(|| missing_key(path, kind))).collect::<Result<_, _>>()?;
    let lhs_pes: Vec<Option<PathElement>> = lhs.iter().map(|v| item_element(v, kind)).collect();
    let mut observed_rhs: BTreeMap<&PathElement, usize> = BTreeMap::new();
    for (i, pe) in rhs_pes.iter().enumerate() {
        if observed_rhs.insert(pe, i).is_some() {
            return Err(ApplyError::Invalid(format!(".{path}: duplicate entries for key {}", pe.display())));
        }
    }
    let mut observed_lhs: BTreeMap<&PathElement, usize> = BTreeMap::new();
    for (i, pe) in lhs_pes.iter().enumerate() {
        if let Some(pe) = pe {
            observed_lhs.entry(pe).or_insert(i);
        }
    }
    let merge_item = |pe: &PathElement, r: &Value| -> Result<Value, ApplyError> {
        let l = observed_lhs.get(pe).and_then(|&i| lhs.get(i));
        merge_apply(l, r, path, list_keys)
    };
    let mut shared = rhs_pes.iter().filter(|pe| observed_lhs.contains_key(pe));
    let mut next_shared = shared.next();
    let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut li, mut ri) = (0, 0);
    while li < lhs.len() || ri < rhs.len() {
        if let (Some(lpe), Some(rpe), Some(r)) = (lhs_pes.get(li), rhs_pes.get(ri), rhs.get(ri)) {
            if lpe.as_ref() == Some(rpe) {
                merged_rhs.insert(rpe);
                out.push(merge_item(rpe, r)?);
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if let Some(lpe) = lpe
                && observed_rhs.contains_key(lpe)
                && next_shared.is_some_and(|n| n != lpe)
            {
                li += 1;
                continue;
            }
        }
        if let (Some(lpe), Some(l)) = (lhs_pes.get(li), lhs.get(li)) {
            match lpe {
                None => {
                    out.push(l.clone());
                    li += 1;
                    continue;
                }
                Some(pe) if !observed_rhs.contains_key(pe) => {
                    out.push(l.clone());
                    li += 1;
                    continue;
                }
                Some(pe) if merged_rhs.contains(pe) => {
                    li += 1;
                    continue;
                }
                Some(_) => {}
            }
        }
        if let (Some(rpe), Some(r)) = (rhs_pes.get(ri), rhs.get(ri)) {
            merged_rhs.insert(rpe);
            out.push(merge_item(rpe, r)?);
            ri += 1;
            if next_shared == Some(rpe) {
                next_shared = shared.next();
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct Comparison {
    added: BTreeSet<FieldPath>,
    modified: BTreeSet<FieldPath>,
    removed: BTreeSet<FieldPath>,
}

impl Comparison {
    fn between(lhs: &Value, rhs: &Value, list_keys: &dyn Fn(&str) -> Option<&'static str>) -> Self {
        let mut c = Comparison::default();
        c.walk(Some(lhs), Some(rhs), "", &mut Vec::new(), list_keys);
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

    fn walk(
        &mut self,
        l: Option<&Value>,
        r: Option<&Value>,
        path_str: &str,
        path: &mut FieldPath,
        list_keys: &dyn Fn(&str) -> Option<&'static str>,
    ) {
        let shape = |v: &Value| match v {
            Value::Object(_) => 1,
            Value::Array(_) => 2,
            _ => 0,
        };
        match (l, r) {
            (None, None) => {}
            (Some(a), Some(b)) if shape(a) != shape(b) => {
                self.walk(Some(a), None, path_str, path, list_keys);
                self.walk(None, Some(b), path_str, path, list_keys);
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
                    path.push(PathElement::Field(k.clone()));
                    self.walk(Some(lv), rv, &join(path_str, k), path, list_keys);
                    self.item(Some(lv), rv, path);
                    path.pop();
                }
                for (k, rv) in rm.into_iter().flatten() {
                    if lm.is_some_and(|m| m.contains_key(k)) {
                        continue;
                    }
                    path.push(PathElement::Field(k.clone()));
                    self.walk(None, Some(rv), &join(path_str, k), path, list_keys);
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
                for (pe, lv) in &li {
                    let rv = ri.get(pe).copied();
                    path.push(pe.clone());
                    self.walk(Some(lv), rv, path_str, path, list_keys);
                    self.item(Some(lv), rv, path);
                    path.pop();
                }
                for (pe, rv) in &ri {
                    if li.contains_key(pe) {
                        continue;
                    }
                    path.push(pe.clone());
                    self.walk(None, Some(rv), path_str, path, list_keys);
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
fn index_items<'v>(a: Option<&'v Vec<Value>>, kind: &ListKind) -> BTreeMap<PathElement, &'v Value> {
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
fn is_system_path(p: &[PathElement]) -> bool {
    match p {
        [PathElement::Field(f)] => matches!(f.as_str(), "apiVersion" | "kind" | "metadata"),
        [PathElement::Field(m), PathElement::Field(f)] => m == "metadata" && SYSTEM_METADATA.contains(&f.as_str()),
        _ => false,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Everything but `status` and the system fields.
    Main,
    /// Only `status`.
    Status,
}

impl Scope {
    fn of(subresource: Option<&str>) -> Self {
        if subresource == Some("status") { Scope::Status } else { Scope::Main }
    }
}

/// Splits an object into the part a write through `scope` owns and the rest.
fn split(obj: &Value, scope: Scope) -> (Value, Value) {
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

/// Deep union of two objects; `overlay` wins where both have a non-object value.
fn combine(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(bv) => combine(bv, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Removes the value at `path`; maps and lists left empty by the removal go too.
fn remove_path(v: &mut Value, path: &[PathElement]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    match (v, first) {
        (Value::Object(m), PathElement::Field(k)) => {
            if rest.is_empty() {
                return m.remove(k).is_some();
            }
            let Some(child) = m.get_mut(k) else {
                return false;
            };
            let removed = remove_path(child, rest);
            if removed && is_empty_container(child) {
                m.remove(k);
            }
            removed
        }
        (Value::Array(items), pe) => {
            let Some(i) = find_item(items, pe) else {
                return false;
            };
            if rest.is_empty() {
                items.remove(i);
                return true;
            }
            items.get_mut(i).is_some_and(|item| remove_path(item, rest))
        }
        _ => false,
    }
}

fn has_descendant(set: &BTreeSet<FieldPath>, p: &FieldPath) -> bool {
    set.range((Bound::Excluded(p.clone()), Bound::Unbounded)).next().is_some_and(|q| q.starts_with(p))
}

// ---------------------------------------------------------------------------------------------
// Server-side apply and updates
// ---------------------------------------------------------------------------------------------

/// Server-side apply of `applied` by `manager` through the main resource: see [`apply_as`].
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    owners: &mut FieldOwners,
    list_keys: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<Value, ApplyError> {
    apply_as(live, applied, ManagerRef::new(manager), force, owners, list_keys)
}

/// Server-side apply: the object after `manager` applies `applied` to `live` (`None` when the
/// apply creates the object), updating `owners`.
///
/// - The configuration is merged into the live object (maps recursively, keyed and set lists
///   per `list_keys` item by item, other lists replaced; `null` removes).
/// - Fields the manager applied last time but not now are removed, unless another manager owns
///   them too (or something inside them).
/// - Fields that change and are owned by another manager are conflicts: without `force` nothing
///   changes and [`ApplyError::Conflicts`] lists them (manager-sorted); with `force` the other
///   managers lose them. Fields set to the value they already have are not conflicts; the
///   managers then share them.
/// - Afterwards `manager`'s Apply entry owns exactly the applied fields, and other managers lose
///   fields that went away.
///
/// Scope: through the main resource, `status`, `apiVersion`, `kind` and the server-set
/// metadata (`name`, `namespace`, `uid`, `resourceVersion`, `generation`,
/// `creationTimestamp`, `managedFields`, `deletionTimestamp`, ...) are neither applied nor owned;
/// the result keeps the live object's (on create: `apiVersion`, `kind`, `name`, `namespace` of
/// `applied`). A `metadata.resourceVersion` in `applied` is copied into the result so that the
/// caller can check it as a precondition. Through `subresource: Some("status")` only `status`
/// is applied and owned, and the entry records the subresource.
///
/// The returned object keeps `live`'s `metadata.managedFields` as they were: write `owners`
/// with [`FieldOwners::write_to`]. If the apply changes nothing, the result equals `live` and the
/// manager's entry is not marked as changed (no new time); its ownership may still change.
pub fn apply_as(
    live: Option<&Value>,
    applied: &Value,
    manager: ManagerRef<'_>,
    force: bool,
    owners: &mut FieldOwners,
    list_keys: &dyn Fn(&str) -> Option<&'static str>,
) -> Result<Value, ApplyError> {
    if !applied.is_object() {
        return Err(ApplyError::Invalid("the apply configuration must be a JSON object".into()));
    }
    let scope = Scope::of(manager.subresource);
    let empty = Value::Object(Map::new());
    let live_obj = live.unwrap_or(&empty);
    let (live_tracked, live_rest) = split(live_obj, scope);
    let (config, _) = split(applied, scope);

    let mut new_set = BTreeSet::new();
    apply_field_set(&config, "", &mut Vec::new(), &mut new_set, list_keys)?;
    new_set.retain(|p| !is_system_path(p));
    let merged = merge_apply(Some(&live_tracked), &config, "", list_keys)?;

    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .or_else(|| live_obj.get("apiVersion").and_then(Value::as_str))
        .unwrap_or("");
    let me = owners.position(manager.name, Operation::Apply, api_version, manager.subresource);

    // Remove what this manager applied before and nobody owns any more.
    let mut owned_after = new_set.clone();
    for (i, s) in owners.slots.iter().enumerate() {
        if Some(i) != me {
            owned_after.extend(s.entry.fields.paths.iter().cloned());
        }
    }
    let mut result_tracked = merged;
    if let Some(slot) = me.and_then(|i| owners.slots.get(i)) {
        for p in &slot.entry.fields.paths {
            if !owned_after.contains(p) && !has_descendant(&owned_after, p) {
                remove_path(&mut result_tracked, p);
            }
        }
    }

    let cmp = Comparison::between(&live_tracked, &result_tracked, list_keys);
    let mut conflicts: Vec<(usize, FieldPath)> = Vec::new();
    for (i, s) in owners.slots.iter().enumerate() {
        if Some(i) == me {
            continue;
        }
        for p in &s.entry.fields.paths {
            if cmp.modified.contains(p) || cmp.added.contains(p) {
                conflicts.push((i, p.clone()));
            }
        }
    }
    if !force && !conflicts.is_empty() {
        let mut list: Vec<(&ManagedFieldsEntry, FieldPath)> =
            conflicts.into_iter().filter_map(|(i, p)| owners.slots.get(i).map(|s| (&s.entry, p))).collect();
        list.sort_by(|a, b| {
            (&a.0.manager, a.0.operation, &a.0.api_version, &a.0.subresource, &a.1).cmp(&(
                &b.0.manager,
                b.0.operation,
                &b.0.api_version,
                &b.0.subresource,
                &b.1,
            ))
        });
        return Err(ApplyError::Conflicts(
            list.into_iter()
                .map(|(e, p)| Conflict {
                    manager: e.manager.clone(),
                    operation: e.operation,
                    api_version: e.api_version.clone(),
                    subresource: e.subresource.clone(),
                    field_path: render_path(&p),
                })
                .collect(),
        ));
    }

    let mut rest = match live {
        Some(_) => live_rest,
        None => creation_rest(applied),
    };
    if live.is_some()
        && let Some(rv) = applied.get("metadata").and_then(|m| m.get("resourceVersion"))
    {
        combine(&mut rest, serde_json::json!({ "metadata": { "resourceVersion": rv } }));
    }
    let mut result = rest;
    combine(&mut result, result_tracked);
    let changed = live != Some(&result);

    for (i, s) in owners.slots.iter_mut().enumerate() {
        if Some(i) == me {
            continue;
        }
        s.entry.fields.paths.retain(|p| !cmp.removed.contains(p) && !conflicts.iter().any(|(j, q)| *j == i && q == p));
    }
    match me.and_then(|i| owners.slots.get_mut(i)) {
        Some(slot) => {
            slot.entry.fields.paths = new_set;
            if !api_version.is_empty() {
                slot.entry.api_version = api_version.to_owned();
            }
            slot.touched |= changed;
        }
        None => owners.slots.push(Slot {
            entry: ManagedFieldsEntry {
                manager: manager.name.to_owned(),
                operation: Operation::Apply,
                api_version: api_version.to_owned(),
                time: None,
                subresource: manager.subresource.map(str::to_owned),
                fields: FieldSet { paths: new_set },
            },
            touched: changed,
        }),
    }
    owners.drop_empty();
    match live {
        Some(l) if !changed => Ok(l.clone()),
        _ => Ok(result),
    }
}

/// What an apply that creates the object takes from the configuration besides what it owns.
fn creation_rest(applied: &Value) -> Value {
    let mut rest = Map::new();
    for k in ["apiVersion", "kind"] {
        if let Some(v) = applied.get(k) {
            rest.insert(k.into(), v.clone());
        }
    }
    let mut meta = Map::new();
    for k in ["name", "namespace"] {
        if let Some(v) = applied.get("metadata").and_then(|m| m.get(k)) {
            meta.insert(k.into(), v.clone());
        }
    }
    if !meta.is_empty() {
        rest.insert("metadata".into(), Value::Object(meta));
    }
    Value::Object(rest)
}

/// Records a write that is not an apply (create, update, JSON/merge/strategic patch) by `manager`
/// through the main resource, with the built-in list keys: see [`record_update_as`].
pub fn record_update(before: Option<&Value>, after: &Value, manager: &str, owners: &mut FieldOwners) {
    record_update_as(before, after, ManagerRef::new(manager), owners, &builtin_list_key);
}

/// Records a write that is not an apply: `manager`'s Update entry (identified by manager,
/// apiVersion of `after` and subresource) takes every field that was added or changed from
/// `before` (`None` on create) to `after`, other managers lose those fields, and fields that
/// were removed lose all their owners. Parents that appear are owned too (`.` in `fieldsV1`).
///
/// The scope is as for [`apply_as`]: through `status` only `.status` counts, otherwise
/// everything but `.status` and the server-set fields. The entry is marked as changed (gets the
/// time on [`FieldOwners::write_to`]) only if it took fields.
pub fn record_update_as(
    before: Option<&Value>,
    after: &Value,
    manager: ManagerRef<'_>,
    owners: &mut FieldOwners,
    list_keys: &dyn Fn(&str) -> Option<&'static str>,
) {
    let scope = Scope::of(manager.subresource);
    let empty = Value::Object(Map::new());
    let (b, _) = split(before.unwrap_or(&empty), scope);
    let (a, _) = split(after, scope);
    let cmp = Comparison::between(&b, &a, list_keys);
    let api_version = after.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let mut changed = cmp.added;
    changed.extend(cmp.modified);
    let me = owners.position(manager.name, Operation::Update, api_version, manager.subresource);
    for (i, s) in owners.slots.iter_mut().enumerate() {
        if Some(i) != me {
            s.entry.fields.paths.retain(|p| !changed.contains(p) && !cmp.removed.contains(p));
        }
    }
    match me.and_then(|i| owners.slots.get_mut(i)) {
        Some(slot) => {
            slot.entry.fields.paths.retain(|p| !cmp.removed.contains(p));
            slot.touched |= !changed.is_empty();
            slot.entry.fields.paths.extend(changed);
        }
        None if !changed.is_empty() => owners.slots.push(Slot {
            entry: ManagedFieldsEntry {
                manager: manager.name.to_owned(),
                operation: Operation::Update,
                api_version: api_version.to_owned(),
                time: None,
                subresource: manager.subresource.map(str::to_owned),
                fields: FieldSet { paths: changed },
            },
            touched: true,
        }),
        None => {}
    }
    owners.drop_empty();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fixture(text: &str) -> Value {
        serde_json::from_str(text).expect("fixture is JSON")
    }

    macro_rules! fixture {
        ($name:literal) => {
            fixture(include_str!(concat!("../../tests/fixtures/apiserver-v1.36/", $name, ".json")))
        };
    }

    /// A fixture's request body: JSON bodies are stored as values, others as text.
    fn body(fx: &Value) -> Value {
        match &fx["request"]["body"] {
            Value::String(text) => fixture(text),
            v => v.clone(),
        }
    }

    fn no_keys(_: &str) -> Option<&'static str> {
        None
    }

    fn fields_of(owners: &FieldOwners, manager: &str, op: Operation) -> Value {
        owners.entry(manager, op).map(|e| e.fields.to_fields_v1()).unwrap_or(Value::Null)
    }

    /// The fieldsV1 of a fixture object's managedFields entry.
    fn fixture_fields(obj: &Value, manager: &str, op: &str, subresource: Option<&str>) -> Value {
        obj["metadata"]["managedFields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["manager"] == manager && e["operation"] == op && e["subresource"].as_str() == subresource)
            .map(|e| e["fieldsV1"].clone())
            .unwrap_or(Value::Null)
    }

    // ----- RFC 7386 ----------------------------------------------------------------------------

    #[test]
    fn merge_patch_rfc7386_appendix_a() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (json!({"a":"b","b":"c"}), json!({"a":null}), json!({"b":"c"})),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (json!({"a":{"b":"c"}}), json!({"a":{"b":"d","c":null}}), json!({"a":{"b":"d"}})),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (json!({}), json!({"a":{"bb":{"ccc":null}}}), json!({"a":{"bb":{}}})),
        ];
        for (target, patch, want) in cases {
            let mut t = target.clone();
            merge_patch(&mut t, &patch);
            assert_eq!(t, want, "{target} + {patch}");
        }
    }

    #[test]
    fn merge_patch_rfc7386_section_3_example() {
        let mut t = json!({
            "title": "Goodbye!",
            "author": {"givenName": "John", "familyName": "Doe"},
            "tags": ["example", "sample"],
            "content": "This will be unchanged"
        });
        let p = json!({
            "title": "Hello!",
            "phoneNumber": "+01-123-456-7890",
            "author": {"familyName": null},
            "tags": ["example"]
        });
        merge_patch(&mut t, &p);
        assert_eq!(
            t,
            json!({
                "title": "Hello!",
                "author": {"givenName": "John"},
                "tags": ["example"],
                "content": "This will be unchanged",
                "phoneNumber": "+01-123-456-7890"
            })
        );
    }

    #[test]
    fn merge_patch_fixture_configmap() {
        let fx = fixture!("patch-configmap-merge");
        let mut cm = json!({"metadata": {"name": "cm1", "labels": {"app": "web", "tier": "front"}},
                            "data": {"a": "1", "b": "2", "c": "3", "d": "4"}});
        merge_patch(&mut cm, &body(&fx));
        assert_eq!(cm["data"], fx["response"]["body"]["data"]);
        assert_eq!(cm["metadata"]["labels"], fx["response"]["body"]["metadata"]["labels"]);
    }

    // ----- RFC 6902 ----------------------------------------------------------------------------

    fn jp(doc: Value, ops: Value) -> Result<Value, PatchError> {
        let mut d = doc;
        json_patch(&mut d, &ops).map(|()| d)
    }

    #[test]
    fn json_patch_rfc6902_a1_to_a8() {
        // A.1 adding an object member
        assert_eq!(
            jp(json!({"foo": "bar"}), json!([{"op": "add", "path": "/baz", "value": "qux"}])).unwrap(),
            json!({"baz": "qux", "foo": "bar"})
        );
        // A.2 adding an array element
        assert_eq!(
            jp(json!({"foo": ["bar", "baz"]}), json!([{"op": "add", "path": "/foo/1", "value": "qux"}])).unwrap(),
            json!({"foo": ["bar", "qux", "baz"]})
        );
        // A.3 removing an object member
        assert_eq!(
            jp(json!({"baz": "qux", "foo": "bar"}), json!([{"op": "remove", "path": "/baz"}])).unwrap(),
            json!({"foo": "bar"})
        );
        // A.4 removing an array element
        assert_eq!(
            jp(json!({"foo": ["bar", "qux", "baz"]}), json!([{"op": "remove", "path": "/foo/1"}])).unwrap(),
            json!({"foo": ["bar", "baz"]})
        );
        // A.5 replacing a value
        assert_eq!(
            jp(json!({"baz": "qux", "foo": "bar"}), json!([{"op": "replace", "path": "/baz", "value": "boo"}]))
                .unwrap(),
            json!({"baz": "boo", "foo": "bar"})
        );
        // A.6 moving a value
        assert_eq!(
            jp(
                json!({"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}}),
                json!([{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}])
            )
            .unwrap(),
            json!({"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}})
        );
        // A.7 moving an array element
        assert_eq!(
            jp(
                json!({"foo": ["all", "grass", "cows", "eat"]}),
                json!([{"op": "move", "from": "/foo/1", "path": "/foo/3"}])
            )
            .unwrap(),
            json!({"foo": ["all", "cows", "eat", "grass"]})
        );
        // A.8 testing a value: success
        let doc = json!({"baz": "qux", "foo": ["a", 2, "c"]});
        assert_eq!(
            jp(
                doc.clone(),
                json!([{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}])
            )
            .unwrap(),
            doc
        );
    }

    #[test]
    fn json_patch_rfc6902_a9_to_a16() {
        // A.9 testing a value: error
        assert_eq!(
            jp(json!({"baz": "qux"}), json!([{"op": "test", "path": "/baz", "value": "bar"}])),
            Err(PatchError::TestFailed { index: 0, path: "/baz".into() })
        );
        // A.10 adding a nested member object
        assert_eq!(
            jp(json!({"foo": "bar"}), json!([{"op": "add", "path": "/child", "value": {"grandchild": {}}}])).unwrap(),
            json!({"foo": "bar", "child": {"grandchild": {}}})
        );
        // A.11 ignoring unrecognized elements
        assert_eq!(
            jp(json!({"foo": "bar"}), json!([{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}])).unwrap(),
            json!({"foo": "bar", "baz": "qux"})
        );
        // A.12 adding to a nonexistent target
        assert_eq!(
            jp(json!({"foo": "bar"}), json!([{"op": "add", "path": "/baz/bat", "value": "qux"}])),
            Err(PatchError::PathNotFound { index: 0, path: "/baz/bat".into() })
        );
        // A.14 ~ escape ordering
        let doc = json!({"/": 9, "~1": 10});
        assert_eq!(jp(doc.clone(), json!([{"op": "test", "path": "/~01", "value": 10}])).unwrap(), doc);
        // A.15 comparing strings and numbers
        assert_eq!(
            jp(doc, json!([{"op": "test", "path": "/~01", "value": "10"}])),
            Err(PatchError::TestFailed { index: 0, path: "/~01".into() })
        );
        // A.16 adding an array value
        assert_eq!(
            jp(json!({"foo": ["bar"]}), json!([{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}])).unwrap(),
            json!({"foo": ["bar", ["abc", "def"]]})
        );
    }

    #[test]
    fn json_patch_fixture_sequence() {
        let fx = fixture!("patch-configmap-jsonpatch");
        let mut cm = json!({"data": {"a": "1", "c": "3", "d": "4", "e": "5"}});
        json_patch(&mut cm, &body(&fx)).unwrap();
        assert_eq!(cm["data"], fx["response"]["body"]["data"]);

        // A failing test op first: nothing changes.
        let fx = fixture!("patch-configmap-jsonpatch-test-failed");
        let before = cm.clone();
        let err = json_patch(&mut cm, &body(&fx)).unwrap_err();
        assert_eq!(err, PatchError::TestFailed { index: 0, path: "/data/a".into() });
        assert_eq!(cm, before);

        let fx = fixture!("patch-configmap-jsonpatch-remove-missing");
        let err = json_patch(&mut cm, &body(&fx)).unwrap_err();
        assert_eq!(err, PatchError::PathNotFound { index: 0, path: "/data/zzz".into() });
        assert_eq!(cm, before);
    }

    #[test]
    fn json_patch_is_atomic_when_a_later_op_fails() {
        let mut doc = json!({"a": 1, "list": [1, 2]});
        let before = doc.clone();
        let ops = json!([
            {"op": "add", "path": "/b", "value": 2},
            {"op": "remove", "path": "/list/0"},
            {"op": "replace", "path": "/missing", "value": 3}
        ]);
        assert_eq!(json_patch(&mut doc, &ops), Err(PatchError::PathNotFound { index: 2, path: "/missing".into() }));
        assert_eq!(doc, before);
    }

    #[test]
    fn json_patch_pointers_and_bounds() {
        let doc = json!({"a/b": {"m~n": [10, 20]}, "arr": [0, 1, 2]});
        assert_eq!(jp(doc.clone(), json!([{"op": "test", "path": "/a~1b/m~0n/1", "value": 20}])).unwrap(), doc);
        // Append with '-', insert at len, out of bounds.
        let v = jp(doc.clone(), json!([{"op": "add", "path": "/arr/3", "value": 3}])).unwrap();
        assert_eq!(v["arr"], json!([0, 1, 2, 3]));
        assert!(matches!(
            jp(doc.clone(), json!([{"op": "add", "path": "/arr/5", "value": 3}])),
            Err(PatchError::PathNotFound { index: 0, .. })
        ));
        assert!(matches!(
            jp(doc.clone(), json!([{"op": "remove", "path": "/arr/3"}])),
            Err(PatchError::PathNotFound { .. })
        ));
        assert!(matches!(
            jp(doc.clone(), json!([{"op": "replace", "path": "/arr/-", "value": 1}])),
            Err(PatchError::PathNotFound { .. })
        ));
        // Leading zeros are not indices.
        assert!(matches!(
            jp(doc.clone(), json!([{"op": "remove", "path": "/arr/01"}])),
            Err(PatchError::PathNotFound { .. })
        ));
        // Bad pointers.
        assert_eq!(
            jp(doc.clone(), json!([{"op": "remove", "path": "arr"}])),
            Err(PatchError::InvalidPointer { index: 0, pointer: "arr".into() })
        );
        assert_eq!(
            jp(doc.clone(), json!([{"op": "remove", "path": "/a~2"}])),
            Err(PatchError::InvalidPointer { index: 0, pointer: "/a~2".into() })
        );
        // The whole document.
        assert_eq!(jp(doc.clone(), json!([{"op": "replace", "path": "", "value": [1]}])).unwrap(), json!([1]));
        assert_eq!(jp(doc.clone(), json!([{"op": "add", "path": "", "value": {"x": 1}}])).unwrap(), json!({"x": 1}));
        assert!(jp(doc, json!([{"op": "remove", "path": ""}])).is_err());
    }

    #[test]
    fn json_patch_malformed_operations() {
        let doc = json!({"a": {"b": 1}});
        assert_eq!(jp(doc.clone(), json!({"op": "add"})), Err(PatchError::NotAnArray));
        assert_eq!(
            jp(doc.clone(), json!([{"op": "frobnicate", "path": "/a"}])),
            Err(PatchError::UnknownOp { index: 0, op: "frobnicate".into() })
        );
        assert!(matches!(
            jp(doc.clone(), json!([{"op": "add", "path": "/x"}])),
            Err(PatchError::InvalidOperation { index: 0, .. })
        ));
        assert!(matches!(jp(doc.clone(), json!([{"path": "/x"}])), Err(PatchError::InvalidOperation { .. })));
        assert!(matches!(jp(doc.clone(), json!(["add"])), Err(PatchError::InvalidOperation { .. })));
        assert!(matches!(
            jp(doc.clone(), json!([{"op": "move", "from": "/a", "path": "/a/b/c"}])),
            Err(PatchError::InvalidOperation { .. })
        ));
        assert!(matches!(
            jp(doc.clone(), json!([{"op": "copy", "path": "/c"}])),
            Err(PatchError::InvalidOperation { .. })
        ));
        // Moving onto itself is a no-op; copy copies; numbers compare by value.
        assert_eq!(jp(doc.clone(), json!([{"op": "move", "from": "/a", "path": "/a"}])).unwrap(), doc);
        let v = jp(doc.clone(), json!([{"op": "copy", "from": "/a", "path": "/c"}])).unwrap();
        assert_eq!(v, json!({"a": {"b": 1}, "c": {"b": 1}}));
        assert!(jp(doc.clone(), json!([{"op": "test", "path": "/a/b", "value": 1.0}])).is_ok());
        assert!(jp(doc, json!([{"op": "test", "path": "/a/c", "value": null}])).is_err());
        assert_eq!(
            PatchError::TestFailed { index: 3, path: "/a".into() }.to_string(),
            "operation 3: test failed at \"/a\""
        );
    }

    // ----- strategic merge patch ---------------------------------------------------------------

    fn smp(target: Value, patch: Value) -> Result<Value, PatchError> {
        let mut t = target;
        strategic_merge_patch(&mut t, &patch, &builtin_list_key).map(|()| t)
    }

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "finalizers": ["a", "b"]},
            "spec": {"replicas": 1, "template": {"spec": {
                "containers": [
                    {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                     "ports": [{"containerPort": 80, "name": "http"}]},
                    {"name": "sidecar", "image": "side:1"}
                ],
                "tolerations": [{"key": "x", "operator": "Exists"}]
            }}}
        })
    }

    #[test]
    fn builtin_list_keys() {
        let cases = [
            ("spec.containers", Some("name")),
            ("spec.template.spec.containers", Some("name")),
            ("spec.jobTemplate.spec.template.spec.initContainers", Some("name")),
            ("spec.ephemeralContainers", Some("name")),
            ("spec.containers.env", Some("name")),
            ("spec.template.spec.containers.ports", Some("containerPort")),
            ("spec.template.spec.initContainers.volumeMounts", Some("mountPath")),
            ("spec.template.spec.volumes", Some("name")),
            ("spec.imagePullSecrets", Some("name")),
            ("spec.hostAliases", Some("ip")),
            ("spec.ports", Some("port")),
            ("status.conditions", Some("type")),
            ("metadata.finalizers", Some(MERGE_BY_VALUE)),
            ("spec.template.metadata.finalizers", Some(MERGE_BY_VALUE)),
            ("metadata.ownerReferences", Some("uid")),
            ("spec.tolerations", None),
            ("spec.containers.args", None),
            ("spec.ingress.ports", None),
            ("data", None),
            ("", None),
        ];
        for (path, want) in cases {
            assert_eq!(builtin_list_key(path), want, "{path}");
        }
    }

    #[test]
    fn smp_merges_containers_by_name_and_appends_new_ones() {
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "new", "image": "new:1"},
                {"name": "app", "image": "app:2"}
            ]}}}}),
        )
        .unwrap();
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs.as_array().unwrap().len(), 3);
        assert_eq!(cs[0]["name"], "app");
        assert_eq!(cs[0]["image"], "app:2");
        assert_eq!(cs[0]["env"].as_array().unwrap().len(), 2, "untouched fields stay");
        assert_eq!(cs[1]["name"], "sidecar");
        assert_eq!(cs[2], json!({"name": "new", "image": "new:1"}));
    }

    #[test]
    fn smp_delete_directive_on_list_element_and_map() {
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}}}),
        )
        .unwrap();
        let cs = out["spec"]["template"]["spec"]["containers"].as_array().unwrap();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0]["name"], "app");

        let out = smp(deployment(), json!({"spec": {"template": {"$patch": "delete"}}})).unwrap();
        assert_eq!(out["spec"], json!({"replicas": 1}));
        let out = smp(deployment(), json!({"$patch": "delete"})).unwrap();
        assert_eq!(out, json!({}));
    }

    #[test]
    fn smp_merges_env_and_ports_inside_containers() {
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "app",
                "env": [{"name": "B", "value": "two"}, {"name": "C", "value": "3"}, {"name": "A", "$patch": "delete"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443}]
            }]}}}}),
        )
        .unwrap();
        let app = &out["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(app["env"], json!([{"name": "B", "value": "two"}, {"name": "C", "value": "3"}]));
        assert_eq!(
            app["ports"],
            json!([{"containerPort": 80, "name": "http", "protocol": "TCP"}, {"containerPort": 443}])
        );
    }

    #[test]
    fn smp_finalizers_merge_as_a_set() {
        let out = smp(deployment(), json!({"metadata": {"finalizers": ["b", "c"]}})).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
        let out =
            smp(deployment(), json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "finalizers": ["z"]}}))
                .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b", "z"]));
        // null still deletes the whole list.
        let out = smp(deployment(), json!({"metadata": {"finalizers": null}})).unwrap();
        assert!(out["metadata"].get("finalizers").is_none());
    }

    #[test]
    fn smp_lists_without_key_are_replaced() {
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {"tolerations": [{"key": "y", "operator": "Exists"}]}}}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["template"]["spec"]["tolerations"], json!([{"key": "y", "operator": "Exists"}]));
    }

    #[test]
    fn smp_replace_directives() {
        // On a map.
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {
                "$patch": "replace", "containers": [{"name": "only", "image": "x"}]
            }}}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["template"]["spec"], json!({"containers": [{"name": "only", "image": "x"}]}));
        // As a list element.
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {
                "containers": [{"$patch": "replace"}, {"name": "only", "image": "x"}]
            }}}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([{"name": "only", "image": "x"}]));
        // Any element with `$patch: replace` replaces the list with the plain elements, as the
        // real server does (the directive element itself is dropped).
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "app:3", "$patch": "replace"},
                {"name": "sidecar", "$patch": "delete"},
                {"name": "z", "image": "z"}
            ]}}}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["template"]["spec"]["containers"], json!([{"name": "z", "image": "z"}]));
        // On a map inside an element.
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"$patch": "replace"}]}]}}}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["template"]["spec"]["containers"][0]["env"], json!([]));
        // `$patch: merge` on a list element is an error, as in the real server.
        assert!(matches!(
            smp(
                deployment(),
                json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "$patch": "merge"}]}}}})
            ),
            Err(PatchError::InvalidDirective { .. })
        ));
    }

    #[test]
    fn smp_set_element_order_and_retain_keys() {
        let out = smp(
            deployment(),
            json!({"spec": {"template": {"spec": {
                "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "new"}, {"name": "app"}],
                "containers": [{"name": "new", "image": "n"}]
            }}}}),
        )
        .unwrap();
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sidecar", "new", "app"]);

        // Server-only elements keep their relative place.
        let mut list = vec![json!("a"), json!("s"), json!("b")];
        reorder(&mut list, &[json!("b"), json!("a")], &[json!("a"), json!("s"), json!("b")], None);
        assert_eq!(list, [json!("s"), json!("b"), json!("a")]);
        let mut list = vec![json!("a"), json!("b"), json!("s"), json!("n")];
        reorder(&mut list, &[json!("a"), json!("n"), json!("b")], &[json!("a"), json!("b"), json!("s")], None);
        assert_eq!(list, [json!("a"), json!("n"), json!("b"), json!("s")]);

        let out = smp(
            json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        )
        .unwrap();
        assert_eq!(out, json!({"spec": {"strategy": {"type": "Recreate"}}}));
    }

    #[test]
    fn smp_conditions_and_errors() {
        let pod = json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"},
            {"type": "Scheduled", "status": "True"}
        ]}});
        let out = smp(pod.clone(), json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}})).unwrap();
        assert_eq!(out["status"]["conditions"][0], json!({"type": "Ready", "status": "True"}));
        assert_eq!(out["status"]["conditions"][1]["type"], "Scheduled");

        let mut t = pod.clone();
        let err = strategic_merge_patch(
            &mut t,
            &json!({"metadata": {"labels": {"x": "y"}}, "status": {"conditions": [{"status": "True"}]}}),
            &builtin_list_key,
        )
        .unwrap_err();
        assert_eq!(err, PatchError::MissingMergeKey { path: "status.conditions".into(), key: "type".into() });
        assert_eq!(t, pod, "atomic");
        assert_eq!(smp(pod.clone(), json!([1])), Err(PatchError::NotAnObject));
        assert!(matches!(smp(pod.clone(), json!({"$patch": "explode"})), Err(PatchError::InvalidDirective { .. })));
        assert!(matches!(smp(pod, json!({"$retainKeys": "x"})), Err(PatchError::InvalidDirective { .. })));
    }

    #[test]
    fn smp_fixture_configmap_and_new_nested_values() {
        let fx = fixture!("patch-configmap-strategic-merge");
        let cm = json!({"metadata": {"labels": {"app": "web", "patched": "merge", "tier": "front"}},
                        "data": {"a": "10", "c": "3", "d": "4", "f": "6"}});
        let out = smp(cm, body(&fx)).unwrap();
        assert_eq!(out["data"], fx["response"]["body"]["data"]);
        assert_eq!(out["metadata"]["labels"], fx["response"]["body"]["metadata"]["labels"]);

        // Directives inside values new to the target are applied, not stored.
        let out = smp(
            json!({}),
            json!({"spec": {"containers": [{"name": "a", "env": [
                {"name": "X", "value": "1"},
                {"name": "Y", "$patch": "delete"}
            ]}]}}),
        )
        .unwrap();
        assert_eq!(out, json!({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}]}]}}));

        // The fixture's ephemeral container lands in the pod's list.
        let fx = fixture!("patch-pod-ephemeralcontainers");
        let out = smp(json!({"spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}), body(&fx)).unwrap();
        assert_eq!(out["spec"]["ephemeralContainers"][0]["name"], "debugger");
        assert_eq!(out["spec"]["containers"][0]["name"], "c");
    }

    // ----- managed fields ----------------------------------------------------------------------

    #[test]
    fn managed_fields_round_trip_the_real_format() {
        for body in [
            fixture!("patch-pod-ephemeralcontainers")["response"]["body"].clone(),
            fixture!("crd-widget-apply-force")["response"]["body"].clone(),
            fixture!("create-deployment")["response"]["body"].clone(),
            fixture!("apply-configmap-force")["response"]["body"].clone(),
        ] {
            let list = &body["metadata"]["managedFields"];
            let owners = FieldOwners::from_managed_fields(list).unwrap();
            assert_eq!(owners, FieldOwners::from_object(&body));
            // Nothing touched: written back exactly (the real order and times kept).
            assert_eq!(owners.to_managed_fields("ignored", "ignored"), *list);
            let mut copy = body.clone();
            owners.write_to(&mut copy, "v1", "now");
            assert_eq!(copy, body);
        }
    }

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

    #[test]
    fn invalid_managed_fields() {
        assert!(FieldOwners::from_managed_fields(&json!({})).is_err());
        assert!(FieldOwners::from_managed_fields(&json!([{"manager": "a", "operation": "Frob"}])).is_err());
        assert!(
            FieldOwners::from_managed_fields(
                &json!([{"manager": "a", "operation": "Apply", "fieldsType": "FieldsV2"}])
            )
            .is_err()
        );
        assert!(
            FieldOwners::from_managed_fields(&json!([{"manager": "a", "operation": "Apply", "fieldsV1": {"x:y": {}}}]))
                .is_err()
        );
        assert!(FieldSet::from_fields_v1(&json!({"k:notjson": {}})).is_err());
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
        // Lenient reading skips bad entries.
        let obj = json!({"metadata": {"managedFields": [
            {"manager": "a", "operation": "Frob"},
            {"manager": "b", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:x": {}}}}
        ]}});
        let owners = FieldOwners::from_object(&obj);
        assert_eq!(owners.entries().count(), 1);
        assert_eq!(owners.entries().next().unwrap().fields.paths(), [".data.x"]);
        // Writing nobody removes the field.
        let mut obj = obj;
        FieldOwners::new().write_to(&mut obj, "v1", "t");
        assert_eq!(obj, json!({"metadata": {}}));
    }

    // ----- updates -----------------------------------------------------------------------------

    /// create → PUT → PUT → merge patch → JSON patch → strategic merge patch, each step's
    /// managedFields as the real server wrote them.
    #[test]
    fn record_update_replays_the_configmap_fixtures() {
        let mut owners = FieldOwners::new();
        let create = fixture!("create-configmap");
        let mut obj = body(&create);
        record_update(None, &obj, "fixture-capture", &mut owners);
        owners.write_to(&mut obj, "v1", "2026-11-25T23:08:56Z");
        assert_eq!(obj["metadata"]["managedFields"], create["response"]["body"]["metadata"]["managedFields"]);

        for (name, fx) in [
            ("replace-configmap", fixture!("replace-configmap")),
            ("replace-configmap-no-rv", fixture!("replace-configmap-no-rv")),
        ] {
            let mut after = body(&fx);
            let mut owners = FieldOwners::from_object(&obj);
            record_update(Some(&obj), &after, "fixture-capture", &mut owners);
            owners.write_to(&mut after, "v1", "2026-11-25T23:08:56Z");
            assert_eq!(
                after["metadata"]["managedFields"], fx["response"]["body"]["metadata"]["managedFields"],
                "{name}"
            );
            obj = after;
        }

        for (name, kind, fx) in [
            ("patch-configmap-merge", 0, fixture!("patch-configmap-merge")),
            ("patch-configmap-jsonpatch", 1, fixture!("patch-configmap-jsonpatch")),
            ("patch-configmap-strategic-merge", 2, fixture!("patch-configmap-strategic-merge")),
        ] {
            let body = body(&fx);
            let mut after = obj.clone();
            match kind {
                0 => merge_patch(&mut after, &body),
                1 => json_patch(&mut after, &body).unwrap(),
                _ => strategic_merge_patch(&mut after, &body, &builtin_list_key).unwrap(),
            }
            let mut owners = FieldOwners::from_object(&obj);
            record_update(Some(&obj), &after, "fixture-capture", &mut owners);
            owners.write_to(&mut after, "v1", "2026-11-25T23:08:56Z");
            let want = &fx["response"]["body"];
            assert_eq!(after["metadata"]["managedFields"], want["metadata"]["managedFields"], "{name}");
            assert_eq!(after["data"], want["data"], "{name}");
            obj = after;
        }
    }

    #[test]
    fn record_update_custom_resource_create_and_status() {
        let create = fixture!("crd-widget-create");
        let obj = body(&create);
        let mut owners = FieldOwners::new();
        record_update_as(None, &obj, ManagerRef::new("fixture-capture"), &mut owners, &no_keys);
        assert_eq!(
            fields_of(&owners, "fixture-capture", Operation::Update),
            fixture_fields(&create["response"]["body"], "fixture-capture", "Update", None)
        );

        let status = fixture!("crd-widget-patch-status");
        let mut after = obj.clone();
        merge_patch(&mut after, &body(&status));
        let m = ManagerRef::new("fixture-capture").with_subresource("status");
        record_update_as(Some(&obj), &after, m, &mut owners, &no_keys);
        let mut written = after.clone();
        owners.write_to(&mut written, "example.com/v1", "2026-11-25T23:10:39Z");
        assert_eq!(written["metadata"]["managedFields"], status["response"]["body"]["metadata"]["managedFields"]);
    }

    #[test]
    fn record_update_identity_ownership_transfer_and_time() {
        let v1 = json!({"apiVersion": "v1", "data": {"a": "1", "b": "2"}});
        let mut owners = FieldOwners::new();
        record_update(None, &v1, "one", &mut owners);
        // Another manager changes a and removes b: it takes a, b loses its owner.
        let v2 = json!({"apiVersion": "v1", "data": {"a": "x"}});
        let mut written = v2.clone();
        owners.write_to(&mut written, "v1", "T0");
        let mut owners = FieldOwners::from_object(&written);
        record_update(Some(&v1), &v2, "two", &mut owners);
        assert_eq!(fields_of(&owners, "one", Operation::Update), json!({"f:data": {}}));
        assert_eq!(fields_of(&owners, "two", Operation::Update), json!({"f:data": {"f:a": {}}}));
        owners.write_to(&mut written, "v1", "T1");
        let mf = &written["metadata"]["managedFields"];
        assert_eq!(mf[0]["manager"], "one");
        assert_eq!(mf[0]["time"], "T0", "untouched entries keep their time");
        assert_eq!(mf[1]["time"], "T1");

        // A no-op touches nothing.
        let mut owners = FieldOwners::from_object(&written);
        let snapshot = owners.clone();
        record_update(Some(&v2), &v2, "three", &mut owners);
        assert_eq!(owners, snapshot);

        // Update entries are per apiVersion.
        let v3 = json!({"apiVersion": "v2", "data": {"a": "y"}});
        record_update(Some(&v2), &v3, "two", &mut owners);
        let twos: Vec<_> = owners.entries().filter(|e| e.manager == "two").collect();
        assert_eq!(twos.len(), 1, "v1 entry lost its only field");
        assert_eq!(twos[0].api_version, "v2");
    }

    // ----- server-side apply -------------------------------------------------------------------

    /// Fixture apply bodies are YAML; these are the same documents as JSON.
    fn cm_a(key: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa", "labels": {"owner": "a"}},
               "data": {"key": key, "shared": "from-a"}})
    }

    fn cm_b() -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"},
               "data": {"shared": "from-b", "other": "b"}})
    }

    /// What the fake stores: the result with managedFields written and server fields set.
    fn store(mut obj: Value, owners: &FieldOwners, rv: u32) -> Value {
        owners.write_to(&mut obj, "v1", "2026-11-25T23:08:56Z");
        obj["metadata"]["namespace"] = json!("fixtures");
        obj["metadata"]["uid"] = json!("4ca6aa40-7456-4c87-930a-5a7c80edfd3e");
        obj["metadata"]["creationTimestamp"] = json!("2026-11-25T23:08:56Z");
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        obj
    }

    #[test]
    fn apply_replays_the_configmap_fixtures() {
        // create
        let fx = fixture!("apply-configmap-create");
        let mut owners = FieldOwners::new();
        let created = apply(None, &cm_a("value1"), "a", false, &mut owners, &builtin_list_key).unwrap();
        let live = store(created, &owners, 619);
        assert_eq!(live, fx["response"]["body"]);

        // again, with data.key changed
        let fx = fixture!("apply-configmap-again");
        let mut owners = FieldOwners::from_object(&live);
        let out = apply(Some(&live), &cm_a("value2"), "a", false, &mut owners, &builtin_list_key).unwrap();
        assert_ne!(out, live);
        let live = store(out, &owners, 620);
        assert_eq!(live, fx["response"]["body"]);

        // noop: identical object, nothing to write
        let fx = fixture!("apply-configmap-noop");
        let mut owners = FieldOwners::from_object(&live);
        let before = owners.clone();
        let out = apply(Some(&live), &cm_a("value2"), "a", false, &mut owners, &builtin_list_key).unwrap();
        assert_eq!(out, live);
        assert_eq!(out, fx["response"]["body"]);
        assert_eq!(owners, before);

        // conflict
        let fx = fixture!("apply-configmap-conflict");
        let mut owners = FieldOwners::from_object(&live);
        let err = apply(Some(&live), &cm_b(), "b", false, &mut owners, &builtin_list_key).unwrap_err();
        assert_eq!(owners, FieldOwners::from_object(&live), "nothing changes on conflict");
        let status = &fx["response"]["body"];
        assert_eq!(err.to_string(), status["message"]);
        assert_eq!(serde_json::to_value(err.causes()).unwrap(), status["details"]["causes"]);
        assert_eq!(
            err,
            ApplyError::Conflicts(vec![Conflict {
                manager: "a".into(),
                operation: Operation::Apply,
                api_version: "v1".into(),
                subresource: None,
                field_path: ".data.shared".into(),
            }])
        );

        // force: b takes data.shared
        let fx = fixture!("apply-configmap-force");
        let out = apply(Some(&live), &cm_b(), "b", true, &mut owners, &builtin_list_key).unwrap();
        let live = store(out, &owners, 621);
        assert_eq!(live, fx["response"]["body"]);

        // (not captured) a force-applies its earlier configuration, retaking data.shared
        let mut owners = FieldOwners::from_object(&live);
        let out = apply(Some(&live), &cm_a("value2"), "a", true, &mut owners, &builtin_list_key).unwrap();
        assert_eq!(out["data"], json!({"key": "value2", "other": "b", "shared": "from-a"}));
        assert_eq!(fields_of(&owners, "b", Operation::Apply), json!({"f:data": {"f:other": {}}}));
        let live = store(out, &owners, 622);

        // a applies only data.key: labels.owner and data.shared go, b's data.other stays
        let fx = fixture!("apply-configmap-json-body");
        let body = body(&fx);
        let mut owners = FieldOwners::from_object(&live);
        let out = apply(Some(&live), &body, "a", false, &mut owners, &builtin_list_key).unwrap();
        let live = store(out, &owners, 623);
        assert_eq!(live, fx["response"]["body"]);
    }

    #[test]
    fn apply_conflicts_with_update_managers_and_subresources() {
        // The widget: created and merge-patched by fixture-capture, replicas set through /scale.
        let force = fixture!("crd-widget-apply-force");
        let live = json!({
            "apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w1", "labels": {"app": "widget"}, "managedFields": [
                {"manager": "fixture-capture", "operation": "Update", "apiVersion": "example.com/v1",
                 "time": "2026-11-25T23:10:39Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {".": {}, "f:color": {}}}},
                {"manager": "fixture-capture", "operation": "Update", "apiVersion": "example.com/v1",
                 "subresource": "scale", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
            ]},
            "spec": {"color": "green", "replicas": 5}
        });
        // The fixture's YAML body, as JSON.
        let conflict = fixture!("crd-widget-apply-conflict");
        assert_eq!(
            conflict["request"]["body"],
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  color: blue\n"
        );
        let applied = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w1"}, "spec": {"color": "blue"}});
        let mut owners = FieldOwners::from_object(&live);
        let err = apply(Some(&live), &applied, "a", false, &mut owners, &no_keys).unwrap_err();
        let status = &conflict["response"]["body"];
        assert_eq!(err.to_string(), status["message"]);
        assert_eq!(serde_json::to_value(err.causes()).unwrap(), status["details"]["causes"]);

        let out = apply(Some(&live), &applied, "a", true, &mut owners, &no_keys).unwrap();
        assert_eq!(out["spec"], json!({"color": "blue", "replicas": 5}));
        let want = &force["response"]["body"];
        assert_eq!(fields_of(&owners, "a", Operation::Apply), fixture_fields(want, "a", "Apply", None));
        let main = owners.entries().find(|e| e.operation == Operation::Update && e.subresource.is_none()).unwrap();
        assert_eq!(main.fields.to_fields_v1(), fixture_fields(want, "fixture-capture", "Update", None));
        let scale = owners.entries().find(|e| e.subresource.as_deref() == Some("scale")).unwrap();
        assert_eq!(scale.fields.to_fields_v1(), fixture_fields(want, "fixture-capture", "Update", Some("scale")));

        // A Scale apply conflicting with an Update through /scale.
        let fx = fixture!("apply-deployment-scale-conflict");
        let scale_view = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": "web", "managedFields": [{"manager": "fixture-capture", "operation": "Update",
                "apiVersion": "autoscaling/v1", "subresource": "scale", "fieldsType": "FieldsV1",
                "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
            "spec": {"replicas": 3}, "status": {"replicas": 3, "selector": "app=web"}});
        let applied = json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": "web"}, "spec": {"replicas": 2}});
        let mut owners = FieldOwners::from_object(&scale_view);
        let err = apply_as(
            Some(&scale_view),
            &applied,
            ManagerRef::new("scaler").with_subresource("scale"),
            false,
            &mut owners,
            &no_keys,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), fx["response"]["body"]["message"]);
        assert_eq!(serde_json::to_value(err.causes()).unwrap(), fx["response"]["body"]["details"]["causes"]);
        let out = apply_as(
            Some(&scale_view),
            &applied,
            ManagerRef::new("scaler").with_subresource("scale"),
            true,
            &mut owners,
            &no_keys,
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 2);
        assert_eq!(out["status"], scale_view["status"], "status is kept");
        let e = owners.entry("scaler", Operation::Apply).unwrap();
        assert_eq!(e.subresource.as_deref(), Some("scale"));
        assert_eq!(owners.entries().count(), 1, "the Update entry lost its only field");
    }

    #[test]
    fn apply_conflict_messages_with_several_conflicts() {
        let live = json!({"apiVersion": "v1", "data": {"x": "1", "y": "2", "z": "3"}});
        let mut owners = FieldOwners::new();
        apply(None, &json!({"apiVersion": "v1", "data": {"x": "1", "y": "2"}}), "a", false, &mut owners, &no_keys)
            .unwrap();
        record_update(Some(&json!({"apiVersion": "v1", "data": {"x": "1", "y": "2"}})), &live, "kubectl", &mut owners);
        let applied = json!({"apiVersion": "v1", "data": {"x": "9", "y": "9", "z": "9"}});
        let mut o = owners.clone();
        let err = apply(Some(&live), &applied, "b", false, &mut o, &no_keys).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 3 conflicts: conflicts with \"a\":\n- .data.x\n- .data.y\n\
             conflicts with \"kubectl\" using v1:\n- .data.z"
        );
        let causes = err.causes();
        assert_eq!(causes.len(), 3);
        assert_eq!(causes[2].message, "conflict with \"kubectl\" using v1");
        assert_eq!(causes[2].field, ".data.z");

        let mut o = owners.clone();
        let err = apply(Some(&live), &json!({"data": {"x": "9", "y": "9"}}), "b", false, &mut o, &no_keys).unwrap_err();
        assert_eq!(err.to_string(), "Apply failed with 2 conflicts: conflicts with \"a\":\n- .data.x\n- .data.y");

        // The same value is no conflict: the fields become shared.
        let mut o = owners.clone();
        let out = apply(Some(&live), &json!({"data": {"x": "1"}}), "b", false, &mut o, &no_keys).unwrap();
        assert_eq!(out, live);
        assert_eq!(fields_of(&o, "b", Operation::Apply), json!({"f:data": {"f:x": {}}}));
        assert_eq!(fields_of(&o, "a", Operation::Apply), json!({"f:data": {"f:x": {}, "f:y": {}}}));
    }

    fn pod(containers: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    #[test]
    fn apply_merges_keyed_lists_and_removes_items_no_longer_applied() {
        let mut owners = FieldOwners::new();
        let live = apply(
            None,
            &pod(json!([{"name": "app", "image": "app:1", "args": ["-v"]}, {"name": "side", "image": "side:1"}])),
            "a",
            false,
            &mut owners,
            &builtin_list_key,
        )
        .unwrap();
        assert_eq!(
            fields_of(&owners, "a", Operation::Apply),
            json!({"f:spec": {"f:containers": {
                "k:{\"name\":\"app\"}": {".": {}, "f:args": {}, "f:image": {}, "f:name": {}},
                "k:{\"name\":\"side\"}": {".": {}, "f:image": {}, "f:name": {}}
            }}})
        );

        // b adds a container and an env var to app; a's containers stay.
        let live = apply(
            Some(&live),
            &pod(json!([{"name": "app", "env": [{"name": "X", "value": "1"}]}, {"name": "debug", "image": "d"}])),
            "b",
            false,
            &mut owners,
            &builtin_list_key,
        )
        .unwrap();
        let names: Vec<&str> =
            live["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["app", "side", "debug"]);
        assert_eq!(live["spec"]["containers"][0]["env"], json!([{"name": "X", "value": "1"}]));
        assert_eq!(live["spec"]["containers"][0]["image"], "app:1");

        // a stops applying side and app's args: they go; app stays (b owns things in it).
        let out = apply(
            Some(&live),
            &pod(json!([{"name": "app", "image": "app:1"}])),
            "a",
            false,
            &mut owners,
            &builtin_list_key,
        )
        .unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([
                {"name": "app", "image": "app:1", "env": [{"name": "X", "value": "1"}]},
                {"name": "debug", "image": "d"}
            ])
        );

        // A conflicting image change by b, forced.
        let mut o = owners.clone();
        let err =
            apply(Some(&out), &pod(json!([{"name": "app", "image": "app:2"}])), "b", false, &mut o, &builtin_list_key)
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"a\": .spec.containers[name=\"app\"].image"
        );
    }

    #[test]
    fn apply_sets_and_finalizers() {
        let obj =
            |f: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": f}});
        let mut owners = FieldOwners::new();
        let live = apply(None, &obj(json!(["a/x"])), "a", false, &mut owners, &builtin_list_key).unwrap();
        let live = apply(Some(&live), &obj(json!(["b/y"])), "b", false, &mut owners, &builtin_list_key).unwrap();
        assert_eq!(live["metadata"]["finalizers"], json!(["a/x", "b/y"]));
        assert_eq!(
            fields_of(&owners, "b", Operation::Apply),
            json!({"f:metadata": {"f:finalizers": {"v:\"b/y\"": {}}}})
        );
        // a drops its finalizer.
        let live = apply(Some(&live), &json!({"metadata": {"name": "c"}}), "a", false, &mut owners, &builtin_list_key)
            .unwrap();
        assert_eq!(live["metadata"]["finalizers"], json!(["b/y"]));
        assert!(owners.entry("a", Operation::Apply).is_none(), "a owns nothing any more");
    }

    #[test]
    fn apply_scope_nulls_and_preconditions() {
        let mut owners = FieldOwners::new();
        let live = json!({"apiVersion": "example.com/v1", "kind": "W",
            "metadata": {"name": "w", "uid": "u1", "resourceVersion": "7", "generation": 2},
            "spec": {"a": 1, "b": 2}, "status": {"phase": "Old"}});
        // status, uid, generation in the configuration are ignored; null removes.
        let applied = json!({"apiVersion": "example.com/v1", "kind": "W",
            "metadata": {"name": "w", "uid": "other", "generation": 9},
            "spec": {"a": 1, "b": null, "c": {}}, "status": {"phase": "New"}});
        let out = apply(Some(&live), &applied, "m", false, &mut owners, &no_keys).unwrap();
        assert_eq!(
            out,
            json!({"apiVersion": "example.com/v1", "kind": "W",
                "metadata": {"name": "w", "uid": "u1", "resourceVersion": "7", "generation": 2},
                "spec": {"a": 1, "c": {}}, "status": {"phase": "Old"}})
        );
        assert_eq!(fields_of(&owners, "m", Operation::Apply), json!({"f:spec": {"f:a": {}, "f:b": {}, "f:c": {}}}));

        // resourceVersion of the configuration is carried for the caller's precondition check.
        let mut o = owners.clone();
        let stale = json!({"metadata": {"name": "w", "resourceVersion": "3"}, "spec": {"a": 1, "b": null, "c": {}}});
        let out2 = apply(Some(&out), &stale, "m", false, &mut o, &no_keys).unwrap();
        assert_eq!(out2["metadata"]["resourceVersion"], "3");

        // Through /status only status is applied, in its own entry.
        let st = json!({"apiVersion": "example.com/v1", "kind": "W", "metadata": {"name": "w"},
            "spec": {"a": 100}, "status": {"phase": "New"}});
        let out3 =
            apply_as(Some(&out), &st, ManagerRef::new("m").with_subresource("status"), false, &mut owners, &no_keys)
                .unwrap();
        assert_eq!(out3["spec"], out["spec"]);
        assert_eq!(out3["status"], json!({"phase": "New"}));
        let entries: Vec<_> = owners.entries().filter(|e| e.manager == "m").collect();
        assert_eq!(entries.len(), 2);
        let status_entry = entries.iter().find(|e| e.subresource.as_deref() == Some("status")).unwrap();
        assert_eq!(status_entry.fields.to_fields_v1(), json!({"f:status": {"f:phase": {}}}));
        // ... and does not prune the main entry's fields.
        assert_eq!(fields_of(&owners, "m", Operation::Apply), json!({"f:spec": {"f:a": {}, "f:b": {}, "f:c": {}}}));
    }

    #[test]
    fn apply_after_update_conflicts_and_times() {
        // kubectl create (Update), then a controller applies a different replicas.
        let created =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 1}});
        let mut owners = FieldOwners::new();
        record_update(None, &created, "kubectl-create", &mut owners);
        let mut live = created.clone();
        owners.write_to(&mut live, "apps/v1", "T0");

        let applied =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 3}});
        let mut owners = FieldOwners::from_object(&live);
        let err = apply(Some(&live), &applied, "ctl", false, &mut owners, &builtin_list_key).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-create\" using apps/v1: .spec.replicas"
        );
        let out = apply(Some(&live), &applied, "ctl", true, &mut owners, &builtin_list_key).unwrap();
        let mut stored = out.clone();
        owners.write_to(&mut stored, "apps/v1", "T1");
        let mf = stored["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(mf.len(), 2);
        assert_eq!(
            (mf[0]["manager"].as_str(), mf[0]["operation"].as_str(), mf[0]["time"].as_str()),
            (Some("ctl"), Some("Apply"), Some("T1"))
        );
        assert_eq!(mf[1]["fieldsV1"], json!({"f:spec": {}}));
        assert_eq!(mf[1]["time"], "T0");

        // A no-op apply: same object, no new time.
        let mut owners = FieldOwners::from_object(&stored);
        let again = apply(Some(&stored), &applied, "ctl", false, &mut owners, &builtin_list_key).unwrap();
        assert_eq!(again, stored);
        let mut rewritten = again.clone();
        owners.write_to(&mut rewritten, "apps/v1", "T2");
        assert_eq!(rewritten, stored);
    }

    #[test]
    fn apply_rejects_invalid_configurations() {
        let mut owners = FieldOwners::new();
        assert!(matches!(apply(None, &json!([1]), "a", false, &mut owners, &no_keys), Err(ApplyError::Invalid(_))));
        let err = apply(None, &pod(json!([{"image": "x"}])), "a", false, &mut owners, &builtin_list_key).unwrap_err();
        assert!(matches!(err, ApplyError::Invalid(_)), "{err}");
        let err = apply(None, &pod(json!([{"name": "a"}, {"name": "a"}])), "a", false, &mut owners, &builtin_list_key)
            .unwrap_err();
        assert_eq!(err.to_string(), ".spec.containers: duplicate entries for key [name=\"a\"]");
        assert!(err.causes().is_empty());
        assert!(owners.is_empty());
    }

    #[test]
    fn merge_list_keeps_live_order_and_config_order() {
        let kind = ListKind::Map(vec!["name"]);
        let items = |names: &[&str]| -> Vec<Value> { names.iter().map(|n| json!({"name": n})).collect() };
        let names =
            |v: Vec<Value>| -> Vec<String> { v.iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect() };
        let lk = |_: &str| Some("name");
        let out = merge_list(&items(&["a", "b", "c"]), &items(&["c", "d", "a"]), &kind, "x", &lk).unwrap();
        assert_eq!(names(out), ["b", "c", "d", "a"]);
        let out = merge_list(&items(&["a", "b"]), &items(&["x"]), &kind, "x", &lk).unwrap();
        assert_eq!(names(out), ["a", "b", "x"]);
        let out = merge_list(&[], &items(&["x", "y"]), &kind, "x", &lk).unwrap();
        assert_eq!(names(out), ["x", "y"]);
    }
}
