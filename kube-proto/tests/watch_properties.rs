//! Property tests of the watch decoder and of response parsing:
//!
//! - any chunking of a valid watch stream decodes to exactly the events of the whole stream,
//!   which are the events it was built from;
//! - random bytes never panic the decoder, and still obey its line accounting;
//! - random and truncated bodies never panic `Response`, and a truncated body is an error;
//! - malformed lines between valid ones are errors with their own line numbers, and the valid
//!   lines around them still decode;
//! - an object of several MiB fed in 16 KiB chunks decodes.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use http::{HeaderMap, HeaderValue, StatusCode};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube_proto::error::StatusMeta;
use kube_proto::watch::{BookmarkMeta, WatchDecodeErrorKind};
use kube_proto::{
    Bookmark, DynamicObject, ObjectList, PartialObjectMeta, Reason, Response, ResponseError, Status, WatchDecodeError,
    WatchDecoder, WatchEvent,
};
use proptest::prelude::*;
use proptest::sample::Index;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

type Decoded<K> = Vec<Result<WatchEvent<K>, WatchDecodeError>>;

// ---- Decoding helpers ----

/// Feeds the chunks one by one, draining events after each, then finishes the stream.
fn decode<K: DeserializeOwned + 'static>(chunks: &[&[u8]]) -> Decoded<K> {
    let mut d = WatchDecoder::<K>::new();
    let mut out = Vec::new();
    for chunk in chunks {
        d.push(chunk);
        while let Some(e) = d.next_event() {
            out.push(e);
        }
    }
    if let Some(e) = d.finish() {
        out.push(e);
    }
    assert_eq!(d.buffered(), 0, "finish leaves nothing buffered");
    assert!(d.next_event().is_none() && d.finish().is_none(), "a finished decoder is empty");
    out
}

fn decode_whole<K: DeserializeOwned + 'static>(bytes: &[u8]) -> Decoded<K> {
    decode(&[bytes])
}

/// How a body is cut into chunks.
#[derive(Debug, Clone)]
enum Chunking {
    /// At these (arbitrary) offsets.
    Cuts(Vec<Index>),
    /// Every `n` bytes (1 is byte by byte).
    Every(usize),
}

fn chunking() -> impl Strategy<Value = Chunking> {
    prop_oneof![
        4 => prop::collection::vec(any::<Index>(), 0..32).prop_map(Chunking::Cuts),
        1 => (1usize..9).prop_map(Chunking::Every),
    ]
}

fn split<'a>(bytes: &'a [u8], how: &Chunking) -> Vec<&'a [u8]> {
    match how {
        Chunking::Every(n) => bytes.chunks(*n).collect(),
        Chunking::Cuts(cuts) => {
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
            at.push(0);
            at.push(bytes.len());
            at.sort_unstable();
            // Empty chunks are kept on purpose: pushing nothing must be harmless.
            at.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
        }
    }
}

/// How many results a body must give: one per line with anything but ASCII whitespace.
fn non_blank_lines(bytes: &[u8]) -> usize {
    bytes.split(|&b| b == b'\n').filter(|l| l.iter().any(|b| !b.is_ascii_whitespace())).count()
}

/// Every error carries its own (1-based) line number among the non-blank lines.
fn assert_line_numbers<K>(out: &Decoded<K>) {
    for (i, r) in out.iter().enumerate() {
        if let Err(e) = r {
            assert_eq!(e.line, i as u64 + 1, "{e}");
            assert!(e.len > 0, "{e}");
        }
    }
}

// ---- Realistic events ----

