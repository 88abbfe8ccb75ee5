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
use hyper_util::rt::TokioIo;
use kube_proto::proxy::{ConnectProxy, ProxyRules, Status};
use kube_runtime::TransportError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsConnector, rustls};

/// Connects to a destination. Cloned by the client for every connection it opens.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: Arc<Inner>,
}

struct Inner {
    tls: Arc<rustls::ClientConfig>,
    tls_server_name: Option<String>,
    proxy: Arc<ProxyRules>,
    connect_timeout: Duration,
}

impl Connector {
    pub(crate) fn new(
        tls: rustls::ClientConfig,
        tls_server_name: Option<String>,
        proxy: Arc<ProxyRules>,
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
        let scheme = if https { "https" } else { "http" };
        let tcp = match self.proxy.proxy_for(scheme, host, port)? {
            Some(proxy) => tunnel(proxy, host, port, &url).await?,
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

/// Opens a tunnel to `host:port` through an HTTP proxy with `CONNECT` (the core's codec).
async fn tunnel(proxy: &ConnectProxy, host: &str, port: u16, url: &str) -> Result<TcpStream, TransportError> {
    let connect_err = |message: String| TransportError::Connect { url: url.to_owned(), message };
    let handshake = proxy.handshake(host, port).map_err(|e| kube_runtime::transport::tunnel_error(url, e))?;
    let mut stream = tcp_connect(proxy.host(), proxy.port())
        .await
        .map_err(|m| connect_err(format!("cannot connect to the proxy {}: {m}", proxy.origin())))?;
    let io_err = |e: io::Error| connect_err(format!("the proxy {} failed during CONNECT: {e}", proxy.origin()));
    stream.write_all(handshake.request()).await.map_err(io_err)?;
    // Read no further than the answer's head: what follows is the server's (its first TLS bytes).
    let mut answer = Vec::with_capacity(128);
    loop {
        let start = answer.len();
        answer.resize(start + handshake.read_limit(&answer), 0);
        let n = stream.read(&mut answer[start..]).await.map_err(io_err)?;
        answer.truncate(start + n);
        if n == 0 {
            return Err(connect_err(format!("the proxy {} closed the connection during CONNECT", proxy.origin())));
        }
        match handshake.parse(&answer) {
            Ok(Status::Complete(_)) => return Ok(stream),
            Ok(Status::Partial) => continue,
            Err(e) => return Err(kube_runtime::transport::tunnel_error(url, e)),
        }
    }
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
}
