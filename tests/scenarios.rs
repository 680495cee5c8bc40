//! Scenario files: the shipped sets, the generator, and the errors a malformed file gets.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use leap::env::household::{self, GoalKind, generate};
use leap::scenario::{self, Split};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn shipped(split: &str) -> Vec<scenario::Scenario> {
    scenario::load_all(&[root().join("scenarios/household").join(split)])
        .unwrap_or_else(|p| panic!("{p}"))
}

#[test]
fn shipped_sets_are_valid_large_enough_and_cover_every_task_type() {
    let all = scenario::load_all(&[root().join("scenarios")]).unwrap_or_else(|p| panic!("{p}"));
    let train = shipped("train");
    let test = shipped("test");
    assert!(train.len() >= 200, "train has {}", train.len());
    assert!(test.len() >= 60, "test has {}", test.len());
    assert!(
        all.len() > train.len() + test.len(),
        "the showcase scenarios load too"
    );
    for (set, split) in [(&train, Split::Train), (&test, Split::Test)] {
        let kinds: BTreeSet<&str> = set
            .iter()
            .map(|s| {
                assert_eq!(
                    s.split,
                    split,
                    "{} sits in the {} folder",
                    s.id,
                    split.as_str()
                );
                household::body(s).unwrap().task.goal.as_str()
            })
            .collect();
        assert_eq!(kinds.len(), GoalKind::ALL.len(), "{kinds:?}");
    }
}

#[test]
fn shipped_sets_are_exactly_what_the_generator_makes() {
    for (split, count) in [(Split::Train, 240), (Split::Test, 60)] {
        for g in generate::household(count, 2025, split) {
            let path = root()
                .join("scenarios/household")
                .join(split.as_str())
                .join(format!("{}.yaml", g.id));
            let on_disk = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert_eq!(
                on_disk,
                g.yaml,
                "{} differs from the generator's output: regenerate it",
                path.display()
            );
        }
    }
}

