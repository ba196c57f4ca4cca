//! `Probe`: a delegating mini-redirector that wraps any other (in-memory or real files) and adds
//! what scenarios need to steer and observe it: gates a call waits at, failure switches, call
//! counters, the buffering granted to opens, and a check that no server open is closed twice.
//! Everything not switched on is passed straight through, so file I/O stays real.

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rdr_core::minirdr::*;
use rdr_core::{NtStatus, RxContext, RxError, RxResult};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// A gate a mini-redirector call waits at while it is closed (cancellable through its context).
#[derive(Default)]
pub struct Gate {
    closed: AtomicBool,
    notify: tokio::sync::Notify,
    /// Calls that reached the gate.
    pub entered: AtomicUsize,
}

impl Gate {
    /// Hold later calls at the gate.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }
    /// Let every held and later call through.
    pub fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    async fn pass(&self, ctx: &RxContext) -> RxResult<()> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        loop {
            let n = self.notify.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            if !self.closed.load(Ordering::SeqCst) {
                return Ok(());
            }
            ctx.run("gate", async {
                n.await;
                Ok(())
            })
            .await?;
        }
    }
    /// Wait (bounded) until `n` calls reached the gate.
    pub async fn wait_entered(&self, n: usize) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while self.entered.load(Ordering::SeqCst) < n {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await
        .expect("nothing reached the gate");
    }
}

/// Calls that reached the mini-redirector.
#[derive(Default)]
pub struct Counters {
    /// `create_srv_call` calls.
    pub srv_call_creates: AtomicUsize,
    /// `finalize_srv_call` calls.
    pub srv_call_finalizes: AtomicUsize,
    /// `create_v_net_root` calls.
    pub v_net_root_creates: AtomicUsize,
    /// `finalize_net_root` calls.
    pub net_root_finalizes: AtomicUsize,
    /// `finalize_v_net_root` calls.
    pub v_net_root_finalizes: AtomicUsize,
    /// Successful creates (server opens made).
    pub opens: AtomicUsize,
    /// `close_srv_open` calls.
    pub closes: AtomicUsize,
    /// Writes passed to the inner mini-redirector.
    pub writes: AtomicUsize,
}

/// The delegating mini-redirector.
pub struct Probe {
    inner: Arc<dyn MiniRedirector>,
    /// Server opens made through the probe: context address → lower-case path.
    opens: Mutex<HashMap<usize, String>>,
    /// Call counters.
    pub counters: Counters,
    /// Held `create_srv_call`.
    pub srv_call_gate: Gate,
    /// Held `create_v_net_root`.
    pub v_net_root_gate: Gate,
    /// Held `create`.
    pub create_gate: Gate,
    /// Held after the server made an open, before `create` returns (a break can come now).
    pub created_gate: Gate,
    /// Held `set_info`.
    pub set_info_gate: Gate,
    /// Held `write` (a write on its way to the server).
    pub write_gate: Gate,
    /// Fail create_srv_call with this status.
    pub fail_srv_call: Mutex<Option<NtStatus>>,
    /// Fail create_v_net_root with this status.
    pub fail_v_net_root: Mutex<Option<NtStatus>>,
    /// Writes fail with CONNECTION_DISCONNECTED.
    pub fail_writes: AtomicBool,
    /// Writes hang until cancelled (a dead server).
    pub hang_writes: AtomicBool,
    /// Reads hang until cancelled.
    pub hang_reads: AtomicBool,
    /// A create fails with SHARING_VIOLATION while the file has another server open.
    pub exclusive_opens: AtomicBool,
    /// Buffering granted to opens of files (directories get none), whatever the inner grants.
    pub grant: Mutex<BufferingState>,
    /// Overrides the inner mini-redirector's SrvCall linger.
    pub linger: Mutex<Option<Duration>>,
}

fn key(c: &MrxContext) -> usize {
    Arc::as_ptr(c) as *const () as usize
}

