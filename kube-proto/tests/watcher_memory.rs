//! The watcher's own memory does not grow with the number of objects it has listed.
//!
//! An instrumented global allocator (`stats_alloc`) counts the bytes allocated and freed; around
//! each of the watcher's own calls (its constructor, every `poll`/`on_*` call, and the dropping of
//! whatever it hands out: events and requests) the test takes the change, bytes allocated minus
//! bytes freed (reallocations included), and adds it to a running sum. What the sum holds after
//! the initial list is what the watcher itself holds. The fake API server, the response bodies and
//! the test's own bookkeeping are not counted, as they allocate between those calls.
//!
//! The allocator counts every thread, so this binary has a single `#[test]`: while it runs, no
//! other test thread allocates, and the test harness's main thread only waits for it. Everything
//! runs on that one thread in simulated time, so the figures are exact and the same on every run.
#![forbid(unsafe_code)]
#![allow(clippy::disallowed_methods)] // one origin instant per run; time then stands still

use std::alloc::System;
use std::time::Instant;

use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube_proto::watcher::{Action, Config, Event, Watcher, WatcherError};
use kube_proto::{PostParams, Request, Response};
use kube_proto_fake::{FakeApiServer, FakeConfig, Reply};
use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

// ---- Counting the heap around the watcher's calls only ----

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The heap the counted calls have left behind, in bytes, and the most it was after any call.
#[derive(Default)]
struct Tally {
    live: isize,
    peak: isize,
}

impl Tally {
    /// Runs `f` and adds what it left on the heap (bytes allocated minus bytes freed) to the tally.
    fn counted<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let region = Region::new(GLOBAL);
        let r = f();
        let change = region.change();
        self.live += change.bytes_allocated as isize - change.bytes_deallocated as isize;
        self.peak = self.peak.max(self.live);
        r
    }
}

// ---- The scenario ----

/// The size of the chunks response bodies are fed in.
const CHUNK: usize = 16 * 1024;

/// A Pod of the same size whatever `i` (fixed-width name, a 1 KiB annotation).
fn pod(i: usize) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("web-{i:06}"),
            "labels": {"app": "web", "tier": "frontend"},
            "annotations": {"example.com/blob": format!("{i:06}").repeat(1024 / 6)},
        },
        "spec": {"containers": [{"name": "web", "image": "registry.example.com/web:1.0", "args": ["--port=8080"]}]},
    })
}

/// What one run measured, in bytes (`retained_*` and `peak` relative to before the watcher).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Figures {
    objects: usize,
    /// The list responses' bodies.
    list_bytes: usize,
    /// Held by the watcher once InitDone has been handed out (and dropped).
    retained_init_done: isize,
    /// Held by the watcher once it has sent its watch and read the watch's response head.
    retained_watching: isize,
    /// The most the watcher (with the event in hand) held after any of its calls (what a call
    /// allocates and frees again before it returns is not seen).
    peak: isize,
}

