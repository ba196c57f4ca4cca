//! SMB3 encryption with the TRANSFORM header: Microsoft's published SMB 3.0 (AES-128-CCM) and
//! SMB 3.1.1 (AES-128-GCM) vectors, round trips for all four ciphers, tamper detection and
//! nonce uniqueness.

use std::collections::HashSet;

use rdr_core::{NtStatus, RxError};
use rdr_smb::crypto::encryption::{Decryptor, Encryptor, TRANSFORM_HEADER_LEN, TransformHeader};
use rdr_smb::crypto::{Cipher, CryptoError};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

// "Encryption in SMB 3.0: A protocol perspective" (Open Specifications blog, 2012-10-05).
const SMB30_ENC_KEY: &str = "261B72350558F2E9DCF613070383EDBF";
const SMB30_DEC_KEY: &str = "8FE2B57EC34D2DB5B1A9727F526BBDB5";
const SMB30_SESSION: u64 = 0x8e40014000011;
const SMB30_WRITE: &str = "
    FE534D4240000100000000000900400008000000000000000400000000000000
    FFFE0000010000001100001400E4080000000000000000000000000000000000
    3100700017000000000000000000000015010000390000020100000039020000
    00000000000000007000000000000000536D623320656E6372797074696F6E20
    74657374696E67";
const SMB30_WRITE_TRANSFORMED: &str = "
    FD534D4281A286535415445DAE393921E44FA42E66E69A111892584FB5ED524A
    744DA3EE87000000000001001100001400E4080025C8FEE16605A437832D1CD5
    2DA9F4645333482A175FE5384563F45FCDAFAEF38BC62BA4D5C62897996625A4
    4C29BE5658DE2E6117585779E7B59FFD971278D08580D7FA899E410E910EABF5
    AA1DB43050B33B49182637759AC15D84BFCDF5B6B238993C0F4CF4D6012023F6
    C627297075D84B7803912D0A9639634453595EF3E33FFE4E7AC2AB";
const SMB30_READ_RESPONSE_TRANSFORMED: &str = "
    FD534D42A6015530A18F6D9AFFE22AFAE8E66484860000000000000011000014
    00E4080050000000000001001100001400E40800DBF46435C5F14169293CE079
    E344479BF670227E49873F458672C3098DAC467DD5809F369D67409166515787
    1483E01F7BECD02064EAC3E235F913668BBC2F097980D4B378F1993EFF6E60D1
    77309E5B";
const SMB30_READ_RESPONSE: &str = "
    FE534D4240000100000000000900210009000000000000000400000000000000
    FFFE0000010000001100001400E4080000000000000000000000000000000000
    11000000170000000000000000000000";

// "SMB 3.1.1 Encryption in Windows 10" (Open Specifications blog, 2015-09-09), AES-128-GCM.
const SMB311_ENC_KEY: &str = "A2F5E80E5D59103034F32E52F698E5EC";
const SMB311_DEC_KEY: &str = "748C50868C90F302962A5C35F5F9A8BF";
const SMB311_SESSION: u64 = 0x100000000025;
const SMB311_WRITE: &str = "
    FE534D4240000100000000000900010008000000000000000500000000000000FFFE000001000000
    25000000001000000000000000000000000000000000000031007000170000000000000000000000
    0600000004000000010000000400000000000000000000007000000000000000536D623320656E63
    72797074696F6E2074657374696E67";
const SMB311_WRITE_TRANSFORMED: &str = "
    FD534D42BD73D97D2BC9001BCAFAC0FDFF5FEEBCC7D6822D269CAF48904C664C0000000087000000
    0000010025000000001000006ECDD2A7AFC7B47763057A041B8FD4DAFFE990B70C9E09D36C084E02
    D14EF247F8BDE38ACF6256F8B1D3B56F77FBDEB312FEA5E92CBCC1ED8FB2EBBFAA75E49A4A394BB4
    4576545567C24D4C014D47C9FBDFDAFD2C4F9B72F8D256452620A299F48E29E53D6B61D1C13A19E9
    1AF013F00D17E3ABC2FC3D36C8C1B6B93973253852DBD442E46EE8";
