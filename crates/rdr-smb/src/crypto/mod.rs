//! SMB2/3 cryptography ([MS-SMB2] 3.1.4): SP800-108 key derivation, signing (HMAC-SHA256,
//! AES-128-CMAC, AES-128-GMAC), encryption with the TRANSFORM header (AES-128/256-CCM/GCM)
//! and the 3.1.1 preauth integrity hash. Pure functions and small state objects, no I/O.
//!
//! How the engine uses it, per session:
//! 1. Keep a [`preauth::PreauthHash`] per connection (NEGOTIATE request + response) and a copy
//!    per session (each SESSION_SETUP request and every response except the final success).
//! 2. When authentication yields the session key: [`kdf::SessionKeys::derive`] with the dialect,
//!    cipher, signing algorithm and (3.1.1) the session's preauth hash.
//! 3. Sign/verify with `keys.signer` ([`signing::Signer`]); encrypt with `keys.encryptor`,
//!    decrypt with `keys.decryptor` ([`encryption::Encryptor`], [`encryption::Decryptor`]).

#![warn(missing_docs)]

pub mod encryption;
pub mod kdf;
pub mod preauth;
pub mod signing;

use rdr_core::{NtStatus, RxError};

/// An SMB2/3 dialect, as far as keys and algorithms depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dialect {
    /// 2.0.2 (0x0202).
    Smb202,
    /// 2.1 (0x0210).
    Smb210,
    /// 3.0 (0x0300).
    Smb300,
    /// 3.0.2 (0x0302).
    Smb302,
    /// 3.1.1 (0x0311).
    Smb311,
}

impl Dialect {
    /// From the DialectRevision on the wire.
    pub fn from_u16(v: u16) -> Option<Self> {
        match v {
            0x0202 => Some(Dialect::Smb202),
            0x0210 => Some(Dialect::Smb210),
            0x0300 => Some(Dialect::Smb300),
            0x0302 => Some(Dialect::Smb302),
            0x0311 => Some(Dialect::Smb311),
            _ => None,
        }
    }

    /// The DialectRevision on the wire.
    pub fn as_u16(self) -> u16 {
        match self {
            Dialect::Smb202 => 0x0202,
            Dialect::Smb210 => 0x0210,
            Dialect::Smb300 => 0x0300,
            Dialect::Smb302 => 0x0302,
            Dialect::Smb311 => 0x0311,
        }
    }

    /// True for the SMB 3.x family.
    pub fn is_smb3(self) -> bool {
        self >= Dialect::Smb300
    }
}

/// Encryption cipher ([MS-SMB2] 2.2.3.1.2 Ciphers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// AES-128-CCM (0x0001); the only cipher of 3.0/3.0.2.
    Aes128Ccm,
    /// AES-128-GCM (0x0002).
    Aes128Gcm,
    /// AES-256-CCM (0x0003).
    Aes256Ccm,
    /// AES-256-GCM (0x0004).
    Aes256Gcm,
}

impl Cipher {
    /// From the cipher id on the wire.
    pub fn from_u16(v: u16) -> Option<Self> {
        match v {
            1 => Some(Cipher::Aes128Ccm),
            2 => Some(Cipher::Aes128Gcm),
            3 => Some(Cipher::Aes256Ccm),
            4 => Some(Cipher::Aes256Gcm),
            _ => None,
        }
    }

    /// The cipher id on the wire.
    pub fn as_u16(self) -> u16 {
        match self {
            Cipher::Aes128Ccm => 1,
            Cipher::Aes128Gcm => 2,
            Cipher::Aes256Ccm => 3,
            Cipher::Aes256Gcm => 4,
        }
    }

    /// Key length in bytes (16 or 32).
    pub fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Ccm | Cipher::Aes128Gcm => 16,
            Cipher::Aes256Ccm | Cipher::Aes256Gcm => 32,
        }
    }

    /// Nonce length in bytes used from the TRANSFORM header's 16-byte Nonce (11 CCM, 12 GCM).
    pub fn nonce_len(self) -> usize {
        match self {
            Cipher::Aes128Ccm | Cipher::Aes256Ccm => 11,
            Cipher::Aes128Gcm | Cipher::Aes256Gcm => 12,
        }
    }
}

