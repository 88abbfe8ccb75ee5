//! Protobuf decoded straight into the `k8s_openapi` structs of the built-in kinds, without serde:
//! the generated functions of [`direct_gen`](super::direct_gen) (one per message, a `match` on the
//! field number) and the helpers they call.
//!
//! Each function fills a struct where it lies (a field's, or a list element pushed as its
//! default), so large structs such as `Container` are never moved after decoding, and a list is
//! sized for its whole run of fields when the run starts.
//!
//! They read exactly what the serde path ([`de`](super::de)) reads, and give the same values:
//! an empty string in a singular field is absent, a zero `Time` is `None`, `Time` keeps whole
//! seconds and `MicroTime` microseconds (what their RFC 3339 forms hold), a repeated field or map
//! is one run of consecutive entries (a later run of the same field replaces it, as a duplicate
//! JSON key would), inlined Go structs fill their parent's fields. The few fields of rarer shapes
//! (JSON held in protobuf such as `FieldsV1`, bytes, packed numbers, `Condition`s whose `Time` is
//! required) are read by the serde path, for that field alone.
//!
//! Generic code reaches them through [`decode`]: the kind in the envelope picks the function, and
//! the result is handed over through `&mut dyn Any`, so it is used only when the caller's type is
//! that kind's struct; any other type goes through serde.

use std::any::Any;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use super::de::{MapRun, Run, ValueDe, seconds_nanos, utf8, wire_mismatch};
use super::schema_types::{Message, Rep, Ty};
use super::wire::{Reader, Value};
use super::{ProtobufError, ProtobufErrorKind};

/// A kind's decoder: fills the `Option<K>` behind the `Any` when it is that kind's struct
/// (`Ok(true)`), leaves it alone otherwise (`Ok(false)`).
pub(super) type Direct = fn(&[u8], &mut dyn Any) -> Result<bool, ProtobufError>;

/// A generated function: fills a struct (default when called) from its message's bytes.
pub(super) type Fill<T> = fn(&[u8], &mut T) -> Result<(), ProtobufError>;

/// The object `raw` of kind `(api_version, kind)` as `T`, when `T` is that kind's `k8s_openapi`
/// struct; `None` when it is not (or the kind has no direct decoder): use the serde path.
pub(crate) fn decode<T: 'static>(api_version: &str, kind: &str, raw: &[u8]) -> Option<Result<T, ProtobufError>> {
    let kinds = super::direct_gen::KINDS;
    let i = kinds.binary_search_by(|(av, k, _)| (*av, *k).cmp(&(api_version, kind))).ok()?;
    let mut slot: Option<T> = None;
    match (kinds[i].2)(raw, &mut slot) {
        Ok(_) => slot.map(Ok),
        Err(e) => Some(Err(e)),
    }
}

/// Decodes into `slot` when it is an `Option<T>`.
pub(super) fn fill<T: Default + 'static>(b: &[u8], slot: &mut dyn Any, f: Fill<T>) -> Result<bool, ProtobufError> {
    match slot.downcast_mut::<Option<T>>() {
        Some(s) => {
            let filled = f(b, s.insert(T::default()));
            if filled.is_err() {
                *s = None;
            }
            filled.map(|()| true)
        }
        None => Ok(false),
    }
}

/// A nested message's bytes.
#[inline]
pub(super) fn bytes<'a>(v: Value<'a>) -> Result<&'a [u8], ProtobufError> {
    match v {
        Value::Bytes(b) => Ok(b),
        v => Err(wire_mismatch(Ty::Bytes, &v)),
    }
}

/// A nested message, decoded by its function into a new value (a map's values; fields and
/// list elements are filled where they lie).
pub(super) fn message<T: Default>(v: Value<'_>, f: Fill<T>) -> Result<T, ProtobufError> {
    let mut value = T::default();
    f(bytes(v)?, &mut value)?;
    Ok(value)
}

/// Whether a value is empty bytes (an empty string: absent in a singular field).
pub(super) fn is_empty(v: Value<'_>) -> bool {
    matches!(v, Value::Bytes([]))
}

/// A singular string: `None` when empty.
#[inline]
pub(super) fn string(v: Value<'_>) -> Result<Option<String>, ProtobufError> {
    match v {
        Value::Bytes([]) => Ok(None),
        Value::Bytes(b) => Ok(Some(utf8(b)?.to_owned())),
        v => Err(wire_mismatch(Ty::String, &v)),
    }
}

