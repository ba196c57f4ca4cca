//! `Rdbss`: the device object. It owns the mini-redirector, the net-name table, the scavenger and
//! the clock, and is the one entry point the front ends (FUSE, daemon) call.
//!
//! This file holds the construction protocol (`add_connection`, §1.13–1.14), lookups and the
//! inventory. File operations are in `file_ops.rs`, `finalize_connection` in `finalize.rs`,
//! reference counting in `refcount.rs`, the timed parts in `scavenger.rs`.

use crate::active_requests::RequestGuard;
use crate::clock::{Clock, SystemClock};
use crate::condition::ConditionState;
use crate::error::{RxError, RxResult};
use crate::fcb::Fcb;
use crate::inventory::{HandleInfo, Inventory};
use crate::minirdr::*;
use crate::name::{RemoteName, path_key};
use crate::net_name_table::NetNameTable;
use crate::net_root::NetRoot;
use crate::refcount::{Aftermath, Deref, Teardown, apply_derefs};
use crate::rx_context::{RequestKind, RxContext};
use crate::scavenger::Scavenger;
use crate::srv_call::SrvCall;
use crate::status::NtStatus;
use crate::v_net_root::VNetRoot;
use parking_lot::Mutex;
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

/// The shared state behind `Rdbss`.
pub(crate) struct Inner {
    pub(crate) minirdr: Arc<dyn MiniRedirector>,
    pub(crate) config: RdbssConfig,
    pub(crate) clock: Arc<dyn Clock>,
    /// Creates on their way to the server and the breaks they may have missed; taken before
    /// `names` (see `buffering.rs`).
    pub(crate) outstanding: Mutex<crate::buffering::OutstandingOpens>,
    /// The net-name table; the outermost lock but for `outstanding`.
    pub(crate) names: Mutex<NetNameTable>,
    pub(crate) scavenger: Scavenger,
}

/// The redirector: one per mini-redirector. Cheap to clone.
#[derive(Clone)]
pub struct Rdbss {
    pub(crate) inner: Arc<Inner>,
}

/// A handle on an [`Rdbss`] that does not keep it alive (for background tasks that should end
/// with it, such as a break handler).
#[derive(Clone)]
pub struct WeakRdbss(std::sync::Weak<Inner>);

impl WeakRdbss {
    /// The redirector, if it still exists.
    pub fn upgrade(&self) -> Option<Rdbss> {
        self.0.upgrade().map(|inner| Rdbss { inner })
    }
}

impl Inner {
    pub(crate) fn srv_call_linger(&self) -> Duration {
        self.config
            .srv_call_linger
            .unwrap_or_else(|| self.minirdr.srv_call_linger())
    }

    /// Apply queued dereferences under the name-table lock, then make the mini-redirector calls
    /// with no lock held (see `refcount.rs`). Loops until nothing is left.
    pub(crate) async fn settle(&self, am: Aftermath) {
        self.settle_tracked(am, None).await
    }

    /// [`Inner::settle`], keeping in `track` what is still to be done on the server (the step
    /// running and those queued), so a caller that stops waiting can say what is left.
    pub(crate) async fn settle_tracked(
        &self,
        mut am: Aftermath,
        track: Option<&Mutex<Vec<String>>>,
    ) {
        loop {
            if !am.derefs.is_empty() {
                let now = self.clock.now();
                let mut names = self.names.lock();
                apply_derefs(&mut names, &mut am, now);
            }
            let Some(t) = am.teardown.pop_front() else {
                break;
            };
            if let Some(tr) = track {
                *tr.lock() = std::iter::once(&t)
                    .chain(am.teardown.iter())
                    .map(Teardown::describe)
                    .collect();
            }
            match t {
                Teardown::CloseSrvOpen(so) => {
                    if let Err(e) = self.minirdr.close_srv_open(&so.context).await {
                        tracing::warn!(path = %so.fcb.path, error = %e, "closing the server open failed");
                    }
                }
                Teardown::FinalizeNetRoot(c) => self.minirdr.finalize_net_root(&c).await,
                Teardown::FinalizeVNetRoot(c) => self.minirdr.finalize_v_net_root(&c).await,
                Teardown::FinalizeSrvCall(c) => self.minirdr.finalize_srv_call(&c, true).await,
            }
            if am.is_empty() {
                break;
            }
        }
        if let Some(tr) = track {
            tr.lock().clear();
        }
    }

