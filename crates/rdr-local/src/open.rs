//! Server-side opens (`LocalOpen`, the SrvOpen context) and the table of open files that
//! emulates Windows share modes, delete-on-close and the buffering grant among the opens of one
//! `LocalRdr`.

use crate::dir::DirCursor;
use crate::lock::LockState;
use crate::notify::Watcher;
use crate::path::RelPath;
use crate::status_map::{st, sys_err};
use crate::sys::{self, CountedFd, FileKey};
use crate::{Inner, ShareRoot};
use rdr_core::minirdr::{AccessMask, BufferingState, ShareAccess};
use rdr_core::{NtStatus, RxError, RxResult};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_util::sync::CancellationToken;

/// One open of a file as the share-mode check sees it.
#[derive(Debug, Clone)]
pub(crate) struct OpenRecord {
    pub(crate) id: u64,
    pub(crate) access: AccessMask,
    pub(crate) share: ShareAccess,
    pub(crate) delete_on_close: bool,
}

/// An open file (RDBSS would call it the server's FCB): its current name and its opens.
#[derive(Debug)]
pub(crate) struct FileState {
    pub(crate) root: Arc<ShareRoot>,
    pub(crate) path: RelPath,
    pub(crate) is_dir: bool,
    pub(crate) opens: Vec<OpenRecord>,
    pub(crate) delete_pending: bool,
}

/// All files with opens, by (device, inode).
#[derive(Debug, Default)]
pub(crate) struct FileTable {
    pub(crate) files: HashMap<FileKey, FileState>,
}

/// (read, write, delete) rights of a mask, as the share-mode check counts them.
fn rights(a: AccessMask) -> (bool, bool, bool) {
    let all = AccessMask::GENERIC_ALL | AccessMask::MAXIMUM_ALLOWED;
    let r = a.intersects(
        AccessMask::FILE_READ_DATA
            | AccessMask::FILE_EXECUTE
            | AccessMask::GENERIC_READ
            | AccessMask::GENERIC_EXECUTE
            | all,
    );
    let w = a.intersects(
        AccessMask::FILE_WRITE_DATA
            | AccessMask::FILE_APPEND_DATA
            | AccessMask::GENERIC_WRITE
            | all,
    );
    let d = a.intersects(AccessMask::DELETE | all);
    (r, w, d)
}

/// Whether a new open (`access`, `share`) conflicts with an existing one (MS-FSA 2.1.5.1.2.1):
/// opens without data or delete access take no part.
fn conflicts(e: &OpenRecord, access: AccessMask, share: ShareAccess) -> bool {
    let (er, ew, ed) = rights(e.access);
    let (nr, nw, nd) = rights(access);
    if !(er || ew || ed) || !(nr || nw || nd) {
        return false;
    }
    (er && !share.contains(ShareAccess::READ))
        || (ew && !share.contains(ShareAccess::WRITE))
        || (ed && !share.contains(ShareAccess::DELETE))
        || (nr && !e.share.contains(ShareAccess::READ))
        || (nw && !e.share.contains(ShareAccess::WRITE))
        || (nd && !e.share.contains(ShareAccess::DELETE))
}

impl FileTable {
    /// Admit a new open of `key` or fail with the share-mode or delete-pending error. Returns
    /// the buffering the open may use: full (R+W+H) when no other current open writes or is
    /// written alongside it, read caching only otherwise.
    pub(crate) fn admit(
        &mut self,
        key: FileKey,
        root: &Arc<ShareRoot>,
        path: &RelPath,
        is_dir: bool,
        rec: OpenRecord,
        what: &str,
    ) -> RxResult<BufferingState> {
        if let Some(f) = self.files.get(&key) {
            if f.delete_pending {
                return Err(st(
                    NtStatus::STATUS_DELETE_PENDING,
                    what,
                    "the file is marked for deletion",
                ));
            }
            if f.opens.iter().any(|e| conflicts(e, rec.access, rec.share)) {
                return Err(st(
                    NtStatus::STATUS_SHARING_VIOLATION,
                    what,
                    "another open's access or share mode conflicts with this open",
                ));
            }
        }
        let f = self.files.entry(key).or_insert_with(|| FileState {
            root: root.clone(),
            path: path.clone(),
            is_dir,
            opens: Vec::new(),
            delete_pending: false,
        });
        let this_writes = rec.access.can_write();
        let shared_for_write = f.opens.iter().any(|e| this_writes || e.access.can_write());
        f.opens.push(rec);
        Ok(if shared_for_write {
            BufferingState {
                read_caching: true,
                write_caching: false,
                handle_caching: false,
            }
        } else {
            BufferingState {
                read_caching: true,
                write_caching: true,
                handle_caching: true,
            }
        })
    }

