//! `SrvOpen` (STUB).

/// RDBSS SrvOpen.
pub struct SrvOpen {
    _p: (),
}
