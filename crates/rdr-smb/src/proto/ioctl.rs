//! IOCTL request/response (generic) and FSCTL_VALIDATE_NEGOTIATE_INFO.

use bytes::{BufMut, Bytes, BytesMut};

use super::consts::{Capabilities, Command, Dialect, SecurityMode, fsctl};
use super::error::ProtoResult;
use super::header::{FileId, HEADER_SIZE, SmbMessage};
use super::wire::{Reader, body_reader, len16, len32, msg_offset, pad8, patch_u32, slice_at};

/// IOCTL flag: the control code is an FSCTL (always set for FSCTLs).
pub const IOCTL_IS_FSCTL: u32 = 0x0000_0001;

/// IOCTL request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IoctlRequest {
    /// CtlCode (see [`fsctl`]).
    pub ctl_code: u32,
    /// The handle (all ones for handle-less FSCTLs such as VALIDATE_NEGOTIATE_INFO).
    pub file_id: FileId,
    /// Input buffer.
    pub input: Bytes,
    /// MaxInputResponse.
    pub max_input_response: u32,
    /// Output buffer sent to the server (rarely used).
    pub output: Bytes,
    /// MaxOutputResponse.
    pub max_output_response: u32,
    /// Flags (IOCTL_IS_FSCTL).
    pub flags: u32,
}

const M_IREQ: &str = "IOCTL request";
const M_IRSP: &str = "IOCTL response";

impl SmbMessage for IoctlRequest {
    const COMMAND: Command = Command::IOCTL;
    const NAME: &'static str = M_IREQ;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        let start = buf.len();
        buf.put_u16_le(57);
        buf.put_u16_le(0);
        buf.put_u32_le(self.ctl_code);
        self.file_id.put(buf);
        let in_pos = buf.len();
        buf.put_u32_le(0);
        buf.put_u32_le(len32(self.input.len(), M_IREQ, "InputCount")?);
        buf.put_u32_le(self.max_input_response);
        let out_pos = buf.len();
        buf.put_u32_le(0);
        buf.put_u32_le(len32(self.output.len(), M_IREQ, "OutputCount")?);
        buf.put_u32_le(self.max_output_response);
        buf.put_u32_le(self.flags);
        buf.put_u32_le(0);
        if !self.input.is_empty() {
            let off = len32(msg_offset(buf, start), M_IREQ, "InputOffset")?;
            patch_u32(buf, in_pos, off);
            buf.extend_from_slice(&self.input);
        }
        if !self.output.is_empty() {
            pad8(buf, start);
            let off = len32(msg_offset(buf, start), M_IREQ, "OutputOffset")?;
            patch_u32(buf, out_pos, off);
            buf.extend_from_slice(&self.output);
        }
        Ok(())
    }

    fn payload_size(&self) -> usize {
        (self.input.len() + self.output.len()).max(self.max_output_response as usize)
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_IREQ)?;
        r.structure_size(57)?;
        r.skip(2, "Reserved")?;
        let ctl_code = r.u32("CtlCode")?;
        let file_id = FileId::read(&mut r)?;
        let in_off = r.u32("InputOffset")? as usize;
        let in_len = r.u32("InputCount")? as usize;
        let max_input_response = r.u32("MaxInputResponse")?;
        let out_off = r.u32("OutputOffset")? as usize;
        let out_len = r.u32("OutputCount")? as usize;
        let max_output_response = r.u32("MaxOutputResponse")?;
        let flags = r.u32("Flags")?;
        r.skip(4, "Reserved2")?;
        Ok(IoctlRequest {
            ctl_code,
            file_id,
            input: slice_at(msg, in_off, in_len, HEADER_SIZE, M_IREQ, "Input")?,
            max_input_response,
            output: slice_at(msg, out_off, out_len, HEADER_SIZE, M_IREQ, "Output")?,
            max_output_response,
            flags,
        })
    }
}

/// IOCTL response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IoctlResponse {
    /// CtlCode.
    pub ctl_code: u32,
    /// The handle.
    pub file_id: FileId,
    /// Input buffer echoed by the server (usually empty).
    pub input: Bytes,
    /// Output buffer.
    pub output: Bytes,
    /// Flags.
    pub flags: u32,
}

