//! A [`Transport`] for [`kube_runtime`] over hyper 1, hyper-util's pooling client, tokio and
//! rustls (with the `ring` provider). It moves bytes, timers and processes for the core and holds
//! no protocol logic.
//!
//! - HTTP/2 is negotiated with ALPN (`h2`, then `http/1.1`); plain `http://` servers get
//!   HTTP/1.1. Connections are pooled and reused.
//! - Watches (`watch=true`) get an HTTP/1.1 connection each (same TLS settings, client
//!   certificate, proxy and connect timeout), driven by the polls of the response body itself
//!   rather than by hyper's connection task, so a chunk costs no hand-off between two tasks.
//!   A watch read in `block_on` (as `#[tokio::main]`'s `main` is) has the
//!   [`Client`](kube_runtime::Client) poll that body from a task of its own
//!   ([`Transport::spawn`], [`kube_runtime::read_ahead`]), which reads it ahead of the
//!   decoding: the socket, TLS and the framing on one thread, the events' decoding on another.
//!   A watch read in a task of the runtime reads its body itself (a second task would only take
//!   turns with it on its worker).
//!   The connection closes with the watch. [`HyperTransportBuilder::multiplex_watches`] puts
//!   watches back on the pooled (HTTP/2) connection, client-go's way: fewer connections, less
//!   throughput per watch.
//! - TLS follows the [`Config`]: its CA certificates (the `webpki-roots` when it has none), its
//!   client certificate, `tls-server-name` (used for SNI and verification) and
//!   `insecure-skip-tls-verify`; see [`kube_runtime::tls`]. A client certificate from an exec
//!   plugin ([`Transport::set_identity`]) replaces the pooled clients, so later requests use new
//!   connections.
//! - Proxies, as client-go chooses them ([`kube_proto::proxy`], shared with every transport):
//!   the configuration's `proxy-url` for every connection, else `HTTPS_PROXY` (for `https://`
//!   servers) / `HTTP_PROXY` (for `http://` ones) and `NO_PROXY` from the environment, read
//!   when the transport is built (`localhost` and loopback addresses never go through a proxy
//!   taken from the environment; see [`HyperTransportBuilder::proxy_settings`]). Proxies are
//!   reached through an HTTP `CONNECT` tunnel (the core's codec); only `http://` proxies are
//!   supported (an `https://` or `socks5://` `proxy-url` is [`TransportError::Unsupported`]).
//!   `http://` destinations are tunnelled the same way.
//! - Timeouts: a connect timeout (TCP, proxy tunnel and TLS handshake; 30 s by default) and a
//!   read timeout, applied to the wait for the response head and then to each body chunk (295 s
//!   by default, longer than a watch's 290 s server-side timeout). See [`HyperTransportBuilder`].
//! - No compression is asked for (no `Accept-Encoding` is added), so `disable-compression`
//!   holds as it is.
//! - Upgrades ([`Transport::upgrade`], for exec, attach and port-forward) and any request with
//!   `Connection: Upgrade` go through a second, HTTP/1.1-only client (ALPN `http/1.1`), since
//!   HTTP/2 has no such upgrade: the same connector (TLS, client certificate, proxy, connect
//!   timeout), an idle connection of that client's pool or a new one, which leaves the pool for
//!   good once upgraded (`hyper::upgrade::on`). The answer's head is awaited within the read
//!   timeout; the upgraded stream has none. It is handed over with futures-io's traits through
//!   a small adapter over hyper's own IO traits (no tokio-util).
//!
//! ```no_run
//! use std::time::Duration;
//! use kube_proto::config::Config;
//! use transport_hyper::HyperTransport;
//!
//! # async fn demo() -> Result<(), kube_runtime::Error> {
//! let config = Config::new("https://127.0.0.1:6443".parse().unwrap());
//! let transport = HyperTransport::builder(&config)
//!     .read_timeout(Some(Duration::from_secs(600)))
//!     .build()
//!     .map_err(kube_runtime::Error::Transport)?;
//! let client = kube_runtime::Client::new(transport, config)?;
//! // Or, with the defaults: transport_hyper::client_from_config(config).await?
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod connect;

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use futures_util::future::BoxFuture;
use http::StatusCode;
use http_body_util::Full;
use hyper::body::{Body as _, Incoming};
use hyper_util::client::legacy::{Builder as HyperClientBuilder, Client as HyperClient};
use hyper_util::rt::{TokioExecutor, TokioTimer};
pub use kube_proto as proto;
use kube_proto::config::auth::{ExecOutput, ExecRequest};
use kube_proto::config::{Config, Identity};
use kube_proto::proxy::{ProxyEnv, ProxyRules};
pub use kube_runtime as runtime;
use kube_runtime::transport::{Body, ProxySettings, Upgraded, UpgradedStream};
pub use kube_runtime::transport::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_READ_TIMEOUT, is_upgrade,
};
use kube_runtime::{Transport, TransportError, TransportResponse};
use tokio_rustls::rustls;

