//! The kubeconfig file format (`clientcmd/api/v1`): parsing from bytes, resolving relative
//! paths, and merging several files as `KUBECONFIG` does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::secret::{SecretString, redact_quoted};

/// A kubeconfig file (or several, merged).
///
/// Text fields take text: a plain YAML number, boolean or null where text is expected
/// (`token: 12345`, `namespace: yes`) is an error naming the field, as in kubectl, whose
/// strict decoding refuses it; quote it (`token: "12345"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Kubeconfig {
    /// The context used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_context: Option<String>,
    /// Clusters by name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub clusters: Vec<NamedCluster>,
    /// Contexts by name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub contexts: Vec<NamedContext>,
    /// Users (credentials) by name.
    #[serde(default, rename = "users", deserialize_with = "null_as_default")]
    pub auth_infos: Vec<NamedAuthInfo>,
    /// `apiVersion` (`v1`).
    #[serde(default, rename = "apiVersion", skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `kind` (`Config`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A named cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct NamedCluster {
    /// The name contexts refer to.
    pub name: String,
    /// The cluster.
    #[serde(default)]
    pub cluster: Option<Cluster>,
}

/// How to reach and trust an API server.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cluster {
    /// The API server's URL.
    #[serde(default)]
    pub server: Option<String>,
    /// Do not verify the server's certificate.
    #[serde(default)]
    pub insecure_skip_tls_verify: Option<bool>,
    /// A PEM file of CA certificates (a path: it need not be UTF-8 once resolved).
    #[serde(default)]
    pub certificate_authority: Option<PathBuf>,
    /// Base64 of PEM CA certificates.
    #[serde(default)]
    pub certificate_authority_data: Option<String>,
    /// The name to verify the server's certificate against (SNI too).
    #[serde(default)]
    pub tls_server_name: Option<String>,
    /// An HTTP(S) or SOCKS5 proxy for this cluster.
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// Do not ask for compressed responses.
    #[serde(default)]
    pub disable_compression: Option<bool>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.server.as_deref().map(super::secret::redact_url))
            .field("insecure_skip_tls_verify", &self.insecure_skip_tls_verify)
            .field("certificate_authority", &self.certificate_authority)
            .field(
                "certificate_authority_data",
                &self.certificate_authority_data.as_ref().map(|d| format!("<{} base64 chars>", d.len())),
            )
            .field("tls_server_name", &self.tls_server_name)
            .field("proxy_url", &self.proxy_url.as_deref().map(super::secret::redact_url))
            .field("disable_compression", &self.disable_compression)
            .finish()
    }
}

/// A named context.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct NamedContext {
    /// The name.
    pub name: String,
    /// The context.
    #[serde(default)]
    pub context: Option<Context>,
}

/// A cluster, a user and a default namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Context {
    /// The cluster's name.
    #[serde(default)]
    pub cluster: String,
    /// The user's name.
    #[serde(default)]
    pub user: Option<String>,
    /// The default namespace.
    #[serde(default)]
    pub namespace: Option<String>,
}

/// A named user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct NamedAuthInfo {
    /// The name.
    pub name: String,
    /// The credentials.
    #[serde(default, rename = "user")]
    pub auth_info: Option<AuthInfo>,
}

/// Credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuthInfo {
    /// A PEM client certificate file.
    #[serde(default)]
    pub client_certificate: Option<PathBuf>,
    /// Base64 of a PEM client certificate.
    #[serde(default)]
    pub client_certificate_data: Option<String>,
    /// A PEM private key file.
    #[serde(default)]
    pub client_key: Option<PathBuf>,
    /// Base64 of a PEM private key.
    #[serde(default)]
    pub client_key_data: Option<SecretString>,
    /// A bearer token. A plain number or boolean (`token: 12345`) is refused, as kubectl
    /// refuses it: write `token: "12345"`. So for every text field of the file.
    #[serde(default)]
    pub token: Option<SecretString>,
    /// A file holding a bearer token (re-read as it rotates).
    #[serde(default, rename = "tokenFile")]
    pub token_file: Option<PathBuf>,
    /// Impersonate this user.
    #[serde(default, rename = "as")]
    pub impersonate: Option<String>,
    /// Impersonate this uid.
    #[serde(default, rename = "as-uid")]
    pub impersonate_uid: Option<String>,
    /// Impersonate these groups.
    #[serde(default, rename = "as-groups")]
    pub impersonate_groups: Option<Vec<String>>,
    /// Impersonate with these extra fields.
    #[serde(default, rename = "as-user-extra")]
    pub impersonate_extra: Option<BTreeMap<String, Vec<String>>>,
    /// Basic auth user name.
    #[serde(default)]
    pub username: Option<String>,
    /// Basic auth password.
    #[serde(default)]
    pub password: Option<SecretString>,
    /// A legacy auth provider (oidc, gcp, ...).
    #[serde(default)]
    pub auth_provider: Option<AuthProviderConfig>,
    /// An exec credential plugin.
    #[serde(default)]
    pub exec: Option<ExecConfig>,
}

