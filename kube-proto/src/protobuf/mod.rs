//! Kubernetes' protobuf wire format, read into (and written from) the same types as JSON.
//!
//! The API server serves every built-in kind as `application/vnd.kubernetes.protobuf`: a body
//! is the magic `k8s\0` followed by a `runtime.Unknown` envelope (`typeMeta` with `apiVersion`
//! and `kind`, the object's message as `raw`, `contentEncoding`, `contentType`). A watch
//! (`;stream=watch`) is a sequence of frames: a 4-byte big-endian length, then a
//! `meta.v1.WatchEvent` whose `object.raw` is itself such an envelope. Custom resources have no
//! protobuf form: ask with [`ACCEPT`] and the server answers them in JSON, which the response and
//! watch decoders still read.
//!
//! Objects are not decoded into generated protobuf structs and then converted: a
//! `serde::Deserializer` walks the protobuf bytes with a table of message descriptors (field
//! numbers, JSON names, types) and feeds the `Deserialize` impls of the JSON types
//! (`k8s_openapi`'s) directly, so users keep their types and no intermediate value is built.
//! The table is generated from the `k8s-pb` crate's field numbers and `k8s-openapi`'s JSON names
//! (`kube-proto/protobuf-gen`), for the messages reachable from the built-in kinds.
//!
//! The built-in kinds themselves skip serde: when the type asked for is the kind's `k8s_openapi`
//! struct ([`from_slice`], [`Envelope::decode_owned`], the watch decoder), generated code (one
//! function per message, a `match` on the field number, times built from seconds directly)
//! fills the struct from the bytes, to the same value the serde path gives, without serde's
//! detour through field names and strings (BENCHMARKS.md has the figures). Any other type (`serde_json::Value`, a `DynamicObject`, your own struct) goes through
//! serde; so does [`Envelope::decode`], which also takes types that borrow from the body.
//!
//! One difference from JSON cannot be undone: Go writes its non-pointer fields to protobuf even
//! when they hold the zero value, where JSON leaves them out (`omitempty`). Empty strings read as
//! absent (the zero value of a Go string, and what `k8s_openapi` defaults a missing string to);
//! a zero number or `false` reads as `Some(0)` / `Some(false)` where JSON would give `None`.
//!
//! ```
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_proto::protobuf;
//!
//! let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
//!                             "metadata": {"name": "a", "resourceVersion": "5"}, "data": {"k": "v"}});
//! let body = protobuf::to_vec(&cm).unwrap();
//! assert!(body.starts_with(b"k8s\0"));
//! let back: ConfigMap = protobuf::from_slice(&body).unwrap();
//! assert_eq!(back.metadata.name.as_deref(), Some("a"));
//! assert_eq!(back.data.unwrap()["k"], "v");
//! ```

mod de;
mod direct;
#[rustfmt::skip]
mod direct_gen;
mod enc;
pub(crate) mod response;
#[rustfmt::skip]
mod schema;
mod schema_types;
mod time;
pub mod watch;
mod wire;

use http::HeaderMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use wire::{Reader, Value};

pub use watch::FrameDecoder;

/// The protobuf media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
/// The media type of a protobuf watch stream.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";
/// The `Accept` header of a request that prefers protobuf and takes JSON (for kinds that have no
/// protobuf form), as client-go sends it.
pub const ACCEPT: &str = "application/vnd.kubernetes.protobuf, application/json";
/// The four bytes every protobuf body starts with.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Why protobuf bytes did not decode (or a value did not encode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protobuf: {message}")]
pub struct ProtobufError {
    /// Which kind of failure.
    pub kind: ProtobufErrorKind,
    /// What was wrong.
    pub message: String,
}

/// The kinds of [`ProtobufError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtobufErrorKind {
    /// The body does not start with `k8s\0`.
    NotProtobuf,
    /// The bytes end inside a value.
    Truncated,
    /// The bytes are not well-formed protobuf (a bad varint, wire type or UTF-8).
    Malformed,
    /// The envelope names a kind the descriptor table does not know.
    UnknownKind,
    /// Well-formed protobuf that does not fit the type asked for.
    Decode,
    /// A value that cannot be written as its message.
    Encode,
}

impl ProtobufError {
    pub(crate) fn new(kind: ProtobufErrorKind, message: impl Into<String>) -> Self {
        ProtobufError { kind, message: message.into() }
    }
}

/// A `runtime.Unknown` envelope, borrowed from the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// `typeMeta.apiVersion`.
    pub api_version: &'a str,
    /// `typeMeta.kind`.
    pub kind: &'a str,
    /// The object's bytes.
    pub raw: &'a [u8],
    /// `contentEncoding` (empty: none).
    pub content_encoding: &'a str,
    /// `contentType` of `raw` (empty: protobuf).
    pub content_type: &'a str,
}

