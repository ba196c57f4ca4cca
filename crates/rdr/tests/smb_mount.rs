//! End-to-end tests of `rdr use` against a real Samba (scripts/samba-fixture.sh, whose
//! settings scripts/test.sh exports as RDR_SMB_*): real daemon, real FUSE mounts over SMB,
//! real processes holding files open, real Linux users. Without the fixture: skip (fail
//! under CI).

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Not a test: the body of the holder process (`Holder`), active only with RDR_HOLDER_FILE.
#[test]
fn holder_main() {
    holder_body();
}

/// The fixture's settings.
#[derive(Clone)]
struct Smb {
    host: String,
    port: u16,
    users: [(String, String); 2],
    share: String,
    samba_dir: PathBuf,
    conf: String,
}

impl Smb {
    fn get(test: &str) -> Option<Smb> {
        if !can_run(test) {
            return None;
        }
        let v = |k: &str| std::env::var(k).ok();
        let got = (|| {
            Some(Smb {
                host: v("RDR_SMB_HOST")?,
                port: v("RDR_SMB_PORT")?.parse().ok()?,
                users: [
                    (v("RDR_SMB_USER1")?, v("RDR_SMB_PASS1")?),
                    (v("RDR_SMB_USER2")?, v("RDR_SMB_PASS2")?),
                ],
                share: v("RDR_SMB_SHARE")?,
                samba_dir: v("RDR_SAMBA_DIR")?.into(),
                conf: v("RDR_SAMBA_CONF")?,
            })
        })();
        if got.is_none() {
            let why = "RDR_SMB_* not set (run scripts/samba-fixture.sh start; set -a; . /tmp/rdr-samba/env; set +a)";
            if std::env::var_os("CI").is_some() {
                panic!("{test}: cannot run: {why} (CI is set, so this is a failure)");
            }
            eprintln!("{test}: SKIPPED: {why}");
        }
        got
    }

    fn remote(&self) -> String {
        format!("//{}:{}/{}", self.host, self.port, self.share)
    }

    /// The share's directory on the server.
    fn server_path(&self, name: &str) -> PathBuf {
        self.samba_dir.join(&self.share).join(name)
    }

    /// `smbstatus -L` (open files and locks) as text.
    fn open_files(&self) -> String {
        let mut c = Command::new("smbstatus");
        c.args(["-s", &self.conf, "-L"]);
        let o = run_bounded(c, Duration::from_secs(30));
        stdout(&o)
    }
}

/// A unique name in the share.
fn unique(tag: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// Removes server-side paths when dropped.
struct ServerFiles(Vec<PathBuf>);

impl Drop for ServerFiles {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_dir_all(p);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A 0600 password file owned by `owner` in the env's temp dir.
fn password_file(env: &Env, pass: &str, owner: Option<(u32, u32)>) -> PathBuf {
    let p = env.dir.path().join(unique("pw"));
    std::fs::write(&p, format!("{pass}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    if let Some((u, g)) = owner {
        std::os::unix::fs::chown(&p, Some(u), Some(g)).unwrap();
    }
    p
}

/// `rdr use MP REMOTE --user U --password-file F`, asserting success.
fn smb_use(env: &mut Env, smb: &Smb, mp: &Path, who: usize) {
    smb_use_with(env, smb, mp, who, &[]);
}

/// `smb_use` with more options (`--actimeo 0`).
fn smb_use_with(env: &mut Env, smb: &Smb, mp: &Path, who: usize, extra: &[&str]) {
    let pw = password_file(env, &smb.users[who].1, None);
    let mp_s = mp.to_str().unwrap();
    let remote = smb.remote();
    let mut args = vec![
        "use",
        mp_s,
        remote.as_str(),
        "--user",
        &smb.users[who].0,
        "--password-file",
        pw.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = env.rdr(&args);
    assert!(
        o.status.success(),
        "rdr use failed: {}\n{}\nlog:\n{}",
        stdout(&o),
        stderr(&o),
        env.log()
    );
    assert!(is_mounted(mp), "{} is not mounted", mp.display());
    env.mounts.push(mp.to_path_buf());
}

/// Local ports of the TCP connections of process `pid` to 127.0.0.1:`port` (socket inodes in
/// /proc/PID/fd matched against /proc/net/tcp).
fn local_ports_to(pid: i32, port: u16) -> Vec<u16> {
    let mut inodes = std::collections::HashSet::new();
    if let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in rd.flatten() {
            if let Ok(l) = std::fs::read_link(e.path()) {
                let l = l.to_string_lossy().into_owned();
                if let Some(i) = l.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                    inodes.insert(i.to_string());
                }
            }
        }
    }
    let want = format!(":{port:04X}");
    let mut ports = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let t = std::fs::read_to_string(f).unwrap_or_default();
        for l in t.lines().skip(1) {
            let c: Vec<&str> = l.split_whitespace().collect();
            // local_address is column 1, rem_address 2, st 3 (01 = ESTABLISHED), inode 9.
            if c.len() > 9 && c[2].ends_with(&want) && c[3] == "01" && inodes.contains(c[9]) {
                let local = c[1].rsplit(':').next();
                if let Some(p) = local.and_then(|h| u16::from_str_radix(h, 16).ok()) {
                    ports.push(p);
                }
            }
        }
    }
    ports
}

/// TCP connections of process `pid` to 127.0.0.1:`port`.
fn sockets_to(pid: i32, port: u16) -> usize {
    local_ports_to(pid, port).len()
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2654435761).rotate_left(seed as u32) as u8)
        .collect()
}

fn sh(script: &str, limit: Duration) -> std::process::Output {
    let mut c = Command::new("sh");
    c.args(["-c", script]);
    run_bounded(c, limit)
}

