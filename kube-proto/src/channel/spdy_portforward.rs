//! Port-forward over SPDY (`portforward.k8s.io`), the protocol kubectl speaks: per port a pair
//! of streams, an error stream and a data stream, tied by a request id; directly after an HTTP
//! upgrade, or tunneled in a WebSocket.

use std::collections::{BTreeMap, VecDeque};

use super::portforward::{MAX_PORTS, PortForwardError, PortForwardEvent};
use crate::spdy::{Role, SpdyConnection, SpdyError, SpdyEvent, status};
use crate::websocket::{Masks, Message, WebSocket, WsError, close_code};

/// The stream headers of the protocol.
pub mod headers {
    /// Which stream of a pair: [`DATA`] or [`ERROR`].
    pub const STREAM_TYPE: &str = "streamtype";
    /// The pod's port, in decimal.
    pub const PORT: &str = "port";
    /// Ties a data stream to its error stream.
    pub const REQUEST_ID: &str = "requestid";
    /// The data stream's type.
    pub const DATA: &str = "data";
    /// The error stream's type.
    pub const ERROR: &str = "error";
}

/// What a stream of this session carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carries {
    Data(usize),
    Error(usize),
}

/// The client end of a SPDY port-forward: the same inputs, commands and outputs as
/// [`PortForwardSession`](super::PortForwardSession), over `portforward.k8s.io`.
///
/// For the `i`-th port, the session opens an error stream (closed on this side at once: only
/// the kubelet writes to it) and a data stream, both with the headers `port` and
/// `requestid: i`, as kubectl does. Unlike the WebSocket protocol, a port can be half-closed
/// ([`finish`](Self::finish)), and the pod's side closing shows as
/// [`PortForwardEvent::Finished`].
///
/// [`tunneled`](Self::tunneled) carries the same bytes in binary WebSocket messages (subprotocol
/// [`PORTFORWARD_TUNNEL_PROTOCOL`](crate::spdy::PORTFORWARD_TUNNEL_PROTOCOL), Kubernetes 1.31
/// and later).
///
/// ```
/// use kube_proto::channel::{PortForwardEvent, SpdyPortForwardSession};
/// use kube_proto::spdy::{Role, SpdyConnection, SpdyEvent};
///
/// let mut client = SpdyPortForwardSession::new(&[8080]).unwrap();
/// let mut server = SpdyConnection::new(Role::Server);
/// while let Some(bytes) = client.poll_transmit() {
///     server.handle_bytes(&bytes).unwrap();
/// }
/// // The server sees the error stream, then the data stream.
/// let mut data_stream = None;
/// while let Some(event) = server.poll_event() {
///     if let SpdyEvent::Opened { stream, headers, .. } = event {
///         server.reply(stream, &[], false).unwrap();
///         if headers.iter().any(|(k, v)| k == "streamtype" && v == "data") {
///             data_stream = Some(stream);
///         }
///     }
/// }
/// server.write(data_stream.unwrap(), b"hello").unwrap();
/// while let Some(bytes) = server.poll_transmit() {
///     client.handle_bytes(&bytes).unwrap();
/// }
/// let Some(PortForwardEvent::Data { port: 8080, data, .. }) = client.poll_event() else { panic!() };
/// assert_eq!(data, b"hello");
/// ```
#[derive(Debug, Clone)]
pub struct SpdyPortForwardSession {
    ports: Vec<u16>,
    conn: SpdyConnection,
    tunnel: Option<WebSocket>,
    streams: BTreeMap<u32, Carries>,
    /// Per port: its data stream, and whether the server replied to it.
    data: Vec<(u32, bool)>,
    events: VecDeque<PortForwardEvent>,
    failed: Option<PortForwardError>,
    /// The tunnel's close, once the server's arrived or the stream ended after this end's.
    tunnel_closed: bool,
}

impl SpdyPortForwardSession {
    /// A session for these ports, directly on the upgraded connection.
    pub fn new(ports: &[u16]) -> Result<Self, PortForwardError> {
        SpdyPortForwardSession::start(ports, None)
    }

    /// A session for these ports inside a WebSocket (client side, masking with `masks`,
    /// accepting messages up to `max_message`).
    pub fn tunneled(ports: &[u16], masks: Masks, max_message: usize) -> Result<Self, PortForwardError> {
        SpdyPortForwardSession::start(ports, Some(WebSocket::client(masks, max_message)))
    }

