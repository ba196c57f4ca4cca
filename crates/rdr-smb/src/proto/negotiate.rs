//! NEGOTIATE request/response and the 3.1.1 negotiate contexts.

use bytes::{BufMut, Bytes, BytesMut};

use super::consts::{Capabilities, Command, Dialect, SecurityMode};
use super::error::{ProtoError, ProtoResult};
use super::header::{HEADER_SIZE, SmbMessage};
use super::time::FileTime;
use super::utf16::{decode_utf16le, put_utf16le};
use super::wire::{
    Reader, align8, body_reader, len16, len32, msg_offset, pad8, patch_u16, patch_u32, slice_at,
};

/// Preauth integrity hash algorithm: SHA-512.
pub const HASH_SHA512: u16 = 0x0001;
/// Cipher: AES-128-CCM.
pub const CIPHER_AES128_CCM: u16 = 0x0001;
/// Cipher: AES-128-GCM.
pub const CIPHER_AES128_GCM: u16 = 0x0002;
/// Cipher: AES-256-CCM.
pub const CIPHER_AES256_CCM: u16 = 0x0003;
/// Cipher: AES-256-GCM.
pub const CIPHER_AES256_GCM: u16 = 0x0004;
/// Signing algorithm: HMAC-SHA256.
pub const SIGNING_HMAC_SHA256: u16 = 0x0000;
/// Signing algorithm: AES-CMAC.
pub const SIGNING_AES_CMAC: u16 = 0x0001;
/// Signing algorithm: AES-GMAC.
pub const SIGNING_AES_GMAC: u16 = 0x0002;

/// Negotiate context type: preauth integrity capabilities.
pub const CTX_PREAUTH_INTEGRITY: u16 = 0x0001;
/// Negotiate context type: encryption capabilities.
pub const CTX_ENCRYPTION: u16 = 0x0002;
/// Negotiate context type: compression capabilities.
pub const CTX_COMPRESSION: u16 = 0x0003;
/// Negotiate context type: server name.
pub const CTX_NETNAME: u16 = 0x0005;
/// Negotiate context type: transport capabilities.
pub const CTX_TRANSPORT: u16 = 0x0006;
/// Negotiate context type: RDMA transform capabilities.
pub const CTX_RDMA_TRANSFORM: u16 = 0x0007;
/// Negotiate context type: signing capabilities.
pub const CTX_SIGNING: u16 = 0x0008;

/// A 3.1.1 negotiate context. Types rdr does not interpret are kept as [`Other`](Self::Other)
/// and otherwise skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiateContext {
    /// PREAUTH_INTEGRITY_CAPABILITIES: hash algorithms (SHA-512 = 1) and a salt.
    PreauthIntegrity {
        /// Hash algorithm ids.
        hash_algorithms: Vec<u16>,
        /// Salt.
        salt: Bytes,
    },
    /// ENCRYPTION_CAPABILITIES: cipher ids in preference order (the server answers one).
    Encryption {
        /// Cipher ids.
        ciphers: Vec<u16>,
    },
    /// SIGNING_CAPABILITIES: signing algorithm ids (the server answers one).
    Signing {
        /// Algorithm ids.
        algorithms: Vec<u16>,
    },
    /// NETNAME_NEGOTIATE_CONTEXT_ID: the server name the client connects to.
    NetName(String),
    /// Any other context, as sent.
    Other {
        /// ContextType.
        context_type: u16,
        /// Data.
        data: Bytes,
    },
}

fn put_u16_list(buf: &mut BytesMut, v: &[u16], field: &'static str) -> ProtoResult<()> {
    buf.put_u16_le(len16(v.len(), M_CTX, field)?);
    Ok(())
}

const M_CTX: &str = "negotiate context";

impl NegotiateContext {
    /// The ContextType.
    pub fn context_type(&self) -> u16 {
        match self {
            NegotiateContext::PreauthIntegrity { .. } => CTX_PREAUTH_INTEGRITY,
            NegotiateContext::Encryption { .. } => CTX_ENCRYPTION,
            NegotiateContext::Signing { .. } => CTX_SIGNING,
            NegotiateContext::NetName(_) => CTX_NETNAME,
            NegotiateContext::Other { context_type, .. } => *context_type,
        }
    }

