//! Deterministic simulation of leader election and sharded controllers: K replicas, each a
//! `Controller` of ConfigMaps under `leader_election` (one Lease, or S shard Leases), on the
//! fake API server, on simulated true time. Each replica's clock runs at a rate of its own
//! (seeded, within the bound `(L - R) / (L + R)` the lease module documents) from an offset of
//! its own. Seeded faults: partitions (a replica's requests fail), lost answers (a write lands
//! but its answer is lost), latency, and stalls (a replica is not polled at all for up to 25 s,
//! past its renew deadline).
//!
//! Invariants, for every seed:
//! - never two replicas leading one shard at the same true instant (every replica's
//!   `Leadership` handle, read with its own clock, at every step of the simulation), and no
//!   reconcile code runs for an object whose shard its replica does not lead at that instant;
//! - every object maps to the same one shard on every replica;
//! - once the faults stop, every shard is led by exactly one replica, and every object has been
//!   reconciled by its shard's leader;
//! - takeover: when the leader of a shard dies, some other replica leads the shard within
//!   `(lease duration + retry period)` of the death, measured on the slowest live clock, plus
//!   the network's latency.
//!
//! `LEADER_SIM_SEEDS=N` runs N seeds (default 12); `LEADER_SIM_SEED=S` replays one with a trace.

#![allow(clippy::disallowed_methods)] // the simulation takes one origin `Instant::now()`

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::future::BoxFuture;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_proto::config::Config;
use kube_proto::rng::SplitMix64;
use kube_proto::{PostParams, Request, ResourceExt};
use kube_runtime::controller::{Action, Controller};
use kube_runtime::fake::{FAKE_URL, FakeApiServer, FakeConfig, Reply, WatchId, WatchPoll};
use kube_runtime::leader::{LeaderElector, Leadership, LeaseConfig, ShardConfig, ShardKey};
use kube_runtime::{Api, Client, Transport, TransportError, TransportResponse, watcher};
use serde_json::json;

const L: Duration = Duration::from_secs(15);
const R: Duration = Duration::from_secs(10);
const P: Duration = Duration::from_secs(2);

/// True time and what waits on it.
struct World {
    t0: Instant,
    now: Instant,
    timers: Vec<(Instant, Waker)>,
    watches: Vec<Waker>,
    rng: SplitMix64,
    latency: Duration,
    lose_answers: f64,
}

#[derive(Clone)]
struct Shared {
    server: Arc<Mutex<FakeApiServer>>,
    world: Arc<Mutex<World>>,
}

impl Shared {
    fn now(&self) -> Instant {
        self.world.lock().unwrap().now
    }

    fn wake_watches(&self) {
        for w in std::mem::take(&mut self.world.lock().unwrap().watches) {
            w.wake();
        }
    }

    /// Moves true time to the earliest timer, no later than `limit`, and wakes what is due.
    fn advance(&self, limit: Instant) {
        let mut w = self.world.lock().unwrap();
        let next = w.timers.iter().map(|(t, _)| *t).min().unwrap_or(limit).min(limit);
        w.now = w.now.max(next);
        let now = w.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut w.timers).into_iter().partition(|(t, _)| *t <= now);
        w.timers = later;
        drop(w);
        for (_, waker) in due {
            waker.wake();
        }
    }
}

/// Sleeps until a true instant.
struct Sleep {
    world: Arc<Mutex<World>>,
    until: Instant,
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut w = self.world.lock().unwrap();
        if w.now >= self.until {
            return Poll::Ready(());
        }
        w.timers.push((self.until, cx.waker().clone()));
        Poll::Pending
    }
}

/// One replica's view: its own clock, its own link to the server.
#[derive(Clone)]
struct Node {
    shared: Shared,
    /// How fast the clock runs against true time.
    rate: f64,
    /// Where the clock starts (any offset: clocks are never compared).
    offset: Duration,
    link: Arc<Mutex<Link>>,
}

#[derive(Default)]
struct Link {
    partitioned: bool,
}

impl Node {
    fn local(&self, t: Instant) -> Instant {
        let t0 = self.shared.world.lock().unwrap().t0;
        t0 + Duration::from_secs(100_000) + self.offset + (t - t0).mul_f64(self.rate)
    }

    fn true_of(&self, local: Instant) -> Instant {
        let t0 = self.shared.world.lock().unwrap().t0;
        let since = local.saturating_duration_since(t0 + Duration::from_secs(100_000) + self.offset);
        // Rounded up, so that the clock reads at least `local` when a sleep until it ends.
        t0 + since.div_f64(self.rate) + Duration::from_micros(1)
    }
}

