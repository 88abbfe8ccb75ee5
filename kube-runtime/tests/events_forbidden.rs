//! A controller whose service account may not write Events: every publish fails at once with
//! one request (no retry loop), and the missing permission is said once, as one warning that
//! names it; later refusals are logged at debug level only.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::future::BoxFuture;
use k8s_openapi::api::core::v1::ObjectReference;
use kube_runtime::events::{EventInput, EventType, Published, Recorder, Reporter};
use kube_runtime::fake::FakeTransport;
use kube_runtime::fake::server::access::DenyRule;
use kube_runtime::{Client, Transport, TransportError, TransportResponse};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

const USER: &str = "system:serviceaccount:ops:configmapgen";

/// The fake, counting the requests for Events.
#[derive(Clone)]
struct Counting {
    inner: FakeTransport,
    events: Arc<AtomicUsize>,
}

impl Transport for Counting {
    fn send(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<TransportResponse, TransportError>> {
        if request.uri().path().starts_with("/apis/events.k8s.io/") {
            self.events.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.send(request)
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        self.inner.sleep_until(deadline)
    }
}

/// A tracing subscriber keeping the level and the fields of every event of kube-runtime.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<(Level, String)>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl Subscriber for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.target().starts_with("kube_runtime")
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        self.0.lock().unwrap().push((*event.metadata().level(), fields.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Capture {
    fn at(&self, level: Level) -> Vec<String> {
        self.0.lock().unwrap().iter().filter(|(l, _)| *l == level).map(|(_, f)| f.clone()).collect()
    }
}

fn regarding(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: Some(name.into()),
        namespace: Some("default".into()),
        uid: Some(format!("uid-{name}")),
        ..ObjectReference::default()
    }
}

/// A recorder against a fake that refuses `rule`, the Events requests counter and the logs.
fn recorder(rule: DenyRule) -> (Recorder, Arc<AtomicUsize>, Capture) {
    let (inner, config) = FakeTransport::new();
    inner.server().deny(rule);
    let events = Arc::new(AtomicUsize::new(0));
    let client = Client::new(Counting { inner, events: events.clone() }, config).unwrap();
    (Recorder::new(client, Reporter::new("example.com/configmapgen", "configmapgen-0")), events, Capture::default())
}

#[test]
fn without_rbac_for_events_every_publish_fails_once_and_one_warning_names_the_permission() {
    let (recorder, requests, logs) = recorder(DenyRule::new("events.k8s.io", "events").user(USER));
    let published = tracing::subscriber::with_default(logs.clone(), || {
        futures_executor::block_on(async {
            let mut published = Vec::new();
            // Different objects (no object's own rate limit drops any), some twice, from clones.
            for i in 0..60 {
                let event = EventInput::new(EventType::Warning, "Failed", "Reconcile").note(&format!("try {}", i % 3));
                published.push(recorder.clone().publish(&event, &regarding(&format!("cm-{}", i % 40))).await);
            }
            published
        })
    });
    assert!(published.iter().all(|p| *p == Published::Failed), "{published:?}");
    assert_eq!(requests.load(Ordering::SeqCst), 60, "one request per publish: no retries");
    let warnings = logs.at(Level::WARN);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    for words in [
        "events.k8s.io/events",
        "create",
        USER,
        r#"cannot create resource "events" in API group "events.k8s.io" in the namespace "default""#,
    ] {
        assert!(warnings[0].contains(words), "the warning should say {words:?}: {}", warnings[0]);
    }
    let refusals = logs.at(Level::DEBUG).into_iter().filter(|f| f.contains("an event could not be written")).count();
    assert_eq!(refusals, 60, "each refusal at debug level");
}

#[test]
fn a_refused_series_update_is_said_once_too() {
    // Creating is allowed, updating a series is not.
    let (recorder, requests, logs) = recorder(DenyRule::new("events.k8s.io", "events").verbs(&["patch"]).user(USER));
    let published = tracing::subscriber::with_default(logs.clone(), || {
        futures_executor::block_on(async {
            let event = EventInput::new(EventType::Normal, "Synced", "Reconcile");
            let mut published = Vec::new();
            for _ in 0..5 {
                published.push(recorder.publish(&event, &regarding("cm")).await);
            }
            published
        })
    });
    assert_eq!(
        published,
        [Published::Created, Published::Failed, Published::Failed, Published::Failed, Published::Failed]
    );
    assert_eq!(requests.load(Ordering::SeqCst), 5);
    let warnings = logs.at(Level::WARN);
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(warnings[0].contains("cannot patch resource"), "{}", warnings[0]);
}
