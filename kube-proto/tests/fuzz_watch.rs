//! Fuzzing the watch decoder (`WatchDecoder`) with recorded watch bodies, mutated, fed in
//! random chunkings and with small frame limits. For every input:
//!
//! - nothing panics;
//! - the events out do not depend on the chunking (whole, byte by byte, every n bytes, random
//!   cuts): they equal a line-by-line model of the body, in which each line is parsed alone,
//!   so a malformed line never changes the lines after it;
//! - a line over the frame limit is one `TooLarge` error in its place, the lines after it still
//!   decode, and after draining at most one frame is buffered.
//!
//! `FUZZ_ITERATIONS`, `FUZZ_SEED` and `FUZZ_REPLAY`: see `tests/fuzz/mod.rs` and `fuzz/README.md`.

mod fuzz;

use fuzz::{Fuzzer, SplitMix64, chunking, chunks};
use k8s_openapi::api::core::v1::ConfigMap;
use kube_proto::watch::{DEFAULT_MAX_FRAME, WatchDecodeErrorKind, parse_line};
use kube_proto::{WatchDecodeError, WatchDecoder, WatchEvent};
use serde::de::DeserializeOwned;

type Out<K> = Vec<Result<WatchEvent<K>, WatchDecodeError>>;

/// What the decoder must say about a body: each line on its own (blank ones skipped), an
/// over-long one as `TooLarge`, an unterminated last one as cut.
fn model<K: DeserializeOwned + 'static>(body: &[u8], max_frame: usize) -> Out<K> {
    let mut out = Vec::new();
    let mut line_no = 0;
    let mut segments: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    let last = segments.pop().unwrap_or_default();
    let mut one = |segment: &[u8], terminated: bool, out: &mut Out<K>| {
        if segment.len() > max_frame {
            line_no += 1;
            out.push(Err(WatchDecodeError {
                line: line_no,
                len: 0,
                message: String::new(),
                kind: WatchDecodeErrorKind::TooLarge { limit: max_frame, seen: 0 },
            }));
            return;
        }
        let trimmed = segment.trim_ascii();
        if trimmed.is_empty() {
            return;
        }
        line_no += 1;
        let mut parsed = parse_line::<K>(trimmed, line_no);
        if !terminated && let Err(e) = &mut parsed {
            e.message =
                format!("the stream ended inside this event (cut after {} bytes?): {}", trimmed.len(), e.message);
        }
        out.push(parsed);
    };
    for segment in segments {
        one(segment, true, &mut out);
    }
    one(last, false, &mut out);
    out
}

/// Decodes `body` cut at `cuts`, checking the buffer bound after each chunk.
fn decode<K: DeserializeOwned + 'static>(body: &[u8], cuts: &[usize], max_frame: usize) -> Out<K> {
    let mut decoder = WatchDecoder::<K>::with_max_frame(max_frame);
    let mut out = Vec::new();
    for chunk in chunks(body, cuts) {
        decoder.push(chunk);
        while let Some(event) = decoder.next_event() {
            out.push(event);
        }
        assert!(
            decoder.buffered() <= max_frame,
            "{} bytes buffered after draining, over the {max_frame}-byte frame limit",
            decoder.buffered()
        );
    }
    out.extend(decoder.finish());
    assert_eq!(decoder.buffered(), 0, "finish leaves nothing buffered");
    assert!(decoder.next_event().is_none() && decoder.finish().is_none(), "a finished decoder is empty");
    out
}

/// `TooLarge` says how many bytes were seen when the line was dropped, which depends on the
/// chunking: compare everything else.
fn normalized<K>(out: Out<K>, from_decoder: bool) -> Out<K> {
    out.into_iter()
        .map(|r| {
            r.map_err(|mut e| {
                if let WatchDecodeErrorKind::TooLarge { limit, seen } = e.kind {
                    if from_decoder {
                        assert!(
                            seen > limit,
                            "line {}: dropped after {seen} bytes, within the {limit}-byte limit",
                            e.line
                        );
                        assert_eq!(e.len, seen);
                        assert!(e.message.contains("frame limit"), "{}", e.message);
                    }
                    e.kind = WatchDecodeErrorKind::TooLarge { limit, seen: 0 };
                    e.len = 0;
                    e.message.clear();
                }
                e
            })
        })
        .collect()
}

