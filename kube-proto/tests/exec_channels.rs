//! Exec and attach over the channel protocols (`v5.channel.k8s.io` down to `channel.k8s.io`):
//! stdout and stderr demultiplexed in any chunking, the error channel's `Status` turned into
//! an exit code or a typed error, stdin and its v5 CLOSE signal, resizes, and a connection
//! that ends early. The server's side is played with unmasked frames, and what the client
//! sends is read back with a server-side decoder.

mod fixture_support;

use fixture_support::Fixture;
use kube_proto::channel::{ChannelProtocol, ExecError, ExecEvent, ExecSession, TerminalSize, exit_code};
use kube_proto::websocket::{CloseFrame, Decoder, Masks, Message, Opcode, Role, WsError, encode_frame};
use kube_proto::{Reason, Status};

const V4: ChannelProtocol = ChannelProtocol::V4;
const V5: ChannelProtocol = ChannelProtocol::V5;

fn session(protocol: ChannelProtocol) -> ExecSession {
    ExecSession::new(protocol, Masks::new([42; 16]))
}

/// The server's binary messages as unmasked frames.
fn server(messages: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        encode_frame(&mut out, true, Opcode::Binary, m, None).unwrap();
    }
    out
}

fn server_close(code: u16) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(&mut out, true, Opcode::Close, &code.to_be_bytes(), None).unwrap();
    out
}

fn on(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut m = vec![channel];
    m.extend_from_slice(data);
    m
}

