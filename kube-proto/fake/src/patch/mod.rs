//! The patch formats and the field ownership of the fake API server, as pure functions over
//! [`serde_json::Value`]:
//!
//! - [`merge_patch`]: JSON merge patch (RFC 7386, `application/merge-patch+json`).
//! - [`json_patch`]: JSON patch (RFC 6902, `application/json-patch+json`), atomic.
//! - [`strategic_merge_patch`]: strategic merge patch of built-in kinds
//!   (`application/strategic-merge-patch+json`), with list merge keys from [`KindSchema`] (the
//!   real server's OpenAPI schema, for every built-in kind of Kubernetes 1.36) or, for kinds it
//!   does not have, [`builtin_list_key`].
//! - [`apply`] and [`record_update`]: server-side apply and the bookkeeping of every other write,
//!   tracked in [`FieldOwners`] and stored as `metadata.managedFields` (`FieldsV1`).
//!
//! # Where this is simpler than kube-apiserver
//!
//! - Lists and atomic maps and structs follow the real schema ([`KindSchema`]:
//!   `x-kubernetes-list-type`/`list-map-keys` and `x-kubernetes-map-type` for apply,
//!   `patchStrategy`/`patchMergeKey` for strategic merge patch), but nothing else of it does
//!   (defaults, validation). A list's kind comes from a list-key function of the list's dotted
//!   path (field names without indices, e.g. `spec.template.spec.containers`): a key makes it a
//!   map-list merged element-wise by that key (several key fields may be given comma-separated,
//!   `"containerPort,protocol"`; strategic merge patch uses the first), [`MERGE_BY_VALUE`] (or a
//!   key on a list of scalars) makes it a set, and `None` (or [`ATOMIC`]) makes it atomic
//!   (replaced whole, owned as one leaf). A JSON object is a granular map unless the function
//!   says [`ATOMIC`] for its path (for the items of a list: for `path[]`); server-side apply and
//!   the bookkeeping of other writes then apply, compare and own it whole (`f:selector: {}` for
//!   a Deployment's `LabelSelector`, `k:{"uid":..}: {}` for an owner reference), as the real
//!   server does. Strategic merge patch merges such objects key by key, as the real one does.
//!   Custom resources take the same rules from their CRD's structural schema
//!   ([`StructuralRules`]; a list without `x-kubernetes-list-type` is atomic there).
//! - Objects are schemaless JSON. On create, the real server compares against the Go zero value
//!   of a typed object, so a built-in's `spec` is not reported as added; here, as the real server
//!   does for custom resources, parents that appear are owned too (`f:spec: {".": {}, ...}`).
//! - Apply merges and compares JSON values as they are: no defaulting, no conversion between
//!   versions, no validation beyond merge keys and duplicate list keys. `null` in an apply
//!   configuration removes the field (and the applier owns it), as it ends up for typed objects.
//! - Fields emptied by apply's removal of no-longer-applied fields disappear with their now empty
//!   parent maps and lists (typed built-in objects omit them the same way).
//! - Keyed list items no longer applied are kept if another manager still owns a field inside
//!   them (the real server removes them unless the item itself is owned by someone).
//! - Not modelled: the `before-first-apply` manager for objects created without managed fields,
//!   the cap of ten `Update` entries (`ancient-changes`), `last-applied-configuration`
//!   upgrades, `$retainKeys` validation, and the version conversion of other managers' sets.
//! - Conflict messages are rendered as the real server renders them; the order of several
//!   conflicts is sorted (manager, then field), where the real server's is unspecified.

mod apply;
#[cfg(test)]
mod atomic_tests;
mod compare;
mod error;
mod field_set;
mod json;
mod managed_fields;
mod merge;
mod schema;
mod schema_rules;
mod strategic;
mod structural;
#[cfg(test)]
mod test_support;

pub use apply::{apply, apply_as};
pub use error::{ApplyError, Conflict, InvalidManagedFields, PatchError};
pub use field_set::FieldSet;
pub use json::json_patch;
pub use managed_fields::{FieldOwners, ManagedFieldsEntry, ManagerRef, Operation, record_update, record_update_as};
pub use merge::merge_patch;
pub use schema::KindSchema;
pub use strategic::{builtin_list_key, strategic_merge_patch};
pub use structural::StructuralRules;

/// What a list-key function returns for a list of scalars that merges as a set, by value (like
/// `metadata.finalizers`, `patchStrategy: merge` without a key in the real schema).
pub const MERGE_BY_VALUE: &str = "$value";

/// What a list-key function returns for a map or struct that server-side apply treats as one
/// unit (`x-kubernetes-map-type: atomic`: a `LabelSelector`, `PodSpec.nodeSelector`), and, asked
/// about `path[]`, for a list whose items each are one unit (`metadata.ownerReferences`).
pub const ATOMIC: &str = "$atomic";

/// The dotted path of `field` inside `path` (field names without indices), as list-key
/// functions take it.
fn join(path: &str, field: &str) -> String {
    if path.is_empty() { field.to_owned() } else { format!("{path}.{field}") }
}
