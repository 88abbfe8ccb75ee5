//! Configuration: kubeconfig files and in-cluster settings turned into one plain [`Config`]
//! value that transports turn into their TLS and HTTP settings, plus the auth state
//! ([`auth::Auth`]) that yields the credentials to send at `now`.
//!
//! The core reads nothing itself: the caller hands it the kubeconfig bytes, and a function that
//! reads the files the kubeconfig refers to (`kube-runtime` has the helper that does this for
//! the standard locations and environment).
//!
//! ```
//! use kube_proto::config::{Config, Kubeconfig};
//!
//! let yaml = br#"
//! apiVersion: v1
//! kind: Config
//! current-context: dev
//! clusters:
//! - name: c
//!   cluster: {server: "https://10.0.0.1:6443", insecure-skip-tls-verify: true}
//! contexts:
//! - name: dev
//!   context: {cluster: c, user: u, namespace: apps}
//! users:
//! - name: u
//!   user: {token: s3cr3t}
//! "#;
//! let kubeconfig = Kubeconfig::from_yaml(yaml, None).unwrap();
//! let config = Config::from_kubeconfig(&kubeconfig, None, &mut |p| Err(format!("no file {}", p.display()))).unwrap();
//! assert_eq!(config.cluster_url.as_str(), "https://10.0.0.1:6443/");
//! assert_eq!(config.default_namespace, "apps");
//! assert!(!format!("{config:?}").contains("s3cr3t"));
//! ```

pub mod auth;
pub mod kubeconfig;
mod pem;
pub mod secret;
pub mod x509;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine as _;

pub use auth::{Auth, AuthAction, Credentials};
pub use kubeconfig::{AuthInfo, AuthProviderConfig, Cluster, Context, ExecConfig, Kubeconfig};
pub use pem::{PemBlock, parse_pem};
pub use secret::{SecretBytes, SecretString};

