//! Dereference and two-phase finalization of the name-table objects (§2.2, §2.3), and the async
//! tail of every structural change.
//!
//! RDBSS finalizes an object on the spot only when the dereferencing thread holds the relevant
//! lock exclusively; otherwise it marks the object for the scavenger (§2.2). Here code running
//! under the FCB-table lock cannot take the name-table lock (it is outer), so it collects the
//! references it drops in an [`Aftermath`]; [`crate::rdbss::Inner::settle`] then applies them
//! under the name-table lock and finally makes the mini-redirector calls (close server opens,
//! `MRxFinalizeNetRoot`, `MRxFinalizeVNetRoot`) with no lock held.

use crate::inventory::Unwritten;
use crate::minirdr::MrxContext;
use crate::net_name_table::NetNameTable;
use crate::net_root::NetRoot;
use crate::srv_call::SrvCall;
use crate::srv_open::SrvOpen;
use crate::v_net_root::VNetRoot;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// A counted reference on a name-table object, to drop under the name-table lock.
pub(crate) enum Deref {
    SrvCall(Arc<SrvCall>),
    NetRoot(Arc<NetRoot>),
    VNetRoot(Arc<VNetRoot>),
}

/// Mini-redirector work left once the locks are released.
pub(crate) enum Teardown {
    /// `MRxCloseSrvOpen`.
    CloseSrvOpen(Arc<SrvOpen>),
    /// `MRxFinalizeNetRoot` (last view unlinked).
    FinalizeNetRoot(MrxContext),
    /// `MRxFinalizeVNetRoot` (view memory phase).
    FinalizeVNetRoot(MrxContext),
    /// `MRxFinalizeSrvCall`.
    FinalizeSrvCall(MrxContext),
}

impl Teardown {
    /// What this step does on the server, for a report of what is left.
    pub(crate) fn describe(&self) -> String {
        match self {
            Teardown::CloseSrvOpen(so) => format!("close of {}", so.fcb.path),
            Teardown::FinalizeNetRoot(_) => "release of the share".into(),
            Teardown::FinalizeVNetRoot(_) => {
                "disconnect of the connection (tree and session)".into()
            }
            Teardown::FinalizeSrvCall(_) => "close of the transport".into(),
        }
    }
}

/// What a structural change leaves to do after its locks are released.
#[derive(Default)]
pub(crate) struct Aftermath {
    pub(crate) derefs: VecDeque<Deref>,
    pub(crate) teardown: VecDeque<Teardown>,
    /// Dirty data dropped (forced close), for the outcome.
    pub(crate) unwritten: Vec<Unwritten>,
}

impl Aftermath {
    pub(crate) fn deref_view(&mut self, v: &Arc<VNetRoot>) {
        self.derefs.push_back(Deref::VNetRoot(v.clone()));
    }
    pub(crate) fn is_empty(&self) -> bool {
        self.derefs.is_empty() && self.teardown.is_empty()
    }
}

/// Apply every queued dereference under the name-table lock (the caller holds it).
pub(crate) fn apply_derefs(names: &mut NetNameTable, am: &mut Aftermath, now: Instant) {
    while let Some(d) = am.derefs.pop_front() {
        match d {
            Deref::VNetRoot(v) => dereference_v_net_root(names, &v, am),
            Deref::NetRoot(nr) => dereference_net_root(names, &nr, am),
            Deref::SrvCall(sc) => dereference_srv_call(names, &sc, now, am),
        }
    }
}

/// `RxDereference` of a view: at 1, finalize it (upper phase once, then memory phase).
fn dereference_v_net_root(names: &mut NetNameTable, v: &Arc<VNetRoot>, am: &mut Aftermath) {
    {
        let mut st = v.state.lock();
        st.ref_count = st.ref_count.saturating_sub(1);
        if st.ref_count > 1 || st.freed {
            return;
        }
    }
    upper_finalize_v_net_root(names, v, am);
    free_v_net_root(v, am);
}

