//! The FUSE filesystem of one connection: every VFS call becomes an rdr-core request on a tokio
//! task, so FUSE reader threads never wait on the network (`Reply*` objects are `Send`).
//!
//! Caching follows docs/caching-design.md §5.1: no FUSE writeback cache (dirty data lives in the
//! daemon), per-open `FOPEN_DIRECT_IO` unless the open may cache reads, `KEEP_CACHE` only while
//! the file is unchanged; attributes and entries carry a short TTL (cifs `actimeo`).

use crate::dircache::{DirCache, split};
use crate::inode::{InodeTable, ROOT, join};
use crate::symlink;
use bytes::Bytes;
use fuser::{
    AccessFlags, CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLock,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use parking_lot::Mutex;
use rdr_core::NtStatus;
use rdr_core::Rdbss;
use rdr_core::RxContext;
use rdr_core::RxError;
use rdr_core::fobx::Fobx;
use rdr_core::minirdr::{
    AccessMask, CreateDisposition, CreateOptions, CreateParams, DirEntry, FileInfo, LockRange,
    SetInfo, ShareAccess, file_attributes,
};
use rdr_core::v_net_root::VNetRoot;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest READ/WRITE the kernel sends (it clamps to 1 MiB anyway: max_pages_limit 256).
pub const MAX_IO: u32 = 1 << 20;

/// A LOOKUP that misses in a directory whose complete listing expired reads the listing again
/// (a few round trips, once per TTL) when it had at most this many names; past that, single
/// lookups are cheaper.
const RELIST_MAX: usize = 4096;

/// A change made through a mount, as a share path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The file's data or attributes changed (written, truncated, times, mode).
    Data(String),
    /// The name appeared, went away or now names something else (create, mkdir, unlink,
    /// rmdir, either end of a rename).
    Name(String),
}

/// Told of the changes made through a mount, so that the other mounts of the same share can
/// drop what they cached: the server never breaks between two views of one client
/// (caching-design §5.10). Called from FUSE handlers: it must not block.
#[derive(Clone)]
pub struct ChangeHook(pub Arc<dyn Fn(Vec<Change>) + Send + Sync>);

impl std::fmt::Debug for ChangeHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangeHook")
    }
}

/// Told of each read or write of at least [`BULK_IO`] bytes through a mount: data is streaming,
/// and the daemon may give its threads more CPUs while it does. Called from FUSE handlers: it
/// must not block.
#[derive(Clone)]
pub struct BulkHook(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for BulkHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BulkHook")
    }
}

/// Reads and writes of at least this many bytes are streaming data ([`BulkHook`]); a small
/// file's write is not.
pub const BULK_IO: usize = 128 * 1024;

/// Settings of one mount.
#[derive(Debug, Clone)]
pub struct FsOptions {
    /// Attribute and entry TTL handed to the kernel (cifs `actimeo`; default 1 s).
    pub attr_ttl: Duration,
    /// The local user owning the connection: files show as theirs, and only they and root may
    /// use the mount.
    pub owner_uid: u32,
    /// The owner's primary group.
    pub owner_gid: u32,
    /// Told of every change made through this mount (`None`: nobody listens).
    pub on_change: Option<ChangeHook>,
    /// Told of every read or write of at least [`BULK_IO`] bytes (`None`: nobody listens).
    pub on_bulk: Option<BulkHook>,
}

impl Default for FsOptions {
    fn default() -> Self {
        FsOptions {
            attr_ttl: Duration::from_secs(1),
            owner_uid: 0,
            owner_gid: 0,
            on_change: None,
            on_bulk: None,
        }
    }
}

/// One open FUSE file handle: the Fobx plus what the front end tracks for it.
struct Handle {
    fobx: Arc<Fobx>,
    ino: u64,
    /// Byte-range locks granted through this handle (SMB unlocks need the exact range).
    locks: Mutex<Vec<LockRange>>,
    /// Data was written since the last flush.
    wrote: AtomicBool,
    /// Data was written since other mounts were last told.
    changed: AtomicBool,
    /// Opened in page-cache mode (read caching was granted then; not `FOPEN_DIRECT_IO`).
    page_cache: bool,
    /// A directory listing, read at offset 0 and served from here for later offsets.
    listing: Mutex<Option<Arc<Vec<DirEntry>>>>,
}

/// What a file of a symlink file's size held when it was read: its (size, mtime) then, and
/// its target if it is a link.
struct LinkSeen {
    /// (size, mtime) of the file when it was read.
    stamp: (u64, SystemTime),
    /// The link's target; `None`: a plain file.
    target: Option<Vec<u8>>,
    /// When it was read.
    checked: Instant,
}

/// Counters shared with the daemon (open handles, whether the session still runs).
#[derive(Debug, Default)]
pub struct MountStats {
    /// Open FUSE handles (files and directories).
    pub open_handles: AtomicUsize,
    /// Requests refused because the caller was neither the owner nor root.
    pub denied: AtomicU64,
    /// The last failure an application got from this mount (see [`LastError`]).
    pub last_error: Mutex<Option<LastError>>,
}

/// The last failure a mount returned to an application, for the per-connection inventory
/// (`rdr use --json`): when, the NTSTATUS and errno, and the message naming what failed.
/// Answers that are an ordinary outcome for the caller (no such file, it exists, not empty, not
/// a directory or is one, a name too long or invalid, a lock held by someone else, an
/// interrupted wait, an unsupported feature) are not failures; a share or connection that is
/// gone is one. Work the mount does behind the caller's back (re-reading a listing, telling
/// links from files) is not recorded; closing a file is, though the kernel tells nobody.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// When it happened.
    pub at: SystemTime,
    /// The NTSTATUS the error maps to (`RxError::nt_status`).
    pub status: NtStatus,
    /// The errno the application got.
    pub errno: i32,
    /// What failed, as the core's error says it (path and operation).
    pub message: String,
}

impl LastError {
    /// The failure `e`, unless it is an ordinary outcome (see the type's documentation).
    pub fn of(e: &RxError) -> Option<LastError> {
        let errno = e.errno();
        let status = e.nt_status();
        // ENOENT for a share or connection that is gone is a failure, not an answer.
        let gone = matches!(
            status,
            NtStatus::STATUS_BAD_NETWORK_NAME
                | NtStatus::STATUS_NETWORK_NAME_DELETED
                | NtStatus::STATUS_CONNECTION_DISCONNECTED
        );
        let ordinary_status = matches!(status, NtStatus::STATUS_OBJECT_NAME_INVALID);
        let ordinary = [
            libc::ENOENT,
            libc::EEXIST,
            libc::ENOTEMPTY,
            libc::ENOTDIR,
            libc::EISDIR,
            libc::EAGAIN,
            libc::EINTR,
            libc::ENAMETOOLONG,
            libc::EOPNOTSUPP,
            libc::ENOSYS,
            libc::ENODATA,
        ];
        (gone || !(ordinary.contains(&errno) || ordinary_status)).then(|| LastError {
            at: SystemTime::now(),
            status,
            errno,
            message: e.to_string(),
        })
    }
}

struct Inner {
    rdbss: Rdbss,
    v: Arc<VNetRoot>,
    rt: tokio::runtime::Handle,
    opts: FsOptions,
    inodes: Mutex<InodeTable>,
    handles: Mutex<HashMap<u64, Arc<Handle>>>,
    next_fh: AtomicU64,
    /// RELEASEs being processed (the core close not finished yet).
    closing: AtomicUsize,
    stats: Arc<MountStats>,
    /// Per inode: (size, mtime) when its pages were last allowed into the page cache.
    cached: Mutex<HashMap<u64, (u64, SystemTime)>>,
    /// Directory attributes and complete listings, for the attribute TTL.
    dirs: DirCache,
    /// Files of a symlink file's size, by path: their (size, mtime) when read, and the link
    /// target if they are links (`symlink.rs`).
    links: Mutex<HashMap<String, LinkSeen>>,
    /// Inodes last described to the kernel as links: a getattr must not change an inode's
    /// type (the kernel would mark it bad), so a file that turned into a link or back gets a
    /// new inode instead.
    link_inos: Mutex<std::collections::HashSet<u64>>,
    /// The session's notifier, once the session exists (drops kernel caches).
    notifier: std::sync::OnceLock<fuser::Notifier>,
    /// Inodes with a page drop queued, and the byte range to drop (see
    /// [`Inner::drop_pages_after_read`]).
    dropping: Mutex<HashMap<u64, (u64, u64)>>,
}

