//! Port-forward: a duplex stream per port over one upgraded connection, and [`forward`],
//! which joins one to a local connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_util::io::{AsyncRead, AsyncWrite};
use kube_proto::channel::{
    DEFAULT_MAX_MESSAGE, PortForwardError, PortForwardEvent, PortForwardSession, SpdyPortForwardSession,
};
use kube_proto::spdy;
use kube_proto::websocket::Masks;

use super::io::{Conn, Drive, Inbound, Session, Shared, has_write_room, io_error};
use super::{MAX_WRITE_MESSAGE, READ_CHUNK, connect, connect_spdy};
use crate::{Client, Error};

/// The kubelet could not forward a port (nothing listens on it, the pod is gone, ...), as
/// its error channel said: the error of a [`PortStream`]'s reads and writes from then on
/// (inside an [`io::Error`]; [`io::Error::get_ref`] downcasts to it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("port {port} of the pod: {message}")]
pub struct PortError {
    /// The pod's port.
    pub port: u16,
    /// The kubelet's message.
    pub message: String,
}

/// The protocol a port-forward speaks ([`Api::portforward_with`](crate::Api::portforward_with)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortForwardProtocol {
    /// The kubelet's WebSocket protocol (`v4.channel.k8s.io`), as kube-rs speaks it: a data and
    /// an error channel per port; a port cannot be half-closed.
    #[default]
    WebSocket,
    /// SPDY (`portforward.k8s.io` after an `Upgrade: SPDY/3.1`), as kubectl spoke it up to
    /// Kubernetes 1.30: a pair of streams per port; closing a [`PortStream`] half-closes its
    /// port, and the pod's side ending ends its reads.
    Spdy,
    /// The same SPDY inside a WebSocket (subprotocol `SPDY/3.1+portforward.k8s.io`), as
    /// kubectl speaks it from Kubernetes 1.31 on: passes proxies that let WebSockets through
    /// but not SPDY.
    SpdyOverWebSocket,
}

/// A port-forward session of either protocol.
enum PfSession {
    Ws(Box<PortForwardSession>),
    Spdy(Box<SpdyPortForwardSession>),
}

impl PfSession {
    fn handle_bytes(&mut self, bytes: &[u8]) -> Result<(), PortForwardError> {
        match self {
            PfSession::Ws(s) => s.handle_bytes(bytes),
            PfSession::Spdy(s) => s.handle_bytes(bytes),
        }
    }

    fn handle_eof(&mut self) -> Result<(), PortForwardError> {
        match self {
            PfSession::Ws(s) => s.handle_eof(),
            PfSession::Spdy(s) => s.handle_eof(),
        }
    }

    fn write(&mut self, index: usize, data: &[u8]) -> Result<(), PortForwardError> {
        match self {
            PfSession::Ws(s) => s.write(index, data),
            PfSession::Spdy(s) => s.write(index, data),
        }
    }

    fn ping(&mut self) -> Result<(), PortForwardError> {
        match self {
            PfSession::Ws(s) => s.ping(b""),
            PfSession::Spdy(s) => s.ping(b""),
        }
    }

    fn close(&mut self) -> Result<(), PortForwardError> {
        match self {
            PfSession::Ws(s) => s.close(),
            PfSession::Spdy(s) => s.close(),
        }
    }

    fn poll_event(&mut self) -> Option<PortForwardEvent> {
        match self {
            PfSession::Ws(s) => s.poll_event(),
            PfSession::Spdy(s) => s.poll_event(),
        }
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        match self {
            PfSession::Ws(s) => s.poll_transmit(),
            PfSession::Spdy(s) => s.poll_transmit(),
        }
    }

    fn pending_transmit(&self) -> usize {
        match self {
            PfSession::Ws(s) => s.pending_transmit(),
            PfSession::Spdy(s) => s.pending_transmit(),
        }
    }

    fn is_closed(&self) -> bool {
        match self {
            PfSession::Ws(s) => s.is_closed(),
            PfSession::Spdy(s) => s.is_closed(),
        }
    }
}

