//! Kubeconfig parsing, merging, path resolution, context selection and the [`Config`] made from
//! it, against the fixtures in `tests/fixtures/kubeconfig` (test-only certificates and keys in
//! `pki/`), including kubectl's own view of them (`kubectl/`, see its README).

// The core takes bytes; these tests are the caller that reads the fixture files.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine as _;
use kube_proto::config::auth::Auth;
use kube_proto::config::kubeconfig::ExecEnvVar;
use kube_proto::config::{
    AuthAction, AuthSpec, Config, ConfigError, ExecCluster, Impersonation, Kubeconfig, parse_pem,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubeconfig")
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| e.to_string())
}

fn fixture_bytes(rel: &str) -> Vec<u8> {
    read(&fixtures().join(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

/// Parses a fixture kubeconfig as a file (its relative paths resolved against its folder).
fn load(rel: &str) -> Kubeconfig {
    let path = fixtures().join(rel);
    Kubeconfig::from_yaml(&fixture_bytes(rel), Some(&path)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn load_err(rel: &str) -> ConfigError {
    let path = fixtures().join(rel);
    Kubeconfig::from_yaml(&fixture_bytes(rel), Some(&path)).expect_err(rel)
}

fn config(kc: &Kubeconfig, context: &str) -> Result<Config, ConfigError> {
    Config::from_kubeconfig(kc, Some(context), &mut read)
}

fn ok(kc: &Kubeconfig, context: &str) -> Config {
    config(kc, context).unwrap_or_else(|e| panic!("context {context}: {e}"))
}

/// The DER certificates of a PEM fixture.
fn der_certs(rel: &str) -> Vec<Vec<u8>> {
    parse_pem(&fixture_bytes(rel)).unwrap().into_iter().filter(|b| b.label == "CERTIFICATE").map(|b| b.der).collect()
}

/// The label and DER of a PEM key fixture.
fn der_key(rel: &str) -> (String, Vec<u8>) {
    let block = parse_pem(&fixture_bytes(rel)).unwrap().remove(0);
    (block.label, block.der)
}

fn assert_identity(config: &Config, cert: &str, key: &str, label: &str) {
    let id = config.identity.as_ref().expect("a client certificate");
    assert_eq!(id.cert_chain_pem, fixture_bytes(cert));
    assert_eq!(id.key_pem.expose(), fixture_bytes(key).as_slice());
    assert_eq!(id.certificates_der(), der_certs(cert));
    let (got_label, got_der) = id.private_key_der().expect("a private key");
    assert_eq!(got_label, label);
    assert_eq!((got_label, got_der.expose().to_vec()), der_key(key));
}

fn url(s: &str) -> url::Url {
    url::Url::parse(s).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Cluster fields
// ---------------------------------------------------------------------------------------------

#[test]
fn cluster_with_ca_file_tls_server_name_proxy_and_compression() {
    let kc = load("full.yaml");
    let c = Config::from_kubeconfig(&kc, None, &mut read).unwrap(); // current-context: ca-file
    assert_eq!(c.cluster_url, url("https://ca-file.example:6443"));
    assert_eq!(c.root_certs, der_certs("pki/ca.crt"));
    assert!(!c.accept_invalid_certs);
    assert_eq!(c.tls_server_name.as_deref(), Some("kubernetes.default.svc"));
    assert_eq!(c.proxy_url, Some(url("http://proxy.example:3128")));
    assert!(c.disable_compression);
    assert_eq!(c.default_namespace, "apps");
    // The user: RSA (PKCS#1) client certificate and key from files.
    assert_identity(&c, "pki/client-rsa.crt", "pki/client-rsa.key", "RSA PRIVATE KEY");
    assert_eq!(c.auth, AuthSpec::None);
    assert_eq!(c.impersonation, None);
    assert_eq!(ok(&kc, "ca-file"), c);
}

#[test]
fn cluster_with_ca_data_and_a_path_prefix_and_ec_key_data() {
    let c = ok(&load("full.yaml"), "ca-data");
    assert_eq!(c.cluster_url.as_str(), "https://ca-data.example:6443/prefix");
    assert_eq!(c.root_certs, der_certs("pki/ca.crt"));
    assert_eq!(c.tls_server_name, None);
    assert_eq!(c.proxy_url, None);
    assert!(!c.disable_compression);
    assert_eq!(c.default_namespace, "team-a");
    assert_identity(&c, "pki/client-ec.crt", "pki/client-ec.key", "EC PRIVATE KEY");
}

#[test]
fn insecure_cluster_and_pkcs8_key_data_with_a_certificate_file() {
    let c = ok(&load("full.yaml"), "pkcs8");
    assert_eq!(c.cluster_url, url("https://10.0.0.1:6443"));
    assert!(c.accept_invalid_certs);
    assert!(c.root_certs.is_empty(), "no CA: the transport's roots only");
    assert_eq!(c.default_namespace, "default", "no namespace in the context");
    assert_identity(&c, "pki/client-pkcs8.crt", "pki/client-pkcs8.key", "PRIVATE KEY");
}

#[test]
fn ipv6_server_socks_proxy_and_a_context_without_user() {
    let c = ok(&load("full.yaml"), "no-user");
    assert_eq!(c.cluster_url.host(), Some(url::Host::Ipv6("::1".parse().unwrap())));
    assert_eq!(c.cluster_url.port(), Some(6443));
    assert_eq!(c.proxy_url, Some(url("socks5://127.0.0.1:1080")));
    assert_eq!(c.default_namespace, "kube-system");
    assert_eq!((c.identity, c.auth, c.impersonation), (None, AuthSpec::None, None));
}

#[test]
fn every_cluster_field_is_parsed() {
    let kc = load("full.yaml");
    let cluster = |name: &str| kc.clusters.iter().find(|c| c.name == name).unwrap().cluster.clone().unwrap();
    let ca_file = cluster("ca-file");
    assert_eq!(ca_file.server.as_deref(), Some("https://ca-file.example:6443"));
    assert_eq!(Path::new(ca_file.certificate_authority.as_deref().unwrap()), fixtures().join("pki/ca.crt"));
    assert_eq!(ca_file.tls_server_name.as_deref(), Some("kubernetes.default.svc"));
    assert_eq!(ca_file.proxy_url.as_deref(), Some("http://proxy.example:3128"));
    assert_eq!(ca_file.disable_compression, Some(true));
    assert_eq!(ca_file.insecure_skip_tls_verify, None);
    let data = base64::engine::general_purpose::STANDARD
        .decode(cluster("ca-data").certificate_authority_data.unwrap())
        .unwrap();
    assert_eq!(data, fixture_bytes("pki/ca.crt"));
    assert_eq!(cluster("insecure").insecure_skip_tls_verify, Some(true));
    assert_eq!(kc.api_version.as_deref(), Some("v1"));
    assert_eq!(kc.kind.as_deref(), Some("Config"));
    assert_eq!(kc.contexts.len(), 14);
    assert_eq!(kc.auth_infos.len(), 13);
}

#[test]
fn referenced_files_are_the_ca_and_the_client_certificate_and_key() {
    let kc = load("full.yaml");
    let dir = fixtures();
    assert_eq!(
        kc.referenced_files(None).unwrap(),
        [dir.join("pki/ca.crt"), dir.join("pki/client-rsa.crt"), dir.join("pki/client-rsa.key")]
    );
    assert_eq!(kc.referenced_files(Some("pkcs8")).unwrap(), [dir.join("pki/client-pkcs8.crt")]);
    assert!(kc.referenced_files(Some("token")).unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// User fields
// ---------------------------------------------------------------------------------------------

#[test]
fn token_user() {
    let c = ok(&load("full.yaml"), "token");
    let AuthSpec::Token(t) = &c.auth else { panic!("{:?}", c.auth) };
    assert_eq!(t.expose(), "fixture-static-token");
    assert_eq!(c.identity, None);
}

#[test]
fn token_file_user_is_resolved_against_the_kubeconfig_folder() {
    let c = ok(&load("full.yaml"), "token-file");
    assert_eq!(c.auth, AuthSpec::TokenFile(fixtures().join("tokens/token")));
    assert_eq!(c.default_namespace, "rotation");
    // The core hands the file to the caller to read; the token is what it holds.
    let mut auth = Auth::new(&c.auth, None);
    let now = SystemTime::UNIX_EPOCH;
    let AuthAction::ReadFile(p) = auth.poll(now) else { panic!() };
    auth.on_file(now, &p, read(&p));
    let AuthAction::Ready(creds) = auth.poll(now) else { panic!() };
    assert_eq!(creds.authorization.unwrap().expose(), "Bearer fixture-file-token");
}

#[test]
fn token_file_wins_over_an_inline_token() {
    // As client-go (kubectl sends the file's token): the file rotates, the inline one does not.
    let c = ok(&load("full.yaml"), "token-and-file");
    assert_eq!(c.auth, AuthSpec::TokenFile(fixtures().join("tokens/token")));
}

#[test]
fn basic_auth_user() {
    let c = ok(&load("full.yaml"), "basic");
    let AuthSpec::Basic { username, password } = &c.auth else { panic!("{:?}", c.auth) };
    assert_eq!((username.as_str(), password.expose()), ("admin", "fixture-password"));
}

#[test]
fn impersonation_fields_become_headers() {
    let c = ok(&load("full.yaml"), "impersonate");
    let imp = c.impersonation.clone().expect("impersonation");
    assert_eq!(
        imp,
        Impersonation {
            user: Some("jane".into()),
            uid: Some("1234".into()),
            groups: vec!["developers".into(), "system:authenticated".into()],
            extra: [
                ("reason".to_owned(), vec!["on-call".to_owned()]),
                ("scopes".into(), vec!["view".into(), "edit".into()])
            ]
            .into_iter()
            .collect(),
        }
    );
    let h = imp.headers().unwrap();
    let all = |name: &str| h.get_all(name).iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(all("impersonate-user"), ["jane"]);
    assert_eq!(all("impersonate-uid"), ["1234"]);
    assert_eq!(all("impersonate-group"), ["developers", "system:authenticated"]);
    assert_eq!(all("impersonate-extra-scopes"), ["view", "edit"]);
    assert_eq!(all("impersonate-extra-reason"), ["on-call"]);
    assert_eq!(h.len(), 7);
    // Impersonation comes with the user's own credentials.
    assert!(matches!(&c.auth, AuthSpec::Token(t) if t.expose() == "fixture-admin-token"));
}

#[test]
fn impersonation_extra_keys_are_escaped_and_bad_values_rejected() {
    let imp = Impersonation {
        user: Some("jane".into()),
        extra: [("example.com/Scope".to_owned(), vec!["a".to_owned()])].into_iter().collect(),
        ..Impersonation::default()
    };
    let h = imp.headers().unwrap();
    assert_eq!(h.get("impersonate-extra-example.com%2fscope").unwrap(), "a");
    // Extras without the user to impersonate: the API server would refuse every request.
    let err = Impersonation { user: None, ..imp }.headers().unwrap_err();
    assert!(matches!(&err, ConfigError::Invalid { field, .. } if field == "as"), "{err:?}");
    // A space is %20 (the API server path-unescapes the key), as kubectl sends it:
    // `Impersonate-Extra-My%20key%2fx`.
    let imp = Impersonation {
        user: Some("jane".into()),
        extra: [("My key/x+y".to_owned(), vec!["v".to_owned()])].into_iter().collect(),
        ..Impersonation::default()
    };
    let h = imp.headers().unwrap();
    assert_eq!(h.get("impersonate-extra-my%20key%2fx%2by").unwrap(), "v");
    let yaml = b"current-context: x\nclusters: [{name: c, cluster: {server: 'https://c'}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {as: \"bad\\nname\"}}]\n";
    let kc = Kubeconfig::from_yaml(yaml, None).unwrap();
    let err = config(&kc, "x").unwrap_err();
    assert!(matches!(&err, ConfigError::Invalid { field, .. } if field == "as"), "{err:?}");
}

#[test]
fn settings_kubectl_refuses_are_errors() {
    let yaml = |cluster: &str, user: &str| {
        format!(
            "current-context: x\nclusters: [{{name: c, cluster: {{server: 'https://c', {cluster}}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\nusers: [{{name: u, user: {{{user}}}}}]\n"
        )
    };
    let ca = base64::engine::general_purpose::STANDARD.encode(fixture_bytes("pki/ca.crt"));
    // Verify with a CA, or do not verify ("specifying a root certificates file with the
    // insecure flag is not allowed").
    let kc = Kubeconfig::from_yaml(
        yaml(&format!("insecure-skip-tls-verify: true, certificate-authority-data: {ca}"), "token: t").as_bytes(),
        None,
    )
    .unwrap();
    let err = config(&kc, "x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "clusters[c].cluster.insecure-skip-tls-verify: cannot be combined with certificate-authority or certificate-authority-data"
    );
    // Groups, uid or extra without the user ("requesting uid, groups or user-extra for u
    // without impersonating a user").
    for user in ["as-groups: [g]", "as-uid: '1'", "as-user-extra: {k: [v]}"] {
        let kc = Kubeconfig::from_yaml(yaml("insecure-skip-tls-verify: false", user).as_bytes(), None).unwrap();
        let err = config(&kc, "x").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { field, message } if field == "users[u].user.as" && message.contains("need as")),
            "{user}: {err:?}"
        );
    }
}

#[test]
fn exec_user_with_cluster_info() {
    let c = ok(&load("full.yaml"), "exec");
    let AuthSpec::Exec { exec, cluster } = &c.auth else { panic!("{:?}", c.auth) };
    // A command with a slash is relative to the kubeconfig's folder.
    assert_eq!(Path::new(&exec.command), fixtures().join("./plugins/cred.sh"));
    assert_eq!(exec.args, ["--cluster", "ca-file"]);
    assert_eq!(exec.env, [ExecEnvVar { name: "CRED_PROFILE".into(), value: "fixture".into() }]);
    assert_eq!(exec.api_version.as_deref(), Some("client.authentication.k8s.io/v1"));
    assert_eq!(exec.install_hint.as_deref(), Some("install cred.sh from the fixtures"));
    assert!(exec.provide_cluster_info);
    assert_eq!(exec.interactive_mode.as_deref(), Some("Never"));
    assert_eq!(
        *cluster,
        ExecCluster {
            server: "https://ca-file.example:6443".into(),
            tls_server_name: Some("kubernetes.default.svc".into()),
            insecure_skip_tls_verify: false,
            certificate_authority_data: Some(fixture_bytes("pki/ca.crt")),
            proxy_url: Some("http://proxy.example:3128".into()),
            disable_compression: true,
        }
    );
}

#[test]
fn exec_user_with_a_bare_command_name_is_looked_up_in_path() {
    let c = ok(&load("full.yaml"), "exec-beta");
    let AuthSpec::Exec { exec, cluster } = &c.auth else { panic!("{:?}", c.auth) };
    assert_eq!(exec.command, Path::new("kubectl-fixture-cred"));
    assert_eq!(exec.api_version.as_deref(), Some("client.authentication.k8s.io/v1beta1"));
    assert_eq!((exec.interactive_mode.as_deref(), exec.provide_cluster_info), (None, false));
    assert_eq!(cluster.server, "https://[::1]:6443");
    assert_eq!(cluster.proxy_url.as_deref(), Some("socks5://127.0.0.1:1080"));
}

#[test]
fn oidc_and_gcp_auth_providers() {
    let kc = load("full.yaml");
    let c = ok(&kc, "oidc");
    let AuthSpec::AuthProvider(p) = &c.auth else { panic!("{:?}", c.auth) };
    assert_eq!(p.name, "oidc");
    let get = |k: &str| p.config.get(k).map(|v| v.expose().to_owned());
    assert_eq!(get("client-id").as_deref(), Some("kubernetes"));
    assert_eq!(get("client-secret").as_deref(), Some("fixture-client-secret"));
    assert_eq!(get("id-token").as_deref(), Some("fixture.id.token"));
    assert_eq!(get("refresh-token").as_deref(), Some("fixture-refresh-token"));
    assert_eq!(get("idp-issuer-url").as_deref(), Some("https://issuer.example"));

    let c = ok(&kc, "gcp");
    let AuthSpec::AuthProvider(p) = &c.auth else { panic!("{:?}", c.auth) };
    assert_eq!(p.name, "gcp");
    assert_eq!(p.config.get("cmd-path").unwrap().expose(), "/usr/bin/gcloud");
    assert_eq!(p.config.get("token-key").unwrap().expose(), "{.credential.access_token}");
}

#[test]
fn unsupported_auth_provider_is_named_and_exec_suggested() {
    let err = config(&load("full.yaml"), "azure").unwrap_err();
    let ConfigError::UnsupportedAuthProvider { user, name, hint } = &err else { panic!("{err:?}") };
    assert_eq!((user.as_str(), name.as_str()), ("azure", "azure"));
    assert!(hint.contains("exec"), "{hint}");
    let msg = err.to_string();
    assert!(
        msg.contains("\"azure\"") && msg.contains("not supported") && msg.contains("exec credential plugin"),
        "{msg}"
    );
}

#[test]
fn every_user_field_is_parsed() {
    let kc = load("full.yaml");
    let user = |name: &str| kc.auth_infos.iter().find(|u| u.name == name).unwrap().auth_info.clone().unwrap();
    let rsa = user("rsa-file");
    assert_eq!(Path::new(rsa.client_certificate.as_deref().unwrap()), fixtures().join("pki/client-rsa.crt"));
    assert_eq!(Path::new(rsa.client_key.as_deref().unwrap()), fixtures().join("pki/client-rsa.key"));
    let ec = user("ec-data");
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).unwrap();
    assert_eq!(b64(ec.client_certificate_data.as_deref().unwrap()), fixture_bytes("pki/client-ec.crt"));
    assert_eq!(b64(ec.client_key_data.as_ref().unwrap().expose()), fixture_bytes("pki/client-ec.key"));
    assert_eq!(user("token").token.unwrap().expose(), "fixture-static-token");
    assert_eq!(Path::new(user("token-file").token_file.as_deref().unwrap()), fixtures().join("tokens/token"));
    let basic = user("basic");
    assert_eq!((basic.username.as_deref(), basic.password.unwrap().expose()), (Some("admin"), "fixture-password"));
    let imp = user("impersonate");
    assert_eq!(imp.impersonate.as_deref(), Some("jane"));
    assert_eq!(imp.impersonate_uid.as_deref(), Some("1234"));
    assert_eq!(imp.impersonate_groups.unwrap(), ["developers", "system:authenticated"]);
    assert_eq!(imp.impersonate_extra.unwrap()["scopes"], ["view", "edit"]);
    assert!(user("exec").exec.is_some());
    assert_eq!(user("azure").auth_provider.unwrap().name, "azure");
}

// ---------------------------------------------------------------------------------------------
// Merging (KUBECONFIG) and relative paths
// ---------------------------------------------------------------------------------------------

/// The merge set as `KUBECONFIG=a.yaml:missing.yaml:nested/b.yaml:c.yaml` gives it (the
/// missing file is skipped, as kubectl does; reading files is the caller's part).
fn merged() -> Kubeconfig {
    let files = ["merge/a.yaml", "merge/missing.yaml", "merge/nested/b.yaml", "merge/c.yaml"];
    Kubeconfig::merge(files.iter().filter(|f| fixtures().join(f).exists()).map(|f| load(f)))
}

#[test]
fn merge_first_file_to_set_current_context_wins() {
    let kc = merged();
    // a.yaml sets current-context to "", which does not count; b.yaml's wins over c.yaml's.
    assert_eq!(kc.current_context.as_deref(), Some("from-b"));
    let c = Config::from_kubeconfig(&kc, None, &mut read).unwrap();
    assert_eq!(c.cluster_url, url("https://only-b.example:8443"));
    assert_eq!(c.default_namespace, "from-b");
}

#[test]
fn merge_first_file_to_define_a_name_wins_for_the_whole_entry() {
    let kc = merged();
    let names = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        kc.clusters.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        names(vec!["shared", "only-a", "only-b"])
    );
    assert_eq!(
        kc.contexts.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        names(vec!["shared", "from-b", "from-c", "c-uses-b"])
    );
    assert_eq!(
        kc.auth_infos.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
        names(vec!["shared-user", "b-user", "c-user"])
    );
    // "shared" (context, cluster and user) is a.yaml's, entirely: not field by field.
    let c = ok(&kc, "shared");
    assert_eq!(c.cluster_url, url("https://a.example:6443"));
    assert!(c.accept_invalid_certs);
    assert_eq!(c.default_namespace, "from-a");
    assert!(matches!(&c.auth, AuthSpec::Token(t) if t.expose() == "token-from-a"));
    // c.yaml's "only-b" cluster loses to b.yaml's, which c.yaml's context then uses.
    let c = ok(&kc, "c-uses-b");
    assert_eq!(c.cluster_url, url("https://only-b.example:8443"));
    assert_eq!(c.default_namespace, "c-ns");
    // A context in one file may use a cluster and user from others.
    let c = ok(&kc, "from-c");
    assert_eq!(c.cluster_url, url("https://only-a.example"));
    assert_eq!(c.default_namespace, "default");
}

#[test]
fn merged_files_keep_their_own_relative_paths() {
    let kc = merged();
    // b.yaml (in merge/nested) names ../../pki files; c.yaml (in merge) names ../tokens/token.
    let c = ok(&kc, "from-b");
    assert_eq!(c.root_certs, der_certs("pki/ca.crt"));
    assert_identity(&c, "pki/client-ec.crt", "pki/client-ec.key", "EC PRIVATE KEY");
    assert_eq!(c.impersonation.unwrap().user.as_deref(), Some("b-impersonated"));
    let c = ok(&kc, "c-uses-b");
    assert_eq!(c.auth, AuthSpec::TokenFile(fixtures().join("merge/../tokens/token")));
    assert_eq!(read(&fixtures().join("merge/../tokens/token")).unwrap(), b"fixture-file-token\n");
}

#[test]
fn merge_of_nothing_and_of_empty_files() {
    assert_eq!(Kubeconfig::merge(Vec::new()), Kubeconfig::default());
    let empty = Kubeconfig::from_yaml(b"", Some(Path::new("/x/empty"))).unwrap();
    assert_eq!(empty, Kubeconfig::default());
    let nulls = Kubeconfig::from_yaml(b"clusters: null\ncontexts: ~\nusers:\n", None).unwrap();
    assert_eq!(nulls, Kubeconfig::default());
    assert_eq!(Kubeconfig::merge([empty, load("full.yaml")]), load("full.yaml"));
    assert!(matches!(
        Config::from_kubeconfig(&Kubeconfig::default(), None, &mut read),
        Err(ConfigError::NoCurrentContext)
    ));
}

#[test]
fn relative_paths_in_a_nested_file_without_extension() {
    let kc = load("relative/nested/config");
    let c = Config::from_kubeconfig(&kc, None, &mut read).unwrap();
    assert_eq!(c.root_certs, der_certs("pki/ca.crt"));
    assert_identity(&c, "pki/client-pkcs8.crt", "pki/client-pkcs8.key", "PRIVATE KEY");
    // A client certificate and a token together are allowed.
    assert_eq!(c.auth, AuthSpec::TokenFile(fixtures().join("relative/nested/../../tokens/token")));
    assert_eq!(c.default_namespace, "relative");
}

#[test]
fn paths_are_left_alone_without_a_file_and_when_absolute() {
    let yaml = b"users:\n- name: u\n  user:\n    client-certificate: rel/c.crt\n    client-key: /abs/c.key\n    tokenFile: t\n    exec: {command: bin/cred}\n- name: v\n  user:\n    exec: {command: cred}\n";
    let kc = Kubeconfig::from_yaml(yaml, None).unwrap();
    let u = kc.auth_infos[0].auth_info.clone().unwrap();
    assert_eq!(u.client_certificate.as_deref(), Some(Path::new("rel/c.crt")));
    assert_eq!(u.exec.unwrap().command, Path::new("bin/cred"));
    let kc = Kubeconfig::from_yaml(yaml, Some(Path::new("/home/me/.kube/config"))).unwrap();
    let u = kc.auth_infos[0].auth_info.clone().unwrap();
    assert_eq!(Path::new(u.client_certificate.as_deref().unwrap()), Path::new("/home/me/.kube/rel/c.crt"));
    assert_eq!(u.client_key.as_deref(), Some(Path::new("/abs/c.key")));
    assert_eq!(Path::new(u.token_file.as_deref().unwrap()), Path::new("/home/me/.kube/t"));
    assert_eq!(Path::new(&u.exec.unwrap().command), Path::new("/home/me/.kube/bin/cred"));
    assert_eq!(
        kc.auth_infos[1].auth_info.clone().unwrap().exec.unwrap().command,
        Path::new("cred"),
        "a bare name is looked up in PATH"
    );
}

// ---------------------------------------------------------------------------------------------
// Context selection
// ---------------------------------------------------------------------------------------------

#[test]
fn context_selection() {
    let kc = load("full.yaml");
    let sel = kc.select(None).unwrap();
    assert_eq!(
        (sel.context_name.as_str(), sel.cluster_name.as_str(), sel.user_name.as_deref()),
        ("ca-file", "ca-file", Some("rsa-file"))
    );
    let sel = kc.select(Some("exec-beta")).unwrap();
    assert_eq!((sel.cluster_name.as_str(), sel.user_name.as_deref()), ("ipv6", Some("exec-beta")));
    let sel = kc.select(Some("no-user")).unwrap();
    assert!(sel.auth_info.is_none() && sel.user_name.is_none());
    // A named context overrides current-context; the namespace follows the context.
    assert_eq!(ok(&kc, "ca-data").default_namespace, "team-a");
    assert_eq!(ok(&kc, "token").default_namespace, "default");
    let err = config(&kc, "nope").unwrap_err();
    assert_eq!(err, ConfigError::Missing { what: "context", name: "nope".into() });
    assert_eq!(err.to_string(), "context \"nope\" is named but not defined in the kubeconfig");
}

#[test]
fn empty_namespace_means_default() {
    let yaml = b"current-context: x\nclusters: [{name: c, cluster: {server: 'https://c'}}]\ncontexts: [{name: x, context: {cluster: c, namespace: ''}}]\n";
    let c = Config::from_kubeconfig(&Kubeconfig::from_yaml(yaml, None).unwrap(), None, &mut read).unwrap();
    assert_eq!(c.default_namespace, "default");
}

// ---------------------------------------------------------------------------------------------
// Bad input: typed errors naming the file and field
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_yaml_names_the_file_line_and_column_without_the_value() {
    let err = load_err("bad/invalid-yaml.yaml");
    let ConfigError::Yaml { file, line, column, field: _, message } = &err else { panic!("{err:?}") };
    assert_eq!(Path::new(file), fixtures().join("bad/invalid-yaml.yaml"));
    assert_eq!((*line, *column), (7, 12), "{err}");
    assert_eq!(message, "unclosed quote");
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{file}:{line}:{column}: invalid kubeconfig: ")), "{msg}");
    assert!(!msg.contains("bad-yaml-secret-token"), "{msg}");
    assert!(!format!("{err:?}").contains("bad-yaml-secret-token"));
}

#[test]
fn a_value_of_the_wrong_type_names_its_line_and_field() {
    let err = load_err("bad/wrong-type.yaml");
    let ConfigError::Yaml { file, line, column, field, message } = &err else { panic!("{err:?}") };
    assert!(file.ends_with("wrong-type.yaml"));
    assert_eq!((*line, *column), (7, 31), "{err}");
    assert_eq!(field.as_deref(), Some("clusters[c].cluster.insecure-skip-tls-verify"));
    assert_eq!(message, "invalid boolean");
    assert_eq!(
        err.to_string(),
        format!("{file}:7:31: invalid kubeconfig: clusters[c].cluster.insecure-skip-tls-verify: invalid boolean")
    );
}

#[test]
fn yaml_errors_do_not_repeat_secret_values() {
    for yaml in [
        "users:\n- name: u\n  user:\n    token: [SECRET-in-a-list]\n",
        "users:\n- name: u\n  user:\n    password: {SECRET-as-a-key: 1}\n",
        "users:\n- name: u\n  user:\n    client-key-data: SECRET-key\n    client-key-data: SECRET-again\n",
        "users:\n- name: u\n  user:\n    token: 'SECRET-unterminated\n",
        "users:\n- name: u\n  user: {token: SECRET-flow\n",
        "users: SECRET-not-a-list\n",
        "SECRET-plain-scalar\n",
    ] {
        let err = Kubeconfig::from_yaml(yaml.as_bytes(), Some(Path::new("/k/config"))).expect_err(yaml);
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("SECRET-"), "{yaml:?} -> {shown}");
        assert!(matches!(err, ConfigError::Yaml { ref file, .. } if file == "/k/config"), "{err:?}");
    }
    let err = Kubeconfig::from_yaml(b"a: \xff\n", None).unwrap_err();
    assert!(err.to_string().contains("not UTF-8"), "{err}");
}

#[test]
fn named_but_absent_context_cluster_and_user() {
    let kc = load("bad/dangling.yaml");
    assert_eq!(
        Config::from_kubeconfig(&kc, None, &mut read).unwrap_err(),
        ConfigError::Missing { what: "context", name: "absent".into() }
    );
    assert_eq!(
        config(&kc, "no-cluster").unwrap_err(),
        ConfigError::Missing { what: "cluster", name: "gone-cluster".into() }
    );
    assert_eq!(config(&kc, "no-user").unwrap_err(), ConfigError::Missing { what: "user", name: "gone-user".into() });
    let err = config(&kc, "no-server").unwrap_err();
    assert_eq!(
        err,
        ConfigError::Invalid { field: "clusters[no-server].cluster.server".into(), message: "no server URL".into() }
    );
    for (server, why) in [("not a url", "is not a URL"), ("unix:/run/k.sock", "has no host")] {
        let yaml = format!(
            "current-context: x\nclusters: [{{name: c, cluster: {{server: '{server}'}}}}]\ncontexts: [{{name: x, context: {{cluster: c}}}}]\n"
        );
        let err = config(&Kubeconfig::from_yaml(yaml.as_bytes(), None).unwrap(), "x").unwrap_err();
        assert!(
            matches!(&err, ConfigError::Invalid { field, message } if field == "clusters[c].cluster.server" && message.contains(why)),
            "{err:?}"
        );
    }
}

#[test]
fn certificates_and_keys_that_do_not_parse() {
    let kc = load("bad/bad-cert.yaml");
    let pem_err = |ctx: &str| match config(&kc, ctx) {
        Err(ConfigError::Pem { field, message }) => (field, message),
        other => panic!("{ctx}: {other:?}"),
    };
    let (field, message) = pem_err("garbage-ca-data");
    assert_eq!(field, "clusters[garbage-ca-data].cluster.certificate-authority-data");
    assert!(message.contains("no PEM CERTIFICATE block"), "{message}");
    let (field, message) = pem_err("not-der-ca-file");
    assert_eq!(field, "clusters[not-der-ca-file].cluster.certificate-authority");
    assert!(message.contains("not a DER certificate"), "{message}");
    let (field, message) = pem_err("cert-is-key");
    assert_eq!(field, "users[cert-is-key].user.client-certificate");
    assert!(message.contains("no PEM CERTIFICATE block"), "{message}");
    let (field, message) = pem_err("key-is-cert");
    assert_eq!(field, "users[key-is-cert].user.client-key-data");
    assert!(message.contains("no PEM private key"), "{message}");
    let err = config(&kc, "bad-base64").unwrap_err();
    assert!(
        matches!(&err, ConfigError::Invalid { field, message } if field == "clusters[bad-base64].cluster.certificate-authority-data" && message.contains("base64")),
        "{err:?}"
    );
    let err = config(&kc, "cert-without-key").unwrap_err();
    assert_eq!(
        err,
        ConfigError::Invalid {
            field: "users[cert-without-key].user.client-key".into(),
            message: "a client certificate needs a client key".into()
        }
    );
    assert_eq!(err.to_string(), "users[cert-without-key].user.client-key: a client certificate needs a client key");
}

#[test]
fn missing_referenced_files_name_the_field_and_path() {
    let kc = load("bad/missing-files.yaml");
    let err = config(&kc, "no-ca").unwrap_err();
    let ConfigError::ReadFile { field, path, message } = &err else { panic!("{err:?}") };
    assert_eq!(field, "clusters[no-ca].cluster.certificate-authority");
    assert_eq!(Path::new(path), fixtures().join("bad/nowhere/ca.crt"));
    assert!(!message.is_empty());
    assert!(err.to_string().starts_with(&format!("{field}: cannot read {path}: ")), "{err}");
    let err = config(&kc, "no-key").unwrap_err();
    assert!(
        matches!(&err, ConfigError::ReadFile { field, path, .. } if field == "users[no-key].user.client-key" && path.ends_with("nowhere/client.key")),
        "{err:?}"
    );
    // A token file is read by the auth state, when credentials are needed.
    let c = ok(&kc, "no-token-file");
    let mut auth = Auth::new(&c.auth, None);
    let now = SystemTime::UNIX_EPOCH;
    let AuthAction::ReadFile(p) = auth.poll(now) else { panic!() };
    auth.on_file(now, &p, read(&p));
    let AuthAction::Failed(err) = auth.poll(now) else { panic!() };
    assert!(
        matches!(&err, ConfigError::ReadFile { field, path, .. } if field == "tokenFile" && path.ends_with("nowhere/token")),
        "{err:?}"
    );
}

#[test]
fn two_auth_methods_on_one_user() {
    let kc = load("bad/two-auth.yaml");
    let err = config(&kc, "token-and-basic").unwrap_err();
    assert_eq!(err, ConfigError::MultipleAuth { user: "token-and-basic".into(), methods: vec!["token", "basicAuth"] });
    assert_eq!(
        err.to_string(),
        "user \"token-and-basic\" has more than one authentication method (token, basicAuth); only one is allowed"
    );
    let err = config(&kc, "exec-and-provider").unwrap_err();
    assert_eq!(
        err,
        ConfigError::MultipleAuth { user: "exec-and-provider".into(), methods: vec!["authProvider", "exec"] }
    );
    assert!(!format!("{err} {err:?}").contains("two-auth-secret"));
}

// ---------------------------------------------------------------------------------------------
// Secrets never show
// ---------------------------------------------------------------------------------------------

#[test]
fn debug_output_and_errors_never_show_secrets() {
    let kc = load("secrets.yaml");
    let key_pem = String::from_utf8(fixture_bytes("pki/client-rsa.key")).unwrap();
    // Recognisable pieces of the private key: its base64 lines, and its PEM as base64 (the
    // kubeconfig's client-key-data).
    let key_lines: Vec<&str> = key_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let key_data = base64::engine::general_purpose::STANDARD.encode(key_pem.as_bytes());
    let check = |what: &str, shown: &str| {
        assert!(!shown.contains("SECRET-"), "{what} shows a secret: {shown}");
        assert!(!shown.contains(&key_data[..40]), "{what} shows the client-key-data");
        for l in &key_lines {
            assert!(!shown.contains(l), "{what} shows a line of the private key");
        }
    };
    check("Kubeconfig", &format!("{kc:?}"));
    let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    let mut shown_configs = 0;
    for ctx in kc.contexts.iter().map(|c| c.name.clone()) {
        match config(&kc, &ctx) {
            Ok(c) => {
                shown_configs += 1;
                check(&ctx, &format!("{c:?}"));
                let mut auth = Auth::new(&c.auth, c.identity.clone());
                check(&ctx, &format!("{auth:?}"));
                for _ in 0..3 {
                    let action = auth.poll(now);
                    check(&ctx, &format!("{action:?}"));
                    match action {
                        AuthAction::Ready(creds) => {
                            check(&ctx, &format!("{creds:?}"));
                            if let Some(h) = creds.authorization_header() {
                                assert!(h.is_sensitive());
                                check(&ctx, &format!("{h:?}"));
                            }
                        }
                        AuthAction::Failed(e) => check(&ctx, &format!("{e} {e:?}")),
                        AuthAction::Exec(req) => {
                            check(&ctx, &format!("{req:?}"));
                            auth.on_exec_failed(now, "not found");
                        }
                        AuthAction::Http(_) => {
                            auth.on_http_response(now, http::StatusCode::BAD_REQUEST, b"SECRET-body")
                        }
                        AuthAction::ReadFile(_) => unreachable!(),
                    }
                    check(&ctx, &format!("{auth:?}"));
                }
            }
            Err(e) => check(&ctx, &format!("{e} {e:?}")),
        }
    }
    assert_eq!(shown_configs, 6, "all but the two-method and azure users make a Config");
    assert!(matches!(config(&kc, "two"), Err(ConfigError::MultipleAuth { .. })));
    assert!(matches!(config(&kc, "azure"), Err(ConfigError::UnsupportedAuthProvider { .. })));
}

// ---------------------------------------------------------------------------------------------
// kubectl as the reference
// ---------------------------------------------------------------------------------------------

/// What `kubectl config view --minify --flatten` printed (tests/fixtures/kubeconfig/kubectl),
/// and the sources it was made from.
const KUBECTL_VIEWS: &[(&str, &[&str], Option<&str>)] = &[
    ("full-azure", &["full.yaml"], Some("azure")),
    ("full-basic", &["full.yaml"], Some("basic")),
    ("full-ca-data", &["full.yaml"], Some("ca-data")),
    ("full-ca-file", &["full.yaml"], Some("ca-file")),
    ("full-exec", &["full.yaml"], Some("exec")),
    ("full-exec-beta", &["full.yaml"], Some("exec-beta")),
    ("full-gcp", &["full.yaml"], Some("gcp")),
    ("full-impersonate", &["full.yaml"], Some("impersonate")),
    ("full-no-user", &["full.yaml"], Some("no-user")),
    ("full-oidc", &["full.yaml"], Some("oidc")),
    ("full-pkcs8", &["full.yaml"], Some("pkcs8")),
    ("full-token", &["full.yaml"], Some("token")),
    ("full-token-file", &["full.yaml"], Some("token-file")),
    ("full-token-and-file", &["full.yaml"], Some("token-and-file")),
    ("merged-current", MERGE_SET, None),
    ("merged-shared", MERGE_SET, Some("shared")),
    ("merged-from-c", MERGE_SET, Some("from-c")),
    ("merged-c-uses-b", MERGE_SET, Some("c-uses-b")),
    ("relative-current", &["relative/nested/config"], None),
];

const MERGE_SET: &[&str] = &["merge/a.yaml", "merge/missing.yaml", "merge/nested/b.yaml", "merge/c.yaml"];

/// kubectl keeps `tokenFile` and a relative exec `command` as written (relative to the file
/// that names them), where we resolve them: the same file when ours ends with theirs.
fn same_path(ours: &Path, theirs: &Path) -> bool {
    ours == theirs || (theirs.is_relative() && ours.ends_with(theirs.strip_prefix(".").unwrap_or(theirs)))
}

#[test]
fn selection_and_flattening_agree_with_kubectl() {
    let dir = fixtures().join("kubectl");
    let mut seen: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    seen.sort();
    let mut listed: Vec<String> = KUBECTL_VIEWS.iter().map(|(n, ..)| format!("{n}.yaml")).collect();
    listed.sort();
    assert_eq!(seen, listed, "every kubectl view is compared");

    for (name, sources, context) in KUBECTL_VIEWS {
        let kubeconfig = Kubeconfig::merge(sources.iter().filter(|f| fixtures().join(f).exists()).map(|f| load(f)));
        let ours = Config::from_kubeconfig(&kubeconfig, *context, &mut read);
        // kubectl's view: one context, made current, with every file inlined.
        let view_path = dir.join(format!("{name}.yaml"));
        let view = Kubeconfig::from_yaml(&read(&view_path).unwrap(), None).unwrap();
        let sel = view.select(None).unwrap();
        assert_eq!(Some(sel.context_name.as_str()), context.or(kubeconfig.current_context.as_deref()), "{name}");
        assert_eq!((view.clusters.len(), view.contexts.len()), (1, 1), "{name}: minified");
        let theirs = Config::from_kubeconfig(&view, None, &mut |p| {
            Err(format!("kubectl inlined every file, not {}", p.display()))
        });
        let (mut ours, theirs) = match (ours, theirs) {
            (Ok(o), Ok(t)) => (o, t),
            (Err(o), Err(t)) => {
                assert_eq!(o, t, "{name}: the same error");
                continue;
            }
            (o, t) => panic!("{name}: ours {o:?}, kubectl's {t:?}"),
        };
        match (&mut ours.auth, &theirs.auth) {
            (AuthSpec::TokenFile(o), AuthSpec::TokenFile(t)) => {
                assert!(same_path(o, t), "{name}: tokenFile {} vs kubectl's {}", o.display(), t.display());
                *o = t.clone();
            }
            (AuthSpec::Exec { exec: o, .. }, AuthSpec::Exec { exec: t, .. }) => {
                assert!(
                    same_path(Path::new(&o.command), Path::new(&t.command)),
                    "{name}: {} vs {}",
                    o.command.display(),
                    t.command.display()
                );
                o.command = t.command.clone();
                // kubectl writes v1beta1's default interactiveMode out; we apply the same default
                // (IfAvailable) when the plugin is run (see config_auth.rs).
                if o.interactive_mode.is_none()
                    && o.api_version.as_deref() == Some("client.authentication.k8s.io/v1beta1")
                {
                    assert_eq!(t.interactive_mode.as_deref(), Some("IfAvailable"), "{name}");
                    o.interactive_mode = t.interactive_mode.clone();
                }
            }
            _ => {}
        }
        // Server, namespace, CA, TLS settings, proxy, client certificate and key, token,
        // basic auth, exec, auth-provider and impersonation: all equal.
        assert_eq!(ours, theirs, "{name}");
    }
}

#[test]
fn a_proxy_password_never_shows_in_debug_output() {
    let yaml = br#"
current-context: c
clusters:
- name: c
  cluster: {server: "https://10.0.0.1:6443", proxy-url: "http://proxyuser:pr0xy-pa55@proxy.example:3128"}
contexts:
- name: c
  context: {cluster: c}
"#;
    let kubeconfig = kube_proto::config::Kubeconfig::from_yaml(yaml, None).unwrap();
    let config =
        kube_proto::config::Config::from_kubeconfig(&kubeconfig, None, &mut |p| Err(format!("{}", p.display())))
            .unwrap();
    for shown in [format!("{kubeconfig:?}"), format!("{config:?}"), format!("{config:#?}")] {
        assert!(!shown.contains("pr0xy-pa55"), "{shown}");
        assert!(shown.contains("proxyuser"), "the rest of the URL is still shown: {shown}");
    }
    // The transport still gets the real URL.
    assert_eq!(config.proxy_url.unwrap().password(), Some("pr0xy-pa55"));
}

// ---------------------------------------------------------------------------------------------
// Files kubectl refuses, and files it reads, the same here
// ---------------------------------------------------------------------------------------------

#[test]
fn a_name_defined_twice_in_one_file_is_refused_naming_the_list_the_name_and_the_file() {
    for (list, yaml) in [
        (
            "clusters",
            "clusters:\n- name: k\n  cluster: {server: 'https://a'}\n- name: k\n  cluster: {server: 'https://b'}\n",
        ),
        (
            "contexts",
            "contexts:\n- name: k\n  context: {cluster: a}\n- name: other\n- name: k\n  context: {cluster: b}\n",
        ),
        ("users", "users:\n- name: k\n  user: {token: SECRET-a}\n- name: k\n  user: {token: SECRET-b}\n"),
    ] {
        let err = Kubeconfig::from_yaml(yaml.as_bytes(), Some(Path::new("/home/me/.kube/config"))).unwrap_err();
        assert_eq!(
            err,
            ConfigError::DuplicateName { file: "/home/me/.kube/config".into(), list, name: "k".into() },
            "{yaml}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "/home/me/.kube/config: invalid kubeconfig: duplicate name \"k\" in {list}; names must be unique within a file"
            )
        );
        assert!(!format!("{err} {err:?}").contains("SECRET-"));
    }
    // One name in each list is not a duplicate: the lists are separate.
    let yaml = b"clusters: [{name: k}]\ncontexts: [{name: k}]\nusers: [{name: k}]\n";
    assert_eq!(Kubeconfig::from_yaml(yaml, None).unwrap().clusters.len(), 1);
}

#[test]
fn a_name_defined_in_two_merged_files_is_not_a_duplicate_the_first_wins() {
    let a = Kubeconfig::from_yaml(b"clusters: [{name: k, cluster: {server: 'https://a'}}]\n", None).unwrap();
    let b = Kubeconfig::from_yaml(b"clusters: [{name: k, cluster: {server: 'https://b'}}]\n", None).unwrap();
    let merged = Kubeconfig::merge([a, b]);
    assert_eq!(merged.clusters.len(), 1);
    assert_eq!(merged.clusters[0].cluster.as_ref().unwrap().server.as_deref(), Some("https://a"));
}

/// A kubeconfig of `n` clusters, contexts and users, as a tool that manages a fleet writes it.
fn fleet_kubeconfig(n: usize) -> String {
    let mut yaml = String::from("apiVersion: v1\nkind: Config\ncurrent-context: ctx-0\nclusters:\n");
    for i in 0..n {
        yaml +=
            &format!("- name: cluster-{i}\n  cluster:\n    server: https://10.{}.{}.1:6443\n", i / 256 % 256, i % 256);
    }
    yaml += "contexts:\n";
    for i in 0..n {
        yaml += &format!("- name: ctx-{i}\n  context: {{cluster: cluster-{i}, user: user-{i}}}\n");
    }
    yaml += "users:\n";
    for i in 0..n {
        yaml += &format!("- name: user-{i}\n  user: {{token: t-{i}}}\n");
    }
    yaml
}

#[test]
fn a_5_mb_kubeconfig_of_71000_clusters_is_read_as_kubectl_reads_it() {
    let yaml = fleet_kubeconfig(71_000);
    assert!(yaml.len() > 5_000_000, "{} bytes", yaml.len());
    let kc = Kubeconfig::from_yaml(yaml.as_bytes(), Some(Path::new("/fleet/config")))
        .unwrap_or_else(|e| panic!("{}", e.to_string().chars().take(300).collect::<String>()));
    assert_eq!((kc.clusters.len(), kc.contexts.len(), kc.auth_infos.len()), (71_000, 71_000, 71_000));
    let c = Config::from_kubeconfig(&kc, Some("ctx-70999"), &mut read).unwrap();
    assert_eq!(c.cluster_url.as_str(), format!("https://10.{}.{}.1:6443/", 70_999 / 256 % 256, 70_999 % 256));
    assert!(matches!(&c.auth, AuthSpec::Token(t) if t.expose() == "t-70999"));
}

#[test]
fn an_alias_bomb_is_refused_with_an_error_that_says_so() {
    // Nine levels of nine aliases each: 387 million values from 30 lines.
    let mut bomb = String::from(
        "kind: Config\nextensions:\n- name: lol\n  extension:\n    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    for (prev, next) in ["a", "b", "c", "d", "e", "f", "g", "h"].iter().zip(["b", "c", "d", "e", "f", "g", "h", "i"]) {
        bomb += &format!("    {next}: &{next} [{}]\n", vec![format!("*{prev}"); 9].join(", "));
    }
    let err = Kubeconfig::from_yaml(bomb.as_bytes(), Some(Path::new("/k/bomb"))).unwrap_err();
    let ConfigError::Yaml { file, message, line, .. } = &err else { panic!("{err:?}") };
    assert_eq!(file, "/k/bomb");
    assert!(*line > 0, "{err}");
    assert_eq!(
        message,
        &format!(
            "the file expands to at least 250001 YAML values, more than its {} bytes hold without aliases (*name); aliases that expand a small file into a huge one (an alias bomb) are refused, as kubectl refuses them",
            bomb.len()
        )
    );
    // One long value, anchored once and copied by a thousand aliases, is refused too.
    let long = "x".repeat(100_000);
    let copies = "  - *big\n".repeat(1_000);
    let quadratic = format!("kind: Config\npreferences:\n  big: &big {long}\n  copies:\n{copies}");
    let err = Kubeconfig::from_yaml(quadratic.as_bytes(), None).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("bytes of text, more than its {} bytes hold without aliases", quadratic.len())),
        "{err}"
    );
    // A few aliases, as people write by hand, are fine.
    let yaml = b"clusters:\n- name: a\n  cluster: &c {server: 'https://a'}\n- name: b\n  cluster: *c\n";
    let kc = Kubeconfig::from_yaml(yaml, None).unwrap();
    assert_eq!(kc.clusters[1].cluster, kc.clusters[0].cluster);
}

