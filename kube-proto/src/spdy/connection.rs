//! One SPDY/3 connection, either end: streams opened, replied to, written, half-closed and
//! reset; pings answered; header blocks compressed and inflated.

use std::collections::{BTreeMap, VecDeque};

use super::SpdyError;
use super::frame::{self, Frame, FrameDecoder, kind};
use super::zlib::{Deflater, Inflater};

/// The most bytes one header block may inflate to (256 KiB).
const MAX_HEADER_BLOCK: usize = 256 * 1024;
/// The largest data frame this end sends (32 KiB).
pub const MAX_DATA_FRAME: usize = 32 * 1024;

/// The `RST_STREAM` status codes of SPDY/3.
pub mod status {
    /// The peer broke the protocol.
    pub const PROTOCOL_ERROR: u32 = 1;
    /// A frame for a stream that is not open.
    pub const INVALID_STREAM: u32 = 2;
    /// The stream was refused before any processing.
    pub const REFUSED_STREAM: u32 = 3;
    /// The stream is no longer needed.
    pub const CANCEL: u32 = 5;
    /// The endpoint failed.
    pub const INTERNAL_ERROR: u32 = 6;
}

/// Which end of the connection this is: the client opens odd-numbered streams, the server even
/// ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The end that sent the upgrade request.
    Client,
    /// The end that accepted it.
    Server,
}

/// What the peer did.
#[derive(Clone, PartialEq, Eq)]
pub enum SpdyEvent {
    /// The peer opened a stream (`SYN_STREAM`), with its headers; `fin` if it will not write
    /// to it.
    Opened {
        /// The stream.
        stream: u32,
        /// Its headers, names in lower case.
        headers: Vec<(String, String)>,
        /// Whether the peer's side is already closed.
        fin: bool,
    },
    /// The peer accepted a stream this end opened (`SYN_REPLY`).
    Replied {
        /// The stream.
        stream: u32,
        /// The reply's headers.
        headers: Vec<(String, String)>,
    },
    /// Bytes on a stream (never empty).
    Data {
        /// The stream.
        stream: u32,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The peer closed its side of a stream: it writes no more.
    Finished {
        /// The stream.
        stream: u32,
    },
    /// The peer reset a stream (`RST_STREAM`): both sides are closed.
    Reset {
        /// The stream.
        stream: u32,
        /// The status code (see [`status`]).
        status: u32,
    },
    /// The peer opens no more streams (`GOAWAY`).
    GoAway {
        /// The last stream of this end it processed.
        last_stream: u32,
        /// Its status code (0 for a normal end).
        status: u32,
    },
}

impl std::fmt::Debug for SpdyEvent {
    /// Lengths only for data: a stream carries anything.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpdyEvent::Data { stream, data } => write!(f, "Data {{ stream: {stream}, {} bytes }}", data.len()),
            SpdyEvent::Opened { stream, headers, fin } => {
                f.debug_struct("Opened").field("stream", stream).field("headers", headers).field("fin", fin).finish()
            }
            SpdyEvent::Replied { stream, headers } => {
                f.debug_struct("Replied").field("stream", stream).field("headers", headers).finish()
            }
            SpdyEvent::Finished { stream } => f.debug_struct("Finished").field("stream", stream).finish(),
            SpdyEvent::Reset { stream, status } => {
                f.debug_struct("Reset").field("stream", stream).field("status", status).finish()
            }
            SpdyEvent::GoAway { last_stream, status } => {
                f.debug_struct("GoAway").field("last_stream", last_stream).field("status", status).finish()
            }
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct StreamState {
    /// This end wrote its FIN.
    local_fin: bool,
    /// The peer wrote its FIN.
    remote_fin: bool,
}

/// A SPDY/3 connection after the HTTP upgrade: bytes in, events and bytes out, no IO.
///
/// Flow control: like the SPDY implementation Kubernetes servers use (moby's `spdystream`),
/// this end neither enforces receive windows nor waits for `WINDOW_UPDATE`; the transport's own
/// backpressure paces the streams.
#[derive(Debug, Clone)]
pub struct SpdyConnection {
    role: Role,
    decoder: FrameDecoder,
    inflater: Inflater,
    deflater: Deflater,
    next_stream: u32,
    next_ping: u32,
    /// The highest stream id the peer opened.
    last_remote: u32,
    streams: BTreeMap<u32, StreamState>,
    out: VecDeque<Vec<u8>>,
    out_len: usize,
    events: VecDeque<SpdyEvent>,
    goaway_sent: bool,
    goaway_received: bool,
    eof: bool,
    failed: Option<SpdyError>,
}

impl SpdyConnection {
    /// A connection for this end.
    pub fn new(role: Role) -> SpdyConnection {
        let first = match role {
            Role::Client => 1,
            Role::Server => 2,
        };
        SpdyConnection {
            role,
            decoder: FrameDecoder::default(),
            inflater: Inflater::new(MAX_HEADER_BLOCK),
            deflater: Deflater::default(),
            next_stream: first,
            next_ping: first,
            last_remote: 0,
            streams: BTreeMap::new(),
            out: VecDeque::new(),
            out_len: 0,
            events: VecDeque::new(),
            goaway_sent: false,
            goaway_received: false,
            eof: false,
            failed: None,
        }
    }