/// The ports [`Api::portforward`](crate::Api::portforward) forwards, over one connection.
///
/// Take each port's [`PortStream`] with [`take_stream`](Self::take_stream), use them, and
/// await [`join`](Self::join) for the connection's end. The [module docs](super) tell how the
/// connection is driven by whichever handle is polled, and how a slow reader holds the
/// others up.
///
/// ```
/// # #[cfg(feature = "fake")] {
/// use futures_util::{AsyncReadExt, AsyncWriteExt};
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_runtime::fake::{FakeTransport, server::exec::PortScript};
/// use kube_runtime::{Api, Client};
///
/// futures_executor::block_on(async {
///     let (transport, config) = FakeTransport::new();
///     let pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "web"},
///         "spec": {"containers": [{"name": "main", "image": "nginx"}]}})).unwrap();
///     transport.server().script_port("default", "web", 7, PortScript::echo());
///     let pods: Api<Pod> = Api::default_namespaced(Client::new(transport, config).unwrap());
///     pods.create(&Default::default(), &pod).await.unwrap();
///
///     let mut pf = pods.portforward("web", &[7]).await.unwrap();
///     let mut echo = pf.take_stream(7).unwrap();
///     echo.write_all(b"ping").await.unwrap();
///     let mut back = [0; 4];
///     echo.read_exact(&mut back).await.unwrap();
///     assert_eq!(&back, b"ping");
///     echo.close().await.unwrap(); // the last port: the connection closes
///     pf.join().await.unwrap();
/// });
/// # }
/// ```
pub struct Portforwarder {
    shared: Arc<Shared<PortForwardState>>,
    ports: Vec<u16>,
    streams: Vec<Option<PortStream>>,
}

impl std::fmt::Debug for Portforwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Portforwarder").field("ports", &self.ports).finish_non_exhaustive()
    }
}

impl Portforwarder {
    /// Sends a port-forward request and starts the session, speaking `protocol`.
    pub(crate) async fn start(
        client: &Client,
        mut request: http::Request<Vec<u8>>,
        ports: &[u16],
        protocol: PortForwardProtocol,
    ) -> Result<Portforwarder, Error> {
        let (session, stream) = match protocol {
            PortForwardProtocol::WebSocket => {
                let session = PortForwardSession::new(ports, Masks::new(client.nonce())).map_err(Error::PortForward)?;
                (PfSession::Ws(Box::new(session)), connect(client, request).await?.1)
            }
            PortForwardProtocol::Spdy => {
                let session = SpdyPortForwardSession::new(ports).map_err(Error::PortForward)?;
                spdy::upgrade_headers(&mut request, spdy::PORTFORWARD_PROTOCOL);
                (PfSession::Spdy(Box::new(session)), connect_spdy(client, request).await?)
            }
            PortForwardProtocol::SpdyOverWebSocket => {
                let masks = Masks::new(client.nonce());
                let session =
                    SpdyPortForwardSession::tunneled(ports, masks, DEFAULT_MAX_MESSAGE).map_err(Error::PortForward)?;
                request.headers_mut().insert(
                    http::header::SEC_WEBSOCKET_PROTOCOL,
                    http::HeaderValue::from_static(spdy::PORTFORWARD_TUNNEL_PROTOCOL),
                );
                (PfSession::Spdy(Box::new(session)), connect(client, request).await?.1)
            }
        };
        let state = PortForwardState {
            conn: Conn::new(stream, client.clone()),
            proto: PortForwardProto {
                session,
                ports: ports
                    .iter()
                    .map(|_| PortState { inbound: Inbound::new(true), error: None, writing: true, ended: false })
                    .collect(),
                error: None,
            },
            aborted: false,
        };
        let shared = Shared::new(state);
        let streams = ports
            .iter()
            .enumerate()
            .map(|(index, &port)| Some(PortStream { shared: shared.clone(), index, port }))
            .collect();
        Ok(Portforwarder { shared, ports: ports.to_vec(), streams })
    }

    /// The ports forwarded, in the order requested.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }

    /// The stream of `port`, once (for a port listed twice, the first time the first one).
    pub fn take_stream(&mut self, port: u16) -> Option<PortStream> {
        self.ports.iter().zip(&mut self.streams).filter(|(p, _)| **p == port).find_map(|(_, s)| s.take())
    }