    fn encode_data(&self, d: &mut BytesMut) -> ProtoResult<()> {
        match self {
            NegotiateContext::PreauthIntegrity {
                hash_algorithms,
                salt,
            } => {
                put_u16_list(d, hash_algorithms, "HashAlgorithmCount")?;
                d.put_u16_le(len16(salt.len(), M_CTX, "SaltLength")?);
                for h in hash_algorithms {
                    d.put_u16_le(*h);
                }
                d.extend_from_slice(salt);
            }
            NegotiateContext::Encryption { ciphers } => {
                put_u16_list(d, ciphers, "CipherCount")?;
                for c in ciphers {
                    d.put_u16_le(*c);
                }
            }
            NegotiateContext::Signing { algorithms } => {
                put_u16_list(d, algorithms, "SigningAlgorithmCount")?;
                for a in algorithms {
                    d.put_u16_le(*a);
                }
            }
            NegotiateContext::NetName(n) => {
                put_utf16le(d, n);
            }
            NegotiateContext::Other { data, .. } => d.extend_from_slice(data),
        }
        Ok(())
    }

    fn decode_data(context_type: u16, data: Bytes) -> ProtoResult<NegotiateContext> {
        let mut r = Reader::at(&data, 0, M_CTX);
        Ok(match context_type {
            CTX_PREAUTH_INTEGRITY => {
                let n = r.u16("HashAlgorithmCount")?;
                let salt_len = r.u16("SaltLength")? as usize;
                let mut hash_algorithms = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    hash_algorithms.push(r.u16("HashAlgorithms")?);
                }
                let salt = slice_at(&data, r.pos(), salt_len, 0, M_CTX, "Salt")?;
                NegotiateContext::PreauthIntegrity {
                    hash_algorithms,
                    salt,
                }
            }
            CTX_ENCRYPTION => {
                let n = r.u16("CipherCount")?;
                let mut ciphers = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    ciphers.push(r.u16("Ciphers")?);
                }
                NegotiateContext::Encryption { ciphers }
            }
            CTX_SIGNING => {
                let n = r.u16("SigningAlgorithmCount")?;
                let mut algorithms = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    algorithms.push(r.u16("SigningAlgorithms")?);
                }
                NegotiateContext::Signing { algorithms }
            }
            CTX_NETNAME => NegotiateContext::NetName(decode_utf16le(&data, M_CTX, "NetName")?),
            other => NegotiateContext::Other {
                context_type: other,
                data,
            },
        })
    }
}

/// Appends a context list, each context 8-byte aligned relative to the message (the body
/// starts 8-aligned because the header is 64 bytes).
fn encode_contexts(
    buf: &mut BytesMut,
    body_start: usize,
    ctxs: &[NegotiateContext],
) -> ProtoResult<()> {
    for (i, c) in ctxs.iter().enumerate() {
        if i > 0 {
            pad8(buf, body_start);
        }
        let mut d = BytesMut::new();
        c.encode_data(&mut d)?;
        buf.put_u16_le(c.context_type());
        buf.put_u16_le(len16(d.len(), M_CTX, "DataLength")?);
        buf.put_u32_le(0);
        buf.extend_from_slice(&d);
    }
    Ok(())
}

fn decode_contexts(
    msg: &Bytes,
    offset: usize,
    count: u16,
    m: &'static str,
) -> ProtoResult<Vec<NegotiateContext>> {
    let mut out = Vec::with_capacity(count as usize);
    let mut pos = offset;
    if count > 0 && (offset < HEADER_SIZE || !offset.is_multiple_of(8)) {
        return Err(ProtoError::BadValue {
            msg: m,
            field: "NegotiateContextOffset",
            value: offset as u64,
            why: "must be 8-byte aligned and after the header",
        });
    }
    for _ in 0..count {
        let mut r = Reader::at(msg, pos, M_CTX);
        let t = r.u16("ContextType")?;
        let len = r.u16("DataLength")? as usize;
        r.skip(4, "Reserved")?;
        let data = slice_at(msg, r.pos(), len, 0, M_CTX, "Data")?;
        out.push(NegotiateContext::decode_data(t, data)?);
        pos = align8(r.pos().saturating_add(len));
    }
    Ok(out)
}