/// The `fuser::Filesystem` of one connection.
pub struct RdrFs {
    inner: Arc<Inner>,
}

fn err(e: &RxError) -> Errno {
    Errno::from_i32(e.errno())
}

/// Most bytes one copy_file_range request copies (the caller asks again for the rest), so
/// one request never holds a FUSE thread for long.
const MAX_COPY: u64 = 256 << 20;

/// The errno of a failed server-side copy. What says "the server cannot copy this" becomes
/// EOPNOTSUPP, so the copy falls back to read and write and still happens; real failures
/// (no space, access denied, a lost connection) keep their own errno.
fn copy_errno(e: &RxError) -> Errno {
    match e.nt_status() {
        NtStatus::STATUS_NOT_SUPPORTED
        | NtStatus::STATUS_NOT_IMPLEMENTED
        | NtStatus::STATUS_INVALID_DEVICE_REQUEST
        | NtStatus::STATUS_INVALID_PARAMETER
        | NtStatus::STATUS_INVALID_VIEW_SIZE
        | NtStatus::STATUS_OBJECT_NAME_NOT_FOUND => Errno::EOPNOTSUPP,
        _ => err(e),
    }
}

fn name_str(name: &OsStr) -> Result<&str, Errno> {
    let s = name.to_str().ok_or(Errno::EINVAL)?;
    if s.contains('\\') || s.contains('/') || s.is_empty() {
        return Err(Errno::EINVAL);
    }
    Ok(s)
}

/// Open-flag access → SMB desired access.
fn access_of(flags: i32) -> AccessMask {
    let base = AccessMask::FILE_READ_ATTRIBUTES | AccessMask::SYNCHRONIZE;
    let read = AccessMask::FILE_READ_DATA | AccessMask::FILE_READ_EA;
    let write = AccessMask::FILE_WRITE_DATA
        | AccessMask::FILE_APPEND_DATA
        | AccessMask::FILE_WRITE_ATTRIBUTES
        | AccessMask::FILE_WRITE_EA;
    match flags & libc::O_ACCMODE {
        libc::O_WRONLY => base | write,
        libc::O_RDWR => base | read | write,
        _ => base | read,
    }
}

fn share_all() -> ShareAccess {
    ShareAccess::READ | ShareAccess::WRITE | ShareAccess::DELETE
}

/// A view into a running filesystem for the mount's owner (which inodes exist).
#[derive(Clone)]
pub struct FsProbe(Arc<Inner>);

impl FsProbe {
    /// Hand over the session's notifier (the filesystem exists before its session).
    pub fn set_notifier(&self, n: fuser::Notifier) {
        let _ = self.0.notifier.set(n);
    }

    /// Another mount of the share changed these paths: forget what this mount cached of them
    /// (attributes, listings of their directories, the page-cache generation). Returns the
    /// kernel objects to invalidate: inodes, and (parent inode, name) entries.
    pub fn changed_elsewhere(&self, changes: &[Change]) -> (Vec<u64>, Vec<(u64, String)>) {
        let inner = &self.0;
        let mut inodes = Vec::new();
        let mut entries = Vec::new();
        let table = inner.inodes.lock();
        for c in changes {
            let (Change::Data(p) | Change::Name(p)) = c;
            inner.dirs.drop_attr(p);
            if let Some(ino) = table.peek(p) {
                inner.cached.lock().remove(&ino);
                inodes.push(ino);
            }
            if let Change::Name(p) = c {
                inner.dirs.forget_tree(p);
                let (dir, name) = split(p);
                inner.dirs.forget_listing(dir);
                inner.dirs.drop_attr(dir);
                if let Some(d) = table.peek(dir) {
                    inodes.push(d);
                    entries.push((d, name.to_string()));
                }
            }
        }
        (inodes, entries)
    }

    /// Inode numbers the kernel may hold in its caches.
    pub fn inodes(&self) -> Vec<u64> {
        self.0.inodes.lock().inodes()
    }

    /// The inodes of these share paths (for cache invalidation after a break).
    pub fn inodes_of(&self, paths: &[String]) -> Vec<u64> {
        self.0.inodes.lock().inodes_of(paths)
    }

    /// Close in the core every handle the kernel never released. When a lazily detached
    /// mount loses its last user, the kernel tears the connection down right after queueing
    /// the last RELEASEs, which may never reach us; without this the server would keep those
    /// opens (and the view its tree) for good. Call from a plain thread after the session ends.
    pub fn close_leftovers(&self) {
        let left: Vec<Arc<Handle>> = {
            let mut h = self.0.handles.lock();
            h.drain().map(|(_, v)| v).collect()
        };
        if left.is_empty() {
            return;
        }
        self.0
            .stats
            .open_handles
            .fetch_sub(left.len(), Ordering::Relaxed);
        let rdbss = self.0.rdbss.clone();
        self.0.rt.block_on(async move {
            for h in left {
                let _ = rdbss.close(&h.fobx).await;
            }
        });
    }
}

impl RdrFs {
    /// A handle to ask the running filesystem about its state.
    pub fn probe(&self) -> FsProbe {
        FsProbe(self.inner.clone())
    }

    /// A filesystem serving `v` through `rdbss`; async work runs on `rt`.
    pub fn new(
        rdbss: Rdbss,
        v: Arc<VNetRoot>,
        rt: tokio::runtime::Handle,
        opts: FsOptions,
        stats: Arc<MountStats>,
    ) -> Self {
        RdrFs {
            inner: Arc::new(Inner {
                rdbss,
                v,
                rt,
                inodes: Mutex::new(InodeTable::new()),
                handles: Mutex::new(HashMap::new()),
                next_fh: AtomicU64::new(1),
                closing: AtomicUsize::new(0),
                stats,
                cached: Mutex::new(HashMap::new()),
                dirs: DirCache::new(opts.attr_ttl),
                links: Mutex::new(HashMap::new()),
                link_inos: Mutex::default(),
                notifier: std::sync::OnceLock::new(),
                dropping: Mutex::default(),
                opts,
            }),
        }
    }

    /// A read or write of `len` bytes: tells the bulk hook when it is one.
    fn bulk(&self, len: usize) {
        if len >= BULK_IO
            && let Some(h) = &self.inner.opts.on_bulk
        {
            (h.0)();
        }
    }

    /// Only the owner and root may use the mount (checked on every path-taking request; the
    /// handle-taking ones need an open that was checked).
    fn allowed(&self, req: &Request) -> bool {
        let uid = req.uid();
        let ok = uid == 0 || uid == self.inner.opts.owner_uid;
        if !ok {
            self.inner.stats.denied.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Runs a request's work: first on the FUSE thread that read it, until it would wait
    /// (a cache hit, a write taken by write-behind, or an SMB request sent), and only then as
    /// a runtime task. Handing every request to the runtime first cost a thread wake-up per
    /// request, a tenth of a small-file create.
    fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        rdr_core::task::spawn_polled(&self.inner.rt, fut);
    }
}

impl Inner {
    /// The errno for `e`, keeping it as the mount's last error when it is a failure (not an
    /// ordinary outcome such as "no such file").
    fn fail(&self, e: &RxError) -> Errno {
        if let Some(last) = LastError::of(e) {
            *self.stats.last_error.lock() = Some(last);
        }
        err(e)
    }

    /// [`copy_errno`], keeping a real failure (not "the server cannot copy this") as the
    /// mount's last error.
    fn copy_fail(&self, e: &RxError) -> Errno {
        let n = copy_errno(e);
        if n != Errno::EOPNOTSUPP {
            return self.fail(e);
        }
        n
    }

    fn attr(&self, ino: u64, info: &FileInfo) -> FileAttr {
        let target = if Self::may_be_link(info) {
            self.inodes
                .lock()
                .path(ino)
                .and_then(|p| self.link_target(&p, info))
        } else {
            None
        };
        {
            let mut l = self.link_inos.lock();
            if target.is_some() {
                l.insert(ino);
            } else if !l.is_empty() {
                l.remove(&ino);
            }
        }
        if let Some(target) = target {
            let mut a = self.attr_of_kind(ino, info, FileType::Symlink);
            a.size = target.len() as u64;
            a.perm = 0o777;
            return a;
        }
        let kind = if info.is_dir {
            FileType::Directory
        } else {
            FileType::RegularFile
        };
        self.attr_of_kind(ino, info, kind)
    }

    /// Whether a file with `info` could be a link file (only their exact size can).
    fn may_be_link(info: &FileInfo) -> bool {
        !info.is_dir && info.size == symlink::FILE_SIZE as u64
    }

