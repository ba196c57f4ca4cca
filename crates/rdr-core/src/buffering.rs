//! The buffering manager: `RxIndicateChangeOfBufferingState` followed by `RxChangeBufferingState`
//! (caching-design.md §1.3–1.4 and §5.5). The server lowers what an open may cache (a lease or
//! oplock break); the mini-redirector names the opens by their key (`srv_open_key`: lease key
//! or handle), and the core applies the change in RDBSS's order — stop new cached writes, flush
//! the dirty data, close delayed opens that lost handle caching, commit — before the caller
//! acknowledges the break to the server.

use crate::inventory::Unwritten;
use crate::minirdr::BufferingState;
use crate::rdbss::Inner;
use crate::rdbss::Rdbss;
use crate::refcount::Aftermath;
use crate::rx_context::RxContext;
use crate::srv_open::SrvOpen;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// What a change of buffering state did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BufferingChange {
    /// Opens with the key (0: none known, e.g. the break crossed a close on the wire).
    pub opens: usize,
    /// Paths (in the share) of the files whose state changed, for cache invalidation.
    pub paths: Vec<String>,
    /// Delayed closes closed because handle caching was lost.
    pub closed_delayed: usize,
    /// Dirty data that could not be flushed before the acknowledgment (it stays held and is
    /// sent again by the next write, flush or close).
    pub unflushed: Vec<Unwritten>,
}

/// At most this many missed breaks are remembered while creates are outstanding.
const MAX_MISSED: usize = 1024;

/// RDBSS's NumberOfOutstandingOpens (caching-design §1.3): a break can arrive between the
/// server granting a create its lease and the new open entering the FCB table, and then finds
/// no open to lower. While creates are on their way every break is remembered here, and an open
/// entering the table takes the lower state of every break that arrived after its create
/// started. Never raises a state; forgotten when no create is outstanding.
#[derive(Default)]
pub(crate) struct OutstandingOpens {
    in_flight: usize,
    seq: u64,
    missed: VecDeque<(u64, Vec<u8>, BufferingState)>,
    /// The newest break that was forgotten for room: creates older than it take no caching
    /// at all (they may have missed it).
    forgot: u64,
}

impl OutstandingOpens {
    /// A create is about to be sent; the returned mark dates the breaks it may miss.
    fn begin(&mut self) -> u64 {
        self.in_flight += 1;
        self.seq
    }

    /// A create ended (entered the table, or failed).
    fn end(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            self.missed.clear();
            self.forgot = 0;
        }
    }

    fn record(&mut self, key: &[u8], new: BufferingState) {
        if self.in_flight == 0 {
            return;
        }
        self.seq += 1;
        self.missed.push_back((self.seq, key.to_vec(), new));
        if self.missed.len() > MAX_MISSED
            && let Some((seq, _, _)) = self.missed.pop_front()
        {
            self.forgot = seq;
        }
    }

    /// `granted`, lowered by every break for `key` since `mark`.
    fn lowered(&self, mark: u64, key: &[u8], granted: BufferingState) -> BufferingState {
        if self.forgot > mark {
            return BufferingState::default();
        }
        self.missed
            .iter()
            .filter(|(seq, k, _)| *seq > mark && k.as_slice() == key)
            .fold(granted, |b, (_, _, n)| BufferingState {
                read_caching: b.read_caching && n.read_caching,
                write_caching: b.write_caching && n.write_caching,
                handle_caching: b.handle_caching && n.handle_caching,
            })
    }
}

/// One create on its way to the server (see [`OutstandingOpens`]); ends it when dropped.
pub(crate) struct OpenInFlight<'a> {
    inner: &'a Inner,
    mark: u64,
    ended: bool,
}

impl<'a> OpenInFlight<'a> {
    /// Count a create that is about to be sent.
    pub(crate) fn begin(inner: &'a Inner) -> Self {
        let mark = inner.outstanding.lock().begin();
        OpenInFlight {
            inner,
            mark,
            ended: false,
        }
    }

