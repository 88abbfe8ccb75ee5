//! The auth state: which credentials to send at `now`, and what the caller must do first to
//! have them (read a token file, run an exec plugin, refresh an OIDC token).
//!
//! ```
//! use std::time::SystemTime;
//! use kube_proto::config::{Auth, AuthAction, AuthSpec};
//!
//! let mut auth = Auth::new(&AuthSpec::TokenFile("/var/run/token".into()), None);
//! let now = SystemTime::UNIX_EPOCH;
//! let AuthAction::ReadFile(path) = auth.poll(now) else { panic!() };
//! auth.on_file(now, &path, Ok(b"abc\n".to_vec()));
//! let AuthAction::Ready(creds) = auth.poll(now) else { panic!() };
//! assert_eq!(creds.authorization.unwrap().expose(), "Bearer abc");
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::kubeconfig::ExecConfig;
use super::secret::SecretString;
use super::{AuthSpec, ConfigError, ExecCluster, Identity};

/// How long a token read from a file is used before the file is read again (as client-go).
pub const TOKEN_FILE_REFRESH: Duration = Duration::from_secs(60);

/// Credentials are renewed this long before they expire.
pub const EXPIRY_MARGIN: Duration = Duration::from_secs(10);

/// What to send with a request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// The `Authorization` header value (`Bearer ...` or `Basic ...`).
    pub authorization: Option<SecretString>,
    /// A client certificate from an exec plugin (it replaces the kubeconfig's, if any).
    pub identity: Option<Identity>,
}

impl Credentials {
    /// The `Authorization` header, marked sensitive (so `http` and loggers never show it).
    pub fn authorization_header(&self) -> Option<http::HeaderValue> {
        let mut v = http::HeaderValue::from_str(self.authorization.as_ref()?.expose()).ok()?;
        v.set_sensitive(true);
        Some(v)
    }
}

/// A process for the caller to run: an exec credential plugin, or a gcp `cmd-path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// The command: a path, or a name looked up in `PATH`.
    pub command: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables to add (values may be secret).
    pub env: Vec<(String, SecretString)>,
    /// Whether the plugin may talk to the user (give it the terminal's stdin).
    pub interactive: bool,
    /// Shown when the command is missing or fails.
    pub install_hint: Option<String>,
}

/// What the process printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit code (`None` if killed by a signal).
    pub status: Option<i32>,
    /// Standard output.
    pub stdout: Vec<u8>,
    /// Standard error.
    pub stderr: Vec<u8>,
}

/// What the caller does next to authenticate a request.
pub enum AuthAction {
    /// Send these credentials.
    Ready(Credentials),
    /// Read this file and call [`Auth::on_file`].
    ReadFile(PathBuf),
    /// Run this process and call [`Auth::on_exec`] (or [`Auth::on_exec_failed`] if it could not
    /// be started).
    Exec(ExecRequest),
    /// Send this request (no cluster credentials) and call [`Auth::on_http_response`]: an OIDC
    /// discovery or token refresh.
    Http(http::Request<Vec<u8>>),
    /// Credentials cannot be had; the error says why. Polling again retries.
    Failed(ConfigError),
}

impl std::fmt::Debug for AuthAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthAction::Ready(c) => f.debug_tuple("Ready").field(c).finish(),
            AuthAction::ReadFile(p) => f.debug_tuple("ReadFile").field(p).finish(),
            AuthAction::Exec(r) => f.debug_tuple("Exec").field(r).finish(),
            // The body of a token refresh holds the refresh token and client secret.
            AuthAction::Http(r) => write!(f, "Http({} {}, {} byte body)", r.method(), r.uri(), r.body().len()),
            AuthAction::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

#[derive(Debug, Clone)]
struct Cached {
    credentials: Credentials,
    /// When to renew (wall clock); `None`: never, until a 401.
    renew_at: Option<SystemTime>,
    /// Just printed by a process: used by the next poll even if already due for renewal
    /// (credentials that expire within [`EXPIRY_MARGIN`] must not make every poll run the
    /// plugin again, forever, with no request ever sent).
    fresh: bool,
}

impl Cached {
    /// Credentials a process printed at `now`, expiring at `expiry` (if it said).
    fn printed(now: SystemTime, credentials: Credentials, expiry: Option<SystemTime>) -> Cached {
        let renew_at = expiry.map(renew_before);
        Cached { credentials, renew_at, fresh: renew_at.is_some_and(|t| t <= now) }
    }
}

