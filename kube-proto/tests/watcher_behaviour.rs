//! Scripted, deterministic tests of the watcher state machine, one behaviour each.
//!
//! Every test plays the API server by hand: it takes the requests the watcher asks for, checks
//! them, and answers with bytes it builds itself (lists, watch event lines, `Status` bodies),
//! chunked as it likes, at instants it chooses. This reaches what the randomized simulation
//! cannot: servers that refuse streaming lists, expire continue tokens, ask for `Retry-After`,
//! send malformed lines, or go silent.
//!
//! Actions are shown as short strings (`"send #2 /api/..."`, `"InitApply a@5"`,
//! `"error 500"`, `"wait Backoff"`) so that whole sequences can be asserted at once.
#![allow(clippy::disallowed_methods)] // each test takes one origin `Instant::now()`; every later instant is origin + a Duration

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube_proto::params::encode_query_value;
use kube_proto::request::{ACCEPT_METADATA, ACCEPT_METADATA_LIST};
use kube_proto::watcher::{Action, Backoff, Config, Event, RequestId, WaitReason, Watcher, WatcherError};
use kube_proto::{PartialObjectMeta, Request, RequestError, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const CMS: &str = "/api/v1/namespaces/default/configmaps";

// ---- the driver ----

/// Polls until the watcher waits; the last action is the `Wait`.
fn drain<K: Resource + DeserializeOwned + 'static>(w: &mut Watcher<K>, now: Instant) -> Vec<Action<K>> {
    let mut out = Vec::new();
    loop {
        let action = w.poll(now);
        let waits = matches!(action, Action::Wait { .. });
        out.push(action);
        if waits {
            return out;
        }
        assert!(out.len() < 10_000, "the watcher never waits");
    }
}

fn show_error(e: &WatcherError) -> String {
    match e {
        WatcherError::Response(r) => {
            let code = r.api_status().map(|s| s.code).filter(|c| *c != 0).unwrap_or(i32::from(r.http_status()));
            format!("error {code}")
        }
        WatcherError::Decode(d) => format!("error decode line {}", d.line),
        WatcherError::Transport(m) => format!("error transport: {m}"),
        WatcherError::Silent(d) => format!("error silent {}s", d.as_secs()),
        WatcherError::Unexpected(_) => "error unexpected".to_owned(),
        other => format!("error {other}"),
    }
}

fn show_object<K: Resource>(k: &K) -> String {
    format!("{}@{}", k.name_any(), k.resource_version().unwrap_or(""))
}

fn show<K: Resource>(actions: &[Action<K>]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            Action::Send(id, req) => format!("send #{id} {}", req.uri()),
            Action::Cancel(id) => format!("cancel #{id}"),
            Action::Emit(Event::Init) => "Init".to_owned(),
            Action::Emit(Event::InitApply(k)) => format!("InitApply {}", show_object(k)),
            Action::Emit(Event::InitDone) => "InitDone".to_owned(),
            Action::Emit(Event::Apply(k)) => format!("Apply {}", show_object(k)),
            Action::Emit(Event::Delete(k)) => format!("Delete {}", show_object(k)),
            Action::Error(e) => show_error(e),
            Action::Wait { reason: WaitReason::Backoff, .. } => "wait Backoff".to_owned(),
            Action::Wait { reason: WaitReason::Response, .. } => "wait Response".to_owned(),
        })
        .collect()
}

/// Drains and shows.
fn step<K: Resource + DeserializeOwned + 'static>(w: &mut Watcher<K>, now: Instant) -> Vec<String> {
    show(&drain(w, now))
}

/// The one request among `actions`.
fn sent<K>(actions: Vec<Action<K>>) -> (RequestId, http::Request<Vec<u8>>) {
    let mut sends = actions.into_iter().filter_map(|a| match a {
        Action::Send(id, req) => Some((id, req)),
        _ => None,
    });
    let first = sends.next().expect("a request was sent");
    assert!(sends.next().is_none(), "more than one request was sent");
    first
}

/// Expects the watcher to send a request at once, and nothing else: `[Send, Wait(Response)]`.
fn expect_send<K: Resource + DeserializeOwned + 'static>(
    w: &mut Watcher<K>,
    now: Instant,
) -> (RequestId, http::Request<Vec<u8>>) {
    let actions = drain(w, now);
    let shown = show(&actions);
    assert!(
        actions.len() == 2
            && matches!(actions[0], Action::Send(..))
            && matches!(actions[1], Action::Wait { reason: WaitReason::Response, .. }),
        "expected a request and nothing else, got {shown:?}"
    );
    sent(actions)
}

/// How long the watcher backs off for, from the final `Wait` of `actions`.
fn backoff<K: Resource>(actions: &[Action<K>], now: Instant) -> Duration {
    match actions.last() {
        Some(Action::Wait { until, reason: WaitReason::Backoff }) => until.duration_since(now),
        _ => panic!("expected a backoff, got {:?}", show(actions)),
    }
}

/// The deadline of the final `Wait(Response)` of `actions`.
fn response_deadline<K: Resource>(actions: &[Action<K>]) -> Instant {
    match actions.last() {
        Some(Action::Wait { until, reason: WaitReason::Response }) => *until,
        _ => panic!("expected a wait for a response, got {:?}", show(actions)),
    }
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

/// A whole response: head, the body in these chunks, clean end.
fn respond<K: Resource + DeserializeOwned + 'static>(
    w: &mut Watcher<K>,
    now: Instant,
    id: RequestId,
    status: u16,
    header_pairs: &[(&str, &str)],
    chunks: &[&[u8]],
) {
    w.on_response(now, id, StatusCode::from_u16(status).unwrap(), &headers(header_pairs));
    for c in chunks {
        w.on_body(now, id, c);
    }
    w.on_end(now, id);
}

/// A 200 with this body in one chunk.
fn ok<K: Resource + DeserializeOwned + 'static>(w: &mut Watcher<K>, now: Instant, id: RequestId, body: &[u8]) {
    respond(w, now, id, 200, &[], &[body]);
}

/// Opens a watch (200) and feeds it a body, without ending it.
fn stream<K: Resource + DeserializeOwned + 'static>(w: &mut Watcher<K>, now: Instant, id: RequestId, body: &str) {
    w.on_response(now, id, StatusCode::OK, &HeaderMap::new());
    if !body.is_empty() {
        w.on_body(now, id, body.as_bytes());
    }
}

/// The nominal (unjittered) delay after `failures` consecutive failures.
fn nominal(b: &Backoff, failures: u32) -> Duration {
    Duration::from_secs_f64((b.initial.as_secs_f64() * b.factor.powi(failures as i32 - 1)).min(b.max.as_secs_f64()))
}

fn assert_jittered(delay: Duration, b: &Backoff, failures: u32) {
    let d = nominal(b, failures).as_secs_f64();
    let got = delay.as_secs_f64();
    let eps = 1e-6;
    assert!(
        got <= d + eps && got >= d * (1.0 - b.jitter) - eps,
        "backoff after {failures} failures is {delay:?}, outside [{:.3}s, {d:.3}s]",
        d * (1.0 - b.jitter)
    );
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

// ---- what the server sends ----

fn cm_json(name: &str, rv: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"), "resourceVersion": rv}})
}

fn list_json(kind: &str, rv: Option<&str>, cont: Option<&str>, items: Vec<Value>) -> Vec<u8> {
    let mut meta = serde_json::Map::new();
    if let Some(rv) = rv {
        meta.insert("resourceVersion".into(), rv.into());
    }
    if let Some(c) = cont {
        meta.insert("continue".into(), c.into());
        meta.insert("remainingItemCount".into(), 3.into());
    }
    serde_json::to_vec(&json!({"kind": kind, "apiVersion": "v1", "metadata": meta, "items": items})).unwrap()
}

/// A ConfigMapList page.
fn cm_list(rv: &str, cont: Option<&str>, items: &[(&str, &str)]) -> Vec<u8> {
    list_json("ConfigMapList", Some(rv), cont, items.iter().map(|(n, v)| cm_json(n, v)).collect())
}

fn line(v: Value) -> String {
    let mut s = serde_json::to_string(&v).unwrap();
    s.push('\n');
    s
}

/// A watch event line: `ADDED`, `MODIFIED` or `DELETED` of ConfigMap `name` at `rv`.
fn ev(ty: &str, name: &str, rv: &str) -> String {
    line(json!({"type": ty, "object": cm_json(name, rv)}))
}

fn bookmark(rv: &str) -> String {
    line(
        json!({"type": "BOOKMARK", "object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": rv}}}),
    )
}

