//! Benchmark (not a test): rdr-smb's API against `smbclient`, in one run, on the same Samba.
//! Sequential write and read of a large file, then creating and stat-ing 2,000 4 KiB files.
//! Prints each figure and the speed ratio rdr ÷ smbclient (> 1 means rdr is faster).
//! Each timing includes connecting and authenticating (smbclient does so per command).
//!
//! Run with `bench/smb-bench.sh` (it starts the fixture and builds in release), or with the
//! fixture's environment set: `cargo run --release -p rdr-smb --example smb_bench [MiB] [files]`.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdr_core::minirdr::{AccessMask, CreateDisposition, CreateOptions, CreateParams, ShareAccess};
use rdr_smb::{ClientConfig, Identity, Session, SmbClient, Tree};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Env {
    host: String,
    port: u16,
    user: String,
    pass: String,
    share: String,
    dir: String,
}

fn env() -> Res<Env> {
    let g = |k: &str| {
        std::env::var(k).map_err(|_| format!("{k} is not set (source /tmp/rdr-samba/env)"))
    };
    Ok(Env {
        host: g("RDR_SMB_HOST")?,
        port: g("RDR_SMB_PORT")?.parse()?,
        user: g("RDR_SMB_USER1")?,
        pass: g("RDR_SMB_PASS1")?,
        share: g("RDR_SMB_SHARE")?,
        dir: g("RDR_SAMBA_DIR")?,
    })
}

