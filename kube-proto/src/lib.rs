//! The pure protocol core of a Kubernetes client. It does no IO, reads no clock, touches no
//! file or environment and spawns nothing: callers hand it bytes and values, and it hands back
//! requests to send and typed values parsed from what came back. That makes it usable from any
//! async runtime or HTTP stack, and testable offline and deterministically.
//!
//! - [`Resource`]: what a kind is (every `k8s_openapi` type, [`DynamicObject`] with an
//!   [`ApiResource`], [`PartialObjectMeta`]).
//! - [`Request`]: every verb as an `http::Request<Vec<u8>>`, with the parameter types
//!   [`ListParams`], [`WatchParams`], [`PostParams`], [`PatchParams`], [`DeleteParams`],
//!   [`LogParams`], [`AttachParams`].
//! - [`Response`]: objects, lists, delete outcomes and typed errors ([`ResponseError`],
//!   [`Status`], [`Reason`]).
//! - [`WatchDecoder`]: watch bodies in any chunking to [`WatchEvent`]s.
//! - [`discovery`]: what a server serves (aggregated or legacy discovery), and what a person
//!   means by `po` or `cronjobs.v1.batch`; [`manifest`]: YAML files to objects, in the order to
//!   apply them.
//! - [`websocket`]: the client side of RFC 6455 (handshake check, frames, pings, close) and
//!   [`channel`]: exec, attach ([`channel::ExecSession`]) and port-forward
//!   ([`channel::PortForwardSession`]) over it, as bytes in and bytes out.
//!
//! Building and checking a request needs no runtime:
//!
//! ```
//! use k8s_openapi::api::core::v1::Pod;
//! use kube_proto::{Patch, PatchParams, Request};
//!
//! let pods = Request::namespaced::<Pod>("default");
//! let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "blog"}});
//! let req = pods.patch("blog", &PatchParams::apply("blog-ctl").force(), &Patch::Apply(&pod)).unwrap();
//! assert_eq!(req.method(), "PATCH");
//! assert_eq!(req.uri(), "/api/v1/namespaces/default/pods/blog?force=true&fieldManager=blog-ctl");
//! assert_eq!(req.headers()["content-type"], "application/apply-patch+yaml");
//!
//! // Combinations the API server would reject are errors, not requests:
//! let err = pods.patch("blog", &PatchParams::default(), &Patch::Apply(&pod)).unwrap_err();
//! assert_eq!(err, kube_proto::RequestError::MissingFieldManager);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod backoff;
pub mod channel;
pub mod compact;
pub mod conditions;
pub mod config;
pub mod crd;
pub mod direct_json;
pub mod discovery;
pub mod error;
pub mod events;
pub mod http1;
pub mod lease;
pub mod managed_fields;
pub mod manifest;
pub mod params;
#[cfg(feature = "protobuf")]
pub mod protobuf;
pub mod proxy;
pub mod request;
pub mod resource;
pub mod response;
pub mod retry;
pub mod rng;
pub mod selector;
pub mod shard;
pub mod spdy;
pub mod store;
pub mod watch;
pub mod watcher;
pub mod websocket;
pub mod workqueue;

pub use error::{ApiError, Reason, RequestError, ResponseError, Status, StatusCause, StatusDetails};
pub use params::{
    AttachParams, DeleteParams, EvictParams, GetParams, ListParams, LogParams, Patch, PatchParams, PostParams,
    Preconditions, PropagationPolicy, Selectors, ValidationDirective, VersionMatch, WatchParams,
};
pub use request::Request;
pub use resource::{ApiResource, DynamicObject, PartialObjectMeta, Resource, ResourceExt, TypeMeta};
pub use response::{DeleteResponse, ListMeta, ObjectList, Response};
pub use watch::{Bookmark, WatchDecodeError, WatchDecoder, WatchEvent};

/// `#[derive(CustomResource)]`: a custom resource kind and its CustomResourceDefinition from a
/// spec struct (see [`crd`]).
#[cfg(feature = "derive")]
pub use kube_proto_derive::CustomResource;
/// schemars 1.x, which `#[derive(CustomResource)]` builds schemas with.
#[cfg(feature = "derive")]
pub use schemars;

/// Apply configurations of every built-in kind (the `kube-proto-apply` crate), with the `apply`
/// feature: see [`managed_fields::extract`] to read one back from an object.
#[cfg(feature = "apply")]
pub use kube_proto_apply as apply;
