//! A loopback server for protocol upgrades: it reads an HTTP/1.1 request head over TLS by hand
//! and answers the WebSocket handshake of exec, attach and port-forward with bytes it writes
//! itself, so that tests control exactly what the client receives and when (the first bytes
//! of the new protocol in the same write as the `101` head, a connection cut without TLS's
//! closing alert). It speaks no WebSocket framing: after the `101`, bytes are echoed raw.
//!
//! What it does is chosen by the pod named in the request path
//! (`/api/v1/namespaces/NS/pods/POD/exec`, `attach` or `portforward`); see [`Behaviour`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use kube_proto::config::Config;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::TOKEN;
use crate::tls_loopback::{Tls, TlsLoopback};

/// What the server does after reading an upgrade request, by the pod it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `echo`: switches, then echoes every byte until the client ends its side, then ends its
    /// own (with TLS's closing alert).
    Echo,
    /// `greet`: switches and writes [`GREETING`] in the same write as the `101` head, then
    /// echoes.
    Greet,
    /// `forbidden`: `403 Forbidden` with the API server's `Status` body.
    Forbidden,
    /// `cut`: switches, writes [`CUT_AFTER`] bytes, then drops the TCP connection without
    /// TLS's closing alert.
    Cut,
    /// `bye`: switches, writes `bye` and ends the connection cleanly.
    Bye,
    /// Any other pod: `404 Not Found` with a `Status` body.
    NotFound,
}

/// The bytes `greet` sends right after its `101` head.
pub const GREETING: &[u8] = b"greeting from the server";
/// How many bytes `cut` sends before it drops the connection.
pub const CUT_AFTER: usize = 1000;

impl Behaviour {
    fn for_pod(pod: &str) -> Behaviour {
        match pod {
            "echo" => Behaviour::Echo,
            "greet" => Behaviour::Greet,
            "forbidden" => Behaviour::Forbidden,
            "cut" => Behaviour::Cut,
            "bye" => Behaviour::Bye,
            _ => Behaviour::NotFound,
        }
    }
}

/// An upgrade request as the server read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenUpgrade {
    /// The request line's method.
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// The headers, names in lower case, repeated ones joined with `, `.
    pub headers: BTreeMap<String, String>,
}

impl SeenUpgrade {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// A running upgrade server on `127.0.0.1` (HTTPS, a certificate for `127.0.0.1`, the bearer
/// token [`TOKEN`]). Dropping it stops it.
pub struct UpgradeServer {
    server: TlsLoopback,
    seen: Arc<Mutex<Vec<SeenUpgrade>>>,
}

impl std::fmt::Debug for UpgradeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpgradeServer").field("url", &self.server.url().as_str()).finish_non_exhaustive()
    }
}

impl UpgradeServer {
    /// Starts a server on a thread with its own tokio runtime.
    pub fn start() -> UpgradeServer {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        let server = TlsLoopback::start("kit-upgrade-ca", "kit-upgrade", move |mut tls| {
            let seen = recorded.clone();
            async move {
                let Some(request) = read_head(&mut tls).await else { return };
                seen.lock().unwrap_or_else(PoisonError::into_inner).push(request.clone());
                answer(tls, &request).await;
            }
        });
        UpgradeServer { server, seen }
    }

    /// The base URL, `https://127.0.0.1:PORT`.
    pub fn url(&self) -> url::Url {
        self.server.url()
    }

    /// The server's CA and the token it accepts.
    pub fn config(&self) -> Config {
        self.server.config()
    }

    /// The requests read so far.
    pub fn requests(&self) -> Vec<SeenUpgrade> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// Reads a request head byte by byte, so that nothing after it is consumed.
async fn read_head<S: AsyncReadExt + Unpin>(stream: &mut S) -> Option<SeenUpgrade> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, target) = (request_line.next()?.to_owned(), request_line.next()?.to_owned());
    let mut headers = BTreeMap::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        headers
            .entry(name.trim().to_ascii_lowercase())
            .and_modify(|v: &mut String| {
                v.push_str(", ");
                v.push_str(value.trim());
            })
            .or_insert_with(|| value.trim().to_owned());
    }
    Some(SeenUpgrade { method, target, headers })
}

/// The pod a request path names.
fn pod(target: &str) -> &str {
    let path = target.split('?').next().unwrap_or_default();
    path.split("/pods/").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or_default()
}

/// A `Status` answer, as the API server renders one. The server closes the connection after it,
/// and says so: a client that pooled it would otherwise send its next request into a closed
/// connection.
fn status(code: u16, reason: &str, message: &str) -> Vec<u8> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code});
    let body = serde_json::to_vec(&body).unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// The `101` head for a request: the accept key of its `Sec-WebSocket-Key` and the first
/// subprotocol it offers.
fn switching(request: &SeenUpgrade) -> Vec<u8> {
    let accept = kube_proto::websocket::accept_key(request.header("sec-websocket-key").unwrap_or_default());
    let protocol = request.header("sec-websocket-protocol").and_then(|p| p.split(',').next()).unwrap_or("").trim();
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
    )
    .into_bytes()
}

async fn answer(mut tls: Tls, request: &SeenUpgrade) {
    if request.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
        let _ = tls.write_all(&status(401, "Unauthorized", "Unauthorized")).await;
        let _ = tls.shutdown().await;
        return;
    }
    let behaviour = Behaviour::for_pod(pod(&request.target));
    let written = match behaviour {
        Behaviour::Forbidden => status(
            403,
            "Forbidden",
            "pods \"forbidden\" is forbidden: User \"kit\" cannot create resource \"pods/exec\" in API group \"\"",
        ),
        Behaviour::NotFound => status(404, "NotFound", &format!("pods \"{}\" not found", pod(&request.target))),
        Behaviour::Greet => [switching(request), GREETING.to_vec()].concat(),
        Behaviour::Cut => [switching(request), vec![7; CUT_AFTER]].concat(),
        Behaviour::Bye => [switching(request), b"bye".to_vec()].concat(),
        Behaviour::Echo => switching(request),
    };
    if tls.write_all(&written).await.is_err() || tls.flush().await.is_err() {
        return;
    }
    match behaviour {
        Behaviour::Echo | Behaviour::Greet => {
            let (mut reader, mut writer) = tokio::io::split(tls);
            let _ = tokio::io::copy(&mut reader, &mut writer).await;
            let _ = writer.shutdown().await;
        }
        // Dropped as it is: the TCP connection closes with no closing alert.
        Behaviour::Cut => drop(tls),
        Behaviour::Bye | Behaviour::Forbidden | Behaviour::NotFound => {
            let _ = tls.shutdown().await;
        }
    }
}