    /// Waits for the connection to end: it closes once every port's stream was closed or
    /// dropped (streams not taken by now are dropped), or when the server closes it. A
    /// connection lost or a protocol error is the error ([`Error::PortForward`],
    /// [`Error::Transport`]); a port's own error is its stream's, not this one's;
    /// [`abort`](Self::abort) gives [`Error::Aborted`].
    ///
    /// Taken streams must be read while this is awaited: a full one holds the connection up.
    pub async fn join(self) -> Result<(), Error> {
        let Portforwarder { shared, streams, ports } = self;
        drop(streams);
        let slot = 2 * ports.len();
        std::future::poll_fn(|cx| shared.poll(slot, cx, |state, _| state.outcome())).await
    }

    /// Ends the session now (as [`AttachedProcess::abort`](super::AttachedProcess::abort)):
    /// every stream ends, and `join` gives [`Error::Aborted`].
    pub fn abort(&self) {
        self.shared.command(|state| {
            state.aborted = true;
            let _ = state.proto.session.close();
            state.conn.abort();
            for port in &mut state.proto.ports {
                port.inbound.drop_reader();
            }
        });
    }
}

pub(crate) struct PortForwardState {
    conn: Conn,
    proto: PortForwardProto,
    aborted: bool,
}

struct PortForwardProto {
    session: PfSession,
    ports: Vec<PortState>,
    error: Option<PortForwardError>,
}

struct PortState {
    inbound: Inbound,
    /// The kubelet's error for this port.
    error: Option<String>,
    /// Whether its stream may still write (not closed, not dropped).
    writing: bool,
    /// Whether the pod's side ended (SPDY), or the reader was dropped: nothing more is read.
    ended: bool,
}

impl PortForwardProto {
    fn drain(&mut self, result: Result<(), PortForwardError>) {
        if let Err(e) = result {
            tracing::debug!(error = %e, "port-forward session");
            self.error.get_or_insert(e);
        }
        while let Some(event) = self.session.poll_event() {
            match event {
                PortForwardEvent::Data { index, data, .. } => self.ports[index].inbound.push(data),
                PortForwardEvent::Error { index, port, message } => {
                    tracing::debug!(port, %message, "port-forward: the kubelet's error");
                    let error = &mut self.ports[index].error;
                    match error {
                        Some(e) => e.push_str(&message),
                        None => *error = Some(message),
                    }
                }
                PortForwardEvent::Finished { index, .. } => self.ports[index].ended = true,
                PortForwardEvent::Closed(_) => {}
            }
        }
    }

    /// Closes the connection once no stream can write any more (over SPDY, once also nothing
    /// more can be read: the pod's side of every port ended, or its reader is gone).
    fn close_if_done(&mut self) {
        let done = match &self.session {
            PfSession::Ws(_) => self.ports.iter().all(|p| !p.writing),
            PfSession::Spdy(_) => self.ports.iter().all(|p| !p.writing && p.ended),
        };
        if done {
            let _ = self.session.close();
        }
    }

    /// A stream closed its writing side: over SPDY its port is half-closed.
    fn finish(&mut self, index: usize) {
        self.ports[index].writing = false;
        if let PfSession::Spdy(s) = &mut self.session {
            let _ = s.finish(index);
        }
        self.close_if_done();
    }
}

impl Session for PortForwardProto {
    fn handle_bytes(&mut self, bytes: &[u8]) {
        let result = self.session.handle_bytes(bytes);
        self.drain(result);
        if matches!(self.session, PfSession::Spdy(_)) {
            self.close_if_done();
        }
    }

    fn handle_eof(&mut self) {
        let result = self.session.handle_eof();
        self.drain(result);
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.session.poll_transmit()
    }

    fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    fn ping(&mut self) {
        let _ = self.session.ping();
    }

    fn can_read(&self) -> bool {
        self.ports.iter().all(|p| p.inbound.has_room())
    }
}

impl Drive for PortForwardState {
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        self.conn.drive(&mut self.proto, cx)
    }
}

impl PortForwardState {
    fn failure(&self) -> Option<Error> {
        if let Some(e) = self.conn.error() {
            return Some(e.clone());
        }
        self.proto.error.clone().map(Error::PortForward)
    }

