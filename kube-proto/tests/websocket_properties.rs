//! Property tests of the WebSocket decoder and the channel sessions:
//!
//! - any sequence of messages, fragmented at random with control frames between the
//!   fragments, masked or not, decodes to exactly those messages in any chunking;
//! - random bytes never panic the decoder, and decode to the same messages and error
//!   whatever the chunking;
//! - an exec session's events are the model's (stdout and stderr per message, the status,
//!   the close) in any chunking, and its stdin frames decode to the writes;
//! - a port-forward session delivers each port's bytes in order, in any chunking.

use kube_proto::channel::{ChannelProtocol, ExecEvent, ExecSession, PortForwardEvent, PortForwardSession};
use kube_proto::websocket::{Decoder, Masks, Message, Opcode, Role, WsError, encode_frame};
use proptest::prelude::*;
use proptest::sample::Index;

const MAX: usize = 1 << 20;

#[derive(Debug, Clone)]
enum Item {
    Data { text: bool, payload: Vec<u8>, fragments: Vec<Index> },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

fn item() -> impl Strategy<Value = Item> {
    prop_oneof![
        4 => (any::<bool>(), prop::collection::vec(any::<u8>(), 0..300), prop::collection::vec(any::<Index>(), 0..4))
            .prop_map(|(text, payload, fragments)| {
                let payload = if text { String::from_utf8_lossy(&payload).into_owned().into_bytes() } else { payload };
                Item::Data { text, payload, fragments }
            }),
        1 => prop::collection::vec(any::<u8>(), 0..=125).prop_map(Item::Ping),
        1 => prop::collection::vec(any::<u8>(), 0..=125).prop_map(Item::Pong),
    ]
}

/// Encodes the items (a control frame after the first fragment of the next message, when it
/// has several) and returns the messages a decoder should give, in order.
fn encode(items: &[Item], mask: Option<u64>) -> (Vec<u8>, Vec<Message>) {
    let mut masks = mask.map(|seed| {
        let mut s = [0; 16];
        s[..8].copy_from_slice(&seed.to_le_bytes());
        Masks::new(s)
    });
    let mut key = || masks.as_mut().map(Masks::next_key);
    let mut out = Vec::new();
    let mut expected = Vec::new();
    let mut pending_control: Vec<(Opcode, Vec<u8>)> = Vec::new();
    for item in items {
        match item {
            Item::Ping(p) => pending_control.push((Opcode::Ping, p.clone())),
            Item::Pong(p) => pending_control.push((Opcode::Pong, p.clone())),
            Item::Data { text, payload, fragments } => {
                let mut cuts: Vec<usize> = fragments.iter().map(|i| i.index(payload.len() + 1)).collect();
                cuts.sort_unstable();
                cuts.push(payload.len());
                let mut start = 0;
                let last = cuts.len() - 1;
                for (n, &cut) in cuts.iter().enumerate() {
                    let opcode = match (n, text) {
                        (0, true) => Opcode::Text,
                        (0, false) => Opcode::Binary,
                        _ => Opcode::Continuation,
                    };
                    encode_frame(&mut out, n == last, opcode, &payload[start..cut], key()).unwrap();
                    start = cut;
                    // Control frames waiting go between the fragments (and come out first).
                    if n != last {
                        for (op, p) in pending_control.drain(..) {
                            encode_frame(&mut out, true, op, &p, key()).unwrap();
                            expected.push(control(op, p));
                        }
                    }
                }
                expected.push(if *text {
                    Message::Text(String::from_utf8(payload.clone()).unwrap())
                } else {
                    Message::Binary(payload.clone())
                });
                // Or after a message in one frame.
                for (op, p) in pending_control.drain(..) {
                    encode_frame(&mut out, true, op, &p, key()).unwrap();
                    expected.push(control(op, p));
                }
            }
        }
    }
    for (op, p) in pending_control {
        encode_frame(&mut out, true, op, &p, key()).unwrap();
        expected.push(control(op, p));
    }
    (out, expected)
}

fn control(op: Opcode, payload: Vec<u8>) -> Message {
    if op == Opcode::Ping { Message::Ping(payload) } else { Message::Pong(payload) }
}

fn cut(bytes: &[u8], cuts: &[Index]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points {
        out.push(bytes[start..p].to_vec());
        start = p;
    }
    out.push(bytes[start..].to_vec());
    out
}

fn decode_all(role: Role, max: usize, chunks: &[Vec<u8>]) -> (Vec<Message>, Option<WsError>) {
    let mut d = Decoder::new(role, max);
    let mut out = Vec::new();
    for chunk in chunks {
        let mut input = &chunk[..];
        loop {
            match d.decode(&mut input) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn messages_round_trip_in_any_fragmentation_and_chunking(
        items in prop::collection::vec(item(), 0..12),
        cuts in prop::collection::vec(any::<Index>(), 0..20),
        seed in any::<u64>(),
    ) {
        let (bytes, expected) = encode(&items, None);
        prop_assert_eq!(decode_all(Role::Client, MAX, &cut(&bytes, &cuts)), (expected.clone(), None));
        let (masked, expected_masked) = encode(&items, Some(seed));
        prop_assert_eq!(&expected_masked, &expected);
        prop_assert_eq!(decode_all(Role::Server, MAX, &cut(&masked, &cuts)), (expected, None));
    }

    #[test]
    fn random_bytes_decode_the_same_in_any_chunking(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        cuts in prop::collection::vec(any::<Index>(), 0..10),
        server in any::<bool>(),
        max in 0usize..300,
    ) {
        let role = if server { Role::Server } else { Role::Client };
        let whole = decode_all(role, max, std::slice::from_ref(&bytes));
        prop_assert_eq!(decode_all(role, max, &cut(&bytes, &cuts)), whole.clone());
        let bytewise: Vec<Vec<u8>> = bytes.chunks(1).map(<[u8]>::to_vec).collect();
        prop_assert_eq!(decode_all(role, max, &bytewise), whole.clone());
        for m in &whole.0 {
            match m {
                Message::Binary(b) => prop_assert!(b.len() <= max),
                Message::Text(t) => prop_assert!(t.len() <= max),
                Message::Ping(b) | Message::Pong(b) => prop_assert!(b.len() <= 125),
                Message::Close(c) => prop_assert!(c.as_ref().is_none_or(|c| c.reason.len() <= 123)),
            }
        }
    }

    #[test]
    fn exec_events_follow_the_messages_in_any_chunking(
        // Every channel but the error channel, which carries the status below.
        messages in prop::collection::vec((prop_oneof![0u8..3, 4u8..6, Just(255u8)], prop::collection::vec(any::<u8>(), 0..50)), 0..20),
        exit in prop::option::of(0i32..256),
        cuts in prop::collection::vec(any::<Index>(), 0..20),
    ) {
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for (channel, data) in &messages {
            let mut m = vec![*channel];
            m.extend_from_slice(data);
            encode_frame(&mut bytes, true, Opcode::Binary, &m, None).unwrap();
            match channel {
                1 if !data.is_empty() => expected.push(ExecEvent::Stdout(data.clone())),
                2 if !data.is_empty() => expected.push(ExecEvent::Stderr(data.clone())),
                _ => {}
            }
        }
        if let Some(code) = exit {
            let status = if code == 0 {
                r#"{"status":"Success"}"#.to_owned()
            } else {
                format!(r#"{{"status":"Failure","reason":"NonZeroExitCode","details":{{"causes":[{{"reason":"ExitCode","message":"{code}"}}]}}}}"#)
            };
            encode_frame(&mut bytes, true, Opcode::Binary, &[b"\x03", status.as_bytes()].concat(), None).unwrap();
        }
        encode_frame(&mut bytes, true, Opcode::Close, &[0x03, 0xE8], None).unwrap();
        let mut s = ExecSession::new(ChannelProtocol::V5, Masks::new([0; 16]));
        for chunk in cut(&bytes, &cuts) {
            prop_assert!(s.handle_bytes(&chunk).is_ok());
        }
        let events: Vec<ExecEvent> = std::iter::from_fn(|| s.poll_event()).collect();
        let (data_events, end) = events.split_at(events.len() - if exit.is_some() { 2 } else { 1 });
        prop_assert_eq!(data_events, &expected[..]);
        prop_assert!(matches!(end.last(), Some(ExecEvent::Closed(Some(_)))));
        match exit {
            Some(code) => prop_assert_eq!(s.exit_code(), Some(Ok(code))),
            None => prop_assert!(matches!(s.exit_code(), Some(Err(_)))),
        }
        prop_assert!(s.is_closed());
    }

    #[test]
    fn stdin_writes_arrive_as_written(
        writes in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..2000), 0..10),
        seed in any::<[u8; 16]>(),
    ) {
        let mut s = ExecSession::new(ChannelProtocol::V5, Masks::new(seed));
        for w in &writes {
            s.write_stdin(w).unwrap();
        }
        s.close_stdin().unwrap();
        let mut bytes = Vec::new();
        while let Some(b) = s.poll_transmit() {
            bytes.extend(b);
        }
        let (messages, err) = decode_all(Role::Server, MAX, &[bytes]);
        prop_assert_eq!(err, None);
        let mut expected: Vec<Message> =
            writes.iter().filter(|w| !w.is_empty()).map(|w| Message::Binary([&[0u8][..], w].concat())).collect();
        expected.push(Message::Binary(vec![255, 0]));
        prop_assert_eq!(messages, expected);
    }

    #[test]
    fn port_forward_delivers_each_ports_bytes_in_order(
        ports in prop::collection::vec(1u16.., 1..5),
        messages in prop::collection::vec((any::<Index>(), prop::collection::vec(any::<u8>(), 0..100)), 0..30),
        cuts in prop::collection::vec(any::<Index>(), 0..20),
    ) {
        let mut bytes = Vec::new();
        for (i, port) in ports.iter().enumerate() {
            for channel in [2 * i as u8, 2 * i as u8 + 1] {
                encode_frame(&mut bytes, true, Opcode::Binary, &[&[channel][..], &port.to_le_bytes()].concat(), None).unwrap();
            }
        }
        let mut expected = vec![Vec::new(); ports.len()];
        for (index, data) in &messages {
            let i = index.index(ports.len());
            encode_frame(&mut bytes, true, Opcode::Binary, &[&[2 * i as u8][..], data].concat(), None).unwrap();
            expected[i].extend_from_slice(data);
        }
        let mut s = PortForwardSession::new(&ports, Masks::new([0; 16])).unwrap();
        for chunk in cut(&bytes, &cuts) {
            prop_assert!(s.handle_bytes(&chunk).is_ok());
        }
        let mut got = vec![Vec::new(); ports.len()];
        while let Some(event) = s.poll_event() {
            match event {
                PortForwardEvent::Data { index, port, data } => {
                    prop_assert_eq!(port, ports[index]);
                    prop_assert!(!data.is_empty());
                    got[index].extend(data);
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        prop_assert_eq!(got, expected);
        prop_assert!((0..ports.len()).all(|i| s.is_open(i)));
    }
}
