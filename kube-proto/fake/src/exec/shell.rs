//! The built-in commands (see [`ExecScript::builtins`](super::ExecScript::builtins)): a few
//! programs and a very small shell that runs them.

use std::collections::VecDeque;

use super::{Input, Io, Process};

/// When a command of a list runs, after the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    Always,
    /// After `&&`.
    IfOk,
    /// After `||`.
    IfFailed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Command {
    words: Vec<String>,
    /// `>&2`: output goes to stderr.
    to_stderr: bool,
    when: When,
    /// Its line, for the shell's messages.
    line: usize,
    /// A line that could not be parsed: this message, and status 2.
    syntax_error: Option<String>,
}

/// Who runs the commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The program itself, with no shell: an unknown one is not found by the runtime.
    Program,
    /// `sh -c SCRIPT`.
    Script,
    /// `sh` reading its commands from stdin.
    Lines,
    /// Nothing known (an attach to a container whose spec has no command): prints nothing and
    /// runs until the connection ends.
    Idle,
}

/// A process running the built-in table.
#[derive(Debug)]
pub(super) struct Builtins {
    pod: String,
    /// For the runtime's messages: derives the exec id.
    identity: String,
    mode: Mode,
    queue: VecDeque<Command>,
    /// The last command's status.
    status: i32,
    /// A `cat` is copying stdin.
    cat: bool,
    stdin_closed: bool,
    /// Stdin not yet read as lines (`sh` reading stdin).
    pending: Vec<u8>,
    lines_read: usize,
    /// Set at the start when the program cannot be run at all.
    start_error: Option<StartError>,
}

#[derive(Debug)]
enum StartError {
    /// The runtime found no program to run.
    NotFound(String),
    /// The shell said this on stderr and exited with 2.
    Shell(String),
}

const SHELLS: &[&str] = &["sh", "bash", "ash", "dash", "zsh", "ksh"];

impl Builtins {
    pub(super) fn new(process: &Process) -> Self {
        let identity = format!("{}/{}/{}/{:?}", process.namespace, process.pod, process.container, process.command);
        let mut b = Builtins {
            pod: process.pod.clone(),
            identity,
            mode: Mode::Program,
            queue: VecDeque::new(),
            status: 0,
            cat: false,
            stdin_closed: false,
            pending: Vec::new(),
            lines_read: 0,
            start_error: None,
        };
        let argv = &process.command;
        let Some(program) = argv.first() else {
            if process.attach {
                b.mode = Mode::Idle;
            } else {
                b.start_error = Some(StartError::NotFound(String::new()));
            }
            return b;
        };
        if SHELLS.contains(&basename(program)) {
            match argv.get(1).map(String::as_str) {
                None => b.mode = Mode::Lines,
                Some("-c") => {
                    b.mode = Mode::Script;
                    match argv.get(2) {
                        None => b.start_error = Some(StartError::Shell("sh: 0: -c requires an argument\n".into())),
                        Some(script) => match parse(script, 1) {
                            Ok(commands) => b.queue.extend(commands),
                            Err((line, e)) => b.start_error = Some(StartError::Shell(format!("sh: {line}: {e}\n"))),
                        },
                    }
                }
                Some(file) => {
                    b.start_error = Some(StartError::Shell(format!("sh: 0: cannot open {file}: No such file\n")));
                }
            }
        } else {
            b.queue.push_back(Command {
                words: argv.clone(),
                to_stderr: false,
                when: When::Always,
                line: 1,
                syntax_error: None,
            });
        }
        b
    }

    /// Runs queued commands until one waits for stdin, the queue is empty or the process ended.
    fn run(&mut self, io: &mut Io) {
        while !self.cat && !io.has_ended() {
            let Some(command) = self.queue.pop_front() else {
                if self.mode == Mode::Lines && self.read_line() {
                    continue;
                }
                match self.mode {
                    Mode::Lines if !self.stdin_closed => {}
                    Mode::Idle => {}
                    _ => io.exit(self.status),
                }
                return;
            };
            let skip = match command.when {
                When::Always => false,
                When::IfOk => self.status != 0,
                When::IfFailed => self.status == 0,
            };
            if !skip {
                self.execute(command, io);
            }
        }
    }

