//! `fleetwatch bench …`: the benchmarks, one module each, each returning a typed report
//! (`#[derive(Serialize)]`) that is printed as JSON on stdout, with a short table on stderr
//! ([`print()`](fn@print)). Rates come with CPU seconds (user + system of the whole process) per million
//! records, because these machines are shared and noisy: wall time alone says little.
//!
//! - [`log`]: the embedded log's append and replay throughput against the raw disk;
//! - [`schema`]: Avro encode / decode of `cardata-v1`, Schema Registry requests over HTTP;
//! - [`recovery`]: start-up time of the embedded log after an unclean and a clean stop;
//! - [`produce`]: REST Proxy produce requests of 100,000 records: rate, CPU and peak memory
//!   per record;
//! - [`mqtt`]: MQTT QoS 1 / QoS 0 publishes from many connections, fleetwatch's proxy against
//!   the local Mosquitto: rate, publish→ack latency, server CPU per million;
//! - [`sim`]: the simulator's generator alone on one core, and its `log` target;
//! - [`ml`]: training and operator-only scoring of the native models, against Keras.
//!
//! This module holds what they share: pinning to a CPU, CPU seconds, resident memory from
//! `/proc/self/status`, timed phases and their rates, sizes like `512MiB`, and printing.

#![allow(unsafe_code)]

pub mod log;
pub mod ml;
pub mod mqtt;
pub mod produce;
pub mod recovery;
pub mod schema;
pub mod sim;
pub mod sql;

use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Pins the calling thread (and threads it starts later) to one CPU.
pub fn pin_to_cpu(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it;
    // sched_setaffinity reads it for the calling thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// User + system CPU seconds of this process (all its threads) so far.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the zeroed struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

/// Resident memory of this process, from `/proc/self/status` (0 where unreadable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rss {
    /// `VmRSS`: resident now, KiB.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident ("high water mark"), KiB.
    pub hwm_kib: u64,
}

/// Reads [`Rss`] now.
pub fn rss() -> Rss {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Rss {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

/// Resets this process's peak (`VmHWM`) to its current resident size (Linux `clear_refs` 5),
/// so that the next peak read is the peak of what follows. False where not allowed.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Wall and CPU seconds of one timed phase.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    /// Wall-clock seconds.
    pub seconds: f64,
    /// CPU seconds of the process (user + system).
    pub cpu: f64,
}

/// Starts timing a phase; [`Timer::stop`] ends it.
pub struct Timer {
    t0: Instant,
    c0: f64,
}

impl Timer {
    /// Now.
    pub fn start() -> Self {
        Timer {
            t0: Instant::now(),
            c0: cpu_seconds(),
        }
    }

    /// The phase since [`Timer::start`].
    pub fn stop(&self) -> Phase {
        Phase {
            seconds: self.t0.elapsed().as_secs_f64(),
            cpu: cpu_seconds() - self.c0,
        }
    }
}

/// The rates of a phase that handled `records` records of `bytes` bytes in all.
#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Records per wall-clock second.
    pub records_per_sec: f64,
    /// MiB per wall-clock second.
    pub mib_per_sec: f64,
    /// CPU seconds of the process during the phase.
    pub cpu_seconds: f64,
    /// CPU seconds per million records.
    pub cpu_seconds_per_million: f64,
}

impl Rates {
    /// Of `p`.
    pub fn of(p: &Phase, records: usize, bytes: u64) -> Self {
        Rates {
            seconds: round(p.seconds),
            records_per_sec: round(records as f64 / p.seconds),
            mib_per_sec: round(bytes as f64 / p.seconds / MIB),
            cpu_seconds: round(p.cpu),
            cpu_seconds_per_million: round(p.cpu / (records as f64 / 1e6)),
        }
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// Three decimals, so that reports stay readable.
pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A new empty directory `fleetwatch-bench-<pid>-<name>` under `base`.
pub fn fresh_dir(base: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let d = base.join(format!("fleetwatch-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

/// Prints a report: its table on stderr, its JSON (pretty) on stdout.
pub fn print<R: Serialize>(report: &R, table: impl Fn(&R) -> String) -> anyhow::Result<()> {
    eprint!("{}", table(report));
    println!("{}", serde_json::to_string_pretty(report)?);
    Ok(())
}

/// Parses a size: plain bytes (`1048576`) or a number with a binary unit (`512MiB`, `1GiB`,
/// `64KiB`, `1TiB`; also `K`/`M`/`G`/`T`, `KB`… taken as binary, case-insensitive, spaces and
/// `_` allowed). Fractions work with a unit (`1.5GiB`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
        .collect();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use bytes, KiB, MiB, GiB or TiB, e.g. 512MiB)"
            ));
        }
    };
    let bad = || format!("{s:?} is not a size (e.g. 1GiB, 512MiB or 1048576)");
    let bytes = if mult == 1 {
        num.parse::<u64>().map_err(|_| bad())?
    } else {
        let x: f64 = num.parse().map_err(|_| bad())?;
        let b = x * mult as f64;
        if !b.is_finite() || b >= u64::MAX as f64 {
            return Err(bad());
        }
        b.round() as u64
    };
    if bytes == 0 {
        return Err(format!("{s:?}: a size must be more than 0 bytes"));
    }
    Ok(bytes)
}

/// `1.0 GiB`, `512.0 MiB`, `3.2 KiB`, `100 B`.
pub fn human_bytes(b: u64) -> String {
    let units = [
        (1u64 << 40, "TiB"),
        (1 << 30, "GiB"),
        (1 << 20, "MiB"),
        (1 << 10, "KiB"),
    ];
    for (size, name) in units {
        if b >= size {
            return format!("{:.1} {name}", b as f64 / size as f64);
        }
    }
    format!("{b} B")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units_or_as_plain_bytes() {
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("10GiB").unwrap(), 10 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("512mib").unwrap(), 512 << 20);
        assert_eq!(parse_size("4M").unwrap(), 4 << 20);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size(" 1_000 ").unwrap(), 1000);
        for bad in ["", "GiB", "1XB", "1.5", "-1", "0", "0MiB", "1e400GiB"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_print_in_binary_units() {
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
        assert_eq!(human_bytes(512 << 20), "512.0 MiB");
        assert_eq!(human_bytes(100), "100 B");
    }

    #[test]
    fn memory_and_cpu_are_read_from_this_process() {
        let r = rss();
        assert!(r.rss_kib > 0 && r.hwm_kib >= r.rss_kib, "{r:?}");
        assert!(cpu_seconds() >= 0.0);
    }
}