const SMB311_READ_RESPONSE_TRANSFORMED: &str = "
    FD534D42ACBE1CB7ED343ADF1725EF144D90D4B0E06831DD2E8EB7B4000000000000000050000000
    00000100250000000010000026BBBF949983A6C1C796559D0F2C510CB651D1F7B6AC8DED32A2A0B8
    F2D793A815C6F6B848D69767A215841A42D400AE6DDB5F0B44173A014973321FDD7950DA6179159B
    82E03C9E18A050FF0EA1C967";
const SMB311_READ_RESPONSE: &str = "
    FE534D4240000100000000000900010001000000000000000500000000000000FFFE000001000000
    25000000001000000000000000000000000000000000000011000000170000000000000000000000";

#[test]
fn smb30_ccm_encryption_matches_the_published_message() {
    let enc = Encryptor::new(Cipher::Aes128Ccm, &hex(SMB30_ENC_KEY)).unwrap();
    let nonce: [u8; 16] = hex("66E69A111892584FB5ED524A744DA3EE").try_into().unwrap();
    let plain = hex(SMB30_WRITE);
    // Header and payload given separately, as a WRITE is.
    let (h, p) = plain.split_at(112);
    let out = enc
        .encrypt_with_nonce(&nonce, SMB30_SESSION, &[h, p])
        .unwrap();
    assert_eq!(out, hex(SMB30_WRITE_TRANSFORMED));
}

#[test]
fn smb30_ccm_decryption_matches_the_published_message() {
    let dec = Decryptor::new(Cipher::Aes128Ccm, &hex(SMB30_DEC_KEY)).unwrap();
    let (h, plain) = dec.decrypt(&hex(SMB30_READ_RESPONSE_TRANSFORMED)).unwrap();
    assert_eq!(h.session_id, SMB30_SESSION);
    assert_eq!(plain, hex(SMB30_READ_RESPONSE));
}

#[test]
fn smb311_gcm_encryption_and_decryption_match_the_published_messages() {
    let enc = Encryptor::new(Cipher::Aes128Gcm, &hex(SMB311_ENC_KEY)).unwrap();
    let mut nonce = [0u8; 16];
    nonce[..12].copy_from_slice(&hex("C7D6822D269CAF48904C664C"));
    let out = enc
        .encrypt_with_nonce(&nonce, SMB311_SESSION, &[&hex(SMB311_WRITE)])
        .unwrap();
    assert_eq!(out, hex(SMB311_WRITE_TRANSFORMED));

    let dec = Decryptor::new(Cipher::Aes128Gcm, &hex(SMB311_DEC_KEY)).unwrap();
    let mut msg = hex(SMB311_READ_RESPONSE_TRANSFORMED);
    let (h, plain) = dec.decrypt_in_place(&mut msg).unwrap();
    assert_eq!(h.session_id, SMB311_SESSION);
    assert_eq!(plain.to_vec(), hex(SMB311_READ_RESPONSE));
}

