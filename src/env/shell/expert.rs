//! The shell's expert, at two privileges.
//!
//! Informed by the privileged state (the gold command), it runs the gold command from where the
//! task starts and submits: that is the plan. Limited to what the student has seen, it first
//! looks at what the request is about, as the gold command reads it (the directories it works
//! in, the files it reads, the files its `find` looks for; read-only, at most
//! [`MAX_EXPLORE`] steps, none repeated), then runs the command and submits. Its reasons state a
//! principle drawn from the request and the command's utilities ("the request asks for a count,
//! so find the *.c files under /testbed and count the lines with wc -l"), never the output.

use super::fs::{Entry, Node};
use super::gold::{Category, Gold};
use crate::env::Advice;

/// Exploring steps before the gold command, at most.
pub const MAX_EXPLORE: usize = 3;
/// Lines of a file printed whole when explored; a longer one is shown by its first lines.
const SHORT_FILE: usize = 20;

pub const SUBMIT: &str = "submit";

/// The file system's paths as the expert explores them.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    paths: Vec<(String, Shape)>,
}

/// What is at a path, as far as exploring goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Dir,
    /// A text file of so many lines.
    Text(usize),
    /// An archive or other bytes: listed, not printed.
    Binary,
}

impl Layout {
    pub fn of(entries: &[Entry]) -> Layout {
        let paths = entries
            .iter()
            .filter_map(|e| {
                let shape = match &e.node {
                    Node::Dir => Shape::Dir,
                    Node::File(bytes) => match std::str::from_utf8(bytes) {
                        Ok(text) if !text.contains('\0') => Shape::Text(text.lines().count()),
                        _ => Shape::Binary,
                    },
                    Node::Symlink(_) => return None,
                };
                Some((e.path.clone(), shape))
            })
            .collect();
        Layout { paths }
    }

    fn find(&self, path: &str) -> Option<Shape> {
        self.paths.iter().find(|(p, _)| p == path).map(|(_, s)| *s)
    }

    fn is_dir(&self, path: &str) -> bool {
        self.find(path) == Some(Shape::Dir)
    }
}

/// `path` as written in a command run at `/`, made absolute and tidied (`testbed/dir1/` →
/// `/testbed/dir1`, `.` → `/`).
fn absolute(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

/// One step the expert takes, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub action: String,
    pub reason: String,
}

