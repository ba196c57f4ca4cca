//! `SmbRdr`: the SMB 2/3 mini-redirector behind rdr-core's [`MiniRedirector`] trait.
//!
//! * SrvCall = one [`SmbClient`] (TCP connection + NEGOTIATE) and its sessions;
//! * NetRoot = the share name;
//! * VNetRoot = a [`Session`] per identity (user, domain) on that connection — shared by the
//!   identity's trees — plus a [`Tree`] connect;
//! * SrvOpen = an [`Open`] (FileId + lease).
//!
//! `finalize_v_net_root` disconnects the tree and logs the session off with its last tree;
//! `finalize_srv_call` closes the connection. When the connection dies (the server closed it
//! or stopped answering), the next path operation of a view reconnects: a new connection, the
//! identity's session set up again, the tree connected again. Durable opens of the view (granted
//! where the server allows, see [`crate::ClientConfig::durable_handles`]) are then reclaimed on
//! the new tree with their lease keys, and their I/O goes on there; a read, write, flush or
//! query that failed because the connection died under a durable open runs once more after
//! the reclaim. A file the client creates asks for its durable handle only after
//! [`crate::open::DURABLE_AFTER`] (`Open::make_durable`). Other opens of the old connection
//! are not reopened: their I/O fails, and they
//! are never collapsed onto. Breaks of every connection go to the channel from
//! [`SmbRdr::subscribe_breaks`].
//!
//! How the daemon uses it:
//! ```no_run
//! # async fn demo() {
//! use std::sync::Arc;
//! use rdr_smb::{SmbConfig, SmbRdr};
//! let smb = Arc::new(SmbRdr::new(SmbConfig::default())); // port 445, linger 60 s, SMB 2.0.2–3.1.1
//! let mut breaks = smb.subscribe_breaks(); // optional: flush on W loss, then drop the event
//! tokio::spawn(async move { while let Some(ev) = breaks.recv().await { drop(ev) } });
//! let rdbss = rdr_core::Rdbss::new(smb, rdr_core::RdbssConfig::default());
//! # let _ = rdbss; }
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rdr_core::minirdr::{
    ChangeEvent, CreateParams, CreateResult, DirEntry, FileInfo, LockRange, MiniRedirector,
    MrxContext, RxPath, SetInfo, SrvCallParams, VNetRootCreated, VNetRootParams, VolumeInfo,
};
use rdr_core::{NtStatus, RxContext, RxError, RxResult};
use tokio::sync::mpsc;

use crate::client::{ClientConfig, SmbClient};
use crate::lease::{BreakEvent, BreakSink};
use crate::open::Open;
use crate::session::{Identity, Session};
use crate::tree::Tree;

/// Settings of the SMB mini-redirector. `Default` suits the daemon.
#[derive(Debug, Clone)]
pub struct SmbConfig {
    /// TCP port when the connection does not name one (445).
    pub port: u16,
    /// How long a server connection without shares stays open for reuse (60 s).
    pub linger: Duration,
    /// Connection, dialect, signing and I/O settings.
    pub client: ClientConfig,
}

impl Default for SmbConfig {
    fn default() -> Self {
        SmbConfig {
            port: 445,
            linger: Duration::from_secs(60),
            client: ClientConfig::default(),
        }
    }
}

/// The SMB 2/3 mini-redirector.
pub struct SmbRdr {
    config: SmbConfig,
    breaks: BreakSink,
    /// Every connection this mini-redirector made (weak: observability only, see
    /// [`SmbRdr::clients`]).
    clients: Mutex<Vec<std::sync::Weak<SmbClient>>>,
}

struct SessionSlot {
    session: Arc<Session>,
    /// Who, to set the session up again after a reconnect.
    who: Identity,
    trees: usize,
}

/// SrvCall context: the connection (replaced by a reconnect) and its sessions by
/// (user, domain).
pub struct SmbSrvCall {
    client: Mutex<Arc<SmbClient>>,
    server: String,
    port: u16,
    /// One reconnect at a time.
    reconnecting: tokio::sync::Mutex<()>,
    sessions: tokio::sync::Mutex<HashMap<(String, String), SessionSlot>>,
}