/// NEGOTIATE request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegotiateRequest {
    /// SecurityMode.
    pub security_mode: SecurityMode,
    /// Capabilities.
    pub capabilities: Capabilities,
    /// ClientGuid.
    pub client_guid: [u8; 16],
    /// Dialects offered.
    pub dialects: Vec<Dialect>,
    /// 3.1.1 negotiate contexts (sent only when 3.1.1 is offered).
    pub contexts: Vec<NegotiateContext>,
}

const M_REQ: &str = "NEGOTIATE request";
const M_RSP: &str = "NEGOTIATE response";

impl SmbMessage for NegotiateRequest {
    const COMMAND: Command = Command::NEGOTIATE;
    const NAME: &'static str = M_REQ;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        let start = buf.len();
        buf.put_u16_le(36);
        buf.put_u16_le(len16(self.dialects.len(), M_REQ, "DialectCount")?);
        buf.put_u16_le(self.security_mode.bits());
        buf.put_u16_le(0);
        buf.put_u32_le(self.capabilities.bits());
        buf.put_slice(&self.client_guid);
        let ctx_off_pos = buf.len();
        buf.put_u32_le(0); // NegotiateContextOffset, or ClientStartTime low half
        buf.put_u16_le(0); // NegotiateContextCount
        buf.put_u16_le(0);
        for d in &self.dialects {
            buf.put_u16_le(d.0);
        }
        let with_ctx = self.dialects.contains(&Dialect::SMB3_1_1) && !self.contexts.is_empty();
        if with_ctx {
            pad8(buf, start);
            let off = msg_offset(buf, start);
            patch_u32(
                buf,
                ctx_off_pos,
                len32(off, M_REQ, "NegotiateContextOffset")?,
            );
            patch_u16(
                buf,
                ctx_off_pos + 4,
                len16(self.contexts.len(), M_REQ, "NegotiateContextCount")?,
            );
            encode_contexts(buf, start, &self.contexts)?;
        }
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_REQ)?;
        r.structure_size(36)?;
        let n = r.u16("DialectCount")?;
        let security_mode = SecurityMode::from_bits_retain(r.u16("SecurityMode")?);
        r.skip(2, "Reserved")?;
        let capabilities = Capabilities::from_bits_retain(r.u32("Capabilities")?);
        let client_guid = r.array("ClientGuid")?;
        let ctx_off = r.u32("NegotiateContextOffset")? as usize;
        let ctx_count = r.u16("NegotiateContextCount")?;
        r.skip(2, "Reserved2")?;
        let mut dialects = Vec::with_capacity(n as usize);
        for _ in 0..n {
            dialects.push(Dialect(r.u16("Dialects")?));
        }
        let contexts = if dialects.contains(&Dialect::SMB3_1_1) {
            decode_contexts(msg, ctx_off, ctx_count, M_REQ)?
        } else {
            Vec::new()
        };
        Ok(NegotiateRequest {
            security_mode,
            capabilities,
            client_guid,
            dialects,
            contexts,
        })
    }
}

/// NEGOTIATE response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegotiateResponse {
    /// SecurityMode.
    pub security_mode: SecurityMode,
    /// The dialect chosen (0x02FF = wildcard, when answering an SMB1 negotiate).
    pub dialect: Dialect,
    /// ServerGuid.
    pub server_guid: [u8; 16],
    /// Capabilities.
    pub capabilities: Capabilities,
    /// MaxTransactSize.
    pub max_transact_size: u32,
    /// MaxReadSize.
    pub max_read_size: u32,
    /// MaxWriteSize.
    pub max_write_size: u32,
    /// SystemTime.
    pub system_time: FileTime,
    /// ServerStartTime.
    pub server_start_time: FileTime,
    /// The GSS (SPNEGO) token.
    pub security_buffer: Bytes,
    /// 3.1.1 negotiate contexts.
    pub contexts: Vec<NegotiateContext>,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect::SMB2_0_2
    }
}

