//! Test support shared by rdr-core's and the mini-redirectors' tests: the `finalize_connection`
//! scenarios (one per §3.3 row and DESIGN.md decision), the connection-model scenarios, the
//! reference model of the decision table for property tests, and the concurrency race — all over
//! a [`Fixture`], so the same scenarios run on the in-memory [`MemRdr`] and on real files
//! (rdr-local). A [`Probe`] wraps the fixture's mini-redirector to steer and observe it.

pub mod connection;
pub mod mem;
pub mod model;
pub mod probe;
pub mod race;
pub mod table;

pub use mem::MemRdr;
pub use probe::{Counters, Gate, Probe};

use rdr_core::clock::ManualClock;
use rdr_core::fobx::Fobx;
use rdr_core::minirdr::*;
use rdr_core::name::RemoteName;
use rdr_core::v_net_root::VNetRoot;
use rdr_core::{Rdbss, RdbssConfig, RxContext, RxResult};
use std::sync::Arc;
use std::time::Duration;

/// What a scenario needs from the world: a mini-redirector and a way to make and read files on
/// its share `\\srv\share`.
pub trait Fixture: Send + Sync {
    /// The mini-redirector serving `\\srv\share`.
    fn minirdr(&self) -> Arc<dyn MiniRedirector>;
    /// Create (or replace) a file with `data`; `path` uses `\`.
    fn make_file(&self, path: &str, data: &[u8]);
    /// Create a directory.
    fn make_dir(&self, path: &str);
    /// A file's content as the server holds it.
    fn content(&self, path: &str) -> Option<Vec<u8>>;
    /// Server-side opens, when the fixture can count them.
    fn server_opens(&self) -> Option<usize>;
    /// Descriptors (or other OS resources) the server holds for opens, when it can count them;
    /// 0 once every open is closed.
    fn resources(&self) -> Option<usize> {
        None
    }
}

/// Makes an environment with the given configuration (one per fixture kind).
pub type MakeEnv = fn(RdbssConfig) -> Env;

/// An environment over the in-memory mini-redirector.
pub fn mem_env(config: RdbssConfig) -> Env {
    Env::with_fixture(Arc::new(MemRdr::new()), config)
}

/// A scenario environment: the redirector over a fixture's mini-redirector wrapped in a
/// [`Probe`] (gates, failure switches, call counters), with a manual clock.
pub struct Env {
    /// The redirector under test.
    pub rdbss: Rdbss,
    /// Its clock.
    pub clock: Arc<ManualClock>,
    /// The probe between the redirector and the fixture's mini-redirector.
    pub probe: Arc<Probe>,
    /// The fixture (files, server-side counts).
    pub fx: Arc<dyn Fixture>,
}

/// The share every scenario connects to.
pub const SHARE: &str = r"\\srv\share";

impl Default for Env {
    fn default() -> Env {
        Env::new()
    }
}