    fn ended(&self) -> bool {
        self.aborted || self.proto.session.is_closed() || self.conn.is_over()
    }

    fn outcome(&mut self) -> Poll<Result<(), Error>> {
        if !self.conn.is_over() && !self.aborted {
            return Poll::Pending;
        }
        Poll::Ready(match self.failure() {
            Some(e) => Err(e),
            None if self.aborted => Err(Error::Aborted),
            None => Ok(()),
        })
    }

    fn port_error(&self, index: usize, port: u16) -> Option<io::Error> {
        let message = self.proto.ports[index].error.as_ref()?;
        Some(io::Error::other(PortError { port, message: message.clone() }))
    }

    fn session_error(&self) -> Option<io::Error> {
        let e = self.failure()?;
        let kind = match e {
            Error::PortForward(
                PortForwardError::ConnectionLost { .. }
                | PortForwardError::Spdy(spdy::SpdyError::ConnectionLost { .. }),
            ) => io::ErrorKind::UnexpectedEof,
            Error::PortForward(_) => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::ConnectionAborted,
        };
        Some(io_error(kind, &e))
    }

    fn queued(&self) -> usize {
        self.conn.unwritten() + self.proto.session.pending_transmit()
    }

    fn flushed(&self) -> Poll<io::Result<()>> {
        if self.queued() == 0 && self.conn.is_flushed() {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = self.session_error() {
            return Poll::Ready(Err(e));
        }
        if self.conn.is_over() || self.aborted {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the port-forward ended")));
        }
        Poll::Pending
    }
}

/// One forwarded port: what is written goes to the pod's port, what the pod's side sends is
/// read (`AsyncRead + AsyncWrite`; [`futures_util::AsyncReadExt::split`] splits it).
///
/// Reads end when the connection closes. An error on the port's error channel (nothing
/// listens, the pod is gone) makes later reads (after the bytes before it) and writes fail
/// with a [`PortError`]; a lost connection or a protocol error makes them fail with the
/// [`Error`]. Writes queue and wait as stdin's do (see the [module docs](super)).
///
/// **Closing** (or dropping) a stream cannot half-close the pod's connection: the protocol
/// has no such signal. When every port's stream is closed or dropped (and the
/// [`Portforwarder`] joined or dropped), the WebSocket connection is closed, which closes the
/// pod's connections; bytes the pod sends after that are lost. So close a stream when
/// nothing more is expected from the pod's side, or keep reading until it has all come.
pub struct PortStream {
    shared: Arc<Shared<PortForwardState>>,
    index: usize,
    port: u16,
}

impl std::fmt::Debug for PortStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortStream").field("port", &self.port).finish_non_exhaustive()
    }
}

impl PortStream {
    /// The pod's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn read_slot(&self) -> usize {
        2 * self.index
    }

    fn write_slot(&self) -> usize {
        2 * self.index + 1
    }
}

impl AsyncRead for PortStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let (index, port) = (self.index, self.port);
        self.shared.poll(self.read_slot(), cx, |state, _| {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let inbound = &mut state.proto.ports[index].inbound;
            if !inbound.is_empty() {
                return Poll::Ready(Ok(inbound.read(buf)));
            }
            if let Some(e) = state.port_error(index, port).or_else(|| state.session_error()) {
                return Poll::Ready(Err(e));
            }
            if state.ended() || state.proto.ports[index].ended {
                return Poll::Ready(Ok(0));
            }
            Poll::Pending
        })
    }
}

impl AsyncWrite for PortStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let (index, port) = (self.index, self.port);
        self.shared.poll(self.write_slot(), cx, |state, _| {
            if let Some(e) = state.port_error(index, port).or_else(|| state.session_error()) {
                return Poll::Ready(Err(e));
            }
            if !state.proto.ports[index].writing {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the stream was closed")));
            }
            if state.ended() {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the port-forward ended")));
            }
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            if !has_write_room(state.queued()) {
                return Poll::Pending;
            }
            let n = buf.len().min(MAX_WRITE_MESSAGE);
            match state.proto.session.write(index, &buf[..n]) {
                Ok(()) => Poll::Ready(Ok(n)),
                Err(e) => Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, e))),
            }
        })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shared.poll(self.write_slot(), cx, |state, _| state.flushed())
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let index = self.index;
        self.shared.poll(self.write_slot(), cx, |state, _| {
            if state.proto.ports[index].writing {
                state.proto.finish(index);
            }
            match state.flushed() {
                // Nothing is left to flush for once the connection ended cleanly.
                Poll::Ready(Err(_)) if state.failure().is_none() => Poll::Ready(Ok(())),
                other => other,
            }
        })
    }
}

