//! Fuzzing the parsers that read what users and models write: the scenario loader, the key
//! file, GGUF headers and the model's answers (the `REASON:`/`ACTION:` parser, the
//! whole-trajectory JSON parser), and the checks a model passes before llama.cpp reads it. A mutation fuzzer: each target starts from real inputs
//! (shipped files, recorded answers) and mutates them (bit flips, interesting bytes, tokens of
//! the format, deleted, repeated and spliced spans); any panic fails the test and leaves the
//! input under `target/fuzz-crashes/` as a regression case. `just test` runs a few thousand
//! inputs per target; `LEAP_FUZZ_ITERS=10000000 cargo test --release --test fuzz -- --nocapture`
//! is the long run the README reports.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn iterations() -> usize {
    std::env::var("LEAP_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3_000)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One input mutated 1 to 4 times.
fn mutate(rng: &mut ChaCha8Rng, input: &mut Vec<u8>, seeds: &[Vec<u8>], dict: &[&[u8]]) {
    const INTERESTING: &[u8] = b"\0\n\r\t :-[]{}\"'\\#&*!|>%@`,0\xff\x7f\xc3";
    for _ in 0..rng.random_range(1..=4) {
        let len = input.len();
        match rng.random_range(0..8) {
            0 if len > 0 => {
                let at = rng.random_range(0..len);
                input[at] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let at = rng.random_range(0..len);
                input[at] = INTERESTING[rng.random_range(0..INTERESTING.len())];
            }
            2 => {
                let token = dict[rng.random_range(0..dict.len())];
                let at = rng.random_range(0..=len);
                input.splice(at..at, token.iter().copied());
            }
            3 if len > 0 => {
                let at = rng.random_range(0..len);
                let end = (at + rng.random_range(1..=64)).min(len);
                input.drain(at..end);
            }
            4 if len > 0 => {
                // Repeat a span (a deep nesting, a long line).
                let at = rng.random_range(0..len);
                let end = (at + rng.random_range(1..=32)).min(len);
                let span = input[at..end].to_vec();
                for _ in 0..rng.random_range(1..=8) {
                    input.splice(at..at, span.iter().copied());
                }
            }
            5 => {
                // Splice in a span of another seed.
                let other = &seeds[rng.random_range(0..seeds.len())];
                if !other.is_empty() {
                    let from = rng.random_range(0..other.len());
                    let to = (from + rng.random_range(1..=128)).min(other.len());
                    let at = rng.random_range(0..=len);
                    input.splice(at..at, other[from..to].iter().copied());
                }
            }
            6 if len > 0 => {
                input.truncate(rng.random_range(0..len));
            }
            _ => {
                let at = rng.random_range(0..=len);
                let mut bytes = vec![0u8; rng.random_range(1..=8)];
                rng.fill_bytes(&mut bytes);
                input.splice(at..at, bytes);
            }
        }
    }
    input.truncate(1 << 16);
}

/// Runs `target` on `iterations()` mutated inputs; a panic fails with the input saved.
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, dict: &[&[u8]], target: impl Fn(&[u8])) {
    assert!(!seeds.is_empty());
    let n = iterations();
    // Another seed (`LEAP_FUZZ_SEED`) draws other inputs: long runs split over processes.
    let seed = std::env::var("LEAP_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x1ea9);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let started = Instant::now();
    // Every seed as it is first.
    for seed in &seeds {
        target(seed);
    }
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut crash = None;
    for i in 0..n {
        let mut input = seeds[i % seeds.len()].clone();
        mutate(&mut rng, &mut input, &seeds, dict);
        if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
            crash = Some((i, input));
            break;
        }
    }
    std::panic::set_hook(hook);
    if let Some((i, input)) = crash {
        let dir = root().join("target/fuzz-crashes");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}-{i}.bin"));
        std::fs::write(&path, &input).unwrap();
        // Again, outside catch_unwind, for the message.
        target(&input);
        panic!(
            "{name}: input {i} panicked without a message; saved in {}",
            path.display()
        );
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "fuzz {name}: {n} inputs in {secs:.1} s ({:.0}/s), no panic",
        n as f64 / secs.max(1e-9)
    );
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn the_scenario_loader_never_panics() {
    let mut seeds = vec![read("scenarios/showcase.yaml")];
    for (kind, split) in [("household", "test"), ("shop", "test"), ("shell", "test")] {
        let dir = root().join("scenarios").join(kind).join(split);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        seeds.extend(files.iter().take(2).map(|f| std::fs::read(f).unwrap()));
    }
    let external = read("scenarios/external/textworld.yaml");
    seeds.push(external[..external.len().min(3000)].to_vec());
    let dict: &[&[u8]] = &[
        b"\n- ",
        b"kind: ",
        b"household",
        b"shop",
        b"shell",
        b"external",
        b"horizon: ",
        b"99999999999999999999999",
        b"-1",
        b"task: ",
        b"world: ",
        b"receptacles:",
        b"contents: [",
        b"privileged:",
        b"<<: *a",
        b"&a ",
        b"*a",
        b"!!python/object ",
        b"!!binary ",
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b"'",
        b"~",
        b"null",
        b".nan",
        b"---\n",
        b"...\n",
        b"\t",
    ];
    fuzz("scenario", seeds, dict, |bytes| {
        let _ = leap::scenario::parse_text(Path::new("fuzz.yaml"), &text(bytes));
    });
}

