//! A transport for [`kube_proto`] over hyper 1, tokio and rustls: it moves bytes and timers for
//! the core and holds no protocol logic.
//!
//! This crate is being built up issue by issue; today it re-exports the pure core.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use kube_proto as proto;