impl SmbSrvCall {
    /// The current connection.
    pub fn client(&self) -> Arc<SmbClient> {
        self.client.lock().clone()
    }
}

/// NetRoot context: the share.
pub struct SmbNetRoot {
    share: String,
}

/// VNetRoot context: one identity's tree on the share.
pub struct SmbVNetRoot {
    srv: Arc<SmbSrvCall>,
    /// The tree connect (replaced by a reconnect).
    tree: Mutex<Arc<Tree>>,
    key: (String, String),
    /// Times the view was connected again after its transport died.
    reconnects: std::sync::atomic::AtomicU64,
    /// The view's durable opens, reclaimed on the new tree after a reconnect (keyed by the
    /// open's address; an open leaves when its SrvOpen context is dropped).
    durable: Mutex<HashMap<usize, std::sync::Weak<Open>>>,
    /// One reconnect of the view at a time: the next caller finds the tree it made, with the
    /// durable opens already reclaimed on it (no second tree, no open made meanwhile that
    /// would stop the server from reclaiming).
    reconnecting: tokio::sync::Mutex<()>,
}

/// How long a reclaim refused with STATUS_OBJECT_NAME_NOT_FOUND is asked again: the server
/// keeps a durable handle as its old connection's until it sees that connection reset.
const RECLAIM_PATIENCE: Duration = Duration::from_secs(3);

/// SrvOpen context: the server open and the view it was made through (a durable open's I/O
/// reconnects that view and reclaims the open when the connection died).
pub struct SmbSrvOpen {
    open: Arc<Open>,
    view: std::sync::Weak<SmbVNetRoot>,
}

impl SmbSrvOpen {
    /// The server open.
    pub fn open(&self) -> &Arc<Open> {
        &self.open
    }
}

impl Drop for SmbSrvOpen {
    fn drop(&mut self) {
        if let Some(v) = self.view.upgrade() {
            v.durable.lock().remove(&(Arc::as_ptr(&self.open) as usize));
        }
    }
}

impl SmbVNetRoot {
    /// The current tree connect.
    pub fn tree(&self) -> Arc<Tree> {
        self.tree.lock().clone()
    }
}

fn bad_context(what: &str) -> RxError {
    RxError::status(
        NtStatus::STATUS_INVALID_PARAMETER,
        format!("smb: {what} context of another mini-redirector"),
    )
}

fn srv_call(ctx: &MrxContext) -> RxResult<Arc<SmbSrvCall>> {
    ctx.clone()
        .downcast::<SmbSrvCall>()
        .map_err(|_| bad_context("SrvCall"))
}

fn vnr(ctx: &MrxContext) -> RxResult<&SmbVNetRoot> {
    (**ctx)
        .downcast_ref::<SmbVNetRoot>()
        .ok_or_else(|| bad_context("VNetRoot"))
}

fn smb_srv_open(ctx: &MrxContext) -> RxResult<&SmbSrvOpen> {
    (**ctx)
        .downcast_ref::<SmbSrvOpen>()
        .ok_or_else(|| bad_context("SrvOpen"))
}

fn open(ctx: &MrxContext) -> RxResult<&Open> {
    smb_srv_open(ctx).map(|s| &*s.open)
}

/// Runs a handle operation; when it failed because the connection died under a durable open
/// (the open's connection is dead, or the open was reclaimed meanwhile), the open is reclaimed
/// (`SmbRdr::ready`) and the operation runs once more. Only for operations that may run twice
/// (reads, writes at an offset, flush, queries).
macro_rules! retried {
    ($rdr:expr, $so:expr, $ctx:expr, |$o:ident| $op:expr) => {{
        let so: &SmbSrvOpen = $so;
        $rdr.ready(so, $ctx).await;
        let before = so.open.generation();
        let first = {
            let $o: &Open = &so.open;
            $op
        };
        match first {
            Err(_)
                if so.open.is_durable()
                    && (so.open.connection_lost() || so.open.generation() != before) =>
            {
                $rdr.ready(so, $ctx).await;
                let $o: &Open = &so.open;
                $op
            }
            r => r,
        }
    }};
}