    fn start(ports: &[u16], tunnel: Option<WebSocket>) -> Result<Self, PortForwardError> {
        if ports.is_empty() {
            return Err(PortForwardError::NoPorts);
        }
        if ports.len() > MAX_PORTS {
            return Err(PortForwardError::TooManyPorts { count: ports.len() });
        }
        let mut session = SpdyPortForwardSession {
            ports: ports.to_vec(),
            conn: SpdyConnection::new(Role::Client),
            tunnel,
            streams: BTreeMap::new(),
            data: Vec::new(),
            events: VecDeque::new(),
            failed: None,
            tunnel_closed: false,
        };
        for (index, port) in ports.iter().enumerate() {
            let (port, id) = (port.to_string(), index.to_string());
            let pair = |kind| {
                [(headers::STREAM_TYPE, kind), (headers::PORT, port.as_str()), (headers::REQUEST_ID, id.as_str())]
            };
            let error = session.conn.open(&pair(headers::ERROR), true).map_err(PortForwardError::Spdy)?;
            let data = session.conn.open(&pair(headers::DATA), false).map_err(PortForwardError::Spdy)?;
            session.streams.insert(error, Carries::Error(index));
            session.streams.insert(data, Carries::Data(index));
            session.data.push((data, false));
        }
        Ok(session)
    }

    /// The ports forwarded, in order.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// Whether the server accepted the data stream of the port at `index`.
    pub fn is_open(&self, index: usize) -> bool {
        self.data.get(index).is_some_and(|(_, replied)| *replied)
    }

    // ---- inputs ----

