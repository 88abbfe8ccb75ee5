//! Exec and attach against the fake API server, driven by the core's client session with the
//! bytes moved in memory in random pieces: output, stdin and its v5 close, exit codes in the
//! kubelet's status, v4 and v1 negotiation, resizes, the built-in commands, and the frames of
//! a recorded exchange.
#![allow(clippy::disallowed_methods)] // one origin instant per test

mod upgrade_support;

use std::sync::{Arc, Mutex};

use kube_proto::AttachParams;
use kube_proto::channel::{ExecError, ExecEvent, TerminalSize, exit_code};
use kube_proto::websocket::{Decoder, Handshake, Message, Role};
use kube_proto_fake::Reply;
use kube_proto_fake::exec::{ExecScript, Input, Io};
use serde_json::Value;
use upgrade_support::{ExecPair, exec_request, fixture, pod, recorded_request, server, upgrade};

const SEEDS: u64 = 16;

#[test]
fn echo_prints_its_arguments_and_exits_0() {
    for seed in 0..SEEDS {
        let (mut fake, t0) = server();
        pod(&mut fake, t0, "default", "blog", &[&["web"]], Some("node-1"));
        // Unscripted: the built-in `echo`.
        let req = exec_request("default", "blog", &["echo", "hello", "world"], &AttachParams::default());
        let (protocol, session) = upgrade(&mut fake, t0, req);
        assert_eq!(protocol, "v5.channel.k8s.io");
        let mut pair = ExecPair::new(&protocol, session, seed);
        pair.pump();
        assert_eq!(pair.stdout(), b"hello world\n");
        assert_eq!(pair.client.exit_code(), Some(Ok(0)));
        assert!(pair.server.is_closed() && pair.client.is_closed());
        assert!(matches!(pair.events.last(), Some(ExecEvent::Closed(Some(c))) if c.code == 1000));

        // Scripted: whatever the program, its arguments.
        fake.script_exec("default", "blog", Some("web"), ExecScript::echo());
        let req = exec_request("default", "blog", &["/bin/anything", "a", "b"], &AttachParams::default());
        let (protocol, session) = upgrade(&mut fake, t0, req);
        let mut pair = ExecPair::new(&protocol, session, seed);
        pair.pump();
        assert_eq!(pair.stdout(), b"a b\n");
        assert_eq!(pair.client.exit_code(), Some(Ok(0)));
    }
}

#[test]
fn cat_copies_stdin_until_v5_closes_it() {
    let input: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    for seed in 0..SEEDS {
        let (mut fake, t0) = server();
        pod(&mut fake, t0, "default", "blog", &[&["web"]], None);
        fake.script_exec("default", "blog", None, ExecScript::cat());
        let ap = AttachParams::default().stdin(true).stderr(false);
        let (protocol, session) = upgrade(&mut fake, t0, exec_request("default", "blog", &["cat"], &ap));
        let mut pair = ExecPair::new(&protocol, session, seed);
        for chunk in input.chunks(1 + (seed as usize * 997) % 20_000) {
            pair.client.write_stdin(chunk).unwrap();
            pair.pump();
        }
        assert_eq!(pair.client.exit_code(), None, "cat runs until its stdin closes");
        pair.client.close_stdin().unwrap();
        pair.pump();
        assert_eq!(pair.stdout(), input);
        assert_eq!(pair.client.exit_code(), Some(Ok(0)));
        assert!(pair.server.is_closed());
    }
}