/// Signing algorithm ([MS-SMB2] 2.2.3.1.7; HMAC-SHA256 is implied by 2.0.2/2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// HMAC-SHA256, first 16 bytes (0x0000): dialects 2.0.2 and 2.1.
    HmacSha256,
    /// AES-128-CMAC (0x0001): 3.0, 3.0.2, and 3.1.1 by default.
    AesCmac,
    /// AES-128-GMAC (0x0002): 3.1.1 with SMB2_SIGNING_CAPABILITIES.
    AesGmac,
}

impl SigningAlgorithm {
    /// From the signing algorithm id on the wire.
    pub fn from_u16(v: u16) -> Option<Self> {
        match v {
            0 => Some(SigningAlgorithm::HmacSha256),
            1 => Some(SigningAlgorithm::AesCmac),
            2 => Some(SigningAlgorithm::AesGmac),
            _ => None,
        }
    }

    /// The id on the wire.
    pub fn as_u16(self) -> u16 {
        match self {
            SigningAlgorithm::HmacSha256 => 0,
            SigningAlgorithm::AesCmac => 1,
            SigningAlgorithm::AesGmac => 2,
        }
    }

    /// The default for a dialect when nothing else was negotiated.
    pub fn default_for(dialect: Dialect) -> Self {
        if dialect.is_smb3() {
            SigningAlgorithm::AesCmac
        } else {
            SigningAlgorithm::HmacSha256
        }
    }
}

/// What went wrong in signing, encryption or key derivation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A signed message's signature does not match.
    #[error("SMB2 message (MessageId {message_id}, command {command:#06x}) has a bad signature")]
    BadSignature {
        /// The MessageId of the message.
        message_id: u64,
        /// The command code of the message.
        command: u16,
    },
    /// An encrypted message failed authentication (wrong key, tampered, or replayed nonce).
    #[error("encrypted SMB3 message (SessionId {session_id:#x}) failed to decrypt: bad signature")]
    DecryptFailed {
        /// The SessionId from the TRANSFORM header.
        session_id: u64,
    },
    /// A message is too short or otherwise not shaped as required.
    #[error("malformed {what}: {problem}")]
    Malformed {
        /// Which message or field.
        what: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A key of the wrong length was given.
    #[error("{what} key must be {expected} bytes, got {got}")]
    KeyLength {
        /// Which key.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// The algorithm does not fit the dialect (e.g. GMAC before 3.1.1).
    #[error("{0}")]
    Unsupported(String),
    /// The nonce counter of an encryption key is exhausted; the session must be re-established.
    #[error("encryption nonces exhausted for this key")]
    NonceExhausted,
    /// The system random number generator failed.
    #[error("the random number generator failed: {0}")]
    Random(String),
}

impl CryptoError {
    pub(crate) fn malformed(what: &'static str, problem: impl Into<String>) -> Self {
        CryptoError::Malformed {
            what,
            problem: problem.into(),
        }
    }

    /// The NTSTATUS this error stands for.
    pub fn nt_status(&self) -> NtStatus {
        match self {
            CryptoError::BadSignature { .. } => NtStatus::STATUS_INVALID_SIGNATURE,
            CryptoError::DecryptFailed { .. } => NtStatus::STATUS_ACCESS_DENIED,
            CryptoError::Malformed { .. } => NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
            CryptoError::KeyLength { .. } => NtStatus::STATUS_INVALID_PARAMETER,
            CryptoError::Unsupported(_) => NtStatus::STATUS_NOT_SUPPORTED,
            CryptoError::NonceExhausted => NtStatus::STATUS_NETWORK_SESSION_EXPIRED,
            CryptoError::Random(_) => NtStatus::STATUS_UNSUCCESSFUL,
        }
    }
}

impl From<CryptoError> for RxError {
    fn from(e: CryptoError) -> Self {
        RxError::status(e.nt_status(), e.to_string())
    }
}
