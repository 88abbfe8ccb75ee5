//! Waiting for an object to reach a condition: [`await_condition`] watches one object (by name)
//! until a [`Condition`] holds, and [`conditions`] has the common ones.
//!
//! ```no_run
//! # async fn demo(client: kube_runtime::Client) -> Result<(), kube_runtime::Error> {
//! use k8s_openapi::api::core::v1::Pod;
//! use kube_runtime::Api;
//! use kube_runtime::wait::{await_condition, conditions};
//!
//! let pods: Api<Pod> = Api::default_namespaced(client);
//! let running = await_condition(pods, "blog", conditions::is_pod_running()).await?;
//! # Ok(()) }
//! ```

use futures_util::StreamExt;
use kube_proto::Resource;
use serde::de::DeserializeOwned;

use crate::watcher::{Config, Event, watcher};
use crate::{Api, Error};

/// A predicate on an object, or on its absence (`None`: not there, or deleted).
pub trait Condition<K> {
    /// Whether the condition holds.
    fn matches(&self, object: Option<&K>) -> bool;
}

impl<K, F: Fn(Option<&K>) -> bool> Condition<K> for F {
    fn matches(&self, object: Option<&K>) -> bool {
        self(object)
    }
}

/// Watches the object `name` of `api` until `condition` holds, and returns it as it was then
/// (`None` if the condition held of its absence). Transient errors are retried by the watcher;
/// the first state is judged once the initial list is complete, so a condition already true
/// returns at once. It never gives up on its own: bound it with a timeout of your executor.
pub async fn await_condition<K>(api: Api<K>, name: &str, condition: impl Condition<K>) -> Result<Option<K>, Error>
where
    K: Resource + DeserializeOwned + Clone + Send + 'static,
    K::DynamicType: Clone,
{
    let config = Config::default().fields(&format!("metadata.name={name}"));
    let mut events = Box::pin(watcher(api, config));
    let mut current: Option<K> = None;
    let mut listing = false;
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Init) => {
                listing = true;
                current = None;
            }
            Ok(Event::InitApply(k)) => current = Some(k),
            Ok(Event::InitDone) => listing = false,
            Ok(Event::Apply(k)) => current = Some(k),
            Ok(Event::Delete(_)) => current = None,
            // The watcher retries on its own; a request it could not build is final.
            Err(Error::Request(e)) => return Err(Error::Request(e)),
            Err(e) => {
                tracing::debug!(error = %e, name, "await_condition: the watcher goes on after an error");
                continue;
            }
        }
        if !listing && condition.matches(current.as_ref()) {
            return Ok(current);
        }
    }
    Ok(current)
}

/// The common conditions.
pub mod conditions {
    use k8s_openapi::api::batch::v1::Job;
    use k8s_openapi::api::core::v1::Pod;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube_proto::{Resource, ResourceExt};

    use super::Condition;

    /// The object with this uid is gone (deleted, or replaced by a new one of the same name).
    pub fn is_deleted<K: Resource>(uid: &str) -> impl Condition<K> + use<K> {
        let uid = uid.to_owned();
        move |object: Option<&K>| object.is_none_or(|k| k.uid() != Some(uid.as_str()))
    }

    /// The Pod is in phase `Running`.
    pub fn is_pod_running() -> impl Condition<Pod> {
        |pod: Option<&Pod>| pod.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref()) == Some("Running")
    }

    /// The CustomResourceDefinition's `Established` condition is `True`: its kind is served.
    pub fn is_crd_established() -> impl Condition<CustomResourceDefinition> {
        |crd: Option<&CustomResourceDefinition>| {
            crd.and_then(|c| c.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
        }
    }

    /// The Job's `Complete` condition is `True`.
    pub fn is_job_completed() -> impl Condition<Job> {
        |job: Option<&Job>| {
            job.and_then(|j| j.status.as_ref())
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Complete" && c.status == "True"))
        }
    }
}
