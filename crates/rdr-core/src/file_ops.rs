//! File operations through views and handles: RDBSS's create (`RxCommonCreate`,
//! `RxCollapseOrCreateSrvOpen`), cleanup/close (`RxCommonCleanup`, `RxCommonClose`, §2.5) and the
//! I/O dispatch (`RxFsdCommonDispatch`: orphaned handles fail with
//! `STATUS_UNEXPECTED_NETWORK_ERROR`, §2.7).
//!
//! Every operation registers a child context on the view's outstanding-request list (§5.1) and
//! hands it to the mini-redirector, so a forced finalize can cancel it (decision 4).

use crate::active_requests::RequestGuard;
use crate::buffering::OpenInFlight;
use crate::error::{RxError, RxResult};
use crate::fcb::{Fcb, HeldLock};
use crate::fobx::Fobx;
use crate::minirdr::*;
use crate::name::{join_path, normalize_path, path_key};
use crate::rdbss::{Inner, Rdbss};
use crate::refcount::Aftermath;
use crate::rx_context::{RequestKind, RxContext};
use crate::srv_open::SrvOpen;
use crate::status::NtStatus;
use crate::v_net_root::VNetRoot;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn not_connected(v: &VNetRoot) -> RxError {
    RxError::NotConnected {
        what: v.remote.clone(),
    }
}

/// Acquire an FCB resource: no-wait → `LOCK_NOT_GRANTED` when busy; a cancelled or expired
/// context → `CANCELLED` (`__RxAcquireFcb`, §5.2).
pub(crate) async fn acquire_resource(
    fcb: &Fcb,
    ctx: &RxContext,
) -> RxResult<tokio::sync::OwnedMutexGuard<()>> {
    // Cancellation is checked only where we would have to wait.
    if let Ok(g) = fcb.resource.clone().try_lock_owned() {
        return Ok(g);
    }
    if ctx.is_no_wait() {
        return Err(RxError::LockNotGranted {
            what: format!("file {:?}", fcb.path),
        });
    }
    let res = fcb.resource.clone();
    ctx.run(&format!("waiting for file {:?}", fcb.path), async move {
        Ok(res.lock_owned().await)
    })
    .await
}

/// Drop the held writes of a SrvOpen that will never be sent; returns their size.
fn take_dirty(so: &SrvOpen) -> u64 {
    so.write_behind
        .lock()
        .take()
        .iter()
        .map(|c| c.data.len() as u64)
        .sum()
}

/// Write all of `data` at `offset` (the server may write less per call). On failure: where the
/// unwritten rest starts, the rest, and the error.
async fn write_all(
    minirdr: &dyn crate::minirdr::MiniRedirector,
    so: &SrvOpen,
    mut offset: u64,
    mut data: Bytes,
    ctx: &RxContext,
) -> Result<(), (u64, Bytes, RxError)> {
    while !data.is_empty() {
        match minirdr.write(&so.context, offset, data.clone(), ctx).await {
            Ok(0) => {
                let e = RxError::status(
                    NtStatus::STATUS_DISK_FULL,
                    format!("{}: the server wrote nothing", so.fcb.path),
                );
                return Err((offset, data, e));
            }
            Ok(n) => {
                let n = (n as usize).min(data.len());
                data = data.slice(n..);
                offset += n as u64;
            }
            Err(e) => return Err((offset, data, e)),
        }
    }
    Ok(())
}

/// Background writes up to this size are sent from the thread that wrote them: for a small file
/// their latency is what close(2) waits for. Larger ones go to a runtime worker at once, so the
/// write is answered while its data is on the way (sending 1 MiB on the writer's thread held
/// dd's next write: 1,000-1,200 -> 720-1,030 MiB/s).
const INLINE_WRITE_MAX: usize = 64 * 1024;

/// A background write dropped before it ended (a panic, the runtime shutting down, no runtime to
/// start on) holds its data again instead of staying "in flight" for ever, which flush and close
/// would wait on.
struct Unfinished {
    so: Arc<SrvOpen>,
    id: u64,
    offset: u64,
    data: Option<Bytes>,
}

impl Unfinished {
    /// The write ended (sent or failed): its own completion accounts for it.
    fn disarm(&mut self) {
        self.data = None;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if let Some(data) = self.data.take() {
            self.so.write_behind.lock().fail(self.id, self.offset, data);
            self.so.write_done.notify_waiters();
        }
    }
}

/// Run an aftermath from a synchronous `Drop`: on the current runtime if there is one.
pub(crate) fn spawn_settle(inner: &Arc<Inner>, am: Aftermath) {
    if am.is_empty() {
        return;
    }
    let inner = inner.clone();
    if let Ok(h) = tokio::runtime::Handle::try_current() {
        h.spawn(async move { inner.settle(am).await });
    }
}

/// The reference a create holds on its FCB while it works (§2.1 "+1 creator"). Released
/// explicitly, or — if the create's future is abandoned — when dropped.
struct FcbRef {
    inner: Arc<Inner>,
    fcb: Arc<Fcb>,
    held: bool,
}

