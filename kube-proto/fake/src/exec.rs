//! What a pod's containers do when exec'd into or attached to, and what listens on its ports
//! for a port-forward: scripted processes and listeners, with no IO and no clock.
//!
//! A process is an [`ExecHandler`]: it is told that it starts, what arrives on its stdin, that
//! stdin closed and that its terminal was resized ([`Input`]), and answers through [`Io`] with
//! output on stdout and stderr and, once, its exit code. A listener is a [`PortHandler`]: told
//! that a connection opened and what arrived on it ([`PortInput`]), it writes back, closes the
//! connection or fails it ([`PortIo`]).
//!
//! They are registered per pod (and container) with [`FakeApiServer::script_exec`] and
//! [`FakeApiServer::script_port`]; a new handler is made for every exec, attach or
//! port-forward. A pod with nothing scripted runs a small built-in table of commands
//! ([`ExecScript::builtins`]) and has nothing listening on any port.
//!
//! ```
//! use std::time::Instant;
//! use kube_proto_fake::exec::{ExecScript, Input, Io, PortScript};
//! use kube_proto_fake::{FakeApiServer, FakeConfig};
//!
//! let mut server = FakeApiServer::new(FakeConfig::default(), Instant::now());
//! // Every command run in the `web` container of `blog` exits with 3 after a line on stderr:
//! server.script_exec("default", "blog", Some("web"), ExecScript::exit_with(3, "", "no luck\n"));
//! // Any other container of `blog` answers with a closure, one per process:
//! server.script_exec("default", "blog", None, ExecScript::custom(|process| {
//!     let greeting = format!("hello from {}\n", process.container);
//!     move |input: Input<'_>, io: &mut Io| match input {
//!         Input::Start => io.stdout(greeting.as_bytes()),
//!         Input::Stdin(data) => io.stdout(data),
//!         Input::StdinClosed => io.exit(0),
//!         Input::Resize(_) => {}
//!     }
//! }));
//! // Port 8080 of `blog` echoes what it receives:
//! server.script_port("default", "blog", 8080, PortScript::echo());
//! ```
//!
//! [`FakeApiServer::script_exec`]: crate::FakeApiServer::script_exec
//! [`FakeApiServer::script_port`]: crate::FakeApiServer::script_port

mod shell;

pub(crate) use shell::hex_id;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

pub use kube_proto::channel::TerminalSize;

/// The process an exec or attach runs, as its handler is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container (the one named in the request, or the pod's only container).
    pub container: String,
    /// For exec, the command (the `command` parameters, in order); for attach, the container's
    /// `command` and `args` from the pod's spec (what its main process was started with).
    pub command: Vec<String>,
    /// Whether this is an attach rather than an exec.
    pub attach: bool,
    /// Whether the client sends stdin (without it, stdin is closed from the start).
    pub stdin: bool,
    /// Whether the client reads stdout (without it, stdout is discarded).
    pub stdout: bool,
    /// Whether the client reads stderr separately (without it, stderr is discarded; with a tty
    /// it goes to stdout, as a terminal merges them).
    pub stderr: bool,
    /// Whether a terminal was asked for (resizes reach the process only then).
    pub tty: bool,
}

/// What a process is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input<'a> {
    /// It starts (the first input, once).
    Start,
    /// Bytes arrived on its stdin (never empty).
    Stdin(&'a [u8]),
    /// Its stdin closed (v5's CLOSE signal, or at once when the client sends no stdin); at most
    /// once.
    StdinClosed,
    /// Its terminal was resized (with a tty only).
    Resize(TerminalSize),
}

/// What a process did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    Exit(i32),
    Fail(String),
}

/// A process's side of its streams: what it writes, and how it ends. After it ended (an exit
/// or a failure), what it writes is dropped.
#[derive(Debug, Default)]
pub struct Io {
    out: VecDeque<Output>,
    ended: bool,
}

impl Io {
    /// Writes to stdout.
    pub fn stdout(&mut self, data: impl AsRef<[u8]>) {
        let data = data.as_ref();
        if !self.ended && !data.is_empty() {
            self.out.push_back(Output::Stdout(data.to_vec()));
        }
    }

    /// Writes to stderr.
    pub fn stderr(&mut self, data: impl AsRef<[u8]>) {
        let data = data.as_ref();
        if !self.ended && !data.is_empty() {
            self.out.push_back(Output::Stderr(data.to_vec()));
        }
    }

    /// Exits with `code`: the client gets a `Success` status for 0, a `NonZeroExitCode` one
    /// with the code otherwise (an attach gets `Success` either way, as the kubelet reports the
    /// end of an attach), then the connection closes.
    pub fn exit(&mut self, code: i32) {
        if !self.ended {
            self.ended = true;
            self.out.push_back(Output::Exit(code));
        }
    }

    /// The process could not run: the client gets an `InternalError` status whose message
    /// wraps `message` as the kubelet wraps a container runtime's error (`error executing
    /// command in container: ...`), then the connection closes.
    pub fn fail(&mut self, message: impl Into<String>) {
        if !self.ended {
            self.ended = true;
            self.out.push_back(Output::Fail(message.into()));
        }
    }

