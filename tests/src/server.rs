//! The loopback API server: kube-proto's [`FakeApiServer`] behind a mutex, served over HTTP/1.1
//! and HTTP/2 (ALPN under TLS) by hyper on a thread of its own with its own tokio runtime, so
//! that tests on any executor can talk to it. Exec, attach and port-forward switch protocols
//! (HTTP/1.1's upgrade) and run the fake's sessions over the upgraded connection.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube_proto::config::{AuthSpec, Config, Identity, SecretString};
use kube_runtime::fake::{FakeApiServer, FakeConfig, Reply, WatchId, WatchPoll};
use serde_json::json;
use tokio::sync::{oneshot, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, RootCertStore, server::WebPkiClientVerifier};

use crate::client_v1::AcceptV1;
use crate::pki::{Leaf, Pki};
use crate::session::run_session;

/// The bearer token the loopback server accepts by default.
pub const TOKEN: &str = "kit-token-7f3a9c";

/// How the server treats client certificates (TLS only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCerts {
    /// Not asked for.
    Off,
    /// Asked for and verified against the CA when given; a verified certificate authenticates
    /// the request (as the real API server's x509 authenticator does), else the token must.
    Optional,
    /// Required by the TLS handshake: a client without one signed by the CA cannot connect.
    Required,
}

/// What kind of server to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// HTTPS with a server certificate for `127.0.0.1` and `localhost`, else plain HTTP.
    pub tls: bool,
    /// Client certificates (TLS only).
    pub client_certs: ClientCerts,
    /// The bearer token requests must carry (unless a client certificate authenticated them);
    /// without it, `401 Unauthorized` with the real server's `Status`.
    pub token: Option<String>,
}

impl Default for ServerOptions {
    /// As a real cluster is set up: HTTPS, a token or a client certificate.
    fn default() -> Self {
        ServerOptions { tls: true, client_certs: ClientCerts::Optional, token: Some(TOKEN.into()) }
    }
}

impl ServerOptions {
    /// Plain HTTP, no authentication.
    pub fn plain() -> Self {
        ServerOptions { tls: false, client_certs: ClientCerts::Off, token: None }
    }

    /// HTTPS that requires a client certificate at the TLS handshake, and no token.
    pub fn mtls_required() -> Self {
        ServerOptions { tls: true, client_certs: ClientCerts::Required, token: None }
    }
}

/// A request the server saw, and how it answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The method.
    pub method: Method,
    /// The path and query.
    pub path_and_query: String,
    /// The status answered.
    pub status: u16,
    /// Whether a fault knob answered it (a forced error status), not the fake.
    pub injected: bool,
    /// Whether it carried an `Authorization` header.
    pub authorization: bool,
}

#[derive(Debug, Default)]
struct Faults {
    /// The next requests get these statuses (and `Retry-After` seconds), one each.
    fail: VecDeque<(StatusCode, Option<u32>)>,
    /// The next complete response with a body is cut half way through it.
    cut_next_response: bool,
    /// These watches send half of their next data (or a fragment of a line) and break.
    cut_watches: HashSet<WatchId>,
}

struct Shared {
    fake: Mutex<FakeApiServer>,
    /// Bumped after every write, so that watch bodies poll the fake again.
    writes: watch::Sender<u64>,
    faults: Mutex<Faults>,
    seen: Mutex<Vec<Seen>>,
    token: Option<String>,
    /// TCP connections accepted.
    connections: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn notify(&self) {
        self.writes.send_modify(|n| *n += 1);
    }

    fn record(&self, request: &Request<Vec<u8>>, path_and_query: &str, status: StatusCode, injected: bool) {
        lock(&self.seen).push(Seen {
            method: request.method().clone(),
            path_and_query: path_and_query.to_owned(),
            status: status.as_u16(),
            injected,
            authorization: request.headers().contains_key(AUTHORIZATION),
        });
    }
}

/// TLS material of a server.
struct Tls {
    pki: Pki,
    client: Leaf,
}

/// A running loopback API server. Dropping it stops it.
pub struct TestServer {
    addr: SocketAddr,
    options: ServerOptions,
    tls: Option<Tls>,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer").field("addr", &self.addr).field("options", &self.options).finish_non_exhaustive()
    }
}

type ResBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

impl TestServer {
    /// Starts a server on `127.0.0.1:0` with a fresh fake API server.
    pub fn start(options: ServerOptions) -> TestServer {
        let now = Instant::now();
        Self::with_fake(options, FakeApiServer::new(FakeConfig::default(), now))
    }

