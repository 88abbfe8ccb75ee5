//! `status.conditions` (`meta.v1.Condition`), kept as apimachinery's `meta.SetStatusCondition`
//! keeps them: one condition per type; `lastTransitionTime` moves only when the status changes;
//! reason, message and `observedGeneration` follow the latest update. Time is an argument.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use kube_proto::conditions::{ConditionUpdate, find, set};
//!
//! let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
//! let mut conditions = Vec::new();
//! let ready = ConditionUpdate::new("Ready", false).reason("Creating").observed_generation(1);
//! assert!(set(&mut conditions, ready, t0));
//! // The same status an hour later: the message changes, the transition time does not.
//! let later = t0 + Duration::from_secs(3600);
//! let ready = ConditionUpdate::new("Ready", false).reason("Creating").message("2 of 3").observed_generation(1);
//! assert!(set(&mut conditions, ready, later));
//! assert_eq!(find(&conditions, "Ready").unwrap().last_transition_time.0.as_second(), 1_800_000_000);
//! ```

use std::time::SystemTime;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The status of a condition: `True`, `False` or `Unknown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionStatus {
    /// `True`.
    True,
    /// `False`.
    False,
    /// `Unknown`.
    Unknown,
}

impl ConditionStatus {
    /// As the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(b: bool) -> Self {
        if b { ConditionStatus::True } else { ConditionStatus::False }
    }
}

/// A condition to set: what the controller observed, without the transition time (which
/// [`set`] decides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionUpdate {
    /// `type`, such as `Ready`.
    pub type_: String,
    /// `status`.
    pub status: ConditionStatus,
    /// `reason`: a CamelCase word (the API refuses an empty one; [`set`] writes `Unknown`
    /// for an empty reason).
    pub reason: String,
    /// `message`, for people.
    pub message: String,
    /// `observedGeneration`: the object's `metadata.generation` this was decided on.
    pub observed_generation: Option<i64>,
}

impl ConditionUpdate {
    /// A condition of `type_` with `status` (a `bool`, or a [`ConditionStatus`]).
    pub fn new(type_: &str, status: impl Into<ConditionStatus>) -> Self {
        ConditionUpdate {
            type_: type_.to_owned(),
            status: status.into(),
            reason: String::new(),
            message: String::new(),
            observed_generation: None,
        }
    }

    /// Sets the reason.
    #[must_use]
    pub fn reason(mut self, reason: &str) -> Self {
        self.reason = reason.to_owned();
        self
    }

    /// Sets the message.
    #[must_use]
    pub fn message(mut self, message: &str) -> Self {
        self.message = message.to_owned();
        self
    }

    /// Sets the generation observed.
    #[must_use]
    pub fn observed_generation(mut self, generation: i64) -> Self {
        self.observed_generation = Some(generation);
        self
    }
}

/// The condition of `type_`, if there is one.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of `type_` is there with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

/// Sets a condition at `now`: added when its type is new, else updated in place, its
/// `lastTransitionTime` moved to `now` only when the status changes. Returns whether anything
/// changed (so that an unchanged status is not written back).
pub fn set(conditions: &mut Vec<Condition>, update: ConditionUpdate, now: SystemTime) -> bool {
    let reason = if update.reason.is_empty() { "Unknown".to_owned() } else { update.reason };
    let status = update.status.as_str();
    let Some(existing) = conditions.iter_mut().find(|c| c.type_ == update.type_) else {
        conditions.push(Condition {
            last_transition_time: time(now),
            message: update.message,
            observed_generation: update.observed_generation,
            reason,
            status: status.to_owned(),
            type_: update.type_,
        });
        return true;
    };
    let mut changed = false;
    if existing.status != status {
        existing.status = status.to_owned();
        existing.last_transition_time = time(now);
        changed = true;
    }
    if existing.reason != reason {
        existing.reason = reason;
        changed = true;
    }
    if existing.message != update.message {
        existing.message = update.message;
        changed = true;
    }
    if existing.observed_generation != update.observed_generation {
        existing.observed_generation = update.observed_generation;
        changed = true;
    }
    changed
}

/// Removes the condition of `type_`; returns whether there was one.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// A merge patch of the status subresource that writes `conditions` (the whole list, as
/// computed from the object just read, so other types are kept).
pub fn status_patch(conditions: &[Condition]) -> serde_json::Value {
    serde_json::json!({ "status": { "conditions": conditions } })
}

/// `now`, to the second, as the API's `Time` is (RFC 3339 without fractions).
fn time(now: SystemTime) -> Time {
    let secs = match now.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    };
    Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
}
