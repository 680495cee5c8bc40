//! One action, run as InterCode-Bash runs it (`bash_env.py`, `exec_action`) or as plain bash.
//!
//! Each action is its own `bash -c` in a fresh sandbox; only the working directory carries over.
//! Under [`Semantics::Intercode`] the quirks of the benchmark stay, because imported scenarios
//! must score as the paper's did:
//! - the action is wrapped as `/bin/bash -c "<action.strip()>"` and split with Python's `shlex`
//!   (docker-py does), so inner double quotes end the outer ones; a string `shlex` rejects, or
//!   output that is not UTF-8, observes `Malformed command`;
//! - an action starting with `cd` takes everything after the first `"cd "` as the directory,
//!   resolves it textually against the kept one, runs `cd NEW` in `/` and keeps `NEW` when that
//!   exits 0, so `cd /x && ls` keeps the directory `/x && ls` and the next command fails to start.
//!   An action that starts with `cd` but has no `"cd "` (`cd`, `cdx`, `cd\t/x`) makes InterCode
//!   raise outside its handler and end the run; here it runs as an ordinary command in the kept
//!   directory and keeps nothing (bash's `cd` alone succeeds and changes nothing that lasts).
//!
//! Under [`Semantics::Bash`] the action is exactly the script of `bash -c`, and the directory the
//! script ends in is kept. The script runs through `eval` in a small wrapper whose `EXIT` trap
//! prints `$PWD` between two copies of a random marker on a copy of the original stdout; the
//! marker is cut from the observation. The wrapper shows only where bash names its caller
//! (`/bin/bash: eval: line 1:` for a syntax error instead of `/bin/bash: -c: line 1:`), in its
//! variables (`__leap_*`) and in the descriptor holding the copy. Where the marker cannot come
//! back (the script `exec`s another program, replaces the trap, closes the copy, or the output
//! passes [`Limits::output_bytes`]), the directory is kept as it was.

use crate::env::shell::sandbox::{Exit, Limits, Sandbox};
use crate::env::shell::shlex::{self, python_strip};
use std::path::Path;

/// How an action string becomes a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Semantics {
    /// Plain bash: the action is the script of `bash -c`, `cd` is bash's own.
    #[default]
    Bash,
    /// InterCode-Bash as its benchmark ran, quirks included (imported scenarios).
    Intercode,
}

/// One executed action.
#[derive(Debug, Clone)]
pub struct Executed {
    pub observation: String,
    /// The command ran and exited 0 (InterCode's `action_executed`).
    pub ok: bool,
}

/// InterCode's observation for anything its `try` caught.
pub const MALFORMED: &str = "Malformed command";
/// InterCode's observation for an action past the timeout.
pub const TIMED_OUT: &str = "Command timed out";

impl Executed {
    fn failed(observation: &str) -> Executed {
        Executed {
            observation: observation.to_string(),
            ok: false,
        }
    }
}

/// Runs `action` in `tree` at `cwd`, updating `cwd` after a successful `cd`.
pub fn run(
    sandbox: &Sandbox,
    tree: &Path,
    cwd: &mut String,
    action: &str,
    semantics: Semantics,
    limits: &Limits,
) -> Executed {
    match semantics {
        Semantics::Intercode => run_intercode(sandbox, tree, cwd, action, limits),
        Semantics::Bash => run_bash(sandbox, tree, cwd, action, limits),
    }
}

fn run_intercode(
    sandbox: &Sandbox,
    tree: &Path,
    cwd: &mut String,
    action: &str,
    limits: &Limits,
) -> Executed {
    let cd_target = match action.find("cd ") {
        Some(at) if action.starts_with("cd") => {
            Some(simplify_path(cwd, python_strip(&action[at + 3..])))
        }
        _ => None,
    };
    let (command, workdir) = match &cd_target {
        Some(target) => (format!("cd {target}"), "/"),
        None => (action.to_string(), cwd.as_str()),
    };
    let done = run_line(sandbox, tree, workdir, &command, limits);
    if let (Some(target), true) = (cd_target, done.ok) {
        *cwd = target;
    }
    done
}

/// `command` run from `/` as InterCode's evaluation runs the gold command: through the same
/// `bash -c` (and, under [`Semantics::Intercode`], the same `shlex` split), but without the
/// agent's `cd` rule, so a gold `cd DIR && ...` runs whole.
pub fn evaluate(
    sandbox: &Sandbox,
    tree: &Path,
    command: &str,
    semantics: Semantics,
    limits: &Limits,
) -> Executed {
    match semantics {
        Semantics::Intercode => run_line(sandbox, tree, "/", command, limits),
        Semantics::Bash => run_bash(sandbox, tree, &mut "/".to_string(), command, limits),
    }
}

/// `/bin/bash -c "<command>"` split by Python's `shlex`, run in `workdir`, its output strictly
/// UTF-8: InterCode's `clean_cmd` and `exec_run`.
fn run_line(
    sandbox: &Sandbox,
    tree: &Path,
    workdir: &str,
    command: &str,
    limits: &Limits,
) -> Executed {
    let Ok(argv) = shlex::split(&format!("/bin/bash -c \"{}\"", python_strip(command))) else {
        return Executed::failed(MALFORMED);
    };
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let run = match start(sandbox, tree, workdir, &argv, limits) {
        Ok(run) => run,
        Err(failed) => return failed,
    };
    let Some(observation) = strict_utf8(run.output, limits) else {
        return Executed::failed(MALFORMED);
    };
    let ok = run.exit == Exit::Code(0);
    Executed { observation, ok }
}

