//! The reflector: keeps a [`Store`] of a watched collection, readable from any thread or task,
//! from the events of a [`watcher()`](crate::watcher::watcher) stream that it passes through.
//!
//! ```
//! # #[cfg(feature = "fake")] {
//! use futures_util::StreamExt;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_runtime::fake::FakeTransport;
//! use kube_runtime::reflector::{self, reflector, ObjectRef};
//! use kube_runtime::watcher::{self, watcher};
//! use kube_runtime::{Api, Client};
//!
//! futures_executor::block_on(async {
//!     let (transport, config) = FakeTransport::new();
//!     let cms: Api<ConfigMap> = Api::default_namespaced(Client::new(transport, config).unwrap());
//!     let (reader, writer) = reflector::store();
//!     let rf = reflector(writer, watcher(cms, watcher::Config::default()));
//!     // Drive `rf` (here until the first complete state; usually in a task of its own) ...
//!     let mut rf = Box::pin(rf);
//!     while !reader.is_ready() {
//!         rf.next().await;
//!     }
//!     // ... and read `reader` anywhere, without an executor.
//!     assert!(reader.get(&ObjectRef::new("missing").within("default")).is_none());
//! });
//! # }
//! ```
//!
//! The store's rules are the core's ([`kube_proto::store`]): a relist replaces entries in place
//! and never holds two copies; readers see a complete state throughout; objects are stored as
//! `Arc<K>` and the reflector passes on the same `Arc`s (`Event<Arc<K>>`), so no object is ever
//! deep-cloned. Events the store skips (an object with no name, or outside the store's namespace)
//! are logged with `tracing` at WARN and not passed on.
//!
//! ## Shared streams and slow subscribers
//!
//! [`Writer::subscribe`] gives a further consumer of the same events (kube-rs's `store_shared`
//! and `subscribe`). Each subscriber has a bounded buffer ([`store_shared`] sets its size). When a
//! subscriber's buffer is full, the reflector **waits** for it: no event is ever dropped or
//! reordered for a subscriber, and the store and the other consumers wait with it (backpressure,
//! as kube-rs's). A subscriber that is dropped is forgotten at the next event. A subscriber sees
//! the events from the moment it subscribes: subscribe before polling the reflector, or read the
//! [`Store`] for what came before.

use std::any::Any;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use futures_channel::{mpsc, oneshot};
use futures_core::Stream;
use futures_util::future::{FutureExt, Shared, poll_fn};
use futures_util::stream::{self, StreamExt};
use kube_proto::Resource;
use kube_proto::watcher::Event;

pub use kube_proto::store::{
    BY_LABEL, BY_NAMESPACE, BY_OWNER, IndexFn, ObjectRef, Skipped, StoreConfig, Transform, UnknownIndex,
    drop_managed_fields,
};

use crate::Error;
use crate::watcher::{Recycler, WatcherStream};

/// The buffer of each subscriber of a store made by [`store`] or [`store_with`], in events.
pub const DEFAULT_SUBSCRIBER_BUFFER: usize = 64;

struct Inner<K: Resource> {
    store: RwLock<kube_proto::store::Store<K>>,
    ready: Shared<oneshot::Receiver<()>>,
}

impl<K: Resource> Inner<K> {
    fn read(&self) -> RwLockReadGuard<'_, kube_proto::store::Store<K>> {
        // The core never panics while applying, so a poisoned lock still holds a consistent store.
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, kube_proto::store::Store<K>> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A reader of the store: cheap to clone, `Send + Sync`, and usable from any thread or task
/// without an executor (its reads take a read lock for as long as the read lasts).
pub struct Store<K: Resource> {
    inner: Arc<Inner<K>>,
}

impl<K: Resource> Clone for Store<K> {
    fn clone(&self) -> Self {
        Store { inner: self.inner.clone() }
    }
}

impl<K: Resource> fmt::Debug for Store<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Store").field(&*self.inner.read()).finish()
    }
}

/// The writer ended before the store was ever ready.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the store's writer was dropped before the store was ready")]
pub struct WriterDropped;

