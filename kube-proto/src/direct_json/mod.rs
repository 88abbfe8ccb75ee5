//! JSON read straight into the `k8s_openapi` structs of the built-in kinds, without serde's
//! intermediate steps: generated functions (the private module `generated`) that match each key
//! of an object to its field and fill the field where it lies (a nested struct inside its
//! `Option`, a list's element at the end of the list, every list then exactly as long as it
//! needs to be, as [`compact`](crate::compact) makes them).
//!
//! The rule is that the result is always exactly what `serde_json` with the types' own
//! `Deserialize` gives. The decoders take the common shapes of JSON and give up on anything
//! else (a key given twice, a value of an unexpected type, an escaped key, a lone surrogate,
//! text that is not JSON, nesting deeper than 100), and the caller then decodes the same text
//! with `serde_json`, so that its values and its errors, byte for byte, stay serde's. Free-form
//! JSON (`serde_json::Value`, as in `FieldsV1`, the managed fields' trees) is read directly too,
//! but for its numbers. Other types that are not plain structs (enums, `ByteString`, floats, a
//! `Condition` whose time is required) are read by `serde_json` from their value's text alone.
//!
//! [`refill`] decodes over an object held before, reusing its allocations: the watcher does it
//! with the objects a store hands back (`Watcher::recycle`), which makes keeping every object
//! cost little more than decoding it.
//!
//! Generic code reaches them through the type's `TypeId`: [`from_str`] and the watch decoder use
//! them only when the caller's type is one of the built-in kinds' structs; any other type goes
//! through serde.
//!
//! ```
//! use k8s_openapi::api::core::v1::ConfigMap;
//!
//! let text = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a"},"data":{"k":"v\n"}}"#;
//! let direct: ConfigMap = kube_proto::direct_json::from_str(text).unwrap();
//! assert_eq!(direct, serde_json::from_str::<ConfigMap>(text).unwrap());
//! assert!(kube_proto::direct_json::supports::<ConfigMap>());
//! ```

mod fill;
#[rustfmt::skip]
mod generated;
mod parser;

use std::any::TypeId;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;

use crate::response::ObjectList;
use crate::watch::WatchEvent;
use fill::Direct;
use parser::Parser;

/// The decoder of the kind whose struct has this `TypeId`.
fn decoder(id: TypeId) -> Option<Direct> {
    // Sorted by `TypeId` on first use; in place, so that it takes no heap.
    static TABLE: OnceLock<[(TypeId, Direct); generated::KINDS.len()]> = OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = generated::KINDS.map(|(id, f)| (id(), f));
        t.sort_unstable_by_key(|(id, _)| *id);
        t
    });
    table.binary_search_by_key(&id, |(id, _)| *id).ok().map(|i| table[i].1)
}

/// Whether `T` is the struct of a built-in kind that is read directly.
pub fn supports<T: 'static>() -> bool {
    decoder(TypeId::of::<T>()).is_some()
}

/// `text` (one object and nothing else) read directly as `T`, or `None` when `T` is not a
/// built-in kind's struct or the text is of a shape the direct decoder leaves to serde (which
/// [`from_str`] then uses).
pub fn direct<T: 'static>(text: &str) -> Option<T> {
    let decode = decoder(TypeId::of::<T>())?;
    let mut p = Parser::new(text);
    let mut slot: Option<T> = None;
    decode(&mut p, &mut slot).ok()?;
    p.end().ok()?;
    slot
}

/// `text` (one object and nothing else) read directly over `old`, an object of the same type
/// held before: the result equals what [`direct`] gives for the text, and `old`'s strings, lists
/// and nested structs are written over rather than freed and allocated again. A string keeps its
/// buffer only when that is at most a few bytes longer than the new text, and every list is
/// exactly as long as it needs to be, so a refilled object takes no more memory than a new one
/// beyond that slack. `None` (and `old` lost) when `T` is not a built-in kind's struct or the
/// text is of a shape left to serde.
///
/// A store that lets go of the object an event replaces can hand it back here for the next
/// event: the watcher does, through [`Watcher::recycle`](crate::watcher::Watcher::recycle).
///
/// ```
/// use k8s_openapi::api::core::v1::ConfigMap;
///
/// let a = r#"{"metadata":{"name":"a","labels":{"x":"1"}},"data":{"k":"v"}}"#;
/// let b = r#"{"metadata":{"name":"b"},"binaryData":{}}"#;
/// let old: ConfigMap = kube_proto::direct_json::from_str(a).unwrap();
/// let new = kube_proto::direct_json::refill(b, old).unwrap();
/// assert_eq!(new, serde_json::from_str::<ConfigMap>(b).unwrap());
/// ```
pub fn refill<T: 'static>(text: &str, old: T) -> Option<T> {
    let decode = decoder(TypeId::of::<T>())?;
    let mut p = Parser::refilling(text);
    let mut slot = Some(old);
    decode(&mut p, &mut slot).ok()?;
    p.end().ok()?;
    slot
}

