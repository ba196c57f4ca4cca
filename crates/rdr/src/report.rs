//! What the user reads: tables, the FILES_OPEN line, forced-delete and dry-run reports. Paths are
//! shown as local paths under the mount point.

use rdr_core::inventory::{FinalizeOutcome, HandleInfo, Inventory};
use rdr_core::minirdr::{AccessMask, ShareAccess};
use std::path::Path;

/// A share path (`a\b`) as a local path under the mount point.
pub fn local_path(mp: &Path, share_path: &str) -> String {
    let rel = share_path.replace('\\', "/");
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() {
        mp.display().to_string()
    } else {
        format!("{}/{}", mp.display(), rel)
    }
}

/// `read`, `write`, `read,write`, `delete`... from an access mask.
pub fn access_str(access: u32) -> String {
    let a = AccessMask::from_bits_retain(access);
    let mut v = Vec::new();
    if a.intersects(AccessMask::FILE_READ_DATA | AccessMask::GENERIC_READ | AccessMask::GENERIC_ALL)
    {
        v.push("read");
    }
    if a.intersects(
        AccessMask::FILE_WRITE_DATA
            | AccessMask::FILE_APPEND_DATA
            | AccessMask::GENERIC_WRITE
            | AccessMask::GENERIC_ALL,
    ) {
        v.push("write");
    }
    if a.intersects(AccessMask::DELETE) {
        v.push("delete");
    }
    if v.is_empty() {
        v.push("attributes");
    }
    v.join(",")
}

/// `rwd` letters of a share mode (`-` for exclusive).
pub fn share_str(share: u32) -> String {
    let s = ShareAccess::from_bits_retain(share);
    let mut out = String::new();
    if s.contains(ShareAccess::READ) {
        out.push('r');
    }
    if s.contains(ShareAccess::WRITE) {
        out.push('w');
    }
    if s.contains(ShareAccess::DELETE) {
        out.push('d');
    }
    if out.is_empty() {
        out.push('-');
    }
    out
}

