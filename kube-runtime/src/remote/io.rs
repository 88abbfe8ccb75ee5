//! What exec and port-forward share: the connection pump, the buffers between it and the
//! readers, and the wakers of the handles that share one session.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::future::BoxFuture;
use futures_util::io::{AsyncRead, AsyncWrite};

use super::{HEARTBEAT, READ_BUFFER, READ_CHUNK};
use crate::transport::{TransportError, UpgradedStream};
use crate::{Client, Error};

/// How many rounds (a write and a read) one drive makes at most, so that a fast connection
/// does not hold the polling task forever.
const BUDGET: usize = 32;

/// A channel protocol session as the pump sees it: bytes in, bytes out. Errors stay inside
/// (the session is then over, and says so with `is_closed`).
pub(crate) trait Session {
    /// Bytes read, decoded and handed to the readers' buffers.
    fn handle_bytes(&mut self, bytes: &[u8]);
    /// The connection's read side ended.
    fn handle_eof(&mut self);
    /// Bytes to write.
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;
    /// Whether the session is over (its close sent and received, or failed).
    fn is_closed(&self) -> bool;
    /// Queues a heartbeat ping.
    fn ping(&mut self);
    /// Whether every reader has room (else the connection is not read).
    fn can_read(&self) -> bool;
}

/// The upgraded connection, moved by whichever handle is polled.
pub(crate) struct Conn {
    stream: UpgradedStream,
    client: Client,
    heartbeat: Option<BoxFuture<'static, ()>>,
    buf: Box<[u8]>,
    out: Vec<u8>,
    written: usize,
    unflushed: bool,
    /// No more reading: the session ended or was aborted.
    stop_reading: bool,
    /// The stream was closed (the session is over).
    closed: bool,
    error: Option<Error>,
}

impl Conn {
    pub(crate) fn new(stream: UpgradedStream, client: Client) -> Conn {
        let heartbeat = Some(client.transport().sleep_until(client.now() + HEARTBEAT));
        Conn {
            stream,
            client,
            heartbeat,
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            out: Vec::new(),
            written: 0,
            unflushed: false,
            stop_reading: false,
            closed: false,
            error: None,
        }
    }

    /// Whether the connection is over: closed after the session ended, or broken.
    pub(crate) fn is_over(&self) -> bool {
        self.closed || self.error.is_some()
    }

    /// Why the connection broke, if it did.
    pub(crate) fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Bytes taken from the session but not yet written.
    pub(crate) fn unwritten(&self) -> usize {
        self.out.len() - self.written
    }

    /// Whether everything taken from the session was written and flushed.
    pub(crate) fn is_flushed(&self) -> bool {
        self.unwritten() == 0 && !self.unflushed
    }

    /// Stops reading: what is queued is written (best effort), then the stream is closed.
    pub(crate) fn abort(&mut self) {
        self.stop_reading = true;
        self.heartbeat = None;
    }

