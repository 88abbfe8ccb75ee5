//! HTTP proxies, with no IO: which proxy (if any) reaches a destination, and the `CONNECT`
//! exchange that opens a tunnel through it, as bytes out and an answer parsed in.
//!
//! - [`ProxyEnv`] holds the proxy variables of an environment (`HTTPS_PROXY`, `HTTP_PROXY`,
//!   `NO_PROXY` and their lower-case forms). The core reads no environment: the caller looks
//!   the variables up and hands them in ([`ProxyEnv::from_lookup`]).
//! - [`ProxyRules`] decides, for a destination, which proxy to use, as client-go does: a
//!   kubeconfig `proxy-url` is used for everything; otherwise `HTTPS_PROXY` for `https://`
//!   and `HTTP_PROXY` for `http://` destinations, except for `localhost`, loopback addresses
//!   and what `NO_PROXY` lists ([`NoProxy`], Go's `httpproxy` rules).
//! - [`ConnectProxy::handshake`] gives the `CONNECT` request to write and parses the proxy's
//!   answer in whatever pieces it arrives ([`ConnectHandshake::parse`], shaped as httparse's
//!   [`Status`]). A refusal is a [`ConnectError`] naming the proxy and its status; a `407`
//!   says whether credentials were sent, and where they came from, never what they are.
//!
//! ```
//! use kube_proto::proxy::{ProxyEnv, ProxyRules, Status};
//!
//! let env = ProxyEnv::new().with_https_proxy("http://alice:s3cret@proxy.corp:3128").with_no_proxy(".internal,10.0.0.0/8");
//! let rules = ProxyRules::new(None, &env).unwrap();
//! assert!(rules.proxy_for("https", "api.internal", 443).unwrap().is_none());
//! assert!(rules.proxy_for("https", "10.1.2.3", 6443).unwrap().is_none());
//! let proxy = rules.proxy_for("https", "k8s.example.com", 6443).unwrap().unwrap();
//! assert_eq!(proxy.origin(), "http://proxy.corp:3128");
//!
//! let handshake = proxy.handshake("k8s.example.com", 6443).unwrap();
//! assert!(handshake.request().starts_with(b"CONNECT k8s.example.com:6443 HTTP/1.1\r\n"));
//! assert_eq!(handshake.parse(b"HTTP/1.1 200 Connection established\r\n").unwrap(), Status::Partial);
//! let answer = b"HTTP/1.1 200 Connection established\r\n\r\n";
//! assert_eq!(handshake.parse(answer).unwrap(), Status::Complete(answer.len()));
//!
//! let refused = handshake.parse(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").unwrap_err();
//! assert_eq!(refused.status(), Some(407));
//! assert!(!refused.to_string().contains("s3cret") && !refused.to_string().contains("alice"));
//! ```

use core::net::IpAddr;
use std::fmt;

use base64::Engine as _;

use crate::config::SecretString;

/// The longest answer head to `CONNECT` accepted, in bytes.
pub const MAX_ANSWER_HEAD: usize = 16 * 1024;

/// The result of parsing bytes that may not all have arrived yet, as httparse has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// Parsed whole.
    Complete(T),
    /// More bytes are needed.
    Partial,
}

/// Where a proxy setting came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxySource {
    /// The cluster's `proxy-url` in the kubeconfig (or the [`Config`](crate::config::Config)).
    ProxyUrl,
    /// An environment variable, by name (`HTTPS_PROXY`, `https_proxy`, ...).
    Env(&'static str),
}

impl fmt::Display for ProxySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySource::ProxyUrl => f.write_str("proxy-url"),
            ProxySource::Env(name) => f.write_str(name),
        }
    }
}

