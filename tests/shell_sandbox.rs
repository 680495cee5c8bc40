//! The shell sandbox under attack: each test is a real attempt to get out of it or to hurt the
//! host, run in real bubblewrap. Each must fail inside the sandbox, leave the host and the next
//! command in the same tree untouched, and leave no process behind: every attacking process
//! carries a unique marker in its command line, and `/proc` is searched for it afterwards.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use leap::env::shell::sandbox::{Exit, Limits, Run, Sandbox};

fn sandbox() -> &'static Sandbox {
    Sandbox::get().unwrap_or_else(|e| panic!("the sandbox must work here: {e}"))
}

/// An episode tree (`root/`) with a host file beside it (`outside.txt`) that the sandbox must
/// neither read nor change.
struct Tree {
    dir: tempfile::TempDir,
}

const SECRET: &str = "host secret 7f3a9c";
const NOTES: &str = "the tree's own notes\n";

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        for sub in ["tmp", "root", "home/user"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        std::fs::write(root.join("home/user/notes.txt"), NOTES).unwrap();
        std::fs::write(dir.path().join("outside.txt"), SECRET).unwrap();
        Tree { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn outside(&self) -> PathBuf {
        self.dir.path().join("outside.txt")
    }

    fn bash(&self, script: &str, limits: &Limits) -> Run {
        sandbox()
            .run(&self.root(), "/", &["bash", "-c", script], limits)
            .unwrap()
    }

    /// The host file beside the tree is as it was, no process carrying `marker` is left, and
    /// the next command in the tree works and sees the tree as it was.
    fn assert_untouched(&self, marker: &str) {
        assert_eq!(std::fs::read_to_string(self.outside()).unwrap(), SECRET);
        assert_eq!(
            survivors(marker),
            Vec::<String>::new(),
            "processes left behind"
        );
        let next = self.bash("cat /home/user/notes.txt && echo next-ok", &short());
        assert_eq!(text(&next), format!("{NOTES}next-ok\n"));
        assert_eq!(next.exit, Exit::Code(0));
    }
}

/// A string that appears in no other process's command line.
fn marker(test: &str) -> String {
    static COUNT: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    format!("leapsbx_{test}_{}_{nanos}_{n}", std::process::id())
}

/// Host processes whose command line contains `marker` (pid and command line).
fn survivors(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

fn text(run: &Run) -> String {
    String::from_utf8_lossy(&run.output).into_owned()
}

/// The default limits with a 2-second timeout.
fn short() -> Limits {
    Limits {
        timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

#[test]
fn the_hosts_root_home_is_not_visible() {
    let tree = Tree::new();
    std::fs::write(tree.root().join("root/tree-file"), "").unwrap();
    let m = marker("root");
    let run = tree.bash(
        &format!(": {m}; ls -A /root; cat /root/.bashrc /root/.profile /root/.ssh/id_rsa"),
        &short(),
    );
    let out = text(&run);
    assert!(out.starts_with("tree-file\n"), "{out}");
    // Where this host's /root can be read (as root), none of its names may show.
    if let Ok(entries) = std::fs::read_dir("/root") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(!out.contains(&format!("\n{name}\n")), "{name} in {out}");
        }
    }
    assert!(
        out.contains("cat: /root/.bashrc: No such file or directory"),
        "{out}"
    );
    assert_ne!(run.exit, Exit::Code(0));
    tree.assert_untouched(&m);
}

#[test]
fn the_repository_is_not_visible() {
    let tree = Tree::new();
    let repo = env!("CARGO_MANIFEST_DIR");
    let m = marker("repo");
    let run = tree.bash(
        &format!(
            ": {m}; cat {repo}/Cargo.toml; ls {repo}/src; cat /proc/1/root{repo}/Cargo.toml; \
             grep -rs 'name = \"leap\"' /home /root /tmp"
        ),
        &short(),
    );
    let out = text(&run);
    assert!(!out.contains("[package]"), "{out}");
    assert!(!out.contains("lib.rs"), "{out}");
    assert_eq!(out.matches("No such file or directory").count(), 3, "{out}");
    assert_ne!(run.exit, Exit::Code(0));
    tree.assert_untouched(&m);
}

/// What under `dir` others may not read or enter, found here independently of the sandbox.
fn unreadable_by_others(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        let mode = meta.permissions().mode();
        if meta.file_type().is_symlink() {
            continue;
        } else if meta.is_dir() && mode & 0o005 != 0o005 || !meta.is_dir() && mode & 0o004 == 0 {
            found.push(entry.path());
        } else if meta.is_dir() {
            unreadable_by_others(&entry.path(), found);
        }
    }
}

#[test]
fn the_hosts_secrets_in_etc_read_as_empty() {
    let mut secrets = Vec::new();
    unreadable_by_others(Path::new("/etc"), &mut secrets);
    for must in ["/etc/shadow", "/etc/gshadow"] {
        assert!(
            secrets.iter().any(|s| s == Path::new(must)),
            "{must} is readable by others on this host: {secrets:?}"
        );
    }
    let tree = Tree::new();
    let m = marker("etc");
    let mut script = format!(
        "umount /etc/shadow; umount -l /etc/shadow; mount -o remount,rw /etc; \
         cat /etc/shadow /etc/gshadow; echo passwd $(wc -l < /etc/passwd); : {m}\n"
    );
    for secret in &secrets {
        let s = secret.display();
        script += &format!(
            "if [ -d {s} ]; then echo {s} $(ls -A {s} 2>/dev/null | wc -l); \
             else echo {s} $(cat {s} 2>/dev/null | wc -c); fi\n"
        );
    }
    let run = tree.bash(&script, &short());
    let out = text(&run);
    // The system is there (passwd is readable); the secrets give nothing and stay masked.
    assert!(
        out.lines()
            .any(|l| l.starts_with("passwd ") && l != "passwd 0"),
        "{out}"
    );
    assert!(
        out.contains("umount: /etc/shadow: must be superuser to unmount"),
        "{out}"
    );
    for secret in &secrets {
        let line = format!("{} 0\n", secret.display());
        assert!(out.contains(&line), "{line:?} missing in {out}");
    }
    if let Ok(shadow) = std::fs::read_to_string("/etc/shadow") {
        for line in shadow.lines().filter(|l| l.len() > 4) {
            assert!(!out.contains(line), "{line} leaked: {out}");
        }
    }
    tree.assert_untouched(&m);
}

#[test]
fn writing_outside_the_tree_fails() {
    let tree = Tree::new();
    let outside = tree.outside();
    let dir = outside.parent().unwrap().display().to_string();
    let m = marker("write");
    let run = tree.bash(
        &format!(
            "echo pwned > {o}; echo pwned > /usr/pwned-{m}; echo pwned > /etc/pwned-{m}; \
             mount -o remount,rw /usr; echo pwned > /usr/bin/pwned-{m}; touch /dev/pwned; \
             touch /dev/shm/pwned; echo pwned > /proc/pwned; mkdir -p {dir} && echo pwned > {o}; \
             echo done",
            o = outside.display()
        ),
        &short(),
    );
    let out = text(&run);
    assert!(out.ends_with("done\n"), "{out}");
    assert_eq!(out.matches("Read-only file system").count(), 5, "{out}");
    for host in ["/usr/", "/etc/", "/usr/bin/"] {
        assert!(!Path::new(&format!("{host}pwned-{m}")).exists());
    }
    // The host path exists inside only as the tree's own copy.
    let inner = tree.root().join(outside.strip_prefix("/").unwrap());
    assert_eq!(std::fs::read_to_string(inner).unwrap(), "pwned\n");
    tree.assert_untouched(&m);
}

#[test]
fn symlinks_and_dotdot_stay_in_the_tree() {
    let tree = Tree::new();
    let outside = tree.outside().display().to_string();
    // Links planted in the tree before the command, as a task's file system could have them.
    std::os::unix::fs::symlink("../outside.txt", tree.root().join("planted")).unwrap();
    std::os::unix::fs::symlink(&outside, tree.root().join("planted-abs")).unwrap();
    let m = marker("links");
    let run = tree.bash(
        &format!(
            "cat /planted /planted-abs /../outside.txt /../../../..{outside}; \
             ln -s ../outside.txt /up; cat /up; ln -s ../../../../../.. /top; ls /top/outside.txt; \
             cd /..; cd ../..; pwd; cat outside.txt; cat /proc/self/root/../outside.txt; \
             cat /proc/1/root/../outside.txt /proc/1/cwd/../outside.txt; \
             chroot /tmp cat /../outside.txt; : {m}"
        ),
        &short(),
    );
    let out = text(&run);
    assert!(!out.contains(SECRET), "{out}");
    assert!(out.contains("\n/\n"), "pwd after cd .. is /: {out}");
    assert_eq!(
        out.matches("No such file or directory").count(),
        11,
        "{out}"
    );
    tree.assert_untouched(&m);

    // The merged-/usr link replaced by a link out of the tree: the next command gets the
    // system's link back, and nothing outside the tree moves.
    let run = tree.bash("rm /bin && ln -s .. /bin && ls -l /bin", &short());
    assert!(text(&run).contains("/bin -> .."), "{}", text(&run));
    let run = tree.bash(
        "cat /bin/outside.txt; readlink /bin; ls /bin/bash",
        &short(),
    );
    assert_eq!(
        text(&run),
        "cat: /bin/outside.txt: No such file or directory\nusr/bin\n/bin/bash\n"
    );
    tree.assert_untouched(&m);
}

#[test]
fn a_tcp_server_on_the_hosts_loopback_is_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let tree = Tree::new();
    let m = marker("tcp");
    let run = tree.bash(
        &format!(
            "exec 3<>/dev/tcp/127.0.0.1/{port} && echo CONNECTED; \
             exec 4<>/dev/tcp/localhost/{port} && echo CONNECTED; \
             cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; : {m}"
        ),
        &short(),
    );
    let out = text(&run);
    assert!(!out.contains("CONNECTED"), "{out}");
    // bash says it twice per attempt.
    assert_eq!(out.matches("Connection refused").count(), 4, "{out}");
    // Loopback is the only interface.
    assert!(out.ends_with("\nlo\n"), "{out}");
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the server saw a connection: {other:?}"),
    }
    tree.assert_untouched(&m);
}

