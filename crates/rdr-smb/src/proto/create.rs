//! CREATE request/response and create contexts: a generic list codec plus typed leases (v1/v2
//! "RqLs"), durable handles ("DHnQ"/"DH2Q" and reconnects "DHnC"/"DH2C"), maximal access
//! ("MxAc") and on-disk id ("QFid").

use bytes::{BufMut, Bytes, BytesMut};
use rdr_core::NtStatus;

use super::consts::{
    AccessMask, Command, CreateAction, CreateDisposition, CreateOptions, FileAttributes,
    ImpersonationLevel, LeaseFlags, LeaseState, OplockLevel, ShareAccess,
};
use super::error::{ProtoError, ProtoResult};
use super::header::{FileId, HEADER_SIZE, SmbMessage};
use super::time::FileTime;
use super::utf16::{decode_utf16le, put_utf16le};
use super::wire::{
    Reader, body_reader, len16, len32, msg_offset, pad8, patch_u16, patch_u32, slice_at, sub,
};

/// Create context name: lease request/response (v1 and v2).
pub const CTX_LEASE: &[u8; 4] = b"RqLs";
/// Create context name: durable handle request/response v1.
pub const CTX_DURABLE: &[u8; 4] = b"DHnQ";
/// Create context name: durable handle request/response v2.
pub const CTX_DURABLE_V2: &[u8; 4] = b"DH2Q";
/// Create context name: durable handle reconnect v1.
pub const CTX_DURABLE_RECONNECT: &[u8; 4] = b"DHnC";
/// Create context name: durable handle reconnect v2.
pub const CTX_DURABLE_RECONNECT_V2: &[u8; 4] = b"DH2C";
/// Create context name: query maximal access.
pub const CTX_MAXIMAL_ACCESS: &[u8; 4] = b"MxAc";
/// Create context name: query on-disk id.
pub const CTX_QUERY_ON_DISK_ID: &[u8; 4] = b"QFid";
/// Create context name: extended attributes.
pub const CTX_EA_BUFFER: &[u8; 4] = b"ExtA";
/// Create context name: security descriptor.
pub const CTX_SD_BUFFER: &[u8; 4] = b"SecD";
/// Create context name: allocation size.
pub const CTX_ALLOCATION_SIZE: &[u8; 4] = b"AlSi";
/// Create context name: timewarp token (previous version).
pub const CTX_TIMEWARP: &[u8; 4] = b"TWrp";

const M_CC: &str = "create context";

/// One create context as on the wire: a name (usually 4 ASCII bytes) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateContext {
    /// Name bytes.
    pub name: Bytes,
    /// Data bytes.
    pub data: Bytes,
}

impl CreateContext {
    /// A context with a static name.
    pub fn new(name: &'static [u8; 4], data: impl Into<Bytes>) -> Self {
        CreateContext {
            name: Bytes::from_static(name),
            data: data.into(),
        }
    }

    /// True if this context is named `name`.
    pub fn is(&self, name: &[u8; 4]) -> bool {
        self.name.as_ref() == name
    }
}

/// The first context named `name` in `list`.
pub fn find_context<'a>(list: &'a [CreateContext], name: &[u8; 4]) -> Option<&'a CreateContext> {
    list.iter().find(|c| c.is(name))
}