/// A proxy setting that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// Only `http://` proxies (reached with an HTTP `CONNECT` tunnel) are supported.
    #[error(
        "{configured_by}: the proxy {proxy} has the scheme {scheme:?}, which is not supported: only http:// proxies (an HTTP CONNECT tunnel, which carries TLS to the cluster end to end) are{hint}",
        hint = scheme_hint(scheme)
    )]
    UnsupportedScheme {
        /// Where it was set.
        configured_by: ProxySource,
        /// The proxy's scheme, host and port (never its user info).
        proxy: String,
        /// The scheme.
        scheme: String,
    },
    /// The value is not a URL (it is not repeated: it may hold a password).
    #[error("{configured_by}: not a valid proxy URL ({message})")]
    InvalidUrl {
        /// Where it was set.
        configured_by: ProxySource,
        /// Why, as the URL parser says.
        message: String,
    },
    /// The URL has no host.
    #[error("{configured_by}: the proxy URL has no host")]
    NoHost {
        /// Where it was set.
        configured_by: ProxySource,
    },
}

fn scheme_hint(scheme: &str) -> &'static str {
    match scheme {
        "https" => " (TLS to the proxy itself is not)",
        s if s.starts_with("socks") => " (SOCKS is not)",
        _ => "",
    }
}

/// Why a proxy did not open a tunnel. Messages name the proxy (scheme, host and port) and the
/// status it answered, never the credentials sent to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// `407 Proxy Authentication Required`.
    #[error(
        "the proxy {proxy} (from {configured_by}) answered 407 Proxy Authentication Required to CONNECT {target}: {why}{asks}",
        why = if *sent_credentials {
            format!("it refused the user name and password in the user info of {configured_by}")
        } else {
            format!("{configured_by} has no credentials; give them in its user info (http://USER:PASSWORD@HOST:PORT)")
        },
        asks = asks_for(schemes)
    )]
    AuthenticationRequired {
        /// The proxy's scheme, host and port.
        proxy: String,
        /// Where the proxy (and its credentials, if any) was set.
        configured_by: ProxySource,
        /// The `host:port` the tunnel was for.
        target: String,
        /// Whether `Proxy-Authorization` was sent.
        sent_credentials: bool,
        /// The authentication schemes its `Proxy-Authenticate` headers ask for (`Basic`, ...).
        schemes: Vec<String>,
    },
    /// Any other status that is not 2xx.
    #[error("the proxy {proxy} (from {configured_by}) refused to CONNECT {target}: {status} {reason}")]
    Refused {
        /// The proxy's scheme, host and port.
        proxy: String,
        /// Where the proxy was set.
        configured_by: ProxySource,
        /// The `host:port` the tunnel was for.
        target: String,
        /// The status code.
        status: u16,
        /// Its reason phrase (control characters removed, at most 100 characters).
        reason: String,
    },
    /// The answer does not start as an HTTP/1.x response.
    #[error("the proxy {proxy} answered CONNECT with something that is not HTTP/1.x")]
    NotHttp {
        /// The proxy's scheme, host and port.
        proxy: String,
    },
    /// The answer is HTTP, but its head is malformed.
    #[error("the proxy {proxy} answered CONNECT with a malformed head: {message}")]
    Malformed {
        /// The proxy's scheme, host and port.
        proxy: String,
        /// What is wrong, and on which line.
        message: String,
    },
    /// The head did not end within [`MAX_ANSWER_HEAD`] bytes.
    #[error("the proxy {proxy} answered CONNECT with a head longer than {limit} bytes")]
    TooLarge {
        /// The proxy's scheme, host and port.
        proxy: String,
        /// The limit.
        limit: usize,
    },
    /// The tunnel's target cannot be written in a `CONNECT` request.
    #[error("cannot ask the proxy {proxy} for a tunnel to the host {host:?}: not a valid host name or address")]
    InvalidTarget {
        /// The proxy's scheme, host and port.
        proxy: String,
        /// The host asked for.
        host: String,
    },
}

