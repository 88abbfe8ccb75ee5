//! [`H1Client`]: surf's pluggable backend, an [`http_client::HttpClient`] over async-h1, async-std's
//! `TcpStream` and futures-rustls (rustls 0.23, ring), with a keep-alive pool and an HTTP
//! `CONNECT` proxy tunnel.

use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_std::net::TcpStream;
use futures_rustls::TlsConnector;
use futures_util::{AsyncReadExt as _, AsyncWriteExt as _};
use http_client::{Error as HttpError, Request, Response};
use http_types::headers::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http_types::{Body, Method, StatusCode};
use kube_proto::config::{Config, Identity};
use kube_runtime::transport::TransportError;

use crate::error;
use crate::io::{BodyReader, Checkout, Conn, ExchangeState, Pool, PoolKey};

/// The settings of the connections (see [`Options`](crate::Options)).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) io_timeout: Option<Duration>,
    pub(crate) pool_max_idle_per_host: usize,
    pub(crate) pool_idle_timeout: Duration,
}

/// An HTTP proxy reached with `CONNECT`.
struct Proxy {
    key: PoolKey,
    /// `Basic …` from the proxy URL's user info (never shown).
    authorization: Option<String>,
}

impl Proxy {
    fn from_url(url: &url::Url) -> Result<Proxy, TransportError> {
        let unsupported = |why: &str| TransportError::Unsupported(format!("proxy-url: {why}"));
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(unsupported(
                    "an https:// proxy (TLS to the proxy itself) is not supported by transport-asyncstd; use an http:// proxy, which tunnels TLS to the cluster with CONNECT",
                ));
            }
            "socks5" | "socks5h" | "socks4" | "socks4a" | "socks" => {
                return Err(unsupported(
                    "SOCKS proxies are not supported by transport-asyncstd; use an http:// proxy (CONNECT) or transport-hyper",
                ));
            }
            other => return Err(unsupported(&format!("the proxy scheme {other:?} is not supported (only http://)"))),
        }
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| unsupported("the proxy URL has no host"))?;
        let key = PoolKey { https: false, host: host.to_owned(), port: url.port_or_known_default().unwrap_or(80) };
        let authorization = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            use base64::Engine as _;
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            let user_pass = format!("{}:{}", decode(url.username()), decode(url.password().unwrap_or("")));
            Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass)))
        };
        Ok(Proxy { key, authorization })
    }

    fn origin(&self) -> String {
        format!("proxy http://{}", self.key.authority())
    }

    /// A TCP connection to the proxy, tunnelled to `target`.
    async fn tunnel(&self, target: &PoolKey) -> Result<TcpStream, TransportError> {
        let origin = self.origin();
        let connect_err = |message: String| TransportError::Connect { url: origin.clone(), message };
        let mut tcp = tcp_connect(&self.key).await.map_err(|e| connect_err(e.to_string()))?;
        let authority = target.authority();
        let mut head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(auth) = &self.authorization {
            head.push_str("Proxy-Authorization: ");
            head.push_str(auth);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        tcp.write_all(head.as_bytes()).await.map_err(|e| connect_err(format!("sending CONNECT: {e}")))?;
        // Read the answer's head byte by byte: nothing after it may be consumed, it is the
        // tunnel's.
        let mut answer = Vec::with_capacity(128);
        let mut byte = [0u8; 1];
        while !answer.ends_with(b"\r\n\r\n") && !answer.ends_with(b"\n\n") {
            if answer.len() > 16 * 1024 {
                return Err(connect_err("the answer to CONNECT is too long".into()));
            }
            match tcp.read(&mut byte).await {
                Ok(0) => return Err(connect_err("the proxy closed the connection in answer to CONNECT".into())),
                Ok(_) => answer.push(byte[0]),
                Err(e) => return Err(connect_err(format!("reading the answer to CONNECT: {e}"))),
            }
        }
        let status_line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
        let status_line = String::from_utf8_lossy(status_line);
        let code = status_line.split_whitespace().nth(1).and_then(|c| c.parse::<u16>().ok());
        match code {
            Some(200..=299) => Ok(tcp),
            Some(407) => Err(connect_err(format!(
                "the proxy requires authentication (407){}",
                if self.authorization.is_some() {
                    " and refused the credentials in proxy-url"
                } else {
                    "; put them in proxy-url"
                }
            ))),
            Some(code) => Err(connect_err(format!("the proxy refused to CONNECT to {} ({code})", target.origin()))),
            None => Err(connect_err("the proxy's answer to CONNECT is not HTTP".into())),
        }
    }
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("proxy", &self.key.authority())
            .field("authorization", &self.authorization.is_some())
            .finish()
    }
}

