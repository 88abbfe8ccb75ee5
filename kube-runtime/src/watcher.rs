//! The `watcher()` stream: drives the core's watcher state machine with a client, on any
//! executor. It lists, watches, resumes, relists on 410 and backs off by itself; errors are
//! items of the stream, and the stream goes on after them.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use futures_core::Stream;
use futures_util::future::{BoxFuture, Either, select};
use futures_util::stream::{self, StreamExt};
use kube_proto::Resource;
use kube_proto::watcher::{Action, RequestId, Watcher};
use serde::de::DeserializeOwned;

pub use kube_proto::watcher::{Backoff, Config, Event, InitialListStrategy, ListSemantic, WatcherError};

use crate::transport::{Body, TransportResponse};
use crate::{Api, Client, Error};

struct Driver<K> {
    machine: Watcher<K>,
    recycler: Option<Recycler<K>>,
    client: Client,
    in_flight: Option<(RequestId, InFlight)>,
    /// The timer of a deadline of the machine, kept from one wait to the next while it fires no
    /// later than the current deadline. A watch's deadline moves on with every chunk (the idle
    /// limit counts from the last one), and a timer made and cancelled per chunk costs a
    /// registration with the runtime's timers each time (on async-io, a wake-up of its reactor
    /// too). A timer that fires before the deadline has moved on only makes the machine name
    /// its new deadline, once per idle limit.
    timer: Option<(Instant, BoxFuture<'static, ()>)>,
}

/// The request the machine is waiting on: its response head, then its body.
enum InFlight {
    Sending(BoxFuture<'static, Result<TransportResponse, Error>>),
    Reading(Body),
}

/// Objects nobody holds any more, handed from a store back to a watcher, whose decoder then
/// decodes the next event's object over one instead of allocating it anew (see
/// [`kube_proto::direct_json::refill`]; JSON events of the built-in kinds). The events are
/// exactly what they would be without it.
///
/// Every [`watcher()`] whose events are decoded over objects has one
/// ([`WatcherStream::recycler`]), which [`reflector`](crate::reflector::reflector) hands to its
/// writer: the objects the store lets go of (held by nobody else) are put in it, and the watcher
/// takes them. Paired by hand, a [`Writer::recycler`](crate::reflector::Writer::recycler) goes to
/// [`watcher_with`]. It holds one object at a time. Cheap to clone: the clones share it.
pub struct Recycler<K> {
    spare: Arc<Mutex<Option<K>>>,
}

impl<K> Clone for Recycler<K> {
    fn clone(&self) -> Self {
        Recycler { spare: self.spare.clone() }
    }
}

impl<K> Default for Recycler<K> {
    fn default() -> Self {
        Recycler { spare: Arc::new(Mutex::new(None)) }
    }
}

impl<K> fmt::Debug for Recycler<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the object: it may be a Secret.
        f.debug_struct("Recycler").field("holding", &self.lock().is_some()).finish()
    }
}

impl<K> Recycler<K> {
    /// An empty recycler.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<K>> {
        // Only ever a swap of an `Option` under the lock: a poisoned one is still whole.
        self.spare.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `object` for the watcher's next event; an object kept before and not yet taken is
    /// dropped (outside the lock).
    pub fn put(&self, object: K) {
        let before = self.lock().replace(object);
        drop(before);
    }

    /// The object kept, if any.
    pub fn take(&self) -> Option<K> {
        self.lock().take()
    }
}

/// Watches the collection an `Api` addresses: a stream of [`Event`]s that never ends on its
/// own. See [`WatchStreamExt`] for `applied_objects()` and `touched_objects()`.
///
/// Handed straight to [`reflector`](crate::reflector::reflector), its decoder is paired with the
/// store's writer: each watch event is decoded over the object a previous event replaced in the
/// store (see [`WatcherStream::recycler`]).
pub fn watcher<K>(api: Api<K>, config: Config) -> WatcherStream<K>
where
    K: Resource + DeserializeOwned + Send + 'static,
    K::DynamicType: Clone,
{
    drive(api, config, None)
}

