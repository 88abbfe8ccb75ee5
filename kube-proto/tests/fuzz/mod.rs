//! A small, seeded mutation fuzzer that runs on the stable toolchain, inside `cargo test`.
//!
//! Each target starts from its committed corpus (`kube-proto/fuzz/corpus/<target>/`), mutates
//! the inputs with structure-aware mutators (truncation, bit flips, splices of two inputs,
//! duplicated, deleted and swapped ranges and lines, interesting tokens, huge numbers, deep
//! nesting), and checks the target's invariants on each input. The target's check returns a
//! short signature of what the input did (which error, which events): an input whose
//! signature is new is kept and mutated further, a cheap stand-in for coverage guidance.
//!
//! - `FUZZ_ITERATIONS`: inputs per target (each target has a small default, for CI).
//! - `FUZZ_SEED`: the seed (decimal or `0x` hex), or `random` for one from the clock. The default
//!   is fixed, so that a CI run is deterministic. The seed is printed when a check fails.
//! - `FUZZ_SECONDS`: stop mutating after this many seconds (for soak runs, with a large
//!   `FUZZ_ITERATIONS`).
//! - `FUZZ_REPLAY`: a file whose bytes are checked alone (a failure's input is written to
//!   `target/fuzz-failures/`).
//!
//! Every target writes one summary line (inputs tried, inputs kept, failures) straight to
//! stderr, so it shows in `cargo test` output whether the test passed or not.

#![allow(dead_code)]
// each test file uses a part of it
// The harness reads its corpus, its settings and the clock; the code under test does not.
#![allow(clippy::disallowed_methods)]

use std::collections::BTreeSet;
use std::io::Write as _;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

pub use kube_proto::rng::SplitMix64;

/// Bytes that often matter to parsers of text formats.
pub const COMMON_TOKENS: &[&[u8]] = &[
    b"\n",
    b"\r\n",
    b"\r\n\r\n",
    b"\r",
    b"\t",
    b" ",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b"'",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"%",
    b"%00",
    b":",
    b",",
    b"\0",
    b"\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\xf0\x9f\x92\xa9",
    b"99999999999999999999999",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"2147483648",
    b"-1",
    b"0",
    b"1e999",
    b"-0.0",
    b"null",
    b"true",
    b"\"\"",
    b"{}",
    b"[]",
];

/// Tokens for YAML inputs.
pub const YAML_TOKENS: &[&[u8]] = &[
    b"&a ",
    b"*a",
    b"<<: *a",
    b"- ",
    b"? ",
    b"!!binary ",
    b"!!str ",
    b"!tag ",
    b"---\n",
    b"...\n",
    b"#",
    b"|\n",
    b">-\n",
    b"  ",
    b": ",
    b"~",
    b"yes",
    b"0x1F",
    b".inf",
];

/// Where a target's corpus lives.
pub fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

/// The committed seeds of a target, sorted by file name (so that runs are reproducible).
pub fn load_corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let seeds: Vec<_> = files
        .into_iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()))
        .collect();
    assert!(!seeds.is_empty(), "the corpus {} is empty", dir.display());
    seeds
}

/// A seed from `FUZZ_SEED`, or `default`.
pub fn seed_from_env(default: u64) -> u64 {
    match std::env::var("FUZZ_SEED") {
        Ok(s) if s == "random" => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(default),
        Ok(s) => parse_u64(&s).unwrap_or_else(|| panic!("FUZZ_SEED={s:?} is not a number")),
        Err(_) => default,
    }
}

/// The number of inputs from `FUZZ_ITERATIONS`, or `default`.
pub fn iterations_from_env(default: u64) -> u64 {
    match std::env::var("FUZZ_ITERATIONS") {
        Ok(s) => parse_u64(&s).unwrap_or_else(|| panic!("FUZZ_ITERATIONS={s:?} is not a number")),
        Err(_) => default,
    }
}

/// The time limit from `FUZZ_SECONDS`, if any.
pub fn seconds_from_env() -> Option<u64> {
    let s = std::env::var("FUZZ_SECONDS").ok()?;
    Some(parse_u64(&s).unwrap_or_else(|| panic!("FUZZ_SECONDS={s:?} is not a number")))
}

