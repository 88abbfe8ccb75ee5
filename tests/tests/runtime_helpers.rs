//! The runtime's helpers over real sockets: the finalizer helper (added with a `test` op,
//! cleanup before removal, other writers' finalizers kept, a list changed meanwhile never
//! clobbered) and `await_condition`. Each body runs through transport-hyper (tokio) and
//! transport-asyncstd (async-std), against the loopback fake or a real cluster.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_integration_tests::objects::configmap;
use kube_integration_tests::{Ctx, transport_tests};
use kube_proto::{DeleteParams, Patch, PatchParams, PostParams, Resource, ResourceExt};
use kube_runtime::Api;
use kube_runtime::controller::Action;
use kube_runtime::events::{EventInput, EventType, Published, Recorder, Reporter, object_reference};
use kube_runtime::finalizer::{Event, FinalizerError, finalizer};
use kube_runtime::wait::{await_condition, conditions};
use serde_json::json;

transport_tests!(
    finalizer_is_added_then_apply_runs,
    finalizer_keeps_other_writers_finalizers,
    finalizer_cleanup_runs_before_removal_and_the_deletion_completes,
    finalizer_cleanup_failure_keeps_the_object,
    await_condition_sees_a_change_and_a_deletion,
    events_are_created_then_aggregated_into_a_series,
);

const FIN: &str = "kit.example.com/cleanup";
const STEP: Duration = Duration::from_secs(15);
/// What the test reconcile asks for after Apply and Cleanup.
const LATER: Action = Action::requeue(Duration::from_secs(300));

/// Counts the reconcile's calls by kind.
#[derive(Default)]
struct Calls {
    apply: AtomicUsize,
    cleanup: AtomicUsize,
}

async fn run(
    api: &Api<ConfigMap>,
    name: &str,
    calls: &Calls,
    fail_cleanup: bool,
) -> Result<Action, FinalizerError<std::io::Error>> {
    let object = Arc::new(api.get(name).await.unwrap());
    finalizer(api, FIN, object, |event| async move {
        match event {
            Event::Apply(_) => calls.apply.fetch_add(1, Ordering::SeqCst),
            Event::Cleanup(_) if fail_cleanup => return Err(std::io::Error::other("the bucket is still there")),
            Event::Cleanup(_) => calls.cleanup.fetch_add(1, Ordering::SeqCst),
        };
        Ok(LATER)
    })
    .await
}

