//! Symbolic links on servers that have none to offer over SMB: Minshall+French symlinks
//! ("mfsymlinks"), the convention cifs.ko (`mfsymlinks`) and macOS's SMB client use. A link
//! is a regular file of exactly [`FILE_SIZE`] bytes:
//!
//! ```text
//! XSym\n<target length, 4 digits>\n<MD5 of the target, 32 hex digits>\n<target>\n<spaces>
//! ```
//!
//! Only a file of that size, with that header and a matching digest, is a link; any other
//! file, including one of the same size, stays a regular file.

use md5::{Digest, Md5};

/// Size of every link file.
pub const FILE_SIZE: usize = 1067;

/// Longest target a link file holds.
pub const MAX_TARGET: usize = 1024;

const LINK_OFFSET: usize = 5 + 5 + 33;

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// The link file for `target`; `None` when the target is empty or longer than
/// [`MAX_TARGET`] (the caller answers ENAMETOOLONG or ENOENT).
pub fn format(target: &[u8]) -> Option<Vec<u8>> {
    if target.is_empty() || target.len() > MAX_TARGET {
        return None;
    }
    let mut b = Vec::with_capacity(FILE_SIZE);
    b.extend_from_slice(format!("XSym\n{:04}\n", target.len()).as_bytes());
    b.extend_from_slice(hex(&Md5::digest(target)).as_bytes());
    b.push(b'\n');
    b.extend_from_slice(target);
    if b.len() < FILE_SIZE {
        b.push(b'\n');
    }
    b.resize(FILE_SIZE, b' ');
    Some(b)
}

/// The target of a link file; `None` when `data` is not one.
pub fn parse(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() != FILE_SIZE || !data.starts_with(b"XSym\n") || data[9] != b'\n' {
        return None;
    }
    let len: usize = std::str::from_utf8(&data[5..9]).ok()?.parse().ok()?;
    if len == 0 || len > MAX_TARGET || data[LINK_OFFSET - 1] != b'\n' {
        return None;
    }
    let target = &data[LINK_OFFSET..LINK_OFFSET + len];
    let digest = &data[10..42];
    if !digest.eq_ignore_ascii_case(hex(&Md5::digest(target)).as_bytes()) {
        return None;
    }
    Some(target.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_file_round_trips_and_matches_the_cifs_layout() {
        let f = format(b"../dir/target.txt").unwrap();
        assert_eq!(f.len(), FILE_SIZE);
        // Header, length, MD5("../dir/target.txt") as cifs writes it, target, newline, spaces.
        let head = format!(
            "XSym\n0017\n{}\n../dir/target.txt\n",
            hex(&Md5::digest(b"../dir/target.txt"))
        );
        assert!(f.starts_with(head.as_bytes()));
        assert!(f[head.len()..].iter().all(|&c| c == b' '));
        assert_eq!(parse(&f).unwrap(), b"../dir/target.txt");
        let longest = vec![b'a'; MAX_TARGET];
        assert_eq!(parse(&format(&longest).unwrap()).unwrap(), longest);
        assert!(format(&vec![b'a'; MAX_TARGET + 1]).is_none());
        assert!(format(b"").is_none());
    }

    #[test]
    fn other_files_are_not_links() {
        let f = format(b"t").unwrap();
        // A wrong digest, a wrong size, a wrong header: all plain files.
        let mut bad = f.clone();
        bad[LINK_OFFSET] = b'u';
        assert!(parse(&bad).is_none());
        assert!(parse(&f[..FILE_SIZE - 1]).is_none());
        let mut bad = f.clone();
        bad[0] = b'x';
        assert!(parse(&bad).is_none());
        let mut bad = f;
        bad[5..9].copy_from_slice(b"9999");
        assert!(parse(&bad).is_none());
        assert!(parse(&[b' '; FILE_SIZE]).is_none());
    }
}
