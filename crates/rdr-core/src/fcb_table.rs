//! The per-share FCB table (§1.12): case-insensitive path → FCB, plus per-view indexes.
//!
//! The table's lock (`NetRoot::fcb_table`) is the "FCB table lock" of the lock order
//! (name table → FCB table → FCB → scavenger). Under it the core creates and finalizes FCBs,
//! SrvOpens and Fobxs and changes their counts. Insertion takes an FCB reference and removal does
//! not drop it (§1.12), hence FCB finalization at 1.
//!
//! Beyond RDBSS, the table indexes per view the FCBs the view created, the SrvOpens opened through
//! it and its handles, so that `finalize_connection` costs what the view holds, not what the
//! share holds.

use crate::fcb::Fcb;
use crate::fobx::Fobx;
use crate::srv_open::SrvOpen;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What one view holds on the share.
#[derive(Default)]
pub(crate) struct ViewFiles {
    /// FCBs with `Fcb.VNetRoot == view`, alive (in the table or orphaned).
    pub(crate) created_fcbs: HashMap<u64, Arc<Fcb>>,
    /// SrvOpens with `SrvOpen.VNetRoot == view`, alive (including close-delayed ones).
    pub(crate) srv_opens: HashMap<u64, Arc<SrvOpen>>,
    /// Handles opened through the view, in creation order.
    pub(crate) fobxs: BTreeMap<u64, Arc<Fobx>>,
}

/// `RX_FCB_TABLE`.
#[derive(Default)]
pub(crate) struct FcbTable {
    /// Path key (lower-cased) → FCB. The share root is the empty key (walked like any other,
    /// decision 3).
    pub(crate) entries: HashMap<String, Arc<Fcb>>,
    /// Bumped on every insert and remove.
    pub(crate) version: u64,
    pub(crate) views: HashMap<u64, ViewFiles>,
    /// `NET_ROOT.NumberOfFcbs`.
    pub(crate) number_of_fcbs: usize,
    /// `NET_ROOT.NumberOfSrvOpens`.
    pub(crate) number_of_srv_opens: usize,
}

impl FcbTable {
    /// `RxFcbTableLookupFcb`.
    pub(crate) fn lookup(&self, key: &str) -> Option<Arc<Fcb>> {
        self.entries.get(key).cloned()
    }

    /// `RxFcbTableInsertFcb` (the caller counts the table's reference in the FCB).
    pub(crate) fn insert(&mut self, fcb: Arc<Fcb>) {
        self.version += 1;
        self.entries.insert(fcb.key.clone(), fcb);
    }

    /// `RxFcbTableRemoveFcb`: remove `fcb`'s name if it is still the entry under its key.
    pub(crate) fn remove(&mut self, fcb: &Fcb) -> bool {
        match self.entries.get(&fcb.key) {
            Some(e) if e.id == fcb.id => {
                self.entries.remove(&fcb.key);
                self.version += 1;
                true
            }
            _ => false,
        }
    }

    pub(crate) fn view(&mut self, view: u64) -> &mut ViewFiles {
        self.views.entry(view).or_default()
    }

    /// Drop a view's index entry when it is empty.
    pub(crate) fn tidy_view(&mut self, view: u64) {
        if let Some(v) = self.views.get(&view)
            && v.created_fcbs.is_empty()
            && v.srv_opens.is_empty()
            && v.fobxs.is_empty()
        {
            self.views.remove(&view);
        }
    }
}
