//! SP800-108 key derivation in counter mode with HMAC-SHA256 ([MS-SMB2] 3.1.4.2), and the
//! per-dialect session keys of [MS-SMB2] 3.2.5.3.1 / 3.3.5.5.3.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::encryption::{Decryptor, Encryptor};
use super::signing::Signer;
use super::{Cipher, CryptoError, Dialect, SigningAlgorithm};

type HmacSha256 = Hmac<Sha256>;

/// 3.0/3.0.2 signing key label ("SMB2AESCMAC" with its NUL).
pub const LABEL_SMB2AESCMAC: &[u8] = b"SMB2AESCMAC\0";
/// 3.0/3.0.2 signing key context.
pub const CONTEXT_SMBSIGN: &[u8] = b"SmbSign\0";
/// 3.0/3.0.2 encryption key label.
pub const LABEL_SMB2AESCCM: &[u8] = b"SMB2AESCCM\0";
/// 3.0/3.0.2 client encryption (server input) key context; note the space.
pub const CONTEXT_SERVERIN: &[u8] = b"ServerIn \0";
/// 3.0/3.0.2 client decryption (server output) key context.
pub const CONTEXT_SERVEROUT: &[u8] = b"ServerOut\0";
/// 3.0/3.0.2 application key label.
pub const LABEL_SMB2APP: &[u8] = b"SMB2APP\0";
/// 3.0/3.0.2 application key context.
pub const CONTEXT_SMBRPC: &[u8] = b"SmbRpc\0";
/// 3.1.1 signing key label (context: the preauth integrity hash).
pub const LABEL_SMBSIGNINGKEY: &[u8] = b"SMBSigningKey\0";
/// 3.1.1 client-to-server cipher key label (the client's encryption key).
pub const LABEL_SMBC2SCIPHERKEY: &[u8] = b"SMBC2SCipherKey\0";
/// 3.1.1 server-to-client cipher key label (the client's decryption key).
pub const LABEL_SMBS2CCIPHERKEY: &[u8] = b"SMBS2CCipherKey\0";
/// 3.1.1 application key label.
pub const LABEL_SMBAPPKEY: &[u8] = b"SMBAppKey\0";

/// KDF in counter mode (SP800-108 5.1) with PRF = HMAC-SHA256, r = 32, and
/// `L = len_bits`: K(i) = PRF(key, [i]₂ ‖ label ‖ 0x00 ‖ context ‖ [L]₂), i = 1, 2, ….
/// Returns `len_bits / 8` bytes (SMB uses 128 and 256).
pub fn sp800_108_hmac_sha256(key: &[u8], label: &[u8], context: &[u8], len_bits: u32) -> Vec<u8> {
    let want = (len_bits / 8) as usize;
    let mut out = Vec::with_capacity(want + 32);
    let mut i: u32 = 1;
    while out.len() < want {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(key)
            .unwrap_or_else(|_| <HmacSha256 as Mac>::new(&Default::default()));
        mac.update(&i.to_be_bytes());
        mac.update(label);
        mac.update(&[0]);
        mac.update(context);
        mac.update(&len_bits.to_be_bytes());
        out.extend_from_slice(&mac.finalize().into_bytes());
        i += 1;
    }
    out.truncate(want);
    out
}

/// Session.SessionKey from the authentication's key: its first 16 bytes, right-padded with zeros
/// ([MS-SMB2] 3.2.1.3).
pub fn session_key_16(full_session_key: &[u8]) -> [u8; 16] {
    let mut k = [0u8; 16];
    let n = full_session_key.len().min(16);
    k[..n].copy_from_slice(&full_session_key[..n]);
    k
}

/// What the session keys depend on.
#[derive(Debug, Clone, Copy)]
pub struct KeyParams<'a> {
    /// The connection's dialect.
    pub dialect: Dialect,
    /// The key from authentication (NTLM: the 16-byte ExportedSessionKey; Kerberos may be
    /// longer). Session.SessionKey is its first 16 bytes; 3.1.1 AES-256 uses all of it.
    pub full_session_key: &'a [u8],
    /// The negotiated cipher, when encryption is available (3.0/3.0.2: AES-128-CCM).
    pub cipher: Option<Cipher>,
    /// The signing algorithm (see [`SigningAlgorithm::default_for`]).
    pub signing: SigningAlgorithm,
    /// 3.1.1 only: Session.PreauthIntegrityHashValue after the last SESSION_SETUP request.
    pub preauth_hash: Option<&'a [u8; 64]>,
}