    /// Forget open `id` of `key` without applying delete-on-close (a failed create).
    pub(crate) fn withdraw(&mut self, key: FileKey, id: u64) {
        if let Some(f) = self.files.get_mut(&key) {
            f.opens.retain(|o| o.id != id);
            if f.opens.is_empty() {
                self.files.remove(&key);
            }
        }
    }

    /// The current name of an open file.
    pub(crate) fn path_of(&self, key: FileKey) -> Option<RelPath> {
        self.files.get(&key).map(|f| f.path.clone())
    }

    /// After a rename inside `root`, move every open name at or under `old` to `new`.
    pub(crate) fn renamed(&mut self, root: &Arc<ShareRoot>, old: &RelPath, new: &RelPath) {
        let old_s = old.display();
        let prefix = format!("{old_s}\\");
        for f in self.files.values_mut() {
            if !Arc::ptr_eq(&f.root, root) {
                continue;
            }
            let cur = f.path.display();
            if cur == old_s {
                f.path = new.clone();
            } else if let Some(rest) = cur.strip_prefix(&prefix) {
                let joined = format!("{}\\{rest}", new.display());
                if let Ok(p) = RelPath::parse(&joined) {
                    f.path = p;
                }
            }
        }
    }
}

/// The SrvOpen context of rdr-local: an fd opened beneath the share root, plus the state the
/// other calls keep on it (directory cursor, locks, change-notify watcher).
pub struct LocalOpen {
    pub(crate) id: u64,
    pub(crate) inner: Arc<Inner>,
    pub(crate) root: Arc<ShareRoot>,
    pub(crate) key: FileKey,
    pub(crate) is_dir: bool,
    pub(crate) access: AccessMask,
    /// The path at open time, for messages after the file left the table.
    pub(crate) opened_as: RelPath,
    pub(crate) fd: parking_lot::RwLock<Option<Arc<CountedFd>>>,
    pub(crate) dir: parking_lot::Mutex<Option<DirCursor>>,
    pub(crate) locks: parking_lot::Mutex<LockState>,
    pub(crate) notify: tokio::sync::Mutex<Option<Watcher>>,
    /// Cancelled when the open is closed, so waiting notifications and locks return.
    pub(crate) closing: CancellationToken,
    pub(crate) closed: AtomicBool,
}

impl std::fmt::Debug for LocalOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalOpen")
            .field("id", &self.id)
            .field("path", &self.what())
            .field("is_dir", &self.is_dir)
            .finish()
    }
}

impl LocalOpen {
    /// The open file's current path inside its share.
    pub(crate) fn path(&self) -> RelPath {
        self.inner
            .files
            .lock()
            .path_of(self.key)
            .unwrap_or_else(|| self.opened_as.clone())
    }

    /// `share\path` of the open file, for messages.
    pub fn what(&self) -> String {
        self.root.what(&self.path())
    }

    /// The descriptor, or `HandleClosed` after close.
    pub(crate) fn fd(&self) -> RxResult<Arc<CountedFd>> {
        self.fd
            .read()
            .clone()
            .ok_or_else(|| RxError::HandleClosed { path: self.what() })
    }

    /// Close: release the fd and per-open state, drop the open from the file table and, when it
    /// was the file's last open and the file is marked for deletion, delete it. Idempotent;
    /// returns `HandleClosed` on a second call.
    pub(crate) fn release(&self) -> RxResult<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Err(RxError::HandleClosed { path: self.what() });
        }
        self.inner.counters.opens.fetch_sub(1, Ordering::SeqCst);
        self.closing.cancel();
        let what = self.what();
        let fd = self.fd.write().take();
        *self.dir.lock() = None;
        self.locks.lock().clear();
        if let Ok(mut n) = self.notify.try_lock() {
            *n = None;
        }
        drop(fd);
        let mut table = self.inner.files.lock();
        let Some(f) = table.files.get_mut(&self.key) else {
            return Ok(());
        };
        if let Some(pos) = f.opens.iter().position(|o| o.id == self.id) {
            let rec = f.opens.remove(pos);
            if rec.delete_on_close {
                f.delete_pending = true;
            }
        }
        if !f.opens.is_empty() {
            return Ok(());
        }
        let delete = f.delete_pending;
        let path = f.path.clone();
        let root = f.root.clone();
        let is_dir = f.is_dir;
        table.files.remove(&self.key);
        if delete {
            // Under the table lock so no new open of this file slips in before the unlink.
            delete_entry(&root, &path, self.key, is_dir).map_err(|e| match e {
                RxError::Status { status, what: w } => RxError::Status {
                    status,
                    what: format!("{w} (delete on close of {what})"),
                },
                other => other,
            })?;
        }
        Ok(())
    }
}

