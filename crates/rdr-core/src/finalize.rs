//! `finalize_connection` — `RxFinalizeConnection` (§3), the heart of rdr.
//!
//! The steps follow §3.2 in order and the result follows the decision table §3.3 row by row,
//! with DESIGN.md decisions 1–9:
//!
//! 1. Change notifications keyed on the view (§5.3). `No` + one pending → `FILES_OPEN` at once,
//!    nothing changed (row 2, decision 5). `Yes` cancels *every* outstanding request of the view
//!    (decision 4). `DetachOnClose` ignores them (row 7).
//! 2. Take the view's gate exclusively (no create slips in) and a NetRoot reference, then the
//!    resources of the FCBs the walk may purge. The table locks of the
//!    lock order are never held across an await, so they are never "busy"; what can be busy is
//!    the gate and the FCB resources: no-wait → `LOCK_NOT_GRANTED`, a cancelled or expired
//!    context while waiting → `CANCELLED`; both abort with nothing finalized and the extra
//!    reference kept (decision 7). Everything is acquired before anything changes, so an abort
//!    is clean (requests a `Yes` already cancelled stay cancelled; no object is finalized).
//! 3. The FCB-table lock is taken for the walk only (never across an await). Before it, with
//!    `Yes`, the cancelled requests are given up to `CANCEL_SETTLE` (or the caller's deadline)
//!    to end, so the server answers them STATUS_CANCELLED rather than cleaning them up with the
//!    handle, and held writes of the view's opens are sent, bounded by the caller's deadline or
//!    `drain_timeout`; what cannot be sent is reported, and the force still succeeds (decision 8).
//! 4. The walk over the FCBs the view *created* (`Fcb.VNetRoot == V`, including the share root,
//!    decision 3), unless `ConnectionFinalizationDone`: without force an FCB with open handles is
//!    counted (directory or not) and left alone; every other FCB is purged — collapsing off,
//!    delayed closes closed, finalized if unreferenced. Close-delayed opens of the view on other
//!    views' FCBs are closed too (INF: a delayed close is never an "open file").
//! 5. Snapshot `NumberOfFobxs` (K) and the extra reference (X); after a walk with K = 0,
//!    `ConnectionFinalizationDone` is set, so later calls skip the walk (row 9), as in ReactOS.
//! 6. (`Yes`) Upper-finalize the view: orphan its SrvOpens (§2.7: closed on the server now, their
//!    handles fail I/O with `UNEXPECTED_NETWORK_ERROR` but can be closed; FCBs left with only
//!    orphaned opens leave the FCB table), unlink it from the NetRoot (the last view takes the
//!    share's name and `MRxFinalizeNetRoot` with it) and remove its name.
//! 7. (Release the FCB-table lock — before step 6 here, since the name table is the outer lock.)
//! 8. Status: `Yes` → SUCCESS; else open non-directory FCB or K > 0 → `FILES_OPEN`; else only
//!    directory FCBs of other views' handles → `CONNECTION_IN_USE` (decision 6); else SUCCESS.
//! 9. Drop X when the status is SUCCESS or the level is `DetachOnClose` (rows 6–8).
//! 10. Drop the NetRoot reference. The SrvCall is never touched (decision 9).
//!
//! Mini-redirector calls (server closes, `MRxFinalizeNetRoot`, `MRxFinalizeVNetRoot`) run after
//! every lock is released.

use crate::error::RxError;
use crate::file_ops::acquire_resource;
use crate::force::ForceLevel;
use crate::inventory::{FinalizeOutcome, Unwritten};
use crate::net_root::NetRoot;
use crate::rdbss::{Inner, Rdbss, handles_of};
use crate::refcount::{Aftermath, Deref, upper_finalize_v_net_root};
use crate::rx_context::RxContext;
use crate::status::NtStatus;
use crate::v_net_root::VNetRoot;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a forced finalize waits for the requests it cancelled to end before it closes
/// their handles (a server that does not answer a CANCEL must not hold the delete up).
const CANCEL_SETTLE: Duration = Duration::from_secs(2);

