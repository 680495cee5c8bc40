//! SKELETON (owner: the file-system and reward helper). The file systems tasks run on, as data
//! (`assets/shell/filesystems.json`, InterCode's four set-up scripts' trees), materialised once
//! per process into a template tree with a git repository at its root (as InterCode's image has
//! at `/`), and copied into a fresh [`Tree`] per episode.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::env::shell::sandbox::Sandbox;

/// The shipped file systems' file text (`{"fs1": [entry...], ...}`).
pub const SHIPPED: &str = include_str!("../../../assets/shell/filesystems.json");

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
    /// Reads `text` (from `origin`, for errors that name the file and field).
    pub fn from_json(_origin: &str, _text: &str) -> Result<FileSystems, String> {
        todo!("SKELETON")
    }

    /// The shipped ones (fs1..fs4).
    pub fn shipped() -> &'static FileSystems {
        todo!("SKELETON")
    }

    pub fn get(&self, name: &str) -> Option<&[Entry]> {
        self.systems
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.as_slice())
    }
}

/// A file system materialised on disk with its git repository committed: what every episode
/// over it starts as. Removed when dropped.
#[derive(Debug)]
pub struct Template {}

impl Template {
    pub fn materialise(_entries: &[Entry]) -> io::Result<Template> {
        todo!("SKELETON")
    }

    /// The shipped file system `name`, materialised once per process.
    pub fn shipped(_name: &str) -> io::Result<Arc<Template>> {
        todo!("SKELETON")
    }

    /// A fresh copy for one episode (modes, times, symlinks and the repository kept).
    pub fn fresh(&self) -> io::Result<Tree> {
        todo!("SKELETON")
    }
}

/// One episode's copy of a file system: the sandbox's `/`. Removed when dropped.
#[derive(Debug)]
pub struct Tree {}

impl Tree {
    /// The host path of the tree's root.
    pub fn root(&self) -> &Path {
        todo!("SKELETON")
    }

    /// `git status --short` at the tree's root, run inside the sandbox, as InterCode parses it:
    /// (path, status) pairs.
    pub fn status(&self, _sandbox: &Sandbox) -> io::Result<Vec<(String, String)>> {
        todo!("SKELETON")
    }

    /// What InterCode's hash command prints for `path` (relative to `/`): `md5sum path` when the
    /// path has a dot, else `md5deep -r path` (missing from its image: the same error on both
    /// sides).
    pub fn hash(&self, _sandbox: &Sandbox, _path: &str) -> io::Result<String> {
        todo!("SKELETON")
    }
}
