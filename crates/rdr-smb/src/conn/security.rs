//! The hooks through which the session layer's crypto (signing and encryption keys derived
//! per session) plugs into the connection engine. The engine never sees a key.

use bytes::Bytes;
use rdr_core::RxResult;

/// Signing and encryption for one session.
pub trait SessionSecurity: Send + Sync + 'static {
    /// The session these keys belong to.
    fn session_id(&self) -> u64;

    /// The 16-byte signature of one SMB2 message given as consecutive parts (a WRITE's header
    /// and payload are separate). The Signature field in the parts is zero and the SIGNED flag
    /// is set. HMAC-SHA256, AES-CMAC or AES-GMAC as negotiated.
    fn sign(&self, parts: &[&[u8]]) -> RxResult<[u8; 16]>;

    /// Encrypts `plaintext` (one message or a compound) into a whole transform message:
    /// the 52-byte TRANSFORM header (nonce, session id, tag) followed by the ciphertext.
    fn encrypt(&self, plaintext: &[u8]) -> RxResult<Vec<u8>>;

    /// Decrypts a whole received transform message (header included) into the plain SMB2
    /// message(s) it carries, checking the tag.
    fn decrypt(&self, transform: &Bytes) -> RxResult<Bytes>;

    /// True when every response for this session must be signed (or encrypted).
    fn signing_required(&self) -> bool {
        false
    }
}
