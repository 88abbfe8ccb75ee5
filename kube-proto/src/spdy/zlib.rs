//! The zlib streams of SPDY/3 header blocks (RFC 1950 around RFC 1951), primed with the
//! protocol's dictionary: one stream per direction for the whole connection, each header block
//! ending with a sync flush (an empty stored block), so that every block inflates on its own.
//!
//! [`Inflater`] reads what any zlib encoder writes (stored, fixed and dynamic Huffman blocks,
//! back-references into the dictionary and earlier blocks). [`Deflater`] writes stored blocks
//! only: header blocks are a few dozen bytes, and every inflater must accept stored blocks, so
//! compressing them would buy nothing worth the code.

use super::dictionary::{DICTIONARY, DICTIONARY_ID};

/// How far back a deflate back-reference may reach (32 KiB).
const WINDOW: usize = 32 * 1024;

/// Why a compressed header block could not be inflated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InflateError {
    /// The zlib header (the stream's first two bytes) is not one of deflate.
    #[error("the header compression stream does not start with a zlib header for deflate ({0})")]
    BadHeader(&'static str),
    /// The stream is primed with another dictionary than SPDY/3's.
    #[error("the header compression stream names preset dictionary {found:#010x}, not SPDY/3's ({expected:#010x})")]
    WrongDictionary {
        /// The dictionary's checksum in the stream.
        found: u32,
        /// SPDY/3's.
        expected: u32,
    },
    /// Block type 3, which deflate reserves.
    #[error("a compressed block of the reserved type 3")]
    ReservedBlock,
    /// A stored block whose length and its complement disagree.
    #[error("a stored block's length does not match its complement")]
    StoredLength,
    /// Huffman code lengths that make no code.
    #[error("invalid Huffman code lengths in a compressed block")]
    BadCodeLengths,
    /// A bit sequence that is no code, or a length or distance symbol out of range.
    #[error("an invalid Huffman code in a compressed block")]
    BadCode,
    /// A back-reference before the start of what was inflated (and the dictionary).
    #[error("a back-reference {distance} bytes back, before the start of the stream")]
    TooFar {
        /// How far back.
        distance: usize,
    },
    /// The header block ends inside a compressed block.
    #[error("the header block ends inside a compressed block")]
    Truncated,
    /// The block inflates to more than the limit.
    #[error("a header block inflates to more than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Bytes after the stream's final block.
    #[error("header bytes after the end of the compression stream")]
    AfterEnd,
}

/// Writes header blocks as a zlib stream of stored blocks primed with the dictionary.
#[derive(Debug, Clone, Default)]
pub(crate) struct Deflater {
    started: bool,
}

impl Deflater {
    /// Appends `block` to `out`, compressed (the stream's header first, the first time),
    /// ending with a sync flush.
    pub(crate) fn compress(&mut self, block: &[u8], out: &mut Vec<u8>) {
        if !self.started {
            // CMF 0x78: deflate, 32 KiB window. FLG 0x20: a preset dictionary, level 0, and
            // 0x7820 is a multiple of 31 as the check requires.
            out.extend_from_slice(&[0x78, 0x20]);
            out.extend_from_slice(&DICTIONARY_ID.to_be_bytes());
            self.started = true;
        }
        for chunk in block.chunks(usize::from(u16::MAX)) {
            stored_block(chunk, out);
        }
        // The sync flush: an empty stored block.
        stored_block(&[], out);
    }
}

/// A non-final stored block, starting on a byte boundary (which every block here does).
fn stored_block(data: &[u8], out: &mut Vec<u8>) {
    let len = u16::try_from(data.len()).expect("chunks of at most 65535 bytes");
    out.push(0);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
}

/// Reads header blocks from one zlib stream.
#[derive(Debug, Clone)]
pub(crate) struct Inflater {
    started: bool,
    finished: bool,
    /// The last [`WINDOW`] bytes inflated, after the dictionary.
    window: Vec<u8>,
    limit: usize,
}

impl Inflater {
    /// An inflater whose blocks may each inflate to at most `limit` bytes.
    pub(crate) fn new(limit: usize) -> Inflater {
        Inflater { started: false, finished: false, window: Vec::new(), limit }
    }

