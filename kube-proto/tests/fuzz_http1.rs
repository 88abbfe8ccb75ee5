//! Fuzzing the HTTP/1.1 answer to an upgrade request (`http1::parse_response_head`,
//! `ResponseHead::body_length` and `ChunkedDecoder`) with hand-written answers, mutated. For
//! every input:
//!
//! - nothing panics;
//! - any chunking of the head gives the same result: every prefix is `Partial` or already the
//!   whole input's verdict, and a verdict, once given, never changes;
//! - a head is bounded and decided by its own bytes: `Partial` only below
//!   `MAX_RESPONSE_HEAD`, `Complete` with a length at most that, ending with the empty line,
//!   the same verdict from those bytes alone and `Partial` from one byte fewer;
//! - the headers hold nothing but bytes of the input, at most `MAX_HEADERS` of them;
//! - a chunked body decodes the same whatever its chunking (data, bytes left after it, and
//!   error), with no more data than it has bytes.
//!
//! `FUZZ_ITERATIONS`, `FUZZ_SEED` and `FUZZ_REPLAY`: see `tests/fuzz/mod.rs` and `fuzz/README.md`.

mod fuzz;

use fuzz::{Fuzzer, SplitMix64, chunking, chunks};
use kube_proto::http1::{
    BodyLength, ChunkedDecoder, Http1Error, MAX_HEADERS, MAX_RESPONSE_HEAD, ResponseHead, Status, parse_response_head,
};

type Verdict = Result<Status<ResponseHead>, Http1Error>;

fn check_verdict(verdict: &Verdict, received: &[u8]) {
    match verdict {
        Ok(Status::Partial) => assert!(received.len() < MAX_RESPONSE_HEAD, "Partial after {} bytes", received.len()),
        Ok(Status::Complete(head)) => {
            let n = head.length;
            assert!(n <= MAX_RESPONSE_HEAD && n <= received.len(), "Complete({n}) of {} bytes", received.len());
            let bytes = &received[..n];
            assert!(
                bytes.ends_with(b"\n\n") || bytes.ends_with(b"\n\r\n"),
                "a head that does not end with an empty line"
            );
            assert!(head.headers.len() <= MAX_HEADERS);
            for (name, value) in &head.headers {
                assert!(
                    fuzz::contains(&bytes.to_ascii_lowercase(), name.as_str().as_bytes()),
                    "{name} is not in the head"
                );
                let value = value.as_bytes();
                assert!(value.is_empty() || fuzz::contains(bytes, value), "the value of {name} is not in the head");
            }
            assert!(head.reason.chars().count() <= 100 && !head.reason.chars().any(char::is_control));
        }
        Err(_) => {}
    }
}

/// Decodes a chunked body fed in `pieces`: the data, how many bytes it took, and the error.
fn decode_chunked(pieces: &[&[u8]]) -> (Vec<u8>, usize, Option<Http1Error>) {
    let mut decoder = ChunkedDecoder::new();
    let mut data = Vec::new();
    let mut used = 0;
    for piece in pieces {
        let mut input = *piece;
        match decoder.decode(&mut input, &mut data) {
            Ok(done) => {
                used += piece.len() - input.len();
                if done {
                    assert!(decoder.is_done());
                    return (data, used, None);
                }
                assert!(input.is_empty(), "input left before the end of the body");
            }
            Err(e) => return (data, used, Some(e)),
        }
    }
    (data, used, None)
}

fn check(answer: &[u8], rng: &mut SplitMix64) -> String {
    let whole = parse_response_head(answer);
    check_verdict(&whole, answer);
    let mut decided = false;
    for cut in chunking(rng, answer.len()).into_iter().chain([answer.len()]) {
        let verdict = parse_response_head(&answer[..cut]);
        check_verdict(&verdict, &answer[..cut]);
        match verdict {
            Ok(Status::Partial) => assert!(!decided, "Partial after a verdict, at {cut} bytes"),
            other => {
                assert_eq!(other, whole, "the verdict at {cut} bytes differs from the whole input's");
                decided = true;
            }
        }
    }
    let head = match &whole {
        Ok(Status::Complete(head)) => head,
        Ok(Status::Partial) => return "Partial".into(),
        Err(e) => return format!("{e:?}").split(['(', ' ']).next().unwrap_or("").to_owned(),
    };
    let n = head.length;
    assert_eq!(parse_response_head(&answer[..n]).as_ref(), whole.as_ref(), "the head alone decides");
    assert_eq!(parse_response_head(&answer[..n - 1]), Ok(Status::Partial), "the head is not decided early");
    let body = &answer[n..];
    let length = head.body_length(rng.chance(0.1));
    let kind = match length {
        Ok(BodyLength::Chunked) => {
            let (data, used, error) = decode_chunked(&[body]);
            let cuts = chunking(rng, body.len());
            let (data2, used2, error2) = decode_chunked(&chunks(body, &cuts));
            assert_eq!((&data, error.is_some()), (&data2, error2.is_some()), "the chunking changed the body");
            if error.is_none() {
                assert_eq!(used, used2, "the chunking changed where the body ends");
                assert!(data.len() <= used);
            }
            if error.is_some() { "Chunked(error)" } else { "Chunked" }
        }
        Ok(BodyLength::Length(_)) => "Length",
        Ok(BodyLength::Empty) => "Empty",
        Ok(BodyLength::UntilClose) => "UntilClose",
        Err(_) => "BadLength",
    };
    format!("{}xx {kind}", head.status.as_u16() / 100)
}

#[test]
fn upgrade_answers_in_any_chunking_give_one_verdict() {
    let summary = Fuzzer::new("http1")
        .tokens(&[
            b"HTTP/1.1 ",
            b"HTTP/1.1 101 Switching Protocols\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Content-Length: 5\r\n",
            b"Upgrade: websocket\r\n",
            b"\r\n0\r\n\r\n",
            b";ext=1",
            b"\n\r\n",
            b"\n\n",
            b" \t",
            b"ffffffffffffffff",
        ])
        .max_len(2 * MAX_RESPONSE_HEAD)
        .default_iterations(2500)
        .run(check);
    assert!(summary.tried > 0);
}