/// [`watcher()`], decoding each watch event's object over an object `recycler` holds when it
/// holds one: what a reflector does with the objects its events replace, so that a store that
/// keeps every object does not pay for freeing the one each event replaces and allocating its
/// successor. [`reflector`](crate::reflector::reflector) pairs a writer with a stream straight
/// from [`watcher()`] by itself; this is for a stream that goes through adaptors first.
///
/// Only JSON watch events of the built-in kinds are decoded over an object: for other kinds
/// (custom resources, `DynamicObject`, `PartialObjectMeta`) and over protobuf, the recycler is
/// never taken from, and holds the last object put in it.
///
/// ```
/// # #[cfg(feature = "fake")] {
/// use futures_util::StreamExt;
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_runtime::reflector::{self, reflector};
/// use kube_runtime::watcher::{self, watcher_with};
/// use kube_runtime::{Api, Client, fake::FakeTransport};
///
/// let (transport, config) = FakeTransport::new();
/// let pods: Api<Pod> = Api::all(Client::new(transport, config).unwrap());
/// let (reader, mut writer) = reflector::store();
/// let recycler = writer.recycler();
/// let events = watcher_with(pods, watcher::Config::default(), recycler).inspect(|e| println!("{e:?}"));
/// let rf = reflector(writer, events);
/// # drop((reader, rf));
/// # }
/// ```
pub fn watcher_with<K>(api: Api<K>, config: Config, recycler: Recycler<K>) -> WatcherStream<K>
where
    K: Resource + DeserializeOwned + Send + 'static,
    K::DynamicType: Clone,
{
    drive(api, config, Some(recycler))
}

/// The stream [`watcher()`] returns.
pub struct WatcherStream<K> {
    events: Pin<Box<dyn Stream<Item = Result<Event<K>, Error>> + Send>>,
    recycler: Option<Recycler<K>>,
}

impl<K> WatcherStream<K> {
    /// The recycler this watcher's decoder takes objects from: whatever is put in it is decoded
    /// over by the next watch event, instead of a new object being allocated.
    /// [`reflector`](crate::reflector::reflector) hands it to its writer. `None` from a
    /// [`watcher()`] whose events are not decoded over objects: over protobuf, or of a kind
    /// without a direct JSON decoder (custom resources, `DynamicObject`, `PartialObjectMeta`).
    pub fn recycler(&self) -> Option<Recycler<K>> {
        self.recycler.clone()
    }
}

impl<K> fmt::Debug for WatcherStream<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatcherStream").field("recycler", &self.recycler).finish_non_exhaustive()
    }
}

impl<K> Stream for WatcherStream<K> {
    type Item = Result<Event<K>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<Self::Item>> {
        self.events.as_mut().poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.events.size_hint()
    }
}

fn drive<K>(api: Api<K>, config: Config, recycler: Option<Recycler<K>>) -> WatcherStream<K>
where
    K: Resource + DeserializeOwned + Send + 'static,
    K::DynamicType: Clone,
{
    // An `Api` that asks for protobuf makes its watcher ask for it too.
    let config = Config { protobuf: config.protobuf || api.is_protobuf(), ..config };
    // Its own recycler where its decoder would use one.
    let recycles = !config.protobuf && kube_proto::direct_json::supports::<K>();
    let recycler = recycler.or_else(|| recycles.then(Recycler::new));
    let machine = Watcher::new(api.request().clone(), config).map_err(Error::Request);
    let client = api.client().clone();
    let start = match machine {
        Ok(machine) => Ok(Driver { machine, recycler: recycler.clone(), client, in_flight: None, timer: None }),
        Err(e) => Err(e),
    };
    let events = stream::unfold(Some(start), |state| async move {
        match state? {
            Err(e) => Some((Err(e), None)),
            Ok(mut d) => {
                let item = d.next().await;
                Some((item, Some(Ok(d))))
            }
        }
    });
    WatcherStream { events: Box::pin(events), recycler }
}

