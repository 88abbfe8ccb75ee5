//! The fake API server holds custom resources to their CRD's structural schema as the real
//! kube-apiserver v1.36 does: the recorded exchanges `crd-widget-create-invalid`,
//! `crd-widget-create-unknown-field` and `crd-widget-create-unknown-field-strict` replayed and
//! compared in full (status, message, causes with their messages, the `Warning` header, the
//! stored spec), then pruning, defaulting and validation cases the recordings do not cover.

mod fixture_support;

use std::time::Instant;

use fixture_support::Fixture;
use kube_proto_fake::{FakeApiServer, FakeConfig, Reply};
use serde_json::{Value, json};

struct Fake {
    server: FakeApiServer,
    now: Instant,
}

impl Fake {
    #[allow(clippy::disallowed_methods)] // one origin instant; all later time is simulated
    fn new() -> Fake {
        let now = Instant::now();
        let mut f = Fake { server: FakeApiServer::new(FakeConfig::default(), now), now };
        f.call(
            "POST",
            "/api/v1/namespaces",
            "application/json",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fixtures"}}),
        );
        f
    }

    /// The fake with the Widget CRD the fixtures were recorded against.
    fn widgets() -> Fake {
        let mut f = Fake::new();
        let crd = Fixture::load("crd-create").request()["body"].clone();
        let (code, _, body) =
            f.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "application/json", crd);
        assert_eq!(code, 201, "{body}");
        f
    }

    fn call(&mut self, method: &str, path: &str, content_type: &str, body: Value) -> (u16, Vec<String>, Value) {
        self.now += std::time::Duration::from_millis(5);
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .header("user-agent", "fixture-capture/1.0")
            .body(serde_json::to_vec(&body).unwrap())
            .unwrap();
        let Reply::Response(resp) = self.server.handle(self.now, &req) else { panic!("not a plain response") };
        let warnings = resp.headers().get_all("warning").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
        (resp.status().as_u16(), warnings, serde_json::from_slice(resp.body()).unwrap_or(Value::Null))
    }

    fn replay(&mut self, fx: &Fixture) -> (u16, Vec<String>, Value) {
        self.call(fx.method(), fx.path_and_query(), "application/json", fx.request()["body"].clone())
    }
}

#[test]
fn a_widget_breaking_its_schema_gets_the_real_422() {
    let fx = Fixture::load("crd-widget-create-invalid");
    let (code, _, body) = Fake::widgets().replay(&fx);
    assert_eq!(code, fx.status());
    // The whole Status: message, reason, details with every cause's reason, field and message.
    // The real server finds the schema's causes walking a Go map, in no set order: the causes
    // (and the message's list of them) are compared in name order.
    assert_eq!(in_order(body), in_order(fx.response()["body"].clone()));
}

/// A `Status` whose message lists its causes in their order, with the causes sorted and the
/// message cut to what comes before the list.
fn in_order(mut status: Value) -> Value {
    let message = status["message"].as_str().unwrap().to_owned();
    let causes = status["details"]["causes"].as_array_mut().unwrap();
    let listed: Vec<String> = causes
        .iter()
        .map(|c| format!("{}: {}", c["field"].as_str().unwrap(), c["message"].as_str().unwrap()))
        .collect();
    let head =
        message.strip_suffix(&format!(": [{}]", listed.join(", "))).expect("the message lists the causes in order");
    causes.sort_by_key(|c| c.to_string());
    status["message"] = json!(head);
    status
}

#[test]
fn an_unknown_field_is_pruned_with_the_real_warning() {
    let fx = Fixture::load("crd-widget-create-unknown-field");
    let (code, warnings, body) = Fake::widgets().replay(&fx);
    assert_eq!(code, 201);
    let want = fx.response_headers();
    let want: Vec<&str> = want.get_all("warning").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(warnings, want);
    assert_eq!(body["spec"], fx.response()["body"]["spec"]);
    // The stored object's managed fields own only what is left.
    assert_eq!(
        body["metadata"]["managedFields"][0]["fieldsV1"],
        fx.response()["body"]["metadata"]["managedFields"][0]["fieldsV1"]
    );
}

