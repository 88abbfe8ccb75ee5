//! The reflector over real sockets: a store that follows creates, changes and deletes with its
//! indexes; a relist after 410 during which an object that survives it never goes missing;
//! subscribers that see the same events; a metadata-only store; a store whose replaced objects
//! the watcher decodes the next events over, which ends up holding what the server holds. Each
//! body runs through
//! transport-hyper (tokio) and transport-asyncstd (async-std), and against a real cluster with
//! `KUBE_E2E_KUBECONFIG` (selecting the test's own objects by the suite label).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{Either, select};
use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube_integration_tests::objects::configmap;
use kube_integration_tests::{Ctx, transport_tests};
use kube_proto::{DeleteParams, PartialObjectMeta, Patch, PatchParams, PostParams, ResourceExt};
use kube_runtime::reflector::{self, BY_LABEL, BY_NAMESPACE, ObjectRef, Store, StoreConfig, reflector};
use kube_runtime::watcher::{Config, Event, watcher};
use kube_runtime::{Api, Error};
use serde_json::json;

transport_tests!(
    reflector_follows_creates_changes_and_deletes,
    reflector_relist_never_hides_a_surviving_object: loopback,
    reflector_subscribers_see_the_same_events,
    reflector_metadata_only_store,
    reflector_recycling_holds_what_the_server_holds,
);

/// How long a step may take.
const STEP: Duration = Duration::from_secs(20);

type Reflected<K> = Pin<Box<dyn Stream<Item = Result<Event<Arc<K>>, Error>> + Send>>;

fn pp() -> PostParams {
    PostParams::default()
}

/// A reflector of the test's own ConfigMaps (by the suite label), in a store for its namespace.
fn reflect(ctx: &Ctx, writer: reflector::Writer<ConfigMap>) -> Reflected<ConfigMap> {
    Box::pin(reflector(writer, watcher(ctx.api::<ConfigMap>(), Config::default().labels(&ctx.selector()))))
}

fn names<K: ResourceExt>(objs: &[Arc<K>]) -> Vec<String> {
    objs.iter().map(|o| o.name_any()).collect()
}

/// Drives the reflector, calling `each` after every item, until `done` holds for the store.
async fn until<K>(
    ctx: &Ctx,
    rf: &mut Reflected<K>,
    reader: &Store<K>,
    what: &str,
    mut each: impl FnMut(&Result<Event<Arc<K>>, Error>, &Store<K>),
    done: impl Fn(&Store<K>) -> bool,
) where
    K: kube_proto::Resource<DynamicType = ()>,
{
    let deadline = ctx.client.now() + STEP;
    while !done(reader) {
        assert!(ctx.client.now() < deadline, "{what}: not within {STEP:?}");
        // The condition may come true with no event (a watch opening): look again every 50 ms.
        let tick = ctx.sleep(Duration::from_millis(50));
        if let Either::Left((item, _)) = select(rf.next(), std::pin::pin!(tick)).await {
            each(&item.expect("the reflector never ends"), reader);
        }
    }
}

fn nothing<K: kube_proto::Resource>(_: &Result<Event<Arc<K>>, Error>, _: &Store<K>) {}

async fn reflector_follows_creates_changes_and_deletes(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    for name in ["a", "b"] {
        cms.create(&pp(), &configmap(&ctx, name, &[("k", name)])).await.unwrap();
    }
    let (reader, writer) = reflector::store_with(StoreConfig::default().namespace(&ctx.ns), ());
    let mut rf = reflect(&ctx, writer);
    let ready = reader.clone();
    let (waited, ()) = futures_util::future::join(ready.wait_until_ready(), async {
        until(&ctx, &mut rf, &reader, "the first list", nothing, Store::is_ready).await;
    })
    .await;
    assert_eq!(waited, Ok(()));
    assert_eq!(names(&reader.state()), ["a", "b"]);

    cms.create(&pp(), &configmap(&ctx, "c", &[])).await.unwrap();
    let relabel = Patch::Merge(json!({"metadata": {"labels": {"tier": "gold"}}}));
    cms.patch("a", &PatchParams::default(), &relabel).await.unwrap();
    cms.delete("b", &DeleteParams::default()).await.unwrap();
    until(&ctx, &mut rf, &reader, "c, a relabelled, b gone", nothing, |s| {
        s.by_index(BY_LABEL, "tier=gold").unwrap().len() == 1
            && s.len() == 2
            && s.index_values(BY_NAMESPACE).is_ok()
            && s.get(&ObjectRef::new("b").within(&ctx.ns)).is_none()
            && s.get(&ObjectRef::new("c").within(&ctx.ns)).is_some()
    })
    .await;
    assert_eq!(names(&reader.state()), ["a", "c"]);
    assert_eq!(names(&reader.by_index(BY_NAMESPACE, &ctx.ns).unwrap()), ["a", "c"]);
    assert_eq!(names(&reader.by_index(BY_LABEL, &ctx.selector()).unwrap()), ["a", "c"]);
    // The reader works from a plain thread, with no executor.
    let (r, ns) = (reader.clone(), ctx.ns.clone());
    let a = std::thread::spawn(move || r.get(&ObjectRef::new("a").within(&ns))).join().unwrap().unwrap();
    assert_eq!(a.labels().get("tier").map(String::as_str), Some("gold"));
    assert_eq!(a.data.as_ref().and_then(|d| d.get("k")).map(String::as_str), Some("a"));
}

