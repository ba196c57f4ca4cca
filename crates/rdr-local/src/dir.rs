//! `query_directory`: batches of entries read with getdents64 from the open directory's fd,
//! with restart and Windows wildcards (`*`, `?`, case-insensitive).

use crate::file_info;
use crate::open::LocalOpen;
use crate::path::RelPath;
use crate::status_map::sys_err;
use crate::sys;
use rdr_core::RxResult;
use rdr_core::minirdr::{DirEntry, file_attributes};
use std::os::fd::AsRawFd;

/// Most entries one call returns.
const BATCH: usize = 512;
/// Size of the getdents64 buffer.
const BUF: usize = 32 * 1024;

/// Where an enumeration of an open directory stands.
pub(crate) struct DirCursor {
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    pattern: Option<Vec<char>>,
}

impl DirCursor {
    fn new(pattern: Option<&str>) -> Self {
        let pattern = pattern
            .filter(|p| !p.is_empty() && *p != "*" && *p != "*.*")
            .map(|p| p.chars().flat_map(char::to_lowercase).collect());
        DirCursor {
            buf: vec![0; BUF],
            pos: 0,
            len: 0,
            eof: false,
            pattern,
        }
    }
}

/// Whether `name` matches a lower-cased Windows pattern (`*` any run, `?` one character).
pub(crate) fn wildcard_match(pattern: &[char], name: &str) -> bool {
    let name: Vec<char> = name.chars().flat_map(char::to_lowercase).collect();
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == '?' || Some(&c) == name.get(n) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// Metadata of entry `name` of directory `dir_fd` at `path`: a symlink that resolves beneath
/// the share shows as its target; one that dangles or leads outside shows as itself with the
/// reparse-point attribute (nothing outside the share is ever stat'ed).
fn entry_info(open: &LocalOpen, dir_fd: i32, dir_path: &RelPath, name: &str) -> Option<DirEntry> {
    let cname = std::ffi::CString::new(name).ok()?;
    let lst = sys::lstatx_at(dir_fd, &cname).ok()?;
    if u32::from(lst.stx_mode) & libc::S_IFMT == libc::S_IFLNK {
        let full = dir_path.join(name);
        if let Ok(t) = sys::openat2(open.root.raw(), &full.kernel(), libc::O_PATH, 0)
            && let Ok(tst) = sys::statx_fd(t.as_raw_fd())
        {
            return Some(DirEntry {
                name: name.to_string(),
                info: file_info(&tst),
            });
        }
        let mut info = file_info(&lst);
        info.attributes =
            (info.attributes & !file_attributes::NORMAL) | file_attributes::REPARSE_POINT;
        return Some(DirEntry {
            name: name.to_string(),
            info,
        });
    }
    Some(DirEntry {
        name: name.to_string(),
        info: file_info(&lst),
    })
}

/// The next batch of entries of `open` (a directory). Blocking; run off the async runtime.
/// As in SMB, the pattern of the first call (or of a restart) applies until the next restart.
pub(crate) fn next_batch(
    open: &LocalOpen,
    pattern: Option<&str>,
    restart: bool,
) -> RxResult<Vec<DirEntry>> {
    let what = open.what();
    let fd = open.fd()?;
    let dir_path = open.path();
    let mut guard = open.dir.lock();
    if restart || guard.is_none() {
        sys::rewind(fd.raw()).map_err(|e| sys_err(e, &what, "rewind directory"))?;
        *guard = Some(DirCursor::new(pattern));
    }
    let Some(cur) = guard.as_mut() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    while out.len() < BATCH {
        if cur.pos >= cur.len {
            if cur.eof {
                break;
            }
            let n = sys::getdents64(fd.raw(), &mut cur.buf)
                .map_err(|e| sys_err(e, &what, "read directory"))?;
            cur.pos = 0;
            cur.len = n;
            if n == 0 {
                cur.eof = true;
                break;
            }
        }
        let Some((raw, reclen)) = cur.buf.get(cur.pos..cur.len).and_then(sys::parse_dirent) else {
            // A malformed record cannot happen with a sane kernel; stop this buffer.
            cur.pos = cur.len;
            continue;
        };
        cur.pos += reclen;
        if raw == b"." || raw == b".." {
            continue;
        }
        let Ok(name) = std::str::from_utf8(raw) else {
            tracing::debug!("rdr-local: {what}: skipping a name that is not UTF-8");
            continue;
        };
        if name.contains('\\') {
            // Cannot be named in a `\`-separated path.
            continue;
        }
        if let Some(p) = &cur.pattern
            && !wildcard_match(p, name)
        {
            continue;
        }
        let name = name.to_string();
        if let Some(e) = entry_info(open, fd.raw(), &dir_path, &name) {
            out.push(e);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    fn m(p: &str, n: &str) -> bool {
        let p: Vec<char> = p.chars().flat_map(char::to_lowercase).collect();
        wildcard_match(&p, n)
    }

    #[test]
    fn wildcards() {
        assert!(m("*.txt", "a.TXT"));
        assert!(!m("*.txt", "a.txt.bak"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("*a*b*", "xxaYYbzz"));
        assert!(m("**", ""));
        assert!(!m("abc", "abcd"));
        assert!(m("ABC", "abc"));
    }
}
