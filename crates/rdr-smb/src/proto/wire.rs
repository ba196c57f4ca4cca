//! Bounds-checked little-endian reading and the small writing helpers every message shares.
//! Nothing here can panic on input: every read goes through `get`, every length through
//! checked arithmetic.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{ProtoError, ProtoResult};
use super::header::HEADER_SIZE;

/// A cursor over a received buffer that names the message and field on every failure.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    msg: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads `buf` from `pos`, for errors about `msg`.
    pub(crate) fn at(buf: &'a [u8], pos: usize, msg: &'static str) -> Self {
        Reader { buf, pos, msg }
    }

    /// Current position in the buffer.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Takes `n` bytes as `field`.
    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> ProtoResult<&'a [u8]> {
        let s = self
            .pos
            .checked_add(n)
            .and_then(|end| self.buf.get(self.pos..end))
            .ok_or(ProtoError::Truncated {
                msg: self.msg,
                field,
                offset: self.pos,
                need: n,
                have: self.buf.len().saturating_sub(self.pos),
            })?;
        self.pos += n;
        Ok(s)
    }

    /// Skips `n` reserved bytes.
    pub(crate) fn skip(&mut self, n: usize, field: &'static str) -> ProtoResult<()> {
        self.take(n, field).map(|_| ())
    }

    /// A fixed-size array.
    pub(crate) fn array<const N: usize>(&mut self, field: &'static str) -> ProtoResult<[u8; N]> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> ProtoResult<u8> {
        Ok(u8::from_le_bytes(self.array::<1>(field)?))
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> ProtoResult<u16> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> ProtoResult<u32> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> ProtoResult<u64> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// Reads the StructureSize field and checks it.
    pub(crate) fn structure_size(&mut self, expected: u16) -> ProtoResult<()> {
        let got = self.u16("StructureSize")?;
        if got != expected {
            return Err(ProtoError::StructureSize {
                msg: self.msg,
                expected,
                got,
            });
        }
        Ok(())
    }
}

/// Bounds-checked zero-copy slice of `buf` at `offset`/`len` (both as sent by the peer). A zero
/// length yields an empty slice whatever the offset (servers send offset 0 with length 0).
/// With `min_offset`, a non-empty range must not start before it (it would overlap a header or
/// fixed part).
pub(crate) fn slice_at(
    buf: &Bytes,
    offset: usize,
    len: usize,
    min_offset: usize,
    msg: &'static str,
    field: &'static str,
) -> ProtoResult<Bytes> {
    if len == 0 {
        return Ok(Bytes::new());
    }
    let end = offset.checked_add(len);
    match end {
        Some(end) if offset >= min_offset && end <= buf.len() => Ok(buf.slice(offset..end)),
        _ => Err(ProtoError::OutOfBounds {
            msg,
            field,
            offset,
            len,
            buf_len: buf.len(),
        }),
    }
}

/// Same as [`slice_at`] for a borrowed buffer.
pub(crate) fn sub<'a>(
    buf: &'a [u8],
    offset: usize,
    len: usize,
    msg: &'static str,
    field: &'static str,
) -> ProtoResult<&'a [u8]> {
    if len == 0 {
        return Ok(&[]);
    }
    offset
        .checked_add(len)
        .and_then(|end| buf.get(offset..end))
        .ok_or(ProtoError::OutOfBounds {
            msg,
            field,
            offset,
            len,
            buf_len: buf.len(),
        })
}

/// Checks that a decoded message is at least a header long and returns a reader over its body.
pub(crate) fn body_reader<'a>(msg: &'a [u8], name: &'static str) -> ProtoResult<Reader<'a>> {
    if msg.len() < HEADER_SIZE {
        return Err(ProtoError::Truncated {
            msg: name,
            field: "SMB2 header",
            offset: 0,
            need: HEADER_SIZE,
            have: msg.len(),
        });
    }
    Ok(Reader::at(msg, HEADER_SIZE, name))
}

/// `n` as a u16 length field, or [`ProtoError::TooLarge`].
pub(crate) fn len16(n: usize, msg: &'static str, field: &'static str) -> ProtoResult<u16> {
    u16::try_from(n).map_err(|_| ProtoError::TooLarge {
        msg,
        field,
        len: n,
        max: u16::MAX as usize,
    })
}

/// `n` as a u32 length field, or [`ProtoError::TooLarge`].
pub(crate) fn len32(n: usize, msg: &'static str, field: &'static str) -> ProtoResult<u32> {
    u32::try_from(n).map_err(|_| ProtoError::TooLarge {
        msg,
        field,
        len: n,
        max: u32::MAX as usize,
    })
}

/// Pads `buf` with zeros so that `buf.len() - start` is a multiple of 8.
pub(crate) fn pad8(buf: &mut BytesMut, start: usize) {
    let rel = buf.len().saturating_sub(start);
    let pad = (8 - rel % 8) % 8;
    buf.put_bytes(0, pad);
}

/// Rounds `n` up to a multiple of 8 (saturating).
pub(crate) fn align8(n: usize) -> usize {
    n.saturating_add(7) & !7
}

/// Offset (from the message's header start) of the byte that will be written next, given the
/// position where the body began in `buf`.
pub(crate) fn msg_offset(buf: &BytesMut, body_start: usize) -> usize {
    HEADER_SIZE + buf.len().saturating_sub(body_start)
}

/// Overwrites a little-endian u16 at `pos` (a position this encoder itself reserved).
pub(crate) fn patch_u16(buf: &mut BytesMut, pos: usize, v: u16) {
    if let Some(s) = buf.get_mut(pos..pos + 2) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}

/// Overwrites a little-endian u32 at `pos` (a position this encoder itself reserved).
pub(crate) fn patch_u32(buf: &mut BytesMut, pos: usize, v: u32) {
    if let Some(s) = buf.get_mut(pos..pos + 4) {
        s.copy_from_slice(&v.to_le_bytes());
    }
}
