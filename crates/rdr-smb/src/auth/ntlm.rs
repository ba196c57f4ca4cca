//! NTLMv2 client ([MS-NLMP]): NEGOTIATE_MESSAGE out, CHALLENGE_MESSAGE in, AUTHENTICATE_MESSAGE
//! out, with key exchange (an RC4-encrypted random session key) and the MIC over all three
//! messages. The exported session key is what SMB uses as its session key.
//!
//! Also here: the NTLM session-security pieces SPNEGO needs for its mechListMIC (SIGNKEY,
//! SEALKEY and MAC with extended session security, [MS-NLMP] 3.4).

use hmac::{Hmac, Mac};
use md4::Md4;
use md5::{Digest, Md5};
use rc4::{KeyInit, Rc4, StreamCipher, consts::U16};

use super::{AuthError, random_bytes};

type HmacMd5 = Hmac<Md5>;

/// NTLMSSP negotiate flags ([MS-NLMP] 2.2.2.5).
pub mod flags {
    /// Strings are UTF-16LE.
    pub const UNICODE: u32 = 0x0000_0001;
    /// Strings are in the OEM code page.
    pub const OEM: u32 = 0x0000_0002;
    /// Ask the server for its target name.
    pub const REQUEST_TARGET: u32 = 0x0000_0004;
    /// Message integrity.
    pub const SIGN: u32 = 0x0000_0010;
    /// Message confidentiality.
    pub const SEAL: u32 = 0x0000_0020;
    /// LAN Manager session key (never used by rdr).
    pub const LM_KEY: u32 = 0x0000_0080;
    /// NTLM v1/v2 authentication.
    pub const NTLM: u32 = 0x0000_0200;
    /// Anonymous logon.
    pub const ANONYMOUS: u32 = 0x0000_0800;
    /// Always sign (dummy signature when not signing).
    pub const ALWAYS_SIGN: u32 = 0x0000_8000;
    /// Target is a domain.
    pub const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
    /// Target is a server.
    pub const TARGET_TYPE_SERVER: u32 = 0x0002_0000;
    /// NTLM2 session security (extended session security).
    pub const EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
    /// The TargetInfo field is present.
    pub const TARGET_INFO: u32 = 0x0080_0000;
    /// The Version field is present.
    pub const VERSION: u32 = 0x0200_0000;
    /// 128-bit session keys.
    pub const NEG_128: u32 = 0x2000_0000;
    /// Key exchange: the client sends an encrypted random session key.
    pub const KEY_EXCH: u32 = 0x4000_0000;
    /// 56-bit encryption.
    pub const NEG_56: u32 = 0x8000_0000;
}

/// AV_PAIR identifiers ([MS-NLMP] 2.2.2.1).
pub mod av {
    /// End of the list.
    pub const EOL: u16 = 0;
    /// Server NetBIOS name.
    pub const NB_COMPUTER_NAME: u16 = 1;
    /// Domain NetBIOS name.
    pub const NB_DOMAIN_NAME: u16 = 2;
    /// Server DNS name.
    pub const DNS_COMPUTER_NAME: u16 = 3;
    /// Domain DNS name.
    pub const DNS_DOMAIN_NAME: u16 = 4;
    /// Forest DNS name.
    pub const DNS_TREE_NAME: u16 = 5;
    /// MsvAvFlags (u32); bit 0x2 means the MIC is present.
    pub const FLAGS: u16 = 6;
    /// MsvAvTimestamp: the server's FILETIME.
    pub const TIMESTAMP: u16 = 7;
    /// Single host data.
    pub const SINGLE_HOST: u16 = 8;
    /// The SPN of the target.
    pub const TARGET_NAME: u16 = 9;
    /// Channel bindings hash.
    pub const CHANNEL_BINDINGS: u16 = 10;
}