/// The bookmark that ends a streaming list's initial events.
fn end_bookmark(rv: &str) -> String {
    line(json!({"type": "BOOKMARK", "object": {"kind": "ConfigMap", "apiVersion": "v1",
                "metadata": {"resourceVersion": rv, "annotations": {"k8s.io/initial-events-end": "true"}}}}))
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn status_body(code: u16, reason: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&status(code, reason, message)).unwrap()
}

fn gone_body() -> Vec<u8> {
    status_body(410, "Expired", "too old resource version: 10 (400)")
}

fn error_event(status: Value) -> String {
    line(json!({"type": "ERROR", "object": status}))
}

/// A store folded from the events, as a user would keep one: Init starts a buffer that InitDone
/// swaps in.
#[derive(Default)]
struct Store {
    objects: BTreeMap<String, String>,
    buffer: Option<BTreeMap<String, String>>,
}

impl Store {
    fn apply(&mut self, actions: &[Action<ConfigMap>]) {
        for a in actions {
            let Action::Emit(ev) = a else { continue };
            match ev {
                Event::Init => self.buffer = Some(BTreeMap::new()),
                Event::InitApply(cm) => {
                    let buf = self.buffer.as_mut().expect("InitApply outside Init..InitDone");
                    buf.insert(cm.name_any(), cm.resource_version().unwrap_or("").to_owned());
                }
                Event::InitDone => self.objects = self.buffer.take().expect("InitDone without Init"),
                Event::Apply(cm) => {
                    self.objects.insert(cm.name_any(), cm.resource_version().unwrap_or("").to_owned());
                }
                Event::Delete(cm) => {
                    self.objects.remove(&cm.name_any());
                }
            }
        }
    }

    fn contents(&self) -> Vec<String> {
        self.objects.iter().map(|(n, rv)| format!("{n}@{rv}")).collect()
    }
}

fn configmaps(config: Config) -> Watcher<ConfigMap> {
    Watcher::new(Request::namespaced::<ConfigMap>("default"), config).expect("a valid config")
}

/// Lists (one page, these items, at `rv`) and returns the id of the watch that follows, after
/// checking that it starts from `rv`.
fn listed(w: &mut Watcher<ConfigMap>, now: Instant, rv: &str, items: &[(&str, &str)]) -> RequestId {
    let (id, req) = expect_send(w, now);
    assert!(!req.uri().to_string().contains("watch=true"), "expected a list: {}", req.uri());
    ok(w, now, id, &cm_list(rv, None, items));
    let actions = drain(w, now);
    let shown = show(&actions);
    assert_eq!(shown[0], "Init", "{shown:?}");
    assert_eq!(shown[shown.len() - 3], "InitDone", "{shown:?}");
    let (id, req) = sent(actions);
    assert!(req.uri().to_string().ends_with(&format!("&resourceVersion={rv}")), "{}", req.uri());
    assert!(req.uri().to_string().contains("watch=true"), "{}", req.uri());
    id
}

// ---- the first list and the watch after it ----

#[test]
fn the_first_list_is_paginated_and_the_watch_starts_from_its_resource_version() {
    let t0 = Instant::now();
    let mut w = Watcher::<Pod>::new(Request::namespaced::<Pod>("default"), Config::default().page_size(2)).unwrap();
    let (id, req) = expect_send(&mut w, t0);
    assert_eq!(req.method(), "GET");
    assert_eq!(req.headers()["accept"], "application/json");
    assert_eq!(req.uri(), "/api/v1/namespaces/default/pods?limit=2");

    // Items as a real server sends them, without kind and apiVersion; the page in three chunks.
    let pod = |name: &str, rv: &str| json!({"metadata": {"name": name, "namespace": "default", "resourceVersion": rv}});
    let page1 = list_json("PodList", Some("10"), Some("tok/1="), vec![pod("a", "3"), pod("b", "7")]);
    let (x, y) = page1.split_at(5);
    let (y, z) = y.split_at(y.len() / 2);
    respond(&mut w, t0, id, 200, &[("content-type", "application/json")], &[x, y, z]);
    assert_eq!(
        step(&mut w, t0),
        [
            "Init",
            "InitApply a@3",
            "InitApply b@7",
            "send #2 /api/v1/namespaces/default/pods?limit=2&continue=tok%2F1%3D",
            "wait Response"
        ]
    );

    let page2 = list_json("PodList", Some("10"), Some("tok2"), vec![pod("c", "9"), pod("d", "4")]);
    ok(&mut w, t0, 2, &page2);
    assert_eq!(
        step(&mut w, t0),
        [
            "InitApply c@9",
            "InitApply d@4",
            "send #3 /api/v1/namespaces/default/pods?limit=2&continue=tok2",
            "wait Response"
        ]
    );

    let page3 = list_json("PodList", Some("10"), None, vec![pod("e", "2")]);
    ok(&mut w, t0, 3, &page3);
    assert_eq!(
        step(&mut w, t0),
        [
            "InitApply e@2",
            "InitDone",
            "send #4 /api/v1/namespaces/default/pods?watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=10",
            "wait Response"
        ]
    );
    assert_eq!(w.resource_version(), Some("10"));
    assert_eq!(w.in_flight(), Some(4));
}

#[test]
fn an_empty_list_is_an_init_and_an_init_done() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default());
    let (id, req) = expect_send(&mut w, t0);
    assert_eq!(req.uri(), &*format!("{CMS}?limit=500"));
    // `items: null` is how Go encodes an empty list.
    ok(
        &mut w,
        t0,
        id,
        br#"{"kind":"ConfigMapList","apiVersion":"v1","metadata":{"resourceVersion":"3"},"items":null}"#,
    );
    assert_eq!(
        step(&mut w, t0),
        [
            "Init",
            "InitDone",
            &format!("send #2 {CMS}?watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=3"),
            "wait Response"
        ]
    );
}

#[test]
fn the_watch_uses_the_configured_timeout_and_bookmark_settings() {
    let t0 = Instant::now();
    let mut w = configmaps(Config { bookmarks: false, page_size: None, ..Config::default().timeout(60) });
    let (id, req) = expect_send(&mut w, t0);
    assert_eq!(req.uri(), CMS, "no page size: one page");
    ok(&mut w, t0, id, &cm_list("5", None, &[]));
    let (_, req) = sent(drain(&mut w, t0));
    assert_eq!(req.uri(), &*format!("{CMS}?watch=true&timeoutSeconds=60&resourceVersion=5"));
}

#[test]
fn any_semantic_lists_from_the_cache_on_the_first_list_only() {
    let t0 = Instant::now();
    let b = Backoff { jitter: 0.0, ..Backoff::default() };
    let mut w = configmaps(Config { backoff: b, ..Config::default().any_semantic() });
    let first = format!("{CMS}?limit=500&resourceVersion=0&resourceVersionMatch=NotOlderThan");
    let (id, req) = expect_send(&mut w, t0);
    assert_eq!(req.uri(), &*first);

    // A retry of the first list is still the first list.
    respond(&mut w, t0, id, 500, &[], &[&status_body(500, "InternalError", "etcd is sad")]);
    let actions = drain(&mut w, t0);
    assert_eq!(show(&actions), ["error 500", "wait Backoff"]);
    let t1 = t0 + backoff(&actions, t0);
    let (id, req) = expect_send(&mut w, t1);
    assert_eq!(req.uri(), &*first);

    // A continue page carries no resourceVersion (the server forbids one).
    ok(&mut w, t1, id, &cm_list("10", Some("c1"), &[("a", "8")]));
    let (id, req) = sent(drain(&mut w, t1));
    assert_eq!(req.uri(), &*format!("{CMS}?limit=500&continue=c1"));
    ok(&mut w, t1, id, &cm_list("10", None, &[("b", "9")]));
    let (id, req) = sent(drain(&mut w, t1));
    assert_eq!(req.uri(), &*format!("{CMS}?watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=10"));

    // A relist after an error asks for data no older than what was seen, not for any data.
    stream(&mut w, t1, id, &(ev("ADDED", "c", "11") + "{\"type\": \"ADDED\", \"object\": nonsense}\n"));
    let actions = drain(&mut w, t1);
    assert_eq!(show(&actions), ["Apply c@11", "cancel #4", "error decode line 2", "wait Backoff"]);
    let t2 = t1 + backoff(&actions, t1);
    let (id, req) = expect_send(&mut w, t2);
    assert_eq!(req.uri(), &*format!("{CMS}?limit=500&resourceVersion=11&resourceVersionMatch=NotOlderThan"));
    ok(&mut w, t2, id, &cm_list("20", None, &[("c", "11")]));
    let (id, _) = sent(drain(&mut w, t2));

    // After a 410 the relist is a consistent read: neither the expired resourceVersion nor
    // `resourceVersion=0`, which could serve data older than what was already seen.
    stream(&mut w, t2, id, &error_event(status(410, "Expired", "too old resource version: 20 (30)")));
    assert_eq!(step(&mut w, t2), ["cancel #6".to_owned(), format!("send #7 {CMS}?limit=500"), "wait Response".into()]);
}

