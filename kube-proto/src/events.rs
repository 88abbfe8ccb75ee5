//! Kubernetes Events (`events.k8s.io/v1`) as a controller records them: the pure part of an
//! event recorder. [`EventRecorder::record`] turns "this happened to that object" into the
//! request to send, or into nothing:
//! - the first occurrence creates an Event; an identical one within [`SERIES_WINDOW`] updates
//!   that Event's `series` (count and `lastObservedTime`) instead of creating another, as
//!   client-go's events recorder does;
//! - each object has a token bucket (bursts of [`BURST`], then one event every
//!   [`REFILL`]), as client-go's spam filter has it: a controller stuck in a loop cannot flood
//!   the API server; what is dropped is counted.
//!
//! It reads no clock: `now` is an argument, and the event names come from it.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use k8s_openapi::api::core::v1::ObjectReference;
//! use kube_proto::events::{EventInput, EventRecorder, EventType, EventWrite, Reporter};
//!
//! let mut recorder = EventRecorder::new(Reporter::new("example.com/cm-gen", "cm-gen-0"));
//! let regarding = ObjectReference {
//!     api_version: Some("v1".into()), kind: Some("ConfigMap".into()),
//!     name: Some("cfg".into()), namespace: Some("apps".into()), uid: Some("u-1".into()),
//!     ..ObjectReference::default()
//! };
//! let input = EventInput::new(EventType::Normal, "Generated", "Reconcile").note("wrote 3 keys");
//! let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
//! let Some(EventWrite::Create(request)) = recorder.record(t0, &regarding, &input) else { panic!() };
//! assert_eq!(request.uri(), "/apis/events.k8s.io/v1/namespaces/apps/events");
//! let again = recorder.record(t0 + Duration::from_secs(10), &regarding, &input);
//! assert!(matches!(again, Some(EventWrite::Series { count: 2, .. })));
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use crate::params::{Patch, PatchParams, PostParams};
use crate::request::Request;
use crate::resource::Resource;

/// Identical events within this long of the last one are one series.
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Events an object may have at once before its rate applies.
pub const BURST: u32 = 25;
/// How often an object gets one more event once its burst is spent.
pub const REFILL: Duration = Duration::from_secs(5 * 60);

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something may need attention.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Who reports: `reportingController` (such as `example.com/my-operator`) and
/// `reportingInstance` (such as the pod's name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reporter {
    /// `reportingController`.
    pub controller: String,
    /// `reportingInstance`.
    pub instance: String,
}