#[test]
fn a_fork_bomb_fills_its_own_sandbox_only() {
    let tree = Tree::new();
    let m = marker("forkbomb");
    let limits = Limits {
        timeout: Duration::from_secs(3),
        ..Limits::default()
    };
    let script = format!("bomb() {{ bomb | bomb & }}; bomb; sleep 100; : {m}");
    let (run, most) = std::thread::scope(|s| {
        let bomb = s.spawn(|| tree.bash(&script, &limits));
        let mut most = 0;
        let mut host_forks = 0;
        while !bomb.is_finished() {
            most = most.max(survivors(&m).len());
            // The host can still start processes.
            assert!(Command::new("true").status().unwrap().success());
            host_forks += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(host_forks > 10);
        (bomb.join().unwrap(), most)
    });
    assert_eq!(run.exit, Exit::TimedOut);
    assert!(
        text(&run).contains("Resource temporarily unavailable"),
        "{}",
        text(&run)
    );
    // The bomb reached its limit (bubblewrap's own two processes carry the marker too).
    let limit = Limits::default().processes as usize;
    assert!(most > limit / 2 && most <= limit + 2, "{most} processes");
    tree.assert_untouched(&m);
}

#[test]
fn a_memory_bomb_runs_out_of_address_space() {
    let tree = Tree::new();
    let m = marker("membomb");
    let started = Instant::now();
    let run = tree.bash(
        &format!("tail /dev/zero; echo tail $?; awk 'BEGIN {{ s = \"x\"; while (1) s = s s }}'; echo awk $?; : {m}"),
        &Limits {
            timeout: Duration::from_secs(8),
            ..Limits::default()
        },
    );
    let out = text(&run);
    assert!(out.contains("tail: memory exhausted\ntail 1\n"), "{out}");
    assert!(out.contains("awk 2\n"), "{out}");
    assert_eq!(run.exit, Exit::Code(0));
    assert!(started.elapsed() < Duration::from_secs(8));
    tree.assert_untouched(&m);
}

#[test]
fn a_10_gb_file_stops_at_the_file_size_limit() {
    let tree = Tree::new();
    let m = marker("bigfile");
    let run = tree.bash(
        &format!(
            "head -c 10G /dev/zero > /big; echo head $?; fallocate -l 10G /big2; echo fallocate $?; \
             truncate -s 10G /big3; echo truncate $?; dd if=/dev/zero of=/big4 bs=1M count=10240 \
             status=none; echo dd $?; : {m}"
        ),
        &Limits {
            timeout: Duration::from_secs(8),
            ..Limits::default()
        },
    );
    let out = text(&run);
    // SIGXFSZ (25) ends the writers: 128 + 25.
    assert!(
        out.contains("head 153\n") && out.contains("dd 153\n"),
        "{out}"
    );
    assert!(
        out.contains("fallocate 153\n") && out.contains("truncate 153\n"),
        "{out}"
    );
    let limit = Limits::default().file_bytes;
    for big in ["big", "big2", "big3", "big4"] {
        let len = std::fs::metadata(tree.root().join(big)).map_or(0, |m| m.len());
        assert!(len <= limit, "{big}: {len} bytes");
    }
    tree.assert_untouched(&m);
}

#[test]
fn an_endless_loop_is_killed_at_the_default_10_seconds() {
    let tree = Tree::new();
    let m = marker("loop");
    let started = Instant::now();
    let run = tree.bash(&format!("while :; do :; done; : {m}"), &Limits::default());
    let took = started.elapsed();
    assert_eq!(run.exit, Exit::TimedOut);
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_secs(12),
        "{took:?}"
    );
    tree.assert_untouched(&m);
}

