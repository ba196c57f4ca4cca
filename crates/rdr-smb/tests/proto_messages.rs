//! Byte-level tests for every message: each structure is encoded and compared with bytes
//! assembled field by field from the [MS-SMB2]/[MS-FSCC] layouts, then decoded back.

use std::fmt::Debug;

use bytes::{Bytes, BytesMut};
use rdr_core::NtStatus;
use rdr_smb::proto::*;

/// Hand assembly of little-endian fields, in the order the spec lists them.
#[derive(Default, Clone)]
struct B(Vec<u8>);
impl B {
    fn new() -> Self {
        B(Vec::new())
    }
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn raw(mut self, v: &[u8]) -> Self {
        self.0.extend_from_slice(v);
        self
    }
    fn zeros(mut self, n: usize) -> Self {
        self.0.resize(self.0.len() + n, 0);
        self
    }
    fn utf16(mut self, s: &str) -> Self {
        for u in s.encode_utf16() {
            self.0.extend_from_slice(&u.to_le_bytes());
        }
        self
    }
    fn len(&self) -> usize {
        self.0.len()
    }
}

fn header_bytes(cmd: Command, response: bool) -> Vec<u8> {
    let mut h = Header::request(cmd);
    if response {
        h.flags = HeaderFlags::SERVER_TO_REDIR;
    }
    let mut b = BytesMut::new();
    h.encode(&mut b);
    b.to_vec()
}

fn with_header(cmd: Command, response: bool, body: &B) -> Bytes {
    let mut v = header_bytes(cmd, response);
    v.extend_from_slice(&body.0);
    Bytes::from(v)
}

/// Encodes `m` after a header, compares the body with `expected`, and decodes the hand-made
/// bytes back to `m`.
fn check<M: SmbMessage + PartialEq + Debug>(m: &M, expected: &B) {
    let mut buf = BytesMut::new();
    encode_message(&Header::request(M::COMMAND), m, &mut buf).unwrap();
    assert_eq!(&buf[..4], &SMB2_MAGIC);
    assert_eq!(
        &buf[64..],
        &expected.0[..],
        "{}: encoded body differs from the spec layout",
        M::NAME
    );
    let msg = with_header(M::COMMAND, false, expected);
    assert_eq!(&M::decode_body(&msg).unwrap(), m, "{}: decode", M::NAME);
    // Through Message as well.
    let parsed = Message::parse(msg).unwrap();
    assert_eq!(&parsed.body::<M>().unwrap(), m);
}

fn fid(p: u64, v: u64) -> FileId {
    FileId {
        persistent: p,
        volatile: v,
    }
}

fn fid_bytes(b: B, p: u64, v: u64) -> B {
    b.u64(p).u64(v)
}

#[test]
fn negotiate_request_with_all_dialects_and_contexts() {
    let salt: Vec<u8> = (0u8..32).collect();
    let req = NegotiateRequest {
        security_mode: SecurityMode::SIGNING_ENABLED,
        capabilities: Capabilities::DFS
            | Capabilities::LEASING
            | Capabilities::LARGE_MTU
            | Capabilities::ENCRYPTION,
        client_guid: [0xC1; 16],
        dialects: Dialect::ALL.to_vec(),
        contexts: vec![
            NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![HASH_SHA512],
                salt: Bytes::from(salt.clone()),
            },
            NegotiateContext::Encryption {
                ciphers: vec![
                    CIPHER_AES128_GCM,
                    CIPHER_AES128_CCM,
                    CIPHER_AES256_GCM,
                    CIPHER_AES256_CCM,
                ],
            },
            NegotiateContext::Signing {
                algorithms: vec![SIGNING_AES_GMAC, SIGNING_AES_CMAC, SIGNING_HMAC_SHA256],
            },
        ],
    };
    let e = B::new()
        .u16(36)
        .u16(5) // DialectCount
        .u16(1) // SecurityMode
        .u16(0)
        .u32(0x47)
        .raw(&[0xC1; 16])
        .u32(112) // NegotiateContextOffset = 64 + 48
        .u16(3)
        .u16(0)
        .u16(0x0202)
        .u16(0x0210)
        .u16(0x0300)
        .u16(0x0302)
        .u16(0x0311)
        .zeros(2) // pad 46 -> 48
        // PREAUTH: type 1, len 38
        .u16(1)
        .u16(38)
        .u32(0)
        .u16(1)
        .u16(32)
        .u16(1)
        .raw(&salt)
        .zeros(2) // 46 -> 48
        // ENCRYPTION: type 2, len 10
        .u16(2)
        .u16(10)
        .u32(0)
        .u16(4)
        .u16(2)
        .u16(1)
        .u16(4)
        .u16(3)
        .zeros(6) // 18 -> 24
        // SIGNING: type 8, len 8
        .u16(8)
        .u16(8)
        .u32(0)
        .u16(3)
        .u16(2)
        .u16(1)
        .u16(0);
    check(&req, &e);
}

#[test]
fn negotiate_request_without_311_sends_no_contexts() {
    let req = NegotiateRequest {
        security_mode: SecurityMode::SIGNING_REQUIRED,
        capabilities: Capabilities::empty(),
        client_guid: [0; 16],
        dialects: vec![Dialect::SMB2_0_2, Dialect::SMB2_1],
        contexts: vec![],
    };
    let e = B::new()
        .u16(36)
        .u16(2)
        .u16(2)
        .u16(0)
        .u32(0)
        .zeros(16)
        .u64(0) // ClientStartTime
        .u16(0x0202)
        .u16(0x0210);
    check(&req, &e);
}

fn negotiate_response_bytes() -> B {
    // 3.1.1 response: security buffer of 10 bytes at 128, contexts at 144.
    B::new()
        .u16(65)
        .u16(1) // signing enabled
        .u16(0x0311)
        .u16(5) // NegotiateContextCount
        .raw(&[0x5E; 16])
        .u32(0x07) // DFS|LEASING|LARGE_MTU
        .u32(8 << 20)
        .u32(8 << 20)
        .u32(8 << 20)
        .u64(133_000_000_000_000_000)
        .u64(0)
        .u16(128)
        .u16(10)
        .u32(144)
        .raw(b"SPNEGOTOKN")
        .zeros(6) // 138 -> 144
        .u16(1)
        .u16(38)
        .u32(0)
        .u16(1)
        .u16(32)
        .u16(1)
        .raw(&[0xAB; 32])
        .zeros(2)
        .u16(2)
        .u16(4)
        .u32(0)
        .u16(1)
        .u16(2) // AES-128-GCM
        .zeros(4) // 12 -> 16
        .u16(0x0003) // COMPRESSION: unknown to rdr, kept as Other
        .u16(10)
        .u32(0)
        .u16(1)
        .u16(0)
        .u32(0)
        .u16(0)
        .zeros(6)
        .u16(0x00F7) // an unknown context type
        .u16(3)
        .u32(0)
        .raw(&[1, 2, 3])
        .zeros(5)
        .u16(8)
        .u16(4)
        .u32(0)
        .u16(1)
        .u16(2) // AES-GMAC
}