fn outcome(status: NtStatus) -> FinalizeOutcome {
    FinalizeOutcome {
        status,
        open_handles: Vec::new(),
        cancelled: Vec::new(),
        unwritten: Vec::new(),
        view_removed: false,
        unconfirmed: Vec::new(),
    }
}

impl Rdbss {
    /// `RxFinalizeConnection` (§3). `v == None` means every view of the share (decision 2).
    pub async fn finalize_connection(
        &self,
        net_root: &Arc<NetRoot>,
        v: Option<&Arc<VNetRoot>>,
        force: ForceLevel,
        ctx: &RxContext,
    ) -> FinalizeOutcome {
        match v {
            None => self.finalize_all_connections(net_root, force, ctx).await,
            Some(v) if v.net_root.id != net_root.id => {
                let mut o = outcome(NtStatus::STATUS_INVALID_PARAMETER);
                o.view_removed = v.is_finalized();
                o
            }
            Some(v) => self.inner.finalize_view(v, force, ctx).await,
        }
    }

    /// Finalize every view of a share with the given force (decision 2; with `Yes` this is
    /// `RxForceFinalizeAllVNetRoots`, and it also drops each view's extra reference). The status
    /// is `FILES_OPEN` if any view had open files, else the first other failure, else SUCCESS;
    /// `CANCELLED` / `LOCK_NOT_GRANTED` stop at the view where they happened.
    pub async fn finalize_all_connections(
        &self,
        net_root: &Arc<NetRoot>,
        force: ForceLevel,
        ctx: &RxContext,
    ) -> FinalizeOutcome {
        let mut all = outcome(NtStatus::STATUS_SUCCESS);
        all.view_removed = true;
        for v in net_root.v_net_roots() {
            let o = self.inner.finalize_view(&v, force, ctx).await;
            all.open_handles.extend(o.open_handles);
            all.cancelled.extend(o.cancelled);
            all.unwritten.extend(o.unwritten);
            all.unconfirmed.extend(o.unconfirmed);
            all.view_removed &= o.view_removed;
            let abort = matches!(
                o.status,
                NtStatus::STATUS_CANCELLED | NtStatus::STATUS_LOCK_NOT_GRANTED
            );
            if o.status == NtStatus::STATUS_FILES_OPEN
                || (o.status != NtStatus::STATUS_SUCCESS && all.status == NtStatus::STATUS_SUCCESS)
            {
                all.status = o.status;
            }
            if abort {
                all.status = o.status;
                break;
            }
        }
        all
    }
}

/// What the walk found (§3.3 inputs UF, UD).
#[derive(Default)]
struct Walk {
    unclean_any: usize,
    unclean_dir: usize,
}

