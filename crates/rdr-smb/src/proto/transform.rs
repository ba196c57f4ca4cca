//! The SMB2 TRANSFORM header (0xFD 'SMB') that wraps an encrypted message. Only the header is
//! coded here; the AEAD is the crypto layer's.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{ProtoError, ProtoResult};
use super::wire::Reader;

/// Protocol id of a transform header.
pub const TRANSFORM_MAGIC: [u8; 4] = [0xFD, b'S', b'M', b'B'];
/// Protocol id of a compression transform header (unsupported).
pub const COMPRESSION_MAGIC: [u8; 4] = [0xFC, b'S', b'M', b'B'];
/// Size of the transform header.
pub const TRANSFORM_HEADER_SIZE: usize = 52;
/// Flags/EncryptionAlgorithm value meaning "encrypted".
pub const TRANSFORM_FLAG_ENCRYPTED: u16 = 0x0001;

/// The TRANSFORM header. The AEAD's associated data is bytes 20..52 (from Nonce to the end),
/// see [`TransformHeader::aad_range`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransformHeader {
    /// AEAD tag.
    pub signature: [u8; 16],
    /// Nonce: 11 bytes used for CCM, 12 for GCM; the rest zero.
    pub nonce: [u8; 16],
    /// Size of the plaintext SMB2 message(s).
    pub original_message_size: u32,
    /// Flags (3.1.1) / EncryptionAlgorithm (3.0): 0x0001 = encrypted.
    pub flags: u16,
    /// The session whose keys encrypt the message.
    pub session_id: u64,
}

impl TransformHeader {
    /// Byte range (within the 52-byte header) that is the AEAD associated data.
    pub fn aad_range() -> Range<usize> {
        20..TRANSFORM_HEADER_SIZE
    }

    /// Byte range of the Signature (tag) field.
    pub fn signature_range() -> Range<usize> {
        4..20
    }

    /// Appends the 52 header bytes.
    pub fn encode(&self, buf: &mut BytesMut) {
        buf.put_slice(&TRANSFORM_MAGIC);
        buf.put_slice(&self.signature);
        buf.put_slice(&self.nonce);
        buf.put_u32_le(self.original_message_size);
        buf.put_u16_le(0);
        buf.put_u16_le(self.flags);
        buf.put_u64_le(self.session_id);
    }

    /// Decodes a transform header and returns it with the ciphertext that follows (a
    /// zero-copy slice of `frame`), checked to be `original_message_size` long.
    pub fn decode(frame: &Bytes) -> ProtoResult<(TransformHeader, Bytes)> {
        const M: &str = "TRANSFORM header";
        let mut r = Reader::at(frame, 0, M);
        let magic: [u8; 4] = r.array("ProtocolId")?;
        if magic == COMPRESSION_MAGIC {
            return Err(ProtoError::CompressionUnsupported);
        }
        if magic != TRANSFORM_MAGIC {
            return Err(ProtoError::ProtocolId(magic));
        }
        let signature = r.array("Signature")?;
        let nonce = r.array("Nonce")?;
        let original_message_size = r.u32("OriginalMessageSize")?;
        r.skip(2, "Reserved")?;
        let flags = r.u16("Flags")?;
        let session_id = r.u64("SessionId")?;
        let body = frame.slice(TRANSFORM_HEADER_SIZE..);
        if body.len() != original_message_size as usize {
            return Err(ProtoError::BadValue {
                msg: M,
                field: "OriginalMessageSize",
                value: original_message_size as u64,
                why: "does not match the encrypted bytes that follow",
            });
        }
        Ok((
            TransformHeader {
                signature,
                nonce,
                original_message_size,
                flags,
                session_id,
            },
            body,
        ))
    }
}
