//! The watch decoders that `core` times and `core_alloc` counts the allocations of. Each hands
//! every decoded event to `sink`.

use k8s_openapi::api::core::v1::Pod;
use kube_proto::{WatchDecoder, WatchEvent};

use crate::data::{CHUNK, Stream};

/// Ours: the streaming decoder, fed the body in `CHUNK`-sized pieces.
pub fn ours_decode(body: &[u8], mut sink: impl FnMut(WatchEvent<Pod>)) {
    let mut decoder = WatchDecoder::<Pod>::new();
    for chunk in body.chunks(CHUNK) {
        decoder.push(chunk);
        while let Some(event) = decoder.next_event() {
            sink(event.unwrap());
        }
    }
    assert!(decoder.finish().is_none());
}

/// (a) What kube-rs does with each line: `serde_json::from_slice` (lines pre-split, for free).
pub fn kube_core_from_slice(s: &Stream, mut sink: impl FnMut(kube_core::WatchEvent<Pod>)) {
    for &(b, e) in &s.lines {
        sink(serde_json::from_slice(&s.body[b..e]).unwrap());
    }
}

/// (b) The best plain decode: validate UTF-8 once, parse as `str` (lines pre-split, for free).
pub fn kube_core_from_str(s: &Stream, mut sink: impl FnMut(kube_core::WatchEvent<Pod>)) {
    for &(b, e) in &s.lines {
        let text = std::str::from_utf8(&s.body[b..e]).unwrap();
        sink(serde_json::from_str(text).unwrap());
    }
}

/// (c) Just the objects, no event envelope: `serde_json::from_slice::<Pod>`.
pub fn pod_from_slice(s: &Stream, mut sink: impl FnMut(Pod)) {
    for &(b, e) in &s.objects {
        sink(serde_json::from_slice(&s.body[b..e]).unwrap());
    }
}
