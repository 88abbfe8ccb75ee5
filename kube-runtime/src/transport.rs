//! The transport trait: the only thing an HTTP stack must provide.
//!
//! A transport sends a request (its URI already absolute, its auth headers already set) and
//! returns the status, headers and a stream of body chunks; it sleeps until a deadline; and it
//! runs exec credential plugins with its executor's process support. Everything else (auth,
//! retries, protocol) is the [`Client`](crate::Client)'s and the core's.
//!
//! Protocol upgrades (the WebSocket handshakes of exec, attach and port-forward) go through
//! [`Transport::upgrade`], which answers an [`Upgraded`]: the connection as an
//! [`UpgradedStream`] (futures-io `AsyncRead + AsyncWrite`) after `101 Switching Protocols`,
//! or the answer that refused it, with its body (at most [`MAX_REFUSED_BODY`] bytes).
//!
//! What every transport shares is here too, so that none writes it again: the default
//! timeouts, [`is_upgrade`], and the proxy settings ([`ProxySettings`], resolved with
//! [`proxy_rules`] into the core's [`ProxyRules`]; the `CONNECT` exchange itself is the core's
//! [`kube_proto::proxy`] codec, and [`tunnel_error`] words its failures).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use futures_util::io::{AsyncRead, AsyncWrite};
use futures_util::stream::BoxStream;
use http::{HeaderMap, StatusCode};
use kube_proto::config::auth::{ExecOutput, ExecRequest};
use kube_proto::config::{Config, Identity};
use kube_proto::proxy::{ConnectError, ProxyEnv, ProxyError, ProxyRules};

/// The default connect timeout (TCP, proxy tunnel and TLS handshake).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The default read timeout: the longest wait for a response head or for the next body chunk.
/// It is longer than the 290 s server-side timeout watches ask for, so an idle watch ends on
/// the server's terms.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(295);
/// How long an idle pooled connection is kept.
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Whether a request asks for a protocol upgrade (a `Connection` header with the `upgrade`
/// token, as the WebSocket and SPDY handshakes of exec, attach and port-forward have).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Where a transport takes its proxies from when the [`Config`] has no `proxy-url` (which,
/// when set, is used for every connection, as client-go uses it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxySettings {
    /// `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (or their lower-case forms) of this process,
    /// read when the transport is built.
    #[default]
    FromEnv,
    /// These values instead of the process's.
    Given(ProxyEnv),
    /// No proxy from the environment.
    Off,
}

/// The proxy variables of an environment lookup (see [`crate::config::Env`]; values that are
/// not UTF-8 count as unset).
pub fn proxy_env(env: crate::config::Env<'_>) -> ProxyEnv {
    ProxyEnv::from_lookup(|name| env(name).and_then(|v| v.into_string().ok()))
}

/// The proxy rules of a transport: the configuration's `proxy-url`, else `settings`.
pub fn proxy_rules(config: &Config, settings: &ProxySettings) -> Result<ProxyRules, TransportError> {
    let env = match settings {
        ProxySettings::FromEnv => proxy_env(&crate::config::std_env),
        ProxySettings::Given(env) => env.clone(),
        ProxySettings::Off => ProxyEnv::new(),
    };
    ProxyRules::new(config.proxy_url.as_ref(), &env).map_err(TransportError::from)
}

impl From<ProxyError> for TransportError {
    fn from(e: ProxyError) -> Self {
        match e {
            ProxyError::UnsupportedScheme { .. } => TransportError::Unsupported(e.to_string()),
            _ => TransportError::Other(e.to_string()),
        }
    }
}

/// A proxy that did not open a tunnel to `url` (the server's scheme, host and port).
pub fn tunnel_error(url: &str, e: ConnectError) -> TransportError {
    TransportError::Connect { url: url.to_owned(), message: e.to_string() }
}

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

/// The most bytes of a refused upgrade's body that are kept (a Kubernetes `Status` is far
/// smaller); the rest is not read.
pub const MAX_REFUSED_BODY: usize = 64 * 1024;

/// What an upgraded connection is: a bidirectional byte stream. Anything with the futures-io
/// traits that can move between threads is one.
pub trait UpgradedIo: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> UpgradedIo for T {}

/// An upgraded connection, after `101 Switching Protocols`: the bytes of the new protocol
/// both ways (TLS, if any, is below it). Bytes the server sent right after the `101` head come
/// first.
///
/// Reads and writes have no timeout: an exec session or a forwarded port may stay quiet for
/// long. Reading `0` bytes means the server closed its side; a connection cut otherwise is an
/// error ([`io::ErrorKind::UnexpectedEof`] for a TLS connection that ended without its closing
/// alert). [`close`](futures_util::AsyncWriteExt::close) ends the client's side.
pub struct UpgradedStream {
    io: Box<dyn UpgradedIo>,
}

impl UpgradedStream {
    /// Boxes a transport's connection.
    pub fn new(io: impl UpgradedIo) -> Self {
        UpgradedStream { io: Box::new(io) }
    }
}

impl std::fmt::Debug for UpgradedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradedStream").finish_non_exhaustive()
    }
}

impl AsyncRead for UpgradedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().io).poll_read(cx, buf)
    }

    fn poll_read_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &mut [io::IoSliceMut<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().io).poll_read_vectored(cx, bufs)
    }
}

impl AsyncWrite for UpgradedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_close(cx)
    }
}

