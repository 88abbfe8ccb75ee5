//! Exec, attach and port-forward: the core's channel sessions
//! ([`ExecSession`](kube_proto::channel::ExecSession),
//! [`PortForwardSession`](kube_proto::channel::PortForwardSession)) over a connection that
//! [`Client::upgrade`] hands back, turned into futures-io streams.
//!
//! [`Api::exec`](crate::Api::exec) and [`Api::attach`](crate::Api::attach) give an
//! [`AttachedProcess`]: a stdin writer, stdout and stderr readers, a terminal-size sender and
//! [`join`](AttachedProcess::join) for the exit status. [`Api::portforward`](crate::Api::portforward)
//! gives a [`Portforwarder`]: one duplex [`PortStream`] per port; [`forward`] copies between
//! one and a local connection (a TCP connection a runtime's listener accepted).
//!
//! # Who drives the connection
//!
//! Nothing is spawned: the crate knows no executor. The handles of one session (the process
//! or forwarder, its readers, writers and `join`) share the connection and its session behind
//! a mutex, and **whichever handle is polled drives it**: it writes what is queued, reads what
//! arrived and hands each piece of output to the buffer of the handle it is for. The
//! connection's IO and the heartbeat timer are polled with a waker that wakes every handle
//! waiting at that moment, so a reader blocked on stdout is woken when bytes arrive even if it
//! was the stdin writer whose poll last touched the socket, and a handle that made progress
//! for another (read bytes for it, freed room in a buffer) wakes it. An explicit driver future
//! for the user to spawn would have been the alternative; it was not needed, and without it a
//! session cannot be left undriven by forgetting to spawn.
//!
//! So a session moves as long as some handle is being awaited: `join`, a reader, or a writer
//! with bytes to send. Awaiting only `join` is enough when the readers were not taken (their
//! output is then dropped, see below).
//!
//! # Backpressure
//!
//! Each reader (stdout, stderr, a port) has a buffer of [`READ_BUFFER`] bytes. While a
//! reader that can still be read has that much waiting, the connection is not read at all:
//! the server's sends, then the command or the pod's port, wait in turn (one connection
//! carries every channel, so one slow reader holds up the others). One read of the connection
//! can overshoot the limit by what it decodes (at most a message or [`READ_CHUNK`] bytes of
//! them). A reader that was dropped, or never taken when `join` (or the forwarder's) began,
//! drops its output rather than holding the connection up.
//!
//! Writers queue at most [`WRITE_BUFFER`] bytes not yet written to the connection; a write
//! beyond that waits until the connection has taken some. Each write becomes one WebSocket
//! message of at most [`MAX_WRITE_MESSAGE`] bytes (a larger write is taken in part, as
//! `AsyncWrite` allows).
//!
//! # Heartbeat
//!
//! Every [`HEARTBEAT`] a ping is queued (the server answers with a pong), with the
//! transport's timer ([`Transport::sleep_until`](crate::Transport::sleep_until)), so that
//! proxies and load balancers that close idle connections see traffic while a command is
//! quiet. The timer runs while a handle is being polled.

mod exec;
mod io;
mod portforward;

pub use exec::{AttachedProcess, ExitStatus, ProcessOutput, ProcessStdin, TerminalSizeSender};
pub use portforward::{Forwarded, PortError, PortForwardProtocol, PortStream, Portforwarder, forward};

use std::time::Duration;

use kube_proto::websocket::{Handshake, HandshakeError};

use crate::transport::UpgradedStream;
use crate::{Client, Error};

/// How many bytes a reader buffers before the connection is no longer read (256 KiB).
pub const READ_BUFFER: usize = 256 * 1024;
/// How many bytes one read of the connection takes (64 KiB).
pub const READ_CHUNK: usize = 64 * 1024;
/// How many bytes writers may queue before a write waits (256 KiB).
pub const WRITE_BUFFER: usize = 256 * 1024;
/// The largest WebSocket message one write makes (32 KiB).
pub const MAX_WRITE_MESSAGE: usize = 32 * 1024;
/// How often a ping is sent (30 s).
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// Sends a SPDY upgrade request (already carrying its SPDY headers) and checks the answer: a
/// `101` to SPDY/3.1 with the stream protocol asked for. A refusal with a `Status` is
/// [`Error::Api`].
async fn connect_spdy(client: &Client, request: http::Request<Vec<u8>>) -> Result<UpgradedStream, Error> {
    let asked = request
        .headers()
        .get(kube_proto::spdy::STREAM_PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let upgraded = client.upgrade(request).await?;
    if upgraded.status() != http::StatusCode::SWITCHING_PROTOCOLS {
        let response = kube_proto::Response::new(upgraded.status(), upgraded.headers(), upgraded.body());
        return Err(Error::Api(response.error()));
    }
    kube_proto::spdy::verify_upgrade(upgraded.status(), upgraded.headers(), &asked)
        .map_err(|e| Error::PortForward(kube_proto::channel::PortForwardError::Spdy(e)))?;
    upgraded.into_stream().ok_or(Error::PortForward(kube_proto::channel::PortForwardError::Spdy(
        kube_proto::spdy::SpdyError::NotUpgraded { status: 101 },
    )))
}

/// Sends an upgrade request with a fresh `Sec-WebSocket-Key` and checks the answer: the
/// subprotocol chosen and the connection. A refusal with a `Status` (404 for a missing pod,
/// 403, 400 for a missing container) is [`Error::Api`], as for any other request.
async fn connect(client: &Client, mut request: http::Request<Vec<u8>>) -> Result<(String, UpgradedStream), Error> {
    let handshake = Handshake::start(&mut request, client.nonce());
    let upgraded = client.upgrade(request).await?;
    let protocol = match handshake.verify(upgraded.status(), upgraded.headers(), upgraded.body()) {
        Ok(protocol) => protocol,
        Err(HandshakeError::Refused(e)) => return Err(Error::Api(e)),
        Err(e) => return Err(Error::Handshake(e)),
    };
    match upgraded.into_stream() {
        Some(stream) => Ok((protocol, stream)),
        // `verify` accepts only a 101, which is always `Switched`.
        None => Err(Error::Handshake(HandshakeError::Upgrade { found: None })),
    }
}
