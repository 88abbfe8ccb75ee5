//! Strategic merge patch of built-in kinds (`application/strategic-merge-patch+json`), and the
//! merge keys of the built-in kinds' lists, which server-side apply uses too.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{MERGE_BY_VALUE, PatchError, join};

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
/// Maps merge recursively as in [`merge_patch`](super::merge_patch) (`null` deletes). A list whose dotted path has a
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::test_support::{body, fixture};
    use serde_json::json;

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
}
