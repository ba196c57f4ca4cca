//! `finalize_connection`: one scenario per row of the §3.3 decision table and per DESIGN.md
//! decision 1–9, over any [`Fixture`]. `finalize_table_tests!` turns them into named tests.

use crate::*;
use bytes::Bytes;
use rdr_core::inventory::FinalizeOutcome;
use rdr_core::minirdr::*;
use rdr_core::v_net_root::VNetRoot;
use rdr_core::{ForceLevel, NtStatus, RdbssConfig, RxContext, RxError};
use std::sync::Arc;
use std::time::Duration;

async fn fin(env: &Env, v: &Arc<VNetRoot>, force: ForceLevel) -> FinalizeOutcome {
    bounded(
        env.rdbss
            .finalize_connection(&v.net_root(), Some(v), force, &RxContext::new()),
    )
    .await
}

fn in_name_table(env: &Env, v: &Arc<VNetRoot>) -> bool {
    env.rdbss.connections().iter().any(|c| Arc::ptr_eq(c, v))
}

/// Scenario: row1 force succeeds cancels orphans and removes the view.
pub async fn row1_force_succeeds_cancels_orphans_and_removes_the_view(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let f = env.open(&v, "f").await;
    let d = env.open_dir(&v, "d").await;
    let n = env.start_notify(&d).await;
    let o = fin(&env, &v, ForceLevel::Yes).await;
    assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
    assert!(o.view_removed);
    assert_eq!(o.open_handles.len(), 2);
    assert_eq!(o.cancelled.len(), 1);
    assert!(!in_name_table(&env, &v));
    assert!(env.rdbss.lookup(SHARE, 1).is_none());
    assert!(!v.has_additional_reference());
    // The notification ended; the handles are orphaned and the server holds nothing.
    let e = bounded(n).await.unwrap().unwrap_err();
    assert_eq!(e.nt_status(), NtStatus::STATUS_UNEXPECTED_NETWORK_ERROR);
    env.assert_server_opens(0, "server opens");
    assert!(f.is_orphaned() && d.is_orphaned());
    let e = env
        .rdbss
        .read(&f, 0, 1, &RxContext::new())
        .await
        .unwrap_err();
    assert!(matches!(e, RxError::Orphaned { .. }));
    assert_eq!(e.errno(), 5); // EIO at the mount
    // The view is finalized at once (its FCBs were orphaned); the share's last view went.
    assert!(v.is_freed());
    assert_eq!(env.probe.count(&env.probe.counters.v_net_root_finalizes), 1);
    assert_eq!(env.probe.count(&env.probe.counters.net_root_finalizes), 1);
    // Close still works and releases everything.
    env.rdbss.close(&f).await.unwrap();
    env.rdbss.close(&d).await.unwrap();
    assert_eq!(v.number_of_fobxs(), 0);
    assert_eq!(v.net_root().number_of_fcbs(), 0);
    assert_eq!(env.probe.count(&env.probe.counters.closes), 2);
    assert!(v.net_root().is_finalized());
}

/// Scenario: row2 no force with a pending notification changes nothing.
pub async fn row2_no_force_with_a_pending_notification_changes_nothing(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    env.probe.grant.lock().handle_caching = true;
    let v = env.view(1).await;
    let g = env.open(&v, "g").await;
    env.rdbss.close(&g).await.unwrap(); // a delayed close the walk would purge
    let d = env.open_dir(&v, "d").await;
    let n = env.start_notify(&d).await;
    let o = fin(&env, &v, ForceLevel::No).await;
    assert_eq!(o.status, NtStatus::STATUS_FILES_OPEN);
    assert!(o.cancelled.is_empty());
    assert!(!n.is_finished());
    assert!(v.has_additional_reference());
    assert!(in_name_table(&env, &v));
    env.assert_server_opens(2, "the delayed close was not purged");
    env.rdbss.close(&d).await.unwrap();
    assert!(bounded(n).await.unwrap().is_err());
}

