//! Opens: CREATE with a lease (v2 on 3.x, v1 on 2.1) or a batch oplock (2.0.2), and every
//! handle operation — pipelined multi-credit READ/WRITE, FLUSH, CLOSE, QUERY/SET_INFO,
//! QUERY_DIRECTORY, CHANGE_NOTIFY and LOCK with SMB2 CANCEL when the caller gives up.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use rdr_core::minirdr::{
    BufferingState, ChangeEvent, CreateAction, CreateParams, DirEntry, FileInfo, LockRange, SetInfo,
};
use rdr_core::{NtStatus, RxContext, RxError, RxResult};

use crate::client::check;
use crate::conn::Pending;
use crate::lease::LeaseEntry;
use crate::proto::{
    self, AccessMask, ChangeNotifyRequest, ChangeNotifyResponse, CloseRequest, CompletionFilter,
    CopyChunk, CopyChunkCopy, CopyChunkResponse, CreateDisposition, CreateOptions, CreateRequest,
    CreateResponse, Dialect, DurableV2, FileAllInformation, FileAttributes, FileBasicInformation,
    FileDispositionInformation, FileEndOfFileInformation, FileId, FileInfoClass,
    FileRenameInformation, FileTime, FlushRequest, IoctlResponse, Lease, LeaseFlags, LeaseState,
    LeaseV2, LockElement, LockFlags, LockRequest, Message, OplockLevel, QueryDirectoryFlags,
    QueryDirectoryRequest, QueryDirectoryResponse, QueryInfoRequest, QueryInfoResponse,
    ReadRequest, ReadResponse, SetInfoRequest, ShareAccess, WATCH_TREE, WriteRequest,
    WriteResponse,
};
use crate::tree::Tree;

/// Where an open lives on the server: its tree (connection and session) and FileId. A durable
/// open is bound again, to a new tree, when it is reclaimed after a reconnect.
struct Binding {
    tree: Arc<Tree>,
    file_id: FileId,
    /// Counts the reclaims: an operation that failed on an older binding may run again.
    generation: u64,
}

/// What reclaiming a durable open takes ([MS-SMB2] 3.2.4.4): its CreateGuid and the request it
/// was opened with, sent again with a DH2C context.
struct Durable {
    create_guid: [u8; 16],
    request: CreateRequest,
    /// The lease state granted at open, asked for again by a reclaim.
    granted: LeaseState,
    /// The server refused a reclaim: the handle is gone for good.
    refused: AtomicBool,
}

/// How long a file this client created itself stays open before it asks for a durable
/// handle ([`Open::make_durable`]). Samba spends about a tenth of a small-file create on
/// a durable handle; most new files are closed well within this.
pub const DURABLE_AFTER: Duration = Duration::from_secs(1);

/// How long `make_durable` waits for each answer (it holds off a close meanwhile).
const REPLACE_PATIENCE: Duration = Duration::from_secs(10);

/// An open of a file this client created (FILE_CREATE), which asks for its durable handle
/// only once it has lived [`DURABLE_AFTER`]: the request to open it again, and when it was
/// made.
struct Deferred {
    /// The CREATE request (FILE_OPEN, without contexts) that opens the file again.
    reopen: CreateRequest,
    born: std::time::Instant,
    /// One attempt only.
    tried: AtomicBool,
}

/// An open handle on the server.
pub struct Open {
    at: parking_lot::RwLock<Binding>,
    /// Set when the server granted a durable handle, at open or later (`make_durable`).
    durable: std::sync::OnceLock<Durable>,
    deferred: Option<Deferred>,
    /// Byte-range locks that may be held: counted when asked for, uncounted when the server
    /// refuses one or one is released (so it errs on "some"). A handle with locks is neither
    /// reclaimed nor replaced.
    locks: std::sync::atomic::AtomicUsize,
    /// A reclaim, a replacement (`make_durable`) and a close of the open never overlap (a
    /// handle reclaimed while it was being closed would stay open on the server).
    serial: tokio::sync::Mutex<()>,
    path: String,
    lease: Option<Arc<LeaseEntry>>,
    oplock: bool,
    closed: AtomicBool,
    info: FileInfo,
    action: CreateAction,
    buffering: BufferingState,
}

impl std::fmt::Debug for Open {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Open")
            .field("path", &self.path)
            .field("file_id", &self.file_id())
            .field("durable", &self.durable.get().is_some())
            .field("buffering", &self.buffering)
            .finish()
    }
}

pub(crate) fn time(t: FileTime) -> SystemTime {
    t.to_system_time().unwrap_or(UNIX_EPOCH)
}

pub(crate) fn file_info_from_all(a: &FileAllInformation) -> FileInfo {
    FileInfo {
        is_dir: a.standard.directory || a.basic.file_attributes.contains(FileAttributes::DIRECTORY),
        size: a.standard.end_of_file,
        allocation_size: a.standard.allocation_size,
        created: time(a.basic.creation_time),
        accessed: time(a.basic.last_access_time),
        modified: time(a.basic.last_write_time),
        changed: time(a.basic.change_time),
        attributes: a.basic.file_attributes.bits(),
        file_id: a.index_number,
        nlink: a.standard.number_of_links.max(1),
        mode: None,
    }
}

pub(crate) fn open_error_path(tree: &Tree, path: &str, op: &str) -> String {
    format!("{}: {op} as {:?}", tree.unc_path(path), tree.session.user)
}

