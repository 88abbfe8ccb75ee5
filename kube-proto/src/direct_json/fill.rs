//! How each shape of field is read: [`Decode`] for strings, numbers, booleans, options, lists,
//! maps, boxes and the special types of k8s-openapi (`Quantity`, `IntOrString`, `Time`,
//! `MicroTime`), and the macros the generated code implements it with: [`in_place!`] for the
//! structs it reads, [`by_serde!`] for the types `serde_json` reads from their value's text.

use std::any::Any;
use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, MicroTime, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::parser::{Fallback, Parser, Step};

/// A value read from JSON exactly as its `Deserialize` (through `serde_json`) reads it.
pub(crate) trait Decode: Sized {
    /// Reads a new value.
    fn make(p: &mut Parser<'_>) -> Step<Self>;

    /// Reads a value into `out`, which holds its `Default` (a struct fills its fields there).
    fn fill(p: &mut Parser<'_>, out: &mut Self) -> Step {
        *out = Self::make(p)?;
        Ok(())
    }

    /// Reads a value into `Some` (a struct fills it where it will stay).
    fn fill_some(p: &mut Parser<'_>, out: &mut Option<Self>) -> Step {
        *out = Some(Self::make(p)?);
        Ok(())
    }

    /// Reads a value onto the end of `list` (a struct fills it there).
    fn push(p: &mut Parser<'_>, list: &mut Vec<Self>) -> Step {
        list.push(Self::make(p)?);
        Ok(())
    }

    /// Reads a value into `out`, which holds any value of its type (an object a store has let
    /// go of, see [`Parser::refilling`]): the result equals what [`make`](Self::make) gives, and
    /// the strings, lists and structs `out` already holds are written over instead of freed and
    /// allocated again.
    fn refill(p: &mut Parser<'_>, out: &mut Self) -> Step {
        *out = Self::make(p)?;
        Ok(())
    }
}

/// A string's buffer is written over when it is at least as long as the text and at most this
/// many bytes longer (the allocator's own rounding); otherwise the text gets a buffer of its own,
/// exactly as long, as a new decode gives it.
const REUSE_SLACK: usize = 16;

/// One field of a struct, its bit `bit` in `seen`: `null` leaves it as it is (its default, as
/// k8s-openapi reads every field as an `Option` and defaults an absent one), a second occurrence
/// of the key goes to serde (which would replace the first; filling in place would merge).
#[inline]
pub(crate) fn field<T: Decode + Default>(p: &mut Parser<'_>, out: &mut T, seen: &mut u128, bit: u32) -> Step {
    let b = 1u128 << bit;
    if *seen & b != 0 {
        return Err(Fallback);
    }
    *seen |= b;
    if p.is_refilling() {
        // `null` is the default here too: k8s-openapi reads every field through an `Option`.
        if p.null()? {
            *out = T::default();
            Ok(())
        } else {
            T::refill(p, out)
        }
    } else if p.null()? {
        Ok(())
    } else {
        T::fill(p, out)
    }
}

/// After a struct read by a refilling parser: a field the text did not give (bit `bit` clear
/// in `seen`) goes back to its default, as it would be in a new decode.
#[inline]
pub(crate) fn unseen<T: Default>(out: &mut T, seen: u128, bit: u32) {
    if seen & (1u128 << bit) == 0 {
        *out = T::default();
    }
}

/// A kind's decoder: fills the `Option<K>` behind the `Any` when it is that kind's struct.
pub(crate) type Direct = fn(&mut Parser<'_>, &mut dyn Any) -> Step;

/// A kind's struct (its `TypeId`) and its decoder.
pub(crate) type Kind = (fn() -> std::any::TypeId, Direct);

/// The [`Direct`] of a kind's struct: a refilling parser writes over the object the slot holds.
pub(crate) fn direct<T: Decode + Default + 'static>(p: &mut Parser<'_>, slot: &mut dyn Any) -> Step {
    let slot = slot.downcast_mut::<Option<T>>().ok_or(Fallback)?;
    match slot {
        Some(old) if p.is_refilling() => T::refill(p, old),
        _ => T::fill(p, slot.insert(T::default())),
    }
}

/// Reads the value's text with `serde_json` (the parser has checked its syntax and depth).
pub(crate) fn serde<T: DeserializeOwned>(p: &mut Parser<'_>) -> Step<T> {
    serde_json::from_str(p.raw()?).map_err(|_| Fallback)
}

/// `Decode` for a struct read in place by its generated function.
macro_rules! in_place {
    ($ty:ty, $f:ident) => {
        impl $crate::direct_json::fill::Decode for $ty {
            fn make(p: &mut Parser<'_>) -> Step<Self> {
                let mut v = <$ty>::default();
                $f(p, &mut v)?;
                Ok(v)
            }
            fn fill(p: &mut Parser<'_>, out: &mut Self) -> Step {
                $f(p, out)
            }
            fn fill_some(p: &mut Parser<'_>, out: &mut Option<Self>) -> Step {
                $f(p, out.insert(<$ty>::default()))
            }
            fn push(p: &mut Parser<'_>, list: &mut Vec<Self>) -> Step {
                list.push(<$ty>::default());
                match list.last_mut() {
                    Some(last) => $f(p, last),
                    None => Err($crate::direct_json::parser::Fallback),
                }
            }
            fn refill(p: &mut Parser<'_>, out: &mut Self) -> Step {
                // The generated function resets what the text leaves out.
                $f(p, out)
            }
        }
    };
}
pub(crate) use in_place;

/// `Decode` for a type `serde_json` reads from its value's text.
macro_rules! by_serde {
    ($ty:ty) => {
        impl $crate::direct_json::fill::Decode for $ty {
            fn make(p: &mut Parser<'_>) -> Step<Self> {
                $crate::direct_json::fill::serde(p)
            }
        }
    };
}
pub(crate) use by_serde;

by_serde!(f64);
by_serde!(ByteString);

impl Decode for String {
    fn make(p: &mut Parser<'_>) -> Step<Self> {
        p.string()
    }
    fn refill(p: &mut Parser<'_>, out: &mut Self) -> Step {
        p.str_with(|s| {
            if out.capacity() >= s.len() && out.capacity() - s.len() <= REUSE_SLACK {
                out.clear();
                out.push_str(s);
            } else {
                *out = s.to_owned();
            }
        })
    }
}

impl Decode for bool {
    fn make(p: &mut Parser<'_>) -> Step<Self> {
        p.boolean()
    }
}

impl Decode for i64 {
    fn make(p: &mut Parser<'_>) -> Step<Self> {
        p.integer()
    }
}

impl Decode for i32 {
    fn make(p: &mut Parser<'_>) -> Step<Self> {
        i32::try_from(p.integer()?).map_err(|_| Fallback)
    }
}

impl<T: Decode> Decode for Option<T> {
    fn make(p: &mut Parser<'_>) -> Step<Self> {
        if p.null()? { Ok(None) } else { T::make(p).map(Some) }
    }
    fn fill(p: &mut Parser<'_>, out: &mut Self) -> Step {
        if p.null()? { Ok(()) } else { T::fill_some(p, out) }
    }
    fn refill(p: &mut Parser<'_>, out: &mut Self) -> Step {
        if p.null()? {
            *out = None;
            return Ok(());
        }
        match out {
            Some(v) => T::refill(p, v),
            None => T::fill_some(p, out),
        }
    }
}

impl<T: Decode> Decode for Box<T> {
    fn make(p: &mut Parser<'_>) -> Step<Self> {
        T::make(p).map(Box::new)
    }
    fn refill(p: &mut Parser<'_>, out: &mut Self) -> Step {
        T::refill(p, out)
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn make(p: &mut Parser<'_>) -> Step<Self> {
        let mut v = Vec::new();
        Self::fill(p, &mut v)?;
        Ok(v)
    }
    fn fill(p: &mut Parser<'_>, out: &mut Self) -> Step {
        if p.array()? {
            loop {
                T::push(p, out)?;
                if !p.array_next()? {
                    break;
                }
            }
        }
        // Exactly as long as it needs to be (see `crate::compact`).
        out.shrink_to_fit();
        Ok(())
    }
    fn refill(p: &mut Parser<'_>, out: &mut Self) -> Step {
        let mut n = 0;
        if p.array()? {
            loop {
                match out.get_mut(n) {
                    Some(v) => T::refill(p, v)?,
                    None => T::push(p, out)?,
                }
                n += 1;
                if !p.array_next()? {
                    break;
                }
            }
        }
        out.truncate(n);
        out.shrink_to_fit();
        Ok(())
    }
}

impl<T: Decode> Decode for BTreeMap<String, T> {
    fn make(p: &mut Parser<'_>) -> Step<Self> {
        let mut m = BTreeMap::new();
        Self::fill(p, &mut m)?;
        Ok(m)
    }
    fn fill(p: &mut Parser<'_>, out: &mut Self) -> Step {
        if p.map()? {
            loop {
                let k = p.map_key()?;
                let v = T::make(p)?;
                // A repeated key: the later value, as serde's map does.
                out.insert(k, v);
                if !p.map_next()? {
                    break;
                }
            }
        }
        Ok(())
    }
    fn refill(p: &mut Parser<'_>, out: &mut Self) -> Step {
        refill_map(p, out)
    }
}

/// The maps of string keys: k8s-openapi's `BTreeMap<String, T>` and `serde_json`'s `Map`.
trait StringMap<V> {
    fn entries<'a>(&'a mut self) -> impl Iterator<Item = (&'a String, &'a mut V)>
    where
        V: 'a;
    fn count(&self) -> usize;
    fn put(&mut self, key: String, value: V);
    fn keep_first(&mut self, n: usize);
}

/// The same five lines for each map type: both have `iter_mut`, `len`, `insert` and `retain`.
macro_rules! string_map {
    (impl<$($g:ident)?> for $map:ty, $v:ty) => {
        impl<$($g)?> StringMap<$v> for $map {
            fn entries<'a>(&'a mut self) -> impl Iterator<Item = (&'a String, &'a mut $v)>
            where
                $v: 'a,
            {
                self.iter_mut()
            }
            fn count(&self) -> usize {
                self.len()
            }
            fn put(&mut self, key: String, value: $v) {
                self.insert(key, value);
            }
            fn keep_first(&mut self, n: usize) {
                let mut i = 0;
                self.retain(|_, _| {
                    i += 1;
                    i <= n
                });
            }
        }
    };
}