/// MsvAvFlags bit: the AUTHENTICATE_MESSAGE carries a MIC.
pub const AV_FLAG_MIC_PRESENT: u32 = 0x0000_0002;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// The flags rdr asks for in NEGOTIATE_MESSAGE.
pub const CLIENT_FLAGS: u32 = flags::UNICODE
    | flags::REQUEST_TARGET
    | flags::SIGN
    | flags::SEAL
    | flags::NTLM
    | flags::ALWAYS_SIGN
    | flags::EXTENDED_SESSIONSECURITY
    | flags::TARGET_INFO
    | flags::VERSION
    | flags::NEG_128
    | flags::KEY_EXCH
    | flags::NEG_56;

/// The VERSION structure rdr sends (Windows 10.0, NTLMSSP_REVISION_W2K3 = 15). Informational.
pub const CLIENT_VERSION: [u8; 8] = [10, 0, 0, 0, 0, 0, 0, 0x0f];

/// UTF-16LE bytes of `s`.
pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC takes keys of any length, so new_from_slice never fails; the fallback is dead code
    // that keeps this function free of panics.
    let mut mac = <HmacMd5 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| <HmacMd5 as Mac>::new(&Default::default()));
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn rc4_apply(key: &[u8; 16], data: &mut [u8]) {
    let mut c = Rc4::<U16>::new(key.into());
    c.apply_keystream(data);
}

/// NTOWFv2 = HMAC_MD5(MD4(UTF16LE(password)), UTF16LE(UPPER(user) + domain)) ([MS-NLMP] 3.3.2).
/// Also LMOWFv2; it is the response key for both NT and LM responses.
pub fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash: [u8; 16] = Md4::digest(utf16le(password)).into();
    let ident = utf16le(&(user.to_uppercase() + domain));
    hmac_md5(&nt_hash, &[&ident])
}

/// The NTLMv2_CLIENT_CHALLENGE ("temp" in [MS-NLMP] 3.3.2) for a timestamp, client challenge and
/// the target info (AV pairs, ending with MsvAvEOL).
pub fn ntlmv2_client_blob(
    timestamp: u64,
    client_challenge: &[u8; 8],
    target_info: &[u8],
) -> Vec<u8> {
    let mut temp = Vec::with_capacity(32 + target_info.len());
    temp.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    temp.extend_from_slice(&timestamp.to_le_bytes());
    temp.extend_from_slice(client_challenge);
    temp.extend_from_slice(&[0; 4]);
    temp.extend_from_slice(target_info);
    temp.extend_from_slice(&[0; 4]);
    temp
}

/// The results of the NTLMv2 computation ([MS-NLMP] 3.3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ntlmv2Response {
    /// NTProofStr: the first 16 bytes of the NT response.
    pub nt_proof_str: [u8; 16],
    /// NtChallengeResponse = NTProofStr + temp.
    pub nt_response: Vec<u8>,
    /// LmChallengeResponse (LMv2), before any zeroing for MsvAvTimestamp.
    pub lm_response: [u8; 24],
    /// SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr); also the KeyExchangeKey for v2.
    pub session_base_key: [u8; 16],
}

/// Compute the NTLMv2 responses and session base key.
pub fn ntlmv2_response(
    response_key: &[u8; 16],
    server_challenge: &[u8; 8],
    client_challenge: &[u8; 8],
    timestamp: u64,
    target_info: &[u8],
) -> Ntlmv2Response {
    let temp = ntlmv2_client_blob(timestamp, client_challenge, target_info);
    let nt_proof_str = hmac_md5(response_key, &[server_challenge, &temp]);
    let mut nt_response = Vec::with_capacity(16 + temp.len());
    nt_response.extend_from_slice(&nt_proof_str);
    nt_response.extend_from_slice(&temp);
    let lm_mac = hmac_md5(response_key, &[server_challenge, client_challenge]);
    let mut lm_response = [0u8; 24];
    lm_response[..16].copy_from_slice(&lm_mac);
    lm_response[16..].copy_from_slice(client_challenge);
    let session_base_key = hmac_md5(response_key, &[&nt_proof_str]);
    Ntlmv2Response {
        nt_proof_str,
        nt_response,
        lm_response,
        session_base_key,
    }
}

