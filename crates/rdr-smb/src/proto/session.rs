//! SESSION_SETUP, LOGOFF, TREE_CONNECT, TREE_DISCONNECT, and the small fixed messages
//! (ECHO, CANCEL) whose body is StructureSize 4 + Reserved.

use bytes::{BufMut, Bytes, BytesMut};

use super::consts::{
    Capabilities, Command, SecurityMode, SessionFlags, ShareCapabilities, ShareFlags, ShareType,
    TreeConnectFlags,
};
use super::error::ProtoResult;
use super::header::{HEADER_SIZE, SmbMessage};
use super::utf16::{decode_utf16le, put_utf16le};
use super::wire::{body_reader, len16, slice_at};

macro_rules! empty_message {
    ($(#[$doc:meta])* $ty:ident, $cmd:expr, $name:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $ty;

        impl SmbMessage for $ty {
            const COMMAND: Command = $cmd;
            const NAME: &'static str = $name;

            fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
                buf.put_u16_le(4);
                buf.put_u16_le(0);
                Ok(())
            }

            fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
                let mut r = body_reader(msg, $name)?;
                r.structure_size(4)?;
                r.skip(2, "Reserved")?;
                Ok($ty)
            }
        }
    };
}
pub(crate) use empty_message;

empty_message!(
    /// LOGOFF request.
    LogoffRequest, Command::LOGOFF, "LOGOFF request");
empty_message!(
    /// LOGOFF response.
    LogoffResponse, Command::LOGOFF, "LOGOFF response");
empty_message!(
    /// TREE_DISCONNECT request.
    TreeDisconnectRequest, Command::TREE_DISCONNECT, "TREE_DISCONNECT request");
empty_message!(
    /// TREE_DISCONNECT response.
    TreeDisconnectResponse, Command::TREE_DISCONNECT, "TREE_DISCONNECT response");
empty_message!(
    /// ECHO request.
    EchoRequest, Command::ECHO, "ECHO request");
empty_message!(
    /// ECHO response.
    EchoResponse, Command::ECHO, "ECHO response");
empty_message!(
    /// CANCEL request (sent with the MessageId, or AsyncId, of the request to cancel; no response).
    CancelRequest, Command::CANCEL, "CANCEL request");

/// SESSION_SETUP request `Flags`: bind an existing session to this connection (multichannel).
pub const SESSION_FLAG_BINDING: u8 = 0x01;

/// SESSION_SETUP request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSetupRequest {
    /// Flags (SESSION_FLAG_BINDING).
    pub flags: u8,
    /// SecurityMode (1 byte on the wire).
    pub security_mode: SecurityMode,
    /// Capabilities (only DFS is meaningful).
    pub capabilities: Capabilities,
    /// Channel (must be 0).
    pub channel: u32,
    /// PreviousSessionId, to reclaim a session after reconnect.
    pub previous_session_id: u64,
    /// The GSS token.
    pub security_buffer: Bytes,
}

const M_SSREQ: &str = "SESSION_SETUP request";
const M_SSRSP: &str = "SESSION_SETUP response";

impl SmbMessage for SessionSetupRequest {
    const COMMAND: Command = Command::SESSION_SETUP;
    const NAME: &'static str = M_SSREQ;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        let len = len16(self.security_buffer.len(), M_SSREQ, "SecurityBufferLength")?;
        buf.put_u16_le(25);
        buf.put_u8(self.flags);
        buf.put_u8(self.security_mode.bits() as u8);
        buf.put_u32_le(self.capabilities.bits());
        buf.put_u32_le(self.channel);
        buf.put_u16_le((HEADER_SIZE + 24) as u16);
        buf.put_u16_le(len);
        buf.put_u64_le(self.previous_session_id);
        if self.security_buffer.is_empty() {
            buf.put_u8(0);
        } else {
            buf.extend_from_slice(&self.security_buffer);
        }
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_SSREQ)?;
        r.structure_size(25)?;
        let flags = r.u8("Flags")?;
        let security_mode = SecurityMode::from_bits_retain(r.u8("SecurityMode")? as u16);
        let capabilities = Capabilities::from_bits_retain(r.u32("Capabilities")?);
        let channel = r.u32("Channel")?;
        let off = r.u16("SecurityBufferOffset")? as usize;
        let len = r.u16("SecurityBufferLength")? as usize;
        let previous_session_id = r.u64("PreviousSessionId")?;
        let security_buffer = slice_at(msg, off, len, HEADER_SIZE, M_SSREQ, "SecurityBuffer")?;
        Ok(SessionSetupRequest {
            flags,
            security_mode,
            capabilities,
            channel,
            previous_session_id,
            security_buffer,
        })
    }
}

