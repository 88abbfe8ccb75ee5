//! `Api<Pod>::exec`, `attach` and `portforward` through both transports over loopback TLS, to a
//! server that runs the fake API server's sessions over the upgraded connection (real
//! WebSocket frames): v5 and v4 servers, stdin closed, 64 MiB through a port-forward
//! (checksummed), a resize reaching the process, a non-zero exit, refusals, a server cutting
//! the connection mid-stream, and a session's handles on tasks of their own. Each body runs
//! through transport-hyper (tokio) and transport-asyncstd (async-std), against that loopback
//! server whether or not `KUBE_E2E_KUBECONFIG` is set.
//!
//! The bodies of `api_server` run through the harness instead: against the loopback
//! `TestServer`, or against the cluster of `KUBE_E2E_KUBECONFIG` (where, with no kubelet,
//! only the refusal of a Pod without a node is checked).

use std::future::Future;
use std::time::Duration;

use futures_util::future::{Either, join, select};
use futures_util::{AsyncReadExt as _, AsyncWriteExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube_integration_tests::TransportKind;
use kube_integration_tests::exec_server::ExecServer;
use kube_proto::AttachParams;
use kube_proto::channel::{ChannelProtocol, ExecError, PortForwardError, TerminalSize};
use kube_runtime::fake::server::exec::{ExecScript, Input, Io, PortScript};
use kube_runtime::remote::{PortError, PortForwardProtocol};
use kube_runtime::{Api, Client, Error, TransportError};

macro_rules! both_transports {
    ($($body:ident),* $(,)?) => {
        /// The bodies through transport-hyper, on tokio.
        mod hyper_tokio {
            $(
                #[tokio::test]
                async fn $body() {
                    super::$body(kube_integration_tests::TransportKind::Hyper).await;
                }
            )*
        }
        /// The bodies through transport-asyncstd, on async-std.
        mod asyncstd {
            $(
                #[async_std::test]
                async fn $body() {
                    super::$body(kube_integration_tests::TransportKind::AsyncStd).await;
                }
            )*
        }
    };
}

both_transports!(
    v5_cat_ends_when_stdin_closes,
    v4_has_exit_codes_but_cannot_close_stdin,
    sixty_four_mib_through_a_port_forward,
    a_resize_reaches_the_process,
    a_non_zero_exit_comes_after_its_output,
    refusals_are_the_servers_status,
    a_server_cutting_an_exec_mid_stream_is_a_clear_error,
    a_server_cutting_a_port_forward_mid_stream_is_a_clear_error,
    handles_on_tasks_of_their_own,
);

/// A server with the pod `blog`, and a client of it through `kind`.
fn setup(kind: TransportKind) -> (ExecServer, Client, Api<Pod>) {
    let server = ExecServer::start();
    server.add_pod("blog");
    let client = kind.client(server.config()).unwrap();
    let pods = Api::default_namespaced(client.clone());
    (server, client, pods)
}

/// Runs `fut`, panicking if it takes longer than `secs` (on the client's transport's timer).
async fn within<T>(client: &Client, secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    let deadline = client.now() + Duration::from_secs(secs);
    match select(std::pin::pin!(fut), client.transport().sleep_until(deadline)).await {
        Either::Left((value, _)) => value,
        Either::Right(((), _)) => panic!("{what}: took longer than {secs} s"),
    }
}

/// Runs `fut` on a task of the test's runtime.
fn spawn<T: Send + 'static>(
    kind: TransportKind,
    fut: impl Future<Output = T> + Send + 'static,
) -> impl Future<Output = T> {
    let (tx, rx) = futures_channel::oneshot::channel();
    let task = async move {
        let _ = tx.send(fut.await);
    };
    match kind {
        TransportKind::Hyper => drop(tokio::spawn(task)),
        TransportKind::AsyncStd => drop(async_std::task::spawn(task)),
    }
    async move { rx.await.expect("the task ran to its end") }
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

/// A process that writes `out` in pieces of 16 KiB, then exits with 0.
fn spew(out: Vec<u8>) -> ExecScript {
    ExecScript::custom(move |_| {
        let out = out.clone();
        move |input: Input<'_>, io: &mut Io| {
            if input == Input::Start {
                out.chunks(16 << 10).for_each(|piece| io.stdout(piece));
                io.exit(0);
            }
        }
    })
}

