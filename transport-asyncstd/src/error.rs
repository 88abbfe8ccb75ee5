//! Errors from async-std, rustls and surf as typed [`TransportError`]s.
//!
//! A [`TransportError`] made while a response body is read travels up inside an [`io::Error`],
//! and one made by the exchange inside surf's [`http_types::Error`]; these helpers find it
//! again. Messages name the server
//! (scheme, host and port) and never a header, a path or user info.

use std::io;

use futures_rustls::rustls;
use kube_runtime::pool::transport_error as carried;
use kube_runtime::transport::TransportError;

/// The rustls error inside an I/O error, if the TLS layer failed.
fn tls_cause(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// A failed TLS handshake.
pub(crate) fn handshake(origin: &str, e: io::Error) -> TransportError {
    if let Some(t) = carried(&e) {
        return t;
    }
    match tls_cause(&e) {
        Some(cause) => {
            TransportError::Tls { url: origin.to_owned(), message: kube_runtime::tls::describe_error(cause) }
        }
        None => TransportError::Tls {
            url: origin.to_owned(),
            message: format!("the connection failed during the handshake: {e}"),
        },
    }
}

/// The transport error a response body's I/O error stands for.
pub(crate) fn from_body_io(e: io::Error) -> TransportError {
    carried(&e).unwrap_or_else(|| TransportError::Closed(e.to_string()))
}

/// The transport error a surf error stands for.
pub(crate) fn from_surf(e: &http_types::Error) -> TransportError {
    if let Some(t) = e.downcast_ref::<TransportError>() {
        return t.clone();
    }
    if let Some(io) = e.downcast_ref::<io::Error>()
        && let Some(t) = carried(io)
    {
        return t;
    }
    TransportError::Other(e.to_string())
}
