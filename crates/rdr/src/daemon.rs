//! The daemon: one per machine, serving every local user. A tokio runtime answers the control
//! socket (JSON lines; the caller's uid comes from SO_PEERCRED), owns the connections and their
//! FUSE mounts, remembers `--persistent` ones, and unmounts everything on SIGTERM/SIGINT.
//!
//! A child "guard" process (`rdr guard`) holds the list of live mount points; if the daemon dies
//! without saying goodbye (SIGKILL), the guard detaches them, so no dead "Transport endpoint is
//! not connected" mount is left. The next daemon start also repairs any it finds in its state.

use crate::backend::{LocalBackend, Remote, SmbBackend};
use crate::proto::{Force, Request, Response, socket_path, state_dir};
use crate::report;
use rdr_core::inventory::{FinalizeOutcome, Inventory};
use rdr_core::minirdr::{Credentials, Secret};
use rdr_core::v_net_root::VNetRoot;
use rdr_core::{ForceLevel, NtStatus, Rdbss, RxContext};
use rdr_fuse::{Change, ChangeHook, FsOptions, MountConfig, MountHandle};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// One connection: a view (VNetRoot) mounted at a local path for one uid.
pub struct Conn {
    id: u64,
    uid: u32,
    gid: u32,
    mountpoint: PathBuf,
    remote: String,
    /// What makes two connections the same share: the core's share key (server, port and
    /// share, without case) for SMB, the directory for local.
    share_key: String,
    remote_arg: String,
    user: Option<String>,
    port: Option<u16>,
    persistent: bool,
    rdbss: Rdbss,
    v: Arc<VNetRoot>,
    server: String,
    mount: MountHandle,
}

/// A remembered `--persistent` connection (no password here).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct PersistEntry {
    uid: u32,
    gid: u32,
    mountpoint: PathBuf,
    remote: String,
    user: Option<String>,
    port: Option<u16>,
    #[serde(default)]
    actimeo: Option<f64>,
}

struct Guard {
    child: Child,
    stdin: ChildStdin,
}

/// The daemon's state.
pub struct Daemon {
    conns: parking_lot::Mutex<Vec<Arc<Conn>>>,
    /// Deleted connections whose mount left the namespace but still serves open files (after
    /// `--lazy`, or `--force` with files still held): shown as "Detaching" until the kernel
    /// releases the last one, so a lazy unmount is never a limbo nobody can see.
    detached: parking_lot::Mutex<Vec<Arc<Conn>>>,
    local: LocalBackend,
    smb: SmbBackend,
    state: PathBuf,
    guard: parking_lot::Mutex<Option<Guard>>,
    ops: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
    rt: tokio::runtime::Handle,
    attr_ttl: Duration,
    /// One thread drops other mounts' caches after a change through a mount, in order; a
    /// mount stuck on a dead server delays the queue, it does not pile up threads.
    invalidator: std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>>,
    /// Where the daemon's threads run; mounts tell it when data streams.
    placement: Arc<crate::cpus::Placement>,
}

/// The thread behind [`Daemon::invalidator`]; it ends with the daemon (the sender dropped).
fn start_invalidator() -> std::sync::mpsc::Sender<Box<dyn FnOnce() + Send>> {
    let (tx, rx) = std::sync::mpsc::channel::<Box<dyn FnOnce() + Send>>();
    let spawned = std::thread::Builder::new()
        .name("rdr-invalidate".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                job();
            }
        });
    if let Err(e) = spawned {
        eprintln!("rdr: cannot start the invalidation thread: {e}");
    }
    tx
}

/// How often connections whose server went away try to reconnect in the background.
const RECONNECT_EVERY: Duration = Duration::from_secs(5);

fn status_name(s: NtStatus) -> String {
    s.name()
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:#010x}", s.0))
}

/// Run the daemon in the foreground until SIGTERM/SIGINT.
pub fn run_foreground() -> i32 {
    // Before any thread exists, so that every thread of the daemon inherits it.
    let placement = match crate::cpus::Placement::from_env() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rdr: {e}");
            return 1;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rdr: cannot start the runtime: {e}");
            return 1;
        }
    };
    rt.block_on(async_main(placement))
}

