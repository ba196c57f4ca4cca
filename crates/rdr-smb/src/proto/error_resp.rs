//! The SMB2 ERROR response (StructureSize 9) with 3.1.1 error contexts.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{ProtoError, ProtoResult};
use super::header::HEADER_SIZE;
use super::wire::{Reader, body_reader, len32, pad8, slice_at};

/// One 3.1.1 error context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorContext {
    /// ErrorId: 0 default, 0x72645253 share redirect.
    pub error_id: u32,
    /// ErrorContextData.
    pub data: Bytes,
}

/// The body of an error response. `data` holds ErrorData when there are no contexts (e.g. the
/// symlink error of STATUS_STOPPED_ON_SYMLINK, or the u32 needed size of
/// STATUS_BUFFER_TOO_SMALL).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ErrorResponse {
    /// 3.1.1 error contexts (empty otherwise).
    pub contexts: Vec<ErrorContext>,
    /// ErrorData as sent (ByteCount bytes).
    pub data: Bytes,
}

const M: &str = "ERROR response";

impl ErrorResponse {
    /// Decodes an error body of any command (the header's command does not matter).
    pub fn decode(msg: &Bytes) -> ProtoResult<ErrorResponse> {
        let mut r = body_reader(msg, M)?;
        r.structure_size(9)?;
        let count = r.u8("ErrorContextCount")?;
        r.skip(1, "Reserved")?;
        let byte_count = r.u32("ByteCount")? as usize;
        let data = slice_at(msg, HEADER_SIZE + 8, byte_count, 0, M, "ErrorData")?;
        let mut contexts = Vec::new();
        if count > 0 {
            let mut pos = 0usize;
            for _ in 0..count {
                let mut cr = Reader::at(&data, pos, "ERROR context");
                let len = cr.u32("ErrorDataLength")? as usize;
                let error_id = cr.u32("ErrorId")?;
                let d = slice_at(&data, cr.pos(), len, 0, "ERROR context", "ErrorContextData")?;
                contexts.push(ErrorContext { error_id, data: d });
                pos = super::wire::align8(cr.pos().saturating_add(len));
            }
        }
        Ok(ErrorResponse { contexts, data })
    }

    /// Encodes the body (used by tests and in-memory servers).
    pub fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        let mut data = BytesMut::new();
        if self.contexts.is_empty() {
            data.extend_from_slice(&self.data);
        } else {
            for c in &self.contexts {
                pad8(&mut data, 0);
                data.put_u32_le(len32(c.data.len(), M, "ErrorDataLength")?);
                data.put_u32_le(c.error_id);
                data.extend_from_slice(&c.data);
            }
        }
        buf.put_u16_le(9);
        buf.put_u8(
            u8::try_from(self.contexts.len()).map_err(|_| ProtoError::TooLarge {
                msg: M,
                field: "ErrorContextCount",
                len: self.contexts.len(),
                max: 255,
            })?,
        );
        buf.put_u8(0);
        buf.put_u32_le(len32(data.len(), M, "ByteCount")?);
        if data.is_empty() {
            buf.put_u8(0);
        } else {
            buf.extend_from_slice(&data);
        }
        Ok(())
    }

    /// The u32 carried by STATUS_BUFFER_TOO_SMALL (the size the server needs), if present.
    pub fn needed_size(&self) -> Option<u32> {
        let d = if let Some(c) = self.contexts.first() {
            &c.data
        } else {
            &self.data
        };
        let b = d.get(0..4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// The Symbolic Link Error Response that comes with STATUS_STOPPED_ON_SYMLINK
/// ([MS-SMB2] 2.2.2.2.1): where the symlink points and how much of the path was not parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymlinkError {
    /// Bytes at the end of the original path not yet processed by the server.
    pub unparsed_path_length: u16,
    /// The target (substitute name).
    pub substitute_name: String,
    /// The user-friendly target.
    pub print_name: String,
    /// Flags: 0x1 = SYMLINK_FLAG_RELATIVE.
    pub flags: u32,
}

/// SymLinkErrorTag: "SYML".
pub const SYMLINK_ERROR_TAG: u32 = 0x4C4D_5953;
/// Reparse tag of symbolic links.
pub const IO_REPARSE_TAG_SYMLINK: u32 = 0xA000_000C;

impl ErrorResponse {
    /// The symbolic link error data (in ErrorData, or in the first 3.1.1 context), if this
    /// error carries one.
    pub fn symlink(&self) -> ProtoResult<Option<SymlinkError>> {
        const S: &str = "symbolic link error";
        let d = match self.contexts.first() {
            Some(c) => &c.data,
            None => &self.data,
        };
        if d.len() < 8 {
            return Ok(None);
        }
        let mut r = Reader::at(d, 0, S);
        let _len = r.u32("SymLinkLength")?;
        if r.u32("SymLinkErrorTag")? != SYMLINK_ERROR_TAG {
            return Ok(None);
        }
        let tag = r.u32("ReparseTag")?;
        if tag != IO_REPARSE_TAG_SYMLINK {
            return Err(ProtoError::BadValue {
                msg: S,
                field: "ReparseTag",
                value: tag as u64,
                why: "not IO_REPARSE_TAG_SYMLINK",
            });
        }
        r.skip(2, "ReparseDataLength")?;
        let unparsed_path_length = r.u16("UnparsedPathLength")?;
        let sub_off = r.u16("SubstituteNameOffset")? as usize;
        let sub_len = r.u16("SubstituteNameLength")? as usize;
        let print_off = r.u16("PrintNameOffset")? as usize;
        let print_len = r.u16("PrintNameLength")? as usize;
        let flags = r.u32("Flags")?;
        let path = d.get(r.pos()..).unwrap_or(&[]);
        let sub = super::wire::sub(path, sub_off, sub_len, S, "SubstituteName")?;
        let print = super::wire::sub(path, print_off, print_len, S, "PrintName")?;
        Ok(Some(SymlinkError {
            unparsed_path_length,
            substitute_name: super::utf16::decode_utf16le(sub, S, "SubstituteName")?,
            print_name: super::utf16::decode_utf16le(print, S, "PrintName")?,
            flags,
        }))
    }
}
