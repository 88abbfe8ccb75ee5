//! Typed errors: a request the API server would reject ([`RequestError`]), and a response
//! that is an error or cannot be read ([`ResponseError`], with the server's [`Status`]).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::selector::SelectorError;

/// A request could not be built: the API server would reject it, or the body did not serialize.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// An object name (or namespace) was empty.
    #[error("the {what} must not be empty")]
    EmptyName {
        /// `name`, `namespace`, `subresource`, ...
        what: &'static str,
    },
    /// A name the API server refuses as a path segment (apimachinery's
    /// `IsValidPathSegmentName`): `.`, `..`, or one containing `/` or `%`. Other characters
    /// (spaces, `?`, `#`, any UTF-8) are valid and percent-encoded in the path.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// `name`, `namespace` or `subresource`.
        what: &'static str,
        /// The value given.
        value: String,
        /// Why it is invalid.
        reason: &'static str,
    },
    /// An object verb on the all-namespaces collection of a namespaced kind: the object's
    /// namespace is needed to address it.
    #[error("objects of a namespaced kind are addressed within a namespace: use Request::namespaced")]
    NamespaceRequired,
    /// A server-side apply without `fieldManager`.
    #[error("fieldManager is required for server-side apply (PatchParams::apply(\"manager\"))")]
    MissingFieldManager,
    /// `force` on a patch that is not an apply.
    #[error("force is only valid for server-side apply patches")]
    ForceWithoutApply,
    /// `resourceVersionMatch` without `resourceVersion`.
    #[error("resourceVersionMatch is forbidden unless resourceVersion is provided")]
    VersionMatchWithoutVersion,
    /// A label or field selector the server would reject.
    #[error(transparent)]
    InvalidSelector(SelectorError),
    /// Another parameter the server would reject.
    #[error("invalid {param}: {reason}")]
    InvalidParam {
        /// The query or body parameter, as the API names it.
        param: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// The body did not serialize to JSON.
    #[error("the request body did not serialize: {0}")]
    SerializeBody(String),
    /// The path and query did not make a valid URI.
    #[error("invalid request URI {uri:?}: {reason}")]
    InvalidUri {
        /// The path and query built.
        uri: String,
        /// What `http` said.
        reason: String,
    },
}

/// The `reason` of a `Status`: why the API server refused a request. Unknown reasons (and the
/// empty reason of, say, a 500 from a failed kubelet dial) are kept as [`Reason::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// 401: no or wrong credentials.
    Unauthorized,
    /// 403: not allowed (RBAC, a terminating namespace, ...).
    Forbidden,
    /// 404: no such object.
    NotFound,
    /// 409: an object with this name exists.
    AlreadyExists,
    /// 409: a stale resourceVersion, a failed precondition, an apply conflict.
    Conflict,
    /// 410: gone.
    Gone,
    /// 422: the object or options failed validation.
    Invalid,
    /// 500 or 504: the server took too long on its side.
    ServerTimeout,
    /// 500: the storage could not read the object.
    StorageReadError,
    /// 504: the request timed out (a resourceVersion that is too large, ...).
    Timeout,
    /// 429: slow down (or an eviction blocked by a disruption budget).
    TooManyRequests,
    /// 400: the request is malformed.
    BadRequest,
    /// 405: the verb is not supported.
    MethodNotAllowed,
    /// 406: no representation matches the Accept header.
    NotAcceptable,
    /// 413: the body is too large.
    RequestEntityTooLarge,
    /// 415: the Content-Type is not supported.
    UnsupportedMediaType,
    /// 500: an internal error.
    InternalError,
    /// 410: the resourceVersion or continue token has expired (compacted).
    Expired,
    /// 503: the server cannot serve now.
    ServiceUnavailable,
    /// A reason this client does not know, or none at all (`""`).
    Unknown(String),
}

