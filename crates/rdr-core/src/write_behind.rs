//! Write-behind (decision 8): when the server grants write caching, a write is answered at once
//! and sent to the server in the background, so one writer keeps several WRITEs in flight. At
//! most `RdbssConfig::write_behind_limit` bytes per SrvOpen are unacknowledged ("dirty") at any
//! time; a writer beyond that waits. Flush, close, a read or size query of the same file, a
//! break of the write-caching state and a forced close all wait for the dirty data to reach the
//! server. A background write that fails keeps its data *held*: the next write, flush or close
//! sends it again and reports the error if it fails again. Nothing is lost silently: what cannot
//! be sent is reported (`FinalizeOutcome::unwritten`, or close's error).

use bytes::Bytes;

/// One dirty write: in flight to the server, or held after a failure.
#[derive(Debug, Clone)]
pub(crate) struct DirtyChunk {
    pub(crate) id: u64,
    pub(crate) fobx: u64,
    pub(crate) offset: u64,
    pub(crate) data: Bytes,
    pub(crate) in_flight: bool,
}

impl DirtyChunk {
    fn overlaps(&self, offset: u64, len: u64) -> bool {
        let end = self.offset.saturating_add(self.data.len() as u64);
        self.offset < offset.saturating_add(len) && offset < end
    }
}

/// The dirty writes of one SrvOpen, in the order they were made.
#[derive(Debug, Default)]
pub(crate) struct WriteBehind {
    pub(crate) chunks: Vec<DirtyChunk>,
    /// Dirty bytes (in flight and held).
    pub(crate) bytes: u64,
    next_id: u64,
}

impl WriteBehind {
    /// Record a write about to be sent in the background; returns its id.
    pub(crate) fn push_in_flight(&mut self, fobx: u64, offset: u64, data: Bytes) -> u64 {
        self.next_id += 1;
        self.bytes += data.len() as u64;
        self.chunks.push(DirtyChunk {
            id: self.next_id,
            fobx,
            offset,
            data,
            in_flight: true,
        });
        self.next_id
    }

    /// A background write reached the server.
    pub(crate) fn complete(&mut self, id: u64) {
        if let Some(i) = self.chunks.iter().position(|c| c.id == id) {
            let c = self.chunks.remove(i);
            self.bytes = self.bytes.saturating_sub(c.data.len() as u64);
        }
    }

    /// A background write failed: `rest` (from `offset`) was not written; hold it.
    pub(crate) fn fail(&mut self, id: u64, offset: u64, rest: Bytes) {
        if let Some(c) = self.chunks.iter_mut().find(|c| c.id == id) {
            self.bytes = self.bytes.saturating_sub(c.data.len() as u64) + rest.len() as u64;
            c.offset = offset;
            c.data = rest;
            c.in_flight = false;
        }
    }

    /// Writes held after a failure, waiting to be sent again.
    pub(crate) fn has_held(&self) -> bool {
        self.chunks.iter().any(|c| !c.in_flight)
    }

    /// Whether a write of `len` bytes at `offset` overlaps one in flight (it must wait for it:
    /// the server may apply concurrent WRITEs in any order).
    pub(crate) fn overlaps_in_flight(&self, offset: u64, len: u64) -> bool {
        self.chunks
            .iter()
            .any(|c| c.in_flight && c.overlaps(offset, len))
    }

    /// The id of the newest write (0: none yet): a flush waits only for writes up to it, so a
    /// writer that keeps the window full cannot starve it.
    pub(crate) fn last_id(&self) -> u64 {
        self.next_id
    }

    /// Writes up to `id` still on their way to the server.
    pub(crate) fn in_flight_upto(&self, id: u64) -> usize {
        self.chunks
            .iter()
            .filter(|c| c.in_flight && c.id <= id)
            .count()
    }

    /// Mark the held writes as being sent again and return them, in order. They stay counted
    /// (dirty, overlapping, in flight) until `complete` or `fail` settles each.
    pub(crate) fn resend_held(&mut self) -> Vec<DirtyChunk> {
        let mut out = Vec::new();
        for c in self.chunks.iter_mut().filter(|c| !c.in_flight) {
            c.in_flight = true;
            out.push(c.clone());
        }
        out
    }

    /// A resend stopped before this write: hold it again, unchanged.
    pub(crate) fn hold(&mut self, id: u64) {
        if let Some(c) = self.chunks.iter_mut().find(|c| c.id == id) {
            c.in_flight = false;
        }
    }

    /// Take everything (the open is going away); a background write that completes later finds
    /// nothing to remove.
    pub(crate) fn take(&mut self) -> Vec<DirtyChunk> {
        self.bytes = 0;
        std::mem::take(&mut self.chunks)
    }

    /// Dirty bytes written through one handle.
    pub(crate) fn bytes_of(&self, fobx: u64) -> u64 {
        self.chunks
            .iter()
            .filter(|c| c.fobx == fobx)
            .map(|c| c.data.len() as u64)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_write_is_held_with_what_was_not_written() {
        let mut wb = WriteBehind::default();
        let a = wb.push_in_flight(1, 0, Bytes::from_static(b"0123456789"));
        let b = wb.push_in_flight(1, 10, Bytes::from_static(b"abcdef"));
        assert_eq!((wb.bytes, wb.in_flight_upto(u64::MAX)), (16, 2));
        assert!(wb.overlaps_in_flight(5, 1));
        assert!(!wb.overlaps_in_flight(16, 4));
        wb.fail(a, 4, Bytes::from_static(b"456789"));
        wb.complete(b);
        assert_eq!((wb.bytes, wb.in_flight_upto(u64::MAX)), (6, 0));
        assert!(wb.has_held());
        let held = wb.resend_held();
        assert_eq!((held.len(), held[0].offset, wb.bytes), (1, 4, 6));
        assert!(
            !wb.has_held() && wb.overlaps_in_flight(4, 1),
            "a resend stays counted"
        );
        assert_eq!(wb.in_flight_upto(a), 1);
        assert_eq!(wb.in_flight_upto(a - 1), 0);
        wb.hold(a);
        assert!(wb.has_held());
        assert_eq!(wb.bytes_of(1), 6);
        // Completing a write whose chunk was taken (the open went away) changes nothing.
        assert_eq!(wb.take().len(), 1);
        wb.complete(a);
        assert_eq!(wb.bytes, 0);
    }
}
