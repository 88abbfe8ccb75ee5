//! Protobuf bodies in [`Response`](crate::Response): objects, lists, delete outcomes and
//! `Status` errors read from a body that starts with the `k8s\0` magic, with the same errors as
//! JSON bodies.

use http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

use super::{Envelope, ProtobufErrorKind};
use crate::error::{ApiError, ResponseError, Status};
use crate::response::{DeleteResponse, retry_after};

/// Decodes a protobuf body as `T` (the built-in kinds' structs by the generated functions).
pub(crate) fn decode<T: DeserializeOwned + 'static>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ResponseError> {
    super::from_slice(body).map_err(|e| ResponseError::Decode {
        status: status.as_u16(),
        target: std::any::type_name::<T>(),
        message: if e.kind == ProtobufErrorKind::Truncated {
            format!("the body ends early, after {} bytes (truncated?): {e}", body.len())
        } else {
            e.to_string()
        },
        retry_after: retry_after(headers),
    })
}

/// A protobuf error body: the `Status` it holds, or an error that says what it was.
pub(crate) fn error(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ResponseError {
    match Envelope::parse(body).ok().filter(|e| e.kind == "Status").and_then(|e| e.decode::<Status>().ok()) {
        Some(s) => {
            let retry_after = retry_after(headers).or_else(|| s.details.as_ref().and_then(|d| d.retry_after_seconds));
            ResponseError::Api(Box::new(ApiError { http_status: status.as_u16(), status: s, retry_after }))
        }
        None => ResponseError::UnexpectedBody {
            status: status.as_u16(),
            snippet: format!("(protobuf, {} bytes)", body.len()),
            len: body.len(),
            retry_after: retry_after(headers),
        },
    }
}

/// The answer to a DELETE in protobuf: the object, or a `Status`.
pub(crate) fn delete<T: DeserializeOwned + 'static>(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<DeleteResponse<T>, ResponseError> {
    let is_status = Envelope::parse(body).is_ok_and(|e| e.kind == "Status");
    if is_status {
        Ok(DeleteResponse::Status(decode(status, headers, body)?))
    } else {
        Ok(DeleteResponse::Object(decode(status, headers, body)?))
    }
}
