//! The file systems tasks run on, as data (`assets/shell/filesystems.json`, InterCode's four
//! set-up scripts' trees), materialised once per process into a template tree with a git
//! repository at its root (as InterCode's image has at `/`), and copied into a fresh [`Tree`]
//! per episode.
//!
//! A template is what InterCode's container holds when an episode starts, that is after its
//! reset (`git reset --hard; git clean -fd`): the entries, InterCode's `.gitignore`, the image's
//! ignored top-level folders (`/root`, `/home`, `/var`...) and the sandbox's mount points, all
//! committed, and then cleaned, so empty folders are gone (InterCode's logged runs show
//! `/system/folder3/backup_dbg/backup` and `/tmp` missing).
//!
//! Git runs on the host only over a template leap wrote itself, with no host configuration;
//! over an episode's tree, which an agent wrote, it runs inside the sandbox.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use filetime::FileTime;
use serde_json::{Map, Value};

use crate::env::shell::reward;
use crate::env::shell::sandbox::{Limits, Sandbox};
use crate::env::shell::shlex;

/// The shipped file systems' file text (`{"fs1": [entry...], ...}`).
pub const SHIPPED: &str = include_str!("../../../assets/shell/filesystems.json");

/// InterCode's `docker/docker.gitignore`, byte for byte (no final newline), which its image
/// installs as `/.gitignore`.
const GITIGNORE: &str = "# Folders\nbin\nboot\ndev\netc\nhome\nlib\nmedia\nopt\nproc\nroot\nrun\nsbin\nsrv\nsys\nusr\nvar\n\n# Files\n.dockerenv";

/// The image's top-level folders that its `.gitignore` keeps out of the repository (so they
/// survive the reset), with their modes. `/usr`, `/etc`, `/proc` and `/dev` are also where the
/// sandbox mounts the host's system, `/proc` and `/dev`: made here, bubblewrap writes nothing.
const IMAGE_DIRS: [(&str, u32); 13] = [
    ("boot", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("media", 0o755),
    ("opt", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("run", 0o755),
    ("srv", 0o755),
    ("sys", 0o555),
    ("usr", 0o755),
    ("var", 0o755),
];

/// The top-level names that a merged-`/usr` host makes links into `/usr`; the sandbox makes
/// the host's links in each tree where they are missing (bubblewrap 0.8 refuses to make one that
/// exists), so the template has them already. `bin`, `sbin` and `lib` are in InterCode's
/// `.gitignore`; the others are named in the repository's `info/exclude`, so none shows in
/// `git status` (the image that InterCode's runs logged had no `/lib64` there either).
const USR_LINKS: [&str; 6] = ["bin", "sbin", "lib", "lib64", "lib32", "libx32"];

/// What the image's `git config --global` set, and a fixed date, so that the same entries give
/// the same commit.
const GIT_USER: (&str, &str) = ("intercode", "intercode@pnlp.org");
const GIT_DATE: &str = "2023-05-26T00:00:00Z";

/// One path of a file system, as `filesystems.json` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute, as inside the sandbox (`/testbed/dir1`).
    pub path: String,
    pub node: Node,
    /// Permission bits (`0o755`).
    pub mode: u32,
    /// Seconds since the epoch, where the set-up back-dates it.
    pub mtime: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

/// Named file systems read from one file in `filesystems.json`'s format.
#[derive(Debug, Clone, Default)]
pub struct FileSystems {
    pub systems: Vec<(String, Vec<Entry>)>,
}

impl FileSystems {
    /// Reads `text` (from `origin`, for errors that name the file and field:
    /// `filesystems.json: fs2[13].mode: ...`).
    pub fn from_json(origin: &str, text: &str) -> Result<FileSystems, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
        let Value::Object(systems) = value else {
            return Err(format!(
                "{origin}: expected an object of file systems ({{\"fs1\": [...]}})"
            ));
        };
        let mut out = FileSystems::default();
        for (name, entries) in systems {
            let Value::Array(entries) = entries else {
                return Err(format!("{origin}: {name}: expected a list of entries"));
            };
            let mut seen = HashMap::new();
            let mut read = Vec::with_capacity(entries.len());
            for (i, entry) in entries.iter().enumerate() {
                let at = format!("{name}[{i}]");
                let entry = read_entry(entry, &at).map_err(|e| format!("{origin}: {e}"))?;
                if let Some(first) = seen.insert(entry.path.clone(), i) {
                    return Err(format!(
                        "{origin}: {at}.path: {} is already {name}[{first}]",
                        entry.path
                    ));
                }
                read.push(entry);
            }
            check_parents(&name, &read, &seen).map_err(|e| format!("{origin}: {e}"))?;
            out.systems.push((name, read));
        }
        Ok(out)
    }

    /// The shipped ones (fs1..fs4).
    pub fn shipped() -> &'static FileSystems {
        static SHIPPED_SYSTEMS: OnceLock<FileSystems> = OnceLock::new();
        SHIPPED_SYSTEMS.get_or_init(|| {
            FileSystems::from_json("assets/shell/filesystems.json", SHIPPED)
                .expect("the shipped file systems are valid (tests/shell_env.rs reads them)")
        })
    }

    pub fn get(&self, name: &str) -> Option<&[Entry]> {
        self.systems
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.as_slice())
    }
}

