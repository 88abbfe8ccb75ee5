//! Publishing Kubernetes Events from a controller: the core's [`EventRecorder`] decides what to
//! send (a new Event, a series update, or nothing past the object's rate limit); the
//! [`Recorder`] sends it. Publishing never fails the caller: an event that cannot be written is
//! logged at debug level, with one request and no retry, and missing permission to write events
//! (403) is said once per recorder and its clones, as one warning naming the permission needed
//! and quoting the server's refusal (which names the user), not an error per event.
//!
//! Two ways to publish:
//! - [`Recorder::publish`] sends the event and returns what became of it: it waits for the
//!   server's answer (one request, two if a series' Event expired meanwhile);
//! - [`Recorder::post`] returns at once, never waiting for the network, which is what a reconcile
//!   wants: the event goes into the recorder's bounded queue (see [`Recorder::post`] for what
//!   happens when it is full) and an [`EventSender`] sends the queued events, one at a time, in
//!   order. Nothing is spawned behind your back: give the sender to the controller
//!   ([`Controller::publish_events`](crate::controller::Controller::publish_events), which
//!   drives it inside its run stream), or spawn [`Recorder::sender`] on your executor.
//!
//! ```no_run
//! # async fn demo(client: kube_runtime::Client, cm: k8s_openapi::api::core::v1::ConfigMap) {
//! use kube_runtime::events::{EventInput, EventType, Recorder, Reporter, object_reference};
//!
//! let recorder = Recorder::new(client, Reporter::new("example.com/cm-gen", "cm-gen-0"));
//! let event = EventInput::new(EventType::Normal, "Generated", "Reconcile").note("wrote 3 keys");
//! recorder.publish(&event, &object_reference(&cm, &())).await;
//!
//! // From a reconcile: queue it and go on; the sender (driven elsewhere) writes it.
//! let sender = recorder.sender();
//! recorder.post(&event, &object_reference(&cm, &()));
//! sender.await; // ends once every clone of the recorder is gone and the queue is sent
//! # }
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use k8s_openapi::api::core::v1::ObjectReference;
pub use kube_proto::events::{EventInput, EventRecorder, EventType, EventWrite, Reporter, object_reference};

use crate::Client;

mod queue;
pub use queue::EventSender;
use queue::{Closer, Queue};

/// How many posted events wait at most to be sent, unless
/// [`Recorder::with_queue_capacity`] says otherwise.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;

/// Sends Events for a controller. Cheap to clone; clones share the series, the rate limits and
/// the queue of posted events.
#[derive(Clone)]
pub struct Recorder {
    publisher: Publisher,
    queue: Arc<Queue>,
    /// Closes the queue when the last clone is dropped, so that the senders end.
    _closer: Arc<Closer>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("queued", &self.queue.len()).finish_non_exhaustive()
    }
}

/// What writes events: shared by the recorder's clones and its senders.
#[derive(Clone)]
struct Publisher {
    client: Client,
    state: Arc<Mutex<EventRecorder>>,
    /// Whether the missing-permission warning has been given.
    warned: Arc<AtomicBool>,
}

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Published {
    /// A new Event was created.
    Created,
    /// An existing Event's series was updated.
    Series,
    /// Dropped by the object's rate limit (or the object has no name).
    Dropped,
    /// The write failed (logged).
    Failed,
}

