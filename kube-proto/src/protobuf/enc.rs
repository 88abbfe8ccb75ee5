//! JSON values to protobuf by the same descriptor table: what a server (the fake API server)
//! needs to answer in protobuf. Fields are written in number order, repeated scalars unpacked and
//! map entries in key order, as Kubernetes writes them; JSON keys the message does not have (such
//! as `apiVersion` and `kind`, which go in the envelope) are left out.

use base64::Engine as _;
use serde_json::Value;

use super::schema_types::{Message, Rep, Special, Ty};
use super::wire::{put_bytes, put_tag, put_varint};
use super::{ProtobufError, ProtobufErrorKind};

fn bad(msg: &Message, what: impl std::fmt::Display) -> ProtobufError {
    ProtobufError::new(ProtobufErrorKind::Encode, format!("{}: {what}", msg.name))
}

/// Writes `value` (the JSON form of `msg`) as the message's bytes.
pub(crate) fn message(out: &mut Vec<u8>, msg: &'static Message, value: &Value) -> Result<(), ProtobufError> {
    match msg.special {
        Special::None => {
            let Value::Object(map) = value else { return Err(bad(msg, format!("expected an object, found {value}"))) };
            for field in msg.fields {
                if field.rep == Rep::Inline {
                    let Ty::Message(m) = field.ty else { return Err(bad(msg, "an inlined field is not a message")) };
                    let mut sub = Vec::new();
                    message(&mut sub, m, value)?;
                    put_bytes(out, field.number, &sub);
                    continue;
                }
                let Some(v) = map.get(field.name) else { continue };
                if v.is_null() {
                    continue;
                }
                match field.rep {
                    Rep::Single | Rep::Inline => scalar(out, msg, field.number, field.ty, v)?,
                    Rep::Repeated => {
                        let Value::Array(items) = v else {
                            return Err(bad(msg, format!("{} is not an array", field.name)));
                        };
                        for item in items {
                            scalar(out, msg, field.number, field.ty, item)?;
                        }
                    }
                    Rep::Map => {
                        let Value::Object(entries) = v else {
                            return Err(bad(msg, format!("{} is not an object", field.name)));
                        };
                        let mut keys: Vec<&String> = entries.keys().collect();
                        keys.sort();
                        for key in keys {
                            let mut entry = Vec::new();
                            put_bytes(&mut entry, 1, key.as_bytes());
                            if !entries[key].is_null() {
                                scalar(&mut entry, msg, 2, field.ty, &entries[key])?;
                            }
                            put_bytes(out, field.number, &entry);
                        }
                    }
                }
            }
            Ok(())
        }
        Special::Time | Special::MicroTime => {
            let s = value.as_str().ok_or_else(|| bad(msg, "a time is not a string"))?;
            let (seconds, nanos) =
                super::time::parse_rfc3339(s).ok_or_else(|| bad(msg, format!("{s:?} is not an RFC 3339 time")))?;
            put_tag(out, 1, 0);
            put_varint(out, seconds as u64);
            if nanos != 0 {
                put_tag(out, 2, 0);
                put_varint(out, i64::from(nanos) as u64);
            }
            Ok(())
        }
        Special::Quantity => {
            let s = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(bad(msg, "a quantity is not a string")),
            };
            put_bytes(out, 1, s.as_bytes());
            Ok(())
        }
        Special::IntOrString => {
            match value {
                Value::String(s) => {
                    put_tag(out, 1, 0);
                    put_varint(out, 1);
                    put_bytes(out, 3, s.as_bytes());
                }
                Value::Number(n) => {
                    let i = n.as_i64().and_then(|i| i32::try_from(i).ok()).ok_or_else(|| bad(msg, "not an int32"))?;
                    put_tag(out, 1, 0);
                    put_varint(out, 0);
                    put_tag(out, 2, 0);
                    put_varint(out, i64::from(i) as u64);
                }
                _ => return Err(bad(msg, "neither a number nor a string")),
            }
            Ok(())
        }
        Special::RawJson => {
            let raw = serde_json::to_vec(value).map_err(|e| bad(msg, e))?;
            put_bytes(out, 1, &raw);
            Ok(())
        }
        Special::SchemaOrArray | Special::SchemaOrStringArray => {
            let (schema, items) = (msg.field(1), msg.field(2));
            match (value, schema, items) {
                (Value::Array(a), _, Some(f)) => {
                    for item in a {
                        scalar(out, msg, 2, f.ty, item)?;
                    }
                }
                (v, Some(f), _) => scalar(out, msg, 1, f.ty, v)?,
                _ => return Err(bad(msg, "no field for this value")),
            }
            Ok(())
        }
        Special::SchemaOrBool => {
            match value {
                Value::Bool(b) => {
                    put_tag(out, 1, 0);
                    put_varint(out, u64::from(*b));
                }
                v => {
                    let f = msg.field(2).ok_or_else(|| bad(msg, "no schema field"))?;
                    put_tag(out, 1, 0);
                    put_varint(out, 1);
                    scalar(out, msg, 2, f.ty, v)?;
                }
            }
            Ok(())
        }
        Special::Items => {
            let Value::Array(items) = value else { return Err(bad(msg, "not an array")) };
            for item in items {
                scalar(out, msg, 1, Ty::String, item)?;
            }
            Ok(())
        }
    }
}

/// One value of a field.
fn scalar(out: &mut Vec<u8>, msg: &Message, number: u32, ty: Ty, v: &Value) -> Result<(), ProtobufError> {
    let mismatch = || bad(msg, format!("field {number}: {v} is not a {ty:?}"));
    match ty {
        Ty::String => put_bytes(out, number, v.as_str().ok_or_else(mismatch)?.as_bytes()),
        Ty::Bytes => {
            let s = v.as_str().ok_or_else(mismatch)?;
            let b = base64::engine::general_purpose::STANDARD.decode(s).map_err(|_| mismatch())?;
            put_bytes(out, number, &b);
        }
        Ty::Bool => {
            put_tag(out, number, 0);
            put_varint(out, u64::from(v.as_bool().ok_or_else(mismatch)?));
        }
        Ty::Int32 | Ty::Int64 => {
            let i = v
                .as_i64()
                .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
                .ok_or_else(mismatch)?;
            put_tag(out, number, 0);
            put_varint(out, i as u64);
        }
        Ty::Double => {
            put_tag(out, number, 1);
            out.extend_from_slice(&v.as_f64().ok_or_else(mismatch)?.to_bits().to_le_bytes());
        }
        Ty::Message(m) => {
            let mut sub = Vec::new();
            message(&mut sub, m, v)?;
            put_bytes(out, number, &sub);
        }
    }
    Ok(())
}
