//! `SmbRdr` driven through rdr-core's `MiniRedirector` trait against the real Samba: SrvCall,
//! VNetRoots sharing a session per identity, SrvOpens, finalization, and error mapping.

mod samba_common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rdr_core::minirdr::{
    CreateDisposition, Credentials, MiniRedirector, MrxContext, Secret, SetInfo, SrvCallParams,
    VNetRootCreated, VNetRootParams,
};
use rdr_core::{NtStatus, RxContext};
use rdr_smb::minirdr::SmbVNetRoot;
use rdr_smb::{SmbConfig, SmbRdr};
use samba_common::*;

fn creds(user: &str, pass: &str) -> Credentials {
    Credentials {
        logon_id: 0,
        user: Some(user.to_string()),
        domain: None,
        password: Some(Secret::new(pass)),
    }
}

/// A mini-redirector with a SrvCall to the fixture's server.
async fn srv_call(env: &Env) -> (SmbRdr, MrxContext) {
    let rdr = SmbRdr::new(SmbConfig {
        port: env.port,
        ..SmbConfig::default()
    });
    let srv = rdr
        .create_srv_call(
            &SrvCallParams {
                server: env.host.clone(),
                port: None,
            },
            &RxContext::new(),
        )
        .await
        .unwrap();
    (rdr, srv)
}

/// A mini-redirector connected to the fixture's share as user 1: (it, SrvCall, view).
async fn connected(env: &Env) -> (SmbRdr, MrxContext, VNetRootCreated) {
    let (rdr, srv) = srv_call(env).await;
    let ctx = RxContext::new();
    let v = rdr
        .create_v_net_root(
            &srv,
            None,
            &VNetRootParams {
                share: env.share.clone(),
                credentials: creds(&env.user1, &env.pass1),
            },
            &ctx,
        )
        .await
        .unwrap();
    (rdr, srv, v)
}

