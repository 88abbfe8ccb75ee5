//! Fuzzing kubeconfig parsing (`Kubeconfig::from_yaml`) and the configuration made from it
//! (`Config::from_kubeconfig`) with the kubeconfig fixtures and hand-written files (anchors,
//! JSON, user info in URLs, cut quotes), mutated. For every input:
//!
//! - nothing panics;
//! - a file that does not parse is a `ConfigError::Yaml` naming the file (and a line, or the
//!   field) or a `DuplicateName` naming the file and the list;
//! - a configuration that cannot be made is an error that names a field, a context, a user or
//!   a cluster;
//! - no secret of the input shows in any error's Display or Debug, nor in the Debug of the
//!   configuration. The seeds hold marker secrets (`SECRET-…`) in every
//!   secret field: tokens, passwords, auth-provider settings, exec env values, and the
//!   passwords in the server's and the proxy's URLs. The check applies to each input whose
//!   markers all still sit in such a field (mutations move text around; a marker moved into a
//!   cluster's name is not a secret any more).
//!
//! `FUZZ_ITERATIONS`, `FUZZ_SEED` and `FUZZ_REPLAY`: see `tests/fuzz/mod.rs` and `fuzz/README.md`.

mod fuzz;

use std::path::Path;

use fuzz::{Fuzzer, SplitMix64, YAML_TOKENS, occurrences};
use kube_proto::config::{Config, ConfigError, Kubeconfig};

const MARKER: &[u8] = b"SECRET-";
const FILE: &str = "/fuzz/kubeconfig/config";

/// The keys whose values are secrets, as they lead up to a value on one line.
const SECRET_KEYS: &[&str] =
    &["token", "password", "client-secret", "id-token", "refresh-token", "access-token", "value", "client-key-data"];

/// A word of a key or a simple value.
fn word(s: &str, also: &str) -> usize {
    s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || also.contains(c))).unwrap_or(s.len())
}

/// Whether the marker at `at` is the start of a secret value, judged from its whole line,
/// which must be a plain block or flow mapping entry: `[- ]key: SECRET-…`,
/// `[- ]user: {name: x, key: SECRET-…}`, a secret key's value optionally quoted; or the password
/// of the user info of the server's or the proxy's URL (`proxy-url: http://user:SECRET-…@`).
/// Anything else (the marker inside another value, a key, a name, a cut quote) is not a secret.
fn in_secret_position(input: &[u8], at: usize) -> bool {
    let line_start = input[..at].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let Ok(before) = std::str::from_utf8(&input[line_start..at]) else { return false };
    let after = &input[at..];
    let end = after.iter().position(|b| !(b.is_ascii_alphanumeric() || *b == b'-')).unwrap_or(after.len());
    let next = after.get(end).copied();
    let mut rest = before.trim_start_matches(' ');
    rest = rest.strip_prefix("- ").unwrap_or(rest);
    // `user: {` (a flow mapping as a key's value), then `key: value, ` entries.
    let n = word(rest, "");
    if n > 0 && rest[n..].starts_with(": {") {
        rest = &rest[n + 3..];
    }
    rest = rest.strip_prefix('{').unwrap_or(rest);
    loop {
        let k = word(rest, "");
        let Some(value) = rest[k..].strip_prefix(": ").filter(|_| k > 0) else { break };
        let v = word(value, "./");
        match value[v..].strip_prefix(", ") {
            Some(more) if v > 0 => rest = more,
            _ => break,
        }
    }
    let k = word(rest, "");
    let (key, value) = (&rest[..k], rest[k..].strip_prefix(": ").unwrap_or("-"));
    let quote = value.strip_prefix(['"', '\'']).map(|_| &value[..1]);
    let secret_value = SECRET_KEYS.contains(&key)
        && (value.is_empty() || quote == Some(value))
        && match quote {
            Some(q) => next == Some(q.as_bytes()[0]) || next.is_none() || next == Some(b'\n'),
            None => matches!(next, None | Some(b'\n' | b'\r' | b',' | b'}')),
        };
    let userinfo = ["server", "proxy-url"].contains(&key)
        && value.split_once("://").is_some_and(|(scheme, auth)| {
            word(scheme, "") == scheme.len() && auth.strip_suffix(':').is_some_and(|u| word(u, "") == u.len())
        })
        && next == Some(b'@');
    secret_value || userinfo
}

