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
//!     let client = Client::new(transport, config).unwrap();
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
pub mod controller;
pub mod discovery;
pub mod error;
pub mod events;
#[cfg(feature = "fake")]
pub mod fake;
pub mod finalizer;
#[cfg(feature = "pool")]
pub mod http1;
pub mod leader;
#[cfg(feature = "pool")]
pub mod pool;
pub mod process;
pub mod read_ahead;
pub mod reflector;
pub mod remote;
#[cfg(feature = "rustls")]
pub mod tls;
pub mod transport;
pub mod wait;
pub mod watcher;

pub use api::Api;
pub use client::Client;
pub use error::Error;
pub use kube_proto as proto;
pub use remote::{AttachedProcess, Portforwarder};
pub use transport::{Transport, TransportError, TransportResponse, Upgraded, UpgradedStream};
