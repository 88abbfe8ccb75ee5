//! The `Client`: builds nothing and parses nothing itself. It joins the base URL, adds
//! credentials from the core's auth state (re-read token files, exec plugins, a refresh on 401),
//! obeys the core's retry policy, and hands requests to the transport.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{AUTHORIZATION, USER_AGENT};
use http::{HeaderMap, HeaderValue, StatusCode};
use kube_proto::config::auth::{Auth, AuthAction, Credentials};
use kube_proto::config::{Config, ConfigError, Identity};
use kube_proto::retry::{Failure, RetryPolicy};
use kube_proto::rng::SplitMix64;
use serde::de::DeserializeOwned;

use crate::Error;
use crate::transport::{Transport, TransportError, TransportResponse, Upgraded, is_upgrade};

/// `Sec-WebSocket-Key`, which [`Client::upgrade`] adds when a WebSocket request lacks it.
const SEC_WEBSOCKET_KEY: http::HeaderName = http::HeaderName::from_static("sec-websocket-key");

/// The user agent sent with every request.
pub const DEFAULT_USER_AGENT: &str = concat!("kube-proto/", env!("CARGO_PKG_VERSION"));

/// A cheaply cloneable handle to a cluster: a transport, a configuration and the auth state.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Box<dyn Transport>,
    /// The base URL's path without a trailing slash (a proxy may serve the API under a prefix).
    base: String,
    default_namespace: String,
    auth: Mutex<Auth>,
    /// Held while credentials are renewed, so that one request renews them for all.
    renewal: futures_util::lock::Mutex<()>,
    /// The client certificate the transport presents: the configuration's, until an exec
    /// plugin returns another (see [`Transport::set_identity`]).
    identity: Mutex<Option<Identity>>,
    headers: HeaderMap,
    retry: RetryPolicy,
    rng: Mutex<SplitMix64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .field("default_namespace", &self.inner.default_namespace)
            .finish()
    }
}

impl Client {
    /// A client for a configuration over a transport.
    ///
    /// Over a plain `http://` URL the configuration's credentials are not used, as kubectl does
    /// not use them (see [`Config::withhold_plain_http_credentials`]); a debug log says so.
    /// Impersonation that cannot be sent (a value that is not a valid header, groups without a
    /// user) is [`Error::Auth`]: the client never sends requests as the real user instead.
    pub fn new(transport: impl Transport, mut config: Config) -> Result<Client, Error> {
        if let Some(withheld) = config.withhold_plain_http_credentials() {
            tracing::debug!(server = %withheld.server, "{withheld}");
        }
        let headers = match &config.impersonation {
            Some(impersonation) => impersonation.headers().map_err(Error::Auth)?,
            None => HeaderMap::new(),
        };
        Ok(Self::build(transport, config, headers))
    }

    /// A client for the configuration found as kubectl finds it ([`config::infer`](crate::config::infer):
    /// the kubeconfig of `KUBECONFIG` or `~/.kube/config`, else the in-cluster service account),
    /// over the transport `build` makes from it. Transports' `try_default()` call this.
    ///
    /// A configuration that cannot be found or read, or whose impersonation cannot be sent, is
    /// [`Error::Auth`]; a transport that cannot be built from it is [`Error::Transport`].
    pub fn infer_with<T: Transport>(build: impl FnOnce(&Config) -> Result<T, TransportError>) -> Result<Client, Error> {
        let config = crate::config::infer().map_err(Error::Auth)?;
        let transport = build(&config).map_err(Error::Transport)?;
        Client::new(transport, config)
    }

    fn build(transport: impl Transport, config: Config, mut headers: HeaderMap) -> Client {
        headers.insert(USER_AGENT, HeaderValue::from_static(DEFAULT_USER_AGENT));
        let base = config.cluster_url.as_str().trim_end_matches('/').to_owned();
        let auth = Auth::new(&config.auth, config.identity.clone());
        let seed = transport.wall_clock().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Client {
            inner: Arc::new(Inner {
                transport: Box::new(transport),
                base,
                default_namespace: config.default_namespace.clone(),
                auth: Mutex::new(auth),
                renewal: futures_util::lock::Mutex::new(()),
                identity: Mutex::new(config.identity.clone()),
                headers,
                retry: RetryPolicy::default(),
                rng: Mutex::new(SplitMix64::new(seed)),
            }),
        }
    }

