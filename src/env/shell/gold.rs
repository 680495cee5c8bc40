//! What a gold command does, read from its words: the utilities it runs, the paths it names, the
//! patterns its `find` looks for, and the category of answer it gives. The expert explores and
//! phrases its reasons from this, and evaluation groups scenarios by the category. It is a
//! reading of the command line, not a shell parser: good enough for one-line commands.

/// One word of a command line, quotes removed; `op` marks an operator (`|`, `;`, `&&`, `$(`...).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Word {
    text: String,
    op: bool,
    /// Some of it was quoted: a pattern for the utility, not a glob for the shell.
    quoted: bool,
}

/// Splits `line` into words and operators, honouring single and double quotes and `\`.
fn lex(line: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut started = false;
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    let flush = |cur: &mut String, started: &mut bool, quoted: &mut bool, words: &mut Vec<Word>| {
        if *started {
            words.push(Word {
                text: std::mem::take(cur),
                op: false,
                quoted: *quoted,
            });
            *started = false;
            *quoted = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                started = true;
                quoted = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                started = true;
                quoted = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                started = true;
                quoted = true;
                cur.extend(chars.next());
            }
            c if c.is_whitespace() => flush(&mut cur, &mut started, &mut quoted, &mut words),
            '|' | ';' | '&' | '(' | ')' | '`' | '<' | '>' | '$' => {
                if c == '$' && chars.peek() != Some(&'(') {
                    started = true;
                    cur.push(c);
                    continue;
                }
                flush(&mut cur, &mut started, &mut quoted, &mut words);
                let mut op = c.to_string();
                while let Some(&n) = chars.peek() {
                    if matches!(
                        (c, n),
                        ('|', '|') | ('&', '&') | ('$', '(') | ('<', '(') | ('>', '>' | '(' | '&')
                    ) {
                        op.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                words.push(Word {
                    text: op,
                    op: true,
                    quoted: false,
                });
            }
            c => {
                started = true;
                cur.push(c);
            }
        }
    }
    flush(&mut cur, &mut started, &mut quoted, &mut words);
    words
}

/// Words after which a new command starts.
fn starts_command(op: &str) -> bool {
    matches!(
        op,
        "|" | "||" | "&&" | ";" | "&" | "$(" | "<(" | ">(" | "(" | "`"
    )
}

/// Words that run the command after them (`xargs md5sum`, `sudo rm`).
const WRAPPERS: &[&str] = &["xargs", "sudo", "time", "nice", "nohup", "exec", "command"];

/// A gold command, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gold {
    /// The utilities it runs, in order, each once (`find`, `md5sum`, `sort`, `uniq`).
    pub utilities: Vec<String>,
    /// Every word that looks like a path (`/testbed/dir1`, `testbed/x.txt`, `.`), in order.
    pub paths: Vec<String>,
    /// Where each `find` starts and the `-name`/`-iname` pattern it looks for, if any.
    pub finds: Vec<(String, Option<String>)>,
    /// Words with a wildcard in a path (`/testbed/*.java`), in order.
    pub globs: Vec<String>,
    /// Files the output is written to (`> FILE`, `>> FILE`, `tee FILE`).
    pub written: Vec<String>,
    /// Options given to each utility, by utility (`uniq` `-d`).
    options: Vec<(String, String)>,
}