/// Whether the request names `path` (absolute or as written from `/`) or, with `base`, its
/// file name.
fn named(request: &str, path: &str) -> bool {
    let request = request.to_lowercase();
    let path = path.to_lowercase();
    request.contains(&path) || request.contains(path.trim_start_matches('/'))
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The read-only steps that look at what the request is about before the gold command runs:
/// the top of the file system when the request does not say where its files are, what `find`
/// will look for, the directories and files the command names.
pub fn explore(request: &str, gold: &str, layout: &Layout) -> Vec<Step> {
    let g = Gold::read(gold);
    let mut steps: Vec<Step> = Vec::new();
    let push = |steps: &mut Vec<Step>, action: String, reason: String| {
        let same = |a: &str| a.split_whitespace().eq(action.split_whitespace());
        if !same(gold) && !steps.iter().any(|s| same(&s.action)) {
            steps.push(Step { action, reason });
        }
    };

    let named_paths: Vec<String> = g
        .paths
        .iter()
        .chain(&g.globs)
        .map(|p| absolute(p))
        .collect();
    let unplaced = named_paths.iter().any(|p| {
        let top = p.split('/').nth(1).unwrap_or("");
        !top.is_empty() && layout.find(&format!("/{top}")).is_some() && !named(request, top)
    });
    if unplaced {
        push(
            &mut steps,
            "ls /".to_string(),
            "The request does not say where its files are, so look at the top of the file system first.".to_string(),
        );
    }
    let mut covered: Vec<String> = Vec::new();
    for (start, pattern) in &g.finds {
        let dir = absolute(start);
        if dir == "/" || !layout.is_dir(&dir) {
            continue;
        }
        covered.push(dir.clone());
        match pattern {
            Some(p) => push(
                &mut steps,
                format!("find {dir} -name '{p}'"),
                format!("The request is about the {p} files under {dir}, so list them first."),
            ),
            None => push(
                &mut steps,
                format!("ls {dir}"),
                format!("The request works under {dir}, so see what it holds first."),
            ),
        }
    }
    for glob in &g.globs {
        let glob = absolute(glob);
        let (dir, pattern) = glob.rsplit_once('/').unwrap_or(("", &glob));
        let dir = if dir.is_empty() { "/" } else { dir };
        push(
            &mut steps,
            format!("ls -d {glob}"),
            format!("The request is about the {pattern} files in {dir}, so list them first."),
        );
    }
    for path in g.paths.iter().filter(|p| !g.written.contains(p)) {
        let abs = absolute(path);
        if abs == "/" || covered.iter().any(|c| c == &abs) {
            continue;
        }
        if layout.is_dir(&abs) {
            push(
                &mut steps,
                format!("ls {abs}"),
                format!("The request works in {abs}, so see what it holds first."),
            );
        } else if let Some(shape) = layout.find(&abs) {
            let base = file_name(&abs);
            if !named(request, &abs) && named(request, base) {
                let top = abs.split('/').nth(1).unwrap_or("");
                push(
                    &mut steps,
                    format!("find /{top} -name '{base}'"),
                    format!("The request names {base} but not where it is, so find it first."),
                );
            }
            let (read, reason) = match shape {
                Shape::Text(lines) if lines <= SHORT_FILE => (
                    format!("cat {abs}"),
                    format!("The request uses {base}, so read it before working on it."),
                ),
                Shape::Text(_) => (
                    format!("head -n {SHORT_FILE} {abs}"),
                    format!(
                        "The request uses {base}, so read its first lines before working on it."
                    ),
                ),
                _ => (
                    format!("ls -l {abs}"),
                    format!(
                        "The request uses {base}, which is not text, so look at it before working on it."
                    ),
                ),
            };
            push(&mut steps, read, reason);
        }
    }
    steps.truncate(MAX_EXPLORE);
    steps
}

/// What a request of each category asks for, as a reason says it.
fn wants(category: Category) -> &'static str {
    match category {
        Category::Change => "a change to the files",
        Category::Hash => "hashes",
        Category::Count => "a count",
        Category::Size => "sizes",
        Category::Search => "the files or lines that match",
        Category::Read => "text from the files",
        Category::System => "facts about the system",
    }
}

/// What running `utility` does in `gold`, as a reason says it; `None` for one that only runs
/// another (`xargs`).
fn does(utility: &str, g: &Gold) -> Option<String> {
    let opt = |o: &str| g.has_option(utility, o);
    let phrase = match utility {
        "xargs" | "sudo" | "time" | "nice" | "sh" | "bash" => return None,
        "find" => {
            let (start, pattern) = g.finds.first()?;
            let dir = absolute(start);
            return Some(match pattern {
                Some(p) => format!("find the {p} files under {dir}"),
                None => format!("walk everything under {dir} with find"),
            });
        }
        "grep" | "egrep" | "fgrep" if opt("-c") => "count the matching lines with grep -c",
        "grep" | "egrep" | "fgrep" if opt("-l") => "keep the files whose text matches with grep -l",
        "grep" | "egrep" | "fgrep" => "search their text with grep",
        "wc" if opt("-l") => "count the lines with wc -l",
        "wc" if opt("-w") => "count the words with wc -w",
        "wc" if opt("-c") => "count the bytes with wc -c",
        "wc" => "count with wc",
        "md5sum" | "sha1sum" | "sha256sum" | "sha512sum" | "cksum" | "md5deep" => {
            return Some(format!("hash them with {utility}"));
        }
        "sort" => "sort them",
        "uniq" if opt("-d") => "keep the duplicates with uniq -d",
        "uniq" if opt("-c") => "count each one with uniq -c",
        "uniq" if opt("-u") => "keep the ones seen once with uniq -u",
        "uniq" => "drop repeats with uniq",
        "du" => "measure their sizes with du",
        "df" => "report the disk space with df",
        "ls" => "list them with ls",
        "tree" => "draw the tree with tree",
        "tar" if opt("-x") => "unpack the archive with tar",
        "tar" if opt("-t") => "list the archive with tar",
        "tar" => "archive them with tar",
        "chmod" => "set their permissions with chmod",
        "chown" => "set their owner with chown",
        "chgrp" => "set their group with chgrp",
        "cp" => "copy them with cp",
        "mv" => "move them with mv",
        "rm" => "remove them with rm",
        "rmdir" => "remove the directory with rmdir",
        "mkdir" => "create the directory with mkdir",
        "touch" => "create the file with touch",
        "ln" => "link them with ln",
        "cat" => "print the contents with cat",
        "head" => "take the first lines with head",
        "tail" => "take the last lines with tail",
        "awk" => "pick out the fields it wants with awk",
        "cut" => "cut out the fields it wants",
        "sed" if opt("-i") => "edit the files in place with sed -i",
        "sed" => "rewrite the text with sed",
        "tr" => "translate the characters with tr",
        "tee" => "write the result to a file as well with tee",
        "gzip" => "compress with gzip",
        "zcat" => "read the compressed file with zcat",
        "diff" | "comm" => return Some(format!("compare them with {utility}")),
        "echo" => "print the answer with echo",
        "basename" => "keep the file names with basename",
        "dirname" => "keep the directories with dirname",
        "which" => "look the program up with which",
        other => return Some(format!("run {other}")),
    };
    Some(phrase.to_string())
}

