//! `VNetRoot` (STUB).

/// RDBSS VNetRoot.
pub struct VNetRoot {
    _p: (),
}

impl VNetRoot {
    /// `\\server\share` as the user gave it.
    pub fn remote_name(&self) -> String {
        String::new()
    }
    /// The owning local uid (RDBSS LogonId).
    pub fn logon_id(&self) -> u32 {
        0
    }
    /// The remote user name, if any.
    pub fn user(&self) -> Option<String> {
        None
    }
    /// The share this view belongs to.
    pub fn net_root(&self) -> std::sync::Arc<crate::net_root::NetRoot> {
        unreachable!("stub")
    }
    /// Number of open local handles through this view (RDBSS NumberOfFobxs).
    pub fn number_of_fobxs(&self) -> usize {
        0
    }
    /// True once the view has been removed from the name table.
    pub fn is_finalized(&self) -> bool {
        false
    }
}
