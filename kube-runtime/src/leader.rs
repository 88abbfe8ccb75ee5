//! Leader election and sharding on Leases, on any executor: a [`LeaderElector`] drives the
//! core's [`Elector`] (one Lease: one leader) or [`Shards`] (S Leases: each replica leads some
//! shards of the objects) with a client, and yields the changes of leadership as a stream.
//!
//! A [`Leadership`] handle, cheap to clone, answers at any moment whether this replica leads (a
//! shard, or the shard of an object), from the deadline the machine computed and the transport's
//! clock: a reconcile that checks it just before a write never writes after the deadline, even
//! if the elector's task was starved. [`Controller::leader_election`](crate::controller::Controller::leader_election) uses it
//! to reconcile only while leading, and only the objects of the shards held.
//!
//! The model, next to controller-runtime's: with [`LeaderElector::new`] one replica leads and
//! reconciles everything while the others wait, as controller-runtime's leader election does.
//! With [`LeaderElector::sharded`] the objects are split into shards by a stable hash of their
//! UID or namespace ([`ShardKey`]); every replica leads a fair share of the shards and reconciles
//! only their objects, so the work spreads over the replicas, and a replica's death moves only
//! its shards (after their Leases expire). Either way an object has at most one live owner; see
//! [`kube_proto::lease`] for the clock-rate bound that guarantee rests on.
//!
//! ```no_run
//! # async fn demo(client: kube_runtime::Client) {
//! use futures_util::StreamExt;
//! use kube_runtime::leader::{LeaderElector, LeaseConfig};
//!
//! let elector = LeaderElector::new(client, LeaseConfig::new("default", "my-controller", "pod-a")).unwrap();
//! let leadership = elector.leadership();
//! let mut changes = elector.run().boxed();
//! while let Some(change) = changes.next().await {
//!     println!("{change:?}; leading: {}", leadership.is_leading());
//! }
//! # }
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Instant;

use futures_core::Stream;
use futures_util::future::{BoxFuture, FutureExt, poll_fn};
use futures_util::stream::{self, FuturesUnordered, StreamExt};
use http::{HeaderMap, StatusCode};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_proto::lease::{Action, Elector, RequestId};
use kube_proto::shard::Shards;

pub use kube_proto::lease::{LeaseConfig, LeaseConfigError, LeaseError, LostReason};
pub use kube_proto::shard::{ShardConfig, ShardEvent as LeaderEvent, ShardKey, shard_of};

use crate::Client;

/// Whether this replica leads, read at any moment. Clones share the state.
#[derive(Clone)]
pub struct Leadership {
    /// Per shard, until when this replica leads it.
    until: Arc<Mutex<Vec<Option<Instant>>>>,
    client: Client,
    key: ShardKey,
}

impl fmt::Debug for Leadership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Leadership").field("leading", &self.leading()).finish_non_exhaustive()
    }
}

impl Leadership {
    fn new(client: Client, shards: u32, key: ShardKey) -> Self {
        Leadership { until: Arc::new(Mutex::new(vec![None; shards as usize])), client, key }
    }

    fn set(&self, shard: usize, until: Option<Instant>) {
        let mut v = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = v.get_mut(shard) {
            *slot = until;
        }
    }

    /// How many shards there are (1 for a single Lease).
    pub fn shards(&self) -> u32 {
        self.until.lock().unwrap_or_else(PoisonError::into_inner).len() as u32
    }

    /// Whether this replica leads shard `shard` now (by the transport's clock).
    pub fn leads(&self, shard: u32) -> bool {
        let now = self.client.now();
        let v = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        v.get(shard as usize).copied().flatten().is_some_and(|d| now < d)
    }

    /// Whether this replica leads now: the Lease of a single election, or any shard.
    pub fn is_leading(&self) -> bool {
        !self.leading().is_empty()
    }