impl<K> Driver<K>
where
    K: Resource + DeserializeOwned + Send + 'static,
{
    /// Drives the machine until it emits an event or an error. Every wait is raced against
    /// the machine's deadline, the request in flight included: a transport with no timeouts of
    /// its own cannot hang a watcher.
    async fn next(&mut self) -> Result<Event<K>, Error> {
        loop {
            if let Some(r) = &self.recycler
                && self.machine.wants_spare()
                && let Some(spare) = r.take()
            {
                self.machine.recycle(spare);
            }
            let now = self.client.now();
            match self.machine.poll(now) {
                Action::Emit(ev) => return Ok(ev),
                Action::Error(e) => return Err(Error::Watcher(e)),
                Action::Cancel(id) => {
                    if self.in_flight.as_ref().is_some_and(|(current, _)| *current == id) {
                        self.in_flight = None;
                    }
                }
                Action::Send(id, request) => {
                    let client = self.client.clone();
                    let sending = Box::pin(async move { client.send_once(request).await });
                    self.in_flight = Some((id, InFlight::Sending(sending)));
                }
                Action::Wait { until, .. } => self.wait(until).await,
            }
        }
    }

    /// Waits for what the request in flight brings next, or for `until`, and feeds it in.
    async fn wait(&mut self, until: Instant) {
        let sleep = match &mut self.timer {
            Some((at, sleep)) if *at <= until => sleep,
            timer => &mut timer.insert((until, self.client.transport().sleep_until(until))).1,
        };
        let Some((id, in_flight)) = &mut self.in_flight else {
            sleep.await;
            self.timer = None;
            return;
        };
        let id = *id;
        match in_flight {
            InFlight::Sending(sending) => {
                let Either::Left((result, _)) = select(sending, sleep).await else {
                    // A finished timer is not polled again.
                    self.timer = None;
                    return;
                };
                let now = self.client.now();
                match result {
                    Ok(resp) => {
                        self.machine.on_response(now, id, resp.status, &resp.headers);
                        self.in_flight = Some((id, InFlight::Reading(resp.body)));
                    }
                    Err(e) => {
                        self.in_flight = None;
                        self.machine.on_transport_error(now, id, e.to_string());
                    }
                }
            }
            InFlight::Reading(body) => {
                let Either::Left((chunk, _)) = select(body.next(), sleep).await else {
                    self.timer = None;
                    return;
                };
                let now = self.client.now();
                match chunk {
                    Some(Ok(bytes)) => self.machine.on_body(now, id, &bytes),
                    Some(Err(e)) => {
                        self.in_flight = None;
                        self.machine.on_transport_error(now, id, e.to_string());
                    }
                    None => {
                        self.in_flight = None;
                        self.machine.on_end(now, id);
                    }
                }
            }
        }
    }
}

/// Helpers on streams of watcher events.
pub trait WatchStreamExt<K>: Stream<Item = Result<Event<K>, Error>> + Sized {
    /// Objects that were created, changed or listed (deletions are dropped).
    fn applied_objects(self) -> Pin<Box<dyn Stream<Item = Result<K, Error>> + Send>>
    where
        Self: Send + 'static,
        K: Send + 'static,
    {
        Box::pin(self.filter_map(|ev| async move {
            match ev {
                Ok(Event::Apply(k) | Event::InitApply(k)) => Some(Ok(k)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            }
        }))
    }

    /// Objects that were created, changed, listed or deleted.
    fn touched_objects(self) -> Pin<Box<dyn Stream<Item = Result<K, Error>> + Send>>
    where
        Self: Send + 'static,
        K: Send + 'static,
    {
        Box::pin(self.filter_map(|ev| async move {
            match ev {
                Ok(Event::Apply(k) | Event::InitApply(k) | Event::Delete(k)) => Some(Ok(k)),
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            }
        }))
    }
}

impl<K, S: Stream<Item = Result<Event<K>, Error>>> WatchStreamExt<K> for S {}
