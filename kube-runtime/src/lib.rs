//! The executor-agnostic async layer over [`kube_proto`]: `Client`, `Api<K>`, watcher streams,
//! reflector and store, Controller. It defines the small transport trait that
//! `transport-hyper`, `transport-asyncstd` and users' own HTTP stacks implement.
//!
//! This crate is being built up issue by issue; today it re-exports the pure core.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use kube_proto as proto;