/// Scenario: row3 no force with an open file purges only idle fcbs.
pub async fn row3_no_force_with_an_open_file_purges_only_idle_fcbs(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    env.probe.grant.lock().handle_caching = true;
    let v = env.view(1).await;
    let g = env.open(&v, "g").await;
    env.rdbss.close(&g).await.unwrap();
    let f = env.open(&v, "f").await;
    env.assert_server_opens(2, "server opens");
    let o = fin(&env, &v, ForceLevel::No).await;
    assert_eq!(o.status, NtStatus::STATUS_FILES_OPEN);
    assert_eq!(o.open_handles.len(), 1);
    assert_eq!(o.open_handles[0].path, "f");
    assert!(!o.view_removed);
    env.assert_server_opens(1, "the idle FCB's delayed close was purged");
    assert!(v.has_additional_reference());
    assert!(in_name_table(&env, &v));
    // The drive keeps working.
    assert_eq!(
        env.rdbss.read(&f, 0, 5, &RxContext::new()).await.unwrap(),
        "hello"
    );
    env.rdbss.close(&f).await.unwrap();
}

/// Scenario: row4 no force with only a directory open through the view is files open.
pub async fn row4_no_force_with_only_a_directory_open_through_the_view_is_files_open(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let d = env.open_dir(&v, "d").await;
    let o = fin(&env, &v, ForceLevel::No).await;
    assert_eq!(o.status, NtStatus::STATUS_FILES_OPEN);
    assert!(v.has_additional_reference());
    env.rdbss.close(&d).await.unwrap();
}

/// Scenario: row5 directory created by the view open only through another is connection in use.
pub async fn row5_directory_created_by_the_view_open_only_through_another_is_connection_in_use(
    mk: MakeEnv,
) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let w = env.view(2).await;
    let dv = env.open_dir(&v, "d").await; // Fcb.VNetRoot = v
    let dw = env.open_dir(&w, "d").await;
    assert!(Arc::ptr_eq(dv.fcb(), dw.fcb()));
    env.rdbss.close(&dv).await.unwrap();
    assert_eq!(v.number_of_fobxs(), 0);
    let o = fin(&env, &v, ForceLevel::No).await;
    assert_eq!(o.status, NtStatus::STATUS_CONNECTION_IN_USE);
    assert!(v.has_additional_reference());
    assert!(in_name_table(&env, &v));
    env.rdbss.close(&dw).await.unwrap();
    assert_eq!(
        fin(&env, &v, ForceLevel::No).await.status,
        NtStatus::STATUS_SUCCESS
    );
}

/// Scenario: row6 no force with nothing open succeeds and finalizes the view.
pub async fn row6_no_force_with_nothing_open_succeeds_and_finalizes_the_view(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let f = env.open(&v, "f").await;
    env.rdbss.close(&f).await.unwrap();
    let o = fin(&env, &v, ForceLevel::No).await;
    assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
    assert!(o.view_removed);
    assert!(v.connection_finalization_done());
    assert!(v.is_freed());
    assert!(!in_name_table(&env, &v));
    assert_eq!(env.probe.count(&env.probe.counters.v_net_root_finalizes), 1);
    assert_eq!(env.probe.count(&env.probe.counters.net_root_finalizes), 1);
    assert!(env.rdbss.net_roots().is_empty());
}

/// Scenario: row7 detach on close ignores notifications and drops the extra reference.
pub async fn row7_detach_on_close_ignores_notifications_and_drops_the_extra_reference(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let d = env.open_dir(&v, "d").await;
    let n = env.start_notify(&d).await;
    let o = fin(&env, &v, ForceLevel::DetachOnClose).await;
    assert_eq!(o.status, NtStatus::STATUS_FILES_OPEN);
    assert!(o.cancelled.is_empty());
    assert!(!n.is_finished(), "the notification was not cancelled");
    assert!(!v.has_additional_reference());
    assert!(in_name_table(&env, &v));
    assert_eq!(env.probe.count(&env.probe.counters.v_net_root_finalizes), 0);
    // The last handle's close finalizes the view.
    env.rdbss.close(&d).await.unwrap();
    assert!(bounded(n).await.unwrap().is_err());
    assert!(v.is_freed());
    assert!(!in_name_table(&env, &v));
    assert_eq!(env.probe.count(&env.probe.counters.v_net_root_finalizes), 1);
}

