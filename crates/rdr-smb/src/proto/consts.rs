//! Protocol constants from [MS-SMB2] and [MS-FSCC]: commands, dialects, flag sets, information
//! classes and FSCTL codes. Status codes are [`rdr_core::NtStatus`].

use bitflags::bitflags;
use std::fmt;

/// An SMB2 command code (header `Command`). A newtype because peers may send any value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Command(pub u16);

macro_rules! named_u16 {
    ($ty:ident { $( $name:ident = $val:expr ),* $(,)? }) => {
        impl $ty {
            $( #[doc = concat!("`", stringify!($name), "`")] pub const $name: $ty = $ty($val); )*
            /// The [MS-SMB2] name, or `None` for an unknown value.
            pub fn name(self) -> Option<&'static str> {
                match self.0 { $( $val => Some(stringify!($name)), )* _ => None }
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({:#06x})", stringify!($ty), self.0),
                }
            }
        }
    };
}

named_u16!(Command {
    NEGOTIATE = 0x0000,
    SESSION_SETUP = 0x0001,
    LOGOFF = 0x0002,
    TREE_CONNECT = 0x0003,
    TREE_DISCONNECT = 0x0004,
    CREATE = 0x0005,
    CLOSE = 0x0006,
    FLUSH = 0x0007,
    READ = 0x0008,
    WRITE = 0x0009,
    LOCK = 0x000A,
    IOCTL = 0x000B,
    CANCEL = 0x000C,
    ECHO = 0x000D,
    QUERY_DIRECTORY = 0x000E,
    CHANGE_NOTIFY = 0x000F,
    QUERY_INFO = 0x0010,
    SET_INFO = 0x0011,
    OPLOCK_BREAK = 0x0012,
    SERVER_TO_CLIENT_NOTIFICATION = 0x0013,
});

/// An SMB2 dialect revision.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dialect(pub u16);

named_u16!(Dialect {
    SMB2_0_2 = 0x0202,
    SMB2_1 = 0x0210,
    SMB3_0 = 0x0300,
    SMB3_0_2 = 0x0302,
    SMB3_1_1 = 0x0311,
    WILDCARD = 0x02FF,
});

impl Dialect {
    /// The dialects rdr offers, oldest first.
    pub const ALL: [Dialect; 5] = [
        Dialect::SMB2_0_2,
        Dialect::SMB2_1,
        Dialect::SMB3_0,
        Dialect::SMB3_0_2,
        Dialect::SMB3_1_1,
    ];

    /// True for the SMB 3.x family (encryption, AES signing, channel sequence).
    pub fn is_smb3(self) -> bool {
        self.0 >= 0x0300 && self.0 != 0x02FF
    }
}

bitflags! {
    /// SMB2 header `Flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct HeaderFlags: u32 {
        /// The message is a response.
        const SERVER_TO_REDIR = 0x0000_0001;
        /// The header is in the async form (AsyncId instead of ProcessId/TreeId).
        const ASYNC_COMMAND = 0x0000_0002;
        /// The command is related to the previous one in a compound.
        const RELATED_OPERATIONS = 0x0000_0004;
        /// The message is signed.
        const SIGNED = 0x0000_0008;
        /// 3.1.1 priority mask.
        const PRIORITY_MASK = 0x0000_0070;
        /// DFS operation.
        const DFS_OPERATIONS = 0x1000_0000;
        /// 3.x replay of an earlier request.
        const REPLAY_OPERATION = 0x2000_0000;
        const _ = !0;
    }
}

bitflags! {
    /// NEGOTIATE / SESSION_SETUP `SecurityMode`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SecurityMode: u16 {
        /// Signing is enabled.
        const SIGNING_ENABLED = 0x0001;
        /// Signing is required.
        const SIGNING_REQUIRED = 0x0002;
        const _ = !0;
    }
}