/// SESSION_SETUP response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSetupResponse {
    /// SessionFlags.
    pub session_flags: SessionFlags,
    /// The GSS token.
    pub security_buffer: Bytes,
}

impl SmbMessage for SessionSetupResponse {
    const COMMAND: Command = Command::SESSION_SETUP;
    const NAME: &'static str = M_SSRSP;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        let len = len16(self.security_buffer.len(), M_SSRSP, "SecurityBufferLength")?;
        buf.put_u16_le(9);
        buf.put_u16_le(self.session_flags.bits());
        buf.put_u16_le(if len > 0 { (HEADER_SIZE + 8) as u16 } else { 0 });
        buf.put_u16_le(len);
        if self.security_buffer.is_empty() {
            buf.put_u8(0);
        } else {
            buf.extend_from_slice(&self.security_buffer);
        }
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_SSRSP)?;
        r.structure_size(9)?;
        let session_flags = SessionFlags::from_bits_retain(r.u16("SessionFlags")?);
        let off = r.u16("SecurityBufferOffset")? as usize;
        let len = r.u16("SecurityBufferLength")? as usize;
        let security_buffer = slice_at(msg, off, len, HEADER_SIZE, M_SSRSP, "SecurityBuffer")?;
        Ok(SessionSetupResponse {
            session_flags,
            security_buffer,
        })
    }
}

/// TREE_CONNECT request (`\\server\share` path).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TreeConnectRequest {
    /// 3.1.1 Flags (Reserved before 3.1.1). EXTENSION_PRESENT is not supported.
    pub flags: TreeConnectFlags,
    /// The share path, `\\server\share`.
    pub path: String,
}

const M_TCREQ: &str = "TREE_CONNECT request";
const M_TCRSP: &str = "TREE_CONNECT response";

impl SmbMessage for TreeConnectRequest {
    const COMMAND: Command = Command::TREE_CONNECT;
    const NAME: &'static str = M_TCREQ;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        let start = buf.len();
        buf.put_u16_le(9);
        buf.put_u16_le(self.flags.bits());
        buf.put_u16_le((HEADER_SIZE + 8) as u16);
        buf.put_u16_le(0);
        let n = put_utf16le(buf, &self.path);
        let n = len16(n, M_TCREQ, "PathLength")?;
        super::wire::patch_u16(buf, start + 6, n);
        if n == 0 {
            buf.put_u8(0);
        }
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_TCREQ)?;
        r.structure_size(9)?;
        let flags = TreeConnectFlags::from_bits_retain(r.u16("Flags")?);
        let off = r.u16("PathOffset")? as usize;
        let len = r.u16("PathLength")? as usize;
        let p = slice_at(msg, off, len, HEADER_SIZE, M_TCREQ, "Path")?;
        Ok(TreeConnectRequest {
            flags,
            path: decode_utf16le(&p, M_TCREQ, "Path")?,
        })
    }
}

/// TREE_CONNECT response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeConnectResponse {
    /// ShareType.
    pub share_type: ShareType,
    /// ShareFlags (ENCRYPT_DATA, caching mode, DFS...).
    pub share_flags: ShareFlags,
    /// Capabilities.
    pub capabilities: ShareCapabilities,
    /// MaximalAccess of the user on the share.
    pub maximal_access: u32,
}

impl SmbMessage for TreeConnectResponse {
    const COMMAND: Command = Command::TREE_CONNECT;
    const NAME: &'static str = M_TCRSP;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(16);
        buf.put_u8(self.share_type.0);
        buf.put_u8(0);
        buf.put_u32_le(self.share_flags.bits());
        buf.put_u32_le(self.capabilities.bits());
        buf.put_u32_le(self.maximal_access);
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_TCRSP)?;
        r.structure_size(16)?;
        let share_type = ShareType(r.u8("ShareType")?);
        r.skip(1, "Reserved")?;
        Ok(TreeConnectResponse {
            share_type,
            share_flags: ShareFlags::from_bits_retain(r.u32("ShareFlags")?),
            capabilities: ShareCapabilities::from_bits_retain(r.u32("Capabilities")?),
            maximal_access: r.u32("MaximalAccess")?,
        })
    }
}