impl ConnectError {
    /// The status the proxy answered, when it answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ConnectError::AuthenticationRequired { .. } => Some(407),
            ConnectError::Refused { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn asks_for(schemes: &[String]) -> String {
    if schemes.is_empty() || schemes.iter().any(|s| s.eq_ignore_ascii_case("basic")) {
        return String::new();
    }
    format!(" (it asks for {}, and only Basic is supported)", schemes.join(", "))
}

// ---------------------------------------------------------------------------------------------
// The environment

/// The proxy variables of an environment, handed in by the caller (the core reads none).
///
/// As Go's `httpproxy.FromEnvironment`: the upper-case name wins over the lower-case one, and
/// an empty value counts as unset. `ALL_PROXY` is not read (kubectl does not read it).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    https_proxy: Option<(&'static str, String)>,
    http_proxy: Option<(&'static str, String)>,
    no_proxy: Option<String>,
}

impl fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: &Option<(&'static str, String)>| {
            v.as_ref().map(|(name, value)| format!("{name}={}", without_user_info(value)))
        };
        f.debug_struct("ProxyEnv")
            .field("https_proxy", &show(&self.https_proxy))
            .field("http_proxy", &show(&self.http_proxy))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// A proxy value with its user info (user name and password) replaced, for `Debug`.
fn without_user_info(value: &str) -> String {
    let (scheme, rest) = value.split_once("://").map_or(("", value), |(scheme, rest)| (scheme, rest));
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) if scheme.is_empty() => format!("<redacted>@{}", &rest[at + 1..]),
        Some(at) => format!("{scheme}://<redacted>@{}", &rest[at + 1..]),
        None => value.to_owned(),
    }
}

impl ProxyEnv {
    /// The variables [`from_lookup`](Self::from_lookup) asks for, in the order it asks.
    pub const VARIABLES: [&'static str; 6] =
        ["HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"];

    /// No proxy variables set.
    pub fn new() -> Self {
        ProxyEnv::default()
    }

    /// The variables as `lookup` finds them (the value of a variable, if set).
    pub fn from_lookup(mut lookup: impl FnMut(&str) -> Option<String>) -> Self {
        let mut pick = |upper: &'static str, lower: &'static str| {
            [upper, lower].into_iter().find_map(|name| lookup(name).filter(|v| !v.is_empty()).map(|v| (name, v)))
        };
        ProxyEnv {
            https_proxy: pick("HTTPS_PROXY", "https_proxy"),
            http_proxy: pick("HTTP_PROXY", "http_proxy"),
            no_proxy: pick("NO_PROXY", "no_proxy").map(|(_, v)| v),
        }
    }

    /// With `HTTPS_PROXY` set to `value`.
    pub fn with_https_proxy(mut self, value: impl Into<String>) -> Self {
        self.https_proxy = Some(("HTTPS_PROXY", value.into())).filter(|(_, v)| !v.is_empty());
        self
    }

    /// With `HTTP_PROXY` set to `value`.
    pub fn with_http_proxy(mut self, value: impl Into<String>) -> Self {
        self.http_proxy = Some(("HTTP_PROXY", value.into())).filter(|(_, v)| !v.is_empty());
        self
    }

    /// With `NO_PROXY` set to `value`.
    pub fn with_no_proxy(mut self, value: impl Into<String>) -> Self {
        self.no_proxy = Some(value.into()).filter(|v| !v.is_empty());
        self
    }
}

// ---------------------------------------------------------------------------------------------
// NO_PROXY

/// A parsed `NO_PROXY` list, matched as Go's `httpproxy` matches it: comma-separated entries,
/// case-insensitive; `*` alone matches everything; an IP address or CIDR (`10.0.0.0/8`,
/// `fd00::/8`) matches addresses; a domain (`example.com`) matches itself and its subdomains,
/// `.example.com` and `*.example.com` only its subdomains; an entry with a port
/// (`example.com:8443`, `[::1]:6443`) only that port. Entries that make no sense are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NoProxy {
    all: bool,
    cidrs: Vec<(IpAddr, u8)>,
    ips: Vec<(IpAddr, String)>,
    /// Suffix with its leading dot, port (empty for any), and whether the bare domain matches.
    domains: Vec<(String, String, bool)>,
}

