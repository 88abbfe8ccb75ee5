//! Protocol upgrades (the WebSocket handshakes of exec, attach and port-forward) through
//! `Client::upgrade`, over loopback TLS to a server that writes its answers by hand: a mebibyte
//! echoed both ways at once, the bytes sent in the `101`'s own packet, refusals with their
//! `Status`, a connection cut mid-stream, credentials. Each body runs through transport-hyper
//! (tokio) and transport-asyncstd (async-std).

use std::future::Future;
use std::time::Duration;

use futures_util::future::{Either, join, select};
use futures_util::{AsyncReadExt as _, AsyncWriteExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube_integration_tests::upgrade_server::{CUT_AFTER, GREETING, UpgradeServer};
use kube_integration_tests::{TOKEN, TransportKind};
use kube_proto::websocket::{Handshake, HandshakeError};
use kube_proto::{AttachParams, Reason, Request};
use kube_runtime::{Client, Error, TransportError, Upgraded};

macro_rules! both_transports {
    ($($body:ident),* $(,)?) => {
        /// The bodies through transport-hyper, on tokio.
        mod hyper_tokio {
            $(
                #[tokio::test]
                async fn $body() {
                    super::$body(kube_integration_tests::TransportKind::Hyper).await;
                }
            )*
        }
        /// The bodies through transport-asyncstd, on async-std.
        mod asyncstd {
            $(
                #[async_std::test]
                async fn $body() {
                    super::$body(kube_integration_tests::TransportKind::AsyncStd).await;
                }
            )*
        }
    };
}

both_transports!(
    a_mebibyte_is_echoed_both_ways_at_once,
    bytes_in_the_101_packet_are_not_lost,
    refusals_come_back_with_their_status,
    a_connection_cut_mid_stream_is_an_error,
    a_clean_close_is_the_end_of_the_stream,
    the_token_goes_with_the_upgrade,
);

/// Runs `fut`, panicking if it takes longer than 20 s (on the client's transport's timer).
async fn within<T>(client: &Client, what: &str, fut: impl Future<Output = T>) -> T {
    let deadline = client.now() + Duration::from_secs(20);
    match select(std::pin::pin!(fut), client.transport().sleep_until(deadline)).await {
        Either::Left((value, _)) => value,
        Either::Right(((), _)) => panic!("{what}: took longer than 20 s"),
    }
}

fn exec(pod: &str) -> http::Request<Vec<u8>> {
    Request::namespaced::<Pod>("default").exec(pod, ["cat"], &AttachParams::default().stdin(true)).unwrap()
}

/// The server's `101` checked as a WebSocket handshake, with the key the server received;
/// the chosen subprotocol.
fn verify(
    server: &UpgradeServer,
    request: http::Request<Vec<u8>>,
    upgraded: &Upgraded,
) -> Result<String, HandshakeError> {
    let seen = server.requests().pop().expect("the server saw the request");
    let mut request = request;
    request.headers_mut().insert("sec-websocket-key", seen.header("sec-websocket-key").unwrap().parse().unwrap());
    Handshake::from_request(&request).unwrap().verify(upgraded.status(), upgraded.headers(), upgraded.body())
}

/// FNV-1a, 64 bits: a checksum to compare a mebibyte by.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

async fn a_mebibyte_is_echoed_both_ways_at_once(kind: TransportKind) {
    let server = UpgradeServer::start();
    let client = kind.client(server.config()).unwrap();
    let upgraded = within(&client, "the upgrade", client.upgrade(exec("echo"))).await.unwrap();
    assert_eq!(verify(&server, exec("echo"), &upgraded).unwrap(), "v5.channel.k8s.io");
    let (mut reader, mut writer) = upgraded.into_stream().expect("switched").split();

    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let data: Vec<u8> = (0..1 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let writing = async {
        // In pieces of uneven sizes, so that reads and writes interleave.
        for piece in data.chunks(12_345) {
            writer.write_all(piece).await.unwrap();
        }
        writer.flush().await.unwrap();
    };
    let reading = async {
        let mut echoed = vec![0u8; data.len()];
        reader.read_exact(&mut echoed).await.unwrap();
        echoed
    };
    let ((), echoed) = within(&client, "a mebibyte each way", join(writing, reading)).await;
    assert_eq!((echoed.len(), fnv1a(&echoed)), (data.len(), fnv1a(&data)));

    // Ending our side ends the server's: the stream reads to its end, cleanly.
    within(&client, "closing", writer.close()).await.unwrap();
    let mut rest = Vec::new();
    within(&client, "the server's end", reader.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty(), "{} bytes after the echo", rest.len());
}

async fn bytes_in_the_101_packet_are_not_lost(kind: TransportKind) {
    let server = UpgradeServer::start();
    let client = kind.client(server.config()).unwrap();
    // A port-forward request this time: the transport does not care which.
    let request = Request::namespaced::<Pod>("default").portforward("greet", &[8080]).unwrap();
    let upgraded = within(&client, "the upgrade", client.upgrade(request.clone())).await.unwrap();
    assert_eq!(verify(&server, request, &upgraded).unwrap(), "v4.channel.k8s.io");
    let mut stream = upgraded.into_stream().expect("switched");
    let mut greeting = vec![0u8; GREETING.len()];
    within(&client, "the greeting", stream.read_exact(&mut greeting)).await.unwrap();
    assert_eq!(greeting, GREETING);
    stream.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    within(&client, "the echo", stream.read_exact(&mut echoed)).await.unwrap();
    assert_eq!(&echoed, b"ping");
}

async fn refusals_come_back_with_their_status(kind: TransportKind) {
    let server = UpgradeServer::start();
    let client = kind.client(server.config()).unwrap();

    let refused = within(&client, "the upgrade", client.upgrade(exec("forbidden"))).await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_eq!(refused.headers()["content-type"], "application/json");
    match verify(&server, exec("forbidden"), &refused) {
        Err(HandshakeError::Refused(e)) => {
            assert_eq!((e.http_status(), e.reason()), (403, Some(&Reason::Forbidden)));
            assert!(e.to_string().contains("cannot create resource \"pods/exec\""), "{e}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(refused.into_stream().is_none());

    let missing = within(&client, "the upgrade", client.upgrade(exec("no-such-pod"))).await.unwrap();
    match verify(&server, exec("no-such-pod"), &missing) {
        Err(HandshakeError::Refused(e)) => assert!(e.is_not_found(), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn a_connection_cut_mid_stream_is_an_error(kind: TransportKind) {
    let server = UpgradeServer::start();
    let client = kind.client(server.config()).unwrap();
    let upgraded = within(&client, "the upgrade", client.upgrade(exec("cut"))).await.unwrap();
    let mut stream = upgraded.into_stream().expect("switched");
    let mut received = 0;
    let mut buf = [0u8; 4096];
    let end = loop {
        match within(&client, "reading", stream.read(&mut buf)).await {
            Ok(0) => break Ok(()),
            Ok(n) => received += n,
            Err(e) => break Err(e),
        }
    };
    assert_eq!(received, CUT_AFTER, "what came before the cut is delivered");
    // TLS without its closing alert: truncation, not a clean end.
    let e = end.expect_err("a cut connection is not a clean end");
    assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
}

async fn a_clean_close_is_the_end_of_the_stream(kind: TransportKind) {
    let server = UpgradeServer::start();
    let client = kind.client(server.config()).unwrap();
    let upgraded = within(&client, "the upgrade", client.upgrade(exec("bye"))).await.unwrap();
    let mut stream = upgraded.into_stream().expect("switched");
    let mut all = Vec::new();
    within(&client, "reading to the end", stream.read_to_end(&mut all)).await.unwrap();
    assert_eq!(all, b"bye");
}

async fn the_token_goes_with_the_upgrade(kind: TransportKind) {
    let server = UpgradeServer::start();
    let client = kind.client(server.config()).unwrap();
    let upgraded = within(&client, "the upgrade", client.upgrade(exec("echo"))).await.unwrap();
    assert_eq!(upgraded.status(), 101);
    let seen = server.requests().pop().unwrap();
    assert_eq!(seen.method, "GET");
    assert!(seen.target.starts_with("/api/v1/namespaces/default/pods/echo/exec?command=cat&"), "{}", seen.target);
    assert_eq!(seen.header("authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(seen.header("connection"), Some("Upgrade"));
    assert_eq!(seen.header("upgrade"), Some("websocket"));
    assert_eq!(seen.header("sec-websocket-version"), Some("13"));
    assert!(seen.header("user-agent").is_some_and(|ua| ua.starts_with("kube-proto/")));
    assert_eq!(seen.header("host"), Some(format!("127.0.0.1:{}", server.url().port().unwrap()).as_str()));

    // Another token: the server's 401 comes back as the refusal.
    let mut config = server.config();
    config.auth = kube_proto::config::AuthSpec::Token(kube_proto::config::SecretString::new("not-the-token"));
    let client = kind.client(config).unwrap();
    let refused = within(&client, "the upgrade", client.upgrade(exec("echo"))).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(String::from_utf8_lossy(refused.body()).contains("Unauthorized"));
}

/// A transport of one's own that implements only `send`: upgrades are refused in words, and
/// nothing is sent.
#[tokio::test]
async fn a_transport_without_upgrades_says_so() {
    struct SendOnly(transport_hyper::HyperTransport);

    impl kube_runtime::Transport for SendOnly {
        fn send(
            &self,
            request: http::Request<Vec<u8>>,
        ) -> futures_util::future::BoxFuture<'static, Result<kube_runtime::TransportResponse, TransportError>> {
            self.0.send(request)
        }

        fn sleep_until(&self, deadline: std::time::Instant) -> futures_util::future::BoxFuture<'static, ()> {
            self.0.sleep_until(deadline)
        }
    }

    let server = UpgradeServer::start();
    let config = server.config();
    let transport = transport_hyper::HyperTransport::builder(&config).no_env_proxy().build().unwrap();
    let client = Client::new(SendOnly(transport), config).unwrap();
    match client.upgrade(exec("echo")).await {
        Err(Error::Transport(TransportError::Unsupported(message))) => {
            assert!(message.contains("exec, attach and port-forward"), "{message}");
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(server.requests().is_empty());
}
