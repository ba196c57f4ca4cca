//! Test support: `MemRdr`, an in-memory mini-redirector that counts every server-side open and
//! close, can hold creates at a gate, fail or hang writes, keeps change notifications pending
//! until cancelled and makes byte-range locks conflict per server open — and `Env`, the scenario
//! harness. Scenarios take a [`Fixture`] (a mini-redirector plus a way to make files), so they can
//! be re-run against a real mini-redirector (rdr-local) later.
#![allow(dead_code)]

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rdr_core::clock::ManualClock;
use rdr_core::fobx::Fobx;
use rdr_core::minirdr::*;
use rdr_core::name::RemoteName;
use rdr_core::v_net_root::VNetRoot;
use rdr_core::{NtStatus, Rdbss, RdbssConfig, RxContext, RxError, RxResult};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

/// A gate a mini-redirector call waits at while it is closed.
#[derive(Default)]
pub struct Gate {
    closed: AtomicBool,
    notify: tokio::sync::Notify,
    /// Calls that reached the gate.
    pub entered: AtomicUsize,
}

impl Gate {
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }
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

struct MemFile {
    data: Vec<u8>,
    is_dir: bool,
}

struct MemOpen {
    handle: u64,
}

#[derive(Default)]
pub struct Counters {
    pub srv_call_creates: AtomicUsize,
    pub srv_call_finalizes: AtomicUsize,
    pub v_net_root_creates: AtomicUsize,
    pub net_root_finalizes: AtomicUsize,
    pub v_net_root_finalizes: AtomicUsize,
    pub opens: AtomicUsize,
    pub closes: AtomicUsize,
    pub writes: AtomicUsize,
}

/// The in-memory mini-redirector.
#[derive(Default)]
pub struct MemRdr {
    files: Mutex<HashMap<String, MemFile>>,
    /// Server-side opens: handle → path.
    open_handles: Mutex<HashMap<u64, String>>,
    /// Server-side locks: (handle, path, range).
    locks: Mutex<Vec<(u64, String, LockRange)>>,
    lock_changed: tokio::sync::Notify,
    next: AtomicUsize,
    pub counters: Counters,
    pub srv_call_gate: Gate,
    pub v_net_root_gate: Gate,
    pub create_gate: Gate,
    pub set_info_gate: Gate,
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
    /// Buffering granted to opens of files.
    pub grant: Mutex<BufferingState>,
    pub linger: Mutex<Option<Duration>>,
}

fn info(is_dir: bool, size: u64) -> FileInfo {
    FileInfo {
        is_dir,
        size,
        allocation_size: size,
        created: SystemTime::UNIX_EPOCH,
        accessed: SystemTime::UNIX_EPOCH,
        modified: SystemTime::UNIX_EPOCH,
        changed: SystemTime::UNIX_EPOCH,
        attributes: if is_dir {
            file_attributes::DIRECTORY
        } else {
            file_attributes::NORMAL
        },
        file_id: 0,
        nlink: 1,
        mode: None,
    }
}

fn handle_of(c: &MrxContext) -> u64 {
    c.downcast_ref::<MemOpen>().map(|o| o.handle).unwrap_or(0)
}

fn st(status: NtStatus, what: &str) -> RxError {
    RxError::status(status, what.to_string())
}

impl MemRdr {
    pub fn new() -> Arc<MemRdr> {
        let m = MemRdr::default();
        m.files.lock().insert(
            String::new(),
            MemFile {
                data: Vec::new(),
                is_dir: true,
            },
        );
        Arc::new(m)
    }
    pub fn server_open_count(&self) -> usize {
        self.open_handles.lock().len()
    }
    pub fn server_opens_of(&self, path: &str) -> usize {
        let k = path.to_lowercase();
        self.open_handles
            .lock()
            .values()
            .filter(|p| **p == k)
            .count()
    }
    pub fn count(&self, c: &AtomicUsize) -> usize {
        c.load(Ordering::SeqCst)
    }
    pub fn content(&self, path: &str) -> Option<Vec<u8>> {
        self.files
            .lock()
            .get(&path.to_lowercase())
            .map(|f| f.data.clone())
    }
    fn id(&self) -> u64 {
        self.next.fetch_add(1, Ordering::SeqCst) as u64 + 1
    }
}

