//! Posting events never blocks a reconcile: `Recorder::post` returns while the server has not
//! answered, the controller's run stream sends the queued events (nothing spawned), a graceful
//! shutdown waits for them, and a full queue drops and counts.

#![cfg(feature = "fake")]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures_core::Stream;
use futures_executor::block_on;
use futures_util::future::{BoxFuture, Either, FutureExt, poll_fn, select};
use futures_util::stream::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube_proto::{ListParams, Patch, PatchParams, PostParams, Request};
use kube_runtime::controller::{Action, Controller};
use kube_runtime::events::{EventInput, EventType, Recorder, Reporter, object_reference};
use kube_runtime::fake::{FakeTransport, Reply};
use kube_runtime::{Api, Client, Transport, TransportError, TransportResponse, watcher};
use serde_json::{Value, json};

/// Holds the requests for Events until it is opened.
#[derive(Clone, Default)]
struct Gate(Arc<Mutex<GateState>>);

#[derive(Default)]
struct GateState {
    open: bool,
    /// Requests held now.
    held: usize,
    waiting: Vec<Waker>,
}

impl Gate {
    fn set_open(&self, open: bool) {
        let mut state = self.0.lock().unwrap();
        state.open = open;
        for w in std::mem::take(&mut state.waiting) {
            w.wake();
        }
    }

    fn held(&self) -> usize {
        self.0.lock().unwrap().held
    }

    fn pass(&self) -> impl Future<Output = ()> + Send + 'static {
        let gate = self.0.clone();
        let mut counted = false;
        poll_fn(move |cx| {
            let mut state = gate.lock().unwrap();
            if state.open {
                state.held -= usize::from(counted);
                return Poll::Ready(());
            }
            if !counted {
                state.held += 1;
                counted = true;
            }
            state.waiting.push(cx.waker().clone());
            Poll::Pending
        })
    }
}

/// The fake, with the requests for Events behind the gate.
#[derive(Clone)]
struct Gated {
    inner: FakeTransport,
    gate: Gate,
}

impl Transport for Gated {
    fn send(&self, request: http::Request<Vec<u8>>) -> BoxFuture<'static, Result<TransportResponse, TransportError>> {
        if !request.uri().path().starts_with("/apis/events.k8s.io/") {
            return self.inner.send(request);
        }
        let (inner, pass) = (self.inner.clone(), self.gate.pass());
        Box::pin(async move {
            pass.await;
            inner.send(request).await
        })
    }

    fn sleep_until(&self, deadline: Instant) -> BoxFuture<'static, ()> {
        self.inner.sleep_until(deadline)
    }
}

/// The Events (events.k8s.io) the server holds in `default`.
fn events_in(server: &FakeTransport) -> Vec<Value> {
    let req =
        Request::namespaced::<k8s_openapi::api::events::v1::Event>("default").list(&ListParams::default()).unwrap();
    let Reply::Response(resp) = server.server().handle(Instant::now(), &req) else { panic!("a list") };
    let list: Value = serde_json::from_slice(resp.body()).unwrap();
    list["items"].as_array().unwrap().clone()
}

const PATIENCE: Duration = Duration::from_secs(10);

/// Polls `results` (dropping its items) until `done`, for at most [`PATIENCE`].
async fn drive_until<S: Stream + Unpin>(client: &Client, results: &mut S, what: &str, mut done: impl FnMut() -> bool) {
    let drive = poll_fn(|cx| {
        while let Poll::Ready(Some(_)) = results.poll_next_unpin(cx) {}
        if done() { Poll::Ready(()) } else { Poll::Pending }
    });
    let deadline = client.transport().sleep_until(client.now() + PATIENCE);
    if let Either::Right(_) = select(pin!(drive), deadline).await {
        panic!("timed out waiting for {what}");
    }
}

/// `future`'s output, or a panic after [`PATIENCE`].
async fn within<T>(client: &Client, what: &str, future: impl Future<Output = T>) -> T {
    match select(pin!(future), client.transport().sleep_until(client.now() + PATIENCE)).await {
        Either::Left((out, _)) => out,
        Either::Right(_) => panic!("timed out waiting for {what}"),
    }
}