impl Reason {
    /// The reason as the API server spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::NotFound => "NotFound",
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::Gone => "Gone",
            Reason::Invalid => "Invalid",
            Reason::ServerTimeout => "ServerTimeout",
            Reason::StorageReadError => "StorageReadError",
            Reason::Timeout => "Timeout",
            Reason::TooManyRequests => "TooManyRequests",
            Reason::BadRequest => "BadRequest",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::NotAcceptable => "NotAcceptable",
            Reason::RequestEntityTooLarge => "RequestEntityTooLarge",
            Reason::UnsupportedMediaType => "UnsupportedMediaType",
            Reason::InternalError => "InternalError",
            Reason::Expired => "Expired",
            Reason::ServiceUnavailable => "ServiceUnavailable",
            Reason::Unknown(s) => s,
        }
    }

    /// The reason client-go gives an error response whose body carries none (text, HTML, JSON
    /// that is not a `Status`), from its HTTP status, as apimachinery's
    /// `NewGenericServerResponse` does: 400 BadRequest, 401 Unauthorized, 403 Forbidden,
    /// 404 NotFound, 405 MethodNotAllowed, 406 NotAcceptable, 409 Conflict, 415
    /// UnsupportedMediaType, 422 Invalid, 429 TooManyRequests, 503 ServiceUnavailable, 504
    /// Timeout, any other 5xx InternalError. Two additions, which client-go answers by the code
    /// instead (`IsRequestEntityTooLargeError`, a 410 being gone): 410 Gone and 413
    /// RequestEntityTooLarge. client-go reads a 409 to a POST as AlreadyExists; a response alone
    /// does not know its verb, so this is Conflict. `None` for any other status.
    pub fn from_http_status(code: u16) -> Option<Reason> {
        reason_for_http_status(code).cloned()
    }

    /// Parses the reason as the API server spells it.
    pub fn parse(s: &str) -> Reason {
        match s {
            "Unauthorized" => Reason::Unauthorized,
            "Forbidden" => Reason::Forbidden,
            "NotFound" => Reason::NotFound,
            "AlreadyExists" => Reason::AlreadyExists,
            "Conflict" => Reason::Conflict,
            "Gone" => Reason::Gone,
            "Invalid" => Reason::Invalid,
            "ServerTimeout" => Reason::ServerTimeout,
            "StorageReadError" => Reason::StorageReadError,
            "Timeout" => Reason::Timeout,
            "TooManyRequests" => Reason::TooManyRequests,
            "BadRequest" => Reason::BadRequest,
            "MethodNotAllowed" => Reason::MethodNotAllowed,
            "NotAcceptable" => Reason::NotAcceptable,
            "RequestEntityTooLarge" => Reason::RequestEntityTooLarge,
            "UnsupportedMediaType" => Reason::UnsupportedMediaType,
            "InternalError" => Reason::InternalError,
            "Expired" => Reason::Expired,
            "ServiceUnavailable" => Reason::ServiceUnavailable,
            other => Reason::Unknown(other.to_owned()),
        }
    }
}

