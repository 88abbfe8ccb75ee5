//! Deterministic simulation of the Controller: a controller with a finalizer against the fake
//! API server on simulated time, under a seeded workload of creates, changes and deletions and
//! seeded faults (failed requests, dropped watches, failed reconciles, compaction). Nothing
//! sleeps: the transport's clock jumps to the next timer.
//!
//! Invariants, for every seed:
//! - one object is never reconciled twice at once;
//! - once faults stop and the workload is done, the latest version of every object has been
//!   reconciled;
//! - no finalizer leaks: every deleted object is gone (none stuck with a deletionTimestamp);
//! - a graceful shutdown lets the running reconciles finish and starts no other;
//! - per-object backoff: after a failed reconcile of an object, its next reconcile starts no
//!   sooner than the delay asked for (the error policy's `requeue(d)`, or, for
//!   `await_change()`, the queue's exponential backoff: `failure_base` doubled per consecutive
//!   failure, at most `failure_max`), unless a change of the object was delivered to the
//!   controller since the failed reconcile started (any watch event of it: the workload's
//!   writes, the controller's own finalizer patches, a relist's replay);
//! - the overall retry limit: the retries (reconciles of an object after a failure with no
//!   change of it in between) that start in any window of time number at most
//!   `retry_burst + retry_rate × the window's length`.
//!
//! Each seed draws its queue's settings (backoff base and cap, retry rate and burst) small
//! enough that the limits bind, how often its reconciles fail, and its error policy's answer
//! per failure. The deliveries are seen through a subscriber of the controller's store: the
//! controller receives each event in the same poll, so at the same simulated instant.
//!
//! `CONTROLLER_SIM_SEEDS=N` runs N seeds (default 2000, about 30 s); `CONTROLLER_SIM_SEED=S` replays one.

#![allow(clippy::disallowed_methods)] // the simulation takes one origin `Instant::now()`

use std::collections::{BTreeMap, BTreeSet};
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
use kube_proto::workqueue::WorkQueueConfig;
use kube_proto::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Request, ResourceExt, Response};
use kube_runtime::controller::{Action, Controller};
use kube_runtime::fake::{FAKE_URL, FakeApiServer, FakeConfig, Reply, WatchId, WatchPoll};
use kube_runtime::finalizer::{Event, FinalizerError, finalizer};
use kube_runtime::reflector::store_shared;
use kube_runtime::{Api, Client, Transport, TransportError, TransportResponse, watcher};
use serde_json::json;

const FINALIZER: &str = "sim.example.com/cleanup";

/// Simulated time and what waits on it.
struct Reactor {
    t0: Instant,
    now: Instant,
    timers: Vec<(Instant, Waker)>,
    /// Watch bodies waiting for a write.
    watches: Vec<Waker>,
    rng: SplitMix64,
    faults: bool,
    /// Faults injected.
    injected: u64,
}

#[derive(Clone)]
struct Sim {
    server: Arc<Mutex<FakeApiServer>>,
    reactor: Arc<Mutex<Reactor>>,
}

impl Sim {
    fn wake_watches(&self) {
        for w in std::mem::take(&mut self.reactor.lock().unwrap().watches) {
            w.wake();
        }
    }

    fn chance(&self, p: f64) -> bool {
        let mut r = self.reactor.lock().unwrap();
        let hit = r.faults && r.rng.chance(p);
        r.injected += u64::from(hit);
        hit
    }

    /// Sends a request to the server directly (the workload's writes), waking the watches.
    fn write(&self, req: http::Request<Vec<u8>>) -> http::StatusCode {
        let now = self.reactor.lock().unwrap().now;
        let reply = self.server.lock().unwrap().handle(now, &req);
        self.wake_watches();
        match reply {
            Reply::Response(r) => r.status(),
            Reply::Watch { .. } => http::StatusCode::OK,
            Reply::Upgrade { head, .. } => head.status(),
        }
    }

    /// The ConfigMaps of the server: name, resourceVersion, whether being deleted.
    fn state(&self) -> BTreeMap<String, (String, bool)> {
        let now = self.reactor.lock().unwrap().now;
        let req = Request::namespaced::<ConfigMap>("default").list(&ListParams::default()).unwrap();
        let Reply::Response(resp) = self.server.lock().unwrap().handle(now, &req) else { panic!("a list") };
        let list = Response::from_http(&resp).list::<ConfigMap>().unwrap();
        list.items
            .iter()
            .map(|c| (c.name_any(), (c.resource_version().unwrap_or_default().to_owned(), c.is_terminating())))
            .collect()
    }