impl NegotiateResponse {
    /// The cipher the server chose, if it sent an encryption context.
    pub fn cipher(&self) -> Option<u16> {
        self.contexts.iter().find_map(|c| match c {
            NegotiateContext::Encryption { ciphers } => ciphers.first().copied(),
            _ => None,
        })
    }

    /// The signing algorithm the server chose, if it sent a signing context.
    pub fn signing_algorithm(&self) -> Option<u16> {
        self.contexts.iter().find_map(|c| match c {
            NegotiateContext::Signing { algorithms } => algorithms.first().copied(),
            _ => None,
        })
    }

    /// The preauth hash algorithm and salt, if sent.
    pub fn preauth(&self) -> Option<(u16, &Bytes)> {
        self.contexts.iter().find_map(|c| match c {
            NegotiateContext::PreauthIntegrity {
                hash_algorithms,
                salt,
            } => hash_algorithms.first().map(|h| (*h, salt)),
            _ => None,
        })
    }
}

impl SmbMessage for NegotiateResponse {
    const COMMAND: Command = Command::NEGOTIATE;
    const NAME: &'static str = M_RSP;

    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        let start = buf.len();
        let with_ctx = self.dialect == Dialect::SMB3_1_1 && !self.contexts.is_empty();
        buf.put_u16_le(65);
        buf.put_u16_le(self.security_mode.bits());
        buf.put_u16_le(self.dialect.0);
        buf.put_u16_le(if with_ctx {
            len16(self.contexts.len(), M_RSP, "NegotiateContextCount")?
        } else {
            0
        });
        buf.put_slice(&self.server_guid);
        buf.put_u32_le(self.capabilities.bits());
        buf.put_u32_le(self.max_transact_size);
        buf.put_u32_le(self.max_read_size);
        buf.put_u32_le(self.max_write_size);
        buf.put_u64_le(self.system_time.0);
        buf.put_u64_le(self.server_start_time.0);
        let sec_len = len16(self.security_buffer.len(), M_RSP, "SecurityBufferLength")?;
        buf.put_u16_le(if sec_len > 0 {
            (HEADER_SIZE + 64) as u16
        } else {
            0
        });
        buf.put_u16_le(sec_len);
        let ctx_off_pos = buf.len();
        buf.put_u32_le(0);
        buf.extend_from_slice(&self.security_buffer);
        if with_ctx {
            pad8(buf, start);
            let off = msg_offset(buf, start);
            patch_u32(
                buf,
                ctx_off_pos,
                len32(off, M_RSP, "NegotiateContextOffset")?,
            );
            encode_contexts(buf, start, &self.contexts)?;
        }
        Ok(())
    }

    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        let mut r = body_reader(msg, M_RSP)?;
        r.structure_size(65)?;
        let security_mode = SecurityMode::from_bits_retain(r.u16("SecurityMode")?);
        let dialect = Dialect(r.u16("DialectRevision")?);
        let ctx_count = r.u16("NegotiateContextCount")?;
        let server_guid = r.array("ServerGuid")?;
        let capabilities = Capabilities::from_bits_retain(r.u32("Capabilities")?);
        let max_transact_size = r.u32("MaxTransactSize")?;
        let max_read_size = r.u32("MaxReadSize")?;
        let max_write_size = r.u32("MaxWriteSize")?;
        let system_time = FileTime(r.u64("SystemTime")?);
        let server_start_time = FileTime(r.u64("ServerStartTime")?);
        let sec_off = r.u16("SecurityBufferOffset")? as usize;
        let sec_len = r.u16("SecurityBufferLength")? as usize;
        let ctx_off = r.u32("NegotiateContextOffset")? as usize;
        let security_buffer =
            slice_at(msg, sec_off, sec_len, HEADER_SIZE, M_RSP, "SecurityBuffer")?;
        let contexts = if dialect == Dialect::SMB3_1_1 {
            decode_contexts(msg, ctx_off, ctx_count, M_RSP)?
        } else {
            Vec::new()
        };
        Ok(NegotiateResponse {
            security_mode,
            dialect,
            server_guid,
            capabilities,
            max_transact_size,
            max_read_size,
            max_write_size,
            system_time,
            server_start_time,
            security_buffer,
            contexts,
        })
    }
}
