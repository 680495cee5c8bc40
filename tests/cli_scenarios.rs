//! The `leap` binary: `scenarios check|list|solve|generate|import` and `play`, as a user runs them.

use assert_cmd::Command;
use serde_json::Value;

fn leap() -> Command {
    let mut cmd = Command::cargo_bin("leap").unwrap();
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out).expect("stdout is JSON")
}

#[test]
fn help_lists_every_command() {
    let out = leap()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    for cmd in ["scenarios", "play", "model"] {
        assert!(
            text.contains(&format!("  {cmd} ")),
            "{cmd} missing from:\n{text}"
        );
    }
}

#[test]
fn check_passes_on_the_shipped_scenarios_and_fails_with_locations_on_bad_ones() {
    leap()
        .args(["scenarios", "check", "scenarios"])
        .assert()
        .success();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "id: x\nkind: household\nsplit: train\ntask: {goal: pick_and_place, object: apple, target: countertop}\nhorizon: 5\nworld:\n  receptacles:\n    - {name: fridge 1, contents: [aple 1]}\n").unwrap();
    let out = leap()
        .args(["scenarios", "check"])
        .arg(&bad)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "{}:8:35: unknown object type `aple` (did you mean `apple`?)",
            bad.display()
        )),
        "{stderr}"
    );
    let out = leap()
        .args(["scenarios", "check", "--json"])
        .arg(&bad)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["ok"], false);
    assert_eq!(v["problems"][0]["line"], 8);
    assert_eq!(v["problems"][0]["col"], 35);
}

#[test]
fn list_and_solve_print_the_documented_json() {
    let out = leap()
        .args(["scenarios", "list", "scenarios/showcase.yaml", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for key in ["id", "kind", "split", "task"] {
        assert!(rows[0][key].is_string(), "{key}");
    }
    assert_eq!(rows[0]["task"], "put a mug in coffeemachine.");

    let out = leap()
        .args(["scenarios", "solve", "scenarios/household/test", "--json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["total"], v["solved"]);
    assert!(v["total"].as_u64().unwrap() >= 60);
    assert_eq!(v["failures"].as_array().unwrap().len(), 0);
    assert!(v["scenarios"][0]["plan"].as_array().unwrap().len() >= 2);
}

#[test]
fn generate_writes_loadable_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    leap()
        .args([
            "scenarios",
            "generate",
            "household",
            "--count",
            "7",
            "--seed",
            "11",
            "--split",
            "test",
            "--out",
        ])
        .arg(dir.path())
        .assert()
        .success();
    let out = leap()
        .args(["scenarios", "list", "--json"])
        .arg(dir.path())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v.as_array().unwrap().len(), 7);
    assert!(v.as_array().unwrap().iter().all(|r| r["split"] == "test"));
}

#[test]
fn import_turns_intercode_task_files_into_the_shipped_shell_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let out = leap()
        .args([
            "scenarios",
            "import",
            "intercode",
            "tests/data/intercode_bash/nl2bash_fs_3.json",
            "tests/data/intercode_bash_alfa/nl2bash_fs_5.json",
            "--out",
        ])
        .arg(dir.path())
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        stderr.trim(),
        format!(
            "wrote 78 scenarios to {} (test 60, alfa 18)",
            dir.path().display()
        )
    );
    for (set, id) in [("test", "intercode-fs3-059"), ("alfa", "alfa-fs5-017")] {
        let name = format!("{set}/{id}.yaml");
        let made = std::fs::read_to_string(dir.path().join(&name)).unwrap();
        let shipped = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("scenarios/shell")
                .join(&name),
        )
        .unwrap();
        assert_eq!(made, shipped, "{name}");
    }
    let out = leap()
        .args(["scenarios", "list", "--json"])
        .arg(dir.path())
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), 78);
    assert!(rows.iter().all(|r| r["kind"] == "shell"));

    let bad = dir.path().join("nl2bash_fs_1.json");
    std::fs::write(
        &bad,
        r#"[{"query": "list", "gold": "ls"}, {"query": "count"}]"#,
    )
    .unwrap();
    let out = leap()
        .args(["scenarios", "import", "intercode", "--out"])
        .arg(dir.path().join("more"))
        .arg(&bad)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "{}: task 1: no `gold`, expected the gold command",
            bad.display()
        )),
        "{stderr}"
    );
    assert!(!dir.path().join("more").exists());
}

#[test]
fn play_reaches_the_goal_and_stops_cleanly_at_end_of_input() {
    let moves = "go to cabinet 1\nopen cabinet 1\ntake mug 1 from cabinet 1\nfly away\ngo to coffeemachine 1\nput mug 1 in/on coffeemachine 1\n";
    let out = leap()
        .args(["play", "scenarios/showcase.yaml"])
        .write_stdin(moves)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("Your task is to: put a mug in coffeemachine."),
        "{text}"
    );
    assert!(text.contains("> Nothing happens."), "{text}");
    assert!(
        text.contains("Task complete: reward 1. (6 steps)"),
        "{text}"
    );

    // Ctrl-D (end of input) mid-episode quits with success.
    leap()
        .args([
            "play",
            "scenarios/showcase.yaml",
            "--id",
            "showcase-tidy-soap",
        ])
        .write_stdin("look\n")
        .assert()
        .success();
    let out = leap()
        .args(["play", "scenarios/showcase.yaml", "--id", "nope"])
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("no scenario `nope`")
    );
}
