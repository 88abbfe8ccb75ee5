//! Port-forward against the fake API server, driven by the core's client session with the
//! bytes moved in memory in random pieces: echoes through several ports, checksummed; the
//! kubelet's error for a port nothing listens on; listeners that close.
#![allow(clippy::disallowed_methods)] // one origin instant per test

mod upgrade_support;

use k8s_openapi::api::core::v1::Pod;
use kube_proto::Request;
use kube_proto::channel::PortForwardEvent;
use kube_proto::websocket::sha1;
use kube_proto_fake::exec::{PortInput, PortIo, PortScript};
use upgrade_support::{PortForwardPair, pod, server, upgrade};

fn data(events: &[PortForwardEvent], index: usize) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            PortForwardEvent::Data { index: i, data, .. } if *i == index => Some(data.as_slice()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .concat()
}

fn errors(events: &[PortForwardEvent]) -> Vec<(u16, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            PortForwardEvent::Error { port, message, .. } => Some((*port, message.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_mebibyte_echoes_through_each_of_two_ports() {
    for seed in 0..4u64 {
        let (mut fake, t0) = server();
        pod(&mut fake, t0, "default", "db", &[&["pg"]], None);
        fake.script_port("default", "db", 5432, PortScript::echo());
        fake.script_port("default", "db", 8080, PortScript::echo());
        let ports = [5432, 8080];
        let (protocol, session) =
            upgrade(&mut fake, t0, Request::namespaced::<Pod>("default").portforward("db", &ports).unwrap());
        assert_eq!(protocol, "v4.channel.k8s.io");
        let mut pair = PortForwardPair::new(&ports, session, seed);
        pair.pump();
        assert!(pair.client.is_open(0) && pair.client.is_open(1));

        let streams: Vec<Vec<u8>> = (0..2u64)
            .map(|p| {
                let mut rng = kube_proto::rng::SplitMix64::new(seed * 10 + p);
                (0..1 << 20).map(|_| rng.next_u64() as u8).collect()
            })
            .collect();
        let mut rng = kube_proto::rng::SplitMix64::new(seed);
        let mut sent = [0usize; 2];
        while sent != [1 << 20; 2] {
            // Interleave the ports, in writes from 1 byte to 64 KiB.
            let index = (rng.next_u64() % 2) as usize;
            let n = (1 + (rng.next_u64() % 65_536) as usize).min(streams[index].len() - sent[index]);
            pair.client.write(index, &streams[index][sent[index]..sent[index] + n]).unwrap();
            sent[index] += n;
            if rng.next_u64().is_multiple_of(4) {
                pair.pump();
            }
        }
        pair.pump();
        for (index, stream) in streams.iter().enumerate() {
            let echoed = data(&pair.events, index);
            assert_eq!(echoed.len(), stream.len(), "port {index}");
            assert_eq!(sha1(&echoed), sha1(stream), "port {index}");
        }
        assert!(errors(&pair.events).is_empty());
        // An echo never hangs up: the client ends the connection.
        assert!(!pair.server.is_closed());
        pair.client.close().unwrap();
        pair.pump();
        assert!(pair.server.is_closed() && pair.client.is_closed());
    }
}

#[test]
fn a_port_with_no_listener_gets_the_kubelets_error() {
    let (mut fake, t0) = server();
    pod(&mut fake, t0, "default", "blog", &[&["web"]], Some("node-1"));
    // Nothing scripted: every port refuses, and with every port ended the kubelet closes.
    let (protocol, session) =
        upgrade(&mut fake, t0, Request::namespaced::<Pod>("default").portforward("blog", &[8080]).unwrap());
    let mut pair = PortForwardPair::new(&[8080], session, 1);
    pair.pump();
    let errors = errors(&pair.events);
    assert_eq!(errors.len(), 1);
    let (port, message) = &errors[0];
    assert_eq!(*port, 8080);
    // error forwarding port 8080 to pod <sandbox>, uid : failed to execute portforward in network
    // namespace "/var/run/netns/cni-<id>": failed to connect to localhost:8080 inside namespace
    // "<sandbox>", IPv4: dial tcp4 127.0.0.1:8080: connect: connection refused IPv6 ...
    let rest = message.strip_prefix("error forwarding port 8080 to pod ").expect(message);
    let (sandbox, rest) = rest.split_once(", uid : ").expect(message);
    assert_eq!(sandbox.len(), 64);
    assert!(sandbox.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(rest.starts_with("failed to execute portforward in network namespace \"/var/run/netns/cni-"), "{rest}");
    assert!(
        rest.contains(&format!(
            "failed to connect to localhost:8080 inside namespace \"{sandbox}\", IPv4: dial tcp4 127.0.0.1:8080: connect: \
             connection refused"
        )),
        "{rest}"
    );
    assert!(matches!(pair.events.last(), Some(PortForwardEvent::Closed(Some(c))) if c.code == 1000));
    assert!(pair.server.is_closed() && pair.client.is_closed());
    drop(protocol);

    // One port listening, one not: the error for the second, and the first still serves.
    fake.script_port("default", "blog", 80, PortScript::echo());
    let (_, session) =
        upgrade(&mut fake, t0, Request::namespaced::<Pod>("default").portforward("blog", &[80, 81]).unwrap());
    let mut pair = PortForwardPair::new(&[80, 81], session, 2);
    pair.pump();
    assert_eq!(self::errors(&pair.events).iter().map(|(p, _)| *p).collect::<Vec<_>>(), [81]);
    pair.client.write(0, b"ping").unwrap();
    pair.client.write(1, b"lost").unwrap();
    pair.pump();
    assert_eq!(data(&pair.events, 0), b"ping");
    assert_eq!(data(&pair.events, 1), b"");
    assert!(!pair.server.is_closed());
}

#[test]
fn a_listener_that_hangs_up_ends_its_port() {
    let (mut fake, t0) = server();
    pod(&mut fake, t0, "default", "web", &[&["nginx"]], None);
    // An HTTP/1.0 server: a banner-less answer to the first request, then it hangs up.
    fake.script_port(
        "default",
        "web",
        80,
        PortScript::custom(|port| {
            assert_eq!(port, 80);
            let mut request = Vec::new();
            move |input: PortInput<'_>, io: &mut PortIo| {
                if let PortInput::Data(data) = input {
                    request.extend_from_slice(data);
                    if request.ends_with(b"\r\n\r\n") {
                        io.write("HTTP/1.0 200 OK\r\n\r\nhello");
                        io.close();
                    }
                }
            }
        }),
    );
    // A listener that fails at once.
    fake.script_port(
        "default",
        "web",
        443,
        PortScript::custom(|_| {
            |input: PortInput<'_>, io: &mut PortIo| {
                if input == PortInput::Start {
                    io.fail("tls handshake refused");
                }
            }
        }),
    );
    let ports = [80, 443];
    let (_, session) =
        upgrade(&mut fake, t0, Request::namespaced::<Pod>("default").portforward("web", &ports).unwrap());
    let mut pair = PortForwardPair::new(&ports, session, 3);
    pair.pump();
    let errs = errors(&pair.events);
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].1.starts_with("error forwarding port 443 to pod ")
            && errs[0].1.ends_with(", uid : tls handshake refused")
    );
    assert!(!pair.server.is_closed(), "port 80 is still open");
    for piece in [&b"GET / HTTP/1.0\r\n"[..], b"\r\n"] {
        pair.client.write(0, piece).unwrap();
        pair.pump();
    }
    assert_eq!(data(&pair.events, 0), b"HTTP/1.0 200 OK\r\n\r\nhello");
    // Every port has ended: the kubelet closes the connection.
    assert!(pair.server.is_closed() && pair.client.is_closed());
}
