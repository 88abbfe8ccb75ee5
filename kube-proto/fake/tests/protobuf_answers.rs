//! The fake answers in protobuf what a client asks for in protobuf, as the real server does:
//! objects, lists and `Status` errors of built-in kinds; watch streams of protobuf frames with
//! the streaming list's closing bookmark and a 410 ERROR event; custom resources in JSON when JSON
//! is accepted too, else 406. Each answer is read back with the core's decoders.
#![cfg(feature = "protobuf")]
#![allow(clippy::disallowed_methods)] // each test takes one origin `Instant::now()`

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube_proto::protobuf::{self, ACCEPT, MEDIA_TYPE};
use kube_proto::{
    ApiResource, ListParams, PostParams, Reason, Request, Response, WatchDecoder, WatchEvent, WatchParams,
};
use kube_proto_fake::{FakeApiServer, FakeConfig, KindInfo, Reply, WatchPoll};
use serde_json::json;

fn with_accept(mut req: http::Request<Vec<u8>>, accept: &str) -> http::Request<Vec<u8>> {
    req.headers_mut().insert(http::header::ACCEPT, accept.parse().unwrap());
    req
}

fn setup() -> (FakeApiServer, Instant) {
    let now = Instant::now();
    let mut fake = FakeApiServer::new(FakeConfig::default(), now);
    let cms = Request::namespaced::<ConfigMap>("default");
    for name in ["a", "b"] {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": name}});
        let resp = fake.handle(now, &cms.create(&PostParams::default(), &cm).unwrap()).into_response().unwrap();
        assert!(resp.status().is_success());
    }
    (fake, now)
}

#[test]
fn objects_lists_and_errors_in_protobuf() {
    let (mut fake, now) = setup();
    let cms = Request::namespaced::<ConfigMap>("default");
    let get = with_accept(cms.get("a", &Default::default()).unwrap(), MEDIA_TYPE);
    let resp = fake.handle(now, &get).into_response().unwrap();
    assert!(protobuf::is_protobuf(resp.headers()));
    let cm: ConfigMap = Response::from_http(&resp).object().unwrap();
    assert_eq!(cm.data.unwrap()["k"], "a");

    let list = with_accept(cms.list(&ListParams::default()).unwrap(), ACCEPT);
    let resp = fake.handle(now, &list).into_response().unwrap();
    assert!(protobuf::has_magic(resp.body()));
    let list = Response::from_http(&resp).list::<ConfigMap>().unwrap();
    assert_eq!(list.items.len(), 2);
    assert!(list.resource_version().is_some());

    let missing = with_accept(cms.get("zz", &Default::default()).unwrap(), ACCEPT);
    let resp = fake.handle(now, &missing).into_response().unwrap();
    assert_eq!(resp.status(), 404);
    assert!(protobuf::has_magic(resp.body()));
    assert!(Response::from_http(&resp).object::<ConfigMap>().unwrap_err().is_not_found());
}

fn drain(
    fake: &mut FakeApiServer,
    id: u64,
    now: Instant,
    decoder: &mut WatchDecoder<ConfigMap>,
) -> Vec<WatchEvent<ConfigMap>> {
    let mut out = Vec::new();
    let mut feed = |bytes: &[u8], out: &mut Vec<_>| {
        decoder.push(bytes);
        while let Some(e) = decoder.next_event() {
            out.push(e.unwrap());
        }
    };
    match fake.poll_watch(id, now) {
        WatchPoll::Data(b) => feed(&b, &mut out),
        WatchPoll::Finished(b) => {
            feed(&b, &mut out);
            assert!(decoder.finish().is_none());
        }
        WatchPoll::Pending(_) => {}
    }
    out
}

#[test]
fn watches_in_protobuf_frames() {
    let (mut fake, now) = setup();
    let cms = Request::namespaced::<ConfigMap>("default");
    let wp = WatchParams { send_initial_events: true, timeout: Some(5), ..WatchParams::default() };
    let mut req = cms.watch(&wp, "").unwrap();
    protobuf::negotiate(&mut req);
    let Reply::Watch { id, head } = fake.handle(now, &req) else { panic!("a watch") };
    assert_eq!(head.headers()["content-type"], protobuf::WATCH_MEDIA_TYPE);
    let mut decoder = WatchDecoder::<ConfigMap>::new();
    decoder.use_content_type(head.headers());
    let events = drain(&mut fake, id, now, &mut decoder);
    assert!(
        matches!(&events[..], [WatchEvent::Added(_), WatchEvent::Added(_), WatchEvent::Bookmark(b)] if b.is_initial_events_end()),
        "{events:?}"
    );

    // A change arrives as a frame too.
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
    fake.handle(now, &cms.create(&PostParams::default(), &cm).unwrap());
    let events = drain(&mut fake, id, now, &mut decoder);
    assert!(matches!(&events[..], [WatchEvent::Added(c)] if c.metadata.name.as_deref() == Some("c")), "{events:?}");

    // A watch from a compacted resourceVersion: the 410 as an ERROR event.
    fake.compact();
    let mut req = cms.watch(&WatchParams::default(), "1").unwrap();
    protobuf::negotiate(&mut req);
    let Reply::Watch { id, head } = fake.handle(now + Duration::from_secs(1), &req) else { panic!("a watch") };
    let mut decoder = WatchDecoder::<ConfigMap>::new();
    decoder.use_content_type(head.headers());
    let events = drain(&mut fake, id, now + Duration::from_secs(1), &mut decoder);
    match &events[..] {
        [WatchEvent::Error(s)] => assert_eq!((s.code, &s.reason), (410, &Reason::Expired)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn custom_resources_stay_json() {
    let (mut fake, now) = setup();
    let ar = ApiResource::from_gvk("example.com", "v1", "Widget", true);
    fake.register(KindInfo::custom(ar.clone(), false, None));
    let widgets = Request::dynamic(&ar, Some("default"));
    let w = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    fake.handle(now, &widgets.create(&PostParams::default(), &w).unwrap());
    let both = with_accept(widgets.get("w", &Default::default()).unwrap(), ACCEPT);
    let resp = fake.handle(now, &both).into_response().unwrap();
    assert_eq!(resp.headers()["content-type"], "application/json");
    let only = with_accept(widgets.get("w", &Default::default()).unwrap(), MEDIA_TYPE);
    let resp = fake.handle(now, &only).into_response().unwrap();
    assert_eq!(resp.status(), 406);
    let e = Response::from_http(&resp).object::<serde_json::Value>().unwrap_err();
    assert_eq!(e.reason(), Some(&Reason::NotAcceptable));
}
