//! The server's end of an exec, attach or port-forward connection after the WebSocket
//! handshake: a state machine with no IO that runs the scripted process or listeners and
//! frames what they write as the kubelet (and, for `v5.channel.k8s.io`, the API server's
//! stream translator) does.

use std::fmt;

use kube_proto::channel::exec::{EXIT_CODE_CAUSE, NON_ZERO_EXIT_CODE};
use kube_proto::channel::{ChannelProtocol, DEFAULT_MAX_MESSAGE, TerminalSize, channels};
use kube_proto::spdy::SpdyError;
use kube_proto::websocket::{Message, WebSocket, WsError, close_code};

use crate::exec::{ExecHandler, Input, Io, Output, PortHandler, PortInput, PortIo, PortOutput, Process};
use crate::spdy_session::SpdyPortForward;

/// The client broke the protocol of an upgraded connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The WebSocket protocol.
    #[error("WebSocket: {0}")]
    WebSocket(#[from] WsError),
    /// SPDY (port-forward over SPDY, or tunneled SPDY's WebSocket).
    #[error("SPDY: {0}")]
    Spdy(String),
}

impl From<SpdyError> for SessionError {
    fn from(e: SpdyError) -> Self {
        SessionError::Spdy(e.to_string())
    }
}

/// The server's end of an upgraded exec, attach or port-forward connection, with no IO: what
/// [`Reply::Upgrade`](crate::Reply::Upgrade) hands over once the `101` is written.
///
/// The caller (an in-process transport, a loopback test server) runs the loop a socket would:
///
/// - after the `101` head, and after every input, write what
///   [`poll_transmit`](Self::poll_transmit) gives until it gives `None` (frames, unmasked);
/// - feed what the client sends to [`handle_client_bytes`](Self::handle_client_bytes), in any
///   chunking, and the end of its stream to [`handle_client_eof`](Self::handle_client_eof);
/// - once [`is_closed`](Self::is_closed), write what is left and close the connection.
///
/// **Exec and attach.** The first message is an empty one on the first channel the client
/// reads (stdout, else stderr, else the error channel), as the kubelet sends to say the streams
/// are ready; then the process starts. Stdin (channel 0) reaches it when the client asked for
/// stdin; `v5.channel.k8s.io`'s CLOSE signal for channel 0 closes its stdin (without stdin, it
/// is closed from the start); resizes (channel 4, `{"Width":W,"Height":H}`) reach it with a
/// tty. Its stdout and stderr go out on channels 1 and 2 when the client reads them (with a
/// tty, stderr goes to stdout). When it ends, the error channel (3) says how, as the kubelet
/// writes it: `{"metadata":{},"status":"Success"}`, a `NonZeroExitCode` failure with an
/// `ExitCode` cause, or an `InternalError`; from `v4.channel.k8s.io` on as JSON, before that as
/// the failure's message only (and nothing on success). Then the server closes (1000). It
/// does not wait for the client's answering close, as the real server does not.
///
/// **Port-forward.** For the `i`-th port requested, channel `2i` carries data both ways and
/// `2i+1` the kubelet's errors; the first message on each is the port number (two bytes,
/// little-endian), sent for every port at once. A port with no listener gets the kubelet's
/// "connection refused" error at once; a listener that closes or fails ends its port. Once
/// every port has ended, the server closes (1000), as the kubelet does.
///
/// A client's close ends the process or the listeners (no status is sent): the close is
/// echoed and the session is over. A WebSocket protocol violation by the client closes the
/// connection with the matching code and is returned.
///
/// **Port-forward over SPDY** (`portforward.k8s.io` after a SPDY upgrade, or tunneled in a
/// WebSocket with `SPDY/3.1+portforward.k8s.io`), as kubectl speaks it: the client opens an
/// error stream and then a data stream per connection to a port, both naming the port and a
/// request id; the server replies to each and, once both are there, connects the port's
/// listener (data before the error stream opened is dropped; kubectl and this project's client
/// open the error stream first). A port with no listener gets the kubelet's error on the error
/// stream; a listener that closes ends both streams; the client half-closing the data stream
/// reaches the listener as [`PortInput::End`](crate::exec::PortInput::End). The session is over
/// when the client says `GOAWAY`, closes the tunnel, or its stream ends.
pub struct FakeSession {
    ws: WebSocket,
    protocol: String,
    kind: Kind,
    eof: bool,
}

