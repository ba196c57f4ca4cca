//! The `MiniRedirector` trait: RDBSS's `MINIRDR_DISPATCH`, the table through which the core drives
//! a protocol (SMB, the local directory). Async so a network mini-redirector never blocks a thread.
//!
//! Per-object state of the mini-redirector (RDBSS's `Context` fields) is an opaque [`MrxContext`]
//! that the core stores on the object and hands back on every call; the mini-redirector downcasts
//! it to its own type.
//!
//! Cancellation (RDBSS's `MRxCancel`): every call that can wait receives an [`RxContext`]; the
//! mini-redirector races its work against `ctx.cancelled()` and returns `RxError::Cancelled`
//! (an SMB implementation also sends SMB2 CANCEL for a request the server holds pending).

use crate::error::RxResult;
use crate::rx_context::RxContext;
use async_trait::async_trait;
use bytes::Bytes;
use std::any::Any;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A mini-redirector's private state for one object (SrvCall, NetRoot, VNetRoot, SrvOpen).
pub type MrxContext = Arc<dyn Any + Send + Sync>;

/// A secret that never prints.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret string.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret's text; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What the mini-redirector needs to reach a server (`MRxCreateSrvCall`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvCallParams {
    /// Host name or address as the user wrote it.
    pub server: String,
    /// TCP port, when not the protocol default.
    pub port: Option<u16>,
}

/// Who is connecting: RDBSS's LogonId plus credentials (`MRxCreateVNetRoot`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The local identity the view belongs to (the Linux uid; RDBSS's LogonId).
    pub logon_id: u32,
    /// Remote user name; `None` for the mini-redirector's default.
    pub user: Option<String>,
    /// Remote domain.
    pub domain: Option<String>,
    /// Password.
    pub password: Option<Secret>,
}

/// A share to connect and the identity to connect it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VNetRootParams {
    /// The share name (no separators).
    pub share: String,
    /// Credentials of this view.
    pub credentials: Credentials,
}

/// What `create_v_net_root` built.
pub struct VNetRootCreated {
    /// The share's context; `Some` when the core passed `None` (first view of the share).
    pub net_root: Option<MrxContext>,
    /// The view's context (an SMB session + tree connect).
    pub v_net_root: MrxContext,
}

/// A path inside a share: components joined by `\`, empty for the share root.
pub type RxPath = str;

bitflags::bitflags! {
    /// Access rights (MS-SMB2 2.2.13.1 / MS-DTYP ACCESS_MASK).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct AccessMask: u32 {
        #[allow(missing_docs)]
        const FILE_READ_DATA = 0x0000_0001;
        #[allow(missing_docs)]
        const FILE_WRITE_DATA = 0x0000_0002;
        #[allow(missing_docs)]
        const FILE_APPEND_DATA = 0x0000_0004;
        #[allow(missing_docs)]
        const FILE_READ_EA = 0x0000_0008;
        #[allow(missing_docs)]
        const FILE_WRITE_EA = 0x0000_0010;
        #[allow(missing_docs)]
        const FILE_EXECUTE = 0x0000_0020;
        #[allow(missing_docs)]
        const FILE_DELETE_CHILD = 0x0000_0040;
        #[allow(missing_docs)]
        const FILE_READ_ATTRIBUTES = 0x0000_0080;
        #[allow(missing_docs)]
        const FILE_WRITE_ATTRIBUTES = 0x0000_0100;
        #[allow(missing_docs)]
        const DELETE = 0x0001_0000;
        #[allow(missing_docs)]
        const READ_CONTROL = 0x0002_0000;
        #[allow(missing_docs)]
        const SYNCHRONIZE = 0x0010_0000;
        #[allow(missing_docs)]
        const MAXIMUM_ALLOWED = 0x0200_0000;
        #[allow(missing_docs)]
        const GENERIC_ALL = 0x1000_0000;
        #[allow(missing_docs)]
        const GENERIC_EXECUTE = 0x2000_0000;
        #[allow(missing_docs)]
        const GENERIC_WRITE = 0x4000_0000;
        #[allow(missing_docs)]
        const GENERIC_READ = 0x8000_0000;
    }
}

