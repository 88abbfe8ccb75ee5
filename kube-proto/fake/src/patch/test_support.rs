//! Helpers shared by the patch modules' tests: the recorded exchanges and managed fields.

use serde_json::Value;

use super::{FieldOwners, Operation};

/// Parses JSON text of a recorded exchange.
pub(super) fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

/// A recorded exchange of kube-proto's `tests/fixtures/apiserver-v1.36`, by name.
macro_rules! fixture {
    ($name:literal) => {
        $crate::patch::test_support::parse(include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/apiserver-v1.36/",
            $name,
            ".json"
        )))
    };
}
pub(super) use fixture;

/// A fixture's request body: JSON bodies are stored as values, others as text.
pub(super) fn body(fx: &Value) -> Value {
    match &fx["request"]["body"] {
        Value::String(text) => parse(text),
        v => v.clone(),
    }
}

/// No list has a merge key: every list is atomic.
pub(super) fn no_keys(_: &str) -> Option<&'static str> {
    None
}

/// The `fieldsV1` of `manager`'s entry with `op`, or `null`.
pub(super) fn fields_of(owners: &FieldOwners, manager: &str, op: Operation) -> Value {
    owners.entry(manager, op).map(|e| e.fields.to_fields_v1()).unwrap_or(Value::Null)
}

/// The fieldsV1 of a fixture object's managedFields entry.
pub(super) fn fixture_fields(obj: &Value, manager: &str, op: &str, subresource: Option<&str>) -> Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["manager"] == manager && e["operation"] == op && e["subresource"].as_str() == subresource)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}
