//! `HyperTransport` against local servers on 127.0.0.1: hyper servers (plain, TLS with
//! certificates made by rcgen at test time, HTTP/2 or HTTP/1.1 only), hand-written raw TCP
//! servers for broken responses, and a tiny HTTP CONNECT proxy.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube_proto::config::{Config, Identity};
use kube_proto::proxy::ProxyEnv;
use kube_runtime::{Transport, TransportError, TransportResponse, Upgraded};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::PrivateKeyDer};
use transport_hyper::HyperTransport;

// ---------------------------------------------------------------------------------------------
// Certificates

/// A CA and certificates it signed, made fresh for each test.
struct Pki {
    ca_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate with its key.
struct Leaf {
    cert_der: Vec<u8>,
    cert_pem: String,
    key: KeyPair,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let cert = params.self_signed(&key).unwrap();
        Pki { ca_der: cert.der().to_vec(), issuer: Issuer::new(params, key) }
    }

    fn server(&self, names: &[&str]) -> Leaf {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert_der: cert.der().to_vec(), cert_pem: cert.pem(), key }
    }

    fn client_with_key(&self, key: KeyPair) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, "test-user");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf { cert_der: cert.der().to_vec(), cert_pem: cert.pem(), key }
    }

    fn client(&self) -> Leaf {
        self.client_with_key(KeyPair::generate().unwrap())
    }
}

impl Leaf {
    /// The client identity with the key as PKCS#8 (`PRIVATE KEY`).
    fn identity_pkcs8(&self) -> Identity {
        Identity::from_pem(self.cert_pem.clone().into_bytes(), self.key.serialize_pem().into_bytes(), "test").unwrap()
    }

    /// The client identity with the key in its traditional form: SEC1 (`EC PRIVATE KEY`) for
    /// EC keys, PKCS#1 (`RSA PRIVATE KEY`) for RSA keys. Both are the `privateKey` of PKCS#8.
    fn identity_traditional(&self, label: &str) -> Identity {
        let inner = pkcs8_private_key(&self.key.serialize_der());
        Identity::from_pem(self.cert_pem.clone().into_bytes(), pem(label, &inner).into_bytes(), "test").unwrap()
    }
}

/// The `privateKey` OCTET STRING's content of a PKCS#8 `PrivateKeyInfo`.
fn pkcs8_private_key(der: &[u8]) -> Vec<u8> {
    // A DER element: (tag, content, rest).
    fn element(b: &[u8]) -> (u8, &[u8], &[u8]) {
        let tag = b[0];
        let (len, head) = match b[1] {
            n if n < 0x80 => (n as usize, 2),
            n => {
                let count = (n & 0x7f) as usize;
                (b[2..2 + count].iter().fold(0usize, |acc, &x| acc << 8 | x as usize), 2 + count)
            }
        };
        (tag, &b[head..head + len], &b[head + len..])
    }
    let (tag, info, _) = element(der);
    assert_eq!(tag, 0x30);
    let (_, _version, rest) = element(info);
    let (_, _algorithm, rest) = element(rest);
    let (tag, key, _) = element(rest);
    assert_eq!(tag, 0x04);
    key.to_vec()
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// A test-only RSA key (PKCS#8), made with `openssl genpkey`: ring cannot generate RSA keys.
const RSA_KEY_PKCS8: &str = include_str!("fixtures/rsa-client-key.pk8.pem");

// ---------------------------------------------------------------------------------------------
// Servers

#[derive(Clone, Copy, PartialEq)]
enum Protocols {
    /// HTTP/2 and HTTP/1.1 (ALPN `h2`, `http/1.1` under TLS).
    H2AndH1,
    /// HTTP/1.1 only.
    H1,
}

struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Server {
    fn url(&self, scheme: &str, host: &str) -> Config {
        Config::new(format!("{scheme}://{host}:{}", self.addr.port()).parse().unwrap())
    }
}

fn server_tls(leaf: &Leaf, protocols: Protocols, client_ca: Option<&[u8]>) -> Arc<rustls::ServerConfig> {
    let provider = kube_runtime::tls::provider();
    let builder =
        rustls::ServerConfig::builder_with_provider(provider.clone()).with_safe_default_protocol_versions().unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(ca.to_vec())).unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let key = PrivateKeyDer::try_from(leaf.key.serialize_der()).unwrap();
    let mut config = builder.with_single_cert(vec![CertificateDer::from(leaf.cert_der.clone())], key).unwrap();
    config.alpn_protocols = match protocols {
        Protocols::H2AndH1 => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
        Protocols::H1 => vec![b"http/1.1".to_vec()],
    };
    Arc::new(config)
}

