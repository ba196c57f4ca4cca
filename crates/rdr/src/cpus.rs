//! Where the daemon's threads run (`RDR_CPUS`): on one CPU while requests are small, on every
//! CPU it may use while data streams.
//!
//! Every request through a mount is a chain of wake-ups: the application wakes a FUSE reader,
//! which sends to the server; the server's answer wakes a runtime worker, which wakes the
//! application. When those threads sit on different CPUs, each wake-up is an inter-processor
//! interrupt (a VM exit under a hypervisor) and often an idle CPU leaving its halt; when they
//! share one CPU it is a plain context switch, and the scheduler then tends to run the
//! application there too (its wake-ups come from that CPU). Measured on a 2-vCPU VM against a
//! local Samba: creating 2,000 small files took 13–15 % less time with the daemon on one CPU.
//! Streaming is the other way round: copying data costs the application and the daemon a copy
//! each, and on one CPU they take turns (512 MiB written with `dd`: ≈ 880 instead of
//! ≈ 1,070 MiB/s). So by default the daemon starts on one CPU (the last it may use) and spreads
//! over all of them for as long as reads or writes of at least `rdr_fuse::BULK_IO` bytes keep
//! coming ([`Placement::bulk`]), going back [`QUIET`] after the last one. The shared
//! `docs/fuse-performance.md` measured the same effect: a GETATTR round trip took 63 µs across
//! vCPUs and 2.5 µs on one.
//!
//! `RDR_CPUS=0-3` (a list of CPU numbers and ranges) keeps the daemon on those CPUs, `all`
//! leaves it where it was started; neither changes while it runs.
//!
//! The placement is set on the daemon's main thread before any other thread exists, so every
//! thread inherits it; a change later is applied to every thread of the process.

use parking_lot::{Condvar, Mutex};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The environment variable that chooses the daemon's CPUs.
pub const ENV: &str = "RDR_CPUS";

/// The CPUs this process may run on now (its affinity, as cgroups and `taskset` left it).
fn allowed() -> Result<BTreeSet<usize>, String> {
    // SAFETY: a zeroed cpu_set_t is a valid, empty set; the size passed is its own.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is this thread; `set` is a valid out-buffer of the size given.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Err(format!(
            "cannot read the CPUs this process may use: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: CPU_ISSET reads the set within its bounds (i < CPU_SETSIZE).
    Ok((0..libc::CPU_SETSIZE as usize)
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect())
}

/// Parses a CPU list ("3", "0-3", "0,2,5-7"), or "all" (None).
pub fn parse(spec: &str) -> Result<Option<BTreeSet<usize>>, String> {
    let spec = spec.trim();
    if spec.eq_ignore_ascii_case("all") {
        return Ok(None);
    }
    let bad =
        |what: &str| format!("{ENV}={spec}: {what} (a CPU list such as 1, 0-3 or 0,2; or all)");
    let mut out = BTreeSet::new();
    for part in spec.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (part, part),
        };
        let lo: usize = lo
            .parse()
            .map_err(|_| bad(&format!("\"{part}\" is not a CPU number or range")))?;
        let hi: usize = hi
            .parse()
            .map_err(|_| bad(&format!("\"{part}\" is not a CPU number or range")))?;
        if lo > hi {
            return Err(bad(&format!("range \"{part}\" runs backwards")));
        }
        if hi >= libc::CPU_SETSIZE as usize {
            return Err(bad(&format!("CPU {hi} is beyond the largest CPU number")));
        }
        out.extend(lo..=hi);
    }
    if out.is_empty() {
        return Err(bad("no CPU named"));
    }
    Ok(Some(out))
}

/// How the daemon places its threads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// Where it was started, never changed (`RDR_CPUS=all`, or the default when the allowed
    /// CPUs cannot be read or set).
    AsStarted,
    /// On these CPUs, never changed (`RDR_CPUS=<list>`).
    Fixed(BTreeSet<usize>),
    /// On `narrow` while requests are small, on `wide` while data streams (the default).
    Adaptive {
        /// One CPU: the last the daemon may use.
        narrow: BTreeSet<usize>,
        /// Every CPU the daemon may use.
        wide: BTreeSet<usize>,
    },
}

