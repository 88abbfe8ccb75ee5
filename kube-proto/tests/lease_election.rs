//! The lease and shard machines against the fake API server, with candidates whose clocks run
//! at their own rates and from their own offsets, on simulated true time: one leader per Lease
//! at every true instant (drift under the documented bound), takeover after a holder's death,
//! hand-over on release, fair shares of shards, and that the invariant does fail when the
//! drift exceeds the bound.
//!
//! `LEASE_PROP_CASES=N` runs N seeds of each property (default 16) for a soak.

#![allow(clippy::disallowed_methods)] // one origin `Instant::now()`

use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use kube_proto::lease::{Action, Elector, LeaseConfig, LeaseEvent};
use kube_proto::rng::SplitMix64;
use kube_proto::shard::{ShardConfig, ShardEvent, Shards, shard_of};
use kube_proto::{PostParams, Request};
use kube_proto_fake::{FakeApiServer, FakeConfig, Reply};
use proptest::prelude::*;

const L: f64 = 15.0;
const R: f64 = 10.0;
const P: f64 = 2.0;

trait Machine {
    type Event: std::fmt::Debug;
    fn poll(&mut self, now: Instant, wall: SystemTime) -> Action<Self::Event>;
    fn on_response(&mut self, now: Instant, id: u64, resp: &http::Response<Vec<u8>>);
    fn on_transport_error(&mut self, now: Instant, id: u64);
    fn leading(&self, now: Instant) -> Vec<u32>;
    fn release(&mut self, now: Instant);
}

impl Machine for Elector {
    type Event = LeaseEvent;
    fn poll(&mut self, now: Instant, wall: SystemTime) -> Action<LeaseEvent> {
        Elector::poll(self, now, wall)
    }
    fn on_response(&mut self, now: Instant, id: u64, resp: &http::Response<Vec<u8>>) {
        Elector::on_response(self, now, id, resp.status(), resp.headers(), resp.body());
    }
    fn on_transport_error(&mut self, now: Instant, id: u64) {
        Elector::on_transport_error(self, now, id, "partitioned");
    }
    fn leading(&self, now: Instant) -> Vec<u32> {
        if self.is_leading(now) { vec![0] } else { vec![] }
    }
    fn release(&mut self, now: Instant) {
        Elector::release(self, now);
    }
}

impl Machine for Shards {
    type Event = ShardEvent;
    fn poll(&mut self, now: Instant, wall: SystemTime) -> Action<ShardEvent> {
        Shards::poll(self, now, wall)
    }
    fn on_response(&mut self, now: Instant, id: u64, resp: &http::Response<Vec<u8>>) {
        Shards::on_response(self, now, id, resp.status(), resp.headers(), resp.body());
    }
    fn on_transport_error(&mut self, now: Instant, id: u64) {
        Shards::on_transport_error(self, now, id, "partitioned");
    }
    fn leading(&self, now: Instant) -> Vec<u32> {
        Shards::leading(self, now)
    }
    fn release(&mut self, now: Instant) {
        Shards::release(self, now);
    }
}

/// An answer on its way: when it arrives (true seconds), for which request, and the response
/// (`None`: the request failed).
type Delivery = (f64, u64, Option<http::Response<Vec<u8>>>);

struct Cand<M> {
    m: M,
    /// How fast this candidate's clock runs against true time.
    rate: f64,
    /// Where its clock starts, in seconds (any offset: clocks are never compared).
    offset: f64,
    alive: bool,
    partitioned: bool,
    stalled_until: f64,
    inbox: Vec<Delivery>,
    wake: f64,
    stopped: bool,
}

struct World<M: Machine> {
    server: FakeApiServer,
    t0: Instant,
    /// True time, in seconds.
    t: f64,
    cands: Vec<Cand<M>>,
    latency: f64,
    lose_response: f64,
    rng: SplitMix64,
    /// `(true time, shard, leaders)` whenever two led one shard at once.
    violations: Vec<(f64, u32, Vec<usize>)>,
    events: Vec<(f64, usize, String)>,
}

impl<M: Machine> World<M> {
    fn new(seed: u64) -> Self {
        let t0 = Instant::now();
        World {
            server: FakeApiServer::new(FakeConfig::default(), t0),
            t0,
            t: 0.0,
            cands: Vec::new(),
            latency: 0.05,
            lose_response: 0.0,
            rng: SplitMix64::new(seed),
            violations: Vec::new(),
            events: Vec::new(),
        }
    }