impl SmbRdr {
    /// A mini-redirector with `config`.
    pub fn new(config: SmbConfig) -> Self {
        SmbRdr {
            config,
            breaks: Arc::new(Mutex::new(None)),
            clients: Mutex::new(Vec::new()),
        }
    }

    /// The connections this mini-redirector made that still exist (observability: lets tests
    /// and diagnostics read a connection's counters, e.g. CANCELs sent).
    pub fn clients(&self) -> Vec<Arc<SmbClient>> {
        let mut v = self.clients.lock();
        v.retain(|w| w.strong_count() > 0);
        v.iter().filter_map(std::sync::Weak::upgrade).collect()
    }

    /// The configuration.
    pub fn config(&self) -> &SmbConfig {
        &self.config
    }

    /// Receives every oplock and lease break of every connection (a new call replaces the
    /// previous subscriber). Each event is
    /// acknowledged to the server once released or dropped (bounded by the break budget), so
    /// the consumer can flush dirty data first; with no subscriber, breaks are acknowledged
    /// at once.
    pub fn subscribe_breaks(&self) -> mpsc::UnboundedReceiver<BreakEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.breaks.lock() = Some(tx);
        rx
    }

    /// The connection behind a SrvCall context (tests, inventory).
    pub fn client_of(srv_call: &MrxContext) -> Option<Arc<SmbClient>> {
        (**srv_call)
            .downcast_ref::<SmbSrvCall>()
            .map(SmbSrvCall::client)
    }

    async fn connect(&self, server: &str, port: u16) -> RxResult<Arc<SmbClient>> {
        let client = SmbClient::connect(server, port, self.config.client.clone()).await?;
        client.leases.share_sink(self.breaks.clone());
        self.clients.lock().push(Arc::downgrade(&client));
        Ok(client)
    }

    /// The server's connection, made again first when it died (one reconnect at a time; the
    /// views and sessions of the old one follow when they are next used).
    async fn live_client(&self, srv: &SmbSrvCall) -> RxResult<Arc<SmbClient>> {
        let client = srv.client();
        if !client.is_dead() {
            return Ok(client);
        }
        let _one = srv.reconnecting.lock().await;
        let client = srv.client();
        if !client.is_dead() {
            return Ok(client); // another task reconnected meanwhile
        }
        let client = self.connect(&srv.server, srv.port).await?;
        *srv.client.lock() = client.clone();
        Ok(client)
    }

    /// The view's tree, reconnected first when its connection died: a new connection (one
    /// per server, shared by its views), the identity's session set up again (naming the old
    /// one), the tree connected again, and the view's durable opens reclaimed on it before
    /// anyone else can use it. One reconnect per view at a time. Fails as a new connection
    /// would (refused, logon failure) when the server is still away.
    async fn live_tree(&self, v: &SmbVNetRoot, ctx: &RxContext) -> RxResult<Arc<Tree>> {
        let tree = v.tree();
        if !tree.session().client().is_dead() {
            return Ok(tree);
        }
        let unc = tree.unc();
        let work = async {
            let _one = v.reconnecting.lock().await;
            let current = v.tree();
            if !current.session().client().is_dead() {
                return Ok(current); // another task reconnected this view meanwhile
            }
            let srv = &v.srv;
            let client = self.live_client(srv).await?;
            let session = {
                let mut sessions = srv.sessions.lock().await;
                let slot = sessions.get_mut(&v.key).ok_or_else(|| {
                    RxError::status(
                        NtStatus::STATUS_USER_SESSION_DELETED,
                        format!("{unc}: the view's session is gone"),
                    )
                })?;
                if !Arc::ptr_eq(slot.session.client(), &client) || slot.session.is_logged_off() {
                    let previous = slot.session.id();
                    slot.session = Session::setup_replacing(&client, &slot.who, previous).await?;
                }
                slot.session.clone()
            };
            let t = Tree::connect(&session, tree.share()).await?;
            let opens: Vec<Arc<Open>> = v
                .durable
                .lock()
                .values()
                .filter_map(std::sync::Weak::upgrade)
                .collect();
            reclaim_all(opens, t.clone()).await;
            *v.tree.lock() = t.clone();
            v.reconnects
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(t)
        };
        ctx.run(&format!("reconnect to {unc}"), work).await
    }

    /// An open of a file this client created asks for its durable handle once it has lived
    /// [`crate::open::DURABLE_AFTER`] (`Open::make_durable`), in the background, at its
    /// next read or write (not at a flush: that is mostly a close); from then on it is
    /// reclaimed after a reconnect like any durable open.
    fn durable_soon(&self, srv_open: &MrxContext) {
        let Ok(so) = smb_srv_open(srv_open) else {
            return;
        };
        if !so.open.due_for_durable() {
            return;
        }
        let ctx = srv_open.clone();
        tokio::spawn(async move {
            let Some(so) = (*ctx).downcast_ref::<SmbSrvOpen>() else {
                return;
            };
            // Not granted, or it failed: the open goes on without one. Granted: registered
            // while the SrvOpen lives (its drop takes the entry out).
            if let Ok(true) = so.open.make_durable().await
                && let Some(v) = so.view.upgrade()
            {
                v.durable
                    .lock()
                    .insert(Arc::as_ptr(&so.open) as usize, Arc::downgrade(&so.open));
            }
        });
    }

    /// Before a handle operation: a durable open whose connection died is reclaimed first,
    /// by reconnecting its view, both bounded by `ctx`. Other opens are left as they are.
    async fn ready(&self, so: &SmbSrvOpen, ctx: &RxContext) {
        if !so.open.is_durable() || !so.open.connection_lost() {
            return;
        }
        let Some(v) = so.view.upgrade() else { return };
        let Ok(tree) = self.live_tree(&v, ctx).await else {
            return;
        };
        // The view was reconnected before without this open (a reclaim pass cut short):
        // this one alone.
        if so.open.connection_lost() {
            let _ = ctx
                .run(so.open.path(), async {
                    reclaim_all(vec![so.open.clone()], tree).await;
                    Ok(())
                })
                .await;
        }
    }
}

