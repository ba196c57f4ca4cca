//! `finalize_connection` on real files: rdr-testkit's scenarios — one per row of the §3.3
//! decision table and per DESIGN.md decision 1–9 — run through `Rdbss` over `LocalRdr` serving a
//! temporary directory (real opens, OFD locks, inotify-backed change notifications), plus the
//! connection-model scenarios. Each test is bounded; temporary directories are removed on drop.

mod real;

rdr_testkit::finalize_table_tests!(real::local_env);

mod connection_model {
    use super::real;
    rdr_testkit::connection_model_tests!(real::local_env);
}

/// What only real files can show: descriptors, OFD locks seen by another open, inotify-backed
/// notifications completed by a real change, and LocalRdr's own transport counters.
mod real_files {
    use super::real;
    use bytes::Bytes;
    use rdr_core::minirdr::LockRange;
    use rdr_core::{ForceLevel, NtStatus, RdbssConfig, RxContext};
    use rdr_testkit::{Env, bounded, watchdog};
    use std::sync::Arc;
    use std::time::Duration;

    async fn fin(
        env: &Env,
        v: &Arc<rdr_core::v_net_root::VNetRoot>,
        force: ForceLevel,
    ) -> rdr_core::inventory::FinalizeOutcome {
        bounded(
            env.rdbss
                .finalize_connection(&v.net_root(), Some(v), force, &RxContext::new()),
        )
        .await
    }

    const R: LockRange = LockRange {
        offset: 0,
        length: 4,
        exclusive: true,
    };

    #[test]
    fn decision4_orphaned_handles_fail_io_close_succeeds_and_the_real_descriptors_and_locks_go() {
        watchdog(|| async {
            let (env, fx) = real::local_env_with(RdbssConfig::default());
            let v = env.view(1).await;
            let f = env.open(&v, "f").await;
            let d = env.open_dir(&v, "d").await;
            env.rdbss
                .lock(&f, R, false, &RxContext::new())
                .await
                .unwrap();
            let n = env.start_notify(&d).await;
            let held = fx.rdr.stats();
            assert_eq!(held.srv_opens, 2);
            assert!(held.fds >= 2, "real descriptors held: {held:?}");
            // Another view (another user) of the same share is refused the locked range.
            let w = env.view(2).await;
            let other = env.open(&w, "f").await;
            let e = env
                .rdbss
                .lock(&other, R, false, &RxContext::new())
                .await
                .unwrap_err();
            assert_eq!(e.nt_status(), NtStatus::STATUS_LOCK_NOT_GRANTED);

            let o = fin(&env, &v, ForceLevel::Yes).await;
            assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
            assert!(o.view_removed);
            assert!(
                bounded(n).await.unwrap().is_err(),
                "the notification was cancelled"
            );
            for e in [
                env.rdbss
                    .read(&f, 0, 5, &RxContext::new())
                    .await
                    .unwrap_err(),
                env.rdbss
                    .write(&f, 0, Bytes::from_static(b"x"), &RxContext::new())
                    .await
                    .unwrap_err(),
            ] {
                assert_eq!(e.nt_status(), NtStatus::STATUS_UNEXPECTED_NETWORK_ERROR);
            }
            env.rdbss.close(&f).await.unwrap();
            env.rdbss.close(&d).await.unwrap();
            // The orphaned lock went with its real open: the other view now gets it.
            env.rdbss
                .lock(&other, R, false, &RxContext::new())
                .await
                .unwrap();
            env.rdbss.close(&other).await.unwrap();
            let after = fx.rdr.stats();
            assert_eq!(after.srv_opens, 0, "{after:?}");
            assert_eq!(after.fds, 0, "every real descriptor is closed: {after:?}");
            assert_eq!(std::fs::read(fx.real("f")).unwrap(), b"hello");
        })
    }

    #[test]
    fn row2_a_real_notification_stays_pending_until_a_real_change_completes_it() {
        watchdog(|| async {
            let (env, fx) = real::local_env_with(RdbssConfig::default());
            let v = env.view(1).await;
            let d = env.open_dir(&v, "d").await;
            let n = env.start_notify(&d).await;
            let o = fin(&env, &v, ForceLevel::No).await;
            assert_eq!(o.status, NtStatus::STATUS_FILES_OPEN);
            assert!(!n.is_finished(), "the notification is still pending");
            std::fs::write(fx.real(r"d\new.txt"), b"x").unwrap();
            let events = bounded(n).await.unwrap().unwrap();
            assert!(
                events.iter().any(|e| e.name == "new.txt"),
                "the real change is reported: {events:?}"
            );
            env.rdbss.close(&d).await.unwrap();
            let o = fin(&env, &v, ForceLevel::No).await;
            assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
            assert_eq!(fx.rdr.stats().fds, 0);
        })
    }