impl Recorder {
    /// A recorder reporting as `reporter`, queueing up to [`DEFAULT_QUEUE_CAPACITY`] posted
    /// events.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self::with_queue_capacity(client, reporter, DEFAULT_QUEUE_CAPACITY)
    }

    /// A recorder reporting as `reporter`, queueing up to `capacity` posted events (at least 1).
    pub fn with_queue_capacity(client: Client, reporter: Reporter, capacity: usize) -> Self {
        let queue = Arc::new(Queue::new(capacity));
        Recorder {
            publisher: Publisher {
                client,
                state: Arc::new(Mutex::new(EventRecorder::new(reporter))),
                warned: Arc::new(AtomicBool::new(false)),
            },
            _closer: Arc::new(Closer(queue.clone())),
            queue,
        }
    }

    /// Publishes `event` about `regarding`, and waits for the server's answer. Never fails: a
    /// write that fails is logged (a 403 as one warning about the missing permission, then
    /// quietly) and reported as [`Published::Failed`]. An event past the object's rate limit
    /// sends nothing.
    pub async fn publish(&self, event: &EventInput, regarding: &ObjectReference) -> Published {
        let now = self.publisher.client.transport().wall_clock();
        self.publisher.publish(now, event, regarding).await
    }

    /// Queues `event` about `regarding` to be published by a [sender](Self::sender), and
    /// returns at once: it never waits for the network, so a reconcile can post freely. The
    /// event is stamped with the time of the post.
    ///
    /// The queue holds at most the recorder's capacity ([`DEFAULT_QUEUE_CAPACITY`], or
    /// [`with_queue_capacity`](Self::with_queue_capacity)'s). When it is full (nothing drives a
    /// sender, or the server is slower than the events come) the new event is dropped: logged
    /// at debug level, counted in [`posts_dropped`](Self::posts_dropped), and `false` is
    /// returned. Events are informative; a controller must not stall or grow without bound for
    /// them. Returns `true` when the event was queued.
    pub fn post(&self, event: &EventInput, regarding: &ObjectReference) -> bool {
        let now = self.publisher.client.transport().wall_clock();
        let queued = self.queue.push(now, event.clone(), regarding.clone());
        if !queued {
            tracing::debug!(
                reason = %event.reason,
                object = regarding.name.as_deref().unwrap_or_default(),
                "the queue of events to send is full: event dropped"
            );
        }
        queued
    }

    /// The events [`post`](Self::post) dropped because the queue was full, so far.
    pub fn posts_dropped(&self) -> u64 {
        self.queue.dropped()
    }

    /// A future that sends the posted events, one at a time, in the order they were posted,
    /// through [`publish`](Self::publish)'s path (series, rate limits, the one warning). Spawn
    /// it on your executor, or give the recorder to
    /// [`Controller::publish_events`](crate::controller::Controller::publish_events). It ends
    /// once every clone of the recorder is dropped and the queue is sent. Several senders may
    /// share a queue; each event is sent by one of them.
    pub fn sender(&self) -> EventSender {
        EventSender::new(self.queue.clone(), self.publisher.clone())
    }
}

impl Publisher {
    /// Sends `event`, which happened at `now`.
    async fn publish(&self, now: SystemTime, event: &EventInput, regarding: &ObjectReference) -> Published {
        for _ in 0..2 {
            let write = self.state.lock().unwrap_or_else(PoisonError::into_inner).record(now, regarding, event);
            let (request, series, outcome) = match write {
                None => return Published::Dropped,
                Some(EventWrite::Create(r)) => (r, None, Published::Created),
                Some(EventWrite::Series { name, request, .. }) => (request, Some(name), Published::Series),
            };
            match self.client.request_bytes(request).await {
                Ok((status, _, _)) if status.is_success() => return outcome,
                Ok((status, _, _)) if status.as_u16() == 404 && series.is_some() => {
                    // The Event expired meanwhile: start a new one.
                    let name = series.unwrap_or_default();
                    self.state.lock().unwrap_or_else(PoisonError::into_inner).series_lost(&name);
                }
                Ok((status, _, body)) => {
                    self.failed(status.as_u16(), &body, regarding);
                    return Published::Failed;
                }
                Err(e) => {
                    self.failed(0, e.to_string().as_bytes(), regarding);
                    return Published::Failed;
                }
            }
        }
        Published::Failed
    }

    fn failed(&self, status: u16, body: &[u8], regarding: &ObjectReference) {
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let message = status_message(body);
        if status == 403 && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                namespace,
                server = %message,
                "cannot write Events: this controller's service account needs create and patch on \
                 events.k8s.io/events (later refusals are logged at debug level only)"
            );
        }
        tracing::debug!(status, namespace, message, "an event could not be written");
    }
}

/// The message of a `Status` body (the server's own words, which name the user and the
/// permission of a 403), or the start of a body that is not one; at most 200 characters.
fn status_message(body: &[u8]) -> String {
    let parsed = serde_json::from_slice::<serde_json::Value>(body).ok();
    let message = match parsed.as_ref().and_then(|v| v.get("message")).and_then(|m| m.as_str()) {
        Some(m) => m.to_owned(),
        None => String::from_utf8_lossy(body).into_owned(),
    };
    message.chars().take(200).collect()
}
