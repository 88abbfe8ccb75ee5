//! Shared by the exec, attach and port-forward tests: a fake with pods, the upgrade made by the
//! core's client side, and a pump that moves bytes between a client session and the fake's
//! `FakeSession` in random pieces, as sockets would.
#![allow(dead_code)] // each test file uses part of it
#![allow(clippy::disallowed_methods)] // one origin instant, and the recorded fixtures read from disk

use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube_proto::channel::{ChannelProtocol, ExecEvent, ExecSession, PortForwardEvent, PortForwardSession};
use kube_proto::rng::SplitMix64;
use kube_proto::websocket::{Handshake, Masks};
use kube_proto::{AttachParams, PostParams, Request};
use kube_proto_fake::{FakeApiServer, FakeConfig, FakeSession, Reply};
use serde_json::{Value, json};

pub fn server() -> (FakeApiServer, Instant) {
    let t0 = Instant::now();
    (FakeApiServer::new(FakeConfig::default(), t0), t0)
}

/// Creates a namespace (unless it is `default`) and a pod in it with these containers
/// (`[name, command...]`), bound to a node when `node` is given.
pub fn pod(server: &mut FakeApiServer, t0: Instant, ns: &str, name: &str, containers: &[&[&str]], node: Option<&str>) {
    if ns != "default" {
        let namespace: k8s_openapi::api::core::v1::Namespace =
            serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        let req =
            Request::all::<k8s_openapi::api::core::v1::Namespace>().create(&PostParams::default(), &namespace).unwrap();
        let _ = server.handle(t0, &req);
    }
    let containers: Vec<Value> = containers
        .iter()
        .map(|c| {
            let mut v = json!({"name": c[0], "image": "busybox"});
            if c.len() > 1 {
                v["command"] = json!(&c[1..]);
            }
            v
        })
        .collect();
    let mut pod = json!({"metadata": {"name": name}, "spec": {"containers": containers}});
    if let Some(node) = node {
        pod["spec"]["nodeName"] = json!(node);
    }
    let pod: Pod = serde_json::from_value(pod).unwrap();
    let Reply::Response(resp) =
        server.handle(t0, &Request::namespaced::<Pod>(ns).create(&PostParams::default(), &pod).unwrap())
    else {
        panic!("a create is answered whole")
    };
    assert_eq!(resp.status(), 201, "{}", String::from_utf8_lossy(resp.body()));
}

/// The fake's answer to an upgrade request, after the client's key is set; panics unless it
/// switched protocols. Returns the subprotocol the client's handshake check accepted.
pub fn upgrade(server: &mut FakeApiServer, t0: Instant, mut req: http::Request<Vec<u8>>) -> (String, Box<FakeSession>) {
    let handshake = Handshake::start(&mut req, *b"0123456789abcdef");
    match server.handle(t0, &req) {
        Reply::Upgrade { head, session } => {
            let protocol = handshake.verify(head.status(), head.headers(), b"").expect("a valid 101");
            assert_eq!(protocol, session.protocol());
            (protocol, session)
        }
        Reply::Response(resp) => {
            panic!("no upgrade: {} {}", resp.status(), String::from_utf8_lossy(resp.body()))
        }
        Reply::Watch { .. } => panic!("a watch"),
    }
}

/// An exec request for `command` in `ns/pod`.
pub fn exec_request(ns: &str, pod: &str, command: &[&str], ap: &AttachParams) -> http::Request<Vec<u8>> {
    Request::namespaced::<Pod>(ns).exec(pod, command, ap).unwrap()
}

/// Feeds `bytes` to `take` in random pieces (one byte to all of it).
fn in_pieces(rng: &mut SplitMix64, bytes: &[u8], mut take: impl FnMut(&[u8])) {
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = match rng.next_u64() % 4 {
            0 => 1,
            1 => 1 + (rng.next_u64() % 7) as usize,
            2 => 1 + (rng.next_u64() % 4096) as usize,
            _ => rest.len(),
        }
        .min(rest.len());
        take(&rest[..n]);
        rest = &rest[n..];
    }
}