fn yaml_error(yaml: &str) -> (Option<String>, String, String) {
    let err = Kubeconfig::from_yaml(yaml.as_bytes(), Some(Path::new("/k/config"))).expect_err(yaml);
    let ConfigError::Yaml { field, message, .. } = &err else { panic!("{err:?}") };
    (field.clone(), message.clone(), err.to_string())
}

#[test]
fn an_exec_section_without_command_names_the_field_with_the_user_name() {
    let (field, message, shown) =
        yaml_error("users:\n- name: dev\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n");
    assert_eq!(field.as_deref(), Some("users[dev].user.exec.command"));
    assert_eq!(message, "missing (it is required)");
    assert!(shown.starts_with("/k/config:"), "{shown}");
    assert!(shown.ends_with(": invalid kubeconfig: users[dev].user.exec.command: missing (it is required)"), "{shown}");
    // An entry without a name is named by its index.
    let (field, ..) = yaml_error("users:\n- name: a\n- user:\n    exec: {args: [x]}\n");
    assert_eq!(field.as_deref(), Some("users[1].user.exec.command"));
    let (field, ..) = yaml_error("clusters:\n- cluster: {server: x}\n");
    assert_eq!(field.as_deref(), Some("clusters[0].name"));
}

#[test]
fn a_value_of_the_wrong_type_names_its_field_path() {
    let (field, message, _) = yaml_error("clusters: \"oops\"\n");
    assert_eq!(field.as_deref(), Some("clusters"));
    assert_eq!(message, "expected sequence start");
    let (field, ..) = yaml_error("contexts:\n- name: prod\n  context: {cluster: c, namespace: [a]}\n");
    assert_eq!(field.as_deref(), Some("contexts[prod].context.namespace"));
    let (field, message, shown) = yaml_error(
        "users:\n- name: u\n  user:\n    exec:\n      command: c\n      env: [{name: A, value: [SECRET-v]}]\n",
    );
    assert_eq!(field.as_deref(), Some("users[u].user.exec.env[0].value"));
    assert!(!format!("{message} {shown}").contains("SECRET-"), "{shown}");
}