    /// Register a request on a view (§5.1).
    pub(crate) fn register(
        &self,
        v: &Arc<VNetRoot>,
        fcb_view: Option<&Arc<VNetRoot>>,
        kind: RequestKind,
        path: &str,
        fobx: Option<u64>,
        ctx: &RxContext,
    ) -> RequestGuard {
        RequestGuard::register(v, fcb_view, kind, path, fobx, ctx, self.clock.now())
    }
}

fn not_connected(what: impl Into<String>) -> RxError {
    RxError::NotConnected { what: what.into() }
}

/// What the construction loop found under the name-table lock.
enum Found {
    /// Wait for a NetRoot under construction, then look again.
    WaitNetRoot(Arc<NetRoot>),
    /// Wait for a view under construction, then look again.
    WaitView(Arc<VNetRoot>),
    /// This caller constructs the view (and the NetRoot when `first`).
    Construct { v: Arc<VNetRoot>, first: bool },
    /// A good view, extra reference taken.
    Ready(Arc<VNetRoot>),
}

impl Rdbss {
    /// A redirector over `minirdr`, on real time.
    pub fn new(minirdr: Arc<dyn MiniRedirector>, config: RdbssConfig) -> Self {
        Self::with_clock(minirdr, config, Arc::new(SystemClock))
    }