struct Ctx {
    recorder: Recorder,
    reconciles: AtomicUsize,
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

async fn reconcile(cm: Arc<ConfigMap>, ctx: Arc<Ctx>) -> Result<Action, Never> {
    let event = EventInput::new(EventType::Normal, "Reconciled", "Reconcile")
        .note(&format!("at {}", cm.metadata.resource_version.as_deref().unwrap_or_default()));
    assert!(ctx.recorder.post(&event, &object_reference(cm.as_ref(), &())), "queued");
    ctx.reconciles.fetch_add(1, Ordering::SeqCst);
    Ok(Action::await_change())
}

fn error_policy(_: Arc<ConfigMap>, _: &Never, _: Arc<Ctx>) -> Action {
    Action::await_change()
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

#[test]
fn a_reconcile_posts_without_waiting_and_the_controller_sends_the_event() {
    let (server, config) = FakeTransport::new();
    let gate = Gate::default();
    let client = Client::new(Gated { inner: server.clone(), gate: gate.clone() }, config).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    block_on(async {
        cms.create(&PostParams::default(), &cm("app")).await.unwrap();
        let recorder = Recorder::new(client.clone(), Reporter::new("example.com/configmapgen", "configmapgen-0"));
        let ctx = Arc::new(Ctx { recorder: recorder.clone(), reconciles: AtomicUsize::new(0) });
        let (stop, stopped) = futures_channel::oneshot::channel::<()>();
        let controller = Controller::new(cms.clone(), watcher::Config::default())
            .publish_events(&recorder)
            .graceful_shutdown_on(async move {
                let _ = stopped.await;
            });
        drop(recorder);
        let mut results = pin!(controller.run(reconcile, error_policy, ctx.clone()));

        // The reconcile returns while the server has not answered its event.
        let first = within(&client, "the first reconcile", results.next()).await.unwrap();
        assert_eq!(first.unwrap().0.name, "app");
        drive_until(&client, &mut results, "the event to be sent", || gate.held() == 1).await;
        assert!(events_in(&server).is_empty(), "held at the gate");

        // Once the server answers, the run stream, which the caller polls anyway, has sent it.
        gate.set_open(true);
        drive_until(&client, &mut results, "the event to arrive", || events_in(&server).len() == 1).await;
        let event = &events_in(&server)[0];
        assert_eq!(event["reason"], "Reconciled");
        assert_eq!(event["regarding"]["name"], "app");
        assert_eq!(event["reportingController"], "example.com/configmapgen");
        assert_eq!(gate.held(), 0);

        // A graceful shutdown waits for the events posted until then.
        gate.set_open(false);
        let patch = Patch::Merge(json!({"data": {"k": "w"}}));
        cms.patch("app", &PatchParams::default(), &patch).await.unwrap();
        drive_until(&client, &mut results, "the second event to be sent", || gate.held() == 1).await;
        assert_eq!(ctx.reconciles.load(Ordering::SeqCst), 2);
        stop.send(()).unwrap();
        for _ in 0..3 {
            assert!(results.next().now_or_never().is_none(), "the stream ended with an event unsent");
        }
        gate.set_open(true);
        assert!(within(&client, "the end of the stream", results.next()).await.is_none());
        assert_eq!(events_in(&server).len(), 2);
    });
}

fn regarding() -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        name: Some("app".into()),
        namespace: Some("default".into()),
        uid: Some("uid-app".into()),
        ..ObjectReference::default()
    }
}

#[test]
fn a_full_queue_drops_and_counts_and_the_sender_ends_with_its_recorder() {
    let (server, config) = FakeTransport::new();
    let client = Client::new(server.clone(), config).unwrap();
    let recorder = Recorder::with_queue_capacity(client, Reporter::new("example.com/configmapgen", "cm-0"), 3);
    let step = |i: usize| EventInput::new(EventType::Normal, &format!("Step{i}"), "Reconcile");
    let queued: Vec<bool> = (0..10).map(|i| recorder.post(&step(i), &regarding())).collect();
    assert_eq!(queued, [[true; 3].as_slice(), &[false; 7]].concat());
    assert_eq!(recorder.posts_dropped(), 7);
    assert!(events_in(&server).is_empty(), "nothing is sent until a sender is driven");

    let mut sender = recorder.sender();
    assert!(!sender.is_idle());
    // Driven once: it sends the queue, then waits for more while the recorder lives.
    block_on(poll_fn(|cx| {
        assert!(sender.poll_unpin(cx).is_pending(), "the recorder lives: more may come");
        Poll::Ready(())
    }));
    assert!(sender.is_idle());
    let reasons: Vec<Value> = events_in(&server).iter().map(|e| e["reason"].clone()).collect();
    assert_eq!(reasons, ["Step0", "Step1", "Step2"]);
    // Room again; the last post before the recorder goes is still sent, then the sender ends.
    assert!(recorder.post(&step(10), &regarding()));
    drop(recorder);
    block_on(sender);
    assert_eq!(events_in(&server).len(), 4);
}