    /// The target of the link at `path` as `classify` last read it. While a changed file
    /// (other size or mtime) has not been read again, what it last was stands, so its type
    /// never changes on a failed read.
    fn link_target(&self, path: &str, info: &FileInfo) -> Option<Vec<u8>> {
        if !Self::may_be_link(info) {
            return None;
        }
        self.links.lock().get(path).and_then(|l| l.target.clone())
    }

    /// `path` (and anything below it) was removed or renamed: what was read of link files
    /// there no longer holds for that name.
    fn forget_links(&self, path: &str) {
        let mut l = self.links.lock();
        if l.is_empty() {
            return;
        }
        let below = format!("{path}\\");
        l.retain(|p, _| p != path && !p.starts_with(&below));
    }

    /// `from` (and anything below it) was renamed to `to`: what was read of link files moves
    /// with them (a rename changes no content), and what stood at `to` is gone.
    fn renamed_links(&self, from: &str, to: &str) {
        self.forget_links(to);
        let mut l = self.links.lock();
        let below = format!("{from}\\");
        let moved: Vec<String> = l
            .keys()
            .filter(|p| p.as_str() == from || p.starts_with(&below))
            .cloned()
            .collect();
        for old in moved {
            if let Some(seen) = l.remove(&old) {
                l.insert(format!("{to}{}", &old[from.len()..]), seen);
            }
        }
    }

    /// Whether `info` would change the type the kernel has for `ino` (link ↔ plain file).
    fn type_changed(&self, ino: u64, info: &FileInfo) -> bool {
        if info.is_dir {
            return false;
        }
        let was = self.link_inos.lock().contains(&ino);
        let now = self
            .inodes
            .lock()
            .path(ino)
            .is_some_and(|p| self.link_target(&p, info).is_some());
        was != now
    }

    /// Reads a file that has a link file's size, once per (size, mtime), to learn whether it
    /// is a link. Every other file costs nothing. A failed read changes nothing.
    async fn classify(&self, path: &str, info: &FileInfo) {
        if !Self::may_be_link(info) {
            return;
        }
        let stamp = (info.size, info.modified);
        if self
            .links
            .lock()
            .get(path)
            .is_some_and(|l| l.stamp == stamp)
        {
            return;
        }
        let checked = Instant::now();
        if let Ok(d) = self.read_small(path, symlink::FILE_SIZE as u32).await {
            let seen = LinkSeen {
                stamp,
                target: symlink::parse(&d),
                checked,
            };
            self.links.lock().insert(path.to_string(), seen);
        }
    }

    /// The first `len` bytes of the file at `path` (open, read, close). Its errors are not
    /// recorded as the mount's last error: classifying a file reads it behind the caller's
    /// back; `readlink` records its own.
    async fn read_small(&self, path: &str, len: u32) -> Result<Bytes, RxError> {
        let params = CreateParams::open_existing(
            AccessMask::FILE_READ_DATA | AccessMask::FILE_READ_ATTRIBUTES | AccessMask::SYNCHRONIZE,
        );
        let ctx = RxContext::new();
        let fobx = self.rdbss.create(&self.v, path, &params, &ctx).await?;
        let data = self.rdbss.read(&fobx, 0, len, &ctx).await;
        let _ = self.rdbss.close(&fobx).await;
        data
    }

    fn attr_of_kind(&self, ino: u64, info: &FileInfo, kind: FileType) -> FileAttr {
        let perm = match info.mode {
            Some(m) => (m & 0o7777) as u16,
            None => {
                let base: u16 = if info.is_dir { 0o755 } else { 0o644 };
                if info.attributes & file_attributes::READONLY != 0 {
                    base & !0o222
                } else {
                    base
                }
            }
        };
        FileAttr {
            ino: INodeNo(ino),
            size: info.size,
            blocks: info.allocation_size.div_ceil(512),
            atime: info.accessed,
            mtime: info.modified,
            ctime: info.changed,
            crtime: info.created,
            kind,
            perm,
            nlink: info.nlink.max(1),
            uid: self.opts.owner_uid,
            gid: self.opts.owner_gid,
            rdev: 0,
            blksize: 1 << 20,
            flags: 0,
        }
    }

    fn path(&self, ino: INodeNo) -> Result<String, Errno> {
        self.inodes.lock().path(ino.0).ok_or(Errno::ENOENT)
    }

    fn handle(&self, fh: FileHandle) -> Result<Arc<Handle>, Errno> {
        self.handles.lock().get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    fn add_handle(&self, fobx: Arc<Fobx>, ino: u64, fl: FopenFlags) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.lock().insert(
            fh,
            Arc::new(Handle {
                fobx,
                ino,
                locks: Mutex::new(Vec::new()),
                wrote: AtomicBool::new(false),
                changed: AtomicBool::new(false),
                page_cache: !fl.contains(FopenFlags::FOPEN_DIRECT_IO),
                listing: Mutex::new(None),
            }),
        );
        self.stats.open_handles.fetch_add(1, Ordering::Relaxed);
        fh
    }

    /// An open in page-cache mode lost read caching (a break): no break will tell of the
    /// next change by another client, so the pages a read just brought in are dropped again,
    /// from a blocking thread once the reply is out (caching-design §5.5, risk 2). Only the
    /// range read (reads queued meanwhile widen it); one drop per inode is queued at a time.
    fn drop_pages_after_read(self: &Arc<Self>, ino: u64, offset: u64, len: u64) {
        let Some(n) = self.notifier.get().cloned() else {
            return;
        };
        let end = offset.saturating_add(len);
        {
            let mut q = self.dropping.lock();
            if let Some(r) = q.get_mut(&ino) {
                r.0 = r.0.min(offset);
                r.1 = r.1.max(end);
                return;
            }
            q.insert(ino, (offset, end));
        }
        let inner = self.clone();
        self.rt.spawn_blocking(move || {
            let Some((start, end)) = inner.dropping.lock().remove(&ino) else {
                return;
            };
            let len = i64::try_from(end.saturating_sub(start)).unwrap_or(i64::MAX);
            let start = i64::try_from(start).unwrap_or(i64::MAX);
            let _ = n.inval_inode(INodeNo(ino), start, len);
        });
    }

    /// Tell the listener (other mounts of the share) what changed through this mount.
    fn changed(&self, changes: Vec<Change>) {
        if let Some(h) = &self.opts.on_change {
            (h.0)(changes);
        }
    }

    /// A handle's writes are done (flush or release): tell the other mounts once.
    fn written(&self, h: &Handle) {
        if h.changed.swap(false, Ordering::Relaxed) {
            // The path first: the listener is not called under the inode table's lock.
            let path = self.inodes.lock().path(h.ino);
            if let Some(p) = path {
                self.changed(vec![Change::Data(p)]);
            }
        }
    }

    fn remove_handle(&self, fh: FileHandle) -> Option<Arc<Handle>> {
        let h = self.handles.lock().remove(&fh.0);
        if h.is_some() {
            self.stats.open_handles.fetch_sub(1, Ordering::Relaxed);
        }
        h
    }