fn reason_for_http_status(code: u16) -> Option<&'static Reason> {
    static BAD_REQUEST: Reason = Reason::BadRequest;
    static UNAUTHORIZED: Reason = Reason::Unauthorized;
    static FORBIDDEN: Reason = Reason::Forbidden;
    static NOT_FOUND: Reason = Reason::NotFound;
    static METHOD_NOT_ALLOWED: Reason = Reason::MethodNotAllowed;
    static NOT_ACCEPTABLE: Reason = Reason::NotAcceptable;
    static CONFLICT: Reason = Reason::Conflict;
    static GONE: Reason = Reason::Gone;
    static TOO_LARGE: Reason = Reason::RequestEntityTooLarge;
    static UNSUPPORTED_MEDIA_TYPE: Reason = Reason::UnsupportedMediaType;
    static INVALID: Reason = Reason::Invalid;
    static TOO_MANY_REQUESTS: Reason = Reason::TooManyRequests;
    static SERVICE_UNAVAILABLE: Reason = Reason::ServiceUnavailable;
    static TIMEOUT: Reason = Reason::Timeout;
    static INTERNAL_ERROR: Reason = Reason::InternalError;
    Some(match code {
        400 => &BAD_REQUEST,
        401 => &UNAUTHORIZED,
        403 => &FORBIDDEN,
        404 => &NOT_FOUND,
        405 => &METHOD_NOT_ALLOWED,
        406 => &NOT_ACCEPTABLE,
        409 => &CONFLICT,
        410 => &GONE,
        413 => &TOO_LARGE,
        415 => &UNSUPPORTED_MEDIA_TYPE,
        422 => &INVALID,
        429 => &TOO_MANY_REQUESTS,
        503 => &SERVICE_UNAVAILABLE,
        504 => &TIMEOUT,
        500..=599 => &INTERNAL_ERROR,
        _ => return None,
    })
}

impl Default for Reason {
    fn default() -> Self {
        Reason::Unknown(String::new())
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Reason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(Reason::parse(&s))
    }
}

/// One cause of a `Status`: which field was wrong and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusCause {
    /// A machine-readable cause, such as `FieldValueInvalid` or `FieldManagerConflict`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// A human-readable description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The field path, such as `metadata.name` or `.data.shared`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

/// The `details` of a `Status`: which object, and the causes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    /// The object's name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The object's group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The object's kind (often the plural resource name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// The object's uid.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The causes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    /// How long the client should wait before retrying (a negative value reads as absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
}

/// `metadata` of a `Status` (a 410 for an expired continue token offers a fresh token here).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StatusMeta {
    /// `resourceVersion`.
    #[serde(rename = "resourceVersion", default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// `continue`: the token for an inconsistent continuation, after a 410.
    #[serde(rename = "continue", default, skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}

/// A `meta.k8s.io/v1` `Status`: the API server's answer to a failed request, and to some
/// successful deletes.
///
/// It is read leniently, field by field, as an error report should be: a field of the wrong
/// type (`"code": "500"`, `causes` given as a string, a negative `retryAfterSeconds`) is
/// ignored and the others are kept, so that the reason and message survive a sloppy proxy or
/// webhook. Only a body that is not a JSON object fails to read as a `Status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Status {
    /// `Success` or `Failure`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// The HTTP status code it stands for (`int32` in the API; 0 when absent or unreadable).
    #[serde(default)]
    pub code: i32,
    /// Why.
    #[serde(default)]
    pub reason: Reason,
    /// A human-readable message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Which object, and the causes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    /// List metadata (a fresh continue token after a 410 Expired).
    #[serde(default)]
    pub metadata: StatusMeta,
}

impl Status {
    /// A failure status with this code, reason and message.
    pub fn failure(code: i32, reason: Reason, message: impl Into<String>) -> Self {
        Status { status: "Failure".into(), code, reason, message: message.into(), ..Status::default() }
    }

    /// Whether this reports success.
    pub fn is_success(&self) -> bool {
        self.status == "Success"
    }

    /// Whether this says the resourceVersion or continue token asked for is too old (410 Gone
    /// or Expired), in a response or as a watch's ERROR event.
    pub fn is_gone(&self) -> bool {
        self.code == 410 || matches!(self.reason, Reason::Expired | Reason::Gone)
    }

    /// The causes (empty when there are no details).
    pub fn causes(&self) -> &[StatusCause] {
        self.details.as_ref().map_or(&[], |d| &d.causes)
    }
}

// ---- Lenient reading of a Status ----
//
// Each type reads a JSON object (any other JSON value is an error) and keeps every field whose
// value has the expected type; a field of another type is left at its default.

type JsonMap = serde_json::Map<String, serde_json::Value>;

fn text(m: &JsonMap, key: &str) -> String {
    m.get(key).and_then(serde_json::Value::as_str).map(str::to_owned).unwrap_or_default()
}

