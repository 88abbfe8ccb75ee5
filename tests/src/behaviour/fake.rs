//! The fake backend: kube-proto's [`FakeApiServer`] called directly, on simulated time.

use std::time::{Duration, Instant};

use kube_runtime::fake::{FakeApiServer, FakeConfig, Reply, WatchPoll};

use super::{Answer, Backend, Power, Skip, WatchHandle, WatchRead, WatchSource};

/// The namespace the fake's tests work in.
const NS: &str = "behaviour";

/// A fresh fake API server with the namespace `behaviour`, on a simulated clock that
/// [`advance`](Backend::advance) moves at once.
pub struct FakeBackend {
    server: FakeApiServer,
    /// The instant the server started; the clock is `t0 + now`.
    t0: Instant,
    now: Duration,
}

impl std::fmt::Debug for FakeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeBackend").field("now", &self.now).finish_non_exhaustive()
    }
}

impl Default for FakeBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeBackend {
    /// A fresh server holding the namespace `behaviour`.
    pub fn new() -> Self {
        // One origin instant; all later time is `t0 + Duration`.
        let t0 = Instant::now();
        let mut backend =
            FakeBackend { server: FakeApiServer::new(FakeConfig::default(), t0), t0, now: Duration::ZERO };
        let ns = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}});
        let req = kube_proto::Request::all::<k8s_openapi::api::core::v1::Namespace>()
            .create(&kube_proto::PostParams::default(), &ns)
            .expect("a namespace create request");
        let answer = backend.send(req);
        assert_eq!(answer.status, 201, "creating the namespace {NS}: {}", answer.json());
        backend
    }
}

impl Backend for FakeBackend {
    fn target(&self) -> &'static str {
        "fake"
    }

    fn namespace(&self) -> &str {
        NS
    }

    fn can(&self, _: Power) -> bool {
        true
    }

    fn now(&self) -> Duration {
        self.now
    }

    fn propagation(&self) -> Duration {
        Duration::ZERO
    }

    fn tolerance(&self) -> Duration {
        Duration::ZERO
    }

    fn send(&mut self, req: http::Request<Vec<u8>>) -> Answer {
        match self.server.handle(self.t0 + self.now, &req) {
            Reply::Response(resp) => {
                let (parts, body) = resp.into_parts();
                Answer { status: parts.status, headers: parts.headers, body }
            }
            Reply::Watch { id, head } => {
                self.server.cancel_watch(id);
                panic!("{} {}: expected a response, got a watch ({head:?})", req.method(), req.uri())
            }
            Reply::Upgrade { .. } => panic!("{} {}: expected a response, got an upgrade", req.method(), req.uri()),
        }
    }

    fn open_watch(&mut self, req: http::Request<Vec<u8>>) -> Result<WatchHandle, Box<Answer>> {
        match self.server.handle(self.t0 + self.now, &req) {
            Reply::Watch { id, head } if head.status().is_success() => {
                Ok(WatchHandle::new(WatchSource::Fake(id), self.now))
            }
            Reply::Watch { id, head } => {
                self.server.cancel_watch(id);
                Err(Box::new(Answer { status: head.status(), headers: head.headers().clone(), body: Vec::new() }))
            }
            Reply::Response(resp) => {
                let (parts, body) = resp.into_parts();
                Err(Box::new(Answer { status: parts.status, headers: parts.headers, body }))
            }
            Reply::Upgrade { .. } => panic!("{} {}: expected a watch, got an upgrade", req.method(), req.uri()),
        }
    }

    /// Polls whenever the server says something is due, from now to `now + until`, as a client
    /// holding the connection open would see it, and leaves the clock where the read ended.
    fn read_watch(&mut self, watch: &mut WatchHandle, until: Duration) -> WatchRead {
        let WatchSource::Fake(id) = watch.source else { panic!("not a fake watch: {watch:?}") };
        let mut read = WatchRead::default();
        let end = self.now + until;
        let mut t = self.now;
        loop {
            match self.server.poll_watch(id, self.t0 + t) {
                WatchPoll::Data(bytes) => read.chunks.push((t, bytes)),
                WatchPoll::Finished(bytes) => {
                    if !bytes.is_empty() {
                        read.chunks.push((t, bytes));
                    }
                    read.finished = Some(t);
                    break;
                }
                WatchPoll::Pending(wake) => {
                    if t >= end {
                        break;
                    }
                    let next = wake.map_or(end, |w| w.saturating_duration_since(self.t0));
                    t = next.max(t + Duration::from_millis(1)).min(end);
                }
            }
        }
        self.now = self.now.max(t);
        read
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    fn compact(&mut self) -> Result<(), Skip> {
        self.server.compact();
        Ok(())
    }
}