impl FcbRef {
    fn release_locked(&mut self, tbl: &mut crate::fcb_table::FcbTable, am: &mut Aftermath) {
        if std::mem::replace(&mut self.held, false) {
            self.fcb.dereference_locked(tbl, am);
        }
    }

    async fn release(mut self) {
        let mut am = Aftermath::default();
        {
            let fcb = self.fcb.clone();
            let mut tbl = fcb.v_net_root.net_root.fcb_table.lock();
            self.release_locked(&mut tbl, &mut am);
        }
        self.inner.settle(am).await;
    }
}

impl Drop for FcbRef {
    fn drop(&mut self) {
        if self.held {
            let mut am = Aftermath::default();
            {
                let fcb = self.fcb.clone();
                let mut tbl = fcb.v_net_root.net_root.fcb_table.lock();
                self.release_locked(&mut tbl, &mut am);
            }
            spawn_settle(&self.inner, am);
        }
    }
}

/// A transient reference on a view for an operation on the view itself; released when dropped.
struct ViewRef {
    inner: Arc<Inner>,
    v: Arc<VNetRoot>,
    context: MrxContext,
    held: bool,
}

impl ViewRef {
    fn take(inner: &Arc<Inner>, v: &Arc<VNetRoot>) -> RxResult<ViewRef> {
        if v.condition.get() != crate::condition::ConditionState::Good || !v.try_reference() {
            return Err(not_connected(v));
        }
        let mut guard = ViewRef {
            inner: inner.clone(),
            v: v.clone(),
            context: Arc::new(()),
            held: true,
        };
        match v.context() {
            Some(context) => {
                guard.context = context;
                Ok(guard)
            }
            None => Err(not_connected(v)),
        }
    }
}

impl ViewRef {
    async fn release(mut self) {
        self.held = false;
        let mut am = Aftermath::default();
        am.deref_view(&self.v);
        self.inner.settle(am).await;
    }
}

impl Drop for ViewRef {
    fn drop(&mut self) {
        if self.held {
            let mut am = Aftermath::default();
            am.deref_view(&self.v);
            spawn_settle(&self.inner, am);
        }
    }
}

impl Inner {
    /// The handle may do I/O: not closed, not orphaned (decision 4).
    pub(crate) fn check_usable(&self, fobx: &Fobx) -> RxResult<()> {
        if fobx.is_closing() {
            return Err(RxError::HandleClosed {
                path: fobx.srv_open.fcb.path.clone(),
            });
        }
        if fobx.is_orphaned()
            || fobx.srv_open.fcb.is_orphaned()
            || fobx
                .srv_open
                .v_net_root
                .force_pending
                .load(Ordering::SeqCst)
        {
            return Err(RxError::Orphaned {
                path: fobx.srv_open.fcb.path.clone(),
            });
        }
        Ok(())
    }

    /// A request that failed because a forced finalize orphaned its handle meanwhile (its
    /// server open was closed under it, or the finalize cancelled it) reports the orphaning.
    pub(crate) fn after_error(&self, fobx: &Fobx, caller: &RxContext, e: RxError) -> RxError {
        // A cancellation shows either as the core's own `Cancelled` or as the server's
        // STATUS_CANCELLED answer to the SMB2 CANCEL, whichever arrives first.
        let cancelled_by_force = e.nt_status() == crate::status::NtStatus::STATUS_CANCELLED
            && !caller.is_cancelled()
            && fobx
                .srv_open
                .v_net_root
                .force_pending
                .load(Ordering::SeqCst);
        if fobx.is_orphaned() || cancelled_by_force {
            return RxError::Orphaned {
                path: fobx.srv_open.fcb.path.clone(),
            };
        }
        e
    }

    /// Register a request on a handle, then check the handle may do I/O. In this order: a
    /// close or forced finalize either sees the registered request (and cancels it) or the
    /// request sees the handle closing or orphaned.
    fn begin(&self, fobx: &Fobx, kind: RequestKind, ctx: &RxContext) -> RxResult<RequestGuard> {
        let req = self.request(fobx, kind, ctx);
        self.check_usable(fobx)?;
        Ok(req)
    }

    fn request(&self, fobx: &Fobx, kind: RequestKind, ctx: &RxContext) -> RequestGuard {
        let so = &fobx.srv_open;
        self.register(
            &so.v_net_root,
            Some(&so.fcb.v_net_root),
            kind,
            &so.fcb.path,
            Some(fobx.id),
            ctx,
        )
    }