/// Where the service account's files are inside a pod.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// A configuration that could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A kubeconfig file is not valid YAML or not a kubeconfig.
    #[error("{file}:{line}:{column}: invalid kubeconfig: {}{message}", field.as_deref().map(|f| format!("{f}: ")).unwrap_or_default())]
    Yaml {
        /// The file.
        file: String,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// The field that is wrong, such as `users[admin].user.exec.command` (list entries by
        /// name, or by index when they have none), when known.
        field: Option<String>,
        /// What is wrong (quoted values are redacted).
        message: String,
    },
    /// One kubeconfig file defines two clusters, contexts or users with one name (kubectl
    /// refuses such a file too; across merged files the first definition wins instead).
    #[error("{file}: invalid kubeconfig: duplicate name {name:?} in {list}; names must be unique within a file")]
    DuplicateName {
        /// The file.
        file: String,
        /// `clusters`, `contexts` or `users`.
        list: &'static str,
        /// The name defined twice.
        name: String,
    },
    /// No context was named and the kubeconfig has no current-context.
    #[error("the kubeconfig has no current-context and no context was named")]
    NoCurrentContext,
    /// A context, cluster or user is named but not defined.
    #[error("{what} {name:?} is named but not defined in the kubeconfig")]
    Missing {
        /// `context`, `cluster` or `user`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A field's value is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// Where, such as `clusters[prod].server`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A file the configuration refers to could not be read.
    #[error("{field}: cannot read {path}: {message}")]
    ReadFile {
        /// The field that names the file.
        field: String,
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A certificate or key does not parse.
    #[error("{field}: {message}")]
    Pem {
        /// The field holding it.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A user has more than one way to authenticate.
    #[error("user {user:?} has more than one authentication method ({}); only one is allowed", methods.join(", "))]
    MultipleAuth {
        /// The user.
        user: String,
        /// The methods found.
        methods: Vec<&'static str>,
    },
    /// An auth-provider this client does not implement.
    #[error("user {user:?}: the auth-provider {name:?} is not supported; {hint}")]
    UnsupportedAuthProvider {
        /// The user.
        user: String,
        /// The provider's name.
        name: String,
        /// What to use instead.
        hint: String,
    },
    /// In-cluster configuration is not available.
    #[error("in-cluster configuration: {0}")]
    InCluster(String),
    /// Neither a kubeconfig nor in-cluster configuration could be used.
    #[error("no configuration: kubeconfig: {kubeconfig}; in-cluster: {in_cluster}")]
    Infer {
        /// Why the kubeconfig could not be used.
        kubeconfig: Box<ConfigError>,
        /// Why the in-cluster configuration could not be used.
        in_cluster: Box<ConfigError>,
    },
    /// An exec credential plugin could not be run, failed, or printed something invalid.
    #[error("exec plugin {command:?}: {message}{}", install_hint.as_deref().map(|h| format!("\n{h}")).unwrap_or_default())]
    Exec {
        /// The command.
        command: String,
        /// What went wrong (its exit status and stderr, or the invalid output).
        message: String,
        /// The kubeconfig's installHint, shown when the command is missing or fails.
        install_hint: Option<String>,
    },
    /// An auth provider's token could not be refreshed.
    #[error("auth provider {provider}: {message}")]
    AuthProvider {
        /// The provider.
        provider: String,
        /// What went wrong.
        message: String,
    },
}

/// A client certificate and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The certificate chain, PEM.
    pub cert_chain_pem: Vec<u8>,
    /// The private key, PEM (RSA, EC or PKCS#8).
    pub key_pem: SecretBytes,
}

impl Identity {
    /// Checks and wraps a PEM certificate chain and key; `field` names where they came from.
    pub fn from_pem(cert: Vec<u8>, key: Vec<u8>, field: &str) -> Result<Self, ConfigError> {
        pem::certificates(&cert, &format!("{field}.client-certificate"))?;
        pem::private_key(&key, &format!("{field}.client-key"))?;
        Ok(Identity { cert_chain_pem: cert, key_pem: SecretBytes::new(key) })
    }

    /// The certificates, DER.
    pub fn certificates_der(&self) -> Vec<Vec<u8>> {
        pem::certificates(&self.cert_chain_pem, "").unwrap_or_default()
    }

    /// The private key: its PEM label (`RSA PRIVATE KEY`, `EC PRIVATE KEY`, `PRIVATE KEY`)
    /// and DER bytes.
    pub fn private_key_der(&self) -> Option<(String, SecretBytes)> {
        pem::private_key(self.key_pem.expose(), "").ok()
    }
}

/// Impersonation: act as another user (`Impersonate-*` headers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Impersonation {
    /// `Impersonate-User`.
    pub user: Option<String>,
    /// `Impersonate-Uid`.
    pub uid: Option<String>,
    /// `Impersonate-Group`, repeated.
    pub groups: Vec<String>,
    /// `Impersonate-Extra-<key>`, repeated per value.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl Impersonation {
    /// The headers to send with every request.
    pub fn headers(&self) -> Result<http::HeaderMap, ConfigError> {
        let mut h = http::HeaderMap::new();
        let bad =
            |what: &str, e: &dyn std::fmt::Display| ConfigError::Invalid { field: what.into(), message: e.to_string() };
        let value = |s: &str, what: &str| http::HeaderValue::from_str(s).map_err(|e| bad(what, &e));
        if self.user.is_none() && (self.uid.is_some() || !self.groups.is_empty() || !self.extra.is_empty()) {
            // The API server would refuse every request: say so before sending any.
            return Err(ConfigError::Invalid {
                field: "as".into(),
                message: "as-uid, as-groups and as-user-extra need as (the user to impersonate)".into(),
            });
        }
        if let Some(u) = &self.user {
            h.insert("impersonate-user", value(u, "as")?);
        }
        if let Some(u) = &self.uid {
            h.insert("impersonate-uid", value(u, "as-uid")?);
        }
        for g in &self.groups {
            h.append("impersonate-group", value(g, "as-groups")?);
        }
        for (k, vs) in &self.extra {
            // Percent-encoded as the API server decodes it (url.PathUnescape): a space is
            // %20, not the `+` of query strings (a literal `+` is already %2B).
            let mut key = String::new();
            crate::params::encode_query_value(&mut key, k);
            let name = format!("impersonate-extra-{}", key.replace('+', "%20"));
            let name = http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                .map_err(|e| bad("as-user-extra", &e))?;
            for v in vs {
                h.append(name.clone(), value(v, "as-user-extra")?);
            }
        }
        Ok(h)
    }
}

