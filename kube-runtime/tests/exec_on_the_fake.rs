//! Exec, attach and port-forward through `Api<Pod>` over the fake API server's scripted
//! processes and listeners, in memory: output and exit codes, stdin closed with v5's signal,
//! resizes, refusals read as the server's `Status`, a port echoing 4 MiB (checksummed), a port
//! nobody listens on, abort, and output nobody reads dropped rather than holding the session up.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures_util::future::{BoxFuture, pending, ready};
use kube_proto::websocket::{Decoder, Message, Role};
use kube_runtime::transport::{Transport, TransportError, TransportResponse, Upgraded, UpgradedStream};

use futures_executor::block_on;
use futures_util::future::join;
use futures_util::{AsyncReadExt as _, AsyncWriteExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube_proto::AttachParams;
use kube_proto::channel::{ChannelProtocol, ExecError, TerminalSize};
use kube_runtime::fake::FakeTransport;
use kube_runtime::fake::server::exec::{ExecScript, Input, Io, PortScript};
use kube_runtime::remote::PortError;
use kube_runtime::{Api, Client, Error};

/// A client of a fresh fake with the pod `name` (one container, `main`), and the transport
/// to script it through.
fn pods(names: &[&str]) -> (FakeTransport, Api<Pod>) {
    let (transport, config) = FakeTransport::new();
    let client = Client::new(transport.clone(), config).unwrap();
    let pods: Api<Pod> = Api::default_namespaced(client);
    for name in names {
        let pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name},
            "spec": {"nodeName": "node-1", "containers": [{"name": "main", "image": "busybox", "command": ["cat"]}]},
        }))
        .unwrap();
        block_on(pods.create(&Default::default(), &pod)).unwrap();
    }
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
fn echo_prints_its_arguments_and_exits_with_0() {
    let (transport, pods) = pods(&["blog"]);
    transport.server().script_exec("default", "blog", None, ExecScript::echo());
    block_on(async {
        let mut echo = pods.exec("blog", ["echo", "hello", "world"], &AttachParams::default()).await.unwrap();
        assert_eq!(echo.protocol(), ChannelProtocol::V5);
        assert!(echo.stdin().is_none(), "stdin was not asked for");
        assert!(echo.terminal_size().is_none(), "no tty");
        let mut stdout = echo.stdout().unwrap();
        let mut stderr = echo.stderr().unwrap();
        let (mut out, mut err) = (String::new(), String::new());
        stdout.read_to_string(&mut out).await.unwrap();
        stderr.read_to_string(&mut err).await.unwrap();
        assert_eq!((out.as_str(), err.as_str()), ("hello world\n", ""));
        let status = echo.join().await.unwrap();
        assert_eq!(status.code(), 0);
        assert!(status.success());
        assert!(status.status().is_success());
    });
}

#[test]
fn cat_ends_when_stdin_is_closed() {
    let (transport, pods) = pods(&["blog"]);
    transport.server().script_exec("default", "blog", Some("main"), ExecScript::cat());
    let input = noise(3 << 20);
    block_on(async {
        let ap = AttachParams::default().stdin(true).stderr(false).container("main");
        let mut cat = pods.exec("blog", ["cat"], &ap).await.unwrap();
        let mut stdin = cat.stdin().unwrap();
        let mut stdout = cat.stdout().unwrap();
        let writing = async {
            for piece in input.chunks(100_000) {
                stdin.write_all(piece).await.unwrap();
            }
            stdin.close().await.unwrap();
            assert!(stdin.write_all(b"more").await.is_err(), "a write after close fails");
        };
        let reading = async {
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).await.unwrap();
            out
        };
        let ((), out) = join(writing, reading).await;
        assert_eq!((out.len(), fnv1a(&out)), (input.len(), fnv1a(&input)));
        assert_eq!(cat.join().await.unwrap().code(), 0);
    });
}

#[test]
fn a_non_zero_exit_is_a_status_not_an_error() {
    let (transport, pods) = pods(&["blog"]);
    transport.server().script_exec("default", "blog", None, ExecScript::exit_with(3, "partial\n", "no luck\n"));
    block_on(async {
        let mut p = pods.exec("blog", ["sh", "-c", "exit 3"], &AttachParams::default()).await.unwrap();
        let (mut stdout, mut stderr) = (p.stdout().unwrap(), p.stderr().unwrap());
        let (mut out, mut err) = (String::new(), String::new());
        stdout.read_to_string(&mut out).await.unwrap();
        stderr.read_to_string(&mut err).await.unwrap();
        assert_eq!((out.as_str(), err.as_str()), ("partial\n", "no luck\n"));
        let status = p.join().await.unwrap();
        assert_eq!(status.code(), 3);
        assert!(!status.success());
        assert_eq!(status.status().reason.as_str(), "NonZeroExitCode");
    });
}

