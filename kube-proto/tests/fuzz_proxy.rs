//! Fuzzing the CONNECT codec (`ConnectHandshake::parse` and `read_limit`) with hand-written
//! proxy answers, mutated, and the proxy settings (`ProxyRules`, `NoProxy`) with random values.
//! For every input:
//!
//! - nothing panics;
//! - any chunking of an answer gives the same result: every prefix is `Partial` or already the
//!   whole answer's verdict, and a verdict, once given, never changes;
//! - a head is bounded: `Partial` only below `MAX_ANSWER_HEAD` bytes, `Complete(n)` with `n`
//!   at most that, ending with the empty line, and decided by those `n` bytes alone;
//! - a reader that reads at most `read_limit` bytes at a time never reads past the head;
//! - no error shows the proxy's password or the `Proxy-Authorization` sent, and each names
//!   the proxy; a refusal's reason is short and printable.
//!
//! `FUZZ_ITERATIONS`, `FUZZ_SEED` and `FUZZ_REPLAY`: see `tests/fuzz/mod.rs` and `fuzz/README.md`.

mod fuzz;

use fuzz::{Fuzzer, SplitMix64, chunking};
use kube_proto::proxy::{
    ConnectError, ConnectHandshake, ConnectProxy, MAX_ANSWER_HEAD, NoProxy, ProxyEnv, ProxyRules, ProxySource, Status,
};

const PASSWORD: &str = "SECRET-proxy-pw";

fn handshake() -> ConnectHandshake {
    let url = url::Url::parse(&format!("http://alice:{PASSWORD}@proxy.fuzz:3128")).unwrap();
    ConnectProxy::from_url(&url, ProxySource::ProxyUrl).unwrap().handshake("k8s.example", 6443).unwrap()
}

fn check_verdict(verdict: &Result<Status<usize>, ConnectError>, received: &[u8], request: &[u8]) {
    match verdict {
        Ok(Status::Partial) => {
            assert!(received.len() < MAX_ANSWER_HEAD, "Partial after {} bytes", received.len());
        }
        Ok(Status::Complete(n)) => {
            assert!(*n <= MAX_ANSWER_HEAD && *n <= received.len(), "Complete({n}) of {} bytes", received.len());
            let head = &received[..*n];
            assert!(
                head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n"),
                "a head that does not end with an empty line"
            );
        }
        Err(e) => {
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains(PASSWORD) && !shown.contains("alice"), "the credentials show: {shown}");
            let authorization = &request[request.windows(6).position(|w| w == b"Basic ").unwrap() + 6..];
            let authorization = &authorization[..authorization.iter().position(|&b| b == b'\r').unwrap()];
            assert!(!shown.contains(std::str::from_utf8(authorization).unwrap()), "the Proxy-Authorization shows");
            assert!(e.to_string().contains("proxy.fuzz:3128"), "the proxy is not named: {e}");
            if let ConnectError::Refused { reason, status, .. } = e {
                assert!(reason.chars().count() <= 100 && !reason.chars().any(char::is_control), "{reason:?}");
                assert!((100..=999).contains(status));
            }
        }
    }
}

fn check(answer: &[u8], rng: &mut SplitMix64) -> String {
    let handshake = handshake();
    let request = handshake.request();
    let whole = handshake.parse(answer);
    check_verdict(&whole, answer, request);
    // Every prefix along a chunking: Partial until a verdict, then the same verdict.
    let mut decided = false;
    for cut in chunking(rng, answer.len()).into_iter().chain([answer.len()]) {
        let verdict = handshake.parse(&answer[..cut]);
        check_verdict(&verdict, &answer[..cut], request);
        match verdict {
            Ok(Status::Partial) => assert!(!decided, "Partial after a verdict, at {cut} bytes"),
            other => {
                assert_eq!(other, whole, "the verdict at {cut} bytes differs from the whole answer's");
                decided = true;
            }
        }
    }
    if let Ok(Status::Complete(n)) = whole {
        assert_eq!(handshake.parse(&answer[..n]), Ok(Status::Complete(n)), "the head alone decides");
        assert_eq!(handshake.parse(&answer[..n - 1]), Ok(Status::Partial), "the head is not decided early");
    }
    // A reader that follows read_limit stops exactly at the end of the head.
    let mut received = 0;
    loop {
        let verdict = handshake.parse(&answer[..received]);
        match verdict {
            Ok(Status::Partial) if received < answer.len() => {
                let limit = handshake.read_limit(&answer[..received]);
                assert!(limit >= 1);
                received = (received + 1 + rng.below(limit as u64) as usize).min(answer.len());
            }
            Ok(Status::Complete(n)) => {
                assert_eq!(n, received, "read past the head ({received} bytes read, head {n})");
                break;
            }
            _ => break,
        }
    }
    match whole {
        Ok(Status::Partial) => "Partial".into(),
        Ok(Status::Complete(_)) => "Complete".into(),
        Err(ConnectError::Refused { status, .. }) => format!("Refused({})", status / 100),
        Err(ConnectError::Malformed { message, .. }) => {
            format!("Malformed({})", message.replace(|c: char| c.is_ascii_digit(), ""))
        }
        Err(e) => format!("{e:?}").split([' ', '{']).next().unwrap_or("").to_owned(),
    }
}