/// The keys of one session (or channel), ready to use.
#[derive(Debug)]
pub struct SessionKeys {
    /// Session.SessionKey (16 bytes).
    pub session_key: [u8; 16],
    /// Session.SigningKey (2.x: the session key itself).
    pub signing_key: Vec<u8>,
    /// Session.ApplicationKey.
    pub application_key: Vec<u8>,
    /// Session.EncryptionKey (client → server), when a cipher was negotiated.
    pub encryption_key: Option<Vec<u8>>,
    /// Session.DecryptionKey (server → client), when a cipher was negotiated.
    pub decryption_key: Option<Vec<u8>>,
    /// Signs and verifies with `signing_key`.
    pub signer: Signer,
    /// Encrypts requests, when a cipher was negotiated.
    pub encryptor: Option<Encryptor>,
    /// Decrypts responses, when a cipher was negotiated.
    pub decryptor: Option<Decryptor>,
}

impl SessionKeys {
    /// Derive a client's keys per [MS-SMB2] 3.2.5.3.1.
    pub fn derive(p: &KeyParams<'_>) -> Result<SessionKeys, CryptoError> {
        let session_key = session_key_16(p.full_session_key);
        if p.signing == SigningAlgorithm::AesGmac && p.dialect != Dialect::Smb311 {
            return Err(CryptoError::Unsupported(format!(
                "AES-GMAC signing needs dialect 3.1.1, not {:#06x}",
                p.dialect.as_u16()
            )));
        }
        if !p.dialect.is_smb3() {
            if p.cipher.is_some() {
                return Err(CryptoError::Unsupported(format!(
                    "encryption needs SMB 3.x, not {:#06x}",
                    p.dialect.as_u16()
                )));
            }
            let signer = Signer::new(p.signing, &session_key)?;
            return Ok(SessionKeys {
                session_key,
                signing_key: session_key.to_vec(),
                application_key: session_key.to_vec(),
                encryption_key: None,
                decryption_key: None,
                signer,
                encryptor: None,
                decryptor: None,
            });
        }
        let (signing_key, application_key, enc, dec) = if p.dialect == Dialect::Smb311 {
            let hash = p.preauth_hash.ok_or_else(|| {
                CryptoError::Unsupported(
                    "dialect 3.1.1 keys need the preauth integrity hash".into(),
                )
            })?;
            let signing = sp800_108_hmac_sha256(&session_key, LABEL_SMBSIGNINGKEY, hash, 128);
            let app = sp800_108_hmac_sha256(&session_key, LABEL_SMBAPPKEY, hash, 128);
            let (enc, dec) = match p.cipher {
                None => (None, None),
                Some(Cipher::Aes128Ccm | Cipher::Aes128Gcm) => (
                    Some(sp800_108_hmac_sha256(
                        &session_key,
                        LABEL_SMBC2SCIPHERKEY,
                        hash,
                        128,
                    )),
                    Some(sp800_108_hmac_sha256(
                        &session_key,
                        LABEL_SMBS2CCIPHERKEY,
                        hash,
                        128,
                    )),
                ),
                Some(Cipher::Aes256Ccm | Cipher::Aes256Gcm) => (
                    Some(sp800_108_hmac_sha256(
                        p.full_session_key,
                        LABEL_SMBC2SCIPHERKEY,
                        hash,
                        256,
                    )),
                    Some(sp800_108_hmac_sha256(
                        p.full_session_key,
                        LABEL_SMBS2CCIPHERKEY,
                        hash,
                        256,
                    )),
                ),
            };
            (signing, app, enc, dec)
        } else {
            let signing =
                sp800_108_hmac_sha256(&session_key, LABEL_SMB2AESCMAC, CONTEXT_SMBSIGN, 128);
            let app = sp800_108_hmac_sha256(&session_key, LABEL_SMB2APP, CONTEXT_SMBRPC, 128);
            let (enc, dec) = match p.cipher {
                None => (None, None),
                Some(Cipher::Aes128Ccm) => (
                    Some(sp800_108_hmac_sha256(
                        &session_key,
                        LABEL_SMB2AESCCM,
                        CONTEXT_SERVERIN,
                        128,
                    )),
                    Some(sp800_108_hmac_sha256(
                        &session_key,
                        LABEL_SMB2AESCCM,
                        CONTEXT_SERVEROUT,
                        128,
                    )),
                ),
                Some(other) => {
                    return Err(CryptoError::Unsupported(format!(
                        "cipher {other:?} needs dialect 3.1.1"
                    )));
                }
            };
            (signing, app, enc, dec)
        };
        let signer = Signer::new(p.signing, &signing_key)?;
        let (encryptor, decryptor) = match (p.cipher, &enc, &dec) {
            (Some(c), Some(e), Some(d)) => {
                (Some(Encryptor::new(c, e)?), Some(Decryptor::new(c, d)?))
            }
            _ => (None, None),
        };
        Ok(SessionKeys {
            session_key,
            signing_key,
            application_key,
            encryption_key: enc,
            decryption_key: dec,
            signer,
            encryptor,
            decryptor,
        })
    }
}
