//! `Fobx::open_info`: the metadata a create brought back, offered only while it is what a query
//! would say (the front end then skips a GETINFO round trip after every open).

use bytes::Bytes;
use rdr_core::RxContext;
use rdr_core::minirdr::{AccessMask, CreateDisposition, CreateParams};
use rdr_testkit::{Env, bounded};

fn rw() -> AccessMask {
    AccessMask::FILE_READ_DATA | AccessMask::FILE_WRITE_DATA
}

#[tokio::test]
async fn a_new_open_and_a_collapsed_one_give_current_metadata() {
    bounded(async {
        let env = Env::new();
        let v = env.view(1).await;
        let ctx = RxContext::new();

        // A file made by the create: its metadata came with it.
        let mut p = CreateParams::open_existing(rw());
        p.disposition = CreateDisposition::Create;
        let n = env.rdbss.create(&v, "new", &p, &ctx).await.unwrap();
        let i = n.open_info().expect("a new open carries its metadata");
        assert_eq!((i.size, i.is_dir), (0, false));

        // An existing file, then a write through that handle, then a second open that
        // collapses onto the same server open: its metadata is the server's now, not the
        // first create's.
        let a = env.open(&v, "f").await;
        assert_eq!(a.open_info().unwrap().size, 5);
        let opens = env.probe.count(&env.probe.counters.opens);
        let w = env
            .rdbss
            .write(&a, 5, Bytes::from_static(b", world"), &ctx)
            .await
            .unwrap();
        assert_eq!(w, 7);
        let b = env.open(&v, "f").await;
        assert_eq!(
            env.probe.count(&env.probe.counters.opens),
            opens,
            "the second open collapsed"
        );
        assert!(std::ptr::eq(a.srv_open().as_ref(), b.srv_open().as_ref()));
        assert_eq!(b.open_info().expect("re-queried").size, 12);
        assert_eq!(
            b.open_info(),
            Some(env.rdbss.query_info(&b, &ctx).await.unwrap())
        );

        for f in [n, a, b] {
            env.rdbss.close(&f).await.unwrap();
        }
        env.assert_server_opens(0, "all closed");
    })
    .await
}