/// The policy for `spec` (the value of `RDR_CPUS`; unset or empty: the default) when the
/// daemon may use `allowed`.
pub fn choose(spec: Option<&str>, allowed: &BTreeSet<usize>) -> Result<Policy, String> {
    let spec = spec.map(str::trim).filter(|s| !s.is_empty());
    let Some(spec) = spec else {
        return Ok(match allowed.last() {
            Some(&c) if allowed.len() > 1 => Policy::Adaptive {
                narrow: BTreeSet::from([c]),
                wide: allowed.clone(),
            },
            _ => Policy::AsStarted,
        });
    };
    let Some(want) = parse(spec)? else {
        return Ok(Policy::AsStarted);
    };
    let usable: BTreeSet<usize> = want.intersection(allowed).copied().collect();
    if usable.is_empty() {
        return Err(format!(
            "{ENV}={spec}: none of these CPUs is available to the daemon (it may use {})",
            list(allowed)
        ));
    }
    Ok(Policy::Fixed(usable))
}

/// A CPU set written as a list ("0-3,6").
pub fn list(set: &BTreeSet<usize>) -> String {
    let mut parts = Vec::new();
    let mut it = set.iter().copied().peekable();
    while let Some(start) = it.next() {
        let mut end = start;
        while it.peek() == Some(&(end + 1)) {
            end += 1;
            it.next();
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

/// Sets the affinity of thread `tid` (0: the calling thread).
fn set_affinity(tid: libc::pid_t, cpus: &BTreeSet<usize>) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
        // SAFETY: c < CPU_SETSIZE, within the set.
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    // SAFETY: `set` is a valid set of the size given.
    let r = unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sets the affinity of every thread of this process (best effort: a thread that ended
/// meanwhile is skipped).
fn set_process_affinity(cpus: &BTreeSet<usize>) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        let _ = set_affinity(0, cpus);
        return;
    };
    for t in tasks.flatten() {
        if let Some(tid) = t.file_name().to_str().and_then(|s| s.parse().ok()) {
            let _ = set_affinity(tid, cpus);
        }
    }
}

/// How long after the last bulk read or write the daemon goes back to one CPU.
pub const QUIET: Duration = Duration::from_millis(200);

/// The daemon's placement, as `RDR_CPUS` chose it; under the default policy it follows the
/// traffic (see the module's documentation).
pub struct Placement {
    policy: Policy,
    /// On the wide set now.
    wide: AtomicBool,
    /// When the last bulk request came, in milliseconds since `epoch`.
    last_bulk: AtomicU64,
    epoch: Instant,
    /// Wakes the thread that narrows again once the traffic is quiet.
    wake: (Mutex<bool>, Condvar),
    /// Held while the threads' affinity and `wide` change.
    apply: Mutex<()>,
    /// The thread that narrows again runs: only then may a burst spread the daemon.
    active: AtomicBool,
}

impl Placement {
    /// Chooses the policy from `RDR_CPUS` and places the calling thread (call it before any
    /// other thread exists). Fails only when `RDR_CPUS` is wrong or its CPUs cannot be used;
    /// the default falls back to leaving the daemon where it was started.
    pub fn from_env() -> Result<Arc<Placement>, String> {
        let spec = std::env::var(ENV).ok();
        let named = spec.as_deref().is_some_and(|s| !s.trim().is_empty());
        let all = spec
            .as_deref()
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("all"));
        // Without the allowed CPUs only a named list fails: the default and `all` leave the
        // daemon where it was started.
        let policy = match allowed() {
            Ok(a) => choose(spec.as_deref(), &a)?,
            Err(e) if named && !all => return Err(e),
            Err(_) => Policy::AsStarted,
        };
        let policy = match policy {
            Policy::Fixed(cpus) => {
                set_affinity(0, &cpus).map_err(|e| {
                    format!(
                        "{ENV}: cannot place the daemon on CPUs {}: {e}",
                        list(&cpus)
                    )
                })?;
                Policy::Fixed(cpus)
            }
            Policy::Adaptive { narrow, wide } => match set_affinity(0, &narrow) {
                Ok(()) => Policy::Adaptive { narrow, wide },
                Err(e) => {
                    eprintln!(
                        "rdr: cannot place the daemon on CPU {}: {e}; it runs where it was started",
                        list(&narrow)
                    );
                    Policy::AsStarted
                }
            },
            Policy::AsStarted => Policy::AsStarted,
        };
        let p = Arc::new(Placement {
            policy,
            wide: AtomicBool::new(false),
            last_bulk: AtomicU64::new(0),
            epoch: Instant::now(),
            wake: (Mutex::new(false), Condvar::new()),
            apply: Mutex::new(()),
            active: AtomicBool::new(false),
        });
        Ok(p)
    }

    /// Starts the thread that narrows the placement again after a burst of data (adaptive
    /// policy only; call it after the runtime is up, so that it is one of the threads placed).
    pub fn start(self: &Arc<Self>) {
        if !matches!(self.policy, Policy::Adaptive { .. }) {
            return;
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("rdr-placement".into())
            .spawn(move || me.narrow_when_quiet());
        match spawned {
            Ok(_) => self.active.store(true, Ordering::Release),
            Err(e) => eprintln!(
                "rdr: cannot start the placement thread: {e}; the daemon stays on one CPU"
            ),
        }
    }

    /// Says what the placement is, for the daemon's first log line.
    pub fn describe(&self) -> String {
        match &self.policy {
            Policy::AsStarted => "as started".into(),
            Policy::Fixed(c) => list(c),
            Policy::Adaptive { narrow, wide } => {
                format!("{} ({} while data streams)", list(narrow), list(wide))
            }
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A read or write of at least `rdr_fuse::BULK_IO` bytes: spread over every allowed CPU
    /// (at once, on the first one). Cheap when already spread. Called from FUSE handlers.
    pub fn bulk(&self) {
        let Policy::Adaptive { wide, .. } = &self.policy else {
            return;
        };
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        self.last_bulk.store(self.now_ms(), Ordering::Relaxed);
        if self.wide.load(Ordering::Acquire) {
            return;
        }
        {
            // The flag and the threads' affinity change together, under this lock.
            let _g = self.apply.lock();
            if self.wide.load(Ordering::Acquire) {
                return;
            }
            set_process_affinity(wide);
            self.wide.store(true, Ordering::Release);
        }
        let (m, cv) = &self.wake;
        *m.lock() = true;
        cv.notify_one();
    }

    /// The body of the placement thread: after each spread, back to one CPU once no bulk
    /// request came for [`QUIET`].
    fn narrow_when_quiet(&self) {
        let Policy::Adaptive { narrow, .. } = &self.policy else {
            return;
        };
        let (m, cv) = &self.wake;
        loop {
            {
                let mut woken = m.lock();
                while !*woken {
                    cv.wait(&mut woken);
                }
                *woken = false;
            }
            loop {
                std::thread::sleep(QUIET / 4);
                let idle = self
                    .now_ms()
                    .saturating_sub(self.last_bulk.load(Ordering::Relaxed));
                if u128::from(idle) < QUIET.as_millis() {
                    continue;
                }
                let _g = self.apply.lock();
                if self.wide.load(Ordering::Acquire) {
                    set_process_affinity(narrow);
                    self.wide.store(false, Ordering::Release);
                }
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[usize]) -> BTreeSet<usize> {
        v.iter().copied().collect()
    }

    #[test]
    fn cpu_lists_parse_as_taskset_writes_them() {
        assert_eq!(parse("all"), Ok(None));
        assert_eq!(parse(" ALL "), Ok(None));
        assert_eq!(parse("3"), Ok(Some(set(&[3]))));
        assert_eq!(parse("0-2,5, 7-8"), Ok(Some(set(&[0, 1, 2, 5, 7, 8]))));
        for bad in ["", "x", "3-1", "1,,2", "-1", "1-", "99999"] {
            let e = parse(bad).expect_err(bad);
            assert!(e.starts_with("RDR_CPUS="), "{bad}: {e}");
        }
    }

    #[test]
    fn by_default_the_daemon_starts_on_the_last_cpu_and_may_spread_over_all() {
        let adaptive = |n: &[usize], w: &[usize]| Policy::Adaptive {
            narrow: set(n),
            wide: set(w),
        };
        assert_eq!(choose(None, &set(&[0, 1])), Ok(adaptive(&[1], &[0, 1])));
        assert_eq!(
            choose(Some(" "), &set(&[2, 4, 6])),
            Ok(adaptive(&[6], &[2, 4, 6]))
        );
        // One CPU: nothing to choose.
        assert_eq!(choose(None, &set(&[3])), Ok(Policy::AsStarted));
        assert_eq!(choose(Some("all"), &set(&[0, 1])), Ok(Policy::AsStarted));
        // A list keeps the CPUs it may use; none of them is an error that says which it may.
        assert_eq!(
            choose(Some("0-3"), &set(&[2, 4])),
            Ok(Policy::Fixed(set(&[2])))
        );
        let e = choose(Some("5"), &set(&[0, 1])).expect_err("no usable CPU");
        assert!(
            e.contains("RDR_CPUS=5: none of these CPUs") && e.contains("it may use 0-1"),
            "{e}"
        );
    }

    #[test]
    fn cpu_sets_print_as_ranges() {
        assert_eq!(list(&set(&[0, 1, 2, 3, 6, 8, 9])), "0-3,6,8-9");
        assert_eq!(list(&set(&[5])), "5");
    }
}
