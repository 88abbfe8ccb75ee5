//! The byte streams under async-h1: a plain or TLS connection, the checked-out connection that
//! enforces the I/O timeout and goes back to the pool, and the response body reader that says
//! when the connection may go back.

use std::collections::HashMap;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use async_io::Timer;
use async_std::net::TcpStream;
use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};
use futures_rustls::client::TlsStream;
use kube_runtime::transport::TransportError;

use crate::error;

/// An open connection to a server (through a proxy's tunnel, if any).
pub(crate) enum Conn {
    /// Plain HTTP.
    Plain(TcpStream),
    /// HTTPS.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_close(cx),
            Conn::Tls(s) => Pin::new(s).poll_close(cx),
        }
    }
}

impl Conn {
    /// Whether an idle connection still looks usable: nothing to read and not closed. Polls
    /// once with a no-op waker, so it never waits.
    fn idle_and_open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut byte = [0u8; 1];
        matches!(Pin::new(self).poll_read(&mut cx, &mut byte), Poll::Pending)
    }
}

/// Where a pooled connection goes: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    /// HTTPS or plain HTTP.
    pub(crate) https: bool,
    /// The host as given in the URL (an IPv6 address in brackets).
    pub(crate) host: String,
    /// The port (the scheme's default if the URL has none).
    pub(crate) port: u16,
}