/// The bytes of a FileId as a break key (persistent then volatile, little-endian).
pub(crate) fn file_id_key(id: &FileId) -> Vec<u8> {
    let mut k = id.persistent.to_le_bytes().to_vec();
    k.extend_from_slice(&id.volatile.to_le_bytes());
    k
}

pub(crate) fn buffering_of(state: LeaseState) -> BufferingState {
    BufferingState {
        read_caching: state.contains(LeaseState::READ_CACHING),
        write_caching: state.contains(LeaseState::WRITE_CACHING),
        handle_caching: state.contains(LeaseState::HANDLE_CACHING),
    }
}

pub(crate) fn oplock_buffering(level: OplockLevel) -> BufferingState {
    match level {
        OplockLevel::BATCH => buffering_of(
            LeaseState::READ_CACHING | LeaseState::WRITE_CACHING | LeaseState::HANDLE_CACHING,
        ),
        OplockLevel::EXCLUSIVE => {
            buffering_of(LeaseState::READ_CACHING | LeaseState::WRITE_CACHING)
        }
        OplockLevel::II => buffering_of(LeaseState::READ_CACHING),
        _ => BufferingState::default(),
    }
}

/// Builds the CREATE request for `params` (without lease contexts).
pub(crate) fn create_request(path: &str, params: &CreateParams) -> CreateRequest {
    CreateRequest {
        desired_access: AccessMask::from_bits_retain(params.access.bits()),
        file_attributes: FileAttributes::from_bits_retain(params.attributes),
        share_access: ShareAccess::from_bits_retain(params.share.bits()),
        create_disposition: CreateDisposition(params.disposition as u32),
        create_options: CreateOptions::from_bits_retain(params.options.bits()),
        name: path.to_string(),
        ..CreateRequest::default()
    }
}

/// FileInfo from a CREATE response.
pub(crate) fn file_info_from_create(c: &CreateResponse) -> FileInfo {
    let file_id = c
        .on_disk_id()
        .ok()
        .flatten()
        .map(|d| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&d.disk_file_id[..8]);
            u64::from_le_bytes(b)
        })
        .unwrap_or(0);
    FileInfo {
        is_dir: c.file_attributes.contains(FileAttributes::DIRECTORY),
        size: c.end_of_file,
        allocation_size: c.allocation_size,
        created: time(c.creation_time),
        accessed: time(c.last_access_time),
        modified: time(c.last_write_time),
        changed: time(c.change_time),
        attributes: c.file_attributes.bits(),
        file_id,
        nlink: 1,
        mode: None,
    }
}

pub(crate) fn create_action(a: proto::CreateAction) -> CreateAction {
    match a {
        proto::CreateAction::SUPERSEDED => CreateAction::Superseded,
        proto::CreateAction::CREATED => CreateAction::Created,
        proto::CreateAction::OVERWRITTEN => CreateAction::Overwritten,
        _ => CreateAction::Opened,
    }
}

impl Tree {
    /// Opens or creates `path` (components joined by `\`, empty for the share root).
    pub async fn create(self: &Arc<Self>, path: &str, params: &CreateParams) -> RxResult<Open> {
        let client = &self.session.client;
        let mut req = create_request(path, params);
        req.contexts.push(proto::query_on_disk_id_request());
        let wants_data = params.access.can_read() || params.access.can_write();
        let dir = params
            .options
            .contains(rdr_core::minirdr::CreateOptions::DIRECTORY_FILE);
        let mut lease = None;
        let mut oplock = false;
        // The CreateGuid and the request as it was before the lease and durable contexts,
        // which a reclaim sends again.
        let mut durable_ask = None;
        let mut deferred = None;
        // A file created here has no other open: its durable handle can wait (make_durable).
        let new_file = params.disposition == rdr_core::minirdr::CreateDisposition::Create
            && !params
                .options
                .contains(rdr_core::minirdr::CreateOptions::DELETE_ON_CLOSE);
        if client.config.request_leases && wants_data && !dir {
            if client.neg.leasing() {
                let e = client.leases.acquire(&self.share, path);
                let v2 = client.neg.dialect >= Dialect::SMB3_0;
                if v2 && client.config.durable_handles && new_file {
                    let mut reopen = req.clone();
                    reopen.create_disposition = CreateDisposition::OPEN;
                    reopen.contexts.clear();
                    deferred = Some(Deferred {
                        reopen,
                        born: std::time::Instant::now(),
                        tried: AtomicBool::new(false),
                    });
                } else if v2 && client.config.durable_handles {
                    // Durable where the server allows it: a dropped connection does not take
                    // the open (nor its lease and locks) with it.
                    let mut guid = [0u8; 16];
                    let _ = getrandom::fill(&mut guid);
                    durable_ask = Some((guid, req.clone()));
                    req.contexts.push(
                        DurableV2 {
                            timeout: 0,
                            flags: 0,
                            create_guid: guid,
                        }
                        .to_request_context(),
                    );
                }
                req.requested_oplock_level = OplockLevel::LEASE;
                req.contexts.push(
                    Lease {
                        key: e.key,
                        state: LeaseState::READ_CACHING
                            | LeaseState::WRITE_CACHING
                            | LeaseState::HANDLE_CACHING,
                        flags: LeaseFlags::empty(),
                        duration: 0,
                        v2: v2.then(LeaseV2::default),
                    }
                    .to_context(),
                );
                lease = Some(e);
            } else {
                req.requested_oplock_level = OplockLevel::BATCH;
                oplock = true;
            }
        }
        let res = self.send(&req).await;
        let rsp =
            match res.and_then(|r| check(&r, || open_error_path(self, path, "open")).map(|_| r)) {
                Ok(r) => r,
                Err(e) => {
                    if let Some(l) = &lease {
                        client.leases.release(l);
                    }
                    return Err(e);
                }
            };
        let body: CreateResponse = match rsp.body() {
            Ok(b) => b,
            Err(e) => {
                if let Some(l) = &lease {
                    client.leases.release(l);
                }
                return Err(e.into());
            }
        };
        let mut buffering = BufferingState::default();
        if let Some(l) = &lease {
            match body.lease().ok().flatten() {
                Some(g) if body.oplock_level == OplockLevel::LEASE => {
                    let epoch = g.v2.as_ref().map(|v| v.epoch).unwrap_or(0);
                    l.granted(g.state, epoch, self);
                    buffering = buffering_of(g.state);
                }
                _ => {
                    client.leases.release(l);
                    lease = None;
                }
            }
        }
        if oplock {
            if body.oplock_level == OplockLevel::NONE {
                oplock = false;
            } else {
                client
                    .leases
                    .add_oplock(body.file_id, body.oplock_level, self, path);
                buffering = oplock_buffering(body.oplock_level);
            }
        }
        // Durable only when granted, and only with the lease it rides on.
        let durable = std::sync::OnceLock::new();
        if let (Some((create_guid, request)), Some(l), Ok(Some(_))) =
            (durable_ask, &lease, body.durable_v2())
        {
            let _ = durable.set(Durable {
                create_guid,
                request,
                granted: l.state.lock().0,
                refused: AtomicBool::new(false),
            });
        }
        if lease.is_none() {
            deferred = None;
        }
        Ok(Open {
            at: parking_lot::RwLock::new(Binding {
                tree: self.clone(),
                file_id: body.file_id,
                generation: 0,
            }),
            durable,
            deferred,
            locks: std::sync::atomic::AtomicUsize::new(0),
            serial: tokio::sync::Mutex::new(()),
            path: path.to_string(),
            lease,
            oplock,
            closed: AtomicBool::new(false),
            info: file_info_from_create(&body),
            action: create_action(body.create_action),
            buffering,
        })
    }
}