// ---- 410 Gone ----

#[test]
fn gone_on_a_continue_page_restarts_the_list_with_a_fresh_init() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default().page_size(2));
    let mut store = Store::default();
    let (id, _) = expect_send(&mut w, t0);
    ok(&mut w, t0, id, &cm_list("10", Some("c1"), &[("a", "3"), ("b", "4")]));
    let actions = drain(&mut w, t0);
    store.apply(&actions);
    let (id, req) = sent(actions);
    assert_eq!(req.uri(), &*format!("{CMS}?limit=2&continue=c1"));

    // The continue token expired (the list took longer than the compaction interval).
    let expired = serde_json::to_vec(&json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "metadata": {"continue": "inconsistent-token"}, "reason": "Expired", "code": 410,
        "message": "The provided continue parameter is too old to display a consistent list result."}))
    .unwrap();
    respond(&mut w, t0, id, 410, &[], &[&expired]);
    let actions = drain(&mut w, t0);
    store.apply(&actions);
    assert_eq!(show(&actions), [format!("send #3 {CMS}?limit=2"), "wait Response".into()], "at once, from scratch");

    ok(&mut w, t0, 3, &cm_list("50", Some("c2"), &[("b", "44")]));
    let actions = drain(&mut w, t0);
    store.apply(&actions);
    assert_eq!(
        show(&actions),
        [
            "Init".to_owned(),
            "InitApply b@44".into(),
            format!("send #4 {CMS}?limit=2&continue=c2"),
            "wait Response".into()
        ],
        "a fresh Init, so that a store drops the partial buffer"
    );
    ok(&mut w, t0, 4, &cm_list("50", None, &[("c", "45")]));
    let actions = drain(&mut w, t0);
    store.apply(&actions);
    assert_eq!(show(&actions)[..2], ["InitApply c@45", "InitDone"]);
    assert_eq!(store.contents(), ["b@44", "c@45"], "a@3 from the abandoned attempt is gone");
}

#[test]
fn gone_on_a_watch_relists_for_the_most_recent_data() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default());
    let mut store = Store::default();
    let id = listed(&mut w, t0, "10", &[("a", "9")]);
    stream(&mut w, t0, id, &ev("MODIFIED", "a", "11"));
    w.on_end(t0 + secs(290), id);
    let t1 = t0 + secs(290);
    let (id, req) = sent(drain(&mut w, t1));
    assert_eq!(req.uri(), &*format!("{CMS}?watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=11"));

    // The watch is refused with HTTP 410: relist at once, without the expired resourceVersion.
    respond(&mut w, t1, id, 410, &[("content-type", "application/json")], &[&gone_body()]);
    assert_eq!(step(&mut w, t1), [format!("send #4 {CMS}?limit=500"), "wait Response".into()]);
    assert_eq!(w.resource_version(), None);
    ok(&mut w, t1, 4, &cm_list("400", None, &[("a", "390"), ("b", "395")]));
    let actions = drain(&mut w, t1);
    store.apply(&actions);
    assert_eq!(
        show(&actions),
        [
            "Init".to_owned(),
            "InitApply a@390".into(),
            "InitApply b@395".into(),
            "InitDone".into(),
            format!("send #5 {CMS}?watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=400"),
            "wait Response".into()
        ]
    );
    assert_eq!(store.contents(), ["a@390", "b@395"]);
}

#[test]
fn a_gone_error_event_relists_and_the_rest_of_that_stream_is_ignored() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default());
    let id = listed(&mut w, t0, "10", &[]);
    let body = ev("ADDED", "b", "12") + &error_event(status(410, "Expired", "too old resource version: 12 (60)"));
    stream(&mut w, t0, id, &(body + &ev("MODIFIED", "b", "13")));
    assert_eq!(
        step(&mut w, t0),
        ["Apply b@12".to_owned(), "cancel #2".into(), format!("send #3 {CMS}?limit=500"), "wait Response".into()]
    );
    assert_eq!(w.resource_version(), None);

    // What the cancelled watch still delivers must not count.
    w.on_body(t0, id, ev("MODIFIED", "b", "14").as_bytes());
    w.on_end(t0, id);
    w.on_transport_error(t0, id, "reset");
    assert_eq!(step(&mut w, t0), ["wait Response"]);
    assert_eq!(w.in_flight(), Some(3));
    assert_eq!(w.resource_version(), None);

    // A 410 that says so only by its reason counts too.
    ok(&mut w, t0, 3, &cm_list("70", None, &[("b", "65")]));
    let (id, _) = sent(drain(&mut w, t0));
    stream(&mut w, t0, id, &error_event(json!({"kind": "Status", "status": "Failure", "reason": "Gone"})));
    // A second 410 with no watch event since the last one backs off before relisting, so that
    // churn faster than a list cannot make the watcher spin.
    assert_eq!(step(&mut w, t0), ["cancel #4", "wait Backoff"]);
    let delay = w.last_backoff().expect("a backoff");
    assert!(delay > Duration::ZERO && delay <= Backoff::default().max, "{delay:?}");
    assert_eq!(step(&mut w, t0 + delay), [format!("send #5 {CMS}?limit=500"), "wait Response".into()]);
}

#[test]
fn repeated_gone_relists_back_off_more_and_more_until_a_watch_event() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default());
    let mut now = t0;
    let mut delays = Vec::new();
    let mut id = listed(&mut w, now, "10", &[]);
    for round in 0..4 {
        stream(&mut w, now, id, &error_event(status(410, "Expired", "too old")));
        let mut actions = drain(&mut w, now);
        if round > 0 {
            assert_eq!(show(&actions), [format!("cancel #{id}"), "wait Backoff".into()]);
            let delay = w.last_backoff().expect("a backoff");
            delays.push(delay);
            now += delay;
            actions = drain(&mut w, now);
        }
        let (list_id, req) = sent(actions);
        assert_eq!(req.uri(), &*format!("{CMS}?limit=500"));
        ok(&mut w, now, list_id, &cm_list("20", None, &[]));
        id = sent(drain(&mut w, now)).0;
    }
    // Growing (each within its jitter band: factor 2, jitter at most 0.2).
    assert!(delays.windows(2).all(|d| d[1] > d[0]), "{delays:?}");
    // A watch event ends the streak: the next 410 relists at once.
    stream(&mut w, now, id, &ev("ADDED", "a", "21"));
    drain(&mut w, now);
    stream(&mut w, now, id, &error_event(status(410, "Expired", "too old")));
    assert!(step(&mut w, now).iter().any(|a| a.starts_with("send ")));
}

// ---- the end of a watch ----

