//! The queue of posted events and the future that sends them ([`EventSender`]).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::SystemTime;

use futures_util::future::{BoxFuture, FutureExt};
use k8s_openapi::api::core::v1::ObjectReference;

use super::{EventInput, Publisher};

/// How many events a sender writes in one poll before it yields to its executor.
const SENDS_PER_POLL: usize = 32;

/// An event posted and not yet sent.
struct Posted {
    at: SystemTime,
    event: EventInput,
    regarding: ObjectReference,
}

#[derive(Default)]
struct State {
    events: VecDeque<Posted>,
    /// Senders waiting for an event.
    waiting: Vec<Waker>,
    /// Every recorder is gone: no more posts.
    closed: bool,
}

/// The bounded queue shared by a recorder's clones and its senders.
pub(super) struct Queue {
    state: Mutex<State>,
    capacity: usize,
    dropped: AtomicU64,
}

impl Queue {
    pub(super) fn new(capacity: usize) -> Self {
        Queue { state: Mutex::default(), capacity: capacity.max(1), dropped: AtomicU64::new(0) }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues an event unless the queue is full (then counts it as dropped).
    pub(super) fn push(&self, at: SystemTime, event: EventInput, regarding: ObjectReference) -> bool {
        let mut state = self.lock();
        if state.events.len() >= self.capacity {
            drop(state);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        state.events.push_back(Posted { at, event, regarding });
        let waiting = std::mem::take(&mut state.waiting);
        drop(state);
        for w in waiting {
            w.wake();
        }
        true
    }

    pub(super) fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        let waiting = std::mem::take(&mut state.waiting);
        drop(state);
        for w in waiting {
            w.wake();
        }
    }
}

/// Held by every clone of a recorder: when the last one goes, the queue closes.
pub(super) struct Closer(pub(super) Arc<Queue>);

impl Drop for Closer {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Sends the events posted to a recorder ([`Recorder::post`](super::Recorder::post)), one at a
/// time, in order; made by [`Recorder::sender`](super::Recorder::sender). A future to spawn or
/// to drive as part of another (the controller's run stream does): it does nothing unless
/// polled, and completes once every clone of its recorder is dropped and the queue is sent.
#[must_use = "a sender sends nothing unless it is polled"]
pub struct EventSender {
    queue: Arc<Queue>,
    publisher: Publisher,
    /// The event being sent.
    sending: Option<BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for EventSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSender")
            .field("queued", &self.queue.len())
            .field("sending", &self.sending.is_some())
            .finish_non_exhaustive()
    }
}

impl EventSender {
    pub(super) fn new(queue: Arc<Queue>, publisher: Publisher) -> Self {
        EventSender { queue, publisher, sending: None }
    }

    /// Whether it has nothing to do: no event being sent, none queued.
    pub fn is_idle(&self) -> bool {
        self.sending.is_none() && self.queue.len() == 0
    }
}

impl Future for EventSender {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        for _ in 0..SENDS_PER_POLL {
            if let Some(sending) = &mut this.sending {
                if sending.poll_unpin(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sending = None;
            }
            let mut state = this.queue.lock();
            let Some(posted) = state.events.pop_front() else {
                if state.closed {
                    return Poll::Ready(());
                }
                if !state.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    state.waiting.push(cx.waker().clone());
                }
                return Poll::Pending;
            };
            drop(state);
            let publisher = this.publisher.clone();
            this.sending = Some(
                async move {
                    publisher.publish(posted.at, &posted.event, &posted.regarding).await;
                }
                .boxed(),
            );
        }
        // Bounded work per wake-up: let the executor run others, and come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
