//! The connection and file object model: construction, lookup, counts, delayed close, dormant
//! SrvCalls, orphaned handles — scenarios over any [`Fixture`]; `connection_model_tests!` turns
//! them into named tests.

use crate::*;
use rdr_core::minirdr::*;
use rdr_core::name::RemoteName;
use rdr_core::{ForceLevel, NtStatus, RdbssConfig, RxContext};
use std::sync::Arc;
use std::time::Duration;

fn ok(o: &rdr_core::inventory::FinalizeOutcome) {
    assert_eq!(o.status, NtStatus::STATUS_SUCCESS, "{o:?}");
}

/// Scenario: two concurrent add connections construct one srv call net root and view.
pub async fn two_concurrent_add_connections_construct_one_srv_call_net_root_and_view(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    env.probe.srv_call_gate.close();
    let spawn = |r: rdr_core::Rdbss| {
        tokio::spawn(async move {
            r.add_connection(
                &RemoteName::parse(SHARE).unwrap(),
                Credentials {
                    logon_id: 7,
                    ..Default::default()
                },
                &RxContext::new(),
            )
            .await
        })
    };
    let a = spawn(env.rdbss.clone());
    let b = spawn(env.rdbss.clone());
    env.probe.srv_call_gate.wait_entered(1).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    env.probe.srv_call_gate.open();
    let (a, b) = bounded(async { (a.await.unwrap().unwrap(), b.await.unwrap().unwrap()) }).await;
    assert!(Arc::ptr_eq(&a, &b), "both callers share one view");
    assert_eq!(env.probe.count(&env.probe.counters.srv_call_creates), 1);
    assert_eq!(env.probe.count(&env.probe.counters.v_net_root_creates), 1);
    assert_eq!(env.rdbss.net_roots().len(), 1);
    assert_eq!(env.rdbss.srv_calls().len(), 1);
    assert_eq!(a.condition(), rdr_core::condition::ConditionState::Good);
    // name table + the one extra reference
    assert_eq!(a.reference_count(), 2);
}

/// Scenario: a failing construction fails every waiter.
pub async fn a_failing_construction_fails_every_waiter(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    *env.probe.fail_srv_call.lock() = Some(NtStatus::STATUS_NETWORK_UNREACHABLE);
    env.probe.srv_call_gate.close();
    let spawn = |r: rdr_core::Rdbss| {
        tokio::spawn(async move {
            r.add_connection(
                &RemoteName::parse(SHARE).unwrap(),
                Credentials::default(),
                &RxContext::new(),
            )
            .await
        })
    };
    let a = spawn(env.rdbss.clone());
    let b = spawn(env.rdbss.clone());
    env.probe.srv_call_gate.wait_entered(1).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    env.probe.srv_call_gate.open();
    let (a, b) = bounded(async { (a.await.unwrap(), b.await.unwrap()) }).await;
    assert_eq!(
        a.unwrap_err().nt_status(),
        NtStatus::STATUS_NETWORK_UNREACHABLE
    );
    assert_eq!(
        b.unwrap_err().nt_status(),
        NtStatus::STATUS_NETWORK_UNREACHABLE
    );
    assert_eq!(env.probe.count(&env.probe.counters.srv_call_creates), 1);
    assert!(env.rdbss.srv_calls().is_empty());
    // The failure is not remembered: a later attempt constructs again.
    *env.probe.fail_srv_call.lock() = None;
    let v = env.view(0).await;
    assert_eq!(v.condition(), rdr_core::condition::ConditionState::Good);
}

/// Scenario: a failing view construction leaves nothing but a dormant server.
pub async fn a_failing_view_construction_leaves_nothing_but_a_dormant_server(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    *env.probe.fail_v_net_root.lock() = Some(NtStatus::STATUS_BAD_NETWORK_NAME);
    let e = env
        .rdbss
        .add_connection(
            &RemoteName::parse(SHARE).unwrap(),
            Credentials::default(),
            &RxContext::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.nt_status(), NtStatus::STATUS_BAD_NETWORK_NAME);
    assert!(env.rdbss.connections().is_empty());
    assert!(env.rdbss.net_roots().is_empty());
    let sc = env.rdbss.srv_calls();
    assert_eq!(sc.len(), 1);
    assert!(sc[0].is_dormant());
    assert_eq!(sc[0].reference_count(), 1);
}