async fn finalizer_is_added_then_apply_runs(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    cms.create(&PostParams::default(), &configmap(&ctx, "fin-add", &[])).await.unwrap();
    let calls = Calls::default();
    assert_eq!(run(&cms, "fin-add", &calls, false).await.unwrap(), Action::await_change());
    assert_eq!(calls.apply.load(Ordering::SeqCst), 0, "the patch's own change brings the next reconcile");
    assert_eq!(cms.get("fin-add").await.unwrap().finalizers(), [FIN]);
    assert_eq!(run(&cms, "fin-add", &calls, false).await.unwrap(), LATER);
    assert_eq!(calls.apply.load(Ordering::SeqCst), 1);
    // Remove ours so that the namespace can go.
    cms.patch("fin-add", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
}

async fn finalizer_keeps_other_writers_finalizers(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    cms.create(&PostParams::default(), &configmap(&ctx, "fin-others", &[])).await.unwrap();
    // Read before another writer adds its finalizer: our `test` op sees the list changed.
    let stale = Arc::new(cms.get("fin-others").await.unwrap());
    let theirs = json!({"metadata": {"finalizers": ["kit.example.com/theirs"]}});
    cms.patch("fin-others", &PatchParams::default(), &Patch::Merge(theirs)).await.unwrap();
    let action = finalizer(&cms, FIN, stale, |_| async { Ok::<_, std::io::Error>(Action::await_change()) }).await;
    assert_eq!(action.unwrap(), Action::await_change(), "refused, not an error: a newer object comes");
    assert_eq!(
        cms.get("fin-others").await.unwrap().finalizers(),
        ["kit.example.com/theirs"],
        "theirs kept, ours not forced in"
    );
    // With the fresh object: ours is added after theirs.
    assert_eq!(run(&cms, "fin-others", &Calls::default(), false).await.unwrap(), Action::await_change());
    assert_eq!(cms.get("fin-others").await.unwrap().finalizers(), ["kit.example.com/theirs", FIN]);
    // Deleting: our cleanup removes only ours.
    cms.delete("fin-others", &DeleteParams::default()).await.unwrap();
    let calls = Calls::default();
    assert_eq!(run(&cms, "fin-others", &calls, false).await.unwrap(), LATER);
    assert_eq!(calls.cleanup.load(Ordering::SeqCst), 1);
    let left = cms.get("fin-others").await.unwrap();
    assert_eq!(left.finalizers(), ["kit.example.com/theirs"]);
    assert!(left.meta().deletion_timestamp.is_some());
    cms.patch("fin-others", &PatchParams::default(), &Patch::Merge(json!({"metadata": {"finalizers": null}})))
        .await
        .unwrap();
}

async fn finalizer_cleanup_runs_before_removal_and_the_deletion_completes(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    cms.create(&PostParams::default(), &configmap(&ctx, "fin-del", &[])).await.unwrap();
    let calls = Calls::default();
    assert_eq!(run(&cms, "fin-del", &calls, false).await.unwrap(), Action::await_change());
    let uid = cms.get("fin-del").await.unwrap().uid().unwrap().to_owned();
    cms.delete("fin-del", &DeleteParams::default()).await.unwrap();
    assert!(cms.get("fin-del").await.unwrap().meta().deletion_timestamp.is_some(), "held by the finalizer");
    assert_eq!(run(&cms, "fin-del", &calls, false).await.unwrap(), LATER);
    assert_eq!(calls.cleanup.load(Ordering::SeqCst), 1);
    ctx.within(STEP, "the deletion", await_condition(cms.clone(), "fin-del", conditions::is_deleted(&uid)))
        .await
        .unwrap();
    assert!(cms.get_opt("fin-del").await.unwrap().is_none());
}

async fn finalizer_cleanup_failure_keeps_the_object(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    cms.create(&PostParams::default(), &configmap(&ctx, "fin-fail", &[])).await.unwrap();
    assert_eq!(run(&cms, "fin-fail", &Calls::default(), false).await.unwrap(), Action::await_change());
    cms.delete("fin-fail", &DeleteParams::default()).await.unwrap();
    let err = run(&cms, "fin-fail", &Calls::default(), true).await.unwrap_err();
    assert!(matches!(err, FinalizerError::CleanupFailed(_)), "{err}");
    assert_eq!(cms.get("fin-fail").await.unwrap().finalizers(), [FIN], "the deletion waits for the cleanup");
    // The next try succeeds.
    assert_eq!(run(&cms, "fin-fail", &Calls::default(), false).await.unwrap(), LATER);
    ctx.eventually(STEP, "the deletion completes", || async { cms.get_opt("fin-fail").await.unwrap().is_none() }).await;
}

async fn await_condition_sees_a_change_and_a_deletion(ctx: Ctx) {
    let cms: Api<ConfigMap> = ctx.api();
    let created = cms.create(&PostParams::default(), &configmap(&ctx, "waited", &[])).await.unwrap();
    let has_key = |cm: Option<&ConfigMap>| cm.and_then(|c| c.data.as_ref()).is_some_and(|d| d.contains_key("ready"));
    let patch = async {
        ctx.client.transport().sleep_until(ctx.client.now() + Duration::from_millis(300)).await;
        cms.patch("waited", &PatchParams::default(), &Patch::Merge(json!({"data": {"ready": "yes"}}))).await.unwrap()
    };
    let (seen, _) = ctx.within(STEP, "the change", join(await_condition(cms.clone(), "waited", has_key), patch)).await;
    assert_eq!(seen.unwrap().unwrap().data.unwrap()["ready"], "yes");
    // Already true: at once.
    assert!(
        ctx.within(STEP, "a condition already true", await_condition(cms.clone(), "waited", has_key))
            .await
            .unwrap()
            .is_some()
    );
    let uid = created.uid().unwrap().to_owned();
    let delete = async {
        ctx.client.transport().sleep_until(ctx.client.now() + Duration::from_millis(300)).await;
        cms.delete("waited", &DeleteParams::default()).await.unwrap()
    };
    let (gone, _) = ctx
        .within(
            STEP,
            "the deletion",
            join(await_condition(cms.clone(), "waited", conditions::is_deleted(&uid)), delete),
        )
        .await;
    assert!(gone.unwrap().is_none());
}

async fn events_are_created_then_aggregated_into_a_series(ctx: Ctx) {
    use k8s_openapi::api::events::v1::Event;
    let cms: Api<ConfigMap> = ctx.api();
    let cm = cms.create(&PostParams::default(), &configmap(&ctx, "evented", &[])).await.unwrap();
    let recorder = Recorder::new(ctx.client.clone(), Reporter::new("kit.example.com/gen", "kit-0"));
    let input = EventInput::new(EventType::Normal, "Generated", "Reconcile").note("wrote 0 keys");
    let regarding = object_reference(&cm, &());
    assert_eq!(recorder.publish(&input, &regarding).await, Published::Created);
    assert_eq!(recorder.publish(&input, &regarding).await, Published::Series);
    assert_eq!(recorder.publish(&input, &regarding).await, Published::Series);
    let events: Api<Event> = ctx.api();
    let list = events.list(&Default::default()).await.unwrap();
    let mine: Vec<&Event> =
        list.iter().filter(|e| e.regarding.as_ref().and_then(|r| r.uid.as_deref()) == cm.uid()).collect();
    assert_eq!(mine.len(), 1, "one Event for the three occurrences");
    let event = mine[0];
    assert_eq!(event.series.as_ref().map(|s| s.count), Some(3));
    assert_eq!(event.reporting_controller.as_deref(), Some("kit.example.com/gen"));
    assert_eq!(event.reason.as_deref(), Some("Generated"));
    assert_eq!(event.type_.as_deref(), Some("Normal"));
}