/// Scenario: row8 detach on close with an open file finalizes when it closes.
pub async fn row8_detach_on_close_with_an_open_file_finalizes_when_it_closes(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    env.probe.grant.lock().handle_caching = true;
    let v = env.view(1).await;
    let f = env.open(&v, "f").await;
    let o = fin(&env, &v, ForceLevel::DetachOnClose).await;
    assert_eq!(o.status, NtStatus::STATUS_FILES_OPEN);
    assert!(!v.has_additional_reference());
    // Still usable until closed; new opens too.
    let g = env.open(&v, "g").await;
    env.rdbss.close(&g).await.unwrap();
    env.rdbss.close(&f).await.unwrap();
    assert!(v.is_freed(), "no delayed close keeps a detached view alive");
    env.assert_server_opens(0, "server opens");
    assert_eq!(env.probe.count(&env.probe.counters.v_net_root_finalizes), 1);
    // With nothing open, DetachOnClose is plain success.
    let v2 = env.view(1).await;
    let o = fin(&env, &v2, ForceLevel::DetachOnClose).await;
    assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
    assert!(v2.is_freed());
}

/// Scenario: row9 a second finalize returns the row9 result.
pub async fn row9_a_second_finalize_returns_the_row9_result(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let f = env.open(&v, "f").await;
    assert_eq!(
        fin(&env, &v, ForceLevel::Yes).await.status,
        NtStatus::STATUS_SUCCESS
    );
    // Orphaned handle still open: K > 0.
    assert_eq!(
        fin(&env, &v, ForceLevel::No).await.status,
        NtStatus::STATUS_FILES_OPEN
    );
    assert_eq!(
        fin(&env, &v, ForceLevel::Yes).await.status,
        NtStatus::STATUS_SUCCESS
    );
    env.rdbss.close(&f).await.unwrap();
    for force in [ForceLevel::No, ForceLevel::Yes, ForceLevel::DetachOnClose] {
        let o = fin(&env, &v, force).await;
        assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
        assert!(o.view_removed);
    }
}

/// Scenario: row10 decision2 no view means every view of the share.
pub async fn row10_decision2_no_view_means_every_view_of_the_share(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v1 = env.view(1).await;
    let v2 = env.view(2).await;
    let f1 = env.open(&v1, "f").await;
    let _f2 = env.open(&v2, "g").await;
    let nr = v1.net_root();
    let o = bounded(
        env.rdbss
            .finalize_connection(&nr, None, ForceLevel::No, &RxContext::new()),
    )
    .await;
    assert_eq!(o.status, NtStatus::STATUS_FILES_OPEN);
    assert_eq!(o.open_handles.len(), 2);
    let o = bounded(
        env.rdbss
            .finalize_all_connections(&nr, ForceLevel::Yes, &RxContext::new()),
    )
    .await;
    assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
    assert!(o.view_removed);
    assert!(env.rdbss.connections().is_empty());
    assert!(f1.is_orphaned());
    env.assert_server_opens(0, "server opens");
    assert_eq!(env.probe.count(&env.probe.counters.net_root_finalizes), 1);
}

/// Scenario: decision 1, only three force levels exist (no files needed).
pub fn decision1_only_three_force_levels_exist() {
    assert_eq!(ForceLevel::try_from(0).unwrap(), ForceLevel::No);
    assert_eq!(ForceLevel::try_from(1).unwrap(), ForceLevel::Yes);
    assert_eq!(
        ForceLevel::try_from(0xff).unwrap(),
        ForceLevel::DetachOnClose
    );
    for bad in [2, 0xfe, 0x100] {
        let e = ForceLevel::try_from(bad).unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_INVALID_PARAMETER);
    }
}

