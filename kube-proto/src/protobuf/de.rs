//! A `serde::Deserializer` over protobuf bytes that presents a message as its JSON form, driven
//! by the descriptor table: the types users decode JSON into (`k8s_openapi`'s) read protobuf
//! with their own `Deserialize` impls, with no intermediate tree.
//!
//! What JSON spells differently is translated on the way: `Time` and `MicroTime` become RFC 3339
//! strings, `Quantity` its string, `IntOrString` a number or a string, `FieldsV1` and
//! `RawExtension` the JSON they hold, bytes base64, maps objects, inlined Go structs their
//! parent's fields. An empty string in a singular field reads as absent: Go writes its value
//! fields to protobuf even when empty, where JSON omits them (`omitempty`).
//!
//! Repeated fields are read as one run of consecutive entries, as every Kubernetes encoder
//! writes them; entries of one field split by other fields read as a duplicate field (an error).

use std::fmt;

use base64::Engine as _;
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::schema_types::{Field, Message, Rep, Special, Ty};
use super::wire::{Reader, Value};
use super::{ProtobufError, ProtobufErrorKind};

impl de::Error for ProtobufError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ProtobufError::new(ProtobufErrorKind::Decode, msg.to_string())
    }
}

pub(super) fn wire_mismatch(ty: Ty, v: &Value<'_>) -> ProtobufError {
    let found = match v {
        Value::Varint(_) => "a varint",
        Value::Fixed64(_) => "a fixed64",
        Value::Bytes(_) => "length-delimited bytes",
        Value::Fixed32 => "a fixed32",
    };
    ProtobufError::new(ProtobufErrorKind::Malformed, format!("expected {ty:?}, found {found} on the wire"))
}

/// The deepest nesting of inlined Go structs (Kubernetes uses two).
const MAX_INLINE: usize = 4;

/// A message's bytes, read as its JSON form; at the top, `apiVersion` and `kind` (which the
/// envelope carries, not the message) are added.
pub(crate) struct MessageDe<'de> {
    pub bytes: &'de [u8],
    pub msg: &'static Message,
    pub types: Option<(&'de str, &'de str)>,
}

impl<'de> MessageDe<'de> {
    pub(crate) fn new(bytes: &'de [u8], msg: &'static Message) -> Self {
        MessageDe { bytes, msg, types: None }
    }

    /// Whether its JSON form is `null` (a zero `Time`, an empty `RawExtension`).
    fn is_null(&self) -> Result<bool, ProtobufError> {
        Ok(match self.msg.special {
            Special::Time | Special::MicroTime => seconds_nanos(self.bytes)? == (0, 0),
            Special::RawJson => raw_field(self.bytes)?.is_empty(),
            _ => false,
        })
    }
}