/// Scenario: each identity gets its own view of one net root.
pub async fn each_identity_gets_its_own_view_of_one_net_root(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v1 = env.view(1).await;
    let v2 = env.view(2).await;
    assert!(!Arc::ptr_eq(&v1, &v2));
    assert!(Arc::ptr_eq(&v1.net_root(), &v2.net_root()));
    assert_eq!(env.probe.count(&env.probe.counters.srv_call_creates), 1);
    assert_eq!(env.probe.count(&env.probe.counters.v_net_root_creates), 2);
    let nr = v1.net_root();
    assert_eq!(nr.number_of_v_net_roots(), 2);
    assert_eq!(nr.reference_count(), 3); // table + two views
    assert_eq!(nr.srv_call().reference_count(), 2); // table + net root
    // The same identity again: the same view, still one extra reference.
    let v1b = env.view(1).await;
    assert!(Arc::ptr_eq(&v1, &v1b));
    assert_eq!(v1.reference_count(), 2);
    assert_eq!(env.rdbss.connections().len(), 2);
}

/// Scenario: lookup is longest prefix per logon id.
pub async fn lookup_is_longest_prefix_per_logon_id(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let (hit, rest) = env.rdbss.lookup(r"\\SRV\Share\a\b", 1).unwrap();
    assert!(Arc::ptr_eq(&hit, &v));
    assert_eq!(rest, r"a\b");
    assert!(env.rdbss.lookup(r"\\srv\share", 2).is_none());
    assert!(env.rdbss.lookup(r"\\other\share", 1).is_none());
    let sub = env.view_of(r"\\srv\share\d", 1).await;
    assert_eq!(sub.prefix(), "d");
    let (hit, rest) = env.rdbss.lookup("//srv/share/D/x", 1).unwrap();
    assert!(Arc::ptr_eq(&hit, &sub));
    assert_eq!(rest, "x");
    let (hit, _) = env.rdbss.lookup("//srv/share/e", 1).unwrap();
    assert!(Arc::ptr_eq(&hit, &v));
    // Opens through the sub-path view land under its prefix.
    env.fx.make_file(r"d\x", b"x");
    let h = env.open(&sub, "x").await;
    assert_eq!(h.share_path(), r"d\x");
    assert_eq!(h.path(), "x");
}

/// Scenario: counts return to their thresholds after open and close.
pub async fn counts_return_to_their_thresholds_after_open_and_close(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let nr = v.net_root();
    let f1 = env.open(&v, "f").await;
    let f2 = env.open(&v, "F").await; // same FCB, case-insensitive; collapses onto one SrvOpen
    let d = env.open_dir(&v, "d").await;
    let root = env.open_dir(&v, "").await;
    assert!(Arc::ptr_eq(f1.fcb(), f2.fcb()));
    assert!(Arc::ptr_eq(f1.srv_open(), f2.srv_open()));
    assert_eq!(f1.fcb().counts(), (2, 2, 2)); // table + one SrvOpen; two handles
    assert_eq!(f1.srv_open().counts(), (3, 2)); // open + two Fobxs
    assert_eq!(v.number_of_fobxs(), 4);
    assert_eq!(nr.number_of_fcbs(), 3);
    assert_eq!(nr.number_of_srv_opens(), 3);
    assert_eq!(v.reference_count(), 2 + 3 + 3); // table, extra, 3 FCBs, 3 SrvOpens
    env.assert_server_opens(3, "server opens");
    for h in [&f1, &f2, &d, &root] {
        env.rdbss.close(h).await.unwrap();
    }
    assert_eq!(
        env.rdbss.close(&f1).await.unwrap_err().nt_status(),
        NtStatus::STATUS_FILE_CLOSED
    );
    assert_eq!(v.number_of_fobxs(), 0);
    assert_eq!(nr.number_of_fcbs(), 0);
    assert_eq!(nr.number_of_srv_opens(), 0);
    assert_eq!(nr.fcb_table_len(), 0);
    assert_eq!(v.reference_count(), 2);
    assert_eq!(nr.reference_count(), 2);
    assert_eq!(nr.srv_call().reference_count(), 2);
    env.assert_server_opens(0, "server opens");
    assert_eq!(f1.fcb().counts(), (1, 0, 0));
    assert_eq!(f1.srv_open().counts(), (0, 0));
}

