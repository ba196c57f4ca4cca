//! Byte-range locks are real OFD locks: two opens conflict in the kernel, unlock releases, a
//! waiting lock is granted after the unlock, and a waiting lock is cancelled promptly.

mod common;

use common::*;
use rdr_core::minirdr::{
    AccessMask, CreateDisposition as D, CreateOptions as O, LockRange, MiniRedirector,
};
use rdr_core::{NtStatus, RxContext, RxError};
use std::os::fd::AsRawFd;
use std::time::Duration;

fn range(offset: u64, length: u64, exclusive: bool) -> LockRange {
    LockRange {
        offset,
        length,
        exclusive,
    }
}

/// Whether another process-independent open file description sees a conflicting lock on the
/// bytes (F_OFD_GETLK from a plain fd opened by the test).
fn kernel_sees_lock(path: &std::path::Path, start: i64, len: i64) -> bool {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut fl = libc::flock {
        l_type: libc::F_WRLCK as i16,
        l_whence: libc::SEEK_SET as i16,
        l_start: start,
        l_len: len,
        l_pid: 0,
    };
    // SAFETY: a valid flock for F_OFD_GETLK on an open fd.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_OFD_GETLK, &mut fl) };
    assert_eq!(r, 0);
    fl.l_type != libc::F_UNLCK as i16
}

#[tokio::test]
async fn two_opens_conflict_and_unlock_releases() {
    let e = env().await;
    let ctx = RxContext::new();
    let a = e.open_rw("l.bin", D::Create).await;
    let b = e.open_rw("l.bin", D::Open).await;
    e.rdr
        .lock(&a, range(0, 100, true), false, &ctx)
        .await
        .unwrap();
    // The kernel holds it: an unrelated fd sees the lock.
    assert!(kernel_sees_lock(&e.share.join("l.bin"), 0, 100));
    let er = e.rdr.lock(&b, range(50, 10, false), false, &ctx).await;
    let er = match er {
        Err(er) => er,
        Ok(()) => panic!("conflicting lock granted"),
    };
    assert_eq!(er.nt_status(), NtStatus::STATUS_LOCK_NOT_GRANTED);
    assert!(er.to_string().contains("l.bin"), "{er}");
    // A range that does not overlap is fine.
    e.rdr
        .lock(&b, range(100, 10, true), false, &ctx)
        .await
        .unwrap();
    // Windows: an exclusive lock conflicts even with the same handle's locks.
    assert_eq!(
        status(e.rdr.lock(&a, range(10, 1, false), false, &ctx).await),
        NtStatus::STATUS_LOCK_NOT_GRANTED
    );
    // Unlock needs the exact range.
    assert_eq!(
        status(e.rdr.unlock(&a, range(0, 50, true), &ctx).await),
        NtStatus::STATUS_RANGE_NOT_LOCKED
    );
    e.rdr.unlock(&a, range(0, 100, true), &ctx).await.unwrap();
    assert!(!kernel_sees_lock(&e.share.join("l.bin"), 0, 100));
    e.rdr
        .lock(&b, range(50, 10, false), false, &ctx)
        .await
        .unwrap();
    assert_eq!(
        status(e.rdr.unlock(&a, range(0, 100, true), &ctx).await),
        NtStatus::STATUS_RANGE_NOT_LOCKED
    );
    e.close(&a).await;
    e.close(&b).await;
}

#[tokio::test]
async fn shared_locks_stack_and_unlock_one_at_a_time() {
    let e = env().await;
    let ctx = RxContext::new();
    let a = e.open_rw("s.bin", D::Create).await;
    let b = e.open_rw("s.bin", D::Open).await;
    e.rdr
        .lock(&a, range(0, 10, false), false, &ctx)
        .await
        .unwrap();
    e.rdr
        .lock(&a, range(0, 10, false), false, &ctx)
        .await
        .unwrap();
    e.rdr
        .lock(&b, range(5, 10, false), false, &ctx)
        .await
        .unwrap();
    e.rdr.unlock(&b, range(5, 10, false), &ctx).await.unwrap();
    e.rdr.unlock(&a, range(0, 10, false), &ctx).await.unwrap();
    // Still held once: an exclusive lock from b conflicts.
    assert_eq!(
        status(e.rdr.lock(&b, range(0, 1, true), false, &ctx).await),
        NtStatus::STATUS_LOCK_NOT_GRANTED
    );
    e.rdr.unlock(&a, range(0, 10, false), &ctx).await.unwrap();
    e.rdr
        .lock(&b, range(0, 1, true), false, &ctx)
        .await
        .unwrap();
    e.close(&a).await;
    e.close(&b).await;
}