#[async_trait]
impl MiniRedirector for MemRdr {
    fn name(&self) -> &'static str {
        "mem"
    }
    fn srv_call_linger(&self) -> Duration {
        self.linger.lock().unwrap_or(Duration::from_secs(60))
    }
    async fn create_srv_call(&self, _p: &SrvCallParams, ctx: &RxContext) -> RxResult<MrxContext> {
        self.counters
            .srv_call_creates
            .fetch_add(1, Ordering::SeqCst);
        self.srv_call_gate.pass(ctx).await?;
        if let Some(s) = *self.fail_srv_call.lock() {
            return Err(st(s, "server"));
        }
        Ok(Arc::new(self.id()))
    }
    async fn finalize_srv_call(&self, _s: &MrxContext, _force: bool) {
        self.counters
            .srv_call_finalizes
            .fetch_add(1, Ordering::SeqCst);
    }
    async fn create_v_net_root(
        &self,
        _s: &MrxContext,
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
        Ok(VNetRootCreated {
            net_root: if net_root.is_none() {
                Some(Arc::new(p.share.clone()))
            } else {
                None
            },
            v_net_root: Arc::new(self.id()),
        })
    }
    async fn finalize_net_root(&self, _n: &MrxContext) {
        self.counters
            .net_root_finalizes
            .fetch_add(1, Ordering::SeqCst);
    }
    async fn finalize_v_net_root(&self, _v: &MrxContext) {
        self.counters
            .v_net_root_finalizes
            .fetch_add(1, Ordering::SeqCst);
    }
    async fn create(
        &self,
        _v: &MrxContext,
        path: &RxPath,
        params: &CreateParams,
        ctx: &RxContext,
    ) -> RxResult<CreateResult> {
        self.create_gate.pass(ctx).await?;
        let key = path.to_lowercase();
        let (is_dir, size, action) = {
            let mut files = self.files.lock();
            let want_dir = params.options.contains(CreateOptions::DIRECTORY_FILE);
            match files.get_mut(&key) {
                Some(f) => {
                    if params.disposition == CreateDisposition::Create {
                        return Err(st(NtStatus::STATUS_OBJECT_NAME_COLLISION, path));
                    }
                    if want_dir && !f.is_dir {
                        return Err(st(NtStatus::STATUS_NOT_A_DIRECTORY, path));
                    }
                    if matches!(
                        params.disposition,
                        CreateDisposition::Overwrite | CreateDisposition::OverwriteIf
                    ) {
                        f.data.clear();
                    }
                    (f.is_dir, f.data.len() as u64, CreateAction::Opened)
                }
                None => {
                    if matches!(
                        params.disposition,
                        CreateDisposition::Open | CreateDisposition::Overwrite
                    ) {
                        return Err(st(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND, path));
                    }
                    files.insert(
                        key.clone(),
                        MemFile {
                            data: Vec::new(),
                            is_dir: want_dir,
                        },
                    );
                    (want_dir, 0, CreateAction::Created)
                }
            }
        };
        let h = self.id();
        self.open_handles.lock().insert(h, key);
        self.counters.opens.fetch_add(1, Ordering::SeqCst);
        let buffering = if is_dir {
            BufferingState::default()
        } else {
            *self.grant.lock()
        };
        Ok(CreateResult {
            srv_open: Arc::new(MemOpen { handle: h }),
            info: info(is_dir, size),
            action,
            buffering,
        })
    }
    async fn close_srv_open(&self, s: &MrxContext) -> RxResult<()> {
        let h = handle_of(s);
        if self.open_handles.lock().remove(&h).is_none() {
            panic!("server handle {h} closed twice or never opened");
        }
        self.locks.lock().retain(|l| l.0 != h);
        self.lock_changed.notify_waiters();
        self.counters.closes.fetch_add(1, Ordering::SeqCst);
        Ok(())
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
        let h = handle_of(s);
        let path = self
            .open_handles
            .lock()
            .get(&h)
            .cloned()
            .ok_or_else(|| st(NtStatus::STATUS_INVALID_HANDLE, "read"))?;
        let files = self.files.lock();
        let f = files
            .get(&path)
            .ok_or_else(|| st(NtStatus::STATUS_FILE_DELETED, &path))?;
        let start = (offset as usize).min(f.data.len());
        let end = (start + len as usize).min(f.data.len());
        Ok(Bytes::copy_from_slice(&f.data[start..end]))
    }
    async fn write(
        &self,
        s: &MrxContext,
        offset: u64,
        data: Bytes,
        ctx: &RxContext,
    ) -> RxResult<u32> {
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
        let h = handle_of(s);
        let path = self
            .open_handles
            .lock()
            .get(&h)
            .cloned()
            .ok_or_else(|| st(NtStatus::STATUS_INVALID_HANDLE, "write"))?;
        let mut files = self.files.lock();
        let f = files
            .get_mut(&path)
            .ok_or_else(|| st(NtStatus::STATUS_FILE_DELETED, &path))?;
        let end = offset as usize + data.len();
        if f.data.len() < end {
            f.data.resize(end, 0);
        }
        f.data[offset as usize..end].copy_from_slice(&data);
        Ok(data.len() as u32)
    }
    async fn flush(&self, _s: &MrxContext, _ctx: &RxContext) -> RxResult<()> {
        Ok(())
    }
    async fn query_info(&self, s: &MrxContext, _ctx: &RxContext) -> RxResult<FileInfo> {
        let h = handle_of(s);
        let path = self
            .open_handles
            .lock()
            .get(&h)
            .cloned()
            .ok_or_else(|| st(NtStatus::STATUS_INVALID_HANDLE, "query"))?;
        let files = self.files.lock();
        let f = files
            .get(&path)
            .ok_or_else(|| st(NtStatus::STATUS_FILE_DELETED, &path))?;
        Ok(info(f.is_dir, f.data.len() as u64))
    }
    async fn query_path_info(
        &self,
        _v: &MrxContext,
        path: &RxPath,
        _ctx: &RxContext,
    ) -> RxResult<FileInfo> {
        let files = self.files.lock();
        let f = files
            .get(&path.to_lowercase())
            .ok_or_else(|| st(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND, path))?;
        Ok(info(f.is_dir, f.data.len() as u64))
    }
    async fn set_info(&self, s: &MrxContext, i: &SetInfo, ctx: &RxContext) -> RxResult<()> {
        self.set_info_gate.pass(ctx).await?;
        let h = handle_of(s);
        let path = self
            .open_handles
            .lock()
            .get(&h)
            .cloned()
            .ok_or_else(|| st(NtStatus::STATUS_INVALID_HANDLE, "set"))?;
        let mut files = self.files.lock();
        match i {
            SetInfo::EndOfFile(n) => {
                if let Some(f) = files.get_mut(&path) {
                    f.data.resize(*n as usize, 0);
                }
            }
            SetInfo::Rename { new_path, .. } => {
                if let Some(f) = files.remove(&path) {
                    files.insert(new_path.to_lowercase(), f);
                }
                self.open_handles.lock().insert(h, new_path.to_lowercase());
            }
            _ => {}
        }
        Ok(())
    }
    async fn query_directory(
        &self,
        s: &MrxContext,
        _p: Option<&str>,
        restart: bool,
        _ctx: &RxContext,
    ) -> RxResult<Vec<DirEntry>> {
        if !restart {
            return Ok(Vec::new());
        }
        let h = handle_of(s);
        let dir = self
            .open_handles
            .lock()
            .get(&h)
            .cloned()
            .unwrap_or_default();
        let files = self.files.lock();
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}\\")
        };
        Ok(files
            .iter()
            .filter(|(k, _)| {
                !k.is_empty() && k.starts_with(&prefix) && !k[prefix.len()..].contains('\\')
            })
            .map(|(k, f)| DirEntry {
                name: k[prefix.len()..].to_string(),
                info: info(f.is_dir, f.data.len() as u64),
            })
            .collect())
    }
    async fn notify_change(
        &self,
        _s: &MrxContext,
        _f: u32,
        _w: bool,
        ctx: &RxContext,
    ) -> RxResult<Vec<ChangeEvent>> {
        ctx.cancelled().await;
        Err(RxError::Cancelled {
            what: "notify".into(),
        })
    }
    async fn lock(
        &self,
        s: &MrxContext,
        range: LockRange,
        wait: bool,
        ctx: &RxContext,
    ) -> RxResult<()> {
        let h = handle_of(s);
        let path = self
            .open_handles
            .lock()
            .get(&h)
            .cloned()
            .unwrap_or_default();
        loop {
            let n = self.lock_changed.notified();
            tokio::pin!(n);
            n.as_mut().enable();
            {
                let mut locks = self.locks.lock();
                let conflict = locks.iter().any(|(oh, p, r)| {
                    *oh != h && *p == path && r.overlaps(&range) && (r.exclusive || range.exclusive)
                });
                if !conflict {
                    locks.push((h, path.clone(), range));
                    return Ok(());
                }
            }
            if !wait {
                return Err(st(NtStatus::STATUS_LOCK_NOT_GRANTED, &path));
            }
            ctx.run("lock", async {
                n.await;
                Ok(())
            })
            .await?;
        }
    }
    async fn unlock(&self, s: &MrxContext, range: LockRange, _ctx: &RxContext) -> RxResult<()> {
        let h = handle_of(s);
        let mut locks = self.locks.lock();
        match locks.iter().position(|(oh, _, r)| *oh == h && *r == range) {
            Some(i) => {
                locks.remove(i);
                drop(locks);
                self.lock_changed.notify_waiters();
                Ok(())
            }
            None => Err(st(NtStatus::STATUS_RANGE_NOT_LOCKED, "unlock")),
        }
    }
    async fn query_volume(&self, _v: &MrxContext, _ctx: &RxContext) -> RxResult<VolumeInfo> {
        Ok(VolumeInfo {
            total_bytes: 1 << 30,
            free_bytes: 1 << 29,
            block_size: 4096,
        })
    }
}

