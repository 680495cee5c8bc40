//! The shell sandbox's cost per action: `Sandbox::run` against bare `bash -c` on the same
//! command in the same tree, interleaved so that both see the same load. Target: the overhead
//! at p50 under 10 ms. Wall time on a busy machine is mostly waiting for a CPU, so the CPU time
//! that each action's processes used (all of them: every one is reaped by its parent) is shown
//! beside it. Then an episode's reset (a fresh copy of a shipped file system, target < 20 ms)
//! and a submission's scoring (a fresh evaluation copy, the gold run, both `git status`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use std::sync::Arc;

use leap::env::Environment;
use leap::env::shell::exec::Semantics;
use leap::env::shell::fs::Template;
use leap::env::shell::sandbox::{Exit, Limits, Sandbox};
use leap::env::shell::{ShellEnv, Task};

use common::percentile;

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
        let (mut bare_cpu, mut boxed_cpu) = (Duration::ZERO, Duration::ZERO);
        for _ in 0..ROUNDS {
            let cpu = children_cpu();
            bare.push(time(|| bare_bash(tree.path(), command)));
            bare_cpu += children_cpu() - cpu;
            let cpu = children_cpu();
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
            boxed_cpu += children_cpu() - cpu;
        }
        let per = |cpu: Duration| cpu.as_secs_f64() * 1000.0 / ROUNDS as f64;
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
        println!(
            "    CPU time:      bare {:.2} ms, sandboxed {:.2} ms per action (mean)",
            per(bare_cpu),
            per(boxed_cpu)
        );
    }
    episodes();
}

/// Reset and submission of episodes over the shipped file systems.
fn episodes() {
    println!("shell episodes, {ROUNDS} rounds each:");
    for name in ["fs1", "fs2", "fs3"] {
        let template = Template::shipped(name).expect("the shipped file system materialises");
        let mut resets: Vec<Duration> = (0..ROUNDS)
            .map(|_| time(|| drop(template.fresh().expect("a fresh copy"))))
            .collect();
        println!(
            "  reset {name}: p50 {:.2} ms  p99 {:.2} ms  (target p50 < 20 ms)",
            percentile(&mut resets, 0.50),
            percentile(&mut resets, 0.99)
        );
    }
    let task = Arc::new(Task::new(
        "Count the text files under /testbed".into(),
        "find /testbed -name '*.txt' | wc -l".into(),
        Template::shipped("fs1").unwrap(),
        Semantics::Intercode,
    ));
    let mut submits: Vec<Duration> = (0..ROUNDS / 10)
        .map(|_| {
            let mut env = ShellEnv::new(task.clone(), 10);
            env.step("find /testbed -name '*.txt' | wc -l");
            time(|| assert!(env.step("submit").won))
        })
        .collect();
    println!(
        "  submit (fresh evaluation copy, gold run, two git status, TF-IDF): p50 {:.2} ms  p99 {:.2} ms",
        percentile(&mut submits, 0.50),
        percentile(&mut submits, 0.99)
    );
}

fn bare_bash(dir: &Path, command: &str) {
    let out = Command::new("bash")
        .args(["-c", command])
        .current_dir(dir)
        .output()
        .expect("bash runs");
    assert!(out.status.success());
}

/// User and system time of every reaped descendant so far.
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn time(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}
