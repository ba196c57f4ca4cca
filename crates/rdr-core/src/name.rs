//! Remote names: `\\server\share[\path]`, `//server/share[/path]` (also `//host:port/share`),
//! `smb://[user@]server[:port]/share[/path]`, parsed, validated and canonicalised (§1.11).
//!
//! Server and share compare case-insensitively: [`RemoteName::key`] is the canonical,
//! lower-cased `\server[:port]\share` under which the name table files a share. Paths inside a
//! share are `\`-joined components ([`normalize_path`]); the FCB table compares them
//! case-insensitively through [`path_key`].

use crate::error::{RxError, RxResult};

/// Longest path RDBSS/SMB accept, in characters.
pub const MAX_PATH_CHARS: usize = 32_767;
/// Longest single component, in bytes (MS-FSCC: 255).
pub const MAX_COMPONENT_BYTES: usize = 255;

/// A parsed remote name. Server and share compare case-insensitively (see [`RemoteName::key`]).
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

fn invalid(input: &str, problem: impl Into<String>) -> RxError {
    RxError::InvalidName {
        input: input.to_string(),
        problem: problem.into(),
    }
}

/// Check one share or path component against MS-FSCC 2.1.5 (what may appear in a file name).
fn check_component(input: &str, what: &str, c: &str) -> RxResult<()> {
    if c.is_empty() {
        return Err(invalid(input, format!("empty {what}")));
    }
    if c == "." || c == ".." {
        return Err(invalid(
            input,
            format!("{what} {c:?}: '.' and '..' are not allowed"),
        ));
    }
    if c.len() > MAX_COMPONENT_BYTES {
        return Err(invalid(
            input,
            format!(
                "{what} is too long ({} bytes, at most {MAX_COMPONENT_BYTES})",
                c.len()
            ),
        ));
    }
    if let Some(bad) = c
        .chars()
        .find(|ch| (*ch as u32) < 0x20 || "\"*/:<>?\\|".contains(*ch))
    {
        let shown = if (bad as u32) < 0x20 {
            format!("control character {:#04x}", bad as u32)
        } else {
            format!("character {bad:?}")
        };
        return Err(invalid(
            input,
            format!("{what} {c:?} contains the forbidden {shown}"),
        ));
    }
    Ok(())
}

/// Check a host name (letters, digits, `-`, `.`, `_`, or a bracketed IPv6 literal).
fn check_server(input: &str, server: &str) -> RxResult<()> {
    if server.is_empty() {
        return Err(invalid(input, "empty server name"));
    }
    if server.len() > MAX_COMPONENT_BYTES {
        return Err(invalid(input, "server name is too long"));
    }
    let ipv6 = server.starts_with('[') && server.ends_with(']');
    let ok = |ch: char| ch.is_alphanumeric() || "-._".contains(ch) || (ipv6 && "[]:".contains(ch));
    if let Some(bad) = server.chars().find(|c| !ok(*c)) {
        return Err(invalid(
            input,
            format!("server name {server:?} contains the forbidden character {bad:?}"),
        ));
    }
    Ok(())
}

/// Split `host[:port]` (or `[v6]:port`).
fn split_port<'a>(input: &str, hostport: &'a str) -> RxResult<(&'a str, Option<u16>)> {
    let colon = if hostport.starts_with('[') {
        hostport
            .find(']')
            .and_then(|i| hostport[i..].find(':').map(|j| i + j))
    } else {
        hostport.rfind(':')
    };
    match colon {
        None => Ok((hostport, None)),
        Some(i) => {
            let port = &hostport[i + 1..];
            let port: u16 =
                port.parse().ok().filter(|p| *p != 0).ok_or_else(|| {
                    invalid(input, format!("port {port:?} is not a number 1-65535"))
                })?;
            Ok((&hostport[..i], Some(port)))
        }
    }
}

/// Decode `%XX` escapes of an `smb://` URL.
fn percent_decode(input: &str, s: &str) -> RxResult<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid(input, "bad %-escape in URL"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| invalid(input, "%-escapes do not form UTF-8"))
}