/// What a scenario needs from the world: a mini-redirector and a way to make files on its share.
pub trait Fixture: Send + Sync {
    fn minirdr(&self) -> Arc<dyn MiniRedirector>;
    fn make_file(&self, path: &str, data: &[u8]);
    fn make_dir(&self, path: &str);
    /// Server-side opens, when the fixture can count them.
    fn server_opens(&self) -> Option<usize>;
}

impl Fixture for Arc<MemRdr> {
    fn minirdr(&self) -> Arc<dyn MiniRedirector> {
        self.clone()
    }
    fn make_file(&self, path: &str, data: &[u8]) {
        self.files.lock().insert(
            path.to_lowercase(),
            MemFile {
                data: data.to_vec(),
                is_dir: false,
            },
        );
    }
    fn make_dir(&self, path: &str) {
        self.files.lock().insert(
            path.to_lowercase(),
            MemFile {
                data: Vec::new(),
                is_dir: true,
            },
        );
    }
    fn server_opens(&self) -> Option<usize> {
        Some(self.server_open_count())
    }
}

/// A scenario environment: the redirector over a fixture, with a manual clock. `mem` is the
/// in-memory mini-redirector (gates, failure switches, call counters); scenarios that need only
/// files and server-open counts go through `fx`, so they can run over another fixture.
pub struct Env {
    pub rdbss: Rdbss,
    pub clock: Arc<ManualClock>,
    pub mem: Arc<MemRdr>,
    pub fx: Arc<dyn Fixture>,
}