async fn async_main(placement: Arc<crate::cpus::Placement>) -> i32 {
    let sock = socket_path();
    let state = state_dir();
    if let Err(e) = std::fs::create_dir_all(&state) {
        eprintln!(
            "rdr: {}: cannot create the state directory: {e}",
            state.display()
        );
        return 1;
    }
    if let Some(dir) = sock.parent()
        && !dir.exists()
    {
        let _ = std::fs::create_dir_all(dir);
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    }
    if sock.exists() {
        if UnixStream::connect(&sock).await.is_ok() {
            eprintln!("rdr: a daemon already listens on {}", sock.display());
            return 1;
        }
        let _ = std::fs::remove_file(&sock);
    }
    let listener = match UnixListener::bind(&sock) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("rdr: {}: cannot listen: {e}", sock.display());
            return 1;
        }
    };
    // Every user may connect; the daemon checks each caller's uid.
    let _ = std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666));
    let _ = std::fs::write(
        state.join("daemon.pid"),
        format!("{}\n", std::process::id()),
    );

    let attr_ttl = std::env::var("RDR_ACTIMEO")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(1));
    let d = Arc::new(Daemon {
        conns: parking_lot::Mutex::new(Vec::new()),
        detached: parking_lot::Mutex::new(Vec::new()),
        local: LocalBackend::new(),
        smb: SmbBackend::new(),
        state: state.clone(),
        guard: parking_lot::Mutex::new(None),
        ops: tokio::sync::Mutex::new(()),
        next_id: AtomicU64::new(1),
        rt: tokio::runtime::Handle::current(),
        attr_ttl,
        invalidator: start_invalidator(),
        placement: placement.clone(),
    });
    placement.start();
    // A break that takes read caching away drops those files' kernel pages on every mount
    // (a path unknown to a mount, or a local mount, costs nothing).
    {
        let w = Arc::downgrade(&d);
        d.smb.on_read_caching_lost(move |paths| {
            let Some(d) = w.upgrade() else { return };
            let mut all: Vec<Arc<Conn>> = d.conns.lock().clone();
            all.extend(d.detached.lock().iter().cloned());
            for c in all {
                c.mount.invalidate_paths(&paths);
            }
        });
    }
    // Repair mounts a killed daemon left behind, then start the guard and restore persistent
    // connections.
    let st = state.clone();
    let _ = tokio::task::spawn_blocking(move || repair_stale_mounts(&st)).await;
    d.start_guard();
    d.restore_persistent().await;
    d.start_reconnector();
    eprintln!(
        "rdr: daemon {} listening on {}, on CPUs {} ({})",
        std::process::id(),
        sock.display(),
        placement.describe(),
        crate::cpus::ENV
    );

    let reaper = d.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            reaper.reap_ended().await;
        }
    });

    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rdr: cannot handle SIGTERM: {e}");
            return 1;
        }
    };
    loop {
        tokio::select! {
            a = listener.accept() => {
                if let Ok((stream, _)) = a {
                    let d = d.clone();
                    tokio::spawn(async move { d.serve(stream).await });
                }
            }
            _ = term.recv() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    eprintln!("rdr: shutting down: unmounting every connection");
    d.shutdown().await;
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(state.join("daemon.pid"));
    0
}

/// Detach every mount point listed in the state file that no longer answers (ENOTCONN).
fn repair_stale_mounts(state: &Path) {
    let Ok(s) = std::fs::read_to_string(state.join("mounts.json")) else {
        return;
    };
    let Ok(list) = serde_json::from_str::<Vec<PathBuf>>(&s) else {
        return;
    };
    for p in list {
        if rdr_fuse::is_dead_mount(&p) {
            match rdr_fuse::detach_path(&p) {
                Ok(()) => eprintln!("rdr: {}: removed a dead mount", p.display()),
                Err(e) => eprintln!("rdr: {}: cannot remove a dead mount: {e}", p.display()),
            }
        }
    }
    let _ = std::fs::remove_file(state.join("mounts.json"));
}

fn access_ok_dir_for(uid: u32, dir: &Path) -> Result<(), String> {
    if uid == 0 {
        return Ok(());
    }
    let m = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if m.uid() != uid {
        return Err(format!(
            "{}: not owned by you (uid {uid}); you may only use your own directories (STATUS_ACCESS_DENIED)",
            dir.display()
        ));
    }
    Ok(())
}

impl Daemon {
    /// Every few seconds, reconnect the connections whose server went away, so that their
    /// status recovers (Disconnected → OK) when the server is back, without waiting for a use.
    /// A server still away refuses at once; each attempt is bounded.
    fn start_reconnector(self: &Arc<Self>) {
        let w = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RECONNECT_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(d) = w.upgrade() else { return };
                let lost: Vec<Arc<Conn>> = d
                    .conns
                    .lock()
                    .iter()
                    .filter(|c| !c.v.is_finalized() && c.rdbss.transport_lost(&c.v))
                    .cloned()
                    .collect();
                drop(d);
                for c in lost {
                    let ctx = RxContext::new().with_timeout(RECONNECT_EVERY);
                    let _ = c.rdbss.reconnect(&c.v, &ctx).await;
                }
            }
        });
    }

    fn start_guard(&self) {
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("rdr: cannot start the mount guard: {e}");
                return;
            }
        };
        let mut cmd = Command::new(exe);
        cmd.arg("guard")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        match cmd.spawn() {
            Ok(mut child) => {
                let _ = std::fs::write(self.state.join("guard.pid"), format!("{}\n", child.id()));
                if let Some(stdin) = child.stdin.take() {
                    *self.guard.lock() = Some(Guard { child, stdin });
                }
            }
            Err(e) => eprintln!("rdr: cannot start the mount guard: {e}"),
        }
    }

    fn guard_say(&self, line: &str) {
        if let Some(g) = self.guard.lock().as_mut() {
            let _ = writeln!(g.stdin, "{line}");
            let _ = g.stdin.flush();
        }
    }

    fn save_mounts(&self) {
        let list: Vec<PathBuf> = self
            .conns
            .lock()
            .iter()
            .map(|c| c.mountpoint.clone())
            .collect();
        if let Ok(s) = serde_json::to_string(&list) {
            let _ = std::fs::write(self.state.join("mounts.json"), s);
        }
    }

    fn load_persistent(&self) -> Vec<PersistEntry> {
        std::fs::read_to_string(self.state.join("persistent.json"))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default()
    }

    fn save_persistent(&self, list: &[PersistEntry]) {
        if let Ok(s) = serde_json::to_string_pretty(list) {
            let _ = std::fs::write(self.state.join("persistent.json"), s);
        }
    }

    fn cred_file(&self, uid: u32) -> PathBuf {
        self.state.join("credentials").join(format!("{uid}.json"))
    }

    /// Store a password for a persistent connection in the user's own 0600 file.
    fn save_password(&self, uid: u32, gid: u32, remote: &str, password: &str) {
        let f = self.cred_file(uid);
        if let Some(dir) = f.parent() {
            let _ = std::fs::create_dir_all(dir);
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711));
        }
        let mut map: HashMap<String, String> = std::fs::read_to_string(&f)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default();
        map.insert(remote.to_string(), password.to_string());
        let Ok(s) = serde_json::to_string(&map) else {
            return;
        };
        let tmp = f.with_extension("tmp");
        let ok = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode_0600()
            .open(&tmp)
            .and_then(|mut h| h.write_all(s.as_bytes()));
        if ok.is_ok() {
            let _ = std::os::unix::fs::chown(&tmp, Some(uid), Some(gid));
            let _ = std::fs::rename(&tmp, &f);
        }
    }

    fn load_password(&self, uid: u32, remote: &str) -> Option<String> {
        let map: HashMap<String, String> = std::fs::read_to_string(self.cred_file(uid))
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())?;
        map.get(remote).cloned()
    }

    async fn restore_persistent(self: &Arc<Self>) {
        for e in self.load_persistent() {
            let password = self.load_password(e.uid, &e.remote);
            let r = self
                .do_use(
                    e.uid,
                    e.gid,
                    e.mountpoint.clone(),
                    e.remote.clone(),
                    e.user.clone(),
                    password,
                    e.port,
                    e.actimeo,
                    true,
                    false,
                )
                .await;
            if r.exit == 0 {
                eprintln!("rdr: restored {} on {}", e.remote, e.mountpoint.display());
            } else {
                eprint!("rdr: could not restore {}: {}", e.remote, r.stderr);
            }
        }
    }

    async fn serve(self: Arc<Self>, stream: UnixStream) {
        let cred = match stream.peer_cred() {
            Ok(c) => c,
            Err(_) => return,
        };
        let (uid, gid) = (cred.uid(), cred.gid());
        let (rd, mut wr) = stream.into_split();
        let mut lines = BufReader::new(rd).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let resp = match serde_json::from_str::<Request>(&line) {
                Ok(req) => self.handle(uid, gid, req).await,
                Err(e) => Response::err(
                    format!("bad request: {e}"),
                    Some("STATUS_INVALID_PARAMETER"),
                ),
            };
            let Ok(mut s) = serde_json::to_string(&resp) else {
                return;
            };
            s.push('\n');
            if wr.write_all(s.as_bytes()).await.is_err() {
                return;
            }
        }
    }

    async fn handle(self: &Arc<Self>, uid: u32, gid: u32, req: Request) -> Response {
        match req {
            Request::Ping => Response::ok(""),
            Request::List { json } => self.list(uid, json),
            Request::Use {
                mountpoint,
                remote,
                user,
                password,
                port,
                persistent,
                actimeo,
            } => {
                self.do_use(
                    uid, gid, mountpoint, remote, user, password, port, actimeo, persistent, true,
                )
                .await
            }
            Request::Delete {
                target,
                all,
                force,
                dry_run,
                timeout_secs,
                close_transport,
            } => {
                let timeout = timeout_secs
                    .filter(|t| t.is_finite() && *t >= 0.0)
                    .map(Duration::from_secs_f64);
                if all {
                    self.delete_all(uid, force, dry_run, timeout, close_transport)
                        .await
                } else {
                    match target {
                        Some(t) => {
                            self.delete(uid, &t, force, dry_run, timeout, close_transport)
                                .await
                        }
                        None => Response::err(
                            "--delete needs a TARGET or --all",
                            Some("STATUS_INVALID_PARAMETER"),
                        ),
                    }
                }
            }
            Request::Files { target, json } => self.files(uid, target.as_deref(), json),
        }
    }

    fn visible(&self, uid: u32) -> Vec<Arc<Conn>> {
        self.conns
            .lock()
            .iter()
            .filter(|c| uid == 0 || c.uid == uid)
            .cloned()
            .collect()
    }

    fn visible_detached(&self, uid: u32) -> Vec<Arc<Conn>> {
        self.detached
            .lock()
            .iter()
            .filter(|c| (uid == 0 || c.uid == uid) && !c.mount.has_ended())
            .cloned()
            .collect()
    }

    /// Find the caller's connection by mount point or remote name.
    fn find(&self, uid: u32, target: &str) -> Option<Arc<Conn>> {
        find_in(&self.visible(uid), target)
    }

    /// Find one of the caller's detaching connections.
    fn find_detached(&self, uid: u32, target: &str) -> Option<Arc<Conn>> {
        find_in(&self.visible_detached(uid), target)
    }

    fn list(&self, uid: u32, json: bool) -> Response {
        let mut conns: Vec<(Arc<Conn>, &'static str)> = self
            .visible(uid)
            .into_iter()
            .map(|c| {
                let st = conn_status(&c);
                (c, st)
            })
            .collect();
        conns.extend(
            self.visible_detached(uid)
                .into_iter()
                .map(|c| (c, "Detaching")),
        );
        list_response(&conns, json)
    }
}

