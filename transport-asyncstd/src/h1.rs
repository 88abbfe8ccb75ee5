//! [`H1Client`]: surf's pluggable backend, an [`http_client::HttpClient`] over async-h1, async-std's
//! `TcpStream` and futures-rustls (rustls 0.23, ring), with a keep-alive pool and an HTTP
//! `CONNECT` proxy tunnel (the core's [`kube_proto::proxy`] codec and rules).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_std::net::TcpStream;
use futures_io::{AsyncRead, AsyncWrite};
use futures_rustls::TlsConnector;
use futures_rustls::client::TlsStream;
use futures_util::future::BoxFuture;
use futures_util::{AsyncReadExt as _, AsyncWriteExt as _};
use http_client::{Error as HttpError, Request, Response};
use http_types::headers::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http_types::{Body, Method, StatusCode};
use kube_proto::config::{Config, Identity};
use kube_proto::proxy::{ConnectProxy, ProxyRules, Status};
use kube_runtime::Upgraded;
use kube_runtime::pool::{self, PoolKey, response_has_no_body};
use kube_runtime::transport::{TransportError, tunnel_error};

use crate::error;

type Pool = pool::Pool<Conn>;
type Exchange = pool::Exchange<Conn>;

/// An open connection to a server (through a proxy's tunnel, if any).
pub(crate) enum Conn {
    /// Plain HTTP.
    Plain(TcpStream),
    /// HTTPS.
    Tls(Box<TlsStream<TcpStream>>),
}

/// Calls the same method on either kind of connection.
macro_rules! either {
    ($self:ident.$method:ident($($arg:expr),*)) => {
        match $self.get_mut() {
            Conn::Plain(s) => Pin::new(s).$method($($arg),*),
            Conn::Tls(s) => Pin::new(s).$method($($arg),*),
        }
    };
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        either!(self.poll_read(cx, buf))
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        either!(self.poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self.poll_flush(cx))
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        either!(self.poll_close(cx))
    }
}

/// async-io's clock and timers, for the pool's idle limit and the I/O timeout.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AsyncIoTimer;

impl pool::Timer for AsyncIoTimer {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            async_io::Timer::at(deadline).await;
        })
    }
}

/// The pool key of a request URL.
fn key_for(url: &url::Url) -> Result<PoolKey, TransportError> {
    PoolKey::new(url.scheme(), url.host_str(), url.port_or_known_default())
}

/// The settings of the connections (see [`Options`](crate::Options)).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) io_timeout: Option<Duration>,
    pub(crate) pool_max_idle_per_host: usize,
    pub(crate) pool_idle_timeout: Duration,
}

/// A TCP connection to `proxy`, tunnelled to `target` with `CONNECT` (the core's codec).
async fn tunnel(proxy: &ConnectProxy, target: &PoolKey) -> Result<TcpStream, TransportError> {
    let origin = target.origin();
    let connect_err = |message: String| TransportError::Connect { url: origin.clone(), message };
    let handshake = proxy.handshake(&target.host, target.port).map_err(|e| tunnel_error(&origin, e))?;
    let mut tcp = tcp_connect(proxy.host(), proxy.port())
        .await
        .map_err(|e| connect_err(format!("cannot connect to the proxy {}: {e}", proxy.origin())))?;
    let io_err = |e: io::Error| connect_err(format!("the proxy {} failed during CONNECT: {e}", proxy.origin()));
    tcp.write_all(handshake.request()).await.map_err(io_err)?;
    // Read no further than the answer's head: what follows is the tunnel's.
    let mut answer = Vec::with_capacity(128);
    loop {
        let start = answer.len();
        answer.resize(start + handshake.read_limit(&answer), 0);
        let n = tcp.read(&mut answer[start..]).await.map_err(io_err)?;
        answer.truncate(start + n);
        if n == 0 {
            return Err(connect_err(format!("the proxy {} closed the connection during CONNECT", proxy.origin())));
        }
        match handshake.parse(&answer) {
            Ok(Status::Complete(_)) => return Ok(tcp),
            Ok(Status::Partial) => continue,
            Err(e) => return Err(tunnel_error(&origin, e)),
        }
    }
}

async fn tcp_connect(host: &str, port: u16) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect((host, port)).await?;
    // Requests are written whole; do not let Nagle hold back their last segment.
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// The TLS settings new connections are made with, and the pool of the connections made with
/// them: replaced together when the client certificate changes, so a connection made with the
/// previous certificate is never used again.
struct Connections {
    tls: TlsConnector,
    pool: Arc<Pool>,
}