    /// The namespace of `Api::default_namespaced`.
    pub fn default_namespace(&self) -> &str {
        &self.inner.default_namespace
    }

    /// The transport.
    pub fn transport(&self) -> &dyn Transport {
        &*self.inner.transport
    }

    /// The transport's current instant.
    pub fn now(&self) -> Instant {
        self.inner.transport.now()
    }

    /// The credentials to send now, renewing them when the auth state asks (a token file to
    /// re-read, an exec plugin to run, an OIDC refresh). Renewal is single-flight: concurrent
    /// requests that find the credentials due wait for one renewal instead of each running the
    /// plugin. Time is the transport's wall clock, so a simulated transport drives expiry.
    async fn credentials(&self) -> Result<Credentials, Error> {
        let mut renewing = None;
        loop {
            let now = self.inner.transport.wall_clock();
            let action = self.lock_auth().poll(now);
            match action {
                AuthAction::Ready(c) => return Ok(c),
                AuthAction::Failed(e) => return Err(Error::Auth(e)),
                // Take the renewal turn, then ask again: whoever renewed before us may have
                // left fresh credentials (asking again is safe: polling only describes work).
                _ if renewing.is_none() => renewing = Some(self.inner.renewal.lock().await),
                AuthAction::ReadFile(path) => {
                    let contents = crate::config::read_file(&path);
                    self.lock_auth().on_file(self.inner.transport.wall_clock(), &path, contents);
                }
                AuthAction::Exec(request) => {
                    let result = self.inner.transport.run_process(request).await;
                    let now = self.inner.transport.wall_clock();
                    match result {
                        Ok(output) => self.lock_auth().on_exec(now, output),
                        Err(e) => self.lock_auth().on_exec_failed(now, e),
                    }
                }
                AuthAction::Http(request) => {
                    let (status, _, body) = match self.inner.transport.send(request).await {
                        Ok(resp) => collect(resp).await.map_err(Error::Transport)?,
                        Err(e) => {
                            return Err(Error::Auth(ConfigError::AuthProvider {
                                provider: "oidc".into(),
                                message: format!("the identity provider could not be reached: {e}"),
                            }));
                        }
                    };
                    self.lock_auth().on_http_response(self.inner.transport.wall_clock(), status, &body);
                }
            }
        }
    }

    fn lock_auth(&self) -> std::sync::MutexGuard<'_, Auth> {
        self.inner.auth.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Has the transport present the credentials' client certificate when it is not the one
    /// last applied. Without a certificate in the credentials (the common case) this is one
    /// uncontended lock and a `None` check.
    fn apply_identity(&self, creds: &Credentials) -> Result<(), Error> {
        let mut applied = self.inner.identity.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if *applied == creds.identity {
            return Ok(());
        }
        tracing::debug!(present = creds.identity.is_some(), "the client certificate changed; applying it");
        self.inner.transport.set_identity(creds.identity.as_ref()).map_err(Error::Transport)?;
        applied.clone_from(&creds.identity);
        Ok(())
    }

    fn prepare(
        &self,
        mut request: http::Request<Vec<u8>>,
        creds: &Credentials,
    ) -> Result<http::Request<Vec<u8>>, Error> {
        let pq = request.uri().path_and_query().map_or("/", |p| p.as_str());
        let uri = format!("{}{pq}", self.inner.base);
        *request.uri_mut() = uri.parse().map_err(|e: http::uri::InvalidUri| {
            Error::Request(kube_proto::RequestError::InvalidUri { uri, reason: e.to_string() })
        })?;
        let headers = request.headers_mut();
        for (k, v) in &self.inner.headers {
            headers.append(k, v.clone());
        }
        if let Some(v) = creds.authorization_header() {
            headers.insert(AUTHORIZATION, v);
        }
        Ok(request)
    }

    /// Sends a request built by the core, with credentials, retrying as the core's policy says
    /// (idempotent requests on 429/503/504 and connection failures), and refreshing
    /// credentials once on 401. The body is not read.
    pub async fn send(&self, request: http::Request<Vec<u8>>) -> Result<TransportResponse, Error> {
        self.send_with(request, &self.inner.retry).await
    }