bitflags! {
    /// Global capabilities (NEGOTIATE, SESSION_SETUP, VALIDATE_NEGOTIATE_INFO).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Capabilities: u32 {
        /// DFS.
        const DFS = 0x0000_0001;
        /// Leasing (2.1+).
        const LEASING = 0x0000_0002;
        /// Multi-credit operations (2.1+).
        const LARGE_MTU = 0x0000_0004;
        /// Multichannel (3.x).
        const MULTI_CHANNEL = 0x0000_0008;
        /// Persistent handles (3.x).
        const PERSISTENT_HANDLES = 0x0000_0010;
        /// Directory leasing (3.x).
        const DIRECTORY_LEASING = 0x0000_0020;
        /// Encryption (3.0/3.0.2).
        const ENCRYPTION = 0x0000_0040;
        /// Server-to-client notifications (3.1.1).
        const NOTIFICATIONS = 0x0000_0080;
        const _ = !0;
    }
}

bitflags! {
    /// SESSION_SETUP response `SessionFlags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct SessionFlags: u16 {
        /// Guest session.
        const IS_GUEST = 0x0001;
        /// Anonymous session.
        const IS_NULL = 0x0002;
        /// The session must be encrypted.
        const ENCRYPT_DATA = 0x0004;
        const _ = !0;
    }
}

bitflags! {
    /// TREE_CONNECT response `ShareFlags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ShareFlags: u32 {
        /// DFS share.
        const DFS = 0x0000_0001;
        /// DFS root.
        const DFS_ROOT = 0x0000_0002;
        /// Offline caching: automatic (mask 0x30 holds the caching mode).
        const AUTO_CACHING = 0x0000_0010;
        /// Offline caching: VDO.
        const VDO_CACHING = 0x0000_0020;
        /// Offline caching: none (AUTO|VDO).
        const NO_CACHING = 0x0000_0030;
        /// Exclusive opens restricted.
        const RESTRICT_EXCLUSIVE_OPENS = 0x0000_0100;
        /// Shared delete forced.
        const FORCE_SHARED_DELETE = 0x0000_0200;
        /// Namespace caching allowed.
        const ALLOW_NAMESPACE_CACHING = 0x0000_0400;
        /// Access-based directory enumeration.
        const ACCESS_BASED_DIRECTORY_ENUM = 0x0000_0800;
        /// Level II oplocks forced.
        const FORCE_LEVELII_OPLOCK = 0x0000_1000;
        /// BranchCache hash v1.
        const ENABLE_HASH_V1 = 0x0000_2000;
        /// BranchCache hash v2.
        const ENABLE_HASH_V2 = 0x0000_4000;
        /// The share requires encryption.
        const ENCRYPT_DATA = 0x0000_8000;
        /// Identity remoting.
        const IDENTITY_REMOTING = 0x0004_0000;
        /// Compression requested.
        const COMPRESS_DATA = 0x0010_0000;
        /// Isolated transport.
        const ISOLATED_TRANSPORT = 0x0020_0000;
        const _ = !0;
    }
}

bitflags! {
    /// TREE_CONNECT response `Capabilities`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ShareCapabilities: u32 {
        /// DFS.
        const DFS = 0x0000_0008;
        /// Continuously available.
        const CONTINUOUS_AVAILABILITY = 0x0000_0010;
        /// Scale-out.
        const SCALEOUT = 0x0000_0020;
        /// Cluster.
        const CLUSTER = 0x0000_0040;
        /// Asymmetric.
        const ASYMMETRIC = 0x0000_0080;
        /// Redirect to owner.
        const REDIRECT_TO_OWNER = 0x0000_0100;
        const _ = !0;
    }
}

bitflags! {
    /// TREE_CONNECT request `Flags` (3.1.1).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct TreeConnectFlags: u16 {
        /// Cluster reconnect.
        const CLUSTER_RECONNECT = 0x0001;
        /// Redirect to owner.
        const REDIRECT_TO_OWNER = 0x0002;
        /// A tree connect request extension follows.
        const EXTENSION_PRESENT = 0x0004;
        const _ = !0;
    }
}