fn st(status: NtStatus, what: &str) -> RxError {
    RxError::status(status, what.to_string())
}

impl Probe {
    /// Wrap `inner`; every switch off, every gate open.
    pub fn new(inner: Arc<dyn MiniRedirector>) -> Arc<Probe> {
        Arc::new(Probe {
            inner,
            opens: Mutex::default(),
            counters: Counters::default(),
            srv_call_gate: Gate::default(),
            v_net_root_gate: Gate::default(),
            create_gate: Gate::default(),
            created_gate: Gate::default(),
            set_info_gate: Gate::default(),
            write_gate: Gate::default(),
            fail_srv_call: Mutex::default(),
            fail_v_net_root: Mutex::default(),
            fail_writes: AtomicBool::new(false),
            hang_writes: AtomicBool::new(false),
            hang_reads: AtomicBool::new(false),
            exclusive_opens: AtomicBool::new(false),
            grant: Mutex::default(),
            linger: Mutex::default(),
        })
    }
    /// Read a counter.
    pub fn count(&self, c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }
    /// Server opens made through the probe and not yet closed.
    pub fn open_count(&self) -> usize {
        self.opens.lock().len()
    }
}

#[async_trait]
impl MiniRedirector for Probe {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn srv_call_linger(&self) -> Duration {
        self.linger
            .lock()
            .unwrap_or_else(|| self.inner.srv_call_linger())
    }
    /// Breaks name an open by its lower-case path (as one lease key per file would).
    fn srv_open_key(&self, s: &MrxContext) -> Option<Vec<u8>> {
        self.opens
            .lock()
            .get(&key(s))
            .map(|p| p.clone().into_bytes())
    }
    async fn create_srv_call(&self, p: &SrvCallParams, ctx: &RxContext) -> RxResult<MrxContext> {
        self.counters
            .srv_call_creates
            .fetch_add(1, Ordering::SeqCst);
        self.srv_call_gate.pass(ctx).await?;
        if let Some(s) = *self.fail_srv_call.lock() {
            return Err(st(s, "server"));
        }
        self.inner.create_srv_call(p, ctx).await
    }
    async fn finalize_srv_call(&self, s: &MrxContext, force: bool) {
        self.counters
            .srv_call_finalizes
            .fetch_add(1, Ordering::SeqCst);
        self.inner.finalize_srv_call(s, force).await
    }
    async fn create_v_net_root(
        &self,
        s: &MrxContext,
        net_root: Option<&MrxContext>,
        p: &VNetRootParams,
        ctx: &RxContext,
    ) -> RxResult<VNetRootCreated> {
        self.counters
            .v_net_root_creates
            .fetch_add(1, Ordering::SeqCst);
        self.v_net_root_gate.pass(ctx).await?;
        if let Some(s) = *self.fail_v_net_root.lock() {
            return Err(st(s, &p.share));
        }
        self.inner.create_v_net_root(s, net_root, p, ctx).await
    }
    async fn finalize_net_root(&self, n: &MrxContext) {
        self.counters
            .net_root_finalizes
            .fetch_add(1, Ordering::SeqCst);
        self.inner.finalize_net_root(n).await
    }
    async fn finalize_v_net_root(&self, v: &MrxContext) {
        self.counters
            .v_net_root_finalizes
            .fetch_add(1, Ordering::SeqCst);
        self.inner.finalize_v_net_root(v).await
    }
    async fn create(
        &self,
        v: &MrxContext,
        path: &RxPath,
        params: &CreateParams,
        ctx: &RxContext,
    ) -> RxResult<CreateResult> {
        self.create_gate.pass(ctx).await?;
        let mut r = self.inner.create(v, path, params, ctx).await?;
        let lower = path.to_lowercase();
        if self.exclusive_opens.load(Ordering::SeqCst)
            && self.opens.lock().values().any(|p| *p == lower)
        {
            let _ = self.inner.close_srv_open(&r.srv_open).await;
            return Err(st(NtStatus::STATUS_SHARING_VIOLATION, path));
        }
        self.opens.lock().insert(key(&r.srv_open), lower);
        self.counters.opens.fetch_add(1, Ordering::SeqCst);
        r.buffering = if r.info.is_dir {
            BufferingState::default()
        } else {
            *self.grant.lock()
        };
        if let Err(e) = self.created_gate.pass(ctx).await {
            let _ = self.close_srv_open(&r.srv_open).await;
            return Err(e);
        }
        Ok(r)
    }
    async fn close_srv_open(&self, s: &MrxContext) -> RxResult<()> {
        if self.opens.lock().remove(&key(s)).is_none() {
            panic!("a server open was closed twice or never opened");
        }
        self.counters.closes.fetch_add(1, Ordering::SeqCst);
        self.inner.close_srv_open(s).await
    }
    async fn read(
        &self,
        s: &MrxContext,
        offset: u64,
        len: u32,
        ctx: &RxContext,
    ) -> RxResult<Bytes> {
        if self.hang_reads.load(Ordering::SeqCst) {
            ctx.cancelled().await;
            return Err(RxError::Cancelled {
                what: "read".into(),
            });
        }
        self.inner.read(s, offset, len, ctx).await
    }
    async fn write(
        &self,
        s: &MrxContext,
        offset: u64,
        data: Bytes,
        ctx: &RxContext,
    ) -> RxResult<u32> {
        self.write_gate.pass(ctx).await?;
        if self.hang_writes.load(Ordering::SeqCst) {
            ctx.cancelled().await;
            return Err(RxError::Cancelled {
                what: "write".into(),
            });
        }
        if self.fail_writes.load(Ordering::SeqCst) {
            return Err(st(NtStatus::STATUS_CONNECTION_DISCONNECTED, "write"));
        }
        self.counters.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.write(s, offset, data, ctx).await
    }
    async fn flush(&self, s: &MrxContext, ctx: &RxContext) -> RxResult<()> {
        self.inner.flush(s, ctx).await
    }
    async fn query_info(&self, s: &MrxContext, ctx: &RxContext) -> RxResult<FileInfo> {
        self.inner.query_info(s, ctx).await
    }
    async fn query_path_info(
        &self,
        v: &MrxContext,
        path: &RxPath,
        ctx: &RxContext,
    ) -> RxResult<FileInfo> {
        self.inner.query_path_info(v, path, ctx).await
    }
    async fn set_info(&self, s: &MrxContext, i: &SetInfo, ctx: &RxContext) -> RxResult<()> {
        self.set_info_gate.pass(ctx).await?;
        self.inner.set_info(s, i, ctx).await?;
        if let SetInfo::Rename { new_path, .. } = i
            && let Some(p) = self.opens.lock().get_mut(&key(s))
        {
            *p = new_path.to_lowercase();
        }
        Ok(())
    }
    async fn query_directory(
        &self,
        s: &MrxContext,
        p: Option<&str>,
        restart: bool,
        ctx: &RxContext,
    ) -> RxResult<Vec<DirEntry>> {
        self.inner.query_directory(s, p, restart, ctx).await
    }
    async fn notify_change(
        &self,
        s: &MrxContext,
        f: u32,
        w: bool,
        ctx: &RxContext,
    ) -> RxResult<Vec<ChangeEvent>> {
        self.inner.notify_change(s, f, w, ctx).await
    }
    async fn lock(
        &self,
        s: &MrxContext,
        range: LockRange,
        wait: bool,
        ctx: &RxContext,
    ) -> RxResult<()> {
        self.inner.lock(s, range, wait, ctx).await
    }
    async fn unlock(&self, s: &MrxContext, range: LockRange, ctx: &RxContext) -> RxResult<()> {
        self.inner.unlock(s, range, ctx).await
    }
    async fn query_volume(&self, v: &MrxContext, ctx: &RxContext) -> RxResult<VolumeInfo> {
        self.inner.query_volume(v, ctx).await
    }
}