/// Encodes a create-context list. `buf` positions are relative to `list_start`, which must be
/// 8-byte aligned in the message.
pub fn encode_create_contexts(buf: &mut BytesMut, list: &[CreateContext]) -> ProtoResult<()> {
    let list_start = buf.len();
    for (i, c) in list.iter().enumerate() {
        if i > 0 {
            pad8(buf, list_start);
        }
        let start = buf.len();
        buf.put_u32_le(0); // Next
        buf.put_u16_le(16); // NameOffset
        buf.put_u16_le(len16(c.name.len(), M_CC, "NameLength")?);
        buf.put_u16_le(0);
        buf.put_u16_le(0); // DataOffset
        buf.put_u32_le(len32(c.data.len(), M_CC, "DataLength")?);
        buf.extend_from_slice(&c.name);
        if !c.data.is_empty() {
            pad8(buf, start);
            let off = len16(buf.len() - start, M_CC, "DataOffset")?;
            patch_u16(buf, start + 10, off);
            buf.extend_from_slice(&c.data);
        }
        if i + 1 < list.len() {
            pad8(buf, list_start);
            let next = len32(buf.len() - start, M_CC, "Next")?;
            patch_u32(buf, start, next);
        }
    }
    Ok(())
}

/// Decodes a create-context list (zero-copy slices of `list`).
pub fn decode_create_contexts(list: &Bytes) -> ProtoResult<Vec<CreateContext>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    if list.is_empty() {
        return Ok(out);
    }
    loop {
        let mut r = Reader::at(list, pos, M_CC);
        let next = r.u32("Next")? as usize;
        let name_off = r.u16("NameOffset")? as usize;
        let name_len = r.u16("NameLength")? as usize;
        r.skip(2, "Reserved")?;
        let data_off = r.u16("DataOffset")? as usize;
        let data_len = r.u32("DataLength")? as usize;
        let end = if next == 0 {
            list.len()
        } else {
            pos.checked_add(next)
                .filter(|&e| e <= list.len() && next >= 16)
                .ok_or(ProtoError::BadValue {
                    msg: M_CC,
                    field: "Next",
                    value: next as u64,
                    why: "points outside the create context list",
                })?
        };
        let ctx = list.slice(pos..end);
        let name = slice_at(&ctx, name_off, name_len, 16, M_CC, "Name")?;
        let data = slice_at(&ctx, data_off, data_len, 16, M_CC, "Data")?;
        out.push(CreateContext { name, data });
        if next == 0 {
            return Ok(out);
        }
        pos = end;
    }
}

/// A lease (request or response context "RqLs"); v2 when `v2` is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lease {
    /// LeaseKey.
    pub key: [u8; 16],
    /// LeaseState requested or granted.
    pub state: LeaseState,
    /// Flags (BREAK_IN_PROGRESS in responses, PARENT_LEASE_KEY_SET in v2).
    pub flags: LeaseFlags,
    /// LeaseDuration (reserved, 0).
    pub duration: u64,
    /// The v2 fields (3.x).
    pub v2: Option<LeaseV2>,
}

/// The extra fields of a v2 lease.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseV2 {
    /// ParentLeaseKey (directory lease key of the parent).
    pub parent_key: [u8; 16],
    /// Epoch.
    pub epoch: u16,
}

impl Lease {
    /// The context carrying this lease.
    pub fn to_context(&self) -> CreateContext {
        let mut d = BytesMut::with_capacity(52);
        d.put_slice(&self.key);
        d.put_u32_le(self.state.bits());
        d.put_u32_le(self.flags.bits());
        d.put_u64_le(self.duration);
        if let Some(v2) = &self.v2 {
            d.put_slice(&v2.parent_key);
            d.put_u16_le(v2.epoch);
            d.put_u16_le(0);
        }
        CreateContext::new(CTX_LEASE, d.freeze())
    }

    /// Parses lease data (32 bytes: v1, 52 bytes: v2).
    pub fn parse(data: &[u8]) -> ProtoResult<Lease> {
        const M: &str = "lease create context";
        let mut r = Reader::at(data, 0, M);
        let key = r.array("LeaseKey")?;
        let state = LeaseState::from_bits_retain(r.u32("LeaseState")?);
        let flags = LeaseFlags::from_bits_retain(r.u32("LeaseFlags")?);
        let duration = r.u64("LeaseDuration")?;
        let v2 = if data.len() >= 52 {
            let parent_key = r.array("ParentLeaseKey")?;
            let epoch = r.u16("Epoch")?;
            Some(LeaseV2 { parent_key, epoch })
        } else {
            None
        };
        Ok(Lease {
            key,
            state,
            flags,
            duration,
            v2,
        })
    }
}

