//! End-to-end tests of the `rdr` binary: a real daemon, real FUSE mounts of `local:` shares,
//! real processes holding files open, real users. Need root and /dev/fuse (skip otherwise,
//! fail under CI).

mod common;

use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Not a test: the body of the holder process (`Holder`), active only with RDR_HOLDER_FILE.
#[test]
fn holder_main() {
    holder_body();
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2654435761).rotate_left(seed as u32) as u8)
        .collect()
}

fn sh(script: &str) -> std::process::Output {
    let mut c = Command::new("sh");
    c.args(["-c", script]);
    run_bounded(c, Duration::from_secs(120))
}

#[test]
fn files_roundtrip_through_the_mount() {
    if !can_run("files_roundtrip_through_the_mount") {
        return;
    }
    let mut env = Env::new();
    let (back, mp) = env.paths("rt");
    env.mount(&back, &mp);

    // Write through the mount, compare in the backing dir and back through the mount.
    for (i, size) in [0usize, 1, 4095, 4096, 131_073, (1 << 20) + 3, 5 << 20]
        .into_iter()
        .enumerate()
    {
        let data = pattern(size, i as u8);
        let f = mp.join(format!("f{i}.bin"));
        std::fs::write(&f, &data).unwrap();
        assert_eq!(
            std::fs::read(back.join(format!("f{i}.bin"))).unwrap(),
            data,
            "backing f{i}"
        );
        assert_eq!(std::fs::read(&f).unwrap(), data, "mount f{i}");
        assert_eq!(std::fs::metadata(&f).unwrap().len(), size as u64);
    }
    // Files created in the backing dir appear in the mount.
    let outside = pattern(300_000, 9);
    std::fs::write(back.join("outside.bin"), &outside).unwrap();
    assert_eq!(std::fs::read(mp.join("outside.bin")).unwrap(), outside);

    // Shell tools: cp, cat, ls -l, mkdir, mv, append, truncate, rm.
    let m = mp.display();
    let o = sh(&format!(
        "set -e; cp {m}/f5.bin {m}/copy.bin; cmp {m}/f5.bin {m}/copy.bin; \
         mkdir {m}/d; mkdir {m}/d/e; echo hello > {m}/d/e/h.txt; cat {m}/d/e/h.txt; \
         mv {m}/d {m}/d2; cat {m}/d2/e/h.txt; echo more >> {m}/d2/e/h.txt; \
         truncate -s 3 {m}/copy.bin; ls -l {m} {m}/d2/e; rm {m}/f0.bin; rmdir {m}/d2/e 2>/dev/null || true"
    ));
    assert!(
        o.status.success(),
        "shell ops: {}{}",
        stdout(&o),
        stderr(&o)
    );
    let out = stdout(&o);
    assert!(out.contains("hello"), "cat output: {out}");
    assert!(
        out.contains("h.txt") && out.contains("copy.bin"),
        "ls -l output: {out}"
    );
    assert_eq!(
        std::fs::read_to_string(back.join("d2/e/h.txt")).unwrap(),
        "hello\nmore\n"
    );
    assert_eq!(
        std::fs::read(back.join("copy.bin")).unwrap(),
        pattern(1 << 20, 5)[..3].to_vec()
    );
    assert!(!back.join("f0.bin").exists());
    assert!(!back.join("d").exists());
    // rmdir of a non-empty directory fails; after emptying it works.
    assert!(std::fs::remove_dir(mp.join("d2/e")).is_err());
    std::fs::remove_file(mp.join("d2/e/h.txt")).unwrap();
    std::fs::remove_dir(mp.join("d2/e")).unwrap();
    assert!(!back.join("d2/e").exists());
    // Rename over an existing file replaces it.
    std::fs::write(mp.join("a.txt"), b"A").unwrap();
    std::fs::write(mp.join("b.txt"), b"B").unwrap();
    std::fs::rename(mp.join("a.txt"), mp.join("b.txt")).unwrap();
    assert_eq!(std::fs::read(back.join("b.txt")).unwrap(), b"A");
    assert!(!back.join("a.txt").exists());
    // Overwrite with shorter content (O_TRUNC), chmod, touch -d, a directory of many entries.
    std::fs::write(mp.join("f3.bin"), b"short").unwrap();
    assert_eq!(std::fs::read(back.join("f3.bin")).unwrap(), b"short");
    let o = sh(&format!(
        "set -e; chmod 600 {m}/f3.bin; touch -d @1000000000 {m}/f3.bin; mkdir {m}/many; \
         for i in $(seq 1 300); do echo $i > {m}/many/n$i; done; ls {m}/many | wc -l; ls -l {m}/many | tail -n +2 | wc -l"
    ));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stdout(&o).split_whitespace().collect::<Vec<_>>(),
        ["300", "300"]
    );
    let md = std::fs::metadata(back.join("f3.bin")).unwrap();
    assert_eq!(md.mode() & 0o777, 0o600);
    assert_eq!(md.mtime(), 1_000_000_000);
    assert_eq!(
        std::fs::read_to_string(back.join("many/n299")).unwrap(),
        "299\n"
    );
    // Files show as the owner's; statfs works.
    assert_eq!(std::fs::metadata(mp.join("b.txt")).unwrap().uid(), 0);
    assert!(sh(&format!("df {m}")).status.success());

    // Listing.
    let o = env.rdr(&["use"]);
    assert!(o.status.success());
    let out = stdout(&o);
    let header: Vec<&str> = out
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        ["Status", "Local", "Remote", "User", "Opens"],
        "{out}"
    );
    assert!(
        out.contains("OK") && out.contains(&mp.display().to_string()),
        "{out}"
    );
    assert!(out.contains(&format!("local:{}", back.display())), "{out}");

    // Delete without force: no file open (a process merely has its working directory
    // there, which RDBSS does not count) → deleted, and the mount leaves the namespace.
    let mut cwd_holder = Command::new("sleep")
        .arg("60")
        .current_dir(&mp)
        .spawn()
        .unwrap();
    let o = env.rdr(&["use", mp.to_str().unwrap(), "--delete"]);
    let _ = cwd_holder.kill();
    let _ = cwd_holder.wait();
    assert!(o.status.success(), "delete: {}", stderr(&o));
    assert!(!is_mounted(&mp));
    // Listed as detaching until the working directory is gone, then not at all.
    assert!(wait_until(Duration::from_secs(10), || list_is_empty(&env)));
}