/// RC4K(KeyExchangeKey, ExportedSessionKey): the EncryptedRandomSessionKey of KEY_EXCH.
pub fn encrypt_session_key(key_exchange_key: &[u8; 16], exported: &[u8; 16]) -> [u8; 16] {
    let mut out = *exported;
    rc4_apply(key_exchange_key, &mut out);
    out
}

/// The MIC of [MS-NLMP] 3.1.5.1.2: HMAC_MD5(ExportedSessionKey, NEGOTIATE_MESSAGE ‖
/// CHALLENGE_MESSAGE ‖ AUTHENTICATE_MESSAGE), with the AUTHENTICATE_MESSAGE's MIC field (bytes
/// 72..88) taken as zero whatever it holds.
pub fn compute_mic(
    exported: &[u8; 16],
    negotiate: &[u8],
    challenge: &[u8],
    authenticate: &[u8],
) -> [u8; 16] {
    let zero = [0u8; 16];
    let (head, mic_and_rest) = authenticate.split_at(authenticate.len().min(72));
    let rest = mic_and_rest.get(16..).unwrap_or(&[]);
    let mic_field: &[u8] = if mic_and_rest.len() >= 16 {
        &zero
    } else {
        &zero[..mic_and_rest.len()]
    };
    hmac_md5(exported, &[negotiate, challenge, head, mic_field, rest])
}

/// One AV_PAIR of a target info list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvPair {
    /// AvId (see [`av`]).
    pub id: u16,
    /// The value bytes.
    pub value: Vec<u8>,
}

/// Parse an AV_PAIR list up to MsvAvEOL. A list without EOL is accepted when it ends exactly
/// at the end of the buffer (some servers omit it); anything truncated is an error.
pub fn parse_av_pairs(buf: &[u8]) -> Result<Vec<AvPair>, AuthError> {
    let what = "NTLM target info";
    let mut pairs = Vec::new();
    let mut at = 0usize;
    while at < buf.len() {
        let hdr = buf.get(at..at + 4).ok_or_else(|| {
            AuthError::malformed(what, format!("AV_PAIR header truncated at {at}"))
        })?;
        let id = u16::from_le_bytes([hdr[0], hdr[1]]);
        let len = u16::from_le_bytes([hdr[2], hdr[3]]) as usize;
        if id == av::EOL {
            return Ok(pairs);
        }
        let value = buf.get(at + 4..at + 4 + len).ok_or_else(|| {
            AuthError::malformed(
                what,
                format!("AV_PAIR {id} at {at} claims {len} bytes past the end"),
            )
        })?;
        pairs.push(AvPair {
            id,
            value: value.to_vec(),
        });
        at += 4 + len;
    }
    Ok(pairs)
}

/// Encode an AV_PAIR list and its terminating MsvAvEOL.
pub fn encode_av_pairs(pairs: &[AvPair]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in pairs {
        out.extend_from_slice(&p.id.to_le_bytes());
        out.extend_from_slice(&(p.value.len() as u16).to_le_bytes());
        out.extend_from_slice(&p.value);
    }
    out.extend_from_slice(&[0, 0, 0, 0]);
    out
}

/// A parsed CHALLENGE_MESSAGE ([MS-NLMP] 2.2.1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The server's negotiate flags.
    pub flags: u32,
    /// The 8-byte server challenge.
    pub server_challenge: [u8; 8],
    /// TargetName, raw bytes (UTF-16LE when UNICODE is negotiated).
    pub target_name: Vec<u8>,
    /// TargetInfo, raw bytes as sent (an AV_PAIR list).
    pub target_info: Vec<u8>,
    /// TargetInfo, parsed.
    pub av_pairs: Vec<AvPair>,
    /// The Version field, when the server sent one.
    pub version: Option<[u8; 8]>,
}

