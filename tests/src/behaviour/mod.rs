//! kube-apiserver behaviour tests written once and run against two targets: kube-proto's fake
//! API server, driven directly on simulated time, and a real cluster (the kubeconfig of
//! [`E2E_KUBECONFIG`](crate::E2E_KUBECONFIG)) through a real [`Client`](kube_runtime::Client) on
//! real time. Comparing the two is the point: a behaviour test that passes on both shows the fake
//! models that behaviour as the real server has it.
//!
//! A test body is a plain `fn(&mut Behaviour)`. It sends requests built by the core (or raw
//! ones), opens and reads watches, and waits, through a [`Behaviour`], which hands them to a
//! [`Backend`]:
//!
//! - [`FakeBackend`]: [`FakeApiServer::handle`](kube_runtime::fake::FakeApiServer::handle) and
//!   [`poll_watch`](kube_runtime::fake::FakeApiServer::poll_watch) called directly, with simulated
//!   time: a wait moves the clock at once, so minutes of watch time take microseconds, and it has
//!   every [`Power`] (compaction at will, minutes of clock).
//! - [`ClusterBackend`]: a [`Client`](kube_runtime::Client) over transport-hyper, blocking on a
//!   tokio runtime of its own, on real time, in a fresh namespace `kit-<test>-<suffix>` (labelled
//!   [`SUITE_LABEL`](crate::SUITE_LABEL)) that it deletes afterwards, after stripping the
//!   finalizers the tests leave on ConfigMaps and force-deleting Pods. It has no power.
//!
//! [`behaviour_tests!`](crate::behaviour_tests) instantiates each body twice: `fake::<name>` and
//! `cluster::<name>`. The cluster variants are `#[ignore]`d, so that a run without a cluster
//! shows them as ignored rather than passed; with `KUBE_E2E_KUBECONFIG` set, run them with
//! `cargo test -p kube-integration-tests --test behaviour -- --include-ignored` (or `--ignored`
//! for only them). Those that declare a power the cluster lacks print a note and pass there; and
//! without the variable a cluster variant that is run anyway fails, saying so.
//!
//! Bodies must keep a real cluster clean: everything namespaced goes into
//! [`Behaviour::ns`], cluster-scoped objects get names unique to the test (derived from the
//! namespace) and a cleanup request ([`Behaviour::cleanup_with`]), and counted lists are scoped
//! by a label, since a real cluster adds objects of its own (the `kube-root-ca.crt` ConfigMap).

mod cluster;
mod fake;

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use kube_proto::{WatchDecoder, WatchEvent};
use kube_runtime::fake::WatchId;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use cluster::ClusterBackend;
pub use fake::FakeBackend;

/// What only the fake can do; a test that needs one is skipped on a real cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    /// Forget the history at will, as an etcd compaction does on its own schedule (every five
    /// minutes on a real cluster, and not on request).
    Compaction,
    /// Move the clock by minutes at once (to see minute-apart bookmarks, or long timeouts).
    Minutes,
}

impl fmt::Display for Power {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Power::Compaction => "compaction on request",
            Power::Minutes => "a clock that jumps by minutes at once",
        })
    }
}

/// Why a backend cannot do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip(pub String);

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON, or as a JSON string when it is not JSON (a plain-text 404, say), or
    /// `Null` when empty.
    pub fn json(&self) -> Value {
        body_json(&self.body)
    }
}

/// The body as JSON, or as a JSON string when it is not JSON, or `Null` when empty.
pub fn body_json(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// Where a watch's bytes come from.
enum WatchSource {
    Fake(WatchId),
    Stream(kube_runtime::transport::Body),
}

/// An open watch: its source, when it opened, and the bytes of a line not yet complete.
pub struct WatchHandle {
    source: WatchSource,
    /// The backend's clock when the watch opened.
    opened: Duration,
    /// When the stream ended (the backend's clock), if it has.
    finished: Option<Duration>,
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
}

impl fmt::Debug for WatchHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            WatchSource::Fake(id) => format!("fake watch {id}"),
            WatchSource::Stream(_) => "a response body".to_owned(),
        };
        f.debug_struct("WatchHandle")
            .field("source", &source)
            .field("opened", &self.opened)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl WatchHandle {
    fn new(source: WatchSource, opened: Duration) -> Self {
        WatchHandle { source, opened, finished: None, partial: Vec::new() }
    }
}

