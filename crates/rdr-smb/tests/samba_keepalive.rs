//! ECHO keepalive and dead-peer detection against the real Samba, through an in-test TCP proxy
//! that can go silent: it stops forwarding in both directions but keeps both sockets open,
//! which is what a vanished server (cable pulled, host frozen, packets dropped) looks like.
//! An idle healthy connection sends ECHOs and stays up; a silent one is declared dead and
//! every outstanding request fails at once; a CHANGE_NOTIFY that legitimately pends for longer
//! than the dead timeout is not killed.

mod samba_common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use rdr_core::minirdr::{CreateDisposition, notify_filter};
use rdr_core::{NtStatus, RxContext};
use rdr_smb::{ClientConfig, SmbClient};
use samba_common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

// Long enough that a loaded CI machine answers an ECHO in time; short enough for a test.
const INTERVAL: Duration = Duration::from_secs(1);
const TIMEOUT: Duration = Duration::from_secs(3);

/// A TCP proxy on 127.0.0.1 (ephemeral port) in front of the fixture.
struct Proxy {
    port: u16,
    silent: Arc<AtomicBool>,
}

impl Proxy {
    async fn start(env: &Env) -> Proxy {
        let target: SocketAddr = format!("{}:{}", env.host, env.port).parse().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let silent = Arc::new(AtomicBool::new(false));
        let s = silent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    return;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(pump(cr, sw, s.clone()));
                tokio::spawn(pump(sr, cw, s.clone()));
            }
        });
        Proxy { port, silent }
    }

    /// From now on nothing is forwarded either way; both sockets stay open.
    fn go_silent(&self) {
        self.silent.store(true, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` until either end closes; while silent, bytes are swallowed.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, silent: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if silent.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

fn config(timeout: Duration) -> ClientConfig {
    ClientConfig {
        echo_interval: INTERVAL,
        dead_timeout: timeout,
        ..ClientConfig::default()
    }
}

async fn client_via(proxy: &Proxy, cfg: ClientConfig) -> Arc<SmbClient> {
    SmbClient::connect("127.0.0.1", proxy.port, cfg)
        .await
        .expect("connect + negotiate through the proxy")
}

/// Waits (bounded by the caller) until `client` has written at least `n` ECHOs.
async fn until_echoes(client: &SmbClient, n: u64) {
    while client.connection().echoes_sent() < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_healthy_connection_sends_echoes_and_stays_alive() {
    let Some(env) = env() else { return };
    let proxy = Proxy::start(&env).await;
    let client = client_via(&proxy, config(TIMEOUT)).await;
    let tree = env.tree(&client, &env.id1(), &env.share).await;
    let before = client.connection().echoes_sent();
    // Idle across several intervals: ECHOs go out and are answered.
    bounded(30, "ECHOs while idle", until_echoes(&client, before + 3)).await;
    // Longer idle than the whole dead timeout: answered ECHOs keep it alive.
    tokio::time::sleep(INTERVAL + TIMEOUT).await;
    assert!(
        client.connection().dead().is_none(),
        "a healthy connection stays up"
    );
    assert!(!client.is_dead());
    // And it still carries requests.
    bounded(30, "request after idling", async {
        let name = unique("idle");
        let f = tree
            .create(&name, &params(rw(), CreateDisposition::Create))
            .await
            .unwrap();
        f.write(0, Bytes::from_static(b"alive")).await.unwrap();
        assert_eq!(&f.read(0, 16).await.unwrap()[..], b"alive");
        f.close().await.unwrap();
        std::fs::remove_file(format!("{}/data/{name}", env.samba_dir)).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_server_is_declared_dead_and_every_outstanding_request_fails() {
    let Some(env) = env() else { return };
    let proxy = Proxy::start(&env).await;
    let client = client_via(&proxy, config(TIMEOUT)).await;
    let tree = env.tree(&client, &env.id1(), &env.share).await;
    let name = unique("silent");
    let dir = unique("silent-dir");
    let (f, d) = bounded(30, "setup", async {
        let f = tree
            .create(&name, &params(rw(), CreateDisposition::Create))
            .await
            .unwrap();
        f.write(0, Bytes::from(vec![7u8; 8192])).await.unwrap();
        let d = tree
            .create(&dir, &dir_params(CreateDisposition::Create))
            .await
            .unwrap();
        (Arc::new(f), Arc::new(d))
    })
    .await;

    // A CHANGE_NOTIFY pends on the server (nothing changes in the directory).
    let notify = {
        let d = d.clone();
        tokio::spawn(async move {
            d.notify_change(notify_filter::ALL, false, &RxContext::new())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!notify.is_finished(), "the notification pends");

    // The server vanishes; READs go out into the void.
    proxy.go_silent();
    let reads: Vec<_> = (0..3)
        .map(|i| {
            let f = f.clone();
            tokio::spawn(async move { f.read(i * 1024, 1024).await })
        })
        .collect();

    let results = bounded(30, "dead-peer detection", async {
        let mut out = vec![notify.await.unwrap().map(|_| ())];
        for r in reads {
            out.push(r.await.unwrap().map(|_| ()));
        }
        out
    })
    .await;
    for r in results {
        let e = r.expect_err("an outstanding request on a dead connection fails");
        assert_eq!(
            e.nt_status(),
            NtStatus::STATUS_CONNECTION_DISCONNECTED,
            "{e}"
        );
        assert!(e.to_string().contains("declared dead"), "{e}");
    }
    assert!(client.is_dead(), "the connection reports dead");
    let dead = client.connection().dead().unwrap();
    assert!(
        dead.to_string()
            .contains(&format!("127.0.0.1:{}", proxy.port)),
        "the error names the server: {dead}"
    );
    // A new request fails at once with the same error instead of waiting.
    let e = bounded(10, "request on a dead connection", f.read(0, 16))
        .await
        .unwrap_err();
    assert_eq!(
        e.nt_status(),
        NtStatus::STATUS_CONNECTION_DISCONNECTED,
        "{e}"
    );
    std::fs::remove_file(format!("{}/data/{name}", env.samba_dir)).unwrap();
    std::fs::remove_dir(format!("{}/data/{dir}", env.samba_dir)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_notify_pending_longer_than_the_dead_timeout_is_not_killed() {
    let Some(env) = env() else { return };
    let proxy = Proxy::start(&env).await;
    let client = client_via(&proxy, config(TIMEOUT)).await;
    let tree = env.tree(&client, &env.id1(), &env.share).await;
    let dir = unique("long-notify");
    let d = Arc::new(
        bounded(
            30,
            "create dir",
            tree.create(&dir, &dir_params(CreateDisposition::Create)),
        )
        .await
        .unwrap(),
    );
    let notify = {
        let d = d.clone();
        tokio::spawn(async move {
            d.notify_change(notify_filter::ALL, false, &RxContext::new())
                .await
        })
    };
    // Pending across several dead timeouts: ECHOs keep proving the server alive.
    let before = client.connection().echoes_sent();
    bounded(
        30,
        "ECHOs while notify pends",
        until_echoes(&client, before + 4),
    )
    .await;
    tokio::time::sleep(INTERVAL + TIMEOUT).await;
    assert!(!notify.is_finished(), "the notification still pends");
    assert!(
        !client.is_dead(),
        "a legitimately pending request does not kill it"
    );

    // A change completes it normally.
    std::fs::write(format!("{}/data/{dir}/new.txt", env.samba_dir), b"x").unwrap();
    let ev = bounded(30, "notify completes", notify)
        .await
        .unwrap()
        .expect("the notification completes on a live connection");
    assert!(ev.iter().any(|e| e.name == "new.txt"), "{ev:?}");
    bounded(30, "close", d.close()).await.unwrap();
    std::fs::remove_dir_all(format!("{}/data/{dir}", env.samba_dir)).unwrap();
}
