//! WebSocket frames: encoding and decoding in every chunking, the three length forms,
//! masking, fragmentation, pings answered, the closing handshake, and every protocol
//! violation a typed error (RFC 6455 sections 5 and 7).

use kube_proto::websocket::{
    CloseFrame, Decoder, Masks, Message, Opcode, Role, WebSocket, WsError, close_code, encode_frame,
};

const MAX: usize = 1 << 20;

/// Unmasked frames, as a server sends them.
fn frames(list: &[(bool, Opcode, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (fin, opcode, payload) in list {
        encode_frame(&mut out, *fin, *opcode, payload, None).unwrap();
    }
    out
}

/// Decodes `chunks` one after the other, until the end or the first error.
fn decode_chunks(decoder: &mut Decoder, chunks: &[&[u8]]) -> (Vec<Message>, Option<WsError>) {
    let mut out = Vec::new();
    for chunk in chunks {
        let mut input = *chunk;
        loop {
            match decoder.decode(&mut input) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => {
                    assert!(input.is_empty(), "None with input left");
                    break;
                }
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fn decode_client(bytes: &[u8]) -> (Vec<Message>, Option<WsError>) {
    decode_chunks(&mut Decoder::new(Role::Client, MAX), &[bytes])
}

fn error_of(bytes: &[u8]) -> WsError {
    decode_client(bytes).1.expect("an error")
}

/// A stream with every kind of frame: fragmented text and binary with control frames
/// between the fragments, the three length forms, an empty message, then a close.
fn mixed_stream() -> (Vec<u8>, Vec<Message>) {
    let big = vec![0xA5; 300];
    let bytes = frames(&[
        (true, Opcode::Binary, b"\x01hello"),
        (false, Opcode::Text, "gr\u{fc}".as_bytes()),
        (true, Opcode::Ping, b"are you there"),
        (false, Opcode::Continuation, b"\xc3"), // the two bytes of an \u{df}, split across fragments
        (true, Opcode::Continuation, b"\x9f"),
        (true, Opcode::Binary, &[]),
        (false, Opcode::Binary, &big[..100]),
        (true, Opcode::Pong, b""),
        (true, Opcode::Continuation, &big[100..]),
        (true, Opcode::Close, &[0x03, 0xE8, b'o', b'k']),
    ]);
    let expected = vec![
        Message::Binary(b"\x01hello".to_vec()),
        Message::Ping(b"are you there".to_vec()),
        Message::Text("gr\u{fc}\u{df}".into()),
        Message::Binary(Vec::new()),
        Message::Pong(Vec::new()),
        Message::Binary(big),
        Message::Close(Some(CloseFrame { code: 1000, reason: "ok".into() })),
    ];
    (bytes, expected)
}

#[test]
fn every_single_and_double_cut_of_a_stream_decodes_the_same() {
    let (bytes, expected) = mixed_stream();
    assert_eq!(decode_client(&bytes), (expected.clone(), None));
    // Byte by byte.
    let single: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(decode_chunks(&mut Decoder::new(Role::Client, MAX), &single), (expected.clone(), None));
    // Every pair of cuts (which includes every single cut).
    for a in 0..=bytes.len() {
        for b in (a..=bytes.len()).step_by(7) {
            let chunks = [&bytes[..a], &bytes[a..b], &bytes[b..]];
            assert_eq!(
                decode_chunks(&mut Decoder::new(Role::Client, MAX), &chunks),
                (expected.clone(), None),
                "cut at {a} and {b}"
            );
        }
    }
}

#[test]
fn masked_frames_round_trip_in_every_chunking() {
    // A client's frames as the server reads them.
    let mut ws = WebSocket::client(Masks::new(*b"0123456789abcdef"), MAX);
    let payloads: Vec<Vec<u8>> = [0usize, 1, 125, 126, 127, 1000, 65535, 65536, 70000]
        .iter()
        .map(|&n| (0..n).map(|i| (i * 31 % 251) as u8).collect())
        .collect();
    for p in &payloads {
        ws.send_binary(p).unwrap();
    }
    ws.send_text("done").unwrap();
    let bytes = ws.poll_transmit().unwrap();
    assert!(ws.poll_transmit().is_none(), "taking the bytes empties the queue");
    let mut expected: Vec<Message> = payloads.iter().cloned().map(Message::Binary).collect();
    expected.push(Message::Text("done".into()));
    for chunk in [1, 2, 3, 5, 13, 125, 4096, bytes.len()] {
        let chunks: Vec<&[u8]> = bytes.chunks(chunk).collect();
        assert_eq!(decode_chunks(&mut Decoder::new(Role::Server, MAX), &chunks), (expected.clone(), None), "{chunk}");
    }
}

#[test]
fn lengths_take_7_16_or_64_bits_and_client_frames_are_masked() {
    let header = |len: usize, mask: Option<[u8; 4]>| {
        let mut out = Vec::new();
        encode_frame(&mut out, true, Opcode::Binary, &vec![0; len], mask).unwrap();
        out[..out.len() - len].to_vec()
    };
    assert_eq!(header(0, None), [0x82, 0]);
    assert_eq!(header(125, None), [0x82, 125]);
    assert_eq!(header(126, None), [0x82, 126, 0, 126]);
    assert_eq!(header(65535, None), [0x82, 126, 0xFF, 0xFF]);
    assert_eq!(header(65536, None), [0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(header(126, Some([9, 8, 7, 6])), [0x82, 0xFE, 0, 126, 9, 8, 7, 6]);
    // Masked zeros are the key, repeated.
    let mut out = Vec::new();
    encode_frame(&mut out, false, Opcode::Text, &[0; 6], Some([1, 2, 3, 4])).unwrap();
    assert_eq!(out, [0x01, 0x86, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2]);
    // RFC 6455 section 5.7: unmasked "Hello", and a 256-byte binary message's header.
    assert_eq!(frames(&[(true, Opcode::Text, b"Hello")]), [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    assert_eq!(header(256, None), [0x82, 0x7E, 0x01, 0x00]);
    // A non-minimal length is accepted.
    let mut lax = vec![0x82, 126, 0, 3];
    lax.extend_from_slice(b"abc");
    assert_eq!(decode_client(&lax), (vec![Message::Binary(b"abc".to_vec())], None));
}

#[test]
fn masking_keys_come_from_the_seed_and_differ_per_frame() {
    let mut a = Masks::new([1; 16]);
    let mut b = Masks::new([1; 16]);
    let keys: Vec<[u8; 4]> = (0..50).map(|_| a.next_key()).collect();
    assert_eq!(keys, (0..50).map(|_| b.next_key()).collect::<Vec<_>>(), "a seed replays");
    let distinct: std::collections::BTreeSet<_> = keys.iter().collect();
    assert_eq!(distinct.len(), keys.len());
    assert_ne!(Masks::new([2; 16]).next_key(), keys[0]);
    assert!(!format!("{a:?}").contains('1'), "Debug shows no seed: {a:?}");
}

#[test]
fn a_ping_is_answered_with_a_pong_carrying_its_data() {
    let mut ws = WebSocket::client(Masks::new([5; 16]), MAX);
    let bytes = frames(&[(true, Opcode::Ping, b"beat"), (true, Opcode::Pong, b"mine")]);
    let mut input = &bytes[..];
    assert_eq!(ws.receive(&mut input), Ok(Some(Message::Ping(b"beat".to_vec()))));
    assert_eq!(ws.receive(&mut input), Ok(Some(Message::Pong(b"mine".to_vec()))));
    assert_eq!(ws.receive(&mut input), Ok(None));
    let sent = ws.poll_transmit().unwrap();
    assert_eq!(sent[0], 0x8A, "FIN and pong");
    let (server_saw, err) = decode_chunks(&mut Decoder::new(Role::Server, MAX), &[&sent]);
    assert_eq!((server_saw, err), (vec![Message::Pong(b"beat".to_vec())], None), "one pong, for the ping only");
    // Our own ping.
    ws.ping(b"hb").unwrap();
    let sent = ws.poll_transmit().unwrap();
    assert_eq!(decode_chunks(&mut Decoder::new(Role::Server, MAX), &[&sent]).0, [Message::Ping(b"hb".to_vec())]);
    assert_eq!(ws.ping(&[0; 126]), Err(WsError::ControlFrameTooLong { opcode: 9, len: 126 }));
}

#[test]
fn the_servers_close_is_echoed_and_ends_the_connection() {
    let mut ws = WebSocket::client(Masks::new([5; 16]), MAX);
    let mut bytes = frames(&[(true, Opcode::Close, &[0x03, 0xE9, b'b', b'y', b'e'])]);
    bytes.extend(frames(&[(true, Opcode::Binary, b"ignored after the close")]));
    bytes.extend([0xFF, 0xFF, 0xFF]); // not even a frame: ignored too
    let mut input = &bytes[..];
    let close = CloseFrame { code: close_code::GOING_AWAY, reason: "bye".into() };
    assert_eq!(ws.receive(&mut input), Ok(Some(Message::Close(Some(close)))));
    assert_eq!(ws.receive(&mut input), Ok(None));
    assert!(input.is_empty() && ws.is_closed() && ws.is_close_received() && ws.is_close_sent());
    let echo = ws.poll_transmit().unwrap();
    let (seen, _) = decode_chunks(&mut Decoder::new(Role::Server, MAX), &[&echo]);
    assert_eq!(seen, [Message::Close(Some(CloseFrame { code: 1001, reason: String::new() }))]);
    assert_eq!(ws.send_binary(b"late"), Err(WsError::Closed));
    assert_eq!(ws.ping(b""), Err(WsError::Closed));
    assert_eq!(ws.close(1000, ""), Ok(()), "closing twice does nothing");
    assert!(ws.poll_transmit().is_none());

    // A close without a code is echoed without one.
    let mut ws = WebSocket::client(Masks::new([5; 16]), MAX);
    let bytes = frames(&[(true, Opcode::Close, b"")]);
    assert_eq!(ws.receive(&mut &bytes[..]), Ok(Some(Message::Close(None))));
    let echo = ws.poll_transmit().unwrap();
    assert_eq!(echo.len(), 6, "a masked, empty close: {echo:?}");
    assert_eq!(echo[..2], [0x88, 0x80]);
}

#[test]
fn a_close_this_end_starts_is_not_repeated_when_the_server_answers() {
    let mut ws = WebSocket::client(Masks::new([5; 16]), MAX);
    ws.send_binary(b"last").unwrap();
    ws.close(close_code::NORMAL, "done").unwrap();
    let sent = ws.poll_transmit().unwrap();
    let (seen, _) = decode_chunks(&mut Decoder::new(Role::Server, MAX), &[&sent]);
    assert_eq!(
        seen,
        [Message::Binary(b"last".to_vec()), Message::Close(Some(CloseFrame { code: 1000, reason: "done".into() }))]
    );
    assert!(ws.is_close_sent() && !ws.is_closed());
    // Pings that arrive in the meantime are not answered any more; the close completes.
    let bytes = frames(&[(true, Opcode::Ping, b"x"), (true, Opcode::Close, &[0x03, 0xE8])]);
    let mut input = &bytes[..];
    assert!(matches!(ws.receive(&mut input), Ok(Some(Message::Ping(_)))));
    assert!(matches!(ws.receive(&mut input), Ok(Some(Message::Close(Some(_))))));
    assert!(ws.is_closed());
    assert!(ws.poll_transmit().is_none());
    // Reasons and codes that cannot be sent.
    let mut ws = WebSocket::client(Masks::new([5; 16]), MAX);
    assert_eq!(ws.close(1000, &"x".repeat(124)), Err(WsError::CloseReasonTooLong { len: 124 }));
    assert_eq!(ws.close(1005, ""), Err(WsError::InvalidCloseCode(1005)));
    assert!(ws.close(4000, &"x".repeat(123)).is_ok());
}

#[test]
fn every_protocol_violation_is_a_typed_error() {
    let ping = |len: u8| vec![0x89, len];
    let cases: Vec<(&str, Vec<u8>, WsError)> = vec![
        ("RSV1", vec![0xC2, 0], WsError::ReservedBits { bits: 0b100 }),
        ("RSV3", vec![0x92, 0], WsError::ReservedBits { bits: 0b001 }),
        ("opcode 3", vec![0x83, 0], WsError::UnknownOpcode(3)),
        ("opcode 0xB", vec![0x8B, 0], WsError::UnknownOpcode(0xB)),
        ("masked server frame", vec![0x82, 0x81, 1, 2, 3, 4, 5], WsError::Masking { from: "server", masked: true }),
        ("ping of 126", ping(126), WsError::ControlFrameTooLong { opcode: 9, len: 126 }),
        ("close of 127", vec![0x88, 127], WsError::ControlFrameTooLong { opcode: 8, len: 127 }),
        ("fragmented ping", vec![0x09, 0], WsError::FragmentedControlFrame { opcode: 9 }),
        ("lone continuation", vec![0x80, 0], WsError::ContinuationWithoutStart),
        ("text inside a fragmented message", vec![0x02, 0, 0x81, 0], WsError::UnfinishedMessage),
        ("64-bit length with the top bit", vec![0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0], WsError::LengthTooLarge),
        ("invalid UTF-8", vec![0x81, 2, 0xC3, 0x28], WsError::InvalidUtf8),
        ("UTF-8 cut by the message's end", vec![0x01, 1, 0xE2, 0x80, 1, 0x82], WsError::InvalidUtf8),
        ("close of one byte", vec![0x88, 1, 3], WsError::CloseFrameTooShort),
        ("close reason not UTF-8", vec![0x88, 3, 0x03, 0xE8, 0xFF], WsError::InvalidCloseReason),
    ];
    for (what, bytes, expected) in cases {
        assert_eq!(decode_client(&bytes).1, Some(expected.clone()), "{what}");
        // Any chunking gives the same error.
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_chunks(&mut Decoder::new(Role::Client, MAX), &chunks).1, Some(expected), "{what}, bytewise");
    }
    // A server reading a client's unmasked frame.
    let unmasked = frames(&[(true, Opcode::Binary, b"x")]);
    assert_eq!(
        decode_chunks(&mut Decoder::new(Role::Server, MAX), &[&unmasked]).1,
        Some(WsError::Masking { from: "client", masked: false })
    );
}

#[test]
fn close_codes_that_may_not_be_sent_are_rejected() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535] {
        let bytes = frames(&[(true, Opcode::Close, &code.to_be_bytes())]);
        assert_eq!(error_of(&bytes), WsError::InvalidCloseCode(code), "{code}");
    }
    for code in [1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999] {
        let bytes = frames(&[(true, Opcode::Close, &code.to_be_bytes())]);
        assert_eq!(decode_client(&bytes).0, [Message::Close(Some(CloseFrame { code, reason: String::new() }))]);
    }
}

#[test]
fn a_message_over_the_limit_is_refused_before_its_bytes_arrive() {
    let mut d = Decoder::new(Role::Client, 10);
    // One frame announcing 11 bytes: refused at its header.
    assert_eq!(decode_chunks(&mut d, &[&[0x82, 11]]).1, Some(WsError::MessageTooBig { size: 11, max: 10 }));
    // Fragments that add up to more.
    let bytes = frames(&[(false, Opcode::Binary, b"123456"), (true, Opcode::Continuation, b"78901")]);
    assert_eq!(
        decode_chunks(&mut Decoder::new(Role::Client, 10), &[&bytes]).1,
        Some(WsError::MessageTooBig { size: 11, max: 10 })
    );
    // Exactly the limit is fine; control frames do not count.
    let bytes = frames(&[
        (false, Opcode::Binary, b"12345"),
        (true, Opcode::Ping, &[7; 125]),
        (true, Opcode::Continuation, b"67890"),
    ]);
    let (seen, err) = decode_chunks(&mut Decoder::new(Role::Client, 10), &[&bytes]);
    assert_eq!(err, None);
    assert_eq!(seen[1], Message::Binary(b"1234567890".to_vec()));
    // A huge announced length costs nothing up front.
    let mut d = Decoder::new(Role::Client, usize::MAX);
    let (seen, err) = decode_chunks(&mut d, &[&[0x82, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2]]);
    assert!(seen.is_empty() && err.is_none() && d.in_progress());
}

#[test]
fn a_violation_queues_a_close_with_its_code_and_the_error_stays() {
    let cases: [(&[u8], u16); 3] = [
        (&[0x83, 0], close_code::PROTOCOL_ERROR),
        (&[0x81, 1, 0xFF], close_code::INVALID_PAYLOAD),
        (&[0x82, 126, 0xFF, 0xFF], close_code::MESSAGE_TOO_BIG),
    ];
    for (bytes, code) in cases {
        let mut ws = WebSocket::client(Masks::new([5; 16]), 1000);
        let err = ws.receive(&mut &bytes[..]).unwrap_err();
        assert_eq!(err.close_code(), code);
        let sent = ws.poll_transmit().unwrap();
        let (seen, _) = decode_chunks(&mut Decoder::new(Role::Server, MAX), &[&sent]);
        let [Message::Close(Some(CloseFrame { code: sent_code, reason }))] = &seen[..] else { panic!("{seen:?}") };
        assert_eq!(*sent_code, code);
        assert!(!reason.is_empty() && reason.len() <= 123, "{reason:?}");
        // Later input gets the same error, and nothing more can be sent.
        let good = frames(&[(true, Opcode::Binary, b"x")]);
        assert_eq!(ws.receive(&mut &good[..]), Err(err));
        assert_eq!(ws.send_binary(b"x"), Err(WsError::Closed));
    }
}

#[test]
fn control_frames_that_cannot_be_encoded_are_errors() {
    let mut out = Vec::new();
    assert_eq!(
        encode_frame(&mut out, true, Opcode::Ping, &[0; 126], None),
        Err(WsError::ControlFrameTooLong { opcode: 9, len: 126 })
    );
    assert_eq!(
        encode_frame(&mut out, false, Opcode::Close, b"", None),
        Err(WsError::FragmentedControlFrame { opcode: 8 })
    );
    assert!(out.is_empty(), "nothing written on an error");
    assert!(encode_frame(&mut out, true, Opcode::Pong, &[0; 125], None).is_ok());
}

#[test]
fn debug_shows_no_payload() {
    let m = Message::Binary(b"SECRET-token".to_vec());
    assert_eq!(format!("{m:?}"), "Binary(12 bytes)");
    assert_eq!(format!("{:?}", Message::Text("SECRET".into())), "Text(6 bytes)");
}