    /// Bring the dirty data of one SrvOpen to the server: wait for the background writes made
    /// before this call (not for later ones: a busy writer cannot starve a flush), then send
    /// again what is held after a failure, in order. On failure the unsent chunks stay held.
    pub(crate) async fn send_dirty(&self, so: &SrvOpen, ctx: &RxContext) -> RxResult<()> {
        let upto = {
            let wb = so.write_behind.lock();
            if wb.chunks.is_empty() {
                return Ok(());
            }
            wb.last_id()
        };
        let _order = ctx
            .run("sending held writes", async {
                Ok(so.flush_lock.lock().await)
            })
            .await?;
        ctx.run("waiting for background writes", async {
            loop {
                let done = so.write_done.notified();
                tokio::pin!(done);
                done.as_mut().enable();
                if so.write_behind.lock().in_flight_upto(upto) == 0 {
                    return Ok(());
                }
                done.await;
            }
        })
        .await?;
        // Resent writes stay counted (dirty, in flight) until each is settled, so readers,
        // closes, breaks and overlapping writers keep waiting for them.
        let chunks = so.write_behind.lock().resend_held();
        let mut result = Ok(());
        for (i, c) in chunks.iter().enumerate() {
            match write_all(&*self.minirdr, so, c.offset, c.data.clone(), ctx).await {
                Ok(()) => so.write_behind.lock().complete(c.id),
                Err((offset, rest, e)) => {
                    let mut wb = so.write_behind.lock();
                    wb.fail(c.id, offset, rest);
                    for later in chunks.iter().skip(i + 1) {
                        wb.hold(later.id);
                    }
                    result = Err(e);
                    break;
                }
            }
        }
        so.write_done.notify_waiters();
        result
    }

    /// Start a background write of `data` (already counted dirty as `id`).
    fn spawn_write(self: &Arc<Self>, so: &Arc<SrvOpen>, id: u64, offset: u64, data: Bytes) {
        let (inner, so) = (self.clone(), so.clone());
        let unfinished = Unfinished {
            so: so.clone(),
            id,
            offset,
            data: Some(data.clone()),
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            // Not on a runtime: dropped unsent, it is held; the open's next write, flush or
            // close sends it.
            return;
        };
        let small = data.len() <= INLINE_WRITE_MAX;
        let fut = async move {
            let mut unfinished = unfinished;
            let ctx = so.background.clone();
            let r = write_all(&*inner.minirdr, &so, offset, data, &ctx).await;
            unfinished.disarm();
            {
                let mut wb = so.write_behind.lock();
                match r {
                    Ok(()) => wb.complete(id),
                    Err((offset, rest, _)) => wb.fail(id, offset, rest),
                }
            }
            so.write_done.notify_waiters();
        };
        if small {
            // Sent from here, before the write is answered (no wait for a worker to wake).
            crate::task::spawn_polled(&rt, fut);
        } else {
            rt.spawn(fut);
        }
    }

    /// Send the held writes of every open of a file (before a read or size query sees it).
    pub(crate) async fn send_dirty_of_fcb(&self, fcb: &Fcb, ctx: &RxContext) -> RxResult<()> {
        let opens: Vec<_> = fcb
            .state
            .lock()
            .srv_opens
            .iter()
            .filter(|s| s.dirty_bytes() > 0 && !s.is_orphaned())
            .cloned()
            .collect();
        for so in opens {
            self.send_dirty(&so, ctx).await?;
        }
        Ok(())
    }

    /// Whether a SrvOpen whose last handle closed may stay open for reuse (§2.5 `RxCommonClose`).
    fn may_delay_close(&self, so: &SrvOpen) -> bool {
        if self.config.delayed_close.is_zero()
            || self.config.max_delayed_close == 0
            || !so.buffering().handle_caching
            || so.is_dir
            || so.is_orphaned()
            || so.dirty_bytes() > 0
        {
            return false;
        }
        if so.state.lock().collapsing_disabled {
            return false;
        }
        {
            let f = so.fcb.state.lock();
            if !f.collapsing_enabled || f.orphaned {
                return false;
            }
        }
        {
            let v = so.v_net_root.state.lock();
            // A detached view (extra reference dropped) is finalized when its last handle
            // closes; a delayed close would keep it alive.
            if !v.additional_reference_taken || v.upper_finalization_done {
                return false;
            }
        }
        let max = self.config.max_delayed_close;
        so.v_net_root
            .net_root
            .srv_call
            .number_of_close_delayed_files
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }
}

impl Rdbss {
    /// Open or create `path` (relative to the view) through the view; returns the local handle.
    /// A compatible close-delayed (or shareable) SrvOpen of the same view is reused instead of
    /// opening on the server again (collapsing, §2.5).
    pub async fn create(
        &self,
        v: &Arc<VNetRoot>,
        path: &RxPath,
        params: &CreateParams,
        ctx: &RxContext,
    ) -> RxResult<Arc<Fobx>> {
        self.create_inner(v, path, params, ctx).await.map_err(|e| {
            // An open cancelled by a forced finalize of its view reports the lost connection.
            if matches!(e, RxError::Cancelled { .. })
                && !ctx.is_cancelled()
                && (v.force_pending.load(Ordering::SeqCst) || v.is_finalized())
            {
                not_connected(v)
            } else {
                e
            }
        })
    }