#[test]
fn a_process_ignoring_sigterm_is_killed_at_the_timeout() {
    let tree = Tree::new();
    let m = marker("sigterm");
    let started = Instant::now();
    let run = tree.bash(
        &format!(
            "trap '' TERM HUP INT; bash -c \"trap '' TERM; sleep 500; : {m}\" & \
             echo waiting; while :; do sleep 1; done; : {m}"
        ),
        &Limits {
            timeout: Duration::from_secs(1),
            ..Limits::default()
        },
    );
    let took = started.elapsed();
    assert_eq!(run.exit, Exit::TimedOut);
    assert_eq!(text(&run), "waiting\n");
    assert!(took < Duration::from_secs(3), "{took:?}");
    tree.assert_untouched(&m);
}

#[test]
fn background_processes_end_with_their_command() {
    let tree = Tree::new();
    let m = marker("background");
    let started = Instant::now();
    let run = tree.bash(
        &format!(
            "(sleep 1; echo late > /late1; : {m}) & \
             setsid bash -c 'sleep 1; echo late > /late2; : {m}' & \
             nohup bash -c 'sleep 1; echo late > /late3; : {m}' > /dev/null 2>&1 & \
             disown -a; echo returned"
        ),
        &Limits::default(),
    );
    assert_eq!(text(&run), "returned\n");
    assert_eq!(run.exit, Exit::Code(0));
    assert!(started.elapsed() < Duration::from_secs(5));
    tree.assert_untouched(&m);
    std::thread::sleep(Duration::from_millis(1500));
    for late in ["late1", "late2", "late3"] {
        assert!(!tree.root().join(late).exists(), "{late} was written");
    }
}

