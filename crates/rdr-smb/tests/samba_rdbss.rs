//! `SmbRdr` under rdr-core's `Rdbss` against the real Samba, seen from the server with
//! `smbstatus`: finalize without force keeps the open handle (FILES_OPEN), with force the server
//! holds no handle of the view afterwards; the transport is reused within the linger time and
//! closed after it; two users' views of the server share that one TCP connection. (One test in
//! this binary, so the socket count is ours alone.)

mod samba_common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdr_core::minirdr::{CreateDisposition, Credentials, Secret};
use rdr_core::name::RemoteName;
use rdr_core::{ForceLevel, NtStatus, Rdbss, RdbssConfig, RxContext};
use rdr_smb::{SmbConfig, SmbRdr};
use samba_common::*;

/// Inodes of this process's ESTABLISHED TCP sockets connected to `port`.
fn sockets_to(port: u16) -> Vec<String> {
    let mut inodes = std::collections::HashSet::new();
    for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(l) = std::fs::read_link(fd.path()) {
            let l = l.to_string_lossy().to_string();
            if let Some(n) = l.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                inodes.insert(n.to_string());
            }
        }
    }
    let mut out = Vec::new();
    for file in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(t) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in t.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            let rport = f[2]
                .rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if rport == Some(port) && f[3] == "01" && inodes.contains(f[9]) {
                out.push(f[9].to_string());
            }
        }
    }
    out
}

/// `smbstatus -L` (open files) of the fixture.
fn server_open_files(env: &Env) -> String {
    let o = std::process::Command::new("smbstatus")
        .args(["-s", &env.conf, "-L"])
        .output()
        .expect("run smbstatus");
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_seen_from_the_server_and_transport_reuse() {
    let Some(env) = env() else { return };
    bounded(90, "rdbss", async {
        let linger = Duration::from_secs(2);
        let rdr = Arc::new(SmbRdr::new(SmbConfig {
            port: env.port,
            linger,
            ..SmbConfig::default()
        }));
        let rdbss = Rdbss::new(rdr, RdbssConfig::default());
        let _scavenger = rdbss.spawn_scavenger(Duration::from_millis(200));
        let ctx = RxContext::new();
        let remote = RemoteName::parse(&format!("//{}/{}", env.host, env.share)).unwrap();
        let creds = || Credentials {
            logon_id: 0,
            user: Some(env.user1.clone()),
            domain: None,
            password: Some(Secret::new(env.pass1.clone())),
        };
        let v = rdbss.add_connection(&remote, creds(), &ctx).await.unwrap();
        let sock = sockets_to(env.port);
        assert_eq!(sock.len(), 1);

        // A second user's view of the same server rides on the same single TCP connection
        // (its own session on the shared transport), and works.
        let creds2 = Credentials {
            logon_id: 0,
            user: Some(env.user2.clone()),
            domain: None,
            password: Some(Secret::new(env.pass2.clone())),
        };
        let v2 = rdbss.add_connection(&remote, creds2, &ctx).await.unwrap();
        assert_eq!(
            sockets_to(env.port),
            sock,
            "both users' views use exactly one TCP connection to port {}",
            env.port
        );
        let name2 = unique("user2");
        let h2 = rdbss
            .create(&v2, &name2, &params(rw(), CreateDisposition::Create), &ctx)
            .await
            .unwrap();
        rdbss
            .write(&h2, 0, Bytes::from_static(b"two"), &ctx)
            .await
            .unwrap();
        assert_eq!(&rdbss.read(&h2, 0, 10, &ctx).await.unwrap()[..], b"two");
        rdbss.close(&h2).await.unwrap();
        assert_eq!(sockets_to(env.port), sock, "still one connection");
        let o = rdbss
            .finalize_connection(&v2.net_root(), Some(&v2), ForceLevel::Yes, &ctx)
            .await;
        assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
        std::fs::remove_file(format!("{}/data/{name2}", env.samba_dir)).unwrap();
        assert_eq!(
            sockets_to(env.port),
            sock,
            "user 1's view keeps the connection after user 2's view is finalized"
        );
        let name = unique("held");
        let h = rdbss
            .create(&v, &name, &params(rw(), CreateDisposition::Create), &ctx)
            .await
            .unwrap();
        rdbss
            .write(&h, 0, Bytes::from_static(b"data"), &ctx)
            .await
            .unwrap();
        assert!(
            server_open_files(&env).contains(&name),
            "the server holds the handle"
        );

        // No force, a file open: FILES_OPEN and the server still holds the handle.
        let o = rdbss
            .finalize_connection(&v.net_root(), Some(&v), ForceLevel::No, &ctx)
            .await;
        assert_eq!(o.status, NtStatus::STATUS_FILES_OPEN);
        assert!(
            server_open_files(&env).contains(&name),
            "still held after FILES_OPEN"
        );

        // Force: afterwards the server holds no handle of the view.
        let o = rdbss
            .finalize_connection(&v.net_root(), Some(&v), ForceLevel::Yes, &ctx)
            .await;
        assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
        let t = Instant::now();
        while server_open_files(&env).contains(&name) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the server still holds {name}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The orphaned handle fails I/O; closing it succeeds.
        assert!(rdbss.read(&h, 0, 4, &ctx).await.is_err());
        rdbss.close(&h).await.unwrap();

        // Within the linger time a new view reuses the same TCP connection.
        let v = rdbss.add_connection(&remote, creds(), &ctx).await.unwrap();
        assert_eq!(
            sockets_to(env.port),
            sock,
            "the dormant transport was reused"
        );
        let h = rdbss
            .create(&v, &name, &params(rw(), CreateDisposition::Open), &ctx)
            .await
            .unwrap();
        assert_eq!(&rdbss.read(&h, 0, 10, &ctx).await.unwrap()[..], b"data");
        rdbss.close(&h).await.unwrap();
        let o = rdbss
            .finalize_connection(&v.net_root(), Some(&v), ForceLevel::Yes, &ctx)
            .await;
        assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
        // After the linger time the scavenger closes it.
        let t = Instant::now();
        while !sockets_to(env.port).is_empty() {
            assert!(
                t.elapsed() < linger + Duration::from_secs(10),
                "the transport outlived its linger time"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        std::fs::remove_file(format!("{}/data/{name}", env.samba_dir)).unwrap();
    })
    .await;
}
