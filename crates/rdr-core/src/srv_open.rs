//! `SrvOpen`: one open on the server, shared by compatible handles (§1.7).
//!
//! Reference count (§2.1): +1 while it is open on the server (dropped when it is closed,
//! `RxCloseAssociatedSrvOpen`), +1 per Fobx. Finalized at 0: it leaves its FCB's list, drops its
//! FCB reference and the reference on the view it was opened through (`SrvOpen.VNetRoot`, which
//! may differ from `Fcb.VNetRoot`).
//!
//! Delayed close (§2.5): when its last handle closes, a SrvOpen with handle caching may stay open
//! on the server (`CLOSE_DELAYED`) for reuse by a compatible open; the scavenger closes it later.
//! Orphaning (§2.7): a forced finalize of its view closes it on the server at once and marks it
//! `ORPHANED`; its handles then fail every I/O but can still be closed.

use crate::fcb::Fcb;
use crate::fcb_table::FcbTable;
use crate::minirdr::{
    AccessMask, BufferingState, CreateOptions, FileInfo, MrxContext, ShareAccess,
};
use crate::refcount::{Aftermath, Teardown};
use crate::v_net_root::VNetRoot;
use crate::write_behind::WriteBehind;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// RDBSS `SRV_OPEN`.
pub struct SrvOpen {
    pub(crate) id: u64,
    pub(crate) fcb: Arc<Fcb>,
    /// The view this open was made through (`pVNetRoot`).
    pub(crate) v_net_root: Arc<VNetRoot>,
    pub(crate) access: AccessMask,
    pub(crate) share: ShareAccess,
    pub(crate) options: CreateOptions,
    pub(crate) is_dir: bool,
    /// What may be cached for this open; a break of the lease or oplock lowers it. Changed with
    /// the `write_behind` lock held (lock order: `write_behind`, then `buffering`), so a write
    /// either becomes dirty before a break looks or sees the lowered state.
    pub(crate) buffering: Mutex<BufferingState>,
    /// Metadata returned by the create that opened it (fallback for a reusing open).
    pub(crate) info: FileInfo,
    /// The mini-redirector's open (SMB FileId + lease, or a local fd).
    pub(crate) context: MrxContext,
    /// `SRVOPEN_FLAG_ORPHANED`, readable without locks by the I/O path.
    pub(crate) orphaned: AtomicBool,
    pub(crate) state: Mutex<SrvOpenState>,
    /// Held writes (decision 8); a leaf lock.
    pub(crate) write_behind: Mutex<WriteBehind>,
    /// Serialises sending held writes so they reach the server in order.
    pub(crate) flush_lock: tokio::sync::Mutex<()>,
    /// Woken whenever a background write ends.
    pub(crate) write_done: tokio::sync::Notify,
    /// The context of background writes; cancelled when the open is orphaned.
    pub(crate) background: crate::rx_context::RxContext,
}

/// The counted part of a SrvOpen; changed under the FCB-table lock.
pub(crate) struct SrvOpenState {
    pub(crate) ref_count: u32,
    /// `OpenCount`: handles using it.
    pub(crate) open_count: u32,
    /// `SRVOPEN_FLAG_CLOSED`: closed on the server (or queued to be).
    pub(crate) closed: bool,
    /// `SRVOPEN_FLAG_CLOSE_DELAYED` and since when.
    pub(crate) close_delayed_since: Option<Instant>,
    /// `SRVOPEN_FLAG_COLLAPSING_DISABLED` (renamed, delete-on-close).
    pub(crate) collapsing_disabled: bool,
    /// The view reference was released (orphaning or finalization).
    pub(crate) view_ref_dropped: bool,
    pub(crate) freed: bool,
}

