//! SPDY/3 frames: an 8-byte head, then the payload. A control frame's head holds the
//! protocol version (3), its type, flags and the payload's length (24 bits); a data frame's
//! holds the stream id, flags and the length.

use super::SpdyError;

/// The version in every control frame.
pub const VERSION: u16 = 3;
/// The flag that ends a stream's side (on data, `SYN_STREAM`, `SYN_REPLY` and `HEADERS`).
pub const FLAG_FIN: u8 = 0x01;
/// The `SYN_STREAM` flag for a stream only its opener writes to.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// The largest payload a frame can carry (24 bits of length).
pub const MAX_PAYLOAD: usize = (1 << 24) - 1;

/// The control frame types.
pub(crate) mod kind {
    pub(crate) const SYN_STREAM: u16 = 1;
    pub(crate) const SYN_REPLY: u16 = 2;
    pub(crate) const RST_STREAM: u16 = 3;
    pub(crate) const SETTINGS: u16 = 4;
    pub(crate) const PING: u16 = 6;
    pub(crate) const GOAWAY: u16 = 7;
    pub(crate) const HEADERS: u16 = 8;
    pub(crate) const WINDOW_UPDATE: u16 = 9;
}

/// One frame, its header block (if any) still compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Frame {
    Data {
        stream: u32,
        fin: bool,
        data: Vec<u8>,
    },
    SynStream {
        stream: u32,
        fin: bool,
        block: Vec<u8>,
    },
    SynReply {
        stream: u32,
        fin: bool,
        block: Vec<u8>,
    },
    Headers {
        stream: u32,
        fin: bool,
        block: Vec<u8>,
    },
    RstStream {
        stream: u32,
        status: u32,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_stream: u32,
        status: u32,
    },
    /// SETTINGS, WINDOW_UPDATE and control types this end ignores, as the protocol allows.
    Ignored,
}

/// Cuts frames out of a byte stream, in any chunking.
#[derive(Debug, Clone, Default)]
pub(crate) struct FrameDecoder {
    buf: Vec<u8>,
    /// Where the next frame starts in `buf`.
    at: usize,
}

impl FrameDecoder {
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.at > 0 && self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Whether a frame is partly buffered.
    pub(crate) fn in_progress(&self) -> bool {
        self.at < self.buf.len()
    }

    /// The next whole frame, if one is buffered.
    pub(crate) fn next(&mut self) -> Result<Option<Frame>, SpdyError> {
        let rest = &self.buf[self.at..];
        let Some(head) = rest.get(..8) else { return Ok(None) };
        let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
        let Some(payload) = rest.get(8..8 + len) else { return Ok(None) };
        let flags = head[4];
        let word = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let frame = if word & 0x8000_0000 == 0 {
            Frame::Data { stream: word, fin: flags & FLAG_FIN != 0, data: payload.to_vec() }
        } else {
            let version = ((word >> 16) & 0x7fff) as u16;
            if version != VERSION {
                return Err(SpdyError::Version { found: version });
            }
            control(word as u16, flags, payload)?
        };
        self.at += 8 + len;
        if self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        } else if self.at > 64 * 1024 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        Ok(Some(frame))
    }
}

fn u31(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) & 0x7fff_ffff
}

fn control(kind: u16, flags: u8, p: &[u8]) -> Result<Frame, SpdyError> {
    let short = |need: usize| SpdyError::ShortFrame { kind, len: p.len(), need };
    let fin = flags & FLAG_FIN != 0;
    Ok(match kind {
        kind::SYN_STREAM => {
            if p.len() < 10 {
                return Err(short(10));
            }
            Frame::SynStream { stream: u31(p), fin, block: p[10..].to_vec() }
        }
        kind::SYN_REPLY | kind::HEADERS => {
            if p.len() < 4 {
                return Err(short(4));
            }
            let (stream, block) = (u31(p), p[4..].to_vec());
            if kind == kind::SYN_REPLY {
                Frame::SynReply { stream, fin, block }
            } else {
                Frame::Headers { stream, fin, block }
            }
        }
        kind::RST_STREAM => {
            if p.len() < 8 {
                return Err(short(8));
            }
            Frame::RstStream { stream: u31(p), status: u32::from_be_bytes([p[4], p[5], p[6], p[7]]) }
        }
        kind::PING => {
            if p.len() < 4 {
                return Err(short(4));
            }
            Frame::Ping { id: u32::from_be_bytes([p[0], p[1], p[2], p[3]]) }
        }
        kind::GOAWAY => {
            if p.len() < 8 {
                return Err(short(8));
            }
            Frame::GoAway { last_stream: u31(p), status: u32::from_be_bytes([p[4], p[5], p[6], p[7]]) }
        }
        kind::SETTINGS | kind::WINDOW_UPDATE => Frame::Ignored,
        _ => Frame::Ignored,
    })
}

/// Appends a control frame's head and payload.
pub(crate) fn encode_control(out: &mut Vec<u8>, kind: u16, flags: u8, payload: &[&[u8]]) {
    let len: usize = payload.iter().map(|p| p.len()).sum();
    out.extend_from_slice(&(0x8000_0000u32 | u32::from(VERSION) << 16 | u32::from(kind)).to_be_bytes());
    out.push(flags);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    for p in payload {
        out.extend_from_slice(p);
    }
}

/// Appends a data frame (`data` at most [`MAX_PAYLOAD`] bytes).
pub(crate) fn encode_data(out: &mut Vec<u8>, stream: u32, fin: bool, data: &[u8]) {
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    out.push(if fin { FLAG_FIN } else { 0 });
    out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(data);
}

/// A header block before compression: the count of pairs, then each name and value after its
/// length (4 bytes each, big-endian).
pub(crate) fn encode_block(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        for s in [name.to_ascii_lowercase().as_str(), value] {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
    out
}

/// Parses an inflated header block: names as sent (lower case), values as sent (several values
/// of one name are separated by NUL bytes).
pub(crate) fn decode_block(block: &[u8]) -> Result<Vec<(String, String)>, SpdyError> {
    let mut rest = block;
    let mut take = |n: usize| -> Result<&[u8], SpdyError> {
        if rest.len() < n {
            return Err(SpdyError::HeaderBlock("it ends early"));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes"));
    let mut headers = Vec::new();
    for _ in 0..count {
        let mut pair = [String::new(), String::new()];
        for s in &mut pair {
            let len = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
            *s = std::str::from_utf8(take(len)?)
                .map_err(|_| SpdyError::HeaderBlock("a name or value is not UTF-8"))?
                .to_owned();
        }
        let [name, value] = pair;
        if name.is_empty() {
            return Err(SpdyError::HeaderBlock("an empty name"));
        }
        headers.push((name, value));
    }
    if !rest.is_empty() {
        return Err(SpdyError::HeaderBlock("bytes after the last pair"));
    }
    Ok(headers)
}
