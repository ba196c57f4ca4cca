//! `SrvCall` (STUB).

/// RDBSS SrvCall.
pub struct SrvCall {
    _p: (),
}