/// How to authenticate, as configured (the state that follows it is [`Auth`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuthSpec {
    /// No credentials (a client certificate, if any, is in [`Config::identity`]).
    #[default]
    None,
    /// Basic auth.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: SecretString,
    },
    /// A fixed bearer token.
    Token(SecretString),
    /// A bearer token read from a file, re-read as it rotates.
    TokenFile(PathBuf),
    /// An exec credential plugin.
    Exec {
        /// The plugin.
        exec: Box<ExecConfig>,
        /// The cluster's details, for `KUBERNETES_EXEC_INFO` when the plugin asks for them.
        cluster: ExecCluster,
    },
    /// A legacy auth-provider (`oidc` or `gcp`).
    AuthProvider(AuthProviderConfig),
}

/// The cluster as an exec plugin sees it (`ExecCredential.spec.cluster`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ExecCluster {
    /// The server URL.
    pub server: String,
    /// The TLS server name.
    pub tls_server_name: Option<String>,
    /// Skip TLS verification.
    pub insecure_skip_tls_verify: bool,
    /// The CA bundle, PEM.
    pub certificate_authority_data: Option<Vec<u8>>,
    /// The proxy.
    pub proxy_url: Option<String>,
    /// Whether to disable compression.
    pub disable_compression: bool,
}

impl std::fmt::Debug for ExecCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecCluster")
            .field("server", &secret::redact_url(&self.server))
            .field("tls_server_name", &self.tls_server_name)
            .field("insecure_skip_tls_verify", &self.insecure_skip_tls_verify)
            .field("certificate_authority_data", &self.certificate_authority_data.as_ref().map(Vec::len))
            .field("proxy_url", &self.proxy_url.as_deref().map(secret::redact_url))
            .field("disable_compression", &self.disable_compression)
            .finish()
    }
}

/// Everything a transport needs to reach and authenticate to a cluster.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// The API server's base URL.
    pub cluster_url: url::Url,
    /// The namespace of `Api::default_namespaced`.
    pub default_namespace: String,
    /// Extra trusted CA certificates, DER (the system roots are the transport's choice).
    pub root_certs: Vec<Vec<u8>>,
    /// Do not verify the server's certificate (only when the kubeconfig says so).
    pub accept_invalid_certs: bool,
    /// The name to verify the server's certificate against.
    pub tls_server_name: Option<String>,
    /// A client certificate.
    pub identity: Option<Identity>,
    /// A proxy for this cluster.
    pub proxy_url: Option<url::Url>,
    /// Do not ask for compressed responses.
    pub disable_compression: bool,
    /// How to authenticate.
    pub auth: AuthSpec,
    /// Impersonation.
    pub impersonation: Option<Impersonation>,
    /// Send the credentials to an `http://` server on a loopback address (a local test server)
    /// too. Off by default, and never read from a kubeconfig: over plain HTTP to any other
    /// address, credentials are withheld whatever this says
    /// ([`Config::withhold_plain_http_credentials`]).
    pub send_credentials_over_loopback_http: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("cluster_url", &secret::redact_url(self.cluster_url.as_str()))
            .field("default_namespace", &self.default_namespace)
            .field("root_certs", &self.root_certs.len())
            .field("accept_invalid_certs", &self.accept_invalid_certs)
            .field("tls_server_name", &self.tls_server_name)
            .field("identity", &self.identity)
            .field("proxy_url", &self.proxy_url.as_ref().map(|u| secret::redact_url(u.as_str())))
            .field("disable_compression", &self.disable_compression)
            .field("auth", &self.auth)
            .field("impersonation", &self.impersonation)
            .field("send_credentials_over_loopback_http", &self.send_credentials_over_loopback_http)
            .finish()
    }
}

impl Config {
    /// A configuration for a URL with no TLS customisation and no credentials.
    pub fn new(cluster_url: url::Url) -> Self {
        Config {
            cluster_url,
            default_namespace: "default".into(),
            root_certs: Vec::new(),
            accept_invalid_certs: false,
            tls_server_name: None,
            identity: None,
            proxy_url: None,
            disable_compression: false,
            auth: AuthSpec::None,
            impersonation: None,
            send_credentials_over_loopback_http: false,
        }
    }

