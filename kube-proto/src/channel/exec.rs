//! Exec and attach: stdin, stdout, stderr, the error channel's `Status` and terminal resizes
//! over one WebSocket connection.

use std::collections::VecDeque;
use std::fmt;

use super::{ChannelProtocol, DEFAULT_MAX_MESSAGE, channels};
use crate::error::{Reason, Status};
use crate::websocket::{CloseFrame, Masks, Message, WebSocket, WsError, close_code};

/// The `Status` reason of a command that exited with a code other than 0.
pub const NON_ZERO_EXIT_CODE: &str = "NonZeroExitCode";
/// The cause (its `reason`, Go's `CauseType`) that carries the exit code as its message.
pub const EXIT_CODE_CAUSE: &str = "ExitCode";

/// The size of a terminal, sent on the resize channel as `{"Width":..,"Height":..}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TerminalSize {
    /// Columns.
    #[serde(rename = "Width")]
    pub width: u16,
    /// Rows.
    #[serde(rename = "Height")]
    pub height: u16,
}

/// What an exec or attach session received.
#[derive(Clone, PartialEq, Eq)]
pub enum ExecEvent {
    /// Bytes the command wrote to stdout (never empty).
    Stdout(Vec<u8>),
    /// Bytes the command wrote to stderr (never empty).
    Stderr(Vec<u8>),
    /// How the command ended, from the error channel (see [`exit_code`]). With v1–v3, whose
    /// error channel is text, it comes when the connection closes: `Success` when the server
    /// wrote nothing, else a `Failure` whose message is the text.
    Status(Box<Status>),
    /// The server closed the connection (its close was echoed).
    Closed(Option<CloseFrame>),
}

impl fmt::Debug for ExecEvent {
    /// Lengths only for output: a command can print anything.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecEvent::Stdout(b) => write!(f, "Stdout({} bytes)", b.len()),
            ExecEvent::Stderr(b) => write!(f, "Stderr({} bytes)", b.len()),
            ExecEvent::Status(s) => f.debug_tuple("Status").field(s).finish(),
            ExecEvent::Closed(c) => f.debug_tuple("Closed").field(c).finish(),
        }
    }
}

/// An exec or attach session failed, or a command could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The server broke the WebSocket protocol.
    #[error("WebSocket protocol error: {0}")]
    WebSocket(WsError),
    /// A text message: the binary channel protocols carry only binary ones.
    #[error("the server sent a text message; the channel protocol uses binary messages only")]
    TextMessage,
    /// A binary message without its channel byte.
    #[error("the server sent an empty message, without a channel number")]
    EmptyMessage,
    /// The error channel did not hold a JSON `Status`.
    #[error("the error channel does not hold a Status ({reason}): {snippet:?}")]
    MalformedStatus {
        /// What was wrong.
        reason: String,
        /// Its first bytes.
        snippet: String,
    },
    /// A write to stdin after it was closed.
    #[error("stdin is closed")]
    StdinClosed,
    /// Closing stdin alone needs `v5.channel.k8s.io`: with an older protocol the command
    /// only sees the end of its input when the whole connection closes (which may lose its
    /// exit status), so the caller chooses between [`ExecSession::close`] and leaving stdin
    /// open.
    #[error("{protocol} cannot close stdin alone (v5.channel.k8s.io can)")]
    StdinCloseUnsupported {
        /// The protocol in use.
        protocol: ChannelProtocol,
    },
    /// Resizing needs `v3.channel.k8s.io` or later.
    #[error("{protocol} has no resize channel")]
    ResizeUnsupported {
        /// The protocol in use.
        protocol: ChannelProtocol,
    },
    /// A command after the connection began closing.
    #[error("the connection is closing: nothing more can be sent")]
    Closed,
    /// The byte stream ended before the server's close frame: the server or a proxy dropped
    /// the connection mid-stream.
    #[error("the connection ended without a WebSocket close{}", if *mid_frame { ", in the middle of a frame" } else { "" })]
    ConnectionLost {
        /// Whether it ended inside a frame.
        mid_frame: bool,
    },
    /// The connection closed and the error channel said nothing (a `v4.channel.k8s.io` or
    /// later server always sends a `Status`, success included).
    #[error("the connection closed without the command's status{}", close.as_ref().map(|c| format!(" (close code {}: {:?})", c.code, c.reason)).unwrap_or_default())]
    NoStatus {
        /// The server's close frame, if it had a code.
        close: Option<CloseFrame>,
    },
    /// The command could not run or was not allowed to finish: a `Failure` other than a
    /// non-zero exit code (the container is gone, the kubelet failed, ...).
    #[error("the command failed: {0}")]
    Failed(Box<Status>),
    /// A `NonZeroExitCode` failure without a readable `ExitCode` cause.
    #[error("the command exited with a non-zero code that the status does not give: {0}")]
    BadExitCode(Box<Status>),
}

