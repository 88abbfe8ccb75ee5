//! A loopback TLS server that runs the fake API server's exec, attach and port-forward over
//! real sockets: it reads an upgrade request, hands it to a [`FakeApiServer`] (which checks it
//! and answers the `101` or a refusal with its `Status`), then runs the fake's
//! [`FakeSession`](kube_runtime::fake::server::FakeSession) over the connection (the loop it
//! shares with [`TestServer`](crate::TestServer)) — real WebSocket frames, the scripted
//! processes and listeners of [`exec`](kube_runtime::fake::server::exec) behind them.
//!
//! Two knobs shape what the client meets: [`offer_only`](ExecServer::offer_only) makes the
//! server pick an older channel protocol (`v4.channel.k8s.io`, as a server before Kubernetes
//! 1.30 would), and [`cut_next_after`](ExecServer::cut_next_after) drops the next session's
//! connection mid-stream (no WebSocket close, no TLS closing alert).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use k8s_openapi::api::core::v1::Pod;
use kube_proto::config::Config;
use kube_runtime::fake::{FakeApiServer, FakeConfig, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::TOKEN;
use crate::session::run_session;
use crate::tls_loopback::{Tls, TlsLoopback};

/// What the next upgrades meet.
#[derive(Debug, Default)]
struct Knobs {
    /// Replaces the subprotocols the client offers.
    protocols: Option<String>,
    /// Cuts the next session after this many bytes of it were written.
    cut_after: Option<usize>,
}

struct Shared {
    fake: Mutex<FakeApiServer>,
    knobs: Mutex<Knobs>,
}

/// A running server on `127.0.0.1` (HTTPS with a certificate for `127.0.0.1`, the bearer token
/// [`TOKEN`]), serving upgrades only. Dropping it stops it.
pub struct ExecServer {
    server: TlsLoopback,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ExecServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecServer").field("url", &self.server.url().as_str()).finish_non_exhaustive()
    }
}

impl ExecServer {
    /// Starts a server with a fresh fake, on a thread with its own tokio runtime.
    pub fn start() -> ExecServer {
        let shared = Arc::new(Shared {
            fake: Mutex::new(FakeApiServer::new(FakeConfig::default(), Instant::now())),
            knobs: Mutex::new(Knobs::default()),
        });
        let served = shared.clone();
        let server = TlsLoopback::start("kit-exec-ca", "kit-exec", move |tls| {
            let shared = served.clone();
            async move { serve(tls, &shared).await }
        });
        ExecServer { server, shared }
    }

    /// The fake, to script pods with (`script_exec`, `script_port`).
    pub fn fake(&self) -> MutexGuard<'_, FakeApiServer> {
        self.shared.fake.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates the pod `name` in `default`: one container, `main`, whose command is `cat`,
    /// on a node.
    pub fn add_pod(&self, name: &str) {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"nodeName": "kit-node", "containers": [{"name": "main", "image": "busybox", "command": ["cat"]}]},
        }))
        .expect("a pod");
        let request =
            kube_proto::Request::namespaced::<Pod>("default").create(&Default::default(), &pod).expect("a request");
        let reply = self.fake().handle(Instant::now(), &request).into_response().expect("a response");
        assert!(reply.status().is_success(), "creating {name}: {}", reply.status());
    }

    /// From now on, answers as if the client offered only `protocol` (a server that does not
    /// speak the newer ones picks it).
    pub fn offer_only(&self, protocol: &str) {
        self.knobs().protocols = Some(protocol.to_owned());
    }

    /// The next session's connection is dropped once the server has written `bytes` bytes of
    /// it (after the `101`): no WebSocket close, no TLS closing alert.
    pub fn cut_next_after(&self, bytes: usize) {
        self.knobs().cut_after = Some(bytes);
    }

    fn knobs(&self) -> MutexGuard<'_, Knobs> {
        self.shared.knobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The base URL, `https://127.0.0.1:PORT`.
    pub fn url(&self) -> url::Url {
        self.server.url()
    }

    /// The server's CA and the token it accepts.
    pub fn config(&self) -> Config {
        self.server.config()
    }
}

async fn serve(mut tls: Tls, shared: &Shared) {
    let Some((mut request, early)) = read_request(&mut tls).await else { return };
    let authorized = request.headers().get("authorization").and_then(|v| v.to_str().ok())
        == Some(format!("Bearer {TOKEN}").as_str());
    if !authorized {
        let body = br#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#;
        let _ = write_response(&mut tls, 401, &http::HeaderMap::new(), body).await;
        let _ = tls.shutdown().await;
        return;
    }
    let cut_after = {
        let mut knobs = shared.knobs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(protocols) = &knobs.protocols {
            let value = http::HeaderValue::from_str(protocols).expect("a header value");
            request.headers_mut().insert("sec-websocket-protocol", value);
        }
        knobs.cut_after.take()
    };
    let reply = shared.fake.lock().unwrap_or_else(PoisonError::into_inner).handle(Instant::now(), &request);
    match reply {
        Reply::Upgrade { head, session } => {
            if write_response(&mut tls, 101, head.headers(), b"").await.is_ok() {
                run_session(session, tls, &early, cut_after).await;
            }
        }
        Reply::Response(response) => {
            let _ = write_response(&mut tls, response.status().as_u16(), response.headers(), response.body()).await;
            let _ = tls.shutdown().await;
        }
        Reply::Watch { .. } => {
            let _ = write_response(&mut tls, 501, &http::HeaderMap::new(), b"").await;
            let _ = tls.shutdown().await;
        }
    }
}

/// Reads a request head: the request (no body) and the bytes read past the head.
async fn read_request(tls: &mut Tls) -> Option<(http::Request<Vec<u8>>, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(at) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if data.len() > 64 * 1024 {
            return None;
        }
        let n = tls.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = std::str::from_utf8(&data[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let mut builder = http::Request::builder().method(request_line.next()?).uri(request_line.next()?);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(name.trim(), value.trim());
    }
    let request = builder.body(Vec::new()).ok()?;
    Some((request, data[end + 4..].to_vec()))
}

async fn write_response(tls: &mut Tls, status: u16, headers: &http::HeaderMap, body: &[u8]) -> std::io::Result<()> {
    let reason = http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Unknown");
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (name, value) in headers {
        if ![http::header::CONTENT_LENGTH, http::header::TRANSFER_ENCODING, http::header::CONNECTION].contains(name)
            || status == 101
        {
            head.push_str(&format!("{name}: {}\r\n", String::from_utf8_lossy(value.as_bytes())));
        }
    }
    if status != 101 {
        // One answer per connection: a client must not keep it for its next request.
        head.push_str(&format!("content-length: {}\r\nconnection: close\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    tls.write_all(&out).await?;
    tls.flush().await
}