impl Gold {
    pub fn read(command: &str) -> Gold {
        let words = lex(command);
        let mut gold = Gold::default();
        let mut at_command = true;
        let mut current = String::new();
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            i += 1;
            if w.op {
                at_command = starts_command(&w.text);
                if at_command {
                    current.clear();
                }
                if matches!(w.text.as_str(), ">" | ">>")
                    && let Some(next) = words.get(i).filter(|n| !n.op)
                {
                    if !next.text.starts_with('&') && next.text != "/dev/null" {
                        gold.written.push(next.text.clone());
                    }
                    i += 1;
                }
                continue;
            }
            let text = w.text.as_str();
            if at_command {
                if text.contains('=') && !text.starts_with('=') {
                    continue; // an assignment before the command
                }
                if WRAPPERS.contains(&current.as_str()) && text.starts_with('-') {
                    // The wrapper's own options (`xargs -0`, `xargs -I {}`, `nice -n 5`).
                    if WRAPPER_ARGUMENTS.contains(&text) {
                        i += 1;
                    }
                    continue;
                }
                let name = text.rsplit('/').next().unwrap_or(text).to_string();
                if name.is_empty() {
                    continue;
                }
                if !gold.utilities.contains(&name) {
                    gold.utilities.push(name.clone());
                }
                current = name;
                at_command = WRAPPERS.contains(&current.as_str());
                if current == "find" {
                    gold.finds.extend(find_starts(&words[i..]));
                }
                continue;
            }
            if matches!(text, "-exec" | "-execdir" | "-ok") {
                at_command = true;
                continue;
            }
            if text.starts_with('-') && text.len() > 1 {
                gold.options.push((current.clone(), text.to_string()));
            } else if current == "tee" {
                gold.written.push(text.to_string());
            }
            if looks_like_path(text) && !gold.paths.iter().any(|p| p == text) {
                gold.paths.push(text.to_string());
            } else if !w.quoted && looks_like_glob(text) && !gold.globs.iter().any(|p| p == text) {
                gold.globs.push(text.to_string());
            }
        }
        gold
    }

    /// Whether `utility` runs with the option `option` (`uniq`, `-d`), alone or among short
    /// options run together (`-cd`).
    pub fn has_option(&self, utility: &str, option: &str) -> bool {
        self.options.iter().any(|(u, o)| {
            u == utility
                && (o == option
                    || (option.len() == 2
                        && !o.starts_with("--")
                        && o.starts_with('-')
                        && o.contains(&option[1..])))
        })
    }

    pub fn runs(&self, utility: &str) -> bool {
        self.utilities.iter().any(|u| u == utility)
    }

    /// What kind of answer the command gives (see [`Category`]).
    pub fn category(&self) -> Category {
        let any = |list: &[&str]| self.utilities.iter().any(|u| list.contains(&u.as_str()));
        let changes = any(CHANGES)
            || !self.written.is_empty()
            || self.has_option("sed", "-i")
            || (self.runs("tar") && !self.has_option("tar", "-t"))
            || self.has_option("find", "-delete");
        if changes {
            Category::Change
        } else if any(HASHES) {
            Category::Hash
        } else if self.runs("wc") || self.has_option("uniq", "-c") || self.has_option("grep", "-c")
        {
            Category::Count
        } else if any(&["du", "df"]) {
            Category::Size
        } else if any(&["find", "grep", "egrep", "ls", "tree", "locate", "which"]) {
            Category::Search
        } else if any(READS) {
            Category::Read
        } else {
            Category::System
        }
    }
}

/// Utilities that change the file system.
const CHANGES: &[&str] = &[
    "mv", "cp", "rm", "rmdir", "mkdir", "touch", "chmod", "chown", "chgrp", "ln", "gzip", "gunzip",
    "zip", "unzip", "split", "truncate", "install", "rename", "patch",
];
const HASHES: &[&str] = &[
    "md5sum",
    "sha1sum",
    "sha256sum",
    "sha512sum",
    "cksum",
    "md5deep",
];
/// Utilities that read or rework text the request points at.
const READS: &[&str] = &[
    "cat", "head", "tail", "more", "less", "tac", "rev", "nl", "od", "sort", "uniq", "cut",
    "paste", "join", "comm", "diff", "zcat", "awk", "sed", "tr", "fold", "stat", "file",
    "basename", "dirname",
];

/// Options of a wrapper that take the next word as their argument.
const WRAPPER_ARGUMENTS: &[&str] = &["-I", "-n", "-P", "-d", "-L", "-s", "-a", "-E"];

/// `find`'s start paths and its `-name` pattern, from the words after `find`.
fn find_starts(rest: &[Word]) -> Vec<(String, Option<String>)> {
    let end = rest
        .iter()
        .position(|w| w.op && starts_command(&w.text))
        .unwrap_or(rest.len());
    let rest = &rest[..end];
    let starts: Vec<String> = rest
        .iter()
        .take_while(|w| !w.op && !w.text.starts_with('-') && w.text != "!")
        .map(|w| w.text.clone())
        .collect();
    let pattern = rest
        .windows(2)
        .find(|p| matches!(p[0].text.as_str(), "-name" | "-iname"))
        .map(|p| p[1].text.clone());
    let starts = if starts.is_empty() {
        vec![".".to_string()]
    } else {
        starts
    };
    starts.into_iter().map(|s| (s, pattern.clone())).collect()
}

