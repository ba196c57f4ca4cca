//! Concurrency: tasks open, read, write, lock and close through two views while another task
//! finalizes them with random force levels. At the end every count is back at its threshold,
//! finalized objects are gone and the server holds nothing. Bounded: a hang fails the test.

use crate::*;
use bytes::Bytes;
use parking_lot::Mutex;
use rdr_core::minirdr::*;
use rdr_core::name::RemoteName;
use rdr_core::v_net_root::VNetRoot;
use rdr_core::{ForceLevel, NtStatus, RdbssConfig, RxContext, RxError};
use std::sync::Arc;
use std::time::Duration;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn expected(e: &RxError) -> bool {
    matches!(
        e.nt_status(),
        NtStatus::STATUS_BAD_NETWORK_NAME
            | NtStatus::STATUS_UNEXPECTED_NETWORK_ERROR
            | NtStatus::STATUS_LOCK_NOT_GRANTED
    )
}

async fn view(env: &Env, logon: u32, seen: &Mutex<Vec<Arc<VNetRoot>>>) -> Arc<VNetRoot> {
    let v = match env.rdbss.lookup(SHARE, logon) {
        Some((v, _)) => v,
        None => env
            .rdbss
            .add_connection(
                &RemoteName::parse(SHARE).unwrap(),
                Credentials {
                    logon_id: logon,
                    ..Default::default()
                },
                &RxContext::new(),
            )
            .await
            .unwrap(),
    };
    let mut s = seen.lock();
    if !s.iter().any(|x| Arc::ptr_eq(x, &v)) {
        s.push(v.clone());
    }
    v
}

async fn worker(env: Arc<Env>, seed: u64, seen: Arc<Mutex<Vec<Arc<VNetRoot>>>>) {
    let mut rng = Rng(seed);
    let paths = [("f", false), ("g", false), ("d", true), ("", true)];
    for _ in 0..150 {
        let v = view(&env, 1 + rng.below(2) as u32, &seen).await;
        let (path, dir) = paths[rng.below(4) as usize];
        let h = match env.try_open(&v, path, dir).await {
            Ok(h) => h,
            Err(e) => {
                assert!(expected(&e), "open: {e}");
                continue;
            }
        };
        let mut notify = None;
        if !dir {
            let r = LockRange {
                offset: rng.below(8),
                length: 4,
                exclusive: true,
            };
            let wait = rng.below(2) == 0;
            let ops = async {
                env.rdbss
                    .write(&h, 0, Bytes::from_static(b"abcd"), &RxContext::new())
                    .await?;
                env.rdbss.read(&h, 0, 4, &RxContext::new()).await?;
                env.rdbss.lock(&h, r, wait, &RxContext::new()).await?;
                tokio::task::yield_now().await;
                env.rdbss.unlock(&h, r, &RxContext::new()).await
            };
            if let Err(e) = ops.await {
                assert!(expected(&e), "i/o: {e}");
            }
        } else {
            if let Err(e) = env
                .rdbss
                .query_directory(&h, None, true, &RxContext::new())
                .await
            {
                assert!(expected(&e), "readdir: {e}");
            }
            if rng.below(2) == 0 {
                let rd = env.rdbss.clone();
                let h = h.clone();
                notify = Some(tokio::spawn(async move {
                    rd.notify_change(&h, notify_filter::ALL, false, &RxContext::new())
                        .await
                }));
            }
        }
        tokio::task::yield_now().await;
        if let Err(e) = env.rdbss.close(&h).await {
            // Only a write acknowledged just before a forced finalize orphaned the handle can be
            // lost, and close says so.
            assert!(h.is_orphaned(), "close: {e}");
            assert!(e.to_string().contains("could not be sent"), "close: {e}");
        }
        if let Some(n) = notify {
            // Ended by the close (cleanup cancels it) or by a forced finalize — or, on a server
            // that watches real directories, completed by another worker's write.
            match bounded(n).await.unwrap() {
                Err(_) => {}
                Ok(events) => assert!(!events.is_empty(), "a notification completed empty"),
            }
        }
    }
}

async fn finalizer(env: Arc<Env>, seed: u64, seen: Arc<Mutex<Vec<Arc<VNetRoot>>>>) {
    let mut rng = Rng(seed);
    let forces = [ForceLevel::No, ForceLevel::Yes, ForceLevel::DetachOnClose];
    for _ in 0..120 {
        let v = view(&env, 1 + rng.below(2) as u32, &seen).await;
        let force = forces[rng.below(3) as usize];
        let ctx = if rng.below(4) == 0 {
            RxContext::new().no_wait()
        } else {
            RxContext::new()
        };
        let o = env
            .rdbss
            .finalize_connection(&v.net_root(), Some(&v), force, &ctx)
            .await;
        assert!(
            matches!(
                o.status,
                NtStatus::STATUS_SUCCESS
                    | NtStatus::STATUS_FILES_OPEN
                    | NtStatus::STATUS_CONNECTION_IN_USE
                    | NtStatus::STATUS_LOCK_NOT_GRANTED
            ),
            "{o:?}"
        );
        if force == ForceLevel::Yes && o.status == NtStatus::STATUS_SUCCESS {
            assert!(o.view_removed);
        }
        tokio::time::sleep(Duration::from_micros(rng.below(300))).await;
    }
}

/// Workers race a finalizer on a fresh environment from `mk` (run on a multi-thread runtime);
/// afterwards every count is at its threshold and the server holds nothing.
pub async fn open_io_close_race_with_finalize_and_counts_return_to_thresholds(mk: MakeEnv) {
    let env = Arc::new(mk(RdbssConfig {
        write_behind_limit: 6,
        ..Default::default()
    }));
    {
        let mut g = env.probe.grant.lock();
        g.handle_caching = true;
        g.write_caching = true;
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let run = async {
        let mut tasks = Vec::new();
        for seed in 1..=4u64 {
            tasks.push(tokio::spawn(worker(env.clone(), seed * 7919, seen.clone())));
        }
        tasks.push(tokio::spawn(finalizer(env.clone(), 104729, seen.clone())));
        for t in tasks {
            t.await.unwrap();
        }
        // Tear everything down.
        for v in env.rdbss.connections() {
            let o = env
                .rdbss
                .finalize_connection(&v.net_root(), Some(&v), ForceLevel::Yes, &RxContext::new())
                .await;
            assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
        }
        env.clock.advance(Duration::from_secs(3600));
        env.rdbss.scavenge().await;
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("hang: the race did not finish");
    env.assert_server_opens(0, "the server holds no handle");
    assert!(env.rdbss.connections().is_empty());
    assert!(env.rdbss.net_roots().is_empty());
    assert!(env.rdbss.srv_calls().is_empty());
    let seen = seen.lock();
    assert!(seen.len() >= 2);
    for v in seen.iter() {
        assert_eq!(v.number_of_fobxs(), 0);
        assert_eq!(v.number_of_pending_requests(), 0);
        assert!(v.is_freed(), "view {v:?} finalized");
        assert_eq!(v.net_root().number_of_fcbs(), 0);
        assert_eq!(v.net_root().number_of_srv_opens(), 0);
        assert!(v.net_root().is_finalized());
    }
    assert_eq!(
        env.probe.count(&env.probe.counters.v_net_root_finalizes),
        seen.len(),
        "MRxFinalizeVNetRoot once per view"
    );
    assert_eq!(env.probe.count(&env.probe.counters.srv_call_finalizes), 1);
}