impl Open {
    /// The tree and FileId the open is bound to now.
    fn at(&self) -> (Arc<Tree>, FileId) {
        let b = self.at.read();
        (b.tree.clone(), b.file_id)
    }

    /// The SMB FileId.
    pub fn file_id(&self) -> FileId {
        self.at.read().file_id
    }

    /// How many times the open was reclaimed: an operation that failed while this changed
    /// failed on the old connection.
    pub fn generation(&self) -> u64 {
        self.at.read().generation
    }

    /// Whether the server granted a durable handle: the open can be reclaimed after its
    /// connection dies (`reclaim`).
    pub fn is_durable(&self) -> bool {
        self.durable
            .get()
            .is_some_and(|d| !d.refused.load(Ordering::Relaxed))
    }

    /// Gives a durable open up after the server refused to reclaim it: it is lost like any
    /// other open of a dead connection, and never reclaimed again.
    pub fn give_up(&self) {
        if let Some(d) = self.durable.get() {
            d.refused.store(true, Ordering::Relaxed);
        }
    }

    /// Whether this open of a file the client created should now ask for its durable
    /// handle: it has lived [`DURABLE_AFTER`] and was not asked before. Answers true once.
    pub fn due_for_durable(&self) -> bool {
        let Some(d) = &self.deferred else {
            return false;
        };
        self.durable.get().is_none()
            && d.born.elapsed() >= DURABLE_AFTER
            && !self.closed.load(Ordering::SeqCst)
            && !d.tried.swap(true, Ordering::SeqCst)
    }

    /// Gives this open of a file the client created a durable handle: opens the file a second
    /// time with the same lease key (no break: one lease) and a DH2Q, moves the open to the
    /// new handle and closes the first ([MS-SMB2] 3.2.4.3.5, 3.3.5.9.10). I/O sent on the
    /// first handle meanwhile completes before the server closes it, or fails and runs again
    /// on the new one (the generation changes). True when the open is durable now; false
    /// when the server did not grant it, the lease has no handle caching, or the handle
    /// holds byte-range locks (they stay where they are).
    pub async fn make_durable(&self) -> RxResult<bool> {
        let (Some(def), Some(l)) = (&self.deferred, &self.lease) else {
            return Ok(false);
        };
        let one = self.serial.lock().await;
        self.check_open("make durable")?;
        if self.durable.get().is_some() {
            return Ok(true);
        }
        if self.connection_lost() || self.locks.load(Ordering::SeqCst) > 0 {
            return Ok(false);
        }
        let (state, epoch) = *l.state.lock();
        if !state.contains(LeaseState::HANDLE_CACHING) {
            return Ok(false);
        }
        let (tree, old) = self.at();
        let mut guid = [0u8; 16];
        let _ = getrandom::fill(&mut guid);
        let mut req = def.reopen.clone();
        req.requested_oplock_level = OplockLevel::LEASE;
        req.contexts.push(
            DurableV2 {
                timeout: 0,
                flags: 0,
                create_guid: guid,
            }
            .to_request_context(),
        );
        req.contexts.push(
            Lease {
                key: l.key,
                state,
                flags: LeaseFlags::empty(),
                duration: 0,
                v2: Some(LeaseV2 {
                    epoch,
                    ..LeaseV2::default()
                }),
            }
            .to_context(),
        );
        let m = tokio::time::timeout(REPLACE_PATIENCE, tree.send(&req))
            .await
            .map_err(|_| {
                RxError::status(
                    NtStatus::STATUS_IO_TIMEOUT,
                    self.what("open again for a durable handle: no answer"),
                )
            })??;
        check(&m, || self.what("open again for a durable handle"))?;
        let body: CreateResponse = m.body()?;
        let close_new = || CloseRequest {
            flags: 0,
            file_id: body.file_id,
        };
        let granted =
            body.oplock_level == OplockLevel::LEASE && matches!(body.durable_v2(), Ok(Some(_)));
        if !granted {
            drop(one);
            let _ = tokio::time::timeout(REPLACE_PATIENCE, tree.send(&close_new())).await;
            return Ok(false);
        }
        let moved = {
            let mut b = self.at.write();
            // A lock asked for meanwhile went to the first handle: keep it.
            let keep = b.file_id != old || self.locks.load(Ordering::SeqCst) > 0;
            if !keep {
                b.file_id = body.file_id;
                b.generation += 1;
            }
            !keep
        };
        if !moved {
            drop(one);
            let _ = tokio::time::timeout(REPLACE_PATIENCE, tree.send(&close_new())).await;
            return Ok(false);
        }
        let _ = self.durable.set(Durable {
            create_guid: guid,
            request: def.reopen.clone(),
            granted: state,
            refused: AtomicBool::new(false),
        });
        drop(one);
        // The server finishes the first handle's I/O in flight before it closes it.
        let close_old = CloseRequest {
            flags: 0,
            file_id: old,
        };
        let _ = tokio::time::timeout(REPLACE_PATIENCE, tree.send(&close_old)).await;
        Ok(true)
    }

