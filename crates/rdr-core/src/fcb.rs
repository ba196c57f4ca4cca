//! `Fcb`: one remote file or directory name on a share (§1.6).
//!
//! Reference count (§2.1, §1.12): +1 for the FCB-table entry (removal does not drop it), +1 per
//! SrvOpen on it, +1 while a create works on it. It is finalized at 1 with `OpenCount` and
//! `UncleanCount` at 0 (§2.4 `RxpDereferenceAndFinalizeNetFcb`): its name leaves the table,
//! `NumberOfFcbs` drops and the reference on the view that *created* it (`Fcb.VNetRoot`) is
//! released. All counts change under the FCB-table lock.
//!
//! The FCB *resource* (RDBSS `Header.Resource`) is an async lock held by the structure-changing
//! operations on this file — create, close, set_info — and by `finalize_connection` while it
//! purges the FCB; reads and writes do not take it. The byte-range lock list (owner = Fobx) lives
//! here too, so two handles of one FCB conflict even when they share a SrvOpen.

use crate::fcb_table::FcbTable;
use crate::minirdr::LockRange;
use crate::refcount::Aftermath;
use crate::srv_open::SrvOpen;
use crate::v_net_root::VNetRoot;
use parking_lot::Mutex;
use std::sync::Arc;

/// A byte-range lock held (or being requested) through a handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HeldLock {
    pub(crate) fobx: u64,
    pub(crate) range: LockRange,
}

/// RDBSS `FCB`.
pub struct Fcb {
    pub(crate) id: u64,
    /// The view that created this FCB (`Fcb.VNetRoot`): the key of the §3.2 walk.
    pub(crate) v_net_root: Arc<VNetRoot>,
    /// The in-share path (`\`-joined) and its case-insensitive key.
    pub(crate) path: String,
    pub(crate) key: String,
    /// The FCB resource.
    pub(crate) resource: Arc<tokio::sync::Mutex<()>>,
    /// Woken when a byte-range lock is released.
    pub(crate) lock_released: tokio::sync::Notify,
    pub(crate) state: Mutex<FcbState>,
}

/// The counted part of an FCB; changed under the FCB-table lock.
pub(crate) struct FcbState {
    pub(crate) ref_count: u32,
    /// `OpenCount`: handles not yet closed.
    pub(crate) open_count: u32,
    /// `UncleanCount`: handles not yet cleaned up.
    pub(crate) unclean_count: u32,
    /// Storage type, known after the first successful create.
    pub(crate) is_dir: Option<bool>,
    /// `SrvOpenList`.
    pub(crate) srv_opens: Vec<Arc<SrvOpen>>,
    /// `FCB_STATE_ORPHANED`.
    pub(crate) orphaned: bool,
    /// `FCB_STATE_NAME_ALREADY_REMOVED`.
    pub(crate) name_removed: bool,
    /// `FCB_STATE_COLLAPSING_ENABLED`: opens may reuse SrvOpens; closes may be delayed.
    pub(crate) collapsing_enabled: bool,
    /// The creating view's reference was released (at orphaning or finalization).
    pub(crate) view_ref_dropped: bool,
    /// Finalized.
    pub(crate) freed: bool,
    /// Byte-range locks, owner = Fobx.
    pub(crate) locks: Vec<HeldLock>,
}

impl Fcb {
    /// A new FCB with its table reference (the caller inserts it).
    pub(crate) fn new(v: Arc<VNetRoot>, path: String, key: String) -> Self {
        Fcb {
            id: crate::next_id(),
            v_net_root: v,
            path,
            key,
            resource: Arc::new(tokio::sync::Mutex::new(())),
            lock_released: tokio::sync::Notify::new(),
            state: Mutex::new(FcbState {
                ref_count: 1,
                open_count: 0,
                unclean_count: 0,
                is_dir: None,
                srv_opens: Vec::new(),
                orphaned: false,
                name_removed: false,
                collapsing_enabled: true,
                view_ref_dropped: false,
                freed: false,
                locks: Vec::new(),
            }),
        }
    }

    /// The in-share path.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The view that created this FCB.
    pub fn v_net_root(&self) -> &Arc<VNetRoot> {
        &self.v_net_root
    }
    /// (`NodeReferenceCount`, `OpenCount`, `UncleanCount`).
    pub fn counts(&self) -> (u32, u32, u32) {
        let st = self.state.lock();
        (st.ref_count, st.open_count, st.unclean_count)
    }
    /// `FCB_STATE_ORPHANED`.
    pub fn is_orphaned(&self) -> bool {
        self.state.lock().orphaned
    }

    /// `RxpDereferenceAndFinalizeNetFcb`: drop a reference and finalize if nothing holds it.
    pub(crate) fn dereference_locked(self: &Arc<Self>, tbl: &mut FcbTable, am: &mut Aftermath) {
        {
            let mut st = self.state.lock();
            st.ref_count = st.ref_count.saturating_sub(1);
        }
        self.try_finalize_locked(tbl, am);
    }

    /// `RxFinalizeNetFcb` when the FCB is unreferenced (count 1, no open or unclean handle):
    /// remove its name, count it out, release the creating view. Returns whether it was freed.
    pub(crate) fn try_finalize_locked(
        self: &Arc<Self>,
        tbl: &mut FcbTable,
        am: &mut Aftermath,
    ) -> bool {
        let drop_view = {
            let mut st = self.state.lock();
            if st.freed || st.ref_count > 1 || st.open_count > 0 || st.unclean_count > 0 {
                return false;
            }
            st.freed = true;
            st.name_removed = true;
            st.locks.clear();
            !std::mem::replace(&mut st.view_ref_dropped, true)
        };
        tbl.remove(self);
        tbl.number_of_fcbs = tbl.number_of_fcbs.saturating_sub(1);
        tbl.view(self.v_net_root.id).created_fcbs.remove(&self.id);
        tbl.tidy_view(self.v_net_root.id);
        if drop_view {
            am.deref_view(&self.v_net_root);
        }
        true
    }

    /// `RxOrphanThisFcb` (§2.7, INF): every SrvOpen is orphaned, so the FCB leaves the table
    /// (new opens build a fresh FCB) and releases its creating view at once, so the view can be
    /// finalized while orphaned handles stay open.
    pub(crate) fn orphan_locked(self: &Arc<Self>, tbl: &mut FcbTable, am: &mut Aftermath) {
        let drop_view = {
            let mut st = self.state.lock();
            if st.orphaned || st.freed {
                return;
            }
            st.orphaned = true;
            st.name_removed = true;
            st.collapsing_enabled = false;
            !std::mem::replace(&mut st.view_ref_dropped, true)
        };
        tbl.remove(self);
        if drop_view {
            am.deref_view(&self.v_net_root);
        }
    }
}

impl std::fmt::Debug for Fcb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fcb")
            .field("id", &self.id)
            .field("path", &self.path)
            .finish()
    }
}