    async fn create_inner(
        &self,
        v: &Arc<VNetRoot>,
        path: &RxPath,
        params: &CreateParams,
        ctx: &RxContext,
    ) -> RxResult<Arc<Fobx>> {
        let inner = &self.inner;
        let rel = normalize_path(path)?;
        let share_path = join_path(&v.prefix, &rel);
        let key = path_key(&share_path);
        let req = inner.register(v, None, RequestKind::Create, &share_path, None, ctx);
        let rctx = &req.ctx;
        // The view's gate: no create slips into a finalize walk.
        let _gate = if ctx.is_no_wait() {
            v.gate.try_read().map_err(|_| RxError::LockNotGranted {
                what: format!("connection {}", v.remote),
            })?
        } else {
            rctx.run(&format!("opening {share_path:?}"), async {
                Ok(v.gate.read().await)
            })
            .await?
        };
        if v.is_finalized() || v.condition.get() != crate::condition::ConditionState::Good {
            return Err(not_connected(v));
        }
        let vctx = v.context().ok_or_else(|| not_connected(v))?;
        let mut retried_sharing = false;
        loop {
            // RxFindOrCreateFcb: find the FCB or create it through this view; hold a reference.
            let fcb = {
                let mut tbl = v.net_root.fcb_table.lock();
                match tbl.lookup(&key) {
                    Some(f) if !f.state.lock().freed => {
                        f.state.lock().ref_count += 1;
                        f
                    }
                    _ => {
                        if !v.try_reference() {
                            return Err(not_connected(v));
                        }
                        let f = Arc::new(Fcb::new(v.clone(), share_path.clone(), key.clone()));
                        f.state.lock().ref_count += 1; // ours
                        tbl.insert(f.clone());
                        tbl.number_of_fcbs += 1;
                        tbl.view(v.id).created_fcbs.insert(f.id, f.clone());
                        f
                    }
                }
            };
            let mut fref = FcbRef {
                inner: inner.clone(),
                fcb: fcb.clone(),
                held: true,
            };
            let res = match acquire_resource(&fcb, rctx).await {
                Ok(r) => r,
                Err(e) => {
                    fref.release().await;
                    return Err(e);
                }
            };
            // Under the resource: the FCB may have been orphaned or renamed meanwhile.
            let stale = {
                let st = fcb.state.lock();
                st.orphaned || st.name_removed
            };
            if stale {
                drop(res);
                fref.release().await;
                continue;
            }
            let delete_on_close = params.options.contains(CreateOptions::DELETE_ON_CLOSE);
            if delete_on_close {
                // Our delayed closes of the file must not keep it past its deletion
                // (RxPurgeRelatedFobxs).
                let mut am = Aftermath::default();
                inner.close_delayed_locked(&v.net_root, &mut am, |so| so.fcb.id == fcb.id);
                inner.settle(am).await;
            }
            // RxSearchForCollapsibleOpen.
            let reuse = if matches!(
                params.disposition,
                CreateDisposition::Open | CreateDisposition::OpenIf
            ) {
                let _tbl = v.net_root.fcb_table.lock();
                let st = fcb.state.lock();
                if st.collapsing_enabled {
                    let hit = st
                        .srv_opens
                        .iter()
                        .find(|so| {
                            so.collapsible_for(v, params.access, params.share, params.options)
                                && !inner.minirdr.srv_open_lost(&so.context)
                        })
                        .cloned();
                    drop(st);
                    if let Some(so) = &hit {
                        so.undelay_locked();
                    }
                    hit
                } else {
                    None
                }
            } else {
                None
            };
            // Writes of other opens in flight now may land after the server describes the
            // file: then its description is not to be trusted later (`Fobx::open_info`).
            let dirty_before = fcb
                .state
                .lock()
                .srv_opens
                .iter()
                .any(|s| s.dirty_bytes() > 0);
            let (so, info, fresh) = match reuse {
                Some(so) => match inner.minirdr.query_info(&so.context, rctx).await {
                    Ok(i) => (so, i, true),
                    Err(_) => {
                        let i = so.info.clone();
                        (so, i, false)
                    }
                },
                None => {
                    let in_flight = OpenInFlight::begin(inner);
                    let created = inner.minirdr.create(&vctx, &share_path, params, rctx).await;
                    match created {
                        Ok(r) => {
                            // Into the FCB table under the breaks' lock (`OpenInFlight`).
                            let entered = in_flight.enter(&r.srv_open, r.buffering, |buffering| {
                                let mut tbl = v.net_root.fcb_table.lock();
                                if !v.try_reference() {
                                    return None;
                                }
                                let so = Arc::new(SrvOpen::new(
                                    fcb.clone(),
                                    v.clone(),
                                    params.access,
                                    params.share,
                                    params.options,
                                    r.info.is_dir,
                                    buffering,
                                    r.info.clone(),
                                    r.srv_open.clone(),
                                ));
                                {
                                    let mut st = fcb.state.lock();
                                    st.ref_count += 1;
                                    st.is_dir = Some(r.info.is_dir);
                                    if delete_on_close {
                                        // The name is going: no open collapses onto the file's.
                                        st.collapsing_enabled = false;
                                        for s in &st.srv_opens {
                                            s.state.lock().collapsing_disabled = true;
                                        }
                                    }
                                    st.srv_opens.push(so.clone());
                                }
                                tbl.number_of_srv_opens += 1;
                                tbl.view(v.id).srv_opens.insert(so.id, so.clone());
                                Some(so)
                            });
                            let Some(so) = entered else {
                                let _ = inner.minirdr.close_srv_open(&r.srv_open).await;
                                drop(res);
                                fref.release().await;
                                return Err(not_connected(v));
                            };
                            (so, r.info, true)
                        }
                        Err(e)
                            if e.nt_status() == NtStatus::STATUS_SHARING_VIOLATION
                                && !retried_sharing =>
                        {
                            // A delayed close of ours may hold the file: close them and retry
                            // once (RDBSS purges related FOBXs on a sharing violation).
                            retried_sharing = true;
                            drop(res);
                            fref.release().await;
                            let mut am = Aftermath::default();
                            inner.close_delayed_locked(&v.net_root, &mut am, |_| true);
                            inner.settle(am).await;
                            continue;
                        }
                        Err(e) => {
                            drop(res);
                            fref.release().await;
                            return Err(e);
                        }
                    }
                }
            };
            let fobx = Arc::new(Fobx::new(so, rel.clone(), info, fresh && !dirty_before));
            let mut am = Aftermath::default();
            {
                let mut tbl = v.net_root.fcb_table.lock();
                fobx.attach_locked(&mut tbl);
                fref.release_locked(&mut tbl, &mut am);
            }
            drop(res);
            inner.settle(am).await;
            return Ok(fobx);
        }
    }

