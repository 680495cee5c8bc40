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

/// Held by the tests that load both cores and by the one that times resets, so that neither
/// disturbs the other.
static ALONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ALONE.lock().unwrap_or_else(|e| e.into_inner())
}

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
fn a_task_whose_file_system_is_not_on_disk_fails_its_episodes_with_the_reason() {
    let why = "cannot put the file system `mine` on disk: No space left on device (os error 28)";
    let task = Task::without_fs("a request".into(), "ls".into(), why.into(), Semantics::Bash);
    assert_eq!(task.template().err(), Some(why));
    assert_eq!(task.gold_output(), Err(why.to_string()));
    let mut env = ShellEnv::new(Arc::new(task), 10);
    assert_eq!(env.observation(), "a request");
    assert_eq!(env.tree().err(), Some(why));
    let outcome = env.step("ls");
    assert_eq!(
        (outcome.reward, outcome.done, outcome.won),
        (0.0, true, false)
    );
    assert_eq!(env.observation(), why);
    assert_eq!(env.failure(), Some(why));
    assert_eq!(env.info(), Some(serde_json::json!({ "error": why })));
    // A reset tries again, and fails the same way.
    env.reset();
    assert_eq!(env.failure(), None);
    assert!(env.step("submit").done);
    assert_eq!(env.failure(), Some(why));
}

#[test]
fn reset_gives_a_fresh_tree_quickly() {
    let _alone = alone();
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
    // The 20 ms target is measured by `cargo bench --bench shell` (about 5 ms there); a test
    // shares its cores with the rest of the suite, so it only catches a reset gone slow.
    assert!(p50 < Duration::from_millis(250), "reset p50 {p50:?}");
}

#[derive(serde::Deserialize)]
struct Record {
    query: String,
    gold: String,
}

#[derive(serde::Deserialize)]
struct Episode {
    task_id: usize,
    query: String,
    turn_history: History,
}

#[derive(serde::Deserialize)]
struct History {
    actions: Vec<String>,
    observations: Vec<String>,
    rewards: Vec<f64>,
}

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/intercode_bash");

/// The tasks of `nl2bash_fs_{n}.json`, over the shipped file system `fs{n}`.
fn tasks(n: usize) -> Vec<Arc<Task>> {
    let path = format!("{DATA}/nl2bash_fs_{n}.json");
    let records: Vec<Record> = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let fs = Template::shipped(&format!("fs{n}")).unwrap();
    records
        .into_iter()
        .map(|r| Arc::new(Task::new(r.query, r.gold, fs.clone(), Semantics::Intercode)))
        .collect()
}

/// `work` over `items` on `threads` threads, results in order.
fn in_parallel<T: Sync, R: Send>(
    threads: usize,
    items: &[T],
    work: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break done };
                        done.push((i, work(item)));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

/// The gold commands whose output depends on more than the file system, so that two runs of
/// one may differ: the host's disk (`df`), its process tree (`pstree` shows the sandbox's own
/// command line), a background job (`&`) that the sandbox ends with its command, racing it, and
/// a count of every file under `/` (`${DIRECTORY}` is unset), `/proc` included, where the
/// pipeline's own processes show up as the scheduler runs them: with the machine busy, two runs
/// counted 115,227 and 114,821; and the time (`$(date)`), which may tick to the next second
/// between the agent's run and the gold's (seen once); and `curl`, whose name lookup fails in
/// the sandbox without a network and whose progress meter shows only when the failure comes
/// after curl's first progress update, a race between its resolver thread and its transfer
/// loop (CI saw the meter in the gold's run and not in the agent's: 0.76).
const GOLD_NOT_REPEATABLE: [&str; 7] = [
    "curl http://example.com/textfile.txt -o /system/textfile.txt",
    "echo $(date) \"1\" | tee -a /system/folder3/temp/empty.txt",
    "find ${DIRECTORY} -type f -print | sed -e 's@^.*/@@' | grep '[aeiouyAEIOUY]' | wc -l",
    "df /system -B MB | tail -1 | awk {'print $4'} | grep  .[0-9]*",
    "df /workspace/dir2/mysql/",
    "pstree -a",
    "find /testbed -type f  -mtime +7 | tee compressedP.list | xargs -I{} -P10 compress {} &",
];

#[test]
fn every_gold_command_scores_one_against_itself() {
    let _alone = alone();
    let tasks: Vec<(usize, Arc<Task>)> = (1..=4)
        .flat_map(|n| tasks(n).into_iter().map(move |t| (n, t)))
        .collect();
    assert_eq!(tasks.len(), 200);
    let rewards = in_parallel(2, &tasks, |(_, task)| {
        let mut env = ShellEnv::new(task.clone(), 10);
        let ran = env.step(&task.gold);
        assert!(!ran.done);
        let submitted = env.step("submit");
        assert!(submitted.done);
        assert_eq!(submitted.won, submitted.reward == 1.0);
        (
            submitted.reward,
            env.info().expect("a submission has its breakdown"),
        )
    });
    let mut won = 0;
    for ((n, task), (reward, info)) in tasks.iter().zip(&rewards) {
        if *reward == 1.0 {
            won += 1;
        } else {
            assert!(
                GOLD_NOT_REPEATABLE.contains(&task.gold.as_str()),
                "fs{n} {:?}: {reward}\n{info}",
                task.gold
            );
        }
    }
    eprintln!("gold against itself: {won} of 200 score 1.0");
    assert!(won >= 196, "{won} of 200");
}

