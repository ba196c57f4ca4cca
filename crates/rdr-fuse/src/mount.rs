//! Mounting and unmounting one connection.
//!
//! The session runs on its own threads (`n_threads` readers, `clone_fd`). Unmounting is done
//! here with `umount2(2)` so the caller chooses the semantics: a plain unmount (fails with EBUSY
//! while anything is open), or a detach (`MNT_DETACH`, `umount -l`): the mount leaves the
//! namespace at once and the session keeps serving the open files until the kernel releases the
//! last one, then ends by itself.

use crate::fs::{FsOptions, FsProbe, MountStats, RdrFs};
use fuser::{Config, INodeNo, MountOption, Notifier, Session, SessionACL};
use parking_lot::{Condvar, Mutex};
use rdr_core::Rdbss;
use rdr_core::v_net_root::VNetRoot;
use std::ffi::CString;
use std::io;
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
    /// FUSE reader threads.
    pub n_threads: usize,
}

impl Default for MountConfig {
    fn default() -> Self {
        MountConfig {
            fs: FsOptions::default(),
            fsname: "rdr".into(),
            n_threads: 4,
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
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "mount point contains NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let r = unsafe { libc::umount2(c.as_ptr(), flags) };
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
pub fn mount(
    rdbss: Rdbss,
    v: Arc<VNetRoot>,
    mountpoint: &Path,
    cfg: &MountConfig,
    rt: tokio::runtime::Handle,
) -> io::Result<MountHandle> {
    let stats = Arc::new(MountStats::default());
    let fs = RdrFs::new(rdbss, v, rt, cfg.fs.clone(), stats.clone());
    let probe = fs.probe();
    let mut fc = Config::default();
    fc.mount_options = vec![
        MountOption::FSName(cfg.fsname.clone()),
        MountOption::Subtype("rdr".into()),
        MountOption::NoDev,
        MountOption::NoSuid,
        // The kernel checks mode bits against the attributes we report (owner = the
        // connection's user), so chmod means what it says for the owner too.
        MountOption::DefaultPermissions,
    ];
    // allow_other, and every path-taking request checks the caller against the owner (and
    // root) in RdrFs::allowed; the daemon runs as root, so fuser's own Owner ACL would admit
    // root only.
    fc.acl = SessionACL::All;
    fc.n_threads = Some(cfg.n_threads.max(1));
    fc.clone_fd = cfg.n_threads > 1;
    let session = Session::new(fs, mountpoint, &fc)?;
    let notifier = session.notifier();
    let ended = Arc::new(Ended::default());
    let e2 = ended.clone();
    let name = format!("rdr-fuse {}", mountpoint.display());
    std::thread::Builder::new().name(name).spawn(move || {
        let r = session.run().map_err(|e| e.to_string());
        *e2.done.lock() = Some(r);
        e2.cv.notify_all();
    })?;
    Ok(MountHandle {
        mountpoint: mountpoint.to_path_buf(),
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
