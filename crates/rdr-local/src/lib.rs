//! rdr-local: a mini-redirector that serves local directories as shares, for tests and demos.
//!
//! [`LocalRdr`] implements [`MiniRedirector`] for real: every path is resolved with `openat2(2)`
//! and `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` relative to the share root's directory fd, so
//! nothing (`..`, absolute symlinks, symlinks pointing outside) ever escapes the share. Opens are
//! real fds; share modes, delete-on-close and byte-range locks (OFD locks) behave as Windows
//! handles do among the opens of one `LocalRdr`; change notification comes from inotify.
//!
//! Buffering grant: an open gets read+write+handle caching when no other current open of the
//! same file (through this `LocalRdr`) writes or is written alongside it, read caching only
//! otherwise. There is no break: the trait has no way to tell the core that a grant changed, and
//! changes made by other local processes are invisible (like a Samba server without kernel
//! oplocks).
//!
//! Other choices: names are case-sensitive (the local file system decides, as Samba with
//! `case sensitive = yes`); a share's name is case-insensitive. Creation times cannot be set.
//! Calls must run on a tokio runtime with I/O and time enabled (change notification waits on
//! the reactor; lock waits sleep between OFD attempts).
#![warn(missing_docs)]

mod create;
mod dir;
mod lock;
mod notify;
mod open;
mod path;
mod status_map;
mod sys;

pub use notify::MAX_WATCHES;
pub use open::LocalOpen;

use async_trait::async_trait;
use bytes::Bytes;
use open::FileTable;
use path::RelPath;
use rdr_core::minirdr::{
    ChangeEvent, CreateParams, CreateResult, DirEntry, FileInfo, LockRange, MiniRedirector,
    MrxContext, SetInfo, SrvCallParams, VNetRootCreated, VNetRootParams, VolumeInfo,
    file_attributes,
};
use rdr_core::{NtStatus, RxContext, RxError, RxResult};
use status_map::{st, sys_err};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Reads and writes up to this size run on the calling task; larger ones on a blocking thread.
const INLINE_IO: usize = 64 * 1024;
/// Largest read served in one call (a shorter result is legal; the caller asks again).
const MAX_READ: usize = 16 * 1024 * 1024;

/// Counters shared by everything one `LocalRdr` creates.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) fds: Arc<AtomicUsize>,
    pub(crate) opens: AtomicUsize,
    srv_calls_created: AtomicUsize,
    srv_calls_finalized: AtomicUsize,
    v_net_roots_created: AtomicUsize,
    v_net_roots_finalized: AtomicUsize,
    net_roots_finalized: AtomicUsize,
}

/// A snapshot of a `LocalRdr`'s counters, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalStats {
    /// Server-side opens currently held (created, not yet closed).
    pub srv_opens: usize,
    /// File descriptors currently held on behalf of opens (files, directories, lock reopens,
    /// inotify instances); 0 when every open is closed.
    pub fds: usize,
    /// `create_srv_call` calls that succeeded.
    pub srv_calls_created: usize,
    /// `finalize_srv_call` calls.
    pub srv_calls_finalized: usize,
    /// `create_v_net_root` calls that succeeded.
    pub v_net_roots_created: usize,
    /// `finalize_v_net_root` calls.
    pub v_net_roots_finalized: usize,
    /// `finalize_net_root` calls.
    pub net_roots_finalized: usize,
}

/// State shared by a `LocalRdr` and its opens.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    exports: parking_lot::RwLock<HashMap<String, (String, PathBuf)>>,
    pub(crate) files: parking_lot::Mutex<FileTable>,
    pub(crate) counters: Counters,
    next_id: AtomicU64,
    servers: parking_lot::Mutex<Vec<String>>,
    logon_ids: parking_lot::Mutex<Vec<u32>>,
}