#[test]
fn a_non_zero_exit_comes_as_the_kubelets_status() {
    for seed in 0..SEEDS {
        let (mut fake, t0) = server();
        pod(&mut fake, t0, "default", "blog", &[&["web"]], Some("node-1"));
        fake.script_exec("default", "blog", None, ExecScript::exit_with(3, "out\n", "err\n"));
        let (protocol, session) = upgrade(&mut fake, t0, exec_request("default", "blog", &["x"], &Default::default()));
        let mut pair = ExecPair::new(&protocol, session, seed);
        pair.pump();
        assert_eq!(pair.stdout(), b"out\n");
        assert_eq!(pair.stderr(), b"err\n");
        assert_eq!(pair.client.exit_code(), Some(Ok(3)));
        let status = pair.status().unwrap();
        assert_eq!(status.reason.as_str(), "NonZeroExitCode");
        // Through the API server's v5 translator, which wraps client-go's reading of it.
        assert_eq!(status.message, "command terminated with non-zero exit code: command terminated with exit code 3");
    }
    // The built-in shell: stderr redirection and `exit`.
    let (mut fake, t0) = server();
    pod(&mut fake, t0, "default", "blog", &[&["web"]], Some("node-1"));
    let req = exec_request("default", "blog", &["sh", "-c", "echo oops >&2; exit 3"], &Default::default());
    let (protocol, session) = upgrade(&mut fake, t0, req);
    let mut pair = ExecPair::new(&protocol, session, 1);
    pair.pump();
    assert_eq!(pair.stderr(), b"oops\n");
    assert_eq!(pair.client.exit_code(), Some(Ok(3)));
}

/// The request's offered subprotocols replaced.
fn offering(mut req: http::Request<Vec<u8>>, protocols: &str) -> http::Request<Vec<u8>> {
    req.headers_mut().insert("sec-websocket-protocol", protocols.parse().unwrap());
    req
}

#[test]
fn without_v5_the_kubelet_chooses_the_first_protocol_it_speaks() {
    for seed in 0..SEEDS {
        let (mut fake, t0) = server();
        pod(&mut fake, t0, "default", "blog", &[&["web"]], Some("node-1"));
        let req = exec_request("default", "blog", &["sh", "-c", "exit 3"], &Default::default());
        let req = offering(req, "v6.channel.k8s.io, v4.channel.k8s.io, v3.channel.k8s.io");
        let (protocol, session) = upgrade(&mut fake, t0, req);
        assert_eq!(protocol, "v4.channel.k8s.io");
        let mut pair = ExecPair::new(&protocol, session, seed);
        assert!(matches!(pair.client.close_stdin(), Err(ExecError::StdinCloseUnsupported { .. })));
        pair.pump();
        assert_eq!(pair.client.exit_code(), Some(Ok(3)));
        // As the kubelet words it, naming the command.
        assert_eq!(
            pair.status().unwrap().message,
            "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
        );
    }
    // v5 wins wherever it is in the list (the API server's translator takes the request).
    let (mut fake, t0) = server();
    pod(&mut fake, t0, "default", "blog", &[&["web"]], Some("node-1"));
    let req = offering(
        exec_request("default", "blog", &["true"], &Default::default()),
        "v4.channel.k8s.io, v5.channel.k8s.io",
    );
    assert_eq!(upgrade(&mut fake, t0, req).0, "v5.channel.k8s.io");
}

#[test]
fn before_v4_the_error_channel_is_the_failures_text() {
    let (mut fake, t0) = server();
    pod(&mut fake, t0, "default", "blog", &[&["web"]], Some("node-1"));
    let req = offering(exec_request("default", "blog", &["sh", "-c", "exit 2"], &Default::default()), "channel.k8s.io");
    let (protocol, session) = upgrade(&mut fake, t0, req);
    assert_eq!(protocol, "channel.k8s.io");
    let mut pair = ExecPair::new(&protocol, session, 5);
    pair.pump();
    let status = pair.status().unwrap();
    assert_eq!(status.status, "Failure");
    assert_eq!(
        status.message,
        "command terminated with non-zero exit code: error executing command [sh -c exit 2], exit code 2"
    );

    // Success says nothing.
    let req = offering(exec_request("default", "blog", &["true"], &Default::default()), "v2.channel.k8s.io");
    let (protocol, session) = upgrade(&mut fake, t0, req);
    let mut pair = ExecPair::new(&protocol, session, 5);
    pair.pump();
    assert_eq!(pair.client.exit_code(), Some(Ok(0)));
}

