//! SMB 3.1.1 preauth integrity ([MS-SMB2] 3.2.5.2, 3.2.5.3.1): a SHA-512 hash chained over the
//! NEGOTIATE request and response (Connection.PreauthIntegrityHashValue) and, per session, over
//! every SESSION_SETUP request and every SESSION_SETUP response except the final success one.
//! The session's value after the last request is the KDF context of its 3.1.1 keys.

use sha2::{Digest, Sha512};

/// A running preauth integrity hash; starts as 64 zero bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreauthHash {
    value: [u8; 64],
}

impl Default for PreauthHash {
    fn default() -> Self {
        Self::new()
    }
}

impl PreauthHash {
    /// The initial value: 64 zero bytes.
    pub fn new() -> Self {
        PreauthHash { value: [0; 64] }
    }

    /// value = SHA-512(value ‖ message), where the message is `parts` concatenated (the whole
    /// SMB2 message as sent or received, without the 4-byte transport header).
    pub fn update(&mut self, parts: &[&[u8]]) {
        let mut h = Sha512::new();
        h.update(self.value);
        for p in parts {
            h.update(p);
        }
        self.value.copy_from_slice(&h.finalize());
    }

    /// The current value.
    pub fn value(&self) -> &[u8; 64] {
        &self.value
    }
}
