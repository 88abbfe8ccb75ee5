//! Serves the loopback fake API server until stdin closes (or 30 minutes pass), printing the
//! path of a kubeconfig for it. Runs the suite's real-cluster mode against the fake:
//!
//! ```text
//! cargo run -p kube-integration-tests --example serve > /tmp/kit &
//! KUBE_E2E_KUBECONFIG=$(head -1 /tmp/kit) cargo test -p kube-integration-tests -- --include-ignored
//! ```
//!
//! The `default` namespace holds three Pods on a node, for exec, attach and port-forward (the
//! server switches protocols and runs the fake's scripted processes and listeners):
//!
//! - `blog`, whose commands are the fake's built-in table (`echo`, `cat`, `sh -c`, `exit`, ...);
//! - `terminal`, whose process, given a tty, prints the last size it was sent (rows, then
//!   columns, as `stty size` does) when its stdin closes;
//! - `web`, whose port 80 echoes what it receives.
//!
//! So the examples' `--cluster` modes run against it (`KUBECONFIG` pointing at the kubeconfig):
//!
//! ```text
//! KUBECONFIG=$(head -1 /tmp/kit) cargo run -p kube-examples --example pod_exec -- --cluster --tty-pod terminal
//! KUBECONFIG=$(head -1 /tmp/kit) cargo run -p kube-examples --example pod_portforward -- --cluster
//! ```
//!
//! (`pod_portforward` then forwards a local port to `web:80` until stopped: what is sent to it
//! comes back.)

use std::io::Read as _;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube_integration_tests::{ServerOptions, TestServer};
use kube_proto::channel::TerminalSize;
use kube_runtime::fake::server::exec::{ExecScript, Input, Io, PortScript};

fn main() {
    let server = TestServer::start(ServerOptions::default());
    for name in ["blog", "terminal", "web"] {
        add_pod(&server, name);
    }
    let mut fake = server.fake();
    fake.script_exec("default", "terminal", None, stty_size());
    fake.script_port("default", "web", 80, PortScript::echo());
    drop(fake);

    println!("{}", server.kubeconfig_path().display());
    eprintln!("serving {} (kubeconfig above; Pods blog, terminal and web); close stdin to stop", server.url());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(30 * 60));
    drop(server);
}

/// Creates the Pod `name` in `default`, with one container, on the node `kit-node`.
fn add_pod(server: &TestServer, name: &str) {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "spec": {"nodeName": "kit-node", "containers": [{"name": "main", "image": "busybox:1.36", "command": ["sh"]}]},
    }))
    .expect("a Pod");
    let request =
        kube_proto::Request::namespaced::<Pod>("default").create(&Default::default(), &pod).expect("a request");
    let response = server.handle_quietly(request);
    assert!(response.status().is_success(), "creating the Pod {name}: {}", response.status());
}

/// A process that answers as `stty size` after a resize: when its stdin closes, the last size
/// it was sent (rows, then columns), and exit 0.
fn stty_size() -> ExecScript {
    ExecScript::custom(|_| {
        let mut size: Option<TerminalSize> = None;
        move |input: Input<'_>, io: &mut Io| match input {
            Input::Resize(s) => size = Some(s),
            Input::StdinClosed => {
                if let Some(s) = size {
                    io.stdout(format!("{} {}\r\n", s.height, s.width));
                }
                io.exit(0);
            }
            Input::Start | Input::Stdin(_) => {}
        }
    })
}
