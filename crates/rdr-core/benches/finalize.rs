//! Benchmarks of the core's hot structural paths, over the in-memory test mini-redirector:
//!
//! * a forced `finalize_connection` of a view holding 10,000 open handles, alone and with
//!   100,000 handles open on another view of the same share — the cost must depend on the view's
//!   own handles (per-view indexes), not on the share; the ratio is printed;
//! * a name-table lookup with 10,000 connections (and with 10, for the ratio).

use criterion::{BenchmarkId, Criterion, SamplingMode};
use rdr_core::fobx::Fobx;
use rdr_core::v_net_root::VNetRoot;
use rdr_core::{ForceLevel, NtStatus, RxContext};
use rdr_testkit::Env;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const OWN: usize = 10_000;
const OTHER: usize = 100_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

async fn open_many(env: &Env, v: &Arc<VNetRoot>, prefix: &str, n: usize) -> Vec<Arc<Fobx>> {
    let mut hs = Vec::with_capacity(n);
    for i in 0..n {
        hs.push(env.open(v, &format!("{prefix}{i}")).await);
    }
    hs
}

/// A share with `OWN` files for the finalized view and `other` handles open on another view.
fn setup(rt: &tokio::runtime::Runtime, other: usize) -> (Env, Vec<Arc<Fobx>>) {
    let env = Env::new();
    for i in 0..OWN {
        env.fx.make_file(&format!("v{i}"), b"x");
    }
    for i in 0..other {
        env.fx.make_file(&format!("w{i}"), b"x");
    }
    let held = rt.block_on(async {
        let w = env.view(2).await;
        open_many(&env, &w, "w", other).await
    });
    (env, held)
}

/// One forced finalize of a fresh view with `OWN` handles; returns the time of the finalize only.
fn forced_finalize_once(rt: &tokio::runtime::Runtime, env: &Env) -> Duration {
    let (v, hs) = rt.block_on(async {
        let v = env.view(1).await;
        let hs = open_many(env, &v, "v", OWN).await;
        (v, hs)
    });
    let t = Instant::now();
    let o = rt.block_on(env.rdbss.finalize_connection(
        &v.net_root(),
        Some(&v),
        ForceLevel::Yes,
        &RxContext::new(),
    ));
    let took = t.elapsed();
    assert_eq!(o.status, NtStatus::STATUS_SUCCESS);
    assert_eq!(o.open_handles.len(), OWN);
    rt.block_on(async {
        for h in hs {
            env.rdbss
                .close(&h)
                .await
                .expect("close of an orphaned handle");
        }
    });
    took
}

fn bench_forced_finalize(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("forced_finalize_10k_handles");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    for other in [0, OTHER] {
        let (env, _held) = setup(&rt, other);
        g.bench_with_input(
            BenchmarkId::new("other_view_handles", other),
            &other,
            |b, _| b.iter_custom(|iters| (0..iters).map(|_| forced_finalize_once(&rt, &env)).sum()),
        );
    }
    g.finish();
}

fn lookup_env(rt: &tokio::runtime::Runtime, n: usize) -> Env {
    let env = Env::new();
    rt.block_on(async {
        for i in 0..n {
            env.view_of(&format!(r"\\srv\share{i}"), 1).await;
        }
    });
    env
}

fn bench_lookup(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("name_table_lookup");
    for n in [10, 10_000] {
        let env = lookup_env(&rt, n);
        let name = format!(r"\\SRV\share{}\dir\file.txt", n / 2);
        g.bench_with_input(BenchmarkId::new("connections", n), &n, |b, _| {
            b.iter(|| black_box(env.rdbss.lookup(black_box(&name), 1)).is_some())
        });
    }
    g.finish();
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The ratios the issue asks for, measured directly (median of a few runs).
fn report_ratios() {
    let rt = runtime();
    let mut med = Vec::new();
    for other in [0, OTHER] {
        let (env, _held) = setup(&rt, other);
        med.push(median(
            (0..5).map(|_| forced_finalize_once(&rt, &env)).collect(),
        ));
    }
    println!(
        "forced finalize of {OWN} handles: alone {:?}, with {OTHER} handles on another view {:?}, ratio {:.2}",
        med[0],
        med[1],
        med[1].as_secs_f64() / med[0].as_secs_f64()
    );
    let mut per = Vec::new();
    for n in [10, 10_000] {
        let env = lookup_env(&rt, n);
        let name = format!(r"\\SRV\share{}\dir\file.txt", n / 2);
        let rounds = 200_000;
        let t = Instant::now();
        for _ in 0..rounds {
            black_box(env.rdbss.lookup(black_box(&name), 1));
        }
        per.push(t.elapsed() / rounds);
    }
    println!(
        "name-table lookup: 10 connections {:?}, 10,000 connections {:?}, ratio {:.2}",
        per[0],
        per[1],
        per[1].as_secs_f64() / per[0].as_secs_f64()
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_forced_finalize(&mut c);
    bench_lookup(&mut c);
    report_ratios();
    c.final_summary();
}
