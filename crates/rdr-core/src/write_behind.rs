//! Write-behind (decision 8): when the server grants write caching, writes may be held in the
//! core per SrvOpen, up to `RdbssConfig::write_behind_limit` bytes, and are sent on flush, close,
//! read of the same file, when the limit is exceeded, and before a forced close. Nothing is lost
//! silently: what cannot be sent is reported (`FinalizeOutcome::unwritten`, or close's error).

use bytes::Bytes;

/// One held write.
#[derive(Debug, Clone)]
pub(crate) struct DirtyChunk {
    pub(crate) fobx: u64,
    pub(crate) offset: u64,
    pub(crate) data: Bytes,
}

/// The held writes of one SrvOpen, in the order they were made.
#[derive(Debug, Default)]
pub(crate) struct WriteBehind {
    pub(crate) chunks: Vec<DirtyChunk>,
    pub(crate) bytes: u64,
}

impl WriteBehind {
    pub(crate) fn push(&mut self, fobx: u64, offset: u64, data: Bytes) {
        self.bytes += data.len() as u64;
        self.chunks.push(DirtyChunk { fobx, offset, data });
    }

    /// Take everything for sending.
    pub(crate) fn take(&mut self) -> Vec<DirtyChunk> {
        self.bytes = 0;
        std::mem::take(&mut self.chunks)
    }

    /// Put back chunks that could not be sent, ahead of newer ones.
    pub(crate) fn restore(&mut self, mut chunks: Vec<DirtyChunk>) {
        self.bytes += chunks.iter().map(|c| c.data.len() as u64).sum::<u64>();
        chunks.append(&mut self.chunks);
        self.chunks = chunks;
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