/// Feeds `bytes` in chunks of `chunk` bytes and collects the events (panics on an error).
fn feed(s: &mut ExecSession, bytes: &[u8], chunk: usize) -> Vec<ExecEvent> {
    for piece in bytes.chunks(chunk.max(1)) {
        s.handle_bytes(piece).unwrap();
    }
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// What the client wrote, as the server decodes it.
fn sent(s: &mut ExecSession) -> Vec<Message> {
    let mut bytes = Vec::new();
    while let Some(b) = s.poll_transmit() {
        bytes.extend(b);
    }
    let mut d = Decoder::new(Role::Server, 1 << 20);
    let mut input = &bytes[..];
    let mut out = Vec::new();
    while let Some(m) = d.decode(&mut input).unwrap() {
        out.push(m);
    }
    out
}

fn status(json: &str) -> Status {
    serde_json::from_str(json).unwrap()
}

/// The Status a kubelet writes for `exit 42` (k8s.io/kubelet's remotecommand handler).
const EXIT_42: &str = r#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: error executing command [sh -c exit 42], exit code 42","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"42"}]}}"#;

#[test]
fn the_recorded_kubelet_failure_ends_the_command_with_its_status() {
    // The frames of a real API server whose kubelet was unreachable: an empty message on
    // stdout (the server opens its first output channel so), the Status on channel 3, a close.
    let f = Fixture::load("exec-pod-websocket-kubelet-unreachable");
    let mut bytes = Vec::new();
    for frame in f.response()["websocket_frames"].as_array().unwrap() {
        match frame["opcode"].as_u64().unwrap() {
            2 => {
                let channel = frame["channel"].as_u64().unwrap() as u8;
                let data = match &frame["data"] {
                    serde_json::Value::String(s) => s.clone().into_bytes(),
                    v => serde_json::to_vec(v).unwrap(),
                };
                bytes.extend(server(&[&on(channel, &data)]));
            }
            8 => bytes.extend(server_close(frame["close_code"].as_u64().unwrap() as u16)),
            other => panic!("opcode {other}"),
        }
    }
    let protocol = ChannelProtocol::parse(f.response()["headers"]["sec-websocket-protocol"].as_str().unwrap()).unwrap();
    assert_eq!(protocol, V5);
    for chunk in [1, 7, bytes.len()] {
        let mut s = session(protocol);
        let events = feed(&mut s, &bytes, chunk);
        let [ExecEvent::Status(st), ExecEvent::Closed(Some(close))] = &events[..] else { panic!("{events:?}") };
        assert_eq!((st.code, &st.reason), (500, &Reason::InternalError));
        assert!(st.message.contains("connection refused"), "{}", st.message);
        assert_eq!(close, &CloseFrame { code: 1000, reason: String::new() });
        let Some(Err(ExecError::Failed(failed))) = s.exit_code() else { panic!("{:?}", s.exit_code()) };
        assert_eq!(*failed, **st);
        assert!(s.handle_eof().is_ok());
        assert!(s.is_closed());
        assert!(matches!(sent(&mut s)[..], [Message::Close(Some(CloseFrame { code: 1000, .. }))]), "the close echoed");
    }
}

#[test]
fn exit_codes_come_from_the_status() {
    assert_eq!(exit_code(&status(r#"{"metadata":{},"status":"Success"}"#)), Ok(0));
    assert_eq!(exit_code(&status(EXIT_42)), Ok(42));
    // Several causes: the ExitCode one counts.
    let two = r#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"Other","message":"7"},{"reason":"ExitCode","message":"137"}]}}"#;
    assert_eq!(exit_code(&status(two)), Ok(137));
    for bad in [
        r#"{"status":"Failure","reason":"NonZeroExitCode"}"#,
        r#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"x"}]}}"#,
        r#"{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"message":"3"}]}}"#,
    ] {
        assert!(matches!(exit_code(&status(bad)), Err(ExecError::BadExitCode(_))), "{bad}");
    }
    for failed in [
        r#"{"status":"Failure","reason":"InternalError","code":500,"message":"container not found (\"c\")"}"#,
        r#"{"status":"Failure","message":"no reason"}"#,
        r#"{"status":"Weird"}"#,
        r#"{}"#,
    ] {
        let Err(ExecError::Failed(s)) = exit_code(&status(failed)) else { panic!("{failed}") };
        assert_eq!(*s, status(failed), "the error carries the Status");
    }
}

#[test]
fn stdout_and_stderr_are_demultiplexed_in_any_chunking() {
    let bytes = [
        server(&[b"\x01", b"\x01out 1\n", b"\x02err 1\n", b"\x05unknown channel", b"\x00echo of stdin", b"\x04{}"]),
        server(&[b"\x01out 2\n", b"\xff\x01", b"\x02"]),
        server(&[&on(3, br#"{"metadata":{},"status":"Success"}"#)]),
        server_close(1000),
    ]
    .concat();
    let expected = vec![
        ExecEvent::Stdout(b"out 1\n".to_vec()),
        ExecEvent::Stderr(b"err 1\n".to_vec()),
        ExecEvent::Stdout(b"out 2\n".to_vec()),
        ExecEvent::Status(Box::new(status(r#"{"status":"Success"}"#))),
        ExecEvent::Closed(Some(CloseFrame { code: 1000, reason: String::new() })),
    ];
    for chunk in 1..=bytes.len() {
        let mut s = session(V5);
        assert_eq!(feed(&mut s, &bytes, chunk), expected, "chunks of {chunk}");
        assert_eq!(s.exit_code(), Some(Ok(0)));
    }
}

#[test]
fn a_status_may_span_messages_and_is_read_once_whole() {
    let mut s = session(V4);
    assert!(feed(&mut s, &server(&[&on(3, b" \n")]), 1000).is_empty());
    assert!(feed(&mut s, &server(&[&on(3, br#"{"status":"Fail"#)]), 1000).is_empty());
    assert_eq!(s.exit_code(), None, "still running");
    // The rest of the exit-42 status, from after its `"status":"Fail`.
    let tail = &EXIT_42[EXIT_42.find(r#"ure","message""#).unwrap()..];
    let events = feed(&mut s, &server(&[&on(3, tail.as_bytes())]), 1000);
    let [ExecEvent::Status(st)] = &events[..] else { panic!("{events:?}") };
    assert_eq!(st.reason.as_str(), "NonZeroExitCode");
    assert_eq!(s.exit_code(), Some(Ok(42)));
    // Anything after the status on that channel is ignored.
    assert!(feed(&mut s, &server(&[&on(3, b"garbage")]), 1000).is_empty());
    assert_eq!(s.exit_code(), Some(Ok(42)));
}

#[test]
fn an_error_channel_that_is_not_a_status_is_a_typed_error() {
    for bad in [&br#"{"status": 12]"#[..], br#""just a string""#, b"[1, 2]", br#"{"status":"Success"} trailing"#] {
        let mut s = session(V5);
        let err = s.handle_bytes(&server(&[&on(3, bad)])).unwrap_err();
        assert!(matches!(&err, ExecError::MalformedStatus { .. }), "{bad:?}: {err:?}");
        assert_eq!(s.handle_bytes(&server(&[b"\x01more"])), Err(err.clone()), "the session stays failed");
        assert_eq!(s.exit_code(), Some(Err(err)));
        assert!(s.is_closed());
        assert!(matches!(sent(&mut s)[..], [Message::Close(Some(CloseFrame { code: 1002, .. }))]), "a close says why");
    }
    // Cut short by the close.
    let mut s = session(V5);
    let err = s.handle_bytes(&[server(&[&on(3, br#"{"status":"#)]), server_close(1000)].concat()).unwrap_err();
    assert!(matches!(err, ExecError::MalformedStatus { .. }), "{err:?}");
    assert!(matches!(s.poll_event(), Some(ExecEvent::Closed(_))));
    // Longer than the limit, in small messages.
    let mut s = ExecSession::with_max_message(V5, Masks::new([1; 16]), 64);
    let mut result = Ok(());
    for _ in 0..10 {
        result = result.and_then(|()| s.handle_bytes(&server(&[&on(3, b"          ")])));
    }
    assert!(matches!(result, Err(ExecError::MalformedStatus { .. })), "{result:?}");
}

#[test]
fn v5_closes_stdin_alone_with_the_close_signal() {
    let mut s = session(V5);
    s.write_stdin(b"hello\n").unwrap();
    s.write_stdin(b"").unwrap();
    s.close_stdin().unwrap();
    s.close_stdin().unwrap();
    assert!(s.is_stdin_closed());
    assert_eq!(s.write_stdin(b"late"), Err(ExecError::StdinClosed));
    assert_eq!(sent(&mut s), [Message::Binary(b"\x00hello\n".to_vec()), Message::Binary(vec![255, 0])]);
    // The output and the status still come.
    let events =
        feed(&mut s, &[server(&[b"\x01hello\n", &on(3, br#"{"status":"Success"}"#)]), server_close(1000)].concat(), 3);
    assert_eq!(events.len(), 3);
    assert_eq!(s.exit_code(), Some(Ok(0)));
}

#[test]
fn v4_cannot_close_stdin_alone_and_says_so() {
    let mut s = session(V4);
    s.write_stdin(b"data").unwrap();
    assert_eq!(s.close_stdin(), Err(ExecError::StdinCloseUnsupported { protocol: V4 }));
    assert!(!s.is_stdin_closed());
    assert_eq!(sent(&mut s), [Message::Binary(b"\x00data".to_vec())], "no close signal sent");
    s.write_stdin(b"more").unwrap();
    // What is left: closing the whole connection.
    s.close().unwrap();
    assert_eq!(
        sent(&mut s),
        [Message::Binary(b"\x00more".to_vec()), Message::Close(Some(CloseFrame { code: 1000, reason: String::new() }))]
    );
    assert_eq!(s.write_stdin(b"x"), Err(ExecError::Closed));
    let err = ExecError::StdinCloseUnsupported { protocol: V4 }.to_string();
    assert!(err.contains("v4.channel.k8s.io") && err.contains("v5"), "{err}");
}

#[test]
fn resizes_go_on_channel_4_from_v3_on() {
    for protocol in [ChannelProtocol::V3, V4, V5] {
        let mut s = session(protocol);
        s.resize(TerminalSize { width: 80, height: 24 }).unwrap();
        assert_eq!(sent(&mut s), [Message::Binary(b"\x04{\"Width\":80,\"Height\":24}".to_vec())]);
    }
    for protocol in [ChannelProtocol::V1, ChannelProtocol::V2] {
        let mut s = session(protocol);
        assert_eq!(s.resize(TerminalSize { width: 1, height: 1 }), Err(ExecError::ResizeUnsupported { protocol }));
        assert_eq!(s.close_stdin(), Err(ExecError::StdinCloseUnsupported { protocol }));
    }
    // The same shape as Go's TerminalSize.
    let size: TerminalSize = serde_json::from_str(r#"{"Width":65535,"Height":0}"#).unwrap();
    assert_eq!(size, TerminalSize { width: 65535, height: 0 });
    assert_eq!(serde_json::to_string(&size).unwrap(), r#"{"Width":65535,"Height":0}"#);
}

#[test]
fn before_v4_the_error_channel_is_text_read_at_the_close() {
    for protocol in [ChannelProtocol::V1, ChannelProtocol::V2, ChannelProtocol::V3] {
        let mut s = session(protocol);
        let events =
            feed(&mut s, &[server(&[b"\x03error executing ", b"\x03command"]), server_close(1000)].concat(), 4);
        let [ExecEvent::Status(st), ExecEvent::Closed(_)] = &events[..] else { panic!("{events:?}") };
        assert_eq!((st.status.as_str(), st.message.as_str()), ("Failure", "error executing command"));
        assert!(matches!(s.exit_code(), Some(Err(ExecError::Failed(_)))));
        // Nothing on it: success.
        let mut s = session(protocol);
        let events = feed(&mut s, &[server(&[b"\x01ok"]), server_close(1000)].concat(), 4);
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(s.exit_code(), Some(Ok(0)));
    }
}

#[test]
fn a_connection_that_ends_early_is_an_error() {
    // A close without a status (v4 and v5 servers always send one).
    let mut s = session(V4);
    feed(&mut s, &[server(&[b"\x01partial"]), server_close(1011)].concat(), 5);
    assert_eq!(
        s.exit_code(),
        Some(Err(ExecError::NoStatus { close: Some(CloseFrame { code: 1011, reason: String::new() }) }))
    );
    assert!(s.exit_code().unwrap().unwrap_err().to_string().contains("1011"));
    // The byte stream ends with no close at all: between frames, then inside one.
    let mut s = session(V5);
    feed(&mut s, &server(&[b"\x01partial"]), 5);
    assert_eq!(s.handle_eof(), Err(ExecError::ConnectionLost { mid_frame: false }));
    assert_eq!(s.exit_code(), Some(Err(ExecError::ConnectionLost { mid_frame: false })));
    assert!(s.is_closed());
    assert_eq!(s.write_stdin(b"x"), Err(ExecError::Closed));
    let mut s = session(V5);
    let bytes = server(&[b"\x01partial"]);
    s.handle_bytes(&bytes[..4]).unwrap();
    assert_eq!(s.handle_eof(), Err(ExecError::ConnectionLost { mid_frame: true }));
    // After this end's close, a server that drops the stream instead of answering is fine.
    let mut s = session(V5);
    s.close().unwrap();
    assert!(!s.is_closed());
    assert_eq!(s.handle_eof(), Ok(()));
    assert!(s.is_closed());
    assert_eq!(s.exit_code(), Some(Err(ExecError::NoStatus { close: None })));
    // Blank bytes on the error channel are no status, not a malformed one.
    let mut s = session(V4);
    feed(&mut s, &[server(&[b"\x03 \n"]), server_close(1000)].concat(), 3);
    assert!(matches!(s.exit_code(), Some(Err(ExecError::NoStatus { .. }))));
}

#[test]
fn messages_the_protocol_does_not_allow_are_errors() {
    let mut s = session(V5);
    let mut text = Vec::new();
    encode_frame(&mut text, true, Opcode::Text, b"\x01hi", None).unwrap();
    assert_eq!(s.handle_bytes(&text), Err(ExecError::TextMessage));
    assert!(matches!(sent(&mut s)[..], [Message::Close(Some(CloseFrame { code: 1002, .. }))]));

    let mut s = session(V5);
    assert_eq!(s.handle_bytes(&server(&[b""])), Err(ExecError::EmptyMessage));

    // A WebSocket violation, with the stdout before it kept.
    let mut s = session(V5);
    let bytes = [server(&[b"\x01before"]), vec![0x83, 0]].concat();
    assert_eq!(s.handle_bytes(&bytes), Err(ExecError::WebSocket(WsError::UnknownOpcode(3))));
    assert_eq!(s.poll_event(), Some(ExecEvent::Stdout(b"before".to_vec())));
    assert!(matches!(sent(&mut s)[..], [Message::Close(Some(CloseFrame { code: 1002, .. }))]));
}

#[test]
fn pings_are_answered_without_an_event() {
    let mut s = session(V5);
    let mut bytes = Vec::new();
    encode_frame(&mut bytes, true, Opcode::Ping, b"hb", None).unwrap();
    assert!(feed(&mut s, &bytes, 1).is_empty());
    assert_eq!(sent(&mut s), [Message::Pong(b"hb".to_vec())]);
    s.ping(b"mine").unwrap();
    assert_eq!(sent(&mut s), [Message::Ping(b"mine".to_vec())]);
}

#[test]
fn protocols_are_named_as_the_api_server_names_them() {
    for p in [ChannelProtocol::V1, ChannelProtocol::V2, ChannelProtocol::V3, V4, V5] {
        assert_eq!(ChannelProtocol::parse(p.name()), Some(p));
        assert_eq!(p.to_string(), p.name());
    }
    assert_eq!(ChannelProtocol::parse("v5.channel.k8s.io"), Some(V5));
    assert_eq!(ChannelProtocol::parse("base64.channel.k8s.io"), None);
    assert_eq!(ChannelProtocol::parse("v4.base64.channel.k8s.io"), None);
    assert_eq!(ChannelProtocol::parse(""), None);
    // Every protocol the exec request offers is one of these.
    for offered in kube_proto::request::EXEC_PROTOCOLS.split(", ") {
        assert!(ChannelProtocol::parse(offered).is_some(), "{offered}");
    }
}

#[test]
fn debug_shows_no_output() {
    let e = ExecEvent::Stdout(b"SECRET-password".to_vec());
    assert_eq!(format!("{e:?}"), "Stdout(15 bytes)");
    assert_eq!(format!("{:?}", ExecEvent::Stderr(b"SECRET".to_vec())), "Stderr(6 bytes)");
}