/// Scenario: byte range locks conflict between handles sharing a srv open.
pub async fn byte_range_locks_conflict_between_handles_sharing_a_srv_open(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let a = env.open(&v, "f").await;
    let b = env.open(&v, "f").await;
    assert!(Arc::ptr_eq(a.srv_open(), b.srv_open()));
    let r = LockRange {
        offset: 0,
        length: 10,
        exclusive: true,
    };
    env.rdbss
        .lock(&a, r, false, &RxContext::new())
        .await
        .unwrap();
    let e = env
        .rdbss
        .lock(&b, r, false, &RxContext::new())
        .await
        .unwrap_err();
    assert_eq!(e.nt_status(), NtStatus::STATUS_LOCK_NOT_GRANTED);
    let inv = env.rdbss.inventory(&v);
    let ha = inv.handles.iter().find(|h| h.id == a.id()).unwrap();
    assert_eq!(ha.locks, vec![r]);
    // A waiting lock is granted when the holder closes.
    let waiter = {
        let r2 = env.rdbss.clone();
        let b = b.clone();
        tokio::spawn(async move { r2.lock(&b, r, true, &RxContext::new()).await })
    };
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(
        env.rdbss
            .inventory(&v)
            .pending
            .iter()
            .any(|p| p.kind == rdr_core::rx_context::RequestKind::Lock)
    );
    env.rdbss.close(&a).await.unwrap();
    bounded(waiter).await.unwrap().unwrap();
    env.rdbss.unlock(&b, r, &RxContext::new()).await.unwrap();
    assert_eq!(
        env.rdbss
            .unlock(&b, r, &RxContext::new())
            .await
            .unwrap_err()
            .nt_status(),
        NtStatus::STATUS_RANGE_NOT_LOCKED
    );
    env.rdbss.close(&b).await.unwrap();
}

fn caching_env(mk: MakeEnv, config: RdbssConfig) -> Env {
    let env = mk(config);
    env.probe.grant.lock().handle_caching = true;
    env
}

/// Scenario: delayed close is reused by a compatible open and expires.
pub async fn delayed_close_is_reused_by_a_compatible_open_and_expires(mk: MakeEnv) {
    let env = caching_env(mk, RdbssConfig::default());
    let v = env.view(1).await;
    let h = env.open(&v, "f").await;
    let so = h.srv_open().clone();
    env.rdbss.close(&h).await.unwrap();
    env.assert_server_opens(1, "the close is delayed");
    assert!(so.is_close_delayed());
    assert_eq!(v.net_root().srv_call().number_of_close_delayed_files(), 1);
    assert_eq!(v.number_of_fobxs(), 0);
    // A compatible open reuses it: no new server open.
    let h2 = env.open(&v, "F").await;
    assert!(Arc::ptr_eq(h2.srv_open(), &so));
    assert_eq!(env.probe.count(&env.probe.counters.opens), 1);
    assert_eq!(v.net_root().srv_call().number_of_close_delayed_files(), 0);
    // A different access mode does not collapse (the share mode admits h2's writes, so a real
    // server grants the open).
    let p = CreateParams::open_existing(AccessMask::FILE_READ_DATA);
    let h3 = env
        .rdbss
        .create(&v, "f", &p, &RxContext::new())
        .await
        .unwrap();
    assert!(!Arc::ptr_eq(h3.srv_open(), &so));
    env.rdbss.close(&h3).await.unwrap();
    env.rdbss.close(&h2).await.unwrap();
    env.assert_server_opens(2, "server opens");
    // Not yet expired.
    env.clock.advance(Duration::from_secs(4));
    env.rdbss.scavenge().await;
    env.assert_server_opens(2, "server opens");
    env.clock.advance(Duration::from_secs(2));
    env.rdbss.scavenge().await;
    env.assert_server_opens(0, "server opens");
    assert_eq!(v.net_root().number_of_fcbs(), 0);
    assert_eq!(v.reference_count(), 2);
}