    /// The shards this replica leads now.
    pub fn leading(&self) -> Vec<u32> {
        let now = self.client.now();
        let v = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        (0..v.len() as u32).filter(|i| v[*i as usize].is_some_and(|d| now < d)).collect()
    }

    /// The shard of an object.
    pub fn shard_of(&self, meta: &ObjectMeta) -> u32 {
        self.key.shard(meta, self.shards())
    }

    /// Whether this replica leads the shard of an object now: check it just before acting on
    /// the object.
    pub fn owns(&self, meta: &ObjectMeta) -> bool {
        self.leads(self.shard_of(meta))
    }
}

enum Machine {
    One(Box<Elector>),
    Many(Box<Shards>),
}

impl Machine {
    fn poll(&mut self, now: Instant, wall: std::time::SystemTime) -> Action<LeaderEvent> {
        match self {
            Machine::Many(s) => s.poll(now, wall),
            Machine::One(e) => match e.poll(now, wall) {
                Action::Send(id, r) => Action::Send(id, r),
                Action::Cancel(id) => Action::Cancel(id),
                Action::Emit(ev) => Action::Emit(LeaderEvent::of_shard(0, ev)),
                Action::Error(e) => Action::Error(e),
                Action::Wait { until, reason } => Action::Wait { until, reason },
                Action::Stopped => Action::Stopped,
            },
        }
    }

    fn on_response(&mut self, now: Instant, id: RequestId, status: StatusCode, headers: &HeaderMap, body: &[u8]) {
        match self {
            Machine::One(e) => e.on_response(now, id, status, headers, body),
            Machine::Many(s) => s.on_response(now, id, status, headers, body),
        }
    }

    fn on_transport_error(&mut self, now: Instant, id: RequestId, error: String) {
        match self {
            Machine::One(e) => e.on_transport_error(now, id, error),
            Machine::Many(s) => s.on_transport_error(now, id, error),
        }
    }

    fn release(&mut self, now: Instant) {
        match self {
            Machine::One(e) => e.release(now),
            Machine::Many(s) => s.release(now),
        }
    }

    fn leading_until(&self, shard: u32) -> Option<Instant> {
        match self {
            Machine::One(e) => e.leading_until(),
            Machine::Many(s) => s.leading_until(shard),
        }
    }
}

type Answer = (RequestId, Result<(StatusCode, HeaderMap, Vec<u8>), crate::Error>);

/// Drives a lease or shard machine with a client. See the [module documentation](self).
pub struct LeaderElector {
    client: Client,
    machine: Machine,
    leadership: Leadership,
    shutdown: Option<BoxFuture<'static, ()>>,
}

impl fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderElector").field("leadership", &self.leadership).finish_non_exhaustive()
    }
}

impl LeaderElector {
    /// One leader on one Lease.
    pub fn new(client: Client, config: LeaseConfig) -> Result<Self, LeaseConfigError> {
        let machine = Machine::One(Box::new(Elector::new(config)?));
        let leadership = Leadership::new(client.clone(), 1, ShardKey::Uid);
        Ok(LeaderElector { client, machine, leadership, shutdown: None })
    }

    /// Shards of objects split by `key`, one Lease per shard.
    pub fn sharded(client: Client, config: ShardConfig, key: ShardKey) -> Result<Self, LeaseConfigError> {
        let shards = config.shards;
        let machine = Machine::Many(Box::new(Shards::new(config)?));
        let leadership = Leadership::new(client.clone(), shards, key);
        Ok(LeaderElector { client, machine, leadership, shutdown: None })
    }

    /// The handle that says whether this replica leads (and which shards).
    pub fn leadership(&self) -> Leadership {
        self.leadership.clone()
    }

    /// Gives the Lease(s) back when `signal` completes: leadership stops at once, the holder is
    /// cleared (so a successor need not wait for expiry), then the stream ends.
    #[must_use]
    pub fn shutdown_on(mut self, signal: impl Future<Output = ()> + Send + 'static) -> Self {
        self.shutdown = Some(signal.boxed());
        self
    }

