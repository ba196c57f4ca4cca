//! Which mini-redirector serves a REMOTE, chosen by its form: `local:/dir` → rdr-local's
//! `LocalRdr`; `//host/share`, `\\host\share`, `smb://…` → rdr-smb's `SmbRdr`.

use rdr_core::minirdr::MiniRedirector;
use rdr_core::name::RemoteName;
use rdr_core::{Rdbss, RdbssConfig};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A REMOTE as the user wrote it, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// `local:/some/dir` (absolute path).
    Local(PathBuf),
    /// An SMB share (`//host[:port]/share`, `\\host\share`, `smb://[user@]host[:port]/share`).
    Smb(String),
}

impl Remote {
    /// Classify a REMOTE; a one-line error names what is wrong.
    pub fn parse(s: &str) -> Result<Remote, String> {
        if let Some(p) = s.strip_prefix("local:") {
            let p = Path::new(p);
            if !p.is_absolute() {
                return Err(format!(
                    "{s}: a local remote needs an absolute path, like local:/srv/data"
                ));
            }
            return Ok(Remote::Local(p.to_path_buf()));
        }
        if s.starts_with("//") || s.starts_with("\\\\") || s.starts_with("smb://") {
            return Ok(Remote::Smb(s.to_string()));
        }
        Err(format!(
            "{s}: not a remote name; use //host[:port]/share, \\\\host\\share, smb://[user@]host[:port]/share or local:/dir"
        ))
    }

    /// How the remote is shown (`local:/dir`, `\\server\share`).
    pub fn display(&self) -> String {
        match self {
            Remote::Local(p) => format!("local:{}", p.display()),
            Remote::Smb(s) => match RemoteName::parse(s) {
                Ok(n) => n.unc(),
                Err(_) => s.clone(),
            },
        }
    }
}

/// Serves local directories: one `LocalRdr`, one share per exported directory.
pub struct LocalBackend {
    /// The redirector over `LocalRdr`.
    pub rdbss: Rdbss,
    rdr: Arc<rdr_local::LocalRdr>,
    shares: parking_lot::Mutex<HashMap<PathBuf, String>>,
}