#[test]
fn a_command_that_cannot_run_is_a_typed_error() {
    let (_transport, pods) = pods(&["blog"]);
    // Nothing scripted: the built-in table, which has no `frobnicate`.
    block_on(async {
        let p = pods.exec("blog", ["frobnicate"], &AttachParams::default()).await.unwrap();
        match p.join().await {
            Err(Error::Exec(ExecError::Failed(status))) => {
                assert!(status.message.contains("executable file not found"), "{}", status.message)
            }
            other => panic!("expected a failure with its Status, got {other:?}"),
        }
    });
}

#[test]
fn a_missing_pod_is_the_servers_not_found() {
    let (_transport, pods) = pods(&[]);
    block_on(async {
        match pods.exec("nowhere", ["true"], &AttachParams::default()).await {
            Err(Error::Api(e)) => assert!(e.is_not_found(), "{e}"),
            other => panic!("expected a 404 Status, got {other:?}"),
        }
        match pods.portforward("nowhere", &[80]).await {
            Err(Error::Api(e)) => assert!(e.is_not_found(), "{e}"),
            other => panic!("expected a 404 Status, got {other:?}"),
        }
    });
}

#[test]
fn bad_parameters_are_refused_before_any_request() {
    let (_transport, pods) = pods(&["blog"]);
    block_on(async {
        let none = AttachParams::default().stdout(false).stderr(false);
        assert!(matches!(pods.exec("blog", ["true"], &none).await, Err(Error::Request(_))));
        assert!(matches!(pods.portforward("blog", &[]).await, Err(Error::Request(_))));
    });
}

#[test]
fn resizes_reach_the_process() {
    let (transport, pods) = pods(&["blog"]);
    // A process that prints each size it is given, and ends when stdin closes.
    transport.server().script_exec(
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
    block_on(async {
        let mut sh = pods.exec("blog", ["sh"], &AttachParams::interactive_tty()).await.unwrap();
        assert!(sh.stderr().is_none(), "a tty has no separate stderr");
        let mut sizes = sh.terminal_size().unwrap();
        let mut stdout = sh.stdout().unwrap();
        sizes.send(TerminalSize { width: 80, height: 24 }).await.unwrap();
        sizes.send(TerminalSize { width: 132, height: 43 }).await.unwrap();
        let mut seen = vec![0u8; "80x24\n132x43\n".len()];
        stdout.read_exact(&mut seen).await.unwrap();
        assert_eq!(String::from_utf8(seen).unwrap(), "80x24\n132x43\n");
        drop(sh.stdin()); // dropping stdin closes it too
        assert_eq!(sh.join().await.unwrap().code(), 0);
    });
}

#[test]
fn attach_reaches_the_running_process() {
    let (transport, pods) = pods(&["blog"]);
    let attached = Arc::new(Mutex::new(Vec::new()));
    let record = attached.clone();
    transport.server().script_exec(
        "default",
        "blog",
        None,
        ExecScript::custom(move |process| {
            record.lock().unwrap().push((process.attach, process.command.clone()));
            |input: Input<'_>, io: &mut Io| match input {
                Input::Stdin(data) => io.stdout(data),
                Input::StdinClosed => io.exit(0),
                Input::Start | Input::Resize(_) => {}
            }
        }),
    );
    block_on(async {
        let mut p = pods.attach("blog", &AttachParams::default().stdin(true).stderr(false)).await.unwrap();
        let mut stdin = p.stdin().unwrap();
        let mut stdout = p.stdout().unwrap();
        stdin.write_all(b"are you there?\n").await.unwrap();
        let mut line = vec![0u8; 15];
        stdout.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"are you there?\n");
        stdin.close().await.unwrap();
        assert_eq!(p.join().await.unwrap().code(), 0);
    });
    assert_eq!(*attached.lock().unwrap(), vec![(true, vec!["cat".to_owned()])]);
}

#[test]
fn output_nobody_takes_is_dropped_and_join_still_ends() {
    let (transport, pods) = pods(&["blog"]);
    // Far more than the readers' buffers hold.
    let out = noise(4 << 20);
    transport.server().script_exec("default", "blog", None, ExecScript::exit_with(0, &out, &out));
    block_on(async {
        let p = pods.exec("blog", ["spew"], &AttachParams::default()).await.unwrap();
        assert_eq!(p.join().await.unwrap().code(), 0);
    });
}