    /// Takes in bytes read from the connection (any chunking).
    pub fn handle_bytes(&mut self, mut bytes: &[u8]) -> Result<(), PortForwardError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let result = match &mut self.tunnel {
            None => self.conn.handle_bytes(bytes).map_err(PortForwardError::Spdy),
            Some(_) => loop {
                let ws = self.tunnel.as_mut().expect("a tunnel");
                match ws.receive(&mut bytes) {
                    Ok(None) => break Ok(()),
                    Ok(Some(Message::Binary(data))) => {
                        if let Err(e) = self.conn.handle_bytes(&data) {
                            break Err(PortForwardError::Spdy(e));
                        }
                    }
                    Ok(Some(Message::Text(_))) => break Err(PortForwardError::TextMessage),
                    Ok(Some(Message::Ping(_) | Message::Pong(_))) => {}
                    Ok(Some(Message::Close(frame))) => {
                        self.tunnel_closed = true;
                        self.events.push_back(PortForwardEvent::Closed(frame));
                    }
                    Err(e) => break Err(PortForwardError::WebSocket(e)),
                }
            },
        };
        self.drain_connection();
        self.fail_on(result)
    }

    /// The byte stream ended (a read returned 0). Fine after a `GOAWAY` either way, with
    /// every port closed by the server, or after the tunnel's close; otherwise
    /// [`PortForwardError::Spdy`] with [`SpdyError::ConnectionLost`].
    pub fn handle_eof(&mut self) -> Result<(), PortForwardError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if let Some(ws) = &self.tunnel {
            if self.tunnel_closed || ws.is_close_sent() {
                self.tunnel_closed = true;
                return Ok(());
            }
            if ws.in_progress() {
                return self.fail_on(Err(PortForwardError::ConnectionLost { mid_frame: true }));
            }
        }
        let result = self.conn.handle_eof().map_err(PortForwardError::Spdy);
        self.drain_connection();
        self.fail_on(result)
    }

    // ---- commands ----

    /// Queues bytes for the port at `index` (nothing for an empty slice).
    pub fn write(&mut self, index: usize, data: &[u8]) -> Result<(), PortForwardError> {
        let stream = self.data_stream(index)?;
        if self.failed.is_some() {
            return Err(PortForwardError::Closed);
        }
        self.conn.write(stream, data).map_err(send_error)?;
        self.flush_tunnel()
    }

    /// Closes this end's side of the port at `index`: the pod's connection sees the end of
    /// its input, and may still answer. Again does nothing.
    pub fn finish(&mut self, index: usize) -> Result<(), PortForwardError> {
        let stream = self.data_stream(index)?;
        if !self.conn.is_open(stream) {
            return Ok(());
        }
        self.conn.finish(stream).map_err(send_error)?;
        self.flush_tunnel()
    }

    /// Queues a ping (a heartbeat).
    pub fn ping(&mut self, _data: &[u8]) -> Result<(), PortForwardError> {
        if self.failed.is_some() {
            return Err(PortForwardError::Closed);
        }
        self.conn.ping().map_err(send_error)?;
        self.flush_tunnel()
    }

    /// Ends the session: every open port's side is closed, then `GOAWAY` (and the tunnel's
    /// close). A second call does nothing.
    pub fn close(&mut self) -> Result<(), PortForwardError> {
        if !self.conn.is_closed() {
            for index in 0..self.data.len() {
                let stream = self.data[index].0;
                if self.conn.is_open(stream) {
                    let _ = self.conn.finish(stream);
                }
            }
            self.conn.close();
        }
        self.flush_tunnel()?;
        if let Some(ws) = &mut self.tunnel {
            ws.close(close_code::NORMAL, "").map_err(PortForwardError::WebSocket)?;
        }
        Ok(())
    }

    // ---- outputs ----

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<PortForwardEvent> {
        self.events.pop_front()
    }

    /// The bytes to write to the connection, if any, in order.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        match &mut self.tunnel {
            None => self.conn.poll_transmit(),
            Some(_) => {
                let _ = self.flush_tunnel();
                self.tunnel.as_mut().and_then(WebSocket::poll_transmit)
            }
        }
    }

    /// How many bytes wait to be written.
    pub fn pending_transmit(&self) -> usize {
        self.conn.pending_transmit() + self.tunnel.as_ref().map_or(0, WebSocket::pending_transmit)
    }

    /// Whether the session is over: this end's `GOAWAY` sent, the stream ended, the tunnel
    /// closed, or the session failed.
    pub fn is_closed(&self) -> bool {
        self.failed.is_some()
            || self.tunnel_closed
            || (self.conn.is_closed() && self.tunnel.as_ref().is_none_or(WebSocket::is_close_sent))
    }

    /// Whether every port was closed by the server (or reset).
    pub fn all_finished(&self) -> bool {
        self.data.iter().all(|(stream, _)| !self.conn.is_open(*stream))
    }

    fn data_stream(&self, index: usize) -> Result<u32, PortForwardError> {
        self.data.get(index).map(|(s, _)| *s).ok_or(PortForwardError::NoSuchPort { index, count: self.ports.len() })
    }

    /// Moves what the SPDY connection queued into the tunnel, if there is one.
    fn flush_tunnel(&mut self) -> Result<(), PortForwardError> {
        let Some(ws) = &mut self.tunnel else { return Ok(()) };
        while let Some(bytes) = self.conn.poll_transmit() {
            if ws.is_close_sent() {
                continue;
            }
            ws.send_binary(&bytes).map_err(PortForwardError::WebSocket)?;
        }
        Ok(())
    }

    fn fail_on(&mut self, result: Result<(), PortForwardError>) -> Result<(), PortForwardError> {
        if let Err(e) = &result {
            self.failed = Some(e.clone());
            if self.tunnel.is_some() {
                let _ = self.flush_tunnel_after_failure();
            }
        }
        result
    }

    fn flush_tunnel_after_failure(&mut self) -> Result<(), WsError> {
        let Some(ws) = &mut self.tunnel else { return Ok(()) };
        while let Some(bytes) = self.conn.poll_transmit() {
            ws.send_binary(&bytes)?;
        }
        ws.close(close_code::PROTOCOL_ERROR, "")
    }

    fn drain_connection(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                SpdyEvent::Opened { stream, .. } => {
                    // The server opens no streams in this protocol.
                    let _ = self.conn.reset(stream, status::REFUSED_STREAM);
                }
                SpdyEvent::Replied { stream, .. } => {
                    if let Some(Carries::Data(index)) = self.streams.get(&stream) {
                        self.data[*index].1 = true;
                    }
                }
                SpdyEvent::Data { stream, data } => match self.streams.get(&stream) {
                    Some(Carries::Data(index)) => {
                        let (index, port) = (*index, self.ports[*index]);
                        self.events.push_back(PortForwardEvent::Data { index, port, data });
                    }
                    Some(Carries::Error(index)) => {
                        let (index, port) = (*index, self.ports[*index]);
                        let message = String::from_utf8_lossy(&data).into_owned();
                        self.events.push_back(PortForwardEvent::Error { index, port, message });
                    }
                    None => {}
                },
                SpdyEvent::Finished { stream } => {
                    if let Some(Carries::Data(index)) = self.streams.get(&stream) {
                        let (index, port) = (*index, self.ports[*index]);
                        self.events.push_back(PortForwardEvent::Finished { index, port });
                    }
                }
                SpdyEvent::Reset { stream, status } => {
                    if let Some(Carries::Data(index)) = self.streams.get(&stream) {
                        let (index, port) = (*index, self.ports[*index]);
                        let message = format!("the server reset the port's stream (SPDY status {status})");
                        self.events.push_back(PortForwardEvent::Error { index, port, message });
                        self.events.push_back(PortForwardEvent::Finished { index, port });
                    }
                }
                SpdyEvent::GoAway { .. } => {}
            }
        }
        let _ = self.flush_tunnel();
    }
}

fn send_error(e: SpdyError) -> PortForwardError {
    match e {
        SpdyError::Closed => PortForwardError::Closed,
        other => PortForwardError::Spdy(other),
    }
}
