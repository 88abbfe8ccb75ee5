//! An HTTP/1.1 keep-alive connection pool and I/O timeouts, for transports that speak HTTP/1.1
//! themselves ([`crate::http1::send`]) or through a library that has neither. It is executor-agnostic: connections are anything with the
//! `futures-io` traits, and time comes from a [`Timer`] the transport implements.
//!
//! A request takes a connection with [`Pool::take`] (or makes a new one) and lends it to the
//! HTTP library as a [`Checkout`], which fails a read or write that makes no progress for the
//! I/O timeout. The response body is wrapped in a [`BodyReader`], which checks a
//! `Content-Length` body is whole and marks the exchange reusable at its last byte; the
//! checkout then goes back to the pool when the HTTP library drops it. A response with no body
//! is ended with [`Exchange::end_without_body`].

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::io::{AsyncBufRead, AsyncRead, AsyncWrite};

use crate::transport::TransportError;

/// The clock and timers of an executor.
pub trait Timer: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
    /// Completes at `deadline` (at once if it has passed).
    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()>;
}

/// Where a pooled connection goes: scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// HTTPS or plain HTTP.
    pub https: bool,
    /// The host as given in the URL (an IPv6 address in brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl PoolKey {
    /// The key of a URL's scheme, host and port (the scheme's default when `port` is `None`).
    /// Fails for a scheme other than `http` and `https`, or no host.
    pub fn new(scheme: &str, host: Option<&str>, port: Option<u16>) -> Result<PoolKey, TransportError> {
        let https = match scheme {
            "https" => true,
            "http" => false,
            other => {
                return Err(TransportError::Unsupported(format!(
                    "the URL scheme {other:?} (this transport speaks http and https)"
                )));
            }
        };
        let host = host
            .filter(|h| !h.is_empty())
            .ok_or_else(|| TransportError::Other("the request URL has no host".into()))?;
        Ok(PoolKey { https, host: host.to_owned(), port: port.unwrap_or(if https { 443 } else { 80 }) })
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.https { "https" } else { "http" }
    }

    /// The host with no IPv6 brackets, for name resolution and TLS.
    pub fn bare_host(&self) -> &str {
        self.host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(&self.host)
    }

    /// `scheme://host:port`, for messages (never a path, query or user info).
    pub fn origin(&self) -> String {
        format!("{}://{}:{}", self.scheme(), self.host, self.port)
    }
}

/// The transport error an I/O error carries, if it carries one (as those of this module do).
pub fn transport_error(e: &io::Error) -> Option<TransportError> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<TransportError>()).cloned()
}

/// Whether an idle connection still looks usable: nothing to read and not closed. Polls once
/// with a no-op waker, so it never waits.
fn idle_and_open<C: AsyncRead + Unpin>(conn: &mut C) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    let mut byte = [0u8; 1];
    matches!(Pin::new(conn).poll_read(&mut cx, &mut byte), Poll::Pending)
}

struct Idle<C> {
    conn: C,
    since: Instant,
}

/// Idle keep-alive connections of type `C`, by scheme, host and port.
pub struct Pool<C> {
    idle: Mutex<HashMap<PoolKey, Vec<Idle<C>>>>,
    max_idle_per_host: usize,
    idle_timeout: Duration,
    timer: Arc<dyn Timer>,
}

impl<C> std::fmt::Debug for Pool<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("max_idle_per_host", &self.max_idle_per_host)
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl<C> Pool<C> {
    /// Keeps a connection whose last exchange completed cleanly (unless `key` has as many idle
    /// connections as allowed already).
    pub fn put(&self, key: PoolKey, conn: C) {
        if self.max_idle_per_host == 0 {
            return;
        }
        let now = self.timer.now();
        let Ok(mut idle) = self.idle.lock() else { return };
        let timeout = self.idle_timeout;
        idle.retain(|_, list| {
            list.retain(|e| now.saturating_duration_since(e.since) < timeout);
            !list.is_empty()
        });
        let list = idle.entry(key).or_default();
        if list.len() < self.max_idle_per_host {
            list.push(Idle { conn, since: now });
        }
    }

    /// How many idle connections are kept.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().map(|i| i.values().map(Vec::len).sum()).unwrap_or(0)
    }
}