/// What one read of a watch gave: the chunks with the backend's clock when each arrived, and
/// when the stream ended if it did.
#[derive(Debug, Default)]
pub struct WatchRead {
    /// The body's chunks as they arrived (not cut at line ends).
    pub chunks: Vec<(Duration, Vec<u8>)>,
    /// When the stream ended, if it did within the read.
    pub finished: Option<Duration>,
}

/// A kube-apiserver to run behaviour tests against.
pub trait Backend {
    /// `"fake"` or `"cluster"`, for messages.
    fn target(&self) -> &'static str;
    /// The namespace of this test, which exists.
    fn namespace(&self) -> &str;
    /// Whether this backend has `power`.
    fn can(&self, power: Power) -> bool;
    /// The backend's clock: the time since it started (simulated on the fake).
    fn now(&self) -> Duration;
    /// How long a write may take to reach open watches and the watch cache: zero on the fake,
    /// where everything is in step.
    fn propagation(&self) -> Duration;
    /// How far a timed event may stray from when the test expects it: zero on the fake.
    fn tolerance(&self) -> Duration;
    /// Sends a request that is not a watch and reads the whole response.
    fn send(&mut self, req: http::Request<Vec<u8>>) -> Answer;
    /// Opens a watch; a response other than a `200` stream is handed back whole.
    fn open_watch(&mut self, req: http::Request<Vec<u8>>) -> Result<WatchHandle, Box<Answer>>;
    /// Reads a watch for `until` (moving the clock), or until the stream ends.
    fn read_watch(&mut self, watch: &mut WatchHandle, until: Duration) -> WatchRead;
    /// Lets `d` pass: at once on the fake, a real wait on a cluster.
    fn advance(&mut self, d: Duration);
    /// Forgets the history, as an etcd compaction does.
    fn compact(&mut self) -> Result<(), Skip>;
    /// Cleans up after the test (after its cleanup requests).
    fn teardown(&mut self) {}
}

/// A watch read for a while.
#[derive(Debug)]
pub struct Run<K> {
    /// Each event with when it arrived, since the watch opened.
    pub events: Vec<(Duration, WatchEvent<K>)>,
    /// When the server ended the stream, since the watch opened, if it did.
    pub finished_at: Option<Duration>,
}

impl<K> Run<K> {
    /// The event types in order, as the server spells them.
    pub fn types(&self) -> Vec<&'static str> {
        self.events.iter().map(|(_, e)| e.type_name()).collect()
    }
}

/// What a behaviour test body works with: a backend and the test's cleanup requests.
pub struct Behaviour {
    backend: Box<dyn Backend>,
    test: String,
    cleanups: Vec<http::Request<Vec<u8>>>,
}

impl fmt::Debug for Behaviour {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Behaviour")
            .field("target", &self.backend.target())
            .field("ns", &self.backend.namespace())
            .field("test", &self.test)
            .finish_non_exhaustive()
    }
}

fn describe(req: &http::Request<Vec<u8>>) -> String {
    format!("{} {}", req.method(), req.uri())
}

impl Behaviour {
    /// A behaviour test's view of `backend`.
    pub fn new(backend: Box<dyn Backend>, test: &str) -> Self {
        Behaviour { backend, test: test.to_owned(), cleanups: Vec::new() }
    }

    /// The test's namespace.
    pub fn ns(&self) -> &str {
        self.backend.namespace()
    }