#[derive(Debug)]
enum Source {
    None,
    Static(Credentials),
    TokenFile { path: PathBuf },
    Exec { exec: ExecConfig, cluster: ExecCluster },
    Gcp { config: BTreeMap<String, SecretString> },
    Oidc(Oidc),
}

#[derive(Debug)]
struct Oidc {
    id_token: Option<SecretString>,
    refresh_token: Option<SecretString>,
    client_id: String,
    client_secret: Option<SecretString>,
    issuer: Option<String>,
    token_endpoint: Option<String>,
    waiting: Option<OidcStep>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OidcStep {
    Discovery,
    Refresh,
}

/// The auth state of one configuration. See the [module documentation](self).
#[derive(Debug)]
pub struct Auth {
    source: Source,
    cached: Option<Cached>,
    terminal: bool,
    failure: Option<ConfigError>,
    base_identity: Option<Identity>,
}

impl Auth {
    /// The state for a configured method; `base_identity` is the kubeconfig's client
    /// certificate (sent unless an exec plugin supplies its own).
    pub fn new(spec: &AuthSpec, base_identity: Option<Identity>) -> Self {
        let with = |authorization: Option<SecretString>| Credentials { authorization, identity: base_identity.clone() };
        let source = match spec {
            AuthSpec::None => Source::Static(with(None)),
            AuthSpec::Token(t) => Source::Static(with(Some(SecretString::new(format!("Bearer {}", t.expose()))))),
            AuthSpec::Basic { username, password } => {
                let raw = format!("{username}:{}", password.expose());
                let enc = base64::engine::general_purpose::STANDARD.encode(raw.as_bytes());
                Source::Static(with(Some(SecretString::new(format!("Basic {enc}")))))
            }
            AuthSpec::TokenFile(path) => Source::TokenFile { path: path.clone() },
            AuthSpec::Exec { exec, cluster } => Source::Exec { exec: (**exec).clone(), cluster: cluster.clone() },
            AuthSpec::AuthProvider(p) if p.name == "gcp" => Source::Gcp { config: p.config.clone() },
            AuthSpec::AuthProvider(p) => {
                let get = |k: &str| p.config.get(k).filter(|v| !v.is_empty()).cloned();
                Source::Oidc(Oidc {
                    id_token: get("id-token"),
                    refresh_token: get("refresh-token"),
                    client_id: get("client-id").map(|s| s.expose().to_owned()).unwrap_or_default(),
                    client_secret: get("client-secret"),
                    issuer: get("idp-issuer-url").map(|s| s.expose().trim_end_matches('/').to_owned()),
                    token_endpoint: None,
                    waiting: None,
                })
            }
        };
        let source = match source {
            Source::Static(c) if c.authorization.is_none() && c.identity.is_none() => Source::None,
            s => s,
        };
        Auth { source, cached: None, terminal: false, failure: None, base_identity }
    }

    /// Whether the user's terminal is available to interactive exec plugins (the caller knows;
    /// the core does not look).
    #[must_use]
    pub fn with_terminal(mut self, terminal: bool) -> Self {
        self.terminal = terminal;
        self
    }

