//! Faults against the real Samba: wrong password, unknown share, nothing listening, and smbd
//! killed in the middle of a large read (its own private smbd, killed by PID).

mod samba_common;

use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use rdr_core::NtStatus;
use rdr_core::minirdr::{AccessMask, CreateDisposition};
use rdr_smb::{ClientConfig, Identity, Session, SmbClient, Tree};
use samba_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_logon_failure() {
    let Some(env) = env() else { return };
    bounded(30, "wrong password", async {
        let client = env.client(ClientConfig::default()).await;
        let who = Identity {
            user: env.user1.clone(),
            domain: String::new(),
            password: "not-the-password".into(),
        };
        let e = Session::setup(&client, &who).await.unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_LOGON_FAILURE, "{e}");
        assert!(
            e.to_string().contains(&env.user1) && e.to_string().contains(&env.host),
            "{e}"
        );
        // The connection survives a failed logon: the right password works on it.
        Session::setup(&client, &env.id1()).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_share_is_bad_network_name() {
    let Some(env) = env() else { return };
    bounded(30, "unknown share", async {
        let client = env.client(ClientConfig::default()).await;
        let s = Session::setup(&client, &env.id1()).await.unwrap();
        let e = Tree::connect(&s, "no-such-share").await.unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_BAD_NETWORK_NAME, "{e}");
        assert!(e.to_string().contains("no-such-share"), "{e}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_connection_refused_at_once() {
    let Some(_env) = env() else { return };
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = tokio::time::timeout(
        Duration::from_secs(1),
        SmbClient::connect("127.0.0.1", port, ClientConfig::default()),
    )
    .await
    .expect("refused within a second, not a timeout");
    let e = r.unwrap_err();
    assert_eq!(e.nt_status(), NtStatus::STATUS_CONNECTION_REFUSED, "{e}");
    assert!(e.to_string().contains(&port.to_string()), "{e}");
}

/// A private smbd (own config, state and port), reusing the fixture's users and passdb.
struct OwnSmbd {
    dir: String,
    port: u16,
    pgid: i32,
    child: std::process::Child,
}

impl OwnSmbd {
    fn start(env: &Env) -> OwnSmbd {
        let dir = format!("/tmp/rdr-smb-kill-{}", std::process::id());
        let _ = std::fs::remove_dir_all(&dir);
        for d in [
            "private", "lock", "state", "cache", "pid", "log", "ncalrpc", "data",
        ] {
            std::fs::create_dir_all(format!("{dir}/{d}")).unwrap();
        }
        for f in ["passdb.tdb", "secrets.tdb"] {
            let src = format!("{}/private/{f}", env.samba_dir);
            if std::path::Path::new(&src).exists() {
                std::fs::copy(&src, format!("{dir}/private/{f}")).unwrap();
            }
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            format!("{dir}/data"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        std::fs::write(
            format!("{dir}/smb.conf"),
            format!(
                "[global]\n server role = standalone server\n smb ports = {port}\n interfaces = 127.0.0.1\n \
                 bind interfaces only = yes\n disable netbios = yes\n private dir = {dir}/private\n \
                 lock directory = {dir}/lock\n state directory = {dir}/state\n cache directory = {dir}/cache\n \
                 pid directory = {dir}/pid\n ncalrpc dir = {dir}/ncalrpc\n log file = {dir}/log/log.%m\n \
                 load printers = no\n printing = bsd\n printcap name = /dev/null\n disable spoolss = yes\n\
                 [data]\n path = {dir}/data\n read only = no\n"
            ),
        )
        .unwrap();
        let child = std::process::Command::new("smbd")
            .args([
                "--foreground",
                "--no-process-group",
                "-s",
                &format!("{dir}/smb.conf"),
                "-l",
                &format!("{dir}/log"),
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        let s = OwnSmbd {
            dir,
            port,
            pgid,
            child,
        };
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "own smbd did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    /// SIGKILL to the smbd process group this test created (master and connection children).
    fn kill(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-9", "--", &format!("-{}", self.pgid)])
            .status();
    }
}

impl Drop for OwnSmbd {
    fn drop(&mut self) {
        self.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smbd_killed_during_a_large_read_fails_every_pending_request_quickly() {
    let Some(env) = env() else { return };
    let smbd = OwnSmbd::start(&env);
    // A large (sparse) file to read.
    let f = std::fs::File::create(format!("{}/data/big.bin", smbd.dir)).unwrap();
    f.set_len(2 << 30).unwrap();
    drop(f);
    let cfg = ClientConfig {
        io_chunk: 1 << 20,
        io_depth: 32,
        ..ClientConfig::default()
    };
    let client = bounded(
        20,
        "connect own smbd",
        SmbClient::connect("127.0.0.1", smbd.port, cfg),
    )
    .await
    .unwrap();
    let tree = bounded(20, "tree", env.tree(&client, &env.id1(), "data")).await;
    let f = bounded(
        20,
        "open",
        tree.create(
            "big.bin",
            &params(AccessMask::GENERIC_READ, CreateDisposition::Open),
        ),
    )
    .await
    .unwrap();
    // Four readers, each with many requests in flight; the first byte that arrives kills smbd.
    let smbd = std::sync::Arc::new(smbd);
    let f = std::sync::Arc::new(f);
    let killed_at = std::sync::Arc::new(parking_lot::Mutex::new(None::<Instant>));
    let mut tasks = Vec::new();
    for i in 0..4u64 {
        let (f, smbd, killed_at) = (f.clone(), smbd.clone(), killed_at.clone());
        tasks.push(tokio::spawn(async move {
            let r = f
                .read_each(i * (512 << 20), 512 << 20, |_, _| {
                    let mut k = killed_at.lock();
                    if k.is_none() {
                        smbd.kill();
                        *k = Some(Instant::now());
                    }
                    Ok(())
                })
                .await;
            (r, Instant::now())
        }));
    }
    for t in tasks {
        let (r, ended) = tokio::time::timeout(Duration::from_secs(60), t)
            .await
            .expect("every read ends (fails) instead of hanging")
            .unwrap();
        let e = r.expect_err("a read cannot finish: the server was killed");
        assert!(
            matches!(
                e.nt_status(),
                NtStatus::STATUS_CONNECTION_DISCONNECTED | NtStatus::STATUS_CONNECTION_RESET
            ),
            "{e}"
        );
        let k = killed_at.lock().expect("some data arrived before the kill");
        let since = ended.saturating_duration_since(k);
        assert!(
            since < Duration::from_secs(2),
            "a reader failed {since:?} after the kill"
        );
    }
    assert!(client.is_dead());
    // Later requests fail at once too.
    let e = bounded(2, "request on a dead connection", f.read(0, 10))
        .await
        .unwrap_err();
    assert!(e.nt_status().is_error(), "{e}");
}