#[test]
fn a_clean_watch_end_rewatches_from_the_newest_resource_version_without_backoff() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default());
    let id = listed(&mut w, t0, "10", &[("a", "9")]);

    // A bookmark newer than the last event is the resume point.
    stream(&mut w, t0, id, &(ev("MODIFIED", "a", "11") + &bookmark("15")));
    assert_eq!(step(&mut w, t0), ["Apply a@11", "wait Response"]);
    assert_eq!(w.resource_version(), Some("15"));
    let t1 = t0 + secs(290);
    w.on_end(t1, id);
    let watch = |rv: &str| format!("{CMS}?watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion={rv}");
    assert_eq!(step(&mut w, t1), [format!("send #3 {}", watch("15")), "wait Response".into()]);

    // Without bookmarks, the last event's resourceVersion (a deletion's included).
    stream(&mut w, t1, 3, &(ev("ADDED", "c", "16") + &ev("DELETED", "c", "17")));
    let t2 = t1 + secs(30);
    w.on_end(t2, 3);
    assert_eq!(
        step(&mut w, t2),
        ["Apply c@16".to_owned(), "Delete c@17".into(), format!("send #4 {}", watch("17")), "wait Response".into()]
    );

    // A watch that lasted its whole timeout with nothing to say: also no backoff.
    w.on_response(t2, 4, StatusCode::OK, &HeaderMap::new());
    let t3 = t2 + secs(290);
    w.on_end(t3, 4);
    assert_eq!(step(&mut w, t3), [format!("send #5 {}", watch("17")), "wait Response".into()]);
}

#[test]
fn a_watch_that_ends_at_once_with_nothing_backs_off_instead_of_spinning() {
    let t0 = Instant::now();
    let b = Backoff { initial: secs(1), max: secs(8), factor: 2.0, jitter: 0.5 };
    let mut w = configmaps(Config { backoff: b.clone(), ..Config::default() });
    let id = listed(&mut w, t0, "10", &[]);

    respond(&mut w, t0, id, 200, &[], &[]);
    let actions = drain(&mut w, t0);
    assert_eq!(show(&actions), ["wait Backoff"]);
    let d1 = backoff(&actions, t0);
    assert_jittered(d1, &b, 1);
    // Not a moment early.
    let t1 = t0 + d1;
    assert_eq!(step(&mut w, t1 - ms(1)), ["wait Backoff"]);
    let (id, req) = expect_send(&mut w, t1);
    assert!(req.uri().to_string().ends_with("resourceVersion=10"), "{}", req.uri());

    // Again: the delay grows.
    respond(&mut w, t1 + ms(200), id, 200, &[], &[]);
    let t2 = t1 + ms(200);
    let actions = drain(&mut w, t2);
    assert_jittered(backoff(&actions, t2), &b, 2);
    let t3 = t2 + backoff(&actions, t2);
    let (id, _) = expect_send(&mut w, t3);

    // A quick end after an event is a normal end; the event reset the backoff.
    stream(&mut w, t3, id, &ev("ADDED", "a", "11"));
    w.on_end(t3, id);
    let actions = drain(&mut w, t3);
    assert_eq!(
        show(&actions)[..2],
        [
            "Apply a@11",
            &format!("send #5 {CMS}?watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=11")
        ]
    );
    respond(&mut w, t3, 5, 200, &[], &[]);
    let actions = drain(&mut w, t3);
    assert_jittered(backoff(&actions, t3), &b, 1);
}

// ---- errors and backoff ----

#[test]
fn server_and_transport_errors_back_off_exponentially_with_jitter() {
    let t0 = Instant::now();
    let b = Backoff { initial: secs(1), max: secs(10), factor: 2.0, jitter: 0.5 };
    let mut w = configmaps(Config { backoff: b.clone(), ..Config::default() });
    let (mut id, first) = expect_send(&mut w, t0);
    let mut now = t0;
    let mut delays = Vec::new();
    for failure in 1..=8u32 {
        match failure % 4 {
            1 => respond(&mut w, now, id, 500, &[], &[&status_body(500, "InternalError", "boom")]),
            2 => respond(&mut w, now, id, 503, &[("content-type", "text/plain")], &[b"service unavailable\n"]),
            3 => respond(&mut w, now, id, 429, &[], &[&status_body(429, "TooManyRequests", "slow down")]),
            _ => w.on_transport_error(now, id, "connection refused"),
        }
        let actions = drain(&mut w, now);
        let expected_error = match failure % 4 {
            1 => "error 500",
            2 => "error 503",
            3 => "error 429",
            _ => "error transport: connection refused",
        };
        assert_eq!(show(&actions), [expected_error, "wait Backoff"], "failure {failure}");
        let delay = backoff(&actions, now);
        assert_jittered(delay, &b, failure);
        assert_eq!(w.last_backoff(), Some(delay));
        delays.push(delay);
        now += delay;
        let (next, req) = expect_send(&mut w, now);
        assert_eq!(req.uri(), first.uri(), "the first list is retried as it was");
        id = next;
    }
    // The cap holds, and the jitter is really applied.
    assert!(delays.iter().all(|d| *d <= b.max));
    assert!(delays.iter().zip(1..).any(|(d, n)| d.as_secs_f64() < nominal(&b, n).as_secs_f64() * 0.99), "{delays:?}");

    // Other seeds jitter differently; the same seed the same.
    let delay_with_seed = |seed: u64| {
        let mut w = configmaps(Config { backoff: b.clone(), ..Config::default().seed(seed) });
        let (id, _) = expect_send(&mut w, t0);
        w.on_transport_error(t0, id, "refused");
        backoff(&drain(&mut w, t0), t0)
    };
    assert_eq!(delay_with_seed(1), delay_with_seed(1));
    assert!((1..20).map(delay_with_seed).collect::<std::collections::BTreeSet<_>>().len() > 1);
}

#[test]
fn retry_after_is_honoured_when_longer_than_the_backoff() {
    let t0 = Instant::now();
    let b = Backoff::default(); // 0.8s, doubling, at most 30s
    let mut w = configmaps(Config::default());
    let (id, _) = expect_send(&mut w, t0);

    // The header.
    respond(&mut w, t0, id, 429, &[("retry-after", "7")], &[&status_body(429, "TooManyRequests", "slow down")]);
    let actions = drain(&mut w, t0);
    assert_eq!(show(&actions), ["error 429", "wait Backoff"]);
    assert_eq!(backoff(&actions, t0), secs(7));
    let mut now = t0 + secs(7);

    // details.retryAfterSeconds.
    let (id, _) = expect_send(&mut w, now);
    let mut st = status(503, "ServiceUnavailable", "the server is shutting down");
    st["details"] = json!({"retryAfterSeconds": 12});
    respond(&mut w, now, id, 503, &[], &[&serde_json::to_vec(&st).unwrap()]);
    assert_eq!(backoff(&drain(&mut w, now), now), secs(12));
    now += secs(12);

    // Shorter than the backoff: the backoff wins.
    let (id, _) = expect_send(&mut w, now);
    respond(&mut w, now, id, 500, &[("retry-after", "1")], &[&status_body(500, "InternalError", "x")]);
    let d = backoff(&drain(&mut w, now), now);
    assert_jittered(d, &b, 3);
    now += d;

    // Longer than the backoff's maximum: still honoured.
    let (id, _) = expect_send(&mut w, now);
    respond(&mut w, now, id, 429, &[("retry-after", "60")], &[b"{}"]);
    assert_eq!(backoff(&drain(&mut w, now), now), secs(60));
    now += secs(60);

    // On a watch: the header of a refused watch ...
    let id = listed(&mut w, now, "10", &[]);
    respond(&mut w, now, id, 429, &[("retry-after", "9")], &[&status_body(429, "TooManyRequests", "slow down")]);
    let actions = drain(&mut w, now);
    assert_eq!(show(&actions), ["error 429", "wait Backoff"]);
    assert_eq!(backoff(&actions, now), secs(9));
    now += secs(9);

    // ... and an ERROR event's details, which re-watches from where it was (no relist).
    let (id, req) = expect_send(&mut w, now);
    assert!(req.uri().to_string().ends_with("resourceVersion=10"));
    let mut st = status(500, "InternalError", "the watch cache is being re-initialized");
    st["details"] = json!({"retryAfterSeconds": 5});
    stream(&mut w, now, id, &(ev("ADDED", "a", "11") + &error_event(st)));
    let actions = drain(&mut w, now);
    assert_eq!(show(&actions), ["Apply a@11", "cancel #7", "error 500", "wait Backoff"]);
    assert_eq!(backoff(&actions, now), secs(5));
    now += secs(5);
    let (_, req) = expect_send(&mut w, now);
    assert_eq!(req.uri(), &*format!("{CMS}?watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=11"));
}