#[test]
fn negotiate_response_311_with_contexts_and_unknown_ones_skipped() {
    let e = negotiate_response_bytes();
    let msg = with_header(Command::NEGOTIATE, true, &e);
    let r = NegotiateResponse::decode_body(&msg).unwrap();
    assert_eq!(r.dialect, Dialect::SMB3_1_1);
    assert_eq!(r.security_mode, SecurityMode::SIGNING_ENABLED);
    assert_eq!(r.server_guid, [0x5E; 16]);
    assert_eq!(
        r.capabilities,
        Capabilities::DFS | Capabilities::LEASING | Capabilities::LARGE_MTU
    );
    assert_eq!(r.max_read_size, 8 << 20);
    assert_eq!(&r.security_buffer[..], b"SPNEGOTOKN");
    assert_eq!(r.contexts.len(), 5);
    assert_eq!(r.cipher(), Some(CIPHER_AES128_GCM));
    assert_eq!(r.signing_algorithm(), Some(SIGNING_AES_GMAC));
    let (h, salt) = r.preauth().unwrap();
    assert_eq!(h, HASH_SHA512);
    assert_eq!(&salt[..], &[0xAB; 32]);
    assert!(matches!(
        r.contexts[2],
        NegotiateContext::Other {
            context_type: 3,
            ..
        }
    ));
    assert!(matches!(
        &r.contexts[3],
        NegotiateContext::Other { context_type: 0xF7, data } if data[..] == [1, 2, 3]
    ));
    // Re-encoding produces the same bytes.
    let mut buf = BytesMut::new();
    r.encode_body(&mut buf).unwrap();
    assert_eq!(&buf[..], &e.0[..]);
}

#[test]
fn negotiate_response_21_ignores_context_fields() {
    let e = B::new()
        .u16(65)
        .u16(3)
        .u16(0x0210)
        .u16(0xFFFF) // reserved before 3.1.1: must be ignored
        .raw(&[1; 16])
        .u32(0)
        .u32(65536)
        .u32(65536)
        .u32(65536)
        .u64(0)
        .u64(0)
        .u16(0)
        .u16(0)
        .u32(0xFFFF_FFFF); // reserved before 3.1.1
    let r = NegotiateResponse::decode_body(&with_header(Command::NEGOTIATE, true, &e)).unwrap();
    assert_eq!(r.dialect, Dialect::SMB2_1);
    assert!(r.contexts.is_empty());
    assert!(r.security_buffer.is_empty());
}

#[test]
fn negotiate_response_rejects_security_buffer_outside_the_message() {
    let mut e = negotiate_response_bytes();
    e.0[56..58].copy_from_slice(&500u16.to_le_bytes()); // SecurityBufferOffset
    let msg = with_header(Command::NEGOTIATE, true, &e);
    assert!(matches!(
        NegotiateResponse::decode_body(&msg),
        Err(ProtoError::OutOfBounds {
            field: "SecurityBuffer",
            ..
        })
    ));
}

#[test]
fn session_setup_request_and_response() {
    let req = SessionSetupRequest {
        flags: 0,
        security_mode: SecurityMode::SIGNING_ENABLED,
        capabilities: Capabilities::DFS,
        channel: 0,
        previous_session_id: 0x77,
        security_buffer: Bytes::from_static(b"NTLMSSP\0\x01"),
    };
    let e = B::new()
        .u16(25)
        .u8(0)
        .u8(1)
        .u32(1)
        .u32(0)
        .u16(88)
        .u16(9)
        .u64(0x77)
        .raw(b"NTLMSSP\0\x01");
    check(&req, &e);

    let rsp = SessionSetupResponse {
        session_flags: SessionFlags::ENCRYPT_DATA,
        security_buffer: Bytes::from_static(b"tok"),
    };
    let e = B::new().u16(9).u16(4).u16(72).u16(3).raw(b"tok");
    check(&rsp, &e);
    // Final response with an empty token: one pad byte.
    let rsp = SessionSetupResponse {
        session_flags: SessionFlags::empty(),
        security_buffer: Bytes::new(),
    };
    check(&rsp, &B::new().u16(9).u16(0).u16(0).u16(0).u8(0));
}

#[test]
fn fixed_four_byte_messages() {
    let e = B::new().u16(4).u16(0);
    check(&LogoffRequest, &e);
    check(&LogoffResponse, &e);
    check(&TreeDisconnectRequest, &e);
    check(&TreeDisconnectResponse, &e);
    check(&EchoRequest, &e);
    check(&EchoResponse, &e);
    check(&CancelRequest, &e);
    check(&FlushResponse, &e);
    check(&LockResponse, &e);
    check(&SetInfoResponse, &B::new().u16(2));
}

#[test]
fn tree_connect_request_and_response() {
    let req = TreeConnectRequest {
        flags: TreeConnectFlags::empty(),
        path: "\\\\127.0.0.1\\data".into(),
    };
    let e = B::new()
        .u16(9)
        .u16(0)
        .u16(72)
        .u16(32)
        .utf16("\\\\127.0.0.1\\data");
    check(&req, &e);

    let rsp = TreeConnectResponse {
        share_type: ShareType::DISK,
        share_flags: ShareFlags::ENCRYPT_DATA | ShareFlags::NO_CACHING,
        capabilities: ShareCapabilities::CONTINUOUS_AVAILABILITY,
        maximal_access: 0x001F_01FF,
    };
    let e = B::new()
        .u16(16)
        .u8(1)
        .u8(0)
        .u32(0x8030)
        .u32(0x10)
        .u32(0x001F_01FF);
    check(&rsp, &e);
    assert!(rsp.share_flags.contains(ShareFlags::ENCRYPT_DATA));
}

fn lease_v2() -> Lease {
    Lease {
        key: [0x4B; 16],
        state: LeaseState::READ_CACHING | LeaseState::HANDLE_CACHING | LeaseState::WRITE_CACHING,
        flags: LeaseFlags::PARENT_LEASE_KEY_SET,
        duration: 0,
        v2: Some(LeaseV2 {
            parent_key: [0x50; 16],
            epoch: 3,
        }),
    }
}