/// A hyper server on 127.0.0.1 answering with [`handle`], counting its connections.
async fn serve(tls: Option<Arc<rustls::ServerConfig>>, protocols: Protocols) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    Some(config) => {
                        if let Ok(stream) = TlsAcceptor::from(config).accept(tcp).await {
                            serve_connection(TokioIo::new(stream), protocols).await;
                        }
                    }
                    None => serve_connection(TokioIo::new(tcp), protocols).await,
                }
            });
        }
    });
    Server { addr, connections }
}

async fn serve_connection<I>(io: I, protocols: Protocols)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(handle);
    match protocols {
        Protocols::H2AndH1 => {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(io, service)
                .await;
        }
        Protocols::H1 => {
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).with_upgrades().await;
        }
    }
}

type ResBody = BoxBody<Bytes, Infallible>;

/// `/chunks`: three chunks 30 ms apart; `/upgrade`: switches to an echo protocol when asked;
/// `/target`: the request's target and `Host` header; else `hello`. Every answer names the HTTP
/// version in `x-version`.
async fn handle(mut req: Request<Incoming>) -> Result<Response<ResBody>, Infallible> {
    let version = format!("{:?}", req.version());
    let builder = Response::builder().header("x-version", version);
    let response = match req.uri().path() {
        "/chunks" => {
            let chunks = futures_util::stream::unfold(0, |i| async move {
                if i == 3 {
                    return None;
                }
                if i > 0 {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                }
                Some((Ok::<_, Infallible>(Frame::data(Bytes::from(format!("chunk-{i};")))), i + 1))
            });
            builder.body(BodyExt::boxed(StreamBody::new(chunks)))
        }
        "/upgrade" if req.headers().get("upgrade").is_some() => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(upgraded) = on_upgrade.await else { return };
                let mut io = TokioIo::new(upgraded);
                let mut buf = [0u8; 64];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            builder
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "upgrade")
                .header("upgrade", "echo")
                .body(BodyExt::boxed(Full::new(Bytes::new())))
        }
        "/target" => {
            let host = req.headers().get("host").map(|h| h.to_str().unwrap().to_owned());
            let text = format!("{} host={host:?}", req.uri());
            builder.body(BodyExt::boxed(Full::new(Bytes::from(text))))
        }
        _ => builder.body(BodyExt::boxed(Full::new(Bytes::from_static(b"hello")))),
    };
    Ok(response.unwrap())
}

/// A raw TCP server: for each connection, reads the request head and then runs `script`.
async fn raw_server<F, Fut>(script: F) -> SocketAddr
where
    F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let script = Arc::new(script);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let script = script.clone();
            tokio::spawn(async move {
                read_head(&mut tcp).await;
                script(tcp).await;
            });
        }
    });
    addr
}

/// Reads up to the end of an HTTP head (`\r\n\r\n`), returning it.
async fn read_head(tcp: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// What a [`proxy`] saw: the CONNECT request heads.
type Seen = Arc<Mutex<Vec<String>>>;

/// A tiny HTTP CONNECT proxy that tunnels every request to `target` (whatever host it names),
/// or answers `refuse` when given.
async fn proxy(target: SocketAddr, refuse: Option<&'static str>) -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let head = read_head(&mut client).await;
                log.lock().unwrap().push(head);
                if let Some(status) = refuse {
                    let _ =
                        client.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes()).await;
                    return;
                }
                let Ok(mut upstream) = TcpStream::connect(target).await else { return };
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, seen)
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// A watch request's path: sent on a connection of its own.
const WATCH: &str = "/?watch=true";

fn transport(config: &Config) -> HyperTransport {
    HyperTransport::builder(config).no_env_proxy().build().unwrap()
}

fn get(config: &Config, path: &str) -> Request<Vec<u8>> {
    let url = config.cluster_url.join(path).unwrap();
    Request::get(url.as_str()).body(Vec::new()).unwrap()
}