    fn add(&mut self, m: M, rate: f64, offset: f64) -> usize {
        self.cands.push(Cand {
            m,
            rate,
            offset,
            alive: true,
            partitioned: false,
            stalled_until: 0.0,
            inbox: Vec::new(),
            wake: self.t,
            stopped: false,
        });
        self.cands.len() - 1
    }

    fn local(&self, i: usize, t: f64) -> Instant {
        let c = &self.cands[i];
        self.t0 + Duration::from_secs(10_000) + Duration::from_secs_f64(c.offset + t * c.rate)
    }

    fn true_of(&self, i: usize, local: Instant) -> f64 {
        let c = &self.cands[i];
        let since = local.saturating_duration_since(self.t0 + Duration::from_secs(10_000)).as_secs_f64();
        (since - c.offset) / c.rate
    }

    fn wall(&self, i: usize, t: f64) -> SystemTime {
        let c = &self.cands[i];
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_secs_f64(c.offset + t * c.rate)
    }

    fn leaders(&self, t: f64) -> std::collections::BTreeMap<u32, Vec<usize>> {
        let mut by_shard = std::collections::BTreeMap::<u32, Vec<usize>>::new();
        for (i, c) in self.cands.iter().enumerate() {
            // A stalled candidate counts: it would act if it woke now and its machine said so.
            if c.alive {
                for s in c.m.leading(self.local(i, t)) {
                    by_shard.entry(s).or_default().push(i);
                }
            }
        }
        by_shard
    }

    fn leader_of(&self, shard: u32) -> Option<usize> {
        self.leaders(self.t).get(&shard).and_then(|l| l.first().copied())
    }

    fn run_for(&mut self, seconds: f64) {
        let end = self.t + seconds;
        while self.t < end {
            self.step(0.01);
        }
    }

    fn step(&mut self, dt: f64) {
        self.t += dt;
        let t = self.t;
        for i in 0..self.cands.len() {
            if !self.cands[i].alive || t < self.cands[i].stalled_until {
                continue;
            }
            let now = self.local(i, t);
            let due: Vec<_> = {
                let c = &mut self.cands[i];
                let (due, later) = std::mem::take(&mut c.inbox).into_iter().partition(|(at, _, _)| *at <= t);
                c.inbox = later;
                due
            };
            let woke = !due.is_empty() || self.cands[i].wake <= t;
            for (_, id, resp) in due {
                match resp {
                    Some(resp) => self.cands[i].m.on_response(now, id, &resp),
                    None => self.cands[i].m.on_transport_error(now, id),
                }
            }
            if woke && !self.cands[i].stopped {
                self.drive(i, t);
            }
        }
        for (shard, leaders) in self.leaders(t) {
            if leaders.len() > 1 {
                self.violations.push((t, shard, leaders));
            }
        }
    }

    fn drive(&mut self, i: usize, t: f64) {
        let now = self.local(i, t);
        let wall = self.wall(i, t);
        loop {
            match self.cands[i].m.poll(now, wall) {
                Action::Send(id, req) => {
                    let at = t + self.latency;
                    let resp = if self.cands[i].partitioned {
                        None
                    } else {
                        let Reply::Response(resp) = self.server.handle(self.t0 + Duration::from_secs_f64(t), &req)
                        else {
                            panic!("not a plain response")
                        };
                        // The write landed, but the answer may be lost on the way back.
                        (!self.rng.chance(self.lose_response)).then_some(resp)
                    };
                    self.cands[i].inbox.push((at, id, resp));
                }
                Action::Cancel(id) => self.cands[i].inbox.retain(|(_, x, _)| *x != id),
                Action::Emit(ev) => self.events.push((t, i, format!("{ev:?}"))),
                Action::Error(_) => {}
                Action::Wait { until, .. } => {
                    let w = self.true_of(i, until);
                    self.cands[i].wake = w;
                    break;
                }
                Action::Stopped => {
                    self.cands[i].stopped = true;
                    break;
                }
            }
        }
    }

    fn kill(&mut self, i: usize) {
        self.cands[i].alive = false;
    }

    fn release(&mut self, i: usize) {
        let now = self.local(i, self.t);
        self.cands[i].m.release(now);
        self.cands[i].wake = self.t;
    }

