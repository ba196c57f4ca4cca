//! Share-relative paths: `\`-separated components as the core sends them, checked and turned
//! into the `/`-separated form the kernel resolves (always beneath the share root).

use rdr_core::{NtStatus, RxError, RxResult};
use std::ffi::CString;

/// Longest path the kernel takes.
const PATH_MAX: usize = 4095;
/// Longest single name.
const NAME_MAX: usize = 255;

/// A path inside a share, lexically normalised (`.` dropped, `a\..` folded). Leading `..`
/// components are kept so that the kernel (openat2 with `RESOLVE_BENEATH`) refuses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RelPath {
    comps: Vec<String>,
}

impl RelPath {
    /// The share root.
    pub(crate) fn root() -> Self {
        RelPath { comps: Vec::new() }
    }

    /// Parse a path as the core passes it (`a\b\c`, empty for the root).
    pub(crate) fn parse(input: &str) -> RxResult<Self> {
        let bad = |problem: &str| RxError::InvalidName {
            input: input.to_string(),
            problem: problem.to_string(),
        };
        if input.contains('\0') {
            return Err(bad("contains a NUL byte"));
        }
        if input.len() > PATH_MAX {
            return Err(bad("path too long"));
        }
        let trimmed = input.trim_start_matches('\\').trim_end_matches('\\');
        let mut comps: Vec<String> = Vec::new();
        if trimmed.is_empty() {
            return Ok(RelPath { comps });
        }
        for c in trimmed.split('\\') {
            if c.is_empty() {
                return Err(bad("empty path component"));
            }
            if c.contains('/') {
                return Err(bad("contains '/'"));
            }
            if c.len() > NAME_MAX {
                return Err(bad("component too long"));
            }
            match c {
                "." => {}
                ".." => match comps.last() {
                    Some(last) if last != ".." => {
                        comps.pop();
                    }
                    _ => comps.push("..".to_string()),
                },
                _ => comps.push(c.to_string()),
            }
        }
        Ok(RelPath { comps })
    }

    /// True for the share root.
    pub(crate) fn is_root(&self) -> bool {
        self.comps.is_empty()
    }

    /// The `\`-separated form, for messages and the file table.
    pub(crate) fn display(&self) -> String {
        self.comps.join("\\")
    }

    /// The `/`-separated form for the kernel (`.` for the root).
    pub(crate) fn kernel(&self) -> CString {
        let s = if self.comps.is_empty() {
            ".".to_string()
        } else {
            self.comps.join("/")
        };
        // Components were checked for NUL in parse.
        CString::new(s).unwrap_or_else(|_| c".".to_owned())
    }

    /// The parent directory (the root's parent is `None`).
    pub(crate) fn parent(&self) -> Option<RelPath> {
        if self.comps.is_empty() {
            return None;
        }
        Some(RelPath {
            comps: self.comps[..self.comps.len() - 1].to_vec(),
        })
    }

    /// The last component, for the `*at` calls that act on a name in a directory. Refuses the
    /// root and `..` (which would name something outside the share).
    pub(crate) fn leaf(&self, what: &str) -> RxResult<CString> {
        match self.comps.last() {
            None => Err(RxError::status(
                NtStatus::STATUS_ACCESS_DENIED,
                format!("{what}: the share root itself cannot be created, renamed or deleted"),
            )),
            Some(l) if l == ".." => Err(RxError::status(
                NtStatus::STATUS_ACCESS_DENIED,
                format!("{what}: path escapes the share"),
            )),
            Some(l) => CString::new(l.as_str()).map_err(|_| RxError::InvalidName {
                input: l.clone(),
                problem: "contains a NUL byte".into(),
            }),
        }
    }

    /// This path with one more component.
    pub(crate) fn join(&self, name: &str) -> RelPath {
        let mut comps = self.comps.clone();
        comps.push(name.to_string());
        RelPath { comps }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_normalises_and_refuses_bad_names() {
        assert!(RelPath::parse("").unwrap().is_root());
        assert!(RelPath::parse("\\").unwrap().is_root());
        assert_eq!(RelPath::parse("a\\.\\b\\").unwrap().display(), "a\\b");
        assert_eq!(RelPath::parse("a\\..\\b").unwrap().display(), "b");
        assert_eq!(
            RelPath::parse("..\\x").unwrap().kernel().to_str().unwrap(),
            "../x"
        );
        assert_eq!(RelPath::parse("a\\..\\..\\x").unwrap().display(), "..\\x");
        assert!(RelPath::parse("a\0b").is_err());
        assert!(RelPath::parse("a/b").is_err());
        assert!(RelPath::parse("a\\\\b").is_err());
        let long = "x".repeat(300);
        assert_eq!(
            RelPath::parse(&long).unwrap_err().nt_status(),
            NtStatus::STATUS_NAME_TOO_LONG
        );
        assert!(RelPath::parse("..").unwrap().leaf("x").is_err());
        assert!(RelPath::root().leaf("x").is_err());
    }
}
