//! Against the real Samba: round trips with many requests in flight, metadata, directories,
//! every dialect, the encrypted share and the read-only share.

mod samba_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rdr_core::NtStatus;
use rdr_core::minirdr::{AccessMask, CreateAction, CreateDisposition, SetInfo};
use rdr_smb::ClientConfig;
use rdr_smb::proto::Dialect;
use samba_common::*;

fn status(e: rdr_core::RxError) -> NtStatus {
    eprintln!("expected error: {e}");
    e.nt_status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_17_mib_with_many_requests_in_flight() {
    let Some(env) = env() else { return };
    bounded(120, "round trip", async {
        let client = env.client(ClientConfig::default()).await;
        assert_eq!(client.dialect(), Dialect::SMB3_1_1);
        let tree = env.tree(&client, &env.id1(), &env.share).await;
        let name = unique("big") + ".bin";
        let f = tree
            .create(&name, &params(rw(), CreateDisposition::Create))
            .await
            .unwrap();
        assert_eq!(f.action(), CreateAction::Created);
        assert!(
            f.buffering().read_caching,
            "a lease was requested and granted"
        );
        let data = Bytes::from(pattern(17 * 1024 * 1024 + 123, 7));

        // Sample the engine's outstanding requests while the write runs.
        let peak = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop, client) = (peak.clone(), stop.clone(), client.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    peak.fetch_max(client.connection().outstanding(), Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            })
        };
        let n = f.write(0, data.clone()).await.unwrap();
        let back = f.read(0, data.len() as u32 + 4096).await.unwrap();
        stop.store(true, Ordering::SeqCst);
        sampler.await.unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(back.len(), data.len());
        assert!(back == data, "read back what was written");
        assert!(
            peak.load(Ordering::SeqCst) >= 2,
            "more than one READ/WRITE was in flight (peak {})",
            peak.load(Ordering::SeqCst)
        );
        f.flush().await.unwrap();
        assert_eq!(f.query_info().await.unwrap().size, data.len() as u64);
        // Reading past the end is an empty result.
        assert!(
            f.read(data.len() as u64 + 10, 100)
                .await
                .unwrap()
                .is_empty()
        );
        f.close().await.unwrap();
        // The server's file holds exactly these bytes.
        let disk = std::fs::read(format!("{}/data/{name}", env.samba_dir)).unwrap();
        assert!(disk == data[..], "the file on the server's disk matches");
        std::fs::remove_file(format!("{}/data/{name}", env.samba_dir)).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_dispositions_and_metadata() {
    let Some(env) = env() else { return };
    bounded(60, "metadata", async {
        let client = env.client(ClientConfig::default()).await;
        let tree = env.tree(&client, &env.id1(), &env.share).await;
        let dir = unique("meta");
        // Held without DELETE access: Samba refuses renames inside a directory that has a
        // handle open with DELETE access (STATUS_SHARING_VIOLATION).
        let d = tree
            .create(&dir, &{
                let mut p = dir_params(CreateDisposition::Create);
                p.access = AccessMask::GENERIC_READ;
                p
            })
            .await
            .unwrap();
        assert!(d.info().is_dir);
        let name = format!("{dir}\\a.txt");
        // Open of a missing file fails; Create makes it; a second Create collides.
        let e = tree
            .create(&name, &params(rw(), CreateDisposition::Open))
            .await
            .unwrap_err();
        assert_eq!(status(e), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
        let f = tree
            .create(&name, &params(rw(), CreateDisposition::Create))
            .await
            .unwrap();
        let e = tree
            .create(&name, &params(rw(), CreateDisposition::Create))
            .await
            .unwrap_err();
        assert_eq!(status(e.clone()), NtStatus::STATUS_OBJECT_NAME_COLLISION);
        assert!(
            e.to_string().contains(&env.share) && e.to_string().contains("a.txt"),
            "{e}"
        );
        f.write(0, Bytes::from_static(b"hello world"))
            .await
            .unwrap();
        // Times and size.
        let t = UNIX_EPOCH + Duration::from_secs(1_577_836_800); // 2020-01-01
        f.set_info(&SetInfo::Basic {
            created: None,
            accessed: None,
            modified: Some(t),
            attributes: None,
        })
        .await
        .unwrap();
        f.set_info(&SetInfo::EndOfFile(5)).await.unwrap();
        let i = f.query_info().await.unwrap();
        assert_eq!(i.size, 5);
        assert_eq!(i.modified, t);
        assert!(!i.is_dir);
        assert!(i.file_id != 0);
        // OpenIf opens the existing file; Overwrite truncates it.
        let g = tree
            .create(&name, &params(rw(), CreateDisposition::OpenIf))
            .await
            .unwrap();
        assert_eq!(g.action(), CreateAction::Opened);
        assert_eq!(g.info().size, 5);
        g.close().await.unwrap();
        f.close().await.unwrap();
        let g = tree
            .create(&name, &params(rw(), CreateDisposition::Overwrite))
            .await
            .unwrap();
        assert_eq!(g.action(), CreateAction::Overwritten);
        assert_eq!(g.info().size, 0);
        g.write(0, Bytes::from_static(b"abc")).await.unwrap();
        // Rename, then the old name is gone and the new one has the data.
        let new = format!("{dir}\\b.txt");
        g.set_info(&SetInfo::Rename {
            new_path: new.clone(),
            replace: false,
        })
        .await
        .unwrap();
        g.close().await.unwrap();
        let e = tree.query_path_info(&name).await.unwrap_err();
        assert_eq!(status(e), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
        assert_eq!(tree.query_path_info(&new).await.unwrap().size, 3);
        // Supersede replaces.
        let s = tree
            .create(&new, &params(rw(), CreateDisposition::Supersede))
            .await
            .unwrap();
        assert_eq!(s.info().size, 0);
        // Delete disposition removes the file at close.
        s.set_info(&SetInfo::Disposition(true)).await.unwrap();
        s.close().await.unwrap();
        let e = tree.query_path_info(&new).await.unwrap_err();
        assert_eq!(status(e), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
        // The directory is now empty and can go; volume info is sane.
        d.close().await.unwrap();
        let d = tree
            .create(&dir, &dir_params(CreateDisposition::Open))
            .await
            .unwrap();
        d.set_info(&SetInfo::Disposition(true)).await.unwrap();
        d.close().await.unwrap();
        assert!(!std::path::Path::new(&format!("{}/data/{dir}", env.samba_dir)).exists());
        let v = tree.query_volume().await.unwrap();
        assert!(v.total_bytes > 0 && v.free_bytes <= v.total_bytes);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_directory_returns_every_entry_across_batches() {
    let Some(env) = env() else { return };
    bounded(120, "directory", async {
        let client = env.client(ClientConfig::default()).await;
        let tree = env.tree(&client, &env.id1(), &env.share).await;
        let dir = unique("list");
        std::fs::create_dir(format!("{}/data/{dir}", env.samba_dir)).unwrap();
        // More than one 256 KiB response holds (about 1,900 of these).
        for i in 0..3000 {
            std::fs::write(
                format!(
                    "{}/data/{dir}/entry-with-a-longish-name-{i:05}.txt",
                    env.samba_dir
                ),
                b"x",
            )
            .unwrap();
        }
        let d = tree
            .create(&dir, &{
                let mut p = dir_params(CreateDisposition::Open);
                p.access = AccessMask::GENERIC_READ;
                p
            })
            .await
            .unwrap();
        let mut names = Vec::new();
        let mut batches = 0;
        let mut restart = true;
        loop {
            let b = d.query_directory(None, restart).await.unwrap();
            restart = false;
            if b.is_empty() {
                break;
            }
            batches += 1;
            names.extend(b.into_iter().map(|e| {
                assert!(!e.info.is_dir);
                assert_eq!(e.info.size, 1);
                e.name
            }));
        }
        names.sort();
        assert_eq!(names.len(), 3000, "every entry, no '.' or '..'");
        assert_eq!(names[0], "entry-with-a-longish-name-00000.txt");
        assert!(
            batches >= 2,
            "the listing took several QUERY_DIRECTORY responses"
        );
        // A pattern filters on the server.
        let b = d.query_directory(Some("*-01499.txt"), true).await.unwrap();
        assert_eq!(b.len(), 1);
        d.close().await.unwrap();
        std::fs::remove_dir_all(format!("{}/data/{dir}", env.samba_dir)).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dialect_from_2_0_2_to_3_1_1() {
    let Some(env) = env() else { return };
    bounded(120, "dialects", async {
        for d in Dialect::ALL {
            let cfg = ClientConfig {
                dialects: vec![d],
                ..ClientConfig::default()
            };
            let client = env.client(cfg).await;
            assert_eq!(client.dialect(), d);
            let tree = env.tree(&client, &env.id1(), &env.share).await;
            let name = unique(&format!("dialect-{:x}", d.0));
            let f = tree
                .create(&name, &params(rw(), CreateDisposition::Create))
                .await
                .unwrap();
            // 2.0.2 gets a batch oplock, 2.1+ a lease: either way read caching.
            assert!(f.buffering().read_caching, "{d:?}: caching granted");
            assert_eq!(
                f.lease_state().is_some(),
                d != Dialect::SMB2_0_2,
                "{d:?}: lease or oplock"
            );
            let data = Bytes::from(pattern(300_000, u64::from(d.0)));
            assert_eq!(f.write(0, data.clone()).await.unwrap(), data.len() as u64);
            assert!(
                f.read(0, 400_000).await.unwrap() == data,
                "{d:?}: read back"
            );
            f.set_info(&SetInfo::Disposition(true)).await.unwrap();
            f.close().await.unwrap();
            tree.disconnect().await.unwrap();
            tree.session().logoff().await.unwrap();
            client.shutdown().await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_share_round_trip() {
    let Some(env) = env() else { return };
    bounded(60, "encrypted share", async {
        for d in [Dialect::SMB3_1_1, Dialect::SMB3_0] {
            let cfg = ClientConfig {
                dialects: vec![d],
                ..ClientConfig::default()
            };
            let client = env.client(cfg).await;
            let tree = env.tree(&client, &env.id1(), &env.share_enc).await;
            assert!(tree.encrypts(), "{d:?}: the share demands encryption");
            let name = unique("secret");
            let f = tree
                .create(&name, &params(rw(), CreateDisposition::Create))
                .await
                .unwrap();
            let data = Bytes::from(pattern(3 * 1024 * 1024 + 5, 3));
            f.write(0, data.clone()).await.unwrap();
            assert!(f.read(0, data.len() as u32).await.unwrap() == data);
            f.close().await.unwrap();
            let disk = std::fs::read(format!("{}/secure/{name}", env.samba_dir)).unwrap();
            assert!(disk == data[..]);
            std::fs::remove_file(format!("{}/secure/{name}", env.samba_dir)).unwrap();
        }
        // 2.1 cannot encrypt: the server refuses the share.
        let cfg = ClientConfig {
            dialects: vec![Dialect::SMB2_1],
            ..ClientConfig::default()
        };
        let client = env.client(cfg).await;
        let s = rdr_smb::Session::setup(&client, &env.id1()).await.unwrap();
        let e = rdr_smb::Tree::connect(&s, &env.share_enc)
            .await
            .unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_ACCESS_DENIED, "{e}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_share_refuses_writes() {
    let Some(env) = env() else { return };
    bounded(60, "read-only share", async {
        let client = env.client(ClientConfig::default()).await;
        let tree = env.tree(&client, &env.id1(), &env.share_ro).await;
        let e = tree
            .create("new.txt", &params(rw(), CreateDisposition::OpenIf))
            .await
            .unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_ACCESS_DENIED, "{e}");
        assert!(
            e.to_string().contains("new.txt") && e.to_string().contains(&env.share_ro),
            "{e}"
        );
        let e = tree
            .create(
                "readme.txt",
                &params(AccessMask::GENERIC_WRITE, CreateDisposition::Open),
            )
            .await
            .unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_ACCESS_DENIED, "{e}");
        let f = tree
            .create(
                "readme.txt",
                &params(AccessMask::GENERIC_READ, CreateDisposition::Open),
            )
            .await
            .unwrap();
        assert_eq!(&f.read(0, 100).await.unwrap()[..], b"read me\n");
        f.close().await.unwrap();
        let _ = SystemTime::now();
    })
    .await;
}
