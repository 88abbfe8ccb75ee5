//! Decoding JSON with every list exactly as long as it needs to be.
//!
//! `serde_json` does not know how many elements an array holds until it has read them, so a
//! `Vec` it fills grows by doubling and keeps the spare capacity: a decoded Pod of the benchmark
//! data holds 35.4 KB of heap where the same Pod with exact capacities needs 26.4 KB (a
//! `Vec<Volume>` of three keeps room for four 3,280-byte `Volume`s, a `Vec<ContainerStatus>` of
//! one room for four). For objects that are held for long, in a store, that is a quarter of the
//! memory for nothing.
//!
//! [`from_str`] first counts the elements of every array of the text (one pass that skips
//! string contents eight bytes at a time), then decodes through `serde_json`, handing each array
//! its count as the sequence's size hint, which `Vec`'s `Deserialize` uses as its capacity. The
//! values and the errors are exactly `serde_json`'s: the counts only size allocations, and a
//! wrong count (for text that is not JSON) could only cost memory, never correctness. It takes
//! about 10–15% more CPU than a plain decode (measured in instructions), so it is an option:
//! [`watcher::Config::compact`](crate::watcher::Config::compact) for watchers that feed a store.
//!
//! The built-in kinds (the k8s-openapi structs) do not need it: the watcher and
//! [`Response::list`](crate::Response::list) read them with the [direct
//! decoder](crate::direct_json), whose lists are exact already and which is faster than a plain
//! decode. For them the option changes nothing; it matters for custom resources, dynamic
//! objects and any other type decoded through serde.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

/// Decodes `text` as `T` like `serde_json::from_str`, giving every `Vec` (and every other
/// sequence that honours size hints) exactly the capacity its array needs.
pub fn from_str<'a, T: serde::Deserialize<'a>>(text: &'a str) -> serde_json::Result<T> {
    let mut counts = Counts::scan(text.as_bytes());
    let mut de = serde_json::Deserializer::from_str(text);
    let value = T::deserialize(Hinted { inner: &mut de, counts: &mut counts })?;
    de.end()?;
    Ok(value)
}

/// The element counts of the arrays of a text, in the order their `[` appear, which is the
/// order a deserializer opens them in.
struct Counts {
    counts: Vec<u32>,
    next: usize,
}

/// An open container while counting: an object, or an array and its index in `counts`.
const OBJECT: u32 = u32::MAX;

impl Counts {
    fn scan(b: &[u8]) -> Counts {
        let mut counts: Vec<u32> = Vec::new();
        let mut open: Vec<u32> = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match c {
                b' ' | b'\n' | b'\r' | b'\t' | b':' => {}
                b']' | b'}' => {
                    open.pop();
                }
                b',' => {
                    if let Some(&top) = open.last()
                        && top != OBJECT
                        && let Some(n) = counts.get_mut(top as usize)
                    {
                        *n = n.saturating_add(1);
                    }
                }
                _ => {
                    // A value starts: the first one in an array makes its count 1.
                    if let Some(&top) = open.last()
                        && top != OBJECT
                        && let Some(n) = counts.get_mut(top as usize)
                        && *n == 0
                    {
                        *n = 1;
                    }
                    match c {
                        b'[' => {
                            open.push(u32::try_from(counts.len()).unwrap_or(OBJECT));
                            counts.push(0);
                        }
                        b'{' => open.push(OBJECT),
                        b'"' => i = skip_string(b, i + 1),
                        _ => {}
                    }
                }
            }
            i += 1;
        }
        Counts { counts, next: 0 }
    }

    /// The count of the next array opened.
    fn take(&mut self) -> Option<usize> {
        let n = self.counts.get(self.next).map(|&n| n as usize);
        self.next += 1;
        n
    }
}

/// The index of the quote closing the string whose contents start at `i` (or the end).
fn skip_string(b: &[u8], mut i: usize) -> usize {
    loop {
        match b.get(i..).and_then(find_quote_or_backslash) {
            None => return b.len(),
            Some(p) if b[i + p] == b'\\' => i += p + 2,
            Some(p) => return i + p,
        }
    }
}

/// The first `"` or `\`, eight bytes at a time.
fn find_quote_or_backslash(hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const QUOTE: u64 = LO * b'"' as u64;
    const BACKSLASH: u64 = LO * b'\\' as u64;
    let mut chunks = hay.chunks_exact(8);
    let mut offset = 0;
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (q, s) = (w ^ QUOTE, w ^ BACKSLASH);
        let found = ((q.wrapping_sub(LO) & !q) | (s.wrapping_sub(LO) & !s)) & HI;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|&x| x == b'"' || x == b'\\').map(|p| offset + p)
}

/// A deserializer that passes everything to `inner`, wrapping what comes back so that every
/// sequence it opens gets its count as a size hint.
struct Hinted<'c, D> {
    inner: D,
    counts: &'c mut Counts,
}

struct HintedVisitor<'c, V> {
    inner: V,
    counts: &'c mut Counts,
}

struct HintedSeq<'c, A> {
    inner: A,
    counts: &'c mut Counts,
    left: Option<usize>,
}

struct HintedMap<'c, A> {
    inner: A,
    counts: &'c mut Counts,
}

struct HintedSeed<'c, S> {
    inner: S,
    counts: &'c mut Counts,
}

struct HintedEnum<'c, A> {
    inner: A,
    counts: &'c mut Counts,
}

