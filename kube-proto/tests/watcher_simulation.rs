//! Deterministic simulation: the watcher against the fake API server under seeded random
//! workloads and fault schedules, in simulated time.
//!
//! Invariants, for every seed:
//! - once faults stop and the watcher quiesces, the objects folded from its events equal the
//!   server's state exactly (for the watcher's selector);
//! - the resourceVersions the watcher resumes from never go backwards, and no object is ever
//!   emitted at an older version after a newer one;
//! - every backoff delay stays within the configured bounds (or the server's Retry-After);
//! - the reflector's store, fed the same events, then holds the server's objects, each equal to
//!   the server's, with every index as recomputed; on every other seed the objects it replaces
//!   go back to the watcher, which decodes the next watch event over them.
//!
//! `SIM_SEEDS=N` runs N seeds (default 1000); `SIM_SEED=S` replays one seed, printing its trace
//! with `SIM_TRACE=1`.
#![allow(clippy::disallowed_methods)] // the simulation takes one origin instant; everything else is simulated

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube_proto::rng::SplitMix64;
use kube_proto::watcher::{Action, Backoff, Config, Event, InitialListStrategy, RequestId, Watcher};
use kube_proto::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Request, ResourceExt, Response};
use kube_proto_fake::faults::{Delivery, FaultConfig, FaultyPoll, FaultyServer};
use kube_proto_fake::{FakeApiServer, FakeConfig, WatchId};
use serde_json::json;

const NAMESPACES: [&str; 3] = ["default", "ns-a", "ns-b"];

/// A small deterministic random source for the workload.
/// The core's seeded generator: one generator for the fake, its faults and the simulation.
type Rng = SplitMix64;

/// `rng.pick`, for the simulation's non-empty choices.
fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    rng.pick(items).expect("a non-empty choice")
}

/// The response to the watcher's request in flight, as it is delivered over time.
enum Inflight {
    /// Not yet arrived: arrives at this instant.
    Pending { id: RequestId, at: Instant, delivery: Delivery },
    /// A watch whose head has been delivered; its body is polled from the server, unless the
    /// connection has stalled (half open: nothing arrives, nothing ends).
    Watch { id: RequestId, watch: WatchId, stalled: bool },
}

struct Sim {
    seed: u64,
    t0: Instant,
    now: Instant,
    rng: Rng,
    server: FaultyServer,
    watcher: Watcher<ConfigMap>,
    config: Config,
    /// The namespace the watcher watches, or all.
    scope: Option<&'static str>,
    inflight: Option<Inflight>,
    /// The state folded from the watcher's events: (namespace, name) -> resourceVersion.
    store: BTreeMap<(String, String), u64>,
    /// The buffer between Init and InitDone.
    buffer: Option<BTreeMap<(String, String), u64>>,
    /// The newest version emitted per object uid.
    emitted: BTreeMap<String, u64>,
    /// The reflector's store (the core's), fed the same events.
    real: kube_proto::store::Store<ConfigMap>,
    /// Whether the objects the store replaces or removes go back to the watcher, which decodes
    /// the next watch event over them (`Watcher::recycle`): every other seed.
    recycle: bool,
    /// During a relist: the keys the store held when it began, and the keys it held after each
    /// event since (a reader must never miss an object that survives the relist).
    relist_views: Option<(Keys, Vec<Keys>)>,
    max_resume_rv: u64,
    trace: bool,
    log: VecDeque<String>,
    created: u64,
    stats: Stats,
}

/// The (namespace, name) keys a store holds.
type Keys = BTreeSet<(String, String)>;

/// What happened across a run, to show that the faults and recoveries were exercised.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    inits: u64,
    applies: u64,
    deletes: u64,
    errors: u64,
    silent: u64,
    stalls: u64,
    faults: u64,
    /// Objects handed back to the watcher to decode over.
    recycled: u64,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.inits += o.inits;
        self.applies += o.applies;
        self.deletes += o.deletes;
        self.errors += o.errors;
        self.silent += o.silent;
        self.stalls += o.stalls;
        self.faults += o.faults;
        self.recycled += o.recycled;
    }
}