impl Inner {
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// An exported directory while connected: its name and the directory fd every lookup starts
/// from.
#[derive(Debug)]
pub(crate) struct ShareRoot {
    name: String,
    fd: OwnedFd,
}

impl ShareRoot {
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
    /// `share\path` for messages.
    pub(crate) fn what(&self, path: &RelPath) -> String {
        if path.is_root() {
            format!("{}\\", self.name)
        } else {
            format!("{}\\{}", self.name, path.display())
        }
    }
}

/// The SrvCall context: the server name as the user wrote it (any name is served).
#[derive(Debug)]
pub struct LocalSrvCall {
    server: String,
}

impl LocalSrvCall {
    /// The server name this connection was made for.
    pub fn server(&self) -> &str {
        &self.server
    }
}

/// The NetRoot context: one connected share.
#[derive(Debug)]
pub struct LocalNetRoot {
    root: Arc<ShareRoot>,
}

impl LocalNetRoot {
    /// The share name as exported.
    pub fn share(&self) -> &str {
        &self.root.name
    }
}

/// The VNetRoot context: one identity's view of a share.
#[derive(Debug)]
pub struct LocalVNetRoot {
    pub(crate) root: Arc<ShareRoot>,
    logon_id: u32,
}

impl LocalVNetRoot {
    /// The local identity (RDBSS LogonId) of the view.
    pub fn logon_id(&self) -> u32 {
        self.logon_id
    }
    /// The share name as exported.
    pub fn share(&self) -> &str {
        &self.root.name
    }
}

/// The local-directory mini-redirector. Cheap to clone; clones share exports and state.
#[derive(Debug, Clone, Default)]
pub struct LocalRdr {
    inner: Arc<Inner>,
}

fn ts(t: libc::statx_timestamp) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(t.tv_nsec.min(999_999_999)));
    if t.tv_sec >= 0 {
        UNIX_EPOCH
            .checked_add(Duration::from_secs(t.tv_sec as u64) + nanos)
            .unwrap_or(UNIX_EPOCH)
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(t.tv_sec.unsigned_abs()))
            .and_then(|s| s.checked_add(nanos))
            .unwrap_or(UNIX_EPOCH)
    }
}

/// Metadata from a statx result.
pub(crate) fn file_info(s: &libc::statx) -> FileInfo {
    let mode = u32::from(s.stx_mode);
    let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
    let mut attributes = if is_dir {
        file_attributes::DIRECTORY
    } else {
        0
    };
    if !is_dir && mode & 0o222 == 0 {
        attributes |= file_attributes::READONLY;
    }
    if attributes == 0 {
        attributes = file_attributes::NORMAL;
    }
    let modified = ts(s.stx_mtime);
    let changed = ts(s.stx_ctime);
    let created = if s.stx_mask & libc::STATX_BTIME != 0 {
        ts(s.stx_btime)
    } else {
        modified.min(changed)
    };
    FileInfo {
        is_dir,
        size: s.stx_size,
        allocation_size: s.stx_blocks.saturating_mul(512),
        created,
        accessed: ts(s.stx_atime),
        modified,
        changed,
        attributes,
        file_id: s.stx_ino,
        nlink: s.stx_nlink,
        mode: Some(mode & 0o7777),
    }
}

fn downcast<T: Send + Sync + 'static>(ctx: &MrxContext, kind: &str) -> RxResult<Arc<T>> {
    ctx.clone().downcast::<T>().map_err(|_| {
        RxError::status(
            NtStatus::STATUS_INVALID_HANDLE,
            format!("rdr-local: the {kind} context was not made by rdr-local"),
        )
    })
}

fn split_time(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            if d.subsec_nanos() == 0 {
                (-secs, 0)
            } else {
                (-secs - 1, 1_000_000_000 - d.subsec_nanos())
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> RxResult<T> + Send + 'static,
) -> RxResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        st(
            NtStatus::STATUS_UNSUCCESSFUL,
            what,
            &format!("worker failed: {e}"),
        )
    })?
}

impl LocalRdr {
    /// A mini-redirector with no shares.
    pub fn new() -> Self {
        Self::default()
    }

    /// Export `dir` as share `share` (names compare case-insensitively; a later export of the
    /// same name replaces the earlier for new connections).
    pub fn export(&self, share: &str, dir: PathBuf) -> RxResult<()> {
        if share.is_empty() || share.contains(['\\', '/', '\0']) {
            return Err(RxError::InvalidName {
                input: share.to_string(),
                problem: "a share name is one non-empty component".into(),
            });
        }
        let bad = |why: String| {
            RxError::status(
                NtStatus::STATUS_BAD_NETWORK_NAME,
                format!("share {share}: {}: {why}", dir.display()),
            )
        };
        // Absolute, so a later change of the working directory does not move the share.
        let dir = std::fs::canonicalize(&dir).map_err(|e| bad(e.to_string()))?;
        if !dir.is_dir() {
            return Err(bad("not a directory".into()));
        }
        self.inner
            .exports
            .write()
            .insert(share.to_lowercase(), (share.to_string(), dir));
        Ok(())
    }

