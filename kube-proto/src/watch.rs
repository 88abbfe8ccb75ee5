//! Watch events, and a decoder fed body bytes in any chunking.
//!
//! A watch body is newline-delimited JSON, one `{"type": ..., "object": ...}` per line. The
//! decoder buffers partial lines, parses each complete line exactly once (validating UTF-8 once,
//! then parsing as `str`, which is faster than parsing bytes), and reports a malformed line as
//! a [`WatchDecodeError`] without disturbing the lines after it. A line longer than the frame
//! limit ([`DEFAULT_MAX_FRAME`], 16 MiB, unless set with [`WatchDecoder::with_max_frame`]) is
//! not buffered: it is dropped, reported once as [`WatchDecodeErrorKind::TooLarge`], and the
//! decoder skips to the next newline, so that the lines after it still decode.
//!
//! ```
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_proto::{WatchDecoder, WatchEvent};
//!
//! let mut decoder = WatchDecoder::<ConfigMap>::new();
//! decoder.push(br#"{"type":"ADDED","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"5"}}}
//! {"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"#);
//! assert!(matches!(decoder.next_event(), Some(Ok(WatchEvent::Added(_)))));
//! assert!(decoder.next_event().is_none()); // the bookmark is not complete yet
//! decoder.push(b"\"7\"}}}\n");
//! match decoder.next_event() {
//!     Some(Ok(WatchEvent::Bookmark(b))) => assert_eq!(b.metadata.resource_version, "7"),
//!     other => panic!("{other:?}"),
//! }
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Status;

/// The longest watch event (one line) a decoder buffers by default: 16 MiB, the frame limit of
/// the streaming decoder client-go reads watch bodies with (`maxBytes` of
/// `k8s.io/apimachinery/pkg/runtime/serializer/streaming.NewDecoder`, whose `ErrObjectTooLarge`
/// is this limit's error). etcd's default request limit (1.5 MiB) keeps real objects far below it.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// The annotation on the bookmark that ends a streaming list's initial events.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// One event of a watch.
#[derive(Debug, Clone, PartialEq)]
// `K` is an object, usually larger than a `Status`: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum WatchEvent<K> {
    /// An object was created (or entered the selector, or is part of the initial state).
    Added(K),
    /// An object changed.
    Modified(K),
    /// An object was deleted (or left the selector); it carries the deletion's resourceVersion.
    Deleted(K),
    /// Progress: everything up to this resourceVersion has been sent.
    Bookmark(Bookmark),
    /// An error inside the stream, such as 410 Expired for a resourceVersion that is too old.
    Error(Status),
}

impl<K> WatchEvent<K> {
    /// The event type as the server spells it.
    pub fn type_name(&self) -> &'static str {
        match self {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        }
    }
}

/// The object of a BOOKMARK event: only `metadata.resourceVersion` (and annotations) are
/// meaningful, whatever the kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bookmark {
    /// The bookmark's metadata.
    #[serde(default)]
    pub metadata: BookmarkMeta,
}

/// The metadata of a bookmark.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookmarkMeta {
    /// Resume a watch from here.
    #[serde(rename = "resourceVersion", default)]
    pub resource_version: String,
    /// Annotations, such as `k8s.io/initial-events-end: "true"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Bookmark {
    /// Whether this bookmark ends the initial events of a streaming list.
    pub fn is_initial_events_end(&self) -> bool {
        self.metadata.annotations.get(INITIAL_EVENTS_END).is_some_and(|v| v == "true")
    }
}

#[derive(Clone, Copy)]
enum EventType {
    Added,
    Modified,
    Deleted,
    Bookmark,
    Error,
}

impl EventType {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADDED" => EventType::Added,
            "MODIFIED" => EventType::Modified,
            "DELETED" => EventType::Deleted,
            "BOOKMARK" => EventType::Bookmark,
            "ERROR" => EventType::Error,
            _ => return None,
        })
    }
}

/// The object, decoded according to an already known event type.
struct ObjectSeed<K>(EventType, PhantomData<K>);

