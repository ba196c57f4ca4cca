//! NTSTATUS codes: what the server, the core and the mini-redirectors report, and the errno the
//! FUSE mount returns for each.

use std::fmt;

/// An NTSTATUS value. A newtype, not an enum, because servers may send any value; the named
/// constants are the ones rdr produces or interprets.
#[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct NtStatus(pub u32);

macro_rules! statuses {
    ($( $name:ident = $val:expr, $errno:expr; )*) => {
        impl NtStatus {
            $( #[doc = concat!("`", stringify!($name), "`")] pub const $name: NtStatus = NtStatus($val); )*

            /// The symbolic name (`STATUS_FILES_OPEN`), or `None` for a value rdr does not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 { $( $val => Some(stringify!($name)), )* _ => None }
            }

            /// The errno a FUSE mount returns for this status (0 for success codes).
            pub fn errno(self) -> i32 {
                match self.0 { $( $val => $errno, )* v if v & 0xC000_0000 == 0xC000_0000 => libc_errno::EIO, _ => 0 }
            }
        }
    };
}

/// errno values used by the mapping (Linux numbering), kept here so rdr-core needs no libc.
pub mod libc_errno {
    #![allow(missing_docs)]
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EINTR: i32 = 4;
    pub const EIO: i32 = 5;
    pub const EBADF: i32 = 9;
    pub const EAGAIN: i32 = 11;
    pub const ENOMEM: i32 = 12;
    pub const EACCES: i32 = 13;
    pub const EBUSY: i32 = 16;
    pub const EEXIST: i32 = 17;
    pub const EXDEV: i32 = 18;
    pub const ENOTDIR: i32 = 20;
    pub const EISDIR: i32 = 21;
    pub const EINVAL: i32 = 22;
    pub const ENOSPC: i32 = 28;
    pub const EROFS: i32 = 30;
    pub const ENAMETOOLONG: i32 = 36;
    pub const ENOSYS: i32 = 38;
    pub const ENOTEMPTY: i32 = 39;
    pub const ELOOP: i32 = 40;
    pub const ENODATA: i32 = 61;
    pub const EPROTO: i32 = 71;
    pub const EOPNOTSUPP: i32 = 95;
    pub const ECONNRESET: i32 = 104;
    pub const ENOTCONN: i32 = 107;
    pub const ETIMEDOUT: i32 = 110;
    pub const ECONNREFUSED: i32 = 111;
    pub const EHOSTUNREACH: i32 = 113;
    pub const ECANCELED: i32 = 125;
}
use libc_errno::*;

