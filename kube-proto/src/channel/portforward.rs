//! Port-forward over one WebSocket connection: a data and an error channel per port.

use std::collections::VecDeque;
use std::fmt;

use super::DEFAULT_MAX_MESSAGE;
use crate::websocket::{CloseFrame, Masks, Message, WebSocket, WsError, close_code};

/// The most ports one connection can forward: two channels each, numbered by one byte.
pub const MAX_PORTS: usize = 128;

/// What a port-forward session received.
#[derive(Clone, PartialEq, Eq)]
pub enum PortForwardEvent {
    /// Bytes from a port (never empty).
    Data {
        /// The port's place in the list requested.
        index: usize,
        /// The port.
        port: u16,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The kubelet could not forward a port (nothing listens on it, the pod is gone, ...):
    /// the port is unusable from now on. The text as the kubelet wrote it.
    Error {
        /// The port's place in the list requested.
        index: usize,
        /// The port.
        port: u16,
        /// Why.
        message: String,
    },
    /// The pod's side of a port's connection ended: no more data comes from it (SPDY
    /// port-forward only; the WebSocket protocol cannot say so).
    Finished {
        /// The port's place in the list requested.
        index: usize,
        /// The port.
        port: u16,
    },
    /// The server closed the connection (its close was echoed).
    Closed(Option<CloseFrame>),
}

impl fmt::Debug for PortForwardEvent {
    /// Lengths only for data: a port carries anything.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortForwardEvent::Data { index, port, data } => {
                write!(f, "Data {{ index: {index}, port: {port}, {} bytes }}", data.len())
            }
            PortForwardEvent::Error { index, port, message } => {
                f.debug_struct("Error").field("index", index).field("port", port).field("message", message).finish()
            }
            PortForwardEvent::Finished { index, port } => {
                f.debug_struct("Finished").field("index", index).field("port", port).finish()
            }
            PortForwardEvent::Closed(c) => f.debug_tuple("Closed").field(c).finish(),
        }
    }
}

/// A port-forward session failed, or a write could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PortForwardError {
    /// No port was given.
    #[error("port-forward needs at least one port")]
    NoPorts,
    /// More than [`MAX_PORTS`] ports.
    #[error("{count} ports requested; one connection forwards at most 128")]
    TooManyPorts {
        /// How many.
        count: usize,
    },
    /// A write to a port index that was not requested.
    #[error("there is no port at index {index} ({count} ports forwarded)")]
    NoSuchPort {
        /// The index given.
        index: usize,
        /// How many ports are forwarded.
        count: usize,
    },
    /// The server broke the WebSocket protocol.
    #[error("WebSocket protocol error: {0}")]
    WebSocket(WsError),
    /// The SPDY connection failed (port-forward over SPDY).
    #[error("SPDY: {0}")]
    Spdy(crate::spdy::SpdyError),
    /// A text message: the channel protocol carries only binary ones.
    #[error("the server sent a text message; the channel protocol uses binary messages only")]
    TextMessage,
    /// A binary message without its channel byte.
    #[error("the server sent an empty message, without a channel number")]
    EmptyMessage,
    /// A message on a channel of no requested port.
    #[error("the server sent a message on channel {channel}, which belongs to no requested port")]
    UnknownChannel {
        /// The channel.
        channel: u8,
    },
    /// A channel's first message is too short to hold a port number.
    #[error("the first message on channel {channel} has {len} bytes, too few for a port number")]
    MissingPort {
        /// The channel.
        channel: u8,
        /// Its length, without the channel byte.
        len: usize,
    },
    /// A channel's first message names another port than the one requested at its place.
    #[error("channel {channel} is for port {expected}, but the server says port {found}")]
    PortMismatch {
        /// The channel.
        channel: u8,
        /// The port requested.
        expected: u16,
        /// The port the server named.
        found: u16,
    },
    /// A write after the connection began closing.
    #[error("the connection is closing: nothing more can be sent")]
    Closed,
    /// The byte stream ended before the server's close frame.
    #[error("the connection ended without a WebSocket close{}", if *mid_frame { ", in the middle of a frame" } else { "" })]
    ConnectionLost {
        /// Whether it ended inside a frame.
        mid_frame: bool,
    },
}