#[test]
fn create_request_with_lease_v2_durable_v2_mxac_qfid() {
    let dh2q = DurableV2 {
        timeout: 60_000,
        flags: 0,
        create_guid: [0x9A; 16],
    };
    let req = CreateRequest {
        requested_oplock_level: OplockLevel::LEASE,
        impersonation_level: ImpersonationLevel::IMPERSONATION,
        smb_create_flags: 0,
        desired_access: AccessMask::GENERIC_READ | AccessMask::GENERIC_WRITE,
        file_attributes: FileAttributes::NORMAL,
        share_access: ShareAccess::READ | ShareAccess::WRITE | ShareAccess::DELETE,
        create_disposition: CreateDisposition::OPEN_IF,
        create_options: CreateOptions::NON_DIRECTORY_FILE,
        name: "dir\\f.txt".into(),
        contexts: vec![
            lease_v2().to_context(),
            dh2q.to_request_context(),
            maximal_access_request(None),
            query_on_disk_id_request(),
        ],
    };
    let e = B::new()
        .u16(57)
        .u8(0)
        .u8(0xFF)
        .u32(2)
        .u64(0)
        .u64(0)
        .u32(0xC000_0000)
        .u32(0x80)
        .u32(7)
        .u32(3)
        .u32(0x40)
        .u16(120)
        .u16(18)
        .u32(144) // 64 + 56 + 18 = 138 -> 144
        .u32(180)
        .utf16("dir\\f.txt")
        .zeros(6)
        // RqLs v2: Next 80, name at 16, data at 24 (52 bytes)
        .u32(80)
        .u16(16)
        .u16(4)
        .u16(0)
        .u16(24)
        .u32(52)
        .raw(b"RqLs")
        .zeros(4)
        .raw(&[0x4B; 16])
        .u32(7)
        .u32(4)
        .u64(0)
        .raw(&[0x50; 16])
        .u16(3)
        .u16(0)
        .zeros(4) // 76 -> 80
        // DH2Q: Next 56, data 32 bytes
        .u32(56)
        .u16(16)
        .u16(4)
        .u16(0)
        .u16(24)
        .u32(32)
        .raw(b"DH2Q")
        .zeros(4)
        .u32(60_000)
        .u32(0)
        .u64(0)
        .raw(&[0x9A; 16])
        // MxAc: no data, Next 24
        .u32(24)
        .u16(16)
        .u16(4)
        .u16(0)
        .u16(0)
        .u32(0)
        .raw(b"MxAc")
        .zeros(4)
        // QFid: last
        .u32(0)
        .u16(16)
        .u16(4)
        .u16(0)
        .u16(0)
        .u32(0)
        .raw(b"QFid");
    check(&req, &e);
    let ctx = decode_create_contexts(&Bytes::from(e.0[80..].to_vec())).unwrap();
    assert_eq!(Lease::parse(&ctx[0].data).unwrap(), lease_v2());
    assert_eq!(DurableV2::parse_request(&ctx[1].data).unwrap(), dh2q);
}

#[test]
fn create_request_for_the_share_root_has_a_pad_byte() {
    let req = CreateRequest {
        desired_access: AccessMask::FILE_READ_ATTRIBUTES,
        create_options: CreateOptions::DIRECTORY_FILE,
        ..Default::default()
    };
    let e = B::new()
        .u16(57)
        .u8(0)
        .u8(0)
        .u32(2)
        .u64(0)
        .u64(0)
        .u32(0x80)
        .u32(0)
        .u32(7)
        .u32(1)
        .u32(1)
        .u16(120)
        .u16(0)
        .u32(0)
        .u32(0)
        .u8(0);
    check(&req, &e);
}

#[test]
fn create_response_with_lease_mxac_qfid_durable_contexts() {
    let lease = Lease {
        key: [0x4B; 16],
        state: LeaseState::READ_CACHING | LeaseState::HANDLE_CACHING,
        flags: LeaseFlags::empty(),
        duration: 0,
        v2: None,
    };
    let rsp = CreateResponse {
        oplock_level: OplockLevel::LEASE,
        flags: 0,
        create_action: CreateAction::CREATED,
        creation_time: FileTime(1),
        last_access_time: FileTime(2),
        last_write_time: FileTime(3),
        change_time: FileTime(4),
        allocation_size: 4096,
        end_of_file: 10,
        file_attributes: FileAttributes::ARCHIVE,
        file_id: fid(0x11, 0x22),
        contexts: vec![
            lease.to_context(),
            MaximalAccessResponse {
                query_status: NtStatus::STATUS_SUCCESS,
                maximal_access: AccessMask::from_bits_retain(0x001F_01FF),
            }
            .to_context(),
            OnDiskId {
                disk_file_id: [0xD1; 16],
                volume_id: [0x70; 16],
            }
            .to_context(),
            DurableV2 {
                timeout: 30_000,
                flags: 0,
                create_guid: [0; 16],
            }
            .to_response_context(),
            CreateContext::new(CTX_DURABLE, Bytes::from_static(&[0; 8])),
        ],
    };
    let ctx = |next: u32, name: &[u8], data: &[u8]| {
        let mut b = B::new()
            .u32(next)
            .u16(16)
            .u16(4)
            .u16(0)
            .u16(24)
            .u32(data.len() as u32)
            .raw(name)
            .zeros(4)
            .raw(data);
        while next != 0 && !b.len().is_multiple_of(8) {
            b = b.u8(0);
        }
        b
    };
    let lease_data = B::new().raw(&[0x4B; 16]).u32(3).u32(0).u64(0);
    let mxac = B::new().u32(0).u32(0x001F_01FF);
    let qfid = B::new().raw(&[0xD1; 16]).raw(&[0x70; 16]);
    let dh2q = B::new().u32(30_000).u32(0);
    let list = B::new()
        .raw(&ctx(56, b"RqLs", &lease_data.0).0)
        .raw(&ctx(32, b"MxAc", &mxac.0).0)
        .raw(&ctx(56, b"QFid", &qfid.0).0)
        .raw(&ctx(32, b"DH2Q", &dh2q.0).0)
        .raw(&ctx(0, b"DHnQ", &[0; 8]).0);
    let e = B::new()
        .u16(89)
        .u8(0xFF)
        .u8(0)
        .u32(2)
        .u64(1)
        .u64(2)
        .u64(3)
        .u64(4)
        .u64(4096)
        .u64(10)
        .u32(0x20)
        .u32(0)
        .u64(0x11)
        .u64(0x22)
        .u32(152)
        .u32(list.len() as u32)
        .raw(&list.0);
    check(&rsp, &e);
    assert_eq!(rsp.lease().unwrap(), Some(lease));
    assert_eq!(
        rsp.maximal_access().unwrap().unwrap().maximal_access.bits(),
        0x001F_01FF
    );
    assert_eq!(rsp.on_disk_id().unwrap().unwrap().disk_file_id, [0xD1; 16]);
    assert_eq!(rsp.durable_v2().unwrap().unwrap().timeout, 30_000);
    assert!(rsp.durable_v1());
}

#[test]
fn create_context_list_rejects_out_of_bounds_name_data_and_next() {
    let good = B::new()
        .u32(0)
        .u16(16)
        .u16(4)
        .u16(0)
        .u16(24)
        .u32(8)
        .raw(b"MxAc")
        .zeros(4)
        .u32(0)
        .u32(1);
    assert_eq!(
        decode_create_contexts(&Bytes::from(good.0.clone()))
            .unwrap()
            .len(),
        1
    );
    let patch = |at: usize, v: &[u8]| {
        let mut b = good.0.clone();
        b[at..at + v.len()].copy_from_slice(v);
        Bytes::from(b)
    };
    assert!(decode_create_contexts(&patch(0, &8u32.to_le_bytes())).is_err()); // Next too small
    assert!(decode_create_contexts(&patch(0, &64u32.to_le_bytes())).is_err()); // Next past end
    assert!(decode_create_contexts(&patch(4, &30u16.to_le_bytes())).is_err()); // NameOffset
    assert!(decode_create_contexts(&patch(10, &30u16.to_le_bytes())).is_err()); // DataOffset
    assert!(decode_create_contexts(&patch(12, &9u32.to_le_bytes())).is_err()); // DataLength
}

