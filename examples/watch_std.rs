//! The drive loop, whole: the core's `Watcher` state machine run with nothing but the standard
//! library — a blocking `TcpStream` and `Instant::now()`. No executor, no futures, no HTTP
//! library. This is the loop every adapter runs (kube-runtime's `watcher()` is the same loop with
//! a transport's futures in place of the socket): send what `poll` asks, feed back what comes,
//! and wait no longer than the deadline `poll` gives.
//!
//! A tiny std-only HTTP/1.0 server in front of the fake API server plays the cluster, and a
//! writer thread changes ConfigMaps while the watcher watches.
//!
//! ```sh
//! cargo run --example watch_std
//! ```

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube_proto::watcher::{Action, Config, Event, Watcher};
use kube_proto::{Request, ResourceExt};
use kube_proto_fake::{FakeApiServer, FakeConfig, Reply, WatchPoll};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fake = Arc::new(Mutex::new(FakeApiServer::new(FakeConfig::default(), Instant::now())));
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let served = fake.clone();
    std::thread::spawn(move || listener.incoming().flatten().for_each(|s| serve(s, served.clone())));
    std::thread::spawn(move || write_configmaps(&fake));

    // ---- The drive loop. ----
    let mut watcher = Watcher::<ConfigMap>::new(Request::namespaced::<ConfigMap>("default"), Config::default())?;
    let mut body: Option<(kube_proto::watcher::RequestId, BufReader<TcpStream>)> = None;
    let mut seen = 0;
    while seen < 6 {
        match watcher.poll(Instant::now()) {
            Action::Send(id, request) => match send(addr, &request) {
                Ok((status, headers, reader)) => {
                    watcher.on_response(Instant::now(), id, status, &headers);
                    body = Some((id, reader));
                }
                Err(e) => watcher.on_transport_error(Instant::now(), id, e.to_string()),
            },
            Action::Emit(event) => {
                match &event {
                    Event::Init | Event::InitDone => println!("{event:?}"),
                    Event::InitApply(cm) | Event::Apply(cm) => println!("applied {}", cm.name_any()),
                    Event::Delete(cm) => println!("deleted {}", cm.name_any()),
                }
                seen += usize::from(matches!(event, Event::Apply(_) | Event::Delete(_)));
            }
            Action::Error(e) => println!("error (the watcher goes on): {e}"),
            Action::Cancel(id) => body = body.filter(|(current, _)| *current != id),
            Action::Wait { until, .. } => {
                let Some((id, reader)) = &mut body else {
                    std::thread::sleep(until.saturating_duration_since(Instant::now()));
                    continue;
                };
                // Read no longer than the deadline: a silent server cannot hang the loop.
                let timeout = until.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
                reader.get_ref().set_read_timeout(Some(timeout))?;
                let mut chunk = [0; 16 * 1024];
                match reader.read(&mut chunk) {
                    Ok(n) if n > 0 => watcher.on_body(Instant::now(), *id, &chunk[..n]),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                    Ok(_) => watcher.on_end(Instant::now(), body.take().expect("a body").0),
                    Err(e) => watcher.on_transport_error(Instant::now(), body.take().expect("a body").0, e.to_string()),
                }
            }
        }
    }
    Ok(())
}

/// One HTTP/1.0 exchange: the request out, the status and headers in, the body left to read.
fn send(
    addr: SocketAddr,
    request: &http::Request<Vec<u8>>,
) -> std::io::Result<(http::StatusCode, http::HeaderMap, BufReader<TcpStream>)> {
    let mut stream = TcpStream::connect(addr)?;
    let target = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!("{} {target} HTTP/1.0\r\nHost: {addr}\r\n", request.method());
    for (name, value) in request.headers() {
        head.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or_default()));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", request.body().len()));
    stream.write_all(head.as_bytes())?;
    stream.write_all(request.body())?;
    let mut reader = BufReader::new(stream);
    let (mut line, mut headers) = (String::new(), http::HeaderMap::new());
    reader.read_line(&mut line)?;
    let status = line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(http::StatusCode::BAD_GATEWAY);
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let Some((name, value)) = line.trim_end().split_once(": ") else { break };
        if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(name), http::HeaderValue::try_from(value)) {
            headers.append(n, v);
        }
    }
    Ok((status, headers, reader))
}

// ---- The cluster's side: the fake API server behind HTTP/1.0, and a writer. ----

fn serve(stream: TcpStream, fake: Arc<Mutex<FakeApiServer>>) {
    std::thread::spawn(move || {
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
        let (Ok(()), Ok(req)) = (reader.read_exact(&mut body), builder.body(body)) else { return };
        let mut out = reader.into_inner();
        let reply = fake.lock().unwrap().handle(Instant::now(), &req);
        let (status, body, watch) = match reply {
            Reply::Response(r) => (r.status(), r.into_body(), None),
            Reply::Watch { id, head } => (head.status(), Vec::new(), Some(id)),
            // This server speaks HTTP/1.0 only: no exec, attach or port-forward.
            Reply::Upgrade { .. } => (http::StatusCode::NOT_IMPLEMENTED, b"no upgrades here".to_vec(), None),
        };
        // HTTP/1.0: the body runs until the connection closes.
        let head = format!("HTTP/1.0 {status}\r\nContent-Type: application/json\r\n\r\n");
        if out.write_all(head.as_bytes()).and_then(|()| out.write_all(&body)).is_err() {
            return;
        }
        while let Some(id) = watch {
            let poll = fake.lock().unwrap().poll_watch(id, Instant::now());
            match poll {
                WatchPoll::Data(bytes) if out.write_all(&bytes).is_ok() => {}
                WatchPoll::Pending(_) => std::thread::sleep(Duration::from_millis(20)),
                WatchPoll::Finished(bytes) => return drop(out.write_all(&bytes)),
                WatchPoll::Data(_) => return fake.lock().unwrap().cancel_watch(id),
            }
        }
    });
}

fn write_configmaps(fake: &Mutex<FakeApiServer>) {
    let request = Request::namespaced::<ConfigMap>("default");
    for i in 0..6 {
        std::thread::sleep(Duration::from_millis(300));
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": format!("cm-{i}")}})).expect("a ConfigMap");
        let create = request.create(&Default::default(), &cm).expect("a create request");
        fake.lock().unwrap().handle(Instant::now(), &create);
    }
}
