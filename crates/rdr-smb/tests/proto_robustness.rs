//! No decoder may panic on bad bytes: every prefix of every valid message is decoded, and a
//! deterministic pseudo-random corpus of ~200k mutated messages runs through the same routine
//! the cargo-fuzz target uses (`exercise_decoders`), so the property is checked in CI without
//! a nightly toolchain.

use bytes::{Bytes, BytesMut};
use rdr_core::NtStatus;
use rdr_smb::proto::*;

type Decoder = fn(&Bytes) -> bool;

fn msg<M: SmbMessage>(m: &M, status: NtStatus) -> Vec<u8> {
    let mut h = Header::request(M::COMMAND);
    h.flags = HeaderFlags::SERVER_TO_REDIR;
    h.status = status;
    h.message_id = 3;
    let mut buf = BytesMut::new();
    encode_message(&h, m, &mut buf).unwrap();
    buf.to_vec()
}

fn ok<M: SmbMessage>(m: &M) -> Vec<u8> {
    msg(m, NtStatus::STATUS_SUCCESS)
}

fn dec<M: SmbMessage>(b: &Bytes) -> bool {
    M::decode_body(b).is_ok()
}

fn fid() -> FileId {
    FileId {
        persistent: 1,
        volatile: 2,
    }
}

/// Valid messages, with the decoder that must accept them and must reject any strict prefix.
fn samples() -> Vec<(Vec<u8>, Decoder)> {
    let lease = Lease {
        key: [1; 16],
        state: LeaseState::READ_CACHING,
        flags: LeaseFlags::empty(),
        duration: 0,
        v2: Some(LeaseV2 {
            parent_key: [2; 16],
            epoch: 1,
        }),
    };
    let dir = encode_id_both_directory_information(&[
        IdBothDirectoryInformation {
            info: DirectoryInformation {
                name: "file-1.txt".into(),
                ..Default::default()
            },
            ea_size: 0,
            short_name: "FILE-1.TXT".into(),
            file_id: 9,
        },
        IdBothDirectoryInformation {
            info: DirectoryInformation {
                name: "ü".into(),
                ..Default::default()
            },
            ..Default::default()
        },
    ])
    .unwrap();
    let notify = encode_notify_information(&[
        FileNotifyInformation {
            action: NotifyAction::ADDED,
            name: "a".into(),
        },
        FileNotifyInformation {
            action: NotifyAction::REMOVED,
            name: "bb".into(),
        },
    ])
    .unwrap();
    let all = FileAllInformation {
        name: "\\x".into(),
        ..Default::default()
    }
    .encode()
    .unwrap();
    let mut v: Vec<(Vec<u8>, Decoder)> = vec![
        (
            ok(&NegotiateResponse {
                dialect: Dialect::SMB3_1_1,
                security_buffer: Bytes::from_static(b"0123456789abcdef"),
                contexts: vec![
                    NegotiateContext::PreauthIntegrity {
                        hash_algorithms: vec![HASH_SHA512],
                        salt: Bytes::from(vec![7; 32]),
                    },
                    NegotiateContext::Encryption {
                        ciphers: vec![CIPHER_AES128_GCM],
                    },
                    NegotiateContext::Signing {
                        algorithms: vec![SIGNING_AES_CMAC],
                    },
                    NegotiateContext::NetName("srv".into()),
                ],
                ..Default::default()
            }),
            dec::<NegotiateResponse>,
        ),
        (
            ok(&SessionSetupResponse {
                session_flags: SessionFlags::empty(),
                security_buffer: Bytes::from_static(b"token"),
            }),
            dec::<SessionSetupResponse>,
        ),
        (
            ok(&TreeConnectResponse {
                share_type: ShareType::DISK,
                share_flags: ShareFlags::empty(),
                capabilities: ShareCapabilities::empty(),
                maximal_access: 1,
            }),
            dec::<TreeConnectResponse>,
        ),
        (
            ok(&CreateResponse {
                oplock_level: OplockLevel::LEASE,
                flags: 0,
                create_action: CreateAction::OPENED,
                creation_time: FileTime(1),
                last_access_time: FileTime(1),
                last_write_time: FileTime(1),
                change_time: FileTime(1),
                allocation_size: 0,
                end_of_file: 0,
                file_attributes: FileAttributes::empty(),
                file_id: fid(),
                contexts: vec![
                    lease.to_context(),
                    MaximalAccessResponse {
                        query_status: NtStatus::STATUS_SUCCESS,
                        maximal_access: AccessMask::GENERIC_ALL,
                    }
                    .to_context(),
                    OnDiskId {
                        disk_file_id: [3; 16],
                        volume_id: [4; 16],
                    }
                    .to_context(),
                ],
            }),
            dec::<CreateResponse>,
        ),
        (ok(&CloseResponse::default()), dec::<CloseResponse>),
        (
            ok(&ReadResponse {
                data: Bytes::from(vec![0xAB; 100]),
                data_remaining: 0,
                flags: 0,
            }),
            dec::<ReadResponse>,
        ),
        (
            ok(&WriteResponse {
                count: 5,
                remaining: 0,
            }),
            dec::<WriteResponse>,
        ),
        (
            ok(&IoctlResponse {
                ctl_code: fsctl::FSCTL_VALIDATE_NEGOTIATE_INFO,
                file_id: FileId::RELATED,
                input: Bytes::from_static(b"in"),
                output: ValidateNegotiateInfoResponse::default().encode(),
                flags: 0,
            }),
            dec::<IoctlResponse>,
        ),
        (ok(&QueryDirectoryResponse { output: dir }), |b| {
            QueryDirectoryResponse::decode_body(b)
                .and_then(|r| parse_id_both_directory_information(&r.output))
                .is_ok()
        }),
        (ok(&ChangeNotifyResponse { output: notify }), |b| {
            ChangeNotifyResponse::decode_body(b)
                .and_then(|r| parse_notify_information(&r.output))
                .is_ok()
        }),
        (ok(&QueryInfoResponse { output: all }), |b| {
            QueryInfoResponse::decode_body(b)
                .and_then(|r| FileAllInformation::parse(&r.output))
                .is_ok()
        }),
        (
            ok(&OplockBreak {
                oplock_level: OplockLevel::II,
                file_id: fid(),
            }),
            |b| OplockBreakMessage::decode(b).is_ok(),
        ),
        (ok(&LeaseBreakNotification::default()), |b| {
            OplockBreakMessage::decode(b).is_ok()
        }),
        (ok(&LeaseBreakAck::default()), |b| {
            OplockBreakMessage::decode(b).is_ok()
        }),
        (ok(&TreeDisconnectResponse), dec::<TreeDisconnectResponse>),
        (ok(&LogoffResponse), dec::<LogoffResponse>),
        (ok(&EchoResponse), dec::<EchoResponse>),
        (ok(&LockResponse), dec::<LockResponse>),
        (ok(&FlushResponse), dec::<FlushResponse>),
        (ok(&SetInfoResponse), dec::<SetInfoResponse>),
        // Requests decode too (in-memory peers use them).
        (
            ok(&CreateRequest {
                name: "a\\b".into(),
                contexts: vec![lease.to_context(), query_on_disk_id_request()],
                ..Default::default()
            }),
            dec::<CreateRequest>,
        ),
        (
            ok(&WriteRequest {
                data: Bytes::from_static(b"payload"),
                ..Default::default()
            }),
            dec::<WriteRequest>,
        ),
        (
            ok(&LockRequest {
                lock_sequence: 0,
                file_id: fid(),
                locks: vec![LockElement::default(); 2],
            }),
            dec::<LockRequest>,
        ),
    ];
    // An error response with 3.1.1 contexts.
    let er = ErrorResponse {
        contexts: vec![
            ErrorContext {
                error_id: 0,
                data: Bytes::from_static(b"abc"),
            },
            ErrorContext {
                error_id: 1,
                data: Bytes::from_static(b"defgh"),
            },
        ],
        data: Bytes::new(),
    };
    let mut h = Header::request(Command::CREATE);
    h.flags = HeaderFlags::SERVER_TO_REDIR;
    h.status = NtStatus::STATUS_ACCESS_DENIED;
    let mut buf = BytesMut::new();
    h.encode(&mut buf);
    er.encode_body(&mut buf).unwrap();
    v.push((buf.to_vec(), |b| ErrorResponse::decode(b).is_ok()));
    v
}

