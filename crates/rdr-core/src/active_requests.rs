//! The outstanding requests of a view: RDBSS's active `RX_CONTEXT` list (§5.1), kept per view.
//!
//! Every core operation registers a child [`RxContext`] here for as long as it runs (RAII:
//! [`RequestGuard`]), so requests can be listed (`Inventory::pending`) and cancelled. A change
//! notification is registered on its handle's view and — when different — also on the view that
//! *created* the directory's FCB: RDBSS captures `NotifyChangeDirectory.pVNetRoot` from the FCB
//! (§5.1), and that is the key step 1 of `finalize_connection` searches (§5.3).

use crate::inventory::RequestInfo;
use crate::rx_context::{RequestKind, RxContext};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One registered request.
#[derive(Debug, Clone)]
pub(crate) struct ActiveRequest {
    pub(crate) kind: RequestKind,
    pub(crate) path: String,
    pub(crate) started: Instant,
    pub(crate) ctx: RxContext,
    /// The handle the request runs on, if any.
    pub(crate) fobx: Option<u64>,
    /// Registered here only as the notification's FCB view (not listed, not cancelled by a
    /// forced finalize of this view except through step 1).
    pub(crate) notify_only: bool,
}

/// The list; a leaf lock.
#[derive(Default)]
pub(crate) struct ActiveRequests {
    entries: Mutex<BTreeMap<u64, ActiveRequest>>,
    /// Woken whenever a request deregisters.
    removed: tokio::sync::Notify,
}

static NEXT: AtomicU64 = AtomicU64::new(1);

impl ActiveRequests {
    pub(crate) fn len(&self) -> usize {
        self.entries
            .lock()
            .values()
            .filter(|r| !r.notify_only)
            .count()
    }

    pub(crate) fn insert(&self, r: ActiveRequest) -> u64 {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        self.entries.lock().insert(id, r);
        id
    }

    pub(crate) fn remove(&self, id: u64) {
        self.entries.lock().remove(&id);
        self.removed.notify_waiters();
    }

    /// Waits until every cancelled request of this view has ended, or until `deadline`.
    /// A forced finalize does this before it closes the handles, so that the server answers a
    /// cancelled request (STATUS_CANCELLED) instead of cleaning it up with the handle.
    pub(crate) async fn cancelled_settled(&self, deadline: tokio::time::Instant) {
        loop {
            let removed = self.removed.notified();
            tokio::pin!(removed);
            removed.as_mut().enable();
            let busy = self
                .entries
                .lock()
                .values()
                .any(|r| r.ctx.is_cancelled() && r.kind != RequestKind::Close);
            if !busy || tokio::time::timeout_at(deadline, removed).await.is_err() {
                return;
            }
        }
    }

    /// The requests of this view, for the inventory.
    pub(crate) fn list(&self, now: Instant) -> Vec<RequestInfo> {
        self.entries
            .lock()
            .values()
            .filter(|r| !r.notify_only)
            .map(|r| info(r, now))
            .collect()
    }

    /// Step 1 of §3.2: the change notifications keyed on this view.
    pub(crate) fn notifications(&self) -> Vec<ActiveRequest> {
        self.entries
            .lock()
            .values()
            .filter(|r| r.kind == RequestKind::NotifyChange && !r.ctx.is_cancelled())
            .cloned()
            .collect()
    }

    /// Every request of this view (decision 4), not yet cancelled. Closes are not cancelled:
    /// they always complete and release what they hold.
    pub(crate) fn all_own(&self) -> Vec<ActiveRequest> {
        self.entries
            .lock()
            .values()
            .filter(|r| !r.notify_only && r.kind != RequestKind::Close && !r.ctx.is_cancelled())
            .cloned()
            .collect()
    }

    /// The requests running on one handle (cleanup cancels them, §5.3).
    pub(crate) fn for_fobx(&self, fobx: u64) -> Vec<ActiveRequest> {
        self.entries
            .lock()
            .values()
            .filter(|r| r.fobx == Some(fobx) && r.kind != RequestKind::Close)
            .cloned()
            .collect()
    }
}

pub(crate) fn info(r: &ActiveRequest, now: Instant) -> RequestInfo {
    RequestInfo {
        kind: r.kind,
        path: r.path.clone(),
        age_ms: now.saturating_duration_since(r.started).as_millis() as u64,
    }
}

/// Deregisters a request when the operation ends (or its future is dropped).
pub(crate) struct RequestGuard {
    regs: Vec<(Arc<crate::v_net_root::VNetRoot>, u64)>,
    pub(crate) ctx: RxContext,
}

impl RequestGuard {
    /// Register a child of `parent` on `view` (and, for a notification, also on `fcb_view`).
    pub(crate) fn register(
        view: &Arc<crate::v_net_root::VNetRoot>,
        fcb_view: Option<&Arc<crate::v_net_root::VNetRoot>>,
        kind: RequestKind,
        path: &str,
        fobx: Option<u64>,
        parent: &RxContext,
        now: Instant,
    ) -> RequestGuard {
        let ctx = parent.child();
        let r = ActiveRequest {
            kind,
            path: path.to_string(),
            started: now,
            ctx: ctx.clone(),
            fobx,
            notify_only: false,
        };
        // A change notification is also found through the view that created the directory's
        // FCB (§5.1); every other request (the READ/WRITE hot path) registers once, uncopied.
        let also = fcb_view.filter(|fv| kind == RequestKind::NotifyChange && fv.id != view.id);
        let copy = also.map(|fv| {
            let mut n = r.clone();
            n.notify_only = true;
            (fv.clone(), fv.requests.insert(n))
        });
        let mut regs = vec![(view.clone(), view.requests.insert(r))];
        regs.extend(copy);
        RequestGuard { regs, ctx }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        for (v, id) in &self.regs {
            v.requests.remove(*id);
        }
    }
}
