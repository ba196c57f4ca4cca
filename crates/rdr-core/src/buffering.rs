//! The buffering manager: `RxIndicateChangeOfBufferingState` followed by `RxChangeBufferingState`
//! (caching-design.md §1.3–1.4 and §5.5). The server lowers what an open may cache (a lease or
//! oplock break); the mini-redirector names the opens by their key (`srv_open_key`: lease key
//! or handle), and the core applies the change in RDBSS's order — stop new cached writes, flush
//! the dirty data, close delayed opens that lost handle caching, commit — before the caller
//! acknowledges the break to the server.

use crate::inventory::Unwritten;
use crate::minirdr::BufferingState;
use crate::rdbss::Rdbss;
use crate::refcount::Aftermath;
use crate::rx_context::RxContext;
use crate::srv_open::SrvOpen;
use std::collections::HashMap;
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
}
