//! The IO around [`kube_proto::config`], written once so that transports do not each write it:
//! finding and reading kubeconfig files (`KUBECONFIG`, `~/.kube/config`), the in-cluster
//! service account, [`infer`] (one, then the other), and a blocking driver for the auth state
//! ([`credentials_blocking`]) that reads token files and runs exec plugins with
//! [`std::process::Command`].
//!
//! Everything that reads the environment takes it as a lookup function (`&dyn Fn(&str) ->
//! Option<OsString>`); [`std_env`] is the process's own.
//!
//! ```no_run
//! use std::time::SystemTime;
//! use kube_runtime::config::{auth_for, credentials_blocking, infer};
//!
//! let config = infer()?;
//! let mut auth = auth_for(&config);
//! let credentials = credentials_blocking(&mut auth, SystemTime::now())?;
//! println!("{} as {:?}", config.cluster_url, credentials.authorization_header().is_some());
//! # Ok::<(), kube_runtime::proto::config::ConfigError>(())
//! ```

use std::ffi::OsString;
use std::io::{ErrorKind, IsTerminal as _};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use kube_proto::config::auth::{ExecOutput, ExecRequest};
use kube_proto::config::{Auth, AuthAction, Config, ConfigError, Credentials, Kubeconfig, SERVICE_ACCOUNT_DIR};

/// An environment lookup: the value of a variable, if set.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// The process's environment ([`std::env::var_os`]), for the functions that take an [`Env`].
pub fn std_env(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// The kubeconfig files to load, in order: the entries of `KUBECONFIG` (split as the platform
/// splits `PATH`; empty entries are dropped), or else `$HOME/.kube/config` (`USERPROFILE` on
/// Windows when `HOME` is not set). Empty when neither variable is set.
pub fn kubeconfig_paths(env: Env<'_>) -> Vec<PathBuf> {
    if let Some(list) = env("KUBECONFIG").filter(|v| !v.is_empty()) {
        return std::env::split_paths(&list).filter(|p| !p.as_os_str().is_empty()).collect();
    }
    let home = env("HOME").filter(|h| !h.is_empty()).or_else(|| env("USERPROFILE").filter(|h| !h.is_empty()));
    home.map(|h| vec![PathBuf::from(h).join(".kube").join("config")]).unwrap_or_default()
}

/// Reads and merges kubeconfig files (see [`Kubeconfig::merge`]: the first file to set
/// `current-context` or to define a name wins). Each file's relative paths are resolved
/// against its folder. As kubectl does with `KUBECONFIG`, a file that does not exist is
/// skipped; a file that exists but cannot be read, or is not a valid kubeconfig, is an error
/// naming it; and if none exists, the error lists where it looked.
pub fn load_kubeconfig(paths: &[PathBuf]) -> Result<Kubeconfig, ConfigError> {
    let mut loaded = Vec::new();
    for path in paths {
        // Relative entries are relative to the working directory; make them absolute so that
        // the paths inside them stay valid whatever the directory is later.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        match std::fs::read(&path) {
            Ok(bytes) => loaded.push(Kubeconfig::from_yaml(&bytes, Some(&path))?),
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(ConfigError::ReadFile {
                    field: "kubeconfig".into(),
                    path: path.display().to_string(),
                    message: e.to_string(),
                });
            }
        }
    }
    if loaded.is_empty() {
        let looked = if paths.is_empty() {
            "(KUBECONFIG and HOME are not set)".to_owned()
        } else {
            paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        };
        return Err(ConfigError::ReadFile {
            field: "kubeconfig".into(),
            path: looked,
            message: if paths.len() > 1 { "none of these files exists".into() } else { "no such file".into() },
        });
    }
    Ok(Kubeconfig::merge(loaded))
}