    /// Starts a server serving a given fake API server.
    pub fn with_fake(options: ServerOptions, fake: FakeApiServer) -> TestServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the listener's address");
        let (writes, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            fake: Mutex::new(fake),
            writes,
            faults: Mutex::new(Faults::default()),
            seen: Mutex::new(Vec::new()),
            token: options.token.clone(),
            connections: AtomicUsize::new(0),
        });
        let tls = options.tls.then(|| {
            let pki = Pki::new("kit-ca");
            let client = pki.client("kit-admin");
            Tls { pki, client }
        });
        let acceptor = tls.as_ref().map(|t| {
            let server = t.pki.server(&["127.0.0.1", "localhost"]);
            TlsAcceptor::from(server_tls(&t.pki, &server, options.client_certs))
        });
        let (shutdown, stopped) = oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("kit-apiserver-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                    tokio::select! {
                        () = accept_loop(listener, acceptor, serving) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime drops every connection and watch.
                drop(rt);
            })
            .expect("the server thread");
        let dir = tempfile::Builder::new().prefix("kit-apiserver-").tempdir().expect("a temporary directory");
        let server = TestServer { addr, options, tls, shared, shutdown: Some(shutdown), thread: Some(thread), dir };
        server.write_files();
        server
    }

    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The options it was started with.
    pub fn options(&self) -> &ServerOptions {
        &self.options
    }

    /// The base URL (`https://127.0.0.1:PORT` or `http://...`).
    pub fn url(&self) -> url::Url {
        let scheme = if self.options.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.addr.port()).parse().expect("a valid URL")
    }

    /// The configuration a test uses by default: the CA, and the token if the server wants one,
    /// else the client certificate if it asks for one.
    pub fn config(&self) -> Config {
        match (&self.options.token, self.options.client_certs) {
            (Some(_), _) => self.token_config(),
            (None, ClientCerts::Required | ClientCerts::Optional) if self.options.tls => self.cert_config(),
            _ => self.anonymous_config(),
        }
    }

    /// No credentials, trusting the server's CA.
    pub fn anonymous_config(&self) -> Config {
        let mut config = Config::new(self.url());
        if let Some(tls) = &self.tls {
            config.root_certs = vec![tls.pki.ca_der.clone()];
        }
        config
    }

    /// The server's token.
    pub fn token_config(&self) -> Config {
        let mut config = self.anonymous_config();
        if let Some(token) = &self.options.token {
            config.auth = AuthSpec::Token(SecretString::new(token.clone()));
        }
        config
    }

    /// A token the server does not know.
    pub fn wrong_token_config(&self) -> Config {
        let mut config = self.anonymous_config();
        config.auth = AuthSpec::Token(SecretString::new("not-the-token"));
        config
    }

    /// A client certificate signed by the server's CA (and no token).
    ///
    /// # Panics
    /// On a plain HTTP server.
    pub fn cert_config(&self) -> Config {
        let tls = self.tls.as_ref().expect("client certificates need a TLS server");
        let mut config = self.anonymous_config();
        config.identity = Some(
            Identity::from_pem(
                tls.client.cert_pem.clone().into_bytes(),
                tls.client.key_pem.clone().into_bytes(),
                "kit",
            )
            .expect("a valid client identity"),
        );
        config
    }

    /// An X.509 **v1** client certificate signed by the server's CA (and no token), as
    /// `openssl x509 -req` makes them; the server accepts it as the real API server does.
    ///
    /// # Panics
    /// On a plain HTTP server.
    pub fn v1_cert_config(&self) -> Config {
        let tls = self.tls.as_ref().expect("client certificates need a TLS server");
        let leaf = tls.pki.client_v1("kit-v1-admin");
        let mut config = self.anonymous_config();
        let identity = Identity::from_pem(leaf.cert_pem.into_bytes(), leaf.key_pem.into_bytes(), "kit-v1");
        config.identity = Some(identity.expect("a valid client identity"));
        config
    }

    /// The token configuration, but trusting another CA than the server's.
    pub fn wrong_ca_config(&self) -> Config {
        let mut config = self.token_config();
        config.root_certs = vec![Pki::new("some-other-ca").ca_der];
        config
    }

    /// The CA certificate, PEM (`None` for plain HTTP).
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.pki.ca_pem.as_str())
    }

    /// A kubeconfig file for this server, with the contexts `token` (the current one) and, on a
    /// TLS server, `cert`, both with the namespace `default`. The CA, client certificate and key
    /// are files beside it.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn write_files(&self) {
        let dir = self.dir.path();
        let write = |name: &str, contents: &str| {
            let path = dir.join(name);
            std::fs::write(&path, contents).expect("a file in the temporary directory");
            path
        };
        let quote = |p: &Path| serde_json::to_string(&p.display().to_string()).expect("a path as a YAML string");
        let mut cluster = format!("    server: {}\n", self.url());
        let mut users = String::new();
        let mut contexts = String::new();
        let token = self.options.token.clone().unwrap_or_else(|| "unused".into());
        users.push_str(&format!("- name: token\n  user:\n    token: {token}\n"));
        contexts.push_str("- name: token\n  context:\n    cluster: kit\n    user: token\n    namespace: default\n");
        if let Some(tls) = &self.tls {
            let ca = write("ca.crt", &tls.pki.ca_pem);
            let cert = write("client.crt", &tls.client.cert_pem);
            let key = write("client.key", &tls.client.key_pem);
            cluster.push_str(&format!("    certificate-authority: {}\n", quote(&ca)));
            users.push_str(&format!(
                "- name: cert\n  user:\n    client-certificate: {}\n    client-key: {}\n",
                quote(&cert),
                quote(&key)
            ));
            contexts.push_str("- name: cert\n  context:\n    cluster: kit\n    user: cert\n    namespace: default\n");
        }
        let yaml = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kit\n  cluster:\n{cluster}users:\n{users}contexts:\n{contexts}current-context: token\n"
        );
        write("kubeconfig", &yaml);
    }

    // ---- The fake and the fault knobs ----

    /// The fake API server, for setup and inspection. Call [`notify`](Self::notify) after
    /// writing to it directly.
    pub fn fake(&self) -> MutexGuard<'_, FakeApiServer> {
        lock(&self.shared.fake)
    }

    /// Wakes the open watches, after the fake was changed through [`fake`](Self::fake).
    pub fn notify(&self) {
        self.shared.notify();
    }

    /// Hands a request (its URI a path and query) straight to the fake, without waking the open
    /// watches: a write the watches will not deliver unless they poll again for another reason
    /// (a later write, a bookmark). Followed by [`compact`](Self::compact) and
    /// [`drop_watches`](Self::drop_watches), it is a change a disconnected client missed.
    ///
    /// # Panics
    /// If the request is a watch.
    pub fn handle_quietly(&self, request: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        self.fake().handle(Instant::now(), &request).into_response().expect("not a watch")
    }

    /// Ends every open watch cleanly (the body ends), as when the API server restarts.
    pub fn drop_watches(&self) {
        self.fake().drop_watches();
        self.notify();
    }

    /// Forgets the history (as an etcd compaction): watches from and lists at older
    /// resourceVersions, and continue tokens, get 410.
    pub fn compact(&self) {
        self.fake().compact();
    }

    /// How many watches are open now.
    pub fn open_watches(&self) -> usize {
        self.fake().open_watches().count()
    }

    /// The fake's latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.fake().resource_version()
    }

    /// Cuts the next complete response that has a body half way through it: its head promises
    /// the whole length, half of it is sent, and the connection breaks.
    pub fn cut_next_response(&self) {
        lock(&self.shared.faults).cut_next_response = true;
    }

    /// Breaks every open watch: each sends half of its next data (so a line is cut in the
    /// middle; a fragment of a line if it has nothing to send) and its connection breaks.
    /// Returns how many watches will break.
    pub fn cut_open_watches(&self) -> usize {
        let ids: Vec<WatchId> = self.fake().open_watches().collect();
        let n = ids.len();
        lock(&self.shared.faults).cut_watches.extend(ids);
        self.notify();
        n
    }

    /// Answers the next `n` requests (whatever they are) with `status` and a `Status` body, and
    /// `Retry-After: retry_after` when given, before the fake sees them.
    pub fn fail_next(&self, n: usize, status: u16, retry_after: Option<u32>) {
        let status = StatusCode::from_u16(status).expect("a valid status code");
        lock(&self.shared.faults).fail.extend(std::iter::repeat_n((status, retry_after), n));
    }

    /// The requests seen so far.
    pub fn requests(&self) -> Vec<Seen> {
        lock(&self.shared.seen).clone()
    }

    /// How many TCP connections the server has accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Forgets the requests seen so far.
    pub fn clear_requests(&self) {
        lock(&self.shared.seen).clear();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The signature algorithms of the provider the server uses.
fn provider_algorithms() -> rustls::crypto::WebPkiSupportedAlgorithms {
    kube_runtime::tls::provider().signature_verification_algorithms
}

fn server_tls(pki: &Pki, leaf: &Leaf, client_certs: ClientCerts) -> Arc<rustls::ServerConfig> {
    let provider = kube_runtime::tls::provider();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the default protocol versions");
    let builder = match client_certs {
        ClientCerts::Off => builder.with_no_client_auth(),
        ClientCerts::Optional | ClientCerts::Required => {
            let mut roots = RootCertStore::empty();
            roots.add(CertificateDer::from(pki.ca_der.clone())).expect("the CA as a root");
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier =
                if client_certs == ClientCerts::Optional { verifier.allow_unauthenticated() } else { verifier };
            let webpki = verifier.build().expect("a client certificate verifier");
            let algorithms = provider_algorithms();
            builder.with_client_cert_verifier(Arc::new(AcceptV1 {
                inner: webpki,
                ca_der: pki.ca_der.clone(),
                algorithms,
            }))
        }
    };
    let key = PrivateKeyDer::try_from(leaf.key_der.clone()).expect("the server key");
    let mut config =
        builder.with_single_cert(vec![CertificateDer::from(leaf.cert_der.clone())], key).expect("the server cert");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

async fn accept_loop(listener: tokio::net::TcpListener, acceptor: Option<TlsAcceptor>, shared: Arc<Shared>) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        shared.connections.fetch_add(1, Ordering::SeqCst);
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let shared = shared.clone();
        tokio::spawn(async move {
            match acceptor {
                Some(acceptor) => {
                    let Ok(stream) = acceptor.accept(tcp).await else { return };
                    let client_cert = stream.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
                    serve_connection(TokioIo::new(stream), shared, client_cert).await;
                }
                None => serve_connection(TokioIo::new(tcp), shared, false).await,
            }
        });
    }
}