impl<C: AsyncRead + AsyncWrite + Unpin + Send + 'static> Pool<C> {
    /// A pool keeping at most `max_idle_per_host` idle connections to one server (0: none),
    /// each for `idle_timeout` at most, by the clock of `timer` (whose timers also make the
    /// checkouts' I/O timeouts).
    pub fn new(max_idle_per_host: usize, idle_timeout: Duration, timer: Arc<dyn Timer>) -> Pool<C> {
        Pool { idle: Mutex::new(HashMap::new()), max_idle_per_host, idle_timeout, timer }
    }

    /// The most recently used idle connection to `key` that is still open, if any.
    pub fn take(&self, key: &PoolKey) -> Option<C> {
        let now = self.timer.now();
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(key)?;
        let mut found = None;
        while let Some(mut entry) = list.pop() {
            if now.saturating_duration_since(entry.since) < self.idle_timeout && idle_and_open(&mut entry.conn) {
                found = Some(entry.conn);
                break;
            }
        }
        if list.is_empty() {
            idle.remove(key);
        }
        found
    }

    /// Lends `conn` (to `key`) to one exchange, failing a read or write that makes no progress
    /// for `io_timeout` (`None`: no limit); and the handle that follows the exchange.
    pub fn checkout(
        self: &Arc<Self>,
        key: PoolKey,
        conn: C,
        io_timeout: Option<Duration>,
    ) -> (Checkout<C>, Exchange<C>) {
        let exchange = Exchange {
            state: Arc::new(ExchangeState {
                reusable: AtomicBool::new(false),
                read_any: AtomicBool::new(false),
                orphan: Mutex::new(None),
            }),
            pool: self.clone(),
            key,
        };
        let checkout = Checkout {
            conn: Some(conn),
            io_timeout,
            sleep: Mutex::new(None),
            waiting_since: None,
            exchange: exchange.clone(),
        };
        (checkout, exchange)
    }
}

struct ExchangeState<C> {
    /// The response was read whole and the connection may carry another request.
    reusable: AtomicBool,
    /// Some byte of the response has arrived.
    read_any: AtomicBool,
    /// The connection, when the HTTP library let go of it before the body was known to be
    /// whole (a response with no body).
    orphan: Mutex<Option<C>>,
}

/// What one exchange on a checked-out connection has shown so far, and the means to end it.
pub struct Exchange<C> {
    state: Arc<ExchangeState<C>>,
    pool: Arc<Pool<C>>,
    key: PoolKey,
}

impl<C> Clone for Exchange<C> {
    fn clone(&self) -> Self {
        Exchange { state: self.state.clone(), pool: self.pool.clone(), key: self.key.clone() }
    }
}

impl<C> std::fmt::Debug for Exchange<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange").field("server", &self.key.origin()).finish_non_exhaustive()
    }
}

impl<C: AsyncRead + AsyncWrite + Unpin + Send + 'static> Exchange<C> {
    /// Whether any byte of a response has arrived (a request that failed before may be sent
    /// again on another connection, if this one was pooled).
    pub fn read_any(&self) -> bool {
        self.state.read_any.load(Ordering::Acquire)
    }

    /// Ends an exchange whose response has no body: with `keep_alive`, the connection goes
    /// back to the pool, now if the HTTP library has let go of it, else when it does.
    pub fn end_without_body(&self, keep_alive: bool) {
        self.state.reusable.store(keep_alive, Ordering::Release);
        let orphan = self.state.orphan.lock().ok().and_then(|mut o| o.take());
        if keep_alive && let Some(conn) = orphan {
            self.pool.put(self.key.clone(), conn);
        }
    }

    /// Wraps a response body as the HTTP library decodes it: `expected` is its
    /// `Content-Length` (`None` for a chunked body). With `keep_alive`, the connection goes
    /// back to the pool once the body has been read whole.
    pub fn body_reader<R>(&self, inner: R, expected: Option<u64>, keep_alive: bool) -> BodyReader<R, C> {
        BodyReader { inner: Some(inner), expected, seen: 0, exchange: self.clone(), keep_alive }
    }
}

/// A connection lent to one exchange: the HTTP library writes the request to it and reads the
/// response from it. No progress for longer than the I/O timeout fails the read or write with
/// [`TransportError::Timeout`] (inside an [`io::Error`]); when dropped after a whole response
/// that may be followed by another, it goes back to the pool.
pub struct Checkout<C> {
    conn: Option<C>,
    exchange: Exchange<C>,
    io_timeout: Option<Duration>,
    /// The timer of the current limit and when it fires, kept across reads and writes that
    /// make progress (a watch reads many times a second, and a timer made and dropped for each
    /// wait costs a registration with the runtime's timers, on async-io a wake-up of its
    /// reactor). Behind a mutex only so that the checkout is `Sync` (it is reached through
    /// `&mut`).
    sleep: Mutex<Option<(Instant, BoxFuture<'static, ()>)>>,
    /// When the current wait (the first poll that was not ready since the last progress)
    /// began; `None` once the connection has made progress since.
    waiting_since: Option<Instant>,
}

impl<C> std::fmt::Debug for Checkout<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkout").field("server", &self.exchange.key.origin()).finish_non_exhaustive()
    }
}

