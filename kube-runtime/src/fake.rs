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

use crate::transport::{Transport, TransportError, TransportResponse, Upgraded, UpgradedStream};

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
                // An exec, attach or port-forward sent as a plain request: the fake switched
                // protocols, which only an upgrade can follow.
                Reply::Upgrade { .. } => {
                    return Err(TransportError::Unsupported(
                        "the fake API server switched protocols (exec, attach or port-forward): send the request \
                         with Transport::upgrade"
                            .into(),
                    ));
                }
            })
        })
    }

    /// Answers exec, attach and port-forward with the fake's session for them (see
    /// [`server::FakeSession`]) behind an in-memory stream: what the client writes is fed to
    /// the session at once, and what the session sends is read. A refusal (a missing pod, a
    /// container not named) comes back with the fake's `Status`.
    fn upgrade(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<Upgraded, TransportError>> {
        let now = self.now();
        let reply = self.server().handle(now, &request);
        Box::pin(async move {
            match reply {
                Reply::Upgrade { head, session } => {
                    let (parts, ()) = head.into_parts();
                    let stream = UpgradedStream::new(FakeConnection { session, out: Vec::new(), at: 0, reader: None });
                    Ok(Upgraded::Switched { headers: parts.headers, stream })
                }
                Reply::Response(resp) => {
                    let (parts, body) = resp.into_parts();
                    Upgraded::refused(TransportResponse::full(parts.status, parts.headers, body)).await
                }
                Reply::Watch { .. } => {
                    Err(TransportError::Other("the fake API server answered an upgrade with a watch".into()))
                }
            }
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

/// The client's end of an upgraded connection to the fake: the server's session in memory.
///
/// Writes are fed to the session as they come (it answers at once: the scripted processes
/// and listeners have no clock), reads drain what it sends, and its end is the end of the
/// stream. Writes after the server closed are dropped, as a socket's bytes to a peer that has
/// hung up are.
struct FakeConnection {
    session: Box<server::FakeSession>,
    /// What the session sent that was not read yet.
    out: Vec<u8>,
    at: usize,
    /// A read waiting for the session to send.
    reader: Option<Waker>,
}

impl FakeConnection {
    fn wake_reader(&mut self) {
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }
}

impl futures_util::io::AsyncRead for FakeConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        loop {
            if self.at < self.out.len() {
                let n = buf.len().min(self.out.len() - self.at);
                buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
                self.at += n;
                return Poll::Ready(Ok(n));
            }
            if let Some(bytes) = self.session.poll_transmit() {
                self.out = bytes;
                self.at = 0;
                continue;
            }
            if self.session.is_closed() {
                return Poll::Ready(Ok(0));
            }
            self.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
    }
}

impl futures_util::io::AsyncWrite for FakeConnection {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        // A protocol violation makes the session queue its close, which the client reads.
        if let Err(e) = self.session.handle_client_bytes(buf) {
            tracing::debug!(error = %e, "the fake's session refused the client's bytes");
        }
        self.wake_reader();
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.session.handle_client_eof();
        self.wake_reader();
        Poll::Ready(Ok(()))
    }
}
