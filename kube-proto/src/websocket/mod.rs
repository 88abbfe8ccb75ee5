//! The WebSocket protocol (RFC 6455), with no IO: the handshake's answer checked, frames
//! encoded and decoded, pings answered and the closing handshake kept, for the upgrades that
//! exec, attach and port-forward make.
//!
//! Written here rather than taken from a crate: tungstenite, the usual choice, drives a
//! `std::io::Read + Write` stream itself and draws its masking keys from `rand`'s thread-local
//! generator, which the core may not touch (its outputs would not replay); the pieces that
//! need neither are not its public API. What the core needs is small: frames in and out of
//! byte buffers, fed in any chunking.
//!
//! - [`Handshake`]: the key and subprotocols of an upgrade request, and the check of the
//!   server's answer (`101`, `Upgrade`, `Connection`, `Sec-WebSocket-Accept`, the chosen
//!   subprotocol); an HTTP error instead of `101` gives the Kubernetes `Status` it carries.
//! - [`encode_frame`] and [`Decoder`]: frames to bytes, and bytes in any chunking to whole
//!   [`Message`]s, every protocol violation a typed [`WsError`].
//! - [`WebSocket`]: one endpoint of a connection: it answers pings, echoes a close, and
//!   queues what is to be written, which the caller drains with [`WebSocket::poll_transmit`].
//! - [`Masks`]: the client's masking keys, from a seed the caller draws from its own
//!   randomness.
//!
//! ```
//! use kube_proto::websocket::{Masks, Message, WebSocket};
//!
//! let mut ws = WebSocket::client(Masks::new([7; 16]), 1 << 20);
//! ws.send_binary(b"\x00ls\n").unwrap();
//! let to_write = ws.poll_transmit().unwrap();
//! assert_eq!(to_write[0], 0x82); // FIN, binary
//! assert_eq!(to_write[1], 0x80 | 4); // masked, 4 bytes
//!
//! // A server's ping, then a binary message, arriving in pieces:
//! let received = [0x89, 0x01, b'p', 0x82, 0x02, 0x01, b'x'];
//! let mut input = &received[..4];
//! assert_eq!(ws.receive(&mut input).unwrap(), Some(Message::Ping(b"p".to_vec())));
//! assert_eq!(ws.receive(&mut input).unwrap(), None); // the start of the next frame, kept
//! let mut input = &received[4..];
//! assert_eq!(ws.receive(&mut input).unwrap(), Some(Message::Binary(vec![1, b'x'])));
//! assert_eq!(ws.poll_transmit().unwrap()[0], 0x8A); // the pong, queued
//! ```

mod connection;
mod frame;
mod handshake;
mod sha1;

use std::fmt;

pub use connection::WebSocket;
pub use frame::{Decoder, Opcode, encode_frame};
pub use handshake::{GUID, Handshake, HandshakeError, accept_key};
pub use sha1::sha1;

/// Which end of a connection: a client masks what it sends and expects unmasked frames, a
/// server the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The end that sent the upgrade request.
    Client,
    /// The end that answered it.
    Server,
}

/// A whole message or a control frame, as received.
#[derive(Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8).
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping, with its application data (at most 125 bytes).
    Ping(Vec<u8>),
    /// A pong, with its application data (at most 125 bytes).
    Pong(Vec<u8>),
    /// A close frame, with its status code and reason when it has them.
    Close(Option<CloseFrame>),
}

impl fmt::Debug for Message {
    /// Lengths only for data: a message can carry anything a command wrote.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Text(t) => write!(f, "Text({} bytes)", t.len()),
            Message::Binary(b) => write!(f, "Binary({} bytes)", b.len()),
            Message::Ping(b) => write!(f, "Ping({} bytes)", b.len()),
            Message::Pong(b) => write!(f, "Pong({} bytes)", b.len()),
            Message::Close(c) => f.debug_tuple("Close").field(c).finish(),
        }
    }
}

/// The status code and reason of a close frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code (see [`close_code`]).
    pub code: u16,
    /// Why, in UTF-8, at most 123 bytes.
    pub reason: String,
}

/// Close status codes (RFC 6455 section 7.4.1 and the IANA registry).
pub mod close_code {
    /// The purpose of the connection was fulfilled.
    pub const NORMAL: u16 = 1000;
    /// The endpoint is going away (a server shutting down).
    pub const GOING_AWAY: u16 = 1001;
    /// A protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// A kind of data the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// No status code was present (never sent on the wire).
    pub const NO_STATUS: u16 = 1005;
    /// The connection ended without a close frame (never sent on the wire).
    pub const ABNORMAL: u16 = 1006;
    /// Data inconsistent with the message's type (text that is not UTF-8).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A message that violates the endpoint's policy.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// A message too big to process.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: u16 = 1010;
    /// The server met an unexpected condition.
    pub const INTERNAL_ERROR: u16 = 1011;

