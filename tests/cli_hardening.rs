//! The `leap` binary under hostile conditions: a reader that goes away, model output holding
//! terminal escapes, a read-only run folder, a full disk, flags out of range. Each runs the real
//! binary on a real run (the tiny model's rollout into a real SQLite database).

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use leap::store::{EpisodeFilter, Store};

fn leap() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_leap"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

/// One run for the whole test process: two showcase episodes of two steps each by the tiny
/// model, and a copy of the first whose reason and action hold terminal escapes.
fn run() -> &'static Path {
    static RUN: OnceLock<PathBuf> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("leap-cli-hardening-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let model = common::shared_tiny("leap-cli-hardening-model");
        let scenarios: Vec<_> =
            leap::scenario::load_all(&[PathBuf::from("scenarios/showcase.yaml")])
                .unwrap()
                .into_iter()
                .take(2)
                .collect();
        common::play(
            model,
            1024,
            &dir,
            &scenarios,
            &common::rollout_config("t", 2),
        );
        let mut store = Store::open(&dir).unwrap();
        let first = store.list_episodes(&EpisodeFilter::default()).unwrap()[0].id;
        let mut record = store.episode(first).unwrap().unwrap().record;
        record.key = "hostile/0".into();
        record.steps[0].reason = Some(HOSTILE_REASON.into());
        record.steps[0].raw_output = format!("REASON: {HOSTILE_REASON}\nACTION: look\x1b[8m");
        record.steps[0].action = "look\x1b[8m".into();
        store.insert_episode(&record).unwrap();
        dir
    })
}

/// Clears the screen, retitles the window and rings the bell, if a terminal acts on it.
const HOSTILE_REASON: &str = "fine\x1b[2J\x1b]0;pwned\x07\r\u{9b}31m";

fn hostile_id() -> i64 {
    let store = Store::open_existing(run()).unwrap();
    store
        .list_episodes(&EpisodeFilter::prefix("hostile/"))
        .unwrap()[0]
        .id
}

/// Runs `cmd` with stdout a pipe whose reader has already gone.
fn with_reader_gone(mut cmd: Command) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    cmd.stdout(writer).stderr(Stdio::piped());
    cmd.output().unwrap()
}

#[test]
fn a_reader_gone_away_ends_every_printing_command_quietly_by_sigpipe() {
    let run = run().display().to_string();
    let id = hostile_id().to_string();
    let commands: Vec<Vec<&str>> = vec![
        vec!["episodes", "list", "--run", &run],
        vec!["episodes", "list", "--run", &run, "--json"],
        vec!["episodes", "show", "--run", &run, &id, "--full"],
        vec!["labels", "list", "--run", &run],
        vec!["lineage", "--run", &run],
        vec!["scenarios", "list", "scenarios"],
        vec!["scenarios", "check", "scenarios/showcase.yaml"],
        vec!["scenarios", "schema"],
        vec![
            "model",
            "info",
            common::shared_tiny("leap-cli-hardening-model")
                .to_str()
                .unwrap(),
        ],
    ];
    for args in &commands {
        let mut cmd = leap();
        cmd.args(args);
        let out = with_reader_gone(cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGPIPE),
            "leap {}: {:?}, stderr: {stderr}",
            args.join(" "),
            out.status
        );
        assert!(stderr.is_empty(), "leap {}: {stderr}", args.join(" "));
    }
}

#[test]
fn control_characters_from_the_model_are_stored_as_they_came_and_printed_escaped() {
    let id = hostile_id();
    let stored = Store::open_existing(run())
        .unwrap()
        .episode(id)
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.record.steps[0].reason.as_deref(),
        Some(HOSTILE_REASON)
    );
    for args in [vec!["--full"], vec![]] {
        let out = leap()
            .args(["episodes", "show", "--run"])
            .arg(run())
            .arg(id.to_string())
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            !text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{text:?}"
        );
        assert!(text.contains("look\\x1b[8m"), "{text}");
        if !args.is_empty() {
            assert!(
                text.contains("fine\\x1b[2J\\x1b]0;pwned\\x07\\r\\u009b31m"),
                "{text}"
            );
        }
    }
    // JSON keeps the text exact (escaped the JSON way), for programs.
    let out = leap()
        .args(["episodes", "show", "--json", "--run"])
        .arg(run())
        .arg(id.to_string())
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["steps"][0]["reason"], HOSTILE_REASON);
}

