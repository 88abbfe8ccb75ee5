//! Raw watches and the `watcher()` stream over real sockets: the initial list (list-then-watch
//! and streaming lists), live events, resuming across dropped connections, relisting after
//! 410, recovering from a body cut mid-line, and converging to the server's state. Each body
//! runs through transport-hyper (tokio) and transport-asyncstd (async-std).

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::time::Duration;

use futures_util::future::{Either, select};
use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube_integration_tests::objects::{configmap, unlabelled_configmap};
use kube_integration_tests::{Ctx, TestServer, transport_tests};
use kube_proto::watcher::WatcherError;
use kube_proto::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, Request, ResourceExt, WatchEvent, WatchParams,
};
use kube_runtime::watcher::{Backoff, Config, Event, watcher};
use kube_runtime::{Api, Error};
use serde_json::json;

transport_tests!(
    raw_watch,
    raw_watch_ends_and_expires: loopback,
    a_dropped_watch_closes_its_connection: loopback,
    watcher_list_then_watch,
    watcher_streaming_list,
    watcher_resumes_after_dropped_watches: loopback,
    watcher_relists_after_410: loopback,
    watcher_recovers_from_cut_body: loopback,
    watcher_retries_failed_requests: loopback,
);

/// Some bodies again through transport-hyper on tokio's multi-threaded runtime, read in
/// `block_on` as `#[tokio::main]`'s `main` is: there (and not on `#[tokio::test]`'s
/// current-thread runtime) each watch's body is read ahead of its decoding by a task of its own.
mod hyper_tokio_multi_thread {
    use kube_integration_tests::{TransportKind, Where, run_on};

    macro_rules! multi_thread {
        ($($body:ident: $place:ident),* $(,)?) => {$(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $body() {
                run_on(TransportKind::Hyper, stringify!($body), Where::$place, super::$body).await;
            }
        )*};
    }

    multi_thread!(
        raw_watch: Anywhere,
        a_dropped_watch_closes_its_connection: Loopback,
        watcher_list_then_watch: Anywhere,
        watcher_resumes_after_dropped_watches: Loopback,
        watcher_recovers_from_cut_body: Loopback,
    );
}

/// How long a step of a watch test may take.
const STEP: Duration = Duration::from_secs(15);

/// A raw watch of ConfigMaps, as `Api::watch` gives it.
type RawWatch = futures_util::stream::BoxStream<'static, Result<WatchEvent<ConfigMap>, Error>>;

type Events = Pin<Box<dyn Stream<Item = Result<Event<ConfigMap>, Error>> + Send>>;

/// The state a watcher's events describe, as a reflector would keep it.
#[derive(Default)]
struct Mirror {
    objects: BTreeMap<String, ConfigMap>,
    /// Objects of a (re)list in progress.
    relist: Option<BTreeMap<String, ConfigMap>>,
    /// How many (re)lists started.
    inits: usize,
    applies: usize,
    deletes: usize,
    errors: Vec<Error>,
}

impl Mirror {
    fn apply(&mut self, item: Result<Event<ConfigMap>, Error>) {
        match item {
            Ok(Event::Init) => {
                self.inits += 1;
                self.relist = Some(BTreeMap::new());
            }
            Ok(Event::InitApply(o)) => {
                self.relist.get_or_insert_default().insert(o.name_any(), o);
            }
            Ok(Event::InitDone) => self.objects = self.relist.take().unwrap_or_default(),
            Ok(Event::Apply(o)) => {
                self.applies += 1;
                self.objects.insert(o.name_any(), o);
            }
            Ok(Event::Delete(o)) => {
                self.deletes += 1;
                self.objects.remove(&o.name_any());
            }
            Err(e) => {
                eprintln!("watcher error (it goes on): {e}");
                self.errors.push(e);
            }
        }
    }

    fn synced(&self) -> bool {
        self.inits > 0 && self.relist.is_none()
    }

    fn names(&self) -> BTreeSet<String> {
        self.objects.keys().cloned().collect()
    }

    /// Name to resourceVersion.
    fn versions(&self) -> BTreeMap<String, String> {
        self.objects.iter().map(|(n, o)| (n.clone(), o.resource_version().unwrap_or_default().to_owned())).collect()
    }
}

