//! Shell scenario files: the shipped sets are exactly the importer's output of the vendored
//! InterCode-Bash and InterCode-ALFA task files, split by file system; bad task files and bad
//! scenario files get errors that say where. Reading needs no sandbox.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use leap::env::shell::fs::{FileSystems, Node};
use leap::env::shell::gold::Gold;
use leap::env::shell::import::{self, ImportError};
use leap::env::shell::scenario::{self as shell_scenario, ShellScenario};
use leap::scenario::{self, Split};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The vendored task files, InterCode's then ALFA's, in the order the shipped sets were made.
fn task_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in [
        "tests/data/intercode_bash",
        "tests/data/intercode_bash_alfa",
    ] {
        let mut these: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.starts_with("nl2bash_fs_") && name.ends_with(".json")
            })
            .collect();
        these.sort();
        files.extend(these);
    }
    files
}

/// The scenario files of a folder, by name, with their text.
fn files(dir: &Path) -> Vec<(String, String)> {
    let paths = scenario::scenario_files(&[dir.to_path_buf()]).unwrap_or_default();
    let read = |p: &PathBuf| {
        (
            p.strip_prefix(dir).unwrap().display().to_string(),
            std::fs::read_to_string(p).unwrap(),
        )
    };
    paths.iter().filter(|p| p.exists()).map(read).collect()
}

const SETS: [&str; 3] = ["train", "test", "alfa"];

#[test]
fn shipped_files_are_exactly_what_the_importer_makes() {
    let tmp = tempfile::tempdir().unwrap();
    let written = import::write(&task_files(), tmp.path()).unwrap();
    assert_eq!(written.len(), 200 + 300);
    let mut stale = false;
    for set in SETS {
        let on_disk = files(&root().join("scenarios/shell").join(set));
        let made = files(&tmp.path().join(set));
        if on_disk != made {
            stale = true;
            eprintln!(
                "scenarios/shell/{set}: {} files on disk, {} imported",
                on_disk.len(),
                made.len()
            );
        }
    }
    if stale {
        if std::env::var_os("LEAP_BLESS").is_some() {
            for set in SETS {
                let dir = root().join("scenarios/shell").join(set);
                let _ = std::fs::remove_dir_all(&dir);
            }
            import::write(&task_files(), &root().join("scenarios/shell")).unwrap();
        }
        panic!(
            "the shipped shell scenarios differ from the importer's output: run `LEAP_BLESS=1 cargo test --test shell_scenarios shipped` (or `leap scenarios import intercode tests/data/intercode_bash/nl2bash_fs_*.json tests/data/intercode_bash_alfa/nl2bash_fs_*.json --out scenarios/shell`)"
        );
    }
}