#[test]
fn connect_answers_in_any_chunking_give_one_verdict_and_never_show_credentials() {
    let summary = Fuzzer::new("proxy")
        .tokens(&[
            b"HTTP/1.1 ",
            b"HTTP/1.0 200 OK\r\n",
            b"407",
            b"Proxy-Authenticate: ",
            b"Basic realm=\"x\"",
            b"\n\r\n",
            b"\n\n",
            b"Content-Length: 5\r\n",
            b"\x16\x03\x01",
        ])
        .max_len(4 * MAX_ANSWER_HEAD)
        .default_iterations(2500)
        .run(check);
    assert!(summary.tried > 0);
}

/// Whether every `SECRET-pw` in a proxy value is the password of its user info
/// (`scheme://user:SECRET-pw@`), so a secret; mutations also move it into hosts and schemes.
fn password_in_place(value: &str) -> bool {
    fuzz::occurrences(value.as_bytes(), b"SECRET-pw").into_iter().all(|at| {
        let user_end = value[..at].strip_suffix(':');
        let scheme_end = user_end.and_then(|u| u.rfind("://").map(|i| (i, u)));
        scheme_end.is_some_and(|(i, u)| u[i + 3..].bytes().all(|b| b.is_ascii_alphanumeric()))
            && value[at + 9..].starts_with('@')
    })
}

#[test]
#[allow(clippy::disallowed_methods)] // the harness's own time limit (FUZZ_SECONDS)
fn proxy_settings_never_panic_and_never_show_the_password() {
    // The environment's values and the destination, from lines of random text around
    // proxy-like seeds: parsed and matched without panicking, and the errors keep the
    // password out.
    let seeds: &[&str] = &[
        "http://bob:SECRET-pw@proxy:3128",
        "proxy.corp:8080",
        "socks5://bob:SECRET-pw@s:1080",
        "https://bob:SECRET-pw@p",
        "http://[::1]:3128",
        "http://bob:SECRET-pw@[fe80::1%25eth0]:99999",
        "http://bob:SECRET-pw@",
        "10.0.0.0/8,.internal,*.example.com,[::1]:6443,localhost:80,*,::ffff:10.0.0.0/104",
        "k8s.internal",
        "10.1.2.3",
        "[fd00::1]",
    ];
    let seed = fuzz::seed_from_env(0x70_726f_7879);
    let mut rng = SplitMix64::new(seed);
    let iterations = fuzz::iterations_from_env(3000);
    // Said first, so that a failure's output has it: FUZZ_SEED replays the run.
    fuzz::report(&format!("fuzz proxy settings: seed {seed:#x}, {iterations} inputs"));
    let tokens: &[&[u8]] = &[b":", b"@", b"/", b"[", b"]", b"%", b",", b"*", b".", b"::", b"//", b"SECRET-pw"];
    let pool: Vec<Vec<u8>> = seeds.iter().map(|s| s.as_bytes().to_vec()).collect();
    let mut tried = 0;
    let started = std::time::Instant::now();
    let seconds = fuzz::seconds_from_env();
    for _ in 0..iterations {
        if seconds.is_some_and(|s| started.elapsed().as_secs() >= s) {
            break;
        }
        let mut pick = || {
            let mut v = rng.pick(&pool).unwrap().clone();
            for _ in 0..rng.below(4) {
                fuzz::mutate(&mut v, &pool, tokens, &mut rng);
            }
            String::from_utf8_lossy(&v).into_owned()
        };
        let (https, no_proxy, host) = (pick(), pick(), pick());
        if !password_in_place(&https) {
            // Still parsed and matched, for panics; the secret check needs a secret.
            let env = ProxyEnv::new().with_https_proxy(&https).with_no_proxy(&no_proxy);
            let _ = ProxyRules::from_env(&env).proxy_for("https", &host, 443).map(|p| p.map(|p| p.handshake(&host, 1)));
            tried += 1;
            continue;
        }
        let port = rng.below(65536) as u16;
        let env = ProxyEnv::new().with_https_proxy(&https).with_http_proxy(&https).with_no_proxy(&no_proxy);
        let rules = ProxyRules::from_env(&env);
        let _ = NoProxy::parse(&no_proxy).matches(&host, port);
        for scheme in ["https", "http"] {
            match rules.proxy_for(scheme, &host, port) {
                Ok(Some(proxy)) => {
                    assert!(!format!("{proxy:?}").contains("SECRET-pw"), "{proxy:?}");
                    // (The destination is the caller's and may be anything: only the proxy's
                    // password is a secret here.)
                    if let Err(e) = proxy.handshake(&host, port)
                        && !host.contains("SECRET-pw")
                    {
                        assert!(!format!("{e} {e:?}").contains("SECRET-pw"), "{e}");
                    }
                }
                Ok(None) => {}
                Err(e) => assert!(!format!("{e} {e:?}").contains("SECRET-pw"), "{e}"),
            }
        }
        assert!(!format!("{rules:?}").contains("SECRET-pw"), "{rules:?}");
        if let Ok(url) = url::Url::parse(&https)
            && let Err(e) = ProxyRules::new(Some(&url), &env)
        {
            assert!(!format!("{e} {e:?}").contains("SECRET-pw"), "{e}");
        }
        tried += 1;
    }
    fuzz::report(&format!("fuzz proxy settings: {tried} inputs tried, 0 failures, seed {seed:#x}"));
    assert!(password_in_place("http://bob:SECRET-pw@proxy:3128") && !password_in_place("http://bobSECRET-pw:80"));
}
