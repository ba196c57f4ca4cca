//! CLOSE, FLUSH, READ, WRITE and LOCK. READ response data is a zero-copy slice of the received
//! buffer; a WRITE request keeps its payload as a separate `Bytes` so the connection can send
//! header and payload with one vectored write.

use bytes::{BufMut, Bytes, BytesMut};

use bitflags::bitflags;

use super::consts::{Command, FileAttributes};
use super::error::{ProtoError, ProtoResult};
use super::header::{FileId, HEADER_SIZE, SmbMessage};
use super::session::empty_message;
use super::time::FileTime;
use super::wire::{body_reader, len16, len32, slice_at};

/// CLOSE flag: return the file's attributes in the response.
pub const CLOSE_FLAG_POSTQUERY_ATTRIB: u16 = 0x0001;

/// CLOSE request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseRequest {
    /// Flags (CLOSE_FLAG_POSTQUERY_ATTRIB).
    pub flags: u16,
    /// The handle.
    pub file_id: FileId,
}

const M_CLREQ: &str = "CLOSE request";
const M_CLRSP: &str = "CLOSE response";

impl SmbMessage for CloseRequest {
    const COMMAND: Command = Command::CLOSE;
    const NAME: &'static str = M_CLREQ;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(24);
        buf.put_u16_le(self.flags);
        buf.put_u32_le(0);
        self.file_id.put(buf);
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_CLREQ)?;
        r.structure_size(24)?;
        let flags = r.u16("Flags")?;
        r.skip(4, "Reserved")?;
        Ok(CloseRequest {
            flags,
            file_id: FileId::read(&mut r)?,
        })
    }
}

/// CLOSE response (attributes are zero unless POSTQUERY_ATTRIB was asked and echoed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseResponse {
    /// Flags.
    pub flags: u16,
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
}

impl SmbMessage for CloseResponse {
    const COMMAND: Command = Command::CLOSE;
    const NAME: &'static str = M_CLRSP;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(60);
        buf.put_u16_le(self.flags);
        buf.put_u32_le(0);
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
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_CLRSP)?;
        r.structure_size(60)?;
        let flags = r.u16("Flags")?;
        r.skip(4, "Reserved")?;
        Ok(CloseResponse {
            flags,
            creation_time: FileTime(r.u64("CreationTime")?),
            last_access_time: FileTime(r.u64("LastAccessTime")?),
            last_write_time: FileTime(r.u64("LastWriteTime")?),
            change_time: FileTime(r.u64("ChangeTime")?),
            allocation_size: r.u64("AllocationSize")?,
            end_of_file: r.u64("EndofFile")?,
            file_attributes: FileAttributes::from_bits_retain(r.u32("FileAttributes")?),
        })
    }
}

/// FLUSH request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlushRequest {
    /// The handle.
    pub file_id: FileId,
}

impl SmbMessage for FlushRequest {
    const COMMAND: Command = Command::FLUSH;
    const NAME: &'static str = "FLUSH request";

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(24);
        buf.put_u16_le(0);
        buf.put_u32_le(0);
        self.file_id.put(buf);
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, Self::NAME)?;
        r.structure_size(24)?;
        r.skip(6, "Reserved")?;
        Ok(FlushRequest {
            file_id: FileId::read(&mut r)?,
        })
    }
}

empty_message!(
    /// FLUSH response.
    FlushResponse, Command::FLUSH, "FLUSH response");

/// READ request flag: unbuffered read (3.0.2+).
pub const READ_FLAG_UNBUFFERED: u8 = 0x01;

/// READ request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadRequest {
    /// Padding: the offset the client wants the data at in the response (0x50 = right after
    /// the response's fixed part).
    pub padding: u8,
    /// Flags.
    pub flags: u8,
    /// Bytes to read.
    pub length: u32,
    /// File offset.
    pub offset: u64,
    /// The handle.
    pub file_id: FileId,
    /// MinimumCount.
    pub minimum_count: u32,
    /// Channel (0: none).
    pub channel: u32,
    /// RemainingBytes.
    pub remaining_bytes: u32,
}

const M_RREQ: &str = "READ request";
const M_RRSP: &str = "READ response";

