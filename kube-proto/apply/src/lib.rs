//! Apply configurations for every built-in kind of Kubernetes 1.36, generated from the OpenAPI
//! document of a real kube-apiserver (see `kube-proto/apply/gen`).
//!
//! Server-side apply makes the sender the owner of every field it sends. A `k8s_openapi` struct
//! serializes its required fields even when they hold nothing the sender means (an empty
//! `selector`, an empty `template`), so a field manager that applies one claims fields it never
//! meant to own. An apply configuration holds only what is set: every field is an `Option`,
//! left out of the JSON when `None`.
//!
//! ```
//! use kube_proto_apply::api::apps::v1::{DeploymentApplyConfiguration, DeploymentSpecApplyConfiguration};
//!
//! let scale = DeploymentApplyConfiguration::new("web", "default")
//!     .with_spec(DeploymentSpecApplyConfiguration::new().with_replicas(3));
//! assert_eq!(
//!     serde_json::to_value(&scale).unwrap(),
//!     serde_json::json!({
//!         "apiVersion": "apps/v1",
//!         "kind": "Deployment",
//!         "metadata": {"name": "web", "namespace": "default"},
//!         "spec": {"replicas": 3},
//!     })
//! );
//! ```
//!
//! - Types are named after the schema's with `ApplyConfiguration` appended, in modules laid out
//!   as k8s-openapi's (`api::core::v1::PodSpecApplyConfiguration`,
//!   `apimachinery::pkg::apis::meta::v1::ObjectMetaApplyConfiguration`).
//! - Kinds have a constructor that sets `apiVersion`, `kind`, `metadata.name` and (for
//!   namespaced kinds) `metadata.namespace`; every type has `new()` and `Default`.
//! - `with_<field>(value)` sets a field. A list field has `with_<field>(values)`, which appends,
//!   and a setter for one item named after the singular (`with_container`), or
//!   `with_<field>_item` where the name has no plural; a map field has `with_<field>(entries)`
//!   and `with_<singular>(key, value)` (or `with_<field>_entry`).
//! - Quantities, int-or-strings, times and byte strings are k8s-openapi's types; free-form JSON
//!   (`RawExtension`, a CRD's schema) is a `serde_json::Value`.
//! - They deserialize too: `kube_proto::managed_fields::extract` reads back, into one of these, the
//!   fields one manager owns in a live object.
//!
//! Sending one: `Patch::Apply(&config)` with `PatchParams::apply(manager)`, or kube-runtime's
//! `Api::apply(name, &config, manager)`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
// The schema's descriptions are prose with bare URLs and brackets, not rustdoc markup.
#![allow(rustdoc::bare_urls, rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]
#![allow(clippy::doc_lazy_continuation, clippy::doc_overindented_list_items, clippy::new_without_default)]

mod generated;

pub use generated::*;