/// One event of a generated stream.
#[derive(Debug, Clone)]
enum Ev {
    /// ADDED, MODIFIED or DELETED of an object, with `type` before `object` (as the server
    /// writes it) or after.
    Object { ty: &'static str, obj: Value, type_first: bool },
    /// A progress bookmark, or the one that ends a streaming list's initial events.
    Bookmark { rv: u64, initial_events_end: bool },
    /// 410 Expired inside the stream.
    Expired { asked: u64, oldest: u64 },
}

impl Ev {
    fn line(&self) -> String {
        match self {
            Ev::Object { ty, obj, type_first: true } => format!(r#"{{"type":"{ty}","object":{obj}}}"#),
            Ev::Object { ty, obj, type_first: false } => format!(r#"{{"object":{obj},"type":"{ty}"}}"#),
            Ev::Bookmark { rv, initial_events_end } => {
                let ann =
                    if *initial_events_end { r#","annotations":{"k8s.io/initial-events-end":"true"}"# } else { "" };
                format!(
                    r#"{{"type":"BOOKMARK","object":{{"kind":"ConfigMap","apiVersion":"v1","metadata":{{"resourceVersion":"{rv}"{ann}}}}}}}"#
                )
            }
            Ev::Expired { asked, oldest } => format!(
                r#"{{"type":"ERROR","object":{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":"too old resource version: {asked} ({oldest})","reason":"Expired","code":410}}}}"#
            ),
        }
    }

    /// The event this line must decode to, built without the decoder.
    fn expected<K: DeserializeOwned + 'static>(&self) -> WatchEvent<K> {
        match self {
            Ev::Object { ty, obj, .. } => {
                let k: K = serde_json::from_value(obj.clone()).expect("generated objects are valid");
                match *ty {
                    "ADDED" => WatchEvent::Added(k),
                    "MODIFIED" => WatchEvent::Modified(k),
                    _ => WatchEvent::Deleted(k),
                }
            }
            Ev::Bookmark { rv, initial_events_end } => {
                let mut annotations = BTreeMap::new();
                if *initial_events_end {
                    annotations.insert("k8s.io/initial-events-end".to_owned(), "true".to_owned());
                }
                WatchEvent::Bookmark(Bookmark {
                    metadata: BookmarkMeta { resource_version: rv.to_string(), annotations },
                })
            }
            Ev::Expired { asked, oldest } => WatchEvent::Error(Status {
                status: "Failure".into(),
                code: 410,
                reason: Reason::Expired,
                message: format!("too old resource version: {asked} ({oldest})"),
                details: None,
                metadata: StatusMeta::default(),
            }),
        }
    }

    fn is_pod(&self) -> bool {
        matches!(self, Ev::Object { obj, .. } if obj["kind"] == "Pod")
    }
}

fn dns_name() -> impl Strategy<Value = String> {
    "[a-z0-9]([-a-z0-9]{0,14}[a-z0-9])?"
}

/// Text with everything JSON must escape or that is more than one byte in UTF-8.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ._-]{0,24}",
        "(?s).{0,24}",
        "[\n\r\t\"\\\\/ \u{0}-\u{1f}\u{7f}]{0,8}",
        "[é✓日本語😀\u{2028}\u{2029}\u{feff}a\n]{0,16}",
        Just("line one\nline two\r\n\t\"quoted\" back\\slash {\"not\":\"json\"}\n".to_owned()),
    ]
}

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("(example\\.com/)?[a-z]{1,8}", "[a-z0-9]{0,8}", 0..3)
}

fn configmap() -> impl Strategy<Value = Value> {
    (
        dns_name(),
        dns_name(),
        1u64..10_000_000,
        labels(),
        prop::collection::btree_map("[a-zA-Z0-9._-]{1,12}", text(), 0..4),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..24)),
    )
        .prop_map(|(ns, name, rv, labels, data, binary)| {
            let mut cm = json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "uid": format!("{rv:08x}-0c43-41f8-85d8-3bfff8888e46"),
                    "resourceVersion": rv.to_string(),
                    "creationTimestamp": "2026-11-25T23:09:32Z",
                    "labels": labels,
                },
                "data": data,
            });
            if let Some(bytes) = binary {
                cm["binaryData"] = json!({"blob": base64::engine::general_purpose::STANDARD.encode(bytes)});
            }
            cm
        })
}

fn pod() -> impl Strategy<Value = Value> {
    (
        dns_name(),
        dns_name(),
        1u64..10_000_000,
        labels(),
        text(),
        prop::sample::select(vec!["Pending", "Running", "Succeeded"]),
    )
        .prop_map(|(ns, name, rv, labels, cmd, phase)| {
            json!({
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": name, "namespace": ns, "resourceVersion": rv.to_string(), "labels": labels,
                             "annotations": {"note": cmd}},
                "spec": {"containers": [{"name": "app", "image": "busybox:1.36", "command": ["sh", "-c", cmd]}],
                         "restartPolicy": "Always"},
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "False"}]},
            })
        })
}

fn object_event(obj: impl Strategy<Value = Value>) -> impl Strategy<Value = Ev> {
    (prop::sample::select(vec!["ADDED", "MODIFIED", "DELETED"]), obj, prop::bool::weighted(0.8))
        .prop_map(|(ty, obj, type_first)| Ev::Object { ty, obj, type_first })
}

fn other_event() -> impl Strategy<Value = Ev> {
    prop_oneof![
        (1u64..u64::MAX, any::<bool>()).prop_map(|(rv, initial_events_end)| Ev::Bookmark { rv, initial_events_end }),
        (1u64..1000, 1000u64..100_000).prop_map(|(asked, oldest)| Ev::Expired { asked, oldest }),
    ]
}

fn event() -> impl Strategy<Value = Ev> {
    prop_oneof![4 => object_event(configmap()), 3 => object_event(pod()), 2 => other_event()]
}

fn configmap_event() -> impl Strategy<Value = Ev> {
    prop_oneof![4 => object_event(configmap()), 1 => other_event()]
}

/// How lines are laid out: line endings, blank lines, and whether the last line ends.
#[derive(Debug, Clone)]
struct Layout {
    crlf: Vec<bool>,
    blanks: Vec<Option<&'static str>>,
    terminated: bool,
}

fn layout() -> impl Strategy<Value = Layout> {
    (
        prop::collection::vec(prop::bool::weighted(0.3), 64),
        prop::collection::vec(
            prop::option::weighted(0.15, prop::sample::select(vec!["\n", "\r\n", "  \n", "\t \r\n", "\n\n"])),
            64,
        ),
        prop::bool::weighted(0.8),
    )
        .prop_map(|(crlf, blanks, terminated)| Layout { crlf, blanks, terminated })
}