/// TREE_CONNECT response `ShareType`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShareType(pub u8);
impl ShareType {
    /// Disk share.
    pub const DISK: ShareType = ShareType(1);
    /// Named pipe share.
    pub const PIPE: ShareType = ShareType(2);
    /// Printer share.
    pub const PRINT: ShareType = ShareType(3);
}
impl fmt::Debug for ShareType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            1 => f.write_str("DISK"),
            2 => f.write_str("PIPE"),
            3 => f.write_str("PRINT"),
            v => write!(f, "ShareType({v:#x})"),
        }
    }
}

/// CREATE `RequestedOplockLevel` / `OplockLevel`, and OPLOCK_BREAK levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OplockLevel(pub u8);
impl OplockLevel {
    /// No oplock.
    pub const NONE: OplockLevel = OplockLevel(0x00);
    /// Level II (shared read).
    pub const II: OplockLevel = OplockLevel(0x01);
    /// Exclusive.
    pub const EXCLUSIVE: OplockLevel = OplockLevel(0x08);
    /// Batch.
    pub const BATCH: OplockLevel = OplockLevel(0x09);
    /// A lease (the lease create context says which).
    pub const LEASE: OplockLevel = OplockLevel(0xFF);
}

bitflags! {
    /// Lease state (R/H/W caching).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct LeaseState: u32 {
        /// Read caching.
        const READ_CACHING = 0x01;
        /// Handle caching.
        const HANDLE_CACHING = 0x02;
        /// Write caching.
        const WRITE_CACHING = 0x04;
        const _ = !0;
    }
}

bitflags! {
    /// Lease create-context / break `Flags`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct LeaseFlags: u32 {
        /// (response) A break is in progress.
        const BREAK_IN_PROGRESS = 0x02;
        /// (v2) ParentLeaseKey is set.
        const PARENT_LEASE_KEY_SET = 0x04;
        const _ = !0;
    }
}

bitflags! {
    /// Access mask (file, directory and generic rights).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct AccessMask: u32 {
        /// Read data / list directory.
        const FILE_READ_DATA = 0x0000_0001;
        /// Write data / add file.
        const FILE_WRITE_DATA = 0x0000_0002;
        /// Append data / add subdirectory.
        const FILE_APPEND_DATA = 0x0000_0004;
        /// Read extended attributes.
        const FILE_READ_EA = 0x0000_0008;
        /// Write extended attributes.
        const FILE_WRITE_EA = 0x0000_0010;
        /// Execute / traverse.
        const FILE_EXECUTE = 0x0000_0020;
        /// Delete a child (directories).
        const FILE_DELETE_CHILD = 0x0000_0040;
        /// Read attributes.
        const FILE_READ_ATTRIBUTES = 0x0000_0080;
        /// Write attributes.
        const FILE_WRITE_ATTRIBUTES = 0x0000_0100;
        /// Delete.
        const DELETE = 0x0001_0000;
        /// Read the security descriptor.
        const READ_CONTROL = 0x0002_0000;
        /// Write the DACL.
        const WRITE_DAC = 0x0004_0000;
        /// Change the owner.
        const WRITE_OWNER = 0x0008_0000;
        /// Synchronize.
        const SYNCHRONIZE = 0x0010_0000;
        /// System security.
        const ACCESS_SYSTEM_SECURITY = 0x0100_0000;
        /// The maximum the caller is allowed.
        const MAXIMUM_ALLOWED = 0x0200_0000;
        /// Generic all.
        const GENERIC_ALL = 0x1000_0000;
        /// Generic execute.
        const GENERIC_EXECUTE = 0x2000_0000;
        /// Generic write.
        const GENERIC_WRITE = 0x4000_0000;
        /// Generic read.
        const GENERIC_READ = 0x8000_0000;
        const _ = !0;
    }
}

