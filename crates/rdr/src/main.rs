//! `rdr`: map remote shares to local mount points and delete them with graded force, like
//! `net use` — plus the daemon that serves every user's connections.

mod backend;
mod cpus;
mod daemon;
mod proto;
mod report;

use clap::{Args, Parser, Subcommand};
use proto::{Force, Request, Response, socket_path, state_dir};
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  any other error (the message names the NTSTATUS)
  2  STATUS_FILES_OPEN: files are open on the connection
  3  STATUS_CONNECTION_IN_USE: the connection is in use through another view
  4  STATUS_CANCELLED: cancelled, or --timeout ran out before the server confirmed the
     teardown (the connection is deleted here; the message lists what the server may hold)
  5  STATUS_LOCK_NOT_GRANTED: a lock was busy and the caller asked not to wait

Environment: RDR_SOCKET (control socket, default /run/rdr/rdr.sock), RDR_PASSWORD,
RDR_STATE_DIR, RDR_ACTIMEO (attribute cache seconds, default 1), RDR_SMB_WRITE_BEHIND (bytes
a writer may have on their way to the server per open under a write-caching lease, default
16 MiB; 0: every write waits for the server), RDR_SMB_SIGNING (auto: sign when the server
requires it, as cifs.ko and smbclient do; required: sign every message), RDR_CPUS (the
daemon's CPUs: by default one, and every allowed CPU while data streams; a list such as 0-3
keeps it there; all: where it was started).";

#[derive(Parser, Debug)]
#[command(name = "rdr", version, about = "A network redirector for Linux: map shares, delete them with graded force", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List, make or delete connections (like `net use`).
    #[command(after_help = EXIT_CODES)]
    Use(UseArgs),
    /// Show open handles: path, access, share mode, locks, caching, dirty bytes.
    #[command(after_help = EXIT_CODES)]
    Files {
        /// A mount point or remote name; all your connections when omitted.
        target: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the daemon (started by `rdr use` when not running).
    Daemon {
        /// Stay in the foreground.
        #[arg(long)]
        foreground: bool,
    },
    /// Internal: the mount guard the daemon starts.
    #[command(hide = true)]
    Guard,
}

#[derive(Args, Debug)]
struct UseArgs {
    /// The mount point (or, with --delete, the mount point or remote name).
    target: Option<String>,
    /// //host[:port]/share, \\host\share, smb://[user@]host[:port]/share or local:/dir.
    remote: Option<String>,
    /// Remote user name.
    #[arg(long)]
    user: Option<String>,
    /// Read the password from this file (else RDR_PASSWORD, else a prompt on a terminal).
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// Server port.
    #[arg(long)]
    port: Option<u16>,
    /// Remember the connection across daemon restarts (password kept in your own 0600 file).
    #[arg(long)]
    persistent: bool,
    /// Attribute and name cache time in seconds for this mount (like cifs actimeo; default 1).
    #[arg(long, value_name = "SECS")]
    actimeo: Option<f64>,
    /// Delete the connection.
    #[arg(long)]
    delete: bool,
    /// With --delete: every connection of yours.
    #[arg(long, requires = "delete")]
    all: bool,
    /// With --delete: close open files (dirty data is written first; their I/O then fails).
    #[arg(long, short = 'y', requires = "delete", conflicts_with = "lazy")]
    force: bool,
    /// With --delete: detach now; the connection ends when its last file is closed.
    #[arg(long, requires = "delete")]
    lazy: bool,
    /// With --delete: show what a forced delete would close; change nothing.
    #[arg(long, requires = "delete")]
    dry_run: bool,
    /// With --delete: finish within this many seconds even if the server is gone.
    #[arg(long, requires = "delete", value_name = "SECS")]
    timeout: Option<f64>,
    /// With --delete: close the transport at once instead of letting it linger.
    #[arg(long, requires = "delete")]
    close_transport: bool,
    /// Print JSON (listing).
    #[arg(long)]
    json: bool,
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Daemon { foreground: true } => daemon::run_foreground(),
        Cmd::Daemon { foreground: false } => start_daemon_background(),
        Cmd::Guard => daemon::run_guard(),
        Cmd::Files { target, json } => {
            let target = target.map(|t| absolutize(&t));
            finish(call(&Request::Files { target, json }, false))
        }
        Cmd::Use(a) => cmd_use(a),
    };
    std::process::exit(code);
}