impl Env {
    /// An environment over the in-memory mini-redirector with the default configuration.
    pub fn new() -> Env {
        mem_env(RdbssConfig::default())
    }
    /// An environment over the in-memory mini-redirector.
    pub fn with_config(config: RdbssConfig) -> Env {
        mem_env(config)
    }
    /// An environment over `fx` (e.g. rdr-local over a temporary directory), with files `f`
    /// ("hello"), `g` ("world") and directory `d` on the share.
    pub fn with_fixture(fx: Arc<dyn Fixture>, config: RdbssConfig) -> Env {
        fx.make_dir("d");
        fx.make_file("f", b"hello");
        fx.make_file("g", b"world");
        let clock = Arc::new(ManualClock::new());
        let probe = Probe::new(fx.minirdr());
        let rdbss = Rdbss::with_clock(probe.clone(), config, clock.clone());
        Env {
            rdbss,
            clock,
            probe,
            fx,
        }
    }
    /// A file's content on the server.
    pub fn content(&self, path: &str) -> Option<Vec<u8>> {
        self.fx.content(path)
    }
    /// Assert the number of opens the server holds, when the fixture can count them.
    pub fn assert_server_opens(&self, n: usize, why: &str) {
        if let Some(have) = self.fx.server_opens() {
            assert_eq!(have, n, "{why}");
        }
        assert_eq!(self.probe.open_count(), n, "{why} (through the probe)");
        if n == 0
            && let Some(r) = self.fx.resources()
        {
            assert_eq!(r, 0, "{why}: the server still holds descriptors");
        }
    }
    /// A fresh context.
    pub fn ctx() -> RxContext {
        RxContext::new()
    }
    /// The view of SHARE for `logon_id`.
    pub async fn view(&self, logon_id: u32) -> Arc<VNetRoot> {
        self.view_of(SHARE, logon_id).await
    }
    /// The view of `name` for `logon_id`.
    pub async fn view_of(&self, name: &str, logon_id: u32) -> Arc<VNetRoot> {
        let creds = Credentials {
            logon_id,
            ..Default::default()
        };
        self.rdbss
            .add_connection(&RemoteName::parse(name).unwrap(), creds, &RxContext::new())
            .await
            .unwrap()
    }
    /// Open an existing file read/write.
    pub async fn open(&self, v: &Arc<VNetRoot>, path: &str) -> Arc<Fobx> {
        self.try_open(v, path, false).await.unwrap()
    }
    /// Open an existing directory.
    pub async fn open_dir(&self, v: &Arc<VNetRoot>, path: &str) -> Arc<Fobx> {
        self.try_open(v, path, true).await.unwrap()
    }
    /// Open an existing file or directory.
    pub async fn try_open(&self, v: &Arc<VNetRoot>, path: &str, dir: bool) -> RxResult<Arc<Fobx>> {
        let mut p =
            CreateParams::open_existing(AccessMask::FILE_READ_DATA | AccessMask::FILE_WRITE_DATA);
        if dir {
            p.access = AccessMask::FILE_READ_DATA;
            p.options = CreateOptions::DIRECTORY_FILE;
        }
        self.rdbss.create(v, path, &p, &RxContext::new()).await
    }
    /// Start a change notification on a directory handle; it stays pending.
    pub async fn start_notify(
        &self,
        fobx: &Arc<Fobx>,
    ) -> tokio::task::JoinHandle<RxResult<Vec<ChangeEvent>>> {
        let r = self.rdbss.clone();
        let f = fobx.clone();
        let before = fobx.v_net_root().number_of_pending_requests();
        let h = tokio::spawn(async move {
            r.notify_change(&f, notify_filter::ALL, false, &RxContext::new())
                .await
        });
        let v = fobx.v_net_root().clone();
        bounded(async move {
            while v.number_of_pending_requests() <= before {
                tokio::task::yield_now().await;
            }
        })
        .await;
        h
    }
}

/// Fail a test that hangs.
pub async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("timed out: the operation hung")
}

/// Run the future `make` builds on a current-thread runtime in its own thread, and fail if it
/// has not finished within a minute — even when it hangs without yielding (a deadlocked lock),
/// which a timeout inside the runtime could not catch. A panic in the scenario is re-raised.
pub fn watchdog<F, Fut>(make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    watchdog_within(Duration::from_secs(60), make)
}

/// [`watchdog`] with a given limit.
pub fn watchdog_within<F, Fut>(limit: Duration, make: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        rt.block_on(bounded(make()));
        let _ = tx.send(());
    });
    match rx.recv_timeout(limit) {
        Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("timed out: the scenario hung (its thread never finished)")
        }
    }
}

/// Named tests that run scenarios of `$module` over the environments `$mk` makes, each under
/// [`watchdog`] so a hang fails it.
#[macro_export]
macro_rules! scenario_tests {
    ($mk:path; $module:ident; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::watchdog(|| $crate::$module::$name($mk))
            }
        )*
    };
}