fn list_is_empty(env: &Env) -> bool {
    let o = env.rdr(&["use", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array().unwrap().is_empty()
}

#[test]
fn delete_with_a_file_open_each_force_level() {
    if !can_run("delete_with_a_file_open_each_force_level") {
        return;
    }
    let mut env = Env::new();
    let (back, mp) = env.paths("fl");
    // Larger than one read, so a read after the forced delete is inside the cached pages and
    // must still fail (the page cache is invalidated, not trusted).
    let mut content = b"quarterly numbers ".to_vec();
    content.resize(10_000, b'x');
    std::fs::write(back.join("report.txt"), &content).unwrap();
    env.mount(&back, &mp);
    let mps = mp.to_str().unwrap().to_string();
    let mut holder = Holder::open(&mp.join("report.txt"));
    let first64 = format!("data {}", String::from_utf8_lossy(&content[..64]));
    assert_eq!(holder.read(), first64);

    // No force: exit 2, the exact net-use-like line, the mount keeps working.
    let o = env.rdr(&["use", &mps, "--delete"]);
    assert_eq!(o.status.code(), Some(2), "stderr: {}", stderr(&o));
    assert_eq!(
        stderr(&o).trim_end(),
        format!("rdr: {mps}: 1 file open: {mps}/report.txt (STATUS_FILES_OPEN)")
    );
    assert!(is_mounted(&mp));
    assert_eq!(holder.read(), first64);
    assert_eq!(std::fs::read(mp.join("report.txt")).unwrap(), content);

    // rdr files --json lists the handle with its access.
    let o = env.rdr(&["files", &mps, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let handles = v[0]["handles"].as_array().unwrap();
    let h = handles
        .iter()
        .find(|h| h["path"] == format!("{mps}/report.txt"))
        .unwrap_or_else(|| panic!("no handle for report.txt in {v}"));
    assert_eq!(h["access"], "read,write");
    assert_eq!(h["orphaned"], false);

    // Dry run: lists the file, changes nothing.
    let o = env.rdr(&["use", &mps, "--delete", "--force", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("{mps}/report.txt")),
        "{}",
        stdout(&o)
    );
    assert!(is_mounted(&mp));
    assert_eq!(holder.read(), first64);

    // Force: succeeds, reports what it closed; the holder's next read is EIO, close works.
    let o = env.rdr(&["files", &mps]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("Path"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!("{mps}/report.txt")),
        "{}",
        stdout(&o)
    );
    let o = env.rdr(&["use", &mps, "--delete", "--force", "--timeout", "20"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("closed: {mps}/report.txt")),
        "{}",
        stdout(&o)
    );
    assert_eq!(holder.read(), format!("err {}", libc::EIO));
    assert_eq!(holder.close(), "closed ok");
    assert!(wait_until(Duration::from_secs(10), || !is_mounted(&mp)));
    assert_eq!(std::fs::read(back.join("report.txt")).unwrap(), content);
    assert!(wait_until(Duration::from_secs(10), || list_is_empty(&env)));
}

#[test]
fn lazy_delete_detaches_at_once_and_keeps_serving_open_files() {
    if !can_run("lazy_delete_detaches_at_once_and_keeps_serving_open_files") {
        return;
    }
    let mut env = Env::new();
    let (back, mp) = env.paths("lz");
    std::fs::write(back.join("log.txt"), b"still here").unwrap();
    env.mount(&back, &mp);
    let mps = mp.to_str().unwrap().to_string();
    let mut holder = Holder::open(&mp.join("log.txt"));

    let o = env.rdr(&["use", &mps, "--delete", "--lazy", "--close-transport"]);
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("{mps}/log.txt")),
        "{}",
        stdout(&o)
    );
    // Gone from the namespace at once, but the open file still reads.
    assert!(!is_mounted(&mp));
    assert!(!mp.join("log.txt").exists());
    assert_eq!(holder.read(), "data still here");
    assert_eq!(holder.read(), "data still here");
    // No limbo: the detaching connection is listed with its open file.
    let list = |env: &Env| -> serde_json::Value {
        serde_json::from_slice(&env.rdr(&["use", "--json"]).stdout).unwrap()
    };
    let v = list(&env);
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v[0]["status"], "Detaching", "{v}");
    assert_eq!(v[0]["opens"], 1, "{v}");
    let o = env.rdr(&["files", &mps]);
    assert!(
        stdout(&o).contains(&format!("{mps}/log.txt")),
        "{}",
        stdout(&o)
    );
    // A delete without force reports the file; the mount point can be used again meanwhile.
    let o = env.rdr(&["use", &mps, "--delete"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    env.mount(&back, &mp);
    assert_eq!(std::fs::read(mp.join("log.txt")).unwrap(), b"still here");
    assert_eq!(holder.read(), "data still here");
    assert_eq!(holder.close(), "closed ok");
    // Once the last file is closed, the detaching entry goes.
    assert!(
        wait_until(Duration::from_secs(10), || list(&env)
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "OK")),
        "{}",
        list(&env)
    );
    assert_eq!(list(&env).as_array().unwrap().len(), 1);
}

#[test]
fn force_after_lazy_closes_what_is_still_open() {
    if !can_run("force_after_lazy_closes_what_is_still_open") {
        return;
    }
    let mut env = Env::new();
    let (back, mp) = env.paths("lf");
    let mut content = b"held ".to_vec();
    content.resize(20_000, b'y');
    std::fs::write(back.join("held.txt"), &content).unwrap();
    env.mount(&back, &mp);
    let mps = mp.to_str().unwrap().to_string();
    let mut holder = Holder::open(&mp.join("held.txt"));
    let first64 = format!("data {}", String::from_utf8_lossy(&content[..64]));
    assert_eq!(holder.read(), first64);
    let o = env.rdr(&["use", &mps, "--delete", "--lazy"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(holder.read(), first64);
    // Escalate: --force on the detaching connection orphans the handle.
    let o = env.rdr(&["use", &mps, "--delete", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains(&format!("closed: {mps}/held.txt")),
        "{}",
        stdout(&o)
    );
    assert_eq!(holder.read(), format!("err {}", libc::EIO));
    assert_eq!(holder.close(), "closed ok");
    assert!(wait_until(Duration::from_secs(10), || {
        let o = env.rdr(&["use", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v.as_array().unwrap().is_empty()
    }));
}

#[test]
fn bad_input_is_one_line_exit_1_and_nothing_half_made() {
    if !can_run("bad_input_is_one_line_exit_1_and_nothing_half_made") {
        return;
    }
    let mut env = Env::new();
    let (back, mp) = env.paths("bad");
    let check = |o: &std::process::Output, needle: &str| {
        assert_eq!(o.status.code(), Some(1), "{needle}: {}", stderr(o));
        let e = stderr(o);
        assert_eq!(e.lines().count(), 1, "one line: {e:?}");
        assert!(
            e.starts_with("rdr: ") && e.contains(needle),
            "{e:?} lacks {needle:?}"
        );
        assert!(e.contains("(STATUS_"), "{e:?} names no NTSTATUS");
    };

    // Unknown TARGET.
    check(
        &env.rdr(&["use", "/nowhere/at/all", "--delete"]),
        "no such connection",
    );
    // Unknown local dir: the mount point is not created.
    let missing = env.dir.path().join("no-such-dir");
    let o = env.rdr(&[
        "use",
        mp.to_str().unwrap(),
        &format!("local:{}", missing.display()),
    ]);
    check(&o, "no such directory");
    assert!(!mp.exists(), "mount point left behind");
    // Mount point is a file.
    let file = env.dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let o = env.rdr(&[
        "use",
        file.to_str().unwrap(),
        &format!("local:{}", back.display()),
    ]);
    check(&o, "not a directory");
    // A symlink as mount point is refused (the daemon mounts exactly the directory it checked).
    let link = env.dir.path().join("a-link");
    std::os::unix::fs::symlink(&back, &link).unwrap();
    let o = env.rdr(&[
        "use",
        link.to_str().unwrap(),
        &format!("local:{}", back.display()),
    ]);
    check(&o, "not a directory");
    assert!(!is_mounted(&back) && !is_mounted(&link));
    // Not a remote name, and SMB without a user name.
    check(
        &env.rdr(&["use", mp.to_str().unwrap(), "nonsense"]),
        "not a remote name",
    );
    check(
        &env.rdr(&["use", mp.to_str().unwrap(), "//127.0.0.1/share"]),
        "no user name",
    );
    assert!(!mp.exists());
    // Already mounted.
    env.mount(&back, &mp);
    let line = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(mp.to_str().unwrap()))
        .map(str::to_string)
        .unwrap();
    assert!(line.contains(" - fuse.rdr rdr:local:"), "{line}");
    let other = env.dir.path().join("other-back");
    std::fs::create_dir(&other).unwrap();
    let o = env.rdr(&[
        "use",
        mp.to_str().unwrap(),
        &format!("local:{}", other.display()),
    ]);
    check(&o, "already mounted");
    // A mount point something else already mounted (a tmpfs).
    let foreign = env.dir.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    let o = sh(&format!("mount -t tmpfs rdrtest {}", foreign.display()));
    assert!(o.status.success(), "mount tmpfs: {}", stderr(&o));
    env.mounts.push(foreign.clone());
    let o = env.rdr(&[
        "use",
        foreign.to_str().unwrap(),
        &format!("local:{}", other.display()),
    ]);
    check(&o, "already a mount point");
    let c = std::ffi::CString::new(foreign.to_str().unwrap()).unwrap();
    // SAFETY: valid C string.
    assert_eq!(unsafe { libc::umount2(c.as_ptr(), 0) }, 0);
    // The same share twice for one user.
    let mp2 = env.dir.path().join("second-mnt");
    let o = env.rdr(&[
        "use",
        mp2.to_str().unwrap(),
        &format!("local:{}", back.display()),
    ]);
    check(&o, "already connected at");
    assert!(!mp2.exists());
    let o = env.rdr(&["use", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    // A mount made by something else is refused too.
    let o = env.rdr(&["use", "--delete", "--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!is_mounted(&mp));
}

#[test]
fn sigkill_of_the_daemon_leaves_no_dead_mount() {
    if !can_run("sigkill_of_the_daemon_leaves_no_dead_mount") {
        return;
    }
    let mut env = Env::new();
    let (back, mp) = env.paths("kill");
    std::fs::write(back.join("x"), b"x").unwrap();
    env.mount(&back, &mp);
    let guard = env.guard_pid().expect("guard pid");
    env.kill_daemon();
    assert!(
        wait_until(Duration::from_secs(10), || !is_mounted(&mp)),
        "dead mount left behind"
    );
    // The mount point is a plain directory again (no ENOTCONN).
    assert!(std::fs::metadata(&mp).unwrap().is_dir());
    assert!(!mp.join("x").exists());
    assert!(wait_until(Duration::from_secs(10), || !pid_alive(guard)));
    // A new daemon starts cleanly and the mount point can be reused.
    env.start_daemon();
    env.mount(&back, &mp);
    assert_eq!(std::fs::read(mp.join("x")).unwrap(), b"x");

    // Guard and daemon both killed: the mount is dead (ENOTCONN) until the next daemon start
    // repairs it from its state.
    let guard = env.guard_pid().expect("guard pid");
    // SAFETY: the PID the daemon recorded for its guard.
    unsafe { libc::kill(guard, libc::SIGKILL) };
    assert!(wait_until(Duration::from_secs(10), || !pid_alive(guard)));
    env.kill_daemon();
    assert!(is_mounted(&mp));
    // (stat may still be answered from the attribute cache; opening the directory is not)
    let err = std::fs::read_dir(&mp).map(|_| ()).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTCONN), "{err}");
    env.start_daemon();
    assert!(
        wait_until(Duration::from_secs(10), || !is_mounted(&mp)),
        "dead mount not repaired; log:\n{}",
        env.log()
    );
    assert!(std::fs::metadata(&mp).unwrap().is_dir());
}

#[test]
fn persistent_connection_survives_a_daemon_restart() {
    if !can_run("persistent_connection_survives_a_daemon_restart") {
        return;
    }
    let mut env = Env::new();
    let (back, mp) = env.paths("pers");
    std::fs::write(back.join("keep.txt"), b"kept").unwrap();
    let pw = env.dir.path().join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let o = env.rdr(&[
        "use",
        mp.to_str().unwrap(),
        &format!("local:{}", back.display()),
        "--persistent",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    env.mounts.push(mp.clone());
    // The state file has no password; the credentials file is 0600.
    let state = std::fs::read_to_string(env.state().join("persistent.json")).unwrap();
    assert!(state.contains(&mp.display().to_string()) && !state.contains("s3cret"));
    let cred = env.state().join("credentials/0.json");
    assert_eq!(
        std::fs::metadata(&cred).unwrap().permissions().mode() & 0o777,
        0o600
    );

    env.stop_daemon();
    assert!(!is_mounted(&mp), "SIGTERM must unmount");
    env.start_daemon();
    assert!(wait_until(Duration::from_secs(10), || is_mounted(&mp)));
    assert_eq!(std::fs::read(mp.join("keep.txt")).unwrap(), b"kept");
    // Deleting forgets it.
    let o = env.rdr(&["use", mp.to_str().unwrap(), "--delete"]);
    assert!(o.status.success(), "{}", stderr(&o));
    env.stop_daemon();
    env.start_daemon();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!is_mounted(&mp));
}

#[test]
fn byte_range_locks_conflict_across_processes() {
    if !can_run("byte_range_locks_conflict_across_processes") {
        return;
    }
    let mut env = Env::new();
    let (back, mp) = env.paths("lk");
    std::fs::write(back.join("db"), vec![0u8; 4096]).unwrap();
    env.mount(&back, &mp);
    let f = mp.join("db");
    // flock(1) from util-linux: hold an exclusive lock in one process, try in another.
    let fs = f.display();
    let mut holder = Command::new("flock");
    holder.args(["-x", &fs.to_string(), "-c", "echo locked; sleep 60"]);
    holder.stdout(std::process::Stdio::piped());
    // Its own process group, so the lock holder and its shell go together.
    std::os::unix::process::CommandExt::process_group(&mut holder, 0);
    let mut h = holder.spawn().expect("flock");
    let pgid = h.id() as i32;
    let _group = KillGroup(pgid);
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(h.stdout.as_mut().unwrap()),
        &mut first,
    )
    .unwrap();
    assert_eq!(first.trim(), "locked");
    // A timed wait (SIGALRM interrupts it) gives up instead of hanging until the lock frees.
    let o = sh(&format!("flock -w 1 -x {fs} -c true"));
    assert_eq!(o.status.code(), Some(1), "timed wait must time out: {o:?}");
    let o = sh(&format!("flock -n -x {fs} -c true"));
    assert_eq!(
        o.status.code(),
        Some(1),
        "second exclusive lock must fail: {o:?}"
    );
    // SAFETY: the process group we created.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    let _ = h.wait();
    let o = sh(&format!("flock -w 10 -x {fs} -c true"));
    assert!(o.status.success(), "lock after release: {o:?}");
}

#[test]
fn posix_locks_conflict_show_in_rdr_files_and_go_with_close() {
    if !can_run("posix_locks_conflict_show_in_rdr_files_and_go_with_close") {
        return;
    }
    let mut env = Env::new();
    let (back, mp) = env.paths("px");
    std::fs::write(back.join("db"), vec![7u8; 1000]).unwrap();
    env.mount(&back, &mp);
    let mps = mp.to_str().unwrap().to_string();
    let mut a = Holder::open(&mp.join("db"));
    let mut b = Holder::open(&mp.join("db"));
    assert_eq!(b.getlk(), "getlk free");
    assert_eq!(a.lock(), "lock ok");
    assert_eq!(b.lock(), format!("lock err {}", libc::EAGAIN));
    assert_eq!(b.getlk(), "getlk locked");
    // The lock shows in the inventory and in the dry run.
    let o = env.rdr(&["files", &mps, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let locked: Vec<&serde_json::Value> = v[0]["handles"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| !h["locks"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(locked.len(), 1, "{v}");
    assert_eq!(locked[0]["locks"][0]["offset"], 0);
    assert_eq!(locked[0]["locks"][0]["length"], 100);
    assert_eq!(locked[0]["locks"][0]["exclusive"], true);
    let o = env.rdr(&["use", &mps, "--delete", "--dry-run"]);
    assert!(stdout(&o).contains("locks=0-99:excl"), "{}", stdout(&o));
    // Closing the holder's fd releases its lock.
    assert_eq!(a.close(), "closed ok");
    assert!(wait_until(Duration::from_secs(10), || b.lock() == "lock ok"));
}

#[test]
fn forced_delete_cancels_a_waiting_lock_and_dry_run_shows_it_pending() {
    if !can_run("forced_delete_cancels_a_waiting_lock_and_dry_run_shows_it_pending") {
        return;
    }
    let mut env = Env::new();
    let (back, mp) = env.paths("lw");
    std::fs::write(back.join("db"), vec![1u8; 1000]).unwrap();
    env.mount(&back, &mp);
    let mps = mp.to_str().unwrap().to_string();
    let mut a = Holder::open(&mp.join("db"));
    let mut b = Holder::open(&mp.join("db"));
    assert_eq!(a.lock(), "lock ok");
    b.start_lock_wait();
    // The waiting lock is an outstanding request of the connection.
    let mut last = String::new();
    let seen = wait_until(Duration::from_secs(10), || {
        let o = env.rdr(&["use", &mps, "--delete", "--dry-run"]);
        last = stdout(&o);
        last.contains("pending Lock")
    });
    assert!(seen, "dry run never showed the waiting lock: {last}");
    assert!(is_mounted(&mp));
    // Force: the wait is cancelled (the process gets an error, not a hang).
    let o = env.rdr(&["use", &mps, "--delete", "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("cancelled: Lock"), "{}", stdout(&o));
    let ans = b.next_answer();
    assert!(ans.starts_with("lockw err "), "waiting lock: {ans}");
    assert_eq!(a.close(), "closed ok");
    assert_eq!(b.close(), "closed ok");
}

#[test]
fn two_users_see_and_reach_only_their_own_connections() {
    if !can_run("two_users_see_and_reach_only_their_own_connections") {
        return;
    }
    let (users, ids) = Users::create(2);
    let _users = users;
    let mut env = Env::new();
    let mut mps = vec![];
    for (i, (uid, gid)) in ids.iter().enumerate() {
        let (back, mp) = env.paths(&format!("u{i}"));
        std::os::unix::fs::chown(&back, Some(*uid), Some(*gid)).unwrap();
        std::fs::set_permissions(&back, std::fs::Permissions::from_mode(0o755)).unwrap();
        let secret = back.join("secret.txt");
        std::fs::write(&secret, format!("user {i}")).unwrap();
        std::os::unix::fs::chown(&secret, Some(*uid), Some(*gid)).unwrap();
        std::fs::create_dir(&mp).unwrap();
        std::os::unix::fs::chown(&mp, Some(*uid), Some(*gid)).unwrap();
        let o = env.rdr_as(
            *uid,
            *gid,
            &[
                "use",
                mp.to_str().unwrap(),
                &format!("local:{}", back.display()),
            ],
        );
        assert!(
            o.status.success(),
            "user {i} use: {}\n{}",
            stderr(&o),
            env.log()
        );
        env.mounts.push(mp.clone());
        mps.push((mp, back));
    }
    let (a_mp, _) = &mps[0];
    let (b_mp, b_back) = &mps[1];
    let (a, b) = (ids[0], ids[1]);
    // Each lists only their own.
    let o = env.rdr_as(a.0, a.1, &["use", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 1, "{v}");
    assert_eq!(list[0]["local"], a_mp.display().to_string());
    // Root sees both.
    let o = env.rdr(&["use", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    // The owner reads through their mount; the other user cannot.
    let cat_as = |uid: u32, gid: u32, p: &Path| {
        let mut c = Command::new("cat");
        c.arg(p);
        std::os::unix::process::CommandExt::uid(&mut c, uid);
        std::os::unix::process::CommandExt::gid(&mut c, gid);
        run_bounded(c, Duration::from_secs(20))
    };
    let o = cat_as(a.0, a.1, &a_mp.join("secret.txt"));
    assert!(o.status.success(), "owner read: {}", stderr(&o));
    assert_eq!(stdout(&o), "user 0");
    let o = cat_as(b.0, b.1, &a_mp.join("secret.txt"));
    assert!(!o.status.success(), "another user read through the mount");
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    // Mode bits apply to the owner too (default_permissions): chmod 000 locks A out.
    let mut c = Command::new("chmod");
    c.args(["000", a_mp.join("secret.txt").to_str().unwrap()]);
    std::os::unix::process::CommandExt::uid(&mut c, a.0);
    std::os::unix::process::CommandExt::gid(&mut c, a.1);
    let o = run_bounded(c, Duration::from_secs(20));
    assert!(o.status.success(), "owner chmod: {}", stderr(&o));
    let o = cat_as(a.0, a.1, &a_mp.join("secret.txt"));
    assert!(!o.status.success(), "mode 000 must refuse the owner");
    assert!(stderr(&o).contains("Permission denied"), "{}", stderr(&o));
    assert_eq!(std::fs::read(a_mp.join("secret.txt")).unwrap(), b"user 0");
    // And B cannot delete A's connection, nor export a directory that is not theirs.
    let o = env.rdr_as(
        b.0,
        b.1,
        &["use", a_mp.to_str().unwrap(), "--delete", "--force"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(is_mounted(a_mp));
    let o = env.rdr_as(
        b.0,
        b.1,
        &[
            "use",
            &format!("{}-x", b_mp.display()),
            &format!("local:{}", env.dir.path().display()),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not owned by you"), "{}", stderr(&o));
    let _ = b_back;
    // A user cannot start the daemon; the CLI says so in one line.
    let mut c = Command::new(RDR);
    c.args(["use"])
        .env("RDR_SOCKET", env.dir.path().join("none.sock"));
    std::os::unix::process::CommandExt::uid(&mut c, b.0);
    std::os::unix::process::CommandExt::gid(&mut c, b.1);
    let o = run_bounded(c, Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("daemon is not running"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).lines().count(), 1);
    // Each deletes their own.
    for (i, (uid, gid)) in ids.iter().enumerate() {
        let o = env.rdr_as(*uid, *gid, &["use", "--delete", "--all"]);
        assert!(o.status.success(), "user {i}: {}", stderr(&o));
    }
    assert!(!is_mounted(a_mp) && !is_mounted(b_mp));
}

#[test]
fn help_documents_exit_codes() {
    let o = run_bounded(
        {
            let mut c = Command::new(RDR);
            c.args(["use", "--help"]);
            c
        },
        Duration::from_secs(20),
    );
    let out = stdout(&o);
    for needle in [
        "STATUS_FILES_OPEN",
        "STATUS_CONNECTION_IN_USE",
        "STATUS_CANCELLED",
        "STATUS_LOCK_NOT_GRANTED",
        "--lazy",
        "--dry-run",
        "--timeout",
    ] {
        assert!(out.contains(needle), "help lacks {needle}:\n{out}");
    }
}

#[test]
fn delete_on_a_terminal_asks_to_force_like_net_use() {
    if !can_run("delete_on_a_terminal_asks_to_force_like_net_use") {
        return;
    }
    let mut env = Env::new();
    let (back, mp) = env.paths("tty");
    std::fs::write(back.join("open.txt"), b"busy").unwrap();
    env.mount(&back, &mp);
    let mps = mp.to_str().unwrap().to_string();
    let mut holder = Holder::open(&mp.join("open.txt"));
    // script(1) gives the CLI a terminal; answer "n" first, then "y".
    let run_tty = |answer: &str| {
        let mut c = Command::new("sh");
        c.arg("-c").arg(format!(
            "printf '{answer}\\n' | script -qec \"RDR_SOCKET='{}' '{RDR}' use '{mps}' --delete\" /dev/null",
            env.sock.display()
        ));
        run_bounded(c, Duration::from_secs(60))
    };
    let o = run_tty("n");
    let out = stdout(&o);
    assert!(out.contains("force them closed"), "no prompt: {out}");
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(is_mounted(&mp));
    assert_eq!(holder.read(), "data busy");
    let o = run_tty("y");
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("deleted successfully"), "{out}");
    assert_eq!(holder.read(), format!("err {}", libc::EIO));
    assert_eq!(holder.close(), "closed ok");
    assert!(wait_until(Duration::from_secs(10), || !is_mounted(&mp)));
}

#[test]
fn use_starts_the_daemon_when_none_runs() {
    if !can_run("use_starts_the_daemon_when_none_runs") {
        return;
    }
    let dir = open_tempdir();
    let sock = dir.path().join("auto.sock");
    let back = dir.path().join("back");
    std::fs::create_dir(&back).unwrap();
    std::fs::write(back.join("a"), b"auto").unwrap();
    let mp = dir.path().join("mnt");
    let mut c = Command::new(RDR);
    c.args([
        "use",
        mp.to_str().unwrap(),
        &format!("local:{}", back.display()),
    ])
    .env("RDR_SOCKET", &sock);
    let o = run_bounded(c, Duration::from_secs(60));
    let pid: i32 = std::fs::read_to_string(dir.path().join("state/daemon.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let guard: i32 = std::fs::read_to_string(dir.path().join("state/guard.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let ok = o.status.success()
        && is_mounted(&mp)
        && std::fs::read(mp.join("a")).ok() == Some(b"auto".to_vec());
    // Clean up whatever happened: SIGTERM the daemon (it unmounts), then make sure.
    if pid > 0 {
        // SAFETY: the PID the daemon recorded.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        wait_until(Duration::from_secs(20), || !pid_alive(pid));
    }
    if guard > 0 {
        wait_until(Duration::from_secs(5), || !pid_alive(guard));
        // SAFETY: the PID the daemon recorded for its guard.
        unsafe { libc::kill(guard, libc::SIGKILL) };
    }
    if is_mounted(&mp) {
        let c = std::ffi::CString::new(mp.to_str().unwrap()).unwrap();
        // SAFETY: valid C string.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
    assert!(ok, "auto-started use failed: {}{}", stdout(&o), stderr(&o));
    assert!(pid > 0, "no daemon pid file");
    assert!(!pid_alive(pid), "daemon did not exit on SIGTERM");
}

#[test]
fn actimeo_zero_sees_changes_made_on_the_server_at_once() {
    if !can_run("actimeo_zero_sees_changes_made_on_the_server_at_once") {
        return;
    }
    let mut env = Env::new();
    let (back, mp) = env.paths("ac");
    std::fs::write(back.join("grow"), b"1").unwrap();
    let o = env.rdr(&[
        "use",
        mp.to_str().unwrap(),
        &format!("local:{}", back.display()),
        "--actimeo",
        "0",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    env.mounts.push(mp.clone());
    for n in [10usize, 2000, 5] {
        assert!(std::fs::metadata(mp.join("grow")).is_ok());
        std::fs::write(back.join("grow"), vec![b'a'; n]).unwrap();
        assert_eq!(std::fs::metadata(mp.join("grow")).unwrap().len(), n as u64);
        assert_eq!(std::fs::read(mp.join("grow")).unwrap(), vec![b'a'; n]);
    }
    std::fs::remove_file(back.join("grow")).unwrap();
    assert!(!mp.join("grow").exists());
}

#[test]
fn a_large_file_streams_through_the_mount_intact() {
    if !can_run("a_large_file_streams_through_the_mount_intact") {
        return;
    }
    use std::io::{Read, Write};
    let mut env = Env::new();
    let (back, mp) = env.paths("big");
    env.mount(&back, &mp);
    const MIB: usize = 1 << 20;
    const TOTAL: usize = 256;
    // Each MiB is the same pattern stamped with its index, so a misplaced block shows.
    let base = pattern(MIB, 3);
    let mut chunk = base.clone();
    {
        let mut f = std::fs::File::create(mp.join("big.bin")).unwrap();
        for i in 0..TOTAL {
            chunk[..8].copy_from_slice(&(i as u64).to_le_bytes());
            f.write_all(&chunk).unwrap();
        }
        f.sync_all().unwrap();
    }
    assert_eq!(
        std::fs::metadata(back.join("big.bin")).unwrap().len(),
        (TOTAL * MIB) as u64
    );
    for dir in [&mp, &back] {
        let mut f = std::fs::File::open(dir.join("big.bin")).unwrap();
        let mut buf = vec![0u8; MIB];
        for i in 0..TOTAL {
            f.read_exact(&mut buf).unwrap();
            assert!(
                buf[..8] == (i as u64).to_le_bytes() && buf[8..] == base[8..],
                "MiB {i} differs in {}",
                dir.display()
            );
        }
        assert_eq!(f.read(&mut buf).unwrap(), 0, "data past the end");
    }
}

#[test]
fn parallel_writers_and_readers_keep_every_file_intact() {
    if !can_run("parallel_writers_and_readers_keep_every_file_intact") {
        return;
    }
    let mut env = Env::new();
    let (back, mp) = env.paths("par");
    env.mount(&back, &mp);
    let m = mp.display();
    // 8 processes each write a 3 MiB file, then 8 read them back while others list the dir.
    let o = sh(&format!(
        "set -e; for i in 1 2 3 4 5 6 7 8; do \
           (head -c 3145728 /dev/urandom > {m}/../par-src-$i && cp {m}/../par-src-$i {m}/p$i) & \
         done; wait; \
         for i in 1 2 3 4 5 6 7 8; do (cmp {m}/../par-src-$i {m}/p$i && echo same$i) & ls -l {m} >/dev/null & done; wait"
    ));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    for i in 1..=8 {
        assert!(stdout(&o).contains(&format!("same{i}")), "{}", stdout(&o));
        let src = std::fs::read(env.dir.path().join(format!("par-src-{i}"))).unwrap();
        assert_eq!(
            std::fs::read(back.join(format!("p{i}"))).unwrap(),
            src,
            "p{i}"
        );
    }
}

/// `Cpus_allowed_list` of every thread of `pid` (one entry per thread).
fn thread_cpus(pid: i32) -> Vec<String> {
    let mut out = Vec::new();
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let status = std::fs::read_to_string(t.unwrap().path().join("status")).unwrap_or_default();
        if let Some(l) = status.lines().find(|l| l.starts_with("Cpus_allowed_list:")) {
            out.push(l["Cpus_allowed_list:".len()..].trim().to_string());
        }
    }
    out
}

/// The CPUs in a kernel CPU list ("0-3,6").
fn cpu_list(s: &str) -> Vec<usize> {
    let mut v = Vec::new();
    for part in s.split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        v.extend(a.trim().parse::<usize>().unwrap()..=b.trim().parse::<usize>().unwrap());
    }
    v
}

/// Every thread of `pid` has the CPU list `want`.
fn all_threads_on(pid: i32, want: &str) -> bool {
    let t = thread_cpus(pid);
    !t.is_empty() && t.iter().all(|c| c == want)
}

#[test]
fn the_daemon_runs_on_one_cpu_and_spreads_while_data_streams() {
    if !can_run("the_daemon_runs_on_one_cpu_and_spreads_while_data_streams") {
        return;
    }
    let ours = thread_cpus(std::process::id() as i32)
        .into_iter()
        .next()
        .expect("this test's CPUs");
    let cpus = cpu_list(&ours);
    let (first, last) = (cpus[0], *cpus.last().expect("at least one CPU"));

    // By default every thread, FUSE readers included, is on the last CPU the daemon may use.
    let mut env = Env::new();
    let (back, mp) = env.paths("cpu");
    env.mount(&back, &mp);
    std::fs::write(mp.join("small"), b"on one CPU").unwrap();
    assert_eq!(std::fs::read(back.join("small")).unwrap(), b"on one CPU");
    let pid = env.daemon_pid();
    assert!(
        thread_cpus(pid).len() > 4,
        "runtime and FUSE threads: {:?}",
        thread_cpus(pid)
    );
    if cpus.len() < 2 {
        eprintln!("note: this test runs on one CPU ({ours}): nothing to spread over");
        assert!(all_threads_on(pid, &ours), "{:?}", thread_cpus(pid));
        return;
    }
    let one = last.to_string();
    assert!(
        all_threads_on(pid, &one),
        "every thread on CPU {last}: {:?}",
        thread_cpus(pid)
    );
    assert!(
        env.log().contains(&format!(
            "on CPUs {last} ({ours} while data streams) (RDR_CPUS)"
        )),
        "{}",
        env.log()
    );

    // While a writer streams megabytes, every thread may use every CPU; a quarter second
    // after it stops, they are back on one.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (stop, path) = (stop.clone(), mp.join("stream"));
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::File::create(path).unwrap();
            let chunk = vec![7u8; 1 << 20];
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 512 {
                f.write_all(&chunk).unwrap();
                n += 1;
            }
            n
        })
    };
    let spread = wait_until(Duration::from_secs(10), || all_threads_on(pid, &ours));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(spread, "no spread while streaming: {:?}", thread_cpus(pid));
    assert_eq!(
        std::fs::metadata(back.join("stream")).unwrap().len(),
        written << 20,
        "the stream arrived whole"
    );
    assert!(
        wait_until(Duration::from_secs(5), || all_threads_on(pid, &one)),
        "not back on CPU {last}: {:?}",
        thread_cpus(pid)
    );

    // RDR_CPUS names CPUs: the daemon stays there, streaming or not.
    let mut env2 = Env::with_daemon_env(&[("RDR_CPUS", &first.to_string())]);
    let (back2, mp2) = env2.paths("cpu2");
    env2.mount(&back2, &mp2);
    std::fs::write(mp2.join("big"), vec![1u8; 8 << 20]).unwrap();
    assert_eq!(std::fs::metadata(back2.join("big")).unwrap().len(), 8 << 20);
    assert!(
        all_threads_on(env2.daemon_pid(), &first.to_string()),
        "RDR_CPUS={first}: {:?}",
        thread_cpus(env2.daemon_pid())
    );
    // RDR_CPUS=all leaves the daemon where it was started.
    let env3 = Env::with_daemon_env(&[("RDR_CPUS", "all")]);
    assert!(
        all_threads_on(env3.daemon_pid(), &ours),
        "all: {:?}",
        thread_cpus(env3.daemon_pid())
    );

    // A list naming no CPU it may use: the daemon does not start, and says why.
    let dir = open_tempdir();
    let beyond = (last + 1).to_string();
    let mut c = Command::new(RDR);
    c.args(["daemon", "--foreground"])
        .env("RDR_SOCKET", dir.path().join("cpu.sock"))
        .env("RDR_CPUS", &beyond);
    let o = run_bounded(c, Duration::from_secs(20));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "RDR_CPUS={beyond}: none of these CPUs is available"
        )),
        "{}",
        stderr(&o)
    );
    assert!(!dir.path().join("cpu.sock").exists(), "no socket left");
}