impl AccessMask {
    /// True when the mask allows reading data.
    pub fn can_read(self) -> bool {
        self.intersects(
            Self::FILE_READ_DATA | Self::GENERIC_READ | Self::GENERIC_ALL | Self::MAXIMUM_ALLOWED,
        )
    }
    /// True when the mask allows writing or appending data.
    pub fn can_write(self) -> bool {
        self.intersects(
            Self::FILE_WRITE_DATA
                | Self::FILE_APPEND_DATA
                | Self::GENERIC_WRITE
                | Self::GENERIC_ALL
                | Self::MAXIMUM_ALLOWED,
        )
    }
}

bitflags::bitflags! {
    /// Share access (MS-SMB2 2.2.13 ShareAccess).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ShareAccess: u32 {
        #[allow(missing_docs)]
        const READ = 0x1;
        #[allow(missing_docs)]
        const WRITE = 0x2;
        #[allow(missing_docs)]
        const DELETE = 0x4;
    }
}

bitflags::bitflags! {
    /// Create options (MS-SMB2 2.2.13 CreateOptions).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct CreateOptions: u32 {
        #[allow(missing_docs)]
        const DIRECTORY_FILE = 0x0000_0001;
        #[allow(missing_docs)]
        const WRITE_THROUGH = 0x0000_0002;
        #[allow(missing_docs)]
        const SEQUENTIAL_ONLY = 0x0000_0004;
        #[allow(missing_docs)]
        const NO_INTERMEDIATE_BUFFERING = 0x0000_0008;
        #[allow(missing_docs)]
        const NON_DIRECTORY_FILE = 0x0000_0040;
        #[allow(missing_docs)]
        const NO_EA_KNOWLEDGE = 0x0000_0200;
        #[allow(missing_docs)]
        const RANDOM_ACCESS = 0x0000_0800;
        #[allow(missing_docs)]
        const DELETE_ON_CLOSE = 0x0000_1000;
        #[allow(missing_docs)]
        const OPEN_REPARSE_POINT = 0x0020_0000;
    }
}

/// File attributes (MS-FSCC 2.6), the ones rdr reads.
pub mod file_attributes {
    /// Read-only.
    pub const READONLY: u32 = 0x1;
    /// Hidden.
    pub const HIDDEN: u32 = 0x2;
    /// Directory.
    pub const DIRECTORY: u32 = 0x10;
    /// Archive.
    pub const ARCHIVE: u32 = 0x20;
    /// Normal (no other attribute).
    pub const NORMAL: u32 = 0x80;
    /// Reparse point (symlink).
    pub const REPARSE_POINT: u32 = 0x400;
}

/// What to do when the file exists or not (MS-SMB2 2.2.13 CreateDisposition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum CreateDisposition {
    /// Replace if it exists, create if not.
    Supersede = 0,
    /// Open; fail if it does not exist.
    Open = 1,
    /// Create; fail if it exists.
    Create = 2,
    /// Open, or create if missing.
    OpenIf = 3,
    /// Open and truncate; fail if missing.
    Overwrite = 4,
    /// Open and truncate, or create.
    OverwriteIf = 5,
}

/// What a create did (MS-SMB2 CreateAction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CreateAction {
    /// An existing file was superseded.
    Superseded,
    /// An existing file was opened.
    Opened,
    /// A new file was created.
    Created,
    /// An existing file was truncated.
    Overwritten,
}

/// Parameters of an open (RDBSS's create parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateParams {
    /// Desired access.
    pub access: AccessMask,
    /// Share access granted to other opens.
    pub share: ShareAccess,
    /// What to do if the file exists or not.
    pub disposition: CreateDisposition,
    /// Create options (directory, delete on close...).
    pub options: CreateOptions,
    /// Attributes for a new file.
    pub attributes: u32,
    /// Unix mode for a new file, where the mini-redirector can apply it.
    pub mode: Option<u32>,
}