/// One named test per row of the §3.3 decision table and per DESIGN.md decision 1–9, over the
/// environments `$mk` makes.
#[macro_export]
macro_rules! finalize_table_tests {
    ($mk:path) => {
        #[test]
        fn decision1_only_three_force_levels_exist() {
            $crate::table::decision1_only_three_force_levels_exist()
        }
        $crate::scenario_tests!($mk; table;
            row1_force_succeeds_cancels_orphans_and_removes_the_view,
            row2_no_force_with_a_pending_notification_changes_nothing,
            row3_no_force_with_an_open_file_purges_only_idle_fcbs,
            row4_no_force_with_only_a_directory_open_through_the_view_is_files_open,
            row5_directory_created_by_the_view_open_only_through_another_is_connection_in_use,
            row6_no_force_with_nothing_open_succeeds_and_finalizes_the_view,
            row7_detach_on_close_ignores_notifications_and_drops_the_extra_reference,
            row8_detach_on_close_with_an_open_file_finalizes_when_it_closes,
            row9_a_second_finalize_returns_the_row9_result,
            row10_decision2_no_view_means_every_view_of_the_share,
            decision3_the_share_root_fcb_is_walked,
            decision4_force_cancels_blocked_reads_and_lock_waits_and_orphans,
            decision4_an_orphaned_fcb_leaves_the_table_and_new_opens_get_a_fresh_one,
            decision4_other_views_handles_on_the_views_fcbs_are_not_orphaned,
            decision5_no_with_a_notification_fails_at_once_detach_ignores_it,
            decision6_an_open_file_takes_precedence_over_directories,
            decision7_a_cancelled_caller_aborts_cleanly,
            decision7_no_wait_with_a_create_in_flight_is_lock_not_granted,
            decision7_without_force_busy_files_with_handles_are_counted_not_waited_for,
            decision8_held_writes_are_sent_on_flush_and_before_a_forced_close,
            decision8_writes_that_cannot_be_sent_are_reported_and_the_force_succeeds,
            decision8_a_dead_server_with_a_deadline_still_lets_the_force_succeed,
            decision8_close_reports_writes_it_could_not_send,
            decision9_finalize_never_touches_the_srv_call,
            finalize_of_a_view_of_another_share_is_invalid_parameter,
        );
    };
}

/// The connection-model scenarios as named tests over the environments `$mk` makes.
#[macro_export]
macro_rules! connection_model_tests {
    ($mk:path) => {
        $crate::scenario_tests!($mk; connection;
            two_concurrent_add_connections_construct_one_srv_call_net_root_and_view,
            a_failing_construction_fails_every_waiter,
            a_failing_view_construction_leaves_nothing_but_a_dormant_server,
            each_identity_gets_its_own_view_of_one_net_root,
            lookup_is_longest_prefix_per_logon_id,
            counts_return_to_their_thresholds_after_open_and_close,
            byte_range_locks_conflict_between_handles_sharing_a_srv_open,
            delayed_close_is_reused_by_a_compatible_open_and_expires,
            no_delayed_close_for_directories_delete_on_close_or_without_handle_caching,
            delayed_closes_are_capped_per_srv_call,
            delayed_closes_are_closed_when_the_view_is_finalized,
            a_dormant_srv_call_is_reused_then_expires,
            the_configured_linger_overrides_the_mini_redirectors,
            close_transport_closes_only_a_dormant_srv_call,
            orphaned_and_closed_handles_report_clear_errors,
            inventory_lists_handles_and_pending_requests,
            spawn_scavenger_runs_passes_periodically,
            a_sharing_violation_closes_our_delayed_closes_and_retries_once,
            rename_and_delete_close_delayed_opens_and_stop_collapsing,
            a_break_of_write_caching_flushes_before_the_ack_then_writes_go_through,
            a_break_of_handle_caching_closes_delayed_closes,
            a_break_during_a_create_lowers_the_new_open,
        );
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "the scenario hung")]
    fn the_watchdog_fails_a_scenario_that_blocks_its_thread() {
        watchdog_within(Duration::from_millis(200), || async {
            // A synchronous hang: the runtime never gets control back.
            std::thread::sleep(Duration::from_secs(3));
        })
    }

    #[test]
    #[should_panic(expected = "scenario failed")]
    fn the_watchdog_reraises_a_scenario_panic() {
        watchdog(|| async { panic!("scenario failed") })
    }

    #[test]
    fn the_watchdog_passes_a_finished_scenario() {
        watchdog(|| async { tokio::task::yield_now().await })
    }
}