#[test]
fn resizes_reach_a_custom_handler_with_a_tty() {
    for seed in 0..SEEDS {
        let (mut fake, t0) = server();
        pod(&mut fake, t0, "default", "blog", &[&["web"]], None);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        fake.script_exec(
            "default",
            "blog",
            None,
            ExecScript::custom(move |process| {
                assert!(process.tty && process.stdin && !process.stderr);
                let record = record.clone();
                move |input: Input<'_>, io: &mut Io| match input {
                    Input::Resize(size) => {
                        record.lock().unwrap().push(size);
                        io.stdout(format!("{}x{}\n", size.width, size.height));
                    }
                    Input::Stdin(data) => io.stderr(data), // a terminal merges it into stdout
                    Input::StdinClosed => io.exit(0),
                    Input::Start => {}
                }
            }),
        );
        let req = exec_request("default", "blog", &["sh"], &AttachParams::interactive_tty());
        let (protocol, session) = upgrade(&mut fake, t0, req);
        let mut pair = ExecPair::new(&protocol, session, seed);
        pair.client.resize(TerminalSize { width: 80, height: 24 }).unwrap();
        pair.client.write_stdin(b"typed\n").unwrap();
        pair.pump();
        pair.client.resize(TerminalSize { width: 132, height: 43 }).unwrap();
        pair.client.close_stdin().unwrap();
        pair.pump();
        assert_eq!(pair.stdout(), b"80x24\ntyped\n132x43\n");
        assert_eq!(
            *seen.lock().unwrap(),
            [TerminalSize { width: 80, height: 24 }, TerminalSize { width: 132, height: 43 }]
        );
        assert_eq!(pair.client.exit_code(), Some(Ok(0)));
    }

    // Without a tty the kubelet does not read the resize channel.
    let (mut fake, t0) = server();
    pod(&mut fake, t0, "default", "blog", &[&["web"]], None);
    fake.script_exec(
        "default",
        "blog",
        None,
        ExecScript::custom(|_| {
            |input: Input<'_>, io: &mut Io| match input {
                Input::Resize(_) => io.stdout("resized"),
                Input::StdinClosed => io.exit(0),
                _ => {}
            }
        }),
    );
    let ap = AttachParams::default().stdin(true);
    let (protocol, session) = upgrade(&mut fake, t0, exec_request("default", "blog", &["sh"], &ap));
    let mut pair = ExecPair::new(&protocol, session, 3);
    pair.client.resize(TerminalSize { width: 80, height: 24 }).unwrap();
    pair.client.close_stdin().unwrap();
    pair.pump();
    assert_eq!(pair.stdout(), b"");
    assert_eq!(pair.client.exit_code(), Some(Ok(0)));
}

#[test]
fn the_built_in_commands() {
    let (mut fake, t0) = server();
    pod(&mut fake, t0, "default", "blog", &[&["web"]], Some("node-1"));
    let run = |fake: &mut kube_proto_fake::FakeApiServer, command: &[&str], stdin: Option<&[u8]>| {
        let ap = AttachParams::default().stdin(stdin.is_some());
        let (protocol, session) = upgrade(fake, t0, exec_request("default", "blog", command, &ap));
        let mut pair = ExecPair::new(&protocol, session, 9);
        if let Some(input) = stdin {
            pair.client.write_stdin(input).unwrap();
            pair.pump();
            if pair.client.exit_code().is_none() {
                pair.client.close_stdin().unwrap();
            }
        }
        pair.pump();
        let code = pair.client.exit_code().expect("the command ended");
        (String::from_utf8(pair.stdout()).unwrap(), String::from_utf8(pair.stderr()).unwrap(), code)
    };
    assert_eq!(run(&mut fake, &["hostname"], None), ("blog\n".into(), "".into(), Ok(0)));
    assert_eq!(run(&mut fake, &["false"], None), ("".into(), "".into(), Ok(1)));
    assert_eq!(run(&mut fake, &["echo", "-n", "x"], None), ("x".into(), "".into(), Ok(0)));
    assert_eq!(run(&mut fake, &["cat"], None), ("".into(), "".into(), Ok(0)), "no stdin: closed from the start");
    assert_eq!(
        run(&mut fake, &["sh", "-c", "nope; false || echo 'a  b' && exit 7"], None),
        ("a  b\n".into(), "sh: 1: nope: not found\n".into(), Ok(7))
    );
    assert_eq!(run(&mut fake, &["bash", "-c", "nope"], None), ("".into(), "sh: 1: nope: not found\n".into(), Ok(127)));
    // `sh` reading its commands from stdin; `cat` takes the rest of it.
    assert_eq!(
        run(&mut fake, &["sh"], Some(b"echo one\nhostname\ncat\nrest of\nstdin")),
        ("one\nblog\nrest of\nstdin".into(), "".into(), Ok(0))
    );
    assert_eq!(run(&mut fake, &["/bin/sh"], Some(b"echo a\nexit 4\necho b\n")), ("a\n".into(), "".into(), Ok(4)));

    // A program the container does not have: containerd's error, not an exit code.
    let (_, _, code) = run(&mut fake, &["ls", "/"], None);
    let Err(ExecError::Failed(status)) = code else { panic!("{code:?}") };
    assert_eq!(status.code, 500);
    assert_eq!(status.reason.as_str(), "InternalError");
    assert!(
        status.message.starts_with(
            "Internal error occurred: error executing command in container: failed to exec in container: failed to start exec \""
        ),
        "{}",
        status.message
    );
    assert!(
        status.message.ends_with(
            "\": OCI runtime exec failed: exec failed: unable to start container process: exec: \"ls\": executable file \
             not found in $PATH: unknown"
        ),
        "{}",
        status.message
    );
}

