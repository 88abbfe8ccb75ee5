//! A [`Transport`] for [`kube_runtime`] over surf on async-std. It moves bytes, timers and
//! processes for the core and holds no protocol logic.
//!
//! surf is built with no backend of its own (`default-features = false`): it is handed, through
//! `surf::Client::with_http_client`, a small `http_client::HttpClient` of this crate that speaks
//! HTTP/1.1 with the core's codec ([`kube_runtime::http1::send`]) over async-std's `TcpStream`,
//! and TLS with futures-rustls (rustls 0.23,
//! `ring` provider) configured by [`kube_runtime::tls`], the same settings as every rustls-based
//! transport. surf's own `h1-client-rustls` backend is not used: it pins async-tls and a 2020
//! rustls with published advisories.
//!
//! - **HTTP/1.1 only**: there is no HTTP/2 here, so ALPN offers `http/1.1` alone. Concurrent
//!   requests (several watches, say) each hold a connection of their own.
//! - **Connections are reused**: a connection whose response was read to its end (and that
//!   neither side asked to close) goes back to a pool keyed by scheme, host and port, for
//!   [`DEFAULT_POOL_IDLE_TIMEOUT`] at most. A pooled connection the server closed meanwhile is
//!   noticed before use, or, if it fails before any byte of a response, the request is sent once
//!   more on a new connection.
//! - **TLS** follows the [`Config`]: its CA certificates (the `webpki-roots` when it has none),
//!   its client certificate, `tls-server-name` (SNI and verification, for the cluster's host and
//!   port) and `insecure-skip-tls-verify` (the shared verifier of [`kube_runtime::tls`]). A
//!   client certificate from an exec plugin ([`Transport::set_identity`]) applies to new
//!   connections, with a new pool.
//! - **Proxies**, as client-go chooses them and as transport-hyper uses them (the core's
//!   [`kube_proto::proxy`] rules and `CONNECT` codec): the configuration's `proxy-url` for every
//!   connection, else `HTTPS_PROXY` (for `https://` servers) / `HTTP_PROXY` (for `http://`
//!   ones) and `NO_PROXY` from the environment, read when the transport is built (`localhost`
//!   and loopback addresses never go through a proxy taken from the environment; see
//!   [`AsyncStdTransportBuilder::proxy_settings`]). Proxies are reached through an HTTP
//!   `CONNECT` tunnel for `https://` and `http://` servers alike (credentials in the proxy URL
//!   are sent as `Proxy-Authorization: Basic`). Other proxy schemes (`socks5://`, `https://`)
//!   are refused with [`TransportError::Unsupported`].
//! - **Streaming**: response bodies are handed on chunk by chunk as they arrive (watch events
//!   are not held back until the body ends). A watch's body is read by a task of its own on
//!   async-std's executor ([`Transport::spawn`], [`kube_runtime::read_ahead`]), ahead of the
//!   decoding of its events, which then run side by side.
//! - **Timeouts**: a connect timeout (TCP, proxy tunnel and TLS handshake; 30 s by default) and
//!   a read timeout, the longest the connection may make no progress: while the request is
//!   written, before the response head, and between body chunks (295 s by default, longer than
//!   the 290 s server-side timeout of watches).
//! - **Upgrades** ([`Transport::upgrade`], for exec, attach and port-forward) do not go through
//!   surf, which cannot hand a connection back: each takes a new connection (TCP, proxy
//!   tunnel and TLS as above, never a pooled one), and [`kube_runtime::http1::upgrade`] writes
//!   the request and reads the answer's head with the core's HTTP/1.1 parser, keeping the bytes
//!   read past it for the stream. The answer (and a refusal's body) must come within the read
//!   timeout; the upgraded stream has no timeout. [`Transport::send`] refuses a request with
//!   `Connection: Upgrade` ([`TransportError::Unsupported`]).
//! - **Responses** are read by the core's HTTP/1.1 parser: bodies delimited by
//!   `Content-Length`, chunked or by the connection's close (that connection is not reused),
//!   heads of up to [`kube_proto::http1::MAX_RESPONSE_HEAD`] bytes and
//!   [`kube_proto::http1::MAX_HEADERS`] headers. The status and headers are handed on exactly as
//!   they came, including those http-types cannot hold (a status it does not know, a header
//!   value with bytes above 0x7f). A body is served from the buffer it was read into, undone of
//!   its chunked framing without a copy.
//! - Not supported, with a [`TransportError::Unsupported`] error: URL schemes other than `http`
//!   and `https`.
//! - Exec credential plugins run with async-process (async-std's process support), with the
//!   command and result shaping of [`kube_runtime::process`]; timers are async-io's.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kube_runtime::Error> {
//! // The kubeconfig's current context, else the in-cluster service account.
//! let client = transport_asyncstd::try_default().await?;
//!
//! // Or a configuration of one's own, with other timeouts.
//! use std::time::Duration;
//! use kube_proto::config::Config;
//! use transport_asyncstd::AsyncStdTransport;
//!
//! let config = Config::new("https://127.0.0.1:6443".parse().unwrap());
//! let transport = AsyncStdTransport::builder(&config)
//!     .read_timeout(Some(Duration::from_secs(60)))
//!     .build()
//!     .map_err(kube_runtime::Error::Transport)?;
//! let client = kube_runtime::Client::new(transport, config)?;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod h1;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_core::Stream;
use futures_io::AsyncBufRead;
use futures_util::future::BoxFuture;
use http::header::CONTENT_TYPE;
pub use kube_proto as proto;
use kube_proto::config::auth::{ExecOutput, ExecRequest};
use kube_proto::config::{Config, Identity};
use kube_proto::proxy::ProxyEnv;
pub use kube_runtime as runtime;
pub use kube_runtime::transport::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_READ_TIMEOUT};
use kube_runtime::transport::{ProxySettings, is_upgrade};
use kube_runtime::{Transport, TransportError, TransportResponse, Upgraded};

