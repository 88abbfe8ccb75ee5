//! HTTP/1.1 framing with no IO, for the one exchange a transport may have to make by hand: the
//! protocol upgrade of exec, attach and port-forward, when its HTTP library cannot hand the
//! connection back after `101 Switching Protocols`.
//!
//! - [`encode_request`]: the request as bytes to write (request line, `Host`, headers,
//!   `Content-Length` when there is a body, the body).
//! - [`parse_response_head`]: the answer's head from the bytes read so far, in any chunking,
//!   shaped as httparse's [`Status`]; it says how many bytes the head took, so that what was
//!   read past it (the new protocol's first bytes, or the body) is kept.
//! - [`ResponseHead::body_length`]: how the body of an answer that did not switch is delimited,
//!   and [`ChunkedDecoder`] for the chunked transfer coding.
//!
//! The status line is parsed by the same code as the answer to a proxy's `CONNECT`
//! ([`crate::proxy`]).
//!
//! ```
//! use kube_proto::http1::{BodyLength, Status, encode_request, parse_response_head};
//!
//! let req = http::Request::get("https://10.0.0.1:6443/api/v1/namespaces/default/pods/blog/exec?command=ls")
//!     .header("connection", "Upgrade")
//!     .header("upgrade", "websocket")
//!     .body(Vec::new())
//!     .unwrap();
//! let bytes = encode_request(&req).unwrap();
//! assert!(bytes.starts_with(b"GET /api/v1/namespaces/default/pods/blog/exec?command=ls HTTP/1.1\r\nhost: 10.0.0.1:6443\r\n"));
//!
//! // The answer, with the first bytes of the new protocol in the same read:
//! let received = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x82\x01x";
//! assert_eq!(parse_response_head(&received[..20]).unwrap(), Status::Partial);
//! let Status::Complete(head) = parse_response_head(received).unwrap() else { unreachable!() };
//! assert_eq!(head.status, 101);
//! assert_eq!(head.headers["upgrade"], "websocket");
//! assert_eq!(&received[head.length..], b"\x82\x01x");
//! assert_eq!(head.body_length(false).unwrap(), BodyLength::Empty);
//! ```

use http::header::{CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

pub use crate::proxy::Status;
use crate::proxy::{head_end, is_token, parse_status_line};

/// The longest response head accepted, in bytes.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// The most header lines a response head may have.
pub const MAX_HEADERS: usize = 256;
/// The longest line of a chunked body's framing (a chunk size with its extensions, or a
/// trailer), in bytes.
pub const MAX_CHUNK_LINE: usize = 4096;

/// Bytes that are not HTTP/1.1 as this module reads and writes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Http1Error {
    /// The request cannot be written (no host to send it to, say).
    #[error("the request cannot be written as HTTP/1.1: {0}")]
    Request(String),
    /// The answer does not start as an HTTP/1.x response.
    #[error("the answer is not an HTTP/1.x response")]
    NotHttp,
    /// The answer is HTTP, but its head is malformed.
    #[error("the response head is malformed: {0}")]
    Malformed(String),
    /// The head did not end within [`MAX_RESPONSE_HEAD`] bytes, or has more than
    /// [`MAX_HEADERS`] headers.
    #[error("the response head is too large: {0}")]
    TooLarge(String),
    /// A chunked body's framing is malformed.
    #[error("the chunked body is malformed: {0}")]
    Chunked(String),
}

