//! The connection engine against a scripted SMB2 peer on loopback: routing by MessageId,
//! credits (waiting, multi-credit charges, interim grants), CANCEL with AsyncId, unsolicited
//! breaks, vectored WRITE, the signing and encryption hooks, and a dead connection failing
//! every waiter at once. Every test is bounded by a timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rdr_core::{NtStatus, RxResult};
use rdr_smb::conn::*;
use rdr_smb::proto::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(20);

/// An ERROR body on a CHANGE_NOTIFY (interim STATUS_PENDING, or the final STATUS_CANCELLED).
struct NotifyError;
impl SmbMessage for NotifyError {
    const COMMAND: Command = Command::CHANGE_NOTIFY;
    const NAME: &'static str = "error";
    fn encode_body(&self, buf: &mut BytesMut) -> ProtoResult<()> {
        ErrorResponse::default().encode_body(buf)
    }
    fn decode_body(msg: &Bytes) -> ProtoResult<Self> {
        ErrorResponse::decode(msg).map(|_| NotifyError)
    }
}

/// The server side of one connection, driven by the test.
struct Peer {
    sock: TcpStream,
    dec: FrameDecoder,
}

impl Peer {
    async fn recv_frame(&mut self) -> Bytes {
        loop {
            if let Some(f) = self.dec.next_frame().unwrap() {
                return f;
            }
            let n = self.sock.read_buf(self.dec.buffer_mut()).await.unwrap();
            assert!(n > 0, "client closed");
        }
    }

    async fn recv(&mut self) -> Vec<Message> {
        let f = self.recv_frame().await;
        split_compound(&f).unwrap()
    }

    async fn recv_one(&mut self) -> Message {
        let mut v = self.recv().await;
        assert_eq!(v.len(), 1);
        v.pop().unwrap()
    }

    async fn send_raw(&mut self, msg: &[u8]) {
        let mut b = netbios_header(msg.len()).unwrap().to_vec();
        b.extend_from_slice(msg);
        self.sock.write_all(&b).await.unwrap();
    }

    /// Encodes a response to `req`.
    fn response<M: SmbMessage>(
        req: &Header,
        status: NtStatus,
        credits: u16,
        async_id: Option<u64>,
        body: &M,
    ) -> Vec<u8> {
        let h = Header {
            status,
            credits,
            flags: HeaderFlags::SERVER_TO_REDIR,
            message_id: req.message_id,
            async_id,
            session_id: req.session_id,
            tree_id: req.tree_id,
            ..Default::default()
        };
        let mut b = BytesMut::new();
        encode_message(&h, body, &mut b).unwrap();
        b.to_vec()
    }

    async fn reply<M: SmbMessage>(&mut self, req: &Header, credits: u16, body: &M) {
        let m = Self::response(req, NtStatus::STATUS_SUCCESS, credits, None, body);
        self.send_raw(&m).await;
    }
}

async fn pair() -> (Connection, Peer) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (c, s) = tokio::join!(Connection::connect(addr, ConnConfig::default()), l.accept());
    let (sock, _) = s.unwrap();
    (
        c.unwrap(),
        Peer {
            sock,
            dec: FrameDecoder::default(),
        },
    )
}

/// First exchange: one ECHO, answered with `credits`.
async fn grant(conn: &Connection, peer: &mut Peer, credits: u16) {
    let p = conn
        .submit(
            &Header::request(Command::ECHO),
            &EchoRequest,
            &SendOptions::default(),
        )
        .await
        .unwrap();
    let req = peer.recv_one().await;
    peer.reply(&req.header, credits, &EchoResponse).await;
    p.wait().await.unwrap();
}

