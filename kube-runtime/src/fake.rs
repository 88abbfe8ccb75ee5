//! An in-process transport serving the fake API server (the `kube-proto-fake` crate): no
//! sockets, no cluster. Users test their controllers against it; the examples run on it by
//! default.
//!
//! The fake itself is re-exported: whole as [`server`], and its main types next to
//! [`FakeTransport`], so that a crate depending on `kube-runtime` with the `fake` feature needs
//! no other dependency to set a server up, drive it directly or inject faults
//! ([`server::faults`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::future::BoxFuture;
use http::Method;
use kube_proto::config::Config;

pub use kube_proto_fake as server;
pub use kube_proto_fake::{FakeApiServer, FakeConfig, Reply, WatchId, WatchPoll};

use crate::transport::{Transport, TransportError, TransportResponse};

/// The base URL the fake is addressed by (it is never resolved).
pub const FAKE_URL: &str = "http://fake-apiserver.invalid";

struct Shared {
    server: Mutex<FakeApiServer>,
    /// Watch bodies waiting for a write.
    waiting: Mutex<Vec<Waker>>,
}

/// The in-process transport. Clones share one server.
#[derive(Clone)]
pub struct FakeTransport {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakeTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTransport").finish_non_exhaustive()
    }
}

impl FakeTransport {
    /// A fresh fake API server (built-in kinds, the usual namespaces), and the configuration
    /// that points a client at it.
    pub fn new() -> (FakeTransport, Config) {
        #[allow(clippy::disallowed_methods)]
        let now = Instant::now();
        Self::with_server(FakeApiServer::new(FakeConfig::default(), now))
    }

    /// Serves a given fake API server.
    pub fn with_server(server: FakeApiServer) -> (FakeTransport, Config) {
        let transport =
            FakeTransport { shared: Arc::new(Shared { server: Mutex::new(server), waiting: Mutex::new(Vec::new()) }) };
        let url = FAKE_URL.parse().expect("the fake's URL is valid");
        (transport, Config::new(url))
    }

    /// The server, for setup and inspection (compact it, drop its watches, read its state).
    /// Call [`notify`](Self::notify) after changing it directly.
    pub fn server(&self) -> MutexGuard<'_, FakeApiServer> {
        self.shared.server.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the watches, after the server was changed through [`server`](Self::server).
    pub fn notify(&self) {
        let wakers = std::mem::take(&mut *self.shared.waiting.lock().unwrap_or_else(PoisonError::into_inner));
        for w in wakers {
            w.wake();
        }
    }
}

impl Transport for FakeTransport {
    fn send(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<TransportResponse, TransportError>> {
        let now = self.now();
        let writes = request.method() != Method::GET && request.method() != Method::HEAD;
        let reply = self.server().handle(now, &request);
        if writes {
            self.notify();
        }
        let shared = self.shared.clone();
        Box::pin(async move {
            Ok(match reply {
                Reply::Response(resp) => {
                    let (parts, body) = resp.into_parts();
                    TransportResponse::full(parts.status, parts.headers, body)
                }
                Reply::Watch { id, head } => {
                    let (parts, ()) = head.into_parts();
                    TransportResponse::streaming(
                        parts.status,
                        parts.headers,
                        WatchBody { shared, id, timer: None, done: false },
                    )
                }
            })
        })
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        let wait = deadline.saturating_duration_since(self.now());
        Box::pin(futures_timer::Delay::new(wait))
    }

    /// In process there is no TLS: a client certificate (from an exec plugin) has nothing to
    /// change, and is accepted.
    fn set_identity(&self, _identity: Option<&kube_proto::config::Identity>) -> Result<(), TransportError> {
        Ok(())
    }
}

/// The body of a watch: polls the server, waits for writes or the next bookmark/timeout.
struct WatchBody {
    shared: Arc<Shared>,
    id: WatchId,
    timer: Option<futures_timer::Delay>,
    done: bool,
}

impl Stream for WatchBody {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        loop {
            #[allow(clippy::disallowed_methods)]
            let now = Instant::now();
            // Register before polling, so that a write in between is not missed.
            {
                let mut waiting = self.shared.waiting.lock().unwrap_or_else(PoisonError::into_inner);
                if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                    waiting.push(cx.waker().clone());
                }
            }
            let poll = self.shared.server.lock().unwrap_or_else(PoisonError::into_inner).poll_watch(self.id, now);
            match poll {
                WatchPoll::Data(d) => return Poll::Ready(Some(Ok(Bytes::from(d)))),
                WatchPoll::Finished(d) => {
                    self.done = true;
                    return Poll::Ready(if d.is_empty() { None } else { Some(Ok(Bytes::from(d))) });
                }
                WatchPoll::Pending(at) => {
                    let Some(at) = at else { return Poll::Pending };
                    let wait = at.saturating_duration_since(now).max(Duration::from_millis(1));
                    let mut timer = futures_timer::Delay::new(wait);
                    match Pin::new(&mut timer).poll(cx) {
                        Poll::Ready(()) => continue,
                        Poll::Pending => {
                            self.timer = Some(timer);
                            return Poll::Pending;
                        }
                    }
                }
            }
        }
    }
}

impl Drop for WatchBody {
    fn drop(&mut self) {
        self.shared.server.lock().unwrap_or_else(PoisonError::into_inner).cancel_watch(self.id);
    }
}
