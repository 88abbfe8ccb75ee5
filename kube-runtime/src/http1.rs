//! HTTP/1.1 exchanges over any futures-io connection, with the core's codec
//! ([`kube_proto::http1`]), for transports that speak HTTP/1.1 themselves.
//!
//! - [`send`] writes a request and reads the answer's head; the body is a [`Body`], which reads
//!   the connection and undoes the framing the head names (`Content-Length`, chunked or to the
//!   close) in the buffer it read into, without copying, and ends where the body does. With
//!   the pool's [`Checkout`](crate::pool::Checkout) and
//!   [`BodyReader`](crate::pool::BodyReader) around them, the connection goes back to the pool
//!   at the body's end.
//! - [`upgrade`] is the protocol upgrade of exec, attach and port-forward: on `101`, the
//!   connection itself, the bytes read past the head served first ([`Prefixed`]); otherwise the
//!   refusal with its body, at most [`MAX_REFUSED_BODY`] bytes. The stream has no timeout.
//!
//! The transport makes the connection (TCP, proxy tunnel, TLS) and bounds the exchange by its
//! timeouts.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::io::{AsyncBufRead, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use http::{Method, StatusCode};
use kube_proto::http1::{BodyLength, ChunkedDecoder, Http1Error, ResponseHead, Status};

use crate::transport::{MAX_REFUSED_BODY, TransportError, Upgraded, UpgradedStream};

/// How much is read from the connection at a time while the head and a refusal's body are
/// read.
const READ_SIZE: usize = 8 * 1024;

/// Sends `request` on `conn` and reads the answer: the connection, upgraded, on `101`; the
/// refusal otherwise. `origin` (scheme, host and port) names the server in errors.
///
/// Interim answers (`100 Continue` and other 1xx but `101`) are skipped. A connection that
/// closes before a whole head is [`TransportError::Closed`], a head that is not HTTP/1.x or
/// is malformed [`TransportError::Other`].
pub async fn upgrade<C>(mut conn: C, request: http::Request<Vec<u8>>, origin: &str) -> Result<Upgraded, TransportError>
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let invalid = |e: Http1Error| TransportError::Other(format!("{origin}: {e}"));
    let head_request = request.method() == Method::HEAD;
    let bytes = kube_proto::http1::encode_request(&request).map_err(invalid)?;
    drop(request);
    conn.write_all(&bytes).await.map_err(|e| io_error(origin, &e, "sending the upgrade request"))?;
    conn.flush().await.map_err(|e| io_error(origin, &e, "sending the upgrade request"))?;

    let mut received = ReadBuf::new();
    let head = read_head(&mut conn, &mut received, origin, "reading the answer to the upgrade request").await?;
    if head.status == StatusCode::SWITCHING_PROTOCOLS {
        let stream = UpgradedStream::new(Prefixed::new(received.unread().to_vec(), conn));
        return Ok(Upgraded::Switched { headers: head.headers, stream });
    }
    let length = head.body_length(head_request).map_err(invalid)?;
    let body = read_refused_body(&mut conn, received, length, origin).await?;
    let ResponseHead { status, headers, .. } = head;
    Ok(Upgraded::Refused { status, headers, body })
}

/// Sends a request (as [`kube_proto::http1::encode_request`] writes it) on `conn` and reads
/// the head of the answer: the head, and the body as a reader of `conn` that undoes the
/// framing the head names (`Content-Length`, chunked or to the close) and ends where the body
/// does. `head_request`: the request was `HEAD` (its answer has no body). `origin` (scheme,
/// host and port) names the server in errors.
///
/// Interim answers (1xx but `101`) are skipped; a `101` is answered as it is, with an empty
/// body. A connection that closes before a whole head is [`TransportError::Closed`]; a head
/// that is not HTTP/1.x, is malformed or frames its body ambiguously is
/// [`TransportError::Other`]. The transport bounds the exchange by its timeouts (the pool's
/// [`Checkout`](crate::pool::Checkout)).
pub async fn send<C>(
    mut conn: C,
    request: &[u8],
    head_request: bool,
    origin: &str,
) -> Result<(ResponseHead, Body<C>), TransportError>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    conn.write_all(request).await.map_err(|e| io_error(origin, &e, "sending the request"))?;
    conn.flush().await.map_err(|e| io_error(origin, &e, "sending the request"))?;
    let mut received = ReadBuf::new();
    let head = read_head(&mut conn, &mut received, origin, "reading the response").await?;
    let length = match head.body_length(head_request) {
        _ if head.status == StatusCode::SWITCHING_PROTOCOLS => BodyLength::Empty,
        Ok(length) => length,
        Err(e) => return Err(TransportError::Other(format!("{origin}: {e}"))),
    };
    Ok((head, Body::new(conn, received, length)))
}

