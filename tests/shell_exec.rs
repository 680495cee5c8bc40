//! One action at a time in the real sandbox over a real tree, under InterCode's semantics (its
//! quirks included) and plain bash's.

use std::time::Duration;

use leap::env::shell::exec::{self, Executed, Semantics};
use leap::env::shell::sandbox::{Limits, Sandbox};

/// A tree with `/testbed/dir1/sub`, `/testbed/a.txt`, `/other` and `$HOME` (`/root`), and the
/// directory that actions start in.
struct Shell {
    tree: tempfile::TempDir,
    cwd: String,
}

impl Shell {
    fn at(cwd: &str) -> Shell {
        let tree = tempfile::tempdir().unwrap();
        for dir in ["testbed/dir1/sub", "other", "root"] {
            std::fs::create_dir_all(tree.path().join(dir)).unwrap();
        }
        std::fs::write(tree.path().join("testbed/a.txt"), "alpha\n").unwrap();
        Shell {
            tree,
            cwd: cwd.to_string(),
        }
    }

    fn run(&mut self, action: &str, semantics: Semantics) -> Executed {
        self.run_with(action, semantics, &Limits::default())
    }

    fn run_with(&mut self, action: &str, semantics: Semantics, limits: &Limits) -> Executed {
        let sandbox = Sandbox::get().expect("the sandbox runs here");
        let root = self.tree.path();
        exec::run(sandbox, root, &mut self.cwd, action, semantics, limits)
    }
}

/// What an action showed and whether it succeeded.
fn seen(done: &Executed) -> (&str, bool) {
    (done.observation.as_str(), done.ok)
}

