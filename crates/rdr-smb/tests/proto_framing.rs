//! Byte-level tests of the SMB2 header, compound chains, NetBIOS framing, the frame decoder,
//! the transform header, FILETIME and UTF-16 conversion.

use std::time::{Duration, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use rdr_core::{NtStatus, RxError};
use rdr_smb::proto::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn sync_header_encodes_to_the_ms_smb2_layout_and_back() {
    let h = Header {
        credit_charge: 1,
        status: NtStatus::STATUS_SUCCESS,
        command: Command::CREATE,
        credits: 31,
        flags: HeaderFlags::SIGNED,
        next_command: 0,
        message_id: 0x0102_0304_0506_0708,
        async_id: None,
        process_id: 0xFEFF,
        tree_id: 0xAABB_CCDD,
        session_id: 0x1122_3344_5566_7788,
        signature: [0x5A; 16],
    };
    let mut buf = BytesMut::new();
    h.encode(&mut buf);
    let expected = hex("FE534D42 4000 0100 00000000 0500 1F00 08000000 00000000
         0807060504030201 FFFE0000 DDCCBBAA 8877665544332211
         5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A");
    assert_eq!(&buf[..], &expected[..]);
    assert_eq!(Header::decode(&buf).unwrap(), h);
}

#[test]
fn async_header_carries_async_id_and_sets_the_flag() {
    let h = Header {
        status: NtStatus::STATUS_PENDING,
        command: Command::CHANGE_NOTIFY,
        credits: 1,
        flags: HeaderFlags::SERVER_TO_REDIR,
        message_id: 7,
        async_id: Some(0x0000_0000_DEAD_BEEF),
        session_id: 9,
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    h.encode(&mut buf);
    let expected = hex("FE534D42 4000 0000 03010000 0F00 0100 03000000 00000000
         0700000000000000 EFBEADDE00000000 0900000000000000
         00000000000000000000000000000000");
    assert_eq!(&buf[..], &expected[..]);
    let d = Header::decode(&buf).unwrap();
    assert!(d.flags.contains(HeaderFlags::ASYNC_COMMAND));
    assert_eq!(d.async_id, Some(0xDEAD_BEEF));
    assert!(d.is_pending());
    assert!(d.is_response());
}

#[test]
fn header_decode_rejects_wrong_magic_size_and_truncation() {
    let mut buf = BytesMut::new();
    Header::request(Command::ECHO).encode(&mut buf);
    let good = buf.to_vec();
    for n in 0..good.len() {
        assert!(Header::decode(&good[..n]).is_err(), "prefix {n}");
    }
    let mut bad = good.clone();
    bad[0] = 0xFF;
    assert!(matches!(
        Header::decode(&bad),
        Err(ProtoError::ProtocolId(_))
    ));
    bad[0] = 0xFC;
    assert_eq!(
        Header::decode(&bad),
        Err(ProtoError::CompressionUnsupported)
    );
    bad[0] = 0xFD;
    assert_eq!(Header::decode(&bad), Err(ProtoError::Encrypted));
    let mut bad = good.clone();
    bad[4] = 65;
    assert!(matches!(
        Header::decode(&bad),
        Err(ProtoError::StructureSize {
            expected: 64,
            got: 65,
            ..
        })
    ));
}

#[test]
fn signature_range_lets_the_engine_patch_the_signature() {
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0xAA; 4]); // e.g. a NetBIOS header before the message
    let r = encode_message(&Header::request(Command::ECHO), &EchoRequest, &mut buf).unwrap();
    assert_eq!(r, 4..4 + 68);
    let sig = signature_range(r.start);
    assert_eq!(sig, 52..68);
    buf[sig.clone()].copy_from_slice(&[0x11; 16]);
    set_signed_flag(&mut buf, r.start).unwrap();
    let h = Header::decode(&buf[r.clone()]).unwrap();
    assert_eq!(h.signature, [0x11; 16]);
    assert!(h.flags.contains(HeaderFlags::SIGNED));
    assert_eq!(h.command, Command::ECHO);
}

#[test]
fn channel_sequence_lives_in_the_status_field_of_requests() {
    let mut h = Header::request(Command::WRITE);
    h.set_channel_sequence(0x1234);
    assert_eq!(h.channel_sequence(), 0x1234);
    let mut buf = BytesMut::new();
    h.encode(&mut buf);
    assert_eq!(&buf[8..12], &[0x34, 0x12, 0, 0]);
}

#[test]
fn compound_builder_aligns_next_command_and_marks_related() {
    let mut b = CompoundBuilder::new();
    let mut h = Header::request(Command::CREATE);
    h.session_id = 5;
    h.tree_id = 6;
    let create = CreateRequest {
        name: "a.txt".into(), // 10 bytes of name -> body 56+10 = 66, message 130
        desired_access: AccessMask::GENERIC_READ,
        ..Default::default()
    };
    b.push(&h, &create, false).unwrap();
    b.push(
        &Header::request(Command::QUERY_INFO),
        &QueryInfoRequest::file(FileId::RELATED, FileInfoClass::FileAllInformation, 4096),
        true,
    )
    .unwrap();
    b.push(
        &Header::request(Command::CLOSE),
        &CloseRequest {
            flags: 0,
            file_id: FileId::RELATED,
        },
        true,
    )
    .unwrap();
    let (buf, ranges) = b.finish();
    // CREATE: 64 + 56 + 10 = 130 -> padded to 136.
    assert_eq!(ranges[0], 0..136);
    assert_eq!(ranges[1].start, 136);
    // QUERY_INFO: 64 + 40 + 1 = 105 -> padded to 112.
    assert_eq!(ranges[1].end, 136 + 112);
    assert_eq!(ranges[2], 248..248 + 64 + 24);
    assert_eq!(buf.len(), 248 + 88);
    // NextCommand fields, read straight from the bytes.
    assert_eq!(&buf[20..24], &136u32.to_le_bytes());
    assert_eq!(&buf[136 + 20..136 + 24], &112u32.to_le_bytes());
    assert_eq!(&buf[248 + 20..248 + 24], &0u32.to_le_bytes());
    // Padding bytes are zero.
    assert!(buf[130..136].iter().all(|&b| b == 0));

    let msgs = split_compound(&buf.freeze()).unwrap();
    assert_eq!(msgs.len(), 3);
    assert!(
        !msgs[0]
            .header
            .flags
            .contains(HeaderFlags::RELATED_OPERATIONS)
    );
    assert!(
        msgs[1]
            .header
            .flags
            .contains(HeaderFlags::RELATED_OPERATIONS)
    );
    assert!(
        msgs[2]
            .header
            .flags
            .contains(HeaderFlags::RELATED_OPERATIONS)
    );
    assert_eq!(msgs[0].body::<CreateRequest>().unwrap(), create);
    let qi: QueryInfoRequest = msgs[1].body().unwrap();
    assert_eq!(qi.file_id, FileId::RELATED);
    assert_eq!(qi.info_class, FileInfoClass::FileAllInformation.0);
    let cl: CloseRequest = msgs[2].body().unwrap();
    assert_eq!(cl.file_id, FileId::RELATED);
    assert!(matches!(
        msgs[2].body::<CreateRequest>(),
        Err(ProtoError::WrongCommand { .. })
    ));
}

#[test]
fn split_compound_rejects_bad_next_command() {
    let mut b = CompoundBuilder::new();
    b.push(&Header::request(Command::ECHO), &EchoRequest, false)
        .unwrap();
    b.push(&Header::request(Command::ECHO), &EchoRequest, true)
        .unwrap();
    let (buf, _) = b.finish();
    let good = buf.to_vec();
    assert_eq!(split_compound(&Bytes::from(good.clone())).unwrap().len(), 2);
    for bad_next in [4u32, 60, 68, 1000, u32::MAX] {
        let mut v = good.clone();
        v[20..24].copy_from_slice(&bad_next.to_le_bytes());
        assert!(
            split_compound(&Bytes::from(v)).is_err(),
            "NextCommand {bad_next} accepted"
        );
    }
}

#[test]
fn netbios_header_is_a_zero_and_24_bit_big_endian_length() {
    assert_eq!(netbios_header(0x0001_0203).unwrap(), [0, 1, 2, 3]);
    assert_eq!(netbios_header(0xFF_FFFF).unwrap(), [0, 0xFF, 0xFF, 0xFF]);
    assert!(matches!(
        netbios_header(0x100_0000),
        Err(ProtoError::FrameTooLarge { .. })
    ));
    assert_eq!(decode_netbios_header([0, 0, 0x10, 0x44]).unwrap(), 0x1044);
    assert!(decode_netbios_header([0x85, 0, 0, 0]).is_err());

    let mut buf = BytesMut::new();
    let p = begin_frame(&mut buf);
    buf.extend_from_slice(&[1, 2, 3]);
    finish_frame(&mut buf, p, 100).unwrap();
    assert_eq!(&buf[..], &[0, 0, 0, 103, 1, 2, 3]);
}

#[test]
fn frame_decoder_reassembles_frames_from_any_chunking() {
    let frames: Vec<Vec<u8>> = vec![vec![0xFE; 70], vec![], vec![1, 2, 3], vec![7; 5000]];
    let mut stream = Vec::new();
    for f in &frames {
        stream.extend_from_slice(&netbios_header(f.len()).unwrap());
        stream.extend_from_slice(f);
    }
    for step in [1usize, 2, 3, 5, 64, 4099, stream.len()] {
        let mut d = FrameDecoder::default();
        let mut got = Vec::new();
        for chunk in stream.chunks(step) {
            d.push(chunk);
            while let Some(f) = d.next_frame().unwrap() {
                got.push(f.to_vec());
            }
        }
        assert_eq!(got, frames, "chunk size {step}");
        assert_eq!(d.buffered(), 0);
    }
}

#[test]
fn frame_decoder_rejects_oversized_and_non_session_frames() {
    let mut d = FrameDecoder::new(1000);
    d.push(&[0, 0, 0x03, 0xE9]);
    assert_eq!(
        d.next_frame(),
        Err(ProtoError::FrameTooLarge {
            len: 1001,
            max: 1000
        })
    );
    let mut d = FrameDecoder::default();
    d.push(&[0x82, 0, 0, 0]);
    assert!(d.next_frame().is_err());
}

#[test]
fn frame_classification_detects_transform_and_compression() {
    assert_eq!(
        classify(&[0xFE, b'S', b'M', b'B']).unwrap(),
        FrameKind::Smb2
    );
    assert_eq!(
        classify(&[0xFD, b'S', b'M', b'B', 0]).unwrap(),
        FrameKind::Transform
    );
    assert_eq!(
        classify(&[0xFC, b'S', b'M', b'B']).unwrap(),
        FrameKind::Compressed
    );
    assert_eq!(
        classify(&[0xFF, b'S', b'M', b'B']).unwrap(),
        FrameKind::Smb1
    );
    assert!(classify(&[0xFE, b'S']).is_err());
    assert!(classify(b"HTTP").is_err());
    // A compressed frame handed to the transform decoder says so.
    let mut c = vec![0xFC, b'S', b'M', b'B'];
    c.resize(60, 0);
    assert_eq!(
        TransformHeader::decode(&Bytes::from(c)),
        Err(ProtoError::CompressionUnsupported)
    );
}

#[test]
fn transform_header_layout_and_round_trip() {
    let t = TransformHeader {
        signature: [0x11; 16],
        nonce: [0x22; 16],
        original_message_size: 5,
        flags: TRANSFORM_FLAG_ENCRYPTED,
        session_id: 0x0102_0304_0506_0708,
    };
    let mut buf = BytesMut::new();
    t.encode(&mut buf);
    let mut expected = hex("FD534D42");
    expected.extend_from_slice(&[0x11; 16]);
    expected.extend_from_slice(&[0x22; 16]);
    expected.extend(hex("05000000 0000 0100 0807060504030201"));
    assert_eq!(&buf[..], &expected[..]);
    assert_eq!(TransformHeader::aad_range(), 20..52);
    assert_eq!(&buf[TransformHeader::signature_range()], &[0x11; 16]);
    buf.extend_from_slice(b"12345");
    let (d, body) = TransformHeader::decode(&buf.clone().freeze()).unwrap();
    assert_eq!(d, t);
    assert_eq!(&body[..], b"12345");
    // Size mismatch and truncation are errors.
    let mut short = buf.clone();
    short.truncate(buf.len() - 1);
    assert!(TransformHeader::decode(&short.freeze()).is_err());
    for n in 0..52 {
        assert!(TransformHeader::decode(&Bytes::copy_from_slice(&buf[..n])).is_err());
    }
}

#[test]
fn filetime_converts_both_ways() {
    // 1970-01-01 is 116444736000000000 in FILETIME.
    let epoch = FileTime(116_444_736_000_000_000);
    assert_eq!(epoch.to_system_time(), Some(UNIX_EPOCH));
    assert_eq!(FileTime::from_system_time(UNIX_EPOCH), epoch);
    let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_700);
    let ft = FileTime::from_system_time(t);
    assert_eq!(ft.0, 116_444_736_000_000_000 + 17_000_000_001_234_567);
    assert_eq!(ft.to_system_time(), Some(t));
    // Before 1970.
    let old = UNIX_EPOCH - Duration::from_secs(86_400);
    assert_eq!(FileTime::from_system_time(old).to_system_time(), Some(old));
    // 0 means "not set".
    assert_eq!(FileTime(0).to_system_time(), None);
    // Sub-100ns precision is truncated.
    let t2 = UNIX_EPOCH + Duration::new(5, 99);
    assert_eq!(
        FileTime::from_system_time(t2).to_system_time(),
        Some(UNIX_EPOCH + Duration::new(5, 0))
    );
}

#[test]
fn utf16_round_trips_and_rejects_unpaired_surrogates() {
    let s = "dir\\fïle-😀.txt";
    let b = encode_utf16le(s);
    assert_eq!(b.len(), utf16le_len(s));
    assert_eq!(&b[..6], &[b'd', 0, b'i', 0, b'r', 0]);
    assert_eq!(decode_utf16le(&b, "t", "name").unwrap(), s);
    // Lone high surrogate, lone low surrogate, reversed pair, odd length.
    for bad in [
        vec![0x3D, 0xD8],
        vec![0x00, 0xDE, b'a', 0],
        vec![0x00, 0xDE, 0x3D, 0xD8],
        vec![b'a', 0, b'b'],
    ] {
        assert!(matches!(
            decode_utf16le(&bad, "t", "name"),
            Err(ProtoError::BadUtf16 { .. })
        ));
    }
}

#[test]
fn proto_error_becomes_invalid_network_response() {
    let e = ProtoError::StructureSize {
        msg: "READ response",
        expected: 17,
        got: 3,
    };
    let rx: RxError = e.into();
    assert_eq!(rx.nt_status(), NtStatus::STATUS_INVALID_NETWORK_RESPONSE);
    assert!(rx.to_string().contains("READ response"));
    assert!(rx.to_string().contains("StructureSize"));
}

#[test]
fn credit_charge_is_one_per_64k_and_header_fields_can_be_patched() {
    assert_eq!(credit_charge_for(0), 1);
    assert_eq!(credit_charge_for(1), 1);
    assert_eq!(credit_charge_for(65536), 1);
    assert_eq!(credit_charge_for(65537), 2);
    assert_eq!(credit_charge_for(8 << 20), 128);
    assert_eq!(credit_charge_for(usize::MAX), u16::MAX);

    let mut buf = BytesMut::new();
    buf.extend_from_slice(&[0; 4]);
    let r = encode_message(
        &Header::request(Command::READ),
        &ReadRequest::default(),
        &mut buf,
    )
    .unwrap();
    patch_request_header(&mut buf, r.start, 0x1122, 3, 40).unwrap();
    let h = Header::decode(&buf[r.start..]).unwrap();
    assert_eq!(h.message_id, 0x1122);
    assert_eq!(h.credit_charge, 3);
    assert_eq!(h.credits, 40);
    assert!(patch_request_header(&mut buf, r.end - 10, 1, 1, 1).is_err());
}
