//! Nothing resolves outside the share: `..`, absolute symlinks, relative symlinks and symlinked
//! directories pointing outside all fail with STATUS_ACCESS_DENIED naming the path, for opens,
//! creates, queries and renames; a symlink inside the share works.

mod common;

use common::*;
use rdr_core::minirdr::{
    CreateDisposition as D, CreateOptions as O, MiniRedirector, SetInfo, file_attributes,
};
use rdr_core::{NtStatus, RxContext};
use std::os::unix::fs::symlink;

fn assert_denied<T>(r: rdr_core::RxResult<T>, path: &str) {
    let e = err(r);
    assert_eq!(e.nt_status(), NtStatus::STATUS_ACCESS_DENIED, "{e}");
    assert!(
        e.to_string().contains(path),
        "message {e:?} should name {path}"
    );
}

#[tokio::test]
async fn dotdot_cannot_escape() {
    let e = env().await;
    std::fs::create_dir(e.share.join("sub")).unwrap();
    for p in [
        "..\\outside\\secret.txt",
        "sub\\..\\..\\outside\\secret.txt",
        "..",
    ] {
        assert_denied(
            e.create(p, &params(rw(), all_share(), D::Open, O::empty()))
                .await,
            "..",
        );
        assert_denied(
            e.rdr.query_path_info(&e.vnr, p, &RxContext::new()).await,
            "..",
        );
    }
    // Creating outside is refused too, and nothing appears there.
    assert_denied(
        e.create(
            "..\\outside\\new.txt",
            &params(rw(), all_share(), D::Create, O::empty()),
        )
        .await,
        "new.txt",
    );
    assert!(!e.outside.join("new.txt").exists());
    // `..` that stays inside is fine.
    std::fs::write(e.share.join("in.txt"), b"in").unwrap();
    let h = e.open_rw("sub\\..\\in.txt", D::Open).await;
    e.close(&h).await;
}

#[tokio::test]
async fn symlinks_pointing_outside_fail() {
    let e = env().await;
    symlink(e.outside.join("secret.txt"), e.share.join("abs")).unwrap();
    symlink("../outside/secret.txt", e.share.join("rel")).unwrap();
    symlink(&e.outside, e.share.join("absdir")).unwrap();
    symlink("../outside", e.share.join("reldir")).unwrap();
    symlink("/etc/passwd", e.share.join("passwd")).unwrap();
    for p in ["abs", "rel", "passwd"] {
        assert_denied(
            e.create(p, &params(rw(), all_share(), D::Open, O::empty()))
                .await,
            p,
        );
        assert_denied(e.rdr.query_path_info(&e.vnr, p, &RxContext::new()).await, p);
        // OverwriteIf must not truncate the outside file.
        assert_denied(
            e.create(p, &params(rw(), all_share(), D::OverwriteIf, O::empty()))
                .await,
            p,
        );
    }
    for d in ["absdir", "reldir"] {
        let p = format!("{d}\\secret.txt");
        assert_denied(
            e.create(&p, &params(rw(), all_share(), D::Open, O::empty()))
                .await,
            d,
        );
        let p = format!("{d}\\created.txt");
        assert_denied(
            e.create(&p, &params(rw(), all_share(), D::Create, O::empty()))
                .await,
            d,
        );
        assert_denied(
            e.create(d, &params(rw(), all_share(), D::Open, O::DIRECTORY_FILE))
                .await,
            d,
        );
    }
    assert_eq!(
        std::fs::read(e.outside.join("secret.txt")).unwrap(),
        b"top secret"
    );
    assert!(!e.outside.join("created.txt").exists());
    assert_eq!(e.rdr.stats().fds, 0);
}

#[tokio::test]
async fn symlink_inside_the_share_works() {
    let e = env().await;
    std::fs::create_dir(e.share.join("real")).unwrap();
    std::fs::write(e.share.join("real").join("f.txt"), b"inside").unwrap();
    symlink("real/f.txt", e.share.join("link")).unwrap();
    symlink("real", e.share.join("dirlink")).unwrap();
    std::fs::create_dir(e.share.join("deep")).unwrap();
    symlink("../real/f.txt", e.share.join("deep").join("up")).unwrap();
    let ctx = RxContext::new();
    for p in ["link", "dirlink\\f.txt", "deep\\up"] {
        let h = e.open_rw(p, D::Open).await;
        let data = e.rdr.read(&h, 0, 100, &ctx).await.unwrap();
        assert_eq!(&data[..], b"inside", "{p}");
        e.close(&h).await;
    }
    let info = e
        .rdr
        .query_path_info(&e.vnr, "dirlink", &ctx)
        .await
        .unwrap();
    assert!(info.is_dir);
}

#[tokio::test]
async fn listing_never_stats_outside() {
    let e = env().await;
    symlink(e.outside.join("secret.txt"), e.share.join("abs")).unwrap();
    std::fs::write(e.share.join("real.txt"), b"12345").unwrap();
    symlink("real.txt", e.share.join("good")).unwrap();
    let d = e.open_dir("").await;
    let ctx = RxContext::new();
    let mut all = Vec::new();
    loop {
        let b = e.rdr.query_directory(&d, None, false, &ctx).await.unwrap();
        if b.is_empty() {
            break;
        }
        all.extend(b);
    }
    let abs = all.iter().find(|x| x.name == "abs").unwrap();
    // Shown as the link itself: not the 10-byte outside file.
    assert_ne!(abs.info.attributes & file_attributes::REPARSE_POINT, 0);
    assert_ne!(abs.info.size, 10);
    let good = all.iter().find(|x| x.name == "good").unwrap();
    assert_eq!(good.info.size, 5);
    assert_eq!(good.info.attributes & file_attributes::REPARSE_POINT, 0);
    e.close(&d).await;
}

#[tokio::test]
async fn rename_target_cannot_leave_the_share() {
    let e = env().await;
    symlink(&e.outside, e.share.join("out")).unwrap();
    let h = e.open_rw("f.txt", D::Create).await;
    let ctx = RxContext::new();
    for target in ["..\\outside\\moved.txt", "out\\moved.txt"] {
        let r = e
            .rdr
            .set_info(
                &h,
                &SetInfo::Rename {
                    new_path: target.into(),
                    replace: false,
                },
                &ctx,
            )
            .await;
        assert_denied(r, "moved.txt");
    }
    assert!(!e.outside.join("moved.txt").exists());
    assert!(e.share.join("f.txt").exists());
    e.close(&h).await;
}

#[tokio::test]
async fn symlink_loop_is_refused_with_the_path() {
    let e = env().await;
    symlink("loop2", e.share.join("loop1")).unwrap();
    symlink("loop1", e.share.join("loop2")).unwrap();
    assert_denied(
        e.create("loop1", &params(rw(), all_share(), D::Open, O::empty()))
            .await,
        "loop1",
    );
}
