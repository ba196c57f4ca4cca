//! Shared test setup: a temp dir with `share/` exported as "Data" and `outside/` next to it.
#![allow(dead_code)]

use rdr_core::minirdr::{
    AccessMask, CreateDisposition, CreateOptions, CreateParams, CreateResult, Credentials,
    MiniRedirector, MrxContext, ShareAccess, SrvCallParams, VNetRootParams,
};
use rdr_core::{NtStatus, RxContext, RxError, RxResult};
use rdr_local::LocalRdr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything a test needs.
pub struct Env {
    pub tmp: tempfile::TempDir,
    pub share: PathBuf,
    pub outside: PathBuf,
    pub rdr: LocalRdr,
    pub srv: MrxContext,
    pub net_root: MrxContext,
    pub vnr: MrxContext,
}

pub async fn env() -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let share = tmp.path().join("share");
    let outside = tmp.path().join("outside");
    std::fs::create_dir(&share).unwrap();
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("secret.txt"), b"top secret").unwrap();
    let rdr = LocalRdr::new();
    rdr.export("Data", share.clone()).unwrap();
    let ctx = RxContext::new();
    let srv = rdr
        .create_srv_call(
            &SrvCallParams {
                server: "localhost".into(),
                port: None,
            },
            &ctx,
        )
        .await
        .unwrap();
    let created = rdr
        .create_v_net_root(
            &srv,
            None,
            &VNetRootParams {
                share: "data".into(),
                credentials: Credentials {
                    logon_id: 1000,
                    ..Default::default()
                },
            },
            &ctx,
        )
        .await
        .unwrap();
    Env {
        tmp,
        share,
        outside,
        rdr,
        srv,
        net_root: created.net_root.unwrap(),
        vnr: created.v_net_root,
    }
}

pub fn rw() -> AccessMask {
    AccessMask::FILE_READ_DATA | AccessMask::FILE_WRITE_DATA | AccessMask::FILE_READ_ATTRIBUTES
}

pub fn all_share() -> ShareAccess {
    ShareAccess::READ | ShareAccess::WRITE | ShareAccess::DELETE
}

pub fn params(
    access: AccessMask,
    share: ShareAccess,
    disposition: CreateDisposition,
    options: CreateOptions,
) -> CreateParams {
    CreateParams {
        access,
        share,
        disposition,
        options,
        attributes: 0,
        mode: None,
    }
}

impl Env {
    pub async fn create(&self, path: &str, p: &CreateParams) -> RxResult<CreateResult> {
        self.rdr.create(&self.vnr, path, p, &RxContext::new()).await
    }

    /// Open (or create) a file read-write, sharing everything.
    pub async fn open_rw(&self, path: &str, disp: CreateDisposition) -> MrxContext {
        self.create(
            path,
            &params(rw(), all_share(), disp, CreateOptions::NON_DIRECTORY_FILE),
        )
        .await
        .unwrap()
        .srv_open
    }

    /// Open an existing directory.
    pub async fn open_dir(&self, path: &str) -> MrxContext {
        self.create(
            path,
            &params(
                AccessMask::FILE_READ_DATA,
                all_share(),
                CreateDisposition::Open,
                CreateOptions::DIRECTORY_FILE,
            ),
        )
        .await
        .unwrap()
        .srv_open
    }

    pub async fn close(&self, h: &MrxContext) {
        self.rdr.close_srv_open(h).await.unwrap();
    }
}

/// The NTSTATUS of an error result.
pub fn status<T>(r: RxResult<T>) -> NtStatus {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.nt_status(),
    }
}

/// The error of a result.
pub fn err<T>(r: RxResult<T>) -> RxError {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

/// Fail the test instead of hanging.
pub async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("operation did not finish within 10 s")
}