/// A string of a list or a map, empty or not.
#[inline]
pub(super) fn string_any(v: Value<'_>) -> Result<String, ProtobufError> {
    match v {
        Value::Bytes(b) => Ok(utf8(b)?.to_owned()),
        v => Err(wire_mismatch(Ty::String, &v)),
    }
}

pub(super) fn boolean(v: Value<'_>) -> Result<bool, ProtobufError> {
    match v {
        Value::Varint(x) => Ok(x != 0),
        v => Err(wire_mismatch(Ty::Bool, &v)),
    }
}

pub(super) fn int32(v: Value<'_>) -> Result<i32, ProtobufError> {
    match v {
        Value::Varint(x) => Ok(x as i32),
        v => Err(wire_mismatch(Ty::Int32, &v)),
    }
}

pub(super) fn int64(v: Value<'_>) -> Result<i64, ProtobufError> {
    match v {
        Value::Varint(x) => Ok(x as i64),
        v => Err(wire_mismatch(Ty::Int64, &v)),
    }
}

pub(super) fn double(v: Value<'_>) -> Result<f64, ProtobufError> {
    match v {
        Value::Fixed64(x) => Ok(f64::from_bits(x)),
        v => Err(wire_mismatch(Ty::Double, &v)),
    }
}

fn timestamp(seconds: i64, nanos: i32) -> Result<Timestamp, ProtobufError> {
    Timestamp::new(seconds, nanos).map_err(|e| {
        ProtobufError::new(ProtobufErrorKind::Decode, format!("a time of {seconds} s and {nanos} ns: {e}"))
    })
}

/// A `meta.v1.Time`: `None` when zero, whole seconds (as its RFC 3339 form holds them).
pub(super) fn time(v: Value<'_>) -> Result<Option<Time>, ProtobufError> {
    match seconds_nanos(bytes(v)?)? {
        (0, 0) => Ok(None),
        (s, _) => Ok(Some(Time(timestamp(s, 0)?))),
    }
}

/// A `meta.v1.MicroTime`: `None` when zero, whole microseconds.
pub(super) fn micro_time(v: Value<'_>) -> Result<Option<MicroTime>, ProtobufError> {
    match seconds_nanos(bytes(v)?)? {
        (0, 0) => Ok(None),
        (s, n) => Ok(Some(MicroTime(timestamp(s, n.clamp(0, 999_999_999) / 1000 * 1000)?))),
    }
}

/// A `resource.Quantity` `{string}`.
pub(super) fn quantity(v: Value<'_>) -> Result<Quantity, ProtobufError> {
    let mut r = Reader::new(bytes(v)?);
    let mut s = "";
    while let Some((n, v)) = r.field()? {
        match (n, v) {
            (1, Value::Bytes(b)) => s = utf8(b)?,
            (1, v) => return Err(wire_mismatch(Ty::String, &v)),
            _ => {}
        }
    }
    Ok(Quantity(s.to_owned()))
}

/// An `intstr.IntOrString` `{type, intVal, strVal}`.
pub(super) fn int_or_string(v: Value<'_>) -> Result<IntOrString, ProtobufError> {
    let mut r = Reader::new(bytes(v)?);
    let (mut ty, mut int, mut s) = (0u64, 0i32, "");
    while let Some((n, v)) = r.field()? {
        match (n, v) {
            (1, Value::Varint(x)) => ty = x,
            (2, Value::Varint(x)) => int = x as i32,
            (3, Value::Bytes(b)) => s = utf8(b)?,
            (1..=3, v) => return Err(wire_mismatch(Ty::Int64, &v)),
            _ => {}
        }
    }
    Ok(if ty == 1 { IntOrString::String(s.to_owned()) } else { IntOrString::Int(int) })
}

/// A map entry `{1: key, 2: value}`: the key and the value (empty bytes when absent).
pub(super) fn entry(v: Value<'_>) -> Result<(String, Value<'_>), ProtobufError> {
    let mut r = Reader::new(bytes(v)?);
    let (mut key, mut value) = ("", Value::Bytes(&[]));
    while let Some((n, v)) = r.field()? {
        match (n, v) {
            (1, Value::Bytes(b)) => key = utf8(b)?,
            (1, v) => return Err(wire_mismatch(Ty::String, &v)),
            (2, v) => value = v,
            _ => {}
        }
    }
    Ok((key.to_owned(), value))
}

/// The list a repeated field appends to; `fresh` (a new run of field `number`, whose first entry
/// `r` has just read) starts it over, with room for the whole run.
#[inline]
pub(super) fn list<'o, T>(o: &'o mut Option<Vec<T>>, fresh: bool, r: &Reader<'_>, number: u32) -> &'o mut Vec<T> {
    if fresh {
        *o = Some(Vec::with_capacity(1 + r.count_run(number)));
    }
    o.get_or_insert_with(Vec::new)
}