impl RemoteName {
    /// Parse and validate a remote name.
    pub fn parse(input: &str) -> RxResult<RemoteName> {
        if input.contains('\0') {
            return Err(invalid(input, "contains a NUL character"));
        }
        if input.chars().count() > MAX_PATH_CHARS {
            return Err(invalid(
                input,
                format!("name is too long (more than {MAX_PATH_CHARS} characters)"),
            ));
        }
        let (rest, user, url) = if let Some(r) = input
            .strip_prefix("smb://")
            .or_else(|| input.strip_prefix("SMB://"))
        {
            let (auth, rest) = match r.find('/') {
                Some(i) => (&r[..i], &r[i + 1..]),
                None => (r, ""),
            };
            let (user, host) = match auth.rfind('@') {
                Some(i) => (Some(percent_decode(input, &auth[..i])?), &auth[i + 1..]),
                None => (None, auth),
            };
            if user.as_deref() == Some("") {
                return Err(invalid(input, "empty user name before '@'"));
            }
            (format!("{host}/{rest}"), user, true)
        } else if let Some(r) = input
            .strip_prefix("\\\\")
            .or_else(|| input.strip_prefix("//"))
        {
            (r.to_string(), None, false)
        } else {
            return Err(invalid(
                input,
                "not a remote name: expected \\\\server\\share, //server/share or smb://server/share",
            ));
        };
        let rest = if url {
            percent_decode(input, &rest)?
        } else {
            rest
        };
        let mut parts = rest.split(['\\', '/']);
        let hostport = parts.next().unwrap_or("");
        let (server, port) = split_port(input, hostport)?;
        check_server(input, server)?;
        let share = parts.next().unwrap_or("");
        if share.is_empty() {
            return Err(invalid(input, "empty share name"));
        }
        check_component(input, "share name", share)?;
        let mut path = Vec::new();
        for c in parts.filter(|c| !c.is_empty()) {
            check_component(input, "path component", c)?;
            path.push(c.to_string());
        }
        Ok(RemoteName {
            server: server.to_string(),
            port,
            share: share.to_string(),
            path,
            user,
        })
    }

    /// `\\server\share` as the user sees it (server and share as written).
    pub fn unc(&self) -> String {
        format!("\\\\{}\\{}", self.server, self.share)
    }

    /// The canonical key of the server: lower-cased `\server[:port]` (the SrvCall's name).
    pub fn srv_call_key(&self) -> String {
        match self.port {
            Some(p) => format!("\\{}:{}", self.server.to_lowercase(), p),
            None => format!("\\{}", self.server.to_lowercase()),
        }
    }

    /// The canonical key of the share: lower-cased `\server[:port]\share` (the NetRoot's name).
    pub fn key(&self) -> String {
        format!("{}\\{}", self.srv_call_key(), self.share.to_lowercase())
    }

    /// The in-share path, `\`-joined (empty for the share root).
    pub fn path_string(&self) -> String {
        self.path.join("\\")
    }
}

/// Validate and normalise a path inside a share: `/` or `\` separators, empty components and a
/// leading separator ignored, result `\`-joined (empty for the share root).
pub fn normalize_path(input: &str) -> RxResult<String> {
    if input.contains('\0') {
        return Err(invalid(input, "contains a NUL character"));
    }
    if input.chars().count() > MAX_PATH_CHARS {
        return Err(invalid(
            input,
            format!("path is too long (more than {MAX_PATH_CHARS} characters)"),
        ));
    }
    let mut out = String::with_capacity(input.len());
    for c in input.split(['\\', '/']).filter(|c| !c.is_empty()) {
        check_component(input, "path component", c)?;
        if !out.is_empty() {
            out.push('\\');
        }
        out.push_str(c);
    }
    Ok(out)
}

/// Join a view's prefix and a path inside it (both normalised).
pub fn join_path(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (_, true) => prefix.to_string(),
        _ => format!("{prefix}\\{path}"),
    }
}