    /// `"fake"` or `"cluster"`.
    pub fn target(&self) -> &'static str {
        self.backend.target()
    }

    /// Whether the backend has `power`.
    pub fn can(&self, power: Power) -> bool {
        self.backend.can(power)
    }

    /// How far a timed event may stray from when it is expected (zero on the fake).
    pub fn tolerance(&self) -> Duration {
        self.backend.tolerance()
    }

    /// Asserts that `got` is `want`, give or take the backend's [`tolerance`](Self::tolerance).
    #[track_caller]
    pub fn assert_about(&self, got: Duration, want: Duration, what: &str) {
        let tolerance = self.tolerance();
        assert!(got.abs_diff(want) <= tolerance, "{what}: {got:?}, expected {want:?} (± {tolerance:?})");
    }

    /// Sends a request that is not a watch: the whole response.
    pub fn respond(&mut self, req: http::Request<Vec<u8>>) -> Answer {
        self.backend.send(req)
    }

    /// Sends a request that is not a watch: its status and its body as JSON.
    pub fn send(&mut self, req: http::Request<Vec<u8>>) -> (StatusCode, Value) {
        let answer = self.backend.send(req);
        (answer.status, answer.json())
    }

    /// Sends a request and asserts its status, returning the body as JSON.
    #[track_caller]
    pub fn expect(&mut self, req: http::Request<Vec<u8>>, status: u16) -> Value {
        let what = describe(&req);
        let (got, body) = self.send(req);
        assert_eq!(got.as_u16(), status, "{what} ({}): {body:#}", self.target());
        body
    }

    /// Opens a watch, asserting that it starts with `200`.
    #[track_caller]
    pub fn open_watch(&mut self, req: http::Request<Vec<u8>>) -> WatchHandle {
        let what = describe(&req);
        match self.backend.open_watch(req) {
            Ok(watch) => watch,
            Err(answer) => {
                panic!("{what} ({}): expected a watch, got {} {}", self.target(), answer.status, answer.json())
            }
        }
    }

    /// Reads a watch until `at` after it opened (or at once if that has passed), or until the
    /// stream ends, as a client holding the connection open sees it.
    pub fn read_until<K: DeserializeOwned + 'static>(&mut self, watch: &mut WatchHandle, at: Duration) -> Run<K> {
        let until = (watch.opened + at).saturating_sub(self.backend.now());
        self.read(watch, until)
    }

    /// The events a watch has now, after the writes so far: on a cluster, what arrives within
    /// the backend's propagation delay.
    pub fn events<K: DeserializeOwned + 'static>(&mut self, watch: &mut WatchHandle) -> Vec<WatchEvent<K>> {
        let until = self.backend.propagation();
        self.read(watch, until).events.into_iter().map(|(_, e)| e).collect()
    }

    fn read<K: DeserializeOwned + 'static>(&mut self, watch: &mut WatchHandle, until: Duration) -> Run<K> {
        let opened = watch.opened;
        let since_open = |t: Duration| t.saturating_sub(opened);
        let mut run = Run { events: Vec::new(), finished_at: watch.finished.map(since_open) };
        if watch.finished.is_some() {
            return run;
        }
        let read = self.backend.read_watch(watch, until);
        // Events are lines: decode each as its newline arrives, whatever the chunking.
        for (t, chunk) in read.chunks {
            watch.partial.extend_from_slice(&chunk);
            while let Some(nl) = watch.partial.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = watch.partial.drain(..=nl).collect();
                run.events.extend(decode::<K>(&line, false).into_iter().map(|e| (since_open(t), e)));
            }
        }
        if let Some(t) = read.finished {
            let rest = std::mem::take(&mut watch.partial);
            run.events.extend(decode::<K>(&rest, true).into_iter().map(|e| (since_open(t), e)));
            watch.finished = Some(t);
            run.finished_at = Some(since_open(t));
        }
        run
    }

    /// Lets `d` pass: at once on the fake, a real wait on a cluster.
    pub fn advance(&mut self, d: Duration) {
        self.backend.advance(d);
    }

    /// Waits for the backend's propagation delay, so that caches (the watch cache that serves
    /// `resourceVersion=0` and `NotOlderThan`) have seen the writes so far. Nothing on the fake.
    pub fn catch_up(&mut self) {
        let d = self.backend.propagation();
        self.backend.advance(d);
    }

    /// Forgets the history, as an etcd compaction does. The test must declare
    /// [`Power::Compaction`].
    #[track_caller]
    pub fn compact(&mut self) {
        if let Err(skip) = self.backend.compact() {
            panic!("{}: compaction on the {} (declare `needs(Compaction)`): {skip}", self.test, self.target());
        }
    }

    /// Checks `check` each second until it holds, as one waits for a controller; panics if it
    /// does not within `within`.
    #[track_caller]
    pub fn eventually(&mut self, within: Duration, mut check: impl FnMut(&mut Behaviour) -> bool) {
        let from = self.backend.now();
        loop {
            if check(self) {
                return;
            }
            assert!(self.backend.now() - from < within, "the condition did not hold within {within:?}");
            self.backend.advance(Duration::from_secs(1));
        }
    }

    /// Sends `req` after the test (pass or fail), to delete what it made outside its
    /// namespace (a CRD, say). Its answer is not checked.
    pub fn cleanup_with(&mut self, req: http::Request<Vec<u8>>) {
        self.cleanups.push(req);
    }

    fn finish(&mut self) {
        for req in std::mem::take(&mut self.cleanups) {
            let what = describe(&req);
            let sent = std::panic::catch_unwind(AssertUnwindSafe(|| self.backend.send(req)));
            if sent.is_err() {
                eprintln!("note: {} ({}): cleanup {what} failed", self.test, self.target());
            }
        }
        self.backend.teardown();
    }
}

