//! `RxFinalizeConnection` behaviours seen from the real Samba (issue 3; DESIGN decisions 4 and
//! 5): `SmbRdr` under rdr-core's `Rdbss`, with the server's view read through `smbstatus`
//! (`-N` notify watches, `-L` open files, `-S` tree connects, `-p` processes) and the wire
//! through the connection's CANCEL / STATUS_CANCELLED counters.

mod samba_common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rdr_core::minirdr::{CreateDisposition, Credentials, Secret, notify_filter};
use rdr_core::name::RemoteName;
use rdr_core::v_net_root::VNetRoot;
use rdr_core::{ForceLevel, NtStatus, Rdbss, RdbssConfig, RxContext, RxError};
use rdr_smb::{SmbConfig, SmbRdr};
use samba_common::*;

/// Runs `smbstatus -s CONF FLAG` against the fixture.
fn smbstatus(env: &Env, flag: &str) -> String {
    let o = std::process::Command::new("smbstatus")
        .args(["-s", &env.conf, flag])
        .output()
        .expect("run smbstatus");
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The smbd process (our connection) holding `name` open, from `smbstatus -L`.
fn smbd_pid_holding(env: &Env, name: &str) -> Option<String> {
    smbstatus(env, "-L")
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == name))
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
}

/// Polls `cond` every 100 ms for at most 10 s; fails the test with `what` otherwise.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

struct Setup {
    rdr: Arc<SmbRdr>,
    rdbss: Rdbss,
    view: Arc<VNetRoot>,
}

async fn setup(env: &Env) -> Setup {
    let rdr = Arc::new(SmbRdr::new(SmbConfig {
        port: env.port,
        ..SmbConfig::default()
    }));
    let rdbss = Rdbss::new(rdr.clone(), RdbssConfig::default());
    let remote = RemoteName::parse(&format!("//{}/{}", env.host, env.share)).unwrap();
    let creds = Credentials {
        logon_id: 0,
        user: Some(env.user1.clone()),
        domain: None,
        password: Some(Secret::new(env.pass1.clone())),
    };
    let view = rdbss
        .add_connection(&remote, creds, &RxContext::new())
        .await
        .unwrap();
    Setup { rdr, rdbss, view }
}

