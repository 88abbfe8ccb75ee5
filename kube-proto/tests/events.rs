//! The event recorder's rules: a first occurrence creates an `events.k8s.io/v1` Event, repeats
//! within six minutes update its series, each object is rate-limited (bursts of 25, then one
//! per five minutes), and nothing needs a clock or a connection.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::ObjectReference;
use kube_proto::events::{BURST, EventInput, EventRecorder, EventType, EventWrite, REFILL, Reporter, SERIES_WINDOW};
use serde_json::Value;

fn t(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn cm(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: Some(name.into()),
        namespace: Some("apps".into()),
        uid: Some(format!("uid-{name}")),
        ..ObjectReference::default()
    }
}

fn recorder() -> EventRecorder {
    EventRecorder::new(Reporter::new("kit.example.com/gen", "gen-0"))
}

fn body(w: &EventWrite) -> Value {
    let r = match w {
        EventWrite::Create(r) | EventWrite::Series { request: r, .. } => r,
    };
    serde_json::from_slice(r.body()).unwrap()
}

#[test]
fn the_first_occurrence_creates_an_event_with_the_reporter_and_the_object() {
    let mut r = recorder();
    let input = EventInput::new(EventType::Warning, "FailedSync", "Reconcile").note("the bucket is gone");
    let w = r.record(t(0), &cm("cfg"), &input).unwrap();
    let EventWrite::Create(req) = &w else { panic!("{w:?}") };
    assert_eq!(req.method(), "POST");
    assert_eq!(req.uri(), "/apis/events.k8s.io/v1/namespaces/apps/events");
    let b = body(&w);
    assert_eq!(b["kind"], "Event");
    assert_eq!(b["apiVersion"], "events.k8s.io/v1");
    assert_eq!(b["type"], "Warning");
    assert_eq!((b["reason"].as_str(), b["action"].as_str()), (Some("FailedSync"), Some("Reconcile")));
    assert_eq!(b["reportingController"], "kit.example.com/gen");
    assert_eq!(b["reportingInstance"], "gen-0");
    assert_eq!(b["regarding"]["uid"], "uid-cfg");
    assert_eq!(b["eventTime"], "2027-01-15T08:00:00.000000Z");
    assert!(b["metadata"]["name"].as_str().unwrap().starts_with("cfg."));
}

#[test]
fn repeats_within_six_minutes_update_the_series_and_later_ones_start_anew() {
    let mut r = recorder();
    let input = EventInput::new(EventType::Normal, "Generated", "Reconcile");
    let EventWrite::Create(first) = r.record(t(0), &cm("cfg"), &input).unwrap() else { panic!() };
    let name: Value = serde_json::from_slice(first.body()).unwrap();
    let name = name["metadata"]["name"].as_str().unwrap().to_owned();
    for (i, at) in [10, 200, 500].into_iter().enumerate() {
        let w = r.record(t(at), &cm("cfg"), &input).unwrap();
        let EventWrite::Series { name: n, count, request } = &w else { panic!("{w:?}") };
        assert_eq!((n, *count), (&name, i as i32 + 2));
        assert_eq!(request.method(), "PATCH");
        assert_eq!(request.uri().path(), format!("/apis/events.k8s.io/v1/namespaces/apps/events/{name}"));
        assert_eq!(body(&w)["series"]["count"], i + 2);
    }
    // A different note, reason or object is another event.
    assert!(matches!(r.record(t(501), &cm("cfg"), &input.clone().note("other")), Some(EventWrite::Create(_))));
    assert!(matches!(r.record(t(501), &cm("other"), &input), Some(EventWrite::Create(_))));
    // Quiet for the window: the series is over.
    let later = 500 + SERIES_WINDOW.as_secs();
    assert!(matches!(r.record(t(later), &cm("cfg"), &input), Some(EventWrite::Create(_))));
}

#[test]
fn an_object_gets_a_burst_of_25_then_one_event_per_five_minutes() {
    let mut r = recorder();
    let mut sent = 0;
    for i in 0..40 {
        let input = EventInput::new(EventType::Warning, &format!("Reason{i}"), "Reconcile");
        sent += usize::from(r.record(t(0), &cm("cfg"), &input).is_some());
    }
    assert_eq!(sent, BURST as usize);
    assert_eq!(r.dropped(), 15);
    // Another object has its own bucket.
    assert!(r.record(t(0), &cm("other"), &EventInput::new(EventType::Normal, "Fine", "Reconcile")).is_some());
    let input = EventInput::new(EventType::Warning, "Later", "Reconcile");
    assert!(r.record(t(REFILL.as_secs() - 1), &cm("cfg"), &input).is_none());
    assert!(r.record(t(REFILL.as_secs()), &cm("cfg"), &input).is_some());
}

#[test]
fn an_object_without_a_name_gives_nothing_and_a_cluster_scoped_one_goes_to_default() {
    let mut r = recorder();
    let input = EventInput::new(EventType::Normal, "X", "Y");
    assert!(r.record(t(0), &ObjectReference::default(), &input).is_none());
    let node = ObjectReference { kind: Some("Node".into()), name: Some("n1".into()), ..ObjectReference::default() };
    let EventWrite::Create(req) = r.record(t(0), &node, &input).unwrap() else { panic!() };
    assert_eq!(req.uri(), "/apis/events.k8s.io/v1/namespaces/default/events");
    let long = "é".repeat(2000);
    let b = body(&r.record(t(1), &cm("cfg"), &input.note(&long)).unwrap());
    assert!(b["note"].as_str().unwrap().len() <= 1024);
}