/// "a", "a and b", "a, b and c".
fn listing(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Why the gold command answers the request, from its utilities.
pub fn gold_reason(gold: &str) -> String {
    let g = Gold::read(gold);
    let mut clauses: Vec<String> = Vec::new();
    for u in &g.utilities {
        if let Some(c) = does(u, &g)
            && !clauses.contains(&c)
        {
            clauses.push(c);
        }
    }
    clauses.truncate(4);
    if let Some(file) = g.written.iter().find(|_| !g.runs("tee")) {
        clauses.push(format!("save the result to {file}"));
    }
    let how = if clauses.is_empty() {
        "run the command that gives it".to_string()
    } else {
        listing(&clauses)
    };
    format!("The request asks for {}, so {how}.", wants(g.category()))
}

/// Why the episode is over after the gold command.
pub fn submit_reason(gold: &str) -> &'static str {
    if Gold::read(gold).category() == Category::Change {
        "The last command made the change the request asks for, so submit."
    } else {
        "The last output answers the request, so submit."
    }
}

const BACK: &str = "Answers are expected from where the task started, so go back there first.";

/// What the agent has done so far in the episode.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    /// Its commands, trimmed, in order.
    pub actions: Vec<String>,
}

impl Memory {
    fn ran(&self, action: &str) -> bool {
        self.actions
            .iter()
            .any(|a| a.split_whitespace().eq(action.split_whitespace()))
    }

    fn last_was(&self, action: &str) -> bool {
        self.actions
            .last()
            .is_some_and(|a| a.split_whitespace().eq(action.split_whitespace()))
    }
}

/// Where an episode stands, as the expert reads it.
pub struct State<'a> {
    pub request: &'a str,
    pub gold: &'a str,
    pub memory: &'a Memory,
    /// The working directory now, and at the start.
    pub cwd: &'a str,
    pub start: &'a str,
    /// Steps left before the horizon.
    pub left: u32,
    pub layout: &'a Layout,
}

fn advice(action: impl Into<String>, reason: impl Into<String>, privileged: bool) -> Advice {
    Advice {
        action: action.into(),
        reason: reason.into(),
        privileged,
    }
}

/// The next step: with `explore`, a first look not taken yet while steps allow it; then back to
/// the start, the gold command, and submit.
pub fn advise(s: &State, explore_first: bool) -> Advice {
    let changes = Gold::read(s.gold).category() == Category::Change;
    if s.memory.last_was(s.gold) || (changes && s.memory.ran(s.gold)) {
        return advice(SUBMIT, submit_reason(s.gold), false);
    }
    if s.cwd != s.start {
        return advice(format!("cd {}", s.start), BACK, false);
    }
    if explore_first {
        let todo: Vec<Step> = explore(s.request, s.gold, s.layout)
            .into_iter()
            .filter(|step| !s.memory.ran(&step.action))
            .collect();
        // Leave room for the gold command and the submission.
        if let Some(step) = todo.first().filter(|_| s.left > 2) {
            return advice(step.action.clone(), step.reason.clone(), false);
        }
    }
    advice(s.gold, gold_reason(s.gold), true)
}

