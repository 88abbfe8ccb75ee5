//! Leader election and sharded controllers over real sockets: one of two candidates leads, a
//! release hands over without waiting for expiry, a dead leader's Lease is taken over once it
//! expires, and two sharded Controllers split the shards and each reconciles only the objects of
//! its own. Each body runs through transport-hyper (tokio) and transport-asyncstd (async-std),
//! against the loopback fake or, with `KUBE_E2E_KUBECONFIG`, a real cluster (the Leases live in
//! the test's own namespace, so their names are unique per run, and they go with it).

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures_util::future::{Either, select};
use futures_util::stream::{Stream, StreamExt};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_integration_tests::objects::configmap;
use kube_integration_tests::{Ctx, transport_tests};
use kube_proto::{DeleteParams, PostParams, ResourceExt};
use kube_runtime::controller::{Action, Controller};
use kube_runtime::leader::{LeaderElector, Leadership, LeaseConfig, ShardConfig, ShardKey};
use kube_runtime::{Api, watcher};

transport_tests!(
    one_of_two_leads_and_a_release_hands_over_at_once,
    a_dead_leaders_lease_is_taken_over_after_it_expires,
    sharded_controllers_split_the_shards_and_reconcile_only_their_own,
);

const L: Duration = Duration::from_secs(3);
const R: Duration = Duration::from_secs(2);
const P: Duration = Duration::from_millis(500);

type Run = Pin<Box<dyn Stream<Item = String> + Send>>;

/// Replicas' streams, polled together while a test waits; one can be dropped (a death).
struct Replicas(Vec<Option<Run>>);

impl Replicas {
    /// Drives every replica until `cond` holds, panicking after `limit`.
    async fn until(&mut self, ctx: &Ctx, limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = ctx.client.now() + limit;
        while !cond() {
            assert!(ctx.client.now() < deadline, "{what}: not within {limit:?}");
            self.step(ctx).await;
        }
    }

    /// Drives every replica until every stream has ended, panicking after `limit`.
    async fn until_ended(&mut self, ctx: &Ctx, limit: Duration) {
        let deadline = ctx.client.now() + limit;
        while self.0.iter().any(Option::is_some) {
            assert!(ctx.client.now() < deadline, "the replicas did not end within {limit:?}");
            self.step(ctx).await;
        }
    }

    /// Waits for the next item of any replica, or 20 ms.
    async fn step(&mut self, ctx: &Ctx) {
        let runs = &mut self.0;
        let next = std::future::poll_fn(|cx| {
            for (i, run) in runs.iter_mut().enumerate() {
                if let Some(r) = run
                    && let Poll::Ready(item) = r.poll_next_unpin(cx)
                {
                    return Poll::Ready((i, item));
                }
            }
            Poll::Pending
        });
        let tick = ctx.sleep(Duration::from_millis(20));
        if let Either::Left(((i, item), _)) = select(Box::pin(next), Box::pin(tick)).await {
            match item {
                Some(line) => eprintln!("replica {i}: {line}"),
                None => self.0[i] = None,
            }
        }
    }
}

fn elector(ctx: &Ctx, name: &str, identity: &str) -> LeaderElector {
    let client = ctx.client_for(ctx.config().clone());
    let config = LeaseConfig::new(&ctx.ns, name, identity).timings(L, R, P).request_timeout(Duration::from_secs(2));
    LeaderElector::new(client, config).expect("valid settings")
}

fn described<S, T: std::fmt::Debug>(s: S) -> Run
where
    S: Stream<Item = T> + Send + 'static,
{
    Box::pin(s.map(|item| format!("{item:?}")))
}

async fn holder(ctx: &Ctx, name: &str) -> Option<String> {
    let leases: Api<Lease> = ctx.api();
    leases.get(name).await.ok()?.spec?.holder_identity
}

async fn one_of_two_leads_and_a_release_hands_over_at_once(ctx: Ctx) {
    let (a, b) = (elector(&ctx, "kit-leader", "a"), elector(&ctx, "kit-leader", "b"));
    let (la, lb) = (a.leadership(), b.leadership());
    let (stop_a, stopped_a) = futures_channel::oneshot::channel::<()>();
    let (stop_b, stopped_b) = futures_channel::oneshot::channel::<()>();
    let a = a
        .shutdown_on(async move {
            let _ = stopped_a.await;
        })
        .run();
    let b = b
        .shutdown_on(async move {
            let _ = stopped_b.await;
        })
        .run();
    let mut replicas = Replicas(vec![Some(described(a)), Some(described(b))]);
    replicas.until(&ctx, L * 3, "a leader", || la.is_leading() || lb.is_leading()).await;
    assert!(!(la.is_leading() && lb.is_leading()), "both lead");
    // Stays stable for a few renewals.
    let first_is_a = la.is_leading();
    let t = ctx.client.now() + R * 2;
    replicas.until(&ctx, R * 3, "renewals", || ctx.client.now() >= t).await;
    assert_eq!(la.is_leading(), first_is_a);
    assert_eq!(lb.is_leading(), !first_is_a);
    let (leader, follower, stop, other_stop) =
        if first_is_a { (&la, &lb, stop_a, stop_b) } else { (&lb, &la, stop_b, stop_a) };
    let (leader_id, follower_id) = if first_is_a { ("a", "b") } else { ("b", "a") };
    assert_eq!(holder(&ctx, "kit-leader").await.as_deref(), Some(leader_id));

    // The leader shuts down: the Lease is given back, and taken well before it could expire.
    let released = ctx.client.now();
    stop.send(()).unwrap();
    replicas.until(&ctx, L, "the hand-over", || follower.is_leading()).await;
    assert!(!leader.is_leading());
    assert!(ctx.client.now() - released < L, "the follower waited for expiry");
    assert_eq!(holder(&ctx, "kit-leader").await.as_deref(), Some(follower_id));

    // The second one gives it back too: both streams end, and the Lease names nobody.
    other_stop.send(()).unwrap();
    replicas.until_ended(&ctx, L).await;
    assert!(!follower.is_leading());
    assert_eq!(holder(&ctx, "kit-leader").await, None);
}

