//! `Fobx`: one local handle — a FUSE file handle (§1.8).
//!
//! Reference count (§2.1): 1 while the handle is open; finalized at 0 when it is closed: it
//! leaves its SrvOpen, `NumberOfFobxs` of the SrvOpen's view drops (§1.5) and the SrvOpen
//! reference is released. Cleanup and close happen together here (a FUSE release is both):
//! `UncleanCount` and `OpenCount` of the FCB, `OpenCount` of the SrvOpen drop (§1.9).

use crate::fcb::Fcb;
use crate::fcb_table::FcbTable;
use crate::minirdr::{BufferingState, FileInfo};
use crate::refcount::Aftermath;
use crate::srv_open::SrvOpen;
use crate::v_net_root::VNetRoot;
use parking_lot::Mutex;
use std::sync::Arc;

/// RDBSS `FOBX`.
pub struct Fobx {
    pub(crate) id: u64,
    pub(crate) srv_open: Arc<SrvOpen>,
    /// The path relative to the view it was opened through.
    pub(crate) path: String,
    /// Metadata returned by the create.
    pub(crate) info: FileInfo,
    /// `info` came from the server with this create (a new open's CREATE response, or a query
    /// for a collapsed one), not from an older open.
    pub(crate) info_fresh: bool,
    /// Cleanup has begun: new requests on the handle fail; set before its requests are
    /// cancelled.
    pub(crate) closing: std::sync::atomic::AtomicBool,
    pub(crate) state: Mutex<FobxState>,
}

/// The counted part of a Fobx; changed under the FCB-table lock.
pub(crate) struct FobxState {
    pub(crate) ref_count: u32,
    pub(crate) closed: bool,
}

impl Fobx {
    pub(crate) fn new(
        srv_open: Arc<SrvOpen>,
        path: String,
        info: FileInfo,
        info_fresh: bool,
    ) -> Self {
        Fobx {
            id: crate::next_id(),
            srv_open,
            path,
            info,
            info_fresh,
            closing: std::sync::atomic::AtomicBool::new(false),
            state: Mutex::new(FobxState {
                ref_count: 1,
                closed: false,
            }),
        }
    }

    /// Unique handle id.
    pub fn id(&self) -> u64 {
        self.id
    }
    /// Path inside the view (`\`-joined, empty for the view's root).
    pub fn path(&self) -> String {
        self.path.clone()
    }
    /// Path inside the share.
    pub fn share_path(&self) -> &str {
        &self.srv_open.fcb.path
    }
    /// Directory handle.
    pub fn is_dir(&self) -> bool {
        self.srv_open.is_dir
    }
    /// What may be cached for this open (drives FOPEN_DIRECT_IO / KEEP_CACHE in the mount).
    pub fn buffering(&self) -> BufferingState {
        self.srv_open.buffering()
    }
    /// True after a forced delete of the connection.
    pub fn is_orphaned(&self) -> bool {
        self.srv_open.is_orphaned()
    }
    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }
    /// True once a close has begun.
    pub fn is_closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::SeqCst)
    }
    /// The view the handle was opened through.
    pub fn v_net_root(&self) -> &Arc<VNetRoot> {
        &self.srv_open.v_net_root
    }
    /// Metadata from the create.
    pub fn info(&self) -> &FileInfo {
        &self.info
    }
    /// The create's metadata when it is still what a query would return: the server sent it
    /// for this create and no open of the file holds unsent writes. `None` when the caller
    /// must ask the server (`Rdbss::query_info`). Saves a round trip after an open.
    pub fn open_info(&self) -> Option<FileInfo> {
        if !self.info_fresh {
            return None;
        }
        let st = self.srv_open.fcb.state.lock();
        if st.srv_opens.iter().any(|so| so.dirty_bytes() > 0) {
            return None;
        }
        Some(self.info.clone())
    }
    /// The FCB (file) the handle is open on.
    pub fn fcb(&self) -> &Arc<Fcb> {
        &self.srv_open.fcb
    }
    /// The server open the handle uses.
    pub fn srv_open(&self) -> &Arc<SrvOpen> {
        &self.srv_open
    }

    /// Link a new handle (`RxCreateNetFobx` + the create's counts).
    pub(crate) fn attach_locked(self: &Arc<Self>, tbl: &mut FcbTable) {
        let so = &self.srv_open;
        {
            let mut st = so.state.lock();
            st.ref_count += 1;
            st.open_count += 1;
        }
        {
            let mut st = so.fcb.state.lock();
            st.open_count += 1;
            st.unclean_count += 1;
        }
        so.v_net_root.state.lock().number_of_fobxs += 1;
        tbl.view(so.v_net_root.id)
            .fobxs
            .insert(self.id, self.clone());
    }

    /// Cleanup + close of the handle. Returns false if it was already closed. When the SrvOpen's
    /// `OpenCount` reaches 0 the caller decides between delayed and immediate close.
    pub(crate) fn close_locked(self: &Arc<Self>, tbl: &mut FcbTable, am: &mut Aftermath) -> bool {
        {
            let mut st = self.state.lock();
            if st.closed {
                return false;
            }
            st.closed = true;
            st.ref_count = st.ref_count.saturating_sub(1);
        }
        let so = &self.srv_open;
        {
            let mut st = so.fcb.state.lock();
            st.unclean_count = st.unclean_count.saturating_sub(1);
            st.open_count = st.open_count.saturating_sub(1);
            st.locks.retain(|l| l.fobx != self.id);
        }
        so.fcb.lock_released.notify_waiters();
        {
            let mut st = so.state.lock();
            st.open_count = st.open_count.saturating_sub(1);
        }
        // RxFinalizeNetFobx (count 0): NumberOfFobxs of the SrvOpen's view, SrvOpen reference.
        {
            let mut st = so.v_net_root.state.lock();
            st.number_of_fobxs = st.number_of_fobxs.saturating_sub(1);
        }
        tbl.view(so.v_net_root.id).fobxs.remove(&self.id);
        tbl.tidy_view(so.v_net_root.id);
        so.dereference_locked(tbl, am);
        true
    }
}

impl std::fmt::Debug for Fobx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fobx")
            .field("id", &self.id)
            .field("path", &self.path)
            .finish()
    }
}