async fn tcp_connect(key: &PoolKey) -> io::Result<TcpStream> {
    let tcp = TcpStream::connect((key.bare_host(), key.port)).await?;
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
    proxy: Option<Proxy>,
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
    pub(crate) fn new(config: &Config, settings: Settings) -> Result<H1Client, TransportError> {
        let connections = Self::connections_for(config, &settings)?;
        // Checks tls-server-name now rather than on the first request.
        if config.cluster_url.scheme() == "https" {
            kube_runtime::tls::server_name(config)?;
        }
        let cluster = PoolKey::for_url(&config.cluster_url)?;
        let proxy = config.proxy_url.as_ref().map(Proxy::from_url).transpose()?;
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
        let pool = Pool::new(settings.pool_max_idle_per_host, settings.pool_idle_timeout);
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
            let tcp = match &self.proxy {
                Some(proxy) => proxy.tunnel(key).await?,
                None => tcp_connect(key)
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
        let key = PoolKey::for_url(req.url())?;
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
            let state = Arc::new(ExchangeState::default());
            let stream = Checkout::new(conn, pool.clone(), key.clone(), state.clone(), self.settings.io_timeout);
            let mut attempt = req.clone();
            // Only a request on a pooled connection may be sent again.
            attempt.set_body(Body::from_bytes(if reused { body.clone() } else { std::mem::take(&mut body) }));
            if !had_content_type {
                attempt.remove_header(CONTENT_TYPE);
            }
            match async_h1::connect(stream, attempt).await {
                Ok(res) => {
                    let keep_alive = !close_requested && !has_token(res.header(CONNECTION), "close");
                    return self.prepare(res, head_only, keep_alive, pool, &key, state);
                }
                Err(e) => {
                    let read_any = state.read_any.load(Ordering::Acquire);
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

    /// Wraps the response body so it is checked, typed and releases the connection (to `pool`);
    /// handles the responses that have no body.
    fn prepare(
        &self,
        mut res: Response,
        head_only: bool,
        keep_alive: bool,
        pool: &Pool,
        key: &PoolKey,
        state: Arc<ExchangeState>,
    ) -> Result<Response, TransportError> {
        let status = u16::from(res.status());
        let chunked = res.header(TRANSFER_ENCODING).is_some_and(|v| v.last().as_str() == "chunked");
        // async-h1 has already parsed it when present.
        let length = res.header(CONTENT_LENGTH).and_then(|v| v.last().as_str().trim().parse::<u64>().ok());
        let no_body = head_only
            || (100..200).contains(&status)
            || status == 204
            || status == 304
            || (!chunked && length == Some(0));
        if no_body {
            state.reusable.store(keep_alive, Ordering::Release);
            // Drops async-h1's reader (and so returns the connection) or, if async-h1 had
            // dropped it already, finds the connection where the checkout left it.
            drop(res.take_body());
            if keep_alive && let Some(conn) = state.take_orphan() {
                pool.put(key.clone(), conn);
            }
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
        let inner = res.take_body();
        let reader = BodyReader::new(inner, if chunked { None } else { length }, state, keep_alive, key.origin());
        res.set_body(Body::from_reader(reader, None));
        Ok(res)
    }
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
