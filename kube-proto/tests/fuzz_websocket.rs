//! Fuzzing what a server sends over an exec, attach or port-forward connection: the WebSocket
//! frame decoder (`Decoder`, `WebSocket`) and the channel demultiplexers (`ExecSession` for
//! every protocol version, `PortForwardSession`), with hand-written and recorded streams,
//! mutated, fed in random chunkings and with random message limits. For every input:
//!
//! - nothing panics;
//! - the messages, events, errors and exit codes do not depend on the chunking;
//! - messages stay within their limits (a data message within the limit, control frames
//!   within 125 bytes, a close reason within 123);
//! - every ping before the close is answered by one pong with its data, and what the client
//!   writes back is well-formed, masked, and ends with at most one close;
//! - a failed session stays failed with the same error, and is closed; output events are
//!   never empty, a status comes at most once, and nothing follows the close event;
//! - port-forward data and errors name the port requested at their index.
//!
//! `FUZZ_ITERATIONS`, `FUZZ_SEED` and `FUZZ_REPLAY`: see `tests/fuzz/mod.rs` and `fuzz/README.md`.

mod fuzz;

use fuzz::{Fuzzer, SplitMix64, chunking, chunks};
use kube_proto::channel::{
    ChannelProtocol, ExecError, ExecEvent, ExecSession, PortForwardError, PortForwardEvent, PortForwardSession,
};
use kube_proto::websocket::{Decoder, Masks, Message, Role, WebSocket, WsError};

const PORTS: [u16; 2] = [80, 8443];

fn variant(debug: &str) -> String {
    debug.split([' ', '{', '(']).next().unwrap_or("").to_owned()
}

/// Decodes the pieces in order, until the end or the first error (which must then repeat).
fn decode(role: Role, max: usize, pieces: &[&[u8]]) -> (Vec<Message>, Option<WsError>) {
    let mut d = Decoder::new(role, max);
    let mut out = Vec::new();
    for piece in pieces {
        let mut input = *piece;
        loop {
            match d.decode(&mut input) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => {
                    assert!(input.is_empty(), "None with input left");
                    break;
                }
                Err(e) => {
                    assert_eq!(d.decode(&mut &b"\x82\x00"[..]), Err(e.clone()), "a failed decoder stays failed");
                    return (out, Some(e));
                }
            }
        }
        if d.is_closed() {
            assert!(input.is_empty(), "input after a close is taken in");
        }
    }
    (out, None)
}

