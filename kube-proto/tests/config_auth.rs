//! The sans-io auth state ([`Auth`]): static tokens and basic auth, token files re-read as
//! they rotate, exec credential plugins (`KUBERNETES_EXEC_INFO`, interactive mode, expiry,
//! failures), the OIDC and gcp auth-providers, and in-cluster configuration from values. Time
//! is an argument: every test picks its own `now`.

// The tests read the fixture certificates; the code under test is handed their bytes.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use http::{Method, StatusCode};
use kube_proto::config::auth::{EXPIRY_MARGIN, ExecOutput, ExecRequest, TOKEN_FILE_REFRESH, exec_request};
use kube_proto::config::kubeconfig::ExecEnvVar;
use kube_proto::config::{
    Auth, AuthAction, AuthProviderConfig, AuthSpec, Config, ConfigError, Credentials, ExecCluster, ExecConfig,
    Identity, SecretString,
};
use serde_json::{Value, json};

const V1: &str = "client.authentication.k8s.io/v1";
const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    k8s_openapi::jiff::Timestamp::from_second(secs as i64).unwrap().to_string()
}

fn fixture(rel: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kubeconfig").join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn identity(name: &str) -> Identity {
    Identity::from_pem(fixture(&format!("pki/{name}.crt")), fixture(&format!("pki/{name}.key")), "test").unwrap()
}

fn ready(auth: &mut Auth, now: SystemTime) -> Credentials {
    match auth.poll(now) {
        AuthAction::Ready(c) => c,
        other => panic!("expected Ready, got {other:?}"),
    }
}

fn failed(auth: &mut Auth, now: SystemTime) -> ConfigError {
    match auth.poll(now) {
        AuthAction::Failed(e) => e,
        other => panic!("expected Failed, got {other:?}"),
    }
}

fn read_file(auth: &mut Auth, now: SystemTime) -> PathBuf {
    match auth.poll(now) {
        AuthAction::ReadFile(p) => p,
        other => panic!("expected ReadFile, got {other:?}"),
    }
}

fn exec(auth: &mut Auth, now: SystemTime) -> ExecRequest {
    match auth.poll(now) {
        AuthAction::Exec(r) => r,
        other => panic!("expected Exec, got {other:?}"),
    }
}

fn http(auth: &mut Auth, now: SystemTime) -> http::Request<Vec<u8>> {
    match auth.poll(now) {
        AuthAction::Http(r) => r,
        other => panic!("expected Http, got {other:?}"),
    }
}

fn bearer(c: &Credentials) -> &str {
    c.authorization.as_ref().expect("an Authorization header").expose()
}

// ---------------------------------------------------------------------------------------------
// Static credentials
// ---------------------------------------------------------------------------------------------

#[test]
fn token_is_sent_as_bearer() {
    let mut auth = Auth::new(&AuthSpec::Token("abc.def".into()), None);
    let c = ready(&mut auth, t0());
    assert_eq!(bearer(&c), "Bearer abc.def");
    assert_eq!(c.identity, None);
    let h = c.authorization_header().unwrap();
    assert!(h.is_sensitive());
    assert_eq!(h, "Bearer abc.def");
    assert!(!format!("{c:?} {h:?} {auth:?}").contains("abc.def"));
    // A 401 cannot be helped by a fixed token.
    assert!(!auth.on_unauthorized(t0()));
    assert_eq!(bearer(&ready(&mut auth, t0())), "Bearer abc.def");
}

#[test]
fn basic_auth_header_value() {
    let spec = AuthSpec::Basic { username: "admin".into(), password: "p@ss:wörd".into() };
    let c = ready(&mut Auth::new(&spec, None), t0());
    let expected = base64::engine::general_purpose::STANDARD.encode("admin:p@ss:wörd");
    assert_eq!(bearer(&c), format!("Basic {expected}"));
    assert_eq!(bearer(&c), "Basic YWRtaW46cEBzczp3w7ZyZA==");
}

#[test]
fn no_credentials_or_only_a_client_certificate() {
    let c = ready(&mut Auth::new(&AuthSpec::None, None), t0());
    assert_eq!(c, Credentials::default());
    let id = identity("client-ec");
    let mut auth = Auth::new(&AuthSpec::None, Some(id.clone()));
    let c = ready(&mut auth, t0());
    assert_eq!((c.authorization, c.identity), (None, Some(id.clone())));
    assert!(!auth.on_unauthorized(t0()));
    // A token and the kubeconfig's client certificate go together.
    let c = ready(&mut Auth::new(&AuthSpec::Token("t".into()), Some(id.clone())), t0());
    assert_eq!(c.identity, Some(id));
}

// ---------------------------------------------------------------------------------------------
// Token files
// ---------------------------------------------------------------------------------------------