    /// Read through a handle (held writes of the file are sent first).
    pub async fn read(
        &self,
        fobx: &Arc<Fobx>,
        offset: u64,
        len: u32,
        ctx: &RxContext,
    ) -> RxResult<Bytes> {
        let inner = &self.inner;
        let req = inner.begin(fobx, RequestKind::Read, ctx)?;
        let r = async {
            inner
                .send_dirty_of_fcb(&fobx.srv_open.fcb, &req.ctx)
                .await?;
            inner
                .minirdr
                .read(&fobx.srv_open.context, offset, len, &req.ctx)
                .await
        }
        .await;
        r.map_err(|e| inner.after_error(fobx, ctx, e))
    }

    /// Write through a handle. With write caching granted and `write_behind_limit > 0` the write
    /// is answered at once and sent in the background (decision 8, `write_behind.rs`); its
    /// failure is reported by the next write, flush or close of the open.
    pub async fn write(
        &self,
        fobx: &Arc<Fobx>,
        offset: u64,
        data: Bytes,
        ctx: &RxContext,
    ) -> RxResult<u32> {
        let inner = &self.inner;
        let so = &fobx.srv_open;
        let len = u32::try_from(data.len()).map_err(|_| {
            RxError::status(
                NtStatus::STATUS_INVALID_PARAMETER,
                "write larger than 4 GiB",
            )
        })?;
        let req = inner.begin(fobx, RequestKind::Write, ctx)?;
        let limit = inner.config.write_behind_limit as u64;
        let r = async {
            enum Next {
                Sent(u64),
                Through,
                SendHeld,
                Wait,
            }
            loop {
                let done = so.write_done.notified();
                tokio::pin!(done);
                done.as_mut().enable();
                let next = {
                    let mut wb = so.write_behind.lock();
                    // Checked under the lock: orphaning sets the flag, then takes what is held.
                    if so.is_orphaned() {
                        return Err(RxError::Orphaned {
                            path: so.fcb.path.clone(),
                        });
                    }
                    let caching = so.buffering().write_caching && limit > 0;
                    if wb.has_held() {
                        Next::SendHeld
                    } else if wb.overlaps_in_flight(offset, u64::from(len)) {
                        Next::Wait
                    } else if caching && wb.bytes + u64::from(len) <= limit {
                        Next::Sent(wb.push_in_flight(fobx.id, offset, data.clone()))
                    } else if wb.chunks.is_empty() {
                        // Write-through: no caching, or larger than the whole window.
                        Next::Through
                    } else {
                        Next::Wait
                    }
                };
                match next {
                    Next::Sent(id) => {
                        inner.spawn_write(so, id, offset, data);
                        return Ok(len);
                    }
                    Next::Through => break,
                    // Surfaces the error of a failed background write (or clears it).
                    Next::SendHeld => inner.send_dirty(so, &req.ctx).await?,
                    // Room comes back as background writes end.
                    Next::Wait => {
                        req.ctx
                            .run("waiting for write-behind room", async {
                                done.await;
                                Ok(())
                            })
                            .await?
                    }
                }
            }
            inner
                .minirdr
                .write(&so.context, offset, data, &req.ctx)
                .await
        }
        .await;
        r.map_err(|e| inner.after_error(fobx, ctx, e))
    }

    /// Bring this open's dirty data to the server, without asking the server to make it durable:
    /// what close(2) needs (cifs reports write-behind errors at close; fsync is `flush`).
    pub async fn write_back(&self, fobx: &Arc<Fobx>, ctx: &RxContext) -> RxResult<()> {
        let inner = &self.inner;
        let req = inner.begin(fobx, RequestKind::Flush, ctx)?;
        let r = inner.send_dirty(&fobx.srv_open, &req.ctx).await;
        r.map_err(|e| inner.after_error(fobx, ctx, e))
    }

    /// Send held writes and flush on the server.
    pub async fn flush(&self, fobx: &Arc<Fobx>, ctx: &RxContext) -> RxResult<()> {
        let inner = &self.inner;
        let req = inner.begin(fobx, RequestKind::Flush, ctx)?;
        let r = async {
            inner.send_dirty(&fobx.srv_open, &req.ctx).await?;
            inner.minirdr.flush(&fobx.srv_open.context, &req.ctx).await
        }
        .await;
        r.map_err(|e| inner.after_error(fobx, ctx, e))
    }

