use proptest::prelude::*;

use super::frame::{self, Frame, FrameDecoder};
use super::zlib::{Deflater, Inflater};
use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Three header blocks compressed by zlib (level 6, the SPDY dictionary, a sync flush after
/// each) on one stream, as a Go or C SPDY implementation writes them: the first uses the
/// dictionary, the second refers back into the first, the third is a dynamic-Huffman block of
/// 1837 bytes.
const ZLIB_BLOCKS: [&str; 3] = [
    "78bbe3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45e01c6061606100a4398b20d198094ade8c0600000000ffff",
    "c2aa19540e2512d60b000000ffff",
    "7cd43d6a02611486d1cec255cc0602b97f31d98ea04d0a1b05372fe814122272ea0706e6f0dd773dcb372bb6fdfbfdf5895f1f8bb85edae6b67eedb91bcbe7723a2ebf97fde1e3b10ee7d3f22f86622a96622b8ee297e24ef15bf1870826a2511029a814640a3a05a1825241aaa055d22afd9e6895b44a5a25ad925649aba455d2aa6855b42a1f1fad8a5645aba255d1aa6855b46a5a35ad9a56eda5a255d3aa69d5b46a5a35ad865643aba1d5d06a3cebb41a5a0dad8656f36275070000ffff",
];

#[test]
fn inflates_what_zlib_writes() {
    let mut inflater = Inflater::new(1 << 20);
    let blocks: Vec<_> = ZLIB_BLOCKS.iter().map(|b| inflater.inflate(&hex(b)).unwrap()).collect();
    let first = frame::decode_block(&blocks[0]).unwrap();
    assert_eq!(pairs(&first), [("streamtype", "error"), ("port", "8080"), ("requestid", "0")]);
    let second = frame::decode_block(&blocks[1]).unwrap();
    assert_eq!(pairs(&second), [("streamtype", "data"), ("port", "8080"), ("requestid", "0")]);
    let third = frame::decode_block(&blocks[2]).unwrap();
    assert_eq!(third[0], ("content-type".to_owned(), "text/plain".to_owned()));
    let expected: Vec<String> = (0..60).map(|i| format!("port-forward {i} of kube-proto")).collect();
    assert_eq!(third[1], ("x-long".to_owned(), expected.join(" ")));
}

/// A `SYN_STREAM` as moby's spdystream (the SPDY of the kubelet and the API server) writes it,
/// for a stream with the header `streamtype: stdout`.
#[test]
fn reads_a_syn_stream_from_spdystream() {
    let wire = hex(concat!(
        "800300010000002b0000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c2565c92925f5a02",
        "000000ffff"
    ));
    let mut server = SpdyConnection::new(Role::Server);
    server.handle_bytes(&wire).unwrap();
    let Some(SpdyEvent::Opened { stream: 1, headers, fin: false }) = server.poll_event() else { panic!() };
    assert_eq!(pairs(&headers), [("streamtype", "stdout")]);
}

#[test]
fn the_deflater_writes_what_zlib_reads() {
    // What zlib (Python's, with the dictionary) inflates from the deflater's stream: checked
    // once, and held here as the deflater's exact output.
    let mut deflater = Deflater::default();
    let mut out = Vec::new();
    deflater.compress(&frame::encode_block(&[("streamtype", "data")]), &mut out);
    let block = frame::encode_block(&[("streamtype", "data")]);
    let mut expected = hex("7820e3c6a7c2");
    expected.extend_from_slice(&[0, block.len() as u8, 0, !(block.len() as u8), 0xff]);
    expected.extend_from_slice(&block);
    expected.extend_from_slice(&[0, 0, 0, 0xff, 0xff]);
    assert_eq!(out, expected);
    // And our inflater reads it back, block after block.
    let mut inflater = Inflater::new(1 << 20);
    assert_eq!(frame::decode_block(&inflater.inflate(&out).unwrap()).unwrap().len(), 1);
    let mut next = Vec::new();
    deflater.compress(&[7; 70_000], &mut next);
    assert_eq!(inflater.inflate(&next).unwrap(), vec![7; 70_000]);
}

#[test]
fn inflate_errors_are_typed() {
    let mut other_dictionary = Inflater::new(1024);
    assert_eq!(
        other_dictionary.inflate(&hex("7820000000010000")),
        Err(InflateError::WrongDictionary { found: 1, expected: 0xe3c6_a7c2 })
    );
    assert!(matches!(Inflater::new(1024).inflate(&hex("7821")), Err(InflateError::BadHeader(_))));
    assert!(matches!(Inflater::new(1024).inflate(&hex("1f8b")), Err(InflateError::BadHeader(_))));
    let first = hex(ZLIB_BLOCKS[0]);
    assert_eq!(Inflater::new(1024).inflate(&first[..first.len() - 3]), Err(InflateError::Truncated));
    assert_eq!(Inflater::new(10).inflate(&first), Err(InflateError::TooLarge { limit: 10 }));
    // A back-reference into what an inflater without the dictionary never saw.
    let mut no_dictionary = Inflater::new(1024);
    let mut stream = vec![0x78, 0x01];
    stream.extend_from_slice(&hex(ZLIB_BLOCKS[0])[6..]);
    assert!(matches!(no_dictionary.inflate(&stream), Err(InflateError::TooFar { .. } | InflateError::BadCode)));
}

#[test]
fn frames_in_any_chunking() {
    let mut client = SpdyConnection::new(Role::Client);
    let stream = client.open(&[("streamtype", "data"), ("port", "80")], false).unwrap();
    client.write(stream, &[5; 100_000]).unwrap();
    client.ping().unwrap();
    client.finish(stream).unwrap();
    let mut wire = Vec::new();
    while let Some(bytes) = client.poll_transmit() {
        wire.extend(bytes);
    }
    for chunk in [1, 7, 4096, wire.len()] {
        let mut server = SpdyConnection::new(Role::Server);
        for piece in wire.chunks(chunk) {
            server.handle_bytes(piece).unwrap();
        }
        let mut data = Vec::new();
        let mut events = Vec::new();
        while let Some(event) = server.poll_event() {
            match event {
                SpdyEvent::Data { data: d, .. } => data.extend(d),
                other => events.push(other),
            }
        }
        assert_eq!(data, vec![5; 100_000]);
        assert!(matches!(
            &events[..],
            [SpdyEvent::Opened { stream: 1, fin: false, .. }, SpdyEvent::Finished { stream: 1 }]
        ));
        // The ping is echoed.
        let echo = server.poll_transmit().unwrap();
        assert_eq!(FrameDecoder::decode_all(&echo), [Frame::Ping { id: 1 }]);
    }
}

#[test]
fn a_conversation() {
    let mut client = SpdyConnection::new(Role::Client);
    let mut server = SpdyConnection::new(Role::Server);
    let s = client.open(&[("streamtype", "data")], false).unwrap();
    pump(&mut client, &mut server);
    let Some(SpdyEvent::Opened { stream, .. }) = server.poll_event() else { panic!() };
    server.reply(stream, &[("x", "y")], false).unwrap();
    server.write(stream, b"pong").unwrap();
    server.finish(stream).unwrap();
    pump(&mut server, &mut client);
    assert_eq!(client.poll_event(), Some(SpdyEvent::Replied { stream: s, headers: vec![("x".into(), "y".into())] }));
    assert_eq!(client.poll_event(), Some(SpdyEvent::Data { stream: s, data: b"pong".to_vec() }));
    assert_eq!(client.poll_event(), Some(SpdyEvent::Finished { stream: s }));
    assert!(client.is_open(s), "this side is still open");
    client.write(s, b"late").unwrap();
    client.finish(s).unwrap();
    assert!(!client.is_open(s));
    assert_eq!(client.write(s, b"x"), Err(SpdyError::NoSuchStream { stream: s }));
    // A stream reset by the server.
    let t = client.open(&[], false).unwrap();
    pump(&mut client, &mut server);
    while server.poll_event().is_some() {}
    server.reset(t, status::CANCEL).unwrap();
    pump(&mut server, &mut client);
    while let Some(event) = client.poll_event() {
        if let SpdyEvent::Reset { stream, status } = event {
            assert_eq!((stream, status), (t, status::CANCEL));
        }
    }
    // GOAWAY, then the end of the stream: a clean end.
    client.close();
    assert!(client.is_closed());
    assert_eq!(client.open(&[], false), Err(SpdyError::Closed));
    pump(&mut client, &mut server);
    assert!(matches!(server.poll_event(), Some(SpdyEvent::GoAway { status: 0, .. })));
    assert_eq!(server.handle_eof(), Ok(()));
}

#[test]
fn a_lost_connection_says_so() {
    let mut client = SpdyConnection::new(Role::Client);
    client.open(&[], false).unwrap();
    assert_eq!(client.handle_eof(), Err(SpdyError::ConnectionLost { open_streams: 1, mid_frame: false }));
}

#[test]
fn protocol_errors() {
    // A stream id of the wrong parity, from a server.
    let mut server = SpdyConnection::new(Role::Server);
    let mut out = Vec::new();
    let mut deflater = Deflater::default();
    let mut block = Vec::new();
    deflater.compress(&frame::encode_block(&[]), &mut block);
    frame::encode_control(&mut out, 1, 0, &[&2u32.to_be_bytes(), &[0; 6], &block]);
    assert_eq!(server.handle_bytes(&out), Err(SpdyError::BadStreamId { stream: 2 }));
    // The failure sticks, and a GOAWAY says why.
    assert_eq!(server.handle_bytes(&[]), Err(SpdyError::BadStreamId { stream: 2 }));
    assert!(server.poll_transmit().is_some());
    // Version 2.
    let mut client = SpdyConnection::new(Role::Client);
    assert_eq!(client.handle_bytes(&hex("800200060000000400000001")), Err(SpdyError::Version { found: 2 }));
    // A ping too short.
    let mut client = SpdyConnection::new(Role::Client);
    assert!(matches!(client.handle_bytes(&hex("800300060000000200ff")), Err(SpdyError::ShortFrame { kind: 6, .. })));
}

#[test]
fn upgrade_requests_and_answers() {
    let mut req = http::Request::get("/api/v1/namespaces/ns/pods/p/portforward?ports=80")
        .header("sec-websocket-key", "k")
        .header("sec-websocket-protocol", "v4.channel.k8s.io")
        .body(Vec::<u8>::new())
        .unwrap();
    upgrade_headers(&mut req, PORTFORWARD_PROTOCOL);
    assert_eq!(req.method(), http::Method::POST);
    assert_eq!(req.headers()["upgrade"], "SPDY/3.1");
    assert_eq!(req.headers()["x-stream-protocol-version"], "portforward.k8s.io");
    assert!(req.headers().get("sec-websocket-key").is_none());

    let mut ok = http::HeaderMap::new();
    ok.insert("upgrade", "SPDY/3.1".parse().unwrap());
    ok.insert("x-stream-protocol-version", "portforward.k8s.io".parse().unwrap());
    assert_eq!(
        verify_upgrade(http::StatusCode::SWITCHING_PROTOCOLS, &ok, PORTFORWARD_PROTOCOL).unwrap(),
        "portforward.k8s.io"
    );
    assert_eq!(
        verify_upgrade(http::StatusCode::FORBIDDEN, &ok, PORTFORWARD_PROTOCOL),
        Err(SpdyError::NotUpgraded { status: 403 })
    );
    ok.remove("x-stream-protocol-version");
    assert!(matches!(
        verify_upgrade(http::StatusCode::SWITCHING_PROTOCOLS, &ok, PORTFORWARD_PROTOCOL),
        Err(SpdyError::StreamProtocol { .. })
    ));
}

fn pump(from: &mut SpdyConnection, to: &mut SpdyConnection) {
    while let Some(bytes) = from.poll_transmit() {
        to.handle_bytes(&bytes).unwrap();
    }
}

impl FrameDecoder {
    fn decode_all(bytes: &[u8]) -> Vec<Frame> {
        let mut d = FrameDecoder::default();
        d.push(bytes);
        std::iter::from_fn(|| d.next().unwrap()).collect()
    }
}

proptest! {
    /// Whatever arrives, in whatever pieces, the connection returns or fails with a typed
    /// error; it never panics.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), cut in 1usize..64, server in any::<bool>()) {
        let mut c = SpdyConnection::new(if server { Role::Server } else { Role::Client });
        for piece in bytes.chunks(cut) {
            if c.handle_bytes(piece).is_err() {
                break;
            }
        }
        let _ = c.handle_eof();
    }

    /// A valid conversation mutated (a byte flipped, or cut short) fails cleanly or passes.
    #[test]
    fn mutated_conversations_never_panic(at in any::<prop::sample::Index>(), flip in any::<u8>(), cut in any::<bool>()) {
        let mut client = SpdyConnection::new(Role::Client);
        let s = client.open(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")], false).unwrap();
        client.write(s, b"some bytes for the pod").unwrap();
        client.ping().unwrap();
        client.finish(s).unwrap();
        let mut wire = Vec::new();
        while let Some(b) = client.poll_transmit() {
            wire.extend(b);
        }
        let i = at.index(wire.len());
        if cut {
            wire.truncate(i);
        } else {
            wire[i] ^= flip | 1;
        }
        let mut server = SpdyConnection::new(Role::Server);
        let _ = server.handle_bytes(&wire);
        let _ = server.handle_eof();
    }

    /// Random header blocks inflate or fail cleanly, whatever the state before.
    #[test]
    fn random_deflate_streams_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut inflater = Inflater::new(4096);
        let mut stream = hex("78bbe3c6a7c2");
        stream.extend_from_slice(&bytes);
        let _ = inflater.inflate(&stream);
    }
}
