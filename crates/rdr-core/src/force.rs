//! The force level of `finalize_connection` (RDBSS's `ForceFilesClosed`).

use crate::error::RxError;

/// How hard `finalize_connection` pushes. Only the three values RDBSS defines exist
/// (DESIGN.md decision 1); any other raw value is rejected at the boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ForceLevel {
    /// FALSE (0): fail with FILES_OPEN / CONNECTION_IN_USE if anything is open. `umount`.
    No,
    /// TRUE (1): succeed no matter what; cancel, drain, orphan. `umount -f`, done right.
    Yes,
    /// 0xff: as `No`, but drop the add-connection reference whatever the result, so the view
    /// is finalized when its last handle closes. `umount -l`.
    DetachOnClose,
}

impl ForceLevel {
    /// The raw RDBSS value.
    pub fn raw(self) -> u32 {
        match self {
            ForceLevel::No => 0,
            ForceLevel::Yes => 1,
            ForceLevel::DetachOnClose => 0xff,
        }
    }
}

impl TryFrom<u32> for ForceLevel {
    type Error = RxError;
    fn try_from(v: u32) -> Result<Self, RxError> {
        match v {
            0 => Ok(ForceLevel::No),
            1 => Ok(ForceLevel::Yes),
            0xff => Ok(ForceLevel::DetachOnClose),
            other => Err(RxError::InvalidForceLevel(other)),
        }
    }
}
