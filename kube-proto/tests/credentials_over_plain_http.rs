//! Credentials are never sent over plain HTTP: with an `http://` server, kubectl reads no user
//! from the kubeconfig (clientcmd applies auth info only to a TLS server), so it sends no
//! `Authorization` header and runs no exec plugin. `Config::withhold_plain_http_credentials`
//! applies the same rule, with an opt-in for test servers on a loopback address only.

use std::path::PathBuf;

use kube_proto::config::{
    AuthSpec, Config, ExecCluster, ExecConfig, Identity, Impersonation, Kubeconfig, SecretString,
};

const CERT: &str = "-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n";
const KEY: &str = "-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n";

fn config(url: &str, auth: AuthSpec) -> Config {
    Config { auth, ..Config::new(url.parse().unwrap()) }
}

fn token() -> AuthSpec {
    AuthSpec::Token(SecretString::new("s3cr3t-token"))
}

#[test]
fn a_token_is_withheld_from_a_plain_http_server() {
    let mut c = config("http://10.0.0.1:8080", token());
    let why = c.withhold_plain_http_credentials().expect("withheld");
    assert_eq!(c.auth, AuthSpec::None);
    assert_eq!(why.server, "http://10.0.0.1:8080");
    assert_eq!(why.withheld, ["token"]);
    let message = why.to_string();
    assert!(message.contains("plain HTTP") && message.contains("https://"), "{message}");
    assert!(!message.contains("s3cr3t"), "{message}");
}

#[test]
fn credentials_are_kept_for_an_https_server() {
    let mut c = config("https://10.0.0.1:6443", token());
    assert_eq!(c.withhold_plain_http_credentials(), None);
    assert_eq!(c.auth, token());
}

#[test]
fn nothing_is_reported_without_credentials() {
    let mut c = Config::new("http://10.0.0.1:8080".parse().unwrap());
    assert_eq!(c.withhold_plain_http_credentials(), None);
}

#[test]
fn every_kind_of_credential_is_withheld_and_named() {
    let exec = ExecConfig { command: "plugin".into(), ..ExecConfig::default() };
    let cases = [
        (AuthSpec::Basic { username: "me".into(), password: SecretString::new("pw") }, "basic auth"),
        (AuthSpec::TokenFile(PathBuf::from("/var/run/token")), "tokenFile"),
        (AuthSpec::Exec { exec: Box::new(exec), cluster: ExecCluster::default() }, "exec plugin"),
    ];
    for (auth, name) in cases {
        let mut c = config("http://api.example:80", auth);
        let why = c.withhold_plain_http_credentials().expect("withheld");
        assert_eq!(why.withheld, [name]);
        assert_eq!(c.auth, AuthSpec::None, "{name}");
    }
    let mut c = config("http://me:pw@api.example", token());
    c.identity = Some(Identity::from_pem(CERT.into(), KEY.into(), "test").unwrap());
    c.impersonation = Some(Impersonation { user: Some("admin".into()), ..Impersonation::default() });
    let why = c.withhold_plain_http_credentials().expect("withheld");
    assert_eq!(why.withheld, ["token", "client certificate", "impersonation", "URL user info"]);
    assert_eq!((c.identity, c.impersonation), (None, None));
    assert_eq!(c.cluster_url.as_str(), "http://api.example/");
    assert_eq!(why.server, "http://api.example:80");
}

#[test]
fn the_loopback_opt_in_sends_credentials_to_loopback_addresses_only() {
    for url in [
        "http://127.0.0.1:8080",
        "http://127.8.9.10",
        "http://[::1]:8080",
        "http://localhost:8080",
        "http://LOCALHOST.",
    ] {
        let mut c = Config { send_credentials_over_loopback_http: true, ..config(url, token()) };
        assert_eq!(c.withhold_plain_http_credentials(), None, "{url}");
        assert_eq!(c.auth, token(), "{url}");
    }
    for url in
        ["http://10.0.0.1", "http://192.168.1.2:8080", "http://api.localhost", "http://[fe80::1]", "http://example.com"]
    {
        let mut c = Config { send_credentials_over_loopback_http: true, ..config(url, token()) };
        assert!(c.withhold_plain_http_credentials().is_some(), "{url}");
    }
    // Without the opt-in, loopback is plain HTTP like any other address.
    let mut c = config("http://127.0.0.1:8080", token());
    assert!(c.withhold_plain_http_credentials().is_some());
}

#[test]
fn a_kubeconfig_with_an_http_server_yields_no_credentials_once_withheld() {
    let yaml = br#"
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: c
  cluster: {server: "http://10.0.0.1:8080"}
contexts:
- name: dev
  context: {cluster: c, user: u}
users:
- name: u
  user:
    token: s3cr3t
    as: admin
"#;
    let kubeconfig = Kubeconfig::from_yaml(yaml, None).unwrap();
    let mut c = Config::from_kubeconfig(&kubeconfig, None, &mut |p| Err(format!("no file {}", p.display()))).unwrap();
    assert!(!c.send_credentials_over_loopback_http, "never set from a kubeconfig");
    let why = c.withhold_plain_http_credentials().expect("withheld");
    assert_eq!(why.withheld, ["token", "impersonation"]);
}
