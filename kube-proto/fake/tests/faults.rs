//! Fault injection in the fake API server: reproducible from a seed, and it can be stopped.
#![allow(clippy::disallowed_methods)] // a test needs one origin instant; the code under test takes it as an argument

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube_proto::{ListParams, PostParams, Request};
use kube_proto_fake::faults::{Delivery, Fault, FaultConfig, FaultyServer};
use kube_proto_fake::{FakeApiServer, FakeConfig};

fn run(seed: u64) -> Vec<Fault> {
    let t0 = Instant::now();
    let mut s = FaultyServer::new(FakeApiServer::new(FakeConfig::default(), t0), FaultConfig::moderate(seed));
    let cms = Request::namespaced::<ConfigMap>("default");
    for i in 0..200 {
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": format!("cm{i}")}})).expect("a ConfigMap");
        s.handle(t0, &cms.create(&PostParams::default(), &cm).expect("a request"));
        s.handle(t0, &cms.list(&ListParams::default()).expect("a request"));
    }
    s.injected().to_vec()
}

#[test]
fn the_same_seed_gives_the_same_faults() {
    let a = run(7);
    assert_eq!(a, run(7));
    assert_ne!(a, run(8));
    for kind in [Fault::ServerError, Fault::TooManyRequests, Fault::Compacted] {
        assert!(a.contains(&kind), "{kind:?} never happened in {a:?}");
    }
    assert!(a.iter().any(|f| matches!(f, Fault::CutBody(_))));
}

#[test]
fn stopping_faults_stops_them() {
    let t0 = Instant::now();
    let mut s = FaultyServer::new(FakeApiServer::new(FakeConfig::default(), t0), FaultConfig::moderate(1));
    s.stop_faults();
    let cms = Request::namespaced::<ConfigMap>("default");
    for _ in 0..300 {
        let (delay, d) = s.handle(t0, &cms.list(&ListParams::default()).expect("a request"));
        assert_eq!(delay, Duration::ZERO);
        assert!(matches!(d, Delivery::Complete(r) if r.status() == 200));
    }
    assert!(s.injected().is_empty());
}

#[test]
fn a_429_carries_retry_after() {
    let t0 = Instant::now();
    let config = FaultConfig { too_many_requests: 1.0, retry_after_seconds: 3, ..FaultConfig::none(5) };
    let mut s = FaultyServer::new(FakeApiServer::new(FakeConfig::default(), t0), config);
    let (_, d) =
        s.handle(t0, &Request::namespaced::<ConfigMap>("default").list(&ListParams::default()).expect("a request"));
    let Delivery::Complete(resp) = d else { panic!("{d:?}") };
    let err = kube_proto::Response::from_http(&resp).error();
    assert_eq!(err.http_status(), 429);
    assert_eq!(err.retry_after(), Some(3));
}