#[test]
fn shipped_sets_load_split_by_file_system_without_a_sandbox() {
    let mut counts: BTreeMap<(String, &str, String), usize> = BTreeMap::new();
    let mut types: BTreeMap<String, usize> = BTreeMap::new();
    for set in SETS {
        let loaded = scenario::load_all(&[root().join("scenarios/shell").join(set)])
            .unwrap_or_else(|p| panic!("{p}"));
        for s in &loaded {
            let body = shell_scenario::body(s).expect("a shell scenario");
            assert_eq!(s.kind().as_str(), "shell");
            assert_eq!(s.horizon, 10);
            assert_eq!(s.task, body.task);
            let fs = body.world.filesystem.clone();
            let expected = match (set, fs.as_str()) {
                ("alfa", _) if s.id.starts_with("alfa-fs5-") => Split::Train,
                (_, "fs1" | "fs2") => Split::Train,
                _ => Split::Test,
            };
            assert_eq!(s.split, expected, "{} on {fs}", s.id);
            assert_eq!(set == "alfa", body.privileged.gold2.is_some(), "{}", s.id);
            assert_eq!(
                set == "alfa",
                body.privileged.difficulty.is_some(),
                "{}",
                s.id
            );
            // The preview and the task type need no sandbox either.
            let preview = s.body.preview();
            assert!(
                preview.notes[0].ends_with(&body.privileged.gold),
                "{preview:?}"
            );
            *types.entry(s.body.task_type().to_string()).or_default() += 1;
            *counts
                .entry((set.to_string(), s.split.as_str(), fs))
                .or_default() += 1;
        }
    }
    eprintln!("{counts:?}\ntask types: {types:?}");
    let count = |set: &str, split: &str, fs: &str| {
        counts
            .get(&(set.to_string(), split, fs.to_string()))
            .copied()
            .unwrap_or(0)
    };
    // InterCode-Bash: 60 + 53 train, 60 + 27 test.
    assert_eq!(count("train", "train", "fs1"), 60);
    assert_eq!(count("train", "train", "fs2"), 53);
    assert_eq!(count("test", "test", "fs3"), 60);
    assert_eq!(count("test", "test", "fs4"), 27);
    // InterCode-ALFA: fs_1 and fs_5 (over fs1), fs_2 train; fs_3, fs_4 test.
    assert_eq!(count("alfa", "train", "fs1"), 153 + 18);
    assert_eq!(count("alfa", "train", "fs2"), 49);
    assert_eq!(count("alfa", "test", "fs3"), 57);
    assert_eq!(count("alfa", "test", "fs4"), 23);
    assert_eq!(counts.len(), 8);
    assert!(types.len() >= 6, "{types:?}");
}