    /// Stop exporting `share` for new connections; true if it was exported.
    pub fn unexport(&self, share: &str) -> bool {
        self.inner
            .exports
            .write()
            .remove(&share.to_lowercase())
            .is_some()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> LocalStats {
        let c = &self.inner.counters;
        LocalStats {
            srv_opens: c.opens.load(Ordering::SeqCst),
            fds: c.fds.load(Ordering::SeqCst),
            srv_calls_created: c.srv_calls_created.load(Ordering::SeqCst),
            srv_calls_finalized: c.srv_calls_finalized.load(Ordering::SeqCst),
            v_net_roots_created: c.v_net_roots_created.load(Ordering::SeqCst),
            v_net_roots_finalized: c.v_net_roots_finalized.load(Ordering::SeqCst),
            net_roots_finalized: c.net_roots_finalized.load(Ordering::SeqCst),
        }
    }

    /// Server names `create_srv_call` was asked for, in order.
    pub fn servers(&self) -> Vec<String> {
        self.inner.servers.lock().clone()
    }

    /// Logon ids of the views created, in order.
    pub fn logon_ids(&self) -> Vec<u32> {
        self.inner.logon_ids.lock().clone()
    }

    fn connect_share(&self, share: &str) -> RxResult<Arc<ShareRoot>> {
        let Some((name, dir)) = self
            .inner
            .exports
            .read()
            .get(&share.to_lowercase())
            .cloned()
        else {
            return Err(RxError::status(
                NtStatus::STATUS_BAD_NETWORK_NAME,
                format!("share {share}: not exported by rdr-local"),
            ));
        };
        let fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&dir)
            .map_err(|e| {
                RxError::status(
                    NtStatus::STATUS_BAD_NETWORK_NAME,
                    format!("share {name}: cannot open {}: {e}", dir.display()),
                )
            })?;
        Ok(Arc::new(ShareRoot {
            name,
            fd: OwnedFd::from(fd),
        }))
    }
}

use std::os::unix::fs::OpenOptionsExt;

#[async_trait]
impl MiniRedirector for LocalRdr {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn create_srv_call(
        &self,
        params: &SrvCallParams,
        ctx: &RxContext,
    ) -> RxResult<MrxContext> {
        if ctx.is_cancelled() {
            return Err(RxError::Cancelled {
                what: format!("connect to {}", params.server),
            });
        }
        if params.server.is_empty() || params.server.contains(['\\', '/', '\0']) {
            return Err(RxError::InvalidName {
                input: params.server.clone(),
                problem: "a server name is one non-empty component".into(),
            });
        }
        self.inner.servers.lock().push(params.server.clone());
        self.inner
            .counters
            .srv_calls_created
            .fetch_add(1, Ordering::SeqCst);
        Ok(Arc::new(LocalSrvCall {
            server: params.server.clone(),
        }))
    }

    async fn finalize_srv_call(&self, _srv_call: &MrxContext, _force: bool) {
        self.inner
            .counters
            .srv_calls_finalized
            .fetch_add(1, Ordering::SeqCst);
    }

    async fn create_v_net_root(
        &self,
        srv_call: &MrxContext,
        net_root: Option<&MrxContext>,
        params: &VNetRootParams,
        ctx: &RxContext,
    ) -> RxResult<VNetRootCreated> {
        let _srv: Arc<LocalSrvCall> = downcast(srv_call, "SrvCall")?;
        if ctx.is_cancelled() {
            return Err(RxError::Cancelled {
                what: format!("connect share {}", params.share),
            });
        }
        let (root, new_net_root) = match net_root {
            Some(nr) => (downcast::<LocalNetRoot>(nr, "NetRoot")?.root.clone(), None),
            None => {
                let root = self.connect_share(&params.share)?;
                let nr: MrxContext = Arc::new(LocalNetRoot { root: root.clone() });
                (root, Some(nr))
            }
        };
        let logon_id = params.credentials.logon_id;
        self.inner.logon_ids.lock().push(logon_id);
        self.inner
            .counters
            .v_net_roots_created
            .fetch_add(1, Ordering::SeqCst);
        Ok(VNetRootCreated {
            net_root: new_net_root,
            v_net_root: Arc::new(LocalVNetRoot { root, logon_id }),
        })
    }

    async fn finalize_net_root(&self, _net_root: &MrxContext) {
        self.inner
            .counters
            .net_roots_finalized
            .fetch_add(1, Ordering::SeqCst);
    }

