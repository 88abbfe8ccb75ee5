//! The fuzzer's own tests: it is deterministic for a seed, its mutators never panic, and it
//! finds a planted bug, saving the input that shows it.

mod fuzz;

use std::panic::{AssertUnwindSafe, catch_unwind};

use fuzz::{Fuzzer, SplitMix64, chunking, chunks, mutate};

#[test]
fn a_seed_replays_the_same_run() {
    let run = |seed| {
        let mut inputs = Vec::new();
        let summary = Fuzzer::new("proxy").quiet().run_with(seed, 300, &mut |input, rng| {
            inputs.push((input.to_vec(), rng.next_u64()));
            format!("{}", input.len() % 7)
        });
        (summary, inputs)
    };
    let (a, b, c) = (run(7), run(7), run(8));
    assert_eq!(a, b);
    assert_ne!(a.1, c.1, "another seed tries other inputs");
    assert_eq!(a.0.tried, 300 + fuzz::load_corpus("proxy").len() as u64);
}

#[test]
fn the_mutators_and_chunkings_never_panic_on_any_input() {
    let mut rng = SplitMix64::new(3);
    let pool = vec![Vec::new(), b"a\nb\n".to_vec(), vec![0xff; 3]];
    for i in 0..20_000 {
        let mut input = pool[i % 3].clone();
        for _ in 0..3 {
            mutate(&mut input, &pool, fuzz::COMMON_TOKENS, &mut rng);
        }
        let cuts = chunking(&mut rng, input.len());
        assert_eq!(chunks(&input, &cuts).concat(), input, "chunks put back together are the input");
    }
}

#[test]
fn a_planted_bug_is_found_and_its_input_saved() {
    // A "parser" that fails on three blank lines in a row, which no seed of the watch corpus
    // holds: mutations must make them.
    let seeds = fuzz::load_corpus("watch");
    assert!(seeds.iter().all(|(_, s)| !fuzz::contains(s, b"\n\n\n\n")));
    let found = catch_unwind(AssertUnwindSafe(|| {
        Fuzzer::new("watch").quiet().run_with(11, 20_000, &mut |input, _| {
            assert!(!fuzz::contains(input, b"\n\n\n\n"), "planted bug");
            String::new()
        })
    }));
    assert!(found.is_err(), "the planted bug was not found in 20000 inputs");
    let saved = std::fs::read_dir(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures"))
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("watch-b-"));
    assert!(saved, "the failing input was not saved");
}
