//! Create: every disposition and its action, directory options, share modes, delete-on-close,
//! buffering, and bad input.

mod common;

use common::*;
use rdr_core::minirdr::{
    AccessMask, CreateAction, CreateDisposition as D, CreateOptions as O, Credentials,
    MiniRedirector, SetInfo, ShareAccess, VNetRootParams, file_attributes,
};
use rdr_core::{NtStatus, RxContext, RxError};
use std::os::unix::fs::PermissionsExt;

fn file_params(d: D) -> rdr_core::minirdr::CreateParams {
    params(rw(), all_share(), d, O::NON_DIRECTORY_FILE)
}

#[tokio::test]
async fn dispositions_on_missing_file() {
    let e = env().await;
    // Open and Overwrite need the file.
    for d in [D::Open, D::Overwrite] {
        assert_eq!(
            status(e.create("nope.txt", &file_params(d)).await),
            NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
            "{d:?}"
        );
    }
    // Everything else creates it.
    for (i, d) in [D::Create, D::OpenIf, D::OverwriteIf, D::Supersede]
        .into_iter()
        .enumerate()
    {
        let name = format!("new{i}.txt");
        let r = e.create(&name, &file_params(d)).await.unwrap();
        assert_eq!(r.action, CreateAction::Created, "{d:?}");
        assert!(!r.info.is_dir);
        assert_eq!(r.info.size, 0);
        assert!(e.share.join(&name).is_file());
        e.close(&r.srv_open).await;
    }
}

#[tokio::test]
async fn dispositions_on_existing_file() {
    let e = env().await;
    let cases = [
        (D::Open, CreateAction::Opened, 5),
        (D::OpenIf, CreateAction::Opened, 5),
        (D::Overwrite, CreateAction::Overwritten, 0),
        (D::OverwriteIf, CreateAction::Overwritten, 0),
        (D::Supersede, CreateAction::Superseded, 0),
    ];
    for (d, action, size) in cases {
        std::fs::write(e.share.join("f.txt"), b"hello").unwrap();
        let r = e.create("f.txt", &file_params(d)).await.unwrap();
        assert_eq!(r.action, action, "{d:?}");
        assert_eq!(r.info.size, size, "{d:?}");
        assert_eq!(
            std::fs::metadata(e.share.join("f.txt")).unwrap().len(),
            size
        );
        e.close(&r.srv_open).await;
    }
    let err = err(e.create("f.txt", &file_params(D::Create)).await);
    assert_eq!(err.nt_status(), NtStatus::STATUS_OBJECT_NAME_COLLISION);
    assert!(err.to_string().contains("Data\\f.txt"), "{err}");
    assert_eq!(e.rdr.stats().srv_opens, 0);
    assert_eq!(e.rdr.stats().fds, 0);
}