    /// Copy `len` bytes of `src` from `src_offset` to `dst` at `dst_offset` where the data
    /// lives (copy_file_range; SMB: server-side copy). The held writes of both files go to
    /// the server first, so the copy reads what was written and no older write lands on the
    /// copied range later. Returns the bytes copied. `STATUS_NOT_SUPPORTED` when the handles
    /// are of different views or the mini-redirector cannot: the caller copies itself.
    pub async fn copy_range(
        &self,
        src: &Arc<Fobx>,
        src_offset: u64,
        dst: &Arc<Fobx>,
        dst_offset: u64,
        len: u64,
        ctx: &RxContext,
    ) -> RxResult<u64> {
        let inner = &self.inner;
        let (s, d) = (&src.srv_open, &dst.srv_open);
        if !Arc::ptr_eq(&s.v_net_root, &d.v_net_root) {
            return Err(RxError::status(
                NtStatus::STATUS_NOT_SUPPORTED,
                format!("{:?}: copy from another connection", d.fcb.path),
            ));
        }
        let req = inner.begin(dst, RequestKind::Copy, ctx)?;
        let r = async {
            inner.check_usable(src)?;
            inner.send_dirty_of_fcb(&s.fcb, &req.ctx).await?;
            if !Arc::ptr_eq(&s.fcb, &d.fcb) {
                inner.send_dirty_of_fcb(&d.fcb, &req.ctx).await?;
            }
            inner
                .minirdr
                .copy_range(
                    &s.context, src_offset, &d.context, dst_offset, len, &req.ctx,
                )
                .await
        }
        .await;
        r.map_err(|e| inner.after_error(dst, ctx, e))
    }

    /// Metadata through a handle.
    pub async fn query_info(&self, fobx: &Arc<Fobx>, ctx: &RxContext) -> RxResult<FileInfo> {
        let inner = &self.inner;
        let req = inner.begin(fobx, RequestKind::QueryInfo, ctx)?;
        let r = async {
            inner
                .send_dirty_of_fcb(&fobx.srv_open.fcb, &req.ctx)
                .await?;
            inner
                .minirdr
                .query_info(&fobx.srv_open.context, &req.ctx)
                .await
        }
        .await;
        r.map_err(|e| inner.after_error(fobx, ctx, e))
    }

    /// Metadata by path (relative to the view).
    pub async fn query_path_info(
        &self,
        v: &Arc<VNetRoot>,
        path: &RxPath,
        ctx: &RxContext,
    ) -> RxResult<FileInfo> {
        let inner = &self.inner;
        let share_path = join_path(&v.prefix, &normalize_path(path)?);
        let req = inner.register(v, None, RequestKind::QueryInfo, &share_path, None, ctx);
        let vref = ViewRef::take(inner, v)?;
        let fcb = v.net_root.fcb_table.lock().lookup(&path_key(&share_path));
        let r = async {
            if let Some(fcb) = fcb {
                inner.send_dirty_of_fcb(&fcb, &req.ctx).await?;
            }
            inner
                .minirdr
                .query_path_info(&vref.context, &share_path, &req.ctx)
                .await
        }
        .await;
        vref.release().await;
        r
    }

    /// Delete the file (not a directory) at `path` (unlink). When the core holds nothing of the
    /// file, the mini-redirector does it in one go (SMB: one compound round trip); otherwise
    /// through a delete-on-close open of the core, which first closes the file's delayed
    /// closes and stops collapsing onto it.
    pub async fn delete_file(
        &self,
        v: &Arc<VNetRoot>,
        path: &RxPath,
        ctx: &RxContext,
    ) -> RxResult<()> {
        let inner = &self.inner;
        let share_path = join_path(&v.prefix, &normalize_path(path)?);
        let known = v
            .net_root
            .fcb_table
            .lock()
            .lookup(&path_key(&share_path))
            .is_some();
        if known {
            let mut p = CreateParams::open_existing(
                AccessMask::DELETE | AccessMask::FILE_READ_ATTRIBUTES | AccessMask::SYNCHRONIZE,
            );
            p.options = CreateOptions::NON_DIRECTORY_FILE | CreateOptions::DELETE_ON_CLOSE;
            let fobx = self.create(v, path, &p, ctx).await?;
            return self.close(&fobx).await;
        }
        let req = inner.register(v, None, RequestKind::SetInfo, &share_path, None, ctx);
        let vref = ViewRef::take(inner, v)?;
        let r = inner
            .minirdr
            .delete_file(&vref.context, &share_path, &req.ctx)
            .await;
        vref.release().await;
        r
    }