    async fn finalize_v_net_root(&self, _v_net_root: &MrxContext) {
        self.inner
            .counters
            .v_net_roots_finalized
            .fetch_add(1, Ordering::SeqCst);
    }

    async fn create(
        &self,
        v_net_root: &MrxContext,
        path: &str,
        params: &CreateParams,
        ctx: &RxContext,
    ) -> RxResult<CreateResult> {
        let vnr: Arc<LocalVNetRoot> = downcast(v_net_root, "VNetRoot")?;
        if ctx.is_cancelled() {
            return Err(RxError::Cancelled {
                what: format!("{}\\{path}: open", vnr.root.name),
            });
        }
        create::create(&self.inner, &vnr, path, params)
    }

    async fn close_srv_open(&self, srv_open: &MrxContext) -> RxResult<()> {
        let open: Arc<LocalOpen> = downcast(srv_open, "SrvOpen")?;
        if !open.closed.load(Ordering::SeqCst) {
            open.closing.cancel();
            // Let a pending notification see the close and drop its watcher.
            drop(open.notify.lock().await.take());
        }
        open.release()
    }

    async fn read(
        &self,
        srv_open: &MrxContext,
        offset: u64,
        len: u32,
        ctx: &RxContext,
    ) -> RxResult<Bytes> {
        let open: Arc<LocalOpen> = downcast(srv_open, "SrvOpen")?;
        let fd = open.fd()?;
        // The path is looked up only for a message: the hot path takes no table lock.
        if open.is_dir {
            let what = open.what();
            return Err(st(
                NtStatus::STATUS_INVALID_DEVICE_REQUEST,
                &what,
                "read of a directory",
            ));
        }
        if !open.access.can_read() {
            let what = open.what();
            return Err(st(
                NtStatus::STATUS_ACCESS_DENIED,
                &what,
                "not opened for reading",
            ));
        }
        let len = (len as usize).min(MAX_READ);
        if ctx.is_cancelled() {
            return Err(RxError::Cancelled {
                what: format!("{}: read", open.what()),
            });
        }
        if len <= INLINE_IO {
            return sys::pread_full(fd.raw(), offset, len)
                .map_err(|e| sys_err(e, &open.what(), "read"));
        }
        let work = tokio::task::spawn_blocking(move || sys::pread_full(fd.raw(), offset, len));
        tokio::select! {
            biased;
            _ = ctx.cancelled() => Err(RxError::Cancelled { what: format!("{}: read", open.what()) }),
            r = work => match r {
                Ok(r) => r.map_err(|e| sys_err(e, &open.what(), "read")),
                Err(e) => Err(st(NtStatus::STATUS_UNSUCCESSFUL, &open.what(), &format!("read worker failed: {e}"))),
            },
        }
    }