impl<'de, K: Deserialize<'de>> DeserializeSeed<'de> for ObjectSeed<K> {
    type Value = WatchEvent<K>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Ok(match self.0 {
            EventType::Added => WatchEvent::Added(K::deserialize(d)?),
            EventType::Modified => WatchEvent::Modified(K::deserialize(d)?),
            EventType::Deleted => WatchEvent::Deleted(K::deserialize(d)?),
            EventType::Bookmark => WatchEvent::Bookmark(Bookmark::deserialize(d)?),
            EventType::Error => WatchEvent::Error(Status::deserialize(d)?),
        })
    }
}

impl<'de, K: Deserialize<'de>> Deserialize<'de> for WatchEvent<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EventVisitor<K>(PhantomData<K>);
        impl<'de, K: Deserialize<'de>> Visitor<'de> for EventVisitor<K> {
            type Value = WatchEvent<K>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a watch event: {\"type\": ..., \"object\": ...}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut ty: Option<EventType> = None;
                let mut event: Option<WatchEvent<K>> = None;
                // The object, kept as a JSON value when it comes before the type (the server sends
                // the type first, so this is the rare path; a `Value` works with any deserializer).
                let mut early: Option<serde_json::Value> = None;
                while let Some(Str(key)) = map.next_key::<Str<'de>>()? {
                    match key.as_ref() {
                        "type" => {
                            let Str(s) = map.next_value::<Str<'de>>()?;
                            ty = Some(EventType::parse(&s).ok_or_else(|| {
                                de::Error::custom(format_args!(
                                    "unknown watch event type {s:?} (expected ADDED, MODIFIED, DELETED, BOOKMARK or ERROR)"
                                ))
                            })?);
                        }
                        "object" => match ty {
                            Some(t) if event.is_none() => {
                                event = Some(map.next_value_seed(ObjectSeed(t, PhantomData))?)
                            }
                            _ => early = Some(map.next_value()?),
                        },
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                if let Some(e) = event {
                    return Ok(e);
                }
                let ty = ty.ok_or_else(|| de::Error::missing_field("type"))?;
                let object = early.ok_or_else(|| de::Error::missing_field("object"))?;
                ObjectSeed::<K>(ty, PhantomData).deserialize(object).map_err(de::Error::custom)
            }
        }
        d.deserialize_map(EventVisitor(PhantomData))
    }
}

/// A string that borrows from the input when it can (`Cow<str>`'s own `Deserialize` always
/// allocates). It accepts what `String` does, with the same errors.
struct Str<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
                match std::str::from_utf8(v) {
                    Ok(s) => Ok(Str(Cow::Owned(s.to_owned()))),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Bytes(v), &self)),
                }
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
                match String::from_utf8(v) {
                    Ok(s) => Ok(Str(Cow::Owned(s))),
                    Err(e) => Err(E::invalid_value(de::Unexpected::Bytes(&e.into_bytes()), &self)),
                }
            }
        }
        d.deserialize_string(StrVisitor)
    }
}

/// A line of a watch stream that could not be decoded. The lines after it are unaffected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("watch event on line {line} ({len} bytes) does not decode: {message}")]
pub struct WatchDecodeError {
    /// The 1-based line number within this stream (empty lines are not counted).
    pub line: u64,
    /// The line's length in bytes (for a line over the frame limit: the bytes seen when it was
    /// dropped).
    pub len: usize,
    /// What was wrong.
    pub message: String,
    /// Which kind of failure.
    pub kind: WatchDecodeErrorKind,
}

/// Why a watch line did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchDecodeErrorKind {
    /// The line is not a well-formed watch event (bad JSON, bad UTF-8, a wrong shape, cut off).
    Malformed,
    /// The line is longer than the decoder's frame limit: it was dropped without being
    /// buffered whole, and the decoder skipped to the next newline.
    TooLarge {
        /// The limit, in bytes ([`DEFAULT_MAX_FRAME`] unless set).
        limit: usize,
        /// How many bytes of the line had been seen when it was dropped (more than `limit`).
        seen: usize,
    },
}