    /// Inflates one header block: everything in `input`, which ends where a block ends.
    pub(crate) fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, InflateError> {
        let mut bits = Bits { input, pos: 0, buf: 0, count: 0 };
        if !self.started {
            self.read_header(&mut bits)?;
        }
        let start = self.window.len();
        while !bits.at_end() {
            if self.finished {
                return Err(InflateError::AfterEnd);
            }
            let last = bits.take(1)? == 1;
            match bits.take(2)? {
                0 => self.stored(&mut bits, start)?,
                1 => {
                    let (lit, dist) = fixed_codes();
                    self.codes(&mut bits, &lit, &dist, start)?;
                }
                2 => {
                    let (lit, dist) = dynamic_codes(&mut bits)?;
                    self.codes(&mut bits, &lit, &dist, start)?;
                }
                _ => return Err(InflateError::ReservedBlock),
            }
            self.finished = last;
        }
        let out = self.window[start..].to_vec();
        if self.window.len() > WINDOW {
            self.window.drain(..self.window.len() - WINDOW);
        }
        Ok(out)
    }

    fn read_header(&mut self, bits: &mut Bits<'_>) -> Result<(), InflateError> {
        let cmf = bits.take(8)?;
        let flg = bits.take(8)?;
        if cmf & 0x0f != 8 {
            return Err(InflateError::BadHeader("not deflate"));
        }
        if cmf >> 4 > 7 {
            return Err(InflateError::BadHeader("a window larger than 32 KiB"));
        }
        if (cmf << 8 | flg) % 31 != 0 {
            return Err(InflateError::BadHeader("the check bits are wrong"));
        }
        if flg & 0x20 != 0 {
            let mut id = 0u32;
            for _ in 0..4 {
                id = id << 8 | bits.take(8)?;
            }
            if id != DICTIONARY_ID {
                return Err(InflateError::WrongDictionary { found: id, expected: DICTIONARY_ID });
            }
            self.window.extend_from_slice(&DICTIONARY);
        }
        self.started = true;
        Ok(())
    }

    fn stored(&mut self, bits: &mut Bits<'_>, start: usize) -> Result<(), InflateError> {
        bits.align();
        let len = bits.take(16)?;
        let nlen = bits.take(16)?;
        if len != !nlen & 0xffff {
            return Err(InflateError::StoredLength);
        }
        let len = len as usize;
        if self.window.len() - start + len > self.limit {
            return Err(InflateError::TooLarge { limit: self.limit });
        }
        let bytes = bits.bytes(len)?;
        self.window.extend_from_slice(bytes);
        Ok(())
    }

    fn codes(&mut self, bits: &mut Bits<'_>, lit: &Huffman, dist: &Huffman, start: usize) -> Result<(), InflateError> {
        loop {
            let symbol = lit.decode(bits)?;
            if symbol < 256 {
                self.window.push(symbol as u8);
            } else if symbol == 256 {
                return Ok(());
            } else {
                let i = usize::from(symbol - 257);
                let (&base, &extra) = LENGTH_BASE.get(i).zip(LENGTH_EXTRA.get(i)).ok_or(InflateError::BadCode)?;
                let len = usize::from(base) + bits.take(u32::from(extra))? as usize;
                let d = usize::from(dist.decode(bits)?);
                let (&base, &extra) = DIST_BASE.get(d).zip(DIST_EXTRA.get(d)).ok_or(InflateError::BadCode)?;
                let distance = usize::from(base) + bits.take(u32::from(extra))? as usize;
                if distance > self.window.len() {
                    return Err(InflateError::TooFar { distance });
                }
                let from = self.window.len() - distance;
                // Byte by byte: a copy may overlap what it writes (a run).
                for k in 0..len {
                    let b = self.window[from + k];
                    self.window.push(b);
                }
            }
            if self.window.len() - start > self.limit {
                return Err(InflateError::TooLarge { limit: self.limit });
            }
        }
    }
}

/// Reads bits least significant first, as deflate packs them.
struct Bits<'a> {
    input: &'a [u8],
    pos: usize,
    buf: u64,
    count: u32,
}

impl<'a> Bits<'a> {
    fn take(&mut self, n: u32) -> Result<u32, InflateError> {
        while self.count < n {
            let Some(&byte) = self.input.get(self.pos) else { return Err(InflateError::Truncated) };
            self.buf |= u64::from(byte) << self.count;
            self.count += 8;
            self.pos += 1;
        }
        let value = (self.buf & ((1u64 << n) - 1)) as u32;
        self.buf >>= n;
        self.count -= n;
        Ok(value)
    }

    /// Drops the bits left of the current byte.
    fn align(&mut self) {
        let drop = self.count % 8;
        self.buf >>= drop;
        self.count -= drop;
    }