/// The bytes of a request: `METHOD target HTTP/1.1`, a `Host` header (from the URI's
/// authority, without user info, unless the request has one), the request's headers, a
/// `Content-Length` when there is a body, and the body.
///
/// The target is the URI's path and query (`/` when it has none). The request's own
/// `Content-Length` and `Transfer-Encoding` headers are replaced by the body's length. Header
/// values need no checking: [`HeaderValue`] cannot hold a line break.
pub fn encode_request<B: AsRef<[u8]>>(request: &http::Request<B>) -> Result<Vec<u8>, Http1Error> {
    let uri = request.uri();
    let target = request_target(uri);
    let body = request.body().as_ref();
    let headers = request.headers();
    let mut out = Vec::with_capacity(256 + body.len());
    out.extend_from_slice(request.method().as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.contains_key(HOST) {
        let host = host_header(uri)
            .ok_or_else(|| Http1Error::Request("the URI has no host and the request no Host header".into()))?;
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        header_line(&mut out, name, value);
    }
    if !body.is_empty() {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    Ok(out)
}

/// The target of a request to `uri` in origin form: its path and query, `/` when it has none.
pub fn request_target(uri: &http::Uri) -> &str {
    match uri.path_and_query().map(|pq| pq.as_str()) {
        None | Some("") => "/",
        Some(target) => target,
    }
}

/// The `Host` header of a request to `uri`: its authority's host and port (as written), without
/// user info; `None` when the URI has no authority.
pub fn host_header(uri: &http::Uri) -> Option<String> {
    let authority = uri.authority()?;
    Some(match authority.port() {
        Some(port) => format!("{}:{}", authority.host(), port.as_str()),
        None => authority.host().to_owned(),
    })
}

fn header_line(out: &mut Vec<u8>, name: &HeaderName, value: &HeaderValue) {
    out.extend_from_slice(name.as_str().as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// A response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status.
    pub status: StatusCode,
    /// The reason phrase (control characters removed, at most 100 characters).
    pub reason: String,
    /// The headers, in order.
    pub headers: HeaderMap,
    /// How many bytes of the input the head took, through its empty line: what follows is the
    /// body, or the new protocol's after `101`.
    pub length: usize,
}

/// How the body of a response is delimited (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body: the answer to `HEAD`, 1xx, 204 and 304.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// The chunked transfer coding ([`ChunkedDecoder`]).
    Chunked,
    /// Everything until the connection closes.
    UntilClose,
}

impl ResponseHead {
    /// How the body is delimited; `head_request`: whether the request was `HEAD`. Differing
    /// `Content-Length` values, or one that is not a number, are an error.
    pub fn body_length(&self, head_request: bool) -> Result<BodyLength, Http1Error> {
        let status = self.status.as_u16();
        if head_request || self.status.is_informational() || status == 204 || status == 304 {
            return Ok(BodyLength::Empty);
        }
        let mut codings = self
            .headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .flat_map(|v| v.as_bytes().split(|&b| b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|c| !c.is_empty())
            .peekable();
        if codings.peek().is_some() {
            // Chunked only when it is the last coding; otherwise the body runs to the close.
            let chunked = codings.last().is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
            return Ok(if chunked { BodyLength::Chunked } else { BodyLength::UntilClose });
        }
        let mut length = None;
        for value in self.headers.get_all(CONTENT_LENGTH) {
            for part in value.as_bytes().split(|&b| b == b',') {
                let part = part.trim_ascii();
                let n = std::str::from_utf8(part)
                    .ok()
                    .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|p| p.parse::<u64>().ok())
                    .ok_or_else(|| Http1Error::Malformed("Content-Length is not a number".into()))?;
                if length.is_some_and(|l| l != n) {
                    return Err(Http1Error::Malformed("Content-Length has differing values".into()));
                }
                length = Some(n);
            }
        }
        Ok(match length {
            Some(0) => BodyLength::Empty,
            Some(n) => BodyLength::Length(n),
            None => BodyLength::UntilClose,
        })
    }
}

/// Parses a response head from the bytes read so far. `Complete(head)`: the head is whole and
/// took its first [`head.length`](ResponseHead::length) bytes. `Partial`: read more. An error
/// as soon as the bytes show one. Empty lines before the status line are tolerated, as
/// HTTP/1.1 parsers do; a line may end with `\r\n` or `\n`; headers folded over several lines
/// (obsolete) are an error.
pub fn parse_response_head(received: &[u8]) -> Result<Status<ResponseHead>, Http1Error> {
    let start = received.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(received.len());
    let rest = &received[start..];
    let prefix = b"HTTP/1.";
    let n = rest.len().min(prefix.len());
    if rest[..n] != prefix[..n] {
        return Err(Http1Error::NotHttp);
    }
    let too_large = || Http1Error::TooLarge(format!("it is longer than {MAX_RESPONSE_HEAD} bytes"));
    let Some(head_len) = head_end(rest) else {
        return if received.len() >= MAX_RESPONSE_HEAD { Err(too_large()) } else { Ok(Status::Partial) };
    };
    let length = start + head_len;
    if length > MAX_RESPONSE_HEAD {
        return Err(too_large());
    }
    let mut lines = rest[..head_len].split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let (code, reason) = lines
        .next()
        .and_then(parse_status_line)
        .ok_or_else(|| Http1Error::Malformed("the status line is not `HTTP/1.x CODE REASON`".into()))?;
    let status = StatusCode::from_u16(code)
        .map_err(|_| Http1Error::Malformed(format!("the status code {code} is out of range")))?;
    let mut headers = HeaderMap::new();
    for (index, line) in lines.enumerate() {
        if line.is_empty() {
            break;
        }
        let line_no = index + 2;
        if index >= MAX_HEADERS {
            return Err(Http1Error::TooLarge(format!("it has more than {MAX_HEADERS} headers")));
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(Http1Error::Malformed(format!("line {line_no} continues a header (obsolete line folding)")));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| Http1Error::Malformed(format!("line {line_no} is not a header")))?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return Err(Http1Error::Malformed(format!("line {line_no} has an invalid header name")));
        }
        let name = HeaderName::from_bytes(name)
            .map_err(|_| Http1Error::Malformed(format!("line {line_no} has an invalid header name")))?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii())
            .map_err(|_| Http1Error::Malformed(format!("the header {name} has an invalid value")))?;
        headers.append(name, value);
    }
    Ok(Status::Complete(ResponseHead { status, reason, headers, length }))
}