impl<K: Resource> Store<K>
where
    K::DynamicType: Clone,
{
    /// The object `r` refers to.
    pub fn get(&self, r: &ObjectRef<K>) -> Option<Arc<K>> {
        self.inner.read().get(r)
    }

    /// Every object, in key order (namespace, then name).
    pub fn state(&self) -> Vec<Arc<K>> {
        self.inner.read().state()
    }

    /// The number of objects.
    pub fn len(&self) -> usize {
        self.inner.read().len()
    }

    /// Whether the store holds no object.
    pub fn is_empty(&self) -> bool {
        self.inner.read().is_empty()
    }

    /// Whether a complete state has been received (the first `InitDone`).
    pub fn is_ready(&self) -> bool {
        self.inner.read().is_ready()
    }

    /// The objects indexed under `value` in the index `index` ([`BY_NAMESPACE`], [`BY_LABEL`]
    /// with `key=value`, [`BY_OWNER`] with an owner's UID, or one added with
    /// [`StoreConfig::index`]), in key order.
    pub fn by_index(&self, index: &str, value: &str) -> Result<Vec<Arc<K>>, UnknownIndex> {
        self.inner.read().by_index(index, value)
    }

    /// The values the index `index` has objects under, in order.
    pub fn index_values(&self, index: &str) -> Result<Vec<String>, UnknownIndex> {
        self.inner.read().index_values(index)
    }

    /// The first object (in key order) that `pred` accepts.
    pub fn find(&self, mut pred: impl FnMut(&K) -> bool) -> Option<Arc<K>> {
        self.inner.read().iter().find(|(_, o)| pred(o)).map(|(_, o)| o.clone())
    }

    /// Runs `f` on the core store under one read lock: several reads that see the same state.
    pub fn with<R>(&self, f: impl FnOnce(&kube_proto::store::Store<K>) -> R) -> R {
        f(&self.inner.read())
    }

    /// Resolves once the store is ready (at once if it is), on any executor; an error if the
    /// writer is dropped first.
    pub async fn wait_until_ready(&self) -> Result<(), WriterDropped> {
        self.inner.ready.clone().await.map_err(|_| WriterDropped)
    }
}

/// The writing half of a store, consumed by [`reflector`].
pub struct Writer<K: Resource> {
    inner: Arc<Inner<K>>,
    ready: Option<oneshot::Sender<()>>,
    subscribers: Vec<mpsc::Sender<Event<Arc<K>>>>,
    buffer: usize,
    /// The objects the last event replaced or removed, dropped after the lock is released.
    retired: Vec<Arc<K>>,
    /// Where those objects go instead when nobody else holds them (see [`Writer::recycler`]).
    recycler: Option<Recycler<K>>,
}

impl<K: Resource> fmt::Debug for Writer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("subscribers", &self.subscribers.len())
            .field("buffer", &self.buffer)
            .finish_non_exhaustive()
    }
}

/// A consumer of the reflector's events besides the reflector's own stream: see [`Writer::subscribe`].
pub type Subscriber<K> = mpsc::Receiver<Event<Arc<K>>>;