impl PoolKey {
    /// The key of a request URL.
    pub(crate) fn for_url(url: &url::Url) -> Result<PoolKey, TransportError> {
        let https = match url.scheme() {
            "https" => true,
            "http" => false,
            other => {
                return Err(TransportError::Unsupported(format!(
                    "the URL scheme {other:?} (transport-asyncstd speaks http and https)"
                )));
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| TransportError::Other("the request URL has no host".into()))?;
        let port = url.port_or_known_default().unwrap_or(if https { 443 } else { 80 });
        Ok(PoolKey { https, host: host.to_owned(), port })
    }

    /// The host with no IPv6 brackets, for name resolution and TLS.
    pub(crate) fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    /// `scheme://host:port`, for messages (never a path, query or user info).
    pub(crate) fn origin(&self) -> String {
        format!("{}://{}:{}", if self.https { "https" } else { "http" }, self.host, self.port)
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// Idle keep-alive connections, by scheme, host and port.
pub(crate) struct Pool {
    idle: Mutex<HashMap<PoolKey, Vec<Idle>>>,
    max_idle_per_host: usize,
    idle_timeout: Duration,
}

impl Pool {
    pub(crate) fn new(max_idle_per_host: usize, idle_timeout: Duration) -> Pool {
        Pool { idle: Mutex::new(HashMap::new()), max_idle_per_host, idle_timeout }
    }

    /// The most recently used idle connection to `key` that is still open, if any.
    pub(crate) fn take(&self, key: &PoolKey) -> Option<Conn> {
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(key)?;
        let mut found = None;
        while let Some(mut entry) = list.pop() {
            if entry.since.elapsed() < self.idle_timeout && entry.conn.idle_and_open() {
                found = Some(entry.conn);
                break;
            }
        }
        if list.is_empty() {
            idle.remove(key);
        }
        found
    }

    /// Keeps a connection whose last exchange completed cleanly.
    pub(crate) fn put(&self, key: PoolKey, conn: Conn) {
        if self.max_idle_per_host == 0 {
            return;
        }
        let Ok(mut idle) = self.idle.lock() else { return };
        let timeout = self.idle_timeout;
        idle.retain(|_, list| {
            list.retain(|e| e.since.elapsed() < timeout);
            !list.is_empty()
        });
        let list = idle.entry(key).or_default();
        if list.len() < self.max_idle_per_host {
            list.push(Idle { conn, since: Instant::now() });
        }
    }

    /// How many idle connections are kept (for tests and diagnostics).
    pub(crate) fn idle_count(&self) -> usize {
        self.idle.lock().map(|i| i.values().map(Vec::len).sum()).unwrap_or(0)
    }
}

/// What the exchange on a connection has shown so far.
#[derive(Default)]
pub(crate) struct ExchangeState {
    /// The response was read whole and the connection may carry another request.
    pub(crate) reusable: AtomicBool,
    /// Some byte of the response has arrived.
    pub(crate) read_any: AtomicBool,
    /// The connection, when async-h1 let go of it before the body was known to be whole (a
    /// response with no body).
    orphan: Mutex<Option<Conn>>,
}

impl ExchangeState {
    /// The connection async-h1 let go of, if any.
    pub(crate) fn take_orphan(&self) -> Option<Conn> {
        self.orphan.lock().ok()?.take()
    }
}

/// A connection lent to one request: async-h1 writes the request to it and reads the response
/// from it. No progress for longer than the I/O timeout fails the read or write with
/// [`TransportError::Timeout`]; when dropped after a clean exchange it goes back to the pool.
pub(crate) struct Checkout {
    conn: Option<Conn>,
    pool: Arc<Pool>,
    key: PoolKey,
    state: Arc<ExchangeState>,
    io_timeout: Option<Duration>,
    timer: Option<Timer>,
}

impl Checkout {
    pub(crate) fn new(
        conn: Conn,
        pool: Arc<Pool>,
        key: PoolKey,
        state: Arc<ExchangeState>,
        io_timeout: Option<Duration>,
    ) -> Self {
        Checkout { conn: Some(conn), pool, key, state, io_timeout, timer: None }
    }

    /// Called when the connection is not ready: fails once the timeout has passed since it
    /// last made progress.
    fn poll_timeout<T>(&mut self, cx: &mut Context<'_>, doing: &str) -> Poll<io::Result<T>> {
        let Some(limit) = self.io_timeout else { return Poll::Pending };
        let timer = self.timer.get_or_insert_with(|| Timer::after(limit));
        match Pin::new(timer).poll(cx) {
            Poll::Ready(_) => {
                self.timer = None;
                let message = format!("no {doing} {} for {limit:?}", self.key.origin());
                Poll::Ready(Err(error::io_error(io::ErrorKind::TimedOut, TransportError::Timeout(message))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<T>(&mut self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.timer = None;
        }
        r
    }
}

fn closed<T>() -> Poll<io::Result<T>> {
    Poll::Ready(Err(io::Error::new(io::ErrorKind::NotConnected, "the connection is closed")))
}

impl AsyncRead for Checkout {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(conn) = this.conn.as_mut() else { return closed() };
        match Pin::new(conn).poll_read(cx, buf) {
            Poll::Pending => this.poll_timeout(cx, "response from"),
            r => {
                if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
                    this.state.read_any.store(true, Ordering::Release);
                }
                this.progressed(r)
            }
        }
    }
}

impl AsyncWrite for Checkout {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(conn) = this.conn.as_mut() else { return closed() };
        match Pin::new(conn).poll_write(cx, buf) {
            Poll::Pending => this.poll_timeout(cx, "progress sending the request to"),
            r => this.progressed(r),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Some(conn) = this.conn.as_mut() else { return closed() };
        match Pin::new(conn).poll_flush(cx) {
            Poll::Pending => this.poll_timeout(cx, "progress sending the request to"),
            r => this.progressed(r),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.conn.as_mut() {
            Some(conn) => Pin::new(conn).poll_close(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.state.reusable.load(Ordering::Acquire) {
            self.pool.put(self.key.clone(), conn);
        } else if Arc::strong_count(&self.state) > 1
            && let Ok(mut orphan) = self.state.orphan.lock()
        {
            // Kept until the request's response is known: if it has no body, the connection
            // can be reused; otherwise it closes when the response goes.
            *orphan = Some(conn);
        }
    }
}

/// A response body as async-h1 decodes it, checked for a short `Content-Length` body (which
/// async-h1 would end silently), its errors typed, and the connection released for reuse as
/// soon as the last byte has been read.
pub(crate) struct BodyReader {
    inner: Option<http_types::Body>,
    expected: Option<u64>,
    seen: u64,
    state: Arc<ExchangeState>,
    keep_alive: bool,
    origin: String,
}

impl BodyReader {
    pub(crate) fn new(
        inner: http_types::Body,
        expected: Option<u64>,
        state: Arc<ExchangeState>,
        keep_alive: bool,
        origin: String,
    ) -> Self {
        BodyReader { inner: Some(inner), expected, seen: 0, state, keep_alive, origin }
    }

    /// The body has ended: was it whole? Releases the connection either way (to the pool if
    /// it may be reused).
    fn finish(&mut self) -> io::Result<()> {
        let result = match self.expected {
            Some(expected) if self.seen < expected => Err(error::io_error(
                io::ErrorKind::UnexpectedEof,
                TransportError::Closed(format!(
                    "{}: the body ended after {} of {expected} bytes",
                    self.origin, self.seen
                )),
            )),
            _ => {
                if self.keep_alive {
                    self.state.reusable.store(true, Ordering::Release);
                }
                Ok(())
            }
        };
        self.inner = None;
        result
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        self.inner = None;
        error::body_io_error(e, &self.origin)
    }

    fn count(&mut self, n: usize) {
        self.seen += n as u64;
        if self.expected == Some(self.seen) {
            // Whole: release the connection now rather than on the next read.
            let _ = self.finish();
        }
    }
}

impl AsyncRead for BodyReader {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(Ok(0)) };
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        match ready!(Pin::new(inner).poll_read(cx, buf)) {
            Ok(0) => Poll::Ready(this.finish().map(|()| 0)),
            Ok(n) => {
                this.count(n);
                Poll::Ready(Ok(n))
            }
            Err(e) => Poll::Ready(Err(this.fail(e))),
        }
    }
}

impl AsyncBufRead for BodyReader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(Ok(&[])) };
        let available = match ready!(Pin::new(inner).poll_fill_buf(cx)) {
            Ok(buf) => buf.len(),
            Err(e) => return Poll::Ready(Err(this.fail(e))),
        };
        if available == 0 {
            return Poll::Ready(this.finish().map(|()| &[][..]));
        }
        // The data is buffered: polling again returns it at once.
        match this.inner.as_mut() {
            Some(inner) => Pin::new(inner).poll_fill_buf(cx),
            None => Poll::Ready(Ok(&[])),
        }
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        if let Some(inner) = this.inner.as_mut() {
            Pin::new(inner).consume(amt);
            this.count(amt);
        }
    }
}