    /// This end's role.
    pub fn role(&self) -> Role {
        self.role
    }

    // ---- inputs ----

    /// Takes in bytes read from the connection (any chunking). A protocol error fails the
    /// connection: it is returned now and for every later call, and a `GOAWAY` with a
    /// protocol error is queued for the peer.
    pub fn handle_bytes(&mut self, bytes: &[u8]) -> Result<(), SpdyError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.decoder.push(bytes);
        loop {
            let result = match self.decoder.next() {
                Ok(None) => return Ok(()),
                Ok(Some(frame)) => self.on_frame(frame),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                self.send_goaway(status::PROTOCOL_ERROR);
                self.failed = Some(e.clone());
                return Err(e);
            }
        }
    }

    /// The byte stream ended. Fine after a `GOAWAY` either way, or with every stream closed on
    /// the peer's side; otherwise [`SpdyError::ConnectionLost`].
    pub fn handle_eof(&mut self) -> Result<(), SpdyError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.eof = true;
        let open = self.streams.values().filter(|s| !s.remote_fin).count();
        if self.goaway_sent || self.goaway_received || open == 0 {
            return Ok(());
        }
        let e = SpdyError::ConnectionLost { open_streams: open, mid_frame: self.decoder.in_progress() };
        self.failed = Some(e.clone());
        Err(e)
    }

    // ---- commands ----

    /// Opens a stream with these headers (`SYN_STREAM`); with `fin`, this end will not write to
    /// it. Returns its id.
    pub fn open(&mut self, headers: &[(&str, &str)], fin: bool) -> Result<u32, SpdyError> {
        self.check_open()?;
        if self.goaway_received {
            return Err(SpdyError::GoingAway);
        }
        let stream = self.next_stream;
        if stream > 0x7fff_ffff {
            return Err(SpdyError::StreamsExhausted);
        }
        self.next_stream += 2;
        let mut block = Vec::new();
        self.deflater.compress(&frame::encode_block(headers), &mut block);
        let mut out = Vec::with_capacity(18 + block.len());
        // Associated stream 0, priority 0, slot 0.
        let flags = if fin { frame::FLAG_FIN } else { 0 };
        frame::encode_control(&mut out, kind::SYN_STREAM, flags, &[&stream.to_be_bytes(), &[0; 6], &block]);
        self.push(out);
        self.streams.insert(stream, StreamState { local_fin: fin, remote_fin: false });
        Ok(stream)
    }

    /// Accepts a stream the peer opened (`SYN_REPLY`).
    pub fn reply(&mut self, stream: u32, headers: &[(&str, &str)], fin: bool) -> Result<(), SpdyError> {
        self.check_open()?;
        let state = self.streams.get_mut(&stream).ok_or(SpdyError::NoSuchStream { stream })?;
        state.local_fin |= fin;
        let mut block = Vec::new();
        self.deflater.compress(&frame::encode_block(headers), &mut block);
        let mut out = Vec::with_capacity(12 + block.len());
        let flags = if fin { frame::FLAG_FIN } else { 0 };
        frame::encode_control(&mut out, kind::SYN_REPLY, flags, &[&stream.to_be_bytes(), &block]);
        self.push(out);
        self.forget_if_done(stream);
        Ok(())
    }