    /// Queues the commands of the next whole line of stdin (the rest of it once stdin closed).
    fn read_line(&mut self) -> bool {
        let end = match self.pending.iter().position(|&b| b == b'\n') {
            Some(i) => i + 1,
            None if self.stdin_closed && !self.pending.is_empty() => self.pending.len(),
            None => return false,
        };
        let line: Vec<u8> = self.pending.drain(..end).collect();
        self.lines_read += 1;
        let text = String::from_utf8_lossy(&line);
        match parse(&text, self.lines_read) {
            Ok(commands) => self.queue.extend(commands),
            Err((line, e)) => {
                // dash gives up on the line, not the session, when reading commands from stdin.
                self.queue.push_back(Command {
                    words: Vec::new(),
                    to_stderr: true,
                    when: When::Always,
                    line,
                    syntax_error: Some(format!("sh: {line}: {e}\n")),
                });
            }
        }
        true
    }

    fn execute(&mut self, command: Command, io: &mut Io) {
        if let Some(message) = &command.syntax_error {
            io.stderr(message);
            self.status = 2;
            return;
        }
        let Some(name) = command.words.first() else { return };
        let args = &command.words[1..];
        let out = |io: &mut Io, text: &[u8]| {
            if command.to_stderr { io.stderr(text) } else { io.stdout(text) }
        };
        self.status = match basename(name) {
            "echo" => {
                let (newline, args) = match args.first().map(String::as_str) {
                    Some("-n") => (false, &args[1..]),
                    _ => (true, args),
                };
                let mut text = args.join(" ");
                if newline {
                    text.push('\n');
                }
                out(io, text.as_bytes());
                0
            }
            "true" => 0,
            "false" => 1,
            "hostname" => {
                out(io, format!("{}\n", self.pod).as_bytes());
                0
            }
            "exit" if self.mode != Mode::Program => {
                match args.first() {
                    None => io.exit(self.status),
                    Some(n) => match n.parse::<i64>() {
                        Ok(n) => io.exit(n.rem_euclid(256) as i32),
                        Err(_) => {
                            io.stderr(format!("sh: {}: exit: Illegal number: {n}\n", command.line));
                            io.exit(2);
                        }
                    },
                }
                return;
            }
            "cat" if !args.is_empty() => {
                for file in args {
                    io.stderr(format!("cat: {file}: No such file or directory\n"));
                }
                1
            }
            "cat" => {
                // What stdin held past the line that ran `cat` is `cat`'s to read.
                io.stdout(std::mem::take(&mut self.pending));
                if !self.stdin_closed {
                    self.cat = true;
                }
                0
            }
            _ if self.mode == Mode::Program => {
                io.fail(self.not_found(name));
                return;
            }
            _ => {
                io.stderr(format!("sh: {}: {name}: not found\n", command.line));
                127
            }
        };
    }

    /// containerd's answer to a program that is not in the container.
    fn not_found(&self, name: &str) -> String {
        let why = if name.contains('/') {
            format!("stat {name}: no such file or directory")
        } else {
            format!("exec: {name:?}: executable file not found in $PATH")
        };
        format!(
            "failed to exec in container: failed to start exec {:?}: OCI runtime exec failed: exec failed: unable to \
             start container process: {why}: unknown",
            hex_id(&self.identity)
        )
    }
}

impl super::ExecHandler for Builtins {
    fn handle(&mut self, input: Input<'_>, io: &mut Io) {
        match input {
            Input::Start => {
                match self.start_error.take() {
                    Some(StartError::NotFound(name)) => io.fail(self.not_found(&name)),
                    Some(StartError::Shell(message)) => {
                        io.stderr(message);
                        io.exit(2);
                    }
                    None => self.run(io),
                }
                return;
            }
            Input::Stdin(data) => {
                if self.cat {
                    io.stdout(data);
                } else if self.mode == Mode::Lines {
                    self.pending.extend_from_slice(data);
                }
            }
            Input::StdinClosed => {
                self.stdin_closed = true;
                self.cat = false;
            }
            Input::Resize(_) => return,
        }
        self.run(io);
    }
}