fn opt_text(m: &JsonMap, key: &str) -> Option<String> {
    m.get(key).and_then(serde_json::Value::as_str).map(str::to_owned)
}

fn object<'de, D: Deserializer<'de>>(d: D) -> Result<JsonMap, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Object(m) => Ok(m),
        other => Err(serde::de::Error::invalid_type(unexpected(&other), &"a JSON object")),
    }
}

fn unexpected(v: &serde_json::Value) -> serde::de::Unexpected<'_> {
    use serde::de::Unexpected;
    match v {
        serde_json::Value::Null => Unexpected::Unit,
        serde_json::Value::Bool(b) => Unexpected::Bool(*b),
        serde_json::Value::Number(n) => n.as_f64().map_or(Unexpected::Other("number"), Unexpected::Float),
        serde_json::Value::String(s) => Unexpected::Str(s),
        serde_json::Value::Array(_) => Unexpected::Seq,
        serde_json::Value::Object(_) => Unexpected::Map,
    }
}

impl StatusCause {
    fn from_map(m: &JsonMap) -> Self {
        StatusCause { reason: text(m, "reason"), message: text(m, "message"), field: text(m, "field") }
    }
}

impl StatusDetails {
    fn from_map(m: &JsonMap) -> Self {
        let causes = m
            .get("causes")
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(serde_json::Value::as_object).map(StatusCause::from_map).collect())
            .unwrap_or_default();
        StatusDetails {
            name: text(m, "name"),
            group: text(m, "group"),
            kind: text(m, "kind"),
            uid: text(m, "uid"),
            causes,
            retry_after_seconds: m
                .get("retryAfterSeconds")
                .and_then(serde_json::Value::as_i64)
                .and_then(|n| u32::try_from(n).ok()),
        }
    }
}

impl StatusMeta {
    fn from_map(m: &JsonMap) -> Self {
        StatusMeta { resource_version: opt_text(m, "resourceVersion"), continue_token: opt_text(m, "continue") }
    }
}

impl Status {
    /// Reads a `Status` from a JSON object, keeping every field that has the expected type.
    pub fn from_json_map(m: &JsonMap) -> Self {
        Status {
            status: text(m, "status"),
            code: m.get("code").and_then(serde_json::Value::as_i64).and_then(|n| i32::try_from(n).ok()).unwrap_or(0),
            reason: m.get("reason").and_then(serde_json::Value::as_str).map(Reason::parse).unwrap_or_default(),
            message: text(m, "message"),
            details: m.get("details").and_then(serde_json::Value::as_object).map(StatusDetails::from_map),
            metadata: m
                .get("metadata")
                .and_then(serde_json::Value::as_object)
                .map(StatusMeta::from_map)
                .unwrap_or_default(),
        }
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object(d).map(|m| Status::from_json_map(&m))
    }
}

impl<'de> Deserialize<'de> for StatusDetails {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object(d).map(|m| StatusDetails::from_map(&m))
    }
}

impl<'de> Deserialize<'de> for StatusCause {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object(d).map(|m| StatusCause::from_map(&m))
    }
}

impl<'de> Deserialize<'de> for StatusMeta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        object(d).map(|m| StatusMeta::from_map(&m))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.code, self.reason, self.message)?;
        for c in self.causes() {
            write!(f, "; {}", c.message)?;
            if !c.field.is_empty() {
                write!(f, " (field {})", c.field)?;
            }
        }
        Ok(())
    }
}

/// An error `Status` from the API server, with the HTTP status and `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("API error: HTTP {http_status}: {status}")]
pub struct ApiError {
    /// The HTTP status code of the response (0 inside a watch stream).
    pub http_status: u16,
    /// The `Status` the server sent.
    pub status: Status,
    /// `Retry-After` in seconds, from the header or `details.retryAfterSeconds`.
    pub retry_after: Option<u32>,
}