/// Durable handle v1 request ("DHnQ", 16 reserved bytes).
pub fn durable_request_v1() -> CreateContext {
    CreateContext::new(CTX_DURABLE, Bytes::from_static(&[0u8; 16]))
}

/// Durable handle v2 request ("DH2Q") and its response fields.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DurableV2 {
    /// Timeout in milliseconds (0 = server default).
    pub timeout: u32,
    /// Flags: 0x2 = persistent.
    pub flags: u32,
    /// CreateGuid (request only).
    pub create_guid: [u8; 16],
}

/// DH2Q flag: persistent handle.
pub const DHANDLE_FLAG_PERSISTENT: u32 = 0x0000_0002;

impl DurableV2 {
    /// The request context.
    pub fn to_request_context(&self) -> CreateContext {
        let mut d = BytesMut::with_capacity(32);
        d.put_u32_le(self.timeout);
        d.put_u32_le(self.flags);
        d.put_u64_le(0);
        d.put_slice(&self.create_guid);
        CreateContext::new(CTX_DURABLE_V2, d.freeze())
    }

    /// Parses a request context's data (32 bytes).
    pub fn parse_request(data: &[u8]) -> ProtoResult<DurableV2> {
        let mut r = Reader::at(data, 0, "DH2Q request");
        let timeout = r.u32("Timeout")?;
        let flags = r.u32("Flags")?;
        r.skip(8, "Reserved")?;
        let create_guid = r.array("CreateGuid")?;
        Ok(DurableV2 {
            timeout,
            flags,
            create_guid,
        })
    }

    /// The response context (8 bytes: Timeout, Flags).
    pub fn to_response_context(&self) -> CreateContext {
        let mut d = BytesMut::with_capacity(8);
        d.put_u32_le(self.timeout);
        d.put_u32_le(self.flags);
        CreateContext::new(CTX_DURABLE_V2, d.freeze())
    }

    /// Parses a response context's data (create_guid is left zero).
    pub fn parse_response(data: &[u8]) -> ProtoResult<DurableV2> {
        let mut r = Reader::at(data, 0, "DH2Q response");
        Ok(DurableV2 {
            timeout: r.u32("Timeout")?,
            flags: r.u32("Flags")?,
            create_guid: [0; 16],
        })
    }
}

/// Durable handle v1 reconnect ("DHnC" with the FileId to reclaim).
pub fn durable_reconnect_v1(file_id: FileId) -> CreateContext {
    let mut d = BytesMut::with_capacity(16);
    file_id.put(&mut d);
    CreateContext::new(CTX_DURABLE_RECONNECT, d.freeze())
}

/// Durable handle v2 reconnect ("DH2C").
pub fn durable_reconnect_v2(file_id: FileId, create_guid: [u8; 16], flags: u32) -> CreateContext {
    let mut d = BytesMut::with_capacity(36);
    file_id.put(&mut d);
    d.put_slice(&create_guid);
    d.put_u32_le(flags);
    CreateContext::new(CTX_DURABLE_RECONNECT_V2, d.freeze())
}

/// Maximal access request ("MxAc"), optionally with a timestamp.
pub fn maximal_access_request(timestamp: Option<FileTime>) -> CreateContext {
    match timestamp {
        None => CreateContext::new(CTX_MAXIMAL_ACCESS, Bytes::new()),
        Some(t) => CreateContext::new(
            CTX_MAXIMAL_ACCESS,
            Bytes::copy_from_slice(&t.0.to_le_bytes()),
        ),
    }
}

/// Maximal access response ("MxAc").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaximalAccessResponse {
    /// QueryStatus.
    pub query_status: NtStatus,
    /// MaximalAccess.
    pub maximal_access: AccessMask,
}

