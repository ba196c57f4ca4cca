// Test vectors:
// - [MS-NLMP] 4.2.4 (NTLMv2 authentication): User "User", Domain "Domain", Password "Password",
//   ServerChallenge 0123456789abcdef, ClientChallenge aaaaaaaaaaaaaaaa, Time 0,
//   RandomSessionKey 0x55 x 16, workstation "COMPUTER", TargetInfo NbDomainName "Domain" +
//   NbComputerName "Server"; 4.2.4.4 for the sealing/signing keys and GSS_WrapEx output.
// - A real Windows 10 exchange published by Microsoft in "SMB 3.1.1 Pre-authentication integrity
//   in Windows 10" (Open Specifications blog, 2015-08-11), whose Session.SessionKey is
//   270E1BA896585EEB7AF3472D3B4C75A7. One transcription error in the published AUTHENTICATE
//   message (the user name "administrator" printed with a doubled "d", 2 extra bytes that break
//   every length) is corrected here; with it corrected the MIC and the mechListMIC Windows sent
//   verify against the published key, which is what these tests check.

const WIN_NEGOTIATE: &[&str] =
    &["4e544c4d5353500001000000978208e200000000000000000000000000000000060380250000000f"];
const WIN_CHALLENGE: &[&str] = &[
    "4e544c4d53535000020000000c000c003800000015828ae20d1d8ba31179d00800000000000000005000500044000000",
    "0a0092270000000f53005500540033003100310002000c0053005500540033003100310001000c005300550054003300",
    "3100310004000c0053005500540033003100310003000c0053005500540033003100310007000800a1a1f5adcbaed001",
    "00000000",
];
const WIN_AUTHENTICATE: &[&str] = &[
    "4e544c4d53535000030000001800180090000000ee00ee00a80000000c000c00580000001a001a006400000012001200",
    "7e0000001000100096010000158288e2060380250000000fecac77a5f385a8bf9c38c706eeeddcd35300550054003300",
    "31003100610064006d0069006e006900730074007200610074006f007200440052004900560045005200330031003100",
    "00000000000000000000000000000000000000000000000063078eb639fe03e20a231c3ae3bf23080101000000000000",
    "a1a1f5adcbaed001bc4ad05f223cc90f0000000002000c0053005500540033003100310001000c005300550054003300",
    "3100310004000c0053005500540033003100310003000c0053005500540033003100310007000800a1a1f5adcbaed001",
    "06000400020000000800300030000000000000000000000000300000b61fefcaa857ea57bf1edcebf8974b8e0eba5a6d",
    "fd9d07a31d11b548f8c9d0cc0a001000000000000000000000000000000000000900160063006900660073002f005300",
    "550054003300310031000000000000000000000000003b9bdff38f5ee8f9663f11a0f4c03a78",
];

use rdr_core::{NtStatus, RxError};
use rdr_smb::auth::AuthError;
use rdr_smb::auth::ntlm::{
    self, AvPair, Mode, NtlmClient, NtlmNonces, NtlmSecurity, av, flags, parse_av_pairs,
    parse_challenge,
};