async fn serve_connection<I>(io: I, shared: Arc<Shared>, client_cert: bool)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |req| handle(shared.clone(), client_cert, req));
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let _ = builder.serve_connection_with_upgrades(io, service).await;
}

fn full(bytes: impl Into<Bytes>) -> ResBody {
    Full::new(bytes.into()).map_err(|e: Infallible| match e {}).boxed()
}

/// A `Status` response as the real API server renders it.
fn status_response(code: StatusCode, reason: &str, message: &str, retry_after: Option<u32>) -> Response<ResBody> {
    let mut body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16()});
    if let Some(secs) = retry_after {
        body["details"] = json!({"retryAfterSeconds": secs});
    }
    let mut resp = Response::new(full(serde_json::to_vec(&body).unwrap_or_default()));
    *resp.status_mut() = code;
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

fn injected_failure(code: StatusCode, retry_after: Option<u32>) -> Response<ResBody> {
    let (reason, message) = match code.as_u16() {
        429 => ("TooManyRequests", "Too many requests, please try again later."),
        500 => ("InternalError", "Internal error occurred: injected by the test server"),
        503 => ("ServiceUnavailable", "the server is currently unable to handle the request"),
        504 => ("Timeout", "Timeout: request did not complete within the allowed duration"),
        _ => ("", "injected by the test server"),
    };
    status_response(code, reason, message, retry_after)
}