/// A watcher of the test's labelled ConfigMaps, quick to back off and retry.
fn watch_configmaps(ctx: &Ctx, streaming: bool) -> Events {
    let mut config = Config::default().labels(&ctx.selector());
    config.backoff =
        Backoff { initial: Duration::from_millis(50), max: Duration::from_millis(500), factor: 2.0, jitter: 0.2 };
    if streaming {
        config = config.streaming_lists();
    }
    Box::pin(watcher(ctx.api::<ConfigMap>(), config))
}

/// Feeds events to the mirror until `done` holds, looking at it at least every 20 ms (it may
/// depend on more than the events). The watcher only works while it is polled.
async fn until(ctx: &Ctx, events: &mut Events, mirror: &mut Mirror, what: &str, done: impl Fn(&Mirror) -> bool) {
    ctx.within(STEP, what, async {
        while !done(mirror) {
            let tick = ctx.sleep(Duration::from_millis(20));
            if let Either::Left((item, _)) = select(events.next(), std::pin::pin!(tick)).await {
                mirror.apply(item.expect("the watcher stream never ends"));
            }
        }
    })
    .await;
}

/// The labelled ConfigMaps as a list says, name to resourceVersion.
async fn listed(ctx: &Ctx) -> BTreeMap<String, String> {
    let lp = ListParams::default().labels(&ctx.selector());
    let list = ctx.api::<ConfigMap>().list(&lp).await.unwrap();
    list.items.iter().map(|o| (o.name_any(), o.resource_version().unwrap_or_default().to_owned())).collect()
}