async fn v5_cat_ends_when_stdin_closes(kind: TransportKind) {
    let (_server, client, pods) = setup(kind);
    let input = noise(1 << 20);
    let ap = AttachParams::default().stdin(true).stderr(false);
    let mut cat = within(&client, 20, "exec", pods.exec("blog", ["cat"], &ap)).await.unwrap();
    assert_eq!(cat.protocol(), ChannelProtocol::V5);
    let (mut stdin, mut stdout) = (cat.stdin().unwrap(), cat.stdout().unwrap());
    let writing = async {
        for piece in input.chunks(50_000) {
            stdin.write_all(piece).await.unwrap();
        }
        stdin.close().await.unwrap();
    };
    let reading = async {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).await.unwrap();
        out
    };
    let ((), out) = within(&client, 30, "a mebibyte through cat", join(writing, reading)).await;
    assert_eq!((out.len(), fnv1a(&out)), (input.len(), fnv1a(&input)));
    assert_eq!(within(&client, 20, "join", cat.join()).await.unwrap().code(), 0);
}

async fn v4_has_exit_codes_but_cannot_close_stdin(kind: TransportKind) {
    let (server, client, pods) = setup(kind);
    server.offer_only("v4.channel.k8s.io");
    let ap = AttachParams::default().stdin(true);

    // A shell reading its commands from stdin ends by itself, with its exit code.
    let mut sh = within(&client, 20, "exec", pods.exec("blog", ["sh"], &ap)).await.unwrap();
    assert_eq!(sh.protocol(), ChannelProtocol::V4);
    let (mut stdin, mut stdout) = (sh.stdin().unwrap(), sh.stdout().unwrap());
    stdin.write_all(b"echo hi\nexit 4\n").await.unwrap();
    let mut out = String::new();
    within(&client, 20, "stdout", stdout.read_to_string(&mut out)).await.unwrap();
    assert_eq!(out, "hi\n");
    assert_eq!(within(&client, 20, "join", sh.join()).await.unwrap().code(), 4);

    // `cat` does not see its input end: v4 cannot say so.
    let mut cat = within(&client, 20, "exec", pods.exec("blog", ["cat"], &ap)).await.unwrap();
    let (mut stdin, mut stdout) = (cat.stdin().unwrap(), cat.stdout().unwrap());
    stdin.write_all(b"abc").await.unwrap();
    let mut echoed = [0u8; 3];
    within(&client, 20, "the echo", stdout.read_exact(&mut echoed)).await.unwrap();
    assert_eq!(&echoed, b"abc");
    stdin.close().await.unwrap();
    assert!(stdin.write_all(b"more").await.is_err(), "a write after close fails");
    let mut rest = Vec::new();
    let deadline = client.now() + Duration::from_millis(300);
    match select(std::pin::pin!(stdout.read_to_end(&mut rest)), client.transport().sleep_until(deadline)).await {
        Either::Left((ended, _)) => panic!("cat ended although v4 cannot close its stdin: {ended:?}"),
        Either::Right(_) => {}
    }
    cat.abort();
    assert!(matches!(within(&client, 20, "join", cat.join()).await, Err(Error::Aborted)));
}

async fn sixty_four_mib_through_a_port_forward(kind: TransportKind) {
    let (server, client, pods) = setup(kind);
    server.fake().script_port("default", "blog", 8080, PortScript::echo());
    let data = noise(64 << 20);
    let mut pf = within(&client, 20, "portforward", pods.portforward("blog", &[8080])).await.unwrap();
    let (mut reader, mut writer) = pf.take_stream(8080).unwrap().split();
    let writing = async {
        // In pieces of uneven sizes, so that reads and writes interleave unevenly.
        for piece in data.chunks(100_003) {
            writer.write_all(piece).await.unwrap();
        }
        writer.flush().await.unwrap();
    };
    let reading = async {
        let mut echoed = vec![0u8; data.len()];
        reader.read_exact(&mut echoed).await.unwrap();
        echoed
    };
    let ((), echoed) = within(&client, 300, "64 MiB each way", join(writing, reading)).await;
    assert_eq!((echoed.len(), fnv1a(&echoed)), (data.len(), fnv1a(&data)));
    // Closing the only stream closes the connection, cleanly.
    within(&client, 20, "close", writer.close()).await.unwrap();
    let mut rest = Vec::new();
    within(&client, 20, "the end", reader.read_to_end(&mut rest)).await.unwrap();
    assert!(rest.is_empty());
    within(&client, 20, "join", pf.join()).await.unwrap();
}