#[test]
fn an_unknown_field_under_strict_validation_gets_the_real_400() {
    let fx = Fixture::load("crd-widget-create-unknown-field-strict");
    let (code, warnings, body) = Fake::widgets().replay(&fx);
    assert_eq!(code, 400);
    assert!(warnings.is_empty());
    assert_eq!(body, fx.response()["body"]);
}

fn gizmo_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.schema.example.com"},
        "spec": {"group": "schema.example.com", "scope": "Namespaced",
                 "names": {"kind": "Gizmo", "plural": "gizmos"},
                 "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                   "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                     "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer", "maximum": 10.0},
                        "mode": {"type": "string", "default": "fast", "enum": ["fast", "slow"]},
                        "name": {"type": "string", "nullable": true, "maxLength": 5},
                        "port": {"x-kubernetes-int-or-string": true},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                 "properties": {"n": {"type": "integer"}}},
                        "any": {"x-kubernetes-preserve-unknown-fields": true},
                        "parts": {"type": "array", "items": {"type": "object", "properties": {
                            "id": {"type": "string"}, "weight": {"type": "integer", "default": 1}}}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "nested": {"type": "object", "properties": {"on": {"type": "boolean", "default": true}}}
                     }},
                     "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
                   }}}}]}
    })
}

fn gizmos() -> Fake {
    let mut f = Fake::new();
    let (code, _, body) =
        f.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "application/json", gizmo_crd());
    assert_eq!(code, 201, "{body}");
    f
}

const GIZMOS: &str = "/apis/schema.example.com/v1/namespaces/fixtures/gizmos";

#[test]
fn pruning_keeps_what_preserve_unknown_fields_keeps_and_defaults_fill_in() {
    let mut f = gizmos();
    let (code, warnings, body) = f.call(
        "POST",
        GIZMOS,
        "application/json",
        json!({
            "apiVersion": "schema.example.com/v1", "kind": "Gizmo", "metadata": {"name": "g1"},
            "spec": {"size": 3, "port": "http", "junk": 1,
                     "free": {"n": 1, "kept": {"deep": true}}, "any": {"whatever": [1, 2]},
                     "parts": [{"id": "a", "extra": 0}, {"id": "b", "weight": 7}],
                     "labels": {"a": "b"}, "nested": {}},
            "topLevel": "x",
        }),
    );
    assert_eq!(code, 201, "{body}");
    assert_eq!(
        warnings,
        [
            "299 - \"unknown field \\\"spec.junk\\\"\"",
            "299 - \"unknown field \\\"spec.parts[0].extra\\\"\"",
            "299 - \"unknown field \\\"topLevel\\\"\""
        ]
    );
    assert_eq!(
        body["spec"],
        json!({"size": 3, "mode": "fast", "port": "http",
               "free": {"n": 1, "kept": {"deep": true}}, "any": {"whatever": [1, 2]},
               "parts": [{"id": "a", "weight": 1}, {"id": "b", "weight": 7}],
               "labels": {"a": "b"}, "nested": {"on": true}})
    );
    assert!(body.get("topLevel").is_none());
    // As stored, and as a GET reads it.
    let (_, _, got) = f.call("GET", &format!("{GIZMOS}/g1"), "application/json", Value::Null);
    assert_eq!(got["spec"], body["spec"]);
}

#[test]
fn ignore_prunes_without_a_warning() {
    let mut f = gizmos();
    let (code, warnings, body) = f.call("POST", &format!("{GIZMOS}?fieldValidation=Ignore"), "application/json", json!({
        "apiVersion": "schema.example.com/v1", "kind": "Gizmo", "metadata": {"name": "g1"}, "spec": {"size": 1, "junk": 1}}));
    assert_eq!((code, warnings.len()), (201, 0));
    assert!(body["spec"].get("junk").is_none());
}