impl<K: Resource> Writer<K>
where
    K::DynamicType: Clone,
{
    /// A reader of this writer's store.
    pub fn as_reader(&self) -> Store<K> {
        Store { inner: self.inner.clone() }
    }

    /// From now on, the objects this writer's events replace or remove that nobody else holds go
    /// to the returned [`Recycler`] instead of being freed. Hand it to
    /// [`watcher_with`](crate::watcher::watcher_with), whose decoder then decodes the next event
    /// over one of them: the store then costs the watcher little more than a lookup per event
    /// (see BENCHMARKS.md). Calling it again gives the same recycler.
    ///
    /// [`reflector`] does this by itself when its stream is straight from
    /// [`watcher()`](crate::watcher::watcher); this is for a stream that goes through adaptors.
    pub fn recycler(&mut self) -> Recycler<K> {
        self.recycler.get_or_insert_with(Recycler::new).clone()
    }

    /// A further consumer of the events, with a bounded buffer; see the [module
    /// documentation](self) for what happens when it falls behind.
    pub fn subscribe(&mut self) -> Subscriber<K> {
        // A channel holds `buffer` events plus one per sender.
        let (tx, rx) = mpsc::channel(self.buffer.saturating_sub(1));
        self.subscribers.push(tx);
        rx
    }

    /// Applies one event to the store, and hands it back with the stored `Arc`s, or why the
    /// store skipped it. Subscribers are not told: [`reflector`] does that.
    ///
    /// The objects the event replaces or removes are dropped after the store's lock is released,
    /// so that readers do not wait for their frees.
    pub fn apply(&mut self, event: Event<K>) -> Result<Event<Arc<K>>, Skipped> {
        let (applied, ready) = {
            let mut store = self.inner.write();
            let applied = store.apply_retiring(event, &mut self.retired);
            (applied, store.is_ready())
        };
        match &self.recycler {
            None => self.retired.clear(),
            Some(recycler) => {
                for old in self.retired.drain(..) {
                    // Held elsewhere (a reader, a subscriber, the event passed on): dropped.
                    if let Ok(old) = Arc::try_unwrap(old) {
                        recycler.put(old);
                    }
                }
            }
        }
        if ready && let Some(tx) = self.ready.take() {
            // Nobody waiting is fine.
            let _ = tx.send(());
        }
        applied
    }

    /// Hands `event` to every subscriber, waiting for room in each one's buffer; drops those
    /// that are gone.
    pub async fn dispatch(&mut self, event: &Event<Arc<K>>) {
        if self.subscribers.is_empty() {
            return;
        }
        let mut i = 0;
        while i < self.subscribers.len() {
            let tx = &mut self.subscribers[i];
            let delivered = match poll_fn(|cx| tx.poll_ready(cx)).await {
                Ok(()) => tx.start_send(event.clone()).is_ok(),
                Err(_) => false,
            };
            if delivered {
                i += 1;
            } else {
                self.subscribers.swap_remove(i);
            }
        }
    }
}

/// A store of all namespaces with the built-in indexes: a reader and its writer.
pub fn store<K>() -> (Store<K>, Writer<K>)
where
    K: Resource + 'static,
    K::DynamicType: Clone + Default,
{
    store_with(StoreConfig::default(), K::DynamicType::default())
}

/// A store whose writer can feed subscribers, each with a buffer of `buffer` events (at least 1).
pub fn store_shared<K>(buffer: usize) -> (Store<K>, Writer<K>)
where
    K: Resource + 'static,
    K::DynamicType: Clone + Default,
{
    let (reader, mut writer) = store();
    writer.buffer = buffer.max(1);
    (reader, writer)
}

/// A store with the given settings (namespace, indexes, transform), for the kind `dyntype`
/// describes.
pub fn store_with<K>(config: StoreConfig<K>, dyntype: K::DynamicType) -> (Store<K>, Writer<K>)
where
    K: Resource,
    K::DynamicType: Clone,
{
    let (tx, rx) = oneshot::channel();
    let inner =
        Arc::new(Inner { store: RwLock::new(kube_proto::store::Store::new(config, dyntype)), ready: rx.shared() });
    let reader = Store { inner: inner.clone() };
    let writer = Writer {
        inner,
        ready: Some(tx),
        subscribers: Vec::new(),
        buffer: DEFAULT_SUBSCRIBER_BUFFER,
        retired: Vec::new(),
        recycler: None,
    };
    (reader, writer)
}

/// Applies every event of `stream` to `writer`'s store and passes it on, with the stored `Arc`s,
/// to the returned stream and to the writer's subscribers. Errors pass through; events the store
/// skips are logged and dropped.
///
/// When `stream` is a [`watcher()`](crate::watcher::watcher) itself, or one in a `Box::pin`, and
/// the writer has no [`recycler`](Writer::recycler) yet, the writer is given the watcher's: the
/// objects the store lets go of are decoded over by the next watch events instead of being freed
/// (the events are the same; see [`WatcherStream::recycler`] for the kinds and formats this
/// covers). Through adaptors (`.boxed()`, `.map(..)`), pair them with
/// [`watcher_with`](crate::watcher::watcher_with).
pub fn reflector<K, S>(mut writer: Writer<K>, stream: S) -> impl Stream<Item = Result<Event<Arc<K>>, Error>> + Send
where
    K: Resource + Send + Sync + 'static,
    K::DynamicType: Clone,
    S: Stream<Item = Result<Event<K>, Error>> + Send + 'static,
{
    pair(&mut writer, &stream);
    stream::unfold((writer, Box::pin(stream)), |(mut writer, mut stream)| async move {
        loop {
            match stream.next().await? {
                Err(e) => return Some((Err(e), (writer, stream))),
                Ok(event) => match writer.apply(event) {
                    Ok(event) => {
                        writer.dispatch(&event).await;
                        return Some((Ok(event), (writer, stream)));
                    }
                    Err(skipped) => tracing::warn!(%skipped, "reflector: event not stored"),
                },
            }
        }
    })
}

