//! Port-forward over SPDY through `Api<Pod>`, directly (`Upgrade: SPDY/3.1`) and tunneled in a
//! WebSocket, against the fake API server's scripted listeners, in memory: 4 MiB echoed and
//! checksummed, a port half-closed whose answer still arrives, a port nobody listens on, a
//! local connection copied both ways to the end, and a refusal read as the server's `Status`.

use futures_executor::block_on;
use futures_util::future::join;
use futures_util::{AsyncReadExt as _, AsyncWriteExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube_runtime::fake::FakeTransport;
use kube_runtime::fake::server::exec::{PortInput, PortIo, PortScript};
use kube_runtime::remote::{PortError, PortForwardProtocol};
use kube_runtime::{Api, Client, Error};

const PROTOCOLS: [PortForwardProtocol; 2] = [PortForwardProtocol::Spdy, PortForwardProtocol::SpdyOverWebSocket];

/// A client of a fresh fake with the pod `web`, whose port 7 echoes.
fn pods() -> (FakeTransport, Api<Pod>) {
    let (transport, config) = FakeTransport::new();
    let client = Client::new(transport.clone(), config).unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client);
    let pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "main", "image": "nginx"}]},
    }))
    .unwrap();
    block_on(pods.create(&Default::default(), &pod)).unwrap();
    transport.server().script_port("default", "web", 7, PortScript::echo());
    (transport, pods)
}

/// FNV-1a, 64 bits.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Bytes that do not repeat in any short period (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn a_port_echoes_4_mib_checksummed() {
    for protocol in PROTOCOLS {
        let (_transport, pods) = pods();
        let data = noise(4 << 20);
        block_on(async {
            let mut pf = pods.portforward_with("web", &[7], protocol).await.unwrap();
            let mut stream = pf.take_stream(7).unwrap();
            let ((), echoed) = {
                let (mut reader, mut writer) = (&mut stream).split();
                let writing = async {
                    for piece in data.chunks(65_537) {
                        writer.write_all(piece).await.unwrap();
                    }
                    writer.flush().await.unwrap();
                };
                let reading = async {
                    let mut echoed = vec![0u8; data.len()];
                    reader.read_exact(&mut echoed).await.unwrap();
                    echoed
                };
                join(writing, reading).await
            };
            assert_eq!((echoed.len(), fnv1a(&echoed)), (data.len(), fnv1a(&data)), "{protocol:?}");
            // Closing half-closes the port; the echo server then closes its side: reads end.
            stream.close().await.unwrap();
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
            pf.join().await.unwrap();
        });
    }
}

/// Over SPDY a port can be half-closed: what the pod sends after the client's side ended still
/// arrives (over the WebSocket protocol it would be lost).
#[test]
fn a_half_closed_port_still_reads_the_answer() {
    for protocol in PROTOCOLS {
        let (transport, pods) = pods();
        // A listener that answers only once its input ended: the length it read.
        let counter = PortScript::custom(|_port| {
            let mut total = 0usize;
            move |input: PortInput<'_>, io: &mut PortIo| match input {
                PortInput::Data(d) => total += d.len(),
                PortInput::End => {
                    io.write(format!("read {total} bytes"));
                    io.close();
                }
                PortInput::Start => {}
            }
        });
        transport.server().script_port("default", "web", 8, counter);
        block_on(async {
            let mut pf = pods.portforward_with("web", &[8], protocol).await.unwrap();
            let mut stream = pf.take_stream(8).unwrap();
            stream.write_all(&[1; 1000]).await.unwrap();
            stream.close().await.unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.unwrap();
            assert_eq!(answer, "read 1000 bytes", "{protocol:?}");
            pf.join().await.unwrap();
        });
    }
}

#[test]
fn a_port_nobody_listens_on_fails_its_stream_only() {
    for protocol in PROTOCOLS {
        let (_transport, pods) = pods();
        block_on(async {
            let mut pf = pods.portforward_with("web", &[7, 9], protocol).await.unwrap();
            let mut closed = pf.take_stream(9).unwrap();
            let mut buf = [0u8; 16];
            let e = closed.read(&mut buf).await.unwrap_err();
            let port_error = e.get_ref().and_then(|e| e.downcast_ref::<PortError>()).expect("a PortError");
            assert_eq!(port_error.port, 9);
            assert!(port_error.message.contains("connection refused"), "{}", port_error.message);

            let mut open = pf.take_stream(7).unwrap();
            open.write_all(b"still here").await.unwrap();
            let mut back = [0u8; 10];
            open.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"still here", "{protocol:?}");
            drop((open, closed));
            pf.join().await.unwrap();
        });
    }
}

#[test]
fn forward_copies_a_local_connection_both_ways_to_the_end() {
    for protocol in PROTOCOLS {
        let (_transport, pods) = pods();
        block_on(async {
            let mut pf = pods.portforward_with("web", &[7], protocol).await.unwrap();
            let remote = pf.take_stream(7).unwrap();
            let request = b"GET / HTTP/1.0\r\n\r\n".to_vec();
            let mut local = Local { input: futures_util::io::Cursor::new(request.clone()), output: Vec::new() };
            let copied = kube_runtime::remote::forward(&mut local, remote).await.unwrap();
            // The local end closing half-closes the port, so the whole echo comes back.
            assert_eq!((copied.to_pod, copied.from_pod), (18, 18), "{protocol:?}");
            assert_eq!(local.output, request);
            pf.join().await.unwrap();
        });
    }
}

#[test]
fn a_missing_pod_is_the_servers_status() {
    for protocol in PROTOCOLS {
        let (_transport, pods) = pods();
        match block_on(pods.portforward_with("nowhere", &[80], protocol)) {
            Err(Error::Api(e)) => assert!(e.is_not_found(), "{e}"),
            other => panic!("expected a 404, got {other:?}"),
        }
    }
}

/// A local connection in memory: reads from `input`, writes to `output`.
struct Local {
    input: futures_util::io::Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl futures_util::AsyncRead for Local {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut [u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.input).poll_read(cx, buf)
    }
}

impl futures_util::AsyncWrite for Local {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        self.output.extend_from_slice(buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_close(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
