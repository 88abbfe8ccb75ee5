//! The controller: reconciles every object of a kind whenever it, or something that maps to it,
//! changes; on any executor.
//!
//! A [`Controller`] watches its kind through a [reflector](crate::reflector) (the reconcile reads
//! the object from the controller's store), and more streams map their changes to objects of the
//! kind: owned children by their owner references ([`Controller::owns`]), anything else through a
//! mapper ([`Controller::watches`], [`Controller::watches_stream`]). Which object is reconciled when
//! is the core's pure [`WorkQueue`]: a changed object is queued once, never reconciled twice at
//! once, retried after failures with per-object and overall rate limits, and requeued when the
//! reconcile asks. Reconciles run concurrently inside the stream that [`Controller::run`]
//! returns, up to the concurrency bound: nothing is spawned, so any executor drives it, and
//! timers come from the client's transport. Given a [`Recorder`] ([`Controller::publish_events`]),
//! the same stream sends the Events that reconciles [post](Recorder::post) without waiting.
//!
//! ```no_run
//! # async fn demo(client: kube_runtime::Client) {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use futures_util::StreamExt;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_runtime::Api;
//! use kube_runtime::controller::{Action, Controller};
//! use kube_runtime::watcher;
//!
//! async fn reconcile(cm: Arc<ConfigMap>, _ctx: Arc<()>) -> Result<Action, std::io::Error> {
//!     Ok(Action::requeue(Duration::from_secs(300)))
//! }
//! fn error_policy(_cm: Arc<ConfigMap>, _error: &std::io::Error, _ctx: Arc<()>) -> Action {
//!     Action::requeue(Duration::from_secs(5))
//! }
//!
//! let cms: Api<ConfigMap> = Api::default_namespaced(client);
//! Controller::new(cms, watcher::Config::default())
//!     .run(reconcile, error_policy, Arc::new(()))
//!     .for_each(|result| async move { println!("{result:?}") })
//!     .await;
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_core::Stream;
use futures_util::future::{AbortHandle, BoxFuture, FutureExt, abortable, poll_fn};
use futures_util::stream::{self, BoxStream, FuturesUnordered, StreamExt};
use kube_proto::workqueue::{Next, Outcome, WorkQueue, WorkQueueConfig};
use kube_proto::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::events::{EventSender, Recorder};
use crate::leader::{LeaderElector, LeaderEvent, Leadership, LeaseError};
use crate::reflector::{ObjectRef, Store, Writer, reflector};
use crate::watcher::{Config, Event, watcher};
use crate::{Api, Client, Error};

/// What a reconcile (or an error policy) asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Reconcile again after `duration`, or sooner if the object changes.
    pub const fn requeue(duration: Duration) -> Self {
        Action { requeue_after: Some(duration) }
    }

    /// Reconcile again only when the object (or something mapped to it) changes.
    pub const fn await_change() -> Self {
        Action { requeue_after: None }
    }

    /// When to reconcile again without a change, if at all.
    pub const fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}

