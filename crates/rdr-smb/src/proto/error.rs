//! [`ProtoError`]: what was malformed in bytes received from (or about to be sent to) a server.

use rdr_core::{NtStatus, RxError};

/// A malformed or unsupported SMB2/3 message. Every variant names the message and the field, so a
/// log line says exactly what the server sent wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The buffer ended before a field did.
    #[error("{msg}: truncated at {field} (offset {offset}, need {need} bytes, have {have})")]
    Truncated {
        /// The message or structure being decoded.
        msg: &'static str,
        /// The field that did not fit.
        field: &'static str,
        /// Where the field starts, from the start of the decoded buffer.
        offset: usize,
        /// How many bytes the field needs.
        need: usize,
        /// How many bytes were left.
        have: usize,
    },
    /// An offset/length pair points outside the buffer (or into the header).
    #[error("{msg}: {field} offset {offset} length {len} is outside the {buf_len}-byte buffer")]
    OutOfBounds {
        /// The message or structure being decoded.
        msg: &'static str,
        /// The offset/length field pair.
        field: &'static str,
        /// The offset as sent.
        offset: usize,
        /// The length as sent.
        len: usize,
        /// The size of the buffer it must lie in.
        buf_len: usize,
    },
    /// The StructureSize field does not match the message.
    #[error("{msg}: StructureSize is {got}, expected {expected}")]
    StructureSize {
        /// The message being decoded.
        msg: &'static str,
        /// The size [MS-SMB2] fixes.
        expected: u16,
        /// The size that was sent.
        got: u16,
    },
    /// A field holds a value the protocol does not allow.
    #[error("{msg}: invalid {field} {value:#x}: {why}")]
    BadValue {
        /// The message or structure being decoded.
        msg: &'static str,
        /// The field.
        field: &'static str,
        /// The value as sent.
        value: u64,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The message does not start with a known protocol id.
    #[error("unknown protocol id {0:02x?}")]
    ProtocolId([u8; 4]),
    /// A compressed message (0xFC 'SMB'); rdr never negotiates compression.
    #[error("compressed SMB2 message (0xFC 'SMB') received, but compression is not supported")]
    CompressionUnsupported,
    /// A transform (encrypted) message reached a decoder that expects plain SMB2.
    #[error("encrypted SMB2 message (0xFD 'SMB') must be decrypted before it is decoded")]
    Encrypted,
    /// A message for another command than the decoder's.
    #[error("{msg}: header says command {got:#x}, expected {expected:#x}")]
    WrongCommand {
        /// The decoder.
        msg: &'static str,
        /// The decoder's command.
        expected: u16,
        /// The header's command.
        got: u16,
    },
    /// A UTF-16LE string is odd-length or holds an unpaired surrogate.
    #[error("{msg}: {field} is not valid UTF-16LE (at byte {offset})")]
    BadUtf16 {
        /// The message or structure being decoded.
        msg: &'static str,
        /// The string field.
        field: &'static str,
        /// Byte offset of the bad code unit within the string.
        offset: usize,
    },
    /// A frame announced a length larger than allowed.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value is too large for its length field when encoding.
    #[error("{msg}: {field} is {len} bytes, more than the field can carry ({max})")]
    TooLarge {
        /// The message being encoded.
        msg: &'static str,
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The most the field can carry.
        max: usize,
    },
}

impl From<ProtoError> for RxError {
    fn from(e: ProtoError) -> Self {
        RxError::status(NtStatus::STATUS_INVALID_NETWORK_RESPONSE, e.to_string())
    }
}

/// Result alias of the codec.
pub type ProtoResult<T> = Result<T, ProtoError>;
