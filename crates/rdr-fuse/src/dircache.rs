//! What the daemon remembers about directories for the attribute TTL (cifs `actimeo`), so the
//! kernel's questions after every create or unlink need no round trip:
//!
//! - a directory's attributes, as the server last reported them (lookup, getattr, readdirplus,
//!   mkdir): the kernel drops a directory's attributes after each change inside it and asks
//!   again for its permission check (`default_permissions`);
//! - a directory's complete list of names, when this mount has seen all of it (a READDIR read to
//!   the end, or a directory it just created) and kept up to date with its own creates, mkdirs,
//!   unlinks, rmdirs and renames: a LOOKUP of a name not in it is answered "no such file".
//!
//! Both expire `ttl` after the server told us (never refreshed by our own changes), so a change
//! made by another client shows within the TTL, as with cifs; a TTL of zero keeps nothing. A
//! stale "no such file" before a create costs nothing: the create's disposition is resolved on
//! the server (`O_EXCL` → EEXIST, otherwise open-if). Files' attributes are not kept here (our
//! own writes change their size). Keys and names compare case-insensitively, as SMB servers
//! do; that only ever makes a negative answer rarer. Names a listing cannot rule out (8.3 short
//! names, streams, anything in a directory holding names outside ASCII, whose case folding is
//! the server's) are always asked for. Other views of the same share are other clients here:
//! their changes show within the TTL.

use rdr_core::minirdr::FileInfo;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Directory knowledge, by share path.
pub struct DirCache {
    ttl: Duration,
    dirs: Mutex<HashMap<String, Dir>>,
    /// Source of epochs: unique across entries, so a token read from a dropped entry never
    /// matches a new one.
    stamps: AtomicU64,
    /// Entry count above which expired entries are dropped.
    prune_at: std::sync::atomic::AtomicUsize,
}

/// Fewest entries before expired ones are dropped.
const PRUNE_MIN: usize = 256;

#[derive(Default)]
struct Dir {
    /// Attributes and when the server reported them.
    attr: Option<(FileInfo, Instant)>,
    /// Every name (folded) and when the server listed them.
    names: Option<(HashSet<String>, Instant)>,
    /// A name outside ASCII was listed: the server's case folding may differ from ours, so
    /// no negative answers for this directory.
    unusual: bool,
    /// Bumped by each change this mount makes inside the directory: a listing read while one
    /// happened may lack it and is not kept.
    epoch: u64,
    /// A reader is reading the listing again.
    relisting: bool,
}

/// How to fold a name or path for comparison.
fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// Names whose absence a listing cannot prove: outside ASCII (the server's case folding may
/// equate names ours does not), a `~` (a server may resolve an 8.3 short name that no listing
/// shows) or a `:` (a stream of a file).
fn unusual(name: &str) -> bool {
    !name.is_ascii() || name.contains(['~', ':'])
}