/// The chunks of a body, each as it arrived.
async fn chunks(response: TransportResponse) -> Vec<Result<Bytes, TransportError>> {
    response.body.collect().await
}

async fn text(response: TransportResponse) -> String {
    let parts: Vec<Bytes> = chunks(response).await.into_iter().map(Result::unwrap).collect();
    String::from_utf8(parts.concat()).unwrap()
}

fn version(response: &TransportResponse) -> &str {
    response.headers.get("x-version").unwrap().to_str().unwrap()
}

async fn send(config: &Config, path: &str) -> Result<TransportResponse, TransportError> {
    transport(config).send(get(config, path)).await
}

/// A TLS server with a certificate for localhost and 127.0.0.1, and a config trusting its CA.
async fn tls_server(protocols: Protocols) -> (Server, Config, Pki) {
    let pki = Pki::new("test CA");
    let leaf = pki.server(&["localhost", "127.0.0.1"]);
    let server = serve(Some(server_tls(&leaf, protocols, None)), protocols).await;
    let mut config = server.url("https", "127.0.0.1");
    config.root_certs = vec![pki.ca_der.clone()];
    (server, config, pki)
}

// ---------------------------------------------------------------------------------------------
// Plain HTTP

#[tokio::test]
async fn get_round_trip_streams_chunks() {
    let server = serve(None, Protocols::H2AndH1).await;
    let config = server.url("http", "127.0.0.1");
    let response = send(&config, "/chunks").await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(version(&response), "HTTP/1.1");
    let parts: Vec<Bytes> = chunks(response).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(parts, ["chunk-0;", "chunk-1;", "chunk-2;"], "each chunk arrives on its own");
}