/// The case-insensitive key of a normalised in-share path (the FCB table compares these).
pub fn path_key(path: &str) -> String {
    path.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::NtStatus;

    fn problem(input: &str) -> (String, NtStatus) {
        let e = RemoteName::parse(input).unwrap_err();
        let st = e.nt_status();
        match e {
            RxError::InvalidName { problem, input: i } => {
                assert_eq!(i, input);
                (problem, st)
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn three_syntaxes() {
        let a = RemoteName::parse(r"\\Srv\Share\d1\f.txt").unwrap();
        assert_eq!(a.server, "Srv");
        assert_eq!(a.share, "Share");
        assert_eq!(a.path, vec!["d1", "f.txt"]);
        assert_eq!(a.port, None);
        let b = RemoteName::parse("//srv:4450/share/d1").unwrap();
        assert_eq!((b.server.as_str(), b.port), ("srv", Some(4450)));
        assert_eq!(b.path, vec!["d1"]);
        let c = RemoteName::parse("smb://alice@srv:445/share/a%20b").unwrap();
        assert_eq!(c.user.as_deref(), Some("alice"));
        assert_eq!(c.port, Some(445));
        assert_eq!(c.path, vec!["a b"]);
        let d = RemoteName::parse("smb://srv/share").unwrap();
        assert_eq!(d.user, None);
        assert!(d.path.is_empty());
    }

    #[test]
    fn server_and_share_compare_case_insensitively() {
        let a = RemoteName::parse(r"\\SRV\Share").unwrap();
        let b = RemoteName::parse("//srv/SHARE/").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key(), r"\srv\share");
        assert_eq!(a.unc(), r"\\SRV\Share");
        let c = RemoteName::parse("//srv:99/share").unwrap();
        assert_ne!(a.key(), c.key());
    }

    #[test]
    fn empty_server_or_share_is_rejected() {
        assert!(problem(r"\\\share").0.contains("empty server"));
        assert!(problem(r"\\srv").0.contains("empty share"));
        assert!(problem(r"\\srv\").0.contains("empty share"));
        assert!(problem("smb:///share").0.contains("empty server"));
        assert!(problem("srv/share").0.contains("not a remote name"));
    }

    #[test]
    fn dot_components_are_rejected() {
        assert!(problem(r"\\srv\share\a\..\b").0.contains("'..'"));
        assert!(problem(r"\\srv\.").0.contains("'.'"));
        assert!(normalize_path("a/./b").is_err());
    }

    #[test]
    fn forbidden_characters_are_rejected() {
        for bad in [
            "a*b", "a?b", "a<b", "a>b", "a|b", "a\"b", "a:b", "a\u{1}b", "a\u{1f}b",
        ] {
            let (p, st) = problem(&format!(r"\\srv\share\{bad}"));
            assert!(p.contains("forbidden"), "{bad}: {p}");
            assert_eq!(st, NtStatus::STATUS_OBJECT_NAME_INVALID);
        }
        assert!(problem("\\\\srv\\sh\0are").0.contains("NUL"));
        assert!(problem(r"\\s*rv\share").0.contains("forbidden"));
        assert!(problem("//srv:notaport/share").0.contains("port"));
    }

    #[test]
    fn long_names_are_name_too_long() {
        let long = "x".repeat(256);
        let (p, st) = problem(&format!(r"\\srv\share\{long}"));
        assert!(p.contains("too long"));
        assert_eq!(st, NtStatus::STATUS_NAME_TOO_LONG);
        assert!(RemoteName::parse(&format!(r"\\srv\share\{}", "x".repeat(255))).is_ok());
        let many = vec!["abcdefgh"; 4000].join("\\");
        let (p, st) = problem(&format!(r"\\srv\share\{many}"));
        assert!(p.contains("too long"));
        assert_eq!(st, NtStatus::STATUS_NAME_TOO_LONG);
        let e = normalize_path(&many).unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_NAME_TOO_LONG);
    }

    #[test]
    fn in_share_paths_are_normalised() {
        assert_eq!(normalize_path("/a//b/c/").unwrap(), r"a\b\c");
        assert_eq!(normalize_path(r"\a\b").unwrap(), r"a\b");
        assert_eq!(normalize_path("").unwrap(), "");
        assert_eq!(normalize_path("/").unwrap(), "");
        assert_eq!(join_path("d", r"a\b"), r"d\a\b");
        assert_eq!(join_path("", "a"), "a");
        assert_eq!(join_path("d", ""), "d");
        assert_eq!(path_key(r"A\B"), r"a\b");
        assert!(normalize_path("a/b*").is_err());
    }
}