    /// Writes, reads and runs the heartbeat until the connection would block (or the
    /// budget is spent, in which case `cx` is woken to come back). Returns whether anything
    /// moved.
    pub(crate) fn drive<S: Session>(&mut self, session: &mut S, cx: &mut Context<'_>) -> bool {
        if self.is_over() {
            return false;
        }
        let mut progress = self.heartbeat(session, cx);
        for round in 0.. {
            let mut moved = self.write(session, cx);
            if self.error.is_some() {
                return true;
            }
            if !self.stop_reading && !session.is_closed() && session.can_read() {
                match Pin::new(&mut self.stream).poll_read(cx, &mut self.buf) {
                    Poll::Ready(Ok(0)) => {
                        self.stop_reading = true;
                        session.handle_eof();
                        moved = true;
                    }
                    Poll::Ready(Ok(n)) => {
                        session.handle_bytes(&self.buf[..n]);
                        moved = true;
                    }
                    Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => moved = true,
                    Poll::Ready(Err(e)) => {
                        self.fail("reading", &e, session.is_closed());
                        return true;
                    }
                    Poll::Pending => {}
                }
            }
            if !moved {
                break;
            }
            progress = true;
            if round + 1 == BUDGET {
                cx.waker().wake_by_ref();
                break;
            }
        }
        if self.unwritten() == 0 && self.unflushed {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.unflushed = false;
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    self.fail("writing", &e, session.is_closed());
                    return true;
                }
                Poll::Pending => {}
            }
        }
        if (session.is_closed() || self.stop_reading) && self.is_flushed() {
            // What is left to write was written: end the stream (TLS's close_notify). An
            // error here changes nothing, the session being over.
            if let Poll::Ready(result) = Pin::new(&mut self.stream).poll_close(cx) {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "closing the upgraded connection");
                }
                self.closed = true;
                self.heartbeat = None;
                progress = true;
            }
        }
        progress
    }

    fn heartbeat<S: Session>(&mut self, session: &mut S, cx: &mut Context<'_>) -> bool {
        let mut pinged = false;
        // Twice at most: a transport on simulated time may answer a new timer at once.
        for _ in 0..2 {
            let Some(timer) = &mut self.heartbeat else { break };
            if timer.as_mut().poll(cx).is_pending() {
                break;
            }
            if session.is_closed() || self.stop_reading {
                self.heartbeat = None;
                break;
            }
            session.ping();
            pinged = true;
            self.heartbeat = Some(self.client.transport().sleep_until(self.client.now() + HEARTBEAT));
        }
        pinged
    }

    /// Writes what the session queued until the stream would block.
    fn write<S: Session>(&mut self, session: &mut S, cx: &mut Context<'_>) -> bool {
        let mut moved = false;
        loop {
            if self.written == self.out.len() {
                self.out.clear();
                self.written = 0;
                match session.poll_transmit() {
                    Some(bytes) => self.out = bytes,
                    None => return moved,
                }
            }
            match Pin::new(&mut self.stream).poll_write(cx, &self.out[self.written..]) {
                Poll::Ready(Ok(0)) => {
                    self.fail("writing", &io::Error::from(io::ErrorKind::WriteZero), session.is_closed());
                    return true;
                }
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    self.unflushed = true;
                    moved = true;
                }
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Poll::Ready(Err(e)) => {
                    self.fail("writing", &e, session.is_closed());
                    return true;
                }
                Poll::Pending => return moved,
            }
        }
    }

    /// The stream failed. Once the session is over that is its end, not an error: a server
    /// may drop the connection right after its close frame, before the echo is written.
    fn fail(&mut self, doing: &str, e: &io::Error, session_over: bool) {
        tracing::debug!(error = %e, session_over, "{doing} the upgraded connection");
        self.heartbeat = None;
        if session_over {
            self.closed = true;
        } else {
            self.error =
                Some(Error::Transport(TransportError::Closed(format!("{doing} the upgraded connection: {e}"))));
        }
    }
}

/// Bytes that arrived for one reader.
#[derive(Debug)]
pub(crate) struct Inbound {
    chunks: VecDeque<Vec<u8>>,
    /// How much of the front chunk was read.
    front: usize,
    len: usize,
    /// The reader was dropped (or never asked for): what arrives is dropped.
    dropped: bool,
}

impl Inbound {
    /// A buffer for a reader, or (`open` false) one that drops what arrives.
    pub(crate) fn new(open: bool) -> Inbound {
        Inbound { chunks: VecDeque::new(), front: 0, len: 0, dropped: !open }
    }

    pub(crate) fn push(&mut self, data: Vec<u8>) {
        if !self.dropped && !data.is_empty() {
            self.len += data.len();
            self.chunks.push_back(data);
        }
    }

    /// Whether more can be read from the connection for this reader.
    pub(crate) fn has_room(&self) -> bool {
        self.dropped || self.len < READ_BUFFER
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies out what fits in `buf`.
    pub(crate) fn read(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        while n < buf.len() {
            let Some(chunk) = self.chunks.front() else { break };
            let available = &chunk[self.front..];
            let take = available.len().min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&available[..take]);
            n += take;
            self.front += take;
            if self.front == chunk.len() {
                self.chunks.pop_front();
                self.front = 0;
            }
        }
        self.len -= n;
        n
    }