/// Scenario: decision3 the share root fcb is walked.
pub async fn decision3_the_share_root_fcb_is_walked(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let w = env.view(2).await;
    let rv = env.open_dir(&v, "").await;
    let rw = env.open_dir(&w, "").await;
    env.rdbss.close(&rv).await.unwrap();
    // RO skips the share root and would say SUCCESS here.
    assert_eq!(
        fin(&env, &v, ForceLevel::No).await.status,
        NtStatus::STATUS_CONNECTION_IN_USE
    );
    env.rdbss.close(&rw).await.unwrap();
    let r = env.open_dir(&v, "").await;
    assert_eq!(
        fin(&env, &v, ForceLevel::No).await.status,
        NtStatus::STATUS_FILES_OPEN
    );
    assert_eq!(
        fin(&env, &v, ForceLevel::Yes).await.status,
        NtStatus::STATUS_SUCCESS
    );
    assert!(r.is_orphaned());
    env.rdbss.close(&r).await.unwrap();
}

/// Scenario: decision4 force cancels blocked reads and lock waits and orphans.
pub async fn decision4_force_cancels_blocked_reads_and_lock_waits_and_orphans(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let a = env.open(&v, "f").await;
    let b = env.open(&v, "f").await;
    let r = LockRange {
        offset: 0,
        length: 1,
        exclusive: true,
    };
    env.rdbss
        .lock(&a, r, false, &RxContext::new())
        .await
        .unwrap();
    let lock_wait = {
        let rd = env.rdbss.clone();
        let b = b.clone();
        tokio::spawn(async move { rd.lock(&b, r, true, &RxContext::new()).await })
    };
    env.probe
        .hang_reads
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let read = {
        let rd = env.rdbss.clone();
        let a = a.clone();
        tokio::spawn(async move { rd.read(&a, 0, 5, &RxContext::new()).await })
    };
    bounded(async {
        while v.number_of_pending_requests() < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let o = fin(&env, &v, ForceLevel::Yes).await;
    assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
    assert_eq!(o.cancelled.len(), 2);
    for h in [read.await.unwrap().map(|_| ()), lock_wait.await.unwrap()] {
        assert_eq!(
            h.unwrap_err().nt_status(),
            NtStatus::STATUS_UNEXPECTED_NETWORK_ERROR
        );
    }
    let e = env
        .rdbss
        .write(&b, 0, Bytes::from_static(b"x"), &RxContext::new())
        .await
        .unwrap_err();
    assert!(matches!(e, RxError::Orphaned { .. }));
    env.rdbss.close(&a).await.unwrap();
    env.rdbss.close(&b).await.unwrap();
    env.assert_server_opens(0, "server opens");
    assert_eq!(v.number_of_fobxs(), 0);
    assert!(v.is_freed());
}

/// Scenario: decision4 an orphaned fcb leaves the table and new opens get a fresh one.
pub async fn decision4_an_orphaned_fcb_leaves_the_table_and_new_opens_get_a_fresh_one(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let w = env.view(2).await;
    let fv = env.open(&v, "f").await;
    assert_eq!(
        fin(&env, &v, ForceLevel::Yes).await.status,
        NtStatus::STATUS_SUCCESS
    );
    let fw = env.open(&w, "f").await;
    assert!(!Arc::ptr_eq(fv.fcb(), fw.fcb()));
    assert!(fv.fcb().is_orphaned());
    assert_eq!(
        env.rdbss.read(&fw, 0, 5, &RxContext::new()).await.unwrap(),
        "hello"
    );
    env.rdbss.close(&fv).await.unwrap();
    env.rdbss.close(&fw).await.unwrap();
    assert_eq!(w.net_root().number_of_fcbs(), 0);
}

/// Scenario: decision4 other views handles on the views fcbs are not orphaned.
pub async fn decision4_other_views_handles_on_the_views_fcbs_are_not_orphaned(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let w = env.view(2).await;
    let fv = env.open(&v, "f").await; // FCB created by v
    let fw = env.open(&w, "f").await;
    assert_eq!(
        fin(&env, &v, ForceLevel::Yes).await.status,
        NtStatus::STATUS_SUCCESS
    );
    assert!(fv.is_orphaned());
    assert!(!fw.is_orphaned());
    assert_eq!(
        env.rdbss.read(&fw, 0, 5, &RxContext::new()).await.unwrap(),
        "hello"
    );
    env.assert_server_opens(1, "server opens");
    // The FCB still pins its creating view until it goes.
    assert!(!v.is_freed());
    env.rdbss.close(&fw).await.unwrap();
    assert!(v.is_freed());
    env.rdbss.close(&fv).await.unwrap();
    assert_eq!(w.net_root().number_of_fcbs(), 0);
}

/// Scenario: decision5 no with a notification fails at once detach ignores it.
pub async fn decision5_no_with_a_notification_fails_at_once_detach_ignores_it(mk: MakeEnv) {
    // Row 2 and row 7 cover the two halves; here the notification is on another view's handle
    // of a directory this view created: RDBSS keys notifications on Fcb.VNetRoot (§5.1).
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let w = env.view(2).await;
    let dv = env.open_dir(&v, "d").await;
    let dw = env.open_dir(&w, "d").await;
    env.rdbss.close(&dv).await.unwrap();
    let n = env.start_notify(&dw).await;
    let o = fin(&env, &v, ForceLevel::No).await;
    assert_eq!(o.status, NtStatus::STATUS_FILES_OPEN);
    assert!(!n.is_finished());
    let o = fin(&env, &v, ForceLevel::DetachOnClose).await;
    assert_eq!(o.status, NtStatus::STATUS_CONNECTION_IN_USE);
    assert!(!n.is_finished());
    assert!(!v.has_additional_reference());
    env.rdbss.close(&dw).await.unwrap();
    assert!(bounded(n).await.unwrap().is_err());
    assert!(v.is_freed());
}

/// Scenario: decision6 an open file takes precedence over directories.
pub async fn decision6_an_open_file_takes_precedence_over_directories(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let w = env.view(2).await;
    let dv = env.open_dir(&v, "d").await;
    let _dw = env.open_dir(&w, "d").await;
    env.rdbss.close(&dv).await.unwrap();
    let fv = env.open(&v, "f").await;
    let fw = env.open(&w, "f").await;
    env.rdbss.close(&fv).await.unwrap();
    // v: dir FCB with w's handle (UD) and file FCB with w's handle (UF), K = 0.
    let o = fin(&env, &v, ForceLevel::No).await;
    assert_eq!(o.status, NtStatus::STATUS_FILES_OPEN);
    assert!(v.has_additional_reference());
    // K was 0, so the walk set ConnectionFinalizationDone (§3.2 step 4): the next call skips
    // the walk and succeeds (row 9), as ReactOS does.
    assert!(v.connection_finalization_done());
    env.rdbss.close(&fw).await.unwrap();
    assert_eq!(
        fin(&env, &v, ForceLevel::No).await.status,
        NtStatus::STATUS_SUCCESS
    );
}

/// Scenario: decision7 a cancelled caller aborts cleanly.
pub async fn decision7_a_cancelled_caller_aborts_cleanly(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let w = env.view(2).await;
    let fv = env.open(&v, "f").await;
    let fw = env.open(&w, "f").await;
    env.probe.set_info_gate.close();
    let busy = {
        let rd = env.rdbss.clone();
        let fw = fw.clone();
        tokio::spawn(async move {
            rd.set_info(&fw, &SetInfo::EndOfFile(1), &RxContext::new())
                .await
        })
    };
    env.probe.set_info_gate.wait_entered(1).await;
    // A no-wait abort has no side effect: not even the view's notification is cancelled.
    let dv = env.open_dir(&v, "d").await;
    let n = env.start_notify(&dv).await;
    let o = bounded(env.rdbss.finalize_connection(
        &v.net_root(),
        Some(&v),
        ForceLevel::Yes,
        &RxContext::new().no_wait(),
    ))
    .await;
    assert_eq!(o.status, NtStatus::STATUS_LOCK_NOT_GRANTED);
    assert!(o.cancelled.is_empty());
    assert!(!n.is_finished());
    env.rdbss.close(&dv).await.unwrap();
    assert!(bounded(n).await.unwrap().is_err());
    for (ctx, want) in [
        (
            RxContext::new().no_wait(),
            NtStatus::STATUS_LOCK_NOT_GRANTED,
        ),
        (
            {
                let c = RxContext::new();
                c.cancel();
                c
            },
            NtStatus::STATUS_CANCELLED,
        ),
        (
            RxContext::new().with_timeout(Duration::from_millis(20)),
            NtStatus::STATUS_CANCELLED,
        ),
    ] {
        let o =
            bounded(
                env.rdbss
                    .finalize_connection(&v.net_root(), Some(&v), ForceLevel::Yes, &ctx),
            )
            .await;
        assert_eq!(o.status, want);
        assert!(!o.view_removed);
        assert!(in_name_table(&env, &v));
        assert!(v.has_additional_reference());
        assert!(!fv.is_orphaned());
    }
    env.probe.set_info_gate.open();
    bounded(busy).await.unwrap().unwrap();
    assert_eq!(
        env.rdbss.read(&fv, 0, 5, &RxContext::new()).await.unwrap(),
        "h"
    );
    assert_eq!(
        fin(&env, &v, ForceLevel::Yes).await.status,
        NtStatus::STATUS_SUCCESS
    );
}

/// Scenario: decision7 no wait with a create in flight is lock not granted.
pub async fn decision7_no_wait_with_a_create_in_flight_is_lock_not_granted(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    env.probe.create_gate.close();
    let create = {
        let rd = env.rdbss.clone();
        let v = v.clone();
        tokio::spawn(async move {
            rd.create(
                &v,
                "f",
                &CreateParams::open_existing(AccessMask::FILE_READ_DATA),
                &RxContext::new(),
            )
            .await
        })
    };
    env.probe.create_gate.wait_entered(1).await;
    let o = bounded(env.rdbss.finalize_connection(
        &v.net_root(),
        Some(&v),
        ForceLevel::No,
        &RxContext::new().no_wait(),
    ))
    .await;
    assert_eq!(o.status, NtStatus::STATUS_LOCK_NOT_GRANTED);
    assert!(v.has_additional_reference());
    env.probe.create_gate.open();
    let h = bounded(create).await.unwrap().unwrap();
    env.rdbss.close(&h).await.unwrap();
    assert_eq!(
        fin(&env, &v, ForceLevel::No).await.status,
        NtStatus::STATUS_SUCCESS
    );
}

fn write_behind_env(mk: MakeEnv) -> Env {
    let env = mk(RdbssConfig {
        write_behind_limit: 1 << 20,
        drain_timeout: Duration::from_secs(5),
        ..Default::default()
    });
    env.probe.grant.lock().write_caching = true;
    env
}

/// Scenario: decision8 held writes are sent on flush and before a forced close.
pub async fn decision8_held_writes_are_sent_on_flush_and_before_a_forced_close(mk: MakeEnv) {
    let env = write_behind_env(mk);
    let v = env.view(1).await;
    let f = env.open(&v, "f").await;
    // A write is answered at once; it stays dirty until the server has it.
    env.probe.write_gate.close();
    bounded(
        env.rdbss
            .write(&f, 0, Bytes::from_static(b"HE"), &RxContext::new()),
    )
    .await
    .unwrap();
    env.probe.write_gate.wait_entered(1).await;
    assert_eq!(env.rdbss.inventory(&v).handles[0].dirty_bytes, 2);
    assert_eq!(env.content("f").unwrap(), b"hello");
    let flush = {
        let (r, f) = (env.rdbss.clone(), f.clone());
        tokio::spawn(async move { r.flush(&f, &RxContext::new()).await })
    };
    tokio::task::yield_now().await;
    assert!(!flush.is_finished(), "flush waits for the write");
    env.probe.write_gate.open();
    bounded(flush).await.unwrap().unwrap();
    assert_eq!(env.content("f").unwrap(), b"HEllo");
    assert_eq!(env.rdbss.inventory(&v).handles[0].dirty_bytes, 0);
    // A read sees dirty writes.
    env.probe.write_gate.close();
    env.rdbss
        .write(&f, 2, Bytes::from_static(b"LL"), &RxContext::new())
        .await
        .unwrap();
    env.probe.write_gate.wait_entered(2).await;
    let read = {
        let (r, f) = (env.rdbss.clone(), f.clone());
        tokio::spawn(async move { r.read(&f, 0, 5, &RxContext::new()).await })
    };
    tokio::task::yield_now().await;
    env.probe.write_gate.open();
    assert_eq!(bounded(read).await.unwrap().unwrap(), "HELLo");
    // A forced close waits for dirty data before it orphans the handle.
    env.probe.write_gate.close();
    env.rdbss
        .write(&f, 4, Bytes::from_static(b"O"), &RxContext::new())
        .await
        .unwrap();
    env.probe.write_gate.wait_entered(3).await;
    let fin = {
        let (r, v) = (env.rdbss.clone(), v.clone());
        tokio::spawn(async move {
            r.finalize_connection(&v.net_root(), Some(&v), ForceLevel::Yes, &RxContext::new())
                .await
        })
    };
    tokio::task::yield_now().await;
    env.probe.write_gate.open();
    let o = bounded(fin).await.unwrap();
    assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
    assert!(o.unwritten.is_empty(), "{:?}", o.unwritten);
    assert_eq!(env.content("f").unwrap(), b"HELLO");
    env.rdbss.close(&f).await.unwrap();
}

/// Scenario: decision8 writes that cannot be sent are reported and the force succeeds.
pub async fn decision8_writes_that_cannot_be_sent_are_reported_and_the_force_succeeds(mk: MakeEnv) {
    let env = write_behind_env(mk);
    let v = env.view(1).await;
    let f = env.open(&v, "f").await;
    let g = env.open(&v, "g").await;
    env.probe
        .fail_writes
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // Answered at once; the background writes fail and their data stays held.
    env.rdbss
        .write(&f, 0, Bytes::from_static(b"abc"), &RxContext::new())
        .await
        .unwrap();
    env.rdbss
        .write(&g, 0, Bytes::from_static(b"12345"), &RxContext::new())
        .await
        .unwrap();
    let o = fin(&env, &v, ForceLevel::Yes).await;
    assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
    let mut lost: Vec<_> = o
        .unwritten
        .iter()
        .map(|u| (u.path.as_str(), u.bytes))
        .collect();
    lost.sort();
    assert_eq!(lost, vec![("f", 3), ("g", 5)]);
    env.assert_server_opens(0, "server opens");
    env.rdbss.close(&f).await.unwrap();
    env.rdbss.close(&g).await.unwrap();
}

/// Scenario: decision8 a dead server with a deadline still lets the force succeed.
pub async fn decision8_a_dead_server_with_a_deadline_still_lets_the_force_succeed(mk: MakeEnv) {
    let env = write_behind_env(mk);
    let v = env.view(1).await;
    let f = env.open(&v, "f").await;
    env.probe
        .hang_writes
        .store(true, std::sync::atomic::Ordering::SeqCst);
    env.rdbss
        .write(&f, 0, Bytes::from_static(b"abc"), &RxContext::new())
        .await
        .unwrap();
    let ctx = RxContext::new().with_timeout(Duration::from_millis(50));
    let o = bounded(
        env.rdbss
            .finalize_connection(&v.net_root(), Some(&v), ForceLevel::Yes, &ctx),
    )
    .await;
    assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
    assert_eq!(o.unwritten.len(), 1);
    assert_eq!(o.unwritten[0].bytes, 3);
    assert!(o.view_removed);
    env.rdbss.close(&f).await.unwrap();
}

/// Scenario: decision8 close reports writes it could not send.
pub async fn decision8_close_reports_writes_it_could_not_send(mk: MakeEnv) {
    let env = write_behind_env(mk);
    let v = env.view(1).await;
    let f = env.open(&v, "f").await;
    env.probe
        .fail_writes
        .store(true, std::sync::atomic::Ordering::SeqCst);
    env.rdbss
        .write(&f, 0, Bytes::from_static(b"abc"), &RxContext::new())
        .await
        .unwrap();
    let e = env.rdbss.close(&f).await.unwrap_err();
    assert!(e.to_string().contains("3 written bytes"), "{e}");
    env.assert_server_opens(0, "server opens");
    assert_eq!(v.number_of_fobxs(), 0);
}

/// Scenario: decision9 finalize never touches the srv call.
pub async fn decision9_finalize_never_touches_the_srv_call(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let f = env.open(&v, "f").await;
    assert_eq!(
        fin(&env, &v, ForceLevel::Yes).await.status,
        NtStatus::STATUS_SUCCESS
    );
    let sc = v.net_root().srv_call().clone();
    assert_eq!(env.probe.count(&env.probe.counters.srv_call_finalizes), 0);
    assert!(sc.is_dormant());
    let v2 = env.view(1).await;
    assert!(Arc::ptr_eq(v2.net_root().srv_call(), &sc));
    assert_eq!(env.probe.count(&env.probe.counters.srv_call_creates), 1);
    env.rdbss.close(&f).await.unwrap();
}

/// Scenario: finalize of a view of another share is invalid parameter.
pub async fn finalize_of_a_view_of_another_share_is_invalid_parameter(mk: MakeEnv) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let o = env.view_of(r"\\srv\other", 1).await;
    let r = env
        .rdbss
        .finalize_connection(&o.net_root(), Some(&v), ForceLevel::Yes, &RxContext::new())
        .await;
    assert_eq!(r.status, NtStatus::STATUS_INVALID_PARAMETER);
    assert!(in_name_table(&env, &v));
}

/// Scenario: decision7 without force busy files with handles are counted not waited for.
pub async fn decision7_without_force_busy_files_with_handles_are_counted_not_waited_for(
    mk: MakeEnv,
) {
    let env = mk(RdbssConfig::default());
    let v = env.view(1).await;
    let w = env.view(2).await;
    let fv = env.open(&v, "f").await;
    let fw = env.open(&w, "f").await;
    env.rdbss.close(&fv).await.unwrap();
    env.probe.set_info_gate.close();
    let busy = {
        let rd = env.rdbss.clone();
        let fw = fw.clone();
        tokio::spawn(async move {
            rd.set_info(&fw, &SetInfo::EndOfFile(1), &RxContext::new())
                .await
        })
    };
    env.probe.set_info_gate.wait_entered(1).await;
    let o = bounded(env.rdbss.finalize_connection(
        &v.net_root(),
        Some(&v),
        ForceLevel::No,
        &RxContext::new().no_wait(),
    ))
    .await;
    assert_eq!(o.status, NtStatus::STATUS_FILES_OPEN);
    env.probe.set_info_gate.open();
    bounded(busy).await.unwrap().unwrap();
    env.rdbss.close(&fw).await.unwrap();
}
