//! Mounting and unmounting one connection.
//!
//! The session runs on its own threads (`n_threads` readers, `clone_fd`). Unmounting is done
//! here with `umount2(2)` so the caller chooses the semantics: a plain unmount (fails with EBUSY
//! while anything is open), or a detach (`MNT_DETACH`, `umount -l`): the mount leaves the
//! namespace at once and the session keeps serving the open files until the kernel releases the
//! last one, then ends by itself.

use crate::fs::{Change, FsOptions, FsProbe, MountStats, RdrFs};
use fuser::{Config, INodeNo, Notifier, Session, SessionACL};
use parking_lot::{Condvar, Mutex};
use rdr_core::Rdbss;
use rdr_core::v_net_root::VNetRoot;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How to mount.
#[derive(Debug, Clone)]
pub struct MountConfig {
    /// Filesystem options (TTL, owner).
    pub fs: FsOptions,
    /// Shown as the mount's source in /proc/mounts.
    pub fsname: String,
    /// FUSE reader threads. Two: handlers never block a reader (what waits becomes a task),
    /// so more readers only spread one application's requests over more cold threads and
    /// vCPUs (docs/BENCHMARKS.md, session 7: 4 → 2 made small-file creates and 1 MiB
    /// writes faster).
    pub n_threads: usize,
    /// Kernel read-ahead for this mount's page-cache reads (the bdi's `read_ahead_kb`);
    /// 128 KiB requests become 1 MiB ones (docs/fuse-performance.md). `None` leaves it.
    pub read_ahead_kb: Option<u32>,
}

/// FUSE reader threads of a mount unless configured otherwise (see `MountConfig::n_threads`).
pub const DEFAULT_READERS: usize = 2;

impl Default for MountConfig {
    fn default() -> Self {
        MountConfig {
            fs: FsOptions::default(),
            fsname: "rdr".into(),
            n_threads: DEFAULT_READERS,
            read_ahead_kb: Some(4096),
        }
    }
}

#[derive(Default)]
struct Ended {
    done: Mutex<Option<Result<(), String>>>,
    cv: Condvar,
}

/// A live mount. Dropping it does not unmount: the daemon decides (`unmount` / `detach`).
pub struct MountHandle {
    mountpoint: PathBuf,
    stats: Arc<MountStats>,
    ended: Arc<Ended>,
    probe: FsProbe,
    notifier: Notifier,
}