impl Inner {
    /// `RxFinalizeConnection` for one view.
    pub(crate) async fn finalize_view(
        self: &Arc<Self>,
        v: &Arc<VNetRoot>,
        force: ForceLevel,
        ctx: &RxContext,
    ) -> FinalizeOutcome {
        let yes = force == ForceLevel::Yes;
        let nr = v.net_root.clone();

        // A view already gone: nothing to walk (row 9).
        if v.is_freed() {
            return self.row9(v, yes, Vec::new());
        }

        // Step 1: change notifications keyed on this view (§5.3); `No` fails at once (row 2).
        let notifications = v.requests.notifications();
        if force == ForceLevel::No && !notifications.is_empty() {
            let mut o = outcome(NtStatus::STATUS_FILES_OPEN);
            o.open_handles = handles_of(v);
            o.view_removed = v.is_finalized();
            return o;
        }

        // Steps 2–3 (locks): the view's gate first. `Yes` cancels every outstanding request of
        // the view (decision 4) before it waits, so a request stuck on a dead server cannot hold
        // the gate or an FCB. A no-wait caller never waits, so it cancels only once every lock
        // is held: its abort (decision 7) has no side effect at all.
        let waits = !ctx.is_no_wait();
        let mut gate = None;
        if ctx.is_no_wait() {
            match v.gate.try_write() {
                Ok(g) => gate = Some(g),
                Err(_) => return self.aborted(v, NtStatus::STATUS_LOCK_NOT_GRANTED, Vec::new()),
            }
        }
        let mut cancelled = Vec::new();
        if yes && waits {
            v.force_pending.store(true, Ordering::SeqCst);
            self.cancel_all(v, &mut cancelled);
        }
        let gate = match gate {
            Some(g) => g,
            None => match v.gate.try_write() {
                Ok(g) => g,
                Err(_) => {
                    let waited = ctx
                        .run(&format!("connection {}", v.remote), async {
                            Ok(v.gate.write().await)
                        })
                        .await;
                    match waited {
                        Ok(g) => g,
                        Err(_) => {
                            return self.aborted(v, NtStatus::STATUS_CANCELLED, cancelled);
                        }
                    }
                }
            },
        };
        if yes && waits {
            // Requests that started while we waited for the gate.
            self.cancel_all(v, &mut cancelled);
        }
        if !nr.reference() {
            // The share is gone, so is the view (row 9).
            drop(gate);
            v.force_pending.store(false, Ordering::SeqCst);
            return self.row9(v, yes, cancelled);
        }

        // Steps 2–3 (locks), continued: the resources of every FCB the walk may purge, all
        // acquired before anything changes, so that an abort (decision 7) is clean. Without
        // force, FCBs with open handles are only counted, so (as in RDBSS) they are not acquired.
        let done_before = v.state.lock().connection_finalization_done;
        let fcbs: Vec<_> = if done_before {
            Vec::new()
        } else {
            let tbl = nr.fcb_table.lock();
            let mut list: Vec<_> = tbl
                .views
                .get(&v.id)
                .map(|f| f.created_fcbs.values().cloned().collect())
                .unwrap_or_default();
            list.sort_by_key(|f: &Arc<crate::fcb::Fcb>| f.id);
            list
        };
        let purgeable = |f: &crate::fcb::Fcb| yes || f.state.lock().unclean_count == 0;
        let mut acquired = vec![false; fcbs.len()];
        let mut guards = Vec::with_capacity(fcbs.len());
        for (i, f) in fcbs.iter().enumerate() {
            if !purgeable(f) {
                continue;
            }
            acquired[i] = true;
            match acquire_resource(f, ctx).await {
                Ok(g) => guards.push(g),
                Err(e) => {
                    drop(guards);
                    drop(gate);
                    let mut am = Aftermath::default();
                    am.derefs.push_back(Deref::NetRoot(nr.clone()));
                    self.settle(am).await;
                    return self.aborted(v, e.nt_status(), cancelled);
                }
            }
        }
        if yes {
            // No-wait: the first time; otherwise requests that started meanwhile.
            v.force_pending.store(true, Ordering::SeqCst);
            self.cancel_all(v, &mut cancelled);
        }
        if yes && !cancelled.is_empty() {
            // Let the cancelled requests end (bounded) before their handles close.
            let cap = tokio::time::Instant::now() + CANCEL_SETTLE;
            let deadline = ctx
                .deadline()
                .map_or(cap, |d| cap.min(tokio::time::Instant::from_std(d)));
            v.requests.cancelled_settled(deadline).await;
        }
        let open_handles = handles_of(v);

        // Before a forced close, held writes go to the server (decision 8).
        let mut unwritten = Vec::new();
        if yes {
            unwritten = self.drain(v, ctx).await;
        }

        // Step 4: the walk — and the orphaning half of step 6 — under the FCB-table lock.
        let mut am = Aftermath::default();
        let mut walk = Walk::default();
        {
            let mut tbl = nr.fcb_table.lock();
            for (f, acquired) in fcbs.iter().zip(acquired) {
                let (skip, unclean, is_dir) = {
                    let st = f.state.lock();
                    (
                        st.freed || st.orphaned,
                        st.unclean_count > 0,
                        st.is_dir == Some(true),
                    )
                };
                if skip {
                    continue;
                }
                if unclean && !yes {
                    if is_dir {
                        walk.unclean_dir += 1;
                    } else {
                        walk.unclean_any += 1;
                    }
                    continue;
                }
                if !acquired {
                    // Its handles closed while we took the locks: it finalizes on its own.
                    continue;
                }
                // RxPurgeFcb: no more collapsing, parked opens closed, finalize if unreferenced.
                let delayed: Vec<_> = {
                    let mut st = f.state.lock();
                    st.collapsing_enabled = false;
                    st.srv_opens
                        .iter()
                        .filter(|s| s.is_close_delayed())
                        .cloned()
                        .collect()
                };
                for s in delayed {
                    s.close_locked(&mut tbl, &mut am, true);
                }
                f.try_finalize_locked(&mut tbl, &mut am);
            }
            // Delayed closes of this view on FCBs created by other views.
            let mine: Vec<_> = tbl
                .views
                .get(&v.id)
                .map(|f| {
                    f.srv_opens
                        .values()
                        .filter(|s| s.is_close_delayed())
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            for s in mine {
                s.close_locked(&mut tbl, &mut am, true);
            }
            if yes {
                // §2.7 RxOrphanSrvOpens: every SrvOpen opened through the view, on any FCB.
                let opens: Vec<_> = tbl
                    .views
                    .get(&v.id)
                    .map(|f| f.srv_opens.values().cloned().collect())
                    .unwrap_or_default();
                for s in &opens {
                    s.orphan_locked(&mut tbl, &mut am);
                }
                for s in &opens {
                    let f = &s.fcb;
                    let all_orphaned = {
                        let st = f.state.lock();
                        !st.freed && st.srv_opens.iter().all(|x| x.is_orphaned())
                    };
                    if all_orphaned {
                        f.orphan_locked(&mut tbl, &mut am);
                    }
                }
            }
        }
        drop(guards);
        unwritten.append(&mut am.unwritten);

        // Step 5: K = NumberOfFobxs, X = the extra reference; ConnectionFinalizationDone.
        let (k, x) = {
            let mut st = v.state.lock();
            if !done_before && st.number_of_fobxs == 0 {
                st.connection_finalization_done = true;
            }
            (st.number_of_fobxs, st.additional_reference_taken)
        };

        // Step 6 (`Yes`): upper finalization of the view under the name-table lock (taken after
        // the FCB-table lock was released: the lock order is name table → FCB table). Step 7,
        // releasing the FCB table, happened above.
        if yes {
            let mut names = self.names.lock();
            upper_finalize_v_net_root(&mut names, v, &mut am);
        }

        // Step 8: the status (decision 6 precedence).
        let status = if yes {
            NtStatus::STATUS_SUCCESS
        } else if walk.unclean_any > 0 || k > 0 {
            NtStatus::STATUS_FILES_OPEN
        } else if walk.unclean_dir > 0 {
            NtStatus::STATUS_CONNECTION_IN_USE
        } else {
            NtStatus::STATUS_SUCCESS
        };

        // Step 9: the add-connection extra reference (rows 6–8).
        if (force == ForceLevel::DetachOnClose || status == NtStatus::STATUS_SUCCESS) && x {
            let mut st = v.state.lock();
            if std::mem::replace(&mut st.additional_reference_taken, false) {
                drop(st);
                am.deref_view(v);
            }
        }
        // Step 10: the NetRoot reference of step 2. The SrvCall is not touched (decision 9).
        am.derefs.push_back(Deref::NetRoot(nr.clone()));
        drop(gate);
        v.force_pending.store(false, Ordering::SeqCst);

        let unconfirmed = self.settle_bounded(am, ctx).await;
        FinalizeOutcome {
            status,
            open_handles,
            cancelled,
            unwritten,
            view_removed: v.is_finalized(),
            unconfirmed,
        }
    }

    /// Cancel every outstanding request of the view and every notification keyed on it.
    fn cancel_all(&self, v: &VNetRoot, out: &mut Vec<crate::inventory::RequestInfo>) {
        let now = self.clock.now();
        let mut reqs = v.requests.all_own();
        reqs.extend(v.requests.notifications());
        for r in reqs {
            // One request may be listed twice (its own view and its FCB's view): the first
            // occurrence cancels it, the second is skipped.
            if r.ctx.is_cancelled() {
                continue;
            }
            r.ctx.cancel();
            out.push(crate::active_requests::info(&r, now));
        }
    }

    /// Row 9 for a view whose memory phase already ran: no walk; `Yes` → SUCCESS, otherwise
    /// `FILES_OPEN` iff handles (orphaned ones) are still open through it.
    fn row9(
        &self,
        v: &Arc<VNetRoot>,
        yes: bool,
        cancelled: Vec<crate::inventory::RequestInfo>,
    ) -> FinalizeOutcome {
        let k = v.number_of_fobxs();
        let mut o = outcome(if !yes && k > 0 {
            NtStatus::STATUS_FILES_OPEN
        } else {
            NtStatus::STATUS_SUCCESS
        });
        o.open_handles = handles_of(v);
        o.cancelled = cancelled;
        o.view_removed = v.is_finalized();
        o
    }

    /// The abort of decision 7: nothing finalized, extra reference kept.
    fn aborted(
        &self,
        v: &Arc<VNetRoot>,
        status: NtStatus,
        cancelled: Vec<crate::inventory::RequestInfo>,
    ) -> FinalizeOutcome {
        v.force_pending.store(false, Ordering::SeqCst);
        FinalizeOutcome {
            status,
            open_handles: handles_of(v),
            cancelled,
            unwritten: Vec::new(),
            view_removed: v.is_finalized(),
            unconfirmed: Vec::new(),
        }
    }

    /// Decision 8: send the view's held writes before the forced close, bounded by the caller's
    /// deadline or `drain_timeout`; return what could not be sent.
    async fn drain(&self, v: &Arc<VNetRoot>, ctx: &RxContext) -> Vec<Unwritten> {
        let opens: Vec<_> = {
            let tbl = v.net_root.fcb_table.lock();
            tbl.views
                .get(&v.id)
                .map(|f| {
                    f.srv_opens
                        .values()
                        .filter(|s| s.dirty_bytes() > 0)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut lost = Vec::new();
        if opens.is_empty() {
            return lost;
        }
        let bound = Instant::now() + self.config.drain_timeout;
        let dctx = ctx.child().with_deadline(bound);
        for so in opens {
            if let Err(e) = self.send_dirty(&so, &dctx).await {
                let left = so.write_behind.lock().take();
                let bytes: u64 = left.iter().map(|c| c.data.len() as u64).sum();
                if bytes > 0 {
                    lost.push(Unwritten {
                        path: so.fcb.path.clone(),
                        bytes,
                        error: describe(&e),
                    });
                }
            }
        }
        lost
    }

    /// Run the aftermath; when the caller has a deadline (or at most `drain_timeout`), stop
    /// waiting for the server then and let the rest finish in the background: a dead server
    /// must not keep a forced delete from returning.
    /// Returns the server steps that had not finished when it stopped waiting (they go on in
    /// the background).
    async fn settle_bounded(self: &Arc<Self>, mut am: Aftermath, ctx: &RxContext) -> Vec<String> {
        // The reference changes are local and happen now; only the server calls may be slow.
        {
            let now = self.clock.now();
            let mut names = self.names.lock();
            crate::refcount::apply_derefs(&mut names, &mut am, now);
        }
        // Filled before the task starts: a deadline already spent still reports what is left.
        let track = Arc::new(parking_lot::Mutex::new(
            am.teardown
                .iter()
                .map(crate::refcount::Teardown::describe)
                .collect::<Vec<_>>(),
        ));
        let inner = self.clone();
        let t = track.clone();
        let task = tokio::spawn(async move { inner.settle_tracked(am, Some(&t)).await });
        let bound = ctx
            .deadline()
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or(self.config.drain_timeout)
            .min(self.config.drain_timeout);
        if tokio::time::timeout(bound, task).await.is_err() {
            let left = track.lock().clone();
            tracing::warn!(
                ?left,
                "the server did not answer the teardown of a finalize in time"
            );
            return left;
        }
        Vec::new()
    }
}

fn describe(e: &RxError) -> String {
    e.to_string()
}
