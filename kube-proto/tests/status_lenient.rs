//! A `Status` is read field by field: a field of the wrong type is dropped, the rest kept, so
//! that the reason and message of an error survive a proxy, webhook or aggregated API server
//! that writes a sloppy `Status`. `code` is an `int32`, as in the API.

use http::{HeaderMap, StatusCode};
use k8s_openapi::api::core::v1::ConfigMap;
use kube_proto::watch::parse_line;
use kube_proto::{Reason, Response, ResponseError, Status, WatchEvent};
use serde_json::json;

fn error(status: u16, body: &serde_json::Value) -> ResponseError {
    let body = serde_json::to_vec(body).unwrap();
    Response::new(StatusCode::from_u16(status).unwrap(), &HeaderMap::new(), &body).object::<ConfigMap>().unwrap_err()
}

fn api_status(e: &ResponseError) -> &Status {
    e.api_status().unwrap_or_else(|| panic!("not read as a Status: {e:?}"))
}

#[test]
fn a_status_code_outside_u16_is_kept_with_reason_and_message() {
    for code in [70000, -1, i32::MAX, i32::MIN] {
        let e = error(
            500,
            &json!({"kind": "Status", "status": "Failure", "code": code, "reason": "InternalError", "message": "boom"}),
        );
        let s = api_status(&e);
        assert_eq!((s.code, &s.reason, s.message.as_str()), (code, &Reason::InternalError, "boom"));
        assert_eq!(e.http_status(), 500);
    }
    // A code beyond int32 is unreadable: dropped, the rest kept.
    let e = error(500, &json!({"kind": "Status", "code": 5_000_000_000_i64, "reason": "Conflict", "message": "m"}));
    let s = api_status(&e);
    assert_eq!((s.code, &s.reason, s.message.as_str()), (0, &Reason::Conflict, "m"));
}

#[test]
fn a_wrong_typed_code_is_dropped_and_the_reason_and_message_kept() {
    for code in [json!("500"), json!(500.5), json!(null), json!([500]), json!({"v": 500})] {
        let e = error(
            409,
            &json!({"kind": "Status", "status": "Failure", "code": code, "reason": "Conflict", "message": "stale"}),
        );
        let s = api_status(&e);
        assert_eq!(
            (s.code, &s.reason, s.message.as_str(), s.status.as_str()),
            (0, &Reason::Conflict, "stale", "Failure")
        );
        assert!(e.is_conflict(), "{code}");
    }
}

#[test]
fn causes_given_as_a_string_are_dropped_and_the_details_kept() {
    let e = error(
        422,
        &json!({"kind": "Status", "code": 422, "reason": "Invalid", "message": "bad",
                "details": {"name": "x", "kind": "configmaps", "causes": "metadata.name is wrong"}}),
    );
    let s = api_status(&e);
    assert_eq!((s.code, &s.reason, s.message.as_str()), (422, &Reason::Invalid, "bad"));
    let d = s.details.as_ref().expect("details");
    assert_eq!((d.name.as_str(), d.kind.as_str(), d.causes.len()), ("x", "configmaps", 0));
}

#[test]
fn a_cause_that_is_not_an_object_is_skipped_and_a_wrong_typed_cause_field_dropped() {
    let e = error(
        422,
        &json!({"kind": "Status", "code": 422, "reason": "Invalid", "message": "bad",
                "details": {"causes": ["loose text", {"reason": "FieldValueInvalid", "field": 7, "message": "m"}, 3]}}),
    );
    let causes = api_status(&e).causes();
    assert_eq!(causes.len(), 1);
    assert_eq!(
        (causes[0].reason.as_str(), causes[0].field.as_str(), causes[0].message.as_str()),
        ("FieldValueInvalid", "", "m")
    );
}

#[test]
fn a_negative_or_wrong_typed_retry_after_seconds_is_dropped() {
    for bad in [json!(-5), json!("5"), json!(1.5), json!(5_000_000_000_i64)] {
        let e = error(
            429,
            &json!({"kind": "Status", "code": 429, "reason": "TooManyRequests", "message": "slow down",
                    "details": {"name": "p", "retryAfterSeconds": bad}}),
        );
        let s = api_status(&e);
        assert_eq!((&s.reason, s.message.as_str()), (&Reason::TooManyRequests, "slow down"));
        let d = s.details.as_ref().expect("details");
        assert_eq!((d.name.as_str(), d.retry_after_seconds), ("p", None), "{bad}");
        assert_eq!(e.retry_after(), None, "{bad}");
    }
    let e = error(429, &json!({"kind": "Status", "code": 429, "details": {"retryAfterSeconds": 4}}));
    assert_eq!(e.retry_after(), Some(4));
}

#[test]
fn wrong_typed_strings_and_metadata_are_dropped() {
    let e = error(
        410,
        &json!({"kind": "Status", "status": 1, "code": 410, "reason": ["Expired"], "message": {"m": 1},
                "metadata": {"continue": 9, "resourceVersion": "12"}, "details": "gone"}),
    );
    let s = api_status(&e);
    assert_eq!(s.status, "");
    assert_eq!(s.code, 410);
    assert_eq!(s.reason, Reason::default());
    assert_eq!(s.message, "");
    assert_eq!(s.details, None);
    assert_eq!((s.metadata.resource_version.as_deref(), s.metadata.continue_token.as_deref()), (Some("12"), None));
    assert!(e.is_gone());
}

#[test]
fn a_watch_error_event_with_a_sloppy_status_keeps_its_reason() {
    let line = br#"{"type":"ERROR","object":{"kind":"Status","code":"410","reason":"Expired","message":"too old","details":{"causes":"x"}}}"#;
    match parse_line::<ConfigMap>(line, 1) {
        Ok(WatchEvent::Error(s)) => {
            assert_eq!((s.code, &s.reason, s.message.as_str()), (0, &Reason::Expired, "too old"));
        }
        other => panic!("{other:?}"),
    }
    match parse_line::<ConfigMap>(br#"{"type":"ERROR","object":{"code":99999,"reason":"Gone"}}"#, 2) {
        Ok(WatchEvent::Error(s)) => assert_eq!((s.code, &s.reason), (99999, &Reason::Gone)),
        other => panic!("{other:?}"),
    }
    // A Status that is not an object at all is still a line that does not decode.
    let e = parse_line::<ConfigMap>(br#"{"type":"ERROR","object":"gone"}"#, 3).unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.message.contains("a JSON object"), "{}", e.message);
}

#[test]
fn a_status_written_by_this_client_reads_back_the_same() {
    let mut s = Status::failure(-7, Reason::Conflict, "m");
    s.details = Some(kube_proto::StatusDetails {
        name: "n".into(),
        causes: vec![kube_proto::StatusCause { reason: "r".into(), message: "c".into(), field: "f".into() }],
        retry_after_seconds: Some(3),
        ..Default::default()
    });
    s.metadata.continue_token = Some("tok".into());
    let back: Status = serde_json::from_slice(&serde_json::to_vec(&s).unwrap()).unwrap();
    assert_eq!(back, s);
    let v: Status = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
    assert_eq!(v, s);
}

#[test]
fn a_body_without_kind_status_is_still_not_a_status() {
    let e = error(500, &json!({"code": 500, "reason": "InternalError", "message": "m"}));
    assert!(matches!(e, ResponseError::UnexpectedBody { status: 500, .. }), "{e:?}");
    let e = error(500, &json!({"kind": 5, "code": 500}));
    assert!(matches!(e, ResponseError::UnexpectedBody { .. }), "{e:?}");
}