    /// Wait (bounded) until no handle of `path` is open or being released. False when a
    /// handle stays open (a process really holds the file).
    async fn settle_releases(&self, path: &str) -> bool {
        let ino = self.inodes.lock().peek(path);
        for _ in 0..50 {
            let open = ino.is_some_and(|i| self.handles.lock().values().any(|h| h.ino == i));
            if !open && self.closing.load(Ordering::Acquire) == 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    async fn stat_path(&self, path: &str) -> Result<FileInfo, Errno> {
        self.rdbss
            .query_path_info(&self.v, path, &RxContext::new())
            .await
            .map_err(|e| self.fail(&e))
    }

    /// Metadata of a handle just opened: what the server sent with the open when the core
    /// still vouches for it, else a query (one round trip).
    async fn info_of(&self, fobx: &Arc<Fobx>, ctx: &RxContext) -> Result<FileInfo, Errno> {
        match fobx.open_info() {
            Some(i) => Ok(i),
            None => self
                .rdbss
                .query_info(fobx, ctx)
                .await
                .map_err(|e| self.fail(&e)),
        }
    }

    /// Open `path` for a metadata change, run `f`, close.
    async fn with_open<T, F, Fut>(
        &self,
        path: &str,
        access: AccessMask,
        options: CreateOptions,
        f: F,
    ) -> Result<T, Errno>
    where
        F: FnOnce(Arc<Fobx>) -> Fut,
        Fut: Future<Output = Result<T, RxError>>,
    {
        let mut params = CreateParams::open_existing(access | AccessMask::SYNCHRONIZE);
        params.options = options;
        let fobx = self
            .rdbss
            .create(&self.v, path, &params, &RxContext::new())
            .await
            .map_err(|e| self.fail(&e))?;
        let r = f(fobx.clone()).await;
        let c = self.rdbss.close(&fobx).await;
        let v = r.map_err(|e| self.fail(&e))?;
        c.map_err(|e| self.fail(&e))?;
        Ok(v)
    }

    /// FOPEN flags for a new open: page cache only with read caching for an open that may
    /// read (KEEP_CACHE while the file is unchanged since its pages were cached); else
    /// direct I/O.
    fn open_flags(&self, ino: u64, fobx: &Fobx, info: Option<&FileInfo>, flags: i32) -> FopenFlags {
        // A write-only open gains nothing from the page cache and pays a copy into it for
        // every byte (sequential writes: ≈ 1,150 → 1,450 MiB/s direct). Pages other handles
        // of the file cached stay right: the kernel drops the range a direct write covers
        // before it sends it (test: smb_a_write_only_open_writes_past_the_page_cache…).
        let write_only = flags & libc::O_ACCMODE == libc::O_WRONLY;
        if fobx.buffering().read_caching && flags & libc::O_DIRECT == 0 && !write_only {
            let mut f = FopenFlags::empty();
            if let Some(info) = info {
                let now = (info.size, info.modified);
                let mut c = self.cached.lock();
                if c.get(&ino) == Some(&now) {
                    f |= FopenFlags::FOPEN_KEEP_CACHE;
                }
                c.insert(ino, now);
            }
            f
        } else {
            self.cached.lock().remove(&ino);
            FopenFlags::FOPEN_DIRECT_IO | FopenFlags::FOPEN_PARALLEL_DIRECT_WRITES
        }
    }

    /// Read `size` bytes (fewer only at end of file): the page cache expects full pages.
    async fn read_full(&self, fobx: &Arc<Fobx>, offset: u64, size: u32) -> Result<Bytes, Errno> {
        let ctx = RxContext::new();
        let first = self
            .rdbss
            .read(fobx, offset, size, &ctx)
            .await
            .map_err(|e| self.fail(&e))?;
        if first.len() as u32 >= size || first.is_empty() {
            return Ok(first);
        }
        let mut buf = first.to_vec();
        while (buf.len() as u32) < size {
            let more = self
                .rdbss
                .read(
                    fobx,
                    offset + buf.len() as u64,
                    size - buf.len() as u32,
                    &ctx,
                )
                .await
                .map_err(|e| self.fail(&e))?;
            if more.is_empty() {
                break;
            }
            buf.extend_from_slice(&more);
        }
        Ok(Bytes::from(buf))
    }

    async fn listing(&self, h: &Handle) -> Result<Arc<Vec<DirEntry>>, Errno> {
        if let Some(l) = h.listing.lock().clone() {
            return Ok(l);
        }
        let dir = self.inodes.lock().path(h.ino);
        let epoch = dir.as_deref().map(|d| self.dirs.epoch(d));
        let at = Instant::now();
        let ctx = RxContext::new();
        let mut all = Vec::new();
        let mut restart = true;
        loop {
            let batch = self
                .rdbss
                .query_directory(&h.fobx, None, restart, &ctx)
                .await
                .map_err(|e| self.fail(&e))?;
            restart = false;
            if batch.is_empty() {
                break;
            }
            all.extend(
                batch
                    .into_iter()
                    .filter(|e| e.name != "." && e.name != ".."),
            );
        }
        if let (Some(dir), Some(epoch)) = (dir, epoch) {
            self.dirs
                .set_listing(&dir, all.iter().map(|e| e.name.as_str()), at, epoch);
            for e in all.iter().filter(|e| e.info.is_dir) {
                self.dirs.set_attr(&join(&dir, &e.name), &e.info, at);
            }
        }
        // Files of a link file's size are read once per listing (per change), not per reply.
        let dir = self.inodes.lock().path(h.ino);
        if let Some(dir) = dir {
            for e in all.iter().filter(|e| Self::may_be_link(&e.info)) {
                self.classify(&join(&dir, &e.name), &e.info).await;
            }
        }
        let l = Arc::new(all);
        *h.listing.lock() = Some(l.clone());
        Ok(l)
    }

    /// Read the complete listing of `dir` again (its cached one expired), on an open of its
    /// own: a handle of a process's READDIR must not see its enumeration restarted. Its
    /// errors are not the mount's last error: the lookup that wanted it asks the server.
    async fn relist(&self, dir: &str) -> Result<(), Errno> {
        let epoch = self.dirs.epoch(dir);
        let at = Instant::now();
        let params = CreateParams {
            // Not the access of opendir: no collapsing onto a handle being enumerated.
            access: AccessMask::FILE_READ_DATA | AccessMask::SYNCHRONIZE,
            share: share_all(),
            disposition: CreateDisposition::Open,
            options: CreateOptions::DIRECTORY_FILE,
            attributes: 0,
            mode: None,
        };
        let ctx = RxContext::new();
        let fobx = self
            .rdbss
            .create(&self.v, dir, &params, &ctx)
            .await
            .map_err(|e| err(&e))?;
        let mut names = Vec::new();
        let mut restart = true;
        let r = loop {
            match self.rdbss.query_directory(&fobx, None, restart, &ctx).await {
                Ok(b) if b.is_empty() => break Ok(()),
                Ok(b) => names.extend(
                    b.into_iter()
                        .map(|e| e.name)
                        .filter(|n| n != "." && n != ".."),
                ),
                Err(e) => break Err(err(&e)),
            }
            restart = false;
        };
        let _ = self.rdbss.close(&fobx).await;
        r?;
        self.dirs
            .set_listing(dir, names.iter().map(String::as_str), at, epoch);
        Ok(())
    }

    /// True when `name` is known not to exist in `dir` without asking for it: a complete
    /// listing younger than the TTL lacks it (an expired one of a small directory that lacks
    /// it is read again first, one reader at a time).
    async fn known_absent(&self, dir: &str, name: &str) -> bool {
        if self.dirs.absent(dir, name) {
            return true;
        }
        match self.dirs.expired_without(dir, name) {
            Some(n) if n <= RELIST_MAX && self.dirs.begin_relist(dir) => {
                let r = self.relist(dir).await;
                self.dirs.end_relist(dir);
                r.is_ok() && self.dirs.absent(dir, name)
            }
            _ => false,
        }
    }

    /// Attributes of a directory by path: the cached ones within the TTL (with what is left of
    /// it), else the server's.
    async fn dir_stat(&self, path: &str) -> Result<(FileInfo, Duration), Errno> {
        if let Some(hit) = self.dirs.attr(path) {
            return Ok(hit);
        }
        let at = Instant::now();
        let info = self.stat_path(path).await?;
        self.dirs.set_attr(path, &info, at);
        Ok((info, self.opts.attr_ttl))
    }

    async fn lock_range(
        &self,
        h: &Handle,
        range: LockRange,
        unlock: bool,
        wait: bool,
        caller: u32,
    ) -> Result<(), Errno> {
        let ctx = RxContext::new();
        // Release what this handle holds inside the range (SMB needs exact ranges); a re-lock
        // of the same range (POSIX upgrade/downgrade) replaces the old lock.
        let held: Vec<LockRange> = {
            let locks = h.locks.lock();
            locks
                .iter()
                .filter(|l| {
                    if unlock {
                        l.offset >= range.offset
                            && l.offset.saturating_add(l.length)
                                <= range.offset.saturating_add(range.length)
                    } else {
                        l.offset == range.offset && l.length == range.length
                    }
                })
                .copied()
                .collect()
        };
        for l in &held {
            if !unlock && l.exclusive == range.exclusive {
                return Ok(()); // already held
            }
            self.rdbss
                .unlock(&h.fobx, *l, &ctx)
                .await
                .map_err(|e| self.fail(&e))?;
            h.locks.lock().retain(|x| x != l);
        }
        if unlock {
            return Ok(());
        }
        let lock = self.rdbss.lock(&h.fobx, range, wait, &ctx);
        let r = if wait {
            // fuser 0.18 answers FUSE_INTERRUPT itself (ENOSYS), so a caught signal (flock -w's
            // SIGALRM, a Ctrl-C handler) would leave the caller waiting for the lock forever.
            // Watch the caller for a pending signal and give the wait up (EINTR), as a local
            // filesystem would.
            tokio::pin!(lock);
            let watch = async {
                loop {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if signal_pending(caller) {
                        break;
                    }
                }
            };
            tokio::select! {
                r = &mut lock => r.map_err(|e| self.fail(&e)),
                _ = watch => {
                    ctx.cancel();
                    match lock.await {
                        Ok(()) => Ok(()),
                        Err(_) => Err(Errno::EINTR),
                    }
                }
            }
        } else {
            lock.await.map_err(|e| self.fail(&e))
        };
        r?;
        h.locks.lock().push(range);
        Ok(())
    }
}

/// Whether thread `tid` has a signal pending that it does not block (it would be interrupted
/// out of a local wait). False when it cannot be told (no /proc, thread gone).
fn signal_pending(tid: u32) -> bool {
    let Ok(st) = std::fs::read_to_string(format!("/proc/{tid}/status")) else {
        return false;
    };
    let field = |name: &str| -> u64 {
        st.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let pending = field("SigPnd:") | field("ShdPnd:");
    pending & !field("SigBlk:") != 0
}

fn lock_range(start: u64, end: u64, typ: i32) -> LockRange {
    // The kernel sends OFFSET_MAX (i64::MAX) or u64::MAX for "to end of file".
    let length = if end >= i64::MAX as u64 {
        u64::MAX - start
    } else {
        end.saturating_sub(start).saturating_add(1)
    };
    LockRange {
        offset: start,
        length,
        exclusive: typ == libc::F_WRLCK,
    }
}

fn time_of(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::Now => SystemTime::now(),
        TimeOrNow::SpecificTime(t) => t,
    }
}

impl Filesystem for RdrFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        let _ = config.set_max_write(MAX_IO);
        let _ = config.set_max_readahead(MAX_IO);
        // Optional capabilities: take what the kernel offers.
        for cap in [
            InitFlags::FUSE_POSIX_LOCKS,
            InitFlags::FUSE_FLOCK_LOCKS,
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_READDIRPLUS_AUTO,
            InitFlags::FUSE_ATOMIC_O_TRUNC,
            InitFlags::FUSE_DIRECT_IO_ALLOW_MMAP,
            InitFlags::FUSE_PARALLEL_DIROPS,
        ] {
            let _ = config.add_capabilities(cap);
        }
        Ok(())
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        if !self.allowed(req) {
            return reply.error(Errno::EACCES);
        }
        let inner = self.inner.clone();
        let name = name.to_owned();
        self.spawn(async move {
            let r = async {
                let dir = inner.path(parent)?;
                let name = name_str(&name)?;
                if inner.known_absent(&dir, name).await {
                    return Err(Errno::ENOENT);
                }
                let path = join(&dir, name);
                // A directory the server described within the TTL needs no question.
                let (info, ttl) = match inner.dirs.attr(&path) {
                    Some(hit) => hit,
                    None => {
                        let at = Instant::now();
                        let info = inner.stat_path(&path).await?;
                        inner.dirs.set_attr(&path, &info, at);
                        inner.dirs.seen(&dir, name);
                        (info, inner.opts.attr_ttl)
                    }
                };
                inner.classify(&path, &info).await;
                let ino = inner.inodes.lock().lookup(&path);
                Ok::<_, Errno>((inner.attr(ino, &info), ttl))
            }
            .await;
            match r {
                Ok((a, ttl)) => reply.entry(&ttl, &a, Generation(1)),
                Err(e) => reply.error(e),
            }
        });
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.inner.inodes.lock().forget(ino.0, nlookup);
    }

