//! Against the real Samba: two users' sessions ride on ONE TCP connection, and LOGOFF of one
//! leaves the other working. (One test in this binary, so the socket count is ours alone.)

mod samba_common;

use bytes::Bytes;
use rdr_core::NtStatus;
use rdr_core::minirdr::CreateDisposition;
use rdr_smb::{ClientConfig, Session, Tree};
use samba_common::*;

/// ESTABLISHED TCP sockets of this process connected to `port`.
fn sockets_to(port: u16) -> usize {
    let mut inodes = std::collections::HashSet::new();
    for fd in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        if let Ok(l) = std::fs::read_link(fd.path()) {
            let l = l.to_string_lossy().to_string();
            if let Some(n) = l.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                inodes.insert(n.to_string());
            }
        }
    }
    let mut n = 0;
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
                n += 1;
            }
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_share_one_connection_and_logoff_keeps_the_other() {
    let Some(env) = env() else { return };
    bounded(60, "two users", async {
        assert_eq!(sockets_to(env.port), 0);
        let client = env.client(ClientConfig::default()).await;
        let s1 = Session::setup(&client, &env.id1()).await.unwrap();
        let s2 = Session::setup(&client, &env.id2()).await.unwrap();
        assert_ne!(s1.id(), s2.id());
        let t1 = Tree::connect(&s1, &env.share).await.unwrap();
        let t2 = Tree::connect(&s2, &env.share).await.unwrap();
        assert_eq!(
            sockets_to(env.port),
            1,
            "both sessions on one TCP connection"
        );

        // Each user creates a file; the server records each file's owner.
        let n1 = unique("user1");
        let n2 = unique("user2");
        let f1 = t1
            .create(&n1, &params(rw(), CreateDisposition::Create))
            .await
            .unwrap();
        let f2 = t2
            .create(&n2, &params(rw(), CreateDisposition::Create))
            .await
            .unwrap();
        f1.write(0, Bytes::from_static(b"one")).await.unwrap();
        f2.write(0, Bytes::from_static(b"two")).await.unwrap();
        f1.close().await.unwrap();
        f2.close().await.unwrap();
        use std::os::unix::fs::MetadataExt;
        let uid = |n: &str| {
            std::fs::metadata(format!("{}/data/{n}", env.samba_dir))
                .unwrap()
                .uid()
        };
        let uid_of = |u: &str| {
            let o = std::process::Command::new("id")
                .args(["-u", u])
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<u32>()
                .unwrap()
        };
        assert_eq!(uid(&n1), uid_of(&env.user1));
        assert_eq!(uid(&n2), uid_of(&env.user2));

        // User 1 logs off: user 2 keeps working on the same connection.
        t1.disconnect().await.unwrap();
        s1.logoff().await.unwrap();
        let f2 = t2
            .create(&n2, &params(rw(), CreateDisposition::Open))
            .await
            .unwrap();
        assert_eq!(&f2.read(0, 10).await.unwrap()[..], b"two");
        f2.close().await.unwrap();
        assert_eq!(sockets_to(env.port), 1, "the connection stayed");
        // The logged-off session is gone on the server.
        let e = t1
            .create(&n1, &params(rw(), CreateDisposition::Open))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e.nt_status(),
                NtStatus::STATUS_USER_SESSION_DELETED | NtStatus::STATUS_NETWORK_NAME_DELETED
            ),
            "{e}"
        );
        // A new session for user 1 comes back on the same connection.
        let s1 = Session::setup(&client, &env.id1()).await.unwrap();
        let t1 = Tree::connect(&s1, &env.share).await.unwrap();
        let f1 = t1
            .create(&n1, &params(rw(), CreateDisposition::Open))
            .await
            .unwrap();
        f1.set_info(&rdr_core::minirdr::SetInfo::Disposition(true))
            .await
            .unwrap();
        f1.close().await.unwrap();
        let f2 = t2
            .create(&n2, &params(rw(), CreateDisposition::Open))
            .await
            .unwrap();
        f2.set_info(&rdr_core::minirdr::SetInfo::Disposition(true))
            .await
            .unwrap();
        f2.close().await.unwrap();
        assert_eq!(sockets_to(env.port), 1);
        client.shutdown().await;
    })
    .await;
}
