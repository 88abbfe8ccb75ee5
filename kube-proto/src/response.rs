//! Responses parsed into typed values: an object, a list, a delete outcome, text, or a typed
//! [`ResponseError`].
//!
//! ```
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_proto::{Reason, Response};
//!
//! let body = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"configmaps \"x\" not found",
//!                 "reason":"NotFound","details":{"name":"x","kind":"configmaps"},"code":404}"#;
//! let err = Response::new(http::StatusCode::NOT_FOUND, &http::HeaderMap::new(), body)
//!     .object::<ConfigMap>()
//!     .unwrap_err();
//! assert_eq!(err.reason(), Some(&Reason::NotFound));
//! assert!(err.is_not_found());
//! ```

use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ResponseError, Status};
use crate::resource::TypeMeta;

/// `metadata` of a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMeta {
    /// The resourceVersion the list was read at: watch from here.
    #[serde(rename = "resourceVersion", default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// The token of the next page, when there is one.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
    /// How many items remain after this page (absent with selectors, or on the last page).
    #[serde(rename = "remainingItemCount", default, skip_serializing_if = "Option::is_none")]
    pub remaining_item_count: Option<i64>,
}

/// A list of objects, such as a `PodList`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "K: Deserialize<'de>", serialize = "K: Serialize"))]
pub struct ObjectList<K> {
    /// `apiVersion` and `kind` of the list.
    #[serde(flatten, default)]
    pub types: Option<TypeMeta>,
    /// resourceVersion, continue token and remainingItemCount.
    #[serde(default)]
    pub metadata: ListMeta,
    /// The items (a `null` list reads as empty).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub items: Vec<K>,
}

/// A list field that the server may send as `null`, read as empty.
pub(crate) fn null_as_empty<'de, D, K>(d: D) -> Result<Vec<K>, D::Error>
where
    D: serde::Deserializer<'de>,
    K: Deserialize<'de>,
{
    Ok(Option::<Vec<K>>::deserialize(d)?.unwrap_or_default())
}

impl<K> ObjectList<K> {
    /// The continue token of the next page, if any.
    pub fn continue_token(&self) -> Option<&str> {
        self.metadata.continue_token.as_deref().filter(|t| !t.is_empty())
    }
    /// The resourceVersion the list was read at.
    pub fn resource_version(&self) -> Option<&str> {
        self.metadata.resource_version.as_deref()
    }
    /// Iterates over the items.
    pub fn iter(&self) -> std::slice::Iter<'_, K> {
        self.items.iter()
    }
}

impl<K> IntoIterator for ObjectList<K> {
    type Item = K;
    type IntoIter = std::vec::IntoIter<K>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a, K> IntoIterator for &'a ObjectList<K> {
    type Item = &'a K;
    type IntoIter = std::slice::Iter<'a, K>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// What a DELETE answered: the object while its deletion is pending (finalizers, foreground
/// propagation, graceful pod deletion), or a `Status` when it went at once.
#[derive(Debug, Clone, PartialEq)]
// `K` is an object, usually larger than a `Status`: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum DeleteResponse<K> {
    /// The object, with `metadata.deletionTimestamp` set.
    Object(K),
    /// `Status` `Success`: the object is gone.
    Status(Status),
}

impl<K> DeleteResponse<K> {
    /// The object, if the server answered with it.
    pub fn object(self) -> Option<K> {
        match self {
            DeleteResponse::Object(k) => Some(k),
            DeleteResponse::Status(_) => None,
        }
    }
    /// Whether the server answered with a `Status`.
    pub fn is_status(&self) -> bool {
        matches!(self, DeleteResponse::Status(_))
    }
}

/// A response, as status, headers and the whole body, ready to be read as what was asked for.
#[derive(Debug, Clone, Copy)]
pub struct Response<'a> {
    /// The HTTP status.
    pub status: StatusCode,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The whole body.
    pub body: &'a [u8],
}