/// 64 hex digits derived from `seed`, as container runtimes name execs and sandboxes.
pub(crate) fn hex_id(seed: &str) -> String {
    let a = kube_proto::websocket::sha1(seed.as_bytes());
    let b = kube_proto::websocket::sha1(&a);
    a.iter().chain(&b[..12]).map(|x| format!("{x:02x}")).collect()
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Splits a script into commands: `;`, `&`, newlines, `&&` and `||` separate them; blanks
/// separate words; `'...'` is literal, `"..."` takes `\` before `"`, `\`, `$` and `` ` ``; a
/// `\` outside quotes takes the next character; `#` at a word's start comments out the rest
/// of the line; a `>&2` or `1>&2` word sends the output to stderr. Errors carry their line.
fn parse(script: &str, first_line: usize) -> Result<Vec<Command>, (usize, String)> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word: Option<String> = None;
    let mut to_stderr = false;
    let mut when = When::Always;
    let mut line = first_line;
    let mut chars = script.chars().peekable();

    fn end_word(words: &mut Vec<String>, word: &mut Option<String>, to_stderr: &mut bool) {
        if let Some(w) = word.take() {
            if w == ">&2" || w == "1>&2" {
                *to_stderr = true;
            } else {
                words.push(w);
            }
        }
    }
    let end_command = |commands: &mut Vec<Command>,
                       words: &mut Vec<String>,
                       word: &mut Option<String>,
                       to_stderr: &mut bool,
                       when: When,
                       line: usize| {
        end_word(words, word, to_stderr);
        if !words.is_empty() {
            let words = std::mem::take(words);
            commands.push(Command { words, to_stderr: *to_stderr, when, line, syntax_error: None });
        }
        *to_stderr = false;
    };

    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' => end_word(&mut words, &mut word, &mut to_stderr),
            '\n' | ';' => {
                end_command(&mut commands, &mut words, &mut word, &mut to_stderr, when, line);
                when = When::Always;
                if c == '\n' {
                    line += 1;
                }
            }
            '&' | '|' if chars.peek() == Some(&c) => {
                chars.next();
                end_command(&mut commands, &mut words, &mut word, &mut to_stderr, when, line);
                when = if c == '&' { When::IfOk } else { When::IfFailed };
            }
            '&' if word.as_deref().is_some_and(|w| w.ends_with('>')) => {
                // `>&2`: part of the word.
                word.get_or_insert_with(String::new).push(c);
            }
            '&' => {
                end_command(&mut commands, &mut words, &mut word, &mut to_stderr, when, line);
                when = When::Always;
            }
            '|' => return Err((line, "pipes are not supported by the fake API server's shell".into())),
            '#' if word.is_none() => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => w.push(c),
                        None => return Err((line, "Syntax error: Unterminated quoted string".into())),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') if matches!(chars.peek(), Some('"' | '\\' | '$' | '`')) => {
                            w.extend(chars.next());
                        }
                        Some(c) => w.push(c),
                        None => return Err((line, "Syntax error: Unterminated quoted string".into())),
                    }
                }
            }
            '\\' => {
                if let Some(next) = chars.next()
                    && next != '\n'
                {
                    word.get_or_insert_with(String::new).push(next);
                }
            }
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    end_command(&mut commands, &mut words, &mut word, &mut to_stderr, when, line);
    Ok(commands)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(script: &str) -> Vec<(Vec<&'static str>, bool, When)> {
        parse(script, 1)
            .unwrap()
            .into_iter()
            .map(|c| {
                let w: Vec<&'static str> = c.words.into_iter().map(|s| &*Box::leak(s.into_boxed_str())).collect();
                (w, c.to_stderr, c.when)
            })
            .collect()
    }

    #[test]
    fn scripts_split_into_commands_and_words() {
        assert_eq!(
            words("echo 'a  b' \"c \\\"d\\\"\"; false || echo x >&2 && exit 3 # gone"),
            vec![
                (vec!["echo", "a  b", "c \"d\""], false, When::Always),
                (vec!["false"], false, When::Always),
                (vec!["echo", "x"], true, When::IfFailed),
                (vec!["exit", "3"], false, When::IfOk),
            ]
        );
        assert_eq!(words("\n ;; \n"), vec![]);
        assert_eq!(parse("echo 'open", 4), Err((4, "Syntax error: Unterminated quoted string".into())));
        assert!(parse("echo a | cat", 1).is_err());
    }
}