/// The parent path and the name of a share path (`a\b\c` → (`a\b`, `c`)).
pub fn split(path: &str) -> (&str, &str) {
    match path.rfind('\\') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

impl DirCache {
    /// A cache whose entries live `ttl` (zero: nothing is kept).
    pub fn new(ttl: Duration) -> Self {
        DirCache {
            ttl,
            dirs: Mutex::new(HashMap::new()),
            stamps: AtomicU64::new(1),
            prune_at: std::sync::atomic::AtomicUsize::new(PRUNE_MIN),
        }
    }

    fn stamp(&self) -> u64 {
        self.stamps.fetch_add(1, Ordering::Relaxed)
    }

    /// The entry of `key`, made if missing; when the table grew past its mark, entries that
    /// hold nothing current are dropped first (the table stays near the live set).
    fn entry<'a>(&self, dirs: &'a mut HashMap<String, Dir>, key: String) -> &'a mut Dir {
        if dirs.len() >= self.prune_at.load(Ordering::Relaxed) && !dirs.contains_key(&key) {
            let ttl = self.ttl;
            let live = |at: &Instant| at.elapsed() < ttl;
            dirs.retain(|_, d| {
                d.relisting
                    || d.attr.as_ref().is_some_and(|(_, at)| live(at))
                    || d.names.as_ref().is_some_and(|(_, at)| live(at))
            });
            self.prune_at
                .store((dirs.len() * 2).max(PRUNE_MIN), Ordering::Relaxed);
        }
        dirs.entry(key).or_insert_with(|| Dir {
            epoch: self.stamps.fetch_add(1, Ordering::Relaxed),
            ..Dir::default()
        })
    }

    fn fresh(&self, at: Instant) -> Option<Duration> {
        let age = at.elapsed();
        (age < self.ttl).then(|| self.ttl - age)
    }

    /// The attributes of directory `path` if the server reported them less than the TTL ago,
    /// with how long they stay valid.
    pub fn attr(&self, path: &str) -> Option<(FileInfo, Duration)> {
        let dirs = self.dirs.lock();
        let (info, at) = dirs.get(&fold(path))?.attr.as_ref()?;
        self.fresh(*at).map(|left| (info.clone(), left))
    }

    /// The server reported `info` for `path` at `at` (only directories are kept).
    pub fn set_attr(&self, path: &str, info: &FileInfo, at: Instant) {
        if self.ttl.is_zero() || !info.is_dir {
            return;
        }
        let mut dirs = self.dirs.lock();
        let d = self.entry(&mut dirs, fold(path));
        if d.attr.as_ref().is_none_or(|(_, old)| *old <= at) {
            d.attr = Some((info.clone(), at));
        }
    }

    /// Forget the attributes of `path` (changed by this mount).
    pub fn drop_attr(&self, path: &str) {
        if let Some(d) = self.dirs.lock().get_mut(&fold(path)) {
            d.attr = None;
        }
    }

    /// A token to pass to [`DirCache::set_listing`]: read it before asking the server.
    pub fn epoch(&self, dir: &str) -> u64 {
        if self.ttl.is_zero() {
            return 0;
        }
        let mut dirs = self.dirs.lock();
        self.entry(&mut dirs, fold(dir)).epoch
    }

    /// The server listed every name of `dir` at `at`; kept unless this mount changed the
    /// directory since `epoch` was read.
    pub fn set_listing<'a>(
        &self,
        dir: &str,
        names: impl IntoIterator<Item = &'a str>,
        at: Instant,
        epoch: u64,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        let mut dirs = self.dirs.lock();
        let d = self.entry(&mut dirs, fold(dir));
        if d.epoch != epoch {
            return;
        }
        let names: HashSet<String> = names.into_iter().map(fold).collect();
        d.unusual = names.iter().any(|n| unusual(n));
        d.names = Some((names, at));
    }

    /// True when `name` is known not to exist in `dir`: a listing younger than the TTL lacks it.
    pub fn absent(&self, dir: &str, name: &str) -> bool {
        if unusual(name) {
            return false;
        }
        let dirs = self.dirs.lock();
        let Some(d) = dirs.get(&fold(dir)) else {
            return false;
        };
        let Some((names, at)) = d.names.as_ref() else {
            return false;
        };
        !d.unusual && self.fresh(*at).is_some() && !names.contains(&fold(name))
    }

    /// Number of names of an expired listing of `dir` that lacks `name` (reading the listing
    /// again may answer the lookup and the next ones).
    pub fn expired_without(&self, dir: &str, name: &str) -> Option<usize> {
        let dirs = self.dirs.lock();
        let (names, at) = dirs.get(&fold(dir))?.names.as_ref()?;
        (self.fresh(*at).is_none() && !names.contains(&fold(name))).then_some(names.len())
    }

    /// `name` now exists in `dir` (created or renamed there by this mount, or seen by a lookup).
    pub fn added(&self, dir: &str, name: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let mut dirs = self.dirs.lock();
        let d = self.entry(&mut dirs, fold(dir));
        d.epoch = self.stamp();
        d.unusual |= unusual(name);
        if let Some((names, _)) = d.names.as_mut() {
            names.insert(fold(name));
        }
    }

    /// The server said `name` exists in `dir` (a lookup): it joins a listing being kept. No
    /// change of ours, so a listing being read stays acceptable.
    pub fn seen(&self, dir: &str, name: &str) {
        let mut dirs = self.dirs.lock();
        if let Some(d) = dirs.get_mut(&fold(dir)) {
            d.unusual |= unusual(name);
            if let Some((names, _)) = d.names.as_mut() {
                names.insert(fold(name));
            }
        }
    }

    /// Claim the right to read `dir`'s listing again; false when another reader has it.
    pub fn begin_relist(&self, dir: &str) -> bool {
        let mut dirs = self.dirs.lock();
        let d = self.entry(&mut dirs, fold(dir));
        !std::mem::replace(&mut d.relisting, true)
    }

    /// The reading claimed by [`DirCache::begin_relist`] ended.
    pub fn end_relist(&self, dir: &str) {
        if let Some(d) = self.dirs.lock().get_mut(&fold(dir)) {
            d.relisting = false;
        }
    }

    /// Another mount changed a name in `dir`: this mount's listing of it is no longer complete
    /// (and one being read now is not kept).
    pub fn forget_listing(&self, dir: &str) {
        if self.ttl.is_zero() {
            return;
        }
        if let Some(d) = self.dirs.lock().get_mut(&fold(dir)) {
            d.names = None;
            d.epoch = self.stamp();
        }
    }

    /// `name` no longer exists in `dir`.
    pub fn removed(&self, dir: &str, name: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let mut dirs = self.dirs.lock();
        let d = self.entry(&mut dirs, fold(dir));
        d.epoch = self.stamp();
        if let Some((names, _)) = d.names.as_mut() {
            names.remove(&fold(name));
        }
    }

    /// `path` was removed or renamed: forget it and everything below it. Their epochs move on,
    /// so a listing being read meanwhile is not kept either.
    pub fn forget_tree(&self, path: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let key = fold(path);
        let prefix = format!("{key}\\");
        let mut dirs = self.dirs.lock();
        self.entry(&mut dirs, key.clone());
        for (k, d) in dirs.iter_mut() {
            if *k == key || k.starts_with(&prefix) {
                d.attr = None;
                d.names = None;
                d.epoch = self.stamp();
            }
        }
    }

    /// A directory this mount just created at `at`: it is empty.
    pub fn created_dir(&self, path: &str, info: &FileInfo, at: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        self.forget_tree(path);
        let epoch = self.epoch(path);
        self.set_attr(path, info, at);
        self.set_listing(path, std::iter::empty(), at, epoch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn dir_info() -> FileInfo {
        FileInfo {
            is_dir: true,
            size: 0,
            allocation_size: 0,
            created: SystemTime::UNIX_EPOCH,
            accessed: SystemTime::UNIX_EPOCH,
            modified: SystemTime::UNIX_EPOCH,
            changed: SystemTime::UNIX_EPOCH,
            attributes: 0x10,
            file_id: 7,
            nlink: 1,
            mode: None,
        }
    }

    #[test]
    fn listing_answers_absent_names_until_it_expires() {
        let c = DirCache::new(Duration::from_secs(60));
        assert!(!c.absent("d", "x"), "nothing known yet");
        let e = c.epoch("d");
        c.set_listing("d", ["A", "b"], Instant::now(), e);
        assert!(c.absent("d", "x"));
        assert!(!c.absent("d", "a"), "names compare case-insensitively");
        assert!(!c.absent("d", "PROGRA~1"), "a short name may resolve");
        assert!(!c.absent("d", "x:s"), "a stream");
        assert!(!c.absent("d", "é"), "not ASCII");
        assert!(!c.absent("D", "B"));
        c.added("d", "x");
        assert!(!c.absent("d", "x"));
        c.removed("d", "A");
        assert!(c.absent("d", "a"));
        c.forget_tree("d");
        assert!(!c.absent("d", "zz"));

        let old = Instant::now() - Duration::from_secs(61);
        let e = c.epoch("d");
        c.set_listing("d", ["a"], old, e);
        assert!(!c.absent("d", "x"), "an expired listing says nothing");
        assert_eq!(c.expired_without("d", "x"), Some(1));
        assert_eq!(c.expired_without("d", "a"), None);
    }

    #[test]
    fn a_directory_with_a_name_outside_ascii_gives_no_negative_answers() {
        let c = DirCache::new(Duration::from_secs(60));
        let e = c.epoch("d");
        c.set_listing("d", ["ſ"], Instant::now(), e); // Samba upper-cases it to "S"
        assert!(!c.absent("d", "s"));
        assert!(!c.absent("d", "x"));
        let e = c.epoch("e");
        c.set_listing("e", ["a"], Instant::now(), e);
        assert!(c.absent("e", "x"));
        c.added("e", "Ω");
        assert!(!c.absent("e", "x"));
    }

    #[test]
    fn a_listing_read_during_a_change_is_not_kept() {
        let c = DirCache::new(Duration::from_secs(60));
        c.created_dir("d", &dir_info(), Instant::now());
        let e = c.epoch("d");
        c.added("d", "new"); // our create finished while the listing was being read
        c.set_listing("d", ["old"], Instant::now(), e);
        assert!(!c.absent("d", "new"));
        assert!(
            c.absent("d", "other"),
            "the mkdir's empty listing was kept up to date"
        );
    }

    #[test]
    fn expired_entries_are_dropped_and_old_tokens_never_match() {
        let c = DirCache::new(Duration::from_secs(60));
        let old = Instant::now() - Duration::from_secs(61);
        let e = c.epoch("d");
        c.added("d", "x");
        let stale = c.epoch("d");
        for i in 0..PRUNE_MIN {
            c.set_attr(&format!("o{i}"), &dir_info(), old);
        }
        c.set_attr("fresh", &dir_info(), Instant::now());
        assert!(c.dirs.lock().len() < PRUNE_MIN, "expired entries went");
        assert!(c.attr("fresh").is_some());
        c.set_listing("d", ["a"], Instant::now(), stale);
        c.set_listing("d", ["a"], Instant::now(), e);
        assert!(!c.absent("d", "x"), "a listing with an old token was kept");
        let e = c.epoch("d");
        c.set_listing("d", ["a"], Instant::now(), e);
        assert!(c.absent("d", "x"));
    }

    #[test]
    fn directory_attributes_expire_and_zero_ttl_keeps_nothing() {
        let c = DirCache::new(Duration::from_secs(60));
        c.set_attr("d", &dir_info(), Instant::now());
        assert!(c.attr("D").is_some());
        c.drop_attr("d");
        assert!(c.attr("d").is_none());
        c.set_attr("d", &dir_info(), Instant::now() - Duration::from_secs(61));
        assert!(c.attr("d").is_none());
        let mut f = dir_info();
        f.is_dir = false;
        c.set_attr("f", &f, Instant::now());
        assert!(c.attr("f").is_none(), "files are not kept");

        let z = DirCache::new(Duration::ZERO);
        z.created_dir("d", &dir_info(), Instant::now());
        assert!(z.attr("d").is_none());
        assert!(!z.absent("d", "x"));
        assert_eq!(split("a\\b\\c"), ("a\\b", "c"));
        assert_eq!(split("c"), ("", "c"));
    }
}
