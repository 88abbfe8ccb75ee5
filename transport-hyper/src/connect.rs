//! The connector the hyper-util client pools: TCP (through an HTTP CONNECT proxy when one
//! applies), then TLS with the cluster's settings, all within the connect timeout.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::TokioIo;
use kube_runtime::TransportError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsConnector, rustls};

/// Which destinations go through a proxy.
pub(crate) struct ProxyRules {
    /// The proxies and the `NO_PROXY` list.
    pub(crate) matcher: Matcher,
    /// Whether `localhost` and loopback addresses bypass the proxy (as Go's
    /// `ProxyFromEnvironment` does for proxies taken from the environment).
    pub(crate) bypass_loopback: bool,
}

/// Connects to a destination. Cloned by the client for every connection it opens.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: Arc<Inner>,
}

struct Inner {
    tls: Arc<rustls::ClientConfig>,
    tls_server_name: Option<String>,
    proxy: Arc<Option<ProxyRules>>,
    connect_timeout: Duration,
}

impl Connector {
    pub(crate) fn new(
        tls: rustls::ClientConfig,
        tls_server_name: Option<String>,
        proxy: Arc<Option<ProxyRules>>,
        connect_timeout: Duration,
    ) -> Self {
        Connector { inner: Arc::new(Inner { tls: Arc::new(tls), tls_server_name, proxy, connect_timeout }) }
    }
}

/// A connection failure, carried through hyper-util's error to [`crate::HyperTransport`], which
/// takes the [`TransportError`] back out of it.
#[derive(Debug)]
pub(crate) struct ConnectFailure(pub(crate) TransportError);

impl std::fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ConnectFailure {}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = ConnectFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Conn, ConnectFailure>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move {
            let limit = inner.connect_timeout;
            match tokio::time::timeout(limit, inner.connect(&dst)).await {
                Ok(result) => result.map_err(ConnectFailure),
                Err(_) => Err(ConnectFailure(TransportError::Timeout(format!(
                    "connecting to {} took longer than the connect timeout ({})",
                    origin(&dst),
                    crate::fmt_duration(limit)
                )))),
            }
        })
    }
}

impl Inner {
    async fn connect(&self, dst: &Uri) -> Result<Conn, TransportError> {
        let url = origin(dst);
        let https = match dst.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            other => return Err(TransportError::Unsupported(format!("the URL scheme {other:?} of {url}"))),
        };
        let host = dst
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| TransportError::Connect { url: url.clone(), message: "the URL has no host".into() })?;
        let port = dst.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tcp = match self.proxy_for(dst) {
            Some(proxy) => tunnel(&proxy, host, port, &url).await?,
            None => tcp_connect(host, port)
                .await
                .map_err(|message| TransportError::Connect { url: url.clone(), message })?,
        };
        if !https {
            return Ok(Conn::Plain(TokioIo::new(tcp)));
        }
        let name = kube_runtime::tls::server_name_for(self.tls_server_name.as_deref(), host)
            .map_err(|message| TransportError::Tls { url: url.clone(), message })?;
        let tls = TlsConnector::from(self.tls.clone()).connect(name, tcp).await.map_err(|e| tls_io_error(&e, &url))?;
        Ok(Conn::Tls(Box::new(TokioIo::new(tls))))
    }

    fn proxy_for(&self, dst: &Uri) -> Option<Intercept> {
        let rules = self.proxy.as_ref().as_ref()?;
        if rules.bypass_loopback && is_loopback(dst.host()?) {
            return None;
        }
        rules.matcher.intercept(dst)
    }
}

/// Scheme, host and port: a URL as errors show it (never with credentials, path or query).
pub(crate) fn origin(uri: &Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().unwrap_or("");
    match uri.port_u16() {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    }
}

fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