/// The stream of these lines, laid out as asked.
fn stream(lines: &[String], layout: &Layout) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some(blank) = layout.blanks[i % layout.blanks.len()] {
            out.extend_from_slice(blank.as_bytes());
        }
        out.extend_from_slice(line.as_bytes());
        let last = i + 1 == lines.len();
        if !last || layout.terminated {
            out.extend_from_slice(if layout.crlf[i % layout.crlf.len()] { b"\r\n" } else { b"\n" });
        }
    }
    out
}

fn ok_events<K: std::fmt::Debug>(out: Decoded<K>) -> Vec<WatchEvent<K>> {
    out.into_iter().map(|r| r.unwrap_or_else(|e| panic!("a valid line did not decode: {e}"))).collect()
}

// ---- (a) Any chunking of a valid stream ----

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// ConfigMaps and Pods (as dynamic objects and as metadata only), bookmarks and errors.
    #[test]
    fn any_chunking_gives_the_events_of_the_whole(
        events in prop::collection::vec(event(), 0..24),
        layout in layout(),
        how in chunking(),
    ) {
        let lines: Vec<String> = events.iter().map(Ev::line).collect();
        let bytes = stream(&lines, &layout);
        let chunks = split(&bytes, &how);

        let whole = ok_events(decode_whole::<DynamicObject>(&bytes));
        let expected: Vec<WatchEvent<DynamicObject>> = events.iter().map(Ev::expected).collect();
        prop_assert_eq!(&whole, &expected);
        prop_assert_eq!(ok_events(decode::<DynamicObject>(&chunks)), expected);

        let meta: Vec<WatchEvent<PartialObjectMeta<Pod>>> = events.iter().map(Ev::expected).collect();
        prop_assert_eq!(ok_events(decode::<PartialObjectMeta<Pod>>(&chunks)), meta);
    }

    /// A stream of one typed kind, decoded as that type.
    #[test]
    fn any_chunking_of_a_typed_stream(
        events in prop::collection::vec(configmap_event(), 1..16),
        layout in layout(),
        how in chunking(),
    ) {
        let lines: Vec<String> = events.iter().map(Ev::line).collect();
        let bytes = stream(&lines, &layout);
        let expected: Vec<WatchEvent<ConfigMap>> = events.iter().map(Ev::expected).collect();
        prop_assert_eq!(ok_events(decode::<ConfigMap>(&split(&bytes, &how))), expected);
    }

    /// The streams a real kube-apiserver sent, in any chunking.
    #[test]
    fn recorded_streams_in_any_chunking(how in chunking(), crlf in any::<bool>()) {
        let bytes = recorded_stream(crlf);
        let whole = decode_whole::<DynamicObject>(&bytes);
        prop_assert_eq!(whole.len(), non_blank_lines(&bytes));
        let whole = ok_events(whole);
        prop_assert_eq!(ok_events(decode::<DynamicObject>(&split(&bytes, &how))), whole);
    }

    /// Pods in a stream decoded as `Pod` (the ConfigMaps and Pods interleaved decode as
    /// dynamic objects above; here every object is a Pod).
    #[test]
    fn any_chunking_of_a_pod_stream(
        events in prop::collection::vec(prop_oneof![3 => object_event(pod()), 1 => other_event()], 1..12),
        how in chunking(),
    ) {
        let lines: Vec<String> = events.iter().map(Ev::line).collect();
        let bytes = stream(&lines, &Layout { crlf: vec![false], blanks: vec![None], terminated: true });
        prop_assert!(events.iter().all(|e| !matches!(e, Ev::Object { .. }) || e.is_pod()), "only Pods");
        let expected: Vec<WatchEvent<Pod>> = events.iter().map(Ev::expected).collect();
        prop_assert_eq!(ok_events(decode::<Pod>(&split(&bytes, &how))), expected);
    }
}

/// Every watch stream recorded from the real API server, one event per line, with `type` first
/// as the server writes it.
fn recorded_stream(crlf: bool) -> Vec<u8> {
    static LF: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let lf = LF.get_or_init(read_recorded_stream);
    if crlf {
        lf.split_inclusive(|&b| b == b'\n').flat_map(|l| [&l[..l.len() - 1], b"\r\n"].concat()).collect()
    } else {
        lf.clone()
    }
}

// Tests that read fixtures allow this lint explicitly (see clippy.toml).
#[allow(clippy::disallowed_methods)]
fn read_recorded_stream() -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apiserver-v1.36");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("fixtures").map(|e| e.unwrap().path()).collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        if f.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        let Some(lines) = v["response"]["body_lines"].as_array() else { continue };
        for l in lines {
            out.extend_from_slice(format!(r#"{{"type":{},"object":{}}}"#, l["type"], l["object"]).as_bytes());
            out.push(b'\n');
        }
    }
    assert!(out.len() > 10_000, "the recorded streams are there");
    out
}

