//! A finalizer that holds an object until its cleanup has run, as controllers need for
//! external resources: [`finalizer`] adds it, runs the reconcile's [`Event::Apply`] while the
//! object lives and [`Event::Cleanup`] once it is being deleted, then removes it so the
//! deletion completes.
//!
//! Every change of `metadata.finalizers` is a JSON patch whose `test` op checks the list it read,
//! so a concurrent writer's finalizers are never lost: when the list changed meanwhile the patch
//! is refused (422 or 409), nothing is written, and the watch brings the newer object to
//! reconcile again. An object deleted meanwhile (404) needs nothing more.
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use k8s_openapi::api::core::v1::ConfigMap;
//! # use kube_runtime::Api;
//! use kube_runtime::controller::Action;
//! use kube_runtime::finalizer::{Event, finalizer};
//!
//! # async fn reconcile(api: Api<ConfigMap>, cm: Arc<ConfigMap>) -> Result<Action, Box<dyn std::error::Error>> {
//! let action = finalizer(&api, "example.com/cleanup", cm, |event| async move {
//!     match event {
//!         Event::Apply(cm) => Ok::<_, std::io::Error>(Action::await_change()),   // make the world match `cm`
//!         Event::Cleanup(cm) => Ok(Action::await_change()), // remove what `cm` made outside the cluster
//!     }
//! })
//! .await?;
//! # Ok(action) }
//! ```

use std::future::Future;
use std::sync::Arc;

use kube_proto::{Patch, PatchParams, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::controller::Action;
use crate::{Api, Error};

/// What the reconcile is asked to do.
#[derive(Debug)]
pub enum Event<K> {
    /// The object lives (and holds the finalizer): make the world match it. Must be idempotent.
    Apply(Arc<K>),
    /// The object is being deleted: undo what `Apply` did outside the cluster. The finalizer is
    /// removed once this succeeds. Must be idempotent.
    Cleanup(Arc<K>),
}

/// Why the finalizer helper failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FinalizerError<E: std::error::Error + 'static> {
    /// The reconcile's `Apply` failed.
    #[error("apply failed: {0}")]
    ApplyFailed(#[source] E),
    /// The reconcile's `Cleanup` failed: the finalizer stays, the deletion waits.
    #[error("cleanup failed: {0}")]
    CleanupFailed(#[source] E),
    /// The finalizer could not be added.
    #[error("adding the finalizer failed: {0}")]
    AddFinalizer(#[source] Error),
    /// The finalizer could not be removed.
    #[error("removing the finalizer failed: {0}")]
    RemoveFinalizer(#[source] Error),
    /// The object has no name.
    #[error("the object has no name")]
    UnnamedObject,
    /// The finalizer name is not a qualified name (`domain/name`), which the API server refuses.
    #[error("invalid finalizer name {0:?}: finalizers are qualified names such as example.com/cleanup")]
    InvalidFinalizer(String),
}

/// Runs `reconcile` for `object` under the finalizer `name` (see the [module docs](self)).
///
/// `api` must address the object's namespace. When the finalizer is missing on a live object it
/// is added and the reconcile runs on the next change that the patch itself causes.
pub async fn finalizer<K, E, F, Fut>(
    api: &Api<K>,
    name: &str,
    object: Arc<K>,
    reconcile: F,
) -> Result<Action, FinalizerError<E>>
where
    K: Resource + DeserializeOwned + Clone + Send + 'static,
    K::DynamicType: Clone,
    E: std::error::Error + 'static,
    F: FnOnce(Event<K>) -> Fut,
    Fut: Future<Output = Result<Action, E>>,
{
    if !name.contains('/') || name.starts_with('/') || name.ends_with('/') {
        return Err(FinalizerError::InvalidFinalizer(name.to_owned()));
    }
    let object_name = object.meta().name.clone().filter(|n| !n.is_empty()).ok_or(FinalizerError::UnnamedObject)?;
    let finalizers = object.finalizers();
    let held = finalizers.iter().position(|f| f == name);
    let deleting = object.meta().deletion_timestamp.is_some();
    match (held, deleting) {
        (Some(_), false) => reconcile(Event::Apply(object)).await.map_err(FinalizerError::ApplyFailed),
        (Some(index), true) => {
            let action = reconcile(Event::Cleanup(object.clone())).await.map_err(FinalizerError::CleanupFailed)?;
            let ops = json!([
                {"op": "test", "path": format!("/metadata/finalizers/{index}"), "value": name},
                {"op": "remove", "path": format!("/metadata/finalizers/{index}")},
            ]);
            match patch(api, &object_name, ops).await {
                Ok(()) | Err(Changed::Meanwhile) => Ok(action),
                Err(Changed::Failed(e)) => Err(FinalizerError::RemoveFinalizer(e)),
            }
        }
        // Nothing of ours to clean up: the deletion goes on without us.
        (None, true) => Ok(Action::await_change()),
        (None, false) => {
            let ops = if finalizers.is_empty() {
                // `test` of an absent list against null: nobody added one meanwhile.
                json!([
                    {"op": "test", "path": "/metadata/finalizers", "value": Value::Null},
                    {"op": "add", "path": "/metadata/finalizers", "value": [name]},
                ])
            } else {
                json!([
                    {"op": "test", "path": "/metadata/finalizers", "value": finalizers},
                    {"op": "add", "path": "/metadata/finalizers/-", "value": name},
                ])
            };
            match patch(api, &object_name, ops).await {
                // The patch is a change: the watch brings the object back, finalizer held.
                Ok(()) | Err(Changed::Meanwhile) => Ok(Action::await_change()),
                Err(Changed::Failed(e)) => Err(FinalizerError::AddFinalizer(e)),
            }
        }
    }
}

enum Changed {
    /// The object changed or went away meanwhile: a newer version will be reconciled.
    Meanwhile,
    Failed(Error),
}

async fn patch<K>(api: &Api<K>, name: &str, ops: impl Serialize) -> Result<(), Changed>
where
    K: Resource + DeserializeOwned + Clone + Send + 'static,
    K::DynamicType: Clone,
{
    let ops = serde_json::to_value(ops)
        .map_err(|e| Changed::Failed(Error::Request(kube_proto::RequestError::SerializeBody(e.to_string()))))?;
    match api.patch(name, &PatchParams::default(), &Patch::Json(ops)).await {
        Ok(_) => Ok(()),
        Err(Error::Api(e)) if e.is_not_found() || e.is_conflict() || e.http_status() == 422 => {
            tracing::debug!(name, status = e.http_status(), "finalizer patch refused: the object changed meanwhile");
            Err(Changed::Meanwhile)
        }
        Err(e) => Err(Changed::Failed(e)),
    }
}