    /// What to do to authenticate a request at `now`.
    pub fn poll(&mut self, now: SystemTime) -> AuthAction {
        if let Some(e) = self.failure.take() {
            return AuthAction::Failed(e);
        }
        if let Some(c) = &mut self.cached
            && (c.fresh || c.renew_at.is_none_or(|t| now < t))
        {
            c.fresh = false;
            return AuthAction::Ready(c.credentials.clone());
        }
        match &mut self.source {
            Source::None => {
                AuthAction::Ready(Credentials { authorization: None, identity: self.base_identity.clone() })
            }
            Source::Static(c) => AuthAction::Ready(c.clone()),
            Source::TokenFile { path } => AuthAction::ReadFile(path.clone()),
            Source::Exec { exec, cluster } => match exec_request(exec, cluster, self.terminal) {
                Ok(r) => AuthAction::Exec(r),
                Err(e) => AuthAction::Failed(e),
            },
            Source::Gcp { config } => match config.get("cmd-path").filter(|c| !c.is_empty()) {
                Some(cmd) => AuthAction::Exec(ExecRequest {
                    command: cmd.expose().into(),
                    args: config
                        .get("cmd-args")
                        .map(|a| a.expose().split_whitespace().map(str::to_owned).collect())
                        .unwrap_or_default(),
                    env: Vec::new(),
                    interactive: false,
                    install_hint: Some(
                        "the gcp auth-provider is removed; install gke-gcloud-auth-plugin and use it as an exec plugin"
                            .into(),
                    ),
                }),
                None => match config.get("access-token").filter(|t| !t.is_empty()) {
                    Some(t) if !expired_at(config.get("expiry").map(|e| e.expose()), now) => {
                        AuthAction::Ready(bearer(&self.base_identity, t.expose()))
                    }
                    _ => AuthAction::Failed(ConfigError::AuthProvider {
                        provider: "gcp".into(),
                        message:
                            "no cmd-path to refresh the access token with; use the gke-gcloud-auth-plugin exec plugin"
                                .into(),
                    }),
                },
            },
            Source::Oidc(o) => {
                if let Some(t) = &o.id_token
                    && !jwt_expired(t.expose(), now)
                {
                    let token = t.expose().to_owned();
                    return AuthAction::Ready(bearer(&self.base_identity, &token));
                }
                let Some(refresh) = o.refresh_token.clone() else {
                    return AuthAction::Failed(ConfigError::AuthProvider {
                        provider: "oidc".into(),
                        message: "the id-token has expired and there is no refresh-token".into(),
                    });
                };
                let Some(issuer) = o.issuer.clone() else {
                    return AuthAction::Failed(ConfigError::AuthProvider {
                        provider: "oidc".into(),
                        message: "the id-token has expired and there is no idp-issuer-url to refresh it at".into(),
                    });
                };
                match o.token_endpoint.clone() {
                    None => {
                        o.waiting = Some(OidcStep::Discovery);
                        let mut req = http::Request::new(Vec::new());
                        match format!("{issuer}/.well-known/openid-configuration").parse() {
                            Ok(uri) => *req.uri_mut() = uri,
                            Err(e) => {
                                return AuthAction::Failed(ConfigError::AuthProvider {
                                    provider: "oidc".into(),
                                    message: format!("idp-issuer-url {issuer:?} is not a URL: {e}"),
                                });
                            }
                        }
                        req.headers_mut()
                            .insert(http::header::ACCEPT, http::HeaderValue::from_static("application/json"));
                        AuthAction::Http(req)
                    }
                    Some(endpoint) => {
                        o.waiting = Some(OidcStep::Refresh);
                        let mut body = String::from("grant_type=refresh_token&refresh_token=");
                        crate::params::encode_query_value(&mut body, refresh.expose());
                        body.push_str("&client_id=");
                        crate::params::encode_query_value(&mut body, &o.client_id);
                        if let Some(secret) = &o.client_secret {
                            body.push_str("&client_secret=");
                            crate::params::encode_query_value(&mut body, secret.expose());
                        }
                        let mut req = http::Request::new(body.into_bytes());
                        *req.method_mut() = http::Method::POST;
                        match endpoint.parse() {
                            Ok(uri) => *req.uri_mut() = uri,
                            Err(e) => {
                                return AuthAction::Failed(ConfigError::AuthProvider {
                                    provider: "oidc".into(),
                                    message: format!("token_endpoint {endpoint:?} is not a URL: {e}"),
                                });
                            }
                        }
                        let h = req.headers_mut();
                        h.insert(
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/x-www-form-urlencoded"),
                        );
                        h.insert(http::header::ACCEPT, http::HeaderValue::from_static("application/json"));
                        AuthAction::Http(req)
                    }
                }
            }
        }
    }

    /// The contents of the file [`AuthAction::ReadFile`] asked for (or why it could not be read).
    pub fn on_file(&mut self, now: SystemTime, path: &Path, contents: Result<Vec<u8>, String>) {
        let Source::TokenFile { path: want } = &self.source else { return };
        if want != path {
            return;
        }
        match contents {
            Ok(bytes) => {
                let token = String::from_utf8_lossy(&bytes).trim().to_owned();
                if token.is_empty() {
                    self.failure = Some(ConfigError::ReadFile {
                        field: "tokenFile".into(),
                        path: path.display().to_string(),
                        message: "the file is empty".into(),
                    });
                    return;
                }
                let creds = bearer(&self.base_identity, &token);
                self.cached =
                    Some(Cached { credentials: creds, renew_at: Some(now + TOKEN_FILE_REFRESH), fresh: false });
            }
            Err(message) => {
                // Keep sending the previous token if there is one: a rotation in progress.
                if let Some(c) = &mut self.cached {
                    c.renew_at = Some(now + Duration::from_secs(5));
                } else {
                    self.failure = Some(ConfigError::ReadFile {
                        field: "tokenFile".into(),
                        path: path.display().to_string(),
                        message,
                    });
                }
            }
        }
    }

