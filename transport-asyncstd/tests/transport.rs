//! The transport against local servers on 127.0.0.1: plain and TLS, streaming, failures,
//! timeouts, the connection pool and a CONNECT proxy.

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube_proto::config::auth::ExecRequest;
use kube_proto::config::{Config, Identity, SecretString};
use kube_proto::proxy::ProxyEnv;
use kube_runtime::{Transport, TransportError, TransportResponse};
use support::{Ca, Step, chunk, chunked_head, response, serve, server_tls};
use transport_asyncstd::AsyncStdTransport;

/// Fails a test rather than hanging it.
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    async_std::future::timeout(Duration::from_secs(20), f).await.unwrap_or_else(|_| panic!("{what} took too long"))
}

fn get(url: &url::Url, path: &str) -> http::Request<Vec<u8>> {
    http::Request::get(url.join(path).unwrap().as_str()).body(Vec::new()).unwrap()
}

async fn send(t: &AsyncStdTransport, req: http::Request<Vec<u8>>) -> Result<TransportResponse, TransportError> {
    within("the request", t.send(req)).await
}

/// The whole body, or the first error (with the bytes read before it).
async fn read_all(resp: TransportResponse) -> (Vec<u8>, Option<TransportError>) {
    let mut body = resp.body;
    let mut out = Vec::new();
    while let Some(chunk) = within("reading the body", body.next()).await {
        match chunk {
            Ok(c) => out.extend_from_slice(&c),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

async fn body_text(resp: TransportResponse) -> String {
    let (body, err) = read_all(resp).await;
    assert_eq!(err, None);
    String::from_utf8(body).unwrap()
}

fn ok(body: &str) -> Vec<Step> {
    vec![Step::Send(response(200, &[("content-type", "text/plain"), ("x-served", "yes")], body.as_bytes()))]
}

#[async_std::test]
async fn get_round_trip() {
    let server = serve(None, |seen| ok(&format!("{} {}", seen.method, seen.target))).await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    let req = http::Request::get(server.url(false).join("/api/v1/pods?limit=2").unwrap().as_str())
        .header("authorization", "Bearer s3cr3t")
        .header("x-multi", "a")
        .header("x-multi", "b")
        .body(Vec::new())
        .unwrap();
    let resp = send(&t, req).await.unwrap();
    assert_eq!(resp.status, http::StatusCode::OK);
    assert_eq!(resp.headers["x-served"], "yes");
    assert_eq!(resp.headers["content-type"], "text/plain");
    assert_eq!(body_text(resp).await, "GET /api/v1/pods?limit=2");
    let seen = &server.requests()[0];
    assert_eq!(seen.headers["authorization"], "Bearer s3cr3t");
    assert_eq!(seen.headers["x-multi"], "a, b");
    assert_eq!(seen.headers["host"], server.addr.to_string());
    assert!(!seen.headers.contains_key("content-type"), "no content type is made up: {:?}", seen.headers);
    // No header is made up (a Date when the server sent none, say).
    let resp = send(&t, get(&server.url(false), "/")).await.unwrap();
    assert!(!resp.headers.contains_key("date"), "{:?}", resp.headers);
}

#[async_std::test]
async fn post_body_and_error_statuses_pass_through() {
    let server =
        serve(None, |seen| vec![Step::Send(response(404, &[("content-type", "application/json")], &seen.body))]).await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    let req = http::Request::post(server.url(false).join("/api/v1/namespaces").unwrap().as_str())
        .header("content-type", "application/json")
        .body(br#"{"kind":"Namespace"}"#.to_vec())
        .unwrap();
    let resp = send(&t, req).await.unwrap();
    assert_eq!(resp.status, http::StatusCode::NOT_FOUND);
    assert_eq!(body_text(resp).await, r#"{"kind":"Namespace"}"#);
    let seen = &server.requests()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.headers["content-type"], "application/json");
    assert_eq!(seen.headers["content-length"], "20");
}

#[async_std::test]
async fn connections_are_reused() {
    let server =
        serve(
            None,
            |seen| {
                if seen.target == "/empty" { vec![Step::Send(response(204, &[], b""))] } else { ok("hello") }
            },
        )
        .await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    for path in ["/a", "/b", "/empty", "/c"] {
        let resp = send(&t, get(&server.url(false), path)).await.unwrap();
        let expected = if path == "/empty" { "" } else { "hello" };
        assert_eq!(body_text(resp).await, expected);
        assert_eq!(t.idle_connections(), 1, "after {path}");
    }
    assert_eq!(server.connection_count(), 1);
    assert!(server.requests().iter().all(|r| r.connection == 1));
}

/// A burst of concurrent requests needs a connection each (HTTP/1.1); all of them are kept, so
/// the next burst opens none.
#[async_std::test]
async fn a_burst_of_concurrent_requests_keeps_its_connections_for_the_next() {
    let server = serve(None, |_| ok("hello")).await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    for burst in 0..2 {
        let requests = (0..16).map(|i| send(&t, get(&server.url(false), &format!("/{burst}/{i}"))));
        for resp in futures_util::future::join_all(requests).await {
            assert_eq!(body_text(resp.unwrap()).await, "hello");
        }
        let opened = server.connection_count();
        assert!(opened <= 16, "burst {burst}: {opened} connections for 16 requests at once");
    }
    assert_eq!(t.idle_connections(), server.connection_count(), "every connection kept");
}

#[async_std::test]
async fn a_connection_the_server_closed_is_replaced() {
    // The server closes each connection after answering, without saying so.
    let server = serve(None, |_| {
        let mut steps = ok("fine");
        steps.push(Step::Close);
        steps
    })
    .await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    for _ in 0..3 {
        let resp = send(&t, get(&server.url(false), "/")).await.unwrap();
        assert_eq!(body_text(resp).await, "fine");
        // Let the close arrive.
        async_std::task::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.connection_count(), 3);
}

#[async_std::test]
async fn a_pooled_connection_failing_before_the_response_is_retried_once_on_a_new_one() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // The second request on the first connection is read, then the connection is closed
    // unanswered: the server had given up on it.
    let on_first = AtomicUsize::new(0);
    let server = serve(None, move |seen| {
        if seen.connection == 1 && on_first.fetch_add(1, Ordering::SeqCst) == 1 {
            vec![Step::Close]
        } else {
            ok("fine")
        }
    })
    .await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    for _ in 0..2 {
        let resp = send(&t, get(&server.url(false), "/")).await.unwrap();
        assert_eq!(body_text(resp).await, "fine");
    }
    let connections: Vec<usize> = server.requests().iter().map(|r| r.connection).collect();
    assert_eq!(connections, [1, 1, 2]);
}

#[async_std::test]
async fn a_new_connection_closed_before_the_response_is_closed_and_not_retried() {
    let server = serve(None, |_| vec![Step::Close]).await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    let err = send(&t, get(&server.url(false), "/")).await.unwrap_err();
    assert!(matches!(err, TransportError::Closed(_)), "{err:?}");
    assert_eq!(server.connection_count(), 1);
}

#[async_std::test]
async fn responses_without_a_body() {
    let server = serve(None, |seen| match (seen.method.as_str(), seen.target.as_str()) {
        // The length of the body a GET would have had.
        ("HEAD", _) => vec![Step::Send(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n".to_vec())],
        (_, "/not-modified") => vec![Step::Send(b"HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\n\r\n".to_vec())],
        (_, "/no-content") => vec![Step::Send(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec())],
        _ => ok("hello"),
    })
    .await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    let head = http::Request::head(server.url(false).as_str()).body(Vec::new()).unwrap();
    let resp = send(&t, head).await.unwrap();
    assert_eq!(resp.headers["content-length"], "5");
    assert_eq!(body_text(resp).await, "");
    for path in ["/not-modified", "/no-content", "/"] {
        let resp = send(&t, get(&server.url(false), path)).await.unwrap();
        assert_eq!(body_text(resp).await, if path == "/" { "hello" } else { "" });
    }
    assert_eq!(server.connection_count(), 1);
}

#[async_std::test]
async fn bodies_delimited_by_close_are_read_to_the_close_and_the_connection_not_reused() {
    let server = serve(None, |_| vec![Step::Send(b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec()), Step::Close]).await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    for _ in 0..2 {
        let resp = send(&t, get(&server.url(false), "/")).await.unwrap();
        assert_eq!(body_text(resp).await, "until the end");
    }
    assert_eq!(server.connection_count(), 2);
    assert_eq!(t.idle_connections(), 0);
}

#[async_std::test]
async fn heads_http_types_cannot_hold_come_through_exactly() {
    // A status http-types does not know, and a header value with bytes above 0x7f.
    let server = serve(None, |_| {
        vec![Step::Send(b"HTTP/1.1 299 Whatever\r\nx-name: caf\xc3\xa9\r\ncontent-length: 2\r\n\r\nok".to_vec())]
    })
    .await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    let resp = send(&t, get(&server.url(false), "/")).await.unwrap();
    assert_eq!(resp.status.as_u16(), 299);
    assert_eq!(resp.headers["x-name"].as_bytes(), "café".as_bytes());
    assert_eq!(body_text(resp).await, "ok");
}

#[async_std::test]
async fn concurrent_requests_use_connections_of_their_own() {
    let (go_on, wait) = async_std::channel::bounded::<()>(1);
    let server = serve(None, move |seen| {
        if seen.target.contains("watch") {
            vec![
                Step::Send(chunked_head(200, &[])),
                Step::Send(chunk(b"event")),
                Step::WaitFor(wait.clone()),
                Step::Send(chunk(b"")),
            ]
        } else {
            ok("listed")
        }
    })
    .await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    let watch = send(&t, get(&server.url(false), "/?watch=1")).await.unwrap();
    let mut events = watch.body;
    assert_eq!(&within("an event", events.next()).await.unwrap().unwrap()[..], b"event");
    // The watch holds its connection: a list goes on another.
    let resp = send(&t, get(&server.url(false), "/")).await.unwrap();
    assert_eq!(body_text(resp).await, "listed");
    go_on.send(()).await.unwrap();
    assert!(within("the end of the watch", events.next()).await.is_none());
    assert_eq!(server.connection_count(), 2);
    assert_eq!(t.idle_connections(), 2);
}

#[async_std::test]
async fn idle_connections_expire() {
    let server = serve(None, |_| ok("hi")).await;
    let t = AsyncStdTransport::builder(&Config::new(server.url(false)))
        .pool_idle_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let resp = send(&t, get(&server.url(false), "/")).await.unwrap();
    assert_eq!(body_text(resp).await, "hi");
    async_std::task::sleep(Duration::from_millis(200)).await;
    let resp = send(&t, get(&server.url(false), "/")).await.unwrap();
    assert_eq!(body_text(resp).await, "hi");
    assert_eq!(server.connection_count(), 2);

    let t = AsyncStdTransport::builder(&Config::new(server.url(false))).pool_max_idle_per_host(0).build().unwrap();
    let resp = send(&t, get(&server.url(false), "/")).await.unwrap();
    assert_eq!(body_text(resp).await, "hi");
    assert_eq!(t.idle_connections(), 0);
}

#[async_std::test]
async fn connection_close_is_honoured() {
    let server =
        serve(None, |_| vec![Step::Send(response(200, &[("connection", "close")], b"bye")), Step::Close]).await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    let resp = send(&t, get(&server.url(false), "/")).await.unwrap();
    assert_eq!(body_text(resp).await, "bye");
    assert_eq!(t.idle_connections(), 0);
    let resp = send(&t, get(&server.url(false), "/")).await.unwrap();
    assert_eq!(body_text(resp).await, "bye");
    assert_eq!(server.connection_count(), 2);
}

#[async_std::test]
async fn chunked_bodies_stream_chunk_by_chunk() {
    let (go_on, wait) = async_std::channel::bounded::<()>(1);
    let server = serve(None, move |_| {
        vec![
            Step::Send(chunked_head(200, &[("content-type", "application/json")])),
            Step::Send(chunk(b"{\"type\":\"ADDED\"}\n")),
            Step::WaitFor(wait.clone()),
            Step::Send(chunk(b"{\"type\":\"MODIFIED\"}\n")),
            Step::Send(chunk(b"")),
        ]
    })
    .await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    let resp = send(&t, get(&server.url(false), "/api/v1/pods?watch=1")).await.unwrap();
    let mut body = resp.body;
    // The first event arrives while the server still holds the second back.
    let first = within("the first chunk", body.next()).await.unwrap().unwrap();
    assert_eq!(&first[..], b"{\"type\":\"ADDED\"}\n");
    go_on.send(()).await.unwrap();
    let mut rest = Vec::new();
    while let Some(c) = within("the rest", body.next()).await {
        rest.extend_from_slice(&c.unwrap());
    }
    assert_eq!(rest, b"{\"type\":\"MODIFIED\"}\n");
    drop(body);
    assert_eq!(t.idle_connections(), 1, "a chunked body read to its end frees the connection");
}

#[async_std::test]
async fn a_body_cut_mid_stream_is_closed() {
    let server = serve(None, |seen| match seen.target.as_str() {
        "/length" => {
            vec![Step::Send(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten!!".to_vec()), Step::Close]
        }
        _ => vec![Step::Send(chunked_head(200, &[])), Step::Send(chunk(b"first")), Step::Close],
    })
    .await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    for (path, before) in [("/length", &b"only ten!!"[..]), ("/chunked", b"first")] {
        let resp = send(&t, get(&server.url(false), path)).await.unwrap();
        let (got, err) = read_all(resp).await;
        assert_eq!(got, before, "{path}");
        assert!(matches!(err, Some(TransportError::Closed(_))), "{path}: {err:?}");
    }
    assert_eq!(t.idle_connections(), 0);
}

#[async_std::test]
async fn connection_refused_is_connect() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url: url::Url = format!("http://{addr}/").parse().unwrap();
    let t = AsyncStdTransport::new(&Config::new(url.clone())).unwrap();
    let err = send(&t, get(&url, "/")).await.unwrap_err();
    let TransportError::Connect { url: shown, .. } = &err else { panic!("{err:?}") };
    assert_eq!(shown, &format!("http://{addr}"));
}

#[async_std::test]
async fn no_response_head_times_out() {
    let server = serve(None, |_| vec![Step::Pause(Duration::from_secs(30))]).await;
    let t = AsyncStdTransport::builder(&Config::new(server.url(false)))
        .read_timeout(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = send(&t, get(&server.url(false), "/")).await.unwrap_err();
    assert!(matches!(err, TransportError::Timeout(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(server.connection_count(), 1, "a timed-out request is not sent again");
}

#[async_std::test]
async fn a_stalled_body_times_out() {
    let server = serve(None, |_| {
        vec![Step::Send(chunked_head(200, &[])), Step::Send(chunk(b"some")), Step::Pause(Duration::from_secs(30))]
    })
    .await;
    let t = AsyncStdTransport::builder(&Config::new(server.url(false)))
        .read_timeout(Some(Duration::from_millis(300)))
        .build()
        .unwrap();
    let resp = send(&t, get(&server.url(false), "/")).await.unwrap();
    let (got, err) = read_all(resp).await;
    assert_eq!(got, b"some");
    assert!(matches!(err, Some(TransportError::Timeout(_))), "{err:?}");
}

#[async_std::test]
async fn a_stalled_tls_handshake_is_a_connect_timeout() {
    // Accepts TCP connections and never answers the ClientHello.
    let listener = async_std::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    async_std::task::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let url: url::Url = format!("https://{addr}/").parse().unwrap();
    let t = AsyncStdTransport::builder(&Config::new(url.clone()))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let err = send(&t, get(&url, "/")).await.unwrap_err();
    let TransportError::Timeout(message) = &err else { panic!("{err:?}") };
    assert!(message.contains("connecting"), "{message}");
}

fn tls_config(url: url::Url, ca: &Ca) -> Config {
    Config { root_certs: vec![ca.der.clone()], ..Config::new(url) }
}

#[async_std::test]
async fn tls_with_the_cluster_ca() {
    let ca = Ca::new("cluster ca");
    let server = serve(Some(server_tls(&ca.server(&["localhost", "127.0.0.1"]), None)), |_| ok("secure")).await;
    let t = AsyncStdTransport::new(&tls_config(server.url(true), &ca)).unwrap();
    for _ in 0..2 {
        let resp = send(&t, get(&server.url(true), "/version")).await.unwrap();
        assert_eq!(body_text(resp).await, "secure");
    }
    assert_eq!(server.connection_count(), 1, "TLS connections are reused too");
    // By name as well as by address.
    let by_name: url::Url = format!("https://localhost:{}/", server.addr.port()).parse().unwrap();
    let t = AsyncStdTransport::new(&tls_config(by_name.clone(), &ca)).unwrap();
    let resp = send(&t, get(&by_name, "/version")).await.unwrap();
    assert_eq!(body_text(resp).await, "secure");
}

#[async_std::test]
async fn tls_with_the_wrong_ca_fails_and_insecure_accepts() {
    let ca = Ca::new("cluster ca");
    let other = Ca::new("another ca");
    let server = serve(Some(server_tls(&ca.server(&["127.0.0.1"]), None)), |_| ok("secure")).await;
    let t = AsyncStdTransport::new(&tls_config(server.url(true), &other)).unwrap();
    let err = send(&t, get(&server.url(true), "/")).await.unwrap_err();
    let TransportError::Tls { url, message } = &err else { panic!("{err:?}") };
    assert_eq!(url, &format!("https://{}", server.addr));
    assert!(message.contains("certificate"), "{message}");

    let insecure = Config { accept_invalid_certs: true, ..Config::new(server.url(true)) };
    let t = AsyncStdTransport::new(&insecure).unwrap();
    let resp = send(&t, get(&server.url(true), "/")).await.unwrap();
    assert_eq!(body_text(resp).await, "secure");
}

#[async_std::test]
async fn a_tls_body_cut_mid_stream_is_closed() {
    let ca = Ca::new("cluster ca");
    let server = serve(Some(server_tls(&ca.server(&["127.0.0.1"]), None)), |_| {
        vec![Step::Send(chunked_head(200, &[])), Step::Send(chunk(b"first")), Step::Close]
    })
    .await;
    let t = AsyncStdTransport::new(&tls_config(server.url(true), &ca)).unwrap();
    let resp = send(&t, get(&server.url(true), "/")).await.unwrap();
    let (got, err) = read_all(resp).await;
    assert_eq!(got, b"first");
    assert!(matches!(err, Some(TransportError::Closed(_))), "{err:?}");
}

#[async_std::test]
async fn tls_server_name_overrides_the_host() {
    let ca = Ca::new("cluster ca");
    let server = serve(Some(server_tls(&ca.server(&["kubernetes.test"]), None)), |_| ok("named")).await;
    // The certificate does not name 127.0.0.1.
    let t = AsyncStdTransport::new(&tls_config(server.url(true), &ca)).unwrap();
    let err = send(&t, get(&server.url(true), "/")).await.unwrap_err();
    assert!(matches!(&err, TransportError::Tls { message, .. } if message.contains("tls-server-name")), "{err:?}");
    let named = Config { tls_server_name: Some("kubernetes.test".into()), ..tls_config(server.url(true), &ca) };
    let t = AsyncStdTransport::new(&named).unwrap();
    let resp = send(&t, get(&server.url(true), "/")).await.unwrap();
    assert_eq!(body_text(resp).await, "named");
}

#[async_std::test]
async fn client_certificates_are_presented() {
    let ca = Ca::new("cluster ca");
    let server = serve(Some(server_tls(&ca.server(&["127.0.0.1"]), Some(&ca))), |seen| {
        ok(if seen.client_cert { "with cert" } else { "without" })
    })
    .await;
    let client = ca.client("admin");
    let identity = Identity::from_pem(client.cert_pem.into_bytes(), client.key_pem.into_bytes(), "test").unwrap();
    let with = Config { identity: Some(identity), ..tls_config(server.url(true), &ca) };
    let t = AsyncStdTransport::new(&with).unwrap();
    let resp = send(&t, get(&server.url(true), "/")).await.unwrap();
    assert_eq!(body_text(resp).await, "with cert");

    // The server requires one: without it, the handshake is refused.
    let t = AsyncStdTransport::new(&tls_config(server.url(true), &ca)).unwrap();
    let err = send(&t, get(&server.url(true), "/")).await.unwrap_err();
    assert!(matches!(&err, TransportError::Tls { message, .. } if message.contains("client certificate")), "{err:?}");
}

#[async_std::test]
async fn https_through_a_connect_proxy() {
    let ca = Ca::new("cluster ca");
    let server = serve(Some(server_tls(&ca.server(&["127.0.0.1"]), None)), |_| ok("tunnelled")).await;
    let proxy = support::proxy(None).await;
    let config = Config {
        proxy_url: Some(format!("http://user:p%40ss@{}", proxy.addr).parse().unwrap()),
        ..tls_config(server.url(true), &ca)
    };
    let t = AsyncStdTransport::new(&config).unwrap();
    for _ in 0..2 {
        let resp = send(&t, get(&server.url(true), "/")).await.unwrap();
        assert_eq!(body_text(resp).await, "tunnelled");
    }
    let heads = proxy.heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 1, "the tunnel is reused: {heads:?}");
    assert!(heads[0].starts_with(&format!("CONNECT {} HTTP/1.1\r\n", server.addr)), "{}", heads[0]);
    // "user:p@ss"
    assert!(heads[0].contains("Proxy-Authorization: Basic dXNlcjpwQHNz\r\n"), "{}", heads[0]);
}

#[async_std::test]
async fn plain_http_through_a_connect_proxy() {
    let server = serve(None, |_| ok("plain")).await;
    let proxy = support::proxy(None).await;
    let config =
        Config { proxy_url: Some(format!("http://{}", proxy.addr).parse().unwrap()), ..Config::new(server.url(false)) };
    let t = AsyncStdTransport::new(&config).unwrap();
    let resp = send(&t, get(&server.url(false), "/")).await.unwrap();
    assert_eq!(body_text(resp).await, "plain");
    let heads = proxy.heads.lock().unwrap().clone();
    assert!(heads[0].starts_with(&format!("CONNECT {} HTTP/1.1\r\n", server.addr)), "{}", heads[0]);
    assert!(!heads[0].contains("Proxy-Authorization"), "{}", heads[0]);
}

#[async_std::test]
async fn proxy_refusals_and_unsupported_proxies() {
    let server = serve(None, |_| ok("never")).await;
    let proxy = support::proxy(Some(403)).await;
    let config =
        Config { proxy_url: Some(format!("http://{}", proxy.addr).parse().unwrap()), ..Config::new(server.url(false)) };
    let t = AsyncStdTransport::new(&config).unwrap();
    let err = send(&t, get(&server.url(false), "/")).await.unwrap_err();
    assert!(matches!(&err, TransportError::Connect { message, .. } if message.contains("403")), "{err:?}");

    for scheme in ["socks5", "https"] {
        let config = Config {
            proxy_url: Some(format!("{scheme}://127.0.0.1:1080").parse().unwrap()),
            ..Config::new(server.url(false))
        };
        let err = AsyncStdTransport::new(&config).unwrap_err();
        assert!(matches!(&err, TransportError::Unsupported(m) if m.contains("proxy-url")), "{err:?}");
    }
}

#[async_std::test]
async fn environment_proxies_apply_except_to_loopback_and_no_proxy() {
    let proxy = support::proxy(Some(407)).await;
    let env = || {
        ProxyEnv::new()
            .with_https_proxy(format!("http://{}", proxy.addr))
            .with_http_proxy(format!("http://{}", proxy.addr))
    };
    // A host only the proxy could reach: it is asked, and refuses, in words.
    let config = Config::new("https://kube.test:6443".parse().unwrap());
    let t = AsyncStdTransport::builder(&config).proxy_env(env()).build().unwrap();
    let err = send(&t, get(&config.cluster_url, "/")).await.unwrap_err();
    let TransportError::Connect { url, message } = &err else { panic!("{err:?}") };
    assert_eq!(url, "https://kube.test:6443");
    assert!(message.contains("407") && message.contains("HTTPS_PROXY has no credentials"), "{message}");
    assert!(proxy.heads.lock().unwrap()[0].starts_with("CONNECT kube.test:6443 HTTP/1.1\r\n"));
    // NO_PROXY: direct (and this name does not resolve).
    let t = AsyncStdTransport::builder(&config).proxy_env(env().with_no_proxy(".test")).build().unwrap();
    let err = send(&t, get(&config.cluster_url, "/")).await.unwrap_err();
    assert!(matches!(&err, TransportError::Connect { message, .. } if !message.contains("proxy")), "{err:?}");
    // Loopback: direct.
    let server = serve(None, |_| ok("direct")).await;
    let t = AsyncStdTransport::builder(&Config::new(server.url(false))).proxy_env(env()).build().unwrap();
    assert_eq!(body_text(send(&t, get(&server.url(false), "/")).await.unwrap()).await, "direct");
    assert_eq!(proxy.heads.lock().unwrap().len(), 1);
}

fn upgrade_request(url: &url::Url) -> http::Request<Vec<u8>> {
    http::Request::get(url.join("/api/v1/namespaces/ns/pods/p/exec?command=cat").unwrap().as_str())
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(Vec::new())
        .unwrap()
}

const SWITCHED: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

#[async_std::test]
async fn upgrade_over_tls_through_a_connect_proxy() {
    use futures_util::{AsyncReadExt as _, AsyncWriteExt as _};
    let ca = Ca::new("cluster ca");
    // The first bytes of the new protocol in the same write as the 101 head.
    let server = serve(Some(server_tls(&ca.server(&["127.0.0.1"]), None)), |_| {
        vec![Step::Send([SWITCHED, b"first"].concat()), Step::Echo]
    })
    .await;
    let proxy = support::proxy(None).await;
    let config = Config {
        proxy_url: Some(format!("http://{}", proxy.addr).parse().unwrap()),
        ..tls_config(server.url(true), &ca)
    };
    let t = AsyncStdTransport::new(&config).unwrap();
    let up = within("the upgrade", t.upgrade(upgrade_request(&server.url(true)))).await.unwrap();
    assert_eq!(up.status(), http::StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(up.headers()["upgrade"], "websocket");
    let mut stream = up.into_stream().unwrap();
    let mut first = [0u8; 5];
    within("the first bytes", stream.read_exact(&mut first)).await.unwrap();
    assert_eq!(&first, b"first");
    stream.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    within("the echo", stream.read_exact(&mut echoed)).await.unwrap();
    assert_eq!(&echoed, b"ping");
    stream.close().await.unwrap();
    let mut rest = Vec::new();
    within("the end", stream.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    let seen = &server.requests()[0];
    assert_eq!(seen.target, "/api/v1/namespaces/ns/pods/p/exec?command=cat");
    assert_eq!(seen.headers["sec-websocket-key"], "dGhlIHNhbXBsZSBub25jZQ==");
    assert_eq!(seen.headers["host"], server.addr.to_string());
    assert_eq!(proxy.heads.lock().unwrap().len(), 1);
    assert_eq!(t.idle_connections(), 0, "an upgraded connection is never pooled");
}

#[async_std::test]
async fn a_refused_upgrade_keeps_its_chunked_body() {
    let status = br#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#;
    let server = serve(None, move |_| {
        let mut answer = chunked_head(404, &[("content-type", "application/json")]);
        for part in status.chunks(16) {
            answer.extend(chunk(part));
        }
        answer.extend(chunk(b""));
        vec![Step::Send(answer)]
    })
    .await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    let up = within("the upgrade", t.upgrade(upgrade_request(&server.url(false)))).await.unwrap();
    assert_eq!((up.status(), up.body()), (http::StatusCode::NOT_FOUND, &status[..]));
    assert_eq!(up.headers()["content-type"], "application/json");
    assert!(up.into_stream().is_none());
}

#[async_std::test]
async fn an_upgrade_answer_that_never_comes_times_out() {
    let server = serve(None, |_| vec![Step::Pause(Duration::from_secs(5))]).await;
    let config = Config::new(server.url(false));
    let t = AsyncStdTransport::builder(&config).read_timeout(Some(Duration::from_millis(200))).build().unwrap();
    let err = within("the upgrade", t.upgrade(upgrade_request(&server.url(false)))).await.unwrap_err();
    assert!(matches!(err, TransportError::Timeout(_)), "{err:?}");
    // A server that closes before a whole head.
    let server = serve(None, |_| vec![Step::Send(b"HTTP/1.1 101 Swi".to_vec()), Step::Close]).await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    let err = within("the upgrade", t.upgrade(upgrade_request(&server.url(false)))).await.unwrap_err();
    assert!(matches!(err, TransportError::Closed(_)), "{err:?}");
}

#[async_std::test]
async fn upgrade_requests_through_send_are_refused() {
    let server = serve(None, |_| ok("never")).await;
    let t = AsyncStdTransport::new(&Config::new(server.url(false))).unwrap();
    let req = http::Request::get(server.url(false).as_str())
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .body(Vec::new())
        .unwrap();
    let err = send(&t, req).await.unwrap_err();
    assert!(matches!(err, TransportError::Unsupported(_)), "{err:?}");
    assert!(server.requests().is_empty());
}

#[async_std::test]
async fn runs_processes_and_sleeps() {
    let t = AsyncStdTransport::new(&Config::new("http://127.0.0.1:1/".parse().unwrap())).unwrap();
    let request = ExecRequest {
        command: "sh".into(),
        args: vec!["-c".into(), "echo \"out $TOKEN\"; echo err >&2; exit 3".into()],
        env: vec![("TOKEN".into(), SecretString::new("t0k".to_owned()))],
        interactive: false,
        install_hint: None,
    };
    let output = within("the process", t.run_process(request)).await.unwrap();
    assert_eq!(output.status, Some(3));
    assert_eq!(output.stdout, b"out t0k\n");
    assert_eq!(output.stderr, b"err\n");
    let missing = ExecRequest {
        command: "/nonexistent/kube-plugin".into(),
        args: vec![],
        env: vec![],
        interactive: false,
        install_hint: None,
    };
    let err = within("the process", t.run_process(missing)).await.unwrap_err();
    assert!(err.contains("not found"), "{err}");
    #[cfg(unix)]
    {
        // An interactive plugin's prompts go to the terminal, not to the capture.
        let interactive = ExecRequest {
            command: "sh".into(),
            args: vec!["-c".into(), "echo 'Password:' >&2; printf '{}'".into()],
            env: vec![],
            interactive: true,
            install_hint: None,
        };
        let output = within("the process", t.run_process(interactive)).await.unwrap();
        assert_eq!((output.stdout.as_slice(), output.stderr.as_slice()), (&b"{}"[..], &b""[..]));
    }

    let started = Instant::now();
    within("the sleep", t.sleep_until(t.now() + Duration::from_millis(100))).await;
    assert!(started.elapsed() >= Duration::from_millis(100));
    within("a past deadline", t.sleep_until(started)).await;
}

#[async_std::test]
async fn a_client_over_the_transport() {
    let server = serve(None, |seen| {
        let body = format!(
            r#"{{"major":"1","minor":"34","gitVersion":"{}"}}"#,
            seen.headers.get("authorization").map_or("", |a| a)
        );
        vec![Step::Send(response(200, &[("content-type", "application/json")], body.as_bytes()))]
    })
    .await;
    let mut config = Config::new(server.url(false));
    config.auth = kube_proto::config::AuthSpec::Token(SecretString::new("abc".to_owned()));
    // Plain HTTP: credentials go to a loopback server only when asked to.
    config.send_credentials_over_loopback_http = true;
    let client = transport_asyncstd::client_from_config(config).await.unwrap();
    let request = http::Request::get("/version").body(Vec::new()).unwrap();
    let (status, _, body) = within("the request", client.request_bytes(request)).await.unwrap();
    assert_eq!(status, http::StatusCode::OK);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("Bearer abc"), "{body}");
    assert_eq!(server.requests()[0].target, "/version");
}