/// Reads the head of the final answer (interim 1xx but `101` skipped) into `received`, which
/// then holds what was read past it.
async fn read_head<C: AsyncRead + Unpin>(
    conn: &mut C,
    received: &mut ReadBuf,
    origin: &str,
    doing: &str,
) -> Result<ResponseHead, TransportError> {
    loop {
        match kube_proto::http1::parse_response_head(received.unread())
            .map_err(|e| TransportError::Other(format!("{origin}: {e}")))?
        {
            Status::Complete(head) => {
                received.pos += head.length;
                if !head.status.is_informational() || head.status == StatusCode::SWITCHING_PROTOCOLS {
                    return Ok(head);
                }
            }
            Status::Partial => {
                let n = poll_fn(|cx| received.poll_fill(cx, conn)).await.map_err(|e| io_error(origin, &e, doing))?;
                if n == 0 {
                    return Err(TransportError::Closed(format!(
                        "{origin}: the connection closed before a whole response head arrived"
                    )));
                }
            }
        }
    }
}

/// Bytes read from a connection: `data[pos..end]` are read and not used yet. `data` is
/// initialized throughout (zeroed once), so that reads go straight into it.
struct ReadBuf {
    data: Vec<u8>,
    pos: usize,
    end: usize,
}

impl ReadBuf {
    fn new() -> ReadBuf {
        ReadBuf { data: vec![0; READ_SIZE], pos: 0, end: 0 }
    }

    fn unread(&self) -> &[u8] {
        &self.data[self.pos..self.end]
    }

    /// Reads more after what is unread (moved to the front, or the buffer grown, when there is
    /// no room after it); how many bytes (0 at the end of the stream).
    fn poll_fill<C: AsyncRead + Unpin>(&mut self, cx: &mut Context<'_>, conn: &mut C) -> Poll<io::Result<usize>> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        } else if self.end == self.data.len() {
            if self.pos > 0 {
                self.data.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
            } else {
                // A head longer than the buffer: the parser bounds it.
                self.data.resize(self.data.len() * 2, 0);
            }
        }
        let n = ready!(Pin::new(conn).poll_read(cx, &mut self.data[self.end..]))?;
        self.end += n;
        Poll::Ready(Ok(n))
    }
}

/// How a response body is delimited, and how much of it is left.
#[derive(Debug)]
enum Framing {
    /// This many bytes are left.
    Length(u64),
    Chunked(ChunkedDecoder),
    UntilClose,
}

/// The body of a response read by [`send`]: the connection, read through and undone of the
/// body's framing, served from one buffer without copying. It ends (reads 0 bytes) where the
/// body does; a connection that closes before is an [`io::ErrorKind::UnexpectedEof`] error,
/// malformed chunked framing an [`io::ErrorKind::InvalidData`] one (wrap it in the pool's
/// [`BodyReader`](crate::pool::BodyReader) for errors that name the server).
pub struct Body<C> {
    conn: C,
    buf: ReadBuf,
    framing: Framing,
    /// The body's bytes in `buf` that are ready to be read.
    data: std::ops::Range<usize>,
    /// The length of a body delimited by `Content-Length`.
    content_length: Option<u64>,
    /// The body runs until the connection closes.
    until_close: bool,
}

impl<C> std::fmt::Debug for Body<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Body")
            .field("framing", &self.framing)
            .field("buffered", &self.data.len())
            .finish_non_exhaustive()
    }
}

impl<C> Body<C> {
    /// The body delimited as `length` says, `buf` holding what was read past the head.
    fn new(conn: C, buf: ReadBuf, length: BodyLength) -> Body<C> {
        let framing = match length {
            BodyLength::Empty => Framing::Length(0),
            BodyLength::Length(n) => Framing::Length(n),
            BodyLength::Chunked => Framing::Chunked(ChunkedDecoder::new()),
            BodyLength::UntilClose => Framing::UntilClose,
        };
        let content_length = match length {
            BodyLength::Length(n) => Some(n),
            _ => None,
        };
        let until_close = length == BodyLength::UntilClose;
        Body { conn, buf, framing, data: 0..0, content_length, until_close }
    }

