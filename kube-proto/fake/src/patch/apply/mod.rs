//! Server-side apply (`application/apply-patch+yaml`): the configuration merged into the live
//! object, fields its manager no longer applies removed, and conflicts with other managers.

use std::collections::BTreeSet;
use std::ops::Bound;

use serde_json::{Map, Value};

mod config;

use config::{apply_field_set, merge_apply};

use super::compare::{Comparison, Scope, is_system_path, split};
use super::field_set::{FieldPath, PathElement, canonical_json, render_path};
use super::managed_fields::Slot;
use super::{ApplyError, Conflict, FieldOwners, FieldSet, ManagedFieldsEntry, ManagerRef, Operation};

/// Server-side apply of `applied` by `manager` through the main resource: see [`apply_as`].
pub fn apply<'k>(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    owners: &mut FieldOwners,
    list_keys: &dyn Fn(&str) -> Option<&'k str>,
) -> Result<Value, ApplyError> {
    apply_as(live, applied, ManagerRef::new(manager), force, owners, list_keys)
}

/// Server-side apply: the object after `manager` applies `applied` to `live` (`None` when the
/// apply creates the object), updating `owners`.
///
/// - The configuration is merged into the live object (maps recursively, keyed and set lists
///   per `list_keys` item by item, other lists and the maps and structs `list_keys` calls
///   [`ATOMIC`](super::ATOMIC) replaced whole; `null` removes).
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
pub fn apply_as<'k>(
    live: Option<&Value>,
    applied: &Value,
    manager: ManagerRef<'_>,
    force: bool,
    owners: &mut FieldOwners,
    list_keys: &dyn Fn(&str) -> Option<&'k str>,
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
    let merged = merge_apply(Some(&live_tracked), &config, "", false, list_keys)?;

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

#[cfg(test)]
mod tests;