/// An exec or attach client and the fake's session, connected in memory.
pub struct ExecPair {
    pub client: ExecSession,
    pub server: Box<FakeSession>,
    rng: SplitMix64,
    pub events: Vec<ExecEvent>,
    eof_sent: bool,
}

impl ExecPair {
    pub fn new(protocol: &str, server: Box<FakeSession>, seed: u64) -> Self {
        let protocol =
            if protocol.is_empty() { ChannelProtocol::V1 } else { ChannelProtocol::parse(protocol).unwrap() };
        ExecPair {
            client: ExecSession::new(protocol, Masks::new([seed as u8; 16])),
            server,
            rng: SplitMix64::new(seed),
            events: Vec::new(),
            eof_sent: false,
        }
    }

    /// Moves bytes both ways until neither end has any to send; a server that is over ends the
    /// client's stream, as closing the socket would.
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(bytes) = self.server.poll_transmit() {
                moved = true;
                let client = &mut self.client;
                in_pieces(&mut self.rng, &bytes, |piece| client.handle_bytes(piece).expect("the client accepts it"));
            }
            while let Some(bytes) = self.client.poll_transmit() {
                moved = true;
                let server = &mut self.server;
                in_pieces(&mut self.rng, &bytes, |piece| {
                    server.handle_client_bytes(piece).expect("the fake accepts it")
                });
            }
            if !moved {
                break;
            }
        }
        if self.server.is_closed() && !self.eof_sent {
            self.eof_sent = true;
            self.client.handle_eof().expect("the stream ends after the server's close");
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
    }

    pub fn stdout(&self) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| if let ExecEvent::Stdout(b) = e { Some(b.as_slice()) } else { None })
            .collect::<Vec<_>>()
            .concat()
    }

    pub fn stderr(&self) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| if let ExecEvent::Stderr(b) = e { Some(b.as_slice()) } else { None })
            .collect::<Vec<_>>()
            .concat()
    }

    pub fn status(&self) -> Option<&kube_proto::Status> {
        self.events.iter().find_map(|e| if let ExecEvent::Status(s) = e { Some(&**s) } else { None })
    }
}

/// A port-forward client and the fake's session, connected in memory.
pub struct PortForwardPair {
    pub client: PortForwardSession,
    pub server: Box<FakeSession>,
    rng: SplitMix64,
    pub events: Vec<PortForwardEvent>,
}

impl PortForwardPair {
    pub fn new(ports: &[u16], server: Box<FakeSession>, seed: u64) -> Self {
        PortForwardPair {
            client: PortForwardSession::new(ports, Masks::new([seed as u8; 16])).unwrap(),
            server,
            rng: SplitMix64::new(seed),
            events: Vec::new(),
        }
    }

    /// As [`ExecPair::pump`].
    pub fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(bytes) = self.server.poll_transmit() {
                moved = true;
                let client = &mut self.client;
                in_pieces(&mut self.rng, &bytes, |piece| client.handle_bytes(piece).expect("the client accepts it"));
            }
            while let Some(bytes) = self.client.poll_transmit() {
                moved = true;
                let server = &mut self.server;
                in_pieces(&mut self.rng, &bytes, |piece| {
                    server.handle_client_bytes(piece).expect("the fake accepts it")
                });
            }
            if !moved {
                break;
            }
        }
        if self.server.is_closed() && !self.client.is_closed() {
            self.client.handle_eof().expect("the stream ends after the server's close");
        }
        while let Some(e) = self.client.poll_event() {
            self.events.push(e);
        }
    }
}

/// A recorded exchange from kube-apiserver v1.36.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/../tests/fixtures/apiserver-v1.36/{name}.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A recorded exchange's request, as an `http::Request`.
pub fn recorded_request(fixture: &Value) -> http::Request<Vec<u8>> {
    let r = &fixture["request"];
    let mut builder =
        http::Request::builder().method(r["method"].as_str().unwrap()).uri(r["path_and_query"].as_str().unwrap());
    for (name, value) in r["headers"].as_object().unwrap() {
        builder = builder.header(name.as_str(), value.as_str().unwrap());
    }
    builder.body(Vec::new()).unwrap()
}