    /// What the process [`AuthAction::Exec`] asked for printed, at `now`. A credential that
    /// has already expired at `now` is used for the one request that asked for it, then renewed.
    pub fn on_exec(&mut self, now: SystemTime, output: ExecOutput) {
        let base = self.base_identity.clone();
        match &self.source {
            Source::Exec { exec, .. } => match parse_exec_output(exec, &output) {
                Ok((token, identity, expiry)) => {
                    let credentials = Credentials {
                        authorization: token.map(|t| SecretString::new(format!("Bearer {}", t.expose()))),
                        identity: identity.or(base),
                    };
                    self.cached = Some(Cached::printed(now, credentials, expiry));
                }
                Err(e) => self.failure = Some(e),
            },
            Source::Gcp { config } => match parse_gcp_output(config, &output) {
                Ok((token, expiry)) => {
                    let credentials = bearer(&self.base_identity, &token);
                    self.cached = Some(Cached::printed(now, credentials, expiry));
                }
                Err(e) => self.failure = Some(e),
            },
            _ => {}
        }
    }

    /// The process [`AuthAction::Exec`] asked for could not be started (not found, not
    /// executable). `now` is taken first as by every input; the failure is reported by the next
    /// [`poll`](Self::poll) whenever it comes.
    pub fn on_exec_failed(&mut self, _now: SystemTime, message: impl Into<String>) {
        let (command, install_hint) = match &self.source {
            Source::Exec { exec, .. } => (exec.command.display().to_string(), exec.install_hint.clone()),
            Source::Gcp { config } => (config.get("cmd-path").map(|c| c.expose().to_owned()).unwrap_or_default(), None),
            _ => return,
        };
        self.failure = Some(ConfigError::Exec { command, message: message.into(), install_hint });
    }

    /// The response to the request [`AuthAction::Http`] asked for, at `now` (the new id-token's
    /// expiry is read from the token itself at the next [`poll`](Self::poll)).
    pub fn on_http_response(&mut self, _now: SystemTime, status: http::StatusCode, body: &[u8]) {
        let Source::Oidc(o) = &mut self.source else { return };
        let step = o.waiting.take();
        let fail = |message: String| ConfigError::AuthProvider { provider: "oidc".into(), message };
        if !status.is_success() {
            self.failure = Some(fail(format!("the identity provider answered HTTP {status}")));
            return;
        }
        match step {
            Some(OidcStep::Discovery) => {
                #[derive(Deserialize)]
                struct Discovery {
                    token_endpoint: String,
                }
                match serde_json::from_slice::<Discovery>(body) {
                    Ok(d) => o.token_endpoint = Some(d.token_endpoint),
                    Err(e) => self.failure = Some(fail(format!("invalid discovery document: {e}"))),
                }
            }
            Some(OidcStep::Refresh) => {
                #[derive(Deserialize)]
                struct Token {
                    id_token: Option<SecretString>,
                    refresh_token: Option<SecretString>,
                }
                match serde_json::from_slice::<Token>(body) {
                    Ok(Token { id_token: Some(id), refresh_token }) => {
                        o.id_token = Some(id);
                        if let Some(r) = refresh_token {
                            o.refresh_token = Some(r);
                        }
                    }
                    Ok(_) => self.failure = Some(fail("the token response has no id_token".into())),
                    Err(_) => self.failure = Some(fail("the token response is not valid JSON".into())),
                }
            }
            None => {}
        }
    }

    /// The server answered 401 at `now`: forget cached credentials so that the next poll renews
    /// them. Returns whether renewing can help (a retry is worth it once).
    pub fn on_unauthorized(&mut self, _now: SystemTime) -> bool {
        self.cached = None;
        match &mut self.source {
            Source::TokenFile { .. } | Source::Exec { .. } | Source::Gcp { .. } => true,
            Source::Oidc(o) => {
                o.id_token = None;
                o.refresh_token.is_some()
            }
            Source::None | Source::Static(_) => false,
        }
    }

