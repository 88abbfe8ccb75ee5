//! Sharded controllers on Leases, on tokio and transport-hyper: replicas of a ConfigMap
//! controller split four shards between them (a fair share each), and the shards move when a
//! replica joins, shuts down (its Leases given back at once) or dies (taken over once they
//! expire). Each replica reconciles only the ConfigMaps of the shards it leads.
//!
//! By default three replicas run in this process on the embedded fake API server, with short
//! timings (4 s leases): replica-2 joins after 6 s, replica-1 shuts down at 14 s, and replica-0
//! dies at 22 s; every change of who leads what is printed.
//!
//! With `--cluster` one replica runs against your kubeconfig's cluster (its default namespace),
//! as `--id NAME` (default: `replica-<pid>`), for `--for SECONDS` (default 60), then gives its
//! shards back. Run two or three copies in separate terminals and watch the shards move as they
//! start and stop (stop one with Ctrl-C to see a death: its shards move only after their Leases
//! expire, 15 s). The loopback server of `cargo run -p kube-integration-tests --example serve`
//! works as a cluster:
//!
//! ```sh
//! cargo run --example leader_election                                   # embedded fake API server
//! cargo run -p kube-integration-tests --example serve > /tmp/kit &
//! KUBECONFIG=$(head -1 /tmp/kit) cargo run --example leader_election -- --cluster --id a
//! KUBECONFIG=$(head -1 /tmp/kit) cargo run --example leader_election -- --cluster --id b
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::{Either, select};
use k8s_openapi::api::core::v1::ConfigMap;
use kube_proto::{PostParams, ResourceExt};
use kube_runtime::controller::{Action, Controller};
use kube_runtime::fake::FakeTransport;
use kube_runtime::leader::{LeaderElector, Leadership, ShardConfig, ShardKey};
use kube_runtime::{Api, Client, watcher};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const SHARDS: u32 = 4;
const LABEL: &str = "app=leader-example";

/// How a replica ends.
#[derive(Clone, Copy)]
enum End {
    /// Gives its shards back after this long.
    ShutDown(Duration),
    /// Stops after this long without giving anything back.
    Dies(Duration),
}

struct Ctx {
    identity: String,
    leadership: Leadership,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, Never> {
    let shard = ctx.leadership.shard_of(&cm.metadata);
    println!("    {} reconciles {} (shard {shard})", ctx.identity, cm.name_any());
    Ok(Action::requeue(Duration::from_secs(30)))
}

fn error_policy(_: Arc<ConfigMap>, _: &Never, _: Arc<Ctx>) -> Action {
    Action::await_change()
}

/// One replica: a controller of the labelled ConfigMaps under sharded leader election.
async fn replica(client: Client, config: ShardConfig, end: End, leaderships: Arc<std::sync::Mutex<Vec<Leadership>>>) {
    let identity = config.lease.identity.clone();
    let elector = LeaderElector::sharded(client.clone(), config, ShardKey::Uid).expect("valid settings");
    let leadership = elector.leadership();
    leaderships.lock().unwrap().push(leadership.clone());
    let api: Api<ConfigMap> = Api::default_namespaced(client);
    let ctx = Arc::new(Ctx { identity: identity.clone(), leadership });
    let controller = Controller::new(api, watcher::Config::default().labels(LABEL)).leader_election(elector);
    match end {
        End::ShutDown(after) => {
            let controller = controller.graceful_shutdown_on(tokio::time::sleep(after));
            controller.run(reconcile, error_policy, ctx).for_each(|_| async {}).await;
            println!("{identity}: shut down, its shards given back");
        }
        End::Dies(after) => {
            let run = controller.run(reconcile, error_policy, ctx).for_each(|_| async {});
            let _ = select(Box::pin(run), Box::pin(tokio::time::sleep(after))).await;
            println!("{identity}: died, its Leases left to expire");
        }
    }
}

/// Prints who leads which shards whenever it changes.
async fn watch_leaders(leaderships: Arc<std::sync::Mutex<Vec<Leadership>>>, names: Vec<String>, start: Instant) {
    let mut last = String::new();
    loop {
        let now: Vec<String> = leaderships
            .lock()
            .unwrap()
            .iter()
            .zip(&names)
            .map(|(l, name)| format!("{name} {:?}", l.leading()))
            .collect();
        let line = now.join(", ");
        if line != last {
            println!("[{:5.1}s] shards: {line}", start.elapsed().as_secs_f64());
            last = line;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn make_configmaps(client: &Client) -> Result<(), BoxError> {
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    for i in 0..8 {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "metadata": {"name": format!("example-{i}"), "labels": {"app": "leader-example"}}
        }))?;
        match cms.create(&PostParams::default(), &cm).await {
            Ok(_) => {}
            Err(kube_runtime::Error::Api(e)) if e.reason() == Some(&kube_proto::Reason::AlreadyExists) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let start = Instant::now();
    let leaderships = Arc::new(std::sync::Mutex::new(Vec::new()));
    if args.iter().any(|a| a == "--cluster") {
        let identity = arg(&args, "--id").unwrap_or_else(|| format!("replica-{}", std::process::id()));
        let seconds: u64 = arg(&args, "--for").map_or(Ok(60), |s| s.parse())?;
        let client = transport_hyper::try_default().await?;
        make_configmaps(&client).await?;
        let ns = client.default_namespace().to_owned();
        println!("{identity}: {SHARDS} shards of Leases leader-example-<i> in {ns:?}, for {seconds} s");
        let config = ShardConfig::new(ns, "leader-example", identity.clone(), SHARDS);
        let run = replica(client, config, End::ShutDown(Duration::from_secs(seconds)), leaderships.clone());
        let watch = watch_leaders(leaderships, vec![identity], start);
        let _ = select(Box::pin(run), Box::pin(watch)).await;
        return Ok(());
    }

    println!("leader_election on the embedded fake API server (pass --cluster to use a real one)");
    let (transport, config) = FakeTransport::new();
    let client = Client::new(transport, config)?;
    make_configmaps(&client).await?;
    let timings = (Duration::from_secs(4), Duration::from_secs(3), Duration::from_millis(500));
    let shards = |identity: &str| {
        ShardConfig::new("default", "leader-example", identity, SHARDS).timings(timings.0, timings.1, timings.2)
    };
    let names = vec!["replica-0".to_owned(), "replica-1".to_owned(), "replica-2".to_owned()];
    // Replicas register their handles as they start: 0 and 1 at once, 2 later.
    let r0 = replica(client.clone(), shards("replica-0"), End::Dies(Duration::from_secs(22)), leaderships.clone());
    let r1 = replica(client.clone(), shards("replica-1"), End::ShutDown(Duration::from_secs(14)), leaderships.clone());
    let late = {
        let (client, leaderships) = (client.clone(), leaderships.clone());
        async move {
            tokio::time::sleep(Duration::from_secs(6)).await;
            println!("[{:5.1}s] replica-2 joins", start.elapsed().as_secs_f64());
            replica(client, shards("replica-2"), End::ShutDown(Duration::from_secs(24)), leaderships).await;
        }
    };
    let replicas = futures_util::future::join3(r0, r1, late);
    let watch = watch_leaders(leaderships.clone(), names, start);
    if let Either::Right(_) = select(Box::pin(replicas), Box::pin(watch)).await {
        unreachable!("the watch never ends");
    }
    println!("[{:5.1}s] done", start.elapsed().as_secs_f64());
    Ok(())
}