impl WatchDecodeError {
    fn too_large(line: u64, limit: usize, seen: usize) -> Self {
        WatchDecodeError {
            line,
            len: seen,
            message: format!(
                "the event is longer than the {limit}-byte frame limit ({seen} bytes seen); it was skipped \
                 (raise the limit with WatchDecoder::with_max_frame or watcher::Config::max_frame)"
            ),
            kind: WatchDecodeErrorKind::TooLarge { limit, seen },
        }
    }
}

/// Decodes a watch body fed in chunks of any size into [`WatchEvent`]s.
///
/// Feed bytes with [`push`](Self::push), then drain [`next_event`](Self::next_event) until it
/// returns `None`; at the end of the body call [`finish`](Self::finish), which reports an
/// unterminated last line. Memory is the longest line, at most the frame limit, plus one chunk.
///
/// A line longer than the frame limit is dropped as soon as its unterminated part passes the
/// limit; the decoder then discards bytes until the next newline without buffering them, and
/// reports the line once, in its place among the events, as a [`WatchDecodeError`] of kind
/// [`WatchDecodeErrorKind::TooLarge`]. (client-go's streaming decoder does the same: it returns
/// `ErrObjectTooLarge` and drains the rest of the frame.) The lines after it decode as usual.
pub struct WatchDecoder<K> {
    buf: Vec<u8>,
    /// Where the next line starts.
    start: usize,
    /// Bytes before this offset are known to contain no newline.
    scanned: usize,
    line: u64,
    /// The longest line buffered.
    max_frame: usize,
    /// Bytes at the end of `buf` after its last newline (the unterminated line).
    partial: usize,
    /// Discarding an over-long line until its newline: the bytes seen of it so far.
    skipping: Option<usize>,
    /// Objects decoded with exact capacities ([`compact`](crate::compact)).
    compact: bool,
    /// Over-long lines to report once the lines before them (those before the offset in `buf`)
    /// are delivered: (offset, bytes seen when it was dropped).
    dropped: VecDeque<(usize, usize)>,
    /// Set when the stream is protobuf (`;stream=watch` frames), which it then reads instead.
    #[cfg(feature = "protobuf")]
    protobuf: Option<Box<crate::protobuf::FrameDecoder>>,
    /// An object nobody holds any more, for the next event's object to be decoded over (see
    /// [`recycle`](Self::recycle)).
    spare: Option<K>,
    _kind: PhantomData<fn() -> K>,
}

impl<K> fmt::Debug for WatchDecoder<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchDecoder")
            .field("buffered", &(self.buf.len() - self.start))
            .field("line", &self.line)
            .field("max_frame", &self.max_frame)
            .field("skipping", &self.skipping)
            .finish()
    }
}

impl<K> Default for WatchDecoder<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> WatchDecoder<K> {
    /// A decoder at the start of a stream, with the default frame limit ([`DEFAULT_MAX_FRAME`]).
    pub fn new() -> Self {
        Self::with_max_frame(DEFAULT_MAX_FRAME)
    }

    /// A decoder whose lines may be at most `max_frame` bytes long (the newline excluded).
    pub fn with_max_frame(max_frame: usize) -> Self {
        WatchDecoder {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            line: 0,
            max_frame,
            partial: 0,
            skipping: None,
            compact: false,
            dropped: VecDeque::new(),
            #[cfg(feature = "protobuf")]
            protobuf: None,
            spare: None,
            _kind: PhantomData,
        }
    }

    /// Decodes every event's object with exact capacities (see [`compact`](crate::compact)):
    /// about a quarter less memory per object held, for some 10–15% more decoding work.
    #[must_use]
    pub fn compact(mut self, compact: bool) -> Self {
        self.compact = compact;
        self
    }

    /// Whether the decoder holds an object handed to [`recycle`](Self::recycle) and not yet used.
    pub fn has_spare(&self) -> bool {
        self.spare.is_some()
    }

