//! Helpers for reading the fake API server's answers (`kube_proto_fake`) in `fake_likeness.rs`.
//! (The behaviour tests, which drive the fake and a real cluster alike, are in the integration
//! package: `tests/tests/behaviour.rs`.)

use serde_json::Value;

/// The body as JSON, or as a JSON string when it is not JSON (a plain-text 404, say), or `Null`
/// when empty.
pub fn body_json(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// The JSON at a `/`-separated pointer, as a string (empty when absent).
fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The `(reason, field)` of each cause of a `Status` body.
pub fn causes(status: &Value) -> Vec<(String, String)> {
    status["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (str_at(c, "/reason").to_owned(), str_at(c, "/field").to_owned()))
        .collect()
}
