//! The watcher consuming a watch stream produced by the fake API server, against plain
//! `serde_json` decoding of the same event lines, in one criterion group so that the ratios come
//! from one run.
//!
//! Setup (not timed): `PODS` realistic ~5 KiB Pods (the generators of `data`) are created in a
//! [`FakeApiServer`] and given their status; a `Watcher<Pod>` lists them (pages of 500) and starts
//! its watch from the list's resourceVersion; then `EVENTS` merge patches modify the Pods, and the
//! bytes the fake sends on that watch are captured (polled after every `BATCH` patches, so that
//! the fake's history only has to hold one batch), together with the list pages' bytes. On the
//! wire an event is ~9.9 KB: the ~5 KiB Pod plus the `managedFields` the fake records for its
//! three writers, as the real server does. The setup takes a few minutes (the fake's merge
//! patches cost ~1.5 ms each); the measurements are of the captured bytes only.
//!
//! Timed, per iteration:
//! - `watcher`: a fresh `Watcher<Pod>` is fed the list pages and then the watch stream, in 16 KiB
//!   chunks, through `on_response`/`on_body`/`on_end`, draining `poll` after every input; every
//!   event is dropped at once. It emits the `PODS` list items and the `EVENTS` watch events.
//! - `kube_core_from_slice` (a): `serde_json::from_slice::<kube_core::WatchEvent<Pod>>` per line
//!   (what kube-rs does; the lines are pre-split for free).
//! - `kube_core_from_str` (b): `from_utf8` + `serde_json::from_str` per line, the best plain decode.
//! - `decoder` (diagnostic): kube-proto's `WatchDecoder<Pod>` alone over the watch stream.
//!
//! Throughput is in watch events (`EVENTS`). Run with
//! `cargo bench -p kube-proto --bench watcher -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use http::{HeaderMap, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kube_proto::watcher::{Action, Config, Event, RequestId, Watcher};
use kube_proto::{Patch, PatchParams, PostParams, Request, Response, WatchDecoder, WatchEvent};
use kube_proto_fake::{FakeApiServer, FakeConfig, Reply, WatchPoll};
use serde_json::json;

// Shared with the `core` bench, whose stream this one does not use.
#[allow(dead_code)]
mod data;
use data::CHUNK;

/// Pods created before the watcher lists.
const PODS: usize = 1_000;
/// Watch events (modifications) the watcher consumes.
const EVENTS: usize = 100_000;
/// Modifications between two polls of the fake's watch while capturing.
const BATCH: usize = 1_000;

/// What the fake sent: the list pages and the watch stream, with the stream's line boundaries.
struct Capture {
    headers: HeaderMap,
    pages: Vec<Vec<u8>>,
    watch: Vec<u8>,
    lines: Vec<(usize, usize)>,
}

fn pods() -> Request {
    Request::namespaced::<Pod>("default")
}

fn config() -> Config {
    Config::default()
}

fn is_watch(req: &http::Request<Vec<u8>>) -> bool {
    req.uri().query().is_some_and(|q| q.split('&').any(|p| p == "watch=true"))
}

fn ok(reply: Reply) -> http::Response<Vec<u8>> {
    let resp = reply.into_response().expect("a complete response");
    assert!(resp.status().is_success(), "{}: {}", resp.status(), String::from_utf8_lossy(resp.body()));
    resp
}

/// Drains `w` into `sink` until it asks to send a request (returned) or waits (`None`).
fn next_request(
    w: &mut Watcher<Pod>,
    now: Instant,
    sink: &mut impl FnMut(Event<Pod>),
) -> Option<(RequestId, http::Request<Vec<u8>>)> {
    loop {
        match w.poll(now) {
            Action::Emit(e) => sink(e),
            Action::Send(id, req) => return Some((id, req)),
            Action::Wait { .. } => return None,
            Action::Error(e) => panic!("the watcher reported an error: {e}"),
            Action::Cancel(id) => panic!("the watcher cancelled request {id}"),
        }
    }
}

/// Feeds one response to `w` in `CHUNK`-byte pieces, draining it after every input.
fn feed(
    w: &mut Watcher<Pod>,
    now: Instant,
    id: RequestId,
    headers: &HeaderMap,
    body: &[u8],
    sink: &mut impl FnMut(Event<Pod>),
) {
    w.on_response(now, id, StatusCode::OK, headers);
    for chunk in body.chunks(CHUNK) {
        w.on_body(now, id, chunk);
        assert!(next_request(w, now, sink).is_none(), "a request while a body is read");
    }
    w.on_end(now, id);
}

