//! NEGOTIATE: dialect 2.0.2–3.1.1 selection with the 3.1.1 contexts (preauth integrity,
//! encryption, signing), and FSCTL_VALIDATE_NEGOTIATE_INFO for 3.0 / 3.0.2 ([MS-SMB2] 3.2.4.2,
//! 3.2.5.2, 3.2.5.14.12).

use bytes::Bytes;
use rdr_core::{NtStatus, RxError, RxResult};

use crate::conn::{Connection, SendOptions};
use crate::crypto::preauth::PreauthHash;
use crate::crypto::{self, Cipher, SigningAlgorithm};
use crate::proto::{
    CIPHER_AES128_CCM, CIPHER_AES128_GCM, CIPHER_AES256_CCM, CIPHER_AES256_GCM, Capabilities,
    Dialect, HASH_SHA512, Header, NegotiateContext, NegotiateRequest, NegotiateResponse,
    SIGNING_AES_CMAC, SIGNING_AES_GMAC, SecurityMode,
};

/// What the client offers in NEGOTIATE.
#[derive(Debug, Clone)]
pub struct NegotiateOptions {
    /// Dialects offered (any subset of 2.0.2, 2.1, 3.0, 3.0.2, 3.1.1).
    pub dialects: Vec<Dialect>,
    /// Require signing (SecurityMode SIGNING_REQUIRED; every request of an authenticated,
    /// non-guest session is then signed or encrypted).
    pub require_signing: bool,
    /// The client's GUID (one per client; leases are keyed by it on the server).
    pub client_guid: [u8; 16],
}

/// The outcome of NEGOTIATE, shared by every session on the connection.
#[derive(Debug, Clone)]
pub struct Negotiated {
    /// The dialect the server chose.
    pub dialect: Dialect,
    /// The same, as the crypto layer names it.
    pub crypto_dialect: crypto::Dialect,
    /// Server capabilities.
    pub capabilities: Capabilities,
    /// Server security mode.
    pub server_security_mode: SecurityMode,
    /// ServerGuid.
    pub server_guid: [u8; 16],
    /// Largest READ the server accepts.
    pub max_read: u32,
    /// Largest WRITE the server accepts.
    pub max_write: u32,
    /// Largest QUERY/IOCTL output the server accepts.
    pub max_transact: u32,
    /// Cipher for encryption (3.1.1 context; AES-128-CCM on 3.0.x with CAP_ENCRYPTION).
    pub cipher: Option<Cipher>,
    /// Signing algorithm.
    pub signing: SigningAlgorithm,
    /// The server's SPNEGO init token.
    pub security_buffer: Bytes,
    /// Preauth integrity hash after NEGOTIATE (3.1.1 only).
    pub preauth: Option<PreauthHash>,
    /// What was offered, for VALIDATE_NEGOTIATE_INFO.
    pub offered: NegotiateRequest,
    /// Whether signing is to be used on authenticated sessions.
    pub signing_required: bool,
}

impl Negotiated {
    /// True when leases may be requested (2.1+ with CAP_LEASING).
    pub fn leasing(&self) -> bool {
        self.dialect >= Dialect::SMB2_1 && self.capabilities.contains(Capabilities::LEASING)
    }
}