fn absolutize(t: &str) -> String {
    let p = Path::new(t);
    if p.is_relative()
        && !t.contains(':')
        && !t.starts_with("\\\\")
        && let Ok(cwd) = std::env::current_dir()
    {
        return cwd.join(p).display().to_string();
    }
    t.to_string()
}

/// A one-line error naming an NTSTATUS; the exit code follows the status (1 for most).
fn fail(msg: impl AsRef<str>) -> i32 {
    let m = msg.as_ref();
    if let Some(i) = m.find("STATUS_") {
        eprintln!("rdr: {m}");
        let name: String = m[i..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
            .collect();
        return proto::exit_code(&name);
    }
    if m.contains("daemon") {
        eprintln!("rdr: {m} (STATUS_REDIRECTOR_NOT_STARTED)");
    } else {
        eprintln!("rdr: {m} (STATUS_INVALID_PARAMETER)");
    }
    1
}

fn finish(r: Result<Response, String>) -> i32 {
    match r {
        Ok(r) => {
            print!("{}", r.stdout);
            eprint!("{}", r.stderr);
            let _ = std::io::stdout().flush();
            r.exit
        }
        Err(e) => fail(e),
    }
}

fn cmd_use(a: UseArgs) -> i32 {
    if a.delete {
        let force = if a.force {
            Force::Yes
        } else if a.lazy {
            Force::Lazy
        } else {
            Force::No
        };
        if a.remote.is_some() {
            return fail("--delete takes one TARGET (a mount point or remote name)");
        }
        if a.all == a.target.is_some() {
            return fail("--delete needs either a TARGET or --all");
        }
        let target = a.target.as_deref().map(absolutize);
        let mut req = Request::Delete {
            target: target.clone(),
            all: a.all,
            force,
            dry_run: a.dry_run,
            timeout_secs: a.timeout,
            close_transport: a.close_transport,
        };
        let wait = a.timeout.map(|t| Duration::from_secs_f64(t.max(0.0)));
        let r = match call_timeout(&req, false, wait) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        // Like `net use /d`: on a terminal, offer to force open files closed.
        if r.exit == 2
            && force == Force::No
            && !a.dry_run
            && std::io::stdin().is_terminal()
            && std::io::stderr().is_terminal()
        {
            eprint!("{}", r.stderr);
            eprint!("Do you want to continue this operation and force them closed? (Y/N) [N]: ");
            let _ = std::io::stderr().flush();
            let mut ans = String::new();
            let _ = std::io::stdin().read_line(&mut ans);
            if matches!(ans.trim(), "y" | "Y" | "yes" | "Yes") {
                if let Request::Delete { force, .. } = &mut req {
                    *force = Force::Yes;
                }
                return finish(call_timeout(&req, false, wait));
            }
            return r.exit;
        }
        return finish(Ok(r));
    }
    match (a.target, a.remote) {
        (None, None) => finish(call(&Request::List { json: a.json }, false)),
        (Some(_), None) => fail("use: give MOUNTPOINT REMOTE to connect, or TARGET --delete"),
        (None, Some(_)) => fail("use: missing MOUNTPOINT"),
        (Some(mp), Some(remote)) => {
            let mountpoint = PathBuf::from(absolutize(&mp));
            let password = match password(&a.password_file, &remote) {
                Ok(p) => p,
                Err(e) => return fail(e),
            };
            finish(call(
                &Request::Use {
                    mountpoint,
                    remote,
                    user: a.user,
                    password,
                    port: a.port,
                    persistent: a.persistent,
                    actimeo: a.actimeo,
                },
                true,
            ))
        }
    }
}

/// The password: --password-file, RDR_PASSWORD, or a prompt on a terminal (never argv).
fn password(file: &Option<PathBuf>, remote: &str) -> Result<Option<String>, String> {
    if let Some(f) = file {
        let s = std::fs::read_to_string(f)
            .map_err(|e| format!("{}: cannot read the password file: {e}", f.display()))?;
        return Ok(Some(s.trim_end_matches(['\n', '\r']).to_string()));
    }
    if let Ok(p) = std::env::var("RDR_PASSWORD") {
        return Ok(Some(p));
    }
    if remote.starts_with("local:") {
        return Ok(None);
    }
    if std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password(format!("Password for {remote}: "))
            .map_err(|e| format!("cannot read the password: {e}"))?;
        return Ok(Some(p));
    }
    Ok(None)
}