impl<'a> Envelope<'a> {
    /// Reads the magic and the envelope.
    pub fn parse(body: &'a [u8]) -> Result<Self, ProtobufError> {
        let rest = body.strip_prefix(MAGIC.as_slice()).ok_or_else(|| {
            ProtobufError::new(ProtobufErrorKind::NotProtobuf, "the body does not start with the k8s\\0 magic")
        })?;
        let mut env = Envelope { api_version: "", kind: "", raw: &[], content_encoding: "", content_type: "" };
        let mut r = Reader::new(rest);
        let mut has_raw = false;
        while let Some((n, v)) = r.field()? {
            match (n, v) {
                (1, Value::Bytes(tm)) => {
                    let mut t = Reader::new(tm);
                    while let Some((n, v)) = t.field()? {
                        match (n, v) {
                            (1, Value::Bytes(b)) => env.api_version = text(b)?,
                            (2, Value::Bytes(b)) => env.kind = text(b)?,
                            _ => {}
                        }
                    }
                }
                (2, Value::Bytes(b)) => {
                    env.raw = b;
                    has_raw = true;
                }
                (3, Value::Bytes(b)) => env.content_encoding = text(b)?,
                (4, Value::Bytes(b)) => env.content_type = text(b)?,
                (1..=4, _) => {
                    return Err(ProtobufError::new(
                        ProtobufErrorKind::Malformed,
                        "an envelope field has the wrong wire type",
                    ));
                }
                _ => {}
            }
        }
        if !has_raw {
            // Every object writes at least its metadata: an envelope without one was cut short.
            return Err(ProtobufError::new(
                ProtobufErrorKind::Truncated,
                "the envelope holds no object (no raw field)",
            ));
        }
        Ok(env)
    }

    /// The object as `T`, read by the message its `apiVersion` and `kind` name (or as JSON, when
    /// `contentType` says the raw bytes are JSON).
    pub fn decode<T: Deserialize<'a>>(&self) -> Result<T, ProtobufError> {
        if !self.content_encoding.is_empty() {
            return Err(ProtobufError::new(
                ProtobufErrorKind::Decode,
                format!("content encoding {:?} is not supported", self.content_encoding),
            ));
        }
        if self.content_type.starts_with("application/json") {
            return serde_json::from_slice(self.raw)
                .map_err(|e| ProtobufError::new(ProtobufErrorKind::Decode, e.to_string()));
        }
        let msg = self.message()?;
        T::deserialize(de::MessageDe { bytes: self.raw, msg, types: Some((self.api_version, self.kind)) })
    }

    /// The object as `T`, as [`decode`](Self::decode) reads it; when `T` is the `k8s_openapi`
    /// struct of a built-in kind and the envelope holds that kind, the object is decoded straight
    /// into it by generated code (faster, the same value) instead of through serde.
    pub fn decode_owned<T: DeserializeOwned + 'static>(&self) -> Result<T, ProtobufError> {
        if self.content_encoding.is_empty()
            && !self.content_type.starts_with("application/json")
            && let Some(decoded) = direct::decode::<T>(self.api_version, self.kind, self.raw)
        {
            return decoded;
        }
        self.decode()
    }

    fn message(&self) -> Result<&'static schema_types::Message, ProtobufError> {
        schema_types::message_of(self.api_version, self.kind)
            .or_else(|| (self.kind == "Status").then(|| schema_types::message_of("v1", "Status")).flatten())
            .ok_or_else(|| {
                ProtobufError::new(
                    ProtobufErrorKind::UnknownKind,
                    format!("no protobuf message known for {}/{}", self.api_version, self.kind),
                )
            })
    }

    /// Writes an envelope (with the magic) around an object's bytes.
    pub fn encode(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
        let mut tm = Vec::with_capacity(api_version.len() + kind.len() + 4);
        wire::put_bytes(&mut tm, 1, api_version.as_bytes());
        wire::put_bytes(&mut tm, 2, kind.as_bytes());
        let mut out = Vec::with_capacity(raw.len() + tm.len() + 16);
        out.extend_from_slice(MAGIC);
        wire::put_bytes(&mut out, 1, &tm);
        wire::put_bytes(&mut out, 2, raw);
        out
    }
}

fn text(b: &[u8]) -> Result<&str, ProtobufError> {
    std::str::from_utf8(b)
        .map_err(|_| ProtobufError::new(ProtobufErrorKind::Malformed, "an envelope string is not UTF-8"))
}

