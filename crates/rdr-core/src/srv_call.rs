//! `SrvCall`: one server and its transport (§1.3).
//!
//! Reference count (§2.1): +1 for its name-table entry, +1 per NetRoot on it, +1 while an
//! add-connection works on it. It is "finalizable" at 1. Decision 9: when the count falls to 1 the
//! SrvCall goes *dormant* instead of being finalized at once; the scavenger finalizes it after the
//! linger time (or `close_transport` at once), and `add_connection` to the same server reuses it.

use crate::condition::{Condition, ConditionState};
use crate::minirdr::{MrxContext, SrvCallParams};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// RDBSS `SRV_CALL`.
pub struct SrvCall {
    pub(crate) id: u64,
    /// Canonical name: lower-cased `\server[:port]`.
    pub(crate) key: String,
    pub(crate) params: SrvCallParams,
    pub(crate) condition: Condition,
    /// `NumberOfCloseDelayedFiles` (§1.9): SrvOpens parked for delayed close on this server.
    pub(crate) number_of_close_delayed_files: AtomicUsize,
    pub(crate) state: Mutex<SrvCallState>,
}

/// The mutable part of a SrvCall; a leaf lock.
pub(crate) struct SrvCallState {
    /// `NodeReferenceCount`.
    pub(crate) ref_count: u32,
    /// The mini-redirector's context (the transport), set when construction succeeds.
    pub(crate) context: Option<MrxContext>,
    /// Since when only the name table holds it (decision 9).
    pub(crate) dormant_since: Option<Instant>,
    /// Removed from the name table and handed to `finalize_srv_call` (or failed construction).
    pub(crate) finalized: bool,
}

impl SrvCall {
    pub(crate) fn new(key: String, params: SrvCallParams) -> Self {
        SrvCall {
            id: crate::next_id(),
            key,
            params,
            condition: Condition::new(ConditionState::InTransition),
            number_of_close_delayed_files: AtomicUsize::new(0),
            state: Mutex::new(SrvCallState {
                ref_count: 1, // the name-table entry
                context: None,
                dormant_since: None,
                finalized: false,
            }),
        }
    }

    /// The server as the user wrote it.
    pub fn server(&self) -> &str {
        &self.params.server
    }

    /// The port, if one was given.
    pub fn port(&self) -> Option<u16> {
        self.params.port
    }

    /// The reference count (`NodeReferenceCount`).
    pub fn reference_count(&self) -> u32 {
        self.state.lock().ref_count
    }

    /// True while no share uses the transport and it waits for the scavenger (decision 9).
    pub fn is_dormant(&self) -> bool {
        self.state.lock().dormant_since.is_some()
    }

    /// True once finalized (removed from the name table).
    pub fn is_finalized(&self) -> bool {
        self.state.lock().finalized
    }

    /// The construction state.
    pub fn condition(&self) -> ConditionState {
        self.condition.get()
    }

    /// SrvOpens currently parked for delayed close on this server.
    pub fn number_of_close_delayed_files(&self) -> usize {
        self.number_of_close_delayed_files.load(Ordering::SeqCst)
    }

    pub(crate) fn context(&self) -> Option<MrxContext> {
        self.state.lock().context.clone()
    }

    /// `RxReference`: take a reference unless finalized; a dormant SrvCall is revived.
    pub(crate) fn try_reference(&self) -> bool {
        let mut st = self.state.lock();
        if st.finalized {
            return false;
        }
        st.ref_count += 1;
        st.dormant_since = None;
        true
    }
}

impl std::fmt::Debug for SrvCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrvCall")
            .field("id", &self.id)
            .field("key", &self.key)
            .finish()
    }
}