    /// Change metadata through a handle (takes the FCB resource: a structural change).
    pub async fn set_info(
        &self,
        fobx: &Arc<Fobx>,
        info: &SetInfo,
        ctx: &RxContext,
    ) -> RxResult<()> {
        let inner = &self.inner;
        let so = &fobx.srv_open;
        let fcb = &so.fcb;
        let req = inner.begin(fobx, RequestKind::SetInfo, ctx)?;
        let r = async {
            let _res = acquire_resource(fcb, &req.ctx).await?;
            inner.check_usable(fobx)?;
            let nr = &so.v_net_root.net_root;
            match info {
                SetInfo::EndOfFile(_) => inner.send_dirty_of_fcb(fcb, &req.ctx).await?,
                SetInfo::Rename { .. } | SetInfo::Disposition(true) => {
                    // Our delayed closes must not keep the old name open (RxPurgeRelatedFobxs).
                    inner.send_dirty_of_fcb(fcb, &req.ctx).await?;
                    let mut am = Aftermath::default();
                    inner.close_delayed_locked(nr, &mut am, |_| true);
                    inner.settle(am).await;
                }
                _ => {}
            }
            inner.minirdr.set_info(&so.context, info, &req.ctx).await?;
            match info {
                SetInfo::Rename { .. } => {
                    // The FCB's name is stale: new opens of either name build fresh FCBs.
                    let mut tbl = nr.fcb_table.lock();
                    let mut st = fcb.state.lock();
                    st.collapsing_enabled = false;
                    st.name_removed = true;
                    for s in &st.srv_opens {
                        s.state.lock().collapsing_disabled = true;
                    }
                    drop(st);
                    tbl.remove(fcb);
                }
                SetInfo::Disposition(true) => {
                    let _tbl = nr.fcb_table.lock();
                    let mut st = fcb.state.lock();
                    st.collapsing_enabled = false;
                    for s in &st.srv_opens {
                        s.state.lock().collapsing_disabled = true;
                    }
                }
                _ => {}
            }
            Ok(())
        }
        .await;
        r.map_err(|e| inner.after_error(fobx, ctx, e))
    }

    /// Next batch of directory entries.
    pub async fn query_directory(
        &self,
        fobx: &Arc<Fobx>,
        pattern: Option<&str>,
        restart: bool,
        ctx: &RxContext,
    ) -> RxResult<Vec<DirEntry>> {
        let inner = &self.inner;
        let req = inner.begin(fobx, RequestKind::QueryDirectory, ctx)?;
        inner
            .minirdr
            .query_directory(&fobx.srv_open.context, pattern, restart, &req.ctx)
            .await
            .map_err(|e| inner.after_error(fobx, ctx, e))
    }

    /// Wait for a change under a directory handle. Pending until something changes, the caller
    /// cancels, the handle closes, or a forced finalize cancels it.
    pub async fn notify_change(
        &self,
        fobx: &Arc<Fobx>,
        filter: u32,
        watch_tree: bool,
        ctx: &RxContext,
    ) -> RxResult<Vec<ChangeEvent>> {
        let inner = &self.inner;
        let req = inner.begin(fobx, RequestKind::NotifyChange, ctx)?;
        inner
            .minirdr
            .notify_change(&fobx.srv_open.context, filter, watch_tree, &req.ctx)
            .await
            .map_err(|e| inner.after_error(fobx, ctx, e))
    }

    /// Take a byte-range lock. Conflicts between local handles of the same file are checked
    /// first (two handles conflict even when they share a SrvOpen); then the server decides.
    /// With `wait`, a local conflict waits (cancellably) for the other handle's unlock.
    pub async fn lock(
        &self,
        fobx: &Arc<Fobx>,
        range: LockRange,
        wait: bool,
        ctx: &RxContext,
    ) -> RxResult<()> {
        let inner = &self.inner;
        let fcb = &fobx.srv_open.fcb;
        let req = inner.begin(fobx, RequestKind::Lock, ctx)?;
        let held = HeldLock {
            fobx: fobx.id,
            range,
        };
        loop {
            let released = fcb.lock_released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            {
                let mut st = fcb.state.lock();
                let conflict = st.locks.iter().any(|l| {
                    l.fobx != fobx.id
                        && l.range.overlaps(&range)
                        && (l.range.exclusive || range.exclusive)
                });
                if !conflict {
                    st.locks.push(held);
                    break;
                }
            }
            if !wait {
                return Err(RxError::status(
                    NtStatus::STATUS_LOCK_NOT_GRANTED,
                    format!("{}: range locked through another handle", fcb.path),
                ));
            }
            req.ctx
                .run(&format!("waiting for a lock on {:?}", fcb.path), async {
                    released.await;
                    Ok(())
                })
                .await
                .map_err(|e| inner.after_error(fobx, ctx, e))?;
            inner.check_usable(fobx)?;
        }
        let r = inner
            .minirdr
            .lock(&fobx.srv_open.context, range, wait, &req.ctx)
            .await;
        if let Err(e) = r {
            let mut st = fcb.state.lock();
            if let Some(i) = st.locks.iter().position(|l| *l == held) {
                st.locks.remove(i);
            }
            drop(st);
            fcb.lock_released.notify_waiters();
            return Err(inner.after_error(fobx, ctx, e));
        }
        Ok(())
    }