fn parse_u64(s: &str) -> Option<u64> {
    let s = s.trim().replace('_', "");
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Writes a line to stderr directly: libtest captures `eprintln!`, not the stream itself.
pub fn report(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// One fuzz target: its name, corpus and dictionary.
pub struct Fuzzer {
    name: &'static str,
    tokens: Vec<&'static [u8]>,
    max_len: usize,
    default_iterations: u64,
    default_seed: u64,
    quiet: bool,
}

/// What a run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Inputs checked (the corpus included).
    pub tried: u64,
    /// Mutated inputs kept because they did something new.
    pub kept: u64,
    /// Distinct signatures seen.
    pub signatures: usize,
}

impl Fuzzer {
    /// A target named as its corpus folder.
    pub fn new(name: &'static str) -> Self {
        Fuzzer {
            name,
            tokens: COMMON_TOKENS.to_vec(),
            max_len: 64 * 1024,
            default_iterations: 1000,
            default_seed: 0x6b75_6265_2d66_757a, // "kube-fuz"
            quiet: false,
        }
    }

    /// Prints nothing (for the fuzzer's own tests).
    pub fn quiet(mut self) -> Self {
        self.quiet = true;
        self
    }

    /// Adds tokens to the dictionary.
    pub fn tokens(mut self, tokens: &[&'static [u8]]) -> Self {
        self.tokens.extend_from_slice(tokens);
        self
    }

    /// Inputs are cut to this length.
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Inputs per run when `FUZZ_ITERATIONS` is not set.
    pub fn default_iterations(mut self, n: u64) -> Self {
        self.default_iterations = n;
        self
    }

    /// Runs the committed corpus, then mutated inputs. `check` gets each input and a generator
    /// (for chunkings and other choices), panics when an invariant does not hold, and returns
    /// a short signature of the input's behaviour. On a failure the seed, the input's number
    /// and a file holding the input are printed, then the panic goes on.
    pub fn run(&self, mut check: impl FnMut(&[u8], &mut SplitMix64) -> String) -> Summary {
        if let Ok(path) = std::env::var("FUZZ_REPLAY") {
            let input = std::fs::read(&path).unwrap_or_else(|e| panic!("FUZZ_REPLAY={path}: {e}"));
            let seed = seed_from_env(self.default_seed);
            let signature = check(&input, &mut SplitMix64::new(seed));
            report(&format!("fuzz {}: replayed {path} ({} bytes): {signature}", self.name, input.len()));
            return Summary { tried: 1, kept: 0, signatures: 1 };
        }
        let seed = seed_from_env(self.default_seed);
        let iterations = iterations_from_env(self.default_iterations);
        self.run_with(seed, iterations, &mut check)
    }

    /// [`run`](Self::run) with an explicit seed and number of mutated inputs.
    pub fn run_with(
        &self,
        seed: u64,
        iterations: u64,
        check: &mut dyn FnMut(&[u8], &mut SplitMix64) -> String,
    ) -> Summary {
        let started = Instant::now();
        let seeds = load_corpus(self.name);
        let mut rng = SplitMix64::new(seed);
        let mut pool: Vec<Vec<u8>> = Vec::new();
        let mut seen = BTreeSet::new();
        let mut summary = Summary { tried: 0, kept: 0, signatures: 0 };
        let corpus_len = seeds.len();
        let mut attempt = |index: u64, origin: &str, input: &[u8], rng: &mut SplitMix64| -> String {
            let mut input_rng = SplitMix64::new(rng.next_u64());
            match catch_unwind(AssertUnwindSafe(|| check(input, &mut input_rng))) {
                Ok(signature) => signature,
                Err(panic) => {
                    let file = save_failure(self.name, seed, index, input);
                    if self.quiet {
                        resume_unwind(panic)
                    }
                    report(&format!(
                        "fuzz {}: FAILED on input #{index} ({origin}, {} bytes), seed {seed:#x}\n  input saved to {}\n  \
                         replay: FUZZ_REPLAY={} FUZZ_SEED={seed:#x} cargo test -p kube-proto --test fuzz_{}\n  \
                         or the whole run: FUZZ_SEED={seed:#x} FUZZ_ITERATIONS={} cargo test -p kube-proto --test fuzz_{}",
                        self.name,
                        input.len(),
                        file.display(),
                        file.display(),
                        self.name,
                        (index + 1).saturating_sub(corpus_len as u64),
                        self.name,
                    ));
                    resume_unwind(panic)
                }
            }
        };
        // The committed seeds, as they are.
        for (name, input) in &seeds {
            let signature = attempt(summary.tried, name, input, &mut rng);
            summary.tried += 1;
            seen.insert(signature);
            pool.push(input.clone());
        }
        let deadline = seconds_from_env();
        let mut iterations = iterations;
        for i in 0..iterations {
            if deadline.is_some_and(|d| i % 64 == 0 && started.elapsed().as_secs() >= d) {
                iterations = i;
                break;
            }
            let parent = rng.below(pool.len() as u64) as usize;
            let mut input = pool[parent].clone();
            let stacked = 1 + rng.below(4);
            for _ in 0..stacked {
                self.mutate(&mut input, &pool, &mut rng);
            }
            input.truncate(self.max_len);
            let signature = attempt(summary.tried, &format!("mutation {i} of pool entry {parent}"), &input, &mut rng);
            summary.tried += 1;
            // Keep what did something new, within bounds (the corpus stays in the pool).
            if seen.insert(signature) && pool.len() < corpus_len + 512 {
                pool.push(input);
                summary.kept += 1;
            }
        }
        summary.signatures = seen.len();
        if self.quiet {
            return summary;
        }
        report(&format!(
            "fuzz {}: {} inputs tried ({} seeds from fuzz/corpus/{}, {} mutated; {} kept for new behaviour, {} signatures), \
             0 failures, seed {seed:#x}, {:.1?}",
            self.name,
            summary.tried,
            corpus_len,
            self.name,
            iterations,
            summary.kept,
            summary.signatures,
            started.elapsed(),
        ));
        summary
    }

    /// One mutation, in place.
    pub fn mutate(&self, input: &mut Vec<u8>, pool: &[Vec<u8>], rng: &mut SplitMix64) {
        mutate(input, pool, &self.tokens, rng)
    }
}

fn save_failure(name: &str, seed: u64, index: u64, input: &[u8]) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    let file = dir.join(format!("{name}-{seed:x}-{index}.bin"));
    let _ = std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&file, input));
    file
}