    async fn write(
        &self,
        srv_open: &MrxContext,
        offset: u64,
        data: Bytes,
        ctx: &RxContext,
    ) -> RxResult<u32> {
        let open: Arc<LocalOpen> = downcast(srv_open, "SrvOpen")?;
        let fd = open.fd()?;
        if open.is_dir {
            let what = open.what();
            return Err(st(
                NtStatus::STATUS_INVALID_DEVICE_REQUEST,
                &what,
                "write to a directory",
            ));
        }
        if !open.access.can_write() {
            let what = open.what();
            return Err(st(
                NtStatus::STATUS_ACCESS_DENIED,
                &what,
                "not opened for writing",
            ));
        }
        let Ok(n) = u32::try_from(data.len()) else {
            let what = open.what();
            return Err(st(
                NtStatus::STATUS_INVALID_PARAMETER,
                &what,
                "write larger than 4 GiB",
            ));
        };
        // Checked only before starting: a write that started is not abandoned half done.
        if ctx.is_cancelled() {
            return Err(RxError::Cancelled {
                what: format!("{}: write", open.what()),
            });
        }
        let r = if data.len() <= INLINE_IO {
            sys::pwrite_all(fd.raw(), offset, &data)
        } else {
            match tokio::task::spawn_blocking(move || sys::pwrite_all(fd.raw(), offset, &data))
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    let what = open.what();
                    return Err(st(
                        NtStatus::STATUS_UNSUCCESSFUL,
                        &what,
                        &format!("write worker failed: {e}"),
                    ));
                }
            }
        };
        r.map_err(|e| sys_err(e, &open.what(), "write"))?;
        Ok(n)
    }

    async fn flush(&self, srv_open: &MrxContext, ctx: &RxContext) -> RxResult<()> {
        let open: Arc<LocalOpen> = downcast(srv_open, "SrvOpen")?;
        let fd = open.fd()?;
        let what = open.what();
        if ctx.is_cancelled() {
            return Err(RxError::Cancelled {
                what: format!("{what}: flush"),
            });
        }
        let w = what.clone();
        blocking(&what, move || {
            sys::fsync(fd.raw()).map_err(|e| sys_err(e, &w, "fsync"))
        })
        .await
    }

    async fn query_info(&self, srv_open: &MrxContext, _ctx: &RxContext) -> RxResult<FileInfo> {
        let open: Arc<LocalOpen> = downcast(srv_open, "SrvOpen")?;
        let fd = open.fd()?;
        let s = sys::statx_fd(fd.raw()).map_err(|e| sys_err(e, &open.what(), "stat"))?;
        Ok(file_info(&s))
    }

    async fn query_path_info(
        &self,
        v_net_root: &MrxContext,
        path: &str,
        ctx: &RxContext,
    ) -> RxResult<FileInfo> {
        let vnr: Arc<LocalVNetRoot> = downcast(v_net_root, "VNetRoot")?;
        if ctx.is_cancelled() {
            return Err(RxError::Cancelled {
                what: format!("{}\\{path}: query", vnr.root.name),
            });
        }
        create::query_path(&vnr, path)
    }

    async fn set_info(
        &self,
        srv_open: &MrxContext,
        info: &SetInfo,
        _ctx: &RxContext,
    ) -> RxResult<()> {
        let open: Arc<LocalOpen> = downcast(srv_open, "SrvOpen")?;
        let fd = open.fd()?;
        let what = open.what();
        match info {
            SetInfo::Basic {
                created: _,
                accessed,
                modified,
                attributes,
            } => {
                // Linux cannot set a creation time; it is ignored.
                if accessed.is_some() || modified.is_some() {
                    sys::futimens(fd.raw(), accessed.map(split_time), modified.map(split_time))
                        .map_err(|e| sys_err(e, &what, "set times"))?;
                }
                if let Some(attrs) = attributes
                    && !open.is_dir
                {
                    let s = sys::statx_fd(fd.raw()).map_err(|e| sys_err(e, &what, "stat"))?;
                    let mode = u32::from(s.stx_mode) & 0o7777;
                    let new = if attrs & file_attributes::READONLY != 0 {
                        mode & !0o222
                    } else if mode & 0o222 == 0 {
                        mode | 0o200
                    } else {
                        mode
                    };
                    if new != mode {
                        sys::fchmod(fd.raw(), new).map_err(|e| sys_err(e, &what, "chmod"))?;
                    }
                }
                Ok(())
            }
            SetInfo::EndOfFile(size) => {
                if open.is_dir {
                    return Err(st(
                        NtStatus::STATUS_FILE_IS_A_DIRECTORY,
                        &what,
                        "cannot set the size of a directory",
                    ));
                }
                if !open.access.can_write() {
                    return Err(st(
                        NtStatus::STATUS_ACCESS_DENIED,
                        &what,
                        "not opened for writing",
                    ));
                }
                sys::ftruncate(fd.raw(), *size).map_err(|e| sys_err(e, &what, "truncate"))
            }
            SetInfo::Mode(mode) => {
                sys::fchmod(fd.raw(), *mode).map_err(|e| sys_err(e, &what, "chmod"))
            }
            SetInfo::Disposition(delete) => {
                let path = open.path();
                if path.is_root() {
                    return Err(st(
                        NtStatus::STATUS_CANNOT_DELETE,
                        &what,
                        "the share root cannot be deleted",
                    ));
                }
                if *delete && open.is_dir && open::dir_has_entries(fd.raw(), &what)? {
                    return Err(st(
                        NtStatus::STATUS_DIRECTORY_NOT_EMPTY,
                        &what,
                        "cannot mark a directory that is not empty for deletion",
                    ));
                }
                let mut table = self.inner.files.lock();
                if let Some(f) = table.files.get_mut(&open.key) {
                    f.delete_pending = *delete;
                }
                Ok(())
            }
            SetInfo::Rename { new_path, replace } => self.rename(&open, new_path, *replace),
        }
    }

    async fn query_directory(
        &self,
        srv_open: &MrxContext,
        pattern: Option<&str>,
        restart: bool,
        ctx: &RxContext,
    ) -> RxResult<Vec<DirEntry>> {
        let open: Arc<LocalOpen> = downcast(srv_open, "SrvOpen")?;
        let what = open.what();
        if !open.is_dir {
            return Err(st(
                NtStatus::STATUS_NOT_A_DIRECTORY,
                &what,
                "enumeration needs a directory",
            ));
        }
        let _ = open.fd()?;
        // Checked before, not raced: a batch abandoned half way would lose its entries.
        if ctx.is_cancelled() {
            return Err(RxError::Cancelled {
                what: format!("{what}: list"),
            });
        }
        let pattern = pattern.map(str::to_string);
        blocking(&what, move || {
            dir::next_batch(&open, pattern.as_deref(), restart)
        })
        .await
    }

    async fn notify_change(
        &self,
        srv_open: &MrxContext,
        filter: u32,
        watch_tree: bool,
        ctx: &RxContext,
    ) -> RxResult<Vec<ChangeEvent>> {
        let open: Arc<LocalOpen> = downcast(srv_open, "SrvOpen")?;
        notify::notify_change(open, filter, watch_tree, ctx).await
    }

    async fn lock(
        &self,
        srv_open: &MrxContext,
        range: LockRange,
        wait: bool,
        ctx: &RxContext,
    ) -> RxResult<()> {
        let open: Arc<LocalOpen> = downcast(srv_open, "SrvOpen")?;
        let _ = open.fd()?;
        lock::lock(&open, range, wait, ctx).await
    }

    async fn unlock(
        &self,
        srv_open: &MrxContext,
        range: LockRange,
        _ctx: &RxContext,
    ) -> RxResult<()> {
        let open: Arc<LocalOpen> = downcast(srv_open, "SrvOpen")?;
        lock::unlock(&open, range)
    }

    async fn query_volume(
        &self,
        v_net_root: &MrxContext,
        _ctx: &RxContext,
    ) -> RxResult<VolumeInfo> {
        let vnr: Arc<LocalVNetRoot> = downcast(v_net_root, "VNetRoot")?;
        let what = vnr.root.what(&RelPath::root());
        let s = sys::fstatvfs(vnr.root.raw()).map_err(|e| sys_err(e, &what, "statvfs"))?;
        let unit = if s.f_frsize > 0 {
            s.f_frsize
        } else {
            s.f_bsize
        };
        Ok(VolumeInfo {
            total_bytes: (s.f_blocks as u64).saturating_mul(unit as u64),
            free_bytes: (s.f_bavail as u64).saturating_mul(unit as u64),
            block_size: u32::try_from(unit).unwrap_or(u32::MAX),
        })
    }
}

