//! Exec, attach and port-forward requests the fake refuses before switching protocols, as the
//! real API server and kubelet do: the exchanges recorded from kube-apiserver v1.36, and the
//! checks of the container, the handshake and the ports.
#![allow(clippy::disallowed_methods)] // one origin instant per test

mod upgrade_support;

use http::StatusCode;
use k8s_openapi::api::core::v1::Pod;
use kube_proto::websocket::Handshake;
use kube_proto::{AttachParams, Request};
use kube_proto_fake::{FakeApiServer, Reply};
use serde_json::Value;
use upgrade_support::{exec_request, fixture, pod, recorded_request, server};

fn refusal(fake: &mut FakeApiServer, t0: std::time::Instant, req: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
    match fake.handle(t0, req) {
        Reply::Response(resp) => resp,
        Reply::Upgrade { .. } => panic!("switched protocols"),
        Reply::Watch { .. } => panic!("a watch"),
    }
}

#[test]
fn refusals_match_the_recorded_exchanges() {
    let (mut fake, t0) = server();
    // The recorded cluster's pods: `pod-b` with no node, `pod-bound` bound to one.
    pod(&mut fake, t0, "fixtures", "pod-b", &[&["c"]], None);
    pod(&mut fake, t0, "fixtures", "pod-bound", &[&["c"]], Some("fixture-node"));
    pod(&mut fake, t0, "fixtures", "pod-bound2", &[&["c"]], Some("fixture-node"));
    for name in [
        "exec-pod-websocket-pod-notfound",
        "exec-pod-websocket-no-node",
        "attach-pod-no-upgrade",
        "exec-pod-get-no-upgrade",
        "exec-pod-no-command",
        "exec-pod-no-upgrade",
        "portforward-pod-no-upgrade",
        "exec-pod-websocket-post",
    ] {
        let recorded = fixture(name);
        let resp = refusal(&mut fake, t0, &recorded_request(&recorded));
        let expected = &recorded["response"];
        assert_eq!(resp.status().as_u16(), expected["status"], "{name}");
        let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(content_type.as_deref(), expected["headers"]["content-type"].as_str(), "{name}");
        match &expected["body"] {
            Value::String(text) => assert_eq!(resp.body(), text.as_bytes(), "{name}"),
            body => assert_eq!(&serde_json::from_slice::<Value>(resp.body()).unwrap(), body, "{name}"),
        }
    }
}

#[test]
fn the_container_must_be_one_of_the_pods() {
    let (mut fake, t0) = server();
    pod(&mut fake, t0, "default", "blog", &[&["web"], &["sidecar"]], Some("node-1"));
    let bad = |resp: http::Response<Vec<u8>>| {
        assert_eq!(resp.status(), 400);
        let body: Value = serde_json::from_slice(resp.body()).unwrap();
        assert_eq!(body["reason"], "BadRequest");
        body["message"].as_str().unwrap().to_owned()
    };
    let ap = AttachParams::default().container("x");
    assert_eq!(
        bad(refusal(&mut fake, t0, &exec_request("default", "blog", &["ls"], &ap))),
        "container x is not valid for pod blog"
    );
    let req = Request::namespaced::<Pod>("default").attach("blog", &AttachParams::default()).unwrap();
    assert_eq!(
        bad(refusal(&mut fake, t0, &req)),
        "a container name must be specified for pod blog, choose one of: [web sidecar]"
    );
}

#[test]
fn the_handshake_is_checked_as_go_checks_it() {
    let (mut fake, t0) = server();
    pod(&mut fake, t0, "default", "blog", &[&["web"]], Some("node-1"));
    let base = || {
        let mut req = exec_request("default", "blog", &["true"], &AttachParams::default());
        Handshake::start(&mut req, [2; 16]);
        req
    };
    // No key.
    let mut req = base();
    req.headers_mut().remove("sec-websocket-key");
    let resp = refusal(&mut fake, t0, &req);
    assert_eq!((resp.status(), resp.body().as_slice()), (StatusCode::BAD_REQUEST, &b"mismatch challenge/response"[..]));
    // Another version.
    let mut req = base();
    req.headers_mut().insert("sec-websocket-version", "8".parse().unwrap());
    let resp = refusal(&mut fake, t0, &req);
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["sec-websocket-version"], "13");
    assert_eq!(resp.body(), b"missing or bad WebSocket Version");
    // No subprotocol the kubelet speaks.
    let mut req = base();
    req.headers_mut().insert("sec-websocket-protocol", "v9.channel.k8s.io".parse().unwrap());
    let resp = refusal(&mut fake, t0, &req);
    assert_eq!(resp.status(), 403);
    assert!(resp.body().is_empty());
    // Another upgrade than WebSocket.
    let mut req = base();
    req.headers_mut().insert("upgrade", "SPDY/3.1".parse().unwrap());
    assert_eq!(refusal(&mut fake, t0, &req).status(), 400);
    // A method that is not a connect's.
    let mut req = base();
    *req.method_mut() = http::Method::PUT;
    assert_eq!(refusal(&mut fake, t0, &req).status(), 405);
}

#[test]
fn the_kubelet_checks_the_ports() {
    let (mut fake, t0) = server();
    pod(&mut fake, t0, "default", "blog", &[&["web"]], Some("node-1"));
    let with_query = |query: &str| {
        let mut req = Request::namespaced::<Pod>("default").portforward("blog", &[80]).unwrap();
        *req.uri_mut() = format!("/api/v1/namespaces/default/pods/blog/portforward{query}").parse().unwrap();
        Handshake::start(&mut req, [3; 16]);
        req
    };
    for (query, text) in [
        ("", "query parameter \"port\" is required"),
        ("?ports=80&ports=0", "port \"80,0\" must be > 0"),
        (
            "?ports=70000",
            "unable to parse \"70000\" as a port: strconv.ParseUint: parsing \"70000\": value out of range",
        ),
    ] {
        let resp = refusal(&mut fake, t0, &with_query(query));
        assert_eq!(resp.status(), 400, "{query}");
        assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
        assert_eq!(String::from_utf8_lossy(resp.body()), text, "{query}");
    }
    // The API server reads the ports as integers first.
    let resp = refusal(&mut fake, t0, &with_query("?ports=http"));
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.headers()["content-type"], "application/json");
    // Ports are checked after the node: a pod with none is refused for that first.
    pod(&mut fake, t0, "default", "pending", &[&["web"]], None);
    let mut req = with_query("");
    *req.uri_mut() = "/api/v1/namespaces/default/pods/pending/portforward".parse().unwrap();
    let body: Value = serde_json::from_slice(refusal(&mut fake, t0, &req).body()).unwrap();
    assert_eq!(body["message"], "pod pending does not have a host assigned");
}
