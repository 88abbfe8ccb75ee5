//! The server's end of a port-forward over SPDY (`portforward.k8s.io`), directly after a SPDY
//! upgrade or tunneled in a WebSocket, as the kubelet (behind the API server) speaks it: the
//! client opens an error stream and a data stream per connection to a port, tied by a
//! `requestid` header and naming the port in a `port` header; the kubelet replies to each, and
//! once both of a pair are there connects to the port in the pod.

use std::collections::BTreeMap;

use kube_proto::channel::DEFAULT_MAX_MESSAGE;
use kube_proto::channel::spdy_portforward::headers;
use kube_proto::spdy::{Role, SpdyConnection, SpdyEvent, status};
use kube_proto::websocket::{Message, WebSocket, close_code};

use crate::exec::{PortHandler, PortInput, PortIo, PortOutput, PortScript};
use crate::session::SessionError;

/// One connection to a port: its two streams and its listener.
struct Pair {
    port: u16,
    data: Option<u32>,
    error: Option<u32>,
    handler: Option<Box<dyn PortHandler>>,
    io: PortIo,
    started: bool,
    ended: bool,
}

/// The state of a SPDY port-forward, driven by [`FakeSession`](crate::session::FakeSession).
pub(crate) struct SpdyPortForward {
    conn: SpdyConnection,
    tunnel: Option<WebSocket>,
    sandbox: String,
    netns: String,
    listeners: BTreeMap<u16, PortScript>,
    pairs: BTreeMap<String, Pair>,
    by_stream: BTreeMap<u32, String>,
    over: bool,
}

impl SpdyPortForward {
    /// A session whose pod listens with `listeners`; `tunneled` inside a WebSocket.
    pub(crate) fn new(
        sandbox: String,
        netns: String,
        listeners: BTreeMap<u16, PortScript>,
        tunneled: bool,
    ) -> SpdyPortForward {
        SpdyPortForward {
            conn: SpdyConnection::new(Role::Server),
            tunnel: tunneled.then(|| WebSocket::server(DEFAULT_MAX_MESSAGE)),
            sandbox,
            netns,
            listeners,
            pairs: BTreeMap::new(),
            by_stream: BTreeMap::new(),
            over: false,
        }
    }

    /// Takes in the client's bytes. A protocol error ends the session (the kubelet drops the
    /// connection), and is returned.
    pub(crate) fn handle_client_bytes(&mut self, mut bytes: &[u8]) -> Result<(), SessionError> {
        if self.over {
            return Ok(());
        }
        let result = match &mut self.tunnel {
            None => self.conn.handle_bytes(bytes).map_err(SessionError::from),
            Some(ws) => loop {
                match ws.receive(&mut bytes) {
                    Ok(None) => break Ok(()),
                    Ok(Some(Message::Binary(data))) => {
                        if let Err(e) = self.conn.handle_bytes(&data) {
                            break Err(SessionError::from(e));
                        }
                    }
                    Ok(Some(Message::Close(_))) => {
                        self.over = true;
                        break Ok(());
                    }
                    Ok(Some(_)) => {}
                    Err(e) => break Err(SessionError::WebSocket(e)),
                }
            },
        };
        if result.is_err() {
            self.over = true;
            if let Some(ws) = &mut self.tunnel {
                let _ = ws.close(close_code::PROTOCOL_ERROR, "");
            }
        }
        self.on_events();
        self.flush();
        result
    }

    /// The client's stream ended: every connection to the pod ends.
    pub(crate) fn handle_client_eof(&mut self) {
        self.over = true;
    }