/// Decodes a protobuf body (magic, envelope, object) as `T` (see [`Envelope::decode_owned`]:
/// the built-in kinds' `k8s_openapi` structs are decoded without serde).
pub fn from_slice<T: DeserializeOwned + 'static>(body: &[u8]) -> Result<T, ProtobufError> {
    Envelope::parse(body)?.decode_owned()
}

/// A list body read by [`direct::object_list`]: `None` when serde has to read it.
pub(crate) fn list<K: DeserializeOwned + 'static>(body: &[u8]) -> Option<crate::ObjectList<K>> {
    direct::object_list(body)
}

/// Whether the descriptor table knows this kind (or list kind): whether a server can send it as
/// protobuf. Custom resources are not known.
pub fn is_known(api_version: &str, kind: &str) -> bool {
    schema_types::message_of(api_version, kind).is_some()
}

/// Encodes an object given as its JSON value (with `apiVersion` and `kind`, which choose the
/// message) as a protobuf body: magic, envelope, object.
pub fn to_vec(value: &serde_json::Value) -> Result<Vec<u8>, ProtobufError> {
    let field = |k: &str| value.get(k).and_then(serde_json::Value::as_str).unwrap_or_default();
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    let env = Envelope { api_version, kind, raw: &[], content_encoding: "", content_type: "" };
    let msg = env.message()?;
    let mut raw = Vec::new();
    enc::message(&mut raw, msg, value)?;
    Ok(Envelope::encode(api_version, kind, &raw))
}

/// Encodes a whole frame of a protobuf watch stream: the 4-byte length, then the
/// `meta.v1.WatchEvent` of `event_type` (`ADDED`, `BOOKMARK`, `ERROR`...) whose object is the
/// envelope of `object` (a JSON value with `apiVersion` and `kind`).
pub fn watch_frame(event_type: &str, object: &serde_json::Value) -> Result<Vec<u8>, ProtobufError> {
    let envelope = to_vec(object)?;
    let mut raw_ext = Vec::with_capacity(envelope.len() + 6);
    wire::put_bytes(&mut raw_ext, 1, &envelope);
    let mut event = Vec::with_capacity(raw_ext.len() + event_type.len() + 12);
    wire::put_bytes(&mut event, 1, event_type.as_bytes());
    wire::put_bytes(&mut event, 2, &raw_ext);
    let len = u32::try_from(event.len())
        .map_err(|_| ProtobufError::new(ProtobufErrorKind::Encode, "a watch event over 4 GiB"))?;
    let mut out = Vec::with_capacity(event.len() + 4);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&event);
    Ok(out)
}

/// Whether a response's `Content-Type` is protobuf (a single object or a watch stream).
pub fn is_protobuf(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().starts_with(MEDIA_TYPE))
}

