//! What is open on a connection: the data behind `rdr files`, `--dry-run` and the report of a
//! forced delete. Serializable so the CLI can print JSON.

use crate::minirdr::{BufferingState, LockRange};
use crate::rx_context::RequestKind;
use crate::status::NtStatus;
use serde::{Deserialize, Serialize};

/// One local handle (Fobx).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandleInfo {
    /// The handle's id (unique within the daemon).
    pub id: u64,
    /// Path inside the share (`\`-separated, empty for the root).
    pub path: String,
    /// Directory handle.
    pub is_dir: bool,
    /// Desired access (ACCESS_MASK bits).
    pub access: u32,
    /// Share access (FILE_SHARE_* bits).
    pub share: u32,
    /// Byte-range locks held through this handle.
    pub locks: Vec<LockRange>,
    /// Bytes written through this handle and not yet sent to the server.
    pub dirty_bytes: u64,
    /// What the server lets us cache for this open (from the lease).
    pub buffering: BufferingState,
    /// The connection was deleted with force; I/O fails, close works.
    pub orphaned: bool,
}

/// A request in flight on a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestInfo {
    /// What kind of request.
    pub kind: RequestKind,
    /// The path it concerns.
    pub path: String,
    /// How long it has been outstanding, milliseconds.
    pub age_ms: u64,
}

/// Dirty data that could not be written to the server before a forced close.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unwritten {
    /// The file.
    pub path: String,
    /// Bytes lost.
    pub bytes: u64,
    /// Why the write failed.
    pub error: String,
}

/// Everything open on one view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// `\\server\share`.
    pub remote: String,
    /// The local identity (uid) owning the view.
    pub logon_id: u32,
    /// The remote user, if any.
    pub user: Option<String>,
    /// Open handles through the view.
    pub handles: Vec<HandleInfo>,
    /// Requests outstanding on the view.
    pub pending: Vec<RequestInfo>,
}

/// What `finalize_connection` did. `status` is one of SUCCESS, FILES_OPEN, CONNECTION_IN_USE,
/// CANCELLED, LOCK_NOT_GRANTED (or INVALID_PARAMETER at the boundary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalizeOutcome {
    /// The RxFinalizeConnection status.
    pub status: NtStatus,
    /// Handles that were open through the view when the walk ran: orphaned by force, or the
    /// reason a delete without force failed.
    pub open_handles: Vec<HandleInfo>,
    /// Requests that were cancelled.
    pub cancelled: Vec<RequestInfo>,
    /// Dirty data that could not be written before the forced close.
    pub unwritten: Vec<Unwritten>,
    /// The view was removed from the name table (new opens cannot reach it).
    pub view_removed: bool,
    /// Server steps of the teardown (closes, tree disconnect) that had not finished when the
    /// caller's deadline came: they go on in the background, and the server may still hold
    /// these until they do. Empty when the teardown finished.
    #[serde(default)]
    pub unconfirmed: Vec<String>,
}

impl FinalizeOutcome {
    /// The contract's view of the outcome: `Ok(())` for SUCCESS, else the status.
    pub fn result(&self) -> Result<(), NtStatus> {
        if self.status == NtStatus::STATUS_SUCCESS {
            Ok(())
        } else {
            Err(self.status)
        }
    }
}
