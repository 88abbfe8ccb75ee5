//! An error response whose body is not a `Status` (a proxy's text or HTML page, JSON of another
//! shape) still has a reason, from its HTTP status, as client-go's `NewGenericServerResponse`
//! gives it; and `Retry-After` is carried into every kind of error.

use http::{HeaderMap, StatusCode};
use k8s_openapi::api::core::v1::ConfigMap;
use kube_proto::{Reason, Response, ResponseError};

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, v.parse().unwrap());
    }
    h
}

fn error(status: u16, h: &HeaderMap, body: &[u8]) -> ResponseError {
    Response::new(StatusCode::from_u16(status).unwrap(), h, body).object::<ConfigMap>().unwrap_err()
}

#[test]
fn a_409_with_a_text_or_foreign_json_body_is_a_conflict() {
    let h = headers(&[("content-type", "text/plain")]);
    let e = error(409, &h, b"conflict: try again\n");
    assert!(matches!(e, ResponseError::NotJson { status: 409, .. }), "{e:?}");
    assert!(e.is_conflict());
    assert_eq!(e.reason(), Some(&Reason::Conflict));
    let e = error(409, &HeaderMap::new(), br#"{"error":"conflict"}"#);
    assert!(matches!(e, ResponseError::UnexpectedBody { status: 409, .. }), "{e:?}");
    assert!(e.is_conflict());
    // A Status's own reason wins: AlreadyExists is not a Conflict.
    let e = error(409, &HeaderMap::new(), br#"{"kind":"Status","code":409,"reason":"AlreadyExists"}"#);
    assert_eq!(e.reason(), Some(&Reason::AlreadyExists));
    assert!(!e.is_conflict());
}

#[test]
fn a_429_with_retry_after_and_a_text_body_reports_both() {
    let h = headers(&[("content-type", "text/plain"), ("retry-after", "7")]);
    let e = error(429, &h, b"Too many requests, please try again later.\n");
    assert_eq!(e.retry_after(), Some(7));
    assert_eq!(e.reason(), Some(&Reason::TooManyRequests));
    // An empty body and a JSON body that is not a Status too.
    assert_eq!(error(429, &h, b"").retry_after(), Some(7));
    let e = error(429, &h, br#"{"message":"slow down"}"#);
    assert_eq!((e.retry_after(), e.reason()), (Some(7), Some(&Reason::TooManyRequests)));
}

#[test]
fn retry_after_is_carried_by_every_error_variant() {
    let h = headers(&[("retry-after", " 12 ")]);
    let not_json = error(503, &h, b"<html>maintenance</html>");
    let unexpected = error(503, &h, b"[1,2]");
    let decode = Response::new(StatusCode::OK, &h, br#"{"metadata":{"name":7}}"#).object::<ConfigMap>().unwrap_err();
    let api = error(503, &h, br#"{"kind":"Status","code":503,"reason":"ServiceUnavailable"}"#);
    assert!(matches!(not_json, ResponseError::NotJson { retry_after: Some(12), .. }), "{not_json:?}");
    assert!(matches!(unexpected, ResponseError::UnexpectedBody { retry_after: Some(12), .. }), "{unexpected:?}");
    assert!(matches!(decode, ResponseError::Decode { retry_after: Some(12), .. }), "{decode:?}");
    for e in [&not_json, &unexpected, &decode, &api] {
        assert_eq!(e.retry_after(), Some(12), "{e:?}");
    }
    // No header, no delay.
    assert_eq!(error(503, &HeaderMap::new(), b"down").retry_after(), None);
    // A 2xx that did not decode has no reason.
    assert_eq!(decode.reason(), None);
}

#[test]
fn the_reason_of_a_body_without_one_comes_from_the_http_status() {
    let table = [
        (400, Some(Reason::BadRequest)),
        (401, Some(Reason::Unauthorized)),
        (403, Some(Reason::Forbidden)),
        (404, Some(Reason::NotFound)),
        (405, Some(Reason::MethodNotAllowed)),
        (406, Some(Reason::NotAcceptable)),
        (409, Some(Reason::Conflict)),
        (410, Some(Reason::Gone)),
        (413, Some(Reason::RequestEntityTooLarge)),
        (415, Some(Reason::UnsupportedMediaType)),
        (422, Some(Reason::Invalid)),
        (429, Some(Reason::TooManyRequests)),
        (500, Some(Reason::InternalError)),
        (501, Some(Reason::InternalError)),
        (502, Some(Reason::InternalError)),
        (503, Some(Reason::ServiceUnavailable)),
        (504, Some(Reason::Timeout)),
        (599, Some(Reason::InternalError)),
        (402, None),
        (418, None),
        (451, None),
        (302, None),
    ];
    for (code, want) in table {
        assert_eq!(Reason::from_http_status(code), want, "{code}");
        let e = error(code, &HeaderMap::new(), b"plain text");
        assert_eq!(e.reason(), want.as_ref(), "{code}");
        let e = error(code, &HeaderMap::new(), br#"{"not":"a status"}"#);
        assert_eq!(e.reason(), want.as_ref(), "{code}");
    }
    assert!(error(410, &HeaderMap::new(), b"gone").is_gone());
    assert!(error(404, &HeaderMap::new(), b"404 page not found").is_not_found());
}

#[test]
fn a_status_with_an_empty_reason_keeps_it_as_client_go_does() {
    // A kubelet dial failure proxied by the API server: a Status without a reason.
    let e = error(
        500,
        &HeaderMap::new(),
        br#"{"kind":"Status","status":"Failure","code":500,"message":"dial tcp: refused"}"#,
    );
    assert_eq!(e.reason(), Some(&Reason::Unknown(String::new())));
}

#[test]
fn retry_after_as_an_http_date_is_not_read() {
    // Turning a date into a delay needs the wall clock, which the core does not read.
    let h = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]);
    let e = error(429, &h, b"slow down");
    assert_eq!((e.retry_after(), e.reason()), (None, Some(&Reason::TooManyRequests)));
    assert_eq!(kube_proto::response::retry_after(&h), None);
    assert_eq!(kube_proto::response::retry_after(&headers(&[("retry-after", "-3")])), None);
    assert_eq!(kube_proto::response::retry_after(&headers(&[("retry-after", "0")])), Some(0));
}
