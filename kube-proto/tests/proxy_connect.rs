//! The proxy rules (proxy-url, HTTPS_PROXY / HTTP_PROXY / NO_PROXY as Go's httpproxy reads
//! them) and the CONNECT codec: the request it writes, the answers it accepts and refuses, in
//! any chunking.

use kube_proto::proxy::{
    ConnectError, ConnectHandshake, ConnectProxy, MAX_ANSWER_HEAD, NoProxy, ProxyEnv, ProxyError, ProxyRules,
    ProxySource, Status,
};
use proptest::prelude::*;

fn proxy(url: &str) -> ConnectProxy {
    ConnectProxy::from_url(&url.parse().unwrap(), ProxySource::ProxyUrl).unwrap()
}

fn handshake(url: &str) -> ConnectHandshake {
    proxy(url).handshake("k8s.example.com", 6443).unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The request

#[test]
fn connect_request_names_the_target_and_sends_percent_decoded_basic_credentials() {
    let h = handshake("http://us%65r:p%40ss@proxy.corp:3128");
    // base64("user:p@ss")
    assert_eq!(
        text(h.request()),
        "CONNECT k8s.example.com:6443 HTTP/1.1\r\nHost: k8s.example.com:6443\r\nProxy-Authorization: Basic dXNlcjpwQHNz\r\n\r\n"
    );
    assert_eq!(h.target(), "k8s.example.com:6443");
}

#[test]
fn connect_request_has_no_authorization_without_user_info() {
    let h = handshake("http://proxy.corp:3128");
    assert_eq!(text(h.request()), "CONNECT k8s.example.com:6443 HTTP/1.1\r\nHost: k8s.example.com:6443\r\n\r\n");
    assert!(!proxy("http://proxy.corp").has_credentials());
    assert_eq!(proxy("http://proxy.corp").port(), 80);
}

#[test]
fn ipv6_targets_and_proxies_are_bracketed_where_http_wants_brackets() {
    let p = proxy("http://[fd00::1]:3128");
    assert_eq!(p.host(), "fd00::1");
    assert_eq!(p.origin(), "http://[fd00::1]:3128");
    for host in ["[2001:db8::7]", "2001:db8::7"] {
        let h = p.handshake(host, 443).unwrap();
        assert!(text(h.request()).starts_with("CONNECT [2001:db8::7]:443 HTTP/1.1\r\nHost: [2001:db8::7]:443\r\n"));
    }
}

#[test]
fn targets_that_would_break_the_request_line_are_refused() {
    let p = proxy("http://proxy.corp:3128");
    for host in ["", "a b", "evil\r\nX-Injected: 1", "h/ost"] {
        let err = p.handshake(host, 443).unwrap_err();
        assert!(matches!(err, ConnectError::InvalidTarget { .. }), "{host:?}: {err:?}");
    }
}

#[test]
fn credentials_never_show_in_debug_or_errors() {
    let p = proxy("http://alice:hunter2@proxy.corp:3128");
    let h = p.handshake("k8s.example.com", 443).unwrap();
    let err = h.parse(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").unwrap_err();
    let env = ProxyEnv::new().with_https_proxy("http://alice:hunter2@proxy.corp:3128");
    let rules = ProxyRules::from_env(&env);
    let shown = format!("{p:?} {h:?} {err} {err:?} {env:?} {rules:?}");
    assert!(!shown.contains("hunter2") && !shown.contains("alice") && !shown.contains("YWxpY2"), "{shown}");
}

// ---------------------------------------------------------------------------------------------
// The answer

#[test]
fn a_2xx_answer_completes_at_the_end_of_its_head_and_leaves_the_tunnel_bytes() {
    let h = handshake("http://proxy.corp:3128");
    let head = b"HTTP/1.1 200 Connection established\r\nVia: 1.1 squid\r\n\r\n";
    let mut received = head.to_vec();
    received.extend_from_slice(b"\x16\x03\x01 tls bytes");
    assert_eq!(h.parse(&received).unwrap(), Status::Complete(head.len()));
    assert_eq!(h.parse(b"HTTP/1.0 204 \r\n\r\n").unwrap(), Status::Complete(17));
    assert_eq!(h.parse(b"HTTP/1.1 200 OK\r\n").unwrap(), Status::Partial);
    assert_eq!(h.parse(b"").unwrap(), Status::Partial);
}

#[test]
fn answers_with_bare_line_feeds_are_accepted() {
    let h = handshake("http://proxy.corp:3128");
    assert_eq!(h.parse(b"HTTP/1.1 200 OK\nX: y\n\nrest").unwrap(), Status::Complete(22));
    assert_eq!(h.parse(b"\r\nHTTP/1.1 200 OK\r\n\r\n").unwrap(), Status::Complete(21));
}

#[test]
fn a_407_without_credentials_says_to_put_them_in_the_proxy_url() {
    let h = handshake("http://proxy.corp:3128");
    let err =
        h.parse(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\n\r\n");
    let err = err.unwrap_err();
    assert_eq!(err.status(), Some(407));
    assert_eq!(
        err.to_string(),
        "the proxy http://proxy.corp:3128 (from proxy-url) answered 407 Proxy Authentication Required to CONNECT k8s.example.com:6443: proxy-url has no credentials; give them in its user info (http://USER:PASSWORD@HOST:PORT)"
    );
}

#[test]
fn a_407_with_credentials_says_they_were_refused_and_names_schemes_it_cannot_answer() {
    let h = handshake("http://user:pw@proxy.corp:3128");
    let answer =
        b"HTTP/1.1 407 Nope\r\nProxy-Authenticate: Negotiate\r\nproxy-authenticate: NTLM\r\nContent-Length: 0\r\n\r\n";
    let err = h.parse(answer).unwrap_err();
    let ConnectError::AuthenticationRequired { sent_credentials, schemes, configured_by, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(sent_credentials);
    assert_eq!(schemes, &["Negotiate", "NTLM"]);
    assert_eq!(*configured_by, ProxySource::ProxyUrl);
    let message = err.to_string();
    assert!(message.contains("refused the user name and password in the user info of proxy-url"), "{message}");
    assert!(message.contains("it asks for Negotiate, NTLM, and only Basic is supported"), "{message}");
}

#[test]
fn refusals_name_the_proxy_the_target_and_the_status() {
    let h = handshake("http://proxy.corp:3128");
    let err = h.parse(b"HTTP/1.1 403 Forbidden\x07 by policy\r\n\r\n").unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert_eq!(
        err.to_string(),
        "the proxy http://proxy.corp:3128 (from proxy-url) refused to CONNECT k8s.example.com:6443: 403 Forbidden by policy"
    );
    let err = h.parse(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").unwrap_err();
    assert!(matches!(err, ConnectError::Refused { status: 502, .. }), "{err:?}");
}

#[test]
fn answers_that_are_not_http_fail_with_the_first_bytes() {
    let h = handshake("http://proxy.corp:3128");
    for answer in [&b"SSH-2.0-OpenSSH"[..], b"\x15\x03\x01", b"HTTP/2 200\r\n\r\n", b"H T"] {
        let err = h.parse(answer).unwrap_err();
        assert_eq!(err, ConnectError::NotHttp { proxy: "http://proxy.corp:3128".into() }, "{answer:?}");
    }
}

#[test]
fn malformed_heads_are_errors_naming_the_line() {
    let h = handshake("http://proxy.corp:3128");
    let err = h.parse(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n").unwrap_err();
    assert!(matches!(&err, ConnectError::Malformed { message, .. } if message.contains("line 2")), "{err:?}");
    for bad in
        [&b"HTTP/1.1 20 OK\r\n\r\n"[..], b"HTTP/1.1 2000\r\n\r\n", b"HTTP/1.x 200\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n"]
    {
        assert!(matches!(h.parse(bad), Err(ConnectError::Malformed { .. })), "{bad:?}");
    }
    let err = h.parse(b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n").unwrap_err();
    assert!(matches!(err, ConnectError::Malformed { .. }), "{err:?}");
}

#[test]
fn heads_longer_than_the_limit_are_refused() {
    let h = handshake("http://proxy.corp:3128");
    let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
    while answer.len() < MAX_ANSWER_HEAD {
        answer.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
    }
    let err = h.parse(&answer).unwrap_err();
    assert_eq!(err, ConnectError::TooLarge { proxy: "http://proxy.corp:3128".into(), limit: MAX_ANSWER_HEAD });
    answer.extend_from_slice(b"\r\n");
    assert!(matches!(h.parse(&answer), Err(ConnectError::TooLarge { .. })));
}

// ---------------------------------------------------------------------------------------------
// Which proxy

#[test]
fn proxy_url_wins_over_the_environment_for_every_destination() {
    let env = ProxyEnv::new().with_https_proxy("http://env-proxy:8080").with_no_proxy("*");
    let url = "http://kubeconfig-proxy:3128".parse().unwrap();
    let rules = ProxyRules::new(Some(&url), &env).unwrap();
    for (scheme, host) in [("https", "k8s.example.com"), ("http", "127.0.0.1"), ("https", "localhost")] {
        let p = rules.proxy_for(scheme, host, 443).unwrap().unwrap();
        assert_eq!(p.origin(), "http://kubeconfig-proxy:3128");
        assert_eq!(p.configured_by(), ProxySource::ProxyUrl);
    }
}

#[test]
fn unusable_proxy_urls_are_refused_naming_proxy_url() {
    for (url, hint) in [("socks5://127.0.0.1:1080", "SOCKS"), ("https://proxy:3128", "TLS to the proxy")] {
        let err = ProxyRules::new(Some(&url.parse().unwrap()), &ProxyEnv::new()).unwrap_err();
        assert!(matches!(&err, ProxyError::UnsupportedScheme { configured_by: ProxySource::ProxyUrl, .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.starts_with("proxy-url: ") && message.contains(hint), "{message}");
    }
}

#[test]
fn https_proxy_serves_https_and_http_proxy_serves_http() {
    let env = ProxyEnv::new().with_https_proxy("http://secure-side:1").with_http_proxy("http://plain-side:2");
    let rules = ProxyRules::from_env(&env);
    let https = rules.proxy_for("https", "k8s.example.com", 443).unwrap().unwrap();
    assert_eq!((https.origin(), https.configured_by()), ("http://secure-side:1", ProxySource::Env("HTTPS_PROXY")));
    let http = rules.proxy_for("http", "k8s.example.com", 80).unwrap().unwrap();
    assert_eq!(http.origin(), "http://plain-side:2");
    let only_https = ProxyRules::from_env(&ProxyEnv::new().with_https_proxy("http://secure-side:1"));
    assert!(only_https.proxy_for("http", "k8s.example.com", 80).unwrap().is_none());
    assert!(ProxyRules::direct().proxy_for("https", "k8s.example.com", 443).unwrap().is_none());
}

#[test]
fn upper_case_variables_win_and_empty_ones_count_as_unset() {
    let vars = [("HTTPS_PROXY", ""), ("https_proxy", "http://lower:1"), ("HTTP_PROXY", "http://upper:2")];
    let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned());
    let rules = ProxyRules::from_env(&ProxyEnv::from_lookup(lookup));
    let p = rules.proxy_for("https", "k8s.example.com", 443).unwrap().unwrap();
    assert_eq!((p.origin(), p.configured_by()), ("http://lower:1", ProxySource::Env("https_proxy")));
    let vars = [("http_proxy", "http://lower:1"), ("HTTP_PROXY", "http://upper:2")];
    let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned());
    let rules = ProxyRules::from_env(&ProxyEnv::from_lookup(lookup));
    assert_eq!(rules.proxy_for("http", "h", 80).unwrap().unwrap().origin(), "http://upper:2");
}

#[test]
fn environment_values_without_a_scheme_are_http_proxies() {
    for value in ["proxy.corp:3128", "10.0.0.5:3128"] {
        let rules = ProxyRules::from_env(&ProxyEnv::new().with_https_proxy(value));
        let p = rules.proxy_for("https", "k8s.example.com", 443).unwrap().unwrap();
        assert_eq!(p.origin(), format!("http://{value}"));
    }
}

#[test]
fn environment_proxies_never_serve_localhost_or_loopback() {
    let rules = ProxyRules::from_env(&ProxyEnv::new().with_https_proxy("http://p:1").with_http_proxy("http://p:2"));
    for host in
        ["localhost", "LOCALHOST", "api.localhost", "127.0.0.1", "127.8.9.10", "[::1]", "::1", "[::ffff:127.0.0.1]"]
    {
        assert!(rules.proxy_for("https", host, 6443).unwrap().is_none(), "{host}");
        assert!(rules.proxy_for("http", host, 8080).unwrap().is_none(), "{host}");
    }
    assert!(rules.proxy_for("https", "10.0.0.1", 6443).unwrap().is_some());
}

#[test]
fn an_unusable_environment_proxy_is_an_error_only_where_it_would_be_used() {
    let env = ProxyEnv::new().with_https_proxy("socks5://user:secret@127.0.0.2:1080").with_no_proxy("internal");
    let rules = ProxyRules::new(None, &env).unwrap();
    assert!(rules.proxy_for("https", "api.internal", 443).unwrap().is_none());
    assert!(rules.proxy_for("http", "k8s.example.com", 80).unwrap().is_none());
    let err = rules.proxy_for("https", "k8s.example.com", 443).unwrap_err();
    assert!(matches!(&err, ProxyError::UnsupportedScheme { configured_by: ProxySource::Env("HTTPS_PROXY"), .. }));
    assert!(err.to_string().starts_with("HTTPS_PROXY: ") && !err.to_string().contains("secret"), "{err}");

    let rules = ProxyRules::from_env(&ProxyEnv::new().with_https_proxy("http://u:s3cret@host:99999"));
    let err = rules.proxy_for("https", "k8s.example.com", 443).unwrap_err();
    assert!(matches!(err, ProxyError::InvalidUrl { .. }), "{err:?}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// NO_PROXY

#[test]
fn no_proxy_domains_match_themselves_and_their_subdomains() {
    let list = NoProxy::parse("example.com, .corp.net ,*.svc.cluster.local,Upper.CASE");
    assert!(list.matches("example.com", 443));
    assert!(list.matches("api.example.com", 443));
    assert!(list.matches("API.Example.COM", 443));
    assert!(!list.matches("notexample.com", 443));
    assert!(!list.matches("example.com.evil", 443));
    // A leading dot or `*.` matches subdomains only.
    assert!(list.matches("a.corp.net", 1));
    assert!(!list.matches("corp.net", 1));
    assert!(list.matches("kube-dns.svc.cluster.local", 53));
    assert!(!list.matches("svc.cluster.local", 53));
    assert!(list.matches("upper.case", 1));
}

#[test]
fn no_proxy_ports_restrict_an_entry_to_that_port() {
    let list = NoProxy::parse("example.com:8443,10.1.1.1:6443,[fd00::5]:443");
    assert!(list.matches("example.com", 8443));
    assert!(!list.matches("example.com", 443));
    assert!(list.matches("10.1.1.1", 6443));
    assert!(!list.matches("10.1.1.1", 443));
    assert!(list.matches("[fd00::5]", 443));
    assert!(!list.matches("[fd00::5]", 80));
}

#[test]
fn no_proxy_ips_and_cidrs_match_addresses() {
    let list = NoProxy::parse("10.0.0.0/8,192.168.1.7,fd00::/8,2001:db8::1,172.16.0.0/33");
    assert!(list.matches("10.200.3.4", 443));
    assert!(!list.matches("11.0.0.1", 443));
    assert!(list.matches("192.168.1.7", 1));
    assert!(!list.matches("192.168.1.8", 1));
    assert!(list.matches("[fd12::1]", 443));
    assert!(list.matches("[2001:db8::1]", 443));
    assert!(!list.matches("[2001:db8::2]", 443));
    // An IPv4 address written IPv4-mapped is that address.
    assert!(list.matches("[::ffff:10.1.2.3]", 443));
    // A prefix longer than the address is not a CIDR: that entry is ignored.
    assert!(!list.matches("172.16.0.1", 443));
    assert!(NoProxy::parse("0.0.0.0/0").matches("8.8.8.8", 53));
}

#[test]
fn no_proxy_star_matches_everything_and_junk_is_ignored() {
    assert!(NoProxy::parse("foo,*").matches("anything.example", 1));
    let junk = NoProxy::parse(" , :8080, [, ]");
    assert!(!junk.matches("example.com", 8080));
    assert!(!NoProxy::parse("").matches("example.com", 443));
    // Unicode entries compare in their ASCII (punycode) form, as URL hosts do.
    assert!(NoProxy::parse("bücher.example").matches("xn--bcher-kva.example", 443));
}

// ---------------------------------------------------------------------------------------------
// Properties

/// A valid answer: a 2xx or another status, some headers, LF or CRLF line ends.
fn answer() -> impl Strategy<Value = (Vec<u8>, u16)> {
    let status = prop_oneof![200u16..300, Just(407u16), 300u16..600];
    let headers = prop::collection::vec(("[A-Za-z][A-Za-z0-9-]{0,15}", "[ -~]{0,40}"), 0..6);
    (status, "[A-Za-z ]{0,20}", headers, any::<bool>()).prop_map(|(status, reason, headers, crlf)| {
        let eol = if crlf { "\r\n" } else { "\n" };
        let mut head = format!("HTTP/1.1 {status} {reason}{eol}");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}{eol}"));
        }
        head.push_str(eol);
        (head.into_bytes(), status)
    })
}

/// Feeds `bytes` cut at `cuts`, as an adapter would, until the codec answers.
fn feed(h: &ConnectHandshake, bytes: &[u8], cuts: &[usize]) -> (Result<Status<usize>, ConnectError>, usize) {
    let mut received = Vec::new();
    let mut rest = bytes;
    let mut cuts = cuts.iter();
    loop {
        let n = cuts.next().map_or(rest.len(), |&c| c.min(rest.len()));
        received.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        match h.parse(&received) {
            Ok(Status::Partial) if !rest.is_empty() => continue,
            result => return (result, received.len()),
        }
    }
}

proptest! {
    #[test]
    fn any_chunking_of_a_valid_answer_gives_the_same_result(
        (head, status) in answer(),
        tunnel in prop::collection::vec(any::<u8>(), 0..32),
        cuts in prop::collection::vec(1usize..20, 0..40),
    ) {
        let h = handshake("http://user:pw@proxy.corp:3128");
        let mut bytes = head.clone();
        bytes.extend_from_slice(&tunnel);
        let whole = h.parse(&bytes);
        let (chunked, _) = feed(&h, &bytes, &cuts);
        prop_assert_eq!(&chunked, &whole);
        if (200..300).contains(&status) {
            prop_assert_eq!(whole, Ok(Status::Complete(head.len())));
        } else {
            prop_assert_eq!(whole.unwrap_err().status(), Some(status));
        }
        // Every strict prefix of the head is partial.
        for end in 0..head.len() {
            prop_assert_eq!(h.parse(&head[..end]), Ok(Status::Partial));
        }
    }

    #[test]
    fn reading_within_the_read_limit_never_passes_the_end_of_the_head((head, _) in answer()) {
        let h = handshake("http://proxy.corp:3128");
        let mut received = Vec::new();
        while received.len() < head.len() {
            let limit = h.read_limit(&received);
            prop_assert!(limit >= 1);
            prop_assert!(received.len() + limit <= head.len(), "would read past the head at {}", received.len());
            received.extend_from_slice(&head[received.len()..received.len() + limit]);
        }
    }

    #[test]
    fn random_bytes_never_panic_the_codec(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let h = handshake("http://user:pw@proxy.corp:3128");
        let _ = h.parse(&bytes);
        let _ = h.read_limit(&bytes);
        let mut with_prefix = b"HTTP/1.1 ".to_vec();
        with_prefix.extend_from_slice(&bytes);
        if let Ok(Status::Complete(n)) = h.parse(&with_prefix) {
            prop_assert!(n <= with_prefix.len());
        }
    }

    #[test]
    fn random_no_proxy_lists_and_hosts_never_panic(list in "[ -~]{0,80}", host in "[ -~]{0,40}", port: u16) {
        let _ = NoProxy::parse(&list).matches(&host, port);
        let rules = ProxyRules::from_env(&ProxyEnv::new().with_https_proxy(list.clone()).with_no_proxy(list));
        let _ = rules.proxy_for("https", &host, port);
    }
}