use crate::h1::{H1Client, Settings};

/// How many idle connections to one server are kept. HTTP/1.1 carries one request at a time
/// per connection, so a client issuing N requests at once needs N connections: keeping fewer
/// than the concurrency in use makes every burst open (and TLS-handshake) new ones. The bench
/// saw 1,089 connections for 1,064 requests at concurrency 64 with a limit of 8. hyper keeps
/// every idle connection; this keeps up to 128 (each closes after the idle timeout).
pub const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = 128;

/// A [`Transport`] over surf, async-std and rustls. Cloning it is cheap and shares
/// its connection pool.
///
/// It runs on async-std's executor (its I/O and timers are async-io's, which drive themselves,
/// so it also works under another executor or `block_on`).
#[derive(Clone)]
pub struct AsyncStdTransport {
    client: surf::Client,
    h1: Arc<H1Client>,
}

impl std::fmt::Debug for AsyncStdTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncStdTransport").field("h1", &self.h1).finish_non_exhaustive()
    }
}

/// Settings of an [`AsyncStdTransport`] beyond the [`Config`].
#[derive(Debug)]
pub struct AsyncStdTransportBuilder {
    config: Config,
    settings: Settings,
    proxy: ProxySettings,
}

impl AsyncStdTransportBuilder {
    /// The limit on making a connection: TCP connect, proxy tunnel and TLS handshake
    /// ([`DEFAULT_CONNECT_TIMEOUT`] by default).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.settings.connect_timeout = Some(timeout);
        self
    }

    /// The longest a connection may make no progress, while the request is written, before
    /// the response head and between body chunks, or `None` for no limit
    /// ([`DEFAULT_READ_TIMEOUT`] by default). Keep it longer than the `timeoutSeconds` of the
    /// watches made with this transport.
    pub fn read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.io_timeout = timeout;
        self
    }

    /// How long an idle pooled connection is kept ([`DEFAULT_POOL_IDLE_TIMEOUT`] by default).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.settings.pool_idle_timeout = timeout;
        self
    }

    /// How many idle connections to one server are kept ([`DEFAULT_POOL_MAX_IDLE_PER_HOST`] by
    /// default; 0 turns connection reuse off).
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.settings.pool_max_idle_per_host = max;
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

    /// The transport. Fails if the TLS settings cannot be used (an unreadable CA certificate
    /// or client key, an invalid `tls-server-name`) or a setting is not supported (a
    /// `socks5://` proxy, say).
    pub fn build(self) -> Result<AsyncStdTransport, TransportError> {
        let proxy = kube_runtime::transport::proxy_rules(&self.config, &self.proxy)?;
        let h1 = Arc::new(H1Client::new(&self.config, self.settings, proxy)?);
        let client = surf::Client::with_http_client(SharedH1(h1.clone()));
        Ok(AsyncStdTransport { client, h1 })
    }
}