    /// Whether the connection the open is bound to has died.
    pub fn connection_lost(&self) -> bool {
        self.at.read().tree.session.client.is_dead()
    }

    /// Path in the share.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Reclaims this durable open on `tree`, a new tree connect of the same share made after
    /// the open's connection died ([MS-SMB2] 3.2.4.4: CREATE with DH2C and the same lease
    /// key). From then on every operation of the open goes to `tree`, and its lease's breaks
    /// arrive there. Nothing to do when it was reclaimed meanwhile. Fails when the open is
    /// not durable (any more), was closed, holds byte-range locks (then it is given up), or
    /// the server no longer has it.
    pub async fn reclaim(&self, tree: &Arc<Tree>) -> RxResult<()> {
        let (Some(d), Some(l)) = (self.durable.get(), &self.lease) else {
            return Err(RxError::status(
                NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
                self.what("reclaim: not a durable handle"),
            ));
        };
        let _one = self.serial.lock().await;
        self.check_open("reclaim")?;
        if !self.connection_lost() {
            return Ok(());
        }
        if !self.is_durable() {
            return Err(RxError::status(
                NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
                self.what("reclaim: the server refused it before"),
            ));
        }
        if self.locks.load(Ordering::SeqCst) > 0 {
            // Samba 4.17 keeps such a handle where it maps byte-range locks to POSIX locks,
            // and its process for the new connection then crashes reclaiming it (taking every
            // other open of that connection along). Not risked: the open is lost, as without
            // durable handles.
            d.refused.store(true, Ordering::Relaxed);
            return Err(RxError::status(
                NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
                self.what("reclaim: the handle holds byte-range locks"),
            ));
        }
        let old = self.file_id();
        // A break of the key may follow the server's answer at once: the new connection knows
        // the key before the request goes out.
        let leases = &tree.session.client.leases;
        let adopted = leases.adopt(l);
        l.rebind(tree);
        let epoch = l.state.lock().1;
        let mut req = d.request.clone();
        // DH2C allows no other context than the lease (MS-SMB2 3.3.5.9.12).
        req.contexts.clear();
        req.requested_oplock_level = OplockLevel::LEASE;
        req.contexts
            .push(proto::durable_reconnect_v2(old, d.create_guid, 0));
        req.contexts.push(
            Lease {
                key: l.key,
                state: d.granted,
                flags: LeaseFlags::empty(),
                duration: 0,
                v2: Some(LeaseV2 {
                    epoch,
                    ..LeaseV2::default()
                }),
            }
            .to_context(),
        );
        let answer = async {
            let m = tree.send(&req).await?;
            check(&m, || {
                format!("{}: reclaim the durable handle", tree.unc_path(&self.path))
            })?;
            Ok::<CreateResponse, RxError>(m.body()?)
        }
        .await;
        let body = match answer {
            Ok(b) => b,
            Err(e) => {
                if adopted {
                    leases.unadopt(l);
                }
                return Err(e);
            }
        };
        // Whatever caching comes back: the core stopped caching under the lease when the
        // connection died (a break to none), so it never relies on more than this.
        let (state, epoch) = match body.lease().ok().flatten() {
            Some(g) if body.oplock_level == OplockLevel::LEASE => {
                (g.state, g.v2.as_ref().map_or(epoch, |v| v.epoch))
            }
            _ => (LeaseState::empty(), epoch),
        };
        l.granted(state, epoch, tree);
        let mut b = self.at.write();
        let generation = b.generation + 1;
        *b = Binding {
            tree: tree.clone(),
            file_id: body.file_id,
            generation,
        };
        Ok(())
    }

    /// The tree the open belongs to (a new one after the open was reclaimed).
    pub fn tree(&self) -> Arc<Tree> {
        self.at.read().tree.clone()
    }

