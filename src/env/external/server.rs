//! Environment servers: where an external scenario's server is (a URL) or how leap starts it (a
//! command, or one of the adapters shipped in `assets/envs/`), and the servers this process has
//! started, one per distinct spec, shared by every episode that names it.
//!
//! A started server listens on 127.0.0.1 at a port leap picks, is ready once `GET /health`
//! answers 200, and never outlives leap: it is spawned from a thread that lives as long as the
//! process with `PR_SET_PDEATHSIG` set, and its standard input is a pipe leap holds (the shipped
//! adapters exit when it closes). Its output goes to an unnamed file whose end an error quotes.
//! A server that has died is started again for the next episode that needs it.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::TcpListener;
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

macro_rules! adapter {
    ($name:literal) => {
        (
            $name,
            concat!($name, ".py"),
            include_str!(concat!("../../../assets/envs/", $name, ".py")),
        )
    };
}

/// The adapters shipped in `assets/envs/`, compiled in: `(name, file, source)`. ScienceWorld's
/// and TextWorld's are tested here; ALFWorld's, WebShop's and InterCode's are written against
/// those projects' documented interfaces and cannot be installed here.
pub const ADAPTERS: &[(&str, &str, &str)] = &[
    adapter!("scienceworld"),
    adapter!("textworld"),
    adapter!("alfworld"),
    adapter!("webshop"),
    adapter!("intercode"),
];

/// The module every adapter imports (leap's convention over openenv-core).
const SHARED: (&str, &str) = (
    "leap_openenv.py",
    include_str!("../../../assets/envs/leap_openenv.py"),
);

/// The names of the shipped adapters, as a problem lists them.
pub fn adapter_names() -> impl Iterator<Item = &'static str> {
    ADAPTERS.iter().map(|(name, _, _)| *name)
}

/// Where a scenario's environment server is, or how to start it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum How {
    /// A shipped adapter (`assets/envs/<name>.py`), run with leap's adapter Python.
    Adapter(&'static str),
    /// A command leap runs; one argument holds `{port}`, where leap puts the port it picked.
    Command { argv: Vec<String>, cwd: PathBuf },
    /// A server already running: its base URL (`http://host:port`).
    Url(String),
}

/// A checked server spec with its timeouts.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Spec {
    pub how: How,
    /// How long a started server may take to answer `/health`.
    pub startup: Duration,
    /// How long one reset or step may take.
    pub step: Duration,
}

impl Spec {
    /// The server as messages name it: the adapter, the program, or the URL.
    pub fn label(&self) -> String {
        match &self.how {
            How::Adapter(name) => format!("adapter `{name}`"),
            How::Command { argv, .. } => format!("`{}`", argv.join(" ")),
            How::Url(url) => url.clone(),
        }
    }
}

/// A server this process can talk to.
pub struct Server {
    /// `http://127.0.0.1:port`, no trailing slash.
    pub base: String,
    label: String,
    process: Option<Process>,
}

struct Process {
    child: Mutex<Child>,
    /// Held open: the adapters exit when it closes.
    _stdin: ChildStdin,
    /// The server's standard output and error.
    log: File,
}

impl Server {
    /// The WebSocket endpoint of its sessions.
    pub fn ws_url(&self) -> String {
        format!(
            "ws{}/ws",
            self.base.strip_prefix("http").unwrap_or(&self.base)
        )
    }

    /// Whether a server leap started is still running (a URL is assumed to be).
    pub fn alive(&self) -> bool {
        self.process.as_ref().is_none_or(|p| {
            let mut child = p.child.lock().unwrap_or_else(|e| e.into_inner());
            matches!(child.try_wait(), Ok(None))
        })
    }