string_map!(impl<V> for BTreeMap<String, V>, V);
string_map!(impl<> for Map<String, Value>, Value);

/// A map read over `out`: the entries whose keys the text gives in the same order are refilled
/// in place (see [`refill_prefix`]), the rest of `out` dropped, the rest of the text inserted.
/// A repeated key ends the prefix, and its later value replaces the earlier, as serde's does.
fn refill_map<V: Decode, M: StringMap<V>>(p: &mut Parser<'_>, out: &mut M) -> Step {
    if !p.map()? {
        out.keep_first(0);
        return Ok(());
    }
    let (matched, pending) = refill_prefix(p, out.entries())?;
    if matched < out.count() {
        out.keep_first(matched);
    }
    let Some(mut key) = pending else { return Ok(()) };
    loop {
        let v = V::make(p)?;
        out.put(key, v);
        if !p.map_next()? {
            return Ok(());
        }
        key = p.map_key()?;
    }
}

/// The members of a map's text (its `{` read, a member next) over a map's `entries` in their
/// order, while each key is the next entry's: that entry's value refilled in place, its node
/// and key kept. Returns how many matched, and the text's first key that did not (owned; its
/// colon read), after which the caller drops the entries past the matched ones and inserts the
/// rest anew; `None` once the text's map has ended. Maps the API server writes come with their
/// keys sorted, as the maps hold them, so a map whose keys stayed the same is all refilled.
fn refill_prefix<'m, V: Decode + 'm>(
    p: &mut Parser<'_>,
    mut entries: impl Iterator<Item = (&'m String, &'m mut V)>,
) -> Step<(usize, Option<String>)> {
    let mut matched = 0;
    loop {
        let next = p.map_key_with(|k| match entries.next() {
            Some((key, v)) if key == k => Ok(v),
            _ => Err(k.to_owned()),
        })?;
        match next {
            Ok(v) => V::refill(p, v)?,
            Err(key) => return Ok((matched, Some(key))),
        }
        matched += 1;
        if !p.map_next()? {
            return Ok((matched, None));
        }
    }
}