impl SmbMessage for IoctlResponse {
    const COMMAND: Command = Command::IOCTL;
    const NAME: &'static str = M_IRSP;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        let start = buf.len();
        buf.put_u16_le(49);
        buf.put_u16_le(0);
        buf.put_u32_le(self.ctl_code);
        self.file_id.put(buf);
        let in_pos = buf.len();
        buf.put_u32_le((HEADER_SIZE + 48) as u32);
        buf.put_u32_le(len32(self.input.len(), M_IRSP, "InputCount")?);
        let out_pos = buf.len();
        buf.put_u32_le((HEADER_SIZE + 48) as u32);
        buf.put_u32_le(len32(self.output.len(), M_IRSP, "OutputCount")?);
        buf.put_u32_le(self.flags);
        buf.put_u32_le(0);
        if !self.input.is_empty() {
            let off = len32(msg_offset(buf, start), M_IRSP, "InputOffset")?;
            patch_u32(buf, in_pos, off);
            buf.extend_from_slice(&self.input);
            pad8(buf, start);
        }
        let off = len32(msg_offset(buf, start), M_IRSP, "OutputOffset")?;
        patch_u32(buf, out_pos, off);
        buf.extend_from_slice(&self.output);
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_IRSP)?;
        r.structure_size(49)?;
        r.skip(2, "Reserved")?;
        let ctl_code = r.u32("CtlCode")?;
        let file_id = FileId::read(&mut r)?;
        let in_off = r.u32("InputOffset")? as usize;
        let in_len = r.u32("InputCount")? as usize;
        let out_off = r.u32("OutputOffset")? as usize;
        let out_len = r.u32("OutputCount")? as usize;
        let flags = r.u32("Flags")?;
        r.skip(4, "Reserved2")?;
        Ok(IoctlResponse {
            ctl_code,
            file_id,
            input: slice_at(msg, in_off, in_len, HEADER_SIZE, M_IRSP, "Input")?,
            output: slice_at(msg, out_off, out_len, HEADER_SIZE, M_IRSP, "Output")?,
            flags,
        })
    }
}

/// FSCTL_VALIDATE_NEGOTIATE_INFO input: what the client sent in NEGOTIATE.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidateNegotiateInfoRequest {
    /// Capabilities sent in NEGOTIATE.
    pub capabilities: Capabilities,
    /// ClientGuid.
    pub guid: [u8; 16],
    /// SecurityMode sent in NEGOTIATE.
    pub security_mode: SecurityMode,
    /// Dialects offered.
    pub dialects: Vec<Dialect>,
}

const M_VNREQ: &str = "VALIDATE_NEGOTIATE_INFO request";
const M_VNRSP: &str = "VALIDATE_NEGOTIATE_INFO response";

impl ValidateNegotiateInfoRequest {
    /// The IOCTL input bytes.
    pub fn encode(&self) -> ProtoResult<Bytes> {
        let mut b = BytesMut::with_capacity(24 + 2 * self.dialects.len());
        b.put_u32_le(self.capabilities.bits());
        b.put_slice(&self.guid);
        b.put_u16_le(self.security_mode.bits());
        b.put_u16_le(len16(self.dialects.len(), M_VNREQ, "DialectCount")?);
        for d in &self.dialects {
            b.put_u16_le(d.0);
        }
        Ok(b.freeze())
    }

    /// Parses the IOCTL input bytes.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        let mut r = Reader::at(data, 0, M_VNREQ);
        let capabilities = Capabilities::from_bits_retain(r.u32("Capabilities")?);
        let guid = r.array("Guid")?;
        let security_mode = SecurityMode::from_bits_retain(r.u16("SecurityMode")?);
        let n = r.u16("DialectCount")?;
        let mut dialects = Vec::with_capacity(n as usize);
        for _ in 0..n {
            dialects.push(Dialect(r.u16("Dialects")?));
        }
        Ok(ValidateNegotiateInfoRequest {
            capabilities,
            guid,
            security_mode,
            dialects,
        })
    }

    /// The whole IOCTL request (handle-less, IS_FSCTL, 24-byte max output).
    pub fn to_ioctl(&self) -> ProtoResult<IoctlRequest> {
        Ok(IoctlRequest {
            ctl_code: fsctl::FSCTL_VALIDATE_NEGOTIATE_INFO,
            file_id: FileId::RELATED,
            input: self.encode()?,
            max_input_response: 0,
            output: Bytes::new(),
            max_output_response: 24,
            flags: IOCTL_IS_FSCTL,
        })
    }
}

/// FSCTL_VALIDATE_NEGOTIATE_INFO output: what the server negotiated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidateNegotiateInfoResponse {
    /// Server capabilities.
    pub capabilities: Capabilities,
    /// ServerGuid.
    pub guid: [u8; 16],
    /// Server SecurityMode.
    pub security_mode: SecurityMode,
    /// The dialect.
    pub dialect: Dialect,
}

impl ValidateNegotiateInfoResponse {
    /// The IOCTL output bytes.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(24);
        b.put_u32_le(self.capabilities.bits());
        b.put_slice(&self.guid);
        b.put_u16_le(self.security_mode.bits());
        b.put_u16_le(self.dialect.0);
        b.freeze()
    }

    /// Parses the IOCTL output bytes.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        let mut r = Reader::at(data, 0, M_VNRSP);
        Ok(ValidateNegotiateInfoResponse {
            capabilities: Capabilities::from_bits_retain(r.u32("Capabilities")?),
            guid: r.array("Guid")?,
            security_mode: SecurityMode::from_bits_retain(r.u16("SecurityMode")?),
            dialect: Dialect(r.u16("Dialect")?),
        })
    }
}

