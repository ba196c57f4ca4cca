//! `VNetRoot`: one identity's view of a share (§1.5) — one mount point.
//!
//! Reference count (§2.1): +1 name-table entry, +1 the add-connection extra reference
//! (`AdditionalReferenceForDeleteFsctlTaken`, at most one, §1.14), +1 per FCB created through
//! it, +1 per SrvOpen opened through it, +1 while an operation on the view itself runs
//! (query_volume, query_path_info). Finalized at 1 (§2.3): upper finalization (unlink from the
//! NetRoot, remove the name) happens once — possibly earlier, forced by `finalize_connection` —
//! and the memory phase calls `MRxFinalizeVNetRoot`.
//!
//! The view also carries the outstanding-request list (RDBSS's active RX_CONTEXTs, §5.1) and a
//! *gate*: creates through the view hold it shared, `finalize_connection` exclusive, so no new
//! open slips in mid-walk.

use crate::active_requests::ActiveRequests;
use crate::condition::{Condition, ConditionState};
use crate::minirdr::{Credentials, MrxContext};
use crate::net_root::NetRoot;
use parking_lot::Mutex;
use std::sync::Arc;

/// RDBSS `V_NET_ROOT`.
pub struct VNetRoot {
    pub(crate) id: u64,
    pub(crate) net_root: Arc<NetRoot>,
    /// Canonical name without the logon id: lower-cased `\server[:port]\share[\prefix]`.
    pub(crate) key: String,
    /// `NamePrefix`: the in-share path the view is rooted at (empty for the share root).
    pub(crate) prefix: String,
    /// `\\server\share[\prefix]` as the user wrote it.
    pub(crate) remote: String,
    pub(crate) credentials: Credentials,
    pub(crate) condition: Condition,
    pub(crate) state: Mutex<VNetRootState>,
    /// Outstanding requests on this view (§5.1).
    pub(crate) requests: ActiveRequests,
    /// Creates shared, finalize exclusive.
    pub(crate) gate: tokio::sync::RwLock<()>,
    /// A forced finalize is under way: requests it cancels report the orphaning.
    pub(crate) force_pending: std::sync::atomic::AtomicBool,
}

/// The mutable part of a view; a leaf lock (taken under the name table or the FCB table).
pub(crate) struct VNetRootState {
    pub(crate) ref_count: u32,
    pub(crate) context: Option<MrxContext>,
    /// `AdditionalReferenceForDeleteFsctlTaken` (0/1).
    pub(crate) additional_reference_taken: bool,
    /// `ConnectionFinalizationDone`: the walk found nothing left (§3.2 step 4).
    pub(crate) connection_finalization_done: bool,
    /// Unlinked from the NetRoot and removed from the name table.
    pub(crate) upper_finalization_done: bool,
    /// Memory phase done (`MRxFinalizeVNetRoot` queued).
    pub(crate) freed: bool,
    /// `NumberOfFobxs`: handles whose SrvOpen was opened through this view (§1.5).
    pub(crate) number_of_fobxs: usize,
}

impl VNetRoot {
    pub(crate) fn new(
        net_root: Arc<NetRoot>,
        key: String,
        prefix: String,
        remote: String,
        credentials: Credentials,
    ) -> Self {
        VNetRoot {
            id: crate::next_id(),
            net_root,
            key,
            prefix,
            remote,
            credentials,
            condition: Condition::new(ConditionState::InTransition),
            state: Mutex::new(VNetRootState {
                ref_count: 1, // the name-table entry
                context: None,
                additional_reference_taken: false,
                connection_finalization_done: false,
                upper_finalization_done: false,
                freed: false,
                number_of_fobxs: 0,
            }),
            requests: ActiveRequests::default(),
            gate: tokio::sync::RwLock::new(()),
            force_pending: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// `\\server\share` as the user gave it (with the sub-path, if the view has one).
    pub fn remote_name(&self) -> String {
        self.remote.clone()
    }
    /// The owning local uid (RDBSS LogonId).
    pub fn logon_id(&self) -> u32 {
        self.credentials.logon_id
    }
    /// The remote user name, if any.
    pub fn user(&self) -> Option<String> {
        self.credentials.user.clone()
    }
    /// The share this view belongs to.
    pub fn net_root(&self) -> Arc<NetRoot> {
        self.net_root.clone()
    }
    /// Number of open local handles through this view (RDBSS NumberOfFobxs).
    pub fn number_of_fobxs(&self) -> usize {
        self.state.lock().number_of_fobxs
    }
    /// True once the view has been removed from the name table.
    pub fn is_finalized(&self) -> bool {
        self.state.lock().upper_finalization_done
    }
    /// True once the view's memory phase ran (`MRxFinalizeVNetRoot` was called or queued).
    pub fn is_freed(&self) -> bool {
        self.state.lock().freed
    }
    /// The reference count (`NodeReferenceCount`).
    pub fn reference_count(&self) -> u32 {
        self.state.lock().ref_count
    }
    /// Whether the add-connection extra reference is held (§1.14).
    pub fn has_additional_reference(&self) -> bool {
        self.state.lock().additional_reference_taken
    }
    /// `ConnectionFinalizationDone`.
    pub fn connection_finalization_done(&self) -> bool {
        self.state.lock().connection_finalization_done
    }
    /// The in-share path the view is rooted at (empty for the share root).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
    /// The construction state.
    pub fn condition(&self) -> ConditionState {
        self.condition.get()
    }
    /// Number of requests outstanding on the view.
    pub fn number_of_pending_requests(&self) -> usize {
        self.requests.len()
    }

    pub(crate) fn context(&self) -> Option<MrxContext> {
        self.state.lock().context.clone()
    }

    /// `RxReference` for a new FCB/SrvOpen/operation: refused once the view lost its name.
    pub(crate) fn try_reference(&self) -> bool {
        let mut st = self.state.lock();
        if st.upper_finalization_done || st.freed {
            return false;
        }
        st.ref_count += 1;
        true
    }
}

impl std::fmt::Debug for VNetRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VNetRoot")
            .field("id", &self.id)
            .field("remote", &self.remote)
            .field("logon_id", &self.credentials.logon_id)
            .finish()
    }
}
