//! Property test: random sequences of add-connection (two views of one share), open file or
//! directory, close, start a change notification, cancel it, and finalize with a random force
//! level, checked against a small reference model of the §3.3 decision table: the same status,
//! and the same surviving objects (views in the name table, open and orphaned handles, the extra
//! reference, NumberOfFobxs).

use crate::*;
use proptest::prelude::*;
use rdr_core::fcb::Fcb;
use rdr_core::fobx::Fobx;
use rdr_core::minirdr::*;
use rdr_core::v_net_root::VNetRoot;
use rdr_core::{ForceLevel, NtStatus, RxContext, RxResult};
use std::sync::Arc;

const PATHS: [(&str, bool); 4] = [("f", false), ("g", false), ("d", true), ("", true)];

/// One step of a random scenario.
#[derive(Debug, Clone)]
#[allow(missing_docs)]
pub enum Op {
    Add(usize),
    Open(usize, usize),
    Close(usize),
    Notify(usize),
    Cancel(usize),
    Finalize(usize, ForceLevel),
}

/// A random step.
pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..2usize).prop_map(Op::Add),
        4 => (0..2usize, 0..4usize).prop_map(|(v, p)| Op::Open(v, p)),
        3 => any::<usize>().prop_map(Op::Close),
        2 => any::<usize>().prop_map(Op::Notify),
        1 => any::<usize>().prop_map(Op::Cancel),
        3 => (0..2usize, prop_oneof![Just(ForceLevel::No), Just(ForceLevel::Yes), Just(ForceLevel::DetachOnClose)])
            .prop_map(|(v, f)| Op::Finalize(v, f)),
    ]
}

struct MView {
    in_table: bool,
    x: bool,
    d: bool,
    freed: bool,
}

struct MFcb {
    path: usize,
    is_dir: bool,
    creator: usize,
    orphaned: bool,
    freed: bool,
}

struct MHandle {
    view: usize,
    fcb: usize,
    open: bool,
    orphaned: bool,
}

struct MNotify {
    handle: usize,
    pending: bool,
}

#[derive(Default)]
struct Model {
    views: Vec<MView>,
    slots: [Option<usize>; 2],
    fcbs: Vec<MFcb>,
    handles: Vec<MHandle>,
    notifies: Vec<MNotify>,
}

impl Model {
    fn open_handles_of_fcb(&self, f: usize) -> impl Iterator<Item = &MHandle> {
        self.handles.iter().filter(move |h| h.open && h.fcb == f)
    }
    fn k(&self, v: usize) -> usize {
        self.handles
            .iter()
            .filter(|h| h.open && h.view == v)
            .count()
    }
    /// A FCB with handles left, all orphaned, is orphaned (§2.7); one with none is freed.
    fn settle_fcb(&mut self, f: usize) {
        if self.fcbs[f].freed {
            return;
        }
        let open: Vec<bool> = self.open_handles_of_fcb(f).map(|h| h.orphaned).collect();
        if open.is_empty() {
            self.fcbs[f].freed = true;
        } else if open.iter().all(|o| *o) {
            self.fcbs[f].orphaned = true;
        }
    }
    /// A view is finalized when only the name table references it.
    fn settle_views(&mut self) {
        for vi in 0..self.views.len() {
            if self.views[vi].freed || self.views[vi].x {
                continue;
            }
            let fcb_refs = self
                .fcbs
                .iter()
                .any(|f| f.creator == vi && !f.freed && !f.orphaned);
            let open_refs = self
                .handles
                .iter()
                .any(|h| h.open && h.view == vi && !h.orphaned);
            if !fcb_refs && !open_refs {
                self.views[vi].freed = true;
                self.views[vi].in_table = false;
            }
        }
    }
    /// The decision table. Returns the status and the notifications it cancels.
    fn finalize(&mut self, vi: usize, force: ForceLevel) -> (NtStatus, Vec<usize>) {
        let yes = force == ForceLevel::Yes;
        if self.views[vi].freed {
            let st = if !yes && self.k(vi) > 0 {
                NtStatus::STATUS_FILES_OPEN
            } else {
                NtStatus::STATUS_SUCCESS
            };
            return (st, vec![]);
        }
        let keyed: Vec<usize> = (0..self.notifies.len())
            .filter(|&n| {
                let nt = &self.notifies[n];
                let h = &self.handles[nt.handle];
                nt.pending && (h.view == vi || self.fcbs[h.fcb].creator == vi)
            })
            .collect();
        if force == ForceLevel::No && !keyed.is_empty() {
            return (NtStatus::STATUS_FILES_OPEN, vec![]);
        }
        let mut cancelled = vec![];
        if yes {
            for n in keyed {
                self.notifies[n].pending = false;
                cancelled.push(n);
            }
        }
        let (mut uf, mut ud) = (0, 0);
        if !self.views[vi].d {
            for f in 0..self.fcbs.len() {
                let fc = &self.fcbs[f];
                if fc.creator != vi || fc.freed || fc.orphaned {
                    continue;
                }
                if self.open_handles_of_fcb(f).next().is_some() && !yes {
                    if fc.is_dir { ud += 1 } else { uf += 1 }
                }
            }
        }
        if yes {
            let mut touched = vec![];
            for h in self.handles.iter_mut().filter(|h| h.open && h.view == vi) {
                h.orphaned = true;
                touched.push(h.fcb);
            }
            for f in touched {
                self.settle_fcb(f);
            }
        }
        let k = self.k(vi);
        if !self.views[vi].d && k == 0 {
            self.views[vi].d = true;
        }
        if yes {
            self.views[vi].in_table = false;
        }
        let st = if yes {
            NtStatus::STATUS_SUCCESS
        } else if uf > 0 || k > 0 {
            NtStatus::STATUS_FILES_OPEN
        } else if ud > 0 {
            NtStatus::STATUS_CONNECTION_IN_USE
        } else {
            NtStatus::STATUS_SUCCESS
        };
        if force == ForceLevel::DetachOnClose || st == NtStatus::STATUS_SUCCESS {
            self.views[vi].x = false;
        }
        (st, cancelled)
    }
}

