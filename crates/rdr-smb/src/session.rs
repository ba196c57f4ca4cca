//! Sessions: SESSION_SETUP with NTLMv2 in SPNEGO, key derivation (preauth integrity on 3.1.1),
//! signing and encryption for the session's requests, LOGOFF that keeps the connection.
//! Several sessions (users) share one [`SmbClient`] connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use rdr_core::{NtStatus, RxError, RxResult};

use crate::auth::ntlm::NtlmClient;
use crate::auth::spnego::SpnegoClient;
use crate::client::{SmbClient, check};
use crate::conn::{SendOptions, SessionSecurity};
use crate::crypto::encryption::{Decryptor, Encryptor};
use crate::crypto::kdf::{KeyParams, SessionKeys};
use crate::crypto::signing::Signer;
use crate::proto::{
    Command, Dialect, Header, HeaderFlags, LogoffRequest, SecurityMode, SessionFlags,
    SessionSetupRequest, SessionSetupResponse,
};

/// The keys of one session, plugged into the connection engine.
pub struct SmbSecurity {
    session_id: u64,
    signer: Signer,
    encryptor: Option<Encryptor>,
    decryptor: Option<Decryptor>,
    signing_required: bool,
}

impl SessionSecurity for SmbSecurity {
    fn session_id(&self) -> u64 {
        self.session_id
    }

    fn sign(&self, parts: &[&[u8]]) -> RxResult<[u8; 16]> {
        let (first, rest) = parts.split_first().ok_or_else(|| {
            RxError::status(NtStatus::STATUS_INVALID_PARAMETER, "sign: empty message")
        })?;
        Ok(self.signer.signature(first, rest)?)
    }

    fn encrypt(&self, plaintext: &[u8]) -> RxResult<Vec<u8>> {
        let enc = self.encryptor.as_ref().ok_or_else(|| {
            RxError::status(
                NtStatus::STATUS_ACCESS_DENIED,
                "encryption needed but no cipher was negotiated",
            )
        })?;
        Ok(enc.encrypt(self.session_id, &[plaintext])?)
    }

    fn decrypt(&self, transform: &Bytes) -> RxResult<Bytes> {
        let dec = self.decryptor.as_ref().ok_or_else(|| {
            RxError::status(
                NtStatus::STATUS_ACCESS_DENIED,
                "encrypted response but no cipher was negotiated",
            )
        })?;
        let (_, plain) = dec.decrypt(transform)?;
        Ok(Bytes::from(plain))
    }

    fn signing_required(&self) -> bool {
        self.signing_required
    }
}

/// Who authenticates.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// User name ("" for anonymous).
    pub user: String,
    /// Domain ("" for the server's own).
    pub domain: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// An authenticated session on a connection.
pub struct Session {
    pub(crate) client: Arc<SmbClient>,
    pub(crate) id: u64,
    pub(crate) security: Arc<SmbSecurity>,
    pub(crate) sign: bool,
    pub(crate) encrypt: bool,
    pub(crate) user: String,
    /// Guest or null session (no keys to sign with).
    anonymous: bool,
    logged_off: AtomicBool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &format_args!("{:#x}", self.id))
            .field("user", &self.user)
            .field("sign", &self.sign)
            .field("encrypt", &self.encrypt)
            .finish()
    }
}

impl Session {
    /// Authenticates `who` on `client`'s connection (SESSION_SETUP until success).
    pub async fn setup(client: &Arc<SmbClient>, who: &Identity) -> RxResult<Arc<Session>> {
        Self::setup_replacing(client, who, 0).await
    }