    fn getattr(&self, req: &Request, ino: INodeNo, fh: Option<FileHandle>, reply: ReplyAttr) {
        if !self.allowed(req) {
            return reply.error(Errno::EACCES);
        }
        let inner = self.inner.clone();
        self.spawn(async move {
            let r = async {
                let path = inner.path(ino).ok();
                // A directory the server described within the TTL (the kernel asks after
                // every change inside it, for its permission check).
                if let Some((info, left)) = path.as_deref().and_then(|p| inner.dirs.attr(p)) {
                    return Ok((inner.attr(ino.0, &info), left));
                }
                let at = Instant::now();
                let info = match fh.and_then(|fh| inner.handle(fh).ok()) {
                    Some(h) => inner
                        .rdbss
                        .query_info(&h.fobx, &RxContext::new())
                        .await
                        .map_err(|e| inner.fail(&e))?,
                    None => {
                        inner
                            .stat_path(path.as_deref().ok_or(Errno::ENOENT)?)
                            .await?
                    }
                };
                if let Some(p) = &path {
                    inner.dirs.set_attr(p, &info, at);
                    inner.classify(p, &info).await;
                }
                // Became a link or stopped being one: the kernel looks the name up again
                // (and makes a new inode) rather than see the type change.
                if inner.type_changed(ino.0, &info) {
                    return Err(Errno::ESTALE);
                }
                Ok::<_, Errno>((inner.attr(ino.0, &info), inner.opts.attr_ttl))
            }
            .await;
            match r {
                Ok((a, ttl)) => reply.attr(&ttl, &a),
                Err(e) => reply.error(e),
            }
        });
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        if !self.allowed(req) {
            return reply.error(Errno::EACCES);
        }
        // Ownership is the connection's; changing it is not something a share can do.
        let owner = (self.inner.opts.owner_uid, self.inner.opts.owner_gid);
        if uid.is_some_and(|u| u != owner.0) || gid.is_some_and(|g| g != owner.1) {
            return reply.error(Errno::EPERM);
        }
        let inner = self.inner.clone();
        self.spawn(async move {
            let r = async {
                let mut changes = Vec::new();
                if let Some(s) = size {
                    changes.push(SetInfo::EndOfFile(s));
                }
                if atime.is_some() || mtime.is_some() || crtime.is_some() {
                    changes.push(SetInfo::Basic {
                        created: crtime,
                        accessed: atime.map(time_of),
                        modified: mtime.map(time_of),
                        attributes: None,
                    });
                }
                if let Some(m) = mode {
                    changes.push(SetInfo::Mode(m & 0o7777));
                }
                let ctx = RxContext::new();
                let handle = fh.and_then(|fh| inner.handle(fh).ok());
                let known = inner.path(ino).ok();
                if let Some(p) = &known {
                    inner.dirs.drop_attr(p);
                }
                let at = Instant::now();
                let info = match handle {
                    Some(h) => {
                        for c in &changes {
                            inner
                                .rdbss
                                .set_info(&h.fobx, c, &ctx)
                                .await
                                .map_err(|e| inner.fail(&e))?;
                        }
                        inner
                            .rdbss
                            .query_info(&h.fobx, &ctx)
                            .await
                            .map_err(|e| inner.fail(&e))?
                    }
                    None => {
                        let path = inner.path(ino)?;
                        let mut access =
                            AccessMask::FILE_READ_ATTRIBUTES | AccessMask::FILE_WRITE_ATTRIBUTES;
                        if size.is_some() {
                            access |= AccessMask::FILE_WRITE_DATA;
                        }
                        let rdbss = inner.rdbss.clone();
                        inner
                            .with_open(&path, access, CreateOptions::empty(), |fobx| async move {
                                let ctx = RxContext::new();
                                for c in &changes {
                                    rdbss.set_info(&fobx, c, &ctx).await?;
                                }
                                rdbss.query_info(&fobx, &ctx).await
                            })
                            .await?
                    }
                };
                if size.is_some() {
                    inner.cached.lock().remove(&ino.0);
                }
                if let Some(p) = &known {
                    inner.dirs.set_attr(p, &info, at);
                    inner.changed(vec![Change::Data(p.clone())]);
                    // New times on a link (touch -h, tar, cp -a): still a link.
                    inner.classify(p, &info).await;
                }
                if inner.type_changed(ino.0, &info) {
                    return Err(Errno::ESTALE);
                }
                Ok::<_, Errno>(inner.attr(ino.0, &info))
            }
            .await;
            match r {
                Ok(a) => reply.attr(&inner.opts.attr_ttl, &a),
                Err(e) => reply.error(e),
            }
        });
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        if !self.allowed(req) {
            return reply.error(Errno::EACCES);
        }
        let inner = self.inner.clone();
        let name = name.to_owned();
        self.spawn(async move {
            let r = async {
                let path = join(&inner.path(parent)?, name_str(&name)?);
                let params = CreateParams {
                    access: AccessMask::FILE_READ_ATTRIBUTES | AccessMask::SYNCHRONIZE,
                    share: share_all(),
                    disposition: CreateDisposition::Create,
                    options: CreateOptions::DIRECTORY_FILE,
                    attributes: file_attributes::DIRECTORY,
                    mode: Some(mode & !umask & 0o7777),
                };
                let ctx = RxContext::new();
                let at = Instant::now();
                let created = inner.rdbss.create(&inner.v, &path, &params, &ctx).await;
                // Also on failure: the server may have made it before the error.
                let (dir, name) = split(&path);
                inner.dirs.added(dir, name);
                let fobx = created.map_err(|e| inner.fail(&e))?;
                let info = inner.info_of(&fobx, &ctx).await;
                let _ = inner.rdbss.close(&fobx).await;
                let info = info?;
                inner.dirs.created_dir(&path, &info, at);
                inner.changed(vec![Change::Name(path.clone())]);
                let ino = inner.inodes.lock().lookup(&path);
                Ok::<_, Errno>(inner.attr(ino, &info))
            }
            .await;
            match r {
                Ok(a) => reply.entry(&inner.opts.attr_ttl, &a, Generation(1)),
                Err(e) => reply.error(e),
            }
        });
    }

