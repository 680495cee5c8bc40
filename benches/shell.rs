//! The shell sandbox's cost per action: `Sandbox::run` against bare `bash -c` on the same
//! command in the same tree, interleaved so that both see the same load. Target: the overhead
//! at p50 under 10 ms.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use leap::env::shell::sandbox::{Exit, Limits, Sandbox};

const ROUNDS: usize = 300;

fn main() {
    let sandbox = Sandbox::get().unwrap_or_else(|e| panic!("{e}"));
    let tree = tempfile::tempdir().expect("a temporary tree");
    let data = tree.path().join("data");
    std::fs::create_dir(&data).unwrap();
    for i in 0..20 {
        std::fs::write(data.join(format!("file{i}.txt")), format!("line {i}\n")).unwrap();
    }
    let limits = Limits::default();
    println!("shell sandbox, per action, {ROUNDS} rounds each, interleaved:");
    for command in ["true", "ls -l data"] {
        let mut bare = Vec::with_capacity(ROUNDS);
        let mut boxed = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            bare.push(time(|| bare_bash(tree.path(), command)));
            boxed.push(time(|| {
                let run = sandbox
                    .run(tree.path(), "/", &["bash", "-c", command], &limits)
                    .expect("the sandbox runs");
                assert_eq!(
                    run.exit,
                    Exit::Code(0),
                    "{}",
                    String::from_utf8_lossy(&run.output)
                );
            }));
        }
        let (b50, b99) = (percentile(&mut bare, 0.50), percentile(&mut bare, 0.99));
        let (s50, s99) = (percentile(&mut boxed, 0.50), percentile(&mut boxed, 0.99));
        let over50 = s50 - b50;
        println!("  `{command}`:");
        println!("    bare bash -c:  p50 {b50:6.2} ms  p99 {b99:6.2} ms");
        println!("    sandboxed:     p50 {s50:6.2} ms  p99 {s99:6.2} ms");
        println!(
            "    overhead:      p50 +{over50:.2} ms ({:.1}x)  p99 +{:.2} ms ({:.1}x)  (target p50 < 10 ms: {})",
            s50 / b50,
            s99 - b99,
            s99 / b99,
            if over50 < 10.0 { "met" } else { "NOT met" }
        );
    }
}

fn bare_bash(dir: &Path, command: &str) {
    let out = Command::new("bash")
        .args(["-c", command])
        .current_dir(dir)
        .output()
        .expect("bash runs");
    assert!(out.status.success());
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}

/// The `q` quantile in milliseconds (nearest rank).
fn percentile(samples: &mut [Duration], q: f64) -> f64 {
    samples.sort();
    let rank = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1].as_secs_f64() * 1000.0
}