#[tokio::test]
async fn read_only_opens_can_take_exclusive_locks() {
    let e = env().await;
    let ctx = RxContext::new();
    std::fs::write(e.share.join("r.bin"), b"x").unwrap();
    let p = params(AccessMask::FILE_READ_DATA, all_share(), D::Open, O::empty());
    let a = e.create("r.bin", &p).await.unwrap().srv_open;
    let b = e.create("r.bin", &p).await.unwrap().srv_open;
    e.rdr
        .lock(&a, range(0, 1, true), false, &ctx)
        .await
        .unwrap();
    assert_eq!(
        status(e.rdr.lock(&b, range(0, 1, false), false, &ctx).await),
        NtStatus::STATUS_LOCK_NOT_GRANTED
    );
    e.close(&a).await;
    // Closing releases a's locks.
    e.rdr
        .lock(&b, range(0, 1, true), false, &ctx)
        .await
        .unwrap();
    e.close(&b).await;
    assert_eq!(e.rdr.stats().fds, 0);
}

#[tokio::test]
async fn waiting_lock_is_granted_after_unlock() {
    let e = env().await;
    let ctx = RxContext::new();
    let a = e.open_rw("w.bin", D::Create).await;
    let b = e.open_rw("w.bin", D::Open).await;
    e.rdr
        .lock(&a, range(0, 10, true), false, &ctx)
        .await
        .unwrap();
    let rdr = e.rdr.clone();
    let b2 = b.clone();
    let waiter = tokio::spawn(async move {
        rdr.lock(&b2, range(0, 10, true), true, &RxContext::new())
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiter.is_finished(),
        "the waiting lock must pend while a holds the range"
    );
    e.rdr.unlock(&a, range(0, 10, true), &ctx).await.unwrap();
    bounded(waiter).await.unwrap().unwrap();
    assert_eq!(
        status(e.rdr.lock(&a, range(0, 10, true), false, &ctx).await),
        NtStatus::STATUS_LOCK_NOT_GRANTED
    );
    e.close(&a).await;
    e.close(&b).await;
}

#[tokio::test]
async fn waiting_lock_is_cancelled_promptly() {
    let e = env().await;
    let ctx = RxContext::new();
    let a = e.open_rw("c.bin", D::Create).await;
    let b = e.open_rw("c.bin", D::Open).await;
    e.rdr
        .lock(&a, range(0, 10, true), false, &ctx)
        .await
        .unwrap();
    let wctx = RxContext::new();
    let rdr = e.rdr.clone();
    let b2 = b.clone();
    let w2 = wctx.clone();
    let waiter = tokio::spawn(async move { rdr.lock(&b2, range(0, 10, true), true, &w2).await });
    tokio::time::sleep(Duration::from_millis(30)).await;
    wctx.cancel();
    let r = bounded(waiter).await.unwrap();
    assert!(matches!(r, Err(RxError::Cancelled { .. })), "{r:?}");
    // The cancelled wait left nothing behind: after a unlocks, b can lock at once.
    e.rdr.unlock(&a, range(0, 10, true), &ctx).await.unwrap();
    e.rdr
        .lock(&b, range(0, 10, true), false, &ctx)
        .await
        .unwrap();
    // A deadline ends a wait too.
    let dctx = RxContext::new().with_timeout(Duration::from_millis(50));
    let r = bounded(e.rdr.lock(&a, range(0, 10, true), true, &dctx)).await;
    assert_eq!(status(r), NtStatus::STATUS_CANCELLED);
    // Closing the waiting handle ends its wait.
    let rdr = e.rdr.clone();
    let a2 = a.clone();
    let waiter = tokio::spawn(async move {
        rdr.lock(&a2, range(0, 10, true), true, &RxContext::new())
            .await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    e.close(&a).await;
    let r = bounded(waiter).await.unwrap();
    assert_eq!(status(r), NtStatus::STATUS_FILE_CLOSED);
    e.close(&b).await;
}

#[tokio::test]
async fn zero_length_and_huge_ranges_do_not_fail() {
    let e = env().await;
    let ctx = RxContext::new();
    let a = e.open_rw("z.bin", D::Create).await;
    let b = e.open_rw("z.bin", D::Open).await;
    e.rdr
        .lock(&a, range(5, 0, true), false, &ctx)
        .await
        .unwrap();
    e.rdr
        .lock(&b, range(5, 0, true), false, &ctx)
        .await
        .unwrap();
    e.rdr
        .lock(&a, range(u64::MAX - 10, 5, true), false, &ctx)
        .await
        .unwrap();
    e.rdr
        .unlock(&a, range(u64::MAX - 10, 5, true), &ctx)
        .await
        .unwrap();
    e.rdr.unlock(&a, range(5, 0, true), &ctx).await.unwrap();
    let d = e.open_dir("").await;
    assert_eq!(
        status(e.rdr.lock(&d, range(0, 1, true), false, &ctx).await),
        NtStatus::STATUS_INVALID_DEVICE_REQUEST
    );
    e.close(&d).await;
    e.close(&a).await;
    e.close(&b).await;
}
