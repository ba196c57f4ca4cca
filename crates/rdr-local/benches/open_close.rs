//! Open + close of an existing file through the core (`Rdbss` over `LocalRdr`) against plain
//! `std::fs::File::open` + drop on the same real file; the ratio is printed. Two core variants:
//! the default configuration (LocalRdr grants handle caching, so a close is delayed and the next
//! open reuses the server open — what a user gets), and delayed close switched off (every open is
//! a real server open: openat2, statx, share-mode bookkeeping, close).

use criterion::{BenchmarkId, Criterion};
use rdr_core::minirdr::{AccessMask, CreateParams, Credentials};
use rdr_core::name::RemoteName;
use rdr_core::v_net_root::VNetRoot;
use rdr_core::{Rdbss, RdbssConfig, RxContext};
use rdr_local::LocalRdr;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A redirector over `dir` exported as `\\localhost\bench`, and a view of it.
fn core(
    rt: &tokio::runtime::Runtime,
    dir: &Path,
    config: RdbssConfig,
) -> (Rdbss, LocalRdr, Arc<VNetRoot>) {
    let local = LocalRdr::new();
    local
        .export("bench", dir.to_path_buf())
        .expect("export the bench directory");
    let rdbss = Rdbss::new(Arc::new(local.clone()), config);
    let name = RemoteName::parse(r"\\localhost\bench").expect("a share name");
    let v = rt
        .block_on(rdbss.add_connection(&name, Credentials::default(), &RxContext::new()))
        .expect("connect the bench share");
    (rdbss, local, v)
}

async fn open_close(rdbss: &Rdbss, v: &Arc<VNetRoot>) {
    let p = CreateParams::open_existing(AccessMask::FILE_READ_DATA);
    let h = rdbss
        .create(v, "file.bin", &p, &RxContext::new())
        .await
        .expect("open through the core");
    rdbss.close(&h).await.expect("close through the core");
}

fn std_open_close(path: &Path) {
    drop(black_box(std::fs::File::open(path).expect("std open")));
}

fn configs() -> [(&'static str, RdbssConfig); 2] {
    [
        ("delayed_close", RdbssConfig::default()),
        (
            "no_delayed_close",
            RdbssConfig {
                max_delayed_close: 0,
                ..RdbssConfig::default()
            },
        ),
    ]
}

fn bench(c: &mut Criterion, dir: &Path) {
    let rt = runtime();
    let path = dir.join("file.bin");
    let mut g = c.benchmark_group("open_close");
    g.measurement_time(Duration::from_secs(3));
    g.bench_function("std_fs", |b| b.iter(|| std_open_close(&path)));
    for (name, config) in configs() {
        let (rdbss, _local, v) = core(&rt, dir, config);
        g.bench_with_input(BenchmarkId::new("rdbss_local", name), &name, |b, _| {
            b.iter(|| rt.block_on(open_close(&rdbss, &v)))
        });
    }
    g.finish();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Per-operation time: the median of several timed batches.
fn per_op(mut f: impl FnMut()) -> Duration {
    const BATCH: u32 = 2_000;
    for _ in 0..BATCH / 10 {
        f();
    }
    median(
        (0..7)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..BATCH {
                    f();
                }
                t.elapsed() / BATCH
            })
            .collect(),
    )
}

fn report_ratios(dir: &Path) {
    let rt = runtime();
    let path = dir.join("file.bin");
    let plain = per_op(|| std_open_close(&path));
    println!("open+close, plain std::fs: {plain:?}");
    for (name, config) in configs() {
        let (rdbss, local, v) = core(&rt, dir, config);
        let t = per_op(|| rt.block_on(open_close(&rdbss, &v)));
        println!(
            "open+close through Rdbss on rdr-local ({name}): {t:?}, ratio to std::fs {:.2} \
             (server opens still held: {})",
            t.as_secs_f64() / plain.as_secs_f64(),
            local.stats().srv_opens
        );
    }
}

fn main() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(tmp.path().join("file.bin"), vec![7u8; 4096]).expect("the bench file");
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c, tmp.path());
    report_ratios(tmp.path());
    c.final_summary();
}