    /// A redirector with an injected clock (tests).
    pub fn with_clock(
        minirdr: Arc<dyn MiniRedirector>,
        config: RdbssConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Rdbss {
            inner: Arc::new(Inner {
                minirdr,
                config,
                clock,
                outstanding: Mutex::default(),
                names: Mutex::new(NetNameTable::default()),
                scavenger: Scavenger::default(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &RdbssConfig {
        &self.inner.config
    }

    /// Reconnect the view `v` if its transport is gone (no-op otherwise): the next request
    /// would do it anyway; doing it in the background lets the status recover by itself.
    pub async fn reconnect(&self, v: &VNetRoot, ctx: &RxContext) -> RxResult<()> {
        if !self.transport_lost(v) {
            return Ok(());
        }
        match v.context() {
            Some(c) => self.inner.minirdr.reconnect(&c, ctx).await,
            None => Ok(()),
        }
    }

    /// Times `v` was connected again after its transport died.
    pub fn reconnects(&self, v: &VNetRoot) -> u64 {
        v.context().map_or(0, |c| self.inner.minirdr.reconnects(&c))
    }

    /// Whether the transport under `v` is gone (the mini-redirector says the view's
    /// connection to the server died): the `net use` status "Disconnected".
    pub fn transport_lost(&self, v: &VNetRoot) -> bool {
        v.context()
            .is_some_and(|c| self.inner.minirdr.transport_lost(&c))
    }

    /// Add a connection (RDBSS tree connect, §1.13–1.14): find or construct SrvCall, NetRoot and
    /// the caller's VNetRoot (keyed by logon id + user), and take the add-connection extra
    /// reference (at most one per view). Concurrent callers for the same share wait for the
    /// construction in progress and see the same result.
    pub async fn add_connection(
        &self,
        remote: &RemoteName,
        credentials: Credentials,
        ctx: &RxContext,
    ) -> RxResult<Arc<VNetRoot>> {
        let sc = self.find_or_construct_srv_call(remote, ctx).await?;
        let r = self
            .find_or_construct_view(&sc, remote, credentials, ctx)
            .await;
        let mut am = Aftermath::default();
        am.derefs.push_back(Deref::SrvCall(sc));
        self.inner.settle(am).await;
        r
    }

    /// `RxConstructSrvCall` or reuse (also a dormant one, decision 9). Returns with a reference.
    async fn find_or_construct_srv_call(
        &self,
        remote: &RemoteName,
        ctx: &RxContext,
    ) -> RxResult<Arc<SrvCall>> {
        let key = remote.srv_call_key();
        let (sc, construct) = {
            let mut names = self.inner.names.lock();
            match names.srv_calls.get(&key).cloned() {
                Some(sc) if sc.try_reference() => (sc, false),
                _ => {
                    let sc = Arc::new(SrvCall::new(
                        key.clone(),
                        SrvCallParams {
                            server: remote.server.clone(),
                            port: remote.port,
                        },
                    ));
                    sc.state.lock().ref_count += 1; // ours
                    names.srv_calls.insert(key, sc.clone());
                    names.version += 1;
                    (sc, true)
                }
            }
        };
        if !construct {
            if let Err(e) = sc
                .condition
                .wait_stable(&format!("\\\\{}", remote.server), ctx)
                .await
            {
                let mut am = Aftermath::default();
                am.derefs.push_back(Deref::SrvCall(sc));
                self.inner.settle(am).await;
                return Err(e);
            }
            return Ok(sc);
        }
        match self.inner.minirdr.create_srv_call(&sc.params, ctx).await {
            Ok(c) => {
                sc.state.lock().context = Some(c);
                sc.condition.transition(ConditionState::Good, None);
                Ok(sc)
            }
            Err(e) => {
                {
                    let mut names = self.inner.names.lock();
                    sc.state.lock().finalized = true;
                    names.remove_srv_call(&sc);
                }
                sc.condition
                    .transition(ConditionState::Bad, Some(e.clone()));
                Err(e)
            }
        }
    }

    /// `RxFindOrCreateConnections` + `RxConstructNetRoot` for the caller's view.
    async fn find_or_construct_view(
        &self,
        sc: &Arc<SrvCall>,
        remote: &RemoteName,
        credentials: Credentials,
        ctx: &RxContext,
    ) -> RxResult<Arc<VNetRoot>> {
        let nr_key = remote.key();
        let prefix = remote.path_string();
        let v_key = if prefix.is_empty() {
            nr_key.clone()
        } else {
            format!("{nr_key}\\{}", path_key(&prefix))
        };
        let display = if prefix.is_empty() {
            remote.unc()
        } else {
            format!("{}\\{}", remote.unc(), prefix)
        };
        loop {
            let found = {
                let mut names = self.inner.names.lock();
                match names.net_roots.get(&nr_key).cloned() {
                    None => {
                        if !sc.try_reference() {
                            return Err(not_connected(remote.unc()));
                        }
                        let nr = Arc::new(NetRoot::new(
                            nr_key.clone(),
                            remote.share.clone(),
                            sc.clone(),
                        ));
                        let v = Arc::new(VNetRoot::new(
                            nr.clone(),
                            v_key.clone(),
                            prefix.clone(),
                            display.clone(),
                            credentials.clone(),
                        ));
                        {
                            let mut st = nr.state.lock();
                            st.ref_count += 1; // held by the view
                            st.views.push(v.clone());
                        }
                        v.state.lock().ref_count += 1; // ours, becomes the extra reference
                        names.net_roots.insert(nr_key.clone(), nr);
                        names.insert_v_net_root(v.clone());
                        Found::Construct { v, first: true }
                    }
                    Some(nr) => match nr.condition.get() {
                        ConditionState::InTransition => {
                            if !nr.reference() {
                                return Err(not_connected(remote.unc()));
                            }
                            Found::WaitNetRoot(nr)
                        }
                        ConditionState::Good => {
                            let existing = names
                                .views_at(credentials.logon_id, &v_key)
                                .iter()
                                .find(|v| {
                                    v.credentials.user == credentials.user
                                        && v.credentials.domain == credentials.domain
                                        && v.condition.get() != ConditionState::Bad
                                })
                                .cloned();
                            match existing {
                                Some(v) if v.condition.get() == ConditionState::InTransition => {
                                    if !v.try_reference() {
                                        return Err(not_connected(display.clone()));
                                    }
                                    Found::WaitView(v)
                                }
                                Some(v) => {
                                    let mut st = v.state.lock();
                                    if st.upper_finalization_done || st.freed {
                                        return Err(not_connected(display.clone()));
                                    }
                                    if !st.additional_reference_taken {
                                        st.additional_reference_taken = true;
                                        st.ref_count += 1;
                                    }
                                    drop(st);
                                    Found::Ready(v)
                                }
                                None => {
                                    if !nr.try_reference() {
                                        return Err(not_connected(remote.unc()));
                                    }
                                    let v = Arc::new(VNetRoot::new(
                                        nr.clone(),
                                        v_key.clone(),
                                        prefix.clone(),
                                        display.clone(),
                                        credentials.clone(),
                                    ));
                                    nr.state.lock().views.push(v.clone());
                                    v.state.lock().ref_count += 1;
                                    names.insert_v_net_root(v.clone());
                                    Found::Construct { v, first: false }
                                }
                            }
                        }
                        _ => {
                            return Err(RxError::status(
                                NtStatus::STATUS_BAD_NETWORK_PATH,
                                remote.unc(),
                            ));
                        }
                    },
                }
            };
            match found {
                Found::Ready(v) => return Ok(v),
                Found::WaitNetRoot(nr) => {
                    let r = nr.condition.wait_stable(&remote.unc(), ctx).await;
                    let mut am = Aftermath::default();
                    am.derefs.push_back(Deref::NetRoot(nr));
                    self.inner.settle(am).await;
                    r?;
                }
                Found::WaitView(v) => {
                    let r = v.condition.wait_stable(&display, ctx).await;
                    let mut am = Aftermath::default();
                    am.deref_view(&v);
                    self.inner.settle(am).await;
                    r?;
                }
                Found::Construct { v, first } => {
                    return self.construct_view(sc, v, first, ctx).await;
                }
            }
        }
    }

    /// `RxConstructNetRoot`: `MRxCreateVNetRoot` with no lock held, then transition both (§1.13).
    async fn construct_view(
        &self,
        sc: &Arc<SrvCall>,
        v: Arc<VNetRoot>,
        first: bool,
        ctx: &RxContext,
    ) -> RxResult<Arc<VNetRoot>> {
        let nr = v.net_root.clone();
        let params = VNetRootParams {
            share: nr.share.clone(),
            credentials: v.credentials.clone(),
        };
        let sc_ctx = sc.context();
        let nr_ctx = if first { None } else { nr.context() };
        let result = match (&sc_ctx, first, &nr_ctx) {
            (Some(s), _, n) => {
                self.inner
                    .minirdr
                    .create_v_net_root(s, n.as_ref(), &params, ctx)
                    .await
            }
            (None, _, _) => Err(not_connected(v.remote.clone())),
        };
        let result = match result {
            Ok(created) if first && created.net_root.is_none() => Err(RxError::status(
                NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
                format!(
                    "{}: the mini-redirector returned no share context",
                    v.remote
                ),
            )),
            other => other,
        };
        match result {
            Ok(created) => {
                if first {
                    nr.state.lock().context = created.net_root;
                    nr.condition.transition(ConditionState::Good, None);
                }
                {
                    let mut st = v.state.lock();
                    st.context = Some(created.v_net_root);
                    // Our construction reference becomes the add-connection extra reference.
                    st.additional_reference_taken = true;
                }
                v.condition.transition(ConditionState::Good, None);
                Ok(v)
            }
            Err(e) => {
                if first {
                    nr.condition
                        .transition(ConditionState::Bad, Some(e.clone()));
                }
                v.condition.transition(ConditionState::Bad, Some(e.clone()));
                let mut am = Aftermath::default();
                {
                    let mut names = self.inner.names.lock();
                    crate::refcount::upper_finalize_v_net_root(&mut names, &v, &mut am);
                }
                am.deref_view(&v);
                self.inner.settle(am).await;
                Err(e)
            }
        }
    }

    /// Longest-prefix lookup of `\server\share[\path]` to the caller's view and the remaining
    /// path (`RxTableLookupName`). Returns no counted reference: the `Arc` keeps memory only.
    pub fn lookup(&self, name: &str, logon_id: u32) -> Option<(Arc<VNetRoot>, String)> {
        let name = RemoteName::parse(name).ok()?;
        self.inner.names.lock().lookup(&name, logon_id)
    }

    /// Every live view (constructed and in the name table).
    pub fn connections(&self) -> Vec<Arc<VNetRoot>> {
        let names = self.inner.names.lock();
        let mut all: Vec<_> = names
            .v_net_roots
            .values()
            .flatten()
            .filter(|v| v.condition.get() == ConditionState::Good)
            .cloned()
            .collect();
        all.sort_by_key(|v| v.id);
        all
    }

    /// Every SrvCall in the name table (active or dormant).
    pub fn srv_calls(&self) -> Vec<Arc<SrvCall>> {
        let names = self.inner.names.lock();
        let mut all: Vec<_> = names.srv_calls.values().cloned().collect();
        all.sort_by_key(|s| s.id);
        all
    }

    /// Every NetRoot in the name table.
    pub fn net_roots(&self) -> Vec<Arc<NetRoot>> {
        let names = self.inner.names.lock();
        let mut all: Vec<_> = names.net_roots.values().cloned().collect();
        all.sort_by_key(|n| n.id);
        all
    }

    /// What is open on a view: its handles (with locks, dirty bytes, buffering, orphaned) and
    /// its outstanding requests.
    pub fn inventory(&self, v: &Arc<VNetRoot>) -> Inventory {
        Inventory {
            remote: v.remote.clone(),
            logon_id: v.credentials.logon_id,
            user: v.credentials.user.clone(),
            handles: handles_of(v),
            pending: v.requests.list(self.inner.clock.now()),
        }
    }

    /// One scavenger pass at the clock's now: expire delayed closes and dormant SrvCalls.
    pub async fn scavenge(&self) {
        self.inner.scavenge_pass().await
    }

    /// Run the scavenger every `period` on real time until the `Rdbss` is dropped.
    pub fn spawn_scavenger(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                inner.scavenge_pass().await;
            }
        })
    }

    /// A handle that does not keep this redirector alive.
    pub fn downgrade(&self) -> WeakRdbss {
        WeakRdbss(Arc::downgrade(&self.inner))
    }

    /// Close the transport to `server` now if no share uses it (decision 9's explicit option).
    /// Returns whether a dormant transport was closed.
    pub async fn close_transport(&self, server: &str) -> bool {
        self.inner.close_transport(server).await
    }
}

/// Handles open through `v`, in creation order.
pub(crate) fn handles_of(v: &Arc<VNetRoot>) -> Vec<HandleInfo> {
    let tbl = v.net_root.fcb_table.lock();
    let Some(files) = tbl.views.get(&v.id) else {
        return Vec::new();
    };
    files.fobxs.values().map(handle_info).collect()
}

pub(crate) fn handle_info(f: &Arc<crate::fobx::Fobx>) -> HandleInfo {
    let so = &f.srv_open;
    let locks = so
        .fcb
        .state
        .lock()
        .locks
        .iter()
        .filter(|l| l.fobx == f.id)
        .map(|l| l.range)
        .collect();
    HandleInfo {
        id: f.id,
        path: so.fcb.path.clone(),
        is_dir: so.is_dir,
        access: so.access.bits(),
        share: so.share.bits(),
        locks,
        dirty_bytes: so.write_behind.lock().bytes_of(f.id),
        buffering: so.buffering(),
        orphaned: so.is_orphaned(),
    }
}

#[allow(dead_code)]
pub(crate) fn fcb_of(v: &VNetRoot, path: &str) -> Option<Arc<Fcb>> {
    v.net_root.fcb_table.lock().lookup(&path_key(path))
}