use crate::connect::{ConnectFailure, Connector, origin};

/// The ALPN protocols offered by the pooled client: HTTP/2, then HTTP/1.1.
const ALPN_H2_H1: &[&[u8]] = &[b"h2", b"http/1.1"];
/// The ALPN protocol offered by the client for upgrades.
const ALPN_H1: &[&[u8]] = &[b"http/1.1"];

type Pool = HyperClient<Connector, Full<Bytes>>;

/// A [`Transport`] over hyper, tokio and rustls. Cloning it is cheap and shares its pools.
///
/// It must be used inside a tokio runtime (with the time and I/O drivers enabled).
#[derive(Clone)]
pub struct HyperTransport {
    /// The pooled clients, replaced (with their pools) when the client certificate changes.
    clients: Arc<RwLock<Clients>>,
    /// What the clients are made from.
    factory: Arc<Factory>,
    read_timeout: Option<Duration>,
}

/// The two pooled clients, and the connector of watches, made with the same TLS settings.
#[derive(Clone)]
struct Clients {
    /// HTTP/2 or HTTP/1.1, as ALPN decides.
    pooled: Pool,
    /// HTTP/1.1 only, for requests that ask for a protocol upgrade.
    http1: Pool,
    /// HTTP/1.1 only: the connector of the connection each watch gets (see [`own_connection`]).
    watch: Connector,
}

/// Makes [`Clients`]: the configuration and the settings that outlive a client certificate.
struct Factory {
    config: Config,
    proxy: Arc<ProxyRules>,
    connect_timeout: Duration,
    builder: HyperClientBuilder,
    http1_only: bool,
    multiplex_watches: bool,
}

impl Factory {
    /// Clients whose connections use the TLS settings of `config`.
    fn clients(&self, config: &Config) -> Result<Clients, TransportError> {
        let connector = |alpn: &[&[u8]]| -> Result<Connector, TransportError> {
            let tls = kube_runtime::tls::client_config(config, alpn)?;
            Ok(Connector::new(tls, config.tls_server_name.clone(), self.proxy.clone(), self.connect_timeout))
        };
        Ok(Clients {
            pooled: self.builder.build(connector(if self.http1_only { ALPN_H1 } else { ALPN_H2_H1 })?),
            http1: self.builder.build(connector(ALPN_H1)?),
            watch: connector(ALPN_H1)?,
        })
    }
}

impl std::fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperTransport").field("read_timeout", &self.read_timeout).finish_non_exhaustive()
    }
}

/// Settings of a [`HyperTransport`] beyond the [`Config`].
#[derive(Debug)]
pub struct HyperTransportBuilder {
    config: Config,
    connect_timeout: Duration,
    read_timeout: Option<Duration>,
    pool_idle_timeout: Option<Duration>,
    proxy: ProxySettings,
    http1_only: bool,
    multiplex_watches: bool,
}

impl HyperTransportBuilder {
    /// Offer only HTTP/1.1 (no `h2` in ALPN): a connection per concurrent request instead of
    /// one multiplexed HTTP/2 connection. HTTP/2 costs more CPU per byte on both ends (framing,
    /// flow control); HTTP/1.1 costs a connection per request under way. Watches get a
    /// connection of their own either way, unless [`multiplex_watches`](Self::multiplex_watches).
    /// BENCHMARKS.md has both measured.
    pub fn http1_only(mut self) -> Self {
        self.http1_only = true;
        self
    }