impl Reporter {
    /// A reporter.
    pub fn new(controller: &str, instance: &str) -> Self {
        Reporter { controller: controller.to_owned(), instance: instance.to_owned() }
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub struct EventInput {
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// `reason`: why, in CamelCase (`Created`, `FailedSync`).
    pub reason: String,
    /// `action`: what the controller did or failed to do (`Reconcile`, `Delete`).
    pub action: String,
    /// `note`: for people (at most 1 KiB is kept, as the API allows).
    pub note: Option<String>,
    /// `related`: a second object involved, if any.
    pub related: Option<ObjectReference>,
}

impl EventInput {
    /// An event of `type_` with `reason` and `action`.
    pub fn new(type_: EventType, reason: &str, action: &str) -> Self {
        EventInput { type_, reason: reason.to_owned(), action: action.to_owned(), note: None, related: None }
    }

    /// Sets the note.
    #[must_use]
    pub fn note(mut self, note: &str) -> Self {
        self.note = Some(note.to_owned());
        self
    }

    /// Sets the related object.
    #[must_use]
    pub fn related(mut self, related: ObjectReference) -> Self {
        self.related = Some(related);
        self
    }
}

/// What to send for an event.
#[derive(Debug)]
pub enum EventWrite {
    /// Create this Event.
    Create(http::Request<Vec<u8>>),
    /// Update the series of the Event `name` (a merge patch): it happened `count` times.
    Series {
        /// The Event's name.
        name: String,
        /// How often it happened.
        count: i32,
        /// The patch request.
        request: http::Request<Vec<u8>>,
    },
}

/// The identity of an event: the same object, reason, action, type, note and related object.
type Key = (String, String, String, String, EventType, Option<String>, Option<String>);

#[derive(Debug)]
struct Series {
    name: String,
    namespace: String,
    count: i32,
    last: SystemTime,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: SystemTime,
}

/// The recorder's state. See the [module documentation](self).
#[derive(Debug)]
pub struct EventRecorder {
    reporter: Reporter,
    series: BTreeMap<Key, Series>,
    buckets: BTreeMap<String, Bucket>,
    dropped: u64,
}

impl EventRecorder {
    /// A recorder reporting as `reporter`.
    pub fn new(reporter: Reporter) -> Self {
        EventRecorder { reporter, series: BTreeMap::new(), buckets: BTreeMap::new(), dropped: 0 }
    }

    /// The Event `name` of a series is gone (its patch answered 404: it expired or was
    /// deleted): the next occurrence creates a new one.
    pub fn series_lost(&mut self, name: &str) {
        self.series.retain(|_, s| s.name != name);
    }

    /// Events dropped by the rate limit so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The request to send for `input` about `regarding` at `now`, or `None` when the object's
    /// rate limit drops it (or it cannot be addressed: a regarding object without a name).
    pub fn record(&mut self, now: SystemTime, regarding: &ObjectReference, input: &EventInput) -> Option<EventWrite> {
        let name = regarding.name.as_deref().filter(|n| !n.is_empty())?;
        let object = object_key(regarding);
        self.forget_finished(now);
        if !self.take_token(now, &object) {
            self.dropped += 1;
            return None;
        }
        let key: Key = (
            object,
            input.reason.clone(),
            input.action.clone(),
            input.note.clone().unwrap_or_default(),
            input.type_,
            input.related.as_ref().map(object_key),
            Some(self.reporter.controller.clone()),
        );
        if let Some(series) = self.series.get_mut(&key) {
            series.count += 1;
            series.last = now;
            let body = json!({"series": EventSeries { count: series.count, last_observed_time: micro_time(now) }});
            let request = Request::namespaced::<Event>(&series.namespace)
                .patch(&series.name, &PatchParams::default(), &Patch::Merge(body))
                .ok()?;
            return Some(EventWrite::Series { name: series.name.clone(), count: series.count, request });
        }
        // Events live in the regarding object's namespace; cluster-scoped objects' in `default`.
        let namespace = regarding.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
        let event_name = format!("{name}.{:x}", nanos(now));
        let note = input.note.as_ref().map(|n| truncate(n, 1024));
        let event = Event {
            metadata: ObjectMeta {
                name: Some(event_name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            action: Some(input.action.clone()),
            event_time: Some(micro_time(now)),
            note,
            reason: Some(input.reason.clone()),
            regarding: Some(regarding.clone()),
            related: input.related.clone(),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(self.reporter.instance.clone()),
            type_: Some(input.type_.as_str().to_owned()),
            ..Event::default()
        };
        let request = Request::namespaced::<Event>(&namespace).create(&PostParams::default(), &event).ok()?;
        self.series.insert(key, Series { name: event_name, namespace, count: 1, last: now });
        Some(EventWrite::Create(request))
    }

    /// Series that saw nothing for [`SERIES_WINDOW`] are over: the next identical event starts
    /// a new Event. Buckets that are full again are forgotten, so memory follows activity.
    fn forget_finished(&mut self, now: SystemTime) {
        let ago = |t: SystemTime| now.duration_since(t).unwrap_or_default();
        self.series.retain(|_, s| ago(s.last) < SERIES_WINDOW);
        let full = REFILL * BURST;
        self.buckets.retain(|_, b| ago(b.at) < full);
    }

    fn take_token(&mut self, now: SystemTime, object: &str) -> bool {
        let bucket = self.buckets.entry(object.to_owned()).or_insert(Bucket { tokens: f64::from(BURST), at: now });
        let elapsed = now.duration_since(bucket.at).unwrap_or_default();
        bucket.tokens = (bucket.tokens + elapsed.as_secs_f64() / REFILL.as_secs_f64()).min(f64::from(BURST));
        bucket.at = bucket.at.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A reference to `object` for an Event's `regarding` or `related` (`dt` is `&()` for
/// compiled-in kinds).
pub fn object_reference<K: Resource>(object: &K, dt: &K::DynamicType) -> ObjectReference {
    let meta = object.meta();
    ObjectReference {
        api_version: Some(K::api_version(dt).into_owned()),
        kind: Some(K::kind(dt).into_owned()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..ObjectReference::default()
    }
}

fn object_key(r: &ObjectReference) -> String {
    format!(
        "{}/{}/{}/{}/{}",
        r.api_version.as_deref().unwrap_or_default(),
        r.kind.as_deref().unwrap_or_default(),
        r.namespace.as_deref().unwrap_or_default(),
        r.name.as_deref().unwrap_or_default(),
        r.uid.as_deref().unwrap_or_default()
    )
}

fn nanos(now: SystemTime) -> u128 {
    now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

fn micro_time(now: SystemTime) -> MicroTime {
    let micros = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_micros());
    let ts = i64::try_from(micros).ok().and_then(|m| Timestamp::from_microsecond(m).ok());
    MicroTime(ts.unwrap_or(Timestamp::UNIX_EPOCH))
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}
