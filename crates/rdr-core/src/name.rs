//! Remote names: `\\server\share[\path]`, `//server/share[/path]`,
//! `smb://[user@]server[:port]/share[/path]`, parsed, validated and canonicalised.
//! (STUB: signature fixed; the core implementation fills it in.)

use crate::error::RxResult;

/// A parsed remote name. Server and share compare case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteName {
    /// Host name or address.
    pub server: String,
    /// Port, if given (`smb://host:445/...` or `//host:445/...`).
    pub port: Option<u16>,
    /// Share name.
    pub share: String,
    /// Path components below the share.
    pub path: Vec<String>,
    /// User, if given (`smb://user@host/...`).
    pub user: Option<String>,
}

impl RemoteName {
    /// Parse and validate a remote name.
    pub fn parse(_input: &str) -> RxResult<RemoteName> {
        Err(crate::error::RxError::InvalidName {
            input: _input.into(),
            problem: "not implemented".into(),
        })
    }
    /// `\\server\share` as the user sees it (server and share as written).
    pub fn unc(&self) -> String {
        format!("\\\\{}\\{}", self.server, self.share)
    }
}