    /// Whether the process exited or failed.
    pub fn has_ended(&self) -> bool {
        self.ended
    }

    pub(crate) fn drain(&mut self) -> std::collections::vec_deque::Drain<'_, Output> {
        self.out.drain(..)
    }
}

/// A running process, scripted: told its [`Input`]s, it answers through [`Io`]. Closures
/// `FnMut(Input<'_>, &mut Io)` are handlers.
pub trait ExecHandler: Send {
    /// Takes one input.
    fn handle(&mut self, input: Input<'_>, io: &mut Io);
}

impl<F> ExecHandler for F
where
    F: FnMut(Input<'_>, &mut Io) + Send,
{
    fn handle(&mut self, input: Input<'_>, io: &mut Io) {
        self(input, io)
    }
}

type ExecFactory = dyn Fn(&Process) -> Box<dyn ExecHandler> + Send + Sync;

/// What a container does when a process is run in it (exec) or attached to: a recipe that makes
/// a new [`ExecHandler`] per process.
#[derive(Clone)]
pub struct ExecScript(ScriptKind);

#[derive(Clone)]
enum ScriptKind {
    Builtins,
    Echo,
    Cat,
    Exit { code: i32, stdout: Vec<u8>, stderr: Vec<u8> },
    Custom(Arc<ExecFactory>),
}

impl ExecScript {
    /// A small table of commands, run as a container with a shell would, and what a pod with
    /// nothing scripted runs:
    ///
    /// - `echo [-n] ARGS...`, `true`, `false`, `hostname` (the pod's name), `cat` (stdin to
    ///   stdout until stdin closes; with file arguments, "No such file or directory" and 1);
    /// - `sh -c SCRIPT` (or `bash`, `/bin/sh`, ...): commands of the table separated by `;`,
    ///   `&&`, `||` or newlines, words split on blanks with `'...'` and `"..."` quoting,
    ///   `>&2` sending an `echo` to stderr, `exit [N]`; an unknown command prints
    ///   `sh: 1: NAME: not found` on stderr and has status 127, as dash does;
    /// - `sh` alone reads its commands from stdin, a line at a time, until stdin closes (a
    ///   `cat` among them reads the rest of stdin).
    ///
    /// Any other program is not found: the status is the `InternalError` containerd gives
    /// (`... exec: "NAME": executable file not found in $PATH: unknown`), not an exit code.
    /// An attach runs the container's command and args from the pod's spec the same way.
    pub fn builtins() -> Self {
        ExecScript(ScriptKind::Builtins)
    }

    /// Prints the command's arguments (all but the program's name), separated by spaces and
    /// ending with a newline, and exits with 0, whatever the program.
    pub fn echo() -> Self {
        ExecScript(ScriptKind::Echo)
    }

    /// Copies stdin to stdout until stdin closes, then exits with 0, whatever the program.
    pub fn cat() -> Self {
        ExecScript(ScriptKind::Cat)
    }

    /// Exits with `code` at once, whatever the program.
    pub fn exit(code: i32) -> Self {
        ExecScript::exit_with(code, "", "")
    }

    /// Writes `stdout`, then `stderr`, then exits with `code`, whatever the program.
    pub fn exit_with(code: i32, stdout: impl AsRef<[u8]>, stderr: impl AsRef<[u8]>) -> Self {
        ExecScript(ScriptKind::Exit { code, stdout: stdout.as_ref().to_vec(), stderr: stderr.as_ref().to_vec() })
    }

    /// A handler made by `factory` for every process (a closure `FnMut(Input<'_>, &mut Io)`,
    /// or any [`ExecHandler`]).
    pub fn custom<F, H>(factory: F) -> Self
    where
        F: Fn(&Process) -> H + Send + Sync + 'static,
        H: ExecHandler + 'static,
    {
        ExecScript(ScriptKind::Custom(Arc::new(move |p: &Process| Box::new(factory(p)) as Box<dyn ExecHandler>)))
    }

    /// A new process.
    pub(crate) fn spawn(&self, process: &Process) -> Box<dyn ExecHandler> {
        match &self.0 {
            ScriptKind::Builtins => Box::new(shell::Builtins::new(process)),
            ScriptKind::Echo => {
                let line = format!("{}\n", process.command.get(1..).unwrap_or_default().join(" "));
                Box::new(move |input: Input<'_>, io: &mut Io| {
                    if input == Input::Start {
                        io.stdout(line.as_bytes());
                        io.exit(0);
                    }
                })
            }
            ScriptKind::Cat => Box::new(|input: Input<'_>, io: &mut Io| match input {
                Input::Stdin(data) => io.stdout(data),
                Input::StdinClosed => io.exit(0),
                Input::Start | Input::Resize(_) => {}
            }),
            ScriptKind::Exit { code, stdout, stderr } => {
                let (code, stdout, stderr) = (*code, stdout.clone(), stderr.clone());
                Box::new(move |input: Input<'_>, io: &mut Io| {
                    if input == Input::Start {
                        io.stdout(&stdout);
                        io.stderr(&stderr);
                        io.exit(code);
                    }
                })
            }
            ScriptKind::Custom(factory) => factory(process),
        }
    }
}

