//! SMB3 encryption ([MS-SMB2] 3.1.4.3, 2.2.41): a message becomes a 52-byte TRANSFORM header
//! followed by its ciphertext. AES-128/256-CCM use 11 bytes of the 16-byte Nonce field,
//! AES-128/256-GCM 12; the rest is zero. The AAD is the header from Nonce onward (32 bytes); the
//! AEAD tag is the header's Signature. Nonces come from a per-key counter and never repeat.

use std::sync::atomic::{AtomicU64, Ordering};

use aes::{Aes128, Aes256};
use ccm::Ccm;
use ccm::aead::{AeadInPlace, KeyInit};
use ccm::consts::{U11, U16};

use super::{Cipher, CryptoError};

/// Length of the SMB2 TRANSFORM header.
pub const TRANSFORM_HEADER_LEN: usize = 52;
/// ProtocolId of the TRANSFORM header: 0xFD 'S' 'M' 'B'.
pub const TRANSFORM_PROTOCOL_ID: [u8; 4] = [0xfd, b'S', b'M', b'B'];
/// Flags value "Encrypted" (3.1.1) / EncryptionAlgorithm AES-128-CCM (3.0, 3.0.2): both 0x0001.
pub const TRANSFORM_FLAG_ENCRYPTED: u16 = 0x0001;
/// Offset of the AAD (the Nonce field) in the TRANSFORM header.
pub const AAD_OFFSET: usize = 20;

type Aes128Ccm = Ccm<Aes128, U16, U11>;
type Aes256Ccm = Ccm<Aes256, U16, U11>;

/// A parsed SMB2 TRANSFORM header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransformHeader {
    /// The AEAD tag.
    pub signature: [u8; 16],
    /// The nonce field (only the first 11 or 12 bytes are used).
    pub nonce: [u8; 16],
    /// Size of the encrypted SMB2 message.
    pub original_message_size: u32,
    /// Flags / EncryptionAlgorithm.
    pub flags: u16,
    /// The session whose keys encrypt the message.
    pub session_id: u64,
}

impl TransformHeader {
    /// Parse the first 52 bytes of `buf`.
    pub fn parse(buf: &[u8]) -> Result<TransformHeader, CryptoError> {
        let what = "SMB2 TRANSFORM header";
        let h = buf.get(..TRANSFORM_HEADER_LEN).ok_or_else(|| {
            CryptoError::malformed(what, format!("{} bytes is shorter than 52", buf.len()))
        })?;
        if h[..4] != TRANSFORM_PROTOCOL_ID {
            return Err(CryptoError::malformed(what, "ProtocolId is not 0xFD 'SMB'"));
        }
        let mut signature = [0u8; 16];
        signature.copy_from_slice(&h[4..20]);
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&h[20..36]);
        Ok(TransformHeader {
            signature,
            nonce,
            original_message_size: u32::from_le_bytes([h[36], h[37], h[38], h[39]]),
            flags: u16::from_le_bytes([h[42], h[43]]),
            session_id: u64::from_le_bytes([
                h[44], h[45], h[46], h[47], h[48], h[49], h[50], h[51],
            ]),
        })
    }

    /// The 52 bytes on the wire.
    pub fn encode(&self) -> [u8; TRANSFORM_HEADER_LEN] {
        let mut h = [0u8; TRANSFORM_HEADER_LEN];
        h[..4].copy_from_slice(&TRANSFORM_PROTOCOL_ID);
        h[4..20].copy_from_slice(&self.signature);
        h[20..36].copy_from_slice(&self.nonce);
        h[36..40].copy_from_slice(&self.original_message_size.to_le_bytes());
        // 40..42 Reserved
        h[42..44].copy_from_slice(&self.flags.to_le_bytes());
        h[44..52].copy_from_slice(&self.session_id.to_le_bytes());
        h
    }
}

enum Aead {
    Ccm128(Box<Aes128Ccm>),
    Ccm256(Box<Aes256Ccm>),
    /// AES-128-GCM or AES-256-GCM through ring (aggregated GHASH: RustCrypto's per-block
    /// reduction cost as much as the rest of a 1 MiB READ).
    Gcm(Box<ring::aead::LessSafeKey>),
}