/// The informed expert's plan from here: back to the start if the agent moved, the gold
/// command unless it just ran, submit.
pub fn plan(s: &State) -> Vec<String> {
    let changes = Gold::read(s.gold).category() == Category::Change;
    if s.memory.last_was(s.gold) || (changes && s.memory.ran(s.gold)) {
        return vec![SUBMIT.to_string()];
    }
    let mut plan = Vec::new();
    if s.cwd != s.start {
        plan.push(format!("cd {}", s.start));
    }
    plan.push(s.gold.to_string());
    plan.push(SUBMIT.to_string());
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        let dir = |p: &str| (p.to_string(), Shape::Dir);
        let file = |p: &str, n| (p.to_string(), Shape::Text(n));
        Layout {
            paths: vec![
                dir("/testbed"),
                dir("/testbed/dir1"),
                dir("/testbed/dir1/subdir1"),
                file("/testbed/dir1/textfile1.txt", 3),
                file("/testbed/dir3/subdir1/subsubdir1/textfile3.txt", 40),
                file("/testbed/Hello.java", 5),
                ("/testbed/a.tar.gz".to_string(), Shape::Binary),
            ],
        }
    }

    #[test]
    fn exploration_follows_what_the_gold_reads() {
        let cases: [(&str, &str, &[&str]); 5] = [
            (
                "Calculate the md5 sum of all \".py\" files under /testbed/dir1/subdir1",
                "find /testbed/dir1/subdir1 -type f -name *.py -exec md5sum {} + | sort | md5sum",
                &["find /testbed/dir1/subdir1 -name '*.py'"],
            ),
            (
                "Print the last 10 lines of textfile3.txt in testbed",
                "tail -n 10 /testbed/dir3/subdir1/subsubdir1/textfile3.txt",
                &[
                    "find /testbed -name 'textfile3.txt'",
                    "head -n 20 /testbed/dir3/subdir1/subsubdir1/textfile3.txt",
                ],
            ),
            (
                "Calculate a list of duplicate md5 sum hashes for all the \".java\" files",
                "md5sum /testbed/*.java | awk '{print $1}' | sort | uniq -d",
                &["ls /", "ls -d /testbed/*.java"],
            ),
            ("print the kernel name", "uname -s", &[]),
            (
                "list the files in /testbed/a.tar.gz",
                "tar -tzf /testbed/a.tar.gz",
                &["ls -l /testbed/a.tar.gz"],
            ),
        ];
        for (request, gold, expected) in cases {
            let steps = explore(request, gold, &layout());
            let actions: Vec<&str> = steps.iter().map(|s| s.action.as_str()).collect();
            assert_eq!(actions, expected, "{gold}");
        }
        let steps = explore(cases[0].0, cases[0].1, &layout());
        assert_eq!(
            steps[0].reason,
            "The request is about the *.py files under /testbed/dir1/subdir1, so list them first."
        );
    }

    #[test]
    fn reasons_are_phrased_from_the_utilities() {
        assert_eq!(
            gold_reason("md5sum /testbed/*.java | awk '{print $1}' | sort | uniq -d"),
            "The request asks for hashes, so hash them with md5sum, pick out the fields it wants with awk, sort them and keep the duplicates with uniq -d."
        );
        assert_eq!(
            gold_reason("find /testbed -name \"*.c\" -print0 | xargs -0 cat | wc -l"),
            "The request asks for a count, so find the *.c files under /testbed, print the contents with cat and count the lines with wc -l."
        );
        assert_eq!(
            gold_reason("find /system -name \"*.txt\" -exec cat {} \\; > /system/out.txt"),
            "The request asks for a change to the files, so find the *.txt files under /system, print the contents with cat and save the result to /system/out.txt."
        );
        assert_eq!(
            submit_reason("mkdir /testbed/x"),
            "The last command made the change the request asks for, so submit."
        );
    }

    #[test]
    fn the_informed_plan_goes_back_runs_the_gold_and_submits() {
        let mut memory = Memory::default();
        let layout = layout();
        let state = |memory: &Memory, cwd: &'static str| {
            plan(&State {
                request: "count",
                gold: "wc -l /testbed/dir1/textfile1.txt",
                memory: &memory.clone(),
                cwd,
                start: "/",
                left: 10,
                layout: &layout,
            })
        };
        assert_eq!(
            state(&memory, "/testbed"),
            ["cd /", "wc -l /testbed/dir1/textfile1.txt", "submit"]
        );
        memory
            .actions
            .push("wc -l  /testbed/dir1/textfile1.txt".into());
        assert_eq!(state(&memory, "/"), ["submit"]);
        memory.actions.push("ls".into());
        assert_eq!(
            state(&memory, "/"),
            ["wc -l /testbed/dir1/textfile1.txt", "submit"]
        );
    }
}
