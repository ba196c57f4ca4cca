//! The 64-byte SMB2 header (sync and async forms), the [`SmbMessage`] trait every body
//! implements, and [`Message`]: one received command (header + raw bytes).

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use rdr_core::NtStatus;

use super::consts::{Command, HeaderFlags};
use super::error::{ProtoError, ProtoResult};
use super::wire::Reader;

/// Size of the SMB2 header; every body offset is counted from the header's first byte.
pub const HEADER_SIZE: usize = 64;
/// Protocol id of a plain SMB2 message.
pub const SMB2_MAGIC: [u8; 4] = [0xFE, b'S', b'M', b'B'];
/// Offset of the Signature field within the header.
pub const SIGNATURE_OFFSET: usize = 48;
/// Offset of the NextCommand field within the header.
pub const NEXT_COMMAND_OFFSET: usize = 20;
/// Offset of the Flags field within the header.
pub const FLAGS_OFFSET: usize = 16;

/// The SMB2 packet header. The connection engine owns MessageId, credits, SessionId and the
/// signature; every field is public so it can patch them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Credits this request consumes (CreditCharge).
    pub credit_charge: u16,
    /// Response status. In a 3.x request this holds ChannelSequence (low 16 bits) and Reserved.
    pub status: NtStatus,
    /// The command.
    pub command: Command,
    /// CreditRequest (request) or CreditResponse (response).
    pub credits: u16,
    /// Header flags. ASYNC_COMMAND is derived from `async_id` on encode.
    pub flags: HeaderFlags,
    /// Offset from this header to the next command in a compound, 0 for the last.
    pub next_command: u32,
    /// MessageId.
    pub message_id: u64,
    /// AsyncId (async form); `None` for the sync form.
    pub async_id: Option<u64>,
    /// Reserved / ProcessId of the sync form.
    pub process_id: u32,
    /// TreeId of the sync form (0 in the async form).
    pub tree_id: u32,
    /// SessionId.
    pub session_id: u64,
    /// Signature (zero unless signed).
    pub signature: [u8; 16],
}

impl Default for Header {
    fn default() -> Self {
        Header {
            credit_charge: 0,
            status: NtStatus::STATUS_SUCCESS,
            command: Command::NEGOTIATE,
            credits: 0,
            flags: HeaderFlags::empty(),
            next_command: 0,
            message_id: 0,
            async_id: None,
            process_id: 0,
            tree_id: 0,
            session_id: 0,
            signature: [0; 16],
        }
    }
}

impl Default for Command {
    fn default() -> Self {
        Command::NEGOTIATE
    }
}

impl Header {
    /// A sync request header for `command` with default fields (credits 1 requested).
    pub fn request(command: Command) -> Self {
        Header {
            command,
            credits: 1,
            ..Default::default()
        }
    }

    /// True when SERVER_TO_REDIR is set.
    pub fn is_response(&self) -> bool {
        self.flags.contains(HeaderFlags::SERVER_TO_REDIR)
    }

    /// ChannelSequence of a 3.x request (low 16 bits of the Status field).
    pub fn channel_sequence(&self) -> u16 {
        (self.status.0 & 0xFFFF) as u16
    }

    /// Sets the ChannelSequence of a 3.x request.
    pub fn set_channel_sequence(&mut self, seq: u16) {
        self.status = NtStatus((self.status.0 & 0xFFFF_0000) | seq as u32);
    }

    /// True for an interim STATUS_PENDING response (the final one comes later with AsyncId).
    pub fn is_pending(&self) -> bool {
        self.async_id.is_some() && self.status == NtStatus::STATUS_PENDING
    }

