//! The opening handshake, from the client's side: the key that goes in the request, and the
//! check of the server's answer (RFC 6455 section 4.1).

use base64::Engine as _;
use http::header::{CONNECTION, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::sha1::Sha1;
use crate::error::ResponseError;
use crate::request::websocket_key;
use crate::response::Response;

/// The GUID that RFC 6455 appends to the key before hashing it.
pub const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const SEC_WEBSOCKET_KEY: HeaderName = HeaderName::from_static("sec-websocket-key");
const SEC_WEBSOCKET_ACCEPT: HeaderName = HeaderName::from_static("sec-websocket-accept");
const SEC_WEBSOCKET_PROTOCOL: HeaderName = HeaderName::from_static("sec-websocket-protocol");
const SEC_WEBSOCKET_EXTENSIONS: HeaderName = HeaderName::from_static("sec-websocket-extensions");

/// The `Sec-WebSocket-Accept` a server answers to `Sec-WebSocket-Key: key`: the base64 of
/// the SHA-1 of the key followed by [`GUID`].
///
/// ```
/// // RFC 6455 section 1.3.
/// assert_eq!(kube_proto::websocket::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(h.finish())
}

/// The server's answer did not complete the upgrade.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request has no `Sec-WebSocket-Key` to check the answer against.
    #[error("the upgrade request has no Sec-WebSocket-Key")]
    MissingKey,
    /// The server answered with an HTTP response instead of `101 Switching Protocols`: its
    /// `Status` when the body is one (404 for a missing pod, 400 for a pod with no node, ...).
    #[error("the server did not switch to WebSocket: {0}")]
    Refused(ResponseError),
    /// `101` without `Upgrade: websocket`.
    #[error("the server's 101 answer has Upgrade: {found:?}, not websocket")]
    Upgrade {
        /// The `Upgrade` header, if any.
        found: Option<String>,
    },
    /// `101` without `Connection: upgrade`.
    #[error("the server's 101 answer has Connection: {found:?}, without upgrade")]
    Connection {
        /// The `Connection` header, if any.
        found: Option<String>,
    },
    /// `Sec-WebSocket-Accept` is missing or does not match the key sent.
    #[error("the server's Sec-WebSocket-Accept is {found:?}, expected {expected:?}")]
    Accept {
        /// The value the key calls for.
        expected: String,
        /// The value received, if any.
        found: Option<String>,
    },
    /// Subprotocols were offered and the server chose none.
    #[error("the server chose no subprotocol; offered: {}", offered.join(", "))]
    NoProtocol {
        /// The subprotocols offered.
        offered: Vec<String>,
    },
    /// The server chose a subprotocol that was not offered (or several).
    #[error("the server chose the subprotocol {chosen:?}, which was not offered; offered: {}", offered.join(", "))]
    UnexpectedProtocol {
        /// What it chose.
        chosen: String,
        /// The subprotocols offered.
        offered: Vec<String>,
    },
    /// The server turned on extensions, none of which were offered.
    #[error("the server turned on extensions that were not offered: {0:?}")]
    UnexpectedExtensions(String),
}

/// An upgrade request's key and offered subprotocols, to check the server's answer with.
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use k8s_openapi::api::core::v1::Pod;
/// use kube_proto::websocket::{Handshake, accept_key};
/// use kube_proto::{AttachParams, Request};
///
/// let mut req = Request::namespaced::<Pod>("default").exec("blog", ["ls"], &AttachParams::default()).unwrap();
/// let handshake = Handshake::start(&mut req, *b"the sample nonce");
/// assert_eq!(req.headers()["sec-websocket-key"], "dGhlIHNhbXBsZSBub25jZQ==");
///
/// // ... the transport sends `req` and reads the answer's head:
/// let mut headers = HeaderMap::new();
/// headers.insert("upgrade", "websocket".parse().unwrap());
/// headers.insert("connection", "Upgrade".parse().unwrap());
/// headers.insert("sec-websocket-accept", accept_key("dGhlIHNhbXBsZSBub25jZQ==").parse().unwrap());
/// headers.insert("sec-websocket-protocol", "v5.channel.k8s.io".parse().unwrap());
/// assert_eq!(handshake.verify(StatusCode::SWITCHING_PROTOCOLS, &headers, b"").unwrap(), "v5.channel.k8s.io");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    key: String,
    offered: Vec<String>,
}