/// Length of a resume key: the server's name for an open, by which a server-side copy names
/// its source ([MS-SMB2] 2.2.32.3).
pub const RESUME_KEY_LEN: usize = 24;

const M_RESUME: &str = "SRV_REQUEST_RESUME_KEY response";
const M_CCCOPY: &str = "SRV_COPYCHUNK_COPY";
const M_CCRSP: &str = "SRV_COPYCHUNK_RESPONSE";

/// FSCTL_SRV_REQUEST_RESUME_KEY on `file_id`: asks for the open's resume key.
pub fn resume_key_request(file_id: FileId) -> IoctlRequest {
    IoctlRequest {
        ctl_code: fsctl::FSCTL_SRV_REQUEST_RESUME_KEY,
        file_id,
        max_output_response: 32,
        flags: IOCTL_IS_FSCTL,
        ..IoctlRequest::default()
    }
}

/// The resume key from a FSCTL_SRV_REQUEST_RESUME_KEY output (the context that follows it is
/// unused and ignored).
pub fn parse_resume_key(output: &[u8]) -> ProtoResult<[u8; RESUME_KEY_LEN]> {
    Reader::at(output, 0, M_RESUME).array("ResumeKey")
}

/// One range of a server-side copy (SRV_COPYCHUNK, [MS-SMB2] 2.2.31.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyChunk {
    /// Where in the source the range starts.
    pub source_offset: u64,
    /// Where in the destination it goes.
    pub target_offset: u64,
    /// Its length in bytes.
    pub length: u32,
}

/// SRV_COPYCHUNK_COPY: the IOCTL input of a server-side copy, sent on the destination handle.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyChunkCopy {
    /// The source open's resume key.
    pub source_key: [u8; RESUME_KEY_LEN],
    /// The ranges, copied in order.
    pub chunks: Vec<CopyChunk>,
}

impl CopyChunkCopy {
    /// The IOCTL input bytes.
    pub fn encode(&self) -> ProtoResult<Bytes> {
        let mut b = BytesMut::with_capacity(32 + 24 * self.chunks.len());
        b.put_slice(&self.source_key);
        b.put_u32_le(len32(self.chunks.len(), M_CCCOPY, "ChunkCount")?);
        b.put_u32_le(0);
        for c in &self.chunks {
            b.put_u64_le(c.source_offset);
            b.put_u64_le(c.target_offset);
            b.put_u32_le(c.length);
            b.put_u32_le(0);
        }
        Ok(b.freeze())
    }

    /// Parses the IOCTL input bytes (a chunk count larger than the data is an error).
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        let mut r = Reader::at(data, 0, M_CCCOPY);
        let source_key = r.array("SourceKey")?;
        let n = r.u32("ChunkCount")? as usize;
        r.skip(4, "Reserved")?;
        // Never reserve more than the data can hold.
        let mut chunks = Vec::with_capacity(n.min(data.len() / 24));
        for _ in 0..n {
            let source_offset = r.u64("SourceOffset")?;
            let target_offset = r.u64("TargetOffset")?;
            let length = r.u32("Length")?;
            r.skip(4, "Reserved")?;
            chunks.push(CopyChunk {
                source_offset,
                target_offset,
                length,
            });
        }
        Ok(CopyChunkCopy { source_key, chunks })
    }

    /// The whole IOCTL request on the destination `file_id` (FSCTL_SRV_COPYCHUNK_WRITE: the
    /// destination needs write access only).
    pub fn to_ioctl(&self, file_id: FileId) -> ProtoResult<IoctlRequest> {
        Ok(IoctlRequest {
            ctl_code: fsctl::FSCTL_SRV_COPYCHUNK_WRITE,
            file_id,
            input: self.encode()?,
            max_output_response: 12,
            flags: IOCTL_IS_FSCTL,
            ..IoctlRequest::default()
        })
    }
}

/// SRV_COPYCHUNK_RESPONSE: what a server-side copy wrote; with STATUS_INVALID_PARAMETER, the
/// server's limits instead (most chunks, largest chunk, most bytes per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyChunkResponse {
    /// ChunksWritten (or the most chunks per request).
    pub chunks_written: u32,
    /// ChunkBytesWritten (or the largest chunk).
    pub chunk_bytes_written: u32,
    /// TotalBytesWritten (or the most bytes per request).
    pub total_bytes_written: u32,
}

impl CopyChunkResponse {
    /// The IOCTL output bytes.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(12);
        b.put_u32_le(self.chunks_written);
        b.put_u32_le(self.chunk_bytes_written);
        b.put_u32_le(self.total_bytes_written);
        b.freeze()
    }

    /// Parses the IOCTL output bytes.
    pub fn parse(data: &[u8]) -> ProtoResult<Self> {
        let mut r = Reader::at(data, 0, M_CCRSP);
        Ok(CopyChunkResponse {
            chunks_written: r.u32("ChunksWritten")?,
            chunk_bytes_written: r.u32("ChunkBytesWritten")?,
            total_bytes_written: r.u32("TotalBytesWritten")?,
        })
    }
}