#[test]
fn recorded_streams_byte_by_byte() {
    let bytes = recorded_stream(false);
    let whole = ok_events(decode_whole::<DynamicObject>(&bytes));
    assert_eq!(whole.len(), non_blank_lines(&bytes));
    let types: Vec<_> = whole.iter().map(WatchEvent::type_name).collect();
    for t in ["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"] {
        assert!(types.contains(&t), "{t}");
    }
    assert!(whole.iter().any(|e| matches!(e, WatchEvent::Bookmark(b) if b.is_initial_events_end())));
    assert!(whole.iter().any(|e| matches!(e, WatchEvent::Error(s) if s.code == 410 && s.reason == Reason::Expired)));
    assert_eq!(ok_events(decode::<DynamicObject>(&bytes.chunks(1).collect::<Vec<_>>())), whole);
}

// ---- (b) Random bytes never panic the decoder ----

/// Bytes that are mostly JSON punctuation, watch keywords and newlines, with anything mixed in.
fn jsonish_bytes() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        3 => any::<u8>().prop_map(|b| vec![b]),
        2 => prop::sample::select(vec![
            "{", "}", "[", "]", ":", ",", "\"", "\\", "\n", "\r\n", " ", "\"type\"", "\"object\"", "\"ADDED\"",
            "\"BOOKMARK\"", "\"ERROR\"", "\"metadata\"", "\"resourceVersion\"", "null", "true", "1e999", "-0",
            "\\u00e9", "\\ud800", "é", "\u{feff}",
        ])
        .prop_map(|s| s.as_bytes().to_vec()),
        1 => prop::sample::select(vec![0xffu8, 0xc3, 0xe2, 0xf0, 0x80, 0x00]).prop_map(|b| vec![b]),
    ];
    prop::collection::vec(token, 0..400).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_never_panic_the_decoder(
        bytes in prop_oneof![prop::collection::vec(any::<u8>(), 0..1024), jsonish_bytes()],
        how in chunking(),
    ) {
        let whole = decode_whole::<DynamicObject>(&bytes);
        prop_assert_eq!(whole.len(), non_blank_lines(&bytes));
        assert_line_numbers(&whole);
        prop_assert_eq!(decode::<DynamicObject>(&split(&bytes, &how)), whole);
        // Other target types take the same path to the same line accounting.
        prop_assert_eq!(decode::<ConfigMap>(&split(&bytes, &how)).len(), non_blank_lines(&bytes));
        prop_assert_eq!(decode::<Value>(&split(&bytes, &how)).len(), non_blank_lines(&bytes));
    }

    /// Valid events with random bytes spliced in somewhere.
    #[test]
    fn valid_streams_with_random_damage_never_panic(
        events in prop::collection::vec(event(), 1..8),
        at in any::<Index>(),
        junk in prop::collection::vec(any::<u8>(), 1..16),
        how in chunking(),
    ) {
        let lines: Vec<String> = events.iter().map(Ev::line).collect();
        let mut bytes = stream(&lines, &Layout { crlf: vec![false], blanks: vec![None], terminated: true });
        let at = at.index(bytes.len() + 1);
        bytes.splice(at..at, junk);
        let whole = decode_whole::<Pod>(&bytes);
        prop_assert_eq!(whole.len(), non_blank_lines(&bytes));
        assert_line_numbers(&whole);
        prop_assert_eq!(decode::<Pod>(&split(&bytes, &how)), whole);
    }
}

#[test]
fn reset_forgets_a_partial_line_and_the_line_count() {
    let mut d = WatchDecoder::<ConfigMap>::new();
    d.push(b"not json\n{\"type\":\"ADD");
    assert_eq!(d.next_event().unwrap().unwrap_err().line, 1);
    assert!(d.buffered() > 0);
    d.reset();
    assert_eq!(d.buffered(), 0);
    d.push(b"garbage\n");
    assert_eq!(d.next_event().unwrap().unwrap_err().line, 1);
}

// ---- (c) Responses: random and truncated bodies ----

fn status_code() -> impl Strategy<Value = StatusCode> {
    prop_oneof![
        3 => prop::sample::select(vec![200u16, 201, 202, 204, 400, 401, 403, 404, 409, 410, 422, 429, 500, 503, 504]),
        1 => 100u16..1000,
    ]
    .prop_map(|c| StatusCode::from_u16(c).unwrap())
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    (
        prop::option::of(prop::sample::select(vec!["application/json", "text/plain; charset=utf-8", "text/html", ""])),
        prop::option::of("[ -~]{0,6}"),
    )
        .prop_map(|(ct, retry)| {
            let mut h = HeaderMap::new();
            if let Some(ct) = ct {
                h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ct));
            }
            if let Some(r) = retry {
                h.insert(http::header::RETRY_AFTER, HeaderValue::from_str(&r).unwrap());
            }
            h
        })
}

/// Reads a body every way there is; none of them may panic, and every error must display.
fn read_every_way(status: StatusCode, headers: &HeaderMap, body: &[u8]) {
    let r = Response::new(status, headers, body);
    let errors = [
        r.object::<Pod>().err(),
        r.object::<Value>().err(),
        r.list::<Pod>().err(),
        r.delete::<Pod>().err(),
        r.delete::<ObjectList<Pod>>().err(),
        r.text().err(),
        Some(r.error()),
    ];
    for e in errors.into_iter().flatten() {
        let _ = (e.to_string(), e.is_not_found(), e.is_gone(), e.is_conflict(), e.retry_after(), e.reason());
        assert_eq!(e.http_status(), status.as_u16());
    }
    if !status.is_success() {
        assert!(r.object::<Pod>().is_err() && r.text().is_err());
    }
}