async fn a_resize_reaches_the_process(kind: TransportKind) {
    let (server, client, pods) = setup(kind);
    server.fake().script_exec(
        "default",
        "blog",
        None,
        ExecScript::custom(|_| {
            |input: Input<'_>, io: &mut Io| match input {
                Input::Resize(size) => io.stdout(format!("{}x{}\n", size.width, size.height)),
                Input::StdinClosed => io.exit(0),
                Input::Start | Input::Stdin(_) => {}
            }
        }),
    );
    let mut sh =
        within(&client, 20, "exec", pods.exec("blog", ["sh"], &AttachParams::interactive_tty())).await.unwrap();
    let mut sizes = sh.terminal_size().unwrap();
    let mut stdout = sh.stdout().unwrap();
    sizes.send(TerminalSize { width: 100, height: 30 }).await.unwrap();
    let mut line = vec![0u8; 7];
    within(&client, 20, "the size, echoed", stdout.read_exact(&mut line)).await.unwrap();
    assert_eq!(line, b"100x30\n");
    sh.stdin().unwrap().close().await.unwrap();
    assert_eq!(within(&client, 20, "join", sh.join()).await.unwrap().code(), 0);
}

async fn a_non_zero_exit_comes_after_its_output(kind: TransportKind) {
    let (_server, client, pods) = setup(kind);
    let mut sh = within(
        &client,
        20,
        "exec",
        pods.exec("blog", ["sh", "-c", "echo out; echo err >&2; exit 3"], &AttachParams::default()),
    )
    .await
    .unwrap();
    let (mut stdout, mut stderr) = (sh.stdout().unwrap(), sh.stderr().unwrap());
    let (mut out, mut err) = (String::new(), String::new());
    let (read_out, read_err) =
        within(&client, 20, "output", join(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err))).await;
    read_out.unwrap();
    read_err.unwrap();
    assert_eq!((out.as_str(), err.as_str()), ("out\n", "err\n"));
    let status = within(&client, 20, "join", sh.join()).await.unwrap();
    assert_eq!(status.code(), 3);
    assert_eq!(status.status().reason.as_str(), "NonZeroExitCode");
}

async fn refusals_are_the_servers_status(kind: TransportKind) {
    let (_server, client, pods) = setup(kind);
    match within(&client, 20, "exec", pods.exec("nowhere", ["true"], &AttachParams::default())).await {
        Err(Error::Api(e)) => assert!(e.is_not_found(), "{e}"),
        other => panic!("expected the 404 Status, got {other:?}"),
    }
    let ap = AttachParams::default().container("sidecar");
    match within(&client, 20, "exec", pods.exec("blog", ["true"], &ap)).await {
        Err(Error::Api(e)) => {
            assert_eq!(e.http_status(), 400, "{e}");
            assert!(e.to_string().contains("sidecar"), "{e}");
        }
        other => panic!("expected the 400 Status, got {other:?}"),
    }
    match within(&client, 20, "portforward", pods.portforward("nowhere", &[80])).await {
        Err(Error::Api(e)) => assert!(e.is_not_found(), "{e}"),
        other => panic!("expected the 404 Status, got {other:?}"),
    }
}

/// The error of a connection cut before the end: the transport's, or the session's.
fn is_cut(e: &Error) -> bool {
    matches!(
        e,
        Error::Transport(TransportError::Closed(_))
            | Error::Exec(ExecError::ConnectionLost { .. })
            | Error::PortForward(PortForwardError::ConnectionLost { .. })
    )
}