enum Kind {
    Exec(Box<ExecState>),
    PortForward(PortForwardState),
    Spdy(Box<SpdyPortForward>),
}

struct ExecState {
    protocol: ChannelProtocol,
    process: Process,
    handler: Box<dyn ExecHandler>,
    io: Io,
    stdin_open: bool,
    ended: bool,
}

struct PortForwardState {
    /// The pod's sandbox id, as the kubelet's messages name the pod.
    sandbox: String,
    ports: Vec<PortSlot>,
}

struct PortSlot {
    port: u16,
    handler: Option<Box<dyn PortHandler>>,
    io: PortIo,
    ended: bool,
}

/// How a process ended, for its status.
pub(crate) enum End {
    Exit(i32),
    /// The process could not run: the runtime's message.
    Fail(String),
    /// A status made before the process ran (the `InternalError` of a failed upgrade to the
    /// kubelet): its message.
    InternalError(String),
}

impl FakeSession {
    /// An exec or attach session speaking `protocol` (its name, as answered in the handshake),
    /// running `handler`; it starts at once.
    pub(crate) fn exec(
        protocol_name: &str,
        protocol: ChannelProtocol,
        process: Process,
        handler: Box<dyn ExecHandler>,
        refused: Option<String>,
    ) -> FakeSession {
        let first = if process.stdout {
            channels::STDOUT
        } else if process.stderr {
            channels::STDERR
        } else {
            channels::ERROR
        };
        let stdin = process.stdin;
        let mut session = FakeSession {
            ws: WebSocket::server(DEFAULT_MAX_MESSAGE),
            protocol: protocol_name.to_owned(),
            kind: Kind::Exec(Box::new(ExecState {
                protocol,
                process,
                handler,
                io: Io::default(),
                stdin_open: stdin,
                ended: false,
            })),
            eof: false,
        };
        session.send(first, &[]);
        if let Some(message) = refused {
            session.end_exec(End::InternalError(message));
            return session;
        }
        session.feed(Input::Start);
        if !stdin {
            session.feed(Input::StdinClosed);
        }
        session
    }

    /// A port-forward session for these ports, each with its listener or none.
    pub(crate) fn port_forward(
        protocol_name: &str,
        sandbox: String,
        netns: String,
        ports: Vec<(u16, Option<Box<dyn PortHandler>>)>,
    ) -> FakeSession {
        let numbers: Vec<u16> = ports.iter().map(|(port, _)| *port).collect();
        let listening: Vec<bool> = ports.iter().map(|(_, handler)| handler.is_some()).collect();
        let mut session = FakeSession {
            ws: WebSocket::server(DEFAULT_MAX_MESSAGE),
            protocol: protocol_name.to_owned(),
            kind: Kind::PortForward(PortForwardState {
                sandbox: sandbox.clone(),
                ports: ports
                    .into_iter()
                    .map(|(port, handler)| PortSlot { port, handler, io: PortIo::default(), ended: false })
                    .collect(),
            }),
            eof: false,
        };
        // The port number opens each channel, for every port, before anything else.
        for (i, port) in numbers.iter().enumerate() {
            let [lo, hi] = port.to_le_bytes();
            // At most 128 ports (checked when the request was read), so channels fit a byte.
            session.send((2 * i) as u8, &[lo, hi]);
            session.send((2 * i + 1) as u8, &[lo, hi]);
        }
        for (i, (port, listening)) in numbers.into_iter().zip(listening).enumerate() {
            if listening {
                session.feed_port(i, PortInput::Start);
            } else if let Kind::PortForward(pf) = &mut session.kind {
                // Nothing listens: the runtime cannot connect inside the pod's network namespace.
                pf.ports[i].io.fail(refused_message(port, &netns, &sandbox));
                session.drain_port(i);
            }
        }
        session.close_if_all_ports_ended();
        session
    }

    /// A port-forward over SPDY (`tunneled` in a WebSocket), the pod listening with
    /// `listeners`.
    pub(crate) fn spdy_port_forward(
        protocol_name: &str,
        sandbox: String,
        netns: String,
        listeners: std::collections::BTreeMap<u16, crate::exec::PortScript>,
        tunneled: bool,
    ) -> FakeSession {
        FakeSession {
            ws: WebSocket::server(DEFAULT_MAX_MESSAGE),
            protocol: protocol_name.to_owned(),
            kind: Kind::Spdy(Box::new(SpdyPortForward::new(sandbox, netns, listeners, tunneled))),
            eof: false,
        }
    }