#[test]
fn a_reader_not_read_holds_the_session_up() {
    let (transport, pods) = pods(&["blog"]);
    let out = noise(4 << 20);
    // 4 MiB in writes of 16 KiB (one message each), then the exit.
    let script = {
        let out = out.clone();
        ExecScript::custom(move |_| {
            let out = out.clone();
            move |input: Input<'_>, io: &mut Io| {
                if input == Input::Start {
                    out.chunks(16 << 10).for_each(|piece| io.stdout(piece));
                    io.exit(0);
                }
            }
        })
    };
    transport.server().script_exec("default", "blog", None, script);
    block_on(async {
        let mut p = pods.exec("blog", ["spew"], &AttachParams::default().stderr(false)).await.unwrap();
        let mut stdout = p.stdout().unwrap();
        let mut joining = Box::pin(p.join());
        // Nobody reads stdout: once its buffer is full the connection is not read, so the
        // status (after 4 MiB of output) cannot arrive.
        let mut cx = Context::from_waker(Waker::noop());
        for _ in 0..100 {
            assert!(joining.as_mut().poll(&mut cx).is_pending());
        }
        let reading = async {
            let mut read = Vec::new();
            stdout.read_to_end(&mut read).await.unwrap();
            read
        };
        let (read, status) = join(reading, joining).await;
        assert_eq!((read.len(), fnv1a(&read)), (out.len(), fnv1a(&out)));
        assert_eq!(status.unwrap().code(), 0);
    });
}

#[test]
fn handles_on_other_threads_wake_each_other() {
    let (transport, pods) = pods(&["blog"]);
    transport.server().script_exec("default", "blog", None, ExecScript::cat());
    let input = noise(1 << 20);
    let mut p = block_on(pods.exec("blog", ["cat"], &AttachParams::default().stdin(true).stderr(false))).unwrap();
    let mut stdout = p.stdout().unwrap();
    let mut stdin = p.stdin().unwrap();
    // The reader waits on its own thread: only the writer's and join's polls, on this
    // thread, move the connection, and they must wake it.
    let reader = std::thread::spawn(move || {
        block_on(async {
            let mut out = Vec::new();
            stdout.read_to_end(&mut out).await.unwrap();
            out
        })
    });
    let writer = std::thread::spawn({
        let input = input.clone();
        move || {
            block_on(async {
                for piece in input.chunks(10_000) {
                    stdin.write_all(piece).await.unwrap();
                }
                stdin.close().await.unwrap();
            })
        }
    });
    assert_eq!(block_on(p.join()).unwrap().code(), 0);
    writer.join().unwrap();
    let out = reader.join().unwrap();
    assert_eq!((out.len(), fnv1a(&out)), (input.len(), fnv1a(&input)));
}

#[test]
fn abort_ends_the_session() {
    let (transport, pods) = pods(&["blog"]);
    transport.server().script_exec("default", "blog", None, ExecScript::cat());
    block_on(async {
        let mut p = pods.exec("blog", ["cat"], &AttachParams::default().stdin(true)).await.unwrap();
        let mut stdin = p.stdin().unwrap();
        let mut stdout = p.stdout().unwrap();
        stdin.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        stdout.read_exact(&mut one).await.unwrap();
        p.abort();
        let mut rest = Vec::new();
        stdout.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        assert!(stdin.write_all(b"y").await.is_err(), "writes after abort fail");
        assert!(matches!(p.join().await, Err(Error::Aborted)));
    });
}

#[test]
fn a_port_echoes_4_mib_checksummed() {
    let (transport, pods) = pods(&["web"]);
    transport.server().script_port("default", "web", 7, PortScript::echo());
    let data = noise(4 << 20);
    block_on(async {
        let mut pf = pods.portforward("web", &[7]).await.unwrap();
        assert_eq!(pf.ports(), [7]);
        let mut stream = pf.take_stream(7).unwrap();
        assert!(pf.take_stream(7).is_none(), "a stream is taken once");
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
        assert_eq!((echoed.len(), fnv1a(&echoed)), (data.len(), fnv1a(&data)));
        // The only stream closing closes the connection: reads end, join is clean.
        stream.close().await.unwrap();
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        pf.join().await.unwrap();
    });
}

#[test]
fn a_port_nobody_listens_on_fails_its_stream_only() {
    let (transport, pods) = pods(&["web"]);
    transport.server().script_port("default", "web", 7, PortScript::echo());
    block_on(async {
        let mut pf = pods.portforward("web", &[7, 9]).await.unwrap();
        let mut closed = pf.take_stream(9).unwrap();
        let mut buf = [0u8; 16];
        let e = closed.read(&mut buf).await.unwrap_err();
        let port_error = e.get_ref().and_then(|e| e.downcast_ref::<PortError>()).expect("a PortError");
        assert_eq!(port_error.port, 9);
        assert!(port_error.message.contains("connection refused"), "{}", port_error.message);
        assert!(closed.write_all(b"x").await.is_err());

        let mut open = pf.take_stream(7).unwrap();
        open.write_all(b"still here").await.unwrap();
        let mut back = [0u8; 10];
        open.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"still here");
        drop((open, closed));
        pf.join().await.unwrap();
    });
}

