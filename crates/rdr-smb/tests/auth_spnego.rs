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

const WIN_SERVER_INIT_TOKEN: &[&str] = &[
    "6082013c06062b0601050502a08201303082012ca01a3018060a2b06010401823702021e060a2b06010401823702020a",
    "a282010c048201084e45474f45585453010000000000000060000000700000007c7cc0fd06d6362d02dde1cf343bfe29",
    "2900f49750b4aa97934d9c4296b26e51fd370471b235e15a50dae15bd5489c8700000000000000006000000001000000",
    "00000000000000005c33530deaf90d4db2ec4ae3786ec3084e45474f4558545303000000010000004000000098000000",
    "7c7cc0fd06d6362d02dde1cf343bfe295c33530deaf90d4db2ec4ae3786ec30840000000580000003056a05430523027",
    "802530233121301f06035504031318546f6b656e205369676e696e67205075626c6963204b6579302780253023312130",
    "1f06035504031318546f6b656e205369676e696e67205075626c6963204b6579",
];
const WIN_CLIENT_INIT_TOKEN: &[&str] = &[
    "604806062b0601050502a03e303ca00e300c060a2b06010401823702020aa22a04284e544c4d53535000010000009782",
    "08e200000000000000000000000000000000060380250000000f",
];
const WIN_SERVER_CHALLENGE_TOKEN: &[&str] = &[
    "a181b03081ada0030a0101a10c060a2b06010401823702020aa281970481944e544c4d53535000020000000c000c0038",
    "00000015828ae20d1d8ba31179d008000000000000000050005000440000000a0092270000000f530055005400330031",
    "00310002000c0053005500540033003100310001000c0053005500540033003100310004000c00530055005400330031",
    "00310003000c0053005500540033003100310007000800a1a1f5adcbaed00100000000",
];
const WIN_CLIENT_AUTH_TOKEN: &[&str] = &[
    "a18201cb308201c7a0030a0101a28201aa048201a64e544c4d53535000030000001800180090000000ee00ee00a80000",
    "000c000c00580000001a001a0064000000120012007e0000001000100096010000158288e2060380250000000fecac77",
    "a5f385a8bf9c38c706eeeddcd3530055005400330031003100610064006d0069006e006900730074007200610074006f",
    "00720044005200490056004500520033003100310000000000000000000000000000000000000000000000000063078e",
    "b639fe03e20a231c3ae3bf23080101000000000000a1a1f5adcbaed001bc4ad05f223cc90f0000000002000c00530055",
    "00540033003100310001000c0053005500540033003100310004000c0053005500540033003100310003000c00530055",
    "00540033003100310007000800a1a1f5adcbaed001060004000200000008003000300000000000000000000000003000",
    "00b61fefcaa857ea57bf1edcebf8974b8e0eba5a6dfd9d07a31d11b548f8c9d0cc0a0010000000000000000000000000",
    "00000000000900160063006900660073002f005300550054003300310031000000000000000000000000003b9bdff38f",
    "5ee8f9663f11a0f4c03a78a31204100100000063775a9a5fd97f0600000000",
];

use rdr_core::{NtStatus, RxError};
use rdr_smb::auth::AuthError;
use rdr_smb::auth::der::{self, Reader};
use rdr_smb::auth::ntlm::{self, AvPair, Mode, NtlmClient, NtlmSecurity, av};
use rdr_smb::auth::spnego::{
    self, MechListMicPolicy, NegState, OID_NTLMSSP, SpnegoClient, encode_neg_token_resp,
    parse_neg_token_init, parse_neg_token_resp,
};

fn hex(parts: &[&str]) -> Vec<u8> {
    let s: String = parts.concat();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const OID_NEGOEX: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x1e];
const OID_KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];

#[test]
fn windows_negotiate_token_offers_negoex_and_ntlm() {
    let init = parse_neg_token_init(&hex(WIN_SERVER_INIT_TOKEN)).unwrap();
    assert_eq!(
        init.mech_types,
        vec![OID_NEGOEX.to_vec(), OID_NTLMSSP.to_vec()]
    );
    assert!(init.offers_ntlm());
    assert_eq!(der::oid_to_string(OID_NTLMSSP), "1.3.6.1.4.1.311.2.2.10");
}