/// `RxFinalizeVNetRoot`, upper phase (once): unlink from the NetRoot — when it was the last view
/// the NetRoot loses its name and `MRxFinalizeNetRoot` is queued — and remove the view's name.
/// The caller has already orphaned the view's SrvOpens when forcing (§2.7).
pub(crate) fn upper_finalize_v_net_root(
    names: &mut NetNameTable,
    v: &Arc<VNetRoot>,
    am: &mut Aftermath,
) {
    {
        let mut st = v.state.lock();
        if st.upper_finalization_done {
            return;
        }
        st.upper_finalization_done = true;
    }
    names.remove_v_net_root(v);
    let nr = &v.net_root;
    let last = {
        let mut st = nr.state.lock();
        st.views.retain(|x| x.id != v.id);
        if st.views.is_empty() && !st.upper_finalization_done {
            st.upper_finalization_done = true;
            Some(st.context.clone())
        } else {
            None
        }
    };
    if let Some(ctx) = last {
        // RxRemoveVirtualNetRootFromNetRoot: the last view takes the share's name with it.
        names.remove_net_root(nr);
        if let Some(ctx) = ctx {
            am.teardown.push_back(Teardown::FinalizeNetRoot(ctx));
        }
    }
}

/// Memory phase of a view: `MRxFinalizeVNetRoot`, then drop its NetRoot reference.
fn free_v_net_root(v: &Arc<VNetRoot>, am: &mut Aftermath) {
    let ctx = {
        let mut st = v.state.lock();
        if st.freed {
            return;
        }
        st.freed = true;
        st.context.take()
    };
    if let Some(ctx) = ctx {
        am.teardown.push_back(Teardown::FinalizeVNetRoot(ctx));
    }
    am.derefs.push_back(Deref::NetRoot(v.net_root.clone()));
}

/// `RxDereference` of a share: at 1 (only the name table), free it and drop its SrvCall
/// reference (§2.3 `RxFinalizeNetRoot`).
fn dereference_net_root(names: &mut NetNameTable, nr: &Arc<NetRoot>, am: &mut Aftermath) {
    let ctx = {
        let mut st = nr.state.lock();
        st.ref_count = st.ref_count.saturating_sub(1);
        if st.ref_count > 1 || st.freed || !st.views.is_empty() {
            return;
        }
        st.freed = true;
        if st.upper_finalization_done {
            None
        } else {
            st.upper_finalization_done = true;
            st.context.take()
        }
    };
    names.remove_net_root(nr);
    if let Some(ctx) = ctx {
        am.teardown.push_back(Teardown::FinalizeNetRoot(ctx));
    }
    if nr.fcb_table.lock().number_of_fcbs != 0 {
        tracing::warn!(share = %nr.key, "share freed with FCBs left in its table");
    }
    am.derefs.push_back(Deref::SrvCall(nr.srv_call.clone()));
}

/// `RxDereference` of a server: at 1 it goes dormant (decision 9); a server whose construction
/// failed is removed at once.
fn dereference_srv_call(
    names: &mut NetNameTable,
    sc: &Arc<SrvCall>,
    now: Instant,
    _am: &mut Aftermath,
) {
    let mut st = sc.state.lock();
    st.ref_count = st.ref_count.saturating_sub(1);
    if st.ref_count > 1 || st.finalized {
        return;
    }
    if st.context.is_none() {
        st.finalized = true;
        drop(st);
        names.remove_srv_call(sc);
    } else if st.dormant_since.is_none() {
        st.dormant_since = Some(now);
    }
}

/// Finalize a dormant SrvCall now (scavenger expiry or `close_transport`): remove its name and
/// queue `MRxFinalizeSrvCall`. Returns false if it is in use again.
pub(crate) fn finalize_dormant_srv_call(
    names: &mut NetNameTable,
    sc: &Arc<SrvCall>,
    am: &mut Aftermath,
) -> bool {
    let mut st = sc.state.lock();
    if st.finalized || st.ref_count > 1 {
        return false;
    }
    st.finalized = true;
    st.dormant_since = None;
    let ctx = st.context.take();
    drop(st);
    names.remove_srv_call(sc);
    if let Some(ctx) = ctx {
        am.teardown.push_back(Teardown::FinalizeSrvCall(ctx));
    }
    true
}
