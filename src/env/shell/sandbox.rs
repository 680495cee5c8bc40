//! SKELETON (owner: the sandbox helper). Real bash in bubblewrap: each command runs in a fresh
//! sandbox over an episode's tree, which it sees as `/`, with the host's system read-only.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// What one sandboxed command may use.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock time before the whole process tree is killed (InterCode: 10 s).
    pub timeout: Duration,
    /// Output kept; the rest is read and dropped.
    pub output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            timeout: Duration::from_secs(10),
            output_bytes: 1 << 20,
        }
    }
}

/// How a sandboxed command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// Killed at [`Limits::timeout`].
    TimedOut,
}

/// A finished command: stdout and stderr together, in the order written.
#[derive(Debug, Clone)]
pub struct Run {
    pub output: Vec<u8>,
    pub exit: Exit,
}

/// Why the sandbox cannot run: one line a person can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "the shell sandbox needs bubblewrap (`bwrap`), which is not installed: run `just deps`"
    )]
    NotFound,
    #[error("bubblewrap cannot start a sandbox here ({0}); the shell kind needs user namespaces")]
    Unusable(String),
}

/// A checked bubblewrap.
#[derive(Debug)]
pub struct Sandbox {
    bwrap: PathBuf,
}

impl Sandbox {
    /// The sandbox, found and checked once per process.
    pub fn get() -> Result<&'static Sandbox, SandboxError> {
        static SANDBOX: OnceLock<Result<Sandbox, SandboxError>> = OnceLock::new();
        SANDBOX
            .get_or_init(Sandbox::probe)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn probe() -> Result<Sandbox, SandboxError> {
        let bwrap = ["/usr/bin/bwrap", "/usr/local/bin/bwrap", "/bin/bwrap"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .ok_or(SandboxError::NotFound)?;
        let sandbox = Sandbox { bwrap };
        let root = tempfile::tempdir().map_err(|e| SandboxError::Unusable(e.to_string()))?;
        let run = sandbox
            .run(root.path(), "/", &["true"], &Limits::default())
            .map_err(|e| SandboxError::Unusable(e.to_string()))?;
        match run.exit {
            Exit::Code(0) => Ok(sandbox),
            _ => Err(SandboxError::Unusable(
                String::from_utf8_lossy(&run.output).trim().to_string(),
            )),
        }
    }

    /// Runs `argv` in a fresh sandbox whose `/` is `root` (writable), in `cwd` (a path inside
    /// the sandbox). Errors are the host's (bwrap could not be started), not the command's.
    pub fn run(
        &self,
        root: &Path,
        cwd: &str,
        argv: &[&str],
        limits: &Limits,
    ) -> std::io::Result<Run> {
        let mut cmd = Command::new(&self.bwrap);
        cmd.arg("--bind").arg(root).arg("/");
        for dir in ["/usr", "/etc"] {
            cmd.args(["--ro-bind", dir, dir]);
        }
        for (link, target) in [
            ("/bin", "usr/bin"),
            ("/sbin", "usr/sbin"),
            ("/lib", "usr/lib"),
            ("/lib64", "usr/lib64"),
        ] {
            cmd.args(["--symlink", target, link]);
        }
        cmd.args(["--proc", "/proc", "--dev", "/dev"])
            .args(["--unshare-all", "--die-with-parent", "--new-session"])
            .args(["--chdir", cwd, "--"])
            .args(argv)
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOME", "/root")
            .stdin(Stdio::null());
        let (mut reader, writer) = std::io::pipe()?;
        cmd.stdout(writer.try_clone()?).stderr(writer);
        let mut child = cmd.spawn()?;
        drop(cmd);
        let mut output = Vec::new();
        reader
            .by_ref()
            .take(limits.output_bytes as u64)
            .read_to_end(&mut output)?;
        std::io::copy(&mut reader, &mut std::io::sink())?;
        let status = child.wait()?;
        use std::os::unix::process::ExitStatusExt;
        let exit = match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::Code(-1),
        };
        Ok(Run { output, exit })
    }
}