#[test]
fn close_with_postquery_attrib_and_flush() {
    let req = CloseRequest {
        flags: CLOSE_FLAG_POSTQUERY_ATTRIB,
        file_id: fid(1, 2),
    };
    check(&req, &fid_bytes(B::new().u16(24).u16(1).u32(0), 1, 2));
    let rsp = CloseResponse {
        flags: CLOSE_FLAG_POSTQUERY_ATTRIB,
        creation_time: FileTime(10),
        last_access_time: FileTime(11),
        last_write_time: FileTime(12),
        change_time: FileTime(13),
        allocation_size: 8192,
        end_of_file: 5000,
        file_attributes: FileAttributes::ARCHIVE,
    };
    let e = B::new()
        .u16(60)
        .u16(1)
        .u32(0)
        .u64(10)
        .u64(11)
        .u64(12)
        .u64(13)
        .u64(8192)
        .u64(5000)
        .u32(0x20);
    check(&rsp, &e);
    let fl = FlushRequest { file_id: fid(3, 4) };
    check(&fl, &fid_bytes(B::new().u16(24).u16(0).u32(0), 3, 4));
}

#[test]
fn read_request_and_zero_copy_response() {
    let req = ReadRequest {
        padding: 0x50,
        flags: 0,
        length: 65536,
        offset: 1 << 20,
        file_id: fid(5, 6),
        minimum_count: 0,
        channel: 0,
        remaining_bytes: 0,
    };
    let e = fid_bytes(
        B::new().u16(49).u8(0x50).u8(0).u32(65536).u64(1 << 20),
        5,
        6,
    )
    .u32(0)
    .u32(0)
    .u32(0)
    .u16(0)
    .u16(0)
    .u8(0);
    check(&req, &e);

    let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    let e = B::new()
        .u16(17)
        .u8(0x50)
        .u8(0)
        .u32(1000)
        .u32(0)
        .u32(0)
        .raw(&payload);
    let msg = with_header(Command::READ, true, &e);
    let rsp = ReadResponse::decode_body(&msg).unwrap();
    assert_eq!(&rsp.data[..], &payload[..]);
    // Zero copy: the data points into the received buffer, at offset 0x50.
    assert_eq!(rsp.data.as_ptr(), msg[0x50..].as_ptr());
    check(
        &ReadResponse {
            data: Bytes::from(payload),
            data_remaining: 0,
            flags: 0,
        },
        &e,
    );
    // DataLength past the end, and DataOffset inside the fixed part, are errors.
    let mut bad = e.clone();
    bad.0[4..8].copy_from_slice(&1001u32.to_le_bytes());
    assert!(ReadResponse::decode_body(&with_header(Command::READ, true, &bad)).is_err());
    let mut bad = e.clone();
    bad.0[2] = 0x40;
    assert!(ReadResponse::decode_body(&with_header(Command::READ, true, &bad)).is_err());
}

#[test]
fn write_request_keeps_payload_separate_for_vectored_send() {
    let payload = Bytes::from(vec![0xEE; 300]);
    let req = WriteRequest {
        offset: 4096,
        file_id: fid(7, 8),
        channel: 0,
        remaining_bytes: 0,
        flags: WRITE_FLAG_WRITE_THROUGH,
        data: payload.clone(),
    };
    let head = fid_bytes(B::new().u16(49).u16(0x70).u32(300).u64(4096), 7, 8)
        .u32(0)
        .u32(0)
        .u16(0)
        .u16(0)
        .u32(1);
    // The head alone (what the engine writes before the payload in a vectored write).
    let mut h = BytesMut::new();
    req.encode_head(&mut h).unwrap();
    assert_eq!(&h[..], &head.0[..]);
    // The payload is the very same buffer, not a copy.
    assert_eq!(req.data.as_ptr(), payload.as_ptr());
    // Header + head + payload in a frame: the NetBIOS length counts the payload.
    let mut frame = BytesMut::new();
    let p = begin_frame(&mut frame);
    Header::request(Command::WRITE).encode(&mut frame);
    req.encode_head(&mut frame).unwrap();
    finish_frame(&mut frame, p, req.data.len()).unwrap();
    assert_eq!(
        decode_netbios_header(frame[..4].try_into().unwrap()).unwrap(),
        64 + 48 + 300
    );
    // The appending encoder gives head + payload.
    check(&req, &head.clone().raw(&payload));
    // WRITE response.
    let rsp = WriteResponse {
        count: 300,
        remaining: 0,
    };
    check(&rsp, &B::new().u16(17).u16(0).u32(300).u32(0).u16(0).u16(0));
}

#[test]
fn lock_request_with_several_elements() {
    let req = LockRequest {
        lock_sequence: 0,
        file_id: fid(9, 10),
        locks: vec![
            LockElement {
                offset: 0,
                length: 100,
                flags: LockFlags::EXCLUSIVE | LockFlags::FAIL_IMMEDIATELY,
            },
            LockElement {
                offset: 200,
                length: 50,
                flags: LockFlags::SHARED,
            },
            LockElement {
                offset: 0,
                length: 100,
                flags: LockFlags::UNLOCK,
            },
        ],
    };
    let e = fid_bytes(B::new().u16(48).u16(3).u32(0), 9, 10)
        .u64(0)
        .u64(100)
        .u32(0x12)
        .u32(0)
        .u64(200)
        .u64(50)
        .u32(1)
        .u32(0)
        .u64(0)
        .u64(100)
        .u32(4)
        .u32(0);
    check(&req, &e);
    let empty = LockRequest {
        locks: vec![],
        ..req
    };
    assert!(
        encode_message(
            &Header::request(Command::LOCK),
            &empty,
            &mut BytesMut::new()
        )
        .is_err()
    );
}