    /// `len` whole bytes (after [`align`](Self::align)).
    fn bytes(&mut self, len: usize) -> Result<&'a [u8], InflateError> {
        // Whole bytes already in the bit buffer go back to the input first.
        self.pos -= (self.count / 8) as usize;
        self.buf = 0;
        self.count = 0;
        let end = self.pos.checked_add(len).filter(|&e| e <= self.input.len()).ok_or(InflateError::Truncated)?;
        let bytes = &self.input[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    /// Whether nothing but the padding of the last byte is left.
    fn at_end(&self) -> bool {
        self.pos >= self.input.len() && self.count < 8
    }
}

/// A canonical Huffman code, decoded bit by bit: the count of codes of each length and the
/// symbols in code order.
struct Huffman {
    counts: [u16; 16],
    symbols: Vec<u16>,
}

impl Huffman {
    fn new(lengths: &[u8]) -> Result<Huffman, InflateError> {
        let mut counts = [0u16; 16];
        for &len in lengths {
            counts[usize::from(len)] += 1;
        }
        counts[0] = 0;
        // No length may hold more codes than are left for it.
        let mut left: i32 = 1;
        for &count in &counts[1..] {
            left = (left << 1) - i32::from(count);
            if left < 0 {
                return Err(InflateError::BadCodeLengths);
            }
        }
        let mut offsets = [0u16; 16];
        for len in 1..15 {
            offsets[len + 1] = offsets[len] + counts[len];
        }
        let mut symbols = vec![0u16; lengths.len()];
        for (symbol, &len) in lengths.iter().enumerate() {
            if len != 0 {
                let at = &mut offsets[usize::from(len)];
                symbols[usize::from(*at)] = symbol as u16;
                *at += 1;
            }
        }
        Ok(Huffman { counts, symbols })
    }

    fn decode(&self, bits: &mut Bits<'_>) -> Result<u16, InflateError> {
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for &count in &self.counts[1..] {
            code |= bits.take(1)? as i32;
            let count = i32::from(count);
            if code - first < count {
                return self.symbols.get((index + code - first) as usize).copied().ok_or(InflateError::BadCode);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(InflateError::BadCode)
    }
}

const LENGTH_BASE: [u16; 29] =
    [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA: [u8; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
    8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] =
    [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

/// The order in which a dynamic block lists the code length code's lengths.
const CODE_LENGTH_ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

fn fixed_codes() -> (Huffman, Huffman) {
    let mut lit = [0u8; 288];
    for (symbol, len) in lit.iter_mut().enumerate() {
        *len = match symbol {
            0..=143 => 8,
            144..=255 => 9,
            256..=279 => 7,
            _ => 8,
        };
    }
    let lit = Huffman::new(&lit).expect("the fixed literal code is complete");
    let dist = Huffman::new(&[5; 30]).expect("the fixed distance code is valid");
    (lit, dist)
}

fn dynamic_codes(bits: &mut Bits<'_>) -> Result<(Huffman, Huffman), InflateError> {
    let nlit = bits.take(5)? as usize + 257;
    let ndist = bits.take(5)? as usize + 1;
    let ncode = bits.take(4)? as usize + 4;
    if nlit > 286 || ndist > 30 {
        return Err(InflateError::BadCodeLengths);
    }
    let mut code_lengths = [0u8; 19];
    for &i in &CODE_LENGTH_ORDER[..ncode] {
        code_lengths[i] = bits.take(3)? as u8;
    }
    let code = Huffman::new(&code_lengths)?;
    let mut lengths = vec![0u8; nlit + ndist];
    let mut i = 0;
    while i < lengths.len() {
        let symbol = code.decode(bits)?;
        let (len, repeat) = match symbol {
            0..=15 => (symbol as u8, 1),
            16 => {
                let previous = *lengths[..i].last().ok_or(InflateError::BadCodeLengths)?;
                (previous, 3 + bits.take(2)? as usize)
            }
            17 => (0, 3 + bits.take(3)? as usize),
            18 => (0, 11 + bits.take(7)? as usize),
            _ => return Err(InflateError::BadCodeLengths),
        };
        let end = i + repeat;
        if end > lengths.len() {
            return Err(InflateError::BadCodeLengths);
        }
        lengths[i..end].fill(len);
        i = end;
    }
    if lengths[256] == 0 {
        // No end-of-block code: the block could never end.
        return Err(InflateError::BadCodeLengths);
    }
    Ok((Huffman::new(&lengths[..nlit])?, Huffman::new(&lengths[nlit..])?))
}
