//! Authentication for SMB session setup: NTLMv2 ([MS-NLMP]) carried in SPNEGO ([MS-SPNG],
//! RFC 4178). Sans-I/O: the engine feeds server security buffers in and sends what comes out.
//!
//! The usual flow for one SESSION_SETUP exchange:
//! 1. `SpnegoClient::new(NtlmClient::new(user, domain, password, workstation))`
//! 2. `initial_token(negotiate_response_security_buffer)` → first SESSION_SETUP request buffer
//! 3. `step(first_response_buffer)` (STATUS_MORE_PROCESSING_REQUIRED) → second request buffer
//! 4. `finish(final_response_buffer)` (STATUS_SUCCESS) → checks the server's mechListMIC
//! 5. `session_key()` → the key SMB derives its signing and encryption keys from.

#![warn(missing_docs)]

pub mod der;
pub mod ntlm;
pub mod spnego;

use rdr_core::{NtStatus, RxError};

/// What went wrong while authenticating; each variant names the token or field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// A token from the server could not be parsed.
    #[error("malformed {what} from the server: {problem}")]
    Malformed {
        /// Which token or field (e.g. "NTLM CHALLENGE_MESSAGE", "SPNEGO NegTokenResp").
        what: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The server does not offer NTLMSSP in its SPNEGO mechanism list.
    #[error("the server does not offer NTLMSSP (offered: {offered})")]
    NtlmNotOffered {
        /// The OIDs the server offered, dotted.
        offered: String,
    },
    /// The server does not support a feature rdr needs (e.g. Unicode NTLM strings).
    #[error("the server does not support {0}")]
    Unsupported(&'static str),
    /// The server rejected the authentication (SPNEGO negState reject).
    #[error("the server rejected the authentication")]
    Rejected,
    /// The server's SPNEGO mechListMIC did not verify: the negotiation may have been tampered.
    #[error("the server's SPNEGO mechListMIC does not verify")]
    MechListMicMismatch,
    /// A method was called out of order (e.g. `authenticate` before `negotiate`).
    #[error("authentication step out of order: {0}")]
    OutOfOrder(&'static str),
    /// The system random number generator failed.
    #[error("the random number generator failed: {0}")]
    Random(String),
}

impl AuthError {
    pub(crate) fn malformed(what: &'static str, problem: impl Into<String>) -> Self {
        AuthError::Malformed {
            what,
            problem: problem.into(),
        }
    }

    /// The NTSTATUS this error stands for.
    pub fn nt_status(&self) -> NtStatus {
        match self {
            AuthError::Malformed { .. } => NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
            AuthError::NtlmNotOffered { .. } | AuthError::Unsupported(_) => {
                NtStatus::STATUS_NOT_SUPPORTED
            }
            AuthError::Rejected => NtStatus::STATUS_LOGON_FAILURE,
            AuthError::MechListMicMismatch => NtStatus::STATUS_ACCESS_DENIED,
            AuthError::OutOfOrder(_) => NtStatus::STATUS_INVALID_DEVICE_STATE,
            AuthError::Random(_) => NtStatus::STATUS_UNSUCCESSFUL,
        }
    }
}

impl From<AuthError> for RxError {
    fn from(e: AuthError) -> Self {
        RxError::status(e.nt_status(), format!("SMB session setup: {e}"))
    }
}

/// Fill `buf` with bytes from the operating system's random number generator.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<(), AuthError> {
    getrandom::fill(buf).map_err(|e| AuthError::Random(e.to_string()))
}
