//! Runs one test body through one transport, against the loopback server or, when
//! `KUBE_E2E_KUBECONFIG` names a kubeconfig, against that cluster, in a namespace of its own.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::{Either, select};
use k8s_openapi::api::core::v1::Namespace;
use kube_proto::config::Config;
use kube_proto::resource::NamespaceResourceScope;
use kube_proto::{DeleteParams, PostParams, Resource};
use kube_runtime::config::KubeconfigOptions;
use kube_runtime::{Api, Client};
use serde_json::json;

use crate::server::{ServerOptions, TestServer};

/// The variable naming a kubeconfig whose cluster the suite runs against instead of the loopback
/// fake (its current context, or `KUBE_E2E_CONTEXT`).
pub const E2E_KUBECONFIG: &str = "KUBE_E2E_KUBECONFIG";
/// The context of [`E2E_KUBECONFIG`] to use instead of its current one.
pub const E2E_CONTEXT: &str = "KUBE_E2E_CONTEXT";
/// The label every object a test counts carries; its value is the test's namespace.
pub const SUITE_LABEL: &str = "kit-suite";

/// The transport a test body runs through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// transport-hyper, on tokio.
    Hyper,
    /// transport-asyncstd, on async-std.
    AsyncStd,
}

impl TransportKind {
    /// A client for a configuration over this transport (proxies from the environment are not
    /// used for the loopback server).
    pub fn client(self, config: Config) -> Result<Client, kube_runtime::Error> {
        let transport_error = kube_runtime::Error::Transport;
        match self {
            TransportKind::Hyper => {
                let transport = transport_hyper::HyperTransport::builder(&config).no_env_proxy().build();
                Client::new(transport.map_err(transport_error)?, config)
            }
            TransportKind::AsyncStd => {
                Client::new(transport_asyncstd::AsyncStdTransport::new(&config).map_err(transport_error)?, config)
            }
        }
    }

    /// Whether this transport speaks HTTP/2 (over TLS, where ALPN offers it).
    pub fn http2(self) -> bool {
        self == TransportKind::Hyper
    }
}

/// Where the tests run.
#[derive(Debug, Clone)]
enum Target {
    Loopback(Arc<TestServer>),
    Cluster,
}

/// What a test body gets: a client, its own namespace, and the loopback server when there is
/// one.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The transport under test.
    pub transport: TransportKind,
    /// A client for the target, through that transport.
    pub client: Client,
    /// A namespace of this test's own.
    pub ns: String,
    /// The test's name.
    pub test: String,
    config: Config,
    target: Target,
}

impl Ctx {
    /// Objects of a namespaced kind in the test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// The loopback server, if the tests run against it.
    pub fn server(&self) -> Option<&TestServer> {
        match &self.target {
            Target::Loopback(s) => Some(s),
            Target::Cluster => None,
        }
    }

    /// The loopback server, for a body registered as `name: loopback` in [`transport_tests!`](crate::transport_tests)
    /// (it needs the server's fault knobs or its certificates): such a body runs against a
    /// loopback server even when `KUBE_E2E_KUBECONFIG` names a cluster, so it is never skipped.
    ///
    /// # Panics
    /// When the body runs against a cluster, that is, when it was not registered as loopback:
    /// `why` says what it needs.
    pub fn loopback(&self, why: &str) -> &TestServer {
        self.server().unwrap_or_else(|| {
            panic!("{}: needs the loopback server ({why}): register it as `{}: loopback`", self.test, self.test)
        })
    }

    /// The configuration of [`client`](Self::client).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether the tests run against a real cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster)
    }

    /// A client for another configuration, through the same transport.
    pub fn client_for(&self, config: Config) -> Client {
        self.transport.client(config).expect("a transport for the configuration")
    }

    /// The suite label, as a selector: `kit-suite=<namespace>`.
    pub fn selector(&self) -> String {
        format!("{SUITE_LABEL}={}", self.ns)
    }

    /// The suite label plus `extra`, as metadata labels.
    pub fn labels(&self, extra: &[(&str, &str)]) -> serde_json::Value {
        let mut labels: BTreeMap<String, String> = BTreeMap::new();
        labels.insert(SUITE_LABEL.into(), self.ns.clone());
        for (k, v) in extra {
            labels.insert((*k).into(), (*v).into());
        }
        json!(labels)
    }

    /// Sleeps on the transport's timer.
    pub async fn sleep(&self, duration: Duration) {
        let deadline = self.client.now() + duration;
        self.client.transport().sleep_until(deadline).await;
    }

    /// Runs `fut`, panicking if it takes longer than `limit`.
    pub async fn within<T>(&self, limit: Duration, what: &str, fut: impl Future<Output = T>) -> T {
        let deadline = self.client.now() + limit;
        let timer = self.client.transport().sleep_until(deadline);
        match select(std::pin::pin!(fut), timer).await {
            Either::Left((value, _)) => value,
            Either::Right(((), _)) => panic!("{what}: took longer than {limit:?}"),
        }
    }

    /// Polls `check` every 50 ms until it is true, panicking after `limit`.
    pub async fn eventually<F, Fut>(&self, limit: Duration, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let deadline = self.client.now() + limit;
        loop {
            if check().await {
                return;
            }
            assert!(self.client.now() < deadline, "{what}: not true within {limit:?}");
            self.sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The configuration of the real cluster, when [`E2E_KUBECONFIG`] is set.
///
/// # Panics
/// When the kubeconfig cannot be loaded.
pub fn e2e_config() -> Option<Config> {
    let path = std::env::var_os(E2E_KUBECONFIG).filter(|p| !p.is_empty())?;
    let options = KubeconfigOptions {
        paths: Some(vec![PathBuf::from(path)]),
        context: std::env::var(E2E_CONTEXT).ok().filter(|c| !c.is_empty()),
        ..KubeconfigOptions::default()
    };
    Some(kube_runtime::config::from_kubeconfig(&options).unwrap_or_else(|e| panic!("{E2E_KUBECONFIG}: {e}")))
}

/// A namespace name for a test: `kit-<test>-<suffix>`, a valid DNS label of at most `max_len`
/// (at most 63) characters, the test's name shortened to fit.
pub(crate) fn namespace_name(test: &str, max_len: usize) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!("{:06x}", (u64::from(nanos) ^ (u64::from(std::process::id()) << 20) ^ (n << 8)) & 0xff_ffff);
    let stem: String =
        test.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    let stem: String = stem.chars().take(max_len.min(63) - "kit--".len() - suffix.len()).collect();
    format!("kit-{}-{suffix}", stem.trim_matches('-'))
}

/// How long one test body may take.
fn limit(cluster: bool) -> Duration {
    if cluster { Duration::from_secs(180) } else { Duration::from_secs(30) }
}

/// Where a test body runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    /// Against the cluster of [`E2E_KUBECONFIG`] when it is set, else against the loopback server.
    Anywhere,
    /// Always against a fresh loopback server: the body needs its fault knobs or certificates.
    Loopback,
}