/// A position in `0..=len`.
fn pos(rng: &mut SplitMix64, len: usize) -> usize {
    rng.below(len as u64 + 1) as usize
}

/// A range within `0..len`, usually short.
fn range(rng: &mut SplitMix64, len: usize) -> (usize, usize) {
    let start = pos(rng, len);
    let max = (len - start).min(if rng.chance(0.8) { 16 } else { 4096 });
    let end = start + pos(rng, max);
    (start, end)
}

/// The byte ranges of the lines of `input` (newline included).
fn lines(input: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &b) in input.iter().enumerate() {
        if b == b'\n' {
            out.push((start, i + 1));
            start = i + 1;
        }
    }
    if start < input.len() {
        out.push((start, input.len()));
    }
    out
}

/// Applies one randomly chosen mutation.
pub fn mutate(input: &mut Vec<u8>, pool: &[Vec<u8>], tokens: &[&[u8]], rng: &mut SplitMix64) {
    let len = input.len();
    match rng.below(15) {
        // Truncate.
        0 => input.truncate(pos(rng, len)),
        // Flip a few bits.
        1 => {
            for _ in 0..1 + rng.below(4) {
                if !input.is_empty() {
                    let i = rng.below(input.len() as u64) as usize;
                    input[i] ^= 1 << rng.below(8);
                }
            }
        }
        // Set a byte to an interesting value.
        2 => {
            if len > 0 {
                let i = rng.below(len as u64) as usize;
                input[i] = *rng.pick(b"\0\n\r\t \"'{}[]:,\\%\x7f\x80\xc3\xff0-").unwrap();
            }
        }
        // Delete a range.
        3 => {
            let (a, b) = range(rng, len);
            input.drain(a..b);
        }
        // Duplicate a range somewhere.
        4 => {
            let (a, b) = range(rng, len);
            let copy = input[a..b].to_vec();
            let at = pos(rng, len);
            input.splice(at..at, copy);
        }
        // Splice: a prefix of this input and a suffix of another.
        5 => {
            let other = &pool[rng.below(pool.len() as u64) as usize];
            let cut = pos(rng, len);
            let from = pos(rng, other.len());
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        // Insert a token (sometimes many times over: deep nesting, long runs).
        6 | 7 => {
            let token = *rng.pick(tokens).unwrap();
            let times = if rng.chance(0.9) { 1 } else { 1 + rng.below(300) as usize };
            let at = pos(rng, len);
            input.splice(at..at, token.repeat(times));
        }
        // Overwrite a range with a token.
        8 => {
            let token = *rng.pick(tokens).unwrap();
            let (a, b) = range(rng, len);
            input.splice(a..b, token.iter().copied());
        }
        // Replace a number with a huge, negative or odd one.
        9 => {
            let digits: Vec<usize> = (0..len).filter(|&i| input[i].is_ascii_digit()).collect();
            if let Some(&i) = rng.pick(&digits) {
                let mut end = i;
                while end < len && input[end].is_ascii_digit() {
                    end += 1;
                }
                let number: &[u8] = rng
                    .pick(&[
                        &b"99999999999999999999999999"[..],
                        b"18446744073709551616",
                        b"4294967296",
                        b"2147483648",
                        b"-1",
                        b"0",
                        b"1e400",
                        b"0x10",
                        b"007",
                    ])
                    .unwrap();
                input.splice(i..end, number.iter().copied());
            }
        }
        // Duplicate a line.
        10 => {
            let lines = lines(input);
            if let Some(&(a, b)) = rng.pick(&lines) {
                let copy = input[a..b].to_vec();
                let &(at, _) = rng.pick(&lines).unwrap();
                input.splice(at..at, copy);
            }
        }
        // Delete a line.
        11 => {
            let lines = lines(input);
            if let Some(&(a, b)) = rng.pick(&lines) {
                input.drain(a..b);
            }
        }
        // Swap two lines.
        12 => {
            let lines = lines(input);
            if lines.len() >= 2 {
                let i = rng.below(lines.len() as u64) as usize;
                let j = rng.below(lines.len() as u64) as usize;
                let (i, j) = (i.min(j), i.max(j));
                if i != j {
                    let (a, b) = (lines[i], lines[j]);
                    let mut out = input[..a.0].to_vec();
                    out.extend_from_slice(&input[b.0..b.1]);
                    out.extend_from_slice(&input[a.1..b.0]);
                    out.extend_from_slice(&input[a.0..a.1]);
                    out.extend_from_slice(&input[b.1..]);
                    *input = out;
                }
            }
        }
        // Insert a line of another input.
        13 => {
            let other = &pool[rng.below(pool.len() as u64) as usize];
            let theirs = lines(other);
            if let Some(&(a, b)) = rng.pick(&theirs) {
                let ours = lines(input);
                let at = rng.pick(&ours).map_or(0, |l| l.0);
                input.splice(at..at, other[a..b].iter().copied());
            }
        }
        // Repeat the whole input's beginning (long lines, big bodies).
        _ => {
            let (a, b) = range(rng, len);
            let copy = input[a..b].repeat(1 + rng.below(64) as usize);
            let at = pos(rng, len);
            input.splice(at..at, copy);
        }
    }
}

/// Cut points for feeding `len` bytes in chunks: byte by byte, every `n` bytes, or at random
/// offsets. The result is sorted, within `1..len`, and says where each chunk after the first
/// starts.
pub fn chunking(rng: &mut SplitMix64, len: usize) -> Vec<usize> {
    if len <= 1 {
        return Vec::new();
    }
    match rng.below(4) {
        0 if len <= 4096 => (1..len).collect(),
        1 => {
            let every = 1 + rng.below(64) as usize;
            (1..len).filter(|i| i % every == 0).collect()
        }
        _ => {
            let mut cuts: Vec<usize> = (0..rng.below(32)).map(|_| 1 + rng.below(len as u64 - 1) as usize).collect();
            cuts.sort_unstable();
            cuts.dedup();
            cuts
        }
    }
}

/// `input` cut at `cuts` (from [`chunking`]).
pub fn chunks<'a>(input: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for &cut in cuts {
        out.push(&input[start..cut]);
        start = cut;
    }
    out.push(&input[start..]);
    out
}

/// Whether `hay` contains `needle`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The offsets where `needle` occurs in `hay`.
pub fn occurrences(hay: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return Vec::new();
    }
    (0..=hay.len() - needle.len()).filter(|&i| &hay[i..i + needle.len()] == needle).collect()
}
