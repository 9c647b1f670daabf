//! A process's resident memory from `/proc/<pid>/status` (Linux): one
//! reading ([`read`]), or the peak over a run ([`RssSampler`]).
//!
//! `VmRSS` is what is resident now; `VmHWM` is the kernel's own high-water
//! mark of it since the process started, so a peak between two samples is
//! not missed. The sampler keeps both: the peak it reports is the larger.

// The sampler is for the memory phases (package builds, the agent applying a
// package: bench item 5); the cold-init phase only reads once.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// One reading of a process's memory, in KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the most that was ever resident.
    pub hwm_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` of `pid`; an error once the process is gone
/// (a zombie has no memory lines either).
pub fn read(pid: u32) -> std::io::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    match (field("VmRSS:"), field("VmHWM:")) {
        (Some(rss_kib), Some(hwm_kib)) => Ok(Memory { rss_kib, hwm_kib }),
        _ => Err(std::io::Error::new(std::io::ErrorKind::NotFound, format!("process {pid} has no memory figures (exited?)"))),
    }
}

/// What a sampler saw between `start` and `stop`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Peak {
    /// The largest of every `VmRSS` sampled and the last `VmHWM` read.
    pub peak_kib: u64,
    /// The last `VmRSS` read.
    pub last_rss_kib: u64,
    /// How many readings succeeded.
    pub samples: usize,
}

impl Peak {
    pub fn peak_mib(&self) -> f64 {
        self.peak_kib as f64 / 1024.0
    }

    fn add(&mut self, m: Memory) {
        self.peak_kib = self.peak_kib.max(m.rss_kib).max(m.hwm_kib);
        self.last_rss_kib = m.rss_kib;
        self.samples += 1;
    }
}

/// Samples one process's memory on a thread of its own until stopped.
pub struct RssSampler {
    pid: u32,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Peak>>,
}

impl RssSampler {
    /// Every 10 ms.
    pub fn start(pid: u32) -> Self {
        Self::every(pid, Duration::from_millis(10))
    }

    pub fn every(pid: u32, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = Peak::default();
            while !flag.load(Ordering::Relaxed) {
                if let Ok(m) = read(pid) {
                    peak.add(m);
                }
                std::thread::sleep(interval);
            }
            peak
        });
        Self { pid, stop, thread: Some(thread) }
    }

    /// Stops sampling, reads once more (while the process still lives, its
    /// `VmHWM` covers the whole run) and returns the peak.
    pub fn stop(mut self) -> Peak {
        self.stop.store(true, Ordering::Relaxed);
        let mut peak = self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default();
        if let Ok(m) = read(self.pid) {
            peak.add(m);
        }
        peak
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    /// Runs python3 `code`, waits for it to print a line (it has done its
    /// work), samples it, and returns the peak.
    fn peak_of(code: &str) -> Peak {
        let mut child = Command::new("python3").args(["-c", code]).stdout(Stdio::piped()).spawn().expect("python3 runs");
        let sampler = RssSampler::start(child.id());
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("a stdout pipe")).read_line(&mut line).expect("the child reports it is ready");
        let peak = sampler.stop();
        let _ = child.kill();
        let _ = child.wait();
        peak
    }

    #[test]
    fn the_peak_of_a_process_that_touches_100_mib_reads_at_least_100_mib_and_an_idle_one_far_less() {
        // Written byte by byte (not zero pages the kernel maps lazily), then freed before the report:
        // only the high-water mark still shows it.
        let busy = peak_of("import sys, time\nb = b'\\x01' * (100 * 1024 * 1024)\ndel b\nprint('ready', flush=True)\ntime.sleep(30)");
        assert!(busy.peak_kib >= 100 * 1024, "a child that touched 100 MiB peaks at {} KiB", busy.peak_kib);
        assert!(busy.samples >= 1, "at least the final reading succeeds");

        let idle = peak_of("import time\nprint('ready', flush=True)\ntime.sleep(30)");
        assert!(idle.peak_kib < 40 * 1024, "an idle python3 peaks at {} KiB", idle.peak_kib);
        assert!(idle.peak_kib > 0 && idle.last_rss_kib > 0);
    }

    #[test]
    fn reading_a_process_that_does_not_exist_is_an_error_not_zero() {
        assert!(read(u32::MAX - 1).is_err());
    }
}