#[test]
fn our_neg_token_init_is_byte_identical_to_windows() {
    let win = hex(WIN_CLIENT_INIT_TOKEN);
    let init = parse_neg_token_init(&win).unwrap();
    let ntlm_negotiate = init.mech_token.unwrap();
    assert_eq!(&ntlm_negotiate[..8], b"NTLMSSP\0");
    let ours =
        spnego::encode_neg_token_init(&spnego::encode_mech_types(&[OID_NTLMSSP]), &ntlm_negotiate);
    assert_eq!(ours, win);
}

#[test]
fn windows_challenge_and_authenticate_tokens_parse() {
    let resp = parse_neg_token_resp(&hex(WIN_SERVER_CHALLENGE_TOKEN)).unwrap();
    assert_eq!(resp.neg_state, Some(NegState::AcceptIncomplete));
    assert_eq!(resp.supported_mech.as_deref(), Some(OID_NTLMSSP));
    let chal = resp.response_token.unwrap();
    assert_eq!(&chal[..12], b"NTLMSSP\0\x02\0\0\0");
    assert!(resp.mech_list_mic.is_none());

    let auth = parse_neg_token_resp(&hex(WIN_CLIENT_AUTH_TOKEN)).unwrap();
    assert_eq!(&auth.response_token.unwrap()[..12], b"NTLMSSP\0\x03\0\0\0");
    assert_eq!(auth.mech_list_mic.unwrap().len(), 16);
}

#[test]
fn our_mech_list_mic_matches_what_windows_sent() {
    let key: [u8; 16] = hex(&["270e1ba896585eeb7af3472d3b4c75a7"])
        .try_into()
        .unwrap();
    let auth = parse_neg_token_resp(&hex(WIN_CLIENT_AUTH_TOKEN)).unwrap();
    let msg = auth.response_token.unwrap();
    let flags = u32::from_le_bytes(msg[60..64].try_into().unwrap());
    let mut sec = NtlmSecurity::new(&key, flags, Mode::Client);
    let mic = sec.mac(&spnego::encode_mech_types(&[OID_NTLMSSP]));
    assert_eq!(mic.to_vec(), auth.mech_list_mic.unwrap());
}

/// A CHALLENGE with MsvAvTimestamp, wrapped like Samba sends it.
fn server_challenge_token() -> (Vec<u8>, Vec<u8>) {
    let ti = ntlm::encode_av_pairs(&[
        AvPair {
            id: av::NB_COMPUTER_NAME,
            value: ntlm::utf16le("SAMBA"),
        },
        AvPair {
            id: av::TIMESTAMP,
            value: 0x01d0_aecb_adf5_a1a1u64.to_le_bytes().to_vec(),
        },
    ]);
    let mut chal = b"NTLMSSP\0".to_vec();
    chal.extend_from_slice(&2u32.to_le_bytes());
    chal.extend_from_slice(&[0, 0, 0, 0, 56, 0, 0, 0]);
    chal.extend_from_slice(&0xe28a_8215u32.to_le_bytes());
    chal.extend_from_slice(&[9; 8]);
    chal.extend_from_slice(&[0; 8]);
    chal.extend_from_slice(&(ti.len() as u16).to_le_bytes());
    chal.extend_from_slice(&(ti.len() as u16).to_le_bytes());
    chal.extend_from_slice(&56u32.to_le_bytes());
    chal.extend_from_slice(&[6, 1, 0, 0, 0, 0, 0, 0xf]);
    chal.extend_from_slice(&ti);
    // [1] { [0] accept-incomplete, [1] NTLMSSP, [2] challenge }
    let mut seq = der::encode(der::context(0), &der::encode(der::TAG_ENUMERATED, &[1]));
    seq.extend(der::encode(
        der::context(1),
        &der::encode(der::TAG_OID, OID_NTLMSSP),
    ));
    seq.extend(der::encode(
        der::context(2),
        &der::encode(der::TAG_OCTET_STRING, &chal),
    ));
    (
        der::encode(der::context(1), &der::encode(der::TAG_SEQUENCE, &seq)),
        chal,
    )
}

