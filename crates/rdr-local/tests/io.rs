//! Round trips on real files: read/write (large and small), flush, truncate, times and mode,
//! rename, mkdir/rmdir, directory listing with batches, restart and patterns, volume info.

mod common;

use bytes::Bytes;
use common::*;
use rdr_core::minirdr::{
    AccessMask, CreateDisposition as D, CreateOptions as O, MiniRedirector, SetInfo,
    file_attributes,
};
use rdr_core::{NtStatus, RxContext};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, UNIX_EPOCH};

#[tokio::test]
async fn write_read_round_trip_large_and_small() {
    let e = env().await;
    let ctx = RxContext::new();
    let h = e.open_rw("big.bin", D::Create).await;
    let big: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    let n = e
        .rdr
        .write(&h, 0, Bytes::from(big.clone()), &ctx)
        .await
        .unwrap();
    assert_eq!(n as usize, big.len());
    let n = e
        .rdr
        .write(&h, 1 << 20, Bytes::from_static(b"tail"), &ctx)
        .await
        .unwrap();
    assert_eq!(n, 4);
    e.rdr.flush(&h, &ctx).await.unwrap();
    let back = e.rdr.read(&h, 0, 1 << 20, &ctx).await.unwrap();
    assert_eq!(back.len(), 1 << 20);
    assert!(back[..] == big[..]);
    let tail = e.rdr.read(&h, 1 << 20, 100, &ctx).await.unwrap();
    assert_eq!(&tail[..], b"tail");
    let eof = e.rdr.read(&h, (1 << 20) + 4, 100, &ctx).await.unwrap();
    assert!(eof.is_empty());
    let info = e.rdr.query_info(&h, &ctx).await.unwrap();
    assert_eq!(info.size, (1 << 20) + 4);
    assert!(info.allocation_size >= info.size);
    assert_eq!(info.nlink, 1);
    assert_ne!(info.file_id, 0);
    e.close(&h).await;
    let disk = std::fs::read(e.share.join("big.bin")).unwrap();
    assert_eq!(&disk[..1 << 20], &big[..]);
    assert_eq!(&disk[1 << 20..], b"tail");
}

#[tokio::test]
async fn access_is_enforced_on_io() {
    let e = env().await;
    let ctx = RxContext::new();
    std::fs::write(e.share.join("f"), b"data").unwrap();
    let ro = e
        .create(
            "f",
            &params(AccessMask::FILE_READ_DATA, all_share(), D::Open, O::empty()),
        )
        .await
        .unwrap()
        .srv_open;
    assert_eq!(
        status(e.rdr.write(&ro, 0, Bytes::from_static(b"x"), &ctx).await),
        NtStatus::STATUS_ACCESS_DENIED
    );
    assert_eq!(
        status(e.rdr.set_info(&ro, &SetInfo::EndOfFile(0), &ctx).await),
        NtStatus::STATUS_ACCESS_DENIED
    );
    let wo = e
        .create(
            "f",
            &params(
                AccessMask::FILE_WRITE_DATA,
                all_share(),
                D::Open,
                O::empty(),
            ),
        )
        .await
        .unwrap()
        .srv_open;
    assert_eq!(
        status(e.rdr.read(&wo, 0, 4, &ctx).await),
        NtStatus::STATUS_ACCESS_DENIED
    );
    e.close(&ro).await;
    e.close(&wo).await;
    assert_eq!(std::fs::read(e.share.join("f")).unwrap(), b"data");
}