impl<C> Checkout<C> {
    /// Called when the connection is not ready: fails once the timeout has passed since this
    /// wait began (the first such call since the connection last made progress). The timer set
    /// for an earlier wait is kept; when it fires before this wait's limit, it is set again
    /// for that limit.
    fn poll_timeout<T>(&mut self, cx: &mut Context<'_>, doing: &str) -> Poll<io::Result<T>> {
        let Some(limit) = self.io_timeout else { return Poll::Pending };
        let timer = &self.exchange.pool.timer;
        let since = *self.waiting_since.get_or_insert_with(|| timer.now());
        let sleep = self.sleep.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            let due = since + limit;
            let (at, sleeping) = sleep.get_or_insert_with(|| (due, timer.sleep_until(due)));
            ready!(sleeping.as_mut().poll(cx));
            if due <= *at {
                break;
            }
            // Set for an earlier wait: wait for this one's limit.
            *sleep = None;
        }
        *sleep = None;
        let message = format!("no {doing} {} for {limit:?}", self.exchange.key.origin());
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, TransportError::Timeout(message))))
    }

    fn progressed<T>(&mut self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if r.is_ready() {
            self.waiting_since = None;
        }
        r
    }
}

fn closed<T>() -> Poll<io::Result<T>> {
    Poll::Ready(Err(io::Error::new(io::ErrorKind::NotConnected, "the connection is closed")))
}

impl<C: AsyncRead + Unpin> AsyncRead for Checkout<C> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(conn) = this.conn.as_mut() else { return closed() };
        match Pin::new(conn).poll_read(cx, buf) {
            Poll::Pending => this.poll_timeout(cx, "response from"),
            r => {
                if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
                    this.exchange.state.read_any.store(true, Ordering::Release);
                }
                this.progressed(r)
            }
        }
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for Checkout<C> {
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
        match self.get_mut().conn.as_mut() {
            Some(conn) => Pin::new(conn).poll_close(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl<C> Drop for Checkout<C> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        let state = &self.exchange.state;
        if state.reusable.load(Ordering::Acquire) {
            self.exchange.pool.put(self.exchange.key.clone(), conn);
        } else if Arc::strong_count(state) > 1
            && let Ok(mut orphan) = state.orphan.lock()
        {
            // Kept until the response is known: if it has no body, the connection can be
            // reused; otherwise it closes when the response goes.
            *orphan = Some(conn);
        }
    }
}

/// A response body as the HTTP library decodes it, checked for a short `Content-Length` body
/// (which it might end silently), its errors typed (a [`TransportError`] inside each
/// [`io::Error`]), and the connection released for reuse as soon as the last byte is read.
pub struct BodyReader<R, C> {
    inner: Option<R>,
    expected: Option<u64>,
    seen: u64,
    exchange: Exchange<C>,
    keep_alive: bool,
}

impl<R, C> std::fmt::Debug for BodyReader<R, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyReader")
            .field("server", &self.exchange.key.origin())
            .field("expected", &self.expected)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl<R, C> BodyReader<R, C> {
    /// The body has ended: was it whole? Releases the connection either way (to the pool if it
    /// may be reused).
    fn finish(&mut self) -> io::Result<()> {
        let result = match self.expected {
            Some(expected) if self.seen < expected => {
                let message = format!("{}: the body ended after {} of {expected} bytes", self.origin(), self.seen);
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, TransportError::Closed(message)))
            }
            _ => {
                if self.keep_alive {
                    self.exchange.state.reusable.store(true, Ordering::Release);
                }
                Ok(())
            }
        };
        // Last: the reader may hold the checkout, which looks at `reusable` when dropped.
        self.inner = None;
        result
    }

    fn origin(&self) -> String {
        self.exchange.key.origin()
    }

    /// A read error, typed.
    fn fail(&mut self, e: io::Error) -> io::Error {
        self.inner = None;
        if transport_error(&e).is_some() {
            return e;
        }
        let error = match e.kind() {
            io::ErrorKind::TimedOut => TransportError::Timeout(format!("{}: {e}", self.origin())),
            _ => TransportError::Closed(format!("{}: {e}", self.origin())),
        };
        io::Error::new(e.kind(), error)
    }

    fn count(&mut self, n: usize) {
        self.seen += n as u64;
        if self.expected == Some(self.seen) {
            // Whole: release the connection now rather than on the next read.
            let _ = self.finish();
        }
    }
}

impl<R: AsyncRead + Unpin, C> AsyncRead for BodyReader<R, C> {
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

impl<R: AsyncBufRead + Unpin, C> AsyncBufRead for BodyReader<R, C> {
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
