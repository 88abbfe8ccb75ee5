//! An exec'd or attached process: stdin, stdout, stderr, resizes and its exit status over one
//! upgraded connection.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_channel::mpsc;
use futures_util::StreamExt as _;
use futures_util::io::{AsyncRead, AsyncWrite};
use kube_proto::Status;
use kube_proto::channel::{ChannelProtocol, ExecError, ExecEvent, ExecSession, TerminalSize, exit_code};
use kube_proto::websocket::Masks;

use super::io::{Conn, Drive, Inbound, Session, Shared, has_write_room, io_error};
use super::{MAX_WRITE_MESSAGE, connect};
use crate::{Client, Error};

const STDOUT: usize = 0;
const STDERR: usize = 1;
const STDIN: usize = 2;
const JOIN: usize = 3;

/// How many resizes may wait in the [`TerminalSizeSender`]'s channel.
const RESIZE_QUEUE: usize = 8;

/// Sends terminal resizes to an attached process (with a tty), through a channel of 8 drained
/// by whichever handle of the process is polled. Clones send to the same process.
#[derive(Debug, Clone)]
pub struct TerminalSizeSender {
    tx: mpsc::Sender<TerminalSize>,
}

impl TerminalSizeSender {
    /// Queues a resize, waiting while 8 are queued. Once the session has ended it is
    /// [`ExecError::Closed`].
    pub async fn send(&mut self, size: TerminalSize) -> Result<(), ExecError> {
        std::future::poll_fn(|cx| self.tx.poll_ready(cx)).await.map_err(|_| ExecError::Closed)?;
        self.tx.start_send(size).map_err(|_| ExecError::Closed)
    }

    /// Queues a resize if there is room: `Ok(false)` when 8 wait (a terminal resized that fast
    /// can skip one), [`ExecError::Closed`] once the session has ended.
    pub fn try_send(&mut self, size: TerminalSize) -> Result<bool, ExecError> {
        match self.tx.try_send(size) {
            Ok(()) => Ok(true),
            Err(e) if e.is_full() => Ok(false),
            Err(_) => Err(ExecError::Closed),
        }
    }
}

/// How a command ended: its exit code and the `Status` the error channel gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitStatus {
    code: i32,
    status: Status,
}

impl ExitStatus {
    /// The exit code: 0 for `Success`, else the `ExitCode` cause of a `NonZeroExitCode`.
    pub fn code(&self) -> i32 {
        self.code
    }

    /// Whether the command exited with 0.
    pub fn success(&self) -> bool {
        self.code == 0
    }

    /// The `Status` as the server sent it.
    pub fn status(&self) -> &Status {
        &self.status
    }
}

/// A process that [`Api::exec`](crate::Api::exec) started or [`Api::attach`](crate::Api::attach)
/// attached to.
///
/// Take the streams asked for in the [`AttachParams`](kube_proto::AttachParams) with
/// [`stdin`](Self::stdin), [`stdout`](Self::stdout), [`stderr`](Self::stderr) and (with a tty)
/// [`terminal_size`](Self::terminal_size), then await [`join`](Self::join) for the exit status
/// while reading and writing them (with `futures::join!`, or on other tasks). The [module
/// docs](super) tell how the connection is driven without a spawned task and how the buffers
/// hold back a fast command.
///
/// ```
/// # #[cfg(feature = "fake")] {
/// use futures_util::{AsyncReadExt, AsyncWriteExt};
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_proto::AttachParams;
/// use kube_runtime::fake::{FakeTransport, server::exec::ExecScript};
/// use kube_runtime::{Api, Client};
///
/// futures_executor::block_on(async {
///     let (transport, config) = FakeTransport::new();
///     let pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "blog"},
///         "spec": {"containers": [{"name": "main", "image": "busybox"}]}})).unwrap();
///     transport.server().script_exec("default", "blog", None, ExecScript::cat());
///     let pods: Api<Pod> = Api::default_namespaced(Client::new(transport, config).unwrap());
///     pods.create(&Default::default(), &pod).await.unwrap();
///
///     let mut cat = pods.exec("blog", ["cat"], &AttachParams::default().stdin(true).stderr(false)).await.unwrap();
///     let mut stdin = cat.stdin().unwrap();
///     let mut stdout = cat.stdout().unwrap();
///     stdin.write_all(b"hello\n").await.unwrap();
///     stdin.close().await.unwrap(); // v5: the command reads the end of its input
///     let mut out = String::new();
///     stdout.read_to_string(&mut out).await.unwrap();
///     assert_eq!(out, "hello\n");
///     assert_eq!(cat.join().await.unwrap().code(), 0);
/// });
/// # }
/// ```
pub struct AttachedProcess {
    shared: Arc<Shared<ExecState>>,
    protocol: ChannelProtocol,
    stdin: Option<ProcessStdin>,
    stdout: Option<ProcessOutput>,
    stderr: Option<ProcessOutput>,
    resize: Option<TerminalSizeSender>,
}