#[tokio::test]
async fn missing_parent_is_path_not_found() {
    let e = env().await;
    assert_eq!(
        status(e.create("no\\such\\f.txt", &file_params(D::Open)).await),
        NtStatus::STATUS_OBJECT_PATH_NOT_FOUND
    );
    assert_eq!(
        status(e.create("no\\f.txt", &file_params(D::Create)).await),
        NtStatus::STATUS_OBJECT_PATH_NOT_FOUND
    );
    std::fs::write(e.share.join("plain"), b"x").unwrap();
    assert_eq!(
        status(e.create("plain\\f.txt", &file_params(D::OpenIf)).await),
        NtStatus::STATUS_OBJECT_PATH_NOT_FOUND
    );
    let info = e
        .rdr
        .query_path_info(&e.vnr, "no\\x", &RxContext::new())
        .await;
    assert_eq!(status(info), NtStatus::STATUS_OBJECT_PATH_NOT_FOUND);
    let info = e
        .rdr
        .query_path_info(&e.vnr, "nox", &RxContext::new())
        .await;
    assert_eq!(status(info), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
}

#[tokio::test]
async fn directories_create_open_and_refuse() {
    let e = env().await;
    let dir = |d| {
        params(
            AccessMask::FILE_READ_DATA,
            all_share(),
            d,
            O::DIRECTORY_FILE,
        )
    };
    let r = e.create("sub", &dir(D::Create)).await.unwrap();
    assert_eq!(r.action, CreateAction::Created);
    assert!(r.info.is_dir);
    assert_ne!(r.info.attributes & file_attributes::DIRECTORY, 0);
    assert!(e.share.join("sub").is_dir());
    e.close(&r.srv_open).await;
    let r = e.create("sub", &dir(D::OpenIf)).await.unwrap();
    assert_eq!(r.action, CreateAction::Opened);
    e.close(&r.srv_open).await;
    let r = e.create("sub2", &dir(D::OpenIf)).await.unwrap();
    assert_eq!(r.action, CreateAction::Created);
    e.close(&r.srv_open).await;
    assert_eq!(
        status(e.create("sub", &dir(D::Create)).await),
        NtStatus::STATUS_OBJECT_NAME_COLLISION
    );
    // A directory cannot be overwritten.
    assert_eq!(
        status(e.create("sub", &dir(D::OverwriteIf)).await),
        NtStatus::STATUS_INVALID_PARAMETER
    );
    assert_eq!(
        status(
            e.create("sub", &params(rw(), all_share(), D::Overwrite, O::empty()))
                .await
        ),
        NtStatus::STATUS_FILE_IS_A_DIRECTORY
    );
    // NON_DIRECTORY_FILE refuses a directory, DIRECTORY_FILE a file.
    assert_eq!(
        status(e.create("sub", &file_params(D::Open)).await),
        NtStatus::STATUS_FILE_IS_A_DIRECTORY
    );
    std::fs::write(e.share.join("file"), b"x").unwrap();
    assert_eq!(
        status(e.create("file", &dir(D::Open)).await),
        NtStatus::STATUS_NOT_A_DIRECTORY
    );
    // Without either option, both open.
    let r = e
        .create(
            "sub",
            &params(AccessMask::FILE_READ_DATA, all_share(), D::Open, O::empty()),
        )
        .await
        .unwrap();
    assert!(r.info.is_dir);
    e.close(&r.srv_open).await;
    // The share root opens as a directory.
    let r = e.create("", &dir(D::Open)).await.unwrap();
    assert!(r.info.is_dir);
    e.close(&r.srv_open).await;
    assert_eq!(e.rdr.stats().fds, 0);
}

#[tokio::test]
async fn new_file_gets_the_mode_asked_for() {
    let e = env().await;
    let mut p = file_params(D::Create);
    p.mode = Some(0o640);
    let r = e.create("m.txt", &p).await.unwrap();
    assert_eq!(r.info.mode, Some(0o640));
    let mode = std::fs::metadata(e.share.join("m.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o640);
    e.close(&r.srv_open).await;
    let mut p = file_params(D::Create);
    p.mode = Some(0o644);
    p.attributes = file_attributes::READONLY;
    let r = e.create("ro.txt", &p).await.unwrap();
    assert_eq!(r.info.mode, Some(0o444));
    assert_ne!(r.info.attributes & file_attributes::READONLY, 0);
    e.close(&r.srv_open).await;
}

#[tokio::test]
async fn share_modes_conflict_like_windows() {
    let e = env().await;
    std::fs::write(e.share.join("s.txt"), b"x").unwrap();
    // A reader that does not share write keeps writers out.
    let reader = e
        .create(
            "s.txt",
            &params(
                AccessMask::FILE_READ_DATA,
                ShareAccess::READ,
                D::Open,
                O::empty(),
            ),
        )
        .await
        .unwrap();
    let w = e
        .create(
            "s.txt",
            &params(
                AccessMask::FILE_WRITE_DATA,
                all_share(),
                D::Open,
                O::empty(),
            ),
        )
        .await;
    let w = err(w);
    assert_eq!(w.nt_status(), NtStatus::STATUS_SHARING_VIOLATION);
    assert!(w.to_string().contains("s.txt"));
    // Another reader sharing read and write is fine.
    let r2 = e
        .create(
            "s.txt",
            &params(AccessMask::FILE_READ_DATA, all_share(), D::Open, O::empty()),
        )
        .await
        .unwrap();
    // A new open that shares nothing conflicts with the existing readers.
    assert_eq!(
        status(
            e.create(
                "s.txt",
                &params(
                    AccessMask::FILE_READ_DATA,
                    ShareAccess::empty(),
                    D::Open,
                    O::empty()
                )
            )
            .await
        ),
        NtStatus::STATUS_SHARING_VIOLATION
    );
    // An attributes-only open takes no part in share modes.
    let attr = e
        .create(
            "s.txt",
            &params(
                AccessMask::FILE_READ_ATTRIBUTES,
                ShareAccess::empty(),
                D::Open,
                O::empty(),
            ),
        )
        .await
        .unwrap();
    // Overwrite is refused before anything is truncated.
    std::fs::write(e.share.join("s.txt"), b"keep").unwrap();
    assert_eq!(
        status(e.create("s.txt", &file_params(D::OverwriteIf)).await),
        NtStatus::STATUS_SHARING_VIOLATION
    );
    assert_eq!(std::fs::read(e.share.join("s.txt")).unwrap(), b"keep");
    e.close(&reader.srv_open).await;
    e.close(&r2.srv_open).await;
    e.close(&attr.srv_open).await;
    // Once they are closed, the writer gets in.
    let w = e.open_rw("s.txt", D::Open).await;
    e.close(&w).await;
}

#[tokio::test]
async fn buffering_full_when_alone_read_only_when_shared_for_write() {
    let e = env().await;
    let a = e.create("b.txt", &file_params(D::OpenIf)).await.unwrap();
    assert!(a.buffering.read_caching && a.buffering.write_caching && a.buffering.handle_caching);
    let b = e.create("b.txt", &file_params(D::Open)).await.unwrap();
    assert!(b.buffering.read_caching);
    assert!(!b.buffering.write_caching && !b.buffering.handle_caching);
    e.close(&a.srv_open).await;
    e.close(&b.srv_open).await;
}

#[tokio::test]
async fn delete_on_close_deletes_at_last_close() {
    let e = env().await;
    let p = params(
        rw() | AccessMask::DELETE,
        all_share(),
        D::Create,
        O::DELETE_ON_CLOSE | O::NON_DIRECTORY_FILE,
    );
    let doomed = e.create("tmp.txt", &p).await.unwrap();
    let other = e.open_rw("tmp.txt", D::Open).await;
    e.close(&doomed.srv_open).await;
    // Still open elsewhere: still there, but no new open may start.
    assert!(e.share.join("tmp.txt").exists());
    assert_eq!(
        status(e.create("tmp.txt", &file_params(D::Open)).await),
        NtStatus::STATUS_DELETE_PENDING
    );
    e.close(&other).await;
    assert!(!e.share.join("tmp.txt").exists());

    // A file already deleted outside rdr: the close still succeeds.
    let gone = e.create("gone.txt", &p).await.unwrap();
    std::fs::remove_file(e.share.join("gone.txt")).unwrap();
    e.close(&gone.srv_open).await;

    // Directories: delete-on-close of an empty one removes it; a non-empty one is refused.
    std::fs::create_dir(e.share.join("d")).unwrap();
    let dp = params(
        AccessMask::FILE_READ_DATA | AccessMask::DELETE,
        all_share(),
        D::Open,
        O::DIRECTORY_FILE | O::DELETE_ON_CLOSE,
    );
    let d = e.create("d", &dp).await.unwrap();
    e.close(&d.srv_open).await;
    assert!(!e.share.join("d").exists());
    std::fs::create_dir(e.share.join("full")).unwrap();
    std::fs::write(e.share.join("full").join("x"), b"x").unwrap();
    assert_eq!(
        status(e.create("full", &dp).await),
        NtStatus::STATUS_DIRECTORY_NOT_EMPTY
    );
    assert_eq!(e.rdr.stats().fds, 0);
}

#[tokio::test]
async fn disposition_marks_and_unmarks() {
    let e = env().await;
    let h = e.open_rw("x.txt", D::Create).await;
    let ctx = RxContext::new();
    e.rdr
        .set_info(&h, &SetInfo::Disposition(true), &ctx)
        .await
        .unwrap();
    e.rdr
        .set_info(&h, &SetInfo::Disposition(false), &ctx)
        .await
        .unwrap();
    e.close(&h).await;
    assert!(e.share.join("x.txt").exists());
    let h = e.open_rw("x.txt", D::Open).await;
    e.rdr
        .set_info(&h, &SetInfo::Disposition(true), &ctx)
        .await
        .unwrap();
    e.close(&h).await;
    assert!(!e.share.join("x.txt").exists());
    // The root cannot be deleted.
    let root = e.open_dir("").await;
    assert_eq!(
        status(
            e.rdr
                .set_info(&root, &SetInfo::Disposition(true), &ctx)
                .await
        ),
        NtStatus::STATUS_CANNOT_DELETE
    );
    e.close(&root).await;
}

#[tokio::test]
async fn bad_inputs_give_specific_errors() {
    let e = env().await;
    let ctx = RxContext::new();
    // Unknown share.
    let r = e
        .rdr
        .create_v_net_root(
            &e.srv,
            None,
            &VNetRootParams {
                share: "nosuch".into(),
                credentials: Credentials::default(),
            },
            &ctx,
        )
        .await;
    let er = err(r);
    assert_eq!(er.nt_status(), NtStatus::STATUS_BAD_NETWORK_NAME);
    assert!(er.to_string().contains("nosuch"));
    // NUL in a path.
    let er = err(e.create("a\0b", &file_params(D::OpenIf)).await);
    assert!(matches!(er, RxError::InvalidName { .. }), "{er:?}");
    assert_eq!(er.nt_status(), NtStatus::STATUS_OBJECT_NAME_INVALID);
    assert_eq!(
        status(e.rdr.query_path_info(&e.vnr, "x\0", &ctx).await),
        NtStatus::STATUS_OBJECT_NAME_INVALID
    );
    // A '/' inside a component, an empty component.
    assert_eq!(
        status(e.create("a/b", &file_params(D::OpenIf)).await),
        NtStatus::STATUS_OBJECT_NAME_INVALID
    );
    assert_eq!(
        status(e.create("a\\\\b", &file_params(D::OpenIf)).await),
        NtStatus::STATUS_OBJECT_NAME_INVALID
    );
    // A name too long.
    assert_eq!(
        status(e.create(&"n".repeat(300), &file_params(D::OpenIf)).await),
        NtStatus::STATUS_NAME_TOO_LONG
    );
    // Contradictory options.
    assert_eq!(
        status(
            e.create(
                "c",
                &params(
                    rw(),
                    all_share(),
                    D::OpenIf,
                    O::DIRECTORY_FILE | O::NON_DIRECTORY_FILE
                )
            )
            .await
        ),
        NtStatus::STATUS_INVALID_PARAMETER
    );
    // A context that is not ours.
    let foreign: rdr_core::minirdr::MrxContext = std::sync::Arc::new(5u32);
    assert_eq!(
        status(
            e.rdr
                .create(&foreign, "x", &file_params(D::OpenIf), &ctx)
                .await
        ),
        NtStatus::STATUS_INVALID_HANDLE
    );
    // A handle used after close.
    let h = e.open_rw("h.txt", D::Create).await;
    e.close(&h).await;
    assert_eq!(
        status(e.rdr.read(&h, 0, 10, &ctx).await),
        NtStatus::STATUS_FILE_CLOSED
    );
    assert_eq!(
        status(e.rdr.close_srv_open(&h).await),
        NtStatus::STATUS_FILE_CLOSED
    );
    // A cancelled context.
    let c = RxContext::new();
    c.cancel();
    assert_eq!(
        status(e.rdr.create(&e.vnr, "y", &file_params(D::OpenIf), &c).await),
        NtStatus::STATUS_CANCELLED
    );
}

#[tokio::test]
async fn connection_bookkeeping() {
    let e = env().await;
    let ctx = RxContext::new();
    assert_eq!(e.rdr.servers(), vec!["localhost".to_string()]);
    assert_eq!(e.rdr.logon_ids(), vec![1000]);
    // A second view of the same share reuses the share context.
    let v2 = e
        .rdr
        .create_v_net_root(
            &e.srv,
            Some(&e.net_root),
            &VNetRootParams {
                share: "DATA".into(),
                credentials: Credentials {
                    logon_id: 1001,
                    ..Default::default()
                },
            },
            &ctx,
        )
        .await
        .unwrap();
    assert!(v2.net_root.is_none());
    let h = e
        .rdr
        .create(&v2.v_net_root, "via2.txt", &file_params(D::Create), &ctx)
        .await
        .unwrap();
    assert_eq!(e.rdr.stats().srv_opens, 1);
    assert!(e.rdr.stats().fds >= 1);
    e.rdr.close_srv_open(&h.srv_open).await.unwrap();
    e.rdr.finalize_v_net_root(&v2.v_net_root).await;
    e.rdr.finalize_v_net_root(&e.vnr).await;
    e.rdr.finalize_net_root(&e.net_root).await;
    e.rdr.finalize_srv_call(&e.srv, false).await;
    let s = e.rdr.stats();
    assert_eq!(s.srv_calls_created, 1);
    assert_eq!(s.v_net_roots_created, 2);
    assert_eq!(s.v_net_roots_finalized, 2);
    assert_eq!(s.net_roots_finalized, 1);
    assert_eq!(s.srv_calls_finalized, 1);
    assert_eq!(s.srv_opens, 0);
    assert_eq!(s.fds, 0);
    assert_eq!(e.rdr.logon_ids(), vec![1000, 1001]);
}

#[tokio::test]
async fn dropping_an_open_without_close_releases_it() {
    let e = env().await;
    let h = e.open_rw("d.txt", D::Create).await;
    assert_eq!(e.rdr.stats().fds, 1);
    drop(h);
    assert_eq!(e.rdr.stats().fds, 0);
    assert_eq!(e.rdr.stats().srv_opens, 0);
    // No share-mode record is left behind.
    let h = e
        .create(
            "d.txt",
            &params(rw(), ShareAccess::empty(), D::Open, O::empty()),
        )
        .await
        .unwrap();
    e.close(&h.srv_open).await;
}

#[tokio::test]
async fn special_files_are_refused_without_hanging() {
    let e = env().await;
    let fifo = std::ffi::CString::new(e.share.join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    // Opening a FIFO for reading would block until a writer comes; it must be refused.
    let r = bounded(e.create("fifo", &params(rw(), all_share(), D::Open, O::empty()))).await;
    assert_eq!(status(r), NtStatus::STATUS_ACCESS_DENIED);
    // Its metadata is still visible.
    let info = e
        .rdr
        .query_path_info(&e.vnr, "fifo", &RxContext::new())
        .await
        .unwrap();
    assert!(!info.is_dir);
}

#[tokio::test]
async fn export_names_are_checked() {
    let rdr = rdr_local::LocalRdr::new();
    let tmp = tempfile::tempdir().unwrap();
    assert!(rdr.export("a\\b", tmp.path().to_path_buf()).is_err());
    assert!(rdr.export("", tmp.path().to_path_buf()).is_err());
    let er = rdr.export("x", tmp.path().join("missing")).unwrap_err();
    assert_eq!(er.nt_status(), NtStatus::STATUS_BAD_NETWORK_NAME);
    assert!(er.to_string().contains("missing"));
    rdr.export("x", tmp.path().to_path_buf()).unwrap();
    assert!(rdr.unexport("X"));
    assert!(!rdr.unexport("x"));
}