impl Challenge {
    /// The server's MsvAvTimestamp (FILETIME), when present.
    pub fn timestamp(&self) -> Option<u64> {
        self.av_pairs
            .iter()
            .find(|p| p.id == av::TIMESTAMP)
            .and_then(|p| <[u8; 8]>::try_from(p.value.as_slice()).ok())
            .map(u64::from_le_bytes)
    }

    /// The server's MsvAvFlags, when present.
    pub fn av_flags(&self) -> Option<u32> {
        self.av_pairs
            .iter()
            .find(|p| p.id == av::FLAGS)
            .and_then(|p| <[u8; 4]>::try_from(p.value.as_slice()).ok())
            .map(u32::from_le_bytes)
    }
}

/// Read a (len u16, maxlen u16, offset u32) field descriptor at `at` and return its bytes.
fn field<'a>(
    msg: &'a [u8],
    at: usize,
    what: &'static str,
    name: &str,
) -> Result<&'a [u8], AuthError> {
    let d = msg
        .get(at..at + 8)
        .ok_or_else(|| AuthError::malformed(what, format!("{name} descriptor truncated")))?;
    let len = u16::from_le_bytes([d[0], d[1]]) as usize;
    let off = u32::from_le_bytes([d[4], d[5], d[6], d[7]]) as usize;
    if len == 0 {
        return Ok(&[]);
    }
    msg.get(off..off.saturating_add(len)).ok_or_else(|| {
        AuthError::malformed(
            what,
            format!(
                "{name} ({len} bytes at offset {off}) lies outside the {}-byte message",
                msg.len()
            ),
        )
    })
}

/// Parse a CHALLENGE_MESSAGE.
pub fn parse_challenge(msg: &[u8]) -> Result<Challenge, AuthError> {
    let what = "NTLM CHALLENGE_MESSAGE";
    if msg.len() < 32 {
        return Err(AuthError::malformed(
            what,
            format!("{} bytes is shorter than the 32-byte minimum", msg.len()),
        ));
    }
    if &msg[..8] != SIGNATURE {
        return Err(AuthError::malformed(
            what,
            "signature is not \"NTLMSSP\\0\"",
        ));
    }
    let ty = u32::from_le_bytes([msg[8], msg[9], msg[10], msg[11]]);
    if ty != 2 {
        return Err(AuthError::malformed(
            what,
            format!("message type {ty}, expected 2"),
        ));
    }
    let target_name = field(msg, 12, what, "TargetName")?.to_vec();
    let flags = u32::from_le_bytes([msg[20], msg[21], msg[22], msg[23]]);
    let mut server_challenge = [0u8; 8];
    server_challenge.copy_from_slice(&msg[24..32]);
    let target_info = if msg.len() >= 48 {
        field(msg, 40, what, "TargetInfo")?.to_vec()
    } else {
        Vec::new()
    };
    let av_pairs = parse_av_pairs(&target_info)?;
    let version = if flags & flags::VERSION != 0 {
        msg.get(48..56).and_then(|v| <[u8; 8]>::try_from(v).ok())
    } else {
        None
    };
    Ok(Challenge {
        flags,
        server_challenge,
        target_name,
        target_info,
        av_pairs,
        version,
    })
}

/// The NEGOTIATE_MESSAGE rdr sends: [`CLIENT_FLAGS`], no domain or workstation, and a version.
pub fn negotiate_message(flags: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(SIGNATURE);
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&flags.to_le_bytes());
    m.extend_from_slice(&[0; 8]); // DomainNameFields
    m.extend_from_slice(&[0; 8]); // WorkstationFields
    m.extend_from_slice(&CLIENT_VERSION);
    m
}

/// Inputs that are random or time-dependent in a real exchange; fixed only to reproduce
/// published test vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtlmNonces {
    /// The 8-byte client challenge.
    pub client_challenge: [u8; 8],
    /// The random session key sent under KEY_EXCH (becomes the exported session key).
    pub random_session_key: [u8; 16],
    /// The client's current time as a FILETIME, used when the server sends no MsvAvTimestamp.
    pub now_filetime: u64,
}

