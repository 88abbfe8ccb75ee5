//! The plain decode of one watch stream, JSON against protobuf, in process: the figure the
//! e2e run's `decode` reports, alone and repeatable, for profiling the decoders.
//!
//! `cargo bench -p kube-bench --bench decode`. Environment:
//! - `DECODE_EVENTS`: events per round (default 10,000: one pass over the stream's Pods);
//! - `DECODE_ROUNDS`: rounds per format (default 5); the median round is reported;
//! - `DECODE_ONLY`: `json`, `protobuf` (watch events), `jsonlist`, `protobuflist` (list pages of
//!   500 Pods read as `Api::list` reads them), comma-separated; all by default.
//!
//! Under callgrind, the difference between two runs that differ only in `DECODE_ROUNDS`,
//! divided by `DECODE_EVENTS`, is the instructions per event of the decode alone.

use std::time::Instant;

use bytes::Bytes;
use k8s_openapi::api::core::v1::Pod;
use kube_proto::WatchDecoder;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let events: usize = env("DECODE_EVENTS", 10_000);
    let rounds: usize = env("DECODE_ROUNDS", 5);
    let only = std::env::var("DECODE_ONLY").unwrap_or_else(|_| "json,protobuf,jsonlist,protobuflist".into());
    for format in only.split(',') {
        if let Some(list_format) = format.strip_suffix("list") {
            lists(list_format, events, rounds);
            continue;
        }
        let (chunks, headers) = match format {
            "json" => (kube_bench::watch_chunks(events), http::HeaderMap::new()),
            "protobuf" => {
                let mut headers = http::HeaderMap::new();
                let media = kube_proto::protobuf::WATCH_MEDIA_TYPE.parse().expect("a header value");
                headers.insert(http::header::CONTENT_TYPE, media);
                (kube_bench::protobuf_watch_chunks(events), headers)
            }
            other => panic!("DECODE_ONLY: no format {other:?} (json, protobuf)"),
        };
        let bytes: usize = chunks.iter().map(Bytes::len).sum();
        let times: Vec<f64> = (0..rounds).map(|_| round(&chunks, &headers, events)).collect();
        report(&format!("{format:>8}"), "event", times, events, bytes);
    }
}

/// One line: the median round's rate and time per item, and the bytes per item.
fn report(label: &str, item: &str, mut times: Vec<f64>, items: usize, bytes: usize) {
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    println!(
        "{label}: {:.0} {item}s/s, {:.2} µs per {item}, {} bytes per {item} (median of {} rounds of {items})",
        items as f64 / median,
        median * 1e6 / items as f64,
        bytes / items,
        times.len(),
    );
}

/// List pages of 500 Pods (`events` Pods in all), read by `Response::list` as `Api::list` reads
/// them, in JSON or protobuf.
fn lists(format: &str, pods: usize, rounds: usize) {
    let pages: Vec<Vec<u8>> = (0..pods.div_ceil(kube_bench::PAGE))
        .map(|page| {
            let items: Vec<Pod> = (page * kube_bench::PAGE..((page + 1) * kube_bench::PAGE).min(pods))
                .map(|i| kube_bench::data::pod(i, true))
                .collect();
            let list = serde_json::json!({"kind": "PodList", "apiVersion": "v1",
                "metadata": {"resourceVersion": "2000000", "continue": format!("{}", page + 1)}, "items": items});
            match format {
                "json" => serde_json::to_vec(&list).expect("a list serializes"),
                "protobuf" => kube_proto::protobuf::to_vec(&list).expect("a list encodes"),
                other => panic!("DECODE_ONLY: no format {other:?}list (jsonlist, protobuflist)"),
            }
        })
        .collect();
    let bytes: usize = pages.iter().map(Vec::len).sum();
    let headers = http::HeaderMap::new();
    let times: Vec<f64> = (0..rounds)
        .map(|_| {
            let started = Instant::now();
            let mut n = 0;
            for page in &pages {
                let list = kube_proto::Response::new(http::StatusCode::OK, &headers, page);
                n += list.list::<Pod>().expect("a list").items.len();
            }
            assert_eq!(n, pods, "every Pod listed");
            started.elapsed().as_secs_f64()
        })
        .collect();
    report(&format!("{format:>8} list"), "Pod", times, pods, bytes);
}

/// One decode of every chunk into Pods, each event dropped as it comes: seconds taken.
fn round(chunks: &[Bytes], headers: &http::HeaderMap, events: usize) -> f64 {
    let started = Instant::now();
    let mut decoder = WatchDecoder::<Pod>::new();
    decoder.use_content_type(headers);
    let mut n = 0;
    for chunk in chunks {
        decoder.push(chunk);
        while let Some(event) = decoder.next_event() {
            event.expect("an event");
            n += 1;
        }
    }
    assert_eq!(n, events, "every event decoded");
    started.elapsed().as_secs_f64()
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