impl std::fmt::Debug for AttachedProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachedProcess").field("protocol", &self.protocol).finish_non_exhaustive()
    }
}

impl AttachedProcess {
    /// Sends an exec or attach request and starts the session.
    pub(crate) async fn start(
        client: &Client,
        request: http::Request<Vec<u8>>,
        params: &kube_proto::AttachParams,
    ) -> Result<AttachedProcess, Error> {
        let (protocol, stream) = connect(client, request).await?;
        let protocol = ChannelProtocol::parse(&protocol).ok_or_else(|| {
            Error::Handshake(kube_proto::websocket::HandshakeError::UnexpectedProtocol {
                chosen: protocol.clone(),
                offered: kube_proto::request::EXEC_PROTOCOLS.split(", ").map(str::to_owned).collect(),
            })
        })?;
        let session = ExecSession::new(protocol, Masks::new(client.nonce()));
        let (resize_tx, resize_rx) = if params.tty && protocol.has_resize() {
            let (tx, rx) = mpsc::channel(RESIZE_QUEUE);
            (Some(TerminalSizeSender { tx }), Some(rx))
        } else {
            (None, None)
        };
        let state = ExecState {
            conn: Conn::new(stream, client.clone()),
            proto: ExecProto {
                session,
                stdout: Inbound::new(params.stdout),
                stderr: Inbound::new(params.stderr),
                error: None,
            },
            resize: resize_rx,
            stdin_closed: !params.stdin,
            aborted: false,
        };
        let shared = Shared::new(state);
        let output = |channel, on: bool| on.then(|| ProcessOutput { shared: shared.clone(), channel });
        Ok(AttachedProcess {
            protocol,
            stdin: params.stdin.then(|| ProcessStdin { shared: shared.clone() }),
            stdout: output(STDOUT, params.stdout),
            stderr: output(STDERR, params.stderr),
            resize: resize_tx,
            shared,
        })
    }

    /// The channel protocol the server chose: `v5.channel.k8s.io`, or `v4.channel.k8s.io`
    /// from an older server (whose stdin cannot be closed alone, see [`ProcessStdin`]).
    pub fn protocol(&self) -> ChannelProtocol {
        self.protocol
    }

    /// The command's stdin, once, when [`AttachParams::stdin`](kube_proto::AttachParams) was
    /// asked for.
    pub fn stdin(&mut self) -> Option<ProcessStdin> {
        self.stdin.take()
    }

    /// The command's stdout, once (unless `stdout` was off). Output that arrives before it is
    /// taken waits for it (see the [module docs](super) for the limit).
    pub fn stdout(&mut self) -> Option<ProcessOutput> {
        self.stdout.take()
    }

    /// The command's stderr, once (unless `stderr` was off, as it is with a tty).
    pub fn stderr(&mut self) -> Option<ProcessOutput> {
        self.stderr.take()
    }

    /// The sender of terminal resizes, once, when a tty was asked for.
    pub fn terminal_size(&mut self) -> Option<TerminalSizeSender> {
        self.resize.take()
    }

    /// Waits for the command to end and the connection to close: its [`ExitStatus`] (a
    /// non-zero exit code is not an error), or why there is none — the command could not run
    /// or the kubelet failed ([`ExecError::Failed`] in [`Error::Exec`], with the `Status`), the
    /// connection was lost before the status ([`Error::Exec`] with
    /// [`ExecError::ConnectionLost`], or [`Error::Transport`] for an IO error), the server broke
    /// the protocol, or the session was [aborted](Self::abort) ([`Error::Aborted`]).
    ///
    /// Streams not taken by now are given up: stdin is closed (on `v5.channel.k8s.io`) and
    /// output for stdout and stderr is dropped. Taken readers keep their output, and must be
    /// read while this is awaited: a full reader holds the connection up.
    pub async fn join(self) -> Result<ExitStatus, Error> {
        let AttachedProcess { shared, stdin, stdout, stderr, resize, .. } = self;
        drop((stdin, stdout, stderr, resize));
        std::future::poll_fn(|cx| shared.poll(JOIN, cx, |state, _| state.outcome())).await
    }