async fn reflector_relist_never_hides_a_surviving_object(ctx: Ctx) {
    let server = ctx.loopback("needs compact and drop_watches to force a 410");
    let cms: Api<ConfigMap> = ctx.api();
    for name in ["keep", "gone"] {
        cms.create(&pp(), &configmap(&ctx, name, &[])).await.unwrap();
    }
    let (reader, writer) = reflector::store_with(StoreConfig::default().namespace(&ctx.ns), ());
    let mut rf = reflect(&ctx, writer);
    until(&ctx, &mut rf, &reader, "the first list", nothing, Store::is_ready).await;
    until(&ctx, &mut rf, &reader, "the watch is open", nothing, |_| server.open_watches() == 1).await;
    // Before the watcher is back: a deletion, and the history that had it compacted away. The
    // watcher resumes, gets 410 Gone, and relists.
    server.drop_watches();
    cms.delete("gone", &DeleteParams::default()).await.unwrap();
    cms.create(&pp(), &configmap(&ctx, "new", &[])).await.unwrap();
    server.compact();
    let keep = ObjectRef::new("keep").within(&ctx.ns);
    let mut inits = 0;
    let mut check = |item: &Result<Event<Arc<ConfigMap>>, Error>, s: &Store<ConfigMap>| {
        inits += usize::from(matches!(item, Ok(Event::Init)));
        assert!(s.get(&keep).is_some(), "keep went missing during the relist, after {item:?}");
        assert!(s.is_ready(), "a relist does not make the store unready");
    };
    until(&ctx, &mut rf, &reader, "the relist", &mut check, |s| {
        s.get(&ObjectRef::new("gone").within(&ctx.ns)).is_none()
    })
    .await;
    assert_eq!(inits, 1, "the deletion was seen by a relist");
    assert_eq!(names(&reader.state()), ["keep", "new"]);
}

async fn reflector_subscribers_see_the_same_events(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    cms.create(&pp(), &configmap(&ctx, "a", &[])).await.unwrap();
    let (reader, mut writer) = reflector::store_shared::<ConfigMap>(4);
    let mut sub = writer.subscribe();
    let mut rf = reflect(&ctx, writer);
    let mut seen = vec![];
    let mut subscribed = vec![];
    until(&ctx, &mut rf, &reader, "the first list", |item, _| seen.push(describe(item.as_ref().ok())), Store::is_ready)
        .await;
    cms.create(&pp(), &configmap(&ctx, "b", &[])).await.unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    // Read the subscriber as the reflector goes (its buffer is small).
    while seen.last().map(String::as_str) != Some("Delete a") {
        let item = ctx.within(STEP, "b and a's deletion", rf.next()).await.expect("the reflector never ends");
        seen.push(describe(item.as_ref().ok()));
        while let Ok(ev) = sub.try_recv() {
            subscribed.push(describe(Some(&ev)));
        }
    }
    while let Ok(ev) = sub.try_recv() {
        subscribed.push(describe(Some(&ev)));
    }
    let seen: Vec<String> = seen.into_iter().filter(|s| !s.is_empty()).collect();
    assert_eq!(subscribed, seen);
    assert_eq!(seen, ["Init", "InitApply a", "InitDone", "Apply b", "Delete a"]);
}

fn describe(ev: Option<&Event<Arc<ConfigMap>>>) -> String {
    match ev {
        None => String::new(),
        Some(Event::Init) => "Init".into(),
        Some(Event::InitDone) => "InitDone".into(),
        Some(Event::InitApply(o)) => format!("InitApply {}", o.name_any()),
        Some(Event::Apply(o)) => format!("Apply {}", o.name_any()),
        Some(Event::Delete(o)) => format!("Delete {}", o.name_any()),
    }
}

async fn reflector_metadata_only_store(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    cms.create(&pp(), &configmap(&ctx, "a", &[("big", &"x".repeat(4096))])).await.unwrap();
    let metas: Api<PartialObjectMeta<ConfigMap>> = ctx.api();
    let (reader, writer) = reflector::store::<PartialObjectMeta<ConfigMap>>();
    let mut rf: Reflected<PartialObjectMeta<ConfigMap>> =
        Box::pin(reflector(writer, watcher(metas, Config::default().labels(&ctx.selector()).metadata_only())));
    until(&ctx, &mut rf, &reader, "the first list", nothing, Store::is_ready).await;
    let a = reader.get(&ObjectRef::new("a").within(&ctx.ns)).expect("a, as metadata");
    assert_eq!(a.name_any(), "a");
    assert!(a.uid().is_some());
    assert_eq!(reader.by_index(BY_LABEL, &ctx.selector()).unwrap().len(), 1);
}