/// A decoder of the chunked transfer coding, fed the body's bytes in any chunking.
///
/// ```
/// use kube_proto::http1::ChunkedDecoder;
///
/// let mut decoder = ChunkedDecoder::new();
/// let mut data = Vec::new();
/// let mut input = &b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n"[..];
/// assert!(!decoder.decode(&mut input, &mut data).unwrap());
/// let mut input = &b"\r\nnext response"[..];
/// assert!(decoder.decode(&mut input, &mut data).unwrap());
/// assert_eq!(data, b"hello world");
/// assert_eq!(input, b"next response");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChunkedDecoder {
    state: ChunkState,
    /// The length of the framing line being read (bounded by [`MAX_CHUNK_LINE`]).
    line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ChunkState {
    /// Reading a chunk size: the value so far, the digits seen, and whether an extension (or
    /// whitespace) has started.
    #[default]
    Size,
    SizeDigits {
        value: u64,
        extension: bool,
    },
    /// A `\r` ended the size line; `\n` must follow.
    SizeLf {
        value: u64,
    },
    /// This many bytes of chunk data remain.
    Data(u64),
    /// The `\r\n` after a chunk's data.
    DataCr,
    DataLf,
    /// The trailer section: whether the line being read has anything on it.
    Trailer {
        nonempty: bool,
    },
    /// The body has ended.
    Done,
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        ChunkedDecoder::default()
    }

    /// Whether the last chunk and the trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes what it can of `input`, appending the data to `out` and advancing `input` past
    /// what it used. Returns whether the body has ended (then `input` holds what follows it).
    pub fn decode(&mut self, input: &mut &[u8], out: &mut Vec<u8>) -> Result<bool, Http1Error> {
        while let Some(data) = self.next_data(input)? {
            out.extend_from_slice(data);
        }
        Ok(self.is_done())
    }

    /// The next piece of data in `input`, without copying it: the framing before it is read
    /// and `input` advanced past both. `None` when `input` is used up or the body has ended
    /// ([`is_done`](Self::is_done); then `input` holds what follows it).
    ///
    /// ```
    /// use kube_proto::http1::ChunkedDecoder;
    ///
    /// let mut decoder = ChunkedDecoder::new();
    /// let mut input = &b"5\r\nhello\r\n0\r\n\r\n"[..];
    /// assert_eq!(decoder.next_data(&mut input).unwrap(), Some(&b"hello"[..]));
    /// assert_eq!(decoder.next_data(&mut input).unwrap(), None);
    /// assert!(decoder.is_done());
    /// ```
    pub fn next_data<'a>(&mut self, input: &mut &'a [u8]) -> Result<Option<&'a [u8]>, Http1Error> {
        while let Some((&byte, rest)) = input.split_first() {
            match self.state {
                ChunkState::Done => return Ok(None),
                ChunkState::Data(remaining) => {
                    let take = usize::try_from(remaining).unwrap_or(usize::MAX).min(input.len());
                    let (data, after) = input.split_at(take);
                    *input = after;
                    let left = remaining - take as u64;
                    self.state = if left == 0 { ChunkState::DataCr } else { ChunkState::Data(left) };
                    return Ok(Some(data));
                }
                _ => {}
            }
            *input = rest;
            self.state = self.step(byte)?;
        }
        Ok(None)
    }

    /// One byte of framing.
    fn step(&mut self, byte: u8) -> Result<ChunkState, Http1Error> {
        let error = |m: &str| Err(Http1Error::Chunked(m.to_owned()));
        if byte != b'\n' {
            self.line += 1;
            if self.line > MAX_CHUNK_LINE {
                return Err(Http1Error::Chunked(format!("a line is longer than {MAX_CHUNK_LINE} bytes")));
            }
        } else {
            self.line = 0;
        }
        let hex = |b: u8| (b as char).to_digit(16).map(u64::from);
        match self.state {
            ChunkState::Size => match hex(byte) {
                Some(d) => Ok(ChunkState::SizeDigits { value: d, extension: false }),
                None => error("a chunk does not start with its size in hexadecimal"),
            },
            ChunkState::SizeDigits { value, extension } => match (byte, extension) {
                (b'\r', _) => Ok(ChunkState::SizeLf { value }),
                (b'\n', _) => Ok(self.size_line_done(value)),
                (_, false) if hex(byte).is_some() => {
                    let digit = hex(byte).unwrap_or_default();
                    match value.checked_mul(16).and_then(|v| v.checked_add(digit)) {
                        Some(value) => Ok(ChunkState::SizeDigits { value, extension: false }),
                        None => error("a chunk size does not fit in 64 bits"),
                    }
                }
                (b';' | b' ' | b'\t', _) => Ok(ChunkState::SizeDigits { value, extension: true }),
                (_, true) if (byte >= 0x20 && byte != 0x7f) || byte == b'\t' => {
                    Ok(ChunkState::SizeDigits { value, extension: true })
                }
                _ => error("a chunk size line has an invalid character"),
            },
            ChunkState::SizeLf { value } => match byte {
                b'\n' => Ok(self.size_line_done(value)),
                _ => error("a chunk size line has a lone CR"),
            },
            ChunkState::DataCr => match byte {
                b'\r' => Ok(ChunkState::DataLf),
                b'\n' => Ok(ChunkState::Size),
                _ => error("a chunk's data is longer than its size says"),
            },
            ChunkState::DataLf => match byte {
                b'\n' => Ok(ChunkState::Size),
                _ => error("a chunk's data is not followed by CRLF"),
            },
            ChunkState::Trailer { nonempty } => match byte {
                b'\n' if !nonempty => Ok(ChunkState::Done),
                b'\n' => Ok(ChunkState::Trailer { nonempty: false }),
                b'\r' => Ok(ChunkState::Trailer { nonempty }),
                _ => Ok(ChunkState::Trailer { nonempty: true }),
            },
            // Handled by `decode`.
            ChunkState::Data(_) | ChunkState::Done => Ok(self.state),
        }
    }

    fn size_line_done(&self, value: u64) -> ChunkState {
        if value == 0 { ChunkState::Trailer { nonempty: false } } else { ChunkState::Data(value) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(bytes: &[u8]) -> ResponseHead {
        match parse_response_head(bytes).unwrap() {
            Status::Complete(head) => head,
            Status::Partial => panic!("partial: {:?}", String::from_utf8_lossy(bytes)),
        }
    }

    #[test]
    fn requests_are_written_with_host_and_length() {
        let req = http::Request::post("https://user:pw@[::1]:6443/api/v1/x?a=b")
            .header("authorization", "Bearer t")
            .header("x-multi", "1")
            .header("x-multi", "2")
            .header("content-length", "999")
            .body(b"{}".to_vec())
            .unwrap();
        let text = String::from_utf8(encode_request(&req).unwrap()).unwrap();
        assert_eq!(
            text,
            "POST /api/v1/x?a=b HTTP/1.1\r\nhost: [::1]:6443\r\nauthorization: Bearer t\r\nx-multi: 1\r\nx-multi: 2\r\ncontent-length: 2\r\n\r\n{}"
        );
        // The request's own Host wins; no path is `/`.
        let req = http::Request::get("http://a.example").header("host", "b.example").body(Vec::new()).unwrap();
        assert_eq!(encode_request(&req).unwrap(), b"GET / HTTP/1.1\r\nhost: b.example\r\n\r\n");
        // Nowhere to send it.
        let req = http::Request::get("/only/a/path").body(Vec::new()).unwrap();
        assert!(matches!(encode_request(&req), Err(Http1Error::Request(_))));
    }

    #[test]
    fn heads_are_parsed_in_any_chunking() {
        let bytes = b"\r\nHTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nX-A:  1 \r\nx-a: 2\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
        let whole = head(bytes);
        assert_eq!(whole.status, StatusCode::FORBIDDEN);
        assert_eq!(whole.reason, "Forbidden");
        assert_eq!(whole.headers["content-type"], "application/json");
        let xa: Vec<_> = whole.headers.get_all("x-a").iter().collect();
        assert_eq!(xa, ["1", "2"]);
        assert_eq!(&bytes[whole.length..], b"{\"a\":1}");
        assert_eq!(whole.body_length(false).unwrap(), BodyLength::Length(7));
        assert_eq!(whole.body_length(true).unwrap(), BodyLength::Empty);
        for cut in 0..whole.length {
            assert_eq!(parse_response_head(&bytes[..cut]).unwrap(), Status::Partial, "{cut}");
        }
        // Bare LF line ends.
        let bytes = b"HTTP/1.0 101 Switching\nUpgrade: websocket\n\nrest";
        let lf = head(bytes);
        assert_eq!((lf.status.as_u16(), &bytes[lf.length..]), (101, &b"rest"[..]));
    }

    #[test]
    fn bad_heads_are_errors() {
        let err = |b: &[u8]| parse_response_head(b).unwrap_err();
        assert_eq!(err(b"SSH-2.0"), Http1Error::NotHttp);
        assert_eq!(err(b"\x16\x03\x01"), Http1Error::NotHttp);
        assert!(matches!(err(b"HTTP/1.1 99 Low\r\n\r\n"), Http1Error::Malformed(_)));
        assert!(matches!(err(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n"), Http1Error::Malformed(_)));
        assert!(matches!(err(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"), Http1Error::Malformed(_)));
        assert!(matches!(err(b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n"), Http1Error::Malformed(_)));
        assert!(matches!(err(b"HTTP/1.1 200 OK\r\nA: b\x01c\r\n\r\n"), Http1Error::Malformed(_)));
        let mut long = b"HTTP/1.1 200 OK\r\n".to_vec();
        long.resize(MAX_RESPONSE_HEAD, b'a');
        assert!(matches!(err(&long), Http1Error::TooLarge(_)));
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("h{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(err(&many), Http1Error::TooLarge(_)));
    }

    #[test]
    fn body_lengths_follow_rfc_9112() {
        let len = |h: &str| head(format!("HTTP/1.1 200 OK\r\n{h}\r\n").as_bytes()).body_length(false);
        assert_eq!(len("").unwrap(), BodyLength::UntilClose);
        assert_eq!(len("Content-Length: 0\r\n").unwrap(), BodyLength::Empty);
        assert_eq!(len("Content-Length: 5, 5\r\n").unwrap(), BodyLength::Length(5));
        assert_eq!(len("Transfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\n").unwrap(), BodyLength::Chunked);
        assert_eq!(len("Transfer-Encoding: chunked, gzip\r\n").unwrap(), BodyLength::UntilClose);
        assert!(len("Content-Length: 5\r\nContent-Length: 6\r\n").is_err());
        assert!(len("Content-Length: -1\r\n").is_err());
        assert!(len("Content-Length: +5\r\n").is_err());
        for status in [101, 204, 304] {
            let h = head(format!("HTTP/1.1 {status} X\r\nContent-Length: 5\r\n\r\n").as_bytes());
            assert_eq!(h.body_length(false).unwrap(), BodyLength::Empty, "{status}");
        }
    }

    fn decode_in_pieces(body: &[u8], piece: usize) -> Result<(Vec<u8>, usize), Http1Error> {
        let mut decoder = ChunkedDecoder::new();
        let mut out = Vec::new();
        for (i, chunk) in body.chunks(piece.max(1)).enumerate() {
            let mut input = chunk;
            if decoder.decode(&mut input, &mut out)? {
                return Ok((out, i * piece.max(1) + chunk.len() - input.len()));
            }
        }
        Err(Http1Error::Chunked("not done".into()))
    }

    #[test]
    fn chunked_bodies_decode_in_any_chunking() {
        let body = b"4\r\nWiki\r\n5 ; name=\"v a\"\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nTrailer: x\r\n\r\nAFTER";
        for piece in 1..body.len() {
            let (data, used) = decode_in_pieces(body, piece).unwrap();
            assert_eq!(data, b"Wikipedia in\r\n\r\nchunks.", "{piece}");
            assert_eq!(&body[used..], b"AFTER", "{piece}");
        }
        // Bare LF framing is accepted.
        assert_eq!(decode_in_pieces(b"3\nabc\n0\n\n", 2).unwrap().0, b"abc");
    }

    #[test]
    fn bad_chunked_framing_is_an_error() {
        for bad in
            [&b"x\r\n"[..], b"3\r\nabcd\r\n0\r\n\r\n", b"3\rx", b"11111111111111111\r\n", b"3\r\nabc\rx", b"3 \x01\r\n"]
        {
            assert!(
                matches!(decode_in_pieces(bad, 1), Err(Http1Error::Chunked(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let mut long = b"1;".to_vec();
        long.resize(MAX_CHUNK_LINE + 10, b'a');
        assert!(matches!(decode_in_pieces(&long, 100), Err(Http1Error::Chunked(_))));
    }

    proptest::proptest! {
        /// Any data, cut into chunks of any sizes (with upper- or lower-case hex) and fed in
        /// pieces of any size, decodes to itself, and the bytes after the body are left.
        #[test]
        fn chunked_round_trip(
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
            sizes in proptest::collection::vec(1usize..300, 1..20),
            piece in 1usize..64,
            upper in proptest::bool::ANY,
        ) {
            let mut body = Vec::new();
            let mut rest = &data[..];
            let mut sizes = sizes.iter().cycle();
            while !rest.is_empty() {
                let n = (*sizes.next().unwrap()).min(rest.len());
                let size = if upper { format!("{n:X}") } else { format!("{n:x}") };
                body.extend_from_slice(format!("{size}\r\n").as_bytes());
                body.extend_from_slice(&rest[..n]);
                body.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            body.extend_from_slice(b"0\r\n\r\ntail");
            let (decoded, used) = decode_in_pieces(&body, piece).unwrap();
            proptest::prop_assert_eq!(decoded, data);
            proptest::prop_assert_eq!(&body[used..], b"tail");
        }

        /// Any bytes never panic the head parser or the decoder.
        #[test]
        fn arbitrary_bytes_are_errors_not_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
            let mut with_prefix = b"HTTP/1.1 200 OK\r\n".to_vec();
            with_prefix.extend_from_slice(&bytes);
            let _ = parse_response_head(&bytes);
            let _ = parse_response_head(&with_prefix);
            let _ = decode_in_pieces(&bytes, 7);
        }
    }
}
