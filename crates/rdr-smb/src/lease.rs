//! Leases and oplocks: one lease key per file path (per share) while the file has opens,
//! the routing of break notifications by lease key (or FileId for oplocks), delivery of every
//! break to the subscriber's channel, and the acknowledgment — after the subscriber released
//! the event (it may flush first) and after in-flight writes under the lease completed
//! ([MS-SMB2] 3.2.5.19; docs/caching-design.md §5.5).

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::proto::{
    FileId, LEASE_BREAK_ACK_REQUIRED, LeaseBreakAck, LeaseBreakNotification, LeaseState, Message,
    OplockBreak, OplockBreakMessage, OplockLevel,
};
use crate::tree::Tree;

/// What a break notification says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakKind {
    /// A lease break (2.1+).
    Lease {
        /// The lease key.
        key: [u8; 16],
        /// The state held before the break.
        from: LeaseState,
        /// The state to break to (what is acknowledged).
        to: LeaseState,
        /// NewEpoch (3.x).
        epoch: u16,
        /// The server waits for an acknowledgment.
        ack_required: bool,
    },
    /// An oplock break (2.0.2, or opens without a lease).
    Oplock {
        /// The handle.
        file_id: FileId,
        /// The level to break to.
        to: OplockLevel,
    },
}

/// One break, delivered to the subscriber. The acknowledgment waits until this event is
/// released or dropped (or the break budget ends), so the consumer can flush dirty data first.
#[derive(Debug)]
pub struct BreakEvent {
    /// What broke.
    pub kind: BreakKind,
    /// The share of the file, when the lease or handle is known.
    pub share: Option<String>,
    /// The path of the file in the share, when known.
    pub path: Option<String>,
    done: Option<oneshot::Sender<()>>,
}

impl BreakEvent {
    /// The key of the opens this break concerns (`MiniRedirector::srv_open_key`).
    pub fn srv_open_key(&self) -> Vec<u8> {
        match &self.kind {
            BreakKind::Lease { key, .. } => key.to_vec(),
            BreakKind::Oplock { file_id, .. } => crate::open::file_id_key(file_id),
        }
    }

    /// What those opens may still cache after the break.
    pub fn new_buffering(&self) -> rdr_core::minirdr::BufferingState {
        match &self.kind {
            BreakKind::Lease { to, .. } => crate::open::buffering_of(*to),
            BreakKind::Oplock { to, .. } => crate::open::oplock_buffering(*to),
        }
    }

    /// Lets the acknowledgment go (same as dropping the event).
    pub fn release(mut self) {
        if let Some(d) = self.done.take() {
            let _ = d.send(());
        }
    }
}

/// Where break events go: a subscriber's sender, shared by every connection that uses it.
pub(crate) type BreakSink = Arc<Mutex<Option<mpsc::UnboundedSender<BreakEvent>>>>;

/// A lease key and what rides on it.
pub(crate) struct LeaseEntry {
    pub(crate) key: [u8; 16],
    share: String,
    path: String,
    users: Mutex<usize>,
    pub(crate) state: Mutex<(LeaseState, u16)>,
    tree: Mutex<Weak<Tree>>,
    /// Writes hold it shared; a break takes it exclusively before acknowledging, so every
    /// write sent under the old state has completed.
    pub(crate) io_gate: tokio::sync::RwLock<()>,
    serial: tokio::sync::Mutex<()>,
}

impl LeaseEntry {
    pub(crate) fn granted(&self, state: LeaseState, epoch: u16, tree: &Arc<Tree>) {
        *self.state.lock() = (state, epoch);
        self.rebind(tree);
    }

    /// Acknowledgments of the key's breaks go to `tree` from now on (a reclaim moved it).
    pub(crate) fn rebind(&self, tree: &Arc<Tree>) {
        *self.tree.lock() = Arc::downgrade(tree);
    }
}

struct OplockEntry {
    tree: Weak<Tree>,
    share: String,
    path: String,
    level: Mutex<OplockLevel>,
}

#[derive(Default)]
struct Tables {
    by_path: HashMap<(String, String), Arc<LeaseEntry>>,
    by_key: HashMap<[u8; 16], Arc<LeaseEntry>>,
    oplocks: HashMap<FileId, Arc<OplockEntry>>,
}

impl Tables {
    /// Removes `e` by key and by path, where it is the entry named (the path may name another
    /// key by now: a reclaimed open keeps its old one).
    fn forget(&mut self, e: &Arc<LeaseEntry>) {
        if self.by_key.get(&e.key).is_some_and(|x| Arc::ptr_eq(x, e)) {
            self.by_key.remove(&e.key);
        }
        let k = (e.share.clone(), e.path.clone());
        if self.by_path.get(&k).is_some_and(|x| Arc::ptr_eq(x, e)) {
            self.by_path.remove(&k);
        }
    }
}

