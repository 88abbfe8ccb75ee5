//! What a reconcile asks for next ([`Action`]). The controller that runs reconciles lands here
//! too; the [`finalizer`](crate::finalizer) helper already speaks in these terms.

use std::time::Duration;

/// What a reconcile (or an error policy) asks for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Action {
    requeue_after: Option<Duration>,
}

impl Action {
    /// Reconcile again after `duration`, or sooner if the object changes.
    pub const fn requeue(duration: Duration) -> Self {
        Action { requeue_after: Some(duration) }
    }

    /// Reconcile again only when the object (or something mapped to it) changes.
    pub const fn await_change() -> Self {
        Action { requeue_after: None }
    }

    /// When to reconcile again without a change, if at all.
    pub const fn requeue_after(&self) -> Option<Duration> {
        self.requeue_after
    }
}