#[tokio::test]
async fn connections_are_reused() {
    let server = serve(None, Protocols::H1).await;
    let config = server.url("http", "127.0.0.1");
    let transport = transport(&config);
    for _ in 0..3 {
        let response = transport.send(get(&config, "/")).await.unwrap();
        assert_eq!(text(response).await, "hello");
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let config = Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
    let err = send(&config, "/").await.unwrap_err();
    let TransportError::Connect { url, message } = &err else { panic!("{err:?}") };
    assert_eq!(url, &format!("http://127.0.0.1:{port}"));
    assert!(message.to_lowercase().contains("refused"), "{message}");
}

#[tokio::test]
async fn a_body_cut_mid_stream_is_closed() {
    let addr = raw_server(|mut tcp| async move {
        let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789").await;
        let _ = tcp.flush().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        // Dropped: the connection closes 90 bytes short.
    })
    .await;
    let config = Config::new(format!("http://{addr}").parse().unwrap());
    // A request on a pooled connection, and a watch on a connection of its own.
    for path in ["/", WATCH] {
        let response = send(&config, path).await.unwrap();
        assert_eq!(response.status, StatusCode::OK);
        let parts = chunks(response).await;
        assert_eq!(parts.first(), Some(&Ok(Bytes::from_static(b"0123456789"))), "{path}");
        let last = parts.last().unwrap();
        assert!(matches!(last, Err(TransportError::Closed(_))), "{path}: {parts:?}");
    }
}

#[tokio::test]
async fn a_chunked_body_cut_mid_stream_is_closed() {
    let addr = raw_server(|mut tcp| async move {
        let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n").await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    })
    .await;
    let config = Config::new(format!("http://{addr}").parse().unwrap());
    for path in ["/", WATCH] {
        let parts = chunks(send(&config, path).await.unwrap()).await;
        assert_eq!(parts.first(), Some(&Ok(Bytes::from_static(b"hello"))), "{path}");
        assert!(matches!(parts.last(), Some(Err(TransportError::Closed(_)))), "{path}: {parts:?}");
    }
}

#[tokio::test]
async fn a_late_response_head_times_out() {
    let addr = raw_server(|tcp| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(tcp);
    })
    .await;
    let config = Config::new(format!("http://{addr}").parse().unwrap());
    let transport =
        HyperTransport::builder(&config).no_env_proxy().read_timeout(Some(Duration::from_millis(200))).build().unwrap();
    for path in ["/", WATCH] {
        let started = std::time::Instant::now();
        let err = transport.send(get(&config, path)).await.unwrap_err();
        assert!(matches!(&err, TransportError::Timeout(m) if m.contains("read timeout")), "{path}: {err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}

#[tokio::test]
async fn a_stalled_body_times_out_per_chunk() {
    let addr = raw_server(|mut tcp| async move {
        let _ = tcp.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = tcp.write_all(b"6\r\nsecond\r\n").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let config = Config::new(format!("http://{addr}").parse().unwrap());
    // Each chunk may take up to 300 ms: the second (100 ms after the first) arrives, the third
    // never does.
    let transport =
        HyperTransport::builder(&config).no_env_proxy().read_timeout(Some(Duration::from_millis(300))).build().unwrap();
    for path in ["/", WATCH] {
        let parts = chunks(transport.send(get(&config, path)).await.unwrap()).await;
        assert_eq!(parts.len(), 3, "{path}: {parts:?}");
        assert_eq!(parts[0], Ok(Bytes::from_static(b"first")));
        assert_eq!(parts[1], Ok(Bytes::from_static(b"second")));
        assert!(matches!(&parts[2], Err(TransportError::Timeout(m)) if m.contains("no data")), "{path}: {parts:?}");
    }
}

#[tokio::test]
async fn a_stalled_handshake_hits_the_connect_timeout() {
    // Accepts TCP but never answers the TLS ClientHello.
    let addr = raw_server(|tcp| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(tcp);
    })
    .await;
    let config = Config::new(format!("https://{addr}").parse().unwrap());
    let transport =
        HyperTransport::builder(&config).no_env_proxy().connect_timeout(Duration::from_millis(200)).build().unwrap();
    let started = std::time::Instant::now();
    let err = transport.send(get(&config, "/")).await.unwrap_err();
    assert!(matches!(&err, TransportError::Timeout(m) if m.contains("connect timeout")), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

// ---------------------------------------------------------------------------------------------
// TLS

#[tokio::test]
async fn http2_is_negotiated_over_tls_and_streams() {
    let (server, config, _pki) = tls_server(Protocols::H2AndH1).await;
    let transport = transport(&config);
    let response = transport.send(get(&config, "/chunks")).await.unwrap();
    assert_eq!(version(&response), "HTTP/2.0");
    let parts: Vec<Bytes> = chunks(response).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(parts, ["chunk-0;", "chunk-1;", "chunk-2;"]);
    // Concurrent requests share the one HTTP/2 connection.
    let (a, b) = tokio::join!(transport.send(get(&config, "/")), transport.send(get(&config, "/")));
    assert_eq!(text(a.unwrap()).await, "hello");
    assert_eq!(text(b.unwrap()).await, "hello");
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_watch_gets_an_http1_connection_of_its_own_that_its_body_drives() {
    let (server, config, _pki) = tls_server(Protocols::H2AndH1).await;
    let transport = transport(&config);
    assert_eq!(text(transport.send(get(&config, "/")).await.unwrap()).await, "hello");
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    // Each watch: a new HTTP/1.1 connection, the chunks as they come, and no pooling after.
    for n in 2..=3 {
        let response = transport.send(get(&config, "/chunks?watch=true&resourceVersion=1")).await.unwrap();
        assert_eq!(version(&response), "HTTP/1.1");
        let parts: Vec<Bytes> = chunks(response).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(parts, ["chunk-0;", "chunk-1;", "chunk-2;"]);
        assert_eq!(server.connections.load(Ordering::SeqCst), n);
    }
    // The request line holds the path and query only, and `Host` names the server.
    let port = server.addr.port();
    let response = transport.send(get(&config, "/target?watch=1")).await.unwrap();
    assert_eq!(text(response).await, format!("/target?watch=1 host=Some(\"127.0.0.1:{port}\")"));
    // Other requests stay on the pooled HTTP/2 connection; `watch=false` is no watch.
    let response = transport.send(get(&config, "/?watch=false")).await.unwrap();
    assert_eq!(version(&response), "HTTP/2.0");
    assert_eq!(server.connections.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn a_watch_is_driven_by_its_reader_without_a_task_of_the_runtime() {
    let (_server, config, _pki) = tls_server(Protocols::H2AndH1).await;
    // A runtime of its own (the server runs on the test's): a pooled request leaves hyper's
    // connection task alive in it; a watch is read with no task alive, its body driving its
    // connection.
    let (pooled_tasks, watch_tasks, parts) = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let tasks = || tokio::runtime::Handle::current().metrics().num_alive_tasks();
        rt.block_on(async {
            let pooled = HyperTransport::builder(&config).no_env_proxy().http1_only().build().unwrap();
            let response = pooled.send(get(&config, "/chunks")).await.unwrap();
            let pooled_tasks = tasks();
            drop(chunks(response).await);
            drop(pooled);
            let response = transport(&config).send(get(&config, "/chunks?watch=true")).await.unwrap();
            let watch_tasks = tasks();
            let parts = chunks(response).await.into_iter().map(Result::unwrap).collect::<Vec<Bytes>>();
            (pooled_tasks, watch_tasks, parts)
        })
    })
    .await
    .unwrap();
    assert!(pooled_tasks >= 1, "hyper's connection task: {pooled_tasks}");
    assert_eq!(watch_tasks, 0);
    assert_eq!(parts, ["chunk-0;", "chunk-1;", "chunk-2;"]);
}

#[tokio::test]
async fn multiplex_watches_keeps_watches_on_the_pooled_http2_connection() {
    let (server, config, _pki) = tls_server(Protocols::H2AndH1).await;
    let transport = HyperTransport::builder(&config).no_env_proxy().multiplex_watches().build().unwrap();
    assert_eq!(text(transport.send(get(&config, "/")).await.unwrap()).await, "hello");
    let (a, b) = tokio::join!(
        transport.send(get(&config, "/chunks?watch=true")),
        transport.send(get(&config, "/chunks?watch=true"))
    );
    for response in [a.unwrap(), b.unwrap()] {
        assert_eq!(version(&response), "HTTP/2.0");
        let parts: Vec<Bytes> = chunks(response).await.into_iter().map(Result::unwrap).collect();
        assert_eq!(parts, ["chunk-0;", "chunk-1;", "chunk-2;"]);
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn http1_only_offers_no_h2_and_pools_http1_connections() {
    let (server, config, _pki) = tls_server(Protocols::H2AndH1).await;
    let transport = HyperTransport::builder(&config).no_env_proxy().http1_only().build().unwrap();
    let response = transport.send(get(&config, "/chunks")).await.unwrap();
    assert_eq!(version(&response), "HTTP/1.1");
    let parts: Vec<Bytes> = chunks(response).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(parts, ["chunk-0;", "chunk-1;", "chunk-2;"]);
    // Two at once need two connections; the next request reuses one of them.
    let (a, b) = tokio::join!(transport.send(get(&config, "/")), transport.send(get(&config, "/")));
    assert_eq!(text(a.unwrap()).await, "hello");
    assert_eq!(text(b.unwrap()).await, "hello");
    assert_eq!(text(transport.send(get(&config, "/")).await.unwrap()).await, "hello");
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn http1_is_used_when_the_server_has_no_h2() {
    let (_server, config, _pki) = tls_server(Protocols::H1).await;
    let response = send(&config, "/").await.unwrap();
    assert_eq!(version(&response), "HTTP/1.1");
    assert_eq!(text(response).await, "hello");
}

#[tokio::test]
async fn the_configured_ca_is_trusted_by_name_too() {
    let (_server, mut config, _pki) = tls_server(Protocols::H2AndH1).await;
    assert_eq!(send(&config, "/").await.unwrap().status, StatusCode::OK);
    config.cluster_url.set_host(Some("localhost")).unwrap();
    assert_eq!(send(&config, "/").await.unwrap().status, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_ca_is_a_tls_error() {
    let (server, mut config, _pki) = tls_server(Protocols::H2AndH1).await;
    config.root_certs = vec![Pki::new("another CA").ca_der];
    let err = send(&config, "/").await.unwrap_err();
    let TransportError::Tls { url, message } = &err else { panic!("{err:?}") };
    assert_eq!(url, &format!("https://127.0.0.1:{}", server.addr.port()));
    assert!(message.contains("certificate") && message.contains("certificate-authority"), "{message}");
    // And with no CA at all (the webpki roots), the test CA is not trusted either.
    config.root_certs.clear();
    assert!(matches!(send(&config, "/").await, Err(TransportError::Tls { .. })));
}

#[tokio::test]
async fn insecure_skip_tls_verify_accepts_an_untrusted_certificate() {
    let (_server, mut config, _pki) = tls_server(Protocols::H2AndH1).await;
    config.root_certs.clear();
    config.accept_invalid_certs = true;
    let response = send(&config, "/").await.unwrap();
    assert_eq!(text(response).await, "hello");
    // A wrong name is accepted too.
    config.tls_server_name = Some("wrong.example".into());
    assert_eq!(send(&config, "/").await.unwrap().status, StatusCode::OK);
}

#[tokio::test]
async fn tls_server_name_verifies_a_certificate_for_another_name() {
    let pki = Pki::new("test CA");
    let leaf = pki.server(&["kubernetes.default.svc"]);
    let server = serve(Some(server_tls(&leaf, Protocols::H2AndH1, None)), Protocols::H2AndH1).await;
    let mut config = server.url("https", "127.0.0.1");
    config.root_certs = vec![pki.ca_der.clone()];
    let err = send(&config, "/").await.unwrap_err();
    assert!(matches!(&err, TransportError::Tls { message, .. } if message.contains("not valid for name")), "{err:?}");
    config.tls_server_name = Some("kubernetes.default.svc".into());
    assert_eq!(text(send(&config, "/").await.unwrap()).await, "hello");
}

async fn mtls_server(pki: &Pki, protocols: Protocols) -> Config {
    let leaf = pki.server(&["127.0.0.1"]);
    let server = serve(Some(server_tls(&leaf, protocols, Some(&pki.ca_der))), protocols).await;
    let mut config = server.url("https", "127.0.0.1");
    config.root_certs = vec![pki.ca_der.clone()];
    config
}

#[tokio::test]
async fn a_client_certificate_is_presented() {
    let pki = Pki::new("test CA");
    for protocols in [Protocols::H2AndH1, Protocols::H1] {
        let mut config = mtls_server(&pki, protocols).await;
        let client = pki.client();
        for identity in [client.identity_pkcs8(), client.identity_traditional("EC PRIVATE KEY")] {
            assert!(identity.private_key_der().is_some());
            config.identity = Some(identity);
            assert_eq!(text(send(&config, "/").await.unwrap()).await, "hello");
        }
    }
}

#[tokio::test]
async fn an_rsa_pkcs1_client_key_works() {
    let pki = Pki::new("test CA");
    let config = mtls_server(&pki, Protocols::H2AndH1).await;
    let client = pki.client_with_key(KeyPair::from_pem(RSA_KEY_PKCS8).unwrap());
    for identity in [client.identity_pkcs8(), client.identity_traditional("RSA PRIVATE KEY")] {
        let config = Config { identity: Some(identity), ..config.clone() };
        assert_eq!(text(send(&config, "/").await.unwrap()).await, "hello");
    }
}

#[tokio::test]
async fn without_the_client_certificate_the_handshake_fails() {
    let pki = Pki::new("test CA");
    for protocols in [Protocols::H2AndH1, Protocols::H1] {
        let config = mtls_server(&pki, protocols).await;
        let err = send(&config, "/").await.unwrap_err();
        assert!(
            matches!(&err, TransportError::Tls { message, .. } if message.contains("client certificate")),
            "{err:?}"
        );
        // A certificate from another CA is rejected the same way.
        let config = Config { identity: Some(Pki::new("other CA").client().identity_pkcs8()), ..config };
        let err = send(&config, "/").await.unwrap_err();
        assert!(
            matches!(&err, TransportError::Tls { message, .. } if message.contains("client certificate")),
            "{err:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Upgrades

fn upgrade_request(config: &Config) -> Request<Vec<u8>> {
    let url = config.cluster_url.join("/upgrade").unwrap();
    Request::get(url.as_str()).header("connection", "Upgrade").header("upgrade", "echo").body(Vec::new()).unwrap()
}

#[tokio::test]
async fn upgrade_requests_use_http1_even_when_h2_is_offered() {
    let (_server, config, _pki) = tls_server(Protocols::H2AndH1).await;
    let transport = transport(&config);
    // A plain request (the server does not upgrade `/`) on the HTTP/1.1-only path.
    let mut plain = get(&config, "/");
    plain.headers_mut().insert("connection", "Upgrade".parse().unwrap());
    plain.headers_mut().insert("upgrade", "echo".parse().unwrap());
    let response = transport.send(plain).await.unwrap();
    assert_eq!(version(&response), "HTTP/1.1");
    assert_eq!(text(response).await, "hello");
    // The same transport still speaks HTTP/2 otherwise.
    assert_eq!(version(&transport.send(get(&config, "/")).await.unwrap()), "HTTP/2.0");
    // An upgrade through `send`: the 101 head.
    let response = transport.send(upgrade_request(&config)).await.unwrap();
    assert_eq!(response.status, StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(version(&response), "HTTP/1.1");
}

/// Writes `ping` on an upgraded connection and expects it echoed.
async fn ping(upgraded: Upgraded) {
    use futures_util::{AsyncReadExt as _, AsyncWriteExt as _};
    let Upgraded::Switched { headers, mut stream } = upgraded else { panic!("not switched: {upgraded:?}") };
    assert_eq!(headers.get("upgrade").unwrap(), "echo");
    stream.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test]
async fn upgrade_hands_back_the_connection() {
    let (_server, config, _pki) = tls_server(Protocols::H2AndH1).await;
    let transport = transport(&config);
    ping(transport.upgrade(upgrade_request(&config)).await.unwrap()).await;
    // A server that does not switch: the response comes back whole.
    let mut request = upgrade_request(&config);
    *request.uri_mut() = config.cluster_url.join("/").unwrap().as_str().parse().unwrap();
    let refused = transport.upgrade(request).await.unwrap();
    assert_eq!((refused.status(), refused.body()), (StatusCode::OK, &b"hello"[..]));
    assert!(refused.into_stream().is_none());
}

#[tokio::test]
async fn upgrade_through_a_connect_proxy_with_a_client_certificate() {
    let pki = Pki::new("test CA");
    let mut config = mtls_server(&pki, Protocols::H2AndH1).await;
    config.identity = Some(pki.client().identity_pkcs8());
    let target = config.cluster_url.socket_addrs(|| None).unwrap()[0];
    let (proxy_addr, seen) = proxy(target, None).await;
    config.proxy_url = Some(format!("http://{proxy_addr}").parse().unwrap());
    ping(transport(&config).upgrade(upgrade_request(&config)).await.unwrap()).await;
    assert_eq!(seen.lock().unwrap().len(), 1, "through the proxy");
}

#[tokio::test]
async fn an_upgrade_answer_that_never_comes_times_out() {
    let addr = raw_server(|tcp| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(tcp);
    })
    .await;
    let config = Config::new(format!("http://{addr}").parse().unwrap());
    let transport = HyperTransport::builder(&config).read_timeout(Some(Duration::from_millis(200))).build().unwrap();
    let err = transport.upgrade(upgrade_request(&config)).await.unwrap_err();
    assert!(matches!(err, TransportError::Timeout(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Proxies

#[tokio::test]
async fn proxy_url_tunnels_with_connect() {
    let (server, mut config, _pki) = tls_server(Protocols::H2AndH1).await;
    let (proxy_addr, seen) = proxy(server.addr, None).await;
    config.proxy_url = Some(format!("http://user:pa%20ss@{proxy_addr}").parse().unwrap());
    let response = send(&config, "/").await.unwrap();
    assert_eq!(version(&response), "HTTP/2.0", "TLS and ALPN run end to end through the tunnel");
    assert_eq!(text(response).await, "hello");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let port = server.addr.port();
    assert!(seen[0].starts_with(&format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n")), "{}", seen[0]);
    // "user:pa ss", base64.
    assert!(seen[0].contains("Proxy-Authorization: Basic dXNlcjpwYSBzcw==\r\n"), "{}", seen[0]);
}

#[tokio::test]
async fn a_refusing_proxy_is_a_connect_error_without_credentials() {
    let (server, mut config, _pki) = tls_server(Protocols::H2AndH1).await;
    let (proxy_addr, _seen) = proxy(server.addr, Some("407 Proxy Authentication Required")).await;
    config.proxy_url = Some(format!("http://user:hunter2@{proxy_addr}").parse().unwrap());
    let err = send(&config, "/").await.unwrap_err();
    assert!(matches!(&err, TransportError::Connect { message, .. } if message.contains("407")), "{err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2") && !shown.contains("user:"), "{shown}");
}

#[tokio::test]
async fn environment_proxies_apply_except_to_loopback() {
    let pki = Pki::new("test CA");
    let leaf = pki.server(&["kube.test"]);
    let server = serve(Some(server_tls(&leaf, Protocols::H1, None)), Protocols::H1).await;
    let (proxy_addr, seen) = proxy(server.addr, None).await;
    let rules = || ProxyEnv::new().with_https_proxy(format!("http://{proxy_addr}")).with_no_proxy("example.com");
    // A host that does not resolve here: only the proxy can reach it.
    let mut config = Config::new("https://kube.test:6443".parse().unwrap());
    config.root_certs = vec![pki.ca_der.clone()];
    let transport = HyperTransport::builder(&config).proxy_env(rules()).build().unwrap();
    assert_eq!(text(transport.send(get(&config, "/")).await.unwrap()).await, "hello");
    assert!(seen.lock().unwrap()[0].starts_with("CONNECT kube.test:6443 HTTP/1.1\r\n"));
    // Loopback goes direct.
    let mut config = server.url("https", "127.0.0.1");
    config.root_certs = vec![pki.ca_der.clone()];
    config.tls_server_name = Some("kube.test".into());
    let transport = HyperTransport::builder(&config).proxy_env(rules()).build().unwrap();
    assert_eq!(text(transport.send(get(&config, "/")).await.unwrap()).await, "hello");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_407_from_an_environment_proxy_names_the_variable_that_set_it() {
    let (proxy_addr, seen) = proxy("127.0.0.1:9".parse().unwrap(), Some("407 Proxy Authentication Required")).await;
    let config = Config::new("https://kube.test:6443".parse().unwrap());
    let env = ProxyEnv::new().with_https_proxy(format!("http://{proxy_addr}"));
    let transport = HyperTransport::builder(&config).proxy_env(env).build().unwrap();
    let err = transport.send(get(&config, "/")).await.unwrap_err();
    let TransportError::Connect { url, message } = &err else { panic!("{err:?}") };
    assert_eq!(url, "https://kube.test:6443");
    assert!(message.contains("407 Proxy Authentication Required"), "{message}");
    assert!(message.contains("HTTPS_PROXY has no credentials"), "{message}");
    assert!(!seen.lock().unwrap()[0].contains("Proxy-Authorization"));
}

// ---------------------------------------------------------------------------------------------
// Timers and processes

#[tokio::test]
async fn sleep_until_waits_for_the_deadline() {
    let transport = transport(&Config::new("https://127.0.0.1".parse().unwrap()));
    let start = transport.now();
    transport.sleep_until(start + Duration::from_millis(50)).await;
    assert!(transport.now() >= start + Duration::from_millis(50));
    // A past deadline completes at once.
    transport.sleep_until(start).await;
}

#[cfg(unix)]
#[tokio::test]
async fn run_process_passes_env_and_captures_output() {
    use kube_proto::config::SecretString;
    use kube_proto::config::auth::ExecRequest;
    let transport = transport(&Config::new("https://127.0.0.1".parse().unwrap()));
    let request = ExecRequest {
        command: "sh".into(),
        args: vec!["-c".into(), "printf %s \"$TOKEN\"; echo oops >&2; exit 3".into()],
        env: vec![("TOKEN".into(), SecretString::new("t0k3n"))],
        interactive: false,
        install_hint: None,
    };
    let output = transport.run_process(request).await.unwrap();
    assert_eq!(output.status, Some(3));
    assert_eq!(output.stdout, b"t0k3n");
    assert_eq!(output.stderr, b"oops\n");
    let missing = ExecRequest {
        command: "/nonexistent/plugin".into(),
        args: vec![],
        env: vec![],
        interactive: false,
        install_hint: None,
    };
    let err = transport.run_process(missing).await.unwrap_err();
    assert!(err.contains("not found"), "{err}");
}

#[cfg(unix)]
#[tokio::test]
async fn an_interactive_plugin_writes_its_prompts_to_the_terminal_not_to_the_capture() {
    use kube_proto::config::auth::ExecRequest;
    let transport = transport(&Config::new("https://127.0.0.1".parse().unwrap()));
    let request = ExecRequest {
        command: "sh".into(),
        args: vec!["-c".into(), "echo 'Password for the cluster:' >&2; printf '{}'".into()],
        env: vec![],
        interactive: true,
        install_hint: None,
    };
    let output = transport.run_process(request).await.unwrap();
    assert_eq!(output.stdout, b"{}");
    assert_eq!(output.stderr, b"", "stderr is inherited, so the user sees the prompt");
}