    // ---- inputs ----

    /// Takes in bytes the client sent, in any chunking. After the server's close, they are
    /// ignored (the real server has dropped the connection by then).
    pub fn handle_client_bytes(&mut self, mut bytes: &[u8]) -> Result<(), SessionError> {
        if let Kind::Spdy(spdy) = &mut self.kind {
            return spdy.handle_client_bytes(bytes);
        }
        loop {
            if self.ws.is_close_sent() {
                return Ok(());
            }
            match self.ws.receive(&mut bytes) {
                Ok(None) => return Ok(()),
                Ok(Some(message)) => self.on_message(message),
                Err(e) => {
                    self.stop();
                    return Err(e.into());
                }
            }
        }
    }

    /// The client's stream ended: the process or listeners are stopped, and the session is
    /// over.
    pub fn handle_client_eof(&mut self) {
        self.eof = true;
        self.stop();
        if let Kind::Spdy(spdy) = &mut self.kind {
            spdy.handle_client_eof();
        }
    }

    // ---- outputs ----

    /// The bytes to write to the client, if any, in order; taking them empties the queue.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        match &mut self.kind {
            Kind::Spdy(spdy) => spdy.poll_transmit(),
            _ => self.ws.poll_transmit(),
        }
    }

    /// How many bytes wait to be written.
    pub fn pending_transmit(&self) -> usize {
        match &self.kind {
            Kind::Spdy(spdy) => spdy.pending_transmit(),
            _ => self.ws.pending_transmit(),
        }
    }

    /// Whether the session is over: the server sent its close (after the process ended, every
    /// port ended, or in answer to the client's), or the client's stream ended. Write what
    /// [`poll_transmit`](Self::poll_transmit) still holds, then close the connection.
    pub fn is_closed(&self) -> bool {
        match &self.kind {
            Kind::Spdy(spdy) => self.eof || spdy.is_closed(),
            _ => self.eof || self.ws.is_close_sent(),
        }
    }

    /// The subprotocol chosen in the handshake (empty when the client offered none).
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    // ---- internals ----

    fn send(&mut self, channel: u8, data: &[u8]) {
        // Fails only after the close, when nothing more is sent anyway.
        let _ = self.ws.send_binary_parts(&[&[channel], data]);
    }

    fn close(&mut self, code: u16) {
        let _ = self.ws.close(code, "");
    }

    /// The process or listeners stop with nothing more said.
    fn stop(&mut self) {
        match &mut self.kind {
            Kind::Exec(exec) => exec.ended = true,
            Kind::PortForward(pf) => pf.ports.iter_mut().for_each(|p| p.ended = true),
            Kind::Spdy(spdy) => spdy.handle_client_eof(),
        }
    }

    fn on_message(&mut self, message: Message) {
        let data = match message {
            Message::Binary(data) => data,
            // The kubelet's WebSocket reads a text message's bytes as it reads a binary one's.
            Message::Text(text) => text.into_bytes(),
            Message::Ping(_) | Message::Pong(_) => return,
            Message::Close(_) => {
                // Echoed by the WebSocket; the process or listeners end with nothing more said.
                self.stop();
                return;
            }
        };
        let Some((&channel, payload)) = data.split_first() else { return };
        match &mut self.kind {
            Kind::Exec(exec) => {
                if exec.ended {
                    return;
                }
                if channel == channels::CLOSE && exec.protocol.has_stdin_close() {
                    if payload.len() != 1 {
                        // The kubelet gives up on the connection.
                        self.stop();
                        self.close(close_code::PROTOCOL_ERROR);
                    } else if payload[0] == channels::STDIN && exec.stdin_open {
                        exec.stdin_open = false;
                        self.feed(Input::StdinClosed);
                    }
                    return;
                }
                match channel {
                    channels::STDIN if exec.stdin_open && !payload.is_empty() => self.feed(Input::Stdin(payload)),
                    channels::RESIZE if exec.process.tty && exec.protocol.has_resize() => {
                        // A malformed size is dropped, as the kubelet drops it.
                        if let Ok(size) = serde_json::from_slice::<TerminalSize>(payload) {
                            self.feed(Input::Resize(size));
                        }
                    }
                    // Channels the process does not read: dropped.
                    _ => {}
                }
            }
            Kind::Spdy(_) => {}
            Kind::PortForward(pf) => {
                let index = usize::from(channel / 2);
                // Error channels are the server's to write; unknown channels are dropped.
                if channel % 2 == 0 && index < pf.ports.len() && !pf.ports[index].ended && !payload.is_empty() {
                    self.feed_port(index, PortInput::Data(payload));
                }
            }
        }
    }

    /// Gives the process an input and sends what it wrote.
    fn feed(&mut self, input: Input<'_>) {
        let Kind::Exec(exec) = &mut self.kind else { return };
        if exec.ended {
            return;
        }
        exec.handler.handle(input, &mut exec.io);
        let outputs: Vec<Output> = exec.io.drain().collect();
        for output in outputs {
            let Kind::Exec(exec) = &self.kind else { return };
            let (tty, stdout, stderr) = (exec.process.tty, exec.process.stdout, exec.process.stderr);
            match output {
                Output::Stdout(data) if stdout => self.send(channels::STDOUT, &data),
                Output::Stderr(data) if tty && stdout => self.send(channels::STDOUT, &data),
                Output::Stderr(data) if stderr && !tty => self.send(channels::STDERR, &data),
                Output::Stdout(_) | Output::Stderr(_) => {} // a stream the client does not read
                Output::Exit(code) => self.end_exec(End::Exit(code)),
                Output::Fail(message) => self.end_exec(End::Fail(message)),
            }
        }
    }

    /// Writes how the process ended on the error channel, and closes.
    fn end_exec(&mut self, end: End) {
        let Kind::Exec(exec) = &mut self.kind else { return };
        exec.ended = true;
        let (json, message) = match end {
            End::Exit(0) => (success_json(), None),
            End::Exit(_) if exec.process.attach => (success_json(), None), // the kubelet reports an attach's end so
            End::Exit(code) => {
                let message = if exec.protocol == ChannelProtocol::V5 {
                    // The API server's translator reads the kubelet's status as client-go does
                    // ("command terminated with exit code N") and wraps that.
                    format!("command terminated with non-zero exit code: command terminated with exit code {code}")
                } else {
                    format!(
                        "command terminated with non-zero exit code: error executing command [{}], exit code {code}",
                        exec.process.command.join(" ")
                    )
                };
                let cause = Cause { reason: EXIT_CODE_CAUSE, message: &code.to_string() };
                (failure_json(&message, NON_ZERO_EXIT_CODE, &[cause], 0), Some(message))
            }
            End::Fail(runtime) => {
                let what = if exec.process.attach {
                    "error attaching to container"
                } else {
                    "error executing command in container"
                };
                internal_error(&format!("{what}: {runtime}"))
            }
            End::InternalError(error) => internal_error(&error),
        };
        if exec.protocol.has_status() {
            self.send(channels::ERROR, json.as_bytes());
        } else if let Some(message) = message {
            // Before v4 the error channel carries the failure's message, and nothing on success.
            self.send(channels::ERROR, message.as_bytes());
        }
        self.close(close_code::NORMAL);
    }

    /// Gives port `index`'s listener an input and sends what it wrote.
    fn feed_port(&mut self, index: usize, input: PortInput<'_>) {
        let Kind::PortForward(pf) = &mut self.kind else { return };
        let slot = &mut pf.ports[index];
        if slot.ended {
            return;
        }
        if let Some(handler) = &mut slot.handler {
            handler.handle(input, &mut slot.io);
        }
        self.drain_port(index);
        self.close_if_all_ports_ended();
    }

    fn drain_port(&mut self, index: usize) {
        let Kind::PortForward(pf) = &mut self.kind else { return };
        let slot = &mut pf.ports[index];
        let outputs: Vec<PortOutput> = slot.io.drain().collect();
        let port = slot.port;
        let sandbox = pf.sandbox.clone();
        // At most 128 ports, so channels fit a byte.
        let data_channel = (2 * index) as u8;
        for output in outputs {
            match output {
                PortOutput::Data(data) => self.send(data_channel, &data),
                PortOutput::Close => self.end_port(index),
                PortOutput::Fail(message) => {
                    let text = forwarding_error(port, &sandbox, &message);
                    self.send(data_channel + 1, text.as_bytes());
                    self.end_port(index);
                }
            }
        }
    }

    fn end_port(&mut self, index: usize) {
        if let Kind::PortForward(pf) = &mut self.kind {
            pf.ports[index].ended = true;
            pf.ports[index].handler = None;
        }
    }

    fn close_if_all_ports_ended(&mut self) {
        if let Kind::PortForward(pf) = &self.kind
            && pf.ports.iter().all(|p| p.ended)
        {
            self.close(close_code::NORMAL);
        }
    }
}

