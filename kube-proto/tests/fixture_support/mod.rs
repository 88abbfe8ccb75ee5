//! Loading the recorded kube-apiserver v1.36 exchanges in `tests/fixtures/apiserver-v1.36`
//! (the format is described in that directory's README.md). Shared by `fixtures_requests.rs`
//! and `fixtures_responses.rs`; each uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::panic::{self, AssertUnwindSafe};

use serde_json::Value;

/// Where the fixtures live.
pub const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apiserver-v1.36");

/// The names (file stems) of every fixture, sorted.
pub fn names() -> BTreeSet<String> {
    std::fs::read_dir(DIR)
        .expect("the fixtures directory")
        .map(|e| e.expect("a directory entry").file_name().into_string().expect("a UTF-8 file name"))
        .filter_map(|f| f.strip_suffix(".json").map(str::to_owned))
        .collect()
}

/// One recorded exchange.
pub struct Fixture {
    /// The file stem, such as `get-configmap`.
    pub name: String,
    /// The whole file.
    pub json: Value,
}

impl Fixture {
    /// Loads `DIR/{name}.json`.
    #[allow(clippy::disallowed_methods)] // reading the fixtures is the point of these tests
    pub fn load(name: &str) -> Fixture {
        let path = format!("{DIR}/{name}.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        Fixture { name: name.to_owned(), json }
    }

    /// `request`.
    pub fn request(&self) -> &Value {
        &self.json["request"]
    }

    /// `response`.
    pub fn response(&self) -> &Value {
        &self.json["response"]
    }

    /// `request.method`.
    pub fn method(&self) -> &str {
        self.request()["method"].as_str().expect("request.method")
    }

    /// `request.path_and_query`, exactly as sent.
    pub fn path_and_query(&self) -> &str {
        self.request()["path_and_query"].as_str().expect("request.path_and_query")
    }

    /// A request header (names are lower case in the fixtures).
    pub fn request_header(&self, name: &str) -> Option<&str> {
        self.request()["headers"][name].as_str()
    }

    /// `response.status`.
    pub fn status(&self) -> u16 {
        self.response()["status"].as_u64().expect("response.status") as u16
    }

    /// The response headers as an `http::HeaderMap`.
    pub fn response_headers(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        if let Some(h) = self.response()["headers"].as_object() {
            for (k, v) in h {
                let name = http::HeaderName::from_bytes(k.as_bytes()).expect("a header name");
                map.insert(name, v.as_str().expect("a string header value").parse().expect("a header value"));
            }
        }
        map
    }

    /// The response body as it went over the wire: JSON bodies re-serialised with serde_json,
    /// text bodies as they are. Watch streams have no `body` (see [`Fixture::body_lines`]).
    pub fn response_body(&self) -> Vec<u8> {
        match &self.response()["body"] {
            Value::String(s) => s.clone().into_bytes(),
            Value::Null => Vec::new(),
            v => serde_json::to_vec(v).expect("a JSON body re-serialises"),
        }
    }

    /// `response.body` as parsed JSON (`Null` for text and streams).
    pub fn response_json(&self) -> &Value {
        match &self.response()["body"] {
            Value::String(_) => &Value::Null,
            v => v,
        }
    }

    /// `response.body_lines` of a watch: one JSON value per event.
    pub fn body_lines(&self) -> Option<&[Value]> {
        self.response().get("body_lines").and_then(Value::as_array).map(Vec::as_slice)
    }
}

/// Runs `check` and returns its panic message, if it panicked.
pub fn run_check(check: impl FnOnce()) -> Result<(), String> {
    panic::catch_unwind(AssertUnwindSafe(check)).map_err(|payload| {
        if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else if let Some(s) = payload.downcast_ref::<&str>() {
            (*s).to_owned()
        } else {
            "panicked".to_owned()
        }
    })
}

/// JSON equality in which numbers are compared by value (`0` equals `0.0`), as JSON itself
/// does not tell them apart.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_eq(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}