    /// Sends a request once (no retries beyond the 401 refresh): for watches, whose state
    /// machine does its own backoff.
    pub async fn send_once(&self, request: http::Request<Vec<u8>>) -> Result<TransportResponse, Error> {
        self.send_with(request, &RetryPolicy::never()).await
    }

    async fn send_with(
        &self,
        request: http::Request<Vec<u8>>,
        policy: &RetryPolicy,
    ) -> Result<TransportResponse, Error> {
        let method = request.method().clone();
        let span = tracing::debug_span!("request", verb = %method, path = %request.uri().path());
        let _enter = span.enter();
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let creds = self.credentials().await?;
            self.apply_identity(&creds)?;
            let prepared = self.prepare(request.clone(), &creds)?;
            let started = self.now();
            let result = self.inner.transport.send(prepared).await;
            let failure = match &result {
                Ok(resp) if resp.status == StatusCode::UNAUTHORIZED && !refreshed => {
                    refreshed = true;
                    if self.lock_auth().on_unauthorized(self.inner.transport.wall_clock()) {
                        tracing::debug!("401: refreshing credentials and retrying once");
                        attempt -= 1;
                        continue;
                    }
                    None
                }
                Ok(resp) => Some(Failure::Status(resp.status, kube_proto::response::retry_after(&resp.headers))),
                Err(TransportError::Connect { .. }) => Some(Failure::Connect),
                // An untrusted or rejected certificate, or a setting the transport cannot
                // honour, fails the same way again: not retried.
                Err(TransportError::Tls { .. } | TransportError::Unsupported(_)) => None,
                Err(_) => Some(Failure::Broken),
            };
            if let Ok(resp) = &result {
                tracing::debug!(
                    status = resp.status.as_u16(),
                    elapsed_ms = self.now().duration_since(started).as_millis() as u64,
                    "response"
                );
                if resp.status.is_success() || resp.status.is_informational() || resp.status.is_redirection() {
                    let watch = resp.status.is_success() && kube_proto::request::is_watch(&request);
                    return result
                        .map(|resp| if watch { self.read_ahead(resp) } else { resp })
                        .map_err(Error::Transport);
                }
            }
            let random = self.inner.rng.lock().map(|mut r| r.next_f64()).unwrap_or(0.5);
            match failure.and_then(|f| policy.retry_after(&method, f, attempt, random)) {
                Some(delay) => {
                    tracing::debug!(attempt, delay_ms = delay.as_millis() as u64, "retrying");
                    let deadline = self.now() + delay;
                    self.inner.transport.sleep_until(deadline).await;
                }
                None => return result.map_err(Error::Transport),
            }
        }
    }

    /// A watch's answer, its body read ahead of the reader by a task of its own
    /// ([`read_ahead`](crate::read_ahead)).
    fn read_ahead(&self, resp: TransportResponse) -> TransportResponse {
        let TransportResponse { status, headers, body } = resp;
        let body = crate::read_ahead::read_ahead(body, &*self.inner.transport, crate::read_ahead::BUDGET);
        TransportResponse { status, headers, body }
    }

    /// Sends a request that asks for a protocol upgrade (as [`kube_proto::Request::exec`],
    /// [`attach`](kube_proto::Request::attach) and [`portforward`](kube_proto::Request::portforward)
    /// build them) through [`Transport::upgrade`], with the base URL, credentials,
    /// impersonation and user agent of every request (and, as for them, no credentials to a
    /// plain-`http://` server). A WebSocket request without a `Sec-WebSocket-Key` gets one, from
    /// a 16-byte nonce of the client's random generator.
    ///
    /// A `401` refresh of credentials is retried once, as for [`send`](Self::send); nothing
    /// else is retried (the server may have started the command). The answer is handed back as
    /// it came: a refusal (`403`, `404`, ...) is [`Upgraded::Refused`] with its body, for the
    /// caller to read its `Status`; a `101` is not checked beyond its status (the WebSocket
    /// handshake is the caller's, with [`kube_proto::websocket::Handshake`]).
    ///
    /// A request without `Connection: Upgrade` is [`Error::Request`]; a transport that cannot
    /// upgrade gives [`TransportError::Unsupported`].
    pub async fn upgrade(&self, mut request: http::Request<Vec<u8>>) -> Result<Upgraded, Error> {
        if !is_upgrade(request.headers()) {
            return Err(Error::Request(kube_proto::RequestError::InvalidParam {
                param: "Connection",
                reason:
                    "an upgrade request has `Connection: Upgrade` (build it with Request::exec, attach or portforward)"
                        .into(),
            }));
        }
        let websocket = request
            .headers()
            .get_all(http::header::UPGRADE)
            .iter()
            .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("websocket"))));
        if websocket && !request.headers().contains_key(SEC_WEBSOCKET_KEY) {
            let key = kube_proto::request::websocket_key(self.nonce());
            request.headers_mut().insert(SEC_WEBSOCKET_KEY, key);
        }
        let span = tracing::debug_span!("upgrade", path = %request.uri().path());
        tracing::Instrument::instrument(self.upgrade_with_credentials(request), span).await
    }

    async fn upgrade_with_credentials(&self, request: http::Request<Vec<u8>>) -> Result<Upgraded, Error> {
        let mut refreshed = false;
        loop {
            let creds = self.credentials().await?;
            self.apply_identity(&creds)?;
            let prepared = self.prepare(request.clone(), &creds)?;
            let started = self.now();
            let upgraded = self.inner.transport.upgrade(prepared).await.map_err(Error::Transport)?;
            tracing::debug!(
                status = upgraded.status().as_u16(),
                elapsed_ms = self.now().duration_since(started).as_millis() as u64,
                "upgrade answer"
            );
            if upgraded.status() == StatusCode::UNAUTHORIZED && !refreshed {
                refreshed = true;
                if self.lock_auth().on_unauthorized(self.inner.transport.wall_clock()) {
                    tracing::debug!("401: refreshing credentials and retrying the upgrade once");
                    continue;
                }
            }
            return Ok(upgraded);
        }
    }

    /// 16 bytes from the client's random generator (seeded from the wall clock when the client
    /// was made): the nonce of a `Sec-WebSocket-Key`, or the seed of WebSocket masking keys.
    /// They are not secret, only unlikely to repeat.
    pub(crate) fn nonce(&self) -> [u8; 16] {
        let mut rng = self.inner.rng.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
        nonce[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
        nonce
    }

    /// Sends a request and reads the whole response.
    pub async fn request_bytes(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<(StatusCode, HeaderMap, Vec<u8>), Error> {
        let resp = self.send(request).await?;
        collect(resp).await.map_err(Error::Transport)
    }

    /// Sends a request and parses the answer as `T` (or the server's error).
    pub async fn request<T: DeserializeOwned + 'static>(&self, request: http::Request<Vec<u8>>) -> Result<T, Error> {
        let (status, headers, body) = self.request_bytes(request).await?;
        kube_proto::Response::new(status, &headers, &body).object().map_err(Error::Api)
    }
}