impl SmbMessage for ReadRequest {
    const COMMAND: Command = Command::READ;
    const NAME: &'static str = M_RREQ;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(49);
        buf.put_u8(self.padding);
        buf.put_u8(self.flags);
        buf.put_u32_le(self.length);
        buf.put_u64_le(self.offset);
        self.file_id.put(buf);
        buf.put_u32_le(self.minimum_count);
        buf.put_u32_le(self.channel);
        buf.put_u32_le(self.remaining_bytes);
        buf.put_u16_le(0);
        buf.put_u16_le(0);
        buf.put_u8(0);
        Ok(())
    }

    fn payload_size(&self) -> usize {
        self.length as usize
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_RREQ)?;
        r.structure_size(49)?;
        let padding = r.u8("Padding")?;
        let flags = r.u8("Flags")?;
        let length = r.u32("Length")?;
        let offset = r.u64("Offset")?;
        let file_id = FileId::read(&mut r)?;
        let minimum_count = r.u32("MinimumCount")?;
        let channel = r.u32("Channel")?;
        let remaining_bytes = r.u32("RemainingBytes")?;
        r.skip(4, "ReadChannelInfoOffset/Length")?;
        Ok(ReadRequest {
            padding,
            flags,
            length,
            offset,
            file_id,
            minimum_count,
            channel,
            remaining_bytes,
        })
    }
}

/// READ response. `data` is a slice of the received frame (no copy).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReadResponse {
    /// The data read.
    pub data: Bytes,
    /// DataRemaining.
    pub data_remaining: u32,
    /// Flags (3.1.1: 0x1 = RDMA transform).
    pub flags: u32,
}

impl SmbMessage for ReadResponse {
    const COMMAND: Command = Command::READ;
    const NAME: &'static str = M_RRSP;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(17);
        buf.put_u8((HEADER_SIZE + 16) as u8);
        buf.put_u8(0);
        buf.put_u32_le(len32(self.data.len(), M_RRSP, "DataLength")?);
        buf.put_u32_le(self.data_remaining);
        buf.put_u32_le(self.flags);
        if self.data.is_empty() {
            buf.put_u8(0);
        } else {
            buf.extend_from_slice(&self.data);
        }
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_RRSP)?;
        r.structure_size(17)?;
        let off = r.u8("DataOffset")? as usize;
        r.skip(1, "Reserved")?;
        let len = r.u32("DataLength")? as usize;
        let data_remaining = r.u32("DataRemaining")?;
        let flags = r.u32("Flags")?;
        let data = slice_at(msg, off, len, HEADER_SIZE + 16, M_RRSP, "Data")?;
        Ok(ReadResponse {
            data,
            data_remaining,
            flags,
        })
    }
}

/// WRITE flag: write through.
pub const WRITE_FLAG_WRITE_THROUGH: u32 = 0x0000_0001;
/// WRITE flag: unbuffered (3.0.2+).
pub const WRITE_FLAG_UNBUFFERED: u32 = 0x0000_0002;

/// WRITE request. The payload stays a separate `Bytes`: [`WriteRequest::encode_head`] writes
/// only the fixed part (DataOffset 0x70, Length = payload length) so the connection can send
/// `[header+fixed part, payload]` with a vectored write; [`SmbMessage::encode_body`] appends
/// the payload for the simple path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteRequest {
    /// File offset.
    pub offset: u64,
    /// The handle.
    pub file_id: FileId,
    /// Channel (0: none).
    pub channel: u32,
    /// RemainingBytes.
    pub remaining_bytes: u32,
    /// Flags (WRITE_FLAG_*).
    pub flags: u32,
    /// The data.
    pub data: Bytes,
}

const M_WREQ: &str = "WRITE request";
const M_WRSP: &str = "WRITE response";
/// Offset of WRITE data from the header: 64 + 48.
pub const WRITE_DATA_OFFSET: u16 = (HEADER_SIZE + 48) as u16;

impl WriteRequest {
    /// Appends the fixed part only (plus one pad byte when the payload is empty). The payload
    /// ([`WriteRequest::data`]) must follow it on the wire.
    pub fn encode_head(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(49);
        buf.put_u16_le(WRITE_DATA_OFFSET);
        buf.put_u32_le(len32(self.data.len(), M_WREQ, "Length")?);
        buf.put_u64_le(self.offset);
        self.file_id.put(buf);
        buf.put_u32_le(self.channel);
        buf.put_u32_le(self.remaining_bytes);
        buf.put_u16_le(0);
        buf.put_u16_le(0);
        buf.put_u32_le(self.flags);
        if self.data.is_empty() {
            buf.put_u8(0);
        }
        Ok(())
    }
}