impl Aead {
    fn new(cipher: Cipher, key: &[u8]) -> Result<Aead, CryptoError> {
        if key.len() != cipher.key_len() {
            return Err(CryptoError::KeyLength {
                what: "encryption",
                expected: cipher.key_len(),
                got: key.len(),
            });
        }
        let bad = |_| CryptoError::KeyLength {
            what: "encryption",
            expected: cipher.key_len(),
            got: key.len(),
        };
        Ok(match cipher {
            Cipher::Aes128Ccm => {
                Aead::Ccm128(Box::new(Aes128Ccm::new_from_slice(key).map_err(bad)?))
            }
            Cipher::Aes256Ccm => {
                Aead::Ccm256(Box::new(Aes256Ccm::new_from_slice(key).map_err(bad)?))
            }
            Cipher::Aes128Gcm | Cipher::Aes256Gcm => {
                let alg = if cipher == Cipher::Aes128Gcm {
                    &ring::aead::AES_128_GCM
                } else {
                    &ring::aead::AES_256_GCM
                };
                let k =
                    ring::aead::UnboundKey::new(alg, key).map_err(|_| CryptoError::KeyLength {
                        what: "encryption",
                        expected: cipher.key_len(),
                        got: key.len(),
                    })?;
                Aead::Gcm(Box::new(ring::aead::LessSafeKey::new(k)))
            }
        })
    }

    /// Encrypt `buf` in place; `nonce` is the 16-byte field (the cipher uses its prefix).
    fn seal(&self, nonce: &[u8; 16], aad: &[u8], buf: &mut [u8]) -> Result<[u8; 16], CryptoError> {
        let fail = |_| CryptoError::malformed("message to encrypt", "too long for the cipher");
        let tag = match self {
            Aead::Ccm128(c) => c
                .encrypt_in_place_detached(nonce[..11].into(), aad, buf)
                .map_err(fail)?,
            Aead::Ccm256(c) => c
                .encrypt_in_place_detached(nonce[..11].into(), aad, buf)
                .map_err(fail)?,
            Aead::Gcm(k) => {
                let tag = k
                    .seal_in_place_separate_tag(ring_nonce(nonce), ring::aead::Aad::from(aad), buf)
                    .map_err(|_| {
                        CryptoError::malformed("message to encrypt", "too long for the cipher")
                    })?;
                return <[u8; 16]>::try_from(tag.as_ref())
                    .map_err(|_| CryptoError::malformed("AES-GCM tag", "not 16 bytes"));
            }
        };
        let mut out = [0u8; 16];
        out.copy_from_slice(&tag);
        Ok(out)
    }

    fn open(&self, nonce: &[u8; 16], aad: &[u8], buf: &mut [u8], tag: &[u8; 16]) -> bool {
        match self {
            Aead::Ccm128(c) => {
                c.decrypt_in_place_detached(nonce[..11].into(), aad, buf, tag.into())
            }
            Aead::Ccm256(c) => {
                c.decrypt_in_place_detached(nonce[..11].into(), aad, buf, tag.into())
            }
            Aead::Gcm(k) => {
                return k
                    .open_in_place_separate_tag(
                        ring_nonce(nonce),
                        ring::aead::Aad::from(aad),
                        ring::aead::Tag::from(*tag),
                        buf,
                        0..,
                    )
                    .is_ok();
            }
        }
        .is_ok()
    }
}

/// The 12-byte GCM nonce: the prefix of the 16-byte Nonce field.
fn ring_nonce(nonce: &[u8; 16]) -> ring::aead::Nonce {
    let mut n = [0u8; 12];
    n.copy_from_slice(&nonce[..12]);
    ring::aead::Nonce::assume_unique_for_key(n)
}

/// Encrypts messages sent with one key (Session.EncryptionKey). Shareable across tasks: the
/// nonce counter is atomic.
pub struct Encryptor {
    cipher: Cipher,
    aead: Aead,
    /// Random per-key bytes after the 8-byte counter (3 for CCM, 4 for GCM).
    salt: [u8; 4],
    counter: AtomicU64,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encryptor")
            .field("cipher", &self.cipher)
            .field("sent", &self.counter.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Encryptor {
    /// An encryptor for `cipher` with `key` (16 bytes for AES-128, 32 for AES-256).
    pub fn new(cipher: Cipher, key: &[u8]) -> Result<Encryptor, CryptoError> {
        let mut salt = [0u8; 4];
        getrandom::fill(&mut salt).map_err(|e| CryptoError::Random(e.to_string()))?;
        Ok(Encryptor {
            cipher,
            aead: Aead::new(cipher, key)?,
            salt,
            counter: AtomicU64::new(0),
        })
    }

    /// The cipher in use.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// The next unique nonce: an 8-byte little-endian counter, then the per-key salt up to the
    /// cipher's nonce length, then zeros.
    pub fn next_nonce(&self) -> Result<[u8; 16], CryptoError> {
        let n = self
            .counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_add(1))
            .map_err(|_| CryptoError::NonceExhausted)?;
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&n.to_le_bytes());
        let extra = self.cipher.nonce_len() - 8;
        nonce[8..8 + extra].copy_from_slice(&self.salt[..extra]);
        Ok(nonce)
    }