    /// The longest line this decoder buffers.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Reads the stream in the format its response's `Content-Type` names: protobuf frames for
    /// `application/vnd.kubernetes.protobuf;stream=watch`, JSON lines otherwise. Call it before
    /// the first [`push`](Self::push) of each stream (with the `protobuf` feature; without it,
    /// every stream is read as JSON).
    pub fn use_content_type(&mut self, headers: &http::HeaderMap) {
        #[cfg(feature = "protobuf")]
        {
            self.protobuf = crate::protobuf::is_protobuf(headers)
                .then(|| Box::new(crate::protobuf::FrameDecoder::new(self.max_frame)));
            if self.protobuf.is_some() {
                // Frames are not decoded over an object: not kept.
                self.spare = None;
            }
        }
        #[cfg(not(feature = "protobuf"))]
        let _ = headers;
    }

    /// Feeds the next bytes of the body.
    pub fn push(&mut self, mut chunk: &[u8]) {
        #[cfg(feature = "protobuf")]
        if let Some(pb) = self.protobuf.as_mut() {
            return pb.push(chunk);
        }
        if let Some(seen) = &mut self.skipping {
            // The rest of an over-long line: discarded up to its newline, never buffered.
            match find_newline(chunk) {
                None => {
                    *seen = seen.saturating_add(chunk.len());
                    return;
                }
                Some(nl) => {
                    self.skipping = None;
                    chunk = &chunk[nl + 1..];
                }
            }
        }
        // (A dropped line's offset is never before `start`: lines stop there until it is
        // reported.)
        if self.start == self.buf.len() {
            self.buf.clear();
            self.dropped.iter_mut().for_each(|(at, _)| *at = 0);
            self.start = 0;
            self.scanned = 0;
        } else if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.dropped.iter_mut().for_each(|(at, _)| *at -= self.start);
            self.start = 0;
        }
        // The unterminated line after this chunk; only its end is searched for a newline.
        let last_newline = rfind_newline(chunk);
        let tail = match last_newline {
            Some(nl) => chunk.len() - nl - 1,
            None => self.partial.saturating_add(chunk.len()),
        };
        if tail > self.max_frame {
            // Drop the over-long line: what is buffered of it, and the rest of this chunk.
            let keep = match last_newline {
                Some(nl) => {
                    self.buf.extend_from_slice(&chunk[..=nl]);
                    self.buf.len()
                }
                None => self.buf.len() - self.partial,
            };
            self.buf.truncate(keep);
            self.scanned = self.scanned.min(keep);
            self.partial = 0;
            self.skipping = Some(tail);
            self.dropped.push_back((keep, tail));
            return;
        }
        if last_newline.is_none() && self.scanned == self.buf.len() {
            // Nothing unread before, and no newline here: no need to search these bytes again.
            self.scanned += chunk.len();
        }
        self.buf.extend_from_slice(chunk);
        self.partial = tail;
    }

    /// Bytes buffered that do not yet form a complete line.
    pub fn buffered(&self) -> usize {
        #[cfg(feature = "protobuf")]
        if let Some(pb) = self.protobuf.as_ref() {
            return pb.buffered();
        }
        self.buf.len() - self.start
    }

    /// Discards everything buffered, for a new stream (the frame limit is kept).
    pub fn reset(&mut self) {
        #[cfg(feature = "protobuf")]
        if let Some(pb) = self.protobuf.as_mut() {
            pb.reset();
        }
        self.buf.clear();
        self.start = 0;
        self.scanned = 0;
        self.line = 0;
        self.partial = 0;
        self.skipping = None;
        self.dropped.clear();
    }

    /// The over-long line dropped at `start`, if its turn has come.
    fn take_dropped(&mut self) -> Option<WatchDecodeError> {
        match self.dropped.front() {
            Some(&(at, seen)) if self.start >= at => {
                self.dropped.pop_front();
                self.line += 1;
                Some(WatchDecodeError::too_large(self.line, self.max_frame, seen))
            }
            _ => None,
        }
    }

    /// The next non-blank line, trimmed, or `Err` with its length when it is longer than the
    /// frame limit (blank or not: the limit counts every byte before the newline, so that the
    /// outcome does not depend on how the body was chunked).
    fn next_line(&mut self) -> Option<Result<(usize, usize), usize>> {
        loop {
            if self.dropped.front().is_some_and(|&(at, _)| self.start >= at) {
                return None;
            }
            let nl = find_newline(&self.buf[self.scanned..]);
            let Some(nl) = nl else {
                self.scanned = self.buf.len();
                return None;
            };
            let end = self.scanned + nl;
            let begin = self.start;
            self.start = end + 1;
            self.scanned = self.start;
            if end - begin > self.max_frame {
                // A whole line over the limit that came within one chunk.
                return Some(Err(end - begin));
            }
            let (b, e) = trim(&self.buf, begin, end);
            if b < e {
                return Some(Ok((b, e)));
            }
        }
    }
}

