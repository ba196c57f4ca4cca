//! `MemRdr`: an in-memory mini-redirector. Files live in a map; server opens are counted; byte-range
//! locks conflict per server open; change notifications stay pending until cancelled. Gates,
//! failure switches and call counters live in [`crate::Probe`], which wraps any mini-redirector.

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rdr_core::minirdr::*;
use rdr_core::{NtStatus, RxContext, RxError, RxResult};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

struct MemFile {
    data: Vec<u8>,
    is_dir: bool,
}

struct MemOpen {
    handle: u64,
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
    async fn create_srv_call(&self, _p: &SrvCallParams, _ctx: &RxContext) -> RxResult<MrxContext> {
        Ok(Arc::new(self.id()))
    }
    async fn finalize_srv_call(&self, _s: &MrxContext, _force: bool) {}
    async fn create_v_net_root(
        &self,
        _s: &MrxContext,
        net_root: Option<&MrxContext>,
        p: &VNetRootParams,
        _ctx: &RxContext,
    ) -> RxResult<VNetRootCreated> {
        Ok(VNetRootCreated {
            net_root: if net_root.is_none() {
                Some(Arc::new(p.share.clone()))
            } else {
                None
            },
            v_net_root: Arc::new(self.id()),
        })
    }
    async fn finalize_net_root(&self, _n: &MrxContext) {}
    async fn finalize_v_net_root(&self, _v: &MrxContext) {}
    async fn create(
        &self,
        _v: &MrxContext,
        path: &RxPath,
        params: &CreateParams,
        _ctx: &RxContext,
    ) -> RxResult<CreateResult> {
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
        let buffering = BufferingState::default();
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
        Ok(())
    }
    async fn read(
        &self,
        s: &MrxContext,
        offset: u64,
        len: u32,
        _ctx: &RxContext,
    ) -> RxResult<Bytes> {
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
        _ctx: &RxContext,
    ) -> RxResult<u32> {
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
    async fn set_info(&self, s: &MrxContext, i: &SetInfo, _ctx: &RxContext) -> RxResult<()> {
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

impl crate::Fixture for Arc<MemRdr> {
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
    fn content(&self, path: &str) -> Option<Vec<u8>> {
        MemRdr::content(self, path)
    }
    fn server_opens(&self) -> Option<usize> {
        Some(self.server_open_count())
    }
}