#[test]
fn token_file_is_read_then_re_read_after_the_refresh_period() {
    let path = PathBuf::from("/var/run/secrets/token");
    let mut auth = Auth::new(&AuthSpec::TokenFile(path.clone()), None);
    let now = t0();
    assert_eq!(read_file(&mut auth, now), path);
    auth.on_file(now, &path, Ok(b"  first\n".to_vec()));
    assert_eq!(bearer(&ready(&mut auth, now)), "Bearer first", "trimmed");
    // Cached until TOKEN_FILE_REFRESH has passed.
    let almost = now + TOKEN_FILE_REFRESH - Duration::from_millis(1);
    assert_eq!(bearer(&ready(&mut auth, almost)), "Bearer first");
    let later = now + TOKEN_FILE_REFRESH;
    assert_eq!(read_file(&mut auth, later), path);
    // Rotation: the new content is used.
    auth.on_file(later, &path, Ok(b"second".to_vec()));
    assert_eq!(bearer(&ready(&mut auth, later)), "Bearer second");
    assert_eq!(bearer(&ready(&mut auth, later + Duration::from_secs(30))), "Bearer second");
}

#[test]
fn token_file_is_re_read_at_once_after_a_401() {
    let path = PathBuf::from("/t");
    let mut auth = Auth::new(&AuthSpec::TokenFile(path.clone()), None);
    let now = t0();
    read_file(&mut auth, now);
    auth.on_file(now, &path, Ok(b"old".to_vec()));
    assert_eq!(bearer(&ready(&mut auth, now)), "Bearer old");
    assert!(auth.on_unauthorized(t0()), "re-reading may help");
    let soon = now + Duration::from_secs(1);
    assert_eq!(read_file(&mut auth, soon), path);
    auth.on_file(soon, &path, Ok(b"new".to_vec()));
    assert_eq!(bearer(&ready(&mut auth, soon)), "Bearer new");
}

#[test]
fn a_failing_re_read_keeps_the_old_token_briefly() {
    let path = PathBuf::from("/t");
    let mut auth = Auth::new(&AuthSpec::TokenFile(path.clone()), None);
    let now = t0();
    read_file(&mut auth, now);
    auth.on_file(now, &path, Ok(b"old".to_vec()));
    let later = now + TOKEN_FILE_REFRESH;
    read_file(&mut auth, later);
    auth.on_file(later, &path, Err("No such file or directory".into()));
    // The file is being replaced: the previous token is still sent, for a few seconds.
    assert_eq!(bearer(&ready(&mut auth, later)), "Bearer old");
    assert_eq!(bearer(&ready(&mut auth, later + Duration::from_secs(4))), "Bearer old");
    let retry = later + Duration::from_secs(5);
    assert_eq!(read_file(&mut auth, retry), path);
    auth.on_file(retry, &path, Ok(b"rotated".to_vec()));
    assert_eq!(bearer(&ready(&mut auth, retry)), "Bearer rotated");
}

#[test]
fn a_failing_first_read_or_an_empty_file_is_an_error_and_polling_retries() {
    let path = PathBuf::from("/t");
    let mut auth = Auth::new(&AuthSpec::TokenFile(path.clone()), None);
    let now = t0();
    read_file(&mut auth, now);
    auth.on_file(now, &path, Err("permission denied".into()));
    let err = failed(&mut auth, now);
    assert_eq!(
        err,
        ConfigError::ReadFile { field: "tokenFile".into(), path: "/t".into(), message: "permission denied".into() }
    );
    assert_eq!(err.to_string(), "tokenFile: cannot read /t: permission denied");
    assert_eq!(read_file(&mut auth, now), path, "the next poll tries again");
    auth.on_file(now, &path, Ok(b" \n".to_vec()));
    let err = failed(&mut auth, now);
    assert!(matches!(&err, ConfigError::ReadFile { message, .. } if message == "the file is empty"), "{err:?}");
    // Another path's contents are not this token.
    read_file(&mut auth, now);
    auth.on_file(now, Path::new("/other"), Ok(b"x".to_vec()));
    assert_eq!(read_file(&mut auth, now), path);
}

#[test]
fn token_file_keeps_the_kubeconfig_client_certificate() {
    let path = PathBuf::from("/t");
    let id = identity("client-rsa");
    let mut auth = Auth::new(&AuthSpec::TokenFile(path.clone()), Some(id.clone()));
    read_file(&mut auth, t0());
    auth.on_file(t0(), &path, Ok(b"tok".to_vec()));
    assert_eq!(ready(&mut auth, t0()).identity, Some(id));
}

// ---------------------------------------------------------------------------------------------
// Exec plugins: the request
// ---------------------------------------------------------------------------------------------

fn exec_config(api_version: &str, interactive_mode: Option<&str>) -> ExecConfig {
    ExecConfig {
        command: "/usr/local/bin/cred".into(),
        args: vec!["get-token".into(), "--cluster=prod".into()],
        env: vec![ExecEnvVar { name: "PROFILE".into(), value: "prod".into() }],
        api_version: Some(api_version.into()),
        install_hint: Some("brew install cred".into()),
        provide_cluster_info: false,
        interactive_mode: interactive_mode.map(str::to_owned),
    }
}

