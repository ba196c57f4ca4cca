//! `NetRoot`: one `\server\share` (§1.4). It owns the share's FCB table.
//!
//! Reference count (§2.1): +1 name-table entry, +1 per VNetRoot, +1 while `finalize_connection`
//! or an add-connection works on it; finalized at 1 (§2.3): the FCB table must then be empty and
//! the SrvCall reference is dropped. `MRxFinalizeNetRoot` is called earlier, when the last view
//! is unlinked (`RxRemoveVirtualNetRootFromNetRoot`).

use crate::condition::{Condition, ConditionState};
use crate::fcb_table::FcbTable;
use crate::minirdr::MrxContext;
use crate::srv_call::SrvCall;
use crate::v_net_root::VNetRoot;
use parking_lot::Mutex;
use std::sync::Arc;

/// RDBSS `NET_ROOT`.
pub struct NetRoot {
    pub(crate) id: u64,
    /// Canonical name: lower-cased `\server[:port]\share`.
    pub(crate) key: String,
    /// The share as the user wrote it.
    pub(crate) share: String,
    pub(crate) srv_call: Arc<SrvCall>,
    pub(crate) condition: Condition,
    pub(crate) state: Mutex<NetRootState>,
    /// The per-share FCB table (§1.12); its lock is the "FCB table lock" of the lock order.
    pub(crate) fcb_table: Mutex<FcbTable>,
}

/// The mutable part of a NetRoot; a leaf lock.
pub(crate) struct NetRootState {
    pub(crate) ref_count: u32,
    pub(crate) context: Option<MrxContext>,
    /// `VirtualNetRoots`; its length is `NumberOfVirtualNetRoots`.
    pub(crate) views: Vec<Arc<VNetRoot>>,
    /// The name was removed and `MRxFinalizeNetRoot` queued (last view unlinked).
    pub(crate) upper_finalization_done: bool,
    /// Memory-phase finalization done.
    pub(crate) freed: bool,
}

impl NetRoot {
    pub(crate) fn new(key: String, share: String, srv_call: Arc<SrvCall>) -> Self {
        NetRoot {
            id: crate::next_id(),
            key,
            share,
            srv_call,
            condition: Condition::new(ConditionState::InTransition),
            state: Mutex::new(NetRootState {
                ref_count: 1, // the name-table entry
                context: None,
                views: Vec::new(),
                upper_finalization_done: false,
                freed: false,
            }),
            fcb_table: Mutex::new(FcbTable::default()),
        }
    }

    /// `\\server\share` as the user wrote it.
    pub fn name(&self) -> String {
        format!("\\\\{}\\{}", self.srv_call.server(), self.share)
    }

    /// The server this share lives on.
    pub fn srv_call(&self) -> &Arc<SrvCall> {
        &self.srv_call
    }

    /// The reference count (`NodeReferenceCount`).
    pub fn reference_count(&self) -> u32 {
        self.state.lock().ref_count
    }

    /// `NumberOfFcbs` (§1.9).
    pub fn number_of_fcbs(&self) -> usize {
        self.fcb_table.lock().number_of_fcbs
    }

    /// `NumberOfSrvOpens` (§1.9, incremented at SrvOpen creation as the INF note recommends).
    pub fn number_of_srv_opens(&self) -> usize {
        self.fcb_table.lock().number_of_srv_opens
    }

    /// `NumberOfVirtualNetRoots`.
    pub fn number_of_v_net_roots(&self) -> usize {
        self.state.lock().views.len()
    }

    /// The views of this share still linked to it.
    pub fn v_net_roots(&self) -> Vec<Arc<VNetRoot>> {
        self.state.lock().views.clone()
    }

    /// Number of FCBs currently in the FCB table (named, not orphaned).
    pub fn fcb_table_len(&self) -> usize {
        self.fcb_table.lock().entries.len()
    }

    /// The construction state.
    pub fn condition(&self) -> ConditionState {
        self.condition.get()
    }

    /// True once freed (count reached 1 after the last view went).
    pub fn is_finalized(&self) -> bool {
        self.state.lock().freed
    }

    pub(crate) fn context(&self) -> Option<MrxContext> {
        self.state.lock().context.clone()
    }

    /// Reference for a new view: refused once the share lost its name.
    pub(crate) fn try_reference(&self) -> bool {
        let mut st = self.state.lock();
        if st.freed || st.upper_finalization_done {
            return false;
        }
        st.ref_count += 1;
        true
    }

    /// Transient reference (finalize_connection step 2): refused only once freed.
    pub(crate) fn reference(&self) -> bool {
        let mut st = self.state.lock();
        if st.freed {
            return false;
        }
        st.ref_count += 1;
        true
    }
}

impl std::fmt::Debug for NetRoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetRoot")
            .field("id", &self.id)
            .field("key", &self.key)
            .finish()
    }
}