fn smbclient(e: &Env, cmd: &str, stdin: Option<&str>) -> Res<Duration> {
    let t = Instant::now();
    let mut c = Command::new("smbclient");
    c.args([
        "-p",
        &e.port.to_string(),
        &format!("//{}/{}", e.host, e.share),
    ])
    .args(["-U", &format!("{}%{}", e.user, e.pass)])
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    if !cmd.is_empty() {
        c.args(["-c", cmd]);
    }
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = c.spawn()?;
    if let Some(s) = stdin {
        use std::io::Write;
        child.stdin.take().ok_or("stdin")?.write_all(s.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(format!("smbclient {cmd}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(t.elapsed())
}

/// The client settings; `RDR_BENCH_CHUNK` (bytes) and `RDR_BENCH_DEPTH` override the defaults.
/// Signing as smbclient does it (only when the server requires it) unless
/// `RDR_BENCH_SIGNING=required`, which signs every message.
fn config() -> ClientConfig {
    let mut c = ClientConfig {
        require_signing: std::env::var("RDR_BENCH_SIGNING").is_ok_and(|v| v == "required"),
        ..ClientConfig::default()
    };
    if let Some(v) = std::env::var("RDR_BENCH_CHUNK")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        c.io_chunk = v;
    }
    if let Some(v) = std::env::var("RDR_BENCH_DEPTH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        c.io_depth = v;
    }
    c
}

async fn connect(e: &Env) -> Res<Arc<Tree>> {
    let client = SmbClient::connect(&e.host, e.port, config()).await?;
    let s = Session::setup(
        &client,
        &Identity {
            user: e.user.clone(),
            domain: String::new(),
            password: e.pass.clone(),
        },
    )
    .await?;
    Ok(Tree::connect(&s, &e.share).await?)
}

fn file_params(access: AccessMask, d: CreateDisposition) -> CreateParams {
    CreateParams {
        access,
        share: ShareAccess::READ | ShareAccess::WRITE | ShareAccess::DELETE,
        disposition: d,
        options: CreateOptions::NON_DIRECTORY_FILE,
        attributes: 0,
        mode: None,
    }
}

fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> Res<()> {
    let e = env()?;
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(512);
    let files: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(2000);
    let runs: usize = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(3);
    let size = mib << 20;
    let tag = std::process::id();
    let local = format!("/tmp/smb-bench-{tag}.bin");
    let data: Vec<u8> = (0..size)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&local, &data)?;
    let data = Bytes::from(data);
    let remote_rdr = format!("bench-rdr-{tag}.bin");
    let remote_smb = format!("bench-smb-{tag}.bin");

    let (mut rw, mut rr, mut sw, mut sr) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        // rdr write: connect + session + tree + create + pipelined writes + close.
        let t = Instant::now();
        let tree = connect(&e).await?;
        let f = tree
            .create(
                &remote_rdr,
                &file_params(AccessMask::GENERIC_WRITE, CreateDisposition::OverwriteIf),
            )
            .await?;
        let n = f.write(0, data.clone()).await?;
        f.close().await?;
        rw.push(t.elapsed());
        assert_eq!(n, size);
        tree.session().client().shutdown().await;
        // smbclient put.
        sw.push(smbclient(&e, &format!("put {local} {remote_smb}"), None)?);
        // rdr read: connect … pipelined reads, data dropped.
        let t = Instant::now();
        let tree = connect(&e).await?;
        let f = tree
            .create(
                &remote_rdr,
                &file_params(AccessMask::GENERIC_READ, CreateDisposition::Open),
            )
            .await?;
        let got = f.read_each(0, size, |_, _| Ok(())).await?;
        f.close().await?;
        rr.push(t.elapsed());
        assert_eq!(got, size);
        tree.session().client().shutdown().await;
        sr.push(smbclient(&e, &format!("get {remote_smb} /dev/null"), None)?);
    }
    let _ = std::fs::remove_file(format!("{}/data/{remote_rdr}", e.dir));
    let _ = std::fs::remove_file(format!("{}/data/{remote_smb}", e.dir));
    let _ = std::fs::remove_file(&local);

    // Metadata: 2,000 × 4 KiB files.
    let small_dir = format!("/tmp/smb-bench-{tag}-small");
    std::fs::create_dir_all(&small_dir)?;
    let small = Bytes::from(vec![7u8; 4096]);
    for i in 0..files {
        std::fs::write(format!("{small_dir}/f{i:05}.dat"), &small)?;
    }
    let (mut rc, mut rs, mut sc, mut ss) = (vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        let rdir = format!("meta-rdr-{tag}-{run}");
        let sdir = format!("meta-smb-{tag}-{run}");
        // rdr: mkdir, then compound CREATE+WRITE+CLOSE per file, 64 files in flight (RDR_BENCH_META_DEPTH).
        let t = Instant::now();
        let tree = connect(&e).await?;
        let d = tree
            .create(
                &rdir,
                &CreateParams {
                    options: CreateOptions::DIRECTORY_FILE,
                    ..file_params(AccessMask::GENERIC_READ, CreateDisposition::Create)
                },
            )
            .await?;
        d.close().await?;
        let workers: usize = std::env::var("RDR_BENCH_META_DEPTH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(16);
        let mut tasks = Vec::new();
        for w in 0..workers {
            let (tree, rdir, small) = (tree.clone(), rdir.clone(), small.clone());
            tasks.push(tokio::spawn(async move {
                for i in (w..files).step_by(workers) {
                    tree.put_file(&format!("{rdir}\\f{i:05}.dat"), small.clone())
                        .await?;
                }
                Ok::<_, rdr_core::RxError>(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        rc.push(t.elapsed());
        // rdr: stat every file (compound CREATE+QUERY_INFO+CLOSE), as many in flight.
        let t = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..workers {
            let (tree, rdir) = (tree.clone(), rdir.clone());
            tasks.push(tokio::spawn(async move {
                for i in (w..files).step_by(workers) {
                    let i = tree
                        .query_path_info(&format!("{rdir}\\f{i:05}.dat"))
                        .await?;
                    assert_eq!(i.size, 4096);
                }
                Ok::<_, rdr_core::RxError>(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        rs.push(t.elapsed());
        tree.session().client().shutdown().await;
        // smbclient: mkdir + mput; then allinfo for every file in one session.
        sc.push(smbclient(
            &e,
            &format!("prompt off; lcd {small_dir}; mkdir {sdir}; cd {sdir}; mput *"),
            None,
        )?);
        let script: String = (0..files)
            .map(|i| format!("allinfo {sdir}/f{i:05}.dat\n"))
            .collect();
        ss.push(smbclient(&e, "", Some(&script))?);
        let _ = std::fs::remove_dir_all(format!("{}/data/{rdir}", e.dir));
        let _ = std::fs::remove_dir_all(format!("{}/data/{sdir}", e.dir));
    }
    let _ = std::fs::remove_dir_all(&small_dir);

    // Each rdr run is next to its smbclient run, so the per-run ratio is robust to the load
    // of a shared machine drifting; the table shows medians of times and of ratios.
    let ratio = |r: &[Duration], s: &[Duration]| {
        let mut v: Vec<f64> = r
            .iter()
            .zip(s)
            .map(|(r, s)| s.as_secs_f64() / r.as_secs_f64())
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let ratios = [
        ratio(&rw, &sw),
        ratio(&rr, &sr),
        ratio(&rc, &sc),
        ratio(&rs, &ss),
    ];
    let (rw, rr, sw, sr) = (median(rw), median(rr), median(sw), median(sr));
    let (rc, rs, sc, ss) = (median(rc), median(rs), median(sc), median(ss));
    println!(
        "rdr-smb API vs smbclient, median of {runs} runs, {mib} MiB file, {files} files of 4 KiB"
    );
    println!(
        "{:<28} {:>12} {:>12} {:>10}",
        "operation", "rdr", "smbclient", "rdr÷smb"
    );
    println!(
        "{:<28} {:>9.0} MB/s {:>7.0} MB/s {:>9.2}x",
        "sequential write",
        mbps(size, rw),
        mbps(size, sw),
        ratios[0]
    );
    println!(
        "{:<28} {:>9.0} MB/s {:>7.0} MB/s {:>9.2}x",
        "sequential read",
        mbps(size, rr),
        mbps(size, sr),
        ratios[1]
    );
    println!(
        "{:<28} {:>10.3} s {:>10.3} s {:>9.2}x",
        format!("create {files} x 4 KiB"),
        rc.as_secs_f64(),
        sc.as_secs_f64(),
        ratios[2]
    );
    println!(
        "{:<28} {:>10.3} s {:>10.3} s {:>9.2}x",
        format!("stat {files}"),
        rs.as_secs_f64(),
        ss.as_secs_f64(),
        ratios[3]
    );
    Ok(())
}
