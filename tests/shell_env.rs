//! The shell environment's file systems and episodes on the real parts: the shipped file systems
//! materialised and copied, seen from inside the real bubblewrap sandbox, with real git.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use leap::env::Environment;
use leap::env::shell::exec::Semantics;
use leap::env::shell::fs::{Entry, FileSystems, Node, Template, Tree};
use leap::env::shell::sandbox::{Exit, Limits, Sandbox};
use leap::env::shell::{ShellEnv, Task};
use sha2::{Digest, Sha256};

const SYSTEMS: [&str; 4] = ["fs1", "fs2", "fs3", "fs4"];

fn sandbox() -> &'static Sandbox {
    Sandbox::get().expect("the shell tests need a working bubblewrap")
}

/// Runs a `bash -c` script at `/` of `tree`; its output, and it must exit 0.
fn sh(tree: &Tree, script: &str) -> String {
    let run = sandbox()
        .run(
            tree.root(),
            "/",
            &["bash", "-c", script],
            &Limits::default(),
        )
        .expect("bubblewrap starts");
    let output = String::from_utf8_lossy(&run.output).into_owned();
    assert_eq!(run.exit, Exit::Code(0), "{script}\n{output}");
    output
}

/// `git status --short` as the sandbox prints it.
fn git_status(tree: &Tree) -> String {
    sh(tree, "git status --short")
}

/// What the shipped entries should look like after InterCode's reset: every file and link, and
/// every folder with one of them below it (`git clean -fd` removes the empty ones).
fn kept(entries: &[Entry]) -> Vec<&Entry> {
    entries
        .iter()
        .filter(|e| match e.node {
            Node::Dir => entries.iter().any(|f| {
                !matches!(f.node, Node::Dir) && f.path.starts_with(&format!("{}/", e.path))
            }),
            _ => true,
        })
        .collect()
}

fn quote(path: &str) -> String {
    format!("'{}'", path.replace('\'', r"'\''"))
}

#[test]
fn the_file_systems_materialise_as_recorded() {
    let started = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut back_dated = 0;
    for name in SYSTEMS {
        let entries = FileSystems::shipped().get(name).unwrap();
        let tree = Template::shipped(name).unwrap().fresh().unwrap();
        let kept = kept(entries);
        if !kept.is_empty() {
            let paths: Vec<String> = kept.iter().map(|e| quote(&e.path)).collect();
            let stat = sh(&tree, &format!("stat -c '%a|%Y|%F|%n' {}", paths.join(" ")));
            let files: Vec<String> = kept
                .iter()
                .filter(|e| matches!(e.node, Node::File(_)))
                .map(|e| quote(&e.path))
                .collect();
            let sums = sh(&tree, &format!("sha256sum {}", files.join(" ")));
            let sums: BTreeMap<&str, &str> = sums
                .lines()
                .map(|l| (l[66..].trim_start_matches('\\'), &l[..64]))
                .collect();
            for (entry, line) in kept.iter().zip(stat.lines()) {
                let fields: Vec<&str> = line.splitn(4, '|').collect();
                assert_eq!(fields[3], entry.path);
                assert_eq!(fields[0], format!("{:o}", entry.mode), "{line}");
                let mtime: i64 = fields[1].parse().unwrap();
                match entry.mtime {
                    Some(recorded) => {
                        assert_eq!(mtime, recorded, "{line}");
                        back_dated += 1;
                    }
                    // The materialisation's time: this process made the template.
                    None => assert!(
                        (started - 600..=started + 5).contains(&mtime),
                        "{line}: {mtime} is not about {started}"
                    ),
                }
                match &entry.node {
                    Node::Dir => assert_eq!(fields[2], "directory", "{line}"),
                    Node::Symlink(_) => assert_eq!(fields[2], "symbolic link", "{line}"),
                    Node::File(bytes) => {
                        assert!(fields[2].contains("regular"), "{line}");
                        let digest = format!("{:x}", Sha256::digest(bytes));
                        assert_eq!(sums[entry.path.as_str()], digest, "{}", entry.path);
                    }
                }
            }
        }
        // What InterCode's reset removed is gone: empty folders, `/tmp`; `/root` stays private.
        for gone in entries.iter().filter(|e| !kept.contains(e)) {
            assert!(
                !tree.root().join(&gone.path[1..]).exists(),
                "{} should be gone",
                gone.path
            );
        }
        assert_eq!(
            sh(
                &tree,
                "stat -c '%a %n' /root /.gitignore; ls -d /tmp 2>&1; true"
            ),
            "700 /root\n644 /.gitignore\nls: cannot access '/tmp': No such file or directory\n"
        );
    }
    // fs1 back-dates 2 files, fs2 5 and fs3 2.
    assert_eq!(back_dated, 9);
    let archive = Template::shipped("fs2").unwrap().fresh().unwrap();
    assert_eq!(
        sh(&archive, "tar -tzf /system/folder2.tar.gz | sort | head -2"),
        "system/folder2/\nsystem/folder2/special text3.txt\n"
    );
}

