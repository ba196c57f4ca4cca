//! Against the real Samba: byte-range locks between two users, change notification that
//! completes and one that is cancelled with SMB2 CANCEL.

mod samba_common;

use std::time::Duration;

use bytes::Bytes;
use rdr_core::minirdr::{CreateDisposition, LockRange, SetInfo, notify_filter};
use rdr_core::{NtStatus, RxContext, RxError};
use rdr_smb::{ClientConfig, Session, Tree};
use samba_common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_of_user1_blocks_user2_until_unlocked() {
    let Some(env) = env() else { return };
    bounded(60, "locks", async {
        let client = env.client(ClientConfig::default()).await;
        let t1 = Tree::connect(
            &Session::setup(&client, &env.id1()).await.unwrap(),
            &env.share,
        )
        .await
        .unwrap();
        let t2 = Tree::connect(
            &Session::setup(&client, &env.id2()).await.unwrap(),
            &env.share,
        )
        .await
        .unwrap();
        let name = unique("locked");
        let f1 = t1
            .create(&name, &params(rw(), CreateDisposition::Create))
            .await
            .unwrap();
        f1.write(0, Bytes::from(vec![1u8; 4096])).await.unwrap();
        // Samba's create mask leaves a new file writable by its owner only.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            format!("{}/data/{name}", env.samba_dir),
            std::fs::Permissions::from_mode(0o666),
        )
        .unwrap();
        let f2 = t2
            .create(&name, &params(rw(), CreateDisposition::Open))
            .await
            .unwrap();
        let ctx = RxContext::new();
        let r = LockRange {
            offset: 0,
            length: 100,
            exclusive: true,
        };
        f1.lock(r, false, &ctx).await.unwrap();

        // A conflicting lock of user 2 fails at once, without waiting.
        let conflict = LockRange {
            offset: 50,
            length: 10,
            exclusive: true,
        };
        let e = f2.lock(conflict, false, &ctx).await.unwrap_err();
        assert!(
            matches!(
                e.nt_status(),
                NtStatus::STATUS_LOCK_NOT_GRANTED | NtStatus::STATUS_FILE_LOCK_CONFLICT
            ),
            "{e}"
        );
        assert!(e.to_string().contains(&name), "{e}");
        // (Samba's default "strict locking = auto" does not check writes of lease holders.)
        f2.write(200, Bytes::from_static(b"x")).await.unwrap();
        // A non-overlapping lock is granted.
        f2.lock(
            LockRange {
                offset: 100,
                length: 10,
                exclusive: true,
            },
            false,
            &ctx,
        )
        .await
        .unwrap();

        // A waiting lock pends on the server; cancelling it sends SMB2 CANCEL.
        let wctx = RxContext::new();
        let waiter = {
            let wctx = wctx.clone();
            async move {
                let res = f2.lock(conflict, true, &wctx).await;
                (res, f2)
            }
        };
        let h = tokio::spawn(waiter);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !h.is_finished(),
            "the waiting lock is pending while user 1 holds the range"
        );
        wctx.cancel();
        let (res, cancelled) = h.await.unwrap();
        let e = res.unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_CANCELLED, "{e}");
        // Closed, so that the delete-on-close at the end removes the file.
        cancelled.close().await.unwrap();

        // Waiting again, then user 1 unlocks: user 2's lock goes through.
        let f2 = t2
            .create(&name, &params(rw(), CreateDisposition::Open))
            .await
            .unwrap();
        let h = tokio::spawn(async move {
            let ctx = RxContext::new();
            f2.lock(conflict, true, &ctx).await.map(|_| f2)
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        f1.unlock(r).await.unwrap();
        let f2 = h.await.unwrap().expect("granted after the unlock");
        // Now user 1 is the one refused.
        let e = f1.lock(conflict, false, &ctx).await.unwrap_err();
        assert!(
            matches!(
                e.nt_status(),
                NtStatus::STATUS_LOCK_NOT_GRANTED | NtStatus::STATUS_FILE_LOCK_CONFLICT
            ),
            "{e}"
        );
        f2.unlock(conflict).await.unwrap();
        f2.close().await.unwrap();
        f1.set_info(&SetInfo::Disposition(true)).await.unwrap();
        f1.close().await.unwrap();
        assert!(
            !std::path::Path::new(&format!("{}/data/{name}", env.samba_dir)).exists(),
            "the last close deleted the file"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn change_notify_completes_and_cancel_gets_status_cancelled_from_the_server() {
    let Some(env) = env() else { return };
    bounded(60, "notify", async {
        let client = env.client(ClientConfig::default()).await;
        let tree = env.tree(&client, &env.id1(), &env.share).await;
        let dir = unique("watched");
        let d = std::sync::Arc::new(
            tree.create(&dir, &dir_params(CreateDisposition::Create))
                .await
                .unwrap(),
        );

        // A change completes the pending notification.
        let h = {
            let d = d.clone();
            tokio::spawn(async move {
                d.notify_change(notify_filter::ALL, false, &RxContext::new())
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!h.is_finished(), "pending until something changes");
        std::fs::write(format!("{}/data/{dir}/new.txt", env.samba_dir), b"x").unwrap();
        let ev = h.await.unwrap().unwrap();
        assert!(
            ev.iter().any(|e| e.name == "new.txt" && e.action == 1),
            "{ev:?}"
        );

        // Cancelled: SMB2 CANCEL goes out and the server completes it with STATUS_CANCELLED.
        // (A fresh handle: the first one may have further changes queued.)
        d.close().await.unwrap();
        let d = std::sync::Arc::new(
            tree.create(&dir, &dir_params(CreateDisposition::Open))
                .await
                .unwrap(),
        );
        let ctx = RxContext::new();
        let h = {
            let (d, ctx) = (d.clone(), ctx.clone());
            tokio::spawn(async move { d.notify_change(notify_filter::ALL, true, &ctx).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!h.is_finished());
        ctx.cancel();
        match h.await.unwrap() {
            Err(RxError::Status { status, what }) => {
                assert_eq!(status, NtStatus::STATUS_CANCELLED);
                assert!(
                    what.contains("the server answered STATUS_CANCELLED"),
                    "{what}"
                );
            }
            other => panic!("expected the server's STATUS_CANCELLED, got {other:?}"),
        }
        // The handle still works afterwards.
        assert_eq!(d.query_directory(None, true).await.unwrap().len(), 1);
        d.close().await.unwrap();
        std::fs::remove_dir_all(format!("{}/data/{dir}", env.samba_dir)).unwrap();
    })
    .await;
}