impl CreateParams {
    /// Open an existing file or directory for reading attributes only.
    pub fn open_existing(access: AccessMask) -> Self {
        CreateParams {
            access,
            share: ShareAccess::READ | ShareAccess::WRITE | ShareAccess::DELETE,
            disposition: CreateDisposition::Open,
            options: CreateOptions::empty(),
            attributes: 0,
            mode: None,
        }
    }
}

/// What the server lets the client cache for an open (RDBSS buffering state, from the lease or
/// oplock; see docs/caching-design.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BufferingState {
    /// Reads may be served from a cache (R).
    pub read_caching: bool,
    /// Writes may be held back (W): dirty data may exist in the client.
    pub write_caching: bool,
    /// Closes may be delayed (H).
    pub handle_caching: bool,
}

/// Metadata of a file or directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileInfo {
    /// Directory or not.
    pub is_dir: bool,
    /// End of file, bytes.
    pub size: u64,
    /// Allocation, bytes.
    pub allocation_size: u64,
    /// Creation time.
    pub created: SystemTime,
    /// Last access.
    pub accessed: SystemTime,
    /// Last data write.
    pub modified: SystemTime,
    /// Last metadata change.
    pub changed: SystemTime,
    /// MS-FSCC file attributes.
    pub attributes: u32,
    /// A stable file id (inode number on the server), 0 if unknown.
    pub file_id: u64,
    /// Number of links.
    pub nlink: u32,
    /// Unix mode bits, where the mini-redirector knows them.
    pub mode: Option<u32>,
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name (one component).
    pub name: String,
    /// Its metadata.
    pub info: FileInfo,
}

/// A change to set on a file (MS-FSCC information classes, the ones rdr uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetInfo {
    /// Times and attributes; `None` leaves a field unchanged.
    Basic {
        /// Creation time.
        created: Option<SystemTime>,
        /// Last access.
        accessed: Option<SystemTime>,
        /// Last write.
        modified: Option<SystemTime>,
        /// Attributes.
        attributes: Option<u32>,
    },
    /// Truncate or extend to this size.
    EndOfFile(u64),
    /// Rename to a path in the same share.
    Rename {
        /// New path (components joined by `\`).
        new_path: String,
        /// Replace an existing target.
        replace: bool,
    },
    /// Mark (or unmark) for deletion when the last handle closes.
    Disposition(bool),
    /// Unix mode bits, where the mini-redirector supports them.
    Mode(u32),
}

/// A completed change notification entry (MS-FSCC FILE_NOTIFY_INFORMATION).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// FILE_ACTION_* (1 added, 2 removed, 3 modified, 4 renamed old, 5 renamed new).
    pub action: u32,
    /// Name relative to the watched directory.
    pub name: String,
}

/// Notify filter bits (MS-SMB2 2.2.35 CompletionFilter).
pub mod notify_filter {
    /// File name changes.
    pub const FILE_NAME: u32 = 0x1;
    /// Directory name changes.
    pub const DIR_NAME: u32 = 0x2;
    /// Attribute changes.
    pub const ATTRIBUTES: u32 = 0x4;
    /// Size changes.
    pub const SIZE: u32 = 0x8;
    /// Last-write changes.
    pub const LAST_WRITE: u32 = 0x10;
    /// Everything above.
    pub const ALL: u32 = 0x1f;
}

/// A byte range for locking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct LockRange {
    /// First byte.
    pub offset: u64,
    /// Number of bytes (0 is legal and locks nothing but conflicts as in MS-FSA).
    pub length: u64,
    /// Exclusive (write) or shared (read).
    pub exclusive: bool,
}

impl LockRange {
    /// Whether two ranges overlap.
    pub fn overlaps(&self, other: &LockRange) -> bool {
        let end = self.offset.saturating_add(self.length);
        let oend = other.offset.saturating_add(other.length);
        self.length > 0 && other.length > 0 && self.offset < oend && other.offset < end
    }
}