#[test]
fn the_gitignore_is_intercodes_and_the_commit_is_reproducible() {
    let tree = Template::shipped("fs1").unwrap().fresh().unwrap();
    assert_eq!(
        std::fs::read_to_string(tree.root().join(".gitignore")).unwrap(),
        "# Folders\nbin\nboot\ndev\netc\nhome\nlib\nmedia\nopt\nproc\nroot\nrun\nsbin\nsrv\nsys\nusr\nvar\n\n# Files\n.dockerenv"
    );
    let log = "git log --format='%an <%ae> %ad %s' --date=iso-strict";
    assert_eq!(
        sh(&tree, log),
        "intercode <intercode@pnlp.org> 2023-05-26T00:00:00Z initial commit\n"
    );
    let head = |tree: &Tree| sh(tree, "git rev-parse HEAD");
    let again = Template::materialise(FileSystems::shipped().get("fs1").unwrap()).unwrap();
    assert_eq!(head(&tree), head(&again.fresh().unwrap()));
    assert_ne!(
        head(&tree),
        head(&Template::shipped("fs2").unwrap().fresh().unwrap())
    );
}

#[test]
fn a_fresh_tree_is_clean_and_the_sandbox_writes_nothing_into_it() {
    for name in SYSTEMS {
        let tree = Template::shipped(name).unwrap().fresh().unwrap();
        let listing = |tree: &Tree| {
            let mut names: Vec<String> = std::fs::read_dir(tree.root())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        let before = listing(&tree);
        assert_eq!(git_status(&tree), "", "{name}");
        sh(&tree, "ls / /usr/bin/bash >/dev/null");
        assert_eq!(listing(&tree), before, "{name}");
        assert_eq!(git_status(&tree), "", "{name}");
    }
}

#[test]
fn git_status_shows_what_an_episode_changed() {
    let tree = Template::shipped("fs1").unwrap().fresh().unwrap();
    sh(
        &tree,
        "echo hi > /testbed/new.txt; rm /testbed/hello.c; echo more >> /index.html; mkdir -p /testbed/made/deeper; touch /testbed/made/deeper/x",
    );
    assert_eq!(
        git_status(&tree),
        " M index.html\n D testbed/hello.c\n?? testbed/made/\n?? testbed/new.txt\n"
    );
}

#[test]
fn episodes_trees_are_independent() {
    let template = Template::shipped("fs3").unwrap();
    let (one, two) = (template.fresh().unwrap(), template.fresh().unwrap());
    sh(
        &one,
        "rm -r /workspace/dir1; chmod 000 /workspace; echo x > /backup/file.txt",
    );
    assert_eq!(
        sh(
            &two,
            "cat /backup/file.txt; ls /workspace/dir1 | wc -l; stat -c %a /workspace"
        ),
        "new file\n\n12\n755\n"
    );
    assert_eq!(git_status(&two), "");
    assert_eq!(git_status(&template.fresh().unwrap()), "");
    // A tree an agent locked up is still removed.
    let root = one.root().to_path_buf();
    drop(one);
    assert!(!root.exists());
}

fn task(name: &str, gold: &str) -> Arc<Task> {
    Arc::new(Task::new(
        "a request".into(),
        gold.into(),
        Template::shipped(name).unwrap(),
        Semantics::Intercode,
    ))
}

#[test]
fn reset_gives_a_fresh_tree_quickly() {
    let mut env = ShellEnv::new(task("fs1", "ls"), 10);
    assert_eq!(env.observation(), "a request");
    assert_eq!(env.cwd(), "/");
    let mut times = Vec::with_capacity(100);
    for _ in 0..100 {
        std::fs::write(env.tree().unwrap().root().join("testbed/x"), "x").unwrap();
        let start = Instant::now();
        env.reset();
        times.push(start.elapsed());
        assert!(!env.tree().unwrap().root().join("testbed/x").exists());
    }
    times.sort();
    let p50 = times[50];
    eprintln!(
        "reset over fs1: p50 {:.2} ms, p90 {:.2} ms",
        p50.as_secs_f64() * 1e3,
        times[90].as_secs_f64() * 1e3
    );
    assert!(p50 < Duration::from_millis(20), "reset p50 {p50:?}");
}