impl Transport for Node {
    fn send(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<TransportResponse, TransportError>> {
        let (lose, until) = {
            let mut w = self.shared.world.lock().unwrap();
            let p = w.lose_answers;
            let lose = w.rng.chance(p);
            (lose, w.now + w.latency)
        };
        let world = self.shared.world.clone();
        if self.link.lock().unwrap().partitioned {
            return Box::pin(async move {
                Sleep { world, until }.await;
                Err(TransportError::Connect { url: FAKE_URL.into(), message: "partitioned".into() })
            });
        }
        let writes = request.method() != http::Method::GET;
        let now = self.shared.now();
        let reply = self.shared.server.lock().unwrap().handle(now, &request);
        if writes {
            self.shared.wake_watches();
        }
        let shared = self.shared.clone();
        Box::pin(async move {
            Sleep { world, until }.await;
            match reply {
                // A write landed, but its answer was lost on the way back.
                Reply::Response(_) if lose && writes => Err(TransportError::Closed("answer lost".into())),
                Reply::Response(resp) => {
                    let (parts, body) = resp.into_parts();
                    Ok(TransportResponse::full(parts.status, parts.headers, body))
                }
                Reply::Watch { id, head } => {
                    let (parts, ()) = head.into_parts();
                    Ok(TransportResponse::streaming(parts.status, parts.headers, WatchBody { shared, id, done: false }))
                }
                Reply::Upgrade { .. } => panic!("no upgrades here"),
            }
        })
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(Sleep { world: self.shared.world.clone(), until: self.true_of(deadline) })
    }

    fn now(&self) -> Instant {
        self.local(self.shared.now())
    }

    fn wall_clock(&self) -> SystemTime {
        let local = self.now();
        let t0 = self.shared.world.lock().unwrap().t0;
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + (local - t0)
    }
}

struct WatchBody {
    shared: Shared,
    id: WatchId,
    done: bool,
}

impl Stream for WatchBody {
    type Item = Result<Bytes, TransportError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let now = self.shared.now();
        let poll = self.shared.server.lock().unwrap().poll_watch(self.id, now);
        match poll {
            WatchPoll::Data(d) => Poll::Ready(Some(Ok(Bytes::from(d)))),
            WatchPoll::Finished(d) => {
                self.done = true;
                Poll::Ready(if d.is_empty() { None } else { Some(Ok(Bytes::from(d))) })
            }
            WatchPoll::Pending(at) => {
                let mut w = self.shared.world.lock().unwrap();
                w.watches.push(cx.waker().clone());
                if let Some(at) = at {
                    w.timers.push((at, cx.waker().clone()));
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for WatchBody {
    fn drop(&mut self) {
        self.shared.server.lock().unwrap().cancel_watch(self.id);
    }
}

/// What every replica's reconciles did, and the handles to check them against.
struct Log {
    shared: Shared,
    handles: Mutex<Vec<Option<Leadership>>>,
    /// `(replica, object, shard, true time)` of every reconcile step.
    steps: Mutex<Vec<(usize, String, u32, Instant)>>,
    violations: Mutex<Vec<String>>,
}

impl Log {
    /// Who leads each shard now (by every live replica's own handle).
    fn leaders(&self) -> BTreeMap<u32, Vec<usize>> {
        let mut by = BTreeMap::<u32, Vec<usize>>::new();
        for (i, h) in self.handles.lock().unwrap().iter().enumerate() {
            if let Some(h) = h {
                for s in h.leading() {
                    by.entry(s).or_default().push(i);
                }
            }
        }
        by
    }
}

struct Ctx {
    replica: usize,
    client: Client,
    leadership: Leadership,
    log: Arc<Log>,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

/// A reconcile that "acts" twice (at its start and after some work), checking at each step
/// that its replica, and no other, leads the object's shard at that true instant.
async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, Never> {
    let shard = ctx.leadership.shard_of(&cm.metadata);
    let act = |what: &str| {
        let now = ctx.log.shared.now();
        let leaders = ctx.log.leaders().remove(&shard).unwrap_or_default();
        if leaders != vec![ctx.replica] {
            ctx.log.violations.lock().unwrap().push(format!(
                "replica {} {what} {} (shard {shard}) at {:?} while the leaders were {leaders:?}",
                ctx.replica,
                cm.name_any(),
                now - ctx.log.shared.world.lock().unwrap().t0
            ));
        }
        ctx.log.steps.lock().unwrap().push((ctx.replica, cm.name_any(), shard, now));
    };
    act("started");
    let work = Duration::from_millis(ctx.log.shared.world.lock().unwrap().rng.below(3000));
    ctx.client.transport().sleep_until(ctx.client.now() + work).await;
    act("wrote");
    Ok(Action::requeue(Duration::from_secs(7)))
}

fn error_policy(_: Arc<ConfigMap>, _: &Never, _: Arc<Ctx>) -> Action {
    Action::await_change()
}

type Run = Pin<Box<dyn Stream<Item = ()> + Send>>;

struct Replica {
    node: Node,
    run: Option<Run>,
    stalled_until: Option<Instant>,
}

fn run_seed(seed: u64, trace: bool) -> Result<String, String> {
    let t0 = Instant::now();
    let mut rng = SplitMix64::new(seed);
    let server = FakeApiServer::new(FakeConfig { seed, ..FakeConfig::default() }, t0);
    let world = World {
        t0,
        now: t0,
        timers: Vec::new(),
        watches: Vec::new(),
        rng: SplitMix64::new(seed ^ 0x1EAD),
        latency: Duration::from_millis(20),
        lose_answers: 0.0,
    };
    let shared = Shared { server: Arc::new(Mutex::new(server)), world: Arc::new(Mutex::new(world)) };
    let k = 2 + rng.below(3) as usize;
    let sharded = seed % 2 == 1;
    let shards = if sharded { 1 + rng.below(6) as u32 } else { 1 };
    let bound = (L - R).as_secs_f64() / (L + R).as_secs_f64();
    let log = Arc::new(Log {
        shared: shared.clone(),
        handles: Mutex::new(vec![None; k]),
        steps: Mutex::default(),
        violations: Mutex::default(),
    });
    // The objects, before anyone starts.
    let names: Vec<String> = (0..10).map(|i| format!("cm-{i}")).collect();
    for name in &names {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        let req = Request::namespaced::<ConfigMap>("default").create(&PostParams::default(), &cm).unwrap();
        shared.server.lock().unwrap().handle(t0, &req);
    }
    let mut replicas: Vec<Replica> = Vec::new();
    let mut rates = Vec::new();
    for i in 0..k {
        // Drift within 95% of the bound, either way.
        let rate = 1.0 + (rng.next_f64() * 2.0 - 1.0) * bound * 0.95;
        rates.push(rate);
        let node =
            Node { shared: shared.clone(), rate, offset: Duration::from_secs(rng.below(86_400)), link: Arc::default() };
        let client = Client::new(node.clone(), Config::new(FAKE_URL.parse().unwrap())).unwrap();
        let identity = format!("replica-{i}");
        let elector = if sharded {
            let config = ShardConfig::new("default", "sim", identity, shards).timings(L, R, P);
            LeaderElector::sharded(client.clone(), config, ShardKey::Uid).unwrap()
        } else {
            let config = LeaseConfig::new("default", "sim", identity).timings(L, R, P);
            LeaderElector::new(client.clone(), config).unwrap()
        };
        let leadership = elector.leadership();
        log.handles.lock().unwrap()[i] = Some(leadership.clone());
        let ctx = Arc::new(Ctx { replica: i, client: client.clone(), leadership, log: log.clone() });
        let cms: Api<ConfigMap> = Api::namespaced(client, "default");
        let run =
            Controller::new(cms, watcher::Config::default()).leader_election(elector).run(reconcile, error_policy, ctx);
        let run = futures_util::StreamExt::map(run, |_| ());
        replicas.push(Replica { node, run: Some(Box::pin(run)), stalled_until: None });
    }
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let mut step = |replicas: &mut Vec<Replica>, limit: Instant| {
        let now = shared.now();
        for r in replicas.iter_mut() {
            if r.stalled_until.is_some_and(|t| now < t) {
                continue;
            }
            r.stalled_until = None;
            if let Some(run) = &mut r.run {
                for _ in 0..10_000 {
                    match run.as_mut().poll_next(&mut cx) {
                        Poll::Ready(Some(())) => continue,
                        Poll::Ready(None) => panic!("a controller ended"),
                        Poll::Pending => break,
                    }
                }
            }
        }
        // Two leaders of one shard at this instant?
        for (shard, leaders) in log.leaders() {
            if leaders.len() > 1 {
                log.violations.lock().unwrap().push(format!("shard {shard} led by {leaders:?} at {:?}", now - t0));
            }
        }
        // Wake stalled replicas on time.
        let limit = replicas.iter().filter_map(|r| r.stalled_until).fold(limit, Instant::min);
        shared.advance(limit.min(now + Duration::from_millis(500)));
    };
    let check = |what: &str| -> Result<(), String> {
        match log.violations.lock().unwrap().first() {
            Some(v) => Err(format!("{what}: {v} (rates {rates:?})")),
            None => Ok(()),
        }
    };

    // Phase 1: faults.
    let chaos_end = t0 + Duration::from_secs(60 + rng.below(60));
    while shared.now() < chaos_end {
        if rng.chance(0.02) {
            let i = rng.below(k as u64) as usize;
            let now = shared.now();
            match rng.below(4) {
                0 => {
                    let mut link = replicas[i].node.link.lock().unwrap();
                    link.partitioned = !link.partitioned;
                }
                1 => replicas[i].stalled_until = Some(now + Duration::from_millis(1000 + rng.below(24_000))),
                2 => shared.world.lock().unwrap().latency = Duration::from_millis(5 + rng.below(1500)),
                _ => shared.world.lock().unwrap().lose_answers = rng.next_f64() * 0.3,
            }
            if trace {
                eprintln!("{:?} fault on replica {i}", now - t0);
            }
        }
        step(&mut replicas, chaos_end);
    }
    check("under faults")?;

    // Phase 2: healed. Everything settles.
    for r in &mut replicas {
        r.node.link.lock().unwrap().partitioned = false;
    }
    {
        let mut w = shared.world.lock().unwrap();
        w.latency = Duration::from_millis(20);
        w.lose_answers = 0.0;
    }
    let settle = shared.now() + Duration::from_secs(60);
    while shared.now() < settle {
        step(&mut replicas, settle);
    }
    check("settling")?;
    let leaders = log.leaders();
    for s in 0..shards {
        if leaders.get(&s).map(Vec::len) != Some(1) {
            return Err(format!("after the faults, shard {s} is led by {:?}", leaders.get(&s)));
        }
    }
    // Every object maps to one shard everywhere, and was reconciled by that shard's leader.
    let settled_at = shared.now() - Duration::from_secs(30);
    let objects: Vec<ConfigMap> = {
        let req = Request::namespaced::<ConfigMap>("default").list(&Default::default()).unwrap();
        let Reply::Response(resp) = shared.server.lock().unwrap().handle(shared.now(), &req) else { panic!() };
        kube_proto::Response::from_http(&resp).list::<ConfigMap>().unwrap().items
    };
    let handles: Vec<Leadership> = log.handles.lock().unwrap().iter().flatten().cloned().collect();
    for cm in &objects {
        let mapped: Vec<u32> = handles.iter().map(|h| h.shard_of(&cm.metadata)).collect();
        if mapped.iter().any(|s| *s != mapped[0]) {
            return Err(format!("{} maps to shards {mapped:?}", cm.name_any()));
        }
        let leader = leaders[&mapped[0]][0];
        let steps = log.steps.lock().unwrap();
        if !steps.iter().any(|(r, n, _, t)| *r == leader && *n == cm.name_any() && *t >= settled_at) {
            return Err(format!("{} (shard {}) was not reconciled by its leader {leader}", cm.name_any(), mapped[0]));
        }
    }

    // Phase 3: the leader of shard 0 dies; its shards are taken over in time.
    let dead = leaders[&0][0];
    let orphaned: Vec<u32> = leaders.iter().filter(|(_, l)| l[0] == dead).map(|(s, _)| *s).collect();
    replicas[dead].run = None;
    log.handles.lock().unwrap()[dead] = None;
    let died = shared.now();
    let slowest = rates.iter().enumerate().filter(|(i, _)| *i != dead).map(|(_, r)| *r).fold(f64::MAX, f64::min);
    let allowed = (L + P).div_f64(slowest) + Duration::from_secs(1);
    let mut taken = BTreeMap::new();
    while shared.now() < died + allowed + Duration::from_secs(30) && taken.len() < orphaned.len() {
        step(&mut replicas, died + allowed + Duration::from_secs(30));
        let now = shared.now();
        for (s, l) in log.leaders() {
            if orphaned.contains(&s) && !l.is_empty() {
                taken.entry(s).or_insert(now - died);
            }
        }
    }
    check("after a death")?;
    for s in &orphaned {
        match taken.get(s) {
            Some(took) if *took <= allowed => {}
            other => {
                return Err(format!(
                    "shard {s} of dead replica {dead} taken over after {other:?}, allowed {allowed:?} (rates {rates:?})"
                ));
            }
        }
    }
    let reconciles = log.steps.lock().unwrap().len();
    Ok(format!("{k} replicas, {shards} shards, {reconciles} reconcile steps, takeover {taken:?}"))
}

#[test]
fn one_leader_per_shard_at_every_instant_and_prompt_takeover() {
    let seeds: Vec<u64> = match std::env::var("LEADER_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("a seed")],
        Err(_) => {
            let n = std::env::var("LEADER_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
            (0..n).collect()
        }
    };
    let trace = seeds.len() == 1;
    for seed in &seeds {
        match run_seed(*seed, trace) {
            Ok(summary) => {
                if trace {
                    eprintln!("seed {seed}: {summary}");
                }
            }
            Err(e) => panic!("seed {seed}: {e} (replay: LEADER_SIM_SEED={seed})"),
        }
    }
}