#[test]
fn a_numeric_token_is_refused_as_kubectl_refuses_it_and_a_quoted_one_is_text() {
    let user = |token: &str| format!("users:\n- name: u\n  user:\n    token: {token}\n");
    let (field, message, shown) = yaml_error(&user("12345"));
    assert_eq!(field.as_deref(), Some("users[u].user.token"));
    assert_eq!(
        message,
        "a number, boolean or null where text is expected (kubectl refuses it too); quote the value to make it text"
    );
    assert!(!shown.contains("12345"), "the token is not shown: {shown}");
    for plain in ["1e3", "0x1F", "true", "yes", "-7", ".5"] {
        assert_eq!(yaml_error(&user(plain)).0.as_deref(), Some("users[u].user.token"), "{plain}");
    }
    for quoted in ["\"12345\"", "'12345'", "!!str 12345"] {
        let kc = Kubeconfig::from_yaml(user(quoted).as_bytes(), None).unwrap();
        assert_eq!(kc.auth_infos[0].auth_info.as_ref().unwrap().token.as_ref().unwrap().expose(), "12345");
    }
    // Every text field: names, namespaces, exec arguments.
    let (field, ..) = yaml_error("contexts:\n- name: 2024\n  context: {cluster: c}\n");
    assert_eq!(field.as_deref(), Some("contexts[2024].name"));
    let (field, ..) = yaml_error("contexts:\n- name: c\n  context: {cluster: c, namespace: 42}\n");
    assert_eq!(field.as_deref(), Some("contexts[c].context.namespace"));
    let (field, ..) = yaml_error("users:\n- name: u\n  user:\n    exec: {command: c, args: [--port, 8080]}\n");
    assert_eq!(field.as_deref(), Some("users[u].user.exec.args[1]"));
    // Booleans and empty values where they belong are fine.
    let kc = Kubeconfig::from_yaml(b"clusters:\n- name: c\n  cluster: {server: 'https://c', insecure-skip-tls-verify: true, proxy-url: ~}\ncontexts: null\n", None).unwrap();
    assert_eq!(kc.clusters[0].cluster.as_ref().unwrap().insecure_skip_tls_verify, Some(true));
}