fn decode<K: DeserializeOwned + 'static>(bytes: &[u8], last: bool) -> Vec<WatchEvent<K>> {
    let mut decoder = WatchDecoder::<K>::new();
    decoder.push(bytes);
    let mut out = Vec::new();
    while let Some(ev) = decoder.next_event() {
        out.push(ev.unwrap_or_else(|e| panic!("an undecodable watch line: {e:?}")));
    }
    if last && let Some(ev) = decoder.finish() {
        out.push(ev.unwrap_or_else(|e| panic!("an undecodable last watch line: {e:?}")));
    }
    out
}

/// Runs `body` against a fresh fake API server.
pub fn run_fake(test: &str, body: fn(&mut Behaviour)) {
    run(Box::new(FakeBackend::new()), test, body);
}

/// Runs `body` against the cluster of [`E2E_KUBECONFIG`](crate::E2E_KUBECONFIG) in a fresh
/// namespace, passing with a note when the test `needs` a power the cluster lacks.
///
/// # Panics
/// When [`E2E_KUBECONFIG`](crate::E2E_KUBECONFIG) is unset: there is no cluster to compare the
/// fake with, and a test that ran nothing must not pass.
pub fn run_cluster(test: &str, needs: &[Power], body: fn(&mut Behaviour)) {
    let Some(config) = crate::e2e_config() else {
        panic!("{test}: {} is not set: the cluster behaviour tests need a real cluster", crate::E2E_KUBECONFIG);
    };
    if let Some(power) = needs.iter().find(|p| !ClusterBackend::CAN.contains(p)) {
        eprintln!("note: {test}: skipped against a real cluster: it needs {power}, which only the fake has");
        return;
    }
    run(Box::new(ClusterBackend::new(config, test)), test, body);
}

fn run(backend: Box<dyn Backend>, test: &str, body: fn(&mut Behaviour)) {
    let mut b = Behaviour::new(backend, test);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| body(&mut b)));
    b.finish();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Instantiates behaviour test bodies (`fn name(b: &mut Behaviour)`, in scope at the macro's
/// call site) once per target: `fake::name` against the fake, and `cluster::name` against the
/// cluster of `KUBE_E2E_KUBECONFIG`, ignored unless asked for (`--include-ignored`), since it
/// needs that cluster. A body that needs a power only the fake has says so,
/// `name: needs(Compaction)`, and is skipped on a cluster with a note.
#[macro_export]
macro_rules! behaviour_tests {
    ($($body:ident $(: needs($($power:ident),+))?),* $(,)?) => {
        /// The bodies against kube-proto's fake API server, on simulated time.
        mod fake {
            $(
                #[test]
                fn $body() {
                    $crate::behaviour::run_fake(stringify!($body), super::$body);
                }
            )*
        }
        /// The bodies against the cluster of `KUBE_E2E_KUBECONFIG`, on real time.
        mod cluster {
            $(
                #[test]
                #[ignore = "needs KUBE_E2E_KUBECONFIG: a real cluster"]
                fn $body() {
                    let needs: &[$crate::behaviour::Power] = &[$($($crate::behaviour::Power::$power),+)?];
                    $crate::behaviour::run_cluster(stringify!($body), needs, super::$body);
                }
            )*
        }
    };
}