/// The lease keys and oplocks of one connection.
pub struct LeaseTable {
    tables: Mutex<Tables>,
    subscriber: Mutex<BreakSink>,
    budget: Duration,
}

impl LeaseTable {
    pub(crate) fn new(budget: Duration) -> Arc<Self> {
        Arc::new(LeaseTable {
            tables: Mutex::new(Tables::default()),
            subscriber: Mutex::new(Arc::new(Mutex::new(None))),
            budget,
        })
    }

    pub(crate) fn subscribe(&self) -> mpsc::UnboundedReceiver<BreakEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.subscriber.lock() = Arc::new(Mutex::new(Some(tx)));
        rx
    }

    /// Delivers breaks to a sink shared with others (the mini-redirector's, so one subscription
    /// covers every connection, also those made before it).
    pub(crate) fn share_sink(&self, sink: BreakSink) {
        *self.subscriber.lock() = sink;
    }

    /// The lease key of `share\path`, made on first use; every open of the file uses it until
    /// the last one is released.
    pub(crate) fn acquire(&self, share: &str, path: &str) -> Arc<LeaseEntry> {
        let mut t = self.tables.lock();
        let k = (share.to_string(), path.to_string());
        if let Some(e) = t.by_path.get(&k) {
            *e.users.lock() += 1;
            return e.clone();
        }
        let mut key = [0u8; 16];
        let _ = getrandom::fill(&mut key);
        let e = Arc::new(LeaseEntry {
            key,
            share: share.to_string(),
            path: path.to_string(),
            users: Mutex::new(1),
            state: Mutex::new((LeaseState::empty(), 0)),
            tree: Mutex::new(Weak::new()),
            io_gate: tokio::sync::RwLock::new(()),
            serial: tokio::sync::Mutex::new(()),
        });
        t.by_path.insert(k, e.clone());
        t.by_key.insert(key, e.clone());
        e
    }

    /// Drops one use of a lease key; the key is forgotten with its last use.
    pub(crate) fn release(&self, e: &Arc<LeaseEntry>) {
        let mut t = self.tables.lock();
        let mut users = e.users.lock();
        *users = users.saturating_sub(1);
        if *users == 0 {
            t.forget(e);
        }
    }

    /// Takes over the lease key of a durable open reclaimed on this connection (its old one
    /// died): breaks of that key arrive here now. New opens of the path share the key unless
    /// the path got another one meanwhile. Returns whether the key was new here (`unadopt`
    /// undoes that).
    pub(crate) fn adopt(&self, e: &Arc<LeaseEntry>) -> bool {
        let mut t = self.tables.lock();
        let new = !t.by_key.contains_key(&e.key);
        if new {
            t.by_key.insert(e.key, e.clone());
        }
        t.by_path
            .entry((e.share.clone(), e.path.clone()))
            .or_insert_with(|| e.clone());
        new
    }

    /// Forgets a key adopted for a reclaim that failed.
    pub(crate) fn unadopt(&self, e: &Arc<LeaseEntry>) {
        self.tables.lock().forget(e);
    }

    /// Number of lease keys in use (tests).
    pub fn lease_count(&self) -> usize {
        self.tables.lock().by_key.len()
    }

    pub(crate) fn add_oplock(
        &self,
        file_id: FileId,
        level: OplockLevel,
        tree: &Arc<Tree>,
        path: &str,
    ) {
        self.tables.lock().oplocks.insert(
            file_id,
            Arc::new(OplockEntry {
                tree: Arc::downgrade(tree),
                share: tree.share.clone(),
                path: path.to_string(),
                level: Mutex::new(level),
            }),
        );
    }

    pub(crate) fn remove_oplock(&self, file_id: &FileId) {
        self.tables.lock().oplocks.remove(file_id);
    }

    /// Delivers an event and waits until the consumer releases it (bounded by the budget).
    async fn deliver(&self, kind: BreakKind, share: Option<String>, path: Option<String>) {
        let (tx, rx) = oneshot::channel();
        let ev = BreakEvent {
            kind,
            share,
            path,
            done: Some(tx),
        };
        let sink = self.subscriber.lock().clone();
        let sent = {
            let mut s = sink.lock();
            match s.as_ref() {
                Some(sub) => match sub.send(ev) {
                    Ok(()) => true,
                    Err(_) => {
                        *s = None;
                        false
                    }
                },
                None => false,
            }
        };
        if sent {
            let _ = tokio::time::timeout(self.budget, rx).await;
        }
    }

    /// The connection died: every lease and oplock it held is gone. Each is delivered as a
    /// break to none that needs no acknowledgment (there is nobody to acknowledge to), so the
    /// consumer stops caching under it; the events are delivered together.
    pub(crate) async fn connection_lost(self: Arc<Self>) {
        let (leases, oplocks) = {
            let t = self.tables.lock();
            let leases: Vec<Arc<LeaseEntry>> = t.by_key.values().cloned().collect();
            let oplocks: Vec<(FileId, Arc<OplockEntry>)> =
                t.oplocks.iter().map(|(k, v)| (*k, v.clone())).collect();
            (leases, oplocks)
        };
        let mut lost = Vec::new();
        for e in leases {
            let (from, epoch) = std::mem::replace(&mut *e.state.lock(), (LeaseState::empty(), 0));
            if !from.is_empty() {
                let kind = BreakKind::Lease {
                    key: e.key,
                    from,
                    to: LeaseState::empty(),
                    epoch,
                    ack_required: false,
                };
                lost.push((kind, Some(e.share.clone()), Some(e.path.clone())));
            }
        }
        for (file_id, e) in oplocks {
            let from = std::mem::replace(&mut *e.level.lock(), OplockLevel::NONE);
            if from != OplockLevel::NONE {
                let kind = BreakKind::Oplock {
                    file_id,
                    to: OplockLevel::NONE,
                };
                lost.push((kind, Some(e.share.clone()), Some(e.path.clone())));
            }
        }
        let all = lost
            .into_iter()
            .map(|(kind, share, path)| self.deliver(kind, share, path));
        futures_join_all(all).await;
    }

    async fn lease_break(self: Arc<Self>, n: LeaseBreakNotification) {
        let entry = self.tables.lock().by_key.get(&n.lease_key).cloned();
        let ack_required = n.flags & LEASE_BREAK_ACK_REQUIRED != 0;
        let kind = BreakKind::Lease {
            key: n.lease_key,
            from: n.current_state,
            to: n.new_state,
            epoch: n.new_epoch,
            ack_required,
        };
        let (share, path) = match &entry {
            Some(e) => (Some(e.share.clone()), Some(e.path.clone())),
            None => (None, None),
        };
        let Some(entry) = entry else {
            // No open uses the key any more: the close resolved the break; still tell.
            self.deliver(kind, share, path).await;
            return;
        };
        let _serial = entry.serial.lock().await;
        self.deliver(kind, share, path).await;
        // Writes sent under the old state complete before the acknowledgment; new ones wait.
        let _gate = entry.io_gate.write().await;
        {
            let mut st = entry.state.lock();
            st.0 = n.new_state;
            st.1 = n.new_epoch;
        }
        if !ack_required {
            return;
        }
        let tree = entry.tree.lock().upgrade();
        let Some(tree) = tree else { return };
        let ack = LeaseBreakAck {
            flags: 0,
            lease_key: n.lease_key,
            lease_state: n.new_state,
            lease_duration: 0,
        };
        // STATUS_UNSUCCESSFUL here means the break was resolved otherwise (a close); nothing
        // else to do either way.
        let _ = tree.send(&ack).await;
    }

    async fn oplock_break(self: Arc<Self>, b: OplockBreak) {
        let entry = self.tables.lock().oplocks.get(&b.file_id).cloned();
        let kind = BreakKind::Oplock {
            file_id: b.file_id,
            to: b.oplock_level,
        };
        let Some(entry) = entry else {
            self.deliver(kind, None, None).await;
            return;
        };
        self.deliver(kind, Some(entry.share.clone()), Some(entry.path.clone()))
            .await;
        let old = std::mem::replace(&mut *entry.level.lock(), b.oplock_level);
        // Level II → none needs no acknowledgment.
        if old == OplockLevel::II || old == OplockLevel::NONE {
            return;
        }
        let Some(tree) = entry.tree.upgrade() else {
            return;
        };
        let ack = OplockBreak {
            oplock_level: b.oplock_level,
            file_id: b.file_id,
        };
        let _ = tree.send(&ack).await;
    }
}

/// Runs every future to its end, concurrently (a small `join_all`).
async fn futures_join_all<F: std::future::Future<Output = ()>>(fs: impl Iterator<Item = F>) {
    let mut set: Vec<std::pin::Pin<Box<F>>> = fs.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        set.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if set.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
}

/// The break task of one connection: reads unsolicited messages until the connection goes.
pub(crate) async fn dispatch(table: Arc<LeaseTable>, mut rx: mpsc::UnboundedReceiver<Message>) {
    while let Some(m) = rx.recv().await {
        match OplockBreakMessage::decode(&m.bytes) {
            Ok(OplockBreakMessage::LeaseBreak(n)) => {
                tokio::spawn(table.clone().lease_break(n));
            }
            Ok(OplockBreakMessage::Oplock(b)) => {
                tokio::spawn(table.clone().oplock_break(b));
            }
            _ => {}
        }
    }
}