#[test]
fn every_cipher_round_trips_and_rejects_any_flipped_bit() {
    for cipher in [
        Cipher::Aes128Ccm,
        Cipher::Aes128Gcm,
        Cipher::Aes256Ccm,
        Cipher::Aes256Gcm,
    ] {
        let key: Vec<u8> = (0..cipher.key_len() as u8).collect();
        let enc = Encryptor::new(cipher, &key).unwrap();
        let dec = Decryptor::new(cipher, &key).unwrap();
        let header = hex(SMB311_WRITE);
        let payload = vec![0x5a; 65536];
        let out = enc.encrypt(42, &[&header, &payload]).unwrap();
        assert_eq!(
            out.len(),
            TRANSFORM_HEADER_LEN + header.len() + payload.len()
        );
        let th = TransformHeader::parse(&out).unwrap();
        assert_eq!(th.flags, 1);
        assert_eq!(th.session_id, 42);
        assert_eq!(
            th.original_message_size as usize,
            header.len() + payload.len()
        );
        // Unused nonce bytes are zero.
        assert!(
            th.nonce[cipher.nonce_len()..].iter().all(|b| *b == 0),
            "{cipher:?}"
        );
        let (_, plain) = dec.decrypt(&out).unwrap();
        assert_eq!(&plain[..header.len()], &header[..]);
        assert_eq!(&plain[header.len()..], &payload[..]);

        // Flip one bit in the signature, the AAD (nonce, size, flags, session id) and the body.
        for at in [4, 19, 20, 35, 36, 44, 51, 52, 52 + 100, out.len() - 1] {
            let mut bad = out.clone();
            bad[at] ^= 0x01;
            let e = dec.decrypt(&bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    CryptoError::DecryptFailed { .. } | CryptoError::Malformed { .. }
                ),
                "{cipher:?} byte {at}: {e}"
            );
        }
        let mut bad = out.clone();
        bad[200] ^= 0x80;
        let e = dec.decrypt(&bad).unwrap_err();
        assert_eq!(e, CryptoError::DecryptFailed { session_id: 42 });
        assert_eq!(RxError::from(e).nt_status(), NtStatus::STATUS_ACCESS_DENIED);
        // The other direction's key does not decrypt.
        let wrong: Vec<u8> = key.iter().map(|b| b ^ 0xff).collect();
        assert!(
            Decryptor::new(cipher, &wrong)
                .unwrap()
                .decrypt(&out)
                .is_err()
        );
    }
}

#[test]
fn nonces_never_repeat_for_a_key() {
    for cipher in [Cipher::Aes128Ccm, Cipher::Aes256Gcm] {
        let enc = Encryptor::new(cipher, &vec![1; cipher.key_len()]).unwrap();
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let out = enc.encrypt(1, &[b"x"]).unwrap();
            let nonce = TransformHeader::parse(&out).unwrap().nonce;
            assert!(
                seen.insert(nonce[..cipher.nonce_len()].to_vec()),
                "nonce repeated"
            );
        }
    }
    // Shared between threads, still unique.
    let enc = std::sync::Arc::new(Encryptor::new(Cipher::Aes128Gcm, &[2; 16]).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let enc = enc.clone();
            std::thread::spawn(move || {
                (0..2000)
                    .map(|_| enc.next_nonce().unwrap())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut all = HashSet::new();
    for h in handles {
        for n in h.join().unwrap() {
            assert!(all.insert(n));
        }
    }
    assert_eq!(all.len(), 8000);
}

#[test]
fn malformed_transform_messages_are_errors_not_panics() {
    let dec = Decryptor::new(Cipher::Aes128Gcm, &hex(SMB311_DEC_KEY)).unwrap();
    let good = hex(SMB311_READ_RESPONSE_TRANSFORMED);
    for n in 0..good.len() {
        let e = dec.decrypt(&good[..n]).unwrap_err();
        assert!(matches!(e, CryptoError::Malformed { .. }), "len {n}: {e}");
    }
    let mut longer = good.clone();
    longer.push(0);
    assert!(matches!(
        dec.decrypt(&longer),
        Err(CryptoError::Malformed { .. })
    ));
    let mut bad_id = good.clone();
    bad_id[0] = 0xfe;
    assert!(matches!(
        dec.decrypt(&bad_id),
        Err(CryptoError::Malformed { .. })
    ));
    let mut bad_flags = good.clone();
    bad_flags[42] = 2;
    assert!(matches!(
        dec.decrypt(&bad_flags),
        Err(CryptoError::Malformed { .. })
    ));
    assert!(matches!(
        Encryptor::new(Cipher::Aes256Ccm, &[0; 16]),
        Err(CryptoError::KeyLength {
            expected: 32,
            got: 16,
            ..
        })
    ));
}