#[test]
fn updates_and_status_writes_are_held_to_the_schema_too() {
    let mut f = gizmos();
    f.call(
        "POST",
        GIZMOS,
        "application/json",
        json!({
        "apiVersion": "schema.example.com/v1", "kind": "Gizmo", "metadata": {"name": "g1"}, "spec": {"size": 1}}),
    );
    // A merge patch that adds an unknown field and breaks a maximum: 422 with the cause.
    let (code, _, body) =
        f.call("PATCH", &format!("{GIZMOS}/g1"), "application/merge-patch+json", json!({"spec": {"size": 11}}));
    assert_eq!(code, 422, "{body}");
    assert_eq!(
        body["details"]["causes"],
        json!([{"reason": "FieldValueInvalid", "field": "spec.size", "message": "Invalid value: 11: spec.size in body should be less than or equal to 10"}])
    );
    assert_eq!(
        body["message"],
        "Gizmo.schema.example.com \"g1\" is invalid: spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10"
    );
    // Setting the defaulted field to null (not nullable) brings the default back.
    let (code, _, body) = f.call(
        "PATCH",
        &format!("{GIZMOS}/g1"),
        "application/merge-patch+json",
        json!({"spec": {"mode": null, "name": null}}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["spec"]["mode"], "fast");
    // The status subresource: unknown status fields are pruned too.
    let (code, warnings, body) = f.call(
        "PATCH",
        &format!("{GIZMOS}/g1/status"),
        "application/merge-patch+json",
        json!({"status": {"ready": true, "other": 1}}),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], json!({"ready": true}));
    assert_eq!(warnings, ["299 - \"unknown field \\\"status.other\\\"\""]);
}

#[test]
fn wrong_types_enums_lengths_and_required_fields_get_a_cause_each() {
    let mut f = gizmos();
    let (code, _, body) = f.call("POST", GIZMOS, "application/json", json!({
        "apiVersion": "schema.example.com/v1", "kind": "Gizmo", "metadata": {"name": "g1"},
        "spec": {"mode": "warp", "name": "toolong", "port": true, "parts": [{"id": 5}], "labels": {"a": 1}, "nested": {"on": "yes"}}}));
    assert_eq!(code, 422, "{body}");
    let causes: Vec<(String, String, String)> = body["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["reason"].as_str().unwrap().into(),
                c["field"].as_str().unwrap().into(),
                c["message"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want = [
        ("FieldValueNotSupported", "spec.mode", "Unsupported value: \"warp\": supported values: \"fast\", \"slow\""),
        ("FieldValueTooLong", "spec.name", "Too long: may not be more than 5 bytes"),
        (
            "FieldValueTypeInvalid",
            "spec.port",
            "Invalid value: \"boolean\": spec.port in body must be of type integer,string: true",
        ),
        (
            "FieldValueTypeInvalid",
            "spec.parts[0].id",
            "Invalid value: \"integer\": spec.parts[0].id in body must be of type string: 5",
        ),
        (
            "FieldValueTypeInvalid",
            "spec.labels.a",
            "Invalid value: \"integer\": spec.labels.a in body must be of type string: 1",
        ),
        (
            "FieldValueTypeInvalid",
            "spec.nested.on",
            "Invalid value: \"string\": spec.nested.on in body must be of type boolean: \"yes\"",
        ),
        ("FieldValueRequired", "spec.size", "Required value"),
    ];
    let mut got = causes.clone();
    got.sort();
    let mut want: Vec<(String, String, String)> =
        want.iter().map(|(a, b, c)| ((*a).into(), (*b).into(), (*c).into())).collect();
    want.sort();
    assert_eq!(got, want);
    // Nothing was stored.
    let (code, _, _) = f.call("GET", &format!("{GIZMOS}/g1"), "application/json", Value::Null);
    assert_eq!(code, 404);
}