type NotifyTask = tokio::task::JoinHandle<RxResult<Vec<ChangeEvent>>>;

struct Real {
    views: Vec<Arc<VNetRoot>>,
    fcbs: Vec<Arc<Fcb>>,
    handles: Vec<Arc<Fobx>>,
    notifies: Vec<(RxContext, Option<NotifyTask>)>,
}

async fn end_notify(real: &mut Real, n: usize) {
    if let Some(t) = real.notifies[n].1.take() {
        assert!(bounded(t).await.unwrap().is_err());
    }
}

/// Run `ops` on a fresh environment from `mk` and on the model; they must agree on every
/// status and on which objects remain.
pub async fn run(mk: MakeEnv, ops: Vec<Op>) {
    let env = mk(rdr_core::RdbssConfig::default());
    let mut m = Model::default();
    let mut r = Real {
        views: vec![],
        fcbs: vec![],
        handles: vec![],
        notifies: vec![],
    };
    for op in ops {
        match op {
            Op::Add(s) => {
                let v = env.view(s as u32 + 1).await;
                match m.slots[s].filter(|&vi| m.views[vi].in_table) {
                    Some(vi) => {
                        assert!(Arc::ptr_eq(&v, &r.views[vi]), "the live view is reused");
                        m.views[vi].x = true;
                    }
                    None => {
                        m.views.push(MView {
                            in_table: true,
                            x: true,
                            d: false,
                            freed: false,
                        });
                        m.slots[s] = Some(m.views.len() - 1);
                        r.views.push(v);
                    }
                }
            }
            Op::Open(s, p) => {
                let Some(vi) = m.slots[s] else { continue };
                let (path, dir) = PATHS[p];
                let res = env.try_open(&r.views[vi], path, dir).await;
                if !m.views[vi].in_table {
                    assert_eq!(
                        res.unwrap_err().nt_status(),
                        NtStatus::STATUS_BAD_NETWORK_NAME
                    );
                    continue;
                }
                let h = res.unwrap();
                let f = match m
                    .fcbs
                    .iter()
                    .position(|f| f.path == p && !f.freed && !f.orphaned)
                {
                    Some(f) => {
                        assert!(Arc::ptr_eq(h.fcb(), &r.fcbs[f]), "one FCB per name");
                        f
                    }
                    None => {
                        m.fcbs.push(MFcb {
                            path: p,
                            is_dir: dir,
                            creator: vi,
                            orphaned: false,
                            freed: false,
                        });
                        r.fcbs.push(h.fcb().clone());
                        m.fcbs.len() - 1
                    }
                };
                m.handles.push(MHandle {
                    view: vi,
                    fcb: f,
                    open: true,
                    orphaned: false,
                });
                r.handles.push(h);
            }
            Op::Close(i) => {
                let open: Vec<usize> = (0..m.handles.len())
                    .filter(|&h| m.handles[h].open)
                    .collect();
                if open.is_empty() {
                    continue;
                }
                let h = open[i % open.len()];
                env.rdbss.close(&r.handles[h]).await.unwrap();
                m.handles[h].open = false;
                for n in 0..m.notifies.len() {
                    if m.notifies[n].handle == h && m.notifies[n].pending {
                        m.notifies[n].pending = false;
                        end_notify(&mut r, n).await;
                    }
                }
                let f = m.handles[h].fcb;
                m.settle_fcb(f);
            }
            Op::Notify(i) => {
                let dirs: Vec<usize> = (0..m.handles.len())
                    .filter(|&h| m.handles[h].open && m.fcbs[m.handles[h].fcb].is_dir)
                    .collect();
                if dirs.is_empty() {
                    continue;
                }
                let h = dirs[i % dirs.len()];
                let fobx = r.handles[h].clone();
                if m.handles[h].orphaned {
                    let e = env
                        .rdbss
                        .notify_change(&fobx, notify_filter::ALL, false, &RxContext::new())
                        .await;
                    assert_eq!(
                        e.unwrap_err().nt_status(),
                        NtStatus::STATUS_UNEXPECTED_NETWORK_ERROR
                    );
                    continue;
                }
                let ctx = RxContext::new();
                let v = fobx.v_net_root().clone();
                let before = v.number_of_pending_requests();
                let task = {
                    let rd = env.rdbss.clone();
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        rd.notify_change(&fobx, notify_filter::ALL, false, &ctx)
                            .await
                    })
                };
                bounded(async {
                    while v.number_of_pending_requests() <= before {
                        tokio::task::yield_now().await;
                    }
                })
                .await;
                m.notifies.push(MNotify {
                    handle: h,
                    pending: true,
                });
                r.notifies.push((ctx, Some(task)));
            }
            Op::Cancel(i) => {
                let pending: Vec<usize> = (0..m.notifies.len())
                    .filter(|&n| m.notifies[n].pending)
                    .collect();
                if pending.is_empty() {
                    continue;
                }
                let n = pending[i % pending.len()];
                r.notifies[n].0.cancel();
                m.notifies[n].pending = false;
                end_notify(&mut r, n).await;
            }
            Op::Finalize(s, force) => {
                let Some(vi) = m.slots[s] else { continue };
                let v = r.views[vi].clone();
                let o = bounded(env.rdbss.finalize_connection(
                    &v.net_root(),
                    Some(&v),
                    force,
                    &RxContext::new(),
                ))
                .await;
                let (want, cancelled) = m.finalize(vi, force);
                assert_eq!(o.status, want, "finalize {force:?}");
                assert_eq!(o.cancelled.len(), cancelled.len(), "cancelled requests");
                for n in cancelled {
                    end_notify(&mut r, n).await;
                }
            }
        }
        m.settle_views();
        // The surviving objects agree.
        let in_table = env.rdbss.connections();
        for (vi, mv) in m.views.iter().enumerate() {
            let rv = &r.views[vi];
            assert_eq!(
                in_table.iter().any(|c| Arc::ptr_eq(c, rv)),
                mv.in_table,
                "view {vi} in the name table"
            );
            assert_eq!(rv.is_freed(), mv.freed, "view {vi} finalized");
            assert_eq!(
                rv.has_additional_reference(),
                mv.x,
                "view {vi} extra reference"
            );
            assert_eq!(rv.number_of_fobxs(), m.k(vi), "view {vi} NumberOfFobxs");
        }
        for (h, mh) in m.handles.iter().enumerate() {
            if mh.open {
                assert_eq!(
                    r.handles[h].is_orphaned(),
                    mh.orphaned,
                    "handle {h} orphaned"
                );
            }
        }
    }
    // Close everything: counts return to their thresholds and the server holds nothing.
    for h in 0..m.handles.len() {
        if m.handles[h].open {
            env.rdbss.close(&r.handles[h]).await.unwrap();
        }
    }
    for n in 0..r.notifies.len() {
        if let Some(t) = r.notifies[n].1.take() {
            assert!(bounded(t).await.unwrap().is_err());
        }
    }
    env.assert_server_opens(0, "server opens");
    for v in &r.views {
        assert_eq!(v.number_of_fobxs(), 0);
        assert_eq!(v.number_of_pending_requests(), 0);
        if !v.is_freed() {
            assert_eq!(v.reference_count(), 1 + v.has_additional_reference() as u32);
        }
    }
    for nr in env.rdbss.net_roots() {
        assert_eq!(nr.number_of_fcbs(), 0);
    }
}