macro_rules! forward_deserialize {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.inner.$method(HintedVisitor { inner: visitor, counts: self.counts })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Hinted<'_, D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
    );

    /// A skipped value is walked through the wrappers too, so that the arrays inside it use up
    /// their counts and the ones after it get theirs.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_any(HintedVisitor { inner: visitor, counts: self.counts })
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_unit_struct(name, HintedVisitor { inner: visitor, counts: self.counts })
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_newtype_struct(name, HintedVisitor { inner: visitor, counts: self.counts })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_tuple(len, HintedVisitor { inner: visitor, counts: self.counts })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_tuple_struct(name, len, HintedVisitor { inner: visitor, counts: self.counts })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_struct(name, fields, HintedVisitor { inner: visitor, counts: self.counts })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.inner.deserialize_enum(name, variants, HintedVisitor { inner: visitor, counts: self.counts })
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for HintedVisitor<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit!(
        visit_bool: bool,
        visit_i8: i8,
        visit_i16: i16,
        visit_i32: i32,
        visit_i64: i64,
        visit_i128: i128,
        visit_u8: u8,
        visit_u16: u16,
        visit_u32: u32,
        visit_u64: u64,
        visit_u128: u128,
        visit_f32: f32,
        visit_f64: f64,
        visit_char: char,
        visit_str: &str,
        visit_borrowed_str: &'de str,
        visit_string: String,
        visit_bytes: &[u8],
        visit_borrowed_bytes: &'de [u8],
        visit_byte_buf: Vec<u8>,
    );

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_some(Hinted { inner: d, counts: self.counts })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(Hinted { inner: d, counts: self.counts })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let left = self.counts.take();
        self.inner.visit_seq(HintedSeq { inner: seq, counts: self.counts, left })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.inner.visit_map(HintedMap { inner: map, counts: self.counts })
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.inner.visit_enum(HintedEnum { inner: data, counts: self.counts })
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for HintedSeq<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        let next = self.inner.next_element_seed(HintedSeed { inner: seed, counts: self.counts });
        if let Some(left) = &mut self.left {
            *left = left.saturating_sub(1);
        }
        next
    }

    fn size_hint(&self) -> Option<usize> {
        self.left
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for HintedMap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(HintedSeed { inner: seed, counts: self.counts })
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(HintedSeed { inner: seed, counts: self.counts })
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for HintedSeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(Hinted { inner: d, counts: self.counts })
    }
}

impl<'c, 'de, A: EnumAccess<'de>> EnumAccess<'de> for HintedEnum<'c, A> {
    type Error = A::Error;
    type Variant = HintedEnum<'c, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.inner.variant_seed(HintedSeed { inner: seed, counts: &mut *self.counts })?;
        Ok((value, HintedEnum { inner: variant, counts: self.counts }))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for HintedEnum<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(HintedSeed { inner: seed, counts: self.counts })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner.tuple_variant(len, HintedVisitor { inner: visitor, counts: self.counts })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner.struct_variant(fields, HintedVisitor { inner: visitor, counts: self.counts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn counts(text: &str) -> Vec<u32> {
        Counts::scan(text.as_bytes()).counts
    }

    #[test]
    fn arrays_are_counted_in_the_order_they_open() {
        assert_eq!(counts(r#"[]"#), vec![0]);
        assert_eq!(counts(r#"[ ]"#), vec![0]);
        assert_eq!(counts(r#"[1]"#), vec![1]);
        assert_eq!(counts(r#"{"a":[1,[2,3,[]],{"b":[4,5]}],"c":[]}"#), vec![3, 3, 0, 2, 0]);
        // Brackets, commas and escaped quotes inside strings are not structure.
        assert_eq!(counts(r#"["a,]","[\"x\\",{"k[":"v]"}]"#), vec![3]);
        assert_eq!(counts(r#"["\\","\\\"",""]"#), vec![3]);
    }

    #[test]
    fn text_that_is_not_json_never_panics() {
        for text in ["", "[", "]", "]]]", "\"", "\"\\", "[\"\\", ",,,", "[,,]", "{[}]", "[\"abcdefghijklmnop"] {
            let _ = counts(text);
            assert!(from_str::<Vec<Vec<u8>>>(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn vectors_get_exactly_their_length_as_capacity() {
        #[derive(Deserialize)]
        struct Item {
            tags: Vec<String>,
        }
        #[derive(Deserialize)]
        struct Doc {
            #[allow(dead_code)]
            skipped: Option<serde::de::IgnoredAny>,
            items: Vec<Item>,
            more: Vec<u64>,
        }
        let text = r#"{"skipped":[[1,2],[3]],"unknown":[1,2,3,4,5],"items":[{"tags":["a","b","c","d","e"]},{"tags":["x"]}],"more":[1,2,3,4,5,6,7,8,9]}"#;
        let doc: Doc = from_str(text).unwrap();
        assert_eq!(doc.items.capacity(), 2);
        assert_eq!(doc.items[0].tags.capacity(), 5);
        assert_eq!(doc.items[1].tags.capacity(), 1);
        assert_eq!(doc.more.capacity(), 9);
        // serde_json alone leaves spare room.
        let plain: Doc = serde_json::from_str(text).unwrap();
        assert!(plain.more.capacity() > 9);
    }

    #[test]
    fn values_and_errors_are_serde_json_s() {
        let texts = [
            r#"{"a":[1,2,{"b":["x",null,true]}],"c":"d\"e","f":1.5e3}"#,
            r#"[{"a":1},{"a":[2]}]"#,
            r#"{"a":[1,2"#,
            r#"{"a":[1,2]]"#,
            r#"{"a":[1,2]} trailing"#,
        ];
        for text in texts {
            let ours = from_str::<serde_json::Value>(text).map_err(|e| e.to_string());
            let theirs = serde_json::from_str::<serde_json::Value>(text).map_err(|e| e.to_string());
            assert_eq!(ours, theirs, "{text}");
        }
    }
}
