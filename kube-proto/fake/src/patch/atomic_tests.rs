//! Atomic maps and structs (`x-kubernetes-map-type: atomic`) in server-side apply and in the
//! managed fields of other writes: one field each, applied, compared and owned whole, as the
//! real server treats a `LabelSelector`, `PodSpec.nodeSelector`, a Service's selector and the
//! items of `metadata.ownerReferences`.

use serde_json::{Value, json};

use super::test_support::{fields_of, fixture, fixture_fields};
use super::{
    ATOMIC, ApplyError, Conflict, FieldOwners, KindSchema, ManagerRef, Operation, apply, merge_patch, record_update_as,
};

fn keys_of(group: &'static str, version: &'static str, kind: &'static str) -> impl Fn(&str) -> Option<&'static str> {
    let schema = KindSchema::of(group, version, kind).expect("a built-in kind");
    move |p: &str| schema.apply_list_key(p)
}

fn deployment(spec: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec})
}

fn conflict_paths(err: &ApplyError) -> Vec<(String, String)> {
    match err {
        ApplyError::Conflicts(c) => c.iter().map(|c| (c.manager.clone(), c.field_path.clone())).collect(),
        ApplyError::Invalid(m) => panic!("not a conflict: {m}"),
    }
}

/// `fieldsV1` without the `.` markers of parents: the fake owns parents that appear on create
/// (as the real server does for custom resources), the real server not for a typed built-in.
fn without_dots(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().filter(|(k, _)| *k != ".").map(|(k, v)| (k.clone(), without_dots(v))).collect())
        }
        v => v.clone(),
    }
}

#[test]
fn the_schema_marks_atomic_maps_structs_and_items() {
    let d = KindSchema::of("apps", "v1", "Deployment").unwrap();
    assert_eq!(d.apply_list_key("spec.selector"), Some(ATOMIC), "a LabelSelector");
    assert_eq!(d.apply_list_key("spec.template.spec.nodeSelector"), Some(ATOMIC), "a property's map type");
    assert_eq!(
        d.apply_list_key("spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"),
        Some(ATOMIC),
        "a NodeSelector"
    );
    let env = "spec.template.spec.containers.env.valueFrom";
    assert_eq!(d.apply_list_key(&format!("{env}.secretKeyRef")), Some(ATOMIC));
    assert_eq!(d.apply_list_key(&format!("{env}.fieldRef")), Some(ATOMIC));
    // Granular: the default for maps and structs.
    assert_eq!(d.apply_list_key("spec.template"), None);
    assert_eq!(d.apply_list_key("spec.template.metadata.labels"), None);
    assert_eq!(d.apply_list_key("metadata.annotations"), None);
    // Items: owner references and image pull secrets are keyed lists of atomic structs.
    assert_eq!(d.apply_list_key("metadata.ownerReferences"), Some("uid"));
    assert_eq!(d.apply_list_key("metadata.ownerReferences[]"), Some(ATOMIC));
    assert_eq!(d.apply_list_key("spec.template.spec.imagePullSecrets[]"), Some(ATOMIC));
    assert_eq!(d.apply_list_key("spec.template.spec.containers[]"), None);
    assert_eq!(d.apply_list_key("spec.selector[]"), None, "not a list");
    let svc = KindSchema::of("", "v1", "Service").unwrap();
    assert_eq!(svc.apply_list_key("spec.selector"), Some(ATOMIC));
    assert_eq!(
        KindSchema::of("", "v1", "ReplicationController").unwrap().apply_list_key("spec.selector"),
        Some(ATOMIC)
    );
    let rc = KindSchema::of("node.k8s.io", "v1", "RuntimeClass").unwrap();
    assert_eq!(rc.apply_list_key("scheduling.nodeSelector"), Some(ATOMIC));
    let rb = KindSchema::of("rbac.authorization.k8s.io", "v1", "RoleBinding").unwrap();
    assert_eq!(rb.apply_list_key("roleRef"), Some(ATOMIC));
    // A property's `granular` wins over its type's `atomic`: a PersistentVolume's claimRef is an
    // ObjectReference, atomic elsewhere.
    let pv = KindSchema::of("", "v1", "PersistentVolume").unwrap();
    assert_eq!(pv.apply_list_key("spec.claimRef"), None);
    let cj = KindSchema::of("batch", "v1", "CronJob").unwrap();
    assert_eq!(cj.apply_list_key("status.active"), None, "an atomic list");
    assert_eq!(cj.apply_list_key("spec.jobTemplate.spec.selector"), Some(ATOMIC));
}

