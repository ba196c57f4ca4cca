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
