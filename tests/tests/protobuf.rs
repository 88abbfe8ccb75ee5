//! Protobuf over real sockets: an `Api::protobuf()` of Pods and ConfigMaps gets, lists, writes,
//! deletes and watches (raw watch and watcher) in `application/vnd.kubernetes.protobuf`, into the
//! usual `k8s_openapi` types, and sees the same objects as a JSON `Api`; the server's answers are
//! checked to be protobuf on the wire; a missing object is a typed NotFound from a protobuf
//! `Status`; custom resources keep asking for JSON. Each body runs through transport-hyper
//! (tokio) and transport-asyncstd (async-std), against the loopback fake API server (which
//! answers protobuf for built-in kinds) or, with `KUBE_E2E_KUBECONFIG`, a real cluster, where it
//! lists and watches only the test's own objects (by the suite label).

use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube_integration_tests::objects::configmap;
use kube_integration_tests::{Ctx, transport_tests};
use kube_proto::{
    ApiResource, DeleteParams, DynamicObject, ListParams, PostParams, ResourceExt, WatchEvent, WatchParams,
};
use kube_runtime::Api;
use kube_runtime::watcher::{Config, Event, watcher};
use serde_json::json;

transport_tests!(protobuf_configmaps_round_trip, protobuf_pods_list_and_watch, protobuf_only_for_builtin_kinds,);

const STEP: Duration = Duration::from_secs(30);

fn pod(ctx: &Ctx, name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": ctx.labels(&[("app", name)])},
        "spec": {
            "containers": [{
                "name": "main",
                "image": "registry.k8s.io/pause:3.10",
                "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                "ports": [{"containerPort": 8080}],
            }],
            "terminationGracePeriodSeconds": 0,
        },
    }))
    .expect("a Pod")
}

/// Asks `api`'s list in protobuf by hand and checks the answer is protobuf on the wire.
async fn answered_in_protobuf<K>(ctx: &Ctx, api: &Api<K>)
where
    K: kube_proto::Resource,
    K::DynamicType: Clone,
{
    let mut req = api.request().list(&ListParams::default().labels(&ctx.selector())).unwrap();
    kube_proto::protobuf::negotiate(&mut req);
    let (status, headers, body) = ctx.client.request_bytes(req).await.unwrap();
    assert!(status.is_success(), "{status}");
    assert!(kube_proto::protobuf::is_protobuf(&headers), "{headers:?}");
    assert!(kube_proto::protobuf::has_magic(&body));
}

