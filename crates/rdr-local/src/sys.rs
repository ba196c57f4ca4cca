//! Thin wrappers over the Linux system calls rdr-local uses. Every `unsafe` of the crate lives
//! here; each wrapper returns the errno on failure and retries `EINTR`.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A failed system call: the errno.
pub(crate) type SysResult<T> = Result<T, i32>;

/// The errno of the last failed call.
pub(crate) fn last_errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// A file descriptor that counts itself in a shared counter while it is open, so tests can see
/// that nothing leaks.
#[derive(Debug)]
pub(crate) struct CountedFd {
    fd: OwnedFd,
    counter: Arc<AtomicUsize>,
}

impl CountedFd {
    /// Count `fd` in `counter` until it is dropped.
    pub(crate) fn new(fd: OwnedFd, counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        CountedFd {
            fd,
            counter: counter.clone(),
        }
    }
    /// The raw descriptor, valid while `self` lives.
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsRawFd for CountedFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl Drop for CountedFd {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::SeqCst);
    }
}

fn retry<F: FnMut() -> libc::c_long>(mut f: F) -> SysResult<libc::c_long> {
    loop {
        let r = f();
        if r >= 0 {
            return Ok(r);
        }
        let e = last_errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}

/// `openat2(2)` relative to `dir` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`: the path can
/// never leave `dir` (`..`, absolute symlinks and symlinks pointing outside fail with `EXDEV`).
/// `O_CLOEXEC` is always added.
pub(crate) fn openat2(
    dir: RawFd,
    path: &CStr,
    flags: libc::c_int,
    mode: u32,
) -> SysResult<OwnedFd> {
    // SAFETY: open_how is plain old data; all-zero is its documented default.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u32 as u64;
    if flags & libc::O_CREAT != 0 {
        how.mode = u64::from(mode & 0o7777);
    }
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    let mut again = 0;
    loop {
        // SAFETY: path is NUL-terminated, how lives across the call and its size is passed.
        let r = retry(|| unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        });
        match r {
            // SAFETY: the kernel returned a new descriptor that nothing else owns.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            // EAGAIN: a concurrent rename made the kernel unsure `..` stayed beneath; retry.
            Err(libc::EAGAIN) if again < 8 => again += 1,
            Err(e) => return Err(e),
        }
    }
}

/// Reopen an open file read-write through `/proc/self/fd` (a second open file description of
/// the very same file; no path lookup can escape).
pub(crate) fn reopen_rdwr(fd: RawFd) -> SysResult<OwnedFd> {
    let path = CString::new(format!("/proc/self/fd/{fd}")).map_err(|_| libc::EINVAL)?;
    // SAFETY: path is NUL-terminated.
    let r = retry(|| unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_CLOEXEC | libc::O_NOCTTY,
        ) as libc::c_long
    })?;
    // SAFETY: a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// A file's identity: device and inode.
pub(crate) type FileKey = (u32, u32, u64);

/// The identity of a statx result.
pub(crate) fn key_of(st: &libc::statx) -> FileKey {
    (st.stx_dev_major, st.stx_dev_minor, st.stx_ino)
}

const STATX_MASK: u32 = libc::STATX_BASIC_STATS | libc::STATX_BTIME;

/// `statx(2)` of an open descriptor.
pub(crate) fn statx_fd(fd: RawFd) -> SysResult<libc::statx> {
    statx_raw(fd, c"", libc::AT_EMPTY_PATH)
}

/// `statx(2)` of `name` relative to `dir`, not following a final symlink.
pub(crate) fn lstatx_at(dir: RawFd, name: &CStr) -> SysResult<libc::statx> {
    statx_raw(dir, name, libc::AT_SYMLINK_NOFOLLOW)
}

fn statx_raw(dir: RawFd, name: &CStr, flags: libc::c_int) -> SysResult<libc::statx> {
    // SAFETY: statx is plain old data.
    let mut st: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: name is NUL-terminated, st is a valid out buffer.
    retry(|| unsafe {
        libc::statx(dir, name.as_ptr(), flags, STATX_MASK, &mut st) as libc::c_long
    })?;
    Ok(st)
}