/// The exit code a command's `Status` reports: 0 for `Success`; the `ExitCode` cause of a
/// `NonZeroExitCode` failure; for anything else the error carries the `Status`.
///
/// ```
/// use kube_proto::channel::{ExecError, exit_code};
/// use kube_proto::Status;
///
/// let exited: Status = serde_json::from_str(r#"{"status":"Failure","reason":"NonZeroExitCode",
///     "message":"command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3",
///     "details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#).unwrap();
/// assert_eq!(exit_code(&exited), Ok(3));
/// let failed: Status = serde_json::from_str(r#"{"status":"Failure","reason":"InternalError","code":500}"#).unwrap();
/// assert!(matches!(exit_code(&failed), Err(ExecError::Failed(_))));
/// ```
pub fn exit_code(status: &Status) -> Result<i32, ExecError> {
    if status.is_success() {
        return Ok(0);
    }
    if status.status == "Failure" && status.reason.as_str() == NON_ZERO_EXIT_CODE {
        return status
            .causes()
            .iter()
            .find(|c| c.reason == EXIT_CODE_CAUSE)
            .and_then(|c| c.message.trim().parse::<i32>().ok())
            .ok_or_else(|| ExecError::BadExitCode(Box::new(status.clone())));
    }
    Err(ExecError::Failed(Box::new(status.clone())))
}

/// The client end of an exec or attach connection, after the WebSocket handshake: bytes in,
/// events and bytes to write out (the module docs show the loop).
///
/// Output arrives as [`ExecEvent::Stdout`] and [`ExecEvent::Stderr`]; the command's end as
/// [`ExecEvent::Status`] (see [`exit_code`]) and then [`ExecEvent::Closed`]. Messages on
/// channels the client does not read (stdin, resize, an unknown number) are dropped, as
/// client-go does, and so are empty ones (the server opens with an empty message on its
/// first output channel).
#[derive(Debug, Clone)]
pub struct ExecSession {
    protocol: ChannelProtocol,
    ws: WebSocket,
    max_message: usize,
    events: VecDeque<ExecEvent>,
    error_channel: Vec<u8>,
    status: Option<Status>,
    close: Option<Option<CloseFrame>>,
    stdin_closed: bool,
    failed: Option<ExecError>,
}

impl ExecSession {
    /// A session speaking `protocol` (the subprotocol the handshake chose), masking with
    /// `masks`, accepting messages up to [`DEFAULT_MAX_MESSAGE`].
    pub fn new(protocol: ChannelProtocol, masks: Masks) -> Self {
        ExecSession::with_max_message(protocol, masks, DEFAULT_MAX_MESSAGE)
    }

    /// [`new`](Self::new) with another limit on a message's size (the error channel's
    /// `Status` has the same limit).
    pub fn with_max_message(protocol: ChannelProtocol, masks: Masks, max_message: usize) -> Self {
        ExecSession {
            protocol,
            ws: WebSocket::client(masks, max_message),
            max_message,
            events: VecDeque::new(),
            error_channel: Vec::new(),
            status: None,
            close: None,
            stdin_closed: false,
            failed: None,
        }
    }

    /// The protocol spoken.
    pub fn protocol(&self) -> ChannelProtocol {
        self.protocol
    }

    // ---- inputs ----