    /// Send watches (`watch=true`) on the pooled connections, multiplexed on one HTTP/2
    /// connection where the server speaks it (client-go's way), instead of a connection of
    /// their own each (the default, see the [crate documentation](crate)). Fewer connections
    /// and less memory per open watch; each chunk then reaches the reader through hyper's
    /// connection task, a hand-off between threads that costs throughput when the reader is
    /// polled outside the runtime's workers (`block_on`, `#[tokio::main]`'s `main`).
    pub fn multiplex_watches(mut self) -> Self {
        self.multiplex_watches = true;
        self
    }

    /// The limit on making a connection: TCP connect, proxy tunnel and TLS handshake
    /// ([`DEFAULT_CONNECT_TIMEOUT`] by default).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The longest wait for the response head and then for each body chunk, or `None` for no
    /// limit ([`DEFAULT_READ_TIMEOUT`] by default). Keep it longer than the `timeoutSeconds` of
    /// the watches made with this transport.
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// How long an idle pooled connection is kept, or `None` for as long as the server allows
    /// ([`DEFAULT_POOL_IDLE_TIMEOUT`] by default).
    pub fn pool_idle_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Where proxies come from when the configuration has no `proxy-url`
    /// ([`ProxySettings::FromEnv`], this process's environment, by default).
    pub fn proxy_settings(mut self, settings: ProxySettings) -> Self {
        self.proxy = settings;
        self
    }

    /// These proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`) instead of the
    /// environment's, when the configuration has no `proxy-url`. `localhost` and loopback
    /// addresses still bypass them.
    pub fn proxy_env(self, env: ProxyEnv) -> Self {
        self.proxy_settings(ProxySettings::Given(env))
    }

    /// Ignore the proxy environment variables (the configuration's `proxy-url` still applies).
    pub fn no_env_proxy(self) -> Self {
        self.proxy_settings(ProxySettings::Off)
    }

    /// The transport.
    pub fn build(self) -> Result<HyperTransport, TransportError> {
        let proxy = kube_runtime::transport::proxy_rules(&self.config, &self.proxy)?;
        let mut builder = HyperClient::builder(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .http2_keep_alive_timeout(Duration::from_secs(15));
        let factory = Factory {
            config: self.config,
            proxy: Arc::new(proxy),
            connect_timeout: self.connect_timeout,
            builder,
            http1_only: self.http1_only,
            multiplex_watches: self.multiplex_watches,
        };
        let clients = factory.clients(&factory.config)?;
        Ok(HyperTransport {
            clients: Arc::new(RwLock::new(clients)),
            factory: Arc::new(factory),
            read_timeout: self.read_timeout,
        })
    }
}

impl HyperTransport {
    /// A transport for a configuration, with the default timeouts and the proxy environment.
    pub fn new(config: &Config) -> Result<Self, TransportError> {
        Self::builder(config).build()
    }

    /// The current clients (cheap clones sharing their pools).
    fn clients(&self) -> Clients {
        self.clients.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A builder, to set timeouts or proxy rules.
    pub fn builder(config: &Config) -> HyperTransportBuilder {
        HyperTransportBuilder {
            config: config.clone(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            read_timeout: Some(DEFAULT_READ_TIMEOUT),
            pool_idle_timeout: Some(DEFAULT_POOL_IDLE_TIMEOUT),
            proxy: ProxySettings::FromEnv,
            http1_only: false,
            multiplex_watches: false,
        }
    }
}

impl Transport for HyperTransport {
    fn send(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<TransportResponse, TransportError>> {
        let clients = self.clients();
        let read_timeout = self.read_timeout;
        if !self.factory.multiplex_watches && kube_proto::request::is_watch(&request) && !is_upgrade(request.headers())
        {
            return Box::pin(own_connection(clients.watch, request, read_timeout));
        }
        let client = if is_upgrade(request.headers()) { clients.http1 } else { clients.pooled };
        Box::pin(async move {
            let url = origin(request.uri());
            let response = request_head(&client, request, read_timeout, &url).await?;
            Ok(into_transport_response(response, read_timeout, url))
        })
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)))
    }