async fn a_server_cutting_an_exec_mid_stream_is_a_clear_error(kind: TransportKind) {
    let (server, client, pods) = setup(kind);
    server.fake().script_exec("default", "blog", None, spew(noise(1 << 20)));
    server.cut_next_after(200_000);
    let mut p = within(&client, 20, "exec", pods.exec("blog", ["spew"], &AttachParams::default())).await.unwrap();
    let mut stdout = p.stdout().unwrap();
    let mut out = Vec::new();
    let e = within(&client, 20, "stdout", stdout.read_to_end(&mut out)).await.unwrap_err();
    assert!(out.len() > 100_000 && out.len() < 200_000, "{} bytes before the cut", out.len());
    let cause = e.get_ref().and_then(|e| e.downcast_ref::<Error>()).expect("the session's error");
    assert!(is_cut(cause), "{cause:?}");
    let e = within(&client, 20, "join", p.join()).await.unwrap_err();
    assert!(is_cut(&e), "{e:?}");
    assert!(e.to_string().contains("connection"), "{e}");
}

async fn a_server_cutting_a_port_forward_mid_stream_is_a_clear_error(kind: TransportKind) {
    let (server, client, pods) = setup(kind);
    server.fake().script_port("default", "blog", 8080, PortScript::echo());
    server.cut_next_after(50_000);
    let mut pf = within(&client, 20, "portforward", pods.portforward("blog", &[8080])).await.unwrap();
    let (mut reader, mut writer) = pf.take_stream(8080).unwrap().split();
    let writing = async {
        // Writes may fail once the cut is seen; reads are what is checked.
        for piece in noise(1 << 20).chunks(10_000) {
            if writer.write_all(piece).await.is_err() {
                break;
            }
        }
    };
    let reading = async {
        let mut echoed = Vec::new();
        let e = reader.read_to_end(&mut echoed).await.unwrap_err();
        (echoed.len(), e)
    };
    let ((), (echoed, e)) = within(&client, 20, "the echo", join(writing, reading)).await;
    assert!(echoed < 50_000, "{echoed} bytes before the cut");
    let cause = e.get_ref().and_then(|e| e.downcast_ref::<Error>()).expect("the session's error");
    assert!(is_cut(cause), "{cause:?}");
    let e = within(&client, 20, "join", pf.join()).await.unwrap_err();
    assert!(is_cut(&e), "{e:?}");
}

async fn handles_on_tasks_of_their_own(kind: TransportKind) {
    let (_server, client, pods) = setup(kind);
    let input = noise(4 << 20);
    let ap = AttachParams::default().stdin(true).stderr(false);
    let mut cat = within(&client, 20, "exec", pods.exec("blog", ["cat"], &ap)).await.unwrap();
    let (mut stdin, mut stdout) = (cat.stdin().unwrap(), cat.stdout().unwrap());
    // The reader, the writer and join each on a task: whichever is polled drives the
    // connection, and must wake the others.
    let reading = spawn(kind, async move {
        let mut out = Vec::new();
        stdout.read_to_end(&mut out).await.unwrap();
        out
    });
    let writing = spawn(kind, {
        let input = input.clone();
        async move {
            for piece in input.chunks(64 << 10) {
                stdin.write_all(piece).await.unwrap();
            }
            stdin.close().await.unwrap();
        }
    });
    let joining = spawn(kind, cat.join());
    within(&client, 60, "the writer", writing).await;
    let out = within(&client, 60, "the reader", reading).await;
    assert_eq!((out.len(), fnv1a(&out)), (input.len(), fnv1a(&input)));
    assert_eq!(within(&client, 20, "join", joining).await.unwrap().code(), 0);
}

/// Through the harness: against the loopback [`TestServer`](kube_integration_tests::TestServer)
/// (the fake behind hyper, which switches protocols and runs the fake's sessions over the
/// upgraded connection), or against the cluster of `KUBE_E2E_KUBECONFIG`, in a namespace of
/// the test's own. The clusters this suite runs against have no scheduler and no kubelet, so
/// a process cannot run there: what needs one is skipped on a cluster with a note, and what a
/// real API server answers without a kubelet is checked on both.
mod api_server {
    use super::*;
    use kube_integration_tests::{Ctx, transport_tests};
    use kube_proto::PostParams;
    use kube_proto::error::Reason;
    use serde_json::json;

    transport_tests!(
        exec_attach_and_port_forward_through_the_api_server: loopback,
        port_forward_over_spdy: loopback,
        a_pod_without_a_node_is_refused,
    );

