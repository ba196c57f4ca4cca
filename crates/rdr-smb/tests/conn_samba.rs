//! The connection engine and codec against a real, private Samba on 127.0.0.1 (port 44xx):
//! NEGOTIATE with every dialect and 3.1.1 context, then pipelined ECHOs. No session is
//! needed. Needs `smbd` (apt-get install -y samba); the server is started per test and
//! stopped by its PID.

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command as Proc, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdr_core::NtStatus;
use rdr_smb::conn::*;
use rdr_smb::proto::*;

const LIMIT: Duration = Duration::from_secs(60);

/// A private smbd, stopped (by PID) and cleaned up on drop.
struct PrivateSamba {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
}

fn smbd_path() -> PathBuf {
    for p in ["/usr/sbin/smbd", "/usr/bin/smbd", "/usr/local/sbin/smbd"] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("smbd not found: these tests need Samba (apt-get install -y samba)");
}

impl PrivateSamba {
    fn start(tag: &str) -> PrivateSamba {
        let smbd = smbd_path();
        let pid = std::process::id();
        let dir = PathBuf::from(format!("/tmp/rdr-smb-conn-{tag}-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        for d in [
            "private", "lock", "state", "cache", "pid", "log", "ncalrpc", "share",
        ] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        // Writable by the guest account the anonymous session maps to.
        std::fs::set_permissions(dir.join("share"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        // A free port in 4400..4499, starting from one derived from our PID; the counter keeps
        // servers started by concurrent tests of this process on different ports.
        static NEXT: AtomicU16 = AtomicU16::new(0);
        let base = pid as u16 % 50;
        let port = (0..100)
            .map(|_| 4400 + (base + NEXT.fetch_add(1, Ordering::Relaxed)) % 100)
            .find(|&p| StdListener::bind(("127.0.0.1", p)).is_ok())
            .expect("no free port in 4400..4499");
        let d = dir.display();
        let log_level = std::env::var("RDR_SAMBA_LOG_LEVEL").unwrap_or_else(|_| "1".into());
        let conf = format!(
            "[global]\n\
             server role = standalone server\n\
             smb ports = {port}\n\
             interfaces = 127.0.0.1\n\
             bind interfaces only = yes\n\
             disable netbios = yes\n\
             private dir = {d}/private\n\
             lock directory = {d}/lock\n\
             state directory = {d}/state\n\
             cache directory = {d}/cache\n\
             pid directory = {d}/pid\n\
             ncalrpc dir = {d}/ncalrpc\n\
             log file = {d}/log/log.%m\n\
             log level = {log_level}\n\
             load printers = no\n\
             printing = bsd\n\
             printcap name = /dev/null\n\
             disable spoolss = yes\n\
             [data]\n\
             path = {d}/share\n\
             read only = no\n\
             guest ok = yes\n"
        );
        std::fs::write(dir.join("smb.conf"), conf).unwrap();
        let child = Proc::new(smbd)
            .arg("--foreground")
            .arg("--no-process-group")
            .arg("-s")
            .arg(dir.join("smb.conf"))
            .arg("-l")
            .arg(dir.join("log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smbd");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut s = PrivateSamba { child, dir, addr };
        let t0 = Instant::now();
        while StdStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!("smbd exited early ({st}); see {}/log", s.dir.display());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(30),
                "smbd did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }
}

impl Drop for PrivateSamba {
    fn drop(&mut self) {
        let _ = self.child.kill(); // SIGKILL to the PID we started
        let _ = self.child.wait();
        let dcerpcd = std::fs::read_to_string(self.dir.join("pid/samba-dcerpcd.pid"));
        if let Some(pid) = dcerpcd.ok().and_then(|p| p.trim().parse::<i32>().ok()) {
            let _ = Proc::new("kill").arg(pid.to_string()).status();
        }
        // RDR_KEEP_SAMBA=1 keeps config and logs for a post-mortem.
        if std::env::var_os("RDR_KEEP_SAMBA").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn negotiate_request(dialects: Vec<Dialect>) -> NegotiateRequest {
    let mut salt = [0u8; 32];
    for (i, b) in salt.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37) ^ (std::process::id() as u8);
    }
    NegotiateRequest {
        security_mode: SecurityMode::SIGNING_ENABLED,
        capabilities: Capabilities::DFS
            | Capabilities::LEASING
            | Capabilities::LARGE_MTU
            | Capabilities::ENCRYPTION,
        client_guid: *b"rdr-smb-testguid",
        dialects,
        contexts: vec![
            NegotiateContext::PreauthIntegrity {
                hash_algorithms: vec![HASH_SHA512],
                salt: Bytes::copy_from_slice(&salt),
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
            NegotiateContext::NetName("127.0.0.1".into()),
        ],
    }
}

#[tokio::test]
async fn samba_negotiates_311_with_preauth_cipher_and_signing_then_answers_echoes() {
    let samba = PrivateSamba::start("neg");
    tokio::time::timeout(LIMIT, async {
        let conn = Connection::connect(samba.addr, ConnConfig::default())
            .await
            .unwrap();
        let req = negotiate_request(Dialect::ALL.to_vec());
        let p = conn
            .submit(
                &Header::request(Command::NEGOTIATE),
                &req,
                &SendOptions::default(),
            )
            .await
            .unwrap();
        // The request bytes are kept for the preauth hash, and decode back to what we sent.
        let sent = Message::parse(p.request_bytes().clone()).unwrap();
        assert_eq!(sent.body::<NegotiateRequest>().unwrap(), req);
        let m = p.wait().await.unwrap();
        assert_eq!(m.header.status, NtStatus::STATUS_SUCCESS);
        assert!(m.header.credits >= 1);
        let r: NegotiateResponse = m.body().unwrap();
        assert_eq!(r.dialect, Dialect::SMB3_1_1);
        let (hash, salt) = r.preauth().expect("preauth context");
        assert_eq!(hash, HASH_SHA512);
        assert_eq!(salt.len(), 32);
        let cipher = r.cipher().expect("encryption context");
        assert!((1..=4).contains(&cipher), "cipher {cipher}");
        let sig = r.signing_algorithm().expect("signing context");
        assert!(sig <= SIGNING_AES_GMAC, "signing algorithm {sig}");
        assert!(r.security_mode.contains(SecurityMode::SIGNING_ENABLED));
        assert_eq!(r.security_buffer.first(), Some(&0x60), "SPNEGO token");
        assert!(r.max_read_size >= 65536 && r.max_write_size >= 65536);
        assert!(r.system_time.to_system_time().is_some());
        assert!(r.capabilities.contains(Capabilities::LARGE_MTU));
        conn.set_large_mtu(true);

        // Whatever Samba sent decodes through the generic path too.
        assert!(matches!(
            decode_response(&m).unwrap(),
            AnyResponse::Negotiate(_)
        ));

        conn.echo().await.unwrap();
        // 64 pipelined echoes, all in flight at once as credits allow.
        let mut handles = Vec::new();
        for _ in 0..64 {
            let c = conn.clone();
            handles.push(tokio::spawn(async move { c.echo().await }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        assert_eq!(conn.outstanding(), 0);
        assert!(conn.available_credits() > 1, "Samba granted more credits");
        assert!(conn.dead().is_none());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn samba_picks_21_when_offered_only_2x_and_sends_no_contexts() {
    let samba = PrivateSamba::start("neg21");
    tokio::time::timeout(LIMIT, async {
        let conn = Connection::connect(samba.addr, ConnConfig::default())
            .await
            .unwrap();
        let req = negotiate_request(vec![Dialect::SMB2_0_2, Dialect::SMB2_1]);
        let m = conn
            .send(
                &Header::request(Command::NEGOTIATE),
                &req,
                &SendOptions::default(),
            )
            .await
            .unwrap();
        let r: NegotiateResponse = m.body().unwrap();
        assert_eq!(r.dialect, Dialect::SMB2_1);
        assert!(r.contexts.is_empty());
        conn.echo().await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn samba_closing_the_connection_fails_the_waiters() {
    let samba = PrivateSamba::start("kill");
    tokio::time::timeout(LIMIT, async {
        let conn = Connection::connect(samba.addr, ConnConfig::default())
            .await
            .unwrap();
        let req = negotiate_request(Dialect::ALL.to_vec());
        conn.send(
            &Header::request(Command::NEGOTIATE),
            &req,
            &SendOptions::default(),
        )
        .await
        .unwrap();
        // A second NEGOTIATE on the same connection is a protocol violation: Samba drops
        // the connection, and the waiter learns it at once.
        let e = conn
            .send(
                &Header::request(Command::NEGOTIATE),
                &req,
                &SendOptions::default(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(
                e.nt_status(),
                NtStatus::STATUS_CONNECTION_DISCONNECTED | NtStatus::STATUS_CONNECTION_RESET
            ),
            "{e}"
        );
        assert!(conn.dead().is_some());
        assert!(conn.echo().await.is_err());
    })
    .await
    .unwrap();
    drop(samba);
}

// ---------------------------------------------------------------------------------------
// The codec end to end against Samba, on an anonymous (NULL) session: no keys are needed,
// so every file message can be checked against a real server without the auth layer.

/// NTLMSSP NEGOTIATE_MESSAGE (raw, Samba's SPNEGO server falls back to raw NTLMSSP).
fn ntlm_negotiate() -> Bytes {
    let mut b = b"NTLMSSP\0".to_vec();
    b.extend_from_slice(&1u32.to_le_bytes());
    // UNICODE | REQUEST_TARGET | NTLM | ALWAYS_SIGN | EXTENDED_SESSIONSECURITY | 128 | 56
    b.extend_from_slice(
        &(0x1u32 | 0x4 | 0x200 | 0x8000 | 0x8_0000 | 0x2000_0000 | 0x8000_0000).to_le_bytes(),
    );
    b.extend_from_slice(&[0; 16]); // domain and workstation fields
    Bytes::from(b)
}

/// NTLMSSP AUTHENTICATE_MESSAGE for an anonymous login: LM response of one zero byte, every
/// other field empty, NEGOTIATE_ANONYMOUS set.
fn ntlm_anonymous_authenticate() -> Bytes {
    let mut b = b"NTLMSSP\0".to_vec();
    b.extend_from_slice(&3u32.to_le_bytes());
    let payload = 64u32;
    let field = |b: &mut Vec<u8>, len: u16, off: u32| {
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(&off.to_le_bytes());
    };
    field(&mut b, 1, payload); // LmChallengeResponse: Z(1)
    field(&mut b, 0, payload + 1); // NtChallengeResponse
    field(&mut b, 0, payload + 1); // DomainName
    field(&mut b, 0, payload + 1); // UserName
    field(&mut b, 0, payload + 1); // Workstation
    field(&mut b, 0, payload + 1); // EncryptedRandomSessionKey
    b.extend_from_slice(
        &(0x1u32 | 0x200 | 0x800 | 0x8000 | 0x8_0000 | 0x2000_0000 | 0x8000_0000).to_le_bytes(),
    );
    assert_eq!(b.len(), 64);
    b.push(0);
    Bytes::from(b)
}

struct Anon {
    conn: Connection,
    session_id: u64,
    tree_id: u32,
}

impl Anon {
    fn h(&self, cmd: Command) -> Header {
        let mut h = Header::request(cmd);
        h.session_id = self.session_id;
        h.tree_id = self.tree_id;
        h
    }

    async fn ok<M: SmbMessage, R: SmbMessage>(&self, body: &M) -> R {
        let m = self
            .conn
            .send(&self.h(M::COMMAND), body, &SendOptions::default())
            .await
            .unwrap();
        assert_eq!(m.header.status, NtStatus::STATUS_SUCCESS, "{}", M::NAME);
        m.body::<R>().unwrap()
    }

    async fn open(&self, name: &str, disposition: CreateDisposition, dir: bool) -> CreateResponse {
        self.ok(&CreateRequest {
            desired_access: AccessMask::MAXIMUM_ALLOWED,
            create_disposition: disposition,
            create_options: if dir {
                CreateOptions::DIRECTORY_FILE
            } else {
                CreateOptions::NON_DIRECTORY_FILE
            },
            name: name.into(),
            ..Default::default()
        })
        .await
    }

    async fn close(&self, file_id: FileId) -> CloseResponse {
        self.ok(&CloseRequest {
            flags: CLOSE_FLAG_POSTQUERY_ATTRIB,
            file_id,
        })
        .await
    }

    async fn list(&self) -> Vec<String> {
        let d = self.open("", CreateDisposition::OPEN, true).await;
        let mut names = Vec::new();
        let mut flags = QueryDirectoryFlags::RESTART_SCANS;
        loop {
            let m = self
                .conn
                .send(
                    &self.h(Command::QUERY_DIRECTORY),
                    &QueryDirectoryRequest {
                        info_class: FileInfoClass::FileIdBothDirectoryInformation,
                        flags,
                        file_index: 0,
                        file_id: d.file_id,
                        pattern: "*".into(),
                        output_buffer_length: 65536,
                    },
                    &SendOptions::default(),
                )
                .await
                .unwrap();
            if m.header.status == NtStatus::STATUS_NO_MORE_FILES {
                break;
            }
            assert_eq!(m.header.status, NtStatus::STATUS_SUCCESS);
            let r: QueryDirectoryResponse = m.body().unwrap();
            for e in parse_id_both_directory_information(&r.output).unwrap() {
                names.push(e.info.name);
            }
            flags = QueryDirectoryFlags::empty();
        }
        self.close(d.file_id).await;
        names.sort();
        names
    }
}

async fn anonymous_session(samba: &PrivateSamba) -> Anon {
    let conn = Connection::connect(samba.addr, ConnConfig::default())
        .await
        .unwrap();
    let n = conn
        .negotiate(&negotiate_request(Dialect::ALL.to_vec()))
        .await
        .unwrap();
    assert_eq!(n.response.dialect, Dialect::SMB3_1_1);
    let ss = |sid: u64, token: Bytes| {
        let mut h = Header::request(Command::SESSION_SETUP);
        h.session_id = sid;
        (
            h,
            SessionSetupRequest {
                security_mode: SecurityMode::SIGNING_ENABLED,
                security_buffer: token,
                ..Default::default()
            },
        )
    };
    let (h, req) = ss(0, ntlm_negotiate());
    let m = conn.send(&h, &req, &SendOptions::default()).await.unwrap();
    assert_eq!(m.header.status, NtStatus::STATUS_MORE_PROCESSING_REQUIRED);
    let r: SessionSetupResponse = m.body().unwrap();
    assert!(
        r.security_buffer.starts_with(b"NTLMSSP\0\x02\0\0\0"),
        "NTLM CHALLENGE"
    );
    let sid = m.header.session_id;
    assert_ne!(sid, 0);
    let (h, req) = ss(sid, ntlm_anonymous_authenticate());
    let m = conn.send(&h, &req, &SendOptions::default()).await.unwrap();
    assert_eq!(m.header.status, NtStatus::STATUS_SUCCESS, "anonymous login");
    let r: SessionSetupResponse = m.body().unwrap();
    // Samba 4.17 reports an anonymous 3.1.1 session with no flags; it must not ask for
    // encryption, which an anonymous session has no keys for.
    assert!(!r.session_flags.contains(SessionFlags::ENCRYPT_DATA));
    let mut h = Header::request(Command::TREE_CONNECT);
    h.session_id = sid;
    let tc = TreeConnectRequest {
        flags: TreeConnectFlags::empty(),
        path: "\\\\127.0.0.1\\data".to_string(),
    };
    let m = conn.send(&h, &tc, &SendOptions::default()).await.unwrap();
    assert_eq!(m.header.status, NtStatus::STATUS_SUCCESS, "tree connect");
    let t: TreeConnectResponse = m.body().unwrap();
    assert_eq!(t.share_type, ShareType::DISK);
    Anon {
        conn,
        session_id: sid,
        tree_id: m.header.tree_id,
    }
}

#[tokio::test]
async fn file_messages_round_trip_through_samba_on_an_anonymous_session() {
    let samba = PrivateSamba::start("files");
    tokio::time::timeout(LIMIT, async {
        let a = anonymous_session(&samba).await;

        // CREATE with lease v2, maximal access and on-disk id contexts.
        let lease_key = [0x6C; 16];
        let c: CreateResponse = a
            .ok(&CreateRequest {
                requested_oplock_level: OplockLevel::LEASE,
                desired_access: AccessMask::GENERIC_READ
                    | AccessMask::GENERIC_WRITE
                    | AccessMask::DELETE,
                create_disposition: CreateDisposition::OVERWRITE_IF,
                create_options: CreateOptions::NON_DIRECTORY_FILE,
                name: "dir-less file.bin".into(),
                contexts: vec![
                    Lease {
                        key: lease_key,
                        state: LeaseState::READ_CACHING
                            | LeaseState::WRITE_CACHING
                            | LeaseState::HANDLE_CACHING,
                        flags: LeaseFlags::empty(),
                        duration: 0,
                        v2: Some(LeaseV2::default()),
                    }
                    .to_context(),
                    maximal_access_request(None),
                    query_on_disk_id_request(),
                ],
                ..Default::default()
            })
            .await;
        assert_eq!(c.create_action, CreateAction::CREATED);
        let lease = c.lease().unwrap().expect("lease granted");
        assert_eq!(lease.key, lease_key);
        assert!(
            lease.state.contains(LeaseState::READ_CACHING),
            "{:?}",
            lease.state
        );
        let mx = c.maximal_access().unwrap().expect("MxAc");
        assert_eq!(mx.query_status, NtStatus::STATUS_SUCCESS);
        assert!(
            mx.maximal_access.contains(AccessMask::FILE_READ_DATA),
            "{:#x}",
            mx.maximal_access.bits()
        );
        assert!(c.on_disk_id().unwrap().is_some());
        let fid = c.file_id;

        // IOCTL: a resume key (the first step of a server-side copy).
        let io: IoctlResponse = a
            .ok(&IoctlRequest {
                ctl_code: fsctl::FSCTL_SRV_REQUEST_RESUME_KEY,
                file_id: fid,
                max_output_response: 32,
                flags: IOCTL_IS_FSCTL,
                ..Default::default()
            })
            .await;
        assert_eq!(io.ctl_code, fsctl::FSCTL_SRV_REQUEST_RESUME_KEY);
        assert_eq!(io.file_id, fid);
        assert!(
            io.output.len() >= 24,
            "resume key of {} bytes",
            io.output.len()
        );

        // WRITE 200 KiB (multi-credit, vectored) and READ it back (multi-credit, zero copy).
        let data: Bytes = (0..200 * 1024u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>()
            .into();
        let p = a
            .conn
            .submit_write(
                &a.h(Command::WRITE),
                &WriteRequest {
                    offset: 0,
                    file_id: fid,
                    data: data.clone(),
                    ..Default::default()
                },
                &SendOptions::default(),
            )
            .await
            .unwrap();
        let m = p.wait().await.unwrap();
        assert_eq!(m.header.status, NtStatus::STATUS_SUCCESS);
        assert_eq!(
            m.body::<WriteResponse>().unwrap().count as usize,
            data.len()
        );
        let m = a
            .conn
            .send(
                &a.h(Command::READ),
                &ReadRequest {
                    padding: 0x50,
                    length: data.len() as u32,
                    file_id: fid,
                    ..Default::default()
                },
                &SendOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(m.header.status, NtStatus::STATUS_SUCCESS);
        let r: ReadResponse = m.body().unwrap();
        assert_eq!(r.data, data);
        assert!(m.bytes.as_ptr_range().contains(&r.data.as_ptr()));
        // Reading at EOF: STATUS_END_OF_FILE with an error body.
        let m = a
            .conn
            .send(
                &a.h(Command::READ),
                &ReadRequest {
                    length: 10,
                    offset: data.len() as u64,
                    file_id: fid,
                    ..Default::default()
                },
                &SendOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(m.header.status, NtStatus::STATUS_END_OF_FILE);
        assert!(matches!(
            decode_response(&m).unwrap(),
            AnyResponse::Error(_)
        ));

        // QUERY_INFO FileAllInformation.
        let q: QueryInfoResponse = a
            .ok(&QueryInfoRequest::file(
                fid,
                FileInfoClass::FileAllInformation,
                4096,
            ))
            .await;
        let all = FileAllInformation::parse(&q.output).unwrap();
        assert_eq!(all.standard.end_of_file, data.len() as u64);
        assert!(!all.standard.directory);
        assert!(all.basic.last_write_time.to_system_time().is_some());

        // SET_INFO: truncate, then set the write time; read both back.
        let _: SetInfoResponse = a
            .ok(&SetInfoRequest::file(
                fid,
                FileInfoClass::FileEndOfFileInformation,
                FileEndOfFileInformation { end_of_file: 1000 }.encode(),
            ))
            .await;
        let when = FileTime(133_000_000_000_000_000); // 2022-06-15
        let _: SetInfoResponse = a
            .ok(&SetInfoRequest::file(
                fid,
                FileInfoClass::FileBasicInformation,
                FileBasicInformation {
                    last_write_time: when,
                    ..Default::default()
                }
                .encode(),
            ))
            .await;
        let q: QueryInfoResponse = a
            .ok(&QueryInfoRequest::file(
                fid,
                FileInfoClass::FileNetworkOpenInformation,
                56,
            ))
            .await;
        let no = FileNetworkOpenInformation::parse(&q.output).unwrap();
        assert_eq!(no.end_of_file, 1000);
        assert_eq!(no.last_write_time, when);
        let q: QueryInfoResponse = a
            .ok(&QueryInfoRequest::file(
                fid,
                FileInfoClass::FileStandardInformation,
                24,
            ))
            .await;
        assert_eq!(
            FileStandardInformation::parse(&q.output)
                .unwrap()
                .end_of_file,
            1000
        );

        // LOCK, then a conflicting lock on another handle fails at once, then unlock.
        let _: LockResponse = a
            .ok(&LockRequest {
                lock_sequence: 0,
                file_id: fid,
                locks: vec![LockElement {
                    offset: 0,
                    length: 100,
                    flags: LockFlags::EXCLUSIVE | LockFlags::FAIL_IMMEDIATELY,
                }],
            })
            .await;
        // A second open (no lease) conflicts with our RWH lease: Samba holds it (interim
        // response) and sends a lease break, which we acknowledge; then the open completes.
        let mut breaks = a.conn.take_unsolicited().unwrap();
        let second = {
            let conn = a.conn.clone();
            let h = a.h(Command::CREATE);
            tokio::spawn(async move {
                let req = CreateRequest {
                    desired_access: AccessMask::GENERIC_READ,
                    create_disposition: CreateDisposition::OPEN,
                    name: "dir-less file.bin".into(),
                    ..Default::default()
                };
                conn.send(&h, &req, &SendOptions::default()).await
            })
        };
        let b = breaks.recv().await.unwrap();
        let OplockBreakMessage::LeaseBreak(lb) = OplockBreakMessage::decode(&b.bytes).unwrap()
        else {
            panic!("expected a lease break")
        };
        assert_eq!(lb.lease_key, lease_key);
        assert_eq!(
            lb.flags & LEASE_BREAK_ACK_REQUIRED,
            LEASE_BREAK_ACK_REQUIRED
        );
        assert!(lb.current_state.contains(LeaseState::WRITE_CACHING));
        assert!(!lb.new_state.contains(LeaseState::WRITE_CACHING));
        let ack: LeaseBreakAck = a
            .ok(&LeaseBreakAck {
                flags: 0,
                lease_key,
                lease_state: lb.new_state,
                lease_duration: 0,
            })
            .await;
        assert_eq!(ack.lease_state, lb.new_state);
        let m = second.await.unwrap().unwrap();
        assert_eq!(m.header.status, NtStatus::STATUS_SUCCESS);
        let other: CreateResponse = m.body().unwrap();
        let m = a
            .conn
            .send(
                &a.h(Command::LOCK),
                &LockRequest {
                    lock_sequence: 0,
                    file_id: other.file_id,
                    locks: vec![LockElement {
                        offset: 50,
                        length: 10,
                        flags: LockFlags::SHARED | LockFlags::FAIL_IMMEDIATELY,
                    }],
                },
                &SendOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(m.header.status, NtStatus::STATUS_LOCK_NOT_GRANTED);
        let _: LockResponse = a
            .ok(&LockRequest {
                lock_sequence: 0,
                file_id: fid,
                locks: vec![LockElement {
                    offset: 0,
                    length: 100,
                    flags: LockFlags::UNLOCK,
                }],
            })
            .await;
        a.close(other.file_id).await;

        // FLUSH, then CLOSE with attributes.
        let _: FlushResponse = a.ok(&FlushRequest { file_id: fid }).await;
        let cl = a.close(fid).await;
        assert_eq!(cl.flags, CLOSE_FLAG_POSTQUERY_ATTRIB);
        assert_eq!(cl.end_of_file, 1000);

        // QUERY_DIRECTORY sees it; rename; delete through disposition.
        assert_eq!(a.list().await, vec![".", "..", "dir-less file.bin"]);
        // The other directory classes parse Samba's answers too.
        let d = a.open("", CreateDisposition::OPEN, true).await;
        for class in [
            FileInfoClass::FileDirectoryInformation,
            FileInfoClass::FileIdFullDirectoryInformation,
            FileInfoClass::FileNamesInformation,
        ] {
            let r: QueryDirectoryResponse = a
                .ok(&QueryDirectoryRequest {
                    info_class: class,
                    flags: QueryDirectoryFlags::RESTART_SCANS,
                    file_index: 0,
                    file_id: d.file_id,
                    pattern: "dir-less*".into(),
                    output_buffer_length: 65536,
                })
                .await;
            let names: Vec<String> = match class {
                FileInfoClass::FileDirectoryInformation => parse_directory_information(&r.output)
                    .unwrap()
                    .into_iter()
                    .map(|e| {
                        assert_eq!(e.end_of_file, 1000);
                        e.name
                    })
                    .collect(),
                FileInfoClass::FileIdFullDirectoryInformation => {
                    parse_id_full_directory_information(&r.output)
                        .unwrap()
                        .into_iter()
                        .map(|e| {
                            assert_ne!(e.file_id, 0);
                            e.info.name
                        })
                        .collect()
                }
                _ => parse_names_information(&r.output)
                    .unwrap()
                    .into_iter()
                    .map(|(_, n)| n)
                    .collect(),
            };
            assert_eq!(names, vec!["dir-less file.bin"], "{class:?}");
        }
        a.close(d.file_id).await;
        let c = a
            .open("dir-less file.bin", CreateDisposition::OPEN, false)
            .await;
        let _: SetInfoResponse = a
            .ok(&SetInfoRequest::file(
                c.file_id,
                FileInfoClass::FileRenameInformation,
                FileRenameInformation {
                    replace_if_exists: false,
                    root_directory: 0,
                    name: "renamed ü.txt".into(),
                }
                .encode()
                .unwrap(),
            ))
            .await;
        let _: SetInfoResponse = a
            .ok(&SetInfoRequest::file(
                c.file_id,
                FileInfoClass::FileDispositionInformation,
                FileDispositionInformation {
                    delete_pending: true,
                }
                .encode(),
            ))
            .await;
        assert_eq!(a.list().await, vec![".", "..", "renamed ü.txt"]);
        a.close(c.file_id).await;
        assert_eq!(a.list().await, vec![".", ".."]);

        // A compound CREATE + QUERY_INFO + CLOSE on a missing file: the first fails, the
        // related ones fail with it.
        let mut b = CompoundBuilder::new();
        b.push(
            &a.h(Command::CREATE),
            &CreateRequest {
                desired_access: AccessMask::FILE_READ_ATTRIBUTES,
                name: "missing".into(),
                ..Default::default()
            },
            false,
        )
        .unwrap();
        b.push(
            &a.h(Command::QUERY_INFO),
            &QueryInfoRequest::file(FileId::RELATED, FileInfoClass::FileBasicInformation, 40),
            true,
        )
        .unwrap();
        b.push(
            &a.h(Command::CLOSE),
            &CloseRequest {
                flags: 0,
                file_id: FileId::RELATED,
            },
            true,
        )
        .unwrap();
        let pend = a
            .conn
            .submit_compound(
                b,
                &[0, 40, 0],
                &a.h(Command::CREATE),
                &SendOptions::default(),
            )
            .await
            .unwrap();
        let mut st = Vec::new();
        for p in pend {
            st.push(p.wait().await.unwrap().header.status);
        }
        assert_eq!(st[0], NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
        assert!(st[1].is_error() && st[2].is_error(), "{st:?}");

        // FS info.
        let root = a.open("", CreateDisposition::OPEN, true).await;
        let q: QueryInfoResponse = a
            .ok(&QueryInfoRequest::fs(
                root.file_id,
                FsInfoClass::FileFsFullSizeInformation,
                32,
            ))
            .await;
        let fs = FileFsFullSizeInformation::parse(&q.output).unwrap();
        assert!(fs.total_allocation_units > 0 && fs.bytes_per_sector > 0);
        let q: QueryInfoResponse = a
            .ok(&QueryInfoRequest::fs(
                root.file_id,
                FsInfoClass::FileFsAttributeInformation,
                512,
            ))
            .await;
        let attr = FileFsAttributeInformation::parse(&q.output).unwrap();
        assert!(attr.maximum_component_name_length >= 255);

        // CHANGE_NOTIFY: pends (usually with an interim response), completes when a file appears.
        let notify = ChangeNotifyRequest {
            flags: 0,
            output_buffer_length: 4096,
            file_id: root.file_id,
            completion_filter: CompletionFilter::FILE_NAME,
        };
        let p = a
            .conn
            .submit(
                &a.h(Command::CHANGE_NOTIFY),
                &notify,
                &SendOptions::default(),
            )
            .await
            .unwrap();
        // Samba may process a CREATE sent right after the notify before it has registered the
        // watch (a notify reports only later changes), so keep creating files until one is
        // reported; the event must name one of them.
        let mut waiting = Box::pin(p.wait());
        let mut created = Vec::new();
        let m = loop {
            let name = format!("new-{}", created.len());
            let f = a.open(&name, CreateDisposition::CREATE, false).await;
            a.close(f.file_id).await;
            created.push(name);
            match tokio::time::timeout(Duration::from_millis(500), &mut waiting).await {
                Ok(m) => break m.unwrap(),
                Err(_) => assert!(created.len() < 20, "no change notification for {created:?}"),
            }
        };
        assert_eq!(m.header.status, NtStatus::STATUS_SUCCESS);
        let r: ChangeNotifyResponse = m.body().unwrap();
        let ev = parse_notify_information(&r.output).unwrap();
        assert_eq!(ev[0].action, NotifyAction::ADDED);
        assert!(
            created.contains(&ev[0].name),
            "{:?} not in {created:?}",
            ev[0].name
        );

        // CANCEL a pending CHANGE_NOTIFY: it completes with STATUS_CANCELLED.
        let p = a
            .conn
            .submit(
                &a.h(Command::CHANGE_NOTIFY),
                &notify,
                &SendOptions::default(),
            )
            .await
            .unwrap();
        // Samba reads requests in order, so the CANCEL finds the notify whether or not its
        // interim response (and AsyncId) has reached us yet.
        a.conn
            .cancel(p.message_id(), &SendOptions::default())
            .await
            .unwrap();
        let m = p.wait().await.unwrap();
        assert_eq!(m.header.status, NtStatus::STATUS_CANCELLED);
        a.close(root.file_id).await;

        let _: TreeDisconnectResponse = a.ok(&TreeDisconnectRequest).await;
        let _: LogoffResponse = a.ok(&LogoffRequest).await;
    })
    .await
    .unwrap();
}