    /// Spawns `task` (the task that reads a watch ahead of its reader) on the multi-threaded
    /// tokio runtime the caller runs in, when the caller is not itself one of its tasks (as in
    /// `block_on`, which `#[tokio::main]` runs `main` in); otherwise hands it back, for the
    /// reader to drive.
    ///
    /// A task woken by a task on a worker goes to that worker's next-task slot, which no other
    /// worker takes from, so a reader that is a task would take turns with the reading task on
    /// its worker: no faster than reading the body itself, with the cost of two tasks (see
    /// BENCHMARKS.md, run L). On a current-thread runtime the two could only take turns too.
    fn spawn(&self, task: BoxFuture<'static, ()>) -> Result<(), BoxFuture<'static, ()>> {
        match tokio::runtime::Handle::try_current() {
            Ok(handle)
                if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread
                    && tokio::task::try_id().is_none() =>
            {
                drop(handle.spawn(task));
                Ok(())
            }
            _ => Err(task),
        }
    }

    /// Sends the request on the HTTP/1.1-only client and, on `101`, hands back the connection
    /// through a small adapter from hyper's IO traits to futures-io; any other answer is read
    /// (at most [`MAX_REFUSED_BODY`](kube_runtime::transport::MAX_REFUSED_BODY) bytes, each
    /// chunk within the read timeout) into [`Upgraded::Refused`].
    fn upgrade(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<Upgraded, TransportError>> {
        let client = self.clients().http1;
        let read_timeout = self.read_timeout;
        Box::pin(async move {
            let url = origin(request.uri());
            let mut response = request_head(&client, request, read_timeout, &url).await?;
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                return Upgraded::refused(into_transport_response(response, read_timeout, url)).await;
            }
            let io = hyper::upgrade::on(&mut response).await.map_err(|e| classify(&e, &url, Phase::Head))?;
            let headers = std::mem::take(response.headers_mut());
            Ok(Upgraded::Switched { headers, stream: UpgradedStream::new(HyperIo(io)) })
        })
    }

    fn now(&self) -> Instant {
        // tokio's clock, so that a paused test clock moves `now` and `sleep_until` together.
        tokio::time::Instant::now().into_std()
    }

    fn run_process(&self, request: ExecRequest) -> BoxFuture<'static, Result<ExecOutput, String>> {
        Box::pin(run_process(request))
    }

    /// Makes new clients whose connections present `identity`, and puts them in place of the
    /// current ones. Their pools go with them, so no connection made with the previous
    /// certificate is used again (requests under way finish on theirs).
    fn set_identity(&self, identity: Option<&Identity>) -> Result<(), TransportError> {
        let config = Config { identity: identity.cloned(), ..self.factory.config.clone() };
        let clients = self.factory.clients(&config)?;
        *self.clients.write().unwrap_or_else(PoisonError::into_inner) = clients;
        Ok(())
    }
}

/// Runs an exec credential plugin with tokio's process support: the command and the shaping
/// of its result are [`kube_runtime::process`]'s; the process is killed if the future is
/// dropped.
async fn run_process(request: ExecRequest) -> Result<ExecOutput, String> {
    use kube_runtime::process;
    let child = tokio::process::Command::from(process::command(&request))
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| process::start_error(&request, &e))?;
    let output = child.wait_with_output().await.map_err(|e| process::wait_error(&request, &e))?;
    Ok(process::exec_output(output))
}

/// Sends a request and waits (at most the read timeout) for the response head.
async fn request_head(
    client: &Pool,
    request: http::Request<Vec<u8>>,
    read_timeout: Option<Duration>,
    url: &str,
) -> Result<http::Response<Incoming>, TransportError> {
    let request = request.map(|body| Full::new(Bytes::from(body)));
    let pending = async { client.request(request).await.map_err(|e| classify(&e, url, Phase::Head)) };
    within_read_timeout(read_timeout, url, pending).await
}

/// `head` (the wait for a response head), failed with [`TransportError::Timeout`] when it takes
/// longer than the read timeout.
async fn within_read_timeout<T>(
    read_timeout: Option<Duration>,
    url: &str,
    head: impl Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    match read_timeout {
        Some(limit) => tokio::time::timeout(limit, head).await.map_err(|_| {
            TransportError::Timeout(format!("no response from {url} within the read timeout ({})", fmt_duration(limit)))
        })?,
        None => head.await,
    }
}

/// Whether a request is a watch: `watch` in its query with a value other than `false` or `0`
/// (the API server's reading of the parameter).
/// A connection driven by whoever polls the response: hyper's HTTP/1.1 connection future, with
/// the request's sender kept alive beside it.
type Driver = Pin<Box<dyn Future<Output = Result<(), hyper::Error>> + Send>>;

