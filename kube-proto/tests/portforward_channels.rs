//! Port-forward over `v4.channel.k8s.io` as the kubelet speaks it: for the `i`-th port, data on
//! channel `2i` and errors on `2i+1`; the first message on each channel is the port number,
//! two bytes little-endian, which is checked and stripped.

use kube_proto::channel::portforward::MAX_PORTS;
use kube_proto::channel::{PortForwardError, PortForwardEvent, PortForwardSession};
use kube_proto::websocket::{CloseFrame, Decoder, Masks, Message, Opcode, Role, WsError, encode_frame};

fn session(ports: &[u16]) -> PortForwardSession {
    PortForwardSession::new(ports, Masks::new([9; 16])).unwrap()
}

fn server(messages: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        encode_frame(&mut out, true, Opcode::Binary, m, None).unwrap();
    }
    out
}

/// The messages a kubelet opens each port with: the port on its data and its error channel.
fn opening(ports: &[u16]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let [lo, hi] = port.to_le_bytes();
        out.extend(server(&[&[2 * i as u8, lo, hi], &[2 * i as u8 + 1, lo, hi]]));
    }
    out
}

fn events(s: &mut PortForwardSession) -> Vec<PortForwardEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn sent(s: &mut PortForwardSession) -> Vec<Message> {
    let mut bytes = Vec::new();
    while let Some(b) = s.poll_transmit() {
        bytes.extend(b);
    }
    let mut d = Decoder::new(Role::Server, 1 << 20);
    let mut input = &bytes[..];
    std::iter::from_fn(|| d.decode(&mut input).unwrap()).collect()
}

fn data(index: usize, port: u16, bytes: &[u8]) -> PortForwardEvent {
    PortForwardEvent::Data { index, port, data: bytes.to_vec() }
}

#[test]
fn port_numbers_open_each_channel_and_are_stripped() {
    let ports = [80, 8443, 80];
    let bytes =
        [opening(&ports), server(&[b"\x00from 80", b"\x02from 8443", b"\x04from the second 80", b"\x02"])].concat();
    let expected = vec![data(0, 80, b"from 80"), data(1, 8443, b"from 8443"), data(2, 80, b"from the second 80")];
    for chunk in 1..=bytes.len() {
        let mut s = session(&ports);
        assert!(!s.is_open(0));
        for piece in bytes.chunks(chunk) {
            s.handle_bytes(piece).unwrap();
        }
        assert_eq!(events(&mut s), expected, "chunks of {chunk}");
        assert!(s.is_open(0) && s.is_open(1) && s.is_open(2) && !s.is_open(3));
    }
    // Bytes after the port number in the first message are data.
    let mut s = session(&[5432]);
    s.handle_bytes(&server(&[&[0, 0x38, 0x15, b'h', b'i']])).unwrap();
    assert_eq!(events(&mut s), [data(0, 5432, b"hi")]);
}

#[test]
fn the_error_channel_reports_a_port_the_kubelet_cannot_forward() {
    let mut s = session(&[80, 9999]);
    s.handle_bytes(&opening(&[80, 9999])).unwrap();
    let message = "error forwarding port 9999 to pod blog, uid 1234: failed to connect to localhost:9999";
    s.handle_bytes(&server(&[&[b"\x03", message.as_bytes()].concat(), b"\x03"])).unwrap();
    assert_eq!(events(&mut s), [PortForwardEvent::Error { index: 1, port: 9999, message: message.into() }]);
    // Port 80 still works.
    s.handle_bytes(&server(&[b"\x00ok"])).unwrap();
    assert_eq!(events(&mut s), [data(0, 80, b"ok")]);
}

#[test]
fn writes_go_to_the_ports_data_channel() {
    let mut s = session(&[80, 8443]);
    s.write(0, b"GET / HTTP/1.1\r\n").unwrap();
    s.write(1, b"\x16\x03\x01").unwrap();
    s.write(1, b"").unwrap();
    assert_eq!(s.write(2, b"x"), Err(PortForwardError::NoSuchPort { index: 2, count: 2 }));
    assert_eq!(
        sent(&mut s),
        [Message::Binary(b"\x00GET / HTTP/1.1\r\n".to_vec()), Message::Binary(b"\x02\x16\x03\x01".to_vec())]
    );
    // 64 KiB and more use the 64-bit length and still arrive whole.
    let big = vec![7u8; 70_000];
    s.write(1, &big).unwrap();
    let [Message::Binary(m)] = &sent(&mut s)[..] else { panic!() };
    assert_eq!((m[0], m.len()), (2, 70_001));
}