    /// The configuration of a context (or the current context) of a kubeconfig. `read_file`
    /// returns a referenced file's bytes (or why it could not).
    pub fn from_kubeconfig(
        kubeconfig: &Kubeconfig,
        context: Option<&str>,
        read_file: &mut dyn FnMut(&Path) -> Result<Vec<u8>, String>,
    ) -> Result<Config, ConfigError> {
        let sel = kubeconfig.select(context)?;
        let cfield = |f: &str| format!("clusters[{}].cluster.{f}", sel.cluster_name);
        let ufield = |f: &str| format!("users[{}].user.{f}", sel.user_name.as_deref().unwrap_or(""));
        let c = sel.cluster;
        let server = c
            .server
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ConfigError::Invalid { field: cfield("server"), message: "no server URL".into() })?;
        let cluster_url = parse_url(server, &cfield("server"))?;
        let mut read = |path: &Path, field: String| {
            read_file(path).map_err(|message| ConfigError::ReadFile {
                field,
                path: path.display().to_string(),
                message,
            })
        };
        // Errors name the field the bytes came from (`-data` or the file).
        let ca_pem = match (c.certificate_authority_data.as_deref(), c.certificate_authority.as_deref()) {
            (Some(data), _) if !data.is_empty() => {
                let field = cfield("certificate-authority-data");
                Some((decode_base64(data, &field)?, field))
            }
            (_, Some(path)) if !path.as_os_str().is_empty() => {
                let field = cfield("certificate-authority");
                Some((read(path, field.clone())?, field))
            }
            _ => None,
        };
        let root_certs = match &ca_pem {
            Some((pem, field)) => pem::certificates(pem, field)?,
            None => Vec::new(),
        };
        let ca_pem = ca_pem.map(|(pem, _)| pem);
        if c.insecure_skip_tls_verify == Some(true) && ca_pem.is_some() {
            // Verify with this CA, or do not verify: kubectl refuses to guess too.
            return Err(ConfigError::Invalid {
                field: cfield("insecure-skip-tls-verify"),
                message: "cannot be combined with certificate-authority or certificate-authority-data".into(),
            });
        }
        let proxy_url = match c.proxy_url.as_deref().filter(|s| !s.is_empty()) {
            Some(p) => Some(parse_url(p, &cfield("proxy-url"))?),
            None => None,
        };
        let mut config = Config {
            cluster_url,
            default_namespace: sel
                .context
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "default".into()),
            root_certs,
            accept_invalid_certs: c.insecure_skip_tls_verify.unwrap_or(false),
            tls_server_name: c.tls_server_name.clone().filter(|s| !s.is_empty()),
            identity: None,
            proxy_url,
            disable_compression: c.disable_compression.unwrap_or(false),
            auth: AuthSpec::None,
            impersonation: None,
            send_credentials_over_loopback_http: false,
        };
        let Some(a) = sel.auth_info else { return Ok(config) };
        let user = sel.user_name.clone().unwrap_or_default();
        // The client certificate, from data or file.
        let cert = match (a.client_certificate_data.as_deref(), a.client_certificate.as_deref()) {
            (Some(d), _) if !d.is_empty() => {
                let field = ufield("client-certificate-data");
                Some((decode_base64(d, &field)?, field))
            }
            (_, Some(p)) if !p.as_os_str().is_empty() => {
                Some((read(p, ufield("client-certificate"))?, ufield("client-certificate")))
            }
            _ => None,
        };
        let key = match (a.client_key_data.as_ref(), a.client_key.as_deref()) {
            (Some(d), _) if !d.is_empty() => {
                let field = ufield("client-key-data");
                Some((decode_base64(d.expose(), &field)?, field))
            }
            (_, Some(p)) if !p.as_os_str().is_empty() => Some((read(p, ufield("client-key"))?, ufield("client-key"))),
            _ => None,
        };
        config.identity = match (cert, key) {
            (Some((cert, cert_field)), Some((key, key_field))) => {
                pem::certificates(&cert, &cert_field)?;
                pem::private_key(&key, &key_field)?;
                Some(Identity { cert_chain_pem: cert, key_pem: SecretBytes::new(key) })
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError::Invalid {
                    field: ufield("client-key"),
                    message: "a client certificate needs a client key".into(),
                });
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid {
                    field: ufield("client-certificate"),
                    message: "a client key needs a client certificate".into(),
                });
            }
        };
        let mut methods = Vec::new();
        if a.token.as_ref().is_some_and(|t| !t.is_empty())
            || a.token_file.as_deref().is_some_and(|t| !t.as_os_str().is_empty())
        {
            methods.push("token");
        }
        if a.username.as_deref().is_some_and(|u| !u.is_empty()) || a.password.as_ref().is_some_and(|p| !p.is_empty()) {
            methods.push("basicAuth");
        }
        if a.auth_provider.is_some() {
            methods.push("authProvider");
        }
        if a.exec.is_some() {
            methods.push("exec");
        }
        if methods.len() > 1 {
            return Err(ConfigError::MultipleAuth { user, methods });
        }
        // With both, the file wins, as in client-go (it rotates; the inline token does not).
        config.auth = if let Some(p) = a.token_file.as_deref().filter(|t| !t.as_os_str().is_empty()) {
            AuthSpec::TokenFile(p.to_path_buf())
        } else if let Some(t) = a.token.as_ref().filter(|t| !t.is_empty()) {
            AuthSpec::Token(t.clone())
        } else if methods == ["basicAuth"] {
            AuthSpec::Basic {
                username: a.username.clone().unwrap_or_default(),
                password: a.password.clone().unwrap_or_default(),
            }
        } else if let Some(p) = &a.auth_provider {
            match p.name.as_str() {
                "oidc" | "gcp" => AuthSpec::AuthProvider(p.clone()),
                other => {
                    return Err(ConfigError::UnsupportedAuthProvider {
                        user,
                        name: other.to_owned(),
                        hint: "auth-providers were removed from client-go; configure the provider's exec credential plugin instead (for example kubelogin for azure and oidc, gke-gcloud-auth-plugin for gcp)".into(),
                    });
                }
            }
        } else if let Some(exec) = &a.exec {
            if exec.command.as_os_str().is_empty() {
                return Err(ConfigError::Invalid {
                    field: ufield("exec.command"),
                    message: "the command is empty".into(),
                });
            }
            AuthSpec::Exec {
                exec: Box::new(exec.clone()),
                cluster: ExecCluster {
                    server: server.to_owned(),
                    tls_server_name: config.tls_server_name.clone(),
                    insecure_skip_tls_verify: config.accept_invalid_certs,
                    certificate_authority_data: ca_pem.clone(),
                    proxy_url: c.proxy_url.clone().filter(|s| !s.is_empty()),
                    disable_compression: config.disable_compression,
                },
            }
        } else {
            AuthSpec::None
        };
        let imp = Impersonation {
            user: a.impersonate.clone().filter(|s| !s.is_empty()),
            uid: a.impersonate_uid.clone().filter(|s| !s.is_empty()),
            groups: a.impersonate_groups.clone().unwrap_or_default(),
            extra: a.impersonate_extra.clone().unwrap_or_default(),
        };
        if imp != Impersonation::default() {
            if imp.user.is_none() {
                // The API server would refuse the request; say why here, as kubectl does.
                return Err(ConfigError::Invalid {
                    field: ufield("as"),
                    message: "as-uid, as-groups and as-user-extra need as (the user to impersonate)".into(),
                });
            }
            imp.headers()?;
            config.impersonation = Some(imp);
        }
        Ok(config)
    }

    /// The in-cluster configuration, from the environment's `KUBERNETES_SERVICE_HOST` and
    /// `KUBERNETES_SERVICE_PORT` and the service account's `ca.crt` and `namespace` files (the
    /// token file is read, and re-read as it rotates, by the auth state).
    pub fn incluster(
        host: Option<&str>,
        port: Option<&str>,
        ca_crt: Result<Vec<u8>, String>,
        namespace: Option<Vec<u8>>,
        token_file: PathBuf,
    ) -> Result<Config, ConfigError> {
        let host = host
            .filter(|h| !h.is_empty())
            .ok_or_else(|| ConfigError::InCluster("KUBERNETES_SERVICE_HOST is not set".into()))?;
        let port = port
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ConfigError::InCluster("KUBERNETES_SERVICE_PORT is not set".into()))?;
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
        let url = parse_url(&format!("https://{host}:{port}"), "KUBERNETES_SERVICE_HOST/PORT")?;
        // The service account's files sit together: ca.crt is next to the token.
        let ca_path = token_file.with_file_name("ca.crt");
        let ca = ca_crt.map_err(|e| ConfigError::ReadFile {
            field: "in-cluster ca.crt".into(),
            path: ca_path.display().to_string(),
            message: e,
        })?;
        let root_certs = pem::certificates(&ca, "in-cluster ca.crt")?;
        let default_namespace = namespace
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "default".into());
        Ok(Config { root_certs, default_namespace, auth: AuthSpec::TokenFile(token_file), ..Config::new(url) })
    }
}