    /// Ends the session now: a WebSocket close is queued and written, with the connection's
    /// end, by the next poll of any handle (best effort, nothing waits for the server's
    /// answer). Readers see the end of their stream (output not yet read is dropped), writes
    /// fail, and `join` gives [`Error::Aborted`] unless the command's status had arrived.
    pub fn abort(&self) {
        self.shared.command(|state| {
            state.aborted = true;
            let _ = state.proto.session.close();
            state.conn.abort();
            state.proto.stdout.drop_reader();
            state.proto.stderr.drop_reader();
        });
    }
}

/// The session's state behind the handles' mutex.
pub(crate) struct ExecState {
    conn: Conn,
    proto: ExecProto,
    resize: Option<mpsc::Receiver<TerminalSize>>,
    /// Stdin was closed, dropped or never asked for: no more writes.
    stdin_closed: bool,
    aborted: bool,
}

struct ExecProto {
    session: ExecSession,
    stdout: Inbound,
    stderr: Inbound,
    /// The session's error, as it first came.
    error: Option<ExecError>,
}

impl ExecProto {
    fn drain(&mut self, result: Result<(), ExecError>) {
        if let Err(e) = result {
            tracing::debug!(error = %e, "exec session");
            self.error.get_or_insert(e);
        }
        while let Some(event) = self.session.poll_event() {
            match event {
                ExecEvent::Stdout(data) => self.stdout.push(data),
                ExecEvent::Stderr(data) => self.stderr.push(data),
                // Kept by the session, read by `join`.
                ExecEvent::Status(_) | ExecEvent::Closed(_) => {}
            }
        }
    }
}

impl Session for ExecProto {
    fn handle_bytes(&mut self, bytes: &[u8]) {
        let result = self.session.handle_bytes(bytes);
        self.drain(result);
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
        let _ = self.session.ping(b"");
    }

    fn can_read(&self) -> bool {
        self.stdout.has_room() && self.stderr.has_room()
    }
}

impl Drive for ExecState {
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        let mut moved = false;
        if let Some(rx) = &mut self.resize {
            loop {
                match rx.poll_next_unpin(cx) {
                    Poll::Ready(Some(size)) => {
                        // Fails only once the session is closing, when a resize is moot.
                        let _ = self.proto.session.resize(size);
                        moved = true;
                    }
                    Poll::Ready(None) => {
                        self.resize = None;
                        break;
                    }
                    Poll::Pending => break,
                }
            }
        }
        self.conn.drive(&mut self.proto, cx) | moved
    }
}

impl ExecState {
    /// Why the session broke, if it did and no status came first.
    fn failure(&self) -> Option<Error> {
        if self.proto.session.status().is_some() {
            return None;
        }
        if let Some(e) = self.conn.error() {
            return Some(e.clone());
        }
        self.proto.error.clone().map(Error::Exec)
    }

    /// Whether output has ended: the status came, or the session is over.
    fn output_ended(&self) -> bool {
        self.aborted || self.proto.session.status().is_some() || self.proto.session.is_closed() || self.conn.is_over()
    }

    fn outcome(&mut self) -> Poll<Result<ExitStatus, Error>> {
        if !self.conn.is_over() && !self.aborted {
            return Poll::Pending;
        }
        if let Some(status) = self.proto.session.status() {
            return Poll::Ready(match exit_code(status) {
                Ok(code) => Ok(ExitStatus { code, status: status.clone() }),
                Err(e) => Err(Error::Exec(e)),
            });
        }
        if let Some(e) = self.failure() {
            return Poll::Ready(Err(e));
        }
        if self.aborted {
            return Poll::Ready(Err(Error::Aborted));
        }
        Poll::Ready(match self.proto.session.exit_code() {
            Some(Err(e)) => Err(Error::Exec(e)),
            // Without a status, `exit_code` has none to give.
            Some(Ok(_)) | None => Err(Error::Exec(ExecError::NoStatus { close: None })),
        })
    }

    fn inbound(&mut self, channel: usize) -> &mut Inbound {
        if channel == STDOUT { &mut self.proto.stdout } else { &mut self.proto.stderr }
    }

    /// The bytes queued for the connection.
    fn queued(&self) -> usize {
        self.conn.unwritten() + self.proto.session.pending_transmit()
    }

    fn flushed(&mut self) -> Poll<io::Result<()>> {
        if self.queued() == 0 && self.conn.is_flushed() {
            return Poll::Ready(Ok(()));
        }
        if let Some(e) = self.failure() {
            return Poll::Ready(Err(io_error(error_kind(&e), &e)));
        }
        if self.conn.is_over() || self.aborted {
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the exec session ended")));
        }
        Poll::Pending
    }
}