#[test]
fn a_huge_retry_after_is_capped_so_the_watcher_cannot_stall() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default());
    assert_eq!(Config::default().max_retry_after, secs(60));
    // u32::MAX seconds would be 136 years.
    let (id, _) = expect_send(&mut w, t0);
    respond(&mut w, t0, id, 429, &[("retry-after", "4294967295")], &[&status_body(429, "TooManyRequests", "x")]);
    assert_eq!(backoff(&drain(&mut w, t0), t0), secs(60));
    // The cap is a setting; within it, Retry-After is honoured as asked.
    let mut w = configmaps(Config { max_retry_after: secs(300), ..Config::default() });
    let (id, _) = expect_send(&mut w, t0);
    let mut st = status(503, "ServiceUnavailable", "x");
    st["details"] = json!({"retryAfterSeconds": 3_000_000});
    respond(&mut w, t0, id, 503, &[("retry-after", "200")], &[&serde_json::to_vec(&st).unwrap()]);
    assert_eq!(backoff(&drain(&mut w, t0), t0), secs(300));
}

#[test]
fn a_retry_after_header_and_details_retry_after_seconds_are_both_honoured() {
    /// Refuses request `id` with both, and returns the backoff.
    fn refuse(w: &mut Watcher<ConfigMap>, now: Instant, id: RequestId, header: &str, details: u32) -> Duration {
        let mut st = status(503, "ServiceUnavailable", "shutting down");
        st["details"] = json!({"retryAfterSeconds": details});
        respond(w, now, id, 503, &[("retry-after", header)], &[&serde_json::to_vec(&st).unwrap()]);
        let actions = drain(w, now);
        assert_eq!(show(&actions), ["error 503", "wait Backoff"]);
        backoff(&actions, now)
    }
    let t0 = Instant::now();
    let mut w = configmaps(Config::default());
    // The longer one counts, whichever it is: on a list ...
    let (id, _) = expect_send(&mut w, t0);
    assert_eq!(refuse(&mut w, t0, id, "20", 4), secs(20));
    let t1 = t0 + secs(20);
    let (id, _) = expect_send(&mut w, t1);
    assert_eq!(refuse(&mut w, t1, id, "4", 20), secs(20));
    // ... and on a watch.
    let t2 = t1 + secs(20);
    let id = listed(&mut w, t2, "10", &[]);
    assert_eq!(refuse(&mut w, t2, id, "20", 4), secs(20));
    let t3 = t2 + secs(20);
    let (id, _) = expect_send(&mut w, t3);
    assert_eq!(refuse(&mut w, t3, id, "4", 20), secs(20));
}

#[test]
fn the_backoff_resets_after_a_successful_list_and_after_a_watch_event() {
    let t0 = Instant::now();
    let b = Backoff { initial: secs(1), max: secs(60), factor: 2.0, jitter: 0.0 };
    let mut w = configmaps(Config { backoff: b, ..Config::default() });
    let mut now = t0;
    let fail = |w: &mut Watcher<ConfigMap>, now: &mut Instant, id: RequestId| {
        respond(w, *now, id, 500, &[], &[&status_body(500, "InternalError", "x")]);
        let d = backoff(&drain(w, *now), *now);
        *now += d;
        d
    };
    let mut delays = Vec::new();
    for _ in 0..3 {
        let (id, _) = expect_send(&mut w, now);
        delays.push(fail(&mut w, &mut now, id));
    }
    assert_eq!(delays, [secs(1), secs(2), secs(4)]);

    // A successful list resets it.
    let id = listed(&mut w, now, "10", &[]);
    assert_eq!(fail(&mut w, &mut now, id), secs(1));
    let (id, _) = expect_send(&mut w, now);
    assert_eq!(fail(&mut w, &mut now, id), secs(2));

    // So does a watch event (a bookmark is one).
    let (id, _) = expect_send(&mut w, now);
    stream(&mut w, now, id, &bookmark("12"));
    w.on_transport_error(now, id, "connection reset by peer");
    let actions = drain(&mut w, now);
    assert_eq!(show(&actions), ["error transport: connection reset by peer", "wait Backoff"]);
    assert_eq!(backoff(&actions, now), secs(1));
}

#[test]
fn a_failed_page_is_retried_with_its_continue_token() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default().page_size(2));
    let mut store = Store::default();
    let (id, _) = expect_send(&mut w, t0);
    ok(&mut w, t0, id, &cm_list("10", Some("c1"), &[("a", "3"), ("b", "4")]));
    let actions = drain(&mut w, t0);
    store.apply(&actions);
    let (id, _) = sent(actions);
    let page2 = format!("{CMS}?limit=2&continue=c1");
    let mut now = t0;

    // A 500, a transport error, and a page cut short: each time the same page again.
    let truncated = cm_list("10", None, &[("c", "5")]);
    let mut id = id;
    for attempt in 0..3 {
        match attempt {
            0 => respond(&mut w, now, id, 500, &[], &[&status_body(500, "InternalError", "x")]),
            1 => {
                w.on_response(now, id, StatusCode::OK, &HeaderMap::new());
                w.on_body(now, id, &truncated[..20]);
                w.on_transport_error(now, id, "connection reset mid-body");
            }
            _ => ok(&mut w, now, id, &truncated[..truncated.len() - 3]),
        }
        let actions = drain(&mut w, now);
        store.apply(&actions);
        assert_eq!(show(&actions).len(), 2, "{:?}", show(&actions));
        now += backoff(&actions, now);
        let (next, req) = expect_send(&mut w, now);
        assert_eq!(req.uri(), &*page2);
        id = next;
    }
    ok(&mut w, now, id, &cm_list("10", None, &[("c", "5")]));
    let actions = drain(&mut w, now);
    store.apply(&actions);
    assert_eq!(show(&actions)[..2], ["InitApply c@5", "InitDone"], "no second Init for a retried page");
    assert_eq!(store.contents(), ["a@3", "b@4", "c@5"]);
}

// ---- silence ----

#[test]
fn a_silent_watch_is_cancelled_and_resumed_and_its_late_input_is_ignored() {
    let t0 = Instant::now();
    let config = Config { idle_grace: secs(10), ..Config::default().timeout(60) };
    let b = config.backoff.clone();
    let mut w = configmaps(config);
    let (id, _) = expect_send(&mut w, t0);
    ok(&mut w, t0, id, &cm_list("10", None, &[]));
    let actions = drain(&mut w, t0);
    assert_eq!(response_deadline(&actions), t0 + secs(70), "timeout + idle grace");
    let (id, _) = sent(actions);

    // Every input pushes the deadline back.
    w.on_response(t0 + secs(1), id, StatusCode::OK, &HeaderMap::new());
    assert_eq!(response_deadline(&drain(&mut w, t0 + secs(1))), t0 + secs(71));
    w.on_body(t0 + secs(5), id, ev("MODIFIED", "a", "11").as_bytes());
    let actions = drain(&mut w, t0 + secs(5));
    assert_eq!(show(&actions), ["Apply a@11", "wait Response"]);
    assert_eq!(response_deadline(&actions), t0 + secs(75));
    assert_eq!(step(&mut w, t0 + secs(75) - ms(1)), ["wait Response"]);

    // Then nothing, not even the server's own timeout: the connection is dead.
    let t1 = t0 + secs(75);
    let actions = drain(&mut w, t1);
    assert_eq!(show(&actions), ["cancel #2", "error silent 75s", "wait Backoff"]);
    let d = backoff(&actions, t1);
    assert_jittered(d, &b, 1);
    let t2 = t1 + d;
    let (id3, req) = expect_send(&mut w, t2);
    assert_eq!(req.uri(), &*format!("{CMS}?watch=true&timeoutSeconds=60&allowWatchBookmarks=true&resourceVersion=11"));

    // The old connection wakes up: nothing it says counts.
    w.on_response(t2, id, StatusCode::GONE, &HeaderMap::new());
    w.on_body(t2, id, (ev("MODIFIED", "a", "99") + &error_event(status(410, "Expired", "x"))).as_bytes());
    w.on_end(t2, id);
    w.on_transport_error(t2, id, "reset");
    assert_eq!(step(&mut w, t2), ["wait Response"]);
    assert_eq!(w.resource_version(), Some("11"));
    assert_eq!(w.in_flight(), Some(id3));

    stream(&mut w, t2, id3, &ev("MODIFIED", "a", "12"));
    assert_eq!(step(&mut w, t2), ["Apply a@12", "wait Response"]);
}

