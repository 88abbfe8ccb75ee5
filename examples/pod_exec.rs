//! Commands run in a Pod's container, on tokio and transport-hyper: output read as it comes,
//! exit codes, stderr kept apart, stdin piped in and closed, and a terminal resized.
//!
//! By default it runs on the embedded fake API server, whose Pods run a small table of
//! commands (`echo`, `cat`, `sh -c`, ...); a Pod `blog` is made there first, and a Pod
//! `terminal` whose scripted process answers `stty size` with the last size it was sent (the
//! table has no terminals). With `--cluster`
//! (or `KUBE_DEMO_CLUSTER=1`) it runs the same commands in the running Pod `blog` of the
//! default namespace of your kubeconfig's cluster (`--pod NAME` for another one), which needs
//! `sh` and `cat` (busybox or any distribution image has them); `--tty-pod NAME` runs the
//! terminal's step in another Pod.
//!
//! ```sh
//! cargo run --example pod_exec                           # embedded fake API server
//! cargo run --example pod_exec -- --cluster --pod mypod  # a running Pod of your cluster
//! ```
//!
//! The loopback server of `cargo run -p kube-integration-tests --example serve` (the fake over
//! HTTPS, with a kubeconfig) has both Pods: `KUBECONFIG=<the path it prints> cargo run
//! --example pod_exec -- --cluster --tty-pod terminal`.

use futures_util::{AsyncReadExt, AsyncWriteExt};
use k8s_openapi::api::core::v1::Pod;
use kube_proto::AttachParams;
use kube_proto::channel::TerminalSize;
use kube_runtime::fake::FakeTransport;
use kube_runtime::fake::server::exec::{ExecScript, Input, Io};
use kube_runtime::{Api, Client};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let on_cluster =
        args.iter().any(|a| a == "--cluster") || std::env::var("KUBE_DEMO_CLUSTER").is_ok_and(|v| v == "1");
    let pod = args.iter().position(|a| a == "--pod").and_then(|i| args.get(i + 1)).map_or("blog", String::as_str);
    let (client, tty_pod) = if on_cluster {
        println!("pod_exec in the Pod {pod:?} of your kubeconfig's cluster");
        let tty_pod = args.iter().position(|a| a == "--tty-pod").and_then(|i| args.get(i + 1));
        (transport_hyper::try_default().await?, tty_pod.map_or(pod, String::as_str))
    } else {
        println!("pod_exec on the embedded fake API server (pass --cluster to use a real one)");
        (fake_with_pods(pod, "terminal").await?, "terminal")
    };
    let pods: Api<Pod> = Api::default_namespaced(client);

    // The seed's line: a command's stdout, without stderr.
    let mut echo = pods.exec(pod, ["echo", "hello from", pod], &AttachParams::default().stderr(false)).await?;
    let mut out = String::new();
    echo.stdout().expect("stdout was asked for").read_to_string(&mut out).await?;
    let status = echo.join().await?;
    println!("$ echo hello from {pod}\n  {}\n  exit code {}", out.trim_end(), status.code());

    // A failing command: stdout and stderr apart, the exit code as a value, not an error.
    let script = "echo some output; echo a complaint >&2; exit 3";
    let mut sh = pods.exec(pod, ["sh", "-c", script], &AttachParams::default()).await?;
    let (mut stdout, mut stderr) = (sh.stdout().expect("stdout"), sh.stderr().expect("stderr"));
    let (mut out, mut err) = (String::new(), String::new());
    let (read_out, read_err) =
        futures_util::future::join(stdout.read_to_string(&mut out), stderr.read_to_string(&mut err)).await;
    read_out?;
    read_err?;
    let status = sh.join().await?;
    println!("$ sh -c {script:?}\n  stdout: {out:?}\n  stderr: {err:?}\n  exit code {}", status.code());

    // stdin piped into `cat`, closed to end it (v5.channel.k8s.io), read back concurrently.
    let mut cat = pods.exec(pod, ["cat"], &AttachParams::default().stdin(true).stderr(false)).await?;
    println!("$ cat    (protocol {})", cat.protocol());
    let (mut stdin, mut stdout) = (cat.stdin().expect("stdin"), cat.stdout().expect("stdout"));
    let writing = async {
        for line in ["first line\n", "second line\n", "third line\n"] {
            stdin.write_all(line.as_bytes()).await?;
        }
        stdin.close().await
    };
    let mut out = String::new();
    let (written, read) = futures_util::future::join(writing, stdout.read_to_string(&mut out)).await;
    written?;
    read?;
    for line in out.lines() {
        println!("  {line}");
    }
    println!("  exit code {}", cat.join().await?.code());

    // A terminal: the size is sent before `stty size` reads it (the shell waits for stdin's
    // first line), then stdin closes.
    let ap = AttachParams::interactive_tty();
    let mut tty = pods.exec(tty_pod, ["sh", "-c", "read line; stty size"], &ap).await?;
    let mut sizes = tty.terminal_size().expect("a tty was asked for");
    sizes.send(TerminalSize { width: 120, height: 40 }).await?;
    let mut stdin = tty.stdin().expect("stdin");
    stdin.write_all(b"\n").await?;
    stdin.close().await?;
    let mut out = String::new();
    tty.stdout().expect("stdout").read_to_string(&mut out).await?;
    println!("$ stty size    (in {tty_pod:?}, after a resize to 120x40)\n  {}", out.trim());
    println!("  exit code {}", tty.join().await?.code());
    Ok(())
}

/// The fake, with a Pod `name` whose commands are the fake's built-in table, and a Pod
/// `terminal` whose process, given a tty, prints the last size it was sent (rows, then
/// columns, as `stty size` does) when its stdin closes.
async fn fake_with_pods(name: &str, terminal: &str) -> Result<Client, BoxError> {
    let (transport, config) = FakeTransport::new();
    let client = Client::new(transport.clone(), config)?;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    for pod in [name, terminal] {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": pod},
            "spec": {"nodeName": "node-1", "containers": [{"name": "main", "image": "busybox"}]},
        }))?;
        pods.create(&Default::default(), &pod).await?;
    }
    let stty = ExecScript::custom(|_| {
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
    });
    transport.server().script_exec("default", terminal, None, stty);
    Ok(client)
}