impl<K: DeserializeOwned + 'static> WatchDecoder<K> {
    /// Hands the decoder an object nobody holds any more (one a store has just replaced or
    /// removed): the next JSON event of a built-in kind is decoded over it, its strings, lists
    /// and structs written over instead of freed and allocated again (see
    /// [`direct_json::refill`](crate::direct_json::refill)). The event is the same as without
    /// it. One object is kept; a second replaces the first. Where it would not be used (a kind
    /// read by serde, a protobuf stream), it is dropped at once: see
    /// [`wants_spare`](Self::wants_spare).
    pub fn recycle(&mut self, object: K) {
        if self.can_recycle() {
            self.spare = Some(object);
        }
    }

    /// Whether [`recycle`](Self::recycle) would keep an object: the stream is JSON, `K` is a
    /// built-in kind's struct (read by the direct decoder), and no object is held yet.
    pub fn wants_spare(&self) -> bool {
        self.spare.is_none() && self.can_recycle()
    }

    fn can_recycle(&self) -> bool {
        #[cfg(feature = "protobuf")]
        if self.protobuf.is_some() {
            return false;
        }
        crate::direct_json::supports::<K>()
    }

    /// The next complete event, or `None` when more bytes are needed.
    pub fn next_event(&mut self) -> Option<Result<WatchEvent<K>, WatchDecodeError>> {
        #[cfg(feature = "protobuf")]
        if let Some(pb) = self.protobuf.as_mut() {
            return pb.next_frame().map(|f| f.and_then(|(n, ev)| crate::protobuf::watch::decode_event(ev, n)));
        }
        let Some(line) = self.next_line() else {
            return self.take_dropped().map(Err);
        };
        self.line += 1;
        Some(match line {
            Ok((b, e)) => parse(&self.buf[b..e], self.line, self.compact, &mut self.spare),
            Err(len) => Err(WatchDecodeError::too_large(self.line, self.max_frame, len)),
        })
    }

    /// At the end of the body: the last line if it was not newline-terminated (an event if it
    /// is complete, an error if the stream was cut inside it). Call after draining
    /// [`next_event`](Self::next_event). The decoder is then ready for a new stream.
    pub fn finish(&mut self) -> Option<Result<WatchEvent<K>, WatchDecodeError>> {
        #[cfg(feature = "protobuf")]
        if let Some(pb) = self.protobuf.as_mut() {
            return pb.finish().map(Err);
        }
        if !self.dropped.is_empty() {
            // The body ended inside (or right after) an over-long line not yet reported.
            self.start = self.buf.len();
            let out = self.take_dropped().map(Err);
            self.reset();
            return out;
        }
        let (b, e) = trim(&self.buf, self.start, self.buf.len());
        let out = if b < e {
            self.line += 1;
            let len = e - b;
            Some(parse::<K>(&self.buf[b..e], self.line, self.compact, &mut self.spare).map_err(|mut err| {
                err.message = format!("the stream ended inside this event (cut after {len} bytes?): {}", err.message);
                err
            }))
        } else {
            None
        };
        self.reset();
        out
    }
}

/// Parses one complete line as a watch event.
pub fn parse_line<K: DeserializeOwned + 'static>(line: &[u8], line_no: u64) -> Result<WatchEvent<K>, WatchDecodeError> {
    parse(line, line_no, false, &mut None)
}

