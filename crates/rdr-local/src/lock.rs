//! Byte-range locks with Windows semantics on real OFD locks (`F_OFD_SETLK`), so two opens (two
//! open file descriptions) conflict in the kernel exactly as two Windows handles do.
//!
//! Windows rules kept on top of POSIX: an exclusive lock may not overlap any other lock, even
//! the same handle's (POSIX would merge them); shared locks stack; unlock must name exactly a
//! range that was locked (else `STATUS_RANGE_NOT_LOCKED`). Ranges POSIX cannot express (length
//! 0, or starting past `i64::MAX`) are recorded but take no kernel lock.

use crate::open::LocalOpen;
use crate::status_map::{st, sys_err};
use crate::sys::{self, CountedFd};
use rdr_core::minirdr::LockRange;
use rdr_core::{NtStatus, RxContext, RxError, RxResult};
use std::sync::Arc;
use std::time::Duration;

/// The locks one open holds and the descriptor they live on.
#[derive(Debug, Default)]
pub(crate) struct LockState {
    held: Vec<LockRange>,
    /// The descriptor locks are taken on (a read-write reopen when the open is not read-write,
    /// since POSIX wants a readable fd for shared and a writable one for exclusive locks).
    fd: Option<Arc<CountedFd>>,
}

impl LockState {
    /// Drop every lock record and the lock descriptor (the kernel drops the locks with the last
    /// descriptor of the open file description).
    pub(crate) fn clear(&mut self) {
        self.held.clear();
        self.fd = None;
    }
}

/// The POSIX (start, len) of a range, or `None` when POSIX cannot lock it.
fn posix_span(r: &LockRange) -> Option<(i64, i64)> {
    if r.length == 0 {
        return None;
    }
    let max = i64::MAX as u64;
    if r.offset >= max {
        return None;
    }
    let end = r.offset.saturating_add(r.length).min(max);
    let len = end - r.offset;
    if len == 0 {
        return None;
    }
    Some((r.offset as i64, len as i64))
}

fn describe(r: &LockRange) -> String {
    format!(
        "{} lock of {} bytes at {}",
        if r.exclusive { "exclusive" } else { "shared" },
        r.length,
        r.offset
    )
}

fn lock_fd(open: &LocalOpen, state: &mut LockState) -> RxResult<Arc<CountedFd>> {
    if let Some(fd) = &state.fd {
        return Ok(fd.clone());
    }
    let main = open.fd()?;
    let fd = if open.access.can_read() && open.access.can_write() {
        main
    } else {
        match sys::reopen_rdwr(main.raw()) {
            Ok(fd) => Arc::new(CountedFd::new(fd, &open.inner.counters.fds)),
            // No write permission on the file: locks of the open's own mode still work.
            Err(_) => main,
        }
    };
    state.fd = Some(fd.clone());
    Ok(fd)
}

/// One attempt; `Ok(false)` on conflict.
fn try_lock(open: &LocalOpen, range: &LockRange, what: &str) -> RxResult<bool> {
    let mut state = open.locks.lock();
    if state
        .held
        .iter()
        .any(|h| h.overlaps(range) && (h.exclusive || range.exclusive))
    {
        return Ok(false);
    }
    if let Some((start, len)) = posix_span(range) {
        let fd = lock_fd(open, &mut state)?;
        let typ = if range.exclusive {
            libc::F_WRLCK
        } else {
            libc::F_RDLCK
        };
        match sys::ofd_setlk(fd.raw(), typ, start, len) {
            Ok(()) => {}
            Err(libc::EAGAIN) | Err(libc::EACCES) => return Ok(false),
            Err(libc::EBADF) => {
                return Err(st(
                    NtStatus::STATUS_ACCESS_DENIED,
                    what,
                    &format!(
                        "{}: the open's access does not allow this lock type",
                        describe(range)
                    ),
                ));
            }
            Err(e) => return Err(sys_err(e, what, "lock")),
        }
    }
    state.held.push(*range);
    Ok(true)
}

/// Take a lock; with `wait`, retry until granted, the context is cancelled or the open closes.
pub(crate) async fn lock(
    open: &LocalOpen,
    range: LockRange,
    wait: bool,
    ctx: &RxContext,
) -> RxResult<()> {
    let what = open.what();
    if open.is_dir {
        return Err(st(
            NtStatus::STATUS_INVALID_DEVICE_REQUEST,
            &what,
            "byte-range locks apply to files, not directories",
        ));
    }
    if ctx.is_cancelled() {
        return Err(RxError::Cancelled {
            what: format!("{what}: {}", describe(&range)),
        });
    }
    let mut backoff = Duration::from_millis(1);
    loop {
        if try_lock(open, &range, &what)? {
            return Ok(());
        }
        if !wait {
            return Err(st(
                NtStatus::STATUS_LOCK_NOT_GRANTED,
                &what,
                &format!(
                    "{}: conflicts with a lock held by another open",
                    describe(&range)
                ),
            ));
        }
        // OFD locks have no cancellable blocking form; a short poll keeps no thread blocked.
        tokio::select! {
            _ = ctx.cancelled() => {
                return Err(RxError::Cancelled { what: format!("{what}: waiting for {}", describe(&range)) });
            }
            _ = open.closing.cancelled() => {
                return Err(RxError::HandleClosed { path: what });
            }
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_millis(20));
    }
}

/// Release exactly `range` (one instance of it).
pub(crate) fn unlock(open: &LocalOpen, range: LockRange) -> RxResult<()> {
    let what = open.what();
    let _ = open.fd()?;
    let mut state = open.locks.lock();
    let Some(idx) = state
        .held
        .iter()
        .position(|h| h.offset == range.offset && h.length == range.length)
    else {
        return Err(st(
            NtStatus::STATUS_RANGE_NOT_LOCKED,
            &what,
            &format!(
                "no lock of {} bytes at {} to release",
                range.length, range.offset
            ),
        ));
    };
    let removed = state.held.remove(idx);
    let Some((start, len)) = posix_span(&removed) else {
        return Ok(());
    };
    let Some(fd) = state.fd.clone() else {
        return Ok(());
    };
    // Release only the bytes no remaining lock of this open covers (remaining overlapping
    // locks are shared ones, already held as read locks by the kernel).
    let end = start + len;
    let mut covers: Vec<(i64, i64)> = state
        .held
        .iter()
        .filter_map(posix_span)
        .map(|(s, l)| (s.max(start), (s + l).min(end)))
        .filter(|(s, e)| s < e)
        .collect();
    covers.sort_unstable();
    let mut at = start;
    let mut gaps = Vec::new();
    for (s, e) in covers {
        if s > at {
            gaps.push((at, s - at));
        }
        at = at.max(e);
    }
    if at < end {
        gaps.push((at, end - at));
    }
    for (s, l) in gaps {
        sys::ofd_setlk(fd.raw(), libc::F_UNLCK, s, l).map_err(|e| sys_err(e, &what, "unlock"))?;
    }
    Ok(())
}
