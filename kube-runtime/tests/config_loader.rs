//! The IO half of configuration (`kube_runtime::config`): KUBECONFIG lists and the default
//! file, in-cluster files, `infer()`, token files rotating on disk and real exec plugins (small
//! shell scripts) driven by `credentials_blocking`. The environment is injected; files live in
//! per-test temporary folders.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use kube_proto::config::auth::{ExecRequest, TOKEN_FILE_REFRESH};
use kube_proto::config::{Auth, AuthSpec, Config, ConfigError, SecretString};
use kube_runtime::config::{
    KubeconfigOptions, credentials_blocking, from_kubeconfig, from_kubeconfig_with_env, incluster, infer_with,
    kubeconfig_paths, load_kubeconfig, read_file, run_exec,
};

/// A temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("kube-runtime-config-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[cfg(unix)]
    fn script(&self, rel: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.write(rel, format!("#!/bin/sh\n{body}"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An environment of the given variables only.
fn env(vars: &[(&str, &OsString)]) -> impl Fn(&str) -> Option<OsString> + use<> {
    let map: HashMap<String, OsString> = vars.iter().map(|(k, v)| (k.to_string(), (*v).clone())).collect();
    move |name| map.get(name).cloned()
}

fn os(s: impl AsRef<std::ffi::OsStr>) -> OsString {
    s.as_ref().to_owned()
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../kube-proto/tests/fixtures/kubeconfig")
}

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap()
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn bearer(auth: &mut Auth, now: SystemTime) -> String {
    let c = credentials_blocking(auth, now).unwrap_or_else(|e| panic!("{e}"));
    c.authorization.expect("a token").expose().to_owned()
}

fn auth_of(config: &Config) -> Auth {
    Auth::new(&config.auth, config.identity.clone())
}

/// A kubeconfig with one context, `ctx`, whose user is `user_yaml` (indented by 4).
fn kubeconfig(user_yaml: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: ctx\nclusters:\n- name: c\n  cluster:\n    server: https://k.example:6443\ncontexts:\n- name: ctx\n  context: {{cluster: c, user: u, namespace: ns}}\nusers:\n- name: u\n  user:\n{user_yaml}"
    )
}

// ---------------------------------------------------------------------------------------------
// Finding and loading kubeconfig files
// ---------------------------------------------------------------------------------------------

#[test]
fn kubeconfig_paths_from_kubeconfig_or_home() {
    let list = std::env::join_paths(["/a/config", "", "relative/b.yaml", "/c"]).unwrap();
    let home = os("/home/me");
    assert_eq!(
        kubeconfig_paths(&env(&[("KUBECONFIG", &list), ("HOME", &home)])),
        [PathBuf::from("/a/config"), PathBuf::from("relative/b.yaml"), PathBuf::from("/c")]
    );
    let empty = os("");
    assert_eq!(
        kubeconfig_paths(&env(&[("KUBECONFIG", &empty), ("HOME", &home)])),
        [Path::new("/home/me/.kube/config")]
    );
    assert_eq!(kubeconfig_paths(&env(&[("HOME", &home)])), [Path::new("/home/me/.kube/config")]);
    let profile = os("/users/me");
    assert_eq!(kubeconfig_paths(&env(&[("USERPROFILE", &profile)])), [Path::new("/users/me/.kube/config")]);
    assert!(kubeconfig_paths(&env(&[])).is_empty());
}

#[test]
fn kubeconfig_list_merges_files_and_skips_missing_ones() {
    let dir = fixtures();
    let list = std::env::join_paths(
        ["merge/a.yaml", "merge/missing.yaml", "merge/nested/b.yaml", "merge/c.yaml"].map(|f| dir.join(f)),
    )
    .unwrap();
    let e = env(&[("KUBECONFIG", &list)]);
    // current-context from the first file that sets it (nested/b.yaml), whose relative paths
    // are relative to its own folder.
    let c = from_kubeconfig_with_env(&KubeconfigOptions::default(), &e).unwrap();
    assert_eq!(c.cluster_url.as_str(), "https://only-b.example:8443/");
    assert_eq!(c.default_namespace, "from-b");
    assert_eq!(c.root_certs.len(), 1);
    assert!(c.identity.is_some());
    // Another context: a.yaml's "shared" wins.
    let options = KubeconfigOptions { context: Some("shared".into()), ..Default::default() };
    let c = from_kubeconfig_with_env(&options, &e).unwrap();
    assert_eq!(c.cluster_url.as_str(), "https://a.example:6443/");
    assert!(matches!(&c.auth, AuthSpec::Token(t) if t.expose() == "token-from-a"));
    // c.yaml's tokenFile (../tokens/token from merge/) is read by the auth state.
    let options = KubeconfigOptions { context: Some("c-uses-b".into()), ..Default::default() };
    let c = from_kubeconfig_with_env(&options, &e).unwrap();
    assert_eq!(bearer(&mut auth_of(&c), t0()), "Bearer fixture-file-token");
    // Explicit paths win over the environment.
    let options = KubeconfigOptions {
        paths: Some(vec![dir.join("full.yaml")]),
        context: Some("token".into()),
        ..Default::default()
    };
    let c = from_kubeconfig_with_env(&options, &e).unwrap();
    assert_eq!(bearer(&mut auth_of(&c), t0()), "Bearer fixture-static-token");
}

#[test]
fn relative_kubeconfig_entries_and_every_fixture_context() {
    // Every context of full.yaml that the core accepts loads with its files read from disk.
    let kc = load_kubeconfig(&[fixtures().join("full.yaml")]).unwrap();
    for ctx in &kc.contexts {
        let options = KubeconfigOptions {
            paths: Some(vec![fixtures().join("full.yaml")]),
            context: Some(ctx.name.clone()),
            ..Default::default()
        };
        match from_kubeconfig(&options) {
            Ok(c) => assert!(c.cluster_url.has_host()),
            Err(e) => assert!(matches!(e, ConfigError::UnsupportedAuthProvider { .. }), "{}: {e}", ctx.name),
        }
    }
}

#[test]
fn default_home_kubeconfig_via_injected_env() {
    let home = TempDir::new("home");
    home.write(".kube/ca.crt", fixture("pki/ca.crt"));
    home.write(
        ".kube/config",
        kubeconfig("    token: home-token\n").replace(
            "    server: https://k.example:6443\n",
            "    server: https://k.example:6443\n    certificate-authority: ca.crt\n",
        ),
    );
    let h = os(home.path());
    let c = from_kubeconfig_with_env(&KubeconfigOptions::default(), &env(&[("HOME", &h)])).unwrap();
    assert_eq!(c.default_namespace, "ns");
    assert_eq!(c.root_certs.len(), 1, "ca.crt relative to ~/.kube");
    assert!(matches!(&c.auth, AuthSpec::Token(t) if t.expose() == "home-token"));
}

#[test]
fn missing_unreadable_and_invalid_kubeconfigs() {
    let dir = TempDir::new("bad");
    // None of the files exists.
    let err = load_kubeconfig(&[dir.path().join("nope"), dir.path().join("nada")]).unwrap_err();
    let ConfigError::ReadFile { field, path, message } = &err else { panic!("{err:?}") };
    assert_eq!((field.as_str(), message.as_str()), ("kubeconfig", "none of these files exists"));
    assert!(path.contains("nope") && path.contains("nada"), "{path}");
    let h = os(dir.path());
    let err = from_kubeconfig_with_env(&KubeconfigOptions::default(), &env(&[("HOME", &h)])).unwrap_err();
    assert!(
        err.to_string().contains(".kube/config: no such file") || err.to_string().contains(".kube\\config"),
        "{err}"
    );
    let err = from_kubeconfig_with_env(&KubeconfigOptions::default(), &env(&[])).unwrap_err();
    assert!(err.to_string().contains("KUBECONFIG and HOME are not set"), "{err}");
    // A file that exists but cannot be read (a folder) is an error naming it, not skipped.
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).unwrap();
    let good = dir.write("good", kubeconfig("    token: t\n"));
    let err = load_kubeconfig(&[good.clone(), folder.clone()]).unwrap_err();
    assert!(matches!(&err, ConfigError::ReadFile { path, .. } if Path::new(path) == folder), "{err:?}");
    // Invalid YAML anywhere in the list is an error naming that file.
    let broken = dir.write("broken", "users: [\n  - name: u\n    user: {token: 'SECRET-x\n");
    let err = load_kubeconfig(&[good.clone(), broken.clone()]).unwrap_err();
    let ConfigError::Yaml { file, line, .. } = &err else { panic!("{err:?}") };
    assert_eq!((Path::new(file), *line > 0), (broken.as_path(), true));
    assert!(!err.to_string().contains("SECRET-"), "{err}");
    // A referenced file that is missing.
    let kc = dir.write(
        "missing-ca",
        kubeconfig("    token: t\n").replace("    server:", "    certificate-authority: gone.crt\n    server:"),
    );
    let err = from_kubeconfig(&KubeconfigOptions { paths: Some(vec![kc]), ..Default::default() }).unwrap_err();
    assert!(
        matches!(&err, ConfigError::ReadFile { field, path, .. } if field == "clusters[c].cluster.certificate-authority" && Path::new(path) == dir.path().join("gone.crt")),
        "{err:?}"
    );
}

#[test]
fn context_cluster_and_user_overrides() {
    let dir = TempDir::new("overrides");
    let kc = dir.write(
        "config",
        "current-context: a\nclusters:\n- {name: one, cluster: {server: 'https://one'}}\n- {name: two, cluster: {server: 'https://two'}}\ncontexts:\n- {name: a, context: {cluster: one, user: alice, namespace: a-ns}}\n- {name: b, context: {cluster: two, user: bob}}\nusers:\n- {name: alice, user: {token: alice-token}}\n- {name: bob, user: {token: bob-token}}\n",
    );
    let opts = |context: Option<&str>, cluster: Option<&str>, user: Option<&str>| KubeconfigOptions {
        paths: Some(vec![kc.clone()]),
        context: context.map(str::to_owned),
        cluster: cluster.map(str::to_owned),
        user: user.map(str::to_owned),
    };
    let token = |c: &Config| match &c.auth {
        AuthSpec::Token(t) => t.expose().to_owned(),
        other => panic!("{other:?}"),
    };
    let c = from_kubeconfig(&opts(None, None, None)).unwrap();
    assert_eq!((c.cluster_url.as_str(), token(&c).as_str()), ("https://one/", "alice-token"));
    let c = from_kubeconfig(&opts(Some("b"), None, None)).unwrap();
    assert_eq!((c.cluster_url.as_str(), token(&c).as_str()), ("https://two/", "bob-token"));
    // --cluster and --user change the selected context; the namespace stays.
    let c = from_kubeconfig(&opts(None, Some("two"), Some("bob"))).unwrap();
    assert_eq!(
        (c.cluster_url.as_str(), token(&c).as_str(), c.default_namespace.as_str()),
        ("https://two/", "bob-token", "a-ns")
    );
    let c = from_kubeconfig(&opts(Some("b"), None, Some("alice"))).unwrap();
    assert_eq!((c.cluster_url.as_str(), token(&c).as_str()), ("https://two/", "alice-token"));
    // Names that are not there.
    assert_eq!(
        from_kubeconfig(&opts(None, Some("three"), None)).unwrap_err(),
        ConfigError::Missing { what: "cluster", name: "three".into() }
    );
    assert_eq!(
        from_kubeconfig(&opts(Some("zzz"), Some("one"), None)).unwrap_err(),
        ConfigError::Missing { what: "context", name: "zzz".into() }
    );
    // No current-context: --cluster (and --user) make one.
    let bare = dir.write("bare", "clusters:\n- {name: one, cluster: {server: 'https://one'}}\nusers:\n- {name: alice, user: {token: alice-token}}\n");
    let o = KubeconfigOptions {
        paths: Some(vec![bare.clone()]),
        cluster: Some("one".into()),
        user: Some("alice".into()),
        ..Default::default()
    };
    let c = from_kubeconfig(&o).unwrap();
    assert_eq!(
        (c.cluster_url.as_str(), token(&c).as_str(), c.default_namespace.as_str()),
        ("https://one/", "alice-token", "default")
    );
    let o = KubeconfigOptions { paths: Some(vec![bare]), user: Some("alice".into()), ..Default::default() };
    assert_eq!(from_kubeconfig(&o).unwrap_err(), ConfigError::NoCurrentContext);
}

// ---------------------------------------------------------------------------------------------
// In-cluster and infer()
// ---------------------------------------------------------------------------------------------

fn service_account(name: &str) -> TempDir {
    let sa = TempDir::new(name);
    sa.write("ca.crt", fixture("pki/ca.crt"));
    sa.write("namespace", "team-ns\n");
    sa.write("token", "sa-token-1\n");
    sa
}

#[test]
fn incluster_from_a_service_account_folder() {
    let sa = service_account("sa");
    let (host, port) = (os("10.96.0.1"), os("443"));
    let c = incluster(&env(&[("KUBERNETES_SERVICE_HOST", &host), ("KUBERNETES_SERVICE_PORT", &port)]), Some(sa.path()))
        .unwrap();
    assert_eq!(c.cluster_url.as_str(), "https://10.96.0.1/");
    assert_eq!(c.default_namespace, "team-ns");
    assert_eq!(c.root_certs.len(), 1);
    assert_eq!(c.auth, AuthSpec::TokenFile(sa.path().join("token")));
    assert_eq!(bearer(&mut auth_of(&c), t0()), "Bearer sa-token-1");
    // IPv6.
    let v6 = os("fd00::1");
    let c = incluster(&env(&[("KUBERNETES_SERVICE_HOST", &v6), ("KUBERNETES_SERVICE_PORT", &port)]), Some(sa.path()))
        .unwrap();
    assert_eq!(c.cluster_url.as_str(), "https://[fd00::1]/");
    // No namespace file: "default".
    std::fs::remove_file(sa.path().join("namespace")).unwrap();
    let c = incluster(&env(&[("KUBERNETES_SERVICE_HOST", &host), ("KUBERNETES_SERVICE_PORT", &port)]), Some(sa.path()))
        .unwrap();
    assert_eq!(c.default_namespace, "default");
}

#[test]
fn incluster_errors() {
    let sa = service_account("sa-errors");
    let (host, port) = (os("10.96.0.1"), os("443"));
    assert_eq!(
        incluster(&env(&[("KUBERNETES_SERVICE_PORT", &port)]), Some(sa.path())).unwrap_err(),
        ConfigError::InCluster("KUBERNETES_SERVICE_HOST is not set".into())
    );
    assert_eq!(
        incluster(&env(&[("KUBERNETES_SERVICE_HOST", &host)]), Some(sa.path())).unwrap_err(),
        ConfigError::InCluster("KUBERNETES_SERVICE_PORT is not set".into())
    );
    let empty = TempDir::new("sa-empty");
    let err =
        incluster(&env(&[("KUBERNETES_SERVICE_HOST", &host), ("KUBERNETES_SERVICE_PORT", &port)]), Some(empty.path()))
            .unwrap_err();
    assert!(
        matches!(&err, ConfigError::ReadFile { path, .. } if Path::new(path) == empty.path().join("ca.crt")),
        "{err:?}"
    );
    // The token file is read when credentials are needed.
    let no_token = TempDir::new("sa-no-token");
    no_token.write("ca.crt", fixture("pki/ca.crt"));
    let c = incluster(
        &env(&[("KUBERNETES_SERVICE_HOST", &host), ("KUBERNETES_SERVICE_PORT", &port)]),
        Some(no_token.path()),
    )
    .unwrap();
    let err = credentials_blocking(&mut auth_of(&c), t0()).unwrap_err();
    assert!(
        matches!(&err, ConfigError::ReadFile { field, path, .. } if field == "tokenFile" && Path::new(path) == no_token.path().join("token")),
        "{err:?}"
    );
}

#[test]
fn infer_prefers_the_kubeconfig_then_falls_back_to_in_cluster() {
    let sa = service_account("infer-sa");
    let home = TempDir::new("infer-home");
    let (host, port, h) = (os("10.96.0.1"), os("443"), os(home.path()));
    let pod = [("KUBERNETES_SERVICE_HOST", &host), ("KUBERNETES_SERVICE_PORT", &port), ("HOME", &h)];
    // No kubeconfig: in-cluster.
    let c = infer_with(&env(&pod), sa.path()).unwrap();
    assert_eq!(c.cluster_url.as_str(), "https://10.96.0.1/");
    assert_eq!(c.default_namespace, "team-ns");
    // A kubeconfig: it wins even in a pod.
    home.write(".kube/config", kubeconfig("    token: from-home\n"));
    let c = infer_with(&env(&pod), sa.path()).unwrap();
    assert_eq!(c.cluster_url.as_str(), "https://k.example:6443/");
    // KUBECONFIG over HOME.
    let other = home.write("other.yaml", kubeconfig("    token: from-env\n").replace("k.example", "other.example"));
    let list = os(&other);
    let mut with_env = pod.to_vec();
    with_env.push(("KUBECONFIG", &list));
    assert_eq!(infer_with(&env(&with_env), sa.path()).unwrap().cluster_url.as_str(), "https://other.example:6443/");
    // A kubeconfig that does not work falls back too.
    home.write(".kube/config", "current-context: gone\n");
    let c = infer_with(&env(&pod), sa.path()).unwrap();
    assert_eq!(c.cluster_url.as_str(), "https://10.96.0.1/");
}

#[test]
fn infer_without_either_says_why_for_both() {
    let home = TempDir::new("infer-none");
    let h = os(home.path());
    let err = infer_with(&env(&[("HOME", &h)]), &home.path().join("no-sa")).unwrap_err();
    let ConfigError::Infer { kubeconfig, in_cluster } = &err else { panic!("{err:?}") };
    assert!(
        matches!(**kubeconfig, ConfigError::ReadFile { ref message, .. } if message == "no such file"),
        "{kubeconfig:?}"
    );
    assert_eq!(**in_cluster, ConfigError::InCluster("KUBERNETES_SERVICE_HOST is not set".into()));
    let msg = err.to_string();
    assert!(msg.starts_with("no configuration: kubeconfig: kubeconfig: cannot read "), "{msg}");
    assert!(
        msg.contains(".kube")
            && msg.ends_with("; in-cluster: in-cluster configuration: KUBERNETES_SERVICE_HOST is not set"),
        "{msg}"
    );
    // A broken kubeconfig's reason is kept.
    home.write(".kube/config", "current-context: gone\n");
    let err = infer_with(&env(&[("HOME", &h)]), &home.path().join("no-sa")).unwrap_err();
    assert!(err.to_string().contains("context \"gone\" is named but not defined"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Token files on disk
// ---------------------------------------------------------------------------------------------

#[test]
fn token_file_rotation_on_disk() {
    let dir = TempDir::new("rotation");
    let token = dir.write("token", "one\n");
    let kc = dir.write("config", kubeconfig("    tokenFile: token\n"));
    let c = from_kubeconfig(&KubeconfigOptions { paths: Some(vec![kc]), ..Default::default() }).unwrap();
    assert_eq!(c.auth, AuthSpec::TokenFile(dir.path().join("token")));
    let mut auth = auth_of(&c);
    assert_eq!(bearer(&mut auth, t0()), "Bearer one");
    std::fs::write(&token, "two\n").unwrap();
    assert_eq!(bearer(&mut auth, t0() + Duration::from_secs(30)), "Bearer one", "cached for a minute");
    let t1 = t0() + TOKEN_FILE_REFRESH;
    assert_eq!(bearer(&mut auth, t1), "Bearer two");
    // After a 401, at once.
    std::fs::write(&token, "three\n").unwrap();
    assert!(auth.on_unauthorized(SystemTime::now()));
    assert_eq!(bearer(&mut auth, t1), "Bearer three");
    // The file gone mid-rotation: the old token is kept (as client-go does) and the file
    // retried every few seconds; once the server rejects the old token, the error.
    std::fs::remove_file(&token).unwrap();
    let t2 = t1 + TOKEN_FILE_REFRESH;
    assert_eq!(bearer(&mut auth, t2), "Bearer three");
    assert_eq!(bearer(&mut auth, t2 + Duration::from_secs(5)), "Bearer three");
    assert!(auth.on_unauthorized(SystemTime::now()));
    let err = credentials_blocking(&mut auth, t2 + Duration::from_secs(6)).unwrap_err();
    assert!(matches!(&err, ConfigError::ReadFile { field, .. } if field == "tokenFile"), "{err:?}");
    std::fs::write(&token, "four").unwrap();
    assert_eq!(bearer(&mut auth, t2 + Duration::from_secs(6)), "Bearer four");
}

// ---------------------------------------------------------------------------------------------
// Exec plugins
// ---------------------------------------------------------------------------------------------

#[cfg(unix)]
const PLUGIN: &str = r#"# Records how it was run, then prints an ExecCredential.
out="$RECORD_DIR"
echo run >> "$out/runs"
printf '%s' "$KUBERNETES_EXEC_INFO" > "$out/exec-info.json"
printf '%s\n' "$@" > "$out/args"
if IFS= read -r line; then echo "line:$line" > "$out/stdin"; else echo "eof" > "$out/stdin"; fi
n=$(wc -l < "$out/runs" | tr -d ' ')
cat <<EOF
{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",
 "status": {"token": "plugin-$PLUGIN_PREFIX-$n", "expirationTimestamp": "$PLUGIN_EXPIRY"}}
EOF
"#;

#[cfg(unix)]
fn plugin_kubeconfig(dir: &TempDir, command: &str, expiry: &str, extra: &str) -> Config {
    let user = format!(
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {command}\n      args: [get-token, --verbose]\n      interactiveMode: IfAvailable\n      provideClusterInfo: true\n      installHint: 'install it with: brew install cred'\n      env:\n      - {{name: RECORD_DIR, value: '{}'}}\n      - {{name: PLUGIN_PREFIX, value: p}}\n      - {{name: PLUGIN_EXPIRY, value: '{expiry}'}}\n{extra}",
        dir.path().display()
    );
    let kc = dir.write("config", kubeconfig(&user));
    from_kubeconfig(&KubeconfigOptions { paths: Some(vec![kc]), ..Default::default() }).unwrap()
}

#[cfg(unix)]
#[test]
fn exec_plugin_prints_a_credential() {
    let dir = TempDir::new("plugin");
    dir.script("bin/cred.sh", PLUGIN);
    // A relative command with a slash is relative to the kubeconfig's folder.
    let c = plugin_kubeconfig(&dir, "./bin/cred.sh", "2099-01-01T00:00:00Z", "");
    // Not on a terminal: interactive is false and stdin is empty.
    let mut auth = auth_of(&c).with_terminal(false);
    assert_eq!(bearer(&mut auth, t0()), "Bearer plugin-p-1");
    assert_eq!(std::fs::read_to_string(dir.path().join("stdin")).unwrap(), "eof\n");
    assert_eq!(std::fs::read_to_string(dir.path().join("args")).unwrap(), "get-token\n--verbose\n");
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("exec-info.json")).unwrap()).unwrap();
    assert_eq!(info["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(info["kind"], "ExecCredential");
    assert_eq!(info["spec"]["interactive"], false);
    assert_eq!(info["spec"]["cluster"]["server"], "https://k.example:6443");
    // Cached until it expires (2099), until a 401.
    assert_eq!(bearer(&mut auth, t0() + Duration::from_secs(86400)), "Bearer plugin-p-1");
    assert!(auth.on_unauthorized(SystemTime::now()));
    assert_eq!(bearer(&mut auth, t0()), "Bearer plugin-p-2");
    assert_eq!(std::fs::read_to_string(dir.path().join("runs")).unwrap().lines().count(), 2);
}

#[cfg(unix)]
#[test]
fn exec_plugin_expiry_re_runs_it() {
    let dir = TempDir::new("plugin-expiry");
    dir.script("cred.sh", PLUGIN);
    let command = dir.path().join("cred.sh");
    let c = plugin_kubeconfig(&dir, &command.display().to_string(), "2023-11-14T23:13:20Z", "");
    let mut auth = auth_of(&c);
    // t0 is 2023-11-14T22:13:20Z: the credential lasts an hour.
    assert_eq!(bearer(&mut auth, t0()), "Bearer plugin-p-1");
    assert_eq!(bearer(&mut auth, t0() + Duration::from_secs(3000)), "Bearer plugin-p-1");
    assert_eq!(bearer(&mut auth, t0() + Duration::from_secs(3600)), "Bearer plugin-p-2");
    // Already expired when printed: used for this request, and the next runs it again.
    assert_eq!(bearer(&mut auth, t0() + Duration::from_secs(7200)), "Bearer plugin-p-3");
    assert_eq!(bearer(&mut auth, t0() + Duration::from_secs(7200)), "Bearer plugin-p-4");
}

#[cfg(unix)]
#[test]
fn exec_plugin_that_fails_gives_stderr_and_the_install_hint() {
    let dir = TempDir::new("plugin-fails");
    dir.script("fail.sh", "echo 'some output' \necho 'error: you must log in first' >&2\nexit 1\n");
    let c = plugin_kubeconfig(&dir, "./fail.sh", "", "");
    let err = credentials_blocking(&mut auth_of(&c), t0()).unwrap_err();
    let ConfigError::Exec { command, message, install_hint } = &err else { panic!("{err:?}") };
    assert_eq!(Path::new(command), dir.path().join("./fail.sh"));
    assert_eq!(message, "exited with status 1: error: you must log in first");
    assert_eq!(install_hint.as_deref(), Some("install it with: brew install cred"));
    assert!(err.to_string().ends_with("error: you must log in first\ninstall it with: brew install cred"), "{err}");
}

#[cfg(unix)]
#[test]
fn exec_plugin_that_prints_garbage() {
    let dir = TempDir::new("plugin-garbage");
    dir.script(
        "garbage.sh",
        "echo '{\"apiVersion\": \"client.authentication.k8s.io/v1\", \"status\": {\"token\": \"SECRET-half'\n",
    );
    let c = plugin_kubeconfig(&dir, "./garbage.sh", "", "");
    let err = credentials_blocking(&mut auth_of(&c), t0()).unwrap_err();
    assert!(err.to_string().contains("invalid ExecCredential JSON"), "{err}");
    assert!(!format!("{err} {err:?}").contains("SECRET-"), "{err}");
}

#[test]
fn exec_plugin_that_is_missing_names_the_install_hint() {
    let dir = TempDir::new("plugin-missing");
    let kc = dir.write(
        "config",
        kubeconfig("    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kube-proto-no-such-plugin\n      installHint: 'kube-proto-no-such-plugin is required; see https://example.invalid/install'\n"),
    );
    let c = from_kubeconfig(&KubeconfigOptions { paths: Some(vec![kc]), ..Default::default() }).unwrap();
    let err = credentials_blocking(&mut auth_of(&c), t0()).unwrap_err();
    let ConfigError::Exec { command, message, install_hint } = &err else { panic!("{err:?}") };
    assert_eq!(command, "kube-proto-no-such-plugin");
    assert_eq!(message, "kube-proto-no-such-plugin: command not found");
    assert_eq!(
        install_hint.as_deref(),
        Some("kube-proto-no-such-plugin is required; see https://example.invalid/install")
    );
    assert_eq!(
        err.to_string(),
        "exec plugin \"kube-proto-no-such-plugin\": kube-proto-no-such-plugin: command not found\nkube-proto-no-such-plugin is required; see https://example.invalid/install"
    );
}

#[cfg(unix)]
#[test]
fn run_exec_environment_stdin_and_permissions() {
    let dir = TempDir::new("run-exec");
    let script = dir.script(
        "env.sh",
        "printf '%s|%s' \"$A_VAR\" \"$PATH\"\nif IFS= read -r l; then echo line >&2; else echo eof >&2; fi\nexit 3\n",
    );
    let request = ExecRequest {
        command: script.clone(),
        args: vec![],
        env: vec![("A_VAR".into(), SecretString::from("a value"))],
        interactive: false,
        install_hint: None,
    };
    let out = run_exec(&request).unwrap();
    assert_eq!(out.status, Some(3));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("a value|") && stdout.len() > "a value|".len(),
        "the variable is added to the environment: {stdout}"
    );
    assert_eq!(out.stderr, b"eof\n");
    // Not executable.
    let plain = dir.write("plain.sh", "echo hi\n");
    let err = run_exec(&ExecRequest { command: plain.clone(), ..request.clone() }).unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
    let err = run_exec(&ExecRequest { command: dir.path().join("absent"), ..request }).unwrap_err();
    assert!(err.ends_with("absent: command not found"), "{err}");
}

#[test]
fn oidc_refresh_needs_the_async_client() {
    let dir = TempDir::new("oidc");
    let kc = dir.write(
        "config",
        kubeconfig("    auth-provider:\n      name: oidc\n      config:\n        id-token: expired\n        refresh-token: SECRET-refresh\n        client-id: k\n        idp-issuer-url: https://issuer.example\n"),
    );
    let c = from_kubeconfig(&KubeconfigOptions { paths: Some(vec![kc]), ..Default::default() }).unwrap();
    let err = credentials_blocking(&mut auth_of(&c), t0()).unwrap_err();
    let ConfigError::AuthProvider { provider, message } = &err else { panic!("{err:?}") };
    assert_eq!(provider, "oidc");
    assert!(
        message.contains("https://issuer.example/.well-known/openid-configuration") && message.contains("async client"),
        "{message}"
    );
    assert!(!err.to_string().contains("SECRET-"));
}

#[test]
fn read_file_says_why() {
    let dir = TempDir::new("read");
    let f = dir.write("f", "x");
    assert_eq!(read_file(&f).unwrap(), b"x");
    assert!(!read_file(&dir.path().join("nope")).unwrap_err().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Files kubectl refuses, and files it reads, the same here
// ---------------------------------------------------------------------------------------------

#[test]
fn a_user_defined_twice_in_one_file_is_an_error_naming_that_file_but_across_files_the_first_wins() {
    let dir = TempDir::new("duplicates");
    let first = dir.write("first", kubeconfig("    token: first\n"));
    let second = dir.write("second", kubeconfig("    token: second\n"));
    let c =
        from_kubeconfig(&KubeconfigOptions { paths: Some(vec![first.clone(), second]), ..Default::default() }).unwrap();
    assert_eq!(bearer(&mut auth_of(&c), t0()), "Bearer first");
    let twice = dir.write("twice", format!("{}- name: u\n  user: {{token: again}}\n", kubeconfig("    token: t\n")));
    let err = load_kubeconfig(&[first, twice.clone()]).unwrap_err();
    assert!(
        matches!(&err, ConfigError::DuplicateName { file, list: "users", name } if Path::new(file) == twice && name == "u"),
        "{err:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_kubeconfig_in_a_folder_whose_name_is_not_utf8_reads_its_relative_files() {
    use std::os::unix::ffi::OsStrExt as _;
    let tmp = TempDir::new("non-utf8");
    let dir = tmp.path().join(std::ffi::OsStr::from_bytes(b"caf\xe9-\xff"));
    std::fs::create_dir_all(dir.join("pki")).unwrap();
    std::fs::write(dir.join("pki/ca.crt"), fixture("pki/ca.crt")).unwrap();
    std::fs::write(dir.join("pki/client.crt"), fixture("pki/client-ec.crt")).unwrap();
    std::fs::write(dir.join("pki/client.key"), fixture("pki/client-ec.key")).unwrap();
    std::fs::write(dir.join("token"), "token-from-a-non-utf8-folder\n").unwrap();
    let yaml =
        kubeconfig("    client-certificate: pki/client.crt\n    client-key: pki/client.key\n    tokenFile: token\n")
            .replace("    server:", "    certificate-authority: pki/ca.crt\n    server:");
    let path = dir.join("config");
    std::fs::write(&path, yaml).unwrap();
    let list = std::env::join_paths([&path]).unwrap();
    let c = from_kubeconfig_with_env(&KubeconfigOptions::default(), &env(&[("KUBECONFIG", &list)])).unwrap();
    assert_eq!(c.root_certs.len(), 1);
    assert!(c.identity.is_some());
    assert_eq!(c.auth, AuthSpec::TokenFile(dir.join("token")));
    assert_eq!(bearer(&mut auth_of(&c), t0()), "Bearer token-from-a-non-utf8-folder");
}