impl fmt::Debug for ExecScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ScriptKind::Builtins => f.write_str("ExecScript::builtins()"),
            ScriptKind::Echo => f.write_str("ExecScript::echo()"),
            ScriptKind::Cat => f.write_str("ExecScript::cat()"),
            ScriptKind::Exit { code, stdout, stderr } => {
                write!(f, "ExecScript::exit_with({code}, {} bytes, {} bytes)", stdout.len(), stderr.len())
            }
            ScriptKind::Custom(_) => f.write_str("ExecScript::custom(..)"),
        }
    }
}

/// What a listener is told about its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortInput<'a> {
    /// The connection opened (the first input, once).
    Start,
    /// Bytes arrived from the client (never empty).
    Data(&'a [u8]),
    /// The client closed its side: no more bytes come (port-forward over SPDY only; the
    /// WebSocket protocol cannot say so).
    End,
}

/// What a listener did, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PortOutput {
    Data(Vec<u8>),
    Close,
    Fail(String),
}

/// A listener's side of its connection. After it closed or failed, what it writes is dropped.
#[derive(Debug, Default)]
pub struct PortIo {
    out: VecDeque<PortOutput>,
    ended: bool,
}

impl PortIo {
    /// Sends bytes to the client.
    pub fn write(&mut self, data: impl AsRef<[u8]>) {
        let data = data.as_ref();
        if !self.ended && !data.is_empty() {
            self.out.push_back(PortOutput::Data(data.to_vec()));
        }
    }

    /// Closes the connection (the pod's end hung up). The kubelet then ends this port's
    /// streams; once every port of the port-forward has ended, it closes the WebSocket.
    pub fn close(&mut self) {
        if !self.ended {
            self.ended = true;
            self.out.push_back(PortOutput::Close);
        }
    }

    /// The connection failed: the client gets `message` on the port's error channel, wrapped as
    /// the kubelet wraps it (`error forwarding port P to pod ID, uid : MESSAGE`), and the port
    /// ends as with [`close`](Self::close).
    pub fn fail(&mut self, message: impl Into<String>) {
        if !self.ended {
            self.ended = true;
            self.out.push_back(PortOutput::Fail(message.into()));
        }
    }

    /// Whether the connection closed or failed.
    pub fn has_ended(&self) -> bool {
        self.ended
    }

    pub(crate) fn drain(&mut self) -> std::collections::vec_deque::Drain<'_, PortOutput> {
        self.out.drain(..)
    }
}

/// What listens on a pod's port, scripted: told its [`PortInput`]s, it answers through
/// [`PortIo`]. Closures `FnMut(PortInput<'_>, &mut PortIo)` are handlers.
pub trait PortHandler: Send {
    /// Takes one input.
    fn handle(&mut self, input: PortInput<'_>, io: &mut PortIo);
}

impl<F> PortHandler for F
where
    F: FnMut(PortInput<'_>, &mut PortIo) + Send,
{
    fn handle(&mut self, input: PortInput<'_>, io: &mut PortIo) {
        self(input, io)
    }
}

type PortFactory = dyn Fn(u16) -> Box<dyn PortHandler> + Send + Sync;

/// What listens on a pod's port: a recipe that makes a new [`PortHandler`] per connection.
#[derive(Clone)]
pub struct PortScript(PortKind);

#[derive(Clone)]
enum PortKind {
    Echo,
    Custom(Arc<PortFactory>),
}

impl PortScript {
    /// A TCP echo server: what arrives is sent back; it closes when the client's side ends
    /// ([`PortInput::End`]), never by itself.
    pub fn echo() -> Self {
        PortScript(PortKind::Echo)
    }

    /// A handler made by `factory` (given the port) for every connection: a closure
    /// `FnMut(PortInput<'_>, &mut PortIo)`, or any [`PortHandler`].
    pub fn custom<F, H>(factory: F) -> Self
    where
        F: Fn(u16) -> H + Send + Sync + 'static,
        H: PortHandler + 'static,
    {
        PortScript(PortKind::Custom(Arc::new(move |port| Box::new(factory(port)) as Box<dyn PortHandler>)))
    }

    /// A new connection to `port`.
    pub(crate) fn connect(&self, port: u16) -> Box<dyn PortHandler> {
        match &self.0 {
            PortKind::Echo => Box::new(|input: PortInput<'_>, io: &mut PortIo| match input {
                PortInput::Data(data) => io.write(data),
                PortInput::End => io.close(),
                PortInput::Start => {}
            }),
            PortKind::Custom(factory) => factory(port),
        }
    }
}

impl fmt::Debug for PortScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            PortKind::Echo => f.write_str("PortScript::echo()"),
            PortKind::Custom(_) => f.write_str("PortScript::custom(..)"),
        }
    }
}