async fn protobuf_configmaps_round_trip(ctx: Ctx) {
    let json_api: Api<ConfigMap> = ctx.api();
    let api: Api<ConfigMap> = ctx.api::<ConfigMap>().protobuf();
    assert!(api.is_protobuf());
    // Writes in protobuf: the bodies sent are JSON, the answers protobuf.
    let a = api.create(&PostParams::default(), &configmap(&ctx, "a", &[("k", "v")])).await.unwrap();
    assert_eq!(a.data.as_ref().unwrap()["k"], "v");
    assert!(a.metadata.creation_timestamp.is_some() && a.metadata.uid.is_some());
    api.create(&PostParams::default(), &configmap(&ctx, "b", &[("x", "y")])).await.unwrap();
    answered_in_protobuf(&ctx, &api).await;

    // What protobuf reads is what JSON reads.
    let got = api.get("a").await.unwrap();
    let json_got = json_api.get("a").await.unwrap();
    assert_eq!(got.metadata.resource_version, json_got.metadata.resource_version);
    assert_eq!(got.data, json_got.data);
    assert_eq!(got.metadata.labels, json_got.metadata.labels);
    assert_eq!(got.metadata.creation_timestamp, json_got.metadata.creation_timestamp);
    let list = api.list(&ListParams::default().labels(&ctx.selector())).await.unwrap();
    let mut names: Vec<_> = list.iter().map(ResourceExt::name_any).collect();
    names.sort();
    assert_eq!(names, ["a", "b"]);
    assert!(list.resource_version().is_some());

    // A missing object: a protobuf Status, read as the usual typed error.
    let err = api.get("missing").await.unwrap_err();
    assert!(matches!(&err, kube_runtime::Error::Api(e) if e.is_not_found()), "{err:?}");

    // The raw watch reads protobuf frames: a change and a delete after the list.
    let rv = list.resource_version().unwrap().to_owned();
    let wp = WatchParams { timeout: Some(20), ..WatchParams::default() }.labels(&ctx.selector());
    let mut events = api.watch(&wp, &rv).await.unwrap().boxed();
    let mut changed = a.clone();
    changed.data.as_mut().unwrap().insert("k".into(), "w".into());
    api.replace("a", &PostParams::default(), &changed).await.unwrap();
    api.delete("b", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let ev = ctx.within(STEP, "the raw watch's events", events.try_next()).await.unwrap().expect("an event");
        match ev {
            WatchEvent::Modified(cm) => seen.push(format!("MODIFIED {} {}", cm.name_any(), cm.data.unwrap()["k"])),
            WatchEvent::Deleted(cm) => seen.push(format!("DELETED {}", cm.name_any())),
            WatchEvent::Bookmark(_) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(seen, ["MODIFIED a w", "DELETED b"]);
}

async fn protobuf_pods_list_and_watch(ctx: Ctx) {
    let api: Api<Pod> = ctx.api::<Pod>().protobuf();
    api.create(&PostParams::default(), &pod(&ctx, "p1")).await.unwrap();
    answered_in_protobuf(&ctx, &api).await;
    let p1 = api.get("p1").await.unwrap();
    let spec = p1.spec.as_ref().unwrap();
    assert_eq!(spec.containers[0].image.as_deref(), Some("registry.k8s.io/pause:3.10"));
    let requests = spec.containers[0].resources.as_ref().unwrap().requests.as_ref().unwrap();
    assert_eq!(requests["cpu"].0, "10m");
    assert_eq!(spec.containers[0].ports.as_ref().unwrap()[0].container_port, 8080);

    // The watcher of a protobuf Api lists and watches in protobuf.
    let mut w = watcher(api.clone(), Config::default().labels(&ctx.selector())).boxed();
    let mut initial = Vec::new();
    loop {
        match ctx.within(STEP, "the initial list", w.try_next()).await.unwrap().expect("an event") {
            Event::Init => {}
            Event::InitApply(p) => initial.push(p.name_any()),
            Event::InitDone => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(initial, ["p1"]);
    api.create(&PostParams::default(), &pod(&ctx, "p2")).await.unwrap();
    let applied = ctx
        .within(STEP, "p2 through the watch", async {
            loop {
                if let Event::Apply(p) = w.try_next().await.unwrap().expect("an event")
                    && p.name_any() == "p2"
                {
                    return p;
                }
            }
        })
        .await;
    assert_eq!(applied.spec.unwrap().containers[0].name, "main");
    api.delete("p2", &DeleteParams::default().grace_period(0)).await.unwrap();
    ctx.within(STEP, "p2's deletion through the watch", async {
        loop {
            if let Event::Delete(p) = w.try_next().await.unwrap().expect("an event")
                && p.name_any() == "p2"
            {
                return;
            }
        }
    })
    .await;
}

async fn protobuf_only_for_builtin_kinds(ctx: Ctx) {
    // A custom resource has no protobuf form: its Api keeps asking for JSON.
    let ar = ApiResource::from_gvk("example.com", "v1", "Widget", true);
    let widgets: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ctx.ns, &ar).protobuf();
    assert!(!widgets.is_protobuf());
    let cms: Api<ConfigMap> = ctx.api::<ConfigMap>().protobuf();
    assert!(cms.is_protobuf());
    // ...and a JSON Api of a built-in kind is still JSON on the wire.
    let json_api: Api<ConfigMap> = ctx.api();
    json_api.create(&PostParams::default(), &configmap(&ctx, "j", &[])).await.unwrap();
    let req = json_api.request().list(&ListParams::default().labels(&ctx.selector())).unwrap();
    let (_, headers, body) = ctx.client.request_bytes(req).await.unwrap();
    assert!(!kube_proto::protobuf::is_protobuf(&headers));
    assert!(body.starts_with(b"{"));
}