impl Drop for LocalOpen {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::SeqCst)
            && let Err(e) = self.release()
        {
            tracing::warn!("rdr-local: implicit close failed: {e}");
        }
    }
}

/// The directory holding `path` (opened beneath the root) and `path`'s last name in it, after
/// checking that the name still refers to `key` (directly, or as a symlink resolving to it).
pub(crate) fn locate_entry(
    root: &ShareRoot,
    path: &RelPath,
    key: FileKey,
) -> RxResult<(std::os::fd::OwnedFd, std::ffi::CString)> {
    let what = root.what(path);
    let leaf = path.leaf(&what)?;
    let parent = path.parent().unwrap_or_else(RelPath::root);
    let pfd = sys::openat2(
        root.raw(),
        &parent.kernel(),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
    )
    .map_err(|e| sys_err(e, &what, "open parent directory"))?;
    use std::os::fd::AsRawFd;
    let lst = sys::lstatx_at(pfd.as_raw_fd(), &leaf).map_err(|e| sys_err(e, &what, "stat"))?;
    if sys::key_of(&lst) == key {
        return Ok((pfd, leaf));
    }
    if u32::from(lst.stx_mode) & libc::S_IFMT == libc::S_IFLNK
        && let Ok(t) = sys::openat2(root.raw(), &path.kernel(), libc::O_PATH, 0)
        && sys::statx_fd(t.as_raw_fd()).map(|s| sys::key_of(&s)) == Ok(key)
    {
        return Ok((pfd, leaf));
    }
    Err(st(
        NtStatus::STATUS_FILE_RENAMED,
        &what,
        "the name no longer refers to the open file (changed outside rdr)",
    ))
}

/// Delete the entry `path` (which must still be `key`): unlink a file, rmdir a directory.
pub(crate) fn delete_entry(
    root: &ShareRoot,
    path: &RelPath,
    key: FileKey,
    is_dir: bool,
) -> RxResult<()> {
    let what = root.what(path);
    let (pfd, leaf) = match locate_entry(root, path, key) {
        Ok(found) => found,
        // Already gone (deleted outside rdr): what was asked for is done.
        Err(e)
            if matches!(
                e.nt_status(),
                NtStatus::STATUS_OBJECT_NAME_NOT_FOUND | NtStatus::STATUS_OBJECT_PATH_NOT_FOUND
            ) =>
        {
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    use std::os::fd::AsRawFd;
    let lst = sys::lstatx_at(pfd.as_raw_fd(), &leaf).map_err(|e| sys_err(e, &what, "stat"))?;
    let entry_is_dir = u32::from(lst.stx_mode) & libc::S_IFMT == libc::S_IFDIR;
    sys::unlinkat(pfd.as_raw_fd(), &leaf, is_dir && entry_is_dir)
        .map_err(|e| sys_err(e, &what, if entry_is_dir { "rmdir" } else { "unlink" }))
}

/// Whether the directory open as `fd` has entries besides `.` and `..`.
pub(crate) fn dir_has_entries(fd: std::os::fd::RawFd, what: &str) -> RxResult<bool> {
    let d = sys::openat2(fd, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .map_err(|e| sys_err(e, what, "open directory"))?;
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sys::getdents64(d.as_raw_fd(), &mut buf)
            .map_err(|e| sys_err(e, what, "read directory"))?;
        if n == 0 {
            return Ok(false);
        }
        let mut pos = 0;
        while let Some((name, reclen)) = buf.get(pos..n).and_then(sys::parse_dirent) {
            if name != b"." && name != b".." {
                return Ok(true);
            }
            pos += reclen;
        }
    }
}