    /// Queues bytes on a stream (in frames of at most [`MAX_DATA_FRAME`] bytes; nothing for an
    /// empty slice).
    pub fn write(&mut self, stream: u32, data: &[u8]) -> Result<(), SpdyError> {
        self.check_open()?;
        let state = self.streams.get(&stream).ok_or(SpdyError::NoSuchStream { stream })?;
        if state.local_fin {
            return Err(SpdyError::StreamFinished { stream });
        }
        for chunk in data.chunks(MAX_DATA_FRAME) {
            let mut out = Vec::with_capacity(8 + chunk.len());
            frame::encode_data(&mut out, stream, false, chunk);
            self.push(out);
        }
        Ok(())
    }

    /// Closes this end's side of a stream (an empty data frame with FIN). Again does nothing.
    pub fn finish(&mut self, stream: u32) -> Result<(), SpdyError> {
        self.check_open()?;
        let state = self.streams.get_mut(&stream).ok_or(SpdyError::NoSuchStream { stream })?;
        if state.local_fin {
            return Ok(());
        }
        state.local_fin = true;
        let mut out = Vec::with_capacity(8);
        frame::encode_data(&mut out, stream, true, &[]);
        self.push(out);
        self.forget_if_done(stream);
        Ok(())
    }

    /// Resets a stream (`RST_STREAM`): both sides end now.
    pub fn reset(&mut self, stream: u32, status: u32) -> Result<(), SpdyError> {
        self.check_open()?;
        self.streams.remove(&stream);
        self.send_rst(stream, status);
        Ok(())
    }

    /// Queues a ping (a heartbeat; the peer echoes it).
    pub fn ping(&mut self) -> Result<(), SpdyError> {
        self.check_open()?;
        let id = self.next_ping;
        self.next_ping = self.next_ping.wrapping_add(2);
        let mut out = Vec::with_capacity(12);
        frame::encode_control(&mut out, kind::PING, 0, &[&id.to_be_bytes()]);
        self.push(out);
        Ok(())
    }

    /// Says this end is done (`GOAWAY`, status 0): the session is over once it is written.
    /// Again does nothing.
    pub fn close(&mut self) {
        if self.failed.is_none() {
            self.send_goaway(0);
        }
    }

    // ---- outputs ----

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<SpdyEvent> {
        self.events.pop_front()
    }