#[test]
fn a_silent_list_page_is_cancelled_and_retried_with_its_continue_token() {
    let t0 = Instant::now();
    let mut w = configmaps(Config { idle_grace: secs(5), ..Config::default().timeout(20).page_size(1) });
    let (id, _) = expect_send(&mut w, t0);
    ok(&mut w, t0, id, &cm_list("10", Some("c1"), &[("a", "3")]));
    let actions = drain(&mut w, t0);
    assert_eq!(response_deadline(&actions), t0 + secs(25));
    let (id, _) = sent(actions);
    let t1 = t0 + secs(25);
    let actions = drain(&mut w, t1);
    assert_eq!(show(&actions), ["cancel #2", "error silent 25s", "wait Backoff"]);
    let t2 = t1 + backoff(&actions, t1);
    let (id3, req) = expect_send(&mut w, t2);
    assert_eq!(req.uri(), &*format!("{CMS}?limit=1&continue=c1"));

    // The abandoned page arrives after all: ignored, it does not complete the list.
    ok(&mut w, t2, id, &cm_list("10", None, &[("b", "4")]));
    assert_eq!(step(&mut w, t2), ["wait Response"]);
    ok(&mut w, t2, id3, &cm_list("10", None, &[("b", "4")]));
    assert_eq!(step(&mut w, t2)[..2], ["InitApply b@4", "InitDone"]);
}

// ---- streaming lists ----

fn stream_uri(rv: Option<&str>) -> String {
    let rv = rv.map(|rv| format!("&resourceVersion={rv}")).unwrap_or_default();
    format!(
        "{CMS}?watch=true&timeoutSeconds=290&allowWatchBookmarks=true{rv}&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
    )
}

fn watch_uri(rv: &str) -> String {
    format!("{CMS}?watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion={rv}")
}

#[test]
fn a_streaming_list_goes_on_as_a_watch_on_the_same_connection() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default().streaming_lists());
    let mut store = Store::default();
    let (id, req) = expect_send(&mut w, t0);
    assert_eq!(req.uri(), &*stream_uri(None));

    // Initial objects come in key order, not resourceVersion order.
    let body = ev("ADDED", "a", "30") + &ev("ADDED", "b", "20") + &end_bookmark("35");
    stream(&mut w, t0, id, &(body + &ev("MODIFIED", "a", "36") + &ev("DELETED", "b", "37") + &ev("ADDED", "c", "38")));
    let actions = drain(&mut w, t0);
    store.apply(&actions);
    assert_eq!(
        show(&actions),
        [
            "Init",
            "InitApply a@30",
            "InitApply b@20",
            "InitDone",
            "Apply a@36",
            "Delete b@37",
            "Apply c@38",
            "wait Response"
        ]
    );
    assert_eq!(store.contents(), ["a@36", "c@38"]);
    assert_eq!(w.resource_version(), Some("38"));
    assert_eq!(w.in_flight(), Some(id), "no new request: the stream is now the watch");

    // When it ends, a plain watch resumes it.
    let t1 = t0 + secs(290);
    w.on_end(t1, id);
    assert_eq!(step(&mut w, t1), [format!("send #2 {}", watch_uri("38")), "wait Response".into()]);
}

#[test]
fn a_streaming_list_of_nothing_is_an_init_and_an_init_done() {
    let t0 = Instant::now();
    // Without bookmarks configured, the stream still asks for the one that ends it.
    let mut w = configmaps(Config { bookmarks: false, ..Config::default().streaming_lists() });
    let (id, req) = expect_send(&mut w, t0);
    assert_eq!(req.uri(), &*stream_uri(None));
    stream(&mut w, t0, id, &end_bookmark("35"));
    assert_eq!(step(&mut w, t0), ["Init", "InitDone", "wait Response"]);
    w.on_end(t0 + secs(290), id);
    let (_, req) = sent(drain(&mut w, t0 + secs(290)));
    assert_eq!(req.uri(), &*format!("{CMS}?watch=true&timeoutSeconds=290&resourceVersion=35"));
}

#[test]
fn a_streaming_list_with_any_semantic_starts_from_resource_version_zero() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default().streaming_lists().any_semantic());
    let (_, req) = expect_send(&mut w, t0);
    assert_eq!(req.uri(), &*stream_uri(Some("0")));
}

#[test]
fn a_broken_streaming_list_starts_over_with_a_fresh_init_and_its_objects_are_no_resume_point() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default().streaming_lists());
    let mut store = Store::default();
    let (id, _) = expect_send(&mut w, t0);
    stream(&mut w, t0, id, &(ev("ADDED", "a", "50") + &ev("ADDED", "b", "40")));
    let actions = drain(&mut w, t0);
    store.apply(&actions);
    assert_eq!(show(&actions), ["Init", "InitApply a@50", "InitApply b@40", "wait Response"]);
    assert_eq!(w.resource_version(), None, "objects before the end bookmark are no resume point");

    w.on_transport_error(t0, id, "connection reset");
    let actions = drain(&mut w, t0);
    assert_eq!(show(&actions), ["error transport: connection reset", "wait Backoff"]);
    let t1 = t0 + backoff(&actions, t0);
    let (id, req) = expect_send(&mut w, t1);
    assert_eq!(req.uri(), &*stream_uri(None), "the same streaming list, from no resourceVersion");

    // A stream that ends at once with nothing backs off and streams again (no fallback).
    respond(&mut w, t1, id, 200, &[], &[]);
    let actions = drain(&mut w, t1);
    assert_eq!(show(&actions), ["wait Backoff"]);
    let t2 = t1 + backoff(&actions, t1);
    let (id, req) = expect_send(&mut w, t2);
    assert_eq!(req.uri(), &*stream_uri(None));

    stream(&mut w, t2, id, &(ev("ADDED", "a", "50") + &end_bookmark("60")));
    let actions = drain(&mut w, t2);
    store.apply(&actions);
    assert_eq!(show(&actions), ["Init", "InitApply a@50", "InitDone", "wait Response"]);
    assert_eq!(store.contents(), ["a@50"], "b from the broken attempt is gone");

    // Later, a relist by streaming list from a known resourceVersion keeps that resume point
    // while its initial objects arrive, whatever their resourceVersions.
    stream(&mut w, t2, id, "not json\n");
    let actions = drain(&mut w, t2);
    assert_eq!(show(&actions), ["cancel #3", "error decode line 3", "wait Backoff"]);
    let t3 = t2 + backoff(&actions, t2);
    let (id, req) = expect_send(&mut w, t3);
    assert_eq!(req.uri(), &*stream_uri(Some("60")));
    stream(&mut w, t3, id, &ev("ADDED", "z", "99"));
    w.on_transport_error(t3, id, "reset");
    let actions = drain(&mut w, t3);
    assert_eq!(show(&actions), ["Init", "InitApply z@99", "error transport: reset", "wait Backoff"]);
    let t4 = t3 + backoff(&actions, t3);
    let (_, req) = expect_send(&mut w, t4);
    assert_eq!(req.uri(), &*stream_uri(Some("60")));
}

#[test]
fn a_server_rejecting_streaming_lists_makes_the_watcher_list_and_watch_for_good() {
    let t0 = Instant::now();
    for code in [400, 422] {
        let mut w = configmaps(Config::default().streaming_lists());
        let (id, _) = expect_send(&mut w, t0);
        let reason = if code == 400 { "BadRequest" } else { "Invalid" };
        let msg = "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled";
        respond(&mut w, t0, id, code, &[], &[&status_body(code, reason, msg)]);
        assert_eq!(step(&mut w, t0), [format!("send #2 {CMS}?limit=500"), "wait Response".into()], "{code}");
        ok(&mut w, t0, 2, &cm_list("10", None, &[("a", "9")]));
        let (id, req) = sent(drain(&mut w, t0));
        assert_eq!(req.uri(), &*watch_uri("10"), "{code}");

        // Relists are lists from now on: after a 410 ...
        stream(&mut w, t0, id, &error_event(status(410, "Expired", "too old")));
        assert_eq!(
            step(&mut w, t0),
            ["cancel #3".to_owned(), format!("send #4 {CMS}?limit=500"), "wait Response".into()]
        );
        ok(&mut w, t0, 4, &cm_list("20", None, &[]));
        let (id, _) = sent(drain(&mut w, t0));
        // ... and after a malformed event.
        stream(&mut w, t0, id, "{]\n");
        let actions = drain(&mut w, t0);
        let t1 = t0 + backoff(&actions, t0);
        let (_, req) = expect_send(&mut w, t1);
        assert_eq!(req.uri(), &*format!("{CMS}?limit=500&resourceVersion=20&resourceVersionMatch=NotOlderThan"));
    }
}