/// Sends a watch on a new HTTP/1.1 connection of its own (same TLS settings, client
/// certificate, proxy and connect timeout as the pools) and drives that connection from the
/// response's own polls: the head's, then every chunk's. No connection task is involved, so a
/// chunk costs no hand-off between tasks: it is read, decrypted and unframed by whoever polls
/// the body (the [`Client`](kube_runtime::Client)'s read-ahead task). The connection ends with
/// the body (or when the body is dropped) and is never pooled.
async fn own_connection(
    mut connector: Connector,
    mut request: http::Request<Vec<u8>>,
    read_timeout: Option<Duration>,
) -> Result<TransportResponse, TransportError> {
    let url = origin(request.uri());
    let head = async {
        let io = tower_service::Service::call(&mut connector, request.uri().clone()).await.map_err(|f| f.0)?;
        // In origin form with a `Host` header, as the core's HTTP/1.1 encoder writes a request.
        let uri = request.uri().clone();
        if !request.headers().contains_key(http::header::HOST)
            && let Some(host) = kube_proto::http1::host_header(&uri)
        {
            let value = http::HeaderValue::try_from(host)
                .map_err(|_| TransportError::Unsupported(format!("the host of {url} as a Host header")))?;
            request.headers_mut().insert(http::header::HOST, value);
        }
        *request.uri_mut() = kube_proto::http1::request_target(&uri)
            .parse()
            .map_err(|_| TransportError::Unsupported(format!("the path of {url}")))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(io).await.map_err(|e| classify(&e, &url, Phase::Head))?;
        let mut pending = std::pin::pin!(sender.send_request(request.map(|body| Full::new(Bytes::from(body)))));
        let mut driver: Option<Driver> = Some(Box::pin(async move {
            let _sender = sender;
            conn.await
        }));
        let response = std::future::poll_fn(|cx| {
            // The connection first (it writes the request and reads the answer), then the head.
            if let Some(d) = driver.as_mut()
                && d.as_mut().poll(cx).is_ready()
            {
                // Ended or failed: the pending response now resolves with what happened.
                driver = None;
            }
            pending.as_mut().poll(cx)
        })
        .await
        .map_err(|e| classify(&e, &url, Phase::Head))?;
        Ok::<_, TransportError>((response, driver))
    };
    let (response, driver) = within_read_timeout(read_timeout, &url, head).await?;
    Ok(driven_response(response, driver, read_timeout, url))
}

/// The response with its body as a stream of chunks, each awaited at most the read timeout.
fn into_transport_response(
    response: http::Response<Incoming>,
    read_timeout: Option<Duration>,
    url: String,
) -> TransportResponse {
    driven_response(response, None, read_timeout, url)
}

/// [`into_transport_response`], the body's polls also driving `driver` (its connection).
fn driven_response(
    response: http::Response<Incoming>,
    driver: Option<Driver>,
    read_timeout: Option<Duration>,
    url: String,
) -> TransportResponse {
    let (parts, body) = response.into_parts();
    let chunks = BodyChunks { body: Some(body), driver, url, read_timeout, timer: None, armed: false };
    let body: Body = Box::pin(chunks);
    TransportResponse { status: parts.status, headers: parts.headers, body }
}

/// A response body as a stream of its data chunks, each wait for one limited by the read
/// timeout. One timer serves the whole body: armed when a wait starts, re-armed (not made
/// anew) after each chunk, so a watch costs no timer and no allocation per chunk.
struct BodyChunks {
    body: Option<Incoming>,
    /// The connection of a watch sent on its own ([`own_connection`]), polled before the body
    /// at every poll; `None` for a pooled connection (driven by hyper's task) or once it ended.
    driver: Option<Driver>,
    url: String,
    read_timeout: Option<Duration>,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Whether the timer runs for the current wait.
    armed: bool,
}