impl fmt::Debug for FakeSession {
    /// The kind of session and its state, never the bytes or the command (it may hold secrets).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Exec(e) if e.process.attach => "attach",
            Kind::Exec(_) => "exec",
            Kind::PortForward(_) => "portforward",
            Kind::Spdy(_) => "portforward (SPDY)",
        };
        f.debug_struct("FakeSession")
            .field("kind", &kind)
            .field("protocol", &self.protocol)
            .field("closed", &self.is_closed())
            .field("pending_transmit", &self.pending_transmit())
            .finish()
    }
}

/// A `metav1.StatusCause` as Go writes it (`type` is `reason` on the wire).
struct Cause<'a> {
    reason: &'a str,
    message: &'a str,
}

/// `{"metadata":{},"status":"Success"}`, as the kubelet writes it.
/// The runtime's message when nothing listens on `port` in the pod's network namespace.
pub(crate) fn refused_message(port: u16, netns: &str, sandbox: &str) -> String {
    format!(
        "failed to execute portforward in network namespace {netns:?}: failed to connect to \
         localhost:{port} inside namespace {sandbox:?}, IPv4: dial tcp4 127.0.0.1:{port}: connect: \
         connection refused IPv6 dial tcp6: address localhost: no suitable address found "
    )
}

/// A port's failure as the kubelet writes it on the port's error channel or stream.
pub(crate) fn forwarding_error(port: u16, sandbox: &str, message: &str) -> String {
    format!("error forwarding port {port} to pod {sandbox}, uid : {message}")
}