/// Gives `writer` the recycler of `stream` when it is a [`WatcherStream`] (see [`reflector`]).
fn pair<K: Resource + 'static, S: 'static>(writer: &mut Writer<K>, stream: &S) {
    if writer.recycler.is_some() {
        return;
    }
    let any = stream as &dyn Any;
    let watcher = any.downcast_ref::<WatcherStream<K>>().or_else(|| {
        // `Box::pin(watcher(..))`, as streams are often kept (a `WatcherStream` is `Unpin`: it
        // needs no pinning of its own).
        any.downcast_ref::<Pin<Box<WatcherStream<K>>>>().map(|w| &**w)
    });
    writer.recycler = watcher.and_then(WatcherStream::recycler);
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_executor::block_on;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube_proto::ResourceExt;

    fn cm(name: &str, rv: &str) -> ConfigMap {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "namespace": "default", "resourceVersion": rv, "labels": {"app": "web"},
                         "managedFields": [{"manager": "kubectl", "operation": "Apply"}]}
        }))
        .unwrap()
    }

    fn events(evs: Vec<Event<ConfigMap>>) -> impl Stream<Item = Result<Event<ConfigMap>, Error>> + Send + 'static {
        stream::iter(evs.into_iter().map(Ok))
    }

    fn assert_send_sync<T: Send + Sync + Clone>() {}

    #[test]
    fn the_reader_is_clone_send_and_sync() {
        assert_send_sync::<Store<ConfigMap>>();
        assert_send_sync::<Store<kube_proto::DynamicObject>>();
    }

    #[test]
    fn events_pass_through_with_the_stored_arcs_and_the_reader_sees_them_from_another_thread() {
        let (reader, writer) = store::<ConfigMap>();
        let rf = reflector(writer, events(vec![Event::Init, Event::InitApply(cm("a", "1")), Event::InitDone]));
        let passed: Vec<_> = block_on(rf.collect());
        assert_eq!(passed.len(), 3);
        let Ok(Event::InitApply(a)) = &passed[1] else { panic!("{:?}", passed[1]) };
        let r = ObjectRef::new("a").within("default");
        let stored = std::thread::spawn(move || reader.get(&r)).join().unwrap().unwrap();
        assert!(Arc::ptr_eq(a, &stored), "the event carries the stored object, not a copy");
    }

    #[test]
    fn wait_until_ready_resolves_only_after_the_first_init_done() {
        let (reader, mut writer) = store::<ConfigMap>();
        let mut waiting = Box::pin(reader.wait_until_ready());
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut pending = || waiting.as_mut().poll(&mut cx).is_pending();
        writer.apply(Event::Init).unwrap();
        writer.apply(Event::InitApply(cm("a", "1"))).unwrap();
        assert!(pending());
        assert!(!reader.is_ready());
        writer.apply(Event::InitDone).unwrap();
        assert!(!pending());
        assert_eq!(block_on(reader.wait_until_ready()), Ok(()), "and at once afterwards");
    }

    #[test]
    fn wait_until_ready_fails_when_the_writer_goes_before_the_store_is_ready() {
        let (reader, writer) = store::<ConfigMap>();
        drop(writer);
        assert_eq!(block_on(reader.wait_until_ready()), Err(WriterDropped));
    }

    #[test]
    fn errors_pass_through_and_skipped_events_are_not_passed_on() {
        let (reader, writer) = store_with::<ConfigMap>(StoreConfig::default().namespace("default"), ());
        let mut other = cm("x", "1");
        other.metadata.namespace = Some("elsewhere".into());
        let input = stream::iter(vec![
            Ok(Event::Apply(other)),
            Err(Error::Watcher(kube_proto::watcher::WatcherError::Transport("connection reset".into()))),
            Ok(Event::Apply(cm("a", "1"))),
        ]);
        let passed: Vec<_> = block_on(reflector(writer, input).collect());
        assert_eq!(passed.len(), 2, "{passed:?}");
        assert!(passed[0].is_err());
        assert_eq!(reader.state().iter().map(|o| o.name_any()).collect::<Vec<_>>(), ["a"]);
    }

    #[test]
    fn a_transform_drops_managed_fields_before_storing() {
        let (reader, writer) = store_with::<ConfigMap>(StoreConfig::default().drop_managed_fields(), ());
        block_on(reflector(writer, events(vec![Event::Apply(cm("a", "1"))])).collect::<Vec<_>>());
        let a = reader.get(&ObjectRef::new("a").within("default")).unwrap();
        assert_eq!(a.metadata.managed_fields, None);
        assert_eq!(reader.by_index(BY_LABEL, "app=web").unwrap().len(), 1);
    }

    #[test]
    fn every_subscriber_gets_every_event_in_order_through_small_buffers() {
        let (_reader, mut writer) = store_shared::<ConfigMap>(1);
        let subs = [writer.subscribe(), writer.subscribe()];
        let gone = writer.subscribe();
        drop(gone);
        let mut input = vec![Event::Init];
        input.extend((0..20).map(|i| Event::InitApply(cm(&format!("o{i:02}"), "1"))));
        input.push(Event::InitDone);
        let rf = reflector(writer, events(input));
        // The reflector waits for each subscriber: drive all three together.
        let (main, a, b) = block_on(async {
            let [a, b] = subs;
            futures_util::future::join3(rf.collect::<Vec<_>>(), a.collect::<Vec<_>>(), b.collect::<Vec<_>>()).await
        });
        assert_eq!(main.len(), 22);
        for sub in [a, b] {
            assert_eq!(sub.len(), 22);
            assert!(matches!(sub[0], Event::Init) && matches!(sub[21], Event::InitDone));
            let names: Vec<String> = sub
                .iter()
                .filter_map(|e| if let Event::InitApply(o) = e { Some(o.name_any()) } else { None })
                .collect();
            assert!(names.is_sorted() && names.len() == 20, "{names:?}");
        }
    }

    #[test]
    fn a_recycler_gets_the_replaced_objects_nobody_else_holds() {
        let (reader, mut writer) = store::<ConfigMap>();
        let recycler = writer.recycler();
        let rv = |o: Option<ConfigMap>| o.and_then(|o| o.metadata.resource_version);
        drop(writer.apply(Event::Apply(cm("a", "1"))).unwrap());
        assert!(recycler.take().is_none(), "nothing replaced yet");
        let passed_on = writer.apply(Event::Apply(cm("a", "2"))).unwrap();
        assert_eq!(rv(recycler.take()).as_deref(), Some("1"), "only the store held `a` 1");
        // Still held by the event passed on: left to whoever holds it last.
        drop(writer.apply(Event::Apply(cm("a", "3"))).unwrap());
        assert!(recycler.take().is_none(), "the event passed on holds `a` 2");
        drop(passed_on);
        let read = reader.get(&ObjectRef::new("a").within("default")).unwrap();
        drop(writer.apply(Event::Apply(cm("a", "4"))).unwrap());
        assert!(recycler.take().is_none(), "a reader holds `a` 3");
        drop(read);
        drop(writer.apply(Event::Apply(cm("a", "5"))).unwrap());
        assert_eq!(rv(recycler.take()).as_deref(), Some("4"));
        drop(writer.apply(Event::Delete(cm("a", "6"))).unwrap());
        assert_eq!(rv(recycler.take()).as_deref(), Some("5"), "removed by the deletion");
        assert!(reader.is_empty());
        // One recycler per writer, holding one object.
        let again = writer.recycler();
        again.put(cm("b", "1"));
        again.put(cm("c", "1"));
        assert_eq!(format!("{recycler:?}"), "Recycler { holding: true }");
        assert_eq!(recycler.take().map(|o| o.name_any()).as_deref(), Some("c"));
        assert_eq!(format!("{recycler:?}"), "Recycler { holding: false }");
    }

    /// A transport that is never called: the watchers below are only built.
    struct Unused;

    impl crate::Transport for Unused {
        fn send(
            &self,
            _: http::Request<Vec<u8>>,
        ) -> futures_util::future::BoxFuture<'static, Result<crate::TransportResponse, crate::TransportError>> {
            unreachable!("no request is sent")
        }
        fn sleep_until(&self, _: std::time::Instant) -> futures_util::future::BoxFuture<'static, ()> {
            unreachable!("no timer is set")
        }
        fn now(&self) -> std::time::Instant {
            unreachable!("no time is read")
        }
    }

    #[test]
    fn a_writer_is_paired_with_a_watcher_straight_or_pinned_not_through_adaptors() {
        use crate::watcher::{Config, watcher, watcher_with};
        use futures_util::StreamExt;
        let client =
            crate::Client::new(Unused, kube_proto::config::Config::new("https://10.0.0.1:6443".parse().unwrap()))
                .unwrap();
        let api = || crate::Api::<ConfigMap>::namespaced(client.clone(), "default");
        let paired = |writer: &Writer<ConfigMap>, w: &WatcherStream<ConfigMap>| {
            let (a, b) = (writer.recycler.as_ref().unwrap(), w.recycler().unwrap());
            a.put(cm("x", "1"));
            b.take().is_some()
        };

        let (_, mut writer) = store::<ConfigMap>();
        let w = watcher(api(), Config::default());
        pair(&mut writer, &w);
        assert!(paired(&writer, &w), "straight from watcher()");

        let (_, mut writer) = store::<ConfigMap>();
        let w = Box::pin(watcher(api(), Config::default()));
        pair(&mut writer, &w);
        assert!(paired(&writer, &w), "in a Box::pin");

        let (_, mut writer) = store::<ConfigMap>();
        pair(&mut writer, &watcher(api(), Config::default()).boxed());
        assert!(writer.recycler.is_none(), "through an adaptor");

        // A writer paired by hand keeps its recycler.
        let (_, mut writer) = store::<ConfigMap>();
        let mine = writer.recycler();
        pair(&mut writer, &watcher(api(), Config::default()));
        mine.put(cm("y", "1"));
        assert!(writer.recycler().take().is_some(), "the writer's own");
        let w = watcher_with(api(), Config::default(), mine.clone());
        mine.put(cm("z", "1"));
        assert!(w.recycler().unwrap().take().is_some(), "watcher_with's is the one given");

        // Events not decoded over objects: no recycler to pair with.
        let (_, mut writer) = store::<ConfigMap>();
        let w = watcher(api(), Config::default().protobuf());
        assert!(w.recycler().is_none(), "protobuf");
        pair(&mut writer, &w);
        assert!(writer.recycler.is_none());
        let dynamic = crate::Api::<kube_proto::DynamicObject>::namespaced_with(
            client.clone(),
            "default",
            &kube_proto::ApiResource::erase::<ConfigMap>(&()),
        );
        assert!(watcher(dynamic, Config::default()).recycler().is_none(), "a kind read by serde");
    }

    #[test]
    fn a_full_subscriber_holds_the_reflector_back_rather_than_lose_events() {
        let (reader, mut writer) = store_shared::<ConfigMap>(2);
        let mut sub = writer.subscribe();
        let input: Vec<_> = (0..5).map(|i| Event::Apply(cm(&format!("o{i}"), "1"))).collect();
        let mut rf = Box::pin(reflector(writer, events(input)));
        let waker = futures_util::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        let mut passed = 0;
        while let std::task::Poll::Ready(Some(_)) = rf.as_mut().poll_next(&mut cx) {
            passed += 1;
        }
        assert_eq!(passed, 2, "two events fill the buffer; the third waits");
        assert_eq!(reader.len(), 3, "the third is stored, and waits to be handed on");
        let first = block_on(sub.next()).unwrap();
        assert!(matches!(first, Event::Apply(o) if o.name_any() == "o0"));
        let rest: Vec<_> =
            block_on(async { futures_util::future::join(rf.collect::<Vec<_>>(), sub.collect::<Vec<_>>()).await }).1;
        assert_eq!(rest.len(), 4);
    }
}