    /// Moves time to the earliest timer (no later than `limit`) and wakes what is due.
    fn advance(&self, limit: Instant) {
        let mut r = self.reactor.lock().unwrap();
        let next = r.timers.iter().map(|(t, _)| *t).min().unwrap_or(limit).min(limit);
        r.now = r.now.max(next);
        let now = r.now;
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut r.timers).into_iter().partition(|(t, _)| *t <= now);
        r.timers = later;
        drop(r);
        for (_, w) in due {
            w.wake();
        }
    }
}

struct Sleep {
    reactor: Arc<Mutex<Reactor>>,
    deadline: Instant,
}

impl Future for Sleep {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut r = self.reactor.lock().unwrap();
        if r.now >= self.deadline {
            return Poll::Ready(());
        }
        r.timers.push((self.deadline, cx.waker().clone()));
        Poll::Pending
    }
}

impl Transport for Sim {
    fn send(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<TransportResponse, TransportError>> {
        if self.chance(0.03) {
            let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected","reason":"InternalError","code":500}"#;
            return Box::pin(async {
                Ok(TransportResponse::full(http::StatusCode::INTERNAL_SERVER_ERROR, Default::default(), body.to_vec()))
            });
        }
        let writes = request.method() != http::Method::GET;
        let now = self.now();
        let reply = self.server.lock().unwrap().handle(now, &request);
        if writes {
            self.wake_watches();
        }
        let sim = self.clone();
        Box::pin(async move {
            Ok(match reply {
                Reply::Response(resp) => {
                    let (parts, body) = resp.into_parts();
                    TransportResponse::full(parts.status, parts.headers, body)
                }
                Reply::Watch { id, head } => {
                    let (parts, ()) = head.into_parts();
                    TransportResponse::streaming(parts.status, parts.headers, WatchBody { sim, id, done: false })
                }
                Reply::Upgrade { .. } => panic!("the simulated controller execs into nothing"),
            })
        })
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(Sleep { reactor: self.reactor.clone(), deadline })
    }

    fn now(&self) -> Instant {
        self.reactor.lock().unwrap().now
    }

    fn wall_clock(&self) -> SystemTime {
        let r = self.reactor.lock().unwrap();
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + (r.now - r.t0)
    }
}

struct WatchBody {
    sim: Sim,
    id: WatchId,
    done: bool,
}

impl Stream for WatchBody {
    type Item = Result<Bytes, TransportError>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.sim.chance(0.01) {
            // A dropped connection.
            self.done = true;
            return Poll::Ready(Some(Err(TransportError::Closed("injected".into()))));
        }
        let now = self.sim.now();
        let poll = self.sim.server.lock().unwrap().poll_watch(self.id, now);
        match poll {
            WatchPoll::Data(d) => Poll::Ready(Some(Ok(Bytes::from(d)))),
            WatchPoll::Finished(d) => {
                self.done = true;
                Poll::Ready(if d.is_empty() { None } else { Some(Ok(Bytes::from(d))) })
            }
            WatchPoll::Pending(at) => {
                let mut r = self.sim.reactor.lock().unwrap();
                r.watches.push(cx.waker().clone());
                if let Some(at) = at {
                    r.timers.push((at, cx.waker().clone()));
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for WatchBody {
    fn drop(&mut self) {
        self.sim.server.lock().unwrap().cancel_watch(self.id);
    }
}

/// One reconcile of an object.
struct Attempt {
    start: Instant,
    end: Option<Instant>,
    /// The error policy's answer when it failed: `Some(requeue_after)`.
    failed: Option<Option<Duration>>,
}

/// What the reconciles did.
#[derive(Default)]
struct Record {
    running: BTreeSet<String>,
    overlaps: Vec<String>,
    /// The resourceVersions reconciled (Apply) per object.
    applied: BTreeMap<String, Vec<String>>,
    started: u64,
    finished: u64,
    /// Every reconcile, per object, in order.
    attempts: BTreeMap<String, Vec<Attempt>>,
    /// When a watch event of each object was delivered to the controller.
    changes: BTreeMap<String, Vec<Instant>>,
}

struct Ctx {
    sim: Sim,
    client: Client,
    record: Mutex<Record>,
    /// How often a reconcile fails while faults are on.
    failure_rate: f64,
}

#[derive(Debug, thiserror::Error)]
#[error("injected reconcile failure")]
struct Injected;

async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, FinalizerError<Injected>> {
    let name = cm.name_any();
    {
        let mut r = ctx.record.lock().unwrap();
        if !r.running.insert(name.clone()) {
            r.overlaps.push(name.clone());
        }
        r.started += 1;
        let start = ctx.sim.now();
        r.attempts.entry(name.clone()).or_default().push(Attempt { start, end: None, failed: None });
    }
    let took = Duration::from_millis(ctx.sim.reactor.lock().unwrap().rng.below(300));
    ctx.client.transport().sleep_until(ctx.client.now() + took).await;
    let fail = ctx.sim.chance(ctx.failure_rate);
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), "default");
    let version = cm.resource_version().unwrap_or_default().to_owned();
    let record = &ctx.record;
    let result = finalizer(&api, FINALIZER, cm, |event| {
        let apply = matches!(event, Event::Apply(_));
        let (name, version) = (name.clone(), version.clone());
        async move {
            if fail {
                return Err(Injected);
            }
            if apply {
                record.lock().unwrap().applied.entry(name).or_default().push(version);
            }
            Ok(Action::await_change())
        }
    })
    .await;
    let mut r = ctx.record.lock().unwrap();
    r.running.remove(&name);
    r.finished += 1;
    let end = ctx.sim.now();
    r.attempts.get_mut(&name).and_then(|a| a.last_mut()).expect("recorded at the start").end = Some(end);
    result
}

/// Retries after a delay of its own half the time, else leaves it to the queue's backoff.
fn error_policy(cm: Arc<ConfigMap>, _e: &FinalizerError<Injected>, ctx: Arc<Ctx>) -> Action {
    let action = {
        let mut r = ctx.sim.reactor.lock().unwrap();
        if r.rng.chance(0.5) {
            Action::requeue(Duration::from_millis(r.rng.below(400)))
        } else {
            Action::await_change()
        }
    };
    let mut r = ctx.record.lock().unwrap();
    let attempt = r.attempts.get_mut(&cm.name_any()).and_then(|a| a.last_mut()).expect("a failed reconcile");
    attempt.failed = Some(action.requeue_after());
    action
}

/// Whether a change of the object was delivered in `[from, to]` (the ends included: within one
/// instant the order is not known, so the check gives the benefit of the doubt).
fn changed_between(changes: &[Instant], from: Instant, to: Instant) -> bool {
    changes.iter().any(|t| (from..=to).contains(t))
}

/// The per-object backoff and the overall retry limit (see the module docs); `Err` names the
/// first violation.
fn check_rate_limits(record: &Record, queue: &WorkQueueConfig, t0: Instant) -> Result<usize, String> {
    let no_changes = Vec::new();
    let mut retries = Vec::new();
    for (name, attempts) in &record.attempts {
        let changes = record.changes.get(name).unwrap_or(&no_changes);
        // Consecutive failures since the last success or change: never more than the queue
        // counts (it resets on a success, or when the object leaves the store, which a change
        // always follows before the object is reconciled again).
        let mut failures = 0u32;
        for pair in attempts.windows(2) {
            let (failed, next) = (&pair[0], &pair[1]);
            let Some(policy) = failed.failed else {
                failures = 0;
                continue;
            };
            let end = failed.end.expect("a failed reconcile ended");
            failures += 1;
            if changed_between(changes, failed.start, next.start) {
                failures = 0;
                continue;
            }
            let backoff = policy.unwrap_or_else(|| {
                let exp = queue.failure_base.as_secs_f64() * 2f64.powi(failures as i32 - 1);
                Duration::from_secs_f64(exp.min(queue.failure_max.as_secs_f64()))
            });
            let waited = next.start - end;
            if waited + Duration::from_micros(1) < backoff {
                return Err(format!(
                    "{name} failed at {:?} ({failures} in a row, policy {policy:?}) and ran again {waited:?} later \
                     with no change in between: the backoff is {backoff:?}",
                    end - t0
                ));
            }
            retries.push((next.start, name.as_str(), end, policy));
        }
    }
    retries.sort();
    let (rate, burst) = (queue.retry_rate, f64::from(queue.retry_burst));
    for (i, (from, ..)) in retries.iter().enumerate() {
        for (j, (to, ..)) in retries.iter().enumerate().skip(i) {
            let allowed = burst + rate * (*to - *from).as_secs_f64();
            if (j - i + 1) as f64 > allowed + 1e-9 {
                let which: Vec<String> = retries[i..=j]
                    .iter()
                    .map(|(at, name, failed, policy)| {
                        format!("{name} at {:?} (failed at {:?}, policy {policy:?})", *at - t0, *failed - t0)
                    })
                    .collect();
                return Err(format!(
                    "{} retries started within {:?}: the bucket ({rate}/s, burst {burst}) allows {allowed:.2}: {}",
                    j - i + 1,
                    *to - *from,
                    which.join(", ")
                ));
            }
        }
    }
    Ok(retries.len())
}

/// Runs one seed; returns a description of the first violated invariant.
fn run_seed(seed: u64, trace: bool) -> Result<String, String> {
    let t0 = Instant::now();
    let mut rng = SplitMix64::new(seed);
    let server = FakeApiServer::new(FakeConfig { seed, ..FakeConfig::default() }, t0);
    let reactor = Reactor {
        t0,
        now: t0,
        timers: Vec::new(),
        watches: Vec::new(),
        rng: SplitMix64::new(seed ^ 0xFA17),
        faults: true,
        injected: 0,
    };
    let sim = Sim { server: Arc::new(Mutex::new(server)), reactor: Arc::new(Mutex::new(reactor)) };
    let client = Client::new(sim.clone(), Config::new(FAKE_URL.parse().unwrap())).unwrap();
    let failure_rate = *rng.pick(&[0.1, 0.3, 0.6]).unwrap();
    let ctx = Arc::new(Ctx { sim: sim.clone(), client: client.clone(), record: Mutex::default(), failure_rate });
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let config = watcher::Config { timeout: *rng.pick(&[5, 30, 290]).unwrap(), ..watcher::Config::default() };
    let (stop, stopped) = futures_channel::oneshot::channel::<()>();
    // Limits small enough to bind in a run of a few dozen writes.
    let queue = WorkQueueConfig {
        failure_base: Duration::from_millis(*rng.pick(&[5, 50, 200]).unwrap()),
        failure_max: Duration::from_millis(*rng.pick(&[400, 3000]).unwrap()),
        retry_rate: *rng.pick(&[0.5, 2.0, 10.0]).unwrap(),
        retry_burst: 1 + rng.below(4) as u32,
        ..WorkQueueConfig::default()
    };
    // A store with a subscriber, to see what is delivered to the controller and when.
    let (store, mut writer) = store_shared::<ConfigMap>(1 << 16);
    let mut delivered = writer.subscribe();
    let controller = Controller::for_store(cms, config, store, writer)
        .queue_config(queue.clone())
        .concurrency(1 + rng.below(4) as usize)
        .graceful_shutdown_on(async move {
            let _ = stopped.await;
        });
    let results = Box::pin(controller.run(reconcile, error_policy, ctx.clone()));
    let waker = Waker::noop();
    let mut cx = Context::from_waker(waker);
    let mut ended = false;
    let record_ctx = ctx.clone();
    let mut pump = |results: &mut Pin<Box<dyn Stream<Item = _> + Send>>, ended: &mut bool| {
        // Poll until the controller waits (each poll may start and finish reconciles).
        for _ in 0..10_000 {
            match results.as_mut().poll_next(&mut cx) {
                Poll::Ready(Some(_)) => continue,
                Poll::Ready(None) => {
                    *ended = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        // What the controller was handed meanwhile, all at this instant.
        let now = record_ctx.sim.now();
        let mut r = record_ctx.record.lock().unwrap();
        while let Ok(event) = delivered.try_recv() {
            if let watcher::Event::Apply(o) | watcher::Event::InitApply(o) | watcher::Event::Delete(o) = event {
                r.changes.entry(o.name_any()).or_default().push(now);
            }
        }
    };
    let mut results: Pin<Box<dyn Stream<Item = _> + Send>> = results;

    // The workload: writes at random times while faults are on.
    let steps = 20 + rng.below(30);
    let mut next_write = t0;
    for step in 0..steps {
        while sim.now() < next_write {
            pump(&mut results, &mut ended);
            sim.advance(next_write);
        }
        let name = format!("cm-{}", rng.below(8));
        let ns = Request::namespaced::<ConfigMap>("default");
        let status = match rng.below(10) {
            0..=3 => {
                let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
                sim.write(ns.create(&PostParams::default(), &cm).unwrap())
            }
            4..=7 => sim.write(
                ns.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"data": {"step": step.to_string()}})))
                    .unwrap(),
            ),
            8 => sim.write(ns.delete(&name, &DeleteParams::default()).unwrap()),
            _ => {
                sim.server.lock().unwrap().compact();
                http::StatusCode::OK
            }
        };
        if trace {
            eprintln!("{:?} step {step} {name}: {status}", sim.now() - t0);
        }
        next_write = sim.now() + Duration::from_millis(rng.below(2000));
    }
    // Faults stop; let everything settle for ten simulated minutes.
    sim.reactor.lock().unwrap().faults = false;
    let settle = sim.now() + Duration::from_secs(600);
    while sim.now() < settle && !ended {
        pump(&mut results, &mut ended);
        sim.advance(settle);
    }
    pump(&mut results, &mut ended);
    let record = ctx.record.lock().unwrap();
    if !record.overlaps.is_empty() {
        return Err(format!("reconciled twice at once: {:?}", record.overlaps));
    }
    for (name, (version, terminating)) in sim.state() {
        if terminating {
            return Err(format!("{name} is stuck being deleted: a finalizer leaked"));
        }
        if record.applied.get(&name).and_then(|v| v.last()) != Some(&version) {
            return Err(format!("{name} at {version} was never reconciled (last: {:?})", record.applied.get(&name)));
        }
    }
    let retries = check_rate_limits(&record, &queue, t0)?;
    let (started_before, injected) = (record.started, sim.reactor.lock().unwrap().injected);
    drop(record);

    // A change, then a graceful shutdown while its reconcile may run.
    let ns = Request::namespaced::<ConfigMap>("default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "last"}})).unwrap();
    sim.write(ns.create(&PostParams::default(), &cm).unwrap());
    pump(&mut results, &mut ended);
    let _ = stop.send(());
    let started_at_stop = ctx.record.lock().unwrap().started;
    let give_up = sim.now() + Duration::from_secs(60);
    while !ended && sim.now() < give_up {
        pump(&mut results, &mut ended);
        sim.advance(give_up);
    }
    let record = ctx.record.lock().unwrap();
    if !ended {
        return Err("the controller did not end after the shutdown signal".into());
    }
    if record.started != started_at_stop {
        return Err(format!("{} reconciles started after the shutdown signal", record.started - started_at_stop));
    }
    if record.started != record.finished {
        return Err("a reconcile was cut short by the shutdown".into());
    }
    Ok(format!("{started_before} reconciles, {injected} faults, {retries} retries"))
}

#[test]
fn the_controller_converges_and_keeps_its_rules_under_faults() {
    let seeds: Vec<u64> = match std::env::var("CONTROLLER_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("a seed")],
        Err(_) => {
            let n = std::env::var("CONTROLLER_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
            (0..n).collect()
        }
    };
    let trace = seeds.len() == 1;
    let (mut reconciles, mut faults, mut retries) = (0u64, 0u64, 0u64);
    for seed in &seeds {
        match run_seed(*seed, trace) {
            Ok(summary) => {
                let numbers: Vec<u64> = summary.split_whitespace().filter_map(|w| w.parse().ok()).collect();
                reconciles += numbers[0];
                faults += numbers[1];
                retries += numbers[2];
            }
            Err(e) => panic!("seed {seed}: {e} (replay: CONTROLLER_SIM_SEED={seed})"),
        }
    }
    eprintln!(
        "{} seeds: {reconciles} reconciles, {retries} retries, {faults} faults injected, every invariant held",
        seeds.len()
    );
    assert!(reconciles > 0 && retries > 0);
}
