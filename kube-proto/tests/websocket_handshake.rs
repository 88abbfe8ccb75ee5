//! The WebSocket opening handshake from the client's side: SHA-1 against the FIPS 180
//! vectors, the accept key of RFC 6455, and the check of the server's answer, with the
//! recorded answers of a real API server (`tests/fixtures/apiserver-v1.36/exec-*`).

mod fixture_support;

use fixture_support::Fixture;
use http::{HeaderMap, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use kube_proto::websocket::{Handshake, HandshakeError, accept_key, sha1};
use kube_proto::{AttachParams, Reason, Request, ResponseError};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn sha1_matches_the_fips_180_vectors() {
    assert_eq!(hex(&sha1(b"abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    assert_eq!(
        hex(&sha1(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
        "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
    );
    assert_eq!(
        hex(&sha1(b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu")),
        "a49b2446a02c645bf419f995b67091253a04a259"
    );
    assert_eq!(hex(&sha1(&vec![b'a'; 1_000_000])), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

#[test]
fn sha1_is_right_around_every_padding_boundary() {
    // Digests from another implementation (Python's hashlib) of bytes (7i + 3) mod 256.
    let expected = [
        (1, "9842926af7ca0a8cca12604f945414f07b01e13d"),
        (55, "ddf57317ef34bfee3b6df83d359098930eb278bc"),
        (56, "a0d492bb0fc889d0eca3bc137066ab6f4f74f369"),
        (57, "11a02dcf95859677a62e75024067c22b165d890f"),
        (63, "c55856749bef509bdfe6bfebfc7bf4e793e82132"),
        (64, "bede92be29c3874e1b54ddc77988d606fc857a8e"),
        (65, "b05a80522b053d6dc7e0a517d0e70212c7dad11f"),
        (119, "504e27376a6e0f0dba8295b85cb25dc4dfa17d23"),
        (120, "82134b02fb3f702491be9bed581eeab59334acb2"),
        (127, "34d5e582029e9b9b85b2febe31da3db7cdabaaea"),
        (128, "a09133e6730ffe899efb70204cb5646cd5dc24ee"),
        (1000, "4231a8a50a10fa9758db8ec71fdef855b751048a"),
    ];
    for (len, digest) in expected {
        let data: Vec<u8> = (0..len).map(|i| ((i * 7 + 3) % 256) as u8).collect();
        assert_eq!(hex(&sha1(&data)), digest, "{len} bytes");
    }
}

#[test]
fn the_accept_key_is_the_one_of_rfc_6455() {
    // RFC 6455 section 1.3 (and the recorded API server's answer to the same key).
    assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    let recorded = Fixture::load("exec-pod-websocket-kubelet-unreachable");
    assert_eq!(recorded.request_header("sec-websocket-key"), Some("dGhlIHNhbXBsZSBub25jZQ=="));
    assert_eq!(
        recorded.response()["headers"]["sec-websocket-accept"].as_str(),
        Some(accept_key("dGhlIHNhbXBsZSBub25jZQ==").as_str())
    );
}

fn exec_request() -> http::Request<Vec<u8>> {
    Request::namespaced::<Pod>("fixtures").exec("pod-bound2", ["ls"], &AttachParams::default()).unwrap()
}

fn answer(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(*k, v.parse().unwrap());
    }
    h
}

fn good_answer() -> HeaderMap {
    answer(&[
        ("upgrade", "websocket"),
        ("connection", "Upgrade"),
        ("sec-websocket-accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        ("sec-websocket-protocol", "v5.channel.k8s.io"),
    ])
}

#[test]
fn the_recorded_101_is_accepted_with_its_protocol() {
    let recorded = Fixture::load("exec-pod-websocket-kubelet-unreachable");
    let mut req = exec_request();
    let handshake = Handshake::start(&mut req, *b"the sample nonce");
    assert_eq!(req.headers()["sec-websocket-key"], recorded.request_header("sec-websocket-key").unwrap());
    assert_eq!(req.headers()["sec-websocket-protocol"], recorded.request_header("sec-websocket-protocol").unwrap());
    assert_eq!(handshake.offered(), ["v5.channel.k8s.io", "v4.channel.k8s.io"]);
    let status = StatusCode::from_u16(recorded.status()).unwrap();
    assert_eq!(handshake.verify(status, &recorded.response_headers(), b""), Ok("v5.channel.k8s.io".to_owned()));
    // The same from a request that already has its key.
    assert_eq!(Handshake::from_request(&req).unwrap(), handshake);
    assert_eq!(Handshake::from_request(&exec_request()), Err(HandshakeError::MissingKey));
}

#[test]
fn header_values_are_matched_without_regard_to_case_and_as_token_lists() {
    let handshake = Handshake::new("dGhlIHNhbXBsZSBub25jZQ==", &["v5.channel.k8s.io", "v4.channel.k8s.io"]);
    let headers = answer(&[
        ("upgrade", "WebSocket"),
        ("connection", "keep-alive, UPGRADE"),
        ("sec-websocket-accept", " s3pPLMBiTxaQ9kYGzzhZRbK+xOo= "),
        ("sec-websocket-protocol", "v4.channel.k8s.io"),
    ]);
    assert_eq!(handshake.verify(StatusCode::SWITCHING_PROTOCOLS, &headers, b""), Ok("v4.channel.k8s.io".into()));
}

#[test]
fn a_wrong_answer_is_a_typed_error() {
    let handshake = Handshake::new("dGhlIHNhbXBsZSBub25jZQ==", &["v5.channel.k8s.io", "v4.channel.k8s.io"]);
    // The good answer with one header set (`Some`) or removed (`None`), or one more value added.
    let with = |name: &'static str, value: Option<&str>| {
        let mut h = good_answer();
        match value {
            Some(v) => h.insert(name, v.parse().unwrap()),
            None => h.remove(name),
        };
        handshake.verify(StatusCode::SWITCHING_PROTOCOLS, &h, b"")
    };
    let added = |name: &'static str, value: &str| {
        let mut h = good_answer();
        h.append(name, value.parse().unwrap());
        handshake.verify(StatusCode::SWITCHING_PROTOCOLS, &h, b"")
    };
    assert_eq!(handshake.verify(StatusCode::SWITCHING_PROTOCOLS, &good_answer(), b""), Ok("v5.channel.k8s.io".into()));
    assert_eq!(with("upgrade", None), Err(HandshakeError::Upgrade { found: None }));
    assert_eq!(with("upgrade", Some("h2c")), Err(HandshakeError::Upgrade { found: Some("h2c".into()) }));
    assert_eq!(
        with("connection", Some("keep-alive")),
        Err(HandshakeError::Connection { found: Some("keep-alive".into()) })
    );
    assert_eq!(with("connection", None), Err(HandshakeError::Connection { found: None }));
    assert_eq!(
        with("sec-websocket-accept", Some("dGhlIHNhbXBsZSBub25jZQ==")),
        Err(HandshakeError::Accept {
            expected: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
            found: Some("dGhlIHNhbXBsZSBub25jZQ==".into())
        })
    );
    assert!(matches!(with("sec-websocket-accept", None), Err(HandshakeError::Accept { found: None, .. })));
    let offered = vec!["v5.channel.k8s.io".to_owned(), "v4.channel.k8s.io".to_owned()];
    assert_eq!(with("sec-websocket-protocol", None), Err(HandshakeError::NoProtocol { offered: offered.clone() }));
    assert_eq!(with("sec-websocket-protocol", Some("")), Err(HandshakeError::NoProtocol { offered: offered.clone() }));
    assert_eq!(
        with("sec-websocket-protocol", Some("v3.channel.k8s.io")),
        Err(HandshakeError::UnexpectedProtocol { chosen: "v3.channel.k8s.io".into(), offered: offered.clone() })
    );
    assert_eq!(
        added("sec-websocket-protocol", "v4.channel.k8s.io"),
        Err(HandshakeError::UnexpectedProtocol { chosen: "v5.channel.k8s.io, v4.channel.k8s.io".into(), offered })
    );
    assert_eq!(
        with("sec-websocket-extensions", Some("permessage-deflate")),
        Err(HandshakeError::UnexpectedExtensions("permessage-deflate".into()))
    );
    // With nothing offered, nothing may be chosen.
    let bare = Handshake::new("dGhlIHNhbXBsZSBub25jZQ==", &[]);
    let mut h = good_answer();
    assert!(matches!(
        bare.verify(StatusCode::SWITCHING_PROTOCOLS, &h, b""),
        Err(HandshakeError::UnexpectedProtocol { .. })
    ));
    h.remove("sec-websocket-protocol");
    assert_eq!(bare.verify(StatusCode::SWITCHING_PROTOCOLS, &h, b""), Ok(String::new()));
}

fn refused(fixture: &str) -> ResponseError {
    let f = Fixture::load(fixture);
    let handshake = Handshake::new("dGhlIHNhbXBsZSBub25jZQ==", &["v5.channel.k8s.io"]);
    let status = StatusCode::from_u16(f.status()).unwrap();
    match handshake.verify(status, &f.response_headers(), &f.response_body()) {
        Err(HandshakeError::Refused(e)) => e,
        other => panic!("{fixture}: {other:?}"),
    }
}

#[test]
fn an_http_error_instead_of_101_gives_the_status_in_its_body() {
    let e = refused("exec-pod-websocket-pod-notfound");
    assert!(e.is_not_found());
    let status = e.api_status().unwrap();
    assert_eq!(
        (status.code, &status.reason, status.message.as_str()),
        (404, &Reason::NotFound, "pods \"nope\" not found")
    );

    let e = refused("exec-pod-websocket-no-node");
    assert_eq!(e.http_status(), 400);
    assert_eq!(e.api_status().unwrap().message, "pod pod-b does not have a host assigned");

    // A text body: the status and the text.
    let e = refused("exec-pod-websocket-post");
    assert_eq!(e.http_status(), 405);
    assert!(matches!(&e, ResponseError::NotJson { snippet, .. } if snippet == "bad method"), "{e:?}");
    assert_eq!(e.reason(), Some(&Reason::MethodNotAllowed));

    let e = refused("exec-pod-no-upgrade");
    assert_eq!(e.api_status().unwrap().message, "Upgrade request required");
    // Display names the HTTP status and the server's message.
    let shown = HandshakeError::Refused(e).to_string();
    assert!(shown.contains("400") && shown.contains("Upgrade request required"), "{shown}");
}