/// The kinds of outcome in a decoded body (which event types, which errors), without order or
/// count, so that only inputs that do something new are kept.
fn signature<K>(out: &Out<K>) -> String {
    let kinds: std::collections::BTreeSet<String> = out
        .iter()
        .map(|r| match r {
            Ok(e) => e.type_name().to_owned(),
            Err(e) if matches!(e.kind, WatchDecodeErrorKind::TooLarge { .. }) => "TooLarge".into(),
            // The error's category, without positions or values.
            Err(e) => {
                let category = e.message.split([':', '`', '"', '(']).next().unwrap_or("");
                format!("<{}>", category.replace(|c: char| c.is_ascii_digit(), "").trim())
            }
        })
        .collect();
    kinds.into_iter().collect::<Vec<_>>().join(",")
}

fn check<K: DeserializeOwned + 'static + PartialEq + std::fmt::Debug>(body: &[u8], rng: &mut SplitMix64) -> String {
    let max_frame = match rng.below(4) {
        0 => 1 + rng.below(64) as usize,
        1 => 64 + rng.below(4096) as usize,
        _ => DEFAULT_MAX_FRAME,
    };
    let expected = normalized(model::<K>(body, max_frame), false);
    let whole = normalized(decode::<K>(body, &[], max_frame), true);
    assert_eq!(whole, expected, "fed whole (frame limit {max_frame})");
    let cuts = chunking(rng, body.len());
    let chunked = normalized(decode::<K>(body, &cuts, max_frame), true);
    assert_eq!(chunked, expected, "fed in {} chunks cut at {cuts:?} (frame limit {max_frame})", cuts.len() + 1);
    format!("{}{}", if max_frame == DEFAULT_MAX_FRAME { "" } else { "small:" }, signature(&whole))
}

#[test]
fn watch_decoder_never_panics_and_events_do_not_depend_on_chunking() {
    let summary = Fuzzer::new("watch")
        .tokens(&[
            br#"{"type":"ADDED","object":{}}"#,
            br#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"1"}}}"#,
            br#"{"type":"ERROR","object":{"kind":"Status","code":410}}"#,
            br#""type":"#,
            br#""object":"#,
            b"MODIFIED",
            b"DELETED",
            br#""metadata":{"name":"#,
            b"\n\n\n",
            b"\x0c",
        ])
        .default_iterations(4000)
        .run(|body, rng| {
            // Decoded into a typed object half the time, into any JSON the other half.
            if rng.chance(0.5) { check::<ConfigMap>(body, rng) } else { check::<serde_json::Value>(body, rng) }
        });
    assert!(summary.tried > 0);
}

#[test]
fn the_watch_corpus_decodes_as_the_server_sent_it() {
    // The recorded streams are whole and valid: every line is an event (the hand-written seeds
    // hold malformed and cut lines on purpose).
    for (name, body) in fuzz::load_corpus("watch") {
        if name.starts_with("hand-written") {
            continue;
        }
        let events = decode::<serde_json::Value>(&body, &[], DEFAULT_MAX_FRAME);
        assert!(!events.is_empty(), "{name}");
        assert!(events.iter().all(Result::is_ok), "{name}: {events:?}");
    }
}

#[test]
fn the_model_catches_a_decoder_that_merges_lines() {
    // The oracle is not vacuous: a stream whose second line was glued to the first (what a
    // decoder that lost a newline would see) differs from the model of the real body.
    let body = b"{\"type\":\"ADDED\",\"object\":{}}\n{\"type\":\"DELETED\",\"object\":{}}\n";
    let glued = b"{\"type\":\"ADDED\",\"object\":{}}{\"type\":\"DELETED\",\"object\":{}}\n";
    assert_ne!(model::<serde_json::Value>(body, DEFAULT_MAX_FRAME), decode(glued, &[], DEFAULT_MAX_FRAME));
    assert_eq!(model::<serde_json::Value>(body, DEFAULT_MAX_FRAME), decode(body, &[5, 40], DEFAULT_MAX_FRAME));
}