#[cfg(unix)]
#[test]
fn a_relative_exec_command_under_a_folder_whose_name_is_not_utf8_stays_a_path() {
    use std::os::unix::ffi::OsStrExt as _;
    let dir = Path::new(std::ffi::OsStr::from_bytes(b"/home/caf\xe9/.kube"));
    let yaml = b"clusters:\n- name: c\n  cluster: {server: 'https://c'}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user:\n    exec: {command: bin/cred, apiVersion: client.authentication.k8s.io/v1, interactiveMode: Never}\n";
    let kc = Kubeconfig::from_yaml(yaml, Some(&dir.join("config"))).unwrap();
    let config = Config::from_kubeconfig(&kc, None, &mut |p| Err(format!("no {}", p.display()))).unwrap();
    let mut auth = Auth::new(&config.auth, None);
    let AuthAction::Exec(request) = auth.poll(std::time::SystemTime::UNIX_EPOCH) else { panic!("an exec") };
    assert_eq!(request.command, dir.join("bin/cred"), "byte for byte, not a lossy rendering");
}

#[cfg(unix)]
#[test]
fn relative_paths_under_a_folder_whose_name_is_not_utf8_stay_paths() {
    use std::os::unix::ffi::OsStrExt as _;
    let dir = Path::new(std::ffi::OsStr::from_bytes(b"/home/caf\xe9/.kube"));
    let yaml = b"clusters:\n- name: c\n  cluster: {server: 'https://c', certificate-authority: pki/ca.crt}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {client-certificate: u.crt, client-key: u.key, tokenFile: t}\n";
    let kc = Kubeconfig::from_yaml(yaml, Some(&dir.join("config"))).unwrap();
    let user = kc.auth_infos[0].auth_info.as_ref().unwrap();
    assert_eq!(
        kc.clusters[0].cluster.as_ref().unwrap().certificate_authority.as_deref(),
        Some(&*dir.join("pki/ca.crt"))
    );
    assert_eq!(user.client_certificate.as_deref(), Some(&*dir.join("u.crt")));
    assert_eq!(user.token_file.as_deref(), Some(&*dir.join("t")));
    assert_eq!(kc.referenced_files(None).unwrap(), [dir.join("pki/ca.crt"), dir.join("u.crt"), dir.join("u.key")]);
    // The files asked for are the real ones, byte for byte.
    let mut asked = Vec::new();
    let err = Config::from_kubeconfig(&kc, None, &mut |p| {
        asked.push(p.to_path_buf());
        Err("not here".into())
    })
    .unwrap_err();
    assert_eq!(asked, [dir.join("pki/ca.crt")]);
    assert!(
        matches!(err, ConfigError::ReadFile { ref field, .. } if field == "clusters[c].cluster.certificate-authority"),
        "{err:?}"
    );
}
