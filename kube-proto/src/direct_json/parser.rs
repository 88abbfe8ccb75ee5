//! A pull tokenizer over JSON text, for the direct decoders: objects and their keys, arrays,
//! strings (every escape, surrogate pairs joined), integers, booleans, `null`, and skipping a
//! value whole.
//!
//! It accepts a subset of what `serde_json` accepts and never more: whatever it is unsure of
//! (an escaped struct key, a lone surrogate, a number of a shape an integer field does not take,
//! nesting deeper than [`MAX_DEPTH`], any malformed text) is a [`Fallback`], after which the caller
//! decodes the same text with `serde_json`, which then gives its own value or error.

/// The direct decoder gave up: decode the same text with `serde_json` instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback;

/// The result of a step of the direct decoders.
pub type Step<T = ()> = Result<T, Fallback>;

/// The deepest nesting of objects and arrays read directly. `serde_json` refuses 128 levels; a
/// text nested deeper than this goes to `serde_json`, whatever it then says.
pub const MAX_DEPTH: u32 = 100;

/// A cursor over JSON text.
pub struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: u32,
    /// Reused for strings with escapes.
    scratch: String,
    /// Decoding into a value that already holds another object (see [`Decode::refill`]).
    ///
    /// [`Decode::refill`]: super::fill::Decode::refill
    refill: bool,
}

impl std::fmt::Debug for Parser<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the text: it may hold secrets.
        f.debug_struct("Parser").field("pos", &self.pos).field("depth", &self.depth).finish()
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The first byte that ends a string's plain run: `"`, `\` or a control character (which JSON
/// does not allow raw), eight bytes at a time.
fn find_special(hay: &[u8]) -> Option<usize> {
    const QUOTE: u64 = LO * b'"' as u64;
    const BACKSLASH: u64 = LO * b'\\' as u64;
    const SPACE: u64 = LO * 0x20;
    let mut chunks = hay.chunks_exact(8);
    let mut offset = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (q, s) = (w ^ QUOTE, w ^ BACKSLASH);
        // Exact for the lowest matching byte, which is the one used.
        let found = ((q.wrapping_sub(LO) & !q) | (s.wrapping_sub(LO) & !s) | (w.wrapping_sub(SPACE) & !w)) & HI;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20).map(|i| offset + i)
}

fn hex4(b: &[u8]) -> Step<u16> {
    let mut v: u16 = 0;
    for &c in b.get(..4).ok_or(Fallback)? {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            _ => return Err(Fallback),
        };
        v = (v << 4) | u16::from(d);
    }
    Ok(v)
}