/// One entry object; errors start with its place (`fs2[13]`).
fn read_entry(value: &Value, at: &str) -> Result<Entry, String> {
    let Value::Object(fields) = value else {
        return Err(format!("{at}: expected an object"));
    };
    const KNOWN: [&str; 7] = ["path", "type", "mode", "mtime", "text", "base64", "target"];
    if let Some(unknown) = fields.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(format!(
            "{at}.{unknown}: unknown field (known: {})",
            KNOWN.join(", ")
        ));
    }
    let path = string(fields, at, "path")?.ok_or(format!("{at}.path: missing"))?;
    check_path(path).map_err(|e| format!("{at}.path: {e}"))?;
    let kind = string(fields, at, "type")?.ok_or(format!("{at}.type: missing"))?;
    let mode = string(fields, at, "mode")?.ok_or(format!("{at}.mode: missing"))?;
    let mode = u32::from_str_radix(mode, 8)
        .ok()
        .filter(|m| *m <= 0o7777 && !mode.is_empty())
        .ok_or(format!(
            "{at}.mode: expected octal permission bits such as \"644\", got {mode:?}"
        ))?;
    let mtime = match string(fields, at, "mtime")? {
        None => None,
        Some(text) => Some(parse_utc(text).ok_or(format!(
            "{at}.mtime: expected a UTC time such as \"2023-05-31T23:59:59Z\" or null, got {text:?}"
        ))?),
    };
    let text = string(fields, at, "text")?;
    let encoded = string(fields, at, "base64")?;
    let target = string(fields, at, "target")?;
    let only = |allowed: &[&str]| -> Result<(), String> {
        for field in ["text", "base64", "target"] {
            if fields.contains_key(field) && !allowed.contains(&field) {
                return Err(format!("{at}.{field}: not allowed for a {kind}"));
            }
        }
        Ok(())
    };
    let node = match kind {
        "dir" => {
            only(&[])?;
            Node::Dir
        }
        "file" => {
            only(&["text", "base64"])?;
            match (text, encoded) {
                (Some(text), None) => Node::File(text.as_bytes().to_vec()),
                (None, Some(encoded)) => Node::File(
                    base64::engine::general_purpose::STANDARD
                        .decode(encoded)
                        .map_err(|e| format!("{at}.base64: {e}"))?,
                ),
                (None, None) => return Err(format!("{at}: a file needs `text` or `base64`")),
                (Some(_), Some(_)) => {
                    return Err(format!("{at}: a file has `text` or `base64`, not both"));
                }
            }
        }
        "symlink" => {
            only(&["target"])?;
            match target {
                Some(target) if !target.is_empty() => Node::Symlink(target.to_string()),
                _ => return Err(format!("{at}.target: a symlink needs a non-empty target")),
            }
        }
        other => {
            return Err(format!(
                "{at}.type: expected \"dir\", \"file\" or \"symlink\", got {other:?}"
            ));
        }
    };
    Ok(Entry {
        path: path.to_string(),
        node,
        mode,
        mtime,
    })
}