/// `mkdirat(2)`.
pub(crate) fn mkdirat(dir: RawFd, name: &CStr, mode: u32) -> SysResult<()> {
    // SAFETY: name is NUL-terminated.
    retry(|| unsafe { libc::mkdirat(dir, name.as_ptr(), mode as libc::mode_t) as libc::c_long })
        .map(drop)
}

/// `unlinkat(2)`; `dir_entry` removes a directory.
pub(crate) fn unlinkat(dir: RawFd, name: &CStr, dir_entry: bool) -> SysResult<()> {
    let flags = if dir_entry { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: name is NUL-terminated.
    retry(|| unsafe { libc::unlinkat(dir, name.as_ptr(), flags) as libc::c_long }).map(drop)
}

/// `renameat2(2)`; without `replace`, `RENAME_NOREPLACE`.
pub(crate) fn renameat2(
    odir: RawFd,
    oname: &CStr,
    ndir: RawFd,
    nname: &CStr,
    replace: bool,
) -> SysResult<()> {
    let flags = if replace { 0 } else { libc::RENAME_NOREPLACE };
    // SAFETY: both names are NUL-terminated.
    retry(|| unsafe {
        libc::renameat2(odir, oname.as_ptr(), ndir, nname.as_ptr(), flags) as libc::c_long
    })
    .map(drop)
}

/// Read up to `len` bytes at `offset` into a fresh buffer (short only at end of file).
pub(crate) fn pread_full(fd: RawFd, offset: u64, len: usize) -> SysResult<bytes::Bytes> {
    let mut buf = bytes::BytesMut::with_capacity(len);
    let mut done = 0usize;
    while done < len {
        let off = offset
            .checked_add(done as u64)
            .and_then(|o| i64::try_from(o).ok())
            .ok_or(libc::EINVAL)?;
        let spare = buf.spare_capacity_mut();
        let want = (len - done).min(spare.len());
        if want == 0 {
            break;
        }
        // SAFETY: the destination is `want` bytes of the buffer's spare capacity; pread writes
        // at most that many and we only mark written bytes as initialised.
        let n = retry(|| unsafe {
            libc::pread(fd, spare.as_mut_ptr().cast(), want, off) as libc::c_long
        })? as usize;
        if n == 0 {
            break;
        }
        // SAFETY: pread initialised n <= want bytes past the current length.
        unsafe { buf.set_len(done + n) };
        done += n;
    }
    Ok(buf.freeze())
}

/// Write all of `data` at `offset`.
pub(crate) fn pwrite_all(fd: RawFd, offset: u64, data: &[u8]) -> SysResult<usize> {
    let mut done = 0usize;
    while done < data.len() {
        let off = offset
            .checked_add(done as u64)
            .and_then(|o| i64::try_from(o).ok())
            .ok_or(libc::EINVAL)?;
        let rest = &data[done..];
        // SAFETY: rest is a valid slice for its length.
        let n = retry(|| unsafe {
            libc::pwrite(fd, rest.as_ptr().cast(), rest.len(), off) as libc::c_long
        })? as usize;
        if n == 0 {
            return Err(libc::ENOSPC);
        }
        done += n;
    }
    Ok(done)
}

/// `fsync(2)`.
pub(crate) fn fsync(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain call on a descriptor.
    retry(|| unsafe { libc::fsync(fd) as libc::c_long }).map(drop)
}

/// `ftruncate(2)`.
pub(crate) fn ftruncate(fd: RawFd, len: u64) -> SysResult<()> {
    let len = i64::try_from(len).map_err(|_| libc::EFBIG)?;
    // SAFETY: plain call on a descriptor.
    retry(|| unsafe { libc::ftruncate(fd, len) as libc::c_long }).map(drop)
}

/// `fchmod(2)`.
pub(crate) fn fchmod(fd: RawFd, mode: u32) -> SysResult<()> {
    // SAFETY: plain call on a descriptor.
    retry(|| unsafe { libc::fchmod(fd, (mode & 0o7777) as libc::mode_t) as libc::c_long }).map(drop)
}

/// `futimens(2)`; `None` leaves a time unchanged. Times are (seconds, nanoseconds) since 1970.
pub(crate) fn futimens(
    fd: RawFd,
    atime: Option<(i64, u32)>,
    mtime: Option<(i64, u32)>,
) -> SysResult<()> {
    let ts = |t: Option<(i64, u32)>| match t {
        Some((s, ns)) => libc::timespec {
            tv_sec: s as libc::time_t,
            tv_nsec: ns as libc::c_long,
        },
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
    };
    let times = [ts(atime), ts(mtime)];
    // SAFETY: times is an array of two timespecs as futimens requires.
    retry(|| unsafe { libc::futimens(fd, times.as_ptr()) as libc::c_long }).map(drop)
}

/// `fstatvfs(3)`.
pub(crate) fn fstatvfs(fd: RawFd) -> SysResult<libc::statvfs> {
    // SAFETY: statvfs is plain old data.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out buffer.
    retry(|| unsafe { libc::fstatvfs(fd, &mut st) as libc::c_long })?;
    Ok(st)
}

/// `getdents64(2)` into `buf`; returns the bytes filled (0 at the end of the directory).
pub(crate) fn getdents64(fd: RawFd, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is writable for its length.
    retry(|| unsafe { libc::syscall(libc::SYS_getdents64, fd, buf.as_mut_ptr(), buf.len()) })
        .map(|n| n as usize)
}

/// Rewind a directory descriptor.
pub(crate) fn rewind(fd: RawFd) -> SysResult<()> {
    // SAFETY: plain call on a descriptor.
    retry(|| unsafe { libc::lseek(fd, 0, libc::SEEK_SET) as libc::c_long }).map(drop)
}

/// One entry parsed from a getdents64 buffer: (name, record length).
pub(crate) fn parse_dirent(buf: &[u8]) -> Option<(&[u8], usize)> {
    // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    let reclen = u16::from_ne_bytes([*buf.get(16)?, *buf.get(17)?]) as usize;
    if reclen < 20 || reclen > buf.len() {
        return None;
    }
    let name_area = buf.get(19..reclen)?;
    let end = name_area
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(name_area.len());
    Some((name_area.get(..end)?, reclen))
}

/// `fcntl(F_OFD_SETLK)`: `typ` is `F_RDLCK`, `F_WRLCK` or `F_UNLCK`; never blocks.
pub(crate) fn ofd_setlk(fd: RawFd, typ: libc::c_int, start: i64, len: i64) -> SysResult<()> {
    let fl = libc::flock {
        l_type: typ as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: start,
        l_len: len,
        l_pid: 0,
    };
    // SAFETY: fl is a valid flock for F_OFD_SETLK.
    retry(|| unsafe {
        libc::fcntl(fd, libc::F_OFD_SETLK, &fl as *const libc::flock) as libc::c_long
    })
    .map(drop)
}

/// A non-blocking, close-on-exec inotify instance.
pub(crate) fn inotify_init() -> SysResult<OwnedFd> {
    // SAFETY: plain call.
    let r = retry(|| unsafe {
        libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) as libc::c_long
    })?;
    // SAFETY: a new descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// Watch the directory open as `dir_fd` (through `/proc/self/fd`, so no path is looked up).
pub(crate) fn inotify_watch_fd(ino_fd: RawFd, dir_fd: RawFd, mask: u32) -> SysResult<i32> {
    let path = CString::new(format!("/proc/self/fd/{dir_fd}")).map_err(|_| libc::EINVAL)?;
    // SAFETY: path is NUL-terminated.
    retry(|| unsafe {
        libc::inotify_add_watch(ino_fd, path.as_ptr(), mask | libc::IN_ONLYDIR) as libc::c_long
    })
    .map(|wd| wd as i32)
}

/// `read(2)` into `buf`.
pub(crate) fn read(fd: RawFd, buf: &mut [u8]) -> SysResult<usize> {
    // SAFETY: buf is writable for its length.
    retry(|| unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) as libc::c_long })
        .map(|n| n as usize)
}