impl LocalRdr {
    /// Rename the open file to `new_path` in the same share (renameat2, `RENAME_NOREPLACE`
    /// unless `replace`); the target's parent is resolved beneath the share root.
    fn rename(&self, open: &LocalOpen, new_path: &str, replace: bool) -> RxResult<()> {
        let old = open.path();
        let what = open.root.what(&old);
        let new = RelPath::parse(new_path)?;
        let new_what = open.root.what(&new);
        if old.is_root() {
            return Err(st(
                NtStatus::STATUS_ACCESS_DENIED,
                &what,
                "the share root cannot be renamed",
            ));
        }
        if new == old {
            return Ok(());
        }
        let new_leaf = new.leaf(&new_what)?;
        let new_parent = new.parent().unwrap_or_else(RelPath::root);
        let npfd = sys::openat2(
            open.root.raw(),
            &new_parent.kernel(),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
        )
        .map_err(|e| status_map::lookup_err(e, &new_what, true))?;
        let (opfd, old_leaf) = open::locate_entry(&open.root, &old, open.key)?;
        if replace {
            // Windows refuses to replace a file that is open.
            if let Ok(t) = sys::lstatx_at(npfd.as_raw_fd(), &new_leaf) {
                let tkey = sys::key_of(&t);
                if tkey != open.key && self.inner.files.lock().files.contains_key(&tkey) {
                    return Err(st(
                        NtStatus::STATUS_ACCESS_DENIED,
                        &new_what,
                        "the rename target is open",
                    ));
                }
            }
        }
        sys::renameat2(
            opfd.as_raw_fd(),
            &old_leaf,
            npfd.as_raw_fd(),
            &new_leaf,
            replace,
        )
        .map_err(|e| sys_err(e, &format!("{what} -> {new_what}"), "rename"))?;
        self.inner.files.lock().renamed(&open.root, &old, &new);
        Ok(())
    }
}