#[test]
fn generator_is_deterministic_for_a_seed() {
    let a: Vec<String> = generate::household(12, 7, Split::Train)
        .into_iter()
        .map(|g| g.yaml)
        .collect();
    let b: Vec<String> = generate::household(12, 7, Split::Train)
        .into_iter()
        .map(|g| g.yaml)
        .collect();
    let c: Vec<String> = generate::household(12, 8, Split::Train)
        .into_iter()
        .map(|g| g.yaml)
        .collect();
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn test_split_holds_out_layouts_and_object_target_pairs() {
    let keys = |set: &[scenario::Scenario]| -> (BTreeSet<String>, BTreeSet<String>) {
        let mut layouts = BTreeSet::new();
        let mut pairs = BTreeSet::new();
        for s in set {
            let h = household::body(s).unwrap();
            let room = h
                .world
                .room
                .as_deref()
                .expect("generated scenarios name their room");
            layouts.insert(generate::layout_key(room, &h.world));
            pairs.insert(generate::pair_key(&h.task));
        }
        (layouts, pairs)
    };
    let (train_layouts, train_pairs) = keys(&shipped("train"));
    let (test_layouts, test_pairs) = keys(&shipped("test"));
    assert!(
        train_layouts.is_disjoint(&test_layouts),
        "a test layout occurs in train"
    );
    assert!(
        train_pairs.is_disjoint(&test_pairs),
        "a test (object, target) pair occurs in train"
    );
    assert!(
        test_layouts.len() >= 30 && test_pairs.len() >= 15,
        "{} layouts, {} pairs",
        test_layouts.len(),
        test_pairs.len()
    );
}

#[test]
fn schema_file_is_up_to_date() {
    let path = root().join("assets/schema/scenario.json");
    let shipped = std::fs::read_to_string(&path).unwrap_or_default();
    let current = scenario::schema::scenario_schema();
    if shipped != current {
        if std::env::var_os("LEAP_BLESS").is_some() {
            std::fs::write(&path, &current).unwrap();
        }
        panic!(
            "{} is stale: run `LEAP_BLESS=1 cargo test --test scenarios schema` or `leap scenarios schema > {}`",
            path.display(),
            path.display()
        );
    }
}

/// Loads `text` as file `name` and returns its problems as printed.
fn problems(name: &str, text: &str) -> Vec<String> {
    scenario::parse_text(Path::new(name), text)
        .problems
        .iter()
        .map(|p| p.to_string())
        .collect()
}

const GOOD: &str = "\
id: ok
kind: household
split: train
task: {goal: pick_and_place, object: apple, target: countertop}
horizon: 10
world:
  receptacles:
    - {name: fridge 1, contents: [apple 1]}
    - {name: countertop 1}
";

#[test]
fn a_good_scenario_has_no_problems() {
    assert_eq!(problems("good.yaml", GOOD), Vec::<String>::new());
}

#[test]
fn bad_yaml_points_at_the_syntax_error() {
    let p = problems("bad.yaml", "id: x\nkind: household\ntask: [unclosed\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("bad.yaml:4:1: invalid YAML"), "{p:?}");
}

#[test]
fn unknown_receptacle_is_located_and_gets_a_suggestion() {
    let text = GOOD.replace(
        "{name: countertop 1}",
        "{name: countertop 1}\n    - {name: cabnet 2}",
    );
    let p = problems("s.yaml", &text);
    assert_eq!(
        p,
        vec![
            "s.yaml:10:14: unknown receptacle type `cabnet` (did you mean `cabinet`?), expected one of the receptacle types in assets/household/vocabulary.yaml"
        ]
    );
}

#[test]
fn objects_may_start_anywhere_and_on_two_receptacles_but_once_per_receptacle() {
    // ALFWorld's scenes start objects where no `put` could place them (a towel in a fridge),
    // and list one object on two receptacles that overlap.
    let text = GOOD.replace("[apple 1]", "[apple 1, towel 1]").replace(
        "{name: countertop 1}",
        "{name: countertop 1, contents: [towel 1]}",
    );
    assert_eq!(problems("s.yaml", &text), Vec::<String>::new());
    let text = GOOD.replace("[apple 1]", "[apple 1, towel 1, apple 1]");
    assert_eq!(
        problems("s.yaml", &text),
        vec![
            "s.yaml:8:53: `apple 1` is listed twice in `fridge 1` (first at s.yaml:8:35), expected each object once per receptacle"
        ]
    );
    // A task cannot be about an object nobody can pick up.
    let text = GOOD
        .replace("[apple 1]", "[apple 1, houseplant 1]")
        .replace("object: apple", "object: houseplant");
    assert_eq!(
        problems("s.yaml", &text),
        vec![
            "s.yaml:4:38: a houseplant cannot be picked up, expected an object type the task can carry",
            "s.yaml:4:58: a houseplant cannot be put in or on a countertop, expected a receptacle it fits"
        ]
    );
}

#[test]
fn task_that_names_nothing_in_the_world_is_reported() {
    let p = problems("s.yaml", &GOOD.replace("object: apple", "object: tomato"));
    assert_eq!(
        p,
        vec![
            "s.yaml:4:38: the task needs 1 tomato, but the world has 0: place one in a receptacle"
        ]
    );
    let p = problems(
        "s.yaml",
        &GOOD.replace("target: countertop", "target: sinkbasin"),
    );
    assert_eq!(
        p,
        vec![
            "s.yaml:4:53: the task names `sinkbasin`, but the world has no receptacle of that type"
        ]
    );
}

#[test]
fn unknown_fields_and_wrong_types_are_located() {
    let p = problems("s.yaml", &GOOD.replace("horizon: 10", "horizon: ten"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("s.yaml:5:10: horizon: invalid type: string \"ten\", expected u32")
            || p[0].starts_with("s.yaml:5:10: invalid type: string \"ten\", expected u32"),
        "{p:?}"
    );
    let p = problems(
        "s.yaml",
        &GOOD.replace(
            "    - {name: countertop 1}",
            "    - name: countertop 1\n      colour: red",
        ),
    );
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("s.yaml:10:7: unknown field `colour`, expected one of"),
        "{p:?}"
    );
}

#[test]
fn unsupported_kind_and_goal_already_met_are_reported() {
    let p = problems("s.yaml", &GOOD.replace("kind: household", "kind: webarena"));
    assert_eq!(
        p,
        vec![
            "s.yaml:2:7: kind `webarena` is not supported by this build yet, expected one of `household`, `shop`, `shell`, `external`"
        ]
    );
    let p = problems(
        "s.yaml",
        &GOOD.replace(
            "{name: countertop 1}",
            "{name: countertop 1, contents: [apple 2]}",
        ),
    );
    assert_eq!(
        p,
        vec!["s.yaml:4:7: the goal already holds at the start, expected a task that needs doing"]
    );
}

#[test]
fn duplicate_ids_across_files_point_at_both() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), GOOD).unwrap();
    std::fs::write(dir.path().join("b.yaml"), format!("# another\n{GOOD}")).unwrap();
    let loaded = scenario::load(&[dir.path().to_path_buf()]);
    assert_eq!(loaded.scenarios.len(), 1);
    let p: Vec<String> = loaded.problems.iter().map(|p| p.to_string()).collect();
    let a = dir.path().join("a.yaml");
    let b = dir.path().join("b.yaml");
    assert_eq!(
        p,
        vec![format!(
            "{}:2:5: duplicate id `ok`, expected a new id (first defined at {}:1:5)",
            b.display(),
            a.display()
        )]
    );
}

#[test]
fn a_list_file_reports_the_bad_entry_and_keeps_the_good_ones() {
    let good = GOOD
        .lines()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n");
    let bad = good.replace("id: ok", "id: bad").replace(
        "countertop 1}",
        "countertop 1}\n      - {name: countertop 1}",
    );
    let text = format!("- {}\n- {}\n", good.trim_start(), bad.trim_start());
    let loaded = scenario::parse_text(Path::new("l.yaml"), &text);
    assert_eq!(loaded.scenarios.len(), 1);
    let p: Vec<String> = loaded.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("l.yaml:19:16: `countertop 1` is named twice (first at l.yaml:18:16)"),
        "{p:?}"
    );
}