/// The client end of a port-forward connection, after the WebSocket handshake (subprotocol
/// `v4.channel.k8s.io`): bytes in, per-port events and bytes to write out, as
/// [`ExecSession`](super::ExecSession) (the module docs show the loop).
///
/// The `i`-th port requested uses channel `2i` for data, both ways, and `2i+1` for the
/// kubelet's errors. The server's first message on each channel is the port number (two
/// bytes, little-endian); it is checked against the request and not passed on (bytes after
/// it in that message are). A port cannot be half-closed on this protocol: to end the
/// streams, [`close`](Self::close) the connection.
///
/// ```
/// use kube_proto::channel::{PortForwardEvent, PortForwardSession};
/// use kube_proto::websocket::{Masks, Opcode, encode_frame};
///
/// let mut pf = PortForwardSession::new(&[80, 8443], Masks::new([3; 16])).unwrap();
/// pf.write(1, b"GET / HTTP/1.0\r\n\r\n").unwrap();
/// assert!(pf.poll_transmit().is_some());
///
/// let mut received = Vec::new();
/// for message in [&[0u8, 80, 0][..], &[1, 80, 0], &[2, 0xFB, 0x20], &[3, 0xFB, 0x20], b"\x02HTTP/1.0 200 OK"] {
///     encode_frame(&mut received, true, Opcode::Binary, message, None).unwrap();
/// }
/// pf.handle_bytes(&received).unwrap();
/// let Some(PortForwardEvent::Data { index: 1, port: 8443, data }) = pf.poll_event() else { panic!() };
/// assert_eq!(data, b"HTTP/1.0 200 OK");
/// ```
#[derive(Debug, Clone)]
pub struct PortForwardSession {
    ports: Vec<u16>,
    ws: WebSocket,
    /// Per channel: whether its port number arrived.
    started: Vec<bool>,
    events: VecDeque<PortForwardEvent>,
    close: Option<Option<CloseFrame>>,
    failed: Option<PortForwardError>,
}

impl PortForwardSession {
    /// A session for these ports, in the order of the request, masking with `masks`,
    /// accepting messages up to [`DEFAULT_MAX_MESSAGE`].
    pub fn new(ports: &[u16], masks: Masks) -> Result<Self, PortForwardError> {
        PortForwardSession::with_max_message(ports, masks, DEFAULT_MAX_MESSAGE)
    }

    /// [`new`](Self::new) with another limit on a message's size.
    pub fn with_max_message(ports: &[u16], masks: Masks, max_message: usize) -> Result<Self, PortForwardError> {
        if ports.is_empty() {
            return Err(PortForwardError::NoPorts);
        }
        if ports.len() > MAX_PORTS {
            return Err(PortForwardError::TooManyPorts { count: ports.len() });
        }
        Ok(PortForwardSession {
            ports: ports.to_vec(),
            ws: WebSocket::client(masks, max_message),
            started: vec![false; 2 * ports.len()],
            events: VecDeque::new(),
            close: None,
            failed: None,
        })
    }

    /// The ports forwarded, in order.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Whether the server has opened the port at `index` (its data channel's port number
    /// arrived).
    pub fn is_open(&self, index: usize) -> bool {
        self.started.get(2 * index).copied().unwrap_or(false)
    }

    // ---- inputs ----

