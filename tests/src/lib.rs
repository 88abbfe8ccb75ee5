//! The integration suite's support: a loopback API server, a harness that runs each test body
//! through every transport, and one that runs the behaviour tests against the fake and a cluster.
//!
//! - [`TestServer`]: kube-proto's fake API server served over real sockets on `127.0.0.1` by
//!   hyper (HTTP/1.1 and HTTP/2), on a thread with its own tokio runtime, so that tests on tokio
//!   and on async-std use it alike. Plain HTTP or TLS (a CA, a server certificate for
//!   `127.0.0.1` and `localhost`, all made at startup by rcgen), a bearer token and/or client
//!   certificates, and fault knobs: [`drop_watches`](TestServer::drop_watches),
//!   [`compact`](TestServer::compact), [`cut_next_response`](TestServer::cut_next_response),
//!   [`cut_open_watches`](TestServer::cut_open_watches), [`fail_next`](TestServer::fail_next).
//!   Exec, attach and port-forward switch protocols on HTTP/1.1 and run the fake's sessions
//!   over the upgraded connection, as [`ExecServer`](exec_server::ExecServer) does. It hands out [`Config`](kube_proto::config::Config)s (token, client certificate, wrong
//!   token, wrong CA) and a kubeconfig file pointing at it.
//! - [`UpgradeServer`](upgrade_server::UpgradeServer): a TLS server that answers the WebSocket
//!   upgrade of exec, attach and port-forward with bytes written by hand (echo, a greeting in
//!   the `101`'s packet, a refusal with a `Status`, a connection cut mid-stream), for the
//!   transports' upgrades.
//! - [`ExecServer`](exec_server::ExecServer): a TLS server that runs the fake API server's
//!   exec, attach and port-forward sessions over the upgraded connection (real WebSocket
//!   frames, scripted processes and listeners), with knobs for an older channel protocol and a
//!   connection cut mid-stream.
//! - [`run`] and [`transport_tests!`]: a body written once as `async fn body(ctx: Ctx)` runs
//!   through transport-hyper on tokio and transport-asyncstd on async-std, against a fresh
//!   loopback server, or against a real cluster when [`E2E_KUBECONFIG`] names a kubeconfig,
//!   each test in a namespace of its own.
//!
//! # Against a real cluster
//!
//! `KUBE_E2E_KUBECONFIG=/path/to/kubeconfig cargo test -p kube-integration-tests` runs the same
//! bodies against that kubeconfig's current context (or `KUBE_E2E_CONTEXT`), through both
//! transports, each test in a fresh namespace `kit-<test>-<suffix>` that it deletes afterwards.
//! The bodies assert relations (a new resourceVersion differs, a stale one conflicts, a list
//! scoped by the suite label holds exactly what the test made), never the fake's own values.
//! Tests that need the fault knobs, the loopback server's certificates or a second server print
//! a note and pass. `cargo run -p kube-integration-tests --example serve` serves the fake and
//! prints a kubeconfig path, to exercise that mode without a cluster.
//!
//! # Behaviour tests: the fake against a real server
//!
//! [`behaviour`] and [`behaviour_tests!`]: the kube-apiserver behaviour tests of
//! `tests/behaviour.rs` are plain `fn(&mut Behaviour)` bodies over a
//! [`Backend`](behaviour::Backend), run twice: `fake::<name>` drives kube-proto's fake directly on
//! simulated time (waits of minutes take no time), and `cluster::<name>` runs the same body
//! against the cluster of [`E2E_KUBECONFIG`] through a real client on real time, in a fresh
//! namespace (`#[ignore]`d, since they need that cluster). A body that needs what only the fake
//! can do (compaction on request, a clock that jumps by minutes) declares it and is skipped on a
//! cluster with a note. `cargo test -p kube-integration-tests --test behaviour -- --ignored` with
//! the variable set runs only the comparison (`--include-ignored`: both).

pub mod behaviour;
pub mod client_v1;
pub mod exec_server;
pub mod harness;
pub mod objects;
pub mod pki;
pub mod server;
mod session;
mod tls_loopback;
pub mod upgrade_server;

pub use harness::{Ctx, E2E_CONTEXT, E2E_KUBECONFIG, SUITE_LABEL, TransportKind, Where, e2e_config, run, run_on};
pub use server::{ClientCerts, Seen, ServerOptions, TOKEN, TestServer};

/// A configuration pointing at a port of `127.0.0.1` where nothing listens.
pub fn closed_port_config() -> kube_proto::config::Config {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("an address").port();
    drop(listener);
    kube_proto::config::Config::new(format!("http://127.0.0.1:{port}").parse().expect("a URL"))
}
