//! Frames: encoding, and an incremental decoder that reassembles messages.

use super::{CloseFrame, Message, Role, WsError, close_code};

/// A frame's opcode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Opcode {
    /// The next fragment of a text or binary message.
    Continuation = 0x0,
    /// A text message (or its first fragment).
    Text = 0x1,
    /// A binary message (or its first fragment).
    Binary = 0x2,
    /// Close.
    Close = 0x8,
    /// Ping.
    Ping = 0x9,
    /// Pong.
    Pong = 0xA,
}

impl Opcode {
    /// The opcode of a frame's low four bits, if RFC 6455 defines it.
    pub fn from_u8(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    /// Whether this is a control frame's opcode (close, ping, pong).
    pub fn is_control(self) -> bool {
        self as u8 & 0x8 != 0
    }
}

/// The most a control frame can carry.
const MAX_CONTROL: usize = 125;

/// Appends one frame to `out`: FIN, the opcode, the payload length in its shortest form
/// (7, 16 or 64 bits) and, when `mask` is given (a client always masks), the key and the
/// masked payload. A control frame must be final and at most 125 bytes.
///
/// ```
/// use kube_proto::websocket::{Opcode, encode_frame};
///
/// // RFC 6455 section 5.7: a masked "Hello".
/// let mut out = Vec::new();
/// encode_frame(&mut out, true, Opcode::Text, b"Hello", Some([0x37, 0xfa, 0x21, 0x3d])).unwrap();
/// assert_eq!(out, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// ```
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: Opcode,
    payload: &[u8],
    mask: Option<[u8; 4]>,
) -> Result<(), WsError> {
    encode_parts(out, fin, opcode, &[payload], mask)
}