#[test]
fn alfa_fifth_file_works_in_fs1s_tree() {
    let fs1 = FileSystems::shipped().get("fs1").unwrap();
    let exists = |p: &str| fs1.iter().any(|e| e.path == p);
    let is_dir = |p: &str| fs1.iter().any(|e| e.path == p && e.node == Node::Dir);
    let path = root().join("tests/data/intercode_bash_alfa/nl2bash_fs_5.json");
    let tasks: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut checked = 0;
    for (i, t) in tasks.iter().enumerate() {
        let gold = t["gold"].as_str().unwrap();
        let g = Gold::read(gold);
        for p in g.paths.iter().chain(&g.written) {
            let abs = format!("/{}", p.trim_start_matches('/').trim_end_matches('/'));
            if !abs.starts_with("/testbed") {
                continue;
            }
            // A path the command reads is there; one it creates goes in a directory that is.
            let parent = abs.rsplit_once('/').map_or("/", |(d, _)| d);
            assert!(
                exists(&abs) || is_dir(parent),
                "task {i}: {abs} is not in fs1 ({gold})"
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked} paths");
}

#[test]
fn bad_task_files_get_errors_naming_the_file_and_the_task() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let bad_json = write("nl2bash_fs_1.json", "[{\"query\": \"x\", \"gold\": ");
    let err = import::read(&bad_json).unwrap_err();
    assert!(matches!(err, ImportError::Json { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{}: not a JSON list of tasks: ",
            bad_json.display()
        )),
        "{text}"
    );
    assert!(text.contains("line 1"), "{text}");

    let no_gold = write(
        "nl2bash_fs_2.json",
        r#"[{"query": "list files", "gold": "ls"}, {"query": "count them", "gold": "ls | wc -l"}, {"query": "print the date"}]"#,
    );
    let err = import::read(&no_gold).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "{}: task 2: no `gold`, expected the gold command",
            no_gold.display()
        )
    );
    let empty_query = write("nl2bash_fs_3.json", r#"[{"query": " ", "gold": "ls"}]"#);
    let err = import::read(&empty_query).unwrap_err().to_string();
    assert!(
        err.ends_with("task 0: no `query`, expected the request as text"),
        "{err}"
    );
    let wrong_type = write("nl2bash_fs_4.json", r#"[{"query": "q", "gold": 7}]"#);
    let err = import::read(&wrong_type).unwrap_err().to_string();
    assert!(err.contains("task 0: invalid type: integer `7`"), "{err}");

    let badly_named = write("tasks.json", "[]");
    let err = import::read(&badly_named).unwrap_err().to_string();
    assert!(
        err.contains("expected a file named nl2bash_fs_N.json"),
        "{err}"
    );
    // InterCode has no fifth file system; only ALFA's fifth file (with gold2) maps to fs1.
    let fifth = write("nl2bash_fs_5.json", r#"[{"query": "q", "gold": "ls"}]"#);
    assert!(import::read(&fifth).is_err());

    // Nothing is written when one file fails.
    let out = dir.path().join("out");
    let good = root().join("tests/data/intercode_bash/nl2bash_fs_1.json");
    assert!(import::write(&[good.clone(), no_gold], &out).is_err());
    assert!(!out.exists());
    // The same file twice would give the same ids.
    let err = import::write(&[good.clone(), good], &out)
        .unwrap_err()
        .to_string();
    assert!(err.contains("task 0 would be `intercode-fs1-000`"), "{err}");
}

#[test]
fn imported_ids_and_fields_are_stable_and_readable() {
    let path = root().join("tests/data/intercode_bash_alfa/nl2bash_fs_2.json");
    let imported = import::read(&path).unwrap();
    assert_eq!(imported[12].id, "alfa-fs2-012");
    assert_eq!(imported[12].set, "alfa");
    let s = &scenario::parse_text(Path::new("x.yaml"), &imported[12].yaml);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    let body: &ShellScenario = shell_scenario::body(&s.scenarios[0]).unwrap();
    let tasks: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(body.task, tasks[12]["query"].as_str().unwrap());
    assert_eq!(body.privileged.gold, tasks[12]["gold"].as_str().unwrap());
    assert_eq!(
        body.privileged.gold2.as_deref(),
        tasks[12]["gold2"].as_str()
    );
    assert!(imported[12].yaml.starts_with(
        "# Imported: leap scenarios import intercode (InterCode-ALFA nl2bash_fs_2.json, task 12).\nid: alfa-fs2-012\nkind: shell\nsplit: train\n"
    ));
    let first = import::read(&root().join("tests/data/intercode_bash/nl2bash_fs_1.json")).unwrap();
    assert_eq!(first[7].id, "intercode-fs1-007");
    assert!(
        first[7].yaml.contains("  semantics: intercode\n"),
        "{}",
        first[7].yaml
    );
}

/// The problems of `text` read as file `name`, as printed.
fn problems(name: &str, text: &str) -> Vec<String> {
    let loaded = scenario::parse_text(Path::new(name), text);
    loaded.problems.iter().map(ToString::to_string).collect()
}

const GOOD: &str = "\
id: count-txt
kind: shell
split: train
task: Count the lines of every .txt file under /testbed
horizon: 10
world:
  filesystem: fs1
privileged:
  gold: find /testbed -name '*.txt' | xargs wc -l
";

#[test]
fn a_written_scenario_reads_with_plain_bash_semantics() {
    let loaded = scenario::parse_text(Path::new("s.yaml"), GOOD);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let s = &loaded.scenarios[0];
    let body = shell_scenario::body(s).unwrap();
    assert_eq!(
        body.world.semantics,
        leap::env::shell::exec::Semantics::Bash
    );
    assert_eq!(s.body.task_type(), "count");
    assert_eq!(body.top_level(), ["/index.html", "/testbed"]);
    let preview = s.body.preview();
    assert_eq!(preview.title, "Shell (fs1)");
    assert!(
        preview
            .lines
            .contains(&"  top level: /index.html, /testbed".to_string()),
        "{preview:?}"
    );
    assert_eq!(
        preview.notes,
        ["gold command: find /testbed -name '*.txt' | xargs wc -l"]
    );
}

#[test]
fn bad_fields_are_located_with_what_was_expected() {
    let gold = "  gold: find /testbed -name '*.txt' | xargs wc -l";
    let cases: [(&str, &str, &str); 8] = [
        (
            "  gold: find",
            "  gould: find",
            "9:3: unknown field `gould`, expected one of `gold`, `gold2`, `difficulty`",
        ),
        (
            "privileged:\n  gold: find /testbed -name '*.txt' | xargs wc -l\n",
            "",
            "1:3: missing `privileged.gold`, expected the gold command the reward compares against",
        ),
        (
            gold,
            "  gold: ' '",
            "9:9: the gold command is empty, expected the command that answers the request",
        ),
        (
            "task: Count the lines of every .txt file under /testbed",
            "task: ''",
            "4:7: the request is empty, expected the text the student reads",
        ),
        (
            "filesystem: fs1",
            "filesystem: fs7",
            "7:15: unknown file system `fs7` (did you mean `fs1`?), expected one of fs1, fs2, fs3, fs4 (in assets/shell/filesystems.json), or a `file` that holds it",
        ),
        (
            "filesystem: fs1",
            "filesystem: fs1\n  semantics: zsh",
            "8:14: unknown variant `zsh`, expected `bash` or `intercode`",
        ),
        (
            "world:\n  filesystem: fs1\n",
            "world:\n",
            "7:1: missing `world`, expected a mapping with `filesystem` (fs1, fs2, fs3 or fs4, or one in `file`)",
        ),
        (
            "task: Count",
            "task:\n  text: Count",
            "5:7: invalid type: map, expected a string",
        ),
    ];
    for (from, to, expected) in cases {
        assert!(GOOD.contains(from), "{from:?}");
        assert_eq!(
            problems("s.yaml", &GOOD.replace(from, to)),
            [format!("s.yaml:{expected}")],
            "{from:?} -> {to:?}"
        );
    }
}

#[test]
fn a_file_system_of_ones_own_is_read_beside_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("trees.json"),
        r#"{"tiny": [{"path": "/data", "type": "dir", "mode": "755"},
                    {"path": "/data/a.txt", "type": "file", "mode": "644", "text": "one\n"}]}"#,
    )
    .unwrap();
    let file = dir.path().join("s.yaml");
    let text = GOOD.replace("filesystem: fs1", "filesystem: tiny\n  file: trees.json");
    let loaded = scenario::parse_text(&file, &text);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let body = shell_scenario::body(&loaded.scenarios[0]).unwrap();
    assert_eq!(body.top_level(), ["/data"]);

    let f = file.display();
    let p = problems(&f.to_string(), &text.replace("tiny", "tinny"));
    assert_eq!(
        p,
        [format!(
            "{f}:7:15: unknown file system `tinny` (did you mean `tiny`?), expected one of tiny (in `trees.json`)"
        )]
    );
    let p = problems(&f.to_string(), &text.replace("trees.json", "missing.json"));
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with(&format!("{f}:8:9: the file systems file `missing.json` (")),
        "{p:?}"
    );
    assert!(p[0].contains("does not read: cannot read it"), "{p:?}");
    // A path below a file or a link could not be put on disk: refused where it is written.
    for (top, made) in [
        (
            r#"{"path": "/data", "type": "file", "mode": "644", "text": "x"}"#,
            "a file",
        ),
        (
            r#"{"path": "/data", "type": "symlink", "mode": "777", "target": "/tmp"}"#,
            "a link",
        ),
    ] {
        std::fs::write(
            dir.path().join("below.json"),
            format!(
                r#"{{"tiny": [{top}, {{"path": "/data/a.txt", "type": "file", "mode": "644", "text": "one\n"}}]}}"#
            ),
        )
        .unwrap();
        let p = problems(&f.to_string(), &text.replace("trees.json", "below.json"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains(&format!(
                "below.json: tiny[1].path: /data/a.txt is below /data, which tiny[0] makes {made}"
            )),
            "{p:?}"
        );
    }
    std::fs::write(dir.path().join("broken.json"), "{\"tiny\": [").unwrap();
    let p = problems(&f.to_string(), &text.replace("trees.json", "broken.json"));
    assert!(
        p[0].contains("expected a JSON file in the format of assets/shell/filesystems.json"),
        "{p:?}"
    );
}