async fn handle(
    shared: Arc<Shared>,
    client_cert: bool,
    req: Request<Incoming>,
) -> Result<Response<ResBody>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let on_upgrade = parts.extensions.remove::<OnUpgrade>();
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => return Ok(status_response(StatusCode::BAD_REQUEST, "BadRequest", "unreadable body", None)),
    };
    let method = parts.method.clone();
    let mut request = Request::new(body);
    *request.method_mut() = parts.method;
    *request.uri_mut() = path_and_query.parse().unwrap_or_default();
    *request.headers_mut() = parts.headers;

    if let Some(token) = &shared.token
        && !client_cert
    {
        let given = request.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok());
        if given != Some(format!("Bearer {token}").as_str()) {
            shared.record(&request, &path_and_query, StatusCode::UNAUTHORIZED, false);
            return Ok(status_response(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized", None));
        }
    }

    let injected = lock(&shared.faults).fail.pop_front();
    if let Some((code, retry_after)) = injected {
        shared.record(&request, &path_and_query, code, true);
        return Ok(injected_failure(code, retry_after));
    }
    let now = Instant::now();
    let reply = lock(&shared.fake).handle(now, &request);
    if method != Method::GET && method != Method::HEAD {
        shared.notify();
    }
    Ok(match reply {
        Reply::Response(resp) => {
            let (parts, body) = resp.into_parts();
            shared.record(&request, &path_and_query, parts.status, false);
            let cut = !body.is_empty() && std::mem::take(&mut lock(&shared.faults).cut_next_response);
            let body = if cut { cut_body(body) } else { full(body) };
            Response::from_parts(parts, body)
        }
        Reply::Watch { id, head } => {
            let (parts, ()) = head.into_parts();
            shared.record(&request, &path_and_query, parts.status, false);
            let mut parts = parts;
            // hyper frames the body itself (chunked on HTTP/1.1, DATA frames on HTTP/2).
            parts.headers.remove(http::header::TRANSFER_ENCODING);
            let stream = WatchStream { rx: shared.writes.subscribe(), shared, id, phase: Phase::Open };
            let frames = futures_util::stream::unfold(stream, |mut s| async move {
                let item = s.next().await?;
                Some((item, s))
            });
            Response::from_parts(parts, StreamBody::new(frames).boxed())
        }
        Reply::Upgrade { head, session } => {
            let Some(on_upgrade) = on_upgrade else {
                // HTTP/2 has no `Connection: Upgrade` (the clients upgrade over HTTP/1.1).
                let status = StatusCode::BAD_REQUEST;
                shared.record(&request, &path_and_query, status, false);
                return Ok(status_response(status, "BadRequest", "Upgrade request required", None));
            };
            let (parts, ()) = head.into_parts();
            shared.record(&request, &path_and_query, parts.status, false);
            // hyper writes the `101` and hands over the connection once it is out.
            tokio::spawn(async move {
                if let Ok(upgraded) = on_upgrade.await {
                    run_session(session, TokioIo::new(upgraded), &[], None).await;
                }
            });
            Response::from_parts(parts, full(Bytes::new()))
        }
    })
}