#[test]
fn a_command_that_kills_its_parent_only_ends_itself() {
    let tree = Tree::new();
    let m = marker("parent");
    let host = std::process::id();
    let run = tree.bash(
        &format!(
            "echo parent $PPID; kill -9 $PPID; kill -9 1; kill -9 {host}; kill -9 -1; \
             echo still here; kill -9 $$; echo never; : {m}"
        ),
        &short(),
    );
    let out = text(&run);
    assert!(out.starts_with("parent 1\n"), "{out}");
    assert!(
        out.contains("still here\n") && !out.contains("never"),
        "{out}"
    );
    assert_eq!(run.exit, Exit::Code(128 + 9));
    tree.assert_untouched(&m);
}

#[test]
fn limits_environment_and_output_cap_apply() {
    let tree = Tree::new();
    let m = marker("limits");
    let limits = Limits::default();
    let run = tree.bash(
        &format!("id -u; ulimit -t -v -f -n -u; env | sort; : {m}"),
        &limits,
    );
    let out = text(&run);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "0", "uid 0 inside: {out}");
    // bash's ulimit: seconds, KiB, 1 KiB blocks, files, processes.
    let ulimits: Vec<&str> = lines[1..6]
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    let expected = [
        limits.cpu_seconds,
        limits.memory_bytes / 1024,
        limits.file_bytes / 1024,
        limits.open_files,
        limits.processes,
    ]
    .map(|n| n.to_string());
    assert_eq!(ulimits, expected, "{out}");
    let env = [
        "HOME=/root",
        "LANG=C.UTF-8",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "PWD=/",
        "SHLVL=1",
        "TERM=dumb",
        "_=/usr/bin/env",
    ];
    assert_eq!(lines[6..], env, "{out}");

    // Output past the cap is read and dropped; a flood still ends at the timeout.
    let capped = Limits {
        output_bytes: 1000,
        timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let run = tree.bash("head -c 5000000 /dev/zero | tr '\\0' a; echo end", &capped);
    assert_eq!(run.output, vec![b'a'; 1000]);
    assert_eq!(run.exit, Exit::Code(0));
    let run = tree.bash(&format!("yes {m}"), &capped);
    assert_eq!(run.exit, Exit::TimedOut);
    assert_eq!(run.output.len(), 1000);
    tree.assert_untouched(&m);
}

