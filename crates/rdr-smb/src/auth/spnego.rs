//! SPNEGO ([MS-SPNG], RFC 4178) around NTLM: parse the server's NegTokenInit(2) from the
//! NEGOTIATE response, send NegTokenInit with the NTLM NEGOTIATE_MESSAGE, answer the server's
//! NegTokenResp (carrying the CHALLENGE) with a NegTokenResp carrying AUTHENTICATE and, when the
//! NTLM MIC is used, a mechListMIC; finally check the server's own mechListMIC.

use super::AuthError;
use super::der::{self, Reader, context, encode};
use super::ntlm::{Mode, NtlmAuthenticate, NtlmClient, NtlmNonces, NtlmSecurity};

/// Content bytes of the SPNEGO OID 1.3.6.1.5.5.2.
pub const OID_SPNEGO: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// Content bytes of the NTLMSSP OID 1.3.6.1.4.1.311.2.2.10.
pub const OID_NTLMSSP: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];

/// SPNEGO negState values (RFC 4178 4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NegState {
    /// accept-completed (0).
    AcceptCompleted,
    /// accept-incomplete (1).
    AcceptIncomplete,
    /// reject (2).
    Reject,
    /// request-mic (3).
    RequestMic,
}

impl NegState {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(NegState::AcceptCompleted),
            1 => Some(NegState::AcceptIncomplete),
            2 => Some(NegState::Reject),
            3 => Some(NegState::RequestMic),
            _ => None,
        }
    }
}

/// A parsed NegTokenInit (or MS-SPNG NegTokenInit2) from the server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegTokenInit {
    /// The mechanism OIDs offered, as OID content bytes, in the server's order.
    pub mech_types: Vec<Vec<u8>>,
    /// An optimistic mechanism token, if any.
    pub mech_token: Option<Vec<u8>>,
}

impl NegTokenInit {
    /// True when NTLMSSP is among the offered mechanisms.
    pub fn offers_ntlm(&self) -> bool {
        self.mech_types.iter().any(|m| m == OID_NTLMSSP)
    }
}

/// A parsed NegTokenResp.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegTokenResp {
    /// negState, when present.
    pub neg_state: Option<NegState>,
    /// supportedMech (OID content bytes), when present.
    pub supported_mech: Option<Vec<u8>>,
    /// responseToken (the inner mechanism token), when present.
    pub response_token: Option<Vec<u8>>,
    /// mechListMIC, when present.
    pub mech_list_mic: Option<Vec<u8>>,
}