    /// Takes in bytes read from the connection. Events are queued for
    /// [`poll_event`](Self::poll_event), pongs and a close echo for
    /// [`poll_transmit`](Self::poll_transmit). On an error the session is failed: the events
    /// before it stay queued, a close frame saying why is queued, and later inputs return the
    /// same error.
    pub fn handle_bytes(&mut self, mut bytes: &[u8]) -> Result<(), ExecError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        loop {
            let result = match self.ws.receive(&mut bytes) {
                Ok(None) => return Ok(()),
                Ok(Some(message)) => self.on_message(message),
                Err(e) => Err(ExecError::WebSocket(e)),
            };
            if let Err(e) = result {
                return Err(self.fail(e));
            }
        }
    }

    /// The byte stream ended (a read returned 0). Fine after the server's close frame, or
    /// after this end's [`close`](Self::close) (the server may drop the stream rather than
    /// answer); otherwise [`ExecError::ConnectionLost`].
    pub fn handle_eof(&mut self) -> Result<(), ExecError> {
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
        let e = ExecError::ConnectionLost { mid_frame: self.ws.in_progress() };
        self.failed = Some(e.clone());
        Err(e)
    }

    // ---- commands ----

    /// Queues bytes for the command's stdin (nothing for an empty slice).
    pub fn write_stdin(&mut self, data: &[u8]) -> Result<(), ExecError> {
        self.check_sendable()?;
        if self.stdin_closed {
            return Err(ExecError::StdinClosed);
        }
        if data.is_empty() {
            return Ok(());
        }
        self.ws.send_binary_parts(&[&[channels::STDIN], data]).map_err(send_error)
    }

    /// Closes stdin alone (v5's CLOSE signal): the command reads the end of its input, and its
    /// output and status still come. A second call does nothing. Older protocols cannot (see
    /// [`ExecError::StdinCloseUnsupported`]).
    pub fn close_stdin(&mut self) -> Result<(), ExecError> {
        if !self.protocol.has_stdin_close() {
            return Err(ExecError::StdinCloseUnsupported { protocol: self.protocol });
        }
        if self.stdin_closed {
            return Ok(());
        }
        self.check_sendable()?;
        self.ws.send_binary(&[channels::CLOSE, channels::STDIN]).map_err(send_error)?;
        self.stdin_closed = true;
        Ok(())
    }

    /// Queues a terminal resize (v3 on).
    pub fn resize(&mut self, size: TerminalSize) -> Result<(), ExecError> {
        if !self.protocol.has_resize() {
            return Err(ExecError::ResizeUnsupported { protocol: self.protocol });
        }
        self.check_sendable()?;
        let json = format!("{{\"Width\":{},\"Height\":{}}}", size.width, size.height);
        self.ws.send_binary_parts(&[&[channels::RESIZE], json.as_bytes()]).map_err(send_error)
    }

    /// Queues a ping (a heartbeat: the server answers with a pong, which is not an event).
    pub fn ping(&mut self, data: &[u8]) -> Result<(), ExecError> {
        self.check_sendable()?;
        self.ws.ping(data).map_err(send_error)
    }

    /// Starts closing the connection (status 1000): the server stops the stream and answers
    /// with its own close. A second call does nothing.
    pub fn close(&mut self) -> Result<(), ExecError> {
        self.ws.close(close_code::NORMAL, "").map_err(send_error)
    }

    // ---- outputs ----

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<ExecEvent> {
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

    // ---- getters ----

    /// The command's `Status`, once the error channel gave it.
    pub fn status(&self) -> Option<&Status> {
        self.status.as_ref()
    }

    /// How the command ended: `None` while it runs; its exit code or why there is none once
    /// its status arrived, the connection closed without one, or the session failed.
    pub fn exit_code(&self) -> Option<Result<i32, ExecError>> {
        if let Some(status) = &self.status {
            return Some(exit_code(status));
        }
        if let Some(e) = &self.failed {
            return Some(Err(e.clone()));
        }
        self.close.as_ref().map(|close| Err(ExecError::NoStatus { close: close.clone() }))
    }

    /// Whether the session is over: the server closed (its close echoed), the stream ended
    /// after this end's close, or the session failed. Write what
    /// [`poll_transmit`](Self::poll_transmit) still holds, then drop the stream.
    pub fn is_closed(&self) -> bool {
        self.ws.is_closed() || self.failed.is_some() || self.close.is_some()
    }

    /// Whether stdin was closed.
    pub fn is_stdin_closed(&self) -> bool {
        self.stdin_closed
    }

    fn check_sendable(&self) -> Result<(), ExecError> {
        if self.failed.is_some() || self.ws.is_close_sent() { Err(ExecError::Closed) } else { Ok(()) }
    }

    fn fail(&mut self, e: ExecError) -> ExecError {
        if !matches!(e, ExecError::WebSocket(_)) {
            // The WebSocket layer queued its own close for its errors; these are ours.
            let _ = self.ws.close(close_code::PROTOCOL_ERROR, "");
        }
        self.failed = Some(e.clone());
        e
    }

    fn on_message(&mut self, message: Message) -> Result<(), ExecError> {
        match message {
            Message::Binary(mut data) => {
                let Some(&channel) = data.first() else { return Err(ExecError::EmptyMessage) };
                if data.len() == 1 {
                    return Ok(());
                }
                match channel {
                    channels::STDOUT => {
                        data.remove(0);
                        self.events.push_back(ExecEvent::Stdout(data));
                    }
                    channels::STDERR => {
                        data.remove(0);
                        self.events.push_back(ExecEvent::Stderr(data));
                    }
                    channels::ERROR => self.on_error_channel(&data[1..])?,
                    _ => {}
                }
                Ok(())
            }
            Message::Text(_) => Err(ExecError::TextMessage),
            Message::Ping(_) | Message::Pong(_) => Ok(()),
            Message::Close(frame) => {
                self.close = Some(frame.clone());
                let unfinished = self.status.is_none() && !self.error_channel.trim_ascii().is_empty();
                if !self.protocol.has_status() && self.status.is_none() {
                    let text = String::from_utf8_lossy(&std::mem::take(&mut self.error_channel)).into_owned();
                    let status = if text.is_empty() {
                        Status { status: "Success".into(), ..Status::default() }
                    } else {
                        Status::failure(0, Reason::default(), text)
                    };
                    self.status = Some(status.clone());
                    self.events.push_back(ExecEvent::Status(Box::new(status)));
                }
                self.events.push_back(ExecEvent::Closed(frame));
                if unfinished && self.protocol.has_status() {
                    return Err(malformed("the connection closed inside it", &self.error_channel));
                }
                Ok(())
            }
        }
    }

    /// Bytes on the error channel: a v4/v5 `Status` is read as soon as it is whole (it may
    /// span messages); v1–v3 text is kept until the close.
    fn on_error_channel(&mut self, data: &[u8]) -> Result<(), ExecError> {
        if self.status.is_some() {
            return Ok(()); // one status per command; anything after it is ignored
        }
        if self.error_channel.len() + data.len() > self.max_message {
            return Err(malformed("longer than the message limit", &self.error_channel));
        }
        self.error_channel.extend_from_slice(data);
        if !self.protocol.has_status() {
            return Ok(());
        }
        match serde_json::from_slice::<Status>(&self.error_channel) {
            Ok(status) => {
                self.error_channel = Vec::new();
                self.status = Some(status.clone());
                self.events.push_back(ExecEvent::Status(Box::new(status)));
                Ok(())
            }
            Err(e) if e.is_eof() => Ok(()),
            Err(e) => Err(malformed(&e.to_string(), &self.error_channel)),
        }
    }
}

fn send_error(e: WsError) -> ExecError {
    match e {
        WsError::Closed => ExecError::Closed,
        other => ExecError::WebSocket(other),
    }
}

fn malformed(reason: &str, bytes: &[u8]) -> ExecError {
    let end = bytes.len().min(256);
    ExecError::MalformedStatus {
        reason: reason.to_owned(),
        snippet: String::from_utf8_lossy(&bytes[..end]).into_owned(),
    }
}