fn cluster() -> ExecCluster {
    ExecCluster {
        server: "https://k8s.example:6443".into(),
        tls_server_name: Some("kubernetes".into()),
        insecure_skip_tls_verify: false,
        certificate_authority_data: Some(fixture("pki/ca.crt")),
        proxy_url: Some("http://proxy:3128".into()),
        disable_compression: true,
    }
}

fn exec_spec(exec: ExecConfig) -> AuthSpec {
    AuthSpec::Exec { exec: Box::new(exec), cluster: cluster() }
}

fn exec_info(req: &ExecRequest) -> Value {
    let (_, v) = req.env.iter().find(|(k, _)| k == "KUBERNETES_EXEC_INFO").expect("KUBERNETES_EXEC_INFO");
    serde_json::from_str(v.expose()).unwrap()
}

#[test]
fn exec_v1_request_with_exec_info() {
    let mut auth = Auth::new(&exec_spec(exec_config(V1, Some("Never"))), None);
    let req = exec(&mut auth, t0());
    assert_eq!(req.command, Path::new("/usr/local/bin/cred"));
    assert_eq!(req.args, ["get-token", "--cluster=prod"]);
    assert_eq!(req.env[0], ("PROFILE".to_owned(), SecretString::from("prod")));
    assert_eq!(req.env.len(), 2);
    assert!(!req.interactive);
    assert_eq!(req.install_hint.as_deref(), Some("brew install cred"));
    assert_eq!(exec_info(&req), json!({"apiVersion": V1, "kind": "ExecCredential", "spec": {"interactive": false}}));
}

#[test]
fn exec_v1beta1_with_cluster_info() {
    let mut config = exec_config(V1BETA1, None);
    config.provide_cluster_info = true;
    let req = exec(&mut Auth::new(&exec_spec(config), None), t0());
    let ca = base64::engine::general_purpose::STANDARD.encode(fixture("pki/ca.crt"));
    assert_eq!(
        exec_info(&req),
        json!({
            "apiVersion": V1BETA1,
            "kind": "ExecCredential",
            "spec": {
                "interactive": false,
                "cluster": {
                    "server": "https://k8s.example:6443",
                    "tls-server-name": "kubernetes",
                    "certificate-authority-data": ca,
                    "proxy-url": "http://proxy:3128",
                    "disable-compression": true,
                },
            },
        })
    );
    // The CA in the JSON is the PEM, base64 (as client-go's []byte).
    let info = exec_info(&req);
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(info["spec"]["cluster"]["certificate-authority-data"].as_str().unwrap());
    assert_eq!(decoded.unwrap(), fixture("pki/ca.crt"));

    let insecure =
        ExecCluster { insecure_skip_tls_verify: true, certificate_authority_data: None, ..ExecCluster::default() };
    let mut config = exec_config(V1, Some("Never"));
    config.provide_cluster_info = true;
    let req = exec_request(&config, &insecure, false).unwrap();
    assert_eq!(exec_info(&req)["spec"]["cluster"], json!({"server": "", "insecure-skip-tls-verify": true}));
}

