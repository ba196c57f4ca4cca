//! `Fobx` (STUB).

/// RDBSS Fobx.
pub struct Fobx {
    _p: (),
}

impl Fobx {
    /// Unique handle id.
    pub fn id(&self) -> u64 {
        0
    }
    /// Path inside the share.
    pub fn path(&self) -> String {
        String::new()
    }
    /// Directory handle.
    pub fn is_dir(&self) -> bool {
        false
    }
    /// What may be cached for this open (drives FOPEN_DIRECT_IO / KEEP_CACHE in the mount).
    pub fn buffering(&self) -> crate::minirdr::BufferingState {
        Default::default()
    }
    /// True after a forced delete of the connection.
    pub fn is_orphaned(&self) -> bool {
        false
    }
}