    fn lease(&mut self, name: &str) -> Option<Lease> {
        let req = Request::namespaced::<Lease>("default").get(name, &Default::default()).unwrap();
        let Reply::Response(resp) = self.server.handle(self.t0 + Duration::from_secs_f64(self.t), &req) else {
            panic!()
        };
        kube_proto::Response::from_http(&resp).object::<Lease>().ok()
    }
}

fn config(identity: &str) -> LeaseConfig {
    LeaseConfig::new("default", "the-lease", identity).timings(
        Duration::from_secs_f64(L),
        Duration::from_secs_f64(R),
        Duration::from_secs_f64(P),
    )
}

fn electors(seed: u64, rates: &[f64]) -> World<Elector> {
    let mut w = World::new(seed);
    for (i, rate) in rates.iter().enumerate() {
        let offset = (i as f64) * 1234.5;
        w.add(Elector::new(config(&format!("cand-{i}"))).unwrap(), *rate, offset);
    }
    w
}

#[test]
fn the_config_is_checked_and_the_bound_is_stated() {
    assert!(LeaseConfig::new("default", "x", "").validate().is_err());
    let c = config("a");
    assert!((c.max_clock_rate_error() - 0.2).abs() < 1e-9);
    let bad = c.clone().timings(Duration::from_secs(10), Duration::from_secs(10), Duration::from_secs(2));
    assert!(bad.validate().is_err());
    let fractional = c.clone().timings(Duration::from_millis(15_500), Duration::from_secs(10), Duration::from_secs(2));
    assert!(fractional.validate().is_err());
    let bad_name = LeaseConfig::new("default", "a/b", "x");
    assert!(Elector::new(bad_name).is_err());
    assert!(Shards::new(ShardConfig::new("default", "UPPER", "x", 4)).is_err());
    assert!(Shards::new(ShardConfig::new("default", "ok", "x", 0)).is_err());
}

#[test]
fn one_leader_then_a_takeover_within_lease_duration_and_retry_period_of_its_death() {
    let mut w = electors(1, &[1.0, 1.0, 1.0]);
    w.run_for(5.0);
    let leader = w.leader_of(0).expect("someone leads");
    assert_eq!(w.leaders(w.t)[&0].len(), 1);
    w.run_for(30.0);
    assert_eq!(w.leader_of(0), Some(leader), "a healthy leader keeps the lease");
    let died = w.t;
    w.kill(leader);
    let mut took_over = None;
    while w.t < died + 40.0 {
        w.step(0.01);
        if let Some(l) = w.leader_of(0) {
            took_over = Some((l, w.t));
            break;
        }
    }
    let (new, at) = took_over.expect("a takeover");
    assert_ne!(new, leader);
    assert!(at - died <= L + P + 0.2, "took {} s", at - died);
    assert!(at - died >= L - P - 0.2, "too early: {} s", at - died);
    assert!(w.violations.is_empty(), "{:?}", w.violations);
}

#[test]
fn a_release_hands_over_without_waiting_for_expiry() {
    let mut w = electors(2, &[1.0, 1.0]);
    w.run_for(5.0);
    let leader = w.leader_of(0).unwrap();
    w.release(leader);
    let released = w.t;
    while w.leader_of(0).is_none_or(|l| l == leader) && w.t < released + 30.0 {
        w.step(0.01);
    }
    assert!(w.t - released <= P + 0.2, "took {} s", w.t - released);
    assert!(w.cands[leader].stopped);
    assert!(w.violations.is_empty());
    let lease = w.lease("the-lease").unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(format!("cand-{}", 1 - leader).as_str()));
    assert_eq!(spec.lease_transitions, Some(1));
}