fn check_decoder(input: &[u8], rng: &mut SplitMix64) -> String {
    let max = *rng.pick(&[0usize, 1, 16, 300, 1 << 16, 16 << 20]).unwrap();
    let whole = decode(Role::Client, max, &[input]);
    let cuts = chunking(rng, input.len());
    assert_eq!(decode(Role::Client, max, &chunks(input, &cuts)), whole, "the chunking changed the result");
    for m in &whole.0 {
        match m {
            Message::Binary(b) => assert!(b.len() <= max),
            Message::Text(t) => assert!(t.len() <= max),
            Message::Ping(b) | Message::Pong(b) => assert!(b.len() <= 125),
            Message::Close(c) => assert!(c.as_ref().is_none_or(|c| c.reason.len() <= 123)),
        }
    }
    // The connection answers: a pong per ping before the close, then at most one close.
    let mut ws = WebSocket::client(Masks::new([rng.next_u64() as u8; 16]), max);
    let mut rest = input;
    let mut pings = Vec::new();
    let mut error = None;
    loop {
        match ws.receive(&mut rest) {
            Ok(Some(Message::Ping(p))) if !ws.is_close_sent() => pings.push(p),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    assert_eq!(error, whole.1);
    let sent = ws.poll_transmit().unwrap_or_default();
    let (answers, bad) = decode(Role::Server, usize::MAX, &[&sent]);
    assert_eq!(bad, None, "the client wrote a frame a server rejects");
    let closes = answers.iter().filter(|m| matches!(m, Message::Close(_))).count();
    assert!(closes <= 1 && (closes == 0 || matches!(answers.last(), Some(Message::Close(_)))), "{answers:?}");
    let pongs: Vec<Vec<u8>> =
        answers.iter().filter_map(|m| if let Message::Pong(p) = m { Some(p.clone()) } else { None }).collect();
    assert_eq!(pongs, pings, "one pong per ping, with its data");
    assert_eq!(ws.is_close_sent(), closes == 1);
    let kinds: String = whole
        .0
        .iter()
        .map(|m| match m {
            Message::Text(_) => 'T',
            Message::Binary(_) => 'B',
            Message::Ping(_) => 'P',
            Message::Pong(_) => 'p',
            Message::Close(_) => 'C',
        })
        .collect::<std::collections::BTreeSet<char>>()
        .into_iter()
        .collect();
    format!("dec:{}:{kinds}", whole.1.map(|e| variant(&format!("{e:?}"))).unwrap_or_default())
}

type ExecRun = (Vec<ExecEvent>, Result<(), ExecError>, Option<Result<i32, ExecError>>);

fn run_exec(protocol: ChannelProtocol, max: usize, pieces: &[&[u8]]) -> ExecRun {
    let mut s = ExecSession::with_max_message(protocol, Masks::new([1; 16]), max);
    let mut result = Ok(());
    for piece in pieces {
        result = s.handle_bytes(piece);
        if let Err(e) = &result {
            assert!(s.is_closed(), "failed but not closed");
            assert_eq!(s.handle_bytes(b"\x82\x02\x01x"), Err(e.clone()), "a failed session stays failed");
            assert_eq!(s.write_stdin(b"x"), Err(ExecError::Closed));
            break;
        }
    }
    let events: Vec<ExecEvent> = std::iter::from_fn(|| s.poll_event()).collect();
    (events, result, s.exit_code())
}

fn check_exec(input: &[u8], rng: &mut SplitMix64) -> String {
    let protocol = *rng
        .pick(&[
            ChannelProtocol::V5,
            ChannelProtocol::V5,
            ChannelProtocol::V4,
            ChannelProtocol::V3,
            ChannelProtocol::V1,
        ])
        .unwrap();
    let max = *rng.pick(&[64usize, 1 << 16, 16 << 20]).unwrap();
    let whole = run_exec(protocol, max, &[input]);
    let cuts = chunking(rng, input.len());
    assert_eq!(run_exec(protocol, max, &chunks(input, &cuts)), whole, "the chunking changed the session");
    let (events, result, exit) = &whole;
    let mut statuses = 0;
    for (i, e) in events.iter().enumerate() {
        match e {
            ExecEvent::Stdout(b) | ExecEvent::Stderr(b) => assert!(!b.is_empty(), "an empty output event"),
            ExecEvent::Status(_) => statuses += 1,
            ExecEvent::Closed(_) => assert_eq!(i, events.len() - 1, "an event after the close"),
        }
    }
    assert!(statuses <= 1, "{statuses} statuses");
    if statuses == 1 {
        assert!(exit.is_some(), "a status but no exit code");
    }
    format!(
        "exec:{}:{}",
        result.as_ref().err().map(|e| variant(&format!("{e:?}"))).unwrap_or_default(),
        exit.as_ref()
            .map(|r| r.as_ref().map(|_| "code".to_owned()).unwrap_or_else(|e| variant(&format!("{e:?}"))))
            .unwrap_or_default()
    )
}

type PortForwardRun = (Vec<PortForwardEvent>, Result<(), PortForwardError>);

fn run_portforward(pieces: &[&[u8]]) -> PortForwardRun {
    let mut s = PortForwardSession::new(&PORTS, Masks::new([2; 16])).unwrap();
    let mut result = Ok(());
    for piece in pieces {
        result = s.handle_bytes(piece);
        if let Err(e) = &result {
            assert!(s.is_closed());
            assert_eq!(s.handle_bytes(b"\x82\x01\x00"), Err(e.clone()));
            break;
        }
    }
    (std::iter::from_fn(|| s.poll_event()).collect(), result)
}

fn check_portforward(input: &[u8], rng: &mut SplitMix64) -> String {
    let whole = run_portforward(&[input]);
    let cuts = chunking(rng, input.len());
    assert_eq!(run_portforward(&chunks(input, &cuts)), whole, "the chunking changed the session");
    for (i, e) in whole.0.iter().enumerate() {
        match e {
            PortForwardEvent::Data { index, port, data } => {
                assert_eq!(PORTS.get(*index), Some(port));
                assert!(!data.is_empty());
            }
            PortForwardEvent::Error { index, port, .. } => assert_eq!(PORTS.get(*index), Some(port)),
            PortForwardEvent::Closed(_) => assert_eq!(i, whole.0.len() - 1),
            PortForwardEvent::Finished { .. } => panic!("the WebSocket protocol cannot end one port"),
        }
    }
    format!("pf:{}", whole.1.err().map(|e| variant(&format!("{e:?}"))).unwrap_or_default())
}

#[test]
fn server_streams_in_any_chunking_decode_the_same_and_never_panic() {
    let summary = Fuzzer::new("websocket")
        .tokens(&[
            b"\x82\x00",
            b"\x82\x7e\x01\x00",
            b"\x82\x7f\x00\x00\x00\x00\x00\x00\x01\x00",
            b"\x02\x03",
            b"\x80\x01",
            b"\x00\x01",
            b"\x81\x02",
            b"\x88\x02\x03\xe8",
            b"\x88\x00",
            b"\x89\x04ping",
            b"\x8a\x00",
            b"\x82\x81\x01\x02\x03\x04",
            b"\x01",
            b"\x03",
            b"\xff\x00",
            b"\x50\x00",
            b"\xfb\x20",
            b"{\"status\":\"Success\"}",
            b"\"reason\":\"NonZeroExitCode\"",
            b"{\"reason\":\"ExitCode\",\"message\":\"7\"}",
        ])
        .default_iterations(8000)
        .run(|input, rng| {
            let decoder = check_decoder(input, rng);
            let exec = check_exec(input, rng);
            let portforward = check_portforward(input, rng);
            format!("{decoder}|{exec}|{portforward}")
        });
    assert!(summary.tried > 0);
}