async fn a_dead_leaders_lease_is_taken_over_after_it_expires(ctx: Ctx) {
    let (a, b) = (elector(&ctx, "kit-dead", "a"), elector(&ctx, "kit-dead", "b"));
    let (la, lb) = (a.leadership(), b.leadership());
    let mut replicas = Replicas(vec![Some(described(a.run())), None]);
    replicas.until(&ctx, L * 3, "a leads", || la.is_leading()).await;
    replicas.0[1] = Some(described(b.run()));
    let t = ctx.client.now() + P * 3;
    replicas.until(&ctx, L, "b observes", || ctx.client.now() >= t).await;
    assert!(!lb.is_leading());
    // a dies: dropped, nothing given back.
    replicas.0[0] = None;
    let died = ctx.client.now();
    replicas.until(&ctx, (L + P) * 3, "the takeover", || lb.is_leading()).await;
    let took = ctx.client.now() - died;
    assert!(took >= L - P, "taken after {took:?}, before the Lease could expire");
    assert!(took <= L + P + Duration::from_secs(2), "taken after {took:?}");
    assert_eq!(holder(&ctx, "kit-dead").await.as_deref(), Some("b"));
    let leases: Api<Lease> = ctx.api();
    leases.delete("kit-dead", &DeleteParams::default()).await.unwrap();
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

/// Every reconcile (object, replica, shard), and any made outside the replica's lead.
type Log = Arc<Mutex<(Vec<(String, usize, u32)>, Vec<String>)>>;

struct Seen {
    replica: usize,
    leadership: Leadership,
    log: Log,
}

async fn reconcile(cm: Arc<ConfigMap>, seen: Arc<Seen>) -> Result<Action, Never> {
    let shard = seen.leadership.shard_of(&cm.metadata);
    let mut log = seen.log.lock().unwrap();
    if !seen.leadership.leads(shard) {
        log.1.push(format!("replica {} reconciled {} of shard {shard} it does not lead", seen.replica, cm.name_any()));
    }
    log.0.push((cm.name_any(), seen.replica, shard));
    Ok(Action::await_change())
}

fn error_policy(_: Arc<ConfigMap>, _: &Never, _: Arc<Seen>) -> Action {
    Action::await_change()
}

async fn sharded_controllers_split_the_shards_and_reconcile_only_their_own(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    for i in 0..12 {
        let cm = configmap(&ctx, &format!("obj-{i}"), &[]);
        cms.create(&PostParams::default(), &cm).await.unwrap();
    }
    let log: Log = Arc::default();
    let mut handles = Vec::new();
    let mut runs = Vec::new();
    for replica in 0..2 {
        let client = ctx.client_for(ctx.config().clone());
        let config = ShardConfig::new(&ctx.ns, "kit-shards", format!("replica-{replica}"), 4).timings(L, R, P);
        let elector = LeaderElector::sharded(client.clone(), config, ShardKey::Uid).unwrap();
        let leadership = elector.leadership();
        handles.push(leadership.clone());
        let seen = Arc::new(Seen { replica, leadership, log: log.clone() });
        let api: Api<ConfigMap> = Api::namespaced(client, &ctx.ns);
        let run = Controller::new(api, watcher::Config::default().labels(&ctx.selector()))
            .leader_election(elector)
            .run(reconcile, error_policy, seen);
        runs.push(Some(described(run)));
    }
    let mut replicas = Replicas(runs);
    let split = |h: &[Leadership]| h.iter().map(|l| l.leading().len()).collect::<Vec<_>>();
    replicas.until(&ctx, L * 6, "the shards split 2 and 2", || split(&handles) == [2, 2]).await;
    // Every object reconciled by the leader of its shard (each shard's objects are reconciled
    // when it is acquired), and nothing outside a lead.
    let owner_of = |shard: u32| handles.iter().position(|h| h.leads(shard));
    let objects: Vec<ConfigMap> =
        cms.list(&kube_proto::ListParams::default().labels(&ctx.selector())).await.unwrap().items;
    replicas
        .until(&ctx, L * 2, "every object reconciled by its shard's leader", || {
            let log = log.lock().unwrap();
            objects.iter().all(|cm| {
                let shard = handles[0].shard_of(&cm.metadata);
                log.0.iter().any(|(n, r, s)| *n == cm.name_any() && *s == shard && Some(*r) == owner_of(shard))
            })
        })
        .await;
    let log = log.lock().unwrap();
    assert!(log.1.is_empty(), "{:?}", log.1);
    let shards: BTreeSet<u32> = objects.iter().map(|cm| handles[1].shard_of(&cm.metadata)).collect();
    assert!(shards.len() > 1, "12 objects all in one shard: {shards:?}");
    let mut per_replica = BTreeMap::<usize, usize>::new();
    for (_, r, _) in &log.0 {
        *per_replica.entry(*r).or_default() += 1;
    }
    assert_eq!(per_replica.len(), 2, "both replicas reconciled: {per_replica:?}");
}