    /// Whether `code` may appear in a close frame: 1000–1003, 1007–1014 (1012–1014 were
    /// registered after RFC 6455) and the ranges for libraries and applications, 3000–4999.
    /// 1004–1006 and 1015 are reserved and never sent.
    pub fn is_valid(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// A violation of the WebSocket protocol by the peer, or a frame that cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// A reserved bit (RSV1–3) is set, and no extension was negotiated.
    #[error("a frame has reserved bits set ({bits:#05b}) and no extension was negotiated")]
    ReservedBits {
        /// RSV1, RSV2, RSV3, as the three low bits.
        bits: u8,
    },
    /// An opcode RFC 6455 does not define (3–7, 0xB–0xF).
    #[error("a frame has the unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A server's frame is masked, or a client's is not.
    #[error("a frame from the {from} is {}masked", if *masked { "" } else { "not " })]
    Masking {
        /// Who sent it: `server` or `client`.
        from: &'static str,
        /// Whether it was masked.
        masked: bool,
    },
    /// A control frame (close, ping, pong) with more than 125 bytes.
    #[error("a control frame (opcode {opcode:#x}) has {len} bytes, more than 125")]
    ControlFrameTooLong {
        /// The opcode.
        opcode: u8,
        /// Its length.
        len: u64,
    },
    /// A control frame without FIN.
    #[error("a control frame (opcode {opcode:#x}) is fragmented")]
    FragmentedControlFrame {
        /// The opcode.
        opcode: u8,
    },
    /// A continuation frame with no message to continue.
    #[error("a continuation frame arrived with no fragmented message to continue")]
    ContinuationWithoutStart,
    /// A new text or binary frame while a fragmented message is unfinished.
    #[error("a new data frame arrived before the fragmented message was finished")]
    UnfinishedMessage,
    /// A 64-bit payload length with its most significant bit set.
    #[error("a frame's 64-bit length has its most significant bit set")]
    LengthTooLarge,
    /// A message (all its fragments) longer than the limit.
    #[error("a message of at least {size} bytes exceeds the limit of {max} bytes")]
    MessageTooBig {
        /// Its size so far, this frame included.
        size: u64,
        /// The limit.
        max: usize,
    },
    /// A text message that is not UTF-8.
    #[error("a text message is not valid UTF-8")]
    InvalidUtf8,
    /// A close frame with a one-byte payload (a code needs two).
    #[error("a close frame has a one-byte payload")]
    CloseFrameTooShort,
    /// A close frame with a code that may not be sent (see [`close_code::is_valid`]).
    #[error("a close frame has the invalid status code {0}")]
    InvalidCloseCode(u16),
    /// A close frame whose reason is not UTF-8.
    #[error("a close frame's reason is not valid UTF-8")]
    InvalidCloseReason,
    /// Something to send after this end sent its close frame.
    #[error("the connection is closing: nothing more can be sent")]
    Closed,
    /// A reason longer than the 123 bytes a close frame has room for.
    #[error("a close reason of {len} bytes is longer than 123")]
    CloseReasonTooLong {
        /// Its length.
        len: usize,
    },
}

impl WsError {
    /// The close code that reports this error to the peer: 1007 for invalid UTF-8, 1009
    /// for a message too big, 1002 for the other violations.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::InvalidUtf8 | WsError::InvalidCloseReason => close_code::INVALID_PAYLOAD,
            WsError::MessageTooBig { .. } => close_code::MESSAGE_TOO_BIG,
            _ => close_code::PROTOCOL_ERROR,
        }
    }
}

/// The client's masking keys: a keyed generator (SHA-1 of a 16-byte seed and a counter),
/// so that keys cannot be guessed by anyone who does not know the seed, as RFC 6455 asks,
/// and a run can be replayed from its seed.
///
/// The caller draws the seed from its own randomness (the operating system's, in a
/// runtime) once per connection; the core draws none.
#[derive(Clone)]
pub struct Masks {
    seed: [u8; 16],
    counter: u64,
    pool: [u8; 20],
    used: usize,
}

impl Masks {
    /// Keys from a seed.
    pub fn new(seed: [u8; 16]) -> Self {
        Masks { seed, counter: 0, pool: [0; 20], used: 20 }
    }

    /// The next masking key.
    pub fn next_key(&mut self) -> [u8; 4] {
        if self.used == 20 {
            let mut h = sha1::Sha1::new();
            h.update(&self.seed);
            h.update(&self.counter.to_le_bytes());
            self.pool = h.finish();
            self.counter = self.counter.wrapping_add(1);
            self.used = 0;
        }
        let key = [self.pool[self.used], self.pool[self.used + 1], self.pool[self.used + 2], self.pool[self.used + 3]];
        self.used += 4;
        key
    }
}

impl fmt::Debug for Masks {
    /// Never the seed: it would let a reader predict the keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masks").finish_non_exhaustive()
    }
}