    /// The body's length when a `Content-Length` delimits it.
    pub fn content_length(&self) -> Option<u64> {
        self.content_length
    }

    /// Whether the body runs until the connection closes (then the connection cannot carry
    /// another request).
    pub fn ends_with_close(&self) -> bool {
        self.until_close
    }

    /// Whether the body has been read whole.
    pub fn is_done(&self) -> bool {
        self.data.is_empty()
            && match &self.framing {
                Framing::Length(left) => *left == 0,
                Framing::Chunked(decoder) => decoder.is_done(),
                Framing::UntilClose => false,
            }
    }

    /// The next of the body's bytes in the buffer, if any, as `data`.
    fn take_buffered(&mut self) -> io::Result<()> {
        let unread = &self.buf.data[self.buf.pos..self.buf.end];
        let (skip, len) = match &mut self.framing {
            Framing::Length(left) => {
                let len = usize::try_from(*left).unwrap_or(usize::MAX).min(unread.len());
                *left -= len as u64;
                (0, len)
            }
            Framing::UntilClose => (0, unread.len()),
            Framing::Chunked(decoder) => {
                let mut input = unread;
                let data = decoder.next_data(&mut input).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let used = unread.len() - input.len();
                match data {
                    Some(data) => (used - data.len(), data.len()),
                    None => (used, 0),
                }
            }
        };
        let start = self.buf.pos + skip;
        self.data = start..start + len;
        self.buf.pos = start + len;
        Ok(())
    }
}

impl<C: AsyncRead + Unpin> AsyncBufRead for Body<C> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        while this.data.is_empty() && !this.is_done() {
            this.take_buffered()?;
            if !this.data.is_empty() || this.is_done() {
                break;
            }
            // Everything read has been used: read more.
            if ready!(this.buf.poll_fill(cx, &mut this.conn))? == 0 {
                if matches!(this.framing, Framing::UntilClose) {
                    this.framing = Framing::Length(0);
                    break;
                }
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed in the middle of the response body",
                )));
            }
        }
        Poll::Ready(Ok(&this.buf.data[this.data.clone()]))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.data.start = (this.data.start + amt).min(this.data.end);
    }
}

impl<C: AsyncRead + Unpin> AsyncRead for Body<C> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let available = ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Poll::Ready(Ok(n))
    }
}

/// The body of a refusal, at most [`MAX_REFUSED_BODY`] bytes of it: `received` holds what was
/// read past the head.
async fn read_refused_body<C: AsyncRead + Unpin>(
    conn: &mut C,
    received: ReadBuf,
    length: BodyLength,
    origin: &str,
) -> Result<Vec<u8>, TransportError> {
    let body = Body::new(conn, received, length);
    let mut out = Vec::new();
    body.take(MAX_REFUSED_BODY as u64).read_to_end(&mut out).await.map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => {
            TransportError::Closed(format!("{origin}: the connection closed in the middle of the answer's body"))
        }
        io::ErrorKind::InvalidData => TransportError::Other(format!("{origin}: {e}")),
        _ => io_error(origin, &e, "reading the answer to the upgrade request"),
    })?;
    Ok(out)
}

/// An I/O error of the exchange as a [`TransportError`]: the one it carries, if any (as the
/// pool's timeouts do); a rejected TLS certificate (an alert on the first read after a TLS 1.3
/// handshake) as [`TransportError::Tls`]; a timeout; else a closed connection.
fn io_error(origin: &str, e: &io::Error, doing: &str) -> TransportError {
    if let Some(carried) = crate::pool::transport_error(e) {
        return carried;
    }
    #[cfg(feature = "rustls")]
    if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return TransportError::Tls { url: origin.to_owned(), message: crate::tls::describe_error(tls) };
    }
    match e.kind() {
        io::ErrorKind::TimedOut => TransportError::Timeout(format!("{origin}: {doing}: {e}")),
        _ => TransportError::Closed(format!("{origin}: {doing}: {e}")),
    }
}

