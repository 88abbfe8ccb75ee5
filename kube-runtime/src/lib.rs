//! The executor-agnostic async layer over [`kube_proto`]: [`Client`], [`Api`], the
//! [`watcher()`](watcher::watcher) stream, and the small [`Transport`] trait that
//! `transport-hyper`, `transport-asyncstd` and users' own HTTP stacks implement. It depends on
//! `futures` only, never on an executor.
//!
//! ```
//! # #[cfg(feature = "fake")] {
//! use futures_util::StreamExt;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use kube_runtime::fake::FakeTransport;
//! use kube_runtime::{Api, Client};
//! use kube_proto::{PostParams, ResourceExt};
//!
//! futures_executor::block_on(async {
//!     let (transport, config) = FakeTransport::new();
//!     let client = Client::new(transport, config);
//!     let cms: Api<ConfigMap> = Api::default_namespaced(client);
//!     let cm = serde_json::from_value(serde_json::json!({"metadata": {"name": "demo"}})).unwrap();
//!     let created = cms.create(&PostParams::default(), &cm).await.unwrap();
//!     assert_eq!(created.name_any(), "demo");
//!     assert_eq!(cms.get("demo").await.unwrap().uid(), created.uid());
//! });
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod api;
pub mod client;
pub mod config;
#[cfg(feature = "fake")]
pub mod fake;
pub mod process;
#[cfg(feature = "rustls")]
pub mod tls;
pub mod transport;
pub mod watcher;

pub use api::Api;
pub use client::Client;
pub use kube_proto as proto;
pub use transport::{Transport, TransportError, TransportResponse};

/// What can go wrong using the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be built (invalid parameters).
    #[error(transparent)]
    Request(kube_proto::RequestError),
    /// The server answered with an error, or with something unreadable.
    #[error(transparent)]
    Api(kube_proto::ResponseError),
    /// The transport failed.
    #[error(transparent)]
    Transport(TransportError),
    /// Credentials could not be had.
    #[error(transparent)]
    Auth(kube_proto::config::ConfigError),
    /// A watch event did not decode.
    #[error(transparent)]
    Decode(kube_proto::WatchDecodeError),
    /// The watcher saw an error and goes on.
    #[error(transparent)]
    Watcher(kube_proto::watcher::WatcherError),
}