fn final_token(mic: Option<&[u8]>, state: u8) -> Vec<u8> {
    let mut seq = der::encode(der::context(0), &der::encode(der::TAG_ENUMERATED, &[state]));
    if let Some(m) = mic {
        seq.extend(der::encode(
            der::context(3),
            &der::encode(der::TAG_OCTET_STRING, m),
        ));
    }
    der::encode(der::context(1), &der::encode(der::TAG_SEQUENCE, &seq))
}

#[test]
fn full_exchange_sends_and_checks_mech_list_mics() {
    let mut c = SpnegoClient::new(NtlmClient::new("alice", "WORKGROUP", "pw", "RDR"));
    let first = c.initial_token(&hex(WIN_SERVER_INIT_TOKEN)).unwrap();
    let init = parse_neg_token_init(&first).unwrap();
    assert_eq!(init.mech_types, vec![OID_NTLMSSP.to_vec()]);
    assert_eq!(&init.mech_token.unwrap()[..12], b"NTLMSSP\0\x01\0\0\0");

    let (tok, _) = server_challenge_token();
    let step = c.step(&tok).unwrap();
    assert_eq!(c.session_key(), Some(step.session_key));
    let resp = parse_neg_token_resp(&step.token).unwrap();
    let auth = resp.response_token.unwrap();
    let flags = u32::from_le_bytes(auth[60..64].try_into().unwrap());
    // The server checks the client's mechListMIC with the client-direction keys.
    let mech_types = spnego::encode_mech_types(&[OID_NTLMSSP]);
    let expect = NtlmSecurity::new(&step.session_key, flags, Mode::Client).mac(&mech_types);
    assert_eq!(resp.mech_list_mic.unwrap(), expect.to_vec());

    // The server's own MIC uses the server-direction keys.
    let server_mic = NtlmSecurity::new(&step.session_key, flags, Mode::Server).mac(&mech_types);
    let mut tampered = server_mic;
    tampered[6] ^= 0x80;
    assert_eq!(
        c.finish(&final_token(Some(&tampered), 0)),
        Err(AuthError::MechListMicMismatch)
    );
    c.finish(&final_token(Some(&server_mic), 0)).unwrap();
    assert!(c.is_complete());
}

#[test]
fn mech_list_mic_policy_is_honoured() {
    let (tok, _) = server_challenge_token();
    for (policy, want) in [
        (MechListMicPolicy::WhenNtlmMic, true),
        (MechListMicPolicy::Always, true),
        (MechListMicPolicy::Never, false),
    ] {
        let mut c =
            SpnegoClient::new(NtlmClient::new("a", "b", "c", "d")).with_mech_list_mic(policy);
        c.initial_token(&[]).unwrap();
        let step = c.step(&tok).unwrap();
        let resp = parse_neg_token_resp(&step.token).unwrap();
        assert_eq!(resp.mech_list_mic.is_some(), want, "{policy:?}");
        // Final token without a MIC, or empty, is accepted.
        c.finish(&[]).unwrap();
    }
}

#[test]
fn rejections_and_foreign_mechanisms_are_reported() {
    // Server offers only Kerberos.
    let mut kerberos_only = spnego::encode_mech_types(&[OID_KRB5]);
    kerberos_only = spnego::encode_neg_token_init(&kerberos_only, b"x");
    let mut c = SpnegoClient::new(NtlmClient::new("a", "b", "c", "d"));
    let e = c.initial_token(&kerberos_only).unwrap_err();
    assert!(
        matches!(&e, AuthError::NtlmNotOffered { offered } if offered == "1.2.840.113554.1.2.2"),
        "{e}"
    );
    assert_eq!(RxError::from(e).nt_status(), NtStatus::STATUS_NOT_SUPPORTED);

    // negState reject at the challenge step and at the end.
    let mut c = SpnegoClient::new(NtlmClient::new("a", "b", "c", "d"));
    c.initial_token(&[]).unwrap();
    assert_eq!(c.step(&final_token(None, 2)), Err(AuthError::Rejected));
    let mut c = SpnegoClient::new(NtlmClient::new("a", "b", "c", "d"));
    c.initial_token(&[]).unwrap();
    c.step(&server_challenge_token().0).unwrap();
    let e = c.finish(&final_token(None, 2)).unwrap_err();
    assert_eq!(RxError::from(e).nt_status(), NtStatus::STATUS_LOGON_FAILURE);

    // A NegTokenResp without a responseToken.
    let mut c = SpnegoClient::new(NtlmClient::new("a", "b", "c", "d"));
    c.initial_token(&[]).unwrap();
    assert!(matches!(
        c.step(&final_token(None, 1)),
        Err(AuthError::Malformed { .. })
    ));
    // A token sent as a response without step order.
    let mut c = SpnegoClient::new(NtlmClient::new("a", "b", "c", "d"));
    assert!(matches!(
        c.step(&server_challenge_token().0),
        Err(AuthError::OutOfOrder(_))
    ));
    // An empty NegTokenResp round-trips as an empty one.
    assert_eq!(
        parse_neg_token_resp(&encode_neg_token_resp(None, None)).unwrap(),
        Default::default()
    );
}

