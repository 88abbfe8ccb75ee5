//! Ports of a Pod forwarded, on async-std and transport-asyncstd: the streams of a
//! port-forward used directly, then a local TCP port served as `kubectl port-forward` serves
//! one — a port-forward per accepted connection, copied both ways by `remote::forward`.
//!
//! By default it runs on the embedded fake API server, with a Pod `web` whose port 8080 is a
//! scripted TCP echo and whose port 9090 has nothing listening; the example connects to its
//! own local port twice and stops. With `--cluster` (or `KUBE_DEMO_CLUSTER=1`) it forwards a
//! local port to `--port N` (default 80) of the running Pod `--pod NAME` (default `web`) in
//! the default namespace of your kubeconfig's cluster, and serves it until you stop it.
//!
//! `--protocol ws|spdy|tunnel` chooses the protocol: the kubelet's WebSocket protocol (the
//! default, as kube-rs speaks it), SPDY (as kubectl up to 1.30), or SPDY tunneled in a WebSocket
//! (as kubectl from 1.31 on).
//!
//! ```sh
//! cargo run --example pod_portforward                                       # the fake
//! cargo run --example pod_portforward -- --protocol spdy                    # the fake, over SPDY
//! cargo run --example pod_portforward -- --cluster --pod nginx --port 80   # then: curl the printed address
//! ```
//!
//! The loopback server of `cargo run -p kube-integration-tests --example serve` (the fake over
//! HTTPS, with a kubeconfig) has a Pod `web` whose port 80 echoes: `KUBECONFIG=<the path it
//! prints> cargo run --example pod_portforward -- --cluster`.

use std::net::SocketAddr;

use async_std::net::{TcpListener, TcpStream};
use futures_util::{AsyncReadExt, AsyncWriteExt};
use k8s_openapi::api::core::v1::Pod;
use kube_runtime::fake::FakeTransport;
use kube_runtime::fake::server::exec::PortScript;
use kube_runtime::remote::{Forwarded, PortError, PortForwardProtocol, forward};
use kube_runtime::{Api, Client};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[async_std::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let on_cluster =
        args.iter().any(|a| a == "--cluster") || std::env::var("KUBE_DEMO_CLUSTER").is_ok_and(|v| v == "1");
    let pod = arg("--pod").unwrap_or_else(|| "web".to_owned());
    let protocol = match arg("--protocol").as_deref() {
        None | Some("ws") => PortForwardProtocol::WebSocket,
        Some("spdy") => PortForwardProtocol::Spdy,
        Some("tunnel") => PortForwardProtocol::SpdyOverWebSocket,
        Some(other) => return Err(format!("--protocol {other:?}: expected ws, spdy or tunnel").into()),
    };
    println!("port-forward protocol: {protocol:?}");
    let client = if on_cluster {
        println!("pod_portforward to the Pod {pod:?} of your kubeconfig's cluster");
        transport_asyncstd::try_default().await?
    } else {
        println!("pod_portforward on the embedded fake API server (pass --cluster to use a real one)");
        fake_with_pod(&pod).await?
    };
    let pods: Api<Pod> = Api::default_namespaced(client);

    if on_cluster {
        let port = arg("--port").map(|p| p.parse()).transpose()?.unwrap_or(80);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        println!("forwarding {} to {pod}:{port}; stop with Ctrl-C", listener.local_addr()?);
        serve(listener, pods, pod, port, protocol, None).await;
        return Ok(());
    }

    // The streams themselves: two ports on one connection.
    let mut pf = pods.portforward_with(&pod, &[8080, 9090], protocol).await?;
    let mut echo = pf.take_stream(8080).expect("port 8080 was asked for");
    echo.write_all(b"hello, port 8080").await?;
    let mut back = [0u8; 16];
    echo.read_exact(&mut back).await?;
    println!("port 8080 echoed {:?}", String::from_utf8_lossy(&back));
    let mut refused = pf.take_stream(9090).expect("port 9090 was asked for");
    match refused.read(&mut back).await {
        Err(e) => match e.get_ref().and_then(|e| e.downcast_ref::<PortError>()) {
            Some(port_error) => println!("port 9090 failed: {}", port_error.message),
            None => println!("port 9090 failed: {e}"),
        },
        Ok(n) => println!("port 9090 answered {n} bytes"),
    }
    // Closing the last stream closes the connection.
    drop(refused);
    echo.close().await?;
    pf.join().await?;

    // A local port: each connection accepted gets a port-forward of its own.
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let local = listener.local_addr()?;
    println!("forwarding {local} to {pod}:8080");
    let serving = async_std::task::spawn(serve(listener, pods, pod, 8080, protocol, Some(2)));
    for i in 1..=2 {
        talk(local, &format!("connection {i}: ping\n")).await?;
    }
    serving.await;
    Ok(())
}

/// Connects to the local port, sends `line` and reads it back (the Pod's port echoes).
async fn talk(local: SocketAddr, line: &str) -> Result<(), BoxError> {
    let mut conn = TcpStream::connect(local).await?;
    conn.write_all(line.as_bytes()).await?;
    let mut back = vec![0u8; line.len()];
    conn.read_exact(&mut back).await?;
    print!("  client got back: {}", String::from_utf8_lossy(&back));
    Ok(())
}

/// Accepts connections (`limit` of them, or forever) and forwards each on a task of its own;
/// returns once those have ended.
async fn serve(
    listener: TcpListener,
    pods: Api<Pod>,
    pod: String,
    port: u16,
    protocol: PortForwardProtocol,
    limit: Option<usize>,
) {
    let mut tasks = Vec::new();
    while limit.is_none_or(|limit| tasks.len() < limit) {
        let (conn, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                println!("  accept failed: {e}");
                continue;
            }
        };
        let (pods, pod) = (pods.clone(), pod.clone());
        tasks.push(async_std::task::spawn(async move {
            match forward_connection(&pods, &pod, port, protocol, conn).await {
                Ok(copied) => println!("  {peer}: {} bytes to the Pod, {} back", copied.to_pod, copied.from_pod),
                Err(e) => println!("  {peer}: {e}"),
            }
        }));
    }
    for task in tasks {
        task.await;
    }
}

/// One accepted connection: a port-forward of its own, copied both ways until either side ends.
async fn forward_connection(
    pods: &Api<Pod>,
    pod: &str,
    port: u16,
    protocol: PortForwardProtocol,
    conn: TcpStream,
) -> Result<Forwarded, BoxError> {
    let mut pf = pods.portforward_with(pod, &[port], protocol).await?;
    let remote = pf.take_stream(port).expect("the port asked for");
    let copied = forward(conn, remote).await?;
    pf.join().await?;
    Ok(copied)
}

/// The fake, with a Pod `name` whose port 8080 echoes what it receives.
async fn fake_with_pod(name: &str) -> Result<Client, BoxError> {
    let (transport, config) = FakeTransport::new();
    let client = Client::new(transport.clone(), config)?;
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"nodeName": "node-1", "containers": [{"name": "main", "image": "nginx"}]},
    }))?;
    Api::<Pod>::default_namespaced(client.clone()).create(&Default::default(), &pod).await?;
    transport.server().script_port("default", name, 8080, PortScript::echo());
    Ok(client)
}