/// What [`from_kubeconfig`] loads and selects. The default: the files of `KUBECONFIG` or
/// `~/.kube/config`, and their current context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeconfigOptions {
    /// The files to merge, instead of those [`kubeconfig_paths`] names.
    pub paths: Option<Vec<PathBuf>>,
    /// The context to use instead of `current-context` (kubectl's `--context`).
    pub context: Option<String>,
    /// The cluster to use instead of the context's (kubectl's `--cluster`).
    pub cluster: Option<String>,
    /// The user to use instead of the context's (kubectl's `--user`).
    pub user: Option<String>,
}

/// The configuration of a kubeconfig context, reading the kubeconfig files and the files they
/// refer to (CA, client certificate and key).
pub fn from_kubeconfig(options: &KubeconfigOptions) -> Result<Config, ConfigError> {
    from_kubeconfig_with_env(options, &std_env)
}

/// [`from_kubeconfig`] with the environment given (it is only looked at when
/// `options.paths` is `None`).
pub fn from_kubeconfig_with_env(options: &KubeconfigOptions, env: Env<'_>) -> Result<Config, ConfigError> {
    let paths = match &options.paths {
        Some(p) => p.clone(),
        None => kubeconfig_paths(env),
    };
    let kubeconfig = load_kubeconfig(&paths)?;
    config_from_kubeconfig(kubeconfig, options)
}

/// The configuration of a context of a kubeconfig already loaded, with `options`' context,
/// cluster and user (its `paths` are not used), reading the files it refers to.
pub fn config_from_kubeconfig(mut kubeconfig: Kubeconfig, options: &KubeconfigOptions) -> Result<Config, ConfigError> {
    use kube_proto::config::kubeconfig::NamedContext;

    let context = options.context.clone().filter(|c| !c.is_empty());
    if options.cluster.is_some() || options.user.is_some() {
        // Overrides change the selected context, as kubectl's flags do; with only --cluster
        // and no context at all, the context is made of the overrides.
        let name = context.clone().or_else(|| kubeconfig.current_context.clone()).filter(|c| !c.is_empty());
        let existing = name.as_deref().and_then(|n| kubeconfig.contexts.iter_mut().find(|c| c.name == n));
        match existing {
            Some(named) => {
                let ctx = named.context.get_or_insert_with(Default::default);
                if let Some(cluster) = &options.cluster {
                    ctx.cluster = cluster.clone();
                }
                if let Some(user) = &options.user {
                    ctx.user = Some(user.clone());
                }
            }
            None if name.is_none() && options.cluster.is_some() => {
                const OVERRIDE: &str = "<command line>";
                kubeconfig.contexts.retain(|c| c.name != OVERRIDE);
                kubeconfig.contexts.push(NamedContext {
                    name: OVERRIDE.into(),
                    context: Some(kube_proto::config::Context {
                        cluster: options.cluster.clone().unwrap_or_default(),
                        user: options.user.clone(),
                        namespace: None,
                    }),
                });
                return Config::from_kubeconfig(&kubeconfig, Some(OVERRIDE), &mut read_file);
            }
            // A named context that does not exist, or no context and only a user: the
            // selection below says so.
            None => {}
        }
    }
    Config::from_kubeconfig(&kubeconfig, context.as_deref(), &mut read_file)
}

/// The in-cluster configuration: `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT` from
/// `env`, and `ca.crt` and `namespace` from `sa_dir` (by default
/// [`SERVICE_ACCOUNT_DIR`]). The token (`sa_dir/token`) is read, and re-read as it rotates,
/// by the auth state.
pub fn incluster(env: Env<'_>, sa_dir: Option<&Path>) -> Result<Config, ConfigError> {
    let dir = sa_dir.unwrap_or(Path::new(SERVICE_ACCOUNT_DIR));
    let var = |name: &str| -> Result<Option<String>, ConfigError> {
        match env(name) {
            None => Ok(None),
            Some(v) => v.into_string().map(Some).map_err(|_| ConfigError::InCluster(format!("{name} is not UTF-8"))),
        }
    };
    let host = var("KUBERNETES_SERVICE_HOST")?;
    let port = var("KUBERNETES_SERVICE_PORT")?;
    // Without the variables, this is not a pod: say so (the core's message) before reading
    // any file.
    if host.as_deref().is_none_or(str::is_empty) || port.as_deref().is_none_or(str::is_empty) {
        return Config::incluster(host.as_deref(), port.as_deref(), Err("not read".into()), None, dir.join("token"));
    }
    let ca = std::fs::read(dir.join("ca.crt")).map_err(|e| e.to_string());
    let namespace = std::fs::read(dir.join("namespace")).ok();
    Config::incluster(host.as_deref(), port.as_deref(), ca, namespace, dir.join("token"))
}