#[test]
fn ioctl_validate_negotiate_info_request_and_response() {
    let vni = ValidateNegotiateInfoRequest {
        capabilities: Capabilities::DFS | Capabilities::LEASING,
        guid: [0xC1; 16],
        security_mode: SecurityMode::SIGNING_ENABLED,
        dialects: vec![Dialect::SMB3_0, Dialect::SMB3_0_2],
    };
    let input = B::new()
        .u32(3)
        .raw(&[0xC1; 16])
        .u16(1)
        .u16(2)
        .u16(0x0300)
        .u16(0x0302);
    assert_eq!(&vni.encode().unwrap()[..], &input.0[..]);
    assert_eq!(ValidateNegotiateInfoRequest::parse(&input.0).unwrap(), vni);
    let req = vni.to_ioctl().unwrap();
    let e = fid_bytes(B::new().u16(57).u16(0).u32(0x0014_0204), u64::MAX, u64::MAX)
        .u32(120)
        .u32(28)
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(24)
        .u32(1)
        .u32(0)
        .raw(&input.0);
    check(&req, &e);

    let out = ValidateNegotiateInfoResponse {
        capabilities: Capabilities::LEASING,
        guid: [0x5E; 16],
        security_mode: SecurityMode::SIGNING_ENABLED,
        dialect: Dialect::SMB3_0_2,
    };
    let out_bytes = B::new().u32(2).raw(&[0x5E; 16]).u16(1).u16(0x0302);
    assert_eq!(&out.encode()[..], &out_bytes.0[..]);
    let rsp = IoctlResponse {
        ctl_code: fsctl::FSCTL_VALIDATE_NEGOTIATE_INFO,
        file_id: FileId::RELATED,
        input: Bytes::new(),
        output: out.encode(),
        flags: 0,
    };
    let e = fid_bytes(B::new().u16(49).u16(0).u32(0x0014_0204), u64::MAX, u64::MAX)
        .u32(112)
        .u32(0)
        .u32(112)
        .u32(24)
        .u32(0)
        .u32(0)
        .raw(&out_bytes.0);
    check(&rsp, &e);
    let d = IoctlResponse::decode_body(&with_header(Command::IOCTL, true, &e)).unwrap();
    assert_eq!(
        ValidateNegotiateInfoResponse::parse(&d.output).unwrap(),
        out
    );
}

#[test]
fn ioctl_server_side_copy_resume_key_and_copychunk() {
    // FSCTL_SRV_REQUEST_RESUME_KEY: no input, 32 bytes of output allowed.
    let fid = FileId {
        persistent: 7,
        volatile: 9,
    };
    let req = resume_key_request(fid);
    let e = fid_bytes(B::new().u16(57).u16(0).u32(0x0014_0078), 7, 9)
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(32)
        .u32(1)
        .u32(0);
    check(&req, &e);
    // Its output: the 24-byte key, then a context the client ignores.
    let key: Vec<u8> = (1u8..=24).collect();
    let out = B::new().raw(&key).u32(4).u32(0);
    assert_eq!(&parse_resume_key(&out.0).unwrap()[..], &key[..]);
    assert!(
        parse_resume_key(&key[..23]).is_err(),
        "a short key is refused"
    );

    // SRV_COPYCHUNK_COPY on the destination: key, count, reserved, then 24 bytes per chunk.
    let mut source_key = [0u8; RESUME_KEY_LEN];
    source_key.copy_from_slice(&key);
    let copy = CopyChunkCopy {
        source_key,
        chunks: vec![
            CopyChunk {
                source_offset: 0,
                target_offset: 1 << 20,
                length: 1 << 20,
            },
            CopyChunk {
                source_offset: 1 << 20,
                target_offset: 2 << 20,
                length: 5,
            },
        ],
    };
    let input = B::new()
        .raw(&key)
        .u32(2)
        .u32(0)
        .u64(0)
        .u64(1 << 20)
        .u32(1 << 20)
        .u32(0)
        .u64(1 << 20)
        .u64(2 << 20)
        .u32(5)
        .u32(0);
    assert_eq!(&copy.encode().unwrap()[..], &input.0[..]);
    assert_eq!(CopyChunkCopy::parse(&input.0).unwrap(), copy);
    // A count that claims more chunks than the bytes hold is an error, not a huge allocation.
    let lying = B::new().raw(&key).u32(u32::MAX).u32(0).u64(0);
    assert!(CopyChunkCopy::parse(&lying.0).is_err());
    let req = copy.to_ioctl(fid).unwrap();
    assert_eq!(
        req.ctl_code, 0x0014_80F2,
        "COPYCHUNK_WRITE: write access suffices"
    );
    let e = fid_bytes(B::new().u16(57).u16(0).u32(0x0014_80F2), 7, 9)
        .u32(120)
        .u32(input.len() as u32)
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(12)
        .u32(1)
        .u32(0)
        .raw(&input.0);
    check(&req, &e);

    // SRV_COPYCHUNK_RESPONSE: three counts.
    let rsp = CopyChunkResponse {
        chunks_written: 2,
        chunk_bytes_written: 0,
        total_bytes_written: (1 << 20) + 5,
    };
    let out = B::new().u32(2).u32(0).u32((1 << 20) + 5);
    assert_eq!(&rsp.encode()[..], &out.0[..]);
    assert_eq!(CopyChunkResponse::parse(&out.0).unwrap(), rsp);
    assert!(CopyChunkResponse::parse(&out.0[..11]).is_err());
}

fn id_both_entry(next: u32, name: &str, short: &str, file_id: u64, size: u64) -> B {
    let mut b = B::new()
        .u32(next)
        .u32(0)
        .u64(100)
        .u64(101)
        .u64(102)
        .u64(103)
        .u64(size)
        .u64(4096)
        .u32(0x20)
        .u32((name.encode_utf16().count() * 2) as u32)
        .u32(0)
        .u8((short.encode_utf16().count() * 2) as u8)
        .u8(0)
        .utf16(short);
    b = b
        .zeros(24 - short.encode_utf16().count() * 2)
        .u16(0)
        .u64(file_id)
        .utf16(name);
    b
}

#[test]
fn query_directory_request_and_id_both_directory_entries() {
    let req = QueryDirectoryRequest {
        info_class: FileInfoClass::FileIdBothDirectoryInformation,
        flags: QueryDirectoryFlags::RESTART_SCANS,
        file_index: 0,
        file_id: fid(1, 1),
        pattern: "*".into(),
        output_buffer_length: 65536,
    };
    let e = fid_bytes(B::new().u16(33).u8(37).u8(1).u32(0), 1, 1)
        .u16(96)
        .u16(2)
        .u32(65536)
        .utf16("*");
    check(&req, &e);

    // Two entries: "a.txt" (104 + 10 = 114 -> next 120) and "sub" (last).
    let e1 = id_both_entry(120, "a.txt", "A.TXT", 555, 10);
    let mut out = e1.0.clone();
    out.resize(120, 0);
    out.extend_from_slice(&id_both_entry(0, "sub", "", 556, 0).0);
    let body = B::new().u16(9).u16(72).u32(out.len() as u32).raw(&out);
    let msg = with_header(Command::QUERY_DIRECTORY, true, &body);
    let rsp = QueryDirectoryResponse::decode_body(&msg).unwrap();
    let entries = parse_id_both_directory_information(&rsp.output).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].info.name, "a.txt");
    assert_eq!(entries[0].short_name, "A.TXT");
    assert_eq!(entries[0].file_id, 555);
    assert_eq!(entries[0].info.end_of_file, 10);
    assert_eq!(entries[0].info.last_write_time, FileTime(102));
    assert_eq!(entries[1].info.name, "sub");
    assert_eq!(entries[1].file_id, 556);
    // Encoding the entries gives the same chain.
    assert_eq!(
        &encode_id_both_directory_information(&entries).unwrap()[..],
        &out[..]
    );
    // A NextEntryOffset pointing past the end, or into the entry, is an error.
    let mut bad = out.clone();
    bad[0..4].copy_from_slice(&4000u32.to_le_bytes());
    assert!(parse_id_both_directory_information(&Bytes::from(bad)).is_err());
    let mut bad = out.clone();
    bad[0..4].copy_from_slice(&8u32.to_le_bytes());
    assert!(parse_id_both_directory_information(&Bytes::from(bad)).is_err());
    // A FileNameLength beyond the entry is an error.
    let mut bad = out.clone();
    bad[60..64].copy_from_slice(&200u32.to_le_bytes());
    assert!(parse_id_both_directory_information(&Bytes::from(bad)).is_err());
}