/// surf's backend: HTTP/1.1 over async-h1 with rustls from [`kube_runtime::tls`].
pub(crate) struct H1Client {
    connections: RwLock<Arc<Connections>>,
    /// The configuration, to rebuild the TLS settings with another client certificate.
    config: Config,
    /// The cluster's scheme, host and port: `tls-server-name` applies to connections there.
    cluster: PoolKey,
    tls_server_name: Option<String>,
    proxy: ProxyRules,
    settings: Settings,
}

impl std::fmt::Debug for H1Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H1Client")
            .field("cluster", &self.cluster.origin())
            .field("tls_server_name", &self.tls_server_name)
            .field("proxy", &self.proxy)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl H1Client {
    pub(crate) fn new(config: &Config, settings: Settings, proxy: ProxyRules) -> Result<H1Client, TransportError> {
        let connections = Self::connections_for(config, &settings)?;
        // Checks tls-server-name now rather than on the first request.
        if config.cluster_url.scheme() == "https" {
            kube_runtime::tls::server_name(config)?;
        }
        let cluster = key_for(&config.cluster_url)?;
        Ok(H1Client {
            connections: RwLock::new(Arc::new(connections)),
            config: config.clone(),
            cluster,
            tls_server_name: config.tls_server_name.clone().filter(|n| !n.is_empty()),
            proxy,
            settings,
        })
    }

    /// TLS settings from `config` and an empty pool.
    fn connections_for(config: &Config, settings: &Settings) -> Result<Connections, TransportError> {
        // async-h1 speaks HTTP/1.1 only: offer nothing else in ALPN.
        let tls = kube_runtime::tls::client_config(config, &[b"http/1.1"])?;
        let pool = Pool::new(settings.pool_max_idle_per_host, settings.pool_idle_timeout, Arc::new(AsyncIoTimer));
        Ok(Connections { tls: TlsConnector::from(Arc::new(tls)), pool: Arc::new(pool) })
    }

    /// The current TLS settings and pool.
    fn connections(&self) -> Arc<Connections> {
        self.connections.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Makes new connections present `identity` (or no client certificate), with a new pool:
    /// the idle connections made with the previous certificate are dropped, and those in use
    /// go back to the old pool, which nothing takes from any more.
    pub(crate) fn set_identity(&self, identity: Option<&Identity>) -> Result<(), TransportError> {
        let config = Config { identity: identity.cloned(), ..self.config.clone() };
        let connections = Self::connections_for(&config, &self.settings)?;
        *self.connections.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(connections);
        Ok(())
    }

    pub(crate) fn idle_connections(&self) -> usize {
        self.connections().pool.idle_count()
    }

    /// A new connection to `key`: TCP (through the proxy's tunnel, if any), then TLS for
    /// https, all within the connect timeout.
    async fn connect(&self, tls: &TlsConnector, key: &PoolKey) -> Result<Conn, TransportError> {
        let origin = key.origin();
        let connecting = async {
            let tcp = match self.proxy.proxy_for(key.scheme(), &key.host, key.port)? {
                Some(proxy) => tunnel(proxy, key).await?,
                None => tcp_connect(key.bare_host(), key.port)
                    .await
                    .map_err(|e| TransportError::Connect { url: origin.clone(), message: e.to_string() })?,
            };
            if !key.https {
                return Ok(Conn::Plain(tcp));
            }
            // tls-server-name names the cluster's certificate, not other hosts'.
            let override_name = if &self.cluster == key { self.tls_server_name.as_deref() } else { None };
            let name = kube_runtime::tls::server_name_for(override_name, &key.host)
                .map_err(|message| TransportError::Tls { url: origin.clone(), message })?;
            let tls = tls.connect(name, tcp).await.map_err(|e| error::handshake(&origin, e))?;
            Ok(Conn::Tls(Box::new(tls)))
        };
        match self.settings.connect_timeout {
            Some(limit) => async_std::future::timeout(limit, connecting).await.unwrap_or_else(|_| {
                Err(TransportError::Timeout(format!("connecting to {origin} took longer than {limit:?}")))
            }),
            None => connecting.await,
        }
    }

    /// Sends a request on a pooled or new connection. A pooled connection that the server had
    /// closed while idle (it fails before any byte of a response) is replaced by a new one once.
    async fn execute(&self, mut req: Request) -> Result<Response, TransportError> {
        let key = key_for(req.url())?;
        let origin = key.origin();
        let connections = self.connections();
        let pool = &connections.pool;
        // http-types adds the body's content type (application/octet-stream) to a request
        // with none whenever its body is replaced: take it out again.
        let had_content_type = req.header(CONTENT_TYPE).is_some();
        let mut body = req
            .take_body()
            .into_bytes()
            .await
            .map_err(|e| TransportError::Other(format!("reading the request body: {e}")))?;
        let head_only = req.method() == Method::Head;
        let close_requested = has_token(req.header(CONNECTION), "close");
        let mut may_reuse = true;
        loop {
            let pooled = if may_reuse { pool.take(&key) } else { None };
            let reused = pooled.is_some();
            let conn = match pooled {
                Some(conn) => conn,
                None => self.connect(&connections.tls, &key).await?,
            };
            let (stream, exchange) = pool.checkout(key.clone(), conn, self.settings.io_timeout);
            let mut attempt = req.clone();
            // Only a request on a pooled connection may be sent again.
            attempt.set_body(Body::from_bytes(if reused { body.clone() } else { std::mem::take(&mut body) }));
            if !had_content_type {
                attempt.remove_header(CONTENT_TYPE);
            }
            match async_h1::connect(stream, attempt).await {
                Ok(res) => {
                    let keep_alive = !close_requested && !has_token(res.header(CONNECTION), "close");
                    return prepare(res, head_only, keep_alive, &key, &exchange);
                }
                Err(e) => {
                    let read_any = exchange.read_any();
                    let error = error::exchange(&origin, &e, read_any);
                    let stale = reused && !read_any && !matches!(error, TransportError::Timeout(_));
                    if stale {
                        tracing::debug!(server = %origin, "a pooled connection was closed by the server; retrying on a new one");
                        may_reuse = false;
                        continue;
                    }
                    return Err(error);
                }
            }
        }
    }
}

impl H1Client {
    /// An upgrade ([`kube_runtime::http1::upgrade`]) on a new connection to the request's
    /// server, the answer awaited within the read timeout.
    pub(crate) async fn upgrade(&self, request: http::Request<Vec<u8>>) -> Result<Upgraded, TransportError> {
        let uri = request.uri();
        let key = PoolKey::new(uri.scheme_str().unwrap_or(""), uri.host(), uri.port_u16())?;
        let origin = key.origin();
        let conn = self.connect(&self.connections().tls, &key).await?;
        let exchange = kube_runtime::http1::upgrade(conn, request, &origin);
        match self.settings.io_timeout {
            Some(limit) => async_std::future::timeout(limit, exchange).await.unwrap_or_else(|_| {
                Err(TransportError::Timeout(format!(
                    "no answer to the upgrade request from {origin} within the read timeout ({limit:?})"
                )))
            }),
            None => exchange.await,
        }
    }
}

/// Wraps the response body so it is checked, typed and releases the connection to the pool;
/// handles the responses that have no body.
fn prepare(
    mut res: Response,
    head_only: bool,
    keep_alive: bool,
    key: &PoolKey,
    exchange: &Exchange,
) -> Result<Response, TransportError> {
    let status = u16::from(res.status());
    let chunked = res.header(TRANSFER_ENCODING).is_some_and(|v| v.last().as_str() == "chunked");
    // async-h1 has already parsed it when present.
    let length = res.header(CONTENT_LENGTH).and_then(|v| v.last().as_str().trim().parse::<u64>().ok());
    if response_has_no_body(head_only, status, chunked, length) {
        exchange.end_without_body(keep_alive);
        // Drops async-h1's reader, and so returns the connection if async-h1 still held it.
        drop(res.take_body());
        return Ok(res);
    }
    if !chunked && length.is_none() {
        // async-h1 reads only Content-Length and chunked bodies; it would report this one
        // as empty.
        return Err(TransportError::Other(format!(
            "{}: the response ({status}) has a body delimited by the connection's close, which async-h1 cannot read",
            key.origin()
        )));
    }
    let reader = exchange.body_reader(res.take_body(), if chunked { None } else { length }, keep_alive);
    res.set_body(Body::from_reader(reader, None));
    Ok(res)
}

fn has_token(values: Option<&http_types::headers::HeaderValues>, token: &str) -> bool {
    values.is_some_and(|vs| vs.iter().any(|v| v.as_str().split(',').any(|t| t.trim().eq_ignore_ascii_case(token))))
}

impl H1Client {
    /// [`http_client::HttpClient::send`]: the error carries the [`TransportError`].
    pub(crate) async fn send(&self, req: Request) -> Result<Response, HttpError> {
        self.execute(req).await.map_err(|e| HttpError::new(StatusCode::BadGateway, e))
    }
}
