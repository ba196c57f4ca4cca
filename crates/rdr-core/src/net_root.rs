//! `NetRoot` (STUB).

/// RDBSS NetRoot.
pub struct NetRoot {
    _p: (),
}
