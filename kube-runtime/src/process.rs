//! Exec credential plugins as processes, written once: the command an [`ExecRequest`] asks for
//! (with its stdio set up), the message when it cannot be started, and its output as an
//! [`ExecOutput`]. Each runtime spawns the command with its own process support (tokio's and
//! async-process's `Command`s are made from a `std` one: `From<std::process::Command>`),
//! then [`start_error`], [`wait_error`] and [`exec_output`] shape the result; [`run_blocking`]
//! does the same on the calling thread.

use std::io::{self, ErrorKind};
use std::process::{Command, Output, Stdio};

use kube_proto::config::auth::{ExecOutput, ExecRequest};

/// The command to run: the request's program and arguments, this process's environment plus
/// the request's variables, and the standard streams of [`stdio`].
///
/// Spawn it (not `output()`, which tokio and async-process make capture stderr) and wait for
/// its output. A runtime whose `Command` made from a `std` one forgets its streams
/// (async-process's) sets [`stdio`] again.
pub fn command(request: &ExecRequest) -> Command {
    let mut command = Command::new(&request.command);
    command.args(&request.args).envs(request.env.iter().map(|(name, value)| (name, value.expose())));
    let [stdin, stdout, stderr] = stdio(request);
    command.stdin(stdin).stdout(stdout).stderr(stderr);
    command
}

/// The plugin's stdin, stdout and stderr: stdout captured; stdin and stderr the terminal's
/// when the plugin is `interactive` (its prompts must reach the user), else stdin empty and
/// stderr captured.
pub fn stdio(request: &ExecRequest) -> [Stdio; 3] {
    if request.interactive {
        [Stdio::inherit(), Stdio::piped(), Stdio::inherit()]
    } else {
        [Stdio::null(), Stdio::piped(), Stdio::piped()]
    }
}

/// Why the plugin could not be started, as [`Auth::on_exec_failed`] takes it:
/// `CMD: command not found`, `CMD: permission denied (is it executable?)` or
/// `CMD: cannot be started: …`.
///
/// [`Auth::on_exec_failed`]: kube_proto::config::Auth::on_exec_failed
pub fn start_error(request: &ExecRequest, error: &io::Error) -> String {
    match error.kind() {
        ErrorKind::NotFound => format!("{}: command not found", request.command.display()),
        ErrorKind::PermissionDenied => format!("{}: permission denied (is it executable?)", request.command.display()),
        _ => format!("{}: cannot be started: {error}", request.command.display()),
    }
}

/// Why the plugin's output could not be read once it had started.
pub fn wait_error(request: &ExecRequest, error: &io::Error) -> String {
    format!("{}: reading its output failed: {error}", request.command.display())
}

/// The plugin's exit status and captured output.
pub fn exec_output(output: Output) -> ExecOutput {
    ExecOutput { status: output.status.code(), stdout: output.stdout, stderr: output.stderr }
}

/// Runs the plugin on this thread and waits for it.
///
/// A plugin file that was just written may be briefly "busy" (`ETXTBSY`): a process forked by
/// another thread meanwhile still holds the writer's descriptor until it execs. That start is
/// tried again a few times, 10 ms apart, before it counts as failed.
pub fn run_blocking(request: &ExecRequest) -> Result<ExecOutput, String> {
    let mut tries = 0;
    let child = loop {
        match command(request).spawn() {
            Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy && tries < 5 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other.map_err(|e| start_error(request, &e))?,
        }
    };
    let output = child.wait_with_output().map_err(|e| wait_error(request, &e))?;
    Ok(exec_output(output))
}