/// A body whose head promises all of `body` but that sends half of it and then breaks.
fn cut_body(body: Vec<u8>) -> ResBody {
    let total = body.len();
    let half = Bytes::from(body[..total / 2].to_vec());
    let frames = futures_util::stream::unfold(Some(half), |state| async move {
        match state {
            Some(half) => Some((Ok(Frame::data(half)), None)),
            None => {
                // Let the half reach the socket before the connection breaks.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let err: Box<dyn std::error::Error + Send + Sync> = "the test server cut the body".into();
                Some((Err(err), None))
            }
        }
    });
    // `None` state after the error: the stream is never polled again, since hyper stops at an
    // error. Declare the full length so that the client knows the body is incomplete.
    LengthBody { inner: StreamBody::new(frames).boxed(), len: total as u64 }.boxed()
}

/// A body with a declared exact length (so that hyper sends `Content-Length`).
struct LengthBody {
    inner: ResBody,
    len: u64,
}

impl hyper::body::Body for LengthBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.len)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// Half of a chunk went out: break the connection next.
    Break,
    Done,
}

/// A watch's body: polls the fake after every write and at the instant it names.
struct WatchStream {
    shared: Arc<Shared>,
    id: WatchId,
    rx: watch::Receiver<u64>,
    phase: Phase,
}

impl Drop for WatchStream {
    fn drop(&mut self) {
        lock(&self.shared.fake).cancel_watch(self.id);
    }
}

type FrameResult = Result<Frame<Bytes>, Box<dyn std::error::Error + Send + Sync>>;

impl WatchStream {
    async fn next(&mut self) -> Option<FrameResult> {
        loop {
            match self.phase {
                Phase::Done => return None,
                Phase::Break => {
                    self.phase = Phase::Done;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    return Some(Err("the test server cut the watch".into()));
                }
                Phase::Open => {}
            }
            // Mark the current writes as seen before polling, so that a write in between
            // wakes us.
            self.rx.borrow_and_update();
            let cut = lock(&self.shared.faults).cut_watches.remove(&self.id);
            let now = Instant::now();
            let poll = lock(&self.shared.fake).poll_watch(self.id, now);
            match poll {
                WatchPoll::Data(d) if cut => {
                    self.phase = Phase::Break;
                    let half = d[..d.len() / 2].to_vec();
                    return Some(Ok(Frame::data(Bytes::from(half))));
                }
                WatchPoll::Data(d) => return Some(Ok(Frame::data(Bytes::from(d)))),
                WatchPoll::Finished(d) => {
                    self.phase = Phase::Done;
                    if d.is_empty() {
                        return None;
                    }
                    return Some(Ok(Frame::data(Bytes::from(d))));
                }
                WatchPoll::Pending(_) if cut => {
                    self.phase = Phase::Break;
                    return Some(Ok(Frame::data(Bytes::from_static(b"{\"type\":\"MODIFIED\",\"object\":{\"kind\":"))));
                }
                WatchPoll::Pending(at) => {
                    let changed = self.rx.changed();
                    let closed = match at {
                        Some(at) => tokio::select! {
                            r = changed => r.is_err(),
                            () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => false,
                        },
                        None => changed.await.is_err(),
                    };
                    if closed {
                        self.phase = Phase::Done;
                    }
                }
            }
        }
    }
}
