//! A minimal DER reader and writer for the few ASN.1 shapes SPNEGO needs (SEQUENCE, context
//! tags, OBJECT IDENTIFIER, OCTET STRING, ENUMERATED, APPLICATION 0). Only single-byte tags and
//! definite lengths exist in these tokens; anything else is rejected, never panicked on.

use super::AuthError;

/// ASN.1 SEQUENCE (constructed).
pub const TAG_SEQUENCE: u8 = 0x30;
/// ASN.1 OBJECT IDENTIFIER.
pub const TAG_OID: u8 = 0x06;
/// ASN.1 OCTET STRING.
pub const TAG_OCTET_STRING: u8 = 0x04;
/// ASN.1 ENUMERATED.
pub const TAG_ENUMERATED: u8 = 0x0a;
/// ASN.1 BIT STRING.
pub const TAG_BIT_STRING: u8 = 0x03;
/// `[APPLICATION 0]` constructed: the GSS-API initial context token (RFC 2743 3.1).
pub const TAG_APPLICATION_0: u8 = 0x60;

/// The tag byte of a constructed context-specific tag `[n]` (n < 31).
pub const fn context(n: u8) -> u8 {
    0xa0 | n
}

/// Encode one TLV: `tag`, a DER length, then `content`.
pub fn encode(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u64).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = &bytes[skip..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

/// A cursor over DER bytes that hands out one TLV at a time.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`; `what` names the token in error messages.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The tag of the next TLV, if any, without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.buf.first().copied()
    }

    /// Read the next TLV: its tag and its content.
    pub fn read_any(&mut self) -> Result<(u8, &'a [u8]), AuthError> {
        let (&tag, rest) = self
            .buf
            .split_first()
            .ok_or_else(|| AuthError::malformed(self.what, "DER: truncated before a tag"))?;
        if tag & 0x1f == 0x1f {
            return Err(AuthError::malformed(
                self.what,
                format!("DER: multi-byte tag {tag:#04x} is not used by SPNEGO"),
            ));
        }
        let (&first, rest) = rest
            .split_first()
            .ok_or_else(|| AuthError::malformed(self.what, "DER: truncated before a length"))?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 {
                return Err(AuthError::malformed(
                    self.what,
                    "DER: indefinite length is not allowed",
                ));
            }
            if n > 4 {
                return Err(AuthError::malformed(
                    self.what,
                    format!("DER: a {n}-byte length is too long"),
                ));
            }
            let len_bytes = rest
                .get(..n)
                .ok_or_else(|| AuthError::malformed(self.what, "DER: truncated length"))?;
            let len = len_bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | *b as usize);
            (len, &rest[n..])
        };
        if len > rest.len() {
            return Err(AuthError::malformed(
                self.what,
                format!(
                    "DER: element {tag:#04x} claims {len} bytes but only {} remain",
                    rest.len()
                ),
            ));
        }
        let (content, rest) = rest.split_at(len);
        self.buf = rest;
        Ok((tag, content))
    }

    /// Read the next TLV and require its tag to be `tag`.
    pub fn read(&mut self, tag: u8) -> Result<&'a [u8], AuthError> {
        let (got, content) = self.read_any()?;
        if got != tag {
            return Err(AuthError::malformed(
                self.what,
                format!("DER: expected tag {tag:#04x}, found {got:#04x}"),
            ));
        }
        Ok(content)
    }

    /// Read the next TLV only if its tag is `tag`.
    pub fn read_optional(&mut self, tag: u8) -> Result<Option<&'a [u8]>, AuthError> {
        if self.peek_tag() == Some(tag) {
            self.read(tag).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A reader over the content of the next TLV, which must have tag `tag`.
    pub fn nested(&mut self, tag: u8) -> Result<Reader<'a>, AuthError> {
        let what = self.what;
        self.read(tag).map(|c| Reader::new(c, what))
    }
}

/// Dotted form of an OID's content bytes (for messages); malformed content is shown in hex.
pub fn oid_to_string(content: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for (i, b) in content.iter().enumerate() {
        if acc > (u64::MAX >> 7) {
            return hex(content);
        }
        acc = (acc << 7) | (b & 0x7f) as u64;
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (acc / 40).min(2);
                arcs.push(first);
                arcs.push(acc - first * 40);
            } else {
                arcs.push(acc);
            }
            acc = 0;
        } else if i + 1 == content.len() {
            return hex(content);
        }
    }
    arcs.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
