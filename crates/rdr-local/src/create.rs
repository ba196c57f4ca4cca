//! `MRxCreate` for a local directory: every disposition, directories, share modes and
//! delete-on-close, with each lookup done by openat2 beneath the share root.

use crate::open::{LocalOpen, OpenRecord, dir_has_entries};
use crate::path::RelPath;
use crate::status_map::{lookup_err, st, sys_err};
use crate::sys::{self, CountedFd};
use crate::{Inner, LocalVNetRoot, file_info};
use rdr_core::minirdr::{
    CreateAction, CreateDisposition, CreateOptions, CreateParams, CreateResult, file_attributes,
};
use rdr_core::{NtStatus, RxResult};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_util::sync::CancellationToken;

/// How many times a create retries when the file appears or disappears under it.
const RACE_RETRIES: usize = 4;

/// What the probe found.
pub(crate) enum Found {
    Existing(OwnedFd, Box<libc::statx>),
    Missing,
}

fn open_flags(p: &CreateParams) -> libc::c_int {
    match (p.access.can_read(), p.access.can_write()) {
        (_, false) => libc::O_RDONLY,
        (false, true) => libc::O_WRONLY,
        (true, true) => libc::O_RDWR,
    }
}

fn is_dir_mode(st: &libc::statx) -> bool {
    u32::from(st.stx_mode) & libc::S_IFMT == libc::S_IFDIR
}

fn is_reg_mode(st: &libc::statx) -> bool {
    u32::from(st.stx_mode) & libc::S_IFMT == libc::S_IFREG
}

/// Whether a missing `path` lacks its parent directory (for NAME vs PATH not found).
fn parent_missing(vnr: &LocalVNetRoot, path: &RelPath) -> bool {
    let Some(parent) = path.parent() else {
        return false;
    };
    matches!(
        sys::openat2(
            vnr.root.raw(),
            &parent.kernel(),
            libc::O_PATH | libc::O_DIRECTORY,
            0
        ),
        Err(libc::ENOENT) | Err(libc::ENOTDIR)
    )
}

/// Look `path` up beneath the share root without opening it for I/O.
pub(crate) fn probe(vnr: &LocalVNetRoot, path: &RelPath, what: &str) -> RxResult<Found> {
    match sys::openat2(vnr.root.raw(), &path.kernel(), libc::O_PATH, 0) {
        Ok(fd) => {
            let st = sys::statx_fd(fd.as_raw_fd()).map_err(|e| sys_err(e, what, "stat"))?;
            Ok(Found::Existing(fd, Box::new(st)))
        }
        Err(libc::ENOENT) => Ok(Found::Missing),
        Err(e) => Err(lookup_err(e, what, false)),
    }
}

/// Metadata by path (`query_path_info`).
pub(crate) fn query_path(vnr: &LocalVNetRoot, path: &str) -> RxResult<rdr_core::minirdr::FileInfo> {
    let rel = RelPath::parse(path)?;
    let what = vnr.root.what(&rel);
    match probe(vnr, &rel, &what)? {
        Found::Existing(_, st) => Ok(file_info(&st)),
        Found::Missing => Err(lookup_err(libc::ENOENT, &what, parent_missing(vnr, &rel))),
    }
}

