//! Publishing Kubernetes Events from a controller: the core's [`EventRecorder`] decides what to
//! send (a new Event, a series update, or nothing past the object's rate limit); the
//! [`Recorder`] sends it. Publishing never fails the caller: an event that cannot be written is
//! logged at debug level, with one request and no retry, and missing permission to write events
//! (403) is said once per recorder and its clones, as one warning naming the permission needed
//! and quoting the server's refusal (which names the user), not an error per event.
//!
//! ```no_run
//! # async fn demo(client: kube_runtime::Client, cm: k8s_openapi::api::core::v1::ConfigMap) {
//! use kube_runtime::events::{EventInput, EventType, Recorder, Reporter, object_reference};
//!
//! let recorder = Recorder::new(client, Reporter::new("example.com/cm-gen", "cm-gen-0"));
//! let event = EventInput::new(EventType::Normal, "Generated", "Reconcile").note("wrote 3 keys");
//! recorder.publish(&event, &object_reference(&cm, &())).await;
//! # }
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::ObjectReference;
pub use kube_proto::events::{EventInput, EventRecorder, EventType, EventWrite, Reporter, object_reference};

use crate::Client;

/// Sends Events for a controller. Cheap to clone; clones share the series and rate limits.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    state: Arc<Mutex<EventRecorder>>,
    /// Whether the missing-permission warning has been given.
    warned: Arc<AtomicBool>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").finish_non_exhaustive()
    }
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
    /// A recorder reporting as `reporter`.
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Recorder {
            client,
            state: Arc::new(Mutex::new(EventRecorder::new(reporter))),
            warned: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Publishes `event` about `regarding`. Never fails: a write that fails is logged (a 403 as
    /// one warning about the missing permission, then quietly) and reported as
    /// [`Published::Failed`]. An event past the object's rate limit sends nothing.
    pub async fn publish(&self, event: &EventInput, regarding: &ObjectReference) -> Published {
        for _ in 0..2 {
            let now = self.client.transport().wall_clock();
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