    /// Appends the 64 header bytes to `buf`.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.reserve(HEADER_SIZE);
        buf.put_slice(&SMB2_MAGIC);
        buf.put_u16_le(HEADER_SIZE as u16);
        buf.put_u16_le(self.credit_charge);
        buf.put_u32_le(self.status.0);
        buf.put_u16_le(self.command.0);
        buf.put_u16_le(self.credits);
        let mut flags = self.flags;
        flags.set(HeaderFlags::ASYNC_COMMAND, self.async_id.is_some());
        buf.put_u32_le(flags.bits());
        buf.put_u32_le(self.next_command);
        buf.put_u64_le(self.message_id);
        match self.async_id {
            Some(id) => buf.put_u64_le(id),
            None => {
                buf.put_u32_le(self.process_id);
                buf.put_u32_le(self.tree_id);
            }
        }
        buf.put_u64_le(self.session_id);
        buf.put_slice(&self.signature);
    }

    /// Decodes the header at the start of `buf` (which must begin with 0xFE 'SMB').
    pub fn decode(buf: &[u8]) -> ProtoResult<Header> {
        let mut r = Reader::at(buf, 0, "SMB2 header");
        let magic: [u8; 4] = r.array("ProtocolId")?;
        check_magic(magic)?;
        r.structure_size(HEADER_SIZE as u16)?;
        let credit_charge = r.u16("CreditCharge")?;
        let status = NtStatus(r.u32("Status")?);
        let command = Command(r.u16("Command")?);
        let credits = r.u16("CreditRequest/Response")?;
        let flags = HeaderFlags::from_bits_retain(r.u32("Flags")?);
        let next_command = r.u32("NextCommand")?;
        let message_id = r.u64("MessageId")?;
        let (async_id, process_id, tree_id) = if flags.contains(HeaderFlags::ASYNC_COMMAND) {
            (Some(r.u64("AsyncId")?), 0, 0)
        } else {
            (None, r.u32("ProcessId")?, r.u32("TreeId")?)
        };
        let session_id = r.u64("SessionId")?;
        let signature = r.array("Signature")?;
        Ok(Header {
            credit_charge,
            status,
            command,
            credits,
            flags,
            next_command,
            message_id,
            async_id,
            process_id,
            tree_id,
            session_id,
            signature,
        })
    }
}

/// Maps a protocol id to an error unless it is plain SMB2.
pub(crate) fn check_magic(magic: [u8; 4]) -> ProtoResult<()> {
    match magic {
        SMB2_MAGIC => Ok(()),
        [0xFD, b'S', b'M', b'B'] => Err(ProtoError::Encrypted),
        [0xFC, b'S', b'M', b'B'] => Err(ProtoError::CompressionUnsupported),
        other => Err(ProtoError::ProtocolId(other)),
    }
}

/// The byte range of the Signature field of the message whose header starts at `msg_start`,
/// so the engine can zero it, compute the signature and patch it after encoding.
pub fn signature_range(msg_start: usize) -> Range<usize> {
    msg_start + SIGNATURE_OFFSET..msg_start + SIGNATURE_OFFSET + 16
}

/// Sets the SIGNED flag in an already encoded header at `msg_start` (before signing).
pub fn set_signed_flag(buf: &mut [u8], msg_start: usize) -> ProtoResult<()> {
    let pos = msg_start + FLAGS_OFFSET;
    let field = buf.get_mut(pos..pos + 4).ok_or(ProtoError::Truncated {
        msg: "SMB2 header",
        field: "Flags",
        offset: pos,
        need: 4,
        have: 0,
    })?;
    let mut f = [0u8; 4];
    f.copy_from_slice(field);
    let v = u32::from_le_bytes(f) | HeaderFlags::SIGNED.bits();
    field.copy_from_slice(&v.to_le_bytes());
    Ok(())
}

/// An SMB2 file handle (persistent + volatile parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileId {
    /// Persistent part.
    pub persistent: u64,
    /// Volatile part.
    pub volatile: u64,
}

impl FileId {
    /// The all-ones id: "the handle the previous related compound command produced".
    pub const RELATED: FileId = FileId {
        persistent: u64::MAX,
        volatile: u64::MAX,
    };

    pub(crate) fn put(&self, buf: &mut BytesMut) {
        buf.put_u64_le(self.persistent);
        buf.put_u64_le(self.volatile);
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> ProtoResult<FileId> {
        Ok(FileId {
            persistent: r.u64("FileId.Persistent")?,
            volatile: r.u64("FileId.Volatile")?,
        })
    }
}

/// A message body (request or response) that can be encoded after a header and decoded from a
/// whole message (header included, because body offsets count from the header).
pub trait SmbMessage: Sized {
    /// The header command of this message.
    const COMMAND: Command;
    /// Name used in errors.
    const NAME: &'static str;

    /// Appends the body to `buf`; the message's header must be the 64 bytes just before it.
    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()>;

    /// Decodes the body of `msg`, one whole message starting at its header.
    fn decode_body(msg: &Bytes) -> ProtoResult<Self>;

