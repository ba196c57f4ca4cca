//! UTF-16LE names as SMB2 carries them (no terminator); decoding rejects odd lengths and
//! unpaired surrogates.

use bytes::{BufMut, BytesMut};

use super::error::{ProtoError, ProtoResult};

/// Appends `s` as UTF-16LE to `buf`; returns the number of bytes written.
pub fn put_utf16le(buf: &mut BytesMut, s: &str) -> usize {
    let start = buf.len();
    for u in s.encode_utf16() {
        buf.put_u16_le(u);
    }
    buf.len() - start
}

/// `s` as UTF-16LE bytes.
pub fn encode_utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// Length in bytes of `s` encoded as UTF-16LE.
pub fn utf16le_len(s: &str) -> usize {
    s.encode_utf16().count() * 2
}

/// Decodes UTF-16LE bytes into a `String`. An odd length or an unpaired surrogate is a
/// [`ProtoError::BadUtf16`] naming `msg` and `field`.
pub fn decode_utf16le(b: &[u8], msg: &'static str, field: &'static str) -> ProtoResult<String> {
    if !b.len().is_multiple_of(2) {
        return Err(ProtoError::BadUtf16 {
            msg,
            field,
            offset: b.len().saturating_sub(1),
        });
    }
    let units = b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    let mut out = String::with_capacity(b.len() / 2);
    let mut pos = 0usize;
    for r in char::decode_utf16(units) {
        match r {
            Ok(c) => {
                pos += c.len_utf16() * 2;
                out.push(c);
            }
            Err(_) => {
                return Err(ProtoError::BadUtf16 {
                    msg,
                    field,
                    offset: pos,
                });
            }
        }
    }
    Ok(out)
}