/// Letters, digits and `/._-+`, with a `/` in it (not a `sed` script).
fn looks_like_path(text: &str) -> bool {
    text.contains('/')
        && !text.starts_with("s/")
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || "/._-+".contains(c))
}

/// A path with `*` or `?` in it.
fn looks_like_glob(text: &str) -> bool {
    text.contains(['*', '?'])
        && text.contains('/')
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || "/._-+*?".contains(c))
}

/// What a task's answer is, by its gold command: the task type evaluation groups by. The file
/// system alone would give the test split two groups, one of them all system questions; the
/// category says which skill failed. Checked in this order: a command that changes files is
/// scored by the file parts of the reward; a hash or a count must match exactly; the rest is
/// mostly text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Creates, moves, removes or edits files.
    Change,
    /// Prints hashes (`md5sum`).
    Hash,
    /// Prints a count (`wc`, `uniq -c`, `grep -c`).
    Count,
    /// Prints sizes (`du`, `df`).
    Size,
    /// Lists files or lines that match (`find`, `grep`, `ls`).
    Search,
    /// Prints or reworks a file's text (`cat`, `sort`, `diff`).
    Read,
    /// Asks about the system itself (`uname`, `who`, `dig`, `echo`).
    System,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Change => "change",
            Category::Hash => "hash",
            Category::Count => "count",
            Category::Size => "size",
            Category::Search => "search",
            Category::Read => "read",
            Category::System => "system",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipeline_gives_its_utilities_paths_and_find_patterns() {
        let g = Gold::read("md5sum /testbed/*.java | awk '{print $1}' | sort | uniq -d");
        assert_eq!(g.utilities, ["md5sum", "awk", "sort", "uniq"]);
        assert!(g.has_option("uniq", "-d"));
        assert_eq!(g.category(), Category::Hash);
        assert_eq!(g.globs, ["/testbed/*.java"]);

        let g = Gold::read(
            "find /testbed/dir1/subdir1 -type f -name \"*.py\" -exec md5sum {} + | awk '{print $1}' | sort | md5sum",
        );
        assert_eq!(g.utilities, ["find", "md5sum", "awk", "sort"]);
        assert_eq!(
            g.finds,
            [(
                "/testbed/dir1/subdir1".to_string(),
                Some("*.py".to_string())
            )]
        );
        assert_eq!(g.paths, ["/testbed/dir1/subdir1"]);

        let g = Gold::read("find /testbed -name \"*.c\" -print0 | xargs -0 cat | wc -l");
        assert_eq!(g.utilities, ["find", "xargs", "cat", "wc"]);
        assert_eq!(g.category(), Category::Count);
    }

    #[test]
    fn writes_and_changes_make_the_change_category() {
        let g = Gold::read(
            "find /system -name \"*.txt\" -exec cat {} \\; > /system/folder3/temp/empty.txt",
        );
        assert_eq!(g.written, ["/system/folder3/temp/empty.txt"]);
        assert_eq!(g.category(), Category::Change);
        let g = Gold::read("grep -rl \"Hello\" /testbed | xargs sed -i 's/Hello/Hi/g'");
        assert_eq!(g.category(), Category::Change);
        assert_eq!(g.paths, ["/testbed"]);
        let g = Gold::read("cat /testbed/x.txt 2>/dev/null");
        assert!(g.written.is_empty());
        assert_eq!(g.category(), Category::Read);
        assert_eq!(Gold::read("uname -a").category(), Category::System);
        let g = Gold::read("address=$(dig +short google.com); echo $address");
        assert_eq!(g.utilities, ["dig", "echo"]);
        // Quoted patterns and scripts are neither globs nor paths.
        let g = Gold::read(
            "find /system/folder2 -name '*special*' ! -path '*/special/*' | sed -e 's@^.*/@@'",
        );
        assert!(g.globs.is_empty(), "{g:?}");
        assert_eq!(g.paths, ["/system/folder2"]);
    }
}