impl<'a> Parser<'a> {
    /// A parser at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Parser { text, pos: 0, depth: 0, scratch: String::new(), refill: false }
    }

    /// A parser at the start of `text` that decodes into values holding other objects: fields
    /// go to [`Decode::refill`](super::fill::Decode::refill), and every struct resets the
    /// fields the text does not give.
    pub fn refilling(text: &'a str) -> Self {
        Parser { refill: true, ..Self::new(text) }
    }

    /// Whether this parser decodes into values holding other objects.
    #[inline]
    pub fn is_refilling(&self) -> bool {
        self.refill
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte after whitespace (not consumed).
    #[inline]
    pub fn peek(&mut self) -> Step<u8> {
        let b = self.bytes();
        while let Some(&c) = b.get(self.pos) {
            match c {
                b' ' | b'\n' | b'\r' | b'\t' => self.pos += 1,
                _ => return Ok(c),
            }
        }
        Err(Fallback)
    }

    fn eat(&mut self, c: u8) -> Step {
        if self.peek()? == c {
            self.pos += 1;
            Ok(())
        } else {
            Err(Fallback)
        }
    }

    fn enter(&mut self) -> Step {
        self.depth += 1;
        if self.depth > MAX_DEPTH { Err(Fallback) } else { Ok(()) }
    }

    /// Only whitespace is left.
    pub fn end(&mut self) -> Step {
        match self.peek() {
            Err(Fallback) => Ok(()),
            Ok(_) => Err(Fallback),
        }
    }

    /// Consumes a `null` if one comes next: whether it did.
    #[inline]
    pub fn null(&mut self) -> Step<bool> {
        if self.peek()? != b'n' {
            return Ok(false);
        }
        self.literal(b"null")?;
        Ok(true)
    }

    fn literal(&mut self, word: &[u8]) -> Step {
        if self.bytes()[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(Fallback)
        }
    }

    /// A key of a struct's object: plain text only (an escaped key goes to serde).
    fn key(&mut self) -> Step<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        let i = find_special(&self.bytes()[start..]).ok_or(Fallback)?;
        if self.bytes()[start + i] != b'"' {
            return Err(Fallback);
        }
        self.pos = start + i + 1;
        self.eat(b':')?;
        // The quotes are ASCII, so these are character boundaries.
        self.text.get(start..start + i).ok_or(Fallback)
    }

    /// Opens an object: its first key, or `None` when it is empty.
    #[inline]
    pub fn object(&mut self) -> Step<Option<&'a str>> {
        self.eat(b'{')?;
        self.enter()?;
        if self.peek()? == b'}' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(None);
        }
        self.key().map(Some)
    }

    /// After a member's value: the next key, or `None` at the end of the object.
    #[inline]
    pub fn next_key(&mut self) -> Step<Option<&'a str>> {
        match self.peek()? {
            b',' => {
                self.pos += 1;
                self.key().map(Some)
            }
            b'}' => {
                self.pos += 1;
                self.depth -= 1;
                Ok(None)
            }
            _ => Err(Fallback),
        }
    }

    /// Opens an object whose keys are data (a map): whether it has a first member (then read
    /// its key with [`map_key`](Self::map_key)).
    pub fn map(&mut self) -> Step<bool> {
        self.eat(b'{')?;
        self.enter()?;
        if self.peek()? == b'}' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// A map's key and its colon.
    pub fn map_key(&mut self) -> Step<String> {
        let k = self.string()?;
        self.eat(b':')?;
        Ok(k)
    }

    /// A map's key handed to `f` (borrowed from the text when it has no escapes), and its colon.
    pub fn map_key_with<T>(&mut self, f: impl FnOnce(&str) -> T) -> Step<T> {
        let k = self.str_with(f)?;
        self.eat(b':')?;
        Ok(k)
    }

    /// After a map member's value: whether another member follows.
    pub fn map_next(&mut self) -> Step<bool> {
        match self.peek()? {
            b',' => {
                self.pos += 1;
                Ok(true)
            }
            b'}' => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            _ => Err(Fallback),
        }
    }

    /// Opens an array: whether it has a first element.
    pub fn array(&mut self) -> Step<bool> {
        self.eat(b'[')?;
        self.enter()?;
        if self.peek()? == b']' {
            self.pos += 1;
            self.depth -= 1;
            return Ok(false);
        }
        Ok(true)
    }

    /// After an element: whether another follows.
    pub fn array_next(&mut self) -> Step<bool> {
        match self.peek()? {
            b',' => {
                self.pos += 1;
                Ok(true)
            }
            b']' => {
                self.pos += 1;
                self.depth -= 1;
                Ok(false)
            }
            _ => Err(Fallback),
        }
    }

    /// A string, unescaped, with exactly its length as capacity.
    pub fn string(&mut self) -> Step<String> {
        self.str_with(|s| s.to_owned())
    }

    /// A string handed to `f`, borrowed from the text when it has no escapes.
    pub fn str_with<T>(&mut self, f: impl FnOnce(&str) -> T) -> Step<T> {
        self.eat(b'"')?;
        let b = self.bytes();
        let start = self.pos;
        let i = find_special(&b[start..]).ok_or(Fallback)?;
        if b[start + i] == b'"' {
            self.pos = start + i + 1;
            return Ok(f(self.text.get(start..start + i).ok_or(Fallback)?));
        }
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        let r = self.unescape(start, &mut out).map(|()| f(&out));
        self.scratch = out;
        r
    }

    /// The rest of a string with escapes, from `pos` (after its opening quote), into `out`.
    fn unescape(&mut self, mut pos: usize, out: &mut String) -> Step {
        let b = self.bytes();
        loop {
            let i = find_special(&b[pos..]).ok_or(Fallback)?;
            out.push_str(self.text.get(pos..pos + i).ok_or(Fallback)?);
            pos += i;
            match b[pos] {
                b'"' => {
                    self.pos = pos + 1;
                    return Ok(());
                }
                b'\\' => {
                    let c = *b.get(pos + 1).ok_or(Fallback)?;
                    pos += 2;
                    let ch = match c {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = hex4(&b[pos..])?;
                            pos += 4;
                            let code = match hi {
                                0xD800..=0xDBFF => {
                                    // A pair, or serde's error (which the fallback gives).
                                    if b.get(pos..pos + 2) != Some(b"\\u") {
                                        return Err(Fallback);
                                    }
                                    let lo = hex4(&b[pos + 2..])?;
                                    if !(0xDC00..=0xDFFF).contains(&lo) {
                                        return Err(Fallback);
                                    }
                                    pos += 6;
                                    0x10000 + ((u32::from(hi) - 0xD800) << 10) + (u32::from(lo) - 0xDC00)
                                }
                                0xDC00..=0xDFFF => return Err(Fallback),
                                _ => u32::from(hi),
                            };
                            char::from_u32(code).ok_or(Fallback)?
                        }
                        _ => return Err(Fallback),
                    };
                    out.push(ch);
                }
                // A raw control character.
                _ => return Err(Fallback),
            }
        }
    }

    /// A string that must equal `want` (a kind's `apiVersion` or `kind`, which k8s-openapi
    /// checks: anything else is serde's error).
    pub fn expect_str(&mut self, want: &str) -> Step {
        if self.str_with(|s| s == want)? { Ok(()) } else { Err(Fallback) }
    }

    /// `true` or `false`.
    pub fn boolean(&mut self) -> Step<bool> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|()| true),
            b'f' => self.literal(b"false").map(|()| false),
            _ => Err(Fallback),
        }
    }

    /// An integer as `serde_json` reads one into an integer type: digits with an optional minus,
    /// no fraction or exponent, no leading zero; `-0` is a float to it, and so not taken here.
    pub fn integer(&mut self) -> Step<i64> {
        self.peek()?;
        let b = self.bytes();
        let mut pos = self.pos;
        let negative = b[pos] == b'-';
        if negative {
            pos += 1;
        }
        let digits = pos;
        let mut m: u64 = 0;
        while let Some(&c) = b.get(pos) {
            if !c.is_ascii_digit() {
                break;
            }
            m = m.checked_mul(10).and_then(|m| m.checked_add(u64::from(c - b'0'))).ok_or(Fallback)?;
            pos += 1;
        }
        let n = pos - digits;
        if n == 0 || (n > 1 && b[digits] == b'0') || matches!(b.get(pos), Some(b'.' | b'e' | b'E')) {
            return Err(Fallback);
        }
        self.pos = pos;
        if negative {
            let v = (m as i64).wrapping_neg();
            if v >= 0 { Err(Fallback) } else { Ok(v) }
        } else {
            i64::try_from(m).map_err(|_| Fallback)
        }
    }

    /// Skips one value of any kind, checking its syntax (as strictly as `serde_json` or more).
    pub fn skip(&mut self) -> Step {
        // One bit per container open inside the value, innermost lowest: 1 for an object. At
        // most `MAX_DEPTH` (under 128) are open, which `enter` checks.
        let mut stack: u128 = 0;
        let mut open: u32 = 0;
        loop {
            match self.peek()? {
                c @ (b'{' | b'[') => {
                    self.pos += 1;
                    self.enter()?;
                    let close = if c == b'{' { b'}' } else { b']' };
                    if self.peek()? == close {
                        self.pos += 1;
                        self.depth -= 1;
                    } else {
                        stack = (stack << 1) | u128::from(c == b'{');
                        open += 1;
                        if c == b'{' {
                            self.skip_string()?;
                            self.eat(b':')?;
                        }
                        continue;
                    }
                }
                b'"' => self.skip_string()?,
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.skip_number()?,
                _ => return Err(Fallback),
            }
            // After a value: close containers, or go on to the next member or element.
            loop {
                if open == 0 {
                    return Ok(());
                }
                let object = stack & 1 == 1;
                match self.peek()? {
                    b',' => {
                        self.pos += 1;
                        if object {
                            self.skip_string()?;
                            self.eat(b':')?;
                        }
                        break;
                    }
                    b'}' if object => {}
                    b']' if !object => {}
                    _ => return Err(Fallback),
                }
                self.pos += 1;
                self.depth -= 1;
                stack >>= 1;
                open -= 1;
            }
        }
    }

    fn skip_string(&mut self) -> Step {
        self.eat(b'"')?;
        let b = self.bytes();
        let mut pos = self.pos;
        loop {
            let i = find_special(&b[pos..]).ok_or(Fallback)?;
            pos += i;
            match b[pos] {
                b'"' => {
                    self.pos = pos + 1;
                    return Ok(());
                }
                b'\\' => match b.get(pos + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => pos += 2,
                    Some(b'u') => {
                        hex4(b.get(pos + 2..).ok_or(Fallback)?)?;
                        pos += 6;
                    }
                    _ => return Err(Fallback),
                },
                _ => return Err(Fallback),
            }
        }
    }

    fn skip_number(&mut self) -> Step {
        let b = self.bytes();
        let mut pos = self.pos;
        if b[pos] == b'-' {
            pos += 1;
        }
        let digits = |pos: &mut usize| {
            let s = *pos;
            while b.get(*pos).is_some_and(u8::is_ascii_digit) {
                *pos += 1;
            }
            *pos - s
        };
        let start = pos;
        let n = digits(&mut pos);
        if n == 0 || (n > 1 && b[start] == b'0') {
            return Err(Fallback);
        }
        if b.get(pos) == Some(&b'.') {
            pos += 1;
            if digits(&mut pos) == 0 {
                return Err(Fallback);
            }
        }
        if matches!(b.get(pos), Some(b'e' | b'E')) {
            pos += 1;
            if matches!(b.get(pos), Some(b'+' | b'-')) {
                pos += 1;
            }
            if digits(&mut pos) == 0 {
                return Err(Fallback);
            }
        }
        self.pos = pos;
        Ok(())
    }

    /// Where the next value starts (after whitespace).
    pub fn value_start(&mut self) -> Step<usize> {
        self.peek()?;
        Ok(self.pos)
    }

    /// Where the parser is.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// One value of any kind, as the text it spans (after skipping it).
    pub fn raw(&mut self) -> Step<&'a str> {
        self.peek()?;
        let start = self.pos;
        self.skip()?;
        self.text.get(start..self.pos).ok_or(Fallback)
    }
}
