//! The client side of an HTTP/1.1 protocol upgrade over any futures-io connection, for
//! transports whose HTTP library cannot hand a connection back after `101 Switching
//! Protocols` (async-h1, say).
//!
//! [`upgrade`] writes the request ([`kube_proto::http1::encode_request`]), reads the answer's
//! head with the core's parser, and answers an [`Upgraded`]: on `101`, the connection itself,
//! the bytes read past the head served first ([`Prefixed`]); otherwise the refusal with its
//! body, read as its head says (`Content-Length`, chunked or to the close), at most
//! [`MAX_REFUSED_BODY`] bytes. The transport makes the connection (TCP, proxy tunnel, TLS) and
//! bounds the whole exchange by its read timeout; the stream has no timeout.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
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

    let mut received = Vec::with_capacity(READ_SIZE);
    let head = loop {
        match kube_proto::http1::parse_response_head(&received).map_err(invalid)? {
            Status::Complete(head)
                if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS =>
            {
                received.drain(..head.length);
            }
            Status::Complete(head) => break head,
            Status::Partial => {
                if read_more(&mut conn, &mut received, origin).await? == 0 {
                    return Err(TransportError::Closed(format!(
                        "{origin}: the connection closed before a whole response head arrived"
                    )));
                }
            }
        }
    };
    let after_head = received.split_off(head.length);
    if head.status == StatusCode::SWITCHING_PROTOCOLS {
        let stream = UpgradedStream::new(Prefixed::new(after_head, conn));
        return Ok(Upgraded::Switched { headers: head.headers, stream });
    }
    let length = head.body_length(head_request).map_err(invalid)?;
    let body = read_refused_body(&mut conn, after_head, length, origin).await?;
    let ResponseHead { status, headers, .. } = head;
    Ok(Upgraded::Refused { status, headers, body })
}

/// Reads up to [`READ_SIZE`] more bytes onto `received`; how many (0 at the end).
async fn read_more<C: AsyncRead + Unpin>(
    conn: &mut C,
    received: &mut Vec<u8>,
    origin: &str,
) -> Result<usize, TransportError> {
    let start = received.len();
    received.resize(start + READ_SIZE, 0);
    let n = conn.read(&mut received[start..]).await;
    received.truncate(start + *n.as_ref().unwrap_or(&0));
    n.map_err(|e| io_error(origin, &e, "reading the answer to the upgrade request"))
}

/// The body of a refusal, at most [`MAX_REFUSED_BODY`] bytes of it: `received` holds what was
/// read past the head.
async fn read_refused_body<C: AsyncRead + Unpin>(
    conn: &mut C,
    mut received: Vec<u8>,
    length: BodyLength,
    origin: &str,
) -> Result<Vec<u8>, TransportError> {
    let cut = |what: &str| TransportError::Closed(format!("{origin}: the connection closed in the middle of {what}"));
    match length {
        BodyLength::Empty => Ok(Vec::new()),
        BodyLength::Length(n) => {
            let want = usize::try_from(n).unwrap_or(usize::MAX).min(MAX_REFUSED_BODY);
            while received.len() < want {
                if read_more(conn, &mut received, origin).await? == 0 {
                    return Err(cut("the answer's body"));
                }
            }
            received.truncate(want);
            Ok(received)
        }
        BodyLength::UntilClose => {
            while received.len() < MAX_REFUSED_BODY {
                if read_more(conn, &mut received, origin).await? == 0 {
                    break;
                }
            }
            received.truncate(MAX_REFUSED_BODY);
            Ok(received)
        }
        BodyLength::Chunked => {
            let mut decoder = ChunkedDecoder::new();
            let mut body = Vec::new();
            loop {
                let mut input = &received[..];
                let done = decoder
                    .decode(&mut input, &mut body)
                    .map_err(|e| TransportError::Other(format!("{origin}: {e}")))?;
                if done || body.len() >= MAX_REFUSED_BODY {
                    body.truncate(MAX_REFUSED_BODY);
                    return Ok(body);
                }
                received.clear();
                if read_more(conn, &mut received, origin).await? == 0 {
                    return Err(cut("the answer's chunked body"));
                }
            }
        }
    }
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
}
