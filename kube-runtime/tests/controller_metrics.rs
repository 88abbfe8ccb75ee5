//! The controller's metrics as a prometheus-client registry encodes them (feature `prometheus`):
//! counters, the queue depth gauge and the reconcile-duration histogram with cumulative buckets.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kube_runtime::controller::{ControllerCollector, DURATION_BUCKETS, Metrics};
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

#[test]
fn the_metrics_encode_as_counters_a_gauge_and_a_histogram() {
    let metrics = Arc::new(Metrics::default());
    metrics.reconciles.store(3, Ordering::Relaxed);
    metrics.failures.store(1, Ordering::Relaxed);
    metrics.queue_depth.store(7, Ordering::Relaxed);
    metrics.reconcile_micros.store(1_500_000, Ordering::Relaxed);
    metrics.reconcile_duration_buckets[0].store(2, Ordering::Relaxed); // <= 5 ms
    metrics.reconcile_duration_buckets[DURATION_BUCKETS.len()].store(1, Ordering::Relaxed); // > 10 s
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ControllerCollector::new("cmgen", metrics.clone())));
    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    for line in [
        "cmgen_reconcile_total 3",
        "cmgen_reconcile_errors_total 1",
        "cmgen_queue_depth 7",
        "cmgen_reconcile_duration_seconds_sum 1.5",
        "cmgen_reconcile_duration_seconds_count 3",
        "cmgen_reconcile_duration_seconds_bucket{le=\"0.005\"} 2",
        "cmgen_reconcile_duration_seconds_bucket{le=\"10.0\"} 2",
        "cmgen_reconcile_duration_seconds_bucket{le=\"+Inf\"} 3",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
    assert_eq!(metrics.reconcile_durations().len(), DURATION_BUCKETS.len() + 1);
}