    /// A symbolic link, as a Minshall+French link file (`symlink.rs`): SMB servers without
    /// POSIX extensions have no links to offer, and cifs.ko (`mfsymlinks`) and macOS read these.
    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        if !self.allowed(req) {
            return reply.error(Errno::EACCES);
        }
        let inner = self.inner.clone();
        let name = link_name.to_owned();
        let target = std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec();
        self.spawn(async move {
            let r = async {
                let data = symlink::format(&target).ok_or(if target.is_empty() {
                    Errno::ENOENT
                } else {
                    Errno::ENAMETOOLONG
                })?;
                let path = join(&inner.path(parent)?, name_str(&name)?);
                let params = CreateParams {
                    // DELETE: a link file that could not be written is removed again.
                    access: AccessMask::FILE_WRITE_DATA
                        | AccessMask::FILE_READ_ATTRIBUTES
                        | AccessMask::DELETE
                        | AccessMask::SYNCHRONIZE,
                    share: share_all(),
                    disposition: CreateDisposition::Create,
                    options: CreateOptions::NON_DIRECTORY_FILE,
                    attributes: 0,
                    mode: None,
                };
                let ctx = RxContext::new();
                let created = inner.rdbss.create(&inner.v, &path, &params, &ctx).await;
                // Also on failure: the server may have made it before the error.
                let (dir, leaf) = split(&path);
                inner.dirs.added(dir, leaf);
                inner.changed(vec![Change::Name(path.clone())]);
                let fobx = created.map_err(|e| inner.fail(&e))?;
                let written = async {
                    let data = Bytes::from(data);
                    let mut done = 0usize;
                    while done < data.len() {
                        let n = inner
                            .rdbss
                            .write(&fobx, done as u64, data.slice(done..), &ctx)
                            .await? as usize;
                        if n == 0 {
                            return Err(RxError::status(
                                NtStatus::STATUS_DISK_FULL,
                                format!("{path:?}: the link file was written short"),
                            ));
                        }
                        done += n;
                    }
                    inner.rdbss.query_info(&fobx, &ctx).await
                }
                .await;
                if written.is_err() {
                    let gone = SetInfo::Disposition(true);
                    let _ = inner.rdbss.set_info(&fobx, &gone, &ctx).await;
                }
                let closed = inner.rdbss.close(&fobx).await;
                let info = written.map_err(|e| inner.fail(&e))?;
                closed.map_err(|e| inner.fail(&e))?;
                let seen = LinkSeen {
                    stamp: (info.size, info.modified),
                    target: Some(target),
                    checked: Instant::now(),
                };
                inner.links.lock().insert(path.clone(), seen);
                let ino = inner.inodes.lock().lookup(&path);
                Ok::<_, Errno>(inner.attr(ino, &info))
            }
            .await;
            match r {
                Ok(a) => reply.entry(&inner.opts.attr_ttl, &a, Generation(1)),
                Err(e) => reply.error(e),
            }
        });
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        if !self.allowed(req) {
            return reply.error(Errno::EACCES);
        }
        let inner = self.inner.clone();
        self.spawn(async move {
            let r = async {
                let path = inner.path(ino)?;
                // Read within the attribute TTL: trusted like the attributes themselves.
                let fresh = inner.links.lock().get(&path).and_then(|l| {
                    (l.checked.elapsed() < inner.opts.attr_ttl)
                        .then(|| l.target.clone())
                        .flatten()
                });
                if let Some(t) = fresh {
                    return Ok(t);
                }
                let data = inner
                    .read_small(&path, symlink::FILE_SIZE as u32)
                    .await
                    .map_err(|e| inner.fail(&e))?;
                // Rewritten as a plain file since the kernel was told it is a link.
                symlink::parse(&data).ok_or(Errno::EINVAL)
            }
            .await;
            match r {
                Ok(t) => reply.data(&t),
                Err(e) => reply.error(e),
            }
        });
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(req, parent, name, false, reply);
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        self.remove(req, parent, name, true, reply);
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !self.allowed(req) {
            return reply.error(Errno::EACCES);
        }
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            return reply.error(Errno::EINVAL);
        }
        let replace = !flags.contains(RenameFlags::RENAME_NOREPLACE);
        let inner = self.inner.clone();
        let (name, newname) = (name.to_owned(), newname.to_owned());
        self.spawn(async move {
            let r = async {
                let from = join(&inner.path(parent)?, name_str(&name)?);
                let to = join(&inner.path(newparent)?, name_str(&newname)?);
                if from == to {
                    return Ok(());
                }
                let attempt = || {
                    let rdbss = inner.rdbss.clone();
                    let new_path = to.clone();
                    inner.with_open(
                        &from,
                        AccessMask::DELETE | AccessMask::FILE_READ_ATTRIBUTES,
                        CreateOptions::empty(),
                        move |fobx| async move {
                            rdbss
                                .set_info(
                                    &fobx,
                                    &SetInfo::Rename { new_path, replace },
                                    &RxContext::new(),
                                )
                                .await
                        },
                    )
                };
                let last = inner.stats.last_error.lock().clone();
                match attempt().await {
                    Err(e) if replace && (e == Errno::EACCES || e == Errno::EBUSY) => {
                        // close(2) returns before the kernel's RELEASE of the target reaches
                        // us; a server refuses to replace a file that is still open. Let
                        // in-flight releases of the target finish, then try once more.
                        if !inner.settle_releases(&to).await {
                            return Err(e);
                        }
                        attempt().await?;
                        // The refusal the retry got past was not the caller's failure.
                        *inner.stats.last_error.lock() = last;
                    }
                    r => r?,
                }
                inner.inodes.lock().renamed(&from, &to);
                inner.renamed_links(&from, &to);
                inner.dirs.forget_tree(&from);
                inner.dirs.forget_tree(&to);
                let (fd, fname) = split(&from);
                inner.dirs.removed(fd, fname);
                let (td, tname) = split(&to);
                inner.dirs.added(td, tname);
                inner.changed(vec![Change::Name(from.clone()), Change::Name(to.clone())]);
                Ok::<_, Errno>(())
            }
            .await;
            match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            }
        });
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if !self.allowed(req) {
            return reply.error(Errno::EACCES);
        }
        let inner = self.inner.clone();
        let flags = flags.0;
        self.spawn(async move {
            let r = async {
                let path = inner.path(ino)?;
                let disposition = if flags & libc::O_TRUNC != 0 {
                    CreateDisposition::Overwrite
                } else {
                    CreateDisposition::Open
                };
                let params = CreateParams {
                    access: access_of(flags),
                    share: share_all(),
                    disposition,
                    options: CreateOptions::NON_DIRECTORY_FILE,
                    attributes: 0,
                    mode: None,
                };
                let ctx = RxContext::new();
                let fobx = inner
                    .rdbss
                    .create(&inner.v, &path, &params, &ctx)
                    .await
                    .map_err(|e| inner.fail(&e))?;
                let info = if fobx.buffering().read_caching {
                    // Only a hint for the page cache: a failure here is nobody's failure.
                    match fobx.open_info() {
                        Some(i) => Some(i),
                        None => inner.rdbss.query_info(&fobx, &ctx).await.ok(),
                    }
                } else {
                    None
                };
                let fl = inner.open_flags(ino.0, &fobx, info.as_ref(), flags);
                let fh = inner.add_handle(fobx, ino.0, fl);
                Ok::<_, Errno>((fh, fl))
            }
            .await;
            match r {
                Ok((fh, fl)) => reply.opened(FileHandle(fh), fl),
                Err(e) => reply.error(e),
            }
        });
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        if !self.allowed(req) {
            return reply.error(Errno::EACCES);
        }
        let inner = self.inner.clone();
        let name = name.to_owned();
        self.spawn(async move {
            let r = async {
                let path = join(&inner.path(parent)?, name_str(&name)?);
                let disposition = if flags & libc::O_EXCL != 0 {
                    CreateDisposition::Create
                } else if flags & libc::O_TRUNC != 0 {
                    CreateDisposition::OverwriteIf
                } else {
                    CreateDisposition::OpenIf
                };
                let params = CreateParams {
                    access: access_of(flags) | AccessMask::FILE_WRITE_ATTRIBUTES,
                    share: share_all(),
                    disposition,
                    options: CreateOptions::NON_DIRECTORY_FILE,
                    attributes: file_attributes::ARCHIVE,
                    mode: Some(mode & !umask & 0o7777),
                };
                let ctx = RxContext::new();
                let created = inner.rdbss.create(&inner.v, &path, &params, &ctx).await;
                let (dir, fname) = split(&path);
                let fobx = match created {
                    Ok(f) => {
                        inner.dirs.added(dir, fname);
                        inner.changed(vec![Change::Name(path.clone())]);
                        f
                    }
                    Err(e) => {
                        // EEXIST: it is there. Any other failure may have come after the
                        // server made it: never answer "absent" for it from the listing.
                        inner.dirs.added(dir, fname);
                        return Err(inner.fail(&e));
                    }
                };
                let info = match inner.info_of(&fobx, &ctx).await {
                    Ok(i) => i,
                    Err(e) => {
                        let _ = inner.rdbss.close(&fobx).await;
                        return Err(e);
                    }
                };
                let ino = inner.inodes.lock().lookup(&path);
                let fl = inner.open_flags(ino, &fobx, Some(&info), flags);
                let fh = inner.add_handle(fobx, ino, fl);
                Ok::<_, Errno>((inner.attr(ino, &info), fh, fl))
            }
            .await;
            match r {
                Ok((a, fh, fl)) => {
                    reply.created(&inner.opts.attr_ttl, &a, Generation(1), FileHandle(fh), fl)
                }
                Err(e) => reply.error(e),
            }
        });
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        self.bulk(size as usize);
        let inner = self.inner.clone();
        self.spawn(async move {
            let r = async {
                let h = inner.handle(fh)?;
                let d = inner.read_full(&h.fobx, offset, size.min(MAX_IO)).await?;
                Ok::<_, Errno>((d, h))
            }
            .await;
            match r {
                Ok((d, h)) => {
                    reply.data(&d);
                    if h.page_cache && !h.fobx.buffering().read_caching {
                        inner.drop_pages_after_read(h.ino, offset, d.len() as u64);
                    }
                }
                Err(e) => reply.error(e),
            }
        });
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        self.bulk(data.len());
        let inner = self.inner.clone();
        let data = Bytes::copy_from_slice(data);
        self.spawn(async move {
            let r = async {
                let h = inner.handle(fh)?;
                let total = data.len();
                let ctx = RxContext::new();
                let mut done = 0usize;
                while done < total {
                    let n = inner
                        .rdbss
                        .write(&h.fobx, offset + done as u64, data.slice(done..), &ctx)
                        .await
                        .map_err(|e| inner.fail(&e))? as usize;
                    if n == 0 {
                        break;
                    }
                    done += n;
                }
                h.wrote.store(true, Ordering::Relaxed);
                inner.cached.lock().remove(&h.ino);
                // Other mounts of the share drop what they cached of it now (§5.10), and
                // again when this handle is flushed.
                h.changed.store(true, Ordering::Relaxed);
                let path = inner.inodes.lock().path(h.ino);
                if let Some(p) = path {
                    inner.changed(vec![Change::Data(p)]);
                }
                Ok::<_, Errno>(done as u32)
            }
            .await;
            match r {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(e),
            }
        });
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2): wait for this handle's writes still on their way to the server
        // (write-behind), so their errors surface at close (cifs semantics). No SMB FLUSH:
        // close does not promise durability; fsync does. Nothing dirty, no round trip.
        let inner = self.inner.clone();
        self.spawn(async move {
            let r = async {
                let h = inner.handle(fh)?;
                if h.wrote.swap(false, Ordering::Relaxed) {
                    inner
                        .rdbss
                        .write_back(&h.fobx, &RxContext::new())
                        .await
                        .map_err(|e| inner.fail(&e))?;
                }
                inner.written(&h);
                Ok::<_, Errno>(())
            }
            .await;
            match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            }
        });
    }

    /// copy_file_range(2) within the mount (cp uses it): the server copies, so no byte
    /// crosses the network. Where it cannot (another kind of server, a range the server
    /// refuses), EOPNOTSUPP makes the kernel or the caller copy through read and write.
    #[allow(clippy::too_many_arguments)]
    fn copy_file_range(
        &self,
        _req: &Request,
        _ino_in: INodeNo,
        fh_in: FileHandle,
        offset_in: u64,
        _ino_out: INodeNo,
        fh_out: FileHandle,
        offset_out: u64,
        len: u64,
        flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        if flags.bits() != 0 {
            return reply.error(Errno::EINVAL);
        }
        let inner = self.inner.clone();
        self.spawn(async move {
            let r = async {
                let (src, dst) = (inner.handle(fh_in)?, inner.handle(fh_out)?);
                let ctx = RxContext::new();
                // The server refuses a range past the source's end: copy what exists.
                let size = inner
                    .rdbss
                    .query_info(&src.fobx, &ctx)
                    .await
                    .map_err(|e| inner.fail(&e))?
                    .size;
                let n = len.min(size.saturating_sub(offset_in)).min(MAX_COPY);
                if n == 0 {
                    return Ok(0);
                }
                let done = inner
                    .rdbss
                    .copy_range(&src.fobx, offset_in, &dst.fobx, offset_out, n, &ctx)
                    .await
                    .map_err(|e| inner.copy_fail(&e))?;
                // Nothing copied of a range that exists: the caller would take it for the
                // end of the file; let the kernel copy instead.
                if done == 0 {
                    return Err(Errno::EOPNOTSUPP);
                }
                dst.wrote.store(true, Ordering::Relaxed);
                dst.changed.store(true, Ordering::Relaxed);
                inner.cached.lock().remove(&dst.ino);
                let path = inner.inodes.lock().path(dst.ino);
                if let Some(p) = path {
                    inner.changed(vec![Change::Data(p)]);
                }
                Ok::<_, Errno>(u32::try_from(done).unwrap_or(u32::MAX))
            }
            .await;
            match r {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(e),
            }
        });
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        let inner = self.inner.clone();
        self.spawn(async move {
            let r = async {
                let h = inner.handle(fh)?;
                h.wrote.store(false, Ordering::Relaxed);
                inner
                    .rdbss
                    .flush(&h.fobx, &RxContext::new())
                    .await
                    .map_err(|e| inner.fail(&e))
            }
            .await;
            match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            }
        });
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.close_handle(fh, reply);
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        if !self.allowed(req) {
            return reply.error(Errno::EACCES);
        }
        let inner = self.inner.clone();
        self.spawn(async move {
            let r = async {
                let path = inner.path(ino)?;
                let params = CreateParams {
                    access: AccessMask::FILE_READ_DATA
                        | AccessMask::FILE_READ_ATTRIBUTES
                        | AccessMask::SYNCHRONIZE,
                    share: share_all(),
                    disposition: CreateDisposition::Open,
                    options: CreateOptions::DIRECTORY_FILE,
                    attributes: 0,
                    mode: None,
                };
                let fobx = inner
                    .rdbss
                    .create(&inner.v, &path, &params, &RxContext::new())
                    .await
                    .map_err(|e| inner.fail(&e))?;
                Ok::<_, Errno>(inner.add_handle(fobx, ino.0, FopenFlags::FOPEN_DIRECT_IO))
            }
            .await;
            match r {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(e),
            }
        });
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let inner = self.inner.clone();
        self.spawn(async move {
            let r = async {
                let h = inner.handle(fh)?;
                if offset == 0 {
                    *h.listing.lock() = None;
                }
                let list = inner.listing(&h).await?;
                let dir = inner.path(ino)?;
                Ok::<_, Errno>((list, dir))
            }
            .await;
            let (list, dir) = match r {
                Ok(x) => x,
                Err(e) => return reply.error(e),
            };
            let mut i = offset;
            if i == 0 {
                if reply.add(ino, 1, FileType::Directory, ".") {
                    return reply.ok();
                }
                i = 1;
            }
            if i == 1 {
                if reply.add(INodeNo(ROOT), 2, FileType::Directory, "..") {
                    return reply.ok();
                }
                i = 2;
            }
            for (k, e) in list.iter().enumerate().skip((i - 2) as usize) {
                let kind = if e.info.is_dir {
                    FileType::Directory
                } else if Inner::may_be_link(&e.info)
                    && inner.link_target(&join(&dir, &e.name), &e.info).is_some()
                {
                    FileType::Symlink
                } else {
                    FileType::RegularFile
                };
                // Plain readdir takes no lookup reference; an unknown name gets a placeholder
                // inode number the kernel only shows as d_ino.
                let eino = inner
                    .inodes
                    .lock()
                    .peek(&join(&dir, &e.name))
                    .unwrap_or(u64::MAX - k as u64);
                if reply.add(INodeNo(eino), k as u64 + 3, kind, &e.name) {
                    break;
                }
            }
            reply.ok();
        });
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let inner = self.inner.clone();
        self.spawn(async move {
            let r = async {
                let h = inner.handle(fh)?;
                if offset == 0 {
                    *h.listing.lock() = None;
                }
                let list = inner.listing(&h).await?;
                let dir = inner.path(ino)?;
                let (dinfo, _) = inner.dir_stat(&dir).await?;
                Ok::<_, Errno>((list, dir, dinfo))
            }
            .await;
            let (list, dir, dinfo) = match r {
                Ok(x) => x,
                Err(e) => return reply.error(e),
            };
            let ttl = inner.opts.attr_ttl;
            let dattr = inner.attr(ino.0, &dinfo);
            // "." and ".." carry no lookup reference (the kernel skips them).
            let mut i = offset;
            if i == 0 {
                if reply.add(ino, 1, ".", &ttl, &dattr, Generation(1)) {
                    return reply.ok();
                }
                i = 1;
            }
            if i == 1 {
                if reply.add(INodeNo(ROOT), 2, "..", &ttl, &dattr, Generation(1)) {
                    return reply.ok();
                }
                i = 2;
            }
            for (k, e) in list.iter().enumerate().skip((i - 2) as usize) {
                let path = join(&dir, &e.name);
                let eino = inner.inodes.lock().lookup(&path);
                let a = inner.attr(eino, &e.info);
                if reply.add(
                    INodeNo(eino),
                    k as u64 + 3,
                    &e.name,
                    &ttl,
                    &a,
                    Generation(1),
                ) {
                    // Not sent: give the reference back.
                    inner.inodes.lock().forget(eino, 1);
                    break;
                }
            }
            reply.ok();
        });
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.close_handle(fh, reply);
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok();
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        if !self.allowed(req) {
            return reply.error(Errno::EACCES);
        }
        let inner = self.inner.clone();
        self.spawn(async move {
            match inner.rdbss.query_volume(&inner.v, &RxContext::new()).await {
                Ok(v) => {
                    let bs = u64::from(v.block_size.max(512));
                    reply.statfs(
                        v.total_bytes / bs,
                        v.free_bytes / bs,
                        v.free_bytes / bs,
                        0,
                        0,
                        bs as u32,
                        255,
                        bs as u32,
                    )
                }
                Err(e) => reply.error(inner.fail(&e)),
            }
        });
    }

    fn access(&self, req: &Request, _ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        if self.allowed(req) {
            reply.ok()
        } else {
            reply.error(Errno::EACCES)
        }
    }

    fn getlk(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        pid: u32,
        reply: ReplyLock,
    ) {
        if !self.allowed(req) {
            return reply.error(Errno::EACCES);
        }
        // Probe: try the lock without waiting; if granted, release it at once.
        let inner = self.inner.clone();
        self.spawn(async move {
            let h = match inner.handle(fh) {
                Ok(h) => h,
                Err(e) => return reply.error(e),
            };
            let range = lock_range(start, end, typ);
            let ctx = RxContext::new();
            let mine = h.locks.lock().iter().any(|l| l.overlaps(&range));
            if mine {
                return reply.locked(start, end, libc::F_UNLCK, pid);
            }
            match inner.rdbss.lock(&h.fobx, range, false, &ctx).await {
                Ok(()) => {
                    let _ = inner.rdbss.unlock(&h.fobx, range, &ctx).await;
                    reply.locked(start, end, libc::F_UNLCK, pid)
                }
                Err(e) if err(&e) == Errno::EAGAIN => reply.locked(start, end, typ, 0),
                Err(e) => reply.error(inner.fail(&e)),
            }
        });
    }

    fn setlk(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        start: u64,
        end: u64,
        typ: i32,
        _pid: u32,
        sleep: bool,
        reply: ReplyEmpty,
    ) {
        if !self.allowed(req) {
            return reply.error(Errno::EACCES);
        }
        let inner = self.inner.clone();
        let caller = req.pid();
        self.spawn(async move {
            let r = async {
                let h = inner.handle(fh)?;
                let range = lock_range(start, end, typ);
                inner
                    .lock_range(&h, range, typ == libc::F_UNLCK, sleep, caller)
                    .await
            }
            .await;
            match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            }
        });
    }
}