    /// Takes in bytes read from the connection, as [`ExecSession::handle_bytes`](super::ExecSession::handle_bytes).
    pub fn handle_bytes(&mut self, mut bytes: &[u8]) -> Result<(), PortForwardError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        loop {
            let result = match self.ws.receive(&mut bytes) {
                Ok(None) => return Ok(()),
                Ok(Some(message)) => self.on_message(message),
                Err(e) => Err(PortForwardError::WebSocket(e)),
            };
            if let Err(e) = result {
                if !matches!(e, PortForwardError::WebSocket(_)) {
                    let _ = self.ws.close(close_code::PROTOCOL_ERROR, "");
                }
                self.failed = Some(e.clone());
                return Err(e);
            }
        }
    }

    /// The byte stream ended (a read returned 0). Fine after the server's close frame, or
    /// after this end's [`close`](Self::close); otherwise
    /// [`PortForwardError::ConnectionLost`].
    pub fn handle_eof(&mut self) -> Result<(), PortForwardError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.close.is_some() {
            return Ok(());
        }
        if self.ws.is_close_sent() {
            self.close = Some(None);
            return Ok(());
        }
        let e = PortForwardError::ConnectionLost { mid_frame: self.ws.in_progress() };
        self.failed = Some(e.clone());
        Err(e)
    }

    // ---- commands ----

    /// Queues bytes for the port at `index` (nothing for an empty slice).
    pub fn write(&mut self, index: usize, data: &[u8]) -> Result<(), PortForwardError> {
        if index >= self.ports.len() {
            return Err(PortForwardError::NoSuchPort { index, count: self.ports.len() });
        }
        if self.failed.is_some() || self.ws.is_close_sent() {
            return Err(PortForwardError::Closed);
        }
        if data.is_empty() {
            return Ok(());
        }
        // `index` < 128, so the channel fits a byte.
        let channel = (2 * index) as u8;
        self.ws.send_binary_parts(&[&[channel], data]).map_err(send_error)
    }

    /// Queues a ping (a heartbeat).
    pub fn ping(&mut self, data: &[u8]) -> Result<(), PortForwardError> {
        if self.failed.is_some() {
            return Err(PortForwardError::Closed);
        }
        self.ws.ping(data).map_err(send_error)
    }

    /// Starts closing the connection (status 1000), which ends every port's streams. A second
    /// call does nothing.
    pub fn close(&mut self) -> Result<(), PortForwardError> {
        self.ws.close(close_code::NORMAL, "").map_err(send_error)
    }

    // ---- outputs ----

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<PortForwardEvent> {
        self.events.pop_front()
    }

    /// The bytes to write to the connection, if any, in order.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.ws.poll_transmit()
    }

    /// How many bytes wait to be written.
    pub fn pending_transmit(&self) -> usize {
        self.ws.pending_transmit()
    }

    /// Whether the session is over: the server closed (its close echoed), the stream ended
    /// after this end's close, or the session failed.
    pub fn is_closed(&self) -> bool {
        self.ws.is_closed() || self.failed.is_some() || self.close.is_some()
    }

    fn on_message(&mut self, message: Message) -> Result<(), PortForwardError> {
        let mut data = match message {
            Message::Binary(data) => data,
            Message::Text(_) => return Err(PortForwardError::TextMessage),
            Message::Ping(_) | Message::Pong(_) => return Ok(()),
            Message::Close(frame) => {
                self.close = Some(frame.clone());
                self.events.push_back(PortForwardEvent::Closed(frame));
                return Ok(());
            }
        };
        let Some(&channel) = data.first() else { return Err(PortForwardError::EmptyMessage) };
        let Some(started) = self.started.get_mut(usize::from(channel)) else {
            return Err(PortForwardError::UnknownChannel { channel });
        };
        let index = usize::from(channel / 2);
        let port = self.ports[index];
        let mut skip = 1;
        if !*started {
            let [_, lo, hi, ..] = data[..] else {
                return Err(PortForwardError::MissingPort { channel, len: data.len() - 1 });
            };
            let found = u16::from_le_bytes([lo, hi]);
            if found != port {
                return Err(PortForwardError::PortMismatch { channel, expected: port, found });
            }
            *started = true;
            skip = 3;
        }
        if data.len() == skip {
            return Ok(());
        }
        data.drain(..skip);
        if channel % 2 == 0 {
            self.events.push_back(PortForwardEvent::Data { index, port, data });
        } else {
            let message = String::from_utf8_lossy(&data).into_owned();
            self.events.push_back(PortForwardEvent::Error { index, port, message });
        }
        Ok(())
    }
}

fn send_error(e: WsError) -> PortForwardError {
    match e {
        WsError::Closed => PortForwardError::Closed,
        other => PortForwardError::WebSocket(other),
    }
}