/// The answer to an upgrade request ([`Transport::upgrade`]).
///
/// The transport does not judge the answer beyond its status: whether a `101` completes a
/// WebSocket handshake (`Sec-WebSocket-Accept`, the subprotocol) is for the caller to check,
/// with the head given here, and a refusal's `Status` body for it to read. [`status`],
/// [`headers`] and [`body`] give what such a check takes, whichever the outcome:
///
/// ```
/// # fn check(up: &kube_runtime::transport::Upgraded, handshake: &kube_proto::websocket::Handshake)
/// #     -> Result<String, kube_proto::websocket::HandshakeError> {
/// let protocol = handshake.verify(up.status(), up.headers(), up.body())?;
/// # Ok(protocol) }
/// ```
///
/// [`status`]: Upgraded::status
/// [`headers`]: Upgraded::headers
/// [`body`]: Upgraded::body
#[derive(Debug)]
pub enum Upgraded {
    /// `101 Switching Protocols`: the connection now speaks the new protocol.
    Switched {
        /// The `101` answer's headers (`Upgrade`, `Sec-WebSocket-Accept`,
        /// `Sec-WebSocket-Protocol`, ...).
        headers: HeaderMap,
        /// The connection.
        stream: UpgradedStream,
    },
    /// Any other status: the server refused the upgrade (403 when forbidden, 404 for a missing
    /// pod, 400 for a missing container, ...), or does not do upgrades.
    Refused {
        /// The status.
        status: StatusCode,
        /// The headers.
        headers: HeaderMap,
        /// The body, whole when it is at most [`MAX_REFUSED_BODY`] bytes, else its first
        /// [`MAX_REFUSED_BODY`] bytes.
        body: Vec<u8>,
    },
}

impl Upgraded {
    /// A refusal: `response`'s head and at most [`MAX_REFUSED_BODY`] bytes of its body (the
    /// rest is not read, and the response is dropped).
    pub async fn refused(response: TransportResponse) -> Result<Upgraded, TransportError> {
        let TransportResponse { status, headers, mut body } = response;
        let mut kept = Vec::new();
        while kept.len() < MAX_REFUSED_BODY {
            let Some(chunk) = body.next().await else { break };
            let chunk = chunk?;
            let room = MAX_REFUSED_BODY - kept.len();
            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        Ok(Upgraded::Refused { status, headers, body: kept })
    }

    /// The status: `101` when switched.
    pub fn status(&self) -> StatusCode {
        match self {
            Upgraded::Switched { .. } => StatusCode::SWITCHING_PROTOCOLS,
            Upgraded::Refused { status, .. } => *status,
        }
    }

    /// The answer's headers.
    pub fn headers(&self) -> &HeaderMap {
        match self {
            Upgraded::Switched { headers, .. } | Upgraded::Refused { headers, .. } => headers,
        }
    }

    /// A refusal's body (empty when switched).
    pub fn body(&self) -> &[u8] {
        match self {
            Upgraded::Switched { .. } => &[],
            Upgraded::Refused { body, .. } => body,
        }
    }

    /// The connection, when switched.
    pub fn into_stream(self) -> Option<UpgradedStream> {
        match self {
            Upgraded::Switched { stream, .. } => Some(stream),
            Upgraded::Refused { .. } => None,
        }
    }
}

/// The error of a transport that cannot hand back an upgraded connection: the default of
/// [`Transport::upgrade`].
pub fn upgrade_unsupported() -> TransportError {
    TransportError::Unsupported(
        "protocol upgrades (exec, attach and port-forward): this transport does not implement Transport::upgrade"
            .into(),
    )
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

    /// Sends a request that asks for a protocol upgrade (`Connection: Upgrade`; its URI is
    /// absolute and its headers complete, `Sec-WebSocket-Key` included) over an HTTP/1.1
    /// connection, and answers the connection once the server switches protocols (`101`), or
    /// the answer that refused it ([`Upgraded`]; [`Upgraded::refused`] makes one from a
    /// response).
    ///
    /// The connection is made as for [`send`](Self::send) (TLS, client certificate, proxy,
    /// connect timeout), and the answer's head is awaited within the read timeout; the
    /// upgraded stream itself has no timeout. It must be HTTP/1.1: HTTP/2 has no `Upgrade`.
    ///
    /// The default cannot upgrade and fails with [`TransportError::Unsupported`]
    /// ([`upgrade_unsupported`]).
    fn upgrade(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<Upgraded, TransportError>> {
        drop(request);
        Box::pin(async { Err(upgrade_unsupported()) })
    }

    /// Runs `task` on the transport's executor, beside the caller, and returns at once; a
    /// transport with no executor to run it on hands it back (the default).
    ///
    /// The [`Client`](crate::Client) spawns one task per watch it sends, which reads the
    /// watch's body ahead of the reader (at most
    /// [`read_ahead::BUDGET`](crate::read_ahead::BUDGET) bytes), so that the transport's work
    /// (the socket, TLS, the framing) and the decoding of events run side by side. A task
    /// handed back is driven by the reader's own polls instead.
    fn spawn(&self, task: BoxFuture<'static, ()>) -> Result<(), BoxFuture<'static, ()>> {
        Err(task)
    }

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
            let (tx, rx) = futures_channel::oneshot::channel();
            std::thread::spawn(move || {
                let _ = tx.send(crate::process::run_blocking(&request));
            });
            rx.await.unwrap_or_else(|_| Err("the process runner thread ended".into()))
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