#[test]
fn a_server_ignoring_send_initial_events_is_detected_by_a_missing_end_bookmark() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default().streaming_lists());
    let mut store = Store::default();
    let (id, _) = expect_send(&mut w, t0);
    // An old server: a plain watch from "now", with synthetic ADDED events and no end bookmark.
    stream(&mut w, t0, id, &(ev("ADDED", "a", "5") + &ev("ADDED", "b", "6")));
    let actions = drain(&mut w, t0);
    store.apply(&actions);
    let t1 = t0 + secs(290);
    w.on_end(t1, id);
    let actions = drain(&mut w, t1);
    store.apply(&actions);
    assert_eq!(show(&actions), [format!("send #2 {CMS}?limit=500"), "wait Response".into()]);
    ok(&mut w, t1, 2, &cm_list("10", None, &[("a", "5")]));
    let actions = drain(&mut w, t1);
    store.apply(&actions);
    assert_eq!(show(&actions)[..3], ["Init", "InitApply a@5", "InitDone"]);
    assert_eq!(store.contents(), ["a@5"]);
    let (id, req) = sent(actions);
    assert_eq!(req.uri(), &*watch_uri("10"));

    // For good: a later 410 relists with a list.
    stream(&mut w, t1, id, &error_event(status(410, "Expired", "too old")));
    assert_eq!(step(&mut w, t1)[1], format!("send #4 {CMS}?limit=500"));
}

#[test]
fn a_deletion_during_the_initial_events_means_the_server_ignores_send_initial_events() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default().streaming_lists());
    let (id, _) = expect_send(&mut w, t0);
    stream(&mut w, t0, id, &(ev("ADDED", "a", "5") + &ev("DELETED", "a", "7") + &ev("ADDED", "b", "8")));
    let actions = drain(&mut w, t0);
    assert_eq!(show(&actions), ["Init", "InitApply a@5", "cancel #1", "error unexpected", "wait Backoff"]);
    let t1 = t0 + backoff(&actions, t0);
    let (_, req) = expect_send(&mut w, t1);
    assert_eq!(req.uri(), &*format!("{CMS}?limit=500"));
}

#[test]
fn gone_relists_a_streaming_watcher_with_a_streaming_list_of_the_most_recent_data() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default().streaming_lists().any_semantic());
    let (id, req) = expect_send(&mut w, t0);
    assert_eq!(req.uri(), &*stream_uri(Some("0")));
    stream(&mut w, t0, id, &(ev("ADDED", "a", "5") + &end_bookmark("10")));
    let t1 = t0 + secs(290);
    w.on_end(t1, id);
    let (id, req) = sent(drain(&mut w, t1));
    assert_eq!(req.uri(), &*watch_uri("10"));

    // The re-watch is refused with HTTP 410: a streaming list again, of the most recent data.
    respond(&mut w, t1, id, 410, &[], &[&gone_body()]);
    let (id, req) = sent(drain(&mut w, t1));
    assert_eq!(req.uri(), &*stream_uri(None));

    // An ERROR 410 inside the stream, the same, after a backoff: it is the second 410 with no
    // watch event in between.
    stream(&mut w, t1, id, &(end_bookmark("500") + &error_event(status(410, "Expired", "too old"))));
    let actions = drain(&mut w, t1);
    assert_eq!(show(&actions), ["Init", "InitDone", "cancel #3", "wait Backoff"]);
    let t2 = t1 + w.last_backoff().expect("a backoff");
    let (_, req) = sent(drain(&mut w, t2));
    assert_eq!(req.uri(), &*stream_uri(None));
}

// ---- decoding ----

#[test]
fn a_malformed_event_line_is_reported_and_relisted_never_skipped() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default());
    let mut store = Store::default();
    let id = listed(&mut w, t0, "10", &[("a", "9")]);
    store.objects.insert("a".into(), "9".into());

    let body = ev("ADDED", "b", "11") + "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":7}}}\n";
    stream(&mut w, t0, id, &(body + &ev("MODIFIED", "a", "12")));
    let actions = drain(&mut w, t0);
    store.apply(&actions);
    assert_eq!(show(&actions), ["Apply b@11", "cancel #2", "error decode line 2", "wait Backoff"]);
    let decode =
        actions.iter().find_map(|a| if let Action::Error(WatcherError::Decode(e)) = a { Some(e) } else { None });
    let e = decode.expect("a decode error");
    assert!(e.len > 0 && e.message.contains("invalid type"), "{e:?}");
    // The event after the bad line was not applied, nor is anything the dead stream still says.
    w.on_body(t0, id, ev("DELETED", "a", "13").as_bytes());
    w.on_end(t0, id);
    assert_eq!(step(&mut w, t0), ["wait Backoff"]);
    assert_eq!(store.contents(), ["a@9", "b@11"]);

    let t1 = t0 + w.last_backoff().unwrap();
    let (id, req) = expect_send(&mut w, t1);
    assert_eq!(req.uri(), &*format!("{CMS}?limit=500&resourceVersion=11&resourceVersionMatch=NotOlderThan"));
    ok(&mut w, t1, id, &cm_list("14", None, &[("b", "11")]));
    let actions = drain(&mut w, t1);
    store.apply(&actions);
    assert_eq!(store.contents(), ["b@11"], "the relist is the truth");

    // An unknown event type is malformed too.
    let (id, _) = sent(actions);
    stream(&mut w, t1, id, "{\"type\":\"SURPRISE\",\"object\":{}}\n");
    assert_eq!(step(&mut w, t1), ["cancel #4", "error decode line 1", "wait Backoff"]);
}

#[test]
fn a_stream_that_ends_inside_an_event_is_a_decode_error() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default());
    let id = listed(&mut w, t0, "10", &[]);
    let full = ev("MODIFIED", "a", "12");
    stream(&mut w, t0, id, &(ev("ADDED", "a", "11") + &full[..full.len() / 2]));
    w.on_end(t0 + secs(3), id);
    let shown = step(&mut w, t0 + secs(3));
    // (A Cancel of the ended request may come too; it is harmless.)
    let shown: Vec<_> = shown.into_iter().filter(|s| !s.starts_with("cancel")).collect();
    assert_eq!(shown, ["Apply a@11", "error decode line 2", "wait Backoff"]);

    // A last line without its newline that is complete is a normal event.
    let mut w = configmaps(Config::default());
    let id = listed(&mut w, t0, "10", &[]);
    stream(&mut w, t0, id, full.trim_end());
    w.on_end(t0 + secs(3), id);
    assert_eq!(
        step(&mut w, t0 + secs(3)),
        ["Apply a@12".to_owned(), format!("send #3 {}", watch_uri("12")), "wait Response".into()]
    );
}

/// The events of one watch whose body arrives in these chunks.
fn watch_events(t0: Instant, chunks: &[&[u8]]) -> Vec<Event<ConfigMap>> {
    let mut w = configmaps(Config::default());
    let id = listed(&mut w, t0, "10", &[]);
    w.on_response(t0, id, StatusCode::OK, &HeaderMap::new());
    let mut events = Vec::new();
    for c in chunks {
        w.on_body(t0, id, c);
        for a in drain(&mut w, t0) {
            match a {
                Action::Emit(e) => events.push(e),
                Action::Wait { reason: WaitReason::Response, .. } => {}
                other => panic!("unexpected {:?}", show(&[other])),
            }
        }
    }
    events
}

