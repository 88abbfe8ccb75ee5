//! Serves the loopback fake API server until stdin closes (or 30 minutes pass), printing the
//! path of a kubeconfig for it. Runs the suite's real-cluster mode against the fake:
//!
//! ```text
//! cargo run -p kube-integration-tests --example serve > /tmp/kit &
//! KUBE_E2E_KUBECONFIG=$(head -1 /tmp/kit) cargo test -p kube-integration-tests -- --include-ignored
//! ```

use std::io::Read as _;
use std::time::Duration;

use kube_integration_tests::{ServerOptions, TestServer};

fn main() {
    let server = TestServer::start(ServerOptions::default());
    println!("{}", server.kubeconfig_path().display());
    eprintln!("serving {} (kubeconfig above); close stdin to stop", server.url());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(30 * 60));
    drop(server);
}