/// A legacy auth provider: `name` and its string settings (which hold secrets).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct AuthProviderConfig {
    /// `oidc`, `gcp`, `azure`, ...
    pub name: String,
    /// Its settings (`id-token`, `refresh-token`, `cmd-path`, ...).
    #[serde(default)]
    pub config: BTreeMap<String, SecretString>,
}

/// An exec credential plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecConfig {
    /// The command (a path, or a name looked up in `PATH`). A path with a `/` is relative to
    /// the kubeconfig's folder, kept as a path (whatever the folder's name).
    pub command: PathBuf,
    /// Its arguments.
    #[serde(default, deserialize_with = "null_as_default")]
    pub args: Vec<String>,
    /// Extra environment variables.
    #[serde(default, deserialize_with = "null_as_default")]
    pub env: Vec<ExecEnvVar>,
    /// `client.authentication.k8s.io/v1` or `/v1beta1`.
    #[serde(default)]
    pub api_version: Option<String>,
    /// Shown when the command is missing.
    #[serde(default)]
    pub install_hint: Option<String>,
    /// Pass the cluster's details in `KUBERNETES_EXEC_INFO`.
    #[serde(default)]
    pub provide_cluster_info: bool,
    /// `Never`, `IfAvailable` or `Always`.
    #[serde(default)]
    pub interactive_mode: Option<String>,
}

/// An environment variable for an exec plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ExecEnvVar {
    /// The name.
    pub name: String,
    /// The value.
    pub value: SecretString,
}

/// How many aliases (`*name`) may be replayed in one file, in YAML events: the guard against
/// alias bombs ("billion laughs"), where a few lines of anchors that refer to anchors expand
/// to billions of values. A kubeconfig written by kubectl has no aliases at all.
const MAX_ALIAS_REPLAYED_EVENTS: usize = 1_000_000;

/// The YAML reader's limits for a file of `len` bytes. Without aliases, the number of values,
/// events and bytes of text a file holds is bounded by its size, so those limits grow with it
/// (from serde-saphyr's defaults, which are for files of a few hundred kilobytes): any file
/// kubectl reads is read, whatever its size, and memory grows with the file, as for kubectl.
/// What aliases (`*name`) replay counts against the same limits, so they can at most double a
/// file; and they replay at most [`MAX_ALIAS_REPLAYED_EVENTS`] events, and once 100 aliases
/// are used, at most 10 per anchor on average. Nesting stays limited to 64 levels (a
/// kubeconfig needs 5).
fn yaml_options(len: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    // A node takes at least half a byte of input (`{a}` is a key and an empty value), an
    // event at most two per node (start and end).
    budget.max_nodes = budget.max_nodes.max(len.saturating_mul(2).saturating_add(1024));
    budget.max_events = budget.max_events.max(len.saturating_mul(4).saturating_add(1024));
    budget.max_total_scalar_bytes = budget.max_total_scalar_bytes.max(len.saturating_mul(2));
    budget.max_anchors = budget.max_anchors.max(len / 2);
    budget.max_aliases = budget.max_aliases.max(len / 2);
    budget.max_recorded_anchor_events = budget.max_recorded_anchor_events.max(len.saturating_mul(4));
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = MAX_ALIAS_REPLAYED_EVENTS;
    // kubectl turns YAML into JSON before decoding it strictly: `token: 12345` or `name: yes`
    // becomes a number or a boolean where text is expected, and the file is refused. The same
    // here, rather than guessing which text was meant (`0x1F`, `1e3`, `on`, `007`).
    options.no_schema = true;
    options
}