/// What a truncated JSON body must read as: `NotJson` if nothing but whitespace is left, else
/// `Decode`.
#[track_caller]
fn assert_truncated<T: std::fmt::Debug>(got: Result<T, ResponseError>, prefix: &[u8]) {
    let blank = prefix.iter().all(u8::is_ascii_whitespace);
    match got {
        Err(ResponseError::NotJson { status: 200, len, .. }) if blank => assert_eq!(len, prefix.len()),
        Err(ResponseError::Decode { status: 200, ref message, .. }) if !blank => assert!(!message.is_empty()),
        other => panic!("{} bytes of a truncated body read as {other:?}", prefix.len()),
    }
}

#[allow(clippy::disallowed_methods)]
fn fixture_body(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apiserver-v1.36").join(name);
    let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    serde_json::to_vec(&v["response"]["body"]).unwrap()
}

#[test]
fn every_truncation_of_real_bodies_is_an_error() {
    let ok = StatusCode::OK;
    let h = HeaderMap::new();
    let pod = fixture_body("create-pod.json");
    let pods = fixture_body("list-pods.json");
    let status = fixture_body("get-configmap-notfound.json");
    let mut padded = b" \r\n\t".to_vec();
    padded.extend_from_slice(&pod);
    // Whole, they read.
    assert!(Response::new(ok, &h, &pod).object::<Pod>().is_ok());
    assert!(Response::new(ok, &h, &padded).object::<Pod>().is_ok());
    assert!(!Response::new(ok, &h, &pods).list::<Pod>().unwrap().items.is_empty());
    assert!(Response::new(ok, &h, &status).delete::<Pod>().unwrap().is_status());
    for cut in 0..pod.len() {
        let b = &pod[..cut];
        assert_truncated(Response::new(ok, &h, b).object::<Pod>(), b);
        assert_truncated(Response::new(ok, &h, b).delete::<Pod>(), b);
    }
    for cut in 0..padded.len() {
        let b = &padded[..cut];
        assert_truncated(Response::new(ok, &h, b).object::<Pod>(), b);
    }
    for cut in 0..pods.len() {
        let b = &pods[..cut];
        assert_truncated(Response::new(ok, &h, b).list::<Pod>(), b);
    }
    for cut in 0..status.len() {
        let b = &status[..cut];
        assert_truncated(Response::new(ok, &h, b).delete::<Pod>(), b);
        // As an error, a cut Status is not a Status.
        let e = Response::new(StatusCode::NOT_FOUND, &h, b).error();
        assert!(matches!(e, ResponseError::NotJson { .. } | ResponseError::UnexpectedBody { .. }), "{e:?}");
        assert!(e.is_not_found());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bodies_never_panic_a_response(
        status in status_code(),
        headers in headers(),
        body in prop_oneof![prop::collection::vec(any::<u8>(), 0..512), jsonish_bytes()],
    ) {
        read_every_way(status, &headers, &body);
    }

    #[test]
    fn truncated_objects_lists_and_statuses_are_errors(
        obj in prop_oneof![configmap(), pod()],
        items in prop::collection::vec(pod(), 0..4),
        cut in any::<Index>(),
        status in status_code(),
        headers in headers(),
        pad in prop::sample::select(vec!["", " ", "\n", "\r\n\t "]),
    ) {
        let ok = StatusCode::OK;
        let h = HeaderMap::new();
        let mut one = pad.as_bytes().to_vec();
        one.extend_from_slice(&serde_json::to_vec(&obj).unwrap());
        let list = serde_json::to_vec(&json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"}, "items": items})).unwrap();
        let st = serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409,
            "reason": "Conflict", "message": obj.to_string(), "details": {"causes": [{"message": "é\n"}]}})).unwrap();

        // Whole bodies read as what they are.
        prop_assert!(Response::new(ok, &h, &one).object::<DynamicObject>().is_ok());
        prop_assert!(Response::new(ok, &h, &one).delete::<DynamicObject>().unwrap().object().is_some());
        prop_assert_eq!(Response::new(ok, &h, &list).list::<Pod>().unwrap().items.len(), items.len());
        let conflict = Response::new(StatusCode::CONFLICT, &h, &st).error();
        prop_assert!(conflict.is_conflict());

        // Cut anywhere before the end, they are errors; nothing panics whatever the status.
        let b = &one[..cut.index(one.len())];
        assert_truncated(Response::new(ok, &h, b).object::<DynamicObject>(), b);
        assert_truncated(Response::new(ok, &h, b).delete::<DynamicObject>(), b);
        read_every_way(status, &headers, b);
        let b = &list[..cut.index(list.len())];
        assert_truncated(Response::new(ok, &h, b).list::<Pod>(), b);
        read_every_way(status, &headers, b);
        let b = &st[..cut.index(st.len())];
        assert_truncated(Response::new(ok, &h, b).delete::<Pod>(), b);
        let e = Response::new(StatusCode::CONFLICT, &h, b).error();
        prop_assert!(matches!(e, ResponseError::NotJson { .. } | ResponseError::UnexpectedBody { .. }), "{:?}", e);
        read_every_way(status, &headers, b);
    }
}