/// Two managers and one `LabelSelector`: the whole selector is one field.
#[test]
fn a_deployment_selector_is_one_field_for_two_appliers() {
    let keys = keys_of("apps", "v1", "Deployment");
    let sel = |labels: Value| json!({"matchLabels": labels});
    let mut owners = FieldOwners::new();
    let live = apply(
        None,
        &deployment(json!({"replicas": 1, "selector": sel(json!({"app": "web"}))})),
        "a",
        false,
        &mut owners,
        &keys,
    )
    .unwrap();
    assert_eq!(
        fields_of(&owners, "a", Operation::Apply),
        json!({"f:spec": {"f:replicas": {}, "f:selector": {}}}),
        "the selector is a leaf"
    );

    // b adds a label to the selector: the whole selector conflicts, not a new key in it.
    let wider = deployment(json!({"selector": sel(json!({"app": "web", "tier": "fe"}))}));
    let err = apply(Some(&live), &wider, "b", false, &mut owners.clone(), &keys).unwrap_err();
    assert_eq!(conflict_paths(&err), [("a".to_owned(), ".spec.selector".to_owned())]);
    assert_eq!(err.to_string(), "Apply failed with 1 conflict: conflict with \"a\": .spec.selector");

    // The same selector is shared.
    let same = deployment(json!({"selector": sel(json!({"app": "web"}))}));
    let live = apply(Some(&live), &same, "b", false, &mut owners, &keys).unwrap();
    assert_eq!(fields_of(&owners, "b", Operation::Apply), json!({"f:spec": {"f:selector": {}}}));
    assert_eq!(fields_of(&owners, "a", Operation::Apply), json!({"f:spec": {"f:replicas": {}, "f:selector": {}}}));

    // a gives it up: b still owns it, so it stays.
    let live = apply(Some(&live), &deployment(json!({"replicas": 1})), "a", false, &mut owners, &keys).unwrap();
    assert_eq!(live["spec"]["selector"], sel(json!({"app": "web"})));
    assert_eq!(fields_of(&owners, "a", Operation::Apply), json!({"f:spec": {"f:replicas": {}}}));

    // b replaces it with matchExpressions: nothing of the old selector is merged in.
    let exprs = json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]});
    let live = apply(Some(&live), &deployment(json!({"selector": exprs})), "b", false, &mut owners, &keys).unwrap();
    assert_eq!(live["spec"]["selector"], exprs);
}

/// An applier shrinks a Service's selector that another applier set: keys it leaves out go, as
/// the selector is replaced whole; where it is shared, the change conflicts.
#[test]
fn a_service_selector_shrinks_under_apply() {
    let keys = keys_of("", "v1", "Service");
    let svc = |selector: Value| {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"selector": selector, "ports": [{"port": 80}]}})
    };
    let wide = svc(json!({"app": "web", "tier": "fe"}));
    let narrow = svc(json!({"app": "web"}));
    let mut owners = FieldOwners::new();
    let live = apply(None, &wide, "a", false, &mut owners, &keys).unwrap();
    let live = apply(Some(&live), &wide, "b", false, &mut owners, &keys).unwrap();
    // Shared: a's narrower selector would change b's field (granular, a would just drop its
    // `tier` and b's would stay).
    let err = apply(Some(&live), &narrow, "a", false, &mut owners.clone(), &keys).unwrap_err();
    assert_eq!(conflict_paths(&err), [("b".to_owned(), ".spec.selector".to_owned())]);

    // Forced: the selector is exactly a's, though b set `tier` too; b loses the selector.
    let live = apply(Some(&live), &narrow, "a", true, &mut owners, &keys).unwrap();
    assert_eq!(live["spec"]["selector"], json!({"app": "web"}));
    let b = fields_of(&owners, "b", Operation::Apply);
    assert!(b["f:spec"].get("f:selector").is_none(), "{b}");
    assert_eq!(fields_of(&owners, "a", Operation::Apply)["f:spec"]["f:selector"], json!({}));

    // Alone, a shrinks it again without conflict.
    let live = apply(Some(&live), &svc(json!({"tier": "fe"})), "a", false, &mut owners, &keys).unwrap();
    assert_eq!(live["spec"]["selector"], json!({"tier": "fe"}));
}

/// `PodSpec.nodeSelector`: an Update manager that adds a key takes the whole map, and the
/// applier then conflicts with it on the map, not on a key.
#[test]
fn a_node_selector_changed_by_an_update_manager() {
    let keys = keys_of("", "v1", "Pod");
    let pod = |ns: Value| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"nodeSelector": ns, "containers": [{"name": "app", "image": "nginx"}]}})
    };
    let mut owners = FieldOwners::new();
    let live = apply(None, &pod(json!({"disk": "ssd"})), "a", false, &mut owners, &keys).unwrap();
    let a = fields_of(&owners, "a", Operation::Apply);
    assert_eq!(a["f:spec"]["f:nodeSelector"], json!({}), "{a}");

    let mut edited = live.clone();
    merge_patch(&mut edited, &json!({"spec": {"nodeSelector": {"zone": "a"}}}));
    assert_eq!(edited["spec"]["nodeSelector"], json!({"disk": "ssd", "zone": "a"}));
    record_update_as(Some(&live), &edited, ManagerRef::new("kubectl-edit"), &mut owners, &keys);
    assert_eq!(fields_of(&owners, "kubectl-edit", Operation::Update), json!({"f:spec": {"f:nodeSelector": {}}}));
    let a = fields_of(&owners, "a", Operation::Apply);
    assert!(a["f:spec"].get("f:nodeSelector").is_none(), "a lost the map: {a}");

    let err = apply(Some(&edited), &pod(json!({"disk": "ssd"})), "a", false, &mut owners.clone(), &keys).unwrap_err();
    assert_eq!(
        err,
        ApplyError::Conflicts(vec![Conflict {
            manager: "kubectl-edit".into(),
            operation: Operation::Update,
            api_version: "v1".into(),
            subresource: None,
            field_path: ".spec.nodeSelector".into(),
        }])
    );
    // A Deployment's pod template too.
    let d = keys_of("apps", "v1", "Deployment");
    let mut owners = FieldOwners::new();
    let cfg = deployment(json!({"template": {"spec": {"nodeSelector": {"disk": "ssd"}}}}));
    apply(None, &cfg, "a", false, &mut owners, &d).unwrap();
    assert_eq!(
        fields_of(&owners, "a", Operation::Apply),
        json!({"f:spec": {"f:template": {"f:spec": {"f:nodeSelector": {}}}}})
    );
}