impl Stream for BodyChunks {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.drive(cx);
        // Whether the connection was driven again after the body asked for more.
        let mut redriven = false;
        loop {
            let Some(body) = this.body.as_mut() else { return Poll::Ready(None) };
            match Pin::new(body).poll_frame(cx) {
                Poll::Ready(None) => {
                    this.body = None;
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Ok(frame))) => {
                    this.armed = false;
                    match frame.into_data() {
                        Ok(data) if !data.is_empty() => return Poll::Ready(Some(Ok(data))),
                        // Empty chunks and trailers carry nothing for the caller.
                        _ => continue,
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.body = None;
                    return Poll::Ready(Some(Err(classify(&e, &this.url, Phase::Body))));
                }
                Poll::Pending if this.driver.is_some() && !redriven => {
                    // An empty body has just told the connection that it wants the next chunk
                    // (hyper reads no further until then): let the connection read it now
                    // rather than after a wake-up of this task.
                    redriven = true;
                    this.drive(cx);
                }
                Poll::Pending => {
                    let Some(limit) = this.read_timeout else { return Poll::Pending };
                    let deadline = tokio::time::Instant::now() + limit;
                    let timer = match &mut this.timer {
                        Some(timer) => {
                            if !this.armed {
                                timer.as_mut().reset(deadline);
                            }
                            timer
                        }
                        None => this.timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
                    };
                    this.armed = true;
                    ready!(timer.as_mut().poll(cx));
                    this.body = None;
                    let message =
                        format!("no data from {} within the read timeout ({})", this.url, fmt_duration(limit));
                    return Poll::Ready(Some(Err(TransportError::Timeout(message))));
                }
            }
        }
    }
}

impl BodyChunks {
    /// Polls the connection of a watch sent on its own, if any.
    fn drive(&mut self, cx: &mut Context<'_>) {
        if let Some(driver) = self.driver.as_mut()
            && driver.as_mut().poll(cx).is_ready()
        {
            // The connection ended or failed; the body reports which when it is read.
            self.driver = None;
        }
    }
}

/// An upgraded connection with futures-io's traits, over hyper's own `Read` and `Write`.
struct HyperIo(hyper::upgrade::Upgraded);

impl futures_util::io::AsyncRead for HyperIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        let mut read = hyper::rt::ReadBuf::new(buf);
        ready!(hyper::rt::Read::poll_read(Pin::new(&mut self.get_mut().0), cx, read.unfilled()))?;
        Poll::Ready(Ok(read.filled().len()))
    }
}

impl futures_util::io::AsyncWrite for HyperIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        hyper::rt::Write::poll_write(Pin::new(&mut self.get_mut().0), cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        hyper::rt::Write::poll_write_vectored(Pin::new(&mut self.get_mut().0), cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        hyper::rt::Write::poll_flush(Pin::new(&mut self.get_mut().0), cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        hyper::rt::Write::poll_shutdown(Pin::new(&mut self.get_mut().0), cx)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Body,
}

/// A hyper or hyper-util error as a [`TransportError`], by what is found in its chain of causes.
/// Messages are made of error descriptions and the server's origin only, never of headers.
fn classify(error: &(dyn StdError + 'static), url: &str, phase: Phase) -> TransportError {
    let url = url.to_owned();
    let message = chain_message(error);
    let mut connect = false;
    let mut closed = false;
    let mut timeout = false;
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(ConnectFailure(t)) = e.downcast_ref::<ConnectFailure>() {
            return t.clone();
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return TransportError::Tls { url, message: kube_runtime::tls::describe_error(tls) };
        }
        if let Some(client) = e.downcast_ref::<hyper_util::client::legacy::Error>() {
            connect |= client.is_connect();
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            timeout |= h.is_timeout();
            closed |= h.is_incomplete_message() || h.is_canceled() || h.is_closed() || h.is_body_write_aborted();
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                return TransportError::Tls { url, message: kube_runtime::tls::describe_error(tls) };
            }
            if let Some(message) = tls_error_text(&io.to_string()) {
                return TransportError::Tls { url, message };
            }
            use std::io::ErrorKind::*;
            match io.kind() {
                ConnectionRefused | HostUnreachable | NetworkUnreachable | AddrNotAvailable => connect = true,
                TimedOut => timeout = true,
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => closed = true,
                _ => {}
            }
        }
        cause = e.source();
    }
    if timeout {
        TransportError::Timeout(format!("{url}: {message}"))
    } else if connect {
        TransportError::Connect { url, message }
    } else if closed || phase == Phase::Body {
        let when = if phase == Phase::Body { "reading the body" } else { "before the response" };
        TransportError::Closed(format!("{url} ({when}): {message}"))
    } else {
        TransportError::Other(format!("{url}: {message}"))
    }
}

/// A rustls error that h2 turned into text (it keeps an I/O error's kind and message only),
/// described as [`kube_runtime::tls::describe_error`] would.
fn tls_error_text(text: &str) -> Option<String> {
    if let Some(alert) = text.strip_prefix("received fatal alert: ") {
        let certificate = ["Certificate", "UnknownCA", "AccessDenied"].iter().any(|a| alert.contains(a));
        return Some(if certificate {
            format!(
                "the server rejected the TLS handshake ({alert}): it requires a client certificate it trusts; check client-certificate / client-key"
            )
        } else {
            format!("TLS handshake failed: {text}")
        });
    }
    text.starts_with("invalid peer certificate")
        .then(|| format!("the server's certificate could not be verified: {text}"))
}

/// An error and its causes, `: `-separated, leaving out repeats.
fn chain_message(error: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = cause {
        let text = e.to_string();
        if !parts.last().is_some_and(|last| last.contains(&text)) {
            parts.push(text);
        }
        cause = e.source();
    }
    parts.join(": ")
}

/// A duration for messages: whole seconds when it is whole, else milliseconds.
pub(crate) fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{} s", d.as_secs()) } else { format!("{} ms", d.as_millis()) }
}