statuses! {
    STATUS_SUCCESS = 0x0000_0000, 0;
    STATUS_PENDING = 0x0000_0103, 0;
    STATUS_NOTIFY_CLEANUP = 0x0000_010B, 0;
    STATUS_NOTIFY_ENUM_DIR = 0x0000_010C, 0;
    STATUS_BUFFER_OVERFLOW = 0x8000_0005, 0;
    STATUS_NO_MORE_FILES = 0x8000_0006, 0;
    STATUS_STOPPED_ON_SYMLINK = 0x8000_002D, ELOOP;
    STATUS_UNSUCCESSFUL = 0xC000_0001, EIO;
    STATUS_NOT_IMPLEMENTED = 0xC000_0002, ENOSYS;
    STATUS_INVALID_INFO_CLASS = 0xC000_0003, EINVAL;
    STATUS_INFO_LENGTH_MISMATCH = 0xC000_0004, EINVAL;
    STATUS_INVALID_HANDLE = 0xC000_0008, EBADF;
    STATUS_INVALID_PARAMETER = 0xC000_000D, EINVAL;
    STATUS_NO_SUCH_FILE = 0xC000_000F, ENOENT;
    STATUS_INVALID_DEVICE_REQUEST = 0xC000_0010, EINVAL;
    STATUS_INVALID_VIEW_SIZE = 0xC000_001F, EINVAL;
    STATUS_END_OF_FILE = 0xC000_0011, 0;
    STATUS_MORE_PROCESSING_REQUIRED = 0xC000_0016, EIO;
    STATUS_NO_MEMORY = 0xC000_0017, ENOMEM;
    STATUS_ACCESS_DENIED = 0xC000_0022, EACCES;
    STATUS_BUFFER_TOO_SMALL = 0xC000_0023, EINVAL;
    STATUS_OBJECT_NAME_INVALID = 0xC000_0033, EINVAL;
    STATUS_OBJECT_NAME_NOT_FOUND = 0xC000_0034, ENOENT;
    STATUS_OBJECT_NAME_COLLISION = 0xC000_0035, EEXIST;
    STATUS_OBJECT_PATH_INVALID = 0xC000_0039, ENOTDIR;
    STATUS_OBJECT_PATH_NOT_FOUND = 0xC000_003A, ENOENT;
    STATUS_DATA_ERROR = 0xC000_003E, EIO;
    STATUS_SHARING_VIOLATION = 0xC000_0043, EBUSY;
    STATUS_FILE_LOCK_CONFLICT = 0xC000_0054, EAGAIN;
    STATUS_LOCK_NOT_GRANTED = 0xC000_0055, EAGAIN;
    STATUS_DELETE_PENDING = 0xC000_0056, ENOENT;
    STATUS_PRIVILEGE_NOT_HELD = 0xC000_0061, EPERM;
    STATUS_WRONG_PASSWORD = 0xC000_006A, EACCES;
    STATUS_LOGON_FAILURE = 0xC000_006D, EACCES;
    STATUS_ACCOUNT_RESTRICTION = 0xC000_006E, EACCES;
    STATUS_PASSWORD_EXPIRED = 0xC000_0071, EACCES;
    STATUS_ACCOUNT_DISABLED = 0xC000_0072, EACCES;
    STATUS_RANGE_NOT_LOCKED = 0xC000_007E, EINVAL;
    STATUS_DISK_FULL = 0xC000_007F, ENOSPC;
    STATUS_INSUFFICIENT_RESOURCES = 0xC000_009A, ENOMEM;
    STATUS_MEDIA_WRITE_PROTECTED = 0xC000_00A2, EROFS;
    STATUS_IO_TIMEOUT = 0xC000_00B5, ETIMEDOUT;
    STATUS_FILE_IS_A_DIRECTORY = 0xC000_00BA, EISDIR;
    STATUS_NOT_SUPPORTED = 0xC000_00BB, EOPNOTSUPP;
    STATUS_DUPLICATE_NAME = 0xC000_00BD, EEXIST;
    STATUS_BAD_NETWORK_PATH = 0xC000_00BE, EHOSTUNREACH;
    STATUS_INVALID_NETWORK_RESPONSE = 0xC000_00C3, EPROTO;
    STATUS_UNEXPECTED_NETWORK_ERROR = 0xC000_00C4, EIO;
    STATUS_NETWORK_NAME_DELETED = 0xC000_00C9, EIO;
    STATUS_NETWORK_ACCESS_DENIED = 0xC000_00CA, EACCES;
    STATUS_BAD_NETWORK_NAME = 0xC000_00CC, ENOENT;
    STATUS_REQUEST_NOT_ACCEPTED = 0xC000_00D0, EBUSY;
    STATUS_FILE_RENAMED = 0xC000_00D5, ENOENT;
    STATUS_OPLOCK_NOT_GRANTED = 0xC000_00E2, EIO;
    STATUS_REDIRECTOR_NOT_STARTED = 0xC000_00FB, EIO;
    STATUS_DIRECTORY_NOT_EMPTY = 0xC000_0101, ENOTEMPTY;
    STATUS_NOT_A_DIRECTORY = 0xC000_0103, ENOTDIR;
    STATUS_NAME_TOO_LONG = 0xC000_0106, ENAMETOOLONG;
    STATUS_FILES_OPEN = 0xC000_0107, EBUSY;
    STATUS_CONNECTION_IN_USE = 0xC000_0108, EBUSY;
    STATUS_CANCELLED = 0xC000_0120, EINTR;
    STATUS_CANNOT_DELETE = 0xC000_0121, EACCES;
    STATUS_FILE_DELETED = 0xC000_0123, ENOENT;
    STATUS_FILE_CLOSED = 0xC000_0128, EBADF;
    STATUS_INVALID_DEVICE_STATE = 0xC000_0184, EIO;
    STATUS_NETWORK_CREDENTIAL_CONFLICT = 0xC000_0195, EACCES;
    STATUS_USER_SESSION_DELETED = 0xC000_0203, EIO;
    STATUS_CONNECTION_DISCONNECTED = 0xC000_020C, ENOTCONN;
    STATUS_CONNECTION_RESET = 0xC000_020D, ECONNRESET;
    STATUS_NOT_FOUND = 0xC000_0225, ENOENT;
    STATUS_CONNECTION_REFUSED = 0xC000_0236, ECONNREFUSED;
    STATUS_CONNECTION_ACTIVE = 0xC000_023B, EBUSY;
    STATUS_NETWORK_UNREACHABLE = 0xC000_023C, EHOSTUNREACH;
    STATUS_HOST_UNREACHABLE = 0xC000_023D, EHOSTUNREACH;
    STATUS_NETWORK_SESSION_EXPIRED = 0xC000_035C, EIO;
    STATUS_INVALID_SIGNATURE = 0xC000_A000, EPROTO;
}

impl NtStatus {
    /// True for success and informational codes (severity 0 or 1).
    pub fn is_success(self) -> bool {
        self.0 & 0xC000_0000 == 0 || self.0 & 0xC000_0000 == 0x4000_0000
    }
    /// True for error codes (severity 3).
    pub fn is_error(self) -> bool {
        self.0 & 0xC000_0000 == 0xC000_0000
    }
}

impl fmt::Display for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "NTSTATUS {:#010x}", self.0),
        }
    }
}

impl fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_values_and_errnos() {
        assert_eq!(NtStatus::STATUS_FILES_OPEN.0, 0xC000_0107);
        assert_eq!(NtStatus::STATUS_FILES_OPEN.to_string(), "STATUS_FILES_OPEN");
        assert_eq!(NtStatus::STATUS_UNEXPECTED_NETWORK_ERROR.errno(), EIO);
        assert_eq!(NtStatus::STATUS_LOCK_NOT_GRANTED.errno(), EAGAIN);
        assert_eq!(NtStatus(0xC0FF_EE00).to_string(), "NTSTATUS 0xc0ffee00");
        assert_eq!(NtStatus(0xC0FF_EE00).errno(), EIO);
        assert!(NtStatus::STATUS_SUCCESS.is_success());
        assert!(NtStatus::STATUS_CANCELLED.is_error());
    }
}
