//! The cluster backend: a real [`Client`] over transport-hyper, blocking on a tokio runtime of
//! its own, on real time, in a fresh namespace.

use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube_proto::config::Config;
use kube_proto::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Request};
use kube_runtime::Client;
use serde_json::json;

use super::{Answer, Backend, Power, Skip, WatchHandle, WatchRead, WatchSource, body_json};
use crate::SUITE_LABEL;

/// How long one request (or the head of a watch) may take.
const REQUEST_LIMIT: Duration = Duration::from_secs(60);

/// How long a write may take to reach open watches and the watch cache.
const PROPAGATION: Duration = Duration::from_secs(1);

/// How far a timed watch event (the end at `timeoutSeconds`) may stray from when it is expected:
/// the server's clock starts when it reads the request, ours when the response head arrives.
const TOLERANCE: Duration = Duration::from_secs(1);

/// A real cluster, reached through a [`Client`] on a tokio runtime of its own, in a namespace
/// `kit-<test>-<suffix>` made for the test and deleted after it.
pub struct ClusterBackend {
    rt: tokio::runtime::Runtime,
    client: Client,
    ns: String,
    start: Instant,
}

impl std::fmt::Debug for ClusterBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterBackend").field("ns", &self.ns).finish_non_exhaustive()
    }
}

impl ClusterBackend {
    /// What a real cluster can do of the fake's powers: nothing.
    pub const CAN: &'static [Power] = &[];

    /// A client for `config` and a fresh namespace for `test`.
    ///
    /// # Panics
    /// When the client cannot be built or the namespace cannot be created.
    pub fn new(config: Config, test: &str) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
        let client = rt
            .block_on(transport_hyper::client_from_config(config))
            .unwrap_or_else(|e| panic!("a client for {}: {e}", crate::E2E_KUBECONFIG));
        // At most 58 characters, so that `<ns>-none` is still a valid namespace name.
        let ns = crate::harness::namespace_name(test, 58);
        let mut backend = ClusterBackend { rt, client, ns, start: Instant::now() };
        let body = json!({"apiVersion": "v1", "kind": "Namespace",
                          "metadata": {"name": backend.ns, "labels": {SUITE_LABEL: "true"}}});
        let req = Request::all::<Namespace>().create(&PostParams::default(), &body).expect("a request");
        let answer = backend.send(req);
        assert_eq!(answer.status, 201, "creating the namespace {}: {}", backend.ns, answer.json());
        backend
    }

    fn try_send(&self, req: http::Request<Vec<u8>>) -> Result<Answer, String> {
        let client = self.client.clone();
        self.rt.block_on(async move {
            let exchange = async {
                let resp = client.send_once(req).await.map_err(|e| e.to_string())?;
                let (status, headers, body) = kube_runtime::client::collect(resp).await.map_err(|e| e.to_string())?;
                Ok(Answer { status, headers, body })
            };
            tokio::time::timeout(REQUEST_LIMIT, exchange)
                .await
                .unwrap_or_else(|_| Err(format!("no complete answer within {REQUEST_LIMIT:?}")))
        })
    }

    /// Removes what would hold the namespace's deletion up: the finalizers the tests put on
    /// ConfigMaps (no controller removes them), and Pods bound to nodes that do not exist
    /// (deleted gracefully, they would wait for a kubelet).
    fn release(&self) -> Result<(), String> {
        let cms = Request::namespaced::<ConfigMap>(&self.ns);
        let list = self.try_send(cms.list(&ListParams::default()).map_err(|e| e.to_string())?)?;
        for item in body_json(&list.body)["items"].as_array().into_iter().flatten() {
            let held = item["metadata"]["finalizers"].as_array().is_some_and(|f| !f.is_empty());
            if let (true, Some(name)) = (held, item["metadata"]["name"].as_str()) {
                let patch = json!({"metadata": {"finalizers": null}});
                self.try_send(
                    cms.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).map_err(|e| e.to_string())?,
                )?;
            }
        }
        let pods = Request::namespaced::<Pod>(&self.ns);
        let req = pods
            .delete_collection(&DeleteParams::default().grace_period(0), &ListParams::default())
            .map_err(|e| e.to_string())?;
        self.try_send(req)?;
        Ok(())
    }
}

impl Backend for ClusterBackend {
    fn target(&self) -> &'static str {
        "cluster"
    }

    fn namespace(&self) -> &str {
        &self.ns
    }

    fn can(&self, power: Power) -> bool {
        Self::CAN.contains(&power)
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn propagation(&self) -> Duration {
        PROPAGATION
    }

    fn tolerance(&self) -> Duration {
        TOLERANCE
    }

    fn send(&mut self, req: http::Request<Vec<u8>>) -> Answer {
        let what = format!("{} {}", req.method(), req.uri());
        self.try_send(req).unwrap_or_else(|e| panic!("{what} (cluster): {e}"))
    }

    fn open_watch(&mut self, req: http::Request<Vec<u8>>) -> Result<WatchHandle, Box<Answer>> {
        let what = format!("{} {}", req.method(), req.uri());
        let client = self.client.clone();
        let resp = self
            .rt
            .block_on(async move { tokio::time::timeout(REQUEST_LIMIT, client.send_once(req)).await })
            .unwrap_or_else(|_| panic!("{what} (cluster): no answer within {REQUEST_LIMIT:?}"))
            .unwrap_or_else(|e| panic!("{what} (cluster): {e}"));
        if resp.status == http::StatusCode::OK {
            return Ok(WatchHandle::new(WatchSource::Stream(resp.body), self.now()));
        }
        let (status, headers, body) = self
            .rt
            .block_on(kube_runtime::client::collect(resp))
            .unwrap_or_else(|e| panic!("{what} (cluster): reading the answer: {e}"));
        Err(Box::new(Answer { status, headers, body }))
    }

    fn read_watch(&mut self, watch: &mut WatchHandle, until: Duration) -> WatchRead {
        let start = self.start;
        let WatchSource::Stream(body) = &mut watch.source else { panic!("not a response body: {watch:?}") };
        self.rt.block_on(async move {
            let deadline = tokio::time::Instant::now() + until;
            let mut read = WatchRead::default();
            loop {
                match tokio::time::timeout_at(deadline, body.next()).await {
                    Err(_) => return read,
                    Ok(None) => {
                        read.finished = Some(start.elapsed());
                        return read;
                    }
                    Ok(Some(Ok(chunk))) => read.chunks.push((start.elapsed(), chunk.to_vec())),
                    Ok(Some(Err(e))) => panic!("the watch broke (cluster): {e}"),
                }
            }
        })
    }

    fn advance(&mut self, d: Duration) {
        // On the runtime (the timer needs its context), so that open connections are read
        // meanwhile.
        self.rt.block_on(async move { tokio::time::sleep(d).await });
    }

    fn compact(&mut self) -> Result<(), Skip> {
        Err(Skip("a real cluster compacts etcd on its own schedule, not on request".into()))
    }

    fn teardown(&mut self) {
        if let Err(e) = self.release() {
            eprintln!("note: releasing the namespace {}: {e}", self.ns);
        }
        let req = Request::all::<Namespace>().delete(&self.ns, &DeleteParams::background()).expect("a request");
        match self.try_send(req) {
            Ok(a) if a.status.is_success() || a.status == http::StatusCode::NOT_FOUND => {}
            Ok(a) => eprintln!("note: could not delete the namespace {}: {} {}", self.ns, a.status, a.json()),
            Err(e) => eprintln!("note: could not delete the namespace {}: {e}", self.ns),
        }
    }
}