impl NoProxy {
    /// Parses a `NO_PROXY` value.
    pub fn parse(list: &str) -> NoProxy {
        let mut parsed = NoProxy::default();
        for entry in list.split(',') {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                return NoProxy { all: true, ..NoProxy::default() };
            }
            if let Some(cidr) = parse_cidr(&entry) {
                parsed.cidrs.push(cidr);
                continue;
            }
            let (host, port) = match split_host_port(&entry) {
                Some((host, port)) => (host, port),
                None => (strip_brackets(&entry), ""),
            };
            if host.is_empty() {
                continue;
            }
            if let Ok(ip) = host.parse::<IpAddr>() {
                parsed.ips.push((canonical(ip), port.to_owned()));
                continue;
            }
            // `*.example.com` is `.example.com`.
            let host = host.strip_prefix('*').filter(|h| h.starts_with('.')).unwrap_or(host);
            let (suffix, match_host) = match host.strip_prefix('.') {
                Some(_) => (host.to_owned(), false),
                None => (format!(".{host}"), true),
            };
            // Internationalised names compare in their ASCII form, as hosts in URLs are.
            let suffix = match url::Host::parse(&suffix[1..]) {
                Ok(url::Host::Domain(ascii)) => format!(".{ascii}"),
                _ => suffix,
            };
            parsed.domains.push((suffix, port.to_owned(), match_host));
        }
        parsed
    }

    /// Whether `host` (as in a URL: a name, an IPv4 address or a bracketed IPv6 address) on
    /// `port` is listed, so goes direct.
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = strip_brackets(host).to_ascii_lowercase();
        let port = port.to_string();
        let port_ok = |p: &str| p.is_empty() || p == port;
        if let Ok(ip) = host.parse::<IpAddr>() {
            let ip = canonical(ip);
            if self.cidrs.iter().any(|&(net, bits)| in_cidr(ip, net, bits)) {
                return true;
            }
            if self.ips.iter().any(|(listed, p)| *listed == ip && port_ok(p)) {
                return true;
            }
        }
        self.domains.iter().any(|(suffix, p, match_host)| {
            (host.ends_with(suffix.as_str()) || (*match_host && host == suffix[1..])) && port_ok(p)
        })
    }
}

/// `host:port` or `[v6]:port`, as Go's `net.SplitHostPort`: `None` without a port or with
/// too many colons.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        return (!port.contains(':')).then_some((host, port));
    }
    let (host, port) = s.rsplit_once(':')?;
    (!host.contains(':')).then_some((host, port))
}

fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// An IPv4-mapped IPv6 address as the IPv4 address it stands for.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    if bits.is_empty() || !bits.bytes().all(|b| b.is_ascii_digit()) || bits.len() > 3 {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if bits > max {
        return None;
    }
    // An IPv4-mapped network is the IPv4 network it stands for.
    match ip {
        IpAddr::V6(v6) if bits >= 96 && v6.to_ipv4_mapped().is_some() => Some((canonical(ip), bits - 96)),
        _ => Some((ip, bits)),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (a, b, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32u32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128u32),
        _ => return false,
    };
    let bits = u32::from(bits);
    if bits == 0 {
        return true;
    }
    let shift = width - bits;
    (a >> shift) == (b >> shift)
}

fn is_loopback(host: &str) -> bool {
    let host = strip_brackets(host).to_ascii_lowercase();
    // Go bypasses `localhost` itself; its subdomains (RFC 6761) are loopback too.
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| canonical(ip).is_loopback())
}

// ---------------------------------------------------------------------------------------------
// Which proxy

/// Which proxy reaches which destination. Cheap to share; decided per connection with
/// [`proxy_for`](Self::proxy_for).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProxyRules {
    choice: Choice,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
enum Choice {
    #[default]
    Direct,
    Everything(ConnectProxy),
    FromEnv {
        https: Option<Result<ConnectProxy, ProxyError>>,
        http: Option<Result<ConnectProxy, ProxyError>>,
        no_proxy: NoProxy,
    },
}

impl ProxyRules {
    /// No proxy: every connection goes direct.
    pub fn direct() -> Self {
        ProxyRules::default()
    }

