//! The protobuf wire format: varints, tags and length-delimited values, read from a byte slice
//! with every length checked (a bad length is an error, never a panic), and written to a `Vec`.

use super::{ProtobufError, ProtobufErrorKind};

/// A wire value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: bytes, a string, a message or packed scalars.
    Bytes(&'a [u8]),
    /// Wire type 5 (Kubernetes has no such fields: skipped).
    Fixed32,
}

/// Reads fields from a message's bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, ProtobufError> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(ProtobufError::new(ProtobufErrorKind::Truncated, "the data ends inside a varint"));
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ProtobufError::new(ProtobufErrorKind::Malformed, "a varint longer than 10 bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtobufError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| {
            ProtobufError::new(
                ProtobufErrorKind::Truncated,
                format!("a {n}-byte value at offset {} runs past the end ({} bytes)", self.pos, self.buf.len()),
            )
        })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// The next field's number and value, or `None` at the end.
    pub(crate) fn field(&mut self) -> Result<Option<(u32, Value<'a>)>, ProtobufError> {
        if self.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let number = u32::try_from(tag >> 3).ok().filter(|&n| n != 0).ok_or_else(|| {
            ProtobufError::new(ProtobufErrorKind::Malformed, format!("field number {} is out of range", tag >> 3))
        })?;
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"))),
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| {
                    ProtobufError::new(ProtobufErrorKind::Truncated, format!("a length of {len} bytes"))
                })?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed32
            }
            w => {
                return Err(ProtobufError::new(
                    ProtobufErrorKind::Malformed,
                    format!("field {number} has wire type {w}, which Kubernetes does not use"),
                ));
            }
        };
        Ok(Some((number, value)))
    }

    /// The number of the next field, without reading it.
    pub(crate) fn peek_number(&self) -> Option<u32> {
        let mut r = *self;
        r.varint().ok().and_then(|t| u32::try_from(t >> 3).ok())
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_tag(out: &mut Vec<u8>, number: u32, wire: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire));
}

pub(crate) fn put_bytes(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_tag(out, number, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}
