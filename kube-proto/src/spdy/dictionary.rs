//! The dictionary SPDY/3 primes its header compression with (a constant of the protocol):
//! 65 common header words, each after its length as 4 big-endian bytes, then common values run
//! together.

/// The words, in order.
const WORDS: [&str; 65] = [
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The values after the words.
const TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Una",
    "uthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service",
    " UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, ",
    "Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,application/xml,applicat",
    "ion/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf",
    "-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The dictionary's length.
const LEN: usize = 1423;

/// The dictionary: every header block of a SPDY/3 connection is compressed with it as zlib's
/// preset dictionary.
pub(crate) static DICTIONARY: [u8; LEN] = build();

/// The Adler-32 checksum of [`DICTIONARY`], which a zlib stream primed with it names.
pub(crate) const DICTIONARY_ID: u32 = 0xe3c6_a7c2;

const fn build() -> [u8; LEN] {
    let mut out = [0u8; LEN];
    let mut at = 0;
    let mut i = 0;
    while i < WORDS.len() {
        let word = WORDS[i].as_bytes();
        let len = (word.len() as u32).to_be_bytes();
        let mut j = 0;
        while j < 4 {
            out[at] = len[j];
            at += 1;
            j += 1;
        }
        let mut j = 0;
        while j < word.len() {
            out[at] = word[j];
            at += 1;
            j += 1;
        }
        i += 1;
    }
    let tail = TAIL.as_bytes();
    let mut j = 0;
    while j < tail.len() {
        out[at] = tail[j];
        at += 1;
        j += 1;
    }
    assert!(at == LEN, "the words and the tail fill the dictionary exactly");
    out
}

/// Adler-32 (RFC 1950) of `bytes`.
#[cfg(test)]
fn adler32(bytes: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 bytes is the most that can be summed before the sums may overflow 32 bits.
    for chunk in bytes.chunks(5552) {
        for &byte in chunk {
            a += u32::from(byte);
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_the_protocols() {
        // The checksum the protocol's zlib streams name for their preset dictionary.
        assert_eq!(adler32(&DICTIONARY), DICTIONARY_ID);
        assert!(DICTIONARY.starts_with(b"\x00\x00\x00\x07options\x00\x00\x00\x04head"));
        assert!(DICTIONARY.ends_with(b"charset=iso-8859-1,utf-,*,enq=0."));
    }

    #[test]
    fn adler32_of_known_inputs() {
        assert_eq!(adler32(b""), 1);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
        // Long enough for the modulo to matter.
        assert_eq!(adler32(&[0xff; 100_000]), 0x149a_302c);
    }
}
