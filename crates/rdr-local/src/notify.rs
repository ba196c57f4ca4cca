//! Change notification from inotify. The watcher lives on the open directory from the first
//! `notify_change` until close, so changes between two requests are kept (as an SMB server
//! keeps them) and no watch outlives its handle. It watches every event kind and applies each
//! request's filter when reading, so a request with a different filter loses nothing. Waiting is
//! on the inotify fd through the tokio reactor: no thread is ever parked, and cancellation drops
//! the wait at once without losing queued events (they stay in the kernel until read).
//!
//! `watch_tree` adds a watch per subdirectory (up to [`MAX_WATCHES`], symlinks never followed)
//! and for every directory created later under the tree. Limitations: a subdirectory created
//! and filled before its `IN_CREATE` is read misses the events of that first filling; a queue
//! overflow is reported as an empty result (SMB's STATUS_NOTIFY_ENUM_DIR: re-read the
//! directory); deletion of the watched directory is only seen after this open is closed; names
//! under a subdirectory renamed after its watch was added keep the old prefix.

use crate::open::LocalOpen;
use crate::path::RelPath;
use crate::status_map::{st, sys_err};
use crate::sys::{self, CountedFd};
use rdr_core::minirdr::{ChangeEvent, notify_filter};
use rdr_core::{NtStatus, RxContext, RxError, RxResult};
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// Most directories one tree watch covers.
pub const MAX_WATCHES: usize = 8192;

const FILE_ACTION_ADDED: u32 = 1;
const FILE_ACTION_REMOVED: u32 = 2;
const FILE_ACTION_MODIFIED: u32 = 3;
const FILE_ACTION_RENAMED_OLD_NAME: u32 = 4;
const FILE_ACTION_RENAMED_NEW_NAME: u32 = 5;

/// An inotify instance watching one open directory (and, for a tree, its subdirectories).
pub(crate) struct Watcher {
    afd: AsyncFd<CountedFd>,
    /// Watch descriptor → path relative to the watched directory ("" for itself).
    wds: HashMap<i32, String>,
    root_wd: i32,
    /// The filter of the current request (events are filtered when read, so a request with
    /// another filter still sees what happened before it).
    filter: u32,
    /// The current request watches the tree.
    tree: bool,
    /// Subdirectories have watches (once a tree request came).
    tree_armed: bool,
}

/// Every event any filter can ask for; filtering happens when events are read.
const MASK: u32 = libc::IN_DELETE_SELF
    | libc::IN_CREATE
    | libc::IN_DELETE
    | libc::IN_MOVED_FROM
    | libc::IN_MOVED_TO
    | libc::IN_ATTRIB
    | libc::IN_MODIFY;

/// Add watches for every directory under `dir` (open as `dir_fd`), naming them `prefix\...`.
fn watch_subdirs(
    ino: RawFd,
    dir_fd: RawFd,
    prefix: &str,
    mask: u32,
    wds: &mut HashMap<i32, String>,
) {
    let Ok(d) = sys::openat2(dir_fd, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0) else {
        return;
    };
    let mut buf = vec![0u8; 16 * 1024];
    let mut subdirs = Vec::new();
    while let Ok(n) = sys::getdents64(d.as_raw_fd(), &mut buf) {
        if n == 0 {
            break;
        }
        let mut pos = 0;
        while let Some((name, reclen)) = buf.get(pos..n).and_then(sys::parse_dirent) {
            pos += reclen;
            if name != b"." && name != b".." {
                subdirs.push(name.to_vec());
            }
        }
    }
    drop(d);
    for name in subdirs {
        if wds.len() >= MAX_WATCHES {
            return;
        }
        let (Ok(cname), Ok(text)) = (CString::new(name.clone()), String::from_utf8(name)) else {
            continue;
        };
        // O_NOFOLLOW: a symlinked directory is not part of the tree (and may lead outside).
        let Ok(sub) = sys::openat2(
            dir_fd,
            &cname,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        ) else {
            continue;
        };
        let rel = if prefix.is_empty() {
            text
        } else {
            format!("{prefix}\\{text}")
        };
        if let Ok(wd) = sys::inotify_watch_fd(ino, sub.as_raw_fd(), mask) {
            wds.insert(wd, rel.clone());
            watch_subdirs(ino, sub.as_raw_fd(), &rel, mask, wds);
        }
    }
}