#[async_trait]
impl MiniRedirector for SmbRdr {
    fn name(&self) -> &'static str {
        "smb"
    }

    fn srv_call_linger(&self) -> Duration {
        self.config.linger
    }

    fn srv_open_key(&self, srv_open: &MrxContext) -> Option<Vec<u8>> {
        open(srv_open).ok()?.break_key()
    }

    async fn create_srv_call(
        &self,
        params: &SrvCallParams,
        ctx: &RxContext,
    ) -> RxResult<MrxContext> {
        let port = params.port.unwrap_or(self.config.port);
        let what = format!("connect to \\\\{}", params.server);
        let client = ctx.run(&what, self.connect(&params.server, port)).await?;
        Ok(Arc::new(SmbSrvCall {
            client: Mutex::new(client),
            server: params.server.clone(),
            port,
            reconnecting: tokio::sync::Mutex::new(()),
            sessions: tokio::sync::Mutex::new(HashMap::new()),
        }))
    }

    fn transport_lost(&self, v_net_root: &MrxContext) -> bool {
        vnr(v_net_root).is_ok_and(|v| v.tree().session().client().is_dead())
    }

    async fn reconnect(&self, v_net_root: &MrxContext, ctx: &RxContext) -> RxResult<()> {
        let v = vnr(v_net_root)?;
        self.live_tree(v, ctx).await.map(|_| ())
    }

    fn reconnects(&self, v_net_root: &MrxContext) -> u64 {
        vnr(v_net_root).map_or(0, |v| {
            v.reconnects.load(std::sync::atomic::Ordering::Relaxed)
        })
    }

    fn srv_open_lost(&self, srv_open: &MrxContext) -> bool {
        open(srv_open).is_ok_and(|o| o.tree().session().client().is_dead())
    }

    async fn finalize_srv_call(&self, srv_call: &MrxContext, _force: bool) {
        if let Ok(s) = self::srv_call(srv_call) {
            s.client().shutdown().await;
        }
    }

    async fn create_v_net_root(
        &self,
        srv_call: &MrxContext,
        net_root: Option<&MrxContext>,
        params: &VNetRootParams,
        ctx: &RxContext,
    ) -> RxResult<VNetRootCreated> {
        let srv = self::srv_call(srv_call)?;
        let c = &params.credentials;
        let who = Identity {
            user: c.user.clone().unwrap_or_default(),
            domain: c.domain.clone().unwrap_or_default(),
            password: c
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default(),
        };
        let key = (who.user.to_lowercase(), who.domain.to_lowercase());
        let unc = format!("\\\\{}\\{}", srv.server, params.share);
        let work = async {
            // A connection that died while this SrvCall lingered is made again first.
            let client = self.live_client(&srv).await?;
            let session = {
                let mut sessions = srv.sessions.lock().await;
                match sessions.get_mut(&key) {
                    Some(slot) if !slot.session.is_logged_off() => {
                        if slot.who.password != who.password {
                            return Err(RxError::status(
                                NtStatus::STATUS_NETWORK_CREDENTIAL_CONFLICT,
                                format!(
                                    "{unc}: user {:?} is already connected to this server with another password",
                                    who.user
                                ),
                            ));
                        }
                        if !Arc::ptr_eq(slot.session.client(), &client) {
                            // The identity's session went with the old connection.
                            let previous = slot.session.id();
                            slot.session =
                                Session::setup_replacing(&client, &slot.who, previous).await?;
                        }
                        slot.trees += 1;
                        slot.session.clone()
                    }
                    _ => {
                        let s = Session::setup(&client, &who).await?;
                        sessions.insert(
                            key.clone(),
                            SessionSlot {
                                session: s.clone(),
                                who: who.clone(),
                                trees: 1,
                            },
                        );
                        s
                    }
                }
            };
            match Tree::connect(&session, &params.share).await {
                Ok(t) => Ok(t),
                Err(e) => {
                    release_session(&srv, &key).await;
                    Err(e)
                }
            }
        };
        let tree = ctx.run(&unc, work).await?;
        let net_root: Option<MrxContext> = match net_root {
            Some(_) => None,
            None => Some(Arc::new(SmbNetRoot {
                share: params.share.clone(),
            })),
        };
        Ok(VNetRootCreated {
            net_root,
            v_net_root: Arc::new(SmbVNetRoot {
                srv,
                tree: Mutex::new(tree),
                key,
                reconnects: std::sync::atomic::AtomicU64::new(0),
                durable: Mutex::new(HashMap::new()),
                reconnecting: tokio::sync::Mutex::new(()),
            }),
        })
    }

    async fn finalize_net_root(&self, net_root: &MrxContext) {
        let _ = (**net_root).downcast_ref::<SmbNetRoot>().map(|n| &n.share);
    }

    async fn finalize_v_net_root(&self, v_net_root: &MrxContext) {
        let Ok(v) = vnr(v_net_root) else { return };
        let tree = v.tree();
        if !tree.session().client().is_dead() {
            let _ = tokio::time::timeout(Duration::from_secs(10), tree.disconnect()).await;
        }
        release_session(&v.srv, &v.key).await;
    }

    async fn create(
        &self,
        v_net_root: &MrxContext,
        path: &RxPath,
        params: &CreateParams,
        ctx: &RxContext,
    ) -> RxResult<CreateResult> {
        let v = vnr(v_net_root)?;
        let tree = self.live_tree(v, ctx).await?;
        let o = Arc::new(
            ctx.run(&tree.unc_path(path), tree.create(path, params))
                .await?,
        );
        let view = match v_net_root.clone().downcast::<SmbVNetRoot>() {
            Ok(v) => Arc::downgrade(&v),
            Err(_) => std::sync::Weak::new(),
        };
        if o.is_durable() {
            v.durable
                .lock()
                .insert(Arc::as_ptr(&o) as usize, Arc::downgrade(&o));
        }
        Ok(CreateResult {
            info: o.info().clone(),
            action: o.action(),
            buffering: o.buffering(),
            srv_open: Arc::new(SmbSrvOpen { open: o, view }),
        })
    }

    async fn close_srv_open(&self, srv_open: &MrxContext) -> RxResult<()> {
        let o = open(srv_open)?;
        match tokio::time::timeout(Duration::from_secs(30), o.close()).await {
            Ok(r) => r,
            Err(_) => Err(RxError::status(
                NtStatus::STATUS_IO_TIMEOUT,
                format!("{}: CLOSE: no answer", o.tree().unc_path(o.path())),
            )),
        }
    }

    async fn read(
        &self,
        srv_open: &MrxContext,
        offset: u64,
        len: u32,
        ctx: &RxContext,
    ) -> RxResult<Bytes> {
        self.durable_soon(srv_open);
        let so = smb_srv_open(srv_open)?;
        retried!(self, so, ctx, |o| ctx
            .run(o.path(), o.read(offset, len))
            .await)
    }

    async fn write(
        &self,
        srv_open: &MrxContext,
        offset: u64,
        data: Bytes,
        ctx: &RxContext,
    ) -> RxResult<u32> {
        self.durable_soon(srv_open);
        let so = smb_srv_open(srv_open)?;
        let n = retried!(self, so, ctx, |o| ctx
            .run(o.path(), o.write(offset, data.clone()))
            .await)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn flush(&self, srv_open: &MrxContext, ctx: &RxContext) -> RxResult<()> {
        let so = smb_srv_open(srv_open)?;
        retried!(self, so, ctx, |o| ctx.run(o.path(), o.flush()).await)
    }

    async fn copy_range(
        &self,
        src: &MrxContext,
        src_offset: u64,
        dst: &MrxContext,
        dst_offset: u64,
        len: u64,
        ctx: &RxContext,
    ) -> RxResult<u64> {
        let (s, d) = (smb_srv_open(src)?, smb_srv_open(dst)?);
        self.ready(s, ctx).await;
        self.ready(d, ctx).await;
        let (s, d) = (&*s.open, &*d.open);
        // A resume key names an open within its session only.
        if !Arc::ptr_eq(s.tree().session(), d.tree().session()) {
            return Err(RxError::status(
                NtStatus::STATUS_NOT_SUPPORTED,
                format!("{}: server-side copy from another session", d.path()),
            ));
        }
        ctx.run(d.path(), d.copy_from(s, src_offset, dst_offset, len))
            .await
    }

    async fn query_info(&self, srv_open: &MrxContext, ctx: &RxContext) -> RxResult<FileInfo> {
        let so = smb_srv_open(srv_open)?;
        retried!(self, so, ctx, |o| ctx.run(o.path(), o.query_info()).await)
    }

    async fn query_path_info(
        &self,
        v_net_root: &MrxContext,
        path: &RxPath,
        ctx: &RxContext,
    ) -> RxResult<FileInfo> {
        let v = vnr(v_net_root)?;
        let tree = self.live_tree(v, ctx).await?;
        ctx.run(path, tree.query_path_info(path)).await
    }

    async fn delete_file(
        &self,
        v_net_root: &MrxContext,
        path: &RxPath,
        ctx: &RxContext,
    ) -> RxResult<()> {
        let v = vnr(v_net_root)?;
        let tree = self.live_tree(v, ctx).await?;
        ctx.run(path, tree.delete_file(path)).await
    }

    async fn set_info(
        &self,
        srv_open: &MrxContext,
        info: &SetInfo,
        ctx: &RxContext,
    ) -> RxResult<()> {
        let so = smb_srv_open(srv_open)?;
        self.ready(so, ctx).await;
        let o = &*so.open;
        ctx.run(o.path(), o.set_info(info)).await
    }

    async fn query_directory(
        &self,
        srv_open: &MrxContext,
        pattern: Option<&str>,
        restart: bool,
        ctx: &RxContext,
    ) -> RxResult<Vec<DirEntry>> {
        let so = smb_srv_open(srv_open)?;
        self.ready(so, ctx).await;
        let o = &*so.open;
        ctx.run(o.path(), o.query_directory(pattern, restart)).await
    }

    async fn notify_change(
        &self,
        srv_open: &MrxContext,
        filter: u32,
        watch_tree: bool,
        ctx: &RxContext,
    ) -> RxResult<Vec<ChangeEvent>> {
        let so = smb_srv_open(srv_open)?;
        self.ready(so, ctx).await;
        let o = &*so.open;
        o.notify_change(filter, watch_tree, ctx).await
    }

    async fn lock(
        &self,
        srv_open: &MrxContext,
        range: LockRange,
        wait: bool,
        ctx: &RxContext,
    ) -> RxResult<()> {
        let so = smb_srv_open(srv_open)?;
        self.ready(so, ctx).await;
        let o = &*so.open;
        o.lock(range, wait, ctx).await
    }

    async fn unlock(
        &self,
        srv_open: &MrxContext,
        range: LockRange,
        ctx: &RxContext,
    ) -> RxResult<()> {
        let so = smb_srv_open(srv_open)?;
        self.ready(so, ctx).await;
        let o = &*so.open;
        ctx.run(o.path(), o.unlock(range)).await
    }

    async fn query_volume(&self, v_net_root: &MrxContext, ctx: &RxContext) -> RxResult<VolumeInfo> {
        let v = vnr(v_net_root)?;
        let tree = self.live_tree(v, ctx).await?;
        ctx.run(&tree.unc(), tree.query_volume()).await
    }
}