fn parse<K: DeserializeOwned + 'static>(
    line: &[u8],
    line_no: u64,
    compact: bool,
    spare: &mut Option<K>,
) -> Result<WatchEvent<K>, WatchDecodeError> {
    let err = |message: String| WatchDecodeError {
        line: line_no,
        len: line.len(),
        message,
        kind: WatchDecodeErrorKind::Malformed,
    };
    let text = std::str::from_utf8(line)
        .map_err(|e| err(format!("not UTF-8 (invalid byte at offset {})", e.valid_up_to())))?;
    // The built-in kinds' usual events, read directly (already with exact capacities); any
    // other line, and every other type, through serde (see `direct_json`).
    if let Some(event) = crate::direct_json::watch_event(text, spare) {
        return Ok(event);
    }
    if compact { crate::compact::from_str(text) } else { serde_json::from_str(text) }.map_err(|e| err(e.to_string()))
}

fn trim(buf: &[u8], mut b: usize, mut e: usize) -> (usize, usize) {
    while b < e && buf[b].is_ascii_whitespace() {
        b += 1;
    }
    while e > b && buf[e - 1].is_ascii_whitespace() {
        e -= 1;
    }
    (b, e)
}

/// Finds the last `\n`, eight bytes at a time. (The exact zero-byte test: the one in
/// [`find_newline`] may also flag a byte above a newline, harmless when searching forwards.)
fn rfind_newline(hay: &[u8]) -> Option<usize> {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const NL: u64 = 0x0101_0101_0101_0101 * b'\n' as u64;
    let mut words = hay.rchunks_exact(8);
    let mut end = hay.len();
    for c in &mut words {
        end -= 8;
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ NL;
        // The high bit of each byte of `found` is set exactly where `w`'s byte is zero.
        let found = !(((w & LOW7).wrapping_add(LOW7)) | w | LOW7);
        if found != 0 {
            return Some(end + 7 - (found.leading_zeros() / 8) as usize);
        }
    }
    words.remainder().iter().rposition(|&b| b == b'\n')
}