impl LocalBackend {
    /// A backend with no exports yet; its scavenger (delayed close, dormant transports) runs
    /// on the current tokio runtime.
    pub fn new() -> Self {
        let rdr = Arc::new(rdr_local::LocalRdr::new());
        let m: Arc<dyn MiniRedirector> = rdr.clone();
        let rdbss = Rdbss::new(m, RdbssConfig::default());
        rdbss.spawn_scavenger(std::time::Duration::from_secs(1));
        LocalBackend {
            rdbss,
            rdr,
            shares: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The remote name under which `dir` is served (exported on first use).
    pub fn remote_for(&self, dir: &Path) -> Result<RemoteName, String> {
        let mut shares = self.shares.lock();
        let share = match shares.get(dir) {
            Some(s) => s.clone(),
            None => {
                let s = format!("d{}", shares.len() + 1);
                self.rdr
                    .export(&s, dir.to_path_buf())
                    .map_err(|e| format!("local:{}: {e}", dir.display()))?;
                shares.insert(dir.to_path_buf(), s.clone());
                s
            }
        };
        Ok(RemoteName {
            server: "local".into(),
            port: None,
            share,
            path: vec![],
            user: None,
        })
    }
}

/// `RDR_SMB_SIGNING=required` signs every message of every session; otherwise (`auto`, the
/// default) messages are signed when the server requires it, as cifs.ko and smbclient do.
/// Encryption, when a share or server requires it, protects messages either way.
fn signing_required_by_user() -> bool {
    std::env::var("RDR_SMB_SIGNING").is_ok_and(|v| v.eq_ignore_ascii_case("required"))
}

/// Bytes a writer may have on their way to the server per open (write-behind window).
const DEFAULT_WRITE_BEHIND: usize = 16 << 20;

/// How long a break may take before it is acknowledged anyway (servers wait 35 s).
const BREAK_BUDGET: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves every SMB remote: one `Rdbss` over one `SmbRdr`, so one SrvCall (one TCP
/// connection) per server carries the sessions of every local user.
pub struct SmbBackend {
    /// The redirector over `SmbRdr`.
    pub rdbss: Rdbss,
    /// Called (on a blocking thread, before the break is acknowledged) with the share paths
    /// whose read caching a break took away: the mounts drop their kernel pages.
    invalidate: Invalidator,
}

/// Who drops kernel caches for share paths after a break.
type Invalidator = Arc<parking_lot::Mutex<Option<Arc<dyn Fn(Vec<String>) + Send + Sync>>>>;

impl SmbBackend {
    /// A backend whose scavenger (delayed close, dormant transports) and break handler run on
    /// the current tokio runtime. Writes under a write-caching lease go to the server in the
    /// background, at most `RDR_SMB_WRITE_BEHIND` bytes per open at a time (default 16 MiB;
    /// 0 = every write waits for the server).
    pub fn new() -> Self {
        let mut config = rdr_smb::SmbConfig::default();
        config.client.require_signing = signing_required_by_user();
        let rdr = Arc::new(rdr_smb::SmbRdr::new(config));
        let mut breaks = rdr.subscribe_breaks();
        let m: Arc<dyn MiniRedirector> = rdr;
        let cfg = RdbssConfig {
            write_behind_limit: std::env::var("RDR_SMB_WRITE_BEHIND")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(DEFAULT_WRITE_BEHIND),
            ..RdbssConfig::default()
        };
        let rdbss = Rdbss::new(m, cfg);
        rdbss.spawn_scavenger(std::time::Duration::from_secs(1));
        // Every lease or oplock break: lower the opens' buffering state and flush their dirty
        // data, then let rdr-smb acknowledge (releasing the event), within the break budget.
        let weak = rdbss.downgrade();
        let invalidate: Invalidator = Arc::default();
        let inval = invalidate.clone();
        tokio::spawn(async move {
            while let Some(ev) = breaks.recv().await {
                let Some(rdbss) = weak.upgrade() else { break };
                let inval = inval.lock().clone();
                tokio::spawn(async move {
                    let ctx = rdr_core::RxContext::new().with_timeout(BREAK_BUDGET);
                    let new = ev.new_buffering();
                    let change = rdbss
                        .change_buffering_state(&ev.srv_open_key(), new, &ctx)
                        .await;
                    // Purge: pages cached under R are stale once the other client may write.
                    if let Some(f) = inval.filter(|_| !new.read_caching && change.opens > 0) {
                        let paths = change.paths.clone();
                        let _ = tokio::task::spawn_blocking(move || f(paths)).await;
                    }
                    for u in &change.unflushed {
                        eprintln!(
                            "rdr: {}: lease break acknowledged before {} written bytes reached the server ({})",
                            u.path, u.bytes, u.error
                        );
                    }
                    ev.release();
                });
            }
        });
        SmbBackend { rdbss, invalidate }
    }

    /// Set who drops kernel caches after a break took read caching away (the daemon's mounts).
    pub fn on_read_caching_lost(&self, f: impl Fn(Vec<String>) + Send + Sync + 'static) {
        *self.invalidate.lock() = Some(Arc::new(f));
    }

    /// Parse an SMB REMOTE; `port` (from `--port`) overrides a port in the name, `user`
    /// (from `--user`) overrides `smb://user@…`. A one-line error names what is wrong.
    pub fn remote_name(
        s: &str,
        port: Option<u16>,
        user: Option<&str>,
    ) -> Result<RemoteName, String> {
        let mut n = RemoteName::parse(s).map_err(|e| format!("{s}: {e}"))?;
        if !n.path.is_empty() {
            return Err(format!(
                "{s}: name a share, not a path inside it (like //host/share)"
            ));
        }
        if port.is_some() {
            n.port = port;
        }
        if let Some(u) = user {
            n.user = Some(u.to_string());
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_forms() {
        assert_eq!(
            Remote::parse("local:/tmp/x").unwrap(),
            Remote::Local("/tmp/x".into())
        );
        assert!(Remote::parse("local:rel").is_err());
        assert!(matches!(Remote::parse("//h/s"), Ok(Remote::Smb(_))));
        assert!(matches!(Remote::parse("\\\\h\\s"), Ok(Remote::Smb(_))));
        assert!(matches!(
            Remote::parse("smb://u@h:445/s"),
            Ok(Remote::Smb(_))
        ));
        assert!(Remote::parse("/just/a/path").is_err());
    }

    #[test]
    fn smb_names() {
        let n = SmbBackend::remote_name("smb://bob@h:4455/s", None, None).unwrap();
        assert_eq!(
            (n.server.as_str(), n.port, n.share.as_str()),
            ("h", Some(4455), "s")
        );
        assert_eq!(n.user.as_deref(), Some("bob"));
        let n = SmbBackend::remote_name("//h/s", Some(99), Some("al")).unwrap();
        assert_eq!((n.port, n.user.as_deref()), (Some(99), Some("al")));
        let n = SmbBackend::remote_name("\\\\h\\s", None, None).unwrap();
        assert_eq!((n.server.as_str(), n.share.as_str()), ("h", "s"));
        assert!(SmbBackend::remote_name("//h/s/sub", None, None).is_err());
    }
}
