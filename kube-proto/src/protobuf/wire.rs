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

    #[inline]
    pub(crate) fn varint(&mut self) -> Result<u64, ProtobufError> {
        // Tags, lengths of strings and most numbers are one byte.
        if let Some(&b) = self.buf.get(self.pos)
            && b < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(b));
        }
        self.varint_long()
    }

    fn varint_long(&mut self) -> Result<u64, ProtobufError> {
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

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtobufError> {
        match self.buf.get(self.pos..).and_then(|rest| rest.get(..n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(self.past_the_end(n)),
        }
    }

    #[cold]
    fn past_the_end(&self, n: usize) -> ProtobufError {
        ProtobufError::new(
            ProtobufErrorKind::Truncated,
            format!("a {n}-byte value at offset {} runs past the end ({} bytes)", self.pos, self.buf.len()),
        )
    }

    /// How many fields numbered `number` follow in a row (the run the field just read started).
    pub(crate) fn count_run(&self, number: u32) -> usize {
        let mut r = *self;
        let mut count = 0;
        while let Ok(Some((n, _))) = r.field()
            && n == number
        {
            count += 1;
        }
        count
    }

    /// The next field's number and value, or `None` at the end.
    #[inline]
    pub(crate) fn field(&mut self) -> Result<Option<(u32, Value<'a>)>, ProtobufError> {
        // Most fields have a one-byte tag (numbers 1-15) and a one-byte length or value.
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        match *rest {
            [] => Ok(None),
            [tag @ 8..=0x7f, len @ 0..=0x7f, ref after @ ..] if tag & 7 == 2 => match after.get(..usize::from(len)) {
                Some(bytes) => {
                    self.pos += 2 + usize::from(len);
                    Ok(Some((u32::from(tag >> 3), Value::Bytes(bytes))))
                }
                None => self.field_long(),
            },
            [tag @ 8..=0x7f, value @ 0..=0x7f, ..] if tag & 7 == 0 => {
                self.pos += 2;
                Ok(Some((u32::from(tag >> 3), Value::Varint(u64::from(value)))))
            }
            _ => self.field_long(),
        }
    }

    /// [`field`](Self::field) for any tag and length, and the errors.
    fn field_long(&mut self) -> Result<Option<(u32, Value<'a>)>, ProtobufError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    /// Bytes that make fields often: small tags, short lengths, some continuation bytes.
    fn message(rng: &mut SplitMix64) -> Vec<u8> {
        let len = rng.below(24) as usize;
        (0..len)
            .map(|_| match rng.below(4) {
                0 => rng.next_u64() as u8,
                1 => 0x80 | rng.below(4) as u8,
                _ => rng.below(0x40) as u8,
            })
            .collect()
    }

    #[test]
    fn the_one_byte_paths_read_what_the_general_ones_do() {
        let mut rng = SplitMix64::new(0x9b1);
        for _ in 0..50_000 {
            let buf = message(&mut rng);
            let (mut short, mut long) = (Reader::new(&buf), Reader::new(&buf));
            loop {
                let (a, b) = (short.field(), long.field_long());
                assert_eq!(format!("{a:?}"), format!("{b:?}"), "{buf:02x?}");
                assert_eq!(short.pos, long.pos, "{buf:02x?}");
                if !matches!(a, Ok(Some(_))) {
                    break;
                }
            }
            let (mut short, mut long) = (Reader::new(&buf), Reader::new(&buf));
            assert_eq!(short.varint(), long.varint_long(), "{buf:02x?}");
            assert_eq!(short.pos, long.pos, "{buf:02x?}");
        }
    }

    #[test]
    fn a_run_counts_the_fields_of_one_number_in_a_row() {
        // Field 3 three times (a string, an empty string, a message), then field 4, then 3.
        let buf = [0x1a, 1, b'a', 0x1a, 0, 0x1a, 2, 0x08, 1, 0x22, 0, 0x1a, 0];
        let mut r = Reader::new(&buf);
        r.field().unwrap();
        assert_eq!(r.count_run(3), 2, "the two after the first");
        assert_eq!(r.count_run(4), 0);
        // A run cut short by a truncated field counts the fields before it.
        let cut = [0x1a, 0, 0x1a, 0, 0x1a, 5, b'x'];
        let mut r = Reader::new(&cut);
        r.field().unwrap();
        assert_eq!(r.count_run(3), 1);
    }
}