#[test]
fn the_key_file_parser_never_panics() {
    let seeds = vec![
        read("assets/keys.yaml"),
        b"episode:\n  step: [s, ctrl-s]\nglobal:\n  quit: []\n".to_vec(),
    ];
    let dict: &[&[u8]] = &[
        b"global:",
        b"episode:",
        b"quit:",
        b"ctrl-",
        b"alt-",
        b"shift-",
        b"f12",
        b"f99",
        b"enter",
        b"[",
        b"]",
        b", ",
        b"\n  ",
        b"\xc3\xa9",
    ];
    let defaults = leap::tui::keys::Keymap::defaults();
    fuzz("keys", seeds, dict, |bytes| {
        let mut map = defaults.clone();
        let _ = map.apply(Path::new("keys.yaml"), &text(bytes));
    });
}

#[test]
fn the_gguf_reader_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("tiny.gguf");
    let model = leap::model::default_model_path();
    leap::model::write_tiny(&model, &tiny, &leap::model::TinySpec::default()).unwrap();
    // The header and the metadata: the vocabulary, the hyper-parameters and the tensor table.
    let whole = std::fs::read(&tiny).unwrap();
    let seeds = vec![whole[..whole.len().min(1 << 16)].to_vec()];
    let dict: &[&[u8]] = &[
        b"GGUF",
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0, 0, 0, 0, 0, 0, 0, 0],
        &[0x10, 0, 0, 0],
        b"llama.block_count",
        b"tokenizer.ggml.tokens",
    ];
    let path = dir.path().join("fuzzed.gguf");
    fuzz("gguf", seeds, dict, |bytes| {
        // The reader, then every check made before llama.cpp sees a file.
        if let Ok(file) = leap::model::gguf::GgufFile::from_bytes(&path, bytes) {
            let _ = leap::model::check::check_header(&file);
        }
    });
}

#[test]
fn the_answer_parsers_never_panic() {
    let admissible: Vec<String> = ["go to fridge 1", "search[...]", "click[buy now]", "look"]
        .map(String::from)
        .to_vec();
    let seeds = vec![
        b"REASON: The apple is often in the fridge.\nACTION: go to fridge 1".to_vec(),
        b"REASON: search\nACTION: search[red shoes]".to_vec(),
        br#"{"summary": "s", "trajectory": [{"timestep": 0, "is_corrected": true, "corrected_reason": "r", "corrected_action": "look"}]}"#.to_vec(),
        br#"```json
{"reason": "x", "action": "look"}
```"#
            .to_vec(),
    ];
    let dict: &[&[u8]] = &[
        b"REASON:",
        b"ACTION:",
        b"\n",
        b"{",
        b"}",
        b"\"timestep\": ",
        b"18446744073709551616",
        b"-1",
        b"\"is_corrected\": ",
        b"true",
        b"[",
        b"]",
        b"\\u0000",
        b"\\ud800",
        b"\x1b[31m",
    ];
    fuzz("answers", seeds, dict, |bytes| {
        let t = text(bytes);
        let _ = leap::agent::parse::parse(&t, &admissible);
        let _ = leap::teacher::trajectory::parse(&t);
    });
}
