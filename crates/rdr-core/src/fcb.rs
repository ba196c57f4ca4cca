//! `Fcb` (STUB).

/// RDBSS Fcb.
pub struct Fcb {
    _p: (),
}