impl Handshake {
    /// Sets the request's `Sec-WebSocket-Key` from a 16-byte nonce (drawn by the caller from
    /// its own randomness) and returns the handshake that checks the answer.
    pub fn start<B>(req: &mut http::Request<B>, nonce: [u8; 16]) -> Handshake {
        let key = websocket_key(nonce);
        req.headers_mut().insert(SEC_WEBSOCKET_KEY, key.clone());
        let offered = offered(req.headers());
        Handshake { key: key.to_str().unwrap_or_default().to_owned(), offered }
    }

    /// The handshake of a request that has its `Sec-WebSocket-Key` already.
    pub fn from_request<B>(req: &http::Request<B>) -> Result<Handshake, HandshakeError> {
        let key =
            req.headers().get(SEC_WEBSOCKET_KEY).and_then(|v| v.to_str().ok()).ok_or(HandshakeError::MissingKey)?;
        Ok(Handshake { key: key.trim().to_owned(), offered: offered(req.headers()) })
    }

    /// A handshake from its key and the subprotocols offered, in order of preference.
    pub fn new(key: &str, offered: &[&str]) -> Handshake {
        Handshake { key: key.trim().to_owned(), offered: offered.iter().map(|s| (*s).to_owned()).collect() }
    }

    /// The subprotocols offered, in order of preference.
    pub fn offered(&self) -> &[String] {
        &self.offered
    }

    /// Checks the answer to the upgrade request: its status, headers and (for an HTTP error)
    /// body. Returns the subprotocol the server chose (empty when none was offered).
    ///
    /// A status other than `101` is [`HandshakeError::Refused`], with the `Status` the body
    /// holds (the API server refuses a missing pod, a pod with no node or a forbidden exec
    /// this way, before any upgrade).
    pub fn verify(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Result<String, HandshakeError> {
        if status != StatusCode::SWITCHING_PROTOCOLS {
            return Err(HandshakeError::Refused(Response::new(status, headers, body).error()));
        }
        let upgrade = joined(headers, &UPGRADE);
        if !upgrade.as_deref().is_some_and(|u| u.trim().eq_ignore_ascii_case("websocket")) {
            return Err(HandshakeError::Upgrade { found: upgrade });
        }
        let connection = joined(headers, &CONNECTION);
        if !connection.as_deref().is_some_and(|c| c.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade"))) {
            return Err(HandshakeError::Connection { found: connection });
        }
        let expected = accept_key(&self.key);
        let found = joined(headers, &SEC_WEBSOCKET_ACCEPT);
        if found.as_deref().map(str::trim) != Some(expected.as_str()) {
            return Err(HandshakeError::Accept { expected, found });
        }
        if let Some(extensions) = joined(headers, &SEC_WEBSOCKET_EXTENSIONS)
            && !extensions.trim().is_empty()
        {
            return Err(HandshakeError::UnexpectedExtensions(extensions));
        }
        match joined(headers, &SEC_WEBSOCKET_PROTOCOL).filter(|p| !p.trim().is_empty()) {
            None if self.offered.is_empty() => Ok(String::new()),
            None => Err(HandshakeError::NoProtocol { offered: self.offered.clone() }),
            Some(chosen) => {
                let chosen = chosen.trim();
                if self.offered.iter().any(|o| o == chosen) {
                    Ok(chosen.to_owned())
                } else {
                    Err(HandshakeError::UnexpectedProtocol { chosen: chosen.to_owned(), offered: self.offered.clone() })
                }
            }
        }
    }
}

/// The subprotocols a request offers, in order.
fn offered(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Every value of a header, joined with `, ` (as repeated headers mean), or `None`.
fn joined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v: &HeaderValue| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    if values.is_empty() { None } else { Some(values.join(", ")) }
}
