//! Real bash in bubblewrap: each command runs in a fresh sandbox over an episode's tree, which it
//! sees as `/`, with the host's system read-only.
//!
//! What a command gets, and why:
//! - Its own user, pid, mount, network, IPC, UTS and cgroup namespaces. It is uid 0 inside (as
//!   InterCode's commands ran as root in Ubuntu), with Docker's default capabilities only: enough
//!   to write a read-only file of the tree, not enough to unmount the masks below, and no nested
//!   user namespaces.
//! - `/` is the episode tree, bound writable: the only writable place. `/usr`, the merged-`/usr`
//!   links and `/etc` come from the host read-only; in `/etc`, everything that others may not
//!   read (shadow files, ssh host keys, private keys) is masked by `/dev/null` or an empty
//!   directory. `/dev` is bubblewrap's minimal one, read-only; `/proc` shows the sandbox's own
//!   processes. Nothing else of the host is visible.
//! - Loopback only; a new session (no terminal to inject keystrokes into).
//! - Limits on CPU time, address space, file size, open files and processes, set by the
//!   sandbox's first process (a shell's `ulimit`, see [`Init`]), after its user namespace exists:
//!   RLIMIT_NPROC counts per user namespace,
//!   so a fork bomb fills its own sandbox and nothing of the host's. The kernel exempts the host's
//!   root from RLIMIT_NPROC, and the sandbox's root is the host's root when leap runs as root; so
//!   where leap can make `pids` cgroups (as root, under cgroup v1), each thread that runs commands
//!   gets its own, capped at the same number, and the commands it starts are born in it.
//! - The command is the pid namespace's second process, under [`Init`]: when the command returns,
//!   the init exits and the kernel kills everything the command left. At the timeout the whole
//!   process group of bubblewrap is killed (SIGKILL), and the namespace goes with it; if leap
//!   itself dies, `--die-with-parent` does the same.

use std::cell::RefCell;
use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What one sandboxed command may use. The resource limits bound each process (setrlimit);
/// `processes` bounds how many the command may have at once.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock time before the whole process tree is killed (InterCode: 10 s).
    pub timeout: Duration,
    /// Output kept; the rest is read and dropped.
    pub output_bytes: usize,
    /// CPU seconds per process (RLIMIT_CPU). Above the timeout by default, so that a busy loop
    /// reports a timeout, as in InterCode, rather than SIGXCPU.
    pub cpu_seconds: u64,
    /// Address space per process (RLIMIT_AS).
    pub memory_bytes: u64,
    /// Largest file a process may write (RLIMIT_FSIZE).
    pub file_bytes: u64,
    /// Open file descriptors per process (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Processes and threads in the sandbox at once, its init included (RLIMIT_NPROC).
    pub processes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            timeout: Duration::from_secs(10),
            output_bytes: 1 << 20,
            cpu_seconds: 20,
            memory_bytes: 1 << 30,
            file_bytes: 64 << 20,
            open_files: 1024,
            processes: 128,
        }
    }
}

/// How a sandboxed command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The command's exit status; 128 + N when a signal N killed it.
    Code(i32),
    /// Bubblewrap itself was killed by this signal (not by the timeout).
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
    #[error(
        "the shell sandbox cannot make a folder in the temporary folder {}: {why} (set TMPDIR to a writable folder)",
        .dir.display()
    )]
    NoTemp { dir: PathBuf, why: String },
}

/// The sandbox's first process, a shell run as `SHELL -c SCRIPT leap-sandbox CPU KIB BLOCKS
/// FILES PROCS ARGV...`: it sets the limits (`ulimit` sets soft and hard), runs the command as its
/// child and exits with its status. It is pid 1 rather than bubblewrap's own init because
/// bubblewrap leaves that init unreaped, to the host's init, which may be slow to reap it; and
/// while unreaped it still counts in the thread's `pids` cgroup. dash where there is one: it
/// starts in half bash's time, and it leaves the environment as it found it.
#[derive(Debug)]
struct Init {
    shell: &'static str,
    script: &'static str,
    /// The unit of `ulimit -f`.
    block: u64,
}

const DASH: Init = Init {
    shell: "dash",
    script: r#"ulimit -t "$1" && ulimit -v "$2" && ulimit -f "$3" && ulimit -n "$4" && ulimit -p "$5" || exit 125; shift 5; "$@"; exit"#,
    block: 512,
};

/// bash exports `SHLVL`, which the command's own bash would count on from there.
const BASH: Init = Init {
    shell: "bash",
    script: r#"ulimit -t "$1" -v "$2" -f "$3" -n "$4" -u "$5" || exit 125; shift 5; unset SHLVL; "$@"; exit"#,
    block: 1024,
};