    /// [`Server::death`], waiting up to `patience` for a server that is going down (a broken
    /// connection can be seen before its process has exited).
    pub fn death_within(&self, patience: Duration) -> Option<String> {
        let started = Instant::now();
        loop {
            let death = self.death();
            if death.is_some() || self.process.is_none() || started.elapsed() >= patience {
                return death;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Why the server can no longer answer, when leap started it and it has exited: its status
    /// and the end of its output, as one line for an error.
    pub fn death(&self) -> Option<String> {
        let p = self.process.as_ref()?;
        let status = {
            let mut child = p.child.lock().unwrap_or_else(|e| e.into_inner());
            child.try_wait().ok().flatten()?
        };
        Some(format!(
            "the server {} exited ({status}){}",
            self.label,
            last_output(&p.log)
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(p) = &self.process {
            let mut child = p.child.lock().unwrap_or_else(|e| e.into_inner());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The server of `spec`: the one this process already runs, or a new one. `Err` is one line.
pub fn get(spec: &Spec) -> Result<Arc<Server>, String> {
    // Held while a server starts, so that episodes starting together share one.
    let mut servers = servers().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(server) = servers.get(spec)
        && server.alive()
    {
        return Ok(server.clone());
    }
    let server = Arc::new(start(spec)?);
    servers.insert(spec.clone(), server.clone());
    Ok(server)
}

/// The server of `spec` this process has, running or not, without starting one.
pub fn get_running(spec: &Spec) -> Option<Arc<Server>> {
    servers()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(spec)
        .cloned()
}

fn servers() -> &'static Mutex<HashMap<Spec, Arc<Server>>> {
    static SERVERS: OnceLock<Mutex<HashMap<Spec, Arc<Server>>>> = OnceLock::new();
    SERVERS.get_or_init(Default::default)
}

fn start(spec: &Spec) -> Result<Server, String> {
    let label = spec.label();
    let argv = match &spec.how {
        How::Url(url) => {
            let base = url.trim_end_matches('/').to_string();
            return Ok(Server {
                base,
                label,
                process: None,
            });
        }
        How::Adapter(name) => {
            let python = adapter_python()?;
            let script = adapter_file(name)
                .map_err(|e| format!("cannot write the adapter `{name}` to the cache: {e}"))?;
            vec![
                python.display().to_string(),
                script.display().to_string(),
                "--port".to_string(),
                "{port}".to_string(),
            ]
        }
        How::Command { argv, .. } => argv.clone(),
    };
    let port = free_port().map_err(|e| format!("cannot pick a port for {label}: {e}"))?;
    let argv: Vec<String> = argv
        .iter()
        .map(|a| a.replace("{port}", &port.to_string()))
        .collect();
    let log = tempfile::tempfile().map_err(|e| format!("cannot make {label}'s log: {e}"))?;
    let out = log.try_clone().map_err(|e| e.to_string())?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(err)
        .env("PYTHONUNBUFFERED", "1");
    if let How::Command { cwd, .. } = &spec.how {
        command.current_dir(cwd);
    }
    let mut child = spawn(command).map_err(|e| format!("cannot start {label}: {e}"))?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let base = format!("http://127.0.0.1:{port}");
    let server = Server {
        base,
        label,
        process: Some(Process {
            child: Mutex::new(child),
            _stdin: stdin,
            log,
        }),
    };
    wait_healthy(&server, spec.startup)?;
    Ok(server)
}

/// Polls `GET /health` until it answers 200, the process exits or `limit` passes.
fn wait_healthy(server: &Server, limit: Duration) -> Result<(), String> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(2)))
            .http_status_as_error(false)
            .build(),
    );
    let url = format!("{}/health", server.base);
    let started = Instant::now();
    loop {
        if let Ok(response) = agent.get(&url).call()
            && response.status() == 200
        {
            return Ok(());
        }
        if let Some(death) = server.death() {
            return Err(format!("{death} before it answered {url}"));
        }
        if started.elapsed() > limit {
            let tail = server
                .process
                .as_ref()
                .map(|p| last_output(&p.log))
                .unwrap_or_default();
            return Err(format!(
                "the server {} did not answer {url} within {} s{tail}",
                server.label,
                limit.as_secs()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// "; its output ended: ..." with the last lines of `log`, or nothing when it is empty.
fn last_output(log: &File) -> String {
    const TAIL: u64 = 1500;
    let len = log.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(TAIL);
    let mut buf = vec![0; (len - start) as usize];
    let n = log.read_at(&mut buf, start).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let tail = &lines[lines.len().saturating_sub(6)..];
    if tail.is_empty() {
        String::new()
    } else {
        format!("; its output ended: {}", tail.join(" | "))
    }
}

/// A port free on 127.0.0.1 now.
fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Spawns `command` from a thread that lives as long as the process, with the child asked to
/// get SIGTERM when that thread ends: the server dies with leap however leap ends.
fn spawn(mut command: Command) -> io::Result<Child> {
    type Job = (Command, mpsc::Sender<io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    // SAFETY: the closure only calls async-signal-safe functions (prctl, getppid, kill).
    unsafe {
        let parent = libc::getpid();
        command.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            // The parent may have died before prctl.
            if libc::getppid() != parent {
                libc::kill(libc::getpid(), libc::SIGTERM);
            }
            Ok(())
        });
    }
    let sender = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("leap-env-spawner".into())
            .spawn(move || {
                for (mut command, back) in rx {
                    let _ = back.send(command.spawn());
                }
            })
            .expect("the spawner thread starts");
        Mutex::new(tx)
    });
    let (back, answer) = mpsc::channel();
    sender
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, back))
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

/// The Python that runs the shipped adapters: `$LEAP_EXTERNAL_PYTHON`, else the venv that
/// `just deps-external` makes in the user cache.
pub fn adapter_python() -> Result<PathBuf, String> {
    if let Some(python) = std::env::var_os("LEAP_EXTERNAL_PYTHON") {
        return Ok(PathBuf::from(python));
    }
    let python = crate::model::cache_root().join("external-venv/bin/python");
    if python.exists() {
        Ok(python)
    } else {
        Err(format!(
            "no Python for leap's adapters at {}: run `just deps-external` (or set LEAP_EXTERNAL_PYTHON to a Python with openenv-core and the environment's package)",
            python.display()
        ))
    }
}

/// The adapter `name` on disk: the shipped files are written once into a folder of the user
/// cache named by their hash, and run from there (the binary may run far from its sources).
pub fn adapter_file(name: &str) -> io::Result<PathBuf> {
    let (_, file, _) = ADAPTERS
        .iter()
        .find(|(n, _, _)| *n == name)
        .ok_or_else(|| io::Error::other(format!("no adapter `{name}`")))?;
    let dir = adapters_dir()?;
    Ok(dir.join(file))
}

fn adapters_dir() -> io::Result<PathBuf> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| write_adapters().map_err(|e| e.to_string()))
        .clone()
        .map_err(io::Error::other)
}

fn write_adapters() -> io::Result<PathBuf> {
    let files: Vec<(&str, &str)> = std::iter::once(SHARED)
        .chain(ADAPTERS.iter().map(|(_, file, source)| (*file, *source)))
        .collect();
    let mut hash = Sha256::new();
    for (file, source) in &files {
        hash.update(file.as_bytes());
        hash.update([0]);
        hash.update(source.as_bytes());
    }
    let digest = format!("{:x}", hash.finalize());
    let dir = crate::model::cache_root().join("envs").join(&digest[..16]);
    if dir.join(".complete").exists() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&dir)?;
    for (file, source) in &files {
        write_atomically(&dir.join(file), source)?;
    }
    std::fs::write(dir.join(".complete"), b"")?;
    Ok(dir)
}

fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    io::Write::write_all(&mut tmp, text.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