/// Runs `leap args` in a mount namespace where `bind` is `--ro-bind` (read-only) or a small
/// `--tmpfs`, through bubblewrap: a read-only mount refuses writes even to root, where
/// permission bits do not.
fn leap_in_bwrap(mounts: &[&str], args: &[&str]) -> Output {
    Command::new("bwrap")
        .args(["--dev-bind", "/", "/"])
        .args(mounts)
        .arg(env!("CARGO_BIN_EXE_leap"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("bubblewrap (bwrap) runs")
}

#[test]
fn a_read_only_run_folder_opens_for_reading() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("run");
    std::fs::create_dir(&copy).unwrap();
    std::fs::copy(run().join("leap.db"), copy.join("leap.db")).unwrap();
    let path = copy.to_str().unwrap();
    let mounts = ["--ro-bind", path, path];
    for args in [
        vec!["episodes", "list", "--run", path],
        vec!["labels", "list", "--run", path],
    ] {
        let out = leap_in_bwrap(&mounts, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.is_empty(), "{args:?}");
    }
    let out = leap_in_bwrap(&mounts, &["episodes", "list", "--run", path]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("3 episodes"),
        "{out:?}"
    );
    // Nothing was written beside the database.
    let names: Vec<_> = std::fs::read_dir(&copy)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["leap.db"]);
}

#[test]
fn a_full_disk_reads_as_disk_full_naming_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    let full = full.to_str().unwrap();
    let run_dir = format!("{full}/run");
    let db_len = std::fs::metadata(run().join("leap.db")).unwrap().len();
    // Room for the database and a few pages more: the next episodes do not fit.
    let size = (db_len + 48 * 1024).to_string();
    let model = common::shared_tiny("leap-cli-hardening-model")
        .to_str()
        .unwrap()
        .to_string();
    let db = run().join("leap.db").display().to_string();
    let out = Command::new("bwrap")
        .args(["--dev-bind", "/", "/", "--size", &size, "--tmpfs", full])
        .args(["sh", "-c"])
        .arg(format!(
            "mkdir {run_dir} && cp {db} {run_dir}/leap.db && exec \"$0\" \"$@\""
        ))
        .arg(env!("CARGO_BIN_EXE_leap"))
        .args([
            "rollout",
            "--run",
            &run_dir,
            "--scenarios",
            "scenarios/showcase.yaml",
        ])
        .args([
            "--model",
            &model,
            "--horizon",
            "30",
            "--episodes",
            "4",
            "--label",
            "more",
        ])
        // Every episode plays its 30 steps: enough to fill the disk.
        .args(["--parallel", "2", "--no-cycle-stop"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{run_dir}/leap.db: "))
            && stderr.contains("the disk is full; free some space and run it again"),
        "{stderr}"
    );
}

#[test]
fn a_horizon_flag_out_of_range_is_refused_like_one_in_a_file() {
    for value in ["0", "4294967296"] {
        let out = leap()
            .args([
                "rollout",
                "--scenarios",
                "scenarios/showcase.yaml",
                "--horizon",
                value,
            ])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "horizon `{value}` is out of range, expected a whole number of steps from 1 to 4294967295"
            )),
            "{stderr}"
        );
    }
}

#[test]
fn a_shell_episode_without_a_writable_temporary_folder_says_so_and_ends() {
    // The file system cannot be put on disk, nor the sandbox probed: the episode still starts,
    // and its first step ends it with the reason, as an episode whose server cannot start does.
    let mut cmd = leap();
    cmd.args(["play", "scenarios/shell/alfa", "--id", "alfa-fs1-000"])
        .env("TMPDIR", "/nonexistent/leap-tmp");
    let out = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"ls\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stdout.contains(
            "cannot make a folder in the temporary folder /nonexistent/leap-tmp: No such file or directory"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("(set TMPDIR to a writable folder)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Episode over: reward 0. (1 steps)"),
        "{stdout}"
    );
}

/// OpenBLAS falls back to its generic kernels on a CPU it does not know (the development
/// machine's, named only "Intel Xeon Processor"), several times slower: `leap` starts itself
/// again with the kernels the CPU runs, so the kernels it ends with are never the generic ones
/// on a CPU with AVX2.
#[test]
fn leap_runs_openblas_with_kernels_the_cpu_has() {
    // The kernels each load of OpenBLAS chose, as it says with OPENBLAS_VERBOSE=2.
    let cores = |coretype: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_leap"));
        cmd.arg("--help").env("OPENBLAS_VERBOSE", "2");
        match coretype {
            Some(c) => cmd.env("OPENBLAS_CORETYPE", c),
            None => cmd.env_remove("OPENBLAS_CORETYPE"),
        };
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let found: Vec<String> = (text.lines())
            .filter_map(|l| l.strip_prefix("Core: "))
            .map(|c| c.trim().to_owned())
            .collect();
        assert!(
            !found.is_empty(),
            "OpenBLAS said nothing of its kernels: {text}"
        );
        found
    };
    let chosen = cores(None);
    if std::arch::is_x86_feature_detected!("avx2") {
        let last = chosen.last().unwrap().as_str();
        assert!(
            !["Prescott", "Core2", "Penryn"].contains(&last),
            "generic kernels on a CPU with AVX2: {chosen:?}"
        );
    }
    // What a user sets is left alone.
    assert_eq!(cores(Some("Haswell")), ["Haswell"]);
}
