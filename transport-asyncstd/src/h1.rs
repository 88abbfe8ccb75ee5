//! [`H1Client`]: surf's pluggable backend, an [`http_client::HttpClient`] that speaks HTTP/1.1
//! with the core's codec ([`kube_runtime::http1::send`]) over async-std's `TcpStream` and
//! futures-rustls (rustls 0.23, ring), with a keep-alive pool and an HTTP `CONNECT` proxy tunnel
//! (the core's [`kube_proto::proxy`] codec and rules).

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
use http_types::headers::{CONNECTION, CONTENT_TYPE};
use http_types::{Body, Method, StatusCode};
use kube_proto::config::{Config, Identity};
use kube_proto::proxy::{ConnectProxy, ProxyRules, Status};
use kube_runtime::Upgraded;
use kube_runtime::pool::{self, PoolKey};
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

/// surf's backend: HTTP/1.1 with rustls from [`kube_runtime::tls`].
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
        // HTTP/1.1 only: offer nothing else in ALPN.
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
        let body = req
            .take_body()
            .into_bytes()
            .await
            .map_err(|e| TransportError::Other(format!("reading the request body: {e}")))?;
        let bytes = encode(&req, &body)?;
        drop(body);
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
            match kube_runtime::http1::send(stream, &bytes, head_only, &origin).await {
                Ok((head, body)) => {
                    let keep_alive = !close_requested && !head_says_close(&head.headers);
                    return Ok(response(head, body, keep_alive, &exchange));
                }
                Err(error) => {
                    // Only a request on a pooled connection may be sent again.
                    let stale = reused && !exchange.read_any() && !matches!(error, TransportError::Timeout(_));
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

/// The request's bytes, as the core's HTTP/1.1 codec writes them. http-types adds the body's
/// content type (application/octet-stream) to a request with none when its body is set; a
/// request without a body sends none.
fn encode(req: &Request, body: &[u8]) -> Result<Vec<u8>, TransportError> {
    let invalid = |what: &str| TransportError::Other(format!("the request cannot be sent: {what}"));
    // The URL is not shown in errors: its user info, if any, is a credential.
    let mut builder = http::Request::builder()
        .method(req.method().as_ref())
        .uri(http::Uri::try_from(req.url().as_str()).map_err(|_| invalid("its URL is not a valid URI"))?);
    for (name, values) in req.iter() {
        if name == &CONTENT_TYPE && body.is_empty() {
            continue;
        }
        for value in values.iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
    }
    let request = builder.body(body).map_err(|e| invalid(&e.to_string()))?;
    kube_proto::http1::encode_request(&request).map_err(|e| invalid(&e.to_string()))
}

/// The status and headers of a response exactly as they came, carried in the http-types
/// response's extensions: http-types cannot hold every valid head (a header value with bytes
/// above 0x7f, a status code it does not know). [`AsyncStdTransport`](crate::AsyncStdTransport)
/// answers with this head.
#[derive(Debug)]
pub(crate) struct Head {
    pub(crate) status: http::StatusCode,
    pub(crate) headers: http::HeaderMap,
}

/// The response for surf: the head in its extensions ([`Head`]); the body, if any, read from
/// the connection, checked and releasing it (to the pool when `keep_alive`) at its end.
fn response(
    head: kube_proto::http1::ResponseHead,
    body: kube_runtime::http1::Body<pool::Checkout<Conn>>,
    keep_alive: bool,
    exchange: &Exchange,
) -> Response {
    let status = head.status.as_u16();
    // The class of a status http-types does not know: the exact one is in `Head`.
    let mut res = Response::new(StatusCode::try_from(status).unwrap_or(match status / 100 {
        1 => StatusCode::Continue,
        2 => StatusCode::Ok,
        3 => StatusCode::MultipleChoice,
        4 => StatusCode::BadRequest,
        _ => StatusCode::InternalServerError,
    }));
    if body.is_done() {
        exchange.end_without_body(keep_alive);
        // Returns the connection to the pool (when `keep_alive`).
        drop(body);
    } else {
        let (expected, keep_alive) = (body.content_length(), keep_alive && !body.ends_with_close());
        let reader = exchange.body_reader(body, expected, keep_alive);
        res.set_body(Body::from_reader(reader, None));
    }
    res.ext_mut().insert(Head { status: head.status, headers: head.headers });
    res
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

/// Whether a response head asks to close the connection after it.
fn head_says_close(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .any(|v| v.as_bytes().split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close")))
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