#[test]
fn truncated_or_corrupt_tokens_fail_cleanly() {
    let tokens = [
        hex(WIN_SERVER_INIT_TOKEN),
        hex(WIN_CLIENT_INIT_TOKEN),
        hex(WIN_SERVER_CHALLENGE_TOKEN),
        hex(WIN_CLIENT_AUTH_TOKEN),
    ];
    for t in &tokens {
        for n in 0..t.len() {
            let r1 = parse_neg_token_init(&t[..n]);
            let r2 = parse_neg_token_resp(&t[..n]);
            assert!(
                r1.is_err() && r2.is_err(),
                "truncation to {n} of {} accepted",
                t.len()
            );
        }
        // Flip every byte in turn: errors or values, never a panic.
        for i in 0..t.len() {
            let mut b = t.clone();
            b[i] ^= 0xff;
            let _ = parse_neg_token_init(&b);
            let _ = parse_neg_token_resp(&b);
            let mut c = SpnegoClient::new(NtlmClient::new("a", "b", "c", "d"));
            let _ = c.initial_token(&b);
            let _ = c.step(&b);
        }
    }
    // Indefinite length, over-long length fields, and lengths past the end.
    for bad in [
        &[0x30, 0x80, 0, 0][..],
        &[0x30, 0x85, 1, 1, 1, 1, 1],
        &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
        &[0xa1, 0x05, 0x30],
    ] {
        assert!(Reader::new(bad, "test").read_any().is_err());
        let e = parse_neg_token_resp(bad).unwrap_err();
        assert_eq!(
            RxError::from(e).nt_status(),
            NtStatus::STATUS_INVALID_NETWORK_RESPONSE
        );
    }
}

#[test]
fn request_mic_from_the_server_gets_a_mech_list_mic_even_without_the_ntlm_mic() {
    // A CHALLENGE without MsvAvTimestamp (so no NTLM MIC), negState request-mic.
    let (_, chal) = server_challenge_token();
    let ti_start = u32::from_le_bytes(chal[44..48].try_into().unwrap()) as usize;
    let mut no_ts = chal[..ti_start].to_vec();
    let ti = ntlm::encode_av_pairs(&[AvPair {
        id: av::NB_COMPUTER_NAME,
        value: ntlm::utf16le("SAMBA"),
    }]);
    no_ts[40..42].copy_from_slice(&(ti.len() as u16).to_le_bytes());
    no_ts[42..44].copy_from_slice(&(ti.len() as u16).to_le_bytes());
    no_ts.extend_from_slice(&ti);
    for (state, want) in [(1u8, false), (3u8, true)] {
        let mut seq = der::encode(der::context(0), &der::encode(der::TAG_ENUMERATED, &[state]));
        seq.extend(der::encode(
            der::context(2),
            &der::encode(der::TAG_OCTET_STRING, &no_ts),
        ));
        let tok = der::encode(der::context(1), &der::encode(der::TAG_SEQUENCE, &seq));
        let mut c = SpnegoClient::new(NtlmClient::new("a", "b", "c", "d"));
        c.initial_token(&[]).unwrap();
        let step = c.step(&tok).unwrap();
        let resp = parse_neg_token_resp(&step.token).unwrap();
        assert_eq!(resp.mech_list_mic.is_some(), want, "negState {state}");
    }
}