#[tokio::test]
async fn truncate_times_mode_and_attributes() {
    let e = env().await;
    let ctx = RxContext::new();
    let h = e.open_rw("t.txt", D::Create).await;
    e.rdr
        .write(&h, 0, Bytes::from_static(b"0123456789"), &ctx)
        .await
        .unwrap();
    e.rdr
        .set_info(&h, &SetInfo::EndOfFile(4), &ctx)
        .await
        .unwrap();
    assert_eq!(std::fs::read(e.share.join("t.txt")).unwrap(), b"0123");
    e.rdr
        .set_info(&h, &SetInfo::EndOfFile(8), &ctx)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(e.share.join("t.txt")).unwrap(),
        b"0123\0\0\0\0"
    );
    let when = UNIX_EPOCH + Duration::from_secs(1_000_000_000) + Duration::from_nanos(123);
    e.rdr
        .set_info(
            &h,
            &SetInfo::Basic {
                created: None,
                accessed: None,
                modified: Some(when),
                attributes: None,
            },
            &ctx,
        )
        .await
        .unwrap();
    let info = e.rdr.query_info(&h, &ctx).await.unwrap();
    assert_eq!(info.modified, when);
    let m = std::fs::metadata(e.share.join("t.txt"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(m, when);
    e.rdr
        .set_info(&h, &SetInfo::Mode(0o600), &ctx)
        .await
        .unwrap();
    assert_eq!(
        std::fs::metadata(e.share.join("t.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o600
    );
    let ro = SetInfo::Basic {
        created: None,
        accessed: None,
        modified: None,
        attributes: Some(file_attributes::READONLY),
    };
    e.rdr.set_info(&h, &ro, &ctx).await.unwrap();
    let info = e.rdr.query_info(&h, &ctx).await.unwrap();
    assert_ne!(info.attributes & file_attributes::READONLY, 0);
    assert_eq!(info.mode, Some(0o400));
    e.close(&h).await;
}

#[tokio::test]
async fn rename_noreplace_replace_and_follow_up() {
    let e = env().await;
    let ctx = RxContext::new();
    std::fs::create_dir(e.share.join("dir")).unwrap();
    std::fs::write(e.share.join("other.txt"), b"other").unwrap();
    let h = e.open_rw("a.txt", D::Create).await;
    e.rdr
        .write(&h, 0, Bytes::from_static(b"A"), &ctx)
        .await
        .unwrap();
    let rename = |p: &str, replace| SetInfo::Rename {
        new_path: p.to_string(),
        replace,
    };
    // Without replace an existing target is a collision.
    assert_eq!(
        status(e.rdr.set_info(&h, &rename("other.txt", false), &ctx).await),
        NtStatus::STATUS_OBJECT_NAME_COLLISION
    );
    assert_eq!(
        status(e.rdr.set_info(&h, &rename("nodir\\x", false), &ctx).await),
        NtStatus::STATUS_OBJECT_PATH_NOT_FOUND
    );
    // Renaming to its own name is a no-op, not a collision.
    e.rdr
        .set_info(&h, &rename("a.txt", false), &ctx)
        .await
        .unwrap();
    e.rdr
        .set_info(&h, &rename("dir\\b.txt", false), &ctx)
        .await
        .unwrap();
    assert!(!e.share.join("a.txt").exists());
    assert_eq!(std::fs::read(e.share.join("dir/b.txt")).unwrap(), b"A");
    // Replace an existing file that is not open.
    e.rdr
        .set_info(&h, &rename("other.txt", true), &ctx)
        .await
        .unwrap();
    assert_eq!(std::fs::read(e.share.join("other.txt")).unwrap(), b"A");
    // A target that is open cannot be replaced.
    let busy = e.open_rw("busy.txt", D::Create).await;
    assert_eq!(
        status(e.rdr.set_info(&h, &rename("busy.txt", true), &ctx).await),
        NtStatus::STATUS_ACCESS_DENIED
    );
    e.close(&busy).await;
    // The open follows its file: delete after the renames removes the new name.
    e.rdr
        .set_info(&h, &SetInfo::Disposition(true), &ctx)
        .await
        .unwrap();
    e.close(&h).await;
    assert!(!e.share.join("other.txt").exists());
    assert!(e.share.join("busy.txt").exists());
}

#[tokio::test]
async fn renaming_a_directory_moves_opens_under_it() {
    let e = env().await;
    let ctx = RxContext::new();
    std::fs::create_dir_all(e.share.join("d1/inner")).unwrap();
    let f = e.open_rw("d1\\inner\\f.txt", D::Create).await;
    let d = e
        .create(
            "d1",
            &params(
                AccessMask::FILE_READ_DATA | AccessMask::DELETE,
                all_share(),
                D::Open,
                O::DIRECTORY_FILE,
            ),
        )
        .await
        .unwrap()
        .srv_open;
    e.rdr
        .set_info(
            &d,
            &SetInfo::Rename {
                new_path: "d2".into(),
                replace: false,
            },
            &ctx,
        )
        .await
        .unwrap();
    e.rdr
        .set_info(&f, &SetInfo::Disposition(true), &ctx)
        .await
        .unwrap();
    e.close(&f).await;
    assert!(!e.share.join("d2/inner/f.txt").exists());
    assert!(e.share.join("d2/inner").is_dir());
    e.close(&d).await;
}

#[tokio::test]
async fn mkdir_rmdir_round_trip() {
    let e = env().await;
    let ctx = RxContext::new();
    let mk = params(
        AccessMask::FILE_READ_DATA | AccessMask::DELETE,
        all_share(),
        D::Create,
        O::DIRECTORY_FILE,
    );
    let d = e.create("nd", &mk).await.unwrap().srv_open;
    let f = e.open_rw("nd\\child", D::Create).await;
    // Not empty: refuse the delete mark.
    assert_eq!(
        status(e.rdr.set_info(&d, &SetInfo::Disposition(true), &ctx).await),
        NtStatus::STATUS_DIRECTORY_NOT_EMPTY
    );
    e.rdr
        .set_info(&f, &SetInfo::Disposition(true), &ctx)
        .await
        .unwrap();
    e.close(&f).await;
    e.rdr
        .set_info(&d, &SetInfo::Disposition(true), &ctx)
        .await
        .unwrap();
    e.close(&d).await;
    assert!(!e.share.join("nd").exists());
    // A directory that fills up after the mark: rmdir at close fails and says so.
    let d = e.create("nd2", &mk).await.unwrap().srv_open;
    e.rdr
        .set_info(&d, &SetInfo::Disposition(true), &ctx)
        .await
        .unwrap();
    std::fs::write(e.share.join("nd2/late"), b"x").unwrap();
    let r = e.rdr.close_srv_open(&d).await;
    let er = err(r);
    assert_eq!(er.nt_status(), NtStatus::STATUS_DIRECTORY_NOT_EMPTY);
    assert!(er.to_string().contains("nd2"));
    assert_eq!(e.rdr.stats().fds, 0);
}

async fn list_all(
    e: &Env,
    d: &rdr_core::minirdr::MrxContext,
    pattern: Option<&str>,
) -> Vec<String> {
    let ctx = RxContext::new();
    let mut names = Vec::new();
    let mut first = true;
    loop {
        let b = e
            .rdr
            .query_directory(d, pattern, first, &ctx)
            .await
            .unwrap();
        first = false;
        if b.is_empty() {
            return names;
        }
        names.extend(b.into_iter().map(|x| x.name));
    }
}

#[tokio::test]
async fn readdir_batches_restart_and_patterns() {
    let e = env().await;
    let ctx = RxContext::new();
    let mut expect = BTreeSet::new();
    for i in 0..1500 {
        let n = format!("file{i:04}.txt");
        std::fs::write(e.share.join(&n), b"").unwrap();
        expect.insert(n);
    }
    std::fs::create_dir(e.share.join("Sub")).unwrap();
    std::fs::write(e.share.join("notes.md"), b"hello").unwrap();
    expect.insert("Sub".into());
    expect.insert("notes.md".into());
    let d = e.open_dir("").await;
    // More than one batch, every name exactly once, no "." or "..".
    let first = e.rdr.query_directory(&d, None, false, &ctx).await.unwrap();
    assert!(!first.is_empty() && first.len() < 1502);
    let mut names: Vec<String> = first.into_iter().map(|x| x.name).collect();
    loop {
        let b = e.rdr.query_directory(&d, None, false, &ctx).await.unwrap();
        if b.is_empty() {
            break;
        }
        names.extend(b.into_iter().map(|x| x.name));
    }
    assert_eq!(names.len(), 1502);
    assert_eq!(names.iter().cloned().collect::<BTreeSet<_>>(), expect);
    // Restart starts over.
    assert_eq!(list_all(&e, &d, None).await.len(), 1502);
    // Patterns: case-insensitive wildcards.
    let mut md = list_all(&e, &d, Some("*.MD")).await;
    md.sort();
    assert_eq!(md, vec!["notes.md"]);
    assert_eq!(list_all(&e, &d, Some("file00?0.txt")).await.len(), 10);
    assert_eq!(list_all(&e, &d, Some("sub")).await, vec!["Sub"]);
    assert_eq!(list_all(&e, &d, Some("*.*")).await.len(), 1502);
    assert!(list_all(&e, &d, Some("zzz*")).await.is_empty());
    // Metadata comes with the entries.
    let b = e
        .rdr
        .query_directory(&d, Some("notes.md"), true, &ctx)
        .await
        .unwrap();
    assert_eq!(b[0].info.size, 5);
    let b = e
        .rdr
        .query_directory(&d, Some("Sub"), true, &ctx)
        .await
        .unwrap();
    assert!(b[0].info.is_dir);
    // A file is not a directory to list.
    let f = e.open_rw("notes.md", D::Open).await;
    assert_eq!(
        status(e.rdr.query_directory(&f, None, true, &ctx).await),
        NtStatus::STATUS_NOT_A_DIRECTORY
    );
    e.close(&f).await;
    e.close(&d).await;
}

#[tokio::test]
async fn query_volume_is_sane() {
    let e = env().await;
    let v = e.rdr.query_volume(&e.vnr, &RxContext::new()).await.unwrap();
    assert!(v.total_bytes > 0);
    assert!(v.free_bytes <= v.total_bytes);
    assert!(v.block_size >= 512 && v.block_size.is_power_of_two());
}

#[tokio::test]
async fn query_path_info_matches_the_file() {
    let e = env().await;
    std::fs::write(e.share.join("q.txt"), b"12345").unwrap();
    let ctx = RxContext::new();
    let i = e.rdr.query_path_info(&e.vnr, "q.txt", &ctx).await.unwrap();
    assert_eq!(i.size, 5);
    assert!(!i.is_dir);
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        i.file_id,
        std::fs::metadata(e.share.join("q.txt")).unwrap().ino()
    );
    let r = e.rdr.query_path_info(&e.vnr, "", &ctx).await.unwrap();
    assert!(r.is_dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_opens_leave_nothing_behind() {
    let e = std::sync::Arc::new(env().await);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let ctx = RxContext::new();
            for i in 0..40 {
                let name = format!("t{t}-{i}.bin");
                let h = e.open_rw(&name, D::Create).await;
                let payload = Bytes::from(vec![t as u8; 100_000 + i]);
                e.rdr.write(&h, 0, payload.clone(), &ctx).await.unwrap();
                let back = e.rdr.read(&h, 0, 200_000, &ctx).await.unwrap();
                assert_eq!(back, payload);
                // Everyone also opens one shared file.
                let s = e.open_rw("shared.bin", D::OpenIf).await;
                e.rdr
                    .set_info(&h, &SetInfo::Disposition(true), &ctx)
                    .await
                    .unwrap();
                e.close(&h).await;
                e.close(&s).await;
            }
        }));
    }
    for t in tasks {
        bounded(t).await.unwrap();
    }
    let s = e.rdr.stats();
    assert_eq!((s.srv_opens, s.fds), (0, 0));
    let left: Vec<_> = std::fs::read_dir(&e.share)
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, vec!["shared.bin".to_string()]);
}