/// Extra inputs with no single decoder: compounds, framed streams, transform frames.
fn stream_samples() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut b = CompoundBuilder::new();
    b.push(
        &Header::request(Command::CREATE),
        &CreateRequest::default(),
        false,
    )
    .unwrap();
    b.push(
        &Header::request(Command::QUERY_INFO),
        &QueryInfoRequest::file(FileId::RELATED, FileInfoClass::FileAllInformation, 1024),
        true,
    )
    .unwrap();
    b.push(
        &Header::request(Command::CLOSE),
        &CloseRequest::default(),
        true,
    )
    .unwrap();
    let (compound, _) = b.finish();
    out.push(compound.to_vec());
    let mut framed = Vec::new();
    for (m, _) in samples().into_iter().take(4) {
        framed.extend_from_slice(&netbios_header(m.len()).unwrap());
        framed.extend_from_slice(&m);
    }
    out.push(framed);
    let mut t = BytesMut::new();
    TransformHeader {
        original_message_size: 8,
        flags: 1,
        ..Default::default()
    }
    .encode(&mut t);
    t.extend_from_slice(&[9; 8]);
    out.push(t.to_vec());
    out
}

#[test]
fn every_prefix_of_every_valid_message_is_an_error_not_a_panic() {
    for (i, (m, decode)) in samples().into_iter().enumerate() {
        let full = Bytes::from(m.clone());
        assert!(decode(&full), "sample {i} does not decode");
        for n in 0..m.len() {
            let p = Bytes::copy_from_slice(&m[..n]);
            // Messages that end in an optional pad byte still decode without it.
            let pad_only = n + 1 == m.len() && m[n] == 0;
            if !pad_only {
                assert!(!decode(&p), "sample {i}: prefix {n}/{} accepted", m.len());
            }
            exercise_decoders(&p);
        }
    }
    for s in stream_samples() {
        for n in 0..=s.len() {
            exercise_decoders(&s[..n]);
        }
    }
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(rng: &mut Rng, v: &mut Vec<u8>) {
    const INTERESTING: [u32; 14] = [
        0,
        1,
        2,
        7,
        8,
        9,
        16,
        63,
        64,
        65,
        0x7F,
        0xFFFF,
        0x7FFF_FFFF,
        0xFFFF_FFFF,
    ];
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            2 if len >= 2 => {
                let i = rng.below(len - 1) & !1;
                let x = INTERESTING[rng.below(INTERESTING.len())];
                let x = if rng.below(3) == 0 {
                    (len as u32).wrapping_add(x)
                } else {
                    x
                };
                v[i..i + 2].copy_from_slice(&(x as u16).to_le_bytes());
            }
            3 if len >= 4 => {
                let i = rng.below(len - 3) & !3;
                let x = INTERESTING[rng.below(INTERESTING.len())];
                let x = if rng.below(3) == 0 {
                    (len as u32).wrapping_add(x)
                } else {
                    x
                };
                v[i..i + 4].copy_from_slice(&x.to_le_bytes());
            }
            4 => v.truncate(rng.below(len + 1)),
            5 => {
                let n = rng.below(32);
                for _ in 0..n {
                    v.push(rng.next() as u8);
                }
            }
            _ if len > 8 => {
                // Copy a chunk over another place (duplicates structures, shifts offsets).
                let a = rng.below(len);
                let b = rng.below(len);
                let n = rng.below(len - a.max(b)).min(64);
                let chunk = v[a..a + n].to_vec();
                v[b..b + n].copy_from_slice(&chunk);
            }
            _ => {}
        }
    }
}

#[test]
fn two_hundred_thousand_mutated_messages_never_panic() {
    let mut corpus: Vec<Vec<u8>> = samples().into_iter().map(|(m, _)| m).collect();
    corpus.extend(stream_samples());
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut decoded = 0usize;
    for _ in 0..200_000 {
        let base = &corpus[rng.below(corpus.len())];
        let mut v = base.clone();
        mutate(&mut rng, &mut v);
        decoded += exercise_decoders(&v);
    }
    // Mutations leave many messages decodable: the corpus exercises real parsing paths,
    // not just the first length check.
    assert!(decoded > 100_000, "only {decoded} successful decodes");
}
