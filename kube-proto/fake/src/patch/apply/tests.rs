//! Server-side apply against the recorded exchanges and the real server's rules: conflicts and
//! their messages, keyed lists and sets, scopes, and invalid configurations.

use super::*;
use crate::patch::test_support::{body, fields_of, fixture, fixture_fields, no_keys};
use crate::patch::{KindSchema, record_update};

/// Apply's list rules of a Pod (keyed containers, set finalizers), from the real schema; they
/// serve the ConfigMaps, Deployments and custom resources here too (their lists are in
/// metadata, which every kind shares, or absent).
fn pod_keys(path: &str) -> Option<&'static str> {
    KindSchema::of("", "v1", "Pod").and_then(|s| s.apply_list_key(path))
}
use serde_json::json;

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
    let created = apply(None, &cm_a("value1"), "a", false, &mut owners, &pod_keys).unwrap();
    let live = store(created, &owners, 619);
    assert_eq!(live, fx["response"]["body"]);

    // again, with data.key changed
    let fx = fixture!("apply-configmap-again");
    let mut owners = FieldOwners::from_object(&live);
    let out = apply(Some(&live), &cm_a("value2"), "a", false, &mut owners, &pod_keys).unwrap();
    assert_ne!(out, live);
    let live = store(out, &owners, 620);
    assert_eq!(live, fx["response"]["body"]);

    // noop: identical object, nothing to write
    let fx = fixture!("apply-configmap-noop");
    let mut owners = FieldOwners::from_object(&live);
    let before = owners.clone();
    let out = apply(Some(&live), &cm_a("value2"), "a", false, &mut owners, &pod_keys).unwrap();
    assert_eq!(out, live);
    assert_eq!(out, fx["response"]["body"]);
    assert_eq!(owners, before);

    // conflict
    let fx = fixture!("apply-configmap-conflict");
    let mut owners = FieldOwners::from_object(&live);
    let err = apply(Some(&live), &cm_b(), "b", false, &mut owners, &pod_keys).unwrap_err();
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
    let out = apply(Some(&live), &cm_b(), "b", true, &mut owners, &pod_keys).unwrap();
    let live = store(out, &owners, 621);
    assert_eq!(live, fx["response"]["body"]);

    // (not captured) a force-applies its earlier configuration, retaking data.shared
    let mut owners = FieldOwners::from_object(&live);
    let out = apply(Some(&live), &cm_a("value2"), "a", true, &mut owners, &pod_keys).unwrap();
    assert_eq!(out["data"], json!({"key": "value2", "other": "b", "shared": "from-a"}));
    assert_eq!(fields_of(&owners, "b", Operation::Apply), json!({"f:data": {"f:other": {}}}));
    let live = store(out, &owners, 622);

    // a applies only data.key: labels.owner and data.shared go, b's data.other stays
    let fx = fixture!("apply-configmap-json-body");
    let body = body(&fx);
    let mut owners = FieldOwners::from_object(&live);
    let out = apply(Some(&live), &body, "a", false, &mut owners, &pod_keys).unwrap();
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
    apply(None, &json!({"apiVersion": "v1", "data": {"x": "1", "y": "2"}}), "a", false, &mut owners, &no_keys).unwrap();
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
        &pod_keys,
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
        &pod_keys,
    )
    .unwrap();
    let names: Vec<&str> =
        live["spec"]["containers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["app", "side", "debug"]);
    assert_eq!(live["spec"]["containers"][0]["env"], json!([{"name": "X", "value": "1"}]));
    assert_eq!(live["spec"]["containers"][0]["image"], "app:1");

    // a stops applying side and app's args: they go; app stays (b owns things in it).
    let out = apply(Some(&live), &pod(json!([{"name": "app", "image": "app:1"}])), "a", false, &mut owners, &pod_keys)
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
        apply(Some(&out), &pod(json!([{"name": "app", "image": "app:2"}])), "b", false, &mut o, &pod_keys).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"a\": .spec.containers[name=\"app\"].image"
    );
}

#[test]
fn apply_sets_and_finalizers() {
    let obj = |f: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": f}});
    let mut owners = FieldOwners::new();
    let live = apply(None, &obj(json!(["a/x"])), "a", false, &mut owners, &pod_keys).unwrap();
    let live = apply(Some(&live), &obj(json!(["b/y"])), "b", false, &mut owners, &pod_keys).unwrap();
    assert_eq!(live["metadata"]["finalizers"], json!(["a/x", "b/y"]));
    assert_eq!(fields_of(&owners, "b", Operation::Apply), json!({"f:metadata": {"f:finalizers": {"v:\"b/y\"": {}}}}));
    // a drops its finalizer.
    let live = apply(Some(&live), &json!({"metadata": {"name": "c"}}), "a", false, &mut owners, &pod_keys).unwrap();
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
    let out3 = apply_as(Some(&out), &st, ManagerRef::new("m").with_subresource("status"), false, &mut owners, &no_keys)
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
    let err = apply(Some(&live), &applied, "ctl", false, &mut owners, &pod_keys).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Apply failed with 1 conflict: conflict with \"kubectl-create\" using apps/v1: .spec.replicas"
    );
    let out = apply(Some(&live), &applied, "ctl", true, &mut owners, &pod_keys).unwrap();
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
    let again = apply(Some(&stored), &applied, "ctl", false, &mut owners, &pod_keys).unwrap();
    assert_eq!(again, stored);
    let mut rewritten = again.clone();
    owners.write_to(&mut rewritten, "apps/v1", "T2");
    assert_eq!(rewritten, stored);
}

#[test]
fn apply_rejects_invalid_configurations() {
    let mut owners = FieldOwners::new();
    assert!(matches!(apply(None, &json!([1]), "a", false, &mut owners, &no_keys), Err(ApplyError::Invalid(_))));
    let err = apply(None, &pod(json!([{"image": "x"}])), "a", false, &mut owners, &pod_keys).unwrap_err();
    assert!(matches!(err, ApplyError::Invalid(_)), "{err}");
    let err = apply(None, &pod(json!([{"name": "a"}, {"name": "a"}])), "a", false, &mut owners, &pod_keys).unwrap_err();
    assert_eq!(err.to_string(), ".spec.containers: duplicate entries for key [name=\"a\"]");
    assert!(err.causes().is_empty());
    assert!(owners.is_empty());
}