impl<'a> Response<'a> {
    /// A response from its parts.
    pub fn new(status: StatusCode, headers: &'a HeaderMap, body: &'a [u8]) -> Self {
        Response { status, headers, body }
    }

    /// A view of an `http::Response` with a byte body.
    pub fn from_http<B: AsRef<[u8]>>(resp: &'a http::Response<B>) -> Self {
        Response { status: resp.status(), headers: resp.headers(), body: resp.body().as_ref() }
    }

    fn ok(&self) -> Result<(), ResponseError> {
        if self.status.is_success() { Ok(()) } else { Err(error_from(self.status, self.headers, self.body)) }
    }

    /// One object (or any JSON type `T`), or the error the server answered with. The built-in
    /// kinds are read directly (see [`direct_json`](crate::direct_json)), with serde's result.
    pub fn object<T: DeserializeOwned + 'static>(&self) -> Result<T, ResponseError> {
        self.ok()?;
        decode(self.status, self.headers, self.body)
    }

    /// A list of objects (the items of the built-in kinds read directly, see
    /// [`direct_json`](crate::direct_json), with exact capacities).
    pub fn list<K: DeserializeOwned + 'static>(&self) -> Result<ObjectList<K>, ResponseError> {
        self.ok()?;
        decode_list(self.status, self.headers, self.body, false)
    }

    /// A list of objects decoded with exact capacities (see [`compact`](crate::compact)), for
    /// objects that are kept.
    pub fn list_compact<K: DeserializeOwned + 'static>(&self) -> Result<ObjectList<K>, ResponseError> {
        self.ok()?;
        decode_list(self.status, self.headers, self.body, true)
    }

    /// The answer to a DELETE (use `T = ObjectList<K>` for a deletecollection).
    pub fn delete<T: DeserializeOwned + 'static>(&self) -> Result<DeleteResponse<T>, ResponseError> {
        #[derive(Deserialize)]
        struct Kind<'a> {
            #[serde(default, borrow)]
            kind: Option<std::borrow::Cow<'a, str>>,
        }
        self.ok()?;
        #[cfg(feature = "protobuf")]
        if crate::protobuf::has_magic(self.body) {
            return crate::protobuf::response::delete(self.status, self.headers, self.body);
        }
        let kind = std::str::from_utf8(self.body)
            .ok()
            .and_then(|s| serde_json::from_str::<Kind<'_>>(s).ok())
            .and_then(|k| k.kind);
        if kind.as_deref() == Some("Status") {
            Ok(DeleteResponse::Status(decode(self.status, self.headers, self.body)?))
        } else {
            Ok(DeleteResponse::Object(decode(self.status, self.headers, self.body)?))
        }
    }

    /// A text body, such as a pod log (`204 No Content` reads as empty). Invalid UTF-8 is
    /// replaced, not an error: logs are whatever the container wrote.
    pub fn text(&self) -> Result<String, ResponseError> {
        self.ok()?;
        Ok(String::from_utf8_lossy(self.body).into_owned())
    }

    /// The texts of the `Warning` headers (RFC 7234 `299 - "text"`), such as the server's
    /// notice that it dropped an unknown field.
    pub fn warnings(&self) -> Vec<String> {
        self.headers
            .get_all(http::header::WARNING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(warning_text)
            .collect()
    }

    /// The body as an error, whatever the status (used for a watch whose HTTP status failed).
    pub fn error(&self) -> ResponseError {
        error_from(self.status, self.headers, self.body)
    }
}

