//! Fuzzing response parsing (`Response`: object, list, delete, text, error, warnings) with
//! recorded response bodies, mutated, under random HTTP statuses and headers. For every input:
//!
//! - nothing panics;
//! - every `ResponseError` names the HTTP status (`http_status()` and its message);
//! - a non-2xx status is an error whatever the body;
//! - an error body that is a JSON object with `kind: Status` is read as that `Status`: its
//!   `reason`, `message` and `code` are kept whenever they have the right type;
//! - `Retry-After` in whole seconds is kept on every error;
//! - the snippet of a body that is not a `Status` stays short;
//! - with the `protobuf` feature, a 2xx protobuf body (the corpus has recorded ones) reads as
//!   an object and as a list exactly as the serde path alone reads it: the generated decoders
//!   give serde's values, and fall back to it for anything they do not read.
//!
//! `FUZZ_ITERATIONS`, `FUZZ_SEED` and `FUZZ_REPLAY`: see `tests/fuzz/mod.rs` and `fuzz/README.md`.

mod fuzz;

use fuzz::{Fuzzer, SplitMix64};
use http::{HeaderMap, HeaderValue, StatusCode};
use k8s_openapi::api::core::v1::ConfigMap;
use kube_proto::{ObjectList, Reason, Response, ResponseError};
use serde_json::Value;

const STATUSES: &[u16] =
    &[200, 201, 202, 204, 302, 400, 401, 403, 404, 405, 409, 410, 415, 422, 429, 500, 503, 504, 418];

/// Checks what every error must say, and returns its kind.
fn check_error(e: &ResponseError, status: u16, retry_after: Option<u32>, body: &[u8]) -> String {
    assert_eq!(e.http_status(), status, "{e:?}");
    let shown = e.to_string();
    assert!(shown.contains(&format!("HTTP {status}")), "the error does not name HTTP {status}: {shown}");
    if retry_after.is_some() {
        assert_eq!(e.retry_after(), retry_after, "Retry-After: {e:?}");
    }
    match e {
        ResponseError::NotJson { snippet, len, .. } | ResponseError::UnexpectedBody { snippet, len, .. } => {
            assert_eq!(*len, body.len());
            // 256 bytes of body, each invalid byte at most a 3-byte replacement character.
            assert!(snippet.len() <= 3 * 256, "a snippet of {} bytes", snippet.len());
            assert!(shown.len() < 8 * 1024, "an error message of {} bytes", shown.len());
        }
        ResponseError::Decode { message, .. } => assert!(!message.is_empty()),
        _ => {}
    }
    match e {
        ResponseError::Api(a) => format!("Api({})", a.status.reason),
        ResponseError::NotJson { .. } => "NotJson".into(),
        ResponseError::Decode { message, .. } => {
            let category = message.split([':', '`', '"', '(']).next().unwrap_or("");
            format!("Decode({})", category.replace(|c: char| c.is_ascii_digit(), "").trim())
        }
        ResponseError::UnexpectedBody { .. } => "UnexpectedBody".into(),
        _ => "other".into(),
    }
}

/// The body as a JSON object with `kind: Status`, when it is one.
fn as_status(body: &[u8]) -> Option<serde_json::Map<String, Value>> {
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::Object(m) if m.get("kind").and_then(Value::as_str) == Some("Status") => Some(m),
        _ => None,
    }
}

