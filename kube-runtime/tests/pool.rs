//! The HTTP/1.1 keep-alive pool and I/O timeouts of `kube_runtime::pool`, over in-memory duplex
//! connections and a clock the tests move by hand.
#![cfg(feature = "pool")]

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::io::{AsyncBufRead, AsyncRead, AsyncWrite, Cursor};
use kube_runtime::pool::{Pool, PoolKey, Timer, transport_error};
use kube_runtime::transport::TransportError;

/// One direction of a duplex connection.
struct Pipe {
    buf: VecDeque<u8>,
    capacity: usize,
    closed: bool,
    reader: Option<Waker>,
}

/// One end of an in-memory duplex connection: what it writes, the other end reads.
struct End {
    id: u32,
    rx: Arc<Mutex<Pipe>>,
    tx: Arc<Mutex<Pipe>>,
}

/// A connection numbered `id` (the client's end) and the server's end; each direction holds at
/// most `capacity` bytes.
fn duplex(id: u32, capacity: usize) -> (End, End) {
    let pipe = || Arc::new(Mutex::new(Pipe { buf: VecDeque::new(), capacity, closed: false, reader: None }));
    let (up, down) = (pipe(), pipe());
    (End { id, rx: down.clone(), tx: up.clone() }, End { id, rx: up, tx: down })
}

fn conn(id: u32) -> (End, End) {
    duplex(id, 1 << 20)
}

impl End {
    fn send(&self, bytes: &[u8]) {
        let mut tx = self.tx.lock().unwrap();
        tx.buf.extend(bytes);
        if let Some(w) = tx.reader.take() {
            w.wake();
        }
    }
}