/// Scenario: no delayed close for directories delete on close or without handle caching.
pub async fn no_delayed_close_for_directories_delete_on_close_or_without_handle_caching(
    mk: MakeEnv,
) {
    let env = caching_env(mk, RdbssConfig::default());
    let v = env.view(1).await;
    let d = env.open_dir(&v, "d").await;
    env.rdbss.close(&d).await.unwrap();
    env.assert_server_opens(0, "server opens");
    let mut p = CreateParams::open_existing(AccessMask::FILE_READ_DATA | AccessMask::DELETE);
    p.options = CreateOptions::DELETE_ON_CLOSE;
    let h = env
        .rdbss
        .create(&v, "g", &p, &RxContext::new())
        .await
        .unwrap();
    env.rdbss.close(&h).await.unwrap();
    env.assert_server_opens(0, "server opens");
    env.probe.grant.lock().handle_caching = false;
    let h = env.open(&v, "f").await;
    env.rdbss.close(&h).await.unwrap();
    env.assert_server_opens(0, "server opens");
}

/// Scenario: delayed closes are capped per srv call.
pub async fn delayed_closes_are_capped_per_srv_call(mk: MakeEnv) {
    let env = caching_env(
        mk,
        RdbssConfig {
            max_delayed_close: 1,
            ..Default::default()
        },
    );
    let v = env.view(1).await;
    let f = env.open(&v, "f").await;
    let g = env.open(&v, "g").await;
    env.rdbss.close(&f).await.unwrap();
    env.rdbss.close(&g).await.unwrap();
    env.assert_server_opens(1, "server opens");
    assert_eq!(v.net_root().srv_call().number_of_close_delayed_files(), 1);
}

/// Scenario: delayed closes are closed when the view is finalized.
pub async fn delayed_closes_are_closed_when_the_view_is_finalized(mk: MakeEnv) {
    let env = caching_env(mk, RdbssConfig::default());
    let v = env.view(1).await;
    let f = env.open(&v, "f").await;
    env.rdbss.close(&f).await.unwrap();
    env.assert_server_opens(1, "server opens");
    let o = env
        .rdbss
        .finalize_connection(&v.net_root(), Some(&v), ForceLevel::No, &RxContext::new())
        .await;
    ok(&o);
    env.assert_server_opens(0, "server opens");
    assert!(v.is_freed());
}

/// Scenario: a dormant srv call is reused then expires.
pub async fn a_dormant_srv_call_is_reused_then_expires(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    ok(&env
        .rdbss
        .finalize_connection(&v.net_root(), Some(&v), ForceLevel::No, &RxContext::new())
        .await);
    let sc = v.net_root().srv_call().clone();
    assert!(sc.is_dormant());
    assert_eq!(env.probe.count(&env.probe.counters.srv_call_finalizes), 0);
    // Reused before the linger time is up.
    env.clock.advance(Duration::from_secs(30));
    env.rdbss.scavenge().await;
    let v2 = env.view(1).await;
    assert!(Arc::ptr_eq(v2.net_root().srv_call(), &sc));
    assert!(!sc.is_dormant());
    assert_eq!(env.probe.count(&env.probe.counters.srv_call_creates), 1);
    ok(&env
        .rdbss
        .finalize_connection(&v2.net_root(), Some(&v2), ForceLevel::No, &RxContext::new())
        .await);
    env.clock.advance(Duration::from_secs(59));
    env.rdbss.scavenge().await;
    assert!(!sc.is_finalized());
    env.clock.advance(Duration::from_secs(2));
    env.rdbss.scavenge().await;
    assert!(sc.is_finalized());
    assert_eq!(env.probe.count(&env.probe.counters.srv_call_finalizes), 1);
    assert!(env.rdbss.srv_calls().is_empty());
    let _v3 = env.view(1).await;
    assert_eq!(env.probe.count(&env.probe.counters.srv_call_creates), 2);
}

/// Scenario: the configured linger overrides the mini redirectors.
pub async fn the_configured_linger_overrides_the_mini_redirectors(mk: MakeEnv) {
    let env = mk(RdbssConfig {
        srv_call_linger: Some(Duration::from_secs(5)),
        ..Default::default()
    });
    let v = env.view(1).await;
    ok(&env
        .rdbss
        .finalize_connection(&v.net_root(), Some(&v), ForceLevel::No, &RxContext::new())
        .await);
    env.clock.advance(Duration::from_secs(6));
    env.rdbss.scavenge().await;
    assert_eq!(env.probe.count(&env.probe.counters.srv_call_finalizes), 1);
}