/// The top-level names that merged-`/usr` systems make links into `/usr` (or real directories
/// on older systems).
const USR_LINKS: [&str; 6] = ["bin", "sbin", "lib", "lib64", "lib32", "libx32"];

/// Docker's default capabilities: what InterCode's root had, none of which can undo a mount.
const CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// A checked bubblewrap and the host's system as the sandbox sees it.
#[derive(Debug)]
pub struct Sandbox {
    bwrap: PathBuf,
    init: &'static Init,
    /// Mounts every run shares after the tree's: the read-only system with its secrets masked,
    /// `/proc`, `/dev`.
    system: Vec<OsString>,
    /// The host's merged-`/usr` links (name under `/`, target), made in each tree.
    links: Vec<(&'static str, PathBuf)>,
    /// Where each thread that runs commands gets its own `pids` cgroup, if leap may make them.
    pids: Option<PathBuf>,
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
        let bwrap = find_bwrap().ok_or(SandboxError::NotFound)?;
        let mut links = Vec::new();
        let mut system: Vec<OsString> = Vec::new();
        for name in USR_LINKS {
            let host = Path::new("/").join(name);
            match std::fs::symlink_metadata(&host) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(&host) {
                        links.push((name, target));
                    }
                }
                Ok(meta) if meta.is_dir() => system.extend(ro_bind(&host, &host)),
                _ => {}
            }
        }
        system.extend(ro_bind(Path::new("/usr"), Path::new("/usr")));
        system.extend(ro_bind(Path::new("/etc"), Path::new("/etc")));
        for secret in secrets(Path::new("/etc")) {
            if secret.is_dir() {
                system.extend(["--tmpfs".into(), secret.clone().into()]);
                system.extend(["--remount-ro".into(), secret.into()]);
            } else {
                system.extend(ro_bind(Path::new("/dev/null"), &secret));
            }
        }
        system.extend(
            ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"].map(OsString::from),
        );
        let sandbox = Sandbox {
            bwrap,
            init: if ["/usr/bin/dash", "/bin/dash"]
                .iter()
                .any(|p| Path::new(p).is_file())
            {
                &DASH
            } else {
                &BASH
            },
            system,
            links,
            pids: pids_cgroup_parent(),
        };
        let root = tempfile::tempdir().map_err(|e| SandboxError::NoTemp {
            dir: std::env::temp_dir(),
            why: e.to_string(),
        })?;
        let run = sandbox
            .run(root.path(), "/", &["true"], &Limits::default())
            .map_err(|e| SandboxError::Unusable(e.to_string()))?;
        match run.exit {
            Exit::Code(0) => Ok(sandbox),
            exit => {
                let text = String::from_utf8_lossy(&run.output);
                let line = text.lines().map(str::trim).find(|l| !l.is_empty());
                Err(SandboxError::Unusable(line.map_or_else(
                    || format!("`bwrap` ended with {exit:?}"),
                    str::to_string,
                )))
            }
        }
    }

    /// Runs `argv` in a fresh sandbox whose `/` is `root` (writable), in `cwd` (a path inside
    /// the sandbox). Errors are the host's (bwrap could not be started), not the command's.
    pub fn run(&self, root: &Path, cwd: &str, argv: &[&str], limits: &Limits) -> io::Result<Run> {
        let mut cmd = Command::new(&self.bwrap);
        cmd.args([
            "--unshare-user",
            "--disable-userns",
            "--unshare-pid",
            "--as-pid-1",
            "--unshare-net",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--uid",
            "0",
            "--gid",
            "0",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
        ]);
        for cap in CAPS {
            cmd.args(["--cap-add", cap]);
        }
        cmd.arg("--bind").arg(root).arg("/");
        cmd.args(&self.system);
        self.make_links(root, &mut cmd)?;
        let init = self.init;
        cmd.args([
            "--chdir",
            cwd,
            "--",
            init.shell,
            "-c",
            init.script,
            "leap-sandbox",
        ])
        .arg(limits.cpu_seconds.to_string())
        .arg((limits.memory_bytes / 1024).to_string())
        .arg((limits.file_bytes / init.block).to_string())
        .arg(limits.open_files.to_string())
        .arg(limits.processes.to_string())
        .args(argv)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("HOME", "/root")
        .env("LANG", "C.UTF-8")
        .env("TERM", "dumb")
        .stdin(Stdio::null())
        // Its own group, so that the timeout kills bubblewrap and its init at once.
        .process_group(0);
        let (reader, writer) = io::pipe()?;
        cmd.stdout(writer.try_clone()?).stderr(writer);
        close_on_exec_inherited()?;
        if let Some(parent) = &self.pids {
            enter_thread_cgroup(parent, limits.processes)?;
        }
        let mut child = cmd.spawn()?;
        drop(cmd);
        let (output, timed_out) = match collect(reader, &mut child, limits) {
            Ok(collected) => collected,
            Err(e) => {
                kill_group(&child);
                child.wait()?;
                return Err(e);
            }
        };
        let status = child.wait()?;
        let exit = if timed_out {
            Exit::TimedOut
        } else {
            match (status.code(), status.signal()) {
                (Some(code), _) => Exit::Code(code),
                (None, Some(signal)) => Exit::Signal(signal),
                (None, None) => Exit::Code(-1),
            }
        };
        Ok(Run { output, exit })
    }

    /// Makes the merged-`/usr` links in the tree, where they are not already right (bubblewrap
    /// 0.8 refuses to make a link that exists). A directory the tree has in a link's place gets
    /// the host's directory mounted over it instead.
    fn make_links(&self, root: &Path, cmd: &mut Command) -> io::Result<()> {
        for (name, target) in &self.links {
            let path = root.join(name);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    if std::fs::read_link(&path)? == *target {
                        continue;
                    }
                    std::fs::remove_file(&path)?;
                }
                Ok(meta) if meta.is_dir() => {
                    let host = Path::new("/").join(name);
                    cmd.args(ro_bind(&host, &host));
                    continue;
                }
                Ok(_) => std::fs::remove_file(&path)?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            std::os::unix::fs::symlink(target, &path)?;
        }
        Ok(())
    }
}

