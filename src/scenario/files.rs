//! Finding and reading scenario files: each regular file once, whatever the paths that lead to
//! it (a file named twice, a folder reached through a symbolic link, a link that loops back), and
//! never more than [`MAX_FILE_BYTES`] of it. A FIFO, socket or device named `*.yaml` is reported,
//! never opened: reading one would wait forever.

use std::collections::HashSet;
use std::fs::{self, File, FileType};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Origin, Problem};

/// The largest scenario file read, in bytes (4 MiB, over a hundred times the largest shipped
/// file). Parsing YAML takes about seventy times a file's size in memory, so a larger file is
/// refused before it is read.
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// The scenario files found under some paths, and what kept others from being read.
#[derive(Debug, Default)]
pub struct Found {
    pub files: Vec<PathBuf>,
    pub problems: Vec<Problem>,
}

/// The YAML files under `paths` (files as given, folders searched recursively in name order),
/// each file once.
pub fn find(paths: &[PathBuf]) -> Found {
    let mut finder = Finder::default();
    for path in paths {
        if path.is_dir() {
            finder.folder(path, &mut Vec::new());
        } else {
            finder.file(path);
        }
    }
    finder.found
}

#[derive(Default)]
struct Finder {
    found: Found,
    /// Canonical paths of the files and folders taken already.
    seen_files: HashSet<PathBuf>,
    seen_folders: HashSet<PathBuf>,
}

impl Finder {
    fn file(&mut self, path: &Path) {
        let Ok(canonical) = fs::canonicalize(path) else {
            // A missing file or a dangling link: the read that follows says which.
            self.found.files.push(path.to_path_buf());
            return;
        };
        if !self.seen_files.insert(canonical) {
            return;
        }
        match fs::metadata(path) {
            Ok(meta) if !meta.is_file() => self.problem(
                path,
                format!(
                    "not a regular file ({}), expected a YAML file; it was not read",
                    what(meta.file_type())
                ),
            ),
            _ => self.found.files.push(path.to_path_buf()),
        }
    }

    /// `ancestors`: the canonical folders being walked, to tell a loop from a second way in.
    fn folder(&mut self, dir: &Path, ancestors: &mut Vec<PathBuf>) {
        let canonical = match fs::canonicalize(dir) {
            Ok(c) => c,
            Err(err) => return self.problem(dir, format!("cannot read the folder: {err}")),
        };
        // A link to a folder being walked, or to one above it, would walk it again without end.
        if ancestors.iter().any(|a| a.starts_with(&canonical)) {
            return self.problem(
                dir,
                format!(
                    "a symbolic link loop: it leads back to {}, whose files are read once",
                    canonical.display()
                ),
            );
        }
        if !self.seen_folders.insert(canonical.clone()) {
            return;
        }
        let entries = fs::read_dir(dir).and_then(|entries| {
            entries
                .map(|e| e.map(|e| e.path()))
                .collect::<std::io::Result<Vec<_>>>()
        });
        let mut entries = match entries {
            Ok(entries) => entries,
            Err(err) => return self.problem(dir, format!("cannot list the folder: {err}")),
        };
        entries.sort();
        ancestors.push(canonical);
        for path in entries {
            if path.is_dir() {
                self.folder(&path, ancestors);
            } else if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            ) {
                self.file(&path);
            }
        }
        ancestors.pop();
    }

    fn problem(&mut self, path: &Path, message: String) {
        self.found.problems.push(at_start(path, message));
    }
}

fn what(t: FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a file"
    }
}

/// A problem with a whole file, located at its start.
pub fn at_start(file: &Path, message: String) -> Problem {
    Problem {
        origin: Origin {
            file: file.to_path_buf(),
            line: 1,
            col: 1,
        },
        message,
    }
}

/// The text of a scenario file, refused over [`MAX_FILE_BYTES`] before it is read (and cut
/// there, should it grow while being read).
pub fn read(file: &Path) -> Result<String, Problem> {
    let cannot = |err: std::io::Error| at_start(file, format!("cannot read the file: {err}"));
    let opened = File::open(file).map_err(cannot)?;
    let len = opened.metadata().map_err(cannot)?.len();
    let too_big = |len: u64| {
        at_start(
            file,
            format!(
                "the file is {len} bytes, over the {MAX_FILE_BYTES}-byte bound of a scenario file \
                 (4 MiB); split it into several files"
            ),
        )
    };
    if len > MAX_FILE_BYTES {
        return Err(too_big(len));
    }
    let mut text = String::new();
    opened
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(cannot)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(text.len() as u64));
    }
    Ok(text)
}