    pub(crate) fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.flush();
        match &mut self.tunnel {
            None => self.conn.poll_transmit(),
            Some(ws) => ws.poll_transmit(),
        }
    }

    pub(crate) fn pending_transmit(&self) -> usize {
        self.conn.pending_transmit() + self.tunnel.as_ref().map_or(0, WebSocket::pending_transmit)
    }

    /// Over once the client said `GOAWAY`, closed the tunnel, or its stream ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.over || self.conn.is_going_away() || self.conn.is_closed()
    }

    fn flush(&mut self) {
        let Some(ws) = &mut self.tunnel else { return };
        while let Some(bytes) = self.conn.poll_transmit() {
            if ws.is_close_sent() {
                continue;
            }
            let _ = ws.send_binary(&bytes);
        }
        if self.conn.is_going_away() && !ws.is_close_sent() {
            let _ = ws.close(close_code::NORMAL, "");
        }
    }

    fn on_events(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                SpdyEvent::Opened { stream, headers: hs, .. } => self.opened(stream, &hs),
                SpdyEvent::Data { stream, data } => {
                    if let Some(id) = self.by_stream.get(&stream).cloned()
                        && self.pairs.get(&id).is_some_and(|p| p.data == Some(stream) && p.started)
                    {
                        self.feed(&id, PortInput::Data(&data));
                    }
                }
                SpdyEvent::Finished { stream } => {
                    if let Some(id) = self.by_stream.get(&stream).cloned()
                        && self.pairs.get(&id).is_some_and(|p| p.data == Some(stream) && p.started)
                    {
                        self.feed(&id, PortInput::End);
                    }
                }
                SpdyEvent::Reset { stream, .. } => {
                    if let Some(id) = self.by_stream.remove(&stream)
                        && let Some(pair) = self.pairs.get_mut(&id)
                    {
                        pair.ended = true;
                        pair.handler = None;
                    }
                }
                SpdyEvent::Replied { .. } | SpdyEvent::GoAway { .. } => {}
            }
        }
    }

    fn opened(&mut self, stream: u32, hs: &[(String, String)]) {
        let get = |name: &str| hs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let port = get(headers::PORT).and_then(|p| p.parse::<u16>().ok()).filter(|&p| p != 0);
        let (Some(port), Some(id), Some(kind)) = (port, get(headers::REQUEST_ID), get(headers::STREAM_TYPE)) else {
            // The kubelet refuses a stream it cannot place.
            let _ = self.conn.reset(stream, status::PROTOCOL_ERROR);
            return;
        };
        let id = id.to_owned();
        let _ = self.conn.reply(stream, &[], false);
        let pair = self.pairs.entry(id.clone()).or_insert_with(|| Pair {
            port,
            data: None,
            error: None,
            handler: None,
            io: PortIo::default(),
            started: false,
            ended: false,
        });
        match kind {
            headers::DATA if pair.data.is_none() => pair.data = Some(stream),
            headers::ERROR if pair.error.is_none() => pair.error = Some(stream),
            _ => {
                let _ = self.conn.reset(stream, status::PROTOCOL_ERROR);
                return;
            }
        }
        self.by_stream.insert(stream, id.clone());
        if pair.data.is_some() && pair.error.is_some() && !pair.started {
            pair.started = true;
            match self.listeners.get(&port) {
                Some(script) => {
                    pair.handler = Some(script.connect(port));
                    self.feed(&id, PortInput::Start);
                }
                None => {
                    let (netns, sandbox) = (&self.netns, &self.sandbox);
                    pair.io.fail(crate::session::refused_message(port, netns, sandbox));
                    self.drain(&id);
                }
            }
        }
    }

    fn feed(&mut self, id: &str, input: PortInput<'_>) {
        let Some(pair) = self.pairs.get_mut(id) else { return };
        if pair.ended {
            return;
        }
        if let Some(handler) = &mut pair.handler {
            handler.handle(input, &mut pair.io);
        }
        self.drain(id);
    }

    fn drain(&mut self, id: &str) {
        let Some(pair) = self.pairs.get_mut(id) else { return };
        let outputs: Vec<PortOutput> = pair.io.drain().collect();
        let (port, data, error) = (pair.port, pair.data, pair.error);
        for output in outputs {
            match output {
                PortOutput::Data(bytes) => {
                    if let Some(s) = data {
                        let _ = self.conn.write(s, &bytes);
                    }
                }
                PortOutput::Close => self.end(id),
                PortOutput::Fail(message) => {
                    if let Some(s) = error {
                        let text = crate::session::forwarding_error(port, &self.sandbox, &message);
                        let _ = self.conn.write(s, text.as_bytes());
                    }
                    self.end(id);
                }
            }
        }
    }

    /// The pod's side of a connection ended: both streams are closed on this side.
    fn end(&mut self, id: &str) {
        let Some(pair) = self.pairs.get_mut(id) else { return };
        pair.ended = true;
        pair.handler = None;
        for stream in [pair.data, pair.error].into_iter().flatten() {
            if self.conn.is_open(stream) {
                let _ = self.conn.finish(stream);
            }
        }
    }
}