    /// Bytes this request moves (sent or the most it asks back), from which the connection
    /// computes a multi-credit CreditCharge (one credit per 64 KiB). 0 for small messages.
    fn payload_size(&self) -> usize {
        0
    }
}

/// CreditCharge for a request moving `payload` bytes: ceil(payload / 64 KiB), at least 1.
pub fn credit_charge_for(payload: usize) -> u16 {
    let c = payload.saturating_sub(1) / 65536 + 1;
    u16::try_from(c).unwrap_or(u16::MAX)
}

/// Offset of the CreditCharge field within the header.
pub const CREDIT_CHARGE_OFFSET: usize = 6;
/// Offset of the CreditRequest/CreditResponse field within the header.
pub const CREDITS_OFFSET: usize = 14;
/// Offset of the MessageId field within the header.
pub const MESSAGE_ID_OFFSET: usize = 24;

/// Patches MessageId, CreditCharge and CreditRequest of an encoded header at `msg_start`
/// (the connection assigns them at send time, after the message was encoded).
pub fn patch_request_header(
    buf: &mut [u8],
    msg_start: usize,
    message_id: u64,
    credit_charge: u16,
    credit_request: u16,
) -> ProtoResult<()> {
    let end = msg_start
        .checked_add(HEADER_SIZE)
        .filter(|&e| e <= buf.len());
    let Some(end) = end else {
        return Err(ProtoError::Truncated {
            msg: "SMB2 header",
            field: "header",
            offset: msg_start,
            need: HEADER_SIZE,
            have: buf.len().saturating_sub(msg_start),
        });
    };
    let h = &mut buf[msg_start..end];
    h[CREDIT_CHARGE_OFFSET..CREDIT_CHARGE_OFFSET + 2].copy_from_slice(&credit_charge.to_le_bytes());
    h[CREDITS_OFFSET..CREDITS_OFFSET + 2].copy_from_slice(&credit_request.to_le_bytes());
    h[MESSAGE_ID_OFFSET..MESSAGE_ID_OFFSET + 8].copy_from_slice(&message_id.to_le_bytes());
    Ok(())
}

/// Encodes `header` (with its command set from `M`) and `body` at the end of `buf`; returns the
/// message's byte range within `buf`.
pub fn encode_message<M: SmbMessage>(
    header: &Header,
    body: &M,
    buf: &mut BytesMut,
) -> ProtoResult<Range<usize>> {
    let start = buf.len();
    let mut h = header.clone();
    h.command = M::COMMAND;
    h.encode(buf);
    if let Err(e) = body.encode_body(buf) {
        buf.truncate(start);
        return Err(e);
    }
    Ok(start..buf.len())
}

/// One received SMB2 message: its decoded header and its raw bytes (header included), a
/// zero-copy slice of the received frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The decoded header.
    pub header: Header,
    /// The whole message, header first (for a compound member: up to NextCommand).
    pub bytes: Bytes,
}

impl Message {
    /// Decodes the header of a standalone message.
    pub fn parse(bytes: Bytes) -> ProtoResult<Message> {
        let header = Header::decode(&bytes)?;
        Ok(Message { header, bytes })
    }

    /// Decodes the body as `M`, checking the command first.
    pub fn body<M: SmbMessage>(&self) -> ProtoResult<M> {
        if self.header.command != M::COMMAND {
            return Err(ProtoError::WrongCommand {
                msg: M::NAME,
                expected: M::COMMAND.0,
                got: self.header.command.0,
            });
        }
        M::decode_body(&self.bytes)
    }

    /// True when the body is an ERROR response rather than the command's normal response:
    /// [MS-SMB2] 3.2.5.1 — any error status, except those for which the command returns its
    /// own body (BUFFER_OVERFLOW on reads/ioctls/queries, MORE_PROCESSING_REQUIRED on
    /// SESSION_SETUP), and an interim STATUS_PENDING.
    pub fn is_error_response(&self) -> bool {
        let st = self.header.status;
        if st == NtStatus::STATUS_PENDING {
            return self.header.async_id.is_some();
        }
        if st == NtStatus::STATUS_SUCCESS {
            return false;
        }
        let cmd = self.header.command;
        if st == NtStatus::STATUS_MORE_PROCESSING_REQUIRED && cmd == Command::SESSION_SETUP {
            return false;
        }
        if st == NtStatus::STATUS_BUFFER_OVERFLOW
            && matches!(
                cmd,
                Command::READ
                    | Command::IOCTL
                    | Command::QUERY_INFO
                    | Command::QUERY_DIRECTORY
                    | Command::CHANGE_NOTIFY
            )
        {
            return false;
        }
        if matches!(
            st,
            NtStatus::STATUS_NOTIFY_ENUM_DIR | NtStatus::STATUS_NOTIFY_CLEANUP
        ) && cmd == Command::CHANGE_NOTIFY
        {
            // Both come with an ERROR body of zero bytes or an empty notify body; treat as error.
            return true;
        }
        // Warnings other than the above (0x8...) and errors (0xC...) carry an ERROR body.
        st.0 & 0x8000_0000 != 0
    }
}