/// Owner references are keyed by uid and each is one field.
#[test]
fn owner_references_are_leaves() {
    let keys = keys_of("", "v1", "ConfigMap");
    let owner = |uid: &str, name: &str| json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": name, "uid": uid, "controller": true});
    let cm = |refs: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "ownerReferences": refs}});
    let mut owners = FieldOwners::new();
    let live = apply(None, &cm(json!([owner("u1", "web")])), "a", false, &mut owners, &keys).unwrap();
    assert_eq!(
        fields_of(&owners, "a", Operation::Apply),
        json!({"f:metadata": {"f:ownerReferences": {"k:{\"uid\":\"u1\"}": {}}}})
    );
    // Another applier's reference with the same uid but another name conflicts on the item.
    let err = apply(Some(&live), &cm(json!([owner("u1", "api")])), "b", false, &mut owners.clone(), &keys).unwrap_err();
    assert_eq!(conflict_paths(&err), [("a".to_owned(), ".metadata.ownerReferences[uid=\"u1\"]".to_owned())]);
    // Forced, the item is b's whole: the fields a set and b leaves out go.
    let slim = json!([{"apiVersion": "apps/v1", "kind": "Deployment", "name": "api", "uid": "u1"}]);
    let live = apply(Some(&live), &cm(slim.clone()), "b", true, &mut owners, &keys).unwrap();
    assert_eq!(live["metadata"]["ownerReferences"], slim);
}

/// Writes that are not applies own atomic fields whole too: the real server's managedFields of
/// a created Deployment and PodDisruptionBudget, and of a ReplicaSet its controller wrote.
#[test]
fn update_managers_own_atomic_fields_as_leaves_like_the_real_server() {
    for (name, fx, keys, item) in [
        ("create-deployment", fixture!("create-deployment"), keys_of("apps", "v1", "Deployment"), None),
        (
            "create-poddisruptionbudget",
            fixture!("create-poddisruptionbudget"),
            keys_of("policy", "v1", "PodDisruptionBudget"),
            None,
        ),
        ("list-replicasets", fixture!("list-replicasets"), keys_of("apps", "v1", "ReplicaSet"), Some(0)),
    ] {
        let obj = match item {
            Some(i) => fx["response"]["body"]["items"][i].clone(),
            None => fx["response"]["body"].clone(),
        };
        let entry = &obj["metadata"]["managedFields"][0];
        let manager = entry["manager"].as_str().unwrap();
        let mut owners = FieldOwners::new();
        record_update_as(None, &obj, ManagerRef::new(manager), &mut owners, &keys);
        let ours = fields_of(&owners, manager, Operation::Update);
        assert_eq!(ours["f:spec"]["f:selector"], json!({}), "{name}: {ours}");
        assert_eq!(without_dots(&ours), without_dots(&fixture_fields(&obj, manager, "Update", None)), "{name}");
    }
}

/// The same writes without the schema's atomic marking would own the selector key by key: the
/// fixture comparison above can fail.
#[test]
fn without_the_marking_the_selector_is_granular() {
    let fx = fixture!("create-poddisruptionbudget");
    let obj = &fx["response"]["body"];
    let schema = KindSchema::of("policy", "v1", "PodDisruptionBudget").unwrap();
    let granular = move |p: &str| schema.apply_list_key(p).filter(|k| *k != ATOMIC);
    let mut owners = FieldOwners::new();
    record_update_as(None, obj, ManagerRef::new("fixture-capture"), &mut owners, &granular);
    let ours = fields_of(&owners, "fixture-capture", Operation::Update);
    assert_eq!(ours["f:spec"]["f:selector"], json!({".": {}, "f:matchLabels": {".": {}, "f:app": {}}}));
    assert_ne!(without_dots(&ours), without_dots(&fixture_fields(obj, "fixture-capture", "Update", None)));
}