/// Scenario: close transport closes only a dormant srv call.
pub async fn close_transport_closes_only_a_dormant_srv_call(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    assert!(!env.rdbss.close_transport("SRV").await, "in use");
    ok(&env
        .rdbss
        .finalize_connection(&v.net_root(), Some(&v), ForceLevel::No, &RxContext::new())
        .await);
    assert!(env.rdbss.close_transport("SRV").await);
    assert_eq!(env.probe.count(&env.probe.counters.srv_call_finalizes), 1);
    assert!(env.rdbss.srv_calls().is_empty());
}

/// Scenario: orphaned and closed handles report clear errors.
pub async fn orphaned_and_closed_handles_report_clear_errors(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let h = env.open(&v, "f").await;
    assert_eq!(
        env.rdbss.read(&h, 0, 5, &RxContext::new()).await.unwrap(),
        "hello"
    );
    env.rdbss.close(&h).await.unwrap();
    let e = env
        .rdbss
        .read(&h, 0, 5, &RxContext::new())
        .await
        .unwrap_err();
    assert_eq!(e.nt_status(), NtStatus::STATUS_FILE_CLOSED);
    let e = env.try_open(&v, "missing", false).await.unwrap_err();
    assert_eq!(e.nt_status(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    let e = env.try_open(&v, "a*b", false).await.unwrap_err();
    assert_eq!(e.nt_status(), NtStatus::STATUS_OBJECT_NAME_INVALID);
    // A failed open leaves no FCB behind.
    assert_eq!(v.net_root().number_of_fcbs(), 0);
    assert_eq!(v.reference_count(), 2);
}

/// Scenario: inventory lists handles and pending requests.
pub async fn inventory_lists_handles_and_pending_requests(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let d = env.open_dir(&v, "d").await;
    let f = env.open(&v, "f").await;
    let n = env.start_notify(&d).await;
    let inv = env.rdbss.inventory(&v);
    assert_eq!(inv.remote, SHARE);
    assert_eq!(inv.logon_id, 1);
    assert_eq!(inv.handles.len(), 2);
    assert_eq!(inv.handles[0].path, "d");
    assert!(inv.handles[0].is_dir);
    assert_eq!(inv.handles[1].path, "f");
    assert_eq!(inv.pending.len(), 1);
    assert_eq!(
        inv.pending[0].kind,
        rdr_core::rx_context::RequestKind::NotifyChange
    );
    assert_eq!(inv.pending[0].path, "d");
    // Closing the directory handle ends its notification (cleanup cancels it).
    env.rdbss.close(&d).await.unwrap();
    assert!(bounded(n).await.unwrap().is_err());
    env.rdbss.close(&f).await.unwrap();
    assert!(env.rdbss.inventory(&v).pending.is_empty());
    let vol = env.rdbss.query_volume(&v, &RxContext::new()).await.unwrap();
    assert_eq!(vol.block_size, 4096);
    let i = env
        .rdbss
        .query_path_info(&v, "f", &RxContext::new())
        .await
        .unwrap();
    assert_eq!(i.size, 5);
    assert_eq!(v.reference_count(), 2);
}

/// Scenario: spawn scavenger runs passes periodically.
pub async fn spawn_scavenger_runs_passes_periodically(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    ok(&env
        .rdbss
        .finalize_connection(&v.net_root(), Some(&v), ForceLevel::No, &RxContext::new())
        .await);
    let task = env.rdbss.spawn_scavenger(Duration::from_millis(1));
    env.clock.advance(Duration::from_secs(61));
    bounded(async {
        while env.probe.count(&env.probe.counters.srv_call_finalizes) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(env.rdbss.srv_calls().is_empty());
    task.abort();
}

/// Front ends spawn these futures on a multi-threaded runtime: they must be `Send`.
#[allow(dead_code)]
fn every_public_future_is_send(
    r: &rdr_core::Rdbss,
    v: &Arc<rdr_core::v_net_root::VNetRoot>,
    f: &Arc<rdr_core::fobx::Fobx>,
    c: &RxContext,
    p: &CreateParams,
    n: &RemoteName,
) {
    fn send<T: Send>(_: T) {}
    let range = LockRange {
        offset: 0,
        length: 1,
        exclusive: true,
    };
    send(r.add_connection(n, Credentials::default(), c));
    send(r.create(v, "x", p, c));
    send(r.read(f, 0, 1, c));
    send(r.write(f, 0, bytes::Bytes::new(), c));
    send(r.flush(f, c));
    send(r.query_info(f, c));
    send(r.query_path_info(v, "x", c));
    send(r.set_info(f, &SetInfo::EndOfFile(0), c));
    send(r.query_directory(f, None, true, c));
    send(r.notify_change(f, 0, false, c));
    send(r.lock(f, range, true, c));
    send(r.unlock(f, range, c));
    send(r.query_volume(v, c));
    send(r.close(f));
    send(r.finalize_connection(&v.net_root(), Some(v), ForceLevel::Yes, c));
    send(r.finalize_all_connections(&v.net_root(), ForceLevel::Yes, c));
    send(r.scavenge());
    send(r.close_transport("x"));
}

/// Scenario: a sharing violation closes our delayed closes and retries once.
pub async fn a_sharing_violation_closes_our_delayed_closes_and_retries_once(mk: MakeEnv) {
    let env = caching_env(mk, RdbssConfig::default());
    let v = env.view(1).await;
    let h = env.open(&v, "f").await;
    env.rdbss.close(&h).await.unwrap();
    env.assert_server_opens(1, "delayed");
    env.probe
        .exclusive_opens
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // A different access mode cannot collapse; the server refuses while our delayed open lives.
    let p = CreateParams::open_existing(AccessMask::FILE_READ_DATA);
    let h2 = env
        .rdbss
        .create(&v, "f", &p, &RxContext::new())
        .await
        .unwrap();
    env.assert_server_opens(1, "the delayed open was closed, the new one opened");
    assert_eq!(v.net_root().srv_call().number_of_close_delayed_files(), 0);
    // A real conflict with an open handle is still reported (after one retry).
    let mut q = CreateParams::open_existing(AccessMask::FILE_WRITE_DATA);
    q.share = ShareAccess::empty();
    let e = env
        .rdbss
        .create(&v, "f", &q, &RxContext::new())
        .await
        .unwrap_err();
    assert_eq!(e.nt_status(), NtStatus::STATUS_SHARING_VIOLATION);
    env.rdbss.close(&h2).await.unwrap();
    env.clock.advance(Duration::from_secs(10));
    env.rdbss.scavenge().await;
    assert_eq!(v.net_root().number_of_fcbs(), 0);
    env.assert_server_opens(0, "all closed");
}

/// Scenario: rename and delete close delayed opens and stop collapsing.
pub async fn rename_and_delete_close_delayed_opens_and_stop_collapsing(mk: MakeEnv) {
    let env = caching_env(mk, RdbssConfig::default());
    let v = env.view(1).await;
    let f = env.open(&v, "f").await;
    env.rdbss.close(&f).await.unwrap();
    env.assert_server_opens(1, "delayed");
    let g = env.open(&v, "g").await;
    let info = SetInfo::Rename {
        new_path: "h".into(),
        replace: false,
    };
    env.rdbss
        .set_info(&g, &info, &RxContext::new())
        .await
        .unwrap();
    env.assert_server_opens(1, "f's delayed open was closed before the rename");
    // The renamed FCB left the table: a new open of "g" builds a fresh one (and fails: gone).
    assert!(env.try_open(&v, "g", false).await.is_err());
    let h = env.open(&v, "h").await;
    assert!(!Arc::ptr_eq(h.fcb(), g.fcb()));
    env.rdbss.close(&g).await.unwrap();
    env.rdbss
        .set_info(&h, &SetInfo::Disposition(true), &RxContext::new())
        .await
        .unwrap();
    env.rdbss.close(&h).await.unwrap();
    env.assert_server_opens(0, "renamed and delete-pending opens are not delayed");
}

fn break_env(mk: MakeEnv) -> Env {
    let env = mk(RdbssConfig {
        write_behind_limit: 1 << 20,
        ..Default::default()
    });
    *env.probe.grant.lock() = BufferingState {
        read_caching: true,
        write_caching: true,
        handle_caching: true,
    };
    env
}

/// Scenario: a break of write caching flushes dirty data before it may be acknowledged, and
/// later writes go straight to the server.
pub async fn a_break_of_write_caching_flushes_before_the_ack_then_writes_go_through(mk: MakeEnv) {
    let env = break_env(mk);
    let v = env.view(1).await;
    let f = env.open(&v, "f").await;
    env.probe.write_gate.close();
    env.rdbss
        .write(&f, 0, bytes::Bytes::from_static(b"HE"), &RxContext::new())
        .await
        .unwrap();
    env.probe.write_gate.wait_entered(1).await;
    let brk = {
        let r = env.rdbss.clone();
        tokio::spawn(async move {
            r.change_buffering_state(b"f", BufferingState::default(), &RxContext::new())
                .await
        })
    };
    tokio::task::yield_now().await;
    assert!(!brk.is_finished(), "the break waits for the dirty write");
    assert_eq!(env.content("f").unwrap(), b"hello");
    env.probe.write_gate.open();
    let change = bounded(brk).await.unwrap();
    assert_eq!(change.opens, 1);
    assert_eq!(change.paths, vec!["f".to_string()]);
    assert!(change.unflushed.is_empty());
    assert_eq!(
        env.content("f").unwrap(),
        b"HEllo",
        "on the server before the ack"
    );
    assert!(!f.buffering().write_caching && !f.buffering().read_caching);
    // Write-through now: when write returns, the server has the data.
    env.rdbss
        .write(&f, 2, bytes::Bytes::from_static(b"LL"), &RxContext::new())
        .await
        .unwrap();
    assert_eq!(env.content("f").unwrap(), b"HELLo");
    assert_eq!(env.rdbss.inventory(&v).handles[0].dirty_bytes, 0);
    // A break for a key no open has changes nothing.
    let none = env
        .rdbss
        .change_buffering_state(b"nothing", BufferingState::default(), &RxContext::new())
        .await;
    assert_eq!(none.opens, 0);
    env.rdbss.close(&f).await.unwrap();
}

/// Scenario: a break of handle caching closes the file's delayed closes.
pub async fn a_break_of_handle_caching_closes_delayed_closes(mk: MakeEnv) {
    let env = break_env(mk);
    let v = env.view(1).await;
    let f = env.open(&v, "f").await;
    let g = env.open(&v, "g").await;
    env.rdbss.close(&f).await.unwrap();
    env.rdbss.close(&g).await.unwrap();
    env.assert_server_opens(2, "both closes are delayed");
    let keep_rw = BufferingState {
        read_caching: true,
        write_caching: true,
        handle_caching: false,
    };
    let change = env
        .rdbss
        .change_buffering_state(b"f", keep_rw, &RxContext::new())
        .await;
    assert_eq!((change.opens, change.closed_delayed), (1, 1));
    env.assert_server_opens(1, "only g's delayed close is left");
    assert_eq!(v.net_root().srv_call().number_of_close_delayed_files(), 1);
}

/// Scenario: a break that arrives after the server granted a create its lease but before the
/// new open entered the FCB table finds no open, is acknowledged, and still lowers the open
/// (RDBSS's NumberOfOutstandingOpens): its writes then go straight to the server.
pub async fn a_break_during_a_create_lowers_the_new_open(mk: MakeEnv) {
    let env = break_env(mk);
    let v = env.view(1).await;
    env.probe.created_gate.close();
    let opening = {
        let (r, v) = (env.rdbss.clone(), v.clone());
        let p =
            CreateParams::open_existing(AccessMask::FILE_READ_DATA | AccessMask::FILE_WRITE_DATA);
        tokio::spawn(async move { r.create(&v, "f", &p, &RxContext::new()).await })
    };
    env.probe.created_gate.wait_entered(1).await;
    let change = env
        .rdbss
        .change_buffering_state(b"f", BufferingState::default(), &RxContext::new())
        .await;
    assert_eq!(change.opens, 0, "the open is not in the table yet");
    env.probe.created_gate.open();
    let f = bounded(opening).await.unwrap().unwrap();
    let b = f.buffering();
    assert!(
        !b.write_caching && !b.read_caching && !b.handle_caching,
        "the open keeps what the break took away: {b:?}"
    );
    env.rdbss
        .write(&f, 0, bytes::Bytes::from_static(b"HE"), &RxContext::new())
        .await
        .unwrap();
    assert_eq!(env.content("f").unwrap(), b"HEllo", "written through");
    env.rdbss.close(&f).await.unwrap();
    // A later open (no break since it started) gets what the server grants.
    let g = env.open(&v, "f").await;
    assert!(g.buffering().write_caching);
    env.rdbss.close(&g).await.unwrap();
}