impl RdrFs {
    fn remove(&self, req: &Request, parent: INodeNo, name: &OsStr, dir: bool, reply: ReplyEmpty) {
        if !self.allowed(req) {
            return reply.error(Errno::EACCES);
        }
        let inner = self.inner.clone();
        let name = name.to_owned();
        self.spawn(async move {
            let r = async {
                let parent_path = inner.path(parent)?;
                let name = name_str(&name)?;
                let path = join(&parent_path, name);
                let access = AccessMask::DELETE | AccessMask::FILE_READ_ATTRIBUTES;
                if dir {
                    // A directory's emptiness is checked when its disposition is set (a
                    // delete-on-close open of a non-empty one would fail only at close).
                    let rdbss = inner.rdbss.clone();
                    inner
                        .with_open(
                            &path,
                            access,
                            CreateOptions::DIRECTORY_FILE,
                            |fobx| async move {
                                rdbss
                                    .set_info(&fobx, &SetInfo::Disposition(true), &RxContext::new())
                                    .await
                            },
                        )
                        .await?;
                    inner.dirs.forget_tree(&path);
                } else {
                    // A file goes with a delete-on-close open and its close, one compound
                    // round trip when the core holds nothing of it: the open fails as the
                    // disposition would (read-only, in use).
                    inner
                        .rdbss
                        .delete_file(&inner.v, &path, &RxContext::new())
                        .await
                        .map_err(|e| inner.fail(&e))?;
                }
                inner.dirs.removed(&parent_path, name);
                inner.changed(vec![Change::Name(path.clone())]);
                inner.inodes.lock().unlinked(&path);
                inner.forget_links(&path);
                Ok::<_, Errno>(())
            }
            .await;
            match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            }
        });
    }

    /// RELEASE / RELEASEDIR: the Fobx close (the core decides about delayed close). Close works
    /// on orphaned handles, so a forced delete never leaves a process unable to close.
    fn close_handle(&self, fh: FileHandle, reply: ReplyEmpty) {
        let inner = self.inner.clone();
        inner.closing.fetch_add(1, Ordering::AcqRel);
        self.spawn(async move {
            let Some(h) = inner.remove_handle(fh) else {
                inner.closing.fetch_sub(1, Ordering::AcqRel);
                return reply.error(Errno::EBADF);
            };
            inner.written(&h);
            // Release what this handle still locks, then close.
            let locks: Vec<LockRange> = std::mem::take(&mut *h.locks.lock());
            let ctx = RxContext::new();
            if !h.fobx.is_orphaned() {
                for l in locks {
                    let _ = inner.rdbss.unlock(&h.fobx, l, &ctx).await;
                }
            }
            let r = inner.rdbss.close(&h.fobx).await;
            inner.closing.fetch_sub(1, Ordering::AcqRel);
            match r {
                Ok(()) => reply.ok(),
                // The handle is gone locally either way; report only real failures.
                Err(RxError::HandleClosed { .. }) => reply.ok(),
                Err(e) => reply.error(inner.fail(&e)),
            }
        });
    }
}

/// Seconds since the epoch, for messages.
pub fn epoch_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