impl NtlmNonces {
    /// Fresh random challenge and key, and the current time.
    pub fn fresh() -> Result<Self, AuthError> {
        let mut client_challenge = [0u8; 8];
        let mut random_session_key = [0u8; 16];
        random_bytes(&mut client_challenge)?;
        random_bytes(&mut random_session_key)?;
        Ok(NtlmNonces {
            client_challenge,
            random_session_key,
            now_filetime: filetime_now(),
        })
    }
}

/// The current time as a Windows FILETIME (100 ns since 1601-01-01 UTC).
pub fn filetime_now() -> u64 {
    const EPOCH_DIFF_SECS: u64 = 11_644_473_600;
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() + EPOCH_DIFF_SECS) * 10_000_000 + u64::from(d.subsec_nanos() / 100)
}

/// What [`NtlmClient::authenticate`] produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NtlmAuthenticate {
    /// The AUTHENTICATE_MESSAGE to send.
    pub message: Vec<u8>,
    /// ExportedSessionKey: SMB's Session.SessionKey source (and FullSessionKey; 16 bytes).
    pub session_key: [u8; 16],
    /// The negotiated flags written into the message.
    pub flags: u32,
    /// True when the message carries a MIC (the server sent MsvAvTimestamp).
    pub mic_present: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Initial,
    Negotiated { negotiate: Vec<u8> },
    Done,
}

/// An NTLMv2 client for one authentication: `negotiate()`, then `authenticate(challenge)`.
#[derive(Clone)]
pub struct NtlmClient {
    user: String,
    domain: String,
    password: String,
    workstation: String,
    target_spn: Option<String>,
    state: State,
}