#[test]
fn attach_runs_the_containers_command_and_ends_with_success() {
    let (mut fake, t0) = server();
    pod(&mut fake, t0, "default", "blog", &[&["main", "sh"], &["side"]], Some("node-1"));
    let req = kube_proto::Request::namespaced::<k8s_openapi::api::core::v1::Pod>("default")
        .attach("blog", &AttachParams::default().container("main").stdin(true))
        .unwrap();
    let (protocol, session) = upgrade(&mut fake, t0, req);
    let mut pair = ExecPair::new(&protocol, session, 2);
    pair.client.write_stdin(b"echo attached\nexit 9\n").unwrap();
    pair.pump();
    assert_eq!(pair.stdout(), b"attached\n");
    // The kubelet reports the end of an attach as a success, whatever the exit code.
    assert_eq!(pair.client.exit_code(), Some(Ok(0)));

    // A container with no command in its spec runs something the fake does not know: it says
    // nothing and runs until the client closes.
    let req = kube_proto::Request::namespaced::<k8s_openapi::api::core::v1::Pod>("default")
        .attach("blog", &AttachParams::default().container("side"))
        .unwrap();
    let (protocol, session) = upgrade(&mut fake, t0, req);
    let mut pair = ExecPair::new(&protocol, session, 2);
    pair.pump();
    assert!(!pair.server.is_closed());
    pair.client.close().unwrap();
    pair.pump();
    assert!(pair.server.is_closed() && pair.client.is_closed());
    assert!(matches!(pair.client.exit_code(), Some(Err(ExecError::NoStatus { .. }))));
}

#[test]
fn a_client_close_stops_the_process_without_a_status() {
    let (mut fake, t0) = server();
    pod(&mut fake, t0, "default", "blog", &[&["web"]], Some("node-1"));
    let ap = AttachParams::default().stdin(true);
    let (protocol, session) = upgrade(&mut fake, t0, exec_request("default", "blog", &["cat"], &ap));
    let mut pair = ExecPair::new(&protocol, session, 4);
    pair.client.write_stdin(b"x").unwrap();
    pair.client.close().unwrap();
    pair.pump();
    assert_eq!(pair.stdout(), b"x");
    assert!(pair.server.is_closed());
    assert!(pair.status().is_none());
    assert!(matches!(pair.events.last(), Some(ExecEvent::Closed(Some(c))) if c.code == 1000));
}

/// The server's frames, decoded as a client would.
fn frames(bytes: &[u8]) -> Vec<Message> {
    let mut decoder = Decoder::new(Role::Client, 1 << 20);
    let mut input = bytes;
    let mut out = Vec::new();
    while let Some(m) = decoder.decode(&mut input).unwrap() {
        out.push(m);
    }
    out
}

