//! Kubernetes' channel protocols over WebSocket, with no IO: exec and attach
//! ([`ExecSession`]) and port-forward ([`PortForwardSession`]); and port-forward over SPDY, as
//! kubectl speaks it ([`SpdyPortForwardSession`], directly or tunneled in a WebSocket).
//!
//! Every binary message starts with a channel number. For exec and attach: 0 stdin, 1
//! stdout, 2 stderr, 3 the error channel (the command's end: a `metav1.Status` from
//! `v4.channel.k8s.io` on, plain text before), 4 terminal resizes (`v3.channel.k8s.io` on),
//! and with `v5.channel.k8s.io` 255, the CLOSE signal, whose next byte names the channel
//! this end has finished writing (so stdin can end while the output keeps coming). For
//! port-forward (`v4.channel.k8s.io` as the kubelet speaks it): the `i`-th port requested
//! has the data channel `2i` and the error channel `2i+1`, and the first message the server
//! sends on each carries the port number, two bytes little-endian.
//!
//! Both sessions have the same shape, for a runtime that wraps a byte stream (the upgraded
//! connection, `AsyncRead + AsyncWrite`) and owns nothing else of the protocol:
//!
//! - **inputs**: `handle_bytes(&buf[..n])` with what was read, `handle_eof()` when reading
//!   returned 0;
//! - **commands**: the writes (`write_stdin`, `close_stdin`, `resize`, a port's `write`),
//!   `ping` for a heartbeat, `close`;
//! - **outputs**, drained after every input or command: `poll_transmit()` until `None`,
//!   the bytes to write in order (pongs and close echoes included), then `poll_event()`
//!   until `None`. Once `is_closed()`, write what is left and drop the stream.
//!
//! An error (a protocol violation, a malformed status) leaves the session failed: later
//! inputs return it again, and a close frame saying why waits in `poll_transmit`.
//!
//! ```
//! use kube_proto::channel::{ChannelProtocol, ExecEvent, ExecSession, exit_code};
//! use kube_proto::websocket::{Masks, Opcode, encode_frame};
//!
//! let mut session = ExecSession::new(ChannelProtocol::V5, Masks::new([1; 16]));
//! session.write_stdin(b"hello\n").unwrap();
//! session.close_stdin().unwrap();
//! let mut to_write = Vec::new();
//! while let Some(bytes) = session.poll_transmit() {
//!     to_write.extend(bytes); // a runtime writes these to the connection
//! }
//! assert_eq!(to_write.len(), (2 + 4 + 7) + (2 + 4 + 2)); // two masked frames
//!
//! // What the server sends back (unmasked frames), in whatever pieces the reads return:
//! let mut received = Vec::new();
//! encode_frame(&mut received, true, Opcode::Binary, b"\x01hello\n", None).unwrap();
//! encode_frame(&mut received, true, Opcode::Binary, b"\x03{\"status\":\"Success\"}", None).unwrap();
//! encode_frame(&mut received, true, Opcode::Close, &[0x03, 0xE8], None).unwrap();
//! for piece in received.chunks(5) {
//!     session.handle_bytes(piece).unwrap();
//! }
//! assert_eq!(session.poll_event(), Some(ExecEvent::Stdout(b"hello\n".to_vec())));
//! let Some(ExecEvent::Status(status)) = session.poll_event() else { panic!() };
//! assert_eq!(exit_code(&status), Ok(0));
//! assert!(matches!(session.poll_event(), Some(ExecEvent::Closed(_))));
//! assert!(session.poll_transmit().is_some()); // the close, echoed
//! assert!(session.is_closed());
//! ```

pub mod exec;
pub mod portforward;
pub mod spdy_portforward;

pub use exec::{ExecError, ExecEvent, ExecSession, TerminalSize, exit_code};
pub use portforward::{PortForwardError, PortForwardEvent, PortForwardSession};
pub use spdy_portforward::SpdyPortForwardSession;

/// The largest message a session accepts by default (16 MiB): the API server sends output
/// in pieces of a few tens of KiB.
pub const DEFAULT_MAX_MESSAGE: usize = 16 << 20;

/// The channel numbers of exec and attach.
pub mod channels {
    /// Standard input (client to server).
    pub const STDIN: u8 = 0;
    /// Standard output.
    pub const STDOUT: u8 = 1;
    /// Standard error.
    pub const STDERR: u8 = 2;
    /// The error channel: how the command ended.
    pub const ERROR: u8 = 3;
    /// Terminal resizes (client to server).
    pub const RESIZE: u8 = 4;
    /// `v5.channel.k8s.io`'s CLOSE signal: the next byte is the channel closed.
    pub const CLOSE: u8 = 255;
}

/// A version of the binary channel protocol, as the `Sec-WebSocket-Protocol` names it.
/// The base64 variants (`base64.channel.k8s.io`, ...) are not supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ChannelProtocol {
    /// `channel.k8s.io`: stdin, stdout, stderr and a text error channel.
    V1,
    /// `v2.channel.k8s.io`: as v1 for this client.
    V2,
    /// `v3.channel.k8s.io`: adds the resize channel.
    V3,
    /// `v4.channel.k8s.io`: the error channel carries a JSON `Status` (exit codes).
    V4,
    /// `v5.channel.k8s.io`: adds the CLOSE signal (stdin can be closed alone).
    V5,
}

impl ChannelProtocol {
    /// The protocol a `Sec-WebSocket-Protocol` names, if it is one of these.
    pub fn parse(name: &str) -> Option<ChannelProtocol> {
        Some(match name.trim() {
            "channel.k8s.io" => ChannelProtocol::V1,
            "v2.channel.k8s.io" => ChannelProtocol::V2,
            "v3.channel.k8s.io" => ChannelProtocol::V3,
            "v4.channel.k8s.io" => ChannelProtocol::V4,
            "v5.channel.k8s.io" => ChannelProtocol::V5,
            _ => return None,
        })
    }

    /// Its `Sec-WebSocket-Protocol` name.
    pub fn name(self) -> &'static str {
        match self {
            ChannelProtocol::V1 => "channel.k8s.io",
            ChannelProtocol::V2 => "v2.channel.k8s.io",
            ChannelProtocol::V3 => "v3.channel.k8s.io",
            ChannelProtocol::V4 => "v4.channel.k8s.io",
            ChannelProtocol::V5 => "v5.channel.k8s.io",
        }
    }

    /// Whether the error channel carries a JSON `Status` (v4 on) rather than text.
    pub fn has_status(self) -> bool {
        self >= ChannelProtocol::V4
    }

    /// Whether the resize channel exists (v3 on).
    pub fn has_resize(self) -> bool {
        self >= ChannelProtocol::V3
    }

    /// Whether stdin can be closed alone (v5).
    pub fn has_stdin_close(self) -> bool {
        self >= ChannelProtocol::V5
    }
}

impl std::fmt::Display for ChannelProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