    /// The reader is gone: what is buffered and what comes is dropped.
    pub(crate) fn drop_reader(&mut self) {
        self.dropped = true;
        self.chunks.clear();
        self.front = 0;
        self.len = 0;
    }
}

/// The wakers of the handles waiting on one session, a slot per handle. Woken itself (the
/// connection and the timer are polled with it), it wakes them all.
#[derive(Debug)]
pub(crate) struct Wakers {
    slots: Mutex<Vec<Option<Waker>>>,
}

impl Wakers {
    fn lock(&self) -> MutexGuard<'_, Vec<Option<Waker>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, slot: usize, waker: &Waker) {
        let mut slots = self.lock();
        if slots.len() <= slot {
            slots.resize(slot + 1, None);
        }
        match &mut slots[slot] {
            Some(w) if w.will_wake(waker) => {}
            other => *other = Some(waker.clone()),
        }
    }

    fn clear(&self, slot: usize) {
        if let Some(w) = self.lock().get_mut(slot) {
            *w = None;
        }
    }

    /// Wakes every waiting handle but `except`.
    pub(crate) fn wake_others(&self, except: Option<usize>) {
        let woken: Vec<Waker> = {
            let mut slots = self.lock();
            slots.iter_mut().enumerate().filter(|(i, _)| Some(*i) != except).filter_map(|(_, w)| w.take()).collect()
        };
        for w in woken {
            w.wake();
        }
    }
}

impl Wake for Wakers {
    fn wake(self: Arc<Self>) {
        self.wake_others(None);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_others(None);
    }
}

/// A session's state that a handle's poll drives first.
pub(crate) trait Drive {
    /// Moves the connection; whether anything moved.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool;
}

/// One session's state, shared by its handles.
pub(crate) struct Shared<T> {
    state: Mutex<T>,
    wakers: Arc<Wakers>,
}

impl<T: Drive> Shared<T> {
    pub(crate) fn new(state: T) -> Arc<Shared<T>> {
        Arc::new(Shared { state: Mutex::new(state), wakers: Arc::new(Wakers { slots: Mutex::new(Vec::new()) }) })
    }

    fn lock(&self) -> MutexGuard<'_, T> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A poll of the handle in `slot`: drives the connection, runs `f` (which answers the
    /// handle's question, and may queue writes or free room), and drives again. The handle is
    /// woken when the connection, the timer or another handle moves; handles that this poll
    /// moved things for are woken.
    pub(crate) fn poll<R>(
        &self,
        slot: usize,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut T, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        let mut state = self.lock();
        // Registered before the connection is polled, so that a wake while this poll runs is
        // not lost.
        self.wakers.register(slot, cx.waker());
        let fan_out = Waker::from(self.wakers.clone());
        let mut fcx = Context::from_waker(&fan_out);
        let mut progress = state.drive(&mut fcx);
        let result = f(&mut state, &mut fcx);
        let after = state.drive(&mut fcx);
        drop(state);
        if after && result.is_pending() {
            // What moved after `f` may be what it waits for.
            cx.waker().wake_by_ref();
        }
        progress |= after;
        if result.is_ready() {
            self.wakers.clear(slot);
        }
        if progress {
            self.wakers.wake_others(Some(slot));
        }
        result
    }

    /// A command from outside a poll (a drop, an abort): runs `f`, then wakes every waiting
    /// handle so that one of them drives what `f` queued.
    pub(crate) fn command<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let result = f(&mut self.lock());
        self.wakers.wake_others(None);
        result
    }
}

/// An io error for a reader or writer from the session's error.
pub(crate) fn io_error(kind: io::ErrorKind, e: &Error) -> io::Error {
    io::Error::new(kind, e.clone())
}

/// The writer's room check: whether `queued` bytes leave room for more.
pub(crate) fn has_write_room(queued: usize) -> bool {
    queued < super::WRITE_BUFFER
}