    /// A Pod of the test's own: bound to a node that does not exist (`node`), or left to a
    /// scheduler that does not exist, so that a cluster's scheduler, if any, leaves it alone.
    fn pod(ctx: &Ctx, name: &str, node: Option<&str>) -> Pod {
        let mut pod = json!({
            "metadata": {"name": name, "labels": ctx.labels(&[])},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36", "command": ["sh"]}]},
        });
        match node {
            Some(node) => pod["spec"]["nodeName"] = json!(node),
            None => pod["spec"]["schedulerName"] = json!("kit-no-such-scheduler"),
        }
        serde_json::from_value(pod).expect("a Pod")
    }

    /// An exec with stdout and stderr apart and a non-zero exit, `cat` fed and closed, an
    /// attach to the container's `sh`, and a port echoed, each over its own upgraded
    /// connection to the loopback server, beside the client's ordinary requests (HTTP/2 for
    /// transport-hyper).
    async fn exec_attach_and_port_forward_through_the_api_server(ctx: Ctx) {
        let server = ctx.loopback("a process needs a kubelet, and the suite's clusters have none");
        let pods: Api<Pod> = ctx.api();
        let secs = Duration::from_secs(20);
        pods.create(&PostParams::default(), &pod(&ctx, "shell", Some("kit-node"))).await.unwrap();
        server.fake().script_port(&ctx.ns, "shell", 8080, PortScript::echo());

        let script = "echo hello; echo oops >&2; exit 3";
        let ap = AttachParams::default();
        let mut sh = ctx.within(secs, "exec", pods.exec("shell", ["sh", "-c", script], &ap)).await.unwrap();
        assert_eq!(sh.protocol(), ChannelProtocol::V5);
        let (mut stdout, mut stderr) = (sh.stdout().unwrap(), sh.stderr().unwrap());
        let (mut out, mut err) = (String::new(), String::new());
        let (o, e) =
            ctx.within(secs, "output", join(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err))).await;
        o.unwrap();
        e.unwrap();
        assert_eq!((out.as_str(), err.as_str()), ("hello\n", "oops\n"));
        assert_eq!(ctx.within(secs, "join", sh.join()).await.unwrap().code(), 3);

        let ap = AttachParams::default().stdin(true).stderr(false);
        let mut cat = ctx.within(secs, "exec", pods.exec("shell", ["cat"], &ap)).await.unwrap();
        let (mut stdin, mut stdout) = (cat.stdin().unwrap(), cat.stdout().unwrap());
        let input = noise(256 << 10);
        let writing = async {
            stdin.write_all(&input).await.unwrap();
            stdin.close().await.unwrap();
        };
        let mut out = Vec::new();
        let ((), read) = ctx.within(secs, "cat", join(writing, stdout.read_to_end(&mut out))).await;
        read.unwrap();
        assert_eq!((out.len(), fnv1a(&out)), (input.len(), fnv1a(&input)));
        assert_eq!(ctx.within(secs, "join", cat.join()).await.unwrap().code(), 0);

        // The container's command is `sh`: attached, it reads its commands from stdin.
        let mut attached = ctx.within(secs, "attach", pods.attach("shell", &ap)).await.unwrap();
        let (mut stdin, mut stdout) = (attached.stdin().unwrap(), attached.stdout().unwrap());
        stdin.write_all(b"hostname\nexit 7\n").await.unwrap();
        let mut out = String::new();
        ctx.within(secs, "attached output", stdout.read_to_string(&mut out)).await.unwrap();
        assert_eq!(out, "shell\n");
        // The kubelet reports an attach's end as a success, whatever the exit code.
        assert_eq!(ctx.within(secs, "join", attached.join()).await.unwrap().code(), 0);

        let mut pf = ctx.within(secs, "portforward", pods.portforward("shell", &[8080])).await.unwrap();
        let mut port = pf.take_stream(8080).unwrap();
        port.write_all(b"ping 8080").await.unwrap();
        let mut back = [0u8; 9];
        ctx.within(secs, "the echo", port.read_exact(&mut back)).await.unwrap();
        assert_eq!(&back, b"ping 8080");
        port.close().await.unwrap();
        drop(port);
        ctx.within(secs, "join", pf.join()).await.unwrap();

