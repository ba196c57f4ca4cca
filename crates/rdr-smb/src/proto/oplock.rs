//! OPLOCK_BREAK: oplock break notification/acknowledgment/response (StructureSize 24) and
//! lease break notification (44) / acknowledgment / response (36).

use bytes::{BufMut, Bytes, BytesMut};

use super::consts::{Command, LeaseState, OplockLevel};
use super::error::{ProtoError, ProtoResult};
use super::header::{FileId, SmbMessage};
use super::wire::body_reader;

/// Oplock break notification, acknowledgment and response share this layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OplockBreak {
    /// The level to break to (notification), accepted (ack) or granted (response).
    pub oplock_level: OplockLevel,
    /// The handle.
    pub file_id: FileId,
}

const M_OB: &str = "OPLOCK_BREAK (oplock)";
const M_LBN: &str = "OPLOCK_BREAK (lease break notification)";
const M_LBA: &str = "OPLOCK_BREAK (lease break ack/response)";

impl SmbMessage for OplockBreak {
    const COMMAND: Command = Command::OPLOCK_BREAK;
    const NAME: &'static str = M_OB;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(24);
        buf.put_u8(self.oplock_level.0);
        buf.put_u8(0);
        buf.put_u32_le(0);
        self.file_id.put(buf);
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_OB)?;
        r.structure_size(24)?;
        let oplock_level = OplockLevel(r.u8("OplockLevel")?);
        r.skip(5, "Reserved")?;
        Ok(OplockBreak {
            oplock_level,
            file_id: FileId::read(&mut r)?,
        })
    }
}

/// Lease break notification flag: the client must acknowledge.
pub const LEASE_BREAK_ACK_REQUIRED: u32 = 0x01;

/// Lease break notification (server to client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseBreakNotification {
    /// NewEpoch (3.x).
    pub new_epoch: u16,
    /// Flags (LEASE_BREAK_ACK_REQUIRED).
    pub flags: u32,
    /// LeaseKey.
    pub lease_key: [u8; 16],
    /// CurrentLeaseState.
    pub current_state: LeaseState,
    /// NewLeaseState.
    pub new_state: LeaseState,
    /// BreakReason.
    pub break_reason: u32,
    /// AccessMaskHint.
    pub access_mask_hint: u32,
    /// ShareMaskHint.
    pub share_mask_hint: u32,
}

impl SmbMessage for LeaseBreakNotification {
    const COMMAND: Command = Command::OPLOCK_BREAK;
    const NAME: &'static str = M_LBN;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(44);
        buf.put_u16_le(self.new_epoch);
        buf.put_u32_le(self.flags);
        buf.put_slice(&self.lease_key);
        buf.put_u32_le(self.current_state.bits());
        buf.put_u32_le(self.new_state.bits());
        buf.put_u32_le(self.break_reason);
        buf.put_u32_le(self.access_mask_hint);
        buf.put_u32_le(self.share_mask_hint);
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_LBN)?;
        r.structure_size(44)?;
        Ok(LeaseBreakNotification {
            new_epoch: r.u16("NewEpoch")?,
            flags: r.u32("Flags")?,
            lease_key: r.array("LeaseKey")?,
            current_state: LeaseState::from_bits_retain(r.u32("CurrentLeaseState")?),
            new_state: LeaseState::from_bits_retain(r.u32("NewLeaseState")?),
            break_reason: r.u32("BreakReason")?,
            access_mask_hint: r.u32("AccessMaskHint")?,
            share_mask_hint: r.u32("ShareMaskHint")?,
        })
    }
}

/// Lease break acknowledgment (client to server) and response (server to client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaseBreakAck {
    /// Flags (reserved).
    pub flags: u32,
    /// LeaseKey.
    pub lease_key: [u8; 16],
    /// The state accepted (ack) or now held (response).
    pub lease_state: LeaseState,
    /// LeaseDuration (reserved).
    pub lease_duration: u64,
}

impl SmbMessage for LeaseBreakAck {
    const COMMAND: Command = Command::OPLOCK_BREAK;
    const NAME: &'static str = M_LBA;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        buf.put_u16_le(36);
        buf.put_u16_le(0);
        buf.put_u32_le(self.flags);
        buf.put_slice(&self.lease_key);
        buf.put_u32_le(self.lease_state.bits());
        buf.put_u64_le(self.lease_duration);
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_LBA)?;
        r.structure_size(36)?;
        r.skip(2, "Reserved")?;
        Ok(LeaseBreakAck {
            flags: r.u32("Flags")?,
            lease_key: r.array("LeaseKey")?,
            lease_state: LeaseState::from_bits_retain(r.u32("LeaseState")?),
            lease_duration: r.u64("LeaseDuration")?,
        })
    }
}

/// Any OPLOCK_BREAK message, told apart by StructureSize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OplockBreakMessage {
    /// Oplock break notification / ack / response (24).
    Oplock(OplockBreak),
    /// Lease break notification (44).
    LeaseBreak(LeaseBreakNotification),
    /// Lease break ack / response (36).
    LeaseAck(LeaseBreakAck),
}

impl OplockBreakMessage {
    /// Decodes whichever OPLOCK_BREAK form `msg` holds.
    pub fn decode(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, "OPLOCK_BREAK")?;
        match r.u16("StructureSize")? {
            24 => Ok(Self::Oplock(OplockBreak::decode_body(msg)?)),
            44 => Ok(Self::LeaseBreak(LeaseBreakNotification::decode_body(msg)?)),
            36 => Ok(Self::LeaseAck(LeaseBreakAck::decode_body(msg)?)),
            other => Err(ProtoError::BadValue {
                msg: "OPLOCK_BREAK",
                field: "StructureSize",
                value: other as u64,
                why: "not 24 (oplock), 44 (lease break) or 36 (lease ack)",
            }),
        }
    }
}