    /// `setup` after a reconnect: `previous` names the identity's session on the connection
    /// that died (PreviousSessionId, [MS-SMB2] 3.2.4.2.3), so the server ends it at once
    /// and its durable opens can be reclaimed without waiting for the server to notice the
    /// old connection is gone.
    pub async fn setup_replacing(
        client: &Arc<SmbClient>,
        who: &Identity,
        previous: u64,
    ) -> RxResult<Arc<Session>> {
        let server = client.server.clone();
        let what = || format!("\\\\{server}: session setup for user {:?}", who.user);
        let neg = &client.neg;
        let mut sp = SpnegoClient::new(NtlmClient::new(
            &who.user,
            &who.domain,
            &who.password,
            &client.config.workstation,
        ));
        let mut token = sp
            .initial_token(&neg.security_buffer)
            .map_err(|e| RxError::status(e.nt_status(), format!("{}: {e}", what())))?;
        let mut preauth = neg.preauth;
        let mut session_id = 0u64;
        let mut security_mode = SecurityMode::SIGNING_ENABLED;
        if client.config.require_signing {
            security_mode |= SecurityMode::SIGNING_REQUIRED;
        }
        let mut rounds = 0;
        let (final_rsp, body) = loop {
            rounds += 1;
            if rounds > 8 {
                return Err(RxError::status(
                    NtStatus::STATUS_INVALID_NETWORK_RESPONSE,
                    format!("{}: too many rounds", what()),
                ));
            }
            let req = SessionSetupRequest {
                flags: 0,
                security_mode,
                capabilities: Default::default(),
                channel: 0,
                previous_session_id: previous,
                security_buffer: Bytes::from(token.clone()),
            };
            let mut h = Header::request(Command::SESSION_SETUP);
            h.session_id = session_id;
            h.credits = 64;
            let pending = client
                .conn
                .submit(&h, &req, &SendOptions::default())
                .await
                .map_err(|e| crate::client::name_error(e, &what()))?;
            if let Some(p) = preauth.as_mut() {
                p.update(&[pending.request_bytes()]);
            }
            let rsp = pending
                .wait()
                .await
                .map_err(|e| crate::client::name_error(e, &what()))?;
            session_id = rsp.header.session_id;
            check(&rsp, what)?;
            let body: SessionSetupResponse = rsp.body()?;
            if rsp.header.status == NtStatus::STATUS_MORE_PROCESSING_REQUIRED {
                if let Some(p) = preauth.as_mut() {
                    p.update(&[&rsp.bytes]);
                }
                token = sp
                    .step(&body.security_buffer)
                    .map_err(|e| RxError::status(e.nt_status(), format!("{}: {e}", what())))?
                    .token;
                continue;
            }
            break (rsp, body);
        };
        let anonymous = body
            .session_flags
            .intersects(SessionFlags::IS_GUEST | SessionFlags::IS_NULL);
        if !anonymous {
            sp.finish(&body.security_buffer)
                .map_err(|e| RxError::status(e.nt_status(), format!("{}: {e}", what())))?;
        }
        let key = sp.session_key().unwrap_or([0u8; 16]);
        let keys = SessionKeys::derive(&KeyParams {
            dialect: neg.crypto_dialect,
            full_session_key: &key,
            cipher: neg.cipher,
            signing: neg.signing,
            preauth_hash: preauth.as_ref().map(|p| p.value()),
        })?;
        let signed = final_rsp.header.flags.contains(HeaderFlags::SIGNED);
        if signed && !anonymous {
            keys.signer.verify(&final_rsp.bytes, &[]).map_err(|e| {
                RxError::status(e.nt_status(), format!("{}: final response: {e}", what()))
            })?;
        } else if neg.dialect == Dialect::SMB3_1_1 && !anonymous {
            return Err(RxError::status(
                NtStatus::STATUS_ACCESS_DENIED,
                format!("{}: the final 3.1.1 response is not signed", what()),
            ));
        }
        let encrypt = body.session_flags.contains(SessionFlags::ENCRYPT_DATA);
        let sign = !anonymous && neg.signing_required;
        let security = Arc::new(SmbSecurity {
            session_id,
            signer: keys.signer,
            encryptor: keys.encryptor,
            decryptor: keys.decryptor,
            signing_required: sign,
        });
        client.conn.register_session(security.clone());
        Ok(Arc::new(Session {
            client: client.clone(),
            id: session_id,
            security,
            sign,
            encrypt,
            user: who.user.clone(),
            anonymous,
            logged_off: AtomicBool::new(false),
        }))
    }

    /// The SessionId.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The connection this session rides on.
    pub fn client(&self) -> &Arc<SmbClient> {
        &self.client
    }

    /// True for a guest or null session.
    pub fn is_anonymous(&self) -> bool {
        self.anonymous
    }

    /// True when the server asked to encrypt everything on this session.
    pub fn encrypts(&self) -> bool {
        self.encrypt
    }

    /// A request header on this session.
    pub(crate) fn header(&self, command: Command, tree_id: u32) -> Header {
        let mut h = Header::request(command);
        h.session_id = self.id;
        h.tree_id = tree_id;
        h.credits = 64;
        h
    }

    /// How to protect a request (`encrypt_tree`: the share demands encryption).
    pub(crate) fn send_options(&self, encrypt_tree: bool) -> SendOptions {
        let encrypt = (self.encrypt || encrypt_tree) && self.security.encryptor.is_some();
        SendOptions {
            security: Some(self.security.clone()),
            sign: self.sign && !encrypt,
            encrypt,
        }
    }

    /// Logs the session off; the connection and other sessions stay.
    pub async fn logoff(&self) -> RxResult<()> {
        if self.logged_off.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let h = self.header(Command::LOGOFF, 0);
        let r = self
            .client
            .conn
            .send(&h, &LogoffRequest, &self.send_options(false))
            .await;
        self.client.conn.unregister_session(self.id);
        let rsp = r?;
        check(&rsp, || {
            format!("\\\\{}: LOGOFF of user {:?}", self.client.server, self.user)
        })
    }

    /// True after [`logoff`](Self::logoff).
    pub fn is_logged_off(&self) -> bool {
        self.logged_off.load(Ordering::SeqCst)
    }
}