    /// Metadata returned by CREATE.
    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    /// What CREATE did.
    pub fn action(&self) -> CreateAction {
        self.action
    }

    /// What the lease or oplock lets the client cache, as granted at open.
    pub fn buffering(&self) -> BufferingState {
        self.buffering
    }

    /// The lease state held now (after any breaks), if a lease was granted.
    pub fn lease_state(&self) -> Option<LeaseState> {
        self.lease.as_ref().map(|l| l.state.lock().0)
    }

    /// The key a break names this open by: its lease key, or its FileId under an oplock
    /// (`BreakEvent::srv_open_key` of a break that concerns it).
    pub fn break_key(&self) -> Option<Vec<u8>> {
        if let Some(l) = &self.lease {
            return Some(l.key.to_vec());
        }
        self.oplock.then(|| file_id_key(&self.file_id()))
    }

    /// The lease key, if a lease was granted.
    pub fn lease_key(&self) -> Option<[u8; 16]> {
        self.lease.as_ref().map(|l| l.key)
    }

    fn what(&self, op: &str) -> String {
        format!("{}: {op}", self.tree().unc_path(&self.path))
    }

    fn check_open(&self, op: &str) -> RxResult<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(RxError::HandleClosed {
                path: self.tree().unc_path(&self.path),
            });
        }
        let _ = op;
        Ok(())
    }

    fn read_request(file_id: FileId, offset: u64, len: u32) -> ReadRequest {
        ReadRequest {
            padding: 0x50,
            flags: 0,
            length: len,
            offset,
            file_id,
            minimum_count: 0,
            channel: 0,
            remaining_bytes: 0,
        }
    }

    fn read_result(&self, r: RxResult<Message>) -> RxResult<Bytes> {
        let m = r?;
        if m.header.status == NtStatus::STATUS_END_OF_FILE {
            return Ok(Bytes::new());
        }
        check(&m, || self.what("READ"))?;
        Ok(m.body::<ReadResponse>()?.data)
    }

    /// Reads up to `len` bytes at `offset`; large reads go as many pipelined requests. An empty
    /// result is end of file.
    pub async fn read(&self, offset: u64, len: u32) -> RxResult<Bytes> {
        self.check_open("READ")?;
        let (tree, fid) = self.at();
        let chunk = tree.session.client.io_chunk_read();
        if len <= chunk {
            let r = tree.send(&Self::read_request(fid, offset, len)).await;
            return self.read_result(r);
        }
        // Grown as data arrives: a large `len` on a small file must not allocate `len` up front.
        let mut out = BytesMut::with_capacity((len as usize).min(64 << 20));
        self.read_each(offset, u64::from(len), |_, b| {
            out.extend_from_slice(&b);
            Ok(())
        })
        .await?;
        Ok(out.freeze())
    }

    /// Reads `len` bytes from `offset` with many requests in flight, handing each chunk (in
    /// order) to `sink`; stops early at end of file. Returns the bytes read.
    pub async fn read_each(
        &self,
        offset: u64,
        len: u64,
        mut sink: impl FnMut(u64, Bytes) -> RxResult<()>,
    ) -> RxResult<u64> {
        self.check_open("READ")?;
        let (tree, fid) = self.at();
        let client = &tree.session.client;
        let chunk = u64::from(client.io_chunk_read());
        let depth = client.config.io_depth.max(1);
        let mut next = offset;
        let end = offset.saturating_add(len);
        let mut window: VecDeque<(u64, u32, Pending)> = VecDeque::new();
        let mut total = 0u64;
        loop {
            while window.len() < depth && next < end {
                let n = (end - next).min(chunk) as u32;
                let p = tree.submit(&Self::read_request(fid, next, n)).await?;
                window.push_back((next, n, p));
                next += u64::from(n);
            }
            let Some((off, want, p)) = window.pop_front() else {
                break;
            };
            let data = self.read_result(p.wait().await)?;
            let got = data.len() as u64;
            total += got;
            if got > 0 {
                sink(off, data)?;
            }
            if got < u64::from(want) {
                break; // end of file
            }
        }
        Ok(total)
    }

    /// Writes `data` at `offset` as pipelined requests of the negotiated size; returns the bytes
    /// written (short only if the server wrote less).
    pub async fn write(&self, offset: u64, data: Bytes) -> RxResult<u64> {
        self.check_open("WRITE")?;
        let _gate = match &self.lease {
            Some(l) => Some(l.io_gate.read().await),
            None => None,
        };
        let (tree, fid) = self.at();
        let client = &tree.session.client;
        let chunk = client.io_chunk_write() as usize;
        let depth = client.config.io_depth.max(1);
        let mut window: VecDeque<(usize, Pending)> = VecDeque::new();
        let mut pos = 0usize;
        let mut total = 0u64;
        let h = tree.header(proto::Command::WRITE);
        let opts = tree.opts();
        loop {
            while window.len() < depth && pos < data.len() {
                let n = (data.len() - pos).min(chunk);
                let req = WriteRequest {
                    offset: offset + pos as u64,
                    file_id: fid,
                    channel: 0,
                    remaining_bytes: 0,
                    flags: 0,
                    data: data.slice(pos..pos + n),
                };
                let p = client.conn.submit_write(&h, &req, &opts).await?;
                window.push_back((n, p));
                pos += n;
            }
            let Some((want, p)) = window.pop_front() else {
                break;
            };
            let m = p.wait().await?;
            check(&m, || self.what("WRITE"))?;
            let count = m.body::<WriteResponse>()?.count as usize;
            total += count as u64;
            if count < want {
                break;
            }
        }
        if data.is_empty() {
            // A zero-length write still goes to the server (it updates times, checks access).
            let req = WriteRequest {
                offset,
                file_id: fid,
                channel: 0,
                remaining_bytes: 0,
                flags: 0,
                data: Bytes::new(),
            };
            let m = client
                .conn
                .submit_write(&h, &req, &opts)
                .await?
                .wait()
                .await?;
            check(&m, || self.what("WRITE"))?;
        }
        Ok(total)
    }

    /// Makes written data durable (SMB2 FLUSH).
    pub async fn flush(&self) -> RxResult<()> {
        self.check_open("FLUSH")?;
        let (tree, fid) = self.at();
        let m = tree.send(&FlushRequest { file_id: fid }).await?;
        check(&m, || self.what("FLUSH"))
    }

    /// FSCTL_SRV_REQUEST_RESUME_KEY: the key by which a server-side copy names this open.
    pub async fn resume_key(&self) -> RxResult<[u8; proto::RESUME_KEY_LEN]> {
        self.check_open("REQUEST_RESUME_KEY")?;
        let (tree, fid) = self.at();
        let m = tree.send(&proto::resume_key_request(fid)).await?;
        check(&m, || self.what("REQUEST_RESUME_KEY"))?;
        let io: IoctlResponse = m.body()?;
        Ok(proto::parse_resume_key(&io.output)?)
    }

    /// Server-side copy (FSCTL_SRV_COPYCHUNK_WRITE): `len` bytes of `src` from `src_offset`
    /// to this open at `offset`, without the data crossing the network. Returns the bytes
    /// copied, fewer than `len` when the server stopped early. `src` must be an open of the
    /// same session, and the range must lie inside the source file.
    pub async fn copy_from(
        &self,
        src: &Open,
        src_offset: u64,
        offset: u64,
        len: u64,
    ) -> RxResult<u64> {
        self.check_open("COPYCHUNK")?;
        if len == 0 {
            return Ok(0);
        }
        if src_offset.checked_add(len).is_none() || offset.checked_add(len).is_none() {
            return Err(RxError::status(
                NtStatus::STATUS_INVALID_PARAMETER,
                self.what("COPYCHUNK past the largest offset"),
            ));
        }
        let source_key = src.resume_key().await?;
        let (tree, fid) = self.at();
        let mut limits = CopyLimits::DEFAULT;
        let mut adapted = false;
        let mut done = 0u64;
        while done < len {
            let chunks = limits.chunks(src_offset + done, offset + done, len - done);
            let batch: u64 = chunks.iter().map(|c| u64::from(c.length)).sum();
            let req = CopyChunkCopy { source_key, chunks }.to_ioctl(fid)?;
            let m = tree.send(&req).await?;
            // A server with lower limits refuses the request and names them (MS-SMB2
            // 3.3.5.15.6): retry once within them.
            if m.header.status == NtStatus::STATUS_INVALID_PARAMETER && !adapted {
                let theirs = m
                    .body::<IoctlResponse>()
                    .ok()
                    .and_then(|io| CopyChunkResponse::parse(&io.output).ok());
                if let Some(r) = theirs {
                    adapted = true;
                    limits = limits.within(&r);
                    continue;
                }
            }
            check(&m, || self.what("COPYCHUNK"))?;
            let r = CopyChunkResponse::parse(&m.body::<IoctlResponse>()?.output)?;
            let wrote = u64::from(r.total_bytes_written).min(batch);
            done += wrote;
            if wrote < batch {
                break;
            }
        }
        Ok(done)
    }

    /// Closes the handle; the lease key is forgotten with its last open.
    pub async fn close(&self) -> RxResult<()> {
        let _no_reclaim = self.serial.lock().await;
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let (tree, fid) = self.at();
        let leases = &tree.session.client.leases;
        let r = tree
            .send(&CloseRequest {
                flags: 0,
                file_id: fid,
            })
            .await;
        if let Some(l) = &self.lease {
            leases.release(l);
        }
        if self.oplock {
            leases.remove_oplock(&fid);
        }
        check(&r?, || self.what("CLOSE"))
    }

    /// Metadata of the open file (FileAllInformation).
    pub async fn query_info(&self) -> RxResult<FileInfo> {
        self.check_open("QUERY_INFO")?;
        let (tree, fid) = self.at();
        let m = tree
            .send(&QueryInfoRequest::file(
                fid,
                FileInfoClass::FileAllInformation,
                4096,
            ))
            .await?;
        check(&m, || self.what("QUERY_INFO"))?;
        let out = m.body::<QueryInfoResponse>()?.output;
        Ok(file_info_from_all(&FileAllInformation::parse(&out)?))
    }

    /// Changes times/attributes, size, name or delete disposition.
    pub async fn set_info(&self, info: &SetInfo) -> RxResult<()> {
        self.check_open("SET_INFO")?;
        let ft =
            |t: Option<SystemTime>| t.map(FileTime::from_system_time).unwrap_or(FileTime::ZERO);
        let (class, buf, op) = match info {
            SetInfo::Basic {
                created,
                accessed,
                modified,
                attributes,
            } => (
                FileInfoClass::FileBasicInformation,
                FileBasicInformation {
                    creation_time: ft(*created),
                    last_access_time: ft(*accessed),
                    last_write_time: ft(*modified),
                    change_time: FileTime::ZERO,
                    file_attributes: FileAttributes::from_bits_retain(attributes.unwrap_or(0)),
                }
                .encode(),
                "set times/attributes",
            ),
            SetInfo::EndOfFile(n) => (
                FileInfoClass::FileEndOfFileInformation,
                FileEndOfFileInformation { end_of_file: *n }.encode(),
                "set size",
            ),
            SetInfo::Rename { new_path, replace } => (
                FileInfoClass::FileRenameInformation,
                FileRenameInformation {
                    replace_if_exists: *replace,
                    root_directory: 0,
                    name: new_path.clone(),
                }
                .encode()?,
                "rename",
            ),
            SetInfo::Disposition(d) => (
                FileInfoClass::FileDispositionInformation,
                FileDispositionInformation { delete_pending: *d }.encode(),
                "set delete disposition",
            ),
            SetInfo::Mode(_) => {
                return Err(RxError::status(
                    NtStatus::STATUS_NOT_SUPPORTED,
                    self.what("set mode (SMB2 has no Unix mode bits)"),
                ));
            }
        };
        let (tree, fid) = self.at();
        let m = tree.send(&SetInfoRequest::file(fid, class, buf)).await?;
        check(&m, || self.what(op))
    }

    /// The next batch of entries of this directory ("." and ".." left out); empty when done.
    /// Asks for FileDirectoryInformation: names, sizes, times and attributes are all a listing
    /// serves, and Samba answers it a third faster than FileIdBothDirectoryInformation (2,000
    /// entries: 27 vs 42 ms of smbd's time), which matters for the re-listings that answer
    /// lookups of missing names. `FileInfo::file_id` is 0 for listed entries.
    pub async fn query_directory(
        &self,
        pattern: Option<&str>,
        restart: bool,
    ) -> RxResult<Vec<DirEntry>> {
        self.check_open("QUERY_DIRECTORY")?;
        let (tree, fid) = self.at();
        let len = tree.session.client.neg.max_transact.min(256 * 1024);
        let mut restart = restart;
        loop {
            let req = QueryDirectoryRequest {
                info_class: FileInfoClass::FileDirectoryInformation,
                flags: if restart {
                    QueryDirectoryFlags::RESTART_SCANS
                } else {
                    QueryDirectoryFlags::empty()
                },
                file_index: 0,
                file_id: fid,
                pattern: pattern.unwrap_or("*").to_string(),
                output_buffer_length: len,
            };
            restart = false;
            let m = tree.send(&req).await?;
            if m.header.status == NtStatus::STATUS_NO_MORE_FILES {
                return Ok(Vec::new());
            }
            check(&m, || self.what("QUERY_DIRECTORY"))?;
            let out = m.body::<QueryDirectoryResponse>()?.output;
            let raw = proto::parse_directory_information(&out)?;
            if raw.is_empty() {
                return Ok(Vec::new());
            }
            let v: Vec<DirEntry> = raw
                .into_iter()
                .filter(|i| i.name != "." && i.name != "..")
                .map(|i| {
                    let info = FileInfo {
                        is_dir: i.file_attributes.contains(FileAttributes::DIRECTORY),
                        size: i.end_of_file,
                        allocation_size: i.allocation_size,
                        created: time(i.creation_time),
                        accessed: time(i.last_access_time),
                        modified: time(i.last_write_time),
                        changed: time(i.change_time),
                        attributes: i.file_attributes.bits(),
                        file_id: 0,
                        nlink: 1,
                        mode: None,
                    };
                    DirEntry { name: i.name, info }
                })
                .collect();
            if !v.is_empty() {
                return Ok(v);
            }
        }
    }

    /// Sends a request that the server may hold pending; if `ctx` is cancelled first, sends
    /// SMB2 CANCEL and waits (a little) for the server's final answer.
    async fn pending_request(&self, p: Pending, ctx: &RxContext, op: &str) -> RxResult<Message> {
        let mid = p.message_id();
        let fut = p.wait();
        tokio::pin!(fut);
        tokio::select! {
            r = &mut fut => r,
            _ = ctx.cancelled() => {
                let tree = self.tree();
                let conn = &tree.session.client.conn;
                let _ = conn.cancel(mid, &tree.opts()).await;
                match tokio::time::timeout(Duration::from_secs(5), &mut fut).await {
                    Ok(Ok(m)) if m.header.status == NtStatus::STATUS_CANCELLED => {
                        Err(RxError::status(
                            NtStatus::STATUS_CANCELLED,
                            format!("{}: cancelled; the server answered STATUS_CANCELLED", self.what(op)),
                        ))
                    }
                    Ok(Ok(m)) => Ok(m),
                    _ => Err(RxError::Cancelled { what: self.what(op) }),
                }
            }
        }
    }

    /// Waits for a change under this directory (CHANGE_NOTIFY). An empty result means "too
    /// many changes; enumerate again" (STATUS_NOTIFY_ENUM_DIR).
    pub async fn notify_change(
        &self,
        filter: u32,
        watch_tree: bool,
        ctx: &RxContext,
    ) -> RxResult<Vec<ChangeEvent>> {
        self.check_open("CHANGE_NOTIFY")?;
        let (tree, fid) = self.at();
        let req = ChangeNotifyRequest {
            flags: if watch_tree { WATCH_TREE } else { 0 },
            output_buffer_length: tree.session.client.neg.max_transact.min(64 * 1024),
            file_id: fid,
            completion_filter: CompletionFilter::from_bits_retain(filter),
        };
        let p = tree.submit(&req).await?;
        let m = self.pending_request(p, ctx, "CHANGE_NOTIFY").await?;
        if m.header.status == NtStatus::STATUS_NOTIFY_ENUM_DIR {
            return Ok(Vec::new());
        }
        check(&m, || self.what("CHANGE_NOTIFY"))?;
        let out = m.body::<ChangeNotifyResponse>()?.output;
        Ok(proto::parse_notify_information(&out)?
            .into_iter()
            .map(|n| ChangeEvent {
                action: n.action.0,
                name: n.name,
            })
            .collect())
    }

    /// Takes a byte-range lock; `wait` lets the server hold the request until granted (or `ctx`
    /// is cancelled → SMB2 CANCEL).
    pub async fn lock(&self, range: LockRange, wait: bool, ctx: &RxContext) -> RxResult<()> {
        self.check_open("LOCK")?;
        let mut flags = if range.exclusive {
            LockFlags::EXCLUSIVE
        } else {
            LockFlags::SHARED
        };
        if !wait {
            flags |= LockFlags::FAIL_IMMEDIATELY;
        }
        // Counted before it is asked for, and before the binding is read: a grant whose answer
        // is lost still counts, and a replacement (`make_durable`) either sees it or the lock
        // goes to the new handle.
        self.locks.fetch_add(1, Ordering::SeqCst);
        let (tree, fid) = self.at();
        let req = LockRequest {
            lock_sequence: 0,
            file_id: fid,
            locks: vec![LockElement {
                offset: range.offset,
                length: range.length,
                flags,
            }],
        };
        let p = tree.submit(&req).await?;
        let m = self.pending_request(p, ctx, "LOCK").await?;
        let r = check(&m, || {
            self.what(&format!("LOCK {}+{}", range.offset, range.length))
        });
        if r.is_err() {
            // The server refused it: not held.
            self.uncount_lock();
        }
        r
    }

    /// Releases a byte-range lock.
    pub async fn unlock(&self, range: LockRange) -> RxResult<()> {
        self.check_open("UNLOCK")?;
        let (tree, fid) = self.at();
        let req = LockRequest {
            lock_sequence: 0,
            file_id: fid,
            locks: vec![LockElement {
                offset: range.offset,
                length: range.length,
                flags: LockFlags::UNLOCK,
            }],
        };
        let m = tree.send(&req).await?;
        check(&m, || {
            self.what(&format!("UNLOCK {}+{}", range.offset, range.length))
        })?;
        self.uncount_lock();
        Ok(())
    }

    fn uncount_lock(&self) {
        let _ = self
            .locks
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(1))
            });
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        // A handle dropped without close: forget its lease use (the server handle goes with the
        // tree or session).
        if !self.closed.load(Ordering::SeqCst) {
            let b = self.at.read();
            let leases = &b.tree.session.client.leases;
            if let Some(l) = &self.lease {
                leases.release(l);
            }
            if self.oplock {
                leases.remove_oplock(&b.file_id);
            }
        }
    }
}