/// The calling thread's own `pids` cgroup (v1 counts threads and processes alike): joined on
/// the thread's first command, left when the thread ends. Joining a cgroup waits for an RCU grace
/// period (milliseconds), so a thread joins once and the commands it starts are born inside,
/// with the thread itself and bubblewrap, hence two more than the limit. Threads that this thread
/// starts later are born inside too and count against it.
struct ThreadCgroup {
    parent: PathBuf,
    dir: PathBuf,
    max: u64,
}

thread_local! {
    static THREAD_CGROUP: RefCell<Option<ThreadCgroup>> = const { RefCell::new(None) };
}

fn enter_thread_cgroup(parent: &Path, processes: u64) -> io::Result<()> {
    THREAD_CGROUP.with_borrow_mut(|slot| {
        let max = processes + 2;
        if let Some(cgroup) = slot.as_mut().filter(|c| c.parent == parent) {
            if cgroup.max != max {
                std::fs::write(cgroup.dir.join("pids.max"), max.to_string())?;
                cgroup.max = max;
            }
            return Ok(());
        }
        let dir = parent.join(format!("leap-sandbox-{}-{}", std::process::id(), gettid()));
        match std::fs::create_dir(&dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            _ => {}
        }
        std::fs::write(dir.join("pids.max"), max.to_string())?;
        std::fs::write(dir.join("tasks"), gettid().to_string())?;
        *slot = Some(ThreadCgroup {
            parent: parent.to_path_buf(),
            dir,
            max,
        });
        Ok(())
    })
}

impl Drop for ThreadCgroup {
    fn drop(&mut self) {
        // Back to where the thread came from, so that its cgroup is empty and can go.
        let _ = std::fs::write(self.parent.join("tasks"), gettid().to_string());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn gettid() -> i32 {
    // SAFETY: gettid(2) has no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// The directory under which leap may make `pids` cgroups: its own in the v1 `pids` hierarchy.
/// Checked by making one; empty ones that earlier leap processes left are removed.
fn pids_cgroup_parent() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let path = own.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        controllers.split(',').any(|c| c == "pids").then_some(path)
    })?;
    let parent = pids_mount(&mounts)?.join(path.trim_start_matches('/'));
    for entry in std::fs::read_dir(&parent).ok()?.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("leap-sandbox-")
        {
            // Fails, as it should, for the cgroups that live threads are in.
            let _ = std::fs::remove_dir(entry.path());
        }
    }
    let probe = parent.join(format!("leap-sandbox-{}-probe", std::process::id()));
    std::fs::create_dir(&probe).ok()?;
    let usable = std::fs::write(probe.join("pids.max"), "1").is_ok()
        && std::fs::metadata(probe.join("tasks")).is_ok();
    std::fs::remove_dir(&probe).ok()?;
    usable.then_some(parent)
}