impl SmbMessage for WriteRequest {
    const COMMAND: Command = Command::WRITE;
    const NAME: &'static str = M_WREQ;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        self.encode_head(buf)?;
        buf.extend_from_slice(&self.data);
        Ok(())
    }

    fn payload_size(&self) -> usize {
        self.data.len()
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_WREQ)?;
        r.structure_size(49)?;
        let off = r.u16("DataOffset")? as usize;
        let len = r.u32("Length")? as usize;
        let offset = r.u64("Offset")?;
        let file_id = FileId::read(&mut r)?;
        let channel = r.u32("Channel")?;
        let remaining_bytes = r.u32("RemainingBytes")?;
        r.skip(4, "WriteChannelInfoOffset/Length")?;
        let flags = r.u32("Flags")?;
        let data = slice_at(msg, off, len, HEADER_SIZE + 48, M_WREQ, "Data")?;
        Ok(WriteRequest {
            offset,
            file_id,
            channel,
            remaining_bytes,
            flags,
            data,
        })
    }
}

/// WRITE response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteResponse {
    /// Bytes written.
    pub count: u32,
    /// Remaining (reserved).
    pub remaining: u32,
}

impl SmbMessage for WriteResponse {
    const COMMAND: Command = Command::WRITE;
    const NAME: &'static str = M_WRSP;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(17);
        buf.put_u16_le(0);
        buf.put_u32_le(self.count);
        buf.put_u32_le(self.remaining);
        buf.put_u16_le(0);
        buf.put_u16_le(0);
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_WRSP)?;
        r.structure_size(17)?;
        r.skip(2, "Reserved")?;
        let count = r.u32("Count")?;
        let remaining = r.u32("Remaining")?;
        r.skip(4, "WriteChannelInfoOffset/Length")?;
        Ok(WriteResponse { count, remaining })
    }
}

bitflags! {
    /// LOCK element flags.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct LockFlags: u32 {
        /// Shared (read) lock.
        const SHARED = 0x0000_0001;
        /// Exclusive (write) lock.
        const EXCLUSIVE = 0x0000_0002;
        /// Unlock the range.
        const UNLOCK = 0x0000_0004;
        /// Fail at once instead of waiting.
        const FAIL_IMMEDIATELY = 0x0000_0010;
        const _ = !0;
    }
}

/// One byte-range lock or unlock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LockElement {
    /// Start of the range.
    pub offset: u64,
    /// Length of the range.
    pub length: u64,
    /// What to do.
    pub flags: LockFlags,
}

/// LOCK request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LockRequest {
    /// LockSequenceNumber (low 4 bits) and LockSequenceIndex (high 28 bits), 2.1+.
    pub lock_sequence: u32,
    /// The handle.
    pub file_id: FileId,
    /// The locks (at least one).
    pub locks: Vec<LockElement>,
}

const M_LREQ: &str = "LOCK request";

impl SmbMessage for LockRequest {
    const COMMAND: Command = Command::LOCK;
    const NAME: &'static str = M_LREQ;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        if self.locks.is_empty() {
            return Err(ProtoError::BadValue {
                msg: M_LREQ,
                field: "LockCount",
                value: 0,
                why: "a LOCK request carries at least one lock",
            });
        }
        buf.put_u16_le(48);
        buf.put_u16_le(len16(self.locks.len(), M_LREQ, "LockCount")?);
        buf.put_u32_le(self.lock_sequence);
        self.file_id.put(buf);
        for l in &self.locks {
            buf.put_u64_le(l.offset);
            buf.put_u64_le(l.length);
            buf.put_u32_le(l.flags.bits());
            buf.put_u32_le(0);
        }
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_LREQ)?;
        r.structure_size(48)?;
        let n = r.u16("LockCount")?;
        let lock_sequence = r.u32("LockSequence")?;
        let file_id = FileId::read(&mut r)?;
        let mut locks = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let offset = r.u64("Lock.Offset")?;
            let length = r.u64("Lock.Length")?;
            let flags = LockFlags::from_bits_retain(r.u32("Lock.Flags")?);
            r.skip(4, "Lock.Reserved")?;
            locks.push(LockElement {
                offset,
                length,
                flags,
            });
        }
        Ok(LockRequest {
            lock_sequence,
            file_id,
            locks,
        })
    }
}

empty_message!(
    /// LOCK response.
    LockResponse, Command::LOCK, "LOCK response");