/// Build the inotify instance with a watch on the open directory.
fn setup(open: &LocalOpen) -> RxResult<(OwnedFd, HashMap<i32, String>, i32)> {
    let what = open.what();
    let fd = open.fd()?;
    let ino = sys::inotify_init().map_err(|e| sys_err(e, &what, "inotify_init"))?;
    let root_wd = sys::inotify_watch_fd(ino.as_raw_fd(), fd.raw(), MASK)
        .map_err(|e| sys_err(e, &what, "inotify_add_watch"))?;
    let mut wds = HashMap::new();
    wds.insert(root_wd, String::new());
    Ok((ino, wds, root_wd))
}

/// A raw inotify event.
struct Raw {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: String,
}

fn parse_events(buf: &[u8]) -> Vec<Raw> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let word = |at: usize| -> Option<u32> {
        let b = buf.get(at..at + 4)?;
        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    while pos + 16 <= buf.len() {
        let (Some(wd), Some(mask), Some(cookie), Some(len)) =
            (word(pos), word(pos + 4), word(pos + 8), word(pos + 12))
        else {
            break;
        };
        let start = pos + 16;
        let end = start.saturating_add(len as usize);
        let Some(raw_name) = buf.get(start..end) else {
            break;
        };
        let nul = raw_name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(raw_name.len());
        let name = String::from_utf8_lossy(&raw_name[..nul]).into_owned();
        out.push(Raw {
            wd: wd as i32,
            mask,
            cookie,
            name,
        });
        pos = end;
    }
    out
}

impl Watcher {
    /// Turn raw events into change events; `Err` when the watched directory itself went away.
    fn translate(
        &mut self,
        raws: Vec<Raw>,
        open: &LocalOpen,
        what: &str,
    ) -> RxResult<Vec<ChangeEvent>> {
        let mut out: Vec<ChangeEvent> = Vec::new();
        let push = |action: u32, name: String, out: &mut Vec<ChangeEvent>| {
            if out
                .last()
                .is_some_and(|l| l.action == action && l.name == name)
            {
                return;
            }
            out.push(ChangeEvent { action, name });
        };
        for (i, r) in raws.iter().enumerate() {
            if r.mask & libc::IN_Q_OVERFLOW != 0 {
                // Too many changes: an empty result tells the caller to re-read the directory
                // (SMB's STATUS_NOTIFY_ENUM_DIR).
                return Ok(Vec::new());
            }
            if r.wd == self.root_wd && r.mask & (libc::IN_DELETE_SELF | libc::IN_IGNORED) != 0 {
                // Seen once the directory is deleted and its last fd is gone (not while this
                // open holds it); kept for robustness.
                return Err(st(
                    NtStatus::STATUS_DELETE_PENDING,
                    what,
                    "the watched directory was deleted",
                ));
            }
            if r.mask & libc::IN_IGNORED != 0 {
                self.wds.remove(&r.wd);
                continue;
            }
            let Some(prefix) = self.wds.get(&r.wd).cloned() else {
                continue;
            };
            if !self.tree && r.wd != self.root_wd {
                continue;
            }
            if r.name.is_empty() {
                continue;
            }
            let name = if prefix.is_empty() {
                r.name.clone()
            } else {
                format!("{prefix}\\{}", r.name)
            };
            let is_dir = r.mask & libc::IN_ISDIR != 0;
            let name_bit = if is_dir {
                notify_filter::DIR_NAME
            } else {
                notify_filter::FILE_NAME
            };
            let names = self.filter & name_bit != 0;
            if self.tree_armed && is_dir && r.mask & (libc::IN_CREATE | libc::IN_MOVED_TO) != 0 {
                self.watch_new_dir(open, &name);
            }
            if r.mask & libc::IN_CREATE != 0 && names {
                push(FILE_ACTION_ADDED, name, &mut out);
            } else if r.mask & libc::IN_DELETE != 0 && names {
                push(FILE_ACTION_REMOVED, name, &mut out);
            } else if r.mask & libc::IN_MOVED_FROM != 0 && names {
                let paired = raws[i + 1..]
                    .iter()
                    .any(|n| n.mask & libc::IN_MOVED_TO != 0 && n.cookie == r.cookie);
                let a = if paired {
                    FILE_ACTION_RENAMED_OLD_NAME
                } else {
                    FILE_ACTION_REMOVED
                };
                push(a, name, &mut out);
            } else if r.mask & libc::IN_MOVED_TO != 0 && names {
                let paired = raws[..i]
                    .iter()
                    .any(|p| p.mask & libc::IN_MOVED_FROM != 0 && p.cookie == r.cookie);
                let a = if paired {
                    FILE_ACTION_RENAMED_NEW_NAME
                } else {
                    FILE_ACTION_ADDED
                };
                push(a, name, &mut out);
            } else if r.mask & libc::IN_MODIFY != 0
                && self.filter & (notify_filter::SIZE | notify_filter::LAST_WRITE) != 0
                || r.mask & libc::IN_ATTRIB != 0 && self.filter & notify_filter::ATTRIBUTES != 0
            {
                push(FILE_ACTION_MODIFIED, name, &mut out);
            }
        }
        Ok(out)
    }