/// Finds the first `\n`, eight bytes at a time.
fn find_newline(hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = LO * b'\n' as u64;
    let mut chunks = hay.chunks_exact(8);
    let mut offset = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) ^ NL;
        let found = w.wrapping_sub(LO) & !w & HI;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|&b| b == b'\n').map(|i| offset + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    const STREAM: &str = concat!(
        r#"{"type":"ADDED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"1"}}}"#,
        "\n",
        r#"{"type":"MODIFIED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"2"},"data":{"k":"é"}}}"#,
        "\n",
        r#"{"object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"3"}},"type":"DELETED"}"#,
        "\n",
        r#"{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"4","annotations":{"k8s.io/initial-events-end":"true"}}}}"#,
        "\n",
        r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}}"#,
        "\n"
    );

    fn drain(d: &mut WatchDecoder<ConfigMap>) -> Vec<Result<WatchEvent<ConfigMap>, WatchDecodeError>> {
        let mut out = Vec::new();
        while let Some(e) = d.next_event() {
            out.push(e);
        }
        out
    }

    #[test]
    fn every_event_type() {
        let mut d = WatchDecoder::<ConfigMap>::new();
        d.push(STREAM.as_bytes());
        let events: Vec<_> = drain(&mut d).into_iter().map(Result::unwrap).collect();
        let types: Vec<_> = events.iter().map(WatchEvent::type_name).collect();
        assert_eq!(types, ["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]);
        match &events[3] {
            WatchEvent::Bookmark(b) => assert!(b.is_initial_events_end()),
            e => panic!("{e:?}"),
        }
        match &events[4] {
            WatchEvent::Error(s) => assert_eq!((s.code, s.reason.as_str()), (410, "Expired")),
            e => panic!("{e:?}"),
        }
        assert!(d.finish().is_none());
    }

    #[test]
    fn byte_by_byte() {
        let mut d = WatchDecoder::<ConfigMap>::new();
        let mut n = 0;
        for b in STREAM.as_bytes() {
            d.push(std::slice::from_ref(b));
            n += drain(&mut d).into_iter().map(Result::unwrap).count();
        }
        assert_eq!(n, 5);
    }

    #[test]
    fn a_bad_line_does_not_corrupt_the_next() {
        let mut d = WatchDecoder::<ConfigMap>::new();
        d.push(b"{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":1}}}\nnot json\n\r\n{\"type\":\"NOPE\",\"object\":{}}\n");
        d.push(STREAM.as_bytes());
        let out = drain(&mut d);
        assert_eq!(out.len(), 8);
        let errs: Vec<_> = out[..3].iter().map(|r| r.as_ref().unwrap_err().line).collect();
        assert_eq!(errs, [1, 2, 3]);
        assert!(out[2].as_ref().unwrap_err().message.contains("NOPE"));
        assert!(out[3..].iter().all(Result::is_ok));
    }

    #[test]
    fn event_type_strings() {
        // Escaped keys and types are unescaped (the borrowing string falls back to owning).
        let line = br#"{"typ\u0065":"MODIFI\u0045D","object":{"metadata":{"name":"a"}}}"#;
        assert!(matches!(parse_line::<ConfigMap>(line, 1), Ok(WatchEvent::Modified(_))));
        let e = parse_line::<ConfigMap>(br#"{"type":1,"object":{}}"#, 1).unwrap_err();
        assert_eq!(e.message, "invalid type: integer `1`, expected a string at line 1 column 9");
        let e = parse_line::<ConfigMap>(br#"{"type":"NOPE","object":{}}"#, 1).unwrap_err();
        assert_eq!(
            e.message,
            "unknown watch event type \"NOPE\" (expected ADDED, MODIFIED, DELETED, BOOKMARK or ERROR) at line 1 column 14"
        );
        // From a reader, which lends no strings.
        let r = serde_json::from_reader::<_, WatchEvent<ConfigMap>>(&br#"{"type":"ADDED","object":{}}"#[..]);
        assert!(matches!(r, Ok(WatchEvent::Added(_))), "{r:?}");
    }

    #[test]
    fn unterminated_last_line() {
        let mut d = WatchDecoder::<ConfigMap>::new();
        let line = &STREAM.as_bytes()[..STREAM.find('\n').unwrap()];
        d.push(line);
        assert!(d.next_event().is_none());
        assert!(matches!(d.finish(), Some(Ok(WatchEvent::Added(_)))));
        d.push(&line[..40]);
        let e = d.finish().unwrap().unwrap_err();
        assert!(e.message.contains("ended inside"), "{e}");
    }

    #[test]
    fn from_a_json_value_whatever_the_key_order() {
        // A `Value`'s map is sorted, so `object` comes before `type` here.
        let v = serde_json::json!({"type": "ADDED", "object": {"metadata": {"name": "a"}}});
        let e: WatchEvent<ConfigMap> = serde_json::from_value(v).unwrap();
        assert!(matches!(e, WatchEvent::Added(cm) if cm.metadata.name.as_deref() == Some("a")));
    }

    #[test]
    fn newline_search() {
        for len in 0..40 {
            for at in 0..len {
                let mut v = vec![b'x'; len];
                v[at] = b'\n';
                assert_eq!(find_newline(&v), Some(at));
            }
            assert_eq!(find_newline(&vec![b'y'; len]), None);
        }
        assert_eq!(find_newline(&[0x8a, 0x0a]), Some(1));
    }

    #[test]
    fn newline_search_backwards() {
        for len in 0..40 {
            for at in 0..len {
                for other in 0..len {
                    let mut v = vec![b'x'; len];
                    v[at] = b'\n';
                    v[other] = b'\n';
                    assert_eq!(rfind_newline(&v), Some(at.max(other)), "{v:?}");
                }
                // A byte just above a newline that its borrow would turn into a false match
                // (0x0b ^ 0x0a == 0x01), and bytes with the high bit set.
                let mut v = vec![0x8a; len];
                v[at] = b'\n';
                if at + 1 < len {
                    v[at + 1] = 0x0b;
                }
                assert_eq!(rfind_newline(&v), Some(at), "{v:?}");
            }
            assert_eq!(rfind_newline(&vec![b'y'; len]), None);
        }
    }
}