#[test]
fn the_handshake_and_frames_match_the_recorded_exchange() {
    let recorded = fixture("exec-pod-websocket-kubelet-unreachable");
    let (mut fake, t0) = server();
    pod(&mut fake, t0, "fixtures", "pod-bound2", &[&["c"]], Some("fixture-node"));
    // The kubelet could not be reached there; here the process ends at once with no output.
    fake.script_exec("fixtures", "pod-bound2", None, ExecScript::exit(0));
    let req = recorded_request(&recorded);
    let handshake = Handshake::from_request(&req).unwrap();
    let Reply::Upgrade { head, mut session } = fake.handle(t0, &req) else { panic!("no upgrade") };
    let response = &recorded["response"];
    assert_eq!(head.status().as_u16(), response["status"]);
    let headers: serde_json::Map<String, Value> = head
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.to_str().unwrap().to_owned())))
        .collect();
    assert_eq!(Value::Object(headers), response["headers"]);
    assert_eq!(handshake.verify(head.status(), head.headers(), b"").unwrap(), "v5.channel.k8s.io");

    let mut bytes = Vec::new();
    while let Some(b) = session.poll_transmit() {
        bytes.extend(b);
    }
    assert!(session.is_closed());
    let frames = frames(&bytes);
    let recorded_frames = response["websocket_frames"].as_array().unwrap();
    assert_eq!(frames.len(), recorded_frames.len());
    // The empty message on stdout that says the streams are ready, as recorded.
    assert_eq!(frames[0], Message::Binary(vec![1]));
    assert_eq!(recorded_frames[0]["channel"], 1);
    assert_eq!(recorded_frames[0]["payload_length"], 1);
    // Then the status on the error channel (here a success, there the kubelet's failure).
    let Message::Binary(status) = &frames[1] else { panic!("{:?}", frames[1]) };
    assert_eq!(status[0], 3);
    assert_eq!(recorded_frames[1]["channel"], 3);
    assert_eq!(&status[1..], br#"{"metadata":{},"status":"Success"}"#);
    // Then the close, 1000 with no reason, as recorded.
    let Message::Close(Some(close)) = &frames[2] else { panic!("{:?}", frames[2]) };
    assert_eq!(close.code, recorded_frames[2]["close_code"]);
    assert_eq!(close.reason, recorded_frames[2]["close_reason"]);

    // The recorded failure's status, from the kubelet, is read by the client as the fake's are.
    let recorded_status: kube_proto::Status = serde_json::from_value(recorded_frames[1]["data"].clone()).unwrap();
    assert!(matches!(exit_code(&recorded_status), Err(ExecError::Failed(_))));
}

#[test]
fn an_exec_with_no_stream_is_refused_by_the_kubelet() {
    let (mut fake, t0) = server();
    pod(&mut fake, t0, "default", "blog", &[&["web"]], Some("node-1"));
    let no_streams = |protocols: &str| {
        let mut req =
            offering(exec_request("default", "blog", &["true"], &AttachParams::default().stderr(false)), protocols);
        let uri = req.uri().to_string().replace("&stdout=true", "");
        *req.uri_mut() = uri.parse().unwrap();
        Handshake::start(&mut req, [1; 16]);
        req
    };
    // Through v5 the translator has switched already: the refusal comes as a status.
    let Reply::Upgrade { session, .. } = fake.handle(t0, &no_streams("v5.channel.k8s.io")) else { panic!() };
    let mut pair = ExecPair::new("v5.channel.k8s.io", session, 1);
    pair.pump();
    let Some(Err(ExecError::Failed(status))) = pair.client.exit_code() else { panic!("{:?}", pair.events) };
    assert_eq!(
        status.message,
        "Internal error occurred: unable to upgrade connection: you must specify at least 1 of stdin, stdout, stderr"
    );
    // Straight to the kubelet: its plain-text 400.
    let Reply::Response(resp) = fake.handle(t0, &no_streams("v4.channel.k8s.io")) else { panic!() };
    assert_eq!(resp.status(), 400);
    assert_eq!(resp.body(), b"you must specify at least 1 of stdin, stdout, stderr");
}
