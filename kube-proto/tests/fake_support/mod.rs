//! A small harness for driving the fake API server (`kube_proto::fake`) from tests: requests in,
//! `(status, JSON body)` out, watches read with the real [`WatchDecoder`], and simulated time as
//! `t0 + Duration`. Shared by `fake_behaviour.rs` and `fake_likeness.rs`; each uses only part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use http::StatusCode;
use kube_proto::fake::{FakeApiServer, FakeConfig, Reply, WatchId, WatchPoll};
use kube_proto::{WatchDecoder, WatchEvent};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A fresh fake server and the instant it started (`t0`).
#[allow(clippy::disallowed_methods)] // one origin instant; all later time is `t0 + Duration`
pub fn server() -> (FakeApiServer, Instant) {
    let t0 = Instant::now();
    (FakeApiServer::new(FakeConfig::default(), t0), t0)
}

/// The body as JSON, or as a JSON string when it is not JSON (a plain-text 404, say), or `Null`
/// when empty.
pub fn body_json(body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// Sends a request that is not a watch and returns the whole response.
pub fn respond(server: &mut FakeApiServer, now: Instant, req: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    match server.handle(now, req) {
        Reply::Response(resp) => resp,
        Reply::Watch { head, .. } => {
            panic!("{} {}: expected a response, got a watch ({head:?})", req.method(), req.uri())
        }
    }
}

/// Sends a request that is not a watch: its status and its body as JSON.
pub fn send(server: &mut FakeApiServer, now: Instant, req: http::Request<Vec<u8>>) -> (StatusCode, Value) {
    let resp = respond(server, now, &req);
    (resp.status(), body_json(resp.body()))
}

/// Sends a request and asserts its status, returning the body.
#[track_caller]
pub fn expect(server: &mut FakeApiServer, now: Instant, req: http::Request<Vec<u8>>, status: u16) -> Value {
    let what = format!("{} {}", req.method(), req.uri());
    let (got, body) = send(server, now, req);
    assert_eq!(got.as_u16(), status, "{what}: {body:#}");
    body
}

/// Opens a watch and returns its id; panics if the server answered with a complete response.
#[track_caller]
pub fn open_watch(server: &mut FakeApiServer, now: Instant, req: &http::Request<Vec<u8>>) -> WatchId {
    match server.handle(now, req) {
        Reply::Watch { id, head } => {
            assert_eq!(head.status(), StatusCode::OK, "a watch starts with 200");
            id
        }
        Reply::Response(resp) => {
            panic!("{} {}: expected a watch, got {} {}", req.method(), req.uri(), resp.status(), body_json(resp.body()))
        }
    }
}

/// What one poll of a watch gave.
#[derive(Debug)]
pub struct Polled<K> {
    /// The events, decoded with the real [`WatchDecoder`].
    pub events: Vec<WatchEvent<K>>,
    /// The server ended the stream.
    pub finished: bool,
    /// When to poll again if nothing is written meanwhile.
    pub wake: Option<Instant>,
}

fn decode<K: DeserializeOwned>(bytes: &[u8]) -> Vec<WatchEvent<K>> {
    let mut decoder = WatchDecoder::<K>::new();
    decoder.push(bytes);
    let mut out = Vec::new();
    while let Some(ev) = decoder.next_event() {
        out.push(ev.unwrap_or_else(|e| panic!("an undecodable watch line: {e:?}")));
    }
    if let Some(ev) = decoder.finish() {
        out.push(ev.unwrap_or_else(|e| panic!("an undecodable last watch line: {e:?}")));
    }
    out
}

/// Polls a watch once at `now`.
pub fn poll<K: DeserializeOwned>(server: &mut FakeApiServer, id: WatchId, now: Instant) -> Polled<K> {
    match server.poll_watch(id, now) {
        WatchPoll::Data(bytes) => Polled { events: decode(&bytes), finished: false, wake: Some(now) },
        WatchPoll::Pending(wake) => Polled { events: Vec::new(), finished: false, wake },
        WatchPoll::Finished(bytes) => Polled { events: decode(&bytes), finished: true, wake: None },
    }
}

/// The events a watch has for `now` (one poll).
pub fn watch_events<K: DeserializeOwned>(server: &mut FakeApiServer, id: WatchId, now: Instant) -> Vec<WatchEvent<K>> {
    poll(server, id, now).events
}

/// A watch read for a while with no writes in between.
#[derive(Debug)]
pub struct Run<K> {
    /// Each event with the instant it was read.
    pub events: Vec<(Instant, WatchEvent<K>)>,
    /// When the server ended the stream, if it did before `until`.
    pub finished_at: Option<Instant>,
}

impl<K> Run<K> {
    /// The event types in order, as the server spells them.
    pub fn types(&self) -> Vec<&'static str> {
        self.events.iter().map(|(_, e)| e.type_name()).collect()
    }
}

/// Reads a watch from `from` to `until` (inclusive), polling whenever the server says something
/// is due, as a client that holds the connection open would see it.
pub fn run_watch<K: DeserializeOwned>(
    server: &mut FakeApiServer,
    id: WatchId,
    from: Instant,
    until: Instant,
) -> Run<K> {
    let mut run = Run { events: Vec::new(), finished_at: None };
    let mut t = from;
    loop {
        let p = poll::<K>(server, id, t);
        let had_events = !p.events.is_empty();
        run.events.extend(p.events.into_iter().map(|e| (t, e)));
        if p.finished {
            run.finished_at = Some(t);
            return run;
        }
        if had_events {
            continue;
        }
        let next = p.wake.unwrap_or(until).max(t + Duration::from_millis(1));
        if t >= until {
            return run;
        }
        t = next.min(until);
    }
}

/// The JSON at a `/`-separated pointer, as a string (empty when absent).
pub fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// `metadata.resourceVersion` as a number (resourceVersions are opaque strings; the fake's and
/// etcd's are numbers, which is what comparing them needs).
#[track_caller]
pub fn rv_of(v: &Value) -> u64 {
    let rv = str_at(v, "/metadata/resourceVersion");
    rv.parse().unwrap_or_else(|_| panic!("a numeric resourceVersion in {v:#}"))
}

/// The names of a list's items, in order.
pub fn names(list: &Value) -> Vec<String> {
    list["items"].as_array().into_iter().flatten().map(|i| str_at(i, "/metadata/name").to_owned()).collect()
}

/// The `(reason, field)` of each cause of a `Status` body.
pub fn causes(status: &Value) -> Vec<(String, String)> {
    status["details"]["causes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (str_at(c, "/reason").to_owned(), str_at(c, "/field").to_owned()))
        .collect()
}

/// A raw request, for what the core's builders will not build (broken bodies, wrong verbs).
pub fn raw(method: &str, path: &str, content_type: Option<&str>, body: impl Into<Vec<u8>>) -> http::Request<Vec<u8>> {
    let mut b = http::Request::builder().method(method).uri(path).header("accept", "application/json");
    if let Some(ct) = content_type {
        b = b.header("content-type", ct);
    }
    b.body(body.into()).expect("a valid request")
}

/// A plain `ConfigMap` body (`apiVersion`, `kind`, name, labels and data).
pub fn configmap(name: &str, labels: &[(&str, &str)], data: &[(&str, &str)]) -> Value {
    let labels: serde_json::Map<String, Value> =
        labels.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect();
    let data: serde_json::Map<String, Value> = data.iter().map(|(k, v)| ((*k).to_owned(), Value::from(*v))).collect();
    let mut v = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data});
    if !labels.is_empty() {
        v["metadata"]["labels"] = Value::Object(labels);
    }
    v
}