/// Why an item of [`Controller::run`]'s stream is an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControllerError<K: Resource, E: std::error::Error + 'static>
where
    K::DynamicType: fmt::Debug,
{
    /// The reconcile of this object failed; the error policy's action was applied.
    #[error("reconciling {0} failed: {1}")]
    ReconcileFailed(ObjectRef<K>, #[source] E),
    /// A watch of the controller failed; it goes on by itself.
    #[error("a watch failed: {0}")]
    Watcher(#[source] Error),
}

/// Counters of a controller, readable while it runs ([`Controller::metrics`]); plain values for
/// the exporter of your choice, or a `prometheus-client` registry through
/// `ControllerCollector` (feature `prometheus`).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Reconciles run (finished).
    pub reconciles: AtomicU64,
    /// Reconciles that failed.
    pub failures: AtomicU64,
    /// Objects waiting in the queue, at the last change of the queue.
    pub queue_depth: AtomicU64,
    /// The sum, in microseconds, of how long objects waited past their due time.
    pub queue_latency_micros: AtomicU64,
    /// The sum, in microseconds, of reconcile durations.
    pub reconcile_micros: AtomicU64,
    /// Reconcile durations: how many fell in each bucket of [`DURATION_BUCKETS`] (the last
    /// counts the longer ones).
    pub reconcile_duration_buckets: [AtomicU64; DURATION_BUCKETS.len() + 1],
}

/// The upper bounds, in seconds, of the reconcile-duration histogram's buckets
/// (controller-runtime's defaults).
pub const DURATION_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Metrics {
    fn observe_reconcile(&self, took: Duration) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
        self.reconcile_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        let secs = took.as_secs_f64();
        let bucket = DURATION_BUCKETS.iter().position(|b| secs <= *b).unwrap_or(DURATION_BUCKETS.len());
        self.reconcile_duration_buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The reconcile-duration histogram: `(upper bound in seconds, count in that bucket)`, the
    /// last bound infinite.
    pub fn reconcile_durations(&self) -> Vec<(f64, u64)> {
        let bounds = DURATION_BUCKETS.iter().copied().chain([f64::INFINITY]);
        bounds.zip(self.reconcile_duration_buckets.iter().map(|c| c.load(Ordering::Relaxed))).collect()
    }
}

/// The controller's metrics on a `prometheus-client` registry (feature `prometheus`):
/// `register_collector(Box::new(ControllerCollector::new("configmapgen", metrics)))`.
#[cfg(feature = "prometheus")]
#[derive(Debug)]
pub struct ControllerCollector {
    prefix: String,
    metrics: Arc<Metrics>,
}

#[cfg(feature = "prometheus")]
impl ControllerCollector {
    /// A collector naming its metrics `<prefix>_reconcile_total` and so on.
    pub fn new(prefix: &str, metrics: Arc<Metrics>) -> Self {
        ControllerCollector { prefix: prefix.to_owned(), metrics }
    }
}

#[cfg(feature = "prometheus")]
impl prometheus_client::collector::Collector for ControllerCollector {
    fn encode(&self, mut encoder: prometheus_client::encoding::DescriptorEncoder) -> Result<(), fmt::Error> {
        use prometheus_client::encoding::NoLabelSet;
        use prometheus_client::metrics::MetricType;
        let m = &self.metrics;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for (name, help, value) in [
            ("reconcile", "Reconciles run.", load(&m.reconciles)),
            ("reconcile_errors", "Reconciles that failed.", load(&m.failures)),
        ] {
            let name = format!("{}_{name}", self.prefix);
            let mut metric = encoder.encode_descriptor(&name, help, None, MetricType::Counter)?;
            metric.encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        let name = format!("{}_queue_depth", self.prefix);
        let mut metric =
            encoder.encode_descriptor(&name, "Objects waiting to be reconciled.", None, MetricType::Gauge)?;
        metric.encode_gauge(&(load(&m.queue_depth) as i64))?;
        let name = format!("{}_reconcile_duration_seconds", self.prefix);
        let help = "How long reconciles took.";
        let mut metric = encoder.encode_descriptor(&name, help, None, MetricType::Histogram)?;
        let sum = load(&m.reconcile_micros) as f64 / 1e6;
        metric.encode_histogram::<NoLabelSet>(sum, load(&m.reconciles), &m.reconcile_durations(), None)?;
        Ok(())
    }
}

type Trigger<K> = BoxStream<'static, Result<Vec<ObjectRef<K>>, Error>>;

/// A controller of objects of kind `K`. See the [module documentation](self).
pub struct Controller<K: Resource> {
    client: Client,
    store: Store<K>,
    main: BoxStream<'static, Result<Event<Arc<K>>, Error>>,
    triggers: Vec<Trigger<K>>,
    queue: WorkQueueConfig,
    debounce: Duration,
    shutdown: Option<BoxFuture<'static, ()>>,
    metrics: Arc<Metrics>,
    events: Option<EventSender>,
    leader: Option<LeaderElector>,
}

impl<K: Resource> fmt::Debug for Controller<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Controller").field("queue", &self.queue).field("debounce", &self.debounce).finish()
    }
}

