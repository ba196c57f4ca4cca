//! The one error type of the core. Every variant maps to the NTSTATUS it stands for and, through
//! it, to the errno the mount returns; every message names the thing that was wrong.

use crate::status::NtStatus;

/// Result alias used across rdr.
pub type RxResult<T> = Result<T, RxError>;

/// What went wrong, with the object it concerns.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RxError {
    /// A status from a mini-redirector or the server, with what it concerned (a path, a share).
    #[error("{what}: {status}")]
    Status {
        /// The NTSTATUS.
        status: NtStatus,
        /// What it concerned.
        what: String,
    },
    /// A remote or file name that cannot be used.
    #[error("invalid name {input:?}: {problem}")]
    InvalidName {
        /// The name as given.
        input: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A force level other than 0 (FALSE), 1 (TRUE) or 0xff (DetachOnClose).
    #[error(
        "invalid force level {0:#x}: only 0 (FALSE), 1 (TRUE) and 0xff (detach on close) exist"
    )]
    InvalidForceLevel(u32),
    /// I/O on a handle whose connection was deleted with force.
    #[error("{path}: the connection was deleted with force; the handle is orphaned")]
    Orphaned {
        /// The file the handle was open on.
        path: String,
    },
    /// The handle was already closed.
    #[error("{path}: the handle is already closed")]
    HandleClosed {
        /// The file the handle was open on.
        path: String,
    },
    /// The request was cancelled (by the caller, a deadline, or a forced delete).
    #[error("{what}: cancelled")]
    Cancelled {
        /// What was cancelled.
        what: String,
    },
    /// The caller asked not to wait and a lock was busy.
    #[error("{what}: busy, and the caller asked not to wait")]
    LockNotGranted {
        /// What was busy.
        what: String,
    },
    /// The connection no longer exists (deleted, or never made).
    #[error("{what}: no such connection")]
    NotConnected {
        /// The connection name.
        what: String,
    },
}

impl RxError {
    /// A status error about `what`.
    pub fn status(status: NtStatus, what: impl Into<String>) -> Self {
        RxError::Status {
            status,
            what: what.into(),
        }
    }

    /// The NTSTATUS this error stands for.
    pub fn nt_status(&self) -> NtStatus {
        match self {
            RxError::Status { status, .. } => *status,
            RxError::InvalidName { problem, .. } if problem.contains("too long") => {
                NtStatus::STATUS_NAME_TOO_LONG
            }
            RxError::InvalidName { .. } => NtStatus::STATUS_OBJECT_NAME_INVALID,
            RxError::InvalidForceLevel(_) => NtStatus::STATUS_INVALID_PARAMETER,
            RxError::Orphaned { .. } => NtStatus::STATUS_UNEXPECTED_NETWORK_ERROR,
            RxError::HandleClosed { .. } => NtStatus::STATUS_FILE_CLOSED,
            RxError::Cancelled { .. } => NtStatus::STATUS_CANCELLED,
            RxError::LockNotGranted { .. } => NtStatus::STATUS_LOCK_NOT_GRANTED,
            RxError::NotConnected { .. } => NtStatus::STATUS_BAD_NETWORK_NAME,
        }
    }

    /// The errno the FUSE mount returns for this error.
    pub fn errno(&self) -> i32 {
        match self.nt_status().errno() {
            0 => crate::status::libc_errno::EIO,
            e => e,
        }
    }
}