/// Runs NEGOTIATE on a fresh connection.
pub async fn negotiate(
    conn: &Connection,
    opts: &NegotiateOptions,
    server: &str,
) -> RxResult<Negotiated> {
    let mut dialects: Vec<Dialect> = opts.dialects.clone();
    dialects.sort();
    dialects.dedup();
    if dialects.is_empty() {
        return Err(RxError::status(
            NtStatus::STATUS_INVALID_PARAMETER,
            format!("\\\\{server}: no SMB dialect offered"),
        ));
    }
    let mut security_mode = SecurityMode::SIGNING_ENABLED;
    if opts.require_signing {
        security_mode |= SecurityMode::SIGNING_REQUIRED;
    }
    let mut capabilities = Capabilities::empty();
    if dialects.iter().any(|d| *d >= Dialect::SMB2_1) {
        capabilities |= Capabilities::LEASING | Capabilities::LARGE_MTU;
    }
    if dialects.iter().any(|d| d.is_smb3()) {
        capabilities |= Capabilities::ENCRYPTION;
    }
    let mut contexts = Vec::new();
    if dialects.contains(&Dialect::SMB3_1_1) {
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt).map_err(|e| {
            RxError::status(NtStatus::STATUS_UNSUCCESSFUL, format!("random salt: {e}"))
        })?;
        contexts.push(NegotiateContext::PreauthIntegrity {
            hash_algorithms: vec![HASH_SHA512],
            salt: Bytes::copy_from_slice(&salt),
        });
        contexts.push(NegotiateContext::Encryption {
            ciphers: vec![
                CIPHER_AES128_GCM,
                CIPHER_AES128_CCM,
                CIPHER_AES256_GCM,
                CIPHER_AES256_CCM,
            ],
        });
        contexts.push(NegotiateContext::Signing {
            algorithms: vec![SIGNING_AES_GMAC, SIGNING_AES_CMAC],
        });
        contexts.push(NegotiateContext::NetName(server.to_string()));
    }
    let req = NegotiateRequest {
        security_mode,
        capabilities,
        client_guid: opts.client_guid,
        dialects: dialects.clone(),
        contexts,
    };
    let mut h = Header::request(crate::proto::Command::NEGOTIATE);
    h.credits = 64;
    let pending = conn.submit(&h, &req, &SendOptions::default()).await?;
    let req_bytes = pending.request_bytes().clone();
    let rsp = pending.wait().await?;
    if rsp.header.status != NtStatus::STATUS_SUCCESS {
        return Err(RxError::status(
            rsp.header.status,
            format!("\\\\{server}: NEGOTIATE"),
        ));
    }
    let body: NegotiateResponse = rsp.body()?;
    if !dialects.contains(&body.dialect) {
        return Err(RxError::status(
            NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
            format!(
                "\\\\{server}: NEGOTIATE: the server chose dialect {:#06x}, which was not offered",
                body.dialect.0
            ),
        ));
    }
    let crypto_dialect = crypto::Dialect::from_u16(body.dialect.0).ok_or_else(|| {
        RxError::status(
            NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
            format!("\\\\{server}: unknown dialect {:#06x}", body.dialect.0),
        )
    })?;
    let mut cipher = None;
    let mut signing = SigningAlgorithm::default_for(crypto_dialect);
    let mut preauth = None;
    if body.dialect == Dialect::SMB3_1_1 {
        if let Some(c) = body.cipher() {
            cipher = Cipher::from_u16(c);
        }
        if let Some(s) = body.signing_algorithm() {
            signing = SigningAlgorithm::from_u16(s).unwrap_or(signing);
        }
        match body.preauth() {
            Some((HASH_SHA512, _)) => {}
            _ => {
                return Err(RxError::status(
                    NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
                    format!("\\\\{server}: 3.1.1 NEGOTIATE without a SHA-512 preauth context"),
                ));
            }
        }
        let mut p = PreauthHash::new();
        p.update(&[&req_bytes]);
        p.update(&[&rsp.bytes]);
        preauth = Some(p);
    } else if body.dialect.is_smb3() && body.capabilities.contains(Capabilities::ENCRYPTION) {
        cipher = Some(Cipher::Aes128Ccm);
    }
    let large_mtu =
        body.dialect >= Dialect::SMB2_1 && body.capabilities.contains(Capabilities::LARGE_MTU);
    conn.set_large_mtu(large_mtu);
    let signing_required =
        opts.require_signing || body.security_mode.contains(SecurityMode::SIGNING_REQUIRED);
    // Without LARGE_MTU every message is limited to 64 KiB.
    let cap = if large_mtu { u32::MAX } else { 65536 };
    Ok(Negotiated {
        dialect: body.dialect,
        crypto_dialect,
        capabilities: body.capabilities,
        server_security_mode: body.security_mode,
        server_guid: body.server_guid,
        max_read: body.max_read_size.min(cap).max(4096),
        max_write: body.max_write_size.min(cap).max(4096),
        max_transact: body.max_transact_size.min(cap).max(4096),
        cipher,
        signing,
        security_buffer: body.security_buffer,
        preauth,
        offered: req,
        signing_required,
    })
}