/// Space on a share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VolumeInfo {
    /// Total bytes.
    pub total_bytes: u64,
    /// Free bytes available to the caller.
    pub free_bytes: u64,
    /// Allocation unit.
    pub block_size: u32,
}

/// What a successful create returns.
pub struct CreateResult {
    /// The server open (SMB FileId + lease, or a local fd).
    pub srv_open: MrxContext,
    /// Metadata of the opened file.
    pub info: FileInfo,
    /// What the create did.
    pub action: CreateAction,
    /// What may be cached for this open.
    pub buffering: BufferingState,
}

/// The dispatch table. The core calls it; it never calls the core.
#[async_trait]
pub trait MiniRedirector: Send + Sync + 'static {
    /// A short name ("smb", "local") for messages.
    fn name(&self) -> &'static str;

    /// How long a dormant SrvCall (no shares left) keeps its transport (RDBSS ScavengerTimeout).
    fn srv_call_linger(&self) -> Duration {
        Duration::from_secs(60)
    }

    /// Whether the view's transport is gone (the server closed it, or stopped answering) and
    /// the view was not reconnected since: it shows as disconnected. `false` when the
    /// mini-redirector cannot tell.
    fn transport_lost(&self, _v_net_root: &MrxContext) -> bool {
        false
    }

    /// Make the view usable again after its transport died (reconnect, set the session up,
    /// connect the tree). Called in the background; the default has nothing to do.
    async fn reconnect(&self, _v_net_root: &MrxContext, _ctx: &RxContext) -> RxResult<()> {
        Ok(())
    }

    /// Times the view was connected again after its transport died (shown per connection).
    fn reconnects(&self, _v_net_root: &MrxContext) -> u64 {
        0
    }

    /// Whether this server open went with a transport that died (a reconnect does not bring
    /// it back): the core never collapses a new open onto it.
    fn srv_open_lost(&self, _srv_open: &MrxContext) -> bool {
        false
    }

    /// The key a server's break names this open by (`SRV_OPEN.Key`: SMB lease key, or the
    /// FileId for an oplock), so breaks reach `Rdbss::change_buffering_state`. `None`: the
    /// mini-redirector has no breaks.
    fn srv_open_key(&self, _srv_open: &MrxContext) -> Option<Vec<u8>> {
        None
    }

    /// Connect to a server (`MRxCreateSrvCall`): transport + protocol negotiation.
    async fn create_srv_call(
        &self,
        params: &SrvCallParams,
        ctx: &RxContext,
    ) -> RxResult<MrxContext>;

    /// Tear down a server connection (`MRxFinalizeSrvCall`).
    async fn finalize_srv_call(&self, srv_call: &MrxContext, force: bool);

    /// Connect a view of a share (`MRxCreateVNetRoot`): `net_root` is `None` for the first view of
    /// the share, and the result then carries the share's new context.
    async fn create_v_net_root(
        &self,
        srv_call: &MrxContext,
        net_root: Option<&MrxContext>,
        params: &VNetRootParams,
        ctx: &RxContext,
    ) -> RxResult<VNetRootCreated>;

    /// Release a share (`MRxFinalizeNetRoot`); called when its last view is unlinked.
    async fn finalize_net_root(&self, net_root: &MrxContext);

    /// Release a view (`MRxFinalizeVNetRoot`): SMB disconnects the tree and logs the session off
    /// when it was the session's last tree.
    async fn finalize_v_net_root(&self, v_net_root: &MrxContext);

    /// Open or create on the server (`MRxCreate`).
    async fn create(
        &self,
        v_net_root: &MrxContext,
        path: &RxPath,
        params: &CreateParams,
        ctx: &RxContext,
    ) -> RxResult<CreateResult>;

    /// Close the server open (`MRxCloseSrvOpen`).
    async fn close_srv_open(&self, srv_open: &MrxContext) -> RxResult<()>;

    /// Delete the file (not a directory) at `path`, that the core holds nothing of: a
    /// delete-on-close open and its close. SMB sends both as one compound (one round trip).
    async fn delete_file(
        &self,
        v_net_root: &MrxContext,
        path: &RxPath,
        ctx: &RxContext,
    ) -> RxResult<()> {
        let mut p =
            CreateParams::open_existing(AccessMask::DELETE | AccessMask::FILE_READ_ATTRIBUTES);
        p.options = CreateOptions::NON_DIRECTORY_FILE | CreateOptions::DELETE_ON_CLOSE;
        let r = self.create(v_net_root, path, &p, ctx).await?;
        self.close_srv_open(&r.srv_open).await
    }

    /// Read up to `len` bytes at `offset`; an empty result is end of file.
    async fn read(
        &self,
        srv_open: &MrxContext,
        offset: u64,
        len: u32,
        ctx: &RxContext,
    ) -> RxResult<Bytes>;

    /// Write `data` at `offset`; returns the bytes written.
    async fn write(
        &self,
        srv_open: &MrxContext,
        offset: u64,
        data: Bytes,
        ctx: &RxContext,
    ) -> RxResult<u32>;

    /// Make written data durable on the server.
    async fn flush(&self, srv_open: &MrxContext, ctx: &RxContext) -> RxResult<()>;

    /// Copy `len` bytes of `src` from `src_offset` to `dst` at `dst_offset` where the data
    /// lives (SMB: server-side copy), so it never crosses the network; returns the bytes
    /// copied, fewer when the copy stopped early. Both opens are of one view and the range
    /// lies inside the source. `STATUS_NOT_SUPPORTED` (the default) makes the caller copy
    /// through the client.
    async fn copy_range(
        &self,
        _src: &MrxContext,
        _src_offset: u64,
        _dst: &MrxContext,
        _dst_offset: u64,
        _len: u64,
        _ctx: &RxContext,
    ) -> RxResult<u64> {
        Err(crate::error::RxError::status(
            crate::status::NtStatus::STATUS_NOT_SUPPORTED,
            format!("{}: server-side copy", self.name()),
        ))
    }

    /// Metadata of an open file.
    async fn query_info(&self, srv_open: &MrxContext, ctx: &RxContext) -> RxResult<FileInfo>;

    /// Metadata by path, without a handle (SMB: a compound create/query/close).
    async fn query_path_info(
        &self,
        v_net_root: &MrxContext,
        path: &RxPath,
        ctx: &RxContext,
    ) -> RxResult<FileInfo>;

    /// Change metadata (size, times, rename, delete disposition, mode).
    async fn set_info(
        &self,
        srv_open: &MrxContext,
        info: &SetInfo,
        ctx: &RxContext,
    ) -> RxResult<()>;

    /// The next batch of entries of an open directory; empty when done. `restart` starts over.
    async fn query_directory(
        &self,
        srv_open: &MrxContext,
        pattern: Option<&str>,
        restart: bool,
        ctx: &RxContext,
    ) -> RxResult<Vec<DirEntry>>;

    /// Wait for a change under an open directory; pending until something changes or `ctx` is
    /// cancelled.
    async fn notify_change(
        &self,
        srv_open: &MrxContext,
        filter: u32,
        watch_tree: bool,
        ctx: &RxContext,
    ) -> RxResult<Vec<ChangeEvent>>;

    /// Take a byte-range lock; with `wait`, pend until granted or cancelled, else fail at once
    /// with `STATUS_LOCK_NOT_GRANTED` on conflict.
    async fn lock(
        &self,
        srv_open: &MrxContext,
        range: LockRange,
        wait: bool,
        ctx: &RxContext,
    ) -> RxResult<()>;

    /// Release a byte-range lock.
    async fn unlock(
        &self,
        srv_open: &MrxContext,
        range: LockRange,
        ctx: &RxContext,
    ) -> RxResult<()>;

    /// Space on the share.
    async fn query_volume(&self, v_net_root: &MrxContext, ctx: &RxContext) -> RxResult<VolumeInfo>;
}