/// Runs `body` through `transport`: against the cluster of [`E2E_KUBECONFIG`] when it is set,
/// else against a fresh loopback server (HTTPS, token auth). Either way in a fresh namespace,
/// deleted afterwards on a real cluster.
pub async fn run<F, Fut>(transport: TransportKind, test: &str, body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    run_on(transport, test, Where::Anywhere, body).await;
}

/// Runs `body` through `transport`, where `place` says: see [`Where`] and [`run`].
pub async fn run_on<F, Fut>(transport: TransportKind, test: &str, place: Where, body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let cluster = match place {
        Where::Anywhere => e2e_config(),
        Where::Loopback => None,
    };
    let (client, config, target) = match cluster {
        Some(config) => {
            let client = match transport {
                TransportKind::Hyper => transport_hyper::client_from_config(config.clone()).await,
                TransportKind::AsyncStd => transport_asyncstd::client_from_config(config.clone()).await,
            };
            (client.expect("a client for the e2e cluster"), config, Target::Cluster)
        }
        None => {
            let server = TestServer::start(ServerOptions::default());
            let config = server.config();
            let client = transport.client(config.clone()).expect("a client for the loopback server");
            (client, config, Target::Loopback(Arc::new(server)))
        }
    };
    let ctx = Ctx { transport, client, ns: namespace_name(test, 63), test: test.to_owned(), config, target };
    let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": ctx.ns, "labels": {SUITE_LABEL: "true"}}}))
        .expect("a Namespace");
    ctx.within(limit(ctx.is_cluster()), "creating the namespace", namespaces.create(&PostParams::default(), &ns))
        .await
        .unwrap_or_else(|e| panic!("creating the namespace {}: {e}", ctx.ns));

    // On the heap: the bodies' futures hold large objects (a Deployment is kilobytes in debug
    // builds), and async-std polls them on the test thread's stack.
    let body = Box::pin(body(ctx.clone()));
    let outcome = AssertUnwindSafe(ctx.within(limit(ctx.is_cluster()), test, body)).catch_unwind().await;

    if ctx.is_cluster() {
        let deleted = ctx.within(Duration::from_secs(30), "deleting the namespace", async {
            namespaces.delete(&ctx.ns, &DeleteParams::background()).await
        });
        if let Err(e) = deleted.await {
            eprintln!("note: could not delete the namespace {}: {e}", ctx.ns);
        }
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Instantiates test bodies (`async fn name(ctx: Ctx)`, in scope at the macro's call site) once
/// per transport: `hyper_tokio::name` (`#[tokio::test]`) and `asyncstd::name`
/// (`#[async_std::test]`). A body written `name: loopback` needs the loopback server (its fault
/// knobs or certificates, through [`Ctx::loopback`]) and runs against one even when
/// `KUBE_E2E_KUBECONFIG` names a cluster; the others run against that cluster when it is set.
#[macro_export]
macro_rules! transport_tests {
    ($($body:ident $(: $place:ident)?),* $(,)?) => {
        /// The bodies through transport-hyper, on tokio.
        mod hyper_tokio {
            $(
                #[tokio::test]
                async fn $body() {
                    let place = $crate::transport_tests!(@where $($place)?);
                    $crate::run_on($crate::TransportKind::Hyper, stringify!($body), place, super::$body).await;
                }
            )*
        }
        /// The bodies through transport-asyncstd, on async-std.
        mod asyncstd {
            $(
                #[async_std::test]
                async fn $body() {
                    let place = $crate::transport_tests!(@where $($place)?);
                    $crate::run_on($crate::TransportKind::AsyncStd, stringify!($body), place, super::$body).await;
                }
            )*
        }
    };
    (@where) => { $crate::Where::Anywhere };
    (@where loopback) => { $crate::Where::Loopback };
}