/// The io error kind a session's error reads as.
fn error_kind(e: &Error) -> io::ErrorKind {
    match e {
        Error::Exec(ExecError::ConnectionLost { .. }) => io::ErrorKind::UnexpectedEof,
        Error::Exec(_) => io::ErrorKind::InvalidData,
        _ => io::ErrorKind::ConnectionAborted,
    }
}

/// The command's stdout or stderr: an `AsyncRead` that ends when the command's status
/// arrives or the connection closes, after everything before it was read. A connection lost
/// before the status, or a protocol error, is an io error carrying the [`Error`]
/// ([`io::Error::get_ref`] downcasts to it).
///
/// Dropping it drops the output that comes for it, rather than holding the connection up.
pub struct ProcessOutput {
    shared: Arc<Shared<ExecState>>,
    channel: usize,
}

impl std::fmt::Debug for ProcessOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.channel == STDOUT { "ProcessOutput(stdout)" } else { "ProcessOutput(stderr)" })
    }
}

impl AsyncRead for ProcessOutput {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let channel = self.channel;
        self.shared.poll(channel, cx, |state, _| {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            let inbound = state.inbound(channel);
            if !inbound.is_empty() {
                return Poll::Ready(Ok(inbound.read(buf)));
            }
            if let Some(e) = state.failure() {
                return Poll::Ready(Err(io_error(error_kind(&e), &e)));
            }
            if state.output_ended() {
                return Poll::Ready(Ok(0));
            }
            Poll::Pending
        })
    }
}

impl Drop for ProcessOutput {
    fn drop(&mut self) {
        let channel = self.channel;
        self.shared.command(|state| state.inbound(channel).drop_reader());
    }
}

/// The command's stdin: an `AsyncWrite`. Each write queues one WebSocket message (at most
/// [`MAX_WRITE_MESSAGE`](super::MAX_WRITE_MESSAGE) bytes), and waits while
/// [`WRITE_BUFFER`](super::WRITE_BUFFER) bytes are queued; `flush` waits until they are
/// written to the connection.
///
/// **Closing** it (`close`, or dropping it) ends the command's input with
/// `v5.channel.k8s.io`'s CLOSE signal: a `cat` then ends, and its output and status still
/// come. With `v4.channel.k8s.io` (servers before Kubernetes 1.30) there is no such signal:
/// closing flushes and makes later writes fail, but the command's stdin stays open until the
/// connection closes — a command that reads its input to the end does not end by itself;
/// [`AttachedProcess::abort`] ends it (without its status). [`AttachedProcess::protocol`]
/// tells which applies.
///
/// Writes after the command ended, the session was aborted or the connection broke fail
/// (`BrokenPipe`, or the session's error).
pub struct ProcessStdin {
    shared: Arc<Shared<ExecState>>,
}

impl std::fmt::Debug for ProcessStdin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProcessStdin")
    }
}

impl ProcessStdin {
    /// Ends stdin in the session (see the type's docs); a second call does nothing.
    fn close_in(state: &mut ExecState) {
        if state.stdin_closed {
            return;
        }
        state.stdin_closed = true;
        if state.proto.session.protocol().has_stdin_close() {
            // Fails only when the session is closing already.
            let _ = state.proto.session.close_stdin();
        } else {
            tracing::debug!(
                protocol = %state.proto.session.protocol(),
                "stdin closed: the protocol cannot signal it, the command's stdin stays open"
            );
        }
    }
}

impl AsyncWrite for ProcessStdin {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.shared.poll(STDIN, cx, |state, _| {
            if let Some(e) = state.failure() {
                return Poll::Ready(Err(io_error(error_kind(&e), &e)));
            }
            if state.stdin_closed {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "stdin was closed")));
            }
            if state.output_ended() {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "the command has ended")));
            }
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            if !has_write_room(state.queued()) {
                return Poll::Pending;
            }
            let n = buf.len().min(MAX_WRITE_MESSAGE);
            match state.proto.session.write_stdin(&buf[..n]) {
                Ok(()) => Poll::Ready(Ok(n)),
                Err(e) => Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, e))),
            }
        })
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shared.poll(STDIN, cx, |state, _| state.flushed())
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shared.poll(STDIN, cx, |state, _| {
            ProcessStdin::close_in(state);
            match state.flushed() {
                // Once the command ended, its stdin closing has nothing left to flush for.
                Poll::Ready(Err(_)) if state.output_ended() && state.failure().is_none() => Poll::Ready(Ok(())),
                other => other,
            }
        })
    }
}

impl Drop for ProcessStdin {
    fn drop(&mut self) {
        self.shared.command(ProcessStdin::close_in);
    }
}