fn call(req: &Request, may_start: bool) -> Result<Response, String> {
    call_timeout(req, may_start, None)
}

/// Send one request; start the daemon first if allowed and needed (root only).
fn call_timeout(
    req: &Request,
    may_start: bool,
    timeout: Option<Duration>,
) -> Result<Response, String> {
    let sock = socket_path();
    let stream = match UnixStream::connect(&sock) {
        Ok(s) => s,
        Err(e) => {
            // SAFETY: geteuid has no preconditions.
            let root = unsafe { libc::geteuid() } == 0;
            if !may_start || !root {
                return Err(format!(
                    "the rdr daemon is not running ({}: {e}); start it as root with `rdr daemon` (STATUS_REDIRECTOR_NOT_STARTED)",
                    sock.display()
                ));
            }
            if start_daemon_background() != 0 {
                return Err("could not start the rdr daemon".into());
            }
            UnixStream::connect(&sock)
                .map_err(|e| format!("{}: cannot reach the daemon: {e}", sock.display()))?
        }
    };
    // The daemon bounds the delete itself; this is the backstop if it is wedged.
    let limit = timeout
        .map(|t| t + Duration::from_secs(5))
        .unwrap_or(Duration::from_secs(600));
    let _ = stream.set_read_timeout(Some(limit));
    let mut line = serde_json::to_string(req).map_err(|e| e.to_string())?;
    line.push('\n');
    (&stream)
        .write_all(line.as_bytes())
        .map_err(|e| format!("cannot talk to the daemon: {e}"))?;
    let mut resp = String::new();
    BufReader::new(&stream).read_line(&mut resp).map_err(|e| {
        if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut {
            "the daemon did not answer in time (STATUS_CANCELLED)".to_string()
        } else {
            format!("cannot read the daemon's answer: {e}")
        }
    })?;
    if resp.is_empty() {
        return Err("the daemon closed the connection without answering".into());
    }
    serde_json::from_str(&resp).map_err(|e| format!("bad answer from the daemon: {e}"))
}

/// Start `rdr daemon --foreground` in its own session, logging to the state directory, and
/// wait until its socket answers.
fn start_daemon_background() -> i32 {
    let sock = socket_path();
    if UnixStream::connect(&sock).is_ok() {
        return 0;
    }
    let state = state_dir();
    if let Err(e) = std::fs::create_dir_all(&state) {
        return fail(format!("{}: {e}", state.display()));
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(format!("cannot find the rdr binary: {e}")),
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state.join("daemon.log"));
    let (out, err) = match log.and_then(|f| Ok((f.try_clone()?, f))) {
        Ok((a, b)) => (Stdio::from(a), Stdio::from(b)),
        Err(_) => (Stdio::null(), Stdio::null()),
    };
    let mut cmd = Command::new(exe);
    cmd.args(["daemon", "--foreground"])
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start the daemon: {e}")),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if UnixStream::connect(&sock).is_ok() {
            return 0;
        }
        if let Ok(Some(st)) = child.try_wait() {
            return fail(format!(
                "the daemon exited at start ({st}); see {}",
                state.join("daemon.log").display()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    fail("the daemon did not start listening within 10 s")
}