    /// Encrypt the message `parts…` (an SMB2 message or compound chain, possibly split into
    /// header and payload) for `session_id`: returns TRANSFORM header ‖ ciphertext.
    pub fn encrypt(&self, session_id: u64, parts: &[&[u8]]) -> Result<Vec<u8>, CryptoError> {
        let nonce = self.next_nonce()?;
        self.encrypt_with_nonce(&nonce, session_id, parts)
    }

    /// [`encrypt`](Self::encrypt) with a caller-chosen nonce field. Reusing a nonce with the
    /// same key breaks the cipher: only for reproducing test vectors.
    pub fn encrypt_with_nonce(
        &self,
        nonce: &[u8; 16],
        session_id: u64,
        parts: &[&[u8]],
    ) -> Result<Vec<u8>, CryptoError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let size = u32::try_from(len).map_err(|_| {
            CryptoError::malformed("message to encrypt", format!("{len} bytes exceeds 4 GiB"))
        })?;
        let header = TransformHeader {
            signature: [0; 16],
            nonce: *nonce,
            original_message_size: size,
            flags: TRANSFORM_FLAG_ENCRYPTED,
            session_id,
        };
        let mut out = Vec::with_capacity(TRANSFORM_HEADER_LEN + len);
        out.extend_from_slice(&header.encode());
        for p in parts {
            out.extend_from_slice(p);
        }
        let (head, body) = out.split_at_mut(TRANSFORM_HEADER_LEN);
        let tag = self.aead.seal(nonce, &head[AAD_OFFSET..], body)?;
        head[4..20].copy_from_slice(&tag);
        Ok(out)
    }
}

/// Decrypts messages received with one key (Session.DecryptionKey).
pub struct Decryptor {
    cipher: Cipher,
    aead: Aead,
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decryptor")
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

impl Decryptor {
    /// A decryptor for `cipher` with `key`.
    pub fn new(cipher: Cipher, key: &[u8]) -> Result<Decryptor, CryptoError> {
        Ok(Decryptor {
            cipher,
            aead: Aead::new(cipher, key)?,
        })
    }

    /// The cipher in use.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// Decrypt a TRANSFORM message in place; returns its header and the plaintext SMB2
    /// message (a sub-slice of `msg`). A wrong key or any flipped bit fails with
    /// [`CryptoError::DecryptFailed`].
    pub fn decrypt_in_place<'a>(
        &self,
        msg: &'a mut [u8],
    ) -> Result<(TransformHeader, &'a mut [u8]), CryptoError> {
        let h = TransformHeader::parse(msg)?;
        if h.flags != TRANSFORM_FLAG_ENCRYPTED {
            return Err(CryptoError::malformed(
                "SMB2 TRANSFORM header",
                format!(
                    "Flags/EncryptionAlgorithm {:#06x}, expected 0x0001",
                    h.flags
                ),
            ));
        }
        let body_len = msg.len() - TRANSFORM_HEADER_LEN;
        if h.original_message_size as usize != body_len {
            return Err(CryptoError::malformed(
                "SMB2 TRANSFORM header",
                format!(
                    "OriginalMessageSize {} but {} bytes follow the header",
                    h.original_message_size, body_len
                ),
            ));
        }
        let (head, body) = msg.split_at_mut(TRANSFORM_HEADER_LEN);
        if !self
            .aead
            .open(&h.nonce, &head[AAD_OFFSET..], body, &h.signature)
        {
            return Err(CryptoError::DecryptFailed {
                session_id: h.session_id,
            });
        }
        Ok((h, body))
    }

    /// Decrypt a TRANSFORM message into a new buffer.
    pub fn decrypt(&self, msg: &[u8]) -> Result<(TransformHeader, Vec<u8>), CryptoError> {
        let mut copy = msg.to_vec();
        let (h, plain) = self.decrypt_in_place(&mut copy)?;
        Ok((h, plain.to_vec()))
    }
}