    /// The current OIDC tokens after a refresh (`id-token`, `refresh-token`), for a caller that
    /// writes them back to the kubeconfig as kubectl does.
    pub fn oidc_tokens(&self) -> Option<(Option<&SecretString>, Option<&SecretString>)> {
        match &self.source {
            Source::Oidc(o) => Some((o.id_token.as_ref(), o.refresh_token.as_ref())),
            _ => None,
        }
    }
}

/// The process to run for an exec plugin, with `KUBERNETES_EXEC_INFO`.
pub fn exec_request(exec: &ExecConfig, cluster: &ExecCluster, terminal: bool) -> Result<ExecRequest, ConfigError> {
    let api_version = exec.api_version.clone().unwrap_or_default();
    let fail = |message: String| ConfigError::Exec {
        command: exec.command.display().to_string(),
        message,
        install_hint: exec.install_hint.clone(),
    };
    if !matches!(api_version.as_str(), "client.authentication.k8s.io/v1" | "client.authentication.k8s.io/v1beta1") {
        return Err(fail(format!(
            "apiVersion {api_version:?} is not supported (use client.authentication.k8s.io/v1 or v1beta1)"
        )));
    }
    let mode = match (exec.interactive_mode.as_deref(), api_version.ends_with("/v1")) {
        (Some(m), _) => m.to_owned(),
        (None, true) => return Err(fail("interactiveMode is required for client.authentication.k8s.io/v1".into())),
        (None, false) => "IfAvailable".to_owned(),
    };
    let interactive = match mode.as_str() {
        "Never" => false,
        "IfAvailable" => terminal,
        "Always" if terminal => true,
        "Always" => return Err(fail("interactiveMode is Always but no terminal is available".into())),
        other => return Err(fail(format!("interactiveMode {other:?} is not one of Never, IfAvailable, Always"))),
    };
    let mut spec = json!({"interactive": interactive});
    if exec.provide_cluster_info {
        let mut c = json!({"server": cluster.server});
        if let Some(n) = &cluster.tls_server_name {
            c["tls-server-name"] = json!(n);
        }
        if cluster.insecure_skip_tls_verify {
            c["insecure-skip-tls-verify"] = json!(true);
        }
        if let Some(ca) = &cluster.certificate_authority_data {
            c["certificate-authority-data"] = json!(base64::engine::general_purpose::STANDARD.encode(ca));
        }
        if let Some(p) = &cluster.proxy_url {
            c["proxy-url"] = json!(p);
        }
        if cluster.disable_compression {
            c["disable-compression"] = json!(true);
        }
        spec["cluster"] = c;
    }
    let info = json!({"apiVersion": api_version, "kind": "ExecCredential", "spec": spec});
    let mut env: Vec<(String, SecretString)> = exec.env.iter().map(|e| (e.name.clone(), e.value.clone())).collect();
    env.push(("KUBERNETES_EXEC_INFO".into(), SecretString::new(info.to_string())));
    Ok(ExecRequest {
        command: exec.command.clone(),
        args: exec.args.clone(),
        env,
        interactive,
        install_hint: exec.install_hint.clone(),
    })
}

type ExecResult = (Option<SecretString>, Option<Identity>, Option<SystemTime>);

/// Reads an `ExecCredential` that a plugin printed.
fn parse_exec_output(exec: &ExecConfig, out: &ExecOutput) -> Result<ExecResult, ConfigError> {
    let fail = |message: String| ConfigError::Exec {
        command: exec.command.display().to_string(),
        message,
        install_hint: exec.install_hint.clone(),
    };
    if out.status != Some(0) {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let status =
            out.status.map_or_else(|| "was killed by a signal".to_owned(), |c| format!("exited with status {c}"));
        return Err(fail(format!("{status}: {}", stderr.trim())));
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Cred {
        api_version: Option<String>,
        kind: Option<String>,
        status: Option<CredStatus>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct CredStatus {
        token: Option<SecretString>,
        client_certificate_data: Option<String>,
        client_key_data: Option<SecretString>,
        expiration_timestamp: Option<String>,
    }
    let cred: Cred = serde_json::from_slice(&out.stdout).map_err(|e| {
        // serde_json's message may quote a value: say where, not what.
        fail(format!("printed invalid ExecCredential JSON (line {}, column {})", e.line(), e.column()))
    })?;
    if cred.kind.as_deref() != Some("ExecCredential") {
        return Err(fail(format!("printed kind {:?}, not ExecCredential", cred.kind.unwrap_or_default())));
    }
    if cred.api_version != exec.api_version {
        return Err(fail(format!(
            "printed apiVersion {:?}, but {:?} was asked for",
            cred.api_version.unwrap_or_default(),
            exec.api_version.clone().unwrap_or_default()
        )));
    }
    let status = cred.status.ok_or_else(|| fail("the ExecCredential has no status".into()))?;
    let identity = match (status.client_certificate_data, status.client_key_data) {
        (Some(cert), Some(key)) => {
            Some(Identity::from_pem(cert.into_bytes(), key.expose().as_bytes().to_vec(), "ExecCredential.status")?)
        }
        (None, None) => None,
        _ => return Err(fail("the ExecCredential has only one of clientCertificateData and clientKeyData".into())),
    };
    let token = status.token.filter(|t| !t.is_empty());
    if token.is_none() && identity.is_none() {
        return Err(fail("the ExecCredential has neither a token nor a client certificate".into()));
    }
    let expiry = match status.expiration_timestamp.as_deref().filter(|s| !s.is_empty()) {
        Some(ts) => Some(parse_time(ts).ok_or_else(|| fail(format!("expirationTimestamp {ts:?} is not RFC 3339")))?),
        None => None,
    };
    Ok((token, identity, expiry))
}

/// Reads the JSON a gcp `cmd-path` printed: the token and expiry at `token-key` and
/// `expiry-key` (simple JSONPath like `{.credential.access_token}`).
fn parse_gcp_output(
    config: &BTreeMap<String, SecretString>,
    out: &ExecOutput,
) -> Result<(String, Option<SystemTime>), ConfigError> {
    let command = config.get("cmd-path").map(|c| c.expose().to_owned()).unwrap_or_default();
    let fail = |message: String| ConfigError::Exec { command: command.clone(), message, install_hint: None };
    if out.status != Some(0) {
        let status =
            out.status.map_or_else(|| "was killed by a signal".to_owned(), |c| format!("exited with status {c}"));
        return Err(fail(format!("{status}: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| fail(format!("printed invalid JSON (line {}, column {})", e.line(), e.column())))?;
    let path =
        |key: &str, default: &str| config.get(key).map(|s| s.expose().to_owned()).unwrap_or_else(|| default.to_owned());
    let token = json_path(&v, &path("token-key", "{.access_token}"))
        .and_then(|t| t.as_str().map(str::to_owned))
        .ok_or_else(|| fail("the output has no token at token-key".into()))?;
    let expiry = json_path(&v, &path("expiry-key", "{.token_expiry}")).and_then(|e| e.as_str()).and_then(parse_time);
    Ok((token, expiry))
}

fn json_path<'a>(v: &'a serde_json::Value, path: &str) -> Option<&'a serde_json::Value> {
    let p = path.trim().trim_start_matches('{').trim_end_matches('}').trim_start_matches('.');
    p.split('.').filter(|s| !s.is_empty()).try_fold(v, |cur, seg| cur.get(seg))
}

fn bearer(identity: &Option<Identity>, token: &str) -> Credentials {
    Credentials { authorization: Some(SecretString::new(format!("Bearer {token}"))), identity: identity.clone() }
}

/// When to renew credentials that expire at `expiry`.
fn renew_before(expiry: SystemTime) -> SystemTime {
    expiry.checked_sub(EXPIRY_MARGIN).unwrap_or(expiry)
}

fn parse_time(s: &str) -> Option<SystemTime> {
    let ts: k8s_openapi::jiff::Timestamp = s.parse().ok()?;
    // Not `SystemTime::from`, which panics where a year-1 timestamp does not fit.
    let d = ts.as_duration();
    if d.is_negative() {
        SystemTime::UNIX_EPOCH.checked_sub(d.unsigned_abs())
    } else {
        SystemTime::UNIX_EPOCH.checked_add(d.unsigned_abs())
    }
}

fn expired_at(expiry: Option<&str>, now: SystemTime) -> bool {
    expiry.and_then(parse_time).is_some_and(|e| now + EXPIRY_MARGIN >= e)
}

/// The `exp` claim of a JWT, without verifying it (the server does that).
fn jwt_expiry(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = v.get("exp")?.as_u64()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(exp))
}

fn jwt_expired(token: &str, now: SystemTime) -> bool {
    jwt_expiry(token).is_none_or(|e| now + EXPIRY_MARGIN >= e)
}
