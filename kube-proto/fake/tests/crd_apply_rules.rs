//! Server-side apply of a custom resource follows its CRD's structural schema, as on the real
//! server: `x-kubernetes-list-type: set`/`map` lists merge item by item between managers,
//! untyped lists are atomic, and an `x-kubernetes-map-type: atomic` struct is one field.
#![allow(clippy::disallowed_methods)] // a test needs one origin instant; the code under test takes it as an argument

use std::time::{Duration, Instant};

use kube_proto_fake::{FakeApiServer, FakeConfig, Reply};
use serde_json::{Value, json};

struct Fake {
    server: FakeApiServer,
    now: Instant,
}

const GADGETS: &str = "/apis/example.com/v1/namespaces/default/gadgets";

impl Fake {
    fn new() -> Fake {
        let now = Instant::now();
        let mut f = Fake { server: FakeApiServer::new(FakeConfig::default(), now), now };
        let crd = json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "gadgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
                     "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                         "type": "object", "properties": {"spec": {"type": "object", "properties": {
                             "selector": {"type": "object", "x-kubernetes-map-type": "atomic", "properties": {
                                 "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}}},
                             "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                             "args": {"type": "array", "items": {"type": "string"}},
                             "ports": {"type": "array", "x-kubernetes-list-type": "map",
                                       "x-kubernetes-list-map-keys": ["port"],
                                       "items": {"type": "object", "required": ["port"], "properties": {
                                           "port": {"type": "integer"}, "name": {"type": "string"}}}}
                         }}}}}}]}
        });
        let (code, body) =
            f.call("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", "application/json", crd);
        assert_eq!(code, 201, "{body}");
        f
    }

    fn call(&mut self, method: &str, path: &str, content_type: &str, body: Value) -> (u16, Value) {
        self.now += Duration::from_millis(5);
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .body(serde_json::to_vec(&body).expect("JSON"))
            .expect("a request");
        let Reply::Response(resp) = self.server.handle(self.now, &req) else { panic!("not a plain response") };
        (resp.status().as_u16(), serde_json::from_slice(resp.body()).unwrap_or(Value::Null))
    }

    /// Applies a Gadget `g`'s spec as `manager`.
    fn apply(&mut self, manager: &str, spec: Value) -> (u16, Value) {
        let body = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": spec});
        self.call("PATCH", &format!("{GADGETS}/g?fieldManager={manager}"), "application/apply-patch+yaml", body)
    }
}

fn owned(obj: &Value, manager: &str, operation: &str) -> Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["manager"] == manager && e["operation"] == operation)
        .map_or(Value::Null, |e| e["fieldsV1"].clone())
}

#[test]
fn custom_resources_merge_by_their_schema() {
    let mut f = Fake::new();
    let (code, obj) = f.apply(
        "a",
        json!({"selector": {"matchLabels": {"app": "g"}}, "tags": ["x"], "args": ["--a"], "ports": [{"port": 80}]}),
    );
    assert_eq!(code, 201, "{obj}");
    assert_eq!(
        owned(&obj, "a", "Apply"),
        json!({"f:spec": {
            "f:args": {},
            "f:ports": {"k:{\"port\":80}": {".": {}, "f:port": {}}},
            "f:selector": {},
            "f:tags": {"v:\"x\"": {}}
        }})
    );

    // b's tag and port join a's; its args replace a's atomic list, which conflicts.
    let (code, status) = f.apply("b", json!({"tags": ["y"], "ports": [{"port": 443}], "args": ["--b"]}));
    assert_eq!(code, 409, "{status}");
    assert_eq!(status["message"], "Apply failed with 1 conflict: conflict with \"a\": .spec.args");
    let (code, obj) = f.apply("b", json!({"tags": ["y"], "ports": [{"port": 443}]}));
    assert_eq!(code, 200, "{obj}");
    assert_eq!(obj["spec"]["tags"], json!(["x", "y"]));
    assert_eq!(obj["spec"]["ports"], json!([{"port": 80}, {"port": 443}]));

    // The atomic selector is one field: b's wider one conflicts with a's as a whole.
    let (code, status) = f.apply("b", json!({"selector": {"matchLabels": {"app": "g", "tier": "t"}}}));
    assert_eq!(code, 409, "{status}");
    assert_eq!(status["message"], "Apply failed with 1 conflict: conflict with \"a\": .spec.selector");

    // A merge patch's manager owns the selector whole too.
    let (code, obj) = f.call(
        "PATCH",
        &format!("{GADGETS}/g?fieldManager=edit"),
        "application/merge-patch+json",
        json!({"spec": {"selector": {"matchLabels": {"zone": "z"}}}}),
    );
    assert_eq!(code, 200, "{obj}");
    assert_eq!(owned(&obj, "edit", "Update"), json!({"f:spec": {"f:selector": {}}}));
    assert!(owned(&obj, "a", "Apply")["f:spec"].get("f:selector").is_none());
}