/// Whether a body is protobuf, by its magic.
pub fn has_magic(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

/// Asks for protobuf in a request built for JSON: an `Accept: application/json` becomes
/// [`ACCEPT`], and the metadata-only forms (`;as=PartialObjectMetadata...`) ask for their
/// protobuf twin first. Other requests (logs, upgrades) are left alone. Use it only for built-in
/// kinds (see [`is_known`]): a custom resource would come back as JSON anyway, one negotiation
/// later.
pub fn negotiate<B>(req: &mut http::Request<B>) {
    let Some(accept) = req.headers().get(http::header::ACCEPT).and_then(|v| v.to_str().ok()) else { return };
    let new = if accept == "application/json" {
        http::HeaderValue::from_static(ACCEPT)
    } else if let Some(params) = accept.strip_prefix("application/json;as=PartialObjectMetadata") {
        match http::HeaderValue::from_str(&format!("{MEDIA_TYPE};as=PartialObjectMetadata{params}, {accept}")) {
            Ok(v) => v,
            Err(_) => return,
        }
    } else {
        return;
    };
    req.headers_mut().insert(http::header::ACCEPT, new);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiate_rewrites_json_accepts_only() {
        let mut req = http::Request::builder().header("accept", "application/json").body(()).unwrap();
        negotiate(&mut req);
        assert_eq!(req.headers()["accept"], ACCEPT);
        let mut req = http::Request::builder().header("accept", crate::request::ACCEPT_METADATA).body(()).unwrap();
        negotiate(&mut req);
        assert_eq!(
            req.headers()["accept"],
            "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, \
             application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
        );
        let mut req = http::Request::builder().header("accept", "*/*").body(()).unwrap();
        negotiate(&mut req);
        assert_eq!(req.headers()["accept"], "*/*");
    }

    #[test]
    fn kinds_are_known() {
        assert!(is_known("v1", "Pod"));
        assert!(is_known("v1", "PodList"));
        assert!(is_known("apps/v1", "Deployment"));
        assert!(!is_known("example.com/v1", "Widget"));
    }

    fn pod(name: &str, containers: usize) -> serde_json::Value {
        let containers: Vec<_> = (0..containers)
            .map(|i| {
                serde_json::json!({"name": format!("c{i}"), "image": "nginx", "args": ["-g", "daemon off;"],
                "ports": [{"containerPort": 80 + i}], "env": [{"name": "A", "value": "1"}]})
            })
            .collect();
        serde_json::json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}, "resourceVersion": "7"},
            "spec": {"containers": containers, "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}})
    }

    fn pod_list(items: Vec<serde_json::Value>) -> Vec<u8> {
        to_vec(&serde_json::json!({"apiVersion": "v1", "kind": "PodList",
            "metadata": {"resourceVersion": "42", "continue": "abc", "remainingItemCount": 7}, "items": items}))
        .unwrap()
    }

    fn serde_list<K: DeserializeOwned>(body: &[u8]) -> crate::ObjectList<K> {
        Envelope::parse(body).unwrap().decode().unwrap()
    }

    #[test]
    fn lists_of_built_in_kinds_have_their_items_decoded_directly() {
        use k8s_openapi::api::core::v1::Pod;
        let body = pod_list(vec![pod("a", 1), pod("b", 3), pod("c", 2)]);
        let list = direct::object_list::<Pod>(&body).expect("read by the generated functions");
        assert_eq!(list, serde_list::<Pod>(&body));
        assert_eq!(list.metadata.continue_token.as_deref(), Some("abc"));
        assert_eq!(list.metadata.remaining_item_count, Some(7));
        assert_eq!(list.types.as_ref().map(|t| t.kind.as_str()), Some("PodList"));
        assert_eq!(list.items.len(), 3);
        assert_eq!(list.items.capacity(), 3, "sized by the count of items");
        assert_eq!(list.items[1].spec.as_ref().unwrap().containers.len(), 3);
        // Through a response, as `Api::list` reads it.
        let headers = HeaderMap::new();
        let response = crate::Response::new(http::StatusCode::OK, &headers, &body);
        assert_eq!(response.list::<Pod>().unwrap(), list);
        // An empty list.
        let empty = pod_list(vec![]);
        assert_eq!(direct::object_list::<Pod>(&empty).unwrap(), serde_list::<Pod>(&empty));
    }

    #[test]
    fn lists_the_generated_functions_do_not_read_go_to_serde_with_the_same_result() {
        use k8s_openapi::api::core::v1::Pod;
        let headers = HeaderMap::new();
        let read = |body: &[u8]| crate::Response::new(http::StatusCode::OK, &headers, body).list::<Pod>();
        // Another item type: serde reads it.
        let body = pod_list(vec![pod("a", 1)]);
        assert!(direct::object_list::<serde_json::Value>(&body).is_none());
        let values = crate::Response::new(http::StatusCode::OK, &headers, &body).list::<serde_json::Value>().unwrap();
        assert_eq!(values.items[0]["metadata"]["name"], "a");
        // Items in two runs: serde's answer (a duplicate field).
        let raw = |v: &serde_json::Value| Envelope::parse(&to_vec(v).unwrap()).unwrap().raw.to_vec();
        let mut split = Vec::new();
        wire::put_bytes(&mut split, 2, &raw(&pod("first", 1)));
        wire::put_bytes(&mut split, 1, &[0x12, 2, b'4', b'2']);
        wire::put_bytes(&mut split, 2, &raw(&pod("second", 1)));
        let body = Envelope::encode("v1", "PodList", &split);
        assert!(direct::object_list::<Pod>(&body).is_none());
        let serde = Envelope::parse(&body).unwrap().decode::<crate::ObjectList<Pod>>().unwrap_err();
        assert!(read(&body).unwrap_err().to_string().contains(&serde.to_string()), "{serde}");
        // Not a list, or cut short: serde's answer, and its error.
        let one = to_vec(&pod("a", 1)).unwrap();
        assert!(direct::object_list::<Pod>(&one).is_none());
        let body = pod_list(vec![pod("a", 1), pod("b", 1)]);
        let cut = &body[..body.len() - 10];
        assert!(direct::object_list::<Pod>(cut).is_none());
        assert!(read(cut).is_err());
    }

    #[test]
    fn not_protobuf_is_typed() {
        let e = from_slice::<serde_json::Value>(b"{}").unwrap_err();
        assert_eq!(e.kind, ProtobufErrorKind::NotProtobuf);
    }
}