/// A response that is an error, or that could not be read as what was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// The API server answered with an error `Status`.
    #[error(transparent)]
    Api(Box<ApiError>),
    /// The body is not JSON: an HTML page from a proxy, a plain-text `404 page not found`, ...
    #[error("HTTP {status}: expected a JSON body but got {} ({len} bytes): {snippet:?}", content_type.as_deref().unwrap_or("no content-type"))]
    NotJson {
        /// The HTTP status code.
        status: u16,
        /// The `Content-Type`, if any.
        content_type: Option<String>,
        /// The first bytes of the body, as text.
        snippet: String,
        /// The body's length.
        len: usize,
        /// `Retry-After` in seconds, from the header.
        retry_after: Option<u32>,
    },
    /// The body is JSON (or looks like it) but does not decode as the expected type: a
    /// truncated body, a wrong shape.
    #[error("HTTP {status}: the body does not decode as {target}: {message}")]
    Decode {
        /// The HTTP status code.
        status: u16,
        /// The type it was decoded as.
        target: &'static str,
        /// What went wrong, with line and column.
        message: String,
        /// `Retry-After` in seconds, from the header.
        retry_after: Option<u32>,
    },
    /// An error status whose body is JSON but not a `Status`.
    #[error("HTTP {status}: unexpected error body ({len} bytes): {snippet:?}")]
    UnexpectedBody {
        /// The HTTP status code.
        status: u16,
        /// The first bytes of the body.
        snippet: String,
        /// The body's length.
        len: usize,
        /// `Retry-After` in seconds, from the header.
        retry_after: Option<u32>,
    },
}

impl ResponseError {
    /// The HTTP status code of the response.
    pub fn http_status(&self) -> u16 {
        match self {
            ResponseError::Api(e) => e.http_status,
            ResponseError::NotJson { status, .. }
            | ResponseError::Decode { status, .. }
            | ResponseError::UnexpectedBody { status, .. } => *status,
        }
    }

    /// The server's `Status`, when it sent one.
    pub fn api_status(&self) -> Option<&Status> {
        match self {
            ResponseError::Api(e) => Some(&e.status),
            _ => None,
        }
    }

    /// Why the server refused: the `Status` reason when the body is a `Status` (kept as sent,
    /// even empty, as client-go does), else the reason of the HTTP status (see
    /// [`Reason::from_http_status`]): a text 409 is a Conflict, a proxy's 503 page
    /// ServiceUnavailable. `None` for a status without one (a 2xx body that did not decode, a 418).
    pub fn reason(&self) -> Option<&Reason> {
        match self {
            ResponseError::Api(e) => Some(&e.status.reason),
            other => reason_for_http_status(other.http_status()),
        }
    }

    /// Whether this is a 404, as a `Status` or as a plain-text page.
    pub fn is_not_found(&self) -> bool {
        self.http_status() == 404 || self.api_status().is_some_and(|s| s.code == 404)
    }

    /// Whether this is a 410 Gone / Expired: the resourceVersion or continue token is too old.
    pub fn is_gone(&self) -> bool {
        self.http_status() == 410 || self.api_status().is_some_and(Status::is_gone)
    }

    /// Whether this is a Conflict (not AlreadyExists): the `Status` reason, or a 409 whose body
    /// is not a `Status`.
    pub fn is_conflict(&self) -> bool {
        self.reason() == Some(&Reason::Conflict)
    }

    /// `Retry-After` in seconds, when the server asked for one: the header, whatever the body
    /// (else a `Status`'s `details.retryAfterSeconds`).
    pub fn retry_after(&self) -> Option<u32> {
        match self {
            ResponseError::Api(e) => e.retry_after,
            ResponseError::NotJson { retry_after, .. }
            | ResponseError::Decode { retry_after, .. }
            | ResponseError::UnexpectedBody { retry_after, .. } => *retry_after,
        }
    }
}