bitflags! {
    /// File attributes ([MS-FSCC] 2.6).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct FileAttributes: u32 {
        /// Read-only.
        const READONLY = 0x0000_0001;
        /// Hidden.
        const HIDDEN = 0x0000_0002;
        /// System.
        const SYSTEM = 0x0000_0004;
        /// Directory.
        const DIRECTORY = 0x0000_0010;
        /// Archive.
        const ARCHIVE = 0x0000_0020;
        /// Normal (no other attribute).
        const NORMAL = 0x0000_0080;
        /// Temporary.
        const TEMPORARY = 0x0000_0100;
        /// Sparse.
        const SPARSE_FILE = 0x0000_0200;
        /// Reparse point.
        const REPARSE_POINT = 0x0000_0400;
        /// Compressed.
        const COMPRESSED = 0x0000_0800;
        /// Offline.
        const OFFLINE = 0x0000_1000;
        /// Not content indexed.
        const NOT_CONTENT_INDEXED = 0x0000_2000;
        /// Encrypted.
        const ENCRYPTED = 0x0000_4000;
        /// Integrity stream.
        const INTEGRITY_STREAM = 0x0000_8000;
        const _ = !0;
    }
}

bitflags! {
    /// CREATE `ShareAccess`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct ShareAccess: u32 {
        /// Others may read.
        const READ = 0x1;
        /// Others may write.
        const WRITE = 0x2;
        /// Others may delete/rename.
        const DELETE = 0x4;
        const _ = !0;
    }
}

/// CREATE `CreateDisposition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CreateDisposition(pub u32);
impl CreateDisposition {
    /// Replace if exists, else create.
    pub const SUPERSEDE: Self = Self(0);
    /// Open if exists, else fail.
    pub const OPEN: Self = Self(1);
    /// Fail if exists, else create.
    pub const CREATE: Self = Self(2);
    /// Open if exists, else create.
    pub const OPEN_IF: Self = Self(3);
    /// Open and truncate if exists, else fail.
    pub const OVERWRITE: Self = Self(4);
    /// Open and truncate if exists, else create.
    pub const OVERWRITE_IF: Self = Self(5);
}

bitflags! {
    /// CREATE `CreateOptions`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct CreateOptions: u32 {
        /// The open must be a directory.
        const DIRECTORY_FILE = 0x0000_0001;
        /// Write-through.
        const WRITE_THROUGH = 0x0000_0002;
        /// Sequential access only.
        const SEQUENTIAL_ONLY = 0x0000_0004;
        /// No intermediate buffering.
        const NO_INTERMEDIATE_BUFFERING = 0x0000_0008;
        /// Synchronous I/O, alertable.
        const SYNCHRONOUS_IO_ALERT = 0x0000_0010;
        /// Synchronous I/O, non-alertable.
        const SYNCHRONOUS_IO_NONALERT = 0x0000_0020;
        /// The open must not be a directory.
        const NON_DIRECTORY_FILE = 0x0000_0040;
        /// Complete if oplocked.
        const COMPLETE_IF_OPLOCKED = 0x0000_0100;
        /// No EA knowledge.
        const NO_EA_KNOWLEDGE = 0x0000_0200;
        /// Random access.
        const RANDOM_ACCESS = 0x0000_0800;
        /// Delete when the last handle closes.
        const DELETE_ON_CLOSE = 0x0000_1000;
        /// Open by file id.
        const OPEN_BY_FILE_ID = 0x0000_2000;
        /// Backup intent.
        const OPEN_FOR_BACKUP_INTENT = 0x0000_4000;
        /// No compression.
        const NO_COMPRESSION = 0x0000_8000;
        /// Open the reparse point itself.
        const OPEN_REPARSE_POINT = 0x0020_0000;
        /// Do not recall.
        const OPEN_NO_RECALL = 0x0040_0000;
        const _ = !0;
    }
}

/// CREATE `ImpersonationLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ImpersonationLevel(pub u32);
impl ImpersonationLevel {
    /// Anonymous.
    pub const ANONYMOUS: Self = Self(0);
    /// Identification.
    pub const IDENTIFICATION: Self = Self(1);
    /// Impersonation (the usual value).
    pub const IMPERSONATION: Self = Self(2);
    /// Delegate.
    pub const DELEGATE: Self = Self(3);
}