/// Reads a whole response body.
pub async fn collect(resp: TransportResponse) -> Result<(StatusCode, HeaderMap, Vec<u8>), TransportError> {
    let TransportResponse { status, headers, mut body } = resp;
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk: Bytes = chunk?;
        if out.is_empty() && body.size_hint().1 == Some(0) {
            out = chunk.to_vec();
        } else {
            out.extend_from_slice(&chunk);
        }
    }
    Ok((status, headers, out))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kube_proto::config::auth::{ExecOutput, ExecRequest};
    use kube_proto::config::{AuthSpec, ExecCluster, ExecConfig};

    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
    const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n";

    /// Answers every request `200 {}`, runs any plugin as one printing a client certificate,
    /// and records `set_identity` calls.
    #[derive(Clone, Default)]
    struct Mock {
        identities: Arc<Mutex<Vec<Option<Identity>>>>,
        sent: Arc<Mutex<usize>>,
        /// Whether each request carried an `Authorization` header.
        authorization: Arc<Mutex<Vec<bool>>>,
        /// Plugins run.
        plugins: Arc<Mutex<usize>>,
    }

    impl Transport for Mock {
        fn send(
            &self,
            request: http::Request<Vec<u8>>,
        ) -> futures_util::future::BoxFuture<'static, Result<TransportResponse, TransportError>> {
            *self.sent.lock().unwrap() += 1;
            self.authorization.lock().unwrap().push(request.headers().contains_key(AUTHORIZATION));
            Box::pin(async { Ok(TransportResponse::full(StatusCode::OK, HeaderMap::new(), b"{}".to_vec())) })
        }

        fn sleep_until(&self, _deadline: Instant) -> futures_util::future::BoxFuture<'static, ()> {
            Box::pin(async {})
        }

        fn run_process(
            &self,
            _request: ExecRequest,
        ) -> futures_util::future::BoxFuture<'static, Result<ExecOutput, String>> {
            *self.plugins.lock().unwrap() += 1;
            let stdout = serde_json::json!({
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "status": {"clientCertificateData": CERT, "clientKeyData": KEY},
            });
            let stdout = serde_json::to_vec(&stdout).unwrap();
            Box::pin(async move { Ok(ExecOutput { status: Some(0), stdout, stderr: Vec::new() }) })
        }

        fn set_identity(&self, identity: Option<&Identity>) -> Result<(), TransportError> {
            self.identities.lock().unwrap().push(identity.cloned());
            Ok(())
        }
    }

    fn get() -> http::Request<Vec<u8>> {
        http::Request::get("/api/v1/namespaces/default/configmaps/x").body(Vec::new()).unwrap()
    }

    fn exec_config() -> Config {
        let mut config = Config::new("https://127.0.0.1:6443".parse().unwrap());
        let exec = ExecConfig {
            command: "plugin".into(),
            api_version: Some("client.authentication.k8s.io/v1".into()),
            interactive_mode: Some("Never".into()),
            ..ExecConfig::default()
        };
        config.auth = AuthSpec::Exec { exec: Box::new(exec), cluster: ExecCluster::default() };
        config
    }

    /// A transport on a wall clock of its own, whose plugin prints a token valid for an hour
    /// (after yielding to the executor a few times, as a process takes time).
    #[derive(Clone)]
    struct Clocked {
        clock: Arc<Mutex<SystemTime>>,
        plugins: Arc<Mutex<usize>>,
        tokens: Arc<Mutex<Vec<String>>>,
    }

    impl Clocked {
        fn new() -> Self {
            let start = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
            Clocked { clock: Arc::new(Mutex::new(start)), plugins: Arc::default(), tokens: Arc::default() }
        }
    }

    impl Transport for Clocked {
        fn send(
            &self,
            request: http::Request<Vec<u8>>,
        ) -> futures_util::future::BoxFuture<'static, Result<TransportResponse, TransportError>> {
            let token = request.headers().get(AUTHORIZATION).map(|v| v.to_str().unwrap().to_owned());
            self.tokens.lock().unwrap().push(token.unwrap_or_default());
            Box::pin(async { Ok(TransportResponse::full(StatusCode::OK, HeaderMap::new(), b"{}".to_vec())) })
        }

        fn sleep_until(&self, _deadline: Instant) -> futures_util::future::BoxFuture<'static, ()> {
            Box::pin(async {})
        }

        fn wall_clock(&self) -> SystemTime {
            *self.clock.lock().unwrap()
        }

        fn run_process(
            &self,
            _request: ExecRequest,
        ) -> futures_util::future::BoxFuture<'static, Result<ExecOutput, String>> {
            let n = {
                let mut plugins = self.plugins.lock().unwrap();
                *plugins += 1;
                *plugins
            };
            let expiry = self.wall_clock() + std::time::Duration::from_secs(3600);
            let secs = expiry.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
            let expiry = k8s_openapi::jiff::Timestamp::from_second(secs).unwrap().to_string();
            let stdout = serde_json::json!({
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "status": {"token": format!("token-{n}"), "expirationTimestamp": expiry},
            });
            let stdout = serde_json::to_vec(&stdout).unwrap();
            Box::pin(async move {
                for _ in 0..5 {
                    yield_now().await;
                }
                Ok(ExecOutput { status: Some(0), stdout, stderr: Vec::new() })
            })
        }
    }

    /// Pending once, then ready: lets other tasks run.
    async fn yield_now() {
        let mut yielded = false;
        futures_util::future::poll_fn(|cx| {
            if yielded {
                return std::task::Poll::Ready(());
            }
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        })
        .await
    }

    #[test]
    fn concurrent_requests_run_the_plugin_once() {
        let transport = Clocked::new();
        let client = Client::new(transport.clone(), exec_config()).unwrap();
        futures_executor::block_on(futures_util::future::join_all((0..8).map(|_| client.request_bytes(get()))))
            .into_iter()
            .for_each(|r| drop(r.unwrap()));
        assert_eq!(*transport.plugins.lock().unwrap(), 1);
        assert_eq!(*transport.tokens.lock().unwrap(), vec!["Bearer token-1".to_owned(); 8]);
    }

    #[test]
    fn token_expiry_follows_the_transports_wall_clock() {
        let transport = Clocked::new();
        let client = Client::new(transport.clone(), exec_config()).unwrap();
        futures_executor::block_on(client.request_bytes(get())).unwrap();
        *transport.clock.lock().unwrap() += std::time::Duration::from_secs(30 * 60);
        futures_executor::block_on(client.request_bytes(get())).unwrap();
        assert_eq!(*transport.plugins.lock().unwrap(), 1, "still valid half an hour on");
        *transport.clock.lock().unwrap() += std::time::Duration::from_secs(31 * 60);
        futures_executor::block_on(client.request_bytes(get())).unwrap();
        assert_eq!(*transport.plugins.lock().unwrap(), 2, "expired an hour on, by the transport's clock");
        assert_eq!(*transport.tokens.lock().unwrap(), ["Bearer token-1", "Bearer token-1", "Bearer token-2"]);
    }

    #[test]
    fn impersonation_that_cannot_be_sent_is_an_error_not_the_real_user() {
        use kube_proto::config::Impersonation;
        let with = |impersonation: Impersonation| Config {
            impersonation: Some(impersonation),
            ..Config::new("https://127.0.0.1:6443".parse().unwrap())
        };
        let cases = [
            (Impersonation { user: Some("bad\nname".into()), ..Impersonation::default() }, "as"),
            (Impersonation { groups: vec!["system:masters".into()], ..Impersonation::default() }, "as"),
        ];
        for (impersonation, field) in cases {
            let mock = Mock::default();
            match Client::new(mock.clone(), with(impersonation)) {
                Err(Error::Auth(ConfigError::Invalid { field: f, .. })) => assert_eq!(f, field),
                other => panic!("expected an impersonation error, got {other:?}"),
            }
            assert_eq!(*mock.sent.lock().unwrap(), 0);
        }
        let valid = Impersonation { user: Some("jane".into()), groups: vec!["dev".into()], ..Impersonation::default() };
        assert!(Client::new(Mock::default(), with(valid)).is_ok());
    }

    #[test]
    fn no_credentials_go_to_a_plain_http_server() {
        let token = |url: &str| Config {
            auth: AuthSpec::Token(kube_proto::config::SecretString::new("s3cr3t")),
            ..Config::new(url.parse().unwrap())
        };
        let mut exec = exec_config();
        exec.cluster_url = "http://10.0.0.1:8080".parse().unwrap();
        let cases = [
            (token("http://10.0.0.1:8080"), false),
            (exec, false),
            (Config { send_credentials_over_loopback_http: true, ..token("http://10.0.0.1:8080") }, false),
            (Config { send_credentials_over_loopback_http: true, ..token("http://127.0.0.1:8080") }, true),
            (token("https://10.0.0.1:6443"), true),
        ];
        for (config, sent) in cases {
            let url = config.cluster_url.to_string();
            let mock = Mock::default();
            let client = Client::new(mock.clone(), config).unwrap();
            futures_executor::block_on(client.request_bytes(get())).unwrap();
            assert_eq!(*mock.authorization.lock().unwrap(), [sent], "{url}");
            assert_eq!(*mock.plugins.lock().unwrap(), 0, "{url}");
            assert!(mock.identities.lock().unwrap().is_empty(), "{url}");
        }
    }

    #[test]
    fn a_plugin_certificate_is_applied_once() {
        let mock = Mock::default();
        let client = Client::new(mock.clone(), exec_config()).unwrap();
        futures_executor::block_on(async {
            for _ in 0..3 {
                client.request_bytes(get()).await.unwrap();
            }
        });
        assert_eq!(*mock.sent.lock().unwrap(), 3);
        let expected = Identity::from_pem(CERT.into(), KEY.into(), "test").unwrap();
        assert_eq!(*mock.identities.lock().unwrap(), vec![Some(expected)]);
    }

    #[test]
    fn the_configured_certificate_is_not_applied_again() {
        let mock = Mock::default();
        let mut config = Config::new("https://127.0.0.1:6443".parse().unwrap());
        config.identity = Some(Identity::from_pem(CERT.into(), KEY.into(), "test").unwrap());
        let client = Client::new(mock.clone(), config).unwrap();
        futures_executor::block_on(async {
            client.request_bytes(get()).await.unwrap();
            client.request_bytes(get()).await.unwrap();
        });
        assert!(mock.identities.lock().unwrap().is_empty());
    }

    #[test]
    fn a_transport_without_support_fails_the_request() {
        /// The mock, with the default `set_identity`.
        struct NoSupport(Mock);
        impl Transport for NoSupport {
            fn send(
                &self,
                request: http::Request<Vec<u8>>,
            ) -> futures_util::future::BoxFuture<'static, Result<TransportResponse, TransportError>> {
                self.0.send(request)
            }
            fn sleep_until(&self, deadline: Instant) -> futures_util::future::BoxFuture<'static, ()> {
                self.0.sleep_until(deadline)
            }
            fn run_process(
                &self,
                request: ExecRequest,
            ) -> futures_util::future::BoxFuture<'static, Result<ExecOutput, String>> {
                self.0.run_process(request)
            }
        }
        let mock = Mock::default();
        let client = Client::new(NoSupport(mock.clone()), exec_config()).unwrap();
        let err = futures_executor::block_on(client.request_bytes(get())).unwrap_err();
        assert!(matches!(err, Error::Transport(TransportError::Unsupported(_))), "{err:?}");
        assert_eq!(*mock.sent.lock().unwrap(), 0, "nothing is sent without the certificate");
    }

    /// Answers upgrades with the statuses queued (a 101 with an empty stream once they run
    /// out), keeping the requests; plugins print a token.
    #[derive(Clone, Default)]
    struct Upgrader {
        requests: Arc<Mutex<Vec<http::Request<Vec<u8>>>>>,
        statuses: Arc<Mutex<Vec<StatusCode>>>,
        plugins: Arc<Mutex<usize>>,
    }

    impl Transport for Upgrader {
        fn send(
            &self,
            _request: http::Request<Vec<u8>>,
        ) -> futures_util::future::BoxFuture<'static, Result<TransportResponse, TransportError>> {
            Box::pin(async { Ok(TransportResponse::full(StatusCode::OK, HeaderMap::new(), b"{}".to_vec())) })
        }

        fn sleep_until(&self, _deadline: Instant) -> futures_util::future::BoxFuture<'static, ()> {
            Box::pin(async {})
        }

        fn run_process(
            &self,
            _request: ExecRequest,
        ) -> futures_util::future::BoxFuture<'static, Result<ExecOutput, String>> {
            let n = {
                let mut plugins = self.plugins.lock().unwrap();
                *plugins += 1;
                *plugins
            };
            let stdout = serde_json::json!({
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "status": {"token": format!("token-{n}")},
            });
            let stdout = serde_json::to_vec(&stdout).unwrap();
            Box::pin(async move { Ok(ExecOutput { status: Some(0), stdout, stderr: Vec::new() }) })
        }

        fn upgrade(
            &self,
            request: http::Request<Vec<u8>>,
        ) -> futures_util::future::BoxFuture<'static, Result<Upgraded, TransportError>> {
            self.requests.lock().unwrap().push(request);
            let status = self.statuses.lock().unwrap().pop();
            Box::pin(async move {
                Ok(match status {
                    Some(status) => Upgraded::Refused { status, headers: HeaderMap::new(), body: b"{}".to_vec() },
                    None => Upgraded::Switched {
                        headers: HeaderMap::new(),
                        stream: crate::transport::UpgradedStream::new(futures_util::io::Cursor::new(Vec::new())),
                    },
                })
            })
        }
    }

    fn exec_request() -> http::Request<Vec<u8>> {
        use k8s_openapi::api::core::v1::Pod;
        kube_proto::Request::namespaced::<Pod>("default")
            .exec("blog", ["ls"], &kube_proto::AttachParams::default())
            .unwrap()
    }

    #[test]
    fn upgrades_carry_credentials_impersonation_and_a_fresh_key() {
        let transport = Upgrader::default();
        let config = Config {
            auth: AuthSpec::Token(kube_proto::config::SecretString::new("s3cr3t")),
            impersonation: Some(kube_proto::config::Impersonation { user: Some("jane".into()), ..Default::default() }),
            ..Config::new("https://127.0.0.1:6443/prefix/".parse().unwrap())
        };
        let client = Client::new(transport.clone(), config).unwrap();
        for _ in 0..2 {
            let up = futures_executor::block_on(client.upgrade(exec_request())).unwrap();
            assert_eq!(up.status(), StatusCode::SWITCHING_PROTOCOLS);
            assert!(up.into_stream().is_some());
        }
        // A key of the caller's own is kept.
        let mut own = exec_request();
        own.headers_mut().insert(SEC_WEBSOCKET_KEY, HeaderValue::from_static("dGhlIHNhbXBsZSBub25jZQ=="));
        futures_executor::block_on(client.upgrade(own)).unwrap();

        let requests = transport.requests.lock().unwrap();
        let keys: Vec<_> = requests.iter().map(|r| r.headers()[SEC_WEBSOCKET_KEY].to_str().unwrap()).collect();
        assert_ne!(keys[0], keys[1], "a nonce per upgrade");
        for key in &keys {
            // The base64 of 16 bytes.
            assert!(key.len() == 24 && key.ends_with("==") && !key[..22].contains('='), "{key}");
        }
        assert_eq!(keys[2], "dGhlIHNhbXBsZSBub25jZQ==");
        for r in requests.iter() {
            assert!(
                r.uri()
                    .to_string()
                    .starts_with("https://127.0.0.1:6443/prefix/api/v1/namespaces/default/pods/blog/exec?")
            );
            assert_eq!(r.headers()[AUTHORIZATION], "Bearer s3cr3t");
            assert_eq!(r.headers()["impersonate-user"], "jane");
            assert_eq!(r.headers()[USER_AGENT], DEFAULT_USER_AGENT);
            assert_eq!(r.headers()["upgrade"], "websocket");
            assert_eq!(r.headers()["sec-websocket-version"], "13");
        }
    }

    #[test]
    fn an_upgrade_can_be_spawned() {
        fn send<T: Send + 'static>(_: &T) {}
        let client = Client::new(Upgrader::default(), Config::new("https://127.0.0.1:6443".parse().unwrap())).unwrap();
        let upgrading = async move { client.upgrade(exec_request()).await };
        send(&upgrading);
    }

    #[test]
    fn upgrades_send_no_credentials_over_plain_http() {
        let transport = Upgrader::default();
        let config = Config {
            auth: AuthSpec::Token(kube_proto::config::SecretString::new("s3cr3t")),
            ..Config::new("http://10.0.0.1:8080".parse().unwrap())
        };
        let client = Client::new(transport.clone(), config).unwrap();
        futures_executor::block_on(client.upgrade(exec_request())).unwrap();
        assert!(!transport.requests.lock().unwrap()[0].headers().contains_key(AUTHORIZATION));
    }

    #[test]
    fn a_401_upgrade_renews_credentials_once() {
        let transport = Upgrader::default();
        transport.statuses.lock().unwrap().extend([StatusCode::UNAUTHORIZED; 3]);
        let client = Client::new(transport.clone(), exec_config()).unwrap();
        let up = futures_executor::block_on(client.upgrade(exec_request())).unwrap();
        assert_eq!((up.status(), up.body()), (StatusCode::UNAUTHORIZED, &b"{}"[..]), "the refusal, after one retry");
        let tokens: Vec<_> =
            transport.requests.lock().unwrap().iter().map(|r| r.headers()[AUTHORIZATION].clone()).collect();
        assert_eq!(tokens, ["Bearer token-1", "Bearer token-2"]);
    }

    #[test]
    fn upgrades_need_an_upgrade_request_and_a_transport_that_can() {
        let client = Client::new(Upgrader::default(), Config::new("https://127.0.0.1:6443".parse().unwrap())).unwrap();
        let err = futures_executor::block_on(client.upgrade(get())).unwrap_err();
        assert!(matches!(err, Error::Request(_)), "{err:?}");
        // Mock keeps the default `upgrade`.
        let mock = Mock::default();
        let client = Client::new(mock.clone(), Config::new("https://127.0.0.1:6443".parse().unwrap())).unwrap();
        let err = futures_executor::block_on(client.upgrade(exec_request())).unwrap_err();
        match err {
            Error::Transport(TransportError::Unsupported(message)) => {
                assert!(message.contains("Transport::upgrade"), "{message}")
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
        assert_eq!(*mock.sent.lock().unwrap(), 0);
    }
}