    fn watch_new_dir(&mut self, open: &LocalOpen, rel: &str) {
        if self.wds.len() >= MAX_WATCHES {
            return;
        }
        let Ok(fd) = open.fd() else { return };
        let Ok(path) = RelPath::parse(rel) else {
            return;
        };
        let Ok(sub) = sys::openat2(
            fd.raw(),
            &path.kernel(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
            0,
        ) else {
            return;
        };
        let ino = self.afd.get_ref().raw();
        if let Ok(wd) = sys::inotify_watch_fd(ino, sub.as_raw_fd(), MASK) {
            self.wds.insert(wd, rel.to_string());
            watch_subdirs(ino, sub.as_raw_fd(), rel, MASK, &mut self.wds);
        }
    }
}

/// Wait for changes under `open` (a directory).
pub(crate) async fn notify_change(
    open: std::sync::Arc<LocalOpen>,
    filter: u32,
    tree: bool,
    ctx: &RxContext,
) -> RxResult<Vec<ChangeEvent>> {
    let what = open.what();
    if !open.is_dir {
        return Err(st(
            NtStatus::STATUS_INVALID_PARAMETER,
            &what,
            "change notification needs a directory",
        ));
    }
    if filter & notify_filter::ALL == 0 {
        return Err(st(
            NtStatus::STATUS_INVALID_PARAMETER,
            &what,
            "empty change-notify filter",
        ));
    }
    let _ = open.fd()?;
    let cancelled = || RxError::Cancelled {
        what: format!("{what}: change notification"),
    };
    if ctx.is_cancelled() {
        return Err(cancelled());
    }
    let work = async {
        let mut guard = open.notify.lock().await;
        if guard.is_none() {
            // Synchronous on purpose: no await between arming the watch and storing it, so a
            // request cancelled right after it started still leaves the watch armed and the
            // next request sees every change since.
            let (ino, wds, root_wd) = setup(&open)?;
            let counted = CountedFd::new(ino, &open.inner.counters.fds);
            // SAFETY: CountedFd owns its descriptor and always reports the same one; it stays
            // open for as long as the AsyncFd owns it.
            let afd = unsafe { AsyncFd::register_with_interest(counted, Interest::READABLE) }
                .map_err(|e| {
                    let e = std::io::Error::from(e);
                    sys_err(
                        e.raw_os_error().unwrap_or(libc::EIO),
                        &what,
                        "register inotify",
                    )
                })?;
            *guard = Some(Watcher {
                afd,
                wds,
                root_wd,
                filter,
                tree,
                tree_armed: false,
            });
        }
        let Some(w) = guard.as_mut() else {
            return Err(RxError::HandleClosed { path: what.clone() });
        };
        w.filter = filter;
        w.tree = tree;
        if tree && !w.tree_armed {
            // One open and one inotify_add_watch per directory, bounded by MAX_WATCHES;
            // synchronous for the same reason as above.
            let fd = open.fd()?;
            let ino = w.afd.get_ref().raw();
            watch_subdirs(ino, fd.raw(), "", MASK, &mut w.wds);
            w.tree_armed = true;
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut ready = w.afd.readable().await.map_err(|e| {
                sys_err(
                    e.raw_os_error().unwrap_or(libc::EIO),
                    &what,
                    "wait for inotify",
                )
            })?;
            let mut raws = Vec::new();
            loop {
                match sys::read(w.afd.get_ref().raw(), &mut buf) {
                    Ok(0) => break,
                    Ok(n) => raws.extend(parse_events(buf.get(..n).unwrap_or(&[]))),
                    Err(libc::EAGAIN) => {
                        ready.clear_ready();
                        break;
                    }
                    Err(e) => return Err(sys_err(e, &what, "read inotify")),
                }
            }
            if raws.is_empty() {
                continue;
            }
            let overflow = raws.iter().any(|r| r.mask & libc::IN_Q_OVERFLOW != 0);
            let events = w.translate(raws, &open, &what)?;
            if !events.is_empty() || overflow {
                return Ok(events);
            }
        }
    };
    tokio::select! {
        biased;
        _ = ctx.cancelled() => Err(cancelled()),
        _ = open.closing.cancelled() => Err(RxError::HandleClosed { path: open.what() }),
        r = work => r,
    }
}