/// The timed contender: a fresh watcher through the captured list pages, then the watch stream,
/// up to the request for the next watch.
fn run_watcher(c: &Capture, now: Instant, mut sink: impl FnMut(Event<Pod>)) {
    let mut w = Watcher::<Pod>::new(pods(), config()).expect("a valid watcher");
    let mut pages = c.pages.iter();
    let mut watched = false;
    while let Some((id, req)) = next_request(&mut w, now, &mut sink) {
        let body = if is_watch(&req) {
            if watched {
                return;
            }
            watched = true;
            &c.watch
        } else {
            pages.next().expect("no more list pages than captured")
        };
        feed(&mut w, now, id, &c.headers, body, &mut sink);
    }
    panic!("the watcher waits instead of watching again");
}

/// (a) What kube-rs does with each line: `serde_json::from_slice` (lines pre-split, for free).
fn kube_core_from_slice(c: &Capture, mut sink: impl FnMut(kube_core::WatchEvent<Pod>)) {
    for &(b, e) in &c.lines {
        sink(serde_json::from_slice(&c.watch[b..e]).unwrap());
    }
}

/// (b) The best plain decode: validate UTF-8 once, parse as `str` (lines pre-split, for free).
fn kube_core_from_str(c: &Capture, mut sink: impl FnMut(kube_core::WatchEvent<Pod>)) {
    for &(b, e) in &c.lines {
        let text = std::str::from_utf8(&c.watch[b..e]).unwrap();
        sink(serde_json::from_str(text).unwrap());
    }
}

/// Diagnostic: kube-proto's streaming decoder alone, fed the watch stream in `CHUNK`-byte pieces.
fn decoder(body: &[u8], mut sink: impl FnMut(WatchEvent<Pod>)) {
    let mut d = WatchDecoder::<Pod>::new();
    for chunk in body.chunks(CHUNK) {
        d.push(chunk);
        while let Some(e) = d.next_event() {
            sink(e.unwrap());
        }
    }
    assert!(d.finish().is_none());
}

/// Builds the fake's state and captures what it sends to a watcher.
fn capture(t0: Instant) -> Capture {
    let mut fake = FakeApiServer::new(FakeConfig { history: 4 * BATCH, ..FakeConfig::default() }, t0);
    let api = pods();
    let mut names = Vec::with_capacity(PODS);
    for i in 0..PODS {
        let mut p = data::pod(i, true);
        let status = p.status.take();
        let meta = &mut p.metadata;
        (meta.uid, meta.resource_version, meta.creation_timestamp) = (None, None, None);
        let name = meta.name.clone().expect("a name");
        ok(fake.handle(t0, &api.create(&PostParams::default(), &p).unwrap()));
        // The status is the kubelet's to write, through the status subresource.
        let patch = Patch::Merge(json!({ "status": status }));
        ok(fake.handle(t0, &api.patch_subresource("status", &name, &PatchParams::default(), &patch).unwrap()));
        names.push(name);
    }

    // List and start watching, as a watcher does (the fake answers it as it is).
    let mut w = Watcher::<Pod>::new(pods(), config()).expect("a valid watcher");
    let mut pages = Vec::new();
    let mut headers = HeaderMap::new();
    let (id, watch) = loop {
        let (id, req) = next_request(&mut w, t0, &mut drop::<Event<Pod>>).expect("a request");
        match fake.handle(t0, &req) {
            Reply::Response(resp) => {
                assert_eq!(resp.status(), StatusCode::OK);
                headers = resp.headers().clone();
                feed(&mut w, t0, id, &headers, resp.body(), &mut drop::<Event<Pod>>);
                pages.push(resp.into_body());
            }
            Reply::Watch { id: watch, head } => {
                assert!(is_watch(&req));
                w.on_response(t0, id, head.status(), head.headers());
                break (id, watch);
            }
            Reply::Upgrade { .. } => panic!("a watcher's request switched protocols"),
        }
    };
    assert_eq!(pages.len(), PODS.div_ceil(500));

    // Modify every Pod in turn; capture the watch's bytes after every batch.
    let mut stream = Vec::new();
    for k in 0..EVENTS {
        let i = k % PODS;
        let patch = Patch::Merge(json!({"metadata": {"annotations": {
            "example.com/revision": (k / PODS).to_string(),
            "example.com/last-sync": format!("2026-11-25T00:{:02}:{:02}Z", k / 60 % 60, k % 60),
        }}}));
        let resp = ok(fake.handle(t0, &api.patch(&names[i], &PatchParams::default(), &patch).unwrap()));
        if k == 0 {
            let pod: Pod = Response::from_http(&resp).object().unwrap();
            assert!(pod.status.is_some_and(|s| s.container_statuses.is_some()));
        }
        if (k + 1) % BATCH == 0 {
            match fake.poll_watch(watch, t0) {
                WatchPoll::Data(bytes) => {
                    w.on_body(t0, id, &bytes);
                    assert!(next_request(&mut w, t0, &mut drop::<Event<Pod>>).is_none());
                    stream.extend_from_slice(&bytes);
                }
                other => panic!("the watch sent {other:?}"),
            }
        }
    }
    // The watch ends (its timeout), as it would after the events; nothing more is in it.
    match fake.poll_watch(watch, t0 + Duration::from_secs(3600)) {
        WatchPoll::Finished(rest) => stream.extend_from_slice(&rest),
        other => panic!("the watch sent {other:?}"),
    }
    let mut lines = Vec::with_capacity(EVENTS);
    let mut start = 0;
    for (n, _) in stream.iter().enumerate().filter(|(_, b)| **b == b'\n') {
        lines.push((start, n));
        start = n + 1;
    }
    assert_eq!(start, stream.len(), "the stream ends with a newline");
    Capture { headers, pages, watch: stream, lines }
}

