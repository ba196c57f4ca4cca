//! Dev probe (not a test): authenticate to a real SMB server with rdr-smb's auth and crypto
//! modules and prove the keys right — NEGOTIATE (with 3.1.1 contexts), two SESSION_SETUPs
//! (NTLMv2 in SPNEGO, mechListMIC), verify the signed final response, then a signed or
//! encrypted TREE_CONNECT. Blocking std::net, hand-built messages; the real engine lives
//! elsewhere. Run with `examples/smbauth_probe.sh` (starts a private Samba) or:
//!
//! `cargo run -p rdr-smb --example smbauth_probe -- PORT USER PASS SHARE [dialect] [cipher] [signing] [encrypt]`
//!
//! dialect: 0x0311 (default), 0x0302, 0x0300, 0x0210, 0x0202; cipher: 1..4 (3.1.1 offer, first
//! preferred); signing: 1 = CMAC, 2 = GMAC (3.1.1 offer); encrypt: 1 to encrypt TREE_CONNECT.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rdr_smb::auth::ntlm::NtlmClient;
use rdr_smb::auth::spnego::SpnegoClient;
use rdr_smb::crypto::kdf::{KeyParams, SessionKeys};
use rdr_smb::crypto::preauth::PreauthHash;
use rdr_smb::crypto::{Cipher, Dialect, SigningAlgorithm};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const NEGOTIATE: u16 = 0;
const SESSION_SETUP: u16 = 1;
const TREE_CONNECT: u16 = 3;
const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xc000_0016;

fn header(cmd: u16, mid: u64, session: u64, tree: u32) -> Vec<u8> {
    let mut h = vec![0u8; 64];
    h[..4].copy_from_slice(&[0xfe, b'S', b'M', b'B']);
    h[4..6].copy_from_slice(&64u16.to_le_bytes());
    h[6..8].copy_from_slice(&1u16.to_le_bytes());
    h[12..14].copy_from_slice(&cmd.to_le_bytes());
    h[14..16].copy_from_slice(&64u16.to_le_bytes());
    h[24..32].copy_from_slice(&mid.to_le_bytes());
    h[32..36].copy_from_slice(&0xfeffu32.to_le_bytes());
    h[36..40].copy_from_slice(&tree.to_le_bytes());
    h[40..48].copy_from_slice(&session.to_le_bytes());
    h
}

fn u16at(b: &[u8], at: usize) -> Res<u16> {
    Ok(u16::from_le_bytes(
        b.get(at..at + 2).ok_or("short")?.try_into()?,
    ))
}
fn u32at(b: &[u8], at: usize) -> Res<u32> {
    Ok(u32::from_le_bytes(
        b.get(at..at + 4).ok_or("short")?.try_into()?,
    ))
}
fn u64at(b: &[u8], at: usize) -> Res<u64> {
    Ok(u64::from_le_bytes(
        b.get(at..at + 8).ok_or("short")?.try_into()?,
    ))
}

fn send(s: &mut TcpStream, msg: &[u8]) -> Res<()> {
    let len = u32::try_from(msg.len())?;
    s.write_all(&len.to_be_bytes())?;
    s.write_all(msg)?;
    Ok(())
}

fn recv(s: &mut TcpStream) -> Res<Vec<u8>> {
    loop {
        let mut l = [0u8; 4];
        s.read_exact(&mut l)?;
        let mut m = vec![0u8; u32::from_be_bytes(l) as usize];
        s.read_exact(&mut m)?;
        // Skip interim STATUS_PENDING responses.
        if m.first() == Some(&0xfe) && u32at(&m, 8)? == 0x0000_0103 {
            continue;
        }
        return Ok(m);
    }
}

fn pad8(v: &mut Vec<u8>) {
    while !v.len().is_multiple_of(8) {
        v.push(0);
    }
}