fn rv_of(cm: &ConfigMap) -> u64 {
    cm.resource_version().and_then(|r| r.parse().ok()).expect("numeric resourceVersions from the fake")
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let t0 = Instant::now();
        let fake =
            FakeApiServer::new(FakeConfig { seed, history: 40 + rng.below(200) as usize, ..FakeConfig::default() }, t0);
        let mut faults = FaultConfig::moderate(seed);
        faults.max_delay = Duration::from_millis(rng.below(800));
        let mut server = FaultyServer::new(fake, faults);
        // Namespaces for the workload.
        for ns in &NAMESPACES[1..] {
            let req = Request::all::<k8s_openapi::api::core::v1::Namespace>()
                .create(&PostParams::default(), &json!({"metadata": {"name": ns}}))
                .expect("a request");
            server.server.handle(t0, &req);
        }
        let mut config = Config {
            timeout: *pick(&mut rng, &[3, 20, 60, 290]),
            idle_grace: Duration::from_secs(5),
            page_size: *pick(&mut rng, &[Some(1), Some(2), Some(7), Some(500), None]),
            initial_list: *pick(&mut rng, &[InitialListStrategy::ListWatch, InitialListStrategy::StreamingList]),
            bookmarks: rng.chance(0.8),
            backoff: Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(10),
                factor: 2.0,
                jitter: 0.5,
            },
            seed,
            ..Config::default()
        };
        if rng.chance(0.3) {
            config.selectors.label_selector = Some("app=web".into());
        }
        let scope = if rng.chance(0.3) { Some("ns-a") } else { None };
        let request = match scope {
            Some(ns) => Request::namespaced::<ConfigMap>(ns),
            None => Request::all::<ConfigMap>(),
        };
        let watcher = Watcher::new(request, config.clone()).expect("a valid watcher config");
        Sim {
            seed,
            t0,
            now: t0,
            rng,
            server,
            watcher,
            config,
            scope,
            inflight: None,
            store: BTreeMap::new(),
            buffer: None,
            emitted: BTreeMap::new(),
            real: {
                let app = |cm: &ConfigMap| cm.labels().get("app").cloned().into_iter().collect();
                let config = kube_proto::store::StoreConfig::default().index("app", app);
                let config = match scope {
                    Some(ns) => config.namespace(ns),
                    None => config,
                };
                kube_proto::store::Store::new(config, ())
            },
            relist_views: None,
            recycle: seed.is_multiple_of(2),
            max_resume_rv: 0,
            trace: std::env::var("SIM_TRACE").is_ok(),
            log: VecDeque::new(),
            created: 0,
            stats: Stats::default(),
        }
    }

    fn note(&mut self, line: String) {
        let line = format!("[{:>8.3}s] {line}", self.now.duration_since(self.t0).as_secs_f64());
        if self.trace {
            println!("{line}");
        }
        self.log.push_back(line);
        if self.log.len() > 60 {
            self.log.pop_front();
        }
    }

    fn fail(&self, what: String) -> ! {
        let tail: Vec<&str> = self.log.iter().map(String::as_str).collect();
        panic!(
            "seed {} violated an invariant: {what}\nlast steps:\n{}\nreplay: SIM_SEED={} SIM_TRACE=1 cargo test -p kube-proto --test watcher_simulation -- --nocapture",
            self.seed,
            tail.join("\n"),
            self.seed
        );
    }

    /// One random write, straight to the server (the workload is not subject to faults).
    fn workload_step(&mut self) {
        let ns = *pick(&mut self.rng, &NAMESPACES);
        let api = Request::namespaced::<ConfigMap>(ns);
        let name = format!("cm-{}", self.rng.below(12));
        let app = *pick(&mut self.rng, &["web", "db"]);
        let req = match self.rng.below(10) {
            0..=3 => {
                self.created += 1;
                let finalizers = if self.rng.chance(0.2) { json!(["example.com/hold"]) } else { json!(null) };
                api.create(
                    &PostParams::default(),
                    &json!({"metadata": {"name": name, "labels": {"app": app}, "finalizers": finalizers},
                            "data": {"n": self.created.to_string()}}),
                )
            }
            4..=6 => api.patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"labels": {"app": app}}, "data": {"x": self.rng.below(1000).to_string()}}),
                ),
            ),
            7 => api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}}))),
            _ => api.delete(&name, &DeleteParams::default()),
        }
        .expect("a request");
        let status = self.server.server.handle(self.now, &req).into_response().map(|r| r.status().as_u16());
        self.note(format!("workload {} {} -> {status:?}", req.method(), req.uri()));
    }

    /// The server's state for the watcher's scope and selector.
    fn server_state(&mut self) -> BTreeMap<(String, String), u64> {
        self.server_objects().iter().map(|(k, cm)| (k.clone(), rv_of(cm))).collect()
    }

    /// The server's objects in the watcher's scope and selector, by (namespace, name).
    fn server_objects(&mut self) -> BTreeMap<(String, String), ConfigMap> {
        let lp = ListParams { selectors: self.config.selectors.clone(), ..ListParams::default() };
        let req = self.watcher_request().list(&lp).expect("a request");
        let resp = self.server.server.handle(self.now, &req).into_response().expect("a list");
        let list = Response::from_http(&resp).list::<ConfigMap>().expect("a ConfigMapList");
        list.items.into_iter().map(|cm| ((cm.namespace().unwrap_or("").to_owned(), cm.name_any()), cm)).collect()
    }

    fn watcher_request(&self) -> Request {
        match self.scope {
            Some(ns) => Request::namespaced::<ConfigMap>(ns),
            None => Request::all::<ConfigMap>(),
        }
    }

    fn apply_event(&mut self, ev: Event<ConfigMap>) {
        self.apply_to_store(&ev);
        let key = |cm: &ConfigMap| (cm.namespace().unwrap_or("").to_owned(), cm.name_any());
        let check_order = |sim: &mut Sim, cm: &ConfigMap| {
            let uid = cm.uid().unwrap_or("").to_owned();
            let rv = rv_of(cm);
            if let Some(&prev) = sim.emitted.get(&uid)
                && rv < prev
            {
                sim.fail(format!("{} emitted at rv {rv} after rv {prev}", cm.name_any()));
            }
            sim.emitted.insert(uid, rv);
        };
        match ev {
            Event::Init => {
                self.stats.inits += 1;
                self.note("Init".into());
                self.buffer = Some(BTreeMap::new());
            }
            Event::InitApply(cm) => {
                check_order(self, &cm);
                let Some(buf) = self.buffer.as_mut() else { self.fail("InitApply outside Init..InitDone".into()) };
                buf.insert(key(&cm), rv_of(&cm));
            }
            Event::InitDone => {
                let Some(buf) = self.buffer.take() else { self.fail("InitDone without Init".into()) };
                self.note(format!("InitDone with {} objects", buf.len()));
                self.store = buf;
            }
            Event::Apply(cm) => {
                self.stats.applies += 1;
                check_order(self, &cm);
                self.note(format!("Apply {}/{} rv {}", cm.namespace().unwrap_or(""), cm.name_any(), rv_of(&cm)));
                self.store.insert(key(&cm), rv_of(&cm));
            }
            Event::Delete(cm) => {
                self.stats.deletes += 1;
                check_order(self, &cm);
                self.note(format!("Delete {}/{} rv {}", cm.namespace().unwrap_or(""), cm.name_any(), rv_of(&cm)));
                self.store.remove(&key(&cm));
            }
        }
    }

    /// Feeds the event to the reflector's store, recording what a reader sees during a relist.
    fn apply_to_store(&mut self, ev: &Event<ConfigMap>) {
        let keys = |store: &kube_proto::store::Store<ConfigMap>| -> Keys {
            store.iter().map(|(r, _)| (r.namespace.clone().unwrap_or_default(), r.name.clone())).collect()
        };
        if matches!(ev, Event::Init) && self.relist_views.is_none() {
            self.relist_views = Some((keys(&self.real), Vec::new()));
        }
        let mut retired = Vec::new();
        if let Err(skipped) = self.real.apply_retiring(ev.clone(), &mut retired) {
            self.fail(format!("the store skipped an event of the watcher: {skipped}"));
        }
        if self.recycle {
            for old in retired {
                if let Ok(old) = std::sync::Arc::try_unwrap(old) {
                    self.stats.recycled += 1;
                    self.watcher.recycle(old);
                }
            }
        }
        let now = keys(&self.real);
        if let Some((_, views)) = &mut self.relist_views {
            views.push(now.clone());
        }
        if matches!(ev, Event::InitDone)
            && let Some((before, views)) = self.relist_views.take()
        {
            for key in before.intersection(&now) {
                if views.iter().any(|v| !v.contains(key)) {
                    self.fail(format!("{key:?} survived a relist but a reader saw it missing during it"));
                }
            }
        }
    }

    /// The reflector's store equals the server's state and every index equals one recomputed
    /// from its objects.
    fn verify_store(&mut self, server: &BTreeMap<(String, String), u64>) {
        if !self.real.is_ready() {
            self.fail("the store never became ready".into());
        }
        let held: BTreeMap<(String, String), u64> = self
            .real
            .iter()
            .map(|(r, cm)| ((r.namespace.clone().unwrap_or_default(), r.name.clone()), rv_of(cm)))
            .collect();
        if &held != server {
            self.fail(format!(
                "the store differs from the server:
 store:  {held:?}
 server: {server:?}"
            ));
        }
        // Object for object, as the server holds them (with recycling, each decoded over another).
        let objects = self.server_objects();
        for (r, cm) in self.real.iter() {
            let key = (r.namespace.clone().unwrap_or_default(), r.name.clone());
            if objects.get(&key) != Some(&**cm) {
                self.fail(format!(
                    "the store's {key:?} differs from the server's:\n store:  {cm:?}\n server: {:?}",
                    objects.get(&key)
                ));
            }
        }
        for index in self.real.index_names() {
            let mut expected: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (r, cm) in self.real.iter() {
                for value in self.real.index_function_values(&index, cm).expect("a known index") {
                    expected.entry(value).or_default().insert(r.to_string());
                }
            }
            let mut actual: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for value in self.real.index_values(&index).expect("a known index") {
                let refs = self.real.refs_by_index(&index, &value).expect("a known index");
                if !refs.is_empty() {
                    actual.insert(value, refs.iter().map(ToString::to_string).collect());
                }
            }
            if actual != expected {
                self.fail(format!(
                    "index {index} drifted:
 kept:       {actual:?}
 recomputed: {expected:?}"
                ));
            }
        }
    }

    /// Drains the watcher until it waits; returns when it wants to be polled again.
    fn drive_watcher(&mut self) -> Option<Instant> {
        loop {
            if let Some(rv) = self.watcher.resource_version().and_then(|r| r.parse::<u64>().ok()) {
                if rv < self.max_resume_rv {
                    self.fail(format!("the resume resourceVersion went back from {} to {rv}", self.max_resume_rv));
                }
                self.max_resume_rv = rv;
            }
            match self.watcher.poll(self.now) {
                Action::Send(id, req) => {
                    self.note(format!("send #{id} {} {}", req.method(), req.uri()));
                    if let Some(rv) = req.uri().query().and_then(|q| {
                        q.split('&')
                            .find_map(|p| p.strip_prefix("resourceVersion="))
                            .and_then(|v| v.parse::<u64>().ok())
                    }) && rv < self.max_resume_rv
                    {
                        self.fail(format!(
                            "requested resourceVersion {rv}, older than {} already seen",
                            self.max_resume_rv
                        ));
                    }
                    if self.server.faults_active() && self.rng.chance(0.02) {
                        self.note(format!("#{id} connection refused"));
                        self.watcher.on_transport_error(self.now, id, "connection refused");
                        continue;
                    }
                    let (delay, delivery) = self.server.handle(self.now, &req);
                    self.inflight = Some(Inflight::Pending { id, at: self.now + delay, delivery });
                }
                Action::Cancel(id) => {
                    self.note(format!("cancel #{id}"));
                    if let Some(Inflight::Watch { watch, .. }) = &self.inflight {
                        self.server.server.cancel_watch(*watch);
                    }
                    self.inflight = None;
                }
                Action::Emit(ev) => self.apply_event(ev),
                Action::Error(e) => {
                    self.stats.errors += 1;
                    if matches!(e, kube_proto::watcher::WatcherError::Silent(_)) {
                        self.stats.silent += 1;
                    }
                    let line = format!("error: {e}");
                    self.note(line);
                    if let Some(b) = self.watcher.last_backoff() {
                        let bound = self.config.backoff.max.max(Duration::from_secs(2));
                        if b > bound {
                            self.fail(format!("backoff {b:?} above its bound {bound:?}"));
                        }
                    }
                }
                Action::Wait { until, .. } => return Some(until),
            }
        }
    }

    /// Delivers what is due of the response in flight. Returns whether anything was delivered,
    /// and when something is due next.
    fn deliver(&mut self) -> (bool, Option<Instant>) {
        match self.inflight.take() {
            None => (false, None),
            Some(Inflight::Pending { id, at, delivery }) if at > self.now => {
                self.inflight = Some(Inflight::Pending { id, at, delivery });
                (false, Some(at))
            }
            Some(Inflight::Pending { id, delivery, .. }) => {
                match delivery {
                    Delivery::Complete(resp) => {
                        self.note(format!("#{id} <- {}", resp.status()));
                        self.watcher.on_response(self.now, id, resp.status(), resp.headers());
                        let body = resp.body();
                        let mut at = 0;
                        while at < body.len() {
                            let n = 1 + self.rng.below(body.len() as u64 - at as u64) as usize;
                            self.watcher.on_body(self.now, id, &body[at..at + n]);
                            at += n;
                        }
                        self.watcher.on_end(self.now, id);
                    }
                    Delivery::CutOff { head, partial } => {
                        self.note(format!("#{id} <- {} cut after {} bytes", head.status(), partial.len()));
                        self.watcher.on_response(self.now, id, head.status(), head.headers());
                        self.watcher.on_body(self.now, id, &partial);
                        self.watcher.on_transport_error(self.now, id, "connection reset mid-body");
                    }
                    Delivery::Watch { id: watch, head } => {
                        self.note(format!("#{id} <- watch {watch} open"));
                        self.watcher.on_response(self.now, id, head.status(), head.headers());
                        let stalled = self.server.faults_active() && self.rng.chance(0.03);
                        if stalled {
                            self.stats.stalls += 1;
                            self.note(format!("#{id} watch {watch} stalls"));
                        }
                        self.inflight = Some(Inflight::Watch { id, watch, stalled });
                    }
                    Delivery::Upgrade { .. } => panic!("#{id}: a watcher's request switched protocols"),
                }
                (true, None)
            }
            Some(Inflight::Watch { id, watch, stalled: true }) => {
                self.inflight = Some(Inflight::Watch { id, watch, stalled: true });
                (false, None)
            }
            Some(Inflight::Watch { id, watch, .. }) => match self.server.poll_watch(watch, self.now) {
                FaultyPoll::Data(d) => {
                    self.watcher.on_body(self.now, id, &d);
                    if self.watcher.in_flight() == Some(id) {
                        self.inflight = Some(Inflight::Watch { id, watch, stalled: false });
                    } else {
                        self.server.server.cancel_watch(watch);
                    }
                    (true, None)
                }
                FaultyPoll::Pending(at) => {
                    self.inflight = Some(Inflight::Watch { id, watch, stalled: false });
                    (false, at)
                }
                FaultyPoll::Finished(d) => {
                    self.note(format!("#{id} watch {watch} ended"));
                    self.watcher.on_body(self.now, id, &d);
                    self.watcher.on_end(self.now, id);
                    (true, None)
                }
                FaultyPoll::Broken(d) => {
                    self.note(format!("#{id} watch {watch} dropped after {} bytes", d.len()));
                    self.watcher.on_body(self.now, id, &d);
                    self.watcher.on_transport_error(self.now, id, "watch connection dropped");
                    (true, None)
                }
            },
        }
    }

    fn run(&mut self) {
        let steps = 150 + self.rng.below(150);
        let mut next_write = self.now;
        // Phase 1: workload and faults.
        for _ in 0..steps {
            self.step(&mut next_write, true);
        }
        // Phase 2: faults stop, the workload stops; the watcher must converge.
        self.stats.faults = self.server.injected().len() as u64;
        self.server.stop_faults();
        self.note("faults stop".into());
        let deadline = self.now + Duration::from_secs(600);
        while self.now < deadline {
            self.step(&mut next_write, false);
            if self.watcher.in_flight().is_some() && self.buffer.is_none() {
                let server = self.server_state();
                if server == self.store {
                    self.verify_store(&server);
                    return;
                }
            }
        }
        let server = self.server_state();
        if server != self.store {
            self.fail(format!(
                "after quiescing, the watcher's view differs from the server:\n watcher: {:?}\n server:  {:?}",
                self.store, server
            ));
        }
        self.verify_store(&server);
    }

    fn step(&mut self, next_write: &mut Instant, workload: bool) {
        if workload && self.now >= *next_write {
            for _ in 0..=self.rng.below(3) {
                self.workload_step();
            }
            *next_write = self.now + Duration::from_millis(self.rng.below(3000));
        }
        // Drive and deliver until nothing moves at this instant.
        let wake = loop {
            let waiting = self.drive_watcher();
            let (progress, due) = self.deliver();
            if !progress {
                break earliest(waiting, due);
            }
        };
        // Jump to the next thing that happens.
        let mut target = wake.unwrap_or(self.now + Duration::from_secs(1));
        if workload {
            target = target.min(*next_write);
        }
        self.now = target.max(self.now + Duration::from_millis(1));
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[test]
fn the_watcher_converges_under_faults() {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a number")],
        Err(_) => {
            let n: u64 = std::env::var("SIM_SEEDS").ok().and_then(|n| n.parse().ok()).unwrap_or(1000);
            (1..=n).collect()
        }
    };
    let many = seeds.len() >= 50;
    let mut total = Stats::default();
    for seed in seeds {
        let mut sim = Sim::new(seed);
        sim.run();
        total += sim.stats;
    }
    println!("simulation totals: {total:?}");
    if many {
        // The run must have exercised what it claims to prove.
        assert!(total.faults > 0 && total.errors > 0, "{total:?}");
        assert!(total.inits > total.faults / 20, "relists were rare: {total:?}");
        assert!(total.applies > 0 && total.deletes > 0, "{total:?}");
        assert!(total.stalls > 0 && total.silent > 0, "stalled watches were never detected: {total:?}");
        assert!(total.recycled > 0, "no object was decoded over another: {total:?}");
    }
}
