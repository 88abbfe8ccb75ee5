//! Runnable examples live beside this file; see `cargo run --example demo`. Code shared by
//! several examples lives here.

pub mod configmapgen;