/// (CANCELs sent, final responses with STATUS_CANCELLED) of the rdr's one connection.
fn wire_counters(rdr: &SmbRdr) -> (u64, u64) {
    let clients = rdr.clients();
    assert_eq!(clients.len(), 1, "one connection to the fixture");
    let c = clients[0].connection();
    (c.cancels_sent(), c.cancelled_responses())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_notify_no_force_is_files_open_and_force_gets_the_servers_status_cancelled() {
    let Some(env) = env() else { return };
    bounded(90, "finalize with a pending notification", async {
        let Setup { rdr, rdbss, view } = setup(&env).await;
        let ctx = RxContext::new();
        let dir = unique("finwatch");
        let d = rdbss
            .create(&view, &dir, &dir_params(CreateDisposition::Create), &ctx)
            .await
            .unwrap();
        let watch = format!("{}/data/{dir}\\", env.samba_dir);
        let notify = {
            let (rdbss, d) = (rdbss.clone(), d.clone());
            tokio::spawn(async move {
                rdbss
                    .notify_change(&d, notify_filter::ALL, true, &RxContext::new())
                    .await
            })
        };
        wait_for("the server never registered the notify watch", || {
            smbstatus(&env, "-N").contains(&watch)
        })
        .await;
        assert_eq!(view.number_of_pending_requests(), 1);
        let before = wire_counters(&rdr);

        // No force: FILES_OPEN at once; the notification stays pending, on both sides.
        let o = bounded(
            10,
            "finalize without force",
            rdbss.finalize_connection(&view.net_root(), Some(&view), ForceLevel::No, &ctx),
        )
        .await;
        assert_eq!(o.status, NtStatus::STATUS_FILES_OPEN);
        assert!(!o.view_removed);
        assert!(o.cancelled.is_empty(), "{:?}", o.cancelled);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!notify.is_finished(), "the notification is still pending");
        assert_eq!(view.number_of_pending_requests(), 1);
        assert!(
            smbstatus(&env, "-N").contains(&watch),
            "the server still holds the watch"
        );
        assert_eq!(wire_counters(&rdr), before, "no CANCEL went out");

        // Force: SUCCESS; the notify call returns with an error, the CANCEL went out and the
        // server itself answered the CHANGE_NOTIFY with STATUS_CANCELLED.
        let o = bounded(
            20,
            "forced finalize",
            rdbss.finalize_connection(&view.net_root(), Some(&view), ForceLevel::Yes, &ctx),
        )
        .await;
        assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
        assert!(o.view_removed);
        assert_eq!(o.cancelled.len(), 1, "{:?}", o.cancelled);
        let r = bounded(10, "the cancelled notification", notify)
            .await
            .unwrap();
        // A request cancelled by a forced delete reports its handle as orphaned (EIO at the
        // mount), whether the core's cancellation or the server's STATUS_CANCELLED lands first.
        let e = r.expect_err("the notification was cancelled, not completed");
        assert!(matches!(e, RxError::Orphaned { .. }), "{e:?}");
        let (cancels, cancelled) = before;
        wait_for("no STATUS_CANCELLED final response from the server", || {
            let (c, s) = wire_counters(&rdr);
            c > cancels && s > cancelled
        })
        .await;
        // One answer; a second CANCEL (async form) goes out only if the interim response had
        // not named the AsyncId yet when the first one was written.
        let (c, s) = wire_counters(&rdr);
        assert!((1..=2).contains(&(c - cancels)), "{} CANCELs", c - cancels);
        assert_eq!(s - cancelled, 1, "one STATUS_CANCELLED answer");
        wait_for("the server still holds the watch", || {
            !smbstatus(&env, "-N").contains(&watch)
        })
        .await;
        wait_for("the server still holds a handle of the view", || {
            smbd_pid_holding(&env, &dir).is_none()
        })
        .await;
        // The orphaned handle: closing it succeeds.
        rdbss.close(&d).await.unwrap();
        std::fs::remove_dir_all(format!("{}/data/{dir}", env.samba_dir)).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_on_close_keeps_the_open_file_then_finalizes_and_disconnects_the_tree() {
    let Some(env) = env() else { return };
    bounded(90, "finalize with DetachOnClose", async {
        let Setup { rdr, rdbss, view } = setup(&env).await;
        let ctx = RxContext::new();
        let name = unique("detach");
        let h = rdbss
            .create(&view, &name, &params(rw(), CreateDisposition::Create), &ctx)
            .await
            .unwrap();
        rdbss
            .write(&h, 0, Bytes::from_static(b"still here"), &ctx)
            .await
            .unwrap();
        let pid = smbd_pid_holding(&env, &name).expect("the server holds the handle");
        let tree_of_ours = |shares: &str| {
            shares.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.first() == Some(&env.share.as_str()) && f.get(1) == Some(&pid.as_str())
            })
        };
        assert!(
            tree_of_ours(&smbstatus(&env, "-S")),
            "smbd {pid} has a tree on {}",
            env.share
        );

        // DetachOnClose with a file open: FILES_OPEN, the view stays usable by its handle.
        let o = bounded(
            10,
            "finalize DetachOnClose",
            rdbss.finalize_connection(
                &view.net_root(),
                Some(&view),
                ForceLevel::DetachOnClose,
                &ctx,
            ),
        )
        .await;
        assert_eq!(o.status, NtStatus::STATUS_FILES_OPEN);
        assert!(!view.is_freed());
        assert_eq!(
            &rdbss.read(&h, 0, 64, &ctx).await.unwrap()[..],
            b"still here"
        );
        assert_eq!(
            smbd_pid_holding(&env, &name).as_deref(),
            Some(pid.as_str()),
            "the server still holds the handle"
        );
        assert!(
            tree_of_ours(&smbstatus(&env, "-S")),
            "the tree is still connected"
        );

        // The last handle closes: the view is finalized, the handle and the tree are gone on
        // the server.
        rdbss.close(&h).await.unwrap();
        wait_for("the view was not finalized after its last close", || {
            view.is_freed() && !rdbss.connections().iter().any(|c| Arc::ptr_eq(c, &view))
        })
        .await;
        wait_for("the server still holds the handle", || {
            smbd_pid_holding(&env, &name).is_none()
        })
        .await;
        wait_for("the tree is still connected on the server", || {
            !tree_of_ours(&smbstatus(&env, "-S"))
        })
        .await;
        // The transport itself lives on (dormant, within its linger time): the tree went
        // away because the redirector disconnected it, not because the connection dropped.
        let clients = rdr.clients();
        assert_eq!(clients.len(), 1);
        assert!(!clients[0].is_dead(), "the connection is still up");
        std::fs::remove_file(format!("{}/data/{name}", env.samba_dir)).unwrap();
    })
    .await;
}