fn tree_of(v: &MrxContext) -> Arc<rdr_smb::Tree> {
    (**v).downcast_ref::<SmbVNetRoot>().unwrap().tree().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_share_a_session_per_identity_and_finalize_logs_off_with_the_last_tree() {
    let Some(env) = env() else { return };
    bounded(60, "minirdr", async {
        let (rdr, srv) = srv_call(&env).await;
        assert_eq!(rdr.srv_call_linger(), Duration::from_secs(60));
        let ctx = RxContext::new();
        let p = |share: &str, user: &str, pass: &str| VNetRootParams {
            share: share.to_string(),
            credentials: creds(user, pass),
        };
        let a = rdr
            .create_v_net_root(&srv, None, &p(&env.share, &env.user1, &env.pass1), &ctx)
            .await
            .unwrap();
        let net_root = a
            .net_root
            .clone()
            .expect("first view makes the share's context");
        let b = rdr
            .create_v_net_root(&srv, None, &p(&env.share_enc, &env.user1, &env.pass1), &ctx)
            .await
            .unwrap();
        let c = rdr
            .create_v_net_root(
                &srv,
                Some(&net_root),
                &p(&env.share, &env.user2, &env.pass2),
                &ctx,
            )
            .await
            .unwrap();
        assert!(c.net_root.is_none());
        let (ta, tb, tc) = (
            tree_of(&a.v_net_root),
            tree_of(&b.v_net_root),
            tree_of(&c.v_net_root),
        );
        assert_eq!(
            ta.session().id(),
            tb.session().id(),
            "one session per identity"
        );
        assert_ne!(ta.session().id(), tc.session().id());
        assert!(
            Arc::ptr_eq(ta.session().client(), tc.session().client()),
            "one connection"
        );

        // File operations through the trait.
        let name = unique("trait");
        let o = rdr
            .create(
                &a.v_net_root,
                &name,
                &params(rw(), CreateDisposition::Create),
                &ctx,
            )
            .await
            .unwrap();
        assert!(o.buffering.read_caching);
        let data = Bytes::from(pattern(5 << 20, 9));
        assert_eq!(
            rdr.write(&o.srv_open, 0, data.clone(), &ctx).await.unwrap(),
            data.len() as u32
        );
        rdr.flush(&o.srv_open, &ctx).await.unwrap();
        assert!(rdr.read(&o.srv_open, 0, 6 << 20, &ctx).await.unwrap() == data);
        assert_eq!(
            rdr.query_info(&o.srv_open, &ctx).await.unwrap().size,
            data.len() as u64
        );
        assert_eq!(
            rdr.query_path_info(&c.v_net_root, &name, &ctx)
                .await
                .unwrap()
                .size,
            data.len() as u64
        );
        let e = rdr
            .set_info(&o.srv_open, &SetInfo::Mode(0o644), &ctx)
            .await
            .unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_NOT_SUPPORTED);
        rdr.set_info(&o.srv_open, &SetInfo::Disposition(true), &ctx)
            .await
            .unwrap();
        rdr.close_srv_open(&o.srv_open).await.unwrap();
        let e = rdr
            .query_path_info(&a.v_net_root, &name, &ctx)
            .await
            .unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
        assert!(
            rdr.query_volume(&b.v_net_root, &ctx)
                .await
                .unwrap()
                .total_bytes
                > 0
        );

        // Finalizing the first view of user 1 keeps the session (its other tree works).
        rdr.finalize_v_net_root(&a.v_net_root).await;
        assert!(ta.is_disconnected());
        assert!(!ta.session().is_logged_off());
        rdr.query_volume(&b.v_net_root, &ctx).await.unwrap();
        // The last one logs the session off; user 2 is untouched.
        rdr.finalize_v_net_root(&b.v_net_root).await;
        assert!(tb.session().is_logged_off());
        rdr.query_volume(&c.v_net_root, &ctx).await.unwrap();
        // A new view of user 1 sets up a fresh session on the same connection.
        let d = rdr
            .create_v_net_root(
                &srv,
                Some(&net_root),
                &p(&env.share, &env.user1, &env.pass1),
                &ctx,
            )
            .await
            .unwrap();
        let td = tree_of(&d.v_net_root);
        assert_ne!(td.session().id(), ta.session().id());
        assert!(Arc::ptr_eq(td.session().client(), tc.session().client()));
        rdr.finalize_v_net_root(&d.v_net_root).await;
        rdr.finalize_v_net_root(&c.v_net_root).await;
        rdr.finalize_net_root(&net_root).await;
        let client = SmbRdr::client_of(&srv).unwrap();
        rdr.finalize_srv_call(&srv, false).await;
        assert!(client.is_dead(), "finalize_srv_call closes the connection");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trait_errors_carry_the_servers_status_and_name_the_thing() {
    let Some(env) = env() else { return };
    bounded(30, "errors", async {
        let (rdr, srv) = srv_call(&env).await;
        let ctx = RxContext::new();
        let p = |share: &str, pass: &str| VNetRootParams {
            share: share.into(),
            credentials: creds(&env.user1, pass),
        };
        let e = rdr
            .create_v_net_root(&srv, None, &p(&env.share, "wrong"), &ctx)
            .await
            .err()
            .unwrap();
        assert_eq!(e.nt_status(), NtStatus::STATUS_LOGON_FAILURE, "{e}");
        let e = rdr
            .create_v_net_root(&srv, None, &p("nope", &env.pass1), &ctx)
            .await
            .err()
            .unwrap();
        assert_eq!(e.nt_status(), NtStatus::STATUS_BAD_NETWORK_NAME, "{e}");
        assert!(e.to_string().contains("nope"));
        let v = rdr
            .create_v_net_root(&srv, None, &p(&env.share_ro, &env.pass1), &ctx)
            .await
            .unwrap();
        let e = rdr
            .create(
                &v.v_net_root,
                "x.txt",
                &params(rw(), CreateDisposition::Create),
                &ctx,
            )
            .await
            .err()
            .unwrap();
        assert_eq!(e.nt_status(), NtStatus::STATUS_ACCESS_DENIED, "{e}");
        // Same user, another password while the session exists: a credential conflict.
        let e = rdr
            .create_v_net_root(&srv, None, &p(&env.share, "other"), &ctx)
            .await
            .err()
            .unwrap();
        assert_eq!(
            e.nt_status(),
            NtStatus::STATUS_NETWORK_CREDENTIAL_CONFLICT,
            "{e}"
        );
        rdr.finalize_v_net_root(&v.v_net_root).await;
        rdr.finalize_srv_call(&srv, true).await;
        // Refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = tokio::time::timeout(
            Duration::from_secs(1),
            rdr.create_srv_call(
                &SrvCallParams {
                    server: "127.0.0.1".into(),
                    port: Some(port),
                },
                &ctx,
            ),
        )
        .await
        .expect("within a second")
        .err()
        .unwrap();
        assert_eq!(e.nt_status(), NtStatus::STATUS_CONNECTION_REFUSED, "{e}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaks_of_every_connection_reach_the_minirdr_subscriber() {
    let Some(env) = env() else { return };
    bounded(60, "minirdr breaks", async {
        let ctx = RxContext::new();
        // The connection exists before the subscription: its breaks still arrive.
        let (rdr, srv, v) = connected(&env).await;
        let mut breaks = rdr.subscribe_breaks();
        let name = unique("rdr-leased");
        let p = params(
            rdr_core::minirdr::AccessMask::GENERIC_READ
                | rdr_core::minirdr::AccessMask::GENERIC_WRITE,
            CreateDisposition::Create,
        );
        let o = rdr.create(&v.v_net_root, &name, &p, &ctx).await.unwrap();
        assert!(o.buffering.write_caching);
        let consumer = tokio::spawn(async move {
            let ev = breaks.recv().await.unwrap();
            let path = ev.path.clone();
            ev.release();
            path
        });
        let (env2, name2) = (env.clone(), name.clone());
        let (ok, out) = tokio::task::spawn_blocking(move || {
            env2.smbclient(&env2.share, &format!("get {name2} /dev/null"))
        })
        .await
        .unwrap();
        assert!(ok, "{out}");
        let path = tokio::time::timeout(Duration::from_secs(5), consumer)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(path.as_deref(), Some(name.as_str()));
        rdr.close_srv_open(&o.srv_open).await.unwrap();
        rdr.finalize_v_net_root(&v.v_net_root).await;
        rdr.finalize_srv_call(&srv, false).await;
        std::fs::remove_file(format!("{}/data/{name}", env.samba_dir)).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_file_is_one_compound_that_fails_as_the_deletion_would() {
    let Some(env) = env() else { return };
    bounded(30, "delete_file", async {
        let ctx = RxContext::new();
        let (rdr, srv, v) = connected(&env).await;
        let name = unique("del");
        let on_server = std::path::Path::new(&env.samba_dir)
            .join(&env.share)
            .join(&name);
        let make = || async {
            let o = rdr
                .create(
                    &v.v_net_root,
                    &name,
                    &params(rw(), CreateDisposition::Create),
                    &ctx,
                )
                .await
                .unwrap();
            rdr.close_srv_open(&o.srv_open).await.unwrap();
        };
        make().await;
        assert!(on_server.exists());
        rdr.delete_file(&v.v_net_root, &name, &ctx).await.unwrap();
        assert!(!on_server.exists(), "deleted on the server");
        // Missing: the open's status, naming the file.
        let e = rdr
            .delete_file(&v.v_net_root, &name, &ctx)
            .await
            .unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND, "{e}");
        assert!(e.to_string().contains(&name), "{e}");
        // Held open without FILE_SHARE_DELETE: a sharing violation, and the file stays.
        make().await;
        let mut p = params(rw(), CreateDisposition::Open);
        p.share = rdr_core::minirdr::ShareAccess::READ | rdr_core::minirdr::ShareAccess::WRITE;
        let held = rdr.create(&v.v_net_root, &name, &p, &ctx).await.unwrap();
        let e = rdr
            .delete_file(&v.v_net_root, &name, &ctx)
            .await
            .unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_SHARING_VIOLATION, "{e}");
        assert!(on_server.exists());
        rdr.close_srv_open(&held.srv_open).await.unwrap();
        // A directory is not a file.
        std::fs::remove_file(&on_server).unwrap();
        std::fs::create_dir(&on_server).unwrap();
        let e = rdr
            .delete_file(&v.v_net_root, &name, &ctx)
            .await
            .unwrap_err();
        assert_eq!(e.nt_status(), NtStatus::STATUS_FILE_IS_A_DIRECTORY, "{e}");
        std::fs::remove_dir(&on_server).unwrap();
        rdr.finalize_v_net_root(&v.v_net_root).await;
        rdr.finalize_srv_call(&srv, true).await;
    })
    .await;
}