fn locks_str(h: &HandleInfo) -> String {
    if h.locks.is_empty() {
        return "-".into();
    }
    h.locks
        .iter()
        .map(|l| {
            let end = if l.length == 0 {
                l.offset.to_string()
            } else if l.offset.checked_add(l.length).is_none() || l.length >= u64::MAX / 2 {
                "EOF".into()
            } else {
                (l.offset + l.length - 1).to_string()
            };
            format!(
                "{}-{}:{}",
                l.offset,
                end,
                if l.exclusive { "excl" } else { "shared" }
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn caching_str(h: &HandleInfo) -> String {
    let b = h.buffering;
    let mut s = String::new();
    if b.read_caching {
        s.push('R');
    }
    if b.write_caching {
        s.push('W');
    }
    if b.handle_caching {
        s.push('H');
    }
    if s.is_empty() {
        s.push_str("none");
    }
    if h.orphaned {
        s.push_str(" (orphaned)");
    }
    s
}

/// One row of `rdr files`.
pub fn handle_row(mp: &Path, h: &HandleInfo) -> Vec<String> {
    vec![
        local_path(mp, &h.path),
        access_str(h.access),
        share_str(h.share),
        locks_str(h),
        caching_str(h),
        h.dirty_bytes.to_string(),
    ]
}

/// The JSON of `rdr files --json` for one connection.
pub fn inventory_json(mp: &Path, remote: &str, inv: &Inventory) -> serde_json::Value {
    let handles: Vec<serde_json::Value> = inv
        .handles
        .iter()
        .map(|h| {
            serde_json::json!({
                "path": local_path(mp, &h.path),
                "share_path": h.path,
                "id": h.id,
                "is_dir": h.is_dir,
                "access": access_str(h.access),
                "access_mask": h.access,
                "share": share_str(h.share),
                "locks": h.locks,
                "buffering": h.buffering,
                "dirty_bytes": h.dirty_bytes,
                "orphaned": h.orphaned,
            })
        })
        .collect();
    serde_json::json!({
        "local": mp,
        "remote": remote,
        "uid": inv.logon_id,
        "handles": handles,
        "pending": inv.pending,
    })
}

/// A plain text table with a header.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let pad = w.get(i).copied().unwrap_or(0);
                s.push_str(&format!("{c:<pad$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(head.iter().map(|s| s.to_string()).collect());
    for r in rows {
        out.push_str(&line(r.clone()));
    }
    out
}

fn files_list(mp: &Path, hs: &[HandleInfo]) -> String {
    hs.iter()
        .map(|h| local_path(mp, &h.path))
        .collect::<Vec<_>>()
        .join(", ")
}

fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `/mnt/x: 1 file open: /mnt/x/report.txt (STATUS_FILES_OPEN)`.
pub fn files_open(mp: &Path, o: &FinalizeOutcome, status: &str) -> String {
    if o.open_handles.is_empty() {
        return format!("{}: the connection is in use ({status})", mp.display());
    }
    format!(
        "{}: {} open: {} ({status})",
        mp.display(),
        count(o.open_handles.len(), "file"),
        files_list(mp, &o.open_handles)
    )
}

/// The report of a successful delete (forced: what was closed and what was not written).
pub fn deleted(mp: &Path, o: &FinalizeOutcome, forced: bool) -> String {
    let mut s = format!("{} was deleted successfully.\n", mp.display());
    if forced {
        for h in &o.open_handles {
            s.push_str(&format!(
                "closed: {} ({})\n",
                local_path(mp, &h.path),
                access_str(h.access)
            ));
        }
        for r in &o.cancelled {
            s.push_str(&format!(
                "cancelled: {:?} on {}\n",
                r.kind,
                local_path(mp, &r.path)
            ));
        }
    }
    for u in &o.unwritten {
        s.push_str(&format!(
            "NOT WRITTEN: {} bytes of {}: {}\n",
            u.bytes,
            local_path(mp, &u.path),
            u.error
        ));
    }
    s
}

/// The connection was deleted here, but the server had not confirmed its teardown when the
/// deadline came (a hung server): what it may still hold.
pub fn unconfirmed(mp: &Path, o: &FinalizeOutcome, secs: f64, status: &str) -> String {
    let left: Vec<String> = o
        .unconfirmed
        .iter()
        .map(|u| match u.strip_prefix("close of ") {
            Some(p) => format!("close of {}", local_path(mp, p)),
            None => u.clone(),
        })
        .collect();
    format!(
        "{}: deleted here, but the server did not answer within {secs:.1}s ({status}); it may still hold what these were to release: {}",
        mp.display(),
        left.join(", ")
    )
}

/// The report of `--lazy`.
pub fn lazy(mp: &Path, o: &FinalizeOutcome) -> String {
    if o.open_handles.is_empty() {
        return format!("{} was detached and deleted.\n", mp.display());
    }
    format!(
        "{} was detached; {} still open: {}\nThe connection ends when the last one is closed.\n",
        mp.display(),
        count(o.open_handles.len(), "file"),
        files_list(mp, &o.open_handles)
    )
}

/// The report of `--timeout` running out.
pub fn cancelled(mp: &Path, o: &FinalizeOutcome, secs: f64, status: &str) -> String {
    let mut s = format!(
        "{}: the delete did not finish within {secs:.1}s and was cancelled ({status}); the connection is unchanged",
        mp.display()
    );
    if !o.open_handles.is_empty() {
        s.push_str(&format!(
            "; {} open: {}",
            count(o.open_handles.len(), "file"),
            files_list(mp, &o.open_handles)
        ));
    }
    for u in &o.unwritten {
        s.push_str(&format!(
            "; not written: {} bytes of {}",
            u.bytes,
            local_path(mp, &u.path)
        ));
    }
    s
}

/// `--dry-run`: what a forced delete would close.
pub fn dry_run(mp: &Path, inv: &Inventory) -> String {
    let mut s = String::new();
    if inv.handles.is_empty() && inv.pending.is_empty() {
        s.push_str(&format!(
            "{}: nothing is open; a delete would succeed without force.\n",
            mp.display()
        ));
        return s;
    }
    s.push_str(&format!(
        "{}: a forced delete would close {} and cancel {}:\n",
        mp.display(),
        count(inv.handles.len(), "file"),
        count(inv.pending.len(), "request")
    ));
    for h in &inv.handles {
        s.push_str(&format!(
            "  open {}  access={} share={} locks={} dirty={} bytes\n",
            local_path(mp, &h.path),
            access_str(h.access),
            share_str(h.share),
            locks_str(h),
            h.dirty_bytes
        ));
    }
    for r in &inv.pending {
        s.push_str(&format!(
            "  pending {:?} {} ({} ms)\n",
            r.kind,
            local_path(mp, &r.path),
            r.age_ms
        ));
    }
    s.push_str("Nothing was changed (dry run).\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdr_core::NtStatus;
    use rdr_core::minirdr::BufferingState;

    fn h(path: &str) -> HandleInfo {
        HandleInfo {
            id: 1,
            path: path.into(),
            is_dir: false,
            access: AccessMask::FILE_READ_DATA.bits(),
            share: 7,
            locks: vec![],
            dirty_bytes: 0,
            buffering: BufferingState::default(),
            orphaned: false,
        }
    }

    #[test]
    fn files_open_line_matches_net_use() {
        let o = FinalizeOutcome {
            status: NtStatus::STATUS_FILES_OPEN,
            open_handles: vec![h("report.txt")],
            cancelled: vec![],
            unwritten: vec![],
            view_removed: false,
            unconfirmed: vec![],
        };
        assert_eq!(
            files_open(Path::new("/mnt/x"), &o, "STATUS_FILES_OPEN"),
            "/mnt/x: 1 file open: /mnt/x/report.txt (STATUS_FILES_OPEN)"
        );
    }

    #[test]
    fn forced_lazy_and_cancelled_reports_name_every_file() {
        let mp = Path::new("/mnt/x");
        let mut o = FinalizeOutcome {
            status: NtStatus::STATUS_SUCCESS,
            open_handles: vec![h("a.txt"), h("d\\b.txt")],
            cancelled: vec![],
            unwritten: vec![rdr_core::inventory::Unwritten {
                path: "a.txt".into(),
                bytes: 4096,
                error: "server gone".into(),
            }],
            view_removed: true,
            unconfirmed: vec!["close of d\\b.txt".into(), "release of the share".into()],
        };
        let u = unconfirmed(mp, &o, 3.0, "STATUS_CANCELLED");
        assert!(
            u.ends_with("may still hold what these were to release: close of /mnt/x/d/b.txt, release of the share"),
            "{u}"
        );
        let d = deleted(mp, &o, true);
        assert!(d.contains("closed: /mnt/x/a.txt (read)"), "{d}");
        assert!(d.contains("closed: /mnt/x/d/b.txt (read)"), "{d}");
        assert!(
            d.contains("NOT WRITTEN: 4096 bytes of /mnt/x/a.txt: server gone"),
            "{d}"
        );
        let l = lazy(mp, &o);
        assert!(
            l.contains("2 files still open: /mnt/x/a.txt, /mnt/x/d/b.txt"),
            "{l}"
        );
        o.status = NtStatus::STATUS_CANCELLED;
        let c = cancelled(mp, &o, 2.0, "STATUS_CANCELLED");
        assert!(
            c.contains("within 2.0s") && c.contains("(STATUS_CANCELLED)"),
            "{c}"
        );
        assert!(c.contains("not written: 4096 bytes of /mnt/x/a.txt"), "{c}");
        assert!(!c.contains('\n'), "one line: {c}");
    }

    #[test]
    fn paths_and_modes() {
        assert_eq!(local_path(Path::new("/m"), "a\\b"), "/m/a/b");
        assert_eq!(local_path(Path::new("/m"), ""), "/m");
        assert_eq!(access_str(0x3), "read,write");
        assert_eq!(share_str(0), "-");
        let t = table(&["A", "B"], &[vec!["xx".into(), "y".into()]]);
        assert_eq!(t, "A   B\nxx  y\n");
    }
}