/// A [`kube_runtime::Client`] for a configuration over a [`HyperTransport`] with the default
/// settings.
pub async fn client_from_config(config: Config) -> Result<kube_runtime::Client, kube_runtime::Error> {
    let transport = HyperTransport::new(&config).map_err(kube_runtime::Error::Transport)?;
    kube_runtime::Client::new(transport, config)
}

/// A [`kube_runtime::Client`] for the configuration found as kubectl finds it
/// ([`kube_runtime::config::infer`]: the kubeconfig of `KUBECONFIG` or `~/.kube/config`, else
/// the in-cluster service account), over a [`HyperTransport`] with the default settings.
///
/// A configuration that cannot be found or read is [`kube_runtime::Error::Auth`]; a transport
/// that cannot be built from it (an unusable CA or client certificate, an unsupported proxy)
/// is [`kube_runtime::Error::Transport`].
pub async fn try_default() -> Result<kube_runtime::Client, kube_runtime::Error> {
    // A few small local files are read: not worth a blocking-pool round trip.
    kube_runtime::Client::infer_with(HyperTransport::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_is_read_ahead_only_from_outside_a_multi_threaded_runtimes_tasks() {
        let config = Config::new("https://127.0.0.1:6443".parse().unwrap());
        let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let transport = Arc::new(multi.block_on(async { HyperTransport::new(&config) }).unwrap());
        let spawns = |t: &HyperTransport| t.spawn(Box::pin(async {})).is_ok();
        assert!(!spawns(&transport), "no runtime: nothing to spawn on");
        assert!(multi.block_on(async { spawns(&transport) }), "block_on, as #[tokio::main]'s main");
        let t = transport.clone();
        assert!(!multi.block_on(multi.spawn(async move { spawns(&t) })).unwrap(), "a task of the runtime");
        let current = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(!current.block_on(async { spawns(&transport) }), "a current-thread runtime");
    }

    #[test]
    fn tls_errors_survive_as_text() {
        let m = tls_error_text("received fatal alert: CertificateRequired").unwrap();
        assert!(m.contains("client certificate"), "{m}");
        let m = tls_error_text("received fatal alert: HandshakeFailure").unwrap();
        assert!(m.starts_with("TLS handshake failed"), "{m}");
        assert!(tls_error_text("invalid peer certificate: UnknownIssuer").unwrap().contains("certificate"));
        assert_eq!(tls_error_text("connection reset"), None);
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(Duration::from_secs(30)), "30 s");
        assert_eq!(fmt_duration(Duration::from_millis(150)), "150 ms");
    }

    #[test]
    fn unsupported_proxy_schemes_are_refused() {
        let mut config = Config::new("https://127.0.0.1:6443".parse().unwrap());
        config.proxy_url = Some("socks5://127.0.0.1:1080".parse().unwrap());
        let err = HyperTransport::new(&config).unwrap_err();
        assert!(matches!(err, TransportError::Unsupported(_)), "{err:?}");
    }
}
