//! FILETIME (100-ns intervals since 1601-01-01 UTC) ↔ [`SystemTime`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds between 1601-01-01 and 1970-01-01.
const EPOCH_DIFF_SECS: u64 = 11_644_473_600;
const TICKS_PER_SEC: u64 = 10_000_000;

/// A Windows FILETIME as carried on the wire. 0 means "not set" (or, in SET_INFO, "do not
/// change"); `u64::MAX` (-1) in SET_INFO means "stop updating this time for the handle".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct FileTime(pub u64);

impl FileTime {
    /// "Do not change" in SET_INFO, "unknown" in responses.
    pub const ZERO: FileTime = FileTime(0);
    /// SET_INFO: stop automatic updates of this time for the handle.
    pub const NO_UPDATE: FileTime = FileTime(u64::MAX);

    /// The instant this FILETIME stands for, or `None` for 0 and values beyond `SystemTime`'s
    /// range.
    pub fn to_system_time(self) -> Option<SystemTime> {
        if self.0 == 0 {
            return None;
        }
        let secs = self.0 / TICKS_PER_SEC;
        let nanos = ((self.0 % TICKS_PER_SEC) * 100) as u32;
        if secs >= EPOCH_DIFF_SECS {
            UNIX_EPOCH.checked_add(Duration::new(secs - EPOCH_DIFF_SECS, nanos))
        } else {
            // Before 1970: step back from the epoch.
            let before =
                Duration::new(EPOCH_DIFF_SECS, 0).checked_sub(Duration::new(secs, nanos))?;
            UNIX_EPOCH.checked_sub(before)
        }
    }

    /// The FILETIME of `t`, truncated to 100 ns; saturates at 0 (before 1601) and at the
    /// largest representable value.
    pub fn from_system_time(t: SystemTime) -> FileTime {
        let base = Duration::from_secs(EPOCH_DIFF_SECS);
        let since_1601 = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => base.checked_add(d),
            Err(e) => base.checked_sub(e.duration()),
        };
        match since_1601 {
            None => FileTime(0),
            Some(d) => {
                let ticks = d.as_nanos() / 100;
                FileTime(u64::try_from(ticks).unwrap_or(u64::MAX - 1))
            }
        }
    }
}

impl From<SystemTime> for FileTime {
    fn from(t: SystemTime) -> Self {
        FileTime::from_system_time(t)
    }
}
