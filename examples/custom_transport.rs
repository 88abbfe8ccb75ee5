//! Any HTTP stack plugs in: a transport written with nothing but `std::net` (blocking HTTP/1.1,
//! one connection per request) driving `Client` and `Api` on `futures-executor`, no async
//! runtime at all. It talks to the fake API server behind a tiny std-only HTTP server.
//!
//! ```sh
//! cargo run --example custom_transport
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Instant;

use futures_util::future::BoxFuture;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_proto::{ListParams, PostParams, ResourceExt};
use kube_runtime::fake::{FakeApiServer, FakeConfig, Reply};
use kube_runtime::{Api, Client, Transport, TransportError, TransportResponse};

// ---- The transport: the whole of it. ----

/// Blocking HTTP/1.1 over `std::net::TcpStream`.
struct StdTransport {
    addr: SocketAddr,
}

impl StdTransport {
    fn exchange(&self, req: http::Request<Vec<u8>>) -> std::io::Result<TransportResponse> {
        let mut stream = TcpStream::connect(self.addr)?;
        let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let mut head = format!("{} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n", req.method(), self.addr);
        for (name, value) in req.headers() {
            head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or_default()));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", req.body().len()));
        stream.write_all(head.as_bytes())?;
        stream.write_all(req.body())?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(http::StatusCode::BAD_GATEWAY);
        let mut headers = http::HeaderMap::new();
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let Some((name, value)) = line.trim_end().split_once(": ") else { break };
            if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(name), http::HeaderValue::try_from(value)) {
                headers.append(n, v);
            }
        }
        let mut body = Vec::new();
        reader.read_to_end(&mut body)?;
        Ok(TransportResponse::full(status, headers, body))
    }
}

impl Transport for StdTransport {
    fn send(&self, req: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<TransportResponse, TransportError>> {
        let result = self
            .exchange(req)
            .map_err(|e| TransportError::Connect { url: self.addr.to_string(), message: e.to_string() });
        Box::pin(async move { result })
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        std::thread::sleep(deadline.saturating_duration_since(self.now()));
        Box::pin(async {})
    }
}

// ---- A tiny server in front of the fake API server (no watches), and the demo. ----

fn serve(listener: TcpListener) {
    let mut server = FakeApiServer::new(FakeConfig::default(), Instant::now());
    for stream in listener.incoming().flatten() {
        let mut reader = BufReader::new(stream);
        let (mut line, mut len) = (String::new(), 0usize);
        let _ = reader.read_line(&mut line);
        let mut parts = line.split_whitespace();
        let mut builder =
            http::Request::builder().method(parts.next().unwrap_or("GET")).uri(parts.next().unwrap_or("/"));
        loop {
            let mut h = String::new();
            let _ = reader.read_line(&mut h);
            let Some((name, value)) = h.trim_end().split_once(": ") else { break };
            len = if name.eq_ignore_ascii_case("content-length") { value.parse().unwrap_or(0) } else { len };
            builder = builder.header(name, value);
        }
        let mut body = vec![0; len];
        let _ = reader.read_exact(&mut body);
        let Ok(req) = builder.body(body) else { continue };
        let (status, ctype, body) = match server.handle(Instant::now(), &req) {
            Reply::Response(r) => (r.status(), r.headers().get("content-type").cloned(), r.into_body()),
            Reply::Watch { .. } => (http::StatusCode::NOT_IMPLEMENTED, None, b"no watches here".to_vec()),
            Reply::Upgrade { .. } => (http::StatusCode::NOT_IMPLEMENTED, None, b"no upgrades here".to_vec()),
        };
        let ctype = ctype.and_then(|v| v.to_str().ok().map(str::to_owned)).unwrap_or_else(|| "text/plain".into());
        let head = format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\r\n", body.len());
        let mut stream = reader.into_inner();
        let _ = stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(&body));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || serve(listener));
    let config = kube_proto::config::Config::new(format!("http://{addr}").parse()?);
    let client = Client::new(StdTransport { addr }, config)?;
    futures_executor::block_on(async {
        let cms: Api<ConfigMap> = Api::default_namespaced(client);
        for name in ["alpha", "beta"] {
            let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": name}}))?;
            let created = cms.create(&PostParams::default(), &cm).await?;
            println!(
                "created {} over std::net (resourceVersion {})",
                created.name_any(),
                created.resource_version().unwrap_or("?")
            );
        }
        let names: Vec<String> = cms.list(&ListParams::default()).await?.iter().map(ResourceExt::name_any).collect();
        println!("listed {names:?}");
        Ok(())
    })
}