pub const SHARE: &str = r"\\srv\share";

impl Env {
    pub fn new() -> Env {
        Env::with_config(RdbssConfig::default())
    }
    pub fn with_config(config: RdbssConfig) -> Env {
        let mem = MemRdr::new();
        mem.make_dir("d");
        mem.make_file("f", b"hello");
        mem.make_file("g", b"world");
        let clock = Arc::new(ManualClock::new());
        let rdbss = Rdbss::with_clock(mem.minirdr(), config, clock.clone());
        let fx: Arc<dyn Fixture> = Arc::new(mem.clone());
        Env {
            rdbss,
            clock,
            mem,
            fx,
        }
    }
    /// Assert the number of opens the server holds, when the fixture can count them.
    pub fn assert_server_opens(&self, n: usize, why: &str) {
        if let Some(have) = self.fx.server_opens() {
            assert_eq!(have, n, "{why}");
        }
    }
    pub fn ctx() -> RxContext {
        RxContext::new()
    }
    pub async fn view(&self, logon_id: u32) -> Arc<VNetRoot> {
        self.view_of(SHARE, logon_id).await
    }
    pub async fn view_of(&self, name: &str, logon_id: u32) -> Arc<VNetRoot> {
        let creds = Credentials {
            logon_id,
            ..Default::default()
        };
        self.rdbss
            .add_connection(&RemoteName::parse(name).unwrap(), creds, &RxContext::new())
            .await
            .unwrap()
    }
    pub async fn open(&self, v: &Arc<VNetRoot>, path: &str) -> Arc<Fobx> {
        self.try_open(v, path, false).await.unwrap()
    }
    pub async fn open_dir(&self, v: &Arc<VNetRoot>, path: &str) -> Arc<Fobx> {
        self.try_open(v, path, true).await.unwrap()
    }
    pub async fn try_open(&self, v: &Arc<VNetRoot>, path: &str, dir: bool) -> RxResult<Arc<Fobx>> {
        let mut p =
            CreateParams::open_existing(AccessMask::FILE_READ_DATA | AccessMask::FILE_WRITE_DATA);
        if dir {
            p.access = AccessMask::FILE_READ_DATA;
            p.options = CreateOptions::DIRECTORY_FILE;
        }
        self.rdbss.create(v, path, &p, &RxContext::new()).await
    }
    /// Start a change notification on a directory handle; it stays pending.
    pub async fn start_notify(
        &self,
        fobx: &Arc<Fobx>,
    ) -> tokio::task::JoinHandle<RxResult<Vec<ChangeEvent>>> {
        let r = self.rdbss.clone();
        let f = fobx.clone();
        let before = fobx.v_net_root().number_of_pending_requests();
        let h = tokio::spawn(async move {
            r.notify_change(&f, notify_filter::ALL, false, &RxContext::new())
                .await
        });
        let v = fobx.v_net_root().clone();
        bounded(async move {
            while v.number_of_pending_requests() <= before {
                tokio::task::yield_now().await;
            }
        })
        .await;
        h
    }
}

/// Fail a test that hangs.
pub async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("timed out: the operation hung")
}
