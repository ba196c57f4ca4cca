//! Shared helpers of the tests against the project's private Samba (`scripts/samba-fixture.sh`).
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rdr_core::minirdr::{AccessMask, CreateDisposition, CreateOptions, CreateParams, ShareAccess};
use rdr_smb::{ClientConfig, Identity, Session, SmbClient, Tree};

/// The fixture's environment (see scripts/samba-fixture.sh).
#[derive(Debug, Clone)]
pub struct Env {
    pub host: String,
    pub port: u16,
    pub user1: String,
    pub pass1: String,
    pub user2: String,
    pub pass2: String,
    pub share: String,
    pub share_enc: String,
    pub share_ro: String,
    pub samba_dir: String,
    pub conf: String,
}

/// The fixture's variables, or `None` (skip) when they are missing outside CI; in CI a missing
/// fixture fails the test.
pub fn env() -> Option<Env> {
    let get = |k: &str| std::env::var(k).ok();
    let e = (|| {
        Some(Env {
            host: get("RDR_SMB_HOST")?,
            port: get("RDR_SMB_PORT")?.parse().ok()?,
            user1: get("RDR_SMB_USER1")?,
            pass1: get("RDR_SMB_PASS1")?,
            user2: get("RDR_SMB_USER2")?,
            pass2: get("RDR_SMB_PASS2")?,
            share: get("RDR_SMB_SHARE")?,
            share_enc: get("RDR_SMB_SHARE_ENCRYPTED")?,
            share_ro: get("RDR_SMB_SHARE_RO")?,
            samba_dir: get("RDR_SAMBA_DIR")?,
            conf: get("RDR_SAMBA_CONF")?,
        })
    })();
    if e.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "RDR_SMB_* variables missing: run scripts/samba-fixture.sh start and source /tmp/rdr-samba/env"
            );
        }
        eprintln!(
            "skipped: no Samba fixture (scripts/samba-fixture.sh start; set -a; . /tmp/rdr-samba/env)"
        );
    }
    e
}

impl Env {
    pub fn id1(&self) -> Identity {
        Identity {
            user: self.user1.clone(),
            domain: String::new(),
            password: self.pass1.clone(),
        }
    }
    pub fn id2(&self) -> Identity {
        Identity {
            user: self.user2.clone(),
            domain: String::new(),
            password: self.pass2.clone(),
        }
    }
    pub async fn client(&self, cfg: ClientConfig) -> Arc<SmbClient> {
        SmbClient::connect(&self.host, self.port, cfg)
            .await
            .expect("connect + negotiate")
    }
    /// A session of `who` and a tree on `share`.
    pub async fn tree(&self, client: &Arc<SmbClient>, who: &Identity, share: &str) -> Arc<Tree> {
        let s: Arc<Session> = Session::setup(client, who).await.expect("session setup");
        Tree::connect(&s, share).await.expect("tree connect")
    }
    /// smbclient against the fixture as user 1; returns (success, stdout+stderr).
    pub fn smbclient(&self, share: &str, cmd: &str) -> (bool, String) {
        let out = std::process::Command::new("smbclient")
            .args([
                "-p",
                &self.port.to_string(),
                &format!("//{}/{}", self.host, share),
            ])
            .args(["-U", &format!("{}%{}", self.user1, self.pass1), "-c", cmd])
            .output()
            .expect("run smbclient");
        let mut s = String::from_utf8_lossy(&out.stdout).to_string();
        s.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), s)
    }
}

/// A name no other test (or run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000
    )
}

pub fn params(access: AccessMask, disposition: CreateDisposition) -> CreateParams {
    CreateParams {
        access,
        share: ShareAccess::READ | ShareAccess::WRITE | ShareAccess::DELETE,
        disposition,
        options: CreateOptions::NON_DIRECTORY_FILE,
        attributes: 0,
        mode: None,
    }
}

pub fn rw() -> AccessMask {
    AccessMask::GENERIC_READ | AccessMask::GENERIC_WRITE | AccessMask::DELETE
}

pub fn dir_params(disposition: CreateDisposition) -> CreateParams {
    CreateParams {
        access: AccessMask::GENERIC_READ | AccessMask::DELETE,
        share: ShareAccess::READ | ShareAccess::WRITE | ShareAccess::DELETE,
        disposition,
        options: CreateOptions::DIRECTORY_FILE,
        attributes: 0,
        mode: None,
    }
}

/// Deterministic test data.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Runs `f` with a time limit; a hang fails the test.
pub async fn bounded<T>(secs: u64, what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within {secs} s"))
}