fn list_len(env: &Env) -> usize {
    let o = env.rdr(&["use", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array().unwrap().len()
}

#[test]
fn smb_files_roundtrip_through_the_mount() {
    let Some(smb) = Smb::get("smb_files_roundtrip_through_the_mount") else {
        return;
    };
    let mut env = Env::new();
    let mp = env.dir.path().join("rt-mnt");
    let dir = unique("rdr-rt");
    let _clean = ServerFiles(vec![smb.server_path(&dir)]);
    smb_use(&mut env, &smb, &mp, 0);
    let d = mp.join(&dir);
    std::fs::create_dir(&d).unwrap();
    assert!(smb.server_path(&dir).is_dir(), "mkdir reached the server");

    // Write through the mount; compare on the server and back through the mount.
    for (i, size) in [
        0usize,
        1,
        4095,
        4096,
        65_537,
        131_073,
        (1 << 20) + 3,
        9 << 20,
    ]
    .into_iter()
    .enumerate()
    {
        let data = pattern(size, i as u8);
        let f = d.join(format!("f{i}.bin"));
        std::fs::write(&f, &data).unwrap();
        assert_eq!(
            std::fs::read(smb.server_path(&format!("{dir}/f{i}.bin"))).unwrap(),
            data,
            "server copy of f{i} ({size} bytes)"
        );
        assert_eq!(std::fs::read(&f).unwrap(), data, "mount f{i}");
        assert_eq!(std::fs::metadata(&f).unwrap().len(), size as u64);
    }
    // A file made on the server appears in the mount (within the attribute TTL: the mount
    // made the directory, so it knows its names for that long).
    let outside = pattern(300_000, 9);
    std::fs::write(smb.server_path(&format!("{dir}/outside.bin")), &outside).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || d.join("outside.bin").exists()),
        "a file made on the server never appeared in the mount"
    );
    assert_eq!(std::fs::read(d.join("outside.bin")).unwrap(), outside);

    // The shell's tools: cp, cat, ls -l, mv, rm, mkdir, truncate, append.
    let ds = d.to_str().unwrap();
    let o = sh(
        &format!(
            "set -e; cd '{ds}'; printf 'hello\\n' > a.txt; cp a.txt b.txt; printf 'more\\n' >> b.txt; \
             cat b.txt; mkdir sub; mv b.txt sub/c.txt; truncate -s 3 a.txt; truncate -s 10000 sub/c.txt; \
             ls -l a.txt sub/c.txt | awk '{{print $5, $9}}'; rm a.txt; ls"
        ),
        Duration::from_secs(60),
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with("hello\nmore\n3 a.txt\n10000 sub/c.txt\n"),
        "{out}"
    );
    assert!(out.ends_with("outside.bin\nsub\n"), "{out}");
    assert!(!smb.server_path(&format!("{dir}/a.txt")).exists());
    let mut c = b"hello\nmore\n".to_vec();
    c.resize(10_000, 0);
    assert_eq!(
        std::fs::read(smb.server_path(&format!("{dir}/sub/c.txt"))).unwrap(),
        c
    );

    // 1 GiB: a sparse source copied in, compared on the server and read back through the mount.
    let src = env.dir.path().join("big.src");
    let o = sh(
        &format!(
            "truncate -s 1G '{s}' && printf head | dd of='{s}' conv=notrunc status=none && \
             printf tail | dd of='{s}' bs=1 seek=1073741820 conv=notrunc status=none",
            s = src.display()
        ),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let t = Instant::now();
    let o = sh(
        &format!("cp '{}' '{ds}/big.bin'", src.display()),
        Duration::from_secs(600),
    );
    assert!(o.status.success(), "cp 1 GiB: {}", stderr(&o));
    eprintln!("1 GiB cp into the mount: {:?}", t.elapsed());
    let server_big = smb.server_path(&format!("{dir}/big.bin"));
    assert_eq!(std::fs::metadata(&server_big).unwrap().len(), 1 << 30);
    let t = Instant::now();
    let o = sh(
        &format!(
            "cmp '{}' '{ds}/big.bin' && cmp '{}' '{}'",
            src.display(),
            src.display(),
            server_big.display()
        ),
        Duration::from_secs(600),
    );
    assert!(
        o.status.success(),
        "1 GiB differs: {}{}",
        stdout(&o),
        stderr(&o)
    );
    eprintln!("1 GiB cmp through the mount: {:?}", t.elapsed());
    std::fs::remove_file(d.join("big.bin")).unwrap();
    assert!(!server_big.exists());

    let o = env.rdr(&["use", mp.to_str().unwrap(), "--delete"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!is_mounted(&mp));
}

#[test]
fn smb_delete_with_a_file_open_each_force_level() {
    let Some(smb) = Smb::get("smb_delete_with_a_file_open_each_force_level") else {
        return;
    };
    let mut env = Env::new();
    let mp = env.dir.path().join("fl-mnt");
    let name = unique("rdr-report");
    let _clean = ServerFiles(vec![smb.server_path(&name)]);
    let mut content = b"quarterly numbers ".to_vec();
    content.resize(10_000, b'x');
    std::fs::write(smb.server_path(&name), &content).unwrap();
    std::fs::set_permissions(
        smb.server_path(&name),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    smb_use(&mut env, &smb, &mp, 0);
    let mps = mp.to_str().unwrap().to_string();
    let mut holder = Holder::open(&mp.join(&name));
    let first64 = format!("data {}", String::from_utf8_lossy(&content[..64]));
    assert_eq!(holder.read(), first64);
    assert!(smb.open_files().contains(&name), "{}", smb.open_files());

    // No force: exit 2, the net-use-like line, the mount keeps working.
    let o = env.rdr(&["use", &mps, "--delete"]);
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(&o));
    assert_eq!(
        stderr(&o).trim_end(),
        format!("rdr: {mps}: 1 file open: {mps}/{name} (STATUS_FILES_OPEN)")
    );
    assert!(is_mounted(&mp));
    assert_eq!(holder.read(), first64);

    // Force: succeeds, reports what it closed; EIO after; the server holds nothing of it.
    let o = env.rdr(&["use", &mps, "--delete", "--force", "--timeout", "20"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("closed: {mps}/{name}")),
        "{}",
        stdout(&o)
    );
    assert_eq!(holder.read(), format!("err {}", libc::EIO));
    assert_eq!(holder.close(), "closed ok");
    assert!(wait_until(Duration::from_secs(10), || !is_mounted(&mp)));
    assert!(
        wait_until(Duration::from_secs(10), || !smb
            .open_files()
            .contains(&name)),
        "server still holds {name}:\n{}",
        smb.open_files()
    );
    assert_eq!(std::fs::read(smb.server_path(&name)).unwrap(), content);
    assert!(wait_until(Duration::from_secs(10), || list_len(&env) == 0));

    // Mapped again: a forced delete reports exactly the one file open now.
    smb_use(&mut env, &smb, &mp, 0);
    let mut holder = Holder::open(&mp.join(&name));
    assert_eq!(holder.read(), first64);
    let o = env.rdr(&["files", &mps, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v[0]["handles"].as_array().unwrap().len(), 1, "{v}");
    let o = env.rdr(&["use", &mps, "--delete", "--force"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(stdout(&o).matches("closed: ").count(), 1, "{}", stdout(&o));
    assert_eq!(holder.read(), format!("err {}", libc::EIO));
    assert_eq!(holder.close(), "closed ok");
    assert!(
        wait_until(Duration::from_secs(10), || !smb
            .open_files()
            .contains(&name)),
        "server still holds {name}:\n{}",
        smb.open_files()
    );
}

/// Two local users (made here) each map the share with their own Samba user; returns the
/// users (removed when dropped), their (uid, gid) and mount points.
fn two_user_mounts(env: &mut Env, smb: &Smb) -> (Users, Vec<(u32, u32)>, Vec<PathBuf>) {
    let (users, ids) = Users::create(2);
    let mut mps = vec![];
    for (i, (uid, gid)) in ids.iter().enumerate() {
        let mp = env.dir.path().join(format!("u{i}-mnt"));
        std::fs::create_dir(&mp).unwrap();
        std::os::unix::fs::chown(&mp, Some(*uid), Some(*gid)).unwrap();
        let pw = password_file(env, &smb.users[i].1, Some((*uid, *gid)));
        let o = env.rdr_as(
            *uid,
            *gid,
            &[
                "use",
                mp.to_str().unwrap(),
                &smb.remote(),
                "--user",
                &smb.users[i].0,
                "--password-file",
                pw.to_str().unwrap(),
            ],
        );
        assert!(
            o.status.success(),
            "user {i} use: {}\n{}",
            stderr(&o),
            env.log()
        );
        env.mounts.push(mp.clone());
        mps.push(mp);
    }
    (users, ids, mps)
}

/// `sh -c SCRIPT` as a user, bounded.
fn sh_as(uid: u32, gid: u32, script: &str) -> std::process::Output {
    let mut c = Command::new("sh");
    c.args(["-c", script]).uid(uid).gid(gid).current_dir("/");
    run_bounded(c, Duration::from_secs(30))
}

#[test]
fn smb_two_users_share_one_transport_and_reach_only_their_own() {
    let Some(smb) = Smb::get("smb_two_users_share_one_transport_and_reach_only_their_own") else {
        return;
    };
    let mut env = Env::new();
    let (_users, ids, mps) = two_user_mounts(&mut env, &smb);
    // One TCP connection carries both sessions.
    assert_eq!(sockets_to(env.daemon_pid(), smb.port), 1);
    let (a, b) = (ids[0], ids[1]);
    // Each lists only their own; each Samba user is shown.
    let o = env.rdr_as(a.0, a.1, &["use", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["local"], mps[0].display().to_string());
    assert_eq!(v[0]["user"], smb.users[0].0.as_str(), "{v}");
    // Both users write through their own mount; the server sees each user's file.
    let name = unique("rdr-two");
    let _clean = ServerFiles(vec![smb.server_path(&name)]);
    let write_as = |uid: u32, gid: u32, p: &Path, text: &str| {
        let mut c = Command::new("sh");
        c.args(["-c", &format!("printf '{text}' > '{}'", p.display())]);
        c.uid(uid).gid(gid).current_dir("/");
        run_bounded(c, Duration::from_secs(30))
    };
    let o = write_as(a.0, a.1, &mps[0].join(&name), "from a");
    assert!(o.status.success(), "{}", stderr(&o));
    // The other user cannot read through a's mount, nor list it.
    let mut c = Command::new("cat");
    c.arg(mps[0].join(&name)).uid(b.0).gid(b.1).current_dir("/");
    let o = run_bounded(c, Duration::from_secs(30));
    assert!(!o.status.success(), "b read through a's mount");
    let mut c = Command::new("ls");
    c.arg(&mps[0]).uid(b.0).gid(b.1).current_dir("/");
    let o = run_bounded(c, Duration::from_secs(30));
    assert!(!o.status.success(), "b listed a's mount: {}", stdout(&o));
    // b reads the file through b's own mount (the same share, b's own session).
    let mut c = Command::new("cat");
    c.arg(mps[1].join(&name)).uid(b.0).gid(b.1).current_dir("/");
    let o = run_bounded(c, Duration::from_secs(30));
    assert_eq!(stdout(&o), "from a", "{}", stderr(&o));
    // b cannot delete a's connection.
    let o = env.rdr_as(
        b.0,
        b.1,
        &["use", mps[0].to_str().unwrap(), "--delete", "--force"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(is_mounted(&mps[0]));
    // Each deletes their own; the transport lingers for reuse until asked to close.
    for (i, (uid, gid)) in ids.iter().enumerate() {
        let o = env.rdr_as(*uid, *gid, &["use", mps[i].to_str().unwrap(), "--delete"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(list_len(&env), 0);
}

#[test]
fn smb_bad_input_is_one_line_exit_1_and_nothing_half_made() {
    let Some(smb) = Smb::get("smb_bad_input_is_one_line_exit_1_and_nothing_half_made") else {
        return;
    };
    let env = Env::new();
    let mp = env.dir.path().join("bad-mnt");
    let good = password_file(&env, &smb.users[0].1, None);
    let wrong = password_file(&env, "not-the-password", None);
    // A closed port on 127.0.0.1: bind one, note the port, close it.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cases = [
        (
            format!("//{}:{}/no-such-share", smb.host, smb.port),
            good.clone(),
            "STATUS_BAD_NETWORK_NAME",
        ),
        (smb.remote(), wrong.clone(), "STATUS_LOGON_FAILURE"),
        (
            format!("//127.0.0.1:{closed}/{}", smb.share),
            good.clone(),
            "STATUS_CONNECTION_REFUSED",
        ),
    ];
    for (remote, pw, status) in cases {
        let o = env.rdr(&[
            "use",
            mp.to_str().unwrap(),
            &remote,
            "--user",
            &smb.users[0].0,
            "--password-file",
            pw.to_str().unwrap(),
        ]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{remote}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{remote}: {err}");
        assert!(err.contains(status), "{remote}: want {status}: {err}");
        assert!(!is_mounted(&mp), "{remote}: left a mount");
        assert!(!mp.exists(), "{remote}: left the mount point it created");
        assert_eq!(list_len(&env), 0, "{remote}: left a connection");
    }
    // No user at all: named.
    let o = env.rdr(&[
        "use",
        mp.to_str().unwrap(),
        &smb.remote(),
        "--password-file",
        good.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--user"), "{}", stderr(&o));
}

#[test]
fn smb_close_transport_closes_it_and_without_it_the_transport_is_reused() {
    let Some(smb) =
        Smb::get("smb_close_transport_closes_it_and_without_it_the_transport_is_reused")
    else {
        return;
    };
    let mut env = Env::new();
    let mp = env.dir.path().join("ct-mnt");
    let pid = env.daemon_pid();
    smb_use(&mut env, &smb, &mp, 0);
    assert_eq!(sockets_to(pid, smb.port), 1);
    let o = env.rdr(&["use", mp.to_str().unwrap(), "--delete"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The transport lingers, and the next use of the server reuses it.
    assert_eq!(sockets_to(pid, smb.port), 1);
    smb_use(&mut env, &smb, &mp, 1);
    assert_eq!(sockets_to(pid, smb.port), 1);
    let o = env.rdr(&["use", mp.to_str().unwrap(), "--delete", "--close-transport"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        wait_until(Duration::from_secs(10), || sockets_to(pid, smb.port) == 0),
        "the transport is still open"
    );
}

/// A second, private smbd (its own config, state and port; the fixture's users), in its own
/// process group so the test can stop and kill it and its children by that id.
struct PrivateSmbd {
    dir: tempfile::TempDir,
    port: u16,
    group: KillGroup,
    child: std::process::Child,
}

impl PrivateSmbd {
    fn start(smb: &Smb) -> PrivateSmbd {
        let dir = open_tempdir();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let b = dir.path();
        for d in [
            "private", "lock", "state", "cache", "pid", "ncalrpc", "log", "data",
        ] {
            std::fs::create_dir_all(b.join(d)).unwrap();
        }
        std::fs::set_permissions(b.join("data"), std::fs::Permissions::from_mode(0o777)).unwrap();
        // The fixture's password database, copied (read-only use).
        for f in std::fs::read_dir(smb.samba_dir.join("private"))
            .unwrap()
            .flatten()
        {
            if f.path().is_file() {
                let _ = std::fs::copy(f.path(), b.join("private").join(f.file_name()));
            }
        }
        let conf = format!(
            "[global]\n server role = standalone server\n smb ports = {port}\n interfaces = 127.0.0.1\n \
             bind interfaces only = yes\n disable netbios = yes\n private dir = {b}/private\n \
             lock directory = {b}/lock\n state directory = {b}/state\n cache directory = {b}/cache\n \
             pid directory = {b}/pid\n ncalrpc dir = {b}/ncalrpc\n log file = {b}/log/log.%m\n \
             load printers = no\n printing = bsd\n printcap name = /dev/null\n disable spoolss = yes\n \
             server min protocol = SMB2_02\n[data]\n path = {b}/data\n read only = no\n\
             [data2]\n path = {b}/data\n read only = no\n",
            b = b.display()
        );
        std::fs::write(b.join("smb.conf"), conf).unwrap();
        let (child, group) = PrivateSmbd::spawn(b, port);
        PrivateSmbd {
            dir,
            port,
            group,
            child,
        }
    }

    /// Starts smbd on `dir`'s config and waits until it listens on `port`.
    fn spawn(dir: &Path, port: u16) -> (std::process::Child, KillGroup) {
        let mut c = Command::new("smbd");
        c.args(["--foreground", "--no-process-group", "-s"])
            .arg(dir.join("smb.conf"))
            .arg("-l")
            .arg(dir.join("log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let mut child = c.spawn().expect("start smbd");
        let group = KillGroup(child.id() as i32);
        let listening = wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        if !listening {
            drop(group);
            let _ = child.wait();
            panic!("the private smbd did not listen on {port}");
        }
        (child, group)
    }

    /// Kills the server (every process of it) and starts it again on the same port and data.
    fn restart(&mut self) {
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
        let (child, group) = PrivateSmbd::spawn(self.dir.path(), self.port);
        self.child = child;
        self.group = group;
    }

    fn signal(&self, sig: i32) {
        // SAFETY: the process group of the smbd this test started.
        unsafe { libc::kill(-self.group.0, sig) };
    }
}

impl Drop for PrivateSmbd {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        self.signal(libc::SIGKILL);
        let _ = self.child.wait();
        // The temp dir goes with `dir`; KillGroup makes sure of the group.
        let _ = self.dir.path();
    }
}

#[test]
fn smb_timeout_bounds_a_delete_on_a_hung_server() {
    let Some(smb) = Smb::get("smb_timeout_bounds_a_delete_on_a_hung_server") else {
        return;
    };
    let srv = PrivateSmbd::start(&smb);
    let mut env = Env::new();
    let remote = format!("//127.0.0.1:{}/data", srv.port);
    let pw = password_file(&env, &smb.users[0].1, None);
    let pw2 = password_file(&env, &smb.users[1].1, None);
    let mount = |env: &mut Env, mp: &Path, who: usize| {
        let o = env.rdr(&[
            "use",
            mp.to_str().unwrap(),
            &remote,
            "--user",
            &smb.users[who].0,
            "--password-file",
            pw.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}\n{}", stderr(&o), env.log());
        env.mounts.push(mp.to_path_buf());
    };
    let mp = env.dir.path().join("hung-mnt");
    mount(&mut env, &mp, 0);
    // A second connection, with nothing open, by another local user (one view per user and
    // share).
    let (users, ids) = Users::create(1);
    let _users = users;
    let (uid, gid) = ids[0];
    let mp2 = env.dir.path().join("hung2-mnt");
    std::fs::create_dir(&mp2).unwrap();
    std::os::unix::fs::chown(&mp2, Some(uid), Some(gid)).unwrap();
    std::os::unix::fs::chown(&pw2, Some(uid), Some(gid)).unwrap();
    let o = env.rdr_as(
        uid,
        gid,
        &[
            "use",
            mp2.to_str().unwrap(),
            &remote,
            "--user",
            &smb.users[1].0,
            "--password-file",
            pw2.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}\n{}", stderr(&o), env.log());
    env.mounts.push(mp2.clone());
    std::fs::write(mp.join("held.txt"), b"held").unwrap();
    let mut holder = Holder::open(&mp.join("held.txt"));
    assert_eq!(holder.read(), "data held");
    let mps = mp.to_str().unwrap().to_string();

    // The server hangs (stopped, connection still up).
    srv.signal(libc::SIGSTOP);
    // Without force, nothing open: the core has to talk to the hung server; the timeout
    // bounds it.
    let t = Instant::now();
    let mut c = env.cmd(&["use", mp2.to_str().unwrap(), "--delete", "--timeout", "3"]);
    c.uid(uid).gid(gid).current_dir("/");
    let o = run_bounded(c, Duration::from_secs(20));
    eprintln!(
        "non-force delete, nothing open, hung server: exit {:?} after {:?}: {}{}",
        o.status.code(),
        t.elapsed(),
        stdout(&o),
        stderr(&o).trim_end()
    );
    // Deleted here, but the server never confirmed the tree disconnect: CANCELLED, with what
    // it may still hold.
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stderr(&o).contains("STATUS_CANCELLED"), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("may still hold") && stderr(&o).contains("disconnect"),
        "{}",
        stderr(&o)
    );
    assert!(!is_mounted(&mp2), "the mount is gone");
    // Without force, a file open: answered at once from the core's own state.
    let o = run_bounded(
        env.cmd(&["use", &mps, "--delete", "--timeout", "3"]),
        Duration::from_secs(20),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // Force with a bound: finishes within the bound with a report.
    let t = Instant::now();
    let o = run_bounded(
        env.cmd(&["use", &mps, "--delete", "--force", "--timeout", "3"]),
        Duration::from_secs(20),
    );
    eprintln!(
        "forced delete on a hung server: exit {:?} after {:?}:\n{}{}",
        o.status.code(),
        t.elapsed(),
        stdout(&o),
        stderr(&o)
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "--timeout 3 bounds the whole delete: {:?}",
        t.elapsed()
    );
    // The handle is orphaned here (EIO), the view is gone; the server never confirmed the
    // close of held.txt: CANCELLED, with the report of what was closed and what is left.
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    assert!(stdout(&o).contains("was deleted"), "{}", stdout(&o));
    assert!(stderr(&o).contains("close of"), "{}", stderr(&o));
    assert_eq!(holder.read(), format!("err {}", libc::EIO));
    let _ = holder.close();
    srv.signal(libc::SIGCONT);
}

#[test]
fn smb_lazy_delete_detaches_at_once_and_the_last_close_releases_the_server_handle() {
    let Some(smb) =
        Smb::get("smb_lazy_delete_detaches_at_once_and_the_last_close_releases_the_server_handle")
    else {
        return;
    };
    let mut env = Env::new();
    let mp = env.dir.path().join("lz-mnt");
    let name = unique("rdr-lazy");
    let _clean = ServerFiles(vec![smb.server_path(&name)]);
    std::fs::write(smb.server_path(&name), b"still here").unwrap();
    std::fs::set_permissions(
        smb.server_path(&name),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let mps = mp.to_str().unwrap().to_string();
    let first64 = "data still here".to_string();
    // Lazy: gone from the namespace at once, the holder keeps reading; closing it releases the
    // server's handle.
    smb_use(&mut env, &smb, &mp, 0);
    let mut holder = Holder::open(&mp.join(&name));
    assert_eq!(holder.read(), first64);
    let o = env.rdr(&["use", &mps, "--delete", "--lazy"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert!(!is_mounted(&mp));
    assert_eq!(holder.read(), first64);
    assert_eq!(holder.read(), first64);
    assert!(smb.open_files().contains(&name));
    assert_eq!(holder.close(), "closed ok");
    assert!(
        wait_until(Duration::from_secs(15), || !smb
            .open_files()
            .contains(&name)),
        "server still holds {name} after the last close:\n{}",
        smb.open_files()
    );
    assert!(wait_until(Duration::from_secs(10), || list_len(&env) == 0));
}

/// Found by this suite and fixed in rdr-fuse (`FsProbe::close_leftovers`): when a lazily
/// detached mount loses its last user the kernel may drop the last RELEASE, and the server kept
/// the handle (and the tree) open. This sequence lost it every time.
#[test]
fn smb_lazy_after_a_forced_delete_releases_the_server_handle() {
    let Some(smb) = Smb::get("smb_lazy_after_a_forced_delete_releases_the_server_handle") else {
        return;
    };
    let mut env = Env::new();
    let mp = env.dir.path().join("fz-mnt");
    let name = unique("rdr-fz");
    let _clean = ServerFiles(vec![smb.server_path(&name)]);
    std::fs::write(smb.server_path(&name), b"still here").unwrap();
    std::fs::set_permissions(
        smb.server_path(&name),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let mps = mp.to_str().unwrap().to_string();
    let first64 = "data still here".to_string();
    smb_use(&mut env, &smb, &mp, 0);
    let mut holder = Holder::open(&mp.join(&name));
    assert_eq!(holder.read(), first64);
    let o = env.rdr(&["use", &mps, "--delete", "--force"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert_eq!(holder.close(), "closed ok");
    assert!(wait_until(Duration::from_secs(10), || list_len(&env) == 0));
    // Lazy: gone from the namespace at once, the holder keeps reading; closing it releases the
    // server's handle.
    smb_use(&mut env, &smb, &mp, 0);
    let mut holder = Holder::open(&mp.join(&name));
    assert_eq!(holder.read(), first64);
    let o = env.rdr(&["use", &mps, "--delete", "--lazy"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert!(!is_mounted(&mp));
    assert_eq!(holder.read(), first64);
    assert_eq!(holder.read(), first64);
    assert!(smb.open_files().contains(&name));
    assert_eq!(holder.close(), "closed ok");
    assert!(
        wait_until(Duration::from_secs(15), || !smb
            .open_files()
            .contains(&name)),
        "server still holds {name} after the last close:\n{}",
        smb.open_files()
    );
    assert!(wait_until(Duration::from_secs(10), || list_len(&env) == 0));
}

/// `smbclient` (another SMB client) runs `cmds` on the share as user 1, asserting success.
fn smbclient(smb: &Smb, cmds: &str) {
    let mut c = Command::new("smbclient");
    c.args([
        "-p",
        &smb.port.to_string(),
        &format!("//{}/{}", smb.host, smb.share),
        "-U",
        &format!("{}%{}", smb.users[0].0, smb.users[0].1),
        "-c",
        cmds,
    ]);
    let o = run_bounded(c, Duration::from_secs(60));
    assert!(
        o.status.success() && !stdout(&o).contains("NT_STATUS_"),
        "smbclient {cmds}: {}{}",
        stdout(&o),
        stderr(&o)
    );
}

#[test]
fn smb_another_clients_write_breaks_the_lease_and_drops_cached_pages() {
    let Some(smb) = Smb::get("smb_another_clients_write_breaks_the_lease_and_drops_cached_pages")
    else {
        return;
    };
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut env = Env::new();
    let mp = env.dir.path().join("coh-mnt");
    let name = unique("coh");
    let _clean = ServerFiles(vec![smb.server_path(&name)]);
    smb_use(&mut env, &smb, &mp, 0);
    let old = pattern(64 * 1024, 1);
    let new = pattern(64 * 1024, 2);
    std::fs::write(mp.join(&name), &old).unwrap();

    // A reader holds the file open under a read-caching lease: its pages are in the kernel.
    let mut f = std::fs::File::open(mp.join(&name)).unwrap();
    let mut got = Vec::new();
    f.read_to_end(&mut got).unwrap();
    assert_eq!(got, old);

    // Another client overwrites it (same size, so no size change gives the update away).
    let local = env.dir.path().join("new.bin");
    std::fs::write(&local, &new).unwrap();
    let t0 = std::time::Instant::now();
    smbclient(&smb, &format!("put {} {name}", local.display()));
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "the break was acknowledged promptly (a missed ack stalls the other client 35 s)"
    );
    assert_eq!(std::fs::read(smb.server_path(&name)).unwrap(), new);

    // The same open now reads the server's bytes, not stale cached pages.
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut again = Vec::new();
    f.read_to_end(&mut again).unwrap();
    assert!(
        again == new,
        "the open read stale cached pages after the break"
    );

    // Without read caching, no further break comes: a later change by the other client must
    // still reach this open, whose reads now are not kept in the page cache.
    let third = pattern(64 * 1024, 3);
    std::fs::write(&local, &third).unwrap();
    smbclient(&smb, &format!("put {} {name}", local.display()));
    f.seek(SeekFrom::Start(0)).unwrap();
    let mut later = Vec::new();
    f.read_to_end(&mut later).unwrap();
    assert!(
        later == third,
        "the open read pages cached after it lost read caching"
    );
    drop(f);

    // Writes through the mount reach the server before another client's read is answered.
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(mp.join(&name))
        .unwrap();
    w.write_all(&old).unwrap();
    let back = env.dir.path().join("back.bin");
    smbclient(&smb, &format!("get {name} {}", back.display()));
    assert!(
        std::fs::read(&back).unwrap() == old,
        "smbclient read what rdr wrote"
    );
    drop(w);
}

/// Time as microseconds since the epoch (SMB carries 100 ns units).
fn micros(t: std::time::SystemTime) -> u128 {
    t.duration_since(std::time::UNIX_EPOCH).unwrap().as_micros()
}

/// The names of a directory through the mount (a READDIR read to the end).
fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn smb_creates_show_right_attributes_and_other_clients_changes_show_after_the_ttl() {
    let Some(smb) =
        Smb::get("smb_creates_show_right_attributes_and_other_clients_changes_show_after_the_ttl")
    else {
        return;
    };
    let mut env = Env::new();
    let mp = env.dir.path().join("ttl-mnt");
    let dir = unique("rdr-ttl");
    let _clean = ServerFiles(vec![smb.server_path(&dir)]);
    smb_use(&mut env, &smb, &mp, 0); // attribute TTL: 1 s (the default)
    let ttl = Duration::from_secs(1);
    let d = mp.join(&dir);
    std::fs::create_dir(&d).unwrap();

    // A new file: the attributes of the create (no query) are right before and after writing.
    use std::io::Write;
    let f = d.join("new.bin");
    let mut w = std::fs::File::create(&f).unwrap();
    let m = w.metadata().unwrap();
    assert!(m.is_file());
    assert_eq!(m.len(), 0);
    assert_eq!(m.permissions().mode() & 0o777, 0o644);
    w.write_all(&pattern(4096, 3)).unwrap();
    drop(w);
    let m = std::fs::metadata(&f).unwrap();
    assert_eq!((m.is_file(), m.len()), (true, 4096));
    assert_eq!(std::fs::read(&f).unwrap(), pattern(4096, 3));
    assert_eq!(names(&d), ["new.bin"]);

    // A file another client creates in a directory the mount has listed: visible after the
    // TTL (before it, the mount may still answer from its listing, as cifs would).
    let local = env.dir.path().join("other.txt");
    std::fs::write(&local, b"from smbclient").unwrap();
    smbclient(&smb, &format!("put {} {dir}/other.txt", local.display()));
    std::thread::sleep(ttl + Duration::from_millis(300));
    assert_eq!(
        std::fs::read(d.join("other.txt")).unwrap(),
        b"from smbclient"
    );
    assert_eq!(names(&d), ["new.bin", "other.txt"]);

    // ls -ld of the directory after a change inside it: the server's mtime after the TTL.
    let _ = std::fs::metadata(&d).unwrap();
    smbclient(&smb, &format!("put {} {dir}/third.txt", local.display()));
    std::thread::sleep(ttl + Duration::from_millis(300));
    let server_mtime = std::fs::metadata(smb.server_path(&dir))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        micros(std::fs::metadata(&d).unwrap().modified().unwrap()),
        micros(server_mtime),
        "directory mtime through the mount"
    );

    // A name the mount believes absent (its listing is fresh) that another client just made:
    // the create is resolved on the server. O_EXCL fails, plain O_CREAT opens the file.
    let _ = names(&d);
    smbclient(&smb, &format!("put {} {dir}/race.txt", local.display()));
    let e = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(d.join("race.txt"))
        .unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST), "{e}");
    let mut o = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(d.join("race.txt"))
        .unwrap();
    assert_eq!(o.metadata().unwrap().len(), 14, "opened the existing file");
    o.write_all(b"FROM").unwrap();
    drop(o);
    assert_eq!(
        std::fs::read(smb.server_path(&format!("{dir}/race.txt"))).unwrap(),
        b"FROM smbclient"
    );

    // A file another client removes: gone through the mount after the TTL.
    smbclient(&smb, &format!("del {dir}/third.txt"));
    std::thread::sleep(ttl + Duration::from_millis(300));
    assert!(!d.join("third.txt").exists());
}

#[test]
fn smb_actimeo_0_sees_other_clients_files_at_once() {
    let Some(smb) = Smb::get("smb_actimeo_0_sees_other_clients_files_at_once") else {
        return;
    };
    let mut env = Env::new();
    let mp = env.dir.path().join("ac0-mnt");
    let dir = unique("rdr-ac0");
    let _clean = ServerFiles(vec![smb.server_path(&dir)]);
    smb_use_with(&mut env, &smb, &mp, 0, &["--actimeo", "0"]);
    let d = mp.join(&dir);
    std::fs::create_dir(&d).unwrap();
    let local = env.dir.path().join("x.txt");
    std::fs::write(&local, b"x").unwrap();
    for i in 0..3 {
        assert_eq!(names(&d).len(), i);
        let before = std::fs::metadata(&d).unwrap().modified().unwrap();
        smbclient(&smb, &format!("put {} {dir}/x{i}.txt", local.display()));
        assert_eq!(std::fs::read(d.join(format!("x{i}.txt"))).unwrap(), b"x");
        let server_mtime = std::fs::metadata(smb.server_path(&dir))
            .unwrap()
            .modified()
            .unwrap();
        let now = std::fs::metadata(&d).unwrap().modified().unwrap();
        assert_eq!(
            micros(now),
            micros(server_mtime),
            "directory mtime {before:?}"
        );
    }
}

#[test]
fn smb_cp_r_then_rm_r_leaves_nothing_and_names_can_be_reused() {
    let Some(smb) = Smb::get("smb_cp_r_then_rm_r_leaves_nothing_and_names_can_be_reused") else {
        return;
    };
    let mut env = Env::new();
    let mp = env.dir.path().join("cprm-mnt");
    let top = unique("rdr-cprm");
    let _clean = ServerFiles(vec![smb.server_path(&top)]);
    smb_use(&mut env, &smb, &mp, 0);
    let src = env.dir.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    for i in 0..60 {
        std::fs::write(src.join(format!("f{i}")), pattern(4096, i as u8)).unwrap();
        std::fs::write(src.join(format!("sub/g{i}")), pattern(100, i as u8)).unwrap();
    }
    std::fs::create_dir(mp.join(&top)).unwrap();
    let t = mp.join(&top).join("t");
    for round in 0..2 {
        let o = sh(
            &format!("cp -r '{}' '{}'", src.display(), t.display()),
            Duration::from_secs(120),
        );
        assert!(o.status.success(), "cp -r (round {round}): {}", stderr(&o));
        for i in [0usize, 59] {
            assert_eq!(
                std::fs::read(smb.server_path(&format!("{top}/t/f{i}"))).unwrap(),
                pattern(4096, i as u8)
            );
            let m = std::fs::metadata(t.join(format!("sub/g{i}"))).unwrap();
            assert_eq!(m.len(), 100);
        }
        // Delete-on-close opens: every file is gone once rm returns, so the rmdirs succeed.
        let o = sh(
            &format!("rm -r '{}'", t.display()),
            Duration::from_secs(120),
        );
        assert!(o.status.success(), "rm -r (round {round}): {}", stderr(&o));
        assert!(!smb.server_path(&format!("{top}/t")).exists());
        assert!(!t.exists());
    }
    // A file held open by a process: unlink removes the name, the holder keeps reading.
    std::fs::write(mp.join(&top).join("held"), b"data still here").unwrap();
    let mut holder = Holder::open(&mp.join(&top).join("held"));
    assert_eq!(holder.read(), "data data still here");
    std::fs::remove_file(mp.join(&top).join("held")).unwrap();
    assert!(!mp.join(&top).join("held").exists());
    assert_eq!(holder.read(), "data data still here");
    assert_eq!(holder.close(), "closed ok");
    assert!(wait_until(Duration::from_secs(10), || !smb
        .server_path(&format!("{top}/held"))
        .exists()));
}

#[test]
fn smb_a_change_through_one_users_mount_shows_at_once_through_the_others() {
    // The server never breaks between two views of one client (one lease key per file), so
    // the daemon itself must tell the other mounts (caching-design §5.10).
    let Some(smb) =
        Smb::get("smb_a_change_through_one_users_mount_shows_at_once_through_the_others")
    else {
        return;
    };
    let mut env = Env::new();
    let (_users, ids, mps) = two_user_mounts(&mut env, &smb);
    let ((a, ag), (b, bg)) = (ids[0], ids[1]);
    let name = unique("rdr-coherent");
    let made = unique("rdr-made");
    let _clean = ServerFiles(vec![smb.server_path(&name), smb.server_path(&made)]);
    let (fa, fb) = (mps[0].join(&name), mps[1].join(&name));
    let o = sh_as(a, ag, &format!("printf version-1 > '{}'", fa.display()));
    assert!(o.status.success(), "{}", stderr(&o));
    // b reads it: b's pages, attributes and listing now hold version 1; an open handle of
    // b's mount keeps reading through those pages.
    let o = sh_as(
        b,
        bg,
        &format!(
            "cat '{}'; ls '{}' >/dev/null",
            fb.display(),
            mps[1].display()
        ),
    );
    assert_eq!(stdout(&o), "version-1", "{}", stderr(&o));
    let mut held = Holder::open_readonly(&fb);
    assert_eq!(held.read(), "data version-1");
    // a rewrites it (same size) and makes a new file; b sees both.
    let o = sh_as(
        a,
        ag,
        &format!(
            "printf version-2 > '{}' && printf new > '{}'",
            fa.display(),
            mps[0].join(&made).display()
        ),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let mut last = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            last = held.read();
            last == "data version-2"
        }),
        "b's open handle kept reading {last:?}"
    );
    let o = sh_as(
        b,
        bg,
        &format!(
            "cat '{}'; echo; cat '{}'",
            fb.display(),
            mps[1].join(&made).display()
        ),
    );
    assert_eq!(stdout(&o), "version-2\nnew", "{}", stderr(&o));
    assert_eq!(held.close(), "closed ok");
    // a removes the new file; b no longer finds it.
    let o = sh_as(a, ag, &format!("rm '{}'", mps[0].join(&made).display()));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = sh_as(
        b,
        bg,
        &format!("test -e '{}'", mps[1].join(&made).display()),
    );
    assert!(!o.status.success(), "b still sees the removed file");
}

#[test]
fn smb_signing_required_signs_every_session_and_files_round_trip() {
    let Some(smb) = Smb::get("smb_signing_required_signs_every_session_and_files_round_trip")
    else {
        return;
    };
    let mut env = Env::with_daemon_env(&[("RDR_SMB_SIGNING", "required")]);
    let mp = env.dir.path().join("sign-mnt");
    let name = unique("rdr-signed");
    let _clean = ServerFiles(vec![smb.server_path(&name)]);
    smb_use(&mut env, &smb, &mp, 0);
    let data = pattern((3 << 20) + 17, 5);
    std::fs::write(mp.join(&name), &data).unwrap();
    assert!(
        std::fs::read(smb.server_path(&name)).unwrap() == data,
        "server copy"
    );
    assert!(std::fs::read(mp.join(&name)).unwrap() == data, "read back");
    // The server sees rdr's session as signed (smbstatus's Signing column names the
    // algorithm; a session that signs only what it must shows "partial(...)").
    let mut c = Command::new("smbstatus");
    c.args(["-s", &smb.conf, "-b"]);
    let o = run_bounded(c, Duration::from_secs(30));
    let ports = local_ports_to(env.daemon_pid(), smb.port);
    assert_eq!(ports.len(), 1, "one connection to the server");
    let from = format!(":{})", ports[0]);
    let ours: Vec<String> = stdout(&o)
        .lines()
        .filter(|l| l.contains(&from))
        .map(str::to_string)
        .collect();
    assert!(
        ours.len() == 1
            && ours[0]
                .split_whitespace()
                .last()
                .is_some_and(|sig| sig.starts_with("AES-") || sig.starts_with("HMAC-")),
        "rdr's session is not signed: {ours:?}\n{}",
        stdout(&o)
    );
}

/// `rdr use MP REMOTE --user USER --password-file PW`, asserting success.
fn use_remote(env: &mut Env, mp: &Path, remote: &str, user: &str, pw: &Path) {
    let o = env.rdr(&[
        "use",
        mp.to_str().unwrap(),
        remote,
        "--user",
        user,
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}\n{}", stderr(&o), env.log());
    env.mounts.push(mp.to_path_buf());
}

/// What `rdr use --json` shows for the connection at `mp`.
fn listed(env: &Env, mp: &Path) -> serde_json::Value {
    let o = env.rdr(&["use", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array()
        .and_then(|a| a.iter().find(|c| c["local"] == mp.to_str().unwrap()))
        .cloned()
        .unwrap_or_else(|| panic!("{} not listed: {v}", mp.display()))
}

/// The reconnect count `rdr use --json` shows for the connection at `mp`.
fn reconnects(env: &Env, mp: &Path) -> u64 {
    let c = listed(env, mp);
    c["reconnects"]
        .as_u64()
        .unwrap_or_else(|| panic!("no reconnect count for {}: {c}", mp.display()))
}

/// The Status column of the first connection `rdr use --json` lists.
fn first_status(env: &Env) -> String {
    let o = env.rdr(&["use", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v[0]["status"].as_str().unwrap_or_default().to_string()
}

#[test]
fn smb_a_server_that_goes_away_shows_disconnected_and_io_fails_at_once() {
    let Some(smb) = Smb::get("smb_a_server_that_goes_away_shows_disconnected_and_io_fails_at_once")
    else {
        return;
    };
    let srv = PrivateSmbd::start(&smb);
    let mut env = Env::new();
    let remote = format!("//127.0.0.1:{}/data", srv.port);
    let pw = password_file(&env, &smb.users[0].1, None);
    let mp = env.dir.path().join("gone-mnt");
    use_remote(&mut env, &mp, &remote, &smb.users[0].0, &pw);
    std::fs::write(mp.join("f.txt"), b"data").unwrap();
    assert_eq!(first_status(&env), "OK");
    // The server goes away (every smbd of it killed: the connection is reset).
    srv.signal(libc::SIGKILL);
    assert!(
        wait_until(Duration::from_secs(10), || first_status(&env)
            == "Disconnected"),
        "status stayed {:?}",
        first_status(&env)
    );
    // I/O fails (bounded: it must not hang), and the connection can be deleted.
    let o = sh(
        &format!("cat '{}/f.txt'", mp.display()),
        Duration::from_secs(30),
    );
    assert!(!o.status.success(), "read through a dead connection");
    let o = env.rdr(&["use", mp.to_str().unwrap(), "--delete"]);
    assert!(
        o.status.success(),
        "delete of a dead connection: {}\n{}",
        stderr(&o),
        env.log()
    );
    assert!(!is_mounted(&mp));
    assert_eq!(list_len(&env), 0);
}

#[test]
fn smb_when_the_server_comes_back_new_opens_reconnect_and_old_handles_fail() {
    let Some(smb) =
        Smb::get("smb_when_the_server_comes_back_new_opens_reconnect_and_old_handles_fail")
    else {
        return;
    };
    let mut srv = PrivateSmbd::start(&smb);
    let mut env = Env::new();
    let remote = format!("//127.0.0.1:{}/data", srv.port);
    let pw = password_file(&env, &smb.users[0].1, None);
    let mp = env.dir.path().join("back-mnt");
    use_remote(&mut env, &mp, &remote, &smb.users[0].0, &pw);
    std::fs::write(mp.join("f.txt"), b"before").unwrap();
    let mut holder = Holder::open(&mp.join("f.txt"));
    assert_eq!(holder.read(), "data before");
    assert_eq!(reconnects(&env, &mp), 0);
    // The server restarts: the connection is reset, then the server is back.
    srv.restart();
    assert!(
        wait_until(Duration::from_secs(10), || first_status(&env)
            == "Disconnected"),
        "status stayed {:?}",
        first_status(&env)
    );
    // The handle opened before went with its connection: its cached pages are dropped (the
    // lease is gone) and its reads fail.
    let mut last = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            last = holder.read();
            last.starts_with("err")
        }),
        "the old handle still read: {last}\n{}",
        env.log()
    );
    // A new view of the same server (another share) made now reconnects the transport.
    let mp2 = env.dir.path().join("back2-mnt");
    use_remote(
        &mut env,
        &mp2,
        &format!("//127.0.0.1:{}/data2", srv.port),
        &smb.users[0].0,
        &pw,
    );
    assert_eq!(std::fs::read(mp2.join("f.txt")).unwrap(), b"before");
    // The old view reconnects in the background: its status recovers without being used.
    assert!(
        wait_until(Duration::from_secs(20), || first_status(&env) == "OK"),
        "status stayed {:?}",
        first_status(&env)
    );
    assert_eq!(reconnects(&env, &mp), 1, "the list counts the reconnect");
    // Its new opens work (its own session and tree on the new connection).
    assert_eq!(std::fs::read(mp.join("f.txt")).unwrap(), b"before");
    std::fs::write(mp.join("g.txt"), b"after").unwrap();
    assert_eq!(
        std::fs::read(srv.dir.path().join("data/g.txt")).unwrap(),
        b"after",
        "written through the new connection"
    );
    assert_eq!(first_status(&env), "OK");
    assert_eq!(holder.close(), "closed ok");
    let o = env.rdr(&["use", mp.to_str().unwrap(), "--delete"]);
    assert!(o.status.success(), "{}\n{}", stderr(&o), env.log());
}

/// Cuts the daemon's one TCP connection to the server at `port` (`ss -K`: both ends see it
/// reset, as when a network path drops), and returns its local port.
fn cut_connection(pid: i32, port: u16) -> u16 {
    let ports = local_ports_to(pid, port);
    assert_eq!(
        ports.len(),
        1,
        "the daemon has one connection to the server"
    );
    let mut c = Command::new("ss");
    c.args([
        "-K",
        &format!("sport = :{}", ports[0]),
        &format!("dport = :{port}"),
    ]);
    let o = run_bounded(c, Duration::from_secs(10));
    assert!(o.status.success(), "ss -K: {}", stderr(&o));
    assert!(
        wait_until(Duration::from_secs(5), || !local_ports_to(pid, port)
            .contains(&ports[0])),
        "the connection from port {} is still there",
        ports[0]
    );
    ports[0]
}

/// The pid of the server process serving the one established connection to `port` (smbd
/// forks one per connection).
fn smbd_serving(port: u16) -> i32 {
    let mut c = Command::new("ss");
    c.args(["-tnpH", "state", "established", &format!("sport = :{port}")]);
    let out = stdout(&run_bounded(c, Duration::from_secs(10)));
    let pids: Vec<i32> = out
        .split("pid=")
        .skip(1)
        .filter_map(|t| {
            t.split(|ch: char| !ch.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(
        pids.len(),
        1,
        "one server process for the connection: {out}"
    );
    pids[0]
}

#[test]
fn smb_a_dropped_connection_keeps_open_files_where_the_server_allows_durable_handles() {
    let Some(smb) = Smb::get(
        "smb_a_dropped_connection_keeps_open_files_where_the_server_allows_durable_handles",
    ) else {
        return;
    };
    let srv = PrivateSmbd::start(&smb);
    let mut env = Env::new();
    let pw = password_file(&env, &smb.users[0].1, None);
    let mp = env.dir.path().join("durable-mnt");
    let remote = format!("//127.0.0.1:{}/data", srv.port);
    use_remote(&mut env, &mp, &remote, &smb.users[0].0, &pw);
    // Made by another SMB client, so that each file has exactly one open of ours (Samba 4.17
    // reclaims a durable handle only when it is the file's only open, and only on a file
    // whose creation time it recorded itself).
    let private = Smb {
        port: srv.port,
        share: "data".into(),
        ..smb.clone()
    };
    for (name, text) in [("d.txt", "before"), ("l.txt", "locked")] {
        let local = env.dir.path().join(name);
        std::fs::write(&local, text).unwrap();
        smbclient(&private, &format!("put {} {name}", local.display()));
    }
    let mut held = Holder::open(&mp.join("d.txt"));
    let mut locked = Holder::open(&mp.join("l.txt"));
    assert_eq!(held.read(), "data before");
    assert_eq!(locked.read(), "data locked");
    // A handle with byte-range locks is not reclaimed (see `Open::reclaim`).
    assert_eq!(locked.lock(), "lock ok");
    // A write still on its way (write-behind) when the connection drops.
    assert_eq!(held.pwrite(6, "-during"), "pwrite ok");
    let old_port = cut_connection(env.daemon_pid(), srv.port);
    // The durable handle goes on: the daemon reconnects, reclaims the open with its lease,
    // and sends again what the server had not acknowledged.
    assert_eq!(held.pwrite(13, "-after"), "pwrite ok", "{}", env.log());
    assert_eq!(held.read(), "data before-during-after", "{}", env.log());
    // A request in flight when the connection drops runs again on the reclaimed handle. The
    // server's process for the connection is stopped, so an fsync's FLUSH is unanswered when
    // the connection is cut; the process resumes (and sees the reset, which frees the handle
    // for the reclaim) only after the daemon has reconnected.
    let serving = smbd_serving(srv.port);
    // SAFETY: kill(2) on a pid of the test's own private smbd.
    unsafe { libc::kill(serving, libc::SIGSTOP) };
    held.start_fsync();
    std::thread::sleep(Duration::from_millis(300));
    cut_connection(env.daemon_pid(), srv.port);
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: as above.
    unsafe { libc::kill(serving, libc::SIGCONT) };
    assert_eq!(held.next_answer(), "fsync ok", "{}", env.log());
    assert_eq!(held.read(), "data before-during-after", "{}", env.log());
    assert_eq!(held.close(), "closed ok");
    assert_eq!(
        std::fs::read(srv.dir.path().join("data/d.txt")).unwrap(),
        b"before-during-after",
        "on the server"
    );
    // The locked handle went with the connection, as every handle did before.
    let mut last = String::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            last = locked.read();
            last.starts_with("err")
        }),
        "the locked handle still read: {last}"
    );
    assert_eq!(locked.close(), "closed ok");
    // A file made through the mount (O_CREAT|O_EXCL, as cp makes it) asks for its durable
    // handle only once it has lived a second (`Open::make_durable`): its next write moves it
    // to a durable handle, a new open on the server, which the next cut does not take.
    let mut fresh = Holder::create_new(&mp.join("n.txt"));
    assert_eq!(fresh.pwrite(0, "new"), "pwrite ok");
    let first = server_opens(&srv, "n.txt");
    assert_eq!(first.len(), 1, "{first:?}");
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(fresh.pwrite(3, "-later"), "pwrite ok");
    let mut now = Vec::new();
    assert!(
        wait_until(Duration::from_secs(10), || {
            now = server_opens(&srv, "n.txt");
            now.len() == 1 && now != first
        }),
        "the open was not replaced: {first:?} -> {now:?}\n{}",
        env.log()
    );
    cut_connection(env.daemon_pid(), srv.port);
    assert_eq!(fresh.pwrite(9, "-after"), "pwrite ok", "{}", env.log());
    assert_eq!(fresh.read(), "data new-later-after", "{}", env.log());
    assert_eq!(fresh.close(), "closed ok");
    assert_eq!(
        std::fs::read(srv.dir.path().join("data/n.txt")).unwrap(),
        b"new-later-after",
        "on the server"
    );
    // Three reconnects, each on a new connection.
    let now = local_ports_to(env.daemon_pid(), srv.port);
    assert_eq!(now.len(), 1, "{now:?}");
    assert_ne!(now[0], old_port);
    assert_eq!(reconnects(&env, &mp), 3, "{}", env.log());
    let o = env.rdr(&["use", mp.to_str().unwrap(), "--delete"]);
    assert!(o.status.success(), "{}\n{}", stderr(&o), env.log());
}

/// The server's opens of `name` in the private smbd's share (`smbstatus -L --json`), by
/// their "pid/share file id".
fn server_opens(srv: &PrivateSmbd, name: &str) -> Vec<String> {
    let mut c = Command::new("smbstatus");
    c.args(["-s"])
        .arg(srv.dir.path().join("smb.conf"))
        .args(["-L", "--json"]);
    let o = run_bounded(c, Duration::from_secs(30));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("smbstatus --json: {e}: {}", stdout(&o)));
    let file = srv.dir.path().join("data").join(name);
    let mut ids: Vec<String> = v["open_files"][file.to_str().unwrap()]["opens"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Bytes the daemon's one connection to the server has sent and received so far (TCP_INFO,
/// read with `ss`).
fn connection_bytes(pid: i32, port: u16) -> (u64, u64) {
    let ports = local_ports_to(pid, port);
    assert_eq!(
        ports.len(),
        1,
        "the daemon has one connection to the server"
    );
    let mut c = Command::new("ss");
    c.args([
        "-tinH",
        "state",
        "established",
        &format!("sport = :{}", ports[0]),
    ]);
    let out = stdout(&run_bounded(c, Duration::from_secs(10)));
    let field = |name: &str| -> u64 {
        out.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in ss output: {out}"))
    };
    (field("bytes_sent:"), field("bytes_received:"))
}

/// copy_file_range(2) of the first `len` bytes of `src` to the same offsets of `dst`, in as
/// many calls as it takes; each must copy something.
fn copy_all(src: &std::fs::File, dst: &std::fs::File, len: usize) {
    use std::os::fd::AsRawFd;
    let mut copied = 0usize;
    while copied < len {
        let (mut off_in, mut off_out) = (copied as i64, copied as i64);
        // SAFETY: both descriptors are open for the call; the offsets are valid locals.
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                &mut off_out,
                len - copied,
                0,
            )
        };
        assert!(
            n > 0,
            "copy_file_range: {}",
            std::io::Error::last_os_error()
        );
        copied += n as usize;
    }
}

#[test]
fn smb_copy_within_the_mount_is_done_by_the_server() {
    let Some(smb) = Smb::get("smb_copy_within_the_mount_is_done_by_the_server") else {
        return;
    };
    let mut env = Env::new();
    let mp = env.dir.path().join("copy-mnt");
    let top = unique("rdr-copy");
    let _clean = ServerFiles(vec![smb.server_path(&top)]);
    smb_use(&mut env, &smb, &mp, 0);
    let dir = mp.join(&top);
    std::fs::create_dir(&dir).unwrap();
    // 24 MiB and a tail: more than one server request (16 MiB each), not chunk-aligned.
    // Written on the server's side, so no cache of the mount holds it.
    let size = (24 << 20) + 12345;
    let data = pattern(size, 5);
    std::fs::write(smb.server_path(&format!("{top}/a")), &data).unwrap();
    // Another client's new file shows within the attribute TTL.
    assert!(wait_until(Duration::from_secs(10), || dir
        .join("a")
        .exists()));
    let pid = env.daemon_pid();

    // cp (copy_file_range): the copy is whole, and the data never crossed the connection.
    let before = connection_bytes(pid, smb.port);
    let o = sh(
        &format!(
            "cp '{}' '{}'",
            dir.join("a").display(),
            dir.join("b").display()
        ),
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "cp: {}", stderr(&o));
    let after = connection_bytes(pid, smb.port);
    assert!(
        std::fs::read(smb.server_path(&format!("{top}/b"))).unwrap() == data,
        "the server's copy differs from the source"
    );
    assert_eq!(std::fs::metadata(dir.join("b")).unwrap().len(), size as u64);
    let moved = (after.0 - before.0) + (after.1 - before.1);
    assert!(
        moved < (size as u64) / 16,
        "{moved} bytes crossed the connection for a {size}-byte server-side copy"
    );

    // The same copy through read and write moves every byte: the count above can see data.
    let o = sh(
        &format!(
            "dd if='{}' of='{}' bs=1M status=none",
            dir.join("a").display(),
            dir.join("c").display()
        ),
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "dd: {}", stderr(&o));
    let through = connection_bytes(pid, smb.port);
    assert!(
        (through.0 - after.0) >= size as u64,
        "dd's writes did not show in the connection's bytes"
    );

    // Writes still on their way to the server (write-behind) are copied too: the source's
    // held writes go first.
    let fresh = pattern(3 << 20, 9);
    let mut src = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("d"))
        .unwrap();
    std::io::Write::write_all(&mut src, &fresh).unwrap();
    let dst = std::fs::File::create(dir.join("e")).unwrap();
    copy_all(&src, &dst, fresh.len());
    drop(dst);
    drop(src);
    assert!(
        std::fs::read(smb.server_path(&format!("{top}/e"))).unwrap() == fresh,
        "the copy of a file with writes in flight misses some"
    );
    // The destination's own writes still on their way go first (the copy lands over them,
    // not under), and its cached pages show the copy at once.
    let mut dst = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("c"))
        .unwrap();
    let mut head = vec![0u8; 65536];
    std::io::Read::read_exact(&mut dst, &mut head).unwrap();
    assert!(head[..] == data[..65536], "c is a copy of a");
    std::io::Write::write_all(&mut dst, &pattern(1 << 20, 11)).unwrap();
    let src = std::fs::File::open(dir.join("d")).unwrap();
    copy_all(&src, &dst, (1 << 20) + 65536);
    let mut again = vec![0u8; 65536];
    std::os::unix::fs::FileExt::read_exact_at(&dst, &mut again, 0).unwrap();
    assert!(
        again[..] == fresh[..65536],
        "a read through the destination after the copy saw old pages"
    );
    drop(dst);
    let c = std::fs::read(smb.server_path(&format!("{top}/c"))).unwrap();
    assert!(
        c[..(1 << 20) + 65536] == fresh[..(1 << 20) + 65536],
        "a write made before the copy landed over it"
    );
    assert!(c[(1 << 20) + 65536..] == data[(1 << 20) + 65536..]);
}

#[test]
fn smb_symlinks_are_minshall_french_link_files() {
    let Some(smb) = Smb::get("smb_symlinks_are_minshall_french_link_files") else {
        return;
    };
    let mut env = Env::new();
    let mp = env.dir.path().join("link-mnt");
    let top = unique("rdr-link");
    let _clean = ServerFiles(vec![smb.server_path(&top)]);
    smb_use(&mut env, &smb, &mp, 0);
    let dir = mp.join(&top);
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("t.txt"), b"through the link").unwrap();

    // ln -s: a link the mount shows as one, that paths resolve through.
    std::os::unix::fs::symlink("t.txt", dir.join("l")).unwrap();
    assert_eq!(
        std::fs::read_link(dir.join("l")).unwrap(),
        Path::new("t.txt")
    );
    let m = std::fs::symlink_metadata(dir.join("l")).unwrap();
    assert!(m.file_type().is_symlink());
    assert_eq!(m.len(), 5, "a link's size is its target's length");
    assert_eq!(std::fs::read(dir.join("l")).unwrap(), b"through the link");
    // On the server it is the file cifs.ko (mfsymlinks) and macOS read as a link: 1067 bytes,
    // "XSym", the target's length, its MD5 (md5sum of "t.txt"), the target, spaces.
    let on_server = std::fs::read(smb.server_path(&format!("{top}/l"))).unwrap();
    assert_eq!(on_server.len(), 1067);
    let head = b"XSym\n0005\n8454272a4276bc0a45ff46f8bf22a15f\nt.txt\n";
    assert_eq!(&on_server[..head.len()], head);
    assert!(on_server[head.len()..].iter().all(|&c| c == b' '));

    // A link file made by another client shows as a link; a plain file of the same size
    // stays a plain file.
    let mut other = b"XSym\n0008\nd0e2b692f12af56fba571d3076ee7a72\n../t.txt\n".to_vec();
    other.resize(1067, b' ');
    std::fs::write(smb.server_path(&format!("{top}/other")), &other).unwrap();
    std::fs::write(smb.server_path(&format!("{top}/plain")), pattern(1067, 3)).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || dir.join("plain").exists()),
        "another client's files never showed"
    );
    assert_eq!(
        std::fs::read_link(dir.join("other")).unwrap(),
        Path::new("../t.txt")
    );
    let m = std::fs::symlink_metadata(dir.join("plain")).unwrap();
    assert!(m.file_type().is_file());
    assert_eq!(m.len(), 1067);
    let listed = sh(
        &format!("cd '{}' && find . -type l | sort", dir.display()),
        Duration::from_secs(30),
    );
    assert_eq!(stdout(&listed), "./l\n./other\n", "readdir's file types");

    // New times on a link (touch -h; tar, cp -a and rsync -a do the same) keep it a link.
    let o = sh(
        &format!(
            "touch -h -d '2001-02-03 04:05:06' '{}'",
            dir.join("l").display()
        ),
        Duration::from_secs(30),
    );
    assert!(o.status.success(), "touch -h: {}", stderr(&o));
    let m = std::fs::symlink_metadata(dir.join("l")).unwrap();
    assert!(m.file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(dir.join("l")).unwrap(),
        Path::new("t.txt")
    );

    // Another client turns a link into a plain file: within the TTL it shows as one, and
    // no stat in between fails with EIO (a type change under a known inode).
    std::fs::write(smb.server_path(&format!("{top}/other")), b"plain now").unwrap();
    let mut bad = None;
    assert!(
        wait_until(Duration::from_secs(10), || {
            match std::fs::symlink_metadata(dir.join("other")) {
                Ok(m) => m.file_type().is_file(),
                Err(e) => {
                    bad.get_or_insert(e);
                    false
                }
            }
        }),
        "the rewritten link never showed as a file"
    );
    assert!(bad.is_none(), "stat failed meanwhile: {bad:?}");
    assert_eq!(std::fs::read(dir.join("other")).unwrap(), b"plain now");

    // mv keeps a link a link; rm removes the link, not its target.
    std::fs::rename(dir.join("l"), dir.join("l2")).unwrap();
    assert_eq!(
        std::fs::read_link(dir.join("l2")).unwrap(),
        Path::new("t.txt")
    );
    std::fs::remove_file(dir.join("l2")).unwrap();
    assert!(!smb.server_path(&format!("{top}/l2")).exists());
    assert_eq!(
        std::fs::read(dir.join("t.txt")).unwrap(),
        b"through the link"
    );

    // A target longer than a link file holds is refused, and nothing is left behind.
    let long = "a".repeat(1025);
    let e = std::os::unix::fs::symlink(&long, dir.join("long")).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENAMETOOLONG));
    assert!(!smb.server_path(&format!("{top}/long")).exists());
}

/// The `last_error` `rdr use --json` shows for the connection at `mp` (null when none).
fn last_error(env: &Env, mp: &Path) -> serde_json::Value {
    listed(env, mp)["last_error"].clone()
}

#[test]
fn smb_the_last_failure_an_application_got_shows_in_the_list() {
    let Some(smb) = Smb::get("smb_the_last_failure_an_application_got_shows_in_the_list") else {
        return;
    };
    let mut env = Env::new();
    let mp = env.dir.path().join("ro-mnt");
    let pw = password_file(&env, &smb.users[0].1, None);
    let share = std::env::var("RDR_SMB_SHARE_RO").unwrap_or_else(|_| "ro".into());
    let remote = format!("//{}:{}/{share}", smb.host, smb.port);
    use_remote(&mut env, &mp, &remote, &smb.users[0].0, &pw);
    assert!(last_error(&env, &mp).is_null(), "a new connection has none");

    // Reading works, and a name that is not there is an answer, not a failure.
    assert_eq!(std::fs::read(mp.join("readme.txt")).unwrap(), b"read me\n");
    assert!(!mp.join("not-here.txt").exists());
    assert!(last_error(&env, &mp).is_null(), "{}", last_error(&env, &mp));

    // Writing into the read-only share fails; the list says what, why and when.
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let e = std::fs::write(mp.join("new.txt"), b"x").expect_err("a read-only share");
    assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    assert!(!mp.join("also-not-here.txt").exists());
    // A name SMB cannot carry is the caller's answer too (EINVAL), not the connection's failure.
    assert!(!mp.join("what?.txt").exists());
    let last = last_error(&env, &mp);
    assert_eq!(last["status"], "STATUS_ACCESS_DENIED", "{last}");
    assert_eq!(last["errno"], libc::EACCES, "{last}");
    let message = last["message"].as_str().unwrap_or_default();
    assert!(message.contains("new.txt"), "names the file: {last}");
    let at = last["at"].as_u64().unwrap_or(0);
    assert!(at >= before && at <= before + 60, "{at} vs {before}");
}

#[test]
fn smb_a_write_only_open_writes_past_the_page_cache_and_readers_see_it_at_once() {
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::unix::fs::FileExt;
    let Some(smb) =
        Smb::get("smb_a_write_only_open_writes_past_the_page_cache_and_readers_see_it_at_once")
    else {
        return;
    };
    let mut env = Env::new();
    let mp = env.dir.path().join("wo-mnt");
    let name = unique("rdr-wo");
    let _clean = ServerFiles(vec![smb.server_path(&name)]);
    smb_use(&mut env, &smb, &mp, 0);
    let f = mp.join(&name);
    let before = pattern(3 << 20, 1);
    std::fs::write(&f, &before).unwrap();

    // A reader holds the file open and has read all of it: its pages are cached.
    let mut reader = std::fs::File::open(&f).unwrap();
    let mut got = Vec::new();
    reader.read_to_end(&mut got).unwrap();
    assert_eq!(got, before);

    // A write-only open overwrites the middle (1 MiB writes, as dd does) and extends the end.
    let patch = pattern(2 << 20, 7);
    {
        let mut w = std::fs::OpenOptions::new().write(true).open(&f).unwrap();
        w.seek(SeekFrom::Start(512 << 10)).unwrap();
        for chunk in patch.chunks(1 << 20) {
            w.write_all(chunk).unwrap();
        }
        w.write_all_at(b"tail", 3 << 20).unwrap();
    }
    let mut want = before.clone();
    want[512 << 10..(512 << 10) + patch.len()].copy_from_slice(&patch);
    want.extend_from_slice(b"tail");

    // The reader, still open, reads the new bytes at once; so does a new open; so does the
    // server.
    let mut again = vec![0u8; want.len()];
    reader.read_exact_at(&mut again, 0).unwrap();
    assert!(again == want, "the open reader saw stale pages");
    assert!(std::fs::read(&f).unwrap() == want, "a new open");
    assert!(
        std::fs::read(smb.server_path(&name)).unwrap() == want,
        "the server's copy"
    );
}
