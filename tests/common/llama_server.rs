//! A real llama-server for tests and benchmarks, started on 127.0.0.1 and killed when dropped.
//! The binary is `$LEAP_LLAMA_SERVER`, else
//! `${XDG_CACHE_HOME:-~/.cache}/leap/llama-tools/bin/llama-server` (`just llama-tools`); its
//! absence fails the caller.
#![allow(dead_code)] // not every binary that includes it uses all of it

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::thread;
use std::time::{Duration, Instant};

use leap::agent::remote::{RemoteConfig, RemotePolicy, Structured};

pub const SERVER_ENV: &str = "LEAP_LLAMA_SERVER";

pub fn llama_server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os(SERVER_ENV).filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "{SERVER_ENV}={} is not a file", p.display());
        return p;
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
        });
    let bin = cache.join("leap/llama-tools/bin/llama-server");
    assert!(
        bin.is_file(),
        "llama-server is not at {} (nor named by ${SERVER_ENV}); run `just llama-tools` first",
        bin.display()
    );
    bin
}

/// A port nobody listens on right now (the kernel's pick for port 0, released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running llama-server, killed when dropped (also when a test panics).
pub struct LlamaServer {
    child: Child,
    pub base_url: String,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LlamaServer {
    pub fn start(model: &Path) -> LlamaServer {
        LlamaServer::start_sized(model, 4096, 4)
    }

    /// Serving `model` with a context of `ctx` tokens shared by `parallel` slots, on one thread:
    /// tests share a few cores, and llama.cpp's spinning worker threads crawl when they
    /// outnumber them.
    pub fn start_sized(model: &Path, ctx: u32, parallel: u32) -> LlamaServer {
        LlamaServer::start_with(model, ctx, parallel, 1, &[])
    }

    /// As [`LlamaServer::start_sized`], on `threads` threads, with `extra` arguments.
    pub fn start_with(
        model: &Path,
        ctx: u32,
        parallel: u32,
        threads: usize,
        extra: &[&str],
    ) -> LlamaServer {
        let bin = llama_server_bin();
        // The port is free when picked but could be taken before the server binds it; then the
        // server exits and another port is tried.
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let log = dir.path().join("llama-server.log");
            let out = File::create(&log).unwrap();
            let port = free_port();
            let child = Command::new(&bin)
                .arg("--model")
                .arg(model)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--ctx-size",
                    &ctx.to_string(),
                    "--parallel",
                    &parallel.to_string(),
                ])
                .args(["--threads", &threads.to_string(), "--no-webui"])
                .args(extra)
                .stdout(out.try_clone().unwrap())
                .stderr(out)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
            let mut server = LlamaServer {
                child,
                base_url: format!("http://127.0.0.1:{port}/v1"),
                log,
                _dir: dir,
            };
            if server.wait_healthy(port, Duration::from_secs(120)) {
                return server;
            }
            let log = std::fs::read_to_string(&server.log).unwrap_or_default();
            if !log.contains("bind") {
                panic!("llama-server exited before it was healthy:\n{}", tail(&log));
            }
        }
        panic!("llama-server could not bind a free port in 3 tries");
    }

    /// Polls `/health` until it says ok; false when the server exits first.
    fn wait_healthy(&mut self, port: u16, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let _ = write!(
                    s,
                    "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                );
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                if answer.starts_with("HTTP/1.1 200") {
                    return true;
                }
            }
            thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        panic!("llama-server not healthy after {limit:?}:\n{}", tail(&log));
    }

    pub fn policy(&self) -> RemotePolicy {
        let mut config = RemoteConfig::new(&self.base_url, "student");
        config.timeout = Duration::from_secs(120);
        config.retries = 1;
        config.backoff = Duration::from_millis(50);
        config.concurrency = 4;
        config.structured = Structured::Grammar;
        RemotePolicy::new(config)
    }
}

pub fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
