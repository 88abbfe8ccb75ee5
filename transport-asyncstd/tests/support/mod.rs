//! A tiny scripted HTTP/1.1 server (plain or TLS, on 127.0.0.1 port 0), an HTTP CONNECT proxy,
//! and certificates made with rcgen, for the transport's tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_std::channel::Receiver;
use async_std::net::{TcpListener, TcpStream};
use futures_rustls::TlsAcceptor;
use futures_rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use futures_rustls::rustls;
use futures_util::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

/// A certificate authority that signs server and client certificates.
pub struct Ca {
    /// Its certificate, DER.
    pub der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key.
pub struct Leaf {
    pub cert_der: Vec<u8>,
    pub cert_pem: String,
    pub key_der: Vec<u8>,
    pub key_pem: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { der: cert.der().to_vec(), issuer: Issuer::new(params, key) }
    }

    fn leaf(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose, cn: &str) -> Leaf {
        let mut params = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![purpose];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_der: cert.der().to_vec(),
            cert_pem: cert.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }

    /// A server certificate for these names (IP addresses become IP SANs).
    pub fn server(&self, names: &[&str]) -> Leaf {
        self.leaf(names, ExtendedKeyUsagePurpose::ServerAuth, names.first().copied().unwrap_or("server"))
    }

    /// A client certificate for a user.
    pub fn client(&self, user: &str) -> Leaf {
        self.leaf(&[], ExtendedKeyUsagePurpose::ClientAuth, user)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS server settings: this certificate, and (if given) a CA whose client certificates are
/// required.
pub fn server_tls(leaf: &Leaf, client_ca: Option<&Ca>) -> Arc<rustls::ServerConfig> {
    let builder =
        rustls::ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions().unwrap();
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(ca.der.clone())).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf.key_der.clone()));
    Arc::new(builder.with_single_cert(vec![CertificateDer::from(leaf.cert_der.clone())], key).unwrap())
}

/// A request as the server read it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub target: String,
    /// Lower-case names; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    /// Whether the client presented a certificate.
    pub client_cert: bool,
    /// Which connection (1, 2, …) carried it.
    pub connection: usize,
}

/// What the server does in answer to a request.
pub enum Step {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Wait.
    Pause(Duration),
    /// Wait until the test says so.
    WaitFor(Receiver<()>),
    /// Close the connection (without TLS close_notify).
    Close,
    /// Echo what comes (after an upgrade) until the client ends its side, then close.
    Echo,
}

pub type Handler = Arc<dyn Fn(&Seen) -> Vec<Step> + Send + Sync>;

/// A running test server.
pub struct Server {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    pub connections: Arc<AtomicUsize>,
}

impl Server {
    pub fn url(&self, tls: bool) -> url::Url {
        format!("{}://{}/", if tls { "https" } else { "http" }, self.addr).parse().unwrap()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Starts a server on 127.0.0.1, port 0, answering with `handler`.
pub async fn serve(
    tls: Option<Arc<rustls::ServerConfig>>,
    handler: impl Fn(&Seen) -> Vec<Step> + Send + Sync + 'static,
) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let handler: Handler = Arc::new(handler);
    let (s, c) = (seen.clone(), connections.clone());
    async_std::task::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            let (handler, seen, tls) = (handler.clone(), s.clone(), tls.clone());
            async_std::task::spawn(async move {
                match tls {
                    Some(config) => {
                        let Ok(stream) = TlsAcceptor::from(config).accept(tcp).await else { return };
                        let client_cert = stream.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
                        serve_connection(stream, n, client_cert, handler, seen).await;
                    }
                    None => serve_connection(tcp, n, false, handler, seen).await,
                }
            });
        }
    });
    Server { addr, seen, connections }
}

async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    connection: usize,
    client_cert: bool,
    handler: Handler,
    seen: Arc<Mutex<Vec<Seen>>>,
) {
    let mut stream = BufReader::new(stream);
    loop {
        let Some(request) = read_request(&mut stream, connection, client_cert).await else { return };
        seen.lock().unwrap().push(request.clone());
        for step in handler(&request) {
            match step {
                Step::Send(bytes) => {
                    if stream.get_mut().write_all(&bytes).await.is_err() || stream.get_mut().flush().await.is_err() {
                        return;
                    }
                }
                Step::Pause(d) => async_std::task::sleep(d).await,
                Step::WaitFor(rx) => {
                    let _ = rx.recv().await;
                }
                Step::Close => return,
                Step::Echo => {
                    loop {
                        let n = match stream.fill_buf().await {
                            Ok([]) | Err(_) => break,
                            Ok(buf) => {
                                let data = buf.to_vec();
                                if stream.get_mut().write_all(&data).await.is_err() {
                                    return;
                                }
                                data.len()
                            }
                        };
                        stream.consume_unpin(n);
                    }
                    let _ = stream.get_mut().close().await;
                    return;
                }
            }
        }
    }
}

async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut BufReader<S>,
    connection: usize,
    client_cert: bool,
) -> Option<Seen> {
    let mut line = String::new();
    if stream.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if stream.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':')?;
        headers
            .entry(name.trim().to_ascii_lowercase())
            .and_modify(|v: &mut String| {
                v.push_str(", ");
                v.push_str(value.trim());
            })
            .or_insert_with(|| value.trim().to_owned());
    }
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).await.ok()?;
    Some(Seen { method, target, headers, body, client_cert, connection })
}

/// A response with a `Content-Length` body.
pub fn response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\ncontent-length: {}\r\n", reason(status), body.len());
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// The head of a chunked response.
pub fn chunked_head(status: u16, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {}\r\ntransfer-encoding: chunked\r\n", reason(status));
    for (n, v) in headers {
        out.push_str(&format!("{n}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// One chunk of a chunked body (empty: the last).
pub fn chunk(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    if data.is_empty() {
        // The last chunk has no trailers, then the blank line.
        out.truncate(3);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        404 => "Not Found",
        _ => "Whatever",
    }
}

/// An HTTP proxy that tunnels `CONNECT` requests; it records each request's head.
pub struct Proxy {
    pub addr: SocketAddr,
    pub heads: Arc<Mutex<Vec<String>>>,
}

/// Starts a CONNECT proxy on 127.0.0.1. With `refuse`, it answers every CONNECT with that
/// status.
pub async fn proxy(refuse: Option<u16>) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let h = heads.clone();
    async_std::task::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else { return };
            let heads = h.clone();
            async_std::task::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                heads.lock().unwrap().push(head.clone());
                if let Some(status) = refuse {
                    let _ =
                        client.write_all(format!("HTTP/1.1 {status} No\r\ncontent-length: 0\r\n\r\n").as_bytes()).await;
                    return;
                }
                let target = head.split_whitespace().nth(1).unwrap_or_default().to_owned();
                let Ok(upstream) = TcpStream::connect(target).await else {
                    let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n").await;
                    return;
                };
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await;
                let (mut cr, mut cw) = (client.clone(), client);
                let (mut ur, mut uw) = (upstream.clone(), upstream);
                let up = async_std::task::spawn(async move {
                    let _ = futures_util::io::copy(&mut cr, &mut uw).await;
                    let _ = uw.shutdown(std::net::Shutdown::Write);
                });
                let _ = futures_util::io::copy(&mut ur, &mut cw).await;
                let _ = cw.shutdown(std::net::Shutdown::Write);
                up.await;
            });
        }
    });
    Proxy { addr, heads }
}