    /// The rules client-go follows: the cluster's `proxy-url`, when set, for every
    /// destination (loopback and `NO_PROXY` included); else the environment's proxies.
    ///
    /// A `proxy-url` that cannot be used is an error now; an environment proxy that cannot
    /// be used is an error when a destination would go through it.
    pub fn new(proxy_url: Option<&url::Url>, env: &ProxyEnv) -> Result<Self, ProxyError> {
        match proxy_url {
            Some(url) => {
                Ok(ProxyRules { choice: Choice::Everything(ConnectProxy::from_url(url, ProxySource::ProxyUrl)?) })
            }
            None => Ok(ProxyRules::from_env(env)),
        }
    }

    /// The environment's proxies: `HTTPS_PROXY` for `https` destinations, `HTTP_PROXY` for
    /// `http` ones, never for `localhost` or loopback addresses or what `NO_PROXY` lists. A
    /// value without a scheme (`proxy.corp:3128`) is taken as `http://`, as Go does.
    pub fn from_env(env: &ProxyEnv) -> Self {
        let parse = |v: &Option<(&'static str, String)>| v.as_ref().map(|(name, value)| env_proxy(name, value));
        ProxyRules {
            choice: Choice::FromEnv {
                https: parse(&env.https_proxy),
                http: parse(&env.http_proxy),
                no_proxy: NoProxy::parse(env.no_proxy.as_deref().unwrap_or("")),
            },
        }
    }

    /// The proxy for a connection to `host` (as in a URL) on `port` for a `scheme` (`https`
    /// or `http`) URL, or `None` to go direct.
    pub fn proxy_for(&self, scheme: &str, host: &str, port: u16) -> Result<Option<&ConnectProxy>, ProxyError> {
        match &self.choice {
            Choice::Direct => Ok(None),
            Choice::Everything(proxy) => Ok(Some(proxy)),
            Choice::FromEnv { https, http, no_proxy } => {
                let proxy = match scheme {
                    "https" => https,
                    "http" => http,
                    _ => &None,
                };
                let Some(proxy) = proxy else { return Ok(None) };
                if is_loopback(host) || no_proxy.matches(host, port) {
                    return Ok(None);
                }
                proxy.as_ref().map(Some).map_err(Clone::clone)
            }
        }
    }
}

/// An environment proxy value, parsed as Go's `httpproxy` does.
fn env_proxy(name: &'static str, value: &str) -> Result<ConnectProxy, ProxyError> {
    let configured_by = ProxySource::Env(name);
    let url = match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https" | "socks5") => url,
        // A value with a scheme of its own is not retried as `http://…`.
        first if !value.contains("://") => match url::Url::parse(&format!("http://{value}")) {
            Ok(url) => url,
            Err(_) => {
                let message = match first {
                    Err(e) => e.to_string(),
                    Ok(_) => "not a URL".into(),
                };
                return Err(ProxyError::InvalidUrl { configured_by, message });
            }
        },
        Ok(url) => url,
        Err(e) => return Err(ProxyError::InvalidUrl { configured_by, message: e.to_string() }),
    };
    ConnectProxy::from_url(&url, configured_by)
}

// ---------------------------------------------------------------------------------------------
// The CONNECT codec

/// An `http://` proxy reached with `CONNECT`. Its `Debug` never shows the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectProxy {
    /// The host as in the URL (an IPv6 address in brackets).
    host: String,
    port: u16,
    origin: String,
    /// `Basic …`, from the URL's user info.
    authorization: Option<SecretString>,
    configured_by: ProxySource,
}

impl fmt::Debug for ConnectProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectProxy")
            .field("origin", &self.origin)
            .field("configured_by", &self.configured_by)
            .field("authorization", &self.authorization)
            .finish()
    }
}