fn main() -> Res<()> {
    let a: Vec<String> = std::env::args().collect();
    let port: u16 = a.get(1).map(|s| s.parse()).transpose()?.unwrap_or(4459);
    let user = a.get(2).cloned().unwrap_or_else(|| "smbtest".into());
    let pass = a.get(3).cloned().unwrap_or_else(|| "smbtest123".into());
    let share = a.get(4).cloned().unwrap_or_else(|| "data".into());
    let want = u16::from_str_radix(
        a.get(5)
            .map(|s| s.trim_start_matches("0x"))
            .unwrap_or("0311"),
        16,
    )?;
    let cipher_pref: u16 = a.get(6).map(|s| s.parse()).transpose()?.unwrap_or(4);
    let signing_pref: u16 = a.get(7).map(|s| s.parse()).transpose()?.unwrap_or(2);
    let force_encrypt = a.get(8).map(|s| s == "1").unwrap_or(false);

    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_nodelay(true)?;
    let mut mid = 0u64;

    // NEGOTIATE
    let dialects: Vec<u16> = [0x0202u16, 0x0210, 0x0300, 0x0302, 0x0311]
        .into_iter()
        .filter(|d| *d <= want)
        .collect();
    let mut req = header(NEGOTIATE, mid, 0, 0);
    req.extend_from_slice(&36u16.to_le_bytes());
    req.extend_from_slice(&(dialects.len() as u16).to_le_bytes());
    req.extend_from_slice(&1u16.to_le_bytes()); // signing enabled
    req.extend_from_slice(&0u16.to_le_bytes());
    req.extend_from_slice(&0x40u32.to_le_bytes()); // CAP_ENCRYPTION (3.0.x)
    req.extend_from_slice(&[0x11; 16]); // ClientGuid
    let ctx_off_at = req.len();
    req.extend_from_slice(&[0; 8]); // context offset/count or ClientStartTime
    for d in &dialects {
        req.extend_from_slice(&d.to_le_bytes());
    }
    if want == 0x0311 {
        pad8(&mut req);
        let off = req.len() as u32;
        req[ctx_off_at..ctx_off_at + 4].copy_from_slice(&off.to_le_bytes());
        req[ctx_off_at + 4..ctx_off_at + 6].copy_from_slice(&3u16.to_le_bytes());
        let mut ciphers = vec![cipher_pref];
        ciphers.extend([4u16, 2, 3, 1].into_iter().filter(|c| *c != cipher_pref));
        let mut signing = vec![signing_pref];
        signing.extend([2u16, 1].into_iter().filter(|c| *c != signing_pref));
        let mut salt = [0u8; 32];
        getrandom::fill(&mut salt)?;
        let mut pre = vec![1, 0, 32, 0, 1, 0];
        pre.extend_from_slice(&salt);
        let mut enc = (ciphers.len() as u16).to_le_bytes().to_vec();
        ciphers
            .iter()
            .for_each(|c| enc.extend_from_slice(&c.to_le_bytes()));
        let mut sig = (signing.len() as u16).to_le_bytes().to_vec();
        signing
            .iter()
            .for_each(|c| sig.extend_from_slice(&c.to_le_bytes()));
        for (i, (ty, data)) in [(1u16, pre), (2, enc), (8, sig)].into_iter().enumerate() {
            if i > 0 {
                pad8(&mut req);
            }
            req.extend_from_slice(&ty.to_le_bytes());
            req.extend_from_slice(&(data.len() as u16).to_le_bytes());
            req.extend_from_slice(&[0; 4]);
            req.extend_from_slice(&data);
        }
    }
    send(&mut s, &req)?;
    let resp = recv(&mut s)?;
    let mut conn_hash = PreauthHash::new();
    conn_hash.update(&[&req]);
    conn_hash.update(&[&resp]);
    mid += 1;
    let status = u32at(&resp, 8)?;
    if status != 0 {
        return Err(format!("NEGOTIATE failed: {status:#010x}").into());
    }
    let dialect = Dialect::from_u16(u16at(&resp, 64 + 4)?).ok_or("unknown dialect")?;
    let caps = u32at(&resp, 64 + 24)?;
    let sb_off = u16at(&resp, 64 + 56)? as usize;
    let sb_len = u16at(&resp, 64 + 58)? as usize;
    let server_init = resp
        .get(sb_off..sb_off + sb_len)
        .ok_or("bad security buffer")?
        .to_vec();
    let mut cipher = if dialect.is_smb3() && dialect != Dialect::Smb311 && caps & 0x40 != 0 {
        Some(Cipher::Aes128Ccm)
    } else {
        None
    };
    let mut signing = SigningAlgorithm::default_for(dialect);
    if dialect == Dialect::Smb311 {
        let mut at = u32at(&resp, 64 + 60)? as usize;
        for i in 0..u16at(&resp, 64 + 6)? {
            if i > 0 {
                at = at.div_ceil(8) * 8;
            }
            let ty = u16at(&resp, at)?;
            let len = u16at(&resp, at + 2)? as usize;
            let data = resp.get(at + 8..at + 8 + len).ok_or("bad context")?;
            match ty {
                2 => cipher = Cipher::from_u16(u16at(data, 2)?),
                8 => signing = SigningAlgorithm::from_u16(u16at(data, 2)?).ok_or("signing alg")?,
                _ => {}
            }
            at += 8 + len;
        }
    }
    println!("negotiated dialect {dialect:?}, cipher {cipher:?}, signing {signing:?}");

    // SESSION_SETUP x2
    let mut spnego = SpnegoClient::new(NtlmClient::new(&user, "", &pass, "RDRPROBE"));
    let mut token = spnego.initial_token(&server_init)?;
    let mut session_id = 0u64;
    let mut hash = conn_hash;
    let final_resp;
    loop {
        let mut req = header(SESSION_SETUP, mid, session_id, 0);
        req.extend_from_slice(&25u16.to_le_bytes());
        req.push(0);
        req.push(1);
        req.extend_from_slice(&0u32.to_le_bytes());
        req.extend_from_slice(&0u32.to_le_bytes());
        req.extend_from_slice(&88u16.to_le_bytes());
        req.extend_from_slice(&(token.len() as u16).to_le_bytes());
        req.extend_from_slice(&0u64.to_le_bytes());
        req.extend_from_slice(&token);
        send(&mut s, &req)?;
        hash.update(&[&req]);
        let resp = recv(&mut s)?;
        mid += 1;
        let status = u32at(&resp, 8)?;
        session_id = u64at(&resp, 40)?;
        let off = u16at(&resp, 64 + 4)? as usize;
        let len = u16at(&resp, 64 + 6)? as usize;
        let buf = resp.get(off..off + len).unwrap_or(&[]).to_vec();
        match status {
            STATUS_MORE_PROCESSING_REQUIRED => {
                hash.update(&[&resp]);
                token = spnego.step(&buf)?.token;
            }
            0 => {
                spnego.finish(&buf)?;
                println!(
                    "SPNEGO finished; server mechListMIC present: {}",
                    !buf.is_empty()
                );
                final_resp = resp;
                break;
            }
            other => return Err(format!("SESSION_SETUP failed: {other:#010x}").into()),
        }
    }
    let session_key = spnego.session_key().ok_or("no session key")?;
    let keys = SessionKeys::derive(&KeyParams {
        dialect,
        full_session_key: &session_key,
        cipher,
        signing,
        preauth_hash: (dialect == Dialect::Smb311).then_some(hash.value()),
    })?;
    let session_flags = u16at(&final_resp, 64 + 2)?;
    if u32at(&final_resp, 16)? & 0x8 != 0 {
        keys.signer.verify(&final_resp, &[])?;
        println!("final SESSION_SETUP response signature verified ({signing:?})");
    } else {
        println!("final SESSION_SETUP response not signed (session flags {session_flags:#x})");
    }

    // TREE_CONNECT, encrypted when the server asks for it (or forced), else signed.
    let path: Vec<u8> = format!("\\\\127.0.0.1\\{share}")
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let mut req = header(TREE_CONNECT, mid, session_id, 0);
    req.extend_from_slice(&9u16.to_le_bytes());
    req.extend_from_slice(&0u16.to_le_bytes());
    req.extend_from_slice(&72u16.to_le_bytes());
    req.extend_from_slice(&(path.len() as u16).to_le_bytes());
    req.extend_from_slice(&path);
    let encrypt = force_encrypt || session_flags & 0x4 != 0;
    let resp = if encrypt {
        let enc = keys.encryptor.as_ref().ok_or("no cipher negotiated")?;
        send(&mut s, &enc.encrypt(session_id, &[&req])?)?;
        let mut r = recv(&mut s)?;
        if r.first() != Some(&0xfd) {
            return Err(format!(
                "expected an encrypted response, got status {:#010x}",
                u32at(&r, 8)?
            )
            .into());
        }
        let dec = keys.decryptor.as_ref().ok_or("no decryptor")?;
        let (_, plain) = dec.decrypt_in_place(&mut r)?;
        println!(
            "TREE_CONNECT sent encrypted; response decrypted ({:?})",
            dec.cipher()
        );
        plain.to_vec()
    } else {
        keys.signer.sign(&mut req, &[])?;
        send(&mut s, &req)?;
        let r = recv(&mut s)?;
        if u32at(&r, 16)? & 0x8 != 0 {
            keys.signer.verify(&r, &[])?;
            println!("TREE_CONNECT signed; response signature verified");
        }
        r
    };
    let status = u32at(&resp, 8)?;
    if status != 0 {
        return Err(format!("TREE_CONNECT failed: {status:#010x}").into());
    }
    println!(
        "OK: tree {:#x} on session {session_id:#x}, share type {}",
        u32at(&resp, 36)?,
        resp.get(66).copied().unwrap_or(0)
    );
    Ok(())
}