    /// Release a byte-range lock held through this handle.
    pub async fn unlock(
        &self,
        fobx: &Arc<Fobx>,
        range: LockRange,
        ctx: &RxContext,
    ) -> RxResult<()> {
        let inner = &self.inner;
        let fcb = &fobx.srv_open.fcb;
        let held = HeldLock {
            fobx: fobx.id,
            range,
        };
        let req = inner.begin(fobx, RequestKind::Unlock, ctx)?;
        if !fcb.state.lock().locks.contains(&held) {
            return Err(RxError::status(
                NtStatus::STATUS_RANGE_NOT_LOCKED,
                format!("{}: no such lock through this handle", fcb.path),
            ));
        }
        inner
            .minirdr
            .unlock(&fobx.srv_open.context, range, &req.ctx)
            .await
            .map_err(|e| inner.after_error(fobx, ctx, e))?;
        {
            let mut st = fcb.state.lock();
            if let Some(i) = st.locks.iter().position(|l| *l == held) {
                st.locks.remove(i);
            }
        }
        fcb.lock_released.notify_waiters();
        Ok(())
    }

    /// Space on the view's share.
    pub async fn query_volume(&self, v: &Arc<VNetRoot>, ctx: &RxContext) -> RxResult<VolumeInfo> {
        let inner = &self.inner;
        let req = inner.register(v, None, RequestKind::QueryVolume, &v.prefix, None, ctx);
        let vref = ViewRef::take(inner, v)?;
        let r = inner.minirdr.query_volume(&vref.context, &req.ctx).await;
        vref.release().await;
        r
    }

    /// Close a handle (cleanup + close, §2.5). Works on orphaned handles; a second close fails
    /// with `HandleClosed`. Cancels the handle's pending requests, sends its held writes,
    /// releases its byte-range locks; when its SrvOpen's last handle goes the SrvOpen is closed
    /// on the server or parked for delayed close. Everything is released even when held writes
    /// cannot be sent; the error then says how many bytes were lost.
    pub async fn close(&self, fobx: &Arc<Fobx>) -> RxResult<()> {
        let inner = &self.inner;
        let so = &fobx.srv_open;
        let fcb = &so.fcb;
        if fobx.is_closed() {
            return Err(RxError::HandleClosed {
                path: fcb.path.clone(),
            });
        }
        if fobx.closing.swap(true, Ordering::SeqCst) {
            return Err(RxError::HandleClosed {
                path: fcb.path.clone(),
            });
        }
        let ctx = RxContext::new();
        let req = inner.request(fobx, RequestKind::Close, &ctx);
        // RxCancelNotifyChangeDirectoryRequestsForFobx, and any lock wait of this handle.
        for r in so.v_net_root.requests.for_fobx(fobx.id) {
            r.ctx.cancel();
        }
        let mut send_err = None;
        if !so.is_orphaned() {
            // Sending held writes at close is not cancelled by a forced finalize (which would
            // drain them the same way); it is bounded like the finalize's drain.
            let bounded = RxContext::new().with_timeout(inner.config.drain_timeout);
            if let Err(e) = inner.send_dirty(so, &bounded).await {
                send_err = Some(e);
            }
        }
        let res = fcb.resource.clone().lock_owned().await;
        // Release this handle's byte-range locks on the server.
        let mine: Vec<_> = fcb
            .state
            .lock()
            .locks
            .iter()
            .filter(|l| l.fobx == fobx.id)
            .map(|l| l.range)
            .collect();
        if !so.is_orphaned() {
            for r in mine {
                if let Err(e) = inner.minirdr.unlock(&so.context, r, &req.ctx).await {
                    tracing::debug!(path = %fcb.path, error = %e, "unlock at close failed");
                }
            }
        }
        let mut am = Aftermath::default();
        let mut lost = 0u64;
        {
            let mut tbl = so.v_net_root.net_root.fcb_table.lock();
            if !fobx.close_locked(&mut tbl, &mut am) {
                return Err(RxError::HandleClosed {
                    path: fcb.path.clone(),
                });
            }
            let (open_count, closed) = {
                let st = so.state.lock();
                (st.open_count, st.closed)
            };
            if open_count == 0 && !closed {
                if inner.may_delay_close(so) {
                    so.state.lock().close_delayed_since = Some(inner.clock.now());
                    inner.scavenger.park(so.clone());
                } else {
                    lost += take_dirty(so);
                    so.close_locked(&mut tbl, &mut am, true);
                }
            } else if so.is_orphaned() {
                // Orphaned while we were sending: a forced finalize reported what it found; what
                // came back after it is reported here.
                lost += take_dirty(so);
            }
        }
        drop(res);
        drop(req);
        inner.settle(am).await;
        match send_err {
            _ if lost > 0 => Err(RxError::status(
                send_err
                    .as_ref()
                    .map(|e| e.nt_status())
                    .unwrap_or(NtStatus::STATUS_UNEXPECTED_NETWORK_ERROR),
                format!(
                    "{}: {lost} written bytes could not be sent to the server{}",
                    fcb.path,
                    send_err
                        .as_ref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                ),
            )),
            // The writes stay held for the file's other handles; say they are not sent yet.
            Some(e) if !so.is_orphaned() && so.dirty_bytes() > 0 => Err(e),
            _ => Ok(()),
        }
    }
}
