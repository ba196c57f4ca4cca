//! The control socket protocol: one JSON object per line each way. The daemon formats the text a
//! user sees, so the CLI stays thin and every client prints the same thing.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How hard a delete pushes (the CLI's flags; RDBSS ForceLevel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Force {
    /// No force: fail with FILES_OPEN while anything is open.
    No,
    /// `--force`: drain, cancel, orphan.
    Yes,
    /// `--lazy`: detach now, finalize when the last handle closes.
    Lazy,
}

/// A request from the CLI.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Is the daemon alive?
    Ping,
    /// List the caller's connections.
    List {
        /// Answer in JSON.
        json: bool,
    },
    /// Make a connection and mount it.
    Use {
        /// Where to mount (absolute).
        mountpoint: PathBuf,
        /// The remote as the user wrote it.
        remote: String,
        /// Remote user.
        user: Option<String>,
        /// Password (never logged).
        password: Option<String>,
        /// Server port.
        port: Option<u16>,
        /// Remember across daemon restarts.
        persistent: bool,
        /// Attribute cache time in seconds (cifs `actimeo`); the daemon's default if `None`.
        #[serde(default)]
        actimeo: Option<f64>,
    },
    /// Delete one connection or all of the caller's.
    Delete {
        /// Mount point or remote name; `None` with `all`.
        target: Option<String>,
        /// Every connection of the caller.
        all: bool,
        /// Force level.
        force: Force,
        /// Only report what a forced delete would close.
        dry_run: bool,
        /// Bound on the whole delete, seconds.
        timeout_secs: Option<f64>,
        /// Close the transport at once instead of letting it linger.
        close_transport: bool,
    },
    /// Open handles.
    Files {
        /// One connection, or all of the caller's.
        target: Option<String>,
        /// Answer in JSON.
        json: bool,
    },
}

/// The daemon's answer: what to print and how to exit.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Response {
    /// Process exit code (0, 1 error, 2 FILES_OPEN, 3 CONNECTION_IN_USE, 4 CANCELLED,
    /// 5 LOCK_NOT_GRANTED).
    pub exit: i32,
    /// Text for stdout.
    pub stdout: String,
    /// Text for stderr (already prefixed `rdr: `).
    pub stderr: String,
    /// The NTSTATUS name behind a failure, if any.
    pub status: Option<String>,
}

impl Response {
    /// Success with some output.
    pub fn ok(stdout: impl Into<String>) -> Self {
        Response {
            exit: 0,
            stdout: stdout.into(),
            ..Default::default()
        }
    }
    /// A one-line error, exit 1 unless the status says otherwise.
    pub fn err(msg: impl AsRef<str>, status: Option<&str>) -> Self {
        let exit = status.map(exit_code).unwrap_or(1);
        let msg = msg.as_ref();
        // Every error names its NTSTATUS.
        let line = match status {
            Some(st) if !msg.contains("STATUS_") => format!("{msg} ({st})"),
            _ => msg.to_string(),
        };
        Response {
            exit,
            stderr: format!("rdr: {line}\n"),
            status: status.map(str::to_string),
            ..Default::default()
        }
    }
}

/// Exit code of an NTSTATUS name.
pub fn exit_code(status: &str) -> i32 {
    match status {
        "STATUS_SUCCESS" => 0,
        "STATUS_FILES_OPEN" => 2,
        "STATUS_CONNECTION_IN_USE" => 3,
        "STATUS_CANCELLED" => 4,
        "STATUS_LOCK_NOT_GRANTED" => 5,
        _ => 1,
    }
}

/// Where the socket and state live. `RDR_SOCKET` overrides the socket; the state directory is
/// `RDR_STATE_DIR`, else `state/` next to an overridden socket, else /var/lib/rdr.
pub fn socket_path() -> PathBuf {
    std::env::var_os("RDR_SOCKET")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/rdr/rdr.sock"))
}

/// The daemon's state directory (persistent connections, credentials, mount list, pid files).
pub fn state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RDR_STATE_DIR") {
        return PathBuf::from(d);
    }
    if std::env::var_os("RDR_SOCKET").is_some() {
        let s = socket_path();
        if let Some(p) = s.parent() {
            return p.join("state");
        }
    }
    PathBuf::from("/var/lib/rdr")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_the_documented_table() {
        assert_eq!(exit_code("STATUS_SUCCESS"), 0);
        assert_eq!(exit_code("STATUS_FILES_OPEN"), 2);
        assert_eq!(exit_code("STATUS_CONNECTION_IN_USE"), 3);
        assert_eq!(exit_code("STATUS_CANCELLED"), 4);
        assert_eq!(exit_code("STATUS_LOCK_NOT_GRANTED"), 5);
        assert_eq!(exit_code("STATUS_BAD_NETWORK_NAME"), 1);
    }

    #[test]
    fn requests_round_trip_as_json_lines() {
        let r = Request::Delete {
            target: Some("/mnt/x".into()),
            all: false,
            force: Force::Lazy,
            dry_run: false,
            timeout_secs: Some(2.0),
            close_transport: true,
        };
        let s = serde_json::to_string(&r).unwrap();
        assert!(!s.contains('\n'));
        let back: Request = serde_json::from_str(&s).unwrap();
        assert!(matches!(
            back,
            Request::Delete {
                force: Force::Lazy,
                ..
            }
        ));
    }
}