// ---- (d) Malformed lines between valid ones ----

/// A line that is not a valid event, and contains no newline and something besides whitespace.
fn malformed_line() -> impl Strategy<Value = Vec<u8>> {
    let fixed = prop::sample::select(vec![
        "not json",
        "{",
        "}",
        "[]",
        "null",
        "42",
        "\"ADDED\"",
        "{}",
        r#"{"type":"NOPE","object":{}}"#,
        r#"{"type":"added","object":{}}"#,
        r#"{"type":"ADDED"}"#,
        r#"{"object":{"kind":"ConfigMap"}}"#,
        r#"{"type":"ADDED","object":[]}"#,
        r#"{"type":"ADDED","object":{"metadata":{"name":1}}}"#,
        r#"{"type":"MODIFIED","object":{"metadata":{"labels":["a"]}}}"#,
        r#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":5}}}"#,
        // (An ERROR whose Status has a wrong-typed or out-of-range field is not malformed: the
        // Status is read leniently, see tests/status_lenient.rs. One that is not an object is.)
        r#"{"type":"ERROR","object":"410"}"#,
        r#"{"type":"ERROR","object":[410]}"#,
        r#"{"type":"DELETED","object":{}} trailing"#,
        r#"{"type":"DELETED","object":{}}{"type":"DELETED","object":{}}"#,
        r#"{"type":"ADDED","object":{"metadata":{"name":"a\q"}}}"#,
        r#"{"type":"ADDED","object":{"metadata":{"name":"\ud800"}}}"#,
        "\u{feff}{\"type\":\"DELETED\",\"object\":{}}",
    ])
    .prop_map(|s| s.as_bytes().to_vec());
    let truncated = (event(), any::<Index>()).prop_map(|(e, cut)| {
        let line = e.line().into_bytes();
        // At least one byte, never the whole line.
        line[..1 + cut.index(line.len() - 1)].to_vec()
    });
    let bad_utf8 =
        (event(), any::<Index>(), prop::sample::select(vec![vec![0xffu8], vec![0xc3], vec![0xed, 0xa0, 0x80]]))
            .prop_map(|(e, at, bad)| {
                let mut line = e.line().into_bytes();
                let at = at.index(line.len() + 1);
                line.splice(at..at, bad);
                line
            });
    let garbage =
        prop::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..40).prop_map(|mut g| {
            // Something visible and not '{' first, so it is neither blank nor a JSON object.
            g.insert(0, b'#');
            g
        });
    prop_oneof![3 => fixed, 2 => truncated, 1 => bad_utf8, 1 => garbage]
}

#[derive(Debug, Clone)]
enum Line {
    Valid(Ev),
    Malformed(Vec<u8>),
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn malformed_lines_do_not_disturb_valid_ones(
        lines in prop::collection::vec(prop_oneof![2 => event().prop_map(Line::Valid), 1 => malformed_line().prop_map(Line::Malformed)], 1..24),
        layout in layout(),
        how in chunking(),
    ) {
        let raw: Vec<Vec<u8>> = lines.iter().map(|l| match l {
            Line::Valid(e) => e.line().into_bytes(),
            Line::Malformed(b) => b.clone(),
        }).collect();
        // Lay the lines out like a valid stream (blank lines, CRLF, maybe no final newline).
        let mut bytes = Vec::new();
        for (i, line) in raw.iter().enumerate() {
            if let Some(blank) = layout.blanks[i % layout.blanks.len()] {
                bytes.extend_from_slice(blank.as_bytes());
            }
            bytes.extend_from_slice(line);
            if i + 1 < raw.len() || layout.terminated {
                bytes.extend_from_slice(if layout.crlf[i % layout.crlf.len()] { b"\r\n" } else { b"\n" });
            }
        }
        let out = decode::<DynamicObject>(&split(&bytes, &how));
        prop_assert_eq!(out.len(), lines.len());
        for (i, (line, got)) in lines.iter().zip(&out).enumerate() {
            match (line, got) {
                (Line::Valid(e), Ok(ev)) => prop_assert_eq!(ev, &e.expected::<DynamicObject>()),
                (Line::Malformed(b), Err(err)) => {
                    prop_assert_eq!(err.line, i as u64 + 1);
                    let trimmed = b.trim_ascii();
                    prop_assert_eq!(err.len, trimmed.len());
                    let last_unterminated = i + 1 == lines.len() && !layout.terminated;
                    prop_assert_eq!(err.message.contains("ended inside"), last_unterminated, "{}", err);
                }
                (Line::Valid(e), Err(err)) => prop_assert!(false, "line {} {:?} failed: {}", i + 1, e.line(), err),
                (Line::Malformed(b), Ok(ev)) => prop_assert!(false, "line {} {:?} decoded as {:?}", i + 1, String::from_utf8_lossy(b), ev),
            }
        }
        // The same with another target type: the same lines fail (a DynamicObject is the most
        // lenient object type, so a Pod fails at least where it does).
        let pods = decode::<Pod>(&split(&bytes, &how));
        prop_assert_eq!(pods.len(), lines.len());
        for (i, (dynamic, pod)) in out.iter().zip(&pods).enumerate() {
            if let Err(e) = dynamic {
                prop_assert_eq!(&pod.as_ref().unwrap_err().line, &e.line, "line {}", i + 1);
            }
        }
    }
}

