//! Direct-TCP framing: the 4-byte NetBIOS session header (a zero byte and a 24-bit big-endian
//! length) and [`FrameDecoder`], which turns arbitrary chunks of received bytes into whole
//! frames. No I/O: the connection task feeds it.

use bytes::{Buf, Bytes, BytesMut};

use super::error::{ProtoError, ProtoResult};

/// Size of the NetBIOS session header.
pub const NETBIOS_HEADER_SIZE: usize = 4;
/// Largest length the 24-bit field can carry.
pub const MAX_FRAME_LEN: usize = 0x00FF_FFFF;

/// The 4 header bytes for a frame of `len` bytes.
pub fn netbios_header(len: usize) -> ProtoResult<[u8; 4]> {
    if len > MAX_FRAME_LEN {
        return Err(ProtoError::FrameTooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    let l = len as u32;
    Ok([0, (l >> 16) as u8, (l >> 8) as u8, l as u8])
}

/// Decodes a NetBIOS session header: the frame length that follows. A non-zero type byte
/// (not a session message) is an error.
pub fn decode_netbios_header(h: [u8; 4]) -> ProtoResult<usize> {
    if h[0] != 0 {
        return Err(ProtoError::BadValue {
            msg: "NetBIOS session header",
            field: "Type",
            value: h[0] as u64,
            why: "only session messages (0) are used over direct TCP",
        });
    }
    Ok(((h[1] as usize) << 16) | ((h[2] as usize) << 8) | h[3] as usize)
}

/// Reserves the 4 NetBIOS header bytes at the end of `buf`; returns their position for
/// [`finish_frame`].
pub fn begin_frame(buf: &mut BytesMut) -> usize {
    let pos = buf.len();
    buf.extend_from_slice(&[0; NETBIOS_HEADER_SIZE]);
    pos
}

/// Writes the NetBIOS header reserved at `pos` for everything after it in `buf`, plus
/// `extra` bytes sent separately (a WRITE payload in a vectored write).
pub fn finish_frame(buf: &mut BytesMut, pos: usize, extra: usize) -> ProtoResult<()> {
    let body = buf
        .len()
        .checked_sub(pos + NETBIOS_HEADER_SIZE)
        .and_then(|l| l.checked_add(extra))
        .ok_or(ProtoError::BadValue {
            msg: "NetBIOS session header",
            field: "position",
            value: pos as u64,
            why: "frame start is past the end of the buffer",
        })?;
    let h = netbios_header(body)?;
    if let Some(s) = buf.get_mut(pos..pos + NETBIOS_HEADER_SIZE) {
        s.copy_from_slice(&h);
    }
    Ok(())
}

/// What kind of SMB message a frame holds, judged by its protocol id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Plain SMB2 (0xFE 'SMB'), possibly a compound.
    Smb2,
    /// SMB2 TRANSFORM header (0xFD 'SMB'): encrypted.
    Transform,
    /// SMB2 COMPRESSION_TRANSFORM header (0xFC 'SMB'): unsupported by rdr.
    Compressed,
    /// SMB1 (0xFF 'SMB').
    Smb1,
}

/// Classifies a frame by its first four bytes.
pub fn classify(frame: &[u8]) -> ProtoResult<FrameKind> {
    match frame.get(0..4) {
        Some([0xFE, b'S', b'M', b'B']) => Ok(FrameKind::Smb2),
        Some([0xFD, b'S', b'M', b'B']) => Ok(FrameKind::Transform),
        Some([0xFC, b'S', b'M', b'B']) => Ok(FrameKind::Compressed),
        Some([0xFF, b'S', b'M', b'B']) => Ok(FrameKind::Smb1),
        Some(&[a, b, c, d]) => Err(ProtoError::ProtocolId([a, b, c, d])),
        _ => Err(ProtoError::Truncated {
            msg: "SMB frame",
            field: "ProtocolId",
            offset: 0,
            need: 4,
            have: frame.len(),
        }),
    }
}

/// Accumulates received bytes and yields whole frames (without their NetBIOS header) as
/// zero-copy `Bytes`. The connection reads straight into [`FrameDecoder::buffer_mut`] or
/// hands it chunks with [`FrameDecoder::push`].
#[derive(Debug)]
pub struct FrameDecoder {
    buf: BytesMut,
    max_frame: usize,
    /// Length of the frame being assembled once its header has been read.
    pending: Option<usize>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(MAX_FRAME_LEN)
    }
}

impl FrameDecoder {
    /// A decoder that rejects frames longer than `max_frame` (at most 0xFFFFFF).
    pub fn new(max_frame: usize) -> Self {
        FrameDecoder {
            buf: BytesMut::with_capacity(64 * 1024),
            max_frame: max_frame.min(MAX_FRAME_LEN),
            pending: None,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The receive buffer, for reading from a socket without an intermediate copy. When a
    /// frame header has been read, it already has room reserved for the whole frame.
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Bytes buffered but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame, `Ok(None)` when more bytes are needed. After an error the stream
    /// is out of sync and the connection must be dropped.
    pub fn next_frame(&mut self) -> ProtoResult<Option<Bytes>> {
        let len = match self.pending {
            Some(len) => len,
            None => {
                let Some(h) = self.buf.get(0..NETBIOS_HEADER_SIZE) else {
                    return Ok(None);
                };
                let len = decode_netbios_header([h[0], h[1], h[2], h[3]])?;
                if len > self.max_frame {
                    return Err(ProtoError::FrameTooLarge {
                        len,
                        max: self.max_frame,
                    });
                }
                self.buf.advance(NETBIOS_HEADER_SIZE);
                self.pending = Some(len);
                len
            }
        };
        if self.buf.len() < len {
            self.buf.reserve(len - self.buf.len());
            return Ok(None);
        }
        self.pending = None;
        Ok(Some(self.buf.split_to(len).freeze()))
    }
}