#[test]
fn events_split_across_any_chunk_boundaries_arrive_intact() {
    let t0 = Instant::now();
    let mut with_data = cm_json("a", "12");
    with_data["data"] = json!({"greeting": "héllo ✓ 👋", "multi": "line\nbreak"});
    let body = ev("ADDED", "a", "11")
        + &line(json!({"type": "MODIFIED", "object": with_data}))
        + "\n  \n"
        + &bookmark("13")
        + &ev("DELETED", "a", "14");
    let body = body.as_bytes();
    let whole = watch_events(t0, &[body]);
    assert_eq!(
        show(&whole.iter().cloned().map(Action::Emit).collect::<Vec<_>>()),
        ["Apply a@11", "Apply a@12", "Delete a@14"]
    );
    match &whole[1] {
        Event::Apply(cm) => assert_eq!(cm.data.as_ref().unwrap()["greeting"], "héllo ✓ 👋"),
        other => panic!("{other:?}"),
    }

    // Every split in two (inside multi-byte characters too), and byte by byte.
    for i in 0..=body.len() {
        let (a, b) = body.split_at(i);
        assert_eq!(watch_events(t0, &[a, b]), whole, "split at {i}");
    }
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(watch_events(t0, &bytes), whole);
    for size in [2, 3, 7, 64] {
        let chunks: Vec<&[u8]> = body.chunks(size).collect();
        assert_eq!(watch_events(t0, &chunks), whole, "chunks of {size}");
    }
}

#[test]
fn a_list_split_byte_by_byte_arrives_intact() {
    let t0 = Instant::now();
    let mut w = configmaps(Config::default());
    let (id, _) = expect_send(&mut w, t0);
    let body = cm_list("10", None, &[("a", "3"), ("é", "4")]);
    let chunks: Vec<&[u8]> = body.chunks(1).collect();
    respond(&mut w, t0, id, 200, &[], &chunks);
    assert_eq!(step(&mut w, t0)[..4], ["Init", "InitApply a@3", "InitApply é@4", "InitDone"]);
}

// ---- request shape ----

#[test]
fn metadata_only_asks_for_partial_object_metadata() {
    type Meta = PartialObjectMeta<ConfigMap>;
    let t0 = Instant::now();
    let mut w =
        Watcher::<Meta>::new(Request::namespaced::<Meta>("default"), Config::default().metadata_only()).unwrap();
    let (id, req) = expect_send(&mut w, t0);
    assert_eq!(req.uri(), &*format!("{CMS}?limit=500"));
    assert_eq!(req.headers()["accept"], ACCEPT_METADATA_LIST);
    let list =
        br#"{"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"10"},
        "items":[{"metadata":{"name":"a","namespace":"default","resourceVersion":"9"}}]}"#;
    ok(&mut w, t0, id, list);
    let actions = drain(&mut w, t0);
    assert_eq!(show(&actions)[..3], ["Init", "InitApply a@9", "InitDone"]);
    let (id, req) = sent(actions);
    assert_eq!(req.uri(), &*watch_uri("10"));
    assert_eq!(req.headers()["accept"], ACCEPT_METADATA);
    let event = r#"{"type":"MODIFIED","object":{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{"name":"a","resourceVersion":"11"}}}"#;
    stream(&mut w, t0, id, &format!("{event}\n"));
    assert_eq!(step(&mut w, t0), ["Apply a@11", "wait Response"]);

    // A relist too, and a streaming list.
    stream(&mut w, t0, id, &error_event(status(410, "Expired", "too old")));
    let (_, req) = sent(drain(&mut w, t0));
    assert_eq!(req.headers()["accept"], ACCEPT_METADATA_LIST);
    let mut w = Watcher::<Meta>::new(
        Request::namespaced::<Meta>("default"),
        Config::default().metadata_only().streaming_lists(),
    )
    .unwrap();
    let (_, req) = expect_send(&mut w, t0);
    assert_eq!(req.headers()["accept"], ACCEPT_METADATA);
}

#[test]
fn selectors_are_on_every_request() {
    let (labels, fields) = ("app=web,tier in (a,b)", "metadata.name!=skip");
    let mut expected = String::from("labelSelector=");
    encode_query_value(&mut expected, labels);
    expected.push_str("&fieldSelector=");
    encode_query_value(&mut expected, fields);
    assert_eq!(expected, "labelSelector=app%3Dweb%2Ctier+in+%28a%2Cb%29&fieldSelector=metadata.name%21%3Dskip");
    let has = |req: &http::Request<Vec<u8>>| {
        let uri = req.uri().to_string();
        assert!(uri.contains(&format!("?{expected}")) || uri.contains(&format!("&{expected}")), "{uri}");
    };

    let t0 = Instant::now();
    let mut w = configmaps(Config::default().labels(labels).fields(fields).page_size(1));
    let (id, req) = expect_send(&mut w, t0);
    has(&req);
    ok(&mut w, t0, id, &cm_list("10", Some("c"), &[("a", "1")]));
    let (id, req) = sent(drain(&mut w, t0));
    has(&req);
    ok(&mut w, t0, id, &cm_list("10", None, &[("b", "2")]));
    let (id, req) = sent(drain(&mut w, t0));
    has(&req);
    assert!(req.uri().to_string().contains("watch=true"));
    stream(&mut w, t0, id, &error_event(status(410, "Expired", "too old")));
    let (id, req) = sent(drain(&mut w, t0));
    has(&req);
    w.on_transport_error(t0, id, "refused");
    let t1 = t0 + backoff(&drain(&mut w, t0), t0);
    let (_, req) = expect_send(&mut w, t1);
    has(&req);

    let mut w = configmaps(Config::default().labels(labels).fields(fields).streaming_lists());
    let (_, req) = expect_send(&mut w, t0);
    has(&req);
}

#[test]
fn an_invalid_selector_fails_construction_with_a_typed_error() {
    let new = |config: Config| Watcher::<ConfigMap>::new(Request::namespaced::<ConfigMap>("default"), config);
    for config in [
        Config::default().labels("app in (web"),
        Config::default().labels("a b"),
        Config::default().fields("metadata.name"),
        Config::default().labels("app in (web").streaming_lists(),
        Config::default().fields("metadata.name").metadata_only(),
    ] {
        let err = new(config.clone()).unwrap_err();
        let RequestError::InvalidSelector(e) = &err else { panic!("{config:?}: {err:?}") };
        let kind = if config.selectors.label_selector.is_some() { "label" } else { "field" };
        assert_eq!(e.kind, kind, "{err}");
    }
    // And a bad path is refused the same way, before any request.
    assert_eq!(
        Watcher::<ConfigMap>::new(Request::namespaced::<ConfigMap>(""), Config::default()).unwrap_err(),
        RequestError::EmptyName { what: "namespace" }
    );
}

#[test]
fn an_event_over_the_frame_limit_is_a_decode_error_and_the_watcher_relists() {
    use kube_proto::watch::WatchDecodeErrorKind;
    let t0 = Instant::now();
    assert_eq!(Config::default().max_frame, 16 * 1024 * 1024, "client-go's streaming decoder limit");
    let mut w = configmaps(Config::default().max_frame(256));
    let id = listed(&mut w, t0, "10", &[]);
    // One event, then 4 KiB of a line that never ends within the limit: fed in small chunks,
    // as a slow server would, the line is dropped as soon as it passes 256 bytes.
    let huge = format!(
        "{{\"type\":\"ADDED\",\"object\":{{\"metadata\":{{\"name\":\"big\"}},\"data\":{{\"k\":\"{}",
        "x".repeat(4096)
    );
    stream(&mut w, t0, id, &ev("ADDED", "a", "11"));
    for chunk in huge.as_bytes().chunks(100) {
        w.on_body(t0, id, chunk);
    }
    let actions = drain(&mut w, t0);
    assert_eq!(show(&actions), ["Apply a@11", "cancel #2", "error decode line 2", "wait Backoff"]);
    let e = actions
        .iter()
        .find_map(|a| if let Action::Error(WatcherError::Decode(e)) = a { Some(e) } else { None })
        .expect("a decode error");
    match e.kind {
        WatchDecodeErrorKind::TooLarge { limit, seen } => {
            assert_eq!(limit, 256);
            assert!(seen > 256 && seen <= 356, "dropped within a chunk of the limit: {seen}");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.message.contains("256-byte frame limit"), "{e}");
    // Then the relist, from the resourceVersion seen.
    let t1 = t0 + w.last_backoff().expect("a backoff");
    let (_, req) = expect_send(&mut w, t1);
    assert_eq!(req.uri(), &*format!("{CMS}?limit=500&resourceVersion=11&resourceVersionMatch=NotOlderThan"));
}