#[test]
fn forward_copies_a_local_connection_both_ways() {
    let (transport, pods) = pods(&["web"]);
    transport.server().script_port("default", "web", 7, PortScript::echo());
    block_on(async {
        let mut pf = pods.portforward("web", &[7]).await.unwrap();
        let remote = pf.take_stream(7).unwrap();
        // The "local connection": what it reads is a request, what is written to it collects.
        let local =
            Local { input: futures_util::io::Cursor::new(b"GET / HTTP/1.0\r\n\r\n".to_vec()), output: Vec::new() };
        let mut local = local;
        let copied = kube_runtime::remote::forward(&mut local, remote).await.unwrap();
        assert_eq!(copied.to_pod, 18);
        // The echo may or may not have come back before the local end closed the port.
        assert_eq!(copied.from_pod, 18);
        assert_eq!(local.output.len() as u64, copied.from_pod);
        pf.join().await.unwrap();
    });
}

/// A local connection in memory: reads from `input`, writes to `output`.
struct Local {
    input: futures_util::io::Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl futures_util::AsyncRead for Local {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.input).poll_read(cx, buf)
    }
}

impl futures_util::AsyncWrite for Local {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.output.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn a_heartbeat_ping_goes_out_on_the_transports_timer() {
    let (fake, config) = FakeTransport::new();
    let pings = Arc::new(AtomicUsize::new(0));
    let transport = Heartbeats { fake: fake.clone(), timers: Arc::new(AtomicUsize::new(0)), pings: pings.clone() };
    let timers = transport.timers.clone();
    let pods: Api<Pod> = Api::default_namespaced(Client::new(transport, config).unwrap());
    let pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "blog"}, "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }))
    .unwrap();
    block_on(pods.create(&Default::default(), &pod)).unwrap();
    fake.server().script_exec("default", "blog", None, ExecScript::cat());
    block_on(async {
        let mut cat = pods.exec("blog", ["cat"], &AttachParams::default().stdin(true)).await.unwrap();
        let (mut stdin, mut stdout) = (cat.stdin().unwrap(), cat.stdout().unwrap());
        stdin.write_all(b"x").await.unwrap();
        let mut one = [0u8; 1];
        stdout.read_exact(&mut one).await.unwrap();
        stdin.close().await.unwrap();
        assert_eq!(cat.join().await.unwrap().code(), 0);
    });
    // The first timer fired at once: one ping, and a new timer (which never fires).
    assert_eq!(pings.load(Ordering::SeqCst), 1);
    assert_eq!(timers.load(Ordering::SeqCst), 2);
}

/// The fake, with timers of which the first fires at once and the others never, and a count
/// of the pings the client sends.
struct Heartbeats {
    fake: FakeTransport,
    timers: Arc<AtomicUsize>,
    pings: Arc<AtomicUsize>,
}

impl Transport for Heartbeats {
    fn send(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<TransportResponse, TransportError>> {
        self.fake.send(request)
    }

    fn sleep_until(&self, _deadline: Instant) -> BoxFuture<'static, ()> {
        if self.timers.fetch_add(1, Ordering::SeqCst) == 0 { Box::pin(ready(())) } else { Box::pin(pending()) }
    }

    fn upgrade(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<Upgraded, TransportError>> {
        let (upgrading, pings) = (self.fake.upgrade(request), self.pings.clone());
        Box::pin(async move {
            Ok(match upgrading.await? {
                Upgraded::Switched { headers, stream } => {
                    let decoder = Decoder::new(Role::Server, 1 << 24);
                    Upgraded::Switched { headers, stream: UpgradedStream::new(Counting { stream, decoder, pings }) }
                }
                refused => refused,
            })
        })
    }
}

/// An upgraded stream that counts the pings among the frames written to it.
struct Counting {
    stream: UpgradedStream,
    decoder: Decoder,
    pings: Arc<AtomicUsize>,
}

impl futures_util::AsyncRead for Counting {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl futures_util::AsyncWrite for Counting {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = written {
            let mut input = &buf[..n];
            while let Ok(Some(message)) = this.decoder.decode(&mut input) {
                if matches!(message, Message::Ping(_)) {
                    this.pings.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_close(cx)
    }
}