/// A YAML reader limit, said for a human (what was exceeded and why it is a limit), or text
/// that must be quoted (said without its value, which may be a secret), or `None` for any
/// other error. `len` is the file's size.
fn limit_message(mut e: &serde_saphyr::Error, len: usize) -> Option<String> {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
    const BOMB: &str =
        "aliases that expand a small file into a huge one (an alias bomb) are refused, as kubectl refuses them";
    while let E::AliasError { error, .. } | E::WithSnippet { error, .. } = e {
        e = error;
    }
    let expands = |n: usize, what: &str| {
        format!(
            "the file expands to at least {n} {what}, more than its {len} bytes hold without aliases (*name); {BOMB}"
        )
    };
    Some(match e {
        E::Budget { breach, .. } => match breach {
            B::AliasAnchorRatio { aliases, anchors } => format!(
                "{aliases} aliases (*name) refer to {anchors} anchors (&name), more than 10 uses per anchor; {BOMB}"
            ),
            B::Aliases { aliases } => format!("too many aliases (*name): {aliases}; {BOMB}"),
            B::Anchors { anchors } => format!("too many anchors (&name): {anchors}"),
            B::Depth { depth } => format!("values nested {depth} levels deep; at most 64 levels are read"),
            B::Nodes { nodes } => expands(*nodes, "YAML values"),
            B::Events { events } => expands(*events, "YAML events"),
            B::ScalarBytes { total_scalar_bytes } => expands(*total_scalar_bytes, "bytes of text"),
            other => format!("a YAML reader limit was exceeded ({other:?})"),
        },
        E::AliasReplayLimitExceeded { max_total_replayed_events, .. } => {
            format!("aliases (*name) expand to more than {max_total_replayed_events} values; {BOMB}")
        }
        E::AliasReplayStackDepthExceeded { max_depth, .. } => {
            format!("aliases (*name) nested more than {max_depth} deep; {BOMB}")
        }
        E::QuotingRequired { .. } => {
            "a number, boolean or null where text is expected (kubectl refuses it too); quote the value to make it text"
                .to_owned()
        }
        _ => return None,
    })
}

/// A field's path as kubectl's users read it: `users[admin].user.exec`, list entries by their
/// `name` (by index when the file cannot be read that far, or the entry has no name).
fn field_path(path: &serde_path_to_error::Path, text: &str) -> Option<String> {
    use serde_path_to_error::Segment;

    /// The names of the entries of each list, read leniently (only when an error is shown).
    #[derive(Deserialize, Default)]
    struct Names {
        #[serde(default)]
        clusters: Vec<Name>,
        #[serde(default)]
        contexts: Vec<Name>,
        #[serde(default)]
        users: Vec<Name>,
    }
    #[derive(Deserialize)]
    struct Name {
        #[serde(default)]
        name: Option<String>,
    }
    let mut names: Option<Names> = None;
    let mut out = String::new();
    let mut list: Option<String> = None;
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                let named = match list.as_deref() {
                    Some(l @ ("clusters" | "contexts" | "users")) => {
                        let all = names.get_or_insert_with(|| {
                            // Leniently: the name itself may be the value that is wrong.
                            let mut options = yaml_options(text.len());
                            options.no_schema = false;
                            serde_saphyr::from_str_with_options(text, options).unwrap_or_default()
                        });
                        let entries = match l {
                            "clusters" => &all.clusters,
                            "contexts" => &all.contexts,
                            _ => &all.users,
                        };
                        entries.get(*index).and_then(|e| e.name.clone())
                    }
                    _ => None,
                };
                match named {
                    Some(name) => out += &format!("[{name}]"),
                    None => out += &format!("[{index}]"),
                }
            }
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out += key;
            }
            Segment::Enum { variant } => out += &format!("({variant})"),
            Segment::Unknown => out += ".?",
        }
        // Only the top-level lists hold named entries.
        list = match segment {
            Segment::Map { key } if list.is_none() && !out.contains(['.', '[']) => Some(key.clone()),
            _ => Some(String::new()),
        };
    }
    (!out.is_empty()).then_some(out)
}

