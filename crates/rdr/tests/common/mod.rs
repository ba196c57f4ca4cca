//! Test harness: a real `rdr daemon` with its socket in a temp dir, real FUSE mounts of
//! `local:` shares, holder processes that keep a file open, and cleanup of every process, mount
//! and user a test creates (by PID / path / name), bounded by timeouts.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const RDR: &str = env!("CARGO_BIN_EXE_rdr");

/// Root and /dev/fuse, or skip (fail under CI).
pub fn can_run(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let fuse = Path::new("/dev/fuse").exists();
    if root && fuse {
        return true;
    }
    let why = if !root {
        "not root"
    } else {
        "/dev/fuse is missing"
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: cannot run: {why} (CI is set, so this is a failure)");
    }
    eprintln!("{test}: SKIPPED: {why}");
    false
}

/// Wait for `cond` up to `limit`; false on timeout.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    cond()
}

/// Run a command with a deadline; kill it (by PID) and panic when it runs over.
pub fn run_bounded(mut cmd: Command, limit: Duration) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(o) => o.expect("wait"),
        Err(_) => {
            // SAFETY: kill by the PID we spawned.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("command {cmd:?} ran longer than {limit:?}");
        }
    }
}

pub fn is_mounted(p: &Path) -> bool {
    let want = p.display().to_string().replace(' ', "\\040");
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

pub fn pid_alive(pid: i32) -> bool {
    // A zombie still answers kill -0; look at its state.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A temp dir readable by every user (tests with two users traverse it).
pub fn open_tempdir() -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("rdr-test-")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// One daemon with its own socket and state in a temp dir.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub sock: PathBuf,
    pub daemon: Option<Child>,
    pub mounts: Vec<PathBuf>,
    /// Extra environment of the daemon (e.g. `RDR_SMB_SIGNING`).
    pub daemon_env: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Env {
        Env::with_daemon_env(&[])
    }

    /// An env whose daemon runs with these extra environment variables.
    pub fn with_daemon_env(vars: &[(&str, &str)]) -> Env {
        let dir = open_tempdir();
        let sock = dir.path().join("rdr.sock");
        let mut e = Env {
            dir,
            sock,
            daemon: None,
            mounts: Vec::new(),
            daemon_env: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        e.start_daemon();
        e
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn start_daemon(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("daemon.log"))
            .unwrap();
        let child = Command::new(RDR)
            .args(["daemon", "--foreground"])
            .env("RDR_SOCKET", &self.sock)
            // The default placement unless the test asks for another.
            .env_remove("RDR_CPUS")
            .envs(self.daemon_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start daemon");
        self.daemon = Some(child);
        let sock = self.sock.clone();
        assert!(
            wait_until(Duration::from_secs(10), || {
                std::os::unix::net::UnixStream::connect(&sock).is_ok()
            }),
            "daemon did not listen; log:\n{}",
            self.log()
        );
    }

    pub fn daemon_pid(&self) -> i32 {
        self.daemon.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn guard_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.state().join("guard.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// SIGTERM the daemon and wait (bounded) for it to exit.
    pub fn stop_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            // SAFETY: our child's PID.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let pid = c.id() as i32;
            let ok = wait_until(Duration::from_secs(30), || {
                matches!(c.try_wait(), Ok(Some(_)))
            });
            if !ok {
                // SAFETY: our child's PID.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                let _ = c.wait();
                panic!("daemon did not exit on SIGTERM; log:\n{}", self.log());
            }
        }
    }

    /// SIGKILL the daemon.
    pub fn kill_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(RDR);
        c.args(args)
            .env("RDR_SOCKET", &self.sock)
            .env_remove("RDR_PASSWORD");
        c
    }

    /// Run `rdr ARGS` (bounded at 60 s).
    pub fn rdr(&self, args: &[&str]) -> Output {
        run_bounded(self.cmd(args), Duration::from_secs(60))
    }

    /// Run `rdr ARGS` as another user.
    pub fn rdr_as(&self, uid: u32, gid: u32, args: &[&str]) -> Output {
        let mut c = self.cmd(args);
        c.uid(uid).gid(gid);
        c.current_dir("/");
        run_bounded(c, Duration::from_secs(60))
    }

    /// A backing directory and a mount point under the temp dir.
    pub fn paths(&self, name: &str) -> (PathBuf, PathBuf) {
        let back = self.dir.path().join(format!("{name}-back"));
        std::fs::create_dir_all(&back).unwrap();
        (back, self.dir.path().join(format!("{name}-mnt")))
    }

    /// `rdr use MP local:BACK`, asserting success.
    pub fn mount(&mut self, back: &Path, mp: &Path) {
        let o = self.rdr(&[
            "use",
            mp.to_str().unwrap(),
            &format!("local:{}", back.display()),
        ]);
        assert!(
            o.status.success(),
            "rdr use failed: {}\n{}\nlog:\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
            self.log()
        );
        assert!(is_mounted(mp), "{} is not mounted", mp.display());
        self.mounts.push(mp.to_path_buf());
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let guard = self.guard_pid();
        if let Some(mut c) = self.daemon.take() {
            // SAFETY: our child's PID.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            if !wait_until(Duration::from_secs(20), || {
                matches!(c.try_wait(), Ok(Some(_)))
            }) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if let Some(g) = guard {
            // The guard exits by itself; make sure.
            if !wait_until(Duration::from_secs(5), || !pid_alive(g)) {
                // SAFETY: the PID the daemon recorded for its guard.
                unsafe { libc::kill(g, libc::SIGKILL) };
            }
        }
        for m in &self.mounts {
            if is_mounted(m) {
                let c = std::ffi::CString::new(m.to_str().unwrap()).unwrap();
                // SAFETY: valid C string.
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
    }
}

/// A process that keeps one file open and reads it on demand (the test binary re-executed in
/// holder mode, see `holder_main` in each test file).
pub struct Holder {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

impl Holder {
    pub fn open(path: &Path) -> Holder {
        Holder::spawn(path, "rw")
    }

    /// A holder with the file open read-only.
    pub fn open_readonly(path: &Path) -> Holder {
        Holder::spawn(path, "ro")
    }

    /// A holder that creates the file (O_CREAT|O_EXCL, read-write), as `cp` does.
    pub fn create_new(path: &Path) -> Holder {
        Holder::spawn(path, "new")
    }

    fn spawn(path: &Path, mode: &str) -> Holder {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args(["--exact", "holder_main", "--nocapture", "--test-threads=1"])
            .env("RDR_HOLDER_FILE", path)
            .env("RDR_HOLDER_MODE", mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn holder");
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut h = Holder { child, stdin, out };
        let first = h.answer();
        assert_eq!(first, "open ok", "holder could not open {}", path.display());
        h
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn answer(&mut self) -> String {
        let pid = self.child.id() as i32;
        let (tx, rx) = mpsc::channel::<()>();
        // Watchdog: a holder stuck in the mount fails the test instead of hanging it.
        std::thread::spawn(move || {
            if rx.recv_timeout(Duration::from_secs(30)).is_err() {
                // SAFETY: the holder's PID.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).unwrap_or(0);
            if n == 0 {
                let _ = tx.send(());
                return "dead".into();
            }
            // libtest may print "test holder_main ... " on the same line first.
            if let Some(i) = line.find("HOLDER ") {
                let _ = tx.send(());
                return line.trim_end()[i + 7..].to_string();
            }
        }
    }

    /// Read up to 64 bytes at offset 0: `data <text>` or `err <errno>`.
    pub fn read(&mut self) -> String {
        writeln!(self.stdin, "read").unwrap();
        self.stdin.flush().unwrap();
        self.answer()
    }

    /// Write `text` at `offset` (pwrite): `pwrite ok` or `pwrite err <errno>`.
    pub fn pwrite(&mut self, offset: u64, text: &str) -> String {
        writeln!(self.stdin, "pwrite {offset} {text}").unwrap();
        self.stdin.flush().unwrap();
        self.answer()
    }

    /// Start an fsync; its answer (`fsync ok` / `fsync err <errno>`) comes with
    /// `next_answer()`.
    pub fn start_fsync(&mut self) {
        writeln!(self.stdin, "fsync").unwrap();
        self.stdin.flush().unwrap();
    }

    /// A POSIX write lock on bytes 0..100 (F_SETLK): `lock ok` or `lock err <errno>`.
    pub fn lock(&mut self) -> String {
        writeln!(self.stdin, "lock").unwrap();
        self.stdin.flush().unwrap();
        self.answer()
    }

    /// Start a waiting lock (F_SETLKW) on bytes 0..100; the answer comes with `answer()`.
    pub fn start_lock_wait(&mut self) {
        writeln!(self.stdin, "lockw").unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next answer (`lockw ok` / `lockw err <errno>` after `start_lock_wait`).
    pub fn next_answer(&mut self) -> String {
        self.answer()
    }

    /// F_GETLK on bytes 0..100: `getlk free` or `getlk locked`.
    pub fn getlk(&mut self) -> String {
        writeln!(self.stdin, "getlk").unwrap();
        self.stdin.flush().unwrap();
        self.answer()
    }

    /// Close the fd: `closed ok` or `closed err <errno>`.
    pub fn close(&mut self) -> String {
        writeln!(self.stdin, "close").unwrap();
        self.stdin.flush().unwrap();
        self.answer()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The holder's body: runs only when RDR_HOLDER_FILE is set.
pub fn holder_body() {
    use std::os::unix::fs::FileExt;
    use std::os::unix::io::IntoRawFd;
    let Some(path) = std::env::var_os("RDR_HOLDER_FILE") else {
        return;
    };
    let out = |s: String| {
        println!("HOLDER {s}");
        let _ = std::io::stdout().flush();
    };
    let mode = std::env::var("RDR_HOLDER_MODE").unwrap_or_default();
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .write(mode != "ro")
        .create_new(mode == "new")
        .open(&path)
    {
        Ok(f) => {
            out("open ok".into());
            Some(f)
        }
        Err(e) => {
            out(format!("open err {}", e.raw_os_error().unwrap_or(0)));
            return;
        }
    };
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        match line.as_str() {
            "read" => match &f {
                Some(file) => {
                    let mut buf = [0u8; 64];
                    match file.read_at(&mut buf, 0) {
                        Ok(n) => out(format!(
                            "data {}",
                            String::from_utf8_lossy(&buf[..n]).replace('\n', "\\n")
                        )),
                        Err(e) => out(format!("err {}", e.raw_os_error().unwrap_or(0))),
                    }
                }
                None => out("err closed".into()),
            },
            "lockw" | "lock" | "getlk" => match &f {
                Some(file) => {
                    use std::os::unix::io::AsRawFd;
                    // SAFETY: a zeroed flock is a valid argument; fd is open.
                    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
                    fl.l_type = libc::F_WRLCK as i16;
                    fl.l_whence = libc::SEEK_SET as i16;
                    fl.l_start = 0;
                    fl.l_len = 100;
                    let cmd = match line.as_str() {
                        "lock" => libc::F_SETLK,
                        "lockw" => libc::F_SETLKW,
                        _ => libc::F_GETLK,
                    };
                    // SAFETY: fd is open and fl is a valid flock.
                    let r = unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut fl) };
                    if r != 0 {
                        out(format!(
                            "{line} err {}",
                            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
                        ));
                    } else if line != "getlk" {
                        out(format!("{line} ok"));
                    } else if i32::from(fl.l_type) == libc::F_UNLCK {
                        out("getlk free".into());
                    } else {
                        out("getlk locked".into());
                    }
                }
                None => out("err closed".into()),
            },
            "fsync" => match &f {
                Some(file) => match file.sync_all() {
                    Ok(()) => out("fsync ok".into()),
                    Err(e) => out(format!("fsync err {}", e.raw_os_error().unwrap_or(0))),
                },
                None => out("err closed".into()),
            },
            cmd if cmd.starts_with("pwrite ") => match &f {
                Some(file) => {
                    let mut parts = cmd.splitn(3, ' ').skip(1);
                    let offset: u64 = parts.next().and_then(|o| o.parse().ok()).unwrap_or(0);
                    let text = parts.next().unwrap_or("");
                    match file.write_all_at(text.as_bytes(), offset) {
                        Ok(()) => out("pwrite ok".into()),
                        Err(e) => out(format!("pwrite err {}", e.raw_os_error().unwrap_or(0))),
                    }
                }
                None => out("err closed".into()),
            },
            "close" => match f.take() {
                Some(file) => {
                    let fd = file.into_raw_fd();
                    // SAFETY: we own fd.
                    let r = unsafe { libc::close(fd) };
                    if r == 0 {
                        out("closed ok".into());
                    } else {
                        out(format!(
                            "closed err {}",
                            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
                        ));
                    }
                }
                None => out("closed err already".into()),
            },
            _ => {}
        }
    }
}

/// Real Linux users for a test, removed at the end even on failure.
pub struct Users {
    pub names: Vec<String>,
}

impl Users {
    pub fn create(n: usize) -> (Users, Vec<(u32, u32)>) {
        let mut u = Users { names: vec![] };
        let mut ids = vec![];
        for _ in 0..n {
            // Unique within the process too: several tests of one binary make users at once.
            static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("rdrt{}x{seq}", std::process::id() % 100000);
            // Another process (a parallel test binary) may hold /etc/passwd's lock: retry.
            let mut o = None;
            for _ in 0..20 {
                let r = run_bounded(
                    {
                        let mut c = Command::new("useradd");
                        c.args(["-M", "-s", "/usr/sbin/nologin", &name]);
                        c
                    },
                    Duration::from_secs(30),
                );
                let locked = String::from_utf8_lossy(&r.stderr).contains("lock");
                o = Some(r);
                if !locked {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            let o = o.expect("useradd ran");
            assert!(o.status.success(), "useradd {name}: {:?}", o);
            u.names.push(name.clone());
            let id = |flag: &str| -> u32 {
                let o = run_bounded(
                    {
                        let mut c = Command::new("id");
                        c.args([flag, &name]);
                        c
                    },
                    Duration::from_secs(10),
                );
                String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
            };
            ids.push((id("-u"), id("-g")));
        }
        (u, ids)
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        for n in &self.names {
            let mut c = Command::new("userdel");
            c.arg(n);
            let _ = run_bounded(c, Duration::from_secs(30));
        }
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Kills a process group (by its id) when dropped, so a failing test leaves nothing running.
pub struct KillGroup(pub i32);

impl Drop for KillGroup {
    fn drop(&mut self) {
        // SAFETY: a process group this test created.
        unsafe { libc::kill(-self.0, libc::SIGKILL) };
    }
}
