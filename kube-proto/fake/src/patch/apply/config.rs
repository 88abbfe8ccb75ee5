//! An apply configuration: the fields it sets (structured-merge-diff's `ToFieldSet`) and its
//! merge into the live object.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::patch::compare::{ListKind, default_keys, is_atomic, item_element, key_field, list_kind};
use crate::patch::field_set::{FieldPath, PathElement};
use crate::patch::{ApplyError, join};

fn missing_key(path: &str, kind: &ListKind<'_>) -> ApplyError {
    let keys = match kind {
        ListKind::Map(k) => k.iter().map(|k| key_field(k).0).collect::<Vec<_>>().join(", "),
        _ => String::new(),
    };
    ApplyError::Invalid(format!(".{path}: an element of this associative list does not have the key field(s) {keys}"))
}

/// The fields an apply configuration sets (structured-merge-diff's `ToFieldSet`): scalars,
/// atomic lists, atomic maps and structs, empty maps and nulls as leaves, keyed and set items as
/// owned nodes (leaves when each item is atomic).
pub(super) fn apply_field_set<'k>(
    v: &Value,
    path_str: &str,
    path: &mut FieldPath,
    out: &mut BTreeSet<FieldPath>,
    list_keys: &dyn Fn(&str) -> Option<&'k str>,
) -> Result<(), ApplyError> {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                path.push(PathElement::Field(k.clone()));
                let child_path = join(path_str, k);
                if child.is_null()
                    || child.as_object().is_some_and(|c| c.is_empty() || is_atomic(&child_path, false, list_keys))
                {
                    out.insert(path.clone());
                } else {
                    apply_field_set(child, &child_path, path, out, list_keys)?;
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
            let atomic_items = is_atomic(path_str, true, list_keys);
            for item in items {
                let pe = item_element(item, &kind).ok_or_else(|| missing_key(path_str, &kind))?;
                path.push(pe);
                out.insert(path.clone());
                if item.is_object() && !atomic_items {
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

/// structured-merge-diff's merge of an apply configuration into the live object; an atomic map
/// or struct (`atomic`) is replaced whole.
pub(super) fn merge_apply<'k>(
    lhs: Option<&Value>,
    rhs: &Value,
    path: &str,
    atomic: bool,
    list_keys: &dyn Fn(&str) -> Option<&'k str>,
) -> Result<Value, ApplyError> {
    match rhs {
        Value::Object(_) if atomic => Ok(rhs.clone()),
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
                let child = join(path, k);
                let merged = merge_apply(out.get(k), rv, &child, is_atomic(&child, false, list_keys), list_keys)?;
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
fn merge_list<'k>(
    lhs: &[Value],
    rhs: &[Value],
    kind: &ListKind<'k>,
    path: &str,
    list_keys: &dyn Fn(&str) -> Option<&'k str>,
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
    let atomic_items = is_atomic(path, true, list_keys);
    let merge_item = |pe: &PathElement, r: &Value| -> Result<Value, ApplyError> {
        let l = observed_lhs.get(pe).and_then(|&i| lhs.get(i));
        let mut merged = merge_apply(l, r, path, atomic_items, list_keys)?;
        default_keys(&mut merged, kind);
        Ok(merged)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
