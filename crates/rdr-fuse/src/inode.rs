//! The inode table: FUSE inode numbers <-> paths inside the share.
//!
//! Inode numbers are never reused within a mount (a counter), so the generation stays constant;
//! the kernel's lookup counts decide when an entry may be dropped (FORGET). Renames move the
//! entry and everything below it; unlink removes the name so a new file of the same name gets a
//! new inode while open handles of the old one keep working through their Fobx.

use std::collections::HashMap;

/// The root inode number.
pub const ROOT: u64 = 1;

struct Node {
    path: String,
    lookups: u64,
}

/// Maps inode numbers to share paths (`\`-separated, empty for the root) and back.
pub struct InodeTable {
    by_ino: HashMap<u64, Node>,
    by_path: HashMap<String, u64>,
    next: u64,
}

impl Default for InodeTable {
    fn default() -> Self {
        Self::new()
    }
}

impl InodeTable {
    /// A table holding only the root.
    pub fn new() -> Self {
        let mut by_ino = HashMap::new();
        by_ino.insert(
            ROOT,
            Node {
                path: String::new(),
                lookups: 1,
            },
        );
        let mut by_path = HashMap::new();
        by_path.insert(String::new(), ROOT);
        InodeTable {
            by_ino,
            by_path,
            next: ROOT + 1,
        }
    }

    /// The path of an inode.
    pub fn path(&self, ino: u64) -> Option<String> {
        self.by_ino.get(&ino).map(|n| n.path.clone())
    }

    /// The inode of `path`, taking one kernel lookup reference (allocating it if new).
    pub fn lookup(&mut self, path: &str) -> u64 {
        if let Some(&ino) = self.by_path.get(path) {
            if let Some(n) = self.by_ino.get_mut(&ino) {
                n.lookups += 1;
            }
            return ino;
        }
        let ino = self.next;
        self.next += 1;
        self.by_ino.insert(
            ino,
            Node {
                path: path.to_string(),
                lookups: 1,
            },
        );
        self.by_path.insert(path.to_string(), ino);
        ino
    }

    /// The inode of `path` if known, without taking a reference (for plain readdir).
    pub fn peek(&self, path: &str) -> Option<u64> {
        self.by_path.get(path).copied()
    }

    /// Drop `n` kernel references; the entry goes when none are left.
    pub fn forget(&mut self, ino: u64, n: u64) {
        if ino == ROOT {
            return;
        }
        let gone = match self.by_ino.get_mut(&ino) {
            Some(node) => {
                node.lookups = node.lookups.saturating_sub(n);
                node.lookups == 0
            }
            None => false,
        };
        if gone
            && let Some(node) = self.by_ino.remove(&ino)
            && self.by_path.get(&node.path) == Some(&ino)
        {
            self.by_path.remove(&node.path);
        }
    }

    /// The name was removed on the server: forget the path (open handles keep their Fobx).
    pub fn unlinked(&mut self, path: &str) {
        self.by_path.remove(path);
    }

    /// `from` was renamed to `to`: move it and everything below it.
    pub fn renamed(&mut self, from: &str, to: &str) {
        // A replaced target loses its name.
        self.by_path.remove(to);
        let prefix = format!("{from}\\");
        let moved: Vec<(String, u64)> = self
            .by_path
            .iter()
            .filter(|(p, _)| p.as_str() == from || p.starts_with(&prefix))
            .map(|(p, i)| (p.clone(), *i))
            .collect();
        for (old, ino) in moved {
            self.by_path.remove(&old);
            let new = format!("{to}{}", &old[from.len()..]);
            if let Some(n) = self.by_ino.get_mut(&ino) {
                n.path = new.clone();
            }
            self.by_path.insert(new, ino);
        }
    }

    /// Every inode number the kernel may have cached.
    pub fn inodes(&self) -> Vec<u64> {
        self.by_ino.keys().copied().collect()
    }

    /// The inodes of `paths` (share paths as the core names them; `/` or `\\` separated,
    /// compared without case, as the server does).
    pub fn inodes_of(&self, paths: &[String]) -> Vec<u64> {
        let norm = |p: &str| {
            p.trim_matches(['/', '\\'])
                .replace('/', "\\")
                .to_lowercase()
        };
        let want: Vec<String> = paths.iter().map(|p| norm(p)).collect();
        self.by_path
            .iter()
            .filter(|(p, _)| want.contains(&norm(p)))
            .map(|(_, &ino)| ino)
            .collect()
    }

    /// Number of inodes known (root included).
    pub fn len(&self) -> usize {
        self.by_ino.len()
    }

    /// Never true: the root is always there.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// `parent\name` in share-path form.
pub fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}\\{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_rename_forget() {
        let mut t = InodeTable::new();
        let d = t.lookup("d");
        let f = t.lookup("d\\f");
        assert_ne!(d, f);
        assert_eq!(t.lookup("d"), d);
        t.renamed("d", "e");
        assert_eq!(t.path(d).unwrap(), "e");
        assert_eq!(t.path(f).unwrap(), "e\\f");
        assert_eq!(t.peek("d\\f"), None);
        t.forget(d, 2);
        assert_eq!(t.path(d), None);
        t.unlinked("e\\f");
        let f2 = t.lookup("e\\f");
        assert_ne!(f, f2, "a recreated name gets a new inode");
        assert_eq!(join("", "a"), "a");
        assert_eq!(join("a", "b"), "a\\b");
    }
}
