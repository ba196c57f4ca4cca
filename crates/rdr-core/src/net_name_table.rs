//! The net-name table (§1.11): SrvCalls, NetRoots and VNetRoots by canonical name.
//!
//! One per `Rdbss`. Its lock is the outermost of the lock order and is never held across an
//! `.await`. Like RDBSS, VNetRoot names carry the caller's logon id (RDBSS prefixes them with
//! `\;:<session>`), so each identity finds only its own views; lookup is longest prefix, like
//! `RxTableLookupName`: `\server\share\a\b` finds the view rooted at `\server\share\a` if there is
//! one, else the one at `\server\share`, and returns the remaining path.

use crate::name::{RemoteName, path_key};
use crate::net_root::NetRoot;
use crate::srv_call::SrvCall;
use crate::v_net_root::VNetRoot;
use std::collections::HashMap;
use std::sync::Arc;

/// `RX_PREFIX_TABLE` for net names.
#[derive(Default)]
pub(crate) struct NetNameTable {
    pub(crate) srv_calls: HashMap<String, Arc<SrvCall>>,
    pub(crate) net_roots: HashMap<String, Arc<NetRoot>>,
    /// (logon id, view key) → the views of that identity (one per remote user).
    pub(crate) v_net_roots: HashMap<(u32, String), Vec<Arc<VNetRoot>>>,
    pub(crate) version: u64,
}

impl NetNameTable {
    pub(crate) fn insert_v_net_root(&mut self, v: Arc<VNetRoot>) {
        self.version += 1;
        self.v_net_roots
            .entry((v.credentials.logon_id, v.key.clone()))
            .or_default()
            .push(v);
    }

    /// Remove the view's name (`RxRemovePrefixTableEntry`); does not drop its reference.
    pub(crate) fn remove_v_net_root(&mut self, v: &VNetRoot) {
        let k = (v.credentials.logon_id, v.key.clone());
        if let Some(list) = self.v_net_roots.get_mut(&k) {
            list.retain(|x| x.id != v.id);
            if list.is_empty() {
                self.v_net_roots.remove(&k);
            }
            self.version += 1;
        }
    }

    pub(crate) fn remove_net_root(&mut self, nr: &NetRoot) {
        if self.net_roots.get(&nr.key).is_some_and(|e| e.id == nr.id) {
            self.net_roots.remove(&nr.key);
            self.version += 1;
        }
    }

    pub(crate) fn remove_srv_call(&mut self, sc: &SrvCall) {
        if self.srv_calls.get(&sc.key).is_some_and(|e| e.id == sc.id) {
            self.srv_calls.remove(&sc.key);
            self.version += 1;
        }
    }

    /// The views of `logon_id` filed under exactly `key`.
    pub(crate) fn views_at(&self, logon_id: u32, key: &str) -> &[Arc<VNetRoot>] {
        self.v_net_roots
            .get(&(logon_id, key.to_string()))
            .map(|v| v.as_slice())
            .unwrap_or(&[])
    }

    /// `RxTableLookupName`: the caller's view with the longest matching prefix and the rest of
    /// the path (`\`-joined, relative to the view).
    pub(crate) fn lookup(
        &self,
        name: &RemoteName,
        logon_id: u32,
    ) -> Option<(Arc<VNetRoot>, String)> {
        let base = name.key();
        let mut keys = Vec::with_capacity(name.path.len() + 1);
        let mut k = base;
        keys.push(k.clone());
        for c in &name.path {
            k.push('\\');
            k.push_str(&path_key(c));
            keys.push(k.clone());
        }
        for (depth, key) in keys.iter().enumerate().rev() {
            let hit = self.views_at(logon_id, key).iter().find(|v| {
                v.condition.get() == crate::condition::ConditionState::Good
                    && (name.user.is_none() || v.credentials.user == name.user)
            });
            if let Some(v) = hit {
                let rest = name.path.get(depth..).unwrap_or(&[]).join("\\");
                return Some((v.clone(), rest));
            }
        }
        None
    }
}
