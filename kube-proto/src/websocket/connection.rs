//! One end of a WebSocket connection: the decoder, the pings answered, the closing handshake,
//! and the bytes waiting to be written.

use super::frame::{close_payload, encode_parts};
use super::{Decoder, Masks, Message, Opcode, Role, WsError};

/// One end of a WebSocket connection, after the handshake, with no IO.
///
/// Inputs: [`receive`](Self::receive) with the bytes read from the connection. Commands:
/// [`send_binary`](Self::send_binary), [`send_text`](Self::send_text), [`ping`](Self::ping),
/// [`close`](Self::close). Output: [`poll_transmit`](Self::poll_transmit), the bytes to
/// write, which also hold what the connection answers by itself:
///
/// - a ping is answered with a pong carrying the same data (until this end has sent a close);
/// - a close is echoed with its status code, unless this end sent one first; once both
///   have been sent the connection is over ([`is_closed`](Self::is_closed)) and the caller
///   closes the byte stream after writing what is queued;
/// - a protocol violation queues a close with the matching code (1002, 1007 or 1009), so
///   that the peer learns why, then the error is returned, and returned again by later calls.
///
/// A client masks every frame with a key from its [`Masks`]; a server masks none.
#[derive(Debug, Clone)]
pub struct WebSocket {
    role: Role,
    decoder: Decoder,
    masks: Option<Masks>,
    out: Vec<u8>,
    close_sent: bool,
    close_received: bool,
}

impl WebSocket {
    /// The client end, masking with `masks`, accepting messages up to `max_message` bytes.
    pub fn client(masks: Masks, max_message: usize) -> Self {
        WebSocket::new(Role::Client, Some(masks), max_message)
    }

    /// The server end (for test servers and the fake API server), accepting messages up to
    /// `max_message` bytes.
    pub fn server(max_message: usize) -> Self {
        WebSocket::new(Role::Server, None, max_message)
    }

    fn new(role: Role, masks: Option<Masks>, max_message: usize) -> Self {
        WebSocket {
            role,
            decoder: Decoder::new(role, max_message),
            masks,
            out: Vec::new(),
            close_sent: false,
            close_received: false,
        }
    }

    /// Which end this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Decodes from the front of `input`, advancing it: the next message, or `None` once all
    /// of `input` has been taken in. Pings are answered and a close echoed (see the type's
    /// docs) before they are returned; the caller need not act on them.
    pub fn receive(&mut self, input: &mut &[u8]) -> Result<Option<Message>, WsError> {
        match self.decoder.decode(input) {
            Ok(Some(Message::Ping(data))) => {
                if !self.close_sent {
                    self.queue(Opcode::Pong, &[&data])?;
                }
                Ok(Some(Message::Ping(data)))
            }
            Ok(Some(Message::Close(frame))) => {
                self.close_received = true;
                if !self.close_sent {
                    let payload = match &frame {
                        Some(f) => close_payload(f.code, "")?,
                        None => Vec::new(),
                    };
                    self.queue(Opcode::Close, &[&payload])?;
                    self.close_sent = true;
                }
                Ok(Some(Message::Close(frame)))
            }
            Err(e) => {
                if !self.close_sent {
                    let reason = truncate(&e.to_string(), 123).to_owned();
                    if let Ok(payload) = close_payload(e.close_code(), &reason) {
                        let _ = self.queue(Opcode::Close, &[&payload]);
                    }
                    self.close_sent = true;
                }
                Err(e)
            }
            other => other,
        }
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), WsError> {
        self.send_binary_parts(&[data])
    }

    /// Queues a binary message given in parts (a channel byte and its data), copied once.
    pub fn send_binary_parts(&mut self, parts: &[&[u8]]) -> Result<(), WsError> {
        self.check_open()?;
        self.queue(Opcode::Binary, parts)
    }

    /// Queues a text message.
    pub fn send_text(&mut self, text: &str) -> Result<(), WsError> {
        self.check_open()?;
        self.queue(Opcode::Text, &[text.as_bytes()])
    }

    /// Queues a ping with up to 125 bytes of data (the peer answers with a pong carrying it:
    /// a heartbeat).
    pub fn ping(&mut self, data: &[u8]) -> Result<(), WsError> {
        self.check_open()?;
        self.queue(Opcode::Ping, &[data])
    }

    /// Queues a close frame with a status code (see [`close_code`](super::close_code)) and a
    /// reason of at most 123 bytes. Nothing can be sent after it; a second close does nothing.
    pub fn close(&mut self, code: u16, reason: &str) -> Result<(), WsError> {
        if self.close_sent {
            return Ok(());
        }
        let payload = close_payload(code, reason)?;
        self.queue(Opcode::Close, &[&payload])?;
        self.close_sent = true;
        Ok(())
    }

    /// The bytes to write to the connection, if any, in order; taking them empties the queue.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.out.is_empty() { None } else { Some(std::mem::take(&mut self.out)) }
    }

    /// How many bytes wait to be written (to hold back new data while the connection is slow).
    pub fn pending_transmit(&self) -> usize {
        self.out.len()
    }

    /// Whether this end sent a close frame.
    pub fn is_close_sent(&self) -> bool {
        self.close_sent
    }

    /// Whether the peer's close frame arrived.
    pub fn is_close_received(&self) -> bool {
        self.close_received
    }

    /// Whether both close frames were sent: the connection is over once the queue is written.
    pub fn is_closed(&self) -> bool {
        self.close_sent && self.close_received
    }

    /// Whether part of a frame or message is buffered (a byte stream ending now ends
    /// mid-frame).
    pub fn in_progress(&self) -> bool {
        self.decoder.in_progress()
    }

    fn check_open(&self) -> Result<(), WsError> {
        if self.close_sent { Err(WsError::Closed) } else { Ok(()) }
    }

    fn queue(&mut self, opcode: Opcode, parts: &[&[u8]]) -> Result<(), WsError> {
        let mask = self.masks.as_mut().map(Masks::next_key);
        encode_parts(&mut self.out, true, opcode, parts, mask)
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
