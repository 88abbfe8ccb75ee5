//! The lease elector's rules, one exchange at a time: where expiry is counted from, a late
//! answer, a conflict on renewal.

#![allow(clippy::disallowed_methods)] // one origin `Instant::now()` per test; all later time is made up

use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, StatusCode};
use kube_proto::lease::{Action, Elector, LeaseConfig, LeaseEvent, LostReason, RequestId};

fn lease_body(rv: &str, holder: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l", "namespace": "ns", "resourceVersion": rv},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}
    }))
    .unwrap()
}

fn send(e: &mut Elector, now: Instant) -> (RequestId, http::Request<Vec<u8>>) {
    loop {
        match e.poll(now, SystemTime::UNIX_EPOCH) {
            Action::Send(id, req) => return (id, req),
            Action::Wait { .. } | Action::Stopped => panic!("no request"),
            _ => {}
        }
    }
}

/// An elector that read a free Lease at `t0` and sent its takeover: the takeover's request id.
fn taking_a_free_lease(t0: Instant) -> (Elector, RequestId) {
    let mut e = Elector::new(LeaseConfig::new("ns", "l", "me")).unwrap();
    let (id, _) = send(&mut e, t0);
    e.on_response(t0, id, StatusCode::OK, &HeaderMap::new(), &lease_body("1", None));
    let (id, put) = send(&mut e, t0);
    assert_eq!(put.method(), "PUT");
    (e, id)
}

#[test]
fn expiry_counts_from_the_local_observation_of_a_change() {
    let t0 = Instant::now();
    let mut e = Elector::new(LeaseConfig::new("ns", "l", "me")).unwrap();
    let (id, _) = send(&mut e, t0);
    e.on_response(t0, id, StatusCode::OK, &HeaderMap::new(), &lease_body("1", Some("other")));
    assert!(!e.is_free(t0 + Duration::from_secs(14)));
    // The same version read again later does not move the observation instant...
    let t1 = t0 + Duration::from_secs(10);
    let (id, req) = send(&mut e, t1);
    assert_eq!(req.method(), "GET");
    e.on_response(t1, id, StatusCode::OK, &HeaderMap::new(), &lease_body("1", Some("other")));
    assert!(e.is_free(t0 + Duration::from_secs(15)));
    // ...a new one does.
    let t2 = t0 + Duration::from_secs(12);
    let (id, _) = send(&mut e, t2);
    e.on_response(t2, id, StatusCode::OK, &HeaderMap::new(), &lease_body("2", Some("other")));
    assert!(!e.is_free(t0 + Duration::from_secs(15)));
    assert!(e.is_free(t2 + Duration::from_secs(15)));
    // At expiry, the takeover is a PUT conditional on the version read.
    let (_, put) = send(&mut e, t2 + Duration::from_secs(15));
    assert_eq!(put.method(), "PUT");
    let body: serde_json::Value = serde_json::from_slice(put.body()).unwrap();
    assert_eq!(body["metadata"]["resourceVersion"], "2");
    assert_eq!(body["spec"]["holderIdentity"], "me");
    assert_eq!(body["spec"]["leaseTransitions"], 1);
}

#[test]
fn a_late_answer_does_not_extend_leadership() {
    let t0 = Instant::now();
    let (mut e, id) = taking_a_free_lease(t0);
    // The takeover landed, but its answer came after the renew deadline counted from its send.
    let late = t0 + Duration::from_secs(11);
    e.on_response(late, id, StatusCode::OK, &HeaderMap::new(), &lease_body("2", Some("me")));
    assert!(!e.is_leading(late));
    // The Lease names it, so it renews at once, and leads from that renewal.
    let (id, renew) = send(&mut e, late);
    assert_eq!(renew.method(), "PUT");
    e.on_response(late, id, StatusCode::OK, &HeaderMap::new(), &lease_body("3", Some("me")));
    assert_eq!(e.leading_until(), Some(late + Duration::from_secs(10)));
}

#[test]
fn a_conflict_on_renewal_reads_and_keeps_leading_only_if_still_named() {
    let t0 = Instant::now();
    let (mut e, id) = taking_a_free_lease(t0);
    e.on_response(t0, id, StatusCode::OK, &HeaderMap::new(), &lease_body("2", Some("me")));
    assert!(e.is_leading(t0));
    let t1 = t0 + Duration::from_secs(2);
    let (id, renew) = send(&mut e, t1);
    assert_eq!(renew.method(), "PUT");
    let conflict = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Conflict","code":409}"#;
    e.on_response(t1, id, StatusCode::CONFLICT, &HeaderMap::new(), conflict);
    assert!(e.is_leading(t1), "a conflict alone does not end leadership");
    let (id, get) = send(&mut e, t1);
    assert_eq!(get.method(), "GET");
    e.on_response(t1, id, StatusCode::OK, &HeaderMap::new(), &lease_body("3", Some("thief")));
    assert!(!e.is_leading(t1));
    let events: Vec<_> = std::iter::from_fn(|| match e.poll(t1, SystemTime::UNIX_EPOCH) {
        Action::Emit(ev) => Some(ev),
        _ => None,
    })
    .collect();
    assert!(events.contains(&LeaseEvent::Lost(LostReason::Taken(Some("thief".into())))), "{events:?}");
}