/// The backend handed to surf, sharing the pool with the transport.
#[derive(Debug)]
struct SharedH1(Arc<H1Client>);

#[http_client::async_trait]
impl http_client::HttpClient for SharedH1 {
    async fn send(&self, req: http_client::Request) -> Result<http_client::Response, http_client::Error> {
        self.0.send(req).await
    }
}

impl AsyncStdTransport {
    /// A transport for a configuration, with the default timeouts and the proxy environment.
    pub fn new(config: &Config) -> Result<Self, TransportError> {
        Self::builder(config).build()
    }

    /// A builder, to set timeouts, the pool's limits or proxy settings.
    pub fn builder(config: &Config) -> AsyncStdTransportBuilder {
        AsyncStdTransportBuilder {
            config: config.clone(),
            settings: Settings {
                connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
                io_timeout: Some(DEFAULT_READ_TIMEOUT),
                pool_max_idle_per_host: DEFAULT_POOL_MAX_IDLE_PER_HOST,
                pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            },
            proxy: ProxySettings::FromEnv,
        }
    }

    /// How many idle connections the pool holds now.
    pub fn idle_connections(&self) -> usize {
        self.h1.idle_connections()
    }
}

impl Transport for AsyncStdTransport {
    fn send(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<TransportResponse, TransportError>> {
        let client = self.client.clone();
        Box::pin(async move {
            let request = to_surf_request(request)?;
            let mut response = client.send(request).await.map_err(|e| error::from_surf(&e))?;
            let http_types: &mut http_types::Response = response.as_mut();
            let h1::Head { status, headers } = http_types
                .ext_mut()
                .remove::<h1::Head>()
                .ok_or_else(|| TransportError::Other("surf answered without the response's head".into()))?;
            let body = BodyStream { body: Some(response.take_body()) };
            Ok(TransportResponse::streaming(status, headers, body))
        })
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        kube_runtime::pool::Timer::sleep_until(&h1::AsyncIoTimer, deadline)
    }

    /// Spawns `task` on async-std's executor (the task that reads a watch ahead of its
    /// reader).
    fn spawn(&self, task: BoxFuture<'static, ()>) -> Result<(), BoxFuture<'static, ()>> {
        drop(async_std::task::spawn(task));
        Ok(())
    }

    /// On a new connection (TLS, client certificate and proxy as for every request), with
    /// [`kube_runtime::http1::upgrade`]; the answer within the read timeout.
    fn upgrade(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<Upgraded, TransportError>> {
        let h1 = self.h1.clone();
        Box::pin(async move { h1.upgrade(request).await })
    }

    fn run_process(&self, request: ExecRequest) -> BoxFuture<'static, Result<ExecOutput, String>> {
        Box::pin(run_process(request))
    }

    /// New connections present `identity`; the pool is replaced, so no connection made with
    /// the previous certificate is used again (requests under way finish on theirs).
    fn set_identity(&self, identity: Option<&Identity>) -> Result<(), TransportError> {
        self.h1.set_identity(identity)
    }
}

/// Runs an exec credential plugin with async-process: the command and the shaping of its
/// result are [`kube_runtime::process`]'s; the process is killed if the future is dropped.
async fn run_process(request: ExecRequest) -> Result<ExecOutput, String> {
    use kube_runtime::process;
    // async-process forgets the streams of the `std` command it is made from: set them again.
    let [stdin, stdout, stderr] = process::stdio(&request);
    let child = async_process::Command::from(process::command(&request))
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| process::start_error(&request, &e))?;
    let output = child.output().await.map_err(|e| process::wait_error(&request, &e))?;
    Ok(process::exec_output(output))
}

/// The request as surf's: same method, URL, headers and body. No `Content-Type` is added.
fn to_surf_request(request: http::Request<Vec<u8>>) -> Result<surf::Request, TransportError> {
    let (parts, body) = request.into_parts();
    if is_upgrade(&parts.headers) {
        return Err(TransportError::Unsupported(
            "a request with Connection: Upgrade through send (a pooled exchange does not hand its connection over): use Transport::upgrade".into(),
        ));
    }
    // The URI is not shown in errors: its user info, if any, is a credential.
    let url = url::Url::parse(&parts.uri.to_string())
        .map_err(|_| TransportError::Other("the request URI is not an absolute http(s) URL".into()))?;
    let method: http_types::Method = parts
        .method
        .as_str()
        .parse()
        .map_err(|_| TransportError::Other(format!("the method {} is not supported by surf", parts.method)))?;
    let mut req = http_types::Request::new(method, url);
    for (name, value) in &parts.headers {
        let value = value.to_str().map_err(|_| {
            TransportError::Other(format!(
                "the header {name} has a value that is not visible ASCII, which surf cannot send"
            ))
        })?;
        req.append_header(name.as_str(), value);
    }
    req.set_body(body);
    if !parts.headers.contains_key(CONTENT_TYPE) {
        // http-types adds the body's (application/octet-stream); the caller set none.
        req.remove_header(CONTENT_TYPE.as_str());
    }
    Ok(surf::Request::from(req))
}

/// A response body as a stream of the chunks as they arrive.
struct BodyStream {
    body: Option<http_types::Body>,
}

impl Stream for BodyStream {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(body) = this.body.as_mut() else { return Poll::Ready(None) };
        let chunk = match ready!(Pin::new(&mut *body).poll_fill_buf(cx)) {
            Ok([]) => None,
            Ok(buf) => Some(Ok(Bytes::copy_from_slice(buf))),
            Err(e) => Some(Err(error::from_body_io(e))),
        };
        match &chunk {
            Some(Ok(bytes)) => Pin::new(body).consume(bytes.len()),
            // Ended or failed: release the connection now.
            _ => this.body = None,
        }
        Poll::Ready(chunk)
    }
}

/// A [`kube_runtime::Client`] for a configuration over an [`AsyncStdTransport`] (with the
/// default timeouts).
pub async fn client_from_config(config: Config) -> Result<kube_runtime::Client, kube_runtime::Error> {
    let transport = AsyncStdTransport::new(&config).map_err(kube_runtime::Error::Transport)?;
    kube_runtime::Client::new(transport, config)
}

/// A [`kube_runtime::Client`] for the configuration [`kube_runtime::config::infer`] finds: the
/// kubeconfig (`KUBECONFIG`, or `~/.kube/config`) and its current context, else the in-cluster
/// service account.
///
/// A configuration that cannot be found or read is [`kube_runtime::Error::Auth`]; a transport
/// that cannot be built from it (an unusable CA or client certificate, an unsupported proxy)
/// is [`kube_runtime::Error::Transport`].
pub async fn try_default() -> Result<kube_runtime::Client, kube_runtime::Error> {
    // A few small local files are read: not worth a blocking-pool round trip.
    kube_runtime::Client::infer_with(AsyncStdTransport::new)
}