fn hex(parts: &[&str]) -> Vec<u8> {
    let s: String = parts.concat();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn h(s: &str) -> Vec<u8> {
    hex(&[s])
}

/// Read an AUTHENTICATE_MESSAGE payload field by its descriptor offset.
fn field(msg: &[u8], at: usize) -> Vec<u8> {
    let len = u16::from_le_bytes([msg[at], msg[at + 1]]) as usize;
    let off = u32::from_le_bytes([msg[at + 4], msg[at + 5], msg[at + 6], msg[at + 7]]) as usize;
    msg[off..off + len].to_vec()
}

const SPEC_TARGET_INFO: &str =
    "02000c0044006f006d00610069006e0001000c005300650072007600650072000000000000";

fn spec_target_info() -> Vec<u8> {
    // "Domain"/"Server" AV pairs and MsvAvEOL (36 bytes).
    h(&SPEC_TARGET_INFO[..72])
}

/// The [MS-NLMP] 4.2.4 CHALLENGE_MESSAGE: flags 0xe28a8233, challenge 0123456789abcdef, target
/// name "Server", the spec's target info, version 06 00 70 17 00 00 00 0f.
fn spec_challenge() -> Vec<u8> {
    let name = ntlm::utf16le("Server");
    let ti = spec_target_info();
    let mut m = b"NTLMSSP\0".to_vec();
    m.extend_from_slice(&2u32.to_le_bytes());
    m.extend_from_slice(&(name.len() as u16).to_le_bytes());
    m.extend_from_slice(&(name.len() as u16).to_le_bytes());
    m.extend_from_slice(&56u32.to_le_bytes());
    m.extend_from_slice(&0xe28a_8233u32.to_le_bytes());
    m.extend_from_slice(&h("0123456789abcdef"));
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(&(ti.len() as u16).to_le_bytes());
    m.extend_from_slice(&(ti.len() as u16).to_le_bytes());
    m.extend_from_slice(&((56 + name.len()) as u32).to_le_bytes());
    m.extend_from_slice(&h("060070170000000f"));
    m.extend_from_slice(&name);
    m.extend_from_slice(&ti);
    m
}

fn spec_nonces() -> NtlmNonces {
    NtlmNonces {
        client_challenge: [0xaa; 8],
        random_session_key: [0x55; 16],
        now_filetime: 0,
    }
}

#[test]
fn ntowfv2_matches_ms_nlmp_4_2_4_1_1() {
    assert_eq!(
        ntlm::ntowf_v2("Password", "User", "Domain").to_vec(),
        h("0c868a403bfd7a93a3001ef22ef02e3f")
    );
    // Only the user name is upper-cased.
    assert_eq!(
        ntlm::ntowf_v2("Password", "user", "Domain"),
        ntlm::ntowf_v2("Password", "USER", "Domain")
    );
    assert_ne!(
        ntlm::ntowf_v2("Password", "User", "DOMAIN"),
        ntlm::ntowf_v2("Password", "User", "Domain")
    );
}

#[test]
fn ntlmv2_responses_and_keys_match_ms_nlmp_4_2_4_2() {
    let key = ntlm::ntowf_v2("Password", "User", "Domain");
    let server: [u8; 8] = h("0123456789abcdef").try_into().unwrap();
    let r = ntlm::ntlmv2_response(&key, &server, &[0xaa; 8], 0, &spec_target_info());
    assert_eq!(
        r.nt_proof_str.to_vec(),
        h("68cd0ab851e51c96aabc927bebef6a1c")
    );
    assert_eq!(
        r.nt_response,
        h(concat!(
            "68cd0ab851e51c96aabc927bebef6a1c",
            "01010000000000000000000000000000aaaaaaaaaaaaaaaa00000000",
            "02000c0044006f006d00610069006e0001000c00530065007200760065007200",
            "0000000000000000"
        ))
    );
    assert_eq!(
        r.lm_response.to_vec(),
        h("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
    );
    assert_eq!(
        r.session_base_key.to_vec(),
        h("8de40ccadbc14a82f15cb0ad0de95ca3")
    );
    assert_eq!(
        ntlm::encrypt_session_key(&r.session_base_key, &[0x55; 16]).to_vec(),
        h("c5dad2544fc9799094ce1ce90bc9d03e")
    );
}

#[test]
fn authenticate_message_fields_match_ms_nlmp_4_2_4() {
    let mut c = NtlmClient::new("User", "Domain", "Password", "COMPUTER");
    let neg = c.negotiate();
    assert_eq!(&neg[..12], b"NTLMSSP\0\x01\0\0\0");
    let neg_flags = u32::from_le_bytes(neg[12..16].try_into().unwrap());
    for f in [
        flags::UNICODE,
        flags::NTLM,
        flags::SIGN,
        flags::SEAL,
        flags::ALWAYS_SIGN,
        flags::EXTENDED_SESSIONSECURITY,
        flags::TARGET_INFO,
        flags::VERSION,
        flags::NEG_128,
        flags::KEY_EXCH,
        flags::NEG_56,
    ] {
        assert_ne!(neg_flags & f, 0, "NEGOTIATE lacks flag {f:#x}");
    }

    let out = c
        .authenticate_with(&spec_challenge(), &spec_nonces())
        .unwrap();
    let m = &out.message;
    assert_eq!(&m[..12], b"NTLMSSP\0\x03\0\0\0");
    assert_eq!(
        field(m, 12),
        h("86c35097ac9cec102554764a57cccc19aaaaaaaaaaaaaaaa")
    );
    assert_eq!(
        &field(m, 20)[..16],
        &h("68cd0ab851e51c96aabc927bebef6a1c")[..]
    );
    assert_eq!(field(m, 28), ntlm::utf16le("Domain"));
    assert_eq!(field(m, 36), ntlm::utf16le("User"));
    assert_eq!(field(m, 44), ntlm::utf16le("COMPUTER"));
    assert_eq!(field(m, 52), h("c5dad2544fc9799094ce1ce90bc9d03e"));
    // The exported session key is the random session key (KEY_EXCH).
    assert_eq!(out.session_key, [0x55; 16]);
    // No MsvAvTimestamp in the spec challenge: no MIC, the field stays zero.
    assert!(!out.mic_present);
    assert_eq!(&m[72..88], &[0u8; 16]);
    let f = u32::from_le_bytes(m[60..64].try_into().unwrap());
    assert_eq!(f, out.flags);
    assert_ne!(f & flags::KEY_EXCH, 0);
    assert_ne!(f & flags::UNICODE, 0);
}

#[test]
fn ntlm_sealing_keys_and_signature_match_ms_nlmp_4_2_4_4() {
    let exported = [0x55u8; 16];
    let neg = 0xe28a_8233;
    assert_eq!(
        ntlm::sign_key(&exported, Mode::Client).to_vec(),
        h("4788dc861b4782f35d43fd98fe1a2d39")
    );
    assert_eq!(
        ntlm::seal_key(&exported, neg, Mode::Client).to_vec(),
        h("59f600973cc4960a25480a7c196e4c58")
    );
    let mut sec = NtlmSecurity::new(&exported, neg, Mode::Client);
    let mut msg = ntlm::utf16le("Plaintext");
    let sig = sec.seal(&mut msg);
    assert_eq!(msg, h("54e50165bf1936dc996020c1811b0f06fb5f"));
    assert_eq!(sig.to_vec(), h("010000007fb38ec5c55d497600000000"));
}

#[test]
fn the_mic_matches_what_windows_sent() {
    let key: [u8; 16] = h("270e1ba896585eeb7af3472d3b4c75a7").try_into().unwrap();
    let (neg, chal, auth) = (
        hex(WIN_NEGOTIATE),
        hex(WIN_CHALLENGE),
        hex(WIN_AUTHENTICATE),
    );
    assert_eq!(
        ntlm::compute_mic(&key, &neg, &chal, &auth).to_vec(),
        auth[72..88].to_vec()
    );
    // One flipped bit anywhere changes it.
    let mut bad = auth.clone();
    bad[100] ^= 1;
    assert_ne!(
        ntlm::compute_mic(&key, &neg, &chal, &bad).to_vec(),
        auth[72..88].to_vec()
    );
}

#[test]
fn windows_challenge_parses_with_its_timestamp() {
    let c = parse_challenge(&hex(WIN_CHALLENGE)).unwrap();
    assert_eq!(c.server_challenge.to_vec(), h("0d1d8ba31179d008"));
    assert_eq!(
        c.timestamp(),
        Some(u64::from_le_bytes(
            h("a1a1f5adcbaed001").try_into().unwrap()
        ))
    );
    assert_eq!(c.target_name, ntlm::utf16le("SUT311"));
    assert!(
        c.av_pairs
            .iter()
            .any(|p| p.id == av::NB_COMPUTER_NAME && p.value == ntlm::utf16le("SUT311"))
    );
}

/// Plays the server's part: recompute what an NTLMv2 server checks.
#[test]
fn with_a_server_timestamp_the_client_sends_a_verifiable_mic_and_zero_lm() {
    let ts: u64 = 0x01d0_aecb_adf5_a1a1;
    let pairs = vec![
        AvPair {
            id: av::NB_DOMAIN_NAME,
            value: ntlm::utf16le("WORKGROUP"),
        },
        AvPair {
            id: av::NB_COMPUTER_NAME,
            value: ntlm::utf16le("SAMBA"),
        },
        AvPair {
            id: av::TIMESTAMP,
            value: ts.to_le_bytes().to_vec(),
        },
    ];
    let ti = ntlm::encode_av_pairs(&pairs);
    let mut chal = b"NTLMSSP\0".to_vec();
    chal.extend_from_slice(&2u32.to_le_bytes());
    chal.extend_from_slice(&[0, 0, 0, 0, 56, 0, 0, 0]);
    chal.extend_from_slice(&0xe28a_8215u32.to_le_bytes());
    chal.extend_from_slice(&h("1122334455667788"));
    chal.extend_from_slice(&[0; 8]);
    chal.extend_from_slice(&(ti.len() as u16).to_le_bytes());
    chal.extend_from_slice(&(ti.len() as u16).to_le_bytes());
    chal.extend_from_slice(&56u32.to_le_bytes());
    chal.extend_from_slice(&[6, 1, 0xb1, 0x1d, 0, 0, 0, 0xf]);
    chal.extend_from_slice(&ti);

    let mut c =
        NtlmClient::new("alice", "WORKGROUP", "s3cret!", "RDR").with_target_spn("cifs/samba");
    let neg = c.negotiate();
    let out = c.authenticate(&chal).unwrap();
    let m = &out.message;
    assert!(out.mic_present);
    assert_eq!(
        field(m, 12),
        vec![0u8; 24],
        "LM response must be Z(24) with a timestamp"
    );

    // Server side: NTProofStr from the password and the blob the client sent.
    let nt = field(m, 20);
    let blob = &nt[16..];
    assert_eq!(
        &blob[8..16],
        &ts.to_le_bytes(),
        "the blob must carry the server's timestamp"
    );
    let key = ntlm::ntowf_v2("s3cret!", "alice", "WORKGROUP");
    let sent_pairs = parse_av_pairs(&blob[28..]).unwrap();
    let av_flags = sent_pairs.iter().find(|p| p.id == av::FLAGS).unwrap();
    assert_eq!(av_flags.value, 2u32.to_le_bytes().to_vec());
    assert!(
        sent_pairs
            .iter()
            .any(|p| p.id == av::TARGET_NAME && p.value == ntlm::utf16le("cifs/samba"))
    );
    let client_challenge: [u8; 8] = blob[16..24].try_into().unwrap();
    let r = ntlm::ntlmv2_response(
        &key,
        &h("1122334455667788").try_into().unwrap(),
        &client_challenge,
        ts,
        &blob[28..blob.len() - 4],
    );
    assert_eq!(r.nt_response, nt);
    // The server recovers the exported session key from EncryptedRandomSessionKey (RC4 is its
    // own inverse) and checks the MIC with it.
    let enc: [u8; 16] = field(m, 52).try_into().unwrap();
    let recovered = ntlm::encrypt_session_key(&r.session_base_key, &enc);
    assert_eq!(recovered, out.session_key);
    assert_eq!(
        ntlm::compute_mic(&recovered, &neg, &chal, m).to_vec(),
        m[72..88].to_vec()
    );
    // A wrong password yields a different proof.
    let wrong = ntlm::ntowf_v2("s3cret?", "alice", "WORKGROUP");
    let r2 = ntlm::ntlmv2_response(
        &wrong,
        &h("1122334455667788").try_into().unwrap(),
        &client_challenge,
        ts,
        &blob[28..blob.len() - 4],
    );
    assert_ne!(r2.nt_proof_str, r.nt_proof_str);
}

#[test]
fn out_of_order_calls_are_errors() {
    let mut c = NtlmClient::new("u", "d", "p", "w");
    assert!(matches!(
        c.authenticate(&spec_challenge()),
        Err(AuthError::OutOfOrder(_))
    ));
    c.negotiate();
    c.authenticate(&spec_challenge()).unwrap();
    assert!(matches!(
        c.authenticate(&spec_challenge()),
        Err(AuthError::OutOfOrder(_))
    ));
}

#[test]
fn malformed_challenges_are_rejected_without_panicking() {
    let good = hex(WIN_CHALLENGE);
    for n in 0..good.len() {
        let mut c = NtlmClient::new("u", "d", "p", "w");
        c.negotiate();
        let r = c.authenticate(&good[..n]);
        // Cut inside the header, or a field now lies past the end.
        assert!(r.is_err(), "truncation to {n} bytes was accepted");
    }
    // Wrong signature, wrong type, offsets past the end, AV pair overrunning its buffer.
    let mut bad_sig = good.clone();
    bad_sig[0] = b'X';
    let mut bad_type = good.clone();
    bad_type[8] = 3;
    let mut bad_off = good.clone();
    bad_off[44..48].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    for bad in [bad_sig, bad_type, bad_off] {
        let e = parse_challenge(&bad).unwrap_err();
        assert!(matches!(e, AuthError::Malformed { .. }), "{e}");
        let rx: RxError = e.into();
        assert_eq!(rx.nt_status(), NtStatus::STATUS_INVALID_NETWORK_RESPONSE);
    }
    assert!(parse_av_pairs(&[7, 0, 8, 0, 1, 2]).is_err());
    // Pseudo-random garbage: never a panic.
    let mut x: u32 = 0x1234_5678;
    for len in 0..300 {
        let mut buf: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        if len >= 12 {
            buf[..8].copy_from_slice(b"NTLMSSP\0");
            buf[8..12].copy_from_slice(&2u32.to_le_bytes());
        }
        let _ = parse_challenge(&buf);
    }
}

#[test]
fn a_server_without_unicode_is_refused() {
    let mut chal = spec_challenge();
    chal[20] &= !1; // clear UNICODE
    let mut c = NtlmClient::new("u", "d", "p", "w");
    c.negotiate();
    assert_eq!(
        c.authenticate(&chal).unwrap_err(),
        AuthError::Unsupported("Unicode NTLM strings")
    );
}