fn check(body: &[u8], rng: &mut SplitMix64) -> String {
    let status = if rng.chance(0.9) { *rng.pick(STATUSES).unwrap() } else { 100 + rng.below(500) as u16 };
    let code = StatusCode::from_u16(status).unwrap();
    let mut headers = HeaderMap::new();
    if rng.chance(0.7) {
        let ct =
            *rng.pick(&["application/json", "text/plain; charset=utf-8", "text/html", "application/yaml"]).unwrap();
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    let mut retry_after = None;
    if rng.chance(0.3) {
        let seconds = rng.below(100_000) as u32;
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
        retry_after = Some(seconds);
    } else if rng.chance(0.1) {
        let odd = *rng.pick(&["-1", "1.5", "Wed, 21 Oct 2015 07:28:00 GMT", "99999999999", ""]).unwrap();
        headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static(odd));
    }
    if rng.chance(0.2) {
        let w = *rng.pick(&[r#"299 - "unknown field \"spec.x\"""#, "299 - \"cut", "garbage", r#"299 - "a\\"#]).unwrap();
        headers.append(http::header::WARNING, HeaderValue::from_static(w));
    }
    let response = Response::new(code, &headers, body);
    let results = [
        response.object::<ConfigMap>().err(),
        response.object::<Value>().err(),
        response.list::<ConfigMap>().err(),
        response.delete::<ConfigMap>().err(),
        response.delete::<ObjectList<ConfigMap>>().err(),
        response.text().err(),
        Some(response.error()),
    ];
    let _ = response.warnings();
    let mut kinds = Vec::new();
    for e in results.iter().flatten() {
        kinds.push(check_error(e, status, retry_after, body));
    }
    if !code.is_success() {
        assert!(results.iter().all(Option::is_some), "HTTP {status} read as a success");
        let e = response.error();
        if let Some(m) = as_status(body) {
            let s = e.api_status().unwrap_or_else(|| panic!("a kind: Status body not read as a Status: {e:?}"));
            if let Some(reason) = m.get("reason").and_then(Value::as_str) {
                assert_eq!(s.reason, Reason::parse(reason), "the reason was lost");
                assert_eq!(e.reason(), Some(&s.reason));
            }
            if let Some(message) = m.get("message").and_then(Value::as_str) {
                assert_eq!(s.message, message, "the message was lost");
                assert!(e.to_string().contains(message), "the message is not shown: {e}");
            }
            if let Some(n) = m.get("code").and_then(Value::as_i64).and_then(|n| i32::try_from(n).ok()) {
                assert_eq!(s.code, n, "the code was lost");
            }
        }
    } else if let Some(m) = as_status(body) {
        // A 2xx Status answering a DELETE is the Status, not an object.
        let _ = m;
        if let Ok(d) = response.delete::<ConfigMap>() {
            assert!(d.is_status(), "a 2xx kind: Status body read as an object");
        }
    }
    #[cfg(feature = "protobuf")]
    if code.is_success() && kube_proto::protobuf::has_magic(body) {
        same_as_serde(body, response.object::<ConfigMap>(), "object");
        same_as_serde(body, response.list::<ConfigMap>(), "list");
    }
    kinds.sort();
    kinds.dedup();
    format!("{}:{}", code.as_str().chars().next().unwrap(), kinds.join(","))
}

/// What `Response` read from a protobuf body against the serde path alone on the same body.
#[cfg(feature = "protobuf")]
fn same_as_serde<T>(body: &[u8], read: Result<T, ResponseError>, what: &str)
where
    T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let serde = kube_proto::protobuf::Envelope::parse(body).and_then(|e| e.decode::<T>());
    match (read, serde) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}: not serde's value"),
        (Err(_), Err(_)) => {}
        (a, b) => panic!("{what}: read {a:?}, serde {b:?}"),
    }
}

#[test]
fn responses_never_panic_and_errors_name_the_status_and_keep_the_reason() {
    let summary = Fuzzer::new("response")
        .tokens(&[
            br#""kind":"Status","#,
            br#""reason":"NotFound","#,
            br#""message":"m","#,
            br#""code":404,"#,
            br#""code":"500","#,
            br#""details":{"retryAfterSeconds":-1},"#,
            br#""causes":"x","#,
            br#""items":null"#,
            b"<html>",
            // Protobuf: the magic, the list's items field (2) and its metadata (1), ConfigMap's kind.
            b"k8s\0",
            b"\x12\x00",
            b"\x0a\x02\x10\x01",
            b"ConfigMap",
        ])
        .default_iterations(10000)
        .run(check);
    assert!(summary.tried > 0);
}

#[test]
fn the_oracle_sees_a_lost_reason() {
    // A Status whose reason is readable: the check holds for it, and would not if the reason
    // were dropped.
    let body = br#"{"kind":"Status","status":"Failure","reason":"Conflict","message":"m","code":409}"#;
    let mut rng = SplitMix64::new(1);
    for _ in 0..20 {
        check(body, &mut rng);
    }
    let headers = HeaderMap::new();
    let e = Response::new(StatusCode::CONFLICT, &headers, body).error();
    assert_eq!(e.reason(), Some(&Reason::Conflict));
    assert_ne!(Reason::parse("Conflict"), Reason::default());
}