impl std::fmt::Debug for NtlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the password.
        f.debug_struct("NtlmClient")
            .field("user", &self.user)
            .field("domain", &self.domain)
            .field("workstation", &self.workstation)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl NtlmClient {
    /// A client for `domain\user` with `password`, calling itself `workstation`.
    pub fn new(user: &str, domain: &str, password: &str, workstation: &str) -> Self {
        NtlmClient {
            user: user.to_owned(),
            domain: domain.to_owned(),
            password: password.to_owned(),
            workstation: workstation.to_owned(),
            target_spn: None,
            state: State::Initial,
        }
    }

    /// Add an MsvAvTargetName (e.g. "cifs/server") to the target info sent back.
    pub fn with_target_spn(mut self, spn: &str) -> Self {
        self.target_spn = Some(spn.to_owned());
        self
    }

    /// The NEGOTIATE_MESSAGE (first leg).
    pub fn negotiate(&mut self) -> Vec<u8> {
        let m = negotiate_message(CLIENT_FLAGS);
        self.state = State::Negotiated {
            negotiate: m.clone(),
        };
        m
    }

    /// Answer the server's CHALLENGE_MESSAGE with an AUTHENTICATE_MESSAGE (NTLMv2).
    pub fn authenticate(&mut self, challenge: &[u8]) -> Result<NtlmAuthenticate, AuthError> {
        let nonces = NtlmNonces::fresh()?;
        self.authenticate_with(challenge, &nonces)
    }

    /// [`authenticate`](Self::authenticate) with given nonces; only for reproducing test vectors.
    pub fn authenticate_with(
        &mut self,
        challenge: &[u8],
        nonces: &NtlmNonces,
    ) -> Result<NtlmAuthenticate, AuthError> {
        let negotiate = match &self.state {
            State::Negotiated { negotiate } => negotiate.clone(),
            State::Initial => return Err(AuthError::OutOfOrder("authenticate before negotiate")),
            State::Done => return Err(AuthError::OutOfOrder("authenticate called twice")),
        };
        let ch = parse_challenge(challenge)?;
        if ch.flags & flags::UNICODE == 0 {
            return Err(AuthError::Unsupported("Unicode NTLM strings"));
        }
        // Negotiated flags: what we asked for and the server granted (plus UNICODE).
        let mut neg = (CLIENT_FLAGS & ch.flags) | flags::UNICODE;
        neg |= flags::VERSION; // we always send the Version field

        let timestamp = ch.timestamp();
        let mut pairs: Vec<AvPair> = ch.av_pairs.clone();
        let mic_present = timestamp.is_some();
        if mic_present {
            match pairs.iter_mut().find(|p| p.id == av::FLAGS) {
                Some(p) => {
                    let old = <[u8; 4]>::try_from(p.value.as_slice())
                        .map(u32::from_le_bytes)
                        .unwrap_or(0);
                    p.value = (old | AV_FLAG_MIC_PRESENT).to_le_bytes().to_vec();
                }
                None => pairs.push(AvPair {
                    id: av::FLAGS,
                    value: AV_FLAG_MIC_PRESENT.to_le_bytes().to_vec(),
                }),
            }
        }
        if let Some(spn) = &self.target_spn
            && !pairs.iter().any(|p| p.id == av::TARGET_NAME)
        {
            pairs.push(AvPair {
                id: av::TARGET_NAME,
                value: utf16le(spn),
            });
        }
        // The spec example (no MsvAvTimestamp, no additions) echoes the server's bytes
        // verbatim; re-encoding is identical for well-formed lists.
        let target_info = if !mic_present && self.target_spn.is_none() && !ch.target_info.is_empty()
        {
            ch.target_info.clone()
        } else {
            encode_av_pairs(&pairs)
        };

        let key = ntowf_v2(&self.password, &self.user, &self.domain);
        let time = timestamp.unwrap_or(nonces.now_filetime);
        let r = ntlmv2_response(
            &key,
            &ch.server_challenge,
            &nonces.client_challenge,
            time,
            &target_info,
        );
        // [MS-NLMP] 3.1.5.1.2: with MsvAvTimestamp the client sends Z(24) as the LM response.
        let lm: Vec<u8> = if mic_present {
            vec![0; 24]
        } else {
            r.lm_response.to_vec()
        };
        let key_exchange_key = r.session_base_key;
        let (session_key, enc_key): ([u8; 16], Vec<u8>) = if neg & flags::KEY_EXCH != 0 {
            (
                nonces.random_session_key,
                encrypt_session_key(&key_exchange_key, &nonces.random_session_key).to_vec(),
            )
        } else {
            (key_exchange_key, Vec::new())
        };

        let domain = utf16le(&self.domain);
        let user = utf16le(&self.user);
        let ws = utf16le(&self.workstation);
        let mut msg = Vec::with_capacity(
            88 + domain.len() + user.len() + ws.len() + lm.len() + r.nt_response.len() + 16,
        );
        msg.extend_from_slice(SIGNATURE);
        msg.extend_from_slice(&3u32.to_le_bytes());
        msg.resize(88, 0);
        let mut payload_at = 88usize;
        let mut put = |msg: &mut Vec<u8>, desc_at: usize, data: &[u8]| -> Result<(), AuthError> {
            let len = u16::try_from(data.len())
                .map_err(|_| AuthError::Unsupported("NTLM fields longer than 65535 bytes"))?;
            msg[desc_at..desc_at + 2].copy_from_slice(&len.to_le_bytes());
            msg[desc_at + 2..desc_at + 4].copy_from_slice(&len.to_le_bytes());
            msg[desc_at + 4..desc_at + 8].copy_from_slice(&(payload_at as u32).to_le_bytes());
            msg.extend_from_slice(data);
            payload_at += data.len();
            Ok(())
        };
        put(&mut msg, 28, &domain)?;
        put(&mut msg, 36, &user)?;
        put(&mut msg, 44, &ws)?;
        put(&mut msg, 12, &lm)?;
        put(&mut msg, 20, &r.nt_response)?;
        put(&mut msg, 52, &enc_key)?;
        msg[60..64].copy_from_slice(&neg.to_le_bytes());
        msg[64..72].copy_from_slice(&CLIENT_VERSION);
        if mic_present {
            let mic = compute_mic(&session_key, &negotiate, challenge, &msg);
            msg[72..88].copy_from_slice(&mic);
        }
        self.state = State::Done;
        Ok(NtlmAuthenticate {
            message: msg,
            session_key,
            flags: neg,
            mic_present,
        })
    }
}