/// The message a field of a special message points to.
fn sub(msg: &'static Message, number: u32) -> Result<&'static Message, ProtobufError> {
    match msg.field(number).map(|f| f.ty) {
        Some(Ty::Message(m)) => Ok(m),
        _ => Err(ProtobufError::new(ProtobufErrorKind::Decode, format!("{} has no message field {number}", msg.name))),
    }
}

pub(super) fn seconds_nanos(bytes: &[u8]) -> Result<(i64, i32), ProtobufError> {
    let (mut s, mut n) = (0i64, 0i32);
    let mut r = Reader::new(bytes);
    while let Some((num, v)) = r.field()? {
        match (num, v) {
            (1, Value::Varint(x)) => s = x as i64,
            (2, Value::Varint(x)) => n = x as i32,
            (1 | 2, v) => return Err(wire_mismatch(Ty::Int64, &v)),
            _ => {}
        }
    }
    Ok((s, n))
}

/// Field 1 of a message as bytes (empty when absent).
fn raw_field(bytes: &[u8]) -> Result<&[u8], ProtobufError> {
    let mut r = Reader::new(bytes);
    let mut raw: &[u8] = &[];
    while let Some((num, v)) = r.field()? {
        match (num, v) {
            (1, Value::Bytes(b)) => raw = b,
            (1, v) => return Err(wire_mismatch(Ty::Bytes, &v)),
            _ => {}
        }
    }
    Ok(raw)
}

pub(super) fn utf8(b: &[u8]) -> Result<&str, ProtobufError> {
    std::str::from_utf8(b).map_err(|e| {
        ProtobufError::new(ProtobufErrorKind::Malformed, format!("a string is not UTF-8 (at byte {})", e.valid_up_to()))
    })
}

fn json_error(e: serde_json::Error) -> ProtobufError {
    ProtobufError::new(ProtobufErrorKind::Decode, format!("embedded JSON: {e}"))
}

impl<'de> de::Deserializer<'de> for MessageDe<'de> {
    type Error = ProtobufError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProtobufError> {
        let bytes = self.bytes;
        match self.msg.special {
            Special::None => v.visit_map(Fields::new(bytes, self.msg, self.types)),
            Special::Time | Special::MicroTime => {
                let (s, n) = seconds_nanos(bytes)?;
                if (s, n) == (0, 0) {
                    v.visit_unit()
                } else {
                    v.visit_string(super::time::rfc3339(s, n, self.msg.special == Special::MicroTime))
                }
            }
            Special::Quantity => {
                let mut r = Reader::new(bytes);
                let mut s = "";
                while let Some((num, val)) = r.field()? {
                    match (num, val) {
                        (1, Value::Bytes(b)) => s = utf8(b)?,
                        (1, val) => return Err(wire_mismatch(Ty::String, &val)),
                        _ => {}
                    }
                }
                v.visit_borrowed_str(s)
            }
            Special::IntOrString => {
                let mut r = Reader::new(bytes);
                let (mut ty, mut int, mut s) = (0u64, 0i64, "");
                while let Some((num, val)) = r.field()? {
                    match (num, val) {
                        (1, Value::Varint(x)) => ty = x,
                        (2, Value::Varint(x)) => int = i64::from(x as i32),
                        (3, Value::Bytes(b)) => s = utf8(b)?,
                        (1..=3, val) => return Err(wire_mismatch(Ty::Int64, &val)),
                        _ => {}
                    }
                }
                if ty == 1 { v.visit_borrowed_str(s) } else { v.visit_i64(int) }
            }
            Special::RawJson => {
                let raw = raw_field(bytes)?;
                if raw.is_empty() {
                    return v.visit_unit();
                }
                let mut de = serde_json::Deserializer::from_slice(raw);
                let value = de::Deserializer::deserialize_any(&mut de, v).map_err(json_error)?;
                de.end().map_err(json_error)?;
                Ok(value)
            }
            Special::SchemaOrArray | Special::SchemaOrStringArray => {
                let mut r = Reader::new(bytes);
                while let Some((num, val)) = r.field()? {
                    if let (1, Value::Bytes(b)) = (num, val) {
                        return MessageDe::new(b, sub(self.msg, 1)?).deserialize_any(v);
                    }
                }
                let field = self.msg.field(2).ok_or_else(|| de::Error::custom("no field 2"))?;
                v.visit_seq(Run::new(field, bytes))
            }
            Special::SchemaOrBool => {
                let mut r = Reader::new(bytes);
                let mut allows = false;
                while let Some((num, val)) = r.field()? {
                    match (num, val) {
                        (2, Value::Bytes(b)) => return MessageDe::new(b, sub(self.msg, 2)?).deserialize_any(v),
                        (1, Value::Varint(x)) => allows = x != 0,
                        _ => {}
                    }
                }
                v.visit_bool(allows)
            }
            Special::Items => {
                let field = self.msg.field(1).ok_or_else(|| de::Error::custom("no field 1"))?;
                v.visit_seq(Run::new(field, bytes))
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProtobufError> {
        if self.is_null()? { v.visit_none() } else { v.visit_some(self) }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Result<V::Value, ProtobufError> {
        v.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

/// One value of a field.
pub(super) struct ValueDe<'de> {
    pub ty: Ty,
    pub v: Value<'de>,
}

impl<'de> de::Deserializer<'de> for ValueDe<'de> {
    type Error = ProtobufError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProtobufError> {
        match (self.ty, self.v) {
            (Ty::String, Value::Bytes(b)) => v.visit_borrowed_str(utf8(b)?),
            (Ty::Bytes, Value::Bytes(b)) => v.visit_string(base64::engine::general_purpose::STANDARD.encode(b)),
            (Ty::Bool, Value::Varint(x)) => v.visit_bool(x != 0),
            (Ty::Int32, Value::Varint(x)) => v.visit_i64(i64::from(x as i32)),
            (Ty::Int64, Value::Varint(x)) => v.visit_i64(x as i64),
            (Ty::Double, Value::Fixed64(x)) => v.visit_f64(f64::from_bits(x)),
            (Ty::Message(m), Value::Bytes(b)) => MessageDe::new(b, m).deserialize_any(v),
            (ty, val) => Err(wire_mismatch(ty, &val)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProtobufError> {
        match (self.ty, self.v) {
            (Ty::Message(m), Value::Bytes(b)) => MessageDe::new(b, m).deserialize_option(v),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, v: V) -> Result<V::Value, ProtobufError> {
        v.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[derive(Clone, Copy)]
struct Frame<'de> {
    r: Reader<'de>,
    msg: &'static Message,
}

enum Pending<'de> {
    None,
    Str(&'de str),
    Value(Ty, Value<'de>),
    Run(&'static Field, &'de [u8]),
}

/// A message's fields as a JSON object's entries.
struct Fields<'de> {
    frames: [Frame<'de>; MAX_INLINE],
    depth: usize,
    types: Option<(&'de str, &'de str)>,
    types_sent: u8,
    pending: Pending<'de>,
}

impl<'de> Fields<'de> {
    fn new(bytes: &'de [u8], msg: &'static Message, types: Option<(&'de str, &'de str)>) -> Self {
        let top = Frame { r: Reader::new(bytes), msg };
        Fields { frames: [top; MAX_INLINE], depth: 0, types, types_sent: 0, pending: Pending::None }
    }
}

impl<'de> MapAccess<'de> for Fields<'de> {
    type Error = ProtobufError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, ProtobufError> {
        if let Some((api_version, kind)) = self.types {
            match self.types_sent {
                0 if !api_version.is_empty() => {
                    self.types_sent = 1;
                    self.pending = Pending::Str(api_version);
                    return seed.deserialize(BorrowedStrDeserializer::new("apiVersion")).map(Some);
                }
                0 | 1 if !kind.is_empty() => {
                    self.types_sent = 2;
                    self.pending = Pending::Str(kind);
                    return seed.deserialize(BorrowedStrDeserializer::new("kind")).map(Some);
                }
                _ => self.types_sent = 2,
            }
        }
        loop {
            let frame = &mut self.frames[self.depth];
            let start = frame.r.pos;
            let Some((number, value)) = frame.r.field()? else {
                if self.depth == 0 {
                    return Ok(None);
                }
                self.depth -= 1;
                continue;
            };
            let Some(field) = frame.msg.field(number) else { continue };
            match field.rep {
                Rep::Inline => {
                    let (Ty::Message(m), Value::Bytes(b)) = (field.ty, value) else {
                        return Err(wire_mismatch(field.ty, &value));
                    };
                    if self.depth + 1 >= MAX_INLINE {
                        return Err(ProtobufError::new(ProtobufErrorKind::Malformed, "inlined messages nest too deep"));
                    }
                    self.depth += 1;
                    self.frames[self.depth] = Frame { r: Reader::new(b), msg: m };
                    continue;
                }
                Rep::Single => {
                    if let (Ty::String | Ty::Bytes, Value::Bytes([])) = (field.ty, value) {
                        continue;
                    }
                    self.pending = Pending::Value(field.ty, value);
                }
                Rep::Repeated | Rep::Map => {
                    while frame.r.peek_number() == Some(number) {
                        frame.r.field()?;
                    }
                    self.pending = Pending::Run(field, &frame.r.buf[start..frame.r.pos]);
                }
            }
            return seed.deserialize(BorrowedStrDeserializer::new(field.name)).map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ProtobufError> {
        match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::None => Err(de::Error::custom("a value asked for before its key")),
            Pending::Str(s) => seed.deserialize(BorrowedStrDeserializer::new(s)),
            Pending::Value(ty, v) => seed.deserialize(ValueDe { ty, v }),
            Pending::Run(field, bytes) if field.rep == Rep::Map => seed.deserialize(MapRun::new(field, bytes)),
            Pending::Run(field, bytes) => seed.deserialize(Run::new(field, bytes)),
        }
    }
}

/// The values of a repeated field (others in the bytes are skipped), as a JSON array; packed
/// scalars are read too.
pub(super) struct Run<'de> {
    field: &'static Field,
    r: Reader<'de>,
    packed: Option<Reader<'de>>,
}

impl<'de> Run<'de> {
    pub(super) fn new(field: &'static Field, bytes: &'de [u8]) -> Self {
        Run { field, r: Reader::new(bytes), packed: None }
    }
}

impl<'de> de::Deserializer<'de> for Run<'de> {
    type Error = ProtobufError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProtobufError> {
        v.visit_seq(self)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProtobufError> {
        v.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> SeqAccess<'de> for Run<'de> {
    type Error = ProtobufError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, ProtobufError> {
        let ty = self.field.ty;
        loop {
            if let Some(p) = self.packed.as_mut() {
                if !p.is_empty() {
                    let v = match ty {
                        Ty::Double => {
                            let end = p.pos.checked_add(8).filter(|&e| e <= p.buf.len()).ok_or_else(|| {
                                ProtobufError::new(ProtobufErrorKind::Truncated, "packed doubles end early")
                            })?;
                            let x = u64::from_le_bytes(p.buf[p.pos..end].try_into().expect("8 bytes"));
                            p.pos = end;
                            Value::Fixed64(x)
                        }
                        _ => Value::Varint(p.varint()?),
                    };
                    return seed.deserialize(ValueDe { ty, v }).map(Some);
                }
                self.packed = None;
            }
            let Some((number, v)) = self.r.field()? else { return Ok(None) };
            if number != self.field.number {
                continue;
            }
            match (ty, v) {
                (Ty::Bool | Ty::Int32 | Ty::Int64 | Ty::Double, Value::Bytes(b)) => {
                    self.packed = Some(Reader::new(b));
                }
                _ => return seed.deserialize(ValueDe { ty, v }).map(Some),
            }
        }
    }
}

/// The entries of a map field, as a JSON object.
pub(super) struct MapRun<'de> {
    field: &'static Field,
    r: Reader<'de>,
    value: Option<Value<'de>>,
}

impl<'de> MapRun<'de> {
    pub(super) fn new(field: &'static Field, bytes: &'de [u8]) -> Self {
        MapRun { field, r: Reader::new(bytes), value: None }
    }
}

impl<'de> de::Deserializer<'de> for MapRun<'de> {
    type Error = ProtobufError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProtobufError> {
        v.visit_map(self)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, ProtobufError> {
        v.visit_some(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de> MapAccess<'de> for MapRun<'de> {
    type Error = ProtobufError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, ProtobufError> {
        loop {
            let Some((number, v)) = self.r.field()? else { return Ok(None) };
            if number != self.field.number {
                continue;
            }
            let Value::Bytes(entry) = v else { return Err(wire_mismatch(Ty::Bytes, &v)) };
            let mut e = Reader::new(entry);
            let (mut key, mut value) = ("", None);
            while let Some((n, v)) = e.field()? {
                match (n, v) {
                    (1, Value::Bytes(b)) => key = utf8(b)?,
                    (1, v) => return Err(wire_mismatch(Ty::String, &v)),
                    (2, v) => value = Some(v),
                    _ => {}
                }
            }
            self.value = Some(value.unwrap_or(match self.field.ty {
                Ty::Double => Value::Fixed64(0),
                Ty::Bool | Ty::Int32 | Ty::Int64 => Value::Varint(0),
                _ => Value::Bytes(&[]),
            }));
            return seed.deserialize(BorrowedStrDeserializer::new(key)).map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, ProtobufError> {
        let v = self.value.take().ok_or_else(|| de::Error::custom("a map value asked for before its key"))?;
        seed.deserialize(ValueDe { ty: self.field.ty, v })
    }
}