impl<K> Controller<K>
where
    K: Resource + DeserializeOwned + Clone + Send + Sync + fmt::Debug + 'static,
    K::DynamicType: Clone + Default + Eq + Ord + Send + Sync + fmt::Debug,
{
    /// A controller of the objects `api` addresses, watched with `config`.
    pub fn new(api: Api<K>, config: Config) -> Self {
        let (store, writer) = crate::reflector::store();
        Self::for_store(api, config, store, writer)
    }

    /// A controller over a store made by the caller (a [`store_with`](crate::reflector::store_with)
    /// with indexes or a transform, or a shared one whose writer has subscribers).
    pub fn for_store(api: Api<K>, config: Config, store: Store<K>, writer: Writer<K>) -> Self {
        let client = api.client().clone();
        // Straight from `watcher()`: the objects the store lets go of (held by no reconciler)
        // are decoded over by the next watch events.
        let main = reflector(writer, watcher(api, config)).boxed();
        Controller {
            client,
            store,
            main,
            triggers: Vec::new(),
            queue: WorkQueueConfig::default(),
            debounce: Duration::ZERO,
            shutdown: None,
            metrics: Arc::default(),
            events: None,
            leader: None,
        }
    }

    /// The store the reconcile reads from.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// The controller's counters.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// Reconciles the owner (of kind `K`) of every object of `api` that changes: children map
    /// to parents by their owner references.
    #[must_use]
    pub fn owns<C>(mut self, api: Api<C>, config: Config) -> Self
    where
        C: Resource + DeserializeOwned + Clone + Send + 'static,
        C::DynamicType: Clone,
    {
        let kind = K::kind(&K::DynamicType::default()).into_owned();
        let api_version = K::api_version(&K::DynamicType::default()).into_owned();
        let stream = watcher(api, config).map(move |event| {
            event.map(|e| {
                let children = match e {
                    Event::Apply(c) | Event::InitApply(c) | Event::Delete(c) => vec![c],
                    Event::Init | Event::InitDone => Vec::new(),
                };
                children
                    .iter()
                    .flat_map(|child| {
                        let namespace = child.namespace().map(str::to_owned);
                        child
                            .owner_references()
                            .iter()
                            .filter(|o| o.kind == kind && o.api_version == api_version)
                            .map(move |o| ObjectRef { namespace: namespace.clone(), ..ObjectRef::new(&o.name) })
                            .collect::<Vec<_>>()
                    })
                    .collect()
            })
        });
        self.triggers.push(stream.boxed());
        self
    }

    /// Reconciles the objects `mapper` names for every object of `api` that changes.
    #[must_use]
    pub fn watches<O, I>(self, api: Api<O>, config: Config, mapper: impl Fn(O) -> I + Send + 'static) -> Self
    where
        O: Resource + DeserializeOwned + Clone + Send + 'static,
        O::DynamicType: Clone,
        I: IntoIterator<Item = ObjectRef<K>>,
    {
        self.watches_stream(watcher(api, config), mapper)
    }

    /// Reconciles the objects `mapper` names for every object a watcher stream of the caller's
    /// applies or deletes.
    #[must_use]
    pub fn watches_stream<O, S, I>(mut self, stream: S, mapper: impl Fn(O) -> I + Send + 'static) -> Self
    where
        O: Send + 'static,
        S: Stream<Item = Result<Event<O>, Error>> + Send + 'static,
        I: IntoIterator<Item = ObjectRef<K>>,
    {
        let stream = stream.map(move |event| {
            event.map(|e| match e {
                Event::Apply(o) | Event::InitApply(o) | Event::Delete(o) => mapper(o).into_iter().collect(),
                Event::Init | Event::InitDone => Vec::new(),
            })
        });
        self.triggers.push(stream.boxed());
        self
    }

    /// Reconciles every object in the store each time `stream` yields (a timer, a config reload).
    #[must_use]
    pub fn reconcile_all_on(mut self, stream: impl Stream<Item = ()> + Send + 'static) -> Self {
        let store = self.store.clone();
        let all = stream.map(move |()| Ok(store.state().iter().map(|o| ObjectRef::from_obj(o.as_ref())).collect()));
        self.triggers.push(all.boxed());
        self
    }

    /// Reconciles at most `n` objects at once (default 16; at least 1).
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.queue.concurrency = n.max(1);
        self
    }

    /// Waits `delay` after a change before reconciling, so that a burst of changes is one
    /// reconcile (default none).
    #[must_use]
    pub fn debounce(mut self, delay: Duration) -> Self {
        self.debounce = delay;
        self
    }

    /// The work queue's rate limits (per-object backoff, overall retry rate).
    #[must_use]
    pub fn queue_config(mut self, config: WorkQueueConfig) -> Self {
        let concurrency = self.queue.concurrency;
        self.queue = WorkQueueConfig { concurrency, ..config };
        self
    }

    /// Sends the Events that reconciles [post](Recorder::post) to `recorder` (or a clone of it)
    /// inside the stream [`run`](Self::run) returns, one at a time, while it runs: a post
    /// returns at once, and no reconcile waits for an event to be written. Nothing is spawned.
    /// A graceful shutdown waits for the events posted until then to be sent.
    #[must_use]
    pub fn publish_events(mut self, recorder: &Recorder) -> Self {
        self.events = Some(recorder.sender());
        self
    }

    /// Reconciles only while `elector` leads, and only the objects of the shards it leads (all of
    /// them for a single Lease, [`LeaderElector::new`]; those of its shards for
    /// [`LeaderElector::sharded`]). The election runs inside the stream [`run`](Self::run)
    /// returns. When a shard is acquired, its objects are reconciled; when it is lost, no
    /// reconcile of its objects starts, and the running ones are dropped at once (cancelled at
    /// their next await), before the Lease could expire for anyone else. A reconcile that writes
    /// after a long computation should also check [`Leadership::owns`] just before (see
    /// [`LeaderElector::leadership`]). A graceful shutdown gives the Leases back once the
    /// running reconciles have finished.
    #[must_use]
    pub fn leader_election(mut self, elector: LeaderElector) -> Self {
        self.leader = Some(elector);
        self
    }

    /// Stops when `signal` completes: no reconcile starts after it, the running ones finish
    /// (and the events they posted are sent, see [`publish_events`](Self::publish_events)),
    /// then the stream ends.
    #[must_use]
    pub fn graceful_shutdown_on(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.shutdown = Some(signal.boxed());
        self
    }

    /// Runs the controller: a stream of every reconcile's outcome (the object and the action
    /// applied, or the error), which must be polled for the controller to run. It ends only
    /// after a graceful shutdown.
    pub fn run<C, E, R, Fut, P>(
        self,
        reconcile: R,
        error_policy: P,
        context: Arc<C>,
    ) -> impl Stream<Item = Result<(ObjectRef<K>, Action), ControllerError<K, E>>> + Send
    where
        C: Send + Sync + 'static,
        E: std::error::Error + Send + 'static,
        R: Fn(Arc<K>, Arc<C>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        P: Fn(Arc<K>, &E, Arc<C>) -> Action + Send + 'static,
    {
        let now = self.client.now();
        let leader = self.leader.map(|elector| {
            let (release, released) = futures_channel::oneshot::channel::<()>();
            let leadership = elector.leadership();
            let events = elector.shutdown_on(released.map(|_| ())).run().boxed();
            Leader { leadership, events: Some(events), release: Some(release), running: Vec::new() }
        });
        let mut inputs = vec![self.main.map(|e| e.map(|e| trigger_of(&e))).boxed()];
        inputs.extend(self.triggers);
        let state = Running {
            client: self.client,
            store: self.store,
            inputs: stream::select_all(inputs),
            queue: WorkQueue::new(self.queue, now),
            debounce: self.debounce,
            in_flight: FuturesUnordered::new(),
            shutdown: self.shutdown,
            stopping: false,
            reconcile: Box::new(move |k, c| reconcile(k, c).boxed()),
            error_policy: Box::new(error_policy),
            context,
            metrics: self.metrics,
            events: self.events,
            leader,
        };
        stream::unfold(state, |mut state| async move { state.next().await.map(|item| (item, state)) })
    }
}

/// The objects an event of the main watch asks to reconcile.
fn trigger_of<K: Resource>(event: &Event<Arc<K>>) -> Vec<ObjectRef<K>>
where
    K::DynamicType: Default,
{
    match event {
        Event::Apply(o) | Event::InitApply(o) | Event::Delete(o) => vec![ObjectRef::from_obj(o.as_ref())],
        Event::Init | Event::InitDone => Vec::new(),
    }
}

type Reconcile<K, C, E> = Box<dyn Fn(Arc<K>, Arc<C>) -> BoxFuture<'static, Result<Action, E>> + Send>;
type ErrorPolicy<K, C, E> = Box<dyn Fn(Arc<K>, &E, Arc<C>) -> Action + Send>;
type Finished<K, E> = (ObjectRef<K>, Arc<K>, Result<Action, E>, Duration);

/// A reconcile's end: finished, or dropped because its shard was lost.
enum Ran<K: Resource, E> {
    Finished(Finished<K, E>),
    Dropped(ObjectRef<K>),
}

/// The election a controller runs under ([`Controller::leader_election`]).
struct Leader<K: Resource> {
    leadership: Leadership,
    /// `None` once the election has ended (after the Leases were given back).
    events: Option<BoxStream<'static, Result<LeaderEvent, LeaseError>>>,
    /// Gives the Leases back when sent (or dropped).
    release: Option<futures_channel::oneshot::Sender<()>>,
    /// The running reconciles: their shard, and how to drop them.
    running: Vec<(u32, ObjectRef<K>, AbortHandle)>,
}

struct Running<K: Resource, C, E>
where
    K::DynamicType: Clone + Ord,
{
    client: Client,
    store: Store<K>,
    inputs: stream::SelectAll<BoxStream<'static, Result<Vec<ObjectRef<K>>, Error>>>,
    queue: WorkQueue<ObjectRef<K>>,
    debounce: Duration,
    in_flight: FuturesUnordered<BoxFuture<'static, Ran<K, E>>>,
    shutdown: Option<BoxFuture<'static, ()>>,
    stopping: bool,
    reconcile: Reconcile<K, C, E>,
    error_policy: ErrorPolicy<K, C, E>,
    context: Arc<C>,
    metrics: Arc<Metrics>,
    /// Sends posted Events; `None` once it is done (every recorder gone).
    events: Option<EventSender>,
    leader: Option<Leader<K>>,
}

/// What woke the controller.
enum Woken<K: Resource, E> {
    Input(Option<Result<Vec<ObjectRef<K>>, Error>>),
    Finished(Finished<K, E>),
    /// A reconcile dropped because its shard was lost.
    Dropped(ObjectRef<K>),
    /// A change of leadership (`None`: the election ended).
    Leader(Option<Result<LeaderEvent, LeaseError>>),
    Timer,
    Shutdown,
    /// Stopping, and the last posted events are sent.
    EventsSent,
}

impl<K, C, E> Running<K, C, E>
where
    K: Resource + Send + Sync + 'static,
    K::DynamicType: Clone + Default + Eq + Ord + Send + Sync + fmt::Debug,
    C: Send + Sync + 'static,
    E: std::error::Error + Send + 'static,
{
    async fn next(&mut self) -> Option<Result<(ObjectRef<K>, Action), ControllerError<K, E>>> {
        loop {
            let now = self.client.now();
            let wait = if self.stopping { None } else { self.start_due(now) };
            if self.stopping && self.in_flight.is_empty() && self.events_sent() {
                match &mut self.leader {
                    // Give the Leases back, and wait for the election to end.
                    Some(l) if l.events.is_some() => drop(l.release.take()),
                    _ => return None,
                }
            }
            let mut timer = wait.map(|until| self.client.transport().sleep_until(until));
            let woken = poll_fn(|cx| {
                // The events go on in the background of every wake-up; they yield nothing.
                if let Some(events) = &mut self.events
                    && events.poll_unpin(cx).is_ready()
                {
                    self.events = None;
                }
                if let Some(l) = &mut self.leader
                    && let Some(events) = &mut l.events
                    && let Poll::Ready(event) = events.poll_next_unpin(cx)
                {
                    return Poll::Ready(Woken::Leader(event));
                }
                if self.stopping
                    && self.in_flight.is_empty()
                    && self.events_sent()
                    && self.leader.as_ref().is_none_or(|l| l.events.is_none())
                {
                    return Poll::Ready(Woken::EventsSent);
                }
                if let Some(signal) = &mut self.shutdown
                    && signal.poll_unpin(cx).is_ready()
                {
                    self.shutdown = None;
                    return Poll::Ready(Woken::Shutdown);
                }
                if let Poll::Ready(Some(done)) = self.in_flight.poll_next_unpin(cx) {
                    return Poll::Ready(match done {
                        Ran::Finished(done) => Woken::Finished(done),
                        Ran::Dropped(key) => Woken::Dropped(key),
                    });
                }
                if !self.stopping
                    && let Poll::Ready(input) = self.inputs.poll_next_unpin(cx)
                {
                    return Poll::Ready(Woken::Input(input));
                }
                if let Some(t) = &mut timer
                    && t.poll_unpin(cx).is_ready()
                {
                    return Poll::Ready(Woken::Timer);
                }
                Poll::Pending
            })
            .await;
            let now = self.client.now();
            match woken {
                Woken::Shutdown => self.stopping = true,
                Woken::Timer | Woken::EventsSent => {}
                // Every input stream (the watchers) ends only if the caller's streams end.
                Woken::Input(None) => self.stopping = true,
                Woken::Input(Some(Err(e))) => return Some(Err(ControllerError::Watcher(e))),
                Woken::Input(Some(Ok(refs))) => {
                    for r in refs {
                        self.queue.schedule(now, r, self.debounce);
                    }
                }
                Woken::Finished((key, object, result, took)) => {
                    self.forget_running(&key);
                    return Some(self.finished(now, key, object, result, took));
                }
                Woken::Dropped(key) => {
                    self.forget_running(&key);
                    self.queue.finish(now, &key, Outcome::AwaitChange);
                }
                Woken::Leader(event) => {
                    if let Some(Err(e)) = &event {
                        tracing::debug!(error = %e, "leader election");
                    }
                    self.leadership_changed(now, event);
                }
            }
            self.metrics.queue_depth.store(self.queue.len() as u64, Ordering::Relaxed);
        }
    }

    fn forget_running(&mut self, key: &ObjectRef<K>) {
        if let Some(l) = &mut self.leader {
            l.running.retain(|(_, k, _)| k != key);
        }
    }

    /// Acts on a change of leadership: reconciles the objects of a shard acquired, drops the
    /// running reconciles of a shard lost.
    fn leadership_changed(&mut self, now: Instant, event: Option<Result<LeaderEvent, LeaseError>>) {
        let Some(l) = &mut self.leader else { return };
        match event {
            None => l.events = None,
            Some(Ok(LeaderEvent::Acquired(shard))) => {
                for o in self.store.state() {
                    if l.leadership.shard_of(o.meta()) == shard {
                        self.queue.schedule(now, ObjectRef::from_obj(o.as_ref()), Duration::ZERO);
                    }
                }
            }
            Some(Ok(LeaderEvent::Lost(shard, _))) => {
                for (_, _, abort) in l.running.iter().filter(|(s, _, _)| *s == shard) {
                    abort.abort();
                }
            }
            Some(_) => {}
        }
    }

    /// Whether every posted event has been sent.
    fn events_sent(&self) -> bool {
        self.events.as_ref().is_none_or(EventSender::is_idle)
    }

    /// Starts the reconciles that are due; returns when the next one is due.
    fn start_due(&mut self, now: Instant) -> Option<Instant> {
        loop {
            match self.queue.poll(now) {
                Next::Run { key, waited } => {
                    self.metrics.queue_latency_micros.fetch_add(waited.as_micros() as u64, Ordering::Relaxed);
                    let Some(object) = self.store.get(&key) else {
                        // Gone: nothing to reconcile (its deletion was the last change).
                        self.queue.finish(now, &key, Outcome::AwaitChange);
                        self.queue.forget(&key);
                        continue;
                    };
                    // Under an election, only the objects of the shards led now; the others
                    // are reconciled when their shard is acquired.
                    let shard = self.leader.as_ref().map(|l| l.leadership.shard_of(object.meta()));
                    if let (Some(l), Some(shard)) = (&self.leader, shard)
                        && !l.leadership.leads(shard)
                    {
                        self.queue.finish(now, &key, Outcome::AwaitChange);
                        self.queue.forget(&key);
                        continue;
                    }
                    let run = (self.reconcile)(object.clone(), self.context.clone());
                    let (run, abort) = abortable(run);
                    if let (Some(l), Some(shard)) = (&mut self.leader, shard) {
                        l.running.push((shard, key.clone(), abort));
                    }
                    let client = self.client.clone();
                    self.in_flight.push(
                        async move {
                            let started = client.now();
                            let Ok(result) = run.await else { return Ran::Dropped(key) };
                            let took = client.now().saturating_duration_since(started);
                            Ran::Finished((key, object, result, took))
                        }
                        .boxed(),
                    );
                }
                Next::Wait { until } => return Some(until),
                Next::Idle => return None,
            }
        }
    }

    fn finished(
        &mut self,
        now: Instant,
        key: ObjectRef<K>,
        object: Arc<K>,
        result: Result<Action, E>,
        took: Duration,
    ) -> Result<(ObjectRef<K>, Action), ControllerError<K, E>> {
        self.metrics.observe_reconcile(took);
        match result {
            Ok(action) => {
                let outcome = action.requeue_after().map_or(Outcome::AwaitChange, Outcome::Requeue);
                self.queue.finish(now, &key, outcome);
                Ok((key, action))
            }
            Err(error) => {
                self.metrics.failures.fetch_add(1, Ordering::Relaxed);
                let action = (self.error_policy)(object, &error, self.context.clone());
                let outcome = action.requeue_after().map_or(Outcome::Failed, Outcome::FailedRequeue);
                self.queue.finish(now, &key, outcome);
                Err(ControllerError::ReconcileFailed(key, error))
            }
        }
    }
}
