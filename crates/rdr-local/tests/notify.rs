//! Change notification from inotify: events for creates, deletes, renames and writes, tree
//! watches, prompt cancellation, and no watch or fd left behind.

mod common;

use common::*;
use rdr_core::minirdr::{ChangeEvent, CreateDisposition as D, MiniRedirector, notify_filter};
use rdr_core::{NtStatus, RxContext, RxError};
use std::time::Duration;

fn ev(action: u32, name: &str) -> ChangeEvent {
    ChangeEvent {
        action,
        name: name.to_string(),
    }
}

#[tokio::test]
async fn create_in_watched_dir_completes_the_notification() {
    let e = env().await;
    let d = e.open_dir("").await;
    let rdr = e.rdr.clone();
    let d2 = d.clone();
    let pending = tokio::spawn(async move {
        rdr.notify_change(&d2, notify_filter::FILE_NAME, false, &RxContext::new())
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::write(e.share.join("new.txt"), b"x").unwrap();
    let events = bounded(pending).await.unwrap().unwrap();
    assert_eq!(events.first(), Some(&ev(1, "new.txt")));
    e.close(&d).await;
    assert_eq!(e.rdr.stats().fds, 0);
}

#[tokio::test]
async fn changes_between_requests_are_kept_and_renames_pair() {
    let e = env().await;
    let ctx = RxContext::new();
    std::fs::write(e.share.join("a.txt"), b"x").unwrap();
    let d = e.open_dir("").await;
    // Arm the watch with a first request that is cancelled.
    let c = RxContext::new().with_timeout(Duration::from_millis(20));
    let r = bounded(e.rdr.notify_change(&d, notify_filter::ALL, false, &c)).await;
    assert_eq!(status(r), NtStatus::STATUS_CANCELLED);
    // Changes while no request is pending are reported by the next one.
    std::fs::rename(e.share.join("a.txt"), e.share.join("b.txt")).unwrap();
    let events = bounded(e.rdr.notify_change(&d, notify_filter::ALL, false, &ctx))
        .await
        .unwrap();
    assert_eq!(events, vec![ev(4, "a.txt"), ev(5, "b.txt")]);
    std::fs::remove_file(e.share.join("b.txt")).unwrap();
    let events = bounded(e.rdr.notify_change(&d, notify_filter::ALL, false, &ctx))
        .await
        .unwrap();
    assert_eq!(events, vec![ev(2, "b.txt")]);
    // Writes are modifications (for SIZE / LAST_WRITE).
    let f = e.open_rw("w.txt", D::Create).await;
    let _ = bounded(e.rdr.notify_change(&d, notify_filter::ALL, false, &ctx))
        .await
        .unwrap();
    e.rdr
        .write(&f, 0, bytes::Bytes::from_static(b"data"), &ctx)
        .await
        .unwrap();
    let events = bounded(e.rdr.notify_change(&d, notify_filter::ALL, false, &ctx))
        .await
        .unwrap();
    assert_eq!(events, vec![ev(3, "w.txt")]);
    e.close(&f).await;
    e.close(&d).await;
}

#[tokio::test]
async fn filter_selects_files_or_directories() {
    let e = env().await;
    let ctx = RxContext::new();
    let d = e.open_dir("").await;
    let c = RxContext::new().with_timeout(Duration::from_millis(20));
    let _ = e
        .rdr
        .notify_change(&d, notify_filter::DIR_NAME, false, &c)
        .await;
    std::fs::write(e.share.join("file"), b"").unwrap();
    std::fs::create_dir(e.share.join("dir")).unwrap();
    let events = bounded(
        e.rdr
            .notify_change(&d, notify_filter::DIR_NAME, false, &ctx),
    )
    .await
    .unwrap();
    assert_eq!(events, vec![ev(1, "dir")]);
    e.close(&d).await;
}

#[tokio::test]
async fn tree_watch_sees_subdirectories() {
    let e = env().await;
    let ctx = RxContext::new();
    std::fs::create_dir_all(e.share.join("a/b")).unwrap();
    let d = e.open_dir("").await;
    let c = RxContext::new().with_timeout(Duration::from_millis(20));
    let _ = e
        .rdr
        .notify_change(&d, notify_filter::FILE_NAME, true, &c)
        .await;
    std::fs::write(e.share.join("a/b/deep.txt"), b"").unwrap();
    let events = bounded(
        e.rdr
            .notify_change(&d, notify_filter::FILE_NAME, true, &ctx),
    )
    .await
    .unwrap();
    assert_eq!(events, vec![ev(1, "a\\b\\deep.txt")]);
    // A directory made after the watch started is watched too.
    std::fs::create_dir(e.share.join("a/c")).unwrap();
    let _ = bounded(e.rdr.notify_change(&d, notify_filter::ALL, true, &ctx))
        .await
        .unwrap();
    std::fs::write(e.share.join("a/c/later.txt"), b"").unwrap();
    let events = bounded(e.rdr.notify_change(&d, notify_filter::ALL, true, &ctx))
        .await
        .unwrap();
    assert!(events.contains(&ev(1, "a\\c\\later.txt")), "{events:?}");
    // Without the tree flag, nothing below is reported: only the top-level file is.
    let top = e.open_dir("a").await;
    let c = RxContext::new().with_timeout(Duration::from_millis(20));
    let _ = e
        .rdr
        .notify_change(&top, notify_filter::FILE_NAME, false, &c)
        .await;
    std::fs::write(e.share.join("a/b/ignored.txt"), b"").unwrap();
    std::fs::write(e.share.join("a/seen.txt"), b"").unwrap();
    let events = bounded(
        e.rdr
            .notify_change(&top, notify_filter::FILE_NAME, false, &ctx),
    )
    .await
    .unwrap();
    assert_eq!(events, vec![ev(1, "seen.txt")]);
    e.close(&top).await;
    e.close(&d).await;
    assert_eq!(e.rdr.stats().fds, 0);
}

#[tokio::test]
async fn cancel_returns_promptly_and_leaks_nothing() {
    let e = env().await;
    let d = e.open_dir("").await;
    for _ in 0..3 {
        let ctx = RxContext::new();
        let rdr = e.rdr.clone();
        let d2 = d.clone();
        let c2 = ctx.clone();
        let pending =
            tokio::spawn(
                async move { rdr.notify_change(&d2, notify_filter::ALL, true, &c2).await },
            );
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!pending.is_finished());
        ctx.cancel();
        let r = bounded(pending).await.unwrap();
        assert!(matches!(r, Err(RxError::Cancelled { .. })), "{r:?}");
    }
    // Closing the handle ends a pending notification and drops the watcher.
    let rdr = e.rdr.clone();
    let d2 = d.clone();
    let pending = tokio::spawn(async move {
        rdr.notify_change(&d2, notify_filter::ALL, false, &RxContext::new())
            .await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    e.close(&d).await;
    let r = bounded(pending).await.unwrap();
    assert_eq!(status(r), NtStatus::STATUS_FILE_CLOSED);
    assert_eq!(e.rdr.stats().fds, 0);
}

#[tokio::test]
async fn notify_needs_a_directory_and_a_filter() {
    let e = env().await;
    let ctx = RxContext::new();
    let f = e.open_rw("f", D::Create).await;
    assert_eq!(
        status(
            e.rdr
                .notify_change(&f, notify_filter::ALL, false, &ctx)
                .await
        ),
        NtStatus::STATUS_INVALID_PARAMETER
    );
    let d = e.open_dir("").await;
    assert_eq!(
        status(e.rdr.notify_change(&d, 0, false, &ctx).await),
        NtStatus::STATUS_INVALID_PARAMETER
    );
    e.close(&f).await;
    e.close(&d).await;
}