/// How much one server-side copy request may carry: [MS-SMB2] 3.3.3's defaults (256 chunks of
/// at most 1 MiB, 16 MiB in all), lowered to what a server says it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CopyLimits {
    chunks: u32,
    chunk: u32,
    total: u32,
}

impl CopyLimits {
    const DEFAULT: CopyLimits = CopyLimits {
        chunks: 256,
        chunk: 1 << 20,
        total: 16 << 20,
    };

    /// Lowered to a server's stated limits (never to zero).
    fn within(self, server: &CopyChunkResponse) -> CopyLimits {
        CopyLimits {
            chunks: self.chunks.min(server.chunks_written).max(1),
            chunk: self.chunk.min(server.chunk_bytes_written).max(1),
            total: self.total.min(server.total_bytes_written).max(1),
        }
    }

    /// The chunks of the next request for `len` bytes from `src` to `dst`.
    fn chunks(self, src: u64, dst: u64, len: u64) -> Vec<CopyChunk> {
        let mut v = Vec::new();
        let mut at = 0u64;
        let cap = len.min(u64::from(self.total));
        while at < cap && v.len() < self.chunks as usize {
            let n = (cap - at).min(u64::from(self.chunk));
            v.push(CopyChunk {
                source_offset: src + at,
                target_offset: dst + at,
                // n ≤ self.chunk, a u32.
                length: n as u32,
            });
            at += n;
        }
        v
    }
}

#[cfg(test)]
mod copy_limits_tests {
    use super::*;

    #[test]
    fn a_request_stays_within_every_limit_and_covers_the_range() {
        let l = CopyLimits::DEFAULT;
        let c = l.chunks(10, 20, 40 << 20);
        assert_eq!(c.len(), 16, "16 MiB in 1 MiB chunks");
        assert_eq!(c[0].source_offset, 10);
        assert_eq!(c[15].target_offset, 20 + (15 << 20));
        let small = l.chunks(0, 0, 5);
        assert_eq!(small.len(), 1);
        assert_eq!(small[0].length, 5);
        let tight = l.within(&CopyChunkResponse {
            chunks_written: 2,
            chunk_bytes_written: 4096,
            total_bytes_written: 6000,
        });
        let c = tight.chunks(0, 0, 1 << 20);
        let lens: Vec<u32> = c.iter().map(|c| c.length).collect();
        assert_eq!(lens, vec![4096, 6000 - 4096]);
        let zero = l.within(&CopyChunkResponse::default());
        assert_eq!(
            zero.chunks(0, 0, 3).len(),
            1,
            "a zero limit is taken as one"
        );
    }
}