/// The quoted text of one `Warning` header value: `299 - "unknown field \"x\""`.
fn warning_text(value: &str) -> Option<String> {
    let start = value.find('"')? + 1;
    let mut out = String::new();
    let mut chars = value[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

const SNIPPET: usize = 256;

fn snippet(body: &[u8]) -> String {
    let end = body.len().min(SNIPPET);
    String::from_utf8_lossy(&body[..end]).into_owned()
}

fn looks_like_json(body: &[u8]) -> bool {
    matches!(body.iter().find(|b| !b.is_ascii_whitespace()), Some(b'{' | b'['))
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Decodes a JSON body as `T`, with an error that says what the body was.
pub(crate) fn decode<T: DeserializeOwned + 'static>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ResponseError> {
    decode_with(status, headers, body, false)
}

/// A list: its items read directly when they are of a built-in kind and the body is a usual JSON
/// list, through [`decode_with`] otherwise (with the same result).
fn decode_list<K: DeserializeOwned + 'static>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    compact: bool,
) -> Result<ObjectList<K>, ResponseError> {
    #[cfg(feature = "protobuf")]
    if crate::protobuf::has_magic(body) {
        return match crate::protobuf::list(body) {
            Some(list) => Ok(list),
            None => decode_with(status, headers, body, compact),
        };
    }
    if let Some(list) = std::str::from_utf8(body).ok().and_then(crate::direct_json::list) {
        return Ok(list);
    }
    decode_with(status, headers, body, compact)
}

fn decode_with<T: DeserializeOwned + 'static>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    compact: bool,
) -> Result<T, ResponseError> {
    #[cfg(feature = "protobuf")]
    if crate::protobuf::has_magic(body) {
        return crate::protobuf::response::decode(status, headers, body);
    }
    if !looks_like_json(body) {
        return Err(not_json(status, headers, body));
    }
    let text = std::str::from_utf8(body).map_err(|e| ResponseError::Decode {
        status: status.as_u16(),
        target: std::any::type_name::<T>(),
        message: format!("the body is not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
        retry_after: retry_after(headers),
    })?;
    let decoded = if compact { crate::compact::from_str(text) } else { crate::direct_json::from_str(text) };
    decoded.map_err(|e| ResponseError::Decode {
        status: status.as_u16(),
        target: std::any::type_name::<T>(),
        message: if e.is_eof() {
            format!("the body ends early, after {} bytes (truncated?): {e}", body.len())
        } else {
            e.to_string()
        },
        retry_after: retry_after(headers),
    })
}

fn not_json(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ResponseError {
    ResponseError::NotJson {
        status: status.as_u16(),
        content_type: content_type(headers),
        snippet: snippet(body),
        len: body.len(),
        retry_after: retry_after(headers),
    }
}

/// The `Retry-After` header in whole seconds (`Retry-After: 7`), as client-go reads it. The
/// HTTP-date form (`Retry-After: Wed, 21 Oct 2015 07:28:00 GMT`) is not read: turning it into
/// a delay needs the wall clock, which the core does not read, and client-go ignores it too.
pub fn retry_after(headers: &HeaderMap) -> Option<u32> {
    headers.get(http::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

/// Reads an error response: a `Status` when the body is one, else an error that says what the
/// body was.
pub(crate) fn error_from(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ResponseError {
    #[cfg(feature = "protobuf")]
    if crate::protobuf::has_magic(body) {
        return crate::protobuf::response::error(status, headers, body);
    }
    if !looks_like_json(body) {
        return not_json(status, headers, body);
    }
    match status_from_json(body) {
        Some(s) => {
            let retry_after = retry_after(headers).or_else(|| s.details.as_ref().and_then(|d| d.retry_after_seconds));
            ResponseError::Api(Box::new(ApiError { http_status: status.as_u16(), status: s, retry_after }))
        }
        None => ResponseError::UnexpectedBody {
            status: status.as_u16(),
            snippet: snippet(body),
            len: body.len(),
            retry_after: retry_after(headers),
        },
    }
}

/// The body as a `Status`, when it is a JSON object with `kind: "Status"` (read leniently: see
/// [`Status`]).
fn status_from_json(body: &[u8]) -> Option<Status> {
    let text = std::str::from_utf8(body).ok()?;
    match serde_json::from_str::<serde_json::Value>(text).ok()? {
        serde_json::Value::Object(m) if m.get("kind").and_then(serde_json::Value::as_str) == Some("Status") => {
            Some(Status::from_json_map(&m))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Reason;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn resp(status: u16, ct: Option<&str>, body: &'static [u8]) -> (StatusCode, HeaderMap, &'static [u8]) {
        let mut h = HeaderMap::new();
        if let Some(ct) = ct {
            h.insert(http::header::CONTENT_TYPE, ct.parse().unwrap());
        }
        (StatusCode::from_u16(status).unwrap(), h, body)
    }

    #[test]
    fn plain_text_404_is_not_json_with_status() {
        let (s, h, b) = resp(404, Some("text/plain; charset=utf-8"), b"404 page not found\n");
        let e = Response::new(s, &h, b).object::<ConfigMap>().unwrap_err();
        assert!(e.is_not_found());
        match &e {
            ResponseError::NotJson { status, content_type, snippet, .. } => {
                assert_eq!(*status, 404);
                assert_eq!(content_type.as_deref(), Some("text/plain; charset=utf-8"));
                assert_eq!(snippet, "404 page not found\n");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("404"), "{e}");
    }

    #[test]
    fn html_from_a_proxy() {
        let (s, h, b) = resp(502, Some("text/html"), b"<html><body>Bad Gateway</body></html>");
        let e = Response::new(s, &h, b).object::<ConfigMap>().unwrap_err();
        assert_eq!(e.http_status(), 502);
        assert!(e.to_string().contains("Bad Gateway"), "{e}");
    }

    #[test]
    fn truncated_body_says_so() {
        let (s, h, b) = resp(200, Some("application/json"), br#"{"kind":"ConfigMap","metadata":{"name":"#);
        let e = Response::new(s, &h, b).object::<ConfigMap>().unwrap_err();
        assert!(matches!(e, ResponseError::Decode { status: 200, .. }), "{e:?}");
        assert!(e.to_string().contains("truncated"), "{e}");
    }

    #[test]
    fn retry_after_from_header_or_details() {
        let body =
            br#"{"kind":"Status","status":"Failure","reason":"Timeout","code":504,"details":{"retryAfterSeconds":3}}"#;
        let (s, mut h, b) = resp(504, Some("application/json"), body);
        assert_eq!(Response::new(s, &h, b).error().retry_after(), Some(3));
        h.insert(http::header::RETRY_AFTER, "1".parse().unwrap());
        let e = Response::new(s, &h, b).error();
        assert_eq!(e.retry_after(), Some(1));
        assert_eq!(e.reason(), Some(&Reason::Timeout));
    }

    #[test]
    fn delete_distinguishes_status_from_object() {
        let (s, h, b) =
            resp(200, None, br#"{"kind":"Status","apiVersion":"v1","status":"Success","details":{"name":"a"}}"#);
        assert!(Response::new(s, &h, b).delete::<ConfigMap>().unwrap().is_status());
        let (s, h, b) = resp(200, None, br#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a"}}"#);
        let obj = Response::new(s, &h, b).delete::<ConfigMap>().unwrap().object().unwrap();
        assert_eq!(obj.metadata.name.as_deref(), Some("a"));
    }

    #[test]
    fn warnings_are_unquoted() {
        let (s, mut h, b) = resp(201, None, b"{}");
        h.append(http::header::WARNING, r#"299 - "unknown field \"spec.extra\"""#.parse().unwrap());
        h.append(http::header::WARNING, r#"299 - "second""#.parse().unwrap());
        assert_eq!(Response::new(s, &h, b).warnings(), ["unknown field \"spec.extra\"", "second"]);
    }

    #[test]
    fn null_items_read_as_empty() {
        let (s, h, b) = resp(200, None, br#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{},"items":null}"#);
        assert!(Response::new(s, &h, b).list::<ConfigMap>().unwrap().items.is_empty());
    }
}
