//! errno → NTSTATUS, in one place, and the error values built from it (each names its path).

use rdr_core::{NtStatus, RxError};

/// The NTSTATUS a failed system call stands for.
pub(crate) fn status_for_errno(e: i32) -> NtStatus {
    match e {
        libc::ENOENT => NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
        libc::EEXIST => NtStatus::STATUS_OBJECT_NAME_COLLISION,
        libc::EACCES | libc::EPERM => NtStatus::STATUS_ACCESS_DENIED,
        // openat2 with RESOLVE_BENEATH: the path (or a symlink in it) leads outside the share.
        libc::EXDEV | libc::ELOOP => NtStatus::STATUS_ACCESS_DENIED,
        libc::ENOTDIR => NtStatus::STATUS_NOT_A_DIRECTORY,
        libc::EISDIR => NtStatus::STATUS_FILE_IS_A_DIRECTORY,
        libc::ENOTEMPTY => NtStatus::STATUS_DIRECTORY_NOT_EMPTY,
        libc::ENOSPC | libc::EDQUOT | libc::EFBIG => NtStatus::STATUS_DISK_FULL,
        libc::EROFS => NtStatus::STATUS_MEDIA_WRITE_PROTECTED,
        libc::ENAMETOOLONG => NtStatus::STATUS_NAME_TOO_LONG,
        libc::EBUSY | libc::ETXTBSY => NtStatus::STATUS_SHARING_VIOLATION,
        libc::EAGAIN => NtStatus::STATUS_FILE_LOCK_CONFLICT,
        libc::EINVAL => NtStatus::STATUS_INVALID_PARAMETER,
        libc::EBADF => NtStatus::STATUS_INVALID_HANDLE,
        libc::ENOMEM => NtStatus::STATUS_NO_MEMORY,
        libc::EMFILE | libc::ENFILE => NtStatus::STATUS_INSUFFICIENT_RESOURCES,
        libc::ENOSYS | libc::EOPNOTSUPP => NtStatus::STATUS_NOT_SUPPORTED,
        libc::EINTR => NtStatus::STATUS_CANCELLED,
        libc::ESTALE => NtStatus::STATUS_FILE_DELETED,
        libc::EIO => NtStatus::STATUS_DATA_ERROR,
        _ => NtStatus::STATUS_UNSUCCESSFUL,
    }
}

/// An error for system call `op` failing with `e` on `what` (a `share\path`).
pub(crate) fn sys_err(e: i32, what: &str, op: &str) -> RxError {
    let detail = match e {
        libc::EXDEV => "path escapes the share".to_string(),
        libc::ELOOP => {
            "path escapes the share or has too many symbolic links (or a magic link)".to_string()
        }
        _ => std::io::Error::from_raw_os_error(e).to_string(),
    };
    RxError::status(status_for_errno(e), format!("{what}: {op}: {detail}"))
}

/// An error for a path lookup: a missing or non-directory intermediate component is
/// `STATUS_OBJECT_PATH_NOT_FOUND`, as Windows reports it.
pub(crate) fn lookup_err(e: i32, what: &str, parent_missing: bool) -> RxError {
    match e {
        libc::ENOENT if parent_missing => RxError::status(
            NtStatus::STATUS_OBJECT_PATH_NOT_FOUND,
            format!("{what}: a directory on the path does not exist"),
        ),
        libc::ENOENT => RxError::status(
            NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
            format!("{what}: no such file or directory"),
        ),
        libc::ENOTDIR => RxError::status(
            NtStatus::STATUS_OBJECT_PATH_NOT_FOUND,
            format!("{what}: a component of the path is not a directory"),
        ),
        _ => sys_err(e, what, "open"),
    }
}

/// A plain status error about `what`.
pub(crate) fn st(status: NtStatus, what: &str, detail: &str) -> RxError {
    RxError::status(status, format!("{what}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_table() {
        let cases = [
            (libc::ENOENT, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND),
            (libc::EEXIST, NtStatus::STATUS_OBJECT_NAME_COLLISION),
            (libc::EACCES, NtStatus::STATUS_ACCESS_DENIED),
            (libc::EXDEV, NtStatus::STATUS_ACCESS_DENIED),
            (libc::ELOOP, NtStatus::STATUS_ACCESS_DENIED),
            (libc::ENOTDIR, NtStatus::STATUS_NOT_A_DIRECTORY),
            (libc::EISDIR, NtStatus::STATUS_FILE_IS_A_DIRECTORY),
            (libc::ENOTEMPTY, NtStatus::STATUS_DIRECTORY_NOT_EMPTY),
            (libc::ENOSPC, NtStatus::STATUS_DISK_FULL),
            (libc::EDQUOT, NtStatus::STATUS_DISK_FULL),
            (libc::EROFS, NtStatus::STATUS_MEDIA_WRITE_PROTECTED),
            (libc::ENAMETOOLONG, NtStatus::STATUS_NAME_TOO_LONG),
            (libc::EMFILE, NtStatus::STATUS_INSUFFICIENT_RESOURCES),
            (12345, NtStatus::STATUS_UNSUCCESSFUL),
        ];
        for (e, s) in cases {
            assert_eq!(status_for_errno(e), s, "errno {e}");
        }
        let err = sys_err(libc::EXDEV, "Data\\x", "open");
        assert!(err.to_string().contains("Data\\x"));
        assert!(err.to_string().contains("escapes the share"));
        assert_eq!(
            lookup_err(libc::ENOENT, "p", true).nt_status(),
            NtStatus::STATUS_OBJECT_PATH_NOT_FOUND
        );
        assert_eq!(
            lookup_err(libc::ENOTDIR, "p", false).nt_status(),
            NtStatus::STATUS_OBJECT_PATH_NOT_FOUND
        );
    }
}