impl AsyncRead for End {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut rx = self.rx.lock().unwrap();
        if rx.buf.is_empty() {
            if rx.closed {
                return Poll::Ready(Ok(0));
            }
            rx.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(rx.buf.len());
        for (slot, byte) in buf.iter_mut().zip(rx.buf.drain(..n)) {
            *slot = byte;
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for End {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut tx = self.tx.lock().unwrap();
        if tx.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let n = buf.len().min(tx.capacity - tx.buf.len());
        if n == 0 {
            return Poll::Pending;
        }
        tx.buf.extend(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.lock().unwrap().closed = true;
        Poll::Ready(Ok(()))
    }
}

impl Drop for End {
    fn drop(&mut self) {
        for pipe in [&self.tx, &self.rx] {
            let mut pipe = pipe.lock().unwrap();
            pipe.closed = true;
            if let Some(w) = pipe.reader.take() {
                w.wake();
            }
        }
    }
}

/// A clock that moves only when told to, counting the timers asked of it.
#[derive(Clone)]
struct Clock(Arc<Mutex<Instant>>, Arc<std::sync::atomic::AtomicUsize>);

impl Clock {
    fn new() -> Clock {
        #[allow(clippy::disallowed_methods)]
        Clock(Arc::new(Mutex::new(Instant::now())), Arc::default())
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Timer for Clock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let clock = self.clone();
        Box::pin(futures_util::future::poll_fn(
            move |_| {
                if clock.now() >= deadline { Poll::Ready(()) } else { Poll::Pending }
            },
        ))
    }
}

const IDLE: Duration = Duration::from_secs(90);

fn pool(max_idle_per_host: usize) -> (Arc<Pool<End>>, Clock) {
    let clock = Clock::new();
    (Arc::new(Pool::new(max_idle_per_host, IDLE, Arc::new(clock.clone()))), clock)
}

fn key(scheme: &str, host: &str, port: u16) -> PoolKey {
    PoolKey::new(scheme, Some(host), Some(port)).unwrap()
}

fn server() -> PoolKey {
    key("https", "a", 443)
}

fn cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

fn read<R: AsyncRead + Unpin>(r: &mut R) -> Poll<io::Result<Vec<u8>>> {
    let mut buf = [0u8; 64];
    Pin::new(r).poll_read(&mut cx(), &mut buf).map_ok(|n| buf[..n].to_vec())
}

fn carried(e: &io::Error) -> TransportError {
    transport_error(e).unwrap_or_else(|| panic!("no transport error in {e:?}"))
}

#[test]
fn a_connection_put_back_is_taken_again_for_the_same_server_only() {
    let (pool, _) = pool(8);
    let (c, _s) = conn(1);
    pool.put(server(), c);
    assert!(pool.take(&key("http", "a", 443)).is_none());
    assert!(pool.take(&key("https", "a", 444)).is_none());
    assert!(pool.take(&key("https", "b", 443)).is_none());
    assert_eq!(pool.take(&server()).map(|c| c.id), Some(1));
    assert!(pool.take(&server()).is_none());
    assert_eq!(pool.idle_count(), 0);
}

#[test]
fn the_most_recently_returned_connection_is_taken_first() {
    let (pool, _) = pool(8);
    let (c1, _s1) = conn(1);
    let (c2, _s2) = conn(2);
    pool.put(server(), c1);
    pool.put(server(), c2);
    assert_eq!(pool.take(&server()).map(|c| c.id), Some(2));
    assert_eq!(pool.take(&server()).map(|c| c.id), Some(1));
}

#[test]
fn an_idle_connection_is_kept_for_the_idle_timeout_and_no_longer() {
    let (pool, clock) = pool(8);
    let (c1, _s1) = conn(1);
    pool.put(server(), c1);
    clock.advance(IDLE - Duration::from_secs(1));
    let c1 = pool.take(&server()).expect("still within the idle timeout");
    pool.put(server(), c1);
    clock.advance(IDLE);
    assert!(pool.take(&server()).is_none());
    assert_eq!(pool.idle_count(), 0);
}

#[test]
fn putting_a_connection_back_drops_the_expired_ones_of_every_server() {
    let (pool, clock) = pool(8);
    let (c1, _s1) = conn(1);
    let (c2, _s2) = conn(2);
    pool.put(key("https", "b", 443), c1);
    clock.advance(IDLE);
    pool.put(server(), c2);
    assert_eq!(pool.idle_count(), 1);
}

#[test]
fn a_connection_the_server_closed_while_idle_is_not_taken() {
    let (pool, _) = pool(8);
    let (c1, s1) = conn(1);
    let (c2, _s2) = conn(2);
    pool.put(server(), c2);
    pool.put(server(), c1);
    drop(s1);
    assert_eq!(pool.take(&server()).map(|c| c.id), Some(2));
}

#[test]
fn a_connection_with_unasked_for_bytes_waiting_is_not_taken() {
    let (pool, _) = pool(8);
    let (c1, s1) = conn(1);
    pool.put(server(), c1);
    s1.send(b"HTTP/1.1 408 Request Timeout\r\n\r\n");
    assert!(pool.take(&server()).is_none());
}

#[test]
fn at_most_max_idle_per_host_connections_are_kept_per_server() {
    let (pool, _) = pool(2);
    let ends: Vec<_> = (0..4).map(conn).collect();
    let mut servers = Vec::new();
    for (i, (c, s)) in ends.into_iter().enumerate() {
        pool.put(if i < 3 { server() } else { key("https", "b", 443) }, c);
        servers.push(s);
    }
    assert_eq!(pool.idle_count(), 3);
}

#[test]
fn max_idle_per_host_zero_keeps_no_connection() {
    let (pool, _) = pool(0);
    let (c, _s) = conn(1);
    pool.put(server(), c);
    assert_eq!(pool.idle_count(), 0);
    assert!(pool.take(&server()).is_none());
}

#[test]
fn a_read_with_no_progress_for_the_io_timeout_fails_with_a_typed_timeout() {
    let (pool, clock) = pool(8);
    let (c, _s) = conn(1);
    let (mut checkout, _) = pool.checkout(server(), c, Some(Duration::from_secs(5)));
    assert!(read(&mut checkout).is_pending());
    clock.advance(Duration::from_secs(4));
    assert!(read(&mut checkout).is_pending());
    clock.advance(Duration::from_secs(1));
    let Poll::Ready(Err(e)) = read(&mut checkout) else { panic!("the read did not time out") };
    assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    assert_eq!(carried(&e), TransportError::Timeout("no response from https://a:443 for 5s".into()));
}

#[test]
fn each_read_that_makes_progress_restarts_the_io_timeout() {
    let (pool, clock) = pool(8);
    let (c, s) = conn(1);
    let (mut checkout, _) = pool.checkout(server(), c, Some(Duration::from_secs(5)));
    assert!(read(&mut checkout).is_pending());
    clock.advance(Duration::from_secs(4));
    s.send(b"HTTP/1.1");
    assert_eq!(read(&mut checkout).map(Result::unwrap), Poll::Ready(b"HTTP/1.1".to_vec()));
    assert!(read(&mut checkout).is_pending());
    clock.advance(Duration::from_secs(4));
    assert!(read(&mut checkout).is_pending(), "the limit counts from the last progress");
    clock.advance(Duration::from_secs(1));
    assert!(read(&mut checkout).is_ready());
}

#[test]
fn reads_that_make_progress_keep_one_timer_until_it_fires() {
    let (pool, clock) = pool(8);
    let (c, s) = conn(1);
    let (mut checkout, _) = pool.checkout(server(), c, Some(Duration::from_secs(5)));
    // A watch: many reads, each ready after a wait, well within the limit.
    for i in 0..100u32 {
        assert!(read(&mut checkout).is_pending());
        clock.advance(Duration::from_millis(10));
        s.send(format!("chunk {i};").as_bytes());
        assert_eq!(read(&mut checkout).map(Result::unwrap), Poll::Ready(format!("chunk {i};").into_bytes()));
    }
    assert_eq!(clock.1.load(std::sync::atomic::Ordering::SeqCst), 1, "one timer for 100 waits");
    // Its limit passed (1 s in, it was set for 5 s): the wait under way gets a timer of its own
    // and times out 5 s after it began, not earlier.
    assert!(read(&mut checkout).is_pending());
    clock.advance(Duration::from_secs(4));
    assert!(read(&mut checkout).is_pending());
    assert_eq!(clock.1.load(std::sync::atomic::Ordering::SeqCst), 2);
    clock.advance(Duration::from_millis(999));
    assert!(read(&mut checkout).is_pending());
    clock.advance(Duration::from_millis(1));
    let Poll::Ready(Err(e)) = read(&mut checkout) else { panic!("the read did not time out") };
    assert_eq!(carried(&e), TransportError::Timeout("no response from https://a:443 for 5s".into()));
}

#[test]
fn without_an_io_timeout_a_read_waits_as_long_as_it_takes() {
    let (pool, clock) = pool(8);
    let (c, _s) = conn(1);
    let (mut checkout, _) = pool.checkout(server(), c, None);
    assert!(read(&mut checkout).is_pending());
    clock.advance(Duration::from_secs(86_400));
    assert!(read(&mut checkout).is_pending());
}

#[test]
fn a_write_the_server_does_not_take_fails_with_a_typed_timeout() {
    let (pool, clock) = pool(8);
    let (c, _s) = duplex(1, 4);
    let (mut checkout, _) = pool.checkout(server(), c, Some(Duration::from_secs(5)));
    let write = |checkout: &mut kube_runtime::pool::Checkout<End>| {
        Pin::new(checkout).poll_write(&mut cx(), b"GET / HTTP/1.1\r\n")
    };
    assert!(matches!(write(&mut checkout), Poll::Ready(Ok(4))));
    assert!(write(&mut checkout).is_pending());
    clock.advance(Duration::from_secs(5));
    let Poll::Ready(Err(e)) = write(&mut checkout) else { panic!("the write did not time out") };
    assert_eq!(carried(&e), TransportError::Timeout("no progress sending the request to https://a:443 for 5s".into()));
}

#[test]
fn read_any_turns_true_with_the_first_byte_of_a_response() {
    let (pool, _) = pool(8);
    let (c, s) = conn(1);
    let (mut checkout, exchange) = pool.checkout(server(), c, None);
    assert!(read(&mut checkout).is_pending());
    assert!(!exchange.read_any());
    s.send(b"H");
    assert!(read(&mut checkout).is_ready());
    assert!(exchange.read_any());
}

#[test]
fn a_checkout_dropped_before_its_response_is_whole_does_not_go_back() {
    let (pool, _) = pool(8);
    let (c, _s) = conn(1);
    let (checkout, exchange) = pool.checkout(server(), c, None);
    drop(checkout);
    drop(exchange);
    assert_eq!(pool.idle_count(), 0);
}

#[test]
fn a_whole_content_length_body_returns_the_connection_at_its_last_byte() {
    let (pool, _) = pool(8);
    let (c, _s) = conn(1);
    let (checkout, exchange) = pool.checkout(server(), c, None);
    let mut body = exchange.body_reader(Cursor::new(b"hello".to_vec()), Some(5), true);
    assert_eq!(read(&mut body).map(Result::unwrap), Poll::Ready(b"hello".to_vec()));
    // The HTTP library lets go of the connection once its decoder is done.
    drop(checkout);
    assert_eq!(pool.idle_count(), 1);
    assert_eq!(read(&mut body).map(Result::unwrap), Poll::Ready(Vec::new()));
}

#[test]
fn a_body_read_whole_through_its_checkout_returns_the_connection_at_once() {
    let (pool, _) = pool(8);
    let (c, s) = conn(1);
    let (checkout, exchange) = pool.checkout(server(), c, None);
    // As an HTTP library's body decoder does, the body owns the checkout.
    let mut body = exchange.body_reader(futures_util::io::BufReader::new(checkout), Some(5), true);
    s.send(b"hello");
    assert_eq!(read(&mut body).map(Result::unwrap), Poll::Ready(b"hello".to_vec()));
    assert_eq!(pool.idle_count(), 1);
    assert_eq!(pool.take(&server()).map(|c| c.id), Some(1));
}

#[test]
fn a_body_cut_short_through_its_checkout_does_not_return_the_connection() {
    let (pool, _) = pool(8);
    let (c, s) = conn(1);
    let (checkout, exchange) = pool.checkout(server(), c, None);
    let mut body = exchange.body_reader(futures_util::io::BufReader::new(checkout), Some(5), true);
    s.send(b"hel");
    drop(s);
    assert!(matches!(read(&mut body), Poll::Ready(Ok(_))));
    assert!(matches!(read(&mut body), Poll::Ready(Err(_))));
    drop(body);
    drop(exchange);
    assert_eq!(pool.idle_count(), 0);
}

#[test]
fn a_chunked_body_returns_the_connection_when_it_ends() {
    let (pool, _) = pool(8);
    let (c, _s) = conn(1);
    let (checkout, exchange) = pool.checkout(server(), c, None);
    let mut body = exchange.body_reader(Cursor::new(b"{}".to_vec()), None, true);
    let Poll::Ready(Ok(chunk)) = Pin::new(&mut body).poll_fill_buf(&mut cx()) else { panic!("no chunk") };
    assert_eq!(chunk, b"{}");
    Pin::new(&mut body).consume(2);
    let Poll::Ready(Ok(end)) = Pin::new(&mut body).poll_fill_buf(&mut cx()) else { panic!("no end") };
    assert!(end.is_empty());
    drop(checkout);
    assert_eq!(pool.idle_count(), 1);
}

#[test]
fn a_short_content_length_body_fails_as_closed_and_its_connection_is_not_reused() {
    let (pool, _) = pool(8);
    let (c, _s) = conn(1);
    let (checkout, exchange) = pool.checkout(server(), c, None);
    let mut body = exchange.body_reader(Cursor::new(b"abc".to_vec()), Some(10), true);
    assert_eq!(read(&mut body).map(Result::unwrap), Poll::Ready(b"abc".to_vec()));
    let Poll::Ready(Err(e)) = read(&mut body) else { panic!("a short body was accepted") };
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(carried(&e), TransportError::Closed("https://a:443: the body ended after 3 of 10 bytes".into()));
    drop(checkout);
    assert_eq!(pool.idle_count(), 0);
}

#[test]
fn a_body_of_a_connection_either_side_asked_to_close_is_not_reused() {
    let (pool, _) = pool(8);
    let (c, _s) = conn(1);
    let (checkout, exchange) = pool.checkout(server(), c, None);
    let mut body = exchange.body_reader(Cursor::new(b"hello".to_vec()), Some(5), false);
    assert!(matches!(read(&mut body), Poll::Ready(Ok(_))));
    drop(checkout);
    assert_eq!(pool.idle_count(), 0);
}

/// A body whose reads fail with `kind`.
struct Failing(io::ErrorKind);

impl AsyncRead for Failing {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut [u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::Error::new(self.0, "reset by peer")))
    }
}

#[test]
fn a_failed_body_read_is_typed_and_names_the_server() {
    let (pool, _) = pool(8);
    for (kind, expected) in [
        (io::ErrorKind::ConnectionReset, TransportError::Closed("https://a:443: reset by peer".into())),
        (io::ErrorKind::TimedOut, TransportError::Timeout("https://a:443: reset by peer".into())),
    ] {
        let (c, _s) = conn(1);
        let (_checkout, exchange) = pool.checkout(server(), c, None);
        let mut body = exchange.body_reader(Failing(kind), Some(5), true);
        let Poll::Ready(Err(e)) = read(&mut body) else { panic!("the error was lost") };
        assert_eq!(carried(&e), expected);
        assert_eq!(read(&mut body).map(Result::unwrap), Poll::Ready(Vec::new()), "the body ends after an error");
    }
}

#[test]
fn a_typed_error_from_below_the_body_is_passed_on_unchanged() {
    let (pool, clock) = pool(8);
    let (c, _s) = conn(1);
    let (mut checkout, exchange) = pool.checkout(server(), c, Some(Duration::from_secs(1)));
    assert!(read(&mut checkout).is_pending());
    clock.advance(Duration::from_secs(1));
    let mut body = exchange.body_reader(futures_util::io::BufReader::new(checkout), None, true);
    let Poll::Ready(Err(e)) = read(&mut body) else { panic!("no timeout") };
    assert_eq!(carried(&e), TransportError::Timeout("no response from https://a:443 for 1s".into()));
}

#[test]
fn a_response_without_body_returns_a_connection_the_library_already_let_go_of() {
    let (pool, _) = pool(8);
    let (c, _s) = conn(1);
    let (checkout, exchange) = pool.checkout(server(), c, None);
    drop(checkout);
    assert_eq!(pool.idle_count(), 0);
    exchange.end_without_body(true);
    assert_eq!(pool.idle_count(), 1);
}

#[test]
fn a_response_without_body_returns_the_connection_when_the_library_lets_go_of_it() {
    let (pool, _) = pool(8);
    let (c, _s) = conn(1);
    let (checkout, exchange) = pool.checkout(server(), c, None);
    exchange.end_without_body(true);
    assert_eq!(pool.idle_count(), 0);
    drop(checkout);
    assert_eq!(pool.idle_count(), 1);
}

#[test]
fn a_response_without_body_on_a_closing_connection_does_not_return_it() {
    let (pool, _) = pool(8);
    for drop_first in [true, false] {
        let (c, _s) = conn(1);
        let (checkout, exchange) = pool.checkout(server(), c, None);
        if drop_first {
            drop(checkout);
            exchange.end_without_body(false);
        } else {
            exchange.end_without_body(false);
            drop(checkout);
        }
        assert_eq!(pool.idle_count(), 0);
    }
}

#[test]
fn pool_keys_default_the_port_and_refuse_other_schemes() {
    assert_eq!(PoolKey::new("https", Some("a"), None).unwrap().port, 443);
    assert_eq!(PoolKey::new("http", Some("a"), None).unwrap().port, 80);
    let v6 = PoolKey::new("https", Some("[::1]"), Some(6443)).unwrap();
    assert_eq!((v6.bare_host(), v6.origin().as_str()), ("::1", "https://[::1]:6443"));
    assert!(
        matches!(PoolKey::new("ftp", Some("a"), None), Err(TransportError::Unsupported(m)) if m.contains("\"ftp\""))
    );
    assert!(matches!(PoolKey::new("https", Some(""), None), Err(TransportError::Other(_))));
    assert!(matches!(PoolKey::new("https", None, None), Err(TransportError::Other(_))));
}
