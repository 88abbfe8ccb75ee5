//! Why a patch or an apply failed: [`PatchError`] for JSON patch and strategic merge patch,
//! [`ApplyError`] (with the real server's conflict messages) for server-side apply, and
//! [`InvalidManagedFields`].

use std::collections::BTreeMap;

use kube_proto::error::StatusCause;

use super::Operation;
use super::field_set::go_quote;

/// Why a JSON patch or a strategic merge patch could not be applied.
///
/// The real server answers a failed JSON patch with a generic 422 and no details; the variants
/// say more for tests and logs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatchError {
    /// The JSON patch document is not an array of operations.
    #[error("a JSON patch must be an array of operations")]
    NotAnArray,
    /// An operation is malformed: not an object, or missing `op`, `path`, `from` or `value`, or
    /// moving a value into one of its own children.
    #[error("operation {index}: {reason}")]
    InvalidOperation {
        /// The index of the operation in the patch.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// An operation's `op` is not one of add, remove, replace, move, copy and test.
    #[error("operation {index}: unknown op {op:?}")]
    UnknownOp {
        /// The index of the operation in the patch.
        index: usize,
        /// The unknown `op`.
        op: String,
    },
    /// A `path` or `from` is not a JSON pointer (RFC 6901): not empty and not starting with `/`,
    /// or with a `~` not followed by `0` or `1`.
    #[error("operation {index}: invalid JSON pointer {pointer:?}")]
    InvalidPointer {
        /// The index of the operation in the patch.
        index: usize,
        /// The pointer as given.
        pointer: String,
    },
    /// A location the operation needs does not exist: a missing member or parent, an array
    /// index out of bounds or not a number, or `-` where an existing element is needed.
    #[error("operation {index}: path {path:?} not found")]
    PathNotFound {
        /// The index of the operation in the patch.
        index: usize,
        /// The pointer that does not resolve.
        path: String,
    },
    /// A `test` operation found a different value (or none).
    #[error("operation {index}: test failed at {path:?}")]
    TestFailed {
        /// The index of the operation in the patch.
        index: usize,
        /// The tested pointer.
        path: String,
    },
    /// A strategic merge patch that is not a JSON object.
    #[error("a strategic merge patch must be a JSON object")]
    NotAnObject,
    /// A strategic merge patch element of a keyed list lacks the list's merge key.
    #[error("{path}: a list element does not contain the merge key {key:?}")]
    MissingMergeKey {
        /// The list's dotted path.
        path: String,
        /// The merge key.
        key: String,
    },
    /// A malformed strategic merge patch directive (`$patch`, `$retainKeys`,
    /// `$setElementOrder/…`, `$deleteFromPrimitiveList/…`).
    #[error("{path}: invalid patch directive {directive}")]
    InvalidDirective {
        /// The dotted path of the map holding the directive (empty at the top).
        path: String,
        /// The directive and its value.
        directive: String,
    },
}

/// Why a server-side apply was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// Fields owned by other managers would change (409 Conflict unless `force`). The Display
    /// form is the real server's `Status` message.
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration cannot be applied (not an object, a keyed list item without its key,
    /// duplicate keys in a list). The real server answers these with 422 Invalid or 400.
    #[error("{0}")]
    Invalid(String),
}

impl ApplyError {
    /// The `details.causes` of the real server's 409 `Status`: one `FieldManagerConflict` per
    /// conflicting field (empty for [`ApplyError::Invalid`]).
    pub fn causes(&self) -> Vec<StatusCause> {
        match self {
            ApplyError::Conflicts(c) => c.iter().map(Conflict::cause).collect(),
            ApplyError::Invalid(_) => Vec::new(),
        }
    }
}

/// A field another manager owns that an apply would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// How it came to own the field.
    pub operation: Operation,
    /// The other manager's entry's apiVersion.
    pub api_version: String,
    /// The subresource the other manager wrote through, if any.
    pub subresource: Option<String>,
    /// The field, rendered as the real server does: `.data.shared`,
    /// `.spec.containers[name="app"].image`, `.metadata.finalizers[="x"]`.
    pub field_path: String,
}

impl Conflict {
    /// The manager as the real server names it in messages: `"a"`, `"a" with subresource
    /// "scale"`, and for Update managers with `using <apiVersion>` appended.
    pub fn manager_description(&self) -> String {
        let mut s = go_quote(&self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(" with subresource ");
            s.push_str(&go_quote(sub));
        }
        if self.operation == Operation::Update {
            s.push_str(" using ");
            s.push_str(&self.api_version);
        }
        s
    }

    /// The `Status` cause: reason `FieldManagerConflict`, message `conflict with "a"`, field
    /// `.data.shared`.
    pub fn cause(&self) -> StatusCause {
        StatusCause {
            reason: "FieldManagerConflict".into(),
            message: format!("conflict with {}", self.manager_description()),
            field: self.field_path.clone(),
        }
    }
}

fn conflicts_message(conflicts: &[Conflict]) -> String {
    match conflicts {
        [] => "Apply failed with 0 conflicts".into(),
        [c] => format!("Apply failed with 1 conflict: conflict with {}: {}", c.manager_description(), c.field_path),
        _ => {
            // Grouped by manager, managers sorted, as the real server prints them.
            let mut groups: BTreeMap<(String, Operation, String, Option<String>), Vec<&Conflict>> = BTreeMap::new();
            for c in conflicts {
                groups
                    .entry((c.manager.clone(), c.operation, c.api_version.clone(), c.subresource.clone()))
                    .or_default()
                    .push(c);
            }
            let mut lines = Vec::new();
            for group in groups.values() {
                if let Some(first) = group.first() {
                    lines.push(format!("conflicts with {}:", first.manager_description()));
                }
                for c in group {
                    lines.push(format!("- {}", c.field_path));
                }
            }
            format!("Apply failed with {} conflicts: {}", conflicts.len(), lines.join("\n"))
        }
    }
}

/// `metadata.managedFields` that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid managedFields: {0}")]
pub struct InvalidManagedFields(pub String);
