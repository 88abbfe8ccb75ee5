//! SPDY/3, as Kubernetes speaks it for port-forward (`portforward.k8s.io`): streams over one
//! upgraded connection, each opened with headers, written both ways, half-closed with FIN, reset
//! with `RST_STREAM`; `PING` answered; header blocks compressed with zlib primed with the
//! protocol's dictionary ([`SpdyConnection`]). Pure: bytes in, events and bytes out.
//!
//! The upgrade is HTTP/1.1 (`Upgrade: SPDY/3.1`, `X-Stream-Protocol-Version` naming the stream
//! protocol; see [`upgrade_headers`]). Kubernetes 1.31 and later also carry the same SPDY bytes
//! inside a WebSocket (subprotocol `SPDY/3.1+portforward.k8s.io`, binary messages), which is how
//! kubectl reaches the API server when a proxy in between would not pass a SPDY upgrade: see
//! [`SpdyPortForwardSession::tunneled`](crate::channel::SpdyPortForwardSession::tunneled).
//!
//! Written here rather than taken from a crate: the crates that speak SPDY are tied to an
//! executor and IO, and the protocol Kubernetes needs is small (no server push, no flow control
//! in the peer it talks to; see [`SpdyConnection`]).

mod connection;
mod dictionary;
mod frame;
mod zlib;

pub use connection::{MAX_DATA_FRAME, Role, SpdyConnection, SpdyEvent, status};
pub use frame::{FLAG_FIN, FLAG_UNIDIRECTIONAL, MAX_PAYLOAD, VERSION};
pub use zlib::InflateError;

use http::HeaderValue;
use http::header::{CONNECTION, HeaderName, UPGRADE};

/// The `Upgrade` token.
pub const UPGRADE_TOKEN: &str = "SPDY/3.1";
/// The header naming the stream protocol asked for and chosen.
pub const STREAM_PROTOCOL_HEADER: &str = "x-stream-protocol-version";
/// Port-forward's stream protocol.
pub const PORTFORWARD_PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol that tunnels SPDY port-forward (Kubernetes 1.31 and later).
pub const PORTFORWARD_TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

/// Turns an upgrade request into a SPDY upgrade asking for `protocol`: `Connection: Upgrade`,
/// `Upgrade: SPDY/3.1`, `X-Stream-Protocol-Version`, and the method `POST`, as kubectl sends it.
/// WebSocket headers the request may carry are removed.
pub fn upgrade_headers<B>(req: &mut http::Request<B>, protocol: &'static str) {
    *req.method_mut() = http::Method::POST;
    let headers = req.headers_mut();
    for name in ["sec-websocket-key", "sec-websocket-version", "sec-websocket-protocol"] {
        headers.remove(name);
    }
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static(UPGRADE_TOKEN));
    headers.insert(HeaderName::from_static(STREAM_PROTOCOL_HEADER), HeaderValue::from_static(protocol));
}

/// Checks the answer to a SPDY upgrade: `101 Switching Protocols` with `Upgrade: SPDY/3.1` and
/// the stream protocol asked for. Returns the stream protocol.
pub fn verify_upgrade(
    status: http::StatusCode,
    headers: &http::HeaderMap,
    expected: &str,
) -> Result<String, SpdyError> {
    if status != http::StatusCode::SWITCHING_PROTOCOLS {
        return Err(SpdyError::NotUpgraded { status: status.as_u16() });
    }
    let upgrade = headers.get(UPGRADE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !upgrade.eq_ignore_ascii_case(UPGRADE_TOKEN) {
        return Err(SpdyError::UpgradeHeader { found: upgrade.to_owned() });
    }
    let protocol = headers.get(STREAM_PROTOCOL_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if protocol != expected {
        return Err(SpdyError::StreamProtocol { expected: expected.to_owned(), found: protocol.to_owned() });
    }
    Ok(protocol.to_owned())
}

/// A SPDY connection failed, or a command could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpdyError {
    /// The server answered the upgrade with something else than 101.
    #[error("the server answered the SPDY upgrade with HTTP {status}, not 101 Switching Protocols")]
    NotUpgraded {
        /// The status.
        status: u16,
    },
    /// The 101's `Upgrade` header is not SPDY/3.1.
    #[error("the server upgraded to {found:?}, not SPDY/3.1")]
    UpgradeHeader {
        /// What it said.
        found: String,
    },
    /// The 101 chose another stream protocol than the one asked for.
    #[error("the server chose stream protocol {found:?}; {expected:?} was asked for")]
    StreamProtocol {
        /// Asked for.
        expected: String,
        /// Chosen (empty if none).
        found: String,
    },
    /// A control frame of another version than 3.
    #[error("a SPDY control frame of version {found}; only version 3 is spoken")]
    Version {
        /// The version.
        found: u16,
    },
    /// A control frame too short for its type.
    #[error("a SPDY control frame of type {kind} with {len} payload bytes, fewer than its {need}")]
    ShortFrame {
        /// Its type.
        kind: u16,
        /// Its length.
        len: usize,
        /// The least its type needs.
        need: usize,
    },
    /// A header block that does not inflate.
    #[error("a SPDY header block does not inflate: {0}")]
    Compression(InflateError),
    /// An inflated header block that is not a list of names and values.
    #[error("a SPDY header block is malformed: {0}")]
    HeaderBlock(&'static str),
    /// The peer opened a stream with an id it may not use (zero, this end's parity, or not
    /// above its last).
    #[error("the peer opened stream {stream}, an id it may not use")]
    BadStreamId {
        /// The id.
        stream: u32,
    },
    /// Data after the peer's FIN on a stream.
    #[error("data on stream {stream} after the peer closed it")]
    DataAfterFin {
        /// The stream.
        stream: u32,
    },
    /// A command for a stream that is not open.
    #[error("stream {stream} is not open")]
    NoSuchStream {
        /// The stream.
        stream: u32,
    },
    /// A write after this end's FIN on the stream.
    #[error("stream {stream} was closed on this side: nothing more can be written")]
    StreamFinished {
        /// The stream.
        stream: u32,
    },
    /// A stream opened after the peer's `GOAWAY`.
    #[error("the peer is going away: no new streams")]
    GoingAway,
    /// Every stream id was used.
    #[error("every stream id of this connection was used")]
    StreamsExhausted,
    /// A command after the connection ended or this end's `GOAWAY`.
    #[error("the SPDY connection is closed")]
    Closed,
    /// The byte stream ended while streams were open.
    #[error(
        "the connection ended with {open_streams} stream(s) still open{}",
        if *mid_frame { ", in the middle of a frame" } else { "" }
    )]
    ConnectionLost {
        /// How many streams the peer had not closed.
        open_streams: usize,
        /// Whether it ended inside a frame.
        mid_frame: bool,
    },
}

#[cfg(test)]
mod tests;