/// Where the v1 `pids` hierarchy is mounted at its root.
fn pids_mount(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (root, point) = (*left.get(3)?, *left.get(4)?);
        let (fstype, options) = (*right.first()?, *right.get(2)?);
        let pids = fstype == "cgroup" && options.split(',').any(|o| o == "pids");
        (pids && root == "/").then(|| PathBuf::from(point))
    })
}

/// `LEAP_BWRAP` when set (exactly that file), else the first `bwrap` on `PATH` or in the usual
/// places.
fn find_bwrap() -> Option<PathBuf> {
    if let Some(chosen) = std::env::var_os("LEAP_BWRAP") {
        return Some(PathBuf::from(chosen)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/local/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join("bwrap"))
        .find(|p| p.is_file())
}

fn ro_bind(source: &Path, dest: &Path) -> [OsString; 3] {
    ["--ro-bind".into(), source.into(), dest.into()]
}

/// What under `dir` others may not read (or, for a directory, not enter): the host's secrets as
/// its permissions mark them. A masked directory is not searched further.
fn secrets(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.is_dir() {
            if mode & 0o005 != 0o005 {
                found.push(path);
            } else {
                found.extend(secrets(&path));
            }
        } else if mode & 0o004 == 0 {
            found.push(path);
        }
    }
    found.sort();
    found
}

/// Marks every descriptor above stderr close-on-exec, so that bubblewrap, which passes on what
/// it inherits, cannot hand the sandbox one that a library opened without `O_CLOEXEC`.
fn close_on_exec_inherited() -> io::Result<()> {
    let fds: Vec<i32> = std::fs::read_dir("/proc/self/fd")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: fcntl on a descriptor number only reads and sets its flags; one that was
        // closed meanwhile (the directory listing's own) fails with EBADF, which is ignored.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
    Ok(())
}

/// Reads the command's output until it ends or the timeout passes, keeping the first
/// `output_bytes` and dropping the rest. At the timeout, kills the process tree and reads what is
/// left. Returns the output and whether the timeout struck.
fn collect(
    mut reader: io::PipeReader,
    child: &mut Child,
    limits: &Limits,
) -> io::Result<(Vec<u8>, bool)> {
    let deadline = Instant::now() + limits.timeout;
    let mut output = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut timed_out = false;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        if !timed_out && (wait.is_zero() || !readable(&reader, wait)?) {
            // The process group holds bubblewrap and its init; the init's death takes the pid
            // namespace, and with it every writer of the pipe.
            kill_group(child);
            timed_out = true;
            continue;
        }
        if timed_out && !readable(&reader, Duration::from_secs(5))? {
            // Killed, but some process is slow to die: what was read is the answer.
            return Ok((output, timed_out));
        }
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok((output, timed_out));
        }
        let keep = n.min(limits.output_bytes.saturating_sub(output.len()));
        output.extend_from_slice(&buf[..keep]);
    }
}

/// Whether `reader` has data or its end within `wait`.
fn readable(reader: &io::PipeReader, wait: Duration) -> io::Result<bool> {
    let mut fd = libc::pollfd {
        fd: reader.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = wait.as_millis().clamp(1, i32::MAX as u128) as i32;
    loop {
        // SAFETY: one valid pollfd, borrowed for the call.
        let ready = unsafe { libc::poll(&mut fd, 1, ms) };
        match ready {
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => continue,
            -1 => return Err(io::Error::last_os_error()),
            n => return Ok(n > 0),
        }
    }
}

fn kill_group(child: &Child) {
    // SAFETY: a plain kill(2). The child is not reaped yet, so its id still names its group.
    unsafe {
        libc::kill(-(child.id() as i32), libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both inits set the same limits and leave the command the same environment (the suite in
    /// `tests/shell_sandbox.rs` runs whichever this host picks).
    #[test]
    fn dash_and_bash_inits_agree() {
        let mut sandbox = Sandbox::probe().unwrap_or_else(|e| panic!("{e}"));
        let tree = tempfile::tempdir().unwrap();
        let script = "ulimit -t -v -f -n -u; env | sort";
        let mut outputs = Vec::new();
        for init in [&DASH, &BASH] {
            sandbox.init = init;
            let run = sandbox
                .run(
                    tree.path(),
                    "/",
                    &["bash", "-c", script],
                    &Limits::default(),
                )
                .unwrap();
            assert_eq!(run.exit, Exit::Code(0));
            outputs.push(String::from_utf8(run.output).unwrap());
        }
        assert_eq!(outputs[0], outputs[1]);
        assert!(
            outputs[0].contains("(blocks, -f) 65536\n"),
            "{}",
            outputs[0]
        );
        assert!(outputs[0].contains("\nSHLVL=1\n"), "{}", outputs[0]);
    }
}
