//! `Rdbss`: the device object. It owns the mini-redirector, the net-name table, the scavenger and
//! the clock, and is the one entry point the front ends (FUSE, daemon) call.
//! (STUB: the public API is fixed here so front ends can code against it.)

use crate::clock::Clock;
use crate::error::{RxError, RxResult};
use crate::fobx::Fobx;
use crate::force::ForceLevel;
use crate::inventory::{FinalizeOutcome, Inventory};
use crate::minirdr::*;
use crate::name::RemoteName;
use crate::net_root::NetRoot;
use crate::rx_context::RxContext;
use crate::v_net_root::VNetRoot;
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Tunables of the core.
#[derive(Debug, Clone)]
pub struct RdbssConfig {
    /// How long a dormant SrvCall keeps its transport; `None` = the mini-redirector's default.
    pub srv_call_linger: Option<Duration>,
    /// How long a closed SrvOpen may stay open on the server for reuse (delayed close).
    pub delayed_close: Duration,
    /// At most this many delayed closes per SrvCall.
    pub max_delayed_close: usize,
    /// Write-behind: dirty bytes held per open before they are sent.
    pub write_behind_limit: usize,
    /// Bound on draining dirty data during a forced delete when the caller gave no deadline.
    pub drain_timeout: Duration,
}

impl Default for RdbssConfig {
    fn default() -> Self {
        RdbssConfig {
            srv_call_linger: None,
            delayed_close: Duration::from_secs(5),
            max_delayed_close: 64,
            write_behind_limit: 0,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// The redirector: one per mini-redirector. Cheap to clone.
#[derive(Clone)]
pub struct Rdbss {
    _p: (),
}

fn ni<T>() -> RxResult<T> {
    Err(RxError::status(
        crate::status::NtStatus::STATUS_NOT_IMPLEMENTED,
        "rdbss",
    ))
}

#[allow(unused_variables)]
impl Rdbss {
    /// A redirector over `minirdr`, on real time.
    pub fn new(minirdr: Arc<dyn MiniRedirector>, config: RdbssConfig) -> Self {
        Rdbss { _p: () }
    }
    /// A redirector with an injected clock (tests).
    pub fn with_clock(
        minirdr: Arc<dyn MiniRedirector>,
        config: RdbssConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Rdbss { _p: () }
    }
    /// Add a connection (RDBSS tree connect): find or construct SrvCall, NetRoot and the caller's
    /// VNetRoot, and take the add-connection extra reference.
    pub async fn add_connection(
        &self,
        remote: &RemoteName,
        credentials: Credentials,
        ctx: &RxContext,
    ) -> RxResult<Arc<VNetRoot>> {
        ni()
    }
    /// Longest-prefix lookup of `\server\share[\path]` to the caller's view and the remaining path.
    pub fn lookup(&self, name: &str, logon_id: u32) -> Option<(Arc<VNetRoot>, String)> {
        None
    }
    /// Every live view.
    pub fn connections(&self) -> Vec<Arc<VNetRoot>> {
        Vec::new()
    }
    /// Open or create `path` through the view; returns the local handle.
    pub async fn create(
        &self,
        v: &Arc<VNetRoot>,
        path: &RxPath,
        params: &CreateParams,
        ctx: &RxContext,
    ) -> RxResult<Arc<Fobx>> {
        ni()
    }
    /// Read through a handle.
    pub async fn read(
        &self,
        fobx: &Arc<Fobx>,
        offset: u64,
        len: u32,
        ctx: &RxContext,
    ) -> RxResult<Bytes> {
        ni()
    }
    /// Write through a handle.
    pub async fn write(
        &self,
        fobx: &Arc<Fobx>,
        offset: u64,
        data: Bytes,
        ctx: &RxContext,
    ) -> RxResult<u32> {
        ni()
    }
    /// Send dirty data and flush on the server.
    pub async fn flush(&self, fobx: &Arc<Fobx>, ctx: &RxContext) -> RxResult<()> {
        ni()
    }
    /// Metadata through a handle.
    pub async fn query_info(&self, fobx: &Arc<Fobx>, ctx: &RxContext) -> RxResult<FileInfo> {
        ni()
    }
    /// Metadata by path.
    pub async fn query_path_info(
        &self,
        v: &Arc<VNetRoot>,
        path: &RxPath,
        ctx: &RxContext,
    ) -> RxResult<FileInfo> {
        ni()
    }
    /// Change metadata through a handle.
    pub async fn set_info(
        &self,
        fobx: &Arc<Fobx>,
        info: &SetInfo,
        ctx: &RxContext,
    ) -> RxResult<()> {
        ni()
    }
    /// Next batch of directory entries.
    pub async fn query_directory(
        &self,
        fobx: &Arc<Fobx>,
        pattern: Option<&str>,
        restart: bool,
        ctx: &RxContext,
    ) -> RxResult<Vec<DirEntry>> {
        ni()
    }
    /// Wait for a change under a directory handle.
    pub async fn notify_change(
        &self,
        fobx: &Arc<Fobx>,
        filter: u32,
        watch_tree: bool,
        ctx: &RxContext,
    ) -> RxResult<Vec<ChangeEvent>> {
        ni()
    }
    /// Take a byte-range lock.
    pub async fn lock(
        &self,
        fobx: &Arc<Fobx>,
        range: LockRange,
        wait: bool,
        ctx: &RxContext,
    ) -> RxResult<()> {
        ni()
    }
    /// Release a byte-range lock.
    pub async fn unlock(
        &self,
        fobx: &Arc<Fobx>,
        range: LockRange,
        ctx: &RxContext,
    ) -> RxResult<()> {
        ni()
    }
    /// Space on the view's share.
    pub async fn query_volume(&self, v: &Arc<VNetRoot>, ctx: &RxContext) -> RxResult<VolumeInfo> {
        ni()
    }
    /// Close a handle (cleanup + close). Works on orphaned handles; a second close fails.
    pub async fn close(&self, fobx: &Arc<Fobx>) -> RxResult<()> {
        ni()
    }
    /// RxFinalizeConnection. `v == None` means every view of the share (decision 2).
    pub async fn finalize_connection(
        &self,
        net_root: &Arc<NetRoot>,
        v: Option<&Arc<VNetRoot>>,
        force: ForceLevel,
        ctx: &RxContext,
    ) -> FinalizeOutcome {
        unimplemented_outcome()
    }
    /// Finalize every view of a share with the given force.
    pub async fn finalize_all_connections(
        &self,
        net_root: &Arc<NetRoot>,
        force: ForceLevel,
        ctx: &RxContext,
    ) -> FinalizeOutcome {
        unimplemented_outcome()
    }
    /// What is open on a view.
    pub fn inventory(&self, v: &Arc<VNetRoot>) -> Inventory {
        Inventory {
            remote: String::new(),
            logon_id: 0,
            user: None,
            handles: vec![],
            pending: vec![],
        }
    }
    /// One scavenger pass at the clock's now: expire delayed closes and dormant SrvCalls.
    pub async fn scavenge(&self) {}
    /// Close the transport to `server` now if no share uses it (decision 9's explicit option).
    pub async fn close_transport(&self, server: &str) -> bool {
        false
    }
}

fn unimplemented_outcome() -> FinalizeOutcome {
    FinalizeOutcome {
        status: crate::status::NtStatus::STATUS_NOT_IMPLEMENTED,
        open_handles: vec![],
        cancelled: vec![],
        unwritten: vec![],
        view_removed: false,
    }
}