impl MaximalAccessResponse {
    /// Parses the response data (8 bytes).
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        let mut r = Reader::at(data, 0, "MxAc response");
        Ok(MaximalAccessResponse {
            query_status: NtStatus(r.u32("QueryStatus")?),
            maximal_access: AccessMask::from_bits_retain(r.u32("MaximalAccess")?),
        })
    }

    /// The response context.
    pub fn to_context(&self) -> CreateContext {
        let mut d = BytesMut::with_capacity(8);
        d.put_u32_le(self.query_status.0);
        d.put_u32_le(self.maximal_access.bits());
        CreateContext::new(CTX_MAXIMAL_ACCESS, d.freeze())
    }
}

/// Query on-disk id request ("QFid", no data).
pub fn query_on_disk_id_request() -> CreateContext {
    CreateContext::new(CTX_QUERY_ON_DISK_ID, Bytes::new())
}

/// Query on-disk id response ("QFid").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnDiskId {
    /// DiskFileId (the first 8 bytes are the inode number on Samba).
    pub disk_file_id: [u8; 16],
    /// VolumeId.
    pub volume_id: [u8; 16],
}

impl OnDiskId {
    /// Parses the response data (32 bytes).
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        let mut r = Reader::at(data, 0, "QFid response");
        Ok(OnDiskId {
            disk_file_id: r.array("DiskFileId")?,
            volume_id: r.array("VolumeId")?,
        })
    }

    /// The response context.
    pub fn to_context(&self) -> CreateContext {
        let mut d = BytesMut::with_capacity(32);
        d.put_slice(&self.disk_file_id);
        d.put_slice(&self.volume_id);
        CreateContext::new(CTX_QUERY_ON_DISK_ID, d.freeze())
    }
}

/// CREATE request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    /// RequestedOplockLevel.
    pub requested_oplock_level: OplockLevel,
    /// ImpersonationLevel.
    pub impersonation_level: ImpersonationLevel,
    /// SmbCreateFlags (reserved, 0).
    pub smb_create_flags: u64,
    /// DesiredAccess.
    pub desired_access: AccessMask,
    /// FileAttributes.
    pub file_attributes: FileAttributes,
    /// ShareAccess.
    pub share_access: ShareAccess,
    /// CreateDisposition.
    pub create_disposition: CreateDisposition,
    /// CreateOptions.
    pub create_options: CreateOptions,
    /// Path relative to the share, backslash-separated, no leading backslash; "" = the root.
    pub name: String,
    /// Create contexts.
    pub contexts: Vec<CreateContext>,
}

impl Default for CreateRequest {
    fn default() -> Self {
        CreateRequest {
            requested_oplock_level: OplockLevel::NONE,
            impersonation_level: ImpersonationLevel::IMPERSONATION,
            smb_create_flags: 0,
            desired_access: AccessMask::empty(),
            file_attributes: FileAttributes::empty(),
            share_access: ShareAccess::READ | ShareAccess::WRITE | ShareAccess::DELETE,
            create_disposition: CreateDisposition::OPEN,
            create_options: CreateOptions::empty(),
            name: String::new(),
            contexts: Vec::new(),
        }
    }
}

const M_CREQ: &str = "CREATE request";
const M_CRSP: &str = "CREATE response";