/// A connection whose first bytes were read already: they are served first, then the
/// connection's. Writes go straight to the connection.
pub struct Prefixed<C> {
    prefix: Vec<u8>,
    /// How much of `prefix` has been served.
    served: usize,
    inner: C,
}

impl<C> std::fmt::Debug for Prefixed<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefixed").field("unread_prefix", &(self.prefix.len() - self.served)).finish_non_exhaustive()
    }
}

impl<C> Prefixed<C> {
    /// `inner`, whose first bytes are `prefix`.
    pub fn new(prefix: Vec<u8>, inner: C) -> Self {
        Prefixed { prefix, served: 0, inner }
    }

    /// The connection, and the bytes of the prefix not read yet.
    pub fn into_parts(mut self) -> (C, Vec<u8>) {
        self.prefix.drain(..self.served);
        (self.inner, self.prefix)
    }
}

impl<C: AsyncRead + Unpin> AsyncRead for Prefixed<C> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.served < this.prefix.len() {
            let rest = &this.prefix[this.served..];
            let n = rest.len().min(buf.len());
            buf[..n].copy_from_slice(&rest[..n]);
            this.served += n;
            if this.served == this.prefix.len() {
                // Served whole: free it.
                this.prefix = Vec::new();
                this.served = 0;
            }
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for Prefixed<C> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use futures_util::io::Cursor;

    use super::*;

    /// A connection that answers `script` (in reads of at most `piece` bytes) and keeps what
    /// is written.
    struct Scripted {
        input: Cursor<Vec<u8>>,
        piece: usize,
        written: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl AsyncRead for Scripted {
        fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            let n = buf.len().min(this.piece);
            Pin::new(&mut this.input).poll_read(cx, &mut buf[..n])
        }
    }

    impl AsyncWrite for Scripted {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.written.lock().unwrap().extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn request() -> http::Request<Vec<u8>> {
        http::Request::get("https://127.0.0.1:6443/api/v1/namespaces/ns/pods/p/exec?command=ls")
            .header("connection", "Upgrade")
            .header("upgrade", "websocket")
            .body(Vec::new())
            .unwrap()
    }

    fn run(script: &[u8], piece: usize) -> Result<Upgraded, TransportError> {
        let conn = Scripted { input: Cursor::new(script.to_vec()), piece, written: Default::default() };
        futures_executor::block_on(upgrade(conn, request(), "https://127.0.0.1:6443"))
    }

    fn read_all(mut stream: UpgradedStream) -> Vec<u8> {
        let mut out = Vec::new();
        futures_executor::block_on(stream.read_to_end(&mut out)).unwrap();
        out
    }

    #[test]
    fn bytes_after_the_101_head_come_first_in_any_chunking() {
        let script =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\nhello, world";
        for piece in [1, 2, 7, 64, 8192] {
            let Upgraded::Switched { headers, stream } = run(script, piece).unwrap() else { panic!("refused") };
            assert_eq!(headers["upgrade"], "websocket");
            assert_eq!(read_all(stream), b"hello, world", "{piece}");
        }
    }

