//! The transport trait: the only thing an HTTP stack must provide.
//!
//! A transport sends a request (its URI already absolute, its auth headers already set) and
//! returns the status, headers and a stream of body chunks; it sleeps until a deadline; and it
//! runs exec credential plugins with its executor's process support. Everything else (auth,
//! retries, protocol) is the [`Client`](crate::Client)'s and the core's.

use std::time::{Instant, SystemTime};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use http::{HeaderMap, StatusCode};
use kube_proto::config::Identity;
use kube_proto::config::auth::{ExecOutput, ExecRequest};

/// The body of a response, chunk by chunk.
pub type Body = BoxStream<'static, Result<Bytes, TransportError>>;

/// A response head and its body stream.
pub struct TransportResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, as it arrives.
    pub body: Body,
}

impl std::fmt::Debug for TransportResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl TransportResponse {
    /// A response with a body given whole.
    pub fn full(status: StatusCode, headers: HeaderMap, body: Vec<u8>) -> Self {
        let body: Body = Box::pin(futures_util::stream::once(async move { Ok(Bytes::from(body)) }));
        TransportResponse { status, headers, body }
    }

    /// A response whose body is any stream of chunks.
    pub fn streaming<S>(status: StatusCode, headers: HeaderMap, body: S) -> Self
    where
        S: Stream<Item = Result<Bytes, TransportError>> + Send + 'static,
    {
        TransportResponse { status, headers, body: Box::pin(body) }
    }
}

/// Why a transport could not deliver a response. Messages never contain credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The connection could not be made (refused, unreachable, DNS failure).
    #[error("cannot connect to {url}: {message}")]
    Connect {
        /// The server (scheme, host and port).
        url: String,
        /// Why.
        message: String,
    },
    /// The TLS handshake failed (an untrusted or mismatched certificate, a rejected client
    /// certificate).
    #[error("TLS error talking to {url}: {message}")]
    Tls {
        /// The server.
        url: String,
        /// Why.
        message: String,
    },
    /// No answer, or no data, within the configured time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// The connection broke after the response started (a body cut mid-stream).
    #[error("the connection closed mid-response: {0}")]
    Closed(String),
    /// A setting this transport cannot honour.
    #[error("unsupported setting: {0}")]
    Unsupported(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

/// An HTTP stack, plus timers and processes, from one executor.
pub trait Transport: Send + Sync + 'static {
    /// Sends a request. Its URI is absolute and its headers complete.
    fn send(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<TransportResponse, TransportError>>;

    /// Completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()>;

    /// The current instant (a transport on simulated time may say otherwise).
    fn now(&self) -> Instant {
        #[allow(clippy::disallowed_methods)]
        Instant::now()
    }

    /// The current wall-clock time, which credentials' expiry is judged by (a transport on
    /// simulated time may say otherwise, to drive token expiry in tests).
    fn wall_clock(&self) -> SystemTime {
        #[allow(clippy::disallowed_methods)]
        SystemTime::now()
    }

    /// Runs an exec credential plugin. The default runs it on a plain thread (std::process);
    /// transports use their executor's process support.
    fn run_process(&self, request: ExecRequest) -> BoxFuture<'static, Result<ExecOutput, String>> {
        Box::pin(async move {
            let (tx, rx) = futures_channel_oneshot();
            std::thread::spawn(move || {
                let _ = tx.send(crate::config::run_exec(&request));
            });
            rx.await.unwrap_or_else(|| Err("the process runner thread ended".into()))
        })
    }

    /// Presents `identity` (or no client certificate, for `None`) on the connections made from
    /// now on, in place of the one the transport was built with (the [`Config`]'s `identity`).
    ///
    /// The [`Client`](crate::Client) calls it before sending when an exec credential plugin
    /// returns a client certificate and key (`clientCertificateData` / `clientKeyData`) other
    /// than the one last applied, so it is called when the certificate first appears and when
    /// it rotates, not on every request. Connections made with the previous certificate must
    /// not be used for later requests (requests already under way may finish on them).
    ///
    /// The default cannot change certificates and returns [`TransportError::Unsupported`].
    ///
    /// [`Config`]: kube_proto::config::Config
    fn set_identity(&self, identity: Option<&Identity>) -> Result<(), TransportError> {
        let _ = identity;
        Err(TransportError::Unsupported("client certificates from exec plugins".into()))
    }
}

/// A one-shot channel on std primitives (so the default needs no executor).
fn futures_channel_oneshot<T: Send + 'static>() -> (OneshotSender<T>, OneshotReceiver<T>) {
    let shared = std::sync::Arc::new(std::sync::Mutex::new(OneshotState { value: None, waker: None, closed: false }));
    (OneshotSender(shared.clone()), OneshotReceiver(shared))
}

struct OneshotState<T> {
    value: Option<T>,
    waker: Option<std::task::Waker>,
    closed: bool,
}

struct OneshotSender<T>(std::sync::Arc<std::sync::Mutex<OneshotState<T>>>);
struct OneshotReceiver<T>(std::sync::Arc<std::sync::Mutex<OneshotState<T>>>);

impl<T> OneshotSender<T> {
    fn send(self, value: T) -> Result<(), ()> {
        let mut s = self.0.lock().map_err(|_| ())?;
        s.value = Some(value);
        if let Some(w) = s.waker.take() {
            w.wake();
        }
        Ok(())
    }
}

impl<T> Drop for OneshotSender<T> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.lock() {
            s.closed = true;
            if let Some(w) = s.waker.take() {
                w.wake();
            }
        }
    }
}

impl<T> std::future::Future for OneshotReceiver<T> {
    type Output = Option<T>;
    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Option<T>> {
        let Ok(mut s) = self.0.lock() else { return std::task::Poll::Ready(None) };
        if let Some(v) = s.value.take() {
            return std::task::Poll::Ready(Some(v));
        }
        if s.closed {
            return std::task::Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        std::task::Poll::Pending
    }
}