impl SrvOpen {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        fcb: Arc<Fcb>,
        v: Arc<VNetRoot>,
        access: AccessMask,
        share: ShareAccess,
        options: CreateOptions,
        is_dir: bool,
        buffering: BufferingState,
        info: FileInfo,
        context: MrxContext,
    ) -> Self {
        SrvOpen {
            id: crate::next_id(),
            fcb,
            v_net_root: v,
            access,
            share,
            options,
            is_dir,
            buffering: Mutex::new(buffering),
            info,
            context,
            orphaned: AtomicBool::new(false),
            state: Mutex::new(SrvOpenState {
                ref_count: 1, // open on the server
                open_count: 0,
                closed: false,
                close_delayed_since: None,
                collapsing_disabled: options.contains(CreateOptions::DELETE_ON_CLOSE),
                view_ref_dropped: false,
                freed: false,
            }),
            write_behind: Mutex::new(WriteBehind::default()),
            flush_lock: tokio::sync::Mutex::new(()),
            write_done: tokio::sync::Notify::new(),
            background: crate::rx_context::RxContext::new(),
        }
    }

    /// What may be cached for this open now.
    pub fn buffering(&self) -> BufferingState {
        *self.buffering.lock()
    }

    /// `SRVOPEN_FLAG_ORPHANED`.
    pub fn is_orphaned(&self) -> bool {
        self.orphaned.load(Ordering::SeqCst)
    }
    /// (`NodeReferenceCount`, `OpenCount`).
    pub fn counts(&self) -> (u32, u32) {
        let st = self.state.lock();
        (st.ref_count, st.open_count)
    }
    /// Parked for delayed close.
    pub fn is_close_delayed(&self) -> bool {
        self.state.lock().close_delayed_since.is_some()
    }
    /// Dirty bytes held for this open.
    pub fn dirty_bytes(&self) -> u64 {
        self.write_behind.lock().bytes
    }

    /// Whether a new open with these parameters may reuse this one (`RxSearchForCollapsibleOpen`):
    /// same view, same access and share mode, same directory-ness, not delete-on-close. An open
    /// still in use is reused only when its share mode admits its own access (two identical
    /// opens would both succeed on the server), so sharing violations stay the server's call.
    pub(crate) fn collapsible_for(
        &self,
        v: &VNetRoot,
        access: AccessMask,
        share: ShareAccess,
        options: CreateOptions,
    ) -> bool {
        let st = self.state.lock();
        if st.closed
            || st.collapsing_disabled
            || self.is_orphaned()
            || self.v_net_root.id != v.id
            || self.access != access
            || self.share != share
            || self.options != options
            || options.contains(CreateOptions::DELETE_ON_CLOSE)
        {
            return false;
        }
        if st.close_delayed_since.is_some() {
            return true;
        }
        // Self-compatible share mode.
        (!access.can_read() || share.contains(ShareAccess::READ))
            && (!access.can_write() || share.contains(ShareAccess::WRITE))
            && (!access.contains(AccessMask::DELETE) || share.contains(ShareAccess::DELETE))
    }

    /// Take a close-delayed SrvOpen back into use (undo the delayed-close accounting).
    pub(crate) fn undelay_locked(&self) -> bool {
        let mut st = self.state.lock();
        if st.close_delayed_since.take().is_some() {
            let sc = &self.v_net_root.net_root.srv_call;
            let _ = sc.number_of_close_delayed_files.fetch_update(
                Ordering::SeqCst,
                Ordering::SeqCst,
                |n| n.checked_sub(1),
            );
            true
        } else {
            false
        }
    }

    /// `RxCloseAssociatedSrvOpen`: mark closed, queue `MRxCloseSrvOpen` (unless the server open
    /// is already gone) and drop the "open on the server" reference.
    pub(crate) fn close_locked(
        self: &Arc<Self>,
        tbl: &mut FcbTable,
        am: &mut Aftermath,
        close_on_server: bool,
    ) {
        {
            let mut st = self.state.lock();
            if st.closed {
                return;
            }
            st.closed = true;
        }
        self.undelay_locked();
        if close_on_server {
            am.teardown.push_back(Teardown::CloseSrvOpen(self.clone()));
        }
        self.dereference_locked(tbl, am);
    }

    /// Drop a reference; at 0 free the SrvOpen (`RxFinalizeSrvOpen`).
    pub(crate) fn dereference_locked(self: &Arc<Self>, tbl: &mut FcbTable, am: &mut Aftermath) {
        let drop_view = {
            let mut st = self.state.lock();
            st.ref_count = st.ref_count.saturating_sub(1);
            if st.ref_count > 0 || st.freed {
                return;
            }
            st.freed = true;
            !std::mem::replace(&mut st.view_ref_dropped, true)
        };
        let only_orphans_left = {
            let mut st = self.fcb.state.lock();
            st.srv_opens.retain(|s| s.id != self.id);
            !st.srv_opens.is_empty() && st.srv_opens.iter().all(|s| s.is_orphaned())
        };
        if only_orphans_left {
            // §2.7: an FCB whose every SrvOpen is orphaned is orphaned itself.
            self.fcb.orphan_locked(tbl, am);
        }
        tbl.number_of_srv_opens = tbl.number_of_srv_opens.saturating_sub(1);
        tbl.view(self.v_net_root.id).srv_opens.remove(&self.id);
        tbl.tidy_view(self.v_net_root.id);
        if drop_view {
            am.deref_view(&self.v_net_root);
        }
        self.fcb.dereference_locked(tbl, am);
    }

    /// `RxOrphanSrvOpensForThisFcb` for one open (§2.7, INF): mark orphaned, close it on the
    /// server now, release its view. Held writes still here are reported as unwritten.
    pub(crate) fn orphan_locked(self: &Arc<Self>, tbl: &mut FcbTable, am: &mut Aftermath) {
        if self.orphaned.swap(true, Ordering::SeqCst) {
            return;
        }
        self.background.cancel();
        let left = self.write_behind.lock().take();
        let lost: u64 = left.iter().map(|c| c.data.len() as u64).sum();
        if lost > 0 {
            am.unwritten.push(crate::inventory::Unwritten {
                path: self.fcb.path.clone(),
                bytes: lost,
                error: "written while the connection was being deleted with force".into(),
            });
        }
        let drop_view = {
            let mut st = self.state.lock();
            st.collapsing_disabled = true;
            !std::mem::replace(&mut st.view_ref_dropped, true)
        };
        if drop_view {
            am.deref_view(&self.v_net_root);
        }
        self.close_locked(tbl, am, true);
    }
}

impl std::fmt::Debug for SrvOpen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrvOpen")
            .field("id", &self.id)
            .field("path", &self.fcb.path)
            .finish()
    }
}