#[test]
fn a_partitioned_leader_stops_at_its_renew_deadline_before_anyone_takes_over() {
    let mut w = electors(3, &[1.0, 1.0, 1.0]);
    w.run_for(5.0);
    let leader = w.leader_of(0).unwrap();
    w.cands[leader].partitioned = true;
    let cut = w.t;
    let mut stopped = None;
    let mut new = None;
    while w.t < cut + 40.0 && new.is_none() {
        w.step(0.01);
        let leaders = w.leaders(w.t);
        let now = leaders.get(&0).cloned().unwrap_or_default();
        if stopped.is_none() && !now.contains(&leader) {
            stopped = Some(w.t);
        }
        new = now.into_iter().find(|l| *l != leader).map(|l| (l, w.t));
    }
    let stopped = stopped.unwrap();
    let (_, took) = new.unwrap();
    assert!(stopped - cut <= R + 0.1, "the leader went on for {} s", stopped - cut);
    assert!(took > stopped);
    assert!(w.violations.is_empty());
    // Healed, the old leader sees the new holder and stays a follower.
    w.cands[leader].partitioned = false;
    w.run_for(20.0);
    assert!(w.violations.is_empty());
    assert!(w.events.iter().any(|(_, i, e)| *i == leader && e.starts_with("Lost(Deadline")), "{:?}", w.events);
}

#[test]
fn a_stalled_leader_knows_it_lost_when_it_wakes() {
    let mut w = electors(4, &[1.0, 1.0]);
    w.run_for(5.0);
    let leader = w.leader_of(0).unwrap();
    w.cands[leader].stalled_until = w.t + 30.0;
    w.run_for(31.0);
    let other = 1 - leader;
    assert_eq!(w.leader_of(0), Some(other));
    w.run_for(10.0);
    assert_eq!(w.leaders(w.t)[&0], vec![other]);
    assert!(w.violations.is_empty(), "{:?}", w.violations);
}

#[test]
fn an_old_renew_time_is_not_taken_for_expiry() {
    // The holder's clock was an hour behind: renewTime says it is long expired. A candidate
    // waits a whole lease duration from when it first saw the Lease.
    let mut w: World<Elector> = World::new(5);
    let old = serde_json::json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "the-lease", "namespace": "default"},
        "spec": {"holderIdentity": "elsewhere", "leaseDurationSeconds": 15,
                 "renewTime": "2020-01-01T00:00:00.000000Z"}
    });
    let req = Request::namespaced::<Lease>("default").create(&PostParams::default(), &old).unwrap();
    w.server.handle(w.t0, &req);
    w.add(Elector::new(config("cand-0")).unwrap(), 1.0, 0.0);
    while w.leader_of(0).is_none() && w.t < 40.0 {
        w.step(0.01);
    }
    assert!(w.t >= L, "took over after {} s, trusting renewTime", w.t);
    assert!(w.t <= L + 0.2);
}

#[test]
fn drift_beyond_the_bound_lets_two_lead_at_once() {
    // The leader's clock runs 45% slow: its 10 s renew deadline lasts 18 s of true time, past
    // the 15 s after which a candidate with a true clock takes over. The invariant fails, as the
    // bound says it may (0.45 > (15 - 10) / (15 + 10) = 0.2).
    let mut w = electors(6, &[0.55, 1.0]);
    w.cands[1].stalled_until = 3.0; // let the slow one lead
    w.run_for(5.0);
    assert_eq!(w.leader_of(0), Some(0));
    w.cands[0].partitioned = true;
    w.run_for(30.0);
    assert!(!w.violations.is_empty(), "drift beyond the bound went unnoticed");
    // Within the bound (15% slow), the same scenario is safe.
    let mut w = electors(6, &[0.85, 1.15]);
    w.cands[1].stalled_until = 3.0;
    w.run_for(5.0);
    w.cands[0].partitioned = true;
    w.run_for(30.0);
    assert!(w.violations.is_empty(), "{:?}", w.violations);
    assert_eq!(w.leader_of(0), Some(1));
}

/// A seeded schedule of faults over `candidates` candidates for `seconds`.
fn chaos<M: Machine>(w: &mut World<M>, seed: u64, seconds: f64) {
    let mut rng = SplitMix64::new(seed ^ 0xC4A05);
    let n = w.cands.len();
    let end = w.t + seconds;
    while w.t < end {
        w.step(0.01);
        if rng.chance(0.002) {
            let i = rng.below(n as u64) as usize;
            match rng.below(4) {
                0 => w.cands[i].partitioned = !w.cands[i].partitioned,
                1 => w.cands[i].stalled_until = w.t + 1.0 + rng.next_f64() * 25.0,
                2 => w.latency = 0.01 + rng.next_f64() * 1.5,
                _ => w.lose_response = rng.next_f64() * 0.3,
            }
        }
    }
}