#[test]
fn a_wrong_or_missing_port_number_is_a_typed_error() {
    let cases: Vec<(Vec<u8>, PortForwardError)> = vec![
        (server(&[&[0, 81, 0]]), PortForwardError::PortMismatch { channel: 0, expected: 80, found: 81 }),
        (server(&[&[1, 0, 80]]), PortForwardError::PortMismatch { channel: 1, expected: 80, found: 20480 }),
        (server(&[&[0, 80]]), PortForwardError::MissingPort { channel: 0, len: 1 }),
        (server(&[&[3]]), PortForwardError::MissingPort { channel: 3, len: 0 }),
        (server(&[&[4, 80, 0]]), PortForwardError::UnknownChannel { channel: 4 }),
        (server(&[&[255, 1, 2]]), PortForwardError::UnknownChannel { channel: 255 }),
        (server(&[b""]), PortForwardError::EmptyMessage),
    ];
    for (bytes, expected) in cases {
        let mut s = session(&[80, 443]);
        assert_eq!(s.handle_bytes(&bytes), Err(expected.clone()));
        assert_eq!(s.handle_bytes(&opening(&[80, 443])), Err(expected.clone()), "stays failed");
        assert!(s.is_closed());
        assert_eq!(s.write(0, b"x"), Err(PortForwardError::Closed));
        assert!(matches!(sent(&mut s)[..], [Message::Close(Some(CloseFrame { code: 1002, .. }))]), "{expected:?}");
    }
    let mut text = Vec::new();
    encode_frame(&mut text, true, Opcode::Text, b"\x00P\x00", None).unwrap();
    assert_eq!(session(&[80]).handle_bytes(&text), Err(PortForwardError::TextMessage));
    assert_eq!(
        session(&[80]).handle_bytes(&[0xC2, 0]),
        Err(PortForwardError::WebSocket(WsError::ReservedBits { bits: 0b100 }))
    );
}

#[test]
fn up_to_128_ports_fit_the_channel_byte() {
    assert!(matches!(PortForwardSession::new(&[], Masks::new([0; 16])), Err(PortForwardError::NoPorts)));
    let too_many: Vec<u16> = (1..=129).collect();
    assert!(matches!(
        PortForwardSession::new(&too_many, Masks::new([0; 16])),
        Err(PortForwardError::TooManyPorts { count: 129 })
    ));
    let ports: Vec<u16> = (1..=MAX_PORTS as u16).collect();
    let mut s = session(&ports);
    s.handle_bytes(&opening(&ports)).unwrap();
    s.handle_bytes(&server(&[b"\xfeto 128", b"\xffbroken"])).unwrap();
    assert_eq!(
        events(&mut s),
        [data(127, 128, b"to 128"), PortForwardEvent::Error { index: 127, port: 128, message: "broken".into() }]
    );
    s.write(127, b"x").unwrap();
    assert_eq!(sent(&mut s), [Message::Binary(b"\xfex".to_vec())]);
}

#[test]
fn the_connection_ends_with_a_close_or_is_lost() {
    let mut s = session(&[80]);
    let mut bytes = opening(&[80]);
    encode_frame(&mut bytes, true, Opcode::Close, &[0x03, 0xE8], None).unwrap();
    s.handle_bytes(&bytes).unwrap();
    assert_eq!(events(&mut s), [PortForwardEvent::Closed(Some(CloseFrame { code: 1000, reason: String::new() }))]);
    assert!(s.is_closed());
    assert_eq!(s.handle_eof(), Ok(()));
    assert_eq!(s.write(0, b"late"), Err(PortForwardError::Closed));
    assert!(matches!(sent(&mut s)[..], [Message::Close(Some(CloseFrame { code: 1000, .. }))]), "echoed");

    let mut s = session(&[80]);
    s.handle_bytes(&opening(&[80])).unwrap();
    s.handle_bytes(&server(&[b"\x00partial"])[..3]).unwrap();
    assert_eq!(s.handle_eof(), Err(PortForwardError::ConnectionLost { mid_frame: true }));
    assert!(s.is_closed());

    // Closing from this end.
    let mut s = session(&[80]);
    s.write(0, b"bye").unwrap();
    s.close().unwrap();
    assert_eq!(
        sent(&mut s),
        [Message::Binary(b"\x00bye".to_vec()), Message::Close(Some(CloseFrame { code: 1000, reason: String::new() }))]
    );
    assert!(!s.is_closed(), "until the server answers");
    assert_eq!(s.handle_eof(), Ok(()), "or drops the stream");
    assert!(s.is_closed());
}

#[test]
fn debug_shows_no_data() {
    let e = data(0, 80, b"SECRET");
    assert_eq!(format!("{e:?}"), "Data { index: 0, port: 80, 6 bytes }");
}