        let switched: Vec<String> = server
            .requests()
            .into_iter()
            .filter(|seen| seen.status == 101)
            .filter_map(|seen| Some(seen.path_and_query.split('?').next()?.rsplit('/').next()?.to_owned()))
            .collect();
        assert_eq!(switched, ["exec", "exec", "attach", "portforward"]);
    }

    /// Port-forward over SPDY, after a SPDY upgrade and tunneled in a WebSocket, through the
    /// transport's upgraded connection to the loopback server: 1 MiB echoed and checksummed on
    /// one port while another port is refused, then a half-closed port whose answer still comes.
    async fn port_forward_over_spdy(ctx: Ctx) {
        let server = ctx.loopback("a port needs a kubelet, and the suite's clusters have none");
        let pods: Api<Pod> = ctx.api();
        let secs = Duration::from_secs(20);
        pods.create(&PostParams::default(), &pod(&ctx, "web", Some("kit-node"))).await.unwrap();
        server.fake().script_port(&ctx.ns, "web", 8080, PortScript::echo());
        for protocol in [PortForwardProtocol::Spdy, PortForwardProtocol::SpdyOverWebSocket] {
            let forward = pods.portforward_with("web", &[8080, 9], protocol);
            let mut pf = ctx.within(secs, "portforward", forward).await.unwrap();
            let mut refused = pf.take_stream(9).unwrap();
            let mut port = pf.take_stream(8080).unwrap();
            let input = noise(1 << 20);
            let out = {
                let (mut reader, mut writer) = (&mut port).split();
                let writing = async {
                    writer.write_all(&input).await.unwrap();
                    // Half-closed: the echo still comes back in full, then the pod's side ends.
                    writer.close().await.unwrap();
                };
                let mut out = Vec::new();
                let ((), read) = ctx.within(secs, "the echo", join(writing, reader.read_to_end(&mut out))).await;
                read.unwrap();
                out
            };
            assert_eq!((out.len(), fnv1a(&out)), (input.len(), fnv1a(&input)), "{protocol:?}");
            let mut buf = [0u8; 8];
            let e = ctx.within(secs, "the refused port", refused.read(&mut buf)).await.unwrap_err();
            let port_error = e.get_ref().and_then(|e| e.downcast_ref::<PortError>()).expect("a PortError");
            assert!(port_error.message.contains("connection refused"), "{protocol:?}: {}", port_error.message);
            drop((port, refused));
            ctx.within(secs, "join", pf.join()).await.unwrap();
        }
        let upgrades: Vec<(String, u16)> = server
            .requests()
            .into_iter()
            .filter(|seen| seen.path_and_query.contains("/portforward"))
            .map(|seen| (seen.method.to_string(), seen.status))
            .collect();
        assert_eq!(upgrades, [("POST".to_owned(), 101), ("GET".to_owned(), 101)]);
    }

    /// What a real API server answers without a kubelet: an exec, attach or port-forward into
    /// a Pod that no node runs is refused before any upgrade, `400 pod X does not have a host
    /// assigned`, as a `Status`.
    async fn a_pod_without_a_node_is_refused(ctx: Ctx) {
        let pods: Api<Pod> = ctx.api();
        let secs = Duration::from_secs(30);
        pods.create(&PostParams::default(), &pod(&ctx, "unscheduled", None)).await.unwrap();
        let expected = "pod unscheduled does not have a host assigned";
        let check = |what: &str, e: Error| match e {
            Error::Api(e) => {
                assert_eq!(e.http_status(), 400, "{what}: {e}");
                let status = e.api_status().unwrap_or_else(|| panic!("{what}: a Status: {e}"));
                assert_eq!((&status.reason, status.message.as_str()), (&Reason::BadRequest, expected), "{what}");
            }
            other => panic!("{what}: expected the 400 Status, got {other:?}"),
        };
        let ap = AttachParams::default();
        check("exec", ctx.within(secs, "exec", pods.exec("unscheduled", ["true"], &ap)).await.unwrap_err());
        check("attach", ctx.within(secs, "attach", pods.attach("unscheduled", &ap)).await.unwrap_err());
        check(
            "portforward",
            ctx.within(secs, "portforward", pods.portforward("unscheduled", &[80])).await.unwrap_err(),
        );
    }
}