fn success_json() -> String {
    r#"{"metadata":{},"status":"Success"}"#.to_owned()
}

/// A failure `metav1.Status` as Go's `encoding/json` writes it: fields in the struct's order,
/// empty ones left out (but `metadata`), `<`, `>` and `&` escaped.
fn failure_json(message: &str, reason: &str, causes: &[Cause<'_>], code: i32) -> String {
    let mut s = String::from(r#"{"metadata":{},"status":"Failure""#);
    if !message.is_empty() {
        s.push_str(",\"message\":");
        s.push_str(&go_string(message));
    }
    if !reason.is_empty() {
        s.push_str(",\"reason\":");
        s.push_str(&go_string(reason));
    }
    if !causes.is_empty() {
        s.push_str(",\"details\":{\"causes\":[");
        for (i, cause) in causes.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('{');
            let mut first = true;
            for (key, value) in [("reason", cause.reason), ("message", cause.message)] {
                if value.is_empty() {
                    continue;
                }
                if !first {
                    s.push(',');
                }
                first = false;
                s.push_str(&format!("\"{key}\":{}", go_string(value)));
            }
            s.push('}');
        }
        s.push_str("]}");
    }
    if code != 0 {
        s.push_str(&format!(",\"code\":{code}"));
    }
    s.push('}');
    s
}

/// `apierrors.NewInternalError(err)`: its JSON and its message.
fn internal_error(error: &str) -> (String, Option<String>) {
    let message = format!("Internal error occurred: {error}");
    let json = failure_json(&message, "InternalError", &[Cause { reason: "", message: error }], 500);
    (json, Some(message))
}

/// A JSON string as Go's `encoding/json` writes it (HTML-safe escapes included).
fn go_string(s: &str) -> String {
    let json = serde_json::Value::String(s.to_owned()).to_string();
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_can_move_to_another_thread() {
        fn is_send<T: Send>() {}
        is_send::<FakeSession>();
        is_send::<crate::Reply>();
    }

    #[test]
    fn statuses_are_written_as_go_writes_them() {
        assert_eq!(
            failure_json(
                "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
                NON_ZERO_EXIT_CODE,
                &[Cause { reason: EXIT_CODE_CAUSE, message: "3" }],
                0
            ),
            r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
        );
        let (json, _) = internal_error("a <b> & \"c\"");
        assert_eq!(
            json,
            r#"{"metadata":{},"status":"Failure","message":"Internal error occurred: a \u003cb\u003e \u0026 \"c\"","reason":"InternalError","details":{"causes":[{"message":"a \u003cb\u003e \u0026 \"c\""}]},"code":500}"#
        );
    }
}