impl Kubeconfig {
    /// Parses one kubeconfig file. `path` names it in errors and anchors its relative paths
    /// (pass `None` for a kubeconfig that is not a file).
    pub fn from_yaml(text: &[u8], path: Option<&Path>) -> Result<Self, ConfigError> {
        let file = path.map(|p| p.display().to_string()).unwrap_or_else(|| "<kubeconfig>".into());
        let text = std::str::from_utf8(text).map_err(|e| ConfigError::Yaml {
            file: file.clone(),
            line: 0,
            column: 0,
            field: None,
            message: format!("not UTF-8 (invalid byte at offset {})", e.valid_up_to()),
        })?;
        let mut config: Kubeconfig = if text.trim().is_empty() {
            Kubeconfig::default()
        } else {
            let mut failed_at = None;
            serde_saphyr::with_deserializer_from_str_with_options(text, yaml_options(text.len()), |de| {
                serde_path_to_error::deserialize(de).map_err(|e| {
                    failed_at = Some(e.path().clone());
                    e.into_inner()
                })
            })
            .map_err(|e| {
                let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                let mut field = failed_at.as_ref().and_then(|p| field_path(p, text));
                let message = match limit_message(&e, text.len()) {
                    Some(message) => message,
                    None => {
                        let message = e.without_snippet().to_string();
                        // The location is in the error's fields (and its Display prefix): not twice.
                        let message =
                            message.strip_suffix(&format!(" at line {line}, column {column}")).unwrap_or(&message);
                        // A missing or repeated field is named by the path (its name is ours,
                        // not the file's). A repeated one can come without a line: a tagged key
                        // (`!tag kind: x`) passes the reader's duplicate-key check.
                        let named =
                            [("missing field `", "missing (it is required)"), ("duplicate field `", "given twice")]
                                .into_iter()
                                .find_map(|(prefix, says)| {
                                    let name = message.strip_prefix(prefix)?.strip_suffix('`')?;
                                    name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-').then_some((name, says))
                                });
                        match named {
                            Some((name, says)) => {
                                field = Some(match field {
                                    Some(f) => format!("{f}.{name}"),
                                    None => name.to_owned(),
                                });
                                says.to_owned()
                            }
                            None => redact_quoted(message),
                        }
                    }
                };
                ConfigError::Yaml { file: file.clone(), line, column, field, message }
            })?
        };
        config.check_unique_names(&file)?;
        if let Some(dir) = path.and_then(Path::parent) {
            config.resolve_paths(dir);
        }
        Ok(config)
    }