fn parse_mech_types(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, AuthError> {
    let mut seq = r.nested(der::TAG_SEQUENCE)?;
    let mut out = Vec::new();
    while !seq.is_empty() {
        out.push(seq.read(der::TAG_OID)?.to_vec());
    }
    Ok(out)
}

/// Parse the server's NegTokenInit, wrapped in the GSS-API initial context token (as SMB2
/// NEGOTIATE responses carry it) or bare (`[0]`).
pub fn parse_neg_token_init(buf: &[u8]) -> Result<NegTokenInit, AuthError> {
    let what = "SPNEGO NegTokenInit";
    let mut outer = Reader::new(buf, what);
    let mut body = if outer.peek_tag() == Some(der::TAG_APPLICATION_0) {
        let mut app = outer.nested(der::TAG_APPLICATION_0)?;
        let oid = app.read(der::TAG_OID)?;
        if oid != OID_SPNEGO {
            return Err(AuthError::malformed(
                what,
                format!("mechanism {} is not SPNEGO", der::oid_to_string(oid)),
            ));
        }
        app.nested(context(0))?
    } else {
        outer.nested(context(0))?
    };
    let mut init = body.nested(der::TAG_SEQUENCE)?;
    let mut token = NegTokenInit::default();
    while !init.is_empty() {
        let (tag, content) = init.read_any()?;
        match tag {
            t if t == context(0) => {
                token.mech_types = parse_mech_types(&mut Reader::new(content, what))?;
            }
            t if t == context(2) => {
                token.mech_token = Some(
                    Reader::new(content, what)
                        .read(der::TAG_OCTET_STRING)?
                        .to_vec(),
                );
            }
            // [1] reqFlags, [3] negHints (NegTokenInit2) or mechListMIC, [4] mechListMIC:
            // nothing rdr needs from the server's first token.
            _ => {}
        }
    }
    Ok(token)
}

/// Parse a NegTokenResp (`[1]`).
pub fn parse_neg_token_resp(buf: &[u8]) -> Result<NegTokenResp, AuthError> {
    let what = "SPNEGO NegTokenResp";
    let mut outer = Reader::new(buf, what);
    let mut body = outer.nested(context(1))?;
    let mut seq = body.nested(der::TAG_SEQUENCE)?;
    let mut resp = NegTokenResp::default();
    while !seq.is_empty() {
        let (tag, content) = seq.read_any()?;
        let mut inner = Reader::new(content, what);
        match tag {
            t if t == context(0) => {
                let v = inner.read(der::TAG_ENUMERATED)?;
                let state = match v {
                    [b] => NegState::from_u8(*b),
                    _ => None,
                };
                resp.neg_state = Some(state.ok_or_else(|| {
                    AuthError::malformed(what, format!("negState {v:02x?} is not 0..3"))
                })?);
            }
            t if t == context(1) => resp.supported_mech = Some(inner.read(der::TAG_OID)?.to_vec()),
            t if t == context(2) => {
                resp.response_token = Some(inner.read(der::TAG_OCTET_STRING)?.to_vec())
            }
            t if t == context(3) => {
                resp.mech_list_mic = Some(inner.read(der::TAG_OCTET_STRING)?.to_vec())
            }
            _ => {}
        }
    }
    Ok(resp)
}

/// DER of a MechTypeList (SEQUENCE OF OID): what the mechListMIC is computed over.
pub fn encode_mech_types(mechs: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = mechs.iter().flat_map(|m| encode(der::TAG_OID, m)).collect();
    encode(der::TAG_SEQUENCE, &body)
}

/// The initial context token: `[APPLICATION 0] { SPNEGO OID, [0] NegTokenInit { [0] mechTypes,
/// [2] mechToken } }`.
pub fn encode_neg_token_init(mech_types_der: &[u8], mech_token: &[u8]) -> Vec<u8> {
    let mut seq = encode(context(0), mech_types_der);
    seq.extend(encode(
        context(2),
        &encode(der::TAG_OCTET_STRING, mech_token),
    ));
    let init = encode(context(0), &encode(der::TAG_SEQUENCE, &seq));
    let mut app = encode(der::TAG_OID, OID_SPNEGO);
    app.extend(init);
    encode(der::TAG_APPLICATION_0, &app)
}

/// `[1] NegTokenResp { [2] responseToken, [3] mechListMIC }` (the fields given).
pub fn encode_neg_token_resp(
    response_token: Option<&[u8]>,
    mech_list_mic: Option<&[u8]>,
) -> Vec<u8> {
    let mut seq = Vec::new();
    if let Some(t) = response_token {
        seq.extend(encode(context(2), &encode(der::TAG_OCTET_STRING, t)));
    }
    if let Some(m) = mech_list_mic {
        seq.extend(encode(context(3), &encode(der::TAG_OCTET_STRING, m)));
    }
    encode(context(1), &encode(der::TAG_SEQUENCE, &seq))
}

/// When to send a mechListMIC with the AUTHENTICATE token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MechListMicPolicy {
    /// When the NTLM MIC is used (what Windows does; Samba then requires it), or when the
    /// server's negState is request-mic.
    #[default]
    WhenNtlmMic,
    /// Always.
    Always,
    /// Never (some older servers accept only this).
    Never,
}

/// What [`SpnegoClient::step`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpnegoStep {
    /// The security buffer for the next SESSION_SETUP request.
    pub token: Vec<u8>,
    /// The session key (ExportedSessionKey) once known.
    pub session_key: [u8; 16],
}

#[derive(Debug)]
enum State {
    Start,
    SentInit,
    SentAuth { auth: NtlmAuthenticate },
    Done,
}

/// SPNEGO client driving one NTLM authentication (sans-I/O).
#[derive(Debug)]
pub struct SpnegoClient {
    ntlm: NtlmClient,
    policy: MechListMicPolicy,
    mech_types_der: Vec<u8>,
    state: State,
    session_key: Option<[u8; 16]>,
}

impl SpnegoClient {
    /// Wrap an NTLM client.
    pub fn new(ntlm: NtlmClient) -> Self {
        SpnegoClient {
            ntlm,
            policy: MechListMicPolicy::default(),
            mech_types_der: encode_mech_types(&[OID_NTLMSSP]),
            state: State::Start,
            session_key: None,
        }
    }