    #[test]
    fn decision9_the_local_transport_survives_finalize_and_lingers() {
        watchdog(|| async {
            let (env, fx) = real::local_env_with(RdbssConfig::default());
            let v = env.view(1).await;
            let f = env.open(&v, "f").await;
            assert_eq!(
                fin(&env, &v, ForceLevel::Yes).await.status,
                NtStatus::STATUS_SUCCESS
            );
            env.rdbss.close(&f).await.unwrap();
            let s = fx.rdr.stats();
            assert_eq!((s.v_net_roots_finalized, s.net_roots_finalized), (1, 1));
            assert_eq!(
                s.srv_calls_finalized, 0,
                "finalize never touches the SrvCall"
            );
            // Reconnecting within the linger reuses the transport.
            let v = env.view(1).await;
            assert_eq!(fx.rdr.stats().srv_calls_created, 1);
            assert_eq!(
                fin(&env, &v, ForceLevel::No).await.status,
                NtStatus::STATUS_SUCCESS
            );
            env.clock.advance(Duration::from_secs(30));
            env.rdbss.scavenge().await;
            assert_eq!(fx.rdr.stats().srv_calls_finalized, 0, "still lingering");
            env.clock.advance(Duration::from_secs(31));
            env.rdbss.scavenge().await;
            assert_eq!(
                fx.rdr.stats().srv_calls_finalized,
                1,
                "finalized after the linger"
            );
            let _v = env.view(1).await;
            assert_eq!(fx.rdr.stats().srv_calls_created, 2);
        })
    }

    #[test]
    fn a_second_view_of_the_same_share_keeps_working_on_the_real_file() {
        watchdog(|| async {
            let (env, fx) = real::local_env_with(RdbssConfig::default());
            let v = env.view(1).await;
            let w = env.view(2).await;
            assert!(!Arc::ptr_eq(&v, &w));
            let fv = env.open(&v, "f").await;
            let fw = env.open(&w, "f").await;
            assert_eq!(
                fin(&env, &v, ForceLevel::Yes).await.status,
                NtStatus::STATUS_SUCCESS
            );
            assert!(fv.is_orphaned());
            assert!(!fw.is_orphaned());
            env.rdbss
                .write(&fw, 0, Bytes::from_static(b"J"), &RxContext::new())
                .await
                .unwrap();
            let got = env.rdbss.read(&fw, 0, 5, &RxContext::new()).await.unwrap();
            assert_eq!(&got[..], b"Jello");
            env.rdbss.close(&fv).await.unwrap();
            env.rdbss.close(&fw).await.unwrap();
            assert_eq!(std::fs::read(fx.real("f")).unwrap(), b"Jello");
            assert_eq!(fx.rdr.logon_ids(), vec![1, 2]);
            assert_eq!(fx.rdr.stats().fds, 0);
        })
    }

    #[test]
    fn decision4_a_lock_wait_pending_on_a_real_ofd_lock_is_cancelled_by_force() {
        watchdog(|| async {
            let (env, fx) = real::local_env_with(RdbssConfig::default());
            let holder_view = env.view(1).await;
            let waiter_view = env.view(2).await;
            let holder = env.open(&holder_view, "f").await;
            let waiter = env.open(&waiter_view, "f").await;
            assert!(!Arc::ptr_eq(holder.srv_open(), waiter.srv_open()));
            env.rdbss
                .lock(&holder, R, false, &RxContext::new())
                .await
                .unwrap();
            let wait = {
                let rd = env.rdbss.clone();
                let w = waiter.clone();
                tokio::spawn(async move { rd.lock(&w, R, true, &RxContext::new()).await })
            };
            while waiter_view.number_of_pending_requests() == 0 {
                tokio::task::yield_now().await;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!wait.is_finished(), "the wait is pending on the real lock");
            let o = fin(&env, &waiter_view, ForceLevel::Yes).await;
            assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
            assert_eq!(o.cancelled.len(), 1, "{o:?}");
            let e = bounded(wait).await.unwrap().unwrap_err();
            assert_eq!(e.nt_status(), NtStatus::STATUS_UNEXPECTED_NETWORK_ERROR);
            env.rdbss.close(&waiter).await.unwrap();
            // The holder still holds its real lock: a third view is refused.
            let third = env.view(3).await;
            let t = env.open(&third, "f").await;
            let e = env
                .rdbss
                .lock(&t, R, false, &RxContext::new())
                .await
                .unwrap_err();
            assert_eq!(e.nt_status(), NtStatus::STATUS_LOCK_NOT_GRANTED);
            env.rdbss.close(&t).await.unwrap();
            env.rdbss.close(&holder).await.unwrap();
            assert_eq!(fx.rdr.stats().srv_opens, 0);
            assert_eq!(fx.rdr.stats().fds, 0);
        })
    }
}