impl SmbMessage for CreateRequest {
    const COMMAND: Command = Command::CREATE;
    const NAME: &'static str = M_CREQ;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        let start = buf.len();
        buf.put_u16_le(57);
        buf.put_u8(0); // SecurityFlags
        buf.put_u8(self.requested_oplock_level.0);
        buf.put_u32_le(self.impersonation_level.0);
        buf.put_u64_le(self.smb_create_flags);
        buf.put_u64_le(0);
        buf.put_u32_le(self.desired_access.bits());
        buf.put_u32_le(self.file_attributes.bits());
        buf.put_u32_le(self.share_access.bits());
        buf.put_u32_le(self.create_disposition.0);
        buf.put_u32_le(self.create_options.bits());
        buf.put_u16_le((HEADER_SIZE + 56) as u16);
        let name_len_pos = buf.len();
        buf.put_u16_le(0);
        let ctx_pos = buf.len();
        buf.put_u32_le(0);
        buf.put_u32_le(0);
        let n = put_utf16le(buf, &self.name);
        patch_u16(buf, name_len_pos, len16(n, M_CREQ, "NameLength")?);
        if !self.contexts.is_empty() {
            pad8(buf, start);
            let off = msg_offset(buf, start);
            let list_start = buf.len();
            encode_create_contexts(buf, &self.contexts)?;
            patch_u32(buf, ctx_pos, len32(off, M_CREQ, "CreateContextsOffset")?);
            patch_u32(
                buf,
                ctx_pos + 4,
                len32(buf.len() - list_start, M_CREQ, "CreateContextsLength")?,
            );
        } else if n == 0 {
            buf.put_u8(0);
        }
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_CREQ)?;
        r.structure_size(57)?;
        r.skip(1, "SecurityFlags")?;
        let requested_oplock_level = OplockLevel(r.u8("RequestedOplockLevel")?);
        let impersonation_level = ImpersonationLevel(r.u32("ImpersonationLevel")?);
        let smb_create_flags = r.u64("SmbCreateFlags")?;
        r.skip(8, "Reserved")?;
        let desired_access = AccessMask::from_bits_retain(r.u32("DesiredAccess")?);
        let file_attributes = FileAttributes::from_bits_retain(r.u32("FileAttributes")?);
        let share_access = ShareAccess::from_bits_retain(r.u32("ShareAccess")?);
        let create_disposition = CreateDisposition(r.u32("CreateDisposition")?);
        let create_options = CreateOptions::from_bits_retain(r.u32("CreateOptions")?);
        let name_off = r.u16("NameOffset")? as usize;
        let name_len = r.u16("NameLength")? as usize;
        let ctx_off = r.u32("CreateContextsOffset")? as usize;
        let ctx_len = r.u32("CreateContextsLength")? as usize;
        let name = decode_utf16le(
            sub(msg, name_off, name_len, M_CREQ, "Name")?,
            M_CREQ,
            "Name",
        )?;
        let list = slice_at(msg, ctx_off, ctx_len, HEADER_SIZE, M_CREQ, "CreateContexts")?;
        Ok(CreateRequest {
            requested_oplock_level,
            impersonation_level,
            smb_create_flags,
            desired_access,
            file_attributes,
            share_access,
            create_disposition,
            create_options,
            name,
            contexts: decode_create_contexts(&list)?,
        })
    }
}

/// CREATE response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateResponse {
    /// OplockLevel granted (LEASE: see the "RqLs" context).
    pub oplock_level: OplockLevel,
    /// Flags (0x01 = reparse point, 3.x).
    pub flags: u8,
    /// CreateAction.
    pub create_action: CreateAction,
    /// CreationTime.
    pub creation_time: FileTime,
    /// LastAccessTime.
    pub last_access_time: FileTime,
    /// LastWriteTime.
    pub last_write_time: FileTime,
    /// ChangeTime.
    pub change_time: FileTime,
    /// AllocationSize.
    pub allocation_size: u64,
    /// EndofFile.
    pub end_of_file: u64,
    /// FileAttributes.
    pub file_attributes: FileAttributes,
    /// FileId.
    pub file_id: FileId,
    /// Create contexts.
    pub contexts: Vec<CreateContext>,
}

impl CreateResponse {
    /// The granted lease, if a lease context came back.
    pub fn lease(&self) -> ProtoResult<Option<Lease>> {
        find_context(&self.contexts, CTX_LEASE)
            .map(|c| Lease::parse(&c.data))
            .transpose()
    }