// ---- (e) A single object of several MiB ----

#[test]
fn a_five_mib_object_in_16_kib_chunks() {
    // 5 MiB of text that needs escaping and is multi-byte, so chunk boundaries fall inside
    // escapes and inside UTF-8 sequences.
    let unit = "é✓ \"quoted\"\nnext\\line\t日本語😀 ";
    let mut value = String::with_capacity(5 * 1024 * 1024 + unit.len());
    while value.len() < 5 * 1024 * 1024 {
        value.push_str(unit);
    }
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "big", "namespace": "default", "resourceVersion": "77"},
                    "data": {"blob": value, "small": "x"}});
    let big = Ev::Object { ty: "ADDED", obj: cm, type_first: true };
    let small = Ev::Bookmark { rv: 78, initial_events_end: true };
    let mut bytes = big.line().into_bytes();
    let line_len = bytes.len();
    assert!(line_len > 5 * 1024 * 1024, "{line_len}");
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(small.line().as_bytes());
    bytes.push(b'\n');

    let mut d = WatchDecoder::<ConfigMap>::new();
    let mut events = Vec::new();
    let mut peak = 0;
    for chunk in bytes.chunks(16 * 1024) {
        d.push(chunk);
        peak = peak.max(d.buffered());
        while let Some(e) = d.next_event() {
            events.push(e.unwrap());
        }
    }
    assert!(d.finish().is_none());
    assert!(peak <= line_len + 2 + 16 * 1024, "buffered at most a line and a chunk: {peak}");
    assert_eq!(events.len(), 2);
    match &events[0] {
        WatchEvent::Added(cm) => {
            let data = cm.data.as_ref().unwrap();
            assert_eq!(data["blob"], value);
            assert_eq!(data["small"], "x");
            assert_eq!(cm.metadata.name.as_deref(), Some("big"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(&events[1], WatchEvent::Bookmark(b) if b.is_initial_events_end() && b.metadata.resource_version == "78")
    );

    // The same object cut short, then finished: one error, not a panic or an event.
    let mut d = WatchDecoder::<ConfigMap>::new();
    for chunk in bytes[..4 * 1024 * 1024].chunks(16 * 1024) {
        d.push(chunk);
        assert!(d.next_event().is_none());
    }
    let err = d.finish().unwrap().unwrap_err();
    assert_eq!((err.line, err.len), (1, bytes[..4 * 1024 * 1024].trim_ascii().len()));
    assert!(err.message.contains("ended inside"), "{err}");
}

// ---- (e) The frame limit ----

/// What a decoder gave for one line, without line numbers or offsets.
#[derive(Debug, PartialEq)]
// Built only in tests, one per line: boxing the event would only add noise.
#[allow(clippy::large_enum_variant)]
enum Outcome<K> {
    Event(WatchEvent<K>),
    Malformed,
    TooLarge,
}

/// Decodes with this frame limit, checking after every push (and drain) that no more than the
/// limit is buffered, and that every error names its line and, when too large, the limit.
fn decode_limited<K: DeserializeOwned + 'static>(chunks: &[&[u8]], limit: usize) -> Vec<Outcome<K>> {
    let mut d = WatchDecoder::<K>::with_max_frame(limit);
    assert_eq!(d.max_frame(), limit);
    let mut out = Vec::new();
    let take = |r: Result<WatchEvent<K>, WatchDecodeError>, out: &mut Vec<Outcome<K>>| {
        out.push(match r {
            Ok(e) => Outcome::Event(e),
            Err(e) => {
                assert_eq!(e.line, out.len() as u64 + 1, "{e}");
                match e.kind {
                    WatchDecodeErrorKind::TooLarge { limit: l, seen } => {
                        assert_eq!(l, limit);
                        assert!(seen > limit && e.len == seen, "{e:?}");
                        Outcome::TooLarge
                    }
                    _ => Outcome::Malformed,
                }
            }
        });
    };
    for chunk in chunks {
        d.push(chunk);
        while let Some(r) = d.next_event() {
            take(r, &mut out);
        }
        assert!(d.buffered() <= limit, "{} bytes buffered over a {limit}-byte limit", d.buffered());
    }
    if let Some(r) = d.finish() {
        take(r, &mut out);
    }
    out
}

/// What a line must give under a limit: too large when it has more bytes than the limit before
/// its newline (blank or not), else what an unlimited decoder gives for it.
fn expected_limited<K: DeserializeOwned + 'static>(bytes: &[u8], limit: usize) -> Vec<Outcome<K>> {
    let mut out = Vec::new();
    let segments: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    let last = segments.len() - 1;
    for (i, seg) in segments.iter().enumerate() {
        if seg.len() > limit {
            out.push(Outcome::TooLarge);
            continue;
        }
        if seg.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut d = WatchDecoder::<K>::with_max_frame(usize::MAX);
        d.push(seg);
        let r = if i == last {
            d.finish()
        } else {
            d.push(b"\n");
            d.next_event()
        }
        .expect("a non-blank line");
        out.push(match r {
            Ok(e) => Outcome::Event(e),
            Err(_) => Outcome::Malformed,
        });
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn lines_over_the_frame_limit_are_reported_in_place_and_the_others_decode(
        lines in prop::collection::vec(prop_oneof![4 => event().prop_map(|e| e.line()), 1 => (0usize..700).prop_map(|n| " ".repeat(n))], 1..16),
        layout in layout(),
        limit in 40usize..600,
        how in chunking(),
    ) {
        let bytes = stream(&lines, &layout);
        let want = expected_limited::<DynamicObject>(&bytes, limit);
        prop_assert_eq!(decode_limited::<DynamicObject>(&split(&bytes, &how), limit), want);
    }
}

#[test]
fn the_default_frame_limit_is_client_gos_16_mib_and_64_mib_without_a_newline_is_not_buffered() {
    assert_eq!(kube_proto::watch::DEFAULT_MAX_FRAME, 16 * 1024 * 1024);
    let mut d = WatchDecoder::<ConfigMap>::new();
    assert_eq!(d.max_frame(), kube_proto::watch::DEFAULT_MAX_FRAME);
    d.push(br#"{"type":"ADDED","object":{"metadata":{"name":"before"}}}"#);
    d.push(b"\n");
    assert!(matches!(d.next_event(), Some(Ok(WatchEvent::Added(_)))));
    let mib = vec![b'x'; 1024 * 1024];
    let mut errors = Vec::new();
    for _ in 0..64 {
        d.push(&mib);
        assert!(d.buffered() <= 16 * 1024 * 1024, "{} bytes buffered", d.buffered());
        while let Some(r) = d.next_event() {
            errors.push(r.expect_err("only the dropped line"));
        }
    }
    assert_eq!(d.buffered(), 0, "the over-long line is not kept");
    assert_eq!(errors.len(), 1, "reported once: {errors:?}");
    let e = &errors[0];
    assert_eq!(e.line, 2);
    assert_eq!(e.kind, WatchDecodeErrorKind::TooLarge { limit: 16 * 1024 * 1024, seen: 17 * 1024 * 1024 });
    assert!(e.to_string().contains("16777216-byte frame limit"), "{e}");
    // The rest of the line is skipped up to its newline; the next line decodes.
    d.push(b"xxxx\n{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"after\"}}}\n");
    match d.next_event() {
        Some(Ok(WatchEvent::Deleted(cm))) => assert_eq!(cm.metadata.name.as_deref(), Some("after")),
        other => panic!("{other:?}"),
    }
    assert!(d.next_event().is_none() && d.finish().is_none());
}

#[test]
fn an_over_long_line_keeps_its_place_when_chunks_are_pushed_before_draining() {
    let ev = |name: &str| format!("{{\"type\":\"ADDED\",\"object\":{{\"metadata\":{{\"name\":\"{name}\"}}}}}}\n");
    let mut d = WatchDecoder::<ConfigMap>::with_max_frame(80);
    d.push(ev("a").as_bytes());
    d.push(&[b'y'; 50]);
    d.push(&[b'y'; 50]); // the line passes 80 bytes here and is dropped
    d.push(&[b'y'; 500]);
    d.push(format!("yy\n{}", ev("b")).as_bytes());
    d.push(&[b'z'; 100]); // a second over-long line, before anything was drained
    d.push(format!("\n{}", ev("c")).as_bytes());
    let mut got = Vec::new();
    while let Some(r) = d.next_event() {
        got.push(match r {
            Ok(WatchEvent::Added(cm)) => cm.metadata.name.unwrap_or_default(),
            Ok(other) => panic!("{other:?}"),
            Err(e) => format!("line {} too large: {:?}", e.line, e.kind),
        });
    }
    assert_eq!(
        got,
        [
            "a",
            "line 2 too large: TooLarge { limit: 80, seen: 100 }",
            "b",
            "line 4 too large: TooLarge { limit: 80, seen: 100 }",
            "c"
        ]
    );
}

#[test]
fn a_body_that_ends_inside_an_over_long_line_reports_it_once() {
    let mut d = WatchDecoder::<ConfigMap>::with_max_frame(10);
    d.push(b"0123456789abc");
    // Not drained: finish reports it.
    let e = d.finish().expect("reported").expect_err("too large");
    assert_eq!((e.line, e.kind), (1, WatchDecodeErrorKind::TooLarge { limit: 10, seen: 13 }));
    assert!(d.finish().is_none());
    // Drained first: finish has nothing more to say, and the decoder starts afresh.
    d.push(b"0123456789abc");
    assert!(d.next_event().expect("reported").is_err());
    d.push(b"def");
    assert!(d.next_event().is_none());
    assert!(d.finish().is_none());
    d.push(b"{\"type\":\"ADDED\",\"object\":{}}");
    assert_eq!(d.buffered(), 0, "a new stream after finish: still limited to 10 bytes");
    let e = d.finish().expect("reported").expect_err("too large");
    assert_eq!(e.line, 1);
}