/// Whether every marker secret of `input` is still a secret (so must not show anywhere).
fn secrets_in_place(input: &[u8]) -> bool {
    occurrences(input, MARKER).into_iter().all(|at| in_secret_position(input, at))
}

fn assert_no_secret(what: &str, shown: &str) {
    assert!(!shown.contains("SECRET-"), "a secret shows in {what}: {shown}");
}

/// Checks what an error must say, and returns its kind.
fn check_error(e: &ConfigError, secrets: bool) -> String {
    let shown = e.to_string();
    assert!(!shown.is_empty());
    if secrets {
        assert_no_secret("an error", &shown);
        assert_no_secret("an error's Debug", &format!("{e:?}"));
    }
    let kind = format!("{e:?}");
    kind.split([' ', '(', '{']).next().unwrap_or("").to_owned()
}

fn check(input: &[u8], rng: &mut SplitMix64) -> String {
    let secrets = secrets_in_place(input);
    let parsed = Kubeconfig::from_yaml(input, Some(Path::new(FILE)));
    let kubeconfig = match parsed {
        Err(e) => {
            match &e {
                ConfigError::Yaml { file, line, field, message, .. } => {
                    assert_eq!(file, FILE);
                    assert!(!message.is_empty());
                    assert!(e.to_string().starts_with(FILE), "{e}");
                    assert!(*line > 0 || field.is_some() || message.contains("UTF-8"), "no line and no field: {e:?}");
                }
                ConfigError::DuplicateName { file, .. } => assert_eq!(file, FILE),
                other => panic!("parsing failed with an error that is not about the file: {other:?}"),
            }
            let kind = check_error(&e, secrets);
            let message = match &e {
                ConfigError::Yaml { message, .. } => message
                    .split([':', '`', '"', '(', ','])
                    .next()
                    .unwrap_or("")
                    .replace(|c: char| c.is_ascii_digit(), ""),
                _ => String::new(),
            };
            return format!("{kind}({})", message.trim());
        }
        Ok(k) => k,
    };
    // Parsed, the file says itself where each marker went: a secret field's value is a
    // `SecretString`, whose Debug is always `<redacted>`, and the server's and proxy's URLs are
    // shown with their password redacted. A marker still in the Debug is a name, a host or
    // some other value that a mutation moved it into (a quoted JSON string can run over lines
    // that look like YAML secrets), so not a secret any more.
    let secrets = secrets && !format!("{kubeconfig:?}").contains("SECRET-");
    // The current context, and a few named ones (existing or not).
    let mut contexts: Vec<Option<String>> = vec![None, Some("absent".into())];
    contexts.extend(kubeconfig.contexts.iter().take(3).map(|c| Some(c.name.clone())));
    let mut outcomes = Vec::new();
    for context in contexts {
        // Referenced files: missing, a real certificate, a key, or garbage.
        let choice = rng.below(4);
        let mut read = |p: &Path| -> Result<Vec<u8>, String> {
            match choice {
                0 => Err(format!("{}: no such file", p.display())),
                1 => Ok(include_bytes!("fixtures/kubeconfig/pki/client-ec.crt").to_vec()),
                2 => Ok(include_bytes!("fixtures/kubeconfig/pki/client-ec.key").to_vec()),
                _ => Ok(b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n".to_vec()),
            }
        };
        match Config::from_kubeconfig(&kubeconfig, context.as_deref(), &mut read) {
            Ok(config) => {
                if secrets {
                    assert_no_secret("the configuration's Debug", &format!("{config:?}"));
                }
                outcomes.push("Ok".to_owned());
            }
            Err(e) => {
                match &e {
                    ConfigError::Invalid { field, .. }
                    | ConfigError::ReadFile { field, .. }
                    | ConfigError::Pem { field, .. } => assert!(!field.is_empty(), "{e:?}"),
                    ConfigError::Missing { what, .. } => assert!(!what.is_empty()),
                    _ => {}
                }
                outcomes.push(check_error(&e, secrets));
            }
        }
    }
    outcomes.sort();
    outcomes.dedup();
    format!("ok:{}", outcomes.join(","))
}

#[test]
fn kubeconfigs_never_panic_and_errors_name_the_file_or_field_but_never_a_secret() {
    let mut tokens = YAML_TOKENS.to_vec();
    tokens.extend_from_slice(&[
        b"server: ",
        b"proxy-url: ",
        b"token: ",
        b"SECRET-x",
        b"current-context: ",
        b"certificate-authority-data: ",
        b"client-certificate-data: LS0t",
        b"client-key-data: ",
        b"insecure-skip-tls-verify: true",
        b"exec: {command: x}",
        b"auth-provider: {name: oidc}",
        b"as-groups: [a]",
        b"http://u:SECRET-p@",
        b"https://[::1",
        b":99999",
        b"- name: ",
    ]);
    let summary = Fuzzer::new("kubeconfig").tokens(&tokens).default_iterations(3000).run(check);
    assert!(summary.tried > 0);
}

#[test]
fn every_marker_in_the_corpus_sits_in_a_secret_field() {
    // So the secret check runs on the seeds, and the markers' positions are recognised.
    let mut checked = 0;
    for (name, input) in fuzz::load_corpus("kubeconfig") {
        let at = occurrences(&input, MARKER);
        for &a in &at {
            let line = input[..a].iter().filter(|&&b| b == b'\n').count() + 1;
            assert!(in_secret_position(&input, a), "{name}:{line}: a marker outside a secret field");
        }
        checked += at.len();
    }
    assert!(checked >= 15, "{checked} markers");
    // And a marker moved out of a secret field is recognised as such.
    assert!(!secrets_in_place(b"clusters:\n- name: SECRET-x\n"));
    assert!(!secrets_in_place(b"server: https://SECRET-x.example\n"));
    assert!(secrets_in_place(b"  user: {token: SECRET-x}\n"));
    assert!(secrets_in_place(b"    proxy-url: http://u:SECRET-x@p:3128\n"));
    assert!(!secrets_in_place(b"http://u:SECRET-p@clusters:\n"));
    assert!(secrets_in_place(b"      - {name: CRED_SECRET, value: SECRET-env-0003}\n"));
    assert!(secrets_in_place(b"    token: \"SECRET-x\"\n"));
    assert!(!secrets_in_place(b"    command: c\":\"j\"}}],\"user\":{\"token\":\"SECRET-x\"\n"));
    assert!(!secrets_in_place(b"    token: SECRET-x: y\n"));
}

#[test]
fn a_server_url_that_does_not_parse_is_shown_without_its_password() {
    // Found by this fuzzer: the message repeated the whole URL, user info included.
    let yaml = b"clusters:\n- name: p\n  cluster:\n    server: https://admin:SECRET-pw@k8s.example:6440x10\ncontexts:\n- name: p\n  context: {cluster: p}\ncurrent-context: p\n";
    let kubeconfig = Kubeconfig::from_yaml(yaml, None).unwrap();
    let e = Config::from_kubeconfig(&kubeconfig, None, &mut |_| Err("none".into())).unwrap_err();
    assert!(e.to_string().contains("clusters[p].cluster.server"), "{e}");
    assert!(e.to_string().contains("invalid port"), "{e}");
    assert_no_secret("an error", &format!("{e} {e:?}"));
}

#[test]
fn a_field_given_twice_through_a_tag_is_named() {
    // Found by this fuzzer: the tag hides the repeated key from the YAML reader, and the error
    // had neither a line nor a field.
    let e = Kubeconfig::from_yaml(b"apiVersion: v1\n!tag apiVersion: x\n", Some(Path::new(FILE))).unwrap_err();
    match &e {
        ConfigError::Yaml { field, message, .. } => {
            assert_eq!(field.as_deref(), Some("apiVersion"), "{e}");
            assert_eq!(message, "given twice");
        }
        other => panic!("{other:?}"),
    }
}