/// The problems of loading `paths`, as printed, with `dir` written as `D`.
fn load_problems(dir: &Path, paths: &[PathBuf]) -> Vec<String> {
    scenario::load(paths)
        .problems
        .iter()
        .map(|p| p.to_string().replace(&dir.display().to_string(), "D"))
        .collect()
}

#[test]
fn a_fifo_named_yaml_is_reported_and_never_opened() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), GOOD).unwrap();
    let fifo = dir.path().join("pipe.yaml");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Opening the FIFO would wait for a writer forever: the load runs on a thread with a bound.
    let (tx, rx) = std::sync::mpsc::channel();
    let (folder, named) = (dir.path().to_path_buf(), fifo.clone());
    std::thread::spawn(move || {
        let d = folder.clone();
        tx.send((
            load_problems(&d, std::slice::from_ref(&folder)),
            load_problems(&d, &[named]),
        ))
        .unwrap();
    });
    let (in_folder, named) = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("loading a folder with a FIFO in it ends");
    let expected = vec![
        "D/pipe.yaml:1:1: not a regular file (a FIFO), expected a YAML file; it was not read"
            .to_string(),
    ];
    assert_eq!(in_folder, expected);
    assert_eq!(named, expected);
}

#[test]
fn a_symlink_loop_is_reported_once_and_each_file_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("set");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("a.yaml"), GOOD).unwrap();
    std::os::unix::fs::symlink("..", sub.join("up")).unwrap();
    std::os::unix::fs::symlink(&sub, dir.path().join("again")).unwrap();
    let loaded = scenario::load(&[sub.clone(), dir.path().to_path_buf()]);
    assert_eq!(loaded.scenarios.len(), 1);
    let p: Vec<String> = loaded.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        p,
        vec![format!(
            "{}/set/up:1:1: a symbolic link loop: it leads back to {}, whose files are read once",
            dir.path().display(),
            dir.path().canonicalize().unwrap().display()
        )]
    );
}

#[test]
fn the_same_file_named_twice_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.yaml");
    std::fs::write(&a, GOOD).unwrap();
    let through_dot = dir.path().join(".").join("a.yaml");
    let loaded = scenario::load(&[a.clone(), a.clone(), through_dot, dir.path().to_path_buf()]);
    assert_eq!(loaded.scenarios.len(), 1);
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
}

#[test]
fn a_file_over_the_size_bound_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.yaml");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len(50 << 20).unwrap();
    let start = std::time::Instant::now();
    let p = load_problems(dir.path(), &[big]);
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(
        p,
        vec![format!(
            "D/big.yaml:1:1: the file is 52428800 bytes, over the {}-byte bound of a scenario \
             file (4 MiB); split it into several files",
            scenario::MAX_FILE_BYTES
        )]
    );
}

#[test]
fn empty_and_comment_only_files_are_reported() {
    for text in ["", "# nothing here yet\n\n# still nothing\n", "[]\n"] {
        assert_eq!(
            problems("e.yaml", text),
            vec![
                "e.yaml:1:1: the file holds no scenario (it is empty or only comments), \
                 expected a scenario or a list of them"
            ],
            "{text:?}"
        );
    }
}

#[test]
fn merge_keys_and_tags_are_reported_where_written() {
    let merged = format!("- &base\n{}- <<: *base\n  id: two\n", indent(GOOD));
    let p = problems("m.yaml", &merged);
    assert_eq!(
        p,
        vec![
            "m.yaml:11:3: YAML merge keys (`<<`) are not supported in scenarios; write the fields out"
        ]
    );
    let tagged = GOOD.replace(
        "task: {",
        "task: !!python/object/apply:os.system [\"echo pwned\"]\nx: {",
    );
    assert_eq!(
        problems("t.yaml", &tagged),
        vec![
            "t.yaml:4:7: YAML tag `!!python/object/apply:os.system` is not supported in \
             scenarios; they are plain data"
        ]
    );
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

#[test]
fn a_horizon_out_of_range_names_the_field_and_the_range() {
    let range = "expected a whole number of steps from 1 to 4294967295";
    for (value, shown) in [
        ("0", "0"),
        ("99999999999999999999999", "99999999999999999999999"),
        ("4294967296", "4294967296"),
        ("-3", "-3"),
    ] {
        let text = GOOD.replace("horizon: 10", &format!("horizon: {value}"));
        assert_eq!(
            problems("h.yaml", &text),
            vec![format!(
                "h.yaml:5:10: horizon `{shown}` is out of range, {range}"
            )],
            "{value}"
        );
    }
    assert_eq!(
        scenario::horizon("0"),
        Err(format!("horizon `0` is out of range, {range}"))
    );
    assert_eq!(scenario::horizon("4294967295"), Ok(u32::MAX));
}