#[test]
fn interactive_mode_rules() {
    // (apiVersion, interactiveMode, terminal) -> Ok(interactive) or the error's words.
    type Case = (&'static str, Option<&'static str>, bool, Result<bool, &'static str>);
    let cases: &[Case] = &[
        (V1, None, true, Err("interactiveMode is required")),
        (V1, Some("Never"), true, Ok(false)),
        (V1, Some("Never"), false, Ok(false)),
        (V1, Some("IfAvailable"), true, Ok(true)),
        (V1, Some("IfAvailable"), false, Ok(false)),
        (V1, Some("Always"), true, Ok(true)),
        (V1, Some("Always"), false, Err("no terminal")),
        (V1, Some("Sometimes"), true, Err("not one of Never, IfAvailable, Always")),
        (V1BETA1, None, true, Ok(true)),
        (V1BETA1, None, false, Ok(false)),
        (V1BETA1, Some("Never"), true, Ok(false)),
        (V1BETA1, Some("Always"), false, Err("no terminal")),
        ("client.authentication.k8s.io/v1alpha1", Some("Never"), true, Err("is not supported")),
    ];
    for (api, mode, terminal, want) in cases {
        let mut auth = Auth::new(&exec_spec(exec_config(api, *mode)), None).with_terminal(*terminal);
        match (auth.poll(t0()), want) {
            (AuthAction::Exec(req), Ok(interactive)) => {
                assert_eq!(req.interactive, *interactive, "{api} {mode:?} terminal={terminal}");
                assert_eq!(exec_info(&req)["spec"]["interactive"], json!(interactive));
            }
            (AuthAction::Failed(e), Err(words)) => {
                let ConfigError::Exec { command, message, install_hint } = &e else { panic!("{e:?}") };
                assert!(message.contains(words), "{api} {mode:?}: {message}");
                assert_eq!(
                    (command.as_str(), install_hint.as_deref()),
                    ("/usr/local/bin/cred", Some("brew install cred"))
                );
            }
            (other, _) => panic!("{api} {mode:?} terminal={terminal}: {other:?}, wanted {want:?}"),
        }
    }
    let mut no_version = exec_config(V1, Some("Never"));
    no_version.api_version = None;
    let e = exec_request(&no_version, &cluster(), false).unwrap_err();
    assert!(e.to_string().contains("apiVersion \"\" is not supported"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Exec plugins: the output
// ---------------------------------------------------------------------------------------------

fn printed(stdout: impl Into<Vec<u8>>) -> ExecOutput {
    ExecOutput { status: Some(0), stdout: stdout.into(), stderr: Vec::new() }
}

fn credential(api_version: &str, status: Value) -> ExecOutput {
    printed(json!({"apiVersion": api_version, "kind": "ExecCredential", "status": status}).to_string())
}

fn exec_auth(base: Option<Identity>) -> Auth {
    Auth::new(&exec_spec(exec_config(V1, Some("Never"))), base)
}

#[test]
fn exec_credential_with_a_token() {
    let base = identity("client-rsa");
    let mut auth = exec_auth(Some(base.clone()));
    exec(&mut auth, t0());
    auth.on_exec(t0(), credential(V1, json!({"token": "plugin-token"})));
    let c = ready(&mut auth, t0());
    assert_eq!(bearer(&c), "Bearer plugin-token");
    assert_eq!(c.identity, Some(base), "the kubeconfig's certificate stays");
    // No expiry: cached until a 401.
    assert_eq!(bearer(&ready(&mut auth, t0() + Duration::from_secs(10 * 365 * 86400))), "Bearer plugin-token");
    assert!(auth.on_unauthorized(t0()));
    exec(&mut auth, t0());
    auth.on_exec(t0(), credential(V1, json!({"token": "second-token"})));
    assert_eq!(bearer(&ready(&mut auth, t0())), "Bearer second-token");
}

#[test]
fn exec_credential_with_a_client_certificate() {
    let ec = identity("client-ec");
    let pkcs8 = identity("client-pkcs8");
    let mut auth = exec_auth(Some(identity("client-rsa")));
    exec(&mut auth, t0());
    auth.on_exec(
        t0(),
        credential(
            V1,
            json!({
                "clientCertificateData": String::from_utf8(fixture("pki/client-ec.crt")).unwrap(),
                "clientKeyData": String::from_utf8(fixture("pki/client-ec.key")).unwrap(),
            }),
        ),
    );
    let c = ready(&mut auth, t0());
    assert_eq!(c.authorization, None);
    assert_eq!(c.identity, Some(ec), "the plugin's certificate replaces the kubeconfig's");
    // A token and a certificate together (v1beta1).
    let mut auth = Auth::new(&exec_spec(exec_config(V1BETA1, None)), None);
    exec(&mut auth, t0());
    auth.on_exec(
        t0(),
        credential(
            V1BETA1,
            json!({
                "token": "both",
                "clientCertificateData": String::from_utf8(fixture("pki/client-pkcs8.crt")).unwrap(),
                "clientKeyData": String::from_utf8(fixture("pki/client-pkcs8.key")).unwrap(),
            }),
        ),
    );
    let c = ready(&mut auth, t0());
    assert_eq!((bearer(&c), c.identity.as_ref()), ("Bearer both", Some(&pkcs8)));
}

#[test]
fn exec_expiration_timestamp_is_honoured() {
    let mut auth = exec_auth(None);
    let now = t0();
    let expiry = now + Duration::from_secs(3600);
    exec(&mut auth, now);
    auth.on_exec(t0(), credential(V1, json!({"token": "hour", "expirationTimestamp": rfc3339(expiry)})));
    assert_eq!(bearer(&ready(&mut auth, now)), "Bearer hour");
    let just_before = expiry - EXPIRY_MARGIN - Duration::from_millis(1);
    assert_eq!(bearer(&ready(&mut auth, just_before)), "Bearer hour");
    // Renewed EXPIRY_MARGIN before it expires.
    let renew = expiry - EXPIRY_MARGIN;
    let req = exec(&mut auth, renew);
    assert_eq!(req.command, Path::new("/usr/local/bin/cred"));
    auth.on_exec(
        t0(),
        credential(V1, json!({"token": "next", "expirationTimestamp": rfc3339(renew + Duration::from_secs(3600))})),
    );
    assert_eq!(bearer(&ready(&mut auth, renew)), "Bearer next");
}

#[test]
fn exec_credentials_that_are_already_due_are_used_once_not_re_run_forever() {
    let mut auth = exec_auth(None);
    let now = t0();
    exec(&mut auth, now);
    // Expires within the margin (or has expired): still used for the request that ran it...
    auth.on_exec(
        t0(),
        credential(V1, json!({"token": "short", "expirationTimestamp": rfc3339(now + Duration::from_secs(5))})),
    );
    assert_eq!(bearer(&ready(&mut auth, now)), "Bearer short");
    // ...and the next request runs the plugin again.
    exec(&mut auth, now);
    auth.on_exec(t0(), credential(V1, json!({"token": "old", "expirationTimestamp": "0001-01-01T00:00:00Z"})));
    assert_eq!(bearer(&ready(&mut auth, now)), "Bearer old");
    exec(&mut auth, now);
}

#[test]
fn exec_on_unauthorized_forces_a_refresh_before_expiry() {
    let mut auth = exec_auth(None);
    exec(&mut auth, t0());
    auth.on_exec(
        t0(),
        credential(V1, json!({"token": "a", "expirationTimestamp": rfc3339(t0() + Duration::from_secs(3600))})),
    );
    ready(&mut auth, t0());
    assert!(auth.on_unauthorized(t0()));
    exec(&mut auth, t0());
}

#[test]
fn exec_non_zero_exit_gives_stderr_and_install_hint() {
    let mut auth = exec_auth(None);
    exec(&mut auth, t0());
    auth.on_exec(
        t0(),
        ExecOutput { status: Some(1), stdout: b"partial".to_vec(), stderr: b"error: login required\n".to_vec() },
    );
    let err = failed(&mut auth, t0());
    assert_eq!(
        err,
        ConfigError::Exec {
            command: "/usr/local/bin/cred".into(),
            message: "exited with status 1: error: login required".into(),
            install_hint: Some("brew install cred".into()),
        }
    );
    assert_eq!(
        err.to_string(),
        "exec plugin \"/usr/local/bin/cred\": exited with status 1: error: login required\nbrew install cred"
    );
    // Polling again runs it again.
    exec(&mut auth, t0());
    auth.on_exec(t0(), ExecOutput { status: None, stdout: Vec::new(), stderr: Vec::new() });
    let err = failed(&mut auth, t0());
    assert!(err.to_string().contains("was killed by a signal"), "{err}");
}

#[test]
fn exec_command_that_cannot_be_started() {
    let mut auth = exec_auth(None);
    exec(&mut auth, t0());
    auth.on_exec_failed(t0(), "No such file or directory (os error 2)");
    let err = failed(&mut auth, t0());
    assert_eq!(
        err,
        ConfigError::Exec {
            command: "/usr/local/bin/cred".into(),
            message: "No such file or directory (os error 2)".into(),
            install_hint: Some("brew install cred".into()),
        }
    );
    assert!(err.to_string().ends_with("\nbrew install cred"));
}

#[test]
fn exec_invalid_output_is_a_clear_error_without_the_output() {
    let cert = String::from_utf8(fixture("pki/client-ec.crt")).unwrap();
    let key = String::from_utf8(fixture("pki/client-ec.key")).unwrap();
    let cases: Vec<(ExecOutput, &str)> = vec![
        (
            printed(r#"{"apiVersion": "client.authentication.k8s.io/v1", "status": {"token": "SECRET-truncated"#),
            "invalid ExecCredential JSON",
        ),
        (printed("SECRET-not-json"), "invalid ExecCredential JSON (line 1, column 1)"),
        (printed(""), "invalid ExecCredential JSON"),
        (
            credential(V1BETA1, json!({"token": "SECRET-wrong-version"})),
            "printed apiVersion \"client.authentication.k8s.io/v1beta1\", but \"client.authentication.k8s.io/v1\" was asked for",
        ),
        (
            printed(json!({"apiVersion": V1, "kind": "Secret", "status": {"token": "SECRET-kind"}}).to_string()),
            "printed kind \"Secret\", not ExecCredential",
        ),
        (printed(json!({"apiVersion": V1, "kind": "ExecCredential"}).to_string()), "has no status"),
        (credential(V1, json!({"token": ""})), "neither a token nor a client certificate"),
        (credential(V1, json!({})), "neither a token nor a client certificate"),
        (credential(V1, json!({"clientCertificateData": cert})), "only one of clientCertificateData and clientKeyData"),
        (credential(V1, json!({"clientKeyData": key})), "only one of clientCertificateData and clientKeyData"),
        (
            credential(V1, json!({"token": "SECRET-t", "expirationTimestamp": "tomorrow"})),
            "expirationTimestamp \"tomorrow\" is not RFC 3339",
        ),
        (credential(V1, json!({"token": {"SECRET-object": 1}})), "invalid ExecCredential JSON"),
    ];
    for (output, words) in cases {
        let mut auth = exec_auth(None);
        exec(&mut auth, t0());
        auth.on_exec(t0(), output.clone());
        let err = failed(&mut auth, t0());
        let shown = format!("{err} {err:?}");
        assert!(matches!(err, ConfigError::Exec { .. }), "{err:?}");
        assert!(shown.contains(words), "{:?}: {shown}", String::from_utf8_lossy(&output.stdout));
        assert!(!shown.contains("SECRET-"), "{shown}");
        assert!(!shown.contains(key.lines().nth(1).unwrap()));
    }
    // A certificate or key that does not parse.
    let mut auth = exec_auth(None);
    exec(&mut auth, t0());
    auth.on_exec(t0(), credential(V1, json!({"clientCertificateData": key, "clientKeyData": key})));
    let err = failed(&mut auth, t0());
    assert!(
        matches!(&err, ConfigError::Pem { field, .. } if field == "ExecCredential.status.client-certificate"),
        "{err:?}"
    );
    auth.poll(t0());
    auth.on_exec(t0(), credential(V1, json!({"clientCertificateData": cert, "clientKeyData": cert})));
    let err = failed(&mut auth, t0());
    assert!(matches!(&err, ConfigError::Pem { field, .. } if field == "ExecCredential.status.client-key"), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// OIDC
// ---------------------------------------------------------------------------------------------

fn jwt(exp: SystemTime, marker: &str) -> String {
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let exp = exp.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(json!({"alg": "RS256"})),
        b64(json!({"iss": "https://issuer.example", "exp": exp, "m": marker}))
    )
}

fn oidc(entries: &[(&str, &str)]) -> Auth {
    let config: BTreeMap<String, SecretString> =
        entries.iter().map(|(k, v)| (k.to_string(), SecretString::from(*v))).collect();
    Auth::new(&AuthSpec::AuthProvider(AuthProviderConfig { name: "oidc".into(), config }), None)
}

#[test]
fn oidc_valid_id_token_is_used() {
    let token = jwt(t0() + Duration::from_secs(600), "valid");
    let mut auth =
        oidc(&[("id-token", &token), ("client-id", "kubernetes"), ("idp-issuer-url", "https://issuer.example")]);
    assert_eq!(bearer(&ready(&mut auth, t0())), format!("Bearer {token}"));
    // Until EXPIRY_MARGIN before its exp; then, with no refresh-token, a clear error.
    let expired = t0() + Duration::from_secs(600) - EXPIRY_MARGIN;
    let err = failed(&mut auth, expired);
    assert_eq!(
        err,
        ConfigError::AuthProvider {
            provider: "oidc".into(),
            message: "the id-token has expired and there is no refresh-token".into()
        }
    );
    assert!(!format!("{err} {auth:?}").contains(&token));
}

#[test]
fn oidc_expired_id_token_is_refreshed_via_discovery_and_the_token_endpoint() {
    let old = jwt(t0() - Duration::from_secs(60), "old");
    let new = jwt(t0() + Duration::from_secs(3600), "new");
    let mut auth = oidc(&[
        ("id-token", &old),
        ("refresh-token", "refresh/1+="),
        ("client-id", "kube client"),
        ("client-secret", "s&cret"),
        ("idp-issuer-url", "https://issuer.example/realms/k8s/"),
    ]);
    // 1. Discovery.
    let req = http(&mut auth, t0());
    assert_eq!(req.method(), Method::GET);
    assert_eq!(req.uri(), "https://issuer.example/realms/k8s/.well-known/openid-configuration");
    assert_eq!(req.headers()["accept"], "application/json");
    assert!(req.body().is_empty());
    assert!(!format!("{:?}", AuthAction::Http(req)).contains("refresh"));
    auth.on_http_response(
        t0(),
        StatusCode::OK,
        br#"{"issuer": "https://issuer.example/realms/k8s", "token_endpoint": "https://issuer.example/token"}"#,
    );
    // 2. The refresh, a form POST.
    let req = http(&mut auth, t0());
    assert_eq!(req.method(), Method::POST);
    assert_eq!(req.uri(), "https://issuer.example/token");
    assert_eq!(req.headers()["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(
        std::str::from_utf8(req.body()).unwrap(),
        "grant_type=refresh_token&refresh_token=refresh%2F1%2B%3D&client_id=kube+client&client_secret=s%26cret"
    );
    let shown = format!("{:?}", AuthAction::Http(req));
    assert!(!shown.contains("s%26cret") && !shown.contains("refresh%2F1") && !shown.contains("115, 37, 50"), "{shown}");
    let body = json!({"access_token": "at", "id_token": new, "refresh_token": "refresh-2", "token_type": "Bearer"});
    auth.on_http_response(t0(), StatusCode::OK, body.to_string().as_bytes());
    // 3. The new id-token is used, and offered to be written back.
    assert_eq!(bearer(&ready(&mut auth, t0())), format!("Bearer {new}"));
    let (id, refresh) = auth.oidc_tokens().unwrap();
    assert_eq!((id.unwrap().expose(), refresh.unwrap().expose()), (new.as_str(), "refresh-2"));
    // A 401 drops the id-token; the known token endpoint is used directly.
    assert!(auth.on_unauthorized(t0()));
    let req = http(&mut auth, t0());
    assert_eq!((req.method(), req.uri().to_string()), (&Method::POST, "https://issuer.example/token".to_owned()));
    assert!(std::str::from_utf8(req.body()).unwrap().contains("refresh_token=refresh-2"));
}

#[test]
fn oidc_refresh_failures() {
    let old = jwt(t0() - Duration::from_secs(60), "old");
    let base = [
        ("id-token", old.as_str()),
        ("refresh-token", "SECRET-refresh"),
        ("client-id", "k"),
        ("idp-issuer-url", "https://issuer.example"),
    ];
    let fail = |auth: &mut Auth| match failed(auth, t0()) {
        ConfigError::AuthProvider { provider, message } => {
            assert_eq!(provider, "oidc");
            assert!(!message.contains("SECRET-"), "{message}");
            message
        }
        other => panic!("{other:?}"),
    };
    // No refresh-token at all.
    let mut auth = oidc(&base[..1]);
    assert!(fail(&mut auth).contains("no refresh-token"));
    // No issuer to refresh at.
    let mut auth = oidc(&base[..3]);
    assert!(fail(&mut auth).contains("no idp-issuer-url"));
    // Discovery answered 500.
    let mut auth = oidc(&base);
    http(&mut auth, t0());
    auth.on_http_response(t0(), StatusCode::INTERNAL_SERVER_ERROR, b"oops");
    assert!(fail(&mut auth).contains("HTTP 500"));
    // Discovery without a token_endpoint.
    http(&mut auth, t0());
    auth.on_http_response(t0(), StatusCode::OK, b"{}");
    assert!(fail(&mut auth).contains("invalid discovery document"));
    // The token response: rejected, not JSON (which may echo secrets), or no id_token.
    for (status, body, words) in [
        (StatusCode::BAD_REQUEST, &br#"{"error": "invalid_grant", "refresh": "SECRET-x"}"#[..], "HTTP 400"),
        (StatusCode::OK, b"SECRET-html", "not valid JSON"),
        (StatusCode::OK, br#"{"access_token": "SECRET-at"}"#, "no id_token"),
    ] {
        let mut auth = oidc(&base);
        http(&mut auth, t0());
        auth.on_http_response(t0(), StatusCode::OK, br#"{"token_endpoint": "https://issuer.example/token"}"#);
        http(&mut auth, t0());
        auth.on_http_response(t0(), status, body);
        assert!(fail(&mut auth).contains(words), "{words}");
    }
    // An id-token that is not a JWT counts as expired.
    let mut auth = oidc(&[("id-token", "opaque")]);
    assert!(fail(&mut auth).contains("no refresh-token"));
}

// ---------------------------------------------------------------------------------------------
// gcp
// ---------------------------------------------------------------------------------------------

fn gcp(entries: &[(&str, &str)]) -> Auth {
    let config: BTreeMap<String, SecretString> =
        entries.iter().map(|(k, v)| (k.to_string(), SecretString::from(*v))).collect();
    Auth::new(&AuthSpec::AuthProvider(AuthProviderConfig { name: "gcp".into(), config }), None)
}

#[test]
fn gcp_cmd_path_with_token_and_expiry_keys() {
    let mut auth = gcp(&[
        ("cmd-path", "/usr/bin/gcloud"),
        ("cmd-args", "config config-helper --format=json"),
        ("token-key", "{.credential.access_token}"),
        ("expiry-key", "{.credential.token_expiry}"),
    ]);
    let now = t0();
    let req = exec(&mut auth, now);
    assert_eq!(req.command, Path::new("/usr/bin/gcloud"));
    assert_eq!(req.args, ["config", "config-helper", "--format=json"]);
    assert!(!req.interactive);
    let expiry = now + Duration::from_secs(3600);
    let out =
        json!({"credential": {"access_token": "ya29.token", "token_expiry": rfc3339(expiry)}, "configuration": {}});
    auth.on_exec(t0(), printed(out.to_string()));
    assert_eq!(bearer(&ready(&mut auth, now)), "Bearer ya29.token");
    assert_eq!(bearer(&ready(&mut auth, expiry - EXPIRY_MARGIN - Duration::from_secs(1))), "Bearer ya29.token");
    exec(&mut auth, expiry - EXPIRY_MARGIN);
    // The default keys: {.access_token} and {.token_expiry}.
    let mut auth = gcp(&[("cmd-path", "gcloud-token")]);
    exec(&mut auth, now);
    auth.on_exec(t0(), printed(json!({"access_token": "plain", "token_expiry": rfc3339(expiry)}).to_string()));
    assert_eq!(bearer(&ready(&mut auth, now)), "Bearer plain");
    // No token at the key; a failing command.
    let mut auth = gcp(&[("cmd-path", "gcloud-token"), ("token-key", "{.nope}")]);
    exec(&mut auth, now);
    auth.on_exec(t0(), printed(json!({"access_token": "x"}).to_string()));
    assert!(failed(&mut auth, now).to_string().contains("no token at token-key"));
    exec(&mut auth, now);
    auth.on_exec(t0(), ExecOutput { status: Some(2), stdout: Vec::new(), stderr: b"not logged in".to_vec() });
    let err = failed(&mut auth, now);
    assert_eq!(err.to_string(), "exec plugin \"gcloud-token\": exited with status 2: not logged in");
}

#[test]
fn gcp_without_cmd_path_uses_a_valid_access_token_only() {
    let later = rfc3339(t0() + Duration::from_secs(600));
    let mut auth = gcp(&[("access-token", "ya29.cached"), ("expiry", &later)]);
    assert_eq!(bearer(&ready(&mut auth, t0())), "Bearer ya29.cached");
    let mut auth = gcp(&[("access-token", "ya29.cached"), ("expiry", "2000-01-01T00:00:00Z")]);
    let err = failed(&mut auth, t0());
    assert!(
        matches!(&err, ConfigError::AuthProvider { provider, message } if provider == "gcp" && message.contains("gke-gcloud-auth-plugin")),
        "{err:?}"
    );
    assert!(!err.to_string().contains("ya29"));
}

// ---------------------------------------------------------------------------------------------
// In-cluster
// ---------------------------------------------------------------------------------------------

const SA: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

fn incluster(host: Option<&str>, port: Option<&str>) -> Result<Config, ConfigError> {
    Config::incluster(host, port, Ok(fixture("pki/ca.crt")), Some(b"apps\n".to_vec()), PathBuf::from(SA).join("token"))
}

#[test]
fn incluster_from_values() {
    let c = incluster(Some("10.96.0.1"), Some("443")).unwrap();
    assert_eq!(c.cluster_url.as_str(), "https://10.96.0.1/");
    assert_eq!(c.default_namespace, "apps");
    assert_eq!(c.root_certs.len(), 1);
    assert_eq!(c.auth, AuthSpec::TokenFile(PathBuf::from(SA).join("token")));
    assert_eq!((c.identity.is_none(), c.accept_invalid_certs, c.impersonation.is_none()), (true, false, true));
    let c = incluster(Some("kubernetes.default.svc"), Some("6443")).unwrap();
    assert_eq!(c.cluster_url.as_str(), "https://kubernetes.default.svc:6443/");
}

#[test]
fn incluster_ipv6_host_is_bracketed() {
    let c = incluster(Some("fd00:10:96::1"), Some("443")).unwrap();
    assert_eq!(c.cluster_url.as_str(), "https://[fd00:10:96::1]/");
    let c = incluster(Some("[::1]"), Some("6443")).unwrap();
    assert_eq!(c.cluster_url.as_str(), "https://[::1]:6443/");
}

#[test]
fn incluster_missing_values_are_errors() {
    assert_eq!(
        incluster(None, Some("443")).unwrap_err(),
        ConfigError::InCluster("KUBERNETES_SERVICE_HOST is not set".into())
    );
    assert_eq!(
        incluster(Some(""), Some("443")).unwrap_err().to_string(),
        "in-cluster configuration: KUBERNETES_SERVICE_HOST is not set"
    );
    assert_eq!(
        incluster(Some("10.0.0.1"), None).unwrap_err(),
        ConfigError::InCluster("KUBERNETES_SERVICE_PORT is not set".into())
    );
    let err = incluster(Some("10.0.0.1"), Some("not-a-port")).unwrap_err();
    assert!(matches!(&err, ConfigError::Invalid { field, .. } if field == "KUBERNETES_SERVICE_HOST/PORT"), "{err:?}");
    // ca.crt: missing (the error names it next to the token), or not a certificate.
    let token = PathBuf::from("/sa/token");
    let err = Config::incluster(Some("h"), Some("1"), Err("No such file".into()), None, token.clone()).unwrap_err();
    assert_eq!(
        err,
        ConfigError::ReadFile {
            field: "in-cluster ca.crt".into(),
            path: "/sa/ca.crt".into(),
            message: "No such file".into()
        }
    );
    let err = Config::incluster(Some("h"), Some("1"), Ok(b"junk".to_vec()), None, token.clone()).unwrap_err();
    assert!(matches!(&err, ConfigError::Pem { field, .. } if field == "in-cluster ca.crt"), "{err:?}");
    // No namespace file, or an empty one: "default".
    let ca = || Ok(fixture("pki/ca.crt"));
    assert_eq!(
        Config::incluster(Some("h"), Some("1"), ca(), None, token.clone()).unwrap().default_namespace,
        "default"
    );
    assert_eq!(
        Config::incluster(Some("h"), Some("1"), ca(), Some(b"\n".to_vec()), token).unwrap().default_namespace,
        "default"
    );
}
