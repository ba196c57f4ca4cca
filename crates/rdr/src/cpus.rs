//! Where the daemon's threads run (`RDR_CPUS`): on one CPU unless told otherwise.
//!
//! Every request through a mount is a chain of wake-ups: the application wakes a FUSE reader,
//! which sends to the server; the server's answer wakes a runtime worker, which wakes the
//! application. When those threads sit on different CPUs, each wake-up is an inter-processor
//! interrupt (a VM exit under a hypervisor) and often an idle CPU leaving its halt; when they
//! share one CPU it is a plain context switch, and the scheduler then tends to run the
//! application there too (its wake-ups come from that CPU). Measured on a 2-vCPU VM against a
//! local Samba: creating 2,000 small files took 13–15 % less time with the daemon on one CPU,
//! sequential writes were about a fifth slower (≈ 900 instead of ≈ 1,100 MiB/s, still above a
//! 10 GbE link), reads the same. One CPU is plenty for the daemon's per-request work; a host
//! that needs more (many users' bulk transfers, encryption at high rates) sets `RDR_CPUS`.
//!
//! The placement is set once on the daemon's main thread before any other thread exists, so
//! every thread the daemon starts (runtime workers, FUSE readers) inherits it.

use std::collections::BTreeSet;

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

/// Parses a CPU list as `taskset -c` takes it ("3", "0-3", "0,2,5-7"), or "all" (None).
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

/// The CPUs the daemon should use: `spec` (the value of `RDR_CPUS`) if given, else the last of
/// the allowed CPUs. None: leave the placement as it is.
pub fn choose(
    spec: Option<&str>,
    allowed: &BTreeSet<usize>,
) -> Result<Option<BTreeSet<usize>>, String> {
    let want = match spec {
        Some(s) => match parse(s)? {
            None => return Ok(None),
            Some(w) => w,
        },
        None => match allowed.last() {
            Some(&c) => BTreeSet::from([c]),
            None => return Ok(None),
        },
    };
    let usable: BTreeSet<usize> = want.intersection(allowed).copied().collect();
    if usable.is_empty() {
        return Err(format!(
            "{ENV}={}: none of these CPUs is available to the daemon (it may use {})",
            spec.unwrap_or_default(),
            list(allowed)
        ));
    }
    Ok(Some(usable))
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

/// Places the calling thread (and so every thread it starts later) as `RDR_CPUS` says, by
/// default on one CPU. Returns the CPUs chosen (None: left as it was). Call it before any
/// other thread exists.
pub fn place_daemon() -> Result<Option<BTreeSet<usize>>, String> {
    let spec = std::env::var(ENV).ok();
    let chosen = choose(spec.as_deref(), &allowed()?)?;
    if let Some(cpus) = &chosen {
        // SAFETY: as in `allowed`.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &c in cpus {
            // SAFETY: c < CPU_SETSIZE (checked by parse, or taken from the allowed set).
            unsafe { libc::CPU_SET(c, &mut set) };
        }
        // SAFETY: pid 0 is this thread; `set` is a valid set of the size given.
        let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if r != 0 {
            return Err(format!(
                "{ENV}: cannot place the daemon on CPUs {}: {}",
                list(cpus),
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(chosen)
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
    fn by_default_the_daemon_takes_the_last_cpu_it_may_use() {
        assert_eq!(choose(None, &set(&[0, 1])), Ok(Some(set(&[1]))));
        assert_eq!(choose(None, &set(&[2, 4, 6])), Ok(Some(set(&[6]))));
        assert_eq!(choose(Some("all"), &set(&[0, 1])), Ok(None));
        // Only CPUs it may use; none of them is an error that says which it may use.
        assert_eq!(choose(Some("0-3"), &set(&[2, 4])), Ok(Some(set(&[2]))));
        let e = choose(Some("5"), &set(&[0, 1])).expect_err("no usable CPU");
        assert!(e.contains("it may use 0-1"), "{e}");
    }

    #[test]
    fn cpu_sets_print_as_ranges() {
        assert_eq!(list(&set(&[0, 1, 2, 3, 6, 8, 9])), "0-3,6,8-9");
        assert_eq!(list(&set(&[5])), "5");
    }
}
