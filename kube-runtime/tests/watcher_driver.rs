//! The `watcher()` driver races every wait against the state machine's deadline, the request
//! in flight included: a transport with no timeouts of its own (a server that accepts the
//! connection and never answers) cannot hang a watcher. Time here is simulated: the
//! transport's clock jumps to each deadline it is asked to sleep until.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_proto::config::Config;
use kube_runtime::watcher::{self, WatcherError};
use kube_runtime::{Api, Client, Error, Transport, TransportError, TransportResponse};

/// Sends requests into the void: their responses never come.
#[derive(Clone)]
struct NeverAnswers {
    clock: Arc<Mutex<Instant>>,
    sent: Arc<AtomicUsize>,
}

impl Transport for NeverAnswers {
    fn send(&self, _request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<TransportResponse, TransportError>> {
        self.sent.fetch_add(1, Ordering::SeqCst);
        Box::pin(futures_util::future::pending())
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        let clock = self.clock.clone();
        Box::pin(async move {
            let mut now = clock.lock().unwrap();
            *now = (*now).max(deadline);
        })
    }

    fn now(&self) -> Instant {
        *self.clock.lock().unwrap()
    }
}

#[test]
fn a_request_that_never_answers_is_given_up_at_the_machines_deadline() {
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let transport = NeverAnswers { clock: Arc::new(Mutex::new(start)), sent: Arc::default() };
    let client = Client::new(transport.clone(), Config::new("https://10.0.0.1:6443".parse().unwrap())).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let config = watcher::Config::default();
    let give_up = Duration::from_secs(u64::from(config.timeout)) + config.idle_grace;

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut events = Box::pin(watcher::watcher(api, config));
        let first = futures_executor::block_on(events.next());
        let second = futures_executor::block_on(events.next());
        let _ = tx.send((first.map(|r| r.map(|_| ())), second.map(|r| r.map(|_| ()))));
    });
    let (first, second) = rx.recv_timeout(Duration::from_secs(30)).expect("the watcher hung on a silent request");
    for item in [first, second] {
        match item {
            Some(Err(Error::Watcher(WatcherError::Silent(after)))) => assert!(after >= give_up, "{after:?}"),
            other => panic!("expected the silent request to be given up, got {other:?}"),
        }
    }
    assert_eq!(transport.sent.load(Ordering::SeqCst), 2, "given up, backed off, then tried again");
    assert!(*transport.clock.lock().unwrap() >= start + give_up * 2);
}

/// Lists one empty page, then answers the watch with `chunks` chunks of one `MODIFIED` event
/// each, all at once; its timers never fire, its clock moves a second at every reading, and it
/// counts the timers asked for.
#[derive(Clone)]
struct Streams {
    clock: Arc<Mutex<Instant>>,
    chunks: usize,
    timers: Arc<AtomicUsize>,
}

impl Transport for Streams {
    fn send(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<TransportResponse, TransportError>> {
        let watch = request.uri().query().is_some_and(|q| q.contains("watch=true"));
        let chunks: Vec<Result<bytes::Bytes, TransportError>> = if watch {
            (0..self.chunks)
                .map(|i| {
                    let line = format!(
                        "{{\"type\":\"MODIFIED\",\"object\":{{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{{\"name\":\"cm\",\"namespace\":\"default\",\"resourceVersion\":\"{}\"}}}}}}\n",
                        i + 2
                    );
                    Ok(bytes::Bytes::from(line))
                })
                .collect()
        } else {
            let list = r#"{"apiVersion":"v1","kind":"ConfigMapList","metadata":{"resourceVersion":"1"},"items":[]}"#;
            vec![Ok(bytes::Bytes::from_static(list.as_bytes()))]
        };
        Box::pin(async move {
            Ok(TransportResponse {
                status: http::StatusCode::OK,
                headers: http::HeaderMap::new(),
                body: Box::pin(futures_util::stream::iter(chunks)),
            })
        })
    }

    fn sleep_until(&self, _deadline: Instant) -> BoxFuture<'static, ()> {
        self.timers.fetch_add(1, Ordering::SeqCst);
        Box::pin(futures_util::future::pending())
    }

    fn now(&self) -> Instant {
        let mut now = self.clock.lock().unwrap();
        *now += Duration::from_secs(1);
        *now
    }
}

#[test]
fn a_watch_keeps_one_timer_while_its_deadline_moves_on_with_every_chunk() {
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    let transport = Streams { clock: Arc::new(Mutex::new(start)), chunks: 200, timers: Arc::default() };
    let client = Client::new(transport.clone(), Config::new("https://10.0.0.1:6443".parse().unwrap())).unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let mut events = Box::pin(watcher::watcher(api, watcher::Config::default()));
    let mut applied = 0;
    while applied < 200 {
        match futures_executor::block_on(events.next()) {
            Some(Ok(watcher::Event::Apply(cm))) => {
                applied += 1;
                assert_eq!(cm.metadata.resource_version.as_deref(), Some(&*(applied + 1).to_string()));
            }
            Some(Ok(_)) => {}
            other => panic!("expected events, got {other:?}"),
        }
    }
    // The list's timer serves the watch too: its deadline only ever moves later.
    let timers = transport.timers.load(Ordering::SeqCst);
    assert!(timers <= 2, "{timers} timers for 200 chunks");
}
