//! The connection engine and codec against a real, private Samba on 127.0.0.1 (port 44xx):
//! NEGOTIATE with every dialect and 3.1.1 context, then pipelined ECHOs. No session is
//! needed. Needs `smbd` (apt-get install -y samba); the server is started per test and
//! stopped by its PID.

use std::net::{SocketAddr, TcpListener as StdListener, TcpStream as StdStream};
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
             read only = no\n"
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