    /// Within one file a name is defined once per list: client-go refuses a file that defines
    /// a cluster, context or user twice (only [`merge`](Self::merge) lets the first one win).
    fn check_unique_names(&self, file: &str) -> Result<(), ConfigError> {
        fn first_duplicate<'a>(names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
            let mut seen = std::collections::BTreeSet::new();
            names.into_iter().find(|n| !seen.insert(*n))
        }
        let lists = [
            ("clusters", first_duplicate(self.clusters.iter().map(|c| c.name.as_str()))),
            ("contexts", first_duplicate(self.contexts.iter().map(|c| c.name.as_str()))),
            ("users", first_duplicate(self.auth_infos.iter().map(|u| u.name.as_str()))),
        ];
        match lists.into_iter().find_map(|(list, dup)| dup.map(|name| (list, name))) {
            Some((list, name)) => {
                Err(ConfigError::DuplicateName { file: file.to_owned(), list, name: name.to_owned() })
            }
            None => Ok(()),
        }
    }

    /// Makes the file paths in the file absolute, relative to `dir` (the file's folder), as
    /// kubectl does.
    /// The paths stay paths: a folder whose name is not UTF-8 is kept as it is.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(path) = p
                && !path.as_os_str().is_empty()
                && path.is_relative()
            {
                *path = dir.join(&*path);
            }
        };
        for c in self.clusters.iter_mut().filter_map(|c| c.cluster.as_mut()) {
            fix(&mut c.certificate_authority);
        }
        for a in self.auth_infos.iter_mut().filter_map(|a| a.auth_info.as_mut()) {
            fix(&mut a.client_certificate);
            fix(&mut a.client_key);
            fix(&mut a.token_file);
            if let Some(exec) = &mut a.exec
                && exec.command.as_os_str().as_encoded_bytes().contains(&b'/')
                && exec.command.is_relative()
            {
                // A command with a slash is relative to the file; a bare name is looked up in PATH.
                exec.command = dir.join(&exec.command);
            }
        }
    }

    /// Merges files in `KUBECONFIG` order: the first file to set `current-context`, or to
    /// define a cluster, context or user of a given name, wins.
    pub fn merge(configs: impl IntoIterator<Item = Kubeconfig>) -> Kubeconfig {
        let mut out = Kubeconfig::default();
        for c in configs {
            if out.current_context.as_deref().is_none_or(str::is_empty) {
                out.current_context = c.current_context.filter(|s| !s.is_empty());
            }
            for x in c.clusters {
                if !out.clusters.iter().any(|y| y.name == x.name) {
                    out.clusters.push(x);
                }
            }
            for x in c.contexts {
                if !out.contexts.iter().any(|y| y.name == x.name) {
                    out.contexts.push(x);
                }
            }
            for x in c.auth_infos {
                if !out.auth_infos.iter().any(|y| y.name == x.name) {
                    out.auth_infos.push(x);
                }
            }
            out.api_version = out.api_version.or(c.api_version);
            out.kind = out.kind.or(c.kind);
        }
        out
    }

    /// The files a context's cluster and user refer to (CA, client certificate and key,
    /// token file), which the caller reads and hands to [`Config::from_kubeconfig`](super::Config::from_kubeconfig).
    pub fn referenced_files(&self, context: Option<&str>) -> Result<Vec<PathBuf>, ConfigError> {
        let sel = self.select(context)?;
        let mut out = Vec::new();
        if let Some(ca) = sel.cluster.certificate_authority.as_ref().filter(|p| !p.as_os_str().is_empty()) {
            out.push(ca.clone());
        }
        if let Some(a) = sel.auth_info {
            for p in [&a.client_certificate, &a.client_key].into_iter().flatten() {
                if !p.as_os_str().is_empty() {
                    out.push(p.clone());
                }
            }
        }
        Ok(out)
    }

    /// The context, cluster and user a context name (or the current context) selects.
    pub fn select(&self, context: Option<&str>) -> Result<Selected<'_>, ConfigError> {
        let name = match context.or(self.current_context.as_deref()).filter(|s| !s.is_empty()) {
            Some(n) => n,
            None => return Err(ConfigError::NoCurrentContext),
        };
        let ctx = self
            .contexts
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ConfigError::Missing { what: "context", name: name.to_owned() })?
            .context
            .as_ref()
            .ok_or_else(|| ConfigError::Invalid {
                field: format!("contexts[{name}].context"),
                message: "the context is empty".into(),
            })?;
        let cluster = self
            .clusters
            .iter()
            .find(|c| c.name == ctx.cluster)
            .ok_or_else(|| ConfigError::Missing { what: "cluster", name: ctx.cluster.clone() })?
            .cluster
            .as_ref()
            .ok_or_else(|| ConfigError::Invalid {
                field: format!("clusters[{}].cluster", ctx.cluster),
                message: "the cluster is empty".into(),
            })?;
        let auth_info = match ctx.user.as_deref().filter(|u| !u.is_empty()) {
            None => None,
            Some(user) => Some(
                self.auth_infos
                    .iter()
                    .find(|u| u.name == user)
                    .ok_or_else(|| ConfigError::Missing { what: "user", name: user.to_owned() })?
                    .auth_info
                    .as_ref()
                    .unwrap_or(&EMPTY_AUTH),
            ),
        };
        Ok(Selected {
            context_name: name.to_owned(),
            context: ctx,
            cluster_name: ctx.cluster.clone(),
            cluster,
            auth_info,
            user_name: ctx.user.clone(),
        })
    }
}

static EMPTY_AUTH: AuthInfo = AuthInfo {
    client_certificate: None,
    client_certificate_data: None,
    client_key: None,
    client_key_data: None,
    token: None,
    token_file: None,
    impersonate: None,
    impersonate_uid: None,
    impersonate_groups: None,
    impersonate_extra: None,
    username: None,
    password: None,
    auth_provider: None,
    exec: None,
};

/// What a context selects.
#[derive(Debug, Clone)]
pub struct Selected<'a> {
    /// The context's name.
    pub context_name: String,
    /// The context.
    pub context: &'a Context,
    /// The cluster's name.
    pub cluster_name: String,
    /// The cluster.
    pub cluster: &'a Cluster,
    /// The user's name, if any.
    pub user_name: Option<String>,
    /// The user's credentials, if the context names a user.
    pub auth_info: Option<&'a AuthInfo>,
}
