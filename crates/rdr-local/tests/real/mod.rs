//! The rdr-testkit fixture over real files: `LocalRdr` exporting a temporary directory as
//! `\\srv\share`. The directory is removed when the last reference to the fixture goes.
#![allow(dead_code)]

use rdr_core::RdbssConfig;
use rdr_core::minirdr::MiniRedirector;
use rdr_local::LocalRdr;
use rdr_testkit::{Env, Fixture};
use std::path::PathBuf;
use std::sync::Arc;

/// A temporary directory whose `share/` and `other/` are served by `LocalRdr` as shares "share"
/// and "other" (any server name).
pub struct LocalFixture {
    pub tmp: tempfile::TempDir,
    pub rdr: LocalRdr,
}

impl LocalFixture {
    pub fn new() -> Arc<LocalFixture> {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let rdr = LocalRdr::new();
        for share in ["share", "other"] {
            let dir = tmp.path().join(share);
            std::fs::create_dir(&dir).expect("a share directory");
            rdr.export(share, dir)
                .expect("export a temporary directory");
        }
        Arc::new(LocalFixture { tmp, rdr })
    }
    /// The real path of a share path (`\`-separated).
    pub fn real(&self, path: &str) -> PathBuf {
        let rel: PathBuf = path.split('\\').filter(|c| !c.is_empty()).collect();
        self.tmp.path().join("share").join(rel)
    }
}

impl Fixture for LocalFixture {
    fn minirdr(&self) -> Arc<dyn MiniRedirector> {
        Arc::new(self.rdr.clone())
    }
    fn make_file(&self, path: &str, data: &[u8]) {
        std::fs::write(self.real(path), data).expect("write a real file");
    }
    fn make_dir(&self, path: &str) {
        std::fs::create_dir_all(self.real(path)).expect("make a real directory");
    }
    fn content(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.real(path)).ok()
    }
    fn server_opens(&self) -> Option<usize> {
        Some(self.rdr.stats().srv_opens)
    }
    fn resources(&self) -> Option<usize> {
        Some(self.rdr.stats().fds)
    }
}

/// An environment over real files (rdr-testkit's `MakeEnv`).
pub fn local_env(config: RdbssConfig) -> Env {
    Env::with_fixture(LocalFixture::new(), config)
}

/// An environment over real files, with the fixture for direct checks.
pub fn local_env_with(config: RdbssConfig) -> (Env, Arc<LocalFixture>) {
    let fx = LocalFixture::new();
    (Env::with_fixture(fx.clone(), config), fx)
}