    #[test]
    fn refusals_come_back_with_their_bodies() {
        let status = br#"{"kind":"Status","code":403,"reason":"Forbidden"}"#;
        let mut by_length = format!("HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\n\r\n", status.len()).into_bytes();
        by_length.extend_from_slice(status);
        by_length.extend_from_slice(b"ignored");
        let mut chunked = b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for part in status.chunks(10) {
            chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            chunked.extend_from_slice(part);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let mut to_close = b"HTTP/1.0 403 Forbidden\r\n\r\n".to_vec();
        to_close.extend_from_slice(status);
        for script in [by_length, chunked, to_close] {
            for piece in [1, 5, 8192] {
                let up = run(&script, piece).unwrap();
                assert_eq!((up.status(), up.body()), (StatusCode::FORBIDDEN, &status[..]), "{piece}");
            }
        }
    }

    #[test]
    fn a_refusal_body_is_bounded() {
        let mut script = format!("HTTP/1.1 500 Oops\r\nContent-Length: {}\r\n\r\n", 10 * MAX_REFUSED_BODY).into_bytes();
        script.resize(script.len() + 2 * MAX_REFUSED_BODY, b'x');
        let up = run(&script, 8192).unwrap();
        assert_eq!(up.body().len(), MAX_REFUSED_BODY);
        let mut script = b"HTTP/1.1 500 Oops\r\n\r\n".to_vec();
        script.resize(script.len() + 2 * MAX_REFUSED_BODY, b'x');
        assert_eq!(run(&script, 8192).unwrap().body().len(), MAX_REFUSED_BODY);
    }

    #[test]
    fn broken_answers_are_typed_errors() {
        let closed = run(b"HTTP/1.1 101 Switching", 4).unwrap_err();
        assert!(matches!(&closed, TransportError::Closed(m) if m.contains("127.0.0.1:6443")), "{closed:?}");
        assert!(matches!(run(b"", 4).unwrap_err(), TransportError::Closed(_)));
        assert!(matches!(run(b"SSH-2.0-x\r\n", 4).unwrap_err(), TransportError::Other(_)));
        let cut = run(b"HTTP/1.1 404 Not Found\r\nContent-Length: 100\r\n\r\n{\"kind\"", 4).unwrap_err();
        assert!(matches!(cut, TransportError::Closed(_)), "{cut:?}");
        let bad_chunk = run(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 4).unwrap_err();
        assert!(matches!(bad_chunk, TransportError::Other(_)), "{bad_chunk:?}");
    }

    #[test]
    fn the_request_is_written_whole() {
        let conn = Scripted {
            input: Cursor::new(b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec()),
            piece: 64,
            written: Default::default(),
        };
        let written = conn.written.clone();
        futures_executor::block_on(upgrade(conn, request(), "https://127.0.0.1:6443")).unwrap();
        let written = String::from_utf8(written.lock().unwrap().clone()).unwrap();
        assert_eq!(
            written,
            "GET /api/v1/namespaces/ns/pods/p/exec?command=ls HTTP/1.1\r\nhost: 127.0.0.1:6443\r\nconnection: Upgrade\r\nupgrade: websocket\r\n\r\n"
        );
    }

    #[test]
    fn prefixed_serves_the_prefix_then_the_connection() {
        let mut p = Prefixed::new(b"abc".to_vec(), Cursor::new(b"def".to_vec()));
        let mut one = [0u8; 2];
        assert_eq!(futures_executor::block_on(p.read(&mut one)).unwrap(), 2);
        assert_eq!(&one, b"ab");
        let (inner, rest) = p.into_parts();
        assert_eq!(rest, b"c");
        assert_eq!(inner.into_inner(), b"def");
        let mut p = Prefixed::new(b"abc".to_vec(), Cursor::new(b"def".to_vec()));
        let mut all = Vec::new();
        futures_executor::block_on(p.read_to_end(&mut all)).unwrap();
        assert_eq!(all, b"abcdef");
    }

    /// `send`'s answer to a GET from `script` in reads of `piece` bytes: the status, the body
    /// read with `fill_buf`/`consume` in steps of at most `step` bytes, and what is left unread
    /// on the connection.
    fn exchange(script: &[u8], piece: usize, step: usize) -> Result<(u16, Vec<u8>, Body<Scripted>), TransportError> {
        let conn = Scripted { input: Cursor::new(script.to_vec()), piece, written: Default::default() };
        futures_executor::block_on(async {
            let (head, mut body) = send(conn, b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", false, "https://x:6443").await?;
            let mut out = Vec::new();
            loop {
                let available = futures_util::io::AsyncBufReadExt::fill_buf(&mut body)
                    .await
                    .map_err(|e| TransportError::Closed(format!("{:?}: {e}", e.kind())))?;
                if available.is_empty() {
                    break;
                }
                let n = available.len().min(step);
                out.extend_from_slice(&available[..n]);
                Pin::new(&mut body).consume(n);
            }
            Ok((head.status.as_u16(), out, body))
        })
    }

    fn chunked(head: &str, data: &[u8], sizes: usize) -> Vec<u8> {
        let mut out = format!("{head}Transfer-Encoding: chunked\r\n\r\n").into_bytes();
        for part in data.chunks(sizes) {
            out.extend_from_slice(format!("{:x};ext=1\r\n", part.len()).as_bytes());
            out.extend_from_slice(part);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\ntrailer: 1\r\n\r\n");
        out
    }

    #[test]
    fn bodies_are_undone_of_their_framing_in_any_chunking() {
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        let mut by_length =
            format!("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", data.len())
                .into_bytes();
        by_length.extend_from_slice(&data);
        let mut to_close = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        to_close.extend_from_slice(&data);
        let scripts = [
            by_length,
            chunked("HTTP/1.1 200 OK\r\n", &data, 3000),
            chunked("HTTP/1.1 200 OK\r\n", &data, 1),
            to_close,
        ];
        for (i, script) in scripts.iter().enumerate() {
            for piece in [1, 7, 4096, 1 << 20] {
                for step in [1, 1000, usize::MAX] {
                    let (status, body, rest) = exchange(script, piece, step).unwrap();
                    assert_eq!((status, body.len()), (200, data.len()), "script {i}, piece {piece}, step {step}");
                    assert!(body == data, "script {i}, piece {piece}, step {step}");
                    assert!(rest.is_done());
                    assert_eq!(rest.ends_with_close(), i == 3);
                    assert_eq!(rest.content_length(), (i == 0).then_some(data.len() as u64));
                }
            }
        }
    }

    #[test]
    fn a_body_ends_where_its_framing_says_and_what_follows_stays_unread() {
        let (_, body, rest) = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1", 64, 64).unwrap();
        assert_eq!((body.as_slice(), rest.buf.unread()), (&b"hello"[..], &b"HTTP/1.1"[..]));
        let mut script = chunked("HTTP/1.1 200 OK\r\n", b"hello", 2);
        script.extend_from_slice(b"next");
        let (_, body, rest) = exchange(&script, 64, 64).unwrap();
        assert_eq!((body.as_slice(), rest.buf.unread()), (&b"hello"[..], &b"next"[..]));
        for empty in ["HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"] {
            let (_, body, rest) = exchange(empty.as_bytes(), 64, 64).unwrap();
            assert!(body.is_empty() && rest.is_done(), "{empty}");
        }
    }

    #[test]
    fn heads_longer_than_the_buffer_are_read() {
        let mut script = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..200 {
            script.extend_from_slice(format!("x-header-{i}: {}\r\n", "v".repeat(100)).as_bytes());
        }
        script.extend_from_slice(b"Content-Length: 2\r\n\r\nok");
        assert!(script.len() > 2 * READ_SIZE);
        for piece in [1, 100, 1 << 20] {
            assert_eq!(exchange(&script, piece, 64).unwrap().1, b"ok");
        }
    }

    #[test]
    fn cut_and_malformed_bodies_are_errors() {
        let cut = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello", 3, 64).unwrap_err();
        assert!(matches!(&cut, TransportError::Closed(m) if m.starts_with("UnexpectedEof")), "{cut:?}");
        let cut = exchange(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", 3, 64).unwrap_err();
        assert!(matches!(&cut, TransportError::Closed(m) if m.starts_with("UnexpectedEof")), "{cut:?}");
        let bad = exchange(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 3, 64).unwrap_err();
        assert!(matches!(&bad, TransportError::Closed(m) if m.starts_with("InvalidData")), "{bad:?}");
        let ambiguous =
            exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nok", 64, 64).unwrap_err();
        assert!(matches!(&ambiguous, TransportError::Other(m) if m.contains("x:6443")), "{ambiguous:?}");
        let none = exchange(b"HTTP/1.1 200 O", 64, 64).unwrap_err();
        assert!(matches!(&none, TransportError::Closed(m) if m.contains("x:6443")), "{none:?}");
    }

    #[test]
    fn the_answer_to_head_has_no_body() {
        let conn = Scripted {
            input: Cursor::new(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec()),
            piece: 64,
            written: Default::default(),
        };
        let (_, body) = futures_executor::block_on(send(conn, b"HEAD / HTTP/1.1\r\n\r\n", true, "x")).unwrap();
        assert!(body.is_done() && body.content_length().is_none());
    }

    /// The core's seeded generator, in the sizes the differential test below asks for.
    struct Rng(kube_proto::rng::SplitMix64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0.next_u64()
        }

        fn below(&mut self, n: usize) -> usize {
            self.0.below(n as u64) as usize
        }
    }

    /// An answer: a status, framing headers that may lie, a body framed by them or not, and
    /// now and then a byte changed, added or dropped, or the end cut off.
    fn random_answer(rng: &mut Rng) -> Vec<u8> {
        let data: Vec<u8> = (0..rng.below(3000)).map(|_| rng.next() as u8).collect();
        let status = [200, 200, 404, 204, 304, 101, 500][rng.below(7)];
        let mut out = Vec::new();
        if rng.below(5) == 0 {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        out.extend_from_slice(format!("HTTP/1.1 {status} X\r\n").as_bytes());
        match rng.below(4) {
            0 => {
                let length = [data.len(), data.len().saturating_sub(7), data.len() + 7][rng.below(3)];
                out.extend_from_slice(format!("Content-Length: {length}\r\n\r\n").as_bytes());
                out.extend_from_slice(&data);
            }
            1 | 2 => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut rest = &data[..];
                while !rest.is_empty() {
                    let (part, after) = rest.split_at(1 + rng.below(rest.len().min(900)));
                    let extension = if rng.below(4) == 0 { ";a=b" } else { "" };
                    out.extend_from_slice(format!("{:x}{extension}\r\n", part.len()).as_bytes());
                    out.extend_from_slice(part);
                    out.extend_from_slice(b"\r\n");
                    rest = after;
                }
                out.extend_from_slice(if rng.below(3) == 0 { &b"0\r\nx-trailer: 1\r\n\r\n"[..] } else { b"0\r\n\r\n" });
            }
            _ => {
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(&data);
            }
        }
        for _ in 0..rng.below(3) {
            if out.is_empty() {
                break;
            }
            let at = rng.below(out.len());
            match rng.below(4) {
                0 => out[at] = rng.next() as u8,
                1 => out.insert(at, [b'\r', b'\n', b'0', b';', b'x'][rng.below(5)]),
                2 => drop(out.remove(at)),
                _ => out.truncate(at),
            }
        }
        out
    }

    /// What the core's codec makes of the whole answer at once: the body, or `None` for an
    /// answer that is cut, malformed or ambiguous.
    fn reference(mut answer: &[u8]) -> Option<Vec<u8>> {
        let head = loop {
            match kube_proto::http1::parse_response_head(answer).ok()? {
                Status::Partial => return None,
                Status::Complete(head) => {
                    answer = &answer[head.length..];
                    if !head.status.is_informational() || head.status == StatusCode::SWITCHING_PROTOCOLS {
                        break head;
                    }
                }
            }
        };
        if head.status == StatusCode::SWITCHING_PROTOCOLS {
            return Some(Vec::new());
        }
        match head.body_length(false).ok()? {
            BodyLength::Empty => Some(Vec::new()),
            BodyLength::Length(n) => answer.get(..usize::try_from(n).ok()?).map(<[u8]>::to_vec),
            BodyLength::UntilClose => Some(answer.to_vec()),
            BodyLength::Chunked => {
                let mut data = Vec::new();
                ChunkedDecoder::new().decode(&mut answer, &mut data).ok()?.then_some(data)
            }
        }
    }

    /// Differential fuzzing of `send` and `Body` against the core's codec given the whole
    /// answer at once: random answers, read in random pieces and consumed in random steps, give
    /// the same body, or fail where the core fails. `HTTP1_FUZZ_ITERATIONS` for longer runs.
    #[test]
    fn bodies_read_in_pieces_match_the_core_reading_them_whole() {
        let iterations = std::env::var("HTTP1_FUZZ_ITERATIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(3000u64);
        let (mut ok, mut failed) = (0, 0);
        for seed in 0..iterations {
            let mut rng = Rng(kube_proto::rng::SplitMix64::new(seed));
            let answer = random_answer(&mut rng);
            let piece = [1, 2, 3, 17, 512, 1 << 20][rng.below(6)];
            let step = [1, 5, 700, usize::MAX][rng.below(4)];
            let expected = reference(&answer);
            match exchange(&answer, piece, step) {
                Ok((_, body, rest)) => {
                    assert_eq!(Some(&body), expected.as_ref(), "seed {seed}: {:?}", String::from_utf8_lossy(&answer));
                    assert!(rest.is_done(), "seed {seed}");
                    ok += 1;
                }
                Err(e) => {
                    assert_eq!(expected, None, "seed {seed}: {e:?} for {:?}", String::from_utf8_lossy(&answer));
                    failed += 1;
                }
            }
        }
        // Both kinds of answer were tried.
        assert!(ok > iterations / 5 && failed > iterations / 20, "{ok} read, {failed} refused");
    }
}