    /// Runs the election: a stream of leadership changes (and of the errors seen, after which
    /// it goes on by itself), which must be polled for the election to run. It ends only after
    /// a shutdown ([`shutdown_on`](Self::shutdown_on)) has given the Leases back.
    pub fn run(self) -> impl Stream<Item = Result<LeaderEvent, LeaseError>> + Send {
        let driver = Driver {
            client: self.client,
            machine: self.machine,
            leadership: self.leadership,
            shutdown: self.shutdown,
            in_flight: FuturesUnordered::new(),
            cancelled: BTreeSet::new(),
            timer: None,
            done: false,
        };
        stream::unfold(driver, |mut d| async move { d.next().await.map(|item| (item, d)) })
    }
}

struct Driver {
    client: Client,
    machine: Machine,
    leadership: Leadership,
    shutdown: Option<BoxFuture<'static, ()>>,
    in_flight: FuturesUnordered<BoxFuture<'static, Answer>>,
    cancelled: BTreeSet<RequestId>,
    timer: Option<(Instant, BoxFuture<'static, ()>)>,
    done: bool,
}

enum Woken {
    Answer(Answer),
    Shutdown,
    Timer,
}

impl Driver {
    /// Mirrors the machine's leadership deadlines into the handle.
    fn publish(&self) {
        for shard in 0..self.leadership.shards() {
            self.leadership.set(shard as usize, self.machine.leading_until(shard));
        }
    }

    async fn next(&mut self) -> Option<Result<LeaderEvent, LeaseError>> {
        if self.done {
            return None;
        }
        loop {
            let now = self.client.now();
            let action = self.machine.poll(now, self.client.transport().wall_clock());
            self.publish();
            match action {
                Action::Send(id, request) => {
                    let client = self.client.clone();
                    self.in_flight.push(
                        async move {
                            let result = match client.send_once(request).await {
                                Ok(resp) => crate::client::collect(resp).await.map_err(crate::Error::Transport),
                                Err(e) => Err(e),
                            };
                            (id, result)
                        }
                        .boxed(),
                    );
                }
                Action::Cancel(id) => {
                    self.cancelled.insert(id);
                }
                Action::Emit(event) => return Some(Ok(event)),
                Action::Error(e) => return Some(Err(e)),
                Action::Stopped => {
                    self.done = true;
                    return None;
                }
                Action::Wait { until, .. } => self.wait(until).await,
            }
        }
    }

    async fn wait(&mut self, until: Instant) {
        let timer = match &mut self.timer {
            Some((at, sleep)) if *at == until => sleep,
            timer => &mut timer.insert((until, self.client.transport().sleep_until(until))).1,
        };
        let shutdown = &mut self.shutdown;
        let in_flight = &mut self.in_flight;
        let woken = poll_fn(|cx| {
            if let Some(signal) = shutdown
                && signal.poll_unpin(cx).is_ready()
            {
                return Poll::Ready(Woken::Shutdown);
            }
            if let Poll::Ready(Some(answer)) = in_flight.poll_next_unpin(cx) {
                return Poll::Ready(Woken::Answer(answer));
            }
            if timer.poll_unpin(cx).is_ready() {
                return Poll::Ready(Woken::Timer);
            }
            Poll::Pending
        })
        .await;
        let now = self.client.now();
        match woken {
            Woken::Timer => self.timer = None,
            Woken::Shutdown => {
                self.shutdown = None;
                self.machine.release(now);
            }
            Woken::Answer((id, result)) => {
                if self.cancelled.remove(&id) {
                    return;
                }
                match result {
                    Ok((status, headers, body)) => self.machine.on_response(now, id, status, &headers, &body),
                    Err(e) => self.machine.on_transport_error(now, id, e.to_string()),
                }
            }
        }
    }
}