#[test]
fn inner_quotes_end_intercodes_outer_ones_but_not_bashs() {
    let mut shell = Shell::at("/");
    let intercode = shell.run(r#"echo "a b""#, Semantics::Intercode);
    assert_eq!(seen(&intercode), ("a\n", true));
    let bash = shell.run(r#"echo "a b""#, Semantics::Bash);
    assert_eq!(seen(&bash), ("a b\n", true));
}

#[test]
fn intercode_cd_takes_the_whole_rest_of_the_line() {
    let mut shell = Shell::at("/");
    let first = shell.run("cd /testbed && ls", Semantics::Intercode);
    assert_eq!(seen(&first), ("a.txt\ndir1\n", true));
    assert_eq!(shell.cwd, "/testbed && ls");
    // The kept directory does not exist, so the next command cannot even start there.
    let next = shell.run("ls", Semantics::Intercode);
    assert!(!next.ok, "{next:?}");
    assert!(!next.observation.contains("a.txt"), "{next:?}");
    // A later `cd` starts from `/`, so it still works.
    let back = shell.run("cd /testbed", Semantics::Intercode);
    assert!(back.ok, "{back:?}");
    assert_eq!(shell.cwd, "/testbed");
    // Without a `"cd "` the action is an ordinary command (InterCode would have raised): bash's
    // `cd` to `$HOME` lasts only for its own process, and `cdx` is no command.
    assert_eq!(seen(&shell.run("cd", Semantics::Intercode)), ("", true));
    let unknown = shell.run("cdx", Semantics::Intercode);
    assert!(
        unknown.observation.contains("cdx: command not found"),
        "{unknown:?}"
    );
    assert_eq!((unknown.ok, shell.cwd.as_str()), (false, "/testbed"));
}

#[test]
fn the_evaluation_runs_a_gold_cd_whole_from_the_root() {
    let shell = Shell::at("/other");
    let sandbox = Sandbox::get().expect("the sandbox runs here");
    let gold = "cd testbed && cat a.txt";
    for semantics in [Semantics::Intercode, Semantics::Bash] {
        let done = exec::evaluate(
            sandbox,
            shell.tree.path(),
            gold,
            semantics,
            &Limits::default(),
        );
        assert_eq!(seen(&done), ("alpha\n", true), "{semantics:?}");
    }
    // The agent's same action under InterCode keeps the rest of the line as its directory,
    // where the next command cannot start.
    let mut agent = Shell::at("/");
    assert!(agent.run(gold, Semantics::Intercode).ok);
    assert_eq!(agent.cwd, "/testbed && cat a.txt");
    assert!(!agent.run("ls", Semantics::Intercode).ok);
}

#[test]
fn relative_and_dotdot_cd_resolve_against_the_kept_directory() {
    for semantics in [Semantics::Intercode, Semantics::Bash] {
        let mut shell = Shell::at("/");
        for (action, expected) in [
            ("cd testbed", "/testbed"),
            ("cd dir1/sub", "/testbed/dir1/sub"),
            ("cd ../..", "/testbed"),
            ("cd ../other", "/other"),
            ("cd ../../../..", "/"),
        ] {
            let done = shell.run(action, semantics);
            assert!(done.ok, "{semantics:?} {action}: {done:?}");
            assert_eq!(done.observation, "", "{semantics:?} {action}");
            assert_eq!(shell.cwd, expected, "{semantics:?} {action}");
        }
        shell.run("cd testbed", semantics);
        let here = shell.run("pwd; cat a.txt", semantics);
        assert_eq!(here.observation, "/testbed\nalpha\n", "{semantics:?}");
    }
}

#[test]
fn a_missing_directory_keeps_the_old_one() {
    for semantics in [Semantics::Intercode, Semantics::Bash] {
        let mut shell = Shell::at("/testbed");
        let done = shell.run("cd nowhere", semantics);
        assert!(!done.ok, "{semantics:?}: {done:?}");
        assert!(
            done.observation
                .contains("nowhere: No such file or directory"),
            "{semantics:?}: {done:?}"
        );
        assert_eq!(shell.cwd, "/testbed", "{semantics:?}");
    }
}

#[test]
fn bash_keeps_the_directory_its_script_ends_in() {
    let mut shell = Shell::at("/");
    // Two `cd`s, an `exit` with a failing status after output without a final newline, stdout
    // sent elsewhere, and positional parameters as for `bash -c script`.
    for (script, observation, ok, dir) in [
        ("cd /testbed && cd dir1; ls", "sub\n", true, "/testbed/dir1"),
        ("cd sub; printf x; exit 3", "x", false, "/testbed/dir1/sub"),
        ("exec >/dev/null; cd /other", "", true, "/other"),
        ("echo $0 $#", "/bin/bash 0\n", true, "/other"),
    ] {
        let done = shell.run(script, Semantics::Bash);
        assert_eq!(seen(&done), (observation, ok), "{script}");
        assert_eq!(shell.cwd, dir, "{script}");
    }
}

#[test]
fn what_shlex_rejects_is_a_malformed_command() {
    let mut shell = Shell::at("/testbed");
    let done = shell.run(r#"echo "it's""#, Semantics::Intercode);
    assert_eq!(seen(&done), ("Malformed command", false));
    let done = shell.run(r#"cd "dir1"#, Semantics::Intercode);
    assert_eq!(seen(&done), ("Malformed command", false));
    assert_eq!(shell.cwd, "/testbed");
    // Bash itself reports the unclosed quote.
    let done = shell.run("echo 'a", Semantics::Bash);
    assert!(!done.ok, "{done:?}");
    assert!(done.observation.contains("unexpected EOF"), "{done:?}");
}

#[test]
fn output_that_is_not_utf8_is_malformed_for_intercode_and_replaced_for_bash() {
    let mut shell = Shell::at("/");
    let intercode = shell.run(r"printf 'a\377'", Semantics::Intercode);
    assert_eq!(seen(&intercode), ("Malformed command", false));
    let bash = shell.run(r"printf 'a\377'", Semantics::Bash);
    assert_eq!(seen(&bash), ("a\u{FFFD}", true));
}

#[test]
fn an_action_past_the_timeout_is_killed() {
    let limits = Limits {
        timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    for semantics in [Semantics::Intercode, Semantics::Bash] {
        let mut shell = Shell::at("/");
        let started = std::time::Instant::now();
        let done = shell.run_with("cd testbed; sleep 5", semantics, &limits);
        assert_eq!(seen(&done), ("Command timed out", false));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(shell.cwd, "/", "{semantics:?}");
    }
}