#[test]
fn file_directory_information_entries() {
    let entry = |next: u32, name: &str| {
        B::new()
            .u32(next)
            .u32(7)
            .u64(1)
            .u64(2)
            .u64(3)
            .u64(4)
            .u64(5)
            .u64(6)
            .u32(0x10)
            .u32((name.len() * 2) as u32)
            .utf16(name)
    };
    let mut out = entry(72, ".").0; // 64 + 2 = 66 -> 72
    out.resize(72, 0);
    out.extend_from_slice(&entry(0, "..").0);
    let v = parse_directory_information(&Bytes::from(out.clone())).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].name, ".");
    assert_eq!(v[1].name, "..");
    assert_eq!(v[1].file_index, 7);
    assert_eq!(v[1].end_of_file, 5);
    assert_eq!(v[1].allocation_size, 6);
    assert_eq!(v[1].file_attributes, FileAttributes::DIRECTORY);
    assert_eq!(&encode_directory_information(&v).unwrap()[..], &out[..]);
}

#[test]
fn change_notify_request_and_notify_information() {
    let req = ChangeNotifyRequest {
        flags: WATCH_TREE,
        output_buffer_length: 4096,
        file_id: fid(2, 3),
        completion_filter: CompletionFilter::FILE_NAME | CompletionFilter::DIR_NAME,
    };
    check(
        &req,
        &fid_bytes(B::new().u16(32).u16(1).u32(4096), 2, 3)
            .u32(3)
            .u32(0),
    );
    // "old" renamed to "new": entry 1 = 12 + 6 = 18 -> next 20.
    let out = B::new()
        .u32(20)
        .u32(4)
        .u32(6)
        .utf16("old")
        .zeros(2)
        .u32(0)
        .u32(5)
        .u32(6)
        .utf16("new");
    let body = B::new().u16(9).u16(72).u32(out.len() as u32).raw(&out.0);
    let rsp = ChangeNotifyResponse::decode_body(&with_header(Command::CHANGE_NOTIFY, true, &body))
        .unwrap();
    let v = parse_notify_information(&rsp.output).unwrap();
    assert_eq!(
        v,
        vec![
            FileNotifyInformation {
                action: NotifyAction::RENAMED_OLD_NAME,
                name: "old".into()
            },
            FileNotifyInformation {
                action: NotifyAction::RENAMED_NEW_NAME,
                name: "new".into()
            },
        ]
    );
    assert_eq!(&encode_notify_information(&v).unwrap()[..], &out.0[..]);
}

#[test]
fn query_info_and_set_info_requests_and_responses() {
    let req = QueryInfoRequest::file(fid(4, 5), FileInfoClass::FileAllInformation, 4096);
    let e = fid_bytes(
        B::new()
            .u16(41)
            .u8(1)
            .u8(18)
            .u32(4096)
            .u16(0)
            .u16(0)
            .u32(0)
            .u32(0)
            .u32(0),
        4,
        5,
    )
    .u8(0);
    check(&req, &e);
    let req = QueryInfoRequest::fs(fid(4, 5), FsInfoClass::FileFsFullSizeInformation, 32);
    assert_eq!(req.info_type, InfoType::FILESYSTEM);
    assert_eq!(req.info_class, 7);

    let out = FileStandardInformation {
        allocation_size: 4096,
        end_of_file: 3,
        number_of_links: 1,
        delete_pending: false,
        directory: false,
    }
    .encode();
    let rsp = QueryInfoResponse {
        output: out.clone(),
    };
    check(&rsp, &B::new().u16(9).u16(72).u32(24).raw(&out));

    let rename = FileRenameInformation {
        replace_if_exists: true,
        root_directory: 0,
        name: "x\\y".into(),
    }
    .encode()
    .unwrap();
    let set = SetInfoRequest::file(
        fid(6, 7),
        FileInfoClass::FileRenameInformation,
        rename.clone(),
    );
    let e = fid_bytes(
        B::new().u16(33).u8(1).u8(10).u32(26).u16(96).u16(0).u32(0),
        6,
        7,
    )
    .raw(&rename);
    check(&set, &e);
}

#[test]
fn file_information_classes_match_ms_fscc_layouts() {
    let basic = FileBasicInformation {
        creation_time: FileTime(1),
        last_access_time: FileTime(2),
        last_write_time: FileTime(3),
        change_time: FileTime(4),
        file_attributes: FileAttributes::READONLY,
    };
    let b = B::new().u64(1).u64(2).u64(3).u64(4).u32(1).u32(0);
    assert_eq!(&basic.encode()[..], &b.0[..]);
    assert_eq!(FileBasicInformation::parse(&b.0).unwrap(), basic);

    let std_ = FileStandardInformation {
        allocation_size: 8192,
        end_of_file: 5000,
        number_of_links: 2,
        delete_pending: true,
        directory: false,
    };
    let s = B::new().u64(8192).u64(5000).u32(2).u8(1).u8(0).u16(0);
    assert_eq!(&std_.encode()[..], &s.0[..]);
    assert_eq!(FileStandardInformation::parse(&s.0).unwrap(), std_);

    let all = B::new()
        .raw(&b.0)
        .raw(&s.0)
        .u64(0xABCDEF) // IndexNumber
        .u32(0) // EaSize
        .u32(0x0012_019F) // AccessFlags
        .u64(0) // CurrentByteOffset
        .u32(0) // Mode
        .u32(0) // AlignmentRequirement
        .u32(10)
        .utf16("\\a\\b1");
    let a = FileAllInformation::parse(&all.0).unwrap();
    assert_eq!(a.basic, basic);
    assert_eq!(a.standard, std_);
    assert_eq!(a.index_number, 0xABCDEF);
    assert_eq!(a.access_flags, 0x0012_019F);
    assert_eq!(a.name, "\\a\\b1");
    assert_eq!(&a.encode().unwrap()[..], &all.0[..]);
    assert!(FileAllInformation::parse(&all.0[..99]).is_err());

    let eof = FileEndOfFileInformation { end_of_file: 12345 };
    assert_eq!(&eof.encode()[..], &B::new().u64(12345).0[..]);
    assert_eq!(FileEndOfFileInformation::parse(&eof.encode()).unwrap(), eof);

    let ren = FileRenameInformation {
        replace_if_exists: false,
        root_directory: 0,
        name: "new name".into(),
    };
    let r = B::new().u8(0).zeros(7).u64(0).u32(16).utf16("new name");
    assert_eq!(&ren.encode().unwrap()[..], &r.0[..]);
    assert_eq!(FileRenameInformation::parse(&r.0).unwrap(), ren);

    let disp = FileDispositionInformation {
        delete_pending: true,
    };
    assert_eq!(&disp.encode()[..], &[1]);
    assert_eq!(FileDispositionInformation::parse(&[1]).unwrap(), disp);

    let net = FileNetworkOpenInformation {
        creation_time: FileTime(1),
        last_access_time: FileTime(2),
        last_write_time: FileTime(3),
        change_time: FileTime(4),
        allocation_size: 4096,
        end_of_file: 100,
        file_attributes: FileAttributes::ARCHIVE,
    };
    let n = B::new()
        .u64(1)
        .u64(2)
        .u64(3)
        .u64(4)
        .u64(4096)
        .u64(100)
        .u32(0x20)
        .u32(0);
    assert_eq!(&net.encode()[..], &n.0[..]);
    assert_eq!(FileNetworkOpenInformation::parse(&n.0).unwrap(), net);

    let full = FileFsFullSizeInformation {
        total_allocation_units: 1000,
        caller_available_allocation_units: 400,
        actual_available_allocation_units: 500,
        sectors_per_allocation_unit: 8,
        bytes_per_sector: 512,
    };
    let f = B::new().u64(1000).u64(400).u64(500).u32(8).u32(512);
    assert_eq!(&full.encode()[..], &f.0[..]);
    assert_eq!(FileFsFullSizeInformation::parse(&f.0).unwrap(), full);

    let size = FileFsSizeInformation {
        total_allocation_units: 1000,
        available_allocation_units: 500,
        sectors_per_allocation_unit: 8,
        bytes_per_sector: 512,
    };
    let z = B::new().u64(1000).u64(500).u32(8).u32(512);
    assert_eq!(&size.encode()[..], &z.0[..]);
    assert_eq!(FileFsSizeInformation::parse(&z.0).unwrap(), size);
}