impl ConnectProxy {
    /// A proxy from its URL: only `http://` is supported; user info (percent-decoded) becomes
    /// `Proxy-Authorization: Basic`.
    pub fn from_url(url: &url::Url, configured_by: ProxySource) -> Result<Self, ProxyError> {
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or(ProxyError::NoHost { configured_by })?;
        let port = url.port_or_known_default().unwrap_or(80);
        let origin = format!("{}://{host}:{port}", url.scheme());
        if url.scheme() != "http" {
            return Err(ProxyError::UnsupportedScheme { configured_by, proxy: origin, scheme: url.scheme().into() });
        }
        let authorization = (!url.username().is_empty() || url.password().is_some()).then(|| {
            let mut user_pass = percent_decode(url.username());
            user_pass.push(b':');
            user_pass.extend(percent_decode(url.password().unwrap_or("")));
            SecretString::new(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass)))
        });
        Ok(ConnectProxy { host: host.to_owned(), port, origin, authorization, configured_by })
    }

    /// The host to connect to (an IPv6 address without brackets).
    pub fn host(&self) -> &str {
        strip_brackets(&self.host)
    }

    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://host:port`, for messages (never the user info).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Where it was set.
    pub fn configured_by(&self) -> ProxySource {
        self.configured_by
    }

    /// Whether credentials are sent to it (`Proxy-Authorization`).
    pub fn has_credentials(&self) -> bool {
        self.authorization.is_some()
    }

    /// The `CONNECT` exchange for a tunnel to `host` (as in a URL) and `port`.
    pub fn handshake(&self, host: &str, port: u16) -> Result<ConnectHandshake, ConnectError> {
        let bare = strip_brackets(host);
        let valid = !bare.is_empty()
            && bare.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'%'));
        if !valid {
            return Err(ConnectError::InvalidTarget {
                proxy: self.origin.clone(),
                host: host.escape_debug().to_string(),
            });
        }
        let target = if bare.contains(':') { format!("[{bare}]:{port}") } else { format!("{bare}:{port}") };
        let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n").into_bytes();
        if let Some(auth) = &self.authorization {
            request.extend_from_slice(b"Proxy-Authorization: ");
            request.extend_from_slice(auth.expose().as_bytes());
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"\r\n");
        Ok(ConnectHandshake {
            request,
            target,
            proxy: self.origin.clone(),
            configured_by: self.configured_by,
            sent_credentials: self.authorization.is_some(),
        })
    }
}

/// One `CONNECT` exchange: write [`request`](Self::request) to the proxy, then read its answer
/// and [`parse`](Self::parse) all the bytes read so far until it is
/// [`Complete`](Status::Complete) or an error. Bytes after the answer's head belong to the
/// tunnel; [`read_limit`](Self::read_limit) says how many may be read next without reading
/// past the head.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectHandshake {
    /// May hold a credential: never in `Debug`.
    request: Vec<u8>,
    target: String,
    proxy: String,
    configured_by: ProxySource,
    sent_credentials: bool,
}

impl fmt::Debug for ConnectHandshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectHandshake")
            .field("proxy", &self.proxy)
            .field("target", &self.target)
            .field("request_len", &self.request.len())
            .field("sent_credentials", &self.sent_credentials)
            .finish()
    }
}

impl ConnectHandshake {
    /// The bytes to write to the proxy.
    pub fn request(&self) -> &[u8] {
        &self.request
    }

    /// `host:port` the tunnel is for.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// How many bytes may be read next, given those `received` so far, without reading past
    /// the end of the answer's head (which ends with an empty line, `\r\n` or `\n`).
    pub fn read_limit(&self, received: &[u8]) -> usize {
        // The shortest end of a head is `\n\n`: one byte may finish it after a `\n` (or
        // `\n\r`), two otherwise.
        if received.ends_with(b"\n") || received.ends_with(b"\n\r") { 1 } else { 2 }
    }