/// Where the file systems live; the rest of `/` is the host's (or was the image's).
const ROOTS: [&str; 5] = [
    "/testbed",
    "/system",
    "/workspace",
    "/backup",
    "/index.html",
];

/// Words that make a command depend on more than the file system: the time (a materialised
/// file's time is ours, the image's was its build's), the host and its tools (Ubuntu 22.04's
/// in the image, the host's here), the shell's own error messages (bash 5.1 wrote two lines for
/// an unclosed quote, 5.2 one), the network, a background job.
const NOT_FS_ONLY: [&str; 42] = [
    "date", "-mtime", "-mmin", "-newer", "-atime", "-ctime", "-amin", "-cmin", "-printf", "stat",
    "ls", "du", "df", "ps", "pstree", "uname", "hostname", "nproc", "whoami", "id", "env",
    "printenv", "which", "type", "command", "whereis", "curl", "wget", "ping", "dig", "xxd",
    "tree", "file", "tar", "gzip", "zip", "mktemp", "sudo", "history", "&", "awk", "bind",
];

/// File-system commands whose observation differs for a known reason, as (file system, task,
/// action, why).
const KNOWN_FS_DIFFERENCES: [(usize, usize, &str, &str); 4] = [
    (
        2,
        10,
        "grep -r \"foo\" /system | tee >(wc -l)",
        "a process substitution may still be writing when its command returns; the sandbox \
         ends what a command leaves running (Docker waited for the stream), so the count can be lost",
    ),
    (
        2,
        45,
        "mkdir -p /system/folder3/backup_dbg/backup && find /system -type f ! -name '*text*' -exec cp {} /system/folder3/backup_dbg/backup/ \\;",
        "find's order (readdir) decides which copies it meets again in the folder it fills",
    ),
    (
        3,
        23,
        "find /workspace -type f -name \"*.txt\" ! -perm -o=w",
        "InterCode's `git reset --hard` rewrote all.txt (777 in the set-up) as 755",
    ),
    (
        3,
        29,
        "find /workspace -type f -exec md5sum {} + | sort",
        "archive.tar.gz was made anew for filesystems.json; tar and gzip store the time",
    ),
];