impl Drop for PortStream {
    fn drop(&mut self) {
        let index = self.index;
        self.shared.command(|state| {
            let port = &mut state.proto.ports[index];
            let writing = port.writing;
            port.ended = true;
            port.inbound.drop_reader();
            if writing {
                state.proto.finish(index);
            } else {
                state.proto.close_if_done();
            }
        });
    }
}

/// How many bytes [`forward`] copied each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forwarded {
    /// From the local connection to the pod.
    pub to_pod: u64,
    /// From the pod to the local connection.
    pub from_pod: u64,
}

/// Copies both ways between a local connection (a TCP connection a runtime's listener
/// accepted, or any `AsyncRead + AsyncWrite`) and a forwarded port, until the pod's side ends.
///
/// When the local side ends (a read gives 0), the port's stream is closed — which closes the
/// port-forward connection if it is the last stream, since the protocol cannot half-close a
/// port (see [`PortStream`]); when the pod's side ends, the local connection is closed and
/// this returns. An error either way ends both and is returned. A listener makes one
/// port-forward per accepted connection, as `kubectl port-forward` does:
///
/// ```no_run
/// # async fn serve(pods: kube_runtime::Api<k8s_openapi::api::core::v1::Pod>,
/// #     local: impl futures_util::AsyncRead + futures_util::AsyncWrite + Unpin) -> Result<(), Box<dyn std::error::Error>> {
/// // `local` is an accepted connection (async-std's TcpStream, or tokio's through a compat layer).
/// let mut pf = pods.portforward("web", &[80]).await?;
/// let remote = pf.take_stream(80).unwrap();
/// let copied = kube_runtime::remote::forward(local, remote).await?;
/// pf.join().await?;
/// println!("{} bytes up, {} down", copied.to_pod, copied.from_pod);
/// # Ok(()) }
/// ```
pub async fn forward<L>(mut local: L, mut remote: PortStream) -> io::Result<Forwarded>
where
    L: AsyncRead + AsyncWrite + Unpin,
{
    let mut up = Pump::new();
    let mut down = Pump::new();
    std::future::poll_fn(|cx| {
        let up_state = if up.done { Poll::Ready(Ok(())) } else { up.poll(cx, &mut local, &mut remote) };
        if let Poll::Ready(Err(e)) = up_state {
            return Poll::Ready(Err(e));
        }
        match down.poll(cx, &mut remote, &mut local) {
            Poll::Ready(Ok(())) => Poll::Ready(Ok(Forwarded { to_pod: up.total, from_pod: down.total })),
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

/// One direction of [`forward`].
struct Pump {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    read_done: bool,
    unflushed: bool,
    done: bool,
    total: u64,
}

impl Pump {
    fn new() -> Pump {
        Pump {
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            start: 0,
            end: 0,
            read_done: false,
            unflushed: false,
            done: false,
            total: 0,
        }
    }

    fn poll<R, W>(&mut self, cx: &mut Context<'_>, from: &mut R, to: &mut W) -> Poll<io::Result<()>>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        loop {
            if self.start < self.end {
                let n = ready!(Pin::new(&mut *to).poll_write(cx, &self.buf[self.start..self.end]))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.start += n;
                self.total += n as u64;
                self.unflushed = true;
                continue;
            }
            if self.read_done {
                ready!(Pin::new(&mut *to).poll_close(cx))?;
                self.done = true;
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut *from).poll_read(cx, &mut self.buf) {
                Poll::Ready(Ok(0)) => self.read_done = true,
                Poll::Ready(Ok(n)) => {
                    self.start = 0;
                    self.end = n;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    if self.unflushed && Pin::new(&mut *to).poll_flush(cx)?.is_ready() {
                        self.unflushed = false;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