async fn yield_many() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn responses_are_routed_by_message_id_in_any_order() {
    tokio::time::timeout(LIMIT, async {
        let (conn, mut peer) = pair().await;
        grant(&conn, &mut peer, 10).await;
        let mut pend = Vec::new();
        for i in 0..3u64 {
            let mut h = Header::request(Command::QUERY_INFO);
            h.tree_id = 100 + i as u32;
            let q =
                QueryInfoRequest::file(FileId::default(), FileInfoClass::FileBasicInformation, 40);
            pend.push(conn.submit(&h, &q, &SendOptions::default()).await.unwrap());
        }
        let reqs: Vec<Message> = {
            let mut v = Vec::new();
            for _ in 0..3 {
                v.push(peer.recv_one().await);
            }
            v
        };
        assert_eq!(
            reqs.iter().map(|m| m.header.message_id).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        // Answer in reverse order, each with data naming its tree.
        for r in reqs.iter().rev() {
            let info = FileBasicInformation {
                creation_time: FileTime(r.header.tree_id as u64),
                ..Default::default()
            };
            peer.reply(
                &r.header,
                1,
                &QueryInfoResponse {
                    output: info.encode(),
                },
            )
            .await;
        }
        for (i, p) in pend.into_iter().enumerate() {
            let mid = p.message_id();
            let m = p.wait().await.unwrap();
            assert_eq!(m.header.message_id, mid);
            let q: QueryInfoResponse = m.body().unwrap();
            let info = FileBasicInformation::parse(&q.output).unwrap();
            assert_eq!(info.creation_time, FileTime(100 + i as u64));
        }
        assert_eq!(conn.outstanding(), 0);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_request_waits_for_credits_until_a_response_grants_them() {
    tokio::time::timeout(LIMIT, async {
        let (conn, mut peer) = pair().await;
        grant(&conn, &mut peer, 1).await;
        assert_eq!(conn.available_credits(), 1);
        let first = conn
            .submit(
                &Header::request(Command::ECHO),
                &EchoRequest,
                &SendOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(conn.available_credits(), 0);
        let c2 = conn.clone();
        let second = tokio::spawn(async move {
            c2.send(
                &Header::request(Command::ECHO),
                &EchoRequest,
                &SendOptions::default(),
            )
            .await
        });
        yield_many().await;
        // The second request is parked on credits: not registered, not sent.
        assert_eq!(conn.outstanding(), 1);
        let r1 = peer.recv_one().await;
        assert_eq!(r1.header.message_id, first.message_id());
        peer.reply(&r1.header, 1, &EchoResponse).await;
        first.wait().await.unwrap();
        // The grant lets the second one go.
        let r2 = peer.recv_one().await;
        assert_eq!(r2.header.message_id, 2);
        peer.reply(&r2.header, 1, &EchoResponse).await;
        second.await.unwrap().unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn large_reads_and_writes_charge_one_credit_per_64k() {
    tokio::time::timeout(LIMIT, async {
        let (conn, mut peer) = pair().await;
        grant(&conn, &mut peer, 100).await;
        conn.set_large_mtu(true);
        let read = ReadRequest {
            length: 200 * 1024,
            ..Default::default()
        };
        let p = conn
            .submit(
                &Header::request(Command::READ),
                &read,
                &SendOptions::default(),
            )
            .await
            .unwrap();
        let r = peer.recv_one().await;
        assert_eq!(r.header.credit_charge, 4);
        assert_eq!(r.header.message_id, 1);
        assert!(r.header.credits >= 4, "asks at least its charge back");
        let data = Bytes::from(vec![0x42; 200 * 1024]);
        peer.reply(
            &r.header,
            4,
            &ReadResponse {
                data: data.clone(),
                data_remaining: 0,
                flags: 0,
            },
        )
        .await;
        let m = p.wait().await.unwrap();
        let rr: ReadResponse = m.body().unwrap();
        assert_eq!(rr.data, data);
        // Zero copy from the socket buffer to the caller: the data is a slice of the frame.
        assert!(m.bytes.as_ptr_range().contains(&rr.data.as_ptr()));
        // The next MessageId skips the 4 the read consumed.
        let w = WriteRequest {
            data: Bytes::from(vec![1u8; 65537]),
            ..Default::default()
        };
        let p = conn
            .submit_write(
                &Header::request(Command::WRITE),
                &w,
                &SendOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(p.message_id(), 5);
        let r = peer.recv_one().await;
        assert_eq!(r.header.credit_charge, 2);
        let got: WriteRequest = r.body().unwrap();
        assert_eq!(got.data, w.data);
        peer.reply(
            &r.header,
            2,
            &WriteResponse {
                count: 65537,
                remaining: 0,
            },
        )
        .await;
        let wr: WriteResponse = p.wait().await.unwrap().body().unwrap();
        assert_eq!(wr.count, 65537);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn interim_pending_grants_credits_and_cancel_uses_the_async_id() {
    tokio::time::timeout(LIMIT, async {
        let (conn, mut peer) = pair().await;
        grant(&conn, &mut peer, 1).await;
        let mut h = Header::request(Command::CHANGE_NOTIFY);
        h.session_id = 0x55;
        h.tree_id = 7;
        let cn = ChangeNotifyRequest {
            flags: WATCH_TREE,
            output_buffer_length: 4096,
            file_id: FileId::default(),
            completion_filter: CompletionFilter::FILE_NAME,
        };
        let p = conn.submit(&h, &cn, &SendOptions::default()).await.unwrap();
        let req = peer.recv_one().await;
        assert_eq!(conn.available_credits(), 0);
        // Interim response: async id 0xA51, 8 credits.
        let interim = Peer::response(
            &req.header,
            NtStatus::STATUS_PENDING,
            8,
            Some(0xA51),
            &NotifyError,
        );
        peer.send_raw(&interim).await;
        // Wait until the engine has seen it (credits went up).
        while conn.available_credits() < 8 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            conn.outstanding(),
            1,
            "still waiting for the final response"
        );
        conn.cancel(p.message_id(), &SendOptions::default())
            .await
            .unwrap();
        let c = peer.recv_one().await;
        assert_eq!(c.header.command, Command::CANCEL);
        assert_eq!(c.header.message_id, p.message_id());
        assert_eq!(c.header.async_id, Some(0xA51));
        assert!(c.header.flags.contains(HeaderFlags::ASYNC_COMMAND));
        assert_eq!(c.header.credit_charge, 0);
        assert_eq!(c.header.session_id, 0x55);
        c.body::<CancelRequest>().unwrap();
        // Final response: STATUS_CANCELLED.
        let fin = Peer::response(
            &req.header,
            NtStatus::STATUS_CANCELLED,
            1,
            Some(0xA51),
            &NotifyError,
        );
        peer.send_raw(&fin).await;
        let m = p.wait().await.unwrap();
        assert_eq!(m.header.status, NtStatus::STATUS_CANCELLED);
        assert!(m.is_error_response());
        assert_eq!(conn.available_credits(), 9);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_dead_connection_fails_every_waiter_at_once() {
    tokio::time::timeout(LIMIT, async {
        let (conn, mut peer) = pair().await;
        grant(&conn, &mut peer, 10).await;
        let mut pend = Vec::new();
        for _ in 0..3 {
            pend.push(
                conn.submit(
                    &Header::request(Command::ECHO),
                    &EchoRequest,
                    &SendOptions::default(),
                )
                .await
                .unwrap(),
            );
        }
        for _ in 0..3 {
            peer.recv_one().await;
        }
        drop(peer);
        for p in pend {
            let e = p.wait().await.unwrap_err();
            assert_eq!(e.nt_status(), NtStatus::STATUS_CONNECTION_DISCONNECTED);
        }
        assert!(conn.dead().is_some());
        let e = conn.echo().await.unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_CONNECTION_DISCONNECTED);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn garbage_from_the_server_kills_the_connection_with_a_protocol_error() {
    tokio::time::timeout(LIMIT, async {
        let (conn, mut peer) = pair().await;
        let p = conn
            .submit(
                &Header::request(Command::ECHO),
                &EchoRequest,
                &SendOptions::default(),
            )
            .await
            .unwrap();
        peer.recv_one().await;
        peer.send_raw(b"HTTP/1.1 400 Bad Request\r\n").await;
        let e = p.wait().await.unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_INVALID_NETWORK_RESPONSE);
        assert!(e.to_string().contains("protocol id"), "{e}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn unsolicited_lease_breaks_reach_the_break_channel() {
    tokio::time::timeout(LIMIT, async {
        let (conn, mut peer) = pair().await;
        let mut breaks = conn.take_unsolicited().unwrap();
        assert!(conn.take_unsolicited().is_none());
        let h = Header {
            command: Command::OPLOCK_BREAK,
            flags: HeaderFlags::SERVER_TO_REDIR,
            message_id: UNSOLICITED_MESSAGE_ID,
            ..Default::default()
        };
        let lb = LeaseBreakNotification {
            new_epoch: 2,
            flags: LEASE_BREAK_ACK_REQUIRED,
            lease_key: [9; 16],
            current_state: LeaseState::READ_CACHING | LeaseState::WRITE_CACHING,
            new_state: LeaseState::READ_CACHING,
            ..Default::default()
        };
        let mut b = BytesMut::new();
        encode_message(&h, &lb, &mut b).unwrap();
        peer.send_raw(&b).await;
        let m = breaks.recv().await.unwrap();
        assert_eq!(
            OplockBreakMessage::decode(&m.bytes).unwrap(),
            OplockBreakMessage::LeaseBreak(lb)
        );
        // The connection still works afterwards.
        let p = conn
            .submit(
                &Header::request(Command::ECHO),
                &EchoRequest,
                &SendOptions::default(),
            )
            .await
            .unwrap();
        let r = peer.recv_one().await;
        peer.reply(&r.header, 1, &EchoResponse).await;
        p.wait().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn compound_members_get_consecutive_ids_and_their_own_responses() {
    tokio::time::timeout(LIMIT, async {
        let (conn, mut peer) = pair().await;
        grant(&conn, &mut peer, 10).await;
        let mut b = CompoundBuilder::new();
        let mut h = Header::request(Command::CREATE);
        h.session_id = 3;
        h.tree_id = 4;
        let create = CreateRequest {
            name: "x".into(),
            ..Default::default()
        };
        b.push(&h, &create, false).unwrap();
        let close = CloseRequest {
            flags: 0,
            file_id: FileId::RELATED,
        };
        b.push(&Header::request(Command::CLOSE), &close, true)
            .unwrap();
        let pend = conn
            .submit_compound(b, &[0, 0], &h, &SendOptions::default())
            .await
            .unwrap();
        let reqs = peer.recv().await;
        assert_eq!(reqs.len(), 2);
        assert_eq!(reqs[0].header.message_id, 1);
        assert_eq!(reqs[1].header.message_id, 2);
        assert_eq!(reqs[0].header.next_command, 128); // 64 + 56 + 2 = 122, aligned to 8
        // The server answers as a compound too.
        let c = Peer::response(
            &reqs[0].header,
            NtStatus::STATUS_SUCCESS,
            1,
            None,
            &CreateResponse {
                oplock_level: OplockLevel::NONE,
                flags: 0,
                create_action: CreateAction::OPENED,
                creation_time: FileTime(0),
                last_access_time: FileTime(0),
                last_write_time: FileTime(0),
                change_time: FileTime(0),
                allocation_size: 0,
                end_of_file: 0,
                file_attributes: FileAttributes::NORMAL,
                file_id: FileId {
                    persistent: 1,
                    volatile: 2,
                },
                contexts: vec![],
            },
        );
        let mut all = c.clone();
        all.resize((c.len() + 7) & !7, 0);
        let next = all.len() as u32;
        all[20..24].copy_from_slice(&next.to_le_bytes());
        all.extend(Peer::response(
            &reqs[1].header,
            NtStatus::STATUS_SUCCESS,
            1,
            None,
            &CloseResponse::default(),
        ));
        peer.send_raw(&all).await;
        let mut it = pend.into_iter();
        let cr: CreateResponse = it.next().unwrap().wait().await.unwrap().body().unwrap();
        assert_eq!(cr.file_id.volatile, 2);
        let _: CloseResponse = it.next().unwrap().wait().await.unwrap().body().unwrap();
    })
    .await
    .unwrap();
}

/// A toy "crypto" so the hooks can be tested without keys: the signature is a keyed
/// byte sum, encryption XORs with the key byte.
struct ToyKeys {
    session: u64,
    key: u8,
}

impl ToyKeys {
    fn mac(&self, parts: &[&[u8]]) -> [u8; 16] {
        let mut s = [self.key; 16];
        let mut i = 0usize;
        for p in parts {
            for &b in *p {
                s[i % 16] = s[i % 16].wrapping_mul(31).wrapping_add(b);
                i += 1;
            }
        }
        s
    }
}

impl SessionSecurity for ToyKeys {
    fn session_id(&self) -> u64 {
        self.session
    }
    fn sign(&self, parts: &[&[u8]]) -> RxResult<[u8; 16]> {
        Ok(self.mac(parts))
    }
    fn encrypt(&self, plaintext: &[u8]) -> RxResult<Vec<u8>> {
        let mut b = BytesMut::new();
        TransformHeader {
            signature: self.mac(&[plaintext]),
            nonce: [1; 16],
            original_message_size: plaintext.len() as u32,
            flags: TRANSFORM_FLAG_ENCRYPTED,
            session_id: self.session,
        }
        .encode(&mut b);
        b.extend(plaintext.iter().map(|x| x ^ self.key));
        Ok(b.to_vec())
    }
    fn decrypt(&self, transform: &Bytes) -> RxResult<Bytes> {
        let (th, c) = TransformHeader::decode(transform)?;
        let plain: Vec<u8> = c.iter().map(|x| x ^ self.key).collect();
        assert_eq!(th.signature, self.mac(&[&plain]));
        Ok(Bytes::from(plain))
    }
    fn signing_required(&self) -> bool {
        true
    }
}

fn zero_sig(m: &[u8]) -> Vec<u8> {
    let mut v = m.to_vec();
    v[48..64].fill(0);
    v
}

#[tokio::test]
async fn signed_requests_and_responses_go_through_the_hook() {
    tokio::time::timeout(LIMIT, async {
        let (conn, mut peer) = pair().await;
        grant(&conn, &mut peer, 10).await;
        let keys = Arc::new(ToyKeys {
            session: 0x77,
            key: 0x3C,
        });
        conn.register_session(keys.clone());
        let opts = SendOptions {
            security: Some(keys.clone()),
            sign: true,
            encrypt: false,
        };
        let mut h = Header::request(Command::WRITE);
        h.session_id = 0x77;
        let w = WriteRequest {
            data: Bytes::from_static(b"signed payload"),
            ..Default::default()
        };
        let p = conn.submit_write(&h, &w, &opts).await.unwrap();
        let req = peer.recv_one().await;
        assert!(req.header.flags.contains(HeaderFlags::SIGNED));
        // The signature covers header, fixed part and the separately sent payload.
        assert_eq!(req.header.signature, keys.mac(&[&zero_sig(&req.bytes)]));
        // A correctly signed response is accepted.
        let mut rsp = Peer::response(
            &req.header,
            NtStatus::STATUS_SUCCESS,
            1,
            None,
            &WriteResponse {
                count: 14,
                remaining: 0,
            },
        );
        rsp[16] |= 0x08; // SIGNED
        let sig = keys.mac(&[&rsp]);
        rsp[48..64].copy_from_slice(&sig);
        peer.send_raw(&rsp).await;
        p.wait().await.unwrap();

        // A tampered one is refused with STATUS_INVALID_SIGNATURE.
        let p = conn
            .submit(
                &h,
                &FlushRequest {
                    file_id: FileId::default(),
                },
                &opts,
            )
            .await
            .unwrap();
        let req = peer.recv_one().await;
        let mut rsp = Peer::response(
            &req.header,
            NtStatus::STATUS_SUCCESS,
            1,
            None,
            &FlushResponse,
        );
        rsp[16] |= 0x08;
        rsp[48..64].copy_from_slice(&[0xEE; 16]);
        peer.send_raw(&rsp).await;
        let e = p.wait().await.unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_INVALID_SIGNATURE);

        // An unsigned one on a session that requires signing is refused too.
        let p = conn
            .submit(
                &h,
                &FlushRequest {
                    file_id: FileId::default(),
                },
                &opts,
            )
            .await
            .unwrap();
        let req = peer.recv_one().await;
        peer.reply(&req.header, 1, &FlushResponse).await;
        let e = p.wait().await.unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_ACCESS_DENIED);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn encrypted_requests_and_responses_go_through_the_hook() {
    tokio::time::timeout(LIMIT, async {
        let (conn, mut peer) = pair().await;
        grant(&conn, &mut peer, 10).await;
        let keys = Arc::new(ToyKeys {
            session: 0x99,
            key: 0xA5,
        });
        conn.register_session(keys.clone());
        let opts = SendOptions {
            security: Some(keys.clone()),
            sign: true,
            encrypt: true,
        };
        let mut h = Header::request(Command::WRITE);
        h.session_id = 0x99;
        let w = WriteRequest {
            data: Bytes::from_static(b"secret data"),
            ..Default::default()
        };
        let p = conn.submit_write(&h, &w, &opts).await.unwrap();
        let frame = peer.recv_frame().await;
        assert_eq!(classify(&frame).unwrap(), FrameKind::Transform);
        let plain = keys.decrypt(&frame).unwrap();
        let req = Message::parse(plain).unwrap();
        let got: WriteRequest = req.body().unwrap();
        assert_eq!(&got.data[..], b"secret data");
        assert!(
            !req.header.flags.contains(HeaderFlags::SIGNED),
            "encrypted, not signed"
        );
        let rsp = Peer::response(
            &req.header,
            NtStatus::STATUS_SUCCESS,
            1,
            None,
            &WriteResponse {
                count: 11,
                remaining: 0,
            },
        );
        let t = keys.encrypt(&rsp).unwrap();
        peer.send_raw(&t).await;
        let m = p.wait().await.unwrap();
        assert_eq!(m.body::<WriteResponse>().unwrap().count, 11);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn an_unanswered_request_times_out_and_can_be_cancelled() {
    let (conn, mut peer) = pair().await;
    grant(&conn, &mut peer, 5).await;
    // From here the clock is paused: the timeout below fires as soon as all is idle.
    tokio::time::pause();
    let p = conn
        .submit(
            &Header::request(Command::ECHO),
            &EchoRequest,
            &SendOptions::default(),
        )
        .await
        .unwrap();
    let mid = p.message_id();
    peer.recv_one().await;
    let e = p.wait_timeout(Duration::from_secs(30)).await.unwrap_err();
    assert_eq!(e.nt_status(), NtStatus::STATUS_IO_TIMEOUT);
    assert_eq!(conn.outstanding(), 1, "still outstanding on the server");
    conn.cancel(mid, &SendOptions::default()).await.unwrap();
    let c = peer.recv_one().await;
    assert_eq!(c.header.command, Command::CANCEL);
    assert_eq!(c.header.message_id, mid);
    assert_eq!(
        c.header.async_id, None,
        "no interim response, so a sync CANCEL"
    );
}

#[tokio::test]
async fn a_server_that_grants_no_credits_gets_a_clear_error_not_a_hang() {
    tokio::time::timeout(LIMIT, async {
        let (conn, mut peer) = pair().await;
        grant(&conn, &mut peer, 0).await;
        assert_eq!(conn.available_credits(), 0);
        let e = conn.echo().await.unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_INSUFFICIENT_RESOURCES);
        assert!(e.to_string().contains("no credits"), "{e}");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn shutdown_fails_outstanding_requests_and_closes_the_socket() {
    tokio::time::timeout(LIMIT, async {
        let (conn, mut peer) = pair().await;
        grant(&conn, &mut peer, 4).await;
        let p = conn
            .submit(
                &Header::request(Command::ECHO),
                &EchoRequest,
                &SendOptions::default(),
            )
            .await
            .unwrap();
        peer.recv_one().await;
        conn.shutdown().await;
        let e = p.wait().await.unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_CONNECTION_DISCONNECTED);
        // The peer sees end of stream.
        let mut b = [0u8; 1];
        assert_eq!(peer.sock.read(&mut b).await.unwrap(), 0);
        assert!(conn.echo().await.is_err());
    })
    .await
    .unwrap();
}