/// Why a configuration's credentials were withheld: its server URL is plain HTTP, where anyone
/// on the path could read them ([`Config::withhold_plain_http_credentials`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsWithheld {
    /// The server, as scheme, host and port (never the URL's user or password).
    pub server: String,
    /// What was withheld: `token`, `tokenFile`, `basic auth`, `exec plugin`, `auth-provider`,
    /// `client certificate`, `impersonation`, `URL user info`.
    pub withheld: Vec<&'static str>,
}

impl std::fmt::Display for CredentialsWithheld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "not sending credentials ({}) to {}: the server URL is plain HTTP, where they could be read on the way \
             (kubectl does the same); use an https:// server, or, for a test server on a loopback address, \
             set Config::send_credentials_over_loopback_http",
            self.withheld.join(", "),
            self.server
        )
    }
}

impl Config {
    /// Removes the credentials (the user's auth, client certificate and impersonation, and any
    /// user info in the URL) when the server URL is plain `http://`, and says what was removed
    /// and why; `None` when there was nothing to remove or the URL is `https://`.
    ///
    /// This is kubectl's rule (clientcmd reads a kubeconfig user only for a TLS server): a token,
    /// a password or an exec plugin's credential sent over plain HTTP can be read by anyone on
    /// the path, so no exec plugin is run and no `Authorization` header is sent. A test server on
    /// a loopback address (`127.0.0.0/8`, `::1`, `localhost`) may be given credentials by setting
    /// [`Config::send_credentials_over_loopback_http`]; no other address can.
    ///
    /// ```
    /// use kube_proto::config::{AuthSpec, Config, SecretString};
    ///
    /// let mut config = Config::new("http://10.0.0.1:8080".parse().unwrap());
    /// config.auth = AuthSpec::Token(SecretString::new("s3cr3t"));
    /// let why = config.withhold_plain_http_credentials().unwrap();
    /// assert_eq!(why.withheld, ["token"]);
    /// assert_eq!(config.auth, AuthSpec::None);
    /// ```
    pub fn withhold_plain_http_credentials(&mut self) -> Option<CredentialsWithheld> {
        if !self.cluster_url.scheme().eq_ignore_ascii_case("http")
            || (self.send_credentials_over_loopback_http && is_loopback(&self.cluster_url))
        {
            return None;
        }
        let mut withheld = Vec::new();
        match std::mem::take(&mut self.auth) {
            AuthSpec::None => {}
            AuthSpec::Basic { .. } => withheld.push("basic auth"),
            AuthSpec::Token(_) => withheld.push("token"),
            AuthSpec::TokenFile(_) => withheld.push("tokenFile"),
            AuthSpec::Exec { .. } => withheld.push("exec plugin"),
            AuthSpec::AuthProvider(_) => withheld.push("auth-provider"),
        }
        if self.identity.take().is_some() {
            withheld.push("client certificate");
        }
        if self.impersonation.take().is_some() {
            withheld.push("impersonation");
        }
        if !self.cluster_url.username().is_empty() || self.cluster_url.password().is_some() {
            // Neither can fail on an http URL, which always has a host.
            let _ = self.cluster_url.set_username("");
            let _ = self.cluster_url.set_password(None);
            withheld.push("URL user info");
        }
        if withheld.is_empty() {
            return None;
        }
        let server = match (self.cluster_url.host_str(), self.cluster_url.port_or_known_default()) {
            (Some(h), Some(p)) => format!("http://{h}:{p}"),
            (h, _) => format!("http://{}", h.unwrap_or_default()),
        };
        Some(CredentialsWithheld { server, withheld })
    }
}

/// Whether a URL's host is a loopback address: `127.0.0.0/8`, `::1`, or `localhost` (not its
/// subdomains, which some resolvers send to DNS).
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.strip_suffix('.').unwrap_or(d).eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

fn parse_url(s: &str, field: &str) -> Result<url::Url, ConfigError> {
    let url = url::Url::parse(s)
        // The URL is shown without its password (user info may hold one).
        .map_err(|e| ConfigError::Invalid {
            field: field.into(),
            message: format!("{:?} is not a URL: {e}", secret::redact_url(s)),
        })?;
    if url.host_str().is_none_or(str::is_empty) {
        let message = format!("{:?} has no host", secret::redact_url(s));
        return Err(ConfigError::Invalid { field: field.into(), message });
    }
    Ok(url)
}

fn decode_base64(data: &str, field: &str) -> Result<Vec<u8>, ConfigError> {
    let cleaned: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(cleaned.as_bytes())
        .map_err(|e| ConfigError::Invalid { field: field.into(), message: format!("not valid base64: {e}") })
}