    /// Parses the answer read so far. `Complete(n)`: the proxy opened the tunnel, its head is
    /// the first `n` bytes and what follows is the tunnel's. `Partial`: read more. An error
    /// as soon as the bytes show one (a non-2xx status once the head is whole).
    pub fn parse(&self, received: &[u8]) -> Result<Status<usize>, ConnectError> {
        let proxy = || self.proxy.clone();
        // Empty lines before the status line are tolerated, as HTTP/1.1 parsers do.
        let start = received.iter().position(|&b| b != b'\r' && b != b'\n').unwrap_or(received.len());
        let rest = &received[start..];
        let prefix = b"HTTP/1.";
        let n = rest.len().min(prefix.len());
        if rest[..n] != prefix[..n] {
            return Err(ConnectError::NotHttp { proxy: proxy() });
        }
        let Some(head_len) = head_end(rest) else {
            if received.len() >= MAX_ANSWER_HEAD {
                return Err(ConnectError::TooLarge { proxy: proxy(), limit: MAX_ANSWER_HEAD });
            }
            return Ok(Status::Partial);
        };
        let total = start + head_len;
        if total > MAX_ANSWER_HEAD {
            return Err(ConnectError::TooLarge { proxy: proxy(), limit: MAX_ANSWER_HEAD });
        }
        let head = &rest[..head_len];
        let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let status_line = lines.next().unwrap_or_default();
        let (status, reason) = parse_status_line(status_line).ok_or_else(|| ConnectError::Malformed {
            proxy: proxy(),
            message: "the status line is not `HTTP/1.x CODE REASON`".into(),
        })?;
        let mut schemes = Vec::new();
        for (index, line) in lines.enumerate() {
            if line.is_empty() {
                break;
            }
            let line_no = index + 2;
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return Err(ConnectError::Malformed {
                    proxy: proxy(),
                    message: format!("line {line_no} is not a header"),
                });
            };
            let name = &line[..colon];
            if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
                return Err(ConnectError::Malformed {
                    proxy: proxy(),
                    message: format!("line {line_no} has an invalid header name"),
                });
            }
            if name.eq_ignore_ascii_case(b"proxy-authenticate") {
                let value = String::from_utf8_lossy(&line[colon + 1..]);
                if let Some(scheme) = value.split_whitespace().next() {
                    let scheme: String =
                        scheme.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(32).collect();
                    if !scheme.is_empty() && !schemes.contains(&scheme) {
                        schemes.push(scheme);
                    }
                }
            }
        }
        match status {
            200..=299 => Ok(Status::Complete(total)),
            407 => Err(ConnectError::AuthenticationRequired {
                proxy: proxy(),
                configured_by: self.configured_by,
                target: self.target.clone(),
                sent_credentials: self.sent_credentials,
                schemes,
            }),
            _ => Err(ConnectError::Refused {
                proxy: proxy(),
                configured_by: self.configured_by,
                target: self.target.clone(),
                status,
                reason,
            }),
        }
    }
}

/// The length of the head (through its empty line), if it has ended.
pub(crate) fn head_end(bytes: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        let line = &bytes[line_start..i];
        if line_start > 0 && (line.is_empty() || line == b"\r") {
            return Some(i + 1);
        }
        line_start = i + 1;
    }
    None
}

/// `HTTP/1.x SP 3DIGIT [SP reason]`: the code and the reason, made printable.
pub(crate) fn parse_status_line(line: &[u8]) -> Option<(u16, String)> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (&minor, rest) = rest.split_first()?;
    if !minor.is_ascii_digit() {
        return None;
    }
    let rest = rest.strip_prefix(b" ")?;
    let (code, rest) = rest.split_at_checked(3)?;
    if !code.iter().all(u8::is_ascii_digit) || code[0] == b'0' {
        return None;
    }
    let reason = match rest {
        [] => &[][..],
        [b' ', reason @ ..] => reason,
        _ => return None,
    };
    let code = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
    let reason: String = String::from_utf8_lossy(reason).chars().filter(|c| !c.is_control()).take(100).collect();
    Some((code, reason.trim().to_owned()))
}

/// Whether `b` may appear in an HTTP token (a header name, say).
pub(crate) fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).and_then(|&b| hex(b)), bytes.get(i + 2).and_then(|&b| hex(b)))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}