/// Asserts the mirror holds what the server holds, reading events until it does (the last
/// writes may still be on their way).
async fn converges(ctx: &Ctx, events: &mut Events, mirror: &mut Mirror) {
    let truth = listed(ctx).await;
    until(ctx, events, mirror, "the watcher converges to the server's state", |m| m.versions() == truth).await;
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn pp() -> PostParams {
    PostParams::default()
}

async fn raw_watch(ctx: Ctx) {
    let (_watch, _, _) = raw_watch_three_events(&ctx).await;
}

/// After [`raw_watch_three_events`]: the server ends the watch, then compacts.
async fn raw_watch_ends_and_expires(ctx: Ctx) {
    let server = ctx.loopback("needs drop_watches and compact");
    let (mut stream, wp, rv) = raw_watch_three_events(&ctx).await;
    let cms: Api<ConfigMap> = ctx.api();
    // The server ends the watch: the stream ends.
    server.drop_watches();
    ctx.within(STEP, "the end of the stream", async {
        while let Some(ev) = stream.next().await {
            assert!(matches!(ev, Ok(WatchEvent::Bookmark(_))), "{ev:?}");
        }
    })
    .await;
    // Watching from before a compaction: an ERROR event with 410 Expired.
    server.compact();
    let mut stream = cms.watch(&wp, &rv).await.unwrap();
    let first = ctx.within(STEP, "the 410", stream.next()).await.expect("an event").unwrap();
    match first {
        WatchEvent::Error(status) => assert_eq!(status.code, 410, "{status:?}"),
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

/// Dropping a quiet raw watch closes its connection then and there: the task that reads it
/// ahead of the reader, which was waiting for the server, stops with it, and the server sees
/// the connection close and forgets the watch. A connection left open would keep the watch
/// until the server next writes, or its 290 s timeout.
async fn a_dropped_watch_closes_its_connection(ctx: Ctx) {
    let server = ctx.loopback("needs open_watches");
    let cms: Api<ConfigMap> = ctx.api();
    let rv = cms.list(&ListParams::default().labels(&ctx.selector())).await.unwrap().metadata.resource_version;
    let wp = WatchParams::default().labels(&ctx.selector());
    let watch = cms.watch(&wp, &rv.unwrap_or_default()).await.unwrap();
    ctx.within(STEP, "the watch is open", async {
        while server.open_watches() != 1 {
            ctx.sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    drop(watch);
    ctx.within(STEP, "the server forgets the dropped watch", async {
        while server.open_watches() != 0 {
            ctx.sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// A watch of the test's ConfigMaps from a list's resourceVersion sees exactly a create, a
/// change and a delete of its own object; returns the open watch, its parameters and that
/// resourceVersion.
async fn raw_watch_three_events(ctx: &Ctx) -> (RawWatch, WatchParams, String) {
    let cms: Api<ConfigMap> = ctx.api();
    cms.create(&pp(), &configmap(ctx, "before", &[])).await.unwrap();
    let lp = ListParams::default().labels(&ctx.selector());
    let list = cms.list(&lp).await.unwrap();
    let rv = list.resource_version().expect("a list has a resourceVersion").to_owned();

    let wp = WatchParams::default().labels(&ctx.selector()).timeout(60);
    let mut stream = cms.watch(&wp, &rv).await.unwrap();
    let created = cms.create(&pp(), &configmap(ctx, "w1", &[("v", "1")])).await.unwrap();
    cms.create(&pp(), &unlabelled_configmap("noise")).await.unwrap();
    let patched = cms.patch("w1", &PatchParams::default(), &Patch::Merge(&json!({"data": {"v": "2"}}))).await.unwrap();
    cms.delete("w1", &DeleteParams::default()).await.unwrap();

    // Bookmarks aside, exactly these three, in order: nothing from before the list's
    // resourceVersion, nothing outside the selector.
    let mut seen = Vec::new();
    ctx.within(STEP, "three events", async {
        while seen.len() < 3 {
            match stream.next().await.expect("the watch goes on").unwrap() {
                WatchEvent::Bookmark(_) => {}
                ev => seen.push(ev),
            }
        }
    })
    .await;
    match &seen[..] {
        [WatchEvent::Added(a), WatchEvent::Modified(m), WatchEvent::Deleted(d)] => {
            assert!([a, m, d].iter().all(|o| o.name_any() == "w1"));
            assert_eq!(a.resource_version(), created.resource_version());
            assert_eq!(m.resource_version(), patched.resource_version());
            assert_eq!(m.data.as_ref().unwrap()["v"], "2");
            assert_ne!(d.resource_version(), m.resource_version());
        }
        other => panic!("expected ADDED, MODIFIED, DELETED of w1, got {other:?}"),
    }

    (stream, wp, rv)
}

async fn initial_then_live(ctx: Ctx, streaming: bool) {
    let cms: Api<ConfigMap> = ctx.api();
    cms.create(&pp(), &configmap(&ctx, "a", &[("v", "1")])).await.unwrap();
    cms.create(&pp(), &configmap(&ctx, "b", &[])).await.unwrap();
    cms.create(&pp(), &unlabelled_configmap("outsider")).await.unwrap();

    let mut events = watch_configmaps(&ctx, streaming);
    let mut mirror = Mirror::default();
    until(&ctx, &mut events, &mut mirror, "the initial list", Mirror::synced).await;
    assert_eq!(mirror.names(), set(&["a", "b"]));
    assert_eq!(mirror.inits, 1);

    // Live: a create, a change, a delete, and a change that takes an object out of the selector.
    cms.create(&pp(), &configmap(&ctx, "c", &[])).await.unwrap();
    cms.patch("a", &PatchParams::default(), &Patch::Merge(&json!({"data": {"v": "2"}}))).await.unwrap();
    cms.delete("b", &DeleteParams::default()).await.unwrap();
    cms.create(&pp(), &configmap(&ctx, "leaves", &[])).await.unwrap();
    let unlabel = json!({"metadata": {"labels": {kube_integration_tests::SUITE_LABEL: null}}});
    cms.patch("leaves", &PatchParams::default(), &Patch::Merge(&unlabel)).await.unwrap();
    until(&ctx, &mut events, &mut mirror, "the live events", |m| {
        m.names() == set(&["a", "c"]) && m.objects["a"].data.as_ref().is_some_and(|d| d["v"] == "2") && m.deletes == 2
    })
    .await;
    assert!(mirror.applies >= 3, "applies {} deletes {}", mirror.applies, mirror.deletes);
    assert_eq!(mirror.inits, 1, "no relist without a reason");
    converges(&ctx, &mut events, &mut mirror).await;
}

async fn watcher_list_then_watch(ctx: Ctx) {
    initial_then_live(ctx, false).await;
}

async fn watcher_streaming_list(ctx: Ctx) {
    initial_then_live(ctx, true).await;
}

/// Drives the watcher until its watch is open on the server.
async fn watch_open(ctx: &Ctx, server: &TestServer, events: &mut Events, mirror: &mut Mirror) {
    until(ctx, events, mirror, "the watcher's watch is open", |_| server.open_watches() == 1).await;
}

fn is_configmap_list(path_and_query: &str, ns: &str) -> bool {
    path_and_query.starts_with(&format!("/api/v1/namespaces/{ns}/configmaps?")) && !path_and_query.contains("watch=")
}

fn is_configmap_watch(path_and_query: &str, ns: &str) -> bool {
    path_and_query.starts_with(&format!("/api/v1/namespaces/{ns}/configmaps?")) && path_and_query.contains("watch=true")
}

async fn watcher_resumes_after_dropped_watches(ctx: Ctx) {
    let server = ctx.loopback("needs drop_watches");
    let cms: Api<ConfigMap> = ctx.api();
    cms.create(&pp(), &configmap(&ctx, "a", &[])).await.unwrap();
    let mut events = watch_configmaps(&ctx, false);
    let mut mirror = Mirror::default();
    until(&ctx, &mut events, &mut mirror, "the initial list", Mirror::synced).await;

    // Dropped, and a write before the watcher is back: it resumes from its resourceVersion and
    // gets the write from the history.
    watch_open(&ctx, server, &mut events, &mut mirror).await;
    server.drop_watches();
    cms.create(&pp(), &configmap(&ctx, "d", &[])).await.unwrap();
    until(&ctx, &mut events, &mut mirror, "d after the first drop", |m| m.objects.contains_key("d")).await;

    // Dropped again once it is back, then a write.
    watch_open(&ctx, server, &mut events, &mut mirror).await;
    server.drop_watches();
    watch_open(&ctx, server, &mut events, &mut mirror).await;
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    until(&ctx, &mut events, &mut mirror, "a's deletion after the second drop", |m| !m.objects.contains_key("a")).await;

    assert_eq!(mirror.inits, 1, "resumed, never relisted");
    assert!(mirror.errors.is_empty(), "a clean end is not an error: {:?}", mirror.errors);
    let seen = server.requests();
    let lists = seen.iter().filter(|s| is_configmap_list(&s.path_and_query, &ctx.ns)).count();
    let watches: Vec<&str> = seen
        .iter()
        .filter(|s| is_configmap_watch(&s.path_and_query, &ctx.ns))
        .map(|s| s.path_and_query.as_str())
        .collect();
    assert_eq!(lists, 1, "{seen:#?}");
    assert_eq!(watches.len(), 3, "{watches:#?}");
    assert!(watches.iter().all(|w| w.contains("resourceVersion=")), "{watches:#?}");
    converges(&ctx, &mut events, &mut mirror).await;
}

async fn watcher_relists_after_410(ctx: Ctx) {
    let server = ctx.loopback("needs compact and drop_watches");
    let cms: Api<ConfigMap> = ctx.api();
    cms.create(&pp(), &configmap(&ctx, "a", &[])).await.unwrap();
    cms.create(&pp(), &configmap(&ctx, "b", &[])).await.unwrap();
    let mut events = watch_configmaps(&ctx, false);
    let mut mirror = Mirror::default();
    until(&ctx, &mut events, &mut mirror, "the initial list", Mirror::synced).await;
    watch_open(&ctx, server, &mut events, &mut mirror).await;

    // Changes the watcher misses (they wake no watch), then the history goes and so does the
    // connection: resuming from its resourceVersion is 410, and it must relist.
    let raw = Request::namespaced::<ConfigMap>(&ctx.ns);
    let deleted = server.handle_quietly(raw.delete("b", &DeleteParams::default()).unwrap());
    assert!(deleted.status().is_success(), "{deleted:?}");
    let created = server.handle_quietly(raw.create(&pp(), &configmap(&ctx, "f", &[])).unwrap());
    assert_eq!(created.status(), 201, "{created:?}");
    server.compact();
    server.drop_watches();

    until(&ctx, &mut events, &mut mirror, "the relist", |m| m.inits >= 2 && m.synced()).await;
    assert_eq!(mirror.names(), set(&["a", "f"]));
    // And it watches on from the relist.
    cms.create(&pp(), &configmap(&ctx, "g", &[])).await.unwrap();
    until(&ctx, &mut events, &mut mirror, "g after the relist", |m| m.objects.contains_key("g")).await;
    let lists = server.requests().iter().filter(|s| is_configmap_list(&s.path_and_query, &ctx.ns)).count();
    assert_eq!(lists, 2, "a second list after the 410");
    converges(&ctx, &mut events, &mut mirror).await;
}

async fn watcher_recovers_from_cut_body(ctx: Ctx) {
    let server = ctx.loopback("needs cut_open_watches");
    let cms: Api<ConfigMap> = ctx.api();
    cms.create(&pp(), &configmap(&ctx, "a", &[])).await.unwrap();
    let mut events = watch_configmaps(&ctx, false);
    let mut mirror = Mirror::default();
    until(&ctx, &mut events, &mut mirror, "the initial list", Mirror::synced).await;
    watch_open(&ctx, server, &mut events, &mut mirror).await;

    // The watch sends half a line and its connection breaks; the write is delivered after the
    // watcher resumes.
    assert_eq!(server.cut_open_watches(), 1);
    cms.create(&pp(), &configmap(&ctx, "g", &[])).await.unwrap();
    until(&ctx, &mut events, &mut mirror, "g after the cut", |m| m.objects.contains_key("g")).await;
    assert!(
        mirror.errors.iter().any(|e| matches!(e, Error::Watcher(WatcherError::Transport(_)))),
        "the cut is reported as a transport error: {:?}",
        mirror.errors
    );
    assert_eq!(mirror.inits, 1, "a broken connection resumes, it does not relist");

    // Again, with the cut landing inside an event.
    watch_open(&ctx, server, &mut events, &mut mirror).await;
    let errors_before = mirror.errors.len();
    cms.create(&pp(), &configmap(&ctx, "h", &[])).await.unwrap();
    assert_eq!(server.cut_open_watches(), 1);
    cms.patch("h", &PatchParams::default(), &Patch::Merge(&json!({"data": {"n": "1"}}))).await.unwrap();
    until(&ctx, &mut events, &mut mirror, "h's change after the second cut", |m| {
        m.objects.get("h").is_some_and(|h| h.data.as_ref().is_some_and(|d| d.get("n").is_some()))
    })
    .await;
    converges(&ctx, &mut events, &mut mirror).await;
    assert!(mirror.errors.len() > errors_before, "the second cut is reported too");
    assert_eq!(mirror.inits, 1);
}

async fn watcher_retries_failed_requests(ctx: Ctx) {
    let server = ctx.loopback("needs injected errors");
    let cms: Api<ConfigMap> = ctx.api();
    cms.create(&pp(), &configmap(&ctx, "a", &[])).await.unwrap();
    // The first list fails twice, then is throttled: the watcher reports each failure, backs
    // off and lists again.
    server.fail_next(2, 500, None);
    server.fail_next(1, 429, Some(0));
    let mut events = watch_configmaps(&ctx, false);
    let mut mirror = Mirror::default();
    until(&ctx, &mut events, &mut mirror, "the initial list after the failures", Mirror::synced).await;
    assert_eq!(mirror.names(), set(&["a"]));
    let statuses: Vec<u16> = mirror
        .errors
        .iter()
        .map(|e| match e {
            Error::Watcher(WatcherError::Response(r)) => r.http_status(),
            other => panic!("expected the server's errors, got {other:?}"),
        })
        .collect();
    assert_eq!(statuses, vec![500, 500, 429]);

    // A watch that fails to start is retried the same way, from where the watcher was.
    watch_open(&ctx, server, &mut events, &mut mirror).await;
    server.fail_next(1, 503, Some(0));
    server.drop_watches();
    until(&ctx, &mut events, &mut mirror, "the failed watch", |m| m.errors.len() == 4).await;
    cms.create(&pp(), &configmap(&ctx, "b", &[])).await.unwrap();
    until(&ctx, &mut events, &mut mirror, "b after the failed watch", |m| m.objects.contains_key("b")).await;
    assert_eq!(mirror.errors.len(), 4, "{:?}", mirror.errors);
    assert_eq!(mirror.inits, 1, "a failed watch resumes, it does not relist");
}