/// The connection among `conns` with this mount point or remote name.
fn find_in(conns: &[Arc<Conn>], target: &str) -> Option<Arc<Conn>> {
    let tp = Path::new(target);
    let canon = if tp.is_absolute() {
        Some(tp.to_path_buf())
    } else {
        std::env::current_dir().ok().map(|d| d.join(tp))
    };
    let norm = |s: &str| s.replace('/', "\\").to_lowercase();
    conns
        .iter()
        .find(|c| canon.as_deref() == Some(c.mountpoint.as_path()))
        .or_else(|| {
            conns.iter().find(|c| {
                c.remote == target || c.remote_arg == target || norm(&c.remote) == norm(target)
            })
        })
        .cloned()
}

/// `rdr use` (table or JSON) for connections with their status.
fn list_response(conns: &[(Arc<Conn>, &'static str)], json: bool) -> Response {
    if json {
        let v: Vec<serde_json::Value> = conns
            .iter()
            .map(|(c, status)| {
                serde_json::json!({
                    "status": status,
                    "local": c.mountpoint,
                    "remote": c.remote,
                    "user": c.user,
                    "uid": c.uid,
                    "gid": c.gid,
                    "port": c.port,
                    "opens": c.mount.open_handles(),
                    "reconnects": c.rdbss.reconnects(&c.v),
                    "persistent": c.persistent,
                    "last_error": c.mount.last_error().map(|l| serde_json::json!({
                        "at": rdr_fuse::fs::epoch_secs(l.at),
                        "status": status_name(l.status),
                        "errno": l.errno,
                        "message": l.message,
                    })),
                })
            })
            .collect();
        return Response::ok(format!(
            "{}\n",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        ));
    }
    if conns.is_empty() {
        return Response::ok("There are no entries in the list.\n");
    }
    let rows: Vec<Vec<String>> = conns
        .iter()
        .map(|(c, status)| {
            vec![
                status.to_string(),
                c.mountpoint.display().to_string(),
                c.remote.clone(),
                c.user.clone().unwrap_or_else(|| "-".into()),
                c.mount.open_handles().to_string(),
            ]
        })
        .collect();
    Response::ok(report::table(
        &["Status", "Local", "Remote", "User", "Opens"],
        &rows,
    ))
}

impl Daemon {
    fn files(&self, uid: u32, target: Option<&str>, json: bool) -> Response {
        let conns = match target {
            Some(t) => match self.find(uid, t).or_else(|| self.find_detached(uid, t)) {
                Some(c) => vec![c],
                None => return unknown_target(t),
            },
            None => {
                let mut v = self.visible(uid);
                v.extend(self.visible_detached(uid));
                v
            }
        };
        let invs: Vec<(Arc<Conn>, Inventory)> = conns
            .into_iter()
            .map(|c| {
                let inv = c.rdbss.inventory(&c.v);
                (c, inv)
            })
            .collect();
        if json {
            let v: Vec<serde_json::Value> = invs
                .iter()
                .map(|(c, inv)| report::inventory_json(&c.mountpoint, &c.remote, inv))
                .collect();
            return Response::ok(format!(
                "{}\n",
                serde_json::to_string_pretty(&v).unwrap_or_default()
            ));
        }
        let mut rows = Vec::new();
        for (c, inv) in &invs {
            for h in &inv.handles {
                rows.push(report::handle_row(&c.mountpoint, h));
            }
        }
        if rows.is_empty() {
            return Response::ok("No files are open.\n");
        }
        Response::ok(report::table(
            &["Path", "Access", "Share", "Locks", "Caching", "Dirty"],
            &rows,
        ))
    }

    /// What connection `id` tells of the changes made through its mount: the other mounts of
    /// the same share (other users' views, or a detached one still serving) drop what they
    /// cached of those paths. The server never breaks between two views of one client
    /// (caching-design §5.10); the invalidation runs on the daemon's invalidation thread,
    /// after the reply.
    fn change_hook(self: &Arc<Self>, id: u64, share_key: &str) -> ChangeHook {
        let w = Arc::downgrade(self);
        let key = share_key.to_string();
        // Data changes already queued for the other mounts (written on every write: one
        // queued invalidation per path covers the writes until it runs).
        let pending: Arc<parking_lot::Mutex<std::collections::HashSet<String>>> = Arc::default();
        ChangeHook(Arc::new(move |changes: Vec<Change>| {
            let Some(d) = w.upgrade() else { return };
            let is_other = |c: &&Arc<Conn>| c.id != id && c.share_key == key;
            let mut others: Vec<Arc<Conn>> =
                d.conns.lock().iter().filter(is_other).cloned().collect();
            others.extend(d.detached.lock().iter().filter(is_other).cloned());
            if others.is_empty() {
                return;
            }
            let changes: Vec<Change> = {
                let mut p = pending.lock();
                changes
                    .into_iter()
                    .filter(|c| match c {
                        Change::Data(path) => p.insert(path.clone()),
                        Change::Name(_) => true,
                    })
                    .collect()
            };
            if changes.is_empty() {
                return;
            }
            let pending = pending.clone();
            let _ = d.invalidator.send(Box::new(move || {
                {
                    let mut p = pending.lock();
                    for c in &changes {
                        if let Change::Data(path) = c {
                            p.remove(path);
                        }
                    }
                }
                for c in others {
                    c.mount.changed_elsewhere(&changes);
                }
            }));
        }))
    }

    #[allow(clippy::too_many_arguments)]
    async fn do_use(
        self: &Arc<Self>,
        uid: u32,
        gid: u32,
        mountpoint: PathBuf,
        remote_arg: String,
        user: Option<String>,
        password: Option<String>,
        port: Option<u16>,
        actimeo: Option<f64>,
        persistent: bool,
        remember: bool,
    ) -> Response {
        let _g = self.ops.lock().await;
        let remote = match Remote::parse(&remote_arg) {
            Ok(r) => r,
            Err(e) => return Response::err(e, Some("STATUS_OBJECT_NAME_INVALID")),
        };
        if !mountpoint.is_absolute() {
            return Response::err(
                format!(
                    "{}: the mount point must be an absolute path",
                    mountpoint.display()
                ),
                Some("STATUS_OBJECT_PATH_INVALID"),
            );
        }
        let smb_name = match &remote {
            Remote::Local(_) => None,
            Remote::Smb(s) => match SmbBackend::remote_name(s, port, user.as_deref()) {
                Ok(n) => Some(n),
                Err(e) => return Response::err(e, Some("STATUS_OBJECT_NAME_INVALID")),
            },
        };
        let user = match &smb_name {
            Some(n) => n.user.clone(),
            None => user,
        };
        if smb_name.is_some() && user.is_none() {
            return Response::err(
                format!("{remote_arg}: no user name; give --user NAME or smb://NAME@host/share"),
                Some("STATUS_LOGON_FAILURE"),
            );
        }
        let display = remote.display();
        let share_key = smb_name
            .as_ref()
            .map_or_else(|| display.clone(), |n| n.key());
        if let Some(c) = self
            .conns
            .lock()
            .iter()
            .find(|c| c.mountpoint == mountpoint)
        {
            return Response::err(
                format!("{}: already mounted ({})", mountpoint.display(), c.remote),
                Some("STATUS_OBJECT_NAME_COLLISION"),
            );
        }
        // One view per user and share: a second mount of it would share (and be torn down
        // with) the first.
        if let Some(c) = self
            .conns
            .lock()
            .iter()
            .find(|c| c.uid == uid && c.share_key == share_key)
        {
            return Response::err(
                format!(
                    "{display}: already connected at {}; delete that connection first",
                    c.mountpoint.display()
                ),
                Some("STATUS_CONNECTION_ACTIVE"),
            );
        }
        // Check the directory and the mount point off the runtime (they may be on mounts).
        let mp = mountpoint.clone();
        let d2 = match &remote {
            Remote::Local(dir) => Some(dir.clone()),
            Remote::Smb(_) => None,
        };
        let checked =
            tokio::task::spawn_blocking(move || prepare_mountpoint(uid, gid, &mp, d2.as_deref()))
                .await
                .unwrap_or_else(|e| Err(format!("internal error: {e}")));
        let (created, mp_fd, dir) = match checked {
            Ok(p) => (p.created, p.fd, p.dir),
            Err(e) => return Response::err(e, Some("STATUS_OBJECT_PATH_INVALID")),
        };
        let undo = |created: bool, mp: &Path| {
            if created {
                let _ = std::fs::remove_dir(mp);
            }
        };
        let (rname, rdbss) = match (&smb_name, dir) {
            (Some(n), _) => (n.clone(), self.smb.rdbss.clone()),
            (None, Some(dir)) => match self.local.remote_for(&dir) {
                Ok(n) => (n, self.local.rdbss.clone()),
                Err(e) => {
                    undo(created, &mountpoint);
                    return Response::err(e, Some("STATUS_BAD_NETWORK_NAME"));
                }
            },
            (None, None) => {
                undo(created, &mountpoint);
                return Response::err("internal error: no directory", None);
            }
        };
        let creds = Credentials {
            logon_id: uid,
            user: user.clone(),
            domain: None,
            password: password.clone().map(Secret::new),
        };
        let ctx = RxContext::new().with_timeout(Duration::from_secs(60));
        let v = match rdbss.add_connection(&rname, creds, &ctx).await {
            Ok(v) => v,
            Err(e) => {
                undo(created, &mountpoint);
                let st = status_name(e.nt_status());
                let msg = e.to_string();
                let msg = if msg.contains(&st) {
                    format!("{display}: {msg}")
                } else {
                    format!("{display}: {msg} ({st})")
                };
                return Response::err(msg, Some(&st));
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let cfg = MountConfig {
            fs: FsOptions {
                attr_ttl: actimeo
                    .filter(|t| t.is_finite() && *t >= 0.0 && *t <= 86_400.0)
                    .map(Duration::from_secs_f64)
                    .unwrap_or(self.attr_ttl),
                owner_uid: uid,
                owner_gid: gid,
                on_change: Some(self.change_hook(id, &share_key)),
                on_bulk: Some({
                    let p = self.placement.clone();
                    rdr_fuse::BulkHook(Arc::new(move || p.bulk()))
                }),
            },
            fsname: format!("rdr:{display}"),
            n_threads: rdr_fuse::mount::DEFAULT_READERS,
            read_ahead_kb: Some(4096),
        };
        let rt = self.rt.clone();
        let (r2, v2) = (rdbss.clone(), v.clone());
        let mounted = tokio::task::spawn_blocking(move || {
            rdr_fuse::mount::mount_fd(r2, v2, mp_fd.as_fd(), &cfg, rt)
        })
        .await;
        let mount = match mounted
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
        {
            Ok(m) => m,
            Err(msg) => {
                // Nothing half-made: drop the view again.
                let _ = rdbss
                    .finalize_connection(
                        &v.net_root(),
                        Some(&v),
                        ForceLevel::Yes,
                        &RxContext::new(),
                    )
                    .await;
                undo(created, &mountpoint);
                return Response::err(
                    format!("{}: cannot mount: {msg}", mountpoint.display()),
                    Some("STATUS_UNSUCCESSFUL"),
                );
            }
        };
        let server = rname.server.clone();
        // Where it really is (symlinks in the parents resolved): used to find and unmount it.
        let mountpoint = mount.mountpoint().to_path_buf();
        let conn = Arc::new(Conn {
            id,
            uid,
            gid,
            mountpoint: mountpoint.clone(),
            remote: display.clone(),
            share_key,
            remote_arg: remote_arg.clone(),
            user: user.clone(),
            port,
            persistent,
            rdbss,
            v,
            server,
            mount,
        });
        self.conns.lock().push(conn);
        self.guard_say(&format!("+{}", mountpoint.display()));
        self.save_mounts();
        if persistent && remember {
            let mut list = self.load_persistent();
            list.retain(|e| !(e.uid == uid && e.mountpoint == mountpoint));
            list.push(PersistEntry {
                uid,
                gid,
                mountpoint: mountpoint.clone(),
                remote: remote_arg.clone(),
                user,
                port,
                actimeo,
            });
            self.save_persistent(&list);
            if let Some(p) = &password {
                self.save_password(uid, gid, &remote_arg, p);
            }
        }
        Response::ok(format!(
            "{} is now connected to {}.\n",
            mountpoint.display(),
            display
        ))
    }

    /// Remove a connection from the table (and the guard's list, and persistence).
    fn forget_conn(&self, c: &Conn) {
        self.conns.lock().retain(|x| x.id != c.id);
        self.guard_say(&format!("-{}", c.mountpoint.display()));
        self.save_mounts();
        if c.persistent {
            let mut list = self.load_persistent();
            list.retain(|e| !(e.uid == c.uid && e.mountpoint == c.mountpoint));
            self.save_persistent(&list);
        }
    }

    async fn delete_all(
        self: &Arc<Self>,
        uid: u32,
        force: Force,
        dry_run: bool,
        timeout: Option<Duration>,
        close_transport: bool,
    ) -> Response {
        let conns = self.visible(uid);
        if conns.is_empty() {
            return Response::ok("There are no entries in the list.\n");
        }
        let mut out = Response::default();
        for c in conns {
            let r = self
                .delete_conn(c, force, dry_run, timeout, close_transport)
                .await;
            out.stdout.push_str(&r.stdout);
            out.stderr.push_str(&r.stderr);
            if out.exit == 0 {
                out.exit = r.exit;
                out.status = r.status;
            }
        }
        out
    }

    async fn delete(
        self: &Arc<Self>,
        uid: u32,
        target: &str,
        force: Force,
        dry_run: bool,
        timeout: Option<Duration>,
        close_transport: bool,
    ) -> Response {
        match self.find(uid, target) {
            Some(c) => {
                self.delete_conn(c, force, dry_run, timeout, close_transport)
                    .await
            }
            None => match self.find_detached(uid, target) {
                Some(c) => self.delete_detached(c, force, dry_run, timeout).await,
                None => unknown_target(target),
            },
        }
    }

    async fn delete_conn(
        self: &Arc<Self>,
        c: Arc<Conn>,
        force: Force,
        dry_run: bool,
        timeout: Option<Duration>,
        close_transport: bool,
    ) -> Response {
        let mp = c.mountpoint.display().to_string();
        if dry_run {
            let inv = c.rdbss.inventory(&c.v);
            return Response::ok(report::dry_run(&c.mountpoint, &inv));
        }
        let _g = self.ops.lock().await;
        if !self.conns.lock().iter().any(|x| x.id == c.id) {
            return unknown_target(&mp);
        }
        let started = Instant::now();
        let mut ctx = RxContext::new();
        if let Some(t) = timeout {
            ctx = ctx.with_timeout(t);
        }
        let level = match force {
            Force::No => ForceLevel::No,
            Force::Yes => ForceLevel::Yes,
            Force::Lazy => ForceLevel::DetachOnClose,
        };
        let net_root = c.v.net_root();
        let fin = async {
            let mut tries = 0;
            loop {
                let o = c
                    .rdbss
                    .finalize_connection(&net_root, Some(&c.v), level, &ctx)
                    .await;
                // A close(2) just before the delete may still have its RELEASE in flight:
                // give the kernel a moment before reporting files open.
                if level == ForceLevel::No
                    && o.status == NtStatus::STATUS_FILES_OPEN
                    && tries < 6
                    && !ctx.is_cancelled()
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                break o;
            }
        };
        let outcome: FinalizeOutcome = match timeout {
            Some(t) => match tokio::time::timeout(t + Duration::from_millis(250), fin).await {
                Ok(o) => o,
                Err(_) => FinalizeOutcome {
                    status: NtStatus::STATUS_CANCELLED,
                    open_handles: c.rdbss.inventory(&c.v).handles,
                    cancelled: vec![],
                    unwritten: vec![],
                    view_removed: false,
                    unconfirmed: vec![],
                },
            },
            None => fin.await,
        };
        let status = outcome.status;
        match (force, status) {
            (Force::Lazy, _)
                if status != NtStatus::STATUS_CANCELLED
                    && status != NtStatus::STATUS_LOCK_NOT_GRANTED =>
            {
                let m = c.clone();
                let det = tokio::task::spawn_blocking(move || m.mount.detach()).await;
                if let Ok(Err(e)) = det {
                    return Response::err(
                        format!("{mp}: cannot detach: {e}"),
                        Some("STATUS_UNSUCCESSFUL"),
                    );
                }
                self.forget_conn(&c);
                if !c.mount.has_ended() {
                    self.detached.lock().push(c.clone());
                }
                self.after_delete(&c, close_transport).await;
                Response::ok(report::lazy(&c.mountpoint, &outcome))
            }
            (_, NtStatus::STATUS_SUCCESS) => {
                let m = c.clone();
                let forced = force == Force::Yes;
                // Within what is left of --timeout: the delete as a whole is bounded.
                let linger = timeout.map_or(Duration::from_secs(2), |t| {
                    t.saturating_sub(started.elapsed())
                        .min(Duration::from_secs(2))
                });
                let _ = tokio::task::spawn_blocking(move || {
                    if forced {
                        // Orphaned handles must not keep reading cached pages.
                        m.mount.invalidate_all();
                    }
                    if m.mount.unmount().is_err() {
                        // Busy only by a working directory or a mapping now: the view is
                        // gone, so take the mount out of the namespace.
                        let _ = m.mount.detach();
                    }
                    m.mount.wait_ended(linger)
                })
                .await;
                self.forget_conn(&c);
                if !c.mount.has_ended() {
                    // Detached with files still held (orphaned): visible until released.
                    self.detached.lock().push(c.clone());
                }
                self.after_delete(&c, close_transport).await;
                let done = report::deleted(&c.mountpoint, &outcome, force == Force::Yes);
                if outcome.unconfirmed.is_empty() {
                    return Response::ok(done);
                }
                // Deleted here, but the server never confirmed: not a clean finish.
                let st = status_name(NtStatus::STATUS_CANCELLED);
                let secs = started.elapsed().as_secs_f64();
                let mut r = Response::err(
                    report::unconfirmed(&c.mountpoint, &outcome, secs, &st),
                    Some(&st),
                );
                r.stdout = done;
                r
            }
            (_, NtStatus::STATUS_FILES_OPEN) | (_, NtStatus::STATUS_CONNECTION_IN_USE) => {
                let st = status_name(status);
                Response::err(report::files_open(&c.mountpoint, &outcome, &st), Some(&st))
            }
            (_, NtStatus::STATUS_CANCELLED) => {
                let st = status_name(status);
                let secs = started.elapsed().as_secs_f64();
                Response::err(
                    report::cancelled(&c.mountpoint, &outcome, secs, &st),
                    Some(&st),
                )
            }
            _ => {
                let st = status_name(status);
                Response::err(format!("{mp}: delete failed ({st})"), Some(&st))
            }
        }
    }

    /// A delete of a connection that is already detaching: `--force` closes what is still
    /// open (orphaned, EIO); anything else reports the files still open.
    async fn delete_detached(
        self: &Arc<Self>,
        c: Arc<Conn>,
        force: Force,
        dry_run: bool,
        timeout: Option<Duration>,
    ) -> Response {
        let inv = c.rdbss.inventory(&c.v);
        if dry_run {
            return Response::ok(report::dry_run(&c.mountpoint, &inv));
        }
        if force != Force::Yes {
            let o = FinalizeOutcome {
                status: NtStatus::STATUS_FILES_OPEN,
                open_handles: inv.handles,
                cancelled: vec![],
                unwritten: vec![],
                view_removed: true,
                unconfirmed: vec![],
            };
            let msg = format!(
                "{} (detaching; --force closes them)",
                report::files_open(&c.mountpoint, &o, "STATUS_FILES_OPEN")
            );
            return Response::err(msg, Some("STATUS_FILES_OPEN"));
        }
        let _g = self.ops.lock().await;
        let mut ctx = RxContext::new();
        if let Some(t) = timeout {
            ctx = ctx.with_timeout(t);
        }
        let o = c
            .rdbss
            .finalize_connection(&c.v.net_root(), Some(&c.v), ForceLevel::Yes, &ctx)
            .await;
        let m = c.clone();
        let _ = tokio::task::spawn_blocking(move || m.mount.invalidate_all()).await;
        if o.status == NtStatus::STATUS_SUCCESS {
            Response::ok(report::deleted(&c.mountpoint, &o, true))
        } else {
            let st = status_name(o.status);
            Response::err(report::files_open(&c.mountpoint, &o, &st), Some(&st))
        }
    }

    async fn after_delete(&self, c: &Conn, close_transport: bool) {
        if close_transport {
            c.rdbss.close_transport(&c.server).await;
        }
    }

    /// Connections whose mount went away underneath (someone ran umount): finalize them.
    async fn reap_ended(self: &Arc<Self>) {
        self.detached.lock().retain(|c| !c.mount.has_ended());
        // A delete in progress unmounts on purpose; look again later.
        let Ok(_g) = self.ops.try_lock() else {
            return;
        };
        let ended: Vec<Arc<Conn>> = self
            .conns
            .lock()
            .iter()
            .filter(|c| c.mount.has_ended())
            .cloned()
            .collect();
        for c in ended {
            let _ = c
                .rdbss
                .finalize_connection(
                    &c.v.net_root(),
                    Some(&c.v),
                    ForceLevel::Yes,
                    &RxContext::new().with_timeout(Duration::from_secs(30)),
                )
                .await;
            self.forget_conn(&c);
            eprintln!(
                "rdr: {}: unmounted from outside; connection closed",
                c.mountpoint.display()
            );
        }
    }

    /// SIGTERM/SIGINT: write dirty data, close everything, unmount every mount.
    async fn shutdown(self: &Arc<Self>) {
        let _g = self.ops.lock().await;
        let conns: Vec<Arc<Conn>> = self.conns.lock().clone();
        for c in conns {
            let o = c
                .rdbss
                .finalize_connection(
                    &c.v.net_root(),
                    Some(&c.v),
                    ForceLevel::Yes,
                    &RxContext::new().with_timeout(Duration::from_secs(20)),
                )
                .await;
            for u in &o.unwritten {
                eprintln!(
                    "rdr: {}: {} bytes of {} not written: {}",
                    c.mountpoint.display(),
                    u.bytes,
                    u.path,
                    u.error
                );
            }
            let m = c.clone();
            let _ = tokio::task::spawn_blocking(move || {
                m.mount.invalidate_all();
                if m.mount.unmount().is_err() {
                    let _ = m.mount.detach();
                }
                m.mount.wait_ended(Duration::from_secs(2))
            })
            .await;
            // Keep persistent entries: they come back at the next start.
            self.conns.lock().retain(|x| x.id != c.id);
            self.guard_say(&format!("-{}", c.mountpoint.display()));
        }
        self.save_mounts();
        self.guard_say("exit");
        if let Some(mut g) = self.guard.lock().take() {
            drop(g.stdin);
            let _ = g.child.wait();
        }
        let _ = std::fs::remove_file(self.state.join("guard.pid"));
    }
}

/// The `net use` status of a connection (USE_INFO_2: OK, Disconnected, Reconnecting,
/// Unavailable), from the mount and the view's RDBSS condition.
fn conn_status(c: &Conn) -> &'static str {
    use rdr_core::condition::ConditionState as C;
    if c.mount.has_ended() {
        return "Disconnected";
    }
    if c.v.is_finalized() {
        return "Unavailable";
    }
    if c.rdbss.transport_lost(&c.v) {
        return "Disconnected";
    }
    match c.v.condition() {
        C::Good => "OK",
        C::InTransition | C::Uninitialized => "Reconnecting",
        C::Closing | C::Closed => "Disconnected",
        C::Bad => "Unavailable",
    }
}

fn unknown_target(t: &str) -> Response {
    Response::err(
        format!("{t}: no such connection (STATUS_NOT_FOUND)"),
        Some("STATUS_NOT_FOUND"),
    )
}

trait Mode0600 {
    fn mode_0600(&mut self) -> &mut Self;
}

impl Mode0600 for std::fs::OpenOptions {
    fn mode_0600(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::mode(self, 0o600)
    }
}

/// What `prepare_mountpoint` checked: the mount point pinned as an `O_PATH` handle, whether it
/// was created, and the local directory with symlinks resolved.
struct Prepared {
    created: bool,
    fd: std::os::fd::OwnedFd,
    dir: Option<PathBuf>,
}

/// Validate the local directory and the mount point for `uid`; create the mount point if
/// missing (owned by the caller); pin it as a handle whose owner is checked again, so the mount
/// lands on exactly what was checked.
fn prepare_mountpoint(
    uid: u32,
    gid: u32,
    mp: &Path,
    dir: Option<&Path>,
) -> Result<Prepared, String> {
    let dir = match dir {
        Some(dir) => Some(std::fs::canonicalize(dir).map_err(|_| {
            format!(
                "local:{}: no such directory (STATUS_BAD_NETWORK_NAME)",
                dir.display()
            )
        })?),
        None => None,
    };
    let created = prepare_path(uid, gid, mp, dir.as_deref())?;
    let undo = || {
        if created {
            let _ = std::fs::remove_dir(mp);
        }
    };
    let fd = match rdr_fuse::mount::open_dir_nofollow(mp) {
        Ok(fd) => fd,
        Err(e) => {
            undo();
            return Err(format!("{}: the mount point: {e}", mp.display()));
        }
    };
    let m = match std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
        Ok(m) => m,
        Err(e) => {
            undo();
            return Err(format!("{}: the mount point: {e}", mp.display()));
        }
    };
    if uid != 0 && m.uid() != uid {
        undo();
        return Err(format!(
            "{}: the mount point is not owned by you (uid {uid}) (STATUS_ACCESS_DENIED)",
            mp.display()
        ));
    }
    Ok(Prepared { created, fd, dir })
}

fn prepare_path(uid: u32, gid: u32, mp: &Path, dir: Option<&Path>) -> Result<bool, String> {
    if let Some(dir) = dir {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(format!(
                    "local:{}: not a directory (STATUS_BAD_NETWORK_NAME)",
                    dir.display()
                ));
            }
            Err(_) => {
                return Err(format!(
                    "local:{}: no such directory (STATUS_BAD_NETWORK_NAME)",
                    dir.display()
                ));
            }
        }
        access_ok_dir_for(uid, dir).map_err(|e| format!("local:{e}"))?;
    }
    if rdr_fuse::is_mount_point(mp) {
        return Err(format!(
            "{}: already a mount point (STATUS_OBJECT_NAME_COLLISION)",
            mp.display()
        ));
    }
    match std::fs::symlink_metadata(mp) {
        Ok(m) if m.is_dir() => {
            if uid != 0 && m.uid() != uid {
                return Err(format!(
                    "{}: the mount point is not owned by you (uid {uid}) (STATUS_ACCESS_DENIED)",
                    mp.display()
                ));
            }
            Ok(false)
        }
        Ok(_) => Err(format!(
            "{}: the mount point is not a directory (STATUS_NOT_A_DIRECTORY)",
            mp.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = mp
                .parent()
                .ok_or_else(|| format!("{}: no parent directory", mp.display()))?;
            let pm = std::fs::metadata(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
            if !pm.is_dir() {
                return Err(format!("{}: not a directory", parent.display()));
            }
            let world_sticky = pm.mode() & 0o1002 == 0o1002;
            if uid != 0 && pm.uid() != uid && !world_sticky {
                return Err(format!(
                    "{}: cannot create the mount point here (not your directory) (STATUS_ACCESS_DENIED)",
                    mp.display()
                ));
            }
            std::fs::create_dir(mp).map_err(|e| format!("{}: {e}", mp.display()))?;
            let _ = std::fs::set_permissions(mp, std::fs::Permissions::from_mode(0o755));
            let _ = std::os::unix::fs::chown(mp, Some(uid), Some(gid));
            Ok(true)
        }
        Err(e) => Err(format!("{}: {e}", mp.display())),
    }
}

/// `rdr guard`: read `+path` / `-path` / `exit` lines; at EOF without `exit` (the daemon died),
/// detach every listed mount point.
pub fn run_guard() -> i32 {
    // SAFETY: setting signal dispositions to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let mut live: Vec<PathBuf> = Vec::new();
    let stdin = std::io::stdin();
    let mut line = String::new();
    loop {
        line.clear();
        match std::io::BufRead::read_line(&mut stdin.lock(), &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let l = line.trim_end_matches('\n');
        if l == "exit" {
            return 0;
        } else if let Some(p) = l.strip_prefix('+') {
            live.push(PathBuf::from(p));
        } else if let Some(p) = l.strip_prefix('-') {
            live.retain(|x| x != Path::new(p));
        }
    }
    for p in live {
        match rdr_fuse::detach_path(&p) {
            Ok(()) => eprintln!("rdr guard: the daemon died; detached {}", p.display()),
            Err(e) => eprintln!("rdr guard: {}: {e}", p.display()),
        }
    }
    0
}