/// CREATE response `CreateAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CreateAction(pub u32);
impl CreateAction {
    /// An existing file was replaced.
    pub const SUPERSEDED: Self = Self(0);
    /// An existing file was opened.
    pub const OPENED: Self = Self(1);
    /// A new file was created.
    pub const CREATED: Self = Self(2);
    /// An existing file was overwritten.
    pub const OVERWRITTEN: Self = Self(3);
}

/// QUERY_INFO / SET_INFO `InfoType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InfoType(pub u8);
impl InfoType {
    /// File information classes.
    pub const FILE: Self = Self(1);
    /// File system information classes.
    pub const FILESYSTEM: Self = Self(2);
    /// Security descriptor.
    pub const SECURITY: Self = Self(3);
    /// Quota.
    pub const QUOTA: Self = Self(4);
}

/// A file information class ([MS-FSCC] 2.4), as used by QUERY_INFO/SET_INFO and QUERY_DIRECTORY.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileInfoClass(pub u8);

macro_rules! named_u8 {
    ($ty:ident { $( $name:ident = $val:expr ),* $(,)? }) => {
        #[allow(non_upper_case_globals)]
        impl $ty {
            $( #[doc = concat!("`", stringify!($name), "`")] pub const $name: $ty = $ty($val); )*
            /// The [MS-FSCC] name, or `None` for an unknown value.
            pub fn name(self) -> Option<&'static str> {
                match self.0 { $( $val => Some(stringify!($name)), )* _ => None }
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({:#04x})", stringify!($ty), self.0),
                }
            }
        }
    };
}

named_u8!(FileInfoClass {
    FileDirectoryInformation = 1,
    FileFullDirectoryInformation = 2,
    FileBothDirectoryInformation = 3,
    FileBasicInformation = 4,
    FileStandardInformation = 5,
    FileInternalInformation = 6,
    FileEaInformation = 7,
    FileAccessInformation = 8,
    FileNameInformation = 9,
    FileRenameInformation = 10,
    FileLinkInformation = 11,
    FileNamesInformation = 12,
    FileDispositionInformation = 13,
    FilePositionInformation = 14,
    FileFullEaInformation = 15,
    FileModeInformation = 16,
    FileAlignmentInformation = 17,
    FileAllInformation = 18,
    FileAllocationInformation = 19,
    FileEndOfFileInformation = 20,
    FileAlternateNameInformation = 21,
    FileStreamInformation = 22,
    FileCompressionInformation = 28,
    FileNetworkOpenInformation = 34,
    FileAttributeTagInformation = 35,
    FileIdBothDirectoryInformation = 37,
    FileIdFullDirectoryInformation = 38,
    FileValidDataLengthInformation = 39,
    FileNormalizedNameInformation = 48,
    FileIdInformation = 59,
    FileDispositionInformationEx = 64,
    FileRenameInformationEx = 65,
});

/// A file system information class ([MS-FSCC] 2.5).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FsInfoClass(pub u8);

named_u8!(FsInfoClass {
    FileFsVolumeInformation = 1,
    FileFsLabelInformation = 2,
    FileFsSizeInformation = 3,
    FileFsDeviceInformation = 4,
    FileFsAttributeInformation = 5,
    FileFsControlInformation = 6,
    FileFsFullSizeInformation = 7,
    FileFsObjectIdInformation = 8,
    FileFsSectorSizeInformation = 11,
});

/// FSCTL / IOCTL control codes used with SMB2 IOCTL.
pub mod fsctl {
    /// DFS referral request.
    pub const FSCTL_DFS_GET_REFERRALS: u32 = 0x0006_0194;
    /// DFS referral request (extended).
    pub const FSCTL_DFS_GET_REFERRALS_EX: u32 = 0x0006_01B0;
    /// Named-pipe peek.
    pub const FSCTL_PIPE_PEEK: u32 = 0x0011_400C;
    /// Named-pipe wait.
    pub const FSCTL_PIPE_WAIT: u32 = 0x0011_0018;
    /// Named-pipe transceive.
    pub const FSCTL_PIPE_TRANSCEIVE: u32 = 0x0011_C017;
    /// Server-side copy (read access on the destination).
    pub const FSCTL_SRV_COPYCHUNK: u32 = 0x0014_40F2;
    /// Server-side copy (write access on the destination).
    pub const FSCTL_SRV_COPYCHUNK_WRITE: u32 = 0x0014_80F2;
    /// Previous versions (snapshots).
    pub const FSCTL_SRV_ENUMERATE_SNAPSHOTS: u32 = 0x0014_4064;
    /// Resume key for server-side copy.
    pub const FSCTL_SRV_REQUEST_RESUME_KEY: u32 = 0x0014_0078;
    /// Read a BranchCache hash.
    pub const FSCTL_SRV_READ_HASH: u32 = 0x0014_41BB;
    /// Request resiliency for a handle.
    pub const FSCTL_LMR_REQUEST_RESILIENCY: u32 = 0x0014_01D4;
    /// Network interfaces for multichannel.
    pub const FSCTL_QUERY_NETWORK_INTERFACE_INFO: u32 = 0x0014_01FC;
    /// Secure dialect negotiation check (3.0/3.0.2).
    pub const FSCTL_VALIDATE_NEGOTIATE_INFO: u32 = 0x0014_0204;
    /// Read a reparse point (symlink target).
    pub const FSCTL_GET_REPARSE_POINT: u32 = 0x0009_00A8;
    /// Write a reparse point.
    pub const FSCTL_SET_REPARSE_POINT: u32 = 0x0009_00A4;
    /// Mark a file sparse.
    pub const FSCTL_SET_SPARSE: u32 = 0x0009_00C4;
    /// Zero a range (punch a hole).
    pub const FSCTL_SET_ZERO_DATA: u32 = 0x0009_80C8;
    /// Allocated ranges of a sparse file.
    pub const FSCTL_QUERY_ALLOCATED_RANGES: u32 = 0x0009_40CF;
    /// Block cloning.
    pub const FSCTL_DUPLICATE_EXTENTS_TO_FILE: u32 = 0x0009_8344;
    /// Compression state.
    pub const FSCTL_GET_COMPRESSION: u32 = 0x0009_003C;
    /// Set compression state.
    pub const FSCTL_SET_COMPRESSION: u32 = 0x0009_C040;
}

bitflags! {
    /// CHANGE_NOTIFY `CompletionFilter`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct CompletionFilter: u32 {
        /// File name changes.
        const FILE_NAME = 0x0000_0001;
        /// Directory name changes.
        const DIR_NAME = 0x0000_0002;
        /// Attribute changes.
        const ATTRIBUTES = 0x0000_0004;
        /// Size changes.
        const SIZE = 0x0000_0008;
        /// Last-write time changes.
        const LAST_WRITE = 0x0000_0010;
        /// Last-access time changes.
        const LAST_ACCESS = 0x0000_0020;
        /// Creation time changes.
        const CREATION = 0x0000_0040;
        /// EA changes.
        const EA = 0x0000_0080;
        /// Security descriptor changes.
        const SECURITY = 0x0000_0100;
        /// Stream name changes.
        const STREAM_NAME = 0x0000_0200;
        /// Stream size changes.
        const STREAM_SIZE = 0x0000_0400;
        /// Stream write changes.
        const STREAM_WRITE = 0x0000_0800;
        const _ = !0;
    }
}

/// FILE_NOTIFY_INFORMATION `Action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NotifyAction(pub u32);
impl NotifyAction {
    /// Added.
    pub const ADDED: Self = Self(1);
    /// Removed.
    pub const REMOVED: Self = Self(2);
    /// Modified.
    pub const MODIFIED: Self = Self(3);
    /// Renamed: old name.
    pub const RENAMED_OLD_NAME: Self = Self(4);
    /// Renamed: new name.
    pub const RENAMED_NEW_NAME: Self = Self(5);
    /// Stream added.
    pub const ADDED_STREAM: Self = Self(6);
    /// Stream removed.
    pub const REMOVED_STREAM: Self = Self(7);
    /// Stream modified.
    pub const MODIFIED_STREAM: Self = Self(8);
}
