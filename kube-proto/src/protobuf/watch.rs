//! The framing of a protobuf watch stream, fed bytes in any chunking: each frame is a 4-byte
//! big-endian length and a `meta.v1.WatchEvent` (`type`, `object.raw` = an envelope).
//!
//! [`WatchDecoder`](crate::WatchDecoder) uses this when the response says
//! `application/vnd.kubernetes.protobuf;stream=watch` (see
//! [`WatchDecoder::use_content_type`](crate::WatchDecoder::use_content_type)), so the watcher and
//! the runtime read either format with the same code. A frame over the frame limit is skipped
//! without being buffered and reported once; a frame that does not decode is reported without
//! disturbing the frames after it.

use serde::de::DeserializeOwned;

use super::wire::{Reader, Value};
use super::{Envelope, ProtobufError, ProtobufErrorKind};
use crate::error::Status;
use crate::watch::{Bookmark, WatchDecodeError, WatchDecodeErrorKind, WatchEvent};

/// Splits a protobuf watch body into frames.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    start: usize,
    frame: u64,
    max_frame: usize,
    /// Bytes of an over-long frame still to discard.
    skipping: usize,
    /// An over-long frame to report: (frame number, length).
    dropped: Option<(u64, usize)>,
}

impl FrameDecoder {
    /// A decoder at the start of a stream whose frames may be at most `max_frame` bytes long.
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder { buf: Vec::new(), start: 0, frame: 0, max_frame, skipping: 0, dropped: None }
    }

    /// Feeds the next bytes of the body.
    pub fn push(&mut self, mut chunk: &[u8]) {
        if self.skipping > 0 {
            let n = self.skipping.min(chunk.len());
            self.skipping -= n;
            chunk = &chunk[n..];
        }
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// Bytes buffered and not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Forgets everything buffered (a new stream begins).
    pub fn reset(&mut self) {
        *self = FrameDecoder::new(self.max_frame);
    }

    /// The next complete frame's event bytes (the `WatchEvent` message) and its number, an error
    /// for a frame over the limit, or `None` until more bytes come.
    pub fn next_frame(&mut self) -> Option<Result<(u64, &[u8]), WatchDecodeError>> {
        if let Some((frame, len)) = self.dropped.take() {
            return Some(Err(too_large(frame, self.max_frame, len)));
        }
        let avail = &self.buf[self.start..];
        let head: [u8; 4] = avail.get(..4)?.try_into().expect("4 bytes");
        let len = u32::from_be_bytes(head) as usize;
        self.frame += 1;
        if len > self.max_frame {
            let have = avail.len() - 4;
            if have >= len {
                self.start += 4 + len;
            } else {
                self.skipping = len - have;
                self.start = self.buf.len();
            }
            return Some(Err(too_large(self.frame, self.max_frame, len)));
        }
        if avail.len() < 4 + len {
            self.frame -= 1;
            return None;
        }
        let s = self.start + 4;
        self.start = s + len;
        Some(Ok((self.frame, &self.buf[s..s + len])))
    }

    /// At the end of the body: an error if it ended inside a frame.
    pub fn finish(&mut self) -> Option<WatchDecodeError> {
        let left = self.buffered();
        if left == 0 && self.skipping == 0 {
            return None;
        }
        let frame = self.frame + 1;
        let message = if self.skipping > 0 {
            format!("the stream ended inside an over-long frame ({} bytes missing)", self.skipping)
        } else if left < 4 {
            format!("the stream ended inside a frame's length ({left} of 4 bytes)")
        } else {
            let want = u32::from_be_bytes(self.buf[self.start..self.start + 4].try_into().expect("4 bytes"));
            format!("the stream ended inside a frame ({} of {want} bytes)", left - 4)
        };
        self.reset();
        Some(WatchDecodeError { line: frame, len: left, message, kind: WatchDecodeErrorKind::Malformed })
    }
}

fn too_large(frame: u64, limit: usize, len: usize) -> WatchDecodeError {
    WatchDecodeError {
        line: frame,
        len,
        message: format!("the {len}-byte event is longer than the {limit}-byte frame limit; it was skipped"),
        kind: WatchDecodeErrorKind::TooLarge { limit, seen: len },
    }
}

/// Decodes one frame's `WatchEvent` message into a [`WatchEvent`].
pub fn decode_event<K: DeserializeOwned + 'static>(
    event: &[u8],
    frame: u64,
) -> Result<WatchEvent<K>, WatchDecodeError> {
    decode_event_inner(event).map_err(|e| WatchDecodeError {
        line: frame,
        len: event.len(),
        message: e.to_string(),
        kind: WatchDecodeErrorKind::Malformed,
    })
}

fn decode_event_inner<K: DeserializeOwned + 'static>(event: &[u8]) -> Result<WatchEvent<K>, ProtobufError> {
    let (mut ty, mut object): (&[u8], Option<&[u8]>) = (b"", None);
    let mut r = Reader::new(event);
    while let Some((n, v)) = r.field()? {
        match (n, v) {
            (1, Value::Bytes(b)) => ty = b,
            (2, Value::Bytes(ext)) => {
                let mut e = Reader::new(ext);
                while let Some((n, v)) = e.field()? {
                    if let (1, Value::Bytes(raw)) = (n, v) {
                        object = Some(raw);
                    }
                }
            }
            (1 | 2, _) => {
                return Err(ProtobufError::new(
                    ProtobufErrorKind::Malformed,
                    "a watch event field has the wrong wire type",
                ));
            }
            _ => {}
        }
    }
    let object =
        object.ok_or_else(|| ProtobufError::new(ProtobufErrorKind::Decode, "a watch event without an object"))?;
    let env = Envelope::parse(object)?;
    Ok(match ty {
        b"ADDED" => WatchEvent::Added(env.decode_owned()?),
        b"MODIFIED" => WatchEvent::Modified(env.decode_owned()?),
        b"DELETED" => WatchEvent::Deleted(env.decode_owned()?),
        b"BOOKMARK" => WatchEvent::Bookmark(env.decode::<Bookmark>()?),
        b"ERROR" => WatchEvent::Error(env.decode::<Status>()?),
        other => {
            return Err(ProtobufError::new(
                ProtobufErrorKind::Decode,
                format!(
                    "unknown watch event type {:?} (expected ADDED, MODIFIED, DELETED, BOOKMARK or ERROR)",
                    String::from_utf8_lossy(other)
                ),
            ));
        }
    })
}