#[test]
fn oplock_and_lease_break_messages() {
    let ob = OplockBreak {
        oplock_level: OplockLevel::II,
        file_id: fid(1, 2),
    };
    let e = fid_bytes(B::new().u16(24).u8(1).u8(0).u32(0), 1, 2);
    check(&ob, &e);
    assert_eq!(
        OplockBreakMessage::decode(&with_header(Command::OPLOCK_BREAK, true, &e)).unwrap(),
        OplockBreakMessage::Oplock(ob)
    );

    let lbn = LeaseBreakNotification {
        new_epoch: 2,
        flags: LEASE_BREAK_ACK_REQUIRED,
        lease_key: [0x4B; 16],
        current_state: LeaseState::READ_CACHING | LeaseState::WRITE_CACHING,
        new_state: LeaseState::READ_CACHING,
        break_reason: 0,
        access_mask_hint: 0,
        share_mask_hint: 0,
    };
    let e = B::new()
        .u16(44)
        .u16(2)
        .u32(1)
        .raw(&[0x4B; 16])
        .u32(5)
        .u32(1)
        .u32(0)
        .u32(0)
        .u32(0);
    check(&lbn, &e);
    assert_eq!(
        OplockBreakMessage::decode(&with_header(Command::OPLOCK_BREAK, true, &e)).unwrap(),
        OplockBreakMessage::LeaseBreak(lbn)
    );

    let ack = LeaseBreakAck {
        flags: 0,
        lease_key: [0x4B; 16],
        lease_state: LeaseState::READ_CACHING,
        lease_duration: 0,
    };
    let e = B::new()
        .u16(36)
        .u16(0)
        .u32(0)
        .raw(&[0x4B; 16])
        .u32(1)
        .u64(0);
    check(&ack, &e);
    assert_eq!(
        OplockBreakMessage::decode(&with_header(Command::OPLOCK_BREAK, true, &e)).unwrap(),
        OplockBreakMessage::LeaseAck(ack)
    );
    let bad = B::new().u16(30).zeros(28);
    assert!(OplockBreakMessage::decode(&with_header(Command::OPLOCK_BREAK, true, &bad)).is_err());
}

fn error_message(cmd: Command, status: NtStatus, body: &B) -> Message {
    let mut h = Header::request(cmd);
    h.flags = HeaderFlags::SERVER_TO_REDIR;
    h.status = status;
    let mut buf = BytesMut::new();
    h.encode(&mut buf);
    buf.extend_from_slice(&body.0);
    Message::parse(buf.freeze()).unwrap()
}

#[test]
fn error_responses_plain_with_data_and_with_311_contexts() {
    // Plain: ByteCount 0 and one pad byte.
    let e = B::new().u16(9).u8(0).u8(0).u32(0).u8(0);
    let m = error_message(Command::CREATE, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND, &e);
    assert!(m.is_error_response());
    let AnyResponse::Error(er) = decode_response(&m).unwrap() else {
        panic!("not an error")
    };
    assert_eq!(er, ErrorResponse::default());
    let mut buf = BytesMut::new();
    er.encode_body(&mut buf).unwrap();
    assert_eq!(&buf[..], &e.0[..]);
    // Samba may omit the pad byte: still accepted.
    let short = B::new().u16(9).u8(0).u8(0).u32(0);
    assert!(
        ErrorResponse::decode(
            &error_message(Command::CREATE, NtStatus::STATUS_ACCESS_DENIED, &short).bytes
        )
        .is_ok()
    );

    // STATUS_BUFFER_TOO_SMALL carries the needed size.
    let e = B::new().u16(9).u8(0).u8(0).u32(4).u32(1234);
    let er = ErrorResponse::decode(
        &error_message(Command::QUERY_INFO, NtStatus::STATUS_BUFFER_TOO_SMALL, &e).bytes,
    )
    .unwrap();
    assert_eq!(er.needed_size(), Some(1234));

    // 3.1.1 contexts: two, the second 8-byte aligned.
    let e = B::new()
        .u16(9)
        .u8(2)
        .u8(0)
        .u32(8 + 3 + 5 + 8 + 4)
        .u32(3)
        .u32(0)
        .raw(&[1, 2, 3])
        .zeros(5)
        .u32(4)
        .u32(0x7264_5253)
        .u32(99);
    let er = ErrorResponse::decode(
        &error_message(Command::TREE_CONNECT, NtStatus::STATUS_BAD_NETWORK_NAME, &e).bytes,
    )
    .unwrap();
    assert_eq!(er.contexts.len(), 2);
    assert_eq!(&er.contexts[0].data[..], &[1, 2, 3]);
    assert_eq!(er.contexts[1].error_id, 0x7264_5253);
    assert_eq!(&er.contexts[1].data[..], &99u32.to_le_bytes());
    let mut buf = BytesMut::new();
    er.encode_body(&mut buf).unwrap();
    assert_eq!(&buf[..], &e.0[..]);
    // ByteCount beyond the message.
    let bad = B::new().u16(9).u8(0).u8(0).u32(100).u8(0);
    assert!(
        ErrorResponse::decode(
            &error_message(Command::CREATE, NtStatus::STATUS_ACCESS_DENIED, &bad).bytes
        )
        .is_err()
    );
}