/// Free-form JSON (`FieldsV1`, `RawExtension`, the `JSON` of custom resource schemas): objects,
/// arrays, strings, booleans and `null` read here, numbers by `serde_json` from their text (so
/// that each is the `Number` serde makes of it).
impl Decode for Value {
    fn make(p: &mut Parser<'_>) -> Step<Self> {
        Ok(match p.peek()? {
            b'{' => {
                let mut m = Map::new();
                if p.map()? {
                    loop {
                        let k = p.map_key()?;
                        let v = Value::make(p)?;
                        // A repeated key: the later value, as serde's map does.
                        m.insert(k, v);
                        if !p.map_next()? {
                            break;
                        }
                    }
                }
                Value::Object(m)
            }
            b'[' => Value::Array(Vec::make(p)?),
            b'"' => Value::String(p.string()?),
            b't' | b'f' => Value::Bool(p.boolean()?),
            b'n' => {
                p.null()?;
                Value::Null
            }
            _ => serde(p)?,
        })
    }
    fn refill(p: &mut Parser<'_>, out: &mut Self) -> Step {
        match (p.peek()?, out) {
            (b'{', Value::Object(m)) => refill_map(p, m),
            (b'[', Value::Array(v)) => Vec::refill(p, v),
            (b'"', Value::String(s)) => String::refill(p, s),
            (_, out) => {
                *out = Value::make(p)?;
                Ok(())
            }
        }
    }
}