/// InterCode's `simplify_path`: `changed` resolved against `current` by text alone (`..` above
/// `/` stays at `/`; empty and `.` segments vanish; an empty `changed` is `current`).
pub fn simplify_path(current: &str, changed: &str) -> String {
    if changed.is_empty() {
        return current.to_string();
    }
    let base = if changed.starts_with('/') {
        ""
    } else {
        current
    };
    let joined = format!("{base}/{changed}");
    let mut path: Vec<&str> = Vec::new();
    for segment in joined.split('/') {
        match segment {
            ".." => {
                path.pop();
            }
            "" | "." => {}
            segment => path.push(segment),
        }
    }
    format!("/{}", path.join("/"))
}

/// Runs in the sandbox; a timeout is InterCode's message, and a command the host cannot start
/// (an argument with a NUL byte, which Docker's API would have refused too) is malformed. Any
/// other host error means the sandbox broke and is said so.
fn start(
    sandbox: &Sandbox,
    tree: &Path,
    workdir: &str,
    argv: &[&str],
    limits: &Limits,
) -> Result<crate::env::shell::sandbox::Run, Executed> {
    if argv.iter().any(|a| a.contains('\0')) || workdir.contains('\0') {
        return Err(Executed::failed(MALFORMED));
    }
    match sandbox.run(tree, workdir, argv, limits) {
        Ok(run) if run.exit == Exit::TimedOut => Err(Executed::failed(TIMED_OUT)),
        Ok(run) => Ok(run),
        Err(e) => Err(Executed::failed(&format!("leap: the sandbox failed: {e}"))),
    }
}

/// Python's `bytes.decode("utf-8")`, which raises on invalid bytes. A multi-byte character cut by
/// [`Limits::output_bytes`] is leap's truncation, not the command's, so it is dropped first.
fn strict_utf8(mut output: Vec<u8>, limits: &Limits) -> Option<String> {
    if output.len() >= limits.output_bytes
        && let Err(e) = std::str::from_utf8(&output)
        && e.error_len().is_none()
    {
        output.truncate(e.valid_up_to());
    }
    String::from_utf8(output).ok()
}

fn run_bash(
    sandbox: &Sandbox,
    tree: &Path,
    cwd: &mut String,
    script: &str,
    limits: &Limits,
) -> Executed {
    let marker = format!("\x1eleap-cwd-{:016x}\x1e", rand::random::<u64>());
    let wrapper = format!(
        "__leap_script=$1\nshift\nexec {{__leap_out}}>&1\n\
         trap '__leap_status=$?; printf \"\\n%s%s%s\\n\" \"{marker}\" \"$PWD\" \"{marker}\" 2>/dev/null >&\"$__leap_out\"; exit \"$__leap_status\"' EXIT\n\
         eval \"$__leap_script\""
    );
    // `$0` is `/bin/bash`, as for a plain `/bin/bash -c script`: bash names itself so in errors.
    let argv = ["/bin/bash", "-c", wrapper.as_str(), "/bin/bash", script];
    let run = match start(sandbox, tree, cwd, &argv, limits) {
        Ok(run) => run,
        Err(failed) => return failed,
    };
    let mut output = String::from_utf8_lossy(&run.output).into_owned();
    if let Some((from, to, dir)) = find_marker(&output, &marker) {
        if !dir.is_empty() {
            *cwd = dir.to_string();
        }
        output.replace_range(from..to, "");
    }
    Executed {
        observation: output,
        ok: run.exit == Exit::Code(0),
    }
}

/// The last `\n<marker><dir><marker>\n` in `output`: its byte range and the directory.
fn find_marker<'a>(output: &'a str, marker: &str) -> Option<(usize, usize, &'a str)> {
    let opening = format!("\n{marker}");
    let from = output.rfind(&opening)?;
    let dir_start = from + opening.len();
    let dir_len = output[dir_start..].find(marker)?;
    let dir = &output[dir_start..dir_start + dir_len];
    let mut to = dir_start + dir_len + marker.len();
    if output[to..].starts_with('\n') {
        to += 1;
    }
    Some((from, to, dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplify_path_is_intercodes() {
        assert_eq!(simplify_path("/", "testbed"), "/testbed");
        assert_eq!(simplify_path("/testbed/dir1", ".."), "/testbed");
        assert_eq!(simplify_path("/testbed", "../../.."), "/");
        assert_eq!(simplify_path("/a", "/b//c/./d/"), "/b/c/d");
        assert_eq!(simplify_path("/a", ""), "/a");
        assert_eq!(simplify_path("/", "/x && ls"), "/x && ls");
        assert_eq!(simplify_path("/", "x && cat ../y"), "/x && cat ../y");
        assert_eq!(simplify_path("/", "x/../y"), "/y");
    }

    #[test]
    fn only_leaps_own_truncation_may_cut_a_character() {
        let limits = Limits {
            output_bytes: 4,
            ..Limits::default()
        };
        assert_eq!(
            strict_utf8(b"abc\xc3".to_vec(), &limits).as_deref(),
            Some("abc")
        );
        assert_eq!(strict_utf8(b"ab\xc3".to_vec(), &limits), None);
        assert_eq!(strict_utf8(b"a\xffbc".to_vec(), &limits), None);
    }

    #[test]
    fn the_marker_is_cut_whole() {
        let m = "\x1eM\x1e";
        let out = format!("a\n\n{m}/x y{m}\n");
        let (from, to, dir) = find_marker(&out, m).unwrap();
        assert_eq!((&out[..from], &out[to..], dir), ("a\n", "", "/x y"));
        assert_eq!(find_marker("a\n", m), None);
    }
}