fn is_loopback(host: &str) -> bool {
    let host = strip_brackets(host);
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Resolves `host` and connects to its addresses in turn.
async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let host = strip_brackets(host);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve the host {host:?}: {e}"))?
            .collect(),
    };
    let mut last = format!("the host {host:?} resolves to no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// Opens a tunnel to `host:port` through an HTTP proxy with `CONNECT`.
async fn tunnel(proxy: &Intercept, host: &str, port: u16, url: &str) -> Result<TcpStream, TransportError> {
    let proxy_url = origin(proxy.uri());
    if proxy.uri().scheme_str() != Some("http") {
        return Err(TransportError::Unsupported(format!(
            "the proxy {proxy_url}: only http:// proxies (HTTP CONNECT) are supported"
        )));
    }
    let connect_err = |message: String| TransportError::Connect { url: url.to_owned(), message };
    let proxy_host = proxy.uri().host().unwrap_or("");
    let proxy_port = proxy.uri().port_u16().unwrap_or(80);
    let mut stream = tcp_connect(proxy_host, proxy_port)
        .await
        .map_err(|m| connect_err(format!("cannot connect to the proxy {proxy_url}: {m}")))?;
    let mut head = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n").into_bytes();
    if let Some(auth) = proxy.basic_auth() {
        head.extend_from_slice(b"Proxy-Authorization: ");
        head.extend_from_slice(auth.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let io_err = |e: io::Error| connect_err(format!("the proxy {proxy_url} failed during CONNECT: {e}"));
    stream.write_all(&head).await.map_err(io_err)?;
    // Read the proxy's answer byte by byte so nothing after its head (the server's first TLS
    // bytes) is consumed here.
    let mut answer = Vec::with_capacity(128);
    while !answer.ends_with(b"\r\n\r\n") {
        if answer.len() > 16 * 1024 {
            return Err(connect_err(format!("the proxy {proxy_url} sent an oversized answer to CONNECT")));
        }
        let mut byte = [0u8; 1];
        if stream.read(&mut byte).await.map_err(io_err)? == 0 {
            return Err(connect_err(format!("the proxy {proxy_url} closed the connection during CONNECT")));
        }
        answer.push(byte[0]);
    }
    let status_line = answer.split(|&b| b == b'\r').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    let ok = status_line.starts_with("HTTP/1.")
        && status_line.split_whitespace().nth(1).is_some_and(|code| code.len() == 3 && code.starts_with('2'));
    if !ok {
        return Err(connect_err(format!("the proxy {proxy_url} refused the tunnel: {}", status_line.trim())));
    }
    Ok(stream)
}

/// A failed TLS handshake as a [`TransportError`]: [`TransportError::Tls`] when rustls
/// rejected something (a certificate above all), else the I/O failure.
fn tls_io_error(e: &io::Error, url: &str) -> TransportError {
    if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return TransportError::Tls { url: url.to_owned(), message: kube_runtime::tls::describe_error(tls) };
    }
    TransportError::Tls { url: url.to_owned(), message: format!("the TLS handshake failed: {e}") }
}

/// A connection, plain or TLS.
pub(crate) enum Conn {
    Plain(TokioIo<TcpStream>),
    Tls(Box<TokioIo<TlsStream<TcpStream>>>),
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        match self {
            Conn::Plain(_) => Connected::new(),
            Conn::Tls(s) if s.inner().get_ref().1.alpn_protocol() == Some(b"h2") => Connected::new().negotiated_h2(),
            Conn::Tls(_) => Connected::new(),
        }
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_drops_credentials_and_paths() {
        let uri: Uri = "https://user:secret@example.com:6443/api?x=1".parse().unwrap();
        assert_eq!(origin(&uri), "https://example.com:6443");
        let uri: Uri = "http://[::1]/".parse().unwrap();
        assert_eq!(origin(&uri), "http://[::1]");
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("localhost"));
        assert!(is_loopback("a.localhost"));
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("[::1]"));
        assert!(!is_loopback("example.com"));
        assert!(!is_loopback("10.0.0.1"));
    }
}