impl Decode for FieldsV1 {
    fn make(p: &mut Parser<'_>) -> Step<Self> {
        Value::make(p).map(FieldsV1)
    }
    fn refill(p: &mut Parser<'_>, out: &mut Self) -> Step {
        Value::refill(p, &mut out.0)
    }
}

impl Decode for Quantity {
    fn make(p: &mut Parser<'_>) -> Step<Self> {
        // A number becomes its text through serde (`visit_u64`... `to_string`).
        if p.peek()? == b'"' { p.string().map(Quantity) } else { serde(p) }
    }
    fn refill(p: &mut Parser<'_>, out: &mut Self) -> Step {
        if p.peek()? == b'"' {
            String::refill(p, &mut out.0)
        } else {
            *out = serde(p)?;
            Ok(())
        }
    }
}

impl Decode for IntOrString {
    fn make(p: &mut Parser<'_>) -> Step<Self> {
        match p.peek()? {
            b'"' => p.string().map(IntOrString::String),
            _ => i32::try_from(p.integer()?).map(IntOrString::Int).map_err(|_| Fallback),
        }
    }
}

/// A `Timestamp` as its own `Deserialize` parses the string (`deserialize_str` hands it the
/// text, as `serde_json` does); the form the API server writes is read here first.
fn timestamp(p: &mut Parser<'_>) -> Step<Timestamp> {
    p.str_with(|s| match utc_seconds(s.as_bytes()).map(Timestamp::from_second) {
        Some(Ok(t)) => Ok(t),
        _ => Timestamp::deserialize(serde::de::value::StrDeserializer::<serde::de::value::Error>::new(s))
            .map_err(|_| Fallback),
    })?
}

/// `YYYY-MM-DDTHH:MM:SSZ` (a valid date and time, no leap second) as seconds since the Unix
/// epoch; `None` for any other text, which jiff's parser then reads.
pub(crate) fn utc_seconds(s: &[u8]) -> Option<i64> {
    let shape = s.len() == 20
        && s[4] == b'-'
        && s[7] == b'-'
        && s[10] == b'T'
        && s[13] == b':'
        && s[16] == b':'
        && s[19] == b'Z';
    if !shape {
        return None;
    }
    let two = |i: usize| {
        let (a, b) = (s[i].wrapping_sub(b'0'), s[i + 1].wrapping_sub(b'0'));
        (a < 10 && b < 10).then(|| i64::from(a * 10 + b))
    };
    let year = two(0)? * 100 + two(2)?;
    let (month, day, hour, minute, second) = (two(5)?, two(8)?, two(11)?, two(14)?, two(17)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // Days since 1970-01-01 of a proleptic Gregorian date (years start in March, so that the
    // leap day is the last of its year).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

impl Decode for Time {
    fn make(p: &mut Parser<'_>) -> Step<Self> {
        timestamp(p).map(Time)
    }
}

impl Decode for MicroTime {
    fn make(p: &mut Parser<'_>) -> Step<Self> {
        timestamp(p).map(MicroTime)
    }
}