    /// Choose when to send a mechListMIC.
    pub fn with_mech_list_mic(mut self, policy: MechListMicPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The first SESSION_SETUP security buffer. `server_init` is the NEGOTIATE response's
    /// security buffer; empty means the server did not say and NTLM is tried.
    pub fn initial_token(&mut self, server_init: &[u8]) -> Result<Vec<u8>, AuthError> {
        if !matches!(self.state, State::Start) {
            return Err(AuthError::OutOfOrder("initial_token called twice"));
        }
        if !server_init.is_empty() {
            let init = parse_neg_token_init(server_init)?;
            if !init.mech_types.is_empty() && !init.offers_ntlm() {
                return Err(AuthError::NtlmNotOffered {
                    offered: init
                        .mech_types
                        .iter()
                        .map(|m| der::oid_to_string(m))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        let negotiate = self.ntlm.negotiate();
        self.state = State::SentInit;
        Ok(encode_neg_token_init(&self.mech_types_der, &negotiate))
    }

    /// Answer the server's NegTokenResp carrying the NTLM CHALLENGE (the response with
    /// STATUS_MORE_PROCESSING_REQUIRED).
    pub fn step(&mut self, server_token: &[u8]) -> Result<SpnegoStep, AuthError> {
        let nonces = NtlmNonces::fresh()?;
        self.step_with(server_token, &nonces)
    }

    /// [`step`](Self::step) with given NTLM nonces; only for reproducing test vectors.
    pub fn step_with(
        &mut self,
        server_token: &[u8],
        nonces: &NtlmNonces,
    ) -> Result<SpnegoStep, AuthError> {
        if !matches!(self.state, State::SentInit) {
            return Err(AuthError::OutOfOrder(
                "step before initial_token or after it finished",
            ));
        }
        let resp = parse_neg_token_resp(server_token)?;
        match resp.neg_state {
            Some(NegState::Reject) => return Err(AuthError::Rejected),
            Some(NegState::AcceptCompleted) => {
                return Err(AuthError::malformed(
                    "SPNEGO NegTokenResp",
                    "the server completed before NTLM authenticated",
                ));
            }
            _ => {}
        }
        if let Some(m) = &resp.supported_mech
            && m != OID_NTLMSSP
        {
            return Err(AuthError::NtlmNotOffered {
                offered: der::oid_to_string(m),
            });
        }
        let challenge = resp.response_token.ok_or_else(|| {
            AuthError::malformed("SPNEGO NegTokenResp", "no responseToken (NTLM CHALLENGE)")
        })?;
        let auth = self.ntlm.authenticate_with(&challenge, nonces)?;
        // negState request-mic (RFC 4178 4.2.2) asks for a MIC whatever NTLM did.
        let requested = resp.neg_state == Some(NegState::RequestMic);
        let send_mic = match self.policy {
            MechListMicPolicy::WhenNtlmMic => auth.mic_present || requested,
            MechListMicPolicy::Always => true,
            MechListMicPolicy::Never => false,
        };
        let mic = if send_mic {
            let mut sec = NtlmSecurity::new(&auth.session_key, auth.flags, Mode::Client);
            Some(sec.mac(&self.mech_types_der))
        } else {
            None
        };
        let token = encode_neg_token_resp(Some(&auth.message), mic.as_ref().map(|m| &m[..]));
        let session_key = auth.session_key;
        self.session_key = Some(session_key);
        self.state = State::SentAuth { auth };
        Ok(SpnegoStep { token, session_key })
    }

    /// Check the final SESSION_SETUP response's security buffer (STATUS_SUCCESS): negState must
    /// not be reject, and a mechListMIC, when present, must verify. Empty is accepted.
    pub fn finish(&mut self, server_token: &[u8]) -> Result<(), AuthError> {
        let auth = match &self.state {
            State::SentAuth { auth } => auth,
            _ => return Err(AuthError::OutOfOrder("finish before step")),
        };
        if !server_token.is_empty() {
            let resp = parse_neg_token_resp(server_token)?;
            if resp.neg_state == Some(NegState::Reject) {
                return Err(AuthError::Rejected);
            }
            if let Some(mic) = &resp.mech_list_mic {
                let mut sec = NtlmSecurity::new(&auth.session_key, auth.flags, Mode::Server);
                let expected = sec.mac(&self.mech_types_der);
                if !constant_time_eq(&expected, mic) {
                    return Err(AuthError::MechListMicMismatch);
                }
            }
        }
        self.state = State::Done;
        Ok(())
    }

    /// The session key, once `step` has run.
    pub fn session_key(&self) -> Option<[u8; 16]> {
        self.session_key
    }

    /// True once `finish` has accepted the server's final token.
    pub fn is_complete(&self) -> bool {
        matches!(self.state, State::Done)
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