fn umount2(path: &Path, flags: i32) -> io::Result<()> {
    let c = cstring(path)?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call. A symlink put
    // in place of the mount point is not followed.
    let r = unsafe { libc::umount2(c.as_ptr(), flags | libc::UMOUNT_NOFOLLOW) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Lazily detach whatever is mounted at `path` (used to clear a dead mount left by a daemon
/// that was killed: `Transport endpoint is not connected`).
pub fn detach_path(path: &Path) -> io::Result<()> {
    umount2(path, libc::MNT_DETACH)
}

/// True when `path` is a mount whose FUSE server is gone (ENOTCONN). A stat may still be
/// answered from the attribute cache, so the directory is also opened (always a request).
pub fn is_dead_mount(path: &Path) -> bool {
    let dead = |e: &std::io::Error| e.raw_os_error() == Some(libc::ENOTCONN);
    match std::fs::metadata(path) {
        Err(e) => dead(&e),
        Ok(m) if m.is_dir() => std::fs::read_dir(path).err().is_some_and(|e| dead(&e)),
        Ok(_) => false,
    }
}

/// True when `path` is a mount point (its device differs from its parent's, or it is listed in
/// /proc/self/mountinfo).
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(canon) = path.canonicalize() else {
        return is_dead_mount(path);
    };
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = canon.to_string_lossy().to_string();
    info.lines().any(|l| {
        l.split(' ')
            .nth(4)
            .map(unescape_mountinfo)
            .is_some_and(|p| p == want)
    })
}

fn unescape_mountinfo(s: &str) -> String {
    // mountinfo escapes space, tab, newline and backslash as \ooo.
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = std::str::from_utf8(&b[i + 1..i + 4]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(oct, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount `v` at `mountpoint` and start serving it. Returns when the kernel has sent INIT.
/// The last component must be a directory, not a symlink.
pub fn mount(
    rdbss: Rdbss,
    v: Arc<VNetRoot>,
    mountpoint: &Path,
    cfg: &MountConfig,
    rt: tokio::runtime::Handle,
) -> io::Result<MountHandle> {
    let dir = open_dir_nofollow(mountpoint)?;
    mount_fd(rdbss, v, dir.as_fd(), cfg, rt)
}

/// Open a directory as an `O_PATH` handle without following a final symlink: the daemon
/// checks ownership on this handle and mounts exactly it (no check-then-mount race).
pub fn open_dir_nofollow(path: &Path) -> io::Result<OwnedFd> {
    let c = cstring(path)?;
    // SAFETY: valid C string; the flags ask for a path handle only.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

/// Mount `v` on the directory `dir` (an `O_PATH` handle) and start serving it. The mount is
/// made here with mount(2) on `/proc/self/fd/N`, so it lands on exactly the directory that was
/// checked, whatever happens to the path meanwhile.
pub fn mount_fd(
    rdbss: Rdbss,
    v: Arc<VNetRoot>,
    dir: BorrowedFd<'_>,
    cfg: &MountConfig,
    rt: tokio::runtime::Handle,
) -> io::Result<MountHandle> {
    let target = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
    let mountpoint = std::fs::read_link(&target)?;
    // SAFETY: a zeroed stat is a valid out-buffer; `dir` is an open fd.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(dir.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{}: not a directory", mountpoint.display()),
        ));
    }
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")?;
    let dev: OwnedFd = dev.into();
    // allow_other, and every path-taking request checks the caller against the owner (and
    // root) in RdrFs::allowed; default_permissions makes the kernel apply mode bits against
    // the attributes we report (owner = the connection's user).
    let opts = format!(
        "fd={},rootmode={:o},user_id={},group_id={},allow_other,default_permissions",
        dev.as_raw_fd(),
        st.st_mode & libc::S_IFMT,
        // SAFETY: getuid/getgid have no preconditions.
        unsafe { libc::getuid() },
        unsafe { libc::getgid() },
    );
    let src = CString::new(cfg.fsname.replace('\0', ""))
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad fsname"))?;
    let tgt = cstring(&target)?;
    let copts = CString::new(opts).map_err(|_| io::Error::other("bad mount options"))?;
    let flags = libc::MS_NOSUID | libc::MS_NODEV;
    let mut last = io::Error::other("mount failed");
    let mut mounted = false;
    for fstype in ["fuse.rdr", "fuse"] {
        let ft = CString::new(fstype).map_err(|_| io::Error::other("fstype"))?;
        // SAFETY: all pointers are valid NUL-terminated strings for the call's duration.
        let r = unsafe {
            libc::mount(
                src.as_ptr(),
                tgt.as_ptr(),
                ft.as_ptr(),
                flags,
                copts.as_ptr().cast(),
            )
        };
        if r == 0 {
            mounted = true;
            break;
        }
        last = io::Error::last_os_error();
        if last.raw_os_error() != Some(libc::ENODEV) && last.raw_os_error() != Some(libc::EINVAL) {
            break;
        }
    }
    if !mounted {
        return Err(last);
    }
    let stats = Arc::new(MountStats::default());
    let fs = RdrFs::new(rdbss, v, rt, cfg.fs.clone(), stats.clone());
    let probe = fs.probe();
    let mut fc = Config::default();
    fc.acl = SessionACL::All;
    fc.n_threads = Some(cfg.n_threads.max(1));
    fc.clone_fd = cfg.n_threads > 1;
    let session = match Session::from_fd(fs, dev, SessionACL::All, fc) {
        Ok(s) => s,
        Err(e) => {
            let _ = umount2(&mountpoint, libc::MNT_DETACH);
            return Err(e);
        }
    };
    let notifier = session.notifier();
    probe.set_notifier(notifier.clone());
    let ended = Arc::new(Ended::default());
    let e2 = ended.clone();
    let probe2 = probe.clone();
    let name = format!("rdr-fuse {}", mountpoint.display());
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        let r = session.run().map_err(|e| e.to_string());
        // RELEASEs the kernel dropped when it tore the connection down.
        probe2.close_leftovers();
        *e2.done.lock() = Some(r);
        e2.cv.notify_all();
    });
    if let Err(e) = spawned {
        let _ = umount2(&mountpoint, libc::MNT_DETACH);
        return Err(e);
    }
    if let Some(kb) = cfg.read_ahead_kb {
        // Best effort (needs root and sysfs); the session answers the stat.
        if let Ok(m) = std::fs::metadata(&mountpoint) {
            use std::os::unix::fs::MetadataExt;
            let dev = m.dev();
            let (major, minor) = (libc::major(dev), libc::minor(dev));
            let _ = std::fs::write(
                format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb"),
                kb.to_string(),
            );
        }
    }
    Ok(MountHandle {
        mountpoint,
        stats,
        ended,
        probe,
        notifier,
    })
}

impl MountHandle {
    /// Where it is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// FUSE handles currently open (files and directories).
    pub fn open_handles(&self) -> usize {
        self.stats.open_handles.load(Ordering::Relaxed)
    }

    /// Requests refused because the caller was neither the owner nor root.
    pub fn denied(&self) -> u64 {
        self.stats.denied.load(Ordering::Relaxed)
    }

    /// The last failure an application got from this mount, if any.
    pub fn last_error(&self) -> Option<crate::LastError> {
        self.stats.last_error.lock().clone()
    }

    /// Plain unmount (`umount`): EBUSY while a file, a working directory or a mapping is in
    /// use; on success the session ends.
    pub fn unmount(&self) -> io::Result<()> {
        umount2(&self.mountpoint, 0)
    }

    /// Detach (`umount -l`): gone from the namespace now; the session serves open files until
    /// the last is released.
    pub fn detach(&self) -> io::Result<()> {
        umount2(&self.mountpoint, libc::MNT_DETACH)
    }

    /// Drop the kernel's cached pages and attributes of every inode, so I/O on handles the
    /// core orphaned reaches the daemon and fails (EIO) instead of being served from the page
    /// cache. Call from a plain thread, never from a FUSE handler or under the core's locks.
    pub fn invalidate_all(&self) {
        if self.has_ended() {
            return;
        }
        for ino in self.probe.inodes() {
            let _ = self.notifier.inval_inode(INodeNo(ino), 0, 0);
        }
    }

    /// Drop the kernel's cached pages and attributes of the files at these share paths (the
    /// server took their read caching away). Same rules as [`MountHandle::invalidate_all`].
    pub fn invalidate_paths(&self, paths: &[String]) {
        if self.has_ended() {
            return;
        }
        for ino in self.probe.inodes_of(paths) {
            let _ = self.notifier.inval_inode(INodeNo(ino), 0, 0);
        }
    }

    /// Another mount of the same share changed these paths: drop this mount's cached
    /// attributes, listings, pages and dentries of them (caching-design §5.10). Same rules as
    /// [`MountHandle::invalidate_all`].
    pub fn changed_elsewhere(&self, changes: &[Change]) {
        if self.has_ended() {
            return;
        }
        let (inodes, entries) = self.probe.changed_elsewhere(changes);
        for ino in inodes {
            let _ = self.notifier.inval_inode(INodeNo(ino), 0, 0);
        }
        for (parent, name) in entries {
            let _ = self
                .notifier
                .inval_entry(INodeNo(parent), std::ffi::OsStr::new(&name));
        }
    }

    /// Whether the session has ended (the kernel released the filesystem).
    pub fn has_ended(&self) -> bool {
        self.ended.done.lock().is_some()
    }

    /// Wait up to `timeout` for the session to end; true if it did.
    pub fn wait_ended(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.ended.done.lock();
        while g.is_none() {
            if self.ended.cv.wait_until(&mut g, deadline).timed_out() {
                return g.is_some();
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_unescape() {
        assert_eq!(unescape_mountinfo("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/x\\"), "/x\\");
    }
}