/// Reclaims `opens` whose connection died on `tree` (a new tree connect of their share), in a
/// task of its own: a caller that gives up waiting does not cut a reclaim short between the
/// server's answer and the open's new binding. The server may not have seen the old
/// connection reset yet (it refuses with STATUS_OBJECT_NAME_NOT_FOUND until then): refused
/// ones are asked again for `RECLAIM_PATIENCE`, then given up, like those the server refuses
/// otherwise. An open that cannot be reclaimed is lost as before (its I/O fails).
async fn reclaim_all(opens: Vec<Arc<Open>>, tree: Arc<Tree>) {
    let pass = async move {
        let mut left: Vec<Arc<Open>> = opens
            .into_iter()
            .filter(|o| o.is_durable() && o.connection_lost())
            .collect();
        let until = tokio::time::Instant::now() + RECLAIM_PATIENCE;
        let mut pause = Duration::from_millis(50);
        loop {
            let mut refused = Vec::new();
            for o in left {
                match o.reclaim(&tree).await {
                    Ok(()) => {}
                    Err(e)
                        if e.nt_status() == NtStatus::STATUS_OBJECT_NAME_NOT_FOUND
                            && o.is_durable() =>
                    {
                        refused.push(o)
                    }
                    Err(_) => {
                        // Answered by the server (not a connection that died again): final.
                        if !tree.session().client().is_dead() {
                            o.give_up();
                        }
                    }
                }
            }
            if refused.is_empty() || tree.session().client().is_dead() {
                return;
            }
            if tokio::time::Instant::now() + pause > until {
                for o in refused {
                    o.give_up();
                }
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
            left = refused;
        }
    };
    let _ = tokio::spawn(pass).await;
}

/// Drops one tree's use of its session; logs the session off with its last tree.
async fn release_session(srv: &SmbSrvCall, key: &(String, String)) {
    let gone = {
        let mut sessions = srv.sessions.lock().await;
        let last = match sessions.get_mut(key) {
            Some(slot) => {
                slot.trees = slot.trees.saturating_sub(1);
                slot.trees == 0
            }
            None => false,
        };
        if last {
            sessions.remove(key).map(|s| s.session)
        } else {
            None
        }
    };
    if let Some(s) = gone
        && !s.client().is_dead()
    {
        let _ = tokio::time::timeout(Duration::from_secs(10), s.logoff()).await;
    }
}