/// [`encode_frame`] with a payload in parts (a channel byte and the data, say), copied once.
pub(crate) fn encode_parts(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: Opcode,
    parts: &[&[u8]],
    mask: Option<[u8; 4]>,
) -> Result<(), WsError> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    if opcode.is_control() {
        if !fin {
            return Err(WsError::FragmentedControlFrame { opcode: opcode as u8 });
        }
        if len > MAX_CONTROL {
            return Err(WsError::ControlFrameTooLong { opcode: opcode as u8, len: len as u64 });
        }
    }
    out.reserve(14 + len);
    out.push(if fin { 0x80 } else { 0 } | opcode as u8);
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    if len <= MAX_CONTROL {
        out.push(mask_bit | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(mask_bit | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(mask_bit | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let start = out.len() + if mask.is_some() { 4 } else { 0 };
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    for part in parts {
        out.extend_from_slice(part);
    }
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
    Ok(())
}

/// The payload of a close frame: the code, big-endian, then the reason.
pub(crate) fn close_payload(code: u16, reason: &str) -> Result<Vec<u8>, WsError> {
    if !close_code::is_valid(code) {
        return Err(WsError::InvalidCloseCode(code));
    }
    if reason.len() > MAX_CONTROL - 2 {
        return Err(WsError::CloseReasonTooLong { len: reason.len() });
    }
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    Ok(payload)
}

/// XORs `data` with the key, as if `data` started `offset` bytes into a masked payload.
pub(crate) fn apply_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let k: [u8; 4] = std::array::from_fn(|i| key[(offset + i) % 4]);
    let wide = u64::from_ne_bytes([k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= k[i % 4];
    }
}

/// The frame whose payload is being read.
#[derive(Debug, Clone)]
struct Frame {
    fin: bool,
    opcode: Opcode,
    mask: Option<[u8; 4]>,
    remaining: u64,
    /// Payload bytes read so far (for the mask's phase).
    read: usize,
}

/// A text or binary message whose fragments are being gathered.
#[derive(Debug, Clone)]
struct Partial {
    text: bool,
    data: Vec<u8>,
}

/// The longest a header can be: 2 bytes, a 64-bit length, a masking key.
const MAX_HEADER: usize = 14;

/// The most reserved up front for a message from its announced length (the rest grows as
/// bytes arrive, so that a frame that announces much and sends little costs little).
const MAX_PREALLOCATION: u64 = 1 << 20;

/// An incremental frame decoder: fed bytes in any chunking, it gives whole messages
/// (fragments reassembled) and control frames (which may arrive between fragments), and
/// rejects every violation of RFC 6455 with a typed [`WsError`]. It never panics.
///
/// After a close frame, the rest of the input is discarded (RFC 6455 section 5.5.1: no
/// data follows a close). After an error it stays failed, returning the same error.
///
/// Leniency: a payload length not in its shortest form is accepted, as most endpoints do.
/// Text is checked for UTF-8 once whole, not fragment by fragment.
#[derive(Debug, Clone)]
pub struct Decoder {
    role: Role,
    max_message: usize,
    header: [u8; MAX_HEADER],
    header_len: usize,
    frame: Option<Frame>,
    message: Option<Partial>,
    control: Vec<u8>,
    closed: bool,
    error: Option<WsError>,
}

impl Decoder {
    /// A decoder for the given end of the connection (a client expects unmasked frames), with
    /// a limit on a message's size (all its fragments).
    pub fn new(role: Role, max_message: usize) -> Self {
        Decoder {
            role,
            max_message,
            header: [0; MAX_HEADER],
            header_len: 0,
            frame: None,
            message: None,
            control: Vec::new(),
            closed: false,
            error: None,
        }
    }

    /// Whether a close frame was decoded.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether part of a frame or of a fragmented message is buffered: an input that ends
    /// here ends in the middle of something.
    pub fn in_progress(&self) -> bool {
        self.header_len > 0 || self.frame.is_some() || self.message.is_some()
    }

    /// Decodes from the front of `input`, advancing it past what was used: the next whole
    /// message, or `None` once all of `input` has been taken in (a partial frame is kept for
    /// the next call).
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Message>, WsError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        match self.decode_inner(input) {
            Ok(m) => Ok(m),
            Err(e) => {
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    fn decode_inner(&mut self, input: &mut &[u8]) -> Result<Option<Message>, WsError> {
        loop {
            if self.closed {
                *input = &[];
                return Ok(None);
            }
            if self.frame.is_none() {
                match self.read_header(input)? {
                    Some(frame) => self.frame = Some(frame),
                    None => return Ok(None),
                }
            }
            let Some(frame) = &mut self.frame else { continue };
            let take = frame.remaining.min(input.len() as u64) as usize;
            let (chunk, rest) = input.split_at(take);
            *input = rest;
            let dest = if frame.opcode.is_control() {
                &mut self.control
            } else {
                match &mut self.message {
                    Some(partial) => &mut partial.data,
                    None => return Err(WsError::ContinuationWithoutStart), // unreachable: checked in the header
                }
            };
            let start = dest.len();
            dest.extend_from_slice(chunk);
            if let Some(key) = frame.mask {
                apply_mask(&mut dest[start..], key, frame.read);
            }
            frame.read += take;
            frame.remaining -= take as u64;
            if frame.remaining > 0 {
                return Ok(None);
            }
            let Some(frame) = self.frame.take() else { continue };
            match frame.opcode {
                Opcode::Ping => return Ok(Some(Message::Ping(std::mem::take(&mut self.control)))),
                Opcode::Pong => return Ok(Some(Message::Pong(std::mem::take(&mut self.control)))),
                Opcode::Close => {
                    let close = parse_close(&std::mem::take(&mut self.control))?;
                    self.closed = true;
                    *input = &[];
                    return Ok(Some(Message::Close(close)));
                }
                Opcode::Text | Opcode::Binary | Opcode::Continuation if frame.fin => {
                    let Some(partial) = self.message.take() else { continue };
                    return if partial.text {
                        String::from_utf8(partial.data)
                            .map(|t| Some(Message::Text(t)))
                            .map_err(|_| WsError::InvalidUtf8)
                    } else {
                        Ok(Some(Message::Binary(partial.data)))
                    };
                }
                Opcode::Text | Opcode::Binary | Opcode::Continuation => {}
            }
        }
    }

    /// Reads and checks a header; `None` when `input` ran out first (what it had is kept).
    fn read_header(&mut self, input: &mut &[u8]) -> Result<Option<Frame>, WsError> {
        if !self.fill(input, 2) {
            return Ok(None);
        }
        let (b0, b1) = (self.header[0], self.header[1]);
        let fin = b0 & 0x80 != 0;
        let rsv = (b0 >> 4) & 0x7;
        if rsv != 0 {
            return Err(WsError::ReservedBits { bits: rsv });
        }
        let opcode = Opcode::from_u8(b0 & 0xF).ok_or(WsError::UnknownOpcode(b0 & 0xF))?;
        let masked = b1 & 0x80 != 0;
        match (self.role, masked) {
            (Role::Client, true) => return Err(WsError::Masking { from: "server", masked }),
            (Role::Server, false) => return Err(WsError::Masking { from: "client", masked }),
            _ => {}
        }
        let len7 = b1 & 0x7F;
        if opcode.is_control() {
            if !fin {
                return Err(WsError::FragmentedControlFrame { opcode: opcode as u8 });
            }
            if usize::from(len7) > MAX_CONTROL {
                return Err(WsError::ControlFrameTooLong { opcode: opcode as u8, len: u64::from(len7) });
            }
        }
        match opcode {
            Opcode::Continuation if self.message.is_none() => return Err(WsError::ContinuationWithoutStart),
            Opcode::Text | Opcode::Binary if self.message.is_some() => return Err(WsError::UnfinishedMessage),
            _ => {}
        }
        let len_bytes = match len7 {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let needed = 2 + len_bytes + if masked { 4 } else { 0 };
        if !self.fill(input, needed) {
            return Ok(None);
        }
        let h = &self.header;
        let len = match len_bytes {
            2 => u64::from(u16::from_be_bytes([h[2], h[3]])),
            8 => u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]),
            _ => u64::from(len7),
        };
        if len >> 63 != 0 {
            return Err(WsError::LengthTooLarge);
        }
        let mask = masked.then(|| {
            let at = 2 + len_bytes;
            [h[at], h[at + 1], h[at + 2], h[at + 3]]
        });
        if !opcode.is_control() {
            let so_far = self.message.as_ref().map_or(0, |m| m.data.len() as u64);
            let size = so_far.saturating_add(len);
            if size > self.max_message as u64 {
                return Err(WsError::MessageTooBig { size, max: self.max_message });
            }
            if opcode != Opcode::Continuation {
                let capacity = len.min(MAX_PREALLOCATION) as usize;
                self.message = Some(Partial { text: opcode == Opcode::Text, data: Vec::with_capacity(capacity) });
            }
        }
        self.header_len = 0;
        Ok(Some(Frame { fin, opcode, mask, remaining: len, read: 0 }))
    }

    /// Moves bytes from `input` into the header until it holds `n`; whether it does.
    fn fill(&mut self, input: &mut &[u8], n: usize) -> bool {
        if self.header_len < n {
            let take = (n - self.header_len).min(input.len());
            self.header[self.header_len..self.header_len + take].copy_from_slice(&input[..take]);
            self.header_len += take;
            *input = &input[take..];
        }
        self.header_len >= n
    }
}

fn parse_close(payload: &[u8]) -> Result<Option<CloseFrame>, WsError> {
    match payload {
        [] => Ok(None),
        [_] => Err(WsError::CloseFrameTooShort),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code::is_valid(code) {
                return Err(WsError::InvalidCloseCode(code));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::InvalidCloseReason)?;
            Ok(Some(CloseFrame { code, reason: reason.to_owned() }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_in_pieces_equals_masking_at_once() {
        let key = [1, 2, 3, 4];
        let data: Vec<u8> = (0..=255).collect();
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        for cut in 0..data.len() {
            let mut pieces = data.clone();
            let (a, b) = pieces.split_at_mut(cut);
            apply_mask(a, key, 0);
            apply_mask(b, key, cut);
            assert_eq!(pieces, whole, "cut at {cut}");
        }
    }

    #[test]
    fn lengths_use_the_shortest_form() {
        for (len, header) in [(125usize, 2usize), (126, 4), (65535, 4), (65536, 10)] {
            let mut out = Vec::new();
            encode_frame(&mut out, true, Opcode::Binary, &vec![0; len], None).unwrap();
            assert_eq!(out.len(), header + len, "{len}");
        }
    }
}
