//! The scavenger (§2.6): the timed side of finalization.
//!
//! * Delayed close (§2.5): a SrvOpen whose last handle closed may stay open on the server for
//!   `RdbssConfig::delayed_close` so a compatible open can reuse it; the scavenger closes it when
//!   the time is up (and `finalize_connection`, rename, delete and sharing violations close it
//!   on demand).
//! * Dormant SrvCalls (decision 9): a server whose last share went keeps its transport for the
//!   linger time (`RdbssConfig::srv_call_linger`, else the mini-redirector's `srv_call_linger()`),
//!   so the next connection reuses it; then the scavenger calls `MRxFinalizeSrvCall`.
//!
//! Time comes from the injected `Clock`; `Rdbss::scavenge` runs one pass. The scavenger's own
//! lock is the innermost of the lock order: it is taken only to file or list entries.

use crate::net_root::NetRoot;
use crate::rdbss::Inner;
use crate::refcount::{Aftermath, finalize_dormant_srv_call};
use crate::srv_open::SrvOpen;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// The scavenger's list of close-delayed SrvOpens. Entries that were reused or closed meanwhile
/// are dropped lazily at the next pass.
#[derive(Default)]
pub(crate) struct Scavenger {
    delayed: Mutex<HashMap<u64, Arc<SrvOpen>>>,
}

impl Scavenger {
    pub(crate) fn park(&self, so: Arc<SrvOpen>) {
        self.delayed.lock().insert(so.id, so);
    }

    fn snapshot(&self) -> Vec<Arc<SrvOpen>> {
        self.delayed.lock().values().cloned().collect()
    }

    fn forget(&self, ids: &[u64]) {
        let mut d = self.delayed.lock();
        for id in ids {
            d.remove(id);
        }
    }
}

impl Inner {
    /// Close on the server every close-delayed SrvOpen of `nr` selected by `pick` (all when
    /// expired by time, or those of a file/view on demand).
    pub(crate) fn close_delayed_locked(
        &self,
        nr: &NetRoot,
        am: &mut Aftermath,
        pick: impl Fn(&Arc<SrvOpen>) -> bool,
    ) {
        let mut done = Vec::new();
        let cands: Vec<_> = self
            .scavenger
            .snapshot()
            .into_iter()
            .filter(|so| so.v_net_root.net_root.id == nr.id)
            .collect();
        if cands.is_empty() {
            return;
        }
        let mut tbl = nr.fcb_table.lock();
        for so in cands {
            let delayed = so.is_close_delayed();
            if !delayed {
                done.push(so.id);
                continue;
            }
            if pick(&so) {
                so.close_locked(&mut tbl, am, true);
                done.push(so.id);
            }
        }
        drop(tbl);
        self.scavenger.forget(&done);
    }

    /// One scavenger pass at `clock.now()`.
    pub(crate) async fn scavenge_pass(&self) {
        let now = self.clock.now();
        let mut am = Aftermath::default();
        // 1. Delayed closes whose time is up (and stale entries).
        let mut by_share: HashMap<u64, Arc<NetRoot>> = HashMap::new();
        for so in self.scavenger.snapshot() {
            by_share
                .entry(so.v_net_root.net_root.id)
                .or_insert_with(|| so.v_net_root.net_root.clone());
        }
        let limit = self.config.delayed_close;
        for nr in by_share.values() {
            self.close_delayed_locked(nr, &mut am, |so| {
                so.state
                    .lock()
                    .close_delayed_since
                    .is_some_and(|t| now.saturating_duration_since(t) >= limit)
            });
        }
        self.settle(am).await;
        // 2. Dormant SrvCalls past their linger time.
        let linger = self.srv_call_linger();
        let mut am = Aftermath::default();
        {
            let mut names = self.names.lock();
            let expired: Vec<_> = names
                .srv_calls
                .values()
                .filter(|sc| {
                    sc.state
                        .lock()
                        .dormant_since
                        .is_some_and(|t| now.saturating_duration_since(t) >= linger)
                })
                .cloned()
                .collect();
            for sc in expired {
                finalize_dormant_srv_call(&mut names, &sc, &mut am);
            }
        }
        self.settle(am).await;
    }

    /// `close_transport`: finalize the dormant SrvCalls of `server` now.
    pub(crate) async fn close_transport(&self, server: &str) -> bool {
        let server = server.to_lowercase();
        let mut am = Aftermath::default();
        let mut closed = false;
        {
            let mut names = self.names.lock();
            let cands: Vec<_> = names
                .srv_calls
                .values()
                .filter(|sc| sc.params.server.to_lowercase() == server)
                .cloned()
                .collect();
            for sc in cands {
                if sc.state.lock().dormant_since.is_some() {
                    closed |= finalize_dormant_srv_call(&mut names, &sc, &mut am);
                }
            }
        }
        self.settle(am).await;
        closed
    }
}