fn rates(rng: &mut SplitMix64, n: usize, bound: f64) -> Vec<f64> {
    (0..n).map(|_| 1.0 + (rng.next_f64() * 2.0 - 1.0) * bound).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("LEASE_PROP_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(16), ..ProptestConfig::default() })]

    #[test]
    fn never_two_leaders_under_drift_within_the_bound(seed in any::<u64>(), n in 2usize..5) {
        let mut rng = SplitMix64::new(seed);
        let rates = rates(&mut rng, n, 0.19);
        let mut w = electors(seed, &rates);
        chaos(&mut w, seed, 120.0);
        prop_assert!(w.violations.is_empty(), "rates {:?}: {:?}", rates, &w.violations[..1]);
    }

    #[test]
    fn never_two_holders_of_a_shard_under_drift_within_the_bound(seed in any::<u64>(), n in 2usize..4) {
        let mut rng = SplitMix64::new(seed);
        let rates = rates(&mut rng, n, 0.19);
        let mut w = shards_world(seed, &rates, 5);
        chaos(&mut w, seed, 120.0);
        prop_assert!(w.violations.is_empty(), "rates {:?}: {:?}", rates, &w.violations[..1]);
    }

    #[test]
    fn every_key_has_exactly_one_stable_shard(key in ".*", shards in 1u32..64) {
        let s = shard_of(&key, shards);
        prop_assert!(s < shards);
        prop_assert_eq!(s, shard_of(&key, shards));
    }
}

fn shard_config(identity: &str, shards: u32) -> ShardConfig {
    ShardConfig::new("default", "ctl", identity, shards).timings(
        Duration::from_secs_f64(L),
        Duration::from_secs_f64(R),
        Duration::from_secs_f64(P),
    )
}

fn shards_world(seed: u64, rates: &[f64], shards: u32) -> World<Shards> {
    let mut w = World::new(seed);
    for (i, rate) in rates.iter().enumerate() {
        w.add(Shards::new(shard_config(&format!("replica-{i}"), shards)).unwrap(), *rate, i as f64 * 99.0);
    }
    w
}

fn held(w: &World<Shards>) -> Vec<Vec<u32>> {
    (0..w.cands.len()).map(|i| if w.cands[i].alive { w.cands[i].m.leading(w.local(i, w.t)) } else { vec![] }).collect()
}

#[test]
fn shards_spread_to_fair_shares_and_move_when_replicas_come_and_go() {
    let mut w: World<Shards> = World::new(7);
    w.add(Shards::new(shard_config("replica-0", 8)).unwrap(), 1.0, 0.0);
    w.run_for(5.0);
    assert_eq!(held(&w)[0].len(), 8, "one replica takes every shard");
    w.add(Shards::new(shard_config("replica-1", 8)).unwrap(), 1.0, 50.0);
    w.run_for(10.0);
    let h = held(&w);
    assert_eq!((h[0].len(), h[1].len()), (4, 4), "{h:?}");
    w.add(Shards::new(shard_config("replica-2", 8)).unwrap(), 1.0, 70.0);
    w.run_for(10.0);
    let h = held(&w);
    let mut sizes: Vec<usize> = h.iter().map(Vec::len).collect();
    sizes.sort();
    assert_eq!(sizes, [2, 3, 3], "shares add up to the shards, a newcomer included: {h:?}");
    // One dies: its shards are taken over once its Leases expire.
    let died = w.t;
    w.kill(1);
    // Within the lease duration and a retry period of the death (its membership expires with its
    // shards' Leases, and the expiry wakes the others' rebalance).
    w.run_for(L + P + 0.3);
    let h = held(&w);
    assert_eq!(h[0].len() + h[2].len(), 8, "{h:?} after {} s", w.t - died);
    assert_eq!((h[0].len(), h[2].len()), (4, 4));
    // One shuts down: the other takes its shards within a couple of retry periods.
    w.release(0);
    w.run_for(3.0 * P);
    let h = held(&w);
    assert_eq!(h[2].len(), 8, "{h:?}");
    assert!(w.cands[0].stopped);
    assert!(w.violations.is_empty(), "{:?}", w.violations);
    // The given-back Leases name nobody, or the taker.
    for s in 0..8 {
        let holder = w.lease(&format!("ctl-{s}")).and_then(|l| l.spec?.holder_identity);
        assert_eq!(holder.as_deref(), Some("replica-2"));
    }
}