#[test]
fn which_statuses_carry_an_error_body() {
    let e = B::new().u16(9).u8(0).u8(0).u32(0).u8(0);
    let m = |cmd, st| error_message(cmd, st, &e);
    assert!(
        !m(
            Command::SESSION_SETUP,
            NtStatus::STATUS_MORE_PROCESSING_REQUIRED
        )
        .is_error_response()
    );
    assert!(!m(Command::READ, NtStatus::STATUS_BUFFER_OVERFLOW).is_error_response());
    assert!(!m(Command::QUERY_INFO, NtStatus::STATUS_BUFFER_OVERFLOW).is_error_response());
    assert!(m(Command::CREATE, NtStatus::STATUS_BUFFER_OVERFLOW).is_error_response());
    assert!(m(Command::QUERY_DIRECTORY, NtStatus::STATUS_NO_MORE_FILES).is_error_response());
    assert!(m(Command::READ, NtStatus::STATUS_END_OF_FILE).is_error_response());
    assert!(!m(Command::ECHO, NtStatus::STATUS_SUCCESS).is_error_response());
    // Interim STATUS_PENDING: async header with an error body.
    let mut h = Header::request(Command::CHANGE_NOTIFY);
    h.flags = HeaderFlags::SERVER_TO_REDIR;
    h.status = NtStatus::STATUS_PENDING;
    h.async_id = Some(42);
    h.credits = 3;
    let mut buf = BytesMut::new();
    h.encode(&mut buf);
    buf.extend_from_slice(&e.0);
    let msg = Message::parse(buf.freeze()).unwrap();
    assert!(msg.header.is_pending());
    assert!(msg.is_error_response());
    assert!(matches!(
        decode_response(&msg).unwrap(),
        AnyResponse::Error(_)
    ));
}

#[test]
fn decode_response_dispatches_by_command() {
    let e = B::new().u16(16).u8(1).u8(0).u32(0).u32(0).u32(0x1F01FF);
    let mut v = header_bytes(Command::TREE_CONNECT, true);
    v.extend_from_slice(&e.0);
    let m = Message::parse(Bytes::from(v)).unwrap();
    assert!(matches!(
        decode_response(&m).unwrap(),
        AnyResponse::TreeConnect(TreeConnectResponse {
            share_type: ShareType::DISK,
            ..
        })
    ));
    let mut v = header_bytes(Command(0x99), true);
    v.extend_from_slice(&e.0);
    assert!(decode_response(&Message::parse(Bytes::from(v)).unwrap()).is_err());
}

#[test]
fn more_information_classes_for_readdir_statfs_and_links() {
    // FileIdFullDirectoryInformation: 80 fixed bytes + name.
    let e = B::new()
        .u32(0)
        .u32(0)
        .u64(1)
        .u64(2)
        .u64(3)
        .u64(4)
        .u64(99)
        .u64(4096)
        .u32(0x20)
        .u32(6)
        .u32(0)
        .u32(0)
        .u64(0x1234)
        .utf16("abc");
    let v = parse_id_full_directory_information(&Bytes::from(e.0.clone())).unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].info.name, "abc");
    assert_eq!(v[0].file_id, 0x1234);
    assert_eq!(v[0].info.end_of_file, 99);
    assert_eq!(
        &encode_id_full_directory_information(&v).unwrap()[..],
        &e.0[..]
    );

    // FileNamesInformation.
    let n = B::new()
        .u32(16)
        .u32(1)
        .u32(4)
        .utf16("ab")
        .u32(0)
        .u32(2)
        .u32(2)
        .utf16("c");
    assert_eq!(
        parse_names_information(&Bytes::from(n.0)).unwrap(),
        vec![(1, "ab".to_string()), (2, "c".to_string())]
    );

    // FileFsAttributeInformation.
    let a = B::new().u32(0x3).u32(255).u32(8).utf16("NTFS");
    let fa = FileFsAttributeInformation::parse(&a.0).unwrap();
    assert_eq!(fa.maximum_component_name_length, 255);
    assert_eq!(fa.file_system_name, "NTFS");
    assert_eq!(&fa.encode().unwrap()[..], &a.0[..]);

    // FileFsVolumeInformation.
    let vol = B::new().u64(77).u32(0xCAFE).u32(4).u8(0).u8(0).utf16("vo");
    let fv = FileFsVolumeInformation::parse(&vol.0).unwrap();
    assert_eq!(fv.serial_number, 0xCAFE);
    assert_eq!(fv.label, "vo");
    assert_eq!(&fv.encode().unwrap()[..], &vol.0[..]);

    // FileInternalInformation, FileAllocationInformation.
    assert_eq!(
        FileInternalInformation::parse(&B::new().u64(42).0)
            .unwrap()
            .index_number,
        42
    );
    assert_eq!(
        &FileAllocationInformation {
            allocation_size: 8192
        }
        .encode()[..],
        &B::new().u64(8192).0[..]
    );

    // FileLinkInformation has the rename layout.
    let link: FileLinkInformation = FileRenameInformation {
        replace_if_exists: false,
        root_directory: 0,
        name: "hard".into(),
    };
    assert_eq!(
        &link.encode().unwrap()[..],
        &B::new().u8(0).zeros(7).u64(0).u32(8).utf16("hard").0[..]
    );
}

#[test]
fn symlink_error_response_gives_the_target() {
    // PathBuffer: substitute "\??\C:\t" then print "C:\t".
    let sub = "\\??\\C:\\t";
    let print = "C:\\t";
    let sub_len = (sub.len() * 2) as u16;
    let print_len = (print.len() * 2) as u16;
    let body = B::new()
        .u32(0x4C4D_5953)
        .u32(0xA000_000C)
        .u16(12 + sub_len + print_len)
        .u16(4) // UnparsedPathLength
        .u16(0)
        .u16(sub_len)
        .u16(sub_len)
        .u16(print_len)
        .u32(0)
        .utf16(sub)
        .utf16(print);
    let data = B::new().u32(body.len() as u32).raw(&body.0);
    let er = ErrorResponse {
        contexts: vec![],
        data: Bytes::from(data.0.clone()),
    };
    let s = er.symlink().unwrap().unwrap();
    assert_eq!(s.substitute_name, sub);
    assert_eq!(s.print_name, print);
    assert_eq!(s.unparsed_path_length, 4);
    // Same data inside a 3.1.1 error context.
    let er = ErrorResponse {
        contexts: vec![ErrorContext {
            error_id: 0,
            data: Bytes::from(data.0.clone()),
        }],
        data: Bytes::new(),
    };
    assert_eq!(er.symlink().unwrap().unwrap().print_name, print);
    // Not a symlink error: None. A PrintName past the buffer: error.
    assert_eq!(ErrorResponse::default().symlink().unwrap(), None);
    let mut bad = data.0.clone();
    bad[22..24].copy_from_slice(&500u16.to_le_bytes());
    let er = ErrorResponse {
        contexts: vec![],
        data: Bytes::from(bad),
    };
    assert!(er.symlink().is_err());
}