    /// The state the new open with mini-redirector context `ctx` starts with: what the server
    /// granted, lowered by the breaks it missed. `enter` puts the open in the FCB table; it runs
    /// under the same lock as a break's search, so every break sees the open or is applied.
    pub(crate) fn enter<T>(
        mut self,
        ctx: &crate::minirdr::MrxContext,
        granted: BufferingState,
        enter: impl FnOnce(BufferingState) -> T,
    ) -> T {
        let mut out = self.inner.outstanding.lock();
        let state = match self.inner.minirdr.srv_open_key(ctx) {
            Some(key) => out.lowered(self.mark, &key, granted),
            None => granted,
        };
        let r = enter(state);
        out.end();
        self.ended = true;
        r
    }
}

impl Drop for OpenInFlight<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.inner.outstanding.lock().end();
        }
    }
}

impl Rdbss {
    /// Lower the buffering state of every open whose mini-redirector key is `key` to at most
    /// `new` (a break never raises it). Returns when the break may be acknowledged: dirty data
    /// is on the server (or, past `ctx`'s deadline, reported in `unflushed`) and delayed opens
    /// that lost handle caching are closed.
    pub async fn change_buffering_state(
        &self,
        key: &[u8],
        new: BufferingState,
        ctx: &RxContext,
    ) -> BufferingChange {
        let inner = &self.inner;
        let opens = self.opens_with_key(key, new);
        let mut out = BufferingChange {
            opens: opens.len(),
            ..Default::default()
        };
        // 1. Stop: no new write becomes dirty once the state is lowered (same lock as write).
        for so in &opens {
            let _wb = so.write_behind.lock();
            let mut b = so.buffering.lock();
            b.read_caching &= new.read_caching;
            b.write_caching &= new.write_caching;
            b.handle_caching &= new.handle_caching;
            if !out.paths.contains(&so.fcb.path) {
                out.paths.push(so.fcb.path.clone());
            }
        }
        // 2. Flush what is dirty.
        for so in &opens {
            if let Err(e) = inner.send_dirty(so, ctx).await {
                let bytes = so.dirty_bytes();
                if bytes > 0 {
                    out.unflushed.push(Unwritten {
                        path: so.fcb.path.clone(),
                        bytes,
                        error: e.to_string(),
                    });
                }
            }
        }
        // 3. (Purge: the kernel's pages are the mount's, invalidated from `paths`.)
        // 4. Handle caching lost: close the delayed opens now, their CLOSE resolves the break.
        if !new.handle_caching {
            let mut by_share: HashMap<u64, (Arc<crate::net_root::NetRoot>, Vec<u64>)> =
                HashMap::new();
            for so in opens.iter().filter(|so| so.is_close_delayed()) {
                let nr = &so.v_net_root.net_root;
                by_share
                    .entry(nr.id)
                    .or_insert_with(|| (nr.clone(), Vec::new()))
                    .1
                    .push(so.id);
            }
            let mut am = Aftermath::default();
            for (nr, ids) in by_share.values() {
                out.closed_delayed += ids.len();
                inner.close_delayed_locked(nr, &mut am, |so| ids.contains(&so.id));
            }
            inner.settle(am).await;
        }
        out
    }

    /// The opens whose mini-redirector key is `key`; a create still on its way is told of the
    /// break instead (the search holds `outstanding`, as an open entering the table does).
    fn opens_with_key(&self, key: &[u8], new: BufferingState) -> Vec<Arc<SrvOpen>> {
        let inner = &self.inner;
        let mut outstanding = inner.outstanding.lock();
        outstanding.record(key, new);
        let net_roots: Vec<_> = inner.names.lock().net_roots.values().cloned().collect();
        let mut opens: Vec<Arc<SrvOpen>> = Vec::new();
        for nr in &net_roots {
            let tbl = nr.fcb_table.lock();
            for files in tbl.views.values() {
                opens.extend(
                    files
                        .srv_opens
                        .values()
                        .filter(|so| {
                            inner.minirdr.srv_open_key(&so.context).as_deref() == Some(key)
                        })
                        .cloned(),
                );
            }
        }
        opens
    }
}