/// The configuration to use when none is given, as kube-rs and client-go find it: the
/// kubeconfig (`KUBECONFIG`, or `~/.kube/config`) and its current context if that works, else
/// the in-cluster configuration. If neither works, [`ConfigError::Infer`] says why for both.
///
/// Any kubeconfig error (not only a missing file) falls back to in-cluster, so a pod with a
/// broken kubeconfig still uses its service account.
pub fn infer() -> Result<Config, ConfigError> {
    infer_with(&std_env, Path::new(SERVICE_ACCOUNT_DIR))
}

/// [`infer`] with the environment and service account folder given.
pub fn infer_with(env: Env<'_>, sa_dir: &Path) -> Result<Config, ConfigError> {
    let kubeconfig = match from_kubeconfig_with_env(&KubeconfigOptions::default(), env) {
        Ok(config) => return Ok(config),
        Err(e) => e,
    };
    incluster(env, Some(sa_dir))
        .map_err(|in_cluster| ConfigError::Infer { kubeconfig: Box::new(kubeconfig), in_cluster: Box::new(in_cluster) })
}

/// Reads a file for the core ([`Config::from_kubeconfig`], [`Auth::on_file`]): its bytes, or
/// why not.
pub fn read_file(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| e.to_string())
}

/// Runs the process an [`AuthAction::Exec`] asks for and waits for it: its environment plus
/// the request's variables; stdin the terminal's only when the request is `interactive`
/// (otherwise empty); stdout captured; stderr captured, except for an interactive plugin,
/// whose prompts must reach the user. `Err` when it cannot be started (the message that
/// [`Auth::on_exec_failed`] takes).
pub fn run_exec(request: &ExecRequest) -> Result<ExecOutput, String> {
    crate::process::run_blocking(request)
}

/// The auth state of a configuration, told whether this process's stdin is a terminal (for
/// interactive exec plugins).
pub fn auth_for(config: &Config) -> Auth {
    Auth::new(&config.auth, config.identity.clone()).with_terminal(std::io::stdin().is_terminal())
}

/// How many steps [`credentials_blocking`] takes before giving up (a read or a run, then the
/// answer: a handful suffice).
const MAX_STEPS: usize = 8;

/// Drives the auth state until it has credentials, blocking: reads the files it asks for and
/// runs the processes it asks for. An OIDC token refresh needs an HTTP request, which this
/// driver does not make: that is an [`ConfigError::AuthProvider`] error (the async client,
/// which has a transport, drives it).
pub fn credentials_blocking(auth: &mut Auth, now: SystemTime) -> Result<Credentials, ConfigError> {
    for _ in 0..MAX_STEPS {
        match auth.poll(now) {
            AuthAction::Ready(credentials) => return Ok(credentials),
            AuthAction::Failed(e) => return Err(e),
            AuthAction::ReadFile(path) => {
                let contents = read_file(&path);
                auth.on_file(now, &path, contents);
            }
            AuthAction::Exec(request) => match run_exec(&request) {
                Ok(output) => auth.on_exec(now, output),
                Err(message) => auth.on_exec_failed(now, message),
            },
            AuthAction::Http(request) => {
                return Err(ConfigError::AuthProvider {
                    provider: "oidc".into(),
                    message: format!(
                        "the id-token must be refreshed with a request to {}, which the blocking driver does not send; use the async client, or refresh it with kubectl",
                        request.uri()
                    ),
                });
            }
        }
    }
    Err(ConfigError::AuthProvider {
        provider: "auth".into(),
        message: format!("no credentials after {MAX_STEPS} steps"),
    })
}