fn watcher(c: &mut Criterion) {
    // The watcher and the fake need one origin instant (time then stands still: the stream is
    // captured at `t0` and replayed at `t0`); the other reading only reports the setup's duration.
    #[allow(clippy::disallowed_methods)]
    let t0 = Instant::now();
    let cap = capture(t0);
    let (lines, list_bytes) = (cap.lines.len(), cap.pages.iter().map(Vec::len).sum::<usize>());
    let (min, max) = cap.lines.iter().fold((usize::MAX, 0), |(lo, hi), &(b, e)| (lo.min(e - b), hi.max(e - b)));
    eprintln!(
        "watcher: {PODS} Pods listed ({list_bytes} bytes in {} pages), {lines} watch events ({} bytes, {} bytes/event, {min}..={max}), {CHUNK}-byte chunks; setup {:.1?}",
        cap.pages.len(),
        cap.watch.len(),
        cap.watch.len() / lines.max(1),
        t0.elapsed()
    );
    assert_eq!(lines, EVENTS);

    // Every contender decodes every event to the same Pod, in the same order.
    let mut ours = Vec::with_capacity(EVENTS);
    let (mut inits, mut init_done) = (0, 0);
    run_watcher(&cap, t0, |e| match e {
        Event::Apply(p) => ours.push(p),
        Event::InitApply(_) => inits += 1,
        Event::InitDone => init_done += 1,
        Event::Init => {}
        Event::Delete(p) => panic!("deleted {:?}", p.metadata.name),
    });
    assert_eq!((ours.len(), inits, init_done), (EVENTS, PODS, 1));
    let mut i = 0;
    kube_core_from_str(&cap, |e| match e {
        kube_core::WatchEvent::Modified(p) => {
            assert_eq!(p, ours[i]);
            i += 1;
        }
        e => panic!("{e:?}"),
    });
    assert_eq!(i, EVENTS);
    drop(ours);

    let mut g = c.benchmark_group("watcher");
    g.throughput(Throughput::Elements(EVENTS as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.bench_function("watcher", |b| b.iter(|| run_watcher(black_box(&cap), t0, |e| drop(black_box(e)))));
    g.bench_function("kube_core_from_slice", |b| {
        b.iter(|| kube_core_from_slice(black_box(&cap), |e| drop(black_box(e))))
    });
    g.bench_function("kube_core_from_str", |b| b.iter(|| kube_core_from_str(black_box(&cap), |e| drop(black_box(e)))));
    g.bench_function("decoder", |b| b.iter(|| decoder(black_box(&cap.watch), |e| drop(black_box(e)))));
    g.finish();
}

criterion_group!(benches, watcher);
criterion_main!(benches);