fn run(objects: usize, config: Config) -> Figures {
    let t0 = Instant::now();
    let mut fake = FakeApiServer::new(FakeConfig::default(), t0);
    let api = Request::namespaced::<Pod>("default");
    for i in 0..objects {
        let reply = fake.handle(t0, &api.create(&PostParams::default(), &pod(i)).unwrap());
        assert_eq!(reply.into_response().map(|r| r.status().as_u16()), Some(201));
    }

    let mut tally = Tally::default();
    let mut w = tally.counted(|| Watcher::<Pod>::new(api.clone(), config).unwrap());
    let (mut list_bytes, mut applied, mut retained_init_done) = (0, 0, None);
    loop {
        match tally.counted(|| w.poll(t0)) {
            Action::Emit(event) => {
                let done = matches!(event, Event::InitDone);
                applied += usize::from(matches!(event, Event::InitApply(_)));
                tally.counted(|| drop(event));
                if done {
                    retained_init_done = Some(tally.live);
                }
            }
            Action::Send(id, req) => match fake.handle(t0, &req) {
                Reply::Response(resp) => {
                    tally.counted(|| drop(req));
                    list_bytes += resp.body().len();
                    tally.counted(|| w.on_response(t0, id, resp.status(), resp.headers()));
                    for chunk in resp.body().chunks(CHUNK) {
                        tally.counted(|| w.on_body(t0, id, chunk));
                    }
                    tally.counted(|| w.on_end(t0, id));
                }
                Reply::Watch { head, .. } => {
                    tally.counted(|| drop(req));
                    tally.counted(|| w.on_response(t0, id, head.status(), head.headers()));
                    break;
                }
                Reply::Upgrade { .. } => panic!("a watcher's request switched protocols"),
            },
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(applied, objects);
    let retained_init_done = retained_init_done.expect("InitDone was emitted");
    let retained_watching = tally.live;
    // The watcher is dropped uncounted: the tally ends here.
    drop(w);
    Figures { objects, list_bytes, retained_init_done, retained_watching, peak: tally.peak }
}

fn show(what: &str, f: &Figures) {
    println!(
        "{what:<22} {:>6} objects, list {:>9} bytes: retained after InitDone {:>7} bytes, while watching {:>7} bytes; peak {:>9} bytes",
        f.objects, f.list_bytes, f.retained_init_done, f.retained_watching, f.peak
    );
}

/// The bound: the large list leaves at most twice what the small one does, plus a little.
fn assert_flat(small: &Figures, large: &Figures) {
    for (s, l) in
        [(small.retained_init_done, large.retained_init_done), (small.retained_watching, large.retained_watching)]
    {
        assert!(l <= 2 * s + 4096, "retained {l} bytes after {} objects, {s} after {}", large.objects, small.objects);
        assert!(
            (l as usize) < large.list_bytes / 100,
            "retained {l} bytes, the objects are {} bytes",
            large.list_bytes
        );
    }
}

/// The binary's only `#[test]` (see the top of the file): its checks run one after the other on
/// one thread, so nothing else allocates while the watcher is measured.
#[test]
fn watcher_memory_and_list_reading() {
    retained_memory_does_not_grow_with_the_objects_listed();
    lists_are_read_as_response_list_reads_them();
}

fn retained_memory_does_not_grow_with_the_objects_listed() {
    println!(
        "size_of::<Watcher<Pod>>() = {} bytes (size_of::<Pod>() = {}, size_of::<Action<Pod>>() = {})",
        std::mem::size_of::<Watcher<Pod>>(),
        std::mem::size_of::<Pod>(),
        std::mem::size_of::<Action<Pod>>()
    );
    let mut measured = Vec::new();
    for (what, config) in
        [("pages of 500 (default)", Config::default()), ("one page", Config { page_size: None, ..Config::default() })]
    {
        let small = run(100, config.clone());
        let large = run(10_000, config.clone());
        show(what, &small);
        show(what, &large);
        // Deterministic: the same run measures the same.
        assert_eq!(run(100, config), small);
        measured.push((small, large));
    }
    for (small, large) in &measured {
        assert_flat(small, large);
    }
}

/// The watcher reads a list page straight into its items, without `ObjectList`'s buffering (part
/// of keeping its memory low); it reads every body as `Response::list` does, errors included.
fn lists_are_read_as_response_list_reads_them() {
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","resourceVersion":"3"},"data":{"k":"v"}}"#;
    let bodies: Vec<Vec<u8>> = [
        format!(
            r#"{{"kind":"ConfigMapList","apiVersion":"v1","metadata":{{"resourceVersion":"7"}},"items":[{cm},{cm}]}}"#
        ),
        r#"{"metadata":{"resourceVersion":"7"},"items":null}"#.to_owned(),
        r#"{"items":[]}"#.to_owned(),
        format!(r#" {{"kind":5,"apiVersion":[],"metadata":{{"resourceVersion":"7"}},"items":[{cm}]}}"#),
        format!(r#"[{{"resourceVersion":"7"}},[{cm}]]"#),
        format!(r#"{{"metadata":{{"resourceVersion":"7"}},"items":[],"items":[{cm}]}}"#),
        r#"{"metadata":null,"items":[]}"#.to_owned(),
        r#"{"metadata":{"resourceVersion":"7"},"items":[{"metadata":{"name":5}}]}"#.to_owned(),
        format!(r#"{{"metadata":{{"resourceVersion":"7"}},"items":[{cm}"#),
        r#"{"metadata":{"resourceVersion":"7"},"items":[],"extra":{"a":[1,2.5,{"b":null}]}}"#.to_owned(),
        "<html>bad gateway</html>".to_owned(),
        String::new(),
    ]
    .into_iter()
    .map(String::into_bytes)
    .chain([b"{\"metadata\":{\"resourceVersion\":\"7\"},\"items\":[],\"x\":\"\xff\"}".to_vec()])
    .collect();
    let t0 = Instant::now();
    let headers = http::HeaderMap::new();
    for body in &bodies {
        let mut w = Watcher::<ConfigMap>::new(Request::namespaced::<ConfigMap>("default"), Config::default()).unwrap();
        let Action::Send(id, _) = w.poll(t0) else { panic!("no list request") };
        w.on_response(t0, id, http::StatusCode::OK, &headers);
        w.on_body(t0, id, body);
        w.on_end(t0, id);
        let mut seen: Vec<Result<Event<ConfigMap>, WatcherError>> = Vec::new();
        loop {
            match w.poll(t0) {
                Action::Emit(e) => seen.push(Ok(e)),
                Action::Error(e) => seen.push(Err(e)),
                Action::Send(..) | Action::Wait { .. } => break,
                Action::Cancel(id) => panic!("cancelled {id}"),
            }
        }
        let text = String::from_utf8_lossy(body);
        match Response::new(http::StatusCode::OK, &headers, body).list::<ConfigMap>() {
            Ok(list) => {
                let mut expected = vec![Ok(Event::Init)];
                expected.extend(list.items.into_iter().map(|cm| Ok(Event::InitApply(cm))));
                expected.push(Ok(Event::InitDone));
                assert_eq!(seen[..expected.len().min(seen.len())], expected, "{text}");
                let rv = list.metadata.resource_version.as_deref().filter(|rv| !rv.is_empty());
                // Without a resourceVersion the watcher also says it has nothing to watch from.
                let complaints = usize::from(rv.is_none());
                assert_eq!(seen.len(), expected.len() + complaints, "{text}");
                assert!(seen[expected.len()..].iter().all(|e| matches!(e, Err(WatcherError::Unexpected(_)))), "{text}");
                assert_eq!(w.resource_version(), rv, "{text}");
            }
            Err(e) => assert_eq!(seen, vec![Err(WatcherError::Response(e))], "{text}"),
        }
    }
}