/// Open or create `path` as `p` asks. Supersede of an existing file truncates it in place
/// (same inode, attributes kept) and reports `Superseded`; Windows would replace the file.
pub(crate) fn create(
    inner: &Arc<Inner>,
    vnr: &LocalVNetRoot,
    path: &str,
    p: &CreateParams,
) -> RxResult<CreateResult> {
    use CreateDisposition as D;
    let rel = RelPath::parse(path)?;
    let what = vnr.root.what(&rel);
    let want_dir = p.options.contains(CreateOptions::DIRECTORY_FILE);
    let want_file = p.options.contains(CreateOptions::NON_DIRECTORY_FILE);
    let delete_on_close = p.options.contains(CreateOptions::DELETE_ON_CLOSE);
    if want_dir && want_file {
        return Err(st(
            NtStatus::STATUS_INVALID_PARAMETER,
            &what,
            "DIRECTORY_FILE and NON_DIRECTORY_FILE together",
        ));
    }
    if want_dir && !matches!(p.disposition, D::Create | D::Open | D::OpenIf) {
        return Err(st(
            NtStatus::STATUS_INVALID_PARAMETER,
            &what,
            "a directory can only be created or opened (disposition Create, Open or OpenIf)",
        ));
    }
    if delete_on_close && rel.is_root() {
        return Err(st(
            NtStatus::STATUS_CANNOT_DELETE,
            &what,
            "the share root cannot be deleted",
        ));
    }
    for _ in 0..RACE_RETRIES {
        let id = inner.next_id();
        let rec = OpenRecord {
            id,
            access: p.access,
            share: p.share,
            delete_on_close,
        };
        let (fd, stx, action) = match probe(vnr, &rel, &what)? {
            Found::Existing(pfd, pst) => {
                if p.disposition == D::Create {
                    return Err(st(
                        NtStatus::STATUS_OBJECT_NAME_COLLISION,
                        &what,
                        "already exists",
                    ));
                }
                let is_dir = is_dir_mode(&pst);
                if is_dir && want_file {
                    return Err(st(
                        NtStatus::STATUS_FILE_IS_A_DIRECTORY,
                        &what,
                        "is a directory",
                    ));
                }
                if !is_dir && want_dir {
                    return Err(st(
                        NtStatus::STATUS_NOT_A_DIRECTORY,
                        &what,
                        "is not a directory",
                    ));
                }
                let truncate =
                    matches!(p.disposition, D::Supersede | D::Overwrite | D::OverwriteIf);
                if is_dir && truncate {
                    return Err(st(
                        NtStatus::STATUS_FILE_IS_A_DIRECTORY,
                        &what,
                        "a directory cannot be overwritten or superseded",
                    ));
                }
                if !is_dir && !is_reg_mode(&pst) {
                    return Err(st(
                        NtStatus::STATUS_ACCESS_DENIED,
                        &what,
                        "not a regular file or directory (device, fifo or socket)",
                    ));
                }
                drop(pfd);
                let key = sys::key_of(&pst);
                // Share modes are checked before anything is truncated.
                let buffering =
                    inner
                        .files
                        .lock()
                        .admit(key, &vnr.root, &rel, is_dir, rec.clone(), &what)?;
                let flags = if is_dir {
                    libc::O_RDONLY | libc::O_DIRECTORY
                } else {
                    open_flags(p) | libc::O_NOCTTY | if truncate { libc::O_TRUNC } else { 0 }
                };
                let fd = match sys::openat2(vnr.root.raw(), &rel.kernel(), flags, 0) {
                    Ok(fd) => fd,
                    Err(libc::ENOENT) => {
                        inner.files.lock().withdraw(key, id);
                        continue;
                    }
                    Err(e) => {
                        inner.files.lock().withdraw(key, id);
                        return Err(lookup_err(e, &what, false));
                    }
                };
                let stx = match sys::statx_fd(fd.as_raw_fd()) {
                    Ok(s) if sys::key_of(&s) == key => s,
                    Ok(_) => {
                        // Replaced between the probe and the open: start over.
                        inner.files.lock().withdraw(key, id);
                        continue;
                    }
                    Err(e) => {
                        inner.files.lock().withdraw(key, id);
                        return Err(sys_err(e, &what, "stat"));
                    }
                };
                let action = match p.disposition {
                    D::Supersede => CreateAction::Superseded,
                    D::Overwrite | D::OverwriteIf => CreateAction::Overwritten,
                    _ => CreateAction::Opened,
                };
                (fd, stx, (action, buffering))
            }
            Found::Missing => {
                if matches!(p.disposition, D::Open | D::Overwrite) {
                    return Err(lookup_err(libc::ENOENT, &what, parent_missing(vnr, &rel)));
                }
                let leaf = rel.leaf(&what)?;
                let parent = rel.parent().unwrap_or_else(RelPath::root);
                let pfd = sys::openat2(
                    vnr.root.raw(),
                    &parent.kernel(),
                    libc::O_PATH | libc::O_DIRECTORY,
                    0,
                )
                .map_err(|e| lookup_err(e, &what, true))?;
                let readonly = p.attributes & file_attributes::READONLY != 0;
                let fd = if want_dir {
                    match sys::mkdirat(pfd.as_raw_fd(), &leaf, p.mode.unwrap_or(0o777)) {
                        Ok(()) => {}
                        Err(libc::EEXIST) if p.disposition != D::Create => continue,
                        Err(e) => return Err(sys_err(e, &what, "mkdir")),
                    }
                    sys::openat2(
                        pfd.as_raw_fd(),
                        &leaf,
                        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                        0,
                    )
                    .map_err(|e| sys_err(e, &what, "open new directory"))?
                } else {
                    let mut mode = p.mode.unwrap_or(0o666);
                    if readonly {
                        mode &= !0o222;
                    }
                    let flags = open_flags(p) | libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY;
                    match sys::openat2(pfd.as_raw_fd(), &leaf, flags, mode) {
                        Ok(fd) => fd,
                        Err(libc::EEXIST) if p.disposition != D::Create => continue,
                        Err(e) => return Err(sys_err(e, &what, "create")),
                    }
                };
                if let Some(mut mode) = p.mode {
                    if readonly {
                        mode &= !0o222;
                    }
                    // The exact mode asked for, not filtered by this process's umask.
                    sys::fchmod(fd.as_raw_fd(), mode).map_err(|e| sys_err(e, &what, "chmod"))?;
                }
                let stx = sys::statx_fd(fd.as_raw_fd()).map_err(|e| sys_err(e, &what, "stat"))?;
                let is_dir = is_dir_mode(&stx);
                let buffering = inner.files.lock().admit(
                    sys::key_of(&stx),
                    &vnr.root,
                    &rel,
                    is_dir,
                    rec.clone(),
                    &what,
                )?;
                (fd, stx, (CreateAction::Created, buffering))
            }
        };
        let (action, buffering) = action;
        let key = sys::key_of(&stx);
        let is_dir = is_dir_mode(&stx);
        let fd = CountedFd::new(fd, &inner.counters.fds);
        if delete_on_close && is_dir {
            match dir_has_entries(fd.raw(), &what) {
                Ok(false) => {}
                Ok(true) => {
                    inner.files.lock().withdraw(key, id);
                    return Err(st(
                        NtStatus::STATUS_DIRECTORY_NOT_EMPTY,
                        &what,
                        "delete-on-close of a directory that is not empty",
                    ));
                }
                Err(e) => {
                    inner.files.lock().withdraw(key, id);
                    return Err(e);
                }
            }
        }
        let open = LocalOpen {
            id,
            inner: inner.clone(),
            root: vnr.root.clone(),
            key,
            is_dir,
            access: p.access,
            opened_as: rel.clone(),
            fd: parking_lot::RwLock::new(Some(Arc::new(fd))),
            dir: parking_lot::Mutex::new(None),
            locks: parking_lot::Mutex::new(Default::default()),
            notify: tokio::sync::Mutex::new(None),
            closing: CancellationToken::new(),
            closed: AtomicBool::new(false),
        };
        inner.counters.opens.fetch_add(1, Ordering::SeqCst);
        return Ok(CreateResult {
            srv_open: Arc::new(open),
            info: file_info(&stx),
            action,
            buffering,
        });
    }
    Err(st(
        NtStatus::STATUS_SHARING_VIOLATION,
        &what,
        "the file kept appearing and disappearing while it was being opened",
    ))
}