/// Which side of the NTLM conversation computes a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The client (initiator).
    Client,
    /// The server (acceptor).
    Server,
}

/// SIGNKEY ([MS-NLMP] 3.4.5.2), for extended session security.
pub fn sign_key(exported: &[u8; 16], mode: Mode) -> [u8; 16] {
    let magic: &[u8] = match mode {
        Mode::Client => b"session key to client-to-server signing key magic constant\0",
        Mode::Server => b"session key to server-to-client signing key magic constant\0",
    };
    let mut h = Md5::new();
    h.update(exported);
    h.update(magic);
    h.finalize().into()
}

/// SEALKEY ([MS-NLMP] 3.4.5.3), for extended session security.
pub fn seal_key(exported: &[u8; 16], neg_flags: u32, mode: Mode) -> [u8; 16] {
    let base: &[u8] = if neg_flags & flags::NEG_128 != 0 {
        exported
    } else if neg_flags & flags::NEG_56 != 0 {
        &exported[..7]
    } else {
        &exported[..5]
    };
    let magic: &[u8] = match mode {
        Mode::Client => b"session key to client-to-server sealing key magic constant\0",
        Mode::Server => b"session key to server-to-client sealing key magic constant\0",
    };
    let mut h = Md5::new();
    h.update(base);
    h.update(magic);
    h.finalize().into()
}

/// One direction of NTLM session security (extended session security): a signing key, an RC4
/// sealing handle and a sequence number. Used for SPNEGO's mechListMIC (GSS_GetMIC).
pub struct NtlmSecurity {
    sign_key: [u8; 16],
    handle: Rc4<U16>,
    seq: u32,
    key_exch: bool,
}

impl std::fmt::Debug for NtlmSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NtlmSecurity")
            .field("seq", &self.seq)
            .finish_non_exhaustive()
    }
}

impl NtlmSecurity {
    /// The state for messages sent by `mode` (the client signs with `Mode::Client`, and checks
    /// the server's MIC with `Mode::Server`).
    pub fn new(exported: &[u8; 16], neg_flags: u32, mode: Mode) -> Self {
        let seal = seal_key(exported, neg_flags, mode);
        NtlmSecurity {
            sign_key: sign_key(exported, mode),
            handle: Rc4::<U16>::new((&seal).into()),
            seq: 0,
            key_exch: neg_flags & flags::KEY_EXCH != 0,
        }
    }

    /// MAC ([MS-NLMP] 3.4.4.2): the 16-byte NTLMSSP_MESSAGE_SIGNATURE of `msg`; advances the
    /// sequence number and (with KEY_EXCH) the RC4 handle.
    pub fn mac(&mut self, msg: &[u8]) -> [u8; 16] {
        let seq = self.seq.to_le_bytes();
        let full = hmac_md5(&self.sign_key, &[&seq, msg]);
        let mut checksum = [0u8; 8];
        checksum.copy_from_slice(&full[..8]);
        if self.key_exch {
            self.handle.apply_keystream(&mut checksum);
        }
        let mut sig = [0u8; 16];
        sig[..4].copy_from_slice(&1u32.to_le_bytes());
        sig[4..12].copy_from_slice(&checksum);
        sig[12..].copy_from_slice(&seq);
        self.seq = self.seq.wrapping_add(1);
        sig
    }

    /// SEAL ([MS-NLMP] 3.4.3): encrypt `msg` in place and return its signature.
    pub fn seal(&mut self, msg: &mut [u8]) -> [u8; 16] {
        let plain = msg.to_vec();
        self.handle.apply_keystream(msg);
        self.mac(&plain)
    }
}