/// The string field `key`, absent or null as `None`.
fn string<'a>(
    fields: &'a Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<&'a str>, String> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{at}.{key}: expected a string, got {other}")),
    }
}

/// A path an entry may have: absolute, plain (no `.`, `..` or empty parts), and clear of what
/// the template makes itself.
fn check_path(path: &str) -> Result<(), String> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("{path:?} is not absolute"));
    };
    if rest.is_empty()
        || rest
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(format!(
            "{path:?} must name a file below / without empty, `.` or `..` parts"
        ));
    }
    let top = rest.split('/').next().unwrap_or_default();
    let mounted = ["usr", "etc", "proc", "dev"];
    if top == ".git" || path == "/.gitignore" || mounted.contains(&top) || USR_LINKS.contains(&top)
    {
        return Err(format!(
            "{path:?} is under /{top}, which the template or the sandbox provides"
        ));
    }
    Ok(())
}

/// Every listed parent of an entry is a directory: a path below a file or a link could not be
/// put on disk (the link's below its target's, outside the file system). `seen` maps each path
/// to its index in the file system `name`.
fn check_parents(
    name: &str,
    entries: &[Entry],
    seen: &HashMap<String, usize>,
) -> Result<(), String> {
    for (i, entry) in entries.iter().enumerate() {
        let mut parent = entry.path.as_str();
        while let Some((up, _)) = parent.rsplit_once('/') {
            parent = up;
            let Some(&j) = seen.get(parent) else {
                continue;
            };
            let made = match entries[j].node {
                Node::Dir => continue,
                Node::File(_) => "a file",
                Node::Symlink(_) => "a link",
            };
            return Err(format!(
                "{name}[{i}].path: {} is below {parent}, which {name}[{j}] makes {made}",
                entry.path
            ));
        }
    }
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SSZ` as seconds since the epoch.
fn parse_utc(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let shape = b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z';
    if !shape {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = &text[r];
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&m)
        || d < 1
        || d > days_in[(m - 1) as usize]
        || hh > 23
        || mm > 59
        || ss > 59
    {
        return None;
    }
    // Days from 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// A file system materialised on disk with its git repository committed: what every episode
/// over it starts as. Removed when dropped.
#[derive(Debug)]
pub struct Template {
    root: PathBuf,
}

impl Template {
    /// Writes `entries` with their modes and times, the image's top level and InterCode's
    /// `.gitignore`, then commits it all and cleans as InterCode's reset does.
    pub fn materialise(entries: &[Entry]) -> io::Result<Template> {
        let template = Template {
            root: new_dir(&scratch()?.join("template"))?,
        };
        let root = &template.root;
        for entry in entries {
            let path = root.join(entry.path.trim_start_matches('/'));
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            match &entry.node {
                Node::Dir => fs::create_dir_all(&path)?,
                Node::File(bytes) => fs::write(&path, bytes)?,
                Node::Symlink(target) => symlink(target, &path)?,
            }
        }
        for (dir, mode) in IMAGE_DIRS {
            let path = root.join(dir);
            fs::create_dir(&path)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
        }
        for name in USR_LINKS {
            let host = Path::new("/").join(name);
            if fs::symlink_metadata(&host).is_ok_and(|m| m.file_type().is_symlink()) {
                symlink(fs::read_link(&host)?, root.join(name))?;
            }
        }
        fs::write(root.join(".gitignore"), GITIGNORE)?;
        // Deepest first, so that a read-only folder is written into before it becomes one.
        let mut ordered: Vec<&Entry> = entries.iter().collect();
        ordered.sort_by_key(|e| std::cmp::Reverse(e.path.matches('/').count()));
        for entry in &ordered {
            if !matches!(entry.node, Node::Symlink(_)) {
                let path = root.join(entry.path.trim_start_matches('/'));
                fs::set_permissions(&path, fs::Permissions::from_mode(entry.mode))?;
            }
        }
        // No sample hooks, reflogs or loose objects: fewer files make a faster copy.
        git(root, &["init", "-q", "--template="])?;
        fs::create_dir(root.join(".git/info"))?;
        fs::write(
            root.join(".git/info/exclude"),
            "# The sandbox's links that InterCode's .gitignore does not name.\n/lib64\n/lib32\n/libx32\n",
        )?;
        git(root, &["add", "-A"])?;
        git(root, &["commit", "-q", "-m", "initial commit"])?;
        git(root, &["repack", "-a", "-d", "-q"])?;
        git(root, &["clean", "-fdq"])?;
        // Times after the clean, which changes the folders it empties; what it removed is gone.
        for entry in &ordered {
            if let Some(mtime) = entry.mtime {
                let path = root.join(entry.path.trim_start_matches('/'));
                let time = FileTime::from_unix_time(mtime, 0);
                match filetime::set_symlink_file_times(&path, time, time) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    done => done?,
                }
            }
        }
        Ok(template)
    }

    /// The shipped file system `name`, materialised once per process.
    pub fn shipped(name: &str) -> io::Result<Arc<Template>> {
        static TEMPLATES: OnceLock<Mutex<HashMap<String, Arc<Template>>>> = OnceLock::new();
        let entries = FileSystems::shipped().get(name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("no shipped file system named {name:?} (fs1..fs4)"),
            )
        })?;
        let mut templates = TEMPLATES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(template) = templates.get(name) {
            return Ok(template.clone());
        }
        let template = Arc::new(Template::materialise(entries)?);
        templates.insert(name.to_string(), template.clone());
        Ok(template)
    }

    /// A fresh copy for one episode (modes, times, symlinks and the repository kept).
    pub fn fresh(&self) -> io::Result<Tree> {
        let tree = Tree {
            root: new_dir(&scratch()?.join("tree"))?,
        };
        copy_tree(&self.root, &tree.root)?;
        Ok(tree)
    }

    /// The host path of the template's root.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for Template {
    fn drop(&mut self) {
        remove_tree(&self.root);
    }
}

/// One episode's copy of a file system: the sandbox's `/`. Removed when dropped.
#[derive(Debug)]
pub struct Tree {
    root: PathBuf,
}

impl Tree {
    /// The host path of the tree's root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `git status --short` at the tree's root, run inside the sandbox, as InterCode parses it:
    /// (path, status) pairs.
    pub fn status(&self, sandbox: &Sandbox) -> io::Result<Vec<(String, String)>> {
        let run = sandbox.run(
            &self.root,
            "/",
            &["git", "status", "--short"],
            &Limits::default(),
        )?;
        Ok(reward::parse_status(&String::from_utf8_lossy(&run.output)))
    }

    /// What InterCode's hash command prints for `path` (relative to `/`): `md5sum path` when the
    /// path has a dot, else `md5deep -r path` (missing from its image: the same error on both
    /// sides). The command is split as docker-py splits it (Python's `shlex`), without a shell;
    /// where that fails, the error is what both sides print.
    pub fn hash(&self, sandbox: &Sandbox, path: &str) -> io::Result<String> {
        let command = if path.contains('.') {
            format!("md5sum {path}")
        } else {
            format!("md5deep -r {path}")
        };
        let argv = match shlex::split(&command) {
            Ok(argv) => argv,
            Err(e) => return Ok(e.to_string()),
        };
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let run = sandbox.run(&self.root, "/", &argv, &Limits::default())?;
        Ok(String::from_utf8_lossy(&run.output).into_owned())
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        remove_tree(&self.root);
    }
}

/// Runs git over a template leap wrote, with no host or user configuration.
fn git(root: &Path, args: &[&str]) -> io::Result<()> {
    let date = GIT_DATE;
    let output = Command::new("git")
        .args([
            "-c",
            "init.defaultBranch=master",
            "-c",
            "core.logAllRefUpdates=false",
        ])
        .args(args)
        .current_dir(root)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("LC_ALL", "C")
        .envs([
            ("GIT_AUTHOR_NAME", GIT_USER.0),
            ("GIT_AUTHOR_EMAIL", GIT_USER.1),
            ("GIT_AUTHOR_DATE", date),
            ("GIT_COMMITTER_NAME", GIT_USER.0),
            ("GIT_COMMITTER_EMAIL", GIT_USER.1),
            ("GIT_COMMITTER_DATE", date),
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("the shell file systems need git: {e}")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "git {} in {}: {}",
            args.join(" "),
            root.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// Copies the contents of `from` into the folder `to`: folders, files, links, their modes and
/// times (a folder's after its contents, which change it).
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let meta = entry.metadata()?;
        let kind = meta.file_type();
        if kind.is_symlink() {
            symlink(fs::read_link(&source)?, &target)?;
        } else if kind.is_dir() {
            fs::create_dir(&target)?;
            copy_tree(&source, &target)?;
            fs::set_permissions(&target, meta.permissions())?;
        } else {
            // Copies the permission bits too.
            fs::copy(&source, &target)?;
        }
        filetime::set_symlink_file_times(
            &target,
            FileTime::from_last_access_time(&meta),
            FileTime::from_last_modification_time(&meta),
        )?;
    }
    Ok(())
}

/// Removes a tree whatever an agent did to its modes (a folder made unreadable).
fn remove_tree(root: &Path) {
    if fs::remove_dir_all(root).is_err() {
        open_up(root);
        let _ = fs::remove_dir_all(root);
    }
}

fn open_up(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                open_up(&entry.path());
            }
        }
    }
}

/// A new folder `PREFIX-XXXXXX` (mode 755, as `/` is in the image).
fn new_dir(prefix: &Path) -> io::Result<PathBuf> {
    let parent = prefix.parent().unwrap_or(Path::new("."));
    let name = prefix.file_name().unwrap_or_default();
    let dir = tempfile::Builder::new()
        .prefix(name)
        .tempdir_in(parent)?
        .keep();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))?;
    Ok(dir)
}

const SCRATCH_PREFIX: &str = "leap-shell-";
const SCRATCH_LOCK: &str = ".lock";

/// This process's folder for templates and trees (`leap-shell-XXXXXX` in the temp folder, mode
/// 700). It holds a lock while the process lives, so that a later process removes what a
/// killed one left behind (the shipped templates live in statics, which are never dropped).
fn scratch() -> io::Result<&'static Path> {
    static SCRATCH: OnceLock<Result<(PathBuf, File), String>> = OnceLock::new();
    let made = SCRATCH.get_or_init(|| {
        let parent = std::env::temp_dir();
        let make = || -> io::Result<(PathBuf, File)> {
            let dir = tempfile::Builder::new()
                .prefix(SCRATCH_PREFIX)
                .tempdir_in(&parent)?
                .keep();
            // Locked before it has its final name, so no sweep ever sees it unlocked.
            let pending = dir.join(".lock.pending");
            let lock = File::create(&pending)?;
            lock.try_lock().map_err(io::Error::other)?;
            fs::rename(&pending, dir.join(SCRATCH_LOCK))?;
            Ok((dir, lock))
        };
        let made = make().map_err(|e| format!("cannot make the shell's scratch folder: {e}"))?;
        sweep(&parent, &made.0);
        Ok(made)
    });
    match made {
        Ok((dir, _lock)) => Ok(dir),
        Err(e) => Err(io::Error::other(e.clone())),
    }
}

/// Removes the scratch folders of processes that are gone (their lock is free).
fn sweep(parent: &Path, own: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry
            .file_name()
            .to_string_lossy()
            .starts_with(SCRATCH_PREFIX);
        if !ours || path == own {
            continue;
        }
        let Ok(lock) = File::open(path.join(SCRATCH_LOCK)) else {
            continue;
        };
        if lock.try_lock().is_ok() {
            remove_tree(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_times_read_as_the_epoch_counts_them() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        // `date -u -d 2023-05-31T23:59:59Z +%s`
        assert_eq!(parse_utc("2023-05-31T23:59:59Z"), Some(1_685_577_599));
        assert_eq!(parse_utc("2024-02-29T12:00:00Z"), Some(1_709_208_000));
        for bad in [
            "2023-02-29T00:00:00Z",
            "2023-05-31 23:59:59Z",
            "2023-05-31T23:59:59",
            "+023-05-31T23:59:59Z",
        ] {
            assert_eq!(parse_utc(bad), None, "{bad}");
        }
    }

    #[test]
    fn errors_name_the_file_and_the_field() {
        let read = |text: &str| FileSystems::from_json("fs.json", text).unwrap_err();
        let entry = |fields: &str| {
            read(&format!(
                "{{\"fs2\": [{{\"path\": \"/a\", \"type\": \"dir\", \"mode\": \"755\"}}, {{{fields}}}]}}"
            ))
        };
        assert_eq!(
            entry(r#""path": "/b", "type": "file", "mode": "9x", "text": """#),
            "fs.json: fs2[1].mode: expected octal permission bits such as \"644\", got \"9x\""
        );
        assert!(
            entry(
                r#""path": "/b", "type": "file", "mode": "644", "mtime": "yesterday", "text": """#
            )
            .starts_with("fs.json: fs2[1].mtime: expected a UTC time")
        );
        assert_eq!(
            entry(r#""path": "/b", "type": "file", "mode": "644""#),
            "fs.json: fs2[1]: a file needs `text` or `base64`"
        );
        assert!(
            entry(r#""path": "/b", "type": "file", "mode": "644", "base64": "!!""#)
                .starts_with("fs.json: fs2[1].base64: ")
        );
        assert!(
            entry(r#""path": "b", "type": "dir", "mode": "755""#)
                .starts_with("fs.json: fs2[1].path: ")
        );
        assert!(
            entry(r#""path": "/a/../b", "type": "dir", "mode": "755""#)
                .starts_with("fs.json: fs2[1].path: ")
        );
        assert!(
            entry(r#""path": "/usr/x", "type": "dir", "mode": "755""#)
                .starts_with("fs.json: fs2[1].path: ")
        );
        assert_eq!(
            entry(r#""path": "/a", "type": "dir", "mode": "755""#),
            "fs.json: fs2[1].path: /a is already fs2[0]"
        );
        assert!(
            entry(r#""path": "/b", "type": "pipe", "mode": "755""#)
                .starts_with("fs.json: fs2[1].type: ")
        );
        assert!(
            entry(r#""path": "/b", "type": "dir", "mode": "755", "colour": 1"#)
                .starts_with("fs.json: fs2[1].colour: unknown field")
        );
        assert!(
            entry(r#""path": "/b", "type": "dir", "mode": "755", "text": "x""#)
                .starts_with("fs.json: fs2[1].text: not allowed")
        );
        assert!(read("{").starts_with("fs.json: "));
        assert_eq!(
            read(r#"{"fs1": {}}"#),
            "fs.json: fs1: expected a list of entries"
        );
    }

    #[test]
    fn the_shipped_file_systems_read() {
        let shipped = FileSystems::shipped();
        let names: Vec<&str> = shipped.systems.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["fs1", "fs2", "fs3", "fs4"]);
        let fs3 = shipped.get("fs3").unwrap();
        let readonly = fs3
            .iter()
            .find(|e| e.path == "/workspace/dir1/readonly.txt")
            .unwrap();
        assert_eq!(readonly.mode, 0o400);
        let zeros = fs3
            .iter()
            .find(|e| e.path == "/workspace/dir1/file.txt")
            .unwrap();
        assert!(matches!(&zeros.node, Node::File(b) if !b.is_empty() && b.iter().all(|&c| c == 0)));
        assert!(shipped.get("fs4").unwrap().is_empty());
    }
}