/// [`list`] of a field that is not optional.
#[inline]
pub(super) fn list_required<'o, T>(o: &'o mut Vec<T>, fresh: bool, r: &Reader<'_>, number: u32) -> &'o mut Vec<T> {
    if fresh {
        *o = Vec::with_capacity(1 + r.count_run(number));
    }
    o
}

/// A new default element at the end of `list`, to be filled where it lies.
#[inline]
pub(super) fn push_default<T: Default>(list: &mut Vec<T>) -> &mut T {
    list.push(T::default());
    let last = list.len() - 1;
    &mut list[last]
}

/// The map a map field inserts into; `fresh` (a new run of the field) starts it over.
pub(super) fn map<T>(o: &mut Option<BTreeMap<String, T>>, fresh: bool) -> &mut BTreeMap<String, T> {
    if fresh {
        *o = None;
    }
    o.get_or_insert_with(BTreeMap::new)
}

/// [`map`] of a field that is not optional.
pub(super) fn map_required<T>(o: &mut BTreeMap<String, T>, fresh: bool) -> &mut BTreeMap<String, T> {
    if fresh {
        o.clear();
    }
    o
}

/// One value read by the serde path, as the field's type (an `Option` reads a zero `Time` or
/// empty JSON as `None`, as serde does).
pub(super) fn serde_value<'de, T: Deserialize<'de>>(ty: Ty, v: Value<'de>) -> Result<T, ProtobufError> {
    T::deserialize(ValueDe { ty, v })
}

/// The run of consecutive entries of field `number` that started at `start` (the first already
/// read): the reader moves past it.
pub(super) fn run<'a>(r: &mut Reader<'a>, start: usize, number: u32) -> Result<&'a [u8], ProtobufError> {
    while r.peek_number() == Some(number) {
        r.field()?;
    }
    Ok(&r.buf[start..r.pos])
}

/// A repeated or map field's run read by the serde path, as the field's type.
pub(super) fn serde_run<'de, T: Deserialize<'de>>(
    msg: &'static Message,
    number: u32,
    run: &'de [u8],
) -> Result<T, ProtobufError> {
    let field = msg
        .field(number)
        .ok_or_else(|| ProtobufError::new(ProtobufErrorKind::Decode, format!("{} has no field {number}", msg.name)))?;
    if field.rep == Rep::Map { T::deserialize(MapRun::new(field, run)) } else { T::deserialize(Run::new(field, run)) }
}

/// A list body (magic, envelope, list message) whose items are of a built-in kind and `K` is that
/// kind's struct: the items decoded by the generated functions into a list of exactly their
/// number, the rest (`metadata`, the types) by serde as ever. `None` for anything else (a body
/// that does not parse, a kind that is not a list, `K` another type, items given in more than one
/// run, an item that does not decode), which the serde path then reads, with its errors.
pub(crate) fn object_list<K: serde::de::DeserializeOwned + 'static>(body: &[u8]) -> Option<crate::ObjectList<K>> {
    let env = super::Envelope::parse(body).ok()?;
    if !env.content_encoding.is_empty() || env.content_type.starts_with("application/json") {
        return None;
    }
    let item_kind = env.kind.strip_suffix("List")?;
    let message = super::schema_types::message_of(env.api_version, env.kind)?;
    let items = message.fields.iter().find(|f| f.name == "items" && f.rep == Rep::Repeated)?.number;
    // The list without its items, for serde; and how many items there are.
    let (mut rest, mut count, mut runs, mut last) = (Vec::new(), 0, 0, 0);
    let mut r = Reader::new(env.raw);
    loop {
        let start = r.pos;
        let Some((n, _)) = r.field().ok()? else { break };
        if n == items {
            count += 1;
            runs += usize::from(last != n);
        } else {
            rest.extend_from_slice(&env.raw[start..r.pos]);
        }
        last = n;
    }
    if runs > 1 {
        return None;
    }
    let mut decoded = Vec::with_capacity(count);
    let mut r = Reader::new(env.raw);
    while let Some((n, v)) = r.field().ok()? {
        if n == items {
            decoded.push(decode::<K>(env.api_version, item_kind, bytes(v).ok()?)?.ok()?);
        }
    }
    let mut list: crate::ObjectList<K> = super::Envelope { raw: &rest, ..env }.decode().ok()?;
    list.items = decoded;
    Some(list)
}
