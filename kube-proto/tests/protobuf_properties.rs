//! Property tests of the protobuf codec: random bytes, truncated and mutated recorded bodies and
//! watch streams give typed errors, never a panic; a stream cut anywhere reports the cut at its
//! end; a frame over the limit is skipped and the frames after it still decode.
#![cfg(feature = "protobuf")]

use http::HeaderMap;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube_proto::protobuf::{self, Envelope, ProtobufErrorKind};
use kube_proto::watch::WatchDecodeErrorKind;
use kube_proto::{WatchDecoder, WatchEvent};
use proptest::prelude::*;
use serde_json::Value;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/apiserver-v1.36-protobuf");

#[allow(clippy::disallowed_methods)] // reading the fixtures is the point of these tests
fn body(name: &str) -> Vec<u8> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(format!("{DIR}/{name}.json")).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let resp = &json["response"];
    let b64 = |v: &Value| base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
    match resp["chunks_base64"].as_array() {
        Some(chunks) => chunks.iter().flat_map(b64).collect(),
        None => b64(&resp["body_base64"]),
    }
}

fn watch_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(http::header::CONTENT_TYPE, protobuf::WATCH_MEDIA_TYPE.parse().unwrap());
    h
}

/// Everything a decoder says about `bytes`, pushed in `chunk`-sized pieces, with `finish`.
fn decode_stream(
    bytes: &[u8],
    chunk: usize,
    max_frame: usize,
) -> Vec<Result<WatchEvent<ConfigMap>, WatchDecodeErrorKind>> {
    let mut d = WatchDecoder::<ConfigMap>::with_max_frame(max_frame);
    d.use_content_type(&watch_headers());
    let mut out = Vec::new();
    for c in bytes.chunks(chunk.max(1)) {
        d.push(c);
        while let Some(e) = d.next_event() {
            out.push(e.map_err(|e| e.kind));
        }
    }
    out.extend(d.finish().map(|e| e.map_err(|e| e.kind)));
    out
}

#[test]
fn every_truncation_of_an_object_is_an_error() {
    for name in ["pb-get-pod", "pb-get-configmap", "pb-list-configmaps", "pb-get-crd", "pb-get-missing"] {
        let full = body(name);
        let env = Envelope::parse(&full).unwrap();
        // Where the raw object ends: a cut before it always loses part of the object.
        let raw_end = env.raw.as_ptr() as usize - full.as_ptr() as usize + env.raw.len();
        for cut in 0..raw_end {
            let e = protobuf::from_slice::<Value>(&full[..cut]).unwrap_err();
            let expected = if cut < 4 { ProtobufErrorKind::NotProtobuf } else { ProtobufErrorKind::Truncated };
            // A cut inside the envelope's type meta may leave a shorter, well-formed one.
            assert!(e.kind == expected || cut < 4 + 2 + 50, "{name} cut at {cut}: {e}");
        }
    }
}

#[test]
fn a_stream_cut_anywhere_says_so_at_its_end() {
    let full = body("pb-watch-configmaps");
    let whole = decode_stream(&full, usize::MAX, 1 << 20);
    assert!(whole.iter().all(Result::is_ok));
    for cut in 1..full.len() {
        let out = decode_stream(&full[..cut], 7, 1 << 20);
        let (last, before) = out.split_last().unwrap();
        // Whole frames before the cut decode as they did; the cut is the last thing said,
        // unless it fell exactly between two frames.
        assert!(before.iter().all(Result::is_ok), "cut at {cut}");
        assert_eq!(&whole[..before.len()], before);
        if last.is_ok() {
            assert_eq!(&whole[..out.len()], &out[..]);
        } else {
            assert_eq!(*last, Err(WatchDecodeErrorKind::Malformed), "cut at {cut}");
        }
    }
}

#[test]
fn a_frame_over_the_limit_is_skipped() {
    let full = body("pb-watch-configmaps");
    let whole = decode_stream(&full, usize::MAX, 1 << 20);
    let first_len = u32::from_be_bytes(full[..4].try_into().unwrap()) as usize;
    // A limit just under the first frame: it (and any as long) is skipped, the rest decode.
    let out = decode_stream(&full, 5, first_len - 1);
    assert!(matches!(out[0], Err(WatchDecodeErrorKind::TooLarge { .. })));
    assert_eq!(out.len(), whole.len());
    for (a, b) in out.iter().zip(&whole) {
        assert!(a.is_err() || a == b);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), magic in any::<bool>()) {
        let mut b = if magic { b"k8s\0".to_vec() } else { Vec::new() };
        b.extend_from_slice(&bytes);
        let _ = protobuf::from_slice::<Pod>(&b);
        let _ = protobuf::from_slice::<Value>(&b);
        let _ = decode_stream(&b, 3, 1 << 16);
    }

    #[test]
    fn mutated_bodies_never_panic(index in 0usize..5, flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let name = ["pb-get-pod", "pb-get-deployment", "pb-get-crd", "pb-list-configmaps", "pb-get-missing"][index];
        let mut b = body(name);
        for (at, byte) in flips {
            let i = at.index(b.len());
            b[i] = byte;
        }
        let _ = protobuf::from_slice::<Pod>(&b);
        match protobuf::from_slice::<Value>(&b) {
            // What decodes re-encodes (when the kind is still known) without a panic.
            Ok(v) => { let _ = protobuf::to_vec(&v); }
            Err(e) => prop_assert!(!e.message.is_empty()),
        }
    }

    #[test]
    fn mutated_streams_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), chunk in 1usize..300) {
        let mut b = body("pb-watch-streaming-list");
        for (at, byte) in flips {
            let i = at.index(b.len());
            b[i] = byte;
        }
        let _ = decode_stream(&b, chunk, 1 << 16);
    }
}
