//! Compound chains: splitting a received SMB2 frame into its commands, and building a
//! compound request with 8-byte aligned NextCommand offsets and the RELATED_OPERATIONS flag.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

use super::consts::HeaderFlags;
use super::error::{ProtoError, ProtoResult};
use super::header::{
    FLAGS_OFFSET, HEADER_SIZE, Header, Message, NEXT_COMMAND_OFFSET, SmbMessage, encode_message,
};
use super::wire::{pad8, patch_u32};

/// Splits a plain SMB2 frame (already decrypted) into its messages. Each message's `bytes` is a
/// zero-copy slice from its header up to the next command (padding included, which is what a
/// compound member's signature covers) or to the end of the frame for the last.
pub fn split_compound(frame: &Bytes) -> ProtoResult<Vec<Message>> {
    const M: &str = "compound";
    let mut out = Vec::new();
    let mut start = 0usize;
    loop {
        let rest = frame.slice(start..);
        let header = Header::decode(&rest)?;
        let next = header.next_command as usize;
        if next == 0 {
            out.push(Message {
                header,
                bytes: rest,
            });
            return Ok(out);
        }
        if !next.is_multiple_of(8) || next < HEADER_SIZE || next > rest.len() {
            return Err(ProtoError::BadValue {
                msg: M,
                field: "NextCommand",
                value: next as u64,
                why: "must be a multiple of 8, at least a header, and inside the frame",
            });
        }
        out.push(Message {
            header,
            bytes: rest.slice(..next),
        });
        // `next` <= rest.len() so this cannot overflow the frame.
        start += next;
        if out.len() > 4096 {
            return Err(ProtoError::BadValue {
                msg: M,
                field: "NextCommand",
                value: next as u64,
                why: "more than 4096 commands in one frame",
            });
        }
    }
}

/// Builds a compound request in one buffer. Each pushed message after the first starts at an
/// 8-byte boundary and the previous header's NextCommand is patched to point at it.
#[derive(Debug, Default)]
pub struct CompoundBuilder {
    buf: BytesMut,
    ranges: Vec<Range<usize>>,
}

impl CompoundBuilder {
    /// An empty compound.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a message. With `related`, RELATED_OPERATIONS is set on its header (it then
    /// inherits SessionId, TreeId and a FileId of all ones from the previous command).
    /// Returns the index of the message.
    pub fn push<M: SmbMessage>(
        &mut self,
        header: &Header,
        body: &M,
        related: bool,
    ) -> ProtoResult<usize> {
        let mut h = header.clone();
        h.next_command = 0;
        h.flags.set(HeaderFlags::RELATED_OPERATIONS, related);
        if let Some(prev) = self.ranges.last_mut() {
            let start = prev.start;
            pad8(&mut self.buf, start);
            let next = self.buf.len() - start;
            patch_u32(&mut self.buf, start + NEXT_COMMAND_OFFSET, next as u32);
            prev.end = self.buf.len();
        }
        let r = encode_message(&h, body, &mut self.buf)?;
        self.ranges.push(r);
        Ok(self.ranges.len() - 1)
    }

    /// Byte ranges of each message (for signing each one separately).
    pub fn ranges(&self) -> &[Range<usize>] {
        &self.ranges
    }

    /// Sets or clears a flag on an already pushed message's header (e.g. SIGNED).
    pub fn set_flag(&mut self, index: usize, flag: HeaderFlags, on: bool) {
        if let Some(r) = self.ranges.get(index) {
            let pos = r.start + FLAGS_OFFSET;
            if let Some(s) = self.buf.get_mut(pos..pos + 4) {
                let mut f = [0u8; 4];
                f.copy_from_slice(s);
                let mut v = HeaderFlags::from_bits_retain(u32::from_le_bytes(f));
                v.set(flag, on);
                s.copy_from_slice(&v.bits().to_le_bytes());
            }
        }
    }

    /// The encoded compound and the byte range of each message in it.
    pub fn finish(self) -> (BytesMut, Vec<Range<usize>>) {
        (self.buf, self.ranges)
    }
}