/// The leap process for [`killing_leap_mid_command_leaves_nothing`] and the probe tests: this
/// test binary run again with `LEAP_SANDBOX_CHILD` naming what to do.
#[test]
#[ignore = "run as a child process by the tests below"]
fn sandbox_child() {
    match std::env::var("LEAP_SANDBOX_CHILD").as_deref() {
        Ok("probe") => match Sandbox::get() {
            Ok(_) => println!("PROBE ok"),
            Err(e) => println!("PROBE {e}"),
        },
        Ok("run") => {
            let root = std::env::var("LEAP_SANDBOX_ROOT").unwrap();
            let script = std::env::var("LEAP_SANDBOX_SCRIPT").unwrap();
            sandbox()
                .run(
                    Path::new(&root),
                    "/",
                    &["bash", "-c", &script],
                    &Limits::default(),
                )
                .unwrap();
        }
        other => panic!("LEAP_SANDBOX_CHILD is {other:?}"),
    }
}

fn child(what: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "sandbox_child",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env("LEAP_SANDBOX_CHILD", what);
    cmd
}

#[test]
fn killing_leap_mid_command_leaves_nothing() {
    let tree = Tree::new();
    let m = marker("sigkill");
    let mut leap = child("run")
        .env("LEAP_SANDBOX_ROOT", tree.root())
        .env(
            "LEAP_SANDBOX_SCRIPT",
            format!("(sleep 600; : {m}) & touch /started; sleep 600; : {m}"),
        )
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !tree.root().join("started").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the command never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(survivors(&m).len() >= 3, "{:?}", survivors(&m));
    leap.kill().unwrap();
    leap.wait().unwrap();
    let killed = Instant::now();
    while !survivors(&m).is_empty() && killed.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(20));
    }
    tree.assert_untouched(&m);
}

fn probe_line(bwrap: &str) -> String {
    let out = child("probe").env("LEAP_BWRAP", bwrap).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let (_, line) = stdout.split_once("PROBE ").unwrap_or_else(|| {
        panic!(
            "no probe line: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    line.lines().next().unwrap().to_string()
}

#[test]
fn the_probe_says_in_one_line_what_is_missing() {
    assert_eq!(probe_line("/usr/bin/bwrap"), "ok");
    assert_eq!(
        probe_line("/nonexistent/bwrap"),
        "the shell sandbox needs bubblewrap (`bwrap`), which is not installed: run `just deps`"
    );
    // A bubblewrap that cannot start anything, as where user namespaces are off.
    let fake = tempfile::tempdir().unwrap();
    let bwrap = fake.path().join("bwrap");
    std::fs::write(
        &bwrap,
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&bwrap, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        probe_line(bwrap.to_str().unwrap()),
        "bubblewrap cannot start a sandbox here (bwrap: No permissions to create new namespace); \
         the shell kind needs user namespaces"
    );
}
