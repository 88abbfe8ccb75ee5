//! Protobuf answers, as the real API server gives them to a client that asks for
//! `application/vnd.kubernetes.protobuf`: built-in kinds (objects, lists, `Status` errors,
//! `PartialObjectMetadata`, watch streams with their bookmarks and ERROR events) in protobuf;
//! custom resources in JSON when the client also accepts JSON, else 406 (they have no protobuf
//! form). The request is served as its JSON twin and the answer encoded with the core's
//! [`kube_proto::protobuf`] codec, so both formats always say the same thing.

use http::HeaderValue;
use http::header::{ACCEPT, CONTENT_TYPE};
use kube_proto::error::{Reason, Status};
use kube_proto::protobuf::{self, MEDIA_TYPE, WATCH_MEDIA_TYPE};
use serde_json::Value;

use crate::watch::WatchPoll;
use crate::{FakeApiServer, Reply, WatchId};

/// What a request's `Accept` asks of the protobuf form.
pub(crate) struct Wanted {
    /// The request with every protobuf media type turned into its JSON twin.
    pub json_request: http::Request<Vec<u8>>,
    /// Whether JSON is acceptable as well (`..., application/json`).
    pub json_ok: bool,
}

/// `Some` when the first media type the request accepts that the server serves is protobuf.
pub(crate) fn wanted(req: &http::Request<Vec<u8>>) -> Option<Wanted> {
    let accept = req.headers().get(ACCEPT)?.to_str().ok()?;
    let mut first_is_protobuf = None;
    let mut json_ok = false;
    let mut rewritten = Vec::new();
    for part in accept.split(',') {
        let part = part.trim();
        let media = part.split(';').next().unwrap_or("").trim();
        if media == MEDIA_TYPE {
            first_is_protobuf.get_or_insert(true);
            rewritten.push(format!("application/json{}", &part[media.len()..]));
        } else {
            if matches!(media, "application/json" | "*/*" | "application/*") {
                first_is_protobuf.get_or_insert(false);
                json_ok = true;
            }
            rewritten.push(part.to_owned());
        }
    }
    if first_is_protobuf != Some(true) {
        return None;
    }
    let mut json_request = http::Request::new(req.body().clone());
    *json_request.method_mut() = req.method().clone();
    *json_request.uri_mut() = req.uri().clone();
    *json_request.headers_mut() = req.headers().clone();
    json_request.headers_mut().insert(ACCEPT, HeaderValue::from_str(&rewritten.join(", ")).ok()?);
    Some(Wanted { json_request, json_ok })
}

/// The 406 for a kind with no protobuf form, when JSON was not accepted (the real server's text).
fn not_acceptable() -> http::Response<Vec<u8>> {
    let status = Status::failure(
        406,
        Reason::NotAcceptable,
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf",
    );
    let value = crate::status_json(&status);
    encode_response(http::StatusCode::NOT_ACCEPTABLE, &value).unwrap_or_else(|| {
        let mut r = http::Response::new(serde_json::to_vec(&value).unwrap_or_default());
        *r.status_mut() = http::StatusCode::NOT_ACCEPTABLE;
        r
    })
}

fn encode_response(status: http::StatusCode, value: &Value) -> Option<http::Response<Vec<u8>>> {
    let body = protobuf::to_vec(value).ok()?;
    let mut resp = http::Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(MEDIA_TYPE));
    Some(resp)
}

impl FakeApiServer {
    /// Serves a request that asked for protobuf first.
    pub(crate) fn handle_protobuf(&mut self, now: std::time::Instant, wanted: Wanted) -> Reply {
        // The kind a collection or object request addresses: custom resources have no protobuf form.
        let builtin = self.route(&wanted.json_request).ok().map(|route| {
            let r = &self.kinds[route.kind].resource;
            protobuf::is_known(&r.api_version, &r.kind)
        });
        if builtin == Some(false) && !wanted.json_ok {
            return Reply::Response(not_acceptable());
        }
        match self.handle_json(now, &wanted.json_request) {
            Reply::Response(resp) => Reply::Response(to_protobuf(resp)),
            Reply::Watch { id, mut head } if builtin == Some(true) => {
                head.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(WATCH_MEDIA_TYPE));
                self.protobuf_watches.insert(id);
                Reply::Watch { id, head }
            }
            other => other,
        }
    }

    /// [`poll_watch`](Self::poll_watch) of a protobuf watch: the JSON lines as protobuf frames.
    pub(crate) fn poll_protobuf_watch(&mut self, id: WatchId, now: std::time::Instant) -> WatchPoll {
        match self.poll_watch_json(id, now) {
            WatchPoll::Data(lines) => WatchPoll::Data(frames(&lines)),
            WatchPoll::Finished(lines) => {
                self.protobuf_watches.remove(&id);
                WatchPoll::Finished(frames(&lines))
            }
            pending => pending,
        }
    }
}

/// A JSON response of a kind with a protobuf form, in protobuf; anything else as it is.
fn to_protobuf(resp: http::Response<Vec<u8>>) -> http::Response<Vec<u8>> {
    let is_json = resp.headers().get(CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json {
        return resp;
    }
    let Ok(value) = serde_json::from_slice::<Value>(resp.body()) else { return resp };
    let known = |k: &str| value.get(k).and_then(Value::as_str).unwrap_or_default();
    if !protobuf::is_known(known("apiVersion"), known("kind")) {
        return resp;
    }
    encode_response(resp.status(), &value).unwrap_or(resp)
}

/// Watch event lines (`{"type":..,"object":..}\n`) as protobuf frames.
fn frames(lines: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(lines.len() / 2);
    for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let Ok(event) = serde_json::from_slice::<Value>(line) else { continue };
        let ty = event.get("type").and_then(Value::as_str).unwrap_or_default();
        if let Ok(frame) = protobuf::watch_frame(ty, &event["object"]) {
            out.extend_from_slice(&frame);
        }
    }
    out
}