/// Whether `action`, run in `cwd`, reads and writes only the task's file system, as far as its
/// words tell: every absolute path is under [`ROOTS`], a relative one is read in a folder under
/// them, and no word is in [`NOT_FS_ONLY`]; a quote it leaves open (bash's message) or a `$`
/// variable (`$HOME`) counts as not.
fn fs_only(action: &str, cwd: &str) -> bool {
    let in_roots = |path: &str| {
        ROOTS
            .iter()
            .any(|r| path == *r || path.starts_with(&format!("{r}/")))
    };
    let quotes = |q: char| action.chars().filter(|c| *c == q).count() % 2 == 0;
    if !quotes('"') || !quotes('\'') || action.contains('`') || action.contains('$') {
        return false;
    }
    let words = action
        .split(|c: char| c.is_whitespace() || "|;()<>\"'=,".contains(c))
        .filter(|w| !w.is_empty() && *w != "&&" && *w != "2" && *w != "1");
    let cd = action.starts_with("cd");
    for word in words {
        let word = word
            .trim_start_matches(['2', '1', '&'])
            .trim_start_matches('>');
        if NOT_FS_ONLY.contains(&word) {
            return false;
        }
        if word.starts_with('/') && !in_roots(word) && word != "/dev/null" {
            return false;
        }
        // A dot glob expands in `/`, and bash 5.2 no longer matches `.` and `..` with it.
        if word.starts_with('.') && word.contains('*') {
            return false;
        }
        let relative =
            word == "." || word == "*" || word.starts_with("./") || word.starts_with("..");
        if relative && (cd || !in_roots(cwd)) {
            return false;
        }
    }
    true
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn the_recorded_gpt4_runs_replay_with_the_same_observations() {
    let _alone = alone();
    let mut episodes = Vec::new();
    for n in 1..=4 {
        let path = format!("{DATA}/reference_runs/ic_bash_multiturn_gpt-4_10_turns_fs_{n}.json");
        let runs: BTreeMap<String, Episode> =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{path}: {e}"));
        let tasks = tasks(n);
        for (_, episode) in runs {
            let task = tasks[episode.task_id].clone();
            assert_eq!(task.query, episode.query);
            episodes.push((n, task, episode));
        }
    }
    // Commands that ran past 10 s in the image (a `grep -r` over `/proc`) also run past 2 s
    // here; the shorter limit keeps this test's time down.
    let limits = Limits {
        timeout: Duration::from_secs(2),
        ..Limits::default()
    };
    // Four threads on two cores: much of the time is waiting for timeouts.
    let replays = in_parallel(4, &episodes, |(_, task, episode)| {
        let mut env = ShellEnv::with_limits(task.clone(), 100, limits.clone());
        let steps: Vec<(String, String)> = episode
            .turn_history
            .actions
            .iter()
            .map(|action| {
                let cwd = env.cwd().to_string();
                env.step(action);
                (cwd, env.observation().to_string())
            })
            .collect();
        (steps, env.evaluate().expect("the sandbox scores"))
    });
    let (mut same, mut total, mut fs_checked, mut same_reward) = (0, 0, 0, 0);
    let mut fs_differ = Vec::new();
    for ((n, _, episode), (steps, scored)) in episodes.iter().zip(&replays) {
        let history = &episode.turn_history;
        // The state is the image's as long as every command so far touched only the file system.
        let mut state_known = true;
        for ((action, recorded), (cwd, ours)) in
            history.actions.iter().zip(&history.observations).zip(steps)
        {
            total += 1;
            same += usize::from(recorded == ours);
            state_known &= fs_only(action, cwd);
            // A syntax error ran nothing; bash 5.1 reported it in two lines, 5.2 in one.
            let bash_error = recorded.contains(": -c: line ");
            let known = KNOWN_FS_DIFFERENCES.iter().any(|(fs, task, known, _)| {
                (*fs, *task, *known) == (*n, episode.task_id, action.as_str())
            });
            if state_known && !bash_error && !known {
                fs_checked += 1;
                // Folders list in the order their file system keeps them (ext4's hash order
                // here, the image's overlay there).
                if sorted_lines(recorded) != sorted_lines(ours) {
                    fs_differ.push(format!(
                        "fs{n} #{} in {cwd}: {action:?}\n  recorded {recorded:?}\n  ours     {ours:?}",
                        episode.task_id
                    ));
                }
            }
        }
        let recorded = *history.rewards.last().unwrap();
        same_reward += usize::from((recorded - scored.reward).abs() < 1e-9);
    }
    eprintln!(
        "observations equal: {same} of {total} ({:.1}%); on the file system alone: {} of \
         {fs_checked} equal up to line order; final rewards equal: {same_reward} of {}",
        100.0 * same as f64 / total as f64,
        fs_checked - fs_differ.len(),
        episodes.len()
    );
    assert!(fs_differ.is_empty(), "{}", fs_differ.join("\n"));
    assert_eq!(total, 1176);
    assert!(same >= 820, "{same} of {total} observations equal");
    assert!(
        fs_checked >= 200,
        "only {fs_checked} observations told apart"
    );
    assert!(
        same_reward >= 175,
        "{same_reward} of 200 final rewards equal"
    );
}

#[test]
fn skip_submit_and_the_horizon_end_the_episode() {
    let task = task("fs1", "cat /testbed/dir1/textfile1.txt");
    let mut env = ShellEnv::new(task.clone(), 10);
    let skipped = env.step("skip");
    assert_eq!((skipped.reward, skipped.done), (0.0, true));
    assert_eq!(env.observation(), "skipped");
    assert!(env.info().is_none());
    assert!(env.step("ls").done);

    // `cd` is kept; the answer is the last output; submitting does not change it.
    env.reset();
    assert!(!env.step("cd /testbed/dir1").done);
    assert_eq!(env.cwd(), "/testbed/dir1");
    assert!(!env.step("cat textfile1.txt").done);
    let submitted = env.step("submit");
    assert_eq!(
        (submitted.reward, submitted.done, submitted.won),
        (1.0, true, true)
    );
    assert_eq!(env.observation(), "Hello, World!\n");
    assert_eq!(env.breakdown().unwrap().agent_output, "Hello, World!\n");
    assert_eq!(task.gold_output(), Ok("Hello, World!\n"));

    // At the horizon the episode is scored as if submitted, here with a change the gold lacks.
    let mut env = ShellEnv::new(task.clone(), 2);
    assert!(!env.step("touch /testbed/extra.txt").done);
    let last = env.step("cat /testbed/dir1/textfile1.txt");
    assert!(last.done && !last.won);
    let breakdown = env.breakdown().unwrap();
    assert_eq!(
        breakdown.diff_extra,
        [("testbed/extra.txt".to_string(), "??".to_string())]
    );
    assert_eq!(f64::from(last.reward), breakdown.reward as f32 as f64);
    assert!((breakdown.reward - 0.72).abs() < 1e-9, "{breakdown:?}");
}
