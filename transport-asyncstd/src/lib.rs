//! A transport for [`kube_proto`] over surf on async-std: it moves bytes and timers for the
//! core and holds no protocol logic.
//!
//! This crate is being built up issue by issue; today it re-exports the pure core.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub use kube_proto as proto;
