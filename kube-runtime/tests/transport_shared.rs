//! What every transport shares, written once in kube-runtime: upgrade detection, the proxy
//! settings (proxy-url first, then the environment handed in), and exec plugin processes.

use std::ffi::OsString;

use http::HeaderMap;
use http::header::CONNECTION;
use kube_proto::config::Config;
use kube_proto::config::auth::ExecRequest;
use kube_proto::proxy::{ProxyEnv, ProxySource};
use kube_runtime::TransportError;
use kube_runtime::transport::{ProxySettings, is_upgrade, proxy_env, proxy_rules};

#[test]
fn upgrade_requests_are_recognised_by_their_connection_token() {
    let mut h = HeaderMap::new();
    assert!(!is_upgrade(&h));
    h.insert(CONNECTION, "keep-alive, Upgrade".parse().unwrap());
    assert!(is_upgrade(&h));
    h.insert(CONNECTION, "close".parse().unwrap());
    assert!(!is_upgrade(&h));
    h.insert(CONNECTION, "upgrade-ish".parse().unwrap());
    assert!(!is_upgrade(&h));
}

#[test]
fn proxy_url_wins_over_the_proxy_environment() {
    let mut config = Config::new("https://10.0.0.1:6443".parse().unwrap());
    let settings = ProxySettings::Given(ProxyEnv::new().with_https_proxy("http://env:1"));
    let rules = proxy_rules(&config, &settings).unwrap();
    assert_eq!(rules.proxy_for("https", "10.0.0.1", 6443).unwrap().unwrap().origin(), "http://env:1");
    config.proxy_url = Some("http://kubeconfig:2".parse().unwrap());
    let rules = proxy_rules(&config, &settings).unwrap();
    let p = rules.proxy_for("https", "10.0.0.1", 6443).unwrap().unwrap();
    assert_eq!((p.origin(), p.configured_by()), ("http://kubeconfig:2", ProxySource::ProxyUrl));
    let rules = proxy_rules(&Config::new("https://10.0.0.1".parse().unwrap()), &ProxySettings::Off).unwrap();
    assert!(rules.proxy_for("https", "10.0.0.1", 443).unwrap().is_none());
}

#[test]
fn an_unsupported_proxy_url_is_an_unsupported_setting_naming_proxy_url() {
    let mut config = Config::new("https://10.0.0.1:6443".parse().unwrap());
    config.proxy_url = Some("socks5://127.0.0.1:1080".parse().unwrap());
    let err = proxy_rules(&config, &ProxySettings::Off).unwrap_err();
    assert!(matches!(&err, TransportError::Unsupported(m) if m.starts_with("proxy-url: ")), "{err:?}");
}

#[test]
fn proxy_variables_are_read_through_the_lookup_and_non_utf8_values_are_unset() {
    #[cfg(unix)]
    let bad = {
        use std::os::unix::ffi::OsStringExt;
        OsString::from_vec(vec![0x68, 0xff])
    };
    #[cfg(not(unix))]
    let bad = OsString::new();
    let lookup = |name: &str| match name {
        "HTTPS_PROXY" => Some(bad.clone()),
        "https_proxy" => Some(OsString::from("http://lower:1")),
        "no_proxy" => Some(OsString::from(".internal")),
        _ => None,
    };
    let rules = kube_proto::proxy::ProxyRules::from_env(&proxy_env(&lookup));
    assert_eq!(rules.proxy_for("https", "k8s.example.com", 443).unwrap().unwrap().origin(), "http://lower:1");
    assert!(rules.proxy_for("https", "a.internal", 443).unwrap().is_none());
}

#[cfg(unix)]
#[test]
fn exec_plugins_are_run_with_one_set_of_stdio_rules_and_messages() {
    use kube_runtime::process;
    let request = |script: &str, interactive| ExecRequest {
        command: "sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![("GREETING".into(), "hi".into())],
        interactive,
        install_hint: None,
    };
    let out = process::run_blocking(&request("printf %s \"$GREETING\"; echo err >&2; exit 4", false)).unwrap();
    assert_eq!((out.status, out.stdout.as_slice(), out.stderr.as_slice()), (Some(4), &b"hi"[..], &b"err\n"[..]));
    // Interactive: stderr is the terminal's, not captured.
    let out = process::run_blocking(&request("echo prompt >&2; printf ok", true)).unwrap();
    assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"ok"[..], &b""[..]));
    let missing = ExecRequest { command: "/nonexistent/kube-plugin".into(), ..request("", false) };
    assert_eq!(process::run_blocking(&missing).unwrap_err(), "/nonexistent/kube-plugin: command not found");
}