/// Decodes `text` as `T` with exactly the result of `serde_json::from_str`: directly when `T` is
/// a built-in kind's struct and the text is of a usual shape, through `serde_json` otherwise.
pub fn from_str<T: DeserializeOwned + 'static>(text: &str) -> serde_json::Result<T> {
    match direct(text) {
        Some(v) => Ok(v),
        None => serde_json::from_str(text),
    }
}

/// A watch line `{"type":"ADDED"|"MODIFIED"|"DELETED","object":{...}}` (those keys, in that
/// order, as the API server writes them) whose object is read directly; `None` for any other
/// line, which the caller then decodes through serde.
///
/// With an object in `spare` (one nobody holds any more), the event's object is decoded over it,
/// reusing its allocations (see [`refill`]). The spare is used up by an event of that shape,
/// even one whose object then goes to serde; any other line (a bookmark, an error) leaves it.
pub(crate) fn watch_event<K: 'static>(text: &str, spare: &mut Option<K>) -> Option<WatchEvent<K>> {
    let decode = decoder(TypeId::of::<K>())?;
    let mut p = if spare.is_some() { Parser::refilling(text) } else { Parser::new(text) };
    if p.object().ok()? != Some("type") {
        return None;
    }
    let event: fn(K) -> WatchEvent<K> = p
        .str_with(|s| match s {
            "ADDED" => Some(WatchEvent::Added as fn(K) -> WatchEvent<K>),
            "MODIFIED" => Some(WatchEvent::Modified as fn(K) -> WatchEvent<K>),
            "DELETED" => Some(WatchEvent::Deleted as fn(K) -> WatchEvent<K>),
            _ => None,
        })
        .ok()??;
    if p.next_key().ok()? != Some("object") {
        return None;
    }
    // Decoded where it lies: taken into a local first, when only now known to be wanted, the
    // recycling reflector benchmark measured a fifth slower. A bookmark, an error or a line of
    // another shape has left it for the next event.
    let read = decode(&mut p, spare).is_ok() && matches!(p.next_key(), Ok(None)) && p.end().is_ok();
    if !read {
        // Serde's to read; what was written over is let go.
        *spare = None;
        return None;
    }
    spare.take().map(event)
}

/// A list (`{"apiVersion":..,"kind":..,"metadata":{..},"items":[..]}`) whose items are read
/// directly; `None` when `K` has no direct decoder or the text is of a shape left to serde.
/// Everything but the items is read by serde from the text with `"items":[]` in their place, so
/// that the list's own fields are exactly serde's.
pub(crate) fn list<K: DeserializeOwned + 'static>(text: &str) -> Option<ObjectList<K>> {
    let decode = decoder(TypeId::of::<K>())?;
    let mut p = Parser::new(text);
    let mut items: Option<(usize, usize, Vec<K>)> = None;
    let mut key = p.object().ok()?;
    while let Some(k) = key {
        if k == "items" {
            // Given twice is serde's error (a duplicate field).
            if items.is_some() {
                return None;
            }
            let start = p.value_start().ok()?;
            let mut v = Vec::new();
            if p.array().ok()? {
                loop {
                    let mut slot: Option<K> = None;
                    decode(&mut p, &mut slot).ok()?;
                    v.push(slot?);
                    if !p.array_next().ok()? {
                        break;
                    }
                }
            }
            v.shrink_to_fit();
            items = Some((start, p.pos(), v));
        } else {
            p.skip().ok()?;
        }
        key = p.next_key().ok()?;
    }
    p.end().ok()?;
    let (start, end, v) = items?;
    let rest = format!("{}[]{}", &text[..start], &text[end..]);
    let mut list: ObjectList<K> = serde_json::from_str(&rest).ok()?;
    list.items = v;
    Some(list)
}