    /// The bytes to write to the connection, if any, in order.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let first = self.out.pop_front()?;
        // Small frames go out together.
        let mut bytes = first;
        while bytes.len() < MAX_DATA_FRAME
            && let Some(next) = self.out.front()
            && bytes.len() + next.len() <= MAX_DATA_FRAME + 8
        {
            let next = self.out.pop_front().expect("a front frame");
            bytes.extend_from_slice(&next);
        }
        self.out_len -= bytes.len();
        Some(bytes)
    }

    /// How many bytes wait to be written.
    pub fn pending_transmit(&self) -> usize {
        self.out_len
    }

    /// Whether the session is over: this end's `GOAWAY` queued, the byte stream ended, or the
    /// connection failed.
    pub fn is_closed(&self) -> bool {
        self.goaway_sent || self.eof || self.failed.is_some()
    }

    /// Whether the peer sent `GOAWAY`.
    pub fn is_going_away(&self) -> bool {
        self.goaway_received
    }

    /// Whether a stream is open on either side.
    pub fn is_open(&self, stream: u32) -> bool {
        self.streams.contains_key(&stream)
    }

    // ---- internals ----

    fn check_open(&self) -> Result<(), SpdyError> {
        if self.failed.is_some() || self.goaway_sent || self.eof {
            return Err(SpdyError::Closed);
        }
        Ok(())
    }

    fn push(&mut self, bytes: Vec<u8>) {
        self.out_len += bytes.len();
        self.out.push_back(bytes);
    }

    fn send_rst(&mut self, stream: u32, status: u32) {
        let mut out = Vec::with_capacity(16);
        frame::encode_control(&mut out, kind::RST_STREAM, 0, &[&stream.to_be_bytes(), &status.to_be_bytes()]);
        self.push(out);
    }

    fn send_goaway(&mut self, status: u32) {
        if self.goaway_sent {
            return;
        }
        self.goaway_sent = true;
        let mut out = Vec::with_capacity(16);
        frame::encode_control(&mut out, kind::GOAWAY, 0, &[&self.last_remote.to_be_bytes(), &status.to_be_bytes()]);
        self.push(out);
    }

    fn forget_if_done(&mut self, stream: u32) {
        if self.streams.get(&stream).is_some_and(|s| s.local_fin && s.remote_fin) {
            self.streams.remove(&stream);
        }
    }

    fn is_peers(&self, stream: u32) -> bool {
        match self.role {
            Role::Client => stream.is_multiple_of(2),
            Role::Server => !stream.is_multiple_of(2),
        }
    }

    fn headers(&mut self, block: &[u8]) -> Result<Vec<(String, String)>, SpdyError> {
        let inflated = self.inflater.inflate(block).map_err(SpdyError::Compression)?;
        frame::decode_block(&inflated)
    }

    fn on_frame(&mut self, frame: Frame) -> Result<(), SpdyError> {
        match frame {
            Frame::Data { stream, fin, data } => {
                let Some(state) = self.streams.get_mut(&stream) else {
                    // Data racing a reset, or for a stream never opened: refused, not fatal.
                    self.send_rst(stream, status::INVALID_STREAM);
                    return Ok(());
                };
                if state.remote_fin {
                    return Err(SpdyError::DataAfterFin { stream });
                }
                if !data.is_empty() {
                    self.events.push_back(SpdyEvent::Data { stream, data });
                }
                if fin {
                    self.remote_fin(stream);
                }
            }
            Frame::SynStream { stream, fin, block } => {
                // Every block inflates in order, even one of a stream refused.
                let headers = self.headers(&block)?;
                if stream == 0 || !self.is_peers(stream) || stream <= self.last_remote {
                    return Err(SpdyError::BadStreamId { stream });
                }
                self.last_remote = stream;
                if self.goaway_sent {
                    self.send_rst(stream, status::REFUSED_STREAM);
                    return Ok(());
                }
                self.streams.insert(stream, StreamState { local_fin: false, remote_fin: fin });
                self.events.push_back(SpdyEvent::Opened { stream, headers, fin });
            }
            Frame::SynReply { stream, fin, block } => {
                let headers = self.headers(&block)?;
                if !self.streams.contains_key(&stream) {
                    return Ok(());
                }
                self.events.push_back(SpdyEvent::Replied { stream, headers });
                if fin {
                    self.remote_fin(stream);
                }
            }
            Frame::Headers { stream, fin, block } => {
                self.headers(&block)?;
                if fin && self.streams.contains_key(&stream) {
                    self.remote_fin(stream);
                }
            }
            Frame::RstStream { stream, status } => {
                if self.streams.remove(&stream).is_some() {
                    self.events.push_back(SpdyEvent::Reset { stream, status });
                }
            }
            Frame::Ping { id } => {
                // The peer's pings (of its parity) are echoed; echoes of this end's are dropped.
                if self.is_peers(id) {
                    let mut out = Vec::with_capacity(12);
                    frame::encode_control(&mut out, kind::PING, 0, &[&id.to_be_bytes()]);
                    self.push(out);
                }
            }
            Frame::GoAway { last_stream, status } => {
                self.goaway_received = true;
                self.events.push_back(SpdyEvent::GoAway { last_stream, status });
            }
            Frame::Ignored => {}
        }
        Ok(())
    }

    fn remote_fin(&mut self, stream: u32) {
        if let Some(state) = self.streams.get_mut(&stream) {
            state.remote_fin = true;
            self.events.push_back(SpdyEvent::Finished { stream });
            self.forget_if_done(stream);
        }
    }
}