    /// The maximal access, if a MxAc context came back.
    pub fn maximal_access(&self) -> ProtoResult<Option<MaximalAccessResponse>> {
        find_context(&self.contexts, CTX_MAXIMAL_ACCESS)
            .map(|c| MaximalAccessResponse::parse(&c.data))
            .transpose()
    }

    /// The on-disk id, if a QFid context came back.
    pub fn on_disk_id(&self) -> ProtoResult<Option<OnDiskId>> {
        find_context(&self.contexts, CTX_QUERY_ON_DISK_ID)
            .map(|c| OnDiskId::parse(&c.data))
            .transpose()
    }

    /// The durable v2 grant, if a DH2Q context came back.
    pub fn durable_v2(&self) -> ProtoResult<Option<DurableV2>> {
        find_context(&self.contexts, CTX_DURABLE_V2)
            .map(|c| DurableV2::parse_response(&c.data))
            .transpose()
    }

    /// True if a v1 durable grant (DHnQ) came back.
    pub fn durable_v1(&self) -> bool {
        find_context(&self.contexts, CTX_DURABLE).is_some()
    }
}

impl SmbMessage for CreateResponse {
    const COMMAND: Command = Command::CREATE;
    const NAME: &'static str = M_CRSP;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        let start = buf.len();
        buf.put_u16_le(89);
        buf.put_u8(self.oplock_level.0);
        buf.put_u8(self.flags);
        buf.put_u32_le(self.create_action.0);
        for t in [
            self.creation_time,
            self.last_access_time,
            self.last_write_time,
            self.change_time,
        ] {
            buf.put_u64_le(t.0);
        }
        buf.put_u64_le(self.allocation_size);
        buf.put_u64_le(self.end_of_file);
        buf.put_u32_le(self.file_attributes.bits());
        buf.put_u32_le(0);
        self.file_id.put(buf);
        let ctx_pos = buf.len();
        buf.put_u32_le(0);
        buf.put_u32_le(0);
        if self.contexts.is_empty() {
            buf.put_u8(0);
        } else {
            let off = msg_offset(buf, start);
            let list_start = buf.len();
            encode_create_contexts(buf, &self.contexts)?;
            patch_u32(buf, ctx_pos, len32(off, M_CRSP, "CreateContextsOffset")?);
            patch_u32(
                buf,
                ctx_pos + 4,
                len32(buf.len() - list_start, M_CRSP, "CreateContextsLength")?,
            );
        }
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_CRSP)?;
        r.structure_size(89)?;
        let oplock_level = OplockLevel(r.u8("OplockLevel")?);
        let flags = r.u8("Flags")?;
        let create_action = CreateAction(r.u32("CreateAction")?);
        let creation_time = FileTime(r.u64("CreationTime")?);
        let last_access_time = FileTime(r.u64("LastAccessTime")?);
        let last_write_time = FileTime(r.u64("LastWriteTime")?);
        let change_time = FileTime(r.u64("ChangeTime")?);
        let allocation_size = r.u64("AllocationSize")?;
        let end_of_file = r.u64("EndofFile")?;
        let file_attributes = FileAttributes::from_bits_retain(r.u32("FileAttributes")?);
        r.skip(4, "Reserved2")?;
        let file_id = FileId::read(&mut r)?;
        let ctx_off = r.u32("CreateContextsOffset")? as usize;
        let ctx_len = r.u32("CreateContextsLength")? as usize;
        let list = slice_at(msg, ctx_off, ctx_len, HEADER_SIZE, M_CRSP, "CreateContexts")?;
        Ok(CreateResponse {
            oplock_level,
            flags,
            create_action,
            creation_time,
            last_access_time,
            last_write_time,
            change_time,
            allocation_size,
            end_of_file,
            file_attributes,
            file_id,
            contexts: decode_create_contexts(&list)?,
        })
    }
}