async fn reflector_recycling_holds_what_the_server_holds(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    let (reader, writer) = reflector::store_with(StoreConfig::default().namespace(&ctx.ns), ());
    // The seed's form: `reflector` pairs the writer with a stream straight from `watcher()`.
    let watch = watcher(ctx.api(), Config::default().labels(&ctx.selector()));
    let recycler = watch.recycler().expect("JSON events of a built-in kind are decoded over objects");
    let mut rf: Reflected<ConfigMap> = Box::pin(reflector(writer, watch));
    until(&ctx, &mut rf, &reader, "the first list", nothing, Store::is_ready).await;
    // What the server answered each write with, by resourceVersion.
    let mut written = std::collections::HashMap::new();
    let mut keep = |o: ConfigMap| {
        let rv = o.resource_version().expect("a resourceVersion").to_owned();
        written.insert(rv, o);
    };
    for name in ["a", "b", "c"] {
        keep(cms.create(&pp(), &configmap(&ctx, name, &[("k0", name)])).await.unwrap());
    }
    // Objects whose shapes keep changing (keys and annotations come and go, values grow and
    // shrink), each event decoded over whichever object the event before it replaced.
    for round in 0..6usize {
        for (i, name) in ["a", "b", "c"].iter().enumerate() {
            let keys = (round + i) % 4;
            let data: serde_json::Map<String, serde_json::Value> = (0..4)
                .map(|j| (format!("k{j}"), if j < keys { json!("v".repeat(round * 3 + j)) } else { json!(null) }))
                .collect();
            // Not periodic, so that an event's object lacks annotations the object decoded over had.
            let note =
                if (round * round + i) % 3 != 1 { json!({"note": "x".repeat(round * 5 + i)}) } else { json!(null) };
            let patch = json!({"metadata": {"annotations": note}, "data": data});
            keep(cms.patch(name, &PatchParams::default(), &Patch::Merge(patch)).await.unwrap());
        }
    }
    cms.delete("b", &DeleteParams::default()).await.unwrap();
    let server = cms.list(&kube_proto::ListParams::default().labels(&ctx.selector())).await.unwrap().items;
    assert_eq!(server.iter().map(|o| o.name_any()).collect::<Vec<_>>(), ["a", "c"]);
    let at = |s: &Store<ConfigMap>, o: &ConfigMap| s.get(&ObjectRef::new(&o.name_any()).within(&ctx.ns));
    let (mut checked, mut recycled, mut decoded_over) = (0, 0, 0);
    let mut each = |item: &Result<Event<Arc<ConfigMap>>, Error>, _: &Store<ConfigMap>| {
        // Every change as the server wrote it (another writer's change is not in `written`).
        if let Ok(Event::Apply(o)) = item
            && let Some(w) = o.resource_version().and_then(|rv| written.get(rv))
        {
            assert_eq!(**o, *w, "{} at {:?}", o.name_any(), o.resource_version());
            checked += 1;
            // A resourceVersion with room to spare: written over a marked object (below); a new
            // decode's strings are exact, and resourceVersions do not get shorter here.
            let rv = o.metadata.resource_version.as_ref().unwrap();
            decoded_over += usize::from(rv.capacity() > rv.len());
            // The object this change replaced, held by nobody but the store, waits in the
            // watcher's recycler for the next event to be decoded over. Marked: its
            // resourceVersion given 12 bytes of room, which that event's keeps.
            if let Some(mut old) = recycler.take() {
                recycled += 1;
                let rv = old.metadata.resource_version.get_or_insert_default();
                let mut roomy = String::with_capacity(rv.len() + 12);
                roomy.push_str(rv);
                *rv = roomy;
                recycler.put(old);
            }
        }
    };
    until(&ctx, &mut rf, &reader, "the store catches up", &mut each, |s| {
        s.len() == 2 && server.iter().all(|o| at(s, o).is_some_and(|x| x.resource_version() == o.resource_version()))
    })
    .await;
    assert_eq!(checked, 21, "every create and change came as an event");
    // 18 changes replaced an object; the deletion of `b` came after the last one checked. Each
    // replaced object goes back to the watcher, and the next change of ours is decoded over it.
    assert!(recycled >= 9, "only {recycled} replaced objects went back to the watcher");
    assert!(decoded_over >= 9, "only {decoded_over} events were decoded over a replaced object");
    for o in &server {
        assert_eq!(at(&reader, o).as_deref(), Some(o), "{}", o.name_any());
    }
}
